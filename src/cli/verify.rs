//! `signgate verify`: one image, offline from a bundle directory, online with one trust root given
//! by flags, or under a configuration's policy as the webhook would decide it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::json;
use time::OffsetDateTime;

use signgate::metrics::Metrics;
use signgate::notary::{self, Limits, PinnedKey, RoleRule, TrustState, VerifyContext, metadata};
use signgate::reference::Reference;
use signgate::upstream;

use super::{Output, UsageError, deadline, parse_now, runtime};

fn read_pins(files: &[PathBuf]) -> Result<Vec<PinnedKey>, UsageError> {
    if files.is_empty() {
        return Err(UsageError(
            "--root-key FILE is required: root trust comes only from pinned keys".into(),
        ));
    }
    let mut pins = Vec::new();
    for f in files {
        let pem = std::fs::read(f)
            .map_err(|e| UsageError(format!("cannot read root key file {}: {e}", f.display())))?;
        let keys = PinnedKey::from_pem(&pem)
            .map_err(|e| UsageError(format!("root key file {}: {e}", f.display())))?;
        pins.extend(keys);
    }
    Ok(pins)
}

/// What every form of `verify` shares.
pub(super) struct VerifyRequest {
    pub(super) image: String,
    pub(super) root_keys: Vec<PathBuf>,
    pub(super) require_roles: Vec<String>,
    pub(super) now: Option<String>,
    pub(super) output: Output,
}

/// A parsed request: reference, pins, clock and rule.
struct Prepared {
    reference: Reference,
    gun: String,
    pins: Vec<PinnedKey>,
    now: OffsetDateTime,
    rule: RoleRule,
    output: Output,
}

fn prepare(req: VerifyRequest) -> Result<Prepared, UsageError> {
    let reference = Reference::parse(&req.image)
        .map_err(|e| UsageError(format!("image {:?}: {e}", req.image)))?;
    let pins = read_pins(&req.root_keys)?;
    let now = parse_now(req.now.as_deref())?;
    for r in &req.require_roles {
        if r != metadata::TARGETS && !metadata::is_delegation_name(r) {
            return Err(UsageError(format!(
                "--require-role {r:?} is not a role name (targets or targets/<name>)"
            )));
        }
    }
    let rule = if req.require_roles.is_empty() {
        RoleRule::Docker
    } else {
        RoleRule::Require(req.require_roles)
    };
    Ok(Prepared {
        gun: reference.gun(),
        reference,
        pins,
        now,
        rule,
        output: req.output,
    })
}

/// Verifies the image from the repository's metadata files in `dir`; no server is contacted.
pub(super) fn offline(req: VerifyRequest, dir: &Path) -> Result<ExitCode, UsageError> {
    if !dir.is_dir() {
        return Err(UsageError(format!(
            "--offline {} is not a directory",
            dir.display()
        )));
    }
    let p = prepare(req)?;
    let previous = TrustState::default();
    let ctx = VerifyContext {
        gun: &p.gun,
        pins: &p.pins,
        now: p.now,
        previous: &previous,
        limits: Limits::default(),
    };
    let result = notary::verify_image(&ctx, &upstream::DirSource::new(dir), &p.reference, &p.rule)
        .map(|(t, _)| t);
    Ok(report(&p, &result, 0))
}

/// `verify --config`: the image's policy in `namespace` decides, as the webhook would.
pub(super) fn with_config(
    req: VerifyRequest,
    config: &Path,
    namespace: &str,
    labels: signgate::upstream::NamespaceLabels,
    timeout: f64,
) -> Result<ExitCode, UsageError> {
    if !req.root_keys.is_empty() || !req.require_roles.is_empty() {
        return Err(UsageError(
            "--root-key and --require-role come from the configuration with --config".into(),
        ));
    }
    let deadline = deadline(timeout)?;
    let reference = Reference::parse(&req.image)
        .map_err(|e| UsageError(format!("image {:?}: {e}", req.image)))?;
    let now = parse_now(req.now.as_deref())?;
    let config = signgate::config::Config::load(config).map_err(|e| UsageError(e.to_string()))?;
    let verifier = signgate::verifier::Verifier::new(
        std::sync::Arc::new(config),
        signgate::verifier::VerifierSettings {
            digest_ttl: std::time::Duration::ZERO,
            ..Default::default()
        },
    )
    .map_err(|e| UsageError(format!("configuration: {e}")))?;
    let decision = runtime()?.block_on(async {
        let labels = labels.labels(namespace).await.map_err(|e| {
            signgate::notary::TrustError::new(signgate::notary::Reason::UpstreamError, None, e)
        });
        let labels = labels.as_ref().map(|l| l.map());
        tokio::time::timeout(
            deadline,
            verifier.decide_with(&req.image, namespace, labels, now),
        )
        .await
    });
    let decision = decision.map_err(|_| {
        UsageError(format!(
            "verification did not finish within {:.1} s",
            deadline.as_secs_f64()
        ))
    })?;
    use signgate::policy::Outcome;
    let verified = match &decision.outcome {
        Outcome::Verified(v) => Some(v),
        _ => None,
    };
    let error = match &decision.outcome {
        Outcome::Failed(e) => Some(e.clone()),
        _ => None,
    };
    let ok = !decision.failed();
    let requests = verifier.upstream_requests();
    // Per trust root: its kind, verdict, signer and digest, or why not (SPEC).
    let roots: Vec<serde_json::Value> = decision
        .checks
        .iter()
        .map(|c| match &c.result {
            Ok(v) => json!({
                "name": c.trust_root, "kind": c.kind.as_str(), "verdict": "trusted",
                "signer": v.signed_by(), "digest": v.digest().as_str(), "reason": null, "error": null,
            }),
            Err(e) => json!({
                "name": c.trust_root, "kind": c.kind.as_str(), "verdict": "untrusted",
                "signer": null, "digest": null, "reason": e.reason().as_str(), "error": e.to_string(),
            }),
        })
        .collect();
    // The Notary v1 roles that signed, as `verify --notary` reports them.
    let notary_roles = verified.and_then(|v| {
        v.signatures
            .iter()
            .find(|s| s.kind == signgate::policy::Kind::Notary)
            .map(|s| s.signer.replace(", ", ","))
    });
    match req.output {
        Output::Json => println!(
            "{:#}",
            json!({
                "image": reference.to_string(),
                "gun": reference.gun(),
                "trusted": ok,
                "policy": decision.policy_label(),
                "trust_root": decision.trust_roots.first(),
                "trust_roots": roots,
                "mode": decision.mode.as_str(),
                "outcome": match &decision.outcome {
                    Outcome::AllowedByPolicy => "allowed_by_policy",
                    Outcome::DeniedByPolicy => "denied_by_policy",
                    Outcome::Verified(_) => "verified",
                    Outcome::Failed(_) => "failed",
                },
                "tag": verified.and(reference.tag()),
                "digest": verified.map(|v| v.digest.as_str()),
                "role": notary_roles,
                "reason": if ok { None } else { Some(decision.reason_label()) },
                "error": error.as_ref().map(ToString::to_string),
                "upstream_requests": requests,
            })
        ),
        Output::Text => match &decision.outcome {
            Outcome::Verified(v) => {
                println!(
                    "trusted: {reference} (policy {:?})",
                    decision.policy_label()
                );
                println!("  digest:    {}", v.digest);
                println!("  signed by: {}", v.signers());
                println!("  upstream requests: {requests}");
            }
            Outcome::AllowedByPolicy => println!(
                "allowed without verification: {reference} (policy {:?})",
                decision.policy_label()
            ),
            _ => println!(
                "not trusted: image {reference} denied by policy {:?}: {} ({})",
                decision.policy_label(),
                decision.reason_text(),
                decision.reason_label()
            ),
        },
    }
    Ok(ExitCode::from(if ok { 0 } else { 1 }))
}

/// The flags of an online verification with one trust root given on the command line.
pub(super) struct OnlineFlags {
    /// `--notary`: the notary server, `https://` only.
    pub(super) url: String,
    /// `--ca-file`: CA certificates trusted besides the system roots.
    pub(super) ca_file: Option<PathBuf>,
    /// `--username`, for the registry and the notary token service.
    pub(super) username: Option<String>,
    /// `--password-file`: the file holding `--username`'s password.
    pub(super) password_file: Option<PathBuf>,
    /// `--timeout`: the whole verification's deadline, in seconds.
    pub(super) timeout: f64,
}

/// Verifies the image at its registry and the notary server `flags` name.
pub(super) fn online(req: VerifyRequest, flags: OnlineFlags) -> Result<ExitCode, UsageError> {
    let p = prepare(req)?;
    let url = flags.url.trim_end_matches('/').to_owned();
    if !url.starts_with("https://") {
        return Err(UsageError(format!(
            "--notary {url:?} must be an https:// URL"
        )));
    }
    let deadline = deadline(flags.timeout)?;
    let ca_pem = match &flags.ca_file {
        Some(f) => Some(
            std::fs::read(f)
                .map_err(|e| UsageError(format!("cannot read CA file {}: {e}", f.display())))?,
        ),
        None => None,
    };
    let credentials = match (flags.username, &flags.password_file) {
        (Some(username), Some(f)) => {
            let password = std::fs::read_to_string(f).map_err(|e| {
                UsageError(format!("cannot read password file {}: {e}", f.display()))
            })?;
            Some(upstream::BasicCredentials {
                username,
                password: password.trim_end_matches(['\r', '\n']).to_owned(),
            })
        }
        _ => None,
    };
    let per_request = deadline.min(std::time::Duration::from_secs(5));
    // The CLI records nothing it shows, but the clients record somewhere.
    let metrics = Arc::new(Metrics::new());
    let client = upstream::NotaryClient::new(
        upstream::NotaryServer {
            url,
            ca_pem: ca_pem.clone(),
            credentials: credentials.clone(),
            request_timeout: per_request,
        },
        Arc::clone(&metrics),
    )
    .map_err(|e| UsageError(format!("--ca-file: {e}")))?;
    let trust_root = upstream::TrustRootClient::new(
        "cli",
        client,
        p.pins.clone(),
        Limits::default(),
        upstream::CacheSettings::default(),
    );
    let resolver = upstream::Resolver::new(
        std::collections::HashMap::new(),
        upstream::RegistrySettings {
            ca_pem,
            credentials,
        },
        per_request,
        std::time::Duration::ZERO,
        Arc::clone(&metrics),
    );
    let result = runtime()?.block_on(async {
        let work =
            signgate::verifier::verify_image(&trust_root, &resolver, &p.reference, &p.rule, p.now);
        match tokio::time::timeout(deadline, work).await {
            Ok(r) => r,
            Err(_) => Err(notary::TrustError::new(
                notary::Reason::Timeout,
                None,
                format!(
                    "verification did not finish within {:.1} s",
                    deadline.as_secs_f64()
                ),
            )),
        }
    });
    let requests = trust_root.requests() + resolver.requests();
    Ok(report(&p, &result, requests))
}

fn report(
    p: &Prepared,
    result: &Result<notary::VerifiedTarget, notary::TrustError>,
    upstream_requests: u64,
) -> ExitCode {
    let reference = &p.reference;
    match p.output {
        Output::Json => {
            let doc = match result {
                Ok(t) => json!({
                    "image": reference.to_string(),
                    "gun": p.gun,
                    "trusted": true,
                    "tag": t.tag(),
                    "digest": t.digest().as_str(),
                    "length": t.length(),
                    "role": t.roles().join(","),
                    "roles": t.roles(),
                    "reason": null,
                    "error": null,
                    "upstream_requests": upstream_requests,
                }),
                Err(e) => json!({
                    "image": reference.to_string(),
                    "gun": p.gun,
                    "trusted": false,
                    "tag": reference.tag(),
                    "digest": null,
                    "role": null,
                    "roles": [],
                    "reason": e.reason().as_str(),
                    "error": e.to_string(),
                    "upstream_requests": upstream_requests,
                }),
            };
            println!("{doc:#}");
        }
        Output::Text => match result {
            Ok(t) => {
                println!("trusted: {reference}");
                println!("  digest:    {}", t.digest());
                println!("  tag:       {}", t.tag());
                println!("  signed by: {}", t.roles().join(", "));
                println!("  upstream requests: {upstream_requests}");
            }
            Err(e) => {
                println!("not trusted: image {reference}: {} ({e})", e.reason());
            }
        },
    }
    ExitCode::from(if result.is_ok() { 0 } else { 1 })
}
