//! The HTTPS server over real TLS on 127.0.0.1: protocol versions and ALPN, HTTP/1.1 keep-alive
//! and HTTP/2, serving-certificate reload (in place and by a kubelet-style `..data` symlink swap),
//! graceful drain, and the metrics endpoint.

#[path = "harness/pki.rs"]
mod pki;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::routing::get;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use signgate::metrics::{
    CacheName, CacheOutcome, Decision, Metrics, ReloadResult, Upstream, UpstreamStatus,
    VerificationResult,
};
use signgate::server::{
    ReloadEvent, ReloadingCert, TlsError, dev_certificate, metrics_router, record_tls_reloads,
    serve, serve_plain, tls_config,
};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use pki::openssl;

const SERVICE_NAME: &str = "signgate.signgate.svc";

// === fixtures ===

fn install_provider() {
    // Several rustls users are linked into the test; pick one provider, as main does.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A development CA and serving certificate in `dir`.
struct Pair {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

impl Pair {
    fn new(dir: &Path) -> Pair {
        let (cert, key, ca) = dev_certificate(&[SERVICE_NAME], dir).unwrap();
        Pair { cert, key, ca }
    }

    fn leaf(&self) -> Vec<u8> {
        leaf_of(&self.cert)
    }
}

fn leaf_of(pem: &Path) -> Vec<u8> {
    CertificateDer::pem_file_iter(pem)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

fn app() -> Router {
    Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route(
            "/version",
            get(|req: Request| async move { format!("{:?}", req.version()) }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(500)).await;
                "slow"
            }),
        )
}

struct Running {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn start_with(resolver: Arc<ReloadingCert>, app: Router, drain: Duration) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = Arc::new(tls_config(resolver).unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        listener,
        tls,
        app,
        async {
            let _ = rx.await;
        },
        drain,
    ));
    Running {
        addr,
        shutdown: Some(tx),
        task,
    }
}

async fn start(pair: &Pair) -> Running {
    let resolver = Arc::new(ReloadingCert::load(&pair.cert, &pair.key).unwrap());
    start_with(resolver, app(), Duration::from_secs(5)).await
}

/// The crypto provider installed, and a dev certificate [`Pair`] in a temp dir (its files live as
/// long as the dir).
fn provider_and_pair() -> (tempfile::TempDir, Pair) {
    install_provider();
    let dir = tempfile::tempdir().unwrap();
    let pair = Pair::new(dir.path());
    (dir, pair)
}

/// [`provider_and_pair`], and [`start`] serving with the pair.
async fn serving() -> (tempfile::TempDir, Pair, Running) {
    let (dir, pair) = provider_and_pair();
    let server = start(&pair).await;
    (dir, pair, server)
}

fn roots(cas: &[&Path]) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        for cert in CertificateDer::pem_file_iter(ca).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    roots
}

fn client_config(
    cas: &[&Path],
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut config = rustls::ClientConfig::builder_with_protocol_versions(versions)
        .with_root_certificates(roots(cas))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

async fn connect(
    addr: SocketAddr,
    name: &str,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    TlsConnector::from(config)
        .connect(ServerName::try_from(name.to_owned()).unwrap(), tcp)
        .await
}

fn peer_leaf(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// A bare HTTP/1.1 client on one connection, so that keep-alive is observed, not assumed.
struct Http1<S> {
    io: BufReader<S>,
}

struct Reply {
    status_line: String,
    headers: HashMap<String, String>,
    body: String,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Http1<S> {
    fn new(stream: S) -> Self {
        Http1 {
            io: BufReader::new(stream),
        }
    }

    async fn get(&mut self, path: &str) -> std::io::Result<Reply> {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {SERVICE_NAME}:443\r\n\r\n");
        self.io.get_mut().write_all(req.as_bytes()).await?;
        self.io.get_mut().flush().await?;
        let mut status_line = String::new();
        if self.io.read_line(&mut status_line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            self.io.read_line(&mut line).await?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (k, v) = line.split_once(':').unwrap();
            headers.insert(k.to_ascii_lowercase(), v.trim().to_owned());
        }
        let len: usize = headers["content-length"].parse().unwrap();
        let mut body = vec![0; len];
        self.io.read_exact(&mut body).await?;
        Ok(Reply {
            status_line: status_line.trim_end().to_owned(),
            headers,
            body: String::from_utf8(body).unwrap(),
        })
    }
}

fn reqwest_client(cas: &[&Path], addr: SocketAddr) -> reqwest::ClientBuilder {
    let certs = cas
        .iter()
        .map(|ca| reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap());
    reqwest::Client::builder()
        .tls_certs_only(certs)
        // As kube-apiserver does: connect to an endpoint, verify the service name.
        .resolve(SERVICE_NAME, addr)
        .timeout(Duration::from_secs(5))
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("https://{SERVICE_NAME}:{}{path}", addr.port())
}

// === protocols ===

#[tokio::test]
async fn keeps_http1_connections_alive_across_requests() {
    let (_dir, pair, mut server) = serving().await;

    // kube-apiserver pins ALPN to http/1.1 and reuses connections.
    let config = client_config(&[&pair.ca], &[b"http/1.1"], rustls::DEFAULT_VERSIONS);
    let stream = connect(server.addr, SERVICE_NAME, config).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut http = Http1::new(stream);
    for _ in 0..25 {
        let reply = http.get("/version").await.unwrap();
        assert_eq!(reply.status_line, "HTTP/1.1 200 OK");
        assert_eq!(reply.body, "HTTP/1.1");
        assert_ne!(
            reply.headers.get("connection").map(String::as_str),
            Some("close")
        );
    }
    server.stop();
    server.task.await.unwrap();
}

#[tokio::test]
async fn serves_http1_to_a_client_without_alpn() {
    let (_dir, pair, server) = serving().await;

    let config = client_config(&[&pair.ca], &[], rustls::DEFAULT_VERSIONS);
    let stream = connect(server.addr, SERVICE_NAME, config).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), None);
    let mut http = Http1::new(stream);
    for _ in 0..3 {
        assert_eq!(http.get("/version").await.unwrap().body, "HTTP/1.1");
    }
}

#[tokio::test]
async fn serves_http2_when_the_client_offers_h2_and_http1_when_pinned() {
    let (_dir, pair, server) = serving().await;

    let h2 = reqwest_client(&[&pair.ca], server.addr).build().unwrap();
    for _ in 0..3 {
        let resp = h2.get(url(server.addr, "/version")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.version(), reqwest::Version::HTTP_2);
        assert_eq!(resp.text().await.unwrap(), "HTTP/2.0");
    }

    let h1 = reqwest_client(&[&pair.ca], server.addr)
        .http1_only()
        .build()
        .unwrap();
    let resp = h1.get(url(server.addr, "/version")).send().await.unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);

    // ALPN itself: h2 is negotiated when it is all the client offers.
    let config = client_config(&[&pair.ca], &[b"h2"], rustls::DEFAULT_VERSIONS);
    let stream = connect(server.addr, SERVICE_NAME, config).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
}

#[tokio::test]
async fn accepts_tls_1_2_and_1_3() {
    let (_dir, pair, server) = serving().await;

    for (version, want) in [
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
    ] {
        let config = client_config(&[&pair.ca], &[b"http/1.1"], &[version]);
        let stream = connect(server.addr, SERVICE_NAME, config).await.unwrap();
        assert_eq!(stream.get_ref().1.protocol_version(), Some(want));
        let mut http = Http1::new(stream);
        assert_eq!(http.get("/hello").await.unwrap().body, "hello");
    }
    // The IP address SAN of the development certificate.
    let config = client_config(&[&pair.ca], &[], rustls::DEFAULT_VERSIONS);
    connect(server.addr, "127.0.0.1", config).await.unwrap();
}

#[tokio::test]
async fn refuses_tls_1_1() {
    let (_dir, _pair, server) = serving().await;

    // A TLS 1.1 ClientHello (no supported_versions extension), written by hand: rustls clients
    // cannot speak TLS 1.1.
    let mut hello = vec![0x03, 0x02]; // client_version TLS 1.1
    hello.extend_from_slice(&[0x42; 32]); // random
    hello.push(0); // session id
    // Cipher suites: ECDHE-ECDSA-AES128-GCM-SHA256, ECDHE-RSA-AES128-SHA.
    hello.extend_from_slice(&[0x00, 0x04, 0xc0, 0x2b, 0xc0, 0x13]);
    hello.extend_from_slice(&[0x01, 0x00]); // null compression
    // Extensions: signature_algorithms (rustls requires it before it looks at the version).
    hello.extend_from_slice(&[
        0x00, 0x0c, 0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01,
    ]);
    let mut handshake = vec![0x01, 0x00];
    handshake.extend_from_slice(&u16::try_from(hello.len()).unwrap().to_be_bytes());
    handshake.extend_from_slice(&hello);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&u16::try_from(handshake.len()).unwrap().to_be_bytes());
    record.extend_from_slice(&handshake);

    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(&record).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    // One fatal alert record: protocol_version (70). No ServerHello.
    assert_eq!(
        answer.first(),
        Some(&0x15),
        "want an alert, got {answer:02x?}"
    );
    assert_eq!(answer.get(5..7), Some(&[0x02, 70][..]), "got {answer:02x?}");
}

// === certificates ===

#[tokio::test]
async fn serves_openssl_made_pkcs8_rsa_and_sec1_keys_with_a_chain() {
    install_provider();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    pki::genkey_p256(d, "ca.key");
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-subj",
            "/CN=test CA",
            "-days",
            "2",
            "-out",
            "ca.crt",
        ],
    );
    std::fs::write(
        d.join("leaf.ext"),
        format!(
            "subjectAltName=DNS:{SERVICE_NAME},IP:127.0.0.1\n\
             basicConstraints=CA:FALSE\n\
             extendedKeyUsage=serverAuth\n"
        ),
    )
    .unwrap();
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "pkcs8-rsa.key",
        ],
    );
    openssl(
        d,
        &[
            "rsa",
            "-in",
            "pkcs8-rsa.key",
            "-traditional",
            "-out",
            "pkcs1-rsa.key",
        ],
    );
    // `ecparam -genkey` writes an EC PARAMETERS block before the SEC1 key.
    openssl(
        d,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-out",
            "sec1-ec.key",
        ],
    );

    for (key, marker) in [
        ("pkcs8-rsa.key", "BEGIN PRIVATE KEY"),
        ("pkcs1-rsa.key", "BEGIN RSA PRIVATE KEY"),
        ("sec1-ec.key", "BEGIN EC PRIVATE KEY"),
    ] {
        assert!(
            std::fs::read_to_string(d.join(key))
                .unwrap()
                .contains(marker)
        );
        openssl(
            d,
            &[
                "req",
                "-new",
                "-key",
                key,
                "-subj",
                &format!("/CN={SERVICE_NAME}"),
                "-out",
                "leaf.csr",
            ],
        );
        pki::sign_csr(d, "ca", "leaf.csr", "leaf.ext", 2, "leaf.crt");
        // cert-manager style: the leaf followed by its CA.
        let chain = format!(
            "{}{}",
            std::fs::read_to_string(d.join("leaf.crt")).unwrap(),
            std::fs::read_to_string(d.join("ca.crt")).unwrap()
        );
        let chain_path = d.join(format!("{key}.chain.crt"));
        std::fs::write(&chain_path, chain).unwrap();

        let resolver = Arc::new(ReloadingCert::load(&chain_path, d.join(key)).unwrap());
        assert_eq!(resolver.current().cert.len(), 2, "{key}");
        let server = start_with(resolver, app(), Duration::from_secs(1)).await;
        let config = client_config(
            &[&d.join("ca.crt")],
            &[b"http/1.1"],
            rustls::DEFAULT_VERSIONS,
        );
        let stream = connect(server.addr, SERVICE_NAME, config).await.unwrap();
        assert_eq!(peer_leaf(&stream), leaf_of(&d.join("leaf.crt")), "{key}");
        assert_eq!(
            Http1::new(stream).get("/hello").await.unwrap().body,
            "hello"
        );
    }
}

#[test]
fn refuses_a_key_that_does_not_match_the_certificate() {
    install_provider();
    let dir = tempfile::tempdir().unwrap();
    let a = Pair::new(&dir.path().join("a"));
    let b = Pair::new(&dir.path().join("b"));
    let err = ReloadingCert::load(&a.cert, &b.key).unwrap_err();
    assert!(matches!(err, TlsError::Key { .. }), "{err}");
    let err = ReloadingCert::load(&a.key, &a.key).unwrap_err();
    assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
    let err = ReloadingCert::load(&a.cert, &a.cert).unwrap_err();
    assert!(matches!(err, TlsError::NoKey { .. }), "{err}");
    let err = ReloadingCert::load(dir.path().join("missing.crt"), &a.key).unwrap_err();
    assert!(matches!(err, TlsError::Read { .. }), "{err}");
}

#[test]
fn dev_certificate_verifies_with_openssl_for_the_service_name() {
    let dir = tempfile::tempdir().unwrap();
    let pair = Pair::new(dir.path());
    let d = dir.path();
    let ca = pair.ca.to_str().unwrap();
    let cert = pair.cert.to_str().unwrap();
    openssl(d, &["verify", "-CAfile", ca, "-purpose", "sslserver", cert]);
    openssl(
        d,
        &[
            "verify",
            "-CAfile",
            ca,
            "-verify_hostname",
            SERVICE_NAME,
            cert,
        ],
    );
    openssl(
        d,
        &[
            "verify",
            "-CAfile",
            ca,
            "-verify_hostname",
            "localhost",
            cert,
        ],
    );
    openssl(
        d,
        &["verify", "-CAfile", ca, "-verify_ip", "127.0.0.1", cert],
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&pair.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test]
async fn reload_keeps_the_old_pair_when_the_new_one_is_bad() {
    install_provider();
    let dir = tempfile::tempdir().unwrap();
    let a = Pair::new(&dir.path().join("a"));
    let b = Pair::new(&dir.path().join("b"));
    let live = dir.path().join("live");
    std::fs::create_dir(&live).unwrap();
    let (cert, key) = (live.join("tls.crt"), live.join("tls.key"));
    std::fs::copy(&a.cert, &cert).unwrap();
    std::fs::copy(&a.key, &key).unwrap();

    let metrics = Arc::new(Metrics::new());
    let rejected = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&rejected);
    let record = record_tls_reloads(Arc::clone(&metrics));
    let resolver = ReloadingCert::load(&cert, &key)
        .unwrap()
        .on_reload(move |e| {
            if matches!(e, ReloadEvent::Rejected { .. }) {
                seen.fetch_add(1, Ordering::Relaxed);
            }
            record(e);
        });
    assert!(
        !resolver.reload().unwrap(),
        "unchanged files are not reloaded"
    );

    // B's certificate with A's key: refused, A stays in service, and the same bad content is
    // not tried (or logged) again.
    std::fs::copy(&b.cert, &cert).unwrap();
    assert!(matches!(resolver.reload(), Err(TlsError::Key { .. })));
    assert_eq!(resolver.current().cert[0].as_ref(), a.leaf());
    assert!(!resolver.reload().unwrap());
    assert_eq!(
        (resolver.failures(), rejected.load(Ordering::Relaxed)),
        (1, 1)
    );

    // Garbage: refused.
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    assert!(matches!(resolver.reload(), Err(TlsError::Pem { .. })));
    assert_eq!(resolver.current().cert[0].as_ref(), a.leaf());

    // The matching key arrives: B goes into service.
    std::fs::copy(&b.cert, &cert).unwrap();
    std::fs::copy(&b.key, &key).unwrap();
    assert!(resolver.reload().unwrap());
    assert_eq!(resolver.current().cert[0].as_ref(), b.leaf());
    assert_eq!(resolver.reloads(), 1);
    let not_after = signgate::server::not_after_unix(&b.leaf()).unwrap();
    assert_eq!(resolver.not_after_unix(), not_after);

    // A file that disappears is reported once, not at every poll.
    std::fs::remove_file(&key).unwrap();
    assert!(matches!(resolver.reload(), Err(TlsError::Read { .. })));
    assert!(matches!(resolver.reload(), Err(TlsError::Read { .. })));
    assert_eq!(resolver.current().cert[0].as_ref(), b.leaf());
    assert_eq!(resolver.failures(), 3);

    let text = metrics.encode();
    for line in [
        format!("signgate_tls_certificate_expiry_timestamp_seconds {not_after}"),
        r#"signgate_tls_certificate_reloads_total{result="success"} 1"#.to_owned(),
        r#"signgate_tls_certificate_reloads_total{result="failure"} 3"#.to_owned(),
    ] {
        assert!(text.contains(&line), "missing {line}:\n{text}");
    }
}

/// The layout kubelet gives a mounted Secret, and its atomic update.
struct SecretVolume {
    dir: PathBuf,
    generation: u32,
}

impl SecretVolume {
    fn new(dir: PathBuf, pair: &Pair) -> SecretVolume {
        std::fs::create_dir_all(&dir).unwrap();
        let mut volume = SecretVolume { dir, generation: 0 };
        volume.publish(pair);
        for name in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(format!("..data/{name}"), volume.dir.join(name)).unwrap();
        }
        volume
    }

    /// Writes a new timestamped directory, points `..data` at it with one rename, and removes the
    /// old directory, as kubelet's AtomicWriter does.
    fn publish(&mut self, pair: &Pair) {
        self.generation += 1;
        let old = format!("..2026_07_01_00_00_0{}", self.generation - 1);
        let new = format!("..2026_07_01_00_00_0{}", self.generation);
        let new_dir = self.dir.join(&new);
        std::fs::create_dir(&new_dir).unwrap();
        std::fs::copy(&pair.cert, new_dir.join("tls.crt")).unwrap();
        std::fs::copy(&pair.key, new_dir.join("tls.key")).unwrap();
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&new, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
        let _ = std::fs::remove_dir_all(self.dir.join(old));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn picks_up_a_kubelet_secret_swap_without_failing_a_request() {
    install_provider();
    let dir = tempfile::tempdir().unwrap();
    let a = Pair::new(&dir.path().join("a"));
    let b = Pair::new(&dir.path().join("b"));
    let mut volume = SecretVolume::new(dir.path().join("secret"), &a);

    let reloaded = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&reloaded);
    let resolver = Arc::new(
        ReloadingCert::load(volume.dir.join("tls.crt"), volume.dir.join("tls.key"))
            .unwrap()
            .on_reload(move |e| {
                if matches!(e, ReloadEvent::Reloaded { .. }) {
                    seen.fetch_add(1, Ordering::Relaxed);
                }
            }),
    );
    let watcher = resolver.watch(Duration::from_millis(50));
    let server = start_with(Arc::clone(&resolver), app(), Duration::from_secs(1)).await;
    let config = client_config(&[&a.ca, &b.ca], &[b"http/1.1"], rustls::DEFAULT_VERSIONS);

    // Two request loops across the swap: one keeps its connection alive, one reconnects each time.
    let stop = Arc::new(AtomicBool::new(false));
    let loops: Vec<_> = [true, false]
        .into_iter()
        .map(|keep_alive| {
            let stop = Arc::clone(&stop);
            let mut builder = reqwest_client(&[&a.ca, &b.ca], server.addr).http1_only();
            if !keep_alive {
                builder = builder.pool_max_idle_per_host(0);
            }
            let client = builder.build().unwrap();
            let url = url(server.addr, "/hello");
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0u32, Vec::new());
                // Until told to stop, and at least 10 answers however slow the machine is.
                while !stop.load(Ordering::Relaxed) || ok < 10 {
                    match client.get(&url).send().await {
                        Ok(r) if r.status() == 200 => ok += 1,
                        other => failed.push(format!("{other:?}")),
                    }
                }
                (ok, failed)
            })
        })
        .collect();

    let stream = connect(server.addr, SERVICE_NAME, Arc::clone(&config))
        .await
        .unwrap();
    assert_eq!(peer_leaf(&stream), a.leaf());
    tokio::time::sleep(Duration::from_millis(200)).await;

    volume.publish(&b);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stream = connect(server.addr, SERVICE_NAME, Arc::clone(&config))
            .await
            .unwrap();
        if peer_leaf(&stream) == b.leaf() {
            break;
        }
        assert!(Instant::now() < deadline, "certificate B never served");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);

    for handle in loops {
        let (ok, failed) = handle.await.unwrap();
        assert!(failed.is_empty(), "failed requests: {failed:?}");
        assert!(ok >= 10, "only {ok} requests");
    }
    assert_eq!(reloaded.load(Ordering::Relaxed), 1);
    assert_eq!(resolver.reloads(), 1);
    assert_eq!(resolver.failures(), 0);
    watcher.abort();
}

#[tokio::test]
async fn watch_task_ends_when_the_resolver_is_dropped() {
    install_provider();
    let dir = tempfile::tempdir().unwrap();
    let a = Pair::new(dir.path());
    let resolver = Arc::new(ReloadingCert::load(&a.cert, &a.key).unwrap());
    let watcher = resolver.watch(Duration::from_millis(10));
    drop(resolver);
    tokio::time::timeout(Duration::from_secs(2), watcher)
        .await
        .unwrap()
        .unwrap();
}

// === shutdown ===

/// `app` with a route `path` that says it started (the returned [`Notify`]), sleeps `sleep`, then
/// answers `body`.
fn with_slow_route(
    app: Router,
    path: &str,
    sleep: Duration,
    body: &'static str,
) -> (Router, Arc<Notify>) {
    let started = Arc::new(Notify::new());
    let notify = Arc::clone(&started);
    let app = app.route(
        path,
        get(move || {
            let notify = Arc::clone(&notify);
            async move {
                notify.notify_one();
                tokio::time::sleep(sleep).await;
                body
            }
        }),
    );
    (app, started)
}

/// `GET path` with `client` in a task of its own; once its handler has started (`started`), the
/// server is told to stop. The request's task, and when the stop was asked.
async fn stop_while_serving(
    server: &mut Running,
    client: reqwest::Client,
    path: &str,
    started: &Notify,
) -> (JoinHandle<reqwest::Result<reqwest::Response>>, Instant) {
    let in_flight = tokio::spawn({
        let url = url(server.addr, path);
        async move { client.get(url).send().await }
    });
    started.notified().await;
    let t0 = Instant::now();
    server.stop();
    (in_flight, t0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drains_in_flight_requests_and_refuses_new_connections() {
    let (_dir, pair) = provider_and_pair();
    let (app, started) = with_slow_route(app(), "/slow-notify", Duration::from_millis(500), "slow");
    let resolver = Arc::new(ReloadingCert::load(&pair.cert, &pair.key).unwrap());
    let mut server = start_with(resolver, app, Duration::from_secs(5)).await;

    // An idle keep-alive connection, to be closed by the drain.
    let config = client_config(&[&pair.ca], &[b"http/1.1"], rustls::DEFAULT_VERSIONS);
    let mut idle = Http1::new(connect(server.addr, SERVICE_NAME, config).await.unwrap());
    idle.get("/hello").await.unwrap();

    let client = reqwest_client(&[&pair.ca], server.addr)
        .http1_only()
        .build()
        .unwrap();
    let (in_flight, t0) = stop_while_serving(&mut server, client, "/slow-notify", &started).await;

    let resp = in_flight.await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers().get("connection").unwrap(), "close");
    assert_eq!(resp.text().await.unwrap(), "slow");

    // The listener is closed: new connections are refused.
    let err = TcpStream::connect(server.addr).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);

    // The idle connection was closed, and the server returned once the slow request was done.
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), idle.io.read_to_end(&mut rest))
        .await
        .unwrap()
        .ok();
    assert!(rest.is_empty());
    tokio::time::timeout(Duration::from_secs(2), &mut server.task)
        .await
        .unwrap()
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closes_connections_still_busy_at_the_drain_deadline() {
    let (_dir, pair) = provider_and_pair();
    let (app, started) = with_slow_route(Router::new(), "/hang", Duration::from_secs(30), "late");
    let resolver = Arc::new(ReloadingCert::load(&pair.cert, &pair.key).unwrap());
    let mut server = start_with(resolver, app, Duration::from_millis(300)).await;

    let client = reqwest_client(&[&pair.ca], server.addr).build().unwrap();
    let (in_flight, t0) = stop_while_serving(&mut server, client, "/hang", &started).await;
    tokio::time::timeout(Duration::from_secs(3), &mut server.task)
        .await
        .unwrap()
        .unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert!(in_flight.await.unwrap().is_err());
}

// === metrics ===

/// Every family SPEC names, as it appears on a sample line, one a line.
const SPEC_METRICS: &str = include_str!("fixtures/metrics/spec-metrics.txt");

/// The OpenMetrics family name of a sample name (counters drop `_total`).
fn family(name: &str) -> &str {
    name.strip_suffix("_total").unwrap_or(name)
}

#[tokio::test]
async fn metrics_endpoint_serves_every_spec_family() {
    let metrics = Arc::new(Metrics::new());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_plain(
        listener,
        metrics_router(Arc::clone(&metrics)),
        async {
            let _ = rx.await;
        },
        Duration::from_secs(1),
    ));
    let client = reqwest::Client::new();
    let get = || async {
        let resp = client
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["content-type"],
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        resp.text().await.unwrap()
    };

    // Before any traffic, every family is declared.
    let text = get().await;
    for name in SPEC_METRICS.lines() {
        assert!(
            text.contains(&format!("# TYPE {} ", family(name))),
            "{name} not declared:\n{text}"
        );
    }
    assert!(text.contains("signgate_build_info{version=\""));
    assert!(text.ends_with("# EOF\n"));

    // After one of each, every SPEC sample name is there.
    metrics.set_trust_roots(&[("ml-platform", signgate::policy::Kind::Notary)]);
    metrics.admission("Pod", "CREATE", Decision::Allowed, None, 0.001);
    metrics.verification(
        "ml-platform",
        signgate::policy::Kind::Notary,
        VerificationResult::Trusted,
        "none",
        CacheOutcome::Hit,
        0.0002,
    );
    metrics.upstream(
        Upstream::Notary,
        "notary.example:4443",
        UpstreamStatus::Http(200),
        0.05,
    );
    metrics.cache_hit(CacheName::TrustData);
    metrics.cache_miss(CacheName::Digest);
    metrics.trust_expiry(
        "ml-platform",
        "registry.example/ml/pytorch",
        "timestamp",
        1_900_000_000,
    );
    metrics.config_reload(ReloadResult::Success);
    metrics.tls_expiry(1_900_000_000);
    let text = get().await;
    for name in SPEC_METRICS.lines() {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "no {name} sample:\n{text}"
        );
    }

    let _ = tx.send(());
    task.await.unwrap();
}
