//! The `signgate` command line. Exit codes: 0 trusted/allowed, 1 not trusted/denied, 2 bad usage,
//! bad configuration or an I/O failure the user must fix.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use signgate::offline::DirSource;
use signgate::reference::Reference;
use signgate::trust::{
    self, Limits, PinnedKey, RoleRule, TrustState, VerifyContext, cert::fmt_unix, metadata,
};
use signgate::{notary, resolve};

mod check;
mod serve;

#[derive(Parser)]
#[command(
    name = "signgate",
    version,
    about = "Admit only container images signed with Docker Content Trust (Notary v1)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Json,
    Text,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
enum Command {
    /// Verify one image reference and print its trusted digest and signing role, or why not.
    Verify {
        /// Image reference: name:tag, name@sha256:…, or name:tag@sha256:…
        image: String,
        /// Directory holding this repository's metadata as served (root.json, timestamp.json,
        /// snapshot.json, targets.json, targets/<name>.json, N.root.json); no server is contacted.
        #[arg(long, value_name = "DIR")]
        offline: Option<PathBuf>,
        /// Pinned root key: PEM public key or certificate (repeatable).
        #[arg(long = "root-key", value_name = "FILE")]
        root_keys: Vec<PathBuf>,
        /// Role that must sign the tag (repeatable); default: targets/releases, else targets.
        #[arg(long = "require-role", value_name = "ROLE")]
        require_roles: Vec<String>,
        /// Evaluate expiry at this RFC 3339 time instead of now.
        #[arg(long, value_name = "RFC3339")]
        now: Option<String>,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Configuration file (online verification).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Notary server URL (online verification).
        #[arg(long, value_name = "URL")]
        notary: Option<String>,
        /// Extra CA bundle for the registry and notary server (online verification).
        #[arg(long = "ca-file", value_name = "FILE")]
        ca_file: Option<PathBuf>,
        /// Username for the registry and the notary token service (online verification).
        #[arg(long, value_name = "USER", requires = "password_file")]
        username: Option<String>,
        /// File holding the password for --username.
        #[arg(long = "password-file", value_name = "FILE", requires = "username")]
        password_file: Option<PathBuf>,
        /// Namespace whose policies apply (with --config).
        #[arg(long, value_name = "NS", default_value = "default")]
        namespace: String,
        /// Deadline for the whole verification, in seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 8.0)]
        timeout: f64,
    },
    /// Evaluate Pods and pod controllers in manifests (multi-document YAML) as the webhook would.
    Check {
        /// Manifest file, or - for standard input.
        #[arg(short = 'f', long = "filename", value_name = "MANIFEST")]
        file: PathBuf,
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Namespace for objects that name none.
        #[arg(long, value_name = "NS", default_value = "default")]
        namespace: String,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Run the admission webhook.
    Serve {
        /// Configuration file (reloaded when it changes).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Serving certificate (PEM, leaf first); reloaded when the file changes.
        #[arg(
            long = "tls-cert",
            value_name = "FILE",
            required_unless_present = "dev"
        )]
        tls_cert: Option<PathBuf>,
        /// Serving key (PEM).
        #[arg(long = "tls-key", value_name = "FILE", required_unless_present = "dev")]
        tls_key: Option<PathBuf>,
        #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8443")]
        listen: std::net::SocketAddr,
        #[arg(
            long = "metrics-listen",
            value_name = "ADDR",
            default_value = "0.0.0.0:9090"
        )]
        metrics_listen: std::net::SocketAddr,
        #[arg(long = "log-format", value_enum, default_value_t = LogFormat::Json)]
        log_format: LogFormat,
        /// Generate a throwaway self-signed certificate for local trials and print its CA bundle path.
        #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
        dev: bool,
        /// Deadline for one review, in seconds (below the webhook's timeoutSeconds).
        #[arg(long = "review-timeout", value_name = "SECONDS", default_value_t = 8.0)]
        review_timeout: f64,
        /// Image verifications running at once, across reviews.
        #[arg(
            long = "max-concurrent-verifications",
            value_name = "N",
            default_value_t = 64
        )]
        max_concurrent: usize,
        /// How long verified trust data is used before its timestamp is checked again at the
        /// notary server, in seconds (while the server is unreachable, the data is used until
        /// it expires).
        #[arg(long = "trust-refresh", value_name = "SECONDS", default_value_t = 30)]
        trust_refresh: u64,
    },
    /// Print the root keys of a repository's root.json, ready to pin in the configuration.
    InspectRoot {
        /// A root.json file.
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

/// A failure the user must fix (exit 2), as one sentence.
struct UsageError(String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Verify {
            image,
            offline,
            root_keys,
            require_roles,
            now,
            output,
            config,
            notary,
            ca_file,
            username,
            password_file,
            timeout,
            namespace,
        } => {
            let req = VerifyRequest {
                image,
                root_keys,
                require_roles,
                now,
                output,
            };
            match (offline, notary, config) {
                (Some(dir), None, None) => verify_offline(req, &dir),
                (None, Some(url), None) => verify_online(
                    req,
                    OnlineFlags {
                        url,
                        ca_file,
                        username,
                        password_file,
                        timeout,
                    },
                ),
                (None, None, Some(config)) => verify_with_config(req, &config, &namespace, timeout),
                (None, None, None) => Err(UsageError(
                    "verify needs --notary URL (online), --offline DIR, or --config FILE".into(),
                )),
                _ => Err(UsageError(
                    "give only one of --notary, --offline and --config".into(),
                )),
            }
        }
        Command::InspectRoot { file, output } => inspect_root(&file, output),
        Command::Check {
            file,
            config,
            namespace,
            output,
        } => check::run(&file, &config, &namespace, output == Output::Json).map_err(UsageError),
        Command::Serve {
            config,
            tls_cert,
            tls_key,
            listen,
            metrics_listen,
            log_format,
            dev,
            review_timeout,
            max_concurrent,
            trust_refresh,
        } => serve::run(serve::ServeArgs {
            config,
            tls: match (dev, tls_cert, tls_key) {
                (true, _, _) => None,
                (false, Some(c), Some(k)) => Some((c, k)),
                _ => {
                    eprintln!("signgate: serve needs --tls-cert and --tls-key, or --dev");
                    return ExitCode::from(2);
                }
            },
            listen,
            metrics_listen,
            json_logs: log_format == LogFormat::Json,
            review_timeout,
            max_concurrent,
            trust_refresh,
        })
        .map_err(UsageError),
    };
    match result {
        Ok(code) => code,
        Err(UsageError(msg)) => {
            eprintln!("signgate: {msg}");
            ExitCode::from(2)
        }
    }
}

fn parse_now(now: Option<&str>) -> Result<OffsetDateTime, UsageError> {
    match now {
        None => Ok(OffsetDateTime::now_utc()),
        Some(s) => OffsetDateTime::parse(s, &Rfc3339).map_err(|e| {
            UsageError(format!(
                "--now {s:?} is not an RFC 3339 time ({e}), e.g. 2026-11-28T12:00:00Z"
            ))
        }),
    }
}

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
struct VerifyRequest {
    image: String,
    root_keys: Vec<PathBuf>,
    require_roles: Vec<String>,
    now: Option<String>,
    output: Output,
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

fn verify_offline(req: VerifyRequest, dir: &Path) -> Result<ExitCode, UsageError> {
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
    let result =
        trust::verify_image(&ctx, &DirSource::new(dir), &p.reference, &p.rule).map(|(t, _)| t);
    Ok(report(&p, &result, 0))
}

fn deadline(timeout: f64) -> Result<std::time::Duration, UsageError> {
    if !(timeout.is_finite() && timeout > 0.0 && timeout <= 300.0) {
        return Err(UsageError(format!(
            "--timeout {timeout} must be between 0 and 300 seconds"
        )));
    }
    Ok(std::time::Duration::from_secs_f64(timeout))
}

fn runtime() -> Result<tokio::runtime::Runtime, UsageError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| UsageError(format!("cannot start the async runtime: {e}")))
}

/// `verify --config`: the image's policy in `namespace` decides, as the webhook would.
fn verify_with_config(
    req: VerifyRequest,
    config: &Path,
    namespace: &str,
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
    let labels = std::collections::BTreeMap::new();
    let decision = runtime()?.block_on(async {
        tokio::time::timeout(
            deadline,
            verifier.decide(&req.image, namespace, &labels, now),
        )
        .await
    });
    let decision = decision.map_err(|_| {
        UsageError(format!(
            "verification did not finish within {:.1} s",
            deadline.as_secs_f64()
        ))
    })?;
    use signgate::verifier::Outcome;
    let (target, error) = match &decision.outcome {
        Outcome::Verified(t) => (Some(t), None),
        Outcome::Failed(e) => (None, Some(e.clone())),
        Outcome::AllowedByPolicy | Outcome::DeniedByPolicy => (None, None),
    };
    let ok = !decision.failed();
    let requests = verifier.upstream_requests();
    match req.output {
        Output::Json => println!(
            "{:#}",
            json!({
                "image": reference.to_string(),
                "gun": reference.gun(),
                "trusted": ok,
                "policy": decision.policy_label(),
                "trust_root": decision.trust_root,
                "mode": decision.mode.as_str(),
                "outcome": match &decision.outcome {
                    Outcome::AllowedByPolicy => "allowed_by_policy",
                    Outcome::DeniedByPolicy => "denied_by_policy",
                    Outcome::Verified(_) => "verified",
                    Outcome::Failed(_) => "failed",
                },
                "tag": target.map(|t| t.tag()),
                "digest": target.map(|t| t.digest().as_str()),
                "role": target.map(|t| t.roles().join(",")),
                "reason": if ok { None } else { Some(decision.reason_label()) },
                "error": error.as_ref().map(ToString::to_string),
                "upstream_requests": requests,
            })
        ),
        Output::Text => match &decision.outcome {
            Outcome::Verified(t) => {
                println!(
                    "trusted: {reference} (policy {:?})",
                    decision.policy_label()
                );
                println!("  digest:    {}", t.digest());
                println!("  signed by: {}", t.roles().join(", "));
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

struct OnlineFlags {
    url: String,
    ca_file: Option<PathBuf>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    timeout: f64,
}

fn verify_online(req: VerifyRequest, flags: OnlineFlags) -> Result<ExitCode, UsageError> {
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
            Some(notary::BasicCredentials {
                username,
                password: password.trim_end_matches(['\r', '\n']).to_owned(),
            })
        }
        _ => None,
    };
    let per_request = deadline.min(std::time::Duration::from_secs(5));
    let client = notary::NotaryClient::new(notary::NotaryServer {
        url,
        ca_pem: ca_pem.clone(),
        credentials: credentials.clone(),
        request_timeout: per_request,
    })
    .map_err(|e| UsageError(format!("--ca-file: {e}")))?;
    let trust_root = notary::TrustRootClient::new(
        "cli",
        client,
        p.pins.clone(),
        Limits::default(),
        notary::CacheSettings::default(),
    );
    let resolver = resolve::Resolver::new(
        std::collections::HashMap::new(),
        resolve::RegistrySettings {
            ca_pem,
            credentials,
        },
        per_request,
        std::time::Duration::ZERO,
    );
    let result = runtime()?.block_on(async {
        let work =
            signgate::online::verify_image(&trust_root, &resolver, &p.reference, &p.rule, p.now);
        match tokio::time::timeout(deadline, work).await {
            Ok(r) => r,
            Err(_) => Err(trust::TrustError::new(
                trust::Reason::Timeout,
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
    result: &Result<trust::VerifiedTarget, trust::TrustError>,
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

fn inspect_root(file: &Path, output: Output) -> Result<ExitCode, UsageError> {
    let bytes = std::fs::read(file)
        .map_err(|e| UsageError(format!("cannot read {}: {e}", file.display())))?;
    let env = metadata::Envelope::parse(&bytes, metadata::ROOT, Limits::default().root)
        .map_err(|e| UsageError(format!("{}: {e}", file.display())))?;
    let root =
        metadata::Root::parse(&env).map_err(|e| UsageError(format!("{}: {e}", file.display())))?;
    let role = root
        .role(metadata::ROOT)
        .ok_or_else(|| UsageError(format!("{}: root defines no root role", file.display())))?;
    let mut out = Vec::new();
    for id in &role.keyids {
        let Some(entry) = root.keys.get(id) else {
            continue;
        };
        let key = entry
            .key
            .as_ref()
            .map_err(|e| UsageError(format!("{}: root key {id}: {e}", file.display())))?;
        let pem = der::pem::encode_string("PUBLIC KEY", der::pem::LineEnding::LF, key.spki())
            .map_err(|e| {
                UsageError(format!(
                    "{}: root key {id}: cannot encode PEM: {e}",
                    file.display()
                ))
            })?;
        let summary = key.certs().map(|c| c.summary());
        out.push(json!({
            "key_id": id,
            "canonical_key_id": key.canonical_id(),
            "keytype": key.keytype().as_str(),
            "public_key_pem": pem,
            "subject": summary.as_ref().map(|s| s.subject.clone()),
            "common_name": summary.as_ref().and_then(|s| s.common_name.clone()),
            "not_before": summary.as_ref().map(|s| fmt_unix(s.not_before)),
            "not_after": summary.as_ref().map(|s| fmt_unix(s.not_after)),
        }));
    }
    match output {
        Output::Json => println!(
            "{:#}",
            json!({
                "version": root.common.version,
                "expires": trust::fmt_time(root.common.expires),
                "threshold": role.threshold,
                "keys": out,
            })
        ),
        Output::Text => {
            println!(
                "root version {} (expires {}), threshold {} of {} key(s)",
                root.common.version,
                trust::fmt_time(root.common.expires),
                role.threshold,
                out.len()
            );
            for k in &out {
                let s = |f: &str| k.get(f).and_then(|v| v.as_str()).unwrap_or("-").to_owned();
                println!();
                println!("canonical key ID: {}", s("canonical_key_id"));
                println!("root.json key ID: {}", s("key_id"));
                println!("key type:         {}", s("keytype"));
                println!("subject:          {}", s("subject"));
                println!(
                    "valid:            {} to {}",
                    s("not_before"),
                    s("not_after")
                );
                print!("{}", s("public_key_pem"));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
