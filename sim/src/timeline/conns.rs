//! Connection rows: each connection a node accepted, from accept through
//! registration to close, with the requests and messages it carried; and
//! which client request each of its answers was.

use std::collections::BTreeMap;
use std::fmt;

use quiesce::probe::{ConnId, ConnKind, Probe};
use quiesce::store::{JournalEntry, Origin};

use super::model::{outcome_class, request_tip, status_class, Item, NodeLife, Row, RowKind, Shape};
use crate::oracles::journal_ms;
use crate::record::{Outcome, RequestRecord, RunRecord};

/// A request as a node saw it: which incarnation, connection and request on it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerSide {
    /// The node.
    pub node: String,
    /// The incarnation's index (0 for the first).
    pub inc: usize,
    /// The connection.
    pub conn: ConnId,
    /// The request's number on the connection.
    pub request: u64,
}

impl fmt::Display for ServerSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} incarnation {} c{} r{}", self.node, self.inc + 1, self.conn, self.request)
    }
}

/// Which client request each answer of a node was, where that can be told:
/// from the journal, whose entries carry the client's request id, or from
/// the only answer that fits a request when it fits no other request.
#[derive(Debug, Default)]
pub struct Links {
    by_request: BTreeMap<usize, ServerSide>,
    by_server: BTreeMap<ServerSide, usize>,
}

impl Links {
    /// Every link the run's record shows.
    pub fn new(record: &RunRecord) -> Links {
        let mut links = Links::default();
        for (side, id) in journal_ids(record) {
            if let Some(i) = record.requests.iter().position(|r| r.id == id && r.node == side.node) {
                links.add(i, side);
            }
        }
        links.add_unique_matches(record);
        links
    }

    fn add(&mut self, request: usize, side: ServerSide) {
        if self.by_request.contains_key(&request) || self.by_server.contains_key(&side) {
            return;
        }
        self.by_server.insert(side.clone(), request);
        self.by_request.insert(request, side);
    }

    /// Where request `i` (an index into the record's requests) was answered.
    pub fn server(&self, i: usize) -> Option<&ServerSide> {
        self.by_request.get(&i)
    }

    /// Which request an answer was.
    pub fn client(&self, side: &ServerSide) -> Option<usize> {
        self.by_server.get(side).copied()
    }

    fn add_unique_matches(&mut self, record: &RunRecord) {
        let answers: Vec<Answer> =
            answers(record).into_iter().filter(|a| !self.by_server.contains_key(&a.side)).collect();
        let candidates: Vec<(usize, Vec<usize>)> = (0..record.requests.len())
            .filter(|i| !self.by_request.contains_key(i))
            .map(|i| (i, (0..answers.len()).filter(|&j| fits(&record.requests[i], &answers[j])).collect()))
            .collect();
        let mut claims: BTreeMap<usize, usize> = BTreeMap::new();
        for j in candidates.iter().flat_map(|(_, c)| c) {
            *claims.entry(*j).or_default() += 1;
        }
        for (i, c) in candidates {
            if let [j] = c[..] {
                if claims.get(&j) == Some(&1) {
                    self.add(i, answers[j].side.clone());
                }
            }
        }
    }
}

/// Every journal entry's request id, with where the request came in.
fn journal_ids(record: &RunRecord) -> Vec<(ServerSide, String)> {
    let mut out = Vec::new();
    for (node, incs) in &record.nodes {
        for (inc, entries) in incs.iter().enumerate().map(|(i, x)| (i, &x.journal)) {
            for e in entries {
                if let Origin::Http { conn, request, request_id: Some(id), .. } = &e.origin {
                    let side = ServerSide { node: node.clone(), inc, conn: *conn, request: *request };
                    out.push((side, id.clone()));
                }
            }
        }
    }
    out
}

/// An answer a node wrote.
struct Answer {
    side: ServerSide,
    at: u64,
    method: String,
    path: String,
    status: u16,
}

fn answers(record: &RunRecord) -> Vec<Answer> {
    let mut out = Vec::new();
    for (node, incs) in &record.nodes {
        for (inc, x) in incs.iter().enumerate() {
            for (at, p) in &x.probes {
                if let Probe::HttpResponse { conn, request, method, path, status } = p {
                    let side = ServerSide { node: node.clone(), inc, conn: *conn, request: *request };
                    let (method, path, status) = (method.clone(), path.clone(), *status);
                    out.push(Answer { side, at: *at, method, path, status });
                }
            }
        }
    }
    out
}

/// Whether answer `a` could be the one request `r` got.
fn fits(r: &RequestRecord, a: &Answer) -> bool {
    let Outcome::Response { status, at_ms, .. } = &r.outcome else { return false };
    let path = r.path.split('?').next().unwrap_or(&r.path);
    r.node == a.side.node
        && r.method == a.method
        && path == a.path
        && *status == a.status
        && (r.sent_ms..=*at_ms).contains(&a.at)
}

/// One connection's life as its node's probes tell it.
#[derive(Default)]
struct Life {
    accepted: Option<(u64, String)>,
    registered: Option<(u64, ConnKind)>,
    closed: Option<u64>,
    rejected: Option<u64>,
    events: Vec<Item>,
    /// Work inside the gate, by its label, since when.
    inside: BTreeMap<String, u64>,
}

/// The rows of an incarnation's connections; one still open when it ended ends there.
pub fn rows(life: &NodeLife, record: &RunRecord, links: &Links) -> Vec<Row> {
    let mut lives: BTreeMap<ConnId, Life> = BTreeMap::new();
    let answers = AnswerMarks { node: life.node, inc: life.index, record, links };
    for (ms, p) in &life.inc.probes {
        track(&mut lives, *ms, p, &answers);
    }
    for e in &life.inc.journal {
        if let Origin::Http { conn, request, .. } = &e.origin {
            lives.entry(*conn).or_default().events.push(write_item(e, *conn, *request));
        }
    }
    lives.into_iter().map(|(conn, l)| l.row(&life.name, conn, life.over)).collect()
}

fn track(lives: &mut BTreeMap<ConnId, Life>, at: u64, p: &Probe, answers: &AnswerMarks) {
    let mut event = |conn: ConnId, item: Item| lives.entry(conn).or_default().events.push(item);
    match p {
        Probe::Rejected { conn, reason } => {
            event(*conn, Item::point(at, "error", format!("c{conn} turned away at {at} ms: {reason}")));
            lives.entry(*conn).or_default().rejected = Some(at);
        }
        Probe::HttpResponse { conn, request, method, path, status } => {
            event(*conn, answers.mark(at, (*conn, *request), &format!("{method} {path}"), *status));
        }
        Probe::GateRefused { work } if work.starts_with("jsonrpc") => {
            let tip = format!("{work}: refused at the gate at {at} ms, dropped");
            if let Some(conn) = work_conn(work) {
                event(conn, Item::point(at, "dropped", tip));
            }
        }
        Probe::JsonRpc { conn, method, outcome } => {
            event(
                *conn,
                Item::point(at, rpc_class(outcome), format!("c{conn} {method} at {at} ms: {outcome}")),
            );
        }
        _ => life_event(lives, at, p),
    }
}

/// Probes that change a connection's state rather than mark an instant on it.
fn life_event(lives: &mut BTreeMap<ConnId, Life>, at: u64, p: &Probe) {
    match p {
        Probe::Accepted { conn, peer } => lives.entry(*conn).or_default().accepted = Some((at, peer.clone())),
        Probe::Registered { conn, kind } => lives.entry(*conn).or_default().registered = Some((at, *kind)),
        Probe::Closed { conn } => lives.entry(*conn).or_default().closed = Some(at),
        Probe::GateEntered { work } => {
            if let Some(conn) = work_conn(work) {
                lives.entry(conn).or_default().inside.insert(work.clone(), at);
            }
        }
        Probe::GateReleased { work } | Probe::WorkTorn { work } => {
            let Some(life) = work_conn(work).map(|c| lives.entry(c).or_default()) else { return };
            let how = if matches!(p, Probe::WorkTorn { .. }) { "torn" } else { "left" };
            if let Some(from) = life.inside.remove(work) {
                life.events.push(gate_item(from, at, work, how));
            }
        }
        _ => {}
    }
}

/// An object a request wrote, as the journal has it.
fn write_item(e: &JournalEntry, conn: ConnId, request: u64) -> Item {
    let at = journal_ms(e.time);
    let (class, sealed) =
        if e.after_seal { ("sealed", ", after Stop sealed the store") } else { ("write", "") };
    let tip = format!(
        "c{conn} r{request} wrote: {} {:?} {} at {at} ms (journal #{}){sealed}",
        e.op, e.otype, e.name, e.seq
    );
    Item { from: at, to: at, shape: Shape::Low, class, tip }
}

/// The connection a piece of gated work names (`http c3 r1 ...`, `jsonrpc c1 ...`).
fn work_conn(work: &str) -> Option<ConnId> {
    work.split_whitespace().nth(1)?.strip_prefix('c')?.parse().ok()
}

fn gate_item(from: u64, to: u64, work: &str, how: &str) -> Item {
    let tip = format!("{work}: inside the work group from {from} ms, {how} at {to} ms");
    Item::span(from, to, Shape::Band, "gate", tip)
}

fn rpc_class(outcome: &str) -> &'static str {
    match outcome {
        "applied" => "applied",
        _ if outcome.starts_with("ignored") => "ignored",
        _ => "error",
    }
}

/// Answers drawn on a connection's row, coloured as the client saw them where the request is known.
struct AnswerMarks<'a> {
    node: &'a str,
    inc: usize,
    record: &'a RunRecord,
    links: &'a Links,
}

impl AnswerMarks<'_> {
    fn mark(&self, at: u64, (conn, request): (ConnId, u64), what: &str, status: u16) -> Item {
        let side = ServerSide { node: self.node.to_string(), inc: self.inc, conn, request };
        let answered = format!("c{conn} r{request} {what} answered {status} at {at} ms");
        match self.links.client(&side).map(|i| &self.record.requests[i]) {
            Some(r) => {
                let tip = format!("{answered}; the client's request {}", request_tip(r, None));
                Item::point(at, outcome_class(&r.outcome), tip)
            }
            None => Item::point(at, status_class(status, &[]), answered),
        }
    }
}

impl Life {
    fn row(mut self, name: &str, conn: ConnId, end: u64) -> Row {
        let kind = self.registered.map_or("unregistered", |(_, k)| kind_name(k));
        let closed = self.closed.or(self.rejected);
        let mut items = Vec::new();
        if let Some((at, peer)) = &self.accepted {
            let until = self.registered.map(|(r, _)| r).or(closed).unwrap_or(end);
            let how =
                self.registered.map_or("never registered".into(), |(r, _)| format!("registered at {r} ms"));
            let tip = format!("c{conn} from {peer}: accepted at {at} ms, {how}");
            items.push(Item::span(*at, until, Shape::Band, "waiting", tip));
        }
        if let Some((at, k)) = self.registered {
            let how = closed.map_or(format!("still open when its node's life ended at {end} ms"), |c| {
                format!("closed at {c} ms")
            });
            let tip = format!("c{conn} ({kind}) registered at {at} ms, {how}");
            items.push(Item::span(at, closed.unwrap_or(end), Shape::Bar, kind_class(k), tip));
            self.events.push(Item::point(at, "reg", format!("c{conn} registered at {at} ms")));
        }
        for (work, from) in std::mem::take(&mut self.inside) {
            self.events.push(gate_item(from, end, &work, "still inside when its node's life ended"));
        }
        // Bands first, so that every instant is drawn over them.
        self.events.sort_by_key(|i| i.shape != Shape::Band);
        items.extend(self.events);
        Row { label: format!("{name} c{conn} {kind}"), kind: RowKind::Connection, items }
    }
}

fn kind_name(k: ConnKind) -> &'static str {
    match k {
        ConnKind::Http => "http",
        ConnKind::Endpoint => "endpoint",
        ConnKind::Anonymous => "anonymous",
    }
}

fn kind_class(k: ConnKind) -> &'static str {
    match k {
        ConnKind::Http => "conn-http",
        ConnKind::Endpoint => "conn-endpoint",
        ConnKind::Anonymous => "conn-anonymous",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gated_work_names_its_connection() {
        assert_eq!(work_conn("http c3 r1 POST /v1/objects/hosts"), Some(3));
        assert_eq!(work_conn("jsonrpc c12 event::CheckResult"), Some(12));
        assert_eq!(work_conn("timer"), None);
    }
}
