//! Which container images a reviewed object would run, and which of them an operation adds.

use std::collections::HashSet;
use std::fmt;

use serde_json::Value;

use super::review::{GroupVersionKind, JsonType, Operation, Review, ReviewError};

/// The three container lists of a pod spec, in the order they run (and are reported in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContainerList {
    /// `initContainers`: run one by one before the others.
    InitContainers,
    /// `containers`: the pod's main containers.
    Containers,
    /// `ephemeralContainers`: debug containers added to a running Pod.
    EphemeralContainers,
}

impl ContainerList {
    /// Every list, in reporting order.
    pub(crate) const ALL: [ContainerList; 3] = [
        ContainerList::InitContainers,
        ContainerList::Containers,
        ContainerList::EphemeralContainers,
    ];

    /// The pod spec field name: `initContainers`, `containers`, `ephemeralContainers`.
    pub fn field(self) -> &'static str {
        match self {
            ContainerList::InitContainers => "initContainers",
            ContainerList::Containers => "containers",
            ContainerList::EphemeralContainers => "ephemeralContainers",
        }
    }
}

impl fmt::Display for ContainerList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.field())
    }
}

/// One container of a pod spec and the image it runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerImage {
    /// The container's name.
    pub container: String,
    /// The list it is in.
    pub list: ContainerList,
    /// Its position in that list (for JSON pointers and messages).
    pub index: usize,
    /// The image reference exactly as written in the object.
    pub image: String,
}

/// How every message names a container's image (SPEC's form): `image "…" (container "…")`.
pub fn image_in_container(image: &str, container: &str) -> String {
    format!("image {image:?} (container {container:?})")
}

impl ContainerImage {
    /// This image as messages name it ([`image_in_container`]).
    pub fn named(&self) -> String {
        image_in_container(&self.image, &self.container)
    }
}

/// The kinds whose objects run containers, decided from `request.kind` (group and kind; any
/// version, since the pod spec sits at the same place in every version of these kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    /// `v1 Pod`, including the `pods/ephemeralcontainers` subresource (whose object is a Pod).
    Pod,
    /// `v1 EphemeralContainers`: the object of the `pods/ephemeralcontainers` subresource before
    /// Kubernetes 1.22 (a top-level `ephemeralContainers` list). Kept so that such a cluster cannot
    /// add an unverified debug container.
    EphemeralContainers,
    /// `apps` (or pre-1.16 `extensions`) Deployment; pod spec at `spec.template.spec`.
    Deployment,
    /// `apps` (or `extensions`) ReplicaSet; pod spec at `spec.template.spec`.
    ReplicaSet,
    /// `apps` StatefulSet; pod spec at `spec.template.spec`.
    StatefulSet,
    /// `apps` (or `extensions`) DaemonSet; pod spec at `spec.template.spec`.
    DaemonSet,
    /// `batch` Job; pod spec at `spec.template.spec`.
    Job,
    /// `batch` CronJob; pod spec at `spec.jobTemplate.spec.template.spec`.
    CronJob,
    /// `v1 ReplicationController`; pod spec at `spec.template.spec`.
    ReplicationController,
}

impl WorkloadKind {
    /// The workload kind of `request.kind`, or `None` for a kind that runs no containers.
    /// `extensions` is the pre-1.16 group of Deployments, ReplicaSets and DaemonSets.
    pub(crate) fn from_gvk(gvk: &GroupVersionKind) -> Option<WorkloadKind> {
        match (gvk.group.as_str(), gvk.kind.as_str()) {
            ("", "Pod") => Some(WorkloadKind::Pod),
            ("", "EphemeralContainers") => Some(WorkloadKind::EphemeralContainers),
            ("", "ReplicationController") => Some(WorkloadKind::ReplicationController),
            ("apps" | "extensions", "Deployment") => Some(WorkloadKind::Deployment),
            ("apps" | "extensions", "ReplicaSet") => Some(WorkloadKind::ReplicaSet),
            ("apps" | "extensions", "DaemonSet") => Some(WorkloadKind::DaemonSet),
            ("apps", "StatefulSet") => Some(WorkloadKind::StatefulSet),
            ("batch", "Job") => Some(WorkloadKind::Job),
            ("batch", "CronJob") => Some(WorkloadKind::CronJob),
            _ => None,
        }
    }

    /// The kind name, also the metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Pod => "Pod",
            WorkloadKind::EphemeralContainers => "EphemeralContainers",
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::ReplicaSet => "ReplicaSet",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::Job => "Job",
            WorkloadKind::CronJob => "CronJob",
            WorkloadKind::ReplicationController => "ReplicationController",
        }
    }

    /// The object fields leading to the pod spec (empty: the object itself holds the lists).
    fn spec_segments(self) -> &'static [&'static str] {
        match self {
            WorkloadKind::Pod => &["spec"],
            WorkloadKind::EphemeralContainers => &[],
            WorkloadKind::CronJob => &["spec", "jobTemplate", "spec", "template", "spec"],
            WorkloadKind::Deployment
            | WorkloadKind::ReplicaSet
            | WorkloadKind::StatefulSet
            | WorkloadKind::DaemonSet
            | WorkloadKind::Job
            | WorkloadKind::ReplicationController => &["spec", "template", "spec"],
        }
    }

    /// The dotted path of the pod spec in the object, for messages: `spec`,
    /// `spec.template.spec`, `spec.jobTemplate.spec.template.spec` (empty for
    /// [`WorkloadKind::EphemeralContainers`]).
    pub(crate) fn spec_path(self) -> &'static str {
        match self {
            WorkloadKind::Pod => "spec",
            WorkloadKind::EphemeralContainers => "",
            WorkloadKind::CronJob => "spec.jobTemplate.spec.template.spec",
            WorkloadKind::Deployment
            | WorkloadKind::ReplicaSet
            | WorkloadKind::StatefulSet
            | WorkloadKind::DaemonSet
            | WorkloadKind::Job
            | WorkloadKind::ReplicationController => "spec.template.spec",
        }
    }

    /// The dotted path of one container in the object, e.g. `spec.template.spec.containers[0]`.
    pub(crate) fn container_path(self, list: ContainerList, index: usize) -> String {
        match self.spec_path() {
            "" => format!("{}[{index}]", list.field()),
            spec => format!("{spec}.{}[{index}]", list.field()),
        }
    }

    /// The JSON pointer (RFC 6901) of one container's `image`, for a JSONPatch, e.g.
    /// `/spec/template/spec/containers/0/image`.
    pub fn image_pointer(self, list: ContainerList, index: usize) -> String {
        let mut pointer = String::new();
        for segment in self.spec_segments() {
            pointer.push('/');
            pointer.push_str(segment);
        }
        format!("{pointer}/{}/{index}/image", list.field())
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`images`] found in a reviewed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Workload {
    /// A kind that runs no containers (ConfigMap, Scale, PodExecOptions, a CRD, …): allow it.
    Other,
    /// A Pod or a pod controller.
    Pods(PodWorkload),
}

impl Workload {
    /// Every container image of the object (none for [`Workload::Other`]).
    pub fn images(&self) -> &[ContainerImage] {
        match self {
            Workload::Other => &[],
            Workload::Pods(pods) => &pods.images,
        }
    }
}

/// A Pod or pod controller and every container image of its pod spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodWorkload {
    /// The kind, from `request.kind`: where the pod spec sits.
    pub kind: WorkloadKind,
    /// Every container with its image, init containers first, then containers, then ephemeral
    /// containers, each list in its own order. Empty for DELETE and CONNECT, whose object is not
    /// read.
    pub images: Vec<ContainerImage>,
}

impl PodWorkload {
    /// The JSON pointer of `image`'s `image` field in the object, for a JSONPatch.
    pub fn image_pointer(&self, image: &ContainerImage) -> String {
        self.kind.image_pointer(image.list, image.index)
    }
}

/// Every container image of the reviewed object.
///
/// The kind comes from `request.kind`, never from the object. For CREATE and UPDATE the object
/// must be there and every container must have a name and a string image: anything else is an
/// error naming the container (fail closed). DELETE and CONNECT read no object (a DELETE must
/// never fail on the shape of what is being deleted), so their image list is empty.
pub fn images(review: &Review) -> Result<Workload, ReviewError> {
    let Some(kind) = WorkloadKind::from_gvk(&review.kind) else {
        return Ok(Workload::Other);
    };
    let images = match review.operation {
        Operation::Delete | Operation::Connect => Vec::new(),
        Operation::Create | Operation::Update => {
            let object = review.object.as_ref().ok_or(ReviewError::MissingObject {
                operation: review.operation,
                kind: kind.as_str(),
            })?;
            container_images(object, kind)?
        }
    };
    Ok(Workload::Pods(PodWorkload { kind, images }))
}

/// Strictly reads every container of `object`'s pod spec.
fn container_images(
    object: &Value,
    kind: WorkloadKind,
) -> Result<Vec<ContainerImage>, ReviewError> {
    let mut spec = object;
    let mut walked = String::new();
    for segment in kind.spec_segments() {
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(segment);
        spec = match spec.get(segment) {
            Some(next @ Value::Object(_)) => next,
            _ => {
                return Err(ReviewError::MissingPodSpec {
                    kind: kind.as_str(),
                    path: walked,
                });
            }
        };
    }

    let mut images = Vec::new();
    for list in ContainerList::ALL {
        let items = match spec.get(list.field()) {
            // Optional lists; an absent `containers` is the API server's to refuse.
            None | Some(Value::Null) => continue,
            Some(Value::Array(items)) => items,
            Some(other) => {
                let path = match kind.spec_path() {
                    "" => list.field().to_owned(),
                    spec => format!("{spec}.{}", list.field()),
                };
                return Err(ReviewError::ContainerListNotArray {
                    path,
                    found: JsonType::of(other),
                });
            }
        };
        images.reserve(items.len());
        for (index, item) in items.iter().enumerate() {
            let path = || kind.container_path(list, index);
            let Value::Object(container) = item else {
                return Err(ReviewError::ContainerNotObject {
                    path: path(),
                    found: JsonType::of(item),
                });
            };
            let name = match container.get("name") {
                Some(Value::String(name)) if !name.is_empty() => name,
                _ => return Err(ReviewError::ContainerWithoutName { path: path() }),
            };
            let image = match container.get("image") {
                Some(Value::String(image)) if !image.is_empty() => image,
                None | Some(Value::Null) | Some(Value::String(_)) => {
                    return Err(ReviewError::ContainerWithoutImage {
                        container: name.clone(),
                        path: path(),
                    });
                }
                Some(other) => {
                    return Err(ReviewError::ImageNotString {
                        container: name.clone(),
                        path: path(),
                        found: JsonType::of(other),
                    });
                }
            };
            images.push(ContainerImage {
                container: name.clone(),
                list,
                index,
                image: image.clone(),
            });
        }
    }
    Ok(images)
}

/// Leniently reads the (list, name, image) entries of an old object. Anything unreadable is left
/// out, which can only make more images count as new, never fewer.
fn old_entries(old: &Value, kind: WorkloadKind) -> HashSet<(ContainerList, &str, &str)> {
    let mut entries = HashSet::new();
    let mut spec = old;
    for segment in kind.spec_segments() {
        match spec.get(segment) {
            Some(next) => spec = next,
            None => return entries,
        }
    }
    for list in ContainerList::ALL {
        let Some(Value::Array(items)) = spec.get(list.field()) else {
            continue;
        };
        for item in items {
            let name = item.get("name").and_then(Value::as_str);
            let image = item.get("image").and_then(Value::as_str);
            if let (Some(name), Some(image)) = (name, image) {
                entries.insert((list, name, image));
            }
        }
    }
    entries
}

/// The images this operation must verify, in the order of [`PodWorkload::images`].
///
/// - CREATE: every image.
/// - UPDATE: only the (list, container name, image) entries that `oldObject` did not have: a new
///   container (a debug container added through `pods/ephemeralcontainers` is one), a renamed one,
///   or a changed image. An UPDATE that changes no image verifies nothing, so scaling, relabelling
///   or rolling back the replica count of an old workload is never blocked by trust data that has
///   since expired (SPEC, "Admission behaviour"). Without an old object every image is new.
/// - DELETE and CONNECT: nothing.
///
/// Why skipping unchanged images on UPDATE, including scale-from-zero (replicas 0 → 3, same
/// template), opens no bypass: signgate never admits a Pod because of who owns it. Every Pod the
/// ReplicaSet, Job or DaemonSet controller creates is its own Pod CREATE, reviewed here with all
/// of its images, so a controller's template images are checked when the template is created or
/// changed (early feedback at `kubectl apply`) *and* again on every Pod that actually runs them.
/// Portieris's bypass (IBM/portieris#508, fixed by PR#512) was different: it auto-approved Pods
/// that had a known owner and relied on checking the controller instead, so a Deployment created
/// with 0 replicas and then scaled up through the `scale` subresource (which it did not review)
/// started Pods nobody verified. signgate has no owner-based approval, and a `*/scale` review
/// (kind `autoscaling/v1 Scale`) carries no containers at all.
pub fn images_to_verify(review: &Review, workload: &Workload) -> Vec<ContainerImage> {
    let Workload::Pods(pods) = workload else {
        return Vec::new();
    };
    match review.operation {
        Operation::Create => pods.images.clone(),
        Operation::Update => match &review.old_object {
            None => pods.images.clone(),
            Some(old) => {
                let before = old_entries(old, pods.kind);
                pods.images
                    .iter()
                    .filter(|c| !before.contains(&(c.list, c.container.as_str(), c.image.as_str())))
                    .cloned()
                    .collect()
            }
        },
        Operation::Delete | Operation::Connect => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::GroupVersionResource;
    use serde_json::json;

    fn review(
        kind: (&str, &str),
        operation: Operation,
        object: Option<Value>,
        old: Option<Value>,
    ) -> Review {
        Review {
            uid: "u".into(),
            kind: GroupVersionKind {
                group: kind.0.into(),
                version: "v1".into(),
                kind: kind.1.into(),
            },
            resource: Some(GroupVersionResource {
                group: kind.0.into(),
                version: "v1".into(),
                resource: "x".into(),
            }),
            sub_resource: None,
            operation,
            namespace: Some("ml".into()),
            name: None,
            dry_run: false,
            object,
            old_object: old,
            user: None,
        }
    }

    fn pod(containers: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": containers}})
    }

    fn names(images: &[ContainerImage]) -> Vec<(ContainerList, &str, &str)> {
        images
            .iter()
            .map(|c| (c.list, c.container.as_str(), c.image.as_str()))
            .collect()
    }

    #[test]
    fn kinds_map_by_group_and_kind_only() {
        let gvk = |g: &str, k: &str| GroupVersionKind {
            group: g.into(),
            version: "v1beta1".into(),
            kind: k.into(),
        };
        assert_eq!(
            WorkloadKind::from_gvk(&gvk("batch", "CronJob")),
            Some(WorkloadKind::CronJob)
        );
        assert_eq!(
            WorkloadKind::from_gvk(&gvk("extensions", "Deployment")),
            Some(WorkloadKind::Deployment)
        );
        assert_eq!(WorkloadKind::from_gvk(&gvk("apps", "Pod")), None);
        assert_eq!(WorkloadKind::from_gvk(&gvk("", "pod")), None);
        assert_eq!(WorkloadKind::from_gvk(&gvk("autoscaling", "Scale")), None);
        assert_eq!(
            WorkloadKind::from_gvk(&gvk("kubeflow.org", "PyTorchJob")),
            None
        );
    }

    #[test]
    fn kind_comes_from_the_request_not_the_object() {
        // The object claims to be a ConfigMap; the request says Pod: its containers are read.
        let object =
            json!({"kind": "ConfigMap", "spec": {"containers": [{"name": "a", "image": "x"}]}});
        let r = review(("", "Pod"), Operation::Create, Some(object.clone()), None);
        assert_eq!(images(&r).unwrap().images().len(), 1);
        // The request says ConfigMap; the object's Pod-looking body is not read.
        let mut r = review(("", "ConfigMap"), Operation::Create, Some(object), None);
        r.object = Some(json!({"kind": "Pod", "spec": {"containers": [{"name": "a"}]}}));
        assert_eq!(images(&r).unwrap(), Workload::Other);
    }

    #[test]
    fn pointers_and_paths() {
        assert_eq!(
            WorkloadKind::CronJob.image_pointer(ContainerList::InitContainers, 2),
            "/spec/jobTemplate/spec/template/spec/initContainers/2/image"
        );
        assert_eq!(
            WorkloadKind::Pod.container_path(ContainerList::EphemeralContainers, 0),
            "spec.ephemeralContainers[0]"
        );
        assert_eq!(
            WorkloadKind::EphemeralContainers.image_pointer(ContainerList::EphemeralContainers, 1),
            "/ephemeralContainers/1/image"
        );
    }

    #[test]
    fn strict_container_errors() {
        type Check = fn(&ReviewError) -> bool;
        let cases: Vec<(Value, Check)> = vec![
            (
                json!({"spec": {"containers": [{"name": "a"}]}}),
                |e| matches!(e, ReviewError::ContainerWithoutImage { container, path } if container == "a" && path == "spec.containers[0]"),
            ),
            (
                json!({"spec": {"containers": [{"name": "a", "image": ""}]}}),
                |e| matches!(e, ReviewError::ContainerWithoutImage { .. }),
            ),
            (
                json!({"spec": {"containers": [{"name": "a", "image": null}]}}),
                |e| matches!(e, ReviewError::ContainerWithoutImage { .. }),
            ),
            (
                json!({"spec": {"containers": [{"name": "a", "image": ["x"]}]}}),
                |e| {
                    matches!(
                        e,
                        ReviewError::ImageNotString {
                            found: JsonType::Array,
                            ..
                        }
                    )
                },
            ),
            (
                json!({"spec": {"containers": [{"image": "x"}]}}),
                |e| matches!(e, ReviewError::ContainerWithoutName { path } if path == "spec.containers[0]"),
            ),
            (
                json!({"spec": {"initContainers": ["x"]}}),
                |e| matches!(e, ReviewError::ContainerNotObject { path, .. } if path == "spec.initContainers[0]"),
            ),
            (
                json!({"spec": {"ephemeralContainers": {}}}),
                |e| matches!(e, ReviewError::ContainerListNotArray { path, found: JsonType::Object } if path == "spec.ephemeralContainers"),
            ),
            (
                json!({"spec": "nope"}),
                |e| matches!(e, ReviewError::MissingPodSpec { path, .. } if path == "spec"),
            ),
        ];
        for (object, check) in cases {
            let r = review(("", "Pod"), Operation::Create, Some(object.clone()), None);
            let err = images(&r).unwrap_err();
            assert!(check(&err), "{object}: {err:?}");
            assert!(err.is_about_object());
        }
        let r = review(
            ("apps", "Deployment"),
            Operation::Create,
            Some(json!({"spec": {}})),
            None,
        );
        assert!(matches!(
            images(&r),
            Err(ReviewError::MissingPodSpec { path, kind: "Deployment" }) if path == "spec.template"
        ));
        let r = review(("apps", "Deployment"), Operation::Update, None, None);
        assert!(matches!(images(&r), Err(ReviewError::MissingObject { .. })));
    }

    #[test]
    fn delete_and_connect_read_no_object() {
        for op in [Operation::Delete, Operation::Connect] {
            let r = review(("", "Pod"), op, Some(json!({"spec": 1})), Some(json!(null)));
            let w = images(&r).unwrap();
            assert!(matches!(w, Workload::Pods(_)));
            assert!(w.images().is_empty());
            assert!(images_to_verify(&r, &w).is_empty());
        }
    }

    #[test]
    fn update_verifies_only_new_or_changed_entries() {
        let old = pod(json!([
            {"name": "trainer", "image": "r/ml/pytorch:1"},
            {"name": "sidecar", "image": "r/sidecar:1"},
            {"name": "gone", "image": "r/gone:1"},
        ]));
        let new = pod(json!([
            {"name": "trainer", "image": "r/ml/pytorch:2"},
            {"name": "sidecar", "image": "r/sidecar:1"},
            {"name": "renamed", "image": "r/gone:1"},
            {"name": "added", "image": "r/added:1"},
        ]));
        let r = review(("", "Pod"), Operation::Update, Some(new), Some(old));
        let w = images(&r).unwrap();
        assert_eq!(w.images().len(), 4);
        assert_eq!(
            names(&images_to_verify(&r, &w)),
            vec![
                (ContainerList::Containers, "trainer", "r/ml/pytorch:2"),
                (ContainerList::Containers, "renamed", "r/gone:1"),
                (ContainerList::Containers, "added", "r/added:1"),
            ]
        );
    }

    #[test]
    fn same_name_and_image_in_another_list_is_new() {
        let old = json!({"spec": {"initContainers": [{"name": "a", "image": "x"}]}});
        let new = json!({"spec": {"containers": [{"name": "a", "image": "x"}]}});
        let r = review(("", "Pod"), Operation::Update, Some(new), Some(old));
        let w = images(&r).unwrap();
        assert_eq!(images_to_verify(&r, &w).len(), 1);
    }

    #[test]
    fn update_with_unreadable_old_object_verifies_everything() {
        let new = pod(json!([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]));
        for old in [
            None,
            Some(json!({})),
            Some(json!({"spec": []})),
            Some(pod(json!([{"name": "a", "image": 7}, {"image": "y"}]))),
        ] {
            let r = review(("", "Pod"), Operation::Update, Some(new.clone()), old);
            let w = images(&r).unwrap();
            assert_eq!(images_to_verify(&r, &w).len(), 2);
        }
    }

    #[test]
    fn other_kinds_verify_nothing() {
        let r = review(
            ("", "ConfigMap"),
            Operation::Create,
            Some(json!({"data": {}})),
            None,
        );
        let w = images(&r).unwrap();
        assert!(matches!(w, Workload::Other));
        assert!(images_to_verify(&r, &w).is_empty());
    }
}
