//! `signgate inspect-root FILE`: the root keys of a repository's `root.json`, ready to pin.

use std::path::Path;
use std::process::ExitCode;

use serde_json::json;

use signgate::notary::{self, Limits, cert::fmt_unix, metadata};

use super::{Output, UsageError};

/// Prints the root keys of the `root.json` at `file`, ready to pin in the configuration.
pub(super) fn run(file: &Path, output: Output) -> Result<ExitCode, UsageError> {
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
                "expires": notary::fmt_time(root.common.expires),
                "threshold": role.threshold,
                "keys": out,
            })
        ),
        Output::Text => {
            println!(
                "root version {} (expires {}), threshold {} of {} key(s)",
                root.common.version,
                notary::fmt_time(root.common.expires),
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
