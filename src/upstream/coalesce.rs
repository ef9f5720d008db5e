//! Burst coalescing with a short memory: concurrent requests for one key share one fetch, and the
//! answer is reused for a while, weighed in bytes against a budget (whoever names the keys cannot
//! grow it past that).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// One fetch, shared by the requests that arrive while it runs.
type Pending<V> = tokio::sync::OnceCell<V>;

/// Answers by key: fetched once per burst, kept for `ttl` within `max_bytes`.
pub(crate) struct Coalesced<V: Clone + Send + Sync + 'static> {
    inflight: Mutex<HashMap<String, Arc<Pending<V>>>>,
    recent: Option<moka::sync::Cache<String, V>>,
}

impl<V: Clone + Send + Sync + 'static> Coalesced<V> {
    /// Keeps answers for `ttl` (zero: only concurrent requests share one fetch), weighing each
    /// with `weigh` (bytes) against `max_bytes`.
    pub(crate) fn new(ttl: Duration, max_bytes: u64, weigh: fn(&V) -> u32) -> Self {
        Coalesced {
            inflight: Mutex::new(HashMap::new()),
            recent: (!ttl.is_zero()).then(|| {
                moka::sync::Cache::builder()
                    .max_capacity(max_bytes)
                    .weigher(move |k: &String, v: &V| {
                        weigh(v).saturating_add(u32::try_from(k.len()).unwrap_or(u32::MAX))
                    })
                    .time_to_live(ttl)
                    .build()
            }),
        }
    }

    /// The answer for `key`: remembered, joined while another request fetches it, or fetched.
    /// The flag says whether it was remembered (a cache hit).
    pub(crate) async fn get<F, Fut>(&self, key: &str, fetch: F) -> (V, bool)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        if let Some(hit) = self.recent.as_ref().and_then(|c| c.get(key)) {
            return (hit, true);
        }
        let cell = {
            let mut inflight = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(inflight.entry(key.to_owned()).or_default())
        };
        let answer = cell.get_or_init(fetch).await.clone();
        {
            let mut inflight = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
            if inflight.get(key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                inflight.remove(key);
            }
        }
        if let Some(recent) = &self.recent {
            recent.insert(key.to_owned(), answer.clone());
        }
        (answer, false)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_burst_costs_one_fetch_and_the_answer_is_remembered() {
        let c: Coalesced<Arc<Vec<u8>>> =
            Coalesced::new(Duration::from_secs(60), 1 << 20, |v| v.len() as u32);
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            Arc::new(vec![7u8; 100])
        };
        let all = futures_util::future::join_all((0..50).map(|_| c.get("k", fetch))).await;
        assert!(all.iter().all(|(v, _)| v.len() == 100));
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        let (_, hit) = c.get("k", fetch).await;
        assert!(hit);
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn answers_past_the_budget_are_not_all_kept() {
        let c: Coalesced<Arc<Vec<u8>>> =
            Coalesced::new(Duration::from_secs(60), 10_000, |v| v.len() as u32);
        for i in 0..100 {
            c.get(&format!("k{i}"), || async { Arc::new(vec![0u8; 1000]) })
                .await;
        }
        let recent = c.recent.as_ref().unwrap();
        recent.run_pending_tasks();
        assert!(
            recent.weighted_size() <= 10_000,
            "{}",
            recent.weighted_size()
        );
    }
}
