//! Opening cluster connections: the accepting side reads the peer's Hello
//! and answers with its own; the connecting side sends Hello first. Both
//! pass the listener group's registration gate, as HTTP connections do.

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;

use super::cluster::{ConnHandle, Refusal};
use super::connection::{self, encode, Peer};
use super::message::{self, Message};
use super::netstring::NetstringCodec;
use crate::bug;
use crate::env::{Env, Stream};
use crate::listener::{register, reject, unregister, Shared};
use crate::probe::{ConnId, ConnKind};
use crate::waitgroup::Guard;

/// Serves a connection whose first byte was a digit.
pub async fn incoming<E: Env, S: Stream>(shared: Arc<Shared<E>>, conn: ConnId, addr: SocketAddr, stream: S) {
    let (rd, wr) = tokio::io::split(stream);
    let mut reader = FramedRead::new(rd, NetstringCodec::new(shared.config.limits.jsonrpc_anonymous));
    let first = match first_message(&shared, &mut reader).await {
        Ok(m) => m,
        Err(why) => {
            tracing::info!("No data received on new API connection [{addr}]: {why}.");
            return reject(&shared, conn, &why);
        }
    };
    let claimed = Message::from_map(first.clone()).ok().and_then(|m| m.hello_identity().map(String::from));
    let (identity, kind) = match claimed {
        Some(id) if shared.cluster.is_endpoint(&id) => (id, ConnKind::Endpoint),
        Some(id) => (id, ConnKind::Anonymous),
        None => (format!("[{addr}]"), ConnKind::Anonymous),
    };
    let initiator = identity.clone();
    let is_hello = kind == ConnKind::Endpoint || claimed_hello(&first);
    let pending = if is_hello { None } else { Some(first) };
    let peer = Peer { conn, addr, identity, kind };
    start(shared, peer, &initiator, reader, wr, pending, None).await;
}

fn claimed_hello(first: &Map<String, Value>) -> bool {
    first.get("method").and_then(Value::as_str) == Some(message::HELLO)
}

/// Reads the peer's first message, bounded by the connect timeout and Stop.
async fn first_message<E: Env, R: tokio::io::AsyncRead + Unpin>(
    shared: &Shared<E>,
    reader: &mut FramedRead<R, NetstringCodec>,
) -> Result<Map<String, Value>, String> {
    let read = tokio::time::timeout(shared.config.timings.connect_timeout, reader.next());
    tokio::select! {
        biased;
        _ = shared.listener_stop.cancelled(), if !bug!(shared.config, NoRegistrationGate) => {
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
    if let Some(attempt) = shared.listeners.try_enter() {
        tracing::info!("Reconnecting to endpoint '{name}' via host '{host}' and port '{port}'");
        match connect_and_hello(&shared, &name, &host, port).await {
            Ok(Some(stream)) => run_outgoing(&shared, &name, port, stream, attempt).await,
            Ok(None) => tracing::info!("Connecting to endpoint '{name}' cancelled: the API is stopping"),
            Err(e) => tracing::error!("{e}"),
        }
    }
    shared.cluster.done_connecting(&name);
}

/// Opens the socket and writes our Hello, within the connect timeout;
/// `None` if the listener stopped first.
async fn connect_and_hello<E: Env>(
    shared: &Shared<E>,
    name: &str,
    host: &str,
    port: u16,
) -> Result<Option<E::Stream>, String> {
    let attempt = async {
        let mut stream = shared.env.connect(host, port).await.map_err(|e| e.to_string())?;
        let mut hello = bytes::BytesMut::new();
        super::netstring::encode_payload(&encode(&message::hello(&shared.config.node_name)), &mut hello);
        stream.write_all(&hello).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(stream)
    };
    let timeout = shared.config.timings.connect_timeout;
    tokio::select! {
        biased;
        _ = shared.listener_stop.cancelled() => Ok(None),
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
    let reader = FramedRead::new(rd, NetstringCodec::new(shared.config.limits.jsonrpc_endpoint));
    let peer = Peer { conn, addr, identity: name.to_string(), kind: ConnKind::Endpoint };
    let me = shared.config.node_name.clone();
    shared.cluster.done_connecting(name);
    start(shared.clone(), peer, &me, reader, wr, None, Some(attempt)).await;
    tracing::debug!("Finished reconnecting to endpoint '{name}'");
}

/// Passes the registration gate, registers, and runs the connection.
async fn start<E: Env, S: Stream>(
    shared: Arc<Shared<E>>,
    peer: Peer,
    initiator: &str,
    mut reader: FramedRead<tokio::io::ReadHalf<S>, NetstringCodec>,
    mut writer: tokio::io::WriteHalf<S>,
    pending: Option<Map<String, Value>>,
    gate: Option<Guard>,
) {
    // An outgoing attempt brings the guard it held while connecting.
    let gate = gate.or_else(|| shared.listeners.try_enter());
    if gate.is_none() && !bug!(shared.config, NoRegistrationGate) {
        return reject(&shared, peer.conn, "the listener group is closed");
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let handle = ConnHandle::new(peer.conn, &peer.identity, initiator, tx);
    if initiator != shared.config.node_name {
        // The accepting side answers the Hello before anything else it sends.
        handle.send(encode(&message::hello(&shared.config.node_name)));
    }
    if let Err(why) = admit(&shared, &peer, &handle) {
        drop(gate);
        let _ = writer.shutdown().await;
        return reject(&shared, peer.conn, &why);
    }
    if peer.kind == ConnKind::Endpoint {
        reader.decoder_mut().set_max_len(shared.config.limits.jsonrpc_endpoint);
    }
    register(&shared, peer.conn, peer.kind);
    tracing::info!("New JSON-RPC client for identity '{}' ({:?})", peer.identity, peer.kind);
    drop(gate);
    connection::run(shared.clone(), peer.clone(), handle, rx, reader, writer, pending).await;
    shared.cluster.deregister(peer.conn);
    unregister(&shared, peer.conn);
}

/// Registers with the cluster state: the endpoint's tie-break or the anonymous cap.
fn admit<E: Env>(shared: &Shared<E>, peer: &Peer, handle: &ConnHandle) -> Result<(), String> {
    match peer.kind {
        ConnKind::Endpoint => {
            match shared.cluster.register_endpoint(&shared.config.node_name, handle.clone()) {
                Ok(replayed) => {
                    let position = shared.cluster.applied_position(&peer.identity);
                    tracing::info!(
                        "Endpoint '{}' connected; its messages up to log position {position} are applied",
                        peer.identity
                    );
                    if replayed > 0 {
                        tracing::info!("Replaying {replayed} messages to endpoint '{}'", peer.identity);
                    }
                    Ok(())
                }
                Err(Refusal::Duplicate) => {
                    tracing::info!(
                        "Ignoring JSON-RPC connection [{}]. We're already connected to Endpoint '{}'.",
                        peer.addr,
                        peer.identity
                    );
                    Err("duplicate connection for the endpoint".into())
                }
                Err(Refusal::AnonymousLimit) => Err("anonymous limit".into()),
            }
        }
        _ => {
            let max = shared.config.limits.max_anonymous;
            shared.cluster.register_anonymous(handle.clone(), max).map_err(|_| {
                tracing::debug!(
                    "Ignoring anonymous JSON-RPC connection [{}]. Max connections ({max}) exceeded.",
                    peer.addr
                );
                "anonymous connection limit reached".to_string()
            })
        }
    }
}
