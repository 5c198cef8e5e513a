//! The production side of the seam: real sockets, clock, files and randomness.
//! The one module of the stack that may name them (see clippy.toml).
#![expect(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "the production side of the seam is where the stack meets the OS"
)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::{AcceptError, Env, Listener};
use crate::probe::Probe;

/// The environment of a real process.
#[derive(Clone)]
pub struct TokioEnv {
    rng: Arc<AtomicU64>,
}

impl TokioEnv {
    /// A real environment; randomness is seeded from the clock and process id.
    pub fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let seed = nanos ^ ((std::process::id() as u64) << 32) | 1;
        TokioEnv { rng: Arc::new(AtomicU64::new(seed)) }
    }
}

impl Default for TokioEnv {
    fn default() -> Self {
        Self::new()
    }
}

/// A TCP listener whose `close()` drops the socket and wakes a pending accept.
pub struct TokioListener {
    inner: Mutex<Option<Arc<TcpListener>>>,
    closed: CancellationToken,
    addr: SocketAddr,
}

impl Listener for TokioListener {
    type Stream = TcpStream;

    fn accept(&self) -> impl Future<Output = Result<(TcpStream, SocketAddr), AcceptError>> + Send {
        let listener = crate::lock::lock(&self.inner).clone();
        let closed = self.closed.clone();
        async move {
            let Some(listener) = listener else { return Err(AcceptError::Closed) };
            let (stream, peer) = tokio::select! {
                biased;
                _ = closed.cancelled() => return Err(AcceptError::Closed),
                r = listener.accept() => r?,
            };
            // Answers and frames are written whole; Nagle would only hold them back.
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!("Cannot set TCP_NODELAY for [{peer}]: {e}");
            }
            Ok((stream, peer))
        }
    }

    fn close(&self) {
        // Our reference goes now; a pending accept drops the last one when it
        // wakes, which closes the socket so new connects are refused.
        crate::lock::lock(&self.inner).take();
        self.closed.cancel();
    }

    fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Flushes a directory, so that a rename into it is durable.
#[cfg(unix)]
async fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    tokio::fs::File::open(dir).await?.sync_all().await
}

/// Directories cannot be opened for syncing here; the rename is what we have.
#[cfg(not(unix))]
async fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

impl Env for TokioEnv {
    type Stream = TcpStream;
    type Listener = TokioListener;
    type FileLock = std::fs::File;

    async fn bind(&self, addr: SocketAddr) -> io::Result<TokioListener> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        Ok(TokioListener {
            inner: Mutex::new(Some(Arc::new(listener))),
            closed: CancellationToken::new(),
            addr,
        })
    }

    async fn connect(&self, host: &str, port: u16) -> io::Result<TcpStream> {
        let stream = TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn instant(&self) -> tokio::time::Instant {
        tokio::time::Instant::now()
    }

    fn random_u64(&self) -> u64 {
        // splitmix64: enough for jitter; nothing in the stack needs crypto randomness.
        let mut z = self.rng.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn crypto(&self) -> Arc<rustls::crypto::CryptoProvider> {
        // ring's defaults: TLS 1.3 and 1.2 suites with forward secrecy, the
        // ECDHE-ECDSA and ECDHE-RSA AES-GCM suites of Icinga's cipher list
        // among them; randomness from the operating system.
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn pid(&self) -> u32 {
        std::process::id()
    }

    async fn read_file(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        match tokio::fs::read(path).await {
            Ok(data) => Ok(Some(data)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn write_file(&self, path: &Path, data: Vec<u8>) -> io::Result<()> {
        tokio::fs::write(path, data).await
    }

    async fn sync_file(&self, path: &Path) -> io::Result<()> {
        tokio::fs::OpenOptions::new().write(true).open(path).await?.sync_all().await
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        sync_dir(dir).await
    }

    async fn lock_file(&self, path: &Path, holder: String) -> io::Result<std::fs::File> {
        use std::io::Write;
        let file = tokio::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).await?;
        let mut file = file.into_std().await;
        file.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => io::Error::from(io::ErrorKind::WouldBlock),
            std::fs::TryLockError::Error(e) => e,
        })?;
        // Only the holder writes, so a refused process can read who holds it.
        file.set_len(0)?;
        write!(file, "{holder} (pid {})", std::process::id())?;
        Ok(file)
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        tokio::fs::rename(from, to).await
    }

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        tokio::fs::create_dir_all(path).await
    }

    fn point(&self, _point: super::Point) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }

    fn probe(&self, _event: impl FnOnce() -> Probe) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_sockets_send_without_delay() {
        let env = TokioEnv::new();
        let listener = env.bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let client = TcpStream::connect(listener.local_addr()).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        assert!(accepted.nodelay().unwrap(), "TCP_NODELAY is set at accept");
        drop(client);
        listener.close();
        assert!(matches!(listener.accept().await, Err(AcceptError::Closed)));
    }
}
