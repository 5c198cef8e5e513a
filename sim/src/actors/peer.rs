//! A simulated cluster peer: connects to a node as a configured endpoint,
//! sends Hello, streams check results with increasing `ts`, reads log
//! positions, acknowledges what the node relayed to it, and on reconnect
//! replays what was not acknowledged. Its framing is written here,
//! independently of the stack's codec, so a codec bug can't hide itself.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::either::Either;

use super::conn::{dial, ActorTls, Conn};

use super::http::sleep_until_ms;
use crate::record::PeerMessage;
use crate::recorder::{now_ms, Recorder};
use crate::scenario::ClusterPeer;

fn frame(v: &Value) -> Vec<u8> {
    // `to_vec`, not `to_string`: Display goes through the formatter, byte by byte.
    let payload = serde_json::to_vec(v).unwrap_or_default();
    let mut out = format!("{}:", payload.len()).into_bytes();
    out.extend_from_slice(&payload);
    out.push(b',');
    out
}

/// The parts of a message from the node that a peer acts on; everything
/// else (relayed check results, heartbeats) is skipped without being built.
#[derive(serde::Deserialize)]
struct FromNode<'a> {
    #[serde(borrow)]
    method: Option<std::borrow::Cow<'a, str>>,
    params: Option<PositionParams>,
    ts: Option<f64>,
}

#[derive(serde::Deserialize)]
struct PositionParams {
    log_position: Option<f64>,
}

/// What one message from the node means to the peer.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Seen {
    /// The position a `log::SetLogPosition` acknowledges.
    position: Option<f64>,
    /// The `ts` of a message the node relayed, which the peer acknowledges in turn.
    ts: Option<f64>,
}

fn seen(payload: &[u8]) -> Seen {
    let Ok(m) = serde_json::from_slice::<FromNode>(payload) else { return Seen::default() };
    let is_position = m.method.as_deref() == Some("log::SetLogPosition");
    Seen { position: m.params.and_then(|p| p.log_position).filter(|_| is_position), ts: m.ts }
}

/// Pops complete netstrings off the front of `buf`.
fn frames(buf: &mut Vec<u8>) -> Vec<Seen> {
    let mut out = Vec::new();
    while let Some(colon) = buf.iter().position(|&b| b == b':') {
        let Some(len) = std::str::from_utf8(&buf[..colon]).ok().and_then(|s| s.parse::<usize>().ok()) else {
            buf.clear();
            break;
        };
        if buf.len() < colon + 1 + len + 1 {
            break;
        }
        out.push(seen(&buf[colon + 1..colon + 1 + len]));
        buf.drain(..colon + len + 2);
    }
    out
}

fn check_result(host: &str, ts: f64, n: u32, name: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "method": "event::CheckResult",
        "ts": ts,
        "params": {
            "host": host,
            "cr": {
                "exit_status": n % 2,
                "output": format!("{name} result {n}"),
                "performance_data": [],
                "check_source": name,
                "execution_start": ts,
                "execution_end": ts,
                "state": n % 2,
            }
        }
    })
}

/// How long a peer waits before it connects again.
pub const RETRY_MS: u64 = 1_000;

/// Runs the peer until all results are sent and acknowledged or the run
/// ends at `end_ms`.
pub async fn peer(rec: Recorder, spec: ClusterPeer, end_ms: u64, tls: Option<Arc<ActorTls>>) {
    sleep_until_ms(spec.start_ms).await;
    let mut sent: Vec<(f64, Value)> = Vec::new();
    let mut acked = 0.0_f64;
    while now_ms() + 1_000 < end_ms {
        match dial(&spec.node, tls.as_deref(), Some(&spec.name)).await {
            Ok(stream) => {
                session(&rec, &spec, end_ms, stream, &mut sent, &mut acked).await;
                rec.peer_waits(&spec.name, false);
            }
            Err(e) => rec.line(&spec.name, format!("connect failed: {e}")),
        }
        let done = sent.len() as u32 >= spec.results && sent.iter().all(|(ts, _)| *ts <= acked);
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(RETRY_MS)).await;
    }
    rec.peer_ended(&spec.name);
}

/// When a message with `ts` was sent, in simulated ms: [`next_ts`] takes
/// the send time, later only to keep `ts` strictly increasing.
pub fn sent_ms(ts: f64) -> u64 {
    ((ts - crate::env::EPOCH_SECS as f64) * 1000.0) as u64
}

/// `ts` for the next message: simulated epoch seconds, strictly increasing.
fn next_ts(sent: &[(f64, Value)]) -> f64 {
    let now = crate::env::EPOCH_SECS as f64 + now_ms() as f64 / 1000.0;
    let last = sent.last().map(|(ts, _)| *ts).unwrap_or(0.0);
    if now > last {
        now
    } else {
        last + 0.001
    }
}

async fn session(
    rec: &Recorder,
    spec: &ClusterPeer,
    end_ms: u64,
    stream: Conn,
    sent: &mut Vec<(f64, Value)>,
    acked: &mut f64,
) {
    rec.line(&spec.name, "connected");
    match stream {
        Either::Left(tcp) => {
            let (rd, wr) = tcp.into_split();
            play(Link { rd, wr, rec, spec, buf: Vec::new() }, end_ms, sent, acked).await
        }
        Either::Right(tls) => {
            let (rd, wr) = tokio::io::split(tls);
            play(Link { rd, wr, rec, spec, buf: Vec::new() }, end_ms, sent, acked).await
        }
    }
}

/// One session on its link: Hello and backlog, then results, reads and
/// acknowledgements until the run ends or the node goes.
async fn play<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    mut link: Link<'_, R, W>,
    end_ms: u64,
    sent: &mut Vec<(f64, Value)>,
    acked: &mut f64,
) {
    let (rec, spec) = (link.rec, link.spec);
    let hello = json!({"jsonrpc":"2.0","method":"icinga::Hello","params":{"identity": spec.name, "version": 21500, "capabilities": 7}});
    let backlog: Vec<Value> = sent.iter().filter(|(ts, _)| *ts > *acked).map(|(_, m)| m.clone()).collect();
    let mut out = frame(&hello);
    for m in &backlog {
        out.extend(frame(m));
    }
    let mut relayed = Relayed { next_ms: now_ms() + ACK_EVERY_MS, ..Relayed::default() };
    if !link.send(&out, &mut relayed, acked).await {
        return rec.line(&spec.name, "hello failed");
    }
    rec.peer_session(&spec.name);
    if !backlog.is_empty() {
        rec.line(&spec.name, format!("replayed {} unacknowledged results", backlog.len()));
    }
    let mut chunk = [0u8; 4096];
    let mut next_send = now_ms();
    loop {
        let now = now_ms();
        if now + 1_000 >= end_ms {
            return;
        }
        let all_sent = sent.len() as u32 >= spec.results;
        if spec.reads && all_sent && sent.iter().all(|(ts, _)| *ts <= *acked) {
            return rec.line(&spec.name, "everything acknowledged; closing");
        }
        // With nothing to send or acknowledge, only the node can wake it.
        rec.peer_waits(&spec.name, spec.reads && all_sent && relayed.received <= relayed.told);
        if !all_sent && now >= next_send {
            let ts = next_ts(sent);
            let msg = check_result(&spec.host, ts, sent.len() as u32, &spec.name);
            if !link.send(&frame(&msg), &mut relayed, acked).await {
                return rec.line(&spec.name, "disconnected while writing");
            }
            sent.push((ts, msg));
            rec.peer_message(PeerMessage {
                peer: spec.name.clone(),
                node: spec.node.clone(),
                ts,
                host: spec.host.clone(),
                acknowledged: false,
                reads: spec.reads,
            });
            next_send = now_ms() + spec.interval_ms.max(1);
        }
        // Wake for the next thing to do, not on a polling interval: each
        // wake costs a timer and a socket poll.
        let next_send = if sent.len() as u32 >= spec.results { u64::MAX } else { next_send };
        let last = end_ms.saturating_sub(1_000);
        if !spec.reads {
            if next_send == u64::MAX {
                // A deaf peer with nothing left to send holds its socket
                // until the end: it never learns of a disconnect, so it
                // opens no session again.
                rec.peer_ended(&spec.name);
            }
            sleep_until_ms(next_send.min(last)).await;
            continue;
        }
        if let Some(position) = relayed.due(now) {
            if !link.send(&frame(&set_log_position(position)), &mut relayed, acked).await {
                return rec.line(&spec.name, "disconnected while writing");
            }
        }
        let wait = next_send.min(relayed.next_ms).min(last).saturating_sub(now_ms()).max(1);
        match tokio::time::timeout(Duration::from_millis(wait), link.rd.read(&mut chunk)).await {
            Err(_) => {}
            Ok(Ok(0)) | Ok(Err(_)) => return rec.line(&spec.name, "disconnected by node"),
            Ok(Ok(n)) => link.absorb(&chunk[..n], &mut relayed, acked),
        }
    }
}

/// One session's socket, and the bytes read from it that do not yet make
/// a whole frame.
struct Link<'a, R, W> {
    rd: R,
    wr: W,
    rec: &'a Recorder,
    spec: &'a ClusterPeer,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Link<'_, R, W> {
    /// Acts on what the node sent: notes the `ts` it relayed, takes its
    /// acknowledgements.
    fn absorb(&mut self, bytes: &[u8], relayed: &mut Relayed, acked: &mut f64) {
        self.buf.extend_from_slice(bytes);
        for m in frames(&mut self.buf) {
            relayed.received = relayed.received.max(m.ts.unwrap_or(0.0));
            if let Some(pos) = m.position {
                on_position(self.rec, self.spec, pos, acked);
            }
        }
    }

    /// Writes all of `bytes`; false once the connection is gone. A peer
    /// that reads goes on reading while its write waits for the node to
    /// take more, as Icinga's separate reader does: a node that closes the
    /// connection then ends the write. (turmoil wakes no writer waiting for
    /// room when the other end resets, so a write alone would hang for good.)
    async fn send(&mut self, bytes: &[u8], relayed: &mut Relayed, acked: &mut f64) -> bool {
        if !self.spec.reads {
            // A deaf peer learns nothing while its write waits for room.
            self.rec.peer_waits(&self.spec.name, true);
            let written = self.wr.write_all(bytes).await.is_ok() && self.wr.flush().await.is_ok();
            self.rec.peer_waits(&self.spec.name, false);
            return written;
        }
        let (mut at, mut chunk) = (0, [0u8; 4096]);
        while at < bytes.len() {
            tokio::select! {
                biased;
                w = self.wr.write(&bytes[at..]) => match w {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => at += n,
                },
                r = self.rd.read(&mut chunk) => match r {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => self.absorb(&chunk[..n], relayed, acked),
                },
            }
        }
        // Over TLS what `write` took may still sit in the session's buffer
        // (a plain socket's flush is ready at once): without the flush a
        // last result would never leave, and the run would count it lost.
        loop {
            tokio::select! {
                biased;
                f = self.wr.flush() => return f.is_ok(),
                r = self.rd.read(&mut chunk) => match r {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => self.absorb(&chunk[..n], relayed, acked),
                },
            }
        }
    }
}

/// How often a peer acknowledges what the node relayed to it, as Icinga's
/// log-position timer does; without it the node's replay log only grows.
const ACK_EVERY_MS: u64 = 5_000;

/// The node's relayed messages as the peer has seen and acknowledged them.
#[derive(Default)]
struct Relayed {
    received: f64,
    told: f64,
    next_ms: u64,
}

impl Relayed {
    /// The position to acknowledge now, if one is due and has moved.
    fn due(&mut self, now: u64) -> Option<f64> {
        if now < self.next_ms {
            return None;
        }
        self.next_ms = now + ACK_EVERY_MS;
        (self.received > self.told).then(|| {
            self.told = self.received;
            self.received
        })
    }
}

fn set_log_position(position: f64) -> Value {
    json!({"jsonrpc": "2.0", "method": "log::SetLogPosition", "params": {"log_position": position}})
}

fn on_position(rec: &Recorder, spec: &ClusterPeer, pos: f64, acked: &mut f64) {
    if pos > *acked {
        *acked = pos;
        rec.acknowledged(&spec.name, pos);
        rec.line(&spec.name, format!("acknowledged up to ts={pos:.3}"));
    }
}
