//! The rules of a TUF chain walk that do not depend on the metadata's flavour: who counts toward a
//! role's threshold, when a role has expired, and when a version goes backwards.

use std::collections::BTreeSet;

use time::OffsetDateTime;

use crate::verdict::{Reason, TrustError};

/// One entry of a document's `signatures`: the key ID it names, the signing method (empty when
/// the flavour has none) and the signature bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The key ID the signature names.
    pub keyid: String,
    /// The method, lower-cased (`ecdsa`, `rsapss`, …), or empty.
    pub method: String,
    /// The signature bytes.
    pub sig: Vec<u8>,
}

/// A key a role lists, as a flavour parsed it.
pub trait SigningKey {
    /// Canonical key material (DER SubjectPublicKeyInfo): the same key under two IDs, or in two
    /// encodings, is one signer.
    fn material(&self) -> &[u8];
    /// Whether `sig` by `method` verifies over `msg`.
    fn verify(&self, method: &str, msg: &[u8], sig: &[u8]) -> bool;
}

/// A role's key by ID, as the flavour found it: `Ok(None)` when the document lists no usable key
/// of that ID (its signatures do not count); `Err` when the key's content does not hash to its
/// ID, which fails the whole document.
pub type KeyLookup<'a, K> = &'a dyn Fn(&str) -> Result<Option<&'a K>, TrustError>;

/// Checks that `signatures` over `signed` (canonical bytes) come from at least `threshold`
/// distinct keys among `keyids`. Unknown keys, unusable keys, keys `accept` refuses and bad
/// signatures do not count; keys are counted once by ID and once by material, so one key listed
/// twice cannot reach a threshold of two.
pub fn check_threshold<K: SigningKey>(
    role: &str,
    signed: &[u8],
    signatures: &[Signature],
    keyids: &[String],
    threshold: i64,
    key: KeyLookup<'_, K>,
    accept: &dyn Fn(&K) -> bool,
) -> Result<(), TrustError> {
    if threshold < 1 {
        return Err(TrustError::role(
            Reason::MalformedMetadata,
            role,
            format!("threshold {threshold} is below 1"),
        ));
    }
    if signatures.is_empty() {
        return Err(TrustError::role(
            Reason::ThresholdNotMet,
            role,
            "the document has no signatures",
        ));
    }
    let mut ids = BTreeSet::new();
    let mut material = BTreeSet::new();
    for s in signatures {
        if !keyids.contains(&s.keyid) {
            continue;
        }
        let Some(k) = key(&s.keyid)? else { continue };
        if !accept(k) || ids.contains(&s.keyid) || material.contains(k.material()) {
            continue;
        }
        if k.verify(&s.method, signed, &s.sig) {
            ids.insert(s.keyid.clone());
            material.insert(k.material().to_vec());
        }
    }
    let valid = material.len();
    if i64::try_from(valid).unwrap_or(i64::MAX) < threshold {
        return Err(TrustError::role(
            Reason::ThresholdNotMet,
            role,
            format!("{valid} valid signature(s) from distinct keys; threshold is {threshold}"),
        ));
    }
    Ok(())
}

/// A role expires at `expires`: it is refused at any later `now` (no leeway for metadata).
pub fn check_expiry(
    role: &str,
    expires: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<(), TrustError> {
    if expires < now {
        return Err(TrustError::role(
            Reason::Expired,
            role,
            format!("expired at {}", fmt_time(expires)),
        ));
    }
    Ok(())
}

/// A role's `version` may not be lower than the version `before` trusted (rollback).
pub fn check_version(role: &str, version: u64, before: Option<u64>) -> Result<(), TrustError> {
    match before {
        Some(prev) if version < prev => Err(TrustError::role(
            Reason::Rollback,
            role,
            format!("version {version} is older than version {prev} trusted before"),
        )),
        _ => Ok(()),
    }
}

/// RFC 3339 text of a time, for messages.
pub fn fmt_time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}
