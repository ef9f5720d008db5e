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
enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
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
        } => {
            if config.is_some() || notary.is_some() || ca_file.is_some() {
                Err(UsageError(
                    "online verification (--config, --notary, --ca-file) is not available in this build yet; use --offline DIR --root-key FILE".into(),
                ))
            } else {
                verify_offline(
                    &image,
                    offline.as_deref(),
                    &root_keys,
                    require_roles,
                    now.as_deref(),
                    output,
                )
            }
        }
        Command::InspectRoot { file, output } => inspect_root(&file, output),
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

fn verify_offline(
    image: &str,
    dir: Option<&Path>,
    root_keys: &[PathBuf],
    require_roles: Vec<String>,
    now: Option<&str>,
    output: Output,
) -> Result<ExitCode, UsageError> {
    let dir = dir.ok_or_else(|| {
        UsageError(
            "verify needs --offline DIR (online verification is not available in this build yet)"
                .into(),
        )
    })?;
    if !dir.is_dir() {
        return Err(UsageError(format!(
            "--offline {} is not a directory",
            dir.display()
        )));
    }
    let reference =
        Reference::parse(image).map_err(|e| UsageError(format!("image {image:?}: {e}")))?;
    let pins = read_pins(root_keys)?;
    let now = parse_now(now)?;
    for r in &require_roles {
        if r != metadata::TARGETS && !metadata::is_delegation_name(r) {
            return Err(UsageError(format!(
                "--require-role {r:?} is not a role name (targets or targets/<name>)"
            )));
        }
    }
    let rule = if require_roles.is_empty() {
        RoleRule::Docker
    } else {
        RoleRule::Require(require_roles)
    };
    let gun = reference.gun();
    let previous = TrustState::default();
    let ctx = VerifyContext {
        gun: &gun,
        pins: &pins,
        now,
        previous: &previous,
        limits: Limits::default(),
    };
    let source = DirSource::new(dir);
    let result = trust::verify_image(&ctx, &source, &reference, &rule);
    let trusted = result.is_ok();
    match output {
        Output::Json => {
            let doc = match &result {
                Ok((t, _)) => json!({
                    "image": reference.to_string(),
                    "gun": gun,
                    "trusted": true,
                    "tag": t.tag(),
                    "digest": t.digest().as_str(),
                    "length": t.length(),
                    "role": t.roles().join(","),
                    "roles": t.roles(),
                    "reason": null,
                    "error": null,
                    "upstream_requests": 0,
                }),
                Err(e) => json!({
                    "image": reference.to_string(),
                    "gun": gun,
                    "trusted": false,
                    "tag": reference.tag(),
                    "digest": null,
                    "role": null,
                    "roles": [],
                    "reason": e.reason().as_str(),
                    "error": e.to_string(),
                    "upstream_requests": 0,
                }),
            };
            println!("{doc:#}");
        }
        Output::Text => match &result {
            Ok((t, _)) => {
                println!("trusted: {reference}");
                println!("  digest: {}", t.digest());
                println!("  tag:    {}", t.tag());
                println!("  signed by: {}", t.roles().join(", "));
            }
            Err(e) => {
                println!("not trusted: image {reference}: {} ({e})", e.reason());
            }
        },
    }
    Ok(ExitCode::from(if trusted { 0 } else { 1 }))
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
