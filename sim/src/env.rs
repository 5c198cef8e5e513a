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
    /// Crashes the host here, once per run: the task that hit the point
    /// goes no further, and the world crashes the host before its next
    /// step. With `power_loss`, what the host had not flushed is lost;
    /// with `restart`, the host starts again at once.
    Crash {
        /// Unflushed writes are lost.
        #[serde(default)]
        power_loss: bool,
        /// The host starts again at once (a bounce).
        #[serde(default)]
        restart: bool,
    },
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
            ChaosAction::Yield { .. } | ChaosAction::Crash { .. } => 0,
        }
    }
}

/// A host's state directory. Lives outside the host, so it survives a bounce
/// or a restart. It models a disk with a page cache: a write is visible at
/// once but reaches the disk only when flushed (a file's data by
/// `sync_file`, names in a directory by `sync_dir`); a power loss brings
/// back what the disk has.
#[derive(Clone, Default)]
pub struct HostFiles {
    inner: Arc<Mutex<FilesInner>>,
}

#[derive(Default)]
struct FilesInner {
    /// What the host sees now.
    files: BTreeMap<PathBuf, Vec<u8>>,
    /// The data of each file (by its current name) as last flushed.
    flushed: BTreeMap<PathBuf, Vec<u8>>,
    /// What a power loss leaves: names as the last directory flush saw them,
    /// each with the data flushed by then (none: an empty file).
    disk: BTreeMap<PathBuf, Vec<u8>>,
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

    /// Puts a file in place, on disk (for setting up a world).
    pub fn put(&self, path: &Path, data: Vec<u8>) {
        let mut inner = lock(&self.inner);
        inner.files.insert(path.to_path_buf(), data.clone());
        inner.flushed.insert(path.to_path_buf(), data.clone());
        inner.disk.insert(path.to_path_buf(), data);
    }

    /// Every file's path.
    pub fn paths(&self) -> Vec<PathBuf> {
        lock(&self.inner).files.keys().cloned().collect()
    }

    /// A power loss: every file is as the disk has it.
    pub fn power_loss(&self) {
        let mut inner = lock(&self.inner);
        inner.files = inner.disk.clone();
        inner.flushed = inner.disk.clone();
    }
}

/// Crashes that chaos points asked for, for the world to apply between steps.
#[derive(Clone, Default)]
pub struct Crashes {
    inner: Arc<Mutex<CrashesInner>>,
}

#[derive(Default)]
struct CrashesInner {
    /// Rules (by index in the scenario's schedule) that have fired.
    fired: BTreeSet<usize>,
    /// Asked for and not yet applied.
    pending: Vec<CrashRequest>,
}

/// A crash a chaos point asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrashRequest {
    /// The host.
    pub host: String,
    /// Unflushed writes are lost.
    pub power_loss: bool,
    /// The host starts again at once.
    pub restart: bool,
}

impl Crashes {
    /// Takes the crashes asked for since the last call.
    pub fn take(&self) -> Vec<CrashRequest> {
        std::mem::take(&mut lock(&self.inner).pending)
    }

    /// Marks rule `index` fired; false if it already had.
    fn fire(&self, index: usize) -> bool {
        lock(&self.inner).fired.insert(index)
    }

    fn ask(&self, request: CrashRequest) {
        lock(&self.inner).pending.push(request);
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
    /// The host's rules, each with its index in the scenario's schedule.
    chaos: Arc<Vec<(usize, ChaosRule)>>,
    hits: Arc<Mutex<BTreeMap<Point, u64>>>,
    files: HostFiles,
    sink: ProbeSink,
    delays: Option<DelaySink>,
    accept_after_close: bool,
    crashes: Crashes,
}

/// A stable hash of a host name (FNV-1a), so seeds do not depend on the process.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// The process id a simulated host reports: fixed per host name, so a
/// replay answers the same, and different for each host, as real ones are.
pub fn sim_pid(host: &str) -> u32 {
    // Above the ids a real system gives its first processes, below Linux's default pid_max.
    1000 + (name_hash(host) % 30_000) as u32
}

impl SimEnv {
    /// An environment for `host` with its seed, chaos schedule, files and probe sink.
    pub fn new(host: &str, seed: u64, chaos: &[ChaosRule], files: HostFiles, sink: ProbeSink) -> Self {
        let rules = chaos
            .iter()
            .enumerate()
            .filter(|(_, r)| r.host.as_deref().is_none_or(|h| h == host))
            .map(|(i, r)| (i, r.clone()))
            .collect();
        SimEnv {
            host: host.into(),
            rng: Arc::new(Mutex::new(SmallRng::seed_from_u64(seed ^ name_hash(host)))),
            chaos: Arc::new(rules),
            hits: Arc::default(),
            files,
            sink,
            delays: None,
            accept_after_close: false,
            crashes: Crashes::default(),
        }
    }

    /// Reports every delay chaos applies to `delays`, so oracles can bound
    /// Stop by what a run really waited on.
    pub fn with_delay_log(mut self, delays: DelaySink) -> Self {
        self.delays = Some(delays);
        self
    }

    /// Sends this host's crash actions to `crashes`.
    pub fn with_crashes(mut self, crashes: Crashes) -> Self {
        self.crashes = crashes;
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
        let mut rules: Vec<&(usize, ChaosRule)> =
            self.chaos.iter().filter(|(_, r)| r.point == point).collect();
        if rules.is_empty() {
            // Points are hit on every request: the simulated clock is read
            // only when a rule names this one.
            return None;
        }
        let now = crate::recorder::now_ms();
        rules.retain(|(_, r)| r.from_ms.is_none_or(|from| now >= from));
        if rules.is_empty() {
            return None;
        }
        let hit = {
            let mut hits = lock(&self.hits);
            let n = hits.entry(point).or_default();
            *n += 1;
            *n
        };
        let (index, rule) = rules.into_iter().find(|(_, r)| r.hit.is_none_or(|h| h == hit))?;
        match rule.action {
            // A crash fires once per run, not again in the incarnation it restarts.
            ChaosAction::Crash { .. } if !self.crashes.fire(*index) => None,
            ChaosAction::Crash { power_loss, restart } => {
                self.crashes.ask(CrashRequest { host: self.host.to_string(), power_loss, restart });
                Some(rule.action.clone())
            }
            ChaosAction::Delay { ms } => {
                if let Some(log) = &self.delays {
                    log(point, ms);
                }
                Some(rule.action.clone())
            }
            _ => Some(rule.action.clone()),
        }
    }
}

/// Runs a chaos action.
async fn perform(action: Option<ChaosAction>) {
    match action {
        // The host is crashed before its next step; this task goes no further.
        Some(ChaosAction::Crash { .. }) => std::future::pending().await,
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

    fn crypto(&self) -> Arc<rustls::crypto::CryptoProvider> {
        sim_crypto()
    }

    fn pid(&self) -> u32 {
        sim_pid(&self.host)
    }

    async fn read_file(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        Ok(self.files.get(path))
    }

    async fn write_file(&self, path: &Path, data: Vec<u8>) -> io::Result<()> {
        let mut inner = lock(&self.files.inner);
        inner.files.insert(path.to_path_buf(), data);
        inner.flushed.remove(path);
        drop(inner);
        // Read by silent-after-stop: any write of the state directory.
        (self.sink)(Probe::FileWritten { path: path.display().to_string() });
        Ok(())
    }

    async fn sync_file(&self, path: &Path) -> io::Result<()> {
        let mut inner = lock(&self.files.inner);
        let data = inner.files.get(path).cloned().ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        inner.flushed.insert(path.to_path_buf(), data);
        Ok(())
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut inner = lock(&self.files.inner);
        let inner = &mut *inner;
        let in_dir = |p: &Path| p.parent() == Some(dir);
        inner.disk.retain(|p, _| !in_dir(p) || inner.files.contains_key(p));
        for p in inner.files.keys().filter(|p| in_dir(p)) {
            // A name whose data was never flushed survives as an empty file.
            inner.disk.insert(p.clone(), inner.flushed.get(p).cloned().unwrap_or_default());
        }
        Ok(())
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut inner = lock(&self.files.inner);
        let data = inner.files.remove(from).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        inner.files.insert(to.to_path_buf(), data);
        // The flushed data belongs to the file, and moves with its name.
        match inner.flushed.remove(from) {
            Some(flushed) => inner.flushed.insert(to.to_path_buf(), flushed),
            None => inner.flushed.remove(to),
        };
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

/// The cryptography of TLS in a simulation, nodes' and actors' alike.
/// Everything random in a handshake comes from the run's seed: the hellos'
/// random values and the ephemeral X25519 keys. ring's own key exchanges
/// draw from the OS, so they are left out; signatures are deterministic
/// with the Ed25519 keys simulated nodes and peers get.
pub fn sim_crypto() -> Arc<rustls::crypto::CryptoProvider> {
    let ring = rustls::crypto::ring::default_provider();
    Arc::new(rustls::crypto::CryptoProvider {
        secure_random: &SeededRandom,
        kx_groups: vec![&SeededX25519],
        ..ring
    })
}

/// rustls's clock in a simulation: the simulated time.
#[derive(Debug)]
pub struct SimTime;

impl rustls::time_provider::TimeProvider for SimTime {
    fn current_time(&self) -> Option<rustls::pki_types::UnixTime> {
        let now = epoch() + turmoil::sim_elapsed().unwrap_or_default();
        now.duration_since(SystemTime::UNIX_EPOCH).ok().map(rustls::pki_types::UnixTime::since_unix_epoch)
    }
}

/// rustls's randomness in a simulation: the run's own stream, reseeded at
/// the start of every run ([`reseed_tls_random`]). A run plays on one
/// thread, so the handshakes draw from it in a fixed order.
#[derive(Debug)]
struct SeededRandom;

thread_local! {
    static TLS_RANDOM: std::cell::RefCell<SmallRng> = std::cell::RefCell::new(SmallRng::seed_from_u64(0));
}

/// Starts the TLS random stream of a run at `seed`.
pub fn reseed_tls_random(seed: u64) {
    TLS_RANDOM.with(|r| *r.borrow_mut() = SmallRng::seed_from_u64(seed ^ 0x7415_5eed));
}

impl rustls::crypto::SecureRandom for SeededRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), rustls::crypto::GetRandomFailed> {
        TLS_RANDOM.with(|r| r.borrow_mut().fill_bytes(buf));
        Ok(())
    }
}

/// X25519 whose ephemeral secrets come from the run's seed.
#[derive(Debug)]
struct SeededX25519;

impl rustls::crypto::SupportedKxGroup for SeededX25519 {
    fn start(&self) -> Result<Box<dyn rustls::crypto::ActiveKeyExchange>, rustls::Error> {
        let mut seed = [0u8; 32];
        TLS_RANDOM.with(|r| r.borrow_mut().fill_bytes(&mut seed));
        let secret = x25519_dalek::StaticSecret::from(seed);
        let public = x25519_dalek::PublicKey::from(&secret).to_bytes();
        Ok(Box::new(X25519Exchange { secret, public }))
    }

    fn name(&self) -> rustls::NamedGroup {
        rustls::NamedGroup::X25519
    }
}

/// One side of an X25519 exchange in flight.
struct X25519Exchange {
    secret: x25519_dalek::StaticSecret,
    public: [u8; 32],
}

impl rustls::crypto::ActiveKeyExchange for X25519Exchange {
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<rustls::crypto::SharedSecret, rustls::Error> {
        let invalid = || rustls::Error::from(rustls::PeerMisbehaved::InvalidKeyShare);
        let peer: [u8; 32] = peer.try_into().map_err(|_| invalid())?;
        let shared = self.secret.diffie_hellman(&x25519_dalek::PublicKey::from(peer));
        // An all-zero result means the peer sent a low-order point.
        if !shared.was_contributory() {
            return Err(invalid());
        }
        Ok(rustls::crypto::SharedSecret::from(&shared.as_bytes()[..]))
    }

    fn pub_key(&self) -> &[u8] {
        &self.public
    }

    fn group(&self) -> rustls::NamedGroup {
        rustls::NamedGroup::X25519
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first bytes a TLS client sends (its hello: random value and
    /// X25519 key share) after the run's stream starts at `seed`.
    fn client_hello(seed: u64) -> Vec<u8> {
        reseed_tls_random(seed);
        let env = SimEnv::new("api", 1, &[], HostFiles::default(), Arc::new(|_| {}));
        let config = rustls::ClientConfig::builder_with_provider(env.crypto())
            .with_safe_default_protocol_versions()
            .expect("TLS 1.2 and 1.3")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("api").expect("a host name");
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name).expect("a client");
        let mut hello = Vec::new();
        conn.write_tls(&mut hello).expect("the hello");
        hello
    }

    #[test]
    fn a_tls_handshake_starts_with_the_same_bytes_for_a_seed_and_others_for_another() {
        // Scenario: simulated nodes speak TLS. Bug: rustls drawing its random
        // values or its ephemeral keys from the OS would make each replay of
        // a seed send different bytes. Fix: both come from the run's stream.
        assert_eq!(client_hello(14), client_hello(14));
        assert_ne!(client_hello(14), client_hello(15));
    }

    #[test]
    fn a_simulated_host_reports_the_same_pid_in_every_run() {
        // Scenario: /v1/status/IcingaApplication answers the process id.
        // Bug: the real pid would make two replays of one seed answer differently.
        // Fix: a simulated host's pid comes from its name alone.
        let env = |host| SimEnv::new(host, 1, &[], HostFiles::default(), Arc::new(|_| {}));
        assert_eq!(env("api").pid(), env("api").pid());
        assert_eq!(env("api").pid(), sim_pid("api"));
        assert_ne!(sim_pid("api"), sim_pid("peer"), "two hosts look like two processes");
        assert!((1000..31_000).contains(&sim_pid("api")));
    }
}
