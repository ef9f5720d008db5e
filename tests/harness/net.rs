//! HTTPS from the (blocking) harness: reqwest on a private current-thread runtime in a scoped
//! thread, so it also works when the caller is itself inside a tokio runtime. Trusts only the lab
//! CA, ignores proxy variables, and answers registry-style Bearer challenges with the lab's
//! credentials (when the lab has them), caching one token per host like docker does.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;

/// Runs an async block to completion on its own runtime in its own thread.
pub fn block_on<T: Send, Fut: Future<Output = T>>(make: impl FnOnce() -> Fut + Send) -> T {
    std::thread::scope(|s| {
        let h = s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime for the harness")
                .block_on(make())
        });
        match h.join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        }
    })
}

/// Polls `GET url` with `client` every `every` until it answers 2xx; panics with `failure()` once
/// `limit` has passed. For servers starting up (the lab's notary-server, `signgate serve`).
pub fn wait_until_ok(
    client: &reqwest::Client,
    url: &str,
    limit: Duration,
    every: Duration,
    failure: impl Fn() -> String,
) {
    let started = Instant::now();
    loop {
        let ok = block_on(|| async {
            client
                .get(url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        });
        if ok {
            return;
        }
        assert!(started.elapsed() < limit, "{}", failure());
        std::thread::sleep(every);
    }
}

/// `body` POSTed to `url` the way kube-apiserver posts an AdmissionReview (JSON, accepting JSON):
/// the answer's status, HTTP version and text.
pub async fn post_review(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
) -> (u16, reqwest::Version, String) {
    let r = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, */*")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = r.status().as_u16();
    let version = r.version();
    let text = r
        .text()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: the answer: {e}"));
    (status, version, text)
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `Bearer realm="…",service="…",scope="…"` -> {realm, service, scope}; None if not Bearer.
pub fn parse_bearer_challenge(h: &str) -> Option<BTreeMap<String, String>> {
    let rest = h.trim().strip_prefix("Bearer ")?;
    let mut out = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => val.extend(chars.next()),
                    '"' => break,
                    c => val.push(c),
                }
            }
        } else {
            val = chars.by_ref().take_while(|c| *c != ',').collect();
        }
        out.insert(key.trim().to_ascii_lowercase(), val);
    }
    Some(out)
}

#[derive(Clone)]
pub struct Net {
    pub ca_pem: Arc<Vec<u8>>,
    pub creds: Option<(String, String)>,
}

impl Net {
    /// A reqwest client that trusts exactly the lab CA and never uses a proxy.
    pub fn client(&self) -> reqwest::Client {
        let cert = reqwest::Certificate::from_pem(&self.ca_pem).expect("lab CA PEM");
        reqwest::Client::builder()
            .tls_certs_only([cert])
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client")
    }

    pub fn session(&self) -> Session {
        Session {
            client: self.client(),
            creds: self.creds.clone(),
            tokens: HashMap::new(),
        }
    }

    /// One blocking request (with the Bearer dance when challenged).
    pub fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        block_on(|| async move { self.session().send(method, url, headers, body).await })
    }
}

pub struct Session {
    client: reqwest::Client,
    creds: Option<(String, String)>,
    /// host:port -> last token that worked there
    tokens: HashMap<String, String>,
}

impl Session {
    pub async fn send(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        let host = url::Url::parse(url)
            .ok()
            .map(|u| format!("{}:{}", u.host_str().unwrap_or(""), u.port().unwrap_or(443)))
            .unwrap_or_default();
        let cached = self.tokens.get(&host).cloned();
        let resp = self
            .send_once(method, url, headers, body, cached.as_deref())
            .await;
        if resp.status != 401 || self.creds.is_none() {
            return resp;
        }
        let Some(ch) = resp
            .header("www-authenticate")
            .and_then(parse_bearer_challenge)
        else {
            return resp;
        };
        let token = self.fetch_token(&ch).await;
        let resp = self
            .send_once(method, url, headers, body, Some(&token))
            .await;
        if resp.status != 401 {
            self.tokens.insert(host, token);
        }
        resp
    }

    async fn send_once(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        token: Option<&str>,
    ) -> Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("HTTP method");
        let mut req = self.client.request(m, url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.body(b.to_vec());
        }
        let r = match req.send().await {
            Ok(r) => r,
            Err(e) => panic!("{method} {url}: {e:?}"),
        };
        let status = r.status().as_u16();
        let headers = r
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = match r.bytes().await {
            Ok(b) => b.to_vec(),
            Err(e) => panic!("{method} {url}: reading the body: {e:?}"),
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    /// GET realm?service=…&scope=…&account=… with HTTP Basic; panics unless a token comes back.
    pub async fn fetch_token(&self, ch: &BTreeMap<String, String>) -> String {
        let realm = ch.get("realm").expect("challenge without realm");
        let mut u = url::Url::parse(realm).expect("realm URL");
        {
            let mut q = u.query_pairs_mut();
            if let Some(s) = ch.get("service") {
                q.append_pair("service", s);
            }
            if let Some(s) = ch.get("scope") {
                for one in s.split(' ') {
                    q.append_pair("scope", one);
                }
            }
            if let Some((user, _)) = &self.creds {
                q.append_pair("account", user);
            }
        }
        let mut req = self.client.get(u.as_str());
        if let Some((user, pass)) = &self.creds {
            req = req.header(
                "Authorization",
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
                ),
            );
        }
        let r = match req.send().await {
            Ok(r) => r,
            Err(e) => panic!("token request {u}: {e:?}"),
        };
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert!(status.is_success(), "token request {u} -> {status}: {text}");
        let v: serde_json::Value = serde_json::from_str(&text).expect("token response JSON");
        v.get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .expect("token in the token response")
            .to_owned()
    }
}
