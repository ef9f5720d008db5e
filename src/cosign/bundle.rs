//! Sigstore bundles (`application/vnd.dev.sigstore.bundle.v0.3+json`, and the `…+json;version=
//! 0.1/0.2` forms sigstore-js and older cosign wrote), as cosign 3 attaches them to an image
//! through the referrers API or tag schema: the signed content (a DSSE envelope over an in-toto
//! statement, or a message signature over a digest), the verification material (a key hint,
//! which is never trusted, or a Fulcio certificate) and transparency log entries.

use base64::Engine as _;
use serde::Deserialize;

use super::limits::{
    MAX_BUNDLE, MAX_DSSE_SIGNATURES as MAX_SIGNATURES, MAX_LOG_ENTRIES, MAX_PROOF_HASHES,
};
use super::rekor::{self, TlogEntry};
use super::{CosignError, Evidence, Reason, Signed};
use crate::oci::{Index, RawDescriptor};
use crate::pki::Certificate;
use crate::reference::Digest;

/// The bundle media type cosign 3 writes (the referrer's layer and artifact type).
pub const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Older bundle media types still read.
const BUNDLE_OLDER: [&str; 2] = [
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
];

/// Whether `media_type` is a Sigstore bundle signgate reads.
pub fn is_bundle(media_type: &str) -> bool {
    media_type == BUNDLE_V03
        || media_type.starts_with("application/vnd.dev.sigstore.bundle.v0.3")
        || BUNDLE_OLDER.contains(&media_type)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    media_type: String,
    verification_material: Material,
    message_signature: Option<MessageSignature>,
    dsse_envelope: Option<Envelope>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Material {
    x509_certificate_chain: Option<Chain>,
    certificate: Option<RawCert>,
    #[serde(default)]
    tlog_entries: Vec<RawEntry>,
}

#[derive(Deserialize)]
struct Chain {
    certificates: Vec<RawCert>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCert {
    raw_bytes: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEntry {
    log_index: String,
    log_id: LogId,
    integrated_time: String,
    inclusion_promise: Option<Promise>,
    inclusion_proof: Option<Proof>,
    canonicalized_body: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Proof {
    log_index: String,
    root_hash: String,
    tree_size: String,
    #[serde(default)]
    hashes: Vec<String>,
    checkpoint: Checkpoint,
}

#[derive(Deserialize)]
struct Checkpoint {
    envelope: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogId {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Promise {
    signed_entry_timestamp: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageSignature {
    message_digest: MessageDigest,
    signature: String,
}

#[derive(Deserialize)]
struct MessageDigest {
    algorithm: String,
    digest: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    payload: String,
    payload_type: String,
    signatures: Vec<DsseSignature>,
}

/// `keyid` is not read: it is not covered by the signature (sigstore-js fills it with the key
/// hint, cosign leaves it empty) and the key comes from the trust root.
#[derive(Deserialize)]
struct DsseSignature {
    sig: String,
}

fn bad(detail: impl std::fmt::Display) -> CosignError {
    CosignError::new(Reason::Malformed, format!("the Sigstore bundle {detail}"))
}

fn b64(what: &str, s: &str) -> Result<Vec<u8>, CosignError> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| bad(format!("{what} is not base64: {e}")))
}

/// Parses a bundle into what a verifier judges.
pub fn parse(bytes: &[u8]) -> Result<Evidence, CosignError> {
    if bytes.len() > MAX_BUNDLE {
        return Err(bad("is over 128 KiB"));
    }
    let raw: Raw =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("is not a Sigstore bundle: {e}")))?;
    if !is_bundle(&raw.media_type) {
        return Err(bad(format!(
            "has mediaType {:?}, not a Sigstore bundle version signgate reads",
            raw.media_type
        )));
    }
    let m = raw.verification_material;
    // The leaf: v0.3's `certificate`, or the first of an older bundle's chain (the rest of a
    // bundle's chain is not trusted: the chain comes from the trusted root).
    let certificate = match (&m.certificate, &m.x509_certificate_chain) {
        (Some(c), _) => Some(c),
        (None, Some(chain)) => chain.certificates.first(),
        (None, None) => None,
    }
    .map(|c| {
        Certificate::from_der(&b64("certificate", &c.raw_bytes)?)
            .map_err(|e| bad(format!("certificate: {e}")))
    })
    .transpose()?;
    let tlog = m
        .tlog_entries
        .iter()
        .take(MAX_LOG_ENTRIES)
        .map(|e| {
            let int = |what: &str, s: &str| {
                s.parse::<i64>()
                    .map_err(|_| bad(format!("tlog entry's {what} {s:?} is not an integer")))
            };
            let uint = |what: &str, s: &str| {
                s.parse::<u64>().map_err(|_| {
                    bad(format!(
                        "inclusion proof's {what} {s:?} is not an unsigned integer"
                    ))
                })
            };
            let proof = match &e.inclusion_proof {
                None => None,
                Some(p) if p.hashes.len() > MAX_PROOF_HASHES => {
                    return Err(bad("inclusion proof has more than 64 hashes"));
                }
                Some(p) => Some(rekor::InclusionProof {
                    log_index: uint("logIndex", &p.log_index)?,
                    tree_size: uint("treeSize", &p.tree_size)?,
                    root_hash: b64("inclusion proof rootHash", &p.root_hash)?,
                    hashes: p
                        .hashes
                        .iter()
                        .map(|h| b64("inclusion proof hash", h))
                        .collect::<Result<_, _>>()?,
                    checkpoint: p.checkpoint.envelope.clone(),
                }),
            };
            Ok(TlogEntry {
                log_id: b64("logId.keyId", &e.log_id.key_id)?,
                log_index: int("logIndex", &e.log_index)?,
                integrated_time: int("integratedTime", &e.integrated_time)?,
                body: b64("canonicalizedBody", &e.canonicalized_body)?,
                set: e
                    .inclusion_promise
                    .as_ref()
                    .map(|p| b64("signedEntryTimestamp", &p.signed_entry_timestamp))
                    .transpose()?,
                proof,
            })
        })
        .collect::<Result<Vec<_>, CosignError>>()?;
    let (content, signatures) = match (raw.message_signature, raw.dsse_envelope) {
        (Some(ms), None) => {
            if ms.message_digest.algorithm != "SHA2_256" {
                return Err(bad(format!(
                    "signs a {} digest, not SHA2_256",
                    ms.message_digest.algorithm
                )));
            }
            let d = b64("messageDigest.digest", &ms.message_digest.digest)?;
            let sha256: [u8; 32] = d
                .try_into()
                .map_err(|_| bad("messageDigest.digest is not 32 bytes"))?;
            (
                Signed::Message { sha256 },
                vec![b64("messageSignature.signature", &ms.signature)?],
            )
        }
        (None, Some(env)) => {
            if env.signatures.is_empty() || env.signatures.len() > MAX_SIGNATURES {
                return Err(bad(format!(
                    "DSSE envelope has {} signatures (1 to {MAX_SIGNATURES} are read)",
                    env.signatures.len()
                )));
            }
            let sigs = env
                .signatures
                .iter()
                .map(|s| b64("DSSE signature", &s.sig))
                .collect::<Result<Vec<_>, _>>()?;
            (
                Signed::Dsse {
                    payload_type: env.payload_type,
                    payload: b64("DSSE payload", &env.payload)?,
                },
                sigs,
            )
        }
        _ => {
            return Err(bad(
                "must hold exactly one of messageSignature and dsseEnvelope",
            ));
        }
    };
    Ok(Evidence {
        content,
        signatures,
        certificate,
        tlog,
    })
}

// ---- where bundles live ---------------------------------------------------------------------

/// The empty artifact type cosign 3 (and ghcr.io) put on bundle entries of a referrers index.
const EMPTY: &str = "application/vnd.oci.empty.v1+json";

#[derive(Deserialize)]
struct OciManifest {
    #[serde(default)]
    layers: Vec<RawDescriptor>,
    subject: Option<RawDescriptor>,
}

/// The manifests of a referrers index (API or tag schema) that may hold a bundle, at most
/// `cap`: entries typed as a bundle, typed empty (cosign 3 on registries without the API, and
/// ghcr.io), or untyped. Notation signatures and other artifacts are skipped.
pub fn candidates(index: &[u8], cap: usize) -> Result<Vec<(Digest, u64)>, CosignError> {
    let index: Index =
        serde_json::from_slice(index).map_err(|e| bad(format!("referrers index: {e}")))?;
    Ok(index
        .manifests
        .iter()
        .filter(|m| {
            m.artifact_type
                .as_deref()
                .is_none_or(|t| t == EMPTY || is_bundle(t))
        })
        .filter_map(|m| Some((Digest::parse(&m.digest).ok()?, m.size)))
        .take(cap)
        .collect())
}

/// The bundle layer of a referrer manifest whose subject is `subject`: `None` when the manifest
/// holds no bundle (another artifact in the same index). The layer's media type decides, not
/// the index entry's artifact type (ghcr.io and cosign 3 type the entry as empty).
pub fn bundle_layer(
    manifest: &[u8],
    subject: &Digest,
) -> Result<Option<(Digest, u64)>, CosignError> {
    let m: OciManifest =
        serde_json::from_slice(manifest).map_err(|e| bad(format!("referrer manifest: {e}")))?;
    let Some(layer) = m.layers.iter().find(|l| is_bundle(&l.media_type)) else {
        return Ok(None);
    };
    match &m.subject {
        Some(s) if s.digest == subject.as_str() => {}
        Some(s) => {
            return Err(CosignError::new(
                Reason::DigestMismatch,
                format!("a bundle referrer's subject is {}, not {subject}", s.digest),
            ));
        }
        None => return Err(bad("referrer manifest has no subject")),
    }
    let digest = Digest::parse(&layer.digest)
        .map_err(|e| bad(format!("layer digest {:?}: {e}", layer.digest)))?;
    Ok(Some((digest, layer.size)))
}
