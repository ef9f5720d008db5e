//! The floor for `scripts/bench`: a bare webhook on signgate's own HTTP stack (the same rustls
//! config from `server::tls_config`, the same hyper accept loop `server::serve`, axum) that reads
//! the AdmissionReview body, JSON-parses it, and answers a fixed allowed AdmissionReview echoing
//! the uid. No policy, no verification, no metrics, no logging: what the stack costs on its own.
//!
//!   bench_floor --listen 127.0.0.1:PORT --tls-cert server.crt --tls-key server.key

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use signgate::server::{ReloadingCert, serve, tls_config};

async fn validate(body: Bytes) -> Response {
    let review: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let uid = review["request"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    axum::Json(json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": uid, "allowed": true}
    }))
    .into_response()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut listen, mut cert, mut key) = (None, None, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => listen = args.next(),
            "--tls-cert" => cert = args.next(),
            "--tls-key" => key = args.next(),
            other => panic!("unknown argument {other}"),
        }
    }
    let (listen, cert, key) = (listen.unwrap(), cert.unwrap(), key.unwrap());
    // The same runtime flavour signgate serve uses (multi-thread, one worker per core).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let resolver = Arc::new(ReloadingCert::load(&cert, &key).unwrap());
        let tls = Arc::new(tls_config(resolver).unwrap());
        let app = Router::new()
            .route("/validate", post(validate))
            .route("/healthz", get(|| async { "ok" }));
        let listener = tokio::net::TcpListener::bind(&listen).await.unwrap();
        println!("listening on {}", listener.local_addr().unwrap());
        serve(
            listener,
            tls,
            app,
            std::future::pending::<()>(),
            Duration::from_secs(1),
        )
        .await;
    });
}
