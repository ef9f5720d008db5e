//! Notary v1 (Docker Content Trust), notary's flavour of TUF, pure: parse and verify trust data.
//! Bytes and the clock come in, a [`VerifiedTarget`] or a [`TrustError`] with a closed [`Reason`]
//! comes out. No IO, no clock, no async: fuzzable and testable from fixture bytes. The rules every
//! TUF flavour shares are in [`crate::tuf`]; [`Notary`] is the scheme behind the one seam.

pub mod cert;
pub mod keys;
pub mod metadata;
pub mod target;
pub mod verify;

pub use crate::tuf::fmt_time;
pub use crate::verdict::{Reason, TrustError};
pub use keys::{PinError, PinnedKey, PublicKey};
pub use target::{RoleRule, VerifiedTarget};
pub use verify::{Limits, MetadataSource, TrustState, TrustedRepo, VerifyContext};

use time::OffsetDateTime;

use crate::reference::{Digest, Reference};
use crate::scheme::{Scheme, SignatureSource, Subject};
use crate::verdict::Verified;

/// Verifies the repository of `reference` from `source` and selects its trusted target.
pub fn verify_image(
    ctx: &VerifyContext<'_>,
    source: &dyn MetadataSource,
    reference: &Reference,
    rule: &RoleRule,
) -> Result<(VerifiedTarget, TrustedRepo), TrustError> {
    let repo = verify::verify_repository(ctx, source)?;
    let target = target::select(&repo, reference, rule)?;
    Ok((target, repo))
}

/// The trusted digest must be what the registry serves for the tag (`registry`: its digest, when
/// the reference names a tag only).
pub fn check_registry(
    trusted: &VerifiedTarget,
    registry: Option<&Digest>,
) -> Result<(), TrustError> {
    match registry {
        Some(d) if d != trusted.digest() => Err(TrustError::new(
            Reason::DigestMismatch,
            None,
            format!(
                "tag {:?} points to {d} at the registry, but the trusted digest is {}",
                trusted.tag(),
                trusted.digest()
            ),
        )),
        _ => Ok(()),
    }
}

/// A Notary v1 trust root as the judge needs it: the pinned root keys and which roles' word counts.
#[derive(Debug, Clone)]
pub struct Pinned {
    /// Root keys pinned in configuration: the only source of root trust.
    pub keys: Vec<PinnedKey>,
    /// Which roles must have signed the tag.
    pub rule: RoleRule,
}

/// Notary v1 trust data, judged with no memory of earlier versions (an offline bundle, the fuzz
/// target, `signgate verify --offline`): the online verifier keeps that memory per repository
/// (`upstream/notary.rs`) and walks the same chain.
pub struct Notary;

impl Scheme for Notary {
    type Root = Pinned;
    type Limits = Limits;
    const NAME: &'static str = "notary";

    fn judge(
        root: &Pinned,
        source: &dyn SignatureSource,
        subject: &Subject,
        now: OffsetDateTime,
        limits: &Limits,
    ) -> Result<Verified, TrustError> {
        let gun = subject.reference.gun();
        let state = TrustState::default();
        let ctx = VerifyContext {
            gun: &gun,
            pins: &root.keys,
            now,
            previous: &state,
            limits: *limits,
        };
        let (trusted, repo) = verify_image(&ctx, source, &subject.reference, &root.rule)?;
        check_registry(&trusted, subject.manifest.as_ref().map(|m| &m.digest))?;
        Ok(verified(&trusted, &repo))
    }
}

/// What a Notary v1 verification found, as a verdict: the trusted digest, the roles that signed
/// it, and the expiry of every role.
pub fn verified(trusted: &VerifiedTarget, repo: &TrustedRepo) -> Verified {
    let mut v = verified_target(trusted);
    for (role, at) in repo.expiries() {
        v = v.with_expiry(role, at);
    }
    v
}

/// The trusted target as a verdict: its digest and the roles that signed it (the online verifier
/// records the roles' expiries as it refreshes the trust data).
pub(crate) fn verified_target(trusted: &VerifiedTarget) -> Verified {
    Verified::new(trusted.digest().clone(), trusted.roles().to_vec(), None)
}
