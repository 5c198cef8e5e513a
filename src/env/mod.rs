//! The environment seam: everything the stack needs from the world that is not
//! pure logic. Production uses [`tokio::TokioEnv`]; the simulation (crate
//! `quiesce-sim`) supplies a turmoil implementation of the same traits.
//!
//! Sockets, the wall clock, randomness, files and chaos points go through here
//! and nowhere else, so a simulated run is a function of its seed.

mod point;
pub mod tokio;

pub use point::Point;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::SystemTime;

use ::tokio::io::{AsyncRead, AsyncWrite};

use crate::probe::Probe;

/// Why an accept returned without a connection.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// The listener was closed with [`Listener::close`]; the accept loop must end.
    #[error("listener closed")]
    Closed,
    /// Any other failure; the accept loop logs it once, backs off and goes on.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// A bound, listening socket with an explicit close.
pub trait Listener: Send + Sync + 'static {
    /// The stream type of accepted connections.
    type Stream;

    /// Waits for the next connection. After [`close`](Listener::close) it
    /// returns [`AcceptError::Closed`] promptly, also when it was pending.
    fn accept(&self) -> impl Future<Output = Result<(Self::Stream, SocketAddr), AcceptError>> + Send;

    /// Stops accepting. Unlike dropping, this wakes a pending `accept`.
    fn close(&self);

    /// The address actually bound (useful with port 0).
    fn local_addr(&self) -> SocketAddr;
}

/// A byte stream with both halves, as every connection of the stack is.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// The world as the stack sees it.
pub trait Env: Clone + Send + Sync + 'static {
    /// Connection streams, accepted or connected.
    type Stream: Stream;
    /// Listening sockets.
    type Listener: Listener<Stream = Self::Stream>;
    /// An exclusive lock on a file, held until dropped.
    type FileLock: Send + Sync + 'static;

    /// Binds and listens on `addr`.
    fn bind(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Listener>> + Send;

    /// Opens a connection to `host:port` (a name the environment can resolve).
    fn connect(&self, host: &str, port: u16) -> impl Future<Output = io::Result<Self::Stream>> + Send;

    /// Wall-clock time, for timestamps that leave the process (check results, `ts`).
    fn now(&self) -> SystemTime;

    /// The runtime's monotonic clock, for deadlines and durations. In the
    /// simulation it is the simulated one.
    fn instant(&self) -> ::tokio::time::Instant;

    /// The next value of the one seeded source of randomness.
    fn random_u64(&self) -> u64;

    /// The cryptography TLS uses: cipher suites, key exchange, signature
    /// checks and the randomness of handshakes.
    fn crypto(&self) -> std::sync::Arc<rustls::crypto::CryptoProvider>;

    /// The process id `/v1/status/IcingaApplication` reports. The simulation
    /// answers a fixed number, so that a seed replays the same answers.
    fn pid(&self) -> u32;

    /// Reads a whole file; `Ok(None)` when it does not exist.
    fn read_file(&self, path: &Path) -> impl Future<Output = io::Result<Option<Vec<u8>>>> + Send;

    /// Creates or truncates `path` and writes `data`, without flushing it:
    /// until [`sync_file`](Env::sync_file), a power cut may lose the data.
    fn write_file(&self, path: &Path, data: Vec<u8>) -> impl Future<Output = io::Result<()>> + Send;

    /// Flushes a file's data to disk (fsync).
    fn sync_file(&self, path: &Path) -> impl Future<Output = io::Result<()>> + Send;

    /// Flushes a directory (fsync), so that renames and new names in it
    /// survive a power cut.
    fn sync_dir(&self, dir: &Path) -> impl Future<Output = io::Result<()>> + Send;

    /// Renames a file (used to keep a corrupt file aside).
    fn rename(&self, from: &Path, to: &Path) -> impl Future<Output = io::Result<()>> + Send;

    /// Takes an exclusive lock on `path` (created if missing) and writes
    /// `holder` into it. `ErrorKind::WouldBlock` if someone else holds it.
    fn lock_file(
        &self,
        path: &Path,
        holder: String,
    ) -> impl Future<Output = io::Result<Self::FileLock>> + Send;

    /// Creates a directory and its parents.
    fn create_dir_all(&self, path: &Path) -> impl Future<Output = io::Result<()>> + Send;

    /// A chaos point: the simulation may delay or yield here. A no-op in production.
    fn point(&self, point: Point) -> impl Future<Output = ()> + Send;

    /// Reports an event to an observer (the simulation's trace and oracles).
    /// The event is built only if someone listens; production never does, and
    /// its logs go through `tracing` instead.
    fn probe(&self, event: impl FnOnce() -> Probe);
}
