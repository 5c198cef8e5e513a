//! The scenario file format (version 1): one simulated world, its schedule
//! and the verdict it must produce. Documented for users in `scenarios/README.md`.

use std::path::Path;

use quiesce::bugs::Bug;
use serde::{Deserialize, Serialize};

use crate::env::ChaosRule;
use crate::oracles::Invariant;

/// The format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// A whole simulated run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Always [`FORMAT_VERSION`].
    pub version: u32,
    /// A short name, used for snapshots.
    pub name: String,
    /// What the scenario plays, for people.
    #[serde(default)]
    pub description: String,
    /// Seeds turmoil, tokio's `select!` and every actor.
    pub seed: u64,
    /// The simulation's tick in milliseconds.
    #[serde(default = "default_tick_ms")]
    pub tick_ms: u64,
    /// Simulated time after which the run ends, whatever is still going.
    pub duration_ms: u64,
    /// turmoil's TCP capacity in segments: the send window (and the accept
    /// queue). A peer that does not read blocks the writer once it is full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_capacity: Option<usize>,
    /// The nodes and actors speak TLS, with Ed25519 certificates from one
    /// CA made from the seed (cluster peers show one for their identity;
    /// HTTP clients and anonymous peers none); otherwise plain TCP.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
    /// The nodes running the stack.
    pub nodes: Vec<NodeSpec>,
    /// Clients and peers.
    #[serde(default)]
    pub actors: Vec<Actor>,
    /// Network and host faults.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Delays and yields at the stack's chaos points.
    #[serde(default)]
    pub chaos: Vec<ChaosRule>,
    /// When Stop is called, and on which node.
    pub stop: StopSpec,
    /// Restart of the stopped node on its state directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartSpec>,
    /// Further cycles of the stopped node after `restart`: stopped again,
    /// and maybe started again, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cycles: Vec<Cycle>,
    /// Planted bugs switched on for this run (bug zoo).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bugs: Vec<Bug>,
    /// A fault planted in the harness itself, for tests of the campaign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harness_fault: Option<HarnessFault>,
    /// The verdict the run must produce.
    pub expect: Expect,
}

fn default_tick_ms() -> u64 {
    1
}

/// A fault planted in the harness itself, never in the stack: it lets tests
/// show that a campaign turns trouble in its own machinery into a violation
/// and a scenario file instead of losing the case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum HarnessFault {
    /// The harness panics at `site`, at `at_ms` of simulated time where the
    /// site runs inside the simulation.
    Panic {
        /// Where.
        site: PanicSite,
        /// When, for the sites inside the simulation.
        #[serde(default)]
        at_ms: u64,
    },
    /// The stopped node's host writes a trace line that differs from one run
    /// to the next in the same process.
    Nondeterministic,
}

/// Where a planted harness panic happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PanicSite {
    /// While the world is built, before it runs.
    Build,
    /// In the stopped node's main future.
    NodeMain,
    /// In a task spawned on the stopped node's host, as a timer's is.
    Timer,
    /// In an actor.
    Actor,
    /// While the oracles check the finished run.
    Oracles,
}

impl PanicSite {
    /// Every site.
    pub const ALL: [PanicSite; 5] =
        [PanicSite::Build, PanicSite::NodeMain, PanicSite::Timer, PanicSite::Actor, PanicSite::Oracles];
}

/// One node of the stack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Host name in the simulation, and node name in the cluster.
    pub name: String,
    /// Names of other nodes configured as its endpoints.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// Hosts present in its state directory before it starts.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Whether its listener hands out a connection accepted while close was
    /// being requested (the seed PR's race), once.
    #[serde(default)]
    pub accept_after_close: bool,
}

/// When to call Stop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopSpec {
    /// The node.
    pub node: String,
    /// Simulated milliseconds from the start.
    pub at_ms: u64,
}

/// When to start the stopped node again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartSpec {
    /// Simulated milliseconds from the start (after Stop returned).
    pub at_ms: u64,
}

/// One more Stop of the stopped node, and maybe one more start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cycle {
    /// When Stop is called again (after the previous start).
    pub stop_ms: u64,
    /// When the node starts again (after this Stop); never if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_ms: Option<u64>,
}

/// An operation of an HTTP client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// `PUT /v1/objects/hosts/<host>`.
    Create { host: String },
    /// `POST /v1/objects/hosts` over several hosts at once, setting `vars.v`.
    Modify { hosts: Vec<String> },
    /// `DELETE /v1/objects/hosts/<host>?cascade=1`.
    Delete { host: String },
    /// `POST /v1/actions/process-check-result` for a host.
    CheckResult { host: String, exit_status: i64 },
    /// `GET /v1/objects/hosts`.
    Query,
    /// `DELETE /v1/objects/hosts?cascade=1` over several hosts at once.
    DeleteMany { hosts: Vec<String> },
    /// `POST /v1/actions/acknowledge-problem` over several hosts at once
    /// (a host that is UP or already acknowledged answers 409).
    Acknowledge { hosts: Vec<String> },
    /// `POST /v1/actions/remove-acknowledgement` over several hosts at once.
    RemoveAcknowledgement { hosts: Vec<String> },
    /// `POST /v1/actions/add-comment` over several hosts at once.
    AddComment { hosts: Vec<String> },
    /// `POST /v1/actions/remove-comment` over several hosts at once: every
    /// comment of each (a host without comments answers 200 too).
    RemoveComment { hosts: Vec<String> },
    /// `POST /v1/objects/hosts` with a `filter` matching `hosts` (those that
    /// exist), setting `vars.v`.
    ModifyByFilter { hosts: Vec<String> },
    /// `DELETE /v1/objects/hosts?cascade=1` with a `filter` matching `hosts`.
    DeleteByFilter { hosts: Vec<String> },
    /// `PUT /v1/objects/services/<service>` (`host!name`).
    CreateService { service: String },
    /// `POST /v1/objects/services/<service>`, setting `vars.v`.
    ModifyService { service: String },
    /// `DELETE /v1/objects/services/<service>?cascade=1`.
    DeleteService { service: String },
}

/// Something that talks to a node. The actors in `crate::actors` run these
/// very types, and the fuzzer generates them: one description of an actor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// Sends `ops` in order (repeated `repeat` times), `interval_ms` apart.
    HttpClient(HttpClient),
    /// A cluster peer: connects, sends Hello, then check results with `ts`.
    ClusterPeer(ClusterPeer),
    /// Sends half an HTTP request, then nothing.
    HalfRequest(Misbehaving),
    /// Connects and never sends a byte.
    SilentConnection(Misbehaving),
    /// Sends one request on a keep-alive connection, then stays idle.
    IdleKeepAlive(Misbehaving),
    /// A cluster peer with an identity no node knows: sends its Hello, then
    /// reads whatever comes until the node closes the connection.
    AnonymousPeer(Misbehaving),
    /// A cluster peer whose certificate our CA signed (in a TLS world) for
    /// a name no node has as an endpoint: it sends its Hello, then holds
    /// its socket unread for 3 s (no answer to the node's close_notify)
    /// and closes it.
    UnknownEndpoint(Misbehaving),
    /// Subscribes to `/v1/events` and reads one line every `read_every_ms`.
    EventSubscriber(EventSubscriber),
    /// Pipelines modifications on one connection and reads nothing for a while.
    SlowReader(SlowReader),
}

/// An HTTP client with a list of ops.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpClient {
    /// Unique actor name; request ids start with it.
    pub name: String,
    /// The node it talks to.
    pub node: String,
    /// One connection for all requests, or a new one per request.
    #[serde(default)]
    pub keep_alive: bool,
    /// When it starts.
    pub start_ms: u64,
    /// Pause between requests.
    #[serde(default)]
    pub interval_ms: u64,
    /// How many times to go through `ops`.
    #[serde(default = "one")]
    pub repeat: u32,
    /// What it sends.
    pub ops: Vec<Op>,
}

/// A cluster peer configured as an endpoint of its node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterPeer {
    /// Unique actor name, and the identity it presents.
    pub name: String,
    /// The node it connects to.
    pub node: String,
    /// When it connects.
    pub start_ms: u64,
    /// How many check results it sends, `interval_ms` apart.
    pub results: u32,
    /// Pause between results.
    #[serde(default)]
    pub interval_ms: u64,
    /// The host the results are for.
    pub host: String,
    /// Whether it reads what the node sends; one that doesn't fills the window.
    #[serde(default = "yes")]
    pub reads: bool,
}

/// A connection that misbehaves from `at_ms` on (how, its [`Actor`] variant says).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Misbehaving {
    /// Unique actor name.
    pub name: String,
    /// The node it connects to.
    pub node: String,
    /// When it connects.
    pub at_ms: u64,
}

/// A subscriber to `/v1/events` that reads slowly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSubscriber {
    /// Unique actor name.
    pub name: String,
    /// The node it subscribes at.
    pub node: String,
    /// When it subscribes.
    pub at_ms: u64,
    /// Pause before each read of one chunk.
    pub read_every_ms: u64,
}

/// Pipelines `requests` modifications of `host` on one connection and reads
/// nothing until `read_after_ms`, so the node's writes fill the window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowReader {
    /// Unique actor name; request ids start with it.
    pub name: String,
    /// The node it talks to.
    pub node: String,
    /// When it connects.
    pub at_ms: u64,
    /// The host it modifies.
    pub host: String,
    /// How many requests it pipelines.
    pub requests: u32,
    /// When it starts reading.
    pub read_after_ms: u64,
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

/// The `name` field of whichever kind `actor` is, by reference or mutable
/// reference as `actor` is borrowed: every kind has one.
macro_rules! actor_name {
    ($actor:expr) => {
        match $actor {
            Actor::HttpClient(HttpClient { name, .. })
            | Actor::ClusterPeer(ClusterPeer { name, .. })
            | Actor::HalfRequest(Misbehaving { name, .. })
            | Actor::SilentConnection(Misbehaving { name, .. })
            | Actor::IdleKeepAlive(Misbehaving { name, .. })
            | Actor::AnonymousPeer(Misbehaving { name, .. })
            | Actor::UnknownEndpoint(Misbehaving { name, .. })
            | Actor::EventSubscriber(EventSubscriber { name, .. })
            | Actor::SlowReader(SlowReader { name, .. }) => name,
        }
    };
}

impl Actor {
    /// The actor's name.
    pub fn name(&self) -> &str {
        actor_name!(self)
    }

    /// The actor's name, to change it.
    pub fn name_mut(&mut self) -> &mut String {
        actor_name!(self)
    }
}

/// A fault injected at a given time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Holds messages between `a` and `b` from `at_ms` until `until_ms`.
    Hold { a: String, b: String, at_ms: u64, until_ms: u64 },
    /// Partitions `a` from `b` from `at_ms` until `until_ms`.
    Partition { a: String, b: String, at_ms: u64, until_ms: u64 },
    /// Sets the latency between `a` and `b` from `at_ms` on.
    Latency { a: String, b: String, at_ms: u64, ms: u64 },
    /// Crashes `node` at `at_ms` (its sockets drop; its unsynced writes are lost).
    Crash { node: String, at_ms: u64 },
    /// Crashes `node` at `at_ms` and starts it again at once on what its
    /// state directory kept.
    Bounce { node: String, at_ms: u64 },
    /// Cuts `node`'s power at `at_ms`: a crash in which its state directory
    /// loses what was not flushed to disk; it starts again at once.
    PowerLoss { node: String, at_ms: u64 },
}

/// The verdict a scenario must produce.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case", deny_unknown_fields)]
pub enum Expect {
    /// No oracle fires.
    Pass,
    /// This invariant (at least) is violated.
    Fail { invariant: Invariant },
}

/// Why a scenario file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario '{path}': {source}")]
    Io { path: String, source: std::io::Error },
    /// The file is not a valid scenario.
    #[error("scenario '{path}' is invalid: {reason}")]
    Invalid { path: String, reason: String },
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let p = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| ScenarioError::Io { path: p.clone(), source })?;
        let invalid = |reason: String| ScenarioError::Invalid { path: p.clone(), reason };
        let s: Scenario = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        s.validate().map_err(invalid)?;
        Ok(s)
    }

    /// The scenario as a pretty JSON file.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// Checks the references between parts.
    pub fn validate(&self) -> Result<(), String> {
        if self.version != FORMAT_VERSION {
            return Err(format!("version {} is not {FORMAT_VERSION}", self.version));
        }
        if self.tick_ms == 0 || self.duration_ms == 0 {
            return Err("tick_ms and duration_ms must be positive".into());
        }
        let node = |n: &str| self.nodes.iter().any(|x| x.name == n);
        if !node(&self.stop.node) {
            return Err(format!("stop names unknown node '{}'", self.stop.node));
        }
        for n in &self.nodes {
            if let Some(e) = n.endpoints.iter().find(|e| !node(e) || *e == &n.name) {
                return Err(format!("node '{}' has unknown endpoint '{e}'", n.name));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for a in &self.actors {
            if !names.insert(a.name()) || node(a.name()) || a.name() == crate::world::SHARED_HOST {
                return Err(format!("actor name '{}' is not unique", a.name()));
            }
        }
        if let Some(r) = &self.restart {
            if r.at_ms <= self.stop.at_ms {
                return Err("restart must come after stop".into());
            }
        }
        self.validate_cycles()
    }

    /// Each cycle's Stop comes after the start before it, and its restart after it.
    fn validate_cycles(&self) -> Result<(), String> {
        let mut started = match (&self.restart, self.cycles.is_empty()) {
            (_, true) => return Ok(()),
            (Some(r), false) => r.at_ms,
            (None, false) => return Err("cycles need a restart before them".into()),
        };
        for (i, c) in self.cycles.iter().enumerate() {
            if c.stop_ms <= started {
                return Err(format!("cycle {i} must stop after the start before it"));
            }
            match c.restart_ms {
                Some(r) if r > c.stop_ms => started = r,
                Some(_) => return Err(format!("cycle {i} must restart after its stop")),
                None if i + 1 < self.cycles.len() => {
                    return Err(format!("cycle {i} does not restart, so no cycle may follow it"))
                }
                None => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_actor_reads_as_its_kind_and_fields_and_a_misspelt_field_is_refused() {
        let peer = serde_json::json!({
            "kind": "cluster_peer", "name": "p", "node": "api", "start_ms": 5, "results": 3, "host": "h1"
        });
        let actor: Actor = serde_json::from_value(peer).expect("a valid peer");
        let (name, node, host) = ("p".to_string(), "api".to_string(), "h1".to_string());
        let expected = ClusterPeer { name, node, start_ms: 5, results: 3, interval_ms: 0, host, reads: true };
        assert_eq!(actor, Actor::ClusterPeer(expected));
        let written = serde_json::to_value(&actor).expect("serialisable");
        assert_eq!(written["kind"], "cluster_peer", "the kind tag is written back: {written}");
        let misspelt = serde_json::json!({"kind": "half_request", "name": "x", "node": "api", "at": 1});
        let err = serde_json::from_value::<Actor>(misspelt).expect_err("a misspelt key is an error");
        assert!(err.to_string().contains("unknown field `at`"), "{err}");
    }
}
