//! The one way the harness takes a mutex.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, also when a panicking holder poisoned it. The harness's
/// mutexes hold logs that each call changes in one step (a pushed line, a
/// pushed result), so the data is whole; refusing it would turn one panic
/// into a run, or a campaign, that reports nothing of what it saw.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The value inside `mutex`, on the same terms as [`lock`].
pub fn into_inner<T>(mutex: Mutex<T>) -> T {
    mutex.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner())
}
