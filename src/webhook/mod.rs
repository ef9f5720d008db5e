//! The admission webhook: `POST /validate` (and `/mutate`, pinning verified tags to digests),
//! `GET /healthz`, `GET /readyz`. Every parsed review gets a well-formed AdmissionReview answer
//! with HTTP 200; a body that is not one gets HTTP 400 with a message.

mod answer;
mod deadline;
mod log;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::metrics::Metrics;
use crate::runtime::ConfigState;
use crate::upstream::NamespaceLabels;

use deadline::review_deadline;

/// What the handlers share.
pub struct AppState {
    /// The configuration in force and its verifier, swapped on reload.
    pub config: Arc<ConfigState>,
    /// Where every review, image and upstream call is recorded.
    pub metrics: Arc<Metrics>,
    /// The labels of each namespace, for policies that select namespaces by label.
    pub namespaces: NamespaceLabels,
    /// Bound on concurrent image verifications across all reviews.
    pub limit: Arc<Semaphore>,
    /// Deadline for a whole review; below the webhook's `timeoutSeconds`.
    pub deadline: Duration,
}

/// Largest AdmissionReview accepted (the API server's own request limit is 3 MiB).
pub(crate) const MAX_BODY: usize = 3 * 1024 * 1024;

/// The webhook's HTTPS routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .route("/healthz", get(crate::server::healthz))
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
    // Not ready until the namespace labels a label-selecting configuration needs are listed
    // (at start; after a reload that added a selector, reported but still ready).
    let labels = match st.namespaces.ready() {
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e).into_response(),
        Ok(detail) => detail,
    };
    // Ready while a configuration is in force; a rejected reload is reported but keeps serving.
    let rejected = st
        .config
        .last_error()
        .map(|e| format!("serving the last good configuration; the new one was rejected: {e}"));
    let details: Vec<String> = rejected.into_iter().chain(labels).collect();
    if details.is_empty() {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::OK, format!("ok ({})", details.join("; "))).into_response()
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
    answer::handle(&st, &body, false, deadline).await
}

async fn mutate(
    State(st): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let deadline = review_deadline(st.deadline, query.as_deref());
    answer::handle(&st, &body, true, deadline).await
}
