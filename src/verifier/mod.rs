//! Everything a configuration needs to decide about one image: its policy, and for policies that
//! require a signature, the verification under the policy's trust root (online through its notary
//! server, or from its offline bundle) against the registry's digest.

mod credentials;
mod notary;
mod review;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::policy::{ImageDecision, Outcome, PolicyTarget};
use crate::reference::{Reference, RegistryHost};
use crate::trust::{self, Limits, Reason, RoleRule, TrustError, VerifiedTarget};
use crate::upstream::{
    CacheSettings, NotaryClient, NotaryServer, RegistrySettings, Resolver, TrustDataCache,
    TrustRootClient,
};

use credentials::{credentials, notary_host, read};
pub use notary::verify_image;
pub use review::evaluate;
pub(crate) use review::{barrier, panic_text};

/// Why a configuration cannot be put to work (read at startup: exit 2 / keep the old one).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{field}: cannot read {path}: {source}")]
    Read {
        field: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{field}: {detail}")]
    Invalid { field: String, detail: String },
}

/// How the verifier reaches the outside world, and where it records what it did.
#[derive(Debug, Clone)]
pub struct VerifierSettings {
    /// Deadline for each upstream request.
    pub request_timeout: Duration,
    /// How long a tag's registry digest is reused.
    pub digest_ttl: Duration,
    pub cache: CacheSettings,
    pub limits: Limits,
    /// Upstream requests, caches and trust data expiry are recorded here.
    pub metrics: Arc<Metrics>,
}

impl Default for VerifierSettings {
    fn default() -> Self {
        VerifierSettings {
            request_timeout: Duration::from_secs(3),
            digest_ttl: Duration::from_secs(5),
            cache: CacheSettings::default(),
            limits: Limits::default(),
            metrics: Arc::new(Metrics::new()),
        }
    }
}

enum RootSource {
    Online(NotaryClients),
    /// `offlineDir/<GUN>/root.json`, …: pinned keys and the rule come from the configuration.
    Offline {
        dir: PathBuf,
    },
}

/// The notary servers of one online trust root: its `notary.url`, or else the default notary
/// server of each image's registry (`registries[].notary`). Registries naming one URL share its
/// client and cache.
struct NotaryClients {
    default: Option<Arc<TrustRootClient>>,
    by_registry: HashMap<RegistryHost, Arc<TrustRootClient>>,
}

impl NotaryClients {
    fn for_host(&self, host: &RegistryHost) -> Option<&Arc<TrustRootClient>> {
        self.default.as_ref().or_else(|| self.by_registry.get(host))
    }

    /// Each client once.
    fn all(&self) -> Vec<&Arc<TrustRootClient>> {
        let mut all: Vec<&Arc<TrustRootClient>> = self.default.iter().collect();
        for c in self.by_registry.values() {
            if !all.iter().any(|a| Arc::ptr_eq(a, c)) {
                all.push(c);
            }
        }
        all
    }
}

struct Root {
    source: RootSource,
    pins: Vec<trust::PinnedKey>,
    rule: RoleRule,
}

/// The configuration put to work: trust root clients (with their caches) and the registry resolver.
pub struct Verifier {
    config: Arc<Config>,
    roots: HashMap<String, Root>,
    resolver: Resolver,
    settings: VerifierSettings,
}

impl Verifier {
    /// Builds clients for every trust root and registry; reads CA bundles and credentials now, so
    /// a broken reference fails at load time, naming the field.
    pub fn new(config: Arc<Config>, settings: VerifierSettings) -> Result<Verifier, SetupError> {
        let mut registries = HashMap::new();
        for (i, r) in config.registries().iter().enumerate() {
            let field = format!("registries[{i}] ({})", r.host);
            let ca_pem = r
                .ca_file
                .as_deref()
                .map(|p| read(&format!("{field}: caFile"), p))
                .transpose()?;
            let creds = r
                .credentials
                .as_ref()
                .map(|c| credentials(&format!("{field}: credentials"), c, &r.host))
                .transpose()?
                .flatten();
            registries.insert(
                r.host.clone(),
                RegistrySettings {
                    ca_pem,
                    credentials: creds,
                },
            );
        }
        // One byte budget for the trust data of every trust root.
        let cache = TrustDataCache::new(settings.cache.max_bytes, Arc::clone(&settings.metrics));
        let mut roots = HashMap::new();
        for (i, t) in config.trust_roots().iter().enumerate() {
            let field = format!("trustRoots[{i}] ({})", t.name);
            let source = match &t.offline_dir {
                Some(dir) => RootSource::Offline { dir: dir.clone() },
                None => {
                    let ca_pem = t
                        .ca_file
                        .as_deref()
                        .map(|p| read(&format!("{field}: notary.caFile"), p))
                        .transpose()?;
                    let client = |url: &url::Url| -> Result<Arc<TrustRootClient>, SetupError> {
                        // The notary server's host may also be a configured registry with
                        // credentials (Harbor serves both); its token realm then gets them.
                        let creds = notary_host(url)
                            .and_then(|h| registries.get(&h))
                            .and_then(|r: &RegistrySettings| r.credentials.clone());
                        let client = NotaryClient::new(
                            NotaryServer {
                                url: url.as_str().trim_end_matches('/').to_owned(),
                                ca_pem: ca_pem.clone(),
                                credentials: creds,
                                request_timeout: settings.request_timeout,
                            },
                            Arc::clone(&settings.metrics),
                        )
                        .map_err(|detail| SetupError::Invalid {
                            field: format!("{field}: notary.caFile"),
                            detail,
                        })?;
                        Ok(Arc::new(TrustRootClient::with_cache(
                            t.name.clone(),
                            client,
                            t.root_keys.clone(),
                            settings.limits,
                            settings.cache,
                            cache.clone(),
                        )))
                    };
                    let mut clients = NotaryClients {
                        default: t.notary_url.as_ref().map(&client).transpose()?,
                        by_registry: HashMap::new(),
                    };
                    if clients.default.is_none() {
                        let mut by_url: HashMap<&url::Url, Arc<TrustRootClient>> = HashMap::new();
                        for r in config.registries() {
                            let Some(url) = &r.notary else { continue };
                            let c = match by_url.get(url) {
                                Some(c) => Arc::clone(c),
                                None => {
                                    let c = client(url)?;
                                    by_url.insert(url, Arc::clone(&c));
                                    c
                                }
                            };
                            clients.by_registry.insert(r.host.clone(), c);
                        }
                    }
                    RootSource::Online(clients)
                }
            };
            roots.insert(
                t.name.clone(),
                Root {
                    source,
                    pins: t.root_keys.clone(),
                    rule: t.role_rule(),
                },
            );
        }
        let resolver = Resolver::new(
            registries,
            RegistrySettings::default(),
            settings.request_timeout,
            settings.digest_ttl,
            Arc::clone(&settings.metrics),
        );
        Ok(Verifier {
            config,
            roots,
            resolver,
            settings,
        })
    }

    /// Carries the rollback memory over from `old`, the verifier this one replaces, for every
    /// repository of an online trust root whose name and pinned root keys are unchanged and whose
    /// notary server is the same (new pins or a new server start afresh: they may replace a
    /// compromised root). Returns the repositories carried. Blocking (see
    /// [`TrustRootClient::trust_states`]).
    pub(crate) fn remember_from(&self, old: &Verifier) -> usize {
        let mut carried = 0;
        for t in self.config.trust_roots() {
            let Some(before) = old.config.trust_roots().iter().find(|o| o.name == t.name) else {
                continue;
            };
            if before.root_keys != t.root_keys {
                continue;
            }
            let (Some(new), Some(prev)) = (self.roots.get(&t.name), old.roots.get(&t.name)) else {
                continue;
            };
            let (RootSource::Online(new), RootSource::Online(prev)) = (&new.source, &prev.source)
            else {
                continue;
            };
            for prev_client in prev.all() {
                for (gun, state) in prev_client.trust_states() {
                    let Some(host) = gun
                        .split('/')
                        .next()
                        .and_then(|h| RegistryHost::parse(h).ok())
                    else {
                        continue;
                    };
                    let (Some(n), Some(p)) = (new.for_host(&host), prev.for_host(&host)) else {
                        continue;
                    };
                    // Only the client that serves this repository carries its memory.
                    if Arc::ptr_eq(p, prev_client) && n.url() == p.url() {
                        n.remember(vec![(gun, state)]);
                        carried += 1;
                    }
                }
            }
        }
        carried
    }

    /// The configuration this verifier was built from.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Upstream requests made so far (notary servers and registries).
    pub fn upstream_requests(&self) -> u64 {
        self.resolver.requests()
            + self
                .roots
                .values()
                .map(|r| match &r.source {
                    RootSource::Online(c) => c.all().iter().map(|c| c.requests()).sum(),
                    RootSource::Offline { .. } => 0,
                })
                .sum::<u64>()
    }

    /// Decides about `image` in `namespace` (with its labels) at `now`.
    pub async fn decide(
        &self,
        image: &str,
        namespace: &str,
        labels: &BTreeMap<String, String>,
        now: OffsetDateTime,
    ) -> ImageDecision {
        let started = std::time::Instant::now();
        let reference = match Reference::parse(image) {
            Ok(r) => r,
            Err(e) => {
                let err = TrustError::new(
                    Reason::InvalidReference,
                    None,
                    format!("invalid image reference: {e}"),
                );
                return ImageDecision::unmatched(image, err, started.elapsed().as_secs_f64());
            }
        };
        let found = self.config.policies().select(&reference, namespace, labels);
        let (outcome, cache_hit) = match found.target() {
            PolicyTarget::Allow => (Outcome::AllowedByPolicy, false),
            PolicyTarget::Deny => (Outcome::DeniedByPolicy, false),
            PolicyTarget::Verify { trust_root, .. } => {
                match self.verify(trust_root, &reference, now).await {
                    Ok((t, hit)) => (Outcome::Verified(t), hit),
                    Err(e) => (Outcome::Failed(e), false),
                }
            }
        };
        ImageDecision::under(
            image,
            &found,
            outcome,
            cache_hit,
            started.elapsed().as_secs_f64(),
        )
    }

    /// Verifies `reference` under the trust root `name`.
    pub async fn verify(
        &self,
        name: &str,
        reference: &Reference,
        now: OffsetDateTime,
    ) -> Result<(VerifiedTarget, bool), TrustError> {
        let root = self.roots.get(name).ok_or_else(|| {
            TrustError::new(
                Reason::UpstreamError,
                None,
                format!("trust root {name:?} is not configured"),
            )
        })?;
        match &root.source {
            RootSource::Online(clients) => {
                let client = clients.for_host(reference.host()).ok_or_else(|| {
                    TrustError::new(
                        Reason::NoNotaryServer,
                        None,
                        format!(
                            "trust root {name:?} names no notary server and registry {} has no default notary (registries[].notary)",
                            reference.host()
                        ),
                    )
                })?;
                notary::verify(client, &self.resolver, reference, &root.rule, now).await
            }
            RootSource::Offline { dir } => {
                notary::verify_offline(
                    dir,
                    &root.pins,
                    &root.rule,
                    &self.resolver,
                    reference,
                    now,
                    self.settings.limits,
                )
                .await
            }
        }
    }
}
