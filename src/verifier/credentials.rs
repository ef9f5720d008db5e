//! Registry credentials from the files the configuration names: a password file, or a docker
//! `config.json` whose `auths` key names the registry.

use std::path::Path;

use base64::Engine as _;

use super::SetupError;
use crate::config::{Credentials, Reads};
use crate::reference::RegistryHost;
use crate::upstream::BasicCredentials;

/// The file at `path` (the configuration's `field`), read and recorded through `reads`.
pub(super) fn read(reads: &Reads, field: &str, path: &Path) -> Result<Vec<u8>, SetupError> {
    reads.file(path).map_err(|source| SetupError::Read {
        field: field.to_owned(),
        path: path.to_owned(),
        source,
    })
}

/// Credentials for `host` from a docker `config.json` (`auths.<host>.auth` = base64 `user:pass`,
/// or `username`/`password`). Keys are compared as hosts (`https://index.docker.io/v1/` is
/// Docker Hub).
fn docker_config_credentials(
    reads: &Reads,
    field: &str,
    path: &Path,
    host: &RegistryHost,
) -> Result<Option<BasicCredentials>, SetupError> {
    let bytes = read(reads, field, path)?;
    let invalid = |detail: String| SetupError::Invalid {
        field: field.to_owned(),
        detail: format!("{}: {detail}", path.display()),
    };
    let doc: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let auths = doc.get("auths").and_then(|a| a.as_object());
    let Some(entry) = auths.and_then(|a| {
        a.iter()
            .find(|(k, _)| {
                let k = k
                    .trim_start_matches("https://")
                    .trim_start_matches("http://");
                k.split('/')
                    .next()
                    .and_then(|h| RegistryHost::parse(h).ok())
                    .as_ref()
                    == Some(host)
            })
            .map(|(_, v)| v)
    }) else {
        return Ok(None);
    };
    if let (Some(u), Some(p)) = (
        entry.get("username").and_then(|v| v.as_str()),
        entry.get("password").and_then(|v| v.as_str()),
    ) {
        return Ok(Some(BasicCredentials {
            username: u.to_owned(),
            password: p.to_owned(),
        }));
    }
    let auth = entry
        .get("auth")
        .and_then(|v| v.as_str())
        .ok_or_else(|| invalid(format!("auths entry for {host} has no auth")))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .map_err(|_| invalid(format!("auths entry for {host}: auth is not base64")))?;
    let text = String::from_utf8(decoded)
        .map_err(|_| invalid(format!("auths entry for {host}: auth is not UTF-8")))?;
    let (u, p) = text
        .split_once(':')
        .ok_or_else(|| invalid(format!("auths entry for {host}: auth is not user:password")))?;
    Ok(Some(BasicCredentials {
        username: u.to_owned(),
        password: p.to_owned(),
    }))
}

/// The host of a notary URL as a registry host (Harbor serves both from one host).
pub(super) fn notary_host(url: &url::Url) -> Option<RegistryHost> {
    let host = url.host_str()?;
    let host = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    RegistryHost::parse(&host).ok()
}

pub(super) fn credentials(
    reads: &Reads,
    field: &str,
    c: &Credentials,
    host: &RegistryHost,
) -> Result<Option<BasicCredentials>, SetupError> {
    match c {
        Credentials::Basic {
            username,
            password_file,
        } => {
            let pw = read(reads, field, password_file)?;
            let pw = String::from_utf8(pw).map_err(|_| SetupError::Invalid {
                field: field.to_owned(),
                detail: format!("{} is not UTF-8 text", password_file.display()),
            })?;
            Ok(Some(BasicCredentials {
                username: username.clone(),
                password: pw.trim_end_matches(['\r', '\n']).to_owned(),
            }))
        }
        Credentials::DockerConfig { file } => docker_config_credentials(reads, field, file, host),
        Credentials::Secret { name } => Err(SetupError::Invalid {
            field: field.to_owned(),
            detail: format!(
                "secretName {name:?} needs the Secret mounted as a file: use dockerConfigFile (the Helm chart mounts it)"
            ),
        }),
    }
}
