//! One endpoint's replay log: the messages relayed to it and not yet
//! acknowledged, oldest first. It is bounded twice: by age (Icinga's
//! `log_duration`) and by size, so that an endpoint that stays away cannot
//! make the node's memory, and the state file written at every persist,
//! grow without bound. Past either bound the oldest messages go, as they do
//! in Icinga once they leave `log_duration`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A message relayed to an endpoint and not yet acknowledged by it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplayEntry {
    /// Its `ts`.
    pub ts: f64,
    /// The encoded message, shared by every endpoint it is relayed to.
    pub message: Arc<str>,
}

impl ReplayEntry {
    /// The message as bytes for the writer, sharing the entry's text.
    pub fn bytes(&self) -> Bytes {
        Bytes::from_owner(SharedText(self.message.clone()))
    }
}

/// Text shared with the replay log, as bytes.
struct SharedText(Arc<str>);

impl AsRef<[u8]> for SharedText {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// How long and how large a replay log may grow.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ReplayBounds {
    /// Messages older than this go, in seconds.
    pub age: f64,
    /// The most message bytes kept per endpoint.
    pub bytes: usize,
}

impl ReplayBounds {
    /// Bounds of `age` and `bytes`.
    pub fn new(age: Duration, bytes: usize) -> Self {
        ReplayBounds { age: age.as_secs_f64(), bytes }
    }
}

/// One endpoint's replay log.
#[derive(Debug, Default)]
pub struct ReplayLog {
    entries: VecDeque<ReplayEntry>,
    bytes: usize,
}

impl ReplayLog {
    /// A log holding `entries` (from the state file), oldest first.
    pub fn from_entries(entries: Vec<ReplayEntry>) -> Self {
        let bytes = entries.iter().map(|e| e.message.len()).sum();
        ReplayLog { entries: entries.into(), bytes }
    }

    /// Appends a message relayed at `now`, first letting go of what is past
    /// the bounds. Returns how many messages went for the size bound.
    pub fn push(&mut self, entry: ReplayEntry, now: f64, bounds: ReplayBounds) -> usize {
        self.forget_older(now - bounds.age);
        self.bytes += entry.message.len();
        self.entries.push_back(entry);
        let mut dropped = 0;
        while self.bytes > bounds.bytes && self.entries.len() > 1 {
            self.pop_front();
            dropped += 1;
        }
        dropped
    }

    /// Lets go of messages relayed before `oldest` (seconds).
    pub fn forget_older(&mut self, oldest: f64) {
        while self.entries.front().is_some_and(|r| r.ts < oldest) {
            self.pop_front();
        }
    }

    /// Lets go of every message at or before the acknowledged `position`.
    pub fn acknowledged(&mut self, position: f64) {
        while self.entries.front().is_some_and(|r| r.ts <= position) {
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some(e) = self.entries.pop_front() {
            self.bytes -= e.message.len();
        }
    }

    /// The messages kept, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &ReplayEntry> {
        self.entries.iter()
    }

    /// Whether every message is past `acked` and each is newer than the one
    /// before: what relaying and acknowledging keep. Walks the log.
    pub fn is_rising_after(&self, acked: f64) -> bool {
        let mut last = acked;
        self.entries.iter().all(|e| std::mem::replace(&mut last, e.ts) < e.ts)
    }

    #[cfg(test)]
    /// The newest message's `ts`.
    pub fn newest(&self) -> Option<f64> {
        self.entries.back().map(|e| e.ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ts: f64, len: usize) -> ReplayEntry {
        ReplayEntry { ts, message: "m".repeat(len).into() }
    }

    #[test]
    fn the_log_keeps_within_its_age_and_its_size() {
        let bounds = ReplayBounds { age: 10.0, bytes: 100 };
        let mut log = ReplayLog::default();
        assert_eq!(log.push(entry(1.0, 40), 1.0, bounds), 0);
        assert_eq!(log.push(entry(2.0, 40), 2.0, bounds), 0);
        assert_eq!(log.push(entry(3.0, 40), 3.0, bounds), 1, "120 bytes pass 100: the oldest goes");
        assert_eq!(log.iter().map(|e| e.ts).collect::<Vec<_>>(), vec![2.0, 3.0]);
        log.push(entry(12.5, 10), 12.5, bounds);
        assert_eq!(log.iter().map(|e| e.ts).collect::<Vec<_>>(), vec![3.0, 12.5], "2.0 is over 10 s old");
        log.acknowledged(3.0);
        assert_eq!(log.iter().map(|e| e.ts).collect::<Vec<_>>(), vec![12.5]);
        assert_eq!(log.bytes, 10);
    }

    #[test]
    fn a_single_message_larger_than_the_bound_is_still_kept() {
        let mut log = ReplayLog::default();
        log.push(entry(1.0, 500), 1.0, ReplayBounds { age: 10.0, bytes: 100 });
        assert_eq!(log.newest(), Some(1.0), "the newest message always stays, to be replayed");
    }
}
