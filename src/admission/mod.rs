//! HTTP ↔ domain for the admission webhook, with no IO: an `admission.k8s.io/v1` AdmissionReview
//! in, the container images it would run out, and a decision back out as an AdmissionReview.
//!
//! The flow a handler follows:
//! 1. [`parse_review`] the body. An error means the request itself is malformed: answer HTTP 400
//!    with the error's text.
//! 2. [`images`] of the reviewed object. [`Workload::Other`] means the kind runs no containers:
//!    allow it. An error here is about the object (say, a container without an image) while the
//!    review itself is sound: answer with [`denied`], not with a 400, because kube-apiserver treats
//!    a non-2xx answer as a failed call and hands the decision to `failurePolicy`, which fails open
//!    under `Ignore` ([`ReviewError::is_about_object`] tells the two apart).
//! 3. [`images_to_verify`]: what this operation adds or changes; verify exactly those.
//! 4. Answer with [`allowed`] or [`denied`] (message from [`crate::policy::denial_message`]), or [`patch_response`]
//!    on the optional mutating endpoint. Warnings and audit annotations are made to fit what the API
//!    server accepts.

mod response;
mod review;
mod workload;

pub use response::{
    MAX_AUDIT_KEY_CHARS, MAX_WARNING_CHARS, MAX_WARNINGS_TOTAL_CHARS, allowed, denied,
    patch_response, sanitize_audit_annotations, sanitize_warnings,
};
pub use review::{
    API_VERSION, GroupVersionKind, GroupVersionResource, JsonType, KIND, Operation, Review,
    ReviewError, parse_review,
};
pub use workload::{
    ContainerImage, ContainerList, PodWorkload, Workload, WorkloadKind, image_in_container, images,
    images_to_verify,
};
