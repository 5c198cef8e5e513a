//! The one way the stack takes a mutex.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, also when a panicking holder poisoned it. Every mutex of
/// the stack guards state that a panic cannot leave half-updated (counters,
/// maps changed by one call each, handles), so the data is consistent, and
/// refusing it would only turn one panicked task into a node that cannot stop.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
