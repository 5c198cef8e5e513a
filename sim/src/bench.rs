//! `quiesce-sim bench`: how fast the harness plays the standard shutdown
//! scenario, beside the floor of a minimal two-host turmoil simulation run
//! with the same tick and simulated duration in the same process.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::env::ChaosRule;
use crate::scenario::{Actor, Expect, NodeSpec, Op, Scenario, StopSpec, FORMAT_VERSION};
use crate::world;

/// Simulated length of every benchmarked schedule.
pub const SIMULATED: Duration = Duration::from_secs(30);
/// The tick of both the standard scenario and the floor.
pub const TICK: Duration = Duration::from_millis(50);

/// What one kind of schedule measured.
#[derive(Clone, Copy, Debug)]
pub struct Measure {
    /// Schedules played.
    pub schedules: u64,
    /// Wall time for all of them.
    pub wall: Duration,
    /// Simulated time for all of them.
    pub simulated: Duration,
}

impl Measure {
    /// Schedules per wall-clock second.
    pub fn per_second(&self) -> f64 {
        self.schedules as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// Simulated seconds per wall-clock second.
    pub fn ratio(&self) -> f64 {
        self.simulated.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }

    /// One line of the report.
    pub fn line(&self, name: &str) -> String {
        format!(
            "{name:<10} {:>6} schedules  {:>8.1} schedules/s  simulated/wall {:>8.0}x\n",
            self.schedules,
            self.per_second(),
            self.ratio()
        )
    }
}

/// Both measurements.
pub struct Bench {
    /// The standard scenario.
    pub standard: Measure,
    /// The floor.
    pub floor: Measure,
}

impl Bench {
    /// The report printed by the command.
    pub fn report(&self) -> String {
        format!(
            "tick {} ms, {} s simulated per schedule, one thread\n{}{}standard is {:.2}x slower than the floor\n",
            TICK.as_millis(),
            SIMULATED.as_secs(),
            self.standard.line("standard"),
            self.floor.line("floor"),
            self.floor.per_second() / self.standard.per_second().max(1e-9)
        )
    }
}

/// The standard shutdown scenario of harness section 9: one node, four HTTP
/// clients, two cluster peers, Stop at a time the seed picks.
pub fn standard_scenario(seed: u64) -> Scenario {
    // Hashed, so that consecutive seeds spread Stop over the whole window.
    let stop = 5_000 + crate::campaign::mix(seed, 0, 0) % 20_000;
    let client = |i: usize, keep_alive: bool| Actor::HttpClient {
        name: format!("c{i}"),
        node: "api".into(),
        keep_alive,
        start_ms: 100 * i as u64,
        interval_ms: 250,
        repeat: 40,
        ops: vec![
            Op::CheckResult { host: format!("h{i}"), exit_status: (i % 2) as i64 },
            Op::Modify { hosts: vec!["h1".into(), "h2".into(), "h3".into()] },
            Op::Query,
        ],
    };
    let peer = |i: usize| Actor::ClusterPeer {
        name: format!("p{i}"),
        node: "api".into(),
        start_ms: 200 * i as u64,
        results: 60,
        interval_ms: 400,
        host: "p1".into(),
        reads: true,
    };
    Scenario {
        version: FORMAT_VERSION,
        name: format!("standard-{seed}"),
        description: "The standard shutdown scenario of harness section 9.".into(),
        seed,
        tick_ms: TICK.as_millis() as u64,
        duration_ms: SIMULATED.as_millis() as u64,
        tcp_capacity: None,
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
        bugs: vec![],
        expect: Expect::Pass,
    }
}

/// The floor: an echo server and a client exchanging a message every 100 ms.
fn floor_schedule(seed: u64) -> Duration {
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .tick_duration(TICK)
        .simulation_duration(SIMULATED + Duration::from_secs(1))
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
    sim.client("client", async {
        let mut s = turmoil::net::TcpStream::connect(("server", 5665)).await?;
        let mut buf = [0u8; 5];
        while turmoil::sim_elapsed().unwrap_or_default() < SIMULATED {
            s.write_all(b"ping!").await?;
            s.read_exact(&mut buf).await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    });
    let _ = sim.run();
    SIMULATED
}

fn measure(schedules: u64, mut one: impl FnMut(u64) -> Duration) -> Measure {
    let start = Instant::now();
    let simulated = (0..schedules).map(&mut one).sum();
    Measure { schedules, wall: start.elapsed(), simulated }
}

/// Measures the standard scenario alone.
pub fn standard(schedules: u64) -> Measure {
    measure(schedules, |seed| {
        let record = world::run(&standard_scenario(seed));
        Duration::from_millis(record.end_ms)
    })
}

/// Runs both measurements.
pub fn run(schedules: u64) -> Bench {
    Bench { standard: standard(schedules), floor: measure(schedules, floor_schedule) }
}
