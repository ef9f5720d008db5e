//! The admission webhook: `POST /validate` (and `/mutate`, pinning verified tags to digests),
//! `GET /healthz`, `GET /readyz`. Every parsed review gets a well-formed AdmissionReview answer
//! with HTTP 200; a body that is not one gets HTTP 400 with a message.

pub mod evaluate;
pub mod state;

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use crate::admission::{self, Review, Workload};
use crate::config::Mode;
use crate::logs::JsonStr;
use crate::metrics::{CacheOutcome, Decision, Metrics, VerificationResult};
use crate::namespaces::NamespaceLabels;
use crate::verifier::Outcome;

pub use evaluate::{ContainerImage, Evaluation, evaluate};
pub use state::{ConfigState, Reload};

/// What the handlers share.
pub struct AppState {
    pub config: Arc<ConfigState>,
    pub metrics: Arc<Metrics>,
    pub namespaces: NamespaceLabels,
    /// Bound on concurrent image verifications across all reviews.
    pub limit: Arc<Semaphore>,
    /// Deadline for a whole review; below the webhook's `timeoutSeconds`.
    pub deadline: Duration,
}

/// Largest AdmissionReview accepted (the API server's own request limit is 3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// The webhook's HTTPS routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            request_deadline,
        ))
        .with_state(state)
}

/// Reading the body and answering must finish a little after the review deadline: a client that
/// drip-feeds its body cannot hold a request open (the API server gives up at `timeoutSeconds`).
async fn request_deadline(
    State(st): State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let limit = st.deadline + Duration::from_secs(2);
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request was not complete within {:.0} s",
                limit.as_secs_f64()
            ),
        )
            .into_response(),
    }
}

async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    // Ready while a configuration is in force; a rejected reload is reported but keeps serving.
    match st.config.last_error() {
        None => (StatusCode::OK, "ok").into_response(),
        Some(e) => (
            StatusCode::OK,
            format!("ok (serving the last good configuration; the new one was rejected: {e})"),
        )
            .into_response(),
    }
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json!({"error": message}).to_string(),
    )
        .into_response()
}

async fn validate(
    State(st): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let deadline = review_deadline(st.deadline, query.as_deref());
    handle(&st, &body, false, deadline).await
}

async fn mutate(
    State(st): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let deadline = review_deadline(st.deadline, query.as_deref());
    handle(&st, &body, true, deadline).await
}

/// The review's deadline: the configured one, shortened so that the answer is sent before the API
/// server gives up at the `?timeout=` it sends (a tenth of it, at least 0.5 s, is left for the
/// answer to travel).
pub fn review_deadline(configured: Duration, query: Option<&str>) -> Duration {
    let given = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("timeout="))
        .and_then(parse_go_duration);
    match given {
        Some(t) => {
            let margin = (t / 10).max(Duration::from_millis(500));
            configured.min(t.saturating_sub(margin))
        }
        None => configured,
    }
}

/// A Go `time.Duration` string as kube-apiserver writes `?timeout=` (`10s`, `1m30s`, `500ms`).
/// `None` for anything else, or a duration over an hour.
fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (number, after) = rest.split_at(digits);
        let n: u64 = number.parse().ok()?;
        let unit_len = after
            .bytes()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        let (unit, after) = after.split_at(unit_len);
        let part = match unit {
            "h" => Duration::from_secs(n.checked_mul(3600)?),
            "m" => Duration::from_secs(n.checked_mul(60)?),
            "s" => Duration::from_secs(n),
            "ms" => Duration::from_millis(n),
            _ => return None,
        };
        total = total.checked_add(part)?;
        rest = after;
    }
    (total <= Duration::from_secs(3600)).then_some(total)
}

async fn handle(st: &AppState, body: &[u8], mutate: bool, deadline: Duration) -> Response {
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
    let (answer, eval) = evaluate::barrier(decide(st, &review, mutate, deadline), |what| {
        st.metrics.internal_error();
        (internal_error(&review, &what), None)
    })
    .await;
    let decision = match &eval {
        None if answer.pointer("/response/allowed") == Some(&Value::Bool(false)) => {
            Decision::Denied
        }
        None => Decision::Allowed,
        Some(e) if !e.allowed() => Decision::Denied,
        Some(e) if !e.warnings.is_empty() => Decision::Warned,
        Some(_) => Decision::Allowed,
    };
    let mode = eval.as_ref().and_then(review_mode);
    let seconds = started.elapsed().as_secs_f64();
    st.metrics.admission(
        &review.kind.kind,
        review.operation.as_str(),
        decision,
        mode,
        seconds,
    );
    log_review(&review, eval.as_ref(), decision, seconds);
    (StatusCode::OK, axum::Json(answer)).into_response()
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
                    .map(|c| format!("image {:?} (container {:?})", c.image, c.container))
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
    let what = evaluate::panic_text(panic);
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

/// The mode that decided: the strictest mode among the images' policies that failed, else the
/// strictest among verifying policies.
fn review_mode(e: &Evaluation) -> Option<Mode> {
    let rank = |m: Mode| match m {
        Mode::Enforce => 3,
        Mode::Warn => 2,
        Mode::Audit => 1,
    };
    let verifying = e
        .decisions
        .iter()
        .filter(|d| d.decision.trust_root.is_some());
    let failed = verifying.clone().filter(|d| d.decision.failed());
    failed
        .map(|d| d.decision.mode)
        .max_by_key(|m| rank(*m))
        .or_else(|| verifying.map(|d| d.decision.mode).max_by_key(|m| rank(*m)))
}

/// Decides one parsed review. `None` for the evaluation when nothing needed verifying.
async fn decide(
    st: &AppState,
    review: &Review,
    mutate: bool,
    deadline: Duration,
) -> (Value, Option<Evaluation>) {
    let uid = review.uid.as_str();
    let workload = match admission::images(review) {
        Ok(w) => w,
        Err(e) => {
            // About the object (say, a container without an image): deny, fail closed.
            return (
                admission::denied(uid, e.to_string(), Vec::new(), BTreeMap::new()),
                None,
            );
        }
    };
    let to_verify = admission::images_to_verify(review, &workload);
    if to_verify.is_empty() {
        return (admission::allowed(uid, Vec::new(), BTreeMap::new()), None);
    }
    let namespace = review.namespace.clone().unwrap_or_default();
    let images: Vec<ContainerImage> = to_verify
        .iter()
        .map(|c| ContainerImage {
            container: c.container.clone(),
            image: c.image.clone(),
        })
        .collect();
    let verifier = st.config.verifier();
    let eval = evaluate(
        &verifier,
        &st.namespaces,
        &st.limit,
        &namespace,
        &images,
        OffsetDateTime::now_utc(),
        deadline,
    )
    .await;
    record_verifications(&st.metrics, &eval);
    let audit = eval.audit.clone();
    let answer = match &eval.denial {
        Some(message) => admission::denied(uid, message.clone(), eval.warnings.clone(), audit),
        None if mutate => admission::patch_response(
            uid,
            pin_digests(&workload, &to_verify, &eval),
            eval.warnings.clone(),
            audit,
        ),
        None => admission::allowed(uid, eval.warnings.clone(), audit),
    };
    (answer, Some(eval))
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
        if let Outcome::Verified(t) = &d.decision.outcome
            && let Ok(r) = crate::reference::Reference::parse(&c.image)
            && r.digest().is_none()
        {
            ops.push(json!({
                "op": "replace",
                "path": pods.image_pointer(c),
                "value": r.with_digest(t.digest().clone()).to_string(),
            }));
        }
    }
    Value::Array(ops)
}

fn record_verifications(metrics: &Metrics, eval: &Evaluation) {
    for d in &eval.decisions {
        let x = &d.decision;
        let Some(root) = &x.trust_root else { continue };
        let reason = match &x.outcome {
            Outcome::Failed(e) => Some(e.reason()),
            _ => None,
        };
        if reason == Some(crate::trust::Reason::Internal) {
            metrics.internal_error();
        }
        metrics.verification(
            root,
            VerificationResult::of(reason),
            x.reason_label(),
            CacheOutcome::from_hit(x.cache_hit),
            x.seconds,
        );
    }
}

/// One structured line per review.
fn log_review(review: &Review, eval: Option<&Evaluation>, decision: Decision, seconds: f64) {
    if !tracing::enabled!(tracing::Level::INFO) {
        return;
    }
    let images = ImagesJson(eval.map(|e| e.decisions.as_slice()).unwrap_or_default());
    tracing::info!(
        uid = %review.uid,
        namespace = review.namespace.as_deref().unwrap_or(""),
        kind = %review.kind.kind,
        name = review.name.as_deref().unwrap_or(""),
        operation = review.operation.as_str(),
        dry_run = review.dry_run,
        decision = decision.as_str(),
        duration_ms = seconds * 1e3,
        images_json = %images,
        "admission review"
    );
}

/// A review's images as a compact JSON array, written straight into the log line (no
/// intermediate `Value` or string: this runs for every review).
struct ImagesJson<'a>(&'a [evaluate::ContainerDecision]);

impl fmt::Display for ImagesJson<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('[')?;
        for (i, d) in self.0.iter().enumerate() {
            let x = &d.decision;
            if i > 0 {
                f.write_char(',')?;
            }
            write!(
                f,
                r#"{{"container":{},"image":{},"policy":{},"mode":"{}""#,
                JsonStr(&d.container),
                JsonStr(&x.image),
                JsonStr(x.policy_label()),
                x.mode.as_str(),
            )?;
            match &x.outcome {
                Outcome::Verified(t) => write!(f, r#","digest":"{}""#, t.digest())?,
                _ => f.write_str(r#","digest":null"#)?,
            }
            if x.failed() {
                write!(
                    f,
                    r#","verdict":"{}","reason":{}}}"#,
                    x.reason_label(),
                    JsonStr(&x.reason_text())
                )?;
            } else {
                f.write_str(r#","verdict":"ok","reason":null}"#)?;
            }
        }
        f.write_char(']')
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_api_servers_timeout_bounds_the_review_deadline() {
        let eight = Duration::from_secs(8);
        let d = |q: &str| review_deadline(eight, Some(q));
        assert_eq!(d("timeout=10s"), Duration::from_secs(8));
        assert_eq!(d("timeout=5s"), Duration::from_millis(4500));
        assert_eq!(d("timeout=1s"), Duration::from_millis(500));
        assert_eq!(d("x=1&timeout=30s"), eight);
        assert_eq!(d("timeout=1m30s"), eight);
        assert_eq!(d("timeout=2500ms"), Duration::from_millis(2000));
        assert_eq!(d("timeout=100ms"), Duration::ZERO);
        for ignored in [
            "timeout=",
            "timeout=10",
            "timeout=-1s",
            "timeout=1.5s",
            "timeout=99999999999999999999h",
            "timeout=2h",
        ] {
            assert_eq!(d(ignored), eight, "{ignored}");
        }
        assert_eq!(review_deadline(eight, None), eight);
    }

    #[test]
    fn an_empty_image_list_is_an_empty_array() {
        assert_eq!(ImagesJson(&[]).to_string(), "[]");
    }
}
