//! Notary Project (Notation) signatures, verified as notation-go does. Pure: the envelope bytes,
//! the signed image's descriptor (digest, size and media type of the manifest signgate hashed
//! itself), a [`TrustPolicy`] and `now` come in; a [`VerifiedSignature`] or a [`NotationError`]
//! with a closed [`Reason`] comes out.
//!
//! The steps are notation-go's (`verifier/verifier.go`): integrity (the envelope, its protected
//! headers and critical headers, the algorithm against the leaf key, the signature, the
//! certificate chain's rules), authenticity (one chain certificate in the trust store of the
//! signature's scheme), trusted identity, expiry, authentic signing time or timestamp, revocation;
//! then the payload must name the image. They run cheapest first ([`verify_envelope`]), so a
//! signature by nobody the policy trusts is refused before any signature is checked. Integrity
//! and authenticity are always enforced; the other steps follow the policy's level and
//! `override`. The first enforced failure stops; logged failures are carried on the result.
//!
//! Choices: plugin-signed envelopes and unknown critical headers are refused (signgate runs no
//! plugins); revocation has no network here, so a certificate naming an OCSP responder or CRL
//! distribution point has an unknown status without a configured CRL: recorded under `log` (the
//! default), a failure under `enforce`; RFC 3161 timestamps (`timestamp.rs`) are verified against
//! the `tsa` store when the policy has one.

mod chain;
mod envelope;
mod judge;
pub mod limits;
mod oci;
mod timestamp;
mod trustpolicy;

use std::fmt;

use time::OffsetDateTime;

pub use chain::Identity;
pub use envelope::{MEDIA_TYPE_COSE, MEDIA_TYPE_JWS};
pub use judge::Notation;
pub use limits::{Limits, MAX_CANDIDATES, MAX_CHAIN, MAX_ENVELOPE};
pub use oci::{ARTIFACT_TYPE, envelope_descriptor, signature_candidates};
pub use trustpolicy::{
    PolicyDocument, Statement, StatementVerification, StoreType, parse_override,
};

use crate::notary::fmt_time;
use crate::pki::{Certificate, Crl};
use crate::reference::Digest;
use envelope::{Envelope, Headers};

/// The payload's media type.
const PAYLOAD_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";

pub use crate::scheme::Descriptor;

/// Why a signature was refused. The names are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// No Notation signature refers to the image.
    NoSignature,
    /// An envelope, manifest or index that cannot be parsed, or breaks the header rules.
    Malformed,
    /// An envelope larger (or declared larger) than the cap, refused before it is read.
    TooLarge,
    /// The signature does not verify, or the algorithm does not fit the key.
    Integrity,
    /// The certificate chain breaks Notation's rules.
    InvalidCertificate,
    /// No chain certificate is in the trust store.
    UntrustedChain,
    /// The leaf is not a trusted identity.
    UntrustedIdentity,
    /// The signature's `expiry` has passed.
    Expired,
    /// A certificate is outside its validity at the signing time that counts.
    CertificateExpired,
    /// A required timestamp is missing or does not verify.
    Timestamp,
    /// A certificate's revocation status cannot be established offline.
    RevocationUnknown,
    /// A configured CRL revokes a certificate of the chain.
    Revoked,
    /// A verification plugin, an unknown critical header, or an algorithm Notation does not allow.
    UnsupportedSignature,
    /// The signature (or its manifest) is for another artifact.
    SubjectMismatch,
}

impl Reason {
    /// The stable name (metric labels, messages).
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::NoSignature => "no_signature",
            Reason::Malformed => "malformed",
            Reason::TooLarge => "too_large",
            Reason::Integrity => "integrity",
            Reason::InvalidCertificate => "invalid_certificate",
            Reason::UntrustedChain => "untrusted_chain",
            Reason::UntrustedIdentity => "untrusted_identity",
            Reason::Expired => "expired",
            Reason::CertificateExpired => "certificate_expired",
            Reason::Timestamp => "timestamp",
            Reason::RevocationUnknown => "revocation_unknown",
            Reason::Revoked => "revoked",
            Reason::UnsupportedSignature => "unsupported_signature",
            Reason::SubjectMismatch => "subject_mismatch",
        }
    }

    /// How strongly a failure says "wrong signer" rather than "junk": the most relevant failure
    /// among several signatures is reported.
    fn relevance(self) -> u8 {
        match self {
            Reason::UntrustedIdentity => 9,
            Reason::UntrustedChain => 8,
            Reason::Expired | Reason::CertificateExpired | Reason::Timestamp => 7,
            Reason::Revoked => 7,
            Reason::RevocationUnknown => 6,
            Reason::SubjectMismatch => 5,
            Reason::Integrity | Reason::InvalidCertificate => 4,
            Reason::UnsupportedSignature => 3,
            Reason::Malformed | Reason::TooLarge => 2,
            Reason::NoSignature => 1,
        }
    }
}

/// A refusal: the reason and what exactly was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotationError {
    reason: Reason,
    detail: String,
}

impl NotationError {
    /// A refusal for `reason`, with `detail` for humans.
    pub fn new(reason: Reason, detail: impl Into<String>) -> NotationError {
        NotationError {
            reason,
            detail: detail.into(),
        }
    }

    /// Why, one of a closed set.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// What was found, for humans.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for NotationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for NotationError {}

/// A Notation refusal as every scheme's is reported: its reason among the closed set, then
/// `notation: ` and what was wrong.
impl From<&NotationError> for crate::verdict::TrustError {
    fn from(e: &NotationError) -> Self {
        use crate::verdict::Reason as R;
        let reason = match e.reason {
            Reason::NoSignature => R::SignatureNotFound,
            Reason::Malformed => R::MalformedMetadata,
            Reason::TooLarge => R::TooLarge,
            Reason::Integrity => R::SignatureInvalid,
            Reason::InvalidCertificate => R::InvalidCertificate,
            Reason::UntrustedChain | Reason::UntrustedIdentity => R::UntrustedSigner,
            Reason::Expired => R::Expired,
            Reason::CertificateExpired => R::CertificateExpired,
            Reason::Timestamp => R::TimestampInvalid,
            Reason::RevocationUnknown => R::RevocationUnknown,
            Reason::Revoked => R::CertificateRevoked,
            Reason::UnsupportedSignature => R::UnsupportedSignature,
            Reason::SubjectMismatch => R::DigestMismatch,
        };
        crate::verdict::TrustError::new(reason, None, format!("notation: {}", e.detail))
    }
}

/// What a verification level does at a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A failure refuses the signature.
    Enforce,
    /// A failure is recorded (metrics, a warning log) and the signature still counts.
    Log,
    /// The step is not run.
    Skip,
}

/// The steps a level or an `override` can relax (integrity never).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A chain certificate is in the trust store, and the identity is trusted.
    Authenticity,
    /// The signing time is proved by a trusted timestamp, or the certificate is still valid.
    AuthenticTimestamp,
    /// The signature's own expiry has not passed.
    Expiry,
    /// No certificate of the chain is revoked.
    Revocation,
}

impl Step {
    /// The step's name in trust policies, metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Step::Authenticity => "authenticity",
            Step::AuthenticTimestamp => "authenticTimestamp",
            Step::Expiry => "expiry",
            Step::Revocation => "revocation",
        }
    }

    /// Whether an `override` may set this step to `action`. Authenticity (a chain to the trust
    /// store, a trusted identity) is "who signed": relaxing it admits anyone's signature, so it
    /// is `enforce` or nothing, whatever the level (as `audit` is read). `skip` is for revocation
    /// only, as notation-go allows. Expiry, the authentic signing time and revocation may be
    /// logged: they soften when, never who.
    pub fn allows(self, action: Action) -> Result<(), String> {
        match (self, action) {
            (_, Action::Enforce) => Ok(()),
            (Step::Authenticity, _) => Err(
                "authenticity is always enforced: an untrusted chain or identity would admit anyone's signature (remove the override; to only warn, use a policy's mode: warn)"
                    .into(),
            ),
            (Step::Revocation, Action::Skip) | (_, Action::Log) => Ok(()),
            (_, Action::Skip) => Err("skip is allowed for revocation only".into()),
        }
    }
}

/// Notation's verification levels (`skip` is a policy action in signgate: `action: allow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Every step enforced.
    Strict,
    /// Authenticity enforced; the other steps logged.
    Permissive,
    /// As `permissive` in signgate (authenticity is never relaxed).
    Audit,
}

impl Level {
    /// Notation's table, but for one choice: authenticity (trust store and identity) is enforced
    /// at `audit` too. A trust root that admits whoever signed would be a bypass, so `audit` reads
    /// as `permissive`; not enforcing at all is a policy's `mode: audit` or `warn`.
    fn action(self, step: Step) -> Action {
        match (self, step) {
            (Level::Strict, _) | (_, Step::Authenticity) => Action::Enforce,
            (Level::Permissive | Level::Audit, _) => Action::Log,
        }
    }
}

/// When the RFC 3161 timestamp is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VerifyTimestamp {
    /// Whenever the signature carries a timestamp.
    #[default]
    Always,
    /// Only once the signing certificate has expired.
    AfterCertExpiry,
}

/// The trust stores of a policy, by Notation store type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustStores {
    /// Certificate authorities signing chains must end in (`ca`).
    pub ca: Vec<Certificate>,
    /// Signing authorities (`signingAuthority`).
    pub signing_authority: Vec<Certificate>,
    /// Timestamping authorities (`tsa`), for RFC 3161 tokens.
    pub tsa: Vec<Certificate>,
}

/// One trust policy statement's verification settings, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustPolicy {
    stores: TrustStores,
    /// CRLs given as files: with them, revocation is checked (offline) and enforced as the level
    /// says; without them it is `log` unless overridden.
    crls: Vec<Crl>,
    identities: Vec<Identity>,
    level: Level,
    overrides: Vec<(Step, Action)>,
    verify_timestamp: VerifyTimestamp,
}

impl TrustPolicy {
    /// Validates as notation-go does: CA and signing-authority store certificates are CAs or
    /// self-signed, TSA store certificates self-signed roots; identities are `*` alone or
    /// non-overlapping subjects; overrides as [`Step::allows`] says.
    pub fn new(
        stores: TrustStores,
        identities: Vec<Identity>,
        level: Level,
        overrides: Vec<(Step, Action)>,
        verify_timestamp: VerifyTimestamp,
    ) -> Result<TrustPolicy, String> {
        if stores.ca.is_empty() && stores.signing_authority.is_empty() {
            return Err("trustStores: a ca or signingAuthority store with at least one certificate is required".into());
        }
        for (name, store) in [
            ("ca", &stores.ca),
            ("signingAuthority", &stores.signing_authority),
        ] {
            for c in store {
                let ca = matches!(c.basic_constraints(), Ok(Some((true, _, _))));
                if !ca && !c.is_self_signed() {
                    return Err(format!(
                        "trustStores.{name}: {:?} is neither a CA nor self-signed",
                        c.subject_text()
                    ));
                }
            }
        }
        for c in &stores.tsa {
            if !c.is_self_signed() {
                return Err(format!(
                    "trustStores.tsa: {:?} is not a self-signed root",
                    c.subject_text()
                ));
            }
        }
        if identities.is_empty() {
            return Err("trustedIdentities: at least one (\"*\" for any) is required".into());
        }
        if identities.len() > 1 && identities.contains(&Identity::Any) {
            return Err("trustedIdentities: \"*\" must be the only entry".into());
        }
        for (i, a) in identities.iter().enumerate() {
            if identities.iter().skip(i + 1).any(|b| a.overlaps(b)) {
                return Err(format!("trustedIdentities[{i}] overlaps another identity"));
            }
        }
        for (step, action) in &overrides {
            step.allows(*action)
                .map_err(|e| format!("override.{}: {e}", step.name()))?;
        }
        Ok(TrustPolicy {
            stores,
            crls: Vec::new(),
            identities,
            level,
            overrides,
            verify_timestamp,
        })
    }

    /// The CRLs revocation is checked against (offline).
    pub fn with_crls(mut self, crls: Vec<Crl>) -> TrustPolicy {
        self.crls = crls;
        self
    }

    fn action(&self, step: Step) -> Action {
        let default = if step == Step::Revocation && self.crls.is_empty() {
            // No network and no CRL: an unknown status is logged unless overridden.
            Action::Log
        } else {
            self.level.action(step)
        };
        self.overrides
            .iter()
            .rev()
            .find(|(s, _)| *s == step)
            .map_or(default, |(_, a)| *a)
    }

    /// The verification level.
    pub fn level(&self) -> Level {
        self.level
    }

    /// The trust stores.
    pub fn stores(&self) -> &TrustStores {
        &self.stores
    }
}

/// What a `notation:` trust root verifies with: one statement written in signgate's
/// configuration, or the statements of an existing `trustpolicy.json` chosen by repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootPolicy {
    /// One policy, written in signgate's configuration, for every repository.
    Inline(TrustPolicy),
    /// A `trustpolicy.json`: the statement whose scope names the repository, else `*`.
    Document(Vec<ScopedPolicy>),
}

/// A `trustpolicy.json` statement with its stores loaded; `None`: level `skip`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedPolicy {
    /// The statement's name.
    pub name: String,
    /// Its `registryScopes`.
    pub scopes: Vec<String>,
    /// Its policy; `None` for level `skip`, which signgate refuses.
    pub policy: Option<TrustPolicy>,
}

impl RootPolicy {
    /// The policy for `repository` (`host[:port]/path`). A document's statement is its exact
    /// scope, else `*`; none, or a `skip` statement, is a refusal: signgate admits unverified
    /// images only by a policy's `action: allow`, never by a trust root that verified nothing.
    pub fn select(&self, repository: &str) -> Result<&TrustPolicy, NotationError> {
        let statements = match self {
            RootPolicy::Inline(p) => return Ok(p),
            RootPolicy::Document(s) => s,
        };
        let found = statements
            .iter()
            .find(|s| s.scopes.iter().any(|x| x == repository))
            .or_else(|| statements.iter().find(|s| s.scopes == ["*"]))
            .ok_or_else(|| {
                NotationError::new(
                    Reason::UntrustedChain,
                    format!("the trust policy has no statement whose registryScopes include {repository}"),
                )
            })?;
        found.policy.as_ref().ok_or_else(|| {
            NotationError::new(
                Reason::UntrustedChain,
                format!(
                    "trust policy statement {:?} skips verification for {repository}; signgate admits unverified images only by a policy with action: allow",
                    found.name
                ),
            )
        })
    }

    /// Every policy it holds (for the expiry of its trust anchors, and tests).
    pub fn policies(&self) -> Vec<&TrustPolicy> {
        match self {
            RootPolicy::Inline(p) => vec![p],
            RootPolicy::Document(s) => s.iter().filter_map(|s| s.policy.as_ref()).collect(),
        }
    }
}

/// A check that failed but was only logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// The step that failed.
    pub step: Step,
    /// Why.
    pub reason: Reason,
    /// What was found, for humans.
    pub detail: String,
}

/// A signature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// The leaf certificate's subject.
    pub signer: String,
    /// The image digest the payload names.
    pub digest: Digest,
    /// The earliest `notAfter` of the signing chain (the expiry gauge).
    pub not_after: OffsetDateTime,
    /// The signature's own `io.cncf.notary.expiry`, if any.
    pub expiry: Option<OffsetDateTime>,
    /// Failures the policy only logs.
    pub logged: Vec<Logged>,
}

fn integrity(detail: impl Into<String>) -> NotationError {
    NotationError::new(Reason::Integrity, detail)
}

/// The header rules of both envelopes (notation-core-go `validateProtectedHeaders`,
/// `validateCriticalHeaders`).
fn check_headers(h: &Headers) -> Result<SigningScheme, NotationError> {
    use envelope::{
        AUTHENTIC_SIGNING_TIME, EXPIRY, SIGNING_SCHEME, SIGNING_TIME, VERIFICATION_PLUGIN,
        VERIFICATION_PLUGIN_MIN_VERSION,
    };
    let malformed = |d: String| NotationError::new(Reason::Malformed, d);
    if h.cty.as_deref() != Some(PAYLOAD_TYPE) {
        return Err(malformed(format!(
            "content type {:?}, not {PAYLOAD_TYPE}",
            h.cty
        )));
    }
    if h.crit.is_empty() {
        return Err(malformed("crit is missing or empty".into()));
    }
    for name in &h.crit {
        if !h.present.contains(name) {
            return Err(malformed(format!(
                "critical header {name:?} is not present"
            )));
        }
        match name.as_str() {
            VERIFICATION_PLUGIN | VERIFICATION_PLUGIN_MIN_VERSION => {
                return Err(NotationError::new(
                    Reason::UnsupportedSignature,
                    "the signature requires a verification plugin, and signgate runs none",
                ));
            }
            SIGNING_SCHEME | EXPIRY | AUTHENTIC_SIGNING_TIME | "1" | "2" | "3" => {}
            other => {
                return Err(NotationError::new(
                    Reason::UnsupportedSignature,
                    format!("critical header {other:?} is not understood"),
                ));
            }
        }
    }
    let critical = |n: &str| h.crit.iter().any(|c| c == n);
    if !critical(SIGNING_SCHEME) {
        return Err(malformed(format!("{SIGNING_SCHEME} is not critical")));
    }
    if h.expiry.is_some() && !critical(EXPIRY) {
        return Err(malformed(format!("{EXPIRY} is not critical")));
    }
    let scheme = match h.signing_scheme.as_deref() {
        Some("notary.x509") => {
            if h.signing_time.is_none() || h.present.contains(AUTHENTIC_SIGNING_TIME) {
                return Err(malformed(format!(
                    "notary.x509 needs {SIGNING_TIME} and no {AUTHENTIC_SIGNING_TIME}"
                )));
            }
            SigningScheme::X509
        }
        Some("notary.x509.signingAuthority") => {
            if h.authentic_signing_time.is_none()
                || h.present.contains(SIGNING_TIME)
                || !critical(AUTHENTIC_SIGNING_TIME)
            {
                return Err(malformed(format!(
                    "notary.x509.signingAuthority needs a critical {AUTHENTIC_SIGNING_TIME} and no {SIGNING_TIME}"
                )));
            }
            SigningScheme::SigningAuthority
        }
        other => return Err(malformed(format!("signing scheme {other:?}"))),
    };
    if let (Some(expiry), Some(signed)) = (h.expiry, h.signing_time.or(h.authentic_signing_time))
        && expiry <= signed
    {
        return Err(malformed("expiry is not after the signing time".into()));
    }
    Ok(scheme)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SigningScheme {
    X509,
    SigningAuthority,
}

/// The algorithm Notation requires for the leaf key.
fn expected_alg(leaf: &Certificate) -> Result<envelope::Alg, NotationError> {
    let key = leaf
        .public_key()
        .map_err(|e| NotationError::new(Reason::InvalidCertificate, format!("leaf key: {e}")))?;
    use envelope::Alg;
    Ok(match (key.is_rsa(), key.bits()) {
        (true, 2048) => Alg::Ps256,
        (true, 3072) => Alg::Ps384,
        (true, 4096) => Alg::Ps512,
        (false, 256) if key.describe() == "ECDSA P-256" => Alg::Es256,
        (false, 384) => Alg::Es384,
        (false, 521) => Alg::Es512,
        _ => {
            return Err(NotationError::new(
                Reason::UnsupportedSignature,
                format!("leaf key {} is not one Notation signs with", key.describe()),
            ));
        }
    })
}

/// The DER certificates an envelope carries, leaf first (for tools that pin a self-signed leaf).
pub fn envelope_chain(media_type: &str, bytes: &[u8]) -> Result<Vec<Vec<u8>>, NotationError> {
    Envelope::parse(media_type, bytes).map(|e| e.chain)
}

/// The authentic signing time check: a signingAuthority signature's own signed time, or for
/// notary.x509 the RFC 3161 timestamp (when the policy has a tsa store and wants it always, or
/// after the chain expired), else the present.
fn authentic_time(
    policy: &TrustPolicy,
    scheme: SigningScheme,
    env: &Envelope,
    chain: &[Certificate],
    now: OffsetDateTime,
) -> Option<NotationError> {
    let outside =
        |c: &Certificate, earliest: OffsetDateTime, latest: OffsetDateTime, what: &str| {
            NotationError::new(
                Reason::CertificateExpired,
                format!(
                    "{what} is outside the validity of {:?} ({} to {})",
                    c.subject_text(),
                    fmt_time(c.not_before()),
                    fmt_time(c.not_after())
                ),
            )
            .if_outside(c, earliest, latest)
        };
    let check_all = |earliest: OffsetDateTime, latest: OffsetDateTime, what: &str| {
        chain
            .iter()
            .find_map(|c| outside(c, earliest, latest, what))
    };
    match scheme {
        SigningScheme::SigningAuthority => {
            let t = env.headers.authentic_signing_time?;
            check_all(t, t, &format!("the authentic signing time {}", fmt_time(t)))
        }
        SigningScheme::X509 => {
            let expired_now = chain.iter().any(|c| !c.valid_at(now));
            let wanted = !policy.stores.tsa.is_empty()
                && (policy.verify_timestamp == VerifyTimestamp::Always || expired_now);
            if !wanted {
                return check_all(now, now, &format!("the present ({})", fmt_time(now)));
            }
            let Some(token) = &env.timestamp else {
                return Some(NotationError::new(
                    Reason::Timestamp,
                    "the signature carries no timestamp and the policy requires one",
                ));
            };
            match timestamp::verify(token, &env.signature, &policy.stores.tsa) {
                Err(e) => Some(NotationError::new(Reason::Timestamp, e)),
                Ok(at) => check_all(
                    at.earliest,
                    at.latest,
                    &format!(
                        "the timestamp ({} to {})",
                        fmt_time(at.earliest),
                        fmt_time(at.latest)
                    ),
                ),
            }
        }
    }
}

/// The revocation check without network: each certificate below the root against a configured
/// CRL its issuer signed (revoked, or a stale list, fail); a certificate that names an OCSP
/// responder or CRL distribution point and has no such CRL has an unknown status.
fn revocation(crls: &[Crl], chain: &[Certificate], now: OffsetDateTime) -> Option<NotationError> {
    for pair in chain.windows(2) {
        let [cert, issuer] = pair else { continue };
        // Every CRL the issuer signed counts: a revocation listed in any of them stands (an
        // older list first in the configuration cannot hide one), and freshness is the newest's.
        let issued: Vec<&Crl> = crls
            .iter()
            .filter(|c| c.covers(cert) && c.verify_signed_by(issuer).is_ok())
            .collect();
        let revoked = issued.iter().find_map(|c| c.revoked_at(cert));
        let crl = issued.iter().max_by_key(|c| c.this_update());
        match crl {
            Some(crl) => {
                if let Some(at) = revoked {
                    return Some(NotationError::new(
                        Reason::Revoked,
                        format!(
                            "{:?} was revoked at {} (CRL of {:?})",
                            cert.subject_text(),
                            fmt_time(at),
                            issuer.subject_text()
                        ),
                    ));
                }
                if let Some(next) = crl.next_update().filter(|n| *n < now) {
                    return Some(NotationError::new(
                        Reason::RevocationUnknown,
                        format!(
                            "the CRL of {:?} is stale (next update was {})",
                            issuer.subject_text(),
                            fmt_time(next)
                        ),
                    ));
                }
            }
            None if chain::has_revocation_source(cert) => {
                return Some(NotationError::new(
                    Reason::RevocationUnknown,
                    format!(
                        "the revocation status of {:?} cannot be checked offline (no CRL of its issuer is configured)",
                        cert.subject_text()
                    ),
                ));
            }
            None => {}
        }
    }
    None
}

impl NotationError {
    /// `Some(self)` when `c` is not valid over the whole interval.
    fn if_outside(
        self,
        c: &Certificate,
        earliest: OffsetDateTime,
        latest: OffsetDateTime,
    ) -> Option<NotationError> {
        (c.not_before() > earliest || latest > c.not_after()).then_some(self)
    }
}

/// Verifies one envelope of `media_type` for the image `subject` under `policy` at `now`.
///
/// The work is ordered by cost, so an envelope nobody trusted costs microseconds whatever it
/// carries: the envelope (size, chain length and CBOR shape bounded before decoding), then the
/// header rules and the authenticity checks that compare bytes and names (a chain certificate
/// in the trust store, a trusted identity), then the signature checks (the chain from its anchor, the envelope's own
/// signature), then the rest. Authenticity is always enforced ([`Step::allows`]).
pub fn verify_envelope(
    policy: &TrustPolicy,
    subject: &Descriptor,
    media_type: &str,
    bytes: &[u8],
    now: OffsetDateTime,
) -> Result<VerifiedSignature, NotationError> {
    let env = Envelope::parse(media_type, bytes)?;
    let chain: Vec<Certificate> = env
        .chain
        .iter()
        .map(|der| Certificate::from_der(der))
        .collect::<Result<_, _>>()
        .map_err(|e| NotationError::new(Reason::InvalidCertificate, e.to_string()))?;
    let leaf = chain
        .first()
        .ok_or_else(|| NotationError::new(Reason::InvalidCertificate, "no certificate chain"))?;

    // The header rules (signing scheme, critical headers, no verification plugin): string
    // comparisons, first, so a header signgate cannot honour is named as such whoever signed.
    let scheme = check_headers(&env.headers)?;

    // Authenticity: one chain certificate in the store of the signature's declared scheme, and
    // a trusted identity.
    let (store, store_name) = match env.headers.signing_scheme.as_deref() {
        Some("notary.x509.signingAuthority") => {
            (&policy.stores.signing_authority, "signingAuthority")
        }
        _ => (&policy.stores.ca, "ca"),
    };
    let anchor = chain::anchor_in_store(&chain, store).ok_or_else(|| {
        NotationError::new(
            Reason::UntrustedChain,
            format!(
                "the chain of {:?} is not in the {store_name} trust store",
                leaf.subject_text()
            ),
        )
    })?;
    // `*` trusts any subject; otherwise the leaf's subject must be a plain DN (each attribute
    // once, no multi-valued RDN) holding an identity's attributes, as notation-go decides.
    if !policy.identities.contains(&Identity::Any) {
        let dn = leaf
            .subject_dn()
            .map_err(|e| NotationError::new(Reason::UntrustedIdentity, e.to_string()))?;
        if !policy.identities.iter().any(|i| i.matches(&dn)) {
            return Err(NotationError::new(
                Reason::UntrustedIdentity,
                format!("{:?} is not a trusted identity", leaf.subject_text()),
            ));
        }
    }

    // Integrity: the algorithm fits the leaf key, the chain's rules and links, the signature.
    let want = expected_alg(leaf)?;
    if env.headers.alg != want {
        return Err(integrity(format!(
            "algorithm {} does not fit the leaf key (Notation requires {})",
            env.headers.alg.name(),
            want.name()
        )));
    }
    chain::validate_code_signing_chain(&chain, anchor)
        .map_err(|e| NotationError::new(Reason::InvalidCertificate, e))?;
    let key = leaf
        .public_key()
        .map_err(|e| NotationError::new(Reason::InvalidCertificate, e.to_string()))?;
    key.verify(
        want.sig_alg(),
        Envelope::ENCODING,
        &env.signing_input,
        &env.signature,
    )
    .map_err(|e| integrity(format!("the signature does not verify: {e}")))?;

    let mut logged = Vec::new();
    let mut step = |step: Step, failure: Option<NotationError>| -> Result<(), NotationError> {
        match (failure, policy.action(step)) {
            (None, _) | (Some(_), Action::Skip) => Ok(()),
            (Some(e), Action::Enforce) => Err(e),
            (Some(e), Action::Log) => {
                logged.push(Logged {
                    step,
                    reason: e.reason,
                    detail: e.detail,
                });
                Ok(())
            }
        }
    };

    // Expiry of the signature.
    step(
        Step::Expiry,
        env.headers.expiry.filter(|e| now >= *e).map(|e| {
            NotationError::new(
                Reason::Expired,
                format!("the signature expired at {}", fmt_time(e)),
            )
        }),
    )?;
    // Authentic signing time.
    let timestamp_failure = authentic_time(policy, scheme, &env, &chain, now);
    step(Step::AuthenticTimestamp, timestamp_failure)?;
    // Revocation, without network.
    step(Step::Revocation, revocation(&policy.crls, &chain, now))?;

    // The payload names the image: digest, size and media type.
    #[derive(serde::Deserialize)]
    struct Payload {
        #[serde(rename = "targetArtifact")]
        target: Target,
    }
    #[derive(serde::Deserialize)]
    struct Target {
        #[serde(rename = "mediaType")]
        media_type: String,
        digest: String,
        size: u64,
    }
    let payload: Payload = serde_json::from_slice(&env.payload)
        .map_err(|e| NotationError::new(Reason::Malformed, format!("payload: {e}")))?;
    let t = payload.target;
    if t.digest != subject.digest.as_str()
        || t.size != subject.size
        || t.media_type != subject.media_type
    {
        return Err(NotationError::new(
            Reason::SubjectMismatch,
            format!(
                "the signature is for {} ({} bytes, {}), not for {} ({} bytes, {})",
                t.digest, t.size, t.media_type, subject.digest, subject.size, subject.media_type
            ),
        ));
    }
    let not_after = chain
        .iter()
        .map(Certificate::not_after)
        .min()
        .unwrap_or(now);
    Ok(VerifiedSignature {
        signer: leaf.subject_text(),
        digest: subject.digest.clone(),
        not_after,
        expiry: env.headers.expiry,
        logged,
    })
}

/// Verifies `envelopes` (media type, bytes) for `subject`: the first that verifies wins;
/// otherwise the most relevant failure, saying how many signatures were found ([`judge`] with
/// [`judge_envelopes`] with
/// nothing else found and no time budget).
pub fn verify_any<B: AsRef<[u8]>>(
    policy: &TrustPolicy,
    subject: &Descriptor,
    envelopes: &[(String, B)],
    now: OffsetDateTime,
) -> Result<VerifiedSignature, NotationError> {
    let found = envelopes.len();
    judge_envelopes(policy, subject, envelopes, Vec::new(), found, now, &|| {
        false
    })
    .unwrap_or_else(|| {
        Err(NotationError::new(
            Reason::Malformed,
            "the signatures were not all examined",
        ))
    })
}

/// An image's envelopes judged: the one loop [`Notation`]'s judge runs and [`verify_any`]
/// wraps. The first of `envelopes` (at most [`MAX_CANDIDATES`]) that verifies
/// under `policy` wins. Otherwise the refusal is the most relevant of `failures` (what was met
/// before verification: a signature manifest that names no envelope it may read, an envelope
/// declared past the cap) and the envelopes' own, saying how many of the `found` signatures
/// there were. `spent` is asked before each envelope: `None` when the time ran out first.
pub fn judge_envelopes<B: AsRef<[u8]>>(
    policy: &TrustPolicy,
    subject: &Descriptor,
    envelopes: &[(String, B)],
    mut failures: Vec<NotationError>,
    found: usize,
    now: OffsetDateTime,
    spent: &dyn Fn() -> bool,
) -> Option<Result<VerifiedSignature, NotationError>> {
    for (media_type, bytes) in envelopes.iter().take(MAX_CANDIDATES) {
        if spent() {
            return None;
        }
        match verify_envelope(policy, subject, media_type, bytes.as_ref(), now) {
            Ok(v) => return Some(Ok(v)),
            Err(e) => failures.push(e),
        }
    }
    Some(Err(most_relevant(failures, found, &subject.digest)))
}

/// The refusal for an image none of whose `found` signatures verified: the most relevant of
/// `failures` ("wrong signer" before "junk"), or no signature at all.
pub fn most_relevant(failures: Vec<NotationError>, found: usize, digest: &Digest) -> NotationError {
    let worst = failures.into_iter().reduce(|w, e| {
        if e.reason.relevance() > w.reason.relevance() {
            e
        } else {
            w
        }
    });
    match worst {
        None => NotationError::new(
            Reason::NoSignature,
            format!("no Notation signature for {digest}"),
        ),
        Some(e) => NotationError::new(e.reason, format!("{} ({found} found)", e.detail)),
    }
}
