//! The cluster protocol: JSON-RPC messages framed as netstrings.
//!
//! Identity comes from the Hello's `params.identity` and is trusted only for
//! configured endpoints. That is loopback and simulation mode, not for
//! untrusted networks: TLS client certificates would replace it.

pub mod cluster;
pub mod connection;
pub mod handshake;
pub mod message;
pub mod netstring;
pub mod queue;
pub mod replay;
