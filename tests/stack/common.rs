//! What the integration tests share: a real node on 127.0.0.1 port 0 with its
//! own state directory, bounded waits, and raw-socket helpers for what a
//! polite client never does.
#![allow(dead_code)] // not every helper is used by every build of the tests

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use quiesce::config::{ApiUser, Config};
use quiesce::env::tokio::{TokioEnv, TokioListener};
use quiesce::env::{Env, Point};
use quiesce::listener::ApiListener;
use quiesce::probe::Probe;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// How long any single wait of a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// `Authorization` for `root:icinga`, with its line end.
pub const AUTH: &str = "Authorization: Basic cm9vdDppY2luZ2E=\r\n";

/// Bounds a wait; a test that would hang fails instead.
pub async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut).await.unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// A state directory of its own for each node of a test process.
pub fn state_dir(tag: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("quiesce-{tag}-{}-{n}", std::process::id()))
}

fn user(spec: &str) -> ApiUser {
    spec.parse().expect("valid user")
}

/// A node on 127.0.0.1:0 with `root:icinga` (all permissions) and `ro:pw`
/// (queries only), and timeouts far beyond the tests' waits, so that what
/// closes a connection in a test is the mechanism under test.
pub fn config(tag: &str) -> Config {
    let mut c = Config {
        listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
        state_dir: state_dir(tag),
        api_users: vec![user("root:icinga"), user("ro:pw:objects/query/*,status/query")],
        node_name: "node1".into(),
        ..Config::default()
    };
    c.timings.http_idle_timeout = Duration::from_secs(600);
    c.timings.http_close_cap = Duration::from_secs(600);
    c
}

/// A running node and where to reach it.
pub struct Node<E: Env = TokioEnv> {
    /// The node.
    pub api: Arc<ApiListener<E>>,
    /// Its HTTP address.
    pub addr: SocketAddr,
    /// Its state directory, removed when the node is dropped.
    pub dir: PathBuf,
}

impl Node<TokioEnv> {
    /// Starts a node with the real environment.
    pub async fn start(config: Config) -> Self {
        Self::start_with(TokioEnv::new(), config).await
    }
}

impl<E: Env> Node<E> {
    /// Starts a node in `env`.
    pub async fn start_with(env: E, config: Config) -> Self {
        let dir = config.state_dir.clone();
        let api = bounded("start", ApiListener::start(env, config)).await.expect("node starts");
        let addr = api.local_addrs()[0];
        Node { api: Arc::new(api), addr, dir }
    }

    /// Stops it, bounded; the state must be persisted.
    pub async fn stop(&self) {
        bounded("stop", self.api.stop()).await.expect("Stop persists the state");
    }

    /// A URL on this node.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Node<TokioEnv> {
    /// Stops the node and starts another on its state directory, as a restart does.
    pub async fn restart(mut self, config: Config) -> Self {
        assert_eq!(config.state_dir, self.dir, "a restart keeps the state directory");
        self.stop().await;
        // The new node owns the directory now.
        self.dir = PathBuf::new();
        Node::start(config).await
    }
}

impl<E: Env> Drop for Node<E> {
    fn drop(&mut self) {
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A raw connection.
pub async fn connect(addr: SocketAddr) -> TcpStream {
    bounded("connect", TcpStream::connect(addr)).await.expect("connect")
}

/// Reads until the peer closes the connection.
pub async fn read_to_end(stream: &mut TcpStream) -> io::Result<String> {
    let mut out = Vec::new();
    bounded("read to EOF", stream.read_to_end(&mut out)).await?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Reads exactly one response with a Content-Length body.
pub async fn read_response(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let len = content_length(&buf[..end]);
            if buf.len() >= end + 4 + len {
                return String::from_utf8_lossy(&buf[..end + 4 + len]).into_owned();
            }
        }
        let n = bounded("read response", stream.read(&mut chunk)).await.expect("read");
        assert!(n > 0, "connection closed mid-response: {}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn content_length(head: &[u8]) -> usize {
    let head = String::from_utf8_lossy(head).to_lowercase();
    head.lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().expect("length"))
}

/// Where `needle` starts in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The body of a raw response.
pub fn body_of(response: &str) -> &str {
    response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("")
}

/// Sends one request as `root` on `stream` and reads its response.
pub async fn exchange(stream: &mut TcpStream, method: &str, path: &str, body: &str) -> String {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{AUTH}Accept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.expect("write request");
    read_response(stream).await
}

/// One request as `root` on a fresh connection: status and JSON body.
pub async fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut s = connect(addr).await;
    let resp = exchange(&mut s, method, path, body).await;
    let status = resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("status");
    (status, serde_json::from_str(body_of(&resp)).unwrap_or(Value::Null))
}

/// The real environment, plus a latch at one hit of one chaos point, so
/// that a test can start Stop while a request is there. A latch that holds
/// waits for `go`; one that does not only tells `reached`. Outgoing
/// connections can be held the same way, before they are made.
#[derive(Clone)]
pub struct LatchEnv {
    inner: TokioEnv,
    point: Point,
    hit: usize,
    hold: bool,
    /// Hits of the point so far.
    pub seen: Arc<AtomicUsize>,
    /// Told when the latch is reached.
    pub reached: Arc<Notify>,
    /// Lets a holding latch go on.
    pub go: Arc<Notify>,
    /// Every probe, in order.
    pub probes: Arc<std::sync::Mutex<Vec<Probe>>>,
    /// While set, `connect` waits for `go` after telling `reached`.
    pub hold_connects: Arc<std::sync::atomic::AtomicBool>,
    /// Connections made so far.
    pub connects: Arc<AtomicUsize>,
}

impl LatchEnv {
    /// A latch at hit `hit` (from 0) of `point`.
    pub fn at(point: Point, hit: usize, hold: bool) -> Self {
        LatchEnv {
            inner: TokioEnv::new(),
            point,
            hit,
            hold,
            seen: Arc::default(),
            reached: Arc::default(),
            go: Arc::default(),
            probes: Arc::default(),
            hold_connects: Arc::default(),
            connects: Arc::default(),
        }
    }
}

impl Env for LatchEnv {
    type Stream = TcpStream;
    type Listener = TokioListener;
    type FileLock = std::fs::File;

    fn bind(&self, addr: SocketAddr) -> impl Future<Output = io::Result<TokioListener>> + Send {
        self.inner.bind(addr)
    }
    fn connect(&self, host: &str, port: u16) -> impl Future<Output = io::Result<TcpStream>> + Send {
        let (this, host) = (self.clone(), host.to_string());
        async move {
            if this.hold_connects.load(Ordering::SeqCst) {
                let go = this.go.notified();
                this.reached.notify_one();
                go.await;
            }
            let stream = this.inner.connect(&host, port).await;
            this.connects.fetch_add(1, Ordering::SeqCst);
            stream
        }
    }
    fn now(&self) -> SystemTime {
        self.inner.now()
    }
    fn instant(&self) -> tokio::time::Instant {
        self.inner.instant()
    }
    fn random_u64(&self) -> u64 {
        self.inner.random_u64()
    }
    fn crypto(&self) -> Arc<rustls::crypto::CryptoProvider> {
        self.inner.crypto()
    }
    fn pid(&self) -> u32 {
        self.inner.pid()
    }
    fn read_file(&self, path: &Path) -> impl Future<Output = io::Result<Option<Vec<u8>>>> + Send {
        self.inner.read_file(path)
    }
    fn write_file(&self, path: &Path, data: Vec<u8>) -> impl Future<Output = io::Result<()>> + Send {
        self.inner.write_file(path, data)
    }
    fn sync_file(&self, path: &Path) -> impl Future<Output = io::Result<()>> + Send {
        self.inner.sync_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> impl Future<Output = io::Result<()>> + Send {
        self.inner.sync_dir(dir)
    }
    fn rename(&self, from: &Path, to: &Path) -> impl Future<Output = io::Result<()>> + Send {
        self.inner.rename(from, to)
    }
    fn create_dir_all(&self, path: &Path) -> impl Future<Output = io::Result<()>> + Send {
        self.inner.create_dir_all(path)
    }
    fn lock_file(
        &self,
        path: &Path,
        holder: String,
    ) -> impl Future<Output = io::Result<std::fs::File>> + Send {
        self.inner.lock_file(path, holder)
    }
    fn point(&self, name: Point) -> impl Future<Output = ()> + Send {
        let this = self.clone();
        async move {
            if name == this.point && this.seen.fetch_add(1, Ordering::SeqCst) == this.hit {
                let go = this.go.notified();
                this.reached.notify_one();
                if this.hold {
                    go.await;
                }
            }
        }
    }
    fn probe(&self, event: impl FnOnce() -> Probe) {
        self.probes.lock().unwrap().push(event());
    }
}

/// Log lines written while the guard lives, on this thread (and, through
/// [`Captured::runtime`], on a runtime's worker threads).
#[derive(Clone, Default)]
pub struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn dispatch(&self) -> tracing::Dispatch {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::Dispatch::new(subscriber)
    }

    /// Captures this thread's log lines until the guard drops.
    pub fn start(&self) -> tracing::dispatcher::DefaultGuard {
        tracing::dispatcher::set_default(&self.dispatch())
    }

    /// A two-worker runtime whose threads log here: a default subscriber is
    /// per thread, and a node's tasks run on the workers.
    pub fn runtime(&self) -> tokio::runtime::Runtime {
        let dispatch = self.dispatch();
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .on_thread_start(move || {
                // The guard lives as long as the worker thread: the runtime's.
                std::mem::forget(tracing::dispatcher::set_default(&dispatch));
            })
            .build()
            .expect("a test runtime")
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A port nobody listens on right now (each node must know the other's in advance).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

/// A JSON-RPC message as a netstring.
pub fn frame(v: &serde_json::Value) -> Vec<u8> {
    let payload = v.to_string();
    format!("{}:{payload},", payload.len()).into_bytes()
}

/// Polls until `cond` holds, within the test bound.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    bounded(what, async {
        while !cond() {
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    })
    .await
}

/// Whether `node` has endpoint `peer` connected.
pub fn connected<E: Env>(node: &quiesce::listener::ApiListener<E>, peer: &str) -> bool {
    node.shared().connected_endpoints().iter().any(|p| p == peer)
}

/// Reads until the node closes the connection (or it fails): true if it did.
pub async fn closed_by_node<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    loop {
        match bounded("the node closes the connection", s.read(&mut buf)).await {
            Ok(0) | Err(_) => return true,
            Ok(_) => {}
        }
    }
}
