//! HTTP actors: a client with an op mix, and the misbehaving ones (half a
//! request, a silent connection, an idle keep-alive connection, a slow event
//! subscriber). Every wait is bounded, so a run always ends.

use std::sync::Arc;
use std::time::Duration;

use super::conn::{dial, local_addr, ActorTls, Conn};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::wire;
use crate::record::{ConnectionEnd, Outcome, RequestRecord};
use crate::recorder::{now_ms, Recorder};
use crate::scenario::{EventSubscriber, HttpClient, Misbehaving, Op, SlowReader};

/// The API port every node listens on.
pub const PORT: u16 = 5665;
/// Basic auth for `root:icinga`, the user every simulated node has.
const AUTH: &str = "Basic cm9vdDppY2luZ2E=";
/// A request gets this long for its answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A connect gets this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Sleeps until the simulated time `at_ms`.
pub async fn sleep_until_ms(at_ms: u64) {
    let now = now_ms();
    if at_ms > now {
        tokio::time::sleep(Duration::from_millis(at_ms - now)).await;
    }
}

async fn connect(node: &str, tls: Option<&ActorTls>) -> Result<Conn, String> {
    connect_as(node, tls, None).await
}

/// Connects showing the certificate of `identity`, in a TLS world.
async fn connect_as(node: &str, tls: Option<&ActorTls>, identity: Option<&str>) -> Result<Conn, String> {
    match tokio::time::timeout(CONNECT_TIMEOUT, dial(node, tls, identity)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(format!("connect: {e}")),
        Err(_) => Err("connect: timed out".into()),
    }
}

async fn handshake(node: &str, tls: Option<&ActorTls>) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = connect(node, tls).await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// A request as the client builds it, with what the oracles need to know.
struct Planned {
    method: &'static str,
    path: String,
    body: Option<Value>,
    modifying: bool,
    objects: Vec<String>,
    /// Whether each result's `name` is the object it is about (add-comment
    /// names the comment it created instead: its results go by position).
    names_objects: bool,
    /// Whether a 200 for an object may mean there was nothing to do.
    vacuous_success: bool,
}

fn plan(op: &Op, id: &str) -> Planned {
    let mut p = plan_request(op, id);
    match op {
        Op::AddComment { .. } => p.names_objects = false,
        Op::RemoveComment { .. } => p.vacuous_success = true,
        _ => {}
    }
    p
}

fn plan_request(op: &Op, id: &str) -> Planned {
    let m = |method, path: String, body, objects| Planned {
        method,
        path,
        body,
        modifying: true,
        objects,
        names_objects: true,
        vacuous_success: false,
    };
    let action = |name: &str, hosts: &[String], extra: Value| {
        let mut body = json!({"type": "Host", "hosts": hosts});
        if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
            b.extend(extra);
        }
        m("POST", format!("/v1/actions/{name}"), Some(body), hosts.to_vec())
    };
    // Matches the named hosts that exist, whichever those are by then.
    let by_filter = |hosts: &[String], mut body: Value| {
        body["filter"] = json!("host.name in names");
        body["filter_vars"] = json!({"names": hosts});
        body
    };
    match op {
        Op::Create { host } => m(
            "PUT",
            format!("/v1/objects/hosts/{host}"),
            Some(json!({"attrs": {"address": "192.0.2.1", "check_command": "dummy"}})),
            vec![host.clone()],
        ),
        Op::Modify { hosts } => m(
            "POST",
            "/v1/objects/hosts".into(),
            Some(json!({"hosts": hosts, "attrs": {"vars.v": id}})),
            hosts.clone(),
        ),
        Op::Delete { host } => {
            m("DELETE", format!("/v1/objects/hosts/{host}?cascade=1"), None, vec![host.clone()])
        }
        Op::CheckResult { host, exit_status } => m(
            "POST",
            "/v1/actions/process-check-result".into(),
            Some(json!({"type": "Host", "host": host, "exit_status": exit_status, "plugin_output": id})),
            vec![host.clone()],
        ),
        Op::DeleteMany { hosts } => {
            m("DELETE", "/v1/objects/hosts?cascade=1".into(), Some(json!({"hosts": hosts})), hosts.clone())
        }
        Op::Acknowledge { hosts } => {
            action("acknowledge-problem", hosts, json!({"author": id, "comment": "fuzz"}))
        }
        Op::RemoveAcknowledgement { hosts } => action("remove-acknowledgement", hosts, json!({})),
        Op::AddComment { hosts } => action("add-comment", hosts, json!({"author": id, "comment": "fuzz"})),
        Op::RemoveComment { hosts } => action("remove-comment", hosts, json!({})),
        Op::ModifyByFilter { hosts } => m(
            "POST",
            "/v1/objects/hosts".into(),
            Some(by_filter(hosts, json!({"attrs": {"vars.v": id}}))),
            hosts.clone(),
        ),
        Op::DeleteByFilter { hosts } => m(
            "DELETE",
            "/v1/objects/hosts?cascade=1".into(),
            Some(by_filter(hosts, json!({}))),
            hosts.clone(),
        ),
        Op::CreateService { service } => m(
            "PUT",
            format!("/v1/objects/services/{service}"),
            Some(json!({"attrs": {"check_command": "dummy"}})),
            vec![service.clone()],
        ),
        Op::ModifyService { service } => m(
            "POST",
            format!("/v1/objects/services/{service}"),
            Some(json!({"attrs": {"vars.v": id}})),
            vec![service.clone()],
        ),
        Op::DeleteService { service } => {
            m("DELETE", format!("/v1/objects/services/{service}?cascade=1"), None, vec![service.clone()])
        }
        Op::Query => Planned {
            method: "GET",
            path: "/v1/objects/hosts".into(),
            body: None,
            modifying: false,
            objects: vec![],
            names_objects: true,
            vacuous_success: false,
        },
    }
}

fn build(node: &str, id: &str, p: &Planned) -> Result<Request<Full<Bytes>>, String> {
    use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, HOST};
    let body = p.body.as_ref().and_then(|b| serde_json::to_vec(b).ok()).map(Bytes::from).unwrap_or_default();
    // Built in place: the builder checks and copies every header once more.
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = hyper::Method::from_bytes(p.method.as_bytes()).map_err(|e| e.to_string())?;
    *req.uri_mut() = p.path.parse().map_err(|e: hyper::http::uri::InvalidUri| e.to_string())?;
    let value = |v: &str| HeaderValue::from_str(v).map_err(|e| e.to_string());
    let headers = req.headers_mut();
    headers.insert(HOST, value(node)?);
    headers.insert(AUTHORIZATION, HeaderValue::from_static(AUTH));
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert("x-request-id", value(id)?);
    Ok(req)
}

/// The parts of an answer the oracles read. Everything else (a query's
/// attributes) is skipped without being built, which keeps long runs fast.
#[derive(serde::Deserialize)]
struct Envelope {
    status: Option<Value>,
    results: Option<Vec<Entry>>,
}

#[derive(serde::Deserialize)]
struct Entry {
    code: Option<Value>,
    name: Option<Value>,
}

/// The envelope's `status` text and per-object `(name, code)`; unnamed
/// entries take the name of the object at the same position.
fn summary(bytes: &[u8], objects: &[String], names_objects: bool) -> (String, Vec<(String, u16)>) {
    let envelope = serde_json::from_slice::<Envelope>(bytes).unwrap_or_else(|_| loose_envelope(bytes));
    let text = envelope.status.as_ref().and_then(Value::as_str).unwrap_or("").to_string();
    let results = envelope
        .results
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let code = r.code.as_ref()?.as_u64()? as u16;
            let name = r.name.as_ref().and_then(Value::as_str).filter(|_| names_objects).map(String::from);
            Some((name.or_else(|| objects.get(i).cloned())?, code))
        })
        .collect();
    (text, results)
}

/// The envelope of a body the typed one does not take (not JSON, or
/// `results` entries that are not dictionaries), read leniently.
fn loose_envelope(bytes: &[u8]) -> Envelope {
    let body: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let entry = |r: &Value| Entry { code: r.get("code").cloned(), name: r.get("name").cloned() };
    Envelope {
        status: body.get("status").cloned(),
        results: body.get("results").and_then(Value::as_array).map(|list| list.iter().map(entry).collect()),
    }
}

async fn send(sender: &mut SendRequest<Full<Bytes>>, req: Request<Full<Bytes>>, p: &Planned) -> Outcome {
    let exchange = async {
        sender.ready().await.map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok::<_, String>((status, bytes))
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
        // A successful query's body holds neither a `status` text nor
        // per-object codes, and no oracle reads its objects: not parsing it
        // keeps long runs fast and records exactly what parsing would.
        Ok(Ok((status, _))) if !p.modifying && (200..300).contains(&status) => {
            Outcome::Response { status, at_ms: now_ms(), results: vec![], text: String::new() }
        }
        Ok(Ok((status, bytes))) => {
            let (text, results) = summary(&bytes, &p.objects, p.names_objects);
            Outcome::Response { status, at_ms: now_ms(), results, text }
        }
        Ok(Err(error)) => Outcome::TransportError { at_ms: now_ms(), error },
        Err(_) => Outcome::TransportError { at_ms: now_ms(), error: "timed out".into() },
    }
}

/// Sends every op in order and records each outcome; backs off while the
/// node refuses connections.
pub async fn client(rec: Recorder, spec: HttpClient, tls: Option<Arc<ActorTls>>) {
    sleep_until_ms(spec.start_ms).await;
    let mut conn: Option<SendRequest<Full<Bytes>>> = None;
    let (mut n, mut refused) = (0, 0);
    for _ in 0..spec.repeat {
        for op in &spec.ops {
            n += 1;
            let id = format!("{}#{n}", spec.name);
            let connected = one_request(&rec, &spec, &mut conn, op, &id, tls.as_deref()).await;
            refused = if connected { 0 } else { refused + 1 };
            tokio::time::sleep(pause(spec.interval_ms, refused)).await;
        }
    }
}

/// The longest a client waits between attempts while the node is down.
const BACKOFF_CAP_MS: u64 = 4_000;

/// The pause before the next request: the interval, doubled for every
/// connection in a row that could not be opened (up to [`BACKOFF_CAP_MS`]),
/// as a client backs off from a server that is down instead of knocking at
/// its own pace.
fn pause(interval_ms: u64, refused: u32) -> Duration {
    let backoff = interval_ms.saturating_mul(1 << refused.min(16)).min(BACKOFF_CAP_MS);
    Duration::from_millis(backoff.max(interval_ms))
}

/// Sends one op and records it; false if no connection could be opened.
async fn one_request(
    rec: &Recorder,
    spec: &HttpClient,
    conn: &mut Option<SendRequest<Full<Bytes>>>,
    op: &Op,
    id: &str,
    tls: Option<&ActorTls>,
) -> bool {
    let p = plan(op, id);
    let record = RequestRecord {
        id: id.to_string(),
        node: spec.node.clone(),
        method: p.method.to_string(),
        path: p.path.clone(),
        modifying: p.modifying,
        objects: p.objects.clone(),
        vacuous_success: p.vacuous_success,
        sent_ms: now_ms(),
        outcome: Outcome::NoAnswer,
    };
    let index = rec.sent(&spec.name, record);
    if !spec.keep_alive || conn.as_ref().is_none_or(|c| c.is_closed()) {
        *conn = None;
        match handshake(&spec.node, tls).await {
            Ok(c) => *conn = Some(c),
            Err(error) => {
                rec.finish(&spec.name, index, Outcome::TransportError { at_ms: now_ms(), error });
                return false;
            }
        }
    }
    let Some(sender) = conn.as_mut() else { return false };
    let outcome = match build(&spec.node, id, &p) {
        Ok(req) => send(sender, req, &p).await,
        Err(error) => Outcome::TransportError { at_ms: now_ms(), error },
    };
    if matches!(outcome, Outcome::TransportError { .. }) {
        *conn = None;
    }
    rec.finish(&spec.name, index, outcome);
    true
}

/// Writes `bytes` and flushes them: over TLS, a write alone may leave them
/// in the session's buffer.
async fn write_flushed(stream: &mut Conn, bytes: &[u8]) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// Reads until the server closes the connection or `limit` passes; returns
/// when it closed.
async fn closed_by_server(stream: &mut Conn, limit: Duration) -> Option<u64> {
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return now_ms(),
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, read_all).await.ok()
}

/// How long an unknown endpoint holds its socket unread after its Hello:
/// longer than Stop's slack, so a Stop that waits for its goodbye shows,
/// and shorter than the goodbye's cap, so a run need not wait 10 s for it.
const UNREAD_HOLD: Duration = Duration::from_millis(3_000);

/// The connection-end kind of an anonymous cluster peer.
pub const ANONYMOUS_PEER: &str = "anonymous_peer";

/// What a misbehaving actor does before it waits for the server to close.
#[derive(Clone, Copy, Debug)]
pub enum Misbehaviour {
    /// Sends half a request head, then nothing.
    HalfRequest,
    /// Sends nothing at all.
    Silent,
    /// Sends one complete keep-alive request, then stays idle.
    IdleKeepAlive,
    /// Sends a JSON-RPC Hello with an identity nobody configured.
    AnonymousPeer,
    /// Shows a certificate for its own name, which no node has as an
    /// endpoint, sends its Hello, and never reads again.
    UnknownEndpoint,
}

impl Misbehaviour {
    fn kind(self) -> &'static str {
        match self {
            Misbehaviour::HalfRequest => "half_request",
            Misbehaviour::Silent => "silent",
            Misbehaviour::IdleKeepAlive => "idle_keep_alive",
            Misbehaviour::AnonymousPeer => ANONYMOUS_PEER,
            Misbehaviour::UnknownEndpoint => "unknown_endpoint",
        }
    }

    /// The identity whose certificate it shows, in a TLS world.
    fn identity(self, name: &str) -> Option<&str> {
        matches!(self, Misbehaviour::UnknownEndpoint).then_some(name)
    }

    fn bytes(self, node: &str, name: &str) -> String {
        match self {
            Misbehaviour::HalfRequest => {
                format!("POST /v1/objects/hosts HTTP/1.1\r\nHost: {node}\r\nAuthoriz")
            }
            Misbehaviour::Silent => String::new(),
            Misbehaviour::IdleKeepAlive => {
                format!("GET /v1 HTTP/1.1\r\nHost: {node}\r\nAuthorization: {AUTH}\r\nAccept: application/json\r\n\r\n")
            }
            Misbehaviour::AnonymousPeer => {
                let hello = r#"{"jsonrpc":"2.0","method":"icinga::Hello","params":{"identity":"stranger"}}"#;
                format!("{}:{hello},", hello.len())
            }
            Misbehaviour::UnknownEndpoint => {
                let hello = serde_json::json!({"jsonrpc": "2.0", "method": "icinga::Hello", "params": {"identity": name}});
                let hello = hello.to_string();
                format!("{}:{hello},", hello.len())
            }
        }
    }
}

/// Connects at `at_ms`, misbehaves, and records when the server closed the
/// connection (or that it had not by `limit_ms`).
pub async fn misbehave(
    rec: Recorder,
    actor: Misbehaving,
    how: Misbehaviour,
    limit_ms: u64,
    tls: Option<Arc<ActorTls>>,
) {
    let Misbehaving { name, node, at_ms } = actor;
    sleep_until_ms(at_ms).await;
    let mut stream = match connect_as(&node, tls.as_deref(), how.identity(&name)).await {
        Ok(s) => s,
        Err(e) => return rec.line(&name, format!("{} could not connect: {e}", how.kind())),
    };
    rec.line(&name, format!("{} connected", how.kind()));
    let local_addr = local_addr(&stream);
    let bytes = how.bytes(&node, &name);
    if !bytes.is_empty() && write_flushed(&mut stream, bytes.as_bytes()).await.is_err() {
        return rec.line(&name, format!("{} write failed", how.kind()));
    }
    if matches!(how, Misbehaviour::UnknownEndpoint) {
        // It holds its socket unread, so the node's close_notify goes
        // unanswered, then gives up and closes; nothing of its end is judged.
        return tokio::time::sleep(UNREAD_HOLD).await;
    }
    let limit = Duration::from_millis(limit_ms.saturating_sub(now_ms()));
    let closed_ms = closed_by_server(&mut stream, limit).await;
    rec.connection_end(ConnectionEnd { actor: name, kind: how.kind().into(), node, closed_ms, local_addr });
}

/// Subscribes to check results and reads one chunk every `read_every_ms`.
pub async fn event_subscriber(
    rec: Recorder,
    actor: EventSubscriber,
    limit_ms: u64,
    tls: Option<Arc<ActorTls>>,
) {
    let EventSubscriber { name, node, at_ms, read_every_ms } = actor;
    sleep_until_ms(at_ms).await;
    let mut stream = match connect(&node, tls.as_deref()).await {
        Ok(s) => s,
        Err(e) => return rec.line(&name, format!("event stream could not connect: {e}")),
    };
    let body = r#"{"types":["CheckResult","StateChange"],"queue":"sim"}"#;
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: {node}\r\nAuthorization: {AUTH}\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if write_flushed(&mut stream, head.as_bytes()).await.is_err() {
        return rec.line(&name, "event stream write failed");
    }
    let record = RequestRecord {
        id: format!("{name}#events"),
        node: node.clone(),
        method: "POST".into(),
        path: "/v1/events".into(),
        modifying: false,
        objects: vec![],
        vacuous_success: false,
        sent_ms: now_ms(),
        outcome: Outcome::NoAnswer,
    };
    let index = rec.sent(&name, record);
    rec.line(&name, "event stream subscribed");
    let local_addr = local_addr(&stream);
    let mut buf = [0u8; 512];
    let mut stream_end = StreamEnd::default();
    let slow_read = async {
        loop {
            tokio::time::sleep(Duration::from_millis(read_every_ms.max(1))).await;
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return now_ms(),
                Ok(n) => stream_end.read(&buf[..n]),
            }
        }
    };
    let limit = Duration::from_millis(limit_ms.saturating_sub(now_ms()));
    let closed_ms = tokio::time::timeout(limit, slow_read).await.ok();
    let outcome = match (stream_end.outcome(), closed_ms) {
        (Some(o), _) => o,
        (None, Some(at_ms)) => {
            Outcome::TransportError { at_ms, error: "closed before the stream ended".into() }
        }
        (None, None) => Outcome::NoAnswer,
    };
    rec.finish(&name, index, outcome);
    rec.connection_end(ConnectionEnd {
        actor: name,
        kind: "event_stream".into(),
        node,
        closed_ms,
        local_addr,
    });
}

/// An event stream's response as it arrives: its head, then the end of its
/// chunked body. Only the head is parsed; after it, the end is looked for in
/// the newest bytes, so a long stream costs no more than its reads.
#[derive(Default)]
struct StreamEnd {
    head: Vec<u8>,
    status: Option<u16>,
    tail: Vec<u8>,
    ended_ms: Option<u64>,
}

impl StreamEnd {
    fn read(&mut self, bytes: &[u8]) {
        if self.ended_ms.is_some() {
            return;
        }
        if self.status.is_none() {
            self.head.extend_from_slice(bytes);
            match wire::parse(&self.head) {
                wire::Parsed::Complete(r, _) => {
                    (self.status, self.ended_ms) = (Some(r.status), Some(now_ms()));
                }
                wire::Parsed::Head(status) => {
                    self.status = Some(status);
                    self.tail = std::mem::take(&mut self.head);
                }
                wire::Parsed::Partial | wire::Parsed::Invalid => {}
            }
            return;
        }
        self.tail.extend_from_slice(bytes);
        let keep = self.tail.len().saturating_sub(16);
        if self.tail.ends_with(b"\r\n0\r\n\r\n") {
            self.ended_ms = Some(now_ms());
        }
        self.tail.drain(..keep);
    }

    fn outcome(&self) -> Option<Outcome> {
        let (status, at_ms) = (self.status?, self.ended_ms?);
        Some(Outcome::Response { status, at_ms, results: vec![], text: String::new() })
    }
}

/// Reads the responses to `pending` requests, in order, until the server
/// closes or `limit` passes, and records each as it completes; returns when
/// the server closed. Requests left unanswered at a close failed.
async fn read_responses(
    rec: &Recorder,
    actor: &str,
    stream: &mut Conn,
    limit: Duration,
    mut pending: std::collections::VecDeque<(usize, Vec<String>)>,
) -> Option<u64> {
    let mut chunk = [0u8; 4096];
    let mut buf = Vec::new();
    let read_all = async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return now_ms(),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            while let wire::Parsed::Complete(r, used) = wire::parse(&buf) {
                buf.drain(..used);
                let Some((index, objects)) = pending.pop_front() else { break };
                let (text, results) = summary(&r.body, &objects, true);
                rec.finish(
                    actor,
                    index,
                    Outcome::Response { status: r.status, at_ms: now_ms(), results, text },
                );
            }
        }
    };
    let closed = tokio::time::timeout(limit, read_all).await.ok();
    if let Some(at_ms) = closed {
        for (index, _) in pending {
            let error = "connection closed before the response".to_string();
            rec.finish(actor, index, Outcome::TransportError { at_ms, error });
        }
    }
    closed
}

/// Pipelines modifications without reading the responses for a while.
pub async fn slow_reader(rec: Recorder, spec: SlowReader, end_ms: u64, tls: Option<Arc<ActorTls>>) {
    sleep_until_ms(spec.at_ms).await;
    let mut stream = match connect(&spec.node, tls.as_deref()).await {
        Ok(s) => s,
        Err(e) => return rec.line(&spec.name, format!("slow reader could not connect: {e}")),
    };
    let local_addr = local_addr(&stream);
    let mut out = Vec::new();
    let mut pending = std::collections::VecDeque::new();
    for n in 0..spec.requests {
        let path = format!("/v1/objects/hosts/{}", spec.host);
        let objects = vec![spec.host.clone()];
        let record = RequestRecord {
            id: format!("{}#{n}", spec.name),
            node: spec.node.clone(),
            method: "POST".into(),
            path,
            modifying: true,
            objects: objects.clone(),
            vacuous_success: false,
            sent_ms: now_ms(),
            outcome: Outcome::NoAnswer,
        };
        pending.push_back((rec.sent(&spec.name, record), objects));
        let body = format!(r#"{{"attrs":{{"vars.slow":{n}}}}}"#);
        let head = format!(
            "POST /v1/objects/hosts/{} HTTP/1.1\r\nHost: {}\r\nAuthorization: {AUTH}\r\nAccept: application/json\r\nX-Request-Id: {}#{n}\r\nContent-Length: {}\r\n\r\n",
            spec.host,
            spec.node,
            spec.name,
            body.len()
        );
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(body.as_bytes());
    }
    if write_flushed(&mut stream, &out).await.is_err() {
        return rec.line(&spec.name, "slow reader write failed");
    }
    rec.line(&spec.name, format!("pipelined {} requests, not reading", spec.requests));
    sleep_until_ms(spec.read_after_ms).await;
    let limit = Duration::from_millis(end_ms.saturating_sub(now_ms()));
    let closed_ms = read_responses(&rec, &spec.name, &mut stream, limit, pending).await;
    let (actor, node) = (spec.name, spec.node);
    rec.connection_end(ConnectionEnd { actor, kind: "slow_reader".into(), node, closed_ms, local_addr });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_backs_off_while_the_node_refuses_and_never_below_its_interval() {
        let ms = |interval, refused| pause(interval, refused).as_millis() as u64;
        assert_eq!([ms(250, 0), ms(250, 1), ms(250, 2), ms(250, 3)], [250, 500, 1000, 2000]);
        assert_eq!(ms(250, 5), BACKOFF_CAP_MS, "the pause must stop growing at the cap");
        assert_eq!(ms(250, 40), BACKOFF_CAP_MS, "many refusals must not overflow");
        assert_eq!(ms(6_000, 2), 6_000, "a client slower than the cap keeps its own pace");
    }
}
