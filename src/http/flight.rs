//! Whether a connection has a request in flight, counted until its response
//! has been flushed to the socket, not merely handed to hyper. Stop needs
//! exactly that: a connection with nothing in flight is closed at once, one
//! with a response still being written finishes it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use crate::work::WorkGuard;

/// The requests of one connection whose responses are not yet flushed.
#[derive(Default)]
pub struct Flight {
    active: Arc<AtomicUsize>,
    /// Tickets of responses whose body hyper has finished (or dropped); they
    /// end at the next successful flush of the socket.
    parked: Mutex<Vec<Ticket>>,
}

/// One request in flight. Dropping it ends the request's part in the count
/// and releases a work-group guard it may carry.
pub struct Ticket {
    active: Arc<AtomicUsize>,
    guard: Option<WorkGuard>,
}

impl Flight {
    /// Counts a new request; taken synchronously when hyper hands over a head.
    pub fn ticket(&self) -> Ticket {
        self.active.fetch_add(1, Ordering::SeqCst);
        Ticket { active: self.active.clone(), guard: None }
    }

    /// Whether no request is in flight: none being handled, none being written.
    pub fn is_idle(&self) -> bool {
        self.active.load(Ordering::SeqCst) == 0
    }

    /// Keeps `ticket` until the bytes hyper holds now have reached the socket.
    pub fn park(&self, ticket: Ticket) {
        self.lock().push(ticket);
    }

    /// Everything written so far is flushed: parked tickets end.
    fn flushed(&self) {
        let done = std::mem::take(&mut *self.lock());
        // Dropped outside the lock: a guard's release probe may run arbitrary code.
        drop(done);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Ticket>> {
        crate::lock::lock(&self.parked)
    }
}

impl Ticket {
    /// Attaches a guard that lives as long as the ticket (planted bug only).
    pub fn hold(&mut self, guard: Option<WorkGuard>) {
        self.guard = guard;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        // A guard the response held (planted bug) ends with the response.
        if let Some(guard) = self.guard.take() {
            guard.finish();
        }
        self.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The connection's stream, reporting every successful flush to its
/// [`Flight`]. hyper flushes after writing out its buffer, so a flush that
/// succeeds after a body ended means that response is on the wire.
///
/// It also bounds a client that never reads: a write or flush that makes no
/// progress for `write_timeout` fails, and hyper ends the connection.
pub struct FlushIo<S> {
    inner: S,
    flight: Arc<Flight>,
    write_timeout: Duration,
    /// Armed while a write is pending; reset by any progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> FlushIo<S> {
    /// Wraps `inner`; a write stalled for `write_timeout` fails.
    pub fn new(inner: S, flight: Arc<Flight>, write_timeout: Duration) -> Self {
        FlushIo { inner, flight, write_timeout, stalled: None }
    }

    /// Passes a write's result on, failing it once it has been pending for
    /// the whole write timeout.
    fn watch<T>(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.stalled = None;
            return result;
        }
        let timeout = self.write_timeout;
        let stall = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if stall.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let why =
            format!("the client read nothing for {} s (http_write_timeout_secs)", timeout.as_secs_f64());
        Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, why)))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FlushIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

// No vectored writes: the stream below (`Rewind`) offers none, so hyper
// flattens its buffers and every byte passes through `poll_write`'s watch.
impl<S: AsyncWrite + Unpin> AsyncWrite for FlushIo<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, result)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        if let Poll::Ready(Ok(())) = result {
            self.flight.flushed();
        }
        self.watch(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_parked_ticket_ends_at_the_next_successful_flush() {
        let flight = Arc::new(Flight::default());
        assert!(flight.is_idle());
        let ticket = flight.ticket();
        assert!(!flight.is_idle());
        flight.park(ticket);
        assert!(!flight.is_idle(), "parked is still in flight");
        let (a, _b) = tokio::io::duplex(64);
        let mut io = FlushIo::new(a, flight.clone(), Duration::from_secs(600));
        io.write_all(b"x").await.unwrap();
        io.flush().await.unwrap();
        assert!(flight.is_idle());
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_makes_no_progress_fails_at_the_timeout() {
        let (a, mut b) = tokio::io::duplex(8);
        let mut io = FlushIo::new(a, Arc::new(Flight::default()), Duration::from_secs(10));
        io.write_all(b"12345678").await.unwrap();
        // Progress resets the clock: the reader takes a little, slowly.
        let mut buf = [0u8; 4];
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(8)).await;
            tokio::io::AsyncReadExt::read_exact(&mut b, &mut buf).await.unwrap();
            io.write_all(b"abcd").await.unwrap();
        }
        let stalled = tokio::time::timeout(Duration::from_secs(11), io.write_all(b"x")).await;
        let err = stalled.expect("the write gives up within its timeout").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("http_write_timeout_secs"), "{err}");
    }

    #[test]
    fn a_dropped_ticket_ends_at_once() {
        let flight = Flight::default();
        drop(flight.ticket());
        assert!(flight.is_idle());
    }
}
