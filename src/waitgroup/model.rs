//! The wait group under loom, the model checker: three threads enter, leave,
//! close and join in every interleaving loom can reach with four preemptions,
//! on the production code built over loom's `Mutex`. They check that no guard
//! is granted once `close` has returned, that `join` returns only when no
//! guard is held, and that nothing deadlocks (loom fails a run in which every
//! thread is blocked, so a `join` that misses its wake-up fails too).
//!
//! Run with `RUSTFLAGS="--cfg tokio_unstable --cfg quiesce_model" cargo test
//! -p quiesce --lib --target-dir target/model waitgroup::model` (as `.ci/run`
//! does); `LOOM_MAX_PREEMPTIONS=5` searches deeper. The cfg is our own, as
//! tokio changes its internals under a global `cfg(loom)`. Under it every
//! wait group in the crate is built on loom's lock, so the crate's other unit
//! tests, which run outside a loom model, fail: run only this module.
//!
//! `Notify` stays tokio's, and loom does not see inside it. So each use of
//! it also writes a loom atomic (`Drained::switch_point`): without that, a
//! release landing between `join`'s check and its registration is never
//! tried, and a `join` that registers after its check passes at any bound.
//! Its wake-ups reach `block_on` through loom's waker. This leans on tokio
//! neither cloning (block_on's waker never changes) nor waking a waker while
//! it holds its own lock: loom runs every thread on one OS thread, so a
//! switch inside that lock would hang the run rather than pass it.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};
use std::sync::Arc;

use super::WaitGroup;
use loom::future::block_on;
use loom::sync::atomic::{AtomicBool, Ordering::SeqCst};
use loom::thread;

/// Preemptions per interleaving that loom tries. A `join` that registers for
/// the wake-up after its check deadlocks only from three on; four keeps one
/// in hand. `LOOM_MAX_PREEMPTIONS` overrides it for a deeper local run.
const PREEMPTIONS: usize = 4;

/// Explores every interleaving of `f` within the preemption bound, with no
/// count or time limit that could cut the search short.
fn explore(f: impl Fn() + Sync + Send + 'static) {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = builder.preemption_bound.or(Some(PREEMPTIONS));
    builder.max_permutations = None;
    builder.max_duration = None;
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        builder.check(move || {
            counted.fetch_add(1, StdOrdering::Relaxed);
            f();
        })
    }));
    let runs = runs.load(StdOrdering::Relaxed);
    if let Err(failure) = outcome {
        eprintln!("failed in interleaving {runs}");
        panic::resume_unwind(failure);
    }
    // One run would mean loom saw no switch point: the lock is not loom's.
    assert!(runs > 1, "loom explored {runs} interleaving(s); is the wait group built on loom's Mutex?");
    eprintln!("explored {runs} interleavings");
}

/// Enters and leaves `rounds` times. While holding a guard, `join` must not
/// have returned; once refused, the gate stays shut.
fn enter_and_leave(wg: &WaitGroup, joined: &AtomicBool, rounds: usize) {
    let mut refused = false;
    for _ in 0..rounds {
        match wg.try_enter() {
            Some(guard) => {
                assert!(!refused, "try_enter admitted after it had refused");
                assert!(!joined.load(SeqCst), "a guard is held after join returned");
                drop(guard);
            }
            None => refused = true,
        }
    }
}

/// Closes, then watches the count: a guard granted after `close` returned
/// would make it rise.
fn close_and_watch(wg: &WaitGroup) {
    wg.close();
    let after_close = wg.holders();
    assert!(!wg.is_lockable(), "a closed group reports itself lockable");
    assert!(wg.try_enter().is_none(), "a closed group admitted a guard");
    assert!(wg.holders() <= after_close, "a guard was granted after close returned");
}

/// Joins, then checks nobody holds a guard and marks the moment for the others.
fn join_and_mark(wg: &WaitGroup, joined: &AtomicBool) {
    block_on(wg.join());
    assert_eq!(wg.holders(), 0, "join returned while a guard was held");
    joined.store(true, SeqCst);
}

#[test]
fn no_guard_after_close_and_join_waits_for_every_holder() {
    explore(|| {
        let wg = WaitGroup::new();
        let joined = Arc::new(AtomicBool::new(false));
        let enterer = thread::spawn({
            let (wg, joined) = (wg.clone(), joined.clone());
            move || enter_and_leave(&wg, &joined, 2)
        });
        let closer = thread::spawn({
            let wg = wg.clone();
            move || close_and_watch(&wg)
        });
        join_and_mark(&wg, &joined);
        enterer.join().unwrap();
        closer.join().unwrap();
        assert_eq!(wg.holders(), 0, "the count stays at zero after join");
        assert!(wg.try_enter().is_none(), "a joined group stays closed");
    });
}

#[test]
fn nested_entry_is_counted_and_join_waits_for_the_inner_guard() {
    explore(|| {
        let wg = WaitGroup::new();
        let joined = Arc::new(AtomicBool::new(false));
        let nester = thread::spawn({
            let (wg, joined) = (wg.clone(), joined.clone());
            move || {
                let Some(outer) = wg.try_enter() else { return };
                assert!(!joined.load(SeqCst), "a guard is held after join returned");
                let inner = wg.try_enter();
                // Leaving out of order: the group counts, it does not own.
                drop(outer);
                assert!(!(inner.is_some() && joined.load(SeqCst)), "join returned under a nested guard");
                drop(inner);
            }
        });
        let closer = thread::spawn({
            let wg = wg.clone();
            move || close_and_watch(&wg)
        });
        join_and_mark(&wg, &joined);
        nester.join().unwrap();
        closer.join().unwrap();
        assert_eq!(wg.holders(), 0);
    });
}

#[test]
fn two_joins_at_once_both_return_after_the_last_guard() {
    explore(|| {
        let wg = WaitGroup::new();
        let joined = Arc::new(AtomicBool::new(false));
        let holder = thread::spawn({
            let (wg, joined) = (wg.clone(), joined.clone());
            move || enter_and_leave(&wg, &joined, 1)
        });
        let other_joiner = thread::spawn({
            let (wg, joined) = (wg.clone(), joined.clone());
            move || join_and_mark(&wg, &joined)
        });
        join_and_mark(&wg, &joined);
        holder.join().unwrap();
        other_joiner.join().unwrap();
        assert_eq!(wg.holders(), 0);
    });
}
