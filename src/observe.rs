//! The process's metrics, reachable from the IO layer without threading a handle through every
//! constructor. Installed once by `signgate serve`; the CLI records nothing.

use std::sync::{Arc, OnceLock};

use crate::metrics::Metrics;

static METRICS: OnceLock<Arc<Metrics>> = OnceLock::new();

/// Installs the metrics (the first call wins).
pub fn install(metrics: Arc<Metrics>) {
    let _ = METRICS.set(metrics);
}

/// The installed metrics, if any.
pub fn metrics() -> Option<&'static Arc<Metrics>> {
    METRICS.get()
}
