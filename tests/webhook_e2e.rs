//! The webhook end to end, as kube-apiserver calls it: `signgate serve` as a process, real TLS with
//! the CA bundle, HTTP/1.1 keep-alive (ALPN pinned to http/1.1) and HTTP/2, `POST
//! /validate?timeout=10s` with AdmissionReview v1 bodies, against the real registry and notary
//! server of the harness.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[allow(unused_imports)]
mod harness;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::{Lab, Pushed};
use serde_json::{Value, json};

struct Serve {
    child: Child,
    url: String,
    metrics_url: String,
    log: PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_serve(lab: &Lab, config: &Path, dir: &Path) -> Serve {
    let (port, mport) = (free_port(), free_port());
    let log = dir.join("serve.log");
    let child = Command::new(env!("CARGO_BIN_EXE_signgate"))
        .args(["serve", "--log-format", "json", "--config"])
        .arg(config)
        .arg("--tls-cert")
        .arg(lab.dir().join("pki/server.crt"))
        .arg("--tls-key")
        .arg(lab.dir().join("pki/server.key"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--metrics-listen", &format!("127.0.0.1:{mport}")])
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let s = Serve {
        child,
        url: format!("https://127.0.0.1:{port}"),
        metrics_url: format!("http://127.0.0.1:{mport}"),
        log,
    };
    let client = apiserver_client(lab);
    let started = Instant::now();
    loop {
        let ok = rt().block_on(async {
            client
                .get(format!("{}/healthz", s.url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        });
        if ok {
            return s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "signgate serve did not become healthy: {}",
            std::fs::read_to_string(&s.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A client like kube-apiserver's webhook client: the CA bundle, HTTP/1.1 only, keep-alive.
fn apiserver_client(lab: &Lab) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(lab.ca_pem_path()).unwrap()).unwrap();
    reqwest::Client::builder()
        .tls_backend_rustls()
        .add_root_certificate(ca)
        .http1_only()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn h2_client(lab: &Lab) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(lab.ca_pem_path()).unwrap()).unwrap();
    reqwest::Client::builder()
        .tls_backend_rustls()
        .add_root_certificate(ca)
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn post(client: &reqwest::Client, s: &Serve, body: Vec<u8>) -> (u16, Value, reqwest::Version) {
    rt().block_on(async {
        let r = client
            .post(format!("{}/validate?timeout=10s", s.url))
            .header("content-type", "application/json")
            .header("accept", "application/json, */*")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let version = r.version();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
            version,
        )
    })
}

fn review(
    uid: &str,
    operation: &str,
    namespace: &str,
    kind: (&str, &str, &str),
    object: Value,
    old: Value,
) -> Vec<u8> {
    let (group, version, kind) = kind;
    serde_json::to_vec(&json!({
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": format!("{}s", kind.to_lowercase())},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": format!("{}s", kind.to_lowercase())},
            "name": "trainer-0",
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": "system:serviceaccount:ml:trainer", "groups": ["system:authenticated"]},
            "object": object,
            "oldObject": old,
            "dryRun": false,
            "options": null
        }
    }))
    .unwrap()
}

fn pod_spec(containers: &[(&str, &str)], init: &[(&str, &str)]) -> Value {
    let c = |list: &[(&str, &str)]| -> Vec<Value> {
        list.iter()
            .map(|(n, i)| json!({"name": n, "image": i, "resources": {"limits": {"nvidia.com/gpu": "8"}}}))
            .collect()
    };
    json!({"containers": c(containers), "initContainers": c(init), "restartPolicy": "Never"})
}

fn pod(containers: &[(&str, &str)], init: &[(&str, &str)]) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "trainer-0", "namespace": "ml-prod"}, "spec": pod_spec(containers, init)})
}

const POD: (&str, &str, &str) = ("", "v1", "Pod");

fn uid(n: u32) -> String {
    format!("705ab4f5-6393-11e8-b7cc-42010a8000{n:02}")
}

struct Setup {
    lab: Lab,
    _dir: tempfile::TempDir,
    serve: Serve,
    signed: String,
    signed_digest: Pushed,
    unsigned: String,
    other_signed: String,
}

fn setup() -> Setup {
    let lab = Lab::start();
    let notary = lab.notary();
    let gun = lab.gun("ml/pytorch-cuda");
    notary.init_docker_like(&gun);
    notary.add_delegation(&gun, "targets/releases", "releases");
    let v29 = lab.push_image("ml/pytorch-cuda", "v2.9", "pytorch 2.9 cuda 12.4");
    notary.sign(&gun, "v2.9", &v29, Some("targets/releases"));
    lab.push_image("ml/pytorch-cuda", "nightly", "unsigned nightly build");
    let gun2 = lab.gun("ml/dcgm-exporter");
    notary.init_docker_like(&gun2);
    let dcgm = lab.push_image("ml/dcgm-exporter", "3.3", "dcgm");
    notary.sign(&gun2, "3.3", &dcgm, None);

    let dir = tempfile::tempdir().unwrap();
    let host = lab.registry_host();
    let ca = lab.ca_pem_path().display().to_string();
    let pins: Vec<String> = [&gun, &gun2]
        .iter()
        .flat_map(|g| {
            let pem = std::fs::read_to_string(lab.root_key_pem(g)).unwrap();
            let mut lines = vec!["        - |".to_owned()];
            lines.extend(pem.lines().map(|l| format!("          {l}")));
            lines
        })
        .collect();
    let mut config = vec![
        "trustRoots:".to_owned(),
        "  - name: ml-platform".to_owned(),
        "    notary:".to_owned(),
        format!("      url: {}", lab.notary_url()),
        format!("      caFile: {ca}"),
        "      rootKeys:".to_owned(),
    ];
    config.extend(pins);
    config.extend([
        "registries:".to_owned(),
        format!("  - host: {host}"),
        format!("    caFile: {ca}"),
        "policies:".to_owned(),
        "  - name: ml-dev-warn".to_owned(),
        format!("    images: [\"{host}/ml/**\"]"),
        "    namespaces: { names: [ml-dev] }".to_owned(),
        "    trustRoot: ml-platform".to_owned(),
        "    mode: warn".to_owned(),
        "  - name: ml-audit".to_owned(),
        format!("    images: [\"{host}/ml/**\"]"),
        "    namespaces: { names: [ml-audit] }".to_owned(),
        "    trustRoot: ml-platform".to_owned(),
        "    mode: audit".to_owned(),
        "  - name: pytorch-gpu-prod".to_owned(),
        format!("    images: [\"{host}/ml/**\"]"),
        "    trustRoot: ml-platform".to_owned(),
        "    mode: enforce".to_owned(),
        "defaultAction: deny".to_owned(),
    ]);
    let config_path = dir.path().join("signgate.yaml");
    std::fs::write(&config_path, config.join("\n")).unwrap();
    let serve = start_serve(&lab, &config_path, dir.path());
    Setup {
        signed: format!("{gun}:v2.9"),
        unsigned: format!("{gun}:nightly"),
        other_signed: format!("{gun2}:3.3"),
        signed_digest: v29,
        serve,
        lab,
        _dir: dir,
    }
}

fn assert_envelope(resp: &Value, uid: &str) {
    assert_eq!(resp["apiVersion"], "admission.k8s.io/v1", "{resp}");
    assert_eq!(resp["kind"], "AdmissionReview", "{resp}");
    assert_eq!(resp["response"]["uid"], uid, "{resp}");
    assert!(
        resp["response"].get("patch").is_none(),
        "no patch from /validate: {resp}"
    );
}

#[test]
fn admits_signed_pods_and_denies_unsigned_ones_as_the_api_server_calls() {
    let s = setup();
    let c = apiserver_client(&s.lab);

    // A signed GPU training Pod: allowed.
    let body = review(
        &uid(1),
        "CREATE",
        "ml-prod",
        POD,
        pod(
            &[("trainer", &s.signed), ("dcgm", &s.other_signed)],
            &[("fetch-data", &s.signed)],
        ),
        Value::Null,
    );
    let (status, resp, version) = post(&c, &s.serve, body);
    assert_eq!((status, version), (200, reqwest::Version::HTTP_11));
    assert_envelope(&resp, &uid(1));
    assert_eq!(resp["response"]["allowed"], true, "{resp}");

    // An unsigned image: denied with SPEC's message.
    let body = review(
        &uid(2),
        "CREATE",
        "ml-prod",
        POD,
        pod(&[("trainer", &s.unsigned)], &[]),
        Value::Null,
    );
    let (_, resp, _) = post(&c, &s.serve, body);
    assert_envelope(&resp, &uid(2));
    assert_eq!(resp["response"]["allowed"], false, "{resp}");
    assert_eq!(resp["response"]["status"]["code"], 403);
    let msg = resp["response"]["status"]["message"].as_str().unwrap();
    assert_eq!(
        msg,
        format!(
            "image \"{}\" (container \"trainer\") denied by policy \"pytorch-gpu-prod\": no trust data for tag \"nightly\"",
            s.unsigned
        )
    );

    // One unsigned init container denies the whole Pod.
    let body = review(
        &uid(3),
        "CREATE",
        "ml-prod",
        POD,
        pod(&[("trainer", &s.signed)], &[("setup", &s.unsigned)]),
        Value::Null,
    );
    let (_, resp, _) = post(&c, &s.serve, body);
    assert_eq!(resp["response"]["allowed"], false, "{resp}");
    assert!(
        resp["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("(container \"setup\")")
    );

    // An unsigned ephemeral container added through the subresource denies.
    let old = pod(&[("trainer", &s.signed)], &[]);
    let mut new = old.clone();
    new["spec"]["ephemeralContainers"] =
        json!([{"name": "debugger", "image": s.unsigned, "targetContainerName": "trainer"}]);
    let mut body: Value =
        serde_json::from_slice(&review(&uid(4), "UPDATE", "ml-prod", POD, new, old)).unwrap();
    body["request"]["subResource"] = json!("ephemeralcontainers");
    let (_, resp, _) = post(&c, &s.serve, serde_json::to_vec(&body).unwrap());
    assert_eq!(resp["response"]["allowed"], false, "{resp}");
    assert!(
        resp["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("debugger"),
        "{resp}"
    );

    // Pod controllers: a Deployment, a Job and a CronJob template with an unsigned image.
    let template = json!({"metadata": {"labels": {"app": "x"}}, "spec": pod_spec(&[("trainer", &s.unsigned)], &[])});
    for (i, (kind, group, object)) in [
        ("Deployment", "apps", json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"replicas": 3, "template": template}})),
        ("Job", "batch", json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"}, "spec": {"template": template}})),
        ("CronJob", "batch", json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "x"}, "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": template}}}})),
    ]
    .into_iter()
    .enumerate()
    {
        let id = uid(10 + u32::try_from(i).unwrap());
        let (_, resp, _) = post(&c, &s.serve, review(&id, "CREATE", "ml-prod", (group, "v1", kind), object, Value::Null));
        assert_envelope(&resp, &id);
        assert_eq!(resp["response"]["allowed"], false, "{kind}: {resp}");
    }

    // warn: allowed with a warning; audit: allowed with an audit annotation.
    let (_, resp, _) = post(
        &c,
        &s.serve,
        review(
            &uid(20),
            "CREATE",
            "ml-dev",
            POD,
            pod(&[("trainer", &s.unsigned)], &[]),
            Value::Null,
        ),
    );
    assert_eq!(resp["response"]["allowed"], true, "{resp}");
    let warnings = resp["response"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{resp}");
    assert!(
        warnings[0].as_str().unwrap().contains("nightly")
            && warnings[0].as_str().unwrap().len() <= 256
    );
    let (_, resp, _) = post(
        &c,
        &s.serve,
        review(
            &uid(21),
            "CREATE",
            "ml-audit",
            POD,
            pod(&[("trainer", &s.unsigned)], &[]),
            Value::Null,
        ),
    );
    assert_eq!(resp["response"]["allowed"], true, "{resp}");
    assert!(resp["response"].get("warnings").is_none(), "{resp}");
    let audit = resp["response"]["auditAnnotations"].as_object().unwrap();
    assert!(
        audit
            .values()
            .any(|v| v.as_str().unwrap().contains("nightly")),
        "{resp}"
    );

    // An UPDATE that changes no image, and a DELETE, are allowed even for unsigned images.
    let unsigned_pod = pod(&[("trainer", &s.unsigned)], &[]);
    let mut relabelled = unsigned_pod.clone();
    relabelled["metadata"]["labels"] = json!({"team": "ml"});
    let (_, resp, _) = post(
        &c,
        &s.serve,
        review(
            &uid(30),
            "UPDATE",
            "ml-prod",
            POD,
            relabelled,
            unsigned_pod.clone(),
        ),
    );
    assert_eq!(resp["response"]["allowed"], true, "{resp}");
    let (_, resp, _) = post(
        &c,
        &s.serve,
        review(
            &uid(31),
            "DELETE",
            "ml-prod",
            POD,
            Value::Null,
            unsigned_pod,
        ),
    );
    assert_eq!(resp["response"]["allowed"], true, "{resp}");

    // Malformed requests get a clear 4xx and the server keeps serving.
    for (body, want) in [
        (b"{not json".to_vec(), 400),
        (serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {"uid": "x"}})).unwrap(), 400),
        (serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"operation": "CREATE"}})).unwrap(), 400),
        (vec![b' '; 4 * 1024 * 1024], 413),
    ] {
        let (status, resp, _) = post(&c, &s.serve, body);
        assert_eq!(status, want, "{resp}");
    }
    let (_, resp, _) = post(
        &c,
        &s.serve,
        review(
            &uid(40),
            "CREATE",
            "ml-prod",
            POD,
            pod(&[("trainer", &s.signed)], &[]),
            Value::Null,
        ),
    );
    assert_eq!(resp["response"]["allowed"], true, "{resp}");

    // HTTP/2 when the client offers h2.
    let (status, resp, version) = post(
        &h2_client(&s.lab),
        &s.serve,
        review(
            &uid(41),
            "CREATE",
            "ml-prod",
            POD,
            pod(&[("trainer", &s.signed)], &[]),
            Value::Null,
        ),
    );
    assert_eq!((status, version), (200, reqwest::Version::HTTP_2), "{resp}");

    // /mutate pins the verified tag to its digest.
    let body = review(
        &uid(42),
        "CREATE",
        "ml-prod",
        POD,
        pod(&[("trainer", &s.signed)], &[]),
        Value::Null,
    );
    let resp: Value = rt().block_on(async {
        c.post(format!("{}/mutate", s.serve.url))
            .body(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(resp["response"]["patchType"], "JSONPatch", "{resp}");
    use base64::Engine as _;
    let patch: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(resp["response"]["patch"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(patch[0]["path"], "/spec/containers/0/image", "{patch}");
    assert_eq!(
        patch[0]["value"],
        format!("{}@{}", s.signed, s.signed_digest.digest),
        "{patch}"
    );

    // Every SPEC metric is exposed after this traffic.
    let metrics = rt().block_on(async {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("{}/metrics", s.serve.metrics_url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    for family in [
        "signgate_admission_requests_total",
        "signgate_admission_duration_seconds",
        "signgate_verifications_total",
        "signgate_verification_duration_seconds",
        "signgate_upstream_requests_total",
        "signgate_upstream_duration_seconds",
        "signgate_cache_hits_total",
        "signgate_cache_misses_total",
        "signgate_trust_data_expiry_timestamp_seconds",
        "signgate_config_reloads_total",
        "signgate_tls_certificate_expiry_timestamp_seconds",
        "signgate_build_info",
    ] {
        assert!(
            metrics.contains(family),
            "{family} missing from /metrics:\n{metrics}"
        );
    }
    assert!(metrics.contains("decision=\"denied\""), "{metrics}");
    assert!(
        !metrics.contains("nightly"),
        "a tag leaked into a metric label"
    );

    // One structured log line per review, naming the images and verdicts.
    let log = std::fs::read_to_string(&s.serve.log).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains(&uid(2)))
        .unwrap_or_else(|| panic!("no log line for the review:\n{log}"));
    let doc: Value = serde_json::from_str(line).unwrap();
    assert_eq!(doc["decision"], "denied", "{line}");
    assert!(
        doc["images"].as_str().unwrap().contains("tag_not_signed"),
        "{line}"
    );
}

#[test]
fn sigterm_during_load_finishes_in_flight_reviews() {
    let s = setup();
    let c = apiserver_client(&s.lab);
    let body = review(
        &uid(50),
        "CREATE",
        "ml-prod",
        POD,
        pod(&[("trainer", &s.signed)], &[]),
        Value::Null,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url = format!("{}/validate?timeout=10s", s.serve.url);
    let pid = s.serve.child.id();
    let results = runtime.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..40 {
            let c = c.clone();
            let url = url.clone();
            let body = body.clone();
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(i * 5)).await;
                c.post(&url)
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            }));
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    // Every review that reached the server was answered; later ones were refused at connect,
    // never cut off mid-review.
    let answered = results.iter().filter(|r| matches!(r, Ok(200))).count();
    assert!(answered > 0, "{results:?}");
    for r in &results {
        match r {
            Ok(code) => assert_eq!(*code, 200),
            Err(e) => assert!(
                e.is_connect() || e.is_request(),
                "a review failed mid-flight: {e:?}"
            ),
        }
    }
    let mut s = s;
    let status = s.serve.child.wait().unwrap();
    assert!(status.success(), "signgate serve exited with {status}");
}
