//! Oracle 4, listener-closed: nothing registers after the acceptors are
//! closed, every accept loop ends, and a failing accept never spins.

use quiesce::probe::{Probe, StopStep};

use super::{Invariant, Violation};
use crate::record::{Incarnation, RunRecord};

/// Accept errors allowed after close, per acceptor (one log line per failure).
const MAX_ERRORS_AFTER_CLOSE: usize = 1;

/// 4. The listener is really closed.
pub fn listener_closed(record: &RunRecord) -> Vec<Violation> {
    let mut out = Vec::new();
    for (node, incs) in &record.nodes {
        for inc in incs {
            out.extend(registered_after_close(node, inc));
            out.extend(loops_ended(node, inc));
            out.extend(no_spin(node, inc));
        }
    }
    out
}

fn closed_at(inc: &Incarnation) -> Option<usize> {
    inc.probe_index(|p| matches!(p, Probe::Stop { step: StopStep::AcceptorsClosed }))
}

fn registered_after_close(node: &str, inc: &Incarnation) -> Vec<Violation> {
    let Some(closed) = closed_at(inc) else { return vec![] };
    inc.probes[closed..]
        .iter()
        .filter_map(|(at, p)| match p {
            Probe::Registered { conn, kind } => Some(Violation {
                invariant: Invariant::ListenerClosed,
                at_ms: *at,
                node: node.to_string(),
                message: format!(
                    "no connection may register after the acceptors closed; connection {conn} did"
                ),
                evidence: vec![format!("connection {conn} registered as {kind:?} at {at} ms, after close")],
            }),
            _ => None,
        })
        .collect()
}

fn loops_ended(node: &str, inc: &Incarnation) -> Option<Violation> {
    let joined = inc.probe_index(|p| matches!(p, Probe::Stop { step: StopStep::ListenerJoined }))?;
    let started = inc.probes.iter().filter(|(_, p)| matches!(p, Probe::ListenerStarted { .. })).count();
    let exited =
        inc.probes[..joined].iter().filter(|(_, p)| matches!(p, Probe::AcceptLoopExited { .. })).count();
    (exited < started).then(|| Violation {
        invariant: Invariant::ListenerClosed,
        at_ms: inc.probes[joined].0,
        node: node.to_string(),
        message: format!(
            "every accept loop must end before the listener join returns; {exited} of {started} had"
        ),
        evidence: vec![],
    })
}

fn no_spin(node: &str, inc: &Incarnation) -> Option<Violation> {
    let closed = closed_at(inc)?;
    let errors: Vec<_> =
        inc.probes[closed..].iter().filter(|(_, p)| matches!(p, Probe::AcceptError { .. })).collect();
    let acceptors = inc.probes.iter().filter(|(_, p)| matches!(p, Probe::ListenerStarted { .. })).count();
    (errors.len() > MAX_ERRORS_AFTER_CLOSE * acceptors.max(1)).then(|| Violation {
        invariant: Invariant::ListenerClosed,
        at_ms: errors.last().map(|(at, _)| *at).unwrap_or(0),
        node: node.to_string(),
        message: format!(
            "a closed acceptor must end its accept loop, not spin; {} accept errors after close",
            errors.len()
        ),
        evidence: errors.iter().take(3).map(|(at, p)| format!("{at} ms: {p:?}")).collect(),
    })
}
