//! cosign signatures in the legacy layout, key-based (pure: bytes in, verdicts out). cosign 2
//! stores an image's signatures as the OCI manifest tagged `sha256-<hex>.sig` in the image's
//! repository: one layer per signature, each layer a simple-signing payload (JSON naming the
//! signed manifest digest and the repository) with the base64 signature over the payload's bytes
//! in the layer annotation `dev.cosignproject.cosign/signature`.
//!
//! A signature counts for a configured key when the signature verifies over the received payload
//! bytes with that key, and the payload names the image's digest (`critical.image.
//! docker-manifest-digest`), the image's repository (`critical.identity.docker-reference`) and
//! the cosign signature type. The trust root then needs `threshold` distinct keys and every
//! `required` key among them.
//!
//! Not here yet (the configuration refuses them, so nothing is silently skipped): transparency
//! log entries (`transparencyLog` must be `ignore`), keyless (Fulcio) certificates, and Sigstore
//! bundles (cosign 3's default layout).

use std::collections::BTreeSet;

use base64::Engine as _;
use serde::Deserialize;

use crate::pki::{SigAlg, SigEncoding, VerifyingKey};
use crate::reference::{Digest, Reference};

/// The layer media type of a simple-signing payload.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// `critical.type` of an image signature payload.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";
/// Signature layers looked at per image at most (each costs a blob fetch).
pub const MAX_LAYERS: usize = 32;
/// Largest payload accepted (cosign's are ~250 bytes plus annotations).
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// A `cosign:` trust root: named public keys, how many must have signed, which must.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignRoot {
    pub keys: Vec<NamedKey>,
    /// Distinct keys whose signature must verify (1 ≤ threshold ≤ keys).
    pub threshold: usize,
    /// Key names that must each have signed (a subset of `keys`).
    pub required: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedKey {
    pub name: String,
    pub key: VerifyingKey,
}

/// Why a cosign signature does not count, or the trust root's answer is no.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignError {
    pub reason: Reason,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No `.sig` manifest, or no simple-signing layer in it.
    NoSignature,
    /// A manifest, annotation or payload that is not what cosign writes.
    Malformed,
    /// The payload names another digest.
    DigestMismatch,
    /// The payload names another repository, or is not an image signature.
    WrongSubject,
    /// Signatures verified, but not by enough (or the required) keys; or by none.
    Untrusted,
}

impl CosignError {
    fn new(reason: Reason, detail: impl Into<String>) -> CosignError {
        CosignError {
            reason,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for CosignError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

/// The tag of `digest`'s legacy signature manifest: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &Digest) -> String {
    format!("sha256-{}.sig", digest.hex())
}

/// One signature layer of a `.sig` manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLayer {
    pub payload_digest: Digest,
    pub payload_size: u64,
    pub signature: Vec<u8>,
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    layers: Vec<Layer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Layer {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

/// The simple-signing layers of a `.sig` manifest (at most [`MAX_LAYERS`]; other layers are
/// ignored, as cosign ignores them). A layer without its signature annotation, or with one that
/// is not base64, is malformed.
pub fn signature_layers(manifest: &[u8]) -> Result<Vec<SignatureLayer>, CosignError> {
    let m: Manifest = serde_json::from_slice(manifest).map_err(|e| {
        CosignError::new(
            Reason::Malformed,
            format!("the .sig manifest is not an OCI manifest: {e}"),
        )
    })?;
    let mut out = Vec::new();
    for (i, l) in m
        .layers
        .iter()
        .filter(|l| l.media_type == SIMPLE_SIGNING)
        .enumerate()
    {
        if i >= MAX_LAYERS {
            break;
        }
        let bad = |what: String| {
            CosignError::new(Reason::Malformed, format!("signature layer {i}: {what}"))
        };
        let payload_digest = Digest::parse(&l.digest).map_err(|e| bad(format!("digest: {e}")))?;
        let b64 = l
            .annotations
            .get(SIGNATURE_ANNOTATION)
            .ok_or_else(|| bad(format!("no {SIGNATURE_ANNOTATION} annotation")))?;
        let signature = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| bad(format!("the signature is not base64: {e}")))?;
        out.push(SignatureLayer {
            payload_digest,
            payload_size: l.size,
            signature,
        });
    }
    if out.is_empty() {
        return Err(CosignError::new(
            Reason::NoSignature,
            "the .sig manifest has no simple-signing layer",
        ));
    }
    Ok(out)
}

#[derive(Deserialize)]
struct Payload {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// Checks what a payload claims: an image signature for `image`'s digest in `image`'s repository
/// (`docker-reference` compared in canonical form, `docker.io/library/x` = `x`, mirrors allowed:
/// [`same_repository`]).
pub fn check_payload(
    payload: &[u8],
    image: &Reference,
    digest: &Digest,
) -> Result<(), CosignError> {
    let p: Payload = serde_json::from_slice(payload).map_err(|e| {
        CosignError::new(
            Reason::Malformed,
            format!("the signed payload is not a cosign simple-signing document: {e}"),
        )
    })?;
    if p.critical.kind != SIGNATURE_TYPE {
        return Err(CosignError::new(
            Reason::WrongSubject,
            format!(
                "the signed payload's type is {:?}, not {SIGNATURE_TYPE:?}",
                p.critical.kind
            ),
        ));
    }
    if p.critical.image.docker_manifest_digest != digest.as_str() {
        return Err(CosignError::new(
            Reason::DigestMismatch,
            format!(
                "the signed payload names digest {:?}, not the image's {digest}",
                p.critical.image.docker_manifest_digest
            ),
        ));
    }
    let named = Reference::parse(&p.critical.identity.docker_reference).map_err(|e| {
        CosignError::new(
            Reason::WrongSubject,
            format!(
                "the signed payload's docker-reference {:?} is not an image reference: {e}",
                p.critical.identity.docker_reference
            ),
        )
    })?;
    if !same_repository(&named, image) {
        return Err(CosignError::new(
            Reason::WrongSubject,
            format!(
                "the signed payload names repository {:?}, not {:?}",
                named.gun(),
                image.gun()
            ),
        ));
    }
    Ok(())
}

/// Whether the payload's `docker-reference` names the image's repository: the same registry and
/// path, or the same path served by a mirror or pull-through cache (Harbor's proxy projects add
/// a leading path segment: `dockerhub-proxy/org/app` mirrors `docker.io/org/app`). The digest
/// binds the content either way; this keeps a signature from vouching for another repository.
fn same_repository(named: &Reference, image: &Reference) -> bool {
    if named.gun() == image.gun() {
        return true;
    }
    let (theirs, ours) = (named.path(), image.path());
    ours == theirs
        || ours
            .strip_suffix(theirs)
            .is_some_and(|prefix| prefix.ends_with('/'))
}

/// How cosign signs with `key`: SHA-256 for every key type (ECDSA as ASN.1 DER over the
/// SHA-256 of the payload whatever the curve, RSA PKCS#1 v1.5), Ed25519 over the payload itself.
fn cosign_verify(key: &VerifyingKey, payload: &[u8], signature: &[u8]) -> bool {
    use sha2::Digest as _;
    if key.is_rsa() {
        return key
            .verify(SigAlg::RsaPkcs1Sha256, SigEncoding::Der, payload, signature)
            .is_ok();
    }
    if key
        .verify(SigAlg::Ed25519, SigEncoding::Der, payload, signature)
        .is_ok()
    {
        return true;
    }
    key.verify_ecdsa_sha256(&sha2::Sha256::digest(payload), signature)
        .is_ok()
}

/// The names of the keys of `root` whose signature over `payload` is `signature`.
pub fn signers(root: &CosignRoot, payload: &[u8], signature: &[u8]) -> Vec<String> {
    root.keys
        .iter()
        .filter(|k| cosign_verify(&k.key, payload, signature))
        .map(|k| k.name.clone())
        .collect()
}

/// The trust root's answer for the keys that signed (over all valid signatures of the image):
/// the signer list as reported, or why that is not enough.
pub fn decide(root: &CosignRoot, signed: &BTreeSet<String>) -> Result<String, CosignError> {
    let missing: Vec<&str> = root
        .required
        .iter()
        .filter(|r| !signed.contains(*r))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(CosignError::new(
            Reason::Untrusted,
            format!(
                "{} of {} required keys signed; missing: {}",
                root.required.len() - missing.len(),
                root.required.len(),
                missing.join(", ")
            ),
        ));
    }
    if signed.len() < root.threshold {
        return Err(CosignError::new(
            Reason::Untrusted,
            if signed.is_empty() {
                "no signature verifies with the trust root's keys".to_owned()
            } else {
                format!(
                    "{} of the {} keys needed signed ({})",
                    signed.len(),
                    root.threshold,
                    signed
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
        ));
    }
    Ok(format!(
        "cosign key{} {}",
        if signed.len() == 1 { "" } else { "s" },
        signed
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

#[cfg(test)]
mod tests;
