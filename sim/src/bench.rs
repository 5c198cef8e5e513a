//! `quiesce-sim bench`: how fast the harness plays what the fuzzer plays,
//! and the standard shutdown scenario, each beside the floor of a minimal
//! two-host turmoil simulation run with the same tick and simulated duration
//! in the same process.
//!
//! The fuzz line is the campaign's own work: cases drawn by the fuzz
//! generator (its tick, chaos, faults, restarts), each played to its end and
//! judged by every oracle, as `quiesce-sim fuzz` does, minus the
//! determinism replays and shrinking. Its floor plays, case by case, the
//! echo world for the simulated time that case took, at the case's tick.
//!
//! The standard scenario's load: every actor acts once a second (each HTTP
//! client sends a request, each peer writes a check result). The busy
//! scenario is the same world four times as busy for the clients and two
//! and a half for the peers; it is reported beside, so that the cost per
//! request stays in view.
#![expect(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "runs worlds on worker threads and measures wall time; no world sees either"
)]

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::env::ChaosRule;
use crate::scenario::{
    Actor, ClusterPeer, Expect, HttpClient, NodeSpec, Op, Scenario, StopSpec, FORMAT_VERSION,
};
use crate::world;

/// Simulated length of every benchmarked schedule.
pub const SIMULATED: Duration = Duration::from_secs(30);
/// The tick of both the standard scenario and the floor.
pub const TICK: Duration = Duration::from_millis(50);

/// One batch of schedules of one kind, played in a row.
#[derive(Clone, Copy, Debug)]
pub struct Batch {
    /// Schedules played.
    pub schedules: u64,
    /// Wall time for all of them.
    pub wall: Duration,
    /// Simulated time for all of them.
    pub simulated: Duration,
}

/// What one kind of schedule measured, batch by batch.
#[derive(Clone, Debug, Default)]
pub struct Measure {
    /// The batches, in the order they ran.
    pub batches: Vec<Batch>,
}

impl Measure {
    /// Schedules played.
    pub fn schedules(&self) -> u64 {
        self.batches.iter().map(|b| b.schedules).sum()
    }

    /// Schedules per wall-clock second: the median over batches, so that a
    /// burst of load from elsewhere on a shared machine does not decide it.
    pub fn per_second(&self) -> f64 {
        self.median(|b| b.schedules as f64 / b.wall.as_secs_f64().max(1e-9))
    }

    /// Simulated seconds per wall-clock second, the median over batches.
    pub fn ratio(&self) -> f64 {
        self.median(|b| b.simulated.as_secs_f64() / b.wall.as_secs_f64().max(1e-9))
    }

    /// Mean simulated seconds per schedule.
    pub fn simulated_per_schedule(&self) -> f64 {
        let simulated: Duration = self.batches.iter().map(|b| b.simulated).sum();
        simulated.as_secs_f64() / self.schedules().max(1) as f64
    }

    fn median(&self, of: impl Fn(&Batch) -> f64) -> f64 {
        median(self.batches.iter().map(of).collect())
    }

    /// One line of the report.
    pub fn line(&self, name: &str) -> String {
        format!(
            "{name:<10} {:>6} schedules  {:>8.1} schedules/s  simulated/wall {:>8.0}x\n",
            self.schedules(),
            self.per_second(),
            self.ratio()
        )
    }
}

/// The median; 0 for none.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Every measurement.
pub struct Bench {
    /// Cases of the fuzz generator, judged by the oracles.
    pub fuzz: Measure,
    /// The floor of each fuzz case: same tick, same simulated time.
    pub fuzz_floor: Measure,
    /// The standard scenario.
    pub standard: Measure,
    /// The standard scenario with its nodes and actors speaking TLS.
    pub standard_tls: Measure,
    /// The busy scenario.
    pub busy: Measure,
    /// The floor.
    pub floor: Measure,
}

impl Bench {
    /// The report printed by the command.
    pub fn report(&self) -> String {
        // How much slower: the median over rounds of a batch's time per
        // schedule beside the floor batch of the same round, so that a
        // machine that changes speed during the run changes both alike.
        let per_schedule = |b: &Batch| b.wall.as_secs_f64() / b.schedules.max(1) as f64;
        let slower = |m: &Measure, floor: &Measure| {
            let pairs = m.batches.iter().zip(&floor.batches);
            median(pairs.map(|(b, f)| per_schedule(b) / per_schedule(f).max(1e-12)).collect())
        };
        let fuzz_sim = self.fuzz.simulated_per_schedule();
        format!(
            "one thread (so schedules/s is per core), medians of batches of {BATCH}\n\
             fuzz: the fuzz generator's cases with every oracle, tick {FUZZ_TICK_MS} ms, {fuzz_sim:.1} s simulated per case on average\n{}{}\
             fuzz is {:.2}x slower than its floor\n\
             standard: tick {} ms, {} s simulated per schedule\n{}{}{}\
             standard is {:.2}x slower than the floor (busy: {:.2}x)\n\
             {}standard over TLS is {:.2}x the plain standard (its handshakes and records)\n",
            self.fuzz.line("fuzz"),
            self.fuzz_floor.line("floor"),
            slower(&self.fuzz, &self.fuzz_floor),
            TICK.as_millis(),
            SIMULATED.as_secs(),
            self.standard.line("standard"),
            self.busy.line("busy"),
            self.floor.line("floor"),
            slower(&self.standard, &self.floor),
            slower(&self.busy, &self.floor),
            self.standard_tls.line("tls"),
            slower(&self.standard_tls, &self.standard),
        )
    }
}

/// How often the actors of a benchmarked world act.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Load {
    /// Every actor once a second.
    Standard,
    /// Clients every 250 ms, peers every 400 ms.
    Busy,
}

impl Load {
    /// (client interval, peer interval) in ms.
    fn intervals(self) -> (u64, u64) {
        match self {
            Load::Standard => (1_000, 1_000),
            Load::Busy => (250, 400),
        }
    }
}

/// The standard shutdown scenario of harness section 9: one node, four HTTP
/// clients, two cluster peers, Stop at a time the seed picks.
pub fn standard_scenario(seed: u64) -> Scenario {
    scenario(seed, Load::Standard)
}

/// The world of the standard scenario with the actors acting at `load`.
pub fn scenario(seed: u64, load: Load) -> Scenario {
    let (client_ms, peer_ms) = load.intervals();
    // Every actor keeps going for the whole run.
    let (rounds, results) =
        (SIMULATED.as_millis() as u64 / client_ms / 3, SIMULATED.as_millis() as u64 / peer_ms);
    // Hashed, so that consecutive seeds spread Stop over the whole window.
    let stop = 5_000 + crate::campaign::mix(seed, 0, 0) % 20_000;
    let client = |i: usize, keep_alive: bool| {
        Actor::HttpClient(HttpClient {
            name: format!("c{i}"),
            node: "api".into(),
            keep_alive,
            start_ms: 100 * i as u64,
            interval_ms: client_ms,
            repeat: rounds as u32,
            ops: vec![
                Op::CheckResult { host: format!("h{i}"), exit_status: (i % 2) as i64 },
                Op::Modify { hosts: vec!["h1".into(), "h2".into(), "h3".into()] },
                Op::Query,
            ],
        })
    };
    let peer = |i: usize| {
        Actor::ClusterPeer(ClusterPeer {
            name: format!("p{i}"),
            node: "api".into(),
            start_ms: 200 * i as u64,
            results: results as u32,
            interval_ms: peer_ms,
            host: "p1".into(),
            reads: true,
        })
    };
    Scenario {
        version: FORMAT_VERSION,
        name: format!("{}-{seed}", if load == Load::Standard { "standard" } else { "busy" }),
        description: "The standard shutdown scenario of harness section 9.".into(),
        seed,
        tick_ms: TICK.as_millis() as u64,
        duration_ms: SIMULATED.as_millis() as u64,
        tcp_capacity: None,
        tls: false,
        nodes: vec![NodeSpec {
            name: "api".into(),
            endpoints: vec![],
            hosts: ["h0", "h1", "h2", "h3", "p1"].iter().map(|h| h.to_string()).collect(),
            accept_after_close: false,
        }],
        actors: vec![client(0, true), client(1, true), client(2, false), client(3, false), peer(0), peer(1)],
        faults: vec![],
        chaos: Vec::<ChaosRule>::new(),
        stop: StopSpec { node: "api".into(), at_ms: stop },
        restart: None,
        cycles: vec![],
        bugs: vec![],
        harness_fault: None,
        expect: Expect::Pass,
    }
}

/// The floor of the standard scenario.
fn floor_schedule(seed: u64) -> Duration {
    floor(seed, TICK, SIMULATED)
}

/// The floor: an echo server and a client exchanging a message every
/// 100 ms, for `simulated` at `tick`.
fn floor(seed: u64, tick: Duration, simulated: Duration) -> Duration {
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .tick_duration(tick)
        .simulation_duration(simulated + Duration::from_secs(1))
        .build();
    sim.host("server", || async {
        let listener = turmoil::net::TcpListener::bind(("0.0.0.0", 5665)).await?;
        loop {
            let (mut s, _) = listener.accept().await?;
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    sim.client("client", async move {
        let mut s = turmoil::net::TcpStream::connect(("server", 5665)).await?;
        let mut buf = [0u8; 5];
        while turmoil::sim_elapsed().unwrap_or_default() < simulated {
            s.write_all(b"ping!").await?;
            s.read_exact(&mut buf).await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    });
    let _ = sim.run();
    simulated
}

/// Schedules of one kind played in a row before the next kind's turn.
const BATCH: u64 = 10;

fn batch(seeds: std::ops::Range<u64>, mut one: impl FnMut(u64) -> Duration) -> Batch {
    let start = Instant::now();
    let schedules = seeds.end - seeds.start;
    let simulated = seeds.map(&mut one).sum();
    Batch { schedules, wall: start.elapsed(), simulated }
}

fn measure(schedules: u64, mut one: impl FnMut(u64) -> Duration) -> Measure {
    let batches = (0..schedules)
        .step_by(BATCH as usize)
        .map(|from| batch(from..(from + BATCH).min(schedules), &mut one));
    Measure { batches: batches.collect() }
}

fn play(seed: u64, load: Load) -> Duration {
    Duration::from_millis(world::run(&scenario(seed, load)).end_ms)
}

/// The standard world with TLS on: the same actors and Stop, every
/// connection a handshake (Ed25519, X25519) and every byte a record.
fn play_tls(seed: u64) -> Duration {
    let s = Scenario { tls: true, name: format!("standard-tls-{seed}"), ..scenario(seed, Load::Standard) };
    Duration::from_millis(world::run(&s).end_ms)
}

/// Measures one load of the standard world alone.
pub fn standard(schedules: u64, load: Load) -> Measure {
    measure(schedules, |seed| play(seed, load))
}

/// The tick the fuzz generator gives its cases.
const FUZZ_TICK_MS: u64 = crate::fuzz::TICK_MS;

/// The campaign seed whose cases the fuzz line plays.
const FUZZ_SEED: u64 = 2026;

/// Plays fuzz case `index` as the campaign does (every oracle judges it) and
/// returns its simulated length; its floor then runs for as long.
fn play_fuzz(index: u64, lengths: &mut Vec<Duration>) -> Duration {
    let Some(tree) = crate::fuzz::case_tree(FUZZ_SEED, index).ok() else { return Duration::ZERO };
    let scenario = proptest::strategy::ValueTree::current(&tree).scenario(
        &format!("bench-{index}"),
        &[],
        crate::scenario::Expect::Pass,
    );
    debug_assert_eq!(scenario.tick_ms, FUZZ_TICK_MS, "the bench reports the fuzz generator's tick");
    let played = crate::replay_catching_panics(&scenario, crate::panics::Output::Quiet);
    let simulated = Duration::from_millis(played.record.end_ms);
    lengths.push(simulated);
    simulated
}

/// Measures only the fuzz line and its floor.
pub fn fuzz_only(schedules: u64) -> (Measure, Measure) {
    let (mut fuzz, mut fuzz_floor) = (Measure::default(), Measure::default());
    for from in (0..schedules).step_by(BATCH as usize) {
        fuzz_round(from..(from + BATCH).min(schedules), &mut fuzz, &mut fuzz_floor);
    }
    (fuzz, fuzz_floor)
}

fn fuzz_round(seeds: std::ops::Range<u64>, fuzz: &mut Measure, fuzz_floor: &mut Measure) {
    let mut lengths = Vec::new();
    fuzz.batches.push(batch(seeds.clone(), |i| play_fuzz(i, &mut lengths)));
    let tick = Duration::from_millis(FUZZ_TICK_MS);
    let mut lengths = lengths.into_iter();
    fuzz_floor.batches.push(batch(seeds, |i| floor(i, tick, lengths.next().unwrap_or_default())));
}

/// Runs every measurement. The kinds take turns in batches, so that a
/// machine that speeds up or slows down during the run (a shared one does)
/// weighs on all of them alike instead of on whichever ran then.
pub fn run(schedules: u64) -> Bench {
    let mut bench = Bench {
        fuzz: Measure::default(),
        fuzz_floor: Measure::default(),
        standard: Measure::default(),
        standard_tls: Measure::default(),
        busy: Measure::default(),
        floor: Measure::default(),
    };
    for from in (0..schedules).step_by(BATCH as usize) {
        let seeds = from..(from + BATCH).min(schedules);
        fuzz_round(seeds.clone(), &mut bench.fuzz, &mut bench.fuzz_floor);
        // The floor right before the standard batch it is compared with.
        bench.floor.batches.push(batch(seeds.clone(), floor_schedule));
        bench.standard.batches.push(batch(seeds.clone(), |seed| play(seed, Load::Standard)));
        bench.standard_tls.batches.push(batch(seeds.clone(), play_tls));
        bench.busy.batches.push(batch(seeds, |seed| play(seed, Load::Busy)));
    }
    bench
}
