//! A connection's stream that comes back to the server when hyper lets go
//! of it, so that a connection closed at Stop without hyper's help (idle,
//! or in the middle of a head) still gets its goodbye: close_notify over
//! TLS, as Icinga's `GracefulDisconnect` gives every HTTP connection.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

/// The stream hyper owns; dropped, it goes back through its channel.
pub struct Reclaim<S> {
    inner: Option<S>,
    back: Option<oneshot::Sender<S>>,
}

impl<S> Reclaim<S> {
    /// Wraps `inner`, and the receiver that gets it back once hyper drops it.
    pub fn new(inner: S) -> (Self, oneshot::Receiver<S>) {
        let (back, reclaimed) = oneshot::channel();
        (Reclaim { inner: Some(inner), back: Some(back) }, reclaimed)
    }

    fn inner(&mut self) -> io::Result<Pin<&mut S>>
    where
        S: Unpin,
    {
        // Only `drop` takes it, so a poll never finds it gone.
        let gone = || io::Error::new(io::ErrorKind::NotConnected, "the stream went back to the server");
        self.inner.as_mut().map(Pin::new).ok_or_else(gone)
    }
}

impl<S> Drop for Reclaim<S> {
    fn drop(&mut self) {
        if let (Some(stream), Some(back)) = (self.inner.take(), self.back.take()) {
            // Nobody waiting: the stream simply closes.
            let _ = back.send(stream);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Reclaim<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.inner()?.poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Reclaim<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.inner()?.poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner()?.poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner()?.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_dropped_reclaim_hands_its_stream_back_still_open() {
        let (a, mut b) = tokio::io::duplex(64);
        let (mut io, reclaimed) = Reclaim::new(a);
        io.write_all(b"hi").await.unwrap();
        drop(io);
        let mut a = reclaimed.await.expect("the stream comes back");
        a.write_all(b"!").await.unwrap();
        let mut got = [0u8; 3];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hi!", "the stream handed back is the same, still open");
    }

    #[tokio::test]
    async fn a_flush_reaches_the_stream_below() {
        let (a, mut b) = tokio::io::duplex(64);
        let (mut io, _reclaimed) = Reclaim::new(tokio::io::BufWriter::new(a));
        io.write_all(b"hi").await.unwrap();
        io.flush().await.unwrap();
        let mut got = [0u8; 2];
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), b.read_exact(&mut got)).await;
        assert!(read.is_ok(), "what the stream below buffered is out after a flush");
        assert_eq!(&got, b"hi");
    }
}
