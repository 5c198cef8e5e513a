//! The chaos points of the stack: the places where the simulation may delay
//! or yield, as a schedule says. One closed set, used by the stack's calls,
//! the seam, the scenario format, the fuzzer and the docs, so that a point
//! cannot be misspelt in one of them and silently never hit.

use serde::{Deserialize, Serialize};

/// A named place in the stack where the simulation may delay or yield.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Point {
    /// A new connection, sniffed, before it passes the registration gate.
    #[serde(rename = "listener.before_register")]
    ListenerBeforeRegister,
    /// A modifying request before it tries the work group.
    #[serde(rename = "http.before_gate")]
    HttpBeforeGate,
    /// A modifying request that has just entered the work group.
    #[serde(rename = "http.after_gate")]
    HttpAfterGate,
    /// A multi-object request before each object it may still process.
    #[serde(rename = "http.between_objects")]
    HttpBetweenObjects,
    /// An answer before its response head is handed to hyper.
    #[serde(rename = "http.before_response")]
    HttpBeforeResponse,
    /// A long filter evaluation yielding to the runtime.
    #[serde(rename = "http.filter_pause")]
    HttpFilterPause,
    /// A persist with its snapshot taken, before the temporary file is written.
    #[serde(rename = "fs.before_write")]
    FsBeforeWrite,
    /// A persist's temporary file written, before it is flushed to disk.
    #[serde(rename = "fs.before_fsync")]
    FsBeforeFsync,
    /// A persist's temporary file flushed, before its rename.
    #[serde(rename = "fs.before_rename")]
    FsBeforeRename,
    /// A persist's file renamed into place, before the directory is flushed.
    #[serde(rename = "fs.before_dir_sync")]
    FsBeforeDirSync,
    /// Stop between two of its steps (after each step but the last).
    #[serde(rename = "stop.between_steps")]
    StopBetweenSteps,
    /// Stop inside its join step: the work group joined, the store not yet sealed.
    #[serde(rename = "stop.before_seal")]
    StopBeforeSeal,
    /// A persist timer's tick that has begun, before it persists.
    #[serde(rename = "timer.persist")]
    TimerPersist,
    /// A log-position tick with its positions read, before it sends them.
    #[serde(rename = "timer.log_position")]
    TimerLogPosition,
    /// A JSON-RPC message before it tries the work group.
    #[serde(rename = "jsonrpc.before_handle")]
    JsonRpcBeforeHandle,
    /// A JSON-RPC message that has just entered the work group.
    #[serde(rename = "jsonrpc.after_gate")]
    JsonRpcAfterGate,
    /// The writer before each message it writes.
    #[serde(rename = "jsonrpc.before_write")]
    JsonRpcBeforeWrite,
    /// A TLS handshake with the client's hello read, before the server answers.
    #[serde(rename = "tls.after_client_hello")]
    TlsAfterClientHello,
    /// A TLS goodbye begun (its wait already capped), before close_notify is sent.
    #[serde(rename = "tls.before_close_notify")]
    TlsBeforeCloseNotify,
}

impl Point {
    /// Every point.
    pub const ALL: [Point; 19] = [
        Point::ListenerBeforeRegister,
        Point::HttpBeforeGate,
        Point::HttpAfterGate,
        Point::HttpBetweenObjects,
        Point::HttpBeforeResponse,
        Point::HttpFilterPause,
        Point::FsBeforeWrite,
        Point::FsBeforeFsync,
        Point::FsBeforeRename,
        Point::FsBeforeDirSync,
        Point::StopBetweenSteps,
        Point::StopBeforeSeal,
        Point::TimerPersist,
        Point::TimerLogPosition,
        Point::JsonRpcBeforeHandle,
        Point::JsonRpcAfterGate,
        Point::JsonRpcBeforeWrite,
        Point::TlsAfterClientHello,
        Point::TlsBeforeCloseNotify,
    ];

    /// The point's name in scenario files and docs (`http.before_gate`).
    pub fn name(self) -> &'static str {
        match self {
            Point::ListenerBeforeRegister => "listener.before_register",
            Point::HttpBeforeGate => "http.before_gate",
            Point::HttpAfterGate => "http.after_gate",
            Point::HttpBetweenObjects => "http.between_objects",
            Point::HttpBeforeResponse => "http.before_response",
            Point::HttpFilterPause => "http.filter_pause",
            Point::FsBeforeWrite => "fs.before_write",
            Point::FsBeforeFsync => "fs.before_fsync",
            Point::FsBeforeRename => "fs.before_rename",
            Point::FsBeforeDirSync => "fs.before_dir_sync",
            Point::StopBetweenSteps => "stop.between_steps",
            Point::StopBeforeSeal => "stop.before_seal",
            Point::TimerPersist => "timer.persist",
            Point::TimerLogPosition => "timer.log_position",
            Point::JsonRpcBeforeHandle => "jsonrpc.before_handle",
            Point::JsonRpcAfterGate => "jsonrpc.after_gate",
            Point::JsonRpcBeforeWrite => "jsonrpc.before_write",
            Point::TlsAfterClientHello => "tls.after_client_hello",
            Point::TlsBeforeCloseNotify => "tls.before_close_notify",
        }
    }
}

impl std::fmt::Display for Point {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_point_is_listed_and_named_as_serde_names_it() {
        for (i, p) in Point::ALL.iter().enumerate() {
            assert_eq!(serde_json::to_value(p).unwrap(), p.name(), "{p:?}");
            assert!(!Point::ALL[..i].contains(p), "{p:?} is listed twice");
        }
        let unknown: Result<Point, _> = serde_json::from_str("\"http.befor_gate\"");
        assert!(unknown.is_err(), "a misspelt point is an error, not a point never hit");
    }
}
