//! Whole scenarios from a proptest strategy, for fuzzing shutdown orderings.
//!
//! Swarm testing: every case first draws which features it has at all
//! (kinds of actors, chaos points, a pair of delays straddling Stop,
//! faults, a restart), so that some cases are dense with one kind of
//! trouble instead of every case being a thin mix of everything. The seed
//! never shrinks (a smaller seed is an unrelated run); the lists of actors,
//! chaos rules and faults do.

use proptest::prelude::*;
use proptest::strategy::{NewTree, ValueTree};
use proptest::test_runner::{Config as PtConfig, RngAlgorithm, TestRng, TestRunner};

use quiesce::bugs::Bug;
use quiesce::env::Point;

use crate::env::{ChaosAction, ChaosRule};
use crate::scenario::{Actor, Expect, Fault, NodeSpec, Op, RestartSpec, Scenario, StopSpec, FORMAT_VERSION};

/// The node every generated scenario stops.
const NODE: &str = "api";
/// Hosts HTTP clients work on.
const HOSTS: [&str; 12] = ["h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9", "h10", "h11", "h12"];
/// Most actors in one case; peer `i` sends results for host `p<i>`, its own,
/// so that no two senders race on one object's check results.
const MAX_ACTORS: usize = 9;
/// Chaos points a case may schedule, weighted towards those where a
/// handler holds (or is about to take) the work group.
fn weight(point: Point) -> u32 {
    match point {
        Point::HttpBeforeGate | Point::HttpAfterGate | Point::JsonRpcAfterGate => 2,
        Point::HttpBetweenObjects | Point::JsonRpcBeforeHandle => 3,
        Point::HttpBeforeResponse | Point::JsonRpcBeforeWrite | Point::ListenerBeforeRegister => 1,
        Point::HttpFilterPause | Point::FsBeforeRename => 1,
    }
}

/// Which features a case has at all.
#[derive(Clone, Debug)]
pub struct Swarm {
    kinds: Vec<u8>,
    chaos: bool,
    straddle: bool,
    faults: bool,
    restart: bool,
    accept_after_close: bool,
}

fn swarm() -> impl Strategy<Value = Swarm> {
    // Kind 0 (an HTTP client) is always possible, so a case is never empty.
    let kinds = prop::collection::vec(any::<bool>(), 7).prop_map(|on| {
        let mut kinds = vec![0u8];
        kinds.extend((1..=7u8).filter(|k| on[*k as usize - 1]));
        kinds
    });
    // Chaos is on in most cases: shutdown races live in the delays it adds.
    // Half the cases straddle Stop with a pair of delays; three in four
    // restart, since only a restart shows what Stop failed to keep.
    (
        kinds,
        prop::bool::weighted(0.7),
        prop::bool::weighted(0.5),
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.75),
        prop::bool::weighted(0.3),
    )
        .prop_map(|(kinds, chaos, straddle, faults, restart, accept_after_close)| Swarm {
            kinds,
            chaos,
            straddle,
            faults,
            restart,
            accept_after_close,
        })
        .no_shrink()
}

/// An actor before it gets its name.
#[derive(Clone, Debug)]
enum ActorGen {
    Client { keep_alive: bool, start_ms: u64, interval_ms: u64, repeat: u32, ops: Vec<Op> },
    Peer { start_ms: u64, results: u32, interval_ms: u64, reads: bool },
    Half { at_ms: u64 },
    Silent { at_ms: u64 },
    Idle { at_ms: u64 },
    Events { at_ms: u64, read_every_ms: u64 },
    Slow { at_ms: u64, requests: u32, read_after_ms: u64 },
}

/// An HTTP op; `results` weighs check results, the only op the node
/// relays to its peers.
fn op(results: u32) -> impl Strategy<Value = Op> {
    let host = prop::sample::select(HOSTS.to_vec()).prop_map(String::from);
    prop_oneof![
        results => (host.clone(), 0i64..2).prop_map(|(host, exit_status)| Op::CheckResult { host, exit_status }),
        3 => prop::sample::subsequence(HOSTS.to_vec(), 4..=HOSTS.len())
            .prop_map(|hs| Op::Modify { hosts: hs.into_iter().map(String::from).collect() }),
        1 => (0u8..4).prop_map(|n| Op::Create { host: format!("n{n}") }),
        1 => host.prop_map(|host| Op::Delete { host }),
        1 => Just(Op::Query),
    ]
}

fn actor(kind: u8, horizon: u64, results: u32) -> BoxedStrategy<ActorGen> {
    let at = 0..horizon;
    match kind {
        0 => (any::<bool>(), at, 0u64..60, 1u32..40, prop::collection::vec(op(results), 1..4))
            .prop_map(|(keep_alive, start_ms, interval_ms, repeat, ops)| ActorGen::Client {
                keep_alive,
                start_ms,
                interval_ms,
                repeat,
                ops,
            })
            .boxed(),
        1 => (at, 1u32..30, 10u64..200)
            .prop_map(move |(start_ms, results, interval_ms)| ActorGen::Peer {
                start_ms,
                results,
                interval_ms,
                reads: true,
            })
            .boxed(),
        // A peer that does not read starts in the first half, so that the
        // node has time to fill its socket before Stop.
        2 => (0..horizon.div_ceil(2), 1u32..30, 10u64..200)
            .prop_map(move |(start_ms, results, interval_ms)| ActorGen::Peer {
                start_ms,
                results,
                interval_ms,
                reads: false,
            })
            .boxed(),
        3 => at.prop_map(|at_ms| ActorGen::Half { at_ms }).boxed(),
        4 => at.prop_map(|at_ms| ActorGen::Silent { at_ms }).boxed(),
        5 => at.prop_map(|at_ms| ActorGen::Idle { at_ms }).boxed(),
        6 => (at, 10u64..300)
            .prop_map(|(at_ms, read_every_ms)| ActorGen::Events { at_ms, read_every_ms })
            .boxed(),
        _ => (at, 50u32..300, 0u64..8000)
            .prop_map(|(at_ms, requests, read_after_ms)| ActorGen::Slow { at_ms, requests, read_after_ms })
            .boxed(),
    }
}

fn chaos_rule(stop_ms: u64) -> impl Strategy<Value = ChaosRule> {
    let action = prop_oneof![
        3 => (5u64..600).prop_map(|ms| ChaosAction::Delay { ms }),
        1 => (1u32..5).prop_map(|times| ChaosAction::Yield { times }),
    ];
    let points: Vec<(u32, BoxedStrategy<Point>)> =
        Point::ALL.iter().map(|&p| (weight(p), Just(p).boxed())).collect();
    let point = prop::strategy::Union::new_weighted(points);
    // Half the rules wake up shortly before Stop: load builds up undisturbed,
    // and their delays fall where shutdown races are.
    let from = prop::option::weighted(0.5, stop_ms.saturating_sub(1000)..stop_ms);
    (point, prop::option::weighted(0.35, 1u64..6), from, action)
        .prop_map(|(point, hit, from_ms, action)| ChaosRule { point, host: None, hit, from_ms, action })
}

/// Points just before a handler takes the work group, and points where it holds it.
const BEFORE_GATE: [Point; 2] = [Point::JsonRpcBeforeHandle, Point::HttpBeforeGate];
const HOLDING_GATE: [Point; 3] = [Point::HttpBetweenObjects, Point::HttpAfterGate, Point::JsonRpcAfterGate];

/// The shape of the races #10460 is about: one item parked before the gate
/// across the instant Stop begins, and another holding the gate for longer,
/// so that the first reaches the gate while Stop's join is waiting. Each
/// rule delays every hit from its start and may still shrink away.
fn straddle_pair(stop_ms: u64) -> impl Strategy<Value = Vec<Option<ChaosRule>>> {
    let rule = |point: Point, from_ms: u64, ms: u64| ChaosRule {
        point,
        host: None,
        hit: None,
        from_ms: Some(from_ms),
        action: ChaosAction::Delay { ms },
    };
    let before = (prop::sample::select(BEFORE_GATE.to_vec()), 50u64..400, 20u64..100);
    let holding = (prop::sample::select(HOLDING_GATE.to_vec()), 50u64..700, 0u64..300);
    (before, holding).prop_flat_map(move |((p1, d1, pct), (p2, extra, lead))| {
        // The parked item's delay ends after Stop began; the holder's after that.
        let parked = rule(p1, stop_ms.saturating_sub(d1 * pct / 100), d1);
        let holder = rule(p2, stop_ms.saturating_sub(lead), d1 + extra);
        let keep = |r: ChaosRule| prop::option::weighted(0.95, Just(r));
        (keep(parked), keep(holder)).prop_map(|(a, b)| vec![a, b])
    })
}

/// A fault against the actor at an index (taken modulo the actor count).
#[derive(Clone, Debug)]
enum FaultGen {
    Partition { actor: usize, at_ms: u64, for_ms: u64 },
    Hold { actor: usize, at_ms: u64, for_ms: u64 },
    Latency { actor: usize, at_ms: u64, ms: u64 },
}

fn fault(horizon: u64) -> impl Strategy<Value = FaultGen> {
    prop_oneof![
        (any::<usize>(), 0..horizon, 10u64..3000).prop_map(|(actor, at_ms, for_ms)| FaultGen::Partition {
            actor,
            at_ms,
            for_ms
        }),
        (any::<usize>(), 0..horizon, 10u64..3000).prop_map(|(actor, at_ms, for_ms)| FaultGen::Hold {
            actor,
            at_ms,
            for_ms
        }),
        (any::<usize>(), 0..horizon, 1u64..80).prop_map(|(actor, at_ms, ms)| FaultGen::Latency {
            actor,
            at_ms,
            ms
        }),
    ]
}

/// Everything a case draws before it becomes a [`Scenario`].
#[derive(Clone, Debug)]
pub struct Case {
    seed: u64,
    tcp_capacity: usize,
    swarm: Swarm,
    stop_ms: u64,
    restart_after_ms: Option<u64>,
    actors: Vec<ActorGen>,
    chaos: Vec<ChaosRule>,
    faults: Vec<FaultGen>,
}

/// Cases: the seed and the swarm don't shrink; the lists do.
pub fn cases() -> impl Strategy<Value = Case> {
    // Small socket buffers more often: a peer that does not read fills them sooner.
    let capacity = prop_oneof![3 => 8usize..14, 1 => 14usize..48];
    let fixed = (any::<u64>(), swarm(), 200u64..2500, capacity).no_shrink();
    fixed.prop_flat_map(|(seed, swarm, stop_ms, tcp_capacity)| {
        // Actors start before Stop, where they can race it.
        let horizon = stop_ms;
        let kinds = swarm.kinds.clone();
        // A peer that does not read matters only once the node has filled its
        // socket, and relayed check results are what fill it.
        let results = if kinds.contains(&2) { 8 } else { 4 };
        let actors = prop::collection::vec(
            prop::sample::select(kinds).prop_flat_map(move |k| actor(k, horizon, results)),
            1..MAX_ACTORS,
        );
        // A swarm feature draws at least three rules or one fault; each may
        // still shrink away (to None), so a shrunk case keeps only what matters.
        let chaos = prop::collection::vec(
            prop::option::weighted(0.95, chaos_rule(stop_ms)),
            if swarm.chaos { 3..7 } else { 0..1 },
        );
        let straddle = if swarm.straddle { straddle_pair(stop_ms).boxed() } else { Just(vec![]).boxed() };
        let chaos = (chaos, straddle).prop_map(|(mut chaos, pair)| {
            chaos.extend(pair);
            chaos
        });
        let faults = prop::collection::vec(
            prop::option::weighted(0.95, fault(horizon)),
            if swarm.faults { 1..3 } else { 0..1 },
        );
        let restart = if swarm.restart {
            prop::option::weighted(0.9, 300u64..2000).boxed()
        } else {
            Just(None).boxed()
        };
        (Just((seed, tcp_capacity)), Just(swarm), Just(stop_ms), restart, actors, chaos, faults).prop_map(
            |((seed, tcp_capacity), swarm, stop_ms, restart_after_ms, actors, chaos, faults)| Case {
                seed,
                tcp_capacity,
                swarm,
                stop_ms,
                restart_after_ms,
                actors,
                chaos: chaos.into_iter().flatten().collect(),
                faults: faults.into_iter().flatten().collect(),
            },
        )
    })
}

fn named(i: usize, g: &ActorGen) -> Actor {
    let name = format!("a{i}");
    let node = NODE.to_string();
    match g.clone() {
        ActorGen::Client { keep_alive, start_ms, interval_ms, repeat, ops } => {
            Actor::HttpClient { name, node, keep_alive, start_ms, interval_ms, repeat, ops }
        }
        ActorGen::Peer { start_ms, results, interval_ms, reads } => {
            Actor::ClusterPeer { name, node, start_ms, results, interval_ms, host: format!("p{i}"), reads }
        }
        ActorGen::Half { at_ms } => Actor::HalfRequest { name, node, at_ms },
        ActorGen::Silent { at_ms } => Actor::SilentConnection { name, node, at_ms },
        ActorGen::Idle { at_ms } => Actor::IdleKeepAlive { name, node, at_ms },
        ActorGen::Events { at_ms, read_every_ms } => {
            Actor::EventSubscriber { name, node, at_ms, read_every_ms }
        }
        ActorGen::Slow { at_ms, requests, read_after_ms } => {
            Actor::SlowReader { name, node, at_ms, host: "h1".into(), requests, read_after_ms }
        }
    }
}

fn fault_of(g: &FaultGen, actors: &[Actor]) -> Fault {
    let pick = |i: usize| actors[i % actors.len()].name().to_string();
    let a = NODE.to_string();
    match *g {
        FaultGen::Partition { actor, at_ms, for_ms } => {
            Fault::Partition { a, b: pick(actor), at_ms, until_ms: at_ms + for_ms }
        }
        FaultGen::Hold { actor, at_ms, for_ms } => {
            Fault::Hold { a, b: pick(actor), at_ms, until_ms: at_ms + for_ms }
        }
        FaultGen::Latency { actor, at_ms, ms } => Fault::Latency { a, b: pick(actor), at_ms, ms },
    }
}

impl Case {
    /// The scenario this case plays, with `bugs` switched on and `expect`.
    pub fn scenario(&self, name: &str, bugs: &[Bug], expect: Expect) -> Scenario {
        let actors: Vec<Actor> = self.actors.iter().enumerate().map(|(i, g)| named(i, g)).collect();
        let faults = self.faults.iter().map(|f| fault_of(f, &actors)).collect();
        let mut hosts: Vec<String> = HOSTS.iter().map(|h| h.to_string()).collect();
        hosts.extend((0..MAX_ACTORS).map(|i| format!("p{i}")));
        let restart = self.restart_after_ms.map(|d| RestartSpec { at_ms: self.stop_ms + d });
        let end = restart.as_ref().map_or(self.stop_ms, |r| r.at_ms) + 25_000;
        Scenario {
            version: FORMAT_VERSION,
            name: name.to_string(),
            description: format!("Generated by the fuzzer (swarm: {:?}).", self.swarm),
            seed: self.seed,
            tick_ms: 2,
            duration_ms: end,
            tcp_capacity: Some(self.tcp_capacity),
            nodes: vec![NodeSpec {
                name: NODE.into(),
                endpoints: vec![],
                hosts,
                accept_after_close: self.swarm.accept_after_close,
            }],
            actors,
            faults,
            chaos: self.chaos.clone(),
            stop: StopSpec { node: NODE.into(), at_ms: self.stop_ms },
            restart,
            bugs: bugs.to_vec(),
            expect,
        }
    }

    /// How many things the case has: actors, chaos rules and faults.
    pub fn size(&self) -> usize {
        self.actors.len() + self.chaos.len() + self.faults.len()
    }
}

/// A deterministic proptest runner for case `index` of a campaign seeded `seed`.
pub fn runner(seed: u64, index: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&index.to_le_bytes());
    bytes[16..24].copy_from_slice(b"quiesce!");
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    TestRunner::new_with_rng(PtConfig::default(), rng)
}

/// The value tree of case `index` of a campaign seeded `seed`.
pub fn case_tree(seed: u64, index: u64) -> NewTree<impl Strategy<Value = Case>> {
    cases().new_tree(&mut runner(seed, index))
}

/// Shrinks a failing case while `fails` still holds; returns the smallest
/// failing case found within `budget` attempts.
pub fn shrink<T: ValueTree<Value = Case>>(
    tree: &mut T,
    budget: usize,
    mut fails: impl FnMut(&Case) -> bool,
) -> Case {
    let mut best = tree.current();
    if !tree.simplify() {
        return best;
    }
    for _ in 0..budget {
        let candidate = tree.current();
        if fails(&candidate) {
            best = candidate;
            if !tree.simplify() {
                break;
            }
        } else if !tree.complicate() {
            break;
        }
    }
    best
}
