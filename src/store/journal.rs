//! The journal: one entry per mutation of the store, in order. The simulation's
//! oracles read it; production keeps only the newest entries.

use std::collections::VecDeque;

use serde::Serialize;

use super::ObjectType;
use crate::probe::ConnId;

/// Who caused a mutation.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum Origin {
    /// An HTTP request: connection, request number on it, and the client's
    /// `X-Request-Id` if it sent one.
    Http { conn: ConnId, request: u64, request_id: Option<String>, user: String },
    /// A JSON-RPC message from a cluster peer, with the message's `ts`.
    Cluster { conn: ConnId, identity: String, ts: Option<f64> },
    /// The node itself (loading the state directory, expiring things).
    Local,
}

/// One recorded mutation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JournalEntry {
    /// 1, 2, 3, ... for the life of the store.
    pub seq: u64,
    /// Wall-clock time of the mutation, seconds since the epoch.
    pub time: f64,
    /// Who caused it.
    pub origin: Origin,
    /// What was done (`create`, `modify`, `delete`, `check_result`, ...).
    pub op: &'static str,
    /// The object's type.
    pub otype: ObjectType,
    /// The object's full name.
    pub name: String,
    /// True when the store was already sealed: a violation of Stop's
    /// contract. The store refused it, so nothing changed.
    pub after_seal: bool,
}

/// A bounded (or, for the simulation, unbounded) log of mutations.
#[derive(Debug)]
pub struct Journal {
    entries: VecDeque<JournalEntry>,
    capacity: Option<usize>,
    next_seq: u64,
    violations: u64,
}

impl Journal {
    /// A journal that keeps the newest `capacity` entries, or all with `None`.
    pub fn new(capacity: Option<usize>) -> Self {
        Journal { entries: VecDeque::new(), capacity, next_seq: 1, violations: 0 }
    }

    /// Appends an entry and returns its sequence number.
    pub fn record(
        &mut self,
        time: f64,
        origin: Origin,
        op: &'static str,
        otype: ObjectType,
        name: &str,
        after_seal: bool,
    ) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        if after_seal {
            self.violations += 1;
        }
        if self.capacity == Some(self.entries.len()) {
            self.entries.pop_front();
        }
        if self.capacity != Some(0) {
            let name = name.to_string();
            self.entries.push_back(JournalEntry { seq, time, origin, op, otype, name, after_seal });
        }
        seq
    }

    /// The entries kept, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &JournalEntry> {
        self.entries.iter()
    }

    /// How many mutations happened after the seal.
    pub fn violations(&self) -> u64 {
        self.violations
    }

    /// The sequence number the next entry will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
}
