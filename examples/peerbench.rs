//! Side-by-side harness: `signgate serve` and another admission webhook (a "peer") measured in the
//! same run, on the same lab data and the same request bodies (BENCHMARKS.md, "Peer comparison").
//!
//! The lab is the load harness's (tests/harness: docker-registry + notary-server on 127.0.0.1,
//! trust data published by the real notary CLI, `targets/releases` delegations as `docker trust
//! sign` makes them), started with ECDSA server-held keys (a notary-signer behind the
//! notary-server) so that verifiers which cannot read ed25519 timestamp/snapshot keys work too.
//!
//! The peer is started by a command the caller supplies; this program knows nothing about it
//! beyond the environment it hands over:
//!
//! | variable | meaning |
//! |---|---|
//! | `PEER_CMD` | shell command (`sh -c`, own process group, stopped with SIGTERM to that group) that serves HTTPS in the foreground; unset: signgate only |
//! | `PEER_NAME` | label in the results (default `peer`) |
//! | `PEER_PATH` | review path (default `/validate`); `?timeout=10s` is appended as kube-apiserver does |
//! | `PEER_HEALTH` | path polled until 2xx before measuring (default `/healthz`) |
//!
//! and the command gets `PEER_LAB_JSON` (notary URL, registry host, CA, root public key per GUN),
//! `PEER_LISTEN` (`127.0.0.1:PORT`), `PEER_TLS_CERT`/`PEER_TLS_KEY` (issued by the lab CA for
//! 127.0.0.1) and `PEER_CA`.
//!
//! Per repetition (`PEER_BENCH_REPS`, 3) and target (order alternates), a fresh process:
//! idle RSS (summed over its process tree); two cold reviews on one kept-alive connection, each
//! of a never-seen signed image (a one-container Pod, then the repeated-image GPU Pod), with the
//! notary and registry requests each one caused (the servers' logs); then h2load `--h1` over TLS
//! keep-alive, `PEER_BENCH_DURATION` s (10) each after 1 s warm-up: GPU Pod c1/c16/c64, one-container
//! Pod c1/c16; RSS after. Results: `$PEER_BENCH_OUT/results.json` (default target/peer-bench).

mod bench_support;
#[allow(unused_imports)]
#[path = "../tests/harness/mod.rs"]
mod harness;
#[allow(unused_imports)]
#[path = "../tests/webhook_support/mod.rs"]
mod webhook_support;

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use bench_support::*;
use harness::{Lab, NotaryCli};
use webhook_support::*;

// ------------------------------------------------------------------------------------------------
// bodies

fn one_container_review(image: &str, n: u32) -> Vec<u8> {
    let mut b = pod_review(n, "ml-prod", &[("trainer", image)], &[]);
    b.push(b'\n');
    b
}

// ------------------------------------------------------------------------------------------------
// lab data

fn sign_repo(lab: &Lab, notary: &NotaryCli, repo: &str, tag: &str) -> String {
    let gun = lab.gun(repo);
    notary.init_docker_like(&gun);
    let pushed = lab.push_image(repo, tag, &format!("{repo}:{tag}"));
    notary.add_delegation(&gun, "targets/releases", "releases");
    notary.sign(&gun, tag, &pushed, Some("targets/releases"));
    format!("{gun}:{tag}")
}

fn write_signgate_config(lab: &Lab, dir: &Path, guns: &[String]) -> PathBuf {
    let path = dir.join("signgate.yaml");
    std::fs::write(&path, config_yaml(lab, &lab.root_key_pins(guns), true)).unwrap();
    path
}

fn write_lab_json(lab: &Lab, out: &Path, guns: &[String]) -> PathBuf {
    let pki = lab.dir().join("pki");
    let roots: Vec<Value> = guns
        .iter()
        .map(|g| json!({"gun": g, "root_key_pem": lab.root_key_pem(g)}))
        .collect();
    let v = json!({
        "notary_url": lab.notary_url(),
        "registry_url": lab.registry_url(),
        "registry_host": lab.registry_host(),
        "ca_pem": lab.ca_pem_path(),
        "server_cert": pki.join("server.crt"),
        "server_key": pki.join("server.key"),
        "roots": roots,
    });
    let path = out.join("lab.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    path
}

// ------------------------------------------------------------------------------------------------
// targets

enum Proc {
    Signgate(Serve),
    Peer { child: Child, pgid: i32 },
}

struct Target {
    name: String,
    proc: Proc,
    base: String,
    review_path: String,
}

impl Target {
    fn pid(&self) -> u32 {
        match &self.proc {
            Proc::Signgate(s) => s.child.id(),
            Proc::Peer { child, .. } => child.id(),
        }
    }

    fn review_url(&self) -> String {
        format!("{}{}?timeout=10s", self.base, self.review_path)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Proc::Peer { child, pgid } = &mut self.proc {
            // Only the process group this program created for the peer command.
            let _ = Command::new("kill")
                .args(["-TERM", "--", &format!("-{pgid}")])
                .status();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .status();
            let _ = child.wait();
        }
    }
}

fn start_signgate(lab: &Lab, config: &Path, dir: &Path) -> Target {
    let s = start_serve(lab, config, dir);
    Target {
        name: "signgate".into(),
        base: s.url.clone(),
        review_path: "/validate".into(),
        proc: Proc::Signgate(s),
    }
}

struct PeerSpec {
    name: String,
    cmd: String,
    path: String,
    health: String,
}

fn start_peer(lab: &Lab, spec: &PeerSpec, lab_json: &Path, log: &Path) -> Target {
    let port = free_port();
    let pki = lab.dir().join("pki");
    let out = std::fs::File::create(log).unwrap();
    let child = Command::new("sh")
        .arg("-c")
        .arg(&spec.cmd)
        .env("PEER_LAB_JSON", lab_json)
        .env("PEER_LISTEN", format!("127.0.0.1:{port}"))
        .env("PEER_TLS_CERT", pki.join("server.crt"))
        .env("PEER_TLS_KEY", pki.join("server.key"))
        .env("PEER_CA", lab.ca_pem_path())
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .process_group(0)
        .spawn()
        .expect("PEER_CMD");
    let pgid = child.id() as i32;
    let t = Target {
        name: spec.name.clone(),
        base: format!("https://127.0.0.1:{port}"),
        review_path: spec.path.clone(),
        proc: Proc::Peer { child, pgid },
    };
    let client = apiserver_client(lab);
    let started = Instant::now();
    loop {
        let ok = rt().block_on(async {
            client
                .get(format!("{}{}", t.base, spec.health))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        });
        if ok {
            return t;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{} did not answer {} within 60 s; log {}:\n{}",
            spec.name,
            spec.health,
            log.display(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `pid` and its descendants.
fn tree(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let p = all[i];
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) {
            for t in tasks.flatten() {
                let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
                all.extend(
                    kids.split_whitespace()
                        .filter_map(|k| k.parse::<u32>().ok()),
                );
            }
        }
        i += 1;
    }
    all
}

/// (VmRSS, VmHWM) in KiB, summed over the process tree.
fn rss_tree(pid: u32) -> (u64, u64) {
    let mut sum = (0, 0);
    for p in tree(pid) {
        let (rss, hwm) =
            vm_kib(&std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default());
        sum.0 += rss;
        sum.1 += hwm;
    }
    sum
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

// ------------------------------------------------------------------------------------------------
// h2load

/// Seconds h2load may run past its measured duration before it is stopped.
const DEADLINE_GRACE_S: u64 = 45;

/// h2load against `url` POSTing `body`; latencies from its per-request log (measured requests
/// only, not the warm-up). A run still going [`DEADLINE_GRACE_S`] after its end is stopped.
fn h2load(
    out: &Path,
    label: &str,
    url: &str,
    body: &Path,
    args: &[String],
    measured_s: u64,
) -> Value {
    let log = out.join(format!("h2load-{label}.tsv"));
    let _ = std::fs::remove_file(&log);
    let txt = out.join(format!("h2load-{label}.txt"));
    let mut child = h2load_command(args, body, &log, url)
        .stdout(std::fs::File::create(&txt).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("h2load (apt-get install nghttp2-client)");
    // A server that starves some kept-alive connections (a fixed thread pool smaller than the
    // connection count) leaves h2load waiting for ever: stop it DEADLINE_GRACE_S after the run
    // should have ended and record it as timed out, with what did complete.
    let deadline = Instant::now() + Duration::from_secs(measured_s + 1 + DEADLINE_GRACE_S);
    let timed_out = loop {
        if child.try_wait().unwrap().is_some() {
            break false;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break true;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let stdout = std::fs::read_to_string(&txt).unwrap_or_default();
    assert!(
        timed_out || stdout.contains("finished in"),
        "h2load {label}: {stdout}"
    );
    let rps = h2load_finished(&stdout)
        .and_then(|f| f.get(3).and_then(|s| s.parse::<f64>().ok()))
        .unwrap_or(0.0);
    let failed = stdout
        .lines()
        .find(|l| l.starts_with("requests:"))
        .map(str::to_owned)
        .unwrap_or_default();
    let (lat, non_200) = h2load_latencies(&log);
    // Stopped by the deadline: throughput is what completed over the measured time.
    let rps = if timed_out {
        lat.len() as f64 / measured_s as f64
    } else {
        rps
    };
    let (p50, p99, max) = (
        pct(&lat, 50.0),
        pct(&lat, 99.0),
        lat.last().copied().unwrap_or(f64::NAN),
    );
    println!(
        "   {label:<34} {rps:>9.1} req/s  p50 {p50:>9.3} ms  p99 {p99:>9.3} ms  max {max:>9.3} ms  ({} reqs, {non_200} non-200){}",
        lat.len(),
        if timed_out {
            format!("  TIMED OUT: stopped {DEADLINE_GRACE_S} s after its end, connections starved")
        } else {
            String::new()
        }
    );
    json!({"label": label, "rps": round(rps), "completed": lat.len(), "non_200": non_200,
           "p50_ms": round(p50), "p99_ms": round(p99), "max_ms": round(max), "h2load_requests": failed, "timed_out": timed_out})
}

// ------------------------------------------------------------------------------------------------
// one target

fn allowed(v: &Value) -> bool {
    v["response"]["allowed"] == true
}

/// One cold review: (ms, notary requests, registry requests, the requests).
fn cold_review(
    lab: &Lab,
    crt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    t: &Target,
    body: Vec<u8>,
) -> Value {
    let (n0, r0) = upstream(lab);
    let (ms, resp) = post_timed(crt, client, &t.review_url(), body);
    assert!(allowed(&resp), "{} cold review: {resp}", t.name);
    let notary = lab.notary_request_log();
    let registry = lab.registry_request_log();
    json!({"ms": round(ms), "notary": notary.len() - n0, "registry": registry.len() - r0,
           "requests": request_lines(&notary[n0..]).into_iter().chain(request_lines(&registry[r0..])).collect::<Vec<_>>()})
}

fn run_target(
    lab: &Lab,
    t: &Target,
    out: &Path,
    rep: usize,
    cold_images: (&str, &str),
    warm_bodies: (&Path, &Path),
    duration: usize,
) -> Value {
    let label = format!("{}-r{rep}", t.name);
    let load_before = loadavg();
    std::thread::sleep(Duration::from_secs(1));
    let idle = rss_tree(t.pid());
    println!(
        "\n== {label}: pid {} ({} processes), idle RSS {} KiB (HWM {} KiB); loadavg {load_before}",
        t.pid(),
        tree(t.pid()).len(),
        idle.0,
        idle.1
    );

    // Cold: the connection is opened first (a health probe), so no sample pays the handshake.
    let crt = rt();
    let client = apiserver_client(lab);
    crt.block_on(async { client.get(&t.base).send().await.map(|_| ()).ok() });
    let cold_one = cold_review(
        lab,
        &crt,
        &client,
        t,
        one_container_review(cold_images.0, 20 + rep as u32),
    );
    let cold_gpu = cold_review(lab, &crt, &client, t, gpu_repeated_review(cold_images.1));
    println!(
        "   cold, one-container Pod: {} ms, {} notary + {} registry requests",
        cold_one["ms"], cold_one["notary"], cold_one["registry"]
    );
    println!(
        "   cold, repeated-image GPU Pod (4 references to one image): {} ms, {} notary + {} registry requests",
        cold_gpu["ms"], cold_gpu["notary"], cold_gpu["registry"]
    );
    // The warm bodies once each (allowed?), then load.
    for b in [warm_bodies.0, warm_bodies.1] {
        let (_, v) = post_timed(&crt, &client, &t.review_url(), std::fs::read(b).unwrap());
        assert!(allowed(&v), "{}: {}: {v}", t.name, b.display());
    }
    drop(client);
    drop(crt);
    let up0 = upstream(lab);
    let d = duration.to_string();
    let mut runs = serde_json::Map::new();
    for (body_name, body, cs) in [
        ("gpu", warm_bodies.0, &[1usize, 16, 64][..]),
        ("one", warm_bodies.1, &[1usize, 16][..]),
    ] {
        for &c in cs {
            let name = format!("{body_name}-c{c}");
            let r = h2load(
                out,
                &format!("{label}-{name}"),
                &t.review_url(),
                body,
                &h1_args(c, &d),
                duration as u64,
            );
            runs.insert(name, r);
        }
    }
    let up1 = upstream(lab);
    let after = rss_tree(t.pid());
    let reviews: u64 = runs
        .values()
        .map(|r| r["completed"].as_u64().unwrap_or(0))
        .sum();
    println!(
        "   warm runs: {reviews} reviews, {} notary + {} registry requests; RSS after {} KiB (HWM {} KiB); loadavg {}",
        up1.0 - up0.0,
        up1.1 - up0.1,
        after.0,
        after.1,
        loadavg()
    );
    json!({
        "target": t.name, "rep": rep, "loadavg_before": load_before, "loadavg_after": loadavg(),
        "processes": tree(t.pid()).len(),
        "idle_rss_kib": idle.0, "idle_hwm_kib": idle.1,
        "cold_one": cold_one, "cold_gpu": cold_gpu,
        "warm": Value::Object(runs),
        "warm_reviews": reviews, "warm_notary_requests": up1.0 - up0.0, "warm_registry_requests": up1.1 - up0.1,
        "after_rss_kib": after.0, "after_hwm_kib": after.1,
    })
}

/// A summary figure read off one repetition's results.
type Metric = Box<dyn Fn(&Value) -> Option<f64>>;

/// min / median / max of `f` over the repetitions of `target`.
fn spread(reps: &[Value], target: &str, f: impl Fn(&Value) -> Option<f64>) -> [f64; 3] {
    let mut v: Vec<f64> = reps
        .iter()
        .filter(|r| r["target"] == target)
        .filter_map(f)
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return [f64::NAN; 3];
    }
    [v[0], v[v.len() / 2], v[v.len() - 1]]
}

fn main() {
    let out = PathBuf::from(
        std::env::var("PEER_BENCH_OUT").unwrap_or_else(|_| "target/peer-bench".into()),
    );
    std::fs::create_dir_all(&out).unwrap();
    let out = out.canonicalize().unwrap();
    let reps = env_or("PEER_BENCH_REPS", 3);
    let duration = env_or("PEER_BENCH_DURATION", 10);
    let peer = std::env::var("PEER_CMD").ok().map(|cmd| PeerSpec {
        name: std::env::var("PEER_NAME").unwrap_or_else(|_| "peer".into()),
        cmd,
        path: std::env::var("PEER_PATH").unwrap_or_else(|_| "/validate".into()),
        health: std::env::var("PEER_HEALTH").unwrap_or_else(|_| "/healthz".into()),
    });
    let t0 = Instant::now();
    println!(
        "== machine: {} CPUs, loadavg {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    );
    println!(
        "== lab: docker-registry + notary-server (ECDSA server keys via notary-signer) on 127.0.0.1"
    );
    let lab = Lab::start_with_ecdsa_server_keys();
    let notary = lab.notary();
    let gpu_image = sign_repo(&lab, &notary, "ml/pytorch-cuda", "v2.9");
    let one_image = sign_repo(&lab, &notary, "ml/plain-app", "v1.0");
    let mut names = vec!["signgate".to_owned()];
    if let Some(p) = &peer {
        names.push(p.name.clone());
    }
    // Never-seen images for the cold samples: per target and repetition, one for each body.
    let mut cold = std::collections::HashMap::new();
    for (ti, _) in names.iter().enumerate() {
        for r in 0..reps {
            let one = sign_repo(&lab, &notary, &format!("ml/cold-{ti}-{r}-one"), "v1");
            let gpu = sign_repo(&lab, &notary, &format!("ml/cold-{ti}-{r}-gpu"), "v1");
            cold.insert((ti, r), (one, gpu));
        }
    }
    let mut guns: Vec<String> = ["ml/pytorch-cuda", "ml/plain-app"]
        .iter()
        .map(|r| lab.gun(r))
        .collect();
    for (one, gpu) in cold.values() {
        for i in [one, gpu] {
            guns.push(i.rsplit_once(':').unwrap().0.to_owned());
        }
    }
    guns.sort();
    println!(
        "   signed {} repositories in {:.1} s",
        guns.len(),
        t0.elapsed().as_secs_f64()
    );
    let root_type = {
        let r = lab.notary_get(&format!("/v2/{}/_trust/tuf/root.json", guns[0]));
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        let keys = &v["signed"]["keys"];
        let role = |name: &str| -> String {
            let id = v["signed"]["roles"][name]["keyids"][0].as_str().unwrap();
            keys[id]["keytype"].as_str().unwrap().to_owned()
        };
        json!({"root": role("root"), "targets": role("targets"), "snapshot": role("snapshot"), "timestamp": role("timestamp")})
    };
    println!("   key types in root.json: {root_type}");

    let dir = tempfile::tempdir().unwrap();
    let sg_config = write_signgate_config(&lab, dir.path(), &guns);
    let lab_json = write_lab_json(&lab, &out, &guns);
    let gpu_body = gpu_repeated_review(&gpu_image);
    let gpu_path = out.join("gpu-repeated-review.json");
    std::fs::write(&gpu_path, &gpu_body).unwrap();
    let one_path = out.join("one-container-review.json");
    std::fs::write(&one_path, one_container_review(&one_image, 1)).unwrap();
    println!(
        "   bodies: {} ({} bytes: init container + 3 containers, all {gpu_image}), {} ({} bytes)",
        gpu_path.display(),
        gpu_body.len(),
        one_path.display(),
        std::fs::metadata(&one_path).unwrap().len()
    );

    let mut results = Vec::new();
    for r in 0..reps {
        let mut order: Vec<usize> = (0..names.len()).collect();
        if r % 2 == 1 {
            order.reverse();
        }
        for ti in order {
            let t = if ti == 0 {
                start_signgate(&lab, &sg_config, dir.path())
            } else {
                let p = peer.as_ref().unwrap();
                start_peer(
                    &lab,
                    p,
                    &lab_json,
                    &out.join(format!("{}-r{r}.log", p.name)),
                )
            };
            let (one, gpu) = &cold[&(ti, r)];
            results.push(run_target(
                &lab,
                &t,
                &out,
                r,
                (one, gpu),
                (&gpu_path, &one_path),
                duration,
            ));
        }
    }

    // Summary: min / median / max over the repetitions.
    println!("\n== summary over {reps} repetitions: min / median / max");
    let mut summary = serde_json::Map::new();
    let metrics: Vec<(&str, Metric)> = vec![
        (
            "cold one-container ms",
            Box::new(|v| v["cold_one"]["ms"].as_f64()),
        ),
        (
            "cold one-container notary requests",
            Box::new(|v| v["cold_one"]["notary"].as_f64()),
        ),
        (
            "cold one-container registry requests",
            Box::new(|v| v["cold_one"]["registry"].as_f64()),
        ),
        ("cold GPU ms", Box::new(|v| v["cold_gpu"]["ms"].as_f64())),
        (
            "cold GPU notary requests",
            Box::new(|v| v["cold_gpu"]["notary"].as_f64()),
        ),
        (
            "cold GPU registry requests",
            Box::new(|v| v["cold_gpu"]["registry"].as_f64()),
        ),
        (
            "GPU c1 p50 ms",
            Box::new(|v| v["warm"]["gpu-c1"]["p50_ms"].as_f64()),
        ),
        (
            "GPU c1 p99 ms",
            Box::new(|v| v["warm"]["gpu-c1"]["p99_ms"].as_f64()),
        ),
        (
            "GPU c1 reviews/s",
            Box::new(|v| v["warm"]["gpu-c1"]["rps"].as_f64()),
        ),
        (
            "GPU c16 p50 ms",
            Box::new(|v| v["warm"]["gpu-c16"]["p50_ms"].as_f64()),
        ),
        (
            "GPU c16 p99 ms",
            Box::new(|v| v["warm"]["gpu-c16"]["p99_ms"].as_f64()),
        ),
        (
            "GPU c16 reviews/s",
            Box::new(|v| v["warm"]["gpu-c16"]["rps"].as_f64()),
        ),
        (
            "GPU c64 p50 ms",
            Box::new(|v| v["warm"]["gpu-c64"]["p50_ms"].as_f64()),
        ),
        (
            "GPU c64 p99 ms",
            Box::new(|v| v["warm"]["gpu-c64"]["p99_ms"].as_f64()),
        ),
        (
            "GPU c64 reviews/s",
            Box::new(|v| v["warm"]["gpu-c64"]["rps"].as_f64()),
        ),
        (
            "one-container c1 p50 ms",
            Box::new(|v| v["warm"]["one-c1"]["p50_ms"].as_f64()),
        ),
        (
            "one-container c1 p99 ms",
            Box::new(|v| v["warm"]["one-c1"]["p99_ms"].as_f64()),
        ),
        (
            "one-container c16 p50 ms",
            Box::new(|v| v["warm"]["one-c16"]["p50_ms"].as_f64()),
        ),
        (
            "one-container c16 p99 ms",
            Box::new(|v| v["warm"]["one-c16"]["p99_ms"].as_f64()),
        ),
        (
            "one-container c16 reviews/s",
            Box::new(|v| v["warm"]["one-c16"]["rps"].as_f64()),
        ),
        (
            "non-200 in warm runs",
            Box::new(|v| {
                Some(
                    v["warm"]
                        .as_object()?
                        .values()
                        .filter_map(|r| r["non_200"].as_f64())
                        .sum(),
                )
            }),
        ),
        (
            "warm runs stopped by the deadline",
            Box::new(|v| {
                Some(
                    v["warm"]
                        .as_object()?
                        .values()
                        .filter(|r| r["timed_out"] == true)
                        .count() as f64,
                )
            }),
        ),
        (
            "notary requests per 1000 warm reviews",
            Box::new(|v| {
                Some(
                    1000.0 * v["warm_notary_requests"].as_f64()?
                        / v["warm_reviews"].as_f64()?.max(1.0),
                )
            }),
        ),
        (
            "registry requests per 1000 warm reviews",
            Box::new(|v| {
                Some(
                    1000.0 * v["warm_registry_requests"].as_f64()?
                        / v["warm_reviews"].as_f64()?.max(1.0),
                )
            }),
        ),
        (
            "idle RSS MiB",
            Box::new(|v| v["idle_rss_kib"].as_f64().map(|k| k / 1024.0)),
        ),
        (
            "RSS after load MiB",
            Box::new(|v| v["after_rss_kib"].as_f64().map(|k| k / 1024.0)),
        ),
        (
            "peak RSS (VmHWM) MiB",
            Box::new(|v| v["after_hwm_kib"].as_f64().map(|k| k / 1024.0)),
        ),
    ];
    println!("| metric | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(names.len()));
    for (m, f) in &metrics {
        let mut cells = Vec::new();
        let mut per = serde_json::Map::new();
        for n in &names {
            let s = spread(&results, n, f);
            let fmt = |x: f64| {
                if x.abs() >= 100.0 {
                    format!("{x:.0}")
                } else if x.abs() >= 10.0 {
                    format!("{x:.1}")
                } else {
                    format!("{x:.2}")
                }
            };
            cells.push(format!("{} / {} / {}", fmt(s[0]), fmt(s[1]), fmt(s[2])));
            per.insert(n.clone(), json!([round(s[0]), round(s[1]), round(s[2])]));
        }
        println!("| {m} | {} |", cells.join(" | "));
        summary.insert((*m).to_owned(), Value::Object(per));
    }
    let all = json!({
        "reps": reps, "duration_s": duration, "targets": names, "root_key_types": root_type,
        "gpu_body_bytes": gpu_body.len(), "runs": results, "summary": summary,
        "total_seconds": round(t0.elapsed().as_secs_f64()),
    });
    std::fs::write(
        out.join("results.json"),
        serde_json::to_vec_pretty(&all).unwrap(),
    )
    .unwrap();
    println!(
        "\n== results in {}/results.json ({:.0} s)",
        out.display(),
        t0.elapsed().as_secs_f64()
    );
}
