//! Opening cluster connections: the accepting side reads the peer's Hello
//! and answers with its own; the connecting side sends Hello first. Both
//! pass the listener group's registration gate, as HTTP connections do.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Map, Value};
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio_util::codec::FramedRead;
use tokio_util::either::Either;

use super::cluster::{AnonymousPlace, ConnHandle, Refusal};
use super::connection::{self, encode, Peer, Wire};
use super::message::{self, Message};
use super::netstring::NetstringCodec;
use super::queue::send_queue;
use crate::bug;
use crate::env::{Env, Stream};
use crate::node::Shared;
use crate::probe::{ConnId, ConnKind};
use crate::store::unix_seconds;
use crate::tls::{PeerCert, TlsConn};
use crate::waitgroup::Guard;

/// Serves a connection whose first byte was a digit.
pub async fn incoming<E: Env, S: Stream>(
    shared: Arc<Shared<E>>,
    conn: ConnId,
    addr: SocketAddr,
    stream: S,
    cert: PeerCert,
) {
    let max = shared.config().limits.max_anonymous;
    // Every peer counts as anonymous from its first byte until its Hello
    // names a configured endpoint, so silent peers cannot pile up.
    let Some(place) = shared.cluster().anonymous_place(max) else {
        tracing::info!("Ignoring anonymous JSON-RPC connection [{addr}]. Max connections ({max}) exceeded.");
        return shared.reject(conn, "anonymous connection limit reached");
    };
    let (rd, writer) = tokio::io::split(stream);
    let mut reader = FramedRead::new(rd, NetstringCodec::new(shared.config().limits.jsonrpc_before_hello));
    let first = match first_message(&shared, &mut reader).await {
        Ok(m) => m,
        Err(why) => {
            tracing::info!("No data received on new API connection [{addr}]: {why}.");
            return shared.reject(conn, &why);
        }
    };
    let claimed = Message::from_map(first.clone()).ok().and_then(|m| m.hello_identity().map(String::from));
    let (identity, kind) = match identify(&shared, &cert, claimed.as_deref(), addr) {
        Ok(who) => who,
        Err(why) => {
            tracing::warn!("{why}");
            shared.reject(conn, &why);
            // Refused, it is no anonymous peer: only a certificate our CA
            // signed gets this far, and its goodbye is capped.
            drop(place);
            // Planted bug: the goodbye under the registration lock, as Icinga's HEAD has it.
            let held = bug!(shared.config(), RefusalGoodbyeHoldsListener).then(|| shared.enter_listener());
            goodbye(&shared, writer).await;
            return drop(held);
        }
    };
    let is_hello = kind == ConnKind::Endpoint || claimed_hello(&first);
    if claimed_hello(&first) {
        let version = first.get("params").and_then(|p| p.get("version")).map(Value::to_string);
        let version = version.unwrap_or_else(|| "none".into());
        let version = crate::logsafe::Text(&version);
        tracing::debug!("Received 'icinga::Hello' message from identity '{identity}' (version {version}).");
    }
    let pending = if is_hello { None } else { Some(first) };
    let place = (kind == ConnKind::Anonymous).then_some(place);
    let initiator = identity.clone();
    let peer = Peer::new(conn, addr, identity, kind);
    start(shared, Opening { peer, initiator, reader, writer, pending, gate: None, place }).await;
}

/// Who a peer is. With TLS: the CN of a certificate our CA signed, which
/// must be a configured endpoint and which a Hello may not contradict;
/// without a valid certificate, anonymous whatever its Hello claims. On
/// plain TCP (loopback, simulation): the Hello's claim of an endpoint.
fn identify<E: Env>(
    shared: &Shared<E>,
    cert: &PeerCert,
    claimed: Option<&str>,
    addr: SocketAddr,
) -> Result<(String, ConnKind), String> {
    // Names from the wire go into logs: made safe once, here.
    let safe = crate::logsafe::text;
    let anonymous =
        |label: Option<&str>| (label.map(safe).unwrap_or(format!("[{addr}]")), ConnKind::Anonymous);
    match cert {
        PeerCert::Plain => Ok(match claimed {
            Some(id) if shared.cluster().is_endpoint(id) => (id.to_string(), ConnKind::Endpoint),
            other => anonymous(other),
        }),
        PeerCert::Verified { cn } => match claimed {
            Some(id) if id != cn => Err(format!(
                "Hello from [{addr}] claims identity '{}' but its certificate is for '{}'. Closing the connection.",
                safe(id),
                safe(cn)
            )),
            _ if shared.cluster().is_endpoint(cn) => Ok((cn.clone(), ConnKind::Endpoint)),
            _ => Err(format!("Unknown endpoint '{}' with valid certificate. Aborting JSON-RPC connection.", safe(cn))),
        },
        PeerCert::Unverified { cn, .. } => Ok(anonymous(cn.as_deref())),
        PeerCert::Absent => Ok(anonymous(None)),
    }
}

/// Says goodbye to a refused peer, as Icinga's `GracefulDisconnect` does:
/// capped at the close cap. Callers hold no gate, so Stop never waits for a
/// peer that does not answer.
async fn goodbye<E: Env, S: Stream>(shared: &Shared<E>, mut writer: WriteHalf<S>) {
    let _ = tokio::time::timeout(shared.config().timings.close_cap, writer.shutdown()).await;
}

fn claimed_hello(first: &Map<String, Value>) -> bool {
    first.get("method").and_then(Value::as_str) == Some(message::HELLO)
}

/// Reads the peer's first message, bounded by the connect timeout and Stop.
async fn first_message<E: Env, R: tokio::io::AsyncRead + Unpin>(
    shared: &Shared<E>,
    reader: &mut FramedRead<R, NetstringCodec>,
) -> Result<Map<String, Value>, String> {
    let read = tokio::time::timeout(shared.config().timings.connect_timeout, reader.next());
    tokio::select! {
        biased;
        _ = shared.listener_stop().raised(), if !bug!(shared.config(), NoRegistrationGate) => {
            Err("the listener is stopping".into())
        }
        r = read => match r {
            Err(_) => Err("timed out waiting for Hello".into()),
            Ok(None) => Err("connection closed before Hello".into()),
            Ok(Some(Err(e))) => Err(e.to_string()),
            Ok(Some(Ok(m))) => Ok(m),
        },
    }
}

/// Connects to a configured endpoint, sends Hello and starts the connection.
pub async fn outgoing<E: Env>(shared: Arc<Shared<E>>, name: String, host: String, port: u16) {
    // An attempt is a registration in progress: Stop's listener join waits
    // for it and the listener's stop signal cancels it, so no Hello leaves
    // once Stop is past step 2.
    if let Some(attempt) = shared.enter_listener() {
        tracing::info!("Reconnecting to endpoint '{name}' via host '{host}' and port '{port}'");
        match connect_and_hello(&shared, &name, &host, port).await {
            Ok(Some(stream)) => run_outgoing(&shared, &name, port, stream, attempt).await,
            Ok(None) => tracing::info!("Connecting to endpoint '{name}' cancelled: the API is stopping"),
            Err(e) => tracing::error!("{e}"),
        }
    }
    shared.cluster().done_connecting(&name);
}

/// Opens the socket and writes our Hello, within the connect timeout;
/// `None` if the listener stopped first.
async fn connect_and_hello<E: Env>(
    shared: &Shared<E>,
    name: &str,
    host: &str,
    port: u16,
) -> Result<Option<Either<E::Stream, TlsConn<E::Stream>>>, String> {
    let attempt = async {
        let stream = shared.env().connect(host, port).await.map_err(|e| e.to_string())?;
        let mut stream = match shared.tls() {
            None => Either::Left(stream),
            Some(tls) => {
                Either::Right(tls.connect(name, stream).await.map_err(|e| format!("TLS handshake: {e}"))?)
            }
        };
        let mut hello = bytes::BytesMut::new();
        super::netstring::encode_payload(&encode(&message::hello(&shared.config().node_name)), &mut hello);
        stream.write_all(&hello).await.map_err(|e| e.to_string())?;
        // Over TLS the Hello may otherwise wait in the session's buffer.
        stream.flush().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(stream)
    };
    let timeout = shared.config().timings.connect_timeout;
    tokio::select! {
        biased;
        _ = shared.listener_stop().raised() => Ok(None),
        r = tokio::time::timeout(timeout, attempt) => match r {
            Ok(Ok(stream)) => Ok(Some(stream)),
            Ok(Err(e)) => Err(format!("Cannot connect to host '{host}' on port '{port}': {e}")),
            Err(_) => Err(format!("Timeout while reconnecting to endpoint '{name}', cancelling attempt")),
        },
    }
}

async fn run_outgoing<E: Env, S: Stream>(
    shared: &Arc<Shared<E>>,
    name: &str,
    port: u16,
    stream: S,
    attempt: Guard,
) {
    let conn = shared.next_conn_id();
    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    let (rd, wr) = tokio::io::split(stream);
    let reader = FramedRead::new(rd, NetstringCodec::new(shared.config().limits.jsonrpc_endpoint));
    let peer = Peer::new(conn, addr, name.to_string(), ConnKind::Endpoint);
    let initiator = shared.config().node_name.clone();
    shared.cluster().done_connecting(name);
    let opening =
        Opening { peer, initiator, reader, writer: wr, pending: None, gate: Some(attempt), place: None };
    start(shared.clone(), opening).await;
    tracing::debug!("Finished reconnecting to endpoint '{name}'");
}

/// A cluster connection on its way to registration.
struct Opening<S> {
    peer: Peer,
    /// The node that opened the connection.
    initiator: String,
    reader: FramedRead<ReadHalf<S>, NetstringCodec>,
    writer: WriteHalf<S>,
    /// A message read during the handshake that still needs handling.
    pending: Option<Map<String, Value>>,
    /// The listener guard an outgoing attempt held while connecting.
    gate: Option<Guard>,
    /// An anonymous peer's place, taken at its first byte.
    place: Option<AnonymousPlace>,
}

/// Passes the registration gate, registers, and runs the connection.
async fn start<E: Env, S: Stream>(shared: Arc<Shared<E>>, mut o: Opening<S>) {
    let gate = o.gate.take().or_else(|| shared.enter_listener());
    if gate.is_none() && !bug!(shared.config(), NoRegistrationGate) {
        return shared.reject(o.peer.conn, "the listener group is closed");
    }
    let (tx, queue) = send_queue(shared.config().limits.send_queue_bytes);
    let handle = ConnHandle::new(o.peer.conn, &o.peer.identity, &o.initiator, tx);
    let backlog = match admit(&shared, &o.peer, &handle) {
        Ok(backlog) => backlog,
        Err(why) => {
            drop(gate);
            goodbye(&shared, o.writer).await;
            return shared.reject(o.peer.conn, &why);
        }
    };
    let limits = &shared.config().limits;
    let max_len =
        if o.peer.kind == ConnKind::Endpoint { limits.jsonrpc_endpoint } else { limits.jsonrpc_anonymous };
    o.reader.decoder_mut().set_max_len(max_len);
    shared.register(o.peer.conn, o.peer.kind);
    tracing::info!("New JSON-RPC client for identity '{}' ({:?})", o.peer.identity, o.peer.kind);
    drop(gate);
    // The accepting side answers the Hello before anything else it sends.
    let hello = (o.initiator != shared.config().node_name)
        .then(|| encode(&message::hello(&shared.config().node_name)));
    let first = hello.into_iter().chain(backlog).collect();
    let wire = Wire { reader: o.reader, writer: o.writer, queue, first, pending: o.pending };
    connection::run(shared.clone(), o.peer.clone(), handle, wire).await;
    shared.cluster().deregister(o.peer.conn);
    shared.unregister(o.peer.conn);
    drop(o.place);
}

/// Registers with the cluster state: the endpoint's tie-break, or the
/// anonymous set. An endpoint's backlog to replay is returned.
fn admit<E: Env>(shared: &Shared<E>, peer: &Peer, handle: &ConnHandle) -> Result<Vec<Bytes>, String> {
    if peer.kind != ConnKind::Endpoint {
        shared.cluster().register_anonymous(handle.clone());
        return Ok(vec![]);
    }
    let now = unix_seconds(shared.env().now());
    match shared.cluster().register_endpoint(&shared.config().node_name, handle.clone(), now) {
        Ok(backlog) => {
            let position = shared.cluster().applied_position(&peer.identity);
            tracing::info!(
                "Endpoint '{}' connected; its messages up to log position {position} are applied",
                peer.identity
            );
            if !backlog.is_empty() {
                tracing::info!("Replaying {} messages to endpoint '{}'", backlog.len(), peer.identity);
            }
            Ok(backlog)
        }
        Err(Refusal::Duplicate) => {
            tracing::info!(
                "Ignoring JSON-RPC connection [{}]. We're already connected to Endpoint '{}'.",
                peer.addr,
                peer.identity
            );
            Err("duplicate connection for the endpoint".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Config;
    use crate::env::tokio::TokioEnv;
    use crate::listener::ApiListener;

    #[tokio::test]
    #[expect(clippy::disallowed_methods, reason = "the test removes its real state directory")]
    async fn a_peer_whose_hello_was_read_as_the_listener_group_closed_is_not_registered() {
        // On a runtime with several threads, Stop's step 2 can close the
        // listener group after a peer's Hello was read and before the peer
        // registers; no single-threaded test can place Stop there, so this
        // hands `start` such a peer directly. Registered after the join,
        // the connection would outlive Stop's step 3 and run past 'api' stopped.
        let dir = std::env::temp_dir().join(format!("quiesce-handshake-late-{}", std::process::id()));
        let config = Config {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            state_dir: dir.clone(),
            node_name: "a".into(),
            ..Config::default()
        };
        let node = ApiListener::start(TokioEnv::new(), config).await.expect("node starts");
        let shared = node.shared().clone();
        node.stop().await.expect("Stop persists the state");
        let (ours, _theirs) = tokio::io::duplex(1024);
        let (rd, writer) = tokio::io::split(ours);
        let reader = FramedRead::new(rd, NetstringCodec::new(1024));
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        let peer = Peer::new(1, addr, "b".into(), ConnKind::Anonymous);
        let opening =
            Opening { peer, initiator: "b".into(), reader, writer, pending: None, gate: None, place: None };
        tokio::time::timeout(Duration::from_secs(2), start(shared.clone(), opening))
            .await
            .expect("a peer arriving after the listener group closed is turned away at once");
        assert_eq!(shared.connection_counts(), (0, 0, 0), "nothing registers after the listener joined");
        let _ = std::fs::remove_dir_all(&dir); // seam-ok: a test's cleanup on the real environment
    }
}
