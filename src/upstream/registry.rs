//! Registries: the digest a tag points to now, with the full Accept list so distribution does not
//! down-convert to schema1, the body's sha256 checked against the digest header; and the
//! documents signatures live in (manifests, a digest's referrers, blobs), each read with a cap and,
//! when fetched by digest, checked against it. 429 is retried a bounded number of times.
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

use super::coalesce::Coalesced;
use super::http::{AuthClient, BasicCredentials, FetchError, Fetched};
use super::lane::Lane;
use crate::metrics::{CacheName, Metrics, Upstream};
use crate::reference::{Digest, Reference, RegistryHost};
use crate::verdict::{Reason, TrustError};

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

pub use crate::scheme::MAX_SIGNATURE_MANIFEST;
/// Bytes of registry documents kept across the burst caches.
const DOCUMENT_CACHE_BYTES: u64 = 32 * 1024 * 1024;
/// How long a document fetched by digest (it cannot change) is reused.
const IMMUTABLE_TTL: Duration = Duration::from_secs(600);

/// How to reach one registry.
#[derive(Debug, Clone, Default)]
pub struct RegistrySettings {
    /// Extra CA certificates (PEM) trusted besides the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Credentials for the registry's token realm (or Basic); `None`: anonymous.
    pub credentials: Option<BasicCredentials>,
}

/// What the registry holds for a reference: the manifest's digest, size and media type, taken
/// from the bytes signgate hashed itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The sha256 of the manifest bytes.
    pub digest: Digest,
    /// The manifest's size in bytes.
    pub length: u64,
    /// The manifest's `mediaType`, else the `Content-Type` it was served with.
    pub media_type: String,
}

impl Resolved {
    /// The manifest as signatures describe their subject.
    pub fn descriptor(&self) -> crate::scheme::Descriptor {
        crate::scheme::Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.length,
        }
    }
}

/// A document fetched from a registry and checked against its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The sha256 of `bytes`, computed here.
    pub digest: Digest,
    /// The body's `mediaType`, else the `Content-Type` it was served with; empty when neither.
    pub media_type: String,
    /// The body, at most the cap it was fetched under.
    pub bytes: Arc<[u8]>,
}

/// A document answer as the caches keep it; `None` is a 404.
type DocAnswer = Result<Option<Document>, TrustError>;

fn weigh_doc(a: &DocAnswer) -> u32 {
    match a {
        Ok(Some(d)) => u32::try_from(d.bytes.len()).unwrap_or(u32::MAX),
        _ => 256,
    }
}

/// Resolves tags to digests over one capped, token-aware client per configured registry (and
/// one for all others).
pub struct Resolver {
    settings: HashMap<RegistryHost, RegistrySettings>,
    default: RegistrySettings,
    timeout: Duration,
    /// By configured host; `None`: every other registry.
    clients: std::sync::Mutex<HashMap<Option<RegistryHost>, Arc<AuthClient>>>,
    /// Tag (and digest) resolutions: a burst shares one request, answers reused for `ttl`.
    resolved: Coalesced<Result<Resolved, TrustError>>,
    /// Mutable documents (referrers lists, signature tags), reused for `ttl`.
    listings: Coalesced<DocAnswer>,
    /// Documents by digest (signature manifests, blobs), reused longer: they cannot change.
    immutable: Coalesced<DocAnswer>,
    requests: AtomicU64,
    metrics: Arc<Metrics>,
    /// Where registry exchanges run.
    lane: Lane,
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
            resolved: Coalesced::new(ttl, 4 * 1024 * 1024, |_| 512),
            listings: Coalesced::new(ttl, DOCUMENT_CACHE_BYTES / 4, weigh_doc),
            immutable: Coalesced::new(
                if ttl.is_zero() { ttl } else { IMMUTABLE_TTL },
                DOCUMENT_CACHE_BYTES,
                weigh_doc,
            ),
            requests: AtomicU64::new(0),
            metrics,
            lane: Lane::inline(),
        }
    }

    /// The same resolver, its registry exchanges run on `lane`.
    pub fn on(mut self, lane: Lane) -> Self {
        self.lane = lane;
        self
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
        .map_err(|e| TrustError::new(Reason::UpstreamError, None, format!("registry {host}: {e}")))?
        .on(self.lane.clone());
        let c = Arc::new(c);
        clients.insert(key, Arc::clone(&c));
        Ok(c)
    }

    /// The digest, length and media type of the manifest `reference` names at its registry now
    /// (for a digest reference, the manifest is fetched by that digest and checked against it).
    pub async fn resolve(&self, reference: &Reference) -> Result<Resolved, TrustError> {
        let key = reference.to_string();
        let (answer, hit) = self
            .resolved
            .get(&key, || async {
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
                let fetched = self
                    .fetch(
                        reference.host(),
                        reference.path(),
                        "manifests",
                        &target,
                        &MANIFEST_TYPES.join(", "),
                        MAX_MANIFEST,
                    )
                    .await?
                    .ok_or_else(|| {
                        TrustError::new(
                            Reason::ImageNotFound,
                            None,
                            format!(
                                "registry {} has no manifest for {reference}",
                                reference.domain()
                            ),
                        )
                    })?;
                let stated = fetched
                    .headers
                    .get("docker-content-digest")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                check_body(reference, &fetched, stated.as_deref())
            })
            .await;
        if hit {
            self.metrics.cache_hit(CacheName::Digest);
        } else {
            self.metrics.cache_miss(CacheName::Digest);
        }
        answer
    }

    /// The manifest `target` (a tag, or a digest it is checked against) of the repository
    /// `path` at `host`; `None` when the registry has none. Manifests by digest are kept longer:
    /// they cannot change.
    pub async fn manifest(
        &self,
        host: &RegistryHost,
        path: &str,
        target: &str,
        cap: usize,
    ) -> Result<Option<Document>, TrustError> {
        let by_digest = Digest::parse(target).ok();
        let cache = if by_digest.is_some() {
            &self.immutable
        } else {
            &self.listings
        };
        let key = format!("{host}/{path}/manifests/{target}");
        cache
            .get(&key, || async {
                let Some(f) = self
                    .fetch(
                        host,
                        path,
                        "manifests",
                        target,
                        &MANIFEST_TYPES.join(", "),
                        cap,
                    )
                    .await?
                else {
                    return Ok(None);
                };
                let doc = document(&f, cap)?;
                if let Some(want) = &by_digest
                    && want != &doc.digest
                {
                    return Err(TrustError::new(
                        Reason::DigestMismatch,
                        None,
                        format!(
                            "registry {host} sent a manifest for {path}@{want} whose sha256 is {}",
                            doc.digest
                        ),
                    ));
                }
                Ok(Some(doc))
            })
            .await
            .0
    }

    /// The referrers of `digest` in the repository `path` at `host` as an OCI image index: the
    /// referrers API (`GET /v2/<name>/referrers/<digest>`), else, where the registry has no such
    /// API (404, as distribution 2.8 answers), the referrers tag schema (`sha256-<hex>`). `None`:
    /// nothing refers to it. Unfiltered: every signature format filters the one list.
    pub async fn referrers(
        &self,
        host: &RegistryHost,
        path: &str,
        digest: &Digest,
    ) -> Result<Option<Document>, TrustError> {
        let key = format!("{host}/{path}/referrers/{digest}");
        self.listings
            .get(&key, || async {
                let api = self
                    .fetch(
                        host,
                        path,
                        "referrers",
                        digest.as_str(),
                        "application/vnd.oci.image.index.v1+json",
                        MAX_SIGNATURE_MANIFEST,
                    )
                    .await?;
                if let Some(f) = api {
                    return document(&f, MAX_SIGNATURE_MANIFEST).map(Some);
                }
                let tag = referrers_tag(digest);
                match self
                    .fetch(
                        host,
                        path,
                        "manifests",
                        &tag,
                        &MANIFEST_TYPES.join(", "),
                        MAX_SIGNATURE_MANIFEST,
                    )
                    .await?
                {
                    Some(f) => document(&f, MAX_SIGNATURE_MANIFEST).map(Some),
                    None => Ok(None),
                }
            })
            .await
            .0
    }

    /// The blob `digest` of `size` bytes in the repository `path` at `host`, checked against
    /// both; refused when `size` is over `cap` (before anything is fetched).
    pub async fn blob(
        &self,
        host: &RegistryHost,
        path: &str,
        digest: &Digest,
        size: u64,
        cap: usize,
    ) -> Result<Document, TrustError> {
        if usize::try_from(size).map_or(true, |s| s > cap) {
            return Err(TrustError::new(
                Reason::TooLarge,
                None,
                format!("blob {digest} of {size} bytes is over the {cap}-byte cap"),
            ));
        }
        let key = format!("{host}/{path}/blobs/{digest}");
        let answer = self
            .immutable
            .get(&key, || async {
                let f = self
                    .fetch(host, path, "blobs", digest.as_str(), "*/*", cap)
                    .await?
                    .ok_or_else(|| {
                        TrustError::new(
                            Reason::ImageNotFound,
                            None,
                            format!("registry {host} has no blob {digest} in {path}"),
                        )
                    })?;
                document(&f, cap).map(Some)
            })
            .await
            .0?;
        let doc = answer.ok_or_else(|| {
            TrustError::new(Reason::ImageNotFound, None, format!("no blob {digest}"))
        })?;
        if &doc.digest != digest || doc.bytes.len() as u64 != size {
            return Err(TrustError::new(
                Reason::DigestMismatch,
                None,
                format!(
                    "registry {host} sent {} bytes hashing to {} for blob {digest} of {size} bytes",
                    doc.bytes.len(),
                    doc.digest
                ),
            ));
        }
        Ok(doc)
    }

    /// GETs `/v2/<path>/<kind>/<target>` at `host`, retrying 429 twice; `None` is a 404.
    async fn fetch(
        &self,
        host: &RegistryHost,
        path: &str,
        kind: &str,
        target: &str,
        accept: &str,
        cap: usize,
    ) -> Result<Option<Fetched>, TrustError> {
        let client = self.client(host)?;
        let url = format!("https://{}/v2/{path}/{kind}/{target}", host.api_host());
        let scope = format!("repository:{path}:pull");
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=3 {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let fetched = if kind == "blobs" {
                client.get_blob(&url, &scope, cap).await
            } else {
                client.get(&url, &scope, Some(accept), cap).await
            };
            match fetched {
                Ok(f) => return Ok(f),
                Err(FetchError::Status { status: 429, .. }) if attempt < 3 => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => return Err(e.refusal("registry")),
            }
        }
        Err(TrustError::new(
            Reason::UpstreamError,
            None,
            format!("registry {host} kept answering 429 Too Many Requests"),
        ))
    }
}

/// The referrers tag schema's tag for `digest`: `<algorithm>-<encoded>` (the OCI distribution
/// spec cuts them to 32 and 64 characters; sha256's fit).
pub fn referrers_tag(digest: &Digest) -> String {
    digest.as_str().replacen(':', "-", 1)
}

/// A fetched body with its digest and media type (the body's `mediaType`, else the
/// `Content-Type` header).
fn document(f: &Fetched, cap: usize) -> Result<Document, TrustError> {
    if f.body.len() > cap {
        return Err(TrustError::new(
            Reason::TooLarge,
            None,
            format!("a registry document is over its {cap}-byte cap"),
        ));
    }
    let raw: [u8; 32] = Sha256::digest(&f.body).into();
    Ok(Document {
        digest: Digest::from_sha256(&raw),
        media_type: media_type(f),
        bytes: Arc::from(f.body.as_slice()),
    })
}

/// The `mediaType` a JSON body declares, else its `Content-Type`.
fn media_type(f: &Fetched) -> String {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<Typed>(&f.body)
        .ok()
        .and_then(|t| t.media_type)
        .or_else(|| {
            f.headers
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned())
        })
        .unwrap_or_default()
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
    fetched: &Fetched,
    stated: Option<&str>,
) -> Result<Resolved, TrustError> {
    let body = &fetched.body;
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
        media_type: media_type(fetched),
    })
}
