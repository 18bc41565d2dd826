//! A daemon's controllers running in-process on the test's runtime (the story's own namespace
//! only): stopped as the daemon stops on SIGTERM by [`InProcess::stop`], aborted if dropped.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Resolves when the controllers are to stop.
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send + Sync>>;

pub struct InProcess {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl InProcess {
    /// Spawns `run(shutdown)`; `shutdown` resolves when [`stop`](Self::stop) is called.
    pub fn spawn<Run, Fut>(run: Run) -> InProcess
    where
        Run: FnOnce(Shutdown) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown: Shutdown = Box::pin(async move {
            let _ = stopped.await;
        });
        InProcess {
            stop: Some(stop),
            task: Some(tokio::spawn(run(shutdown))),
        }
    }

    /// Signals shutdown and waits until the controllers have ended (at most 30 s).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("the controllers stop within 30 s")
                .expect("the controllers end cleanly");
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
