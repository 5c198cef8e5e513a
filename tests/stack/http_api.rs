//! The HTTP API end to end: a real node (`ApiListener`) on 127.0.0.1, port 0,
//! driven by reqwest and by raw sockets for what a polite client never does.
//! Every wait is bounded by a timeout; assertions are about outcomes.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::common::{self, *};

use quiesce::config::{ApiUser, Config};
use quiesce::env::tokio::TokioEnv;
use quiesce::env::{Env, Point};
use quiesce::probe::{Probe, StopStep};
use quiesce::store::MAX_DEPTH;
use quiesce::store::{ObjectType, MAX_CHECK_RESULT_BYTES};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn user(spec: &str) -> ApiUser {
    spec.parse().expect("valid user")
}

/// The common node, with a third user who may change objects but not config.
fn config() -> Config {
    let mut c = common::config("http-api");
    c.api_users.push(user("small:pw:objects/*,actions/*"));
    c
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(WAIT).build().expect("client")
}

/// A request as real clients send it: authenticated, `Accept: application/json`.
async fn call(
    node_url: String,
    method: Method,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    call_as("root", "icinga", node_url, method, body).await
}

/// The start of a request as real clients send it, as `user`.
fn request_as(user: &str, password: &str, method: Method, url: String) -> reqwest::RequestBuilder {
    client().request(method, url).basic_auth(user, Some(password)).header("Accept", "application/json")
}

/// The same as `root`.
fn request(method: Method, url: String) -> reqwest::RequestBuilder {
    request_as("root", "icinga", method, url)
}

async fn call_as(
    user: &str,
    password: &str,
    url: String,
    method: Method,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = request_as(user, password, method, url);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = bounded("request", req.send()).await.expect("response");
    let (status, headers) = (resp.status(), resp.headers().clone());
    let text = bounded("body", resp.text()).await.expect("body text");
    let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON body") };
    (status, headers, value)
}

async fn create_host<E: Env>(node: &Node<E>, name: &str, attrs: Value) {
    let url = node.url(&format!("/v1/objects/hosts/{name}"));
    let (status, _, body) = call(url, Method::PUT, Some(json!({ "attrs": attrs }))).await;
    assert_eq!(status, 200, "{body}");
}

async fn create_service<E: Env>(node: &Node<E>, name: &str) {
    let url = node.url(&format!("/v1/objects/services/{name}"));
    let (status, _, body) =
        call(url, Method::PUT, Some(json!({ "attrs": {"check_command": "dummy"} }))).await;
    assert_eq!(status, 200, "{body}");
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

// ---------------------------------------------------------------- raw sockets

// ------------------------------------------------------------------- endpoints

#[tokio::test]
async fn info_names_the_user_and_every_response_names_the_server() {
    let node = Node::start(config()).await;
    let (status, headers, body) = call(node.url("/v1"), Method::GET, None).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "server"), concat!("quiesce/", env!("CARGO_PKG_VERSION")));
    assert_eq!(header(&headers, "content-type"), "application/json");
    assert_eq!(body["results"][0]["user"], "root");
    assert_eq!(body["results"][0]["permissions"], json!(["*"]));
    assert_eq!(body["results"][0]["version"], env!("CARGO_PKG_VERSION"));
    node.stop().await;
}

#[tokio::test]
async fn root_redirects_to_v1() {
    let node = Node::start(config()).await;
    let mut s = connect(node.addr).await;
    s.write_all(format!("GET / HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n").as_bytes()).await.unwrap();
    let resp = read_response(&mut s).await;
    assert!(resp.starts_with("HTTP/1.1 302"), "{resp}");
    assert!(resp.to_lowercase().contains("location: /v1\r\n"), "{resp}");
    node.stop().await;
}

#[tokio::test]
async fn unauthenticated_requests_get_icingas_401() {
    let node = Node::start(config()).await;
    for (user, password) in [("root", "wrong"), ("nobody", "icinga"), ("root", "")] {
        let (status, headers, body) = call_as(user, password, node.url("/v1"), Method::GET, None).await;
        assert_eq!(status, 401);
        assert_eq!(header(&headers, "www-authenticate"), "Basic realm=\"Icinga 2\"");
        assert_eq!(header(&headers, "connection"), "close");
        assert!(header(&headers, "server").starts_with("quiesce/"));
        assert_eq!(
            body,
            json!({"error": 401, "status": "Unauthorized. Please check your user credentials."})
        );
    }
    // Garbage in the Authorization header is a 401, not a crash.
    let mut s = connect(node.addr).await;
    s.write_all(b"GET /v1 HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %%%\xff\r\n\r\n").await.unwrap();
    let resp = read_to_end(&mut s).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 401"), "{resp}");
    node.stop().await;
}

#[tokio::test]
async fn a_missing_permission_is_403() {
    let node = Node::start(config()).await;
    create_host(&node, "h1", json!({"check_command": "dummy"})).await;
    let url = node.url("/v1/objects/hosts/h1");
    let (status, _, body) = call_as("ro", "pw", url.clone(), Method::POST, Some(json!({"attrs": {}}))).await;
    assert_eq!(status, 403);
    assert_eq!(body, json!({"error": 403, "status": "Missing permission: objects/modify/host"}));
    let (status, _, body) = call_as("ro", "pw", url.clone(), Method::GET, None).await;
    assert_eq!((status, body["results"][0]["name"].clone()), (StatusCode::OK, json!("h1")));
    let (status, _, _) = call_as("small", "pw", node.url("/v1/status"), Method::GET, None).await;
    assert_eq!(status, 403);
    let (status, _, body) = call_as("ro", "pw", node.url("/v1/objects/hosts/h2"), Method::PUT, None).await;
    assert_eq!(
        (status, &body["status"]),
        (StatusCode::FORBIDDEN, &json!("Missing permission: objects/create/host"))
    );
    node.stop().await;
}

#[tokio::test]
async fn non_get_requests_need_accept_json() {
    let node = Node::start(config()).await;
    let resp = client()
        .post(node.url("/v1/objects/hosts"))
        .basic_auth("root", Some("icinga"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], 400);
    // A GET needs no Accept header.
    let resp = client().get(node.url("/v1")).basic_auth("root", Some("icinga")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    node.stop().await;
}

#[tokio::test]
async fn a_malformed_body_is_400_invalid_request_body() {
    let node = Node::start(config()).await;
    for body in ["{\"attrs\":", "[1,2]", "not json"] {
        let resp = request(Method::POST, node.url("/v1/objects/hosts")).body(body).send().await.unwrap();
        assert_eq!(resp.status(), 400);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"], 400);
        let text = v["status"].as_str().unwrap();
        assert!(text.starts_with("Invalid request body: "), "{text}");
    }
    node.stop().await;
}

#[tokio::test]
async fn unknown_paths_and_methods_are_404_with_icingas_text() {
    let node = Node::start(config()).await;
    let (status, _, body) = call(node.url("/v1/nothing/here"), Method::GET, None).await;
    assert_eq!(status, 404);
    assert_eq!(
        body["status"],
        "The requested path 'v1/nothing/here' could not be found or the request method is not valid for this path."
    );
    let (status, _, body) = call(node.url("/v1/events"), Method::GET, None).await;
    assert_eq!((status, body["error"].clone()), (StatusCode::NOT_FOUND, json!(404)));
    let (status, _, body) = call(node.url("/v1/objects/nonsense"), Method::GET, None).await;
    assert_eq!(
        (status, body),
        (StatusCode::BAD_REQUEST, json!({"error": 400, "status": "Invalid type specified."}))
    );
    let (status, _, body) =
        call(node.url("/v1/actions/reboot-the-world"), Method::POST, Some(json!({}))).await;
    assert_eq!(
        (status, &body["status"]),
        (StatusCode::NOT_FOUND, &json!("Action 'reboot-the-world' does not exist."))
    );
    // An extension method nobody routes is 404 too.
    let mut s = connect(node.addr).await;
    s.write_all(format!("BREW /v1 HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n{AUTH}\r\n").as_bytes())
        .await
        .unwrap();
    let resp = read_response(&mut s).await;
    assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");
    node.stop().await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_chunked_or_not() {
    let mut config = config();
    config.limits.http_body = 1024;
    let node = Node::start_with(TokioEnv::new(), config).await;
    let big = json!({"attrs": {"check_command": "dummy", "notes": "x".repeat(4096)}});
    // `small` lacks config/modify, so the ordinary limit applies.
    let (status, _, body) =
        call_as("small", "pw", node.url("/v1/objects/hosts/big"), Method::PUT, Some(big.clone())).await;
    assert_eq!((status, body["error"].clone()), (StatusCode::PAYLOAD_TOO_LARGE, json!(413)));
    // Chunked, so that no Content-Length announces the size.
    let mut s = connect(node.addr).await;
    let head = "PUT /v1/objects/hosts/big HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\
                Authorization: Basic c21hbGw6cHc=\r\nTransfer-Encoding: chunked\r\n\r\n";
    s.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..4 {
        s.write_all(format!("400\r\n{}\r\n", "y".repeat(1024)).as_bytes()).await.unwrap();
    }
    s.write_all(b"0\r\n\r\n").await.unwrap();
    let resp = read_to_end(&mut s).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    assert!(body_of(&resp).contains("\"error\":413"), "{resp}");
    // root has `*`, which counts as config/modify: the admin limit applies.
    let (status, _, body) = call(node.url("/v1/objects/hosts/big"), Method::PUT, Some(big)).await;
    assert_eq!(status, 200, "{body}");
    node.stop().await;
}

#[tokio::test]
async fn an_oversized_header_is_refused_cleanly() {
    let mut config = config();
    config.limits.http_header = 16 * 1024;
    let node = Node::start_with(TokioEnv::new(), config).await;
    let mut s = connect(node.addr).await;
    let filler = format!("X-Filler: {}\r\n", "a".repeat(64 * 1024));
    let request = format!("GET /v1 HTTP/1.1\r\nHost: x\r\n{AUTH}{filler}\r\n");
    // The server may close before it has read everything: a write error is fine.
    let _ = s.write_all(request.as_bytes()).await;
    let resp = read_to_end(&mut s).await.unwrap_or_default();
    assert!(resp.is_empty() || resp.starts_with("HTTP/1.1 431"), "{resp}");
    // The node is unharmed.
    let (status, _, _) = call(node.url("/v1"), Method::GET, None).await;
    assert_eq!(status, 200);
    node.stop().await;
}

#[tokio::test]
async fn method_override_replaces_the_method() {
    let node = Node::start(config()).await;
    create_host(&node, "h1", json!({"address": "10.0.0.1", "check_command": "dummy"})).await;
    // POST + override GET: a query with a body, as real clients send it.
    let resp = request(Method::POST, node.url("/v1/objects/hosts"))
        .header("X-HTTP-Method-Override", "GET")
        .json(&json!({"attrs": ["address"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["results"][0]["attrs"], json!({"address": "10.0.0.1"}));
    // An unknown override is ignored: this stays a POST (modify).
    let resp = request(Method::POST, node.url("/v1/objects/hosts/h1"))
        .header("X-HTTP-Method-Override", "PATCH")
        .json(&json!({"attrs": {"address": "10.0.0.2"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["results"][0]["status"], "Attributes updated.");
    // POST + override DELETE deletes.
    let resp = request(Method::POST, node.url("/v1/objects/hosts/h1"))
        .header("X-HTTP-Method-Override", "DELETE")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(node.api.shared().store().get(ObjectType::Host, "h1").is_none());
    node.stop().await;
}

#[tokio::test]
async fn objects_are_created_queried_modified_and_deleted() {
    let node = Node::start(config()).await;
    let (status, _, body) = call(
        node.url("/v1/objects/hosts/web1"),
        Method::PUT,
        Some(json!({"attrs": {"address": "10.0.0.1", "check_command": "dummy"}})),
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"results": [{"code": 200, "status": "Object was created"}]}))
    );
    let (status, _, body) = call(node.url("/v1/objects/hosts/web1"), Method::PUT, Some(json!({}))).await;
    assert_eq!(
        (status, &body["results"][0]["status"]),
        (StatusCode::INTERNAL_SERVER_ERROR, &json!("Object could not be created."))
    );
    let (status, _, body) =
        call(node.url("/v1/objects/hosts/web1"), Method::PUT, Some(json!({"ignore_on_error": true}))).await;
    assert_eq!(status, 200, "{body}");
    create_service(&node, "web1!http").await;

    // Query: attrs, joins and meta, keys sorted, integers without a point.
    let url = node.url("/v1/objects/services?attrs=name&attrs=state&joins=host.address&meta=used_by");
    let resp = client().get(url).basic_auth("root", Some("icinga")).send().await.unwrap();
    let text = resp.text().await.unwrap();
    assert_eq!(
        text,
        r#"{"results":[{"attrs":{"name":"http","state":0},"joins":{"host":{"address":"10.0.0.1"}},"meta":{"used_by":[]},"name":"web1!http","type":"Service"}]}"#
    );
    let (status, _, body) = call(node.url("/v1/objects/hosts/nope"), Method::GET, None).await;
    assert_eq!((status, body), (StatusCode::NOT_FOUND, json!({"error": 404, "status": "No objects found."})));
    let (_, _, body) = call(node.url("/v1/objects/hosts?attrs=bogus"), Method::GET, None).await;
    assert_eq!(body["results"][0]["code"], 400);

    // Modify with a `vars.x` key, then find it with a filter.
    let (status, _, body) =
        call(node.url("/v1/objects/hosts/web1"), Method::POST, Some(json!({"attrs": {"vars.os": "linux"}})))
            .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"results": [{"code": 200, "name": "web1", "status": "Attributes updated.", "type": "Host"}]})
        )
    );
    let query = json!({"filter": "host.vars.os==\"linux\"", "attrs": ["vars"]});
    let (_, _, body) = call(node.url("/v1/objects/hosts?X"), Method::GET, Some(query)).await;
    assert_eq!(body["results"][0]["attrs"]["vars"], json!({"os": "linux"}));
    let (status, _, body) =
        call(node.url("/v1/objects/hosts/web1"), Method::POST, Some(json!({"restore_attrs": ["vars"]})))
            .await;
    assert_eq!(status, 200, "{body}");

    // Delete: a host with services needs cascade.
    let (status, _, body) = call(node.url("/v1/objects/hosts/web1"), Method::DELETE, None).await;
    assert_eq!((status, &body["results"][0]["code"]), (StatusCode::INTERNAL_SERVER_ERROR, &json!(500)));
    let (status, _, body) = call(node.url("/v1/objects/hosts/web1?cascade=1"), Method::DELETE, None).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"results": [{"code": 200, "errors": [], "name": "web1", "status": "Object was deleted.", "type": "Host"}]})
        )
    );
    assert!(node.api.shared().store().get(ObjectType::Service, "web1!http").is_none());
    node.stop().await;
}

#[tokio::test]
async fn pretty_indents_and_mutations_name_their_origin() {
    let node = Node::start(config()).await;
    let resp = request(Method::PUT, node.url("/v1/objects/hosts/h1?pretty=1"))
        .json(&json!({"attrs": {"check_command": "dummy"}}))
        .header("X-Request-Id", "req-42")
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    assert_eq!(text, "{\n    \"results\": [\n        {\n            \"code\": 200,\n            \"status\": \"Object was created\"\n        }\n    ]\n}");
    let journal = node.api.shared().store().journal();
    let entry = journal.last().expect("a journal entry");
    let origin = serde_json::to_value(&entry.origin).unwrap();
    assert_eq!(origin["via"], "http");
    assert_eq!(origin["request_id"], "req-42");
    assert_eq!(origin["user"], "root");
    assert_eq!(origin["request"], 1);
    node.stop().await;
}

#[tokio::test]
async fn status_reports_the_application_and_the_listener() {
    let node = Node::start(config()).await;
    let (status, _, body) = call(node.url("/v1/status"), Method::GET, None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> =
        body["results"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["ApiListener", "CIB", "IcingaApplication"]);
    let (_, _, body) = call(node.url("/v1/status/IcingaApplication"), Method::GET, None).await;
    let app = &body["results"][0]["status"]["icingaapplication"]["app"];
    assert_eq!(app["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(app["node_name"], "node1");
    assert!(app["program_start"].as_f64().unwrap() > 0.0);
    assert_eq!(app["pid"], std::process::id(), "the node runs in this test's process");
    let (_, _, body) = call(node.url("/v1/status/ApiListener"), Method::GET, None).await;
    assert!(body["results"][0]["status"]["api"]["http"]["clients"].as_u64().unwrap() >= 1);
    assert!(body["results"][0]["perfdata"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["label"] == "api_num_http_clients"));
    let (status, _, _) = call(node.url("/v1/status/Nope"), Method::GET, None).await;
    assert_eq!(status, 404);
    node.stop().await;
}

#[tokio::test]
async fn a_checkable_without_check_command_fails_validation_as_in_icinga() {
    // Scenario: PUT a host, then a service, without check_command; a service
    // whose host does not exist; a modify that empties check_command.
    // Bug: all were accepted, where Icinga's validation refuses them.
    // Fix: the store validates a checkable as Icinga does (check_command,
    // then max_check_attempts, then a service's host) and answers its texts.
    let node = Node::start(config()).await;
    let put = |path: &str, attrs: Value| {
        let url = node.url(path);
        async move { call(url, Method::PUT, Some(json!({ "attrs": attrs }))).await }
    };
    let refused = |name: &str, kind: &str, attr: &str, message: &str| {
        let error = format!(
            "Error: Validation failed for object '{name}' of type '{kind}'; Attribute '{attr}': {message}"
        );
        json!({"results": [{"code": 500, "errors": [error], "status": "Object could not be created."}]})
    };
    let (status, _, body) = put("/v1/objects/hosts/h1", json!({"address": "192.0.2.1"})).await;
    assert_eq!(status, 500);
    assert_eq!(body, refused("h1", "Host", "check_command", "Attribute must not be empty."));
    assert!(node.api.shared().store().get(ObjectType::Host, "h1").is_none());
    let (_, _, body) = put("/v1/objects/hosts/h1", json!({"check_command": ""})).await;
    assert_eq!(body, refused("h1", "Host", "check_command", "Attribute must not be empty."));
    let (_, _, body) =
        put("/v1/objects/hosts/h1", json!({"check_command": "dummy", "max_check_attempts": 0})).await;
    assert_eq!(body, refused("h1", "Host", "max_check_attempts", "Value must be greater than 0."));
    // A service's check_command is checked before its host, as Checkable's
    // attributes are before Service's.
    let (_, _, body) = put("/v1/objects/services/nope!http", json!({})).await;
    assert_eq!(body, refused("nope!http", "Service", "check_command", "Attribute must not be empty."));
    let (_, _, body) = put("/v1/objects/services/nope!http", json!({"check_command": "http"})).await;
    assert_eq!(
        body,
        refused("nope!http", "Service", "host_name", "Object 'nope' of type 'Host' does not exist.")
    );
    create_host(&node, "h1", json!({"check_command": "hostalive"})).await;
    let (status, _, body) = put("/v1/objects/services/h1!http", json!({"vars": {"port": 80}})).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            refused("h1!http", "Service", "check_command", "Attribute must not be empty.")
        )
    );
    let url = node.url("/v1/objects/hosts/h1");
    let (status, _, body) =
        call(url.clone(), Method::POST, Some(json!({"attrs": {"check_command": ""}}))).await;
    let emptied = "Attribute 'check_command' could not be set: Error: Validation failed for object 'h1' of type 'Host'; Attribute 'check_command': Attribute must not be empty.";
    assert_eq!((status, &body["results"][0]["status"]), (StatusCode::INTERNAL_SERVER_ERROR, &json!(emptied)));
    let host = node.api.shared().store().get(ObjectType::Host, "h1").unwrap();
    assert_eq!(host.attr("check_command"), "hostalive", "a refused modify changes nothing");
    let (status, _, body) = call(url, Method::POST, Some(json!({"attrs": {"check_command": "ping4"}}))).await;
    assert_eq!(status, 200, "{body}");
    node.stop().await;
}

#[tokio::test]
async fn a_hosts_first_problem_is_soft_and_turns_hard_at_max_check_attempts() {
    // Scenario: a host with the default max_check_attempts (3) goes DOWN
    // three times through process-check-result, then comes back UP.
    // Bug: the first DOWN answered state_type 1 (HARD) with vars_before
    // and vars_after null; Icinga answers SOFT attempt 1 and fills both.
    // Fix: Icinga's state machine, and the vars it records in each result.
    let node = Node::start(config()).await;
    create_host(&node, "h1", json!({"check_command": "dummy"})).await;
    let url = node.url("/v1/actions/process-check-result");
    let attrs = "attrs=state&attrs=state_type&attrs=check_attempt&attrs=max_check_attempts\
                 &attrs=last_state&attrs=last_state_type&attrs=last_hard_state&attrs=last_check_result";
    let query = node.url(&format!("/v1/objects/hosts/h1?{attrs}"));
    let (_, _, body) = call(query.clone(), Method::GET, None).await;
    let fresh = &body["results"][0]["attrs"];
    assert_eq!(
        (&fresh["state_type"], &fresh["check_attempt"], &fresh["max_check_attempts"]),
        (&json!(0), &json!(1), &json!(3))
    );
    let vars = |attempt: i64, state: i64, state_type: i64| json!({"attempt": attempt, "reachable": true, "state": state, "state_type": state_type});
    // exit status, then: state, state_type, check_attempt, last_hard_state,
    // and the result's state, previous_hard_state and vars_after.
    let steps = [
        (1, (1, 0, 1, 0), (2, 99, vars(1, 2, 0))),
        (1, (1, 0, 2, 0), (2, 99, vars(2, 2, 0))),
        (1, (1, 1, 1, 1), (2, 99, vars(1, 2, 1))),
        (0, (0, 1, 1, 0), (0, 2, vars(1, 0, 1))),
    ];
    let mut before = (Value::Null, 0, 0);
    for (exit_status, (state, state_type, attempt, hard), (cr_state, previous_hard, vars_after)) in steps {
        let cr = json!({"type": "Host", "host": "h1", "exit_status": exit_status, "plugin_output": "x"});
        let (status, _, body) = call(url.clone(), Method::POST, Some(cr)).await;
        assert_eq!(status, 200, "{body}");
        let (_, _, body) = call(query.clone(), Method::GET, None).await;
        let a = &body["results"][0]["attrs"];
        let seen = (&a["state"], &a["state_type"], &a["check_attempt"], &a["last_hard_state"]);
        assert_eq!(
            seen,
            (&json!(state), &json!(state_type), &json!(attempt), &json!(hard)),
            "after exit {exit_status}: {a}"
        );
        assert_eq!((&a["last_state"], &a["last_state_type"]), (&json!(before.1), &json!(before.2)));
        let cr = &a["last_check_result"];
        assert_eq!((&cr["state"], &cr["previous_hard_state"]), (&json!(cr_state), &json!(previous_hard)));
        assert_eq!((&cr["vars_before"], &cr["vars_after"]), (&before.0, &vars_after));
        before = (vars_after, state, state_type);
    }
    node.stop().await;
}

#[tokio::test]
async fn process_check_result_validates_and_applies() {
    let node = Node::start(config()).await;
    create_host(&node, "h1", json!({"check_command": "dummy"})).await;
    create_service(&node, "h1!disk").await;
    let url = node.url("/v1/actions/process-check-result");
    let ok = json!({"type": "Service", "filter": "service.name==\"disk\"", "exit_status": 2, "plugin_output": "DISK CRITICAL"});
    let (status, _, body) = call(url.clone(), Method::POST, Some(ok)).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"results": [{"code": 200, "status": "Successfully processed check result for object 'h1!disk'."}]})
        )
    );
    let svc = node.api.shared().store().get(ObjectType::Service, "h1!disk").unwrap();
    assert_eq!(svc.attrs["state"], 2);
    let (status, _, body) =
        call(url.clone(), Method::POST, Some(json!({"host": "h1", "plugin_output": "x"}))).await;
    assert_eq!(
        (status, &body["results"][0]["status"]),
        (StatusCode::BAD_REQUEST, &json!("Parameter 'exit_status' is required."))
    );
    let (status, _, body) =
        call(url.clone(), Method::POST, Some(json!({"host": "h1", "exit_status": 2, "plugin_output": "x"})))
            .await;
    assert_eq!(
        (status, &body["results"][0]["status"]),
        (StatusCode::BAD_REQUEST, &json!("Invalid 'exit_status' for Host h1."))
    );
    let (status, _, body) =
        call(url.clone(), Method::POST, Some(json!({"host": "h1", "exit_status": 0}))).await;
    assert_eq!(
        (status, &body["results"][0]["status"]),
        (StatusCode::BAD_REQUEST, &json!("Parameter 'plugin_output' is required"))
    );
    let (status, _, body) =
        call(url.clone(), Method::POST, Some(json!({"host": "nope", "exit_status": 0}))).await;
    assert_eq!((status, body), (StatusCode::NOT_FOUND, json!({"error": 404, "status": "No objects found."})));
    let large = "x".repeat(MAX_CHECK_RESULT_BYTES);
    let (status, _, body) = call(
        url,
        Method::POST,
        Some(json!({"host": "h1", "exit_status": 0, "plugin_output": large, "check_source": "n"})),
    )
    .await;
    let named = format!(
        "the check result's text (output, performance data, check source and command) is {} bytes, over the limit of {MAX_CHECK_RESULT_BYTES} bytes",
        MAX_CHECK_RESULT_BYTES + 1
    );
    assert_eq!((status, &body["results"][0]["status"]), (StatusCode::BAD_REQUEST, &json!(named)));
    assert!(
        node.api.shared().store().get(ObjectType::Host, "h1").unwrap().attrs["last_check_result"].is_null()
    );
    node.stop().await;
}

#[tokio::test]
async fn performance_data_absent_is_null_and_present_is_a_list() {
    // Scenario: a passive result without performance_data, then one with a
    // plugin's string, then one with an empty list.
    // Bug: the stored result answered `[]` where Icinga answers `null`.
    // Fix: absent performance data is kept as absent and answered as null.
    let node = Node::start(config()).await;
    create_host(&node, "h1", json!({"check_command": "dummy"})).await;
    let url = node.url("/v1/actions/process-check-result");
    let perfdata = || async {
        let (_, _, body) =
            call(node.url("/v1/objects/hosts/h1?attrs=last_check_result"), Method::GET, None).await;
        body["results"][0]["attrs"]["last_check_result"]["performance_data"].clone()
    };
    for (perf, expected) in [
        (None, Value::Null),
        (Some(json!("rta=1ms pl=0%")), json!(["rta=1ms", "pl=0%"])),
        (Some(json!([])), json!([])),
    ] {
        let mut body = json!({"type": "Host", "host": "h1", "exit_status": 0, "plugin_output": "UP"});
        if let Some(perf) = perf {
            body["performance_data"] = perf;
        }
        let (status, _, answer) = call(url.clone(), Method::POST, Some(body)).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(perfdata().await, expected);
    }
    node.stop().await;
}

#[tokio::test]
async fn create_sets_vars_paths_as_modify_does() {
    // Scenario: PUT /v1/objects/hosts/h1 with {"attrs":{"vars.os":"linux"}}.
    // Bug: the key was stored literally, an attribute named "vars.os".
    // Fix: create sets paths in key order, as Icinga writes `attrs` into config.
    let node = Node::start(config()).await;
    create_host(
        &node,
        "h1",
        json!({"check_command": "dummy", "vars": {"a": 1}, "vars.os": "linux", "vars.x.y": true}),
    )
    .await;
    let (_, _, body) = call(node.url("/v1/objects/hosts/h1?attrs=vars"), Method::GET, None).await;
    assert_eq!(body["results"][0]["attrs"], json!({"vars": {"a": 1, "os": "linux", "x": {"y": true}}}));
    let url = node.url("/v1/objects/hosts/h2");
    let (status, _, body) =
        call(url, Method::PUT, Some(json!({"attrs": {vars_path(MAX_DEPTH + 1): 1}}))).await;
    let named = "the path of attribute 'vars' has more than the limit of 32 segments";
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"error": 400, "status": named})));
    node.stop().await;
}

#[tokio::test]
async fn acknowledgements_and_comments_come_and_go() {
    let node = Node::start(config()).await;
    create_host(&node, "h1", json!({"check_command": "dummy"})).await;
    let action = |a: &str| node.url(&format!("/v1/actions/{a}"));
    let ack = json!({"type": "Host", "host": "h1", "author": "me", "comment": "looking"});
    let (status, _, body) = call(action("acknowledge-problem"), Method::POST, Some(ack.clone())).await;
    assert_eq!((status, &body["results"][0]["status"]), (StatusCode::CONFLICT, &json!("Host h1 is UP.")));
    let down = json!({"host": "h1", "exit_status": 1, "plugin_output": "DOWN"});
    assert_eq!(call(action("process-check-result"), Method::POST, Some(down)).await.0, 200);
    let (status, _, body) = call(action("acknowledge-problem"), Method::POST, Some(ack)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(node.api.shared().store().get(ObjectType::Host, "h1").unwrap().attrs["acknowledgement"], 1);
    let (status, _, _) =
        call(action("remove-acknowledgement"), Method::POST, Some(json!({"host": "h1"}))).await;
    assert_eq!(status, 200);
    assert_eq!(node.api.shared().store().get(ObjectType::Host, "h1").unwrap().attrs["acknowledgement"], 0);

    let (status, _, body) =
        call(action("add-comment"), Method::POST, Some(json!({"host": "h1", "author": "me"}))).await;
    assert_eq!(
        (status, &body["results"][0]["status"]),
        (StatusCode::BAD_REQUEST, &json!("Comments require author and comment."))
    );
    let c = json!({"host": "h1", "author": "me", "comment": "hello"});
    let (status, _, body) = call(action("add-comment"), Method::POST, Some(c)).await;
    assert_eq!(status, 200, "{body}");
    let comment = body["results"][0]["name"].as_str().unwrap().to_string();
    assert_eq!(node.api.shared().store().count(ObjectType::Comment), 1);
    let (status, _, body) =
        call(action("remove-comment"), Method::POST, Some(json!({"comment": comment}))).await;
    assert_eq!(
        (status, &body["results"][0]["status"]),
        (StatusCode::OK, &json!(format!("Successfully removed comment '{comment}'.")))
    );
    assert_eq!(node.api.shared().store().count(ObjectType::Comment), 0);
    node.stop().await;
}

/// Adds a comment to the object `target` selects and returns its name.
async fn add_comment<E: Env>(node: &Node<E>, target: Value) -> String {
    let mut body = json!({"author": "me", "comment": "c"});
    body.as_object_mut().unwrap().extend(target.as_object().unwrap().clone());
    let (status, _, body) = call(node.url("/v1/actions/add-comment"), Method::POST, Some(body)).await;
    assert_eq!(status, 200, "{body}");
    body["results"][0]["name"].as_str().unwrap().to_string()
}

async fn used_by<E: Env>(node: &Node<E>, path: &str) -> Value {
    let (status, _, body) = call(node.url(&format!("{path}?meta=used_by")), Method::GET, None).await;
    assert_eq!(status, 200, "{body}");
    body["results"][0]["meta"]["used_by"].clone()
}

fn names<E: Env>(node: &Node<E>, otype: ObjectType) -> Vec<String> {
    node.api.shared().store().list(otype).iter().map(|o| o.name.clone()).collect()
}

#[tokio::test]
async fn children_are_found_for_used_by_remove_comment_and_delete() {
    let node = Node::start(config()).await;
    create_host(&node, "h1", json!({"check_command": "dummy"})).await;
    create_host(&node, "h2", json!({"check_command": "dummy"})).await;
    create_service(&node, "h1!a").await;
    create_service(&node, "h1!b").await;
    create_service(&node, "h2!a").await;
    let on_h1 = add_comment(&node, json!({"host": "h1"})).await;
    let on_a = add_comment(&node, json!({"service": "h1!a"})).await;
    let on_b = add_comment(&node, json!({"service": "h1!b"})).await;
    let on_h2a = add_comment(&node, json!({"service": "h2!a"})).await;
    let host_users = json!([
        {"name": "h1!a", "type": "Service"}, {"name": "h1!b", "type": "Service"},
        {"name": on_h1, "type": "Comment"},
    ]);
    assert_eq!(used_by(&node, "/v1/objects/hosts/h1").await, host_users);
    assert_eq!(used_by(&node, "/v1/objects/services/h1!a").await, json!([{"name": on_a, "type": "Comment"}]));
    assert_eq!(used_by(&node, &format!("/v1/objects/comments/{on_a}")).await, json!([]));

    // remove-comment on a host leaves its services' comments alone.
    let remove = node.url("/v1/actions/remove-comment");
    let (status, _, body) = call(remove.clone(), Method::POST, Some(json!({"host": "h1"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&node, ObjectType::Comment), vec![on_a.clone(), on_b.clone(), on_h2a.clone()]);
    let (status, _, body) = call(remove, Method::POST, Some(json!({"service": "h1!b"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&node, ObjectType::Comment), vec![on_a.clone(), on_h2a.clone()]);

    // Deleting a service takes its comments; a host with cascade takes the rest.
    let (status, _, body) = call(node.url("/v1/objects/services/h1!a"), Method::DELETE, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&node, ObjectType::Comment), vec![on_h2a.clone()]);
    let again = add_comment(&node, json!({"host": "h1"})).await;
    let (status, _, body) = call(node.url("/v1/objects/hosts/h1?cascade=1"), Method::DELETE, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&node, ObjectType::Service), vec!["h2!a".to_string()]);
    assert_eq!(names(&node, ObjectType::Comment), vec![on_h2a], "{again} went with its host");
    assert_eq!(used_by(&node, "/v1/objects/hosts/h2").await, json!([{"name": "h2!a", "type": "Service"}]));
    node.stop().await;
}

fn nested(levels: usize) -> Value {
    (0..levels).fold(json!(1), |v, _| json!({ "k": v }))
}

/// A dotted path of `segments` segments in `vars`.
fn vars_path(segments: usize) -> String {
    std::iter::once("vars").chain(std::iter::repeat_n("a", segments - 1)).collect::<Vec<_>>().join(".")
}

/// Text of exactly `bytes` bytes with what JSON must escape and multi-byte UTF-8.
fn awkward_text(bytes: usize) -> String {
    let unit = "\u{1}\"\\é\n";
    let mut text = unit.repeat(bytes / unit.len());
    text.push_str(&"x".repeat(bytes - text.len()));
    text
}

async fn post_ok<E: Env>(node: &Node<E>, path: &str, body: Value) {
    let (status, _, answer) = call(node.url(path), Method::POST, Some(body)).await;
    assert_eq!(status, 200, "{path}: {answer}");
}

#[tokio::test]
async fn the_deepest_and_largest_values_the_api_accepts_survive_a_restart() {
    // Scenario: POST /v1/objects/hosts/h1 with {"attrs":{"vars.a.a…":1}}, the
    // path 125 segments deep, then a graceful Stop and a start.
    // Bug: the path was stored; the state file nested past serde_json's 128
    // levels, the start set it aside as corrupt and came up with no objects.
    // Fix: paths and values are bounded where they enter (MAX_DEPTH), so
    // everything the API accepts is persisted and loaded back.
    let config = config();
    let node = Node::start_with(TokioEnv::new(), config.clone()).await;
    let (status, _, body) = call(
        node.url("/v1/objects/hosts/h1"),
        Method::PUT,
        Some(json!({"attrs": {vars_path(MAX_DEPTH): {"k": 1}, "notes": nested(MAX_DEPTH - 2), "check_command": "dummy"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    create_service(&node, "h1!svc").await;
    let too_deep = json!({"attrs": {vars_path(125): 1}});
    let (status, _, body) = call(node.url("/v1/objects/hosts/h1"), Method::POST, Some(too_deep)).await;
    let named = "the path of attribute 'vars' has more than the limit of 32 segments";
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"error": 400, "status": named})));

    // The body's own two levels leave a value in `attrs` MAX_DEPTH - 2; a path goes deeper.
    let deepest = json!({"attrs": {vars_path(MAX_DEPTH): {"k": 1}, "vars.b": nested(MAX_DEPTH - 2),
        "address": awkward_text(1 << 20)}});
    post_ok(&node, "/v1/objects/services/h1!svc", deepest).await;
    for (target, state) in [("host", 1), ("service", 2)] {
        let name = if target == "host" { "h1" } else { "h1!svc" };
        let command_len = nested(MAX_DEPTH - 1).to_string().len();
        let output = awkward_text(MAX_CHECK_RESULT_BYTES - "node1".len() - "a=1 ".len() - command_len);
        let cr = json!({target: name, "exit_status": state, "plugin_output": output, "check_source": "node1",
            "performance_data": ["a=1"], "check_command": nested(MAX_DEPTH - 1)});
        post_ok(&node, "/v1/actions/process-check-result", cr).await;
        add_comment(&node, json!({target: name, "comment": awkward_text(1 << 16)})).await;
    }
    let ack = json!({"host": "h1", "author": awkward_text(100), "comment": "c", "sticky": true});
    post_ok(&node, "/v1/actions/acknowledge-problem", ack).await;
    let before = node.api.shared().store().snapshot();
    assert_eq!(before.objects.len(), 4, "a host, a service and two comments");

    let node = node.restart(config).await;
    let after = node.api.shared().store().snapshot();
    assert_eq!(after, before, "every object comes back as it was");
    let mut kept: Vec<_> = std::fs::read_dir(&node.dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    kept.sort();
    assert_eq!(
        kept,
        ["lock", "state.json"].map(std::ffi::OsString::from),
        "nothing was set aside as corrupt"
    );
    node.stop().await;
}

#[tokio::test]
async fn a_body_deeper_than_the_limit_is_400_naming_it() {
    let node = Node::start(config()).await;
    for levels in [MAX_DEPTH + 1, 129, 10_000] {
        let body = format!("{}1{}", "[".repeat(levels - 1), "]".repeat(levels - 1));
        let body = format!(r#"{{"attrs":{{"notes":{body}}}}}"#);
        let resp = request(Method::POST, node.url("/v1/objects/hosts")).body(body).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{levels} levels");
        let v: Value = resp.json().await.unwrap();
        let named = "Invalid request body: the request body is nested deeper than the limit of 32 levels";
        assert_eq!(v["status"], named, "{levels} levels");
    }
    node.stop().await;
}

#[tokio::test]
async fn an_unsupported_filter_is_400_naming_it() {
    let node = Node::start(config()).await;
    create_host(&node, "h1", json!({"check_command": "dummy"})).await;
    let body = json!({"filter": UNSUPPORTED_FILTER});
    let (status, _, body) = call(node.url("/v1/objects/hosts"), Method::GET, Some(body)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], 400);
    let text = body["status"].as_str().unwrap();
    assert!(text.starts_with("Invalid filter: "), "{text}");
    let (status, _, _) =
        call(node.url("/v1/objects/hosts"), Method::GET, Some(json!({"filter": "true", "filter_vars": [1]})))
            .await;
    assert_eq!(status, 400);
    node.stop().await;
}

/// A construct the filter language of the contract does not have.
const UNSUPPORTED_FILTER: &str = "function() { return true }";

/// A query of hosts as the read-only user, with `filter`.
async fn query_hosts_as_ro<E: Env>(node: &Node<E>, filter: &str) -> (StatusCode, Value) {
    let body = json!({"filter": filter, "attrs": ["name"]});
    let (status, _, body) = call_as("ro", "pw", node.url("/v1/objects/hosts"), Method::GET, Some(body)).await;
    (status, body)
}

#[tokio::test]
async fn a_filter_past_the_budget_is_400_and_one_within_it_is_answered() {
    let mut config = config();
    config.limits.filter_budget = 1_000;
    let node = Node::start_with(TokioEnv::new(), config).await;
    for i in 0..20 {
        create_host(&node, &format!("h{i}"), json!({"check_command": "dummy"})).await;
    }
    // About 7 steps per host.
    let (status, body) = query_hosts_as_ro(&node, r#"host.name == "h7""#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["name"], "h7", "{body}");
    // About 800 steps per host.
    let names: Vec<String> = (0..200).map(|i| format!("\"n{i}\"")).collect();
    let (status, body) = query_hosts_as_ro(&node, &format!("host.name in [{}]", names.join(", "))).await;
    assert_eq!(status, 400, "{body}");
    let text = "Invalid filter: the filter needs more than 1000 evaluation steps over the objects it runs \
                over (filter_budget); narrow it.";
    assert_eq!(body, json!({"error": 400, "status": text}));
    node.stop().await;
}

// Scenario: a query whose filter takes millions of steps is being evaluated
//           on a current-thread runtime when Stop is called.
// Bug: filtering never yielded: nothing else on that runtime ran until it
//      ended, Stop included, and Stop had no way to end it.
// Fix: filtering pauses every PAUSE_STEPS steps (yield_now); at a pause
//      after Stop has begun to close HTTP, the request gives up with 503.
#[tokio::test]
async fn a_long_filter_lets_stop_run_and_is_answered_503() {
    let env = LatchEnv::at(Point::HttpFilterPause, 0, false);
    let node = Node::start_with(env.clone(), config()).await;
    let text = "a".repeat(10_000);
    for i in 0..50 {
        create_host(&node, &format!("h{i}"), json!({"check_command": "dummy", "vars": {"text": text}})).await;
    }
    // Each comparison reads 10 KB: about 50 000 steps per host, 2.5 M in
    // all, well within the default budget and a hundred pauses long.
    let filter = vec!["host.vars.text != host.vars.text"; 300].join(" || ");
    let reached = env.reached.notified();
    let node_url = node.url("/v1/objects/hosts");
    let body = Some(json!({"filter": filter, "attrs": ["name"]}));
    let query = tokio::spawn(call_as("ro", "pw", node_url, Method::GET, body));
    bounded("the filter's first pause", reached).await;
    node.stop().await;
    let (status, _, body) = bounded("the query", query).await.unwrap();
    assert_eq!(
        (status, body),
        (StatusCode::SERVICE_UNAVAILABLE, json!({"error": 503, "status": "Shutting down."}))
    );
    let probes = env.probes.lock().unwrap();
    let closing = probes.iter().position(|p| matches!(p, Probe::Stop { step: StopStep::HttpClosing }));
    let answered = probes.iter().position(|p| matches!(p, Probe::HttpResponse { status: 503, .. }));
    assert!(closing.is_some() && closing < answered, "Stop closed HTTP before the query was answered");
}

#[tokio::test]
async fn http_1_0_is_served_and_closed_but_gets_no_event_stream() {
    let node = Node::start(config()).await;
    let mut s = connect(node.addr).await;
    s.write_all(format!("GET /v1 HTTP/1.0\r\n{AUTH}\r\n").as_bytes()).await.unwrap();
    let resp = read_to_end(&mut s).await.unwrap();
    assert!(resp.starts_with("HTTP/1.0 200"), "{resp}");
    let mut s = connect(node.addr).await;
    let head = format!(
        "POST /v1/events?types=CheckResult&queue=q HTTP/1.0\r\nAccept: application/json\r\n{AUTH}\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let resp = read_to_end(&mut s).await.unwrap();
    assert!(resp.starts_with("HTTP/1.0 400"), "{resp}");
    assert!(body_of(&resp).contains("HTTP/1.0 not supported for event streams."), "{resp}");
    node.stop().await;
}

#[tokio::test]
async fn event_streams_need_types_and_queue_and_permission() {
    let node = Node::start(config()).await;
    let url = node.url("/v1/events");
    let (status, _, body) = call(url.clone(), Method::POST, Some(json!({"queue": "q"}))).await;
    assert_eq!(
        (status, body["status"].clone()),
        (StatusCode::BAD_REQUEST, json!("'types' query parameter is required."))
    );
    let (status, _, body) = call(url.clone(), Method::POST, Some(json!({"types": ["CheckResult"]}))).await;
    assert_eq!(
        (status, body["status"].clone()),
        (StatusCode::BAD_REQUEST, json!("'queue' query parameter is required."))
    );
    let (status, _, body) =
        call_as("ro", "pw", url, Method::POST, Some(json!({"types": ["CheckResult"], "queue": "q"}))).await;
    assert_eq!(
        (status, body["status"].clone()),
        (StatusCode::FORBIDDEN, json!("Missing permission: events/checkresult"))
    );
    node.stop().await;
}

// -------------------------------------------------------------------- and Stop

/// Reads one chunk-encoded NDJSON line (one chunk per event).
async fn read_chunk(s: &mut TcpStream, pending: &mut Vec<u8>) -> Option<String> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(pending, b"\r\n") {
            let size =
                usize::from_str_radix(std::str::from_utf8(&pending[..end]).unwrap().trim(), 16).unwrap();
            if size == 0 {
                return None;
            }
            if pending.len() >= end + 2 + size + 2 {
                let data = String::from_utf8_lossy(&pending[end + 2..end + 2 + size]).into_owned();
                pending.drain(..end + 2 + size + 2);
                return Some(data);
            }
        }
        let n = bounded("event chunk", s.read(&mut chunk)).await.unwrap();
        assert!(n > 0, "stream closed without its last chunk");
        pending.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn an_event_stream_delivers_lines_and_ends_cleanly_at_stop() {
    let node = Node::start(config()).await;
    create_host(&node, "h1", json!({"check_command": "dummy"})).await;
    let (mut s, mut pending) = open_events(&node, None).await;

    let cr = json!({"host": "h1", "exit_status": 1, "plugin_output": "DOWN"});
    assert_eq!(call(node.url("/v1/actions/process-check-result"), Method::POST, Some(cr)).await.0, 200);
    let first: Value =
        serde_json::from_str(read_chunk(&mut s, &mut pending).await.unwrap().trim_end()).unwrap();
    assert_eq!((first["type"].as_str(), first["host"].as_str()), (Some("CheckResult"), Some("h1")));
    let second: Value =
        serde_json::from_str(read_chunk(&mut s, &mut pending).await.unwrap().trim_end()).unwrap();
    assert_eq!(second["type"], "StateChange");

    node.stop().await;
    // The stream ends with its terminating chunk, then the connection closes.
    assert_eq!(read_chunk(&mut s, &mut pending).await, None);
    let rest = read_to_end(&mut s).await.unwrap();
    pending.extend_from_slice(rest.as_bytes());
    assert_eq!(String::from_utf8_lossy(&pending), "0\r\n\r\n", "nothing but the last chunk, then EOF");
}

#[tokio::test]
async fn every_soft_result_and_the_hard_change_are_announced_as_state_changes() {
    // Scenario: a subscriber of CheckResult and StateChange; a host goes
    // DOWN four times (max_check_attempts 3).
    // Bug: StateChange came only when the state changed, always HARD.
    // Fix: as Icinga's OnStateChange: each SOFT result, and the hard change,
    // with the state type of the moment; a HARD problem that stays is not.
    let node = Node::start(config()).await;
    create_host(&node, "h1", json!({"check_command": "dummy"})).await;
    let (mut s, mut pending) = open_events(&node, None).await;
    for _ in 0..4 {
        let cr = json!({"host": "h1", "exit_status": 1, "plugin_output": "DOWN"});
        assert_eq!(call(node.url("/v1/actions/process-check-result"), Method::POST, Some(cr)).await.0, 200);
    }
    let mut seen = vec![];
    for _ in 0..7 {
        let line = read_chunk(&mut s, &mut pending).await.unwrap();
        let event: Value = serde_json::from_str(line.trim_end()).unwrap();
        let attempt = &event["check_result"]["vars_after"]["attempt"];
        seen.push((
            event["type"].as_str().unwrap().to_string(),
            event["state_type"].clone(),
            attempt.clone(),
        ));
    }
    let (cr, sc) = (
        |a: i64| ("CheckResult".to_string(), Value::Null, json!(a)),
        |t: i64, a: i64| ("StateChange".to_string(), json!(t), json!(a)),
    );
    assert_eq!(seen, vec![cr(1), sc(0, 1), cr(2), sc(0, 2), cr(1), sc(1, 1), cr(1)]);
    node.stop().await;
    assert_eq!(
        read_chunk(&mut s, &mut pending).await,
        None,
        "no StateChange for the HARD problem that stayed"
    );
}

/// Opens an event stream of check results and state changes, with `filter`
/// if given; the socket and what was read past the response head.
async fn open_events<E: Env>(node: &Node<E>, filter: Option<&str>) -> (TcpStream, Vec<u8>) {
    let body = filter.map(|f| json!({"filter": f}).to_string()).unwrap_or_default();
    let mut s = connect(node.addr).await;
    let head = format!(
        "POST /v1/events?types=CheckResult&types=StateChange&queue=q HTTP/1.1\r\nHost: x\r\n\
         Accept: application/json\r\n{AUTH}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while find(&buf, b"\r\n\r\n").is_none() {
        let n = bounded("events head", s.read(&mut chunk)).await.unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&chunk[..n]);
    }
    let end = find(&buf, b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
    assert!(head.starts_with("http/1.1 200") && head.contains("transfer-encoding: chunked"), "{head}");
    (s, buf[end + 4..].to_vec())
}

#[tokio::test]
async fn an_event_filter_gets_the_whole_budget_for_each_event() {
    let mut config = config();
    config.limits.filter_budget = 100;
    let node = Node::start_with(TokioEnv::new(), config).await;
    create_host(&node, "h1", json!({"check_command": "dummy"})).await;
    // A state change matches at once (about 10 steps); a check result would
    // match only at the end of the chain, past 100 steps.
    let mut chain = vec![r#"event.type == "StateChange""#.to_string()];
    chain.extend((0..60).map(|i| format!(r#"event.type == "x{i}""#)));
    chain.push(r#"event.type == "CheckResult""#.to_string());
    let (mut s, mut pending) = open_events(&node, Some(&chain.join(" || "))).await;
    for exit_status in [1, 0] {
        let cr = json!({"host": "h1", "exit_status": exit_status, "plugin_output": "x"});
        assert_eq!(call(node.url("/v1/actions/process-check-result"), Method::POST, Some(cr)).await.0, 200);
    }
    // Each check result came first and was dropped; each state change,
    // with a budget of its own, was delivered.
    for _ in 0..2 {
        let line: Value =
            serde_json::from_str(read_chunk(&mut s, &mut pending).await.unwrap().trim_end()).unwrap();
        assert_eq!(line["type"], "StateChange", "{line}");
    }
    node.stop().await;
    assert_eq!(read_chunk(&mut s, &mut pending).await, None);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_stop() {
    let node = Node::start(config()).await;
    let mut s = connect(node.addr).await;
    s.write_all(format!("GET /v1 HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n").as_bytes()).await.unwrap();
    let resp = read_response(&mut s).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    node.stop().await;
    let rest = read_to_end(&mut s).await.expect("a clean close");
    assert_eq!(rest, "", "closed without another byte");
    bounded("every task ends", node.api.wait_for_tasks()).await;
}

#[tokio::test]
async fn a_request_whose_body_never_comes_is_answered_503_at_stop() {
    let mut config = config();
    config.timings.http_close_cap = Duration::from_millis(100);
    let node = Node::start_with(TokioEnv::new(), config).await;
    let mut s = connect(node.addr).await;
    let head = format!(
        "PUT /v1/objects/hosts/h HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n{AUTH}\
         Expect: 100-continue\r\nContent-Length: 10\r\n\r\n{{}}"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = [0u8; 64];
    let n = bounded("100 continue", s.read(&mut buf)).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100"));
    // The handler waits for a body that never comes: Stop gives it up with
    // 503 (it has not reached its gate), and the connection closes.
    node.stop().await;
    let rest = read_to_end(&mut s).await.unwrap_or_default();
    assert!(rest.starts_with("HTTP/1.1 503"), "a body still arriving at Stop is refused: {rest}");
    assert!(body_of(&rest).contains("Shutting down."), "{rest}");
    bounded("every task ends", node.api.wait_for_tasks()).await;
    assert!(node.api.shared().store().get(ObjectType::Host, "h").is_none());
}

#[tokio::test]
async fn a_half_sent_request_is_closed_at_stop() {
    let node = Node::start(config()).await;
    // As the first request of a connection...
    let mut first = connect(node.addr).await;
    first.write_all(b"GET /v1 HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    // ...and after a completed one.
    let mut second = connect(node.addr).await;
    second.write_all(format!("GET /v1 HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n").as_bytes()).await.unwrap();
    assert!(read_response(&mut second).await.starts_with("HTTP/1.1 200"));
    second.write_all(b"GET /v1 HTTP/1.1\r\nHo").await.unwrap();
    // Let the server see the partial heads before Stop.
    wait_for_http_clients(&node, 2).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    node.stop().await;
    assert_eq!(read_to_end(&mut first).await.unwrap_or_default(), "");
    assert_eq!(read_to_end(&mut second).await.unwrap_or_default(), "");
}

async fn wait_for_http_clients<E: Env>(node: &Node<E>, n: usize) {
    bounded("registration", async {
        while node.api.shared().connection_counts().0 < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let mut config = config();
    config.timings.http_idle_timeout = Duration::from_millis(200);
    config.timings.http_close_cap = Duration::from_secs(600);
    let node = Node::start_with(TokioEnv::new(), config).await;
    let mut s = connect(node.addr).await;
    s.write_all(format!("GET /v1 HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n").as_bytes()).await.unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    // Without Stop, the server closes the idle connection by itself.
    assert_eq!(read_to_end(&mut s).await.unwrap_or_default(), "");
    let mut half = connect(node.addr).await;
    half.write_all(b"GET /v1 HTTP/1.1\r\nHost:").await.unwrap();
    let _ = read_to_end(&mut half).await;
    node.stop().await;
}

#[tokio::test]
async fn a_modifying_request_that_reaches_its_gate_during_stop_gets_503() {
    let node = Node::start(config()).await;
    let mut s = connect(node.addr).await;
    let head = format!(
        "PUT /v1/objects/hosts/late HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n{AUTH}\
         Expect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    // hyper sends 100 Continue when the handler starts reading the body: the
    // request is in flight, before its gate.
    let mut buf = vec![0u8; 64];
    let mut got = Vec::new();
    while find(&got, b"\r\n\r\n").is_none() {
        let n = bounded("100 continue", s.read(&mut buf)).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 100"));
    let api = node.api.clone();
    let stopping = tokio::spawn(async move { api.stop().await });
    bounded("join starts", async {
        while node.api.shared().work_open() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    s.write_all(b"{}").await.unwrap();
    let resp = read_to_end(&mut s).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 503"), "{resp}");
    assert!(resp.to_lowercase().contains("content-type: application/json"), "{resp}");
    assert_eq!(body_of(&resp), r#"{"error":503,"status":"Shutting down."}"#);
    bounded("stop", stopping).await.unwrap().expect("Stop persists the state");
    assert!(node.api.shared().store().get(ObjectType::Host, "late").is_none());
    assert_eq!(node.api.shared().store().seal_violations(), 0);
}

// ------------------------------------------- a multi-object request during Stop

/// A modify of hosts a, b and c with Stop starting while the handler is
/// between a and b. Stop waits for the handler's answer either way; a
/// handler that is not `gated` goes on only once the store is sealed.
struct Latched {
    status: StatusCode,
    body: Value,
    node: Node<LatchEnv>,
    env: LatchEnv,
}

async fn modify_three_hosts_across_stop(config: Config, gated: bool) -> Latched {
    let env = LatchEnv::at(Point::HttpBetweenObjects, 1, true);
    let node = Node::start_with(env.clone(), config).await;
    for h in ["a", "b", "c"] {
        create_host(&node, h, json!({"check_command": "dummy"})).await;
    }
    env.seen.store(0, Ordering::SeqCst);
    let reached = env.reached.notified();
    let body = Some(json!({"attrs": {"notes": "x"}}));
    let modify = tokio::spawn(call(node.url("/v1/objects/hosts"), Method::POST, body));
    bounded("second object", reached).await;
    let api = node.api.clone();
    let stopping = tokio::spawn(async move { api.stop().await });
    bounded("join starts", async {
        while node.api.shared().work_open() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    if !gated {
        // Without the gate the handler does not hold Stop's work join: the
        // store is sealed while the handler is still between objects.
        bounded("the seal", async {
            while !node.api.shared().store().is_sealed() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
    }
    assert!(!stopping.is_finished(), "Stop waits for the handler's answer");
    env.go.notify_one();
    let (status, _, body) = bounded("modify", modify).await.unwrap();
    bounded("stop", stopping).await.unwrap().expect("Stop persists the state");
    Latched { status, body, node, env }
}

fn notes(node: &Node<LatchEnv>, host: &str) -> Option<Value> {
    node.api.shared().store().get(ObjectType::Host, host).and_then(|h| h.attrs.get("notes").cloned())
}

/// The gate probes of the modify request, and whether its guard was released
/// before its response was reported.
fn gate_story(env: &LatchEnv) -> (Vec<Probe>, bool) {
    let probes = env.probes.lock().unwrap();
    let ours = |work: &str| work.contains("POST /v1/objects/hosts");
    let gate: Vec<Probe> = probes
        .iter()
        .filter(|p| matches!(p, Probe::GateEntered { work } | Probe::GateReleased { work } if ours(work)))
        .cloned()
        .collect();
    let released = probes.iter().position(|p| matches!(p, Probe::GateReleased { work } if ours(work)));
    let answered =
        probes.iter().position(|p| matches!(p, Probe::HttpResponse { method, .. } if method == "POST"));
    (gate, released < answered)
}

#[tokio::test]
async fn objects_after_stop_began_are_skipped_and_the_answer_says_so() {
    let run = modify_three_hosts_across_stop(config(), true).await;
    assert_eq!(run.status, 503, "200 + 503 + 503 is 503");
    assert_eq!(
        run.body,
        json!({"results": [
            {"code": 200, "name": "a", "status": "Attributes updated.", "type": "Host"},
            {"code": 503, "name": "b", "status": "Action skipped: Shutting down.", "type": "Host"},
            {"code": 503, "name": "c", "status": "Action skipped: Shutting down.", "type": "Host"},
        ]})
    );
    assert_eq!(notes(&run.node, "a"), Some(json!("x")));
    assert_eq!((notes(&run.node, "b"), notes(&run.node, "c")), (None, None));
    assert_eq!(run.node.api.shared().store().seal_violations(), 0);
    let (gate, released_first) = gate_story(&run.env);
    assert!(matches!(gate.as_slice(), [Probe::GateEntered { .. }, Probe::GateReleased { .. }]), "{gate:?}");
    assert!(released_first, "the guard is released before the response is written");
}

/// Modifies one host without Stop; whether the guard was released before
/// the response was reported.
async fn modify_one_host(config: Config) -> bool {
    let env = LatchEnv::at(Point::HttpBetweenObjects, 1, true);
    let node = Node::start_with(env.clone(), config).await;
    create_host(&node, "a", json!({"check_command": "dummy"})).await;
    env.probes.lock().unwrap().clear();
    let body = Some(json!({"attrs": {"notes": "x"}}));
    let (status, _, _) = call(node.url("/v1/objects/hosts/a"), Method::POST, body).await;
    assert_eq!(status, 200);
    let (gate, released_first) = gate_story(&env);
    assert_eq!(gate.len(), 2, "{gate:?}");
    node.stop().await;
    released_first
}

#[tokio::test]
async fn the_gate_is_released_before_the_response_is_written() {
    assert!(modify_one_host(config()).await);
}

/// The planted bugs of the HTTP side, each switched on alone: the hooks are
/// where they should be, and each breaks what its name says.
#[cfg(feature = "bug-zoo")]
mod bug_zoo {
    use super::*;
    use quiesce::bugs::Bug;

    fn with(bug: Bug) -> Config {
        let mut config = config();
        config.bugs.insert(bug);
        config
    }

    #[tokio::test]
    async fn modify_answers_200_when_skipped() {
        let run = modify_three_hosts_across_stop(with(Bug::ModifyAnswers200WhenSkipped), true).await;
        assert_eq!(run.status, 200, "the bug hides the skips in the status");
        assert_eq!(run.body["results"][2]["code"], 503);
    }

    #[tokio::test]
    async fn gate_checked_once_processes_every_object_while_stop_waits() {
        let run = modify_three_hosts_across_stop(with(Bug::GateCheckedOnce), true).await;
        assert_eq!(run.status, 200);
        assert_eq!(notes(&run.node, "c"), Some(json!("x")));
    }

    #[tokio::test]
    async fn a_modify_handler_without_gate_mutates_after_stop() {
        let run = modify_three_hosts_across_stop(with(Bug::HttpHandlerWithoutGate), false).await;
        assert!(
            run.node.api.shared().store().seal_violations() > 0,
            "mutations attempted after Stop returned"
        );
        // The sealed store refused them, and the answer says so.
        assert_eq!(run.status, 503);
        assert_eq!(notes(&run.node, "c"), None, "nothing changed after the seal");
    }

    #[tokio::test]
    async fn the_gate_held_while_writing_is_released_after_the_response() {
        let released_first = modify_one_host(with(Bug::GateHeldWhileWriting)).await;
        assert!(!released_first, "the guard outlives the response head");
    }

    #[tokio::test]
    async fn idle_keep_alive_connections_survive_stop() {
        let node = Node::start_with(TokioEnv::new(), with(Bug::IdleKeepAliveNotClosed)).await;
        let mut s = connect(node.addr).await;
        let get = format!("GET /v1 HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n");
        s.write_all(get.as_bytes()).await.unwrap();
        assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
        node.stop().await;
        // Left alone by Stop, the connection still takes a request (and,
        // Stop being over, answers it 503).
        s.write_all(get.as_bytes()).await.unwrap();
        assert!(read_response(&mut s).await.starts_with("HTTP/1.1 503"));
    }
}
