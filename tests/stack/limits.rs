//! Every limit that keeps a node from growing without bound, shown acting on
//! a real node: each test sets its limit low and pushes past it.

use crate::common::*;
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once_and_counted() {
    let mut config = config("conncap");
    config.limits.max_connections = 2;
    let node = Node::start(config).await;
    let first = connect(node.addr).await;
    let mut second = connect(node.addr).await;
    let mut third = connect(node.addr).await;
    let mut byte = [0u8; 1];
    let n = bounded("the third is closed", third.read(&mut byte)).await.unwrap_or(0);
    assert_eq!(n, 0, "a connection over the cap is closed without a byte");
    // The two under the cap are served.
    assert!(exchange(&mut second, "GET", "/v1", "").await.starts_with("HTTP/1.1 200"));
    drop(first);
    // Once one ends, there is room again; the refusal was counted.
    let status = bounded("room again", async {
        loop {
            let (code, body) = request(node.addr, "GET", "/v1/status/ApiListener", "").await;
            if code == 200 {
                return body;
            }
        }
    })
    .await;
    let refused = &status["results"][0]["status"]["api"]["refused_connections"];
    assert!(refused.as_u64().unwrap_or(0) >= 1, "{status}");
    node.stop().await;
}

#[tokio::test]
async fn a_body_that_trickles_in_is_given_up_at_its_total_deadline() {
    // Scenario: a client sends a request head, then its body one byte at a
    // time, each byte well within the idle timeout.
    // Bug: only the pause between bytes was bounded, so the request, its
    // connection and its buffer could be held for ever.
    // Fix: the whole body must arrive within http_body_timeout.
    let mut config = config("trickle");
    config.timings.http_body_timeout = std::time::Duration::from_millis(300);
    let node = Node::start(config).await;
    let mut s = connect(node.addr).await;
    let head = format!(
        "PUT /v1/objects/hosts/slow HTTP/1.1\r\nHost: x\r\n{AUTH}Accept: application/json\r\nContent-Length: 100\r\n\r\n"
    );
    tokio::io::AsyncWriteExt::write_all(&mut s, head.as_bytes()).await.unwrap();
    let trickle = async {
        for _ in 0..100 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            if tokio::io::AsyncWriteExt::write_all(&mut s, b" ").await.is_err() {
                break;
            }
        }
    };
    bounded("trickle", trickle).await;
    let resp = read_response(&mut s).await;
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(body_of(&resp).contains("http_body_timeout_secs"), "the answer names the limit: {resp}");
    assert!(node.api.shared().store().get(quiesce::store::ObjectType::Host, "slow").is_none());
    node.stop().await;
}

#[test]
fn a_client_that_never_reads_its_response_is_disconnected_at_the_write_timeout() {
    let log = Captured::default();
    log.runtime().block_on(a_client_that_never_reads(&log));
}

async fn a_client_that_never_reads(log: &Captured) {
    let mut config = config("noread");
    config.timings.http_write_timeout = std::time::Duration::from_millis(300);
    let node = Node::start(config).await;
    // Answers far larger than any socket buffer: the write must stall.
    let notes = "n".repeat(8 << 20);
    for h in ["a", "b", "c"] {
        let body = format!(r#"{{"attrs":{{"check_command":"dummy","notes":"{notes}"}}}}"#);
        assert_eq!(request(node.addr, "PUT", &format!("/v1/objects/hosts/{h}"), &body).await.0, 200);
    }
    let mut deaf = connect(node.addr).await;
    let query = format!("GET /v1/objects/hosts HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut deaf, query.as_bytes()).await.unwrap();
    let http_clients = || node.api.shared().connection_counts().0;
    bounded("the deaf client is registered", async {
        while http_clients() == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await;
    bounded("the node lets the deaf client go", async {
        while http_clients() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    // What it did get is cut short: the answer was never finished.
    let got = read_to_end(&mut deaf).await.map(|s| s.len()).unwrap_or(0);
    assert!(got < 3 * notes.len(), "the connection ended before the whole answer ({got} bytes)");
    node.stop().await;
    // An operator learns why the node dropped the client, at the default level.
    let text = log.text();
    let why = text.lines().find(|l| l.contains("Closing HTTP connection from [127.0.0.1:"));
    assert!(why.is_some_and(|l| l.contains("INFO") && l.contains("read nothing")), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_that_falls_behind_is_told_how_many_events_it_missed() {
    // Scenario: a subscriber stops reading while check results keep coming.
    // Bug: once it was more than the backlog behind, events were dropped
    // and the stream went on as if nothing had happened.
    // Fix: the stream says how many events it missed, then goes on.
    let mut config = config("lag");
    config.limits.event_backlog = 8;
    let node = Node::start(config).await;
    assert_eq!(
        request(node.addr, "PUT", "/v1/objects/hosts/h", r#"{"attrs":{"check_command":"dummy"}}"#).await.0,
        200
    );
    let mut s = connect(node.addr).await;
    let head = format!(
        "POST /v1/events?types=CheckResult&queue=q HTTP/1.1\r\nHost: x\r\n{AUTH}Accept: application/json\r\nContent-Length: 0\r\n\r\n"
    );
    tokio::io::AsyncWriteExt::write_all(&mut s, head.as_bytes()).await.unwrap();
    // Events of 64 KiB: a few hundred fill any socket buffer, and the
    // subscriber reads none of them meanwhile.
    let output = "o".repeat(64 * 1024);
    for i in 0..300 {
        let body =
            format!(r#"{{"type":"Host","host":"h","exit_status":{},"plugin_output":"{output}"}}"#, i % 2);
        assert_eq!(request(node.addr, "POST", "/v1/actions/process-check-result", &body).await.0, 200);
    }
    let mut seen = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    let told = bounded("the lag line", async {
        loop {
            let n = s.read(&mut chunk).await.expect("read");
            assert!(n > 0, "the stream ended without telling");
            seen.extend_from_slice(&chunk[..n]);
            if let Some(at) = find(&seen, b"EventStreamLagged") {
                return String::from_utf8_lossy(&seen[at.saturating_sub(200)..]).into_owned();
            }
        }
    })
    .await;
    assert!(told.contains(r#""dropped":"#) && told.contains("events were not sent"), "{told}");
    node.stop().await;
}
