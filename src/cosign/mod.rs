//! cosign signatures (pure: bytes in, verdicts out), in both layouts cosign writes:
//!
//! - legacy (cosign 2): the OCI manifest tagged `sha256-<hex>.sig` in the image's repository,
//!   one layer per signature, each a simple-signing payload (JSON naming the signed manifest
//!   digest and the repository) with the base64 signature in the layer annotation
//!   `dev.cosignproject.cosign/signature`, and for keyless or logged signatures the Fulcio
//!   certificate and the Rekor bundle in two more annotations;
//! - Sigstore bundles (cosign 3, sigstore-js): [`bundle`], attached as referrers of the image.
//!
//! A signature counts for a configured key when it verifies with that key over what it signs,
//! and what it signs names the image's digest (and, for simple-signing payloads, its
//! repository); for a keyless identity when the certificate's key verifies it and [`keyless`]
//! accepts the certificate at the log-attested time. When the trust root pins a trusted root
//! (`transparencyLog: required`), a signature also needs a Rekor entry whose SET verifies and
//! whose body records that signature ([`rekor`]). The trust root then needs `threshold`
//! distinct signers and every `required` key among them.

use std::collections::BTreeSet;

use base64::Engine as _;
use serde::Deserialize;

use crate::pki::{Certificate, SigAlg, SigEncoding, VerifyingKey};
use crate::reference::{Digest, Reference};
pub use limits::{MAX_LAYERS, MAX_PAYLOAD, MAX_SIGNATURE_CHECKS};

pub mod bundle;
mod judge;
pub mod keyless;
pub mod limits;
pub mod rekor;
pub mod trusted_root;

pub use judge::Cosign;
pub use keyless::{Identity, Matcher};
pub use limits::Limits;
pub use trusted_root::TrustedRoot;

/// The layer annotation of a legacy keyless signature's Fulcio certificate (PEM).
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// The layer annotation of a legacy signature's Rekor bundle (SET and entry).
pub const REKOR_ANNOTATION: &str = "dev.sigstore.cosign/bundle";
/// DSSE payload type of an in-toto statement.
pub const INTOTO: &str = "application/vnd.in-toto+json";
/// Predicate type of cosign 3's image signature statement.
pub const SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

/// The layer media type of a simple-signing payload.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// `critical.type` of an image signature payload.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";

/// A `cosign:` trust root: named public keys and keyless identities, how many must have signed,
/// which keys must, and the trusted root that log entries and certificates are checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignRoot {
    /// The trust root's public keys, by the names the configuration gives them.
    pub keys: Vec<NamedKey>,
    /// Distinct signers (keys, keyless identities) whose signature must verify.
    pub threshold: usize,
    /// Key names that must each have signed (a subset of `keys`).
    pub required: Vec<String>,
    /// When set, every signature needs a verified transparency log entry (and keyless
    /// certificates chain to its authorities).
    pub transparency_log: Option<std::sync::Arc<TrustedRoot>>,
    /// Keyless identities accepted (needs `transparency_log`).
    pub identities: Vec<Identity>,
}

/// A configured public key and the name signers are reported by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedKey {
    /// The name from the configuration (`keys[].name`).
    pub name: String,
    /// The key, parsed and checked.
    pub key: VerifyingKey,
}

/// Why a cosign signature does not count, or the trust root's answer is no.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignError {
    /// Why, one of a closed set.
    pub reason: Reason,
    /// What was found, for humans.
    pub detail: String,
}

/// Why a cosign signature was refused; each maps onto one [`crate::verdict::Reason`].
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
    /// Signatures verified, but not by enough keys; or by none.
    Untrusted,
    /// A key listed in `required` did not sign.
    RequiredMissing,
    /// The transparency log entry is missing, not signed by a pinned log, or about another signature.
    Tlog,
    /// A keyless certificate does not chain to the trusted root, or has no valid SCT.
    Certificate,
    /// A keyless certificate was not valid at the log-attested signing time.
    CertificateExpired,
    /// A keyless certificate names an identity the trust root does not accept.
    Identity,
}

impl CosignError {
    pub(crate) fn new(reason: Reason, detail: impl Into<String>) -> CosignError {
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

impl std::error::Error for CosignError {}

/// A cosign refusal as every scheme's is reported: its reason among the closed set, then
/// `cosign: ` and what was wrong.
impl From<&CosignError> for crate::verdict::TrustError {
    fn from(e: &CosignError) -> Self {
        use crate::verdict::Reason as R;
        let reason = match e.reason {
            Reason::NoSignature => R::SignatureNotFound,
            Reason::Malformed => R::MalformedMetadata,
            Reason::DigestMismatch => R::DigestMismatch,
            Reason::WrongSubject | Reason::Untrusted | Reason::Identity => R::UntrustedSigner,
            Reason::RequiredMissing => R::RequiredKeyMissing,
            Reason::Tlog => R::TransparencyLog,
            Reason::Certificate => R::InvalidCertificate,
            Reason::CertificateExpired => R::CertificateExpired,
        };
        crate::verdict::TrustError::new(reason, None, format!("cosign: {}", e.detail))
    }
}

/// The tag of `digest`'s legacy signature manifest: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &Digest) -> String {
    format!("sha256-{}.sig", digest.hex())
}

/// One signature layer of a `.sig` manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLayer {
    /// The digest of the layer's payload blob.
    pub payload_digest: Digest,
    /// The payload's size as the layer declares it (checked against the cap before fetching).
    pub payload_size: u64,
    /// The signature, decoded from the layer's annotation.
    pub signature: Vec<u8>,
    /// A keyless signature's Fulcio certificate.
    pub certificate: Option<Certificate>,
    /// The Rekor entry cosign recorded (the `dev.sigstore.cosign/bundle` annotation).
    pub tlog: Option<rekor::TlogEntry>,
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
        let certificate = l
            .annotations
            .get(CERTIFICATE_ANNOTATION)
            .map(|pem| {
                Certificate::parse_pem_bundle(pem)
                    .ok()
                    .and_then(|c| c.into_iter().next())
                    .ok_or_else(|| {
                        bad(format!("{CERTIFICATE_ANNOTATION} is not a PEM certificate"))
                    })
            })
            .transpose()?;
        let tlog = l
            .annotations
            .get(REKOR_ANNOTATION)
            .map(|b| rekor::parse_legacy(b).map_err(|e| bad(e.detail)))
            .transpose()?;
        out.push(SignatureLayer {
            payload_digest,
            payload_size: l.size,
            signature,
            certificate,
            tlog,
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
    identity: RefIdentity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct RefIdentity {
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

/// What a signature signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signed {
    /// A simple-signing payload (legacy layout): signed as it is.
    Simple(Vec<u8>),
    /// A DSSE envelope's payload: signed as its PAE encoding.
    Dsse {
        /// The DSSE envelope's `payloadType`.
        payload_type: String,
        /// The payload the signature covers (with DSSE's pre-authentication encoding).
        payload: Vec<u8>,
    },
    /// A message signature over an artifact with this SHA-256 digest.
    Message {
        /// The artifact's SHA-256.
        sha256: [u8; 32],
    },
}

impl Signed {
    /// SHA-256 of what a transparency log entry records for it.
    fn content_sha256(&self) -> [u8; 32] {
        use sha2::Digest as _;
        match self {
            Signed::Simple(p) | Signed::Dsse { payload: p, .. } => sha2::Sha256::digest(p).into(),
            Signed::Message { sha256 } => *sha256,
        }
    }
}

/// One signature container: what is signed, its signatures (a DSSE envelope may hold
/// several), the keyless certificate and the log entries it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// What the signatures sign.
    pub content: Signed,
    /// The signatures over it.
    pub signatures: Vec<Vec<u8>>,
    /// A keyless signature's Fulcio certificate.
    pub certificate: Option<Certificate>,
    /// The transparency log entries carried with it.
    pub tlog: Vec<rekor::TlogEntry>,
}

impl Evidence {
    /// A legacy `.sig` layer with its fetched payload.
    pub fn from_layer(layer: &SignatureLayer, payload: Vec<u8>) -> Evidence {
        Evidence {
            content: Signed::Simple(payload),
            signatures: vec![layer.signature.clone()],
            certificate: layer.certificate.clone(),
            tlog: layer.tlog.iter().cloned().collect(),
        }
    }
}

/// DSSE's pre-authentication encoding.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// How cosign signs with `key`: SHA-256 for every key type (ECDSA as ASN.1 DER over the
/// SHA-256 of the message whatever the curve, RSA PKCS#1 v1.5), Ed25519 over the message itself.
fn cosign_verify(key: &VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    use sha2::Digest as _;
    if key.is_rsa() {
        return key
            .verify(SigAlg::RsaPkcs1Sha256, SigEncoding::Der, message, signature)
            .is_ok();
    }
    if key
        .verify(SigAlg::Ed25519, SigEncoding::Der, message, signature)
        .is_ok()
    {
        return true;
    }
    key.verify_ecdsa_sha256(&sha2::Sha256::digest(message), signature)
        .is_ok()
}

/// Whether `signature` over `content` verifies with `key`.
fn verifies(key: &VerifyingKey, content: &Signed, signature: &[u8]) -> bool {
    match content {
        Signed::Simple(payload) => cosign_verify(key, payload, signature),
        Signed::Dsse {
            payload_type,
            payload,
        } => cosign_verify(key, &pae(payload_type, payload), signature),
        // A message signature signs the artifact; its digest is all there is (ECDSA prehash).
        Signed::Message { sha256 } => key.verify_ecdsa_sha256(sha256, signature).is_ok(),
    }
}

#[derive(Deserialize)]
struct Statement {
    #[serde(rename = "_type")]
    kind: String,
    subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
}

#[derive(Deserialize)]
struct Subject {
    #[serde(default)]
    digest: std::collections::BTreeMap<String, String>,
}

/// Checks what a signature's content claims: that it is an image signature for `digest` (in
/// `image`'s repository, where the content names one).
pub fn check_claims(
    content: &Signed,
    image: &Reference,
    digest: &Digest,
) -> Result<(), CosignError> {
    match content {
        Signed::Simple(payload) => check_payload(payload, image, digest),
        Signed::Message { sha256 } => {
            if hex::encode(sha256) == digest.hex() {
                Ok(())
            } else {
                Err(CosignError::new(
                    Reason::DigestMismatch,
                    format!(
                        "the message signature is over sha256:{}, not the image's {digest}",
                        hex::encode(sha256)
                    ),
                ))
            }
        }
        Signed::Dsse {
            payload_type,
            payload,
        } => {
            if payload_type != INTOTO {
                return Err(CosignError::new(
                    Reason::WrongSubject,
                    format!("the DSSE payload type is {payload_type:?}, not {INTOTO:?}"),
                ));
            }
            let st: Statement = serde_json::from_slice(payload).map_err(|e| {
                CosignError::new(
                    Reason::Malformed,
                    format!("the DSSE payload is not an in-toto statement: {e}"),
                )
            })?;
            if !matches!(
                st.kind.as_str(),
                "https://in-toto.io/Statement/v1" | "https://in-toto.io/Statement/v0.1"
            ) || st.predicate_type != SIGN_PREDICATE
            {
                return Err(CosignError::new(
                    Reason::WrongSubject,
                    format!(
                        "the statement is a {:?} of predicate {:?}, not a cosign image signature ({SIGN_PREDICATE})",
                        st.kind, st.predicate_type
                    ),
                ));
            }
            let named: Vec<&str> = st
                .subject
                .iter()
                .filter_map(|s| s.digest.get("sha256").map(String::as_str))
                .collect();
            if named.iter().any(|h| h.eq_ignore_ascii_case(digest.hex())) {
                Ok(())
            } else {
                Err(CosignError::new(
                    Reason::DigestMismatch,
                    format!(
                        "the signed statement names {}, not the image's {digest}",
                        if named.is_empty() {
                            "no sha256 subject".to_owned()
                        } else {
                            named
                                .iter()
                                .map(|h| format!("sha256:{h}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                ))
            }
        }
    }
}

/// A signer whose signature counts: the name reported (a key's configured name, a keyless
/// identity) and the key that made the signature, in canonical form ([`VerifyingKey::canonical`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBy {
    /// Who signed, as reported.
    pub name: String,
    /// The signing key in canonical form: what the threshold counts.
    pub key: Vec<u8>,
}

impl PartialEq<&str> for SignedBy {
    fn eq(&self, other: &&str) -> bool {
        self.name == *other
    }
}

impl PartialEq<String> for SignedBy {
    fn eq(&self, other: &String) -> bool {
        self.name == *other
    }
}

/// What one piece of evidence proves under `root` (signatures, log entries and certificates; not
/// the image claims, [`check_claims`]): the signers whose signature counts (key names, keyless
/// identities, with the key that signed), and why a signature that verified still does not count.
/// `now` judges only what nothing dates: a log entry without a signed entry timestamp
/// ([`rekor::verify_entry`]); keyless certificates are judged at the log-attested time.
pub fn verify_evidence(
    root: &CosignRoot,
    ev: &Evidence,
    now: time::OffsetDateTime,
) -> (Vec<SignedBy>, Vec<CosignError>) {
    let mut signed = Vec::new();
    let mut failures = Vec::new();
    let content_sha256 = ev.content.content_sha256();
    for signature in &ev.signatures {
        // Candidates: configured keys, and the certificate's key when keyless is configured.
        let mut candidates: Vec<(String, rekor::Signer<'_>)> = root
            .keys
            .iter()
            .filter(|k| verifies(&k.key, &ev.content, signature))
            .map(|k| (k.name.clone(), rekor::Signer::Key(&k.key)))
            .collect();
        let keyless = match (&ev.certificate, root.identities.is_empty()) {
            (Some(cert), false) => cert
                .public_key()
                .ok()
                .filter(|k| verifies(k, &ev.content, signature))
                .map(|_| cert),
            _ => None,
        };
        if let Some(cert) = keyless {
            match keyless::identity(cert) {
                Ok(id) if keyless::accepted(&root.identities, &id) => {
                    candidates.push((id.describe(), rekor::Signer::Certificate(cert)));
                }
                Ok(id) => failures.push(CosignError::new(
                    Reason::Identity,
                    format!(
                        "the keyless signature is by {}, which no identity of the trust root accepts",
                        id.describe()
                    ),
                )),
                Err(e) => failures.push(e),
            }
        }
        for (name, signer) in candidates {
            let Some(tr) = &root.transparency_log else {
                // Without a trusted root a certificate is checked against nothing: never count
                // it (the configuration refuses keyless without one; this holds for any caller).
                if let rekor::Signer::Key(k) = signer {
                    signed.push(SignedBy {
                        name,
                        key: k.canonical(),
                    });
                } else {
                    failures.push(CosignError::new(
                        Reason::Certificate,
                        "a keyless signature needs a trusted root to check its certificate against",
                    ));
                }
                continue;
            };
            let binding = rekor::Binding {
                signature,
                content_sha256: &content_sha256,
                signer,
            };
            // A keyless certificate is judged at the log-attested time: it needs an entry whose
            // SET attests it; a key signature needs any verified entry.
            let keyless = matches!(signer, rekor::Signer::Certificate(_));
            let mut last = None;
            let verified = ev.tlog.iter().find_map(|e| match rekor::verify_entry(tr, e, &binding, now) {
                Ok(Some(t)) => Some(Some(t)),
                Ok(None) if !keyless => Some(None),
                Ok(None) => {
                    last = Some(CosignError::new(
                        Reason::Tlog,
                        "the log entry proves inclusion but carries no signed entry timestamp: a keyless certificate needs the log-attested time",
                    ));
                    None
                }
                Err(e) => {
                    last = Some(e);
                    None
                }
            });
            let Some(time) = verified else {
                failures.push(last.unwrap_or_else(|| {
                    CosignError::new(
                        Reason::Tlog,
                        format!("the signature by {name} has no transparency log entry (transparencyLog: required)"),
                    )
                }));
                continue;
            };
            if let (rekor::Signer::Certificate(cert), Some(time)) = (signer, time)
                && let Err(e) = keyless::verify_certificate(tr, cert, time)
            {
                failures.push(e);
                continue;
            }
            let key = match signer {
                rekor::Signer::Key(k) => k.canonical(),
                rekor::Signer::Certificate(c) => match c.public_key() {
                    Ok(k) => k.canonical(),
                    Err(e) => {
                        failures.push(CosignError::new(Reason::Certificate, e.to_string()));
                        continue;
                    }
                },
            };
            signed.push(SignedBy { name, key });
        }
    }
    (signed, failures)
}

/// The distinct signers among `signed`: two entries are one signer when they share a name (one
/// keyless identity signing twice with two ephemeral keys) or a key (a configured key that is
/// also a keyless certificate's key). Each signer is listed by its names, sorted.
fn distinct_signers(signed: &[SignedBy]) -> Vec<Vec<&str>> {
    let mut groups: Vec<(BTreeSet<&str>, BTreeSet<&[u8]>)> = Vec::new();
    for s in signed {
        let (touching, rest): (Vec<_>, Vec<_>) = groups.into_iter().partition(|(names, keys)| {
            names.contains(s.name.as_str()) || keys.contains(s.key.as_slice())
        });
        let mut merged = (
            BTreeSet::from([s.name.as_str()]),
            BTreeSet::from([s.key.as_slice()]),
        );
        for (names, keys) in touching {
            merged.0.extend(names);
            merged.1.extend(keys);
        }
        groups = rest;
        groups.push(merged);
    }
    let mut out: Vec<Vec<&str>> = groups
        .into_iter()
        .map(|(names, _)| names.into_iter().collect())
        .collect();
    out.sort();
    out
}

/// The trust root's answer for the signers whose signatures counted (over all valid signatures
/// of the image): the signer list as reported, or why that is not enough. The threshold counts
/// distinct keys ([`distinct_signers`]), never names.
pub fn decide(root: &CosignRoot, signed: &[SignedBy]) -> Result<String, CosignError> {
    let missing: Vec<&str> = root
        .required
        .iter()
        .filter(|r| !signed.iter().any(|s| s.name == **r))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(CosignError::new(
            Reason::RequiredMissing,
            format!(
                "{} of {} required keys signed; missing: {}",
                root.required.len() - missing.len(),
                root.required.len(),
                missing.join(", ")
            ),
        ));
    }
    let signers = distinct_signers(signed);
    let list = signers
        .iter()
        .map(|names| names.join(" = "))
        .collect::<Vec<_>>()
        .join(", ");
    if signers.len() < root.threshold {
        return Err(CosignError::new(
            Reason::Untrusted,
            if signers.is_empty() {
                "no signature verifies with the trust root's keys or identities".to_owned()
            } else {
                format!(
                    "{} of the {} keys needed signed ({list})",
                    signers.len(),
                    root.threshold,
                )
            },
        ));
    }
    Ok(format!(
        "cosign signer{} {list}",
        if signers.len() == 1 { "" } else { "s" },
    ))
}

/// The trust root's answer over all signature containers of the image, pure ([`Cosign`]'s judge
/// runs it once the containers are read): at most [`MAX_SIGNATURE_CHECKS`]
/// signature checks, in the order the containers were found, `spent` asked before each container
/// (`None`: the time budget ran out first). A container's claims count only once a trusted signer
/// signed it; the signers of all containers meet the threshold ([`decide`]); when none counted,
/// the refusal is the failure an operator can act on first (`failures` holds those met while
/// fetching).
pub fn judge_containers(
    root: &CosignRoot,
    evidence: &[Evidence],
    mut failures: Vec<CosignError>,
    image: &Reference,
    digest: &Digest,
    now: time::OffsetDateTime,
    spent: &dyn Fn() -> bool,
) -> Option<Result<String, CosignError>> {
    let per_signature = root.keys.len() + usize::from(!root.identities.is_empty());
    let mut checks = 0usize;
    let mut skipped = 0usize;
    let mut signed = Vec::new();
    for ev in evidence {
        let cost = ev.signatures.len().saturating_mul(per_signature);
        if checks.saturating_add(cost) > MAX_SIGNATURE_CHECKS {
            skipped += 1;
            continue;
        }
        checks += cost;
        if spent() {
            return None;
        }
        let (who, fails) = verify_evidence(root, ev, now);
        failures.extend(fails);
        if who.is_empty() {
            continue;
        }
        // Only a signature by a trusted signer makes its claims count.
        match check_claims(&ev.content, image, digest) {
            Ok(()) => signed.extend(who),
            Err(e) => failures.push(e),
        }
    }
    if skipped > 0 {
        failures.push(CosignError::new(
            Reason::Malformed,
            format!(
                "{skipped} signature container(s) not examined: the image's signatures need more than {MAX_SIGNATURE_CHECKS} signature checks"
            ),
        ));
    }
    Some(match decide(root, &signed) {
        Ok(signer) => Ok(signer),
        // A trusted signer signed something else, or a log entry or certificate failed: say
        // that, it is what the operator needs to see.
        Err(e) if signed.is_empty() => Err(most_relevant(failures).unwrap_or(e)),
        Err(e) => Err(e),
    })
}

/// Which failure to report when no signer counted: the one an operator can act on first.
fn most_relevant(failures: Vec<CosignError>) -> Option<CosignError> {
    let rank = |r: Reason| match r {
        Reason::DigestMismatch => 0,
        Reason::CertificateExpired => 1,
        Reason::Identity => 2,
        Reason::Tlog => 3,
        Reason::Certificate => 4,
        Reason::WrongSubject => 5,
        _ => 6,
    };
    failures.into_iter().min_by_key(|f| rank(f.reason))
}

#[cfg(test)]
mod tests;
