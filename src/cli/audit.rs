//! `signgate audit --config FILE [--kubeconfig PATH] [--namespace NS]`: what is running now that
//! the configuration would deny, one line per container, from the cluster's Pods; exit code 1 when
//! anything would be denied (so an admin sees what would break before switching a namespace from
//! `warn` to `enforce`).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;

use super::UsageError;
use signgate::audit::{self, Finding, Verdict};
use signgate::config::Config;
use signgate::upstream::pods;
use signgate::verifier::{Verifier, VerifierSettings};

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
    let running = pods::running(&client, req.namespace)
        .await
        .map_err(UsageError)?;
    // Labels are needed only by label-selected policies; without them such images fail, saying
    // why, and the rest is decided.
    if let Some(e) = &running.labels_error {
        eprintln!("signgate: {e}: namespace labels are unknown");
    }
    Ok(audit::audit(
        verifier,
        &running.labels,
        running.images,
        OffsetDateTime::now_utc(),
    )
    .await)
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
