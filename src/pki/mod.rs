//! Public keys and X.509 certificates for the signature formats beside Notary v1 (Notation,
//! cosign): parse once, verify signatures by a declared algorithm, and read the extensions their
//! rules need. The rules every scheme shares live here too, Notary v1 included: RSA keys of at
//! least [`MIN_RSA_BITS`], no SHA-1 ([`SHA1_SIGNATURE_OIDS`]). Pure: no clock, no IO. Path
//! building is not here: Notation fixes the chain in the envelope, and Fulcio chains are short
//! and pinned.

mod cert;
mod crl;
mod key;

pub use cert::SHA1_SIGNATURE_OIDS;
pub use cert::{
    Certificate, KeyUsage, OID_EKU_CODE_SIGNING, OID_EKU_TIME_STAMPING, verify_by_algorithm,
};
pub use crl::Crl;
pub use key::{MIN_RSA_BITS, SigAlg, SigEncoding, VerifyingKey};

/// Why a key, a certificate or a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkiError {
    /// A public key that cannot be parsed, of an unsupported type, or too weak.
    #[error("unsupported or invalid public key: {0}")]
    Key(String),
    /// A certificate that cannot be parsed, or whose extensions are malformed.
    #[error("invalid certificate: {0}")]
    Certificate(String),
    /// The algorithm does not fit the key (an ECDSA algorithm with an RSA key, another curve).
    #[error("algorithm {alg:?} does not fit a {key} key")]
    AlgorithmMismatch {
        /// The algorithm declared.
        alg: SigAlg,
        /// The key, as [`VerifyingKey::describe`] names it (`RSA 3072`).
        key: String,
    },
    /// A signature that does not verify (or cannot be decoded in its declared encoding).
    #[error("signature does not verify")]
    BadSignature,
}

/// The first PEM block of `text`: its label and DER bytes. Lenient where Go's `encoding/pem` is
/// (cosign and sigstore write keys on one long line; CRLF line ends), strict on the rest: the
/// END label must match the BEGIN label and the body must be base64.
pub fn decode_pem(text: &[u8]) -> Result<(String, Vec<u8>), PkiError> {
    use base64::Engine as _;
    let bad = |d: &str| PkiError::Key(format!("not a PEM block: {d}"));
    let text = std::str::from_utf8(text).map_err(|_| bad("not UTF-8"))?;
    let start = text
        .find("-----BEGIN ")
        .ok_or_else(|| bad("no BEGIN line"))?;
    let rest = text.get(start + 11..).unwrap_or_default();
    let (label, rest) = rest
        .split_once("-----")
        .ok_or_else(|| bad("no BEGIN line"))?;
    let end = format!("-----END {label}-----");
    let (body, _) = rest
        .split_once(end.as_str())
        .ok_or_else(|| bad(&format!("no {end} line")))?;
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| bad(&format!("the body is not base64: {e}")))?;
    Ok((label.to_owned(), der))
}
