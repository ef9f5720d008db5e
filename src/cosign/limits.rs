//! Every cap a `cosign:` trust root holds attacker-sized input to, in one place. Each is checked
//! before the bytes it bounds are parsed or the work it bounds is done, and what lies past a cap
//! is refused or not examined, and the refusal says so.

/// Signature containers looked at per image at most (`.sig` layers and bundle referrers
/// together; each costs a blob fetch).
pub const MAX_LAYERS: usize = 32;
/// Largest simple-signing payload accepted (cosign's are ~250 bytes plus annotations).
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// Largest bundle accepted (one with a certificate chain and a log entry is ~10 KiB).
pub const MAX_BUNDLE: usize = 128 * 1024;
/// DSSE signatures read from one envelope at most.
pub const MAX_DSSE_SIGNATURES: usize = 8;
/// Signature checks (a signature tried with a key or a keyless certificate) one image may cost:
/// 32 containers × 8 DSSE signatures × 64 keys would be 16,384. Real images need a handful; what
/// lies past the budget is not examined, and says so.
pub const MAX_SIGNATURE_CHECKS: usize = 256;
/// Transparency log entries looked at per signature at most.
pub const MAX_LOG_ENTRIES: usize = 8;
/// Largest log entry body accepted (a hashedrekord with a certificate is ~3 KiB).
pub const MAX_LOG_BODY: usize = 64 * 1024;
/// Audit path hashes read at most (a tree of 2^64 leaves needs 64).
pub const MAX_PROOF_HASHES: usize = 64;
/// SCTs read from one certificate at most.
pub const MAX_SCTS: usize = 16;
/// Entries of each kind one trusted root may hold (public-good has a handful).
pub const MAX_ROOT_ENTRIES: usize = 64;

/// The caps one image's cosign signatures are held to, as a value the judge is given
/// ([`super::Cosign`]); the defaults are the constants above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Signature containers looked at ([`MAX_LAYERS`]).
    pub containers: usize,
    /// Largest `.sig` manifest, referrers list or referrer manifest read
    /// ([`crate::scheme::MAX_SIGNATURE_MANIFEST`]).
    pub manifest: usize,
    /// Largest simple-signing payload read ([`MAX_PAYLOAD`]).
    pub payload: usize,
    /// Largest bundle read ([`MAX_BUNDLE`]).
    pub bundle: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            containers: MAX_LAYERS,
            manifest: crate::scheme::MAX_SIGNATURE_MANIFEST,
            payload: MAX_PAYLOAD,
            bundle: MAX_BUNDLE,
        }
    }
}
