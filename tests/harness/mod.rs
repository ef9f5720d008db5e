//! # Test support: the index
//!
//! Each support module is included by path (`mod harness;`, or `#[path = "../tests/…"] mod …;`
//! from examples and benches); what includes it:
//!
//! | module | provides | used by |
//! | --- | --- | --- |
//! | `tests/harness` (this file) | [`Lab`]: docker-registry + notary-server + the notary CLI, token auth; the lab's signgate YAML ([`Lab::trust_yaml`], [`Lab::notary_root_yaml`], [`Lab::registries_yaml`], [`all_any_policies_yaml`]) | cosign_lab, harness_selftest, kube_e2e, migration_e2e, notation_lab, online, sigtools_lab, soak, webhook_e2e; examples coldbench, demo, junkbench, loadgen, peerbench |
//! | `harness/sigtools.rs` | notation, cosign 2/3, sigstore-js and crafted signatures (`sign/craft.py`) against the lab; the RFC 3161 [`Tsa`] | as `harness` |
//! | `harness/net.rs` | HTTPS to the lab ([`Net`], [`block_on`]); [`wait_until_ok`], [`post_review`] (an AdmissionReview POST) | as `harness` |
//! | `harness/pki.rs` | throwaway CA and leaves with the openssl CLI | `harness`, `tests/faults`, server.rs |
//! | `harness/{accept,gate,image,token}.rs` | the small servers' accept loop; the notary stop/start gate; a deterministic image; the token issuer | `harness` |
//! | `tests/webhook_support` | `signgate serve` as a process, lab clients, AdmissionReview bodies | kube_e2e, migration_e2e, soak, webhook_e2e; examples demo, junkbench, loadgen, peerbench |
//! | `tests/common` | Notary v1 repositories built in memory (keys, roles, re-signing); the committed interop set (`interop_signed`) | bypass_matrix, notation_registry, online_faults, trust_attacks, trust_properties, webhook_handlers; benches/trust |
//! | `tests/faults` | a hostile HTTPS server (stalls, drips, endless bodies, registry replies); `verifier_for` | cosign_interop, hostile_signatures, kube_e2e, kube_namespaces, notation_registry, online_faults, webhook_handlers; examples junkbench, loadgen |
//! | `tests/kube_api` | a fake Kubernetes API for namespaces (list, watch, 410, outages) and Pods (paged lists) | kube_e2e, kube_namespaces, audit; example loadgen |
//! | `tests/crafted` | Notation certificates and JWS envelopes no tool makes | hostile_signatures, notation_crafted; example junkbench |
//! | `tests/junk` | the worst signature junk against signgate's caps, as a registry | hostile_signatures; example junkbench |
//! | `examples/bench_support` | the load benchmarks' knobs, percentiles, timed reviews, h2load | examples coldbench, junkbench, loadgen, peerbench |
//! | `tests/fixtures` | committed data (real notary, notation, cosign and admission output; `metrics/spec-metrics.txt`) | read by path |
//! | `tests/chart` | the chart suite (pytest) and its own helpers | scripts/test-chart |
//!
//! (`tests/fuzz_corpus.rs` names the fuzz crate's `fuzz/src/lib.rs` `harness` too; it is not this.)
//!
//! # The lab
//!
//! A real Notary v1 lab for integration tests: `docker-registry` (distribution 2.8) and
//! `notary-server` (0.7) on 127.0.0.1 with TLS from a throwaway CA, the real `notary` CLI to
//! publish trust data exactly as `docker trust` does, and (optionally) registry-style token auth
//! from an issuer the harness runs itself. Everything lives in one temp dir; the servers are
//! killed (exactly the PIDs started here) when the [`Lab`] is dropped.
//!
//! Blocking API (std::process, and HTTP on a private runtime in a scoped thread, so it may also be
//! called from inside a tokio runtime). Needs the Debian packages `notary`, `docker-registry` and
//! `openssl` (scripts/test installs them; the harness never installs anything).
//!
//! Set `SIGNGATE_KEEP_LAB=1` to keep the lab dir (configs, logs, trust dirs) after the test.
//!
//! Choices worth knowing:
//! - Storage: this Debian notary-server only links the memory, MySQL, Postgres and RethinkDB
//!   backends (no SQLite driver), and `trust_service.type=local` keeps the server-held
//!   timestamp/snapshot keys in memory too, so a restarted process would lose everything. The
//!   notary-server's public port is therefore a TCP pass-through run by the harness:
//!   `stop_notary` closes that port (connection refused, open connections cut) while the process
//!   keeps its data; `start_notary` listens on the same port again.
//! - Token auth: a small HTTPS issuer in a background thread signs ES256 JWTs with an `x5c`
//!   certificate issued by the lab CA (the servers' `rootcertbundle`). The notary CLI gets the
//!   credentials from `NOTARY_AUTH` (base64 `user:password`), but only for writes: it reads
//!   (`list`, `lookup`) anonymously, and anonymous token requests get 401.
//! - Request counters parse the servers' logs: notary-server's `"response completed"` JSON lines,
//!   the registry's combined access log. 401 challenges count as requests; the harness's own
//!   readiness probes do not (registry) or are not logged (notary-server health).
//!
//! Use as `mod harness;` from an integration test.
#![allow(dead_code)]

mod accept;
mod gate;
mod image;
mod net;
mod pki;
mod sigtools;
mod token;

use std::collections::HashSet;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

pub use image::{MANIFEST_ACCEPT, MANIFEST_V2};
#[allow(unused_imports)] // each test binary uses a part
pub use net::{Net, Resp, block_on, parse_bearer_challenge, post_review, wait_until_ok};
use pki::{genkey_p256, issue_cert, make_ca, openssl};
#[allow(unused_imports)]
pub use sigtools::*;
pub use token::Issued;

/// The one user the token issuer knows.
pub const TOKEN_USER: &str = "ci";
pub const TOKEN_PASSWORD: &str = "s3cret";
/// `service` (JWT `aud`) the servers are configured with in token-auth labs.
pub const NOTARY_SERVICE: &str = "signgate-lab-notary";
pub const REGISTRY_SERVICE: &str = "signgate-lab-registry";
pub const TOKEN_ISSUER: &str = token::ISSUER;

/// Passphrases the notary CLI gets from the environment.
pub const ROOT_PASSPHRASE: &str = "lab-root-pass";
pub const TARGETS_PASSPHRASE: &str = "lab-targets-pass";
pub const SNAPSHOT_PASSPHRASE: &str = "lab-snapshot-pass";
pub const DELEGATION_PASSPHRASE: &str = "lab-delegation-pass";

const READY_TIMEOUT: Duration = Duration::from_secs(20);
const CLI_TIMEOUT: Duration = Duration::from_secs(120);
/// Query marker of the harness's own readiness probes; never counted.
const PROBE: &str = "signgate-lab-probe";
const PROXY_VARS: &[&str] = &[
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// A manifest as the registry serves it (read back with the full Accept list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// `sha256:<hex>` = Docker-Content-Digest = sha256 of the manifest bytes
    pub digest: String,
    /// manifest length in bytes
    pub size: u64,
}

impl Pushed {
    /// The digest without `sha256:` (what `notary addhash --sha256` takes).
    pub fn hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }
}

/// One request a server logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Req {
    pub method: String,
    /// request URI (path and query)
    pub uri: String,
    pub status: u16,
}

struct Server {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

pub struct Lab {
    notary_server: Option<Server>,
    /// `notary-signer`, only in labs started with ECDSA server-held keys
    notary_signer: Option<Server>,
    ecdsa_server_keys: bool,
    notary_signer_port: u16,
    registry: Option<Server>,
    /// the notary-server's public port (what `notary_url` names), in front of its private one
    gate: Option<gate::Gate>,
    token: Option<token::TokenIssuer>,
    pids: Vec<u32>,
    net: Net,
    ca: PathBuf,
    registry_port: u16,
    notary_backend_port: u16,
    trust_seq: Arc<AtomicUsize>,
    dir: PathBuf,
    // last: removed after the processes are gone
    tmp: Option<tempfile::TempDir>,
}

impl Lab {
    /// Registry + notary-server, no auth.
    pub fn start() -> Lab {
        Lab::start_inner(false, false)
    }

    /// Registry + notary-server whose server-held keys (timestamp, and snapshot once rotated with
    /// `-r`) are ECDSA P-256 instead of ed25519: the notary-server signs through a `notary-signer`
    /// (`trust_service.type=remote`, `key_algorithm=ecdsa`, in-memory key store, gRPC over TLS on
    /// 127.0.0.1), since the in-process signer (`type=local`) only makes ed25519 keys. For
    /// verifiers that cannot read ed25519 keys.
    pub fn start_with_ecdsa_server_keys() -> Lab {
        Lab::start_inner(false, true)
    }

    /// Both servers require Bearer tokens from the harness's token issuer (user `ci`, password
    /// `s3cret`); the notary CLI handle publishes with those credentials (`NOTARY_AUTH`).
    pub fn start_with_token_auth() -> Lab {
        Lab::start_inner(true, false)
    }

    fn start_inner(auth: bool, ecdsa_server_keys: bool) -> Lab {
        require_tools();
        let tmp = tempfile::Builder::new()
            .prefix("signgate-lab.")
            .tempdir()
            .expect("lab temp dir");
        let dir = tmp.path().to_path_buf();
        for d in [
            "pki",
            "logs",
            "registry/data",
            "home",
            "trust",
            "keys",
            "pins",
        ] {
            std::fs::create_dir_all(dir.join(d)).expect("lab dirs");
        }
        let pki = make_pki(&dir.join("pki"));
        let ca = pki.join("ca.crt");
        let ca_pem = std::fs::read(&ca).expect("read CA");
        let token = auth.then(|| {
            let key_der = std::fs::read(pki.join("token-signer.pk8.der")).expect("token key");
            token::TokenIssuer::start(
                &pki.join("server.crt"),
                &pki.join("server.key"),
                &key_der,
                &pki.join("token-signer.crt"),
                TOKEN_USER,
                TOKEN_PASSWORD,
            )
        });
        let net = Net {
            ca_pem: Arc::new(ca_pem),
            creds: auth.then(|| (TOKEN_USER.to_owned(), TOKEN_PASSWORD.to_owned())),
        };
        let mut lab = Lab {
            notary_server: None,
            notary_signer: None,
            ecdsa_server_keys,
            notary_signer_port: 0,
            registry: None,
            gate: None,
            token,
            pids: Vec::new(),
            net,
            ca,
            registry_port: 0,
            notary_backend_port: 0,
            trust_seq: Arc::new(AtomicUsize::new(0)),
            dir,
            tmp: Some(tmp),
        };
        lab.spawn_registry();
        if ecdsa_server_keys {
            lab.spawn_notary_signer();
        }
        lab.spawn_notary_server();
        lab
    }

    /// The CA bundle (PEM) that issued both servers' certificates (and the token issuer's).
    pub fn ca_pem_path(&self) -> &Path {
        &self.ca
    }

    /// The lab's temp dir (logs under `logs/`, configs, trust dirs under `trust/`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `127.0.0.1:PORT`
    pub fn registry_host(&self) -> String {
        format!("127.0.0.1:{}", self.registry_port)
    }

    /// `https://127.0.0.1:PORT`
    pub fn registry_url(&self) -> String {
        format!("https://{}", self.registry_host())
    }

    /// `https://127.0.0.1:PORT` (stays the same across `stop_notary`/`start_notary`)
    pub fn notary_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.gate().port())
    }

    /// The token endpoint (`https://127.0.0.1:PORT/token`), token-auth labs only.
    pub fn token_realm(&self) -> Option<String> {
        self.token.as_ref().map(token::TokenIssuer::realm)
    }

    /// `<registry_host>/<repo>`: the GUN docker uses for that image.
    pub fn gun(&self, repo: &str) -> String {
        format!("{}/{repo}", self.registry_host())
    }

    /// HTTP helper trusting the lab CA; in token-auth labs it answers challenges as `ci`.
    pub fn net(&self) -> Net {
        self.net.clone()
    }

    /// An async reqwest client that trusts exactly the lab CA (no credentials, no proxy).
    pub fn client(&self) -> reqwest::Client {
        self.net.client()
    }

    /// Blocking GET of any URL (authenticated as `ci` in token-auth labs).
    pub fn get(&self, url: &str) -> Resp {
        self.net.request("GET", url, &[], None)
    }

    /// Blocking GET of `notary_url() + path`.
    pub fn notary_get(&self, path: &str) -> Resp {
        self.get(&format!("{}{path}", self.notary_url()))
    }

    /// The notary-server's log (JSON lines; one `"response completed"` line per request).
    pub fn notary_log_path(&self) -> PathBuf {
        self.dir.join("logs/notary-server.log")
    }

    /// The registry's log (JSON lines plus one combined access-log line per request).
    pub fn registry_log_path(&self) -> PathBuf {
        self.dir.join("logs/registry.log")
    }

    /// The PIDs of every process this lab started (servers; CLI runs are waited for).
    pub fn pids(&self) -> Vec<u32> {
        self.pids.clone()
    }

    // ---------------------------------------------------------------------------------------
    // processes

    fn spawn_registry(&mut self) {
        let (server, port) = on_free_port(|port| {
            std::fs::write(self.dir.join("registry.yml"), self.registry_config(port))
                .expect("write registry config");
            self.run_registry(port)
        });
        self.registry = Some(server);
        self.registry_port = port;
    }

    /// Starts docker-registry with `registry.yml` (which names `port`) and waits until it answers.
    fn run_registry(&mut self, port: u16) -> Result<Server, String> {
        let cfg = self.dir.join("registry.yml");
        let log = self.dir.join("logs/registry.log");
        let server = self.spawn(
            "docker-registry",
            Command::new("docker-registry").arg("serve").arg(&cfg),
            log,
        );
        let url = format!("https://127.0.0.1:{port}/v2/?{PROBE}");
        self.wait_ready(server, &url, &[200, 401])
    }

    /// `notary-signer` with an in-memory key store, gRPC over TLS (the lab's server certificate) on
    /// 127.0.0.1; waited for until its port accepts connections.
    fn spawn_notary_signer(&mut self) {
        let port = free_port();
        let pki = self.dir.join("pki");
        let cfg = self.dir.join("notary-signer.json");
        let json = serde_json::json!({
            "server": {
                "grpc_addr": format!("127.0.0.1:{port}"),
                "tls_cert_file": pki.join("server.crt"),
                "tls_key_file": pki.join("server.key"),
            },
            "storage": {"backend": "memory"},
            "logging": {"level": "info"},
        });
        std::fs::write(
            &cfg,
            serde_json::to_string_pretty(&json).expect("signer config"),
        )
        .expect("write notary-signer config");
        let log = self.dir.join("logs/notary-signer.log");
        let mut s = self.spawn(
            "notary-signer",
            Command::new("notary-signer")
                .arg("-config")
                .arg(&cfg)
                .args(["-logf", "json"]),
            log,
        );
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!("notary-signer exited ({status}):\n{}", tail(&s.log, 30));
            }
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "notary-signer not listening on {port} after {READY_TIMEOUT:?}:\n{}",
                tail(&s.log, 30)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.notary_signer = Some(s);
        self.notary_signer_port = port;
    }

    fn spawn_notary_server(&mut self) {
        let (server, port) = on_free_port(|port| {
            let cfg = self.dir.join("notary-server.json");
            std::fs::write(&cfg, self.notary_config(port)).expect("write notary config");
            let log = self.dir.join("logs/notary-server.log");
            let server = self.spawn(
                "notary-server",
                Command::new("notary-server")
                    .arg("-config")
                    .arg(&cfg)
                    .args(["-logf", "json"]),
                log,
            );
            let url = format!("https://127.0.0.1:{port}/_notary_server/health");
            self.wait_ready(server, &url, &[200])
        });
        self.notary_server = Some(server);
        self.notary_backend_port = port;
        let backend = SocketAddr::from(([127, 0, 0, 1], self.notary_backend_port));
        self.gate = Some(gate::Gate::new(backend));
    }

    fn gate(&self) -> &gate::Gate {
        self.gate.as_ref().expect("notary gate")
    }

    fn spawn(&mut self, name: &'static str, cmd: &mut Command, log: PathBuf) -> Server {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open server log");
        let err = out.try_clone().expect("clone log handle");
        for v in PROXY_VARS {
            cmd.env_remove(v);
        }
        let child = cmd
            .env("HOME", self.dir.join("home"))
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e} (run scripts/test)"));
        self.pids.push(child.id());
        Server { name, child, log }
    }

    /// Polls `url` until it answers with one of `ok` (bounded); Err(message with the log tail)
    /// when the process exits or the time runs out (the process is then killed).
    fn wait_ready(&self, mut s: Server, url: &str, ok: &[u16]) -> Result<Server, String> {
        let started = Instant::now();
        let probe = Net {
            ca_pem: self.net.ca_pem.clone(),
            creds: None,
        };
        let client = probe.client();
        loop {
            if let Ok(Some(status)) = s.child.try_wait() {
                return Err(format!(
                    "{} exited ({status}) before it was ready; log {}:\n{}",
                    s.name,
                    s.log.display(),
                    tail(&s.log, 30)
                ));
            }
            let got = block_on(|| async {
                match client.get(url).send().await {
                    Ok(r) => Ok(r.status().as_u16()),
                    Err(e) => Err(format!("{e:?}")),
                }
            });
            let last = match got {
                Ok(code) if ok.contains(&code) => return Ok(s),
                Ok(code) => format!("HTTP {code}"),
                Err(e) => e,
            };
            if started.elapsed() > READY_TIMEOUT {
                let _ = s.child.kill();
                let _ = s.child.wait();
                return Err(format!(
                    "{} not ready after {:?} ({url}: {last}); log {}:\n{}",
                    s.name,
                    READY_TIMEOUT,
                    s.log.display(),
                    tail(&s.log, 30)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn registry_config(&self, port: u16) -> String {
        let q = |p: &Path| serde_json::to_string(&p.to_string_lossy()).expect("quote");
        let pki = self.dir.join("pki");
        let mut y = format!(
            "version: 0.1\n\
             log:\n  level: info\n  formatter: json\n\
             storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n  \
             cache:\n    blobdescriptor: inmemory\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: signgate-lab-secret\n  \
             tls:\n    certificate: {crt}\n    key: {key}\n  \
             headers:\n    X-Content-Type-Options: [nosniff]\n",
            data = q(&self.dir.join("registry/data")),
            crt = q(&pki.join("server.crt")),
            key = q(&pki.join("server.key")),
        );
        if let Some(t) = &self.token {
            y.push_str(&format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {REGISTRY_SERVICE}\n    \
                 issuer: {TOKEN_ISSUER}\n    rootcertbundle: {bundle}\n",
                realm = serde_json::to_string(&t.realm()).expect("quote"),
                bundle = q(&self.ca),
            ));
        }
        y
    }

    fn notary_config(&self, port: u16) -> String {
        let pki = self.dir.join("pki");
        let mut cfg = serde_json::json!({
            "server": {
                "http_addr": format!("127.0.0.1:{port}"),
                "tls_cert_file": pki.join("server.crt"),
                "tls_key_file": pki.join("server.key"),
            },
            "trust_service": {"type": "local", "key_algorithm": "ed25519"},
            "storage": {"backend": "memory"},
            "logging": {"level": "info"},
        });
        if self.ecdsa_server_keys {
            cfg["trust_service"] = serde_json::json!({
                "type": "remote",
                "hostname": "127.0.0.1",
                "port": self.notary_signer_port.to_string(),
                "tls_ca_file": self.ca,
                "key_algorithm": "ecdsa",
            });
        }
        if let Some(t) = &self.token {
            cfg["auth"] = serde_json::json!({
                "type": "token",
                "options": {
                    "realm": t.realm(),
                    "service": NOTARY_SERVICE,
                    "issuer": TOKEN_ISSUER,
                    "rootcertbundle": self.ca,
                    "autoredirect": false,
                },
            });
        }
        serde_json::to_string_pretty(&cfg).expect("notary config")
    }

    // ---------------------------------------------------------------------------------------
    // notary-server up/down

    /// Makes the notary-server unreachable: its port refuses connections and open connections are
    /// cut. The process keeps running (this Debian build only has in-memory storage for a
    /// stand-alone server), so the trust data survives `start_notary`.
    pub fn stop_notary(&mut self) {
        if let Some(g) = &mut self.gate {
            g.close();
        }
    }

    /// Serves the notary-server on the same port again and waits until it answers.
    pub fn start_notary(&mut self) {
        if let Some(g) = &mut self.gate {
            g.open();
        }
        let url = format!("{}/_notary_server/health", self.notary_url());
        wait_until_ok(
            &self.net.client(),
            &url,
            READY_TIMEOUT,
            Duration::from_millis(100),
            || {
                format!(
                    "notary-server not reachable through {url} after start_notary; log:\n{}",
                    tail(&self.dir.join("logs/notary-server.log"), 30)
                )
            },
        );
    }

    pub fn notary_is_up(&self) -> bool {
        self.gate.as_ref().is_some_and(gate::Gate::is_open)
    }

    // ---------------------------------------------------------------------------------------
    // registry up/down

    /// Kills the registry process. Its storage is on disk, so `start_registry` serves the same
    /// images again.
    pub fn stop_registry(&mut self) {
        if let Some(mut s) = self.registry.take() {
            let pid = s.child.id();
            let _ = s.child.kill();
            let _ = s.child.wait();
            self.pids.retain(|p| *p != pid);
        }
    }

    /// Starts the registry again on the same port and waits until it answers.
    pub fn start_registry(&mut self) {
        if self.registry.is_some() {
            return;
        }
        let port = self.registry_port;
        match self.run_registry(port) {
            Ok(s) => self.registry = Some(s),
            Err(e) => panic!("restarting the registry on port {port}: {e}"),
        }
    }

    pub fn registry_is_up(&self) -> bool {
        self.registry.is_some()
    }

    /// A new serving certificate for 127.0.0.1/localhost from the lab's CA (a fresh key), valid
    /// for `days`: what cert-manager's renewal writes. Returns (certificate, key).
    pub fn issue_server_cert(&self, name: &str, days: u32) -> (PathBuf, PathBuf) {
        let pki = self.dir.join("pki");
        issue_leaf(&pki, name, "localhost", SERVER_EXT, days);
        (
            pki.join(format!("{name}.crt")),
            pki.join(format!("{name}.key")),
        )
    }

    // ---------------------------------------------------------------------------------------
    // registry

    /// Pushes a small deterministic one-layer image as a Docker schema2 manifest (as `docker push`
    /// does) and reads the digest back with the full Accept list.
    pub fn push_image(&self, repo: &str, tag: &str, payload: &str) -> Pushed {
        let img = image::build(payload);
        let base = self.registry_url();
        let net = self.net.clone();
        block_on(|| async move {
            let mut s = net.session();
            for blob in [&img.config, &img.layer] {
                let u = format!("{base}/v2/{repo}/blobs/{}", blob.digest);
                if s.send("HEAD", &u, &[], None).await.status == 200 {
                    continue;
                }
                let u = format!("{base}/v2/{repo}/blobs/uploads/");
                let r = s.send("POST", &u, &[], Some(b"")).await;
                assert_eq!(r.status, 202, "POST {u}: {}", r.text());
                let loc = r.header("location").expect("upload Location").to_owned();
                let mut put = url::Url::parse(&base)
                    .and_then(|b| b.join(&loc))
                    .expect("upload URL");
                put.query_pairs_mut().append_pair("digest", &blob.digest);
                let ct = [("Content-Type", "application/octet-stream")];
                let r = s.send("PUT", put.as_str(), &ct, Some(&blob.bytes)).await;
                assert_eq!(r.status, 201, "PUT blob {put}: {}", r.text());
            }
            let u = format!("{base}/v2/{repo}/manifests/{tag}");
            let ct = [("Content-Type", MANIFEST_V2)];
            let r = s.send("PUT", &u, &ct, Some(&img.manifest)).await;
            assert_eq!(r.status, 201, "PUT manifest {u}: {}", r.text());
            let r = s
                .send("GET", &u, &[("Accept", MANIFEST_ACCEPT)], None)
                .await;
            assert_eq!(r.status, 200, "GET manifest {u}: {}", r.text());
            let digest = r
                .header("docker-content-digest")
                .expect("Docker-Content-Digest")
                .to_owned();
            assert_eq!(
                digest,
                image::sha256_digest(&r.body),
                "digest header vs body"
            );
            assert_eq!(r.header("content-type"), Some(MANIFEST_V2), "{u}");
            Pushed {
                digest,
                size: r.body.len() as u64,
            }
        })
    }

    // ---------------------------------------------------------------------------------------
    // notary CLI and trust data

    /// The notary CLI with the lab's default trust dir (the same dir on every call).
    pub fn notary(&self) -> NotaryCli {
        NotaryCli {
            url: self.notary_url(),
            ca: self.ca.clone(),
            trust_dir: self.dir.join("trust/default"),
            trust_root: self.dir.join("trust"),
            home: self.dir.join("home"),
            keys: self.dir.join("keys"),
            seq: self.trust_seq.clone(),
            net: self.net.clone(),
        }
    }

    /// The original root public keys of `guns`, as `rootKeys` entries of signgate's configuration.
    pub fn root_key_pins(&self, guns: &[String]) -> Vec<String> {
        guns.iter()
            .flat_map(|g| {
                let pem = std::fs::read_to_string(self.root_key_pem(g)).unwrap();
                let mut lines = vec!["        - |".to_owned()];
                lines.extend(pem.lines().map(|l| format!("          {l}")));
                lines
            })
            .collect()
    }

    /// The original root public keys' files of `guns` ([`Lab::root_key_pem`]), as `rootKeyFiles`
    /// entries of signgate's configuration.
    pub fn root_key_files(&self, guns: &[String]) -> Vec<String> {
        guns.iter()
            .map(|g| format!("        - {}", self.root_key_pem(g).display()))
            .collect()
    }

    /// A notary trust root `name` of signgate's configuration (an entry of `trustRoots:`): this
    /// lab's notary, trusting the lab CA, with `pins` under `pins_key` (`rootKeys` with
    /// [`Lab::root_key_pins`], `rootKeyFiles` with [`Lab::root_key_files`]).
    pub fn notary_root_yaml(&self, name: &str, pins_key: &str, pins: &[String]) -> Vec<String> {
        let mut c = vec![
            format!("  - name: {name}"),
            "    notary:".to_owned(),
            format!("      url: {}", self.notary_url()),
            format!("      caFile: {}", self.ca_pem_path().display()),
            format!("      {pins_key}:"),
        ];
        c.extend(pins.iter().cloned());
        c
    }

    /// The `registries:` section of signgate's configuration: the lab registry, trusting the lab
    /// CA.
    pub fn registries_yaml(&self) -> Vec<String> {
        vec![
            "registries:".to_owned(),
            format!("  - host: {}", self.registry_host()),
            format!("    caFile: {}", self.ca_pem_path().display()),
        ]
    }

    /// The first lines of signgate's configuration for this lab: the notary trust root
    /// `ml-platform` pinning `pins` ([`Lab::root_key_pins`]) and the lab registry, both trusting
    /// the lab CA. Policies follow.
    pub fn trust_yaml(&self, pins: &[String]) -> Vec<String> {
        let mut c = vec!["trustRoots:".to_owned()];
        c.extend(self.notary_root_yaml("ml-platform", "rootKeys", pins));
        c.extend(self.registries_yaml());
        c
    }

    /// PEM `PUBLIC KEY` of the GUN's (original) root key, from `1.root.json`'s root certificate.
    pub fn root_key_pem(&self, gun: &str) -> PathBuf {
        self.root_key_pem_at(gun, 1)
    }

    /// Same, from `<version>.root.json` (e.g. the key after a rotation).
    pub fn root_key_pem_at(&self, gun: &str, version: u64) -> PathBuf {
        let r = self.notary_get(&format!("/v2/{gun}/_trust/tuf/{version}.root.json"));
        assert_eq!(r.status, 200, "{version}.root.json of {gun}: {}", r.text());
        let root: serde_json::Value = serde_json::from_slice(&r.body).expect("root.json");
        let ids = root["signed"]["roles"]["root"]["keyids"]
            .as_array()
            .expect("root keyids");
        assert_eq!(
            ids.len(),
            1,
            "expected one root key in {gun} root v{version}"
        );
        let key = &root["signed"]["keys"][ids[0].as_str().expect("keyid")];
        assert_eq!(key["keytype"], "ecdsa-x509", "root key type");
        let cert = B64
            .decode(key["keyval"]["public"].as_str().expect("keyval.public"))
            .expect("base64 root cert");
        let stem = format!("{}-v{version}", gun.replace(['/', ':'], "_"));
        let cert_path = self.dir.join("pins").join(format!("{stem}.root-cert.pem"));
        let key_path = self.dir.join("pins").join(format!("{stem}.root-key.pem"));
        std::fs::write(&cert_path, cert).expect("write root cert");
        let out = run_checked(
            Command::new("openssl")
                .args(["x509", "-pubkey", "-noout", "-in"])
                .arg(&cert_path),
        );
        assert!(String::from_utf8_lossy(&out).contains("BEGIN PUBLIC KEY"));
        std::fs::write(&key_path, out).expect("write root key");
        key_path
    }

    // ---------------------------------------------------------------------------------------
    // request counters

    /// How many requests the notary-server served (logged) whose URI contains `path_contains`.
    pub fn notary_requests(&self, path_contains: &str) -> usize {
        count(&self.notary_request_log(), path_contains)
    }

    /// Same for the registry (its access log; the harness's readiness probes are left out).
    pub fn registry_requests(&self, path_contains: &str) -> usize {
        count(&self.registry_request_log(), path_contains)
    }

    /// Every request the notary-server logged (`"response completed"` lines).
    pub fn notary_request_log(&self) -> Vec<Req> {
        let path = self.dir.join("logs/notary-server.log");
        settle(&path);
        parse_json_requests(&std::fs::read_to_string(path).unwrap_or_default())
    }

    /// Every request in the registry's access log, without the harness's readiness probes.
    pub fn registry_request_log(&self) -> Vec<Req> {
        let path = self.dir.join("logs/registry.log");
        settle(&path);
        parse_access_log(&std::fs::read_to_string(path).unwrap_or_default())
            .into_iter()
            .filter(|r| !r.uri.contains(PROBE))
            .collect()
    }

    /// Token-auth labs: how many tokens the issuer handed out (0 otherwise).
    pub fn token_requests(&self) -> usize {
        self.token.as_ref().map_or(0, |t| t.issued().len())
    }

    /// Token-auth labs: what each token was for.
    pub fn token_log(&self) -> Vec<Issued> {
        self.token
            .as_ref()
            .map_or_else(Vec::new, token::TokenIssuer::issued)
    }

    /// Token-auth labs: requests the issuer refused (anonymous or wrong credentials).
    pub fn token_refusals(&self) -> usize {
        self.token.as_ref().map_or(0, token::TokenIssuer::refused)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.gate = None;
        let panicking = std::thread::panicking();
        for s in [
            self.notary_server.take(),
            self.notary_signer.take(),
            self.registry.take(),
        ]
        .into_iter()
        .flatten()
        {
            let mut s = s;
            let _ = s.child.kill();
            let _ = s.child.wait();
            if panicking {
                eprintln!(
                    "--- lab {}: tail of {}\n{}",
                    s.name,
                    s.log.display(),
                    tail(&s.log, 20)
                );
            }
        }
        if std::env::var_os("SIGNGATE_KEEP_LAB").is_some()
            && let Some(t) = self.tmp.take()
        {
            eprintln!("lab dir kept: {}", t.keep().display());
        }
    }
}

/// The real `notary` CLI against the lab's server, with its own trust dir; passphrases (and, in
/// token-auth labs, `NOTARY_AUTH` credentials) come from the environment; stdin is closed, so a
/// prompt fails instead of hanging.
#[derive(Clone)]
pub struct NotaryCli {
    url: String,
    ca: PathBuf,
    trust_dir: PathBuf,
    trust_root: PathBuf,
    home: PathBuf,
    keys: PathBuf,
    seq: Arc<AtomicUsize>,
    net: Net,
}

impl NotaryCli {
    pub fn trust_dir(&self) -> &Path {
        &self.trust_dir
    }

    /// The same server with a new, empty trust dir (no keys, no cached metadata).
    pub fn fresh(&self) -> NotaryCli {
        let n = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        NotaryCli {
            trust_dir: self.trust_root.join(format!("fresh-{n}")),
            ..self.clone()
        }
    }

    /// Runs `notary -s URL --tlscacert CA -d TRUSTDIR <args>` and returns whatever happened.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_stdin(args, None)
    }

    /// `init` + `publish` + `key rotate GUN snapshot -r` (server-managed snapshot, as docker does).
    pub fn init_docker_like(&self, gun: &str) {
        self.run_ok(&["init", gun]);
        self.run_ok(&["publish", gun]);
        self.run_ok(&["key", "rotate", gun, "snapshot", "-r"]);
    }

    /// A P-256 signer key `key_name` (made once per lab, PKCS#8), imported into this trust dir,
    /// added as delegation `role` with `--all-paths`, published.
    pub fn add_delegation(&self, gun: &str, role: &str, key_name: &str) {
        let (key, public) = self.signer_key(key_name);
        let marker = self.trust_dir.join(format!(".lab-imported-{key_name}"));
        if !marker.exists() {
            self.run_ok(&["key", "import", &key.to_string_lossy(), "--role", key_name]);
            std::fs::write(&marker, b"").expect("import marker");
        }
        self.run_ok(&[
            "delegation",
            "add",
            gun,
            role,
            &public.to_string_lossy(),
            "--all-paths",
        ]);
        self.run_ok(&["publish", gun]);
    }

    /// The signer key files `(PKCS#8 private key, PEM public key)` for `key_name`, made on first use.
    pub fn signer_key(&self, key_name: &str) -> (PathBuf, PathBuf) {
        let sec1 = self.keys.join(format!("{key_name}.sec1.pem"));
        let key = self.keys.join(format!("{key_name}.key"));
        let public = self.keys.join(format!("{key_name}.pub"));
        if !public.exists() {
            genkey_p256(&self.keys, &sec1);
            // notary imports PKCS#8 only (a SEC1 key is silently ignored)
            run_checked(
                Command::new("openssl")
                    .args(["pkcs8", "-topk8", "-nocrypt", "-in"])
                    .arg(&sec1)
                    .arg("-out")
                    .arg(&key),
            );
            run_checked(
                Command::new("openssl")
                    .args(["ec", "-pubout", "-in"])
                    .arg(&key)
                    .arg("-out")
                    .arg(&public),
            );
        }
        (key, public)
    }

    /// `addhash GUN TAG SIZE --sha256 HEX [--roles ROLE]` + `publish`.
    pub fn sign(&self, gun: &str, tag: &str, p: &Pushed, role: Option<&str>) {
        let size = p.size.to_string();
        let mut args = vec!["addhash", gun, tag, &size, "--sha256", p.hex()];
        if let Some(r) = role {
            args.extend(["--roles", r]);
        }
        self.run_ok(&args);
        self.run_ok(&["publish", gun]);
    }

    /// `printf 'yes\n' | notary key rotate GUN root`, then checks that the served root.json's
    /// version went up (the CLI exits 0 when it aborts).
    pub fn rotate_root(&self, gun: &str) {
        let before = self.served_root_version(gun);
        let out = self.run_stdin(&["key", "rotate", gun, "root"], Some(b"yes\n"));
        assert!(
            out.status.success(),
            "{}",
            describe(&["key rotate root"], &out)
        );
        let mut after = self.served_root_version(gun);
        if after <= before {
            self.run_ok(&["publish", gun]);
            after = self.served_root_version(gun);
        }
        assert!(
            after > before,
            "root rotation of {gun} did not bump root.json (v{before} -> v{after}): {}",
            describe(&["key rotate root"], &out)
        );
    }

    /// `notary delete GUN --remote`: removes the GUN's trust data on the server (and this trust
    /// dir's copy); checks that root.json is then a 404.
    pub fn delete_trust_data(&self, gun: &str) {
        self.run_ok(&["delete", gun, "--remote"]);
        let r = self.get_trust_file(gun, "root.json");
        assert_eq!(
            r.status,
            404,
            "{gun}'s root.json after delete: {}",
            r.text()
        );
    }

    /// The `signed.version` of the root.json the server serves now (0 if none).
    pub fn served_root_version(&self, gun: &str) -> u64 {
        let r = self.get_trust_file(gun, "root.json");
        if r.status == 404 {
            return 0;
        }
        assert_eq!(r.status, 200, "{gun} root.json: {}", r.text());
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("root.json JSON");
        v["signed"]["version"].as_u64().expect("root version")
    }

    fn get_trust_file(&self, gun: &str, name: &str) -> Resp {
        self.net.request(
            "GET",
            &format!("{}/v2/{gun}/_trust/tuf/{name}", self.url),
            &[],
            None,
        )
    }

    /// Runs and panics (with the output) unless the CLI exits 0; returns stdout.
    pub fn run_ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{}", describe(args, &out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn run_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        std::fs::create_dir_all(&self.trust_dir).expect("trust dir");
        let mut cmd = Command::new("notary");
        cmd.arg("-s")
            .arg(&self.url)
            .arg("--tlscacert")
            .arg(&self.ca)
            .arg("-d")
            .arg(&self.trust_dir)
            .args(args)
            .env("HOME", &self.home)
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .env("NOTARY_ROOT_PASSPHRASE", ROOT_PASSPHRASE)
            .env("NOTARY_TARGETS_PASSPHRASE", TARGETS_PASSPHRASE)
            .env("NOTARY_SNAPSHOT_PASSPHRASE", SNAPSHOT_PASSPHRASE)
            .env("NOTARY_DELEGATION_PASSPHRASE", DELEGATION_PASSPHRASE);
        for v in PROXY_VARS.iter().chain(&["NOTARY_AUTH"]) {
            cmd.env_remove(v);
        }
        if let Some((u, p)) = &self.net.creds {
            cmd.env("NOTARY_AUTH", B64.encode(format!("{u}:{p}")));
        }
        run_with_timeout(&mut cmd, stdin, CLI_TIMEOUT)
    }
}

// -------------------------------------------------------------------------------------------
// helpers

fn require_tools() {
    for t in ["notary", "notary-server", "docker-registry", "openssl"] {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(t).is_file()));
        assert!(
            found,
            "`{t}` not found in PATH: run scripts/test (it installs the Debian packages notary, \
             docker-registry, openssl via scripts/install-deps); the test harness installs nothing"
        );
    }
}

/// A free port on 127.0.0.1 (never the same twice in this process).
fn free_port() -> u16 {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let set = given.get_or_insert_with(HashSet::new);
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        if set.insert(port) {
            return port;
        }
    }
}

/// Runs `start` on a fresh free port and returns what it started with that port; when another
/// process took the port in between ("address already in use"), tries again, 3 times at most.
/// Panics with any other error.
fn on_free_port<T>(mut start: impl FnMut(u16) -> Result<T, String>) -> (T, u16) {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let port = free_port();
        match start(port) {
            Ok(started) => return (started, port),
            Err(e) if attempt < 3 && e.contains("address already in use") => continue,
            Err(e) => panic!("{e}"),
        }
    }
}

/// Configuration lines as text to splice into a YAML template: each line and a newline.
pub fn yaml_text(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// The `policies:` section of a configuration that tries `roots` two ways: `<host>/all/**` must
/// satisfy all of them (policy `all`), `<host>/any/**` any one (policy `any`).
pub fn all_any_policies_yaml(host: &str, roots: &str) -> Vec<String> {
    let mut c = vec!["policies:".to_owned()];
    for require in ["all", "any"] {
        c.extend([
            format!("  - name: {require}"),
            format!("    images: [\"{host}/{require}/**\"]"),
            format!("    trustRoots: [{roots}]"),
            format!("    require: {require}"),
        ]);
    }
    c
}

/// Throwaway CA, one server cert (SANs IP:127.0.0.1, DNS:localhost) and a token signing cert.
fn make_pki(pki: &Path) -> PathBuf {
    make_ca(pki, "ca", "/CN=signgate test lab throwaway CA", 2);
    issue_leaf(pki, "server", "localhost", SERVER_EXT, 2);
    issue_leaf(
        pki,
        "token-signer",
        "signgate test lab token signer",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n",
        2,
    );
    openssl(
        pki,
        &[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            "token-signer.key",
            "-outform",
            "DER",
            "-out",
            "token-signer.pk8.der",
        ],
    );
    pki.to_path_buf()
}

const SERVER_EXT: &str = "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
     keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n";

/// `<name>.key` (P-256) and `<name>.crt` issued by `ca.crt`/`ca.key` in `pki`.
fn issue_leaf(pki: &Path, name: &str, cn: &str, ext: &str, days: u32) {
    issue_cert(pki, "ca", name, &format!("/CN={cn}"), ext, days);
}

/// [`pki::run_checked`] without the proxy variables.
fn run_checked(cmd: &mut Command) -> Vec<u8> {
    for v in PROXY_VARS {
        cmd.env_remove(v);
    }
    pki::run_checked(cmd)
}

fn run_with_timeout(cmd: &mut Command, stdin: Option<&[u8]>, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (run scripts/test)"));
    if let (Some(input), Some(mut w)) = (stdin, child.stdin.take()) {
        let _ = w.write_all(input);
    }
    fn drain(r: Option<impl std::io::Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for notary CLI") {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after {limit:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

fn describe(args: &[&str], out: &Output) -> String {
    format!(
        "notary {} -> {}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The last `n` lines of a file.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Waits (up to ~0.5 s) until a log file stops growing: servers log a request just after the
/// response went out, so a count taken right after a response could otherwise miss it.
fn settle(path: &Path) {
    let size = || std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut last = size();
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(50));
        let now = size();
        if now == last {
            return;
        }
        last = now;
    }
}

fn count(reqs: &[Req], needle: &str) -> usize {
    reqs.iter().filter(|r| r.uri.contains(needle)).count()
}

/// notary-server JSON log: one `"response completed…"` line per request served.
fn parse_json_requests(log: &str) -> Vec<Req> {
    log.lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["msg"]
                .as_str()
                .is_some_and(|m| m.starts_with("response completed"))
        })
        .map(|v| Req {
            method: v["http.request.method"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            uri: v["http.request.uri"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            // 0: the handler never called WriteHeader, i.e. an implicit 200 (publish POSTs)
            status: match v["http.response.status"].as_u64().unwrap_or(0) {
                0 => 200,
                s => s as u16,
            },
        })
        .collect()
}

/// Combined access log lines: `127.0.0.1 - - [date] "GET /v2/ HTTP/2.0" 200 2 "" "agent"`.
fn parse_access_log(log: &str) -> Vec<Req> {
    log.lines()
        .filter(|l| !l.starts_with('{'))
        .filter_map(|l| {
            let (_, rest) = l.split_once("] \"")?;
            let (line, rest) = rest.split_once('"')?;
            let mut f = line.split(' ');
            let (method, uri) = (f.next()?, f.next()?);
            let status = rest.split_whitespace().next()?.parse().ok()?;
            Some(Req {
                method: method.to_owned(),
                uri: uri.to_owned(),
                status,
            })
        })
        .collect()
}
