//! The actors of harness section 3: clients and peers that talk to nodes.

pub mod conn;
pub mod http;
pub mod peer;
pub mod wire;
