//! The stack end to end, on the host's real network and files: the HTTP API,
//! the cluster protocol, the input limits, and `quiesce serve` as a process.
//! One test binary rather than one per file, so the stack is instantiated and
//! linked once per build (a mutation-testing run rebuilds it for every mutant).
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "tests drive a real node from outside: its sockets, files and clocks are the test's own"
)]

mod cluster;
mod common;
mod http_api;
mod limits;
mod pki_process;
mod serve_process;
mod tls;
