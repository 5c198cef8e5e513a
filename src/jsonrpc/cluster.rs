//! The node's view of the cluster: which endpoint is connected through which
//! connection, what was relayed to each and not yet acknowledged (the replay
//! log), and what was applied from each (the log positions).
//!
//! Acknowledgement rule: a node acknowledges to an endpoint only the `ts`
//! of the last message from it whose effect is already persisted in the
//! state directory. A message dropped by the work-group gate is never
//! applied, so never acknowledged, so its sender replays it; and even a
//! crash cannot lose a check result its sender has forgotten.
//!
//! The replay log is bounded by age (Icinga's `log_duration`) and size (see
//! [`super::replay`]). A position an endpoint
//! acknowledges is clamped to the newest message relayed to it, so a peer
//! cannot make the node forget messages it has not been sent yet.
//!
//! Duplicate connections: when a second connection for an endpoint
//! registers, both nodes keep the one initiated by the node whose name sorts
//! first (the newer one if both have the same initiator), so two nodes that
//! connect to each other at once agree on which connection survives.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::queue::{Full, QueueSender};
pub use super::replay::ReplayEntry;
use super::replay::{ReplayBounds, ReplayLog};
use crate::logsafe::Text;
use crate::probe::ConnId;

/// How one registered cluster connection is reached and told to go.
#[derive(Clone)]
pub struct ConnHandle {
    /// The connection's number.
    pub id: ConnId,
    /// The peer's identity (an endpoint name, or the claimed one if anonymous).
    pub identity: String,
    /// The node that opened the connection.
    pub initiator: String,
    /// Encoded messages for the writer, in order, bounded in bytes.
    outgoing: QueueSender,
    /// Cancelled when the connection must go.
    pub stop: CancellationToken,
    disconnecting: Arc<AtomicBool>,
}

impl ConnHandle {
    /// A handle for a new connection.
    pub fn new(id: ConnId, identity: &str, initiator: &str, outgoing: QueueSender) -> Self {
        ConnHandle {
            id,
            identity: identity.to_string(),
            initiator: initiator.to_string(),
            outgoing,
            stop: CancellationToken::new(),
            disconnecting: Arc::default(),
        }
    }

    /// Tells the connection to go. Idempotent; never waits for the socket.
    pub fn disconnect(&self) {
        if !self.disconnecting.swap(true, Ordering::SeqCst) {
            tracing::info!("Disconnecting API client for identity '{}'", self.identity);
            self.stop.cancel();
        }
    }

    /// Queues an encoded message; false once the connection is going. A
    /// peer too far behind to take it is disconnected.
    pub fn send(&self, payload: Bytes) -> bool {
        if self.disconnecting.load(Ordering::SeqCst) {
            return false;
        }
        match self.outgoing.send(payload) {
            Ok(()) => true,
            Err(Full::Closed) => false,
            Err(Full::Behind(waiting)) => {
                tracing::warn!(
                    "API client for identity '{}' fell behind: {waiting} bytes are waiting to be sent (max_send_queue_bytes); disconnecting. Relayed check results stay in the replay log.",
                    self.identity
                );
                self.disconnect();
                false
            }
        }
    }
}

/// What is kept per configured endpoint.
#[derive(Default)]
struct EndpointState {
    conn: Option<ConnHandle>,
    connecting: bool,
    replay: ReplayLog,
    /// Whether the replay log has dropped messages for its size since the
    /// endpoint last acknowledged: the first drop is a warning, the rest are not.
    trimming: bool,
    /// The position the endpoint acknowledged for our messages.
    acked: f64,
    /// The `ts` of the last message applied from the endpoint.
    applied: f64,
    /// `applied` as of the last successful persist: what may be acknowledged.
    persisted: f64,
    /// The last position we sent it.
    acknowledged_to: f64,
    /// The `ts` of the newest message relayed to it: the furthest it can
    /// acknowledge.
    relayed: f64,
}

impl EndpointState {
    /// The rules of the bookkeeping, checked after every change: a broken
    /// one means a message could be acknowledged before it is on disk, or
    /// forgotten before it was sent. The comparisons are cheap and always
    /// on; walking the replay log is for debug builds.
    fn check(&self, name: &str) {
        assert!(
            self.persisted <= self.applied,
            "endpoint '{name}': persisted {} past applied {}",
            self.persisted,
            self.applied
        );
        assert!(
            self.acknowledged_to <= self.persisted,
            "endpoint '{name}': acknowledged {} past persisted {}",
            self.acknowledged_to,
            self.persisted
        );
        assert!(
            self.acked <= self.relayed,
            "endpoint '{name}': acked {} past relayed {}",
            self.acked,
            self.relayed
        );
        debug_assert!(
            self.replay.is_rising_after(self.acked),
            "endpoint '{name}': replay log out of order or acknowledged"
        );
    }
}

/// The cluster part of the state file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterSnapshot {
    /// The last `ts` this node gave a relayed message.
    pub last_ts: f64,
    /// Per endpoint.
    pub endpoints: BTreeMap<String, EndpointSnapshot>,
}

/// One endpoint's persisted positions and replay log.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointSnapshot {
    /// Acknowledged by it.
    pub acked: f64,
    /// Applied from it.
    pub applied: f64,
    /// Relayed to it and not acknowledged, oldest first.
    pub replay: Vec<ReplayEntry>,
}

#[derive(Default)]
struct Inner {
    endpoints: BTreeMap<String, EndpointState>,
    anonymous: BTreeMap<ConnId, ConnHandle>,
    last_ts: f64,
}

/// Why a connection was not registered.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The endpoint already has the connection that wins the tie-break.
    Duplicate,
}

/// The cluster state of a node.
#[derive(Default)]
pub struct Cluster {
    inner: Mutex<Inner>,
    /// How long and how large each replay log may grow.
    bounds: ReplayBounds,
    /// Anonymous connections, counted from their first byte.
    anonymous_places: Arc<AtomicUsize>,
}

/// An anonymous connection's place under `max_anonymous`; freed when dropped.
pub struct AnonymousPlace(Arc<AtomicUsize>);

impl Drop for AnonymousPlace {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Cluster {
    /// Cluster state for the configured endpoint names, keeping relayed
    /// messages within `bounds`.
    pub fn new<'a>(endpoints: impl IntoIterator<Item = &'a str>, bounds: ReplayBounds) -> Self {
        let mut inner = Inner::default();
        for name in endpoints {
            inner.endpoints.insert(name.to_string(), EndpointState::default());
        }
        Cluster { inner: Mutex::new(inner), bounds, ..Cluster::default() }
    }

    /// How many anonymous places are taken now.
    pub fn anonymous_places(&self) -> usize {
        self.anonymous_places.load(Ordering::SeqCst)
    }

    /// A place for a connection that may turn out anonymous, or `None` if
    /// `max` are taken. Taken at the first byte, before the Hello, so that a
    /// flood of silent peers counts from the start.
    pub fn anonymous_place(&self, max: usize) -> Option<AnonymousPlace> {
        let taken = self
            .anonymous_places
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < max).then_some(n + 1));
        taken.ok().map(|_| AnonymousPlace(self.anonymous_places.clone()))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        crate::lock::lock(&self.inner)
    }

    /// Restores positions and replay logs from the state file.
    pub fn restore(&self, snapshot: ClusterSnapshot) {
        let mut inner = self.lock();
        inner.last_ts = snapshot.last_ts;
        for (name, s) in snapshot.endpoints {
            // An endpoint no longer configured keeps nothing.
            if let Some(e) = inner.endpoints.get_mut(&name) {
                e.acked = s.acked;
                e.applied = s.applied;
                e.persisted = s.applied;
                e.relayed = s.replay.last().map_or(s.acked, |r| r.ts).max(s.acked);
                e.replay = ReplayLog::from_entries(s.replay);
                e.check(&name);
            }
        }
    }

    /// What to persist now.
    pub fn snapshot(&self) -> ClusterSnapshot {
        let inner = self.lock();
        let endpoints = inner
            .endpoints
            .iter()
            .map(|(name, e)| {
                let replay = e.replay.iter().cloned().collect();
                (name.clone(), EndpointSnapshot { acked: e.acked, applied: e.applied, replay })
            })
            .collect();
        ClusterSnapshot { last_ts: inner.last_ts, endpoints }
    }

    /// Records that `snapshot` is on disk: its applied positions may now be acknowledged.
    pub fn persisted(&self, snapshot: &ClusterSnapshot) {
        let mut inner = self.lock();
        for (name, s) in &snapshot.endpoints {
            if let Some(e) = inner.endpoints.get_mut(name) {
                e.persisted = e.persisted.max(s.applied);
                e.check(name);
            }
        }
    }

    /// Whether `name` is a configured endpoint.
    pub fn is_endpoint(&self, name: &str) -> bool {
        self.lock().endpoints.contains_key(name)
    }

    /// Registers an endpoint connection, replacing or refusing a duplicate by
    /// the tie-break, and returns the backlog to replay: every message kept
    /// and not acknowledged, oldest first. The writer sends it before
    /// anything queued later, so it never counts against the send queue.
    pub fn register_endpoint(&self, me: &str, handle: ConnHandle, now: f64) -> Result<Vec<Bytes>, Refusal> {
        let oldest = now - self.bounds.age;
        let mut inner = self.lock();
        let Some(e) = inner.endpoints.get_mut(&handle.identity) else { return Err(Refusal::Duplicate) };
        if let Some(old) = &e.conn {
            let preferred = me.min(handle.identity.as_str());
            let new_wins = handle.initiator == old.initiator || handle.initiator == preferred;
            if !new_wins {
                return Err(Refusal::Duplicate);
            }
            old.disconnect();
        }
        e.replay.forget_older(oldest);
        let backlog = e.replay.iter().filter(|r| r.ts > e.acked).map(ReplayEntry::bytes).collect();
        e.acknowledged_to = 0.0;
        e.check(&handle.identity);
        e.conn = Some(handle);
        Ok(backlog)
    }

    /// Registers an anonymous connection (its place was taken at its first byte).
    pub fn register_anonymous(&self, handle: ConnHandle) {
        self.lock().anonymous.insert(handle.id, handle);
    }

    /// Forgets a connection that has ended (if it is still the registered one).
    pub fn deregister(&self, id: ConnId) {
        let mut inner = self.lock();
        inner.anonymous.remove(&id);
        for e in inner.endpoints.values_mut() {
            if e.conn.as_ref().is_some_and(|c| c.id == id) {
                e.conn = None;
            }
        }
    }

    /// Tells every connection to go (Stop step 3).
    pub fn disconnect_all(&self) {
        self.disconnect_endpoints();
        for handle in self.lock().anonymous.values() {
            handle.disconnect();
        }
    }

    /// Tells every endpoint connection to go.
    pub fn disconnect_endpoints(&self) {
        for handle in self.lock().endpoints.values().filter_map(|e| e.conn.as_ref()) {
            handle.disconnect();
        }
    }

    /// Whether every registered connection has been told to go.
    pub fn all_told_to_go(&self) -> bool {
        let inner = self.lock();
        let mut handles =
            inner.endpoints.values().filter_map(|e| e.conn.as_ref()).chain(inner.anonymous.values());
        handles.all(|h| h.stop.is_cancelled())
    }

    /// Endpoints that are neither connected nor connecting; marks them connecting.
    pub fn start_connecting(&self) -> Vec<String> {
        let mut inner = self.lock();
        let mut out = vec![];
        for (name, e) in inner.endpoints.iter_mut() {
            if e.conn.is_none() && !e.connecting {
                e.connecting = true;
                out.push(name.clone());
            }
        }
        out
    }

    /// An outgoing attempt has finished, successfully or not.
    pub fn done_connecting(&self, name: &str) {
        if let Some(e) = self.lock().endpoints.get_mut(name) {
            e.connecting = false;
        }
    }

    /// The next relay `ts`: wall-clock seconds, strictly increasing.
    fn next_ts(inner: &mut Inner, now: f64) -> f64 {
        let last = inner.last_ts;
        // `next_up` keeps it rising where 0.001 is below a large `last`'s precision.
        let ts = if now > last + 0.000_5 { now } else { (last + 0.001).max(last.next_up()) };
        assert!(ts > last, "relay ts must strictly rise: {ts} after {last}");
        inner.last_ts = ts;
        ts
    }

    /// Relays a message built for `ts` to every endpoint except `origin`:
    /// into each replay log, and to each connected one. Returns the `ts`.
    pub fn relay(&self, now: f64, origin: Option<&str>, build: impl Fn(f64) -> Bytes) -> f64 {
        let mut inner = self.lock();
        let ts = Self::next_ts(&mut inner, now);
        let payload = build(ts);
        let message: Arc<str> = String::from_utf8_lossy(&payload).into();
        for (name, e) in inner.endpoints.iter_mut() {
            if Some(name.as_str()) == origin {
                continue;
            }
            let dropped = e.replay.push(ReplayEntry { ts, message: message.clone() }, now, self.bounds);
            if dropped > 0 && !std::mem::replace(&mut e.trimming, true) {
                tracing::warn!(
                    "Replay log of endpoint '{name}' is full ({} bytes, max_replay_log_bytes): its oldest messages are dropped until it acknowledges.",
                    self.bounds.bytes
                );
            }
            e.relayed = ts;
            e.check(name);
            if let Some(conn) = &e.conn {
                conn.send(payload.clone());
            }
        }
        ts
    }

    /// The endpoint acknowledged our messages up to `position`: forget them.
    /// A position past the newest message relayed to it counts as that one.
    pub fn acknowledged_by(&self, endpoint: &str, position: f64) {
        if let Some(e) = self.lock().endpoints.get_mut(endpoint) {
            if position > e.relayed {
                tracing::debug!(
                    "Endpoint '{}' acknowledged log position {position}, past the newest message sent to it ({}).",
                    Text(endpoint),
                    e.relayed
                );
            }
            e.acked = e.acked.max(position.min(e.relayed));
            let acked = e.acked;
            e.replay.acknowledged(acked);
            e.trimming = false;
            e.check(endpoint);
        }
    }

    /// Whether a message with `ts` from `endpoint` is new (not yet applied).
    pub fn is_new(&self, endpoint: &str, ts: f64) -> bool {
        self.lock().endpoints.get(endpoint).is_none_or(|e| ts > e.applied)
    }

    /// The `ts` of the last message applied from `endpoint`.
    pub fn applied_position(&self, endpoint: &str) -> f64 {
        self.lock().endpoints.get(endpoint).map_or(0.0, |e| e.applied)
    }

    /// Records that the message with `ts` from `endpoint` was processed.
    pub fn applied(&self, endpoint: &str, ts: f64) {
        if let Some(e) = self.lock().endpoints.get_mut(endpoint) {
            e.applied = e.applied.max(ts);
            e.check(endpoint);
        }
    }

    /// Positions to acknowledge now: connected endpoints whose persisted
    /// position moved since we last told them.
    pub fn acknowledgements(&self) -> Vec<(ConnHandle, f64)> {
        let mut inner = self.lock();
        let mut out = vec![];
        for (name, e) in inner.endpoints.iter_mut() {
            let Some(conn) = &e.conn else { continue };
            if e.persisted > e.acknowledged_to {
                e.acknowledged_to = e.persisted;
                out.push((conn.clone(), e.persisted));
                e.check(name);
            }
        }
        out
    }

    /// Connected and not connected endpoint names, and the anonymous count.
    pub fn status(&self) -> (Vec<String>, Vec<String>, usize) {
        let inner = self.lock();
        let (mut up, mut down) = (vec![], vec![]);
        for (name, e) in &inner.endpoints {
            if e.conn.is_some() {
                up.push(name.clone())
            } else {
                down.push(name.clone())
            }
        }
        (up, down, inner.anonymous.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc::queue::{send_queue, QueueReceiver};

    const DAY: ReplayBounds = ReplayBounds { age: 86_400.0, bytes: usize::MAX };

    fn cluster(endpoints: &[&str]) -> Cluster {
        Cluster::new(endpoints.iter().copied(), DAY)
    }

    fn handle(id: ConnId, identity: &str, initiator: &str) -> (ConnHandle, QueueReceiver) {
        let (tx, rx) = send_queue(1 << 20);
        (ConnHandle::new(id, identity, initiator, tx), rx)
    }

    fn message(ts: f64) -> Bytes {
        Bytes::from(format!("m{ts}"))
    }

    #[tokio::test]
    async fn relays_are_kept_until_acknowledged_and_replayed_in_order_on_reconnect() {
        let c = cluster(&["b"]);
        let ts1 = c.relay(100.0, None, message);
        let ts2 = c.relay(100.0, None, message);
        assert!(ts2 > ts1, "ts must strictly increase even when the clock does not");
        c.acknowledged_by("b", ts1);
        let (h, mut rx) = handle(1, "b", "a");
        assert_eq!(
            c.register_endpoint("a", h, 100.0),
            Ok(vec![message(ts2)]),
            "the backlog is what is not acknowledged"
        );
        let ts3 = c.relay(101.0, None, message);
        assert_eq!(rx.recv().await, Some(message(ts3)), "live relays are queued after the backlog");
    }

    #[test]
    fn relays_while_the_clock_stands_still_are_a_millisecond_apart() {
        // Distinct and readable: a peer, or an operator reading the replay
        // log, sees 100.001 after 100, not a value one float step above it.
        let c = cluster(&["b"]);
        let ts1 = c.relay(100.0, None, message);
        let ts2 = c.relay(100.0, None, message);
        assert_eq!((ts1, ts2), (100.0, 100.0 + 0.001));
    }

    #[test]
    fn relay_ts_rises_where_a_millisecond_is_below_the_precision_of_the_last() {
        // Scenario: a state file's last_ts is 1e15, the largest a file may hold.
        // Bug: `last + 0.001` rounds back to `last`, so two relays shared a ts
        // and the second would be dropped as already applied by the endpoint.
        // Fix: the next ts is at least the next float after the last.
        let c = cluster(&["b"]);
        c.restore(ClusterSnapshot { last_ts: 1e15, endpoints: BTreeMap::new() });
        let ts1 = c.relay(100.0, None, message);
        let ts2 = c.relay(100.0, None, message);
        assert!(1e15 < ts1 && ts1 < ts2, "{ts1} then {ts2}");
    }

    #[test]
    fn the_replay_log_forgets_what_is_older_than_the_log_duration() {
        let c = Cluster::new(["b"], ReplayBounds { age: 10.0, bytes: usize::MAX });
        c.relay(100.0, None, message);
        let kept = c.relay(105.0, None, message);
        c.relay(111.0, None, message);
        assert_eq!(
            c.snapshot().endpoints["b"].replay.len(),
            2,
            "the entry from 100.0 is over 10 s old at 111.0"
        );
        let (h, _rx) = handle(1, "b", "a");
        let backlog = c.register_endpoint("a", h, 116.0).unwrap();
        assert_eq!(backlog.len(), 1, "at 116.0 only the newest is within 10 s");
        assert!(!backlog.contains(&message(kept)));
    }

    #[test]
    fn a_position_past_what_was_sent_counts_as_the_newest_sent() {
        // Scenario: an endpoint acknowledges a log position far in the future.
        // Bug: the node took it, forgot its replay log and never replayed
        // anything relayed later.
        // Fix: the position is clamped to the newest message relayed to it.
        let c = cluster(&["b"]);
        let ts1 = c.relay(100.0, None, message);
        c.acknowledged_by("b", 1e18);
        let ts2 = c.relay(101.0, None, message);
        let (h, _rx) = handle(1, "b", "a");
        assert_eq!(c.register_endpoint("a", h, 101.0), Ok(vec![message(ts2)]));
        assert_eq!(c.snapshot().endpoints["b"].acked, ts1);
    }

    #[test]
    fn disconnect_all_tells_every_endpoint_and_anonymous_connection_to_go() {
        let c = cluster(&["b"]);
        let (endpoint, _erx) = handle(1, "b", "a");
        c.register_endpoint("a", endpoint.clone(), 0.0).unwrap();
        let (anonymous, _arx) = handle(2, "stranger", "stranger");
        c.register_anonymous(anonymous.clone());
        assert!(!c.all_told_to_go(), "two registered connections are still running");
        c.disconnect_all();
        assert!(
            endpoint.stop.is_cancelled() && anonymous.stop.is_cancelled(),
            "Stop step 3 reaches both kinds"
        );
        assert!(c.all_told_to_go());
    }

    #[test]
    fn an_endpoint_is_offered_for_connecting_only_while_neither_connected_nor_connecting() {
        let c = cluster(&["b", "c"]);
        c.register_endpoint("a", handle(1, "b", "a").0, 0.0).unwrap();
        assert_eq!(c.start_connecting(), vec!["c".to_string()], "b is connected");
        assert!(c.start_connecting().is_empty(), "c is being connected to");
        c.done_connecting("c");
        assert_eq!(c.start_connecting(), vec!["c".to_string()], "a finished attempt may be retried");
    }

    /// Log lines written while `work` runs on this thread, at DEBUG and above.
    fn logged(work: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Lines(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                crate::lock::lock(&self.0).extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, work);
        let text = String::from_utf8_lossy(&crate::lock::lock(&lines.0)).into_owned();
        text
    }

    #[test]
    fn a_full_replay_log_warns_once_until_the_endpoint_acknowledges() {
        let c = Cluster::new(["b"], ReplayBounds { age: 86_400.0, bytes: 150 });
        let hundred = |_| Bytes::from(vec![b'x'; 100]);
        let full = |text: &str| text.matches("is full").count();
        assert_eq!(full(&logged(|| _ = c.relay(100.0, None, hundred))), 0, "nothing dropped yet");
        let twice = logged(|| {
            c.relay(101.0, None, hundred);
            c.relay(102.0, None, hundred);
        });
        assert_eq!(full(&twice), 1, "one warning while the log stays full:\n{twice}");
        let last = c.snapshot().endpoints["b"].replay.last().map(|r| r.ts).unwrap();
        c.acknowledged_by("b", last);
        let again = logged(|| {
            c.relay(103.0, None, hundred);
            c.relay(104.0, None, hundred);
        });
        assert_eq!(full(&again), 1, "after an acknowledgement a new drop warns again:\n{again}");
    }

    #[test]
    fn only_a_position_past_the_newest_relayed_message_is_noted() {
        let c = cluster(&["b"]);
        let ts = c.relay(100.0, None, message);
        let past = |text: &str| text.matches("past the newest message").count();
        assert_eq!(past(&logged(|| c.acknowledged_by("b", ts))), 0, "the newest itself is no surprise");
        assert_eq!(past(&logged(|| c.acknowledged_by("b", ts + 1.0))), 1);
    }

    #[test]
    fn a_relay_never_goes_back_to_its_origin() {
        let c = cluster(&["b", "c"]);
        c.relay(1.0, Some("b"), |_| Bytes::from_static(b"x"));
        let s = c.snapshot();
        assert!(s.endpoints["b"].replay.is_empty());
        assert_eq!(s.endpoints["c"].replay.len(), 1);
    }

    #[test]
    fn duplicates_are_settled_the_same_way_on_both_nodes() {
        // Node "a" and node "b" connected to each other at once.
        let on_a = cluster(&["b"]);
        let on_b = cluster(&["a"]);
        assert!(on_a.register_endpoint("a", handle(1, "b", "a").0, 0.0).is_ok()); // a's outgoing
        assert!(on_b.register_endpoint("b", handle(1, "a", "b").0, 0.0).is_ok()); // b's outgoing
                                                                                  // Now each sees the other's connection arrive: the one "a" initiated wins on both.
        assert_eq!(on_a.register_endpoint("a", handle(2, "b", "b").0, 0.0), Err(Refusal::Duplicate));
        assert!(on_b.register_endpoint("b", handle(2, "a", "a").0, 0.0).is_ok());
    }

    #[test]
    fn only_persisted_positions_are_acknowledged() {
        let c = cluster(&["b"]);
        let (h, _rx) = handle(1, "b", "b");
        c.register_endpoint("a", h, 0.0).unwrap();
        assert!(c.is_new("b", 5.0));
        c.applied("b", 5.0);
        assert!(!c.is_new("b", 5.0) && !c.is_new("b", 4.0));
        assert!(c.acknowledgements().is_empty(), "nothing is persisted yet");
        c.persisted(&c.snapshot());
        let acks = c.acknowledgements();
        assert_eq!(acks.iter().map(|(_, p)| *p).collect::<Vec<_>>(), vec![5.0]);
        assert!(c.acknowledgements().is_empty(), "a position is sent once");
    }

    #[test]
    fn the_anonymous_limit_counts_places_until_they_are_freed() {
        let c = cluster(&[]);
        let first = c.anonymous_place(2);
        let second = c.anonymous_place(2);
        assert!(first.is_some() && second.is_some());
        assert!(c.anonymous_place(2).is_none(), "a third place passes the limit");
        drop(first);
        assert!(c.anonymous_place(2).is_some(), "a freed place is taken again");
    }

    #[test]
    fn a_peer_that_falls_behind_is_disconnected() {
        let (tx, _rx) = send_queue(8);
        let h = ConnHandle::new(1, "b", "a", tx);
        assert!(h.send(Bytes::from_static(b"12345678")));
        assert!(!h.stop.is_cancelled());
        assert!(!h.send(Bytes::from_static(b"9")), "a byte past the bound is refused");
        assert!(h.stop.is_cancelled(), "and the connection is told to go");
    }
}
