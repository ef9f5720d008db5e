//! Namespace labels for policies with `namespaces.matchLabels`. AdmissionReviews do not carry
//! them, so `serve` keeps every namespace's labels in memory from the Kubernetes API: a kube-rs
//! reflector over a metadata-only list and watch of namespaces (RBAC `list` + `watch`), started
//! only once the configuration has a label selector. A review reads the cache, never the API.
//!
//! Fail closed: until the first list has completed, or for a namespace the synced cache does not
//! hold after a short wait (a namespace created just before its first Pod), the labels are
//! unknown, and an image whose policy depends on them is denied with the reason
//! (`Policies::needs_labels`); other policies are decided as usual. While the watch is down the
//! last listed state is kept, as every Kubernetes informer does; a re-list (the watch could not be
//! resumed, e.g. `410 Gone`) replaces the cache atomically and is counted in
//! `signgate_kube_watch_restarts_total`, failures in `signgate_kube_watch_errors_total`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Resource as _};

use crate::metrics::Metrics;

/// How long a review waits for a namespace the cache does not hold yet (or for the first list):
/// a namespace created just before its first Pod usually arrives within milliseconds.
pub const MISSING_WAIT: Duration = Duration::from_secs(1);

/// A namespace's labels as the cache holds them (shared, not copied).
#[derive(Clone, Debug, Default)]
pub struct Labels(Option<Arc<PartialObjectMeta<Namespace>>>);

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

impl Labels {
    /// The labels; empty when the namespace has none.
    pub fn map(&self) -> &BTreeMap<String, String> {
        self.0
            .as_ref()
            .and_then(|n| n.metadata.labels.as_ref())
            .unwrap_or(&NO_LABELS)
    }
}

/// Where labels come from.
pub enum NamespaceLabels {
    /// No Kubernetes API (the CLI without `--namespace-label`): labels are unknown, so an image
    /// whose policy depends on them is denied, saying so.
    None,
    /// Given by the user (the CLI's `--namespace-label`).
    Given(BTreeMap<String, String>),
    /// The cluster's namespaces, watched once a configuration needs them (`serve`).
    Cluster(Arc<NamespaceWatch>),
}

impl NamespaceLabels {
    /// The labels of `namespace`, or why they are unknown. Waits at most [`MISSING_WAIT`].
    pub async fn labels(&self, namespace: &str) -> Result<Labels, String> {
        match self {
            NamespaceLabels::None => Err(format!(
                "the labels of namespace {namespace:?} are unknown: the CLI does not read the cluster (give them with --namespace-label KEY=VALUE)"
            )),
            NamespaceLabels::Given(labels) => Ok(Labels(Some(Arc::new(PartialObjectMeta {
                metadata: kube::core::ObjectMeta {
                    labels: Some(labels.clone()),
                    ..Default::default()
                },
                ..Default::default()
            })))),
            NamespaceLabels::Cluster(w) => w.labels(namespace).await,
        }
    }

    /// `/readyz`: `Err` (not ready) while the watch started with the process has not completed
    /// its first list; `Ok(Some(detail))` (ready, with why label-dependent images fail) while a
    /// watch a reload started has not, since a reload must not take serving replicas out of
    /// rotation (as a refused reload does not).
    pub fn ready(&self) -> Result<Option<String>, String> {
        match self {
            NamespaceLabels::None | NamespaceLabels::Given(_) => Ok(None),
            NamespaceLabels::Cluster(w) => w.ready(),
        }
    }
}

/// How the watch reaches the API server.
pub enum Connect {
    /// kube-rs's inference, as kubectl's: `KUBECONFIG` or `~/.kube/config`, else the in-cluster
    /// service account (`KUBERNETES_SERVICE_HOST`, the mounted token, rotated, and CA).
    Infer,
    /// A client made by the caller (tests: a `tower` service playing the API server).
    Client(kube::Client),
}

/// The reflector over namespace metadata and what reviews need from it.
pub struct NamespaceWatch {
    connect: Mutex<Option<Connect>>,
    metrics: Arc<Metrics>,
    store: Store<PartialObjectMeta<Namespace>>,
    writer: Mutex<Option<reflector::store::Writer<PartialObjectMeta<Namespace>>>>,
    started: AtomicBool,
    /// Whether `/readyz` waits for the first list (the watch started with the process).
    gates_readiness: AtomicBool,
    synced: AtomicBool,
    /// Bumped after every change to the cache: wakes reviews waiting for a namespace.
    changed: tokio::sync::watch::Sender<u64>,
    /// The last failure since the last success, for `/readyz` and denial messages.
    problem: Mutex<Option<String>>,
    task: OnceLock<tokio::task::AbortHandle>,
}

impl Drop for NamespaceWatch {
    fn drop(&mut self) {
        if let Some(t) = self.task.get() {
            t.abort();
        }
    }
}

impl NamespaceWatch {
    /// A watch not started yet: nothing is requested until [`NamespaceWatch::start`].
    pub fn new(connect: Connect, metrics: Arc<Metrics>) -> Arc<NamespaceWatch> {
        let (store, writer) = reflector::store();
        Arc::new(NamespaceWatch {
            connect: Mutex::new(Some(connect)),
            metrics,
            store,
            writer: Mutex::new(Some(writer)),
            started: AtomicBool::new(false),
            gates_readiness: AtomicBool::new(false),
            synced: AtomicBool::new(false),
            changed: tokio::sync::watch::Sender::new(0),
            problem: Mutex::new(None),
            task: OnceLock::new(),
        })
    }

    /// Starts the list and watch (once; later calls do nothing). `gate_readiness`: `/readyz`
    /// answers 503 until the first list (at process start; not after a reload). Must be called
    /// from within a Tokio runtime. The task stops when the last `Arc` is dropped.
    pub fn start(self: &Arc<Self>, gate_readiness: bool) {
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        self.gates_readiness
            .store(gate_readiness, Ordering::Release);
        let connect = lock(&self.connect).take();
        let writer = lock(&self.writer).take();
        let (Some(connect), Some(writer)) = (connect, writer) else {
            return;
        };
        let me = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            let Some(client) = client(connect, &me).await else {
                return;
            };
            run(client, writer, me).await;
        });
        let _ = self.task.set(task.abort_handle());
    }

    /// Whether [`NamespaceWatch::start`] has been called.
    pub fn started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// Whether the first list of namespaces has completed; it stays true while the watch is down.
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    fn ready(&self) -> Result<Option<String>, String> {
        if !self.started() || self.synced() {
            return Ok(None);
        }
        let why = format!(
            "namespace labels: the first list of namespaces from the Kubernetes API has not completed{}",
            self.problem_suffix()
        );
        if self.gates_readiness.load(Ordering::Acquire) {
            Err(why)
        } else {
            Ok(Some(why))
        }
    }

    fn problem_suffix(&self) -> String {
        lock(&self.problem)
            .as_ref()
            .map(|p| format!(" (last error: {p})"))
            .unwrap_or_default()
    }

    fn set_problem(&self, problem: Option<String>) {
        *lock(&self.problem) = problem;
    }

    /// The labels of `namespace` from the cache, waiting at most [`MISSING_WAIT`] for the first
    /// list or for the namespace to arrive.
    pub async fn labels(&self, namespace: &str) -> Result<Labels, String> {
        let until = tokio::time::Instant::now() + MISSING_WAIT;
        let mut changed = self.changed.subscribe();
        let key = ObjectRef::new(namespace);
        loop {
            changed.borrow_and_update();
            if !self.started() {
                return Err(format!(
                    "the labels of namespace {namespace:?} are unknown: the namespace watch has not started"
                ));
            }
            if self.synced()
                && let Some(ns) = self.store.get(&key)
            {
                return Ok(Labels(Some(ns)));
            }
            if tokio::time::timeout_at(until, changed.changed())
                .await
                .is_err()
            {
                break;
            }
        }
        if self.synced() {
            Err(format!(
                "namespace {namespace:?} is not in the list of namespaces from the Kubernetes API, so its labels are unknown{}",
                self.problem_suffix()
            ))
        } else {
            Err(format!(
                "the labels of namespace {namespace:?} are unknown: the first list of namespaces from the Kubernetes API has not completed{}",
                self.problem_suffix()
            ))
        }
    }

    fn changed(&self) {
        self.metrics.kube_namespaces(self.store.len());
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Longest pause between attempts to build a client (no kubeconfig yet, unreadable token).
const CLIENT_RETRY: Duration = Duration::from_secs(10);

/// The client for `connect`, retried until it can be built or the watch is dropped.
async fn client(connect: Connect, me: &std::sync::Weak<NamespaceWatch>) -> Option<kube::Client> {
    let mut pause = Duration::from_millis(500);
    loop {
        let made = match &connect {
            Connect::Client(c) => Ok(c.clone()),
            Connect::Infer => match kube::Config::infer().await {
                Ok(config) => kube::Client::try_from(config)
                    .map_err(|e| format!("cannot make a Kubernetes client: {e}")),
                Err(e) => Err(format!(
                    "no Kubernetes API configuration (kubeconfig or in-cluster service account): {e}"
                )),
            },
        };
        let watch = me.upgrade()?;
        match made {
            Ok(c) => return Some(c),
            Err(e) => {
                tracing::error!(error = %e, "namespace labels: cannot reach the Kubernetes API");
                watch.metrics.kube_watch_error();
                watch.set_problem(Some(e));
            }
        }
        drop(watch);
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(CLIENT_RETRY);
    }
}

/// Fields of a namespace's metadata signgate never reads, dropped before caching:
/// `managedFields` and annotations can be kilobytes per namespace.
fn strip(ns: &mut PartialObjectMeta<Namespace>) {
    let meta = ns.meta_mut();
    meta.managed_fields = None;
    meta.annotations = None;
    meta.owner_references = None;
    meta.finalizers = None;
}

async fn run(
    client: kube::Client,
    writer: reflector::store::Writer<PartialObjectMeta<Namespace>>,
    me: std::sync::Weak<NamespaceWatch>,
) {
    let api: Api<PartialObjectMeta<Namespace>> = Api::all(client);
    let mut events = std::pin::pin!(
        watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(strip)
            .reflect(writer)
    );
    // The watcher emits `Init` before each list attempt, failed ones included: a restart is a
    // list begun after a completed one, counted once however many attempts it takes.
    let mut relisting = false;
    while let Some(event) = events.next().await {
        let Some(watch) = me.upgrade() else {
            return;
        };
        match event {
            Ok(watcher::Event::Init) => {
                if watch.synced() && !relisting {
                    relisting = true;
                    watch.metrics.kube_watch_restart();
                    tracing::info!(
                        "namespace labels: listing namespaces again (the watch could not be resumed)"
                    );
                }
            }
            Ok(watcher::Event::InitApply(_)) => {}
            Ok(watcher::Event::InitDone) => {
                relisting = false;
                let first = !watch.synced.swap(true, Ordering::AcqRel);
                watch.set_problem(None);
                watch.changed();
                if first {
                    tracing::info!(
                        namespaces = watch.store.len(),
                        "namespace labels: namespaces listed; watching for changes"
                    );
                }
            }
            Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => {
                watch.set_problem(None);
                watch.changed();
            }
            Err(e) => {
                watch.metrics.kube_watch_error();
                tracing::warn!(error = %e, "namespace labels: list or watch failed; retrying");
                watch.set_problem(Some(e.to_string()));
                // Reviews waiting for the first list learn the reason now.
                watch.changed.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }
}
