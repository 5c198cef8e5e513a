//! The oracles of harness section 4. Each reads a [`RunRecord`] and returns
//! the violations it finds, with the time and the evidence. They are pure, so
//! each can be shown to fire on a hand-made record.

mod cluster;
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

/// How long a run must go on after every node is done (started, or stopped
/// with its tasks ended, or restarted) for every oracle's window to close:
/// silent-after-stop's watch, and the time for a peer to reconnect and for
/// its whole backlog to be replayed (after a restart, a bounce, or a crash
/// a chaos rule restarts: asked of every world with peers). The world ends
/// a run then, or earlier once every actor has ended, instead of idling to
/// the scenario's duration.
pub fn settle_ms(scenario: &Scenario) -> u64 {
    // A replay after a restart first waits out the peer's retry.
    let replay = crate::actors::peer::RETRY_MS + cluster::longest_replay_window_ms(scenario);
    silent::WATCH_AFTER_DONE_MS.max(replay)
}

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
