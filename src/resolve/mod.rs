//! Registry resolution: the digest a tag points to now (oci-client), with the full Accept list so
//! distribution does not down-convert to schema1, the body's sha256 checked against the digest, and
//! bounded retry on 429.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use sha2::{Digest as _, Sha256};

use crate::notary::BasicCredentials;
use crate::reference::{Digest, Reference};
use crate::trust::{Reason, TrustError};

/// Manifest types a tag may name (notary-v1.md §10).
pub const MANIFEST_TYPES: [&str; 4] = [
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

/// Resolves tags to digests, one oci-client per registry host.
pub struct Resolver {
    settings: HashMap<String, RegistrySettings>,
    default: RegistrySettings,
    timeout: Duration,
    clients: std::sync::Mutex<HashMap<String, Arc<oci_client::Client>>>,
    /// In-flight resolutions: concurrent lookups of one reference share one request.
    inflight: std::sync::Mutex<HashMap<String, Arc<Pending>>>,
    /// Recent answers, reused for `ttl`.
    recent: Option<moka::sync::Cache<String, Result<Resolved, TrustError>>>,
    requests: AtomicU64,
}

impl Resolver {
    /// `settings` per registry host (`host[:port]`); `default` for any other registry.
    /// Answers are reused for `ttl` (zero: only concurrent lookups share one request).
    pub fn new(
        settings: HashMap<String, RegistrySettings>,
        default: RegistrySettings,
        timeout: Duration,
        ttl: Duration,
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
        }
    }

    /// Manifest requests made so far (each may include a token request).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn client(&self, host: &str) -> Result<(Arc<oci_client::Client>, RegistryAuth), TrustError> {
        let s = self.settings.get(host).unwrap_or(&self.default);
        let auth = match &s.credentials {
            Some(c) => RegistryAuth::Basic(c.username.clone(), c.password.clone()),
            None => RegistryAuth::Anonymous,
        };
        let mut clients = self.clients.lock().map_err(|_| {
            TrustError::new(
                Reason::UpstreamError,
                None,
                "registry client cache poisoned",
            )
        })?;
        if let Some(c) = clients.get(host) {
            return Ok((Arc::clone(c), auth));
        }
        let mut extra = Vec::new();
        if let Some(pem) = &s.ca_pem {
            extra.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data: pem.clone(),
            });
        }
        let config = ClientConfig {
            protocol: ClientProtocol::Https,
            extra_root_certificates: extra,
            read_timeout: Some(self.timeout),
            connect_timeout: Some(self.timeout),
            ..ClientConfig::default()
        };
        let c = Arc::new(oci_client::Client::new(config));
        clients.insert(host.to_owned(), Arc::clone(&c));
        Ok((c, auth))
    }

    /// The digest and length of the manifest `reference` names at its registry now.
    pub async fn resolve(&self, reference: &Reference) -> Result<Resolved, TrustError> {
        let key = reference.to_string();
        if let Some(hit) = self.recent.as_ref().and_then(|c| c.get(&key)) {
            return hit;
        }
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
        let (client, auth) = self.client(reference.domain())?;
        let image = oci_reference(reference)?;
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=3 {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let call = client.pull_manifest_raw(&image, &auth, &MANIFEST_TYPES);
            let result = match tokio::time::timeout(self.timeout, call).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(TrustError::new(
                        Reason::Timeout,
                        None,
                        format!(
                            "registry {} did not answer within {:.1} s",
                            reference.domain(),
                            self.timeout.as_secs_f64()
                        ),
                    ));
                }
            };
            match result {
                Ok((body, header_digest)) => return check_body(reference, &body, &header_digest),
                Err(e) if attempt < 3 && is_rate_limited(&e) => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => return Err(map_error(reference, &e)),
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

/// The manifest body must hash to the digest the registry states.
fn check_body(
    reference: &Reference,
    body: &[u8],
    header_digest: &str,
) -> Result<Resolved, TrustError> {
    let raw: [u8; 32] = Sha256::digest(body).into();
    let computed = Digest::from_sha256(&raw);
    if computed.as_str() != header_digest {
        return Err(TrustError::new(
            Reason::DigestMismatch,
            None,
            format!(
                "registry {} sent a manifest for {reference} whose sha256 is {computed}, not the stated {header_digest}",
                reference.domain()
            ),
        ));
    }
    Ok(Resolved {
        digest: computed,
        length: u64::try_from(body.len()).unwrap_or(u64::MAX),
    })
}

fn oci_reference(r: &Reference) -> Result<oci_client::Reference, TrustError> {
    let image = match (r.tag(), r.digest()) {
        (_, Some(d)) => oci_client::Reference::with_digest(
            r.domain().to_owned(),
            r.path().to_owned(),
            d.to_string(),
        ),
        (Some(t), None) => oci_client::Reference::with_tag(
            r.domain().to_owned(),
            r.path().to_owned(),
            t.to_owned(),
        ),
        (None, None) => {
            return Err(TrustError::new(
                Reason::InvalidReference,
                None,
                format!("image {r} has neither tag nor digest"),
            ));
        }
    };
    Ok(image)
}

fn is_rate_limited(e: &OciDistributionError) -> bool {
    matches!(e, OciDistributionError::ServerError { code: 429, .. })
        || e.to_string().contains("TOOMANYREQUESTS")
}

fn map_error(reference: &Reference, e: &OciDistributionError) -> TrustError {
    let host = reference.domain();
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => TrustError::new(
            Reason::ImageNotFound,
            None,
            format!("registry {host} has no manifest for {reference}"),
        ),
        OciDistributionError::ServerError { code: 404, .. } => TrustError::new(
            Reason::ImageNotFound,
            None,
            format!("registry {host} has no manifest for {reference}"),
        ),
        OciDistributionError::RegistryError { envelope, .. }
            if envelope.errors.iter().any(|x| {
                matches!(
                    x.code,
                    oci_client::errors::OciErrorCode::ManifestUnknown
                        | oci_client::errors::OciErrorCode::NameUnknown
                )
            }) =>
        {
            TrustError::new(
                Reason::ImageNotFound,
                None,
                format!("registry {host} has no manifest for {reference}"),
            )
        }
        other => {
            let mut detail = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(s) = src {
                detail.push_str(": ");
                detail.push_str(&s.to_string());
                src = s.source();
            }
            let reason = if detail.contains("timed out") || detail.contains("operation timed out") {
                Reason::Timeout
            } else {
                Reason::UpstreamError
            };
            TrustError::new(reason, None, format!("registry {host}: {detail}"))
        }
    }
}
