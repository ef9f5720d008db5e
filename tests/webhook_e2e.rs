//! The webhook end to end, as kube-apiserver calls it: `signgate serve` as a process, real TLS with
//! the CA bundle, HTTP/1.1 keep-alive (ALPN pinned to http/1.1) and HTTP/2, `POST
//! /validate?timeout=10s` with AdmissionReview v1 bodies, against the real registry and notary
//! server of the harness.

#[allow(unused_imports)]
mod harness;
#[allow(unused_imports)]
mod webhook_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use webhook_support::*;

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
    let body = pod_review(
        1,
        "ml-prod",
        &[("trainer", &s.signed), ("dcgm", &s.other_signed)],
        &[("fetch-data", &s.signed)],
    );
    let (status, resp, version) = post(&c, &s.serve, body);
    assert_eq!((status, version), (200, reqwest::Version::HTTP_11));
    assert_envelope(&resp, &uid(1));
    assert_eq!(resp["response"]["allowed"], true, "{resp}");

    // An unsigned image: denied with SPEC's message.
    let body = pod_review(2, "ml-prod", &[("trainer", &s.unsigned)], &[]);
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
    let body = pod_review(
        3,
        "ml-prod",
        &[("trainer", &s.signed)],
        &[("setup", &s.unsigned)],
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
        pod_review(20, "ml-dev", &[("trainer", &s.unsigned)], &[]),
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
        pod_review(21, "ml-audit", &[("trainer", &s.unsigned)], &[]),
    );
    assert_eq!(resp["response"]["allowed"], true, "{resp}");
    assert!(resp["response"].get("warnings").is_none(), "{resp}");
    let audit = resp["response"]["auditAnnotations"].as_object().unwrap();
    // Keys the API server keeps: it records `<webhook name>/<key>`, a qualified name.
    assert!(
        audit
            .keys()
            .all(|k| !k.contains('/') && k.len() <= 63 && k.starts_with("audit-")),
        "{resp}"
    );
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
        pod_review(40, "ml-prod", &[("trainer", &s.signed)], &[]),
    );
    assert_eq!(resp["response"]["allowed"], true, "{resp}");

    // HTTP/2 when the client offers h2.
    let (status, resp, version) = post(
        &h2_client(&s.lab),
        &s.serve,
        pod_review(41, "ml-prod", &[("trainer", &s.signed)], &[]),
    );
    assert_eq!((status, version), (200, reqwest::Version::HTTP_2), "{resp}");

    // /mutate pins the verified tag to its digest.
    let body = pod_review(42, "ml-prod", &[("trainer", &s.signed)], &[]);
    let (_, resp, _) = post_to(&c, &s.serve, "/mutate", body);
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
    // The validating pass after the mutation sees the pinned reference and allows it: /mutate and
    // /validate agree, and the digest that runs is the one verified.
    let mut pinned = pod(&[("trainer", &s.signed)], &[]);
    for op in patch.as_array().unwrap() {
        assert_eq!(op["op"], "replace", "{patch}");
        *pinned.pointer_mut(op["path"].as_str().unwrap()).unwrap() = op["value"].clone();
    }
    let (_, resp, _) = post(
        &c,
        &s.serve,
        review(&uid(44), "CREATE", "ml-prod", POD, pinned, Value::Null),
    );
    assert_envelope(&resp, &uid(44));
    assert_eq!(resp["response"]["allowed"], true, "{resp}");
    // A pinned reference whose digest is not the tag's trusted one is denied by both.
    let wrong = format!("{}@{}", s.signed, s.other_digest.digest);
    for path in ["/validate?timeout=10s", "/mutate?timeout=10s"] {
        let body = pod_review(45, "ml-prod", &[("trainer", &wrong)], &[]);
        let (_, resp, _) = post_to(&c, &s.serve, path, body);
        assert_eq!(resp["response"]["allowed"], false, "{path}: {resp}");
        assert!(resp["response"].get("patch").is_none(), "{path}: {resp}");
        let msg = resp["response"]["status"]["message"].as_str().unwrap();
        assert!(
            msg.contains("trainer") && msg.contains("digest"),
            "{path}: {msg}"
        );
    }
    // In a warn namespace, /mutate pins the signed image and still warns about the unsigned one.
    let body = pod_review(
        43,
        "ml-dev",
        &[("trainer", &s.signed), ("nightly", &s.unsigned)],
        &[],
    );
    let (_, resp, _) = post_to(&c, &s.serve, "/mutate", body);
    assert_eq!(resp["response"]["allowed"], true, "{resp}");
    assert_eq!(resp["response"]["patchType"], "JSONPatch", "{resp}");
    let warnings = resp["response"]["warnings"].as_array().unwrap();
    assert!(
        warnings.len() == 1 && warnings[0].as_str().unwrap().contains("nightly"),
        "{resp}"
    );

    // Every SPEC metric is exposed after this traffic.
    let metrics = metrics_text(&s.serve);
    for family in include_str!("fixtures/metrics/spec-metrics.txt").lines() {
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
    let log = log_when(&s.serve, |log| log.contains(&uid(2)));
    let line = log
        .lines()
        .find(|l| l.contains(&uid(2)))
        .unwrap_or_else(|| panic!("no log line for the review:\n{log}"));
    let doc: Value = serde_json::from_str(line).unwrap();
    assert_eq!(doc["decision"], "denied", "{line}");
    let image = &doc["images"][0];
    assert_eq!(image["verdict"], "tag_not_signed", "{line}");
    assert_eq!(image["mode"], "enforce", "{line}");
    assert!(image["digest"].is_null(), "{line}");
    assert!(
        image["reason"].as_str().unwrap().contains("nightly"),
        "{line}"
    );
}

#[test]
fn sigterm_during_load_finishes_in_flight_reviews() {
    let s = setup();
    let c = apiserver_client(&s.lab);
    let body = pod_review(50, "ml-prod", &[("trainer", &s.signed)], &[]);
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

#[test]
fn check_evaluates_manifests_as_the_webhook_does() {
    let s = setup();
    let manifest = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: trainer, namespace: ml-prod}}\nspec:\n  template:\n    spec:\n      initContainers: [{{name: fetch, image: \"{signed}\"}}]\n      containers: [{{name: trainer, image: \"{signed}\"}}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: nightly, namespace: ml-dev}}\nspec:\n  containers: [{{name: trainer, image: \"{unsigned}\"}}]\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings}}\ndata: {{a: b}}\n",
        signed = s.signed,
        unsigned = s.unsigned
    );
    let path = s.config.with_file_name("manifest.yaml");
    std::fs::write(&path, &manifest).unwrap();
    let run = |m: &Path, ns: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_signgate"))
            .args(["check", "--output", "json", "--namespace", ns, "-f"])
            .arg(m)
            .arg("--config")
            .arg(&s.config)
            .output()
            .unwrap();
        let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (
            out.status.code(),
            lines,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, lines, err) = run(&path, "default");
    assert_eq!(code, Some(0), "{lines:?} {err}");
    let verdicts: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["verdict"].as_str().unwrap(),
                l["kind"].as_str().unwrap(),
                l["container"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        vec![
            ("allowed", "Deployment", "fetch"),
            ("allowed", "Deployment", "trainer"),
            ("warned", "Pod", "trainer")
        ]
    );
    // The same Pod without a namespace, in prod: denied, exit 1.
    let prod = manifest.replace("namespace: ml-dev", "namespace: ml-prod");
    std::fs::write(&path, prod).unwrap();
    let (code, lines, _) = run(&path, "default");
    assert_eq!(code, Some(1));
    assert_eq!(lines[2]["verdict"], "denied");
    assert_eq!(lines[2]["policy"], "pytorch-gpu-prod");
    assert!(
        lines[2]["reason"]
            .as_str()
            .unwrap()
            .contains("tag_not_signed"),
        "{:?}",
        lines[2]
    );
}

#[test]
fn serve_dev_generates_a_certificate_and_prints_its_ca_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("signgate.yaml");
    std::fs::write(
        &config,
        "trustRoots: []\npolicies: []\ndefaultAction: allow\n",
    )
    .unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_signgate"))
        .args(["serve", "--dev", "--log-format", "text", "--config"])
        .arg(&config)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let ca_path = line.trim().rsplit(' ').next().unwrap().to_owned();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca_path).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .tls_backend_rustls()
        .add_root_certificate(ca)
        .no_proxy()
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        let r = rt().block_on(async {
            client
                .get(format!("https://localhost:{port}/healthz"))
                .send()
                .await
        });
        match r {
            Ok(r) => break r.status().as_u16(),
            Err(_) if started.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => panic!("{e}"),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200, "printed: {line}");
}

#[test]
fn an_invalid_new_configuration_is_refused_and_the_last_good_one_keeps_serving() {
    let s = setup();
    let c = apiserver_client(&s.lab);
    let good = std::fs::read_to_string(&s.config).unwrap();
    let unsigned_pod = || pod_review(60, "ml-prod", &[("trainer", &s.unsigned)], &[]);
    // Broken: a policy naming a trust root that does not exist.
    std::fs::write(
        &s.config,
        good.replace(
            "trustRoot: ml-platform\n    mode: enforce",
            "trustRoot: nowhere\n    mode: enforce",
        ),
    )
    .unwrap();
    let get = |path: &str| get_text(&c, &format!("{}{path}", s.serve.url));
    let started = std::time::Instant::now();
    while !get("/readyz").contains("rejected") {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the bad configuration was never reported"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        get("/readyz").contains("nowhere"),
        "the reason names the field"
    );
    let (_, resp, _) = post(&c, &s.serve, unsigned_pod());
    assert_eq!(
        resp["response"]["allowed"], false,
        "still enforcing the last good policy: {resp}"
    );
    // A valid change is applied: allow everything under the ml/ path.
    std::fs::write(
        &s.config,
        good.replace(
            "trustRoot: ml-platform\n    mode: enforce\ndefaultAction",
            "action: allow\ndefaultAction",
        ),
    )
    .unwrap();
    let started = std::time::Instant::now();
    loop {
        let (_, resp, _) = post(&c, &s.serve, unsigned_pod());
        if resp["response"]["allowed"] == true {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the new configuration was never applied"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let metrics = metrics_text(&s.serve);
    assert!(
        metrics.contains("signgate_config_reloads_total{result=\"failure\"} 1"),
        "{metrics}"
    );
}
