//! Faults and a soak: `signgate serve` under steady AdmissionReview load (HTTP/1.1 keep-alive, as
//! kube-apiserver calls it) while the notary server and the registry are stopped and restarted, the
//! configuration is replaced by an invalid one and then a valid one, and the serving certificate is
//! rotated. Every answer must be a well-formed AdmissionReview (or a 400 for a malformed body), no
//! review that must be denied is ever allowed, the server never panics, recovers by itself when
//! its dependencies return, and its memory stays flat.
//!
//! Bounded: `SIGNGATE_SOAK_SECONDS` (default 45) of load at `SIGNGATE_SOAK_RPS` reviews/s (default
//! 300); `scripts/soak` runs the long version. `SIGNGATE_SOAK_OUT` names a file for the summary
//! (JSON).

#[allow(unused_imports)]
mod harness;
#[allow(unused_imports)]
mod webhook_support;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use webhook_support::*;

/// What a review is, and so what its answer must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Class {
    /// Two signed images in an enforcing namespace: allowed, or denied only for an upstream
    /// failure (fail closed) while a dependency is down.
    Signed,
    /// The same images in a Deployment's pod template.
    Deployment,
    /// An unsigned tag in an enforcing namespace: always denied.
    Unsigned,
    /// A signed and an unsigned image: always denied.
    Mixed,
    /// An image no policy covers (`defaultAction: deny`): always denied, never fetched.
    Outside,
    /// A signed tag pinned to a digest it is not signed for: always denied.
    WrongDigest,
    /// An unsigned tag in a warn namespace: always allowed, with a warning.
    Warn,
    /// Not an AdmissionReview: always HTTP 400.
    Malformed,
}

const CLASSES: [Class; 8] = [
    Class::Signed,
    Class::Deployment,
    Class::Unsigned,
    Class::Mixed,
    Class::Outside,
    Class::WrongDigest,
    Class::Warn,
    Class::Malformed,
];

impl Class {
    fn must_deny(self) -> bool {
        matches!(
            self,
            Class::Unsigned | Class::Mixed | Class::Outside | Class::WrongDigest
        )
    }
    fn may_fail_upstream(self) -> bool {
        matches!(self, Class::Signed | Class::Deployment)
    }
}

/// The review's uid carries its class and sequence number (UUID-shaped, as the API server's).
fn soak_uid(class: usize, n: u64) -> String {
    format!("50a40000-0000-4000-8{class:03x}-{n:012x}")
}

fn class_of_uid(uid: &str) -> Option<Class> {
    let i = usize::from_str_radix(uid.get(20..23)?, 16).ok()?;
    CLASSES.get(i).copied()
}

#[derive(Default)]
struct Tally {
    /// (class, outcome) → count; outcomes: allowed, warned, denied, bad_request.
    counts: BTreeMap<(Class, &'static str), u64>,
    transport_errors: u64,
    violations: Vec<String>,
    /// uids answered with HTTP 200 (each must have its log line).
    answered: Vec<String>,
    /// When a Signed review was last allowed.
    last_signed_allowed: Option<Instant>,
    /// Signed/Deployment denials while the registry was down.
    denied_during_registry_outage: u64,
    /// Signed/Deployment answers while the notary server was down: (allowed, denied).
    during_notary_outage: (u64, u64),
}

struct Shared {
    tally: Mutex<Tally>,
    stop: AtomicBool,
    registry_down: AtomicBool,
    notary_down: AtomicBool,
    seq: AtomicU64,
}

fn violation(shared: &Shared, text: String) {
    let mut t = shared.tally.lock().unwrap();
    if t.violations.len() < 50 {
        t.violations.push(text);
    }
}

/// Checks one answer against its class; counts it.
fn judge(shared: &Shared, class: Class, uid: &str, status: u16, body: &str) {
    if class == Class::Malformed {
        let outcome = if status == 400 {
            "bad_request"
        } else {
            violation(
                shared,
                format!("malformed body answered {status}, not 400: {body}"),
            );
            "wrong"
        };
        *shared
            .tally
            .lock()
            .unwrap()
            .counts
            .entry((class, outcome))
            .or_default() += 1;
        return;
    }
    if status != 200 {
        violation(shared, format!("{class:?} {uid}: HTTP {status}: {body}"));
        return;
    }
    let Ok(doc) = serde_json::from_str::<Value>(body) else {
        violation(shared, format!("{class:?} {uid}: not JSON: {body}"));
        return;
    };
    let r = &doc["response"];
    let well_formed = doc["apiVersion"] == "admission.k8s.io/v1"
        && doc["kind"] == "AdmissionReview"
        && r["uid"] == uid
        && r["allowed"].is_boolean()
        && r.get("patch").is_none();
    if !well_formed {
        violation(shared, format!("{class:?} {uid}: ill-formed answer: {doc}"));
        return;
    }
    let allowed = r["allowed"] == true;
    let warned = r["warnings"].as_array().is_some_and(|w| !w.is_empty());
    if !allowed
        && (r["status"]["code"] != 403 || r["status"]["message"].as_str().is_none_or(str::is_empty))
    {
        violation(
            shared,
            format!("{class:?} {uid}: a denial without code 403 and a message: {doc}"),
        );
    }
    let outcome = match (allowed, warned) {
        (true, false) => "allowed",
        (true, true) => "warned",
        (false, _) => "denied",
    };
    let expected = match class {
        c if c.must_deny() => !allowed,
        Class::Warn => allowed && warned,
        _ => !(allowed && warned),
    };
    if !expected {
        violation(shared, format!("{class:?} {uid}: {outcome}: {doc}"));
    }
    let mut t = shared.tally.lock().unwrap();
    *t.counts.entry((class, outcome)).or_default() += 1;
    t.answered.push(uid.to_owned());
    if class == Class::Signed && allowed {
        t.last_signed_allowed = Some(Instant::now());
    }
    if class.may_fail_upstream() && !allowed && shared.registry_down.load(Ordering::Relaxed) {
        t.denied_during_registry_outage += 1;
    }
    if class.may_fail_upstream() && shared.notary_down.load(Ordering::Relaxed) {
        if allowed {
            t.during_notary_outage.0 += 1;
        } else {
            t.during_notary_outage.1 += 1;
        }
    }
}

/// One load loop: the review classes in turn, paced to `period` per request.
async fn load(
    client: reqwest::Client,
    url: String,
    templates: Arc<Vec<(Class, String)>>,
    shared: Arc<Shared>,
    period: Duration,
    offset: usize,
) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut i = offset;
    while !shared.stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let (class, template) = &templates[i % templates.len()];
        i += 1;
        let n = shared.seq.fetch_add(1, Ordering::Relaxed);
        let ci = CLASSES.iter().position(|c| c == class).unwrap();
        let uid = soak_uid(ci, n);
        let body = template.replace("UID-PLACEHOLDER", &uid);
        match client
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, */*")
            .body(body)
            .send()
            .await
        {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.text().await {
                    Ok(text) => judge(&shared, *class, &uid, status, &text),
                    Err(e) => {
                        shared.tally.lock().unwrap().transport_errors += 1;
                        violation(&shared, format!("{class:?} {uid}: reading the answer: {e}"));
                    }
                }
            }
            Err(e) => {
                shared.tally.lock().unwrap().transport_errors += 1;
                violation(&shared, format!("{class:?} {uid}: {e:?}"));
            }
        }
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The value of one sample line of `/metrics` (0 when absent).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// `signgate_upstream_requests_total` samples whose status is not 200, by upstream.
fn upstream_failures(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for l in text.lines() {
        let Some(labels) = l.strip_prefix("signgate_upstream_requests_total{") else {
            continue;
        };
        if labels.contains(r#"status="200""#) {
            continue;
        }
        let upstream = if labels.contains(r#"upstream="registry""#) {
            "registry"
        } else {
            "notary"
        };
        let value: f64 = l
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *out.entry(upstream.to_owned()).or_default() += value;
    }
    out
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Writes `content` to `path` by rename (atomic, as a ConfigMap or Secret update).
fn replace_file(path: &Path, content: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Polls `done` every 100 ms for up to `limit`; the time it took, or a panic naming `what`.
fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    started.elapsed()
}

#[test]
fn serves_through_dependency_outages_config_and_certificate_changes_without_letting_anything_through()
 {
    let seconds = env_u64("SIGNGATE_SOAK_SECONDS", 45).max(30);
    let rps = env_u64("SIGNGATE_SOAK_RPS", 300).max(10);
    let mut s = setup();
    let host = s.lab.registry_host();

    // signgate serves a copy of the lab's certificate, so rotating it touches nothing else.
    let serve_dir = tempfile::tempdir().unwrap();
    let cert = serve_dir.path().join("tls.crt");
    let key = serve_dir.path().join("tls.key");
    let pki = s.lab.dir().join("pki");
    std::fs::copy(pki.join("server.crt"), &cert).unwrap();
    std::fs::copy(pki.join("server.key"), &key).unwrap();
    // Trust data is checked again every 2 s (not 30), so the notary outage is felt.
    s.serve = start_serve_with(
        &s.lab,
        &s.config,
        serve_dir.path(),
        &ServeOptions {
            tls: Some((&cert, &key)),
            args: &["--trust-refresh", "2"],
            ..ServeOptions::default()
        },
    );
    let pid = s.serve.child.id();

    let wrong = format!(
        "{}@sha256:{}",
        s.signed,
        "0".repeat(64) // a digest the tag is not signed for
    );
    let signed_pair = [
        ("trainer", s.signed.as_str()),
        ("exporter", &s.other_signed),
    ];
    let template = |kind: (&str, &str, &str), namespace: &str, object: Value| {
        String::from_utf8(review(
            "UID-PLACEHOLDER",
            "CREATE",
            namespace,
            kind,
            object,
            Value::Null,
        ))
        .unwrap()
    };
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "trainer", "namespace": "ml-prod"},
        "spec": {"replicas": 8, "selector": {"matchLabels": {"app": "trainer"}},
                 "template": {"metadata": {"labels": {"app": "trainer"}},
                              "spec": pod_spec(&signed_pair, &[])}}
    });
    let templates = Arc::new(vec![
        (
            Class::Signed,
            template(POD, "ml-prod", pod(&signed_pair, &[])),
        ),
        (
            Class::Deployment,
            template(("apps", "v1", "Deployment"), "ml-prod", deployment),
        ),
        (
            Class::Unsigned,
            template(POD, "ml-prod", pod(&[("trainer", &s.unsigned)], &[])),
        ),
        (
            Class::Mixed,
            template(
                POD,
                "ml-prod",
                pod(&[("trainer", &s.signed)], &[("fetch", &s.unsigned)]),
            ),
        ),
        (
            Class::Outside,
            template(
                POD,
                "ml-prod",
                pod(&[("shell", "docker.io/library/busybox:1.36")], &[]),
            ),
        ),
        (
            Class::WrongDigest,
            template(POD, "ml-prod", pod(&[("trainer", &wrong)], &[])),
        ),
        (
            Class::Warn,
            template(POD, "ml-dev", pod(&[("trainer", &s.unsigned)], &[])),
        ),
        (
            Class::Malformed,
            r#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"UID-PLACEHOLDER""#
                .to_owned(),
        ),
    ]);
    assert!(host.starts_with("127.0.0.1:"));

    let shared = Arc::new(Shared {
        tally: Mutex::default(),
        stop: AtomicBool::new(false),
        registry_down: AtomicBool::new(false),
        notary_down: AtomicBool::new(false),
        seq: AtomicU64::new(0),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // 8 loops over 4 keep-alive clients (kube-apiserver keeps a pool of connections per webhook).
    let loops = 8u64;
    let period = Duration::from_micros(1_000_000 * loops / rps);
    let url = format!("{}/validate?timeout=10s", s.serve.url);
    let clients: Vec<reqwest::Client> = (0..4).map(|_| apiserver_client(&s.lab)).collect();
    let tasks: Vec<_> = (0..loops as usize)
        .map(|i| {
            runtime.spawn(load(
                clients[i % clients.len()].clone(),
                url.clone(),
                Arc::clone(&templates),
                Arc::clone(&shared),
                period,
                i,
            ))
        })
        .collect();

    // Memory, sampled every 250 ms.
    let samples: Arc<Mutex<Vec<(Duration, u64)>>> = Arc::default();
    let started = Instant::now();
    let sampler = {
        let samples = Arc::clone(&samples);
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || {
            while !shared.stop.load(Ordering::Relaxed) {
                if let Some(kib) = rss_kib(pid) {
                    samples.lock().unwrap().push((started.elapsed(), kib));
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        })
    };
    let at = |fraction: f64| started + Duration::from_secs_f64(seconds as f64 * fraction);
    let sleep_until = |t: Instant| std::thread::sleep(t.saturating_duration_since(Instant::now()));
    let signed_allowed_since = |t: Instant| {
        shared
            .tally
            .lock()
            .unwrap()
            .last_signed_allowed
            .is_some_and(|a| a > t)
    };
    // Waits (up to `limit`) for a signed Pod admitted from now on: how long that took.
    let admitted_again = |what: &str, limit: Duration| {
        let t = Instant::now();
        wait_for(what, limit, || signed_allowed_since(t))
    };
    // Waits (up to 15 s) until `signgate_config_reloads_total{result=...}` reaches `at_least`.
    let reloads_reach = |what: &str, result: &str, at_least: f64| {
        let series = format!("signgate_config_reloads_total{{result=\"{result}\"}}");
        wait_for(what, Duration::from_secs(15), || {
            metric(&metrics_text(&s.serve), &series) >= at_least
        });
    };
    let mut events: Vec<(String, Duration)> = Vec::new();
    let mut event = |name: &str| events.push((name.to_owned(), started.elapsed()));

    // Steady state first: the signed Pod is admitted.
    let warm = wait_for("a signed Pod admitted", Duration::from_secs(20), || {
        signed_allowed_since(started)
    });
    event("warm");
    sleep_until(at(0.12));
    let baseline_kib = samples
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.1)
        .max()
        .unwrap_or(0);

    // The notary server goes away and comes back.
    shared.notary_down.store(true, Ordering::Relaxed);
    s.lab.stop_notary();
    event("notary stopped");
    sleep_until(at(0.24));
    s.lab.start_notary();
    shared.notary_down.store(false, Ordering::Relaxed);
    event("notary started");
    let notary_recovery =
        admitted_again("recovery after the notary outage", Duration::from_secs(30));

    // The registry process is killed and restarted (longer than the 5 s digest cache, so
    // verifications must fail closed for a while).
    sleep_until(at(0.30));
    shared.registry_down.store(true, Ordering::Relaxed);
    s.lab.stop_registry();
    event("registry stopped");
    let outage = Duration::from_secs(8).max(Duration::from_secs(seconds).mul_f64(0.15));
    sleep_until(Instant::now() + outage);
    s.lab.start_registry();
    shared.registry_down.store(false, Ordering::Relaxed);
    event("registry started");
    let registry_recovery = admitted_again(
        "recovery after the registry outage",
        Duration::from_secs(30),
    );

    // An invalid configuration: refused, reported once, the last good one keeps serving; then a
    // valid change is applied (which starts the caches afresh).
    let good = std::fs::read_to_string(&s.config).unwrap();
    replace_file(&s.config, format!("{good}\nbogusKey: 1\n").as_bytes());
    event("invalid configuration written");
    reloads_reach("the invalid configuration reported", "failure", 1.0);
    let mid = Instant::now().max(at(0.62));
    sleep_until(mid);
    replace_file(
        &s.config,
        format!("{good}\n# soak: valid again\n").as_bytes(),
    );
    event("valid configuration written");
    reloads_reach("the valid configuration applied", "success", 2.0);
    let reload_recovery = admitted_again("admission after the reload", Duration::from_secs(30));

    // The serving certificate is rotated (a new key from the same CA, as cert-manager renews).
    sleep_until(at(0.75));
    let expiry_before = metric(
        &metrics_text(&s.serve),
        "signgate_tls_certificate_expiry_timestamp_seconds",
    );
    let (new_cert, new_key) = s.lab.issue_server_cert("server-renewed", 1);
    replace_file(&key, &std::fs::read(new_key).unwrap());
    replace_file(&cert, &std::fs::read(new_cert).unwrap());
    event("certificate rotated");
    wait_for(
        "the new certificate served",
        Duration::from_secs(15),
        || {
            let m = metrics_text(&s.serve);
            let e = metric(&m, "signgate_tls_certificate_expiry_timestamp_seconds");
            e != expiry_before && e > 0.0
        },
    );

    // Steady to the end, then a last admission proves everything came back.
    sleep_until(at(1.0));
    admitted_again("a signed Pod admitted at the end", Duration::from_secs(20));
    shared.stop.store(true, Ordering::Relaxed);
    for task in tasks {
        runtime.block_on(task).unwrap();
    }
    sampler.join().unwrap();
    let elapsed = started.elapsed();
    drop(runtime);

    // The server is alive and never panicked; every answered review has its log line.
    assert!(
        s.serve.child.try_wait().unwrap().is_none(),
        "signgate serve exited"
    );
    let metrics = metrics_text(&s.serve);
    let answered = shared.tally.lock().unwrap().answered.len();
    let log = log_when(&s.serve, |log| {
        log.lines()
            .filter(|l| l.contains("admission review"))
            .count()
            >= answered
    });
    assert!(!log.contains("panicked"), "a panic in the server log");
    let mut verdicts: HashMap<String, Vec<String>> = HashMap::new();
    for line in log.lines().filter(|l| l.contains("admission review")) {
        let doc: Value = serde_json::from_str(line).unwrap();
        let v = doc["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["verdict"].as_str().unwrap().to_owned())
            .collect();
        verdicts.insert(doc["uid"].as_str().unwrap().to_owned(), v);
    }
    let refusals = log
        .lines()
        .filter(|l| l.contains("configuration refused"))
        .count();

    let tally = shared.tally.lock().unwrap();
    let mut missing_log = 0;
    let mut unexpected_reasons: BTreeMap<String, u64> = BTreeMap::new();
    for uid in &tally.answered {
        let Some(v) = verdicts.get(uid) else {
            missing_log += 1;
            continue;
        };
        let class = class_of_uid(uid).unwrap();
        for verdict in v {
            let fine = match class {
                // A signed image fails only because an upstream failed.
                c if c.may_fail_upstream() => {
                    ["ok", "upstream_error", "timeout"].contains(&verdict.as_str())
                }
                _ => true,
            };
            if !fine {
                *unexpected_reasons
                    .entry(format!("{class:?}: {verdict}"))
                    .or_default() += 1;
            }
        }
    }
    let samples = samples.lock().unwrap();
    let peak_kib = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let last_quarter = samples
        .iter()
        .filter(|s| s.0 > elapsed.mul_f64(0.75))
        .map(|s| s.1)
        .max()
        .unwrap_or(0);
    let reviews: u64 = tally.counts.values().sum();
    let summary = json!({
        "seconds": elapsed.as_secs_f64(),
        "offered_rps": rps,
        "reviews": reviews,
        "reviews_per_second": reviews as f64 / elapsed.as_secs_f64(),
        "counts": tally.counts.iter().map(|((c, o), n)| (format!("{c:?}/{o}"), *n)).collect::<BTreeMap<_, _>>(),
        "transport_errors": tally.transport_errors,
        "violations": tally.violations.len(),
        "unexpected_verdicts": &unexpected_reasons,
        "answers_without_a_log_line": missing_log,
        "signed_denied_during_registry_outage": tally.denied_during_registry_outage,
        "signed_during_notary_outage": {"allowed": tally.during_notary_outage.0, "denied": tally.during_notary_outage.1},
        "warm_up_s": warm.as_secs_f64(),
        "recovery_s": {
            "notary": notary_recovery.as_secs_f64(),
            "registry": registry_recovery.as_secs_f64(),
            "config_reload": reload_recovery.as_secs_f64(),
        },
        "rss_kib": {"after_warm_up": baseline_kib, "last_quarter_max": last_quarter, "peak": peak_kib},
        "config_refusals_logged": refusals,
        "events_s": events.iter().map(|(n, t)| json!([n, t.as_secs_f64()])).collect::<Vec<_>>(),
        "server_metrics": {
            "upstream_requests_not_200": upstream_failures(&metrics),
            "tls_reloads": metric(&metrics, r#"signgate_tls_certificate_reloads_total{result="success"}"#),
            "config_failures": metric(&metrics, r#"signgate_config_reloads_total{result="failure"}"#),
        },
    });
    let pretty = serde_json::to_string_pretty(&summary).unwrap();
    println!("soak summary:\n{pretty}");
    if let Ok(out) = std::env::var("SIGNGATE_SOAK_OUT") {
        std::fs::write(out, &pretty).unwrap();
    }

    assert!(
        tally.violations.is_empty(),
        "{} wrong answers, first ones:\n{}",
        tally.violations.len(),
        tally.violations.join("\n")
    );
    assert_eq!(tally.transport_errors, 0, "requests failed in transport");
    assert!(unexpected_reasons.is_empty(), "{unexpected_reasons:?}");
    assert_eq!(missing_log, 0, "answers without their log line");
    for class in CLASSES {
        let n: u64 = tally
            .counts
            .iter()
            .filter(|((c, _), _)| *c == class)
            .map(|(_, n)| n)
            .sum();
        assert!(n > 0, "no {class:?} review was answered");
    }
    assert!(
        tally.denied_during_registry_outage > 0,
        "the registry outage never made a verification fail closed: {pretty}"
    );
    assert!(
        upstream_failures(&metrics)
            .get("notary")
            .copied()
            .unwrap_or(0.0)
            > 0.0,
        "the notary outage was never felt: {pretty}"
    );
    assert_eq!(refusals, 1, "the invalid configuration is reported once");
    assert!(
        metric(
            &metrics,
            r#"signgate_tls_certificate_reloads_total{result="success"}"#
        ) >= 1.0
    );
    // Flat memory: bounded, and the last quarter no higher than 1.5× the warmed-up size + 16 MiB.
    assert!(peak_kib < 128 * 1024, "peak RSS {peak_kib} KiB");
    assert!(
        last_quarter <= baseline_kib * 3 / 2 + 16 * 1024,
        "RSS grew: {baseline_kib} KiB after warm-up, {last_quarter} KiB at the end"
    );
}
