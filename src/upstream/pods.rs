//! The running Pods and the namespaces' labels, listed from the Kubernetes API page by page (RBAC:
//! `list` on pods and namespaces), for the audit of what is running now ([`crate::audit`]).

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams};

use crate::audit::{self, RunningImage};

/// Objects asked for per list page.
const PAGE: u32 = 500;

/// What runs in the cluster.
#[derive(Debug, Default)]
pub struct Running {
    /// Every container of every listed Pod.
    pub images: Vec<RunningImage>,
    /// The labels of every namespace; empty when they could not be listed (then `labels_error`).
    pub labels: HashMap<String, BTreeMap<String, String>>,
    /// Why the namespaces could not be listed: images whose policy depends on labels fail.
    pub labels_error: Option<String>,
}

/// Lists the Pods of `namespace` (every namespace: `None`) and every namespace's labels.
pub async fn running(client: &kube::Client, namespace: Option<&str>) -> Result<Running, String> {
    let pods: Api<Pod> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let listed = pages(|p| {
        let pods = pods.clone();
        async move { pods.list(&p).await }
    })
    .await
    .map_err(|e| format!("cannot list Pods: {e}"))?;
    let mut out = Running::default();
    for pod in &listed {
        out.images.extend(audit::running_images(pod));
    }
    let namespaces = Api::<Namespace>::all(client.clone());
    let listed = pages(|p| {
        let namespaces = namespaces.clone();
        async move { namespaces.list_metadata(&p).await }
    })
    .await;
    match listed {
        Ok(namespaces) => {
            out.labels = namespaces
                .into_iter()
                .filter_map(|n| Some((n.metadata.name?, n.metadata.labels.unwrap_or_default())))
                .collect();
        }
        Err(e) => out.labels_error = Some(format!("cannot list namespaces: {e}")),
    }
    Ok(out)
}

/// Every object a list returns, page by page.
async fn pages<T, F, Fut>(list: F) -> Result<Vec<T>, kube::Error>
where
    T: Clone,
    F: Fn(ListParams) -> Fut,
    Fut: std::future::Future<Output = Result<kube::core::ObjectList<T>, kube::Error>>,
{
    let mut all = Vec::new();
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let page = list(params.clone()).await?;
        all.extend(page.items);
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(all),
        }
    }
}
