//! JSON-RPC messages of the cluster protocol: what a decoded frame means,
//! and the messages a node sends. Keys are written in sorted order so that
//! what goes on the wire is the same on every run.

use serde_json::{json, Map, Value};

use crate::store::CheckResult;

/// Icinga 2.15.0 as `major*10000 + minor*100 + patch`.
pub const VERSION: u64 = 21500;
/// ExecuteArbitraryCommand | IfwApiCheckCommand | HostChildrenInheritObjectAuthority.
pub const CAPABILITIES: u64 = 7;

/// `icinga::Hello`.
pub const HELLO: &str = "icinga::Hello";
/// `event::Heartbeat`.
pub const HEARTBEAT: &str = "event::Heartbeat";
/// `event::CheckResult`.
pub const CHECK_RESULT: &str = "event::CheckResult";
/// `log::SetLogPosition`.
pub const SET_LOG_POSITION: &str = "log::SetLogPosition";

/// One decoded message: a call (with `method`) or a reply (without).
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The method, for calls.
    pub method: Option<String>,
    /// The parameters (empty if absent).
    pub params: Map<String, Value>,
    /// The sender's timestamp, on relayed messages.
    pub ts: Option<f64>,
    /// The request id, if the sender wants a reply.
    pub id: Option<Value>,
}

/// Why a decoded JSON object is not a message.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum MessageError {
    /// A field the message carries has the wrong JSON type.
    #[error("Invalid JSON-RPC message: '{field}' must be {expected}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it must be, with its article ("a string").
        expected: &'static str,
    },
}

impl Message {
    /// Reads a decoded frame.
    pub fn from_map(mut map: Map<String, Value>) -> Result<Message, MessageError> {
        let method = match map.remove("method") {
            None | Some(Value::Null) => None,
            Some(Value::String(m)) => Some(m),
            Some(_) => return Err(MessageError::WrongType { field: "method", expected: "a string" }),
        };
        let params = match map.remove("params") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(p)) => p,
            Some(_) => return Err(MessageError::WrongType { field: "params", expected: "an object" }),
        };
        let ts = match map.remove("ts") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_f64(),
            Some(_) => return Err(MessageError::WrongType { field: "ts", expected: "a number" }),
        };
        Ok(Message { method, params, ts, id: map.remove("id").filter(|v| !v.is_null()) })
    }

    /// The Hello's claimed identity, if this is a Hello with one.
    pub fn hello_identity(&self) -> Option<&str> {
        (self.method.as_deref() == Some(HELLO)).then(|| self.params.get("identity")?.as_str()).flatten()
    }
}

fn call(method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "method": method, "params": params })
}

/// `icinga::Hello` carrying our identity.
pub fn hello(identity: &str) -> Value {
    call(HELLO, json!({ "capabilities": CAPABILITIES, "identity": identity, "version": VERSION }))
}

/// `event::Heartbeat`.
pub fn heartbeat() -> Value {
    call(HEARTBEAT, json!({}))
}

/// `log::SetLogPosition` acknowledging everything up to `position`.
pub fn set_log_position(position: f64) -> Value {
    call(SET_LOG_POSITION, json!({ "log_position": position }))
}

/// A reply to a request with `id`.
pub fn reply(id: &Value, result: Result<Value, String>) -> Value {
    match result {
        Ok(r) => json!({ "id": id, "jsonrpc": "2.0", "result": r }),
        Err(e) => json!({ "error": e, "id": id, "jsonrpc": "2.0" }),
    }
}

/// `event::CheckResult` for `host` (and its short `service` name) at `ts`,
/// encoded. Relaying encodes one for every result, so it is written from
/// typed fields; the bytes are those of the same document as a `Value`
/// (a test holds them equal).
pub fn check_result(host: &str, service: Option<&str>, cr: &CheckResult, state: i64, ts: f64) -> Vec<u8> {
    let msg = CheckResultCall {
        jsonrpc: "2.0",
        method: CHECK_RESULT,
        params: CheckResultParams { cr: CrFields::new(cr, state), host, service },
        ts,
    };
    // Plain fields into a Vec: serializing cannot fail.
    serde_json::to_vec(&msg).unwrap_or_default()
}

// Field order is key order, as a sorted `Map` would write them.
#[derive(serde::Serialize)]
struct CheckResultCall<'a> {
    jsonrpc: &'static str,
    method: &'static str,
    params: CheckResultParams<'a>,
    ts: f64,
}

#[derive(serde::Serialize)]
struct CheckResultParams<'a> {
    cr: CrFields<'a>,
    host: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct CrFields<'a> {
    check_source: &'a str,
    command: &'a Value,
    execution_end: f64,
    execution_start: f64,
    exit_status: i64,
    output: &'a str,
    performance_data: Option<&'a [String]>,
    state: i64,
    ttl: f64,
    #[serde(rename = "type")]
    kind: &'static str,
}

impl<'a> CrFields<'a> {
    fn new(cr: &'a CheckResult, state: i64) -> Self {
        CrFields {
            check_source: &cr.check_source,
            command: &cr.command,
            execution_end: cr.execution_end,
            execution_start: cr.execution_start,
            exit_status: cr.exit_status,
            output: &cr.output,
            performance_data: cr.performance_data.as_deref(),
            state,
            ttl: cr.ttl,
            kind: "CheckResult",
        }
    }
}

/// A result's `state` as Icinga puts it on the wire: always a service state
/// (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN). Icinga reads a host's state with
/// `Host::CalculateState` (OK and WARNING are UP), so a DOWN host goes out as
/// CRITICAL (2), as Icinga's own process-check-result makes it.
pub fn wire_state(is_host: bool, state: i64) -> i64 {
    match (is_host, state) {
        (true, 0) => 0,
        (true, _) => 2,
        (false, s) => s,
    }
}

/// The exit status that gives, in quiesce's store, the state a peer's
/// result carries. Icinga decides by `cr.state` and not by `exit_status`:
/// its process-check-result for a DOWN host sends `exit_status` 0 with
/// `state` 2, and an active host check may exit 2 or 3. A result without a
/// numeric `state` is taken by its exit status.
fn exit_status_for_state(is_host: bool, exit_status: i64, state: Option<i64>) -> i64 {
    match (is_host, state) {
        (_, None) => exit_status,
        (true, Some(s)) => i64::from(s >= 2),
        (false, Some(s)) => s.clamp(0, 3),
    }
}

/// Reads the params of an `event::CheckResult`: host, optional short
/// service name, and the result.
pub fn parse_check_result(
    params: &Map<String, Value>,
) -> Result<(String, Option<String>, CheckResult), String> {
    let host = params.get("host").and_then(Value::as_str).ok_or("'host' is missing or not a string")?;
    let service = match params.get("service") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("'service' must be a string".into()),
    };
    let cr = params.get("cr").and_then(Value::as_object).ok_or("'cr' is missing or not an object")?;
    let num = |k: &str| cr.get(k).and_then(Value::as_f64);
    let exit_status =
        cr.get("exit_status").and_then(Value::as_i64).ok_or("'cr.exit_status' must be an integer")?;
    let exit_status =
        exit_status_for_state(service.is_none(), exit_status, cr.get("state").and_then(Value::as_i64));
    let perf = match cr.get("performance_data") {
        Some(Value::Array(a)) => Some(a.iter().filter_map(|v| v.as_str().map(String::from)).collect()),
        Some(Value::String(s)) => Some(s.split_whitespace().map(String::from).collect()),
        _ => None,
    };
    let end = num("execution_end").unwrap_or(0.0);
    let result = CheckResult {
        exit_status,
        output: cr.get("output").and_then(Value::as_str).unwrap_or("").to_string(),
        performance_data: perf,
        check_source: cr.get("check_source").and_then(Value::as_str).unwrap_or("").to_string(),
        command: cr.get("command").cloned().unwrap_or(Value::Null),
        execution_start: num("execution_start").unwrap_or(end),
        execution_end: end,
        ttl: num("ttl").unwrap_or(0.0),
    };
    result.check_bounds("cr.command").map_err(|e| e.to_string())?;
    Ok((host.to_string(), service, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Limits;
    use crate::input::MAX_DEPTH;
    use crate::jsonrpc::netstring::{encode_payload, NetstringCodec};
    use crate::store::MAX_CHECK_RESULT_BYTES;
    use bytes::BytesMut;
    use tokio_util::codec::Decoder;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn calls_and_replies_parse() {
        let m = Message::from_map(map(hello("a"))).unwrap();
        assert_eq!(m.hello_identity(), Some("a"));
        let m = Message::from_map(map(json!({"jsonrpc":"2.0","id":3,"result":1}))).unwrap();
        assert_eq!((m.method, m.id), (None, Some(json!(3))));
        assert_eq!(
            Message::from_map(map(json!({"method":1}))),
            Err(MessageError::WrongType { field: "method", expected: "a string" })
        );
        assert_eq!(
            Message::from_map(map(json!({"method":"x","params":[]}))),
            Err(MessageError::WrongType { field: "params", expected: "an object" })
        );
        assert_eq!(
            Message::from_map(map(json!({"method":"x","ts":"now"}))),
            Err(MessageError::WrongType { field: "ts", expected: "a number" })
        );
    }

    #[test]
    fn a_check_result_message_has_the_bytes_of_its_document() {
        let cr = CheckResult {
            exit_status: 1,
            output: "WARN \"quoted\"".into(),
            performance_data: Some(vec!["t=1".into(), "u=2".into()]),
            check_source: "node-a".into(),
            command: json!(["check_dummy", "1"]),
            execution_start: 1_700_000_000.0,
            execution_end: 1_700_000_000.25,
            ttl: 0.0,
        };
        for service in [None, Some("http")] {
            let mut params = Map::new();
            let fields = json!({
                "check_source": cr.check_source, "command": cr.command,
                "execution_end": cr.execution_end, "execution_start": cr.execution_start,
                "exit_status": cr.exit_status, "output": cr.output,
                "performance_data": cr.performance_data, "state": 1, "ttl": cr.ttl, "type": "CheckResult",
            });
            params.insert("cr".into(), fields);
            params.insert("host".into(), json!("h"));
            if let Some(s) = service {
                params.insert("service".into(), json!(s));
            }
            let document = json!({"jsonrpc": "2.0", "method": CHECK_RESULT, "params": params, "ts": 12.5});
            let bytes = check_result("h", service, &cr, 1, 12.5);
            assert_eq!(String::from_utf8(bytes).unwrap(), document.to_string(), "service {service:?}");
        }
    }

    #[test]
    fn check_results_round_trip() {
        let cr = CheckResult {
            exit_status: 2,
            output: "CRIT".into(),
            performance_data: Some(vec!["t=1".into()]),
            check_source: "a".into(),
            command: Value::Null,
            execution_start: 10.0,
            execution_end: 11.0,
            ttl: 0.0,
        };
        let decoded = serde_json::from_slice(&check_result("h", Some("http"), &cr, 2, 12.5)).unwrap();
        let msg = Message::from_map(map(decoded)).unwrap();
        assert_eq!(msg.ts, Some(12.5));
        let (host, service, back) = parse_check_result(&msg.params).unwrap();
        assert_eq!((host.as_str(), service.as_deref()), ("h", Some("http")));
        assert_eq!(back, cr);
        assert!(parse_check_result(&map(json!({"host": 1}))).is_err());
        assert!(parse_check_result(&map(json!({"host": "h", "cr": {"exit_status": "x"}}))).is_err());
    }

    #[test]
    fn a_result_without_performance_data_carries_null() {
        // Scenario: a result accepted without performance data is relayed.
        // Bug: it went out as `[]`, where Icinga's serialized result has null.
        // Fix: absent performance data stays absent through the relay.
        let cr = largest(Value::Null, "x".into());
        let bytes = check_result("h", None, &cr, 2, 1.0);
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["params"]["cr"]["performance_data"], Value::Null);
        let (_, _, back) = parse_check_result(&map(v["params"].clone())).unwrap();
        assert_eq!(back.performance_data, None);
        let listed = map(json!({"host": "h", "cr": {"exit_status": 0, "performance_data": []}}));
        assert_eq!(parse_check_result(&listed).unwrap().2.performance_data, Some(vec![]));
    }

    #[test]
    fn a_down_host_from_a_real_icinga_is_down_although_its_exit_status_is_0() {
        // Scenario: a passive DOWN result (exit_status 1) submitted to a real
        // Icinga 2.13's process-check-result reaches quiesce.
        // Bug: Icinga relays it with "exit_status":0 and "state":2 (and
        // "performance_data":null); quiesce went by exit_status and stored the host UP.
        // Fix: a peer's `cr.state` decides, as it does in Icinga.
        let icinga = r#"{"jsonrpc":"2.0","method":"event::CheckResult","params":{"cr":{"active":false,"check_source":"icinga","command":null,"execution_end":1796278690.192637,"execution_start":1796278690.192637,"exit_status":0,"output":"while-down","performance_data":null,"previous_hard_state":99,"schedule_end":1796278690.192637,"schedule_start":1796278690.192637,"scheduling_source":"icinga","state":2,"ttl":0,"type":"CheckResult","vars_after":{"attempt":1,"reachable":true,"state":2,"state_type":0},"vars_before":{"attempt":1,"reachable":true,"state":1,"state_type":1}},"host":"interop-h1"},"ts":1796278690.192814}"#;
        let msg = Message::from_map(map(serde_json::from_str(icinga).unwrap())).unwrap();
        let (host, service, cr) = parse_check_result(&msg.params).unwrap();
        assert_eq!((host.as_str(), service), ("interop-h1", None));
        assert_eq!(cr.object_state(true), 1, "DOWN");
        assert_eq!(cr.performance_data, None, "null, as Icinga sends it");
        let host_with =
            |exit: i64, state: i64| json!({"host": "h", "cr": {"exit_status": exit, "state": state}});
        let host_state = |v: Value| parse_check_result(&map(v)).unwrap().2.object_state(true);
        assert_eq!(host_state(host_with(0, 0)), 0, "OK is UP");
        assert_eq!(host_state(host_with(1, 1)), 0, "WARNING is UP, as in Icinga's Host::CalculateState");
        assert_eq!(host_state(host_with(2, 2)), 1, "an active check's CRITICAL is DOWN, not refused");
        assert_eq!(host_state(host_with(3, 3)), 1, "UNKNOWN is DOWN");
        assert_eq!(host_state(json!({"host": "h", "cr": {"exit_status": 1}})), 1, "no state: by exit status");
        let service = json!({"host": "h", "service": "s", "cr": {"exit_status": 0, "state": 2}});
        assert_eq!(parse_check_result(&map(service)).unwrap().2.state(false), 2);
    }

    #[test]
    fn a_down_host_goes_to_a_real_icinga_as_critical() {
        // Scenario: a DOWN result (exit_status 1) submitted to quiesce's API
        // for a host is relayed to a real Icinga 2.13.
        // Bug: the relay said "state":1, which Icinga reads as WARNING, that
        // is UP: Icinga logged "hard state change from DOWN to UP".
        // Fix: a host's state goes out as a service state, DOWN as CRITICAL (2).
        assert_eq!((wire_state(true, 0), wire_state(true, 1)), (0, 2));
        assert_eq!((0..4).map(|s| wire_state(false, s)).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        let cr = CheckResult {
            exit_status: 1,
            output: "DOWN".into(),
            performance_data: None,
            check_source: "q".into(),
            command: Value::Null,
            execution_start: 1.0,
            execution_end: 1.0,
            ttl: 0.0,
        };
        let bytes = check_result("h", None, &cr, wire_state(true, cr.state(true)), 2.0);
        let sent: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(sent["params"]["cr"]["state"], json!(2));
        let (_, _, back) = parse_check_result(&map(sent["params"].clone())).unwrap();
        assert_eq!(back.object_state(true), 1, "quiesce reads its own DOWN back as DOWN");
    }

    fn nested(levels: usize) -> Value {
        (0..levels).fold(json!(1), |v, _| json!([v]))
    }

    fn largest(command: Value, output: String) -> CheckResult {
        CheckResult {
            exit_status: 2,
            output,
            performance_data: None,
            check_source: String::new(),
            command,
            execution_start: 10.0,
            execution_end: 11.0,
            ttl: 0.0,
        }
    }

    #[test]
    fn the_largest_result_the_api_accepts_reaches_every_peer() {
        // Scenario: a result accepted through the API with the deepest command
        // and the most output, all of it escaped (`\u0001`), is relayed.
        // Bug: a relay a peer's frame check refuses ends the connection and is
        // replayed again and again.
        // Fix: the frame depth leaves room for the envelope; the size limit
        // keeps even six-fold escaping under the endpoint frame limit.
        let command = nested(MAX_DEPTH - 1);
        let room = MAX_CHECK_RESULT_BYTES - command.to_string().len();
        let cr = largest(command, "\u{1}".repeat(room));
        cr.check_bounds("check_command").unwrap();
        let mut frame = BytesMut::new();
        encode_payload(&check_result("h", Some("s"), &cr, 2, 12.5), &mut frame);
        let endpoint = Limits::default().jsonrpc_endpoint;
        let map = NetstringCodec::new(endpoint).decode(&mut frame).unwrap().unwrap();
        let (_, _, back) = parse_check_result(&Message::from_map(map).unwrap().params).unwrap();
        assert_eq!(back, cr);
    }

    #[test]
    fn a_peers_result_too_deep_or_too_large_is_rejected_naming_the_limit() {
        let params = |cr: &CheckResult| {
            let bytes = check_result("h", None, cr, 2, 1.0);
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            map(v["params"].clone())
        };
        let deep = largest(nested(MAX_DEPTH), "x".into());
        let err = parse_check_result(&params(&deep)).unwrap_err();
        assert_eq!(err, "'cr.command' is nested deeper than the limit of 31 levels");
        let large = largest(Value::Null, "x".repeat(MAX_CHECK_RESULT_BYTES + 1));
        let err = parse_check_result(&params(&large)).unwrap_err();
        assert!(err.contains(&format!("over the limit of {MAX_CHECK_RESULT_BYTES} bytes")), "{err}");
    }
}
