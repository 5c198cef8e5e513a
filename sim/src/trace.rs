//! The trace: the ordered events that matter, as text, and its digest. The
//! same seed must give the same bytes.

use quiesce::probe::Probe;
use sha2::{Digest, Sha256};

use crate::record::{Outcome, TraceLine};

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
        Probe::HttpResponse { conn, request, method, path, status } => {
            format!("response c{conn} r{request} {method} {path} -> {status}")
        }
        Probe::JsonRpc { conn, method, outcome } => format!("json-rpc c{conn} {method}: {outcome}"),
        Probe::Panic { task, message } => format!("PANIC in {task}: {message}"),
        Probe::Note { what } => what.clone(),
    }
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
