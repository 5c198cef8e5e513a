//! Oracle silent-after-stop: once Stop has returned, the node is silent. No
//! response head, no JSON-RPC message begun (a log position acknowledgement,
//! a reply, a heartbeat), no journal entry, no state file written.

use quiesce::probe::{Probe, StopStep};

use super::{journal_ms, Invariant, Violation};
use crate::record::{Incarnation, RunRecord};

/// How long a run goes on after every node is done (Stop returned and the
/// stopped node's tasks ended) while some task is still alive on a stopped
/// node, so that this oracle can hear a write that escaped Stop: longer than
/// the longest interval of the simulated node's writing timers (persist and
/// log positions, 1 s each). A tick that chaos also delays past it is not
/// heard.
pub const WATCH_AFTER_DONE_MS: u64 = WRITING_TIMERS_MS + 1_000;

const WRITING_TIMERS_MS: u64 = if crate::world::PERSIST_INTERVAL_MS > crate::world::LOG_POSITION_INTERVAL_MS {
    crate::world::PERSIST_INTERVAL_MS
} else {
    crate::world::LOG_POSITION_INTERVAL_MS
};

/// Every incarnation that saw Stop return stays silent after it.
pub fn silent_after_stop(record: &RunRecord) -> Vec<Violation> {
    let mut out = Vec::new();
    for (node, incs) in &record.nodes {
        for inc in incs {
            out.extend(noise(node, inc));
        }
    }
    out
}

/// What `inc` said or wrote after Stop returned.
fn noise(node: &str, inc: &Incarnation) -> Vec<Violation> {
    let Some(stopped) = inc.probe_index(|p| matches!(p, Probe::Stop { step: StopStep::Stopped })) else {
        return vec![];
    };
    let returned = inc.stop_returned_ms.unwrap_or(inc.probes[stopped].0);
    let mut out = Vec::new();
    let mut say = |at_ms: u64, what: String| {
        out.push(Violation {
            invariant: Invariant::SilentAfterStop,
            at_ms,
            node: node.to_string(),
            message: format!("nothing may leave the node after Stop returned (at {returned} ms); {what}"),
            evidence: vec![],
        })
    };
    for (at, p) in &inc.probes[stopped + 1..] {
        match p {
            Probe::HttpResponse { conn, request, method, path, status } => {
                say(*at, format!("c{conn} r{request} {method} {path} was answered {status}"))
            }
            Probe::JsonRpcWrite { conn, method } => say(*at, format!("c{conn} began writing '{method}'")),
            Probe::FileWritten { path } => say(*at, format!("{path} was written")),
            _ => {}
        }
    }
    for e in inc.journal.iter().filter(|e| journal_ms(e.time) > returned) {
        say(journal_ms(e.time), format!("journal entry {} ({} {}) was recorded", e.seq, e.op, e.name));
    }
    out
}
