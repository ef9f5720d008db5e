//! Everything a configuration needs to decide about one image: its policy, and for policies that
//! require a signature, the verification under each of the policy's trust roots against the
//! registry's digest: Notary v1 (online through its notary server, or from its offline bundle),
//! Notation and cosign (signatures read from the registry beside the image). The signature checks
//! run off the async workers (`cpu.rs`), on the upstream lane under `serve`.

mod cpu;
mod credentials;
mod decisions;
mod notary;
mod review;
mod root;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::config::{Config, Reads, RootKind};
use crate::cosign::{self, Cosign};
use crate::metrics::Metrics;
use crate::notary::Limits;
use crate::notation::{self, Notation};
use crate::policy::{ImageDecision, Kind, Outcome, PolicyDecision, PolicyTarget, RootCheck};
use crate::reference::Reference;
use crate::upstream::{CacheSettings, Lane, RegistrySettings, Resolver, TrustDataCache};
use crate::verdict::{Reason, TrustError};

use cpu::CpuPool;
use credentials::{credentials, read};
pub use notary::verify_image;
use notary::{NotarySetup, NotaryVerifier};
pub use review::evaluate;
pub(crate) use review::{barrier, panic_text};
use root::SchemeRoot;

/// Why a configuration cannot be put to work (read at startup: exit 2 / keep the old one).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A file the configuration names cannot be read.
    #[error("{field}: cannot read {path}: {source}")]
    Read {
        /// The configuration field naming it.
        field: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A value the configuration gives cannot be used.
    #[error("{field}: {detail}")]
    Invalid {
        /// The configuration field.
        field: String,
        /// What is wrong with it.
        detail: String,
    },
}

/// How the verifier reaches the outside world, and where it records what it did.
#[derive(Debug, Clone)]
pub struct VerifierSettings {
    /// Deadline for each upstream request.
    pub request_timeout: Duration,
    /// How long a tag's registry digest is reused.
    pub digest_ttl: Duration,
    /// The trust data cache's size and refresh settings.
    pub cache: CacheSettings,
    /// Notary v1 size and count caps.
    pub limits: Limits,
    /// Upstream requests, caches and trust data expiry are recorded here.
    pub metrics: Arc<Metrics>,
    /// Where upstream exchanges and signature checks run (`serve`: a runtime of their own).
    pub lane: Lane,
}

impl Default for VerifierSettings {
    fn default() -> Self {
        VerifierSettings {
            request_timeout: Duration::from_secs(3),
            digest_ttl: Duration::from_secs(5),
            cache: CacheSettings::default(),
            limits: Limits::default(),
            metrics: Arc::new(Metrics::new()),
            lane: Lane::inline(),
        }
    }
}

/// A configured trust root put to work.
enum RootVerifier {
    Notary(NotaryVerifier),
    Notation(SchemeRoot<Notation>),
    Cosign(SchemeRoot<Cosign>),
}

/// The configuration put to work: trust root clients (with their caches) and the registry resolver.
pub struct Verifier {
    config: Arc<Config>,
    roots: HashMap<String, RootVerifier>,
    resolver: Resolver,
    /// Where Notation and cosign signature checks run.
    cpu: CpuPool,
    settings: VerifierSettings,
}

impl Verifier {
    /// Builds clients for every trust root and registry; reads CA bundles and credentials now, so
    /// a broken reference fails at load time, naming the field.
    pub fn new(config: Arc<Config>, settings: VerifierSettings) -> Result<Verifier, SetupError> {
        Verifier::new_recorded(config, settings, &Reads::new())
    }

    /// [`Verifier::new`], every file read recorded in `reads` (a reload watches them).
    pub(crate) fn new_recorded(
        config: Arc<Config>,
        settings: VerifierSettings,
        reads: &Reads,
    ) -> Result<Verifier, SetupError> {
        let mut registries = HashMap::new();
        for (i, r) in config.registries().iter().enumerate() {
            let field = format!("registries[{i}] ({})", r.host);
            let ca_pem = r
                .ca_file
                .as_deref()
                .map(|p| read(reads, &format!("{field}: caFile"), p))
                .transpose()?;
            let creds = r
                .credentials
                .as_ref()
                .map(|c| credentials(reads, &format!("{field}: credentials"), c, &r.host))
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
            let root = match &t.kind {
                RootKind::Notary(n) => RootVerifier::Notary(NotaryVerifier::new(
                    &field,
                    &t.name,
                    n,
                    &NotarySetup {
                        registries: config.registries(),
                        registry_settings: &registries,
                        settings: &settings,
                        cache: &cache,
                        reads,
                    },
                )?),
                RootKind::Notation(p) => RootVerifier::Notation(SchemeRoot::new(
                    p.clone(),
                    notation::Limits::default(),
                    Kind::Notation,
                    Arc::clone(&settings.metrics),
                )),
                RootKind::Cosign(c) => RootVerifier::Cosign(SchemeRoot::new(
                    c.clone(),
                    cosign::Limits::default(),
                    Kind::Cosign,
                    Arc::clone(&settings.metrics),
                )),
            };
            roots.insert(t.name.clone(), root);
        }
        let resolver = Resolver::new(
            registries,
            RegistrySettings::default(),
            settings.request_timeout,
            settings.digest_ttl,
            Arc::clone(&settings.metrics),
        )
        .on(settings.lane.clone());
        Ok(Verifier {
            config,
            roots,
            resolver,
            cpu: CpuPool::new(settings.lane.clone()),
            settings,
        })
    }

    /// Carries the rollback memory over from `old`, the verifier this one replaces, for every
    /// Notary v1 trust root whose name and pinned root keys are unchanged and whose notary server
    /// is the same (new pins or a new server start afresh: they may replace a compromised root).
    /// Returns the repositories carried. Blocking (see [`TrustRootClient::trust_states`]).
    pub(crate) fn remember_from(&self, old: &Verifier) -> usize {
        let mut carried = 0;
        for t in self.config.trust_roots() {
            let Some(before) = old.config.trust_roots().iter().find(|o| o.name == t.name) else {
                continue;
            };
            if let (
                Some(RootVerifier::Notary(new)),
                Some(RootVerifier::Notary(prev)),
                Some(n),
                Some(p),
            ) = (
                self.roots.get(&t.name),
                old.roots.get(&t.name),
                t.notary(),
                before.notary(),
            ) && n.root_keys == p.root_keys
            {
                carried += new.remember_from(prev);
            }
        }
        carried
    }

    /// Where it records upstream requests, caches and trust data expiry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.settings.metrics
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
                .map(|r| match r {
                    RootVerifier::Notary(n) => n.requests(),
                    // Notation fetches through the resolver, counted above.
                    RootVerifier::Notation(_) | RootVerifier::Cosign(_) => 0,
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
        self.decide_with(image, namespace, Ok(labels), now).await
    }

    /// [`Verifier::decide`] when the namespace's labels may be unknown (`Err`: why): if the
    /// image's policy depends on them, the image is denied with that reason, whatever the mode
    /// (a label-selected warn policy cannot be told from a later enforce one); otherwise the
    /// labels do not matter.
    pub async fn decide_with(
        &self,
        image: &str,
        namespace: &str,
        labels: Result<&BTreeMap<String, String>, &TrustError>,
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
        let found = match self.policy_for(&reference, namespace, labels) {
            Ok(found) => found,
            Err(e) => return ImageDecision::unmatched(image, e, started.elapsed().as_secs_f64()),
        };
        let (outcome, checks) = match found.target() {
            PolicyTarget::Allow => (Outcome::AllowedByPolicy, Vec::new()),
            PolicyTarget::Deny => (Outcome::DeniedByPolicy, Vec::new()),
            PolicyTarget::Verify {
                trust_roots,
                require,
                ..
            } => {
                let checks = futures_util::future::join_all(
                    trust_roots
                        .iter()
                        .map(|name| self.check(name, &reference, now)),
                )
                .await;
                (Outcome::combine(*require, &checks), checks)
            }
        };
        ImageDecision::under(
            image,
            &found,
            outcome,
            checks,
            started.elapsed().as_secs_f64(),
        )
    }

    /// The policy for `reference` in `namespace`; when it depends on labels that are unknown
    /// (`Err`: why), that error: signgate cannot tell which policy applies.
    pub(crate) fn policy_for(
        &self,
        reference: &Reference,
        namespace: &str,
        labels: Result<&BTreeMap<String, String>, &TrustError>,
    ) -> Result<PolicyDecision<'_>, TrustError> {
        let policies = self.config.policies();
        match labels {
            Ok(labels) => Ok(policies.select(reference, namespace, labels)),
            Err(e) if policies.needs_labels(reference, namespace) => Err(e.clone()),
            // The choice does not depend on the labels.
            Err(_) => Ok(policies.select(reference, namespace, &BTreeMap::new())),
        }
    }

    /// What the trust root `name` finds for `reference`.
    async fn check(&self, name: &str, reference: &Reference, now: OffsetDateTime) -> RootCheck {
        let started = std::time::Instant::now();
        let (kind, found) = match self.roots.get(name) {
            None => (
                Kind::Notary,
                Err(TrustError::new(
                    Reason::Internal,
                    None,
                    format!("trust root {name:?} is not configured"),
                )),
            ),
            Some(RootVerifier::Notary(n)) => (
                Kind::Notary,
                n.verify(
                    name,
                    &self.resolver,
                    &self.cpu,
                    reference,
                    now,
                    self.settings.limits,
                )
                .await,
            ),
            Some(RootVerifier::Notation(n)) => (
                Kind::Notation,
                n.verify(name, &self.resolver, &self.cpu, reference, now)
                    .await,
            ),
            Some(RootVerifier::Cosign(c)) => (
                Kind::Cosign,
                c.verify(name, &self.resolver, &self.cpu, reference, now)
                    .await,
            ),
        };
        let (result, cache_hit) = match found {
            Ok((v, hit)) => (Ok(v), hit),
            Err(e) => (Err(e), false),
        };
        RootCheck {
            trust_root: name.to_owned(),
            kind,
            result,
            cache_hit,
            seconds: started.elapsed().as_secs_f64(),
        }
    }
}
