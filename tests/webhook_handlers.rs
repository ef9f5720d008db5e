//! The webhook's HTTP handlers in process, through `Router::oneshot`: what only the process-level
//! tests covered before (a malformed body is HTTP 400, `/mutate` pins a verified tag to its
//! digest and `/validate` admits the pinned Pod, the API server's `?timeout=` bounds a review,
//! `/readyz` names a refused configuration). Trust data is an offline bundle signed in the test;
//! the registry is a small in-process HTTPS server (`faults::Server`).

mod common;
mod faults;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use tower::ServiceExt as _;

use common::{Repo, days, rfc3339, target};
use faults::{Reply, Server};
use signgate::metrics::Metrics;
use signgate::runtime::ConfigState;
use signgate::upstream::NamespaceLabels;
use signgate::verifier::VerifierSettings;
use signgate::webhook::{self, AppState};

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

/// A registry on 127.0.0.1 serving `MANIFEST` for `ml/x:v1` (and stalling on `ml/stall`), an
/// offline bundle signing `v1` with that manifest's digest, valid now, and a configuration
/// enforcing it; the router over it.
struct Lab {
    _dir: tempfile::TempDir,
    config_path: std::path::PathBuf,
    registry: Server,
    host: String,
    digest: String,
    router: axum::Router,
    config: Arc<ConfigState>,
    metrics: Arc<Metrics>,
}

async fn lab() -> Lab {
    let registry = Server::tls(|path| {
        if path.contains("/ml/stall/") {
            Reply::Stall
        } else if path.ends_with("/ml/x/manifests/v1") {
            Reply::full(200, "application/vnd.oci.image.manifest.v1+json", MANIFEST)
        } else {
            Reply::not_found()
        }
    })
    .await;
    let host = registry
        .url()
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_owned();
    let digest_hex = hex::encode(Sha256::digest(MANIFEST));
    let dir = tempfile::tempdir().unwrap();
    let bundles = dir.path().join("bundles");
    let mut pem = String::new();
    for repo in ["ml/x", "ml/stall"] {
        let mut r = Repo::for_gun(&format!("{host}/{repo}"));
        // Valid at the wall clock the handlers use.
        let now = OffsetDateTime::now_utc();
        r.delegations.get_mut("targets/releases").unwrap()["targets"]["v1"] =
            target(&digest_hex, MANIFEST.len() as u64);
        for role in [&mut r.targets, &mut r.snapshot, &mut r.timestamp] {
            role["expires"] = json!(rfc3339(now + days(30)));
        }
        for body in r.delegations.values_mut() {
            body["expires"] = json!(rfc3339(now + days(30)));
        }
        r.write_bundle(&bundles);
        pem = r.root_cert_pem();
    }
    std::fs::write(dir.path().join("registry-ca.pem"), faults::ca_pem()).unwrap();
    std::fs::write(dir.path().join("root.pem"), pem).unwrap();
    let config_path = dir.path().join("signgate.yaml");
    std::fs::write(&config_path, config_text(&host)).unwrap();
    let settings = VerifierSettings::default();
    let metrics = Arc::clone(&settings.metrics);
    let config = Arc::new(ConfigState::load(&config_path, settings).unwrap());
    let router = webhook::router(Arc::new(AppState {
        config: Arc::clone(&config),
        metrics: Arc::clone(&metrics),
        namespaces: NamespaceLabels::None,
        limit: Arc::new(tokio::sync::Semaphore::new(8)),
        deadline: Duration::from_secs(8),
    }));
    Lab {
        _dir: dir,
        config_path,
        registry,
        host,
        digest: format!("sha256:{digest_hex}"),
        router,
        config,
        metrics,
    }
}

fn config_text(host: &str) -> String {
    format!(
        "trustRoots:
  - name: ml
    notary:
      rootKeyFiles: [root.pem]
      offlineDir: bundles
registries:
  - host: \"{host}\"
    caFile: registry-ca.pem
policies:
  - name: ml-prod
    images: [\"{host}/ml/**\"]
    trustRoot: ml
defaultAction: deny
"
    )
}

fn pod_review(image: &str) -> Vec<u8> {
    pod_review_of(&[("trainer", image)])
}

/// A Pod CREATE review whose containers are `(name, image)`.
fn pod_review_of(containers: &[(&str, &str)]) -> Vec<u8> {
    let containers: Vec<Value> = containers
        .iter()
        .map(|(name, image)| json!({"name": name, "image": image}))
        .collect();
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "b7e1c6a4-0f1e-4c55-9d3a-1c2b3d4e5f60",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "trainer",
            "namespace": "ml-prod",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:ml:ci"},
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "trainer", "namespace": "ml-prod"},
                "spec": {"containers": containers}
            },
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    }))
    .unwrap()
}

/// `POST path` with `body` as the API server sends it; the status and the body.
async fn post(router: &axum::Router, path: &str, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    let req = Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, bytes.to_vec())
}

async fn get(router: &axum::Router, path: &str) -> (StatusCode, String) {
    let req = Request::get(path).body(Body::empty()).unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

fn response(body: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(v["kind"], "AdmissionReview");
    v["response"].clone()
}

#[tokio::test]
async fn a_body_that_is_not_an_admission_review_is_http_400_with_a_message() {
    let lab = lab().await;
    for (body, says) in [
        (b"{not json".to_vec(), "JSON"),
        (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(), "request"),
        (
            br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}"#
                .to_vec(),
            "v1beta1",
        ),
    ] {
        for path in ["/validate", "/mutate"] {
            let (status, answer) = post(&lab.router, path, body.clone()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
            let v: Value = serde_json::from_slice(&answer).unwrap();
            let message = v["error"].as_str().unwrap();
            assert!(message.contains(says), "{path}: {message}");
        }
    }
}

#[tokio::test]
async fn mutate_pins_a_verified_tag_and_validate_admits_the_pinned_pod() {
    let lab = lab().await;
    let image = format!("{}/ml/x:v1", lab.host);
    let (status, answer) = post(&lab.router, "/mutate", pod_review(&image)).await;
    let verifications = |m: &Metrics| -> u64 {
        m.encode()
            .lines()
            .filter(|l| l.starts_with("signgate_verifications_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    assert_eq!(verifications(&lab.metrics), 1);
    assert_eq!(status, StatusCode::OK);
    let r = response(&answer);
    assert_eq!(r["allowed"], true, "{r}");
    assert_eq!(r["patchType"], "JSONPatch");
    let patch: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(r["patch"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let pinned = format!("{image}@{}", lab.digest);
    assert_eq!(
        patch,
        json!([{"op": "replace", "path": "/spec/containers/0/image", "value": pinned}])
    );

    // The validating pass after the mutation sees the pinned reference and admits it, without a
    // patch; the tag pinned to another digest is denied.
    let (_, answer) = post(&lab.router, "/validate", pod_review(&pinned)).await;
    let r = response(&answer);
    assert_eq!(r["allowed"], true, "{r}");
    assert!(r.get("patch").is_none());
    let other = format!("{image}@sha256:{}", "0".repeat(64));
    // Three containers naming one image: one decision, one verification counted.
    let (_, answer) = post(
        &lab.router,
        "/validate",
        pod_review_of(&[("a", &pinned), ("b", &pinned), ("c", &pinned)]),
    )
    .await;
    assert_eq!(response(&answer)["allowed"], true);
    assert_eq!(verifications(&lab.metrics), 3);
    let (_, answer) = post(&lab.router, "/validate", pod_review(&other)).await;
    let r = response(&answer);
    assert_eq!(r["allowed"], false, "{r}");
    assert_eq!(r["status"]["code"], 403);
    assert!(
        r["status"]["message"].as_str().unwrap().contains("ml-prod"),
        "{r}"
    );
}

#[tokio::test]
async fn the_api_servers_timeout_bounds_the_review_and_it_fails_closed() {
    let lab = lab().await;
    let image = format!("{}/ml/stall:v1", lab.host);
    let started = Instant::now();
    let (status, answer) = post(&lab.router, "/validate?timeout=2s", pod_review(&image)).await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    let r = response(&answer);
    assert_eq!(r["allowed"], false, "{r}");
    let message = r["status"]["message"].as_str().unwrap();
    assert!(message.contains(&image), "{message}");
    // 2 s less the answer's margin (0.5 s): denied before the API server would give up.
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_millis(2000),
        "took {took:?}"
    );
    assert!(lab.registry.accepted() > 0, "the registry was never asked");
}

#[tokio::test]
async fn readyz_names_a_refused_configuration_while_the_last_good_one_serves() {
    let lab = lab().await;
    assert_eq!(
        get(&lab.router, "/readyz").await,
        (StatusCode::OK, "ok".into())
    );
    assert_eq!(
        get(&lab.router, "/healthz").await,
        (StatusCode::OK, "ok".into())
    );
    let good = std::fs::read_to_string(&lab.config_path).unwrap();
    std::fs::write(&lab.config_path, format!("{good}bogus: 1\n")).unwrap();
    let config = Arc::clone(&lab.config);
    tokio::task::spawn_blocking(move || config.reload())
        .await
        .unwrap();
    let (status, text) = get(&lab.router, "/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains("rejected") && text.contains("bogus"),
        "{text}"
    );
    // Still serving the last good configuration.
    let image = format!("{}/ml/x:v1", lab.host);
    let (_, answer) = post(&lab.router, "/validate", pod_review(&image)).await;
    assert_eq!(response(&answer)["allowed"], true);
    // Putting the file back clears the report.
    std::fs::write(&lab.config_path, good).unwrap();
    let config = Arc::clone(&lab.config);
    tokio::task::spawn_blocking(move || config.reload())
        .await
        .unwrap();
    assert_eq!(
        get(&lab.router, "/readyz").await,
        (StatusCode::OK, "ok".into())
    );
    assert!(Path::new(&lab.config_path).exists());
}
