//! Oracles on the life of a node: mutations, gates, Stop's duration, tasks, panics.

use std::collections::BTreeMap;

use quiesce::env::Point;
use quiesce::probe::{Probe, StopStep};

use super::{journal_ms, Invariant, Violation};
use crate::record::{Incarnation, RunRecord};

/// Stop may take this long beyond the delays it met (steps, network, scheduling).
pub const STOP_SLACK_MS: u64 = 500;

pub(super) fn incarnations(record: &RunRecord) -> impl Iterator<Item = (&String, &Incarnation)> {
    record.nodes.iter().flat_map(|(n, incs)| incs.iter().map(move |i| (n, i)))
}

/// 1. The journal has no entry once the store was sealed or Stop returned.
pub fn no_mutation_after_stop(record: &RunRecord) -> Vec<Violation> {
    let mut out = Vec::new();
    for (node, inc) in incarnations(record) {
        let returned = inc.stop_returned_ms;
        for e in &inc.journal {
            let at = journal_ms(e.time);
            let late = returned.is_some_and(|r| at > r);
            if e.after_seal || late {
                out.push(Violation {
                    invariant: Invariant::NoMutationAfterStop,
                    at_ms: at,
                    node: node.clone(),
                    message: format!(
                        "no mutation may land after Stop; journal entry {} ({} {}) {}",
                        e.seq,
                        e.op,
                        e.name,
                        if e.after_seal {
                            "was attempted after the seal (the store refused it)"
                        } else {
                            "did"
                        }
                    ),
                    evidence: vec![format!("journal: {}", serde_json::to_string(e).unwrap_or_default())],
                });
            }
        }
    }
    out
}

/// 2. Every work item that entered the work group ran to its end before
///    Stop returned: none still held, none torn while Stop was under way.
pub fn started_work_finishes(record: &RunRecord) -> Vec<Violation> {
    let mut out = Vec::new();
    for (node, inc) in incarnations(record) {
        let Some(end) = inc.probe_index(|p| matches!(p, Probe::Stop { step: StopStep::Stopped })) else {
            continue;
        };
        let begin = inc.probe_index(|p| matches!(p, Probe::Stop { step: StopStep::Begin })).unwrap_or(end);
        let mut open: BTreeMap<&str, u64> = BTreeMap::new();
        for (i, (at, p)) in inc.probes[..=end].iter().enumerate() {
            match p {
                Probe::GateEntered { work } => *open.entry(work).or_default() += 1,
                Probe::GateReleased { work } | Probe::WorkTorn { work } => {
                    if let Some(n) = open.get_mut(work.as_str()) {
                        *n = n.saturating_sub(1);
                    }
                }
                _ => {}
            }
            // A crash tears everything and is not Stop's doing; a tear before
            // Stop began (a client gone) is not a handler cut off by Stop.
            if let (Probe::WorkTorn { work }, false) = (p, inc.crashed || i < begin) {
                out.push(torn(node, inc, *at, work));
            }
        }
        for (work, n) in open.into_iter().filter(|(_, n)| *n > 0) {
            out.push(Violation {
                invariant: Invariant::StartedWorkFinishes,
                at_ms: inc.stop_returned_ms.unwrap_or(0),
                node: node.clone(),
                message: format!(
                    "work that passed its gate must finish before Stop returns; '{work}' had not"
                ),
                evidence: vec![format!("{n} guard(s) of '{work}' still held when Stop returned")],
            });
        }
    }
    out
}

/// A handler torn at Stop: what it had admitted, and what the journal kept of it.
fn torn(node: &str, inc: &Incarnation, at: u64, work: &str) -> Violation {
    let (conn, request) = work_ids(work);
    let journal: Vec<String> = inc
        .journal
        .iter()
        .filter(|e| match &e.origin {
            quiesce::store::Origin::Http { conn: c, request: r, .. } => {
                Some(*c) == conn && Some(*r) == request
            }
            _ => false,
        })
        .map(|e| format!("{} {} (seq {})", e.op, e.name, e.seq))
        .collect();
    Violation {
        invariant: Invariant::StartedWorkFinishes,
        at_ms: at,
        node: node.to_string(),
        message: format!(
            "a handler that passed its gate must run to its end; '{work}' was torn while Stop was under way"
        ),
        evidence: vec![format!("objects the journal has from it: {journal:?}")],
    }
}

/// The connection and request numbers of an HTTP work label (`http c3 r2 ...`).
fn work_ids(work: &str) -> (Option<u64>, Option<u64>) {
    let mut words = work.split(' ').skip(1);
    let num = |w: Option<&str>, p: char| w.and_then(|w| w.strip_prefix(p)).and_then(|n| n.parse().ok());
    (num(words.next(), 'c'), num(words.next(), 'r'))
}

/// How many delays at `point`, one after another, Stop may have to wait
/// through: `Some(n)` the n longest that overlapped Stop count, `None` all of
/// them. A match without a catch-all, so a new point forces a decision.
fn waits_at(point: Point) -> Option<usize> {
    match point {
        // Registrations in flight: the listener join waits for each, once.
        Point::ListenerBeforeRegister => Some(1),
        // A request in flight is answered before Stop returns (step 5b): a
        // pause before its gate, after it, before the one object it may
        // still process, or before its response, each at most once.
        Point::HttpBeforeGate
        | Point::HttpAfterGate
        | Point::HttpBetweenObjects
        | Point::HttpBeforeResponse => Some(1),
        // A filter evaluation pauses as often as it is long; Stop waits for it.
        Point::HttpFilterPause => None,
        // A timer's persist in flight when Stop began, then Stop's own.
        Point::FsBeforeWrite | Point::FsBeforeFsync | Point::FsBeforeRename | Point::FsBeforeDirSync => {
            Some(2)
        }
        // Stop passes each gap between its steps once, and its seal once:
        // every delay there that overlapped Stop is Stop's own time.
        Point::StopBetweenSteps | Point::StopBeforeSeal => None,
        // A timer tick in flight when Stop began, which step 1 awaits.
        Point::TimerPersist | Point::TimerLogPosition => Some(1),
        // A message that entered the gate is handled before the join ends.
        Point::JsonRpcAfterGate => Some(1),
        // Stop never waits for a message before its gate, nor for the writer.
        Point::JsonRpcBeforeHandle | Point::JsonRpcBeforeWrite => Some(0),
        // A handshake holds no gate (Stop cancels it), and no step of Stop
        // waits for a connection's goodbye.
        Point::TlsAfterClientHello | Point::TlsBeforeCloseNotify => Some(0),
    }
}

/// The bound of one Stop, from the run: what the delays chaos applied while
/// Stop was under way (until `until`) may add, point by point, plus a slack.
pub fn stop_bound(inc: &Incarnation, called: u64, until: u64) -> u64 {
    let mut by_point: BTreeMap<Point, Vec<u64>> = BTreeMap::new();
    for d in inc.delays.iter().filter(|d| d.end_ms() > called && d.at_ms <= until) {
        by_point.entry(d.point).or_default().push(d.ms);
    }
    let waited: u64 = by_point
        .into_iter()
        .map(|(point, mut ms)| {
            ms.sort_unstable_by(|a, b| b.cmp(a));
            ms.iter().take(waits_at(point).unwrap_or(usize::MAX)).sum::<u64>()
        })
        .sum();
    waited + STOP_SLACK_MS
}

/// 3. Stop returned within what the delays it really met can explain, plus a constant.
pub fn stop_bounded(record: &RunRecord) -> Vec<Violation> {
    let mut out = Vec::new();
    for (node, inc) in incarnations(record) {
        // A crash ended this incarnation, not its Stop.
        let Some(called) = inc.stop_called_ms.filter(|_| !inc.crashed) else { continue };
        let until = inc.stop_returned_ms.unwrap_or(record.end_ms);
        let bound = stop_bound(inc, called, until);
        let took = inc.stop_returned_ms.map(|r| r - called);
        if took.is_some_and(|t| t <= bound) || (took.is_none() && record.end_ms < called + bound) {
            continue;
        }
        let message = match took {
            Some(t) => format!("Stop must return within {bound} ms; it took {t} ms"),
            None => format!("Stop must return within {bound} ms; it had not returned when the run ended"),
        };
        // Every step with its time shows where Stop waited.
        let steps: Vec<String> = inc
            .probes
            .iter()
            .filter_map(|(at, p)| match p {
                Probe::Stop { step } => Some(format!("{step:?}@{at}")),
                _ => None,
            })
            .collect();
        let delays: Vec<String> = inc
            .delays
            .iter()
            .filter(|d| d.end_ms() > called && d.at_ms <= until)
            .map(|d| format!("{}@{}+{}", d.point, d.at_ms, d.ms))
            .collect();
        out.push(Violation {
            invariant: Invariant::StopBounded,
            at_ms: called + bound,
            node: node.clone(),
            message,
            evidence: vec![
                format!("Stop steps (ms): {}", steps.join(" ")),
                format!("chaos delays met while Stop was under way: {}", delays.join(" ")),
            ],
        });
    }
    out
}

/// 8. No task panicked, and the simulation itself had no error.
pub fn no_panic(record: &RunRecord) -> Vec<Violation> {
    let mut out = Vec::new();
    for (node, inc) in incarnations(record) {
        for (at, p) in &inc.probes {
            if let Probe::Panic { task, message } = p {
                out.push(Violation {
                    invariant: Invariant::NoPanic,
                    at_ms: *at,
                    node: node.clone(),
                    message: format!("no task may panic; '{task}' did: {message}"),
                    evidence: vec![],
                });
            }
        }
    }
    for e in &record.sim_errors {
        out.push(Violation {
            invariant: Invariant::NoPanic,
            at_ms: record.end_ms,
            node: String::new(),
            message: format!("the simulation reported an error: {e}"),
            evidence: vec![],
        });
    }
    out
}
