//! The audit of running Pods under load (`scripts/bench --audit`, issue 27): `BENCH_AUDIT_PODS`
//! Pods (5,000) over `BENCH_AUDIT_IMAGES` signed images (50) in a fake Kubernetes API server
//! (tests/kube_api, loopback HTTPS), `signgate serve --audit` against the real registry and notary
//! server of the harness. Measured: the first (cold) audit's duration and upstream requests, a
//! second run's, the server's memory; and the repeated-image review's p99 at c=16 on a server
//! auditing back to back (`--audit-interval 1`) against the same server without `--audit`,
//! alternating, `BENCH_AUDIT_REPS` times (3). Results in target/bench/audit.json.

mod bench_support;
#[allow(unused_imports)]
#[path = "../tests/faults/mod.rs"]
mod faults;
#[allow(unused_imports)]
#[path = "../tests/harness/mod.rs"]
mod harness;
#[path = "../tests/kube_api/mod.rs"]
mod kube_api;
#[allow(unused_imports)]
#[path = "../tests/webhook_support/mod.rs"]
mod webhook_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use bench_support::*;
use harness::Lab;
use webhook_support::*;

/// The value of the series `name` (with its labels, as exposed) in a metrics text.
fn series(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The sum of every sample of the family `name`.
fn family_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The audit's metrics once a run newer than `after` (unix seconds) has finished.
fn next_run(serve: &Serve, after: f64) -> String {
    let started = Instant::now();
    loop {
        let text = metrics_text(serve);
        if series(&text, "signgate_audit_last_run_timestamp_seconds").is_some_and(|t| t > after) {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no audit run:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// p99 (ms) of `d` seconds of h2load at c=16 against `url`.
fn p99(out: &Path, name: &str, url: &str, body: &Path, d: &str) -> (f64, usize) {
    let log = out.join(format!("audit-{name}.log"));
    let _ = std::fs::remove_file(&log);
    let status = h2load_command(
        &h1_args(16, d),
        body,
        &log,
        &format!("{url}/validate?timeout=10s"),
    )
    .stdout(std::process::Stdio::null())
    .status()
    .unwrap();
    assert!(status.success(), "h2load failed");
    let (lat, non_200) = h2load_latencies(&log);
    assert_eq!(non_200, 0, "{name}: answers that were not 200");
    (pct(&lat, 0.99), lat.len())
}

fn rss_kib(serve: &Serve) -> (u64, u64) {
    vm_kib(
        &std::fs::read_to_string(format!("/proc/{}/status", serve.child.id())).unwrap_or_default(),
    )
}

fn main() {
    let out = PathBuf::from(std::env::var("BENCH_OUT").unwrap_or_else(|_| "target/bench".into()));
    std::fs::create_dir_all(&out).unwrap();
    let n_pods = env_or("BENCH_AUDIT_PODS", 5000);
    let n_images = env_or("BENCH_AUDIT_IMAGES", 50);
    let reps = env_or("BENCH_AUDIT_REPS", 3);
    let d = env_or("BENCH_DURATION", 5).to_string();

    println!("== lab: {n_images} signed images (one repository, a tag each), {n_pods} Pods");
    let t0 = Instant::now();
    let lab = Lab::start();
    let notary = lab.notary();
    let gun = lab.gun("ml/audit");
    notary.init_docker_like(&gun);
    notary.add_delegation(&gun, "targets/releases", "releases");
    let images: Vec<(String, String)> = (0..n_images)
        .map(|i| {
            let tag = format!("t{i}");
            let pushed = lab.push_image("ml/audit", &tag, &format!("audit image {i}"));
            notary.sign(&gun, &tag, &pushed, Some("targets/releases"));
            (format!("{gun}:{tag}"), format!("{gun}@{}", pushed.digest))
        })
        .collect();
    println!("   signed in {:.1} s", t0.elapsed().as_secs_f64());
    let probe = lab.push_image("ml/probe", "v1", "probe");
    let probe_gun = lab.gun("ml/probe");
    notary.init_docker_like(&probe_gun);
    notary.sign(&probe_gun, "v1", &probe, None);

    let api = kube_api::FakeApi::new();
    for ns in 0..10 {
        api.put(&format!("team-{ns}"), &[("env", "prod")]);
    }
    for i in 0..n_pods {
        let (image, id) = &images[i % n_images];
        api.put_pod(json!({
            "metadata": {"namespace": format!("team-{}", i % 10), "name": format!("p-{i}"),
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("rs-{}", i / 10), "uid": "u", "controller": true}]},
            "spec": {"containers": [{"name": "main", "image": image}]},
            "status": {"containerStatuses": [{"name": "main", "image": image, "imageID": id, "ready": true, "restartCount": 0}]},
        }));
    }
    let api_rt = tokio::runtime::Runtime::new().unwrap();
    let (addr, _api) = api_rt.block_on(api.serve_tls());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kube_api::write_kubeconfig(addr, dir.path());
    let pins = lab.root_key_pins(&[gun.clone(), probe_gun.clone()]);
    let cfg = dir.path().join("signgate.yaml");
    std::fs::write(&cfg, config_yaml(&lab, &pins, true)).unwrap();

    let env = [
        ("KUBECONFIG", kubeconfig.as_str()),
        ("HOME", "/nonexistent"),
    ];
    let plain = start_serve_with(
        &lab,
        &cfg,
        dir.path(),
        &ServeOptions {
            env: &env,
            log: Some("plain.log"),
            ..ServeOptions::default()
        },
    );
    let auditing = start_serve_with(
        &lab,
        &cfg,
        dir.path(),
        &ServeOptions {
            args: &["--audit", "--audit-interval", "1"],
            env: &env,
            log: Some("audit.log"),
            ..ServeOptions::default()
        },
    );

    // The first run is cold: every image verified once.
    let before_kib = rss_kib(&auditing);
    let first = next_run(&auditing, 0.0);
    let cold_s = series(&first, "signgate_audit_duration_seconds").unwrap();
    let cold_upstream = family_sum(&first, "signgate_upstream_requests_total");
    let denied = family_sum(&first, "signgate_audit_workloads");
    let last = series(&first, "signgate_audit_last_run_timestamp_seconds").unwrap();
    let second = next_run(&auditing, last);
    let warm_s = series(&second, "signgate_audit_duration_seconds").unwrap();
    let warm_upstream = family_sum(&second, "signgate_upstream_requests_total") - cold_upstream;
    let (rss, hwm) = rss_kib(&auditing);
    println!(
        "   first audit: {cold_s:.2} s, {cold_upstream} upstream requests for {n_pods} Pods ({denied} counted); next: {warm_s:.2} s, {warm_upstream} more requests"
    );
    println!(
        "   server memory: VmRSS {} → {rss} KiB, VmHWM {hwm} KiB ({:.0} KiB per 1,000 Pods over the start)",
        before_kib.0,
        (hwm.saturating_sub(before_kib.0)) as f64 * 1000.0 / n_pods as f64
    );

    let body = gpu_repeated_review(&format!("{probe_gun}:v1"));
    let body_path = out.join("audit-review.json");
    std::fs::write(&body_path, &body).unwrap();
    let client = apiserver_client(&lab);
    for s in [&plain, &auditing] {
        let (_, resp, _) = post(&client, s, body.clone());
        assert_eq!(resp["response"]["allowed"], true, "{resp}");
    }
    let mut ratios = Vec::new();
    let mut runs = Vec::new();
    for rep in 0..reps {
        let (quiet, n_q) = p99(&out, &format!("plain-{rep}"), &plain.url, &body_path, &d);
        let (busy, n_b) = p99(
            &out,
            &format!("auditing-{rep}"),
            &auditing.url,
            &body_path,
            &d,
        );
        println!(
            "   rep {rep}: p99 without audit {quiet:.2} ms ({n_q} reviews), auditing back to back {busy:.2} ms ({n_b}): ×{:.2}",
            busy / quiet
        );
        ratios.push(busy / quiet);
        runs.push(json!({"quiet_p99_ms": quiet, "auditing_p99_ms": busy, "reviews": [n_q, n_b]}));
    }
    let runs_total = series(
        &metrics_text(&auditing),
        "signgate_audit_last_run_timestamp_seconds",
    );
    ratios.sort_by(f64::total_cmp);
    println!(
        "   p99 auditing / without (min / median / max of {reps}): {:.2} / {:.2} / {:.2}",
        ratios[0],
        ratios[reps / 2],
        ratios[reps - 1]
    );
    let result = json!({
        "pods": n_pods, "images": n_images,
        "first_audit_seconds": cold_s, "first_audit_upstream_requests": cold_upstream,
        "next_audit_seconds": warm_s, "next_audit_upstream_requests": warm_upstream,
        "vm_rss_kib_before": before_kib.0, "vm_rss_kib": rss, "vm_hwm_kib": hwm,
        "p99_ratio_min_median_max": [ratios[0], ratios[reps / 2], ratios[reps - 1]],
        "runs": runs, "last_run": runs_total,
    });
    std::fs::write(
        out.join("audit.json"),
        serde_json::to_string_pretty(&result).unwrap(),
    )
    .unwrap();
}
