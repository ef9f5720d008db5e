//! Registry resolution: the digest a tag points to now, with the full Accept list so distribution
//! does not down-convert to schema1, the body's sha256 checked against the digest header, and
//! bounded retry on 429.
//!
//! This uses the same capped, token-aware HTTPS client as the notary client rather than
//! oci-client: oci-client reads a manifest body without any size limit, so a hostile registry
//! could stream hundreds of MiB into every resolution (measured: ~350 MiB/s), and it checks the
//! digest header itself with an error signgate could not tell from a network failure.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::http::{AuthClient, BasicCredentials, FetchError};
use crate::metrics::{CacheName, Metrics, Upstream};
use crate::reference::{Digest, Reference, RegistryHost};
use crate::trust::{Reason, TrustError};

/// Largest manifest accepted (distribution's own limit is 4 MiB).
pub(crate) const MAX_MANIFEST: usize = 4 * 1024 * 1024;

/// Manifest types a tag may name: Docker v2 and OCI manifests and their multi-platform lists
/// (docker's `distribution/manifest` packages; schema1 is refused).
pub(crate) const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
];

/// One resolution, shared by the lookups that arrive while it runs.
type Pending = tokio::sync::OnceCell<Result<Resolved, TrustError>>;

/// How to reach one registry.
#[derive(Debug, Clone, Default)]
pub struct RegistrySettings {
    pub ca_pem: Option<Vec<u8>>,
    pub credentials: Option<BasicCredentials>,
}

/// What the registry holds for a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub digest: Digest,
    pub length: u64,
}

/// Resolves tags to digests over one capped, token-aware client per configured registry (and
/// one for all others).
pub struct Resolver {
    settings: HashMap<RegistryHost, RegistrySettings>,
    default: RegistrySettings,
    timeout: Duration,
    /// By configured host; `None`: every other registry.
    clients: std::sync::Mutex<HashMap<Option<RegistryHost>, Arc<AuthClient>>>,
    /// In-flight resolutions: concurrent lookups of one reference share one request.
    inflight: std::sync::Mutex<HashMap<String, Arc<Pending>>>,
    /// Recent answers, reused for `ttl`.
    recent: Option<moka::sync::Cache<String, Result<Resolved, TrustError>>>,
    requests: AtomicU64,
    metrics: Arc<Metrics>,
}

impl Resolver {
    /// `settings` per registry host (`host[:port]`); `default` for any other registry.
    /// Answers are reused for `ttl` (zero: only concurrent lookups share one request). Requests and
    /// the digest cache are recorded in `metrics`.
    pub fn new(
        settings: HashMap<RegistryHost, RegistrySettings>,
        default: RegistrySettings,
        timeout: Duration,
        ttl: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        Resolver {
            settings,
            default,
            timeout,
            clients: std::sync::Mutex::new(HashMap::new()),
            inflight: std::sync::Mutex::new(HashMap::new()),
            recent: (!ttl.is_zero()).then(|| {
                moka::sync::Cache::builder()
                    .max_capacity(10_000)
                    .time_to_live(ttl)
                    .build()
            }),
            requests: AtomicU64::new(0),
            metrics,
        }
    }

    /// Manifest requests made so far (each may include a token request).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The client for `host`: its own for a configured registry, one shared by every other
    /// registry (they all use the default settings). So the clients kept are bounded by the
    /// configuration, not by the hosts image references name; tokens are kept per host inside.
    fn client(&self, host: &RegistryHost) -> Result<Arc<AuthClient>, TrustError> {
        let key = self.settings.contains_key(host).then(|| host.clone());
        let mut clients = self.clients.lock().map_err(|_| poisoned())?;
        if let Some(c) = clients.get(&key) {
            return Ok(Arc::clone(c));
        }
        let s = self.settings.get(host).unwrap_or(&self.default);
        let c = AuthClient::new(
            Upstream::Registry,
            s.ca_pem.as_deref(),
            s.credentials.clone(),
            self.timeout,
            Arc::clone(&self.metrics),
        )
        .map_err(|e| {
            TrustError::new(Reason::UpstreamError, None, format!("registry {host}: {e}"))
        })?;
        let c = Arc::new(c);
        clients.insert(key, Arc::clone(&c));
        Ok(c)
    }

    /// The digest and length of the manifest `reference` names at its registry now.
    pub async fn resolve(&self, reference: &Reference) -> Result<Resolved, TrustError> {
        let key = reference.to_string();
        if let Some(hit) = self.recent.as_ref().and_then(|c| c.get(&key)) {
            self.metrics.cache_hit(CacheName::Digest);
            return hit;
        }
        self.metrics.cache_miss(CacheName::Digest);
        let cell = {
            let mut inflight = self.inflight.lock().map_err(|_| poisoned())?;
            Arc::clone(inflight.entry(key.clone()).or_default())
        };
        let answer = cell.get_or_init(|| self.fetch(reference)).await.clone();
        {
            let mut inflight = self.inflight.lock().map_err(|_| poisoned())?;
            if inflight.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                inflight.remove(&key);
            }
        }
        if let Some(recent) = &self.recent {
            recent.insert(key, answer.clone());
        }
        answer
    }

    async fn fetch(&self, reference: &Reference) -> Result<Resolved, TrustError> {
        let client = self.client(reference.host())?;
        let host = reference.host().api_host();
        let target = match (reference.digest(), reference.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_owned(),
            (None, None) => {
                return Err(TrustError::new(
                    Reason::InvalidReference,
                    None,
                    format!("image {reference} has neither tag nor digest"),
                ));
            }
        };
        let url = format!("https://{host}/v2/{}/manifests/{target}", reference.path());
        let scope = format!("repository:{}:pull", reference.path());
        let accept = MANIFEST_TYPES.join(", ");
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=3 {
            self.requests.fetch_add(1, Ordering::Relaxed);
            match client.get(&url, &scope, Some(&accept), MAX_MANIFEST).await {
                Ok(Some(f)) => {
                    let stated = f
                        .headers
                        .get("docker-content-digest")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    return check_body(reference, &f.body, stated.as_deref());
                }
                Ok(None) => {
                    return Err(TrustError::new(
                        Reason::ImageNotFound,
                        None,
                        format!(
                            "registry {} has no manifest for {reference}",
                            reference.domain()
                        ),
                    ));
                }
                Err(FetchError::Status { status: 429, .. }) if attempt < 3 => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => {
                    let reason = match e {
                        FetchError::Timeout { .. } => Reason::Timeout,
                        FetchError::TooLarge { .. } => Reason::TooLarge,
                        _ => Reason::UpstreamError,
                    };
                    return Err(TrustError::new(reason, None, format!("registry {e}")));
                }
            }
        }
        Err(TrustError::new(
            Reason::UpstreamError,
            None,
            format!(
                "registry {} kept answering 429 Too Many Requests",
                reference.domain()
            ),
        ))
    }
}

fn poisoned() -> TrustError {
    TrustError::new(
        Reason::UpstreamError,
        None,
        "registry resolver state poisoned",
    )
}

/// The manifest body must hash to the digest the registry states (and to the reference's own
/// digest, if it names one).
fn check_body(
    reference: &Reference,
    body: &[u8],
    stated: Option<&str>,
) -> Result<Resolved, TrustError> {
    let raw: [u8; 32] = Sha256::digest(body).into();
    let computed = Digest::from_sha256(&raw);
    for (what, want) in [
        ("the stated", stated),
        ("the referenced", reference.digest().map(Digest::as_str)),
    ] {
        if let Some(want) = want
            && want != computed.as_str()
        {
            return Err(TrustError::new(
                Reason::DigestMismatch,
                None,
                format!(
                    "registry {} sent a manifest for {reference} whose sha256 is {computed}, not {what} {want}",
                    reference.domain()
                ),
            ));
        }
    }
    Ok(Resolved {
        digest: computed,
        length: u64::try_from(body.len()).unwrap_or(u64::MAX),
    })
}
