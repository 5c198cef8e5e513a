//! What every connection of a node shares: the environment, the settings, the
//! store, the two wait groups and the signals of Stop.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use futures_util::FutureExt;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::env::Env;
use crate::jsonrpc::cluster::Cluster;
use crate::jsonrpc::replay::ReplayBounds;
use crate::probe::{ConnId, ConnKind, Probe};
use crate::store::{CheckResult, ObjectType, Store};
use crate::waitgroup::WaitGroup;

/// The registered connections, by number.
#[derive(Default)]
pub(crate) struct Registry {
    pub(crate) conns: std::collections::BTreeMap<ConnId, ConnKind>,
}

/// The state shared by the listener, its connections and its timers.
pub struct Shared<E: Env> {
    /// The world.
    pub env: E,
    /// The node's settings.
    pub config: Arc<Config>,
    /// The object store.
    pub store: Store,
    /// Work that may change state: modifying handlers, message handlers.
    pub work: WaitGroup,
    /// Accept loops and client registration.
    pub listeners: WaitGroup,
    /// HTTP requests between their head and their answer: Stop waits for
    /// them, so that no response is started after it returns.
    pub answers: WaitGroup,
    /// Cancelled at Stop step 4: HTTP connections finish their request and
    /// close, idle ones close at once, event streams end.
    pub http_stop: CancellationToken,
    /// Cancelled at Stop step 2: connections still being sniffed give up,
    /// since the registration gate would refuse them anyway.
    pub listener_stop: CancellationToken,
    /// Every task the node spawned, so that the end of all of them can be awaited.
    pub tasks: TaskTracker,
    /// When the node started.
    pub started: SystemTime,
    /// Cluster connections, replay logs and log positions.
    pub cluster: Cluster,
    pub(crate) registry: Mutex<Registry>,
    next_conn: AtomicU64,
    /// Connections closed at accept because a listener had `max_connections` open.
    pub refused_connections: AtomicU64,
}

impl<E: Env> Shared<E> {
    pub(crate) fn new(env: E, config: Config) -> Self {
        let store = Store::new(config.journal_capacity).with_event_backlog(config.limits.event_backlog);
        let started = env.now();
        let bounds = ReplayBounds::new(config.timings.log_duration, config.limits.replay_log_bytes);
        let cluster = Cluster::new(config.endpoints.iter().map(|e| e.name.as_str()), bounds);
        Shared {
            cluster,
            env,
            config: Arc::new(config),
            store,
            work: WaitGroup::new(),
            listeners: WaitGroup::new(),
            answers: WaitGroup::new(),
            http_stop: CancellationToken::new(),
            listener_stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
            started,
            registry: Mutex::new(Registry::default()),
            next_conn: AtomicU64::new(1),
            refused_connections: AtomicU64::new(0),
        }
    }

    /// A fresh connection number.
    pub fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        crate::lock::lock(&self.registry)
    }

    /// Spawns a tracked task; a panic in it is logged and probed, never lost.
    pub fn spawn<F>(&self, name: &'static str, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // Dropping the handle detaches the task; the tracker still counts it.
        drop(self.spawn_handle(name, fut));
    }

    /// Spawns a tracked task whose handle lets the caller wait for it or
    /// abort it; `None` from the handle means the task panicked (logged and
    /// probed).
    pub fn spawn_handle<F, T>(&self, name: &'static str, fut: F) -> tokio::task::JoinHandle<Option<T>>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let env = self.env.clone();
        self.tasks.spawn(async move {
            match std::panic::AssertUnwindSafe(fut).catch_unwind().await {
                Ok(v) => Some(v),
                Err(panic) => {
                    let message = panic_message(&panic);
                    tracing::error!("Task '{name}' panicked: {message}");
                    env.probe(|| Probe::Panic { task: name.to_string(), message });
                    None
                }
            }
        })
    }

    /// How many connections of each kind are registered now.
    pub fn connection_counts(&self) -> (usize, usize, usize) {
        let reg = self.registry();
        let count = |k| reg.conns.values().filter(|&&c| c == k).count();
        (count(ConnKind::Http), count(ConnKind::Endpoint), count(ConnKind::Anonymous))
    }

    /// The `status` object of `/v1/status/ApiListener`.
    pub fn api_listener_status(&self) -> Value {
        let (http, endpoints, anonymous) = self.connection_counts();
        let (up, down, _) = self.cluster.status();
        json!({
            "api": {
                "identity": self.config.node_name,
                "num_endpoints": up.len() + down.len(),
                "num_conn_endpoints": up.len(),
                "num_not_conn_endpoints": down.len(),
                "conn_endpoints": up,
                "not_conn_endpoints": down,
                "http": { "clients": http },
                "json_rpc": { "anonymous_clients": anonymous, "clients": endpoints },
                "refused_connections": self.refused_connections.load(Ordering::Relaxed),
            }
        })
    }

    /// Sends a check result accepted through the API to every endpoint: into
    /// each one's replay log, and at once to those connected.
    pub fn relay_check_result(&self, otype: ObjectType, name: &str, cr: &CheckResult) {
        if self.config.endpoints.is_empty() {
            return;
        }
        let (host, service) = match otype {
            ObjectType::Service => match name.split_once('!') {
                Some((h, s)) => (h, Some(s)),
                None => return,
            },
            _ => (name, None),
        };
        let state = cr.state(otype == ObjectType::Host);
        let now = crate::store::unix_seconds(self.env.now());
        self.cluster.relay(now, None, |ts| {
            crate::jsonrpc::message::check_result(host, service, cr, state, ts).into()
        });
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}
