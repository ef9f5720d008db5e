//! What every signature scheme answers, whatever its format: who signed which digest and until
//! when ([`Verified`]), or why not ([`TrustError`]: a closed set of [`Reason`]s with stable names,
//! plus detail for humans). Notary v1 ([`crate::notary`]), Notation ([`crate::notation`]) and
//! cosign ([`crate::cosign`]) map their own failures onto these reasons; the policy, the metrics
//! and the admission answer read only this module.

use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::reference::Digest;

/// The closed set of reasons a verification can fail, under a trust root of any kind (Notary v1,
/// Notation, cosign): the formats' own reasons map onto it. The names are stable: they are metric
/// label values and appear in denial messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The repository has no trust data at all (notary answers 404 for `root.json`).
    RepositoryNotSigned,
    /// A metadata file that the chain needs is not available.
    MissingMetadata,
    /// A document is larger than its cap or the length its parent announced.
    TooLarge,
    /// A document is not JSON, not canonicalisable, or lacks required fields.
    MalformedMetadata,
    /// A document's `_type` is not the role it was loaded as.
    WrongRoleType,
    /// A key is of an unknown type, cannot be parsed, or is too weak.
    UnsupportedKey,
    /// A signature names a key whose ID does not match the key's content.
    InvalidKeyId,
    /// Fewer distinct keys signed than the role's threshold requires.
    ThresholdNotMet,
    /// No root version is signed by the pinned root keys.
    RootNotPinned,
    /// A newer root is not signed by its predecessor's root keys and its own.
    RootRotationFailed,
    /// A root certificate breaks notary's rules (leaf first, no SHA-1, RSA ≥ 2048, dates).
    InvalidCertificate,
    /// A root certificate is outside its validity period.
    CertificateExpired,
    /// A root certificate's common name does not match the repository (GUN).
    GunMismatch,
    /// A role's `expires` is in the past.
    Expired,
    /// A role's version is lower than one already trusted.
    Rollback,
    /// A document's hash differs from the one its parent pins.
    HashMismatch,
    /// A document's length differs from the one its parent pins.
    LengthMismatch,
    /// A delegation is badly named, not a direct child, or references missing keys.
    InvalidDelegation,
    /// A target entry lacks a usable sha256 hash.
    InvalidTarget,
    /// Neither `targets/releases` nor `targets` signs the tag.
    TagNotSigned,
    /// The tag is signed only by a delegation that docker does not accept (not `targets/releases`).
    TagOnlyInOtherDelegation,
    /// A role that the policy requires did not sign the tag.
    RequiredRoleMissing,
    /// The required roles signed the tag with different digests.
    RequiredRolesDisagree,
    /// The digest in the reference (or at the registry) is not the trusted digest.
    DigestMismatch,
    /// A digest-only reference whose digest no accepted role signs under any tag.
    DigestNotSigned,
    /// The image reference cannot be parsed.
    InvalidReference,
    /// The registry has no manifest for the reference.
    ImageNotFound,
    /// A registry or notary server failed or could not be reached (and no cached data covers it).
    UpstreamError,
    /// A registry or notary server did not answer within the deadline.
    Timeout,
    /// The trust root names no notary server, and the image's registry has no default one
    /// (`registries[].notary`).
    NoNotaryServer,
    /// signgate itself failed while deciding (a bug caught by the panic barrier): fail closed.
    Internal,
    /// No signature of the trust root's format exists for the image's digest (Notation, cosign).
    SignatureNotFound,
    /// A signature does not verify over what it signs, or its envelope is malformed (Notation, cosign).
    SignatureInvalid,
    /// Signatures verify, but none chains to the configured trust store or key, or matches a trusted identity.
    UntrustedSigner,
    /// A signature needs what signgate refuses: a verification plugin, an unknown critical header, an unsupported algorithm.
    UnsupportedSignature,
    /// An RFC 3161 timestamp, or a transparency log entry's time, is missing or does not verify.
    TimestampInvalid,
    /// A transparency log entry (Rekor) is missing, or signed by no pinned log key.
    TransparencyLog,
    /// Revocation must be checked and cannot be (no network, no CRL): unknown fails under enforcement.
    RevocationUnknown,
    /// A configured CRL, signed by the certificate's issuer, revokes a certificate of the chain.
    CertificateRevoked,
    /// A key the policy requires did not sign (cosign `required`).
    RequiredKeyMissing,
    /// The trust roots of one policy verified different digests.
    RootsDisagree,
}

impl Reason {
    /// Every reason, for the test that their names are unique.
    #[cfg(test)]
    const ALL: [Reason; 41] = [
        Reason::RepositoryNotSigned,
        Reason::MissingMetadata,
        Reason::TooLarge,
        Reason::MalformedMetadata,
        Reason::WrongRoleType,
        Reason::UnsupportedKey,
        Reason::InvalidKeyId,
        Reason::ThresholdNotMet,
        Reason::RootNotPinned,
        Reason::RootRotationFailed,
        Reason::InvalidCertificate,
        Reason::CertificateExpired,
        Reason::GunMismatch,
        Reason::Expired,
        Reason::Rollback,
        Reason::HashMismatch,
        Reason::LengthMismatch,
        Reason::InvalidDelegation,
        Reason::InvalidTarget,
        Reason::TagNotSigned,
        Reason::TagOnlyInOtherDelegation,
        Reason::RequiredRoleMissing,
        Reason::RequiredRolesDisagree,
        Reason::DigestMismatch,
        Reason::DigestNotSigned,
        Reason::InvalidReference,
        Reason::ImageNotFound,
        Reason::UpstreamError,
        Reason::Timeout,
        Reason::NoNotaryServer,
        Reason::Internal,
        Reason::SignatureNotFound,
        Reason::SignatureInvalid,
        Reason::UntrustedSigner,
        Reason::UnsupportedSignature,
        Reason::TimestampInvalid,
        Reason::TransparencyLog,
        Reason::RevocationUnknown,
        Reason::CertificateRevoked,
        Reason::RequiredKeyMissing,
        Reason::RootsDisagree,
    ];

    /// The stable snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::RepositoryNotSigned => "repository_not_signed",
            Reason::MissingMetadata => "missing_metadata",
            Reason::TooLarge => "too_large",
            Reason::MalformedMetadata => "malformed_metadata",
            Reason::WrongRoleType => "wrong_role_type",
            Reason::UnsupportedKey => "unsupported_key",
            Reason::InvalidKeyId => "invalid_key_id",
            Reason::ThresholdNotMet => "threshold_not_met",
            Reason::RootNotPinned => "root_not_pinned",
            Reason::RootRotationFailed => "root_rotation_failed",
            Reason::InvalidCertificate => "invalid_certificate",
            Reason::CertificateExpired => "certificate_expired",
            Reason::GunMismatch => "gun_mismatch",
            Reason::Expired => "expired",
            Reason::Rollback => "rollback",
            Reason::HashMismatch => "hash_mismatch",
            Reason::LengthMismatch => "length_mismatch",
            Reason::InvalidDelegation => "invalid_delegation",
            Reason::InvalidTarget => "invalid_target",
            Reason::TagNotSigned => "tag_not_signed",
            Reason::TagOnlyInOtherDelegation => "tag_only_in_other_delegation",
            Reason::RequiredRoleMissing => "required_role_missing",
            Reason::RequiredRolesDisagree => "required_roles_disagree",
            Reason::DigestMismatch => "digest_mismatch",
            Reason::DigestNotSigned => "digest_not_signed",
            Reason::InvalidReference => "invalid_reference",
            Reason::ImageNotFound => "image_not_found",
            Reason::UpstreamError => "upstream_error",
            Reason::Timeout => "timeout",
            Reason::NoNotaryServer => "no_notary_server",
            Reason::Internal => "internal_error",
            Reason::SignatureNotFound => "no_signature",
            Reason::SignatureInvalid => "invalid_signature",
            Reason::UntrustedSigner => "untrusted_signer",
            Reason::UnsupportedSignature => "unsupported_signature",
            Reason::TimestampInvalid => "invalid_timestamp",
            Reason::TransparencyLog => "transparency_log",
            Reason::RevocationUnknown => "revocation_unknown",
            Reason::CertificateRevoked => "certificate_revoked",
            Reason::RequiredKeyMissing => "required_key_missing",
            Reason::RootsDisagree => "roots_disagree",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: the reason, the role (file) it concerns, what exactly was wrong, and the error
/// that caused it when one did (a fetch's, kept as [`std::error::Error::source`]).
#[derive(Debug, Clone)]
pub struct TrustError {
    reason: Reason,
    role: Option<String>,
    detail: String,
    source: Option<Arc<Cause>>,
}

/// What may cause a refusal: any error that crosses threads and a panic barrier.
type Cause = dyn std::error::Error + Send + Sync + std::panic::RefUnwindSafe;

/// Two refusals are the same when they say the same (their causes are not compared).
impl PartialEq for TrustError {
    fn eq(&self, other: &Self) -> bool {
        (self.reason, &self.role, &self.detail) == (other.reason, &other.role, &other.detail)
    }
}

impl Eq for TrustError {}

impl TrustError {
    /// A refusal for `reason`, about `role` (a metadata file) when one is at fault.
    pub fn new(reason: Reason, role: Option<&str>, detail: impl Into<String>) -> Self {
        TrustError {
            reason,
            role: role.map(str::to_owned),
            detail: detail.into(),
            source: None,
        }
    }

    /// The same refusal, caused by `source`.
    pub(crate) fn caused_by(
        mut self,
        source: impl std::error::Error + Send + Sync + std::panic::RefUnwindSafe + 'static,
    ) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// An error about one role's metadata.
    pub(crate) fn role(reason: Reason, role: &str, detail: impl Into<String>) -> Self {
        Self::new(reason, Some(role), detail)
    }

    /// An error not tied to one role (target selection, references).
    pub(crate) fn plain(reason: Reason, detail: impl Into<String>) -> Self {
        Self::new(reason, None, detail)
    }

    /// The closed reason.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The role (metadata file) at fault, if any.
    pub fn role_name(&self) -> Option<&str> {
        self.role.as_deref()
    }

    /// Human detail, without the reason name.
    pub(crate) fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for TrustError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.role {
            Some(role) => write!(f, "{role}: {}", self.detail),
            None => f.write_str(&self.detail),
        }
    }
}

impl std::error::Error for TrustError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// What one trust root verified for an image: the digest, who signed it, and until when the
/// finding may be reused (the signature's or its certificate's own end; `None`: nothing of its
/// own ends it). Only the schemes' verifiers in this crate make one, so a policy never holds a
/// verification no scheme did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    digest: Digest,
    signers: Vec<String>,
    valid_until: Option<OffsetDateTime>,
    expiries: Vec<(String, OffsetDateTime)>,
    relaxed: Vec<Relaxed>,
}

/// A check that failed but that the trust policy only logs (Notation's `log` action): recorded
/// in metrics and logs, never a refusal, and never about who signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relaxed {
    /// The verification step (`expiry`, `revocation`, `authenticTimestamp`).
    pub step: &'static str,
    /// Why it failed, a stable name.
    pub reason: &'static str,
    /// What failed, for humans.
    pub detail: String,
}

impl Verified {
    pub(crate) fn new(
        digest: Digest,
        signers: Vec<String>,
        valid_until: Option<OffsetDateTime>,
    ) -> Verified {
        Verified {
            digest,
            signers,
            valid_until,
            expiries: Vec::new(),
            relaxed: Vec::new(),
        }
    }

    /// The same finding, with what ends part of it: `what` (a role, `certificate`) expires at
    /// `at` (the trust data expiry gauge shows it).
    pub(crate) fn with_expiry(mut self, what: impl Into<String>, at: OffsetDateTime) -> Verified {
        self.expiries.push((what.into(), at));
        self
    }

    /// The same finding, with the checks its trust policy only logged.
    pub(crate) fn with_relaxed(mut self, relaxed: Vec<Relaxed>) -> Verified {
        self.relaxed = relaxed;
        self
    }

    /// What ends part of the finding, and when (for the expiry gauge).
    pub fn expiries(&self) -> &[(String, OffsetDateTime)] {
        &self.expiries
    }

    /// Checks that failed and were only logged.
    pub fn relaxed(&self) -> &[Relaxed] {
        &self.relaxed
    }

    /// The manifest digest that was verified (what must run).
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Who signed: Notary v1 roles, a Notation leaf's subject, cosign's keys or identities.
    pub fn signers(&self) -> &[String] {
        &self.signers
    }

    /// The signers as denial messages, logs and `verify` name them.
    pub fn signed_by(&self) -> String {
        self.signers.join(", ")
    }

    /// When the finding stops holding on its own (a certificate's or the signature's expiry).
    pub fn valid_until(&self) -> Option<OffsetDateTime> {
        self.valid_until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_names_are_unique_snake_case() {
        let mut names: Vec<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Reason::ALL.len());
    }
}
