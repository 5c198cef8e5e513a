//! Which objects name which: deletes, `used_by` and remove-comment find an
//! object's services and comments here instead of scanning every object
//! under the store's lock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use super::{Object, ObjectType};

/// An object's key in the store: its type and full name.
pub(super) type Key = (ObjectType, String);

/// The names each service and comment is found by, exactly as the scans it
/// replaces matched them: its `host_name` (a host's services and every
/// comment on it or on its services), and a comment's `service_name` (a
/// service's comments). Keyed by name, whether or not that object exists.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Children(BTreeMap<Key, BTreeSet<Key>>);

/// The keys `obj` is a child of. A host is nobody's child.
pub(super) fn parents(obj: &Object) -> Vec<Key> {
    if obj.otype == ObjectType::Host {
        return vec![];
    }
    let mut keys = vec![(ObjectType::Host, obj.host_name().to_string())];
    if let Value::String(service) = obj.attr("service_name") {
        keys.push((ObjectType::Service, service.clone()));
    }
    keys
}

impl Children {
    /// The index of `objects`, built from scratch (at restore).
    pub(super) fn build<'a>(objects: impl Iterator<Item = &'a Arc<Object>>) -> Self {
        let mut index = Children::default();
        for obj in objects {
            index.link(obj);
        }
        index
    }

    /// Records a new object.
    pub(super) fn link(&mut self, obj: &Object) {
        let child = (obj.otype, obj.name.clone());
        self.relink(&child, &[], &parents(obj));
    }

    /// Forgets an object that is gone.
    pub(super) fn unlink(&mut self, obj: &Object) {
        let child = (obj.otype, obj.name.clone());
        self.relink(&child, &parents(obj), &[]);
    }

    /// Moves `child` from the parents it had to the ones it has now; an
    /// entry left without children goes.
    pub(super) fn relink(&mut self, child: &Key, before: &[Key], after: &[Key]) {
        for parent in before.iter().filter(|p| !after.contains(p)) {
            if let Some(set) = self.0.get_mut(parent) {
                set.remove(child);
                if set.is_empty() {
                    self.0.remove(parent);
                }
            }
        }
        for parent in after.iter().filter(|p| !before.contains(p)) {
            self.0.entry(parent.clone()).or_default().insert(child.clone());
        }
    }

    /// The children of `otype` `name`, in key order (services before comments).
    pub(super) fn of(&self, otype: ObjectType, name: &str) -> impl Iterator<Item = &Key> {
        self.0.get(&(otype, name.to_string())).into_iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::store::{Mutation, Origin, Store};

    const HOSTS: [&str; 3] = ["h1", "h2", "h3"];
    const SERVICES: [&str; 4] = ["h1!a", "h1!b", "h2!a", "h4!a"];

    /// An object to act on: a host or service by name, or whichever comment
    /// is n-th (modulo how many there are) when the step runs.
    #[derive(Clone, Debug)]
    enum Target {
        Named(ObjectType, String),
        Comment(usize),
    }

    /// One step: a mutation of `Target`, drawn from a small world so that
    /// names collide often.
    #[derive(Clone, Debug)]
    enum Step {
        Create(ObjectType, String),
        AddComment(Target),
        RemoveComment(Target),
        Delete(Target, bool),
        /// Restoring `host_name` drops it: the one way a child's names change.
        RestoreHostName(Target),
    }

    fn step() -> impl Strategy<Value = Step> {
        let host = prop::sample::select(HOSTS.to_vec()).prop_map(|n| (ObjectType::Host, n.to_string()));
        let service =
            prop::sample::select(SERVICES.to_vec()).prop_map(|n| (ObjectType::Service, n.to_string()));
        let named = prop_oneof![host.clone(), service.clone()];
        let target = prop_oneof![
            named.clone().prop_map(|(t, n)| Target::Named(t, n)),
            any::<usize>().prop_map(Target::Comment),
        ];
        prop_oneof![
            named.clone().prop_map(|(t, n)| Step::Create(t, n)),
            named.prop_map(|(t, n)| Step::AddComment(Target::Named(t, n))),
            target.clone().prop_map(Step::RemoveComment),
            (target.clone(), any::<bool>()).prop_map(|(t, cascade)| Step::Delete(t, cascade)),
            target.prop_map(Step::RestoreHostName),
        ]
    }

    fn resolve(store: &Store, target: &Target) -> Option<(ObjectType, String)> {
        match target {
            Target::Named(t, n) => Some((*t, n.clone())),
            Target::Comment(i) => {
                let comments = store.list(ObjectType::Comment);
                let c = comments.get(i % comments.len().max(1))?;
                Some((c.otype, c.name.clone()))
            }
        }
    }

    fn mutation(store: &Store, step: &Step) -> Option<Mutation> {
        Some(match step {
            Step::Create(otype, name) => {
                let attrs = json!({"check_command": "dummy"}).as_object().cloned().unwrap_or_default();
                Mutation::Create { otype: *otype, name: name.clone(), attrs }
            }
            Step::AddComment(t) => {
                let (otype, name) = resolve(store, t)?;
                Mutation::AddComment { otype, name, author: "a".into(), text: "t".into() }
            }
            Step::RemoveComment(t) => Mutation::RemoveComment { name: resolve(store, t)?.1 },
            Step::Delete(t, cascade) => {
                let (otype, name) = resolve(store, t)?;
                Mutation::Delete { otype, name, cascade: *cascade }
            }
            Step::RestoreHostName(t) => {
                let (otype, name) = resolve(store, t)?;
                let set = vec![("vars.x".into(), json!(1))];
                Mutation::Modify { otype, name, set, restore: vec!["host_name".into()] }
            }
        })
    }

    /// What the scans the index replaced found: every service and comment
    /// naming `otype` `name` as its host or service.
    fn scan(store: &Store, otype: ObjectType, name: &str) -> Vec<Key> {
        let inner = store.lock();
        let names = |o: &Object| match otype {
            ObjectType::Host => o.host_name() == name,
            _ => o.attr("service_name") == &json!(name),
        };
        inner
            .objects
            .values()
            .filter(|o| o.otype != ObjectType::Host && names(o))
            .map(|o| (o.otype, o.name.clone()))
            .collect()
    }

    proptest! {
        #[test]
        fn the_index_stays_the_scan_after_any_mutations(steps in prop::collection::vec(step(), 0..60)) {
            let store = Store::new(None);
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1);
            for step in &steps {
                if let Some(m) = mutation(&store, step) {
                    // Refused steps are part of the test: they must change nothing.
                    let _ = store.change(m, Origin::Local, now);
                }
                let parents = HOSTS.iter().map(|h| (ObjectType::Host, *h))
                    .chain(SERVICES.iter().map(|s| (ObjectType::Service, *s)))
                    .chain([(ObjectType::Host, "")]);
                for (otype, name) in parents {
                    let indexed: Vec<Key> = store.children(otype, name).iter().map(|o| (o.otype, o.name.clone())).collect();
                    prop_assert_eq!(indexed, scan(&store, otype, name), "{:?} {}", otype, name);
                }
                let inner = store.lock();
                prop_assert_eq!(&inner.children, &Children::build(inner.objects.values()), "no stale entries");
            }
            let restored = Store::new(None);
            restored.restore(store.snapshot());
            prop_assert_eq!(&restored.lock().children, &store.lock().children);
        }
    }
}
