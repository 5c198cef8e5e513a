//! The trace: the ordered events that matter, as text, and its digest. The
//! same seed must give the same bytes.

use quiesce::probe::Probe;
use quiesce::store::{JournalEntry, Origin};
use sha2::{Digest, Sha256};

use crate::record::{Event, Outcome, TraceLine};

/// One line of a probe, stable and short.
pub fn probe_line(p: &Probe) -> String {
    match p {
        Probe::ListenerStarted { addr } => format!("listener started {addr}"),
        Probe::AcceptError { addr, error } => format!("accept error on {addr}: {error}"),
        Probe::AcceptLoopExited { addr } => format!("accept loop exited {addr}"),
        Probe::Accepted { conn, peer } => format!("accepted c{conn} from {peer}"),
        Probe::Rejected { conn, reason } => format!("rejected c{conn}: {reason}"),
        Probe::Registered { conn, kind } => format!("registered c{conn} {kind:?}"),
        Probe::Closed { conn } => format!("closed c{conn}"),
        Probe::Stop { step } => format!("stop: {step:?}"),
        Probe::GateEntered { work } => format!("gate entered: {work}"),
        Probe::GateRefused { work } => format!("gate refused: {work}"),
        Probe::GateReleased { work } => format!("gate released: {work}"),
        Probe::WorkTorn { work } => format!("WORK TORN (guard dropped unfinished): {work}"),
        Probe::JsonRpcWrite { conn, method } => format!("json-rpc c{conn} writes {method}"),
        Probe::FileWritten { path } => format!("file written {path}"),
        Probe::HttpResponse { conn, request, method, path, status } => {
            format!("response c{conn} r{request} {method} {path} -> {status}")
        }
        Probe::JsonRpc { conn, method, outcome } => format!("json-rpc c{conn} {method}: {outcome}"),
        Probe::Panic { task, message } => format!("PANIC in {task}: {message}"),
        Probe::Note { what } => what.clone(),
    }
}

/// Who caused a mutation, as a journal line says it.
pub fn origin_text(o: &Origin) -> String {
    match o {
        Origin::Http { conn, request, request_id: Some(id), .. } => format!("http c{conn} r{request} {id}"),
        Origin::Http { conn, request, request_id: None, .. } => format!("http c{conn} r{request}"),
        Origin::Cluster { conn, identity, ts: Some(ts) } => format!("cluster c{conn} {identity} ts={ts:.3}"),
        Origin::Cluster { conn, identity, ts: None } => format!("cluster c{conn} {identity}"),
        Origin::Local => "local".into(),
    }
}

/// One trace line per journal entry of `node`, at the simulated ms of the
/// mutation: the trace then changes whenever what the store did changes.
pub fn journal_lines(node: &str, journal: &[JournalEntry]) -> Vec<TraceLine> {
    journal
        .iter()
        .map(|e| {
            let refused = if e.after_seal { " REFUSED: after the seal" } else { "" };
            let what = format!(
                "journal #{} {} {} '{}' by {}{refused}",
                e.seq,
                e.op,
                e.otype.name(),
                e.name,
                origin_text(&e.origin)
            );
            TraceLine {
                at_ms: crate::oracles::journal_ms(e.time),
                host: node.to_string(),
                what: Event::Text(what),
            }
        })
        .collect()
}

/// How a request ended, as its trace line says it.
pub fn outcome_text(o: &Outcome) -> String {
    match o {
        Outcome::Response { status, results, text, .. } if results.is_empty() => format!("{status} {text}"),
        Outcome::Response { status, results, .. } => {
            let codes: Vec<String> = results.iter().map(|(n, c)| format!("{n}:{c}")).collect();
            format!("{status} [{}]", codes.join(" "))
        }
        Outcome::TransportError { error, .. } => format!("transport error: {error}"),
        Outcome::NoAnswer => "no answer".into(),
    }
}

/// The trace as text, one event per line.
pub fn render(lines: &[TraceLine]) -> String {
    let mut out = String::new();
    for l in lines {
        out.push_str(&format!("{:>8} {:<12} {}\n", l.at_ms, l.host, l.what));
    }
    out
}

/// The SHA-256 of the rendered trace, in hex.
pub fn digest(lines: &[TraceLine]) -> String {
    let hash = Sha256::digest(render(lines).as_bytes());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use quiesce::store::ObjectType;

    use super::*;

    fn entry(seq: u64, origin: Origin, after_seal: bool) -> JournalEntry {
        let time = crate::env::EPOCH_SECS as f64 + 1.25;
        let (op, otype, name) = ("modify", ObjectType::Host, "h1".to_string());
        JournalEntry { seq, time, origin, op, otype, name, after_seal }
    }

    #[test]
    fn each_journal_entry_is_a_trace_line_naming_node_origin_mutation_and_object() {
        let http = Origin::Http { conn: 3, request: 2, request_id: Some("c0#1".into()), user: "root".into() };
        let peer = Origin::Cluster { conn: 4, identity: "sat".into(), ts: None };
        let lines = journal_lines("api", &[entry(1, http, false), entry(2, peer, true)]);
        let text = render(&lines);
        let expected = "    1250 api          journal #1 modify Host 'h1' by http c3 r2 c0#1\n    \
                        1250 api          journal #2 modify Host 'h1' by cluster c4 sat REFUSED: after the seal\n";
        assert_eq!(text, expected);
    }
}
