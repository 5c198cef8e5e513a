//! `POST /v1/events`: newline-delimited JSON events from the store for as
//! long as the client reads, ending cleanly (after a complete line) at Stop.
//!
//! A filter runs on each event as on an object of a query: with the whole
//! `filter_budget` for that event, pausing as long evaluations do, and with
//! the patterns it compiled kept for the stream's next events.

use crate::bug;
use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream;
use hyper::{StatusCode, Version};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;

use super::{answer, Ctx, Step};
use crate::env::Env;
use crate::http::filter::{Binding, Evaluator};
use crate::http::response::{encode_line, ApiError, Payload, Reply};
use crate::http::targets::{FilterSpec, Halt};
use crate::node::{Shared, Signal};
use crate::store::{unix_seconds, Event};

/// The type of the line that tells a subscriber it missed events; sent
/// whatever types it subscribed to.
pub const LAGGED: &str = "EventStreamLagged";

/// The event types a client may subscribe to.
pub const TYPES: [&str; 7] = [
    "CheckResult",
    "StateChange",
    "AcknowledgementSet",
    "AcknowledgementCleared",
    "ObjectCreated",
    "ObjectModified",
    "ObjectDeleted",
];

/// Answers `POST /v1/events` with a stream, or an error.
pub fn handle<E: Env>(ctx: &Ctx<'_, E>) -> Reply {
    answer(run(ctx))
}

fn run<E: Env>(ctx: &Ctx<'_, E>) -> Step<Reply> {
    if ctx.version == Version::HTTP_10 {
        return Err(ApiError::new(400, "HTTP/1.0 not supported for event streams."));
    }
    let types = ctx
        .params
        .string_list("types")
        .ok()
        .flatten()
        .ok_or_else(|| ApiError::new(400, "'types' query parameter is required."))?;
    for t in &types {
        ctx.require(&format!("events/{t}"))?;
    }
    if ctx.params.last_string("queue").is_none_or(|q| q.is_empty()) {
        return Err(ApiError::new(400, "'queue' query parameter is required."));
    }
    let filter = FilterSpec::from_params(&ctx.params)?;
    // Unknown types are accepted and never match, as in Icinga.
    let wanted: BTreeSet<String> = types.into_iter().filter(|t| TYPES.contains(&t.as_str())).collect();
    let subscription = Subscription {
        events: ctx.shared.store().subscribe(),
        stop: ctx.shared.http_stop().clone(),
        wanted,
        filter,
        eval: Evaluator::new(ctx.shared.config().limits.filter_budget),
        shared: ctx.shared.clone(),
        lagged_before: false,
        ignores_stop: bug!(ctx.shared.config(), EventStreamLeftOpen),
    };
    let reply = Reply::json(StatusCode::OK, serde_json::Value::Null);
    Ok(Reply { payload: Payload::Events(Box::pin(subscription.into_stream())), ..reply })
}

/// One subscriber's state.
struct Subscription<E: Env> {
    events: Receiver<Event>,
    stop: Signal,
    wanted: BTreeSet<String>,
    filter: Option<FilterSpec>,
    eval: Evaluator,
    shared: Arc<Shared<E>>,
    /// Whether this stream fell behind before: only the first time is a warning.
    lagged_before: bool,
    /// Planted bug: the stream goes on through Stop.
    ignores_stop: bool,
}

impl<E: Env> Subscription<E> {
    fn into_stream(self) -> impl futures_util::Stream<Item = Bytes> + Send {
        stream::unfold(self, |mut sub| async move {
            let line = sub.next_line().await?;
            Some((line, sub))
        })
    }

    /// The next line to send; `None` ends the stream (Stop, or the store is gone).
    async fn next_line(&mut self) -> Option<Bytes> {
        loop {
            let received = tokio::select! {
                biased;
                _ = self.stop.raised(), if !self.ignores_stop => return None,
                r = self.events.recv() => r,
            };
            match received {
                Ok(event) if self.wants(&event).await? => return Some(encode_line(&event.body)),
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => return Some(self.lagged(n)),
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// The line that tells the client it missed `n` events: it fell behind
    /// by more than the backlog, and a silent gap would look like quiet.
    fn lagged(&mut self, n: u64) -> Bytes {
        if std::mem::replace(&mut self.lagged_before, true) {
            tracing::debug!("Event stream fell behind again; {n} events were dropped.");
        } else {
            tracing::warn!(
                "Event stream fell behind; {n} events were dropped. The client is told so on its stream."
            );
        }
        let body = json!({
            "type": LAGGED,
            "dropped": n,
            "status": format!("The event stream fell behind; {n} events were not sent."),
            "timestamp": unix_seconds(self.shared.env().now()),
        });
        encode_line(&body)
    }

    /// Whether the client wants `event`; `None` if Stop began while its
    /// filter paused.
    async fn wants(&mut self, event: &Event) -> Option<bool> {
        if !self.wanted.contains(event.kind) {
            return Some(false);
        }
        let Some(filter) = &self.filter else { return Some(true) };
        self.eval.budget.refill();
        let names = [("event", Binding::Value(&event.body))];
        match filter.matches(&self.shared, &mut self.eval, &names).await {
            Ok(matched) => Some(matched),
            Err(Halt::Stopping) => None,
            Err(Halt::Filter(e)) => {
                tracing::debug!("Event filter could not be evaluated for a {} event: {e}", event.kind);
                Some(false)
            }
        }
    }
}
