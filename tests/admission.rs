//! The admission contract (SPEC.md, "Admission behaviour") on AdmissionReview bodies shaped exactly
//! as kube-apiserver sends them (compact Go JSON, trailing newline, `\u0026` escapes; see
//! `tests/fixtures/admission/`): which images each object runs, which of them an operation must
//! verify, malformed requests refused with their own error, and responses checked the way the API
//! server checks them (`VerifyAdmissionResponse`, the warning recorder, audit annotation keys).

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use proptest::prelude::*;
use rstest::rstest;
use serde_json::{Value, json};

use signgate::admission::{
    ContainerImage, ContainerList, JsonType, MAX_WARNING_CHARS, MAX_WARNINGS_TOTAL_CHARS,
    Operation, Review, ReviewError, Workload, WorkloadKind, allowed, denied, images,
    images_to_verify, parse_review, patch_response, sanitize_audit_annotations, sanitize_warnings,
};
use signgate::policy::{ImageFailure, denial_message};

const INIT: ContainerList = ContainerList::InitContainers;
const MAIN: ContainerList = ContainerList::Containers;
const EPH: ContainerList = ContainerList::EphemeralContainers;

const PYTORCH: &str = "registry.ai-team.internal/ml/pytorch-cuda:v2.9";
const FETCHER: &str = "registry.ai-team.internal/ml/dataset-fetcher:1.4.2";
const DCGM: &str = "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.9-3.6.1-ubuntu22.04";
const PULLER: &str = "registry.ai-team.internal/ml/model-puller@sha256:6a1f0b3c9d2e4f5a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c";
const VLLM: &str = "registry.ai-team.internal/ml/vllm-openai:v0.11.0";
const VLLM_NEXT: &str = "registry.ai-team.internal/ml/vllm-openai:v0.11.1";
const OTEL: &str = "registry.ai-team.internal/infra/otel-collector:0.114.0";
const DEVICE_PLUGIN: &str = "nvcr.io/nvidia/k8s-device-plugin:v0.17.0";
const NETSHOOT: &str = "registry.ai-team.internal/tools/netshoot:v0.13";
const BUSYBOX: &str = "docker.io/library/busybox:1.37";

/// The webhook name the API server prefixes denial messages and audit annotation keys with.
const WEBHOOK: &str = "images.signgate.ai-team.internal";

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/admission")
        .join(name)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap()
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

fn review_of(name: &str) -> Review {
    parse_review(&fixture(name)).unwrap()
}

fn triples(images: &[ContainerImage]) -> Vec<(ContainerList, &str, &str)> {
    images
        .iter()
        .map(|c| (c.list, c.container.as_str(), c.image.as_str()))
        .collect()
}

type Entries = &'static [(ContainerList, &'static str, &'static str)];

const GPU_POD: Entries = &[
    (INIT, "fetch-dataset", FETCHER),
    (MAIN, "trainer", PYTORCH),
    (MAIN, "metrics-exporter", DCGM),
];
const INFERENCE: Entries = &[
    (INIT, "model-download", PULLER),
    (MAIN, "server", VLLM),
    (MAIN, "otel-agent", OTEL),
];
const INFERENCE_NEXT: Entries = &[
    (INIT, "model-download", PULLER),
    (MAIN, "server", VLLM_NEXT),
    (MAIN, "otel-agent", OTEL),
];
const DEBUGGED_POD: Entries = &[
    (INIT, "fetch-dataset", FETCHER),
    (MAIN, "trainer", PYTORCH),
    (MAIN, "metrics-exporter", DCGM),
    (EPH, "debugger-4m9tq", NETSHOOT),
    (EPH, "debugger-x7k2p", BUSYBOX),
];

#[rstest]
#[case::gpu_training_pod(
    "pod-gpu-training-create.json",
    Operation::Create,
    Some(WorkloadKind::Pod),
    GPU_POD,
    GPU_POD
)]
#[case::deployment(
    "deployment-create.json",
    Operation::Create,
    Some(WorkloadKind::Deployment),
    INFERENCE,
    INFERENCE
)]
#[case::replicaset_from_deployment_controller(
    "replicaset-create.json",
    Operation::Create,
    Some(WorkloadKind::ReplicaSet),
    INFERENCE,
    INFERENCE
)]
#[case::statefulset("statefulset-create.json", Operation::Create, Some(WorkloadKind::StatefulSet),
    &[(MAIN, "qdrant", "registry.ai-team.internal/infra/qdrant:v1.12.4")],
    &[(MAIN, "qdrant", "registry.ai-team.internal/infra/qdrant:v1.12.4")])]
#[case::daemonset("daemonset-create.json", Operation::Create, Some(WorkloadKind::DaemonSet),
    &[(INIT, "nvidia-device-plugin-init", DEVICE_PLUGIN), (MAIN, "nvidia-device-plugin-ctr", DEVICE_PLUGIN)],
    &[(INIT, "nvidia-device-plugin-init", DEVICE_PLUGIN), (MAIN, "nvidia-device-plugin-ctr", DEVICE_PLUGIN)])]
#[case::job_dry_run("job-create-dry-run.json", Operation::Create, Some(WorkloadKind::Job),
    &[(INIT, "tokenize", "registry.ai-team.internal/ml/tokenizer:0.20.3"), (MAIN, "trainer", PYTORCH)],
    &[(INIT, "tokenize", "registry.ai-team.internal/ml/tokenizer:0.20.3"), (MAIN, "trainer", PYTORCH)])]
#[case::cronjob("cronjob-create.json", Operation::Create, Some(WorkloadKind::CronJob),
    &[(MAIN, "evaluator", "registry.ai-team.internal/ml/eval-harness:2026.11")],
    &[(MAIN, "evaluator", "registry.ai-team.internal/ml/eval-harness:2026.11")])]
#[case::replication_controller("replicationcontroller-create.json", Operation::Create, Some(WorkloadKind::ReplicationController),
    &[(MAIN, "jupyter", "registry.ai-team.internal/ml/jupyter-cuda:4.2")],
    &[(MAIN, "jupyter", "registry.ai-team.internal/ml/jupyter-cuda:4.2")])]
#[case::kubectl_debug_adds_only_the_new_ephemeral_container("pod-ephemeralcontainers-update.json", Operation::Update, Some(WorkloadKind::Pod),
    DEBUGGED_POD, &[(EPH, "debugger-x7k2p", BUSYBOX)])]
#[case::a_review_without_resource_is_decided_from_its_kind("pod-ephemeralcontainers-update-no-resource.json", Operation::Update, Some(WorkloadKind::Pod),
    DEBUGGED_POD, &[(EPH, "debugger-x7k2p", BUSYBOX)])]
#[case::scale_from_zero_changes_no_image("deployment-replicas-update.json", Operation::Update, Some(WorkloadKind::Deployment), INFERENCE, &[])]
#[case::image_update_verifies_only_the_changed_image("deployment-image-update.json", Operation::Update, Some(WorkloadKind::Deployment),
    INFERENCE_NEXT, &[(MAIN, "server", VLLM_NEXT)])]
#[case::scale_subresource_carries_no_containers("deployment-scale-subresource-update.json", Operation::Update, None, &[], &[])]
#[case::delete_reads_no_object("deployment-delete.json", Operation::Delete, Some(WorkloadKind::Deployment), &[], &[])]
#[case::exec_is_not_a_workload("pod-exec-connect.json", Operation::Connect, None, &[], &[])]
#[case::configmap_is_not_a_workload("configmap-create.json", Operation::Create, None, &[], &[])]
fn fixture_images_and_what_to_verify(
    #[case] name: &str,
    #[case] operation: Operation,
    #[case] kind: Option<WorkloadKind>,
    #[case] all: Entries,
    #[case] to_verify: Entries,
) {
    let review = review_of(name);
    assert_eq!(review.operation, operation);
    let workload = images(&review).unwrap();
    match (&workload, kind) {
        (Workload::Pods(pods), Some(kind)) => assert_eq!(pods.kind, kind),
        (Workload::Other, None) => {}
        (other, kind) => panic!("{name}: expected {kind:?}, got {other:?}"),
    }
    assert_eq!(triples(workload.images()), all.to_vec(), "{name}: images");
    assert_eq!(
        triples(&images_to_verify(&review, &workload)),
        to_verify.to_vec(),
        "{name}: images to verify"
    );
}

#[test]
fn reads_the_request_fields_as_sent() {
    let review = review_of("pod-gpu-training-create.json");
    assert_eq!(review.uid, "0df28fbd-5f5f-11e8-bc74-36e6bb280816");
    assert_eq!(
        (
            review.kind.group.as_str(),
            review.kind.version.as_str(),
            review.kind.kind.as_str()
        ),
        ("", "v1", "Pod")
    );
    assert_eq!(review.resource.as_ref().unwrap().resource, "pods");
    assert_eq!(review.sub_resource, None);
    assert_eq!(review.namespace.as_deref(), Some("ml-prod"));
    assert_eq!(review.name.as_deref(), Some("pytorch-ddp-llama-worker-0"));
    assert!(!review.dry_run);
    assert_eq!(
        review.user.as_deref(),
        Some("system:serviceaccount:kubeflow:training-operator")
    );
    assert_eq!(review.old_object, None);
    // Go's HTML escaping (\u003c, \u0026) arrives decoded.
    let object = review.object.unwrap();
    assert_eq!(
        object["metadata"]["annotations"]["ai-team.internal/notes"],
        "8xH100 <ib> & NCCL tuned"
    );
    assert_eq!(
        object["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"],
        "8"
    );

    let debug = review_of("pod-ephemeralcontainers-update.json");
    assert_eq!(debug.sub_resource.as_deref(), Some("ephemeralcontainers"));
    assert!(debug.old_object.is_some());

    assert!(review_of("job-create-dry-run.json").dry_run);

    let delete = review_of("deployment-delete.json");
    assert_eq!(delete.object, None);
    assert!(delete.old_object.is_some());

    let exec = review_of("pod-exec-connect.json");
    assert_eq!(exec.sub_resource.as_deref(), Some("exec"));
    assert_eq!(exec.kind.kind, "PodExecOptions");
}

#[test]
fn fixtures_are_byte_for_byte_what_the_apiserver_sends() {
    for entry in std::fs::read_dir(fixture_path("")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            bytes.ends_with(b"}\n"),
            "{}: trailing newline",
            path.display()
        );
        assert_eq!(
            bytes.iter().filter(|&&b| b == b'\n').count(),
            1,
            "{}: compact",
            path.display()
        );
        assert!(
            bytes.starts_with(br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"#),
            "{}: Go field order",
            path.display()
        );
        assert!(!bytes.contains(&b'&'), "{}: HTML-escaped", path.display());
        parse_review(&bytes).unwrap();
    }
}

#[test]
fn kind_is_taken_from_the_request_not_the_object() {
    // A Pod whose object body claims to be a ConfigMap is still read as a Pod.
    let mut body = fixture_json("pod-gpu-training-create.json");
    body["request"]["object"]["kind"] = json!("ConfigMap");
    body["request"]["object"]["apiVersion"] = json!("v1");
    let review = parse_review(&serde_json::to_vec(&body).unwrap()).unwrap();
    assert_eq!(triples(images(&review).unwrap().images()), GPU_POD.to_vec());
}

#[test]
fn every_version_of_a_workload_kind_is_read() {
    // matchPolicy: Equivalent normally converts to the registered version; an older one must not
    // slip through as "not a workload".
    let mut body = fixture_json("cronjob-create.json");
    body["request"]["kind"]["version"] = json!("v1beta1");
    let review = parse_review(&serde_json::to_vec(&body).unwrap()).unwrap();
    assert_eq!(images(&review).unwrap().images().len(), 1);
}

#[test]
fn update_without_old_object_verifies_everything() {
    let mut body = fixture_json("deployment-replicas-update.json");
    body["request"]["oldObject"] = Value::Null;
    let review = parse_review(&serde_json::to_vec(&body).unwrap()).unwrap();
    let workload = images(&review).unwrap();
    assert_eq!(
        triples(&images_to_verify(&review, &workload)),
        INFERENCE.to_vec()
    );
}

#[test]
fn pod_image_update_in_place_is_verified() {
    // Pod container images are mutable: `kubectl set image pod/…` must be checked.
    let old = fixture_json("pod-gpu-training-create.json")["request"]["object"].clone();
    let mut new = old.clone();
    new["spec"]["initContainers"][0]["image"] =
        json!("registry.ai-team.internal/ml/dataset-fetcher:1.5.0");
    let mut body = fixture_json("pod-gpu-training-create.json");
    body["request"]["operation"] = json!("UPDATE");
    body["request"]["object"] = new;
    body["request"]["oldObject"] = old;
    let review = parse_review(&serde_json::to_vec(&body).unwrap()).unwrap();
    let workload = images(&review).unwrap();
    assert_eq!(
        triples(&images_to_verify(&review, &workload)),
        vec![(
            INIT,
            "fetch-dataset",
            "registry.ai-team.internal/ml/dataset-fetcher:1.5.0"
        )]
    );
}

#[test]
fn legacy_ephemeral_containers_kind_is_read() {
    // Before Kubernetes 1.22 the subresource took an `EphemeralContainers` object.
    let object = |debuggers: Value| {
        json!({"kind": "EphemeralContainers", "apiVersion": "v1",
               "metadata": {"name": "pytorch-ddp-llama-worker-0", "namespace": "ml-prod"},
               "ephemeralContainers": debuggers})
    };
    let body = json!({
        "kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": "e1", "kind": {"group": "", "version": "v1", "kind": "EphemeralContainers"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "subResource": "ephemeralcontainers", "operation": "UPDATE",
            "object": object(json!([{"name": "dbg", "image": BUSYBOX}])),
            "oldObject": object(json!([])),
        }
    });
    let review = parse_review(&serde_json::to_vec(&body).unwrap()).unwrap();
    let workload = images(&review).unwrap();
    assert_eq!(
        triples(&images_to_verify(&review, &workload)),
        vec![(EPH, "dbg", BUSYBOX)]
    );
    let Workload::Pods(pods) = workload else {
        panic!()
    };
    assert_eq!(
        pods.image_pointer(&pods.images[0]),
        "/ephemeralContainers/0/image"
    );
}

#[test]
fn image_pointers_address_the_image_fields() {
    for (name, pointer) in [
        ("pod-gpu-training-create.json", "/spec/containers/0/image"),
        (
            "deployment-create.json",
            "/spec/template/spec/containers/0/image",
        ),
        (
            "cronjob-create.json",
            "/spec/jobTemplate/spec/template/spec/containers/0/image",
        ),
    ] {
        let review = review_of(name);
        let Workload::Pods(pods) = images(&review).unwrap() else {
            panic!("{name}")
        };
        for image in &pods.images {
            let at = pods.image_pointer(image);
            assert_eq!(
                review.object.as_ref().unwrap().pointer(&at),
                Some(&json!(image.image))
            );
        }
        let first_main = pods.images.iter().find(|c| c.list == MAIN).unwrap();
        assert_eq!(pods.image_pointer(first_main), pointer);
    }
}

// ---- Malformed requests: each has its own error. ----

/// The GPU Pod fixture with `edit` applied.
fn edited(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut body = fixture_json("pod-gpu-training-create.json");
    edit(&mut body);
    serde_json::to_vec(&body).unwrap()
}

fn remove(body: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    body.pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove(key);
}

#[test]
fn malformed_requests_get_their_own_error() {
    type Check = fn(&ReviewError) -> bool;
    let cases: Vec<(&str, Vec<u8>, Check)> = vec![
        ("empty body", Vec::new(), |e| {
            matches!(e, ReviewError::NotJson(_))
        }),
        (
            "truncated",
            fixture("pod-gpu-training-create.json")[..500].to_vec(),
            |e| matches!(e, ReviewError::NotJson(_)),
        ),
        (
            "yaml",
            b"apiVersion: admission.k8s.io/v1\nkind: AdmissionReview\n".to_vec(),
            |e| matches!(e, ReviewError::NotJson(_)),
        ),
        (
            "two documents",
            [
                fixture("deployment-create.json"),
                fixture("deployment-create.json"),
            ]
            .concat(),
            |e| matches!(e, ReviewError::NotJson(_)),
        ),
        ("array", b"[]".to_vec(), |e| {
            matches!(e, ReviewError::NotAnObject(JsonType::Array))
        }),
        ("string", b"\"AdmissionReview\"".to_vec(), |e| {
            matches!(e, ReviewError::NotAnObject(JsonType::String))
        }),
        (
            "v1beta1",
            edited(|b| b["apiVersion"] = json!("admission.k8s.io/v1beta1")),
            |e| matches!(e, ReviewError::ApiVersion(_)),
        ),
        ("no apiVersion", edited(|b| remove(b, "/apiVersion")), |e| {
            matches!(e, ReviewError::ApiVersion(_))
        }),
        (
            "apiVersion case",
            edited(|b| {
                let v = b["apiVersion"].take();
                remove(b, "/apiVersion");
                b["APIVersion"] = v;
            }),
            |e| matches!(e, ReviewError::ApiVersion(_)),
        ),
        (
            "wrong kind",
            edited(|b| b["kind"] = json!("AdmissionResponse")),
            |e| matches!(e, ReviewError::Kind(_)),
        ),
        ("no request", edited(|b| remove(b, "/request")), |e| {
            matches!(e, ReviewError::MissingRequest)
        }),
        ("request array", edited(|b| b["request"] = json!([])), |e| {
            matches!(
                e,
                ReviewError::FieldType {
                    field: "request",
                    found: JsonType::Array,
                    ..
                }
            )
        }),
        ("no uid", edited(|b| remove(b, "/request/uid")), |e| {
            matches!(e, ReviewError::MissingUid)
        }),
        (
            "empty uid",
            edited(|b| b["request"]["uid"] = json!("")),
            |e| matches!(e, ReviewError::EmptyUid),
        ),
        (
            "numeric uid",
            edited(|b| b["request"]["uid"] = json!(7)),
            |e| {
                matches!(
                    e,
                    ReviewError::FieldType {
                        field: "request.uid",
                        found: JsonType::Number,
                        ..
                    }
                )
            },
        ),
        (
            "no operation",
            edited(|b| remove(b, "/request/operation")),
            |e| matches!(e, ReviewError::MissingOperation),
        ),
        (
            "unknown operation",
            edited(|b| b["request"]["operation"] = json!("PATCH")),
            |e| matches!(e, ReviewError::UnknownOperation(op) if op == "PATCH"),
        ),
        (
            "no request.kind",
            edited(|b| remove(b, "/request/kind")),
            |e| matches!(e, ReviewError::MissingField("request.kind")),
        ),
        (
            "empty kind.kind",
            edited(|b| b["request"]["kind"]["kind"] = json!("")),
            |e| matches!(e, ReviewError::MissingField("request.kind.kind")),
        ),
        (
            "resource is a string",
            edited(|b| b["request"]["resource"] = json!("pods")),
            |e| {
                matches!(
                    e,
                    ReviewError::FieldType {
                        field: "request.resource",
                        ..
                    }
                )
            },
        ),
        (
            "object is a string",
            edited(|b| b["request"]["object"] = json!("{}")),
            |e| {
                matches!(
                    e,
                    ReviewError::ObjectNotObject {
                        field: "object",
                        found: JsonType::String
                    }
                )
            },
        ),
        (
            "oldObject is a number",
            edited(|b| b["request"]["oldObject"] = json!(0)),
            |e| {
                matches!(
                    e,
                    ReviewError::ObjectNotObject {
                        field: "oldObject",
                        found: JsonType::Number
                    }
                )
            },
        ),
        (
            "dryRun is a string",
            edited(|b| b["request"]["dryRun"] = json!("false")),
            |e| {
                matches!(
                    e,
                    ReviewError::FieldType {
                        field: "request.dryRun",
                        ..
                    }
                )
            },
        ),
        (
            "duplicate uid",
            {
                let text = String::from_utf8(fixture("pod-gpu-training-create.json")).unwrap();
                text.replacen(r#""uid":"0df28fbd"#, r#""uid":"x","uid":"0df28fbd"#, 1)
                    .into_bytes()
            },
            |e| matches!(e, ReviewError::Undecodable(_)),
        ),
    ];
    for (what, body, check) in cases {
        let err = parse_review(&body).unwrap_err();
        assert!(check(&err), "{what}: {err:?}");
        assert!(!err.is_about_object(), "{what}");
        let message = err.to_string();
        assert!(
            !message.is_empty() && !message.contains('\n'),
            "{what}: {message}"
        );
    }
}

#[test]
fn object_errors_name_the_container_and_deny() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "no image",
            edited(|b| remove(b, "/request/object/spec/containers/0/image")),
            r#"container "trainer" (spec.containers[0]) has no image"#,
        ),
        (
            "empty image",
            edited(|b| b["request"]["object"]["spec"]["initContainers"][0]["image"] = json!("")),
            r#"container "fetch-dataset" (spec.initContainers[0]) has no image"#,
        ),
        (
            "numeric image",
            edited(|b| b["request"]["object"]["spec"]["containers"][1]["image"] = json!(3)),
            r#"container "metrics-exporter" (spec.containers[1]) has an image that is a number, not a string"#,
        ),
        (
            "nameless container",
            edited(|b| remove(b, "/request/object/spec/containers/1/name")),
            "spec.containers[1] has no name",
        ),
        (
            "containers not a list",
            edited(|b| b["request"]["object"]["spec"]["containers"] = json!({"trainer": PYTORCH})),
            "spec.containers must be an array of containers, not an object",
        ),
        (
            "no spec",
            edited(|b| remove(b, "/request/object/spec")),
            "the Pod has no pod spec: spec is missing or not an object",
        ),
        (
            "no object on CREATE",
            edited(|b| b["request"]["object"] = Value::Null),
            "request.object is missing from a CREATE of a Pod",
        ),
    ];
    for (what, body, message) in cases {
        let review = parse_review(&body).unwrap();
        let err = images(&review).unwrap_err();
        assert!(err.is_about_object(), "{what}");
        assert_eq!(err.to_string(), message, "{what}");
        // The handler answers with a denial, which the API server accepts.
        let response = denied(&review.uid, err.to_string(), vec![], BTreeMap::new());
        let outcome = apiserver_check(&response, &review.uid, Hook::Validating).unwrap();
        assert!(!outcome.allowed);
    }

    // A malformed template container in a Deployment names the template path.
    let mut body = fixture_json("deployment-create.json");
    body["request"]["object"]["spec"]["template"]["spec"]["containers"][1]["image"] = json!(null);
    let review = parse_review(&serde_json::to_vec(&body).unwrap()).unwrap();
    assert_eq!(
        images(&review).unwrap_err().to_string(),
        r#"container "otel-agent" (spec.template.spec.containers[1]) has no image"#
    );
}

#[test]
fn delete_never_fails_on_the_object() {
    let mut body = fixture_json("deployment-delete.json");
    body["request"]["oldObject"]["spec"]["template"]["spec"]["containers"] = json!("garbage");
    let review = parse_review(&serde_json::to_vec(&body).unwrap()).unwrap();
    let workload = images(&review).unwrap();
    assert!(images_to_verify(&review, &workload).is_empty());
}

// ---- Responses, checked as kube-apiserver checks them. ----

#[derive(Debug, Clone, Copy, PartialEq)]
enum Hook {
    Validating,
    Mutating,
}

#[derive(Debug)]
struct Outcome {
    allowed: bool,
    /// What the user sees for a denial.
    user_message: Option<String>,
    code: Option<i64>,
    warnings: Vec<String>,
    audit: BTreeMap<String, String>,
    patch: Option<Value>,
}

/// `VerifyAdmissionResponse` (v1) plus what the dispatcher does with the result: the body goes
/// over the wire as bytes and is decoded case-sensitively; invalid warnings and audit keys are
/// dropped by the API server, so here they are errors.
fn apiserver_check(response: &Value, request_uid: &str, hook: Hook) -> Result<Outcome, String> {
    let bytes = serde_json::to_vec(response).map_err(|e| e.to_string())?;
    let review: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if review.get("apiVersion") != Some(&json!("admission.k8s.io/v1"))
        || review.get("kind") != Some(&json!("AdmissionReview"))
    {
        return Err(format!(
            "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got {review}"
        ));
    }
    let response = review
        .get("response")
        .ok_or("webhook response was absent")?;
    let uid = response
        .get("uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if uid != request_uid {
        return Err(format!(
            "expected response.uid={request_uid:?}, got {uid:?}"
        ));
    }
    let patch = response.get("patch");
    let patch_type = response.get("patchType");
    let patch = match hook {
        Hook::Validating => {
            if patch.is_some() || patch_type.is_some() {
                return Err("validating webhook may not return patch or patchType".into());
            }
            None
        }
        Hook::Mutating => match (patch, patch_type) {
            (None, None) => None,
            (Some(p), Some(t)) => {
                if t != "JSONPatch" {
                    return Err(format!("unsupported patch type {t}"));
                }
                let raw = B64
                    .decode(p.as_str().ok_or("patch is not a string")?)
                    .map_err(|e| e.to_string())?;
                let ops: Value = serde_json::from_slice(&raw).map_err(|e| e.to_string())?;
                if !ops.is_array() {
                    return Err("patch is not a JSON array".into());
                }
                Some(ops)
            }
            _ => return Err("patch and patchType must come together".into()),
        },
    };
    // Case-sensitive: a missing or misspelt `allowed` is a denial.
    let allowed = response
        .get("allowed")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let (user_message, code) = if allowed {
        (None, None)
    } else {
        let status = response.get("status").cloned().unwrap_or(Value::Null);
        let code = status
            .get("code")
            .and_then(Value::as_i64)
            .filter(|c| *c >= 400)
            .unwrap_or(400);
        let message = status
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        (
            Some(format!(
                "admission webhook {WEBHOOK:?} denied the request: {message}"
            )),
            Some(code),
        )
    };
    let mut warnings = Vec::new();
    let mut total = 0;
    for w in response
        .get("warnings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let text = w.as_str().ok_or("warning is not a string")?;
        if text.chars().any(char::is_control) {
            return Err(format!(
                "warning with a control character would be dropped: {text:?}"
            ));
        }
        let runes = text.chars().count();
        if runes > MAX_WARNING_CHARS {
            return Err(format!("warning of {runes} runes would be cut"));
        }
        total += runes;
        warnings.push(text.to_owned());
    }
    if total > MAX_WARNINGS_TOTAL_CHARS {
        return Err(format!("{total} runes of warnings exceed the 4096 budget"));
    }
    let mut audit = BTreeMap::new();
    for (k, v) in response
        .get("auditAnnotations")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let key = format!("{WEBHOOK}/{k}");
        if !check_key_format(&key) {
            return Err(format!("invalid audit annotation key {key:?}"));
        }
        audit.insert(
            k.clone(),
            v.as_str()
                .ok_or("audit annotation value is not a string")?
                .to_owned(),
        );
    }
    Ok(Outcome {
        allowed,
        user_message,
        code,
        warnings,
        audit,
        patch,
    })
}

/// `checkKeyFormat` in `apiserver/pkg/admission/attributes.go`: exactly one `/`, and a qualified
/// name (DNS subdomain prefix, name part of 1-63 `[A-Za-z0-9-_.]` starting and ending alphanumeric).
fn check_key_format(key: &str) -> bool {
    let parts: Vec<&str> = key.split('/').collect();
    let [prefix, name] = parts.as_slice() else {
        return false;
    };
    let dns_label_ok = prefix.len() <= 253
        && prefix.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    dns_label_ok && name_ok
}

#[test]
fn allowed_response_has_the_exact_envelope() {
    let uid = review_of("deployment-create.json").uid;
    let response = allowed(&uid, vec![], BTreeMap::new());
    assert_eq!(
        response,
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
               "response": {"uid": uid, "allowed": true}})
    );
    let outcome = apiserver_check(&response, &uid, Hook::Validating).unwrap();
    assert!(outcome.allowed);
    // Another request's uid is refused by the API server.
    assert!(apiserver_check(&response, "another-uid", Hook::Validating).is_err());
}

#[test]
fn denial_end_to_end_names_every_failing_image_in_spec_order() {
    let review = review_of("pod-gpu-training-create.json");
    let workload = images(&review).unwrap();
    // Verification results arrive in any order; failures are collected in spec order.
    let failures: Vec<ImageFailure> = images_to_verify(&review, &workload)
        .into_iter()
        .filter(|c| c.image != DCGM)
        .map(|c| ImageFailure {
            reason: match c.container.as_str() {
                "trainer" => "no trust data for tag \"v2.9\"".into(),
                _ => {
                    "timed out fetching trust data from notary.ai-team.internal:4443 (fail closed)"
                        .into()
                }
            },
            image: c.image,
            container: c.container,
            policy: "pytorch-gpu-prod".into(),
        })
        .collect();
    let message = denial_message(&failures);
    assert_eq!(
        message,
        "image \"registry.ai-team.internal/ml/dataset-fetcher:1.4.2\" (container \"fetch-dataset\") denied by policy \"pytorch-gpu-prod\": timed out fetching trust data from notary.ai-team.internal:4443 (fail closed); \
         image \"registry.ai-team.internal/ml/pytorch-cuda:v2.9\" (container \"trainer\") denied by policy \"pytorch-gpu-prod\": no trust data for tag \"v2.9\""
    );
    let mut audit = BTreeMap::new();
    audit.insert("denied-images".to_owned(), "2".to_owned());
    let response = denied(&review.uid, message.clone(), vec![], audit);
    assert_eq!(
        response["response"]["status"],
        json!({"code": 403, "reason": "Forbidden", "message": message})
    );
    let outcome = apiserver_check(&response, &review.uid, Hook::Validating).unwrap();
    assert!(!outcome.allowed);
    assert_eq!(outcome.code, Some(403));
    assert_eq!(
        outcome.user_message.unwrap(),
        format!("admission webhook \"{WEBHOOK}\" denied the request: {message}")
    );
    assert_eq!(outcome.audit["denied-images"], "2");
}

#[test]
fn specs_example_denial_is_exact() {
    let failure = ImageFailure {
        image: PYTORCH.into(),
        container: "trainer".into(),
        policy: "pytorch-gpu-prod".into(),
        reason: "no trust data for tag \"v2.9\"".into(),
    };
    assert_eq!(
        denial_message(&[failure]),
        r#"image "registry.ai-team.internal/ml/pytorch-cuda:v2.9" (container "trainer") denied by policy "pytorch-gpu-prod": no trust data for tag "v2.9""#
    );
}

#[test]
fn warnings_fit_the_apiserver_limits() {
    let uid = "w-1";
    // One 300-character warning is cut to 256 with an ellipsis.
    let long = format!(
        "image {PYTORCH} (container \"trainer\"): {}",
        "x".repeat(300)
    );
    let response = allowed(uid, vec![long.clone()], BTreeMap::new());
    let outcome = apiserver_check(&response, uid, Hook::Validating).unwrap();
    assert_eq!(outcome.warnings.len(), 1);
    assert_eq!(outcome.warnings[0].chars().count(), 256);
    assert!(outcome.warnings[0].ends_with('…'));
    assert!(long.starts_with(outcome.warnings[0].trim_end_matches('…')));

    // 40 warnings of 150 characters (6000 in all): a prefix that fits, then "… and N more".
    let many: Vec<String> = (0..40)
        .map(|i| format!("warn mode: image registry.ai-team.internal/ml/model-{i:02}:v1 is not signed by trust root ml-platform; pad {}", "-".repeat(40)))
        .collect();
    assert!(
        many.iter()
            .all(|w| w.chars().count() == many[0].chars().count())
    );
    let per = many[0].chars().count();
    let response = allowed(uid, many.clone(), BTreeMap::new());
    let outcome = apiserver_check(&response, uid, Hook::Validating).unwrap();
    let kept = outcome.warnings.len() - 1;
    assert_eq!(outcome.warnings[..kept], many[..kept]);
    assert_eq!(outcome.warnings[kept], format!("… and {} more", 40 - kept));
    assert!(kept * per + outcome.warnings[kept].chars().count() <= MAX_WARNINGS_TOTAL_CHARS);
    assert!(
        (kept + 1) * per + format!("… and {} more", 40 - kept - 1).chars().count()
            > MAX_WARNINGS_TOTAL_CHARS
    );

    // 40 warnings of 300 characters: each cut, and still within the budget.
    let long_many: Vec<String> = (0..40)
        .map(|i| format!("{i:02}{}", "y".repeat(298)))
        .collect();
    let response = denied(uid, "no".into(), long_many, BTreeMap::new());
    let outcome = apiserver_check(&response, uid, Hook::Validating).unwrap();
    assert_eq!(outcome.warnings.len(), 16);
    assert_eq!(outcome.warnings.last().unwrap(), "… and 25 more");

    // Control characters would make the API server drop the warning silently.
    let response = allowed(
        uid,
        vec!["image a\nimage b\tc\u{1b}[31m".into()],
        BTreeMap::new(),
    );
    let outcome = apiserver_check(&response, uid, Hook::Validating).unwrap();
    assert_eq!(outcome.warnings, vec!["image a image b c [31m".to_owned()]);
}

#[test]
fn audit_annotation_keys_survive_the_apiserver() {
    let mut audit = BTreeMap::new();
    audit.insert(
        "would-deny".to_owned(),
        "image … (container \"trainer\")".to_owned(),
    );
    audit.insert("policy/pytorch-gpu-prod".to_owned(), "audit".to_owned());
    audit.insert("Trust Root: ml-platform".to_owned(), "untrusted".to_owned());
    audit.insert("///".to_owned(), "dropped".to_owned());
    let response = allowed("a-1", vec![], audit);
    let outcome = apiserver_check(&response, "a-1", Hook::Validating).unwrap();
    let keys: Vec<&str> = outcome.audit.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        vec![
            "Trust-Root--ml-platform",
            "policy-pytorch-gpu-prod",
            "would-deny"
        ]
    );
}

#[test]
fn patch_response_is_a_valid_mutating_answer() {
    let uid = review_of("deployment-create.json").uid;
    let ops = json!([{"op": "replace", "path": "/spec/template/spec/containers/0/image",
                      "value": format!("{VLLM}@sha256:{}", "ab".repeat(32))}]);
    let response = patch_response(&uid, ops.clone(), Vec::new(), BTreeMap::new());
    assert_eq!(response["response"]["patchType"], "JSONPatch");
    let outcome = apiserver_check(&response, &uid, Hook::Mutating).unwrap();
    assert!(outcome.allowed);
    assert_eq!(outcome.patch.as_ref(), Some(&ops));
    // …and it is exactly what a validating webhook must never send.
    assert!(apiserver_check(&response, &uid, Hook::Validating).is_err());

    // Nothing to pin: no patch at all.
    let response = patch_response(&uid, json!([]), Vec::new(), BTreeMap::new());
    assert!(response["response"].get("patch").is_none());
    assert!(response["response"].get("patchType").is_none());
    apiserver_check(&response, &uid, Hook::Validating).unwrap();

    // Warnings and audit annotations (warn and audit modes) travel with a patch too.
    let audit = BTreeMap::from([("would-deny".to_owned(), "x".to_owned())]);
    let response = patch_response(&uid, ops, vec!["unsigned image".to_owned()], audit);
    assert_eq!(response["response"]["warnings"], json!(["unsigned image"]));
    assert_eq!(response["response"]["auditAnnotations"]["would-deny"], "x");
    apiserver_check(&response, &uid, Hook::Mutating).unwrap();
}

#[test]
fn validating_responses_never_carry_a_patch() {
    let warnings = vec!["w".to_owned()];
    for response in [
        allowed("p", warnings.clone(), BTreeMap::new()),
        denied("p", "no".into(), warnings.clone(), BTreeMap::new()),
        denied("p", String::new(), vec![], BTreeMap::new()),
    ] {
        let r = &response["response"];
        assert!(r.get("patch").is_none() && r.get("patchType").is_none());
        apiserver_check(&response, "p", Hook::Validating).unwrap();
    }
}

// ---- Never panic. ----

/// JSON values biased towards the field names the parser looks at, so random values reach deep.
fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        3 => prop::sample::select(vec![
            "apiVersion", "kind", "request", "uid", "operation", "object", "oldObject", "spec",
            "template", "jobTemplate", "containers", "initContainers", "ephemeralContainers",
            "name", "image", "group", "version", "resource", "subResource", "namespace", "dryRun",
            "userInfo", "username",
        ])
        .prop_map(str::to_owned),
        1 => "[a-zA-Z]{0,6}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop::sample::select(vec![
            "admission.k8s.io/v1",
            "AdmissionReview",
            "CREATE",
            "UPDATE",
            "DELETE",
            "CONNECT",
            "Pod",
            "Deployment",
            "CronJob",
            "apps",
            "batch",
            "",
            "v1",
            "busybox",
            "ephemeralcontainers",
        ])
        .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 96, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer in `value`.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                pointers(v, p.clone(), out);
                out.push(p);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let p = format!("{at}/{i}");
                pointers(v, p.clone(), out);
                out.push(p);
            }
        }
        _ => {}
    }
}

const FIXTURES: [&str; 16] = [
    "pod-gpu-training-create.json",
    "deployment-create.json",
    "deployment-replicas-update.json",
    "deployment-image-update.json",
    "deployment-scale-subresource-update.json",
    "deployment-delete.json",
    "replicaset-create.json",
    "statefulset-create.json",
    "daemonset-create.json",
    "job-create-dry-run.json",
    "cronjob-create.json",
    "replicationcontroller-create.json",
    "pod-ephemeralcontainers-update.json",
    "pod-ephemeralcontainers-update-no-resource.json",
    "pod-exec-connect.json",
    "configmap-create.json",
];

/// The whole pipeline, with the invariants that must hold whenever it succeeds.
fn run_pipeline(body: &[u8]) {
    let Ok(review) = parse_review(body) else {
        return;
    };
    assert!(!review.uid.is_empty());
    match images(&review) {
        Ok(workload) => {
            let to_verify = images_to_verify(&review, &workload);
            for c in &to_verify {
                assert!(workload.images().contains(c));
                assert!(!c.image.is_empty() && !c.container.is_empty());
            }
            if review.operation == Operation::Create {
                assert_eq!(to_verify, workload.images());
            }
            let response = allowed(&review.uid, vec![], BTreeMap::new());
            apiserver_check(&response, &review.uid, Hook::Validating).unwrap();
        }
        Err(e) => {
            assert!(e.is_about_object(), "{e:?}");
            let response = denied(&review.uid, e.to_string(), vec![], BTreeMap::new());
            apiserver_check(&response, &review.uid, Hook::Validating).unwrap();
        }
    }
}

#[test]
fn every_fixture_is_listed() {
    let on_disk = std::fs::read_dir(fixture_path("")).unwrap().filter(|e| {
        e.as_ref()
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "json")
    });
    assert_eq!(on_disk.count(), FIXTURES.len());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        run_pipeline(&body);
    }

    #[test]
    fn fixture_bytes_cut_or_flipped_never_panic(
        which in 0..FIXTURES.len(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()
    ) {
        let mut body = fixture(FIXTURES[which]);
        let i = at.index(body.len());
        if cut { body.truncate(i) } else { body[i] = byte }
        run_pipeline(&body);
    }

    #[test]
    fn json_shaped_values_never_panic(value in arb_json()) {
        run_pipeline(&serde_json::to_vec(&value).unwrap());
        let wrapped = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": value});
        run_pipeline(&serde_json::to_vec(&wrapped).unwrap());
    }

    #[test]
    fn fixtures_with_any_part_replaced_never_panic(
        which in 0..FIXTURES.len(), at in any::<prop::sample::Index>(), value in arb_json()
    ) {
        let mut body = fixture_json(FIXTURES[which]);
        let mut all = Vec::new();
        pointers(&body, String::new(), &mut all);
        let pointer = &all[at.index(all.len())];
        *body.pointer_mut(pointer).unwrap() = value;
        run_pipeline(&serde_json::to_vec(&body).unwrap());
    }

    #[test]
    fn sanitised_warnings_always_fit(warnings in prop::collection::vec(".{0,400}", 0..60)) {
        let out = sanitize_warnings(warnings);
        let total: usize = out.iter().map(|w| w.chars().count()).sum();
        prop_assert!(total <= MAX_WARNINGS_TOTAL_CHARS);
        for w in &out {
            prop_assert!(!w.is_empty() && w.chars().count() <= MAX_WARNING_CHARS);
            prop_assert!(!w.chars().any(char::is_control));
        }
    }

    #[test]
    fn sanitised_audit_keys_are_always_valid(keys in prop::collection::vec(".{0,80}", 0..10)) {
        let annotations: BTreeMap<String, String> = keys.into_iter().map(|k| (k, "v".to_owned())).collect();
        for key in sanitize_audit_annotations(annotations).keys() {
            prop_assert!(check_key_format(&format!("{WEBHOOK}/{key}")), "{key:?}");
        }
    }
}

/// signgate's bounded parser against kube's `AdmissionReview<DynamicObject>` (kube-core 5,
/// feature `admission`) on every captured review here: ours and Connaisseur's (commit 0c40cab,
/// Apache-2.0, `tests/fixtures/admission/connaisseur/`). signgate must decide (or refuse with a
/// reason) every review kube's type accepts, and where kube's type refuses a review the API
/// server really sends, signgate still answers it with its uid. The table is printed for the
/// closing note (`cargo test --test admission kube -- --nocapture`).
#[test]
fn the_bounded_parser_decides_every_review_kubes_type_accepts_and_more() {
    use kube::core::DynamicObject;
    use kube::core::admission::{AdmissionRequest, AdmissionReview};
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in ["", "connaisseur"] {
        for e in std::fs::read_dir(fixture_path(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "json") {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 45, "{}", files.len());
    let (mut both, mut neither) = (0, 0);
    let (mut only_ours, mut only_kube) = (Vec::<String>::new(), Vec::<String>::new());
    for f in &files {
        let body = std::fs::read(f).unwrap();
        let ours = parse_review(&body).map(|r| r.uid);
        let theirs = serde_json::from_slice::<AdmissionReview<DynamicObject>>(&body)
            .map_err(|e| e.to_string())
            .and_then(|r| {
                TryInto::<AdmissionRequest<DynamicObject>>::try_into(r).map_err(|e| e.to_string())
            })
            .map(|r| r.uid);
        let name = f
            .strip_prefix(fixture_path(""))
            .unwrap()
            .display()
            .to_string();
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, b, "{name}");
                both += 1;
            }
            (Ok(_), Err(e)) => only_ours.push(format!("{name}: kube: {e}")),
            (Err(e), Ok(_)) => only_kube.push(format!("{name}: signgate: {e}")),
            (Err(_), Err(_)) => neither += 1,
        }
    }
    eprintln!(
        "{} reviews: both parse {both}, only signgate {}, only kube {}, neither {neither}",
        files.len(),
        only_ours.len(),
        only_kube.len()
    );
    for l in only_ours.iter().chain(&only_kube) {
        eprintln!("  {l}");
    }
    // signgate refuses admission.k8s.io/v1beta1 on purpose (the chart lists only v1 in
    // admissionReviewVersions, so the API server never sends it); nothing else kube's type takes
    // may be refused.
    only_kube.retain(|l| !l.contains("\"admission.k8s.io/v1beta1\""));
    assert!(only_kube.is_empty(), "{only_kube:#?}");
    // A review the API server sends without `request.resource` (an ephemeral-container UPDATE, as
    // Connaisseur captured it) does not parse into kube's type, so its uid would be lost.
    assert!(
        only_ours
            .iter()
            .any(|l| l.starts_with("pod-ephemeralcontainers-update-no-resource.json")),
        "{only_ours:#?}"
    );
}
