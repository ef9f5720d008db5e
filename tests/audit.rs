//! What is running now (issue 27, first slice): `signgate audit` against a fake Kubernetes API
//! server on loopback HTTPS (`tests/kube_api`, Pods with `containerStatuses[].imageID`) and the
//! real registry and notary server of the harness. A signed Pod is allowed, an unsigned one denied
//! under the enforcing policy and only warned under the warn policy, a tag that now runs another
//! digest than its trusted one is denied, the exit status says whether anything would be denied,
//! Pods are listed page by page, the deadline holds while the API server is down, and many Pods of
//! one image cost the upstream what one does.

#[allow(unused_imports)]
mod faults;
#[allow(unused_imports)]
mod harness;
mod kube_api;
#[allow(unused_imports)]
mod webhook_support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kube_api::FakeApi;
use serde_json::{Value, json};
use webhook_support::*;

/// A running Pod: `containers` as (name, spec image, imageID the kubelet reports).
fn pod(
    ns: &str,
    name: &str,
    owner: Option<(&str, &str)>,
    containers: &[(&str, &str, &str)],
) -> Value {
    let owners: Vec<Value> = owner
        .iter()
        .map(|(kind, n)| json!({"apiVersion": "apps/v1", "kind": kind, "name": n, "uid": format!("uid-{n}"), "controller": true}))
        .collect();
    json!({
        "metadata": {"namespace": ns, "name": name, "ownerReferences": owners},
        "spec": {"containers": containers.iter().map(|(c, image, _)| json!({"name": c, "image": image})).collect::<Vec<_>>()},
        "status": {"phase": "Running", "containerStatuses": containers.iter().map(|(c, image, id)| json!({
            "name": c, "image": image, "imageID": id, "ready": true, "restartCount": 0})).collect::<Vec<_>>()},
    })
}

/// `signgate audit` with `args`: its exit code and its JSON lines.
fn audit(s: &Setup, kubeconfig: &str, args: &[&str]) -> (i32, Vec<Value>) {
    let out = std::process::Command::new(signgate_bin())
        .args(["audit", "--config"])
        .arg(&s.config)
        .args(["--kubeconfig", kubeconfig, "--output", "json"])
        .args(args)
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{stderr}")))
        .collect();
    (out.status.code().unwrap(), lines)
}

fn row<'a>(rows: &'a [Value], ns: &str, pod: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["namespace"] == ns && r["pod"] == pod)
        .unwrap_or_else(|| panic!("no row for {ns}/{pod} in {rows:#?}"))
}

/// A fake API server with `namespaces` (labelled `env: <name>`), a signed Job Pod `prod/train-0`
/// running v2.9 and an unsigned `ml-dev/nightly-dev`; the signed repository and v2.9's
/// `repo@digest`.
fn cluster(s: &Setup, namespaces: &[&str]) -> (FakeApi, String, String) {
    let api = FakeApi::new();
    for ns in namespaces {
        api.put(ns, &[("env", ns)]);
    }
    let repo = s.signed.split_once(':').unwrap().0.to_owned();
    let v29 = format!("{repo}@{}", s.signed_digest.digest);
    api.put_pod(pod(
        "prod",
        "train-0",
        Some(("Job", "train")),
        &[("main", &s.signed, &v29)],
    ));
    api.put_pod(pod(
        "ml-dev",
        "nightly-dev",
        None,
        &[("main", &s.unsigned, "")],
    ));
    (api, repo, v29)
}

#[test]
fn audit_reports_what_runs_now_that_the_policy_would_deny() {
    let s = setup();
    let (api, repo, v29) = cluster(&s, &["prod", "ml-dev", "batch"]);
    api.put_pod(pod(
        "prod",
        "nightly-0",
        Some(("ReplicaSet", "nightly-7d9")),
        &[("main", &s.unsigned, "")],
    ));
    // The tag v2.9 in the spec, but the node runs another manifest (a tag moved, a node-local
    // image): what runs is decided, not what the tag names.
    let moved = format!("{repo}@{}", s.other_digest.digest);
    api.put_pod(pod("prod", "moved-0", None, &[("main", &s.signed, &moved)]));
    // A finished Pod runs nothing: not listed, not reported.
    let mut done = pod(
        "prod",
        "migrate-0",
        Some(("Job", "migrate")),
        &[("main", &s.unsigned, "")],
    );
    done["status"]["phase"] = json!("Succeeded");
    api.put_pod(done);
    // More Pods than one list page holds (500).
    for i in 0..520 {
        api.put_pod(pod(
            "batch",
            &format!("w-{i}"),
            Some(("Job", "sweep")),
            &[("main", &s.signed, &v29)],
        ));
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (addr, _) = rt.block_on(api.serve_tls());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kube_api::write_kubeconfig(addr, dir.path());

    let (code, rows) = audit(&s, &kubeconfig, &[]);
    assert_eq!(code, 1, "something would be denied: {rows:#?}");
    assert_eq!(
        rows.len(),
        524,
        "one row per container of a Pod that has not finished"
    );
    assert!(
        !rows.iter().any(|r| r["pod"] == "migrate-0"),
        "a finished Pod is left out"
    );
    assert!(api.pod_lists() >= 2, "the Pods were listed in pages");

    let train = row(&rows, "prod", "train-0");
    assert_eq!(train["verdict"], "allowed", "{train}");
    assert_eq!(train["workload"], "Job/train");
    assert_eq!(train["digest"], s.signed_digest.digest.as_str());
    assert!(
        train["reason"].as_str().unwrap().contains("signed by"),
        "{train}"
    );

    let nightly = row(&rows, "prod", "nightly-0");
    assert_eq!(nightly["verdict"], "denied", "{nightly}");
    assert_eq!(nightly["workload"], "ReplicaSet/nightly-7d9");
    assert_eq!(nightly["policy"], "pytorch-gpu-prod");
    assert!(
        nightly["reason"]
            .as_str()
            .unwrap()
            .starts_with("tag_not_signed"),
        "{nightly}"
    );

    let dev = row(&rows, "ml-dev", "nightly-dev");
    assert_eq!(dev["verdict"], "warned", "{dev}");
    assert_eq!(dev["policy"], "ml-dev-warn");
    assert_eq!(dev["workload"], "Pod/nightly-dev");

    let moved_row = row(&rows, "prod", "moved-0");
    assert_eq!(moved_row["verdict"], "denied", "{moved_row}");
    assert_eq!(moved_row["digest"], s.other_digest.digest.as_str());
    assert!(
        moved_row["reason"].as_str().unwrap().starts_with("digest_"),
        "{moved_row}"
    );

    assert!(
        rows.iter()
            .filter(|r| r["namespace"] == "batch")
            .all(|r| r["verdict"] == "allowed")
    );

    // One namespace whose failures only warn: nothing would be denied.
    let (code, rows) = audit(&s, &kubeconfig, &["--namespace", "ml-dev"]);
    assert_eq!(code, 0, "{rows:#?}");
    assert_eq!(rows.len(), 1);

    // The API server down (kube's client retries a 503): the deadline ends the audit, exit 2,
    // saying so.
    api.set_down(true);
    let started = std::time::Instant::now();
    let out = std::process::Command::new(signgate_bin())
        .args(["audit", "--timeout", "3", "--config"])
        .arg(&s.config)
        .args(["--kubeconfig", &kubeconfig])
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("did not finish within 3 s"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// Many Pods of one image cost the upstream what one Pod does: the audit decides each distinct
/// (namespace, image) once, and the verifier's caches answer the rest.
#[test]
fn many_pods_of_one_image_cost_one_verification() {
    let s = setup();
    let config = signgate::config::Config::load(&s.config).unwrap();
    let verifier = signgate::verifier::Verifier::new(Arc::new(config), Default::default()).unwrap();
    let repo = s.signed.split_once(':').unwrap().0.to_owned();
    let v29 = format!("{repo}@{}", s.signed_digest.digest);
    let running = |n: usize| -> Vec<signgate::audit::RunningImage> {
        (0..n)
            .flat_map(|i| {
                let p: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod(
                    "prod",
                    &format!("p-{i}"),
                    None,
                    &[("main", &s.signed, &v29)],
                ))
                .unwrap();
                signgate::audit::running_images(&p)
            })
            .collect()
    };
    let labels: HashMap<String, BTreeMap<String, String>> = HashMap::new();
    let now = time::OffsetDateTime::now_utc();
    let rt = rt();
    let one = rt.block_on(signgate::audit::audit(&verifier, &labels, running(1), now));
    let after_one = verifier.upstream_requests();
    assert!(after_one > 0);
    assert_eq!(one[0].verdict(), signgate::audit::Verdict::Allowed);
    let many = rt.block_on(signgate::audit::audit(
        &verifier,
        &labels,
        running(2000),
        now,
    ));
    assert_eq!(many.len(), 2000);
    assert!(
        many.iter()
            .all(|f| Arc::ptr_eq(&f.decision, &many[0].decision)),
        "one decision for the one (namespace, image), shared by every Pod"
    );
    assert!(
        many.iter()
            .all(|f| f.verdict() == signgate::audit::Verdict::Allowed)
    );
    assert_eq!(
        verifier.upstream_requests(),
        after_one,
        "2,000 Pods of a decided image asked nothing more upstream"
    );
}

/// `serve --audit`: the running Pods decided at startup and again after every configuration
/// reload (here the interval is an hour, so only the reload can explain the second run), the
/// results in the audit metrics, one log line per failing container however many runs see it, a
/// PolicyReport per namespace by server-side apply, and no harm when the CRD is absent.
/// Changes the configuration file (a comment), so that `serve` reloads it.
fn reload(config: &std::path::Path, why: &str) {
    let mut yaml = std::fs::read_to_string(config).unwrap();
    yaml.push_str(&format!("\n# reloaded: {why}\n"));
    std::fs::write(config, yaml).unwrap();
}

#[test]
fn serve_audits_running_pods_at_startup_and_after_each_reload() {
    let s = setup();
    let (api, _, _) = cluster(&s, &["prod", "ml-dev"]);
    api.put_pod(pod("prod", "nightly-0", None, &[("main", &s.unsigned, "")]));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (addr, _) = rt.block_on(api.serve_tls());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kube_api::write_kubeconfig(addr, dir.path());
    let config = dir.path().join("signgate.yaml");
    std::fs::copy(&s.config, &config).unwrap();
    let serve = start_serve_with(
        &s.lab,
        &config,
        dir.path(),
        &ServeOptions {
            args: &["--audit", "--audit-interval", "3600"],
            env: &[("KUBECONFIG", &kubeconfig), ("HOME", "/nonexistent")],
            log: Some("audit-serve.log"),
            ..ServeOptions::default()
        },
    );
    let series = |text: &str, name: &str| -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    let denied = r#"signgate_audit_workloads{policy="pytorch-gpu-prod",verdict="denied"}"#;
    let wait_for = |want: f64| -> String {
        let started = std::time::Instant::now();
        loop {
            let text = metrics_text(&serve);
            if series(&text, denied) == Some(want) {
                return text;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "{denied} never reached {want}:\n{text}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    let text = wait_for(1.0);
    assert_eq!(
        series(
            &text,
            r#"signgate_audit_workloads{policy="pytorch-gpu-prod",verdict="allowed"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        series(
            &text,
            r#"signgate_audit_workloads{policy="ml-dev-warn",verdict="warned"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        series(&text, r#"signgate_audit_images{verdict="denied"}"#),
        Some(1.0)
    );
    assert!(series(&text, "signgate_audit_last_run_timestamp_seconds").unwrap() > 1.7e9);

    // A new unsigned Pod is not seen until the next run; a reload brings that run now.
    api.put_pod(pod("prod", "nightly-1", None, &[("main", &s.unsigned, "")]));
    reload(&config, "new Pod");
    wait_for(2.0);

    // The metrics are set before the run's log lines, which are written in batches.
    let log = log_when(&serve, |l| l.contains("Pod/nightly-1"));
    let lines = |pod: &str| {
        log.lines()
            .filter(|l| l.contains("fails the policy in force") && l.contains(pod))
            .count()
    };
    assert_eq!(
        lines("Pod/nightly-0"),
        1,
        "reported once over two runs:\n{log}"
    );
    assert_eq!(lines("Pod/nightly-1"), 1, "{log}");
    assert_eq!(lines("Job/train"), 0, "{log}");

    // A PolicyReport per namespace, applied by signgate: the summary and one result per container.
    let (prod, manager) = api
        .report("prod", "signgate-audit")
        .expect("prod's PolicyReport");
    assert_eq!(manager, "signgate");
    assert_eq!(prod["kind"], "PolicyReport");
    assert_eq!(
        prod["summary"],
        json!({"pass": 1, "warn": 0, "fail": 2, "error": 0, "skip": 0}),
        "{prod:#}"
    );
    let results = prod["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["result"], "fail", "failures first");
    assert_eq!(results[0]["policy"], "pytorch-gpu-prod");
    assert!(
        results[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("tag_not_signed")
    );
    assert_eq!(results[2]["result"], "pass");
    assert_eq!(results[2]["resources"][0]["name"], "train-0");
    let (dev, _) = api
        .report("ml-dev", "signgate-audit")
        .expect("ml-dev's PolicyReport");
    assert_eq!(dev["summary"]["warn"], 1, "{dev:#}");

    // The only Pod of ml-dev is gone: its report is emptied at the next run, not left warning.
    api.delete_pod("ml-dev", "nightly-dev");
    reload(&config, "deletion");
    let started = std::time::Instant::now();
    loop {
        let (dev, _) = api.report("ml-dev", "signgate-audit").unwrap();
        if dev["summary"]["warn"] == 0 {
            assert_eq!(dev["results"], json!([]), "{dev:#}");
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{dev:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // Without the PolicyReport CRD the audit goes on, in the metrics and logs, and says why.
    api.set_reports_crd(false);
    api.put_pod(pod("prod", "nightly-2", None, &[("main", &s.unsigned, "")]));
    reload(&config, "no CRD");
    wait_for(3.0);
    let log = log_when(&serve, |l| {
        l.contains("CRD (wgpolicyk8s.io/v1alpha2) is not installed")
    });
    assert!(
        log.contains("CRD (wgpolicyk8s.io/v1alpha2) is not installed"),
        "{log}"
    );
    let (prod, _) = api.report("prod", "signgate-audit").unwrap();
    assert_eq!(
        prod["summary"]["fail"], 2,
        "the last report written stays as it was"
    );
}
