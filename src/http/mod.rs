//! The Icinga-compatible REST API over HTTP/1.1, served with hyper.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::env::{Env, Stream};
use crate::listener::Shared;
use crate::probe::ConnId;

/// Serves one registered HTTP connection until it closes: keep-alive, the
/// idle timeout, and Stop (`shared.http_stop`) all end it here.
pub async fn serve<E: Env, S: Stream>(shared: Arc<Shared<E>>, conn: ConnId, peer: SocketAddr, stream: S) {
    let _ = (shared, conn, peer, stream);
    todo!("written by the HTTP work")
}
