//! `GET /v1`: who the user is, what they may do, which version answers.

use hyper::StatusCode;
use serde_json::json;

use super::Ctx;
use crate::env::Env;
use crate::http::response::Reply;

/// Answers `GET /v1`.
pub fn handle<E: Env>(ctx: &Ctx<'_, E>) -> Reply {
    let info = json!({
        "user": ctx.user.name,
        "permissions": ctx.user.permissions,
        "version": env!("CARGO_PKG_VERSION"),
        "info": "quiesce: an Icinga 2 compatible API (v1 subset). See the project's README for what it covers.",
    });
    Reply::results(StatusCode::OK, vec![info])
}
