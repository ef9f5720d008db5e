//! The decision for a set of container images: each distinct image decided once, in parallel, under
//! a bound on concurrent verifications and a deadline for the whole review; then modes applied.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use sha2::Digest as _;

use time::OffsetDateTime;
use tokio::sync::Semaphore;

use crate::config::Mode;
use crate::namespaces::NamespaceLabels;
use crate::trust::{Reason, TrustError};
use crate::verifier::{ImageDecision, Outcome, Verifier};

/// One container's image, as the object lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerImage {
    pub container: String,
    pub image: String,
}

/// One container's decision.
#[derive(Debug, Clone)]
pub struct ContainerDecision {
    pub container: String,
    pub decision: Arc<ImageDecision>,
}

/// What to answer.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    pub decisions: Vec<ContainerDecision>,
    /// SPEC's denial message when an enforce policy failed, naming every failing image.
    pub denial: Option<String>,
    /// One per image that failed under a warn policy.
    pub warnings: Vec<String>,
    /// Would-be denials under audit policies.
    pub audit: BTreeMap<String, String>,
}

impl Evaluation {
    pub fn allowed(&self) -> bool {
        self.denial.is_none()
    }

    /// The mode of the review's outcome for metrics: `enforce` when something was denied, else the
    /// strictest mode that recorded a failure, else `enforce`.
    pub fn mode_label(&self) -> &'static str {
        let failed = |m: Mode| {
            self.decisions
                .iter()
                .any(|d| d.decision.failed() && d.decision.mode == m)
        };
        if failed(Mode::Enforce) || !(failed(Mode::Warn) || failed(Mode::Audit)) {
            "enforce"
        } else if failed(Mode::Warn) {
            "warn"
        } else {
            "audit"
        }
    }

    /// `allowed`, `denied`, or `warned` (allowed with warnings).
    pub fn decision_label(&self) -> &'static str {
        if !self.allowed() {
            "denied"
        } else if self.warnings.is_empty() {
            "allowed"
        } else {
            "warned"
        }
    }
}

/// Decides every image of one review.
pub async fn evaluate(
    verifier: &Verifier,
    namespaces: &NamespaceLabels,
    limit: &Arc<Semaphore>,
    namespace: &str,
    images: &[ContainerImage],
    now: OffsetDateTime,
    deadline: Duration,
) -> Evaluation {
    // The deadline covers the whole review, the namespace labels included.
    let deadline_at = tokio::time::Instant::now() + deadline;
    // Labels are needed only by label selectors, but are read once per review either way; if they
    // cannot be read in time, every image fails closed with the reason.
    let labels = match tokio::time::timeout_at(deadline_at, namespaces.labels(namespace)).await {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => {
            return all_failed(images, TrustError::new(Reason::UpstreamError, None, e));
        }
        Err(_) => {
            let e = TrustError::new(
                Reason::Timeout,
                None,
                format!(
                    "the labels of namespace {namespace:?} could not be read within the review deadline of {:.1} s",
                    deadline.as_secs_f64()
                ),
            );
            return all_failed(images, e);
        }
    };
    // Each distinct image once, all in parallel; a panic while deciding one image is caught
    // here and becomes that image's failure (fail closed), never a dropped connection.
    let mut distinct: Vec<&str> = images.iter().map(|c| c.image.as_str()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let work = distinct.iter().map(|image| {
        let labels = &labels;
        async move {
            let _permit = limit.acquire().await.ok();
            let decided = barrier(verifier.decide(image, namespace, labels, now), |what| {
                    tracing::error!(image = *image, panic = %what, "internal error while deciding an image");
                    failed_under_policy(
                        verifier,
                        image,
                        namespace,
                        labels,
                        TrustError::new(
                            Reason::Internal,
                            None,
                            format!("internal error while verifying the image ({what}); denied to fail closed"),
                        ),
                        0.0,
                    )
                })
                .await;
            (image.to_owned(), decided)
        }
    });
    let decided: HashMap<String, Arc<ImageDecision>> =
        match tokio::time::timeout_at(deadline_at, futures_util::future::join_all(work)).await {
            Ok(all) => all
                .into_iter()
                .map(|(i, d)| (i.to_owned(), Arc::new(d)))
                .collect(),
            Err(_) => HashMap::new(),
        };
    let decisions = images
        .iter()
        .map(|c| {
            let decision = decided.get(&c.image).cloned().unwrap_or_else(|| {
                // Only reached when the deadline cut the review short: fail closed under the
                // image's policy (a warn policy warns), saying so.
                Arc::new(failed_under_policy(
                    verifier,
                    &c.image,
                    namespace,
                    &labels,
                    TrustError::new(
                        Reason::Timeout,
                        None,
                        format!(
                            "verification did not finish within the review deadline of {:.1} s",
                            deadline.as_secs_f64()
                        ),
                    ),
                    deadline.as_secs_f64(),
                ))
            });
            ContainerDecision {
                container: c.container.clone(),
                decision,
            }
        })
        .collect();
    apply_modes(decisions)
}

/// Every image failed with `err` before any policy could be chosen (namespace labels unknown):
/// denied, whatever the policies' modes would have been.
fn all_failed(images: &[ContainerImage], err: TrustError) -> Evaluation {
    apply_modes(
        images
            .iter()
            .map(|c| ContainerDecision {
                container: c.container.clone(),
                decision: Arc::new(ImageDecision {
                    image: c.image.clone(),
                    policy: None,
                    trust_root: None,
                    mode: Mode::Enforce,
                    outcome: Outcome::Failed(err.clone()),
                    cache_hit: false,
                    seconds: 0.0,
                }),
            })
            .collect(),
    )
}

/// `image` failed with `err` before its decision was made (deadline, internal error): the failure
/// under the image's own policy and mode, as a completed verification's would be.
fn failed_under_policy(
    verifier: &Verifier,
    image: &str,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    err: TrustError,
    seconds: f64,
) -> ImageDecision {
    let config = verifier.config();
    let found = match crate::reference::Reference::parse(image) {
        Ok(r) => Some(config.policy_for_reference(&r, namespace, labels)),
        Err(_) => None,
    };
    let (trust_root, mode) = match found.as_ref().map(|f| f.target()) {
        Some(crate::config::PolicyTarget::Verify { trust_root, mode }) => {
            (Some(trust_root.clone()), *mode)
        }
        _ => (None, Mode::Enforce),
    };
    ImageDecision {
        image: image.to_owned(),
        policy: found.and_then(|f| f.policy_name()).map(str::to_owned),
        trust_root,
        mode,
        outcome: Outcome::Failed(err),
        cache_hit: false,
        seconds,
    }
}

/// The panic barrier: runs `fut`; if it panics, the answer is `on_panic` of what the panic said.
pub async fn barrier<T>(fut: impl Future<Output = T>, on_panic: impl FnOnce(String) -> T) -> T {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(v) => v,
        Err(panic) => on_panic(panic_text(panic.as_ref())),
    }
}

/// What a caught panic said, for logs and denial messages.
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned());
    text.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// enforce: a failure denies; warn: a warning; audit: an audit annotation.
fn apply_modes(decisions: Vec<ContainerDecision>) -> Evaluation {
    let mut failures = Vec::new();
    let mut warnings = Vec::new();
    let mut audit = BTreeMap::new();
    for d in &decisions {
        let x = &d.decision;
        if !x.failed() {
            continue;
        }
        let text = format!(
            "image {:?} (container {:?}) denied by policy {:?}: {}",
            x.image,
            d.container,
            x.policy_label(),
            x.reason_text()
        );
        match x.mode {
            Mode::Enforce => failures.push(text),
            Mode::Warn => warnings.push(format!(
                "image {:?} (container {:?}) is not trusted under policy {:?} (warn mode): {}",
                x.image,
                d.container,
                x.policy_label(),
                x.reason_text()
            )),
            Mode::Audit => {
                let key = audit_key(&d.container, &audit);
                audit.insert(key, text);
            }
        }
    }
    Evaluation {
        decisions,
        denial: (!failures.is_empty()).then(|| failures.join("; ")),
        warnings,
        audit,
    }
}

/// The longest audit annotation key: the API server records it as `<webhook name>/<key>`, a
/// qualified name whose part after the `/` is at most 63 characters (longer, or with a second
/// `/`, it is dropped).
const MAX_AUDIT_KEY: usize = 63;
const AUDIT_PREFIX: &str = "audit-";

/// `audit-<container>`: one distinct key per container. A name that does not fit as it is (too
/// long, or characters a key cannot hold) is cut and given a hash of the whole name, so two
/// containers sharing a long prefix never overwrite each other's record.
fn audit_key(container: &str, taken: &BTreeMap<String, String>) -> String {
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
    let plain = format!("{AUDIT_PREFIX}{container}");
    let fits = plain.len() <= MAX_AUDIT_KEY
        && container.chars().all(valid)
        && container.ends_with(|c: char| c.is_ascii_alphanumeric());
    if fits && !taken.contains_key(&plain) {
        return plain;
    }
    let hash = hex::encode(sha2::Sha256::digest(container.as_bytes()));
    let short = hash.get(..10).unwrap_or(&hash);
    let room = MAX_AUDIT_KEY - AUDIT_PREFIX.len() - 1 - short.len();
    let head: String = container
        .chars()
        .map(|c| {
            if valid(c) {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(room)
        .collect();
    let head = head.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    let mut key = if head.is_empty() {
        format!("{AUDIT_PREFIX}{short}")
    } else {
        format!("{AUDIT_PREFIX}{head}-{short}")
    };
    // The same container listed twice (a review of both lists of a Pod): keep both records.
    let mut n = 2;
    while taken.contains_key(&key) {
        key = format!("{AUDIT_PREFIX}{short}-{n}");
        n += 1;
    }
    key
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]
    use super::*;

    /// A qualified name's part after the `/`, as the API server checks audit annotation keys.
    fn is_qualified_name_part(k: &str) -> bool {
        let b = k.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b.first().is_some_and(u8::is_ascii_alphanumeric)
            && b.last().is_some_and(u8::is_ascii_alphanumeric)
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    }

    #[test]
    fn audit_keys_are_distinct_and_valid() {
        let long_a = format!("{}-a", "x".repeat(60));
        let long_b = format!("{}-b", "x".repeat(60));
        let mut taken = BTreeMap::new();
        for c in [
            "trainer",
            long_a.as_str(),
            long_b.as_str(),
            "Trainer_Sidecar",
            "-",
            "trainer",
        ] {
            let k = audit_key(c, &taken);
            assert!(is_qualified_name_part(&k), "{c:?} → {k:?}");
            assert!(!taken.contains_key(&k), "{c:?} → {k:?} overwrites a record");
            taken.insert(k, c.to_owned());
        }
        assert!(taken.contains_key("audit-trainer"));
        assert_eq!(taken.len(), 6);
    }

    #[tokio::test]
    async fn the_barrier_turns_a_panic_into_an_answer() {
        let caught = barrier(
            async {
                let n: u64 = std::hint::black_box(u64::MAX);
                if n > 0 {
                    panic!("overflow at {n}\nsecond line");
                }
                "not reached".to_owned()
            },
            |what| format!("internal error: {what}"),
        )
        .await;
        assert_eq!(
            caught,
            format!("internal error: overflow at {}second line", u64::MAX)
        );
        assert_eq!(barrier(async { 7 }, |_| 0).await, 7);
    }
}
