//! The cluster protocol: JSON-RPC messages framed as netstrings.
//!
//! Identity comes from the Hello's `params.identity` and is trusted only for
//! configured endpoints. That is loopback and simulation mode, not for
//! untrusted networks: TLS client certificates would replace it.

use crate::env::Env;
use crate::node::Shared;
use crate::store::{CheckResult, ObjectType};

pub mod cluster;
pub mod connection;
pub mod handshake;
pub mod message;
pub mod netstring;
pub mod queue;
pub mod replay;

/// Sends a check result accepted through the API to every endpoint: into
/// each one's replay log, and at once to those connected.
pub fn relay_check_result<E: Env>(shared: &Shared<E>, otype: ObjectType, name: &str, cr: &CheckResult) {
    if shared.config().endpoints.is_empty() {
        return;
    }
    let (host, service) = match otype {
        ObjectType::Service => match name.split_once('!') {
            Some((h, s)) => (h, Some(s)),
            None => return,
        },
        _ => (name, None),
    };
    let is_host = otype == ObjectType::Host;
    let state = message::wire_state(is_host, cr.state(is_host));
    let now = crate::store::unix_seconds(shared.env().now());
    shared.cluster().relay(now, None, |ts| message::check_result(host, service, cr, state, ts).into());
}
