//! Every signgate metric family, in one place (SPEC "Metrics"), encoded as OpenMetrics text.
//!
//! Labels are bounded by construction: fixed sets are `&'static str` or enums; the admission `kind`
//! and `operation` are folded into fixed sets; `trust_root` names come from the configuration;
//! upstream `host` values are capped at [`MAX_UPSTREAM_HOSTS`] per upstream (then `other`); trust
//! data expiry series are capped at [`MAX_TRUST_EXPIRY_SERIES`] in total. Never an image reference,
//! tag or digest.
//!
//! Every family is written (`# HELP`/`# TYPE`) even before it has samples, and counters with
//! known label values start at zero, so dashboards and alerts see 0 rather than "no data".

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};

use crate::notary::Reason;
pub use crate::policy::Decision;
use crate::policy::{Kind, Mode};

/// Content type of [`Metrics::encode`]'s output.
pub(crate) const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Histogram buckets in seconds: sub-millisecond cache hits to the 10 s webhook timeout.
pub(crate) const DURATION_BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Distinct `host` label values kept per upstream; further hosts are counted as `other`.
pub(crate) const MAX_UPSTREAM_HOSTS: usize = 64;

/// `signgate_trust_data_expiry_timestamp_seconds` series kept in total; further
/// (trust root, GUN, role) combinations are not exported until [`Metrics::forget_repository`] or
/// [`Metrics::set_trust_roots`] frees room.
pub(crate) const MAX_TRUST_EXPIRY_SERIES: usize = 2000;

/// Label value for values outside a fixed set.
pub(crate) const OTHER: &str = "other";

/// Reason label when a verification succeeded.
pub(crate) const REASON_NONE: &str = "none";

/// Object kinds the webhook reviews; any other kind is labelled `other`.
pub const KINDS: [&str; 8] = [
    "Pod",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "ReplicationController",
];

/// Admission operations; anything else is labelled `other`.
pub(crate) const OPERATIONS: [&str; 4] = ["CREATE", "UPDATE", "DELETE", "CONNECT"];

/// The outcome of verifying one image against a trust root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VerificationResult {
    /// The image is signed as the trust root requires.
    Trusted,
    /// The trust data refuses the image.
    Untrusted,
    /// The answer could not be had: an upstream failed or timed out.
    Error,
}

impl VerificationResult {
    /// The `result` label value: `trusted`, `untrusted` or `error`.
    pub const fn as_str(self) -> &'static str {
        match self {
            VerificationResult::Trusted => "trusted",
            VerificationResult::Untrusted => "untrusted",
            VerificationResult::Error => "error",
        }
    }

    /// The result for a verification that failed with `reason` (`None`: it succeeded). Upstream
    /// failures and timeouts are errors; every other reason is a refusal.
    pub const fn of(reason: Option<Reason>) -> Self {
        match reason {
            None => VerificationResult::Trusted,
            Some(Reason::UpstreamError | Reason::Timeout) => VerificationResult::Error,
            Some(_) => VerificationResult::Untrusted,
        }
    }
}

/// Whether a verification was answered from cached trust data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheOutcome {
    /// Answered from the cache.
    Hit,
    /// Fetched (or verified) anew.
    Miss,
}

impl CacheOutcome {
    /// The `cache` label value: `hit` or `miss`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Miss => "miss",
        }
    }

    /// [`CacheOutcome::Hit`] when `hit`, else [`CacheOutcome::Miss`].
    pub const fn from_hit(hit: bool) -> Self {
        if hit {
            CacheOutcome::Hit
        } else {
            CacheOutcome::Miss
        }
    }
}

/// The caches whose hits and misses are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheName {
    /// Verified notary trust data per repository.
    TrustData,
    /// Registry tag → digest answers.
    Digest,
}

impl CacheName {
    pub(crate) const ALL: [CacheName; 2] = [CacheName::TrustData, CacheName::Digest];

    /// The `cache` label value: `trust_data` or `digest`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CacheName::TrustData => "trust_data",
            CacheName::Digest => "digest",
        }
    }
}

/// The kind of upstream server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Upstream {
    /// A container registry.
    Registry,
    /// A Notary v1 server.
    Notary,
}

impl Upstream {
    /// The `upstream` label value: `registry` or `notary`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Upstream::Registry => "registry",
            Upstream::Notary => "notary",
        }
    }
}

/// How an upstream request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpstreamStatus {
    /// An HTTP response with this status code.
    Http(u16),
    /// No answer within the deadline.
    Timeout,
    /// No HTTP response: connection, TLS or protocol failure.
    Error,
}

impl UpstreamStatus {
    fn label(self) -> String {
        match self {
            UpstreamStatus::Http(code) => code.to_string(),
            UpstreamStatus::Timeout => "timeout".to_owned(),
            UpstreamStatus::Error => "error".to_owned(),
        }
    }
}

/// The outcome of a reload (configuration or serving certificate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReloadResult {
    /// The new configuration or certificate is in service.
    Success,
    /// It was refused; the previous one stays in service.
    Failure,
}

impl ReloadResult {
    pub(crate) const ALL: [ReloadResult; 2] = [ReloadResult::Success, ReloadResult::Failure];

    /// The `result` label value: `success` or `failure`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReloadResult::Success => "success",
            ReloadResult::Failure => "failure",
        }
    }
}

/// The fixed `kind` label for an object kind.
pub(crate) fn kind_label(kind: &str) -> &'static str {
    KINDS.iter().copied().find(|k| *k == kind).unwrap_or(OTHER)
}

/// The fixed `operation` label for an admission operation.
pub(crate) fn operation_label(operation: &str) -> &'static str {
    OPERATIONS
        .iter()
        .copied()
        .find(|o| *o == operation)
        .unwrap_or(OTHER)
}

/// The `mode` label: the policy mode, or `none` when no verifying policy applied.
pub(crate) fn mode_label(mode: Option<Mode>) -> &'static str {
    mode.map_or("none", Mode::as_str)
}

// === label sets ===

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AdmissionLabels {
    kind: &'static str,
    operation: &'static str,
    decision: &'static str,
    mode: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DecisionLabels {
    decision: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct VerificationLabels {
    trust_root: String,
    kind: &'static str,
    result: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct VerificationDurationLabels {
    trust_root: String,
    kind: &'static str,
    cache: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct UpstreamLabels {
    upstream: &'static str,
    host: String,
    status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct UpstreamDurationLabels {
    upstream: &'static str,
    host: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CacheLabels {
    cache: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TrustExpiryLabels {
    trust_root: String,
    gun: String,
    role: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// Registers a metric so that its `# HELP`/`# TYPE` lines are written even with no samples
/// (prometheus-client skips empty families).
#[derive(Debug)]
struct AlwaysShown<M>(M);

impl<M: EncodeMetric> EncodeMetric for AlwaysShown<M> {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }
}

impl<M: TypedMetric> TypedMetric for AlwaysShown<M> {
    const TYPE: MetricType = M::TYPE;
}

/// A gauge without labels that has no sample until it is first set, so that an unknown value is
/// absent rather than a 0 that looks like a long-expired certificate.
#[derive(Debug, Clone, Default)]
struct UnsetGauge {
    gauge: Gauge,
    set: Arc<AtomicBool>,
}

impl UnsetGauge {
    fn set(&self, v: i64) {
        self.gauge.set(v);
        self.set.store(true, Ordering::Release);
    }
}

impl EncodeMetric for UnsetGauge {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), fmt::Error> {
        if self.set.load(Ordering::Acquire) {
            self.gauge.encode(encoder)
        } else {
            Ok(())
        }
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

/// Creates a series at its zero value.
fn touch<S, M, C>(family: &Family<S, M, C>, labels: &S)
where
    S: Clone + std::hash::Hash + Eq,
    C: prometheus_client::metrics::family::MetricConstructor<M>,
{
    drop(family.get_or_create(labels));
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AuditWorkloadLabels {
    policy: String,
    verdict: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct VerdictLabels {
    verdict: &'static str,
}

/// What one audit of the running Pods found, as the audit metrics show it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditRun {
    /// Pods by (policy, verdict): a Pod counts under its worst container's verdict and policy.
    /// Policies are configured names (or `defaultAction`); verdicts a closed set.
    pub workloads: Vec<(String, &'static str, u64)>,
    /// Distinct (namespace, image) decisions by verdict.
    pub images: Vec<(&'static str, u64)>,
    /// When it finished (unix seconds).
    pub finished_unix: i64,
    /// How long it took.
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RelaxedLabels {
    trust_root: String,
    kind: &'static str,
    step: &'static str,
    reason: &'static str,
}

/// Which expiry series exist, per trust root: (GUN, role).
type TrustSeries = HashMap<String, HashSet<(String, String)>>;

/// All signgate metrics and their registry. Cheap to share behind an `Arc`; every method takes
/// `&self`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    admission_requests: Family<AdmissionLabels, Counter>,
    admission_duration: HistogramFamily<DecisionLabels>,
    verifications: Family<VerificationLabels, Counter>,
    verification_duration: HistogramFamily<VerificationDurationLabels>,
    upstream_requests: Family<UpstreamLabels, Counter>,
    upstream_duration: HistogramFamily<UpstreamDurationLabels>,
    cache_hits: Family<CacheLabels, Counter>,
    cache_misses: Family<CacheLabels, Counter>,
    trust_expiry: Family<TrustExpiryLabels, Gauge>,
    config_reloads: Family<ResultLabels, Counter>,
    tls_expiry: UnsetGauge,
    tls_reloads: Family<ResultLabels, Counter>,
    relaxed_checks: Family<RelaxedLabels, Counter>,
    internal_errors: Counter,
    kube_watch_restarts: Counter,
    kube_watch_errors: Counter,
    kube_namespaces: UnsetGauge,
    audit_workloads: Family<AuditWorkloadLabels, Gauge>,
    audit_images: Family<VerdictLabels, Gauge>,
    audit_last_run: UnsetGauge,
    audit_duration: Gauge<f64, std::sync::atomic::AtomicU64>,
    upstream_hosts: Mutex<HashMap<Upstream, HashSet<String>>>,
    trust_series: Mutex<TrustSeries>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every family under the `signgate_` prefix, with `signgate_build_info` set for this
    /// build's version and counters for known label values at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("signgate");
        let admission_requests = Family::<AdmissionLabels, Counter>::default();
        let admission_duration: HistogramFamily<DecisionLabels> =
            Family::new_with_constructor(duration_histogram);
        let verifications = Family::<VerificationLabels, Counter>::default();
        let verification_duration: HistogramFamily<VerificationDurationLabels> =
            Family::new_with_constructor(duration_histogram);
        let upstream_requests = Family::<UpstreamLabels, Counter>::default();
        let upstream_duration: HistogramFamily<UpstreamDurationLabels> =
            Family::new_with_constructor(duration_histogram);
        let cache_hits = Family::<CacheLabels, Counter>::default();
        let cache_misses = Family::<CacheLabels, Counter>::default();
        let trust_expiry = Family::<TrustExpiryLabels, Gauge>::default();
        let config_reloads = Family::<ResultLabels, Counter>::default();
        let tls_expiry = UnsetGauge::default();
        let tls_reloads = Family::<ResultLabels, Counter>::default();
        let build_info = Family::<VersionLabels, Gauge>::default();
        let relaxed_checks = Family::<RelaxedLabels, Counter>::default();
        let internal_errors = Counter::default();
        let kube_watch_restarts = Counter::default();
        let kube_watch_errors = Counter::default();
        let kube_namespaces = UnsetGauge::default();
        let audit_workloads = Family::<AuditWorkloadLabels, Gauge>::default();
        let audit_images = Family::<VerdictLabels, Gauge>::default();
        let audit_last_run = UnsetGauge::default();
        let audit_duration = Gauge::<f64, std::sync::atomic::AtomicU64>::default();

        registry.register(
            "admission_requests",
            "AdmissionReviews answered, by object kind, operation, decision and policy mode",
            AlwaysShown(admission_requests.clone()),
        );
        registry.register_with_unit(
            "admission_duration",
            "Time to answer an AdmissionReview",
            Unit::Seconds,
            AlwaysShown(admission_duration.clone()),
        );
        registry.register(
            "verifications",
            "Image verifications against a trust root, by result and reason",
            AlwaysShown(verifications.clone()),
        );
        registry.register_with_unit(
            "verification_duration",
            "Time to verify one image against a trust root",
            Unit::Seconds,
            AlwaysShown(verification_duration.clone()),
        );
        registry.register(
            "upstream_requests",
            "Requests to registries and notary servers, by host and status (HTTP code or failure)",
            AlwaysShown(upstream_requests.clone()),
        );
        registry.register_with_unit(
            "upstream_duration",
            "Time of requests to registries and notary servers",
            Unit::Seconds,
            AlwaysShown(upstream_duration.clone()),
        );
        registry.register(
            "cache_hits",
            "Lookups answered from a cache",
            AlwaysShown(cache_hits.clone()),
        );
        registry.register(
            "cache_misses",
            "Lookups a cache could not answer",
            AlwaysShown(cache_misses.clone()),
        );
        registry.register_with_unit(
            "trust_data_expiry_timestamp",
            "Expiry (unix time) of the verified trust data of a repository's role",
            Unit::Seconds,
            AlwaysShown(trust_expiry.clone()),
        );
        registry.register(
            "config_reloads",
            "Configuration reloads, by result",
            AlwaysShown(config_reloads.clone()),
        );
        registry.register_with_unit(
            "tls_certificate_expiry_timestamp",
            "NotAfter (unix time) of the serving certificate in use",
            Unit::Seconds,
            tls_expiry.clone(),
        );
        registry.register(
            "tls_certificate_reloads",
            "Serving certificate reloads after its files changed, by result",
            AlwaysShown(tls_reloads.clone()),
        );
        registry.register(
            "relaxed_checks",
            "Verification steps that failed on an accepted signature because the trust root's level only logs them (Notation permissive/audit), by step and reason",
            relaxed_checks.clone(),
        );
        registry.register(
            "internal_errors",
            "Panics caught while deciding a review or an image (each answered as a denial)",
            internal_errors.clone(),
        );
        registry.register(
            "kube_watch_restarts",
            "Times the namespace list was fetched again after the first (a lost watch the API server could not resume, e.g. 410 Gone)",
            kube_watch_restarts.clone(),
        );
        registry.register(
            "kube_watch_errors",
            "Failed namespace list or watch requests to the Kubernetes API (each retried with backoff)",
            kube_watch_errors.clone(),
        );
        registry.register(
            "kube_namespaces",
            "Namespaces in the watched cache of namespace labels (absent until the first list completed)",
            kube_namespaces.clone(),
        );
        registry.register(
            "audit_workloads",
            "Running Pods at the last audit, by the policy and verdict of their worst container (serve --audit)",
            audit_workloads.clone(),
        );
        registry.register(
            "audit_images",
            "Distinct (namespace, image) decisions at the last audit, by verdict",
            audit_images.clone(),
        );
        registry.register_with_unit(
            "audit_last_run_timestamp",
            "When the last audit of the running Pods finished (absent until one has)",
            Unit::Seconds,
            audit_last_run.clone(),
        );
        registry.register_with_unit(
            "audit_duration",
            "How long the last audit of the running Pods took",
            Unit::Seconds,
            audit_duration.clone(),
        );
        registry.register(
            "build_info",
            "Build information; the value is always 1",
            AlwaysShown(build_info.clone()),
        );

        build_info
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        for decision in Decision::ALL {
            touch(
                &admission_requests,
                &AdmissionLabels {
                    kind: "Pod",
                    operation: "CREATE",
                    decision: decision.as_str(),
                    mode: mode_label(Some(Mode::Enforce)),
                },
            );
            touch(
                &admission_duration,
                &DecisionLabels {
                    decision: decision.as_str(),
                },
            );
        }
        for cache in CacheName::ALL {
            let labels = CacheLabels {
                cache: cache.as_str(),
            };
            touch(&cache_hits, &labels);
            touch(&cache_misses, &labels);
        }
        for result in ReloadResult::ALL {
            let labels = ResultLabels {
                result: result.as_str(),
            };
            touch(&config_reloads, &labels);
            touch(&tls_reloads, &labels);
        }

        Metrics {
            registry,
            admission_requests,
            admission_duration,
            verifications,
            verification_duration,
            upstream_requests,
            upstream_duration,
            cache_hits,
            cache_misses,
            trust_expiry,
            config_reloads,
            tls_expiry,
            tls_reloads,
            relaxed_checks,
            internal_errors,
            kube_watch_restarts,
            kube_watch_errors,
            kube_namespaces,
            audit_workloads,
            audit_images,
            audit_last_run,
            audit_duration,
            upstream_hosts: Mutex::new(HashMap::new()),
            trust_series: Mutex::new(HashMap::new()),
        }
    }

    /// Declares the configured trust roots: their zero-valued series are created, and trust data
    /// expiry series of roots no longer configured are removed (stale gauges would fire expiry
    /// alerts). Call at startup and after each configuration reload.
    pub fn set_trust_roots(&self, roots: &[(&str, Kind)]) {
        for (name, kind) in roots {
            let trust_root = (*name).to_owned();
            let kind = kind.as_str();
            touch(
                &self.verifications,
                &VerificationLabels {
                    trust_root: trust_root.clone(),
                    kind,
                    result: VerificationResult::Trusted.as_str(),
                    reason: REASON_NONE,
                },
            );
            for cache in [CacheOutcome::Hit, CacheOutcome::Miss] {
                touch(
                    &self.verification_duration,
                    &VerificationDurationLabels {
                        trust_root: trust_root.clone(),
                        kind,
                        cache: cache.as_str(),
                    },
                );
            }
        }
        let mut series = self
            .trust_series
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let gone: Vec<String> = series
            .keys()
            .filter(|root| !roots.iter().any(|(n, _)| *n == root.as_str()))
            .cloned()
            .collect();
        for root in gone {
            if let Some(entries) = series.remove(&root) {
                for (gun, role) in entries {
                    self.trust_expiry.remove(&TrustExpiryLabels {
                        trust_root: root.clone(),
                        gun,
                        role,
                    });
                }
            }
        }
    }

    /// One AdmissionReview answered. `kind` and `operation` are folded into fixed sets ([`KINDS`],
    /// [`OPERATIONS`], else `other`); `mode` is the policy mode that decided (`None`: no verifying
    /// policy applied).
    pub fn admission(
        &self,
        kind: &str,
        operation: &str,
        decision: Decision,
        mode: Option<Mode>,
        seconds: f64,
    ) {
        self.admission_requests
            .get_or_create(&AdmissionLabels {
                kind: kind_label(kind),
                operation: operation_label(operation),
                decision: decision.as_str(),
                mode: mode_label(mode),
            })
            .inc();
        self.admission_duration
            .get_or_create(&DecisionLabels {
                decision: decision.as_str(),
            })
            .observe(seconds);
    }

    /// One image verified against a configured trust root. `reason` is a fixed name: a
    /// [`Reason::as_str`], or [`REASON_NONE`] when trusted.
    pub fn verification(
        &self,
        trust_root: &str,
        kind: Kind,
        result: VerificationResult,
        reason: &'static str,
        cache: CacheOutcome,
        seconds: f64,
    ) {
        self.verifications
            .get_or_create(&VerificationLabels {
                trust_root: trust_root.to_owned(),
                kind: kind.as_str(),
                result: result.as_str(),
                reason,
            })
            .inc();
        self.verification_duration
            .get_or_create(&VerificationDurationLabels {
                trust_root: trust_root.to_owned(),
                kind: kind.as_str(),
                cache: cache.as_str(),
            })
            .observe(seconds);
    }

    /// One request to a registry or notary server. `host` is `host[:port]`; after
    /// [`MAX_UPSTREAM_HOSTS`] distinct hosts per upstream, new ones are labelled `other`.
    pub fn upstream(&self, upstream: Upstream, host: &str, status: UpstreamStatus, seconds: f64) {
        let host = self.bounded_host(upstream, host);
        self.upstream_requests
            .get_or_create(&UpstreamLabels {
                upstream: upstream.as_str(),
                host: host.clone(),
                status: status.label(),
            })
            .inc();
        self.upstream_duration
            .get_or_create(&UpstreamDurationLabels {
                upstream: upstream.as_str(),
                host,
            })
            .observe(seconds);
    }

    fn bounded_host(&self, upstream: Upstream, host: &str) -> String {
        let mut hosts = self
            .upstream_hosts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let seen = hosts.entry(upstream).or_default();
        if seen.contains(host) {
            return host.to_owned();
        }
        if seen.len() < MAX_UPSTREAM_HOSTS {
            seen.insert(host.to_owned());
            return host.to_owned();
        }
        OTHER.to_owned()
    }

    /// A lookup answered from `cache`.
    pub fn cache_hit(&self, cache: CacheName) {
        self.cache_hits
            .get_or_create(&CacheLabels {
                cache: cache.as_str(),
            })
            .inc();
    }

    /// A lookup `cache` could not answer.
    pub fn cache_miss(&self, cache: CacheName) {
        self.cache_misses
            .get_or_create(&CacheLabels {
                cache: cache.as_str(),
            })
            .inc();
    }

    /// The expiry of verified trust data: `gun` is a repository under the configured trust root
    /// `trust_root`, `role` a TUF role (`root`, `targets`, `snapshot`, `timestamp`,
    /// `targets/releases`, …). Returns `false` when the series was not exported because
    /// [`MAX_TRUST_EXPIRY_SERIES`] series already exist.
    pub fn trust_expiry(&self, trust_root: &str, gun: &str, role: &str, unix_secs: i64) -> bool {
        let mut series = self
            .trust_series
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let key = (gun.to_owned(), role.to_owned());
        let known = series.get(trust_root).is_some_and(|s| s.contains(&key));
        if !known {
            let total: usize = series.values().map(HashSet::len).sum();
            if total >= MAX_TRUST_EXPIRY_SERIES {
                return false;
            }
            series
                .entry(trust_root.to_owned())
                .or_default()
                .insert(key.clone());
        }
        let (gun, role) = key;
        self.trust_expiry
            .get_or_create(&TrustExpiryLabels {
                trust_root: trust_root.to_owned(),
                gun,
                role,
            })
            .set(unix_secs);
        true
    }

    /// Removes the trust data expiry series of one repository (e.g. when its cached trust data is
    /// dropped, or before exporting a new set of roles).
    pub(crate) fn forget_repository(&self, trust_root: &str, gun: &str) {
        let mut series = self
            .trust_series
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(entries) = series.get_mut(trust_root) else {
            return;
        };
        let removed: Vec<(String, String)> =
            entries.iter().filter(|(g, _)| g == gun).cloned().collect();
        for key in removed {
            entries.remove(&key);
            let (gun, role) = key;
            self.trust_expiry.remove(&TrustExpiryLabels {
                trust_root: trust_root.to_owned(),
                gun,
                role,
            });
        }
        if entries.is_empty() {
            series.remove(trust_root);
        }
    }

    /// A panic caught by the barrier around a review or an image's decision.
    pub(crate) fn internal_error(&self) {
        self.internal_errors.inc();
    }

    /// The namespace list was fetched again after the first.
    pub(crate) fn kube_watch_restart(&self) {
        self.kube_watch_restarts.inc();
    }

    /// A namespace list or watch request failed.
    pub(crate) fn kube_watch_error(&self) {
        self.kube_watch_errors.inc();
    }

    /// Namespaces now in the watched cache.
    pub(crate) fn kube_namespaces(&self, count: usize) {
        self.kube_namespaces
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// The result of an audit of the running Pods: it replaces the last one's series, so a
    /// policy or verdict no longer seen leaves no stale gauge.
    pub fn audit_run(&self, run: &AuditRun) {
        self.audit_workloads.clear();
        for (policy, verdict, pods) in &run.workloads {
            self.audit_workloads
                .get_or_create(&AuditWorkloadLabels {
                    policy: policy.clone(),
                    verdict,
                })
                .set(i64::try_from(*pods).unwrap_or(i64::MAX));
        }
        self.audit_images.clear();
        for (verdict, images) in &run.images {
            self.audit_images
                .get_or_create(&VerdictLabels { verdict })
                .set(i64::try_from(*images).unwrap_or(i64::MAX));
        }
        self.audit_duration.set(run.seconds);
        self.audit_last_run.set(run.finished_unix);
    }

    /// One configuration reload.
    pub fn config_reload(&self, result: ReloadResult) {
        self.config_reloads
            .get_or_create(&ResultLabels {
                result: result.as_str(),
            })
            .inc();
    }

    /// The NotAfter (unix seconds) of the serving certificate now in use.
    /// A verification step of an accepted signature failed and the trust root's level only logs
    /// it. `step` and `reason` come from closed sets; `trust_root` from the configuration.
    pub fn relaxed_check(
        &self,
        trust_root: &str,
        kind: Kind,
        step: &'static str,
        reason: &'static str,
    ) {
        self.relaxed_checks
            .get_or_create(&RelaxedLabels {
                trust_root: trust_root.to_owned(),
                kind: kind.as_str(),
                step,
                reason,
            })
            .inc();
    }

    /// Sets `signgate_tls_certificate_expiry_timestamp_seconds`: the serving certificate's
    /// NotAfter, unix seconds. Absent until first set.
    pub fn tls_expiry(&self, unix_secs: i64) {
        self.tls_expiry.set(unix_secs);
    }

    /// One serving certificate reload after its files changed.
    pub(crate) fn tls_reload(&self, result: ReloadResult) {
        self.tls_reloads
            .get_or_create(&ResultLabels {
                result: result.as_str(),
            })
            .inc();
    }

    /// Every family in the OpenMetrics text format, ending in `# EOF`.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(%error, "cannot encode metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_unknown_kinds_and_operations() {
        assert_eq!(kind_label("Deployment"), "Deployment");
        assert_eq!(kind_label("Secret"), OTHER);
        assert_eq!(operation_label("UPDATE"), "UPDATE");
        assert_eq!(operation_label("PATCH"), OTHER);
    }

    #[test]
    fn classifies_reasons() {
        assert_eq!(VerificationResult::of(None), VerificationResult::Trusted);
        assert_eq!(
            VerificationResult::of(Some(Reason::Timeout)),
            VerificationResult::Error
        );
        assert_eq!(
            VerificationResult::of(Some(Reason::ThresholdNotMet)),
            VerificationResult::Untrusted
        );
    }

    #[test]
    fn caps_upstream_hosts() {
        let m = Metrics::new();
        for i in 0..MAX_UPSTREAM_HOSTS + 5 {
            m.upstream(
                Upstream::Registry,
                &format!("r{i}.example:5000"),
                UpstreamStatus::Http(200),
                0.01,
            );
        }
        m.upstream(Upstream::Notary, "n.example", UpstreamStatus::Timeout, 1.0);
        let text = m.encode();
        assert!(text.contains(r#"host="other""#));
        assert!(text.contains(r#"upstream="notary",host="n.example",status="timeout""#));
        assert!(text.contains(r#"host="r0.example:5000""#));
        assert!(!text.contains(&format!(r#"host="r{}.example:5000""#, MAX_UPSTREAM_HOSTS)));
    }

    #[test]
    fn caps_and_forgets_trust_expiry_series() {
        let m = Metrics::new();
        for i in 0..MAX_TRUST_EXPIRY_SERIES {
            assert!(m.trust_expiry("ml", &format!("r/{i}"), "targets", 1));
        }
        assert!(!m.trust_expiry("ml", "r/extra", "targets", 1));
        // An existing series can still be updated.
        assert!(m.trust_expiry("ml", "r/0", "targets", 2));
        m.forget_repository("ml", "r/0");
        assert!(m.trust_expiry("ml", "r/extra", "targets", 1));
        assert!(!m.encode().contains(r#"gun="r/0""#));
        m.set_trust_roots(&[("other-root", Kind::Notary)]);
        assert!(!m.encode().contains(r#"trust_root="ml""#));
    }

    #[test]
    fn encodes_samples_with_labels() {
        let m = Metrics::new();
        m.admission(
            "Deployment",
            "CREATE",
            Decision::Denied,
            Some(Mode::Enforce),
            0.002,
        );
        m.verification(
            "ml",
            Kind::Notary,
            VerificationResult::Untrusted,
            Reason::TagNotSigned.as_str(),
            CacheOutcome::Miss,
            0.2,
        );
        m.trust_expiry(
            "ml",
            "registry.example/ml/pytorch",
            "targets/releases",
            1_900_000_000,
        );
        m.tls_expiry(1_800_000_000);
        m.config_reload(ReloadResult::Failure);
        let text = m.encode();
        for line in [
            r#"signgate_admission_requests_total{kind="Deployment",operation="CREATE",decision="denied",mode="enforce"} 1"#,
            r#"signgate_verifications_total{trust_root="ml",kind="notary",result="untrusted",reason="tag_not_signed"} 1"#,
            r#"signgate_verification_duration_seconds_bucket{le="0.25",trust_root="ml",kind="notary",cache="miss"} 1"#,
            r#"signgate_trust_data_expiry_timestamp_seconds{trust_root="ml",gun="registry.example/ml/pytorch",role="targets/releases"} 1900000000"#,
            "signgate_tls_certificate_expiry_timestamp_seconds 1800000000",
            r#"signgate_config_reloads_total{result="failure"} 1"#,
            r#"signgate_build_info{version=""#,
        ] {
            assert!(text.contains(line), "missing {line}\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
