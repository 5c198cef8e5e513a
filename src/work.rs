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
