//! Rekor transparency log entries, verified offline against a log key pinned in the trusted root:
//! the signed entry timestamp (SET, the log's promise to include the entry) and the inclusion
//! proof (the entry's leaf in the tree a signed checkpoint commits to), at least one of the two
//! and each that is present; and the entry's body bound to the signature being judged (same
//! signature, same signer, same signed content).
//!
//! The SET is ECDSA over SHA-256 of the RFC 8785 canonical JSON of
//! `{"body","integratedTime","logID","logIndex"}` (cosign `VerifySET`); the four keys are in
//! sorted order already and their values are base64, hex and integers, so they are written
//! directly. A SET proves the log promised inclusion at `integratedTime`, the time keyless
//! certificates are judged at; without one, `integratedTime` is signed by nothing and not read.
//! Neither proves the log stayed consistent (that needs the log online).

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use super::limits::{MAX_LOG_BODY as MAX_BODY, MAX_PROOF_HASHES};
use super::trusted_root::TrustedRoot;
use super::{CosignError, Reason};
use crate::pki::{Certificate, VerifyingKey};

/// One transparency log entry as a signature carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogEntry {
    /// The log's ID: SHA-256 of its key's DER SubjectPublicKeyInfo (a
    /// [`LogKey`](super::trusted_root::LogKey) id).
    pub log_id: Vec<u8>,
    /// The entry's index in the log.
    pub log_index: i64,
    /// When the log integrated the entry, unix seconds; trusted only as a SET signs it.
    pub integrated_time: i64,
    /// The entry (canonical JSON) the log stored.
    pub body: Vec<u8>,
    /// The signed entry timestamp; None when the entry carries only an inclusion proof.
    pub set: Option<Vec<u8>>,
    /// The inclusion proof; None when the entry carries only a SET (legacy `.sig` bundles).
    pub proof: Option<InclusionProof>,
}

/// A Merkle inclusion proof with the log's signed checkpoint (a signed note).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// The leaf's index in the tree the proof is for.
    pub log_index: u64,
    /// That tree's size, in leaves; the checkpoint must sign the same size.
    pub tree_size: u64,
    /// The tree's root hash (32 bytes), which the path must lead to and the checkpoint sign.
    pub root_hash: Vec<u8>,
    /// The audit path, leaf to root (RFC 9162): 32-byte hashes, at most
    /// [`MAX_PROOF_HASHES`].
    pub hashes: Vec<Vec<u8>>,
    /// The checkpoint: a signed note naming the log's origin, the tree size and the root hash.
    pub checkpoint: String,
}

/// Who signed, as the log entry must name them.
#[derive(Debug, Clone, Copy)]
pub enum Signer<'a> {
    /// A configured public key: the entry must record the same key (however it was encoded).
    Key(&'a VerifyingKey),
    /// A keyless signature's Fulcio certificate: the entry must record this certificate.
    Certificate(&'a Certificate),
}

/// What the entry must be about.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// The signature bytes: the entry must record the same signature.
    pub signature: &'a [u8],
    /// SHA-256 of what the log hashed: the simple-signing payload, the DSSE payload, or the
    /// message digest of a message signature.
    pub content_sha256: &'a [u8; 32],
    /// Who signed.
    pub signer: Signer<'a>,
}

fn err(detail: impl Into<String>) -> CosignError {
    CosignError::new(Reason::Tlog, detail)
}

fn b64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LegacyBundle {
    signed_entry_timestamp: String,
    payload: LegacyPayload,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacyPayload {
    body: String,
    integrated_time: i64,
    log_index: i64,
    #[serde(rename = "logID")]
    log_id: String,
}

/// The `dev.sigstore.cosign/bundle` annotation of a legacy `.sig` layer.
pub fn parse_legacy(annotation: &str) -> Result<TlogEntry, CosignError> {
    let b: LegacyBundle = serde_json::from_str(annotation).map_err(|e| {
        err(format!(
            "the layer's Rekor bundle is not what cosign writes: {e}"
        ))
    })?;
    Ok(TlogEntry {
        log_id: hex::decode(&b.payload.log_id)
            .map_err(|_| err("the Rekor bundle's logID is not hex"))?,
        log_index: b.payload.log_index,
        integrated_time: b.payload.integrated_time,
        body: b64(&b.payload.body).ok_or_else(|| err("the Rekor bundle's body is not base64"))?,
        set: Some(
            b64(&b.signed_entry_timestamp)
                .ok_or_else(|| err("the Rekor bundle's SignedEntryTimestamp is not base64"))?,
        ),
        proof: None,
    })
}

/// The SET's signed message: RFC 8785 canonical JSON of the entry's four fields.
fn set_message(e: &TlogEntry) -> String {
    format!(
        r#"{{"body":"{}","integratedTime":{},"logID":"{}","logIndex":{}}}"#,
        base64::engine::general_purpose::STANDARD.encode(&e.body),
        e.integrated_time,
        hex::encode(&e.log_id),
        e.log_index
    )
}

/// Verifies one entry: its body bound to `binding`, its SET by a pinned log key valid at the
/// entry's time, and its inclusion proof when it carries one (a proof that fails refuses the
/// entry). At least one of SET and proof must be there. Returns the log-attested time when a
/// SET attested it (`None`: inclusion proven, time not attested).
///
/// Without a SET nothing signs `integratedTime`, so it is not read: the log key must then be
/// valid `now` (a key the trusted root has retired vouches for no undated entry).
pub fn verify_entry(
    root: &TrustedRoot,
    entry: &TlogEntry,
    binding: &Binding<'_>,
    now: OffsetDateTime,
) -> Result<Option<OffsetDateTime>, CosignError> {
    if entry.body.len() > MAX_BODY {
        return Err(err("the log entry's body is over 64 KiB"));
    }
    let Some(log) = root.tlogs.iter().find(|l| l.id.as_slice() == entry.log_id) else {
        return Err(err(format!(
            "the log entry is from log {}, which the trusted root does not list",
            hex::encode(&entry.log_id)
        )));
    };
    if entry.set.is_none() && entry.proof.is_none() {
        return Err(err(
            "the log entry has neither a signed entry timestamp nor an inclusion proof",
        ));
    }
    let attested = match &entry.set {
        Some(_) => Some(
            OffsetDateTime::from_unix_timestamp(entry.integrated_time)
                .map_err(|_| err("the log entry's integratedTime is out of range"))?,
        ),
        None => None,
    };
    match attested {
        Some(time) if !log.valid.contains(time) => {
            return Err(err(format!(
                "the log entry's time {time} is outside its log key's validity"
            )));
        }
        None if !log.valid.contains(now) => {
            return Err(err(format!(
                "the log entry carries no signed entry timestamp, and its log key is not valid now ({now}): an undated entry needs a current log key"
            )));
        }
        _ => {}
    }
    if let Some(set) = &entry.set {
        let digest = Sha256::digest(set_message(entry).as_bytes());
        log.key.verify_ecdsa_sha256(&digest, set).map_err(|_| {
            err("the log entry's signed entry timestamp does not verify with the log's key")
        })?;
    }
    if let Some(proof) = &entry.proof {
        verify_inclusion(&log.key, &entry.body, proof)?;
    }
    check_body(&entry.body, binding)?;
    Ok(attested)
}

fn node(left: &[u8], right: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// RFC 9162 §2.1.3.2: the root hash the audit path leads to from leaf `index` of `size`.
fn root_from_path(leaf: [u8; 32], index: u64, size: u64, path: &[Vec<u8>]) -> Option<[u8; 32]> {
    if index >= size {
        return None;
    }
    let (mut f, mut s, mut r) = (index, size - 1, leaf);
    for p in path {
        if s == 0 {
            return None;
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    (s == 0).then_some(r)
}

/// The entry's leaf is in the tree whose root the log's checkpoint signs.
fn verify_inclusion(
    key: &crate::pki::VerifyingKey,
    body: &[u8],
    proof: &InclusionProof,
) -> Result<(), CosignError> {
    let bad = |d: &str| err(format!("the log entry's inclusion proof {d}"));
    if proof.hashes.len() > MAX_PROOF_HASHES || proof.hashes.iter().any(|h| h.len() != 32) {
        return Err(bad("has a malformed audit path"));
    }
    let mut leaf = Sha256::new();
    leaf.update([0u8]);
    leaf.update(body);
    let root = root_from_path(
        leaf.finalize().into(),
        proof.log_index,
        proof.tree_size,
        &proof.hashes,
    )
    .ok_or_else(|| bad("does not fit its tree size"))?;
    if root.as_slice() != proof.root_hash {
        return Err(bad("does not lead to its root hash"));
    }
    // The checkpoint: "origin\nsize\nbase64(root)\n[extensions\n]\n— name base64(hint ‖ sig)\n".
    let (text, signatures) = proof
        .checkpoint
        .split_once("\n\n")
        .ok_or_else(|| bad("has a checkpoint that is not a signed note"))?;
    let mut lines = text.lines();
    let (origin, size, hash) = (lines.next().unwrap_or(""), lines.next(), lines.next());
    if size.and_then(|s| s.parse::<u64>().ok()) != Some(proof.tree_size)
        || hash.and_then(b64).as_deref() != Some(root.as_slice())
    {
        return Err(bad("has a checkpoint for another tree"));
    }
    // A signature counts when its line names the log the origin names (Rekor: origin
    // "<name> - <tree id>", signed as <name>; a tile log: origin and name equal) and its key hint
    // is the pinned key's (the first four bytes of SHA-256 of its SPKI), before it is verified.
    let named = |name: &str| {
        !name.is_empty()
            && (origin == name
                || origin
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(" - ")))
    };
    let hint = Sha256::digest(key.spki_der());
    let signed = format!("{text}\n");
    let digest = Sha256::digest(signed.as_bytes());
    let mut seen = None;
    let verified = signatures.lines().take(8).any(|l| {
        let Some((name, sig)) = l
            .strip_prefix("\u{2014} ")
            .and_then(|rest| rest.rsplit_once(' '))
        else {
            return false;
        };
        let Some((raw_hint, raw_sig)) = b64(sig).and_then(|r| {
            let (h, s) = r.split_at_checked(4)?;
            Some((h.to_vec(), s.to_vec()))
        }) else {
            return false;
        };
        if !named(name) || hint.get(..4) != Some(raw_hint.as_slice()) {
            seen.get_or_insert_with(|| name.to_owned());
            return false;
        }
        key.verify_ecdsa_sha256(&digest, &raw_sig).is_ok()
    });
    match (verified, seen) {
        (true, _) => Ok(()),
        (false, Some(name)) => Err(bad(&format!(
            "has a checkpoint signed as {name:?} with another key hint or for another origin than {origin:?}, and none by the log's key"
        ))),
        (false, None) => Err(bad("has a checkpoint the log's key did not sign")),
    }
}

// ---- entry bodies -------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    api_version: String,
    kind: String,
    spec: serde_json::Value,
}

#[derive(Deserialize)]
struct HashedRekord {
    data: HrData,
    signature: HrSignature,
}
#[derive(Deserialize)]
struct HrData {
    hash: Hash,
}
#[derive(Deserialize)]
struct Hash {
    algorithm: String,
    value: String,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HrSignature {
    content: String,
    public_key: HrKey,
}
#[derive(Deserialize)]
struct HrKey {
    content: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Dsse {
    payload_hash: Hash,
    signatures: Vec<DsseSig>,
}
#[derive(Deserialize)]
struct DsseSig {
    signature: String,
    verifier: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Intoto {
    content: IntotoContent,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IntotoContent {
    envelope: IntotoEnvelope,
    payload_hash: Hash,
}
#[derive(Deserialize)]
struct IntotoEnvelope {
    signatures: Vec<IntotoSig>,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IntotoSig {
    sig: String,
    public_key: String,
}

/// Whether base64 `pem_b64` (a PEM public key or certificate) names `signer`.
fn names_signer(pem_b64: &str, signer: Signer<'_>) -> bool {
    let Some(pem) = b64(pem_b64) else {
        return false;
    };
    let Ok((label, der)) = crate::pki::decode_pem(&pem) else {
        return false;
    };
    match signer {
        // The same key however the signer encoded it when it uploaded the entry.
        Signer::Key(k) => {
            label == "PUBLIC KEY"
                && crate::pki::VerifyingKey::from_spki_der(&der).is_ok_and(|d| d == *k)
        }
        Signer::Certificate(c) => label == "CERTIFICATE" && der == c.der(),
    }
}

fn sha256_hex_matches(h: &Hash, expected: &[u8; 32]) -> bool {
    h.algorithm.eq_ignore_ascii_case("sha256")
        && h.value.eq_ignore_ascii_case(&hex::encode(expected))
}

/// The entry body must record this signature, this signer and this content: otherwise a valid
/// SET for another signature could be attached to this one.
fn check_body(body: &[u8], b: &Binding<'_>) -> Result<(), CosignError> {
    let body: Body = serde_json::from_slice(body)
        .map_err(|e| err(format!("the log entry's body is not a Rekor entry: {e}")))?;
    let spec = |what: &str, e: serde_json::Error| {
        err(format!("the log entry's {what} body is malformed: {e}"))
    };
    let ok = match (body.kind.as_str(), body.api_version.as_str()) {
        ("hashedrekord", "0.0.1") => {
            let h: HashedRekord =
                serde_json::from_value(body.spec).map_err(|e| spec("hashedrekord", e))?;
            sha256_hex_matches(&h.data.hash, b.content_sha256)
                && b64(&h.signature.content).as_deref() == Some(b.signature)
                && names_signer(&h.signature.public_key.content, b.signer)
        }
        ("dsse", "0.0.1") => {
            let d: Dsse = serde_json::from_value(body.spec).map_err(|e| spec("dsse", e))?;
            sha256_hex_matches(&d.payload_hash, b.content_sha256)
                && d.signatures.iter().any(|s| {
                    b64(&s.signature).as_deref() == Some(b.signature)
                        && names_signer(&s.verifier, b.signer)
                })
        }
        ("intoto", "0.0.2") => {
            let i: Intoto = serde_json::from_value(body.spec).map_err(|e| spec("intoto", e))?;
            sha256_hex_matches(&i.content.payload_hash, b.content_sha256)
                && i.content.envelope.signatures.iter().any(|s| {
                    // The envelope's signature is stored base64 of the DSSE base64.
                    let once = b64(&s.sig);
                    let twice = once
                        .as_deref()
                        .and_then(|o| std::str::from_utf8(o).ok())
                        .and_then(b64);
                    (twice.as_deref() == Some(b.signature) || once.as_deref() == Some(b.signature))
                        && names_signer(&s.public_key, b.signer)
                })
        }
        (kind, version) => {
            return Err(err(format!(
                "the log entry is a {kind} {version} entry, which signgate does not read"
            )));
        }
    };
    if ok {
        Ok(())
    } else {
        Err(err(format!(
            "the log entry ({}) records another signature, signer or content",
            body.kind
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9162 §2.1.1 MTH, written from the definition.
    fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
        match leaves {
            [] => Sha256::digest([]).into(),
            [one] => *one,
            _ => {
                let k = leaves.len().next_power_of_two() / 2;
                node(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    /// RFC 9162 §2.1.3.1 PATH, written from the definition.
    fn path(m: usize, leaves: &[[u8; 32]]) -> Vec<Vec<u8>> {
        if leaves.len() <= 1 {
            return vec![];
        }
        let k = leaves.len().next_power_of_two() / 2;
        if m < k {
            let mut p = path(m, &leaves[..k]);
            p.push(mth(&leaves[k..]).to_vec());
            p
        } else {
            let mut p = path(m - k, &leaves[k..]);
            p.push(mth(&leaves[..k]).to_vec());
            p
        }
    }

    #[test]
    fn audit_paths_lead_to_the_root_for_every_leaf_of_every_small_tree() {
        for n in 1..=33u64 {
            let leaves: Vec<[u8; 32]> = (0..n)
                .map(|i| Sha256::digest(i.to_be_bytes()).into())
                .collect();
            let root = mth(&leaves);
            for (m, leaf) in leaves.iter().enumerate() {
                let p = path(m, &leaves);
                let m = m as u64;
                assert_eq!(root_from_path(*leaf, m, n, &p), Some(root), "n={n} m={m}");
                // Another index, a changed hash, one hash short: not this root. (Another size
                // can share the path: the checkpoint's signed size is what binds it.)
                if n > 1 {
                    let other = (m + 1) % n;
                    assert_ne!(
                        root_from_path(*leaf, other, n, &p),
                        Some(root),
                        "n={n} m={m}"
                    );
                }
                if let Some(first) = p.first() {
                    let mut q = p.clone();
                    q[0] = first.iter().map(|b| b ^ 1).collect();
                    assert_ne!(root_from_path(*leaf, m, n, &q), Some(root));
                    assert_ne!(root_from_path(*leaf, m, n, &p[1..]), Some(root));
                }
            }
            assert_eq!(
                root_from_path(leaves[0], n, n, &[]),
                None,
                "index past the tree"
            );
        }
    }
}
