//! The oracles of harness section 4. Each reads a [`RunRecord`] and returns
//! the violations it finds, with the time and the evidence. They are pure, so
//! each can be shown to fire on a hand-made record.

pub(crate) mod cluster;
mod http;
pub mod lifecycle;
mod listener;
mod silent;
pub mod tasks;

use serde::{Deserialize, Serialize};

use crate::record::{RunRecord, TraceLine};
use crate::scenario::Scenario;
use crate::trace::digest;

/// The invariants the harness checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Invariant {
    /// The journal has no entry after Stop returned (or after the seal).
    NoMutationAfterStop,
    /// Every handler that passed its gate finished before Stop returned.
    StartedWorkFinishes,
    /// Stop returned within its bound, whatever the peers did.
    StopBounded,
    /// No registration after close; accept loops ended; no accept spin.
    ListenerClosed,
    /// Responses say exactly what was done.
    ResponsesTellTheTruth,
    /// After a graceful restart, nothing acknowledged is missing or doubled.
    NothingAcknowledgedIsLost,
    /// Every task and socket of the stopped node ended within the bound.
    AllTasksEnd,
    /// After Stop returned: no response, JSON-RPC message, journal entry or state write.
    SilentAfterStop,
    /// No task panicked.
    NoPanic,
    /// The same scenario gave the same trace.
    Deterministic,
    /// The planted canary fired (proves failures are reported).
    Canary,
}

impl Invariant {
    /// Every invariant, in the order of harness section 4. A test holds it
    /// to the enum's variants, and every invariant to a test showing it firing.
    pub const ALL: [Invariant; 11] = [
        Invariant::NoMutationAfterStop,
        Invariant::StartedWorkFinishes,
        Invariant::StopBounded,
        Invariant::ListenerClosed,
        Invariant::ResponsesTellTheTruth,
        Invariant::NothingAcknowledgedIsLost,
        Invariant::AllTasksEnd,
        Invariant::SilentAfterStop,
        Invariant::NoPanic,
        Invariant::Deterministic,
        Invariant::Canary,
    ];

    /// The kebab-case name used in scenario files and reports.
    pub fn name(self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
    }
}

/// What the world knows, while a run settles, that decides how long the
/// oracles still need it to go on.
#[derive(Clone, Copy, Debug, Default)]
pub struct Settling {
    /// Every node that saw Stop return has no task left alive, or its host
    /// is down for good: nothing of the stack is left to break the silence;
    /// and every request an actor sent to a node not running has its outcome
    /// recorded.
    pub stopped_nodes_quiet: bool,
    /// The stopped node runs again after a restart.
    pub restarted: bool,
    /// The stopped node runs again after a restart (not stopped or crashed
    /// since), so the peers' backlogs replayed to it are judged, and some
    /// peer has not come back yet or some result sent to it is not yet
    /// applied and acknowledged.
    pub replay_pending: bool,
    /// Until when a partition or hold still holds messages on some link.
    pub links_cut_until_ms: u64,
}

/// How long after every node is done (started, or stopped with its tasks
/// ended, or restarted) the run must go on for every oracle's window to
/// close: silent-after-stop's watch, unless no task of a stopped node is
/// left to be heard (then only what is in flight must land); a restarted
/// node's first persist interval; and, while a judged replay has results
/// left to apply or acknowledge, the time for a peer to reconnect and for
/// its whole backlog to be applied. The world ends the run then, or earlier once every
/// actor has ended, instead of idling to the scenario's duration.
pub fn settle_ms(scenario: &Scenario, now_ms: u64, settling: Settling) -> u64 {
    let silent = if settling.stopped_nodes_quiet {
        // What the stopped nodes sent last reaches the actors: the links'
        // latency, and a held link's release.
        let held = settling.links_cut_until_ms.saturating_sub(now_ms);
        held + IN_FLIGHT_MS + cluster::latency_ms(scenario, None)
    } else {
        silent::WATCH_AFTER_DONE_MS
    };
    // A node started again serves its clients and persists at least once.
    let serving = if settling.restarted { RESTARTED_WATCH_MS } else { 0 };
    // A replay after a restart first waits out the peer's retry, and its
    // acknowledgement comes with the next log position tick.
    let ack = crate::world::LOG_POSITION_INTERVAL_MS;
    let replay = match settling.replay_pending {
        true => crate::actors::peer::RETRY_MS + cluster::longest_replay_window_ms(scenario) + ack,
        false => 0,
    };
    silent.max(serving).max(replay)
}

/// How long a node started again is watched serving, at the least: one
/// persist interval and a margin for the requests then in flight.
pub const RESTARTED_WATCH_MS: u64 = crate::world::PERSIST_INTERVAL_MS + 500;

/// What a message already sent may still take to arrive on a link without
/// latency set: turmoil's largest random latency (100 ms), and a margin for
/// the actor to read it.
pub const IN_FLIGHT_MS: u64 = 150;

/// One broken invariant, with what shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Violation {
    /// Which invariant.
    pub invariant: Invariant,
    /// Simulated ms at which it was broken (or detected).
    pub at_ms: u64,
    /// The node concerned.
    pub node: String,
    /// What must hold and what happened instead.
    pub message: String,
    /// Requests, journal entries, probes or connections that show it.
    pub evidence: Vec<String>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "VIOLATION {} at {} ms on {}: {}",
            self.invariant.name(),
            self.at_ms,
            self.node,
            self.message
        )?;
        for e in &self.evidence {
            writeln!(f, "  evidence: {e}")?;
        }
        Ok(())
    }
}

/// Runs every oracle over a run.
pub fn check(scenario: &Scenario, record: &RunRecord) -> Vec<Violation> {
    let mut v = Vec::new();
    v.extend(lifecycle::no_mutation_after_stop(record));
    v.extend(lifecycle::started_work_finishes(record));
    v.extend(lifecycle::stop_bounded(record));
    v.extend(listener::listener_closed(record));
    v.extend(http::responses_tell_the_truth(record));
    v.extend(cluster::nothing_acknowledged_is_lost(scenario, record));
    v.extend(tasks::all_tasks_end(scenario, record));
    v.extend(silent::silent_after_stop(record));
    v.extend(lifecycle::no_panic(record));
    v.extend(canary(scenario));
    v
}

/// Compares the traces of two runs of one scenario: they must be equal.
pub fn deterministic(first: &[TraceLine], second: &[TraceLine]) -> Option<Violation> {
    (first != second).then(|| Violation {
        invariant: Invariant::Deterministic,
        at_ms: first.iter().zip(second).find(|(x, y)| x != y).map_or(0, |(x, _)| x.at_ms),
        node: String::new(),
        message: "the same scenario must give the same trace".into(),
        evidence: vec![format!("digests {} and {}", digest(first), digest(second))],
    })
}

/// The canary of the bug zoo: a planted failure on every thousandth seed, so
/// a campaign that reports nothing can be told from one that cannot report.
fn canary(scenario: &Scenario) -> Option<Violation> {
    let on = scenario.bugs.iter().any(|b| matches!(b, quiesce::bugs::Bug::Canary));
    (on && scenario.seed.is_multiple_of(1000)).then(|| Violation {
        invariant: Invariant::Canary,
        at_ms: 0,
        node: String::new(),
        message: format!("the canary fires for every seed divisible by 1000 (seed {})", scenario.seed),
        evidence: vec![],
    })
}

/// Milliseconds between the simulation's epoch and a journal time.
pub(crate) fn journal_ms(time: f64) -> u64 {
    let since = time - crate::env::EPOCH_SECS as f64;
    (since.max(0.0) * 1000.0).round() as u64
}
