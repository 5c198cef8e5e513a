//! The response body: a whole JSON document or an event stream, carrying the
//! request's [`Ticket`] so that the request counts as in flight until hyper
//! has finished with the body and flushed it.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};

use super::flight::{Flight, Ticket};
use super::response::EventStream;

enum Content {
    Full(Option<Bytes>),
    Stream(EventStream),
}

/// Every response's body type.
pub struct Body {
    content: Content,
    ticket: Option<(Ticket, Arc<Flight>)>,
}

impl Body {
    /// A body of known bytes.
    pub fn full(bytes: Bytes) -> Body {
        Body { content: Content::Full(Some(bytes).filter(|b| !b.is_empty())), ticket: None }
    }

    /// A streamed body of unknown length.
    pub fn stream(stream: EventStream) -> Body {
        Body { content: Content::Stream(stream), ticket: None }
    }

    /// Ties the request's ticket to this body: it is parked when the body is
    /// done and ends at the flush that follows.
    pub fn with_ticket(mut self, ticket: Ticket, flight: Arc<Flight>) -> Body {
        self.ticket = Some((ticket, flight));
        self
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.content {
            Content::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Content::Stream(stream) => {
                stream.as_mut().poll_next(cx).map(|line| line.map(|b| Ok(Frame::data(b))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.content, Content::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.content {
            Content::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Content::Stream(_) => SizeHint::default(),
        }
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        if let Some((ticket, flight)) = self.ticket.take() {
            flight.park(ticket);
        }
    }
}
