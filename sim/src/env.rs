//! The turmoil side of the seam: simulated sockets, a fixed epoch, seeded
//! randomness, an in-memory state directory per host, chaos points that
//! follow a schedule, and probes recorded with simulated time.
//!
//! turmoil facts this relies on (0.7): every host runs on its own paused,
//! single-threaded tokio runtime and all hosts share one OS thread, so the
//! order in which probes are recorded is deterministic; `sim_elapsed()` is
//! the simulated time; a pending `accept` borrows the listener, so turmoil
//! alone cannot let an accept complete after close — [`SimListener`] can.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use quiesce::env::{AcceptError, Env, Listener, Point};
use quiesce::probe::Probe;
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use turmoil::net::{TcpListener, TcpStream};

use crate::lock::lock;

/// The simulated epoch, 2026-01-01T00:00:00Z, in seconds.
pub const EPOCH_SECS: u64 = 1_767_225_600;

/// The simulated epoch as a time.
pub fn epoch() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_SECS)
}

/// How long an armed listener waits, after close, for the connection it
/// hands out: long enough for a connect racing the close to arrive.
pub const ACCEPT_AFTER_CLOSE_WINDOW: Duration = Duration::from_millis(200);

/// What a chaos point does when its rule matches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ChaosAction {
    /// Sleeps this many simulated milliseconds.
    Delay { ms: u64 },
    /// Yields to the host's other tasks this many times.
    Yield { times: u32 },
}

/// One rule of the chaos schedule. (serde cannot deny unknown fields next
/// to a flattened action, so a misspelt key is ignored here.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChaosRule {
    /// The chaos point (`http.after_gate`); an unknown name fails the load.
    pub point: Point,
    /// Only on this host; every host if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Only the n-th hit (1-based) of the point on the host; every hit if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hit: Option<u64>,
    /// Only from this simulated time on; hits before it are not counted
    /// unless another rule for the point is already active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_ms: Option<u64>,
    /// What to do.
    #[serde(flatten)]
    pub action: ChaosAction,
}

impl ChaosRule {
    /// The simulated time this rule can add to one hit.
    pub fn delay_ms(&self) -> u64 {
        match self.action {
            ChaosAction::Delay { ms } => ms,
            ChaosAction::Yield { .. } => 0,
        }
    }
}

/// A host's state directory. Lives outside the host, so it survives a bounce
/// or a restart; a crash loses only a write that had not reached its rename.
#[derive(Clone, Default)]
pub struct HostFiles {
    inner: Arc<Mutex<FilesInner>>,
}

#[derive(Default)]
struct FilesInner {
    files: BTreeMap<PathBuf, Vec<u8>>,
    dirs: BTreeSet<PathBuf>,
    /// Lock files held now: a crash drops the host's tasks and with them
    /// the guard, as a real process exit releases its locks.
    locked: BTreeSet<PathBuf>,
}

/// A held lock of a simulated file; released when dropped.
pub struct SimFileLock {
    files: HostFiles,
    path: PathBuf,
}

impl Drop for SimFileLock {
    fn drop(&mut self) {
        lock(&self.files.inner).locked.remove(&self.path);
    }
}

impl HostFiles {
    /// A copy of a file's content.
    pub fn get(&self, path: &Path) -> Option<Vec<u8>> {
        lock(&self.inner).files.get(path).cloned()
    }

    /// Puts a file in place (for setting up a world).
    pub fn put(&self, path: &Path, data: Vec<u8>) {
        lock(&self.inner).files.insert(path.to_path_buf(), data);
    }

    /// Every file's path.
    pub fn paths(&self) -> Vec<PathBuf> {
        lock(&self.inner).files.keys().cloned().collect()
    }
}

/// Where probes go: the world's recorder.
pub type ProbeSink = Arc<dyn Fn(Probe) + Send + Sync>;

/// Where the delays chaos applied go, as `(point, ms)` at the current time.
pub type DelaySink = Arc<dyn Fn(Point, u64) + Send + Sync>;

/// The simulated environment of one incarnation of one host.
#[derive(Clone)]
pub struct SimEnv {
    host: Arc<str>,
    rng: Arc<Mutex<SmallRng>>,
    chaos: Arc<Vec<ChaosRule>>,
    hits: Arc<Mutex<BTreeMap<Point, u64>>>,
    files: HostFiles,
    sink: ProbeSink,
    delays: Option<DelaySink>,
    accept_after_close: bool,
}

/// A stable hash of a host name (FNV-1a), so seeds do not depend on the process.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

impl SimEnv {
    /// An environment for `host` with its seed, chaos schedule, files and probe sink.
    pub fn new(host: &str, seed: u64, chaos: &[ChaosRule], files: HostFiles, sink: ProbeSink) -> Self {
        let rules = chaos.iter().filter(|r| r.host.as_deref().is_none_or(|h| h == host)).cloned().collect();
        SimEnv {
            host: host.into(),
            rng: Arc::new(Mutex::new(SmallRng::seed_from_u64(seed ^ name_hash(host)))),
            chaos: Arc::new(rules),
            hits: Arc::default(),
            files,
            sink,
            delays: None,
            accept_after_close: false,
        }
    }

    /// Reports every delay chaos applies to `delays`, so oracles can bound
    /// Stop by what a run really waited on.
    pub fn with_delay_log(mut self, delays: DelaySink) -> Self {
        self.delays = Some(delays);
        self
    }

    /// Makes this host's listeners hand out one connection accepted after close.
    pub fn with_accept_after_close(mut self, on: bool) -> Self {
        self.accept_after_close = on;
        self
    }

    /// The host's name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Counts a hit of `point` and returns the action of the first matching rule.
    fn chaos_action(&self, point: Point) -> Option<ChaosAction> {
        let mut rules: Vec<&ChaosRule> = self.chaos.iter().filter(|r| r.point == point).collect();
        if rules.is_empty() {
            // Points are hit on every request: the simulated clock is read
            // only when a rule names this one.
            return None;
        }
        let now = crate::recorder::now_ms();
        rules.retain(|r| r.from_ms.is_none_or(|from| now >= from));
        if rules.is_empty() {
            return None;
        }
        let hit = {
            let mut hits = lock(&self.hits);
            let n = hits.entry(point).or_default();
            *n += 1;
            *n
        };
        let action = rules.into_iter().find(|r| r.hit.is_none_or(|h| h == hit)).map(|r| r.action.clone());
        if let (Some(ChaosAction::Delay { ms }), Some(log)) = (&action, &self.delays) {
            log(point, *ms);
        }
        action
    }
}

/// Runs a chaos action.
async fn perform(action: Option<ChaosAction>) {
    match action {
        Some(ChaosAction::Delay { ms }) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Some(ChaosAction::Yield { times }) => {
            for _ in 0..times {
                tokio::task::yield_now().await;
            }
        }
        None => {}
    }
}

/// A simulated listener with an explicit close, and optionally the seed
/// PR's race: one connection accepted while the close was being requested.
pub struct SimListener {
    inner: Mutex<Option<Arc<TcpListener>>>,
    /// The socket, kept past close for the one connection an armed race hands out.
    racing: Mutex<Option<Arc<TcpListener>>>,
    closed: CancellationToken,
    addr: SocketAddr,
}

impl Listener for SimListener {
    type Stream = TcpStream;

    fn accept(&self) -> impl Future<Output = Result<(TcpStream, SocketAddr), AcceptError>> + Send {
        let open = lock(&self.inner).clone();
        let closed = self.closed.clone();
        let racing = &self.racing;
        async move {
            let Some(listener) = open else { return Err(AcceptError::Closed) };
            tokio::select! {
                biased;
                _ = closed.cancelled() => {}
                r = listener.accept() => return r.map_err(AcceptError::Io),
            }
            // Closed while pending. An armed listener lets a connect that lands
            // while the close is in progress complete: the seed PR's race.
            let Some(racing) = lock(racing).take() else { return Err(AcceptError::Closed) };
            match tokio::time::timeout(ACCEPT_AFTER_CLOSE_WINDOW, racing.accept()).await {
                Ok(Ok(conn)) => Ok(conn),
                _ => Err(AcceptError::Closed),
            }
        }
    }

    fn close(&self) {
        lock(&self.inner).take();
        self.closed.cancel();
    }

    fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Env for SimEnv {
    type Stream = TcpStream;
    type Listener = SimListener;
    type FileLock = SimFileLock;

    async fn bind(&self, addr: SocketAddr) -> io::Result<SimListener> {
        let listener = Arc::new(TcpListener::bind(addr).await?);
        let addr = listener.local_addr()?;
        // An armed listener marks its race slot; close fills it with the socket.
        let racing = self.accept_after_close.then(|| listener.clone());
        Ok(SimListener {
            inner: Mutex::new(Some(listener)),
            racing: Mutex::new(racing),
            closed: CancellationToken::new(),
            addr,
        })
    }

    async fn connect(&self, host: &str, port: u16) -> io::Result<TcpStream> {
        TcpStream::connect((host, port)).await
    }

    fn now(&self) -> SystemTime {
        epoch() + turmoil::sim_elapsed().unwrap_or_default()
    }

    fn instant(&self) -> tokio::time::Instant {
        // turmoil drives each host's tokio clock: this is simulated time.
        tokio::time::Instant::now()
    }

    fn random_u64(&self) -> u64 {
        lock(&self.rng).next_u64()
    }

    async fn read_file(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        Ok(self.files.get(path))
    }

    async fn write_file_atomic(&self, path: &Path, data: Vec<u8>) -> io::Result<()> {
        let mut tmp = path.as_os_str().to_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        self.files.put(&tmp, data);
        // A crash (or the end of the host's future) here leaves the old file
        // in place and the temporary one beside it, as on a real disk.
        self.point(Point::FsBeforeRename).await;
        self.rename(&tmp, path).await?;
        (self.sink)(Probe::FileWritten { path: path.display().to_string() });
        Ok(())
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut inner = lock(&self.files.inner);
        let data = inner.files.remove(from).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        inner.files.insert(to.to_path_buf(), data);
        Ok(())
    }

    async fn lock_file(&self, path: &Path, holder: String) -> io::Result<SimFileLock> {
        let mut inner = lock(&self.files.inner);
        if !inner.locked.insert(path.to_path_buf()) {
            return Err(io::Error::from(io::ErrorKind::WouldBlock));
        }
        inner.files.insert(path.to_path_buf(), holder.into_bytes());
        Ok(SimFileLock { files: self.files.clone(), path: path.to_path_buf() })
    }

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        lock(&self.files.inner).dirs.insert(path.to_path_buf());
        Ok(())
    }

    fn point(&self, point: Point) -> impl Future<Output = ()> + Send {
        perform(self.chaos_action(point))
    }

    fn probe(&self, event: impl FnOnce() -> Probe) {
        (self.sink)(event());
    }
}
