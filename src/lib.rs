//! quiesce: a model of the Icinga 2 API listener whose `Stop()` is
//! deterministic. One TCP port speaks the REST API (HTTP/1.1) and the cluster
//! protocol (JSON-RPC in netstrings); both share one object store; every
//! effect on the world goes through the [`env`] seam so the same stack runs
//! for real on tokio and, unchanged, inside a deterministic simulation.

#[cfg(feature = "bug-zoo")]
pub mod bugs;
pub mod cli;
pub mod config;
pub mod env;
pub(crate) mod http;
pub(crate) mod input;
pub(crate) mod jsonrpc;
pub mod listener;
pub(crate) mod lock;
pub(crate) mod logsafe;
pub(crate) mod node;
pub mod pki;
pub mod probe;
pub mod state;
pub mod store;
pub mod tls;
pub(crate) mod waitgroup;
pub(crate) mod work;

/// Whether `bug` is on in `config`. Without the feature, never.
#[macro_export]
macro_rules! bug {
    ($config:expr, $bug:ident) => {{
        #[cfg(feature = "bug-zoo")]
        let on = $config.bugs.contains(&$crate::bugs::Bug::$bug);
        #[cfg(not(feature = "bug-zoo"))]
        let on = false;
        on
    }};
}
