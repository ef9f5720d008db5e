//! A Sigstore `trusted_root.json` (protobuf-specs `TrustedRoot`, JSON form), pinned by the
//! operator: the transparency logs' keys (Rekor: signed entry timestamps), the certificate
//! authorities (Fulcio: keyless signing certificates) and the certificate transparency logs
//! (SCTs in those certificates), each with its validity window. Read once per configuration;
//! signgate never fetches it (no TUF at admission time).

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::limits::MAX_ROOT_ENTRIES as MAX_ENTRIES;
use crate::pki::{Certificate, VerifyingKey};

/// A log's key (a transparency log or a CT log), by its id: SHA-256 of the key's DER SPKI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogKey {
    /// SHA-256 of the key's DER SubjectPublicKeyInfo: how entries and SCTs name the log.
    pub id: [u8; 32],
    /// The log's public key.
    pub key: VerifyingKey,
    /// When the key signed for the log.
    pub valid: Window,
}

/// A certificate authority: its chain (issuing certificate first, root last) and when it
/// issued certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    /// Issuing certificate first, root last; never empty.
    pub chain: Vec<Certificate>,
    /// When the authority issued certificates.
    pub valid: Window,
}

/// `validFor`: from `start`, until `end` when given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The first instant, included.
    pub start: OffsetDateTime,
    /// The last instant, included; `None`: still valid.
    pub end: Option<OffsetDateTime>,
}

impl Window {
    /// Whether `t` is within the window (both ends included).
    pub fn contains(&self, t: OffsetDateTime) -> bool {
        self.start <= t && self.end.is_none_or(|end| t <= end)
    }
}

/// What signgate reads of a trusted root.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrustedRoot {
    /// Transparency (Rekor) log keys: they sign SETs and checkpoints.
    pub tlogs: Vec<LogKey>,
    /// Certificate transparency log keys: they sign the SCTs in Fulcio certificates.
    pub ctlogs: Vec<LogKey>,
    /// Certificate authorities (Fulcio) that issue keyless signing certificates.
    pub authorities: Vec<Authority>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    tlogs: Vec<RawLog>,
    #[serde(default)]
    ctlogs: Vec<RawLog>,
    #[serde(default)]
    certificate_authorities: Vec<RawAuthority>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLog {
    public_key: RawKey,
    log_id: RawLogId,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKey {
    raw_bytes: String,
    valid_for: Option<RawWindow>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogId {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawWindow {
    start: Option<String>,
    end: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAuthority {
    cert_chain: RawChain,
    valid_for: Option<RawWindow>,
}

#[derive(Deserialize)]
struct RawChain {
    certificates: Vec<RawCert>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCert {
    raw_bytes: String,
}

fn b64(what: &str, s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("{what} is not base64: {e}"))
}

fn window(what: &str, w: Option<&RawWindow>) -> Result<Window, String> {
    let time = |field: &str, s: &str| {
        OffsetDateTime::parse(s, &Rfc3339)
            .map_err(|e| format!("{what}.validFor.{field} {s:?} is not an RFC 3339 time: {e}"))
    };
    // No start: valid from the beginning (protobuf-specs makes start required; be lenient
    // about what only widens nothing: an absent start cannot admit a key the log did not have).
    let start = match w.and_then(|w| w.start.as_deref()) {
        Some(s) => time("start", s)?,
        None => OffsetDateTime::UNIX_EPOCH,
    };
    let end = match w.and_then(|w| w.end.as_deref()) {
        Some(s) => Some(time("end", s)?),
        None => None,
    };
    Ok(Window { start, end })
}

fn log(what: &str, l: &RawLog) -> Result<LogKey, String> {
    let der = b64(
        &format!("{what}.publicKey.rawBytes"),
        &l.public_key.raw_bytes,
    )?;
    let key = VerifyingKey::from_spki_der(&der).map_err(|e| format!("{what}.publicKey: {e}"))?;
    let id: [u8; 32] = Sha256::digest(&der).into();
    let named = b64(&format!("{what}.logId.keyId"), &l.log_id.key_id)?;
    if named != id {
        return Err(format!(
            "{what}.logId.keyId is not the SHA-256 of its public key"
        ));
    }
    Ok(LogKey {
        id,
        key,
        valid: window(what, l.public_key.valid_for.as_ref())?,
    })
}

impl TrustedRoot {
    /// Parses a `trusted_root.json`; every error names the entry.
    pub fn parse(bytes: &[u8]) -> Result<TrustedRoot, String> {
        let not_root = |e: &dyn std::fmt::Display| {
            format!("not a Sigstore trusted root (trusted_root.json): {e}")
        };
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(not_root(&"not a JSON object"));
        }
        let raw: Raw = serde_json::from_slice(bytes).map_err(|e| not_root(&e))?;
        if let Some(m) = &raw.media_type
            && !m.starts_with("application/vnd.dev.sigstore.trustedroot")
        {
            return Err(format!("mediaType {m:?} is not a Sigstore trusted root"));
        }
        if raw.tlogs.len() > MAX_ENTRIES
            || raw.ctlogs.len() > MAX_ENTRIES
            || raw.certificate_authorities.len() > MAX_ENTRIES
        {
            return Err(format!("more than {MAX_ENTRIES} entries of one kind"));
        }
        let tlogs = raw
            .tlogs
            .iter()
            .enumerate()
            .map(|(i, l)| log(&format!("tlogs[{i}]"), l))
            .collect::<Result<Vec<_>, _>>()?;
        let ctlogs = raw
            .ctlogs
            .iter()
            .enumerate()
            .map(|(i, l)| log(&format!("ctlogs[{i}]"), l))
            .collect::<Result<Vec<_>, _>>()?;
        let mut authorities = Vec::new();
        for (i, a) in raw.certificate_authorities.iter().enumerate() {
            let what = format!("certificateAuthorities[{i}]");
            if a.cert_chain.certificates.is_empty() || a.cert_chain.certificates.len() > 8 {
                return Err(format!("{what}.certChain: give 1 to 8 certificates"));
            }
            let chain = a
                .cert_chain
                .certificates
                .iter()
                .enumerate()
                .map(|(j, c)| {
                    let w = format!("{what}.certChain.certificates[{j}]");
                    Certificate::from_der(&b64(&w, &c.raw_bytes)?).map_err(|e| format!("{w}: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            authorities.push(Authority {
                chain,
                valid: window(&what, a.valid_for.as_ref())?,
            });
        }
        Ok(TrustedRoot {
            tlogs,
            ctlogs,
            authorities,
        })
    }
}
