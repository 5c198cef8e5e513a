//! The way of one request through the API, in Icinga's order: method
//! override, the Accept check, authentication, the body (within its limit),
//! the parameters, then the handler the route names.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, LOCATION, USER_AGENT, WWW_AUTHENTICATE};
use hyper::{Method, StatusCode, Version};

use super::auth;
use super::handlers::{self, Ctx};
use super::params::{path_segments, Params};
use super::response::Reply;
use super::router::{not_found_text, route, Route};
use crate::env::Env;
use crate::logsafe::Text;
use crate::node::Shared;
use crate::probe::ConnId;

/// What the pipeline needs of a request head, read without trusting it.
#[derive(Clone, Debug, PartialEq)]
pub struct Head {
    /// The method, after `X-HTTP-Method-Override`.
    pub method: Method,
    /// The request target as sent, for logs.
    pub target: String,
    /// The path part of the target.
    pub path: String,
    /// The query part of the target.
    pub query: Option<String>,
    /// HTTP/1.0 or 1.1.
    pub version: Version,
    /// The `User-Agent`, for logs.
    pub agent: String,
    /// The client's `X-Request-Id`.
    pub request_id: Option<String>,
    /// Whether the client accepts `application/json`.
    pub accepts_json: bool,
    /// The raw `Authorization` header.
    pub authorization: Option<Vec<u8>>,
}

impl Head {
    /// Reads a request's head.
    pub fn read(method: &Method, uri: &hyper::Uri, version: Version, headers: &HeaderMap) -> Head {
        let text = |name: &str| headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        Head {
            method: method_override(method, headers.get("x-http-method-override")),
            target: uri.path_and_query().map_or_else(|| uri.path().to_string(), |pq| pq.as_str().to_string()),
            path: uri.path().to_string(),
            query: uri.query().map(str::to_string),
            version,
            agent: text(USER_AGENT.as_str()).unwrap_or_default(),
            request_id: text("x-request-id"),
            accepts_json: headers.get_all(ACCEPT).iter().any(accepts_json),
            authorization: headers.get(AUTHORIZATION).map(|v| v.as_bytes().to_vec()),
        }
    }
}

/// `X-HTTP-Method-Override: GET|POST|PUT|DELETE` replaces the method;
/// anything else is ignored.
pub fn method_override(method: &Method, header: Option<&HeaderValue>) -> Method {
    match header.map(HeaderValue::as_bytes) {
        Some(b"GET") => Method::GET,
        Some(b"POST") => Method::POST,
        Some(b"PUT") => Method::PUT,
        Some(b"DELETE") => Method::DELETE,
        _ => method.clone(),
    }
}

/// Whether an `Accept` value lists `application/json` (parameters ignored).
pub fn accepts_json(value: &HeaderValue) -> bool {
    String::from_utf8_lossy(value.as_bytes())
        .split(',')
        .any(|range| range.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"))
}

/// The answer to one request, and who asked (`None`: nobody authenticated).
pub struct Outcome {
    /// The answer.
    pub reply: Reply,
    /// The authenticated user's name.
    pub user: Option<String>,
    /// Whether to indent the JSON.
    pub pretty: bool,
}

/// Runs one request through the pipeline.
pub async fn process<E: Env>(
    shared: &Arc<Shared<E>>,
    conn: ConnId,
    request: u64,
    head: &Head,
    body: Incoming,
) -> Outcome {
    let user = auth::authenticate(&shared.config().api_users, head.authorization.as_deref());
    let plain = |reply| Outcome { reply, user: user.map(|u| u.name.clone()), pretty: false };
    if head.method != Method::GET && !head.accepts_json {
        return plain(
            Reply::error(400, "Accept header is missing or not set to 'application/json'.").closing(),
        );
    }
    let Some(user) = user else {
        tracing::warn!("Unauthorized request: {} {}", head.method, Text(&head.target));
        return plain(unauthorized());
    };
    let limits = &shared.config().limits;
    let limit = auth::body_limit(user, limits.http_body, limits.http_body_admin);
    let bytes = match read_body(shared, body, limit).await {
        Ok(bytes) => bytes,
        Err(reply) => return plain(reply),
    };
    let params = match Params::from_request(&bytes, head.query.as_deref()) {
        Ok(params) => params,
        Err(e) => return plain(Reply::error(400, format!("Invalid request body: {e}"))),
    };
    let pretty = params.flag("pretty");
    let ctx = Ctx {
        shared,
        conn,
        request,
        method: &head.method,
        path: &head.path,
        version: head.version,
        request_id: head.request_id.as_deref(),
        user,
        params,
    };
    let reply = handle(ctx, &path_segments(&head.path)).await;
    Outcome { reply, user: Some(user.name.clone()), pretty }
}

fn unauthorized() -> Reply {
    Reply::error(401, "Unauthorized. Please check your user credentials.")
        .closing()
        .with_header(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"Icinga 2\""))
}

async fn handle<E: Env>(mut ctx: Ctx<'_, E>, segments: &[String]) -> Reply {
    match route(ctx.method, segments) {
        Route::Root => Reply::empty(StatusCode::FOUND).with_header(LOCATION, HeaderValue::from_static("/v1")),
        Route::Info => handlers::info::handle(&ctx),
        Route::Status { name } => handlers::status::handle(&ctx, name.as_deref()).await,
        Route::Query { plural, name } => handlers::query::handle(&mut ctx, &plural, name.as_deref()).await,
        Route::Create { plural, name } => handlers::create::handle(&ctx, &plural, &name).await,
        Route::Modify { plural, name } => handlers::modify::handle(&mut ctx, &plural, name.as_deref()).await,
        Route::Delete { plural, name } => handlers::delete::handle(&mut ctx, &plural, name.as_deref()).await,
        Route::Action { action } => handlers::actions::handle(&ctx, &action).await,
        Route::Events => handlers::events::handle(&ctx),
        Route::NotFound => Reply::error(404, not_found_text(segments)),
    }
}

/// Reads the whole body within `limit` bytes, chunked or not: 413 over the
/// limit, 400 on a read error, a stall of `http_idle_timeout` or a body not
/// whole within `http_body_timeout`, and 503 once Stop closes HTTP (a body
/// still arriving then would only be refused at the gate, and Stop does
/// not wait for peers).
async fn read_body<E: Env>(shared: &Shared<E>, body: Incoming, limit: usize) -> Result<Bytes, Reply> {
    let (t, stop) = (&shared.config().timings, shared.http_stop());
    let too_large =
        || Reply::error(413, format!("Request body exceeds the limit of {limit} bytes.")).closing();
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large());
    }
    let deadline = shared.env().instant() + t.http_body_timeout;
    let mut body = Limited::new(body, limit);
    let mut buf = BytesMut::new();
    loop {
        let frame = tokio::select! {
            biased;
            _ = stop.raised() => return Err(Reply::error(503, "Shutting down.").closing()),
            _ = tokio::time::sleep_until(deadline) => return Err(body_too_slow(t.http_body_timeout)),
            frame = tokio::time::timeout(t.http_idle_timeout, body.frame()) => frame,
        };
        let frame = match frame {
            Err(_) => return Err(bad_request("timed out reading the request body")),
            Ok(None) => return Ok(buf.freeze()),
            Ok(Some(Err(e))) if e.downcast_ref::<LengthLimitError>().is_some() => return Err(too_large()),
            Ok(Some(Err(e))) => return Err(bad_request(&e.to_string())),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
        }
    }
}

fn body_too_slow(limit: Duration) -> Reply {
    bad_request(&format!(
        "the request body was not complete within {} s (http_body_timeout_secs)",
        limit.as_secs()
    ))
}

fn bad_request(why: &str) -> Reply {
    Reply::error(400, format!("Bad Request: {why}")).closing()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_override_takes_only_the_four_verbs() {
        let v = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(method_override(&Method::POST, Some(&v("GET"))), Method::GET);
        assert_eq!(method_override(&Method::GET, Some(&v("DELETE"))), Method::DELETE);
        assert_eq!(method_override(&Method::POST, Some(&v("PATCH"))), Method::POST);
        assert_eq!(method_override(&Method::POST, Some(&v("get"))), Method::POST);
        assert_eq!(method_override(&Method::PUT, None), Method::PUT);
    }

    #[test]
    fn accept_lists_are_searched_for_json() {
        assert!(accepts_json(&HeaderValue::from_static("application/json")));
        assert!(accepts_json(&HeaderValue::from_static("text/html, Application/JSON;q=0.9")));
        assert!(!accepts_json(&HeaderValue::from_static("text/html")));
        assert!(!accepts_json(&HeaderValue::from_bytes(&[0xff, 0xfe]).unwrap()));
    }

    #[test]
    fn heads_are_read_without_trusting_them() {
        let mut headers = HeaderMap::new();
        headers.insert("x-http-method-override", HeaderValue::from_static("PUT"));
        headers.insert(USER_AGENT, HeaderValue::from_bytes(b"agent\xff").unwrap());
        headers.insert("x-request-id", HeaderValue::from_static("abc"));
        let uri: hyper::Uri = "/v1/objects/hosts?filter=x".parse().unwrap();
        let head = Head::read(&Method::POST, &uri, Version::HTTP_11, &headers);
        assert_eq!(head.method, Method::PUT);
        assert_eq!(head.target, "/v1/objects/hosts?filter=x");
        assert_eq!(head.query.as_deref(), Some("filter=x"));
        assert_eq!(head.agent, "agent\u{fffd}");
        assert_eq!(head.request_id.as_deref(), Some("abc"));
        assert!(!head.accepts_json);
    }
}
