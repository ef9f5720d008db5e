//! Namespace labels from the watched cache (`upstream::namespaces`), against a fake API server
//! (`tests/kube_api`) played in process as the `tower` service of `kube::Client::new`: list and
//! watch, relabels within one event, a namespace created just before its Pod, deletions, a
//! watch that cannot be resumed (410 Gone, re-listed and counted), a server down at start or slow,
//! and reviews that fail closed only for label-selected policies.

mod faults;
mod kube_api;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube_api::FakeApi;
use signgate::admission::{ContainerImage, ContainerList};
use signgate::metrics::Metrics;
use signgate::upstream::namespaces::Connect;
use signgate::upstream::{NamespaceLabels, NamespaceWatch};
use time::OffsetDateTime;

fn started(api: &FakeApi) -> (Arc<NamespaceWatch>, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let w = NamespaceWatch::new(Connect::Client(api.client()), Arc::clone(&metrics));
    w.start(true);
    (w, metrics)
}

/// A watch [`started`] while the API server is down; once up, it will list namespace `ml` with
/// label `env` = `env`. The server, the watch, its metrics and the watch as the labels a review reads.
fn started_while_down(env: &str) -> (FakeApi, Arc<NamespaceWatch>, Arc<Metrics>, NamespaceLabels) {
    let api = FakeApi::new();
    api.put("ml", &[("env", env)]);
    api.set_down(true);
    let (w, metrics) = started(&api);
    let labels = NamespaceLabels::Cluster(Arc::clone(&w));
    (api, w, metrics, labels)
}

/// Polls `cond` every 10 ms for up to `limit`.
async fn eventually(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    t.elapsed()
}

async fn env_of(w: &NamespaceWatch, ns: &str) -> Result<Option<String>, String> {
    w.labels(ns).await.map(|l| l.map().get("env").cloned())
}

fn metric(m: &Metrics, name: &str) -> Option<f64> {
    m.encode()
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_come_from_one_list_and_follow_the_watch() {
    let api = FakeApi::new();
    api.put("ml-prod", &[("env", "prod")]);
    api.put("ml-dev", &[("env", "dev"), ("team", "ml")]);
    let (w, metrics) = started(&api);
    eventually("first list", Duration::from_secs(5), || w.synced()).await;
    assert_eq!(
        env_of(&w, "ml-prod").await.unwrap().as_deref(),
        Some("prod")
    );
    let dev = w.labels("ml-dev").await.unwrap();
    assert_eq!(dev.map().get("team").map(String::as_str), Some("ml"));
    assert_eq!(metric(&metrics, "signgate_kube_namespaces"), Some(2.0));

    // Only metadata was asked for, and a review's lookups asked nothing.
    let seen = api.seen();
    assert_eq!(seen.iter().filter(|s| !s.watch).count(), 1, "{seen:?}");
    assert!(
        seen.iter()
            .all(|s| s.accept.contains("as=PartialObjectMetadata")),
        "a request asked for whole objects: {seen:?}"
    );
    let before = api.seen().len();
    for _ in 0..100 {
        w.labels("ml-prod").await.unwrap();
    }
    assert_eq!(api.seen().len(), before, "a lookup went to the API server");

    // A relabel arrives with its watch event.
    api.put("ml-dev", &[("env", "prod")]);
    let took = eventually("relabel", Duration::from_secs(2), || {
        futures_util::FutureExt::now_or_never(env_of(&w, "ml-dev"))
            .is_some_and(|r| r.ok().flatten().as_deref() == Some("prod"))
    })
    .await;
    eprintln!("relabel seen after {took:?}");

    // Annotations and managed fields are not kept.
    let l = w.labels("ml-dev").await.unwrap();
    assert_eq!(l.map().len(), 1);

    // A namespace created just after its first Pod's review started is waited for.
    let lookup = {
        let w = Arc::clone(&w);
        tokio::spawn(async move { env_of(&w, "brand-new").await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    api.put("brand-new", &[("env", "prod")]);
    assert_eq!(lookup.await.unwrap().unwrap().as_deref(), Some("prod"));

    // A deleted namespace is gone: unknown, after the short wait, with the reason.
    api.delete("ml-prod");
    eventually("deletion", Duration::from_secs(2), || {
        futures_util::FutureExt::now_or_never(w.labels("ml-prod")).is_none()
    })
    .await;
    let t = Instant::now();
    let err = w.labels("ml-prod").await.unwrap_err();
    assert!(
        t.elapsed() >= Duration::from_millis(900) && t.elapsed() < Duration::from_secs(3),
        "{:?}",
        t.elapsed()
    );
    assert!(
        err.contains("\"ml-prod\" is not in the list of namespaces"),
        "{err}"
    );
    assert_eq!(
        metric(&metrics, "signgate_kube_watch_restarts_total"),
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_that_cannot_be_resumed_is_listed_again_and_counted() {
    let api = FakeApi::new();
    api.put("a", &[("env", "dev")]);
    api.put("b", &[("env", "dev")]);
    let (w, metrics) = started(&api);
    eventually("first list", Duration::from_secs(5), || w.synced()).await;
    assert_eq!(
        metric(&metrics, "signgate_kube_watch_restarts_total"),
        Some(0.0)
    );
    // While the watch is down: b relabelled, a deleted, c created; the history is compacted, so
    // the resumed watch gets 410 Gone and the state can only come from a new list.
    api.compact();
    api.drop_watches();
    api.put("b", &[("env", "prod")]);
    api.delete("a");
    api.put("c", &[("env", "prod")]);
    api.compact();
    eventually("re-list", Duration::from_secs(10), || api.lists() >= 2).await;
    eventually("b relabelled", Duration::from_secs(5), || {
        futures_util::FutureExt::now_or_never(env_of(&w, "b"))
            .is_some_and(|r| r.ok().flatten().as_deref() == Some("prod"))
    })
    .await;
    assert_eq!(env_of(&w, "c").await.unwrap().as_deref(), Some("prod"));
    assert!(
        w.labels("a").await.is_err(),
        "a deleted namespace survived the re-list"
    );
    assert!(
        metric(&metrics, "signgate_kube_watch_restarts_total").unwrap_or(0.0) >= 1.0,
        "{}",
        metrics.encode()
    );
    assert!(w.synced());
    // The 410 arrived as a watch ERROR event on a resumed watch.
    let seen = api.seen();
    assert!(
        seen.iter().any(|s| s.watch && s.resource_version.is_some()),
        "{seen:?}"
    );
}

/// A server that is down at start, then slow: until the first list, lookups fail after the short
/// wait with the API server's answer in the reason and the watch reports not ready; once up, the
/// list arrives without a restart of anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_at_start_then_slow_then_up() {
    let (api, w, metrics, labels) = started_while_down("prod");
    eventually("a failed attempt", Duration::from_secs(5), || {
        metric(&metrics, "signgate_kube_watch_errors_total").unwrap_or(0.0) >= 1.0
    })
    .await;
    let t = Instant::now();
    let err = w.labels("ml").await.unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(err.contains("has not completed"), "{err}");
    assert!(err.contains("503") || err.contains("down"), "{err}");
    let ready = labels.ready().unwrap_err();
    assert!(ready.contains("has not completed"), "{ready}");
    // A watch a reload started reports the same but keeps the replica in rotation.
    let after_reload = NamespaceWatch::new(Connect::Client(api.client()), Arc::clone(&metrics));
    after_reload.start(false);
    let detail = NamespaceLabels::Cluster(after_reload).ready().unwrap();
    assert!(
        detail
            .as_deref()
            .is_some_and(|d| d.contains("has not completed")),
        "{detail:?}"
    );

    // Up but slow: every answer takes 1.5 s, longer than a review waits.
    api.set_delay(Duration::from_millis(1500));
    api.set_down(false);
    let err = w.labels("ml").await.unwrap_err();
    assert!(err.contains("has not completed"), "{err}");
    eventually(
        "list through a slow server",
        Duration::from_secs(20),
        || w.synced(),
    )
    .await;
    // Failed first attempts are errors, not restarts.
    assert!(metric(&metrics, "signgate_kube_watch_errors_total").unwrap_or(0.0) >= 1.0);
    assert_eq!(
        metric(&metrics, "signgate_kube_watch_restarts_total"),
        Some(0.0)
    );
    assert_eq!(labels.ready(), Ok(None));
    assert_eq!(env_of(&w, "ml").await.unwrap().as_deref(), Some("prod"));
}

/// A review in a label-selected namespace while labels are unknown: the images whose policy
/// depends on the labels are denied with the reason (even where a warn policy might have
/// applied), every other image is decided by its own policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_labels_fail_closed_only_where_a_policy_needs_them() {
    let (api, w, _metrics, namespaces) = started_while_down("dev");
    let verifier = faults::verifier_for(
        r#"trustRoots: []
policies:
  - { name: system, images: ["registry.k8s.io/**"], action: allow }
  - { name: dev-anything, images: ["reg.test/ml/**"], namespaces: { matchLabels: { env: dev } }, action: allow }
  - { name: ml-deny, images: ["reg.test/ml/**"], action: deny }
  - { name: named, images: ["reg.test/tools/**"], namespaces: { names: [ml] }, action: allow }
defaultAction: deny
"#,
    );
    let images: Vec<ContainerImage> = [
        "registry.k8s.io/pause:3.10",
        "reg.test/ml/trainer:v1",
        "reg.test/tools/curl:v1",
    ]
    .iter()
    .enumerate()
    .map(|(i, image)| ContainerImage {
        container: format!("c{i}"),
        list: ContainerList::Containers,
        index: i,
        image: (*image).into(),
    })
    .collect();
    let limit = Arc::new(tokio::sync::Semaphore::new(4));
    let evaluate = || {
        signgate::verifier::evaluate(
            &verifier,
            &namespaces,
            &limit,
            "ml",
            &images,
            OffsetDateTime::now_utc(),
            Duration::from_secs(5),
        )
    };
    let eval = evaluate().await;
    let d: Vec<_> = eval.decisions.iter().map(|c| &c.decision).collect();
    assert!(!d[0].failed(), "system: {}", d[0].reason_text());
    assert!(d[1].failed() && !d[1].admitted(), "ml: {:?}", d[1].outcome);
    assert_eq!(d[1].reason_label(), "upstream_error");
    assert!(
        d[1].reason_text()
            .contains("labels of namespace \"ml\" are unknown"),
        "{}",
        d[1].reason_text()
    );
    assert!(!d[2].failed(), "named: {}", d[2].reason_text());
    let denial = eval.denial.expect("denied");
    assert!(denial.contains("c1"), "{denial}");
    assert!(!denial.contains("c0") && !denial.contains("c2"), "{denial}");

    // Up: the dev label lets the ml image in; relabelled to prod, the deny policy applies.
    api.set_down(false);
    eventually("first list", Duration::from_secs(10), || w.synced()).await;
    assert!(evaluate().await.denial.is_none());
    api.put("ml", &[("env", "prod")]);
    eventually("relabel to prod", Duration::from_secs(2), || {
        futures_util::FutureExt::now_or_never(env_of(&w, "ml"))
            .is_some_and(|r| r.ok().flatten().as_deref() == Some("prod"))
    })
    .await;
    let eval = evaluate().await;
    assert_eq!(
        eval.decisions[1].decision.reason_label(),
        "policy_deny",
        "{:?}",
        eval.denial
    );
}

/// The CLI does not read the cluster: `--namespace-label` gives the labels; without it an image
/// whose policy depends on them is denied saying how to give them, never silently mismatched.
#[test]
fn the_cli_takes_namespace_labels_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("signgate.yaml");
    std::fs::write(
        &config,
        r#"trustRoots: []
policies:
  - { name: dev-anything, images: ["reg.test/ml/**"], namespaces: { matchLabels: { env: dev } }, action: allow }
  - { name: ml-deny, images: ["reg.test/ml/**"], action: deny }
  - { name: tools, images: ["reg.test/tools/**"], action: allow }
defaultAction: deny
"#,
    )
    .unwrap();
    let manifest = dir.path().join("pod.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: ml}\nspec:\n  containers: [{name: c, image: \"reg.test/ml/x:v1\"}]\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_signgate"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let m = manifest.to_str().unwrap();
    for base in [
        &["verify", "--namespace", "ml", "reg.test/ml/x:v1"][..],
        &["check", "-f", m][..],
    ] {
        let (code, out) = run(base);
        assert_eq!(code, Some(1), "{base:?}: {out}");
        assert!(out.contains("--namespace-label"), "{base:?}: {out}");
        let (code, out) = run(&[base, &["--namespace-label", "env=dev"]].concat());
        assert_eq!(code, Some(0), "{base:?}: {out}");
        let (code, out) = run(&[
            base,
            &[
                "--namespace-label",
                "env=prod",
                "--namespace-label",
                "team=ml",
            ],
        ]
        .concat());
        assert_eq!(code, Some(1), "{base:?}: {out}");
        assert!(out.contains("ml-deny"), "{base:?}: {out}");
        let (code, out) = run(&[base, &["--namespace-label", "env"]].concat());
        assert_eq!(code, Some(2), "{base:?}: {out}");
    }
    // An image whose policy needs no labels is decided without them.
    let (code, out) = run(&["verify", "--namespace", "ml", "reg.test/tools/curl:v1"]);
    assert_eq!(code, Some(0), "{out}");
}
