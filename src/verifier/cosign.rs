//! One image under a `cosign:` trust root: the image's digest D at its registry, then both
//! places cosign stores signatures, fetched together: the manifest tagged `sha256-<hex(D)>.sig`
//! (legacy layout: simple-signing payloads fetched by digest and size) and D's referrers (the
//! API, else the tag schema) for Sigstore bundles. Every signature container is judged alone
//! ([`cosign::verify_evidence`] and [`cosign::check_claims`]); the signers of all of them meet the
//! root's threshold and required keys. Every fetch goes through the resolver's capped client and
//! caches, so a burst of identical Pods costs one fetch per document.

use std::sync::Arc;

use time::OffsetDateTime;

use super::cpu::{Budget, CpuPool};
use super::decisions::{Decisions, Recalled};
use crate::cosign::{
    self, CosignError, CosignRoot, Evidence, MAX_LAYERS, MAX_PAYLOAD, Reason as CReason, bundle,
};
use crate::metrics::Metrics;
use crate::reference::{Digest, Reference};
use crate::upstream::{MAX_SIGNATURE_MANIFEST, Resolver};
use crate::verdict::{TrustError, Verified};

/// By (repository, image digest, `.sig` manifest digest, referrers list digest).
type VerifiedKey = (String, Digest, Option<Digest>, Option<Digest>);

/// A `cosign:` trust root put to work.
pub(super) struct CosignVerifier {
    root: Arc<CosignRoot>,
    /// By signature documents: a new signature changes the `.sig` manifest or the referrers
    /// list. A signer has no end of its own to cap its reuse (keys do not expire; keyless
    /// certificates are judged at the log's time).
    decisions: Decisions<VerifiedKey, CosignError>,
    _metrics: Arc<Metrics>,
}

impl CosignVerifier {
    pub(super) fn new(root: CosignRoot, metrics: Arc<Metrics>) -> CosignVerifier {
        CosignVerifier {
            root: Arc::new(root),
            decisions: Decisions::new(),
            _metrics: metrics,
        }
    }

    /// Verifies `reference` under this trust root: the digest and who signed it, and whether
    /// the answer was reused.
    pub(super) async fn verify(
        &self,
        resolver: &Resolver,
        cpu: &CpuPool,
        reference: &Reference,
        now: OffsetDateTime,
    ) -> Result<(Verified, bool), TrustError> {
        let resolved = resolver.resolve(reference).await?;
        let digest = resolved.digest.clone();
        let (host, path) = (reference.host(), reference.path());
        let tag = cosign::signature_tag(&digest);
        let (legacy, referrers) = futures_util::future::join(
            resolver.manifest(host, path, &tag, MAX_SIGNATURE_MANIFEST),
            resolver.referrers(host, path, &digest),
        )
        .await;
        let (legacy, referrers) = (legacy?, referrers?);
        let key = (
            reference.gun(),
            digest.clone(),
            legacy.as_ref().map(|m| m.digest.clone()),
            referrers.as_ref().map(|r| r.digest.clone()),
        );
        match self.decisions.recall(&key, now) {
            Some(Recalled::Signed(v)) => return Ok((v, true)),
            Some(Recalled::Refused(e)) => return Err(TrustError::from(&e)),
            None => {}
        }
        let refuse = |e: CosignError| {
            self.decisions.refused(key.clone(), e.clone());
            Err(TrustError::from(&e))
        };
        let bundles = match &referrers {
            Some(index) => match bundle::candidates(&index.bytes, MAX_LAYERS) {
                Ok(b) => b,
                Err(e) => return refuse(e),
            },
            None => Vec::new(),
        };
        if legacy.is_none() && bundles.is_empty() {
            return refuse(CosignError::new(
                CReason::NoSignature,
                format!(
                    "no signature for {digest} (no {tag} manifest, no Sigstore bundle referrer)"
                ),
            ));
        }

        let mut failures: Vec<CosignError> = Vec::new();
        let mut evidence: Vec<Evidence> = Vec::new();
        // Legacy layers: each payload by digest and size. A payload that cannot be fetched might
        // have carried a needed signature: fail on the upstream error, which a retry can fix.
        let layers = match &legacy {
            Some(m) => match cosign::signature_layers(&m.bytes) {
                Ok(l) => l,
                Err(e) if bundles.is_empty() => return refuse(e),
                Err(e) => {
                    failures.push(e);
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        let payloads =
            futures_util::future::join_all(layers.iter().map(|l| {
                resolver.blob(host, path, &l.payload_digest, l.payload_size, MAX_PAYLOAD)
            }))
            .await;
        for (layer, payload) in layers.iter().zip(payloads) {
            evidence.push(Evidence::from_layer(layer, payload?.bytes.to_vec()));
        }
        // Bundles: each referrer manifest by digest, then its bundle layer.
        let budget = MAX_LAYERS.saturating_sub(layers.len());
        let fetched =
            futures_util::future::join_all(bundles.iter().take(budget).map(|(d, _)| async {
                let Some(m) = resolver
                    .manifest(host, path, d.as_str(), MAX_SIGNATURE_MANIFEST)
                    .await?
                else {
                    return Ok(None);
                };
                let layer = match bundle::bundle_layer(&m.bytes, &digest) {
                    Ok(Some(l)) => l,
                    Ok(None) => return Ok(None),
                    Err(e) => return Ok(Some(Err(e))),
                };
                let blob = resolver
                    .blob(host, path, &layer.0, layer.1, cosign::limits::MAX_BUNDLE)
                    .await?;
                Ok::<_, TrustError>(Some(bundle::parse(&blob.bytes)))
            }))
            .await;
        for f in fetched {
            match f? {
                None => {}
                Some(Ok(ev)) => evidence.push(ev),
                Some(Err(e)) => failures.push(e),
            }
        }
        if evidence.is_empty() && failures.is_empty() {
            return refuse(CosignError::new(
                CReason::NoSignature,
                format!("no signature for {digest} (the referrers hold no Sigstore bundle)"),
            ));
        }

        // The signature checks, off the async workers and within a budget of checks.
        let root = Arc::clone(&self.root);
        let (image, image_digest) = (reference.clone(), digest.clone());
        let verdict = cpu
            .run(move |budget| {
                let spent = || budget.spent();
                cosign::judge(
                    &root,
                    &evidence,
                    failures,
                    &image,
                    &image_digest,
                    now,
                    &spent,
                )
            })
            .await?;
        match verdict {
            Some(Ok(signer)) => {
                // Keys do not expire, and keyless certificates are judged at the log's time:
                // nothing of the signature's own ends it.
                let verified = Verified::new(digest, vec![signer], None);
                self.decisions.signed(key, verified.clone(), now);
                Ok((verified, false))
            }
            Some(Err(e)) => refuse(e),
            None => Err(Budget::exceeded("cosign")),
        }
    }
}
