//! One image under a `notation:` trust root: the image's digest D at its registry (the
//! manifest's media type and size too: the signature binds all three), D's referrers (the API,
//! else the `sha256-<hex>` tag schema), each Notation signature manifest fetched by digest and
//! bound to D, its envelope fetched by digest and size, and the first envelope that verifies
//! under the trust policy for the image's repository. Every fetch goes through the resolver's
//! capped client and coalescing caches, so a burst of identical Pods costs one fetch per document.

use std::sync::Arc;

use time::OffsetDateTime;

use super::cpu::{Budget, CpuPool};
use super::decisions::{Decisions, Recalled};
use crate::metrics::Metrics;
use crate::notation::{
    self, Descriptor, MAX_CANDIDATES, MAX_ENVELOPE, NotationError, Reason as NReason, RootPolicy,
    VerifiedSignature,
};
use crate::policy::Kind;
use crate::reference::{Digest, Reference};
use crate::upstream::{MAX_SIGNATURE_MANIFEST, Resolver};
use crate::verdict::{Reason, TrustError, Verified};

/// By (repository, image digest, referrers list digest).
type Key = (String, Digest, Digest);

/// A `notation:` trust root put to work.
pub(super) struct NotationVerifier {
    policy: Arc<RootPolicy>,
    metrics: Arc<Metrics>,
    /// By referrers list: a list that changes is judged afresh; a signer is reused until the
    /// chain's or the signature's expiry at the latest.
    decisions: Decisions<Key, NotationError>,
}

impl NotationVerifier {
    pub(super) fn new(policy: RootPolicy, metrics: Arc<Metrics>) -> NotationVerifier {
        NotationVerifier {
            policy: Arc::new(policy),
            metrics,
            decisions: Decisions::new(),
        }
    }

    /// Verifies `reference` under this trust root (`name`): the digest and who signed it, and
    /// whether the answer was reused.
    pub(super) async fn verify(
        &self,
        name: &str,
        resolver: &Resolver,
        cpu: &CpuPool,
        reference: &Reference,
        now: OffsetDateTime,
    ) -> Result<(Verified, bool), TrustError> {
        let repository = format!("{}/{}", reference.domain(), reference.path());
        self.policy
            .select(&repository)
            .map_err(|e| TrustError::from(&e))?;
        let resolved = resolver.resolve(reference).await?;
        let image = Descriptor {
            media_type: resolved.media_type.clone(),
            digest: resolved.digest.clone(),
            size: resolved.length,
        };
        let host = reference.host();
        let path = reference.path();
        let Some(index) = resolver.referrers(host, path, &image.digest).await? else {
            return Err(TrustError::from(&NotationError::new(
                NReason::NoSignature,
                format!(
                    "no signature refers to {} (referrers API and tag schema)",
                    image.digest
                ),
            )));
        };
        let key = (
            repository.clone(),
            image.digest.clone(),
            index.digest.clone(),
        );
        match self.decisions.recall(&key, now) {
            Some(Recalled::Signed(v)) => return Ok((v, true)),
            Some(Recalled::Refused(e)) => return Err(TrustError::from(&e)),
            None => {}
        }
        let candidates = match notation::signature_candidates(&index.bytes, MAX_CANDIDATES) {
            Ok(c) => c,
            Err(e) => {
                self.decisions.refused(key, e.clone());
                return Err(TrustError::from(&e));
            }
        };

        // Each candidate: its manifest by digest (bound to the image), then its envelope (one
        // declared larger than an envelope may be is that signature's failure, not fetched).
        let fetched = futures_util::future::join_all(candidates.iter().map(|c| async {
            let manifest = resolver
                .manifest(host, path, c.digest.as_str(), MAX_SIGNATURE_MANIFEST)
                .await?
                .ok_or_else(|| {
                    TrustError::new(
                        Reason::ImageNotFound,
                        None,
                        format!(
                            "the referrers list names {} but the registry has no such manifest",
                            c.digest
                        ),
                    )
                })?;
            let envelope = match notation::envelope_descriptor(&manifest.bytes, &image.digest) {
                Ok(Some(e)) => e,
                Ok(None) => return Ok(None),
                Err(e) => return Ok(Some(Err(e))),
            };
            if usize::try_from(envelope.size).map_or(true, |s| s > MAX_ENVELOPE) {
                return Ok(Some(Err(NotationError::new(
                    NReason::TooLarge,
                    format!(
                        "the envelope {} declares {} bytes, more than the {} KiB an envelope may have",
                        envelope.digest,
                        envelope.size,
                        MAX_ENVELOPE / 1024
                    ),
                ))));
            }
            let blob = resolver
                .blob(host, path, &envelope.digest, envelope.size, MAX_ENVELOPE)
                .await?;
            Ok::<_, TrustError>(Some(Ok((envelope.media_type, blob.bytes))))
        }))
        .await;

        let mut failures = Vec::new();
        let mut envelopes = Vec::new();
        let mut upstream = None;
        for f in fetched {
            match f {
                Ok(None) => {}
                Ok(Some(Err(e))) => failures.push(e),
                Ok(Some(Ok(envelope))) => envelopes.push(envelope),
                Err(e) => {
                    upstream.get_or_insert(e);
                }
            }
        }
        let found = failures.len() + envelopes.len() + usize::from(upstream.is_some());

        // The signature checks, off the async workers: the first envelope that verifies wins.
        let policy = Arc::clone(&self.policy);
        let subject = image.clone();
        let verdict = cpu
            .run(move |budget| {
                let policy = policy.select(&repository)?;
                let spent = || budget.spent();
                notation::judge(policy, &subject, &envelopes, failures, found, now, &spent)
                    .transpose()
            })
            .await?;
        let repository = &key.0;
        match verdict {
            Ok(Some(v)) => {
                let verified = self.accepted(name, repository, image.digest, v);
                self.decisions.signed(key, verified.clone(), now);
                Ok((verified, false))
            }
            Ok(None) => Err(Budget::exceeded("notation")),
            Err(e) => match upstream {
                // A signature that could not be fetched might have verified: fail closed on the
                // upstream error, which a retry can fix, rather than on another signature's
                // failure (and remember nothing).
                Some(u) => Err(u),
                None => {
                    self.decisions.refused(key, e.clone());
                    Err(TrustError::from(&e))
                }
            },
        }
    }

    /// The verified signature as the review reports it: the signer, with what the policy only
    /// logged, valid until the chain's or the signature's expiry; the chain's expiry recorded.
    fn accepted(
        &self,
        name: &str,
        repository: &str,
        digest: Digest,
        v: VerifiedSignature,
    ) -> Verified {
        let until = v.expiry.map_or(v.not_after, |e| e.min(v.not_after));
        self.metrics.trust_expiry(
            name,
            repository,
            "certificate",
            v.not_after.unix_timestamp(),
        );
        let mut signer = v.signer;
        if !v.logged.is_empty() {
            let logged: Vec<String> = v
                .logged
                .iter()
                .map(|l| format!("{} {}", l.step.name(), l.reason.as_str()))
                .collect();
            for l in &v.logged {
                self.metrics
                    .relaxed_check(name, Kind::Notation, l.step.name(), l.reason.as_str());
                tracing::warn!(
                    trust_root = name,
                    repository,
                    step = l.step.name(),
                    reason = l.reason.as_str(),
                    detail = %l.detail,
                    "notation: a verification step failed and the trust policy only logs it"
                );
            }
            signer = format!("{signer} (logged: {})", logged.join(", "));
        }
        Verified::new(digest, vec![signer], Some(until))
    }
}
