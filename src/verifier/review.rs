//! The decisions for one review's images: each distinct image decided once, in parallel, under a
//! bound on concurrent verifications and one deadline for the whole review (namespace labels
//! included); a panic while deciding becomes that image's failure, never a dropped connection.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use super::Verifier;
use crate::admission::ContainerImage;
use crate::policy::{ContainerDecision, Evaluation, ImageDecision, Outcome};
use crate::reference::Reference;
use crate::upstream::NamespaceLabels;
use crate::upstream::namespaces::Labels;
use crate::verdict::{Reason, TrustError};

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
    // Labels are read only when a policy selects namespaces by label (from the watched cache, no
    // request); when they are unknown, only images whose policy depends on them fail, with why.
    let labels: Result<Labels, TrustError> = if verifier.config().policies().uses_labels() {
        match tokio::time::timeout_at(deadline_at, namespaces.labels(namespace)).await {
            Ok(Ok(l)) => Ok(l),
            Ok(Err(e)) => Err(TrustError::new(Reason::UpstreamError, None, e)),
            Err(_) => Err(TrustError::new(
                Reason::Timeout,
                None,
                format!(
                    "the labels of namespace {namespace:?} could not be read within the review deadline of {:.1} s",
                    deadline.as_secs_f64()
                ),
            )),
        }
    } else {
        Ok(Labels::default())
    };
    let labels = labels.as_ref().map(Labels::map);
    // Each distinct image once, all in parallel; a panic while deciding one image is caught
    // here and becomes that image's failure (fail closed), never a dropped connection.
    let mut distinct: Vec<&str> = images.iter().map(|c| c.image.as_str()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let work = distinct.iter().map(|image| {
        async move {
            let _permit = limit.acquire().await.ok();
            let decided = barrier(verifier.decide_with(image, namespace, labels, now), |what| {
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
                    labels,
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
    Evaluation::new(decisions)
}

/// `image` failed with `err` before its decision was made (deadline, internal error): the failure
/// under the image's own policy and mode, as a completed verification's would be.
fn failed_under_policy(
    verifier: &Verifier,
    image: &str,
    namespace: &str,
    labels: Result<&BTreeMap<String, String>, &TrustError>,
    err: TrustError,
    seconds: f64,
) -> ImageDecision {
    let reference = Reference::parse(image).ok();
    match reference.and_then(|r| verifier.policy_for(&r, namespace, labels).ok()) {
        Some(found) => {
            ImageDecision::under(image, &found, Outcome::Failed(err), Vec::new(), seconds)
        }
        None => ImageDecision::unmatched(image, err, seconds),
    }
}

/// The panic barrier: runs `fut`; if it panics, the answer is `on_panic` of what the panic said.
pub(crate) async fn barrier<T>(
    fut: impl Future<Output = T>,
    on_panic: impl FnOnce(String) -> T,
) -> T {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(v) => v,
        Err(panic) => on_panic(panic_text(panic.as_ref())),
    }
}

pub(crate) use crate::upstream::lane::panic_text;

#[cfg(test)]
mod tests {
    use super::*;

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
