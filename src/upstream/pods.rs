//! The running Pods and the namespaces' labels, listed from the Kubernetes API page by page (RBAC:
//! `list` on pods and namespaces), for the audit of what is running now ([`crate::audit`]), and
//! the audit's PolicyReports written back (RBAC: `patch` and `create` on
//! `policyreports.wgpolicyk8s.io`).

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams};

use crate::audit::{self, RunningImage};

/// Objects asked for per list page.
const PAGE: u32 = 500;

/// Pods that finished (a completed Job's, an evicted one) run nothing: the API server leaves them
/// out.
const NOT_FINISHED: &str = "status.phase!=Succeeded,status.phase!=Failed";

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
    // Each page is reduced to its containers before the next is fetched: what is held is the
    // containers' names, images and digests, never the Pod objects of the whole cluster.
    let mut out = Running::default();
    pages(
        |p| {
            let pods = pods.clone();
            async move { pods.list(&p.fields(NOT_FINISHED)).await }
        },
        |page: Vec<Pod>| {
            for pod in &page {
                out.images.extend(audit::running_images(pod));
            }
        },
    )
    .await
    .map_err(|e| format!("cannot list Pods: {e}"))?;
    let namespaces = Api::<Namespace>::all(client.clone());
    let mut labels = HashMap::new();
    let listed =
        pages(
            |p| {
                let namespaces = namespaces.clone();
                async move { namespaces.list_metadata(&p).await }
            },
            |page| {
                labels.extend(page.into_iter().filter_map(|n| {
                    Some((n.metadata.name?, n.metadata.labels.unwrap_or_default()))
                }));
            },
        )
        .await;
    match listed {
        Ok(()) => out.labels = labels,
        Err(e) => out.labels_error = Some(format!("cannot list namespaces: {e}")),
    }
    Ok(out)
}

/// Why PolicyReports were not written.
#[derive(Debug)]
pub enum ReportError {
    /// The cluster has no `policyreports.wgpolicyk8s.io` (the API answers 404).
    NotInstalled,
    /// Another failure, for the log.
    Failed(String),
}

/// Writes `reports` (namespace, PolicyReport) by server-side apply as field manager `signgate`,
/// so signgate owns what it writes and nothing else.
pub async fn apply_reports(
    client: &kube::Client,
    reports: &[(String, serde_json::Value)],
) -> Result<(), ReportError> {
    let resource = kube::core::ApiResource {
        group: "wgpolicyk8s.io".into(),
        version: "v1alpha2".into(),
        api_version: "wgpolicyk8s.io/v1alpha2".into(),
        kind: "PolicyReport".into(),
        plural: "policyreports".into(),
    };
    let params = kube::api::PatchParams::apply("signgate").force();
    for (namespace, report) in reports {
        let api: Api<kube::core::DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &resource);
        match api
            .patch(
                crate::audit::REPORT_NAME,
                &params,
                &kube::api::Patch::Apply(report),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => return Err(ReportError::NotInstalled),
            Err(e) => return Err(ReportError::Failed(format!("{namespace}: {e}"))),
        }
    }
    Ok(())
}

/// Every object a list returns, handed to `each` one page at a time.
async fn pages<T, F, Fut>(list: F, mut each: impl FnMut(Vec<T>)) -> Result<(), kube::Error>
where
    T: Clone,
    F: Fn(ListParams) -> Fut,
    Fut: std::future::Future<Output = Result<kube::core::ObjectList<T>, kube::Error>>,
{
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let page = list(params.clone()).await?;
        each(page.items);
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(()),
        }
    }
}
