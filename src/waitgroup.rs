//! A counter of work in flight that can be closed for good, as Icinga's
//! `StoppableWaitGroup`: there is no blocking enter, only [`WaitGroup::try_enter`].

use std::sync::Arc;
#[cfg(not(all(test, quiesce_model)))]
use std::sync::{Mutex, MutexGuard};

// Under the model checker (`model`, built with `--cfg quiesce_model`) the
// lock is loom's, so loom may switch threads wherever the lock is taken.
// `Notify` stays tokio's (see `Drained`): the check covers the real
// notified-before-check contract that `join` leans on, not a stand-in.
#[cfg(all(test, quiesce_model))]
use loom::sync::{Mutex, MutexGuard};
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

#[derive(Default)]
struct State {
    holders: usize,
    stopped: bool,
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    drained: Drained,
}

/// tokio's `Notify` for "the count reached zero". loom cannot see inside
/// tokio, so under the model checker each use also writes a loom atomic:
/// loom then tries both orders of any two uses, among them a release that
/// lands between `join`'s check and its registration.
#[derive(Default)]
struct Drained {
    notify: Notify,
    #[cfg(all(test, quiesce_model))]
    uses: loom::sync::atomic::AtomicUsize,
}

impl Drained {
    fn notified(&self) -> Notified<'_> {
        self.switch_point();
        self.notify.notified()
    }

    fn notify_waiters(&self) {
        self.switch_point();
        self.notify.notify_waiters();
    }

    /// Nothing outside the model checker; a write loom sees inside it.
    fn switch_point(&self) {
        #[cfg(all(test, quiesce_model))]
        self.uses.fetch_add(1, loom::sync::atomic::Ordering::SeqCst);
    }
}

/// A closable count of holders. Cheap to clone; clones share the count.
#[derive(Clone, Default)]
pub struct WaitGroup {
    inner: Arc<Inner>,
}

/// Proof of being inside a [`WaitGroup`]; leaving happens on drop.
#[must_use = "the group is left as soon as the guard is dropped"]
pub struct Guard {
    inner: Arc<Inner>,
}

impl WaitGroup {
    /// A new, open group with no holders.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.inner)
    }

    /// Enters the group unless `join` has started. Entering again while
    /// holding a guard is allowed: the group counts, it does not own.
    pub fn try_enter(&self) -> Option<Guard> {
        let mut state = self.state();
        if state.stopped {
            return None;
        }
        state.holders += 1;
        Some(Guard { inner: self.inner.clone() })
    }

    /// False from the moment `join` starts. Advisory: a holder re-checks it
    /// between units of work, and the real gate is always `try_enter`.
    pub fn is_lockable(&self) -> bool {
        !self.state().stopped
    }

    /// How many guards are alive now.
    pub fn holders(&self) -> usize {
        self.state().holders
    }

    /// Closes the group for good without waiting: every later `try_enter`
    /// fails. `join` does this first; Stop calls it alone to mark the moment.
    pub fn close(&self) {
        self.state().stopped = true;
    }

    /// Closes the group for good and waits until every guard is dropped.
    /// Later calls return as soon as the count is zero.
    pub async fn join(&self) {
        self.close();
        self.drained().await;
        // A fresh look, apart from the one that ended the wait: only the
        // closed gate keeps a guard from being granted since.
        debug_assert_eq!(self.holders(), 0, "join returned while a guard is held");
    }

    /// Waits until the count is zero.
    async fn drained(&self) {
        loop {
            // Register interest before checking, so a drop between the check
            // and the await cannot be missed.
            let notified = self.inner.drained.notified();
            if self.state().holders == 0 {
                return;
            }
            notified.await;
        }
    }
}

fn lock(inner: &Inner) -> MutexGuard<'_, State> {
    // A panic while holding this lock cannot leave the counter half-updated,
    // so a poisoned lock is still consistent.
    inner.state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut state = lock(&self.inner);
        // Only `try_enter` makes a guard, and it counts it first: a release
        // at zero means the count is wrong, and join could return too early.
        assert!(state.holders > 0, "a guard was released with no holders counted");
        state.holders -= 1;
        if state.holders == 0 && state.stopped {
            self.inner.drained.notify_waiters();
        }
    }
}

#[cfg(all(test, quiesce_model))]
mod model;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn join_waits_for_every_holder() {
        let wg = WaitGroup::new();
        let a = wg.try_enter().expect("open group admits");
        let b = wg.try_enter().expect("open group admits");
        let joiner = tokio::spawn({
            let wg = wg.clone();
            async move { wg.join().await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!joiner.is_finished(), "join must wait while two guards live");
        drop(a);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!joiner.is_finished(), "join must wait while one guard lives");
        drop(b);
        tokio::time::timeout(Duration::from_secs(1), joiner)
            .await
            .expect("join must return once the last guard is dropped")
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn try_enter_fails_from_the_moment_join_starts() {
        let wg = WaitGroup::new();
        let held = wg.try_enter().unwrap();
        let joiner = tokio::spawn({
            let wg = wg.clone();
            async move { wg.join().await }
        });
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert!(!joiner.is_finished());
        assert!(!wg.is_lockable(), "a joining group is not lockable");
        assert!(wg.try_enter().is_none(), "a joining group admits nobody, even while waiting");
        drop(held);
        joiner.await.unwrap();
        assert!(wg.try_enter().is_none(), "a joined group stays closed");
    }

    #[tokio::test(start_paused = true)]
    async fn nested_entry_is_counted_not_deadlocked() {
        let wg = WaitGroup::new();
        let outer = wg.try_enter().unwrap();
        let inner = wg.try_enter().expect("a holder may enter again");
        assert_eq!(wg.holders(), 2);
        drop(inner);
        drop(outer);
        tokio::time::timeout(Duration::from_secs(1), wg.join())
            .await
            .expect("join of an empty group returns");
        tokio::time::timeout(Duration::from_secs(1), wg.join()).await.expect("a second join returns too");
    }

    #[test]
    #[should_panic(expected = "a guard was released with no holders counted")]
    fn a_release_with_no_holders_is_caught() {
        let wg = WaitGroup::new();
        // A guard no `try_enter` counted: the count must not wrap below zero.
        drop(Guard { inner: wg.inner.clone() });
    }

    #[tokio::test(start_paused = true)]
    async fn join_of_an_empty_group_returns_at_once() {
        let wg = WaitGroup::new();
        assert!(wg.is_lockable());
        tokio::time::timeout(Duration::from_millis(1), wg.join()).await.unwrap();
        assert!(!wg.is_lockable());
    }
}
