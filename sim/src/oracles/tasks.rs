//! Oracle 7, all-tasks-end: every task of a stopped node ends within 15 s of
//! Stop returning, and each kind of connection is closed within its own
//! bound from the contract: idle ones and half-sent heads at once when Stop
//! reaches HTTP, responses and event streams in flight within the HTTP close
//! cap, JSON-RPC connections within the writer's 5 s plus 10 s to close, and
//! connections still being sniffed within the connect timeout.

use std::collections::BTreeMap;

use quiesce::config::Timings;
use quiesce::probe::{ConnId, ConnKind, Probe, StopStep};

use super::lifecycle::incarnations;
use super::{Invariant, Violation};
use quiesce::env::Point;

use crate::actors::http::ANONYMOUS_PEER;
use crate::env::ChaosAction;
use crate::record::{ConnectionEnd, Incarnation, RunRecord};
use crate::scenario::{Fault, Scenario};

/// Every task must end this long after Stop returned (5 s writer + 10 s close).
pub const TASKS_END_MS: u64 = 15_000;

/// 7. Every task and registered connection of a stopped node ended in
///    time, and idle connections were closed at once.
pub fn all_tasks_end(scenario: &Scenario, record: &RunRecord) -> Vec<Violation> {
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
    out.extend(idle_connections_closed(scenario, record));
    out.extend(anonymous_connections_closed(scenario, record));
    out.extend(connections_closed_in_bounds(scenario, record));
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
fn idle_connections_closed(scenario: &Scenario, record: &RunRecord) -> Vec<Violation> {
    let mut out = Vec::new();
    for end in record.connection_ends.iter().filter(|e| e.kind == "idle_keep_alive") {
        let (Some(incs), Some(addr)) = (record.nodes.get(&end.node), end.local_addr.as_deref()) else {
            continue;
        };
        let bound = IDLE_CLOSE_MS + goodbye_ms(scenario, end);
        for inc in incs {
            out.extend(idle_closed_in(inc, (&end.node, &end.actor, addr), bound));
        }
    }
    out
}

/// Over TLS a connection whose client reads (idle keep-alive, anonymous
/// peer) ends once the client answers close_notify: a round trip after any
/// delay before the goodbye's close_notify, unless the client's link is
/// cut; then at most the goodbye's cap.
fn goodbye_ms(scenario: &Scenario, end: &ConnectionEnd) -> u64 {
    let paused = scenario.chaos.iter().filter(|r| r.point == Point::TlsBeforeCloseNotify);
    let paused = paused.map(|r| if let ChaosAction::Delay { ms } = r.action { ms } else { 0 }).max();
    match (scenario.tls, link_cut(scenario, Some(end))) {
        (false, _) => 0,
        (true, false) => ROUND_TRIP_MS + paused.unwrap_or(0),
        (true, true) => Timings::default().http_close_cap.as_millis() as u64,
    }
}

/// turmoil's largest default message latency, there and back.
const ROUND_TRIP_MS: u64 = 2 * 100;

/// The close of the idle connection from `addr`, if `inc` had it when Stop
/// reached the HTTP step.
fn idle_closed_in(
    inc: &Incarnation,
    (node, actor, addr): (&str, &str, &str),
    bound: u64,
) -> Option<Violation> {
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
    let deadline = closing + bound;
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

/// An anonymous peer that reads everything is closed when Stop reaches the
/// JSON-RPC step, not left to its lifetime: its writer has no message the
/// peer would not take at once, so the close waits only for the chaos
/// delays on the JSON-RPC path. Judged by the node's own probes.
fn anonymous_connections_closed(scenario: &Scenario, record: &RunRecord) -> Vec<Violation> {
    let mut out = Vec::new();
    let reading = record.connection_ends.iter().filter(|e| e.kind == ANONYMOUS_PEER);
    for end in reading.filter(|e| !link_cut(scenario, Some(e))) {
        let (Some(incs), Some(addr)) = (record.nodes.get(&end.node), end.local_addr.as_deref()) else {
            continue;
        };
        for inc in incs.iter().filter(|i| !i.crashed) {
            out.extend(anonymous_closed_in(scenario, (inc, record.end_ms), end, addr));
        }
    }
    out
}

/// The close of the anonymous connection from `addr`, if `inc` had it
/// registered when Stop told every JSON-RPC connection to go.
fn anonymous_closed_in(
    scenario: &Scenario,
    (inc, end_ms): (&Incarnation, u64),
    end: &ConnectionEnd,
    addr: &str,
) -> Option<Violation> {
    let step = inc.probe_index(|p| matches!(p, Probe::Stop { step: StopStep::JsonRpcDisconnected }))?;
    let told = inc.probes[step].0;
    let before = &inc.probes[..step];
    let conn = before.iter().find_map(|(_, p)| match p {
        Probe::Accepted { conn, peer } if peer == addr => Some(*conn),
        _ => None,
    })?;
    before
        .iter()
        .find(|(_, p)| matches!(p, Probe::Registered { conn: c, kind: ConnKind::Anonymous } if *c == conn))?;
    let closed = inc
        .probes
        .iter()
        .find_map(|(at, p)| matches!(p, Probe::Closed { conn: c } if *c == conn).then_some(*at));
    let deadline = told + SLACK_MS + jsonrpc_delays_ms(scenario, &end.node) + goodbye_ms(scenario, end);
    let in_time = match closed {
        Some(c) => c <= deadline,
        // Not judged: the run, or the host, ended before the deadline.
        None => inc.host_down_ms.is_some_and(|down| down < deadline) || end_ms < deadline,
    };
    (!in_time).then(|| Violation {
        invariant: Invariant::AllTasksEnd,
        at_ms: deadline,
        node: end.node.clone(),
        message: "an anonymous cluster connection must be closed when Stop reaches the JSON-RPC step".into(),
        evidence: vec![format!(
            "actor {}: connection c{conn}, JSON-RPC step at {told} ms, node closed it at {}",
            end.actor,
            closed.map(|c| format!("{c} ms")).unwrap_or_else(|| "never".into())
        )],
    })
}

/// Every delay a chaos rule may add on `node`'s JSON-RPC path, each rule once.
fn jsonrpc_delays_ms(scenario: &Scenario, node: &str) -> u64 {
    let on_path = |p: Point| {
        matches!(p, Point::JsonRpcBeforeHandle | Point::JsonRpcAfterGate | Point::JsonRpcBeforeWrite)
    };
    let rules =
        scenario.chaos.iter().filter(|r| on_path(r.point) && r.host.as_deref().is_none_or(|h| h == node));
    rules
        .map(|r| match r.action {
            ChaosAction::Delay { ms } => ms,
            _ => 0,
        })
        .sum()
}

/// An event stream's end reaches its client this soon after the HTTP step:
/// the last line and the end of the body, read at the client's pace.
const EVENT_STREAM_END_MS: u64 = 2_000;

/// Slack for scheduling and the network inside a bound.
const SLACK_MS: u64 = 500;

/// What one connection of a node was, for its bound.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// A client that sent half a request head (registered before HTTP's step).
    HalfRequest,
    /// An event stream: it ends at the HTTP step, after its last complete line.
    EventStream,
    /// An HTTP connection: a request in flight, a slow reader.
    Http,
    /// A JSON-RPC connection, endpoint or anonymous.
    JsonRpc,
    /// Accepted, never registered: still being sniffed.
    Sniffing,
}

/// One connection's life on a node, from its probes.
#[derive(Default)]
struct Life {
    accepted: Option<(u64, String)>,
    registered: Option<(usize, ConnKind)>,
    closed: Option<u64>,
}

fn lives(inc: &Incarnation) -> BTreeMap<ConnId, Life> {
    let mut lives: BTreeMap<ConnId, Life> = BTreeMap::new();
    for (i, (at, p)) in inc.probes.iter().enumerate() {
        match p {
            Probe::Accepted { conn, peer } => {
                lives.entry(*conn).or_default().accepted = Some((*at, peer.clone()))
            }
            Probe::Registered { conn, kind } => lives.entry(*conn).or_default().registered = Some((i, *kind)),
            Probe::Closed { conn } => {
                lives.entry(*conn).or_default().closed.get_or_insert(*at);
            }
            _ => {}
        }
    }
    lives
}

/// Each connection open when Stop began was closed within its kind's bound.
fn connections_closed_in_bounds(scenario: &Scenario, record: &RunRecord) -> Vec<Violation> {
    let mut out = Vec::new();
    for (node, inc) in incarnations(record).filter(|(_, i)| !i.crashed) {
        let step = |s: StopStep| inc.probe_index(|p| matches!(p, Probe::Stop { step } if *step == s));
        let (Some(begin), Some(http), Some(jsonrpc)) =
            (step(StopStep::Begin), step(StopStep::HttpClosing), step(StopStep::JsonRpcDisconnected))
        else {
            continue;
        };
        for (conn, life) in lives(inc) {
            if life.closed.is_some_and(|c| c < inc.probes[begin].0) {
                continue;
            }
            let Some((kind, deadline)) = bound(scenario, record, inc, &life, (http, jsonrpc)) else {
                continue;
            };
            if life.closed.is_none() && inc.host_down_ms.is_some_and(|down| down < deadline) {
                // The host went down (after Stop returned) with the connection
                // still in its bound: the crash, not the node, ended it.
                continue;
            }
            let late = match life.closed {
                Some(c) => c > deadline,
                None => record.end_ms >= deadline,
            };
            if late {
                out.push(Violation {
                    invariant: Invariant::AllTasksEnd,
                    at_ms: deadline,
                    node: node.clone(),
                    message: format!("a {kind:?} connection must be closed by {deadline} ms once Stop began; c{conn} was not"),
                    evidence: vec![format!(
                        "c{conn} from {}, closed {}",
                        life.accepted.as_ref().map_or("?", |(_, p)| p.as_str()),
                        life.closed.map(|c| format!("at {c} ms")).unwrap_or_else(|| "never".into())
                    )],
                });
            }
        }
    }
    out
}

/// The kind of a connection and the time by which it must be closed.
fn bound(
    scenario: &Scenario,
    record: &RunRecord,
    inc: &Incarnation,
    life: &Life,
    (http, jsonrpc): (usize, usize),
) -> Option<(Kind, u64)> {
    let t = Timings::default();
    let ms = |d: std::time::Duration| d.as_millis() as u64;
    let (accepted, peer) = life.accepted.as_ref()?;
    let actor = record.connection_ends.iter().find(|e| e.local_addr.as_deref() == Some(peer.as_str()));
    let kind = match (life.registered, actor.map(|a| a.kind.as_str())) {
        (None, _) => Kind::Sniffing,
        (Some((_, ConnKind::Endpoint | ConnKind::Anonymous)), _) => Kind::JsonRpc,
        (Some((at, ConnKind::Http)), Some("half_request")) if at < http => Kind::HalfRequest,
        // A stream whose client's link is cut may take up to the write timeout.
        (Some((_, ConnKind::Http)), Some("event_stream")) if !link_cut(scenario, actor) => Kind::EventStream,
        (Some((_, ConnKind::Http)), _) => Kind::Http,
    };
    let at = |i: usize| inc.probes[i].0;
    // Over TLS a close waits for the peer's close_notify, at most the close
    // cap (Icinga's GracefulDisconnect), where plain TCP closes at once; a
    // connection is sniffed only after its handshake, which has its own
    // timeout. HTTP's close cap already covers its connections' shutdown,
    // and the JSON-RPC close cap its own.
    let (goodbye, handshake) = match scenario.tls {
        true => (ms(t.close_cap), ms(t.tls_handshake_timeout)),
        false => (0, 0),
    };
    let deadline = match kind {
        Kind::HalfRequest => at(http) + goodbye,
        Kind::EventStream => at(http).max(*accepted) + EVENT_STREAM_END_MS + goodbye,
        Kind::Http => at(http).max(*accepted) + ms(t.http_close_cap),
        Kind::JsonRpc => at(jsonrpc).max(*accepted) + ms(t.writer_drain) + ms(t.close_cap),
        Kind::Sniffing => accepted + handshake + ms(t.connect_timeout),
    };
    Some((kind, deadline + SLACK_MS))
}

/// Whether the scenario holds or partitions the link of `actor` at any time.
fn link_cut(scenario: &Scenario, actor: Option<&ConnectionEnd>) -> bool {
    let Some(actor) = actor else { return false };
    scenario.faults.iter().any(|f| match f {
        Fault::Hold { a, b, .. } | Fault::Partition { a, b, .. } => a == &actor.actor || b == &actor.actor,
        Fault::Latency { a, b, ms, .. } => (a == &actor.actor || b == &actor.actor) && *ms > 0,
        Fault::Crash { .. } | Fault::Bounce { .. } | Fault::PowerLoss { .. } => false,
    })
}
