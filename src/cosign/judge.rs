//! cosign behind the one seam ([`Scheme`]): both places cosign stores signatures, read from the
//! [`SignatureSource`] by name — the manifest tagged `sha256-<hex(D)>.sig` (legacy layout: its
//! simple-signing payloads by digest and size) and D's referrers list (Sigstore bundles: each
//! referrer manifest, then its bundle layer) — then every container judged
//! ([`judge_containers`]): the signers of all of them meet the root's threshold and required keys.

use time::OffsetDateTime;

use super::{
    CosignError, CosignRoot, Evidence, Limits, Reason as CReason, bundle, judge_containers,
    signature_layers, signature_tag,
};
use crate::scheme::{self, OciName, Scheme, SignatureSource, Subject};
use crate::verdict::{Reason, TrustError, Verified};

/// cosign signatures: legacy `.sig` manifests and Sigstore bundle referrers.
pub struct Cosign;

impl Scheme for Cosign {
    type Root = CosignRoot;
    type Limits = Limits;
    const NAME: &'static str = "cosign";

    fn judge(
        root: &CosignRoot,
        source: &dyn SignatureSource,
        subject: &Subject,
        now: OffsetDateTime,
        limits: &Limits,
    ) -> Result<Verified, TrustError> {
        let digest = &subject.manifest()?.digest;
        let refuse = |e: CosignError| Err(TrustError::from(&e));
        let tag = signature_tag(digest);
        // Both asked before either answer is used: they are fetched together.
        let legacy = scheme::read(
            source,
            &OciName::Manifest(tag.clone()).name(),
            limits.manifest,
        );
        let referrers = scheme::read(source, &OciName::Referrers.name(), limits.manifest);
        let (legacy, referrers) = (legacy?, referrers?);
        let bundles = match &referrers {
            Some(index) => match bundle::candidates(index, limits.containers) {
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
        // Legacy layers: each payload by digest and size. A payload that cannot be had might
        // have carried a needed signature: the refusal is the upstream failure, which a retry
        // can fix.
        let layers = match &legacy {
            Some(m) => match signature_layers(m) {
                Ok(l) => l,
                Err(e) if bundles.is_empty() => return refuse(e),
                Err(e) => {
                    failures.push(e);
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        let payloads: Vec<_> = layers
            .iter()
            .map(|l| {
                let name = OciName::Blob(l.payload_digest.clone(), l.payload_size);
                scheme::read(source, &name.name(), limits.payload)
            })
            .collect();
        // Bundles: each referrer manifest by digest, then its bundle layer.
        let room = limits.containers.saturating_sub(layers.len());
        let bundled: Vec<_> = bundles
            .iter()
            .take(room)
            .map(|(d, _)| {
                let Some(m) = scheme::read(
                    source,
                    &OciName::Manifest(d.to_string()).name(),
                    limits.manifest,
                )?
                else {
                    return Ok(None);
                };
                let (layer, size) = match bundle::bundle_layer(&m, digest) {
                    Ok(Some(l)) => l,
                    Ok(None) => return Ok(None),
                    Err(e) => return Ok(Some(Err(e))),
                };
                let blob = scheme::read(
                    source,
                    &OciName::Blob(layer.clone(), size).name(),
                    limits.bundle,
                )?
                .ok_or_else(|| missing(&layer))?;
                Ok::<_, TrustError>(Some(bundle::parse(&blob)))
            })
            .collect();
        for (layer, payload) in layers.iter().zip(payloads) {
            let payload = payload?.ok_or_else(|| missing(&layer.payload_digest))?;
            evidence.push(Evidence::from_layer(layer, payload));
        }
        for b in bundled {
            match b? {
                None => {}
                Some(Ok(ev)) => evidence.push(ev),
                Some(Err(e)) => failures.push(e),
            }
        }
        if source.pending() {
            return Err(scheme::pending(Self::NAME));
        }
        if evidence.is_empty() && failures.is_empty() {
            return refuse(CosignError::new(
                CReason::NoSignature,
                format!("no signature for {digest} (the referrers hold no Sigstore bundle)"),
            ));
        }
        let spent = || source.spent();
        match judge_containers(
            root,
            &evidence,
            failures,
            &subject.reference,
            digest,
            now,
            &spent,
        ) {
            // Keys do not expire, and keyless certificates are judged at the log's time: nothing
            // of the signature's own ends it.
            Some(Ok(signer)) => Ok(Verified::new(digest.clone(), vec![signer], None)),
            Some(Err(e)) => refuse(e),
            None => Err(scheme::budget_spent(Self::NAME)),
        }
    }
}

fn missing(digest: &crate::reference::Digest) -> TrustError {
    TrustError::new(
        Reason::ImageNotFound,
        None,
        format!("the registry has no blob {digest}"),
    )
}
