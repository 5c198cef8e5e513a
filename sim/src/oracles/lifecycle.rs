//! Oracles on the life of a node: mutations, gates, Stop's duration, tasks, panics.

use std::collections::BTreeMap;

use quiesce::env::Point;
use quiesce::probe::{Probe, StopStep};

use super::{journal_ms, Invariant, Violation};
use crate::record::{Incarnation, RunRecord};
use crate::scenario::Scenario;

/// Stop may take this long beyond the longest handler in flight.
pub const STOP_SLACK_MS: u64 = 1_000;

/// Every task must end this long after Stop returned (5 s writer + 10 s close).
pub const TASKS_END_MS: u64 = 15_000;

fn incarnations(record: &RunRecord) -> impl Iterator<Item = (&String, &Incarnation)> {
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

/// 2. Every work item that entered the work group left it before Stop returned.
pub fn started_work_finishes(record: &RunRecord) -> Vec<Violation> {
    let mut out = Vec::new();
    for (node, inc) in incarnations(record) {
        let Some(end) = inc.probe_index(|p| matches!(p, Probe::Stop { step: StopStep::Stopped })) else {
            continue;
        };
        let mut open: BTreeMap<&str, u64> = BTreeMap::new();
        for (_, p) in &inc.probes[..end] {
            match p {
                Probe::GateEntered { work } => *open.entry(work).or_default() += 1,
                Probe::GateReleased { work } => {
                    if let Some(n) = open.get_mut(work.as_str()) {
                        *n = n.saturating_sub(1);
                    }
                }
                _ => {}
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

/// The longest delay the chaos schedule can add to one handler, and to
/// Stop's own steps: every rule once, as if all hit one handler, and a
/// rule of a point Stop itself passes as often as Stop can pass it.
fn longest_handler_ms(scenario: &Scenario) -> u64 {
    scenario.chaos.iter().map(|r| r.delay_ms() * stop_hits(r.point, r.hit)).sum()
}

/// Stop's steps but the last, each followed by `stop.between_steps`.
const STOP_GAPS: u64 = 9;

/// How many of a rule's hits one Stop may wait for.
fn stop_hits(point: Point, hit: Option<u64>) -> u64 {
    match (point, hit) {
        (_, Some(_)) => 1,
        (Point::StopBetweenSteps, None) => STOP_GAPS,
        // Stop's own persist, and a timer's persist in flight that step 1 awaits.
        (
            Point::FsBeforeWrite | Point::FsBeforeFsync | Point::FsBeforeRename | Point::FsBeforeDirSync,
            None,
        ) => 2,
        _ => 1,
    }
}

/// 3. Stop returned within the longest handler in flight plus a constant.
pub fn stop_bounded(scenario: &Scenario, record: &RunRecord) -> Vec<Violation> {
    let bound = longest_handler_ms(scenario) + STOP_SLACK_MS;
    let mut out = Vec::new();
    for (node, inc) in incarnations(record) {
        // A crash ended this incarnation, not its Stop.
        let Some(called) = inc.stop_called_ms.filter(|_| !inc.crashed) else { continue };
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
        out.push(Violation {
            invariant: Invariant::StopBounded,
            at_ms: called + bound,
            node: node.clone(),
            message,
            evidence: vec![format!("Stop steps (ms): {}", steps.join(" "))],
        });
    }
    out
}

/// 7. Every task and registered connection of a stopped node ended in
///    time, and idle connections were closed at once.
pub fn all_tasks_end(record: &RunRecord) -> Vec<Violation> {
    let mut out = Vec::new();
    for (node, inc) in incarnations(record) {
        let Some(returned) = inc.stop_returned_ms else { continue };
        let deadline = returned + TASKS_END_MS;
        if inc.host_down_ms.is_some_and(|down| down < deadline && inc.tasks_ended_ms.is_none()) {
            // The host went down before the deadline, with tasks still running: the
            // crash ended them, and what they would have done is not known.
            continue;
        }
        if record.end_ms < deadline && inc.tasks_ended_ms.is_none() {
            continue;
        }
        let open = open_connections(inc);
        if inc.tasks_ended_ms.is_some_and(|t| t <= deadline) && open.is_empty() {
            continue;
        }
        out.push(Violation {
            invariant: Invariant::AllTasksEnd,
            at_ms: deadline,
            node: node.clone(),
            message: format!("every task must end within {TASKS_END_MS} ms of Stop returning; some had not"),
            evidence: open
                .into_iter()
                .map(|c| format!("connection {c} registered and never closed"))
                .collect(),
        });
    }
    out.extend(idle_connections_closed(record));
    out
}

fn open_connections(inc: &Incarnation) -> Vec<u64> {
    let mut open = std::collections::BTreeSet::new();
    for (_, p) in &inc.probes {
        match p {
            Probe::Registered { conn, .. } => {
                open.insert(*conn);
            }
            Probe::Closed { conn } => {
                open.remove(conn);
            }
            _ => {}
        }
    }
    open.into_iter().collect()
}

/// Slack for an idle connection's close to reach the client.
const IDLE_CLOSE_MS: u64 = 500;

/// Idle keep-alive connections must be closed at Stop, not by a timeout later.
/// Judged by the node's own probes, so that network faults cannot blur it.
fn idle_connections_closed(record: &RunRecord) -> Vec<Violation> {
    let mut out = Vec::new();
    for end in record.connection_ends.iter().filter(|e| e.kind == "idle_keep_alive") {
        let (Some(incs), Some(addr)) = (record.nodes.get(&end.node), end.local_addr.as_deref()) else {
            continue;
        };
        for inc in incs {
            out.extend(idle_closed_in(inc, &end.node, &end.actor, addr));
        }
    }
    out
}

/// The close of the idle connection from `addr`, if `inc` had it when Stop
/// reached the HTTP step.
fn idle_closed_in(inc: &Incarnation, node: &str, actor: &str, addr: &str) -> Option<Violation> {
    let step = inc.probe_index(|p| matches!(p, Probe::Stop { step: StopStep::HttpClosing }))?;
    let closing = inc.probes[step].0;
    let conn = inc.probes[..step].iter().find_map(|(_, p)| match p {
        Probe::Accepted { conn, peer } if peer == addr => Some(*conn),
        _ => None,
    })?;
    // Idle means its one request was already answered; one still in flight
    // may finish first, which is the contract too.
    inc.probes[..step]
        .iter()
        .find(|(_, p)| matches!(p, Probe::HttpResponse { conn: c, .. } if *c == conn))?;
    let closed = inc
        .probes
        .iter()
        .find_map(|(at, p)| matches!(p, Probe::Closed { conn: c } if *c == conn).then_some(*at));
    let deadline = closing + IDLE_CLOSE_MS;
    if closed.is_some_and(|c| c <= deadline)
        || (closed.is_none() && inc.probes.last().is_some_and(|(at, _)| *at < deadline))
    {
        return None;
    }
    Some(Violation {
        invariant: Invariant::AllTasksEnd,
        at_ms: deadline,
        node: node.to_string(),
        message: "an idle keep-alive connection must be closed when Stop reaches the HTTP step".into(),
        evidence: vec![format!(
            "actor {actor}: connection c{conn}, HTTP step at {closing} ms, node closed it at {}",
            closed.map(|c| format!("{c} ms")).unwrap_or_else(|| "never".into())
        )],
    })
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
