//! The Icinga-compatible REST API over HTTP/1.1, served with hyper.
//!
//! Parsing is pure ([`auth`], [`params`], [`router`], [`response`] and the
//! handlers' validation); sockets, the store and the work group are touched
//! only by [`server`], [`dispatch`] and the handlers' edges.

pub mod auth;
mod body;
pub mod dispatch;
pub mod filter;
mod flight;
pub mod gate;
pub mod handlers;
pub mod params;
pub mod response;
pub mod router;
mod server;
pub mod targets;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::env::{Env, Stream};
use crate::listener::Shared;
use crate::probe::ConnId;

/// Serves one registered HTTP connection until it closes: keep-alive, the
/// idle timeout, and Stop (`shared.http_stop`) all end it here.
pub async fn serve<E: Env, S: Stream>(shared: Arc<Shared<E>>, conn: ConnId, peer: SocketAddr, stream: S) {
    server::run(shared, conn, peer, stream).await
}
