//! One HTTP connection on hyper's HTTP/1 server: keep-alive, the idle and
//! header timeouts, the limits, and what Stop does to the connection.
//!
//! Stop (contract section 3, step 4): a connection with a request in flight
//! finishes it, writes the whole response and closes (hyper's graceful
//! shutdown, capped by `http_close_cap`); a connection with nothing in
//! flight, including one in the middle of a request head, is closed at once:
//! hyper lets go of it and it gets its goodbye (close_notify over TLS), as
//! hyper gives one to every connection it closes itself. Each goodbye is
//! capped too.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, SERVER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};

use super::body::Body;
use super::dispatch::{self, Head, Outcome};
use super::flight::{Flight, FlushIo, Ticket};
use super::reclaim::Reclaim;
use super::response::{encode, encode_query, server_header, Payload, Reply};
use crate::bug;
use crate::config::Config;
use crate::env::{Env, Point, Stream};
use crate::logsafe::Text;
use crate::node::Shared;
use crate::probe::{ConnId, Probe};

/// How long an idle connection closed at Stop waits for the client's
/// close_notify after sending its own. A pooled client that is not reading
/// never answers, and the process, which waits for its tasks before it
/// exits, should not wait the whole close cap for it.
const IDLE_GOODBYE_WAIT: Duration = Duration::from_secs(1);

/// hyper refuses a read buffer smaller than this.
const MIN_BUF: usize = 8192;

/// What the requests of one connection share.
struct Connection<E: Env> {
    shared: Arc<Shared<E>>,
    conn: ConnId,
    peer: SocketAddr,
    requests: AtomicU64,
    flight: Arc<Flight>,
}

/// Serves the connection until it closes, as [`crate::http::serve`] promises.
pub async fn run<E: Env, S: Stream>(shared: Arc<Shared<E>>, conn: ConnId, peer: SocketAddr, stream: S) {
    let flight = Arc::new(Flight::default());
    let (stream, reclaimed) = Reclaim::new(stream);
    let io = TokioIo::new(FlushIo::new(stream, flight.clone(), shared.config().timings.http_write_timeout));
    let state =
        Arc::new(Connection { shared: shared.clone(), conn, peer, requests: AtomicU64::new(0), flight });
    let service = {
        let state = state.clone();
        service_fn(move |req: Request<Incoming>| {
            // Counted as soon as hyper hands over the head, before any await.
            let ticket = state.flight.ticket();
            let state = state.clone();
            async move { Ok::<_, Infallible>(state.answer(req, ticket).await) }
        })
    };
    let connection = builder(shared.config()).serve_connection(io, service);
    let mut connection = Box::pin(connection);
    let stop = shared.http_stop().clone();
    let result = tokio::select! {
        biased;
        _ = stop.raised() => None,
        result = connection.as_mut() => Some(result),
    };
    if let Some(result) = result {
        return ended(peer, result);
    }
    // Planted bug: a connection with a request in flight closed as if idle,
    // tearing its handler, which runs inside this task, while it holds the gate.
    if state.flight.is_idle() || bug!(shared.config(), HandlerTornAtStop) {
        if bug!(shared.config(), IdleKeepAliveNotClosed) {
            return ended(peer, connection.await);
        }
        tracing::debug!("Closing idle HTTP connection from [{peer}]: the API is stopping.");
        drop(connection);
        if let Ok(mut stream) = reclaimed.await {
            let goodbye = tokio::io::AsyncWriteExt::shutdown(&mut stream);
            let _ = tokio::time::timeout(IDLE_GOODBYE_WAIT, goodbye).await;
        }
        return;
    }
    // hyper finishes the response in flight, then closes instead of keeping alive.
    connection.as_mut().graceful_shutdown();
    let cap = shared.config().timings.http_close_cap;
    match tokio::time::timeout(cap, connection).await {
        Ok(result) => ended(peer, result),
        Err(_) => {
            tracing::info!("HTTP connection from [{peer}] did not finish within {cap:?} of Stop; closing it.")
        }
    }
}

fn builder(config: &Config) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // Counted from the end of the previous response (hyper starts reading
        // the next head at once), so it is also the keep-alive idle timeout,
        // and it bounds a head that never completes.
        .header_read_timeout(config.timings.http_idle_timeout)
        .max_header_size(config.limits.http_header)
        .max_buf_size(config.limits.http_header.saturating_add(MIN_BUF).max(MIN_BUF))
        // hyper would read the wall clock for `Date`; the stack reads it only through the seam.
        .auto_date_header(false)
        .keep_alive(true);
    builder
}

fn ended(peer: SocketAddr, result: hyper::Result<()>) {
    let Err(e) = result else { return };
    let timed_out = std::error::Error::source(&e)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
    if timed_out {
        tracing::info!(
            "Closing HTTP connection from [{peer}]: {}",
            std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default()
        );
    } else {
        tracing::debug!("HTTP connection from [{peer}] ended: {e}");
    }
}

impl<E: Env> Connection<E> {
    async fn answer(&self, req: Request<Incoming>, ticket: Ticket) -> Response<Body> {
        let start = self.shared.env().instant();
        let request = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        let (parts, body) = req.into_parts();
        let head = Head::read(&parts.method, &parts.uri, parts.version, &parts.headers);
        // Held until the response is built: Stop returns only after it.
        let answering = self.shared.begin_answer();
        let outcome = match answering {
            Some(_) => dispatch::process(&self.shared, self.conn, request, &head, body).await,
            None => {
                Outcome { reply: Reply::error(503, "Shutting down.").closing(), user: None, pretty: false }
            }
        };
        self.shared.env().point(Point::HttpBeforeResponse).await;
        let status = outcome.reply.status;
        tracing::info!(
            "Request {} {} (from [{}], user: {}, agent: {}, status: {}) took total {}ms.",
            head.method,
            Text(&head.target),
            self.peer,
            outcome.user.as_deref().unwrap_or("<unauthenticated>"),
            Text(&head.agent),
            status.canonical_reason().unwrap_or(status.as_str()),
            (self.shared.env().instant() - start).as_millis()
        );
        self.shared.env().probe(|| Probe::HttpResponse {
            conn: self.conn,
            request,
            method: head.method.to_string(),
            path: head.path.clone(),
            status: status.as_u16(),
        });
        let stopping = self.shared.http_stop().is_raised();
        let response = response(outcome, stopping, ticket, self.flight.clone());
        drop(answering);
        response
    }
}

/// The HTTP response for an outcome; the ticket rides in the body.
fn response(outcome: Outcome, stopping: bool, mut ticket: Ticket, flight: Arc<Flight>) -> Response<Body> {
    let Outcome { reply, pretty, .. } = outcome;
    ticket.hold(reply.guard);
    let (body, json) = match reply.payload {
        Payload::Json(value) => (Body::full(encode(&value, pretty)), true),
        Payload::Query(results) => (Body::full(encode_query(&results, pretty)), true),
        Payload::Events(stream) => (Body::stream(stream), true),
        Payload::Empty => (Body::full(Default::default()), false),
    };
    let mut response = Response::new(body.with_ticket(ticket, flight));
    *response.status_mut() = reply.status;
    let headers = response.headers_mut();
    headers.insert(SERVER, server_header());
    if json {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    // During Stop the connection closes after this response: say so.
    if reply.close || stopping {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    for (name, value) in reply.headers {
        headers.append(name, value);
    }
    response
}
