//! One image under a Notary v1 trust root: the trust data from its notary server (or an offline
//! bundle) and the digest its tag names at the registry, fetched concurrently; the trusted digest
//! must be the registry's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use time::OffsetDateTime;

use super::cpu::CpuPool;
use super::credentials::{notary_host, read};
use super::{SetupError, VerifierSettings};
use crate::config::{NotaryRoot, Reads, Registry};
use crate::notary::{
    self, Limits, Notary, Pinned, Reason, RoleRule, TrustError, VerifiedTarget, target,
};
use crate::reference::{Reference, RegistryHost};
use crate::scheme::{Scheme, Subject};
use crate::upstream::{
    DirSource, NotaryClient, NotaryServer, RegistrySettings, Resolved, Resolver, TrustDataCache,
    TrustRootClient,
};
use crate::verdict::Verified;

/// Verifies `reference` under `trust_root` at `now`:
/// - `name:tag`: the tag's trusted digest must equal the registry's current digest for the tag;
/// - `name:tag@sha256:…` and `name@sha256:…`: the digest in the reference is what runs, so the
///   registry is not asked; it must be the tag's trusted digest, or one trusted under some tag.
pub async fn verify_image(
    trust_root: &TrustRootClient,
    resolver: &Resolver,
    reference: &Reference,
    rule: &RoleRule,
    now: OffsetDateTime,
) -> Result<VerifiedTarget, TrustError> {
    verify(trust_root, resolver, reference, rule, now)
        .await
        .map(|(t, _)| t)
}

/// [`verify_image`], also saying whether the trust data came from the cache.
pub async fn verify(
    trust_root: &TrustRootClient,
    resolver: &Resolver,
    reference: &Reference,
    rule: &RoleRule,
    now: OffsetDateTime,
) -> Result<(VerifiedTarget, bool), TrustError> {
    let gun = reference.gun();
    let (lookup, registry) = tokio::join!(
        trust_root.repository(&gun, now),
        registry_digest(resolver, reference)
    );
    let lookup = lookup?;
    let trusted = target::select(&lookup.repo, reference, rule)?;
    notary::check_registry(&trusted, registry.transpose()?.as_ref().map(|r| &r.digest))?;
    Ok((trusted, lookup.cache_hit))
}

/// The registry's digest for a tag reference; `None` when the reference pins a digest.
async fn registry_digest(
    resolver: &Resolver,
    reference: &Reference,
) -> Option<Result<Resolved, TrustError>> {
    match reference.digest() {
        None => Some(resolver.resolve(reference).await),
        Some(_) => None,
    }
}

/// Verifies `reference` from an offline bundle (`dir/<GUN>/root.json`, …) with [`Notary`]'s judge
/// on the CPU pool (it reads files); the registry is asked for a tag's digest as online. No
/// rollback memory: the bundle is what the administrator put there.
async fn verify_offline(
    dir: &Path,
    root: &Arc<Pinned>,
    resolver: &Resolver,
    cpu: &CpuPool,
    reference: &Reference,
    now: OffsetDateTime,
    limits: Limits,
) -> Result<Verified, TrustError> {
    // The trust data's refusal comes first; the registry's failure only when it is trusted.
    let (manifest, unreachable) = match registry_digest(resolver, reference).await {
        Some(Ok(r)) => (Some(r.descriptor()), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let subject = Subject {
        reference: reference.clone(),
        manifest,
    };
    let (root, source) = (Arc::clone(root), DirSource::new(dir.join(reference.gun())));
    let verified = cpu
        .run(move |_| Notary::judge(&root, &source, &subject, now, &limits))
        .await??;
    match unreachable {
        Some(e) => Err(e),
        None => Ok(verified),
    }
}

/// What building a Notary v1 root needs from the whole configuration.
pub(super) struct NotarySetup<'a> {
    pub(super) registries: &'a [Registry],
    pub(super) registry_settings: &'a HashMap<RegistryHost, RegistrySettings>,
    pub(super) settings: &'a VerifierSettings,
    /// One byte budget for the trust data of every trust root.
    pub(super) cache: &'a TrustDataCache,
    /// Where the CA bundles are read.
    pub(super) reads: &'a Reads,
}

/// Where a Notary v1 trust root's trust data comes from.
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

/// A `notary:` trust root put to work.
pub(super) struct NotaryVerifier {
    source: RootSource,
    root: Arc<Pinned>,
}

impl NotaryVerifier {
    /// Reads the CA bundle and builds the clients of the trust root `name` (`field` names it in
    /// errors).
    pub(super) fn new(
        field: &str,
        name: &str,
        root: &NotaryRoot,
        setup: &NotarySetup<'_>,
    ) -> Result<NotaryVerifier, SetupError> {
        let settings = setup.settings;
        let source = match &root.offline_dir {
            Some(dir) => RootSource::Offline { dir: dir.clone() },
            None => {
                let ca_pem = root
                    .ca_file
                    .as_deref()
                    .map(|p| read(setup.reads, &format!("{field}: notary.caFile"), p))
                    .transpose()?;
                let client = |url: &url::Url| -> Result<Arc<TrustRootClient>, SetupError> {
                    // The notary server's host may also be a configured registry with
                    // credentials (Harbor serves both); its token realm then gets them.
                    let creds = notary_host(url)
                        .and_then(|h| setup.registry_settings.get(&h))
                        .and_then(|r| r.credentials.clone());
                    let client = NotaryClient::new(
                        NotaryServer {
                            url: url.as_str().trim_end_matches('/').to_owned(),
                            ca_pem: ca_pem.clone(),
                            credentials: creds,
                            request_timeout: settings.request_timeout,
                        },
                        Arc::clone(&settings.metrics),
                    )
                    .map(|c| c.on(settings.lane.clone()))
                    .map_err(|detail| SetupError::Invalid {
                        field: format!("{field}: notary.caFile"),
                        detail,
                    })?;
                    Ok(Arc::new(TrustRootClient::with_cache(
                        name,
                        client,
                        root.root_keys.clone(),
                        settings.limits,
                        settings.cache,
                        setup.cache.clone(),
                    )))
                };
                let mut clients = NotaryClients {
                    default: root.notary_url.as_ref().map(&client).transpose()?,
                    by_registry: HashMap::new(),
                };
                if clients.default.is_none() {
                    let mut by_url: HashMap<&url::Url, Arc<TrustRootClient>> = HashMap::new();
                    for r in setup.registries {
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
        Ok(NotaryVerifier {
            source,
            root: Arc::new(Pinned {
                keys: root.root_keys.clone(),
                rule: root.role_rule(),
            }),
        })
    }

    /// Verifies `reference` under this trust root (`name`), also saying whether the trust data
    /// came from the cache.
    pub(super) async fn verify(
        &self,
        name: &str,
        resolver: &Resolver,
        cpu: &CpuPool,
        reference: &Reference,
        now: OffsetDateTime,
        limits: Limits,
    ) -> Result<(Verified, bool), TrustError> {
        match &self.source {
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
                let (trusted, hit) =
                    verify(client, resolver, reference, &self.root.rule, now).await?;
                Ok((notary::verified_target(&trusted), hit))
            }
            RootSource::Offline { dir } => {
                verify_offline(dir, &self.root, resolver, cpu, reference, now, limits)
                    .await
                    .map(|v| (v, false))
            }
        }
    }

    /// HTTP requests made to its notary servers so far.
    pub(super) fn requests(&self) -> u64 {
        match &self.source {
            RootSource::Online(c) => c.all().iter().map(|c| c.requests()).sum(),
            RootSource::Offline { .. } => 0,
        }
    }

    /// Carries over the rollback memory of the repositories `prev` (the same trust root with
    /// the same pins, in the configuration this one replaces) kept, for those served by the same
    /// notary server. Returns the repositories carried.
    pub(super) fn remember_from(&self, prev: &NotaryVerifier) -> usize {
        let (RootSource::Online(new), RootSource::Online(prev)) = (&self.source, &prev.source)
        else {
            return 0;
        };
        let mut carried = 0;
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
        carried
    }
}
