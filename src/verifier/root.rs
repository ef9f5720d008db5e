//! One root verifier for every scheme whose signatures are stored beside the image in its
//! registry (Notation, cosign): the image's digest D at its registry, then the scheme's judge
//! ([`Scheme::judge`]) over the documents fetched so far. A judge that asks for documents it does
//! not have yet stops before any signature check; they are fetched together (through the
//! resolver's capped client and coalescing caches) and the judge runs again, until it answers.
//! The documents it asks for first (the referrers list, a `.sig` manifest) are the signature
//! material: the answer is remembered by (repository, D, material) in the one decision cache,
//! so a new signature is judged at once and a repeated image costs no CPU. Every round that
//! holds documents runs off the async workers, within the per-image budget (`cpu.rs`).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use super::cpu::{Budget, CpuPool};
use super::decisions::{Decisions, Recalled};
use crate::metrics::Metrics;
use crate::policy::Kind;
use crate::reference::{Digest, Reference};
use crate::scheme::{self, OciName, Scheme, SignatureSource, Subject};
use crate::upstream::Resolver;
use crate::verdict::{Reason, TrustError, Verified};

/// A document as fetched: its bytes, absent (404), or why it could not be had.
type Fetched = Result<Option<Arc<[u8]>>, TrustError>;
/// The documents fetched for one judgement, by name.
type Docs = BTreeMap<String, Fetched>;
/// By (repository, image digest, SHA-256 of the signature material).
type Key = (String, Digest, [u8; 32]);

/// Rounds of fetching one judgement may take: the deepest walk is the entry documents, then a
/// manifest, then a blob.
const MAX_ROUNDS: usize = 4;

/// A trust root of scheme `S` put to work.
pub(super) struct SchemeRoot<S: Scheme> {
    root: Arc<S::Root>,
    limits: S::Limits,
    kind: Kind,
    metrics: Arc<Metrics>,
    /// A signer is reused until the signature's own end at the latest; a refusal for less.
    decisions: Decisions<Key, TrustError>,
}

/// One run of the judge: its answer, the documents it asked for and lacked (with their caps),
/// and whether a document it read had failed upstream (such an answer is not remembered).
struct Round {
    answer: Result<Verified, TrustError>,
    asked: BTreeMap<String, usize>,
    upstream_failed: bool,
}

/// The fetched documents as a [`SignatureSource`]: records what the judge lacks.
struct Recorder {
    docs: Arc<Docs>,
    asked: RefCell<BTreeMap<String, usize>>,
    upstream_failed: Cell<bool>,
    budget: Option<Budget>,
}

impl SignatureSource for Recorder {
    fn fetch(&self, name: &str, cap: usize) -> Result<Option<Vec<u8>>, TrustError> {
        match self.docs.get(name) {
            Some(Ok(b)) => Ok(b.as_deref().map(<[u8]>::to_vec)),
            Some(Err(e)) => {
                self.upstream_failed.set(true);
                Err(e.clone())
            }
            None => {
                self.asked.borrow_mut().insert(name.to_owned(), cap);
                Err(scheme::pending(name))
            }
        }
    }

    fn pending(&self) -> bool {
        !self.asked.borrow().is_empty()
    }

    fn spent(&self) -> bool {
        self.budget.is_some_and(|b| b.spent())
    }
}

fn round<S: Scheme>(
    root: &S::Root,
    docs: Arc<Docs>,
    subject: &Subject,
    now: OffsetDateTime,
    limits: &S::Limits,
    budget: Option<Budget>,
) -> Round {
    let source = Recorder {
        docs,
        asked: RefCell::new(BTreeMap::new()),
        upstream_failed: Cell::new(false),
        budget,
    };
    let answer = S::judge(root, &source, subject, now, limits);
    Round {
        answer,
        asked: source.asked.into_inner(),
        upstream_failed: source.upstream_failed.get(),
    }
}

/// The signature material: every document fetched so far, by name.
fn material(docs: &Docs) -> [u8; 32] {
    let mut h = Sha256::new();
    for (name, doc) in docs {
        h.update(name.as_bytes());
        match doc {
            Ok(Some(b)) => {
                h.update([1]);
                h.update(Sha256::digest(b));
            }
            Ok(None) => h.update([0]),
            Err(_) => h.update([2]),
        }
    }
    h.finalize().into()
}

impl<S> SchemeRoot<S>
where
    S: Scheme + 'static,
    S::Root: Send + Sync + 'static,
    S::Limits: Copy + Send + Sync + 'static,
{
    pub(super) fn new(root: S::Root, limits: S::Limits, kind: Kind, metrics: Arc<Metrics>) -> Self {
        SchemeRoot {
            root: Arc::new(root),
            limits,
            kind,
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
        let resolved = resolver.resolve(reference).await?;
        let subject = Arc::new(Subject {
            reference: reference.clone(),
            manifest: Some(resolved.descriptor()),
        });
        let repository = format!("{}/{}", reference.domain(), reference.path());
        let mut docs = Docs::new();
        let mut key = None;
        // The first round holds no document, so it can only ask: it runs here.
        let mut r = round::<S>(
            &self.root,
            Arc::new(Docs::new()),
            &subject,
            now,
            &self.limits,
            None,
        );
        for _ in 0..MAX_ROUNDS {
            if r.asked.is_empty() {
                break;
            }
            fetch(resolver, reference, &resolved.digest, &r.asked, &mut docs).await;
            if key.is_none() {
                let k = (repository.clone(), resolved.digest.clone(), material(&docs));
                match self.decisions.recall(&k, now) {
                    Some(Recalled::Signed(v)) => return Ok((v, true)),
                    Some(Recalled::Refused(e)) => return Err(e),
                    None => {}
                }
                key = Some(k);
            }
            let (root, held, subject) = (
                Arc::clone(&self.root),
                Arc::new(docs.clone()),
                Arc::clone(&subject),
            );
            let limits = self.limits;
            r = cpu
                .run(move |budget| round::<S>(&root, held, &subject, now, &limits, Some(budget)))
                .await?;
        }
        if !r.asked.is_empty() {
            return Err(TrustError::new(
                Reason::Internal,
                None,
                format!(
                    "{}: the signatures of {reference} were not read in {MAX_ROUNDS} rounds of fetches",
                    S::NAME
                ),
            ));
        }
        match r.answer {
            Ok(v) => {
                self.record(name, &repository, &v);
                if let Some(k) = key {
                    self.decisions.signed(k, v.clone(), now);
                }
                Ok((v, false))
            }
            Err(e) => {
                // A document that could not be had, or a budget that ran out, may pass on retry:
                // only a refusal of what was read is remembered.
                if !r.upstream_failed
                    && e.reason() != Reason::Timeout
                    && let Some(k) = key
                {
                    self.decisions.refused(k, e.clone());
                }
                Err(e)
            }
        }
    }

    /// Records what a fresh verification found: the expiries it carries and the checks its
    /// policy only logged.
    fn record(&self, name: &str, repository: &str, v: &Verified) {
        for (what, at) in v.expiries() {
            self.metrics
                .trust_expiry(name, repository, what, at.unix_timestamp());
        }
        for l in v.relaxed() {
            self.metrics
                .relaxed_check(name, self.kind, l.step, l.reason);
            tracing::warn!(
                trust_root = name,
                repository,
                step = l.step,
                reason = l.reason,
                detail = %l.detail,
                "{}: a verification step failed and the trust policy only logs it",
                S::NAME
            );
        }
    }
}

/// Fetches the documents `asked` (with their caps) into `docs`, together.
async fn fetch(
    resolver: &Resolver,
    reference: &Reference,
    digest: &Digest,
    asked: &BTreeMap<String, usize>,
    docs: &mut Docs,
) {
    let (host, path) = (reference.host(), reference.path());
    let fetched = futures_util::future::join_all(asked.iter().map(|(name, cap)| async move {
        let doc: Fetched = match OciName::parse(name) {
            Some(OciName::Referrers) => resolver
                .referrers(host, path, digest)
                .await
                .map(|d| d.map(|d| d.bytes)),
            Some(OciName::Manifest(target)) => resolver
                .manifest(host, path, &target, *cap)
                .await
                .map(|d| d.map(|d| d.bytes)),
            Some(OciName::Blob(d, size)) => resolver
                .blob(host, path, &d, size, *cap)
                .await
                .map(|d| Some(d.bytes)),
            None => Err(TrustError::new(
                Reason::Internal,
                None,
                format!("no registry document is named {name:?}"),
            )),
        };
        (name.clone(), doc)
    }))
    .await;
    docs.extend(fetched);
}
