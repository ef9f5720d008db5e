//! `signgate audit --config FILE [--kubeconfig PATH] [--namespace NS]`: what is running now that
//! the configuration would deny, one line per container, from the cluster's Pods; exit code 1 when
//! anything would be denied (so an admin sees what would break before switching a namespace from
//! `warn` to `enforce`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams};
use serde_json::json;
use time::OffsetDateTime;

use super::UsageError;
use signgate::audit::{self, Finding, RunningImage, Verdict};
use signgate::config::Config;
use signgate::verifier::{Verifier, VerifierSettings};

/// Objects asked for per list page.
const PAGE: u32 = 500;

/// What `audit` was asked.
pub struct AuditRequest<'a> {
    pub config: &'a Path,
    /// A kubeconfig; `None`: kubectl's inference (`KUBECONFIG`, `~/.kube/config`, in-cluster).
    pub kubeconfig: Option<&'a Path>,
    /// Only this namespace's Pods; `None`: every namespace.
    pub namespace: Option<&'a str>,
    pub json: bool,
    /// Deadline for the whole audit.
    pub timeout: Duration,
}

/// Lists the Pods, decides their images and prints one line per container.
pub fn run(req: &AuditRequest<'_>) -> Result<ExitCode, UsageError> {
    let config = Config::load(req.config).map_err(|e| UsageError(e.to_string()))?;
    let verifier = Verifier::new(
        Arc::new(config),
        VerifierSettings {
            digest_ttl: Duration::ZERO,
            ..VerifierSettings::default()
        },
    )
    .map_err(|e| UsageError(format!("configuration: {e}")))?;
    let findings = super::runtime()?.block_on(async {
        tokio::time::timeout(req.timeout, audit_cluster(&verifier, req))
            .await
            .map_err(|_| {
                UsageError(format!(
                    "the audit did not finish within {} s (--timeout)",
                    req.timeout.as_secs_f64()
                ))
            })?
    })?;
    let mut denied = false;
    if !req.json {
        println!("NAMESPACE\tWORKLOAD\tCONTAINER\tIMAGE\tDIGEST\tVERDICT\tREASON");
    }
    for f in &findings {
        denied |= f.verdict() == Verdict::Denied;
        println!("{}", line(f, req.json));
    }
    Ok(ExitCode::from(u8::from(denied)))
}

async fn audit_cluster(
    verifier: &Verifier,
    req: &AuditRequest<'_>,
) -> Result<Vec<Finding>, UsageError> {
    let client = client(req.kubeconfig).await?;
    let pods: Api<Pod> = match req.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut running: Vec<RunningImage> = Vec::new();
    let listed = pages(|p| {
        let pods = pods.clone();
        async move { pods.list(&p).await }
    })
    .await
    .map_err(|e| UsageError(format!("cannot list Pods: {e}")))?;
    for pod in listed {
        running.extend(audit::running_images(&pod));
    }
    // Labels are needed only by label-selected policies; without them such images fail, saying
    // why, and the rest is decided.
    let namespaces = Api::<Namespace>::all(client);
    let listed = pages(|p| {
        let namespaces = namespaces.clone();
        async move { namespaces.list_metadata(&p).await }
    })
    .await;
    let labels: HashMap<String, BTreeMap<String, String>> = match listed {
        Ok(namespaces) => namespaces
            .into_iter()
            .filter_map(|n| Some((n.metadata.name?, n.metadata.labels.unwrap_or_default())))
            .collect(),
        Err(e) => {
            eprintln!("signgate: cannot list namespaces ({e}): their labels are unknown");
            HashMap::new()
        }
    };
    Ok(audit::audit(verifier, &labels, running, OffsetDateTime::now_utc()).await)
}

/// A client for the kubeconfig at `path`, else kubectl's inference.
async fn client(path: Option<&Path>) -> Result<kube::Client, UsageError> {
    let config = match path {
        Some(p) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(p)
                .map_err(|e| UsageError(format!("--kubeconfig {}: {e}", p.display())))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .map_err(|e| UsageError(format!("--kubeconfig {}: {e}", p.display())))?
        }
        None => kube::Config::infer().await.map_err(|e| {
            UsageError(format!(
                "no Kubernetes API configuration (give --kubeconfig, or set KUBECONFIG): {e}"
            ))
        })?,
    };
    kube::Client::try_from(config).map_err(|e| UsageError(format!("Kubernetes client: {e}")))
}

/// Every object a list returns, page by page.
async fn pages<T, F, Fut>(list: F) -> Result<Vec<T>, kube::Error>
where
    T: Clone,
    F: Fn(ListParams) -> Fut,
    Fut: std::future::Future<Output = Result<kube::core::ObjectList<T>, kube::Error>>,
{
    let mut all = Vec::new();
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let page = list(params.clone()).await?;
        all.extend(page.items);
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(all),
        }
    }
}

fn line(f: &Finding, json_output: bool) -> String {
    let r = &f.running;
    let digest = r
        .digest
        .as_ref()
        .or_else(|| f.verified_digest())
        .map_or("-".to_owned(), ToString::to_string);
    let verdict = f.verdict().as_str();
    let reason = f.reason();
    if json_output {
        json!({
            "namespace": r.namespace, "workload": r.workload, "pod": r.pod,
            "container": r.container, "image": r.image, "digest": digest,
            "verdict": verdict, "policy": f.decision.policy_label(), "reason": reason,
        })
        .to_string()
    } else {
        format!(
            "{}\t{}\t{}\t{}\t{digest}\t{verdict}\t{reason}",
            r.namespace, r.workload, r.container, r.image
        )
    }
}
