//! What is running now: the images of running Pods decided again under the configuration in
//! force, with the same [`Verifier`] the webhook uses. The digest decided is the one the kubelet
//! reports it pulled (`status.containerStatuses[].imageID`), pinned onto the reference the Pod
//! names, so a tag moved since admission is judged by what runs, not by what the tag names now;
//! a container without a reported digest is decided by its reference, as at admission. Each
//! distinct (namespace, image) is decided once per audit, and the verifier's caches keep repeated
//! digests from being verified again while their answers hold: the upstream cost is one
//! verification per distinct digest, never one per Pod.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod};
use time::OffsetDateTime;

use crate::metrics::{AuditRun, Metrics};
pub use crate::policy::Verdict;
use crate::policy::{ImageDecision, Outcome};
use crate::reference::{Digest, Reference};
use crate::runtime::ConfigState;
use crate::upstream::pods;
use crate::verdict::{Reason, TrustError};
use crate::verifier::Verifier;

/// Distinct images decided at once.
const CONCURRENCY: usize = 8;

/// One container of a running Pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningImage {
    /// The Pod's namespace.
    pub namespace: String,
    /// What runs it: the Pod's controller (`ReplicaSet/name`, `Job/name`, …), else `Pod/name`.
    pub workload: String,
    /// The Pod's name.
    pub pod: String,
    /// The container's name.
    pub container: String,
    /// The image as the Pod's spec names it.
    pub image: String,
    /// The manifest digest the kubelet reports it pulled, when it reports one.
    pub digest: Option<Digest>,
}

impl RunningImage {
    /// The reference to decide: the spec's image with the running digest pinned onto it (its tag
    /// kept, so tag-based trust data still names it), else the spec's image as it is.
    pub fn reference(&self) -> String {
        match (&self.digest, Reference::parse(&self.image)) {
            (Some(d), Ok(r)) if r.digest().is_none() => format!("{r}@{d}"),
            _ => self.image.clone(),
        }
    }
}

/// The digest in a kubelet's `imageID` (`docker.io/library/x@sha256:…`,
/// `docker-pullable://x@sha256:…`); `None` for a bare image ID (`sha256:…` of the local image
/// configuration, not a manifest) or anything else.
pub fn running_digest(image_id: &str) -> Option<Digest> {
    let (_, digest) = image_id.rsplit_once('@')?;
    Digest::parse(digest).ok()
}

/// Every container of `pod` (init, regular and ephemeral), with the digest its status reports.
pub fn running_images(pod: &Pod) -> Vec<RunningImage> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let workload = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map_or_else(
            || format!("Pod/{name}"),
            |o| format!("{}/{}", o.kind, o.name),
        );
    let status = pod.status.as_ref();
    let statuses: Vec<&ContainerStatus> = status
        .into_iter()
        .flat_map(|s| {
            [
                &s.init_container_statuses,
                &s.container_statuses,
                &s.ephemeral_container_statuses,
            ]
        })
        .flatten()
        .flatten()
        .collect();
    let spec = pod.spec.as_ref();
    let containers = spec.into_iter().flat_map(|s| {
        s.init_containers
            .iter()
            .flatten()
            .chain(s.containers.iter())
            .map(|c: &Container| (c.name.clone(), c.image.clone()))
            .chain(
                s.ephemeral_containers
                    .iter()
                    .flatten()
                    .map(|c| (c.name.clone(), c.image.clone())),
            )
    });
    containers
        .filter_map(|(container, image)| {
            let image = image?;
            let digest = statuses
                .iter()
                .find(|s| s.name == container)
                .and_then(|s| running_digest(&s.image_id));
            Some(RunningImage {
                namespace: namespace.clone(),
                workload: workload.clone(),
                pod: name.clone(),
                container,
                image,
                digest,
            })
        })
        .collect()
}

/// What the configuration in force says of a running container.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The container.
    pub running: RunningImage,
    /// The decision for its image in its namespace (shared by every container running it).
    pub decision: Arc<ImageDecision>,
}

impl Finding {
    /// The verdict.
    pub fn verdict(&self) -> Verdict {
        self.decision.verdict()
    }

    /// The digest that was verified, when one was.
    pub fn verified_digest(&self) -> Option<&Digest> {
        match &self.decision.outcome {
            Outcome::Verified(v) => Some(&v.digest),
            _ => None,
        }
    }

    /// Why, for people: who signed, or the reason it fails.
    pub fn reason(&self) -> String {
        match &self.decision.outcome {
            Outcome::Verified(v) => format!("signed by {}", v.signers()),
            Outcome::AllowedByPolicy => "allowed by policy".to_owned(),
            _ => format!(
                "{}: {}",
                self.decision.reason_label(),
                self.decision.reason_text()
            ),
        }
    }
}

/// Decides every container of `running` under `verifier` at `now`, each distinct (namespace,
/// image) once; `labels` holds the labels of every namespace listed (a namespace it lacks has
/// unknown labels: an image whose policy depends on them fails, saying so).
pub async fn audit(
    verifier: &Verifier,
    labels: &HashMap<String, BTreeMap<String, String>>,
    running: Vec<RunningImage>,
    now: OffsetDateTime,
) -> Vec<Finding> {
    let mut distinct: Vec<(String, String)> = running
        .iter()
        .map(|r| (r.namespace.clone(), r.reference()))
        .collect();
    distinct.sort();
    distinct.dedup();
    let decided: HashMap<(String, String), Arc<ImageDecision>> =
        futures_util::stream::iter(distinct)
            .map(|(namespace, image)| async move {
                let unknown = TrustError::new(
                    Reason::UpstreamError,
                    None,
                    format!("the labels of namespace {namespace:?} are unknown: it was not listed"),
                );
                let decision = verifier
                    .decide_with(
                        &image,
                        &namespace,
                        labels.get(&namespace).ok_or(&unknown),
                        now,
                    )
                    .await;
                ((namespace, image), Arc::new(decision))
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
    running
        .into_iter()
        .filter_map(|r| {
            let decision = decided.get(&(r.namespace.clone(), r.reference()))?;
            Some(Finding {
                decision: Arc::clone(decision),
                running: r,
            })
        })
        .collect()
}

/// What `findings` say for the audit metrics: Pods by the policy and verdict of their worst
/// container, and distinct (namespace, image) decisions by verdict.
pub fn summarize(findings: &[Finding], finished: OffsetDateTime, seconds: f64) -> AuditRun {
    let mut pods: HashMap<(&str, &str), (Verdict, &str)> = HashMap::new();
    let mut images: HashMap<(&str, String), Verdict> = HashMap::new();
    for f in findings {
        let verdict = f.verdict();
        let policy = f.decision.policy_label();
        let worst = pods
            .entry((&f.running.namespace, &f.running.pod))
            .or_insert((verdict, policy));
        if verdict > worst.0 {
            *worst = (verdict, policy);
        }
        images.insert((&f.running.namespace, f.running.reference()), verdict);
    }
    let mut workloads: BTreeMap<(String, Verdict), u64> = BTreeMap::new();
    for (verdict, policy) in pods.into_values() {
        *workloads.entry((policy.to_owned(), verdict)).or_default() += 1;
    }
    let mut by_verdict: BTreeMap<Verdict, u64> = BTreeMap::new();
    for verdict in images.into_values() {
        *by_verdict.entry(verdict).or_default() += 1;
    }
    AuditRun {
        workloads: workloads
            .into_iter()
            .map(|((policy, v), n)| (policy, v.as_str(), n))
            .collect(),
        images: by_verdict
            .into_iter()
            .map(|(v, n)| (v.as_str(), n))
            .collect(),
        finished_unix: finished.unix_timestamp(),
        seconds,
    }
}

/// Results one PolicyReport holds at most (failures first); its summary counts them all.
pub const MAX_REPORT_RESULTS: usize = 500;

/// One `wgpolicyk8s.io/v1alpha2` PolicyReport per namespace (the format Kyverno and the Policy
/// Reporter UI read), named `signgate-audit`: a result per container (`pass`, `warn` for a
/// failure its policy only warns or audits, `fail` for one it would deny), with the policy, the
/// Pod, and why; at most [`MAX_REPORT_RESULTS`] results, failures first; the summary counts all.
/// `emptied` names namespaces reported before that have no Pod now: each gets a report with no
/// result, so a workload that is gone does not stay failing in the report.
pub fn policy_reports(
    findings: &[Finding],
    emptied: &BTreeSet<String>,
    now: OffsetDateTime,
) -> Vec<(String, serde_json::Value)> {
    let mut by_namespace: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for ns in emptied {
        by_namespace.entry(ns).or_default();
    }
    for f in findings {
        by_namespace
            .entry(&f.running.namespace)
            .or_default()
            .push(f);
    }
    by_namespace
        .into_iter()
        .map(|(namespace, mut found)| {
            found.sort_by_key(|f| std::cmp::Reverse(f.verdict()));
            let count = |v: Verdict| found.iter().filter(|f| f.verdict() == v).count();
            let results: Vec<serde_json::Value> = found
                .iter()
                .take(MAX_REPORT_RESULTS)
                .map(|f| {
                    let r = &f.running;
                    let result = match f.verdict() {
                        Verdict::Allowed => "pass",
                        Verdict::Warned => "warn",
                        Verdict::Denied => "fail",
                    };
                    serde_json::json!({
                        "source": "signgate",
                        "policy": f.decision.policy_label(),
                        "rule": "signed-images",
                        "result": result,
                        "scored": true,
                        "message": f.reason(),
                        "timestamp": {"seconds": now.unix_timestamp(), "nanos": 0},
                        "resources": [{"apiVersion": "v1", "kind": "Pod", "name": r.pod, "namespace": r.namespace}],
                        "properties": {
                            "container": r.container,
                            "image": r.image,
                            "digest": r.digest.as_ref().map(ToString::to_string).unwrap_or_default(),
                            "workload": r.workload,
                        },
                    })
                })
                .collect();
            let report = serde_json::json!({
                "apiVersion": "wgpolicyk8s.io/v1alpha2",
                "kind": "PolicyReport",
                "metadata": {
                    "name": REPORT_NAME,
                    "namespace": namespace,
                    "labels": {"app.kubernetes.io/managed-by": "signgate"},
                },
                "scope": {"apiVersion": "v1", "kind": "Namespace", "name": namespace},
                "summary": {
                    "pass": count(Verdict::Allowed),
                    "warn": count(Verdict::Warned),
                    "fail": count(Verdict::Denied),
                    "error": 0,
                    "skip": 0,
                },
                "results": results,
            });
            (namespace.to_owned(), report)
        })
        .collect()
}

/// The name of signgate's PolicyReport in each namespace.
pub const REPORT_NAME: &str = "signgate-audit";

/// The audit `serve --audit` runs in the background: the cluster's Pods decided under the
/// configuration in force every `interval`, and soon after `wake` is notified (a configuration
/// reload). Results go to the audit metrics, and one warning log line per failing container the
/// previous run did not already report, and a PolicyReport per namespace when the cluster has
/// the CRD ([`policy_reports`]). Its own concurrency limit, and its reviews share the
/// verifier's caches, so admission is not slowed and a digest is not verified again while its
/// answer holds. Runs until the task is dropped.
pub async fn background(
    config: Arc<ConfigState>,
    metrics: Arc<Metrics>,
    interval: Duration,
    wake: Arc<tokio::sync::Notify>,
) {
    let mut client: Option<kube::Client> = None;
    let mut reported: HashSet<(String, String, String, String)> = HashSet::new();
    // Until an apply says the CRD is absent (checked again after a restart).
    let mut reports_installed = true;
    // The namespaces the last reports were written for.
    let mut report_namespaces: BTreeSet<String> = BTreeSet::new();
    loop {
        if client.is_none() {
            client = match kube::Config::infer().await.map(kube::Client::try_from) {
                Ok(Ok(c)) => Some(c),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "audit: cannot build a Kubernetes client");
                    None
                }
                Err(e) => {
                    tracing::warn!(error = %e, "audit: no Kubernetes API configuration");
                    None
                }
            };
        }
        if let Some(c) = &client {
            let started = std::time::Instant::now();
            match pods::running(c, None).await {
                Ok(running) => {
                    if let Some(e) = &running.labels_error {
                        tracing::warn!(error = %e, "audit: namespace labels are unknown");
                    }
                    let now = OffsetDateTime::now_utc();
                    let verifier = config.verifier();
                    let findings = audit(&verifier, &running.labels, running.images, now).await;
                    let run = summarize(
                        &findings,
                        OffsetDateTime::now_utc(),
                        started.elapsed().as_secs_f64(),
                    );
                    metrics.audit_run(&run);
                    reported = report(&findings, &reported);
                    if reports_installed {
                        let now_reported: BTreeSet<String> = findings
                            .iter()
                            .map(|f| f.running.namespace.clone())
                            .collect();
                        let emptied = report_namespaces
                            .difference(&now_reported)
                            .cloned()
                            .collect();
                        let reports = policy_reports(&findings, &emptied, now);
                        report_namespaces = now_reported;
                        match pods::apply_reports(c, &reports).await {
                            Ok(()) => {}
                            Err(pods::ReportError::NotInstalled) => {
                                tracing::info!(
                                    "audit: the PolicyReport CRD (wgpolicyk8s.io/v1alpha2) is not installed; results are in the metrics and logs only"
                                );
                                reports_installed = false;
                            }
                            Err(pods::ReportError::Failed(e)) => {
                                tracing::warn!(error = %e, "audit: cannot write PolicyReports");
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "audit: cannot read the running Pods"),
            }
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = wake.notified() => {}
        }
    }
}

/// Logs each failing container not in `before`; what is reported now.
fn report(
    findings: &[Finding],
    before: &HashSet<(String, String, String, String)>,
) -> HashSet<(String, String, String, String)> {
    let mut now = HashSet::new();
    for f in findings {
        let verdict = f.verdict();
        if verdict == Verdict::Allowed {
            continue;
        }
        let r = &f.running;
        let key = (
            r.namespace.clone(),
            r.workload.clone(),
            r.container.clone(),
            r.reference(),
        );
        if !before.contains(&key) && !now.contains(&key) {
            tracing::warn!(
                namespace = %r.namespace,
                workload = %r.workload,
                container = %r.container,
                image = %r.image,
                verdict = verdict.as_str(),
                policy = f.decision.policy_label(),
                reason = f.decision.reason_label(),
                detail = %f.decision.reason_text(),
                "audit: a running container fails the policy in force"
            );
        }
        now.insert(key);
    }
    now
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    const D: &str = "sha256:61cae772b405f5cdc99fb9f3f911955b08db4825bb0be561d56d91f56afa11a9";

    #[test]
    fn the_running_digest_is_pinned_onto_the_spec_reference() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "train-0", "namespace": "ml",
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "train", "uid": "u", "controller": true}]},
            "spec": {
                "initContainers": [{"name": "fetch", "image": "busybox"}],
                "containers": [{"name": "main", "image": "registry.internal/ml/pytorch:v2.9"},
                               {"name": "pinned", "image": format!("registry.internal/ml/x@{D}")}]},
            "status": {
                "initContainerStatuses": [{"name": "fetch", "image": "busybox", "imageID": "sha256:aaaa", "ready": true, "restartCount": 0}],
                "containerStatuses": [{"name": "main", "image": "registry.internal/ml/pytorch:v2.9",
                    "imageID": format!("registry.internal/ml/pytorch@{D}"), "ready": true, "restartCount": 0}]}
        }));
        let got = running_images(&p);
        let refs: Vec<(String, String, String)> = got
            .iter()
            .map(|r| (r.container.clone(), r.workload.clone(), r.reference()))
            .collect();
        assert_eq!(
            refs,
            [
                ("fetch".into(), "Job/train".into(), "busybox".into()),
                (
                    "main".into(),
                    "Job/train".into(),
                    format!("registry.internal/ml/pytorch:v2.9@{D}")
                ),
                (
                    "pinned".into(),
                    "Job/train".into(),
                    format!("registry.internal/ml/x@{D}")
                ),
            ]
        );
        assert_eq!(
            running_digest(&format!("docker-pullable://x@{D}"))
                .unwrap()
                .as_str(),
            D
        );
        assert_eq!(running_digest("sha256:aaaa"), None);
    }

    #[test]
    fn a_pod_without_a_controller_is_its_own_workload() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "debug", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "alpine"}]}
        }));
        let got = running_images(&p);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].workload, "Pod/debug");
        assert_eq!(got[0].digest, None);
    }
}
