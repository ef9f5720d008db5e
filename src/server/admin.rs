//! Admin endpoints served on the plain-HTTP metrics listener.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::{Metrics, OPENMETRICS_CONTENT_TYPE, ReloadResult};

use super::ReloadEvent;

/// `GET /metrics`: every signgate metric family in the OpenMetrics text format; `GET /healthz`.
pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .with_state(metrics)
}

/// `GET /healthz` (liveness), on the webhook's and the metrics listener: the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

async fn metrics_handler(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    ([(CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], metrics.encode())
}

/// An observer for [`super::ReloadingCert::on_reload`] that records serving certificate reloads in
/// `metrics` (`signgate_tls_certificate_reloads_total`, and the new NotAfter in
/// `signgate_tls_certificate_expiry_timestamp_seconds`). Set the initial expiry with
/// [`Metrics::tls_expiry`] after loading.
pub fn record_tls_reloads(
    metrics: Arc<Metrics>,
) -> impl Fn(&ReloadEvent<'_>) + Send + Sync + 'static {
    move |event| match event {
        ReloadEvent::Reloaded { not_after_unix } => {
            metrics.tls_expiry(*not_after_unix);
            metrics.tls_reload(ReloadResult::Success);
        }
        ReloadEvent::Rejected { .. } => metrics.tls_reload(ReloadResult::Failure),
    }
}
