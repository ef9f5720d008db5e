//! A tiny registry-style token issuer (docker "token authentication"), served over HTTPS from a
//! background thread (std + rustls, one request per connection).
//!
//! `GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=…][&account=U]` with HTTP Basic
//! for the one known user -> 200 `{"token": JWT, "access_token": JWT, "expires_in": 300, …}`.
//! Anonymous or wrong credentials -> 401. Whatever is asked for is granted. The JWT is ES256 with
//! an `x5c` header holding the signing certificate (issued by the lab CA, which both servers are
//! given as `rootcertbundle`); claims `iss`, `sub`, `aud` (= service), `exp`, `nbf`, `iat`, `jti`,
//! `access`.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::DecodePrivateKey as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::accept::Acceptor;

pub const ISSUER: &str = "signgate-lab-token-issuer";
pub const TOKEN_TTL_SECS: u64 = 300;

/// One token handed out.
#[derive(Debug, Clone)]
pub struct Issued {
    pub service: String,
    pub scopes: Vec<String>,
    pub user: String,
}

struct State {
    key: p256::ecdsa::SigningKey,
    x5c: String,
    user: String,
    password: String,
    issued: Mutex<Vec<Issued>>,
    refused: AtomicUsize,
    serial: AtomicUsize,
}

pub struct TokenIssuer {
    acceptor: Acceptor,
    state: Arc<State>,
}

impl TokenIssuer {
    /// `tls_cert`/`tls_key`: PEM server certificate and key for 127.0.0.1; `signing_key_pkcs8_der`
    /// and `signing_cert_pem`: the token signing key and its certificate (goes into `x5c`).
    pub fn start(
        tls_cert: &Path,
        tls_key: &Path,
        signing_key_pkcs8_der: &[u8],
        signing_cert_pem: &Path,
        user: &str,
        password: &str,
    ) -> TokenIssuer {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(tls_cert)
            .expect("read TLS cert")
            .collect::<Result<_, _>>()
            .expect("parse TLS cert");
        let key = PrivateKeyDer::from_pem_file(tls_key).expect("read TLS key");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("TLS server config");
        let tls = Arc::new(tls);
        let signing_cert = CertificateDer::from_pem_file(signing_cert_pem).expect("signing cert");
        let state = Arc::new(State {
            key: p256::ecdsa::SigningKey::from_pkcs8_der(signing_key_pkcs8_der)
                .expect("token signing key (PKCS#8 DER, P-256)"),
            x5c: STANDARD.encode(signing_cert.as_ref()),
            user: user.to_owned(),
            password: password.to_owned(),
            issued: Mutex::default(),
            refused: AtomicUsize::new(0),
            serial: AtomicUsize::new(0),
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind token issuer");
        let state2 = state.clone();
        let acceptor = Acceptor::spawn("lab-token-issuer", listener, move |conn| {
            let (tls, state) = (tls.clone(), state2.clone());
            std::thread::spawn(move || {
                if let Err(e) = serve(conn, tls, &state) {
                    eprintln!("lab token issuer: {e}");
                }
            });
        });
        TokenIssuer { acceptor, state }
    }

    pub fn realm(&self) -> String {
        format!("https://{}/token", self.acceptor.addr())
    }

    pub fn issued(&self) -> Vec<Issued> {
        self.state
            .issued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn refused(&self) -> usize {
        self.state.refused.load(Ordering::SeqCst)
    }
}

fn serve(
    tcp: TcpStream,
    tls: Arc<rustls::ServerConfig>,
    state: &State,
) -> Result<(), Box<dyn std::error::Error>> {
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
    let conn = rustls::ServerConnection::new(tls)?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut chunk)?;
        if n == 0 || buf.len() > 64 * 1024 {
            return Ok(());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let (status, body, extra) = respond(&head, state);
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let resp = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n{extra}\r\n{body}",
        body.len()
    );
    s.write_all(resp.as_bytes())?;
    s.conn.send_close_notify();
    s.flush()?;
    Ok(())
}

fn respond(head: &str, state: &State) -> (u16, String, String) {
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let (method, target) = (
        request_line.next().unwrap_or_default(),
        request_line.next().unwrap_or_default(),
    );
    let Ok(url) = url::Url::parse(&format!("https://lab{target}")) else {
        return (400, r#"{"error":"bad request"}"#.into(), String::new());
    };
    if method != "GET" || url.path() != "/token" {
        return (404, r#"{"error":"not found"}"#.into(), String::new());
    }
    let basic = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
        .and_then(|(_, v)| v.trim().strip_prefix("Basic ").map(str::to_owned))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let ok = basic
        .as_deref()
        .and_then(|b| b.split_once(':'))
        .is_some_and(|(u, p)| u == state.user && p == state.password);
    if !ok {
        state.refused.fetch_add(1, Ordering::SeqCst);
        let msg = if basic.is_none() {
            "anonymous access is not allowed"
        } else {
            "wrong user name or password"
        };
        return (
            401,
            format!(r#"{{"errors":[{{"code":"UNAUTHORIZED","message":"{msg}"}}]}}"#),
            "WWW-Authenticate: Basic realm=\"signgate-lab\"\r\n".into(),
        );
    }
    let mut service = String::new();
    let mut scopes = Vec::new();
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "service" => service = v.into_owned(),
            "scope" => scopes.extend(v.split(' ').filter(|s| !s.is_empty()).map(str::to_owned)),
            _ => {}
        }
    }
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|s| {
            // type:name:actions, where name may itself hold ':' (notary's GUN has host:port)
            let (typ, rest) = s.split_once(':')?;
            let (name, actions) = rest.rsplit_once(':')?;
            Some(serde_json::json!({
                "type": typ,
                "name": name,
                "actions": actions.split(',').filter(|a| !a.is_empty()).collect::<Vec<_>>(),
            }))
        })
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let serial = state.serial.fetch_add(1, Ordering::SeqCst);
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": state.user,
        "aud": service,
        "exp": now + TOKEN_TTL_SECS,
        "nbf": now - 10,
        "iat": now,
        "jti": format!("lab-{now}-{serial}"),
        "access": access,
    });
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [state.x5c]});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig: p256::ecdsa::Signature = state.key.sign(input.as_bytes());
    let jwt = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()));
    state
        .issued
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Issued {
            service,
            scopes,
            user: state.user.clone(),
        });
    let issued_at = time::OffsetDateTime::from_unix_timestamp(now as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let body = serde_json::json!({
        "token": jwt,
        "access_token": jwt,
        "expires_in": TOKEN_TTL_SECS,
        "issued_at": issued_at,
    });
    (200, body.to_string(), String::new())
}
