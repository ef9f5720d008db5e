//! Notation behind the one seam ([`Scheme`]): the image's referrers list → each Notation signature
//! manifest bound to the image → its envelope, read from the [`SignatureSource`] by name, then the
//! first envelope that verifies under the trust policy for the image's repository.

use time::OffsetDateTime;

use super::{
    Limits, NotationError, Reason as NReason, RootPolicy, VerifiedSignature, envelope_descriptor,
    judge_envelopes, signature_candidates,
};
use crate::reference::Digest;
use crate::scheme::{self, OciName, Scheme, SignatureSource, Subject};
use crate::verdict::{Reason, Relaxed, TrustError, Verified};

/// Notary Project signatures: envelopes stored as referrers of the image's manifest.
pub struct Notation;

impl Scheme for Notation {
    type Root = RootPolicy;
    type Limits = Limits;
    const NAME: &'static str = "notation";

    fn judge(
        root: &RootPolicy,
        source: &dyn SignatureSource,
        subject: &Subject,
        now: OffsetDateTime,
        limits: &Limits,
    ) -> Result<Verified, TrustError> {
        let reference = &subject.reference;
        let repository = format!("{}/{}", reference.domain(), reference.path());
        let policy = root.select(&repository).map_err(|e| TrustError::from(&e))?;
        let image = subject.manifest()?;
        let Some(index) = scheme::read(source, &OciName::Referrers.name(), limits.manifest)? else {
            return Err(TrustError::from(&NotationError::new(
                NReason::NoSignature,
                format!(
                    "no signature refers to {} (referrers API and tag schema)",
                    image.digest
                ),
            )));
        };
        let candidates =
            signature_candidates(&index, limits.candidates).map_err(|e| TrustError::from(&e))?;

        // Each candidate: its manifest by digest (bound to the image), then its envelope (one
        // declared larger than an envelope may be is that signature's failure, not read). A
        // document that could not be had might have verified: the refusal is then the upstream
        // failure, which a retry can fix.
        let mut failures = Vec::new();
        let mut envelopes = Vec::new();
        let mut upstream: Option<TrustError> = None;
        for c in &candidates {
            let manifest = match scheme::read(
                source,
                &OciName::Manifest(c.digest.to_string()).name(),
                limits.manifest,
            ) {
                Ok(Some(m)) => m,
                Ok(None) => {
                    upstream.get_or_insert_with(|| {
                        missing(format!(
                            "the referrers list names {} but the registry has no such manifest",
                            c.digest
                        ))
                    });
                    continue;
                }
                Err(e) => {
                    upstream.get_or_insert(e);
                    continue;
                }
            };
            let envelope = match envelope_descriptor(&manifest, &image.digest) {
                Ok(Some(e)) => e,
                Ok(None) => continue,
                Err(e) => {
                    failures.push(e);
                    continue;
                }
            };
            if usize::try_from(envelope.size).map_or(true, |s| s > limits.envelope) {
                failures.push(NotationError::new(
                    NReason::TooLarge,
                    format!(
                        "the envelope {} declares {} bytes, more than the {} KiB an envelope may have",
                        envelope.digest,
                        envelope.size,
                        limits.envelope / 1024
                    ),
                ));
                continue;
            }
            let blob = OciName::Blob(envelope.digest.clone(), envelope.size);
            match scheme::read(source, &blob.name(), limits.envelope) {
                Ok(Some(bytes)) => envelopes.push((envelope.media_type, bytes)),
                Ok(None) => {
                    upstream.get_or_insert_with(|| {
                        missing(format!("the registry has no envelope {}", envelope.digest))
                    });
                }
                Err(e) => {
                    upstream.get_or_insert(e);
                }
            }
        }
        if source.pending() {
            return Err(scheme::pending(Self::NAME));
        }
        let found = failures.len() + envelopes.len() + usize::from(upstream.is_some());
        let spent = || source.spent();
        match judge_envelopes(policy, image, &envelopes, failures, found, now, &spent) {
            None => Err(scheme::budget_spent(Self::NAME)),
            Some(Ok(v)) => Ok(accepted(image.digest.clone(), v)),
            Some(Err(e)) => Err(upstream.unwrap_or_else(|| TrustError::from(&e))),
        }
    }
}

fn missing(detail: String) -> TrustError {
    TrustError::new(Reason::ImageNotFound, None, detail)
}

/// The verified signature as a verdict: the signer, with what the policy only logged, valid until
/// the chain's or the signature's expiry, whichever comes first.
fn accepted(digest: Digest, v: VerifiedSignature) -> Verified {
    let until = v.expiry.map_or(v.not_after, |e| e.min(v.not_after));
    let mut signer = v.signer;
    if !v.logged.is_empty() {
        let logged: Vec<String> = v
            .logged
            .iter()
            .map(|l| format!("{} {}", l.step.name(), l.reason.as_str()))
            .collect();
        signer = format!("{signer} (logged: {})", logged.join(", "));
    }
    let relaxed = v
        .logged
        .into_iter()
        .map(|l| Relaxed {
            step: l.step.name(),
            reason: l.reason.as_str(),
            detail: l.detail,
        })
        .collect();
    Verified::new(digest, vec![signer], Some(until))
        .with_expiry("certificate", v.not_after)
        .with_relaxed(relaxed)
}
