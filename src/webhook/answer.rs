//! One review answered: parsed (a malformed body is HTTP 400), its images decided, the answer
//! built (a denial, an allowance with warnings and audit annotations, or `/mutate`'s digest
//! pins), recorded in metrics and logs. Whatever panics while deciding becomes a denial.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{AppState, bad_request, log};
use crate::admission::{self, Review, Workload};
use crate::config::Config;
use crate::metrics::{CacheOutcome, Metrics, REASON_NONE, VerificationResult};
use crate::policy::{Decision, Evaluation, Kind, Outcome};
use crate::verdict::{Reason, TrustError};
use crate::verifier;

pub(super) async fn handle(
    st: &AppState,
    body: &[u8],
    mutate: bool,
    deadline: Duration,
) -> Response {
    let started = Instant::now();
    let review = match std::panic::catch_unwind(|| admission::parse_review(body)) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "malformed AdmissionReview");
            return bad_request(e.to_string());
        }
        Err(panic) => return internal_error_unparsed(st, body, panic.as_ref()),
    };
    // The panic barrier: whatever fails while deciding, the API server gets a well-formed
    // denial for this review's uid (under `failurePolicy: Ignore` a dropped connection or a 500
    // would admit the Pod).
    let answer = verifier::barrier(decide(st, &review, mutate, deadline), |what| {
        st.metrics.internal_error();
        Answer {
            body: internal_error(&review, &what),
            decision: Decision::Denied,
            eval: None,
        }
    })
    .await;
    let mode = answer.eval.as_ref().and_then(Evaluation::mode);
    let seconds = started.elapsed().as_secs_f64();
    st.metrics.admission(
        &review.kind.kind,
        review.operation.as_str(),
        answer.decision,
        mode,
        seconds,
    );
    log::log_review(&review, answer.eval.as_ref(), answer.decision, seconds);
    (StatusCode::OK, axum::Json(answer.body)).into_response()
}

/// The denial for a review whose decision panicked: names the review's images when they can
/// still be listed.
fn internal_error(review: &Review, what: &str) -> Value {
    tracing::error!(uid = %review.uid, panic = %what, "internal error while deciding a review");
    let images = std::panic::catch_unwind(|| {
        admission::images(review)
            .map(|w| {
                admission::images_to_verify(review, &w)
                    .iter()
                    .map(admission::ContainerImage::named)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    })
    .unwrap_or_default();
    let which = if images.is_empty() {
        String::new()
    } else {
        format!(" for {}", images.join(", "))
    };
    admission::denied(
        &review.uid,
        format!("signgate internal error{which} ({what}); denied to fail closed"),
        Vec::new(),
        BTreeMap::new(),
    )
}

/// A panic while parsing: deny the review whose uid a plain JSON parse still finds, else 500.
fn internal_error_unparsed(
    st: &AppState,
    body: &[u8],
    panic: &(dyn std::any::Any + Send),
) -> Response {
    let what = verifier::panic_text(panic);
    tracing::error!(panic = %what, "internal error while parsing an AdmissionReview");
    st.metrics.internal_error();
    let uid = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        v.pointer("/request/uid")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    match uid {
        Some(uid) => (
            StatusCode::OK,
            axum::Json(admission::denied(
                &uid,
                format!("signgate internal error ({what}); denied to fail closed"),
                Vec::new(),
                BTreeMap::new(),
            )),
        )
            .into_response(),
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("signgate internal error ({what})"),
        )
            .into_response(),
    }
}

/// A review's answer: the AdmissionReview to send, its decision, and the evaluation of its images
/// (`None` when nothing needed verifying).
struct Answer {
    body: Value,
    decision: Decision,
    eval: Option<Evaluation>,
}

/// Decides one parsed review.
async fn decide(st: &AppState, review: &Review, mutate: bool, deadline: Duration) -> Answer {
    let uid = review.uid.as_str();
    let workload = match admission::images(review) {
        Ok(w) => w,
        Err(e) => {
            // About the object (say, a container without an image): deny, fail closed.
            return Answer {
                body: admission::denied(uid, e.to_string(), Vec::new(), BTreeMap::new()),
                decision: Decision::Denied,
                eval: None,
            };
        }
    };
    let to_verify = admission::images_to_verify(review, &workload);
    if to_verify.is_empty() {
        return Answer {
            body: admission::allowed(uid, Vec::new(), BTreeMap::new()),
            decision: Decision::Allowed,
            eval: None,
        };
    }
    let namespace = review.namespace.clone().unwrap_or_default();
    let verifier = st.config.verifier();
    let eval = verifier::evaluate(
        &verifier,
        &st.namespaces,
        &st.limit,
        &namespace,
        &to_verify,
        OffsetDateTime::now_utc(),
        deadline,
    )
    .await;
    record_verifications(&st.metrics, verifier.config(), &eval);
    let audit = eval.audit.clone();
    let body = match &eval.denial {
        Some(message) => admission::denied(uid, message.clone(), eval.warnings.clone(), audit),
        None if mutate => admission::patch_response(
            uid,
            pin_digests(&workload, &to_verify, &eval),
            eval.warnings.clone(),
            audit,
        ),
        None => admission::allowed(uid, eval.warnings.clone(), audit),
    };
    Answer {
        body,
        decision: eval.decision(),
        eval: Some(eval),
    }
}

/// JSONPatch replacing each verified tag reference with `name:tag@sha256:…`, so the kubelet pulls
/// exactly what was verified.
fn pin_digests(
    workload: &Workload,
    verified: &[admission::ContainerImage],
    eval: &Evaluation,
) -> Value {
    let Workload::Pods(pods) = workload else {
        return json!([]);
    };
    let mut ops = Vec::new();
    for (c, d) in verified.iter().zip(&eval.decisions) {
        if let Outcome::Verified(v) = &d.decision.outcome
            && let Ok(r) = crate::reference::Reference::parse(&c.image)
            && r.digest().is_none()
        {
            ops.push(json!({
                "op": "replace",
                "path": pods.image_pointer(c),
                "value": r.with_digest(v.digest.clone()).to_string(),
            }));
        }
    }
    Value::Array(ops)
}

/// One verification per trust root that checked an image (or, when the review's deadline or an
/// internal error cut the checks short, per trust root of its policy, with that reason).
fn record_verifications(metrics: &Metrics, config: &Config, eval: &Evaluation) {
    let kind = |name: &str| config.trust_root(name).map_or(Kind::Notary, |t| t.kind());
    // Containers naming one image share one decision: it was verified once, and counts once.
    let mut seen: Vec<&std::sync::Arc<crate::policy::ImageDecision>> = Vec::new();
    for d in &eval.decisions {
        if seen.iter().any(|s| std::sync::Arc::ptr_eq(s, &d.decision)) {
            continue;
        }
        seen.push(&d.decision);
        let x = &d.decision;
        if let Outcome::Failed(e) = &x.outcome
            && e.reason() == Reason::Internal
        {
            metrics.internal_error();
        }
        if x.checks.is_empty() {
            let reason = match &x.outcome {
                Outcome::Failed(e) => Some(e.reason()),
                _ => None,
            };
            for root in &x.trust_roots {
                metrics.verification(
                    root,
                    kind(root),
                    VerificationResult::of(reason),
                    x.reason_label(),
                    CacheOutcome::Miss,
                    x.seconds,
                );
            }
        }
        for c in &x.checks {
            let reason = c.result.as_ref().err().map(TrustError::reason);
            metrics.verification(
                &c.trust_root,
                c.kind,
                VerificationResult::of(reason),
                reason.map_or(REASON_NONE, Reason::as_str),
                CacheOutcome::from_hit(c.cache_hit),
                c.seconds,
            );
        }
    }
}
