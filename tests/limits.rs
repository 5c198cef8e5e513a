//! Every limit that keeps a node from growing without bound, shown acting on
//! a real node: each test sets its limit low and pushes past it.

mod common;

use common::*;
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
