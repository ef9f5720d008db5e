//! A fake Kubernetes API server for namespaces and Pods, since no kube-apiserver can run on these
//! machines. Pods: `GET /api/v1/pods` and `/api/v1/namespaces/<ns>/pods` (lists, paged by `limit`
//! and `continue`, filtered by `status.phase!=…` field selectors). PolicyReports: server-side apply (`PATCH`), or 404 without the CRD.
//! Namespaces:
//! `GET /api/v1/namespaces` (a list with `resourceVersion`) and `?watch=true` (a chunked stream of
//! ADDED / MODIFIED / DELETED events from a resource version), with the behaviour signgate's
//! watch must survive: history compacted so a resumed watch gets `410 Gone` (forcing a re-list),
//! watches dropped, the server down (503) or slow. Metadata-only requests (`Accept: ...;as=
//! PartialObjectMetadataList`) are answered as `meta.k8s.io/v1` partial objects, as the real one
//! does; the bearer token is checked.
//!
//! One axum `Router`, two transports: in process as the `tower` service of
//! `kube::Client::new`, or over loopback HTTPS ([`FakeApi::serve_tls`], the certificate of
//! `tests/faults`) for `signgate serve` with a kubeconfig.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

pub const TOKEN: &str = "fake-api-token";

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub watch: bool,
    pub resource_version: Option<String>,
    pub accept: String,
    pub status: u16,
}

#[derive(Default)]
struct Inner {
    /// The last resource version handed out.
    rv: u64,
    /// name -> (labels, resource version)
    namespaces: BTreeMap<String, (BTreeMap<String, String>, u64)>,
    /// Events after `compacted`: (rv, type, name, labels).
    history: Vec<(u64, &'static str, String, BTreeMap<String, String>)>,
    /// A watch from before this resource version gets 410 Gone.
    compacted: u64,
    down: bool,
    delay: Duration,
    seen: Vec<Seen>,
    /// (namespace, name) -> the Pod as the API server returns it.
    pods: BTreeMap<(String, String), Value>,
    /// Pod list requests answered.
    pod_lists: usize,
    /// (namespace, name) -> the PolicyReport last applied, with its field manager.
    reports: BTreeMap<(String, String), (Value, String)>,
    /// The PolicyReport CRD is not installed: its API answers 404.
    no_reports_crd: bool,
}

struct Shared {
    inner: Mutex<Inner>,
    /// Wakes watches: a new event, or a drop.
    events: tokio::sync::broadcast::Sender<()>,
    /// Bumped to end every open watch.
    drops: tokio::sync::watch::Sender<u64>,
}

#[derive(Clone)]
pub struct FakeApi {
    shared: Arc<Shared>,
}

impl Default for FakeApi {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeApi {
    pub fn new() -> FakeApi {
        FakeApi {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    rv: 100,
                    ..Inner::default()
                }),
                events: tokio::sync::broadcast::channel(1024).0,
                drops: tokio::sync::watch::Sender::new(0),
            }),
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/v1/namespaces", get(namespaces))
            .route("/api/v1/pods", get(all_pods))
            .route("/api/v1/namespaces/{namespace}/pods", get(namespace_pods))
            .route(
                "/apis/wgpolicyk8s.io/v1alpha2/namespaces/{namespace}/policyreports/{name}",
                axum::routing::patch(apply_report),
            )
            .with_state(Arc::clone(&self.shared))
    }

    /// A kube client over the router, in process, with the fake's token (as a kubeconfig gives).
    pub fn client(&self) -> kube::Client {
        use tower::ServiceExt as _;
        let with_token =
            self.router()
                .map_request(|mut req: axum::http::Request<kube::client::Body>| {
                    req.headers_mut().insert(
                        "authorization",
                        axum::http::HeaderValue::from_static("Bearer fake-api-token"),
                    );
                    req
                });
        kube::Client::new(with_token, "default")
    }

    /// Creates or relabels `name` (ADDED or MODIFIED).
    pub fn put(&self, name: &str, labels: &[(&str, &str)]) {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        {
            let mut g = self.shared.inner.lock().unwrap();
            g.rv += 1;
            let rv = g.rv;
            let kind = if g.namespaces.contains_key(name) {
                "MODIFIED"
            } else {
                "ADDED"
            };
            g.namespaces.insert(name.to_owned(), (labels.clone(), rv));
            g.history.push((rv, kind, name.to_owned(), labels));
        }
        let _ = self.shared.events.send(());
    }

    /// Creates or replaces a Pod (`metadata.namespace` and `metadata.name` say which); `apiVersion`
    /// and `kind` are filled in.
    pub fn put_pod(&self, mut pod: Value) {
        pod["apiVersion"] = json!("v1");
        pod["kind"] = json!("Pod");
        let key = (
            pod["metadata"]["namespace"].as_str().unwrap().to_owned(),
            pod["metadata"]["name"].as_str().unwrap().to_owned(),
        );
        self.shared.inner.lock().unwrap().pods.insert(key, pod);
    }

    /// The PolicyReport `name` in `namespace` as last applied, with its field manager.
    pub fn report(&self, namespace: &str, name: &str) -> Option<(Value, String)> {
        let g = self.shared.inner.lock().unwrap();
        g.reports
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Installs or removes the PolicyReport CRD (absent: its API answers 404).
    pub fn set_reports_crd(&self, installed: bool) {
        self.shared.inner.lock().unwrap().no_reports_crd = !installed;
    }

    /// Deletes a Pod.
    pub fn delete_pod(&self, namespace: &str, name: &str) {
        let key = (namespace.to_owned(), name.to_owned());
        self.shared.inner.lock().unwrap().pods.remove(&key);
    }

    /// Pod list pages answered so far.
    pub fn pod_lists(&self) -> usize {
        self.shared.inner.lock().unwrap().pod_lists
    }

    /// Deletes `name` (DELETED).
    pub fn delete(&self, name: &str) {
        {
            let mut g = self.shared.inner.lock().unwrap();
            if let Some((labels, _)) = g.namespaces.remove(name) {
                g.rv += 1;
                let rv = g.rv;
                g.history.push((rv, "DELETED", name.to_owned(), labels));
            }
        }
        let _ = self.shared.events.send(());
    }

    /// Forgets the event history, so a watch resumed from an older version gets 410 Gone.
    pub fn compact(&self) {
        let mut g = self.shared.inner.lock().unwrap();
        g.rv += 1;
        g.compacted = g.rv;
        g.history.clear();
    }

    /// Ends every open watch (the connection's stream ends, as on an API server restart).
    pub fn drop_watches(&self) {
        self.shared.drops.send_modify(|n| *n += 1);
        let _ = self.shared.events.send(());
    }

    /// While down, every request gets 503 and open watches end.
    pub fn set_down(&self, down: bool) {
        self.shared.inner.lock().unwrap().down = down;
        if down {
            self.drop_watches();
        }
    }

    /// Every response waits `delay` first.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.inner.lock().unwrap().delay = delay;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.inner.lock().unwrap().seen.clone()
    }

    pub fn lists(&self) -> usize {
        self.seen()
            .iter()
            .filter(|s| !s.watch && s.status == 200)
            .count()
    }

    /// Serves the router over HTTPS on 127.0.0.1:0 (HTTP/1.1) until the returned handle is
    /// aborted or dropped with its runtime; the certificate is `tests/faults`'s (trust
    /// `faults::ca_pem()`).
    pub async fn serve_tls(&self) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = self.router();
        let acceptor = super::faults::acceptor();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                while conns.try_join_next().is_some() {}
                let (acceptor, router) = (acceptor.clone(), router.clone());
                conns.spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        use tower::ServiceExt as _;
                        router.clone().oneshot(req)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        (addr, task)
    }
}

/// Writes `api-ca.crt` and `kubeconfig` for the fake at `addr` into `dir`; returns the
/// kubeconfig's path (for `KUBECONFIG`).
pub fn write_kubeconfig(addr: std::net::SocketAddr, dir: &std::path::Path) -> String {
    let ca = dir.join("api-ca.crt");
    std::fs::write(&ca, super::faults::ca_pem()).unwrap();
    let path = dir.join("kubeconfig");
    std::fs::write(&path, kubeconfig(addr, &ca)).unwrap();
    path.display().to_string()
}

/// A kubeconfig for the fake at `addr`, trusting `ca_file`, with the fake's token.
pub fn kubeconfig(addr: std::net::SocketAddr, ca_file: &std::path::Path) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority: {}\nusers:\n- name: signgate\n  user:\n    token: {TOKEN}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: signgate}}\ncurrent-context: fake\n",
        addr.port(),
        ca_file.display()
    )
}

fn partial(name: &str, labels: &BTreeMap<String, String>, rv: u64) -> Value {
    json!({
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": {
            "name": name,
            "uid": format!("uid-{name}"),
            "resourceVersion": rv.to_string(),
            "labels": labels,
            // What the real API server sends too, and signgate does not keep.
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "x".repeat(2048)},
            "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1"}],
        }
    })
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

async fn namespaces(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = params(query);
    let watch = q.get("watch").is_some_and(|w| w == "true" || w == "1");
    let accept = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let authorized = authorized(&headers);
    let (down, delay) = {
        let g = shared.inner.lock().unwrap();
        (g.down, g.delay)
    };
    tokio::time::sleep(delay).await;
    let code = if down {
        503
    } else if !authorized {
        401
    } else {
        200
    };
    shared.inner.lock().unwrap().seen.push(Seen {
        watch,
        resource_version: q.get("resourceVersion").cloned(),
        accept: accept.clone(),
        status: code,
    });
    if code == 503 {
        return json_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            status(503, "ServiceUnavailable", "the fake API server is down"),
        );
    }
    if code == 401 {
        return unauthorized();
    }
    if !watch {
        let g = shared.inner.lock().unwrap();
        let items: Vec<Value> = g
            .namespaces
            .iter()
            .map(|(n, (l, rv))| partial(n, l, *rv))
            .collect();
        return json_reply(
            StatusCode::OK,
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
                   "metadata": {"resourceVersion": g.rv.to_string()}, "items": items}),
        );
    }
    let from: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let mut wake = shared.events.subscribe();
    let mut drops = shared.drops.subscribe();
    drops.borrow_and_update();
    let line = |v: Value| Bytes::from(format!("{v}\n"));
    tokio::spawn(async move {
        let mut sent = from;
        {
            let g = shared.inner.lock().unwrap();
            if from < g.compacted {
                let gone = status(410, "Expired", "too old resource version");
                let _ = tx.try_send(line(json!({"type": "ERROR", "object": gone})));
                return;
            }
        }
        loop {
            let pending: Vec<Value> = {
                let g = shared.inner.lock().unwrap();
                g.history
                    .iter()
                    .filter(|(rv, ..)| *rv > sent)
                    .map(|(rv, kind, name, labels)| {
                        json!({"type": kind, "object": partial(name, labels, *rv)})
                    })
                    .collect()
            };
            for ev in pending {
                sent = ev["object"]["metadata"]["resourceVersion"]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(sent);
                if tx.send(line(ev)).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                _ = wake.recv() => {}
                _ = drops.changed() => return,
                () = tokio::time::sleep(Duration::from_secs(60)) => {}
            }
            if drops.has_changed().unwrap_or(true) {
                return;
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|o| o.map(Ok::<_, Infallible>))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

async fn all_pods(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    pods(&shared, None, query, &headers)
}

async fn namespace_pods(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path(namespace): axum::extract::Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    pods(&shared, Some(namespace), query, &headers)
}

/// A `PodList` page: at most `limit` Pods from the offset in `continue`, with the next offset.
fn pods(
    shared: &Shared,
    namespace: Option<String>,
    query: Option<String>,
    headers: &HeaderMap,
) -> Response {
    let q = params(query);
    if !authorized(headers) {
        return unauthorized();
    }
    let mut g = shared.inner.lock().unwrap();
    if g.down {
        return json_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            status(503, "ServiceUnavailable", "the fake API server is down"),
        );
    }
    g.pod_lists += 1;
    // `fieldSelector`: only `status.phase!=X` terms, as the audit sends them.
    let excluded: Vec<String> = q
        .get("fieldSelector")
        .map(|f| {
            f.split(',')
                .map(|t| t.strip_prefix("status.phase!=").expect(t).to_owned())
                .collect()
        })
        .unwrap_or_default();
    let all: Vec<&Value> = g
        .pods
        .iter()
        .filter(|((ns, _), _)| namespace.as_ref().is_none_or(|n| n == ns))
        .map(|(_, p)| p)
        .filter(|p| {
            let phase = p["status"]["phase"].as_str().unwrap_or_default();
            !excluded.iter().any(|x| x == phase)
        })
        .collect();
    let from: usize = q.get("continue").and_then(|c| c.parse().ok()).unwrap_or(0);
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(usize::MAX);
    let page: Vec<&Value> = all.iter().skip(from).take(limit).copied().collect();
    let next = from + page.len();
    let mut metadata = json!({"resourceVersion": g.rv.to_string()});
    if next < all.len() {
        metadata["continue"] = json!(next.to_string());
    }
    json_reply(
        StatusCode::OK,
        json!({"apiVersion": "v1", "kind": "PodList", "metadata": metadata, "items": page}),
    )
}

/// A server-side apply of a PolicyReport (`PATCH`, `application/apply-patch+yaml`, here JSON,
/// with `fieldManager`): stored as sent; 404 while the CRD is not installed.
async fn apply_report(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path((namespace, name)): axum::extract::Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    let mut g = shared.inner.lock().unwrap();
    if g.no_reports_crd {
        return json_reply(
            StatusCode::NOT_FOUND,
            status(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ),
        );
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type != "application/apply-patch+yaml" {
        return json_reply(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            status(415, "UnsupportedMediaType", content_type),
        );
    }
    let Ok(report) = serde_json::from_slice::<Value>(&body) else {
        return json_reply(
            StatusCode::BAD_REQUEST,
            status(400, "BadRequest", "not JSON"),
        );
    };
    let manager = params(query).remove("fieldManager").unwrap_or_default();
    g.reports
        .insert((namespace, name), (report.clone(), manager));
    json_reply(StatusCode::OK, report)
}

/// The answer to a request without the fake's token.
fn unauthorized() -> Response {
    json_reply(
        StatusCode::UNAUTHORIZED,
        status(401, "Unauthorized", "Unauthorized"),
    )
}

/// A request's query parameters.
fn params(query: Option<String>) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// Whether the request carries the fake's bearer token.
fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"))
}

fn json_reply(code: StatusCode, v: Value) -> Response {
    (code, [("content-type", "application/json")], v.to_string()).into_response()
}
