//! One JSON-RPC connection: reader, writer, heartbeat and liveness, and a
//! disconnect that never waits on the peer longer than the contract allows
//! (5 s for the writer to finish its message, 10 s more to close).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde_json::{Map, Value};
use tokio::io::{AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::time::Instant;
use tokio_util::codec::FramedRead;

use super::cluster::ConnHandle;
use super::message::{self, Message};
use super::netstring::{encode_payload, NetstringCodec};
use super::queue::QueueReceiver;
use crate::bug;
use crate::env::{Env, Point, Stream};
use crate::logsafe::Text;
use crate::node::Shared;
use crate::probe::{ConnId, ConnKind, Probe};
use crate::store::{Mutation, ObjectType, Origin, StoreError};
use crate::work::{Admission, WorkGuard};

/// Who is on the other end.
#[derive(Clone)]
pub struct Peer {
    /// The connection's number.
    pub conn: ConnId,
    /// The socket address.
    pub addr: SocketAddr,
    /// An endpoint name, or the identity an anonymous peer claimed.
    pub identity: String,
    /// Endpoint or anonymous.
    pub kind: ConnKind,
}

impl Peer {
    /// Who is on the other end of connection `conn`.
    pub fn new(conn: ConnId, addr: SocketAddr, identity: String, kind: ConnKind) -> Self {
        Peer { conn, addr, identity, kind }
    }
}

/// Serializes a message for the writer.
pub fn encode(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

/// The socket and queues of a registered connection.
pub struct Wire<S> {
    /// Incoming frames.
    pub reader: FramedRead<ReadHalf<S>, NetstringCodec>,
    /// The socket's writing half.
    pub writer: WriteHalf<S>,
    /// Messages queued while the connection runs.
    pub queue: QueueReceiver,
    /// Written before the queue: our Hello on the accepting side, then the
    /// replay backlog.
    pub first: Vec<Bytes>,
    /// A message read during the handshake that still needs handling.
    pub pending: Option<Map<String, Value>>,
}

/// Runs a registered connection until it ends.
pub async fn run<E: Env, S: Stream>(shared: Arc<Shared<E>>, peer: Peer, handle: ConnHandle, wire: Wire<S>) {
    let seen = Arc::new(Mutex::new(shared.env().instant()));
    let Wire { reader, writer, queue, first, pending } = wire;
    let outgoing = Outgoing { first: first.into(), queue };
    let writer_task =
        shared.spawn_handle("json-rpc writer", write_loop(shared.clone(), handle.clone(), outgoing, writer));
    spawn_keepalive(&shared, &peer, &handle, &seen);
    if let Some(m) = pending {
        handle_frame(&shared, &peer, &handle, m).await;
    }
    read_loop(&shared, &peer, &handle, reader, &seen).await;
    handle.disconnect();
    finish_writer(&shared, writer_task).await;
    tracing::info!("API client disconnected for identity '{}'", peer.identity);
}

/// Waits for the writer to finish its message (5 s), then cancels its socket
/// operations; closing gets at most 10 s more.
async fn finish_writer<E: Env, S: Stream>(
    shared: &Shared<E>,
    mut task: tokio::task::JoinHandle<Option<Option<WriteHalf<S>>>>,
) {
    let t = &shared.config().timings;
    let finished = if bug!(shared.config(), NoWriterTimeout) {
        Ok((&mut task).await)
    } else {
        tokio::time::timeout(t.writer_drain, &mut task).await
    };
    match finished {
        Ok(Ok(Some(Some(mut writer)))) if bug!(shared.config(), TlsShutdownUncapped) => {
            let _ = writer.shutdown().await;
        }
        Ok(Ok(Some(Some(mut writer)))) => {
            let _ = tokio::time::timeout(t.close_cap, writer.shutdown()).await;
        }
        Ok(_) => {}
        Err(_) => {
            // The peer does not read: drop the socket instead of waiting.
            task.abort();
            let _ = task.await;
        }
    }
}

async fn read_loop<E: Env, S: Stream>(
    shared: &Arc<Shared<E>>,
    peer: &Peer,
    handle: &ConnHandle,
    mut reader: FramedRead<ReadHalf<S>, NetstringCodec>,
    seen: &Mutex<Instant>,
) {
    loop {
        let frame = tokio::select! {
            biased;
            _ = handle.stop.cancelled() => return,
            f = reader.next() => f,
        };
        match frame {
            None => {
                return tracing::debug!("JSON-RPC connection for identity '{}' closed by peer", peer.identity)
            }
            Some(Err(e)) => {
                tracing::warn!("Error while reading JSON-RPC message for identity '{}': {e}", peer.identity);
                shared.env().probe(|| Probe::JsonRpc {
                    conn: peer.conn,
                    method: String::new(),
                    outcome: format!("protocol error: {e}"),
                });
                return;
            }
            Some(Ok(map)) => {
                *crate::lock::lock(seen) = shared.env().instant();
                handle_frame(shared, peer, handle, map).await;
            }
        }
    }
}

/// What the writer sends: the messages due first, then the queue.
struct Outgoing {
    first: std::collections::VecDeque<Bytes>,
    queue: QueueReceiver,
}

impl Outgoing {
    /// The next message to write; `None` once nothing more can come.
    async fn next(&mut self) -> Option<Bytes> {
        match self.first.pop_front() {
            Some(payload) => Some(payload),
            None => self.queue.recv().await,
        }
    }
}

/// Writes messages one by one; stops at a message boundary once the
/// connection is going, and hands the socket back for closing.
async fn write_loop<E: Env, S: Stream>(
    shared: Arc<Shared<E>>,
    handle: ConnHandle,
    mut outgoing: Outgoing,
    mut writer: WriteHalf<S>,
) -> Option<WriteHalf<S>> {
    loop {
        let payload = tokio::select! {
            biased;
            _ = handle.stop.cancelled() => return Some(writer),
            p = outgoing.next() => p?,
        };
        shared.env().point(Point::JsonRpcBeforeWrite).await;
        // Stop may have come while the point waited: a message not yet begun
        // is not written (the planted bug writes it, after Stop returned).
        if handle.stop.is_cancelled() && !bug!(shared.config(), WriteAfterStop) {
            return Some(writer);
        }
        shared.env().probe(|| Probe::JsonRpcWrite { conn: handle.id, method: method_of(&payload) });
        if write_frame(&shared, &mut writer, &payload).await.is_err() {
            tracing::debug!("Error while sending JSON-RPC message for identity '{}'", handle.identity);
            handle.disconnect();
            return None;
        }
    }
}

/// The method a JSON-RPC payload calls (`reply` for a reply), for probes.
fn method_of(payload: &[u8]) -> String {
    let method = serde_json::from_slice::<Value>(payload)
        .ok()
        .and_then(|v| v.get("method").and_then(Value::as_str).map(String::from));
    method.unwrap_or_else(|| "reply".into())
}

async fn write_frame<E: Env, W: AsyncWrite + Unpin>(
    shared: &Shared<E>,
    w: &mut W,
    payload: &[u8],
) -> std::io::Result<()> {
    let mut buf = BytesMut::new();
    encode_payload(payload, &mut buf);
    // Planted bug: holding the work group across a socket write lets a peer
    // that never reads hold up Stop's join.
    let _held = if bug!(shared.config(), WriterHoldsGate) { shared.admit_work() } else { None };
    w.write_all(&buf).await?;
    w.flush().await
}

fn spawn_keepalive<E: Env>(
    shared: &Arc<Shared<E>>,
    peer: &Peer,
    handle: &ConnHandle,
    seen: &Arc<Mutex<Instant>>,
) {
    let (s, h) = (shared.clone(), handle.clone());
    shared.spawn("json-rpc heartbeat", async move {
        loop {
            tokio::select! {
                biased;
                _ = h.stop.cancelled() => return,
                _ = tokio::time::sleep(s.config().timings.heartbeat_interval) => {}
            }
            h.send(encode(&message::heartbeat()));
        }
    });
    let (s, h, p, seen) = (shared.clone(), handle.clone(), peer.clone(), seen.clone());
    shared.spawn("json-rpc liveness", async move { liveness(&s, &p, &h, &seen).await });
}

/// Anonymous peers get a fixed lifetime; endpoints must not go silent.
async fn liveness<E: Env>(shared: &Shared<E>, peer: &Peer, handle: &ConnHandle, seen: &Mutex<Instant>) {
    let t = &shared.config().timings;
    if peer.kind == ConnKind::Anonymous {
        tokio::select! {
            biased;
            _ = handle.stop.cancelled() => {}
            _ = tokio::time::sleep(t.anonymous_lifetime) => {
                tracing::info!("Closing anonymous connection [{}] after {} seconds.", peer.addr, t.anonymous_lifetime.as_secs());
                handle.disconnect();
            }
        }
        return;
    }
    loop {
        tokio::select! {
            biased;
            _ = handle.stop.cancelled() => return,
            _ = tokio::time::sleep(t.liveness_check_interval) => {}
        }
        let last = *crate::lock::lock(seen);
        if shared.env().instant() - last > t.liveness_timeout {
            tracing::info!(
                "No messages for identity '{}' have been received in the last {} seconds.",
                peer.identity,
                t.liveness_timeout.as_secs()
            );
            return handle.disconnect();
        }
    }
}

/// Handles one message under the work-group gate.
async fn handle_frame<E: Env>(
    shared: &Arc<Shared<E>>,
    peer: &Peer,
    handle: &ConnHandle,
    map: Map<String, Value>,
) {
    let msg = match Message::from_map(map) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!("Ignoring JSON-RPC message from identity '{}': {e}", peer.identity);
            return;
        }
    };
    let method = msg.method.clone().unwrap_or_default();
    tracing::debug!("Received '{}' message from identity '{}'.", Text(&method), peer.identity);
    shared.env().point(Point::JsonRpcBeforeHandle).await;
    let work = format!("jsonrpc c{} {method}", peer.conn);
    let Some((admission, entered)) = admit(shared, &work) else {
        // Dropped silently and never counted as applied, so never acknowledged:
        // the sender keeps it and replays it after the restart.
        shared.env().probe(|| Probe::GateRefused { work });
        if bug!(shared.config(), DroppedMessagesAcknowledged) {
            mark_applied(shared, peer, &msg);
        }
        return;
    };
    // A handler torn while it holds the group (its connection's task
    // dropped) reports the tear; one that runs to its end, the release.
    let guard = match entered {
        true => {
            let env = shared.env().clone();
            WorkGuard::new(admission, move |finished| {
                env.probe(|| if finished { Probe::GateReleased { work } } else { Probe::WorkTorn { work } })
            })
        }
        false => WorkGuard::new(admission, |_| {}),
    };
    shared.env().point(Point::JsonRpcAfterGate).await;
    let Some(admission) = guard.admission() else { return };
    let result = dispatch(shared, peer, &msg, admission);
    if let Some(id) = &msg.id {
        handle.send(encode(&message::reply(id, result)));
    }
    guard.finish();
}

/// Enters the work group for a message: the admission, and whether it was
/// really entered (the planted bug `JsonRpcWithoutGate` forges one).
fn admit<E: Env>(shared: &Shared<E>, work: &str) -> Option<(Admission, bool)> {
    if let Some(admission) = shared.admit_work() {
        shared.env().probe(|| Probe::GateEntered { work: work.to_string() });
        return Some((admission, true));
    }
    #[cfg(feature = "bug-zoo")]
    if bug!(shared.config(), JsonRpcWithoutGate) {
        return Some((Admission::forged(), false));
    }
    None
}

fn mark_applied<E: Env>(shared: &Shared<E>, peer: &Peer, msg: &Message) {
    if let (ConnKind::Endpoint, Some(ts)) = (peer.kind, msg.ts) {
        shared.cluster().applied(&peer.identity, ts);
    }
}

fn outcome<E: Env>(shared: &Shared<E>, peer: &Peer, method: &str, outcome: &str) {
    shared.env().probe(|| Probe::JsonRpc {
        conn: peer.conn,
        method: method.to_string(),
        outcome: outcome.to_string(),
    });
}

fn dispatch<E: Env>(
    shared: &Arc<Shared<E>>,
    peer: &Peer,
    msg: &Message,
    work: &Admission,
) -> Result<Value, String> {
    let Some(method) = msg.method.as_deref() else {
        tracing::warn!("We received a JSON-RPC response message. This should never happen because we're only ever sending notifications.");
        return Ok(Value::Null);
    };
    match method {
        message::HELLO | message::HEARTBEAT => Ok(Value::Null),
        message::CHECK_RESULT => check_result(shared, peer, msg, work),
        message::SET_LOG_POSITION => {
            if let (ConnKind::Endpoint, Some(p)) =
                (peer.kind, msg.params.get("log_position").and_then(Value::as_f64))
            {
                shared.cluster().acknowledged_by(&peer.identity, p);
            }
            Ok(Value::Null)
        }
        other => {
            log_unknown(peer, other);
            outcome(shared, peer, other, "unknown method ignored");
            Err(format!("Function '{other}' does not exist."))
        }
    }
}

/// Logs a call of an unknown function at debug level, as Icinga does (at
/// notice): a real Icinga peer calls many functions quiesce does not model
/// (`config::Update`, `event::SetNextCheck`, `pki::RequestCertificate`, ...)
/// on every connection, and none of them is a problem worth an operator's eye.
fn log_unknown(peer: &Peer, method: &str) {
    tracing::debug!("Call to non-existent function '{}' from endpoint '{}'.", Text(method), peer.identity);
}

fn check_result<E: Env>(
    shared: &Arc<Shared<E>>,
    peer: &Peer,
    msg: &Message,
    work: &Admission,
) -> Result<Value, String> {
    let method = message::CHECK_RESULT;
    if peer.kind != ConnKind::Endpoint {
        outcome(shared, peer, method, "ignored: anonymous peer");
        return Err("Check results are accepted from endpoints only.".into());
    }
    if let Some(ts) = msg.ts {
        if !shared.cluster().is_new(&peer.identity, ts) {
            outcome(shared, peer, method, "ignored: already applied");
            return Ok(Value::Null);
        }
    }
    let result = apply_check_result(shared, peer, msg, work);
    match &result {
        // Refused by the sealed store: not applied, so never acknowledged.
        Err(e @ StoreError::Sealed(_)) => outcome(shared, peer, method, &format!("dropped: {e}")),
        Ok(_) => {
            mark_applied(shared, peer, msg);
            outcome(shared, peer, method, "applied")
        }
        Err(e) => {
            // Invalid for good: counted as handled, so the sender forgets it.
            mark_applied(shared, peer, msg);
            tracing::warn!(
                "Discarding check result from endpoint '{}': {}",
                peer.identity,
                Text(&e.to_string())
            );
            outcome(shared, peer, method, &format!("rejected: {e}"));
        }
    }
    result.map_err(|e| e.to_string())
}

fn apply_check_result<E: Env>(
    shared: &Shared<E>,
    peer: &Peer,
    msg: &Message,
    work: &Admission,
) -> Result<Value, StoreError> {
    let (host, service, cr) = message::parse_check_result(&msg.params).map_err(StoreError::Invalid)?;
    let (otype, name) = match service {
        Some(s) => (ObjectType::Service, format!("{host}!{s}")),
        None => (ObjectType::Host, host),
    };
    let origin = Origin::Cluster { conn: peer.conn, identity: peer.identity.clone(), ts: msg.ts };
    let now: SystemTime = shared.env().now();
    shared.store().apply(Mutation::CheckResult { otype, name, cr }, origin, now, work)?;
    Ok(Value::Null)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use tokio::io::AsyncWriteExt;

    use crate::config::{Config, EndpointConfig};
    use crate::env::tokio::TokioEnv;
    use crate::listener::ApiListener;

    #[tokio::test(start_paused = true)]
    #[expect(clippy::disallowed_methods, reason = "the test removes its real state directory")]
    async fn an_endpoint_silent_for_exactly_the_liveness_timeout_stays_connected() {
        // Icinga drops a peer only once it has been silent for more than the
        // timeout. Real sockets never land on the boundary; paused time and
        // an in-memory stream put a check exactly on it.
        let dir = std::env::temp_dir().join(format!("quiesce-liveness-edge-{}", std::process::id()));
        let mut config = Config {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            state_dir: dir.clone(),
            node_name: "a".into(),
            endpoints: vec![EndpointConfig { name: "b".into(), host: "127.0.0.1".into(), port: 9 }],
            ..Config::default()
        };
        let t = &mut config.timings;
        t.reconnect_interval = Duration::from_secs(3600);
        t.persist_interval = Duration::from_secs(3600);
        t.liveness_check_interval = Duration::from_millis(100);
        t.liveness_timeout = Duration::from_millis(300);
        let node = ApiListener::start(TokioEnv::new(), config).await.expect("node starts");
        let shared = node.shared().clone();
        let (ours, mut theirs) = tokio::io::duplex(1 << 16);
        let hello = br#"{"jsonrpc":"2.0","method":"icinga::Hello","params":{"identity":"b"}}"#;
        theirs.write_all(format!("{}:", hello.len()).as_bytes()).await.unwrap();
        theirs.write_all(hello).await.unwrap();
        theirs.write_all(b",").await.unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], 2));
        tokio::spawn(crate::jsonrpc::handshake::incoming(
            shared.clone(),
            7,
            addr,
            ours,
            crate::tls::PeerCert::Plain,
        ));
        let connected = || shared.connected_endpoints().iter().any(|e| e == "b");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(connected(), "b's Hello registers it");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(connected(), "at the check 300 ms after its Hello, b is not yet silent for more than 300 ms");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!connected(), "at the next check it is, and it is disconnected");
        node.stop().await.expect("Stop persists the state");
        let _ = std::fs::remove_dir_all(&dir); // seam-ok: a test's cleanup of its real temp dir
    }
}
