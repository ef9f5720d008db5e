//! Where upstream work runs: every registry and notary exchange (TLS handshakes, bodies) and
//! every signature check. `signgate serve` gives it a runtime of its own whose threads run at a
//! lower scheduling priority ([`Lane::start`]), so a review answered from cache is never queued
//! behind the fetches and checks of images a registry made expensive: the serving runtime's
//! workers only parse reviews, look up caches and await. Elsewhere (the CLI, tests) the lane is
//! the caller's own runtime ([`Lane::inline`]).

use std::future::Future;

use tokio::runtime::{Handle, Runtime};

/// How much lower than the serving threads upstream threads run (`nice`, Linux): under CFS a
/// nice-10 thread gets about a tenth of a core a nice-0 thread wants, and all of an idle one.
const NICE: i32 = 10;

/// A runtime for upstream work, or none (the caller's).
#[derive(Clone, Debug, Default)]
pub struct Lane {
    handle: Option<Handle>,
}

/// Owns the upstream runtime [`Lane::start`] made; dropping it stops the runtime's threads
/// without waiting for them (call it outside async code).
#[derive(Debug)]
pub struct LaneRuntime(Option<Runtime>);

impl Drop for LaneRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// The work given to a lane ended without an answer (it panicked, or its runtime is gone).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("upstream work ended without an answer: {0}")]
pub struct Lost(pub String);

impl Lane {
    /// Upstream work runs on the caller's runtime.
    pub fn inline() -> Lane {
        Lane { handle: None }
    }

    /// A runtime of `threads` workers (and its blocking threads) at a lower priority, for
    /// upstream work. Lowering a thread's own priority needs no privilege; where it cannot be
    /// done (not Linux) the threads run at the usual priority and the separate runtime alone
    /// keeps cached answers from queueing behind upstream work.
    pub fn start(threads: usize) -> Result<(Lane, LaneRuntime), String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("signgate-upstream")
            .on_thread_start(lower_priority)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the upstream runtime: {e}"))?;
        let lane = Lane {
            handle: Some(rt.handle().clone()),
        };
        Ok((lane, LaneRuntime(Some(rt))))
    }

    /// Runs `work` on the lane and waits for it. Dropping the returned future (a review past its
    /// deadline) aborts the work.
    pub async fn run<F>(&self, work: F) -> Result<F::Output, Lost>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.handle {
            None => Ok(work.await),
            Some(h) => {
                let mut task = Abort(h.spawn(work));
                (&mut task.0).await.map_err(lost)
            }
        }
    }

    /// Starts `work` on the lane (the caller's runtime without a lane) and returns at once: for
    /// background work that answers no review (the audit).
    pub fn spawn<F>(&self, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.handle {
            None => tokio::spawn(work),
            Some(h) => h.spawn(work),
        }
    }

    /// Runs the CPU-bound `work` on the lane's blocking threads (the caller's without a lane).
    pub async fn run_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Lost> {
        let task = match &self.handle {
            None => tokio::task::spawn_blocking(work),
            Some(h) => h.spawn_blocking(work),
        };
        task.await.map_err(lost)
    }
}

/// A task aborted when its waiter goes away.
struct Abort<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for Abort<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn lost(e: tokio::task::JoinError) -> Lost {
    match e.try_into_panic() {
        Ok(panic) => Lost(format!("it panicked: {}", panic_text(&*panic))),
        Err(e) => Lost(e.to_string()),
    }
}

/// What a caught panic said, for logs and denial messages.
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned());
    text.chars().filter(|c| !c.is_control()).take(200).collect()
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), NICE) {
        tracing::warn!(error = %e, "cannot lower the priority of an upstream thread");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}
