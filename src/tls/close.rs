//! A TLS connection whose shutdown is Icinga's `GracefulDisconnect`: send
//! close_notify, then wait for the peer's, at most a bounded time (Icinga:
//! 10 s), so a peer that never answers cannot keep a task alive. Callers
//! may cap a shutdown more tightly (Stop's close caps do).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// A TLS stream, either side, with a graceful shutdown.
pub struct TlsConn<S> {
    inner: tokio_rustls::TlsStream<S>,
    closing: Closing,
    /// How long to wait for the peer's close_notify (`None`: no bound).
    close_wait: Option<Duration>,
    /// Set when our close_notify is out.
    deadline: Option<Pin<Box<Sleep>>>,
}

/// Where a shutdown stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Closing {
    /// Not begun.
    Open,
    /// Our close_notify is out; reading until the peer's (or the end).
    AwaitingPeer,
    /// Both sides said goodbye, or the peer went away.
    Closed,
}

impl<S> TlsConn<S> {
    pub(super) fn new(inner: tokio_rustls::TlsStream<S>, close_wait: Option<Duration>) -> Self {
        TlsConn { inner, closing: Closing::Open, close_wait, deadline: None }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsConn<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsConn<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match self.closing {
                Closing::Open => {
                    // Sends close_notify, flushes it, and ends our half of the TCP stream.
                    ready!(Pin::new(&mut self.inner).poll_shutdown(cx))?;
                    self.deadline = self.close_wait.map(|wait| Box::pin(tokio::time::sleep(wait)));
                    self.closing = Closing::AwaitingPeer;
                }
                Closing::AwaitingPeer => {
                    if self.deadline.as_mut().is_some_and(|d| d.as_mut().poll(cx).is_ready()) {
                        // The peer never answered: the socket closes without its goodbye.
                        self.closing = Closing::Closed;
                        continue;
                    }
                    let mut scratch = [0u8; 1024];
                    let mut buf = ReadBuf::new(&mut scratch);
                    // Data the peer still sends after our goodbye is dropped:
                    // nobody is left to read it. An error ends the wait too.
                    match ready!(Pin::new(&mut self.inner).poll_read(cx, &mut buf)) {
                        Ok(()) if !buf.filled().is_empty() => {}
                        Ok(()) | Err(_) => self.closing = Closing::Closed,
                    }
                }
                Closing::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}
