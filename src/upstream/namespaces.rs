//! Namespace labels for policies with `namespaces.matchLabels`: AdmissionReviews do not carry
//! them, so they are read from the Kubernetes API (`GET /api/v1/namespaces/<name>`) with the pod's
//! service account, and cached briefly.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

type Labels = BTreeMap<String, String>;

/// Where labels come from.
pub enum NamespaceLabels {
    /// No API access (the CLI, or a configuration without label selectors): no labels. A policy
    /// that needs labels then does not match, so the next policy or `defaultAction` applies.
    None,
    /// The in-cluster API server.
    Api(Arc<ApiNamespaces>),
}

impl NamespaceLabels {
    /// The labels of `namespace`, or why they could not be read.
    pub async fn labels(&self, namespace: &str) -> Result<BTreeMap<String, String>, String> {
        match self {
            NamespaceLabels::None => Ok(BTreeMap::new()),
            NamespaceLabels::Api(api) => api.labels(namespace).await,
        }
    }
}

/// Reads namespaces with the service account token, caching each for `ttl`.
pub struct ApiNamespaces {
    http: reqwest::Client,
    base: String,
    token_path: std::path::PathBuf,
    /// By namespace name, bounded in count, each kept for `ttl`.
    cache: moka::sync::Cache<String, Labels>,
}

/// Namespaces whose labels are kept.
const MAX_NAMESPACES: u64 = 10_000;

const SERVICE_ACCOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

impl ApiNamespaces {
    /// The in-cluster configuration (`KUBERNETES_SERVICE_HOST`/`_PORT`, the mounted CA and
    /// token), or `None` outside a cluster.
    pub fn in_cluster(ttl: Duration) -> Option<Result<ApiNamespaces, String>> {
        let host = std::env::var("KUBERNETES_SERVICE_HOST").ok()?;
        let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
        let ca = match std::fs::read(format!("{SERVICE_ACCOUNT}/ca.crt")) {
            Ok(ca) => ca,
            Err(e) => return Some(Err(format!("cannot read the service account CA: {e}"))),
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        Some(ApiNamespaces::new(
            &format!("https://{host}:{port}"),
            &ca,
            format!("{SERVICE_ACCOUNT}/token").into(),
            ttl,
        ))
    }

    /// An API server at `base` (`https://host:port`) trusted through `ca_pem`, read with the token
    /// in `token_path` (re-read on each cache miss).
    pub fn new(
        base: &str,
        ca_pem: &[u8],
        token_path: std::path::PathBuf,
        ttl: Duration,
    ) -> Result<ApiNamespaces, String> {
        super::http::http_client(Some(ca_pem), Duration::from_secs(2)).map(|http| ApiNamespaces {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token_path,
            cache: moka::sync::Cache::builder()
                .max_capacity(MAX_NAMESPACES)
                .time_to_live(ttl)
                .build(),
        })
    }

    async fn labels(&self, namespace: &str) -> Result<BTreeMap<String, String>, String> {
        if let Some(labels) = self.cache.get(namespace) {
            return Ok(labels);
        }
        // The token is re-read on each miss: kubelet rotates projected tokens.
        let token = std::fs::read_to_string(&self.token_path)
            .map_err(|e| format!("cannot read the service account token: {e}"))?;
        let url = format!("{}/api/v1/namespaces/{namespace}", self.base);
        let resp = self
            .http
            .get(&url)
            .bearer_auth(token.trim())
            .send()
            .await
            .map_err(|e| format!("cannot read namespace {namespace:?}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!(
                "cannot read namespace {namespace:?}: the API server answered HTTP {}",
                resp.status().as_u16()
            ));
        }
        let body = super::http::read_capped(resp, &url, 1024 * 1024)
            .await
            .map_err(|e| e.to_string())?;
        let doc: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| format!("namespace {namespace:?}: invalid JSON: {e}"))?;
        let labels: BTreeMap<String, String> = doc
            .pointer("/metadata/labels")
            .and_then(|l| l.as_object())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        self.cache.insert(namespace.to_owned(), labels.clone());
        Ok(labels)
    }
}
