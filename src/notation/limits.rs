//! Every cap a `notation:` trust root holds attacker-sized input to, in one place: each is checked
//! before the bytes it bounds are parsed (sizes and counts come before decoding), and what lies
//! past a cap is refused with a reason that names it.

/// Signatures examined per image at most (notation verifies at most 100; junk signatures must
/// not buy an attacker unbounded work).
pub const MAX_CANDIDATES: usize = 32;
/// Largest envelope parsed. A Notation envelope holds a ~300-byte payload, a chain of two or
/// three certificates (~1–2 KiB each), a signature and perhaps a timestamp token (~5 KiB with
/// its TSA chain): 10–15 KiB. 64 KiB leaves room for user metadata and long chains while keeping
/// what one envelope can cost small.
pub const MAX_ENVELOPE: usize = 64 * 1024;
/// Certificates an envelope's chain may carry (leaf, intermediates, root), counted before any is
/// decoded: real chains have 2–4; every link is a signature check.
pub const MAX_CHAIN: usize = 10;
/// CBOR data items a COSE envelope may hold (each header, certificate and byte string counts
/// one), checked before anything is decoded.
pub const MAX_CBOR_ITEMS: usize = 256;
/// How deeply a COSE envelope's CBOR may nest, checked before anything is decoded.
pub const MAX_CBOR_DEPTH: usize = 6;
/// Certificates a timestamp token's TSA chain may hold: TSA chains are short; a token carrying a
/// longer one is refused.
pub const MAX_TSA_CHAIN: usize = 6;

/// The caps one image's Notation signatures are held to, as a value the judge is given
/// ([`super::Notation`]); the defaults are the constants above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Signatures examined per image ([`MAX_CANDIDATES`]).
    pub candidates: usize,
    /// Largest referrers list or signature manifest read
    /// ([`crate::scheme::MAX_SIGNATURE_MANIFEST`]).
    pub manifest: usize,
    /// Largest envelope read ([`MAX_ENVELOPE`]).
    pub envelope: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            candidates: MAX_CANDIDATES,
            manifest: crate::scheme::MAX_SIGNATURE_MANIFEST,
            envelope: MAX_ENVELOPE,
        }
    }
}
