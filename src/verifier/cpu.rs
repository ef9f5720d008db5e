//! Signature checks off the async workers. A verification that costs CPU (an envelope's chain
//! and signature, a bundle's signatures under every key) runs on tokio's blocking pool, at most
//! one per core at a time, within a wall-clock budget it checks between signatures. So a
//! review's deadline fires on time whatever a registry serves, the async workers keep answering
//! other reviews (and `/healthz`), and junk abandoned by a timed-out review still stops soon.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::upstream::Lane;
use crate::verdict::{Reason, TrustError};

/// How long one image's signature checks may run before the rest are given up (the review
/// deadline is 8 s by default; caps keep real work to milliseconds).
const BUDGET: Duration = Duration::from_secs(2);

/// The slots CPU-bound verifications share.
#[derive(Clone)]
pub(super) struct CpuPool {
    slots: Arc<Semaphore>,
    lane: Lane,
}

/// The end of one verification's time: checked between signatures.
#[derive(Debug, Clone, Copy)]
pub(super) struct Budget {
    until: Instant,
}

impl Budget {
    /// Whether the time is spent.
    pub(super) fn spent(&self) -> bool {
        Instant::now() >= self.until
    }
}

impl CpuPool {
    /// One slot per core, on `lane`'s blocking threads.
    pub(super) fn new(lane: Lane) -> CpuPool {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        CpuPool {
            slots: Arc::new(Semaphore::new(cores)),
            lane,
        }
    }

    /// Runs `work` on the blocking pool once a slot is free. Waiting for a slot is cancelled with
    /// the review; once started, `work` holds its slot until it returns (within its budget).
    pub(super) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(Budget) -> T + Send + 'static,
    ) -> Result<T, TrustError> {
        let internal = |what: String| TrustError::new(Reason::Internal, None, what);
        let slot = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .map_err(|e| internal(format!("verification slots closed: {e}")))?;
        self.lane
            .run_blocking(move || {
                let _slot = slot;
                work(Budget {
                    until: Instant::now() + BUDGET,
                })
            })
            .await
            .map_err(|e| internal(format!("verification: {e}")))
    }
}
