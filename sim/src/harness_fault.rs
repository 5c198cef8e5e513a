//! Faults planted in the harness itself (the scenario's `harness_fault`): a
//! panic at a chosen place, or a trace that differs from run to run. Tests
//! use them to show that a campaign reports trouble in its own machinery.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::actors::http::sleep_until_ms;
use crate::recorder::Recorder;
use crate::scenario::{HarnessFault, PanicSite, Scenario};

/// Runs of a nondeterministic world in this process; its trace line counts them.
static RUNS: AtomicU64 = AtomicU64::new(0);

/// When a panic is planted at `site`, if one is.
fn planted(s: &Scenario, site: PanicSite) -> Option<u64> {
    match s.harness_fault {
        Some(HarnessFault::Panic { site: at, at_ms }) if at == site => Some(at_ms),
        _ => None,
    }
}

fn boom(site: PanicSite) -> ! {
    panic!("planted harness panic at {site:?} (scenario field harness_fault)")
}

/// Panics now if the scenario plants a panic at `site`.
pub fn check(s: &Scenario, site: PanicSite) {
    if planted(s, site).is_some() {
        boom(site)
    }
}

/// What the stopped node's host runs beside its main future: the
/// nondeterministic line, and a panic planted in a task or in the future.
pub async fn on_node(s: &Scenario, rec: &Recorder, node: &str) {
    if node != s.stop.node {
        return;
    }
    if s.harness_fault == Some(HarnessFault::Nondeterministic) {
        rec.line(node, format!("harness run {} in this process", RUNS.fetch_add(1, Ordering::Relaxed)));
    }
    if let Some(at_ms) = planted(s, PanicSite::Timer) {
        tokio::task::spawn_local(async move {
            sleep_until_ms(at_ms).await;
            boom(PanicSite::Timer)
        });
    }
    if let Some(at_ms) = planted(s, PanicSite::NodeMain) {
        sleep_until_ms(at_ms).await;
        boom(PanicSite::NodeMain)
    }
}

/// An actor that panics, if the scenario plants one.
pub fn actor(s: &Scenario) -> Option<impl Future<Output = ()>> {
    let at_ms = planted(s, PanicSite::Actor)?;
    Some(async move {
        sleep_until_ms(at_ms).await;
        boom(PanicSite::Actor)
    })
}
