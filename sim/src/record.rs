//! What a run leaves behind: every node incarnation's probes and journal,
//! every request and peer message with its outcome, and the ordered trace.
//! Oracles read only this, so they can be tested on hand-made records.

use std::collections::BTreeMap;

use quiesce::probe::Probe;
use quiesce::store::{JournalEntry, StoreSnapshot};
use serde::Serialize;

/// One life of a node, from start to stop, crash or the end of the run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Incarnation {
    /// When it started (simulated ms).
    pub started_ms: u64,
    /// Its probes in the order they were reported, with their times.
    pub probes: Vec<(u64, Probe)>,
    /// Its journal, oldest first.
    pub journal: Vec<JournalEntry>,
    /// When Stop was called.
    pub stop_called_ms: Option<u64>,
    /// When Stop returned.
    pub stop_returned_ms: Option<u64>,
    /// When every task of the node had ended, after Stop.
    pub tasks_ended_ms: Option<u64>,
    /// The store right after loading the state directory.
    pub state_at_start: Option<StoreSnapshot>,
    /// The store when Stop returned.
    pub state_at_stop: Option<StoreSnapshot>,
    /// Whether the incarnation ended in a crash.
    pub crashed: bool,
    /// When its host crashed (or lost power) after its Stop had returned:
    /// the crash, not the node, ended what was still running then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_down_ms: Option<u64>,
    /// Every delay chaos applied on this incarnation, in the order applied.
    pub delays: Vec<AppliedDelay>,
}

/// One delay a chaos point applied.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AppliedDelay {
    /// When it began (simulated ms).
    pub at_ms: u64,
    /// Where.
    pub point: quiesce::env::Point,
    /// How long.
    pub ms: u64,
}

impl AppliedDelay {
    /// When it ended (simulated ms).
    pub fn end_ms(&self) -> u64 {
        self.at_ms + self.ms
    }
}

impl Incarnation {
    /// The index of the first probe that matches, in report order.
    pub fn probe_index(&self, pred: impl Fn(&Probe) -> bool) -> Option<usize> {
        self.probes.iter().position(|(_, p)| pred(p))
    }
}

/// How a request ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// A complete response.
    Response {
        /// HTTP status.
        status: u16,
        /// When the response was complete (simulated ms).
        at_ms: u64,
        /// Per-object `(name, code)` from `results`, if the body had them.
        results: Vec<(String, u16)>,
        /// The body's `status` text for error envelopes.
        text: String,
    },
    /// The connection failed before a complete response.
    TransportError { at_ms: u64, error: String },
    /// The run ended first.
    NoAnswer,
}

/// One HTTP request an actor sent.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RequestRecord {
    /// The `X-Request-Id` it carried (`actor-n`).
    pub id: String,
    /// The node it went to.
    pub node: String,
    /// Method after override, and path.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Whether it modifies state.
    pub modifying: bool,
    /// Objects it targets.
    pub objects: Vec<String>,
    /// Whether a 200 for an object may mean there was nothing to do
    /// (remove-comment over a host without comments).
    pub vacuous_success: bool,
    /// When it was sent.
    pub sent_ms: u64,
    /// How it ended.
    pub outcome: Outcome,
}

/// A check result a simulated cluster peer sent.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeerMessage {
    /// The peer (actor name and identity).
    pub peer: String,
    /// The node it was sent to.
    pub node: String,
    /// Its `ts`.
    pub ts: f64,
    /// The host it is for.
    pub host: String,
    /// Whether the node acknowledged a log position at or past `ts`.
    pub acknowledged: bool,
    /// Whether the peer reads at all; one that doesn't never learns that its
    /// connection closed, so it cannot replay what was not acknowledged.
    pub reads: bool,
}

/// An actor's connection closed by the server.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConnectionEnd {
    /// The actor.
    pub actor: String,
    /// Its kind (`idle_keep_alive`, `half_request`, ...).
    pub kind: String,
    /// The node.
    pub node: String,
    /// When the client saw the server close it (simulated ms), if it did.
    pub closed_ms: Option<u64>,
    /// The client's socket address, which the node's probes name as the peer.
    pub local_addr: Option<String>,
}

/// One line of the trace: simulated time, host, event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceLine {
    /// Simulated ms.
    pub at_ms: u64,
    /// The host (node or actor).
    pub host: String,
    /// The event; its text is written only when the trace is rendered.
    pub what: Event,
}

/// What a trace line says. Kept as data while the run goes on, because most
/// runs of a campaign are never rendered and formatting every line would be
/// a good part of their cost; [`Display`](std::fmt::Display) writes the line.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A line already written.
    Text(String),
    /// A probe of a node.
    Probe(Probe),
    /// An HTTP request was sent.
    Sent {
        /// Its id.
        id: String,
        /// Its method.
        method: String,
        /// Its path.
        path: String,
    },
    /// An HTTP request ended.
    Finished {
        /// Its id.
        id: String,
        /// How it ended.
        outcome: Outcome,
    },
    /// A simulated peer wrote a check result.
    PeerResult {
        /// Its `ts`.
        ts: f64,
        /// The host it is for.
        host: String,
    },
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Text(text) => f.write_str(text),
            Event::Probe(p) => f.write_str(&crate::trace::probe_line(p)),
            Event::Sent { id, method, path } => write!(f, "send {id} {method} {path}"),
            Event::Finished { id, outcome } => write!(f, "{id} -> {}", crate::trace::outcome_text(outcome)),
            Event::PeerResult { ts, host } => write!(f, "sent check result ts={ts:.3} for {host}"),
        }
    }
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Everything a run produced.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunRecord {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// Node name to its incarnations, in order.
    pub nodes: BTreeMap<String, Vec<Incarnation>>,
    /// Every HTTP request of every actor.
    pub requests: Vec<RequestRecord>,
    /// Every check result simulated peers sent.
    pub peer_messages: Vec<PeerMessage>,
    /// When each simulated peer started a session (connected and sent Hello).
    pub peer_sessions: Vec<(String, u64)>,
    /// Connections of misbehaving actors and when the server closed them.
    pub connection_ends: Vec<ConnectionEnd>,
    /// The ordered trace.
    pub trace: Vec<TraceLine>,
    /// Errors of the simulation itself (a host that failed, a time limit).
    pub sim_errors: Vec<String>,
    /// When the run ended.
    pub end_ms: u64,
}
