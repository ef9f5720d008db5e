//! Public keys and X.509 certificates for the signature formats beside Notary v1 (Notation,
//! cosign): parse once, verify signatures by a declared algorithm, and read the extensions their
//! rules need. Pure: no clock, no IO. Path building is not here: Notation fixes the chain in the
//! envelope, and Fulcio chains are short and pinned.

mod cert;
mod crl;
mod key;

pub use cert::{
    Certificate, KeyUsage, OID_EKU_CODE_SIGNING, OID_EKU_TIME_STAMPING, verify_by_algorithm,
};
pub use crl::Crl;
pub use key::{SigAlg, SigEncoding, VerifyingKey};

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
    AlgorithmMismatch { alg: SigAlg, key: String },
    /// A signature that does not verify (or cannot be decoded in its declared encoding).
    #[error("signature does not verify")]
    BadSignature,
}
