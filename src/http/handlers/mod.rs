//! The endpoint handlers and the context they share.

pub mod actions;
pub mod create;
pub mod delete;
pub mod events;
pub mod info;
pub mod modify;
pub mod query;
pub mod status;

use std::sync::Arc;
use std::time::SystemTime;

use hyper::{Method, Version};

use super::auth;
use super::params::Params;
use super::response::{ApiError, Reply};
use crate::config::ApiUser;
use crate::env::Env;
use crate::node::Shared;
use crate::probe::ConnId;
use crate::store::Object;
use crate::store::{ObjectType, Origin};

/// One authenticated request, as handlers see it.
pub struct Ctx<'a, E: Env> {
    /// The node.
    pub shared: &'a Arc<Shared<E>>,
    /// The connection's number.
    pub conn: ConnId,
    /// The request's number on its connection, from 1.
    pub request: u64,
    /// The method, after `X-HTTP-Method-Override`.
    pub method: &'a Method,
    /// The URL path as sent, for labels.
    pub path: &'a str,
    /// The HTTP version.
    pub version: Version,
    /// The client's `X-Request-Id`, if any.
    pub request_id: Option<&'a str>,
    /// The authenticated user.
    pub user: &'a ApiUser,
    /// Body and query parameters; handlers add the type and name of the URL.
    pub params: Params,
}

impl<E: Env> Ctx<'_, E> {
    /// The label of this request's work in probes: `http c<conn> r<n> <METHOD> <path>`.
    pub fn work_label(&self) -> String {
        format!("http c{} r{} {} {}", self.conn, self.request, self.method, self.path)
    }

    /// Who the journal names as the cause of a mutation.
    pub fn origin(&self) -> Origin {
        Origin::Http {
            conn: self.conn,
            request: self.request,
            request_id: self.request_id.map(str::to_string),
            user: self.user.name.clone(),
        }
    }

    /// Wall-clock time, through the seam.
    pub fn now(&self) -> SystemTime {
        self.shared.env().now()
    }

    /// Whether the user holds `permission`.
    pub fn may(&self, permission: &str) -> bool {
        auth::has_permission(&self.user.permissions, permission)
    }

    /// `403 Missing permission: <permission>` unless the user holds it.
    pub fn require(&self, permission: &str) -> Result<(), ApiError> {
        if self.may(permission) {
            Ok(())
        } else {
            Err(ApiError::new(403, format!("Missing permission: {}", permission.to_lowercase())))
        }
    }
}

/// The type named by a URL's plural, or `400 Invalid type specified.`.
pub fn url_type(plural: &str) -> Result<ObjectType, ApiError> {
    ObjectType::from_plural(plural).ok_or_else(|| ApiError::new(400, "Invalid type specified."))
}

/// Puts the URL's type and name into the parameters, as Icinga's object
/// handlers do before resolving targets.
pub fn set_url_target(params: &mut Params, otype: ObjectType, name: Option<&str>) {
    params.set("type", otype.name().into());
    if let Some(name) = name {
        params.set(otype.lower(), name.into());
    }
}

/// The objects a `/v1/objects/<plural>[/<name>]` request targets, once the
/// user holds `objects/<verb>/<Type>`.
pub async fn url_objects<E: Env>(
    ctx: &mut Ctx<'_, E>,
    plural: &str,
    name: Option<&str>,
    verb: &str,
) -> Step<Vec<Arc<Object>>> {
    let otype = url_type(plural)?;
    set_url_target(&mut ctx.params, otype, name);
    super::targets::find(ctx, &[otype], &format!("objects/{verb}/{}", otype.name())).await
}

/// Result of a fallible handler step: an error envelope ends the request.
pub type Step<T> = Result<T, ApiError>;

/// The reply of a handler body written with `?`.
pub fn answer(result: Step<Reply>) -> Reply {
    result.unwrap_or_else(Reply::from)
}
