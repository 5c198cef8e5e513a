//! quiesce: a model of the Icinga 2 API listener whose `Stop()` is
//! deterministic. One TCP port speaks the REST API (HTTP/1.1) and the cluster
//! protocol (JSON-RPC in netstrings); both share one object store; every
//! effect on the world goes through the [`env`] seam so the same stack runs
//! for real on tokio and, unchanged, inside a deterministic simulation.

pub mod env;
pub mod probe;
pub mod store;
pub mod waitgroup;
