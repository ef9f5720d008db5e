//! Online trust data: fetch a repository's metadata from its notary server and verify it with the
//! pure core, with a per-repository cache.
//!
//! The core asks for files through [`MetadataSource`]; here that source is a map of what has been
//! fetched so far, which records the first file it lacks. The driver fetches that file and runs
//! the verification again, so the chain is fetched in exactly the order the core needs it:
//! `root.json` (and `N.root.json` only while walking rotations), `timestamp.json`, then snapshot,
//! targets and delegations **by hash** (`<role>.<sha256>.json`). Files fetched by hash never change,
//! so a refresh re-fetches only the timestamp and whatever its new snapshot points to.
//!
//! Per repository, one async mutex serialises refreshes: concurrent lookups of one repository
//! coalesce into one fetch. A verified repository is reused for `refresh` before the timestamp is
//! checked again, and never past the earliest `expires` in it; failures are cached briefly with
//! their reason only (what was downloaded for them is dropped); while the server is unreachable,
//! the cached data is used until it expires, and no longer.
//!
//! The cache ([`TrustDataCache`]) is weighed in bytes, not entries, with one budget shared by every
//! trust root of a configuration: whoever can publish trust data under a matched name cannot grow
//! it past that budget.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::Mutex;

use super::http::{AuthClient, BasicCredentials, FetchError};
use crate::metrics::{CacheName, Metrics, Upstream};

use crate::notary::verify::verify_repository;
use crate::notary::{
    Limits, MetadataSource, PinnedKey, Reason, TrustError, TrustState, TrustedRepo, VerifyContext,
};

/// How to reach one notary server.
#[derive(Debug, Clone)]
pub struct NotaryServer {
    /// `https://host:port`, no trailing slash.
    pub url: String,
    /// Extra CA certificates (PEM) trusted for this server and its token realm.
    pub ca_pem: Option<Vec<u8>>,
    /// Basic credentials for the token realm, when the server wants them.
    pub credentials: Option<BasicCredentials>,
    /// Deadline for each request (connect, headers and body).
    pub request_timeout: Duration,
}

/// A notary server client: `GET /v2/<GUN>/_trust/tuf/<file>`.
#[derive(Debug, Clone)]
pub struct NotaryClient {
    auth: AuthClient,
    server: NotaryServer,
}

impl NotaryClient {
    /// A client of `server`, recording its requests in `metrics`.
    pub fn new(server: NotaryServer, metrics: Arc<Metrics>) -> Result<Self, String> {
        let auth = AuthClient::new(
            Upstream::Notary,
            server.ca_pem.as_deref(),
            server.credentials.clone(),
            server.request_timeout,
            metrics,
        )?;
        Ok(NotaryClient { auth, server })
    }

    /// The same client, its exchanges run on `lane`.
    pub fn on(mut self, lane: super::Lane) -> Self {
        self.auth = self.auth.on(lane);
        self
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        &self.server.url
    }

    /// GETs `file` of `gun` (`root.json`, `3.root.json`, `snapshot.<hex>.json`, …).
    /// `Ok(None)` is a 404: the file does not exist (for `root.json`, the repository is unsigned).
    /// notary's token scope names the full GUN, registry host included.
    pub async fn get(
        &self,
        gun: &str,
        file: &str,
        cap: usize,
    ) -> Result<Option<Vec<u8>>, FetchError> {
        let url = format!("{}/v2/{gun}/_trust/tuf/{file}", self.server.url);
        let scope = format!("repository:{gun}:pull");
        Ok(self
            .auth
            .get(&url, &scope, None, cap)
            .await?
            .map(|f| f.body))
    }
}

impl From<FetchError> for TrustError {
    fn from(e: FetchError) -> TrustError {
        e.refusal("notary server")
    }
}

/// Tuning of the cache.
#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    /// How long a verified repository is used before its timestamp is checked again.
    pub refresh: Duration,
    /// How long a verification failure is remembered.
    pub negative_ttl: Duration,
    /// How long an unreachable server is not asked again (cached data, if valid, is used).
    pub unreachable_backoff: Duration,
    /// Bytes of trust data kept across all repositories (see [`TrustDataCache`]).
    pub max_bytes: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            refresh: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(10),
            unreachable_backoff: Duration::from_secs(5),
            max_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

/// Default budget of [`TrustDataCache`]: 64 MiB.
pub(crate) const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// What an entry weighs beyond its files (the key, the state, the parsed repository's share).
const ENTRY_OVERHEAD: usize = 1024;

/// Map key of a fetched file → its bytes, or `None` when the server said 404.
/// Fetched files by name (`None`: the server has none); shared with the verification rounds on
/// the lane's blocking threads.
type Files = BTreeMap<String, Option<Arc<[u8]>>>;

#[derive(Default)]
struct Entry {
    files: Files,
    /// Versions and root trusted so far for this repository (rollback and freeze protection).
    state: TrustState,
    /// The verified data, when it was checked, and the earliest `expires` in it.
    verified: Option<VerifiedData>,
    failure: Option<(TrustError, Instant)>,
    unreachable_until: Option<Instant>,
    /// Why the server was last unreachable.
    unreachable_cause: Option<FetchError>,
}

impl Entry {
    /// Bytes held: the files (a parsed repository holds about as much again).
    fn weight(&self) -> u32 {
        let files: usize = self
            .files
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, |b| b.len()))
            .sum();
        let parsed = if self.verified.is_some() { files } else { 0 };
        u32::try_from(files + parsed + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
    }
}

/// Verified data, when it was checked, and the earliest `expires` in it.
type VerifiedData = (Arc<TrustedRepo>, Instant, OffsetDateTime);

/// One repository's cache slot: its entry, a copy of its verified data readable without waiting
/// for the entry (the warm path of every review), and the weight last reported to the cache.
struct Slot {
    entry: Mutex<Entry>,
    /// `entry.verified` as of the last lookup. Lookups of one repository would otherwise queue on
    /// its async mutex even when all they need is the cached data.
    verified: std::sync::RwLock<Option<VerifiedData>>,
    weight: AtomicU32,
}

impl Slot {
    fn new() -> Arc<Slot> {
        Arc::new(Slot {
            entry: Mutex::new(Entry::default()),
            verified: std::sync::RwLock::new(None),
            weight: AtomicU32::new(u32::try_from(ENTRY_OVERHEAD).unwrap_or(u32::MAX)),
        })
    }

    /// The verified data, if it may be used at `now` without asking the server.
    fn reusable(
        &self,
        at: Instant,
        now: OffsetDateTime,
        refresh: Duration,
    ) -> Option<Arc<TrustedRepo>> {
        let v = self
            .verified
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        v.as_ref().and_then(|v| reusable(v, at, now, refresh))
    }

    fn publish(&self, e: &Entry) {
        *self
            .verified
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = e.verified.clone();
    }
}

/// Verified data is reused within `refresh` of its check, and never once anything in it has
/// expired.
fn reusable(
    (repo, checked, valid_until): &VerifiedData,
    at: Instant,
    now: OffsetDateTime,
    refresh: Duration,
) -> Option<Arc<TrustedRepo>> {
    (at.saturating_duration_since(*checked) < refresh && now < *valid_until)
        .then(|| Arc::clone(repo))
}

type CacheKey = (Arc<str>, String);

/// The trust data of every repository under a configuration's trust roots, keyed by trust root and
/// GUN, weighed in bytes with one budget; least-recently used repositories go first. Cheap to
/// clone (a handle).
#[derive(Clone)]
pub struct TrustDataCache {
    entries: moka::sync::Cache<CacheKey, Arc<Slot>>,
}

impl TrustDataCache {
    /// A cache of `max_bytes`; a repository it evicts has its trust data expiry series removed
    /// from `metrics` (a gauge left behind would page someone when it passes).
    pub fn new(max_bytes: u64, metrics: Arc<Metrics>) -> TrustDataCache {
        TrustDataCache {
            entries: moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_, slot: &Arc<Slot>| slot.weight.load(Ordering::Relaxed))
                .eviction_listener(move |key: Arc<CacheKey>, _, cause| {
                    if cause.was_evicted() {
                        metrics.forget_repository(&key.0, &key.1);
                    }
                })
                .build(),
        }
    }

    /// Bytes held now, by the cache's own accounting (after pending evictions run).
    pub fn weighted_size(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.weighted_size()
    }

    /// Repositories held now.
    pub fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }

    /// Whether it holds no repository.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slot(&self, key: &CacheKey) -> Arc<Slot> {
        self.entries.get_with_by_ref(key, Slot::new)
    }

    /// Reports `entry`'s new weight: re-inserting the slot makes the cache weigh it again.
    fn reweigh(&self, key: &CacheKey, slot: &Arc<Slot>, entry: &Entry) {
        let w = entry.weight();
        if slot.weight.swap(w, Ordering::Relaxed) != w {
            self.entries.insert(key.clone(), Arc::clone(slot));
        }
    }
}

/// The outcome of a lookup, with how it was served.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The verified trust data.
    pub repo: Arc<TrustedRepo>,
    /// Served from the cache without contacting the server.
    pub cache_hit: bool,
    /// Served from cached data because the server could not be reached.
    pub stale: bool,
}

/// Verified trust data of the repositories under one configured trust root.
pub struct TrustRootClient {
    name: Arc<str>,
    client: NotaryClient,
    pins: Arc<Vec<PinnedKey>>,
    limits: Limits,
    settings: CacheSettings,
    cache: TrustDataCache,
    requests: AtomicU64,
}

/// A file the verification needs and the map lacks.
struct Wanted {
    key: String,
    cap: usize,
}

/// The map of fetched files as a [`MetadataSource`]: records the first file it lacks and which
/// files the verification used.
struct Recorder {
    files: Files,
    wanted: RefCell<Option<Wanted>>,
    used: RefCell<BTreeSet<String>>,
}

impl Recorder {
    fn get(&self, key: String, cap: usize) -> Result<Option<Vec<u8>>, TrustError> {
        match self.files.get(&key) {
            Some(v) => {
                self.used.borrow_mut().insert(key);
                Ok(v.as_deref().map(<[u8]>::to_vec))
            }
            None => {
                let detail = format!("{key} is being fetched");
                self.wanted.borrow_mut().get_or_insert(Wanted { key, cap });
                Err(TrustError::new(Reason::MissingMetadata, None, detail))
            }
        }
    }
}

impl MetadataSource for Recorder {
    fn fetch(&self, name: &str, cap: usize) -> Result<Option<Vec<u8>>, TrustError> {
        self.get(name.to_owned(), cap)
    }

    fn fetch_pinned(
        &self,
        role: &str,
        cap: usize,
        sha256_hex: &str,
    ) -> Result<Option<Vec<u8>>, TrustError> {
        self.get(format!("{role}.{sha256_hex}.json"), cap)
    }
}

impl TrustRootClient {
    /// A client with a cache of its own (`settings.max_bytes`).
    pub fn new(
        name: impl Into<String>,
        client: NotaryClient,
        pins: Vec<PinnedKey>,
        limits: Limits,
        settings: CacheSettings,
    ) -> Self {
        let cache = TrustDataCache::new(settings.max_bytes, Arc::clone(client.auth.metrics()));
        Self::with_cache(name, client, pins, limits, settings, cache)
    }

    /// A client whose repositories live in `cache`, shared with other trust roots.
    pub(crate) fn with_cache(
        name: impl Into<String>,
        client: NotaryClient,
        pins: Vec<PinnedKey>,
        limits: Limits,
        settings: CacheSettings,
        cache: TrustDataCache,
    ) -> Self {
        TrustRootClient {
            name: Arc::from(name.into()),
            client,
            pins: Arc::new(pins),
            limits,
            settings,
            cache,
            requests: AtomicU64::new(0),
        }
    }

    fn metrics(&self) -> &Metrics {
        self.client.auth.metrics()
    }

    /// The cache this client keeps its repositories in.
    pub fn cache(&self) -> &TrustDataCache {
        &self.cache
    }

    fn key(&self, gun: &str) -> CacheKey {
        (Arc::clone(&self.name), gun.to_owned())
    }

    /// The configured trust root's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The notary server's URL.
    pub fn url(&self) -> &str {
        self.client.url()
    }

    /// HTTP requests made to the notary server so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The rollback memory (versions and last trusted root) of every repository in the cache,
    /// to carry over to the client that replaces this one. Blocking: waits for verifications
    /// in progress (call it from a blocking thread, not from async code).
    pub fn trust_states(&self) -> Vec<(String, TrustState)> {
        self.cache
            .entries
            .iter()
            .filter(|(key, _)| key.0 == self.name)
            .filter_map(|(key, slot)| {
                let state = slot.entry.blocking_lock().state.clone();
                (state != TrustState::default()).then(|| (key.1.clone(), state))
            })
            .collect()
    }

    /// Seeds repositories' rollback memory (from [`TrustRootClient::trust_states`] of the client
    /// this one replaces): their trust data is fetched again, and must not be older than what
    /// was trusted before. Blocking, like `trust_states`.
    pub fn remember(&self, states: Vec<(String, TrustState)>) {
        for (gun, state) in states {
            self.cache
                .slot(&self.key(&gun))
                .entry
                .blocking_lock()
                .state
                .merge(&state);
        }
    }

    /// The verified trust data of `gun` at `now`, from the cache or the server.
    pub async fn repository(&self, gun: &str, now: OffsetDateTime) -> Result<Lookup, TrustError> {
        let key = self.key(gun);
        let slot = self.cache.slot(&key);
        if let Some(repo) = slot.reusable(Instant::now(), now, self.settings.refresh) {
            self.metrics().cache_hit(CacheName::TrustData);
            return Ok(Lookup {
                repo,
                cache_hit: true,
                stale: false,
            });
        }
        let mut e = slot.entry.lock().await;
        let result = self.lookup(&mut e, gun, now).await;
        slot.publish(&e);
        self.cache.reweigh(&key, &slot, &e);
        result
    }

    async fn lookup(
        &self,
        e: &mut Entry,
        gun: &str,
        now: OffsetDateTime,
    ) -> Result<Lookup, TrustError> {
        let at = Instant::now();
        // Another lookup may have refreshed it while this one waited for the entry.
        if let Some(repo) = e
            .verified
            .as_ref()
            .and_then(|v| reusable(v, at, now, self.settings.refresh))
        {
            self.metrics().cache_hit(CacheName::TrustData);
            return Ok(Lookup {
                repo,
                cache_hit: true,
                stale: false,
            });
        }
        if let Some((err, until)) = &e.failure
            && at < *until
        {
            return Err(err.clone());
        }
        if e.unreachable_until.is_some_and(|u| at < u) {
            let cause = e.unreachable_cause.clone();
            return self.stale(e, gun, now, cause).await;
        }
        self.metrics().cache_miss(CacheName::TrustData);
        // Refresh: the timestamp is always fetched again; files fetched by hash are kept.
        let before: BTreeSet<String> = e.files.keys().cloned().collect();
        let old_timestamp = e.files.remove("timestamp.json");
        match self.refresh(e, gun, now).await {
            Ok(repo) => {
                e.failure = None;
                e.unreachable_until = None;
                e.unreachable_cause = None;
                let valid_until = repo
                    .expiries()
                    .into_iter()
                    .map(|(_, t)| t)
                    .min()
                    .unwrap_or(now);
                e.verified = Some((Arc::clone(&repo), Instant::now(), valid_until));
                for (role, expires) in repo.expiries() {
                    self.metrics()
                        .trust_expiry(&self.name, gun, &role, expires.unix_timestamp());
                }
                Ok(Lookup {
                    repo,
                    cache_hit: false,
                    stale: false,
                })
            }
            Err(Refresh::Unreachable(fetch_err)) => {
                e.unreachable_until = Some(Instant::now() + self.settings.unreachable_backoff);
                e.unreachable_cause = Some(fetch_err.clone());
                // Back to the files the verified data was built from; nothing without it.
                if e.verified.is_some() {
                    e.files.retain(|k, _| before.contains(k));
                    if let Some(ts) = old_timestamp {
                        e.files.insert("timestamp.json".to_owned(), ts);
                    }
                } else {
                    e.files.clear();
                }
                self.stale(e, gun, now, Some(fetch_err)).await
            }
            Err(Refresh::Failed(err)) => {
                // A failure keeps its reason and the rollback memory, not what was downloaded.
                e.failure = Some((err.clone(), Instant::now() + self.settings.negative_ttl));
                e.verified = None;
                e.files.clear();
                Err(err)
            }
        }
    }

    /// While the server is unreachable: the cached data, re-verified at `now` (so it is refused
    /// once anything in it expires), or an error saying why not.
    async fn stale(
        &self,
        e: &mut Entry,
        gun: &str,
        now: OffsetDateTime,
        cause: Option<FetchError>,
    ) -> Result<Lookup, TrustError> {
        let reason = match &cause {
            Some(FetchError::Timeout { .. }) => Reason::Timeout,
            _ => Reason::UpstreamError,
        };
        let cause = cause.map_or_else(
            || format!("notary server {} is unreachable", self.client.url()),
            |c| format!("notary server unreachable ({c})"),
        );
        if e.verified.is_none() {
            return Err(TrustError::new(
                reason,
                None,
                format!("{cause}; no cached trust data for {gun}"),
            ));
        }
        let walked = self
            .walk(gun, now, &e.state, &e.files)
            .await
            .map(|w| w.result);
        match walked.and_then(|r| r) {
            Ok(repo) => Ok(Lookup {
                repo: Arc::new(repo),
                cache_hit: true,
                stale: true,
            }),
            Err(err) => Err(TrustError::new(
                reason,
                None,
                format!("{cause}; cached trust data can no longer be used: {err}"),
            )),
        }
    }

    /// One walk of the chain over the files fetched so far, on the lane's blocking threads (off
    /// the async workers that answer reviews): what it found, the first file it lacks, and the
    /// files it used.
    async fn walk(
        &self,
        gun: &str,
        now: OffsetDateTime,
        state: &TrustState,
        files: &Files,
    ) -> Result<Walk, TrustError> {
        let (gun, pins, state, limits) = (
            gun.to_owned(),
            Arc::clone(&self.pins),
            state.clone(),
            self.limits,
        );
        let rec = Recorder {
            files: files.clone(),
            wanted: RefCell::new(None),
            used: RefCell::new(BTreeSet::new()),
        };
        self.client
            .auth
            .lane()
            .run_blocking(move || {
                let ctx = VerifyContext {
                    gun: &gun,
                    pins: &pins,
                    now,
                    previous: &state,
                    limits,
                };
                let result = verify_repository(&ctx, &rec);
                Walk {
                    result,
                    wanted: rec.wanted.into_inner(),
                    used: rec.used.into_inner(),
                }
            })
            .await
            .map_err(|l| TrustError::new(Reason::Internal, None, format!("verification: {}", l.0)))
    }

    /// Fetches what the verification asks for until it completes. A verification failure with a
    /// cached `root.json` is retried once with a fresh root (notary's `Update` does the same).
    async fn refresh(
        &self,
        e: &mut Entry,
        gun: &str,
        now: OffsetDateTime,
    ) -> Result<Arc<TrustedRepo>, Refresh> {
        let mut fresh_root = !e.files.contains_key("root.json");
        // Bounded: each round adds one file.
        let max_rounds = self.limits.max_root_versions + self.limits.max_delegations + 16;
        let mut rounds = 0;
        loop {
            rounds += 1;
            if rounds > max_rounds {
                return Err(Refresh::Failed(TrustError::new(
                    Reason::TooLarge,
                    None,
                    format!("{gun}: more than {max_rounds} metadata files"),
                )));
            }
            let Walk {
                result,
                wanted,
                used,
            } = self
                .walk(gun, now, &e.state, &e.files)
                .await
                .map_err(Refresh::Failed)?;
            if let Some(w) = wanted {
                self.requests.fetch_add(1, Ordering::Relaxed);
                let bytes = self.client.get(gun, &w.key, w.cap).await.map_err(|f| {
                    if f.is_unreachable() {
                        Refresh::Unreachable(f)
                    } else {
                        Refresh::Failed(f.into())
                    }
                })?;
                e.files.insert(w.key, bytes.map(Arc::from));
                continue;
            }
            match result {
                Ok(repo) => {
                    e.state.merge(repo.state());
                    // Keep only what this verification used.
                    e.files.retain(|k, _| used.contains(k));
                    return Ok(Arc::new(repo));
                }
                Err(err) if !fresh_root => {
                    // Perhaps the root rotated: fetch root.json (and the versions) again.
                    e.files.retain(|k, v| k != "root.json" && v.is_some());
                    fresh_root = true;
                    let _ = err;
                }
                Err(err) => return Err(Refresh::Failed(err)),
            }
        }
    }
}

/// What one walk of the chain found.
struct Walk {
    result: Result<TrustedRepo, TrustError>,
    /// The first file it lacks.
    wanted: Option<Wanted>,
    /// The files it read.
    used: BTreeSet<String>,
}

enum Refresh {
    /// The server could not be reached: cached data may stand in.
    Unreachable(FetchError),
    /// Verification (or a definite server answer) failed.
    Failed(TrustError),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository the byte budget evicts takes its trust data expiry series with it: the gauge
    /// of data no longer held (and no longer refreshed) would otherwise fire the expiry alert.
    #[test]
    fn an_evicted_repository_takes_its_expiry_series_with_it() {
        let metrics = Arc::new(Metrics::new());
        let cache = TrustDataCache::new(8 * 1024, Arc::clone(&metrics));
        for i in 0..20 {
            let key: CacheKey = (Arc::from("root"), format!("reg.example.com/ml/r{i}"));
            assert!(metrics.trust_expiry("root", &key.1, "targets", 2_000_000_000));
            let slot = cache.slot(&key);
            let mut entry = Entry::default();
            entry
                .files
                .insert("targets.json".into(), Some(Arc::from(vec![0u8; 2048])));
            cache.reweigh(&key, &slot, &entry);
        }
        let held = cache.len();
        assert!(held < 20, "nothing was evicted");
        let series = metrics
            .encode()
            .lines()
            .filter(|l| l.starts_with("signgate_trust_data_expiry_timestamp_seconds{"))
            .count();
        assert_eq!(series as u64, held, "{}", metrics.encode());
    }
}
