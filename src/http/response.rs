//! What a handler answers, and how it is encoded: Icinga's envelopes with
//! sorted keys, integral numbers without a decimal point, `pretty` indenting.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;
use hyper::header::{HeaderName, HeaderValue};
use hyper::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::store::Object;
use crate::work::WorkGuard;

/// A stream of complete NDJSON lines (`/v1/events`).
pub type EventStream = Pin<Box<dyn Stream<Item = Bytes> + Send>>;

/// The body a handler wants to send.
pub enum Payload {
    /// A JSON document, encoded at the edge (so that `pretty` applies once).
    Json(Value),
    /// A query's `{"results":[..]}`, encoded at the edge straight from the
    /// store's objects, which are never copied into a document first.
    Query(Vec<QueryResult>),
    /// An event stream, one line per item.
    Events(EventStream),
    /// No body (the redirect of `GET /`).
    Empty,
}

/// A handler's answer, before it becomes an HTTP response.
pub struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub payload: Payload,
    /// Close the connection after this response.
    pub close: bool,
    /// Extra headers (`WWW-Authenticate`, `Location`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// A work-group guard that must outlive the writing of the body. Only the
    /// planted bug `GateHeldWhileWriting` sets it; correct code never does.
    pub guard: Option<WorkGuard>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let payload = match &self.payload {
            Payload::Json(v) => v.to_string(),
            Payload::Query(results) => String::from_utf8_lossy(&encode_query(results, false)).into_owned(),
            Payload::Events(_) => "<event stream>".into(),
            Payload::Empty => String::new(),
        };
        f.debug_struct("Reply")
            .field("status", &self.status)
            .field("payload", &payload)
            .finish_non_exhaustive()
    }
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: StatusCode, value: Value) -> Reply {
        Reply { status, payload: Payload::Json(value), close: false, headers: vec![], guard: None }
    }

    /// An answer without a body.
    pub fn empty(status: StatusCode) -> Reply {
        Reply { status, payload: Payload::Empty, close: false, headers: vec![], guard: None }
    }

    /// The error envelope `{"error":code,"status":text}` with that HTTP status.
    pub fn error(code: u16, text: impl Into<String>) -> Reply {
        Reply::json(status_code(code), error_body(code, &text.into()))
    }

    /// The result envelope `{"results":[..]}`.
    pub fn results(status: StatusCode, results: Vec<Value>) -> Reply {
        let mut map = Map::new();
        map.insert("results".into(), Value::Array(results));
        Reply::json(status, Value::Object(map))
    }

    /// A query's answer.
    pub fn query(status: StatusCode, results: Vec<QueryResult>) -> Reply {
        Reply { status, payload: Payload::Query(results), close: false, headers: vec![], guard: None }
    }

    /// Asks for the connection to be closed after this response.
    pub fn closing(mut self) -> Reply {
        self.close = true;
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Reply {
        self.headers.push((name, value));
        self
    }
}

/// An error answer `{"error":code,"status":text}`: what a handler's step
/// fails with, small enough to pass around in a `Result`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status and the envelope's `error`.
    pub code: u16,
    /// The envelope's `status` text.
    pub status: String,
}

impl ApiError {
    /// An error with that code and text.
    pub fn new(code: u16, status: impl Into<String>) -> ApiError {
        ApiError { code, status: status.into() }
    }
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Reply {
        Reply::error(e.code, e.status)
    }
}

/// `{"error":code,"status":text}`.
pub fn error_body(code: u16, text: &str) -> Value {
    let mut map = Map::new();
    map.insert("error".into(), Value::from(code));
    map.insert("status".into(), Value::from(text));
    Value::Object(map)
}

/// A per-object result `{"code":..,"name":..,"status":..,"type":..}`.
pub fn object_result(code: u16, otype: &str, name: &str, status: impl Into<String>) -> Value {
    let mut map = Map::new();
    map.insert("code".into(), Value::from(code));
    map.insert("name".into(), Value::from(name));
    map.insert("status".into(), Value::from(status.into()));
    map.insert("type".into(), Value::from(otype));
    Value::Object(map)
}

/// A per-object result without type and name (actions, create).
pub fn code_result(code: u16, status: impl Into<String>) -> Value {
    let mut map = Map::new();
    map.insert("code".into(), Value::from(code));
    map.insert("status".into(), Value::from(status.into()));
    Value::Object(map)
}

/// The status for a code; an impossible code becomes 500 rather than a panic.
pub fn status_code(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// `Server: quiesce/<version>`.
pub fn server_header() -> HeaderValue {
    HeaderValue::from_static(concat!("quiesce/", env!("CARGO_PKG_VERSION")))
}

/// Encodes a value as Icinga does: keys sorted at every level, integral
/// numbers without a decimal point; indented by four spaces with `pretty`.
pub fn encode(value: &Value, pretty: bool) -> Bytes {
    encode_with(&Icinga(value), pretty)
}

/// Encodes a query's `{"results":[..]}` as [`encode`] would the same document.
pub fn encode_query(results: &[QueryResult], pretty: bool) -> Bytes {
    let mut map = std::collections::BTreeMap::new();
    map.insert("results", results);
    encode_with(&map, pretty)
}

fn encode_with(value: &impl Serialize, pretty: bool) -> Bytes {
    let mut out = Vec::with_capacity(256);
    let written = if pretty {
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
        value.serialize(&mut ser)
    } else {
        serde_json::to_writer(&mut out, &value)
    };
    // Serializing a `Value` into a Vec cannot fail: no I/O, no non-string keys.
    debug_assert!(written.is_ok());
    Bytes::from(out)
}

/// One NDJSON line for an event stream.
pub fn encode_line(value: &Value) -> Bytes {
    let mut line = encode(value, false).to_vec();
    line.push(b'\n');
    Bytes::from(line)
}

/// A value serialized as Icinga writes it, without copying it first: every
/// object's keys sorted and integral floats as integers.
struct Icinga<'a>(&'a Value);

/// Whether `serde_json::Map` keeps its keys sorted: it does unless some
/// dependency turns on `preserve_order`, which feature unification can do
/// behind our back. Asked once, so that sorted maps are not checked each time.
fn maps_are_sorted() -> bool {
    static SORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SORTED.get_or_init(|| {
        let mut probe = Map::new();
        probe.insert("b".into(), Value::Null);
        probe.insert("a".into(), Value::Null);
        probe.keys().is_sorted()
    })
}

fn serialize_map<S: serde::Serializer>(map: &Map<String, Value>, s: S) -> Result<S::Ok, S::Error> {
    if maps_are_sorted() || map.keys().is_sorted() {
        return s.collect_map(map.iter().map(|(k, v)| (k, Icinga(v))));
    }
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    s.collect_map(entries.into_iter().map(|(k, v)| (k, Icinga(v))))
}

impl Serialize for Icinga<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => serialize_map(map, s),
            Value::Array(items) => s.collect_seq(items.iter().map(Icinga)),
            Value::Number(n) => match integral(n) {
                Some(i) => s.serialize_i64(i),
                None => n.serialize(s),
            },
            other => other.serialize(s),
        }
    }
}

/// One entry of a query's answer.
pub enum QueryResult {
    /// An object with what the query asked to see of it.
    Object(QueryEntry),
    /// A per-object failure (`Invalid field specified`), as a document.
    Failed(Value),
}

/// An object in a query's answer: `attrs`, `joins`, `meta`, `name`, `type`.
pub struct QueryEntry {
    /// The object, shared with the store.
    pub object: Arc<Object>,
    /// The attributes asked for; `None`: all of them.
    pub attrs: Option<Value>,
    /// The joined objects, by join name.
    pub joins: Value,
    /// The meta data asked for.
    pub meta: Map<String, Value>,
}

impl Serialize for QueryResult {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let e = match self {
            QueryResult::Failed(value) => return Icinga(value).serialize(s),
            QueryResult::Object(e) => e,
        };
        // In key order, as every map Icinga writes.
        let mut m = s.serialize_map(Some(5))?;
        match &e.attrs {
            Some(attrs) => m.serialize_entry("attrs", &Icinga(attrs))?,
            None => m.serialize_entry("attrs", &IcingaMap(&e.object.attrs))?,
        }
        m.serialize_entry("joins", &Icinga(&e.joins))?;
        m.serialize_entry("meta", &IcingaMap(&e.meta))?;
        m.serialize_entry("name", &e.object.name)?;
        m.serialize_entry("type", e.object.otype.name())?;
        m.end()
    }
}

/// A dictionary serialized as [`Icinga`] serializes one inside a value.
struct IcingaMap<'a>(&'a Map<String, Value>);

impl Serialize for IcingaMap<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_map(self.0, s)
    }
}

/// An integral double as an integer; below 2^53 every such double is exact.
fn integral(n: &serde_json::Number) -> Option<i64> {
    let f = n.as_f64().filter(|_| n.is_f64())?;
    (f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0).then_some(f as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_at_every_level() {
        let v = json!({"b": 1, "a": {"z": 1, "y": [{"d": 1, "c": 2}]}});
        assert_eq!(encode(&v, false), Bytes::from_static(br#"{"a":{"y":[{"c":2,"d":1}],"z":1},"b":1}"#));
    }

    #[test]
    fn integral_floats_lose_their_decimal_point() {
        let v = json!({"a": 2.0, "b": 2.5, "c": -0.0, "d": 1e300, "e": 1700000000.0});
        assert_eq!(
            encode(&v, false),
            Bytes::from_static(br#"{"a":2,"b":2.5,"c":0,"d":1e+300,"e":1700000000}"#)
        );
    }

    #[test]
    fn pretty_indents_by_four_spaces() {
        let out = encode(&json!({"results": [1]}), true);
        assert_eq!(std::str::from_utf8(&out).unwrap(), "{\n    \"results\": [\n        1\n    ]\n}");
    }

    #[test]
    fn a_query_answer_encodes_as_the_same_document_would() {
        let attrs = json!({"z": {"b": 1.0, "a": [2.5]}, "a": "x"}).as_object().cloned().unwrap();
        let object = Arc::new(Object { otype: crate::store::ObjectType::Host, name: "h".into(), attrs });
        let meta: Map<String, Value> = json!({"used_by": []}).as_object().cloned().unwrap();
        let results = vec![
            QueryResult::Object(QueryEntry { object: object.clone(), attrs: None, joins: json!({}), meta }),
            QueryResult::Object(QueryEntry {
                object,
                attrs: Some(json!({"a": "x"})),
                joins: json!({"host": {"b": 2, "a": 1}}),
                meta: Map::new(),
            }),
            QueryResult::Failed(object_result(400, "Host", "g", "Invalid field specified: q")),
        ];
        let document = json!({"results": [
            {"attrs": {"a": "x", "z": {"a": [2.5], "b": 1}}, "joins": {}, "meta": {"used_by": []},
             "name": "h", "type": "Host"},
            {"attrs": {"a": "x"}, "joins": {"host": {"a": 1, "b": 2}}, "meta": {}, "name": "h", "type": "Host"},
            {"code": 400, "name": "g", "status": "Invalid field specified: q", "type": "Host"},
        ]});
        for pretty in [false, true] {
            assert_eq!(encode_query(&results, pretty), encode(&document, pretty), "pretty={pretty}");
        }
    }

    #[test]
    fn envelopes_have_icinga_shapes() {
        assert_eq!(
            encode(&error_body(503, "Shutting down."), false),
            r#"{"error":503,"status":"Shutting down."}"#
        );
        let r = object_result(503, "Host", "h", "Action skipped: Shutting down.");
        assert_eq!(
            encode(&r, false),
            r#"{"code":503,"name":"h","status":"Action skipped: Shutting down.","type":"Host"}"#
        );
        assert_eq!(status_code(42), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(encode_line(&json!({"b":1,"a":2})), "{\"a\":2,\"b\":1}\n");
    }
}
