//! Oracle 6, nothing-acknowledged-is-lost: a graceful restart keeps every
//! acknowledged write, and every check result a peer sent is applied exactly once.

use std::collections::BTreeMap;

use quiesce::store::{JournalEntry, Origin};

use super::{Invariant, Violation};
use crate::record::{Incarnation, RunRecord};
use crate::scenario::Scenario;

/// What handling a replayed backlog may take beyond its messages' own
/// delays: the session's handshake and the network, on an idle node.
pub const REPLAY_SLACK_MS: u64 = 2_000;

/// 6. Nothing acknowledged is lost across a graceful restart.
pub fn nothing_acknowledged_is_lost(scenario: &Scenario, record: &RunRecord) -> Vec<Violation> {
    let mut out = Vec::new();
    for (node, incs) in &record.nodes {
        for pair in incs.windows(2) {
            out.extend(state_survives(node, &pair[0], &pair[1]));
        }
    }
    // A result not acknowledged must have arrived if its peer opened a
    // session after the restart (which replays its backlog first) and the
    // run went on for the window that backlog needs: each of its messages
    // handled with what chaos may add to one, over the peer's link latency.
    let last_start = record.nodes.get(&scenario.stop.node).and_then(|incs| replay_judged_since(incs));
    let sent = |peer: &str| record.peer_messages.iter().filter(|m| m.peer == peer).count() as u64;
    // A message sent later than a window before the end may still be on its
    // way: only those sent before that cutoff must have arrived.
    let replayed: BTreeMap<&str, u64> = record
        .peer_sessions
        .iter()
        .filter_map(|(peer, at)| {
            let window = replay_window_ms(scenario, peer, sent(peer));
            let judged = last_start.is_some_and(|start| *at >= start)
                && !link_cut_after(scenario, peer, *at)
                && record.end_ms >= at + window;
            judged.then(|| (peer.as_str(), record.end_ms - window))
        })
        .collect();
    out.extend(peer_results_applied_once(record, &replayed));
    out
}

/// The start after which a peer's session replays its whole backlog to the
/// stopped node: its last one, if it was a restart (or a crash's) and
/// neither a Stop (a later cycle's) nor a crash without restart ended it.
pub fn replay_judged_since(incarnations: &[Incarnation]) -> Option<u64> {
    let last = incarnations.last().filter(|_| incarnations.len() > 1)?;
    (last.stop_called_ms.is_none() && !last.crashed).then_some(last.started_ms)
}

/// The peer and `ts` of a check result a journal entry applied; none for an
/// attempt after the seal, which was refused and applied nothing.
pub fn applied_result(e: &JournalEntry) -> Option<(&str, f64)> {
    match &e.origin {
        Origin::Cluster { identity, ts: Some(ts), .. } if !e.after_seal => Some((identity, *ts)),
        _ => None,
    }
}

/// How long a backlog of `messages` from `peer` may take to be applied once
/// its session opened: the slack, a millisecond a message, what chaos may
/// add to them on the node that replays them, and the peer's link latency.
pub fn replay_window_ms(scenario: &Scenario, peer: &str, messages: u64) -> u64 {
    let chaos = jsonrpc_chaos_ms(scenario, &scenario.stop.node, messages);
    REPLAY_SLACK_MS + messages + chaos + latency_ms(scenario, Some(peer))
}

/// The longest [`replay_window_ms`] any peer of the scenario can need: the
/// one of its whole stream of results.
pub fn longest_replay_window_ms(scenario: &Scenario) -> u64 {
    let peers = scenario.actors.iter().filter_map(|a| match a {
        crate::scenario::Actor::ClusterPeer(p) => Some(replay_window_ms(scenario, &p.name, p.results.into())),
        _ => None,
    });
    peers.max().unwrap_or(0)
}

/// The most chaos can delay the handling of `messages` JSON-RPC messages on
/// `node`: a rule without a hit number delays every message, as if each hit
/// it in full; one aimed at a single hit delays one. (The writer's pause
/// delays acknowledgements, not handling.)
fn jsonrpc_chaos_ms(scenario: &Scenario, node: &str, messages: u64) -> u64 {
    use quiesce::env::Point;
    let handling = |p: Point| matches!(p, Point::JsonRpcBeforeHandle | Point::JsonRpcAfterGate);
    let on_node = |host: &Option<String>| host.as_deref().is_none_or(|h| h == node);
    let hits = |hit: Option<u64>| if hit.is_some() { 1 } else { messages };
    scenario
        .chaos
        .iter()
        .filter(|r| handling(r.point) && on_node(&r.host))
        .map(|r| r.delay_ms() * hits(r.hit))
        .sum()
}

/// The latency set on the links of `host` (of every host if none), summed:
/// the most a message over them can take.
pub fn latency_ms(scenario: &Scenario, host: Option<&str>) -> u64 {
    use crate::scenario::Fault;
    let touches = |a: &str, b: &str| host.is_none_or(|h| a == h || b == h);
    scenario
        .faults
        .iter()
        .map(|f| match f {
            Fault::Latency { a, b, ms, .. } if touches(a, b) => *ms,
            _ => 0,
        })
        .sum()
}

/// Whether a partition or hold of `peer`'s links, or a crash, lasts past `at`:
/// its backlog may then be held up for as long, and is not judged.
fn link_cut_after(scenario: &Scenario, peer: &str, at: u64) -> bool {
    use crate::scenario::Fault;
    scenario.faults.iter().any(|f| match f {
        Fault::Hold { a, b, until_ms, .. } | Fault::Partition { a, b, until_ms, .. } => {
            (a == peer || b == peer) && *until_ms > at
        }
        Fault::Crash { at_ms, .. } | Fault::Bounce { at_ms, .. } | Fault::PowerLoss { at_ms, .. } => {
            *at_ms > at
        }
        Fault::Latency { .. } => false,
    })
}

/// What a graceful Stop persisted is exactly what the next start loads.
fn state_survives(node: &str, before: &Incarnation, after: &Incarnation) -> Option<Violation> {
    if before.crashed {
        return None;
    }
    let (Some(stopped), Some(started)) = (&before.state_at_stop, &after.state_at_start) else { return None };
    if stopped == started {
        return None;
    }
    let names = |s: &quiesce::store::StoreSnapshot| -> Vec<String> {
        s.objects.iter().map(|o| o.name.clone()).collect()
    };
    let lost: Vec<String> = names(stopped).into_iter().filter(|n| !names(started).contains(n)).collect();
    Some(Violation {
        invariant: Invariant::NothingAcknowledgedIsLost,
        at_ms: after.started_ms,
        node: node.to_string(),
        message: "the state a graceful Stop ended with must be the state the restart loads".into(),
        evidence: vec![format!("objects missing after restart: {lost:?}")],
    })
}

/// Every check result a simulated peer sent is applied at most once, in
/// `ts` order; exactly once if the node acknowledged it, or if its peer
/// `replayed` its backlog after the restart.
fn peer_results_applied_once(record: &RunRecord, replayed: &BTreeMap<&str, u64>) -> Vec<Violation> {
    let mut out = Vec::new();
    for (node, incs) in &record.nodes {
        // An era ends with a crash: what was applied and not yet persisted
        // is lost with it, and the peer rightly sends it again. Within an
        // era, a result is applied at most once and in ts order.
        let mut applied: BTreeMap<(String, u64), BTreeMap<usize, usize>> = BTreeMap::new();
        let mut order: BTreeMap<(usize, String), Vec<f64>> = BTreeMap::new();
        let eras = incs.iter().scan(0, |era, inc| {
            let this = *era;
            *era += usize::from(inc.crashed);
            Some((this, inc))
        });
        for (era, inc) in eras {
            for (identity, ts) in inc.journal.iter().filter_map(applied_result) {
                *applied.entry((identity.to_string(), ts.to_bits())).or_default().entry(era).or_default() +=
                    1;
                order.entry((era, identity.to_string())).or_default().push(ts);
            }
        }
        for m in record.peer_messages.iter().filter(|m| &m.node == node) {
            let eras = applied.get(&(m.peer.clone(), m.ts.to_bits()));
            let n: usize = eras.map_or(0, |e| e.values().sum());
            let twice_in_an_era = eras.is_some_and(|e| e.values().any(|&k| k > 1));
            let sent_ms = crate::actors::peer::sent_ms(m.ts);
            let must_be_there =
                m.acknowledged || replayed.get(m.peer.as_str()).is_some_and(|cut| sent_ms <= *cut);
            if twice_in_an_era || (n == 0 && must_be_there) {
                out.push(Violation {
                    invariant: Invariant::NothingAcknowledgedIsLost,
                    at_ms: record.end_ms,
                    node: node.clone(),
                    message: format!(
                        "every check result a peer sent must be applied exactly once; ts {} from '{}' (acknowledged: {}) was applied {n} times",
                        m.ts, m.peer, m.acknowledged
                    ),
                    evidence: vec![format!("peer message: {}", serde_json::to_string(m).unwrap_or_default())],
                });
            }
        }
        for ((_, peer), ts) in order {
            if let Some(w) = ts.windows(2).find(|w| w[1] <= w[0]) {
                out.push(Violation {
                    invariant: Invariant::NothingAcknowledgedIsLost,
                    at_ms: record.end_ms,
                    node: node.clone(),
                    message: format!("check results from '{peer}' must be applied in ts order"),
                    evidence: vec![format!("ts {} applied after ts {}", w[1], w[0])],
                });
            }
        }
    }
    out
}
