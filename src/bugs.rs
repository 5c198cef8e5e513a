//! The bug zoo: planted bugs the simulation must find. Compiled only with the
//! `bug-zoo` feature, which the production build never enables, and each one
//! is off unless a simulated world switches it on.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// One planted bug, named after its history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bug {
    /// Seed PR #10460: an `async_accept` completing after the acceptor was
    /// closed still registered its connection.
    AcceptAfterCloseRegistered,
    /// Icinga's "Cannot accept new connection" floods: the accept loop kept
    /// going after its acceptor was closed.
    AcceptLoopAfterClose,
    /// #10460: without the registration gate, a handshake finishing after the
    /// disconnect sweep registered a connection nobody would close.
    NoRegistrationGate,
    /// #10179/#10460: a modifying HTTP handler that never took the work group.
    HttpHandlerWithoutGate,
    /// #10460: the group checked once before a multi-object loop, not per object.
    GateCheckedOnce,
    /// #10460 MessageHandler: a JSON-RPC message handled without the work group.
    JsonRpcWithoutGate,
    /// Review of #10460 (WriteOutgoingMessages): the writer held the work
    /// group across a socket write.
    WriterHoldsGate,
    /// #10210: disconnect waited for the writer without the 5 s timeout.
    NoWriterTimeout,
    /// Follow-up d4d46a978: the gate stayed held while the response body was written.
    GateHeldWhileWriting,
    /// Note in #10460: modify answered 200 although objects were skipped.
    ModifyAnswers200WhenSkipped,
    /// #10179: a message dropped during Stop was still acknowledged.
    DroppedMessagesAcknowledged,
    /// Icinga 2.15 gap: idle keep-alive connections were left open by Stop.
    IdleKeepAliveNotClosed,
    /// #10460 review (HTTP connections torn at Stop): a request served inside
    /// its connection's task, and Stop closing connections with requests in
    /// flight as if idle, which tears the handler while it holds the gate.
    HandlerTornAtStop,
    /// The JSON-RPC writer does not look at Stop again after its pre-write
    /// pause, so a message (a log position, a reply) goes out after Stop returned.
    WriteAfterStop,
    /// Icinga 2.15 gap: event streams were left alone by Stop, and ended only
    /// when something else cut their connection.
    EventStreamLeftOpen,
    /// Icinga's zero-length state files after a power cut (fixed by an fsync
    /// in `Utility::SaveJsonFile`): the persist renamed a file whose data
    /// was never flushed.
    RenameWithoutFsync,
    /// A plausible slip in Stop step 1: the timers were cancelled but a
    /// tick in progress was not awaited, so a persist timer's older
    /// snapshot could land after Stop's own persist.
    TimerTickNotAwaited,
    /// A step-order slip: Stop persisted before joining the work group,
    /// so changes of handlers still in flight missed the state file.
    PersistBeforeJoin,
    /// A plausible slip in Stop step 3 (Icinga's Stop disconnects its
    /// anonymous clients beside the endpoints): the sweep went over endpoint
    /// connections only, and left anonymous ones to their 10 s lifetime.
    StopForgetsAnonymous,
    /// Icinga #10005 (before `GracefulDisconnect`): a TLS shutdown waited
    /// for the peer's close_notify without a cap, so a peer that never
    /// answered kept its connection open for good.
    TlsShutdownUncapped,
    /// Icinga #10833's code (HEAD, 2026): an identity refused after the
    /// registration lock is taken ("Unknown endpoint ... with valid
    /// certificate") gets its `GracefulDisconnect` while the lock is still
    /// held, so Stop's listener join waits for a peer's close_notify.
    RefusalGoodbyeHoldsListener,
    /// TigerBeetle's canary: not a bug in the stack but a planted failure on
    /// every seed divisible by 1000, which proves failures are reported.
    Canary,
}

impl Bug {
    /// Every planted bug, the canary last.
    pub const ALL: [Bug; 22] = [
        Bug::AcceptAfterCloseRegistered,
        Bug::AcceptLoopAfterClose,
        Bug::NoRegistrationGate,
        Bug::HttpHandlerWithoutGate,
        Bug::GateCheckedOnce,
        Bug::JsonRpcWithoutGate,
        Bug::WriterHoldsGate,
        Bug::NoWriterTimeout,
        Bug::GateHeldWhileWriting,
        Bug::ModifyAnswers200WhenSkipped,
        Bug::DroppedMessagesAcknowledged,
        Bug::IdleKeepAliveNotClosed,
        Bug::HandlerTornAtStop,
        Bug::WriteAfterStop,
        Bug::EventStreamLeftOpen,
        Bug::RenameWithoutFsync,
        Bug::TimerTickNotAwaited,
        Bug::PersistBeforeJoin,
        Bug::StopForgetsAnonymous,
        Bug::TlsShutdownUncapped,
        Bug::RefusalGoodbyeHoldsListener,
        Bug::Canary,
    ];
}

/// The bugs switched on in one world.
pub type BugSet = BTreeSet<Bug>;
