//! A stream that gives back bytes already read from it, so that sniffing the
//! first byte does not take it away from the protocol that follows.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `inner` with `prefix` put back in front of it.
pub struct Rewind<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Rewind<S> {
    /// Wraps `inner` so that `prefix` is read first.
    pub fn new(prefix: Bytes, inner: S) -> Self {
        Rewind { prefix, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn prefix_comes_first_then_the_stream() {
        let (mut a, b) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut a, b"ET / HTTP/1.1").await.unwrap();
        drop(a);
        let mut r = Rewind::new(Bytes::from_static(b"G"), b);
        let mut out = String::new();
        r.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "GET / HTTP/1.1");
    }

    #[tokio::test]
    async fn a_flush_reaches_the_inner_stream() {
        // Over plain TCP a flush does nothing, so no test over a socket can
        // tell whether Rewind passes it on (a mutation run found that); over
        // a stream that buffers, as TLS does, a lost flush strands a reply.
        let (_a, b) = tokio::io::duplex(64);
        let mut r = Rewind::new(Bytes::new(), tokio::io::BufWriter::new(b));
        tokio::io::AsyncWriteExt::write_all(&mut r, b"HTTP/1.1 200 OK").await.unwrap();
        assert!(!r.inner.buffer().is_empty(), "a buffered write waits for the flush");
        tokio::io::AsyncWriteExt::flush(&mut r).await.unwrap();
        assert!(r.inner.buffer().is_empty(), "the flush must reach the inner stream");
    }
}
