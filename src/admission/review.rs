//! Parsing an `admission.k8s.io/v1` AdmissionReview request.
//!
//! Only the fields signgate uses are decoded; everything else (`requestKind`, `options`,
//! `userInfo.groups`, …) is skipped without being built. Every field is read through a lenient
//! shape first, so a wrong JSON type becomes a precise [`ReviewError`] instead of a generic serde
//! message, and no input can panic.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// The only AdmissionReview version signgate accepts and answers in.
pub const API_VERSION: &str = "admission.k8s.io/v1";
/// The envelope kind of requests and responses.
pub const KIND: &str = "AdmissionReview";

/// A decoded admission request: what a decision needs, nothing more.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    /// `request.uid`, echoed in the response (non-empty).
    pub uid: String,
    /// `request.kind`: the kind of the object, as the webhook registered for it. Decides how the
    /// object is read; the object's own `kind` field is never trusted for that.
    pub kind: GroupVersionKind,
    /// `request.resource`; `None` when absent (Connaisseur's captured ephemeral-container UPDATE
    /// has none). Nothing in a decision needs it: the object is read by `request.kind`.
    pub resource: Option<GroupVersionResource>,
    /// `request.subResource`, e.g. `ephemeralcontainers`, `status`, `scale`; `None` when empty.
    pub sub_resource: Option<String>,
    /// `request.operation`.
    pub operation: Operation,
    /// `request.namespace`; `None` for cluster-scoped objects (or when empty).
    pub namespace: Option<String>,
    /// `request.name`; `None` when empty (a CREATE with `generateName`).
    pub name: Option<String>,
    /// `request.dryRun`; `false` when absent.
    pub dry_run: bool,
    /// `request.object`: the new object for CREATE/UPDATE, the options object for CONNECT, `None`
    /// for DELETE. Always a JSON object when present.
    pub object: Option<Value>,
    /// `request.oldObject`: the current object for UPDATE and DELETE. Always a JSON object when
    /// present.
    pub old_object: Option<Value>,
    /// `request.userInfo.username`, for logs.
    pub user: Option<String>,
}

/// `request.kind`. `group` is empty for the core API group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupVersionKind {
    /// The API group, e.g. `apps`; empty for the core group.
    pub group: String,
    /// The API version, e.g. `v1`.
    pub version: String,
    /// The kind, e.g. `Deployment`; never empty.
    pub kind: String,
}

/// `request.resource`. `group` is empty for the core API group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupVersionResource {
    /// The API group, e.g. `apps`; empty for the core group.
    pub group: String,
    /// The API version, e.g. `v1`.
    pub version: String,
    /// The resource, plural and lower-case, e.g. `deployments`.
    pub resource: String,
}

/// `request.operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `CREATE`: `object` is the new object.
    Create,
    /// `UPDATE`: `object` is the new object, `oldObject` the current one.
    Update,
    /// `DELETE`: `oldObject` is the object being deleted.
    Delete,
    /// `CONNECT` (exec, attach, port-forward, proxy): `object` is the options object.
    Connect,
}

impl Operation {
    /// The wire name (`CREATE`, …), also the metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }

    fn parse(s: &str) -> Option<Operation> {
        match s {
            "CREATE" => Some(Operation::Create),
            "UPDATE" => Some(Operation::Update),
            "DELETE" => Some(Operation::Delete),
            "CONNECT" => Some(Operation::Connect),
            _ => None,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The type of a JSON value, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsonType {
    /// `null`.
    Null,
    /// `true` or `false`.
    Boolean,
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

impl JsonType {
    /// The type of `value`.
    pub fn of(value: &Value) -> JsonType {
        match value {
            Value::Null => JsonType::Null,
            Value::Bool(_) => JsonType::Boolean,
            Value::Number(_) => JsonType::Number,
            Value::String(_) => JsonType::String,
            Value::Array(_) => JsonType::Array,
            Value::Object(_) => JsonType::Object,
        }
    }
}

impl fmt::Display for JsonType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonType::Null => "null",
            JsonType::Boolean => "a boolean",
            JsonType::Number => "a number",
            JsonType::String => "a string",
            JsonType::Array => "an array",
            JsonType::Object => "an object",
        })
    }
}

/// Why a request is not an AdmissionReview signgate can decide on.
///
/// Variants from [`parse_review`] mean the request is malformed (answer HTTP 400). Variants from
/// [`crate::admission::images`] ([`ReviewError::is_about_object`]) mean the review is sound but the
/// object it carries cannot be checked: deny it.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The body is not JSON at all (syntax error, truncated, trailing garbage, too deeply nested).
    #[error("the request body is not valid JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// The body is JSON but cannot be decoded (for example a duplicated field).
    #[error("the request body is not a valid AdmissionReview: {0}")]
    Undecodable(#[source] serde_json::Error),
    /// The body is a JSON value other than an object.
    #[error("the request body is {0}, not an AdmissionReview object")]
    NotAnObject(JsonType),
    /// `apiVersion` is not `admission.k8s.io/v1`.
    #[error(
        "apiVersion is {0}, but signgate accepts only admission.k8s.io/v1 (list v1 first in the webhook's admissionReviewVersions)"
    )]
    ApiVersion(String),
    /// `kind` is not `AdmissionReview`.
    #[error("kind is {0}, but an AdmissionReview is expected")]
    Kind(String),
    /// There is no `request` (or it is null).
    #[error("the AdmissionReview has no request")]
    MissingRequest,
    /// `request.uid` is absent or null.
    #[error("request.uid is missing")]
    MissingUid,
    /// `request.uid` is an empty string.
    #[error("request.uid is empty")]
    EmptyUid,
    /// `request.operation` is absent or null.
    #[error("request.operation is missing")]
    MissingOperation,
    /// `request.operation` is not one of the four operations.
    #[error("request.operation {0:?} is not one of CREATE, UPDATE, DELETE or CONNECT")]
    UnknownOperation(String),
    /// A required field (`request.kind`, `request.kind.kind`, `request.resource`, …) is absent,
    /// null or empty.
    #[error("{0} is missing or empty")]
    MissingField(&'static str),
    /// A field has the wrong JSON type.
    #[error("{field} must be {expected}, not {found}")]
    FieldType {
        /// The field's path, e.g. `request.uid`.
        field: &'static str,
        /// What it must be, e.g. `a string`.
        expected: &'static str,
        /// What it is.
        found: JsonType,
    },
    /// `request.object` or `request.oldObject` is present but not a JSON object.
    #[error("request.{field} must be a JSON object or null, not {found}")]
    ObjectNotObject {
        /// `object` or `oldObject`.
        field: &'static str,
        /// What it is.
        found: JsonType,
    },

    // From `images`: the review is sound, the object is not.
    /// A CREATE or UPDATE of a pod-bearing kind without `request.object`.
    #[error("request.object is missing from a {operation} of a {kind}")]
    MissingObject {
        /// CREATE or UPDATE.
        operation: Operation,
        /// The kind, as [`crate::admission::WorkloadKind::as_str`] names it.
        kind: &'static str,
    },
    /// The pod spec (or an object on the way to it) is absent or not an object.
    #[error("the {kind} has no pod spec: {path} is missing or not an object")]
    MissingPodSpec {
        /// The kind, as [`crate::admission::WorkloadKind::as_str`] names it.
        kind: &'static str,
        /// The dotted path of the missing or malformed field, e.g. `spec.template`.
        path: String,
    },
    /// A container list is not an array.
    #[error("{path} must be an array of containers, not {found}")]
    ContainerListNotArray {
        /// The list's dotted path, e.g. `spec.containers`.
        path: String,
        /// What it is.
        found: JsonType,
    },
    /// An entry of a container list is not an object.
    #[error("{path} must be a container object, not {found}")]
    ContainerNotObject {
        /// The entry's dotted path, e.g. `spec.containers[1]`.
        path: String,
        /// What it is.
        found: JsonType,
    },
    /// A container has no name, or its name is not a non-empty string.
    #[error("{path} has no name")]
    ContainerWithoutName {
        /// The container's dotted path, e.g. `spec.containers[1]`.
        path: String,
    },
    /// A container has no image, or an empty one: it cannot be verified, so it is not admitted.
    #[error("container {container:?} ({path}) has no image")]
    ContainerWithoutImage {
        /// The container's name.
        container: String,
        /// Its dotted path, e.g. `spec.containers[1]`.
        path: String,
    },
    /// A container's image is not a string.
    #[error("container {container:?} ({path}) has an image that is {found}, not a string")]
    ImageNotString {
        /// The container's name.
        container: String,
        /// Its dotted path, e.g. `spec.containers[1]`.
        path: String,
        /// What the image is.
        found: JsonType,
    },
}

impl ReviewError {
    /// True for errors about the reviewed object's contents (from `images`), which are answered
    /// with a denial; false for a malformed request, answered with HTTP 400.
    pub fn is_about_object(&self) -> bool {
        matches!(
            self,
            ReviewError::MissingObject { .. }
                | ReviewError::MissingPodSpec { .. }
                | ReviewError::ContainerListNotArray { .. }
                | ReviewError::ContainerNotObject { .. }
                | ReviewError::ContainerWithoutName { .. }
                | ReviewError::ContainerWithoutImage { .. }
                | ReviewError::ImageNotString { .. }
        )
    }
}

/// Parses an `admission.k8s.io/v1` AdmissionReview request body.
///
/// Accepts exactly what kube-apiserver sends (compact JSON, trailing newline, `\u0026`-style
/// escapes); field names are case-sensitive, as the API server's own decoder is. Never panics.
pub fn parse_review(body: &[u8]) -> Result<Review, ReviewError> {
    let envelope = match serde_json::from_slice::<Shape<RawEnvelope>>(body) {
        Ok(Shape::Object(envelope)) => envelope,
        Ok(Shape::Other(found)) => return Err(ReviewError::NotAnObject(found)),
        Err(e) if e.is_data() => return Err(ReviewError::Undecodable(e)),
        Err(e) => return Err(ReviewError::NotJson(e)),
    };

    match &envelope.api_version {
        Some(Loose::Str(v)) if v == API_VERSION => {}
        other => return Err(ReviewError::ApiVersion(describe(other.as_ref()))),
    }
    match &envelope.kind {
        Some(Loose::Str(k)) if k == KIND => {}
        other => return Err(ReviewError::Kind(describe(other.as_ref()))),
    }
    let request = match envelope.request {
        None => return Err(ReviewError::MissingRequest),
        Some(Shape::Other(found)) => {
            return Err(ReviewError::FieldType {
                field: "request",
                expected: "an object",
                found,
            });
        }
        Some(Shape::Object(request)) => request,
    };

    let uid = match optional_string(request.uid, "request.uid")? {
        None => return Err(ReviewError::MissingUid),
        Some(uid) if uid.is_empty() => return Err(ReviewError::EmptyUid),
        Some(uid) => uid,
    };
    let kind = match request.kind {
        None => return Err(ReviewError::MissingField("request.kind")),
        Some(Shape::Other(found)) => {
            return Err(ReviewError::FieldType {
                field: "request.kind",
                expected: "an object",
                found,
            });
        }
        Some(Shape::Object(raw)) => GroupVersionKind {
            group: optional_string(raw.group, "request.kind.group")?.unwrap_or_default(),
            version: required_string(raw.version, "request.kind.version")?,
            kind: required_string(raw.kind, "request.kind.kind")?,
        },
    };
    let resource = match request.resource {
        None => None,
        Some(Shape::Other(found)) => {
            return Err(ReviewError::FieldType {
                field: "request.resource",
                expected: "an object",
                found,
            });
        }
        Some(Shape::Object(raw)) => Some(GroupVersionResource {
            group: optional_string(raw.group, "request.resource.group")?.unwrap_or_default(),
            version: required_string(raw.version, "request.resource.version")?,
            resource: required_string(raw.resource, "request.resource.resource")?,
        }),
    };
    let sub_resource = non_empty(optional_string(
        request.sub_resource,
        "request.subResource",
    )?);
    let operation = match optional_string(request.operation, "request.operation")? {
        None => return Err(ReviewError::MissingOperation),
        Some(op) => Operation::parse(&op).ok_or(ReviewError::UnknownOperation(op))?,
    };
    let namespace = non_empty(optional_string(request.namespace, "request.namespace")?);
    let name = non_empty(optional_string(request.name, "request.name")?);
    let dry_run = match request.dry_run {
        None => false,
        Some(Loose::Bool(b)) => b,
        Some(other) => {
            return Err(ReviewError::FieldType {
                field: "request.dryRun",
                expected: "a boolean",
                found: other.json_type(),
            });
        }
    };
    let object = object_or_null(request.object, "object")?;
    let old_object = object_or_null(request.old_object, "oldObject")?;
    let user = match request.user_info {
        None => None,
        Some(Shape::Other(found)) => {
            return Err(ReviewError::FieldType {
                field: "request.userInfo",
                expected: "an object",
                found,
            });
        }
        Some(Shape::Object(info)) => {
            non_empty(optional_string(info.username, "request.userInfo.username")?)
        }
    };

    Ok(Review {
        uid,
        kind,
        resource,
        sub_resource,
        operation,
        namespace,
        name,
        dry_run,
        object,
        old_object,
        user,
    })
}

fn describe(found: Option<&Loose>) -> String {
    match found {
        None => "missing".to_owned(),
        Some(Loose::Str(s)) => format!("{s:?}"),
        Some(other) => other.json_type().to_string(),
    }
}

fn optional_string(
    field: Option<Loose>,
    name: &'static str,
) -> Result<Option<String>, ReviewError> {
    match field {
        None => Ok(None),
        Some(Loose::Str(s)) => Ok(Some(s)),
        Some(other) => Err(ReviewError::FieldType {
            field: name,
            expected: "a string",
            found: other.json_type(),
        }),
    }
}

fn required_string(field: Option<Loose>, name: &'static str) -> Result<String, ReviewError> {
    non_empty(optional_string(field, name)?).ok_or(ReviewError::MissingField(name))
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

fn object_or_null(value: Option<Value>, field: &'static str) -> Result<Option<Value>, ReviewError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v)),
        Some(other) => Err(ReviewError::ObjectNotObject {
            field,
            found: JsonType::of(&other),
        }),
    }
}

// ---- Raw wire shapes. Unlisted fields are skipped by serde without being built. ----

#[derive(Deserialize)]
struct RawEnvelope {
    #[serde(rename = "apiVersion")]
    api_version: Option<Loose>,
    kind: Option<Loose>,
    request: Option<Shape<RawRequest>>,
}

#[derive(Deserialize)]
struct RawRequest {
    uid: Option<Loose>,
    kind: Option<Shape<RawGvk>>,
    resource: Option<Shape<RawGvr>>,
    #[serde(rename = "subResource")]
    sub_resource: Option<Loose>,
    operation: Option<Loose>,
    namespace: Option<Loose>,
    name: Option<Loose>,
    #[serde(rename = "dryRun")]
    dry_run: Option<Loose>,
    object: Option<Value>,
    #[serde(rename = "oldObject")]
    old_object: Option<Value>,
    #[serde(rename = "userInfo")]
    user_info: Option<Shape<RawUserInfo>>,
}

#[derive(Deserialize)]
struct RawGvk {
    group: Option<Loose>,
    version: Option<Loose>,
    kind: Option<Loose>,
}

#[derive(Deserialize)]
struct RawGvr {
    group: Option<Loose>,
    version: Option<Loose>,
    resource: Option<Loose>,
}

#[derive(Deserialize)]
struct RawUserInfo {
    username: Option<Loose>,
}

/// A JSON object decoded as `T`, or the type of whatever else was there (skipped unbuilt).
enum Shape<T> {
    Object(T),
    Other(JsonType),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Shape<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ShapeVisitor(PhantomData))
    }
}

struct ShapeVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ShapeVisitor<T> {
    type Value = Shape<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Shape::Other(JsonType::Boolean))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Shape::Other(JsonType::Number))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Shape::Other(JsonType::Number))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Shape::Other(JsonType::Number))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Shape::Other(JsonType::String))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Shape::Other(JsonType::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Shape::Other(JsonType::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Shape::Other(JsonType::Array))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Shape::Object)
    }
}

/// A scalar field: a string or a boolean is kept, anything else is skipped unbuilt and only its
/// type is remembered.
enum Loose {
    Str(String),
    Bool(bool),
    Other(JsonType),
}

impl Loose {
    fn json_type(&self) -> JsonType {
        match self {
            Loose::Str(_) => JsonType::String,
            Loose::Bool(_) => JsonType::Boolean,
            Loose::Other(t) => *t,
        }
    }
}

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LooseVisitor)
    }
}

struct LooseVisitor;

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Loose, E> {
        Ok(Loose::Bool(b))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Loose, E> {
        Ok(Loose::Other(JsonType::Number))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Loose, E> {
        Ok(Loose::Other(JsonType::Number))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Loose, E> {
        Ok(Loose::Other(JsonType::Number))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Loose, E> {
        Ok(Loose::Str(s.to_owned()))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Loose, E> {
        Ok(Loose::Str(s))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Loose, E> {
        Ok(Loose::Other(JsonType::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<Loose, E> {
        Ok(Loose::Other(JsonType::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Loose, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Loose::Other(JsonType::Array))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Loose, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Loose::Other(JsonType::Object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(request: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "kind": "AdmissionReview",
            "apiVersion": "admission.k8s.io/v1",
            "request": request,
        }))
        .unwrap()
    }

    fn minimal() -> Value {
        json!({
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE",
            "object": {"spec": {"containers": []}},
        })
    }

    fn with(field: &str, value: Value) -> Vec<u8> {
        let mut request = minimal();
        request[field] = value;
        body(request)
    }

    fn without(field: &str) -> Vec<u8> {
        let mut request = minimal();
        request.as_object_mut().unwrap().remove(field);
        body(request)
    }

    #[test]
    fn parses_minimal_request_with_defaults() {
        let review = parse_review(&body(minimal())).unwrap();
        assert_eq!(review.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
        assert_eq!(review.kind.kind, "Pod");
        assert_eq!(review.kind.group, "");
        assert_eq!(review.resource.as_ref().unwrap().resource, "pods");
        assert_eq!(review.operation, Operation::Create);
        assert_eq!(review.sub_resource, None);
        assert_eq!(review.namespace, None);
        assert_eq!(review.name, None);
        assert!(!review.dry_run);
        assert_eq!(review.user, None);
        assert!(review.object.is_some());
        assert_eq!(review.old_object, None);
    }

    #[test]
    fn every_operation_parses() {
        for (wire, op) in [
            ("CREATE", Operation::Create),
            ("UPDATE", Operation::Update),
            ("DELETE", Operation::Delete),
            ("CONNECT", Operation::Connect),
        ] {
            let review = parse_review(&with("operation", json!(wire))).unwrap();
            assert_eq!(review.operation, op);
            assert_eq!(op.as_str(), wire);
        }
    }

    #[test]
    fn operation_is_case_sensitive() {
        let err = parse_review(&with("operation", json!("create"))).unwrap_err();
        assert!(matches!(err, ReviewError::UnknownOperation(ref op) if op == "create"));
    }

    #[test]
    fn field_names_are_case_sensitive() {
        // `Uid` is an unknown field, so `uid` is missing: as the API server's decoder would see it.
        let mut request = minimal();
        let uid = request.as_object_mut().unwrap().remove("uid").unwrap();
        request["Uid"] = uid;
        assert!(matches!(
            parse_review(&body(request)),
            Err(ReviewError::MissingUid)
        ));
    }

    #[test]
    fn wrong_types_name_the_field() {
        let cases: [(&str, Value, &str, JsonType); 6] = [
            ("uid", json!(42), "request.uid", JsonType::Number),
            (
                "operation",
                json!(["CREATE"]),
                "request.operation",
                JsonType::Array,
            ),
            (
                "namespace",
                json!({}),
                "request.namespace",
                JsonType::Object,
            ),
            ("dryRun", json!("true"), "request.dryRun", JsonType::String),
            ("kind", json!("Pod"), "request.kind", JsonType::String),
            ("userInfo", json!([]), "request.userInfo", JsonType::Array),
        ];
        for (field, value, name, ty) in cases {
            match parse_review(&with(field, value)) {
                Err(ReviewError::FieldType {
                    field: f, found, ..
                }) => {
                    assert_eq!(f, name);
                    assert_eq!(found, ty);
                }
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn missing_required_fields() {
        assert!(matches!(
            parse_review(&without("uid")),
            Err(ReviewError::MissingUid)
        ));
        assert!(matches!(
            parse_review(&with("uid", json!(""))),
            Err(ReviewError::EmptyUid)
        ));
        assert!(matches!(
            parse_review(&with("uid", Value::Null)),
            Err(ReviewError::MissingUid)
        ));
        assert!(matches!(
            parse_review(&without("operation")),
            Err(ReviewError::MissingOperation)
        ));
        assert!(matches!(
            parse_review(&without("kind")),
            Err(ReviewError::MissingField("request.kind"))
        ));
        assert!(matches!(
            parse_review(&with(
                "kind",
                json!({"group": "", "version": "v1", "kind": ""})
            )),
            Err(ReviewError::MissingField("request.kind.kind"))
        ));
        assert!(matches!(
            parse_review(&with("kind", json!({"kind": "Pod"}))),
            Err(ReviewError::MissingField("request.kind.version"))
        ));
        // request.resource is not needed: decided from request.kind.
        let review = parse_review(&without("resource")).unwrap();
        assert_eq!(review.resource, None);
    }

    #[test]
    fn object_must_be_object_or_null() {
        assert!(matches!(
            parse_review(&with("object", json!("a pod"))),
            Err(ReviewError::ObjectNotObject {
                field: "object",
                found: JsonType::String
            })
        ));
        assert!(matches!(
            parse_review(&with("oldObject", json!([1]))),
            Err(ReviewError::ObjectNotObject {
                field: "oldObject",
                found: JsonType::Array
            })
        ));
        let review = parse_review(&with("object", Value::Null)).unwrap();
        assert_eq!(review.object, None);
    }

    #[test]
    fn envelope_errors() {
        assert!(matches!(parse_review(b""), Err(ReviewError::NotJson(_))));
        assert!(matches!(parse_review(b"{"), Err(ReviewError::NotJson(_))));
        assert!(matches!(
            parse_review(b"{} x"),
            Err(ReviewError::NotJson(_))
        ));
        assert!(matches!(
            parse_review(b"[1,2]"),
            Err(ReviewError::NotAnObject(JsonType::Array))
        ));
        assert!(matches!(
            parse_review(b"null"),
            Err(ReviewError::NotAnObject(JsonType::Null))
        ));
        assert!(matches!(
            parse_review(br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"}"#),
            Err(ReviewError::ApiVersion(ref v)) if v == "\"admission.k8s.io/v1beta1\""
        ));
        assert!(matches!(
            parse_review(br#"{"kind":"AdmissionReview"}"#),
            Err(ReviewError::ApiVersion(ref v)) if v == "missing"
        ));
        assert!(matches!(
            parse_review(br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}"#),
            Err(ReviewError::Kind(_))
        ));
        assert!(matches!(
            parse_review(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#),
            Err(ReviewError::MissingRequest)
        ));
        assert!(matches!(
            parse_review(
                br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}"#
            ),
            Err(ReviewError::MissingRequest)
        ));
        assert!(matches!(
            parse_review(
                br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":7}"#
            ),
            Err(ReviewError::FieldType {
                field: "request",
                ..
            })
        ));
        assert!(matches!(
            parse_review(br#"{"apiVersion":"admission.k8s.io/v1","apiVersion":"x"}"#),
            Err(ReviewError::Undecodable(_))
        ));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let mut deep = String::new();
        for _ in 0..100_000 {
            deep.push('[');
        }
        assert!(matches!(
            parse_review(deep.as_bytes()),
            Err(ReviewError::NotJson(_))
        ));
        let mut nested_object = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":"#.to_owned();
        for _ in 0..10_000 {
            nested_object.push_str("{\"a\":");
        }
        assert!(parse_review(nested_object.as_bytes()).is_err());
    }

    #[test]
    fn messages_are_sentences_naming_the_field() {
        let err = parse_review(&with("dryRun", json!(1))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "request.dryRun must be a boolean, not a number"
        );
        assert!(!err.is_about_object());
    }
}
