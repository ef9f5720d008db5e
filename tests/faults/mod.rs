//! A small hostile HTTPS server for fault tests: one request per connection (HTTP/1.1, no ALPN, so
//! clients speak HTTP/1.1), the reply chosen by a router from the request path. It counts what it
//! did (TCP accepts, requests, body bytes written, when each connection ended), and everything it
//! spawned is aborted when the [`Server`] is dropped.
//!
//! The TLS certificate is a throwaway P-256 CA and a leaf for `127.0.0.1` and `localhost`, made once
//! per test binary with the `openssl` CLI; clients trust it through [`ca_pem`].
// Shared by several test binaries, each using a part.
#![allow(dead_code)]

// Its own copy of the lab's PKI helpers: the binaries that also include `harness` get two.
#[allow(clippy::duplicate_mod)]
#[path = "../harness/pki.rs"]
mod pki;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpSocket;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

/// What the server does with one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Never answer; hold the connection until the client closes it.
    Stall,
    /// A complete response: `Content-Length` and `Connection: close` are added.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// `200`, `headers` at once (no `Content-Length`: the body runs to the close), then one byte
    /// every `every`, forever.
    Drip {
        headers: Vec<(String, String)>,
        every: Duration,
    },
    /// `200`, `headers` (no `Content-Length`), then bytes as fast as the client takes them, forever.
    Endless { headers: Vec<(String, String)> },
    /// `200` with exactly `headers` (e.g. a huge `Content-Length`), then not one body byte.
    HeadersThenStall { headers: Vec<(String, String)> },
}

impl Reply {
    pub fn full(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply::Full {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn not_found() -> Reply {
        Reply::full(404, "text/plain", "not found")
    }

    /// `200`, a registry document (manifest, index, blob) of `media_type` with the
    /// `Docker-Content-Digest` a registry states: `digest` (a lying registry's is not the body's).
    pub fn stating_digest(media_type: &str, digest: String, body: Vec<u8>) -> Reply {
        Reply::Full {
            status: 200,
            headers: vec![
                ("Content-Type".into(), media_type.into()),
                ("Docker-Content-Digest".into(), digest),
            ],
            body,
        }
    }

    /// [`Reply::stating_digest`] with the body's true digest.
    pub fn registry_doc(media_type: &str, body: Vec<u8>) -> Reply {
        Reply::stating_digest(media_type, sha256_digest(&body), body)
    }
}

/// `sha256:<hex>` of `bytes`: a registry digest.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// One request as the server saw it, and how its connection ended.
#[derive(Debug, Clone)]
pub struct Served {
    pub path: String,
    /// Body bytes the server managed to write (accepted by TLS and the socket).
    pub body_bytes: u64,
    /// When the connection ended: the reply was complete or the client went away.
    pub ended: Instant,
}

#[derive(Default)]
pub struct Stats {
    /// TCP connections accepted.
    pub accepted: AtomicUsize,
    /// Request paths in arrival order.
    pub requests: Mutex<Vec<String>>,
    /// Connections that carried a request and have ended.
    pub served: Mutex<Vec<Served>>,
    changed: Notify,
}

pub type Router = Arc<dyn Fn(&str) -> Reply + Send + Sync>;

/// A running server; dropping it aborts the accept loop and every connection.
pub struct Server {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// HTTPS on 127.0.0.1:0, replies chosen by `router` from the request path.
    pub async fn tls(router: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Server {
        Server::start(Some(acceptor()), Some(Arc::new(router))).await
    }

    /// Accepts TCP connections on 127.0.0.1:0 and never says a word: a TLS handshake that stalls.
    pub async fn silent() -> Server {
        Server::start(None, None).await
    }

    async fn start(tls: Option<TlsAcceptor>, router: Option<Router>) -> Server {
        // A small send buffer (inherited by accepted sockets): what the server counts as written
        // is close to what the client took, not what the kernel was willing to queue.
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_send_buffer_size(64 * 1024).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(64).unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(Stats::default());
        let st = Arc::clone(&stats);
        let task = tokio::spawn(async move {
            // Owned by this task: aborting the task drops the set, which aborts every connection.
            let mut conns = JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                st.accepted.fetch_add(1, Ordering::SeqCst);
                st.changed.notify_waiters();
                while conns.try_join_next().is_some() {}
                let st = Arc::clone(&st);
                match (&tls, &router) {
                    (Some(tls), Some(router)) => {
                        let (tls, router) = (tls.clone(), Arc::clone(router));
                        conns.spawn(async move {
                            if let Ok(stream) = tls.accept(tcp).await {
                                connection(stream, &router, &st).await;
                            }
                        });
                    }
                    _ => {
                        conns.spawn(drain(tcp));
                    }
                }
            }
        });
        Server { addr, stats, task }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    pub fn accepted(&self) -> usize {
        self.stats.accepted.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<String> {
        self.stats.requests.lock().unwrap().clone()
    }

    pub fn served(&self) -> Vec<Served> {
        self.stats.served.lock().unwrap().clone()
    }

    /// The first ended connection whose path contains `path`, waiting up to `limit` for it.
    pub async fn wait_served(&self, path: &str, limit: Duration) -> Option<Served> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.stats.changed.notified();
            if let Some(s) = self.served().into_iter().find(|s| s.path.contains(path)) {
                return Some(s);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return None;
            }
        }
    }
}

/// Reads until the peer closes (or errs), discarding everything.
async fn drain(mut s: impl AsyncRead + Unpin) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

async fn connection<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, router: &Router, st: &Stats) {
    let Some(path) = read_request_path(&mut s).await else {
        return;
    };
    st.requests.lock().unwrap().push(path.clone());
    st.changed.notify_waiters();
    let reply = router(&path);
    let body_bytes = respond(&mut s, reply).await;
    st.served.lock().unwrap().push(Served {
        path,
        body_bytes,
        ended: Instant::now(),
    });
    st.changed.notify_waiters();
}

/// The path of the request line, once the whole request head has arrived.
async fn read_request_path(s: &mut (impl AsyncRead + Unpin)) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).await.ok()?;
        if n == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.extend_from_slice(buf.get(..n)?);
    }
    let line = String::from_utf8_lossy(&head);
    line.split_whitespace().nth(1).map(str::to_owned)
}

fn head(status: u16, headers: &[(String, String)]) -> Vec<u8> {
    let mut h = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status));
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    h.into_bytes()
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        404 => "Not Found",
        _ => "Whatever",
    }
}

/// Writes `reply`; returns the body bytes written.
async fn respond<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, reply: Reply) -> u64 {
    let close = ("Connection".to_owned(), "close".to_owned());
    match reply {
        Reply::Stall => {
            drain(s).await;
            0
        }
        Reply::Full {
            status,
            mut headers,
            body,
        } => {
            headers.push(("Content-Length".into(), body.len().to_string()));
            headers.push(close);
            let mut out = head(status, &headers);
            out.extend_from_slice(&body);
            if s.write_all(&out).await.is_err() {
                return 0;
            }
            let _ = s.shutdown().await;
            body.len() as u64
        }
        Reply::HeadersThenStall { headers } => {
            if s.write_all(&head(200, &headers)).await.is_ok() && s.flush().await.is_ok() {
                drain(s).await;
            }
            0
        }
        Reply::Drip { mut headers, every } => {
            headers.push(close);
            if s.write_all(&head(200, &headers)).await.is_err() || s.flush().await.is_err() {
                return 0;
            }
            let mut n = 0;
            loop {
                tokio::time::sleep(every).await;
                if s.write_all(b" ").await.is_err() || s.flush().await.is_err() {
                    return n;
                }
                n += 1;
            }
        }
        Reply::Endless { mut headers } => {
            headers.push(close);
            if s.write_all(&head(200, &headers)).await.is_err() {
                return 0;
            }
            let chunk = vec![b' '; 64 * 1024];
            let mut n = 0u64;
            loop {
                // Count only what the connection accepted.
                match s.write(&chunk).await {
                    Ok(0) | Err(_) => return n,
                    Ok(k) => n += k as u64,
                }
            }
        }
    }
}

struct Pki {
    ca_pem: Vec<u8>,
    config: Arc<rustls::ServerConfig>,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(make_pki)
}

/// The CA certificate (PEM) that clients must trust.
pub fn ca_pem() -> Vec<u8> {
    pki().ca_pem.clone()
}

pub fn acceptor() -> TlsAcceptor {
    TlsAcceptor::from(Arc::clone(&pki().config))
}

fn make_pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    pki::make_ca(dir.path(), "ca", "/CN=signgate fault-test throwaway CA", 2);
    pki::issue_cert(
        dir.path(),
        "ca",
        "server",
        "/CN=localhost",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        2,
    );
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    let certs = CertificateDer::pem_slice_iter(&read("server.crt"))
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(&read("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    Pki {
        ca_pem: read("ca.crt"),
        config: Arc::new(config),
    }
}

/// A verifier (default settings) for the configuration `yaml`, parsed as if read from
/// `signgate.yaml`: for fault tests that need no files next to it.
pub fn verifier_for(yaml: &str) -> signgate::verifier::Verifier {
    let config =
        signgate::config::Config::parse(yaml, std::path::Path::new("signgate.yaml")).unwrap();
    signgate::verifier::Verifier::new(
        Arc::new(config),
        signgate::verifier::VerifierSettings::default(),
    )
    .unwrap()
}
