//! Keyless cosign signatures: a short-lived Fulcio certificate instead of a configured key.
//! The certificate counts when it chains to a certificate authority of the pinned trusted root
//! that was valid then, was itself valid at the log-attested signing time (the Rekor entry's
//! `integratedTime`: Fulcio certificates live ten minutes), carries a signed certificate
//! timestamp from a pinned CT log, is a code-signing certificate, and names an identity the
//! trust root accepts (the OIDC issuer and the subject alternative name, as policy-controller's
//! keyless authorities match them).

use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use super::limits::MAX_SCTS;
use super::trusted_root::TrustedRoot;
use super::{CosignError, Reason};
use crate::pki::{Certificate, OID_EKU_CODE_SIGNING};

/// RFC 6962 embedded SCT list.
const OID_SCT_LIST: &str = "1.3.6.1.4.1.11129.2.4.2";
/// Fulcio's OIDC issuer, v2 (a DER UTF8String) and v1 (the raw string, deprecated).
const OID_ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";
const OID_ISSUER_V1: &str = "1.3.6.1.4.1.57264.1.1";

/// A string the identity must equal, or a regular expression it must match whole.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// The value must equal this string.
    Exact(String),
    /// Anchored at both ends when compiled (`^(?:…)$`).
    Regex(regex::Regex),
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Matcher::Exact(a), Matcher::Exact(b)) => a == b,
            (Matcher::Regex(a), Matcher::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl Eq for Matcher {}

impl Matcher {
    /// A regular expression matched against the whole value.
    pub fn regex(pattern: &str) -> Result<Matcher, String> {
        regex::Regex::new(&format!("^(?:{pattern})$"))
            .map(Matcher::Regex)
            .map_err(|e| format!("not a regular expression: {e}"))
    }

    /// Whether `value` equals the string, or matches the expression whole.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(s) => s == value,
            Matcher::Regex(r) => r.is_match(value),
        }
    }
}

/// One accepted identity: the OIDC issuer and the certificate's subject (SAN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Matched against the certificate's OIDC issuer extension.
    pub issuer: Matcher,
    /// Matched against each subject alternative name; one match is enough.
    pub subject: Matcher,
}

/// Who a Fulcio certificate says signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertIdentity {
    /// The OIDC issuer (Fulcio's v2 extension, else the deprecated v1).
    pub issuer: String,
    /// The subject alternative names (an email, a URI such as a CI workflow's); never empty.
    pub subjects: Vec<String>,
}

impl CertIdentity {
    /// For people: `subject, … (issuer)`.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.subjects.join(", "), self.issuer)
    }
}

fn err(reason: Reason, detail: impl Into<String>) -> CosignError {
    CosignError::new(reason, detail)
}

/// The certificate's OIDC issuer and subject alternative names.
pub fn identity(cert: &Certificate) -> Result<CertIdentity, CosignError> {
    let bad = |d: String| err(Reason::Certificate, d);
    let issuer = if let Some((v, _)) = cert.extension(OID_ISSUER_V2) {
        use der::Decode as _;
        der::asn1::Utf8StringRef::from_der(v)
            .map(|s| s.as_str().to_owned())
            .map_err(|e| bad(format!("the certificate's OIDC issuer extension: {e}")))?
    } else if let Some((v, _)) = cert.extension(OID_ISSUER_V1) {
        String::from_utf8(v.to_vec())
            .map_err(|_| bad("the certificate's OIDC issuer is not UTF-8".into()))?
    } else {
        return Err(bad(
            "the certificate names no OIDC issuer (not a Fulcio certificate)".into(),
        ));
    };
    let subjects = cert.subject_alt_names().map_err(|e| bad(e.to_string()))?;
    if subjects.is_empty() {
        return Err(bad("the certificate has no subject alternative name".into()));
    }
    Ok(CertIdentity { issuer, subjects })
}

/// Whether one of `accepted` names the certificate's identity.
pub fn accepted(accepted: &[Identity], id: &CertIdentity) -> bool {
    accepted
        .iter()
        .any(|a| a.issuer.matches(&id.issuer) && id.subjects.iter().any(|s| a.subject.matches(s)))
}

/// Checks a signing certificate at the log-attested time `at`: the chain to a pinned
/// authority, then the leaf's validity, that it is a code-signing leaf, and an SCT from a pinned
/// CT log.
pub fn verify_certificate(
    root: &TrustedRoot,
    leaf: &Certificate,
    at: OffsetDateTime,
) -> Result<(), CosignError> {
    // The chain first: a certificate no pinned authority issued is reported as that, whatever
    // else is wrong with it.
    let issuer = root
        .authorities
        .iter()
        .filter(|a| a.valid.contains(at))
        .find_map(|a| {
            let first = a.chain.first()?;
            leaf.verify_issued_by(first).ok()?;
            let linked = a
                .chain
                .windows(2)
                .all(|w| matches!(w, [c, up] if c.verify_issued_by(up).is_ok()));
            (linked && a.chain.iter().all(|c| c.valid_at(at))).then_some(first)
        })
        .ok_or_else(|| {
            err(
                Reason::Certificate,
                format!(
                    "the signing certificate (issued by {:?}) does not chain to a certificate authority of the trusted root valid at {at}",
                    leaf.issuer_text()
                ),
            )
        })?;
    if !leaf.valid_at(at) {
        return Err(err(
            Reason::CertificateExpired,
            format!(
                "the signing certificate was not valid at the log-attested signing time {at} (valid {} to {})",
                leaf.not_before(),
                leaf.not_after()
            ),
        ));
    }
    if matches!(leaf.basic_constraints(), Ok(Some((true, _, _))) | Err(_)) {
        return Err(err(
            Reason::Certificate,
            "the signing certificate is a CA certificate, not a signing leaf",
        ));
    }
    match leaf.extended_key_usage() {
        Ok(Some((ekus, _))) if ekus.iter().any(|e| e == OID_EKU_CODE_SIGNING) => {}
        _ => {
            return Err(err(
                Reason::Certificate,
                "the signing certificate is not for code signing",
            ));
        }
    }
    verify_sct(root, leaf, issuer)
}

/// Reads a big-endian length-prefixed slice (`n` length bytes) from `buf`.
fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (len, rest) = buf.split_at_checked(n)?;
    let len = len
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    let (v, rest) = rest.split_at_checked(len)?;
    *buf = rest;
    Some(v)
}

fn take_fixed<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (v, rest) = buf.split_at_checked(n)?;
    *buf = rest;
    Some(v)
}

struct Sct<'a> {
    log_id: &'a [u8],
    timestamp: &'a [u8],
    extensions: &'a [u8],
    hash_alg: u8,
    sig_alg: u8,
    signature: &'a [u8],
}

fn parse_sct(mut b: &[u8]) -> Option<Sct<'_>> {
    let version = *take_fixed(&mut b, 1)?.first()?;
    if version != 0 {
        return None;
    }
    let log_id = take_fixed(&mut b, 32)?;
    let timestamp = take_fixed(&mut b, 8)?;
    let extensions = take(&mut b, 2)?;
    let algs = take_fixed(&mut b, 2)?;
    let signature = take(&mut b, 2)?;
    match (algs, b.is_empty()) {
        ([hash_alg, sig_alg], true) => Some(Sct {
            log_id,
            timestamp,
            extensions,
            hash_alg: *hash_alg,
            sig_alg: *sig_alg,
            signature,
        }),
        _ => None,
    }
}

/// At least one embedded SCT verifies with a pinned CT log's key (RFC 6962 §3.2: the log
/// signed the precertificate's TBS, without the SCT list, and the issuer's key hash).
fn verify_sct(
    root: &TrustedRoot,
    leaf: &Certificate,
    issuer: &Certificate,
) -> Result<(), CosignError> {
    let bad = |d: &str| {
        err(
            Reason::Certificate,
            format!("the signing certificate's SCT: {d}"),
        )
    };
    let Some((ext, _)) = leaf.extension(OID_SCT_LIST) else {
        return Err(bad("none embedded (certificate transparency is required)"));
    };
    use der::Decode as _;
    let list = der::asn1::OctetString::from_der(ext)
        .map_err(|_| bad("the extension is not an OCTET STRING"))?;
    let mut list = list.as_bytes();
    let mut scts = take(&mut list, 2).ok_or_else(|| bad("the list is truncated"))?;
    let tbs = leaf
        .tbs_without_extension(OID_SCT_LIST)
        .map_err(|e| bad(&e.to_string()))?;
    let tbs_len = u32::try_from(tbs.len())
        .ok()
        .filter(|l| *l < 1 << 24)
        .ok_or_else(|| bad("the certificate is too large"))?;
    let issuer_key = issuer.public_key().map_err(|e| bad(&e.to_string()))?;
    let issuer_key_hash = Sha256::digest(issuer_key.spki_der());
    let mut seen = 0usize;
    while !scts.is_empty() && seen < MAX_SCTS {
        seen += 1;
        let raw = take(&mut scts, 2).ok_or_else(|| bad("the list is truncated"))?;
        let Some(sct) = parse_sct(raw) else {
            continue;
        };
        // SHA-256 (4) with ECDSA (3): what CT logs, and Sigstore's, sign with.
        if (sct.hash_alg, sct.sig_alg) != (4, 3) {
            continue;
        }
        // The CT log must have been pinned for the time it stamped.
        let stamped = <[u8; 8]>::try_from(sct.timestamp)
            .ok()
            .map(|b| i128::from(u64::from_be_bytes(b)) * 1_000_000)
            .and_then(|ns| OffsetDateTime::from_unix_timestamp_nanos(ns).ok());
        let Some(log) = root.ctlogs.iter().find(|l| {
            l.id.as_slice() == sct.log_id && stamped.is_some_and(|t| l.valid.contains(t))
        }) else {
            continue;
        };
        let ext_len = u16::try_from(sct.extensions.len()).unwrap_or(u16::MAX);
        let mut signed = Vec::with_capacity(tbs.len() + 64);
        signed.extend_from_slice(&[0, 0]); // v1, certificate_timestamp
        signed.extend_from_slice(sct.timestamp);
        signed.extend_from_slice(&[0, 1]); // precert_entry
        signed.extend_from_slice(&issuer_key_hash);
        signed.extend_from_slice(&tbs_len.to_be_bytes()[1..]);
        signed.extend_from_slice(&tbs);
        signed.extend_from_slice(&ext_len.to_be_bytes());
        signed.extend_from_slice(sct.extensions);
        if log
            .key
            .verify_ecdsa_sha256(&Sha256::digest(&signed), sct.signature)
            .is_ok()
        {
            return Ok(());
        }
    }
    Err(bad("none verifies with a CT log key of the trusted root"))
}
