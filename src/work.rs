//! Proof of holding the work group, which the store asks of every change
//! (contract section 3, step 5). Only entering the group makes one, so a
//! modifying handler that skips its gate has nothing to show the store and
//! does not compile. The planted bugs that skip the gate forge one, behind
//! the `bug-zoo` feature, in [`Admission::forged`] and nowhere else; the
//! start-up door (state built before a node serves) is the store's own.
//!
//! A change without an admission does not compile:
//!
//! ```compile_fail,E0061
//! use quiesce::store::{Mutation, ObjectType, Origin, Store};
//! let store = Store::new(None);
//! let m = Mutation::Delete { otype: ObjectType::Host, name: "h".into(), cascade: false };
//! let _ = store.apply(m, Origin::Local, std::time::SystemTime::UNIX_EPOCH);
//! ```
//!
//! and an admission cannot be made but by entering the work group:
//!
//! ```compile_fail,E0451
//! let forged = quiesce::store::Admission { _guard: None };
//! ```

use crate::waitgroup::{Guard, WaitGroup};

/// Held while work that may change the store is in flight; leaving the
/// group happens when it is dropped.
#[must_use = "the work group is left as soon as the admission is dropped"]
pub struct Admission {
    /// `None` only for the planted bugs.
    _guard: Option<Guard>,
}

impl Admission {
    /// Enters `work`, unless its join has started.
    pub fn enter(work: &WaitGroup) -> Option<Admission> {
        work.try_enter().map(|guard| Admission { _guard: Some(guard) })
    }

    /// Planted bugs only: an admission without the work group, the one
    /// place where the gate is skipped.
    #[cfg(feature = "bug-zoo")]
    pub fn forged() -> Admission {
        Admission { _guard: None }
    }
}

/// An admission that reports how it ended: [`WorkGuard::finish`] when the
/// work ran to its end, or a drop without it when the work was torn (its
/// future dropped, cancelled or cut off by a cap while it held the gate).
pub struct WorkGuard {
    admission: Option<Admission>,
    finished: bool,
    on_release: Option<Box<dyn FnOnce(bool) + Send + Sync>>,
}

impl WorkGuard {
    /// Wraps `admission`; `on_release(finished)` runs right after the group is left.
    pub fn new(admission: Admission, on_release: impl FnOnce(bool) + Send + Sync + 'static) -> Self {
        WorkGuard { admission: Some(admission), finished: false, on_release: Some(Box::new(on_release)) }
    }

    /// Planted bugs only: a guard without the work group, and without reports.
    #[cfg(feature = "bug-zoo")]
    pub fn forged() -> Self {
        WorkGuard { admission: Some(Admission::forged()), finished: false, on_release: None }
    }

    /// The admission the store asks of a change.
    pub fn admission(&self) -> Option<&Admission> {
        self.admission.as_ref()
    }

    /// The work ran to its end: leaves the group and reports it finished.
    pub fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for WorkGuard {
    fn drop(&mut self) {
        // Leave the group first, so that the report never precedes the release.
        self.admission.take();
        if let Some(report) = self.on_release.take() {
            report(self.finished);
        }
    }
}
