//! The world builder: turns a [`Scenario`] into a turmoil simulation of
//! nodes running the unchanged stack and of actors talking to them, runs it,
//! and returns the [`RunRecord`] the oracles read.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quiesce::config::{ApiUser, Config, EndpointConfig};
use quiesce::listener::{ApiListener, StartError};
use quiesce::probe::Probe;
use quiesce::state::{self, StateError, StateFile};
use quiesce::store::{Mutation, ObjectType, Store, StoreSnapshot};

use crate::actors::conn::ActorTls;
use crate::actors::http::{self as http_actor, sleep_until_ms, PORT};
use crate::actors::peer;
use crate::env::{Crashes, HostFiles, SimEnv};
use crate::harness_fault;
use crate::lock::lock;
use crate::oracles::cluster::{applied_result, replay_judged_since};
use crate::oracles::tasks::TASKS_END_MS;
use crate::record::{AppliedDelay, Event, Incarnation, RunRecord, TraceLine};
use crate::recorder::{now_ms, PeerReplay, Recorder};
use crate::scenario::{Actor, ClusterPeer, Fault, NodeSpec, PanicSite, Scenario};

/// Every simulated node persists this often (acknowledgements follow persists).
/// Short, so that runs are short: a node started again is watched for one
/// interval, and a stopped one for one interval past the longest timer's.
pub const PERSIST_INTERVAL_MS: u64 = 1_000;

/// Every simulated node acknowledges check results to its peers this often.
pub const LOG_POSITION_INTERVAL_MS: u64 = 1_000;

/// The state directory inside every simulated node.
const STATE_DIR: &str = "/var/lib/quiesce";

/// One node's incarnations and the stores behind them.
#[derive(Default)]
struct NodeLog {
    incarnations: Vec<Incarnation>,
    stores: Vec<Store>,
    done: bool,
    /// The host's runtime once the node's schedule is done, asked by the
    /// driver whether any task of the stack is still alive there.
    runtime: Option<tokio::runtime::Handle>,
    /// The host crashed and is not to be restarted.
    down: bool,
    /// When the node started again after a Stop, some task was still alive
    /// on its runtime: an earlier incarnation's, which may still be heard.
    leak_at_restart: bool,
    /// The node's state directory, which a power loss reaches.
    files: HostFiles,
}

impl NodeLog {
    /// Whether nothing of the stack is left on this node to break the
    /// silence after a Stop: no Stop returned on it, or its host is down for
    /// good, or its schedule is done and its runtime has no task left alive
    /// (the stack spawns every task on the runtime; the node's own life runs
    /// beside them on turmoil's local set and is not counted).
    fn quiet(&self) -> bool {
        let stopped = self.incarnations.iter().any(|i| i.stop_returned_ms.is_some());
        if !stopped || self.down {
            return true;
        }
        if self.leak_at_restart {
            return false;
        }
        // Running again: what ran before had all ended when it restarted.
        let idle = |h: &tokio::runtime::Handle| h.metrics().num_alive_tasks() == 0;
        self.running() || (self.done && self.runtime.as_ref().is_some_and(idle))
    }

    /// Whether the node's current incarnation is up and not stopped.
    fn running(&self) -> bool {
        !self.down && self.incarnations.last().is_some_and(|i| i.stop_returned_ms.is_none())
    }
}

type Shared<T> = Arc<Mutex<T>>;

/// Everything one node's host closure needs; cloned into each (re)start.
#[derive(Clone)]
struct NodeCtx {
    spec: NodeSpec,
    scenario: Arc<Scenario>,
    files: HostFiles,
    log: Shared<NodeLog>,
    rec: Recorder,
    crashes: Crashes,
}

impl NodeCtx {
    fn config(&self) -> Config {
        let s = &self.scenario;
        let mut endpoints: Vec<EndpointConfig> = self
            .spec
            .endpoints
            .iter()
            .map(|e| EndpointConfig { name: e.clone(), host: e.clone(), port: PORT })
            .collect();
        for a in &s.actors {
            if let Actor::ClusterPeer(ClusterPeer { name, node, .. }) = a {
                if node == &self.spec.name {
                    let host = host_of(s, name);
                    endpoints.push(EndpointConfig { name: name.clone(), host, port: PORT });
                }
            }
        }
        Config {
            listen: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT)],
            state_dir: PathBuf::from(STATE_DIR),
            api_users: vec![ApiUser {
                name: "root".into(),
                password: "icinga".into(),
                permissions: vec!["*".into()],
            }],
            node_name: self.spec.name.clone(),
            endpoints,
            journal_capacity: None,
            bugs: s.bugs.iter().copied().collect(),
            tls: s.tls.then(|| crate::pki::material(s.seed, &self.spec.name)),
            // Acknowledgements follow persists; short intervals keep runs short.
            timings: quiesce::config::Timings {
                persist_interval: Duration::from_millis(PERSIST_INTERVAL_MS),
                log_position_interval: Duration::from_millis(LOG_POSITION_INTERVAL_MS),
                ..Default::default()
            },
            ..Config::default()
        }
    }

    /// A new environment whose probes go to incarnation `index` and the trace.
    fn env(&self, index: usize) -> SimEnv {
        let (log, rec, host) = (self.log.clone(), self.rec.clone(), self.spec.name.clone());
        let sink = move |p: Probe| {
            let at = now_ms();
            {
                let mut log = lock(&log);
                let Some(inc) = log.incarnations.get_mut(index) else { return };
                // A crashed process does nothing: what its tasks report while
                // the crash drops them (in an order tokio does not fix) is not
                // something it did.
                if inc.crashed || inc.host_down_ms.is_some() {
                    return;
                }
                inc.probes.push((at, p.clone()));
            }
            // Writes are many and the oracles read them from the probes;
            // the trace keeps the events a reader follows.
            if !matches!(p, Probe::JsonRpcWrite { .. } | Probe::FileWritten { .. }) {
                rec.event_at(at, &host, Event::Probe(p));
            }
        };
        SimEnv::new(
            &self.spec.name,
            self.scenario.seed,
            &self.scenario.chaos,
            self.files.clone(),
            Arc::new(sink),
        )
        .with_accept_after_close(self.spec.accept_after_close)
        .with_delay_log(self.delay_log(index))
        .with_crashes(self.crashes.clone())
    }

    /// Where incarnation `index` records the chaos delays it was given.
    fn delay_log(&self, index: usize) -> crate::env::DelaySink {
        let log = self.log.clone();
        Arc::new(move |point, ms| {
            let at_ms = now_ms();
            if let Some(inc) = lock(&log).incarnations.get_mut(index) {
                inc.delays.push(AppliedDelay { at_ms, point, ms });
            }
        })
    }

    /// Writes the scenario's hosts into the state directory, through an
    /// environment of its own: no chaos rule delays or crashes the world's
    /// setup, nor counts it as a hit.
    async fn seed_state(&self) {
        let env = SimEnv::new(&self.spec.name, self.scenario.seed, &[], self.files.clone(), Arc::new(|_| {}));
        if self.spec.hosts.is_empty() {
            return;
        }
        // A host Icinga would accept: the API refuses one without a check command.
        let attrs: serde_json::Map<String, serde_json::Value> =
            [("check_command".to_string(), "dummy".into())].into_iter().collect();
        let hosts = self.spec.hosts.iter().map(|h| Mutation::Create {
            otype: ObjectType::Host,
            name: h.clone(),
            attrs: attrs.clone(),
        });
        let Ok(store) = Store::seed(hosts, crate::env::epoch()) else {
            return self.rec.line(&self.spec.name, "the scenario's hosts are not valid host names");
        };
        let file = StateFile { store, ..StateFile::default() };
        let file = StateFile { version: state::FORMAT_VERSION, ..file };
        let _ = state::save(&env, &PathBuf::from(STATE_DIR), &file).await;
    }

    async fn start(&self) -> Option<ApiListener<SimEnv>> {
        let index = {
            let mut log = lock(&self.log);
            (log.done, log.runtime) = (false, None);
            if tokio::runtime::Handle::current().metrics().num_alive_tasks() > 0 {
                log.leak_at_restart = true;
            }
            log.incarnations.push(Incarnation { started_ms: now_ms(), ..Incarnation::default() });
            log.incarnations.len() - 1
        };
        if index == 0 {
            self.seed_state().await;
        }
        let mut started = ApiListener::start(self.env(index), self.config()).await;
        if let Err(StartError::State(StateError::Corrupt { .. })) = &started {
            // As the error advises: the corrupt file was kept aside, and a
            // second start begins with an empty state (which the oracles judge).
            self.rec.line(&self.spec.name, "start found a corrupt state file; starting again");
            started = ApiListener::start(self.env(index), self.config()).await;
        }
        match started {
            Ok(l) => {
                let mut log = lock(&self.log);
                log.stores.push(l.shared().store().clone());
                if let Some(inc) = log.incarnations.get_mut(index) {
                    inc.state_at_start = Some(l.shared().store().snapshot());
                }
                Some(l)
            }
            Err(e) => {
                self.rec.line(&self.spec.name, format!("start failed: {e}"));
                None
            }
        }
    }

    fn with_current<R>(&self, f: impl FnOnce(&mut Incarnation) -> R) -> Option<R> {
        lock(&self.log).incarnations.last_mut().map(f)
    }

    async fn stop(&self, listener: &ApiListener<SimEnv>) {
        self.with_current(|i| i.stop_called_ms = Some(now_ms()));
        if let Err(e) = listener.stop().await {
            self.rec.line(&self.spec.name, format!("stop: {e}"));
        }
        let snapshot: StoreSnapshot = listener.shared().store().snapshot();
        self.with_current(|i| {
            i.stop_returned_ms = Some(now_ms());
            i.state_at_stop = Some(snapshot);
        });
        let limit = Duration::from_millis(TASKS_END_MS + 1_000);
        if tokio::time::timeout(limit, listener.wait_for_tasks()).await.is_ok() {
            self.with_current(|i| i.tasks_ended_ms = Some(now_ms()));
        }
    }

    /// The node's stops and restarts: `(stop, restart)` in time order.
    fn schedule(&self) -> Vec<(u64, Option<u64>)> {
        let s = &self.scenario;
        if s.stop.node != self.spec.name {
            return vec![];
        }
        let mut out = vec![(s.stop.at_ms, s.restart.as_ref().map(|r| r.at_ms))];
        out.extend(s.cycles.iter().map(|c| (c.stop_ms, c.restart_ms)));
        out
    }

    /// The node's life: start, then the stops and restarts of its schedule
    /// still ahead (a node started again by a crash goes on with the next
    /// Stop after its start, and is already running for the restarts before).
    async fn main(self) {
        let Some(mut listener) = self.start().await else { return self.finish() };
        let started = now_ms();
        for (stop_ms, restart_ms) in self.schedule().into_iter().filter(|(stop, _)| *stop >= started) {
            sleep_until_ms(stop_ms).await;
            self.stop(&listener).await;
            let Some(at) = restart_ms else { return self.finish() };
            sleep_until_ms(at).await;
            match self.start().await {
                Some(next) => listener = next,
                None => return self.finish(),
            }
        }
        self.finish();
        // The listener lives as long as the host.
        std::future::pending::<()>().await;
        drop(listener);
    }

    fn finish(&self) {
        let mut log = lock(&self.log);
        (log.done, log.runtime) = (true, Some(tokio::runtime::Handle::current()));
    }
}

/// Runs a scenario to its end and returns what happened.
pub fn run(scenario: &Scenario) -> RunRecord {
    harness_fault::check(scenario, PanicSite::Build);
    crate::env::reseed_tls_random(scenario.seed);
    let scenario = Arc::new(scenario.clone());
    let rec = Recorder::default();
    let mut sim = build_sim(&scenario);
    let crashes = Crashes::default();
    let logs = add_nodes(&mut sim, &scenario, &rec, &crashes);
    add_actors(&mut sim, &scenario, &rec);
    let mut sim_errors = Vec::new();
    let end_ms = drive(&mut sim, &scenario, (&logs, &rec), &crashes, &mut sim_errors);
    collect(&scenario, rec, logs, sim_errors, end_ms)
}

fn build_sim(s: &Scenario) -> turmoil::Sim<'static> {
    turmoil::Builder::new()
        .rng_seed(s.seed)
        .tick_duration(Duration::from_millis(s.tick_ms))
        .simulation_duration(Duration::from_millis(s.duration_ms + 60_000))
        .epoch(crate::env::epoch())
        .tcp_capacity(s.tcp_capacity.unwrap_or(64).max(8))
        .build()
}

fn add_nodes(
    sim: &mut turmoil::Sim<'static>,
    s: &Arc<Scenario>,
    rec: &Recorder,
    crashes: &Crashes,
) -> BTreeMap<String, Shared<NodeLog>> {
    let mut logs = BTreeMap::new();
    for spec in &s.nodes {
        let log: Shared<NodeLog> = Arc::default();
        let ctx = NodeCtx {
            spec: spec.clone(),
            scenario: s.clone(),
            files: lock(&log).files.clone(),
            log: log.clone(),
            rec: rec.clone(),
            crashes: crashes.clone(),
        };
        sim.host(spec.name.as_str(), move || {
            let ctx = ctx.clone();
            async move {
                let (s, rec, name) = (ctx.scenario.clone(), ctx.rec.clone(), ctx.spec.name.clone());
                futures_util::future::join(ctx.main(), harness_fault::on_node(&s, &rec, &name)).await;
                std::future::pending::<()>().await;
                Ok(())
            }
        });
        logs.insert(spec.name.clone(), log);
    }
    logs
}

/// The host that runs actors nobody aims a fault at: sharing one host keeps
/// the per-tick cost of a world close to that of two hosts.
pub const SHARED_HOST: &str = "clients";

/// The simulated host an actor runs on: its own if a fault names it.
pub fn host_of(s: &Scenario, actor: &str) -> String {
    let faulted = s.faults.iter().any(|f| match f {
        Fault::Hold { a, b, .. } | Fault::Partition { a, b, .. } | Fault::Latency { a, b, .. } => {
            a == actor || b == actor
        }
        Fault::Crash { node, .. } | Fault::Bounce { node, .. } | Fault::PowerLoss { node, .. } => {
            node == actor
        }
    });
    if faulted {
        actor.to_string()
    } else {
        SHARED_HOST.to_string()
    }
}

type ActorFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

fn actor_future(a: &Actor, rec: Recorder, end: u64, tls: Option<Arc<ActorTls>>) -> ActorFuture {
    use http_actor::Misbehaviour;
    let misbehave = |m, how| Box::pin(http_actor::misbehave(rec.clone(), m, how, end, tls.clone()));
    match a.clone() {
        Actor::HttpClient(c) => Box::pin(http_actor::client(rec, c, tls)),
        Actor::ClusterPeer(p) => Box::pin(peer::peer(rec, p, end, tls)),
        Actor::HalfRequest(m) => misbehave(m, Misbehaviour::HalfRequest),
        Actor::SilentConnection(m) => misbehave(m, Misbehaviour::Silent),
        Actor::AnonymousPeer(m) => misbehave(m, Misbehaviour::AnonymousPeer),
        Actor::UnknownEndpoint(m) => misbehave(m, Misbehaviour::UnknownEndpoint),
        Actor::IdleKeepAlive(m) => misbehave(m, Misbehaviour::IdleKeepAlive),
        Actor::EventSubscriber(e) => Box::pin(http_actor::event_subscriber(rec, e, end, tls)),
        Actor::SlowReader(r) => Box::pin(http_actor::slow_reader(rec, r, end, tls)),
    }
}

/// What actors connect with in a TLS world: the run's CA, and a
/// certificate for each cluster peer and each unknown endpoint.
fn actor_tls(s: &Scenario) -> Option<Arc<ActorTls>> {
    let peers: Vec<&str> = s
        .actors
        .iter()
        .filter_map(|a| match a {
            Actor::ClusterPeer(p) => Some(p.name.as_str()),
            Actor::UnknownEndpoint(m) => Some(m.name.as_str()),
            _ => None,
        })
        .collect();
    s.tls.then(|| Arc::new(ActorTls::new(s.seed, &peers)))
}

fn add_actors(sim: &mut turmoil::Sim<'static>, s: &Arc<Scenario>, rec: &Recorder) {
    let mut hosts: BTreeMap<String, Vec<ActorFuture>> = BTreeMap::new();
    let tls = actor_tls(s);
    for a in &s.actors {
        let fut = actor_future(a, rec.clone(), s.duration_ms, tls.clone());
        hosts.entry(host_of(s, a.name())).or_default().push(fut);
    }
    if let Some(planted) = harness_fault::actor(s) {
        hosts.entry(SHARED_HOST.to_string()).or_default().push(Box::pin(planted));
    }
    for (host, futs) in hosts {
        sim.client(host.as_str(), async move {
            futures_util::future::join_all(futs).await;
            Ok(())
        });
    }
}

/// The partitions and holds of a scenario as the driver applies them: each
/// begins and ends at its time. (A client host of their own would cost a
/// host's tick on every step of the run.)
fn link_events(s: &Scenario) -> Vec<(u64, Fault, bool)> {
    let mut events: Vec<(u64, Fault, bool)> = Vec::new();
    for f in &s.faults {
        if let Fault::Hold { at_ms, until_ms, .. } | Fault::Partition { at_ms, until_ms, .. } = f {
            events.push((*at_ms, f.clone(), true));
            events.push((*until_ms, f.clone(), false));
        }
    }
    // Stable: a fault that ends when another begins keeps the scenario's order.
    events.sort_by_key(|(at, _, _)| *at);
    events
}

fn apply_link_fault(sim: &turmoil::Sim<'static>, f: &Fault, begin: bool) {
    match (f, begin) {
        (Fault::Hold { a, b, .. }, true) => sim.hold(a.as_str(), b.as_str()),
        (Fault::Hold { a, b, .. }, false) => sim.release(a.as_str(), b.as_str()),
        (Fault::Partition { a, b, .. }, true) => sim.partition(a.as_str(), b.as_str()),
        (Fault::Partition { a, b, .. }, false) => sim.repair(a.as_str(), b.as_str()),
        (Fault::Latency { .. } | Fault::Crash { .. } | Fault::Bounce { .. } | Fault::PowerLoss { .. }, _) => {
        }
    }
}

/// Faults the driver applies between steps, because only `Sim` can.
enum DriverFault {
    Crash(String),
    Bounce(String),
    PowerLoss(String),
    Latency(String, String, u64),
}

fn driver_faults(s: &Scenario) -> Vec<(u64, DriverFault)> {
    let mut out: Vec<(u64, DriverFault)> = s
        .faults
        .iter()
        .filter_map(|f| match f {
            Fault::Crash { node, at_ms } => Some((*at_ms, DriverFault::Crash(node.clone()))),
            Fault::Bounce { node, at_ms } => Some((*at_ms, DriverFault::Bounce(node.clone()))),
            Fault::PowerLoss { node, at_ms } => Some((*at_ms, DriverFault::PowerLoss(node.clone()))),
            Fault::Latency { a, b, at_ms, ms } => {
                Some((*at_ms, DriverFault::Latency(a.clone(), b.clone(), *ms)))
            }
            _ => None,
        })
        .collect();
    out.sort_by_key(|(at, _)| *at);
    out
}

fn apply_driver_fault(
    sim: &mut turmoil::Sim<'static>,
    f: DriverFault,
    logs: &BTreeMap<String, Shared<NodeLog>>,
    s: &Scenario,
) {
    match f {
        DriverFault::Crash(node) | DriverFault::Bounce(node) | DriverFault::PowerLoss(node)
            if !logs.contains_key(&node) =>
        {
            // Not a node: crash the actor's host; nothing to record.
            sim.crash(node.as_str());
        }
        DriverFault::PowerLoss(node) => {
            mark_crashed(logs, &node, sim.elapsed().as_millis() as u64);
            if let Some(log) = logs.get(&node) {
                lock(log).files.power_loss();
            }
            quietly(sim, s, &node, |sim| sim.bounce(node.as_str()));
            mark_host(logs, &node, false);
        }
        DriverFault::Bounce(node) => {
            mark_crashed(logs, &node, sim.elapsed().as_millis() as u64);
            quietly(sim, s, &node, |sim| sim.bounce(node.as_str()));
            mark_host(logs, &node, false);
        }
        DriverFault::Crash(node) => {
            mark_crashed(logs, &node, sim.elapsed().as_millis() as u64);
            quietly(sim, s, &node, |sim| sim.crash(node.as_str()));
            mark_host(logs, &node, true);
        }
        DriverFault::Latency(a, b, ms) => {
            sim.set_link_latency(a.as_str(), b.as_str(), Duration::from_millis(ms))
        }
    }
}

/// After a crash: a host down for good is done (its schedule ends with
/// it); one that restarts is not done until its new life says so.
fn mark_host(logs: &BTreeMap<String, Shared<NodeLog>>, node: &str, down_for_good: bool) {
    if let Some(log) = logs.get(node) {
        let mut log = lock(log);
        (log.done, log.down, log.runtime) = (down_for_good, down_for_good, None);
    }
}

/// Marks the node's running incarnation crashed. One whose Stop had
/// returned was not running: the crash (a power loss, say) must not excuse
/// it from keeping what Stop persisted.
/// Crashes a node's host with `crash` so that the crash sends nothing: tokio
/// drops a runtime's tasks in an order that depends on process-wide task ids,
/// and the resets their sockets would send would reach the peers in that
/// order, different from one run to the next in the same process. So the
/// links from the node are cut for the instant of the crash (what it had in
/// flight is lost with it, as at a power cut), except links a fault of the
/// scenario holds or partitions now, which are left as they are; peers learn
/// of the crash when they next send.
fn quietly(
    sim: &mut turmoil::Sim<'static>,
    s: &Scenario,
    node: &str,
    crash: impl FnOnce(&mut turmoil::Sim<'static>),
) {
    let now = sim.elapsed().as_millis() as u64;
    let faulted = |other: &str| {
        s.faults.iter().any(|f| match f {
            Fault::Hold { a, b, at_ms, until_ms } | Fault::Partition { a, b, at_ms, until_ms } => {
                (a == node && b == other || a == other && b == node) && (*at_ms..*until_ms).contains(&now)
            }
            _ => false,
        })
    };
    let others: Vec<String> = hosts(s).into_iter().filter(|h| h != node && !faulted(h)).collect();
    for h in &others {
        sim.partition_oneway(node, h.as_str());
    }
    crash(sim);
    for h in &others {
        sim.repair_oneway(node, h.as_str());
    }
}

/// Every host of the world: nodes and actors' hosts.
fn hosts(s: &Scenario) -> Vec<String> {
    let mut out: std::collections::BTreeSet<String> = s.nodes.iter().map(|n| n.name.clone()).collect();
    out.extend(s.actors.iter().map(|a| host_of(s, a.name())));
    if harness_fault::actor(s).is_some() {
        out.insert(SHARED_HOST.to_string());
    }
    out.into_iter().collect()
}

fn mark_crashed(logs: &BTreeMap<String, Shared<NodeLog>>, node: &str, now: u64) {
    if let Some(log) = logs.get(node) {
        if let Some(inc) = lock(log).incarnations.last_mut() {
            match inc.stop_returned_ms {
                None => inc.crashed = true,
                Some(_) => inc.host_down_ms = inc.host_down_ms.or(Some(now)),
            }
        }
    }
}

/// Applies the crashes chaos points asked for during the last step.
fn apply_crashes(
    sim: &mut turmoil::Sim<'static>,
    crashes: &Crashes,
    logs: &BTreeMap<String, Shared<NodeLog>>,
    s: &Scenario,
) {
    for c in crashes.take() {
        let f = match (c.power_loss, c.restart) {
            (true, true) => DriverFault::PowerLoss(c.host),
            (true, false) => {
                // Power lost and not restored: the writes are lost, the host stays down.
                mark_crashed(logs, &c.host, sim.elapsed().as_millis() as u64);
                if let Some(log) = logs.get(&c.host) {
                    lock(log).files.power_loss();
                }
                DriverFault::Crash(c.host)
            }
            (false, true) => DriverFault::Bounce(c.host),
            (false, false) => DriverFault::Crash(c.host),
        };
        apply_driver_fault(sim, f, logs, s);
    }
}

/// Steps the simulation until its duration, or until every node is done and
/// either every actor has ended or every oracle's window has closed
/// ([`crate::oracles::settle_ms`]), applying crashes and latency on
/// schedule. Returns the simulated end in ms.
fn drive(
    sim: &mut turmoil::Sim<'static>,
    s: &Scenario,
    (logs, rec): (&BTreeMap<String, Shared<NodeLog>>, &Recorder),
    crashes: &Crashes,
    errors: &mut Vec<String>,
) -> u64 {
    let mut faults = driver_faults(s);
    let mut links = link_events(s);
    let end = Duration::from_millis(s.duration_ms);
    let mut settled_at: Option<u64> = None;
    // What is left to settle is read every SETTLE_CHECK_MS, not every tick:
    // reading the journals costs more than a tick.
    let (mut need, mut next_check) = (u64::MAX, 0);
    while sim.elapsed() < end {
        let now = sim.elapsed().as_millis() as u64;
        while faults.first().is_some_and(|(at, _)| *at <= now) {
            let (_, f) = faults.remove(0);
            apply_driver_fault(sim, f, logs, s);
        }
        while links.first().is_some_and(|(at, _, _)| *at <= now) {
            let (_, f, begin) = links.remove(0);
            apply_link_fault(sim, &f, begin);
        }
        let nodes_done = logs.values().all(|l| lock(l).done);
        // Settling waits for the faults still to come: a crash later on is
        // part of the run.
        if nodes_done && faults.is_empty() {
            let since = *settled_at.get_or_insert(now);
            if now >= next_check {
                need = crate::oracles::settle_ms(s, now, settling(s, logs, rec));
                next_check = now + SETTLE_CHECK_MS;
            }
            if now >= since.saturating_add(need) {
                break;
            }
        } else {
            (settled_at, next_check) = (None, 0);
        }
        let stepped = sim.step();
        apply_crashes(sim, crashes, logs, s);
        match stepped {
            // A crash or a power loss still ahead may undo what looks finished.
            Ok(all_clients_done)
                if all_clients_done && nodes_done && faults.is_empty() && links.is_empty() =>
            {
                break
            }
            Ok(_) => {}
            Err(e) => {
                errors.push(e.to_string());
                break;
            }
        }
    }
    sim.elapsed().as_millis() as u64
}

/// How often a settling run reads what its oracles still wait for.
const SETTLE_CHECK_MS: u64 = 20;

/// What the oracles' windows depend on, read from the nodes now.
fn settling(
    s: &Scenario,
    logs: &BTreeMap<String, Shared<NodeLog>>,
    rec: &Recorder,
) -> crate::oracles::Settling {
    let judged_since = logs.get(&s.stop.node).and_then(|log| replay_judged_since(&lock(log).incarnations));
    let links_cut_until_ms = s
        .faults
        .iter()
        .map(|f| match f {
            Fault::Hold { until_ms, .. } | Fault::Partition { until_ms, .. } => *until_ms,
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    // A replay is played out once every peer of the node has come back to
    // it (or never will) and every result sent by those that came back is
    // applied and acknowledged: what the oracle judges, and no more.
    let replay_pending = judged_since.is_some_and(|start| {
        let links_whole = now_ms() >= links_cut_until_ms;
        let peers = s.actors.iter().filter_map(|a| match a {
            Actor::ClusterPeer(p) if p.node == s.stop.node => Some(p.name.as_str()),
            _ => None,
        });
        let stand: Vec<(&str, PeerReplay)> =
            peers.map(|p| (p, rec.peer_replay(p, start, links_whole))).collect();
        let came_back: BTreeSet<&str> =
            stand.iter().filter(|(_, r)| *r == PeerReplay::CameBack).map(|(p, _)| *p).collect();
        stand.iter().any(|(_, r)| *r == PeerReplay::Pending)
            || !peer_results_applied(s, logs, rec, &came_back)
    });
    crate::oracles::Settling {
        stopped_nodes_quiet: logs.iter().all(|(node, log)| {
            let log = lock(log);
            // What a running node still answers is no concern of the silence.
            log.quiet() && (log.running() || !rec.requests_open_to(node))
        }),
        restarted: judged_since.is_some(),
        replay_pending,
        links_cut_until_ms,
    }
}

/// Whether the stopped node has applied, in any incarnation, every check
/// result the peers that came back have written to it so far, and
/// acknowledged each to a peer that reads: the replay and its
/// acknowledgement are both explored.
fn peer_results_applied(
    s: &Scenario,
    logs: &BTreeMap<String, Shared<NodeLog>>,
    rec: &Recorder,
    came_back: &BTreeSet<&str>,
) -> bool {
    let Some(log) = logs.get(&s.stop.node) else { return true };
    let journals: Vec<_> = lock(log).stores.iter().flat_map(|store| store.journal()).collect();
    let applied: BTreeSet<(&str, u64)> =
        journals.iter().filter_map(applied_result).map(|(peer, ts)| (peer, ts.to_bits())).collect();
    let played_out = |m: &crate::record::PeerMessage| {
        applied.contains(&(m.peer.as_str(), m.ts.to_bits())) && (m.acknowledged || !m.reads)
    };
    rec.every_peer_message(|m| m.node != s.stop.node || !came_back.contains(m.peer.as_str()) || played_out(m))
}

fn collect(
    s: &Scenario,
    rec: Recorder,
    logs: BTreeMap<String, Shared<NodeLog>>,
    sim_errors: Vec<String>,
    end_ms: u64,
) -> RunRecord {
    let (requests, peer_messages, peer_sessions, connection_ends, mut trace) = rec.take();
    let nodes: BTreeMap<String, Vec<Incarnation>> = logs
        .into_iter()
        .map(|(name, log)| {
            let mut log = lock(&log);
            let stores = log.stores.clone();
            for (inc, store) in log.incarnations.iter_mut().zip(stores) {
                inc.journal = store.journal();
            }
            (name, std::mem::take(&mut log.incarnations))
        })
        .collect();
    for (name, incarnations) in &nodes {
        incarnations.iter().for_each(|inc| trace.extend(crate::trace::journal_lines(name, &inc.journal)));
    }
    RunRecord {
        scenario: s.name.clone(),
        seed: s.seed,
        nodes,
        requests,
        peer_messages,
        peer_sessions,
        connection_ends,
        trace: sorted(trace),
        sim_errors,
        end_ms,
    }
}

fn sorted(mut trace: Vec<TraceLine>) -> Vec<TraceLine> {
    // Stable: lines of the same millisecond keep the order they happened in.
    trace.sort_by_key(|l| l.at_ms);
    trace
}
