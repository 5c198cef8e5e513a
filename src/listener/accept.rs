//! Accept loops and the life of a new connection: sniff the first byte, pass
//! the registration gate, register, serve, deregister.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use super::rewind::Rewind;
use crate::bug;
use crate::env::{AcceptError, Env, Listener, Point, Stream};
use crate::node::Shared;
use crate::probe::{ConnId, ConnKind, Probe};
use crate::tls::{PeerCert, Tls, TlsConn};

/// Accepts until the acceptor is closed. Holds the listener group for its
/// whole life, so Stop's join waits for it to exit.
pub(crate) async fn accept_loop<E: Env>(shared: Arc<Shared<E>>, listener: Arc<E::Listener>) {
    let addr = listener.local_addr().to_string();
    let Some(_guard) = shared.enter_listener() else {
        tracing::error!("Could not lock the listener wait group.");
        return;
    };
    let open = Arc::new(OpenConnections::default());
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => on_accept(&shared, &open, &addr, stream, peer),
            Err(AcceptError::Closed) if bug!(shared.config(), AcceptLoopAfterClose) => {
                accept_failed(&shared, &addr, "listener closed").await;
            }
            Err(AcceptError::Closed) => break,
            Err(AcceptError::Io(e)) => accept_failed(&shared, &addr, &e.to_string()).await,
        }
    }
    shared.env().probe(|| Probe::AcceptLoopExited { addr });
}

/// An accept error other than "closed": one log line, then a back-off, so a
/// persistent failure can never become a busy loop.
async fn accept_failed<E: Env>(shared: &Shared<E>, addr: &str, error: &str) {
    tracing::error!("Cannot accept new connection: {error}");
    shared.env().probe(|| Probe::AcceptError { addr: addr.to_string(), error: error.to_string() });
    tokio::time::sleep(shared.config().timings.accept_backoff).await;
}

/// The connections one listener has open, against `max_connections`.
#[derive(Default)]
struct OpenConnections {
    count: Arc<AtomicUsize>,
    /// Whether the cap was hit since the count was last below it: the
    /// first refusal of an episode is logged, the rest only counted.
    saturated: AtomicBool,
}

/// One open connection's place under the cap; freed when dropped.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl OpenConnections {
    /// A place for a new connection, or `None` at the cap. Only the accept
    /// loop takes places, so checking and counting need no lock.
    fn take(&self, max: usize) -> Option<Slot> {
        if self.count.load(Ordering::SeqCst) >= max {
            return None;
        }
        self.count.fetch_add(1, Ordering::SeqCst);
        self.saturated.store(false, Ordering::SeqCst);
        Some(Slot(self.count.clone()))
    }
}

/// Closes a connection over the cap at once and counts it.
fn refuse_over_cap<E: Env>(shared: &Shared<E>, open: &OpenConnections, addr: &str, conn: ConnId) {
    let max = shared.config().limits.max_connections;
    shared.refused_connection();
    if !open.saturated.swap(true, Ordering::SeqCst) {
        tracing::warn!(
            "Listener '{addr}' has {max} connections open (max_connections): closing new ones at once until some end."
        );
    }
    shared.reject(conn, "connection limit reached");
}

fn on_accept<E: Env>(
    shared: &Arc<Shared<E>>,
    open: &OpenConnections,
    addr: &str,
    stream: E::Stream,
    peer: SocketAddr,
) {
    let conn = shared.next_conn_id();
    shared.env().probe(|| Probe::Accepted { conn, peer: peer.to_string() });
    // The seed PR's race: an accept that completes after close was requested.
    // Stop has begun, so the connection is turned away, never registered.
    if shared.listener_stop().is_raised() {
        if bug!(shared.config(), AcceptAfterCloseRegistered) {
            register_from_accept_loop(shared, conn, peer, stream);
            return;
        }
        shared.reject(conn, "accepted after the listener was closed");
        return;
    }
    let Some(slot) = open.take(shared.config().limits.max_connections) else {
        return refuse_over_cap(shared, open, addr, conn);
    };
    let s = shared.clone();
    shared.spawn("connection", async move {
        handle(s, conn, peer, stream).await;
        drop(slot);
    });
}

/// Planted bug: the accept loop registers a late connection itself, under
/// its own listener-group guard, as the pre-#10460 code effectively did.
fn register_from_accept_loop<E: Env>(
    shared: &Arc<Shared<E>>,
    conn: ConnId,
    peer: SocketAddr,
    stream: E::Stream,
) {
    shared.register(conn, ConnKind::Http);
    let s = shared.clone();
    shared.spawn("connection", async move {
        crate::http::serve(s.clone(), conn, peer, stream).await;
        deregister_http(&s, conn, peer);
    });
}

/// Waits for the first byte, bounded by the connect timeout and by Stop.
async fn sniff<E: Env, S: Stream>(shared: &Shared<E>, stream: &mut S) -> Result<u8, String> {
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(shared.config().timings.connect_timeout, stream.read(&mut byte));
    let stopping = shared.listener_stop().raised();
    tokio::select! {
        biased;
        _ = stopping, if !bug!(shared.config(), NoRegistrationGate) => Err("the listener is stopping".into()),
        r = read => match r {
            Err(_) => Err("timed out waiting for the first byte".into()),
            Ok(Ok(0)) => Err("connection closed before the first byte".into()),
            Ok(Ok(_)) => Ok(byte[0]),
            Ok(Err(e)) => Err(e.to_string()),
        },
    }
}

/// The server side of the TLS handshake, bounded by Icinga's handshake
/// timeout and by Stop, as sniffing is.
async fn tls_handshake<E: Env>(
    shared: &Shared<E>,
    tls: &Tls,
    stream: E::Stream,
) -> Result<(TlsConn<E::Stream>, PeerCert), String> {
    let handshake = tokio::time::timeout(shared.config().timings.tls_handshake_timeout, tls.accept(stream));
    tokio::select! {
        biased;
        _ = shared.listener_stop().raised(), if !bug!(shared.config(), NoRegistrationGate) => {
            Err("the listener is stopping".into())
        }
        r = handshake => match r {
            Err(_) => Err("TLS handshake timed out".into()),
            Ok(Err(e)) => Err(format!("TLS handshake failed: {e}")),
            Ok(Ok(done)) => Ok(done),
        },
    }
}

async fn handle<E: Env>(shared: Arc<Shared<E>>, conn: ConnId, peer: SocketAddr, stream: E::Stream) {
    let Some(tls) = shared.tls().cloned() else {
        return serve(shared, conn, peer, stream, PeerCert::Plain).await;
    };
    match tls_handshake(&shared, &tls, stream).await {
        Ok((stream, cert)) => serve(shared, conn, peer, stream, cert).await,
        Err(why) => {
            tracing::warn!("Client TLS handshake failed (from [{peer}]): {why}");
            shared.reject(conn, &why)
        }
    }
}

/// Sniffs the first byte of a connection (after TLS, if any) and hands it
/// to the protocol it starts.
async fn serve<E: Env, S: Stream>(
    shared: Arc<Shared<E>>,
    conn: ConnId,
    peer: SocketAddr,
    mut stream: S,
    cert: PeerCert,
) {
    let first = match sniff(&shared, &mut stream).await {
        Ok(b) => b,
        Err(why) => {
            tracing::info!("No data received on new API connection [{peer}]: {why}.");
            return shared.reject(conn, &why);
        }
    };
    shared.env().point(Point::ListenerBeforeRegister).await;
    let stream = Rewind::new(Bytes::copy_from_slice(&[first]), stream);
    if first.is_ascii_digit() {
        // The cluster path reads the Hello first and passes the gate itself.
        return crate::jsonrpc::handshake::incoming(shared, conn, peer, stream, cert).await;
    }
    let gate = shared.enter_listener();
    if gate.is_none() && !bug!(shared.config(), NoRegistrationGate) {
        return shared.reject(conn, "the listener group is closed");
    }
    shared.register(conn, ConnKind::Http);
    tracing::debug!("New HTTP client");
    drop(gate);
    crate::http::serve(shared.clone(), conn, peer, stream).await;
    deregister_http(&shared, conn, peer);
}

fn deregister_http<E: Env>(shared: &Shared<E>, conn: ConnId, peer: SocketAddr) {
    tracing::info!("HTTP client disconnected (from [{peer}])");
    shared.unregister(conn);
}
