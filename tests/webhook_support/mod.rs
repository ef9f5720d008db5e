//! Shared by the webhook end-to-end tests and the demo (`examples/demo.rs`): a lab with signed and
//! unsigned images, a configuration for it, `signgate serve` as a process, and AdmissionReview
//! bodies as kube-apiserver sends them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::harness::{Lab, Pushed, post_review, wait_until_ok};

/// The `signgate` binary next to the running test or example.
pub fn signgate_bin() -> PathBuf {
    // A benchmark may measure another build (an earlier commit's binary).
    if let Some(p) = std::env::var_os("SIGNGATE_BIN") {
        return PathBuf::from(p);
    }
    if let Some(p) = option_env!("CARGO_BIN_EXE_signgate") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/examples/demo -> target/<profile>/signgate
    exe.parent()
        .and_then(Path::parent)
        .unwrap()
        .join("signgate")
}

pub struct Serve {
    pub child: Child,
    pub url: String,
    pub metrics_url: String,
    pub log: PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn start_serve(lab: &Lab, config: &Path, dir: &Path) -> Serve {
    start_serve_with(lab, config, dir, &ServeOptions::default())
}

/// What `start_serve_with` changes from `start_serve`.
#[derive(Default)]
pub struct ServeOptions<'a> {
    /// Serving certificate and key files (reloaded on change); default the lab's pair.
    pub tls: Option<(&'a Path, &'a Path)>,
    /// More `serve` arguments.
    pub args: &'a [&'a str],
    /// More environment.
    pub env: &'a [(&'a str, &'a str)],
    /// The stderr file's name in `dir`; default `serve.log`.
    pub log: Option<&'a str>,
}

/// `signgate serve` with `options`, waited for until `/healthz` answers.
pub fn start_serve_with(lab: &Lab, config: &Path, dir: &Path, options: &ServeOptions) -> Serve {
    let pki = lab.dir().join("pki");
    let (cert, key) = match options.tls {
        Some((c, k)) => (c.to_path_buf(), k.to_path_buf()),
        None => (pki.join("server.crt"), pki.join("server.key")),
    };
    let (port, mport) = (free_port(), free_port());
    let log = dir.join(options.log.unwrap_or("serve.log"));
    let child = Command::new(signgate_bin())
        .args(["serve", "--log-format", "json", "--config"])
        .arg(config)
        .arg("--tls-cert")
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--metrics-listen", &format!("127.0.0.1:{mport}")])
        .args(options.args)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .envs(options.env.iter().copied())
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
    wait_healthy(lab, &s.url, Duration::from_secs(20), || {
        std::fs::read_to_string(&s.log).unwrap_or_default()
    });
    s
}

/// Polls `GET {url}/healthz` until it answers 2xx; panics after `limit` with `context()`.
pub fn wait_healthy(lab: &Lab, url: &str, limit: Duration, context: impl Fn() -> String) {
    wait_until_ok(
        &apiserver_client(lab),
        &format!("{url}/healthz"),
        limit,
        Duration::from_millis(50),
        || {
            format!(
                "{url} did not become healthy within {limit:?}: {}",
                context()
            )
        },
    );
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A client like kube-apiserver's webhook client: the CA bundle, HTTP/1.1 only, keep-alive.
pub fn apiserver_client(lab: &Lab) -> reqwest::Client {
    lab_client(lab).http1_only().build().unwrap()
}

/// A client like `apiserver_client` that also offers HTTP/2.
pub fn h2_client(lab: &Lab) -> reqwest::Client {
    lab_client(lab).build().unwrap()
}

/// A client builder trusting the lab's CA, with no proxy and a 10 s timeout.
fn lab_client(lab: &Lab) -> reqwest::ClientBuilder {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(lab.ca_pem_path()).unwrap()).unwrap();
    reqwest::Client::builder()
        .tls_backend_rustls()
        .add_root_certificate(ca)
        .no_proxy()
        .timeout(Duration::from_secs(10))
}

/// `body` posted to `/validate?timeout=10s` as kube-apiserver posts it: status, answer, HTTP version.
pub fn post(client: &reqwest::Client, s: &Serve, body: Vec<u8>) -> (u16, Value, reqwest::Version) {
    post_to(client, s, "/validate?timeout=10s", body)
}

/// `body` posted to `path` (with its query) as kube-apiserver posts it: status, answer (JSON, else
/// the text as a string), HTTP version.
pub fn post_to(
    client: &reqwest::Client,
    s: &Serve,
    path: &str,
    body: Vec<u8>,
) -> (u16, Value, reqwest::Version) {
    let (status, version, text) =
        rt().block_on(post_review(client, &format!("{}{path}", s.url), body));
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        version,
    )
}

pub fn review(
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

pub fn pod_spec(containers: &[(&str, &str)], init: &[(&str, &str)]) -> Value {
    let c = |list: &[(&str, &str)]| -> Vec<Value> {
        list.iter()
            .map(|(n, i)| json!({"name": n, "image": i, "resources": {"limits": {"nvidia.com/gpu": "8"}}}))
            .collect()
    };
    json!({"containers": c(containers), "initContainers": c(init), "restartPolicy": "Never"})
}

pub fn pod(containers: &[(&str, &str)], init: &[(&str, &str)]) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "trainer-0", "namespace": "ml-prod"}, "spec": pod_spec(containers, init)})
}

pub const POD: (&str, &str, &str) = ("", "v1", "Pod");

/// The CREATE review `uid(n)` of a Pod with these containers and init containers in `namespace`.
pub fn pod_review(
    n: u32,
    namespace: &str,
    containers: &[(&str, &str)],
    init: &[(&str, &str)],
) -> Vec<u8> {
    review(
        &uid(n),
        "CREATE",
        namespace,
        POD,
        pod(containers, init),
        Value::Null,
    )
}

pub fn uid(n: u32) -> String {
    format!("705ab4f5-6393-11e8-b7cc-42010a8000{n:02}")
}

pub struct Setup {
    pub lab: Lab,
    pub _dir: tempfile::TempDir,
    pub config: PathBuf,
    pub serve: Serve,
    pub signed: String,
    pub signed_digest: Pushed,
    pub unsigned: String,
    pub other_signed: String,
    /// The digest of `other_signed` (trusted for that repository, not for `signed`'s).
    pub other_digest: Pushed,
}

pub fn setup() -> Setup {
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
    let mut config = lab.trust_yaml(&lab.root_key_pins(&[gun.clone(), gun2.clone()]));
    config.extend([
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
    let config_path = config_path.clone();
    Setup {
        signed: format!("{gun}:v2.9"),
        unsigned: format!("{gun}:nightly"),
        other_signed: format!("{gun2}:3.3"),
        other_digest: dcgm,
        signed_digest: v29,
        serve,
        lab,
        config: config_path,
        _dir: dir,
    }
}

/// The serve process's log once `done` holds for it, or as it is after 5 s. signgate writes its
/// log lines in batches, up to 50 ms after the event (`signgate::logs`).
pub fn log_when(s: &Serve, done: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let log = std::fs::read_to_string(&s.log).unwrap_or_default();
        if done(&log) || started.elapsed() > Duration::from_secs(5) {
            return log;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The text of `GET /metrics` on the serve process's metrics listener.
pub fn metrics_text(s: &Serve) -> String {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    get_text(&client, &format!("{}/metrics", s.metrics_url))
}

/// The body of `GET url` as text.
pub fn get_text(client: &reqwest::Client, url: &str) -> String {
    rt().block_on(async { client.get(url).send().await.unwrap().text().await.unwrap() })
}
