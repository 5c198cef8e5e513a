//! The node's shared context: what the listener, the protocols (`http/`,
//! `jsonrpc/`) and the timers of one node reach, and the only way they reach
//! each other. The listener owns the sockets and Stop; the protocols own
//! their connections; all of them find the store, the cluster state, the
//! gates and the registry here, so neither protocol imports the listener.
//!
//! Stop's signals and wait-group joins are split off into a [`Stopper`]
//! that only the listener holds: the protocols can watch Stop, not cause it.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures_util::FutureExt;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::env::Env;
use crate::jsonrpc::cluster::Cluster;
use crate::jsonrpc::replay::ReplayBounds;
use crate::probe::{ConnId, ConnKind, Probe};
use crate::store::Store;
use crate::waitgroup::{Guard, WaitGroup};
use crate::work::Admission;

/// A signal of Stop that the node's tasks watch; only the [`Stopper`] raises it.
#[derive(Clone, Default)]
pub(crate) struct Signal(CancellationToken);

impl Signal {
    /// Whether Stop has raised it.
    pub(crate) fn is_raised(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Completes once Stop raises it.
    pub(crate) fn raised(&self) -> WaitForCancellationFuture<'_> {
        self.0.cancelled()
    }
}

/// The state shared by the listener, its connections and its timers.
pub struct Shared<E: Env> {
    env: E,
    config: Arc<Config>,
    store: Store,
    cluster: Cluster,
    /// Work that may change state: modifying handlers, message handlers.
    work: WaitGroup,
    /// Accept loops, registrations and outgoing connection attempts.
    listeners: WaitGroup,
    /// HTTP requests between their head and their answer.
    answers: WaitGroup,
    /// Raised at Stop step 2: connections still being sniffed, and outgoing
    /// attempts, give up.
    listener_stop: Signal,
    /// Raised at Stop step 4: HTTP connections finish their request and
    /// close, idle ones close at once, event streams end.
    http_stop: Signal,
    tasks: TaskTracker,
    /// rustls's configurations, when the node speaks TLS.
    tls: Option<crate::tls::Tls>,
    started: SystemTime,
    registry: Mutex<std::collections::BTreeMap<ConnId, ConnKind>>,
    next_conn: AtomicU64,
    refused_connections: AtomicU64,
}

/// What only Stop does to a node: raise its signals and join its groups.
pub(crate) struct Stopper {
    listener_stop: CancellationToken,
    http_stop: CancellationToken,
    work: WaitGroup,
    listeners: WaitGroup,
    answers: WaitGroup,
}

impl Stopper {
    /// Step 2: connections being sniffed and outgoing attempts give up.
    pub(crate) fn stop_listening(&self) {
        self.listener_stop.cancel();
        // Closed now, joined later: whatever Stop does before the join, a
        // connection reaching registration after the acceptors closed is refused.
        self.listeners.close();
    }

    /// Step 2: waits for accept loops, registrations and attempts.
    pub(crate) async fn join_listeners(&self) {
        assert!(
            self.listener_stop.is_cancelled(),
            "Stop step 2: listeners are joined only after being told to stop"
        );
        self.listeners.join().await;
        debug_assert!(
            self.listeners.try_enter().is_none(),
            "Stop step 2: nothing joins the listener group after its join"
        );
    }

    /// Step 4: HTTP connections finish and close.
    pub(crate) fn stop_http(&self) {
        self.http_stop.cancel();
    }

    /// Step 5a: from now on gated work is refused.
    pub(crate) fn close_work(&self) {
        self.work.close();
    }

    /// Step 5b: waits for gated work in flight.
    pub(crate) async fn join_work(&self) {
        assert!(!self.work.is_lockable(), "Stop step 5b: the work group is joined only after it is closed");
        self.work.join().await;
        debug_assert_eq!(self.work.holders(), 0, "Stop step 5b: the join returned with work in flight");
    }

    /// Step 5b: waits until every HTTP request in flight has its answer.
    pub(crate) async fn join_answers(&self) {
        assert!(
            self.http_stop.is_cancelled(),
            "Stop step 5b: answers are joined only after HTTP was told to close"
        );
        self.answers.join().await;
        debug_assert!(self.answers.try_enter().is_none(), "Stop step 5b: no answer begins after the join");
    }
}

impl<E: Env> Shared<E> {
    /// A node's context, and the stopper only its listener keeps.
    pub(crate) fn new(env: E, config: Config, tls: Option<crate::tls::Tls>) -> (Self, Stopper) {
        let store = Store::new(config.journal_capacity).with_event_backlog(config.limits.event_backlog);
        let bounds = ReplayBounds::new(config.timings.log_duration, config.limits.replay_log_bytes);
        let cluster = Cluster::new(config.endpoints.iter().map(|e| e.name.as_str()), bounds);
        let (listener_stop, http_stop) = (CancellationToken::new(), CancellationToken::new());
        let (work, listeners, answers) = (WaitGroup::new(), WaitGroup::new(), WaitGroup::new());
        let stopper = Stopper {
            listener_stop: listener_stop.clone(),
            http_stop: http_stop.clone(),
            work: work.clone(),
            listeners: listeners.clone(),
            answers: answers.clone(),
        };
        let shared = Shared {
            started: env.now(),
            env,
            config: Arc::new(config),
            store,
            cluster,
            work,
            listeners,
            answers,
            listener_stop: Signal(listener_stop),
            http_stop: Signal(http_stop),
            tasks: TaskTracker::new(),
            tls,
            registry: Mutex::default(),
            next_conn: AtomicU64::new(1),
            refused_connections: AtomicU64::new(0),
        };
        (shared, stopper)
    }

    /// The world, through the seam.
    pub(crate) fn env(&self) -> &E {
        &self.env
    }

    /// TLS for connections, unless the node speaks plain TCP.
    pub(crate) fn tls(&self) -> Option<&crate::tls::Tls> {
        self.tls.as_ref()
    }

    /// The node's settings.
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// The object store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Cluster connections, replay logs and log positions.
    pub(crate) fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Names of the endpoints connected now, in name order.
    pub fn connected_endpoints(&self) -> Vec<String> {
        self.cluster.status().0
    }

    /// Places taken by anonymous (not yet identified) cluster peers.
    pub fn anonymous_places(&self) -> usize {
        self.cluster.anonymous_places()
    }

    /// What the state file would record of the cluster now.
    pub fn cluster_snapshot(&self) -> crate::state::ClusterSnapshot {
        self.cluster.snapshot()
    }

    /// When the node started.
    pub(crate) fn started(&self) -> SystemTime {
        self.started
    }

    /// Enters the work group for a change of the store; `None` once Stop's
    /// join has begun.
    pub(crate) fn admit_work(&self) -> Option<Admission> {
        Admission::enter(&self.work)
    }

    /// Whether gated work is still admitted (false from Stop's step 5a). A
    /// handler re-checks it between objects; the real gate is [`admit_work`](Self::admit_work).
    pub fn work_open(&self) -> bool {
        self.work.is_lockable()
    }

    /// Enters the listener group: an accept loop, a registration or an
    /// outgoing attempt in progress, which Stop's step 2 waits for.
    pub(crate) fn enter_listener(&self) -> Option<Guard> {
        self.listeners.try_enter()
    }

    /// Counts an HTTP request until its answer is built: Stop waits for it.
    pub(crate) fn begin_answer(&self) -> Option<Guard> {
        self.answers.try_enter()
    }

    /// Raised once the listener stops (Stop step 2).
    pub(crate) fn listener_stop(&self) -> &Signal {
        &self.listener_stop
    }

    /// Raised once HTTP connections must close (Stop step 4).
    pub(crate) fn http_stop(&self) -> &Signal {
        &self.http_stop
    }

    /// A fresh connection number.
    pub(crate) fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts a connection closed at accept for the connection cap.
    pub(crate) fn refused_connection(&self) {
        self.refused_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// How many connections were closed at accept for the connection cap.
    pub(crate) fn refused_connections(&self) -> u64 {
        self.refused_connections.load(Ordering::Relaxed)
    }

    /// Records a connection as registered.
    pub(crate) fn register(&self, conn: ConnId, kind: ConnKind) {
        crate::lock::lock(&self.registry).insert(conn, kind);
        self.env.probe(|| Probe::Registered { conn, kind });
    }

    /// Records that a registered connection has ended.
    pub(crate) fn unregister(&self, conn: ConnId) {
        crate::lock::lock(&self.registry).remove(&conn);
        self.env.probe(|| Probe::Closed { conn });
    }

    /// Turns a connection away before registration.
    pub(crate) fn reject(&self, conn: ConnId, reason: &str) {
        tracing::debug!("Closing connection {conn}: {reason}");
        self.env.probe(|| Probe::Rejected { conn, reason: reason.to_string() });
        self.env.probe(|| Probe::Closed { conn });
    }

    /// How many connections of each kind are registered now: HTTP,
    /// endpoint, anonymous.
    pub fn connection_counts(&self) -> (usize, usize, usize) {
        let reg = crate::lock::lock(&self.registry);
        let count = |k| reg.values().filter(|&&c| c == k).count();
        (count(ConnKind::Http), count(ConnKind::Endpoint), count(ConnKind::Anonymous))
    }

    /// Spawns a tracked task; a panic in it is logged and probed, never lost.
    pub(crate) fn spawn<F>(&self, name: &'static str, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // Dropping the handle detaches the task; the tracker still counts it.
        drop(self.spawn_handle(name, fut));
    }

    /// Spawns a tracked task whose handle lets the caller wait for it or
    /// abort it; `None` from the handle means the task panicked (logged and
    /// probed).
    pub(crate) fn spawn_handle<F, T>(&self, name: &'static str, fut: F) -> tokio::task::JoinHandle<Option<T>>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let env = self.env.clone();
        self.tasks.spawn(async move {
            match std::panic::AssertUnwindSafe(fut).catch_unwind().await {
                Ok(v) => Some(v),
                Err(panic) => {
                    report_panic(&env, name, panic_message(&panic));
                    None
                }
            }
        })
    }

    /// Waits until every task the node spawned has ended; no new ones start.
    pub(crate) async fn tasks_ended(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// Logs and probes a panic caught in the task (or timer) `name`.
pub(crate) fn report_panic<E: Env>(env: &E, name: &'static str, message: String) {
    tracing::error!("Task '{name}' panicked: {message}");
    env.probe(|| Probe::Panic { task: name.to_string(), message });
}

/// The text of a caught panic.
pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}
