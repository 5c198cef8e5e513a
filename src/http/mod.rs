//! The Icinga-compatible REST API over HTTP/1.1, served with hyper.
//!
//! Parsing is pure ([`auth`], [`params`], [`router`], [`response`] and the
//! handlers' validation); sockets, the store and the work group are touched
//! only by `server`, [`dispatch`] and the handlers' edges.
//!
//! Where this differs from Icinga 2.15, on purpose:
//! - Stop closes connections (contract section 3, step 4): idle ones at once,
//!   others after their response, event streams after their last line;
//!   responses written during Stop carry `Connection: close`.
//! - Every error body is JSON, also the 400 for a missing `Accept` and the
//!   401 (Icinga answers those in HTML unless the client accepts JSON).
//!   `Accept` may list several types; `application/json` must be one of them.
//! - A missing permission is 403 everywhere (create included), and a filter
//!   that does not parse or evaluate is 400 `Invalid filter: ...`, never
//!   Icinga's 404 `No objects found.`.
//! - The body limit holds for every body, chunked or not (413); a body that
//!   stalls for `http_idle_timeout` is a 400.
//! - Multi-object responses use the contract's overall status (200 + 503 is
//!   503) for modify and delete too.
//! - No templates exist, so a create naming one fails as Icinga does for an
//!   unknown template; `meta=location` is null (no object has a source file).
//! - Validation errors end after Icinga's message: Icinga appends the
//!   location in the config file it generated for the object, and quiesce
//!   writes none. No CheckCommand objects exist, so any non-empty
//!   `check_command` passes. `restore_attrs` restores defaults, not the
//!   values an object was created with, so restoring `check_command` is
//!   refused as an empty one would be.
//! - A checkable that has never been checked is OK (UP), SOFT, attempt 1.
//!   Icinga's raw state of one is UNKNOWN, which reads DOWN for a host; so
//!   there a new host can be acknowledged, and its first problem counts as
//!   attempt 2. Here the first problem is SOFT attempt 1, as after any OK.
//!   No dependencies exist, so every result records `reachable: true`.
//! - No `Date` header: hyper would read the wall clock behind the seam's back.
//! - Responses hyper writes on its own (400 for a malformed head, 431 for an
//!   oversized one) carry no `Server` header and no log line or probe.

pub mod auth;
mod body;
pub mod dispatch;
pub mod filter;
mod flight;
pub mod gate;
pub mod handlers;
pub mod params;
mod reclaim;
pub mod response;
pub mod router;
mod server;
pub mod targets;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::env::{Env, Stream};
use crate::node::Shared;
use crate::probe::ConnId;

/// Serves one registered HTTP connection until it closes: keep-alive, the
/// idle timeout, and Stop (`shared.http_stop()`) all end it here.
pub async fn serve<E: Env, S: Stream>(shared: Arc<Shared<E>>, conn: ConnId, peer: SocketAddr, stream: S) {
    server::run(shared, conn, peer, stream).await
}
