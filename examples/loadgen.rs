//! The load harness behind `scripts/bench` (see BENCHMARKS.md). One run, everything on 127.0.0.1:
//! a real docker-registry + notary-server lab (tests/harness), images signed with the real notary
//! CLI, three servers side by side:
//! - `enforce`: `signgate serve` with a policy verifying every `ml/**` image (the product);
//! - `allow`:   `signgate serve` with `defaultAction: allow` and no policies (no verification);
//! - `floor`:   `bench_floor`, the same TLS/HTTP stack answering a fixed allowed review.
//!
//! Load comes from `h2load` (nghttp2-client) for fixed bodies and from this program (reqwest,
//! HTTP/1.1 keep-alive) where bodies must vary. Results go to `$OUT/results.json` and stdout.
//!
//! Environment: `BENCH_OUT` (results dir, default target/bench), `BENCH_DURATION` (seconds per
//! fixed-concurrency run, default 5), `BENCH_MEM_REPOS` × `BENCH_MEM_TAGS` (distinct signed images
//! of the memory run, default 10 × 1000), `BENCH_MEM_REVIEWS` (default 100000), `BENCH_COLD` (cold
//! samples, default 5), `BENCH_REPS` (repetitions of the repeated-image runs, default 3),
//! `BENCH_ONLY=labels` (stop after the namespace-label runs), `BENCH_ONLY=cosign` (after the
//! cosign-root runs) or `BENCH_ONLY=repeated` (after the repeated-image runs), `SIGNGATE_BIN` (another signgate binary to measure).

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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use bench_support::*;
use harness::{Lab, MANIFEST_ACCEPT, MANIFEST_V2, NotaryCli, Pushed};
use webhook_support::*;

// ------------------------------------------------------------------------------------------------
// processes

struct Floor {
    child: Child,
    url: String,
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_floor(lab: &Lab) -> Floor {
    let port = free_port();
    let exe = std::env::current_exe().unwrap();
    let child = Command::new(exe.parent().unwrap().join("bench_floor"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--tls-cert")
        .arg(lab.dir().join("pki/server.crt"))
        .arg("--tls-key")
        .arg(lab.dir().join("pki/server.key"))
        .stdout(Stdio::null())
        .spawn()
        .expect("bench_floor (cargo build --release --examples)");
    let f = Floor {
        child,
        url: format!("https://127.0.0.1:{port}"),
    };
    wait_healthy(lab, &f.url, Duration::from_secs(10), || {
        "the floor".to_owned()
    });
    f
}

/// (VmRSS, VmHWM) in KiB.
fn rss(pid: u32) -> (u64, u64) {
    vm_kib(&std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap())
}

// ------------------------------------------------------------------------------------------------
// h2load

#[derive(Debug, Clone)]
struct Run {
    label: String,
    completed: usize,
    non_200: usize,
    seconds: f64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl Run {
    fn json(&self) -> Value {
        json!({"label": self.label, "completed": self.completed, "non_200": self.non_200,
               "seconds": round(self.seconds), "rps": round(self.rps), "p50_ms": round(self.p50_ms),
               "p99_ms": round(self.p99_ms), "max_ms": round(self.max_ms)})
    }
}

/// Runs h2load against `url` + `/validate?timeout=10s` POSTing `body`; latencies from its
/// per-request log (`--log-file`: start µs, status, duration µs).
fn h2load(out: &Path, label: &str, url: &str, body: &Path, args: &[String]) -> Run {
    let log = out.join(format!("h2load-{label}.tsv"));
    let _ = std::fs::remove_file(&log);
    let started = Instant::now();
    let o = h2load_command(args, body, &log, &format!("{url}/validate?timeout=10s"))
        .output()
        .expect("h2load (apt-get install nghttp2-client)");
    let wall = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    std::fs::write(out.join(format!("h2load-{label}.txt")), &stdout).unwrap();
    assert!(
        o.status.success(),
        "h2load {label}: {stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // "finished in 5.00s, 1234.50 req/s, ..."
    let (seconds, rps) = h2load_finished(&stdout)
        .map(|parts| {
            let secs = parts[2].trim_end_matches('s');
            let secs = if let Some(ms) = secs.strip_suffix('m') {
                ms.parse::<f64>().unwrap() / 1000.0
            } else {
                secs.parse::<f64>().unwrap_or(wall)
            };
            (secs, parts[3].parse::<f64>().unwrap())
        })
        .unwrap_or((wall, 0.0));
    let (lat, non_200) = h2load_latencies(&log);
    let run = Run {
        label: label.to_owned(),
        completed: lat.len(),
        non_200,
        seconds,
        rps,
        p50_ms: pct(&lat, 50.0),
        p99_ms: pct(&lat, 99.0),
        max_ms: lat.last().copied().unwrap_or(f64::NAN),
    };
    println!(
        "   {:<28} {:>9.0} req/s  p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>8.3} ms  ({} reqs, {} non-200)",
        run.label, run.rps, run.p50_ms, run.p99_ms, run.max_ms, run.completed, run.non_200
    );
    run
}

/// The fixed offered load: 4000 reviews/s as 16 HTTP/1.1 connections × 250/s, 40000 reviews.
fn fixed_4000rps_args() -> Vec<String> {
    ["--h1", "-c", "16", "--rps", "250", "-n", "40000"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// One repetition of an alternating comparison: at 1, 16 and 64 HTTP/1.1 connections for `d`
/// seconds each, h2load POSTs `body` to each of `servers` in turn, in the given order on even
/// `rep`s and reversed on odd ones (so drift falls on all alike), labelled
/// `{prefix}-{name}-c{c}-r{rep}`. The runs go to `runs`; per connection count, the req/s by name.
fn alternating_rep<'a>(
    out: &Path,
    prefix: &str,
    servers: &[(&'a str, &str)],
    body: &Path,
    d: &str,
    rep: usize,
    runs: &mut Vec<Run>,
) -> Vec<(usize, BTreeMap<&'a str, f64>)> {
    let mut order = servers.to_vec();
    if rep % 2 == 1 {
        order.reverse();
    }
    let mut by_c = Vec::new();
    for c in [1, 16, 64] {
        let args = h1_args(c, d);
        let mut got = BTreeMap::new();
        for &(name, url) in &order {
            let r = h2load(
                out,
                &format!("{prefix}-{name}-c{c}-r{rep}"),
                url,
                body,
                &args,
            );
            got.insert(name, r.rps);
            runs.push(r);
        }
        by_c.push((c, got));
    }
    by_c
}

/// Prints each ratio's min / median / max over the repetitions; the same as JSON, by name.
fn ratio_summary(ratios: &BTreeMap<String, Vec<f64>>) -> serde_json::Map<String, Value> {
    let mut summary = serde_json::Map::new();
    for (k, v) in ratios {
        let (lo, mid, hi) = spread(v.clone());
        println!("     {k}: {lo:.2} / {mid:.2} / {hi:.2}");
        summary.insert(
            k.clone(),
            json!({"min": round(lo), "median": round(mid), "max": round(hi)}),
        );
    }
    summary
}

// ------------------------------------------------------------------------------------------------
// signing

struct Signed {
    gun: String,
    image: String,
    pushed: Pushed,
}

/// A repository as `docker trust` leaves it: init, server-managed snapshot, a `targets/releases`
/// delegation, and `tag` signed into it.
fn sign_repo(lab: &Lab, notary: &NotaryCli, repo: &str, tag: &str, delegate: bool) -> Signed {
    let gun = lab.gun(repo);
    notary.init_docker_like(&gun);
    let pushed = lab.push_image(repo, tag, &format!("{repo}:{tag}"));
    if delegate {
        notary.add_delegation(&gun, "targets/releases", "releases");
        notary.sign(&gun, tag, &pushed, Some("targets/releases"));
    } else {
        notary.sign(&gun, tag, &pushed, None);
    }
    Signed {
        image: format!("{gun}:{tag}"),
        gun,
        pushed,
    }
}

/// `tags` tags of one repository, all signed in ONE publish: one real `notary addhash` stages the
/// first tag; its changelist entry is copied for the others (same file format, another `path`), so
/// the CLI publishes every staged tag at once. The registry gets the same manifest under each tag.
fn sign_many_tags(lab: &Lab, notary: &NotaryCli, repo: &str, tags: &[String]) -> Pushed {
    let gun = lab.gun(repo);
    notary.init_docker_like(&gun);
    let pushed = lab.push_image(repo, &tags[0], &format!("{repo} bulk"));
    let size = pushed.size.to_string();
    notary.run_ok(&["addhash", &gun, &tags[0], &size, "--sha256", pushed.hex()]);
    let dir = notary.trust_dir().join("tuf").join(&gun).join("changelist");
    let first: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(first.len(), 1, "one staged change in {}", dir.display());
    let template: Value = serde_json::from_slice(&std::fs::read(&first[0]).unwrap()).unwrap();
    assert_eq!(
        template["path"],
        tags[0].as_str(),
        "changelist format: {template}"
    );
    let name = first[0].file_name().unwrap().to_string_lossy().to_string();
    let (stamp, _) = name.split_once('_').unwrap();
    let stamp: u128 = stamp.parse().unwrap();
    for (i, tag) in tags.iter().enumerate().skip(1) {
        let mut change = template.clone();
        change["path"] = Value::String(tag.clone());
        let file = dir.join(format!(
            "{:020}_{:08x}-0000-4000-8000-{:012x}.change",
            stamp + i as u128,
            i,
            i
        ));
        std::fs::write(file, serde_json::to_vec(&change).unwrap()).unwrap();
    }
    notary.run_ok(&["publish", &gun]);
    // The same manifest under every other tag, 16 PUTs in flight.
    let manifest = lab
        .net()
        .request(
            "GET",
            &format!("{}/v2/{repo}/manifests/{}", lab.registry_url(), tags[0]),
            &[("Accept", MANIFEST_ACCEPT)],
            None,
        )
        .body;
    let client = lab.client();
    let base = lab.registry_url();
    let tags: Vec<String> = tags[1..].to_vec();
    let repo = repo.to_owned();
    harness::block_on(|| async move {
        use futures_util::StreamExt as _;
        futures_util::stream::iter(tags)
            .map(|t| {
                let (client, manifest) = (client.clone(), manifest.clone());
                let u = format!("{base}/v2/{repo}/manifests/{t}");
                async move {
                    let r = client
                        .put(&u)
                        .header("content-type", MANIFEST_V2)
                        .body(manifest)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status().as_u16(), 201, "PUT {u}");
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<()>>()
            .await;
    });
    pushed
}

fn write_config(lab: &Lab, dir: &Path, name: &str, pins: &[String], enforce: bool) -> PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let path = d.join("signgate.yaml");
    std::fs::write(&path, config_yaml(lab, pins, enforce)).unwrap();
    path
}

/// `results` to `$OUT/results.json`.
fn save_results(out: &Path, results: &serde_json::Map<String, Value>) {
    std::fs::write(
        out.join("results.json"),
        serde_json::to_vec_pretty(&Value::Object(results.clone())).unwrap(),
    )
    .unwrap();
}

/// `BENCH_ONLY=section`: true when the run stops after `section`, with what was measured so far
/// written out.
fn stop_after(section: &str, out: &Path, results: &serde_json::Map<String, Value>) -> bool {
    if std::env::var("BENCH_ONLY").as_deref() != Ok(section) {
        return false;
    }
    save_results(out, results);
    println!("\n== results in {}/results.json", out.display());
    true
}

/// `body` POSTed once to `url` + `/validate?timeout=10s` on a fresh runtime: the parsed answer.
fn post_once(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Value {
    rt().block_on(async {
        client
            .post(format!("{url}/validate?timeout=10s"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    })
}

/// Issue 14: the warm path under a `cosign:` root against the Notary v1 root, same image (the
/// trainer, also signed with cosign 2 and a key), same repeated-image review, floor alternating
/// with both; `reps` repetitions.
#[allow(clippy::too_many_arguments)]
fn cosign_runs(
    lab: &Lab,
    out: &Path,
    floor: &Floor,
    notary: &Serve,
    enforce_cfg: &Path,
    trainer: &Signed,
    d: &str,
    reps: usize,
    results: &mut serde_json::Map<String, Value>,
) {
    println!(
        "\n== cosign root: the repeated-image review verified by a cosign key (cosign 2, legacy .sig) vs by Notary v1, the floor alternating; {reps} repetitions"
    );
    let key = harness::cosign_generate_key_pair(lab, "bench");
    harness::cosign2_sign(
        lab,
        &harness::image_ref(lab, "ml/pytorch-cuda", &trainer.pushed),
        &key,
    );
    let text = std::fs::read_to_string(enforce_cfg).unwrap();
    let rest = &text[text
        .find("registries:")
        .expect("registries in the enforce config")..];
    let cfg_text = format!(
        "trustRoots:\n  - name: ml-cosign\n    cosign:\n      transparencyLog: ignore\n      keys: [{{ name: bench, keyFile: {} }}]\n{}",
        key.public.display(),
        rest.replace("trustRoot: ml-platform", "trustRoot: ml-cosign")
    );
    let dir = enforce_cfg
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("cosign");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("signgate.yaml");
    std::fs::write(&cfg, cfg_text).unwrap();
    let cosign = start_serve(lab, &cfg, &dir);
    let body = gpu_repeated_review(&trainer.image);
    let body_path = out.join("gpu-repeated-review.json");
    std::fs::write(&body_path, &body).unwrap();
    let (_, resp, _) = post(&apiserver_client(lab), &cosign, body.clone());
    assert_eq!(resp["response"]["allowed"], true, "cosign: {resp}");
    let mut runs = Vec::new();
    let mut ratios: BTreeMap<String, Vec<f64>> = Default::default();
    let servers = [
        ("floor", floor.url.as_str()),
        ("notary", notary.url.as_str()),
        ("cosign", cosign.url.as_str()),
    ];
    for rep in 0..reps {
        for (c, got) in alternating_rep(out, "cosign", &servers, &body_path, d, rep, &mut runs) {
            for (label, v) in [
                ("notary/floor", got["notary"] / got["floor"]),
                ("cosign/floor", got["cosign"] / got["floor"]),
                ("cosign/notary", got["cosign"] / got["notary"]),
            ] {
                ratios.entry(format!("{label} c{c}")).or_default().push(v);
            }
        }
    }
    println!("   throughput ratios (min / median / max of {reps}):");
    let summary = ratio_summary(&ratios);
    results.insert(
        "cosign_root".into(),
        json!({"runs": runs.iter().map(Run::json).collect::<Vec<_>>(), "summary": summary}),
    );
}

/// Issue 15: the cost of a label-selected policy on the warm path. The enforce configuration with
/// its policy selecting `ml-prod` by label (`env: prod`), served with a kubeconfig pointing at the
/// fake API server (tests/kube_api) over loopback HTTPS, against the same policy without the
/// selector; the ~7.4 KB repeated-image review, alternating, `reps` repetitions.
#[allow(clippy::too_many_arguments)]
fn namespace_label_runs(
    lab: &Lab,
    out: &Path,
    enforce: &Serve,
    enforce_cfg: &Path,
    image: &str,
    d: &str,
    reps: usize,
    results: &mut serde_json::Map<String, Value>,
) {
    println!(
        "\n== namespace labels: the repeated-image review under the enforce policy selecting its namespace by label (watched from a fake API server) vs the same policy without the selector; {reps} repetitions"
    );
    let api = kube_api::FakeApi::new();
    api.put("ml-prod", &[("env", "prod")]);
    let api_rt = tokio::runtime::Runtime::new().unwrap();
    let (api_addr, _api_task) = api_rt.block_on(api.serve_tls());
    let dir = enforce_cfg
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("labels");
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = kube_api::write_kubeconfig(api_addr, &dir);
    let text = std::fs::read_to_string(enforce_cfg).unwrap();
    let selected = "    namespaces: { matchLabels: { env: prod } }\n    trustRoot: ml-platform\n    mode: enforce";
    let labelled = text.replace("    trustRoot: ml-platform\n    mode: enforce", selected);
    assert_ne!(labelled, text, "the enforce policy was not found");
    let cfg = dir.join("signgate.yaml");
    std::fs::write(&cfg, labelled).unwrap();
    let labels = start_serve_with(
        lab,
        &cfg,
        &dir,
        &ServeOptions {
            env: &[("KUBECONFIG", &kubeconfig), ("HOME", "/nonexistent")],
            ..ServeOptions::default()
        },
    );
    let body = gpu_repeated_review(image);
    let body_path = out.join("gpu-repeated-review.json");
    std::fs::write(&body_path, &body).unwrap();
    let client = apiserver_client(lab);
    let t = Instant::now();
    loop {
        let (_, resp, _) = post(&client, &labels, body.clone());
        if resp["response"]["allowed"] == true {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(15), "{resp}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = api.seen().len();
    let mut runs = Vec::new();
    let mut ratios: BTreeMap<String, Vec<f64>> = Default::default();
    let servers = [
        ("enforce", enforce.url.as_str()),
        ("labels", labels.url.as_str()),
    ];
    for rep in 0..reps {
        for (c, got) in alternating_rep(out, "labels", &servers, &body_path, d, rep, &mut runs) {
            ratios
                .entry(format!("c{c}"))
                .or_default()
                .push(got["labels"] / got["enforce"]);
        }
    }
    let api_requests = api.seen().len() - before;
    println!("   label-selected / plain enforce throughput (min / median / max of {reps}):");
    let mut summary = ratio_summary(&ratios);
    println!("   requests to the API server during the runs: {api_requests}");
    summary.insert("api_requests_during_runs".into(), json!(api_requests));
    results.insert(
        "namespace_labels".into(),
        json!({"runs": runs.iter().map(Run::json).collect::<Vec<_>>(), "summary": summary}),
    );
}

fn one_container(image: &str) -> Value {
    pod(&[("trainer", image)], &[])
}

/// The CREATE review `uid(n)` in `ml-prod` of a Pod whose one container runs `image`.
fn one_container_review(n: u32, image: &str) -> Vec<u8> {
    pod_review(n, "ml-prod", &[("trainer", image)], &[])
}

/// min, median, max.
fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    (v[0], v[n / 2], v[n - 1])
}

// ------------------------------------------------------------------------------------------------

fn main() {
    let out = PathBuf::from(std::env::var("BENCH_OUT").unwrap_or_else(|_| "target/bench".into()));
    std::fs::create_dir_all(&out).unwrap();
    let duration = env_or("BENCH_DURATION", 5);
    let n_cold = env_or("BENCH_COLD", 5);
    let mem_repos = env_or("BENCH_MEM_REPOS", 10);
    let mem_tags = env_or("BENCH_MEM_TAGS", 1000);
    let mem_reviews = env_or("BENCH_MEM_REVIEWS", 100_000);
    let mut results = serde_json::Map::new();
    let t0 = Instant::now();

    println!("== lab: docker-registry + notary-server on 127.0.0.1, signing with the notary CLI");
    let lab = Lab::start();
    let notary = lab.notary();
    let trainer = sign_repo(&lab, &notary, "ml/pytorch-cuda", "v2.9", true);
    let fetcher = sign_repo(&lab, &notary, "ml/dataset-fetcher", "1.4.2", true);
    let dcgm = sign_repo(&lab, &notary, "ml/dcgm-exporter", "3.3.9", false);
    let cold: Vec<Signed> = (0..n_cold)
        .map(|i| sign_repo(&lab, &notary, &format!("ml/cold-{i}"), "v1", true))
        .collect();
    let burst = sign_repo(&lab, &notary, "ml/burst", "v1", true);
    println!(
        "   signed {} repositories in {:.1} s",
        4 + n_cold,
        t0.elapsed().as_secs_f64()
    );

    let t_mem = Instant::now();
    let mut mem_images = Vec::new();
    let mut mem_guns = Vec::new();
    for r in 0..mem_repos {
        let repo = format!("ml/bulk-{r}");
        let tags: Vec<String> = (0..mem_tags).map(|t| format!("build-{t:05}")).collect();
        sign_many_tags(&lab, &notary, &repo, &tags);
        mem_guns.push(lab.gun(&repo));
        mem_images.extend(tags.iter().map(|t| format!("{}:{t}", lab.gun(&repo))));
    }
    let mem_setup = t_mem.elapsed().as_secs_f64();
    println!(
        "   memory run: {} distinct signed tags in {mem_repos} repositories ({mem_tags} tags each, one notary publish per repository) in {mem_setup:.1} s",
        mem_images.len()
    );

    let dir = tempfile::tempdir().unwrap();
    let mut guns: Vec<String> = [&trainer, &fetcher, &dcgm, &burst]
        .iter()
        .map(|s| s.gun.clone())
        .collect();
    guns.extend(cold.iter().map(|s| s.gun.clone()));
    guns.extend(mem_guns.iter().cloned());
    let pins = lab.root_key_pins(&guns);
    let enforce_cfg = write_config(&lab, dir.path(), "enforce", &pins, true);
    let allow_cfg = write_config(&lab, dir.path(), "allow", &pins, false);
    let mem_cfg = write_config(&lab, dir.path(), "memory", &pins, true);

    // Memory server first, so its idle figure is right after start.
    let mem = start_serve(&lab, &mem_cfg, &dir.path().join("memory"));
    std::thread::sleep(Duration::from_secs(1));
    let idle = rss(mem.child.id());
    println!(
        "   idle RSS after start: {} KiB (HWM {} KiB)",
        idle.0, idle.1
    );

    let enforce = start_serve(&lab, &enforce_cfg, &dir.path().join("enforce"));
    let allow = start_serve(&lab, &allow_cfg, &dir.path().join("allow"));
    let floor = start_floor(&lab);
    // Diagnostic only: how much of the per-review cost is the structured log line.
    let quiet = start_serve_with(
        &lab,
        &enforce_cfg,
        &dir.path().join("enforce"),
        &ServeOptions {
            env: &[("SIGNGATE_LOG", "warn")],
            log: Some("serve-quiet.log"),
            ..ServeOptions::default()
        },
    );
    let client = apiserver_client(&lab);

    // The GPU training Pod, all three signed; the same bytes for every request.
    let body = pod_review(
        1,
        "ml-prod",
        &[("trainer", &trainer.image), ("dcgm-exporter", &dcgm.image)],
        &[("fetch-data", &fetcher.image)],
    );
    let body_path = out.join("gpu-pod-review.json");
    std::fs::write(&body_path, &body).unwrap();
    for (name, url) in [
        ("enforce", &enforce.url),
        ("allow", &allow.url),
        ("floor", &floor.url),
        ("enforce-nolog", &quiet.url),
    ] {
        let resp = post_once(&client, url, body.clone());
        assert_eq!(resp["response"]["allowed"], true, "{name}: {resp}");
    }
    let before_warm = upstream(&lab);

    let d = duration.to_string();
    let reps = env_or("BENCH_REPS", 3);
    namespace_label_runs(
        &lab,
        &out,
        &enforce,
        &enforce_cfg,
        &trainer.image,
        &d,
        reps,
        &mut results,
    );
    if stop_after("labels", &out, &results) {
        return;
    }
    cosign_runs(
        &lab,
        &out,
        &floor,
        &enforce,
        &enforce_cfg,
        &trainer,
        &d,
        reps,
        &mut results,
    );
    if stop_after("cosign", &out, &results) {
        return;
    }

    // Issue 16's body: one signed image named by the init container and three containers.
    println!(
        "\n== repeated image: the ~7.4 KB GPU Pod whose init container and three containers name one signed image; floor and enforce alternate, {reps} repetitions"
    );
    let repeated = gpu_repeated_review(&trainer.image);
    let repeated_path = out.join("gpu-repeated-review.json");
    std::fs::write(&repeated_path, &repeated).unwrap();
    let check = post_once(&client, &enforce.url, repeated.clone());
    assert_eq!(check["response"]["allowed"], true, "{check}");
    let mut rep_runs = Vec::new();
    let mut ratios: BTreeMap<String, Vec<f64>> = Default::default();
    let mut p99s: Vec<(f64, f64)> = Vec::new();
    let servers = [
        ("floor", floor.url.as_str()),
        ("enforce", enforce.url.as_str()),
    ];
    for rep in 0..reps {
        let by_c = alternating_rep(
            &out,
            "repeated",
            &servers,
            &repeated_path,
            &d,
            rep,
            &mut rep_runs,
        );
        for (c, got) in by_c {
            ratios
                .entry(format!("c{c}"))
                .or_default()
                .push(got["enforce"] / got["floor"]);
        }
        let args = fixed_4000rps_args();
        let f = h2load(
            &out,
            &format!("repeated-floor-4000rps-r{rep}"),
            &floor.url,
            &repeated_path,
            &args,
        );
        let e = h2load(
            &out,
            &format!("repeated-enforce-4000rps-r{rep}"),
            &enforce.url,
            &repeated_path,
            &args,
        );
        p99s.push((f.p99_ms, e.p99_ms));
        rep_runs.push(f);
        rep_runs.push(e);
    }
    println!("   enforce / floor throughput (min / median / max of {reps}):");
    let mut summary = ratio_summary(&ratios);
    let (flo, fmid, fhi) = spread(p99s.iter().map(|p| p.0).collect());
    let (elo, emid, ehi) = spread(p99s.iter().map(|p| p.1).collect());
    println!(
        "   p99 at 4000/s: floor {flo:.2} / {fmid:.2} / {fhi:.2} ms, enforce {elo:.2} / {emid:.2} / {ehi:.2} ms (min / median / max)"
    );
    summary.insert(
        "p99_4000rps_ms".into(),
        json!({"floor": [round(flo), round(fmid), round(fhi)], "enforce": [round(elo), round(emid), round(ehi)]}),
    );
    results.insert(
        "repeated_image".into(),
        json!({"runs": rep_runs.iter().map(Run::json).collect::<Vec<_>>(), "summary": summary}),
    );
    if stop_after("repeated", &out, &results) {
        return;
    }

    println!(
        "\n== warm: {duration} s per run, POST /validate?timeout=10s, the 3-container GPU Pod"
    );
    let mut warm = Vec::new();
    let mut plans: Vec<(String, Vec<String>)> = [1, 16, 64]
        .iter()
        .map(|&c| (format!("h1-c{c}"), h1_args(c, &d)))
        .collect();
    plans.push((
        "h2-c4-m16".into(),
        vec![
            "-c".into(),
            "4".into(),
            "-m".into(),
            "16".into(),
            "-D".into(),
            d.clone(),
            "--warm-up-time=1".into(),
        ],
    ));
    for (plan, args) in &plans {
        for (name, url) in [
            ("floor", &floor.url),
            ("allow", &allow.url),
            ("enforce", &enforce.url),
        ] {
            let r = h2load(&out, &format!("{name}-{plan}"), url, &body_path, args);
            warm.push(r);
        }
    }
    println!("   diagnostic: the enforcing server with SIGNGATE_LOG=warn (no per-review log line)");
    for (plan, args) in &plans[1..3] {
        warm.push(h2load(
            &out,
            &format!("enforce-nolog-{plan}"),
            &quiet.url,
            &body_path,
            args,
        ));
    }
    drop(quiet);
    results.insert(
        "warm".into(),
        Value::Array(warm.iter().map(Run::json).collect()),
    );

    println!("\n== fixed offered load: 4000 reviews/s (16 HTTP/1.1 connections x 250/s) for 10 s");
    let mut fixed = Vec::new();
    for (name, url) in [("floor", &floor.url), ("enforce", &enforce.url)] {
        let args = fixed_4000rps_args();
        fixed.push(h2load(
            &out,
            &format!("{name}-4000rps"),
            url,
            &body_path,
            &args,
        ));
    }
    results.insert(
        "fixed_4000rps".into(),
        Value::Array(fixed.iter().map(Run::json).collect()),
    );
    let after_warm = upstream(&lab);
    println!(
        "   upstream requests during all warm runs: notary {}, registry {} (registry digests expire after 5 s)",
        after_warm.0 - before_warm.0,
        after_warm.1 - before_warm.1
    );
    results.insert(
        "warm_upstream".into(),
        json!({"notary": after_warm.0 - before_warm.0, "registry": after_warm.1 - before_warm.1}),
    );

    println!(
        "\n== cold: first review of a never-seen signed image (new repository, targets/releases delegation), then again"
    );
    let crt = rt();
    let cold_client = apiserver_client(&lab);
    // Open the keep-alive connection first (healthz), so no sample pays the handshake.
    crt.block_on(async {
        cold_client
            .get(format!("{}/healthz", enforce.url))
            .send()
            .await
            .unwrap()
    });
    let mut cold_rows = Vec::new();
    let mut cold_ms = Vec::new();
    for (i, s) in cold.iter().enumerate() {
        let post_image = |n: u32| {
            post_timed(
                &crt,
                &cold_client,
                &format!("{}/validate?timeout=10s", enforce.url),
                one_container_review(n, &s.image),
            )
        };
        let (n0, r0) = upstream(&lab);
        let (ms, resp) = post_image(10 + i as u32);
        assert_eq!(resp["response"]["allowed"], true, "{resp}");
        let (n1, r1) = upstream(&lab);
        let (warm_ms, _) = post_image(40 + i as u32);
        let notary_uris = request_lines(&lab.notary_request_log()[n0..n1]);
        let registry_uris = request_lines(&lab.registry_request_log()[r0..r1]);
        println!(
            "   {}: cold {ms:.2} ms, {} notary + {} registry requests; same image again {warm_ms:.2} ms",
            s.image,
            n1 - n0,
            r1 - r0
        );
        cold_ms.push(ms);
        cold_rows.push(
            json!({"image": s.image, "cold_ms": round(ms), "warm_ms": round(warm_ms),
            "notary_requests": notary_uris, "registry_requests": registry_uris}),
        );
    }
    let mut sorted = cold_ms.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "   cold p50 {:.2} ms, max {:.2} ms over {} images",
        pct(&sorted, 50.0),
        sorted.last().unwrap(),
        sorted.len()
    );
    if let Some(r) = cold_rows.first() {
        for u in r["notary_requests"]
            .as_array()
            .unwrap()
            .iter()
            .chain(r["registry_requests"].as_array().unwrap())
        {
            println!("     {}", u.as_str().unwrap());
        }
    }
    results.insert(
        "cold".into(),
        json!({"p50_ms": round(pct(&sorted, 50.0)), "samples": cold_rows}),
    );

    println!(
        "\n== burst: 500 concurrent reviews of one never-seen image (HTTP/2, 5 connections x 100 streams)"
    );
    let burst_body = one_container_review(90, &burst.image);
    let burst_path = out.join("burst-review.json");
    std::fs::write(&burst_path, &burst_body).unwrap();
    let (n0, r0) = upstream(&lab);
    let b = h2load(
        &out,
        "enforce-burst500",
        &enforce.url,
        &burst_path,
        &["-n", "500", "-c", "5", "-m", "100"].map(String::from),
    );
    let (n1, r1) = upstream(&lab);
    let burst_notary = request_lines(&lab.notary_request_log()[n0..n1]);
    let burst_registry = request_lines(&lab.registry_request_log()[r0..r1]);
    println!(
        "   upstream: {} notary + {} registry requests",
        n1 - n0,
        r1 - r0
    );
    for u in burst_notary.iter().chain(&burst_registry) {
        println!("     {u}");
    }
    results.insert("burst".into(), json!({"run": b.json(), "notary_requests": burst_notary, "registry_requests": burst_registry}));

    drop(floor);
    if mem_images.is_empty() {
        println!("\n== memory run skipped (BENCH_MEM_REPOS=0)");
        save_results(&out, &results);
        return;
    }
    println!(
        "\n== memory: {mem_reviews} reviews over {} distinct signed images (16 HTTP/1.1 connections)",
        mem_images.len()
    );
    let before = upstream(&lab);
    let (mem_secs, mem_fail, mem_lat) = {
        let ca =
            reqwest::Certificate::from_pem(&std::fs::read(lab.ca_pem_path()).unwrap()).unwrap();
        let url = format!("{}/validate?timeout=10s", mem.url);
        let images = Arc::new(mem_images.clone());
        let next = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let t = Instant::now();
        let lat = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let mut tasks = Vec::new();
                for _ in 0..16 {
                    let client = reqwest::Client::builder()
                        .tls_backend_rustls()
                        .add_root_certificate(ca.clone())
                        .http1_only()
                        .no_proxy()
                        .timeout(Duration::from_secs(10))
                        .pool_max_idle_per_host(1)
                        .build()
                        .unwrap();
                    let (images, next, failed, url) =
                        (images.clone(), next.clone(), failed.clone(), url.clone());
                    tasks.push(tokio::spawn(async move {
                        let mut lat = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= mem_reviews {
                                return lat;
                            }
                            let image = &images[i % images.len()];
                            let body = review(
                                &format!("mem-{i}"),
                                "CREATE",
                                "ml-prod",
                                POD,
                                one_container(image),
                                Value::Null,
                            );
                            let s = Instant::now();
                            let ok = match client
                                .post(&url)
                                .header("content-type", "application/json")
                                .body(body)
                                .send()
                                .await
                            {
                                Ok(r) => r
                                    .json::<Value>()
                                    .await
                                    .is_ok_and(|v| v["response"]["allowed"] == true),
                                Err(_) => false,
                            };
                            lat.push(s.elapsed().as_secs_f64() * 1e3);
                            if !ok {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }));
                }
                let mut all = Vec::new();
                for t in tasks {
                    all.extend(t.await.unwrap());
                }
                all
            });
        (
            t.elapsed().as_secs_f64(),
            failed.load(Ordering::Relaxed),
            lat,
        )
    };
    let after = rss(mem.child.id());
    let up = upstream(&lab);
    let mut lat = mem_lat;
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "   {mem_reviews} reviews in {mem_secs:.1} s ({:.0}/s), {mem_fail} not allowed; p50 {:.2} ms p99 {:.2} ms; upstream notary {} registry {}",
        mem_reviews as f64 / mem_secs,
        pct(&lat, 50.0),
        pct(&lat, 99.0),
        up.0 - before.0,
        up.1 - before.1
    );
    println!(
        "   RSS after: {} KiB (HWM {} KiB); idle was {} KiB",
        after.0, after.1, idle.0
    );
    let enforce_rss = rss(enforce.child.id());
    println!(
        "   (the enforce server after the warm, cold and burst runs: RSS {} KiB, HWM {} KiB)",
        enforce_rss.0, enforce_rss.1
    );
    results.insert("memory".into(), json!({
        "distinct_images": mem_images.len(), "repositories": mem_repos, "tags_per_repository": mem_tags,
        "setup_seconds": round(mem_setup), "reviews": mem_reviews, "seconds": round(mem_secs),
        "not_allowed": mem_fail, "p50_ms": round(pct(&lat, 50.0)), "p99_ms": round(pct(&lat, 99.0)),
        "upstream_notary": up.0 - before.0, "upstream_registry": up.1 - before.1,
        "idle_rss_kib": idle.0, "idle_hwm_kib": idle.1, "after_rss_kib": after.0, "after_hwm_kib": after.1,
        "enforce_server_rss_kib": enforce_rss.0, "enforce_server_hwm_kib": enforce_rss.1,
    }));
    results.insert(
        "total_seconds".into(),
        json!(round(t0.elapsed().as_secs_f64())),
    );
    save_results(&out, &results);
    println!(
        "\n== results in {}/results.json; stopping everything",
        out.display()
    );
    drop((mem, enforce, allow));
    drop(lab);
}
