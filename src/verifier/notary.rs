//! One image under a Notary v1 trust root: the trust data from its notary server (or an offline
//! bundle) and the digest its tag names at the registry, fetched concurrently; the trusted digest
//! must be the registry's.

use time::OffsetDateTime;

use std::path::Path;

use crate::reference::Reference;
use crate::trust::{
    self, Limits, PinnedKey, Reason, RoleRule, TrustError, TrustState, VerifiedTarget,
    VerifyContext, target,
};
use crate::upstream::{DirSource, Resolved, Resolver, TrustRootClient};

/// Verifies `reference` under `trust_root` at `now`:
/// - `name:tag`: the tag's trusted digest must equal the registry's current digest for the tag;
/// - `name:tag@sha256:…` and `name@sha256:…`: the digest in the reference is what runs, so the
///   registry is not asked; it must be the tag's trusted digest, or one trusted under some tag.
pub async fn verify_image(
    trust_root: &TrustRootClient,
    resolver: &Resolver,
    reference: &Reference,
    rule: &RoleRule,
    now: OffsetDateTime,
) -> Result<VerifiedTarget, TrustError> {
    verify(trust_root, resolver, reference, rule, now)
        .await
        .map(|(t, _)| t)
}

/// [`verify_image`], also saying whether the trust data came from the cache.
pub async fn verify(
    trust_root: &TrustRootClient,
    resolver: &Resolver,
    reference: &Reference,
    rule: &RoleRule,
    now: OffsetDateTime,
) -> Result<(VerifiedTarget, bool), TrustError> {
    let gun = reference.gun();
    let (lookup, registry) = tokio::join!(
        trust_root.repository(&gun, now),
        registry_digest(resolver, reference)
    );
    let lookup = lookup?;
    let trusted = target::select(&lookup.repo, reference, rule)?;
    check_registry(&trusted, registry)?;
    Ok((trusted, lookup.cache_hit))
}

/// The registry's digest for a tag reference; `None` when the reference pins a digest.
pub(crate) async fn registry_digest(
    resolver: &Resolver,
    reference: &Reference,
) -> Option<Result<Resolved, TrustError>> {
    match reference.digest() {
        None => Some(resolver.resolve(reference).await),
        Some(_) => None,
    }
}

/// The trusted digest must be what the registry serves for the tag.
pub(crate) fn check_registry(
    trusted: &VerifiedTarget,
    registry: Option<Result<Resolved, TrustError>>,
) -> Result<(), TrustError> {
    if let Some(resolved) = registry {
        let resolved = resolved?;
        if &resolved.digest != trusted.digest() {
            return Err(TrustError::new(
                Reason::DigestMismatch,
                None,
                format!(
                    "tag {:?} points to {} at the registry, but the trusted digest is {}",
                    trusted.tag(),
                    resolved.digest,
                    trusted.digest()
                ),
            ));
        }
    }
    Ok(())
}

/// Verifies `reference` from an offline bundle (`dir/<GUN>/root.json`, …) with `pins`; the
/// registry is asked for a tag's digest as online. No rollback memory: the bundle is what the
/// administrator put there.
pub(crate) async fn verify_offline(
    dir: &Path,
    pins: &[PinnedKey],
    rule: &RoleRule,
    resolver: &Resolver,
    reference: &Reference,
    now: OffsetDateTime,
    limits: Limits,
) -> Result<(VerifiedTarget, bool), TrustError> {
    let gun = reference.gun();
    let state = TrustState::default();
    let ctx = VerifyContext {
        gun: &gun,
        pins,
        now,
        previous: &state,
        limits,
    };
    let source = DirSource::new(dir.join(&gun));
    let registry = registry_digest(resolver, reference).await;
    let (trusted, _) = trust::verify_image(&ctx, &source, reference, rule)?;
    check_registry(&trusted, registry)?;
    Ok((trusted, false))
}
