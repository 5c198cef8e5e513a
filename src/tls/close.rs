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

use super::{Pause, Paused};
use crate::env::Point;

/// A TLS stream, either side, with a graceful shutdown.
pub struct TlsConn<S> {
    inner: tokio_rustls::TlsStream<S>,
    closing: Closing,
    /// How long the whole goodbye may take (`None`: no bound).
    close_wait: Option<Duration>,
    /// Set when the goodbye begins; it caps sending close_notify too, so a
    /// peer that reads nothing cannot hold the shutdown in a full socket.
    deadline: Option<Pin<Box<Sleep>>>,
    pause: Pause,
}

/// Where a shutdown stands.
enum Closing {
    /// Not begun.
    Open,
    /// Begun; the chaos point before close_notify.
    Pausing(Paused),
    /// Sending our close_notify and ending our half of the TCP stream.
    Sending,
    /// Our close_notify is out; reading until the peer's (or the end).
    AwaitingPeer,
    /// Both sides said goodbye, the peer went away, or the wait ran out.
    Closed,
}

impl<S> TlsConn<S> {
    pub(super) fn new(inner: tokio_rustls::TlsStream<S>, close_wait: Option<Duration>, pause: Pause) -> Self {
        TlsConn { inner, closing: Closing::Open, close_wait, deadline: None, pause }
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
        let this = &mut *self;
        loop {
            let expired = this.deadline.as_mut().is_some_and(|d| d.as_mut().poll(cx).is_ready());
            if expired && !matches!(this.closing, Closing::Closed) {
                // Out of time: the socket closes without the rest of the goodbye.
                this.closing = Closing::Closed;
            }
            match &mut this.closing {
                Closing::Open => {
                    this.deadline = this.close_wait.map(|wait| Box::pin(tokio::time::sleep(wait)));
                    this.closing = Closing::Pausing(this.pause.at(Point::TlsBeforeCloseNotify));
                }
                Closing::Pausing(pause) => {
                    ready!(pause.as_mut().poll(cx));
                    this.closing = Closing::Sending;
                }
                Closing::Sending => {
                    ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
                    this.closing = Closing::AwaitingPeer;
                }
                Closing::AwaitingPeer => {
                    let mut scratch = [0u8; 1024];
                    let mut buf = ReadBuf::new(&mut scratch);
                    // Data the peer still sends after our goodbye is dropped:
                    // nobody is left to read it. An error ends the wait too.
                    match ready!(Pin::new(&mut this.inner).poll_read(cx, &mut buf)) {
                        Ok(()) if !buf.filled().is_empty() => {}
                        Ok(()) | Err(_) => this.closing = Closing::Closed,
                    }
                }
                Closing::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}
