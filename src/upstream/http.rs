//! The one HTTPS client for upstream servers (registries, notary servers, the Kubernetes API):
//! system roots plus configured CA bundles, no redirects (one hop for blobs), a deadline per
//! request, bodies read with a cap, and the registry-style Bearer token flow (realm, service and
//! scope read from the challenge, as distribution's token authentication describes it).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};

use std::sync::Arc;

use super::lane::Lane;
use crate::metrics::{Metrics, Upstream, UpstreamStatus};
use crate::verdict::{Reason, TrustError};

/// Username and password for Basic auth at a token realm (or a server that asks for Basic).
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    /// The user name.
    pub username: String,
    /// The password, sent as Basic auth; never printed (`Debug` leaves it out).
    pub password: String,
}

impl std::fmt::Debug for BasicCredentials {
    // Never print the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A failure to fetch, before any verification.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// The server did not answer in time.
    #[error("{url}: no complete answer within the request deadline")]
    Timeout {
        /// The URL requested.
        url: String,
    },
    /// Connection, TLS or protocol failure.
    #[error("{url}: {detail}")]
    Transport {
        /// The URL requested.
        url: String,
        /// What failed, for people.
        detail: String,
    },
    /// An HTTP status other than 200 or 404.
    #[error("{url}: HTTP {status}{detail}")]
    Status {
        /// The URL requested.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// Text appended to the message as it is: `: ` and the server's body (at most 200
        /// characters), or why its redirect was refused; may be empty.
        detail: String,
    },
    /// The body is larger than allowed.
    #[error("{url}: body exceeds the {cap}-byte cap")]
    TooLarge {
        /// The URL requested.
        url: String,
        /// The cap, in bytes.
        cap: usize,
    },
    /// The server's token flow failed.
    #[error("{url}: authentication failed: {detail}")]
    Auth {
        /// The URL requested.
        url: String,
        /// What failed in the token flow, for people.
        detail: String,
    },
}

impl FetchError {
    /// The refusal for this failed fetch from `server` ("registry", "notary server"): a timeout,
    /// a body past its cap, or an upstream error, with this error kept as its cause.
    pub(crate) fn refusal(self, server: &str) -> TrustError {
        let reason = match &self {
            FetchError::Timeout { .. } => Reason::Timeout,
            FetchError::TooLarge { .. } => Reason::TooLarge,
            _ => Reason::UpstreamError,
        };
        TrustError::new(reason, None, format!("{server} {self}")).caused_by(self)
    }

    /// Network-level failures, where cached data may stand in.
    pub(crate) fn is_unreachable(&self) -> bool {
        matches!(
            self,
            FetchError::Timeout { .. } | FetchError::Transport { .. }
        ) || matches!(self, FetchError::Status { status, .. } if *status >= 500)
    }
}

#[derive(Debug, Clone)]
struct Token {
    value: String,
    expires: Instant,
}

/// Longest a token is reused, whatever lifetime its endpoint states.
pub(crate) const MAX_TOKEN_LIFE: Duration = Duration::from_secs(3600);
/// Token lifetime when the endpoint states none (docker's rule).
const DEFAULT_TOKEN_LIFE: u64 = 60;
/// Scopes whose tokens are kept per client: scopes name repositories, which image references
/// (chosen by whoever writes a Pod) pick.
const MAX_TOKENS: u64 = 1024;

/// Tokens are kept per server and scope: a client may serve several registries, and a token is
/// only ever sent to the server that asked for it.
fn token_key(url: &str, scope: &str) -> String {
    let authority = url
        .strip_prefix("https://")
        .and_then(|r| r.split('/').next())
        .unwrap_or(url);
    format!("{authority} {scope}")
}

/// How long to reuse a token whose endpoint said `expires_in`: renewed 5 s early, at least 1 s,
/// at most [`MAX_TOKEN_LIFE`]. Anything but a non-negative integer means the default.
pub(crate) fn token_life(expires_in: Option<&serde_json::Value>) -> Duration {
    let stated = expires_in
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(DEFAULT_TOKEN_LIFE);
    Duration::from_secs(stated.saturating_sub(5).clamp(1, MAX_TOKEN_LIFE.as_secs()))
}

/// Builds a reqwest client that trusts the system roots plus `ca_pem`, with HTTP/1.1 and h2,
/// HTTPS only, and no redirects followed by the client (notary documents and manifests are refused
/// when redirected; [`AuthClient::get_blob`] follows one hop itself).
pub(crate) fn http_client(
    ca_pem: Option<&[u8]>,
    timeout: Duration,
) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("signgate/", env!("CARGO_PKG_VERSION")))
        .tls_backend_rustls()
        .https_only(true);
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| format!("invalid CA bundle: {e}"))?;
        if certs.is_empty() {
            return Err("the CA bundle holds no certificate".into());
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build()
        .map_err(|e| format!("cannot build HTTP client: {e}"))
}

/// An HTTPS client for registry-style servers: a GET that answers `Bearer` challenges with a
/// token from the challenge's realm (cached per scope) and `Basic` challenges with the
/// credentials, follows no redirect (but one for blobs, [`AuthClient::get_blob`]), and caps the
/// body.
#[derive(Debug, Clone)]
pub(crate) struct AuthClient {
    http: reqwest::Client,
    upstream: Upstream,
    metrics: Arc<Metrics>,
    credentials: Option<BasicCredentials>,
    /// Bearer tokens by server and scope, bounded in count; none outlives [`MAX_TOKEN_LIFE`].
    tokens: moka::sync::Cache<String, Token>,
    /// Where the exchanges run.
    lane: Lane,
}

/// A successful GET: status 200 with its body and headers.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub body: Vec<u8>,
    pub headers: reqwest::header::HeaderMap,
}

impl AuthClient {
    /// A client for `upstream` servers trusting `ca_pem` too, recording each request in `metrics`.
    pub fn new(
        upstream: Upstream,
        ca_pem: Option<&[u8]>,
        credentials: Option<BasicCredentials>,
        timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<Self, String> {
        Ok(AuthClient {
            http: http_client(ca_pem, timeout)?,
            upstream,
            metrics,
            credentials,
            tokens: moka::sync::Cache::builder()
                .max_capacity(MAX_TOKENS)
                .time_to_live(MAX_TOKEN_LIFE)
                .build(),
            lane: Lane::inline(),
        })
    }

    /// Where its exchanges run.
    pub(crate) fn lane(&self) -> &Lane {
        &self.lane
    }

    /// The same client, its exchanges run on `lane`.
    pub fn on(mut self, lane: Lane) -> Self {
        self.lane = lane;
        self
    }

    /// The metrics this client records into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// GETs `url` for `scope` (`repository:<name>:pull`). `Ok(None)` is a 404. A redirect is an
    /// error.
    pub async fn get(
        &self,
        url: &str,
        scope: &str,
        accept: Option<&str>,
        cap: usize,
    ) -> Result<Option<Fetched>, FetchError> {
        self.get_with(url, scope, accept, cap, false).await
    }

    /// GETs a blob: as [`AuthClient::get`], but one redirect is followed, as registries send blob
    /// downloads to object storage (Docker Hub, ECR, GCR, Harbor on S3). The hop is HTTPS only,
    /// carries no credentials (a presigned URL is its own authorisation), must answer 200 itself,
    /// and is capped and timed like the first request; the caller checks the bytes against the
    /// blob's digest whatever served them. Errors name the redirect target without its query
    /// (presigned URLs carry signatures there).
    pub async fn get_blob(
        &self,
        url: &str,
        scope: &str,
        cap: usize,
    ) -> Result<Option<Fetched>, FetchError> {
        self.get_with(url, scope, None, cap, true).await
    }

    /// One exchange, on the client's lane ([`Lane::run`]): cancelled with the caller.
    async fn get_with(
        &self,
        url: &str,
        scope: &str,
        accept: Option<&str>,
        cap: usize,
        follow_redirect: bool,
    ) -> Result<Option<Fetched>, FetchError> {
        let this = self.clone();
        let (owned_url, scope, accept) =
            (url.to_owned(), scope.to_owned(), accept.map(str::to_owned));
        let work = async move {
            this.exchange(&owned_url, &scope, accept.as_deref(), cap, follow_redirect)
                .await
        };
        self.lane.run(work).await.unwrap_or_else(|e| {
            Err(FetchError::Transport {
                url: url.to_owned(),
                detail: e.to_string(),
            })
        })
    }

    async fn exchange(
        &self,
        url: &str,
        scope: &str,
        accept: Option<&str>,
        cap: usize,
        follow_redirect: bool,
    ) -> Result<Option<Fetched>, FetchError> {
        let mut resp = self.send(url, scope, accept, false).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let challenge = resp
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let basic = challenge
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("basic");
            if basic {
                if self.credentials.is_none() {
                    return Err(FetchError::Auth {
                        url: url.to_owned(),
                        detail: "the server asks for credentials and none are configured".into(),
                    });
                }
            } else {
                self.authenticate(url, scope, &challenge).await?;
            }
            resp = self.send(url, scope, accept, basic).await?;
        }
        match resp.status() {
            StatusCode::OK => {
                let headers = resp.headers().clone();
                let body = read_capped(resp, url, cap).await?;
                Ok(Some(Fetched { body, headers }))
            }
            StatusCode::NOT_FOUND => Ok(None),
            status if follow_redirect && status.is_redirection() => {
                let target = redirect_target(url, &resp)?;
                self.get_redirected(url, &target, cap).await.map(Some)
            }
            status => {
                let body = read_capped(resp, url, 4096).await.unwrap_or_default();
                let detail = String::from_utf8_lossy(&body)
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>();
                Err(FetchError::Status {
                    url: url.to_owned(),
                    status: status.as_u16(),
                    detail: if detail.is_empty() {
                        String::new()
                    } else {
                        format!(": {detail}")
                    },
                })
            }
        }
    }

    /// The one hop of [`AuthClient::get_blob`]: no credentials, no further redirect, 200 only.
    /// Recorded in metrics under the registry's host (`from`), so the label stays bounded.
    async fn get_redirected(
        &self,
        from: &str,
        target: &reqwest::Url,
        cap: usize,
    ) -> Result<Fetched, FetchError> {
        let shown = without_query(target);
        let started = Instant::now();
        let result = self
            .http
            .get(target.clone())
            .send()
            .await
            .map_err(|e| transport(&shown, &e));
        self.record(from, &result, started);
        let resp = result?;
        if resp.status() != StatusCode::OK {
            return Err(FetchError::Status {
                url: shown,
                status: resp.status().as_u16(),
                detail: format!(" (the redirect of {from}; one redirect is followed, to a 200)"),
            });
        }
        let headers = resp.headers().clone();
        let body = read_capped(resp, &shown, cap).await?;
        Ok(Fetched { body, headers })
    }

    async fn send(
        &self,
        url: &str,
        scope: &str,
        accept: Option<&str>,
        basic: bool,
    ) -> Result<reqwest::Response, FetchError> {
        let started = Instant::now();
        let result = self.send_inner(url, scope, accept, basic).await;
        self.record(url, &result, started);
        result
    }

    /// Records one request in metrics under the host of `url`.
    fn record(&self, url: &str, result: &Result<reqwest::Response, FetchError>, started: Instant) {
        let status = match result {
            Ok(r) => UpstreamStatus::Http(r.status().as_u16()),
            Err(FetchError::Timeout { .. }) => UpstreamStatus::Timeout,
            Err(_) => UpstreamStatus::Error,
        };
        self.metrics.upstream(
            self.upstream,
            host_of(url),
            status,
            started.elapsed().as_secs_f64(),
        );
    }

    async fn send_inner(
        &self,
        url: &str,
        scope: &str,
        accept: Option<&str>,
        basic: bool,
    ) -> Result<reqwest::Response, FetchError> {
        let mut req = self.http.get(url);
        if let Some(a) = accept {
            req = req.header(reqwest::header::ACCEPT, a);
        }
        if basic {
            if let Some(c) = &self.credentials {
                req = req.basic_auth(&c.username, Some(&c.password));
            }
        } else {
            let token = self
                .tokens
                .get(&token_key(url, scope))
                .filter(|t| t.expires > Instant::now())
                .map(|t| t.value);
            if let Some(t) = token {
                req = req.header(AUTHORIZATION, format!("Bearer {t}"));
            }
        }
        req.send().await.map_err(|e| transport(url, &e))
    }

    /// Answers a `Bearer realm=…,service=…,scope=…` challenge with a token from the realm.
    async fn authenticate(
        &self,
        url: &str,
        scope: &str,
        challenge: &str,
    ) -> Result<(), FetchError> {
        let auth_err = |detail: String| FetchError::Auth {
            url: url.to_owned(),
            detail,
        };
        let params = parse_bearer_challenge(challenge)
            .ok_or_else(|| auth_err(format!("unsupported challenge {challenge:?}")))?;
        let realm = params
            .get("realm")
            .ok_or_else(|| auth_err("the challenge names no realm".into()))?;
        let mut req = self.http.get(realm.as_str());
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(service) = params.get("service") {
            query.push(("service", service));
        }
        let scope_param = params.get("scope").map(String::as_str).unwrap_or(scope);
        query.push(("scope", scope_param));
        if let Some(c) = &self.credentials {
            query.push(("account", &c.username));
            req = req.basic_auth(&c.username, Some(&c.password));
        }
        let resp = req
            .query(&query)
            .send()
            .await
            .map_err(|e| transport(realm, &e))?;
        if !resp.status().is_success() {
            return Err(auth_err(format!(
                "token endpoint {realm} answered HTTP {}",
                resp.status().as_u16()
            )));
        }
        let body = read_capped(resp, realm, 64 * 1024).await?;
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<serde_json::Value>,
        }
        let t: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| auth_err(format!("token endpoint {realm} sent invalid JSON: {e}")))?;
        let value = t
            .token
            .or(t.access_token)
            .ok_or_else(|| auth_err(format!("token endpoint {realm} sent no token")))?;
        // The lifetime is the server's number: clamped, and added without overflow.
        let now = Instant::now();
        let expires = now
            .checked_add(token_life(t.expires_in.as_ref()))
            .unwrap_or(now);
        self.tokens
            .insert(token_key(url, scope), Token { value, expires });
        Ok(())
    }
}

/// The host of an `https://` URL, for metrics labels.
fn host_of(url: &str) -> &str {
    url.strip_prefix("https://")
        .and_then(|r| r.split('/').next())
        .unwrap_or("unknown")
}

/// `url` without its query and fragment, for messages.
fn without_query(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// Where a redirect answer to `url` points: its `Location`, relative or absolute, HTTPS only.
fn redirect_target(url: &str, resp: &reqwest::Response) -> Result<reqwest::Url, FetchError> {
    let refused = |detail: String| FetchError::Status {
        url: url.to_owned(),
        status: resp.status().as_u16(),
        detail,
    };
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| refused(": a redirect without a usable Location".into()))?;
    let target = reqwest::Url::parse(url)
        .and_then(|base| base.join(location))
        .map_err(|e| refused(format!(": a redirect to an invalid location: {e}")))?;
    if target.scheme() != "https" {
        return Err(refused(format!(
            ": a redirect to {} refused: HTTPS only",
            without_query(&target)
        )));
    }
    Ok(target)
}

fn transport(url: &str, e: &reqwest::Error) -> FetchError {
    if e.is_timeout() {
        FetchError::Timeout {
            url: url.to_owned(),
        }
    } else {
        let mut detail = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            src = s.source();
        }
        FetchError::Transport {
            url: url.to_owned(),
            detail,
        }
    }
}

/// Reads a body, refusing more than `cap` bytes (by Content-Length up front, and while reading).
pub(crate) async fn read_capped(
    mut resp: reqwest::Response,
    url: &str,
    cap: usize,
) -> Result<Vec<u8>, FetchError> {
    let too_large = || FetchError::TooLarge {
        url: url.to_owned(),
        cap,
    };
    if resp
        .content_length()
        .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > cap))
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| {
        if e.is_timeout() {
            FetchError::Timeout {
                url: url.to_owned(),
            }
        } else {
            FetchError::Transport {
                url: url.to_owned(),
                detail: e.to_string(),
            }
        }
    })? {
        if body.len() + chunk.len() > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Parses `Bearer realm="…",service="…",scope="…"` into its parameters.
pub fn parse_bearer_challenge(header: &str) -> Option<HashMap<String, String>> {
    let rest = header
        .trim()
        .strip_prefix("Bearer ")
        .or_else(|| header.trim().strip_prefix("bearer "))?;
    let mut out = HashMap::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let (key, after) = s.split_once('=')?;
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (q.get(..end)?.to_owned(), q.get(end + 1..)?)
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after.get(..end)?.trim().to_owned(), after.get(end..)?)
        };
        out.insert(key, value);
        s = next.trim_start().trim_start_matches(',').trim_start();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registry_style_challenges() {
        let p = parse_bearer_challenge(
            r#"Bearer realm="https://127.0.0.1:5001/token",service="notary",scope="repository:127.0.0.1:5000/ml/x:pull""#,
        )
        .unwrap();
        assert_eq!(p["realm"], "https://127.0.0.1:5001/token");
        assert_eq!(p["service"], "notary");
        assert_eq!(p["scope"], "repository:127.0.0.1:5000/ml/x:pull");
        assert_eq!(parse_bearer_challenge("Basic realm=\"x\""), None);
        assert!(parse_bearer_challenge(r#"Bearer realm="unterminated"#).is_none());
    }

    #[test]
    fn token_lifetimes_are_clamped() {
        use serde_json::json;
        let secs = |v: Option<serde_json::Value>| token_life(v.as_ref()).as_secs();
        assert_eq!(secs(None), 55);
        assert_eq!(secs(Some(json!(300))), 295);
        assert_eq!(secs(Some(json!(u64::MAX))), MAX_TOKEN_LIFE.as_secs());
        assert_eq!(secs(Some(json!(0))), 1);
        assert_eq!(secs(Some(json!(-5))), 55);
        assert_eq!(secs(Some(json!(1e300))), 55);
        assert_eq!(secs(Some(json!("3600"))), 55);
    }

    #[test]
    fn a_fetch_refusal_keeps_the_fetch_error_as_its_cause() {
        let e = FetchError::Timeout {
            url: "https://r.example/v2/x".into(),
        }
        .refusal("registry");
        assert_eq!(e.reason(), Reason::Timeout);
        let said = "https://r.example/v2/x: no complete answer within the request deadline";
        assert_eq!(e.to_string(), format!("registry {said}"));
        let cause = std::error::Error::source(&e).expect("the fetch error");
        assert_eq!(cause.to_string(), said);
        let too_large = FetchError::TooLarge {
            url: "u".into(),
            cap: 1,
        };
        assert_eq!(
            too_large.refusal("notary server").reason(),
            Reason::TooLarge
        );
    }

    #[test]
    fn credentials_never_print_the_password() {
        let c = BasicCredentials {
            username: "ci".into(),
            password: "s3cret".into(),
        };
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
