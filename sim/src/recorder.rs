//! The shared, single-threaded log of a run: actors and nodes append to it in
//! the order things happen, which is deterministic because turmoil runs every
//! host on one thread.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::record::{ConnectionEnd, Event, Outcome, PeerMessage, RequestRecord, TraceLine};

#[derive(Default)]
struct Inner {
    requests: Vec<RequestRecord>,
    peer_messages: Vec<PeerMessage>,
    peer_sessions: Vec<(String, u64)>,
    connection_ends: Vec<ConnectionEnd>,
    trace: Vec<TraceLine>,
    /// Per node, the requests sent to it whose outcome is not recorded yet.
    open_requests: std::collections::BTreeMap<String, usize>,
    /// Peers that open no session again: their actor ended, or a deaf one
    /// has sent everything and only holds its socket.
    peers_ended: std::collections::BTreeSet<String>,
    /// Peers that now wait on the node alone (see [`Recorder::peer_waits`]).
    peers_waiting: std::collections::BTreeSet<String>,
}

/// Where a peer stands with the replay to a node started again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerReplay {
    /// It opened a session since the start, which replayed its backlog.
    CameBack,
    /// It may still come back.
    Pending,
    /// It never will: its actor ended, or it waits on a session the start
    /// killed, for something the dead connection will never bring.
    Never,
}

/// Everything recorded: requests, peer messages, peer sessions, connection ends, trace.
pub type Taken =
    (Vec<RequestRecord>, Vec<PeerMessage>, Vec<(String, u64)>, Vec<ConnectionEnd>, Vec<TraceLine>);

/// Where actors write what they did. Cheap to clone.
#[derive(Clone, Default)]
pub struct Recorder {
    inner: Arc<Mutex<Inner>>,
}

/// Simulated milliseconds since the start of the run.
pub fn now_ms() -> u64 {
    turmoil::sim_elapsed().map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Recorder {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        crate::lock::lock(&self.inner)
    }

    /// Appends a trace line at the current simulated time.
    pub fn line(&self, host: &str, what: impl Into<String>) {
        self.event_at(now_ms(), host, Event::Text(what.into()));
    }

    /// Appends a trace line at a given time.
    pub fn event_at(&self, at_ms: u64, host: &str, what: Event) {
        self.lock().trace.push(TraceLine { at_ms, host: host.to_string(), what });
    }

    /// Records a request as sent at its `sent_ms`; returns its index for
    /// [`Recorder::finish`].
    pub fn sent(&self, actor: &str, r: RequestRecord) -> usize {
        let sent = Event::Sent { id: r.id.clone(), method: r.method.clone(), path: r.path.clone() };
        self.event_at(r.sent_ms, actor, sent);
        let mut inner = self.lock();
        *inner.open_requests.entry(r.node.clone()).or_default() += 1;
        inner.requests.push(r);
        inner.requests.len() - 1
    }

    /// Records how a request ended, at the time the outcome carries.
    pub fn finish(&self, actor: &str, index: usize, outcome: Outcome) {
        let at_ms = match &outcome {
            Outcome::Response { at_ms, .. } | Outcome::TransportError { at_ms, .. } => *at_ms,
            Outcome::NoAnswer => now_ms(),
        };
        let line = {
            let mut inner = self.lock();
            let Some(r) = inner.requests.get_mut(index) else { return };
            r.outcome = outcome.clone();
            let (id, node) = (r.id.clone(), r.node.clone());
            if let Some(open) = inner.open_requests.get_mut(&node) {
                *open = open.saturating_sub(1);
            }
            Event::Finished { id, outcome }
        };
        self.event_at(at_ms, actor, line);
    }

    /// Records a check result a simulated peer wrote to a node.
    pub fn peer_message(&self, m: PeerMessage) {
        self.event_at(now_ms(), &m.peer, Event::PeerResult { ts: m.ts, host: m.host.clone() });
        self.lock().peer_messages.push(m);
    }

    /// Whether some request sent to `node` is still waiting for its outcome.
    pub fn requests_open_to(&self, node: &str) -> bool {
        self.lock().open_requests.get(node).is_some_and(|open| *open > 0)
    }

    /// Whether `each` holds for every check result a peer has written so far.
    pub fn every_peer_message(&self, each: impl Fn(&PeerMessage) -> bool) -> bool {
        self.lock().peer_messages.iter().all(each)
    }

    /// Records that `peer` opens no session again.
    pub fn peer_ended(&self, peer: &str) {
        self.lock().peers_ended.insert(peer.to_string());
    }

    /// Records whether `peer` now waits on the node alone: it writes
    /// nothing more on its session until the node sends it something, or
    /// until the node takes what it is writing.
    pub fn peer_waits(&self, peer: &str, waiting: bool) {
        let mut inner = self.lock();
        match waiting {
            true => inner.peers_waiting.insert(peer.to_string()),
            false => inner.peers_waiting.remove(peer),
        };
    }

    /// Where `peer` stands with the replay to a node started at `start_ms`.
    /// A session opened before the start is dead (the node's stop or crash
    /// ended it): a peer waiting on it hears of that only through its own
    /// write, which it will never make, or, for a write already waiting,
    /// never (turmoil does not wake a writer waiting for room when the
    /// other end resets). `links_whole`: no partition or hold still keeps
    /// back the node's goodbye.
    pub fn peer_replay(&self, peer: &str, start_ms: u64, links_whole: bool) -> PeerReplay {
        let inner = self.lock();
        let sessions = inner.peer_sessions.iter().filter(|(p, _)| p == peer);
        let last = sessions.map(|(_, at)| *at).max();
        if last.is_some_and(|at| at >= start_ms) {
            PeerReplay::CameBack
        } else if inner.peers_ended.contains(peer) || (links_whole && inner.peers_waiting.contains(peer)) {
            PeerReplay::Never
        } else {
            PeerReplay::Pending
        }
    }

    /// Records that `peer` connected and sent Hello (and its backlog).
    pub fn peer_session(&self, peer: &str) {
        self.lock().peer_sessions.push((peer.to_string(), now_ms()));
    }

    /// Marks every message of `peer` with `ts <= position` as acknowledged.
    pub fn acknowledged(&self, peer: &str, position: f64) {
        for m in self.lock().peer_messages.iter_mut().filter(|m| m.peer == peer && m.ts <= position) {
            m.acknowledged = true;
        }
    }

    /// Records when the server closed a misbehaving actor's connection.
    pub fn connection_end(&self, end: ConnectionEnd) {
        let when =
            end.closed_ms.map(|c| format!("closed by server at {c} ms")).unwrap_or("never closed".into());
        self.line(&end.actor.clone(), format!("{} connection {when}", end.kind));
        self.lock().connection_ends.push(end);
    }

    /// Takes everything recorded.
    pub fn take(&self) -> Taken {
        let mut inner = self.lock();
        (
            std::mem::take(&mut inner.requests),
            std::mem::take(&mut inner.peer_messages),
            std::mem::take(&mut inner.peer_sessions),
            std::mem::take(&mut inner.connection_ends),
            std::mem::take(&mut inner.trace),
        )
    }
}
