//! What the picture shows, before any scale: rows of marks in simulated ms,
//! built from the run record alone.

use std::collections::BTreeMap;

use quiesce::probe::{Probe, StopStep};

use super::conns::{self, Links, ServerSide};
use super::peers;
use crate::record::{Incarnation, Outcome, RequestRecord, RunRecord};
use crate::scenario::{Fault, Scenario};
use crate::trace::outcome_text;

/// How a mark is drawn.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// A bar over the row's height: a life, or a request from sent to answered.
    Bar,
    /// A thin band in the row's middle: waiting, or work inside the gate.
    Band,
    /// An instant, over the row's height.
    Point,
    /// An instant in the row's lower half: a message sent.
    Low,
    /// Per-object outcomes after an answer, one small square each.
    Cells(Vec<(String, u16)>),
}

/// One mark on a row.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// Where it begins (ms).
    pub from: u64,
    /// Where it ends (ms); `from` for an instant.
    pub to: u64,
    /// How it is drawn.
    pub shape: Shape,
    /// Its CSS class, which the legend explains.
    pub class: &'static str,
    /// Its tooltip.
    pub tip: String,
}

impl Item {
    /// A mark from `from` to `to` (never before `from`).
    pub fn span(from: u64, to: u64, shape: Shape, class: &'static str, tip: String) -> Item {
        Item { from, to: to.max(from), shape, class, tip }
    }

    /// An instant.
    pub fn point(at: u64, class: &'static str, tip: String) -> Item {
        Item { from: at, to: at, shape: Shape::Point, class, tip }
    }
}

/// What a row stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowKind {
    /// A node's incarnations.
    Node,
    /// A connection a node accepted.
    Connection,
    /// An HTTP client's requests.
    Client,
    /// A cluster peer's messages.
    Peer,
    /// A misbehaving actor's connection.
    Actor,
}

/// One line of the picture.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Its name, drawn at its left.
    pub label: String,
    /// What it stands for.
    pub kind: RowKind,
    /// Its marks, drawn in order.
    pub items: Vec<Item>,
}

/// Every row of a run: each node followed by its connections, then clients,
/// peers and misbehaving actors.
pub fn rows(scenario: &Scenario, record: &RunRecord) -> Vec<Row> {
    let links = Links::new(record);
    let mut rows = Vec::new();
    for (node, incs) in &record.nodes {
        let ends = life_ends(&crash_times(scenario, node), incs, record.end_ms);
        rows.push(node_row(node, incs, &ends));
        for (index, (inc, (over, _))) in incs.iter().zip(&ends).enumerate() {
            let name = if incs.len() > 1 { format!("{node}#{}", index + 1) } else { node.clone() };
            let life = NodeLife { name, node, index, inc, over: *over };
            rows.extend(conns::rows(&life, record, &links));
        }
    }
    rows.extend(client_rows(record, &links));
    rows.extend(peers::peer_rows(record));
    rows.extend(peers::actor_rows(record));
    rows
}

/// One incarnation of a node, as the rows of its connections need it.
pub struct NodeLife<'a> {
    /// The name its rows carry.
    pub name: String,
    /// The node.
    pub node: &'a str,
    /// The incarnation's index (0 for the first).
    pub index: usize,
    /// The incarnation.
    pub inc: &'a Incarnation,
    /// When its life ended: a crash, its tasks ending after Stop, the next start or the run's end.
    pub over: u64,
}

/// For each incarnation, when its life ended and when the next began (or the run ended).
fn life_ends(crashes: &[u64], incs: &[Incarnation], end: u64) -> Vec<(u64, u64)> {
    let mut crashes = crashes.iter().copied();
    let mut out = Vec::new();
    for (i, inc) in incs.iter().enumerate() {
        let next = incs.get(i + 1).map_or(end, |n| n.started_ms);
        let over = match (inc.crashed, inc.stop_called_ms) {
            (true, _) => crashes.next().unwrap_or(next).min(next),
            (false, Some(_)) => inc.tasks_ended_ms.unwrap_or(next),
            (false, None) => next,
        };
        out.push((over, next));
    }
    out
}

/// When the scenario crashes `node`, in order: the k-th crashed incarnation ended at the k-th.
fn crash_times(scenario: &Scenario, node: &str) -> Vec<u64> {
    let mut times: Vec<u64> = scenario
        .faults
        .iter()
        .filter_map(|f| match f {
            Fault::Crash { node: n, at_ms } | Fault::Bounce { node: n, at_ms } if n == node => Some(*at_ms),
            _ => None,
        })
        .collect();
    times.sort_unstable();
    times
}

fn node_row(node: &str, incs: &[Incarnation], ends: &[(u64, u64)]) -> Row {
    let mut items = Vec::new();
    for (i, (inc, &(over, next))) in incs.iter().zip(ends).enumerate() {
        items.extend(life(i + 1, inc, over));
        if over < next {
            items.push(Item::span(over, next, Shape::Bar, "down", format!("down from {over} to {next} ms")));
        }
        items.extend(node_events(inc));
    }
    Row { label: format!("node {node}"), kind: RowKind::Node, items }
}

/// Incarnation `n`'s life until `over`: running, Stop running, and its tasks after Stop returned.
fn life(n: usize, inc: &Incarnation, over: u64) -> Vec<Item> {
    let start = inc.started_ms;
    let run_to = inc.stop_called_ms.unwrap_or(over);
    let tip = format!("incarnation {n}: running from {start} ms");
    let mut items = vec![Item::span(start, run_to, Shape::Bar, "run", tip)];
    if let Some(called) = inc.stop_called_ms {
        let tip = match inc.stop_returned_ms {
            Some(r) => {
                format!("Stop called at {called} ms, returned at {r} ms ({} ms)", r.saturating_sub(called))
            }
            None => format!("Stop called at {called} ms and never returned"),
        };
        let returned = inc.stop_returned_ms.unwrap_or(over);
        items.push(Item::span(called, returned, Shape::Bar, "stopping", tip));
        if returned < over {
            let tip = match inc.tasks_ended_ms {
                Some(t) => format!("Stop returned at {returned} ms; its tasks ran on until {t} ms"),
                None => format!("Stop returned at {returned} ms; some tasks never ended"),
            };
            items.push(Item::span(returned, over, Shape::Bar, "draining", tip));
        }
    }
    if inc.crashed {
        items.push(Item::point(over, "crash", format!("incarnation {n} crashed at {over} ms")));
    }
    items
}

/// What a node reports that belongs to no connection: failed accepts and panics.
fn node_events(inc: &Incarnation) -> impl Iterator<Item = Item> + '_ {
    inc.probes.iter().filter_map(|(at, p)| match p {
        Probe::AcceptError { addr, error } => {
            Some(Item::point(*at, "error", format!("accept error on {addr} at {at} ms: {error}")))
        }
        Probe::Panic { task, message } => {
            Some(Item::point(*at, "error", format!("panic in {task} at {at} ms: {message}")))
        }
        _ => None,
    })
}

/// The class of a request's outcome, as the legend names it.
pub fn outcome_class(o: &Outcome) -> &'static str {
    match o {
        Outcome::Response { status, results, .. } => status_class(*status, results),
        Outcome::TransportError { .. } => "transport",
        Outcome::NoAnswer => "noanswer",
    }
}

/// The class of an answer: some objects done and some not is `skipped`,
/// whatever the overall status says.
pub fn status_class(status: u16, results: &[(String, u16)]) -> &'static str {
    let ok = |c: u16| (200..300).contains(&c);
    let some_not_done = results.iter().any(|(_, c)| !ok(*c));
    let some_done = results.iter().any(|(_, c)| ok(*c));
    match status {
        _ if some_not_done && (some_done || ok(status)) => "skipped",
        200..=299 => "ok",
        503 => "refused",
        _ => "error",
    }
}

/// When a request was answered or failed, if it was.
fn answered_ms(o: &Outcome) -> Option<u64> {
    match o {
        Outcome::Response { at_ms, .. } | Outcome::TransportError { at_ms, .. } => Some(*at_ms),
        Outcome::NoAnswer => None,
    }
}

fn client_rows(record: &RunRecord, links: &Links) -> Vec<Row> {
    let mut by_actor: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, r) in record.requests.iter().enumerate() {
        by_actor.entry(r.id.split('#').next().unwrap_or(&r.id)).or_default().push(i);
    }
    let items = |requests: Vec<usize>| -> Vec<Item> {
        requests.into_iter().flat_map(|i| request_items(record, i, links.server(i))).collect()
    };
    by_actor
        .into_iter()
        .map(|(actor, requests)| Row {
            label: format!("client {actor}"),
            kind: RowKind::Client,
            items: items(requests),
        })
        .collect()
}

/// A request from sent to answered, and the per-object outcomes after it.
fn request_items(record: &RunRecord, i: usize, server: Option<&ServerSide>) -> Vec<Item> {
    let r = &record.requests[i];
    let answered = answered_ms(&r.outcome).unwrap_or(record.end_ms);
    let tip = request_tip(r, server);
    let mut items = vec![Item::span(r.sent_ms, answered, Shape::Bar, outcome_class(&r.outcome), tip.clone())];
    if let Outcome::Response { results, .. } = &r.outcome {
        if !results.is_empty() {
            items.push(Item::span(answered, answered, Shape::Cells(results.clone()), "cells", tip));
        }
    }
    items
}

/// A request's tooltip: what it was, where it went, and how it ended, object by object.
pub fn request_tip(r: &RequestRecord, server: Option<&ServerSide>) -> String {
    let on = server.map(|s| format!(" (on {s})")).unwrap_or_default();
    let answered = match answered_ms(&r.outcome) {
        Some(at) => format!("ended at {at} ms"),
        None => "not answered when the run ended".into(),
    };
    format!(
        "{} {} {}{on}: sent at {} ms, {answered}: {}",
        r.id,
        r.method,
        r.path,
        r.sent_ms,
        outcome_text(&r.outcome)
    )
}

/// One completed step of Stop on a node.
#[derive(Clone, Debug, PartialEq)]
pub struct StepMark {
    /// The node.
    pub node: String,
    /// When it completed (ms).
    pub at: u64,
    /// Which step.
    pub step: StopStep,
}

/// Every completed Stop step of every node, node by node, in the order reported.
pub fn stop_steps(record: &RunRecord) -> Vec<StepMark> {
    let mut out = Vec::new();
    for (node, incs) in &record.nodes {
        for (at, p) in incs.iter().flat_map(|inc| &inc.probes) {
            if let Probe::Stop { step } = p {
                out.push(StepMark { node: node.clone(), at: *at, step: *step });
            }
        }
    }
    out
}

/// A step's number in the contract and its name.
pub fn step_name(step: StopStep) -> &'static str {
    match step {
        StopStep::Begin => "Begin",
        StopStep::TimersStopped => "1 TimersStopped",
        StopStep::AcceptorsClosed => "2a AcceptorsClosed",
        StopStep::ListenerJoined => "2b ListenerJoined",
        StopStep::JsonRpcDisconnected => "3 JsonRpcDisconnected",
        StopStep::HttpClosing => "4 HttpClosing",
        StopStep::WorkJoinStarted => "5a WorkJoinStarted",
        StopStep::WorkJoined => "5b WorkJoined",
        StopStep::Persisted => "6 Persisted",
        StopStep::Stopped => "7 Stopped",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_with_objects_not_done_is_skipped_whatever_its_status() {
        let r = |codes: &[u16]| codes.iter().map(|c| ("h".to_string(), *c)).collect::<Vec<_>>();
        assert_eq!(status_class(200, &r(&[200, 503])), "skipped");
        assert_eq!(status_class(200, &r(&[503])), "skipped", "a 200 over nothing done hides a skip");
        assert_eq!(status_class(503, &r(&[200, 503])), "skipped");
        assert_eq!(status_class(503, &r(&[503, 503])), "refused");
        assert_eq!(status_class(200, &r(&[200])), "ok");
        assert_eq!(status_class(404, &[]), "error");
    }
}
