//! The HTTPS server: a serving certificate reloaded from disk, an accept loop for HTTP/1.1 with
//! keep-alive (what kube-apiserver speaks to webhooks) and HTTP/2, graceful draining, and the admin
//! (metrics) endpoints.

mod accept;
mod admin;
mod dev;
mod tls;

pub use accept::{serve, serve_plain};
pub use admin::{healthz, metrics_router, record_tls_reloads};
pub use dev::dev_certificate;
pub use tls::{ReloadEvent, ReloadingCert, TlsError, not_after_unix, tls_config};
