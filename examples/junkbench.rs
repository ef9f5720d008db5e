//! Junk signatures against `signgate serve` (issue 23, `scripts/bench --junk`): a hostile HTTPS
//! registry in this process (`tests/faults`, one request per connection) serves the junk of
//! `tests/junk` at the caps and a genuinely signed image; `signgate serve` (release build, its own
//! process, the lab's serving certificate) verifies them under a Notation root and a cosign root
//! of 8 keys. Measured in one run:
//!
//! 1. CPU per image (the server's utime + stime from /proc, over BENCH_JUNK_IMAGES distinct
//!    images of each kind reviewed one at a time), beside a genuine never-seen image (the
//!    baseline) and a warm one;
//! 2. the latency of an unrelated, already-verified image's review (one kept-alive connection,
//!    sequential) alone, then while 16 connections post reviews of never-seen junk images
//!    (each a fresh referrers list, so the negative cache cannot answer), BENCH_DURATION seconds
//!    each; and the slowest junk review against the 8 s review deadline.
//!
//! The hostile registry and the junk-posting connections stand for other machines (a registry,
//! the API server's other requests): their threads run at the lowest priority (nice 19), so the
//! machine's two cores measure signgate's own handling of junk, not the load generator's. The
//! probe has a runtime of its own at the usual priority.
//!
//! Everything on 127.0.0.1; bounded by image counts and durations.

mod bench_support;
#[path = "../tests/crafted/mod.rs"]
mod crafted;
#[path = "../tests/faults/mod.rs"]
mod faults;
#[path = "../tests/harness/mod.rs"]
mod harness;
#[path = "../tests/junk/mod.rs"]
mod junk;
#[path = "../tests/webhook_support/mod.rs"]
mod webhook_support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use bench_support::{env_or, pct, round};
use crafted::{ROOT, YEARS, cert, jws_over, key, leaf_exts, root};
use harness::Lab;
use junk::{Envelope, Kind, Registry};
use webhook_support::{POD, apiserver_client, pod, review, start_serve, uid};

const COSIGN_KEYS: u8 = 8;

/// The server's CPU so far (user + system), in milliseconds.
fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on Linux.
    ticks as f64 * 10.0
}

/// Runs the calling thread at nice 19 (threads that stand for other machines).
fn lowest_priority() {
    let tid = rustix::thread::gettid();
    rustix::process::setpriority_process(Some(tid), 19).expect("setpriority");
}

fn genuine(image: &signgate::notation::Descriptor) -> Envelope {
    let leaf = cert(
        "CN=ml-ci,O=acme,ST=WA,C=US",
        &key(3),
        (ROOT, &key(1)),
        YEARS,
        leaf_exts(),
    );
    Envelope::new(
        signgate::notation::MEDIA_TYPE_JWS,
        jws_over(image, &key(3), &[leaf, root()], |_| {}),
    )
}

fn body(n: u32, image: &str) -> Vec<u8> {
    review(
        &uid(n % 100),
        "CREATE",
        "ml-prod",
        POD,
        pod(&[("main", image)], &[]),
        Value::Null,
    )
}

struct Client {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    url: String,
}

impl Client {
    /// (ms, allowed, message) of one review.
    async fn post(http: &reqwest::Client, url: &str, body: Vec<u8>) -> (f64, bool, String) {
        let t = Instant::now();
        let r = http
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let v: Value = r.json().await.unwrap();
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let allowed = v["response"]["allowed"].as_bool().unwrap_or(false);
        let message = v["response"]["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        (ms, allowed, message)
    }

    fn one(&self, body: Vec<u8>) -> (f64, bool, String) {
        self.rt.block_on(Client::post(&self.http, &self.url, body))
    }
}

fn main() {
    let n = env_or("BENCH_JUNK_IMAGES", 64);
    let pool = env_or("BENCH_JUNK_POOL", 4000);
    let duration = Duration::from_secs(env_or("BENCH_DURATION", 5) as u64);
    let lab = Lab::start();

    // The hostile registry, on a runtime of its own.
    let registry_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("junk-registry")
        .on_thread_start(lowest_priority)
        .enable_all()
        .build()
        .unwrap();
    let mut reg = Registry::default();
    let server = registry_rt.block_on(faults::Server::tls(reg.router()));
    let host = server.url().trim_start_matches("https://").to_owned();

    let t0 = Instant::now();
    let good = reg.image("notation/app", "good");
    reg.notation("notation/app", &good, &[genuine(&good)]);
    let mut cache = HashMap::new();
    for kind in Kind::ALL {
        for i in 0..n {
            let img = reg.image("notation/cpu", &format!("{}-{i}", kind.name()));
            let envelopes = kind.envelopes(&img, &mut cache);
            reg.notation("notation/cpu", &img, &envelopes);
        }
    }
    for i in 0..n {
        let img = reg.image("notation/cpu", &format!("genuine-{i}"));
        reg.notation("notation/cpu", &img, &[genuine(&img)]);
    }
    let attacker: Vec<_> = (0..signgate::cosign::MAX_LAYERS)
        .map(|i| key(50 + i as u8))
        .collect();
    let cosign_repo = format!("{host}/cosign/cpu");
    for i in 0..n {
        let img = reg.image("cosign/cpu", &format!("junk-{i}"));
        reg.cosign("cosign/cpu", &cosign_repo, &img, &attacker);
        let img = reg.image("cosign/cpu", &format!("genuine-{i}"));
        reg.cosign("cosign/cpu", &cosign_repo, &img, &[key(200)]);
    }
    for i in 0..pool {
        let img = reg.image("notation/load", &format!("junk-{i}"));
        let envelopes = Kind::UntrustedChains.envelopes(&img, &mut cache);
        reg.notation("notation/load", &img, &envelopes);
    }
    println!(
        "== junk registry at {host}: {} images made in {:.1} s",
        5 * n + 2 * n + pool + 1,
        t0.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("registry-ca.pem"), faults::ca_pem()).unwrap();
    std::fs::write(dir.path().join("ca.pem"), crafted::pem(&root())).unwrap();
    let config = dir.path().join("signgate.yaml");
    std::fs::write(&config, junk::config(&host, COSIGN_KEYS)).unwrap();
    let serve = start_serve(&lab, &config, dir.path());
    let pid = serve.child.id();
    let client = Client {
        rt: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
        http: apiserver_client(&lab),
        url: format!("{}/validate?timeout=10s", serve.url),
    };
    let good_image = format!("{host}/notation/app:good");
    let (_, allowed, message) = client.one(body(0, &good_image));
    assert!(allowed, "the genuine image: {message}");

    // 1. CPU per image, one review at a time.
    let mut results = serde_json::Map::new();
    println!(
        "\n| image (one review at a time, {n} distinct each) | server CPU per image | review p50 | review max | answer |"
    );
    println!("|---|---|---|---|---|");
    let mut rows: Vec<(String, String, bool)> = Kind::ALL
        .iter()
        .map(|k| {
            (
                k.name().to_owned(),
                format!("notation/cpu:{}", k.name()),
                false,
            )
        })
        .collect();
    rows.push((
        "notation genuine, cold".into(),
        "notation/cpu:genuine".into(),
        true,
    ));
    rows.push((
        "cosign 32 layers × 8 keys".into(),
        "cosign/cpu:junk".into(),
        false,
    ));
    rows.push((
        "cosign genuine, cold".into(),
        "cosign/cpu:genuine".into(),
        true,
    ));
    for (label, prefix, expect) in rows {
        let before = cpu_ms(pid);
        let mut ms = Vec::new();
        let mut last = String::new();
        for i in 0..n {
            let image = format!("{host}/{prefix}-{i}");
            let (t, allowed, message) = client.one(body(i as u32, &image));
            assert_eq!(allowed, expect, "{image}: {message}");
            ms.push(t);
            last = message;
        }
        let cpu = (cpu_ms(pid) - before) / n as f64;
        ms.sort_by(f64::total_cmp);
        // The denial after the image's name: the trust root, the reason and its first words.
        let reason = last
            .split_once(&format!("{prefix}-{}", n - 1))
            .map_or(last.as_str(), |(_, rest)| rest)
            .trim_start_matches([':', ' '])
            .chars()
            .take(90)
            .collect::<String>()
            .replace('|', "/");
        println!(
            "| {label} | {cpu:.2} ms | {:.1} ms | {:.1} ms | {} |",
            pct(&ms, 50.0),
            pct(&ms, 100.0),
            if expect { "allowed" } else { &reason }
        );
        results.insert(
            label,
            json!({"cpu_ms": round(cpu), "p50_ms": round(pct(&ms, 50.0)), "max_ms": round(pct(&ms, 100.0))}),
        );
    }
    let before = cpu_ms(pid);
    let warm_n = 1000;
    for i in 0..warm_n {
        client.one(body(i, &good_image));
    }
    println!(
        "| notation genuine, warm ({warm_n} reviews) | {:.3} ms | | | allowed |",
        (cpu_ms(pid) - before) / f64::from(warm_n)
    );

    // 2. The unrelated warm image, alone and beside junk at c=16.
    // The junk posters on a runtime of nice-19 threads, the probe on one of its own.
    let junk_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("junk-client")
        .on_thread_start(lowest_priority)
        .enable_all()
        .build()
        .unwrap();
    let probe = |junk: bool| -> (Vec<f64>, Vec<f64>, usize) {
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        if junk {
            for _ in 0..16 {
                let (stop, next) = (Arc::clone(&stop), Arc::clone(&next));
                let (http, url, host) = (client.http.clone(), client.url.clone(), host.clone());
                tasks.push(junk_rt.spawn(async move {
                    let mut ms = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        assert!(i < pool, "the junk pool ran out: raise BENCH_JUNK_POOL");
                        let image = format!("{host}/notation/load:junk-{i}");
                        let (t, allowed, message) =
                            Client::post(&http, &url, body(i as u32, &image)).await;
                        assert!(!allowed, "{image}: {message}");
                        ms.push(t);
                    }
                    ms
                }));
            }
        }
        let probe_rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let probe_http = apiserver_client(&lab);
        let mut probe = probe_rt.block_on(async {
            let started = Instant::now();
            let mut probe = Vec::new();
            let mut i = 0;
            while started.elapsed() < duration {
                let (t, allowed, message) =
                    Client::post(&probe_http, &client.url, body(i, &good_image)).await;
                assert!(allowed, "{message}");
                probe.push(t);
                i += 1;
            }
            probe
        });
        stop.store(true, Ordering::Relaxed);
        let mut junk_ms = Vec::new();
        for t in tasks {
            junk_ms.extend(junk_rt.block_on(t).unwrap());
        }
        probe.sort_by(f64::total_cmp);
        junk_ms.sort_by(f64::total_cmp);
        (probe, junk_ms, next.load(Ordering::Relaxed))
    };
    let (quiet, _, _) = probe(false);
    let before = cpu_ms(pid);
    let (loaded, junk_ms, junk_n) = probe(true);
    let junk_cpu = (cpu_ms(pid) - before) / junk_n.max(1) as f64;
    let (q99, l99) = (pct(&quiet, 99.0), pct(&loaded, 99.0));
    println!(
        "\n| unrelated warm image, one connection | reviews | p50 | p99 | max |\n|---|---|---|---|---|"
    );
    for (label, v) in [("quiet", &quiet), ("beside junk at c=16", &loaded)] {
        println!(
            "| {label} | {} | {:.2} ms | {:.2} ms | {:.2} ms |",
            v.len(),
            pct(v, 50.0),
            pct(v, 99.0),
            pct(v, 100.0)
        );
    }
    println!(
        "\np99 loaded / quiet = {:.2}; junk reviews: {} in {:?} ({:.0}/s), p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (deadline 8 s); server CPU per junk review under load {:.2} ms",
        l99 / q99,
        junk_ms.len(),
        duration,
        junk_ms.len() as f64 / duration.as_secs_f64(),
        pct(&junk_ms, 50.0),
        pct(&junk_ms, 99.0),
        pct(&junk_ms, 100.0),
        junk_cpu
    );
    results.insert(
        "warm_beside_junk".into(),
        json!({"quiet_p99_ms": round(q99), "loaded_p99_ms": round(l99), "ratio": round(l99 / q99),
               "junk_reviews": junk_ms.len(), "junk_max_ms": round(pct(&junk_ms, 100.0)),
               "junk_cpu_ms": round(junk_cpu)}),
    );
    let out = Path::new("target/bench");
    std::fs::create_dir_all(out).unwrap();
    std::fs::write(
        out.join("junk.json"),
        serde_json::to_vec_pretty(&Value::Object(results)).unwrap(),
    )
    .unwrap();
    drop(server);
}
