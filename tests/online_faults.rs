//! Online verification against a misbehaving server of our own (`faults::Server`): the per-request
//! deadline, the size caps, no redirects, content types that do not matter, and the registry's
//! digest check. Every case is bounded in time: each call runs under a 10 s watchdog, the deadline
//! is 1 s, and each server is aborted when the test ends.
//!
//! The hostile notary server picks its behaviour from the GUN's last component in
//! `/v2/<GUN>/_trust/tuf/<file>`: `stall`, `drip`, `endless`, `huge`, `redirect`; the real GUN of the
//! interop fixtures is served from `tests/fixtures/interop/signed`, with `Content-Type: text/html`.

mod common;
mod faults;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::interop_signed;
use faults::{Reply, Server, ca_pem, sha256_digest};
use sha2::{Digest as _, Sha256};
use signgate::metrics::Metrics;
use signgate::notary::{Limits, PinnedKey, Reason, RoleRule, TrustError, VerifiedTarget};
use signgate::reference::Reference;
use signgate::upstream::{
    CacheSettings, FetchError, NotaryClient, NotaryServer, RegistrySettings, Resolved, Resolver,
    TrustRootClient,
};
use signgate::verifier;
use time::OffsetDateTime;

/// The per-request deadline of the notary client and the resolver's timeout.
const DEADLINE: Duration = Duration::from_secs(1);
/// Slack over the deadline for scheduling, TLS and a loaded CI machine.
const MARGIN: Duration = Duration::from_millis(1000);
/// No single call may take longer than this, whatever the code under test does.
const WATCHDOG: Duration = Duration::from_secs(10);

const FIXTURE_GUN: &str = "registry.ai-team.internal/ml/pytorch-cuda";
const ZERO_DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

// -------------------------------------------------------------------------------------------
// fixtures

fn signed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/interop/signed")
}

fn cases() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/interop/cases.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The `now` the signed fixtures are valid at.
fn fixture_now() -> OffsetDateTime {
    interop_signed().now
}

fn fixture_pins() -> Vec<PinnedKey> {
    interop_signed().pins
}

/// The files a notary server serves for the signed fixture GUN, by the name the client asks for:
/// roots and the timestamp by name, snapshot, targets and delegations also by hash.
fn fixture_files() -> BTreeMap<String, Vec<u8>> {
    let mut files = interop_signed().files;
    let by_hash: Vec<(String, Vec<u8>)> = files
        .iter()
        .filter(|(name, _)| !name.contains("root") && *name != "timestamp.json")
        .map(|(name, bytes)| {
            let stem = name.strip_suffix(".json").unwrap();
            let hex = hex::encode(Sha256::digest(bytes));
            (format!("{stem}.{hex}.json"), bytes.clone())
        })
        .collect();
    files.extend(by_hash);
    files
}

// -------------------------------------------------------------------------------------------
// the hostile notary server

/// `/v2/<GUN>/_trust/tuf/<file>` → (GUN, file).
fn notary_path(path: &str) -> Option<(&str, &str)> {
    path.strip_prefix("/v2/")?.split_once("/_trust/tuf/")
}

fn text_plain() -> Vec<(String, String)> {
    vec![("Content-Type".into(), "text/plain".into())]
}

/// Behaviour by the GUN's last component; `redirect_to` is the origin a `redirect` GUN points at.
fn hostile_notary(redirect_to: Option<String>) -> impl Fn(&str) -> Reply + Send + Sync + 'static {
    let files = Arc::new(fixture_files());
    move |path| {
        let Some((gun, file)) = notary_path(path) else {
            return Reply::not_found();
        };
        match gun.rsplit('/').next().unwrap_or_default() {
            "stall" => Reply::Stall,
            "drip" => Reply::Drip {
                headers: text_plain(),
                every: Duration::from_millis(200),
            },
            "endless" if file == "root.json" => Reply::Endless {
                headers: text_plain(),
            },
            "huge" => Reply::HeadersThenStall {
                headers: vec![
                    ("Content-Type".into(), "text/plain".into()),
                    ("Content-Length".into(), "100000000000".into()),
                ],
            },
            "redirect" => match &redirect_to {
                Some(origin) => Reply::Full {
                    status: 302,
                    headers: vec![(
                        "Location".into(),
                        format!("{origin}/v2/{FIXTURE_GUN}/_trust/tuf/{file}"),
                    )],
                    body: Vec::new(),
                },
                None => Reply::not_found(),
            },
            _ if gun == FIXTURE_GUN => match files.get(file) {
                // notary-server says text/plain; signgate must not care either way.
                Some(bytes) => Reply::full(200, "text/html; charset=utf-8", bytes.clone()),
                None => Reply::not_found(),
            },
            _ => Reply::not_found(),
        }
    }
}

// -------------------------------------------------------------------------------------------
// clients

fn notary_client(url: &str) -> NotaryClient {
    NotaryClient::new(
        NotaryServer {
            url: url.to_owned(),
            ca_pem: Some(ca_pem()),
            credentials: None,
            request_timeout: DEADLINE,
        },
        Arc::new(Metrics::new()),
    )
    .unwrap()
}

fn trust_root(url: &str) -> TrustRootClient {
    TrustRootClient::new(
        "faults",
        notary_client(url),
        fixture_pins(),
        Limits::default(),
        CacheSettings::default(),
    )
}

fn resolver() -> Resolver {
    Resolver::new(
        HashMap::new(),
        RegistrySettings {
            ca_pem: Some(ca_pem()),
            credentials: None,
        },
        DEADLINE,
        Duration::ZERO,
        Arc::new(Metrics::new()),
    )
}

/// Runs `fut` under the watchdog; returns its output and how long it took.
async fn timed<T>(what: &str, fut: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let out = tokio::time::timeout(WATCHDOG, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: still running after {WATCHDOG:?}"));
    let took = started.elapsed();
    eprintln!("{what}: {:.0} ms", took.as_secs_f64() * 1e3);
    (out, took)
}

/// `verifier::verify_image` of a digest-only reference (so the registry is not asked).
async fn verify(
    trust: &TrustRootClient,
    image: &str,
) -> (Result<VerifiedTarget, TrustError>, Duration) {
    let reference = Reference::parse(image).unwrap();
    let registry = resolver();
    timed(
        &format!("verify_image({image})"),
        verifier::verify_image(
            trust,
            &registry,
            &reference,
            &RoleRule::Docker,
            fixture_now(),
        ),
    )
    .await
}

fn refused(r: Result<VerifiedTarget, TrustError>) -> TrustError {
    match r {
        Ok(t) => panic!("expected a refusal, got trusted {}", t.digest()),
        Err(e) => {
            eprintln!("  refused: {}: {e}", e.reason());
            e
        }
    }
}

/// `elapsed` is the deadline, give or take scheduling: not early (the deadline is what stopped
/// it) and not much later.
fn assert_deadline(what: &str, elapsed: Duration) {
    assert!(
        elapsed >= DEADLINE - Duration::from_millis(50) && elapsed <= DEADLINE + MARGIN,
        "{what}: took {elapsed:?}, expected the {DEADLINE:?} deadline (+ up to {MARGIN:?})"
    );
}

/// `elapsed` is well inside the deadline: nothing waited for it.
fn assert_quick(what: &str, elapsed: Duration) {
    assert!(
        elapsed < DEADLINE / 2,
        "{what}: took {elapsed:?}; it must not wait for the {DEADLINE:?} deadline"
    );
}

/// `file` of `gun` (capped at `cap`) as a [`NotaryClient`] of `server` gets it, timed as
/// `NotaryClient::get(<the GUN's last segment>)`.
async fn client_get(
    server: &Server,
    gun: &str,
    file: &str,
    cap: usize,
) -> (Result<Option<Vec<u8>>, FetchError>, Duration) {
    let name = gun.rsplit('/').next().unwrap_or(gun);
    let client = notary_client(&server.url());
    timed(
        &format!("NotaryClient::get({name})"),
        client.get(gun, file, cap),
    )
    .await
}

/// [`verify`] of `gun`'s image against a trust root at `server`, which must refuse it: the
/// refusal and how long it took.
async fn verify_refused(server: &Server, gun: &str) -> (TrustError, Duration) {
    let trust = trust_root(&server.url());
    let (got, took) = verify(&trust, &image(gun)).await;
    (refused(got), took)
}

fn image(gun: &str) -> String {
    format!("{gun}@{ZERO_DIGEST}")
}

// -------------------------------------------------------------------------------------------
// 1–3: the deadline

/// 1. The TLS handshake completes, the request arrives, no answer ever comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out_at_the_deadline() {
    let server = Server::tls(hostile_notary(None)).await;
    let gun = "faults.test/ml/stall";

    let (got, took) = client_get(&server, gun, "root.json", Limits::default().root).await;
    assert!(matches!(got, Err(FetchError::Timeout { .. })), "{got:?}");
    assert_deadline("NotaryClient::get(stall)", took);
    // The client hung up at its deadline: the stalled connection ended.
    let served = server
        .wait_served("/stall/", Duration::from_secs(2))
        .await
        .expect("the client never closed the stalled connection");
    assert_eq!(served.body_bytes, 0);

    let (err, took) = verify_refused(&server, gun).await;
    assert_deadline("verify_image(stall)", took);
    assert_eq!(
        server.requests(),
        vec![format!("/v2/{gun}/_trust/tuf/root.json"); 2],
        "one request each, then nothing"
    );
    assert_eq!(err.reason(), Reason::Timeout, "{err}");
}

/// 2. TCP accepted, then silence: the TLS handshake never completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_tls_handshake_times_out_at_the_deadline() {
    let server = Server::silent().await;
    let gun = "faults.test/ml/handshake";

    let (got, took) = client_get(&server, gun, "root.json", Limits::default().root).await;
    assert!(matches!(got, Err(FetchError::Timeout { .. })), "{got:?}");
    assert_deadline("NotaryClient::get(handshake)", took);

    let (err, took) = verify_refused(&server, gun).await;
    assert_deadline("verify_image(handshake)", took);
    assert_eq!(
        server.accepted(),
        2,
        "one connection per attempt, no retries"
    );
    assert_eq!(err.reason(), Reason::Timeout, "{err}");
}

/// 3. Headers at once, then one body byte every 200 ms, forever: the deadline covers the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drip_fed_body_times_out_at_the_deadline() {
    let server = Server::tls(hostile_notary(None)).await;
    let gun = "faults.test/ml/drip";

    let (got, took) = client_get(&server, gun, "root.json", Limits::default().root).await;
    assert_deadline("NotaryClient::get(drip)", took);
    let served = server
        .wait_served("/drip/", Duration::from_secs(2))
        .await
        .expect("the client never closed the drip-fed connection");
    eprintln!(
        "  drip: {} bytes written before the client left",
        served.body_bytes
    );
    assert!(served.body_bytes <= 6, "{served:?}");

    let (err, took) = verify_refused(&server, gun).await;
    assert_deadline("verify_image(drip)", took);

    // The body read ran into the deadline: that is a timeout, at both levels.
    assert!(matches!(got, Err(FetchError::Timeout { .. })), "{got:?}");
    assert_eq!(err.reason(), Reason::Timeout, "{err}");
}

// -------------------------------------------------------------------------------------------
// 4–5: the size caps

/// 4. root.json never ends: refused at the 512 KiB root cap, and the client stops reading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_root_is_cut_off_at_the_cap() {
    let server = Server::tls(hostile_notary(None)).await;
    let gun = "faults.test/ml/endless";
    let (err, took) = verify_refused(&server, gun).await;
    assert_eq!(err.reason(), Reason::TooLarge, "{err}");
    assert_quick("verify_image(endless)", took);

    // The client dropped the connection: the server's writes fail soon after.
    let returned = Instant::now();
    let served = server
        .wait_served("/endless/", Duration::from_secs(3))
        .await
        .expect("the server is still writing: the client did not close the connection");
    let after = served.ended.saturating_duration_since(returned);
    eprintln!(
        "  endless: the server wrote {} KiB in all; its connection ended {:.0} ms after the refusal",
        served.body_bytes / 1024,
        after.as_secs_f64() * 1e3
    );
    assert!(
        after < Duration::from_millis(500),
        "the connection ended {after:?} after the refusal: the client kept it open"
    );
    let cap = Limits::default().root as u64;
    assert!(
        served.body_bytes > cap,
        "the cap was not reached: {served:?}"
    );
    // The cap plus what the client's socket buffer and TLS layer held (the server's own send
    // buffer is 64 KiB). A client that kept reading would take hundreds of MiB in the deadline.
    assert!(
        served.body_bytes < 4 * 1024 * 1024,
        "the server wrote {} bytes: the client kept reading past the cap",
        served.body_bytes
    );
    assert_eq!(server.requests().len(), 1);
}

/// 5. `Content-Length: 100000000000` and no body: refused from the header, without waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_content_length_is_refused_before_the_body() {
    let server = Server::tls(hostile_notary(None)).await;
    let gun = "faults.test/ml/huge";

    let (got, took) = client_get(&server, gun, "timestamp.json", Limits::default().timestamp).await;
    assert!(matches!(got, Err(FetchError::TooLarge { .. })), "{got:?}");
    assert_quick("NotaryClient::get(huge)", took);

    let (err, took) = verify_refused(&server, gun).await;
    // The server sends no body byte: reading it would have run into the deadline instead.
    assert_eq!(err.reason(), Reason::TooLarge, "{err}");
    assert_quick("verify_image(huge)", took);
}

// -------------------------------------------------------------------------------------------
// 6–7: redirects and content types

/// 6. A 302 to another origin that would serve valid trust data: not followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_not_followed() {
    // Served on `localhost`, another host than the notary URL's 127.0.0.1 (the cert covers both).
    let elsewhere = Server::tls(hostile_notary(None)).await;
    let server = Server::tls(hostile_notary(Some(format!(
        "https://localhost:{}",
        elsewhere.addr.port()
    ))))
    .await;
    let gun = "faults.test/ml/redirect";
    let (err, took) = verify_refused(&server, gun).await;
    assert_eq!(err.reason(), Reason::UpstreamError, "{err}");
    assert!(err.to_string().contains("302"), "{err}");
    assert_quick("verify_image(redirect)", took);
    assert_eq!(
        server.requests(),
        vec![format!("/v2/{gun}/_trust/tuf/root.json")]
    );
    assert_eq!(
        elsewhere.accepted(),
        0,
        "the redirect target was contacted: {:?}",
        elsewhere.requests()
    );
}

/// 7. Real notary data served as `text/html`: trusted. Also proves that signgate verifies real
/// notary data (tests/fixtures/interop/signed) fetched over HTTPS from a server of our own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_metadata_served_as_text_html_is_trusted() {
    let server = Server::tls(hostile_notary(None)).await;
    let trust = trust_root(&server.url());
    let c = cases();
    let v29 = c["cases"]["signed"]["registry"]["v2.9"]["digest"]
        .as_str()
        .unwrap();

    let (got, _) = verify(&trust, &format!("{FIXTURE_GUN}@{v29}")).await;
    let t = got.unwrap_or_else(|e| panic!("expected trusted, got {}: {e}", e.reason()));
    assert_eq!(t.digest().as_str(), v29);
    assert_eq!(t.roles(), ["targets/releases".to_owned()]);

    // What was fetched, and how: root and timestamp by name, everything else by hash; never a 404.
    let files = fixture_files();
    let fetched: Vec<String> = server
        .requests()
        .iter()
        .map(|p| notary_path(p).unwrap().1.to_owned())
        .collect();
    eprintln!("  fetched: {fetched:#?}");
    for f in &fetched {
        assert!(
            files.contains_key(f),
            "asked for {f}, which the server lacks"
        );
    }
    for want in ["root.json", "timestamp.json"] {
        assert!(fetched.iter().any(|f| f == want), "{want} not fetched");
    }
    for role in ["snapshot", "targets", "targets/releases"] {
        assert!(
            fetched
                .iter()
                .any(|f| f.starts_with(&format!("{role}.")) && f.len() == role.len() + 1 + 64 + 5),
            "{role} not fetched by hash: {fetched:?}"
        );
    }
    assert!(
        !fetched
            .iter()
            .any(|f| f == "snapshot.json" || f == "targets.json"),
        "fetched by name what must be fetched by hash: {fetched:?}"
    );
    assert_eq!(trust.requests() as usize, fetched.len());

    // The verified repository is cached: a second lookup asks nothing.
    let (got, _) = verify(&trust, &format!("{FIXTURE_GUN}@{v29}")).await;
    assert!(got.is_ok());
    assert_eq!(server.requests().len(), fetched.len());
}

// -------------------------------------------------------------------------------------------
// 8–9: the registry

const MANIFEST_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";

fn manifest() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 2,
            "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        },
        "layers": []
    }))
    .unwrap()
}

/// `/v2/` answers 200; `/v2/ml/app/manifests/<tag>` serves [`manifest`] with the right
/// `Docker-Content-Digest` for tag `good` and another manifest's digest for tag `lying`.
fn fake_registry(path: &str) -> Reply {
    let body = manifest();
    let stated = match path {
        "/v2/" => return Reply::full(200, "application/json", "{}"),
        "/v2/ml/app/manifests/good" => sha256_digest(&body),
        "/v2/ml/app/manifests/lying" => sha256_digest(b"some other manifest"),
        _ => return Reply::not_found(),
    };
    Reply::stating_digest(MANIFEST_TYPE, stated, body)
}

async fn resolve(r: &Resolver, image: &str) -> (Result<Resolved, TrustError>, Duration) {
    let reference = Reference::parse(image).unwrap();
    timed(
        &format!("Resolver::resolve({image})"),
        r.resolve(&reference),
    )
    .await
}

/// 8. The manifest body's sha256 differs from the registry's `Docker-Content-Digest`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_whose_digest_header_lies_is_a_digest_mismatch() {
    let server = Server::tls(fake_registry).await;
    let host = format!("127.0.0.1:{}", server.addr.port());
    let r = resolver();

    // Control: the same manifest with its true digest resolves (the fake registry works).
    let (got, _) = resolve(&r, &format!("{host}/ml/app:good")).await;
    let resolved = got.unwrap_or_else(|e| panic!("{}: {e}", e.reason()));
    assert_eq!(resolved.digest.as_str(), sha256_digest(&manifest()));
    assert_eq!(resolved.length, manifest().len() as u64);

    let (got, took) = resolve(&r, &format!("{host}/ml/app:lying")).await;
    let err = got.expect_err("a manifest that does not hash to its stated digest was accepted");
    eprintln!("  refused: {}: {err}", err.reason());
    eprintln!("  registry requests: {:?}", server.requests());
    assert_quick("resolve(lying)", took);
    assert!(
        server
            .requests()
            .iter()
            .any(|p| p == "/v2/ml/app/manifests/lying"),
        "{:?}",
        server.requests()
    );
    assert_eq!(err.reason(), Reason::DigestMismatch, "{err}");
}

/// 9. A registry that accepts the connection and the request and never answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_registry_times_out_at_the_deadline() {
    let server = Server::tls(|_: &str| Reply::Stall).await;
    let host = format!("127.0.0.1:{}", server.addr.port());
    let r = resolver();
    let (got, took) = resolve(&r, &format!("{host}/ml/app:v1")).await;
    let err = got.expect_err("a stalled registry resolved");
    eprintln!("  refused: {}: {err}", err.reason());
    assert_eq!(err.reason(), Reason::Timeout, "{err}");
    assert_deadline("resolve(stall)", took);
    assert!(!server.requests().is_empty());

    // A registry whose TLS handshake never completes.
    let silent = Server::silent().await;
    let host = format!("127.0.0.1:{}", silent.addr.port());
    let (got, took) = resolve(&r, &format!("{host}/ml/app:v1")).await;
    let err = got.expect_err("a registry with a stalled handshake resolved");
    eprintln!("  refused: {}: {err}", err.reason());
    assert_eq!(err.reason(), Reason::Timeout, "{err}");
    assert_deadline("resolve(handshake stall)", took);
}

/// Beyond the brief: a registry whose manifest never ends. The resolver should stop at a cap, as
/// the notary client does, instead of buffering whatever arrives until its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_manifest_is_cut_off_at_a_cap() {
    let server = Server::tls(|path: &str| match path {
        "/v2/" => Reply::full(200, "application/json", "{}"),
        _ => Reply::Endless {
            headers: vec![("Content-Type".into(), MANIFEST_TYPE.into())],
        },
    })
    .await;
    let host = format!("127.0.0.1:{}", server.addr.port());
    let r = resolver();
    let (got, took) = resolve(&r, &format!("{host}/ml/app:v1")).await;
    let err = got.expect_err("an endless manifest resolved");
    eprintln!("  refused: {}: {err}", err.reason());
    let served = server
        .wait_served("/manifests/", Duration::from_secs(3))
        .await
        .expect("the server is still writing: the resolver did not close the connection");
    eprintln!(
        "  endless manifest: the server wrote {} MiB in {:.0} ms",
        served.body_bytes / (1024 * 1024),
        took.as_secs_f64() * 1e3
    );
    assert!(
        served.body_bytes < 8 * 1024 * 1024,
        "the resolver read {} MiB of one manifest (no size cap)",
        served.body_bytes / (1024 * 1024)
    );
    assert_eq!(err.reason(), Reason::TooLarge, "{err}");
}

/// Ratify failed open on timeouts: here a review whose verification outlives the review deadline is
/// denied under an enforce policy (and only warned under a warn policy), saying why.
#[tokio::test]
async fn a_review_cut_short_by_its_deadline_fails_closed_under_its_policy() {
    let server = Server::silent().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.crt");
    std::fs::write(&ca, ca_pem()).unwrap();
    let pin = std::fs::read_to_string(signed_dir().join("root-key.pem")).unwrap();
    let pin: String = pin.lines().map(|l| format!("          {l}\n")).collect();
    let config = format!(
        "trustRoots:\n  - name: slow\n    notary:\n      url: {url}\n      caFile: {ca}\n      rootKeys:\n        - |\n{pin}policies:\n  - name: dev-warn\n    images: [\"faults.test/**\"]\n    namespaces: {{ names: [dev] }}\n    trustRoot: slow\n    mode: warn\n  - name: prod\n    images: [\"faults.test/**\"]\n    trustRoot: slow\n    mode: enforce\ndefaultAction: deny\n",
        url = server.url(),
        ca = ca.display(),
    );
    let path = dir.path().join("signgate.yaml");
    std::fs::write(&path, config).unwrap();
    let config = signgate::config::Config::load(&path).unwrap();
    let verifier = signgate::verifier::Verifier::new(
        Arc::new(config),
        signgate::verifier::VerifierSettings::default(),
    )
    .unwrap();
    let limit = Arc::new(tokio::sync::Semaphore::new(4));
    let images = vec![signgate::admission::ContainerImage {
        container: "trainer".into(),
        list: signgate::admission::ContainerList::Containers,
        index: 0,
        image: format!("faults.test/ml/stall@{ZERO_DIGEST}"),
    }];
    let deadline = Duration::from_millis(300);
    for (ns, denied) in [("prod", true), ("dev", false)] {
        let started = Instant::now();
        let eval = signgate::verifier::evaluate(
            &verifier,
            &signgate::upstream::NamespaceLabels::None,
            &limit,
            ns,
            &images,
            OffsetDateTime::now_utc(),
            deadline,
        )
        .await;
        assert!(
            started.elapsed() < deadline + MARGIN,
            "{:?}",
            started.elapsed()
        );
        assert_eq!(eval.denial.is_some(), denied, "{ns}: {eval:?}");
        let text = eval
            .denial
            .clone()
            .unwrap_or_else(|| eval.warnings.join(" "));
        assert!(text.contains("review deadline"), "{ns}: {text}");
        assert_eq!(eval.decisions[0].decision.reason_label(), "timeout");
    }
}

// -------------------------------------------------------------------------------------------
// rollback memory across a rebuilt client (a configuration reload)

/// A client built to replace another (what a configuration reload does) and seeded with its
/// rollback memory refuses a server that now serves an older root; without the memory the same
/// data would not be refused as a rollback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacing_client_remembers_what_was_trusted_and_refuses_a_rollback() {
    let rolled_back = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let files = Arc::new(fixture_files());
    let flag = Arc::clone(&rolled_back);
    let server = Server::tls(move |path| {
        let Some((gun, file)) = notary_path(path) else {
            return Reply::not_found();
        };
        let rolled = flag.load(std::sync::atomic::Ordering::SeqCst);
        let file = if rolled && file == "root.json" {
            "1.root.json"
        } else {
            file
        };
        match files.get(file) {
            Some(bytes) if gun == FIXTURE_GUN => Reply::full(200, "text/plain", bytes.clone()),
            _ => Reply::not_found(),
        }
    })
    .await;
    let v29 = cases()["cases"]["signed"]["registry"]["v2.9"]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let image = format!("{FIXTURE_GUN}@{v29}");

    let before = trust_root(&server.url());
    let (got, _) = verify(&before, &image).await;
    got.unwrap();
    let states = tokio::task::spawn_blocking(move || before.trust_states())
        .await
        .unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].0, FIXTURE_GUN);
    assert_eq!(states[0].1.version("root"), Some(2));

    // The server now answers root.json with version 1.
    rolled_back.store(true, std::sync::atomic::Ordering::SeqCst);

    let after = Arc::new(trust_root(&server.url()));
    let seeded = Arc::clone(&after);
    tokio::task::spawn_blocking(move || seeded.remember(states))
        .await
        .unwrap();
    let (got, _) = verify(&after, &image).await;
    let e = refused(got);
    assert_eq!(e.reason(), Reason::Rollback, "{e}");

    let fresh = trust_root(&server.url());
    let (got, _) = verify(&fresh, &image).await;
    if let Err(e) = got {
        assert_ne!(
            e.reason(),
            Reason::Rollback,
            "without memory there is nothing to roll back from: {e}"
        );
    }
}

// -------------------------------------------------------------------------------------------
// numbers a server sends

/// A token endpoint that states a lifetime of `u64::MAX` seconds: the lifetime is clamped, never
/// added to the clock unchecked (that panicked, and the webhook dropped the API server's
/// connection); the token is used, and the verification completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_never_expires_is_clamped_not_a_panic() {
    let origin = Arc::new(std::sync::OnceLock::<String>::new());
    let files = Arc::new(fixture_files());
    let challenged = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let (o, c) = (Arc::clone(&origin), Arc::clone(&challenged));
    let server = Server::tls(move |path| {
        if path.starts_with("/token") {
            return Reply::full(
                200,
                "application/json",
                format!(r#"{{"token":"t0k3n","expires_in":{}}}"#, u64::MAX),
            );
        }
        let Some((gun, file)) = notary_path(path) else {
            return Reply::not_found();
        };
        // Each file is first refused with a challenge, then served.
        if c.lock().unwrap().insert(path.to_owned()) {
            let realm = format!("{}/token", o.get().unwrap());
            return Reply::Full {
                status: 401,
                headers: vec![(
                    "WWW-Authenticate".into(),
                    format!(r#"Bearer realm="{realm}",service="notary-server""#),
                )],
                body: Vec::new(),
            };
        }
        match files.get(file) {
            Some(bytes) if gun == FIXTURE_GUN => Reply::full(200, "text/plain", bytes.clone()),
            _ => Reply::not_found(),
        }
    })
    .await;
    origin.set(server.url()).unwrap();
    let v29 = cases()["cases"]["signed"]["registry"]["v2.9"]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let trust = trust_root(&server.url());
    let (got, _) = verify(&trust, &format!("{FIXTURE_GUN}@{v29}")).await;
    let t = got.unwrap_or_else(|e| panic!("{}: {e}", e.reason()));
    assert_eq!(t.digest().as_str(), v29);
    let tokens = server
        .requests()
        .iter()
        .filter(|p| p.starts_with("/token"))
        .count();
    assert!(tokens >= 1, "{:?}", server.requests());
}

// -------------------------------------------------------------------------------------------
// memory kept by failed lookups, and the cache's budget

/// A notary that serves a ~500 KB `root.json` that never verifies, for any GUN.
fn bloated_notary() -> impl Fn(&str) -> Reply + Send + Sync + 'static {
    let body = format!(
        r#"{{"signed":{{"pad":"{}"}},"signatures":[]}}"#,
        "x".repeat(500_000)
    );
    move |path| match notary_path(path) {
        Some((_, "root.json")) => Reply::full(200, "text/plain", body.clone()),
        _ => Reply::not_found(),
    }
}

/// Failed lookups keep their reason, not what was downloaded for them: 40 repositories whose
/// notary serves a 500 KB unverifiable root leave about a kilobyte each in the cache (they kept
/// 500 KB each), and the cache never grows past its byte budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_lookups_keep_their_reason_not_their_downloads() {
    let server = Server::tls(bloated_notary()).await;
    let trust = trust_root(&server.url());
    for i in 0..40 {
        let (got, _) = verify(&trust, &image(&format!("bloat.test/ml/r{i}"))).await;
        let e = refused(got);
        assert_eq!(e.reason(), Reason::MalformedMetadata, "{e}");
    }
    let held = trust.cache().weighted_size();
    eprintln!(
        "  40 failed lookups hold {held} bytes in {} entries",
        trust.cache().len()
    );
    assert!(
        held < 40 * 4096,
        "40 failed lookups hold {held} bytes: the downloads were kept"
    );
    // The failure is remembered with its reason: a second lookup asks the server nothing.
    let asked = server.requests().len();
    let (got, _) = verify(&trust, &image("bloat.test/ml/r0")).await;
    assert_eq!(refused(got).reason(), Reason::MalformedMetadata);
    assert_eq!(server.requests().len(), asked);

    // A budget of 16 KiB: entries beyond it are evicted.
    let small = TrustRootClient::new(
        "faults",
        notary_client(&server.url()),
        fixture_pins(),
        Limits::default(),
        CacheSettings {
            max_bytes: 16 * 1024,
            ..CacheSettings::default()
        },
    );
    for i in 0..40 {
        let (got, _) = verify(&small, &image(&format!("bloat.test/ml/r{i}"))).await;
        refused(got);
    }
    let held = small.cache().weighted_size();
    assert!(held <= 16 * 1024, "{held} bytes held over a 16 KiB budget");
    assert!(small.cache().len() < 40, "nothing was evicted");
}

/// Verified data is reused from the cache only while nothing in it has expired: a lookup at a
/// clock past its expiry fetches and verifies again (and fails), even inside `refresh`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_trust_data_is_never_served_past_its_expiry() {
    let server = Server::tls(hostile_notary(None)).await;
    let trust = TrustRootClient::new(
        "faults",
        notary_client(&server.url()),
        fixture_pins(),
        Limits::default(),
        CacheSettings {
            refresh: Duration::from_secs(3600),
            ..CacheSettings::default()
        },
    );
    let now = fixture_now();
    let first = trust.repository(FIXTURE_GUN, now).await.unwrap();
    assert!(!first.cache_hit);
    let again = trust.repository(FIXTURE_GUN, now).await.unwrap();
    assert!(
        again.cache_hit,
        "within refresh and before expiry: a cache hit"
    );
    // A second past the earliest `expires` in it (the timestamp's, as a rule).
    let earliest = first
        .repo
        .expiries()
        .into_iter()
        .map(|(_, t)| t)
        .min()
        .unwrap();
    let later = earliest + time::Duration::seconds(1);
    match trust.repository(FIXTURE_GUN, later).await {
        Ok(l) => panic!(
            "trust data served a second after it expired at {earliest} (cache hit: {})",
            l.cache_hit
        ),
        Err(e) => assert_eq!(e.reason(), Reason::Expired, "{e}"),
    }
}

/// The review deadline covers the namespace-label lookup too: with an API server that never
/// completes the TLS handshake the namespace list never arrives, and a review cannot be held past
/// its deadline for it. Only the image whose policy depends on the labels fails closed, saying
/// why; the other image is decided by its own policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_api_server_cannot_hold_a_review_past_its_deadline() {
    use rustls::pki_types::pem::PemObject as _;
    let api = Server::silent().await;
    let mut kube_config = kube::Config::new(api.url().parse().unwrap());
    kube_config.root_cert = Some(vec![
        rustls::pki_types::CertificateDer::from_pem_slice(&ca_pem())
            .unwrap()
            .to_vec(),
    ]);
    let watch = signgate::upstream::NamespaceWatch::new(
        signgate::upstream::namespaces::Connect::Client(
            kube::Client::try_from(kube_config).unwrap(),
        ),
        Arc::new(Metrics::new()),
    );
    watch.start(true);
    let namespaces = signgate::upstream::NamespaceLabels::Cluster(watch);
    let verifier = faults::verifier_for(
        "trustRoots: []\npolicies:\n  - { name: prod-only, images: [\"faults.test/ml/**\"], namespaces: { matchLabels: { env: prod } }, action: allow }\ndefaultAction: allow\n",
    );
    let image = |container: &str, index, image: &str| signgate::admission::ContainerImage {
        container: container.into(),
        list: signgate::admission::ContainerList::Containers,
        index,
        image: image.into(),
    };
    let images = vec![
        image("trainer", 0, "faults.test/ml/x:v1"),
        image("sidecar", 1, "faults.test/tools/y:v1"),
    ];
    let deadline = Duration::from_millis(300);
    let (eval, took) = timed(
        "evaluate with a stalled API server",
        signgate::verifier::evaluate(
            &verifier,
            &namespaces,
            &Arc::new(tokio::sync::Semaphore::new(4)),
            "prod",
            &images,
            OffsetDateTime::now_utc(),
            deadline,
        ),
    )
    .await;
    assert!(
        took < deadline + Duration::from_millis(700),
        "the review took {took:?} against a {deadline:?} deadline"
    );
    let denial = eval
        .denial
        .expect("a review whose labels are unknown was allowed");
    assert!(denial.contains("namespace \"prod\""), "{denial}");
    assert_eq!(eval.decisions[0].decision.reason_label(), "timeout");
    assert!(
        !eval.decisions[1].decision.failed(),
        "an image whose policy needs no labels failed: {:?}",
        eval.decisions[1].decision.reason_text()
    );
}
