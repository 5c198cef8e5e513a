//! The object store: hosts, services and comments. Every mutation goes through
//! [`Store::apply`], which records it in the [`Journal`] and publishes an
//! [`Event`] for event streams.

mod checkresult;
mod index;
mod journal;
mod object;
mod transition;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tokio::sync::broadcast;

/// How deeply any value a peer sends may nest: bodies, paths, check results, frames.
pub use crate::input::MAX_DEPTH;
/// Proof that a change holds the work group (see `Store::apply`).
pub use crate::work::Admission;
pub use checkresult::{host_state, CheckResult, MAX_CHECK_RESULT_BYTES};
pub use journal::{Journal, JournalEntry, Origin};
pub use object::{split_service_name, Object, ObjectType, CONFIG_ATTRS};

/// A change to the store.
#[derive(Clone, Debug, PartialEq)]
pub enum Mutation {
    /// Creates an object with the given configuration attributes (`vars.x`
    /// paths allowed, set in key order as modify sets them).
    Create { otype: ObjectType, name: String, attrs: Map<String, Value> },
    /// Sets attributes (`vars.x` paths allowed) and restores others to their defaults.
    Modify { otype: ObjectType, name: String, set: Vec<(String, Value)>, restore: Vec<String> },
    /// Deletes an object; with `cascade`, a host's services and comments go too.
    Delete { otype: ObjectType, name: String, cascade: bool },
    /// Processes a passive check result.
    CheckResult { otype: ObjectType, name: String, cr: CheckResult },
    /// Acknowledges the current problem.
    Acknowledge {
        otype: ObjectType,
        name: String,
        author: String,
        comment: String,
        sticky: bool,
        expiry: f64,
    },
    /// Clears an acknowledgement.
    RemoveAcknowledgement { otype: ObjectType, name: String },
    /// Adds a comment to a checkable; the comment's name is in the outcome.
    AddComment { otype: ObjectType, name: String, author: String, text: String },
    /// Removes a comment by its name.
    RemoveComment { name: String },
}

impl Mutation {
    /// The journal's name for the operation.
    pub fn op(&self) -> &'static str {
        match self {
            Mutation::Create { .. } => "create",
            Mutation::Modify { .. } => "modify",
            Mutation::Delete { .. } => "delete",
            Mutation::CheckResult { .. } => "check_result",
            Mutation::Acknowledge { .. } => "acknowledge",
            Mutation::RemoveAcknowledgement { .. } => "remove_acknowledgement",
            Mutation::AddComment { .. } => "add_comment",
            Mutation::RemoveComment { .. } => "remove_comment",
        }
    }

    /// The object the mutation targets.
    pub fn target(&self) -> (ObjectType, &str) {
        match self {
            Mutation::Create { otype, name, .. }
            | Mutation::Modify { otype, name, .. }
            | Mutation::Delete { otype, name, .. }
            | Mutation::CheckResult { otype, name, .. }
            | Mutation::Acknowledge { otype, name, .. }
            | Mutation::RemoveAcknowledgement { otype, name }
            | Mutation::AddComment { otype, name, .. } => (*otype, name),
            Mutation::RemoveComment { name } => (ObjectType::Comment, name),
        }
    }
}

/// Why a mutation was not applied. Nothing was changed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist.
    #[error("Object '{0}' does not exist.")]
    NotFound(String),
    /// An object of that name already exists.
    #[error("Object '{0}' already exists.")]
    Exists(String),
    /// The request is not valid for this object.
    #[error("{0}")]
    Invalid(String),
    /// Passive checks are disabled for the object.
    #[error("Passive checks are disabled for object '{0}'.")]
    PassiveDisabled(String),
    /// The result is older than the one the object has.
    #[error("Newer check result already present. Check result for '{0}' was discarded.")]
    Outdated(String),
    /// Stop has sealed the store; nothing changes any more.
    #[error("Action skipped: Shutting down. Object '{0}' was not changed.")]
    Sealed(String),
}

/// What an applied mutation did, for the response and for the cluster relay.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    /// The journal's sequence number of the (first) entry.
    pub seq: u64,
    /// Names of every object removed (delete with cascade removes several).
    pub removed: Vec<(ObjectType, String)>,
    /// The name of a comment that was created.
    pub comment: Option<String>,
}

/// An event for `/v1/events` subscribers, already in the API's JSON shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// `CheckResult`, `StateChange`, `ObjectCreated`, ...
    pub kind: &'static str,
    /// The object it concerns.
    pub otype: ObjectType,
    /// The object's name.
    pub name: String,
    /// The JSON line sent to subscribers.
    pub body: Value,
}

/// Everything the state directory keeps of the store.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreSnapshot {
    /// Every object, hosts first, each type by name. Shared with the store,
    /// so that a persist does not copy every attribute.
    pub objects: Vec<Arc<Object>>,
    /// The number the next comment gets.
    pub next_comment: u64,
}

struct Inner {
    /// Shared, so that readers take objects without copying them; a mutation
    /// copies an object only while some reader still holds it.
    objects: BTreeMap<(ObjectType, String), Arc<Object>>,
    /// Each object's services and comments, kept with `objects`.
    children: index::Children,
    journal: Journal,
    sealed: bool,
    next_comment: u64,
    /// Whether anyone subscribed to events when the current mutation began.
    listening: bool,
}

/// The shared object store. Clones share the same objects.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Mutex<Inner>>,
    /// Made at the first subscription: its backlog is allocated up front
    /// (some hundreds of kB), which a node nobody subscribes to never needs.
    events: Arc<OnceLock<broadcast::Sender<Event>>>,
    /// How many events a slow subscriber may fall behind before it misses some.
    event_backlog: usize,
}

mod apply;

/// The default of [`Store::with_event_backlog`].
pub const EVENT_BACKLOG: usize = 4096;

impl Store {
    /// An empty store whose journal keeps `journal_capacity` entries (`None`: all).
    pub fn new(journal_capacity: Option<usize>) -> Self {
        let inner = Inner {
            objects: BTreeMap::new(),
            children: index::Children::default(),
            journal: Journal::new(journal_capacity),
            sealed: false,
            next_comment: 1,
            listening: false,
        };
        Store { inner: Arc::new(Mutex::new(inner)), events: Arc::default(), event_backlog: EVENT_BACKLOG }
    }

    /// The same store, letting subscribers fall `backlog` events behind.
    pub fn with_event_backlog(mut self, backlog: usize) -> Self {
        self.event_backlog = backlog.max(1);
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Mutations are applied on a copy-free path that cannot panic halfway
        // through an object, so a poisoned lock still guards consistent data.
        crate::lock::lock(&self.inner)
    }

    /// Applies one mutation, journals it and publishes its events: the only
    /// way a serving node's store changes, and only with proof of holding
    /// the work group. After the seal it changes nothing: the attempt is
    /// journaled as a violation (`after_seal`) and refused.
    pub fn apply(
        &self,
        m: Mutation,
        origin: Origin,
        now: SystemTime,
        _held: &Admission,
    ) -> Result<Applied, StoreError> {
        self.change(m, origin, now)
    }

    /// A state file's store built from `mutations` (in order; each must
    /// succeed), for a node that has not started: the start-up door, which
    /// needs no work group because nothing is serving yet.
    pub fn seed(
        mutations: impl IntoIterator<Item = Mutation>,
        now: SystemTime,
    ) -> Result<StoreSnapshot, StoreError> {
        let store = Store::new(Some(0));
        for m in mutations {
            store.change(m, Origin::Local, now)?;
        }
        Ok(store.snapshot())
    }

    fn change(&self, m: Mutation, origin: Origin, now: SystemTime) -> Result<Applied, StoreError> {
        let time = unix_seconds(now);
        let (applied, events) = {
            let mut inner = self.lock();
            let (otype, name) = m.target();
            if inner.sealed {
                return Err(refuse_sealed(&mut inner, &m, origin, time));
            }
            let name = name.to_string();
            inner.listening = self.events.get().is_some_and(|tx| tx.receiver_count() > 0);
            let apply::Outcome { removed, comment, events } = apply::apply(&mut inner, &m, time)?;
            let seq = inner.journal.record(time, origin, m.op(), otype, &name, false);
            (Applied { seq, removed, comment }, events)
        };
        let Some(tx) = self.events.get() else { return Ok(applied) };
        for event in events {
            // No subscriber is fine: events are for whoever listens now.
            let _ = tx.send(event);
        }
        Ok(applied)
    }

    /// Marks the store as closed to mutation: Stop has promised there will be
    /// none, so a later attempt is a slip in the stack, refused and journaled.
    pub fn seal(&self) {
        self.lock().sealed = true;
    }

    /// Whether [`seal`](Store::seal) was called.
    pub fn is_sealed(&self) -> bool {
        self.lock().sealed
    }

    /// One object, as it is now.
    pub fn get(&self, otype: ObjectType, name: &str) -> Option<Arc<Object>> {
        self.lock().objects.get(&(otype, name.to_string())).cloned()
    }

    /// Every object of a type as it is now, by name.
    pub fn list(&self, otype: ObjectType) -> Vec<Arc<Object>> {
        let inner = self.lock();
        inner
            .objects
            .range((otype, String::new())..)
            .take_while(|((t, _), _)| *t == otype)
            .map(|(_, o)| Arc::clone(o))
            .collect()
    }

    /// The services and comments that name `otype` `name` as their host or
    /// service, by type and name: a host's services and the comments on it
    /// and on its services; a service's comments. Found without a scan.
    pub fn children(&self, otype: ObjectType, name: &str) -> Vec<Arc<Object>> {
        let inner = self.lock();
        inner.children.of(otype, name).filter_map(|key| inner.objects.get(key)).cloned().collect()
    }

    /// How many objects of a type exist.
    pub fn count(&self, otype: ObjectType) -> usize {
        let inner = self.lock();
        inner.objects.keys().filter(|(t, _)| *t == otype).count()
    }

    /// A copy of the journal entries kept.
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.lock().journal.entries().cloned().collect()
    }

    /// How many mutations were journaled after the seal.
    pub fn seal_violations(&self) -> u64 {
        self.lock().journal.violations()
    }

    /// Subscribes to events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.get_or_init(|| broadcast::channel(self.event_backlog).0).subscribe()
    }

    /// Everything to persist.
    pub fn snapshot(&self) -> StoreSnapshot {
        let inner = self.lock();
        StoreSnapshot { objects: inner.objects.values().cloned().collect(), next_comment: inner.next_comment }
    }

    /// Replaces the contents with a loaded snapshot (at start, before serving).
    pub fn restore(&self, snapshot: StoreSnapshot) {
        let mut inner = self.lock();
        inner.objects = snapshot.objects.into_iter().map(|o| ((o.otype, o.name.clone()), o)).collect();
        inner.children = index::Children::build(inner.objects.values());
        inner.next_comment = snapshot.next_comment.max(1);
    }
}

/// Journals a mutation attempted after the seal, says so in the log, and
/// gives the error that refuses it.
fn refuse_sealed(inner: &mut Inner, m: &Mutation, origin: Origin, time: f64) -> StoreError {
    let (otype, name) = m.target();
    inner.journal.record(time, origin, m.op(), otype, name, true);
    tracing::error!(
        "Refused {} of {} '{}': the store was sealed by Stop. This is a bug in quiesce.",
        m.op(),
        otype.name(),
        crate::logsafe::Text(name)
    );
    StoreError::Sealed(name.to_string())
}

/// Seconds since the epoch as a float, as Icinga timestamps are.
pub fn unix_seconds(t: SystemTime) -> f64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// The JSON for an event of `kind` about `obj`, in `/v1/events` shape.
fn event_body(kind: &'static str, obj: &Object, time: f64, extra: Value) -> Value {
    let mut body = json!({ "type": kind, "timestamp": time });
    let map = body.as_object_mut().expect("json! object");
    match obj.otype {
        ObjectType::Service => {
            let service = obj.name.split_once('!').map(|(_, s)| s).unwrap_or(&obj.name);
            map.insert("host".into(), json!(obj.host_name()));
            map.insert("service".into(), json!(service));
        }
        ObjectType::Host => {
            map.insert("host".into(), json!(obj.name));
        }
        ObjectType::Comment => {}
    }
    if let Value::Object(extra) = extra {
        map.extend(extra);
    }
    body
}
