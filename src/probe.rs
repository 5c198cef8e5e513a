//! Structured events the stack reports through [`Env::probe`](crate::env::Env::probe).
//!
//! They are the evidence the simulation's oracles and traces are built from,
//! so they name connections and requests by stable, per-node sequence numbers.

use serde::Serialize;

/// A connection's number on its node, in accept (or connect) order.
pub type ConnId = u64;

/// What a registered connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnKind {
    /// The REST API.
    Http,
    /// A cluster connection from or to a configured endpoint.
    Endpoint,
    /// A cluster connection whose identity is not a configured endpoint.
    Anonymous,
}

/// The steps of `ApiListener::stop`, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopStep {
    /// Stop has been called.
    Begin,
    /// 1: timers stopped, no callback running.
    TimersStopped,
    /// 2a: every acceptor closed.
    AcceptorsClosed,
    /// 2b: listener group joined: accept loops ended, registrations finished.
    ListenerJoined,
    /// 3: every JSON-RPC connection told to disconnect.
    JsonRpcDisconnected,
    /// 4: every HTTP connection told to finish and close.
    HttpClosing,
    /// 5a: the work group's join has started; gated work is refused from here.
    WorkJoinStarted,
    /// 5b: the work group is empty and every HTTP request in flight is answered.
    WorkJoined,
    /// 6: the state directory is written.
    Persisted,
    /// 7: `'api' stopped.`; Stop returns.
    Stopped,
}

/// One event. Serialized into simulation traces, so keep field order stable.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Probe {
    /// An acceptor is listening.
    ListenerStarted { addr: String },
    /// An accept failed with something other than "closed".
    AcceptError { addr: String, error: String },
    /// An accept loop has returned.
    AcceptLoopExited { addr: String },
    /// A connection was accepted (or an outgoing one connected).
    Accepted { conn: ConnId, peer: String },
    /// A connection was turned away before registration.
    Rejected { conn: ConnId, reason: String },
    /// A connection was registered with the listener.
    Registered { conn: ConnId, kind: ConnKind },
    /// A connection's tasks have all ended and its socket is closed.
    Closed { conn: ConnId },
    /// A step of Stop has completed.
    Stop { step: StopStep },
    /// Work entered the work group.
    GateEntered { work: String },
    /// Work was refused by the work group (Stop has begun).
    GateRefused { work: String },
    /// Work left the work group after running to its end.
    GateReleased { work: String },
    /// Work left the work group torn: its guard was dropped before the work
    /// finished (its future dropped, cancelled or cut off by a cap).
    WorkTorn { work: String },
    /// The writer began writing a JSON-RPC message (a reply, a heartbeat,
    /// a log position) to a connection's socket.
    JsonRpcWrite { conn: ConnId, method: String },
    /// A file of the state directory was written (reported by the environment).
    FileWritten { path: String },
    /// An HTTP request was answered (the head is about to be written).
    HttpResponse { conn: ConnId, request: u64, method: String, path: String, status: u16 },
    /// A JSON-RPC message was handled, dropped or ignored.
    JsonRpc { conn: ConnId, method: String, outcome: String },
    /// A task of the stack panicked.
    Panic { task: String, message: String },
    /// Anything else worth a line in a trace.
    Note { what: String },
}
