//! The send queue of one cluster connection, bounded in bytes: a peer that
//! reads slower than the node relays to it must not make the node hold an
//! ever-growing backlog in memory. Past the bound the sender refuses, and
//! the connection is dropped; relayed check results stay in the replay log
//! and go out again when the peer reconnects.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

/// The sending side, shared by everything that queues messages.
#[derive(Clone)]
pub struct QueueSender {
    tx: mpsc::UnboundedSender<Bytes>,
    queued: Arc<AtomicUsize>,
    limit: usize,
}

/// The writer's side.
pub struct QueueReceiver {
    rx: mpsc::UnboundedReceiver<Bytes>,
    queued: Arc<AtomicUsize>,
}

/// Why a message was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Full {
    /// The writer is gone.
    Closed,
    /// The bound would be passed: this many bytes are waiting already.
    Behind(usize),
}

/// A queue that holds at most `limit` bytes of messages not yet taken.
pub fn send_queue(limit: usize) -> (QueueSender, QueueReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (QueueSender { tx, queued: queued.clone(), limit }, QueueReceiver { rx, queued })
}

impl QueueSender {
    /// Queues `payload` unless that would pass the bound.
    pub fn send(&self, payload: Bytes) -> Result<(), Full> {
        let len = payload.len();
        let before = self.queued.fetch_add(len, Ordering::SeqCst);
        if before.saturating_add(len) > self.limit {
            self.queued.fetch_sub(len, Ordering::SeqCst);
            return Err(Full::Behind(before));
        }
        self.tx.send(payload).map_err(|_| {
            self.queued.fetch_sub(len, Ordering::SeqCst);
            Full::Closed
        })
    }
}

impl QueueReceiver {
    /// The next message; `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<Bytes> {
        let payload = self.rx.recv().await?;
        self.queued.fetch_sub(payload.len(), Ordering::SeqCst);
        Some(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_bound_counts_bytes_waiting_and_frees_them_when_taken() {
        let (tx, mut rx) = send_queue(10);
        assert_eq!(tx.send(Bytes::from_static(b"123456")), Ok(()));
        assert_eq!(tx.send(Bytes::from_static(b"12345")), Err(Full::Behind(6)), "11 bytes would pass 10");
        assert_eq!(tx.send(Bytes::from_static(b"1234")), Ok(()), "exactly at the bound is fine");
        assert_eq!(rx.recv().await.as_deref(), Some(&b"123456"[..]));
        assert_eq!(tx.send(Bytes::from_static(b"12345")), Ok(()), "taking a message frees its bytes");
        drop(rx);
        assert_eq!(tx.send(Bytes::from_static(b"1")), Err(Full::Closed));
    }
}
