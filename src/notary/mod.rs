//! The pure core: parse and verify Notary v1 (TUF) trust data. Bytes and the clock come in,
//! a [`VerifiedTarget`] or a [`TrustError`] with a closed [`Reason`] comes out. No IO, no clock,
//! no async: fuzzable and testable from fixture bytes.

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

use crate::reference::Reference;

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
