//! `signgate serve` with a kubeconfig pointing at a fake API server on loopback HTTPS
//! (`tests/kube_api`), the real registry and notary server of the harness, and reviews posted as
//! kube-apiserver does: not ready and failing closed for label-selected policies while the API
//! server is down (every other policy served), ready once the namespaces are listed, a relabelled
//! namespace (`env: dev` -> `env: prod`) decided under the prod policy within a second, and a
//! watch the server cannot resume re-listed and counted.

#[allow(unused_imports)]
mod faults;
#[allow(unused_imports)]
mod harness;
mod kube_api;
#[allow(unused_imports)]
mod webhook_support;

use std::time::{Duration, Instant};

use kube_api::FakeApi;
use serde_json::Value;
use webhook_support::*;

fn ready_status(client: &reqwest::Client, s: &Serve) -> (u16, String) {
    rt().block_on(async {
        let r = client
            .get(format!("{}/readyz", s.url))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

/// The review's verdict: (allowed, message, warnings).
fn decide(
    client: &reqwest::Client,
    s: &Serve,
    n: u32,
    ns: &str,
    images: &[&str],
) -> (bool, String, String) {
    let containers: Vec<(String, &str)> = images
        .iter()
        .enumerate()
        .map(|(i, im)| (format!("c{i}"), *im))
        .collect();
    let containers: Vec<(&str, &str)> = containers.iter().map(|(c, i)| (c.as_str(), *i)).collect();
    let body = review(
        &uid(n % 100),
        "CREATE",
        ns,
        POD,
        pod(&containers, &[]),
        Value::Null,
    );
    let (status, resp, _) = post(client, s, body);
    assert_eq!(status, 200, "{resp}");
    let r = &resp["response"];
    (
        r["allowed"].as_bool().unwrap(),
        r["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        r["warnings"].to_string(),
    )
}

/// `signgate serve` with the configuration `config` and a kubeconfig for `api`, which is served
/// over loopback HTTPS for as long as this lives.
struct ServedWithApi {
    serve: Serve,
    config: std::path::PathBuf,
    _dir: tempfile::TempDir,
    _api: tokio::runtime::Runtime,
}

fn serve_with_api(s: &Setup, api: &FakeApi, config: &str) -> ServedWithApi {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (addr, _) = rt.block_on(api.serve_tls());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kube_api::write_kubeconfig(addr, dir.path());
    let config_path = dir.path().join("signgate.yaml");
    std::fs::write(&config_path, config).unwrap();
    let serve = start_serve_with(
        &s.lab,
        &config_path,
        dir.path(),
        &ServeOptions {
            env: &[("KUBECONFIG", &kubeconfig), ("HOME", "/nonexistent")],
            log: Some("kube-serve.log"),
            ..ServeOptions::default()
        },
    );
    ServedWithApi {
        serve,
        config: config_path,
        _dir: dir,
        _api: rt,
    }
}

#[test]
fn serve_follows_namespace_labels_from_a_watched_api_server() {
    let s = setup();
    let api = FakeApi::new();
    api.put("team", &[("env", "dev")]);
    api.set_down(true);
    let host = s.lab.registry_host();
    let base = std::fs::read_to_string(&s.config).unwrap();
    let trust = base.split("policies:").next().unwrap();
    let config = format!(
        "{trust}policies:
  - name: system
    images: [\"registry.k8s.io/**\"]
    action: allow
  - name: ml-dev-warn
    images: [\"{host}/ml/**\"]
    namespaces: {{ matchLabels: {{ env: dev }} }}
    trustRoot: ml-platform
    mode: warn
  - name: ml-prod
    images: [\"{host}/ml/**\"]
    namespaces: {{ matchLabels: {{ env: prod }} }}
    trustRoot: ml-platform
    mode: enforce
defaultAction: deny
"
    );
    let served = serve_with_api(&s, &api, &config);
    let serve = &served.serve;
    let c = apiserver_client(&s.lab);
    let log = || std::fs::read_to_string(&serve.log).unwrap_or_default();

    // The API server is down: not ready, the label-selected image denied with why, the
    // cluster-system image allowed.
    let (code, text) = ready_status(&c, serve);
    assert_eq!(code, 503, "{text}");
    assert!(text.contains("has not completed"), "{text}");
    let (allowed, message, _) = decide(
        &c,
        serve,
        1,
        "team",
        &[&s.unsigned, "registry.k8s.io/pause:3.10"],
    );
    assert!(!allowed, "allowed with unknown labels");
    assert!(
        message.contains("labels of namespace \"team\" are unknown"),
        "{message}"
    );
    assert!(!message.contains("pause"), "{message}");
    let (allowed, message, _) = decide(&c, serve, 2, "team", &["registry.k8s.io/pause:3.10"]);
    assert!(allowed, "{message}");

    // Up: ready once listed; dev warns about the unsigned image.
    api.set_down(false);
    let up = Instant::now();
    while ready_status(&c, serve).0 != 200 {
        assert!(
            up.elapsed() < Duration::from_secs(15),
            "not ready: {}",
            log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("ready {:?} after the API server came up", up.elapsed());
    let (allowed, _, warnings) = decide(&c, serve, 3, "team", &[&s.unsigned]);
    assert!(allowed, "dev must only warn");
    assert!(
        warnings.contains("nightly"),
        "no warning about the unsigned image: {warnings}"
    );

    // Relabelled to prod: the next reviews are decided under the prod policy within a second.
    api.put("team", &[("env", "prod")]);
    let relabelled = Instant::now();
    let mut n = 4;
    loop {
        let (allowed, message, _) = decide(&c, serve, n, "team", &[&s.unsigned]);
        if !allowed {
            assert!(message.contains("ml-prod"), "{message}");
            break;
        }
        n += 1;
        assert!(
            relabelled.elapsed() < Duration::from_secs(1),
            "still warning {:?} after the relabel",
            relabelled.elapsed()
        );
    }
    eprintln!(
        "prod policy in force {:?} after the relabel ({} reviews)",
        relabelled.elapsed(),
        n - 3
    );
    let (allowed, message, _) = decide(&c, serve, 90, "team", &[&s.signed]);
    assert!(allowed, "signed image in prod: {message}");

    // A namespace the cache does not hold: denied with the reason.
    let (allowed, message, _) = decide(&c, serve, 91, "nowhere", &[&s.signed]);
    assert!(!allowed);
    assert!(
        message.contains("\"nowhere\" is not in the list of namespaces"),
        "{message}"
    );

    // The watch cannot be resumed (history compacted, connection dropped): listed again,
    // counted, and the next relabel still arrives. Until now nothing was re-listed (the attempts
    // while the API server was down are not restarts).
    let restarts = |m: &str| {
        m.lines()
            .find(|l| l.starts_with("signgate_kube_watch_restarts_total "))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
    };
    let m = metrics_text(serve);
    assert_eq!(restarts(&m), Some(0.0), "{m}");
    api.compact();
    api.drop_watches();
    api.put("team", &[("env", "dev")]);
    api.compact();
    let t = Instant::now();
    loop {
        let m = metrics_text(serve);
        if restarts(&m).unwrap_or(0.0) >= 1.0 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "no re-list counted: {m}\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let t = Instant::now();
    while !decide(&c, serve, 92, "team", &[&s.unsigned]).0 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the relabel to dev after the re-list was not seen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // What signgate asked the API server: metadata only, with the kubeconfig's token, and no
    // request per review.
    let seen = api.seen();
    assert!(
        seen.iter()
            .all(|r| r.accept.contains("as=PartialObjectMetadata")),
        "{seen:?}"
    );
    assert!(seen.iter().all(|r| r.status != 401), "{seen:?}");
    assert!(
        seen.len() < 20,
        "{} requests to the API server: {seen:?}",
        seen.len()
    );
    assert!(!log().contains(kube_api::TOKEN), "the token was logged");
}

/// Without a label selector signgate does not talk to the API server at all (no RBAC needed); a
/// reload that adds one starts the watch, and its decisions follow the labels.
#[test]
fn the_watch_starts_only_when_a_configuration_selects_by_label() {
    let s = setup();
    let api = FakeApi::new();
    api.put("team", &[("env", "prod")]);
    // setup()'s configuration: names only.
    let names_only = std::fs::read_to_string(&s.config).unwrap();
    let served = serve_with_api(&s, &api, &names_only);
    let (serve, config_path) = (&served.serve, &served.config);
    let c = apiserver_client(&s.lab);
    assert_eq!(ready_status(&c, serve).0, 200);
    let (allowed, _, _) = decide(&c, serve, 1, "team", &[&s.signed]);
    assert!(allowed);
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        api.seen().is_empty(),
        "asked the API server without a label selector: {:?}",
        api.seen()
    );

    // A reload adds a label-selected enforce policy first in the list.
    let host = s.lab.registry_host();
    let selected = names_only.replacen(
        "policies:\n",
        &format!(
            "policies:\n  - name: team-prod\n    images: [\"{host}/ml/**\"]\n    namespaces: {{ matchLabels: {{ env: prod }} }}\n    trustRoot: ml-platform\n    mode: enforce\n"
        ),
        1,
    );
    assert_ne!(selected, names_only);
    std::fs::write(config_path, selected).unwrap();
    let t = Instant::now();
    loop {
        let (allowed, message, _) = decide(&c, serve, 2, "team", &[&s.unsigned]);
        if !allowed && message.contains("team-prod") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "the reload did not start the watch: {message}\n{}",
            std::fs::read_to_string(&serve.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(api.lists() >= 1, "{:?}", api.seen());
    assert_eq!(ready_status(&c, serve).0, 200);
}
