//! `signgate check -f MANIFEST.yaml --config FILE [--namespace NS]`: the webhook's decision for
//! Pods and pod controllers in manifests, one line per container.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;

use signgate::admission::{self, Workload};
use signgate::config::Config;
use signgate::policy::{Outcome, Verdict};
use signgate::upstream::NamespaceLabels;
use signgate::verifier::{self, Verifier, VerifierSettings};

/// Decides every container of the Pods and pod controllers in `manifest` (`-`: standard input)
/// under the configuration at `config`, objects without a namespace in `namespace`; exit code 1
/// when any would be denied. An error (unreadable input, bad configuration) is for exit code 2.
pub fn run(
    manifest: &Path,
    config: &Path,
    namespace: &str,
    labels: NamespaceLabels,
    json_output: bool,
) -> Result<ExitCode, String> {
    let text = if manifest == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| format!("cannot read standard input: {e}"))?
    } else {
        std::fs::read_to_string(manifest)
            .map_err(|e| format!("cannot read {}: {e}", manifest.display()))?
    };
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
        .map_err(|e| format!("{}: not valid YAML: {e}", manifest.display()))?;
    let config = Config::load(config).map_err(|e| e.to_string())?;
    let verifier = Verifier::new(
        Arc::new(config),
        VerifierSettings {
            digest_ttl: Duration::ZERO,
            ..VerifierSettings::default()
        },
    )
    .map_err(|e| format!("configuration: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let limit = Arc::new(tokio::sync::Semaphore::new(16));
    let mut denied = false;
    let mut lines = Vec::new();
    for (n, doc) in docs.iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
        let api_version = doc
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = doc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("(unnamed)");
        let ns = doc
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or(namespace);
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        // The resource name the API server would use (only needs to be non-empty here).
        let resource = format!("{}s", kind.to_ascii_lowercase());
        // The same path as the webhook: a CREATE review of this object.
        let body = json!({
            "apiVersion": admission::API_VERSION,
            "kind": admission::KIND,
            "request": {
                "uid": format!("check-{n}"),
                "kind": {"group": group, "version": version, "kind": kind},
                "resource": {"group": group, "version": version, "resource": resource},
                "operation": "CREATE",
                "namespace": ns,
                "name": name,
                "object": doc,
            }
        });
        let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
        let review = admission::parse_review(&body)
            .map_err(|e| format!("{} document {}: {e}", manifest.display(), n + 1))?;
        let workload = match admission::images(&review) {
            Ok(w) => w,
            Err(e) => {
                denied = true;
                lines.push(line(
                    json_output,
                    "denied",
                    kind,
                    name,
                    "-",
                    "-",
                    "-",
                    &e.to_string(),
                ));
                continue;
            }
        };
        let Workload::Pods(_) = &workload else {
            continue;
        };
        let images = admission::images_to_verify(&review, &workload);
        let eval = runtime.block_on(verifier::evaluate(
            &verifier,
            &labels,
            &limit,
            ns,
            &images,
            OffsetDateTime::now_utc(),
            Duration::from_secs(8),
        ));
        for d in &eval.decisions {
            let x = &d.decision;
            let verdict = x.verdict();
            denied |= verdict == Verdict::Denied;
            let verdict = verdict.as_str();
            let reason = match &x.outcome {
                Outcome::Verified(v) => format!("signed by {} ({})", v.signers(), v.digest),
                Outcome::AllowedByPolicy => "allowed by policy".to_owned(),
                _ => format!("{}: {}", x.reason_label(), x.reason_text()),
            };
            lines.push(line(
                json_output,
                verdict,
                kind,
                name,
                &d.container,
                &x.image,
                x.policy_label(),
                &reason,
            ));
        }
    }
    for l in lines {
        println!("{l}");
    }
    Ok(ExitCode::from(if denied { 1 } else { 0 }))
}

#[allow(clippy::too_many_arguments)]
fn line(
    json_output: bool,
    verdict: &str,
    kind: &str,
    name: &str,
    container: &str,
    image: &str,
    policy: &str,
    reason: &str,
) -> String {
    if json_output {
        json!({"verdict": verdict, "kind": kind, "name": name, "container": container, "image": image, "policy": policy, "reason": reason}).to_string()
    } else {
        format!(
            "{verdict:<8} {kind}/{name} container {container:?} image {image:?} policy {policy:?}: {reason}"
        )
    }
}
