//! The API listener: acceptors, registration, timers and the deterministic
//! Stop of contract section 3.

mod accept;
mod rewind;
mod timers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

pub use crate::node::Shared;
use crate::node::Stopper;

use timers::Timers;

use crate::bug;
use crate::config::Config;
use crate::env::{Env, Listener, Point};
use crate::probe::{Probe, StopStep};
use crate::state::{self, StateError, StateFile};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    /// The state directory could not be loaded.
    #[error(transparent)]
    State(#[from] StateError),
    /// The certificates or key could not be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// Why Stop could not keep its promise of a persisted state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StopError {
    /// Step 6 failed: the state directory was not written.
    #[error("cannot write state directory '{}': {reason}; changes since the last successful write are lost", dir.display())]
    Persist { dir: PathBuf, reason: String },
}

/// A running node's API listener. Cheap to clone; clones control the same node.
pub struct ApiListener<E: Env> {
    shared: Arc<Shared<E>>,
    /// What Stop does to the node; nobody else holds it.
    stopper: Arc<Stopper>,
    acceptors: Arc<Vec<Arc<E::Listener>>>,
    timers: Arc<Timers>,
    /// The state directory's lock, held from start until Stop has persisted.
    lock: Arc<Mutex<Option<E::FileLock>>>,
    stopped: Arc<OnceCell<Result<(), StopError>>>,
}

// By hand: a derived Clone would also demand a cloneable acceptor type.
impl<E: Env> Clone for ApiListener<E> {
    fn clone(&self) -> Self {
        ApiListener {
            shared: self.shared.clone(),
            stopper: self.stopper.clone(),
            acceptors: self.acceptors.clone(),
            timers: self.timers.clone(),
            lock: self.lock.clone(),
            stopped: self.stopped.clone(),
        }
    }
}

impl<E: Env> ApiListener<E> {
    /// Loads the state directory, binds every listen address, starts the
    /// accept loops and the timers.
    pub async fn start(env: E, config: Config) -> Result<Self, StartError> {
        // Icinga's GracefulDisconnect waits 10 s for the peer's close_notify: the close cap.
        let close_wait = (!bug!(config, TlsShutdownUncapped)).then_some(config.timings.close_cap);
        let tls = config.tls.as_ref().map(|m| crate::tls::Tls::new(&env, m, close_wait)).transpose()?;
        let (shared, stopper) = Shared::new(env, config, tls);
        let (shared, stopper) = (Arc::new(shared), Arc::new(stopper));
        let (dir, holder) = (&shared.config().state_dir, format!("node '{}'", shared.config().node_name));
        let lock = state::lock(shared.env(), dir, holder).await?;
        if let Some(state) = state::load(shared.env(), &shared.config().state_dir).await? {
            shared.store().restore(state.store);
            shared.cluster().restore(state.cluster);
        }
        let mut acceptors = Vec::new();
        for &addr in &shared.config().listen {
            let listener =
                shared.env().bind(addr).await.map_err(|source| StartError::Bind { addr, source })?;
            let local = listener.local_addr().to_string();
            tracing::info!("Started new listener on '{local}'");
            shared.env().probe(|| Probe::ListenerStarted { addr: local });
            acceptors.push(Arc::new(listener));
        }
        for listener in &acceptors {
            let (s, l) = (shared.clone(), listener.clone());
            shared.spawn("accept loop", accept::accept_loop(s, l));
        }
        let env = shared.env().clone();
        let mut timers =
            Timers::new(Arc::new(move |name, message| crate::node::report_panic(&env, name, message)));
        timers.leave_ticks_running(bug!(shared.config(), TimerTickNotAwaited));
        let timers = Arc::new(timers);
        start_timers(&shared, &timers);
        let lock = Arc::new(Mutex::new(Some(lock)));
        let acceptors = Arc::new(acceptors);
        Ok(ApiListener { shared, stopper, acceptors, timers, lock, stopped: Arc::default() })
    }

    /// The addresses actually bound, in the order of `config.listen`.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.acceptors.iter().map(|l| l.local_addr()).collect()
    }

    /// The node's shared state.
    pub fn shared(&self) -> &Arc<Shared<E>> {
        &self.shared
    }

    /// Stops the node as contract section 3 orders. Idempotent: a second call
    /// waits for the first to finish and gets the same result. Every step
    /// runs even if the persist fails; the error says the state is stale.
    pub async fn stop(&self) -> Result<(), StopError> {
        self.stopped.get_or_init(|| self.stop_in_order()).await.clone()
    }

    /// Waits until every task of the node has ended (after [`stop`](Self::stop)).
    pub async fn wait_for_tasks(&self) {
        self.shared.tasks_ended().await;
    }

    async fn stop_in_order(&self) -> Result<(), StopError> {
        let (s, stopper) = (&self.shared, &self.stopper);
        step(s, StopStep::Begin).await;
        self.timers.stop().await;
        step(s, StopStep::TimersStopped).await;
        self.stop_listener().await;
        if bug!(s.config(), StopForgetsAnonymous) {
            s.cluster().disconnect_endpoints();
        } else {
            s.cluster().disconnect_all();
            debug_assert!(
                s.cluster().all_told_to_go(),
                "Stop step 3: every cluster connection is told to go"
            );
        }
        step(s, StopStep::JsonRpcDisconnected).await;
        stopper.stop_http();
        step(s, StopStep::HttpClosing).await;
        let early = if bug!(s.config(), PersistBeforeJoin) { Some(persist(s).await) } else { None };
        stopper.close_work();
        step(s, StopStep::WorkJoinStarted).await;
        stopper.join_work().await;
        s.env().point(Point::StopBeforeSeal).await;
        // Every gated change is done: from here a change is a slip, refused.
        s.store().seal();
        // What HTTP still has in flight is answering (a 503, a query given
        // up): no response starts after Stop returns.
        stopper.join_answers().await;
        step(s, StopStep::WorkJoined).await;
        let persisted = match early {
            Some(done) => done,
            None => persist(s).await,
        };
        step(s, StopStep::Persisted).await;
        // Nothing writes the directory after this: another node may have it.
        crate::lock::lock(&self.lock).take();
        assert!(s.store().is_sealed(), "Stop: the store is sealed before 'api' stopped");
        tracing::info!("'api' stopped.");
        probe_step(s, StopStep::Stopped);
        persisted.map_err(|reason| StopError::Persist { dir: s.config().state_dir.clone(), reason })
    }

    /// Step 2: close every acceptor explicitly, then wait for accept loops
    /// and registrations in progress.
    async fn stop_listener(&self) {
        let s = &self.shared;
        self.stopper.stop_listening();
        for listener in self.acceptors.iter() {
            listener.close();
        }
        step(s, StopStep::AcceptorsClosed).await;
        self.stopper.join_listeners().await;
        step(s, StopStep::ListenerJoined).await;
    }
}

/// Reports a step of Stop, then passes the chaos point between two steps.
async fn step<E: Env>(shared: &Shared<E>, step: StopStep) {
    probe_step(shared, step);
    shared.env().point(Point::StopBetweenSteps).await;
}

fn probe_step<E: Env>(shared: &Shared<E>, step: StopStep) {
    tracing::debug!("Stop: {step:?}");
    shared.env().probe(|| Probe::Stop { step });
}

fn start_timers<E: Env>(shared: &Arc<Shared<E>>, timers: &Timers) {
    let t = &shared.config().timings;
    let s = shared.clone();
    timers.every("persist", t.persist_interval, move || {
        let s = s.clone();
        // A failure is logged; the next tick, or Stop's persist, tries again.
        async move {
            s.env().point(Point::TimerPersist).await;
            let _ = persist(&s).await;
        }
    });
    if shared.config().endpoints.is_empty() {
        return;
    }
    let s = shared.clone();
    timers.every_from_now("reconnect", t.reconnect_interval, move || {
        reconnect(&s);
        std::future::ready(())
    });
    let s = shared.clone();
    timers.every("log position", t.log_position_interval, move || {
        let s = s.clone();
        async move { acknowledge_positions(&s).await }
    });
}

/// Starts a connection attempt to every endpoint neither connected nor connecting.
fn reconnect<E: Env>(shared: &Arc<Shared<E>>) {
    for name in shared.cluster().start_connecting() {
        let Some(e) = shared.config().endpoint(&name) else { continue };
        let (host, port) = (e.host.clone(), e.port);
        let s = shared.clone();
        shared.spawn("reconnect", crate::jsonrpc::handshake::outgoing(s, name, host, port));
    }
}

/// Tells each connected endpoint how far its messages are applied and persisted.
async fn acknowledge_positions<E: Env>(shared: &Shared<E>) {
    let positions = shared.cluster().acknowledgements();
    if positions.is_empty() {
        return;
    }
    // A delay here leaves a tick in flight, positions read, when Stop begins.
    shared.env().point(Point::TimerLogPosition).await;
    for (conn, position) in positions {
        let msg = crate::jsonrpc::message::set_log_position(position);
        conn.send(crate::jsonrpc::connection::encode(&msg));
    }
}

/// Writes the state directory; a failure is logged and returned.
async fn persist<E: Env>(shared: &Shared<E>) -> Result<(), String> {
    let cluster = shared.cluster().snapshot();
    let state = StateFile { version: state::FORMAT_VERSION, store: shared.store().snapshot(), cluster };
    let dir = &shared.config().state_dir;
    let skip_fsync = bug!(shared.config(), RenameWithoutFsync);
    match state::write_durably(shared.env(), dir, &state, skip_fsync).await {
        Ok(()) => {
            shared.cluster().persisted(&state.cluster);
            Ok(())
        }
        Err(e) => {
            tracing::error!("Cannot write state directory '{}': {e}", dir.display());
            Err(e.to_string())
        }
    }
}
