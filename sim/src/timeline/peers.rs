//! Rows of the actors that are not HTTP clients: cluster peers with what
//! became of each message, and the connections of misbehaving actors.

use std::collections::{BTreeMap, BTreeSet};

use quiesce::probe::Probe;
use quiesce::store::Origin;

use super::model::{Item, Row, RowKind, Shape};
use crate::oracles::journal_ms;
use crate::record::{ConnectionEnd, Event, PeerMessage, RunRecord};

/// What a peer's trace line says when the node acknowledged its messages.
const ACK_LINE: &str = "acknowledged up to ts=";

/// A row for each cluster peer: sessions, messages sent, applied, dropped and acknowledged.
pub fn peer_rows(record: &RunRecord) -> Vec<Row> {
    let mut names: BTreeSet<&str> = record.peer_messages.iter().map(|m| m.peer.as_str()).collect();
    names.extend(record.peer_sessions.iter().map(|(p, _)| p.as_str()));
    let row = |peer: &str| Row {
        label: format!("peer {peer}"),
        kind: RowKind::Peer,
        items: peer_items(record, peer),
    };
    names.into_iter().map(row).collect()
}

fn peer_items(record: &RunRecord, peer: &str) -> Vec<Item> {
    let session = |at: &u64| {
        let tip = format!("{peer} connected at {at} ms: Hello, then every result not yet acknowledged");
        Item::point(*at, "session", tip)
    };
    let mut items: Vec<Item> =
        record.peer_sessions.iter().filter(|(p, _)| p == peer).map(|(_, at)| session(at)).collect();
    let sent = sent_times(record, peer);
    let applied = applications(record, peer);
    for m in record.peer_messages.iter().filter(|m| m.peer == peer) {
        let times = applied.get(&(m.node.clone(), m.ts.to_bits())).map_or(&[][..], Vec::as_slice);
        if let Some(at) = sent.get(&m.ts.to_bits()) {
            items.push(sent_item(m, *at, times));
        }
        items.extend(times.iter().enumerate().map(|(k, at)| applied_item(m, k, *at)));
    }
    items.extend(acknowledgements(record, peer));
    items
}

/// When the messages that no node had applied by `at` were sent, if before it.
pub fn unapplied_at(record: &RunRecord, at: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let peers: BTreeSet<&str> = record.peer_messages.iter().map(|m| m.peer.as_str()).collect();
    for peer in peers {
        let (sent, applied) = (sent_times(record, peer), applications(record, peer));
        for m in record.peer_messages.iter().filter(|m| m.peer == peer) {
            let times = applied.get(&(m.node.clone(), m.ts.to_bits()));
            let settled = times.is_some_and(|t| t.iter().any(|(ms, _)| *ms < at));
            out.extend(sent.get(&m.ts.to_bits()).filter(|ms| **ms < at && !settled));
        }
    }
    out
}

/// When the peer sent each message, by its `ts`.
fn sent_times(record: &RunRecord, peer: &str) -> BTreeMap<u64, u64> {
    let sent = |l: &crate::record::TraceLine| match &l.what {
        Event::PeerResult { ts, .. } if l.host == peer => Some((ts.to_bits(), l.at_ms)),
        _ => None,
    };
    record.trace.iter().filter_map(sent).collect()
}

/// When each node applied the peer's messages, by node and `ts`.
/// Each application's time and whether it came after the seal.
fn applications(record: &RunRecord, peer: &str) -> BTreeMap<(String, u64), Vec<(u64, bool)>> {
    let mut out: BTreeMap<(String, u64), Vec<(u64, bool)>> = BTreeMap::new();
    for (node, incs) in &record.nodes {
        for e in incs.iter().flat_map(|i| &i.journal) {
            if let Origin::Cluster { identity, ts: Some(ts), .. } = &e.origin {
                if identity == peer {
                    out.entry((node.clone(), ts.to_bits()))
                        .or_default()
                        .push((journal_ms(e.time), e.after_seal));
                }
            }
        }
    }
    out
}

/// A message as sent, coloured by its fate: applied, applied more than
/// once, dropped, or lost though acknowledged.
fn sent_item(m: &PeerMessage, at: u64, applied: &[(u64, bool)]) -> Item {
    let class = match (applied.len(), m.acknowledged) {
        (0, true) => "lost",
        (0, false) => "dropped",
        (1, _) => "sent",
        _ => "twice",
    };
    let tip = format!(
        "check result ts={:.3} for {} to {}: sent at {at} ms, applied {} times, {}",
        m.ts,
        m.host,
        m.node,
        applied.len(),
        if m.acknowledged { "acknowledged" } else { "not acknowledged" }
    );
    Item { from: at, to: at, shape: Shape::Low, class, tip }
}

/// The `k`-th application of a message: a second one, or one after the seal, is a fault.
fn applied_item(m: &PeerMessage, k: usize, (at, sealed): (u64, bool)) -> Item {
    let (class, how) = match (k, sealed) {
        (_, true) => ("sealed", "applied after the store was sealed"),
        (0, false) => ("applied", "applied"),
        _ => ("twice", "applied again"),
    };
    Item::point(
        at,
        class,
        format!("check result ts={:.3} from {}: {how} by {} at {at} ms", m.ts, m.peer, m.node),
    )
}

/// The peer's acknowledgements, from its trace lines.
fn acknowledgements<'a>(record: &'a RunRecord, peer: &'a str) -> impl Iterator<Item = Item> + 'a {
    record.trace.iter().filter(move |l| l.host == peer).filter_map(|l| match &l.what {
        Event::Text(t) if t.starts_with(ACK_LINE) => {
            Some(Item::point(l.at_ms, "ack", format!("{t} at {} ms", l.at_ms)))
        }
        _ => None,
    })
}

/// A row for each misbehaving actor's connection: from accepted to closed by the server.
pub fn actor_rows(record: &RunRecord) -> Vec<Row> {
    record.connection_ends.iter().map(|e| actor_row(record, e)).collect()
}

fn actor_row(record: &RunRecord, e: &ConnectionEnd) -> Row {
    let mut items = Vec::new();
    let closed = e.closed_ms.unwrap_or(record.end_ms);
    if let Some(at) = accepted_ms(record, e) {
        let tip = format!("{} connection of {}: accepted at {at} ms", e.kind, e.actor);
        items.push(Item::span(at, closed, Shape::Band, "open", tip));
    }
    items.push(match e.closed_ms {
        Some(c) => Item::point(
            c,
            "closed",
            format!("{} connection of {}: closed by the server at {c} ms", e.kind, e.actor),
        ),
        None => Item::point(
            closed,
            "unclosed",
            format!("{} connection of {}: never closed by the server", e.kind, e.actor),
        ),
    });
    Row { label: format!("{} {}", e.kind, e.actor), kind: RowKind::Actor, items }
}

/// When the actor's node accepted its connection, found by the client's address.
fn accepted_ms(record: &RunRecord, e: &ConnectionEnd) -> Option<u64> {
    let addr = e.local_addr.as_deref()?;
    let incs = record.nodes.get(&e.node)?;
    incs.iter().flat_map(|i| &i.probes).find_map(|(at, p)| match p {
        Probe::Accepted { peer, .. } if peer == addr => Some(*at),
        _ => None,
    })
}
