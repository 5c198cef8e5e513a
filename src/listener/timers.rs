//! Periodic work of the node. Stop step 1 ends every timer and waits for a
//! callback that is running, so none starts or finishes after that step.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The node's timers.
#[derive(Default)]
pub struct Timers {
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Timers {
    /// Runs `tick` every `every` until [`stop`](Timers::stop); a running
    /// `tick` is never interrupted, only the wait between ticks is.
    pub fn every<F, Fut>(&self, every: Duration, tick: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        self.spawn(every, false, tick);
    }

    /// Like [`every`](Timers::every), but the first tick runs at once.
    pub fn every_from_now<F, Fut>(&self, every: Duration, tick: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        self.spawn(every, true, tick);
    }

    fn spawn<F, Fut>(&self, every: Duration, at_once: bool, mut tick: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let stop = self.stop.clone();
        self.tasks.spawn(async move {
            if at_once {
                tick().await;
            }
            loop {
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                tick().await;
            }
        });
    }

    /// Stops every timer and waits for callbacks in progress.
    pub async fn stop(&self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}
