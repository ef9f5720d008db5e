//! The `signgate` command line (the binary's side of the crate): clap's parse, then one module per
//! subcommand. Exit codes: 0 trusted/allowed, 1 not trusted/denied, 2 bad usage, bad configuration
//! or an I/O failure the user must fix. `anyhow`-style string errors live only here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

mod audit;
mod check;
mod inspect;
mod serve;
mod verify;

#[derive(Parser)]
#[command(
    name = "signgate",
    version,
    about = "Admit only container images signed by a publisher the cluster trusts (Notary v1, Notation, cosign)"
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
pub(crate) enum Output {
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
        /// A label of that namespace, for policies with namespaces.matchLabels (repeatable; the
        /// CLI does not read the cluster, so without it such policies cannot be decided).
        #[arg(long = "namespace-label", value_name = "KEY=VALUE", value_parser = parse_label)]
        namespace_labels: Vec<(String, String)>,
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
        /// A label of the objects' namespaces, for policies with namespaces.matchLabels
        /// (repeatable; the CLI does not read the cluster).
        #[arg(long = "namespace-label", value_name = "KEY=VALUE", value_parser = parse_label)]
        namespace_labels: Vec<(String, String)>,
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
        /// Decide the images of the running Pods again in the background (metrics
        /// signgate_audit_*, a log line per failing container); needs list on pods and namespaces.
        #[arg(long)]
        audit: bool,
        /// How often the audit runs, in seconds (and after every configuration reload).
        #[arg(long = "audit-interval", value_name = "SECONDS", default_value_t = 600)]
        audit_interval: u64,
    },
    /// Decide the images of running Pods under a configuration: what is running now that it
    /// would deny (exit code 1 when anything would be).
    Audit {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Kubeconfig of the cluster; default: KUBECONFIG, ~/.kube/config, or in-cluster.
        #[arg(long, value_name = "FILE")]
        kubeconfig: Option<PathBuf>,
        /// Only this namespace's Pods (default: every namespace).
        #[arg(long, value_name = "NS")]
        namespace: Option<String>,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Deadline for the whole audit, in seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 300.0)]
        timeout: f64,
    },
    /// Print the root keys of a repository's root.json, ready to pin in the configuration.
    InspectRoot {
        /// A root.json file.
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

/// `--namespace-label KEY=VALUE`.
fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// The labels given with `--namespace-label`, or unknown when none was.
fn labels(given: Vec<(String, String)>) -> signgate::upstream::NamespaceLabels {
    if given.is_empty() {
        signgate::upstream::NamespaceLabels::None
    } else {
        signgate::upstream::NamespaceLabels::Given(given.into_iter().collect())
    }
}

/// A failure the user must fix (exit 2), as one sentence.
pub(crate) struct UsageError(pub(crate) String);

/// Parses the command line and runs the subcommand; the process's exit code.
pub fn main() -> ExitCode {
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
            namespace_labels,
        } => {
            let req = verify::VerifyRequest {
                image,
                root_keys,
                require_roles,
                now,
                output,
            };
            match (offline, notary, config) {
                (Some(dir), None, None) => verify::offline(req, &dir),
                (None, Some(url), None) => verify::online(
                    req,
                    verify::OnlineFlags {
                        url,
                        ca_file,
                        username,
                        password_file,
                        timeout,
                    },
                ),
                (None, None, Some(config)) => {
                    verify::with_config(req, &config, &namespace, labels(namespace_labels), timeout)
                }
                (None, None, None) => Err(UsageError(
                    "verify needs --notary URL (online), --offline DIR, or --config FILE".into(),
                )),
                _ => Err(UsageError(
                    "give only one of --notary, --offline and --config".into(),
                )),
            }
        }
        Command::InspectRoot { file, output } => inspect::run(&file, output),
        Command::Audit {
            config,
            kubeconfig,
            namespace,
            output,
            timeout,
        } => deadline(timeout).and_then(|timeout| {
            audit::run(&audit::AuditRequest {
                config: &config,
                kubeconfig: kubeconfig.as_deref(),
                namespace: namespace.as_deref(),
                json: output == Output::Json,
                timeout,
            })
        }),
        Command::Check {
            file,
            config,
            namespace,
            namespace_labels,
            output,
        } => check::run(
            &file,
            &config,
            &namespace,
            labels(namespace_labels),
            output == Output::Json,
        )
        .map_err(UsageError),
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
            audit,
            audit_interval,
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
            audit: audit.then(|| std::time::Duration::from_secs(audit_interval.max(1))),
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

/// `--now` as a time; now when it is not given.
pub(crate) fn parse_now(now: Option<&str>) -> Result<OffsetDateTime, UsageError> {
    match now {
        None => Ok(OffsetDateTime::now_utc()),
        Some(s) => OffsetDateTime::parse(s, &Rfc3339).map_err(|e| {
            UsageError(format!(
                "--now {s:?} is not an RFC 3339 time ({e}), e.g. 2026-11-28T12:00:00Z"
            ))
        }),
    }
}

/// `--timeout` in seconds as a duration: more than 0, at most 300.
pub(crate) fn deadline(timeout: f64) -> Result<std::time::Duration, UsageError> {
    if !(timeout.is_finite() && timeout > 0.0 && timeout <= 300.0) {
        return Err(UsageError(format!(
            "--timeout {timeout} must be between 0 and 300 seconds"
        )));
    }
    Ok(std::time::Duration::from_secs_f64(timeout))
}

/// A single-threaded Tokio runtime for one command's network work.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, UsageError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| UsageError(format!("cannot start the async runtime: {e}")))
}
