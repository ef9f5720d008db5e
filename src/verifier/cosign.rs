//! One image under a `cosign:` trust root: the image's digest D at its registry, the manifest
//! tagged `sha256-<hex(D)>.sig` in the image's repository, each simple-signing payload fetched by
//! digest and size, and the keys whose signatures verify over payloads that name D and the
//! image's repository; then the root's threshold and required keys. Every fetch goes through the
//! resolver's capped client and caches, so a burst of identical Pods costs one fetch per document.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::cosign::{self, CosignError, CosignRoot, MAX_PAYLOAD, Reason as CReason};
use crate::metrics::Metrics;
use crate::reference::{Digest, Reference};
use crate::trust::{Reason, TrustError};
use crate::upstream::{MAX_SIGNATURE_MANIFEST, Resolver};

/// How long a decision is reused for the same `.sig` manifest (by digest): a new signature
/// changes the manifest, so only a removed key or a new configuration would be missed, and a
/// new configuration starts a new verifier.
const VERIFIED_TTL: Duration = Duration::from_secs(60);
const VERIFIED_ENTRIES: u64 = 10_000;

/// A `cosign:` trust root put to work.
pub(super) struct CosignVerifier {
    root: CosignRoot,
    /// By (repository, image digest, `.sig` manifest digest): who signed.
    verified: moka::sync::Cache<(String, Digest, Digest), String>,
    _metrics: Arc<Metrics>,
}

fn refusal(e: &CosignError) -> TrustError {
    let reason = match e.reason {
        CReason::NoSignature => Reason::SignatureNotFound,
        CReason::Malformed => Reason::MalformedMetadata,
        CReason::DigestMismatch => Reason::DigestMismatch,
        CReason::WrongSubject | CReason::Untrusted => Reason::UntrustedSigner,
    };
    TrustError::new(reason, None, format!("cosign: {}", e.detail))
}

impl CosignVerifier {
    pub(super) fn new(root: CosignRoot, metrics: Arc<Metrics>) -> CosignVerifier {
        CosignVerifier {
            root,
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_ENTRIES)
                .time_to_live(VERIFIED_TTL)
                .build(),
            _metrics: metrics,
        }
    }

    /// Verifies `reference` under this trust root: the digest and who signed it.
    pub(super) async fn verify(
        &self,
        resolver: &Resolver,
        reference: &Reference,
    ) -> Result<(Digest, String), TrustError> {
        let resolved = resolver.resolve(reference).await?;
        let digest = resolved.digest.clone();
        let (host, path) = (reference.host(), reference.path());
        let tag = cosign::signature_tag(&digest);
        let Some(manifest) = resolver
            .manifest(host, path, &tag, MAX_SIGNATURE_MANIFEST)
            .await?
        else {
            return Err(refusal(&CosignError {
                reason: CReason::NoSignature,
                detail: format!("no signature for {digest} (no {tag} manifest)"),
            }));
        };
        let key = (reference.gun(), digest.clone(), manifest.digest.clone());
        if let Some(signer) = self.verified.get(&key) {
            return Ok((digest, signer));
        }
        let layers = cosign::signature_layers(&manifest.bytes).map_err(|e| refusal(&e))?;
        let payloads =
            futures_util::future::join_all(layers.iter().map(|l| {
                resolver.blob(host, path, &l.payload_digest, l.payload_size, MAX_PAYLOAD)
            }))
            .await;
        let mut signed = BTreeSet::new();
        let mut failures: Vec<CosignError> = Vec::new();
        for (layer, payload) in layers.iter().zip(payloads) {
            // A payload that cannot be fetched might have carried a needed signature: fail on
            // the upstream error, which a retry can fix.
            let payload = payload?;
            let who = cosign::signers(&self.root, &payload.bytes, &layer.signature);
            if who.is_empty() {
                continue;
            }
            // Only a signature by a trusted key makes its payload's claims count.
            match cosign::check_payload(&payload.bytes, reference, &digest) {
                Ok(()) => signed.extend(who),
                Err(e) => failures.push(e),
            }
        }
        match cosign::decide(&self.root, &signed) {
            Ok(signer) => {
                self.verified.insert(key, signer.clone());
                Ok((digest, signer))
            }
            // A trusted key signed something else (another digest or repository): say that,
            // it is what the operator needs to see.
            Err(e) if signed.is_empty() && !failures.is_empty() => {
                Err(refusal(failures.first().unwrap_or(&e)))
            }
            Err(e) => Err(refusal(&e)),
        }
    }
}
