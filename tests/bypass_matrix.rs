//! The bypass matrix: one row per admission-controller bypass a peer has shipped and per SPEC
//! rule that closes one, each asserting the verdict through the real policy + verification path
//! (`Verifier::decide`, and `admission::images` → `images_to_verify` → `verifier::evaluate` for
//! review bodies) against offline bundles signed in the test (`common::Repo`). No servers: every
//! reference that reaches verification is digest-pinned (`name@sha256:…` or `name:tag@sha256:…`),
//! which never contacts a registry; the one tag row points at a closed local port on purpose.
//!
//! Each row names the bug it guards against.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Semaphore;

use common::*;
use signgate::admission::{self, ContainerImage, ContainerList, Operation, Workload};
use signgate::config::Config;
use signgate::notary::Reason;
use signgate::policy::{Evaluation, ImageDecision, Mode, Outcome};
use signgate::reference::Reference;
use signgate::upstream::NamespaceLabels;
use signgate::verifier::{self, Verifier, VerifierSettings};

const ML: &str = "registry.ai-team.internal/ml/pytorch-cuda";
const STRICT: &str = "registry.ai-team.internal/strict/pytorch-cuda";
const AUDIT: &str = "registry.ai-team.internal/audit/pytorch-cuda";
const DIGEST_D: &str = "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";

fn at(gun: &str, suffix: &str) -> String {
    format!("{gun}{suffix}")
}
fn sha(hex: &str) -> String {
    format!("@sha256:{hex}")
}

// ------------------------------------------------------------------------------------ world

struct World {
    _dir: tempfile::TempDir,
    verifier: Verifier,
}

fn write_bundle(bundles: &Path, repo: &Repo) {
    let dir = bundles.join(&repo.gun);
    for (name, bytes) in repo.files() {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

fn root_cert_pem(repo: &Repo) -> String {
    match &repo.root_key {
        Key::P256Cert(_, pem) => pem.clone(),
        _ => panic!("root key without certificate"),
    }
}

fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.trim_end()
        .lines()
        .map(|l| format!("{pad}{l}\n"))
        .collect()
}

/// Signed bundles for `ml` (docker's layout), `strict` (plus tag `both` signed by `targets` and
/// `targets/releases` with A) and `audit`, and this configuration, in file order:
///
/// - `strict`: `registry.ai-team.internal/strict/**`, trust root requiring both roles, enforce;
/// - `ml-prod`: `registry.ai-team.internal/ml/**`, enforce;
/// - `ml-warn-shadowed`: the same images in warn mode: listed second, it must never apply;
/// - `ml-sandbox-warn`: the same images, namespace `sandbox`, warn: also shadowed by ml-prod;
/// - `sandbox-warn`: `registry.ai-team.internal/sandbox/**` in namespace `sandbox`, warn;
/// - `audit-team`: `registry.ai-team.internal/audit/**`, audit;
/// - `internal-tools`: `registry.ai-team.internal/tools/**`, allow (the target of glob tricks);
/// - `hub-library`: `docker.io/library/*`, allow (the target of normalisation tricks);
/// - `unreachable`: `127.0.0.1:1/**` (a closed port), enforce;
/// - `defaultAction: deny`.
fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let bundles = dir.path().join("bundles");
    let ml = Repo::for_gun(ML);
    let mut strict = Repo::for_gun(STRICT);
    strict.targets["targets"]["both"] = target(DIGEST_A, 527);
    strict.delegations.get_mut("targets/releases").unwrap()["targets"]["both"] =
        target(DIGEST_A, 527);
    let audit = Repo::for_gun(AUDIT);
    for r in [&ml, &strict, &audit] {
        write_bundle(&bundles, r);
    }
    // Every generated root certificate holds the same key (seed 1); one pin serves all GUNs.
    let pem = indent(&root_cert_pem(&ml), 10);
    let b = bundles.display();
    let yaml = format!(
        r#"trustRoots:
  - name: ml-platform
    notary:
      url: https://notary.ai-team.internal:4443
      rootKeys:
        - |
{pem}      offlineDir: {b}
  - name: ml-strict
    notary:
      url: https://notary.ai-team.internal:4443
      rootKeys:
        - |
{pem}      requireRoles: [targets/releases, targets]
      offlineDir: {b}
  - name: lab
    notary:
      url: https://127.0.0.1:1
      rootKeys:
        - |
{pem}
policies:
  - name: strict
    images: ["registry.ai-team.internal/strict/**"]
    trustRoot: ml-strict
  - name: ml-prod
    images: ["registry.ai-team.internal/ml/**"]
    trustRoot: ml-platform
    mode: enforce
  - name: ml-warn-shadowed
    images: ["registry.ai-team.internal/ml/**"]
    trustRoot: ml-platform
    mode: warn
  - name: ml-sandbox-warn
    images: ["registry.ai-team.internal/ml/**"]
    namespaces: {{ names: [sandbox] }}
    trustRoot: ml-platform
    mode: warn
  - name: sandbox-warn
    images: ["registry.ai-team.internal/sandbox/**"]
    namespaces: {{ names: [sandbox] }}
    trustRoot: ml-platform
    mode: warn
  - name: audit-team
    images: ["registry.ai-team.internal/audit/**"]
    trustRoot: ml-platform
    mode: audit
  - name: internal-tools
    images: ["registry.ai-team.internal/tools/**"]
    action: allow
  - name: hub-library
    images: ["docker.io/library/*"]
    action: allow
  - name: unreachable
    images: ["127.0.0.1:1/**"]
    trustRoot: lab
defaultAction: deny
"#
    );
    let path = dir.path().join("signgate.yaml");
    std::fs::write(&path, yaml).unwrap();
    let config = Config::load(&path).unwrap_or_else(|e| panic!("config: {e}"));
    let settings = VerifierSettings {
        request_timeout: Duration::from_secs(2),
        ..VerifierSettings::default()
    };
    let verifier = Verifier::new(Arc::new(config), settings).unwrap();
    World {
        _dir: dir,
        verifier,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

// ------------------------------------------------------------------------------------ decide rows

/// What a row expects of `Verifier::decide`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Verified under the policy, with this digest.
    Trusted(&'static str, &'static str),
    /// Allowed by an `action: allow` policy.
    AllowedBy(&'static str),
    /// Denied by `defaultAction` (no policy matched).
    DefaultDeny,
    /// Verification failed under the policy (`None`: before any policy, e.g. a bad reference)
    /// with this reason, and the given mode applies.
    Failed(Option<&'static str>, Reason, Mode),
}

struct Row {
    /// What the row checks.
    name: &'static str,
    /// The bug (peer issue, or SPEC rule) it guards against.
    guards: &'static str,
    image: String,
    namespace: &'static str,
    want: Want,
}

fn row(
    name: &'static str,
    guards: &'static str,
    image: impl Into<String>,
    namespace: &'static str,
    want: Want,
) -> Row {
    Row {
        name,
        guards,
        image: image.into(),
        namespace,
        want,
    }
}

const PTR_WILDCARD: &str = "Portieris v0.14.2 changelog: unanchored wildcard matching let look-alike images use an allow policy";
const NORMALISE: &str =
    "SPEC 'Image references are normalised as docker does': a spelling must not change the policy";
const DIGEST_RULE: &str =
    "SPEC digest rule / Reference::parse: only sha256 + 64 lower-case hex (digest.Validate)";
const FIRST_MATCH: &str =
    "SPEC 'first matching policy wins': a later warn/audit policy must not soften an enforce one";
const ROLES: &str = "SPEC requireRoles: every named role must sign the tag, all with one digest";
const UNSIGNED_DIGEST: &str = "SPEC digest-only rule: a digest is trusted only if an accepted role signs it (targets/ci or superseded targets entries do not count)";
const FAIL_CLOSED: &str =
    "Ratify #92: a timeout / upstream error short-circuited to success (fail open)";

fn decide_rows() -> Vec<Row> {
    use Want::*;
    let a = sha(DIGEST_A);
    let b = sha(DIGEST_B);
    let c = sha(DIGEST_C);
    let d = sha(DIGEST_D);
    let sha_a = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let sha_c = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
    vec![
        // Genuine: the rows below are only meaningful if the same world can say yes.
        row(
            "genuine v2.9@digest is trusted",
            "baseline",
            at(ML, &format!(":v2.9{a}")),
            "prod",
            Trusted("ml-prod", sha_a),
        ),
        row(
            "genuine digest-only reference is trusted",
            "baseline",
            at(ML, &a),
            "prod",
            Trusted("ml-prod", sha_a),
        ),
        row(
            "tag signed only by targets (docker's fallback)",
            "baseline",
            at(ML, &format!(":base{c}")),
            "prod",
            Trusted("ml-prod", sha_c),
        ),
        row(
            "allow policy allows",
            "baseline",
            "registry.ai-team.internal/tools/kubectl:1.31",
            "prod",
            AllowedBy("internal-tools"),
        ),
        // Unanchored glob tricks against the allow policy `registry.ai-team.internal/tools/**`.
        row(
            "host suffix: tools policy host + .evil.com",
            PTR_WILDCARD,
            "registry.ai-team.internal.evil.com/tools/x:1",
            "prod",
            DefaultDeny,
        ),
        row(
            "host prefix: evil.com/<host>/tools",
            PTR_WILDCARD,
            "evil.com/registry.ai-team.internal/tools/x:1",
            "prod",
            DefaultDeny,
        ),
        row(
            "path prefix: tools → toolsx",
            PTR_WILDCARD,
            "registry.ai-team.internal/toolsx/y:1",
            "prod",
            DefaultDeny,
        ),
        row(
            "path prefix: tools- → tools-evil",
            PTR_WILDCARD,
            "registry.ai-team.internal/tools-evil/y:1",
            "prod",
            DefaultDeny,
        ),
        row(
            "other port is another registry",
            PTR_WILDCARD,
            "registry.ai-team.internal:5000/tools/x:1",
            "prod",
            DefaultDeny,
        ),
        row(
            "look-alike subdomain",
            PTR_WILDCARD,
            "evil.registry.ai-team.internal/tools/x:1",
            "prod",
            DefaultDeny,
        ),
        // … and against the verifying policy `registry.ai-team.internal/ml/**`.
        row(
            "host suffix on ml",
            PTR_WILDCARD,
            at("registry.ai-team.internal.evil.com/ml/x", &a),
            "prod",
            DefaultDeny,
        ),
        row(
            "host prefix on ml",
            PTR_WILDCARD,
            at("evil.com/registry.ai-team.internal/ml/x", &a),
            "prod",
            DefaultDeny,
        ),
        row(
            "path prefix ml → mlx",
            PTR_WILDCARD,
            at("registry.ai-team.internal/mlx/y", &a),
            "prod",
            DefaultDeny,
        ),
        // Case and normalisation.
        row(
            "bare library name → docker.io/library",
            NORMALISE,
            "alpine:3.20",
            "prod",
            AllowedBy("hub-library"),
        ),
        row(
            "library/ prefix",
            NORMALISE,
            "library/alpine",
            "prod",
            AllowedBy("hub-library"),
        ),
        row(
            "docker.io/alpine gets library/",
            NORMALISE,
            "docker.io/alpine",
            "prod",
            AllowedBy("hub-library"),
        ),
        row(
            "index.docker.io is docker.io",
            NORMALISE,
            "index.docker.io/library/alpine:3.20",
            "prod",
            AllowedBy("hub-library"),
        ),
        row(
            "library/* is one segment: library/a/b",
            NORMALISE,
            "docker.io/library/alpine/evil:1",
            "prod",
            DefaultDeny,
        ),
        row(
            "another hub user is not library",
            NORMALISE,
            "evil/alpine",
            "prod",
            DefaultDeny,
        ),
        row(
            "index.docker.io/evil is not library",
            NORMALISE,
            "index.docker.io/evil/alpine",
            "prod",
            DefaultDeny,
        ),
        row(
            "upper-case registry host is the same registry: ml-prod, same trust data",
            NORMALISE,
            at("REGISTRY.AI-TEAM.INTERNAL/ml/pytorch-cuda", &a),
            "prod",
            Trusted("ml-prod", sha_a),
        ),
        row(
            "the default port :443 is the same registry: ml-prod",
            NORMALISE,
            at("registry.ai-team.internal:443/ml/pytorch-cuda", &a),
            "prod",
            Trusted("ml-prod", sha_a),
        ),
        row(
            "a port with leading zeros is refused, not matched elsewhere",
            NORMALISE,
            at("registry.ai-team.internal:0443/ml/pytorch-cuda", &a),
            "prod",
            Failed(None, Reason::InvalidReference, Mode::Enforce),
        ),
        row(
            "registry-1.docker.io is docker.io",
            NORMALISE,
            "registry-1.docker.io/library/alpine:3.20",
            "prod",
            AllowedBy("hub-library"),
        ),
        row(
            "upper-case path is not a reference",
            NORMALISE,
            at("registry.ai-team.internal/ML/pytorch-cuda", &a),
            "prod",
            Failed(None, Reason::InvalidReference, Mode::Enforce),
        ),
        row(
            "upper-case hex digest refused",
            DIGEST_RULE,
            at(ML, &a.to_uppercase().replace("@SHA256", "@sha256")),
            "prod",
            Failed(None, Reason::InvalidReference, Mode::Enforce),
        ),
        row(
            "short digest refused",
            DIGEST_RULE,
            at(ML, "@sha256:aaaaaaaa"),
            "prod",
            Failed(None, Reason::InvalidReference, Mode::Enforce),
        ),
        row(
            "sha512 refused",
            DIGEST_RULE,
            at(ML, &format!("@sha512:{DIGEST_A}")),
            "prod",
            Failed(None, Reason::InvalidReference, Mode::Enforce),
        ),
        row(
            "bad digest refused even under an allow policy",
            DIGEST_RULE,
            "alpine@sha256:ABC",
            "prod",
            Failed(None, Reason::InvalidReference, Mode::Enforce),
        ),
        row(
            "two digests refused",
            DIGEST_RULE,
            at(ML, &format!("{a}{a}")),
            "prod",
            Failed(None, Reason::InvalidReference, Mode::Enforce),
        ),
        // First-match order: warn/audit never hide enforce.
        row(
            "warn policy listed after enforce does not apply",
            FIRST_MATCH,
            at(ML, &d),
            "prod",
            Failed(Some("ml-prod"), Reason::DigestNotSigned, Mode::Enforce),
        ),
        row(
            "namespaced warn policy listed after enforce does not apply",
            FIRST_MATCH,
            at(ML, &d),
            "sandbox",
            Failed(Some("ml-prod"), Reason::DigestNotSigned, Mode::Enforce),
        ),
        row(
            "warn policy applies only in its namespace",
            FIRST_MATCH,
            at("registry.ai-team.internal/sandbox/x", &a),
            "prod",
            DefaultDeny,
        ),
        row(
            "warn policy in its namespace warns",
            FIRST_MATCH,
            at("registry.ai-team.internal/sandbox/x", &a),
            "sandbox",
            Failed(
                Some("sandbox-warn"),
                Reason::RepositoryNotSigned,
                Mode::Warn,
            ),
        ),
        row(
            "audit policy records, does not enforce",
            FIRST_MATCH,
            at(AUDIT, &d),
            "prod",
            Failed(Some("audit-team"), Reason::DigestNotSigned, Mode::Audit),
        ),
        // Required roles.
        row(
            "both required roles sign one digest",
            ROLES,
            at(STRICT, &format!(":both{a}")),
            "prod",
            Trusted("strict", sha_a),
        ),
        row(
            "only targets/releases signs v2.9",
            ROLES,
            at(STRICT, &format!(":v2.9{a}")),
            "prod",
            Failed(Some("strict"), Reason::RequiredRoleMissing, Mode::Enforce),
        ),
        row(
            "required roles disagree on v2.8",
            ROLES,
            at(STRICT, &format!(":v2.8{a}")),
            "prod",
            Failed(Some("strict"), Reason::RequiredRolesDisagree, Mode::Enforce),
        ),
        row(
            "only targets signs base",
            ROLES,
            at(STRICT, &format!(":base{c}")),
            "prod",
            Failed(Some("strict"), Reason::RequiredRoleMissing, Mode::Enforce),
        ),
        row(
            "digest-only C: signed by targets alone",
            ROLES,
            at(STRICT, &c),
            "prod",
            Failed(Some("strict"), Reason::DigestNotSigned, Mode::Enforce),
        ),
        // Digest pins to digests no accepted role signs.
        row(
            "digest signed only by targets/ci",
            UNSIGNED_DIGEST,
            at(ML, &b),
            "prod",
            Failed(Some("ml-prod"), Reason::DigestNotSigned, Mode::Enforce),
        ),
        row(
            "digest nobody signed",
            UNSIGNED_DIGEST,
            at(ML, &d),
            "prod",
            Failed(Some("ml-prod"), Reason::DigestNotSigned, Mode::Enforce),
        ),
        row(
            "signed tag pinned to another digest",
            UNSIGNED_DIGEST,
            at(ML, &format!(":v2.9{b}")),
            "prod",
            Failed(Some("ml-prod"), Reason::DigestMismatch, Mode::Enforce),
        ),
        row(
            "superseded targets entry (v2.8 = B, releases says A)",
            UNSIGNED_DIGEST,
            at(ML, &format!(":v2.8{b}")),
            "prod",
            Failed(Some("ml-prod"), Reason::DigestMismatch, Mode::Enforce),
        ),
        row(
            "ci-only tag at its ci digest",
            UNSIGNED_DIGEST,
            at(ML, &format!(":ci-only{b}")),
            "prod",
            Failed(
                Some("ml-prod"),
                Reason::TagOnlyInOtherDelegation,
                Mode::Enforce,
            ),
        ),
        row(
            "repository with no bundle",
            UNSIGNED_DIGEST,
            at("registry.ai-team.internal/ml/other", &a),
            "prod",
            Failed(Some("ml-prod"), Reason::RepositoryNotSigned, Mode::Enforce),
        ),
    ]
}

fn check(row: &Row, got: &ImageDecision) {
    let ctx = format!(
        "row {:?} [{}] image {:?} ns {:?}: got policy {:?} mode {:?} outcome {:?}",
        row.name, row.guards, row.image, row.namespace, got.policy, got.mode, got.outcome
    );
    match row.want {
        Want::Trusted(policy, digest) => {
            assert_eq!(got.policy.as_deref(), Some(policy), "{ctx}");
            match &got.outcome {
                Outcome::Verified(v) => assert_eq!(v.digest.as_str(), digest, "{ctx}"),
                _ => panic!("{ctx}: want trusted"),
            }
            assert!(got.admitted(), "{ctx}");
        }
        Want::AllowedBy(policy) => {
            assert_eq!(got.policy.as_deref(), Some(policy), "{ctx}");
            assert!(matches!(got.outcome, Outcome::AllowedByPolicy), "{ctx}");
            assert!(got.admitted(), "{ctx}");
        }
        Want::DefaultDeny => {
            assert_eq!(got.policy, None, "{ctx}");
            assert!(matches!(got.outcome, Outcome::DeniedByPolicy), "{ctx}");
            assert!(!got.admitted(), "{ctx}");
        }
        Want::Failed(policy, reason, mode) => {
            assert_eq!(got.policy.as_deref(), policy, "{ctx}");
            assert_eq!(got.mode, mode, "{ctx}");
            match &got.outcome {
                Outcome::Failed(e) => assert_eq!(e.reason(), reason, "{ctx}: {e}"),
                _ => panic!("{ctx}: want failed with {reason:?}"),
            }
            assert_eq!(got.admitted(), mode != Mode::Enforce, "{ctx}");
        }
    }
}

#[test]
fn decide_matrix() {
    let w = world();
    let rt = runtime();
    let labels = BTreeMap::new();
    let mut failures = Vec::new();
    for r in decide_rows() {
        let got = rt.block_on(w.verifier.decide(&r.image, r.namespace, &labels, now()));
        if let Err(e) = std::panic::catch_unwind(|| check(&r, &got)) {
            failures.push(
                e.downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| r.name.to_owned()),
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Kyverno #17173: a cache hit skipped the `deny` checks. Every row decided twice gives the same
/// verdict, policy and reason on the second (possibly cached) call as on the first.
#[test]
fn second_decision_equals_the_first() {
    let w = world();
    let rt = runtime();
    let labels = BTreeMap::new();
    for r in decide_rows() {
        let first = rt.block_on(w.verifier.decide(&r.image, r.namespace, &labels, now()));
        let second = rt.block_on(w.verifier.decide(&r.image, r.namespace, &labels, now()));
        let key = |d: &ImageDecision| {
            (
                d.policy.clone(),
                d.mode,
                d.admitted(),
                d.reason_label(),
                d.reason_text(),
            )
        };
        assert_eq!(key(&first), key(&second), "row {:?} [{}]", r.name, r.guards);
    }
}

/// Ratify #92 (fail open on timeout): a tag reference whose registry cannot be reached is denied
/// with a reason that says so; the default tag is `latest`.
#[test]
fn unreachable_registry_fails_closed_with_default_latest() {
    let w = world();
    let rt = runtime();
    let got = rt.block_on(
        w.verifier
            .decide("127.0.0.1:1/ml/x", "prod", &BTreeMap::new(), now()),
    );
    assert_eq!(got.policy.as_deref(), Some("unreachable"), "{got:?}");
    assert!(!got.admitted(), "{FAIL_CLOSED}: {got:?}");
    match &got.outcome {
        Outcome::Failed(e) => assert!(
            matches!(e.reason(), Reason::UpstreamError | Reason::Timeout),
            "{FAIL_CLOSED}: {e}"
        ),
        o => panic!("{FAIL_CLOSED}: {o:?}"),
    }
    let r = signgate::reference::Reference::parse("127.0.0.1:1/ml/x").unwrap();
    assert_eq!(r.tag(), Some("latest"));
}

// ------------------------------------------------------------------------------------ review rows

fn review(
    kind: (&str, &str, &str),
    resource: &str,
    sub: &str,
    op: &str,
    object: Value,
    old: Value,
) -> Vec<u8> {
    let body = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0d0c6d1e-5b7c-4a38-9d41-1f0f3f7a1c2e",
            "kind": {"group": kind.0, "version": kind.1, "kind": kind.2},
            "resource": {"group": kind.0, "version": kind.1, "resource": resource},
            "subResource": sub,
            "requestKind": {"group": kind.0, "version": kind.1, "kind": kind.2},
            "requestResource": {"group": kind.0, "version": kind.1, "resource": resource},
            "name": "x",
            "namespace": "prod",
            "operation": op,
            "userInfo": {"username": "alice"},
            "object": object,
            "oldObject": old,
            "dryRun": false,
            "options": null
        }
    });
    serde_json::to_vec(&body).unwrap()
}

fn pod_spec(
    init: &[(&str, &str)],
    containers: &[(&str, &str)],
    ephemeral: &[(&str, &str)],
) -> Value {
    let list = |l: &[(&str, &str)]| -> Value {
        l.iter()
            .map(|(n, i)| json!({"name": n, "image": i}))
            .collect::<Vec<_>>()
            .into()
    };
    let mut spec = json!({"containers": list(containers)});
    if !init.is_empty() {
        spec["initContainers"] = list(init);
    }
    if !ephemeral.is_empty() {
        spec["ephemeralContainers"] = list(ephemeral);
    }
    spec
}

/// Wraps a pod spec as `kind` carries it.
fn object_of(kind: &str, spec: Value, replicas: u64) -> Value {
    let template = json!({"metadata": {"labels": {"app": "x"}}, "spec": spec});
    match kind {
        "Pod" => {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": spec})
        }
        "CronJob" => json!({"kind": kind, "metadata": {"name": "x"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}}),
        "Job" => json!({"kind": kind, "metadata": {"name": "x"}, "spec": {"template": template}}),
        "DaemonSet" => {
            json!({"kind": kind, "metadata": {"name": "x"}, "spec": {"template": template}})
        }
        _ => json!({"kind": kind, "metadata": {"name": "x"},
            "spec": {"replicas": replicas, "template": template}}),
    }
}

const KINDS: &[(&str, &str, &str, &str)] = &[
    ("", "v1", "Pod", "pods"),
    ("apps", "v1", "Deployment", "deployments"),
    ("apps", "v1", "ReplicaSet", "replicasets"),
    ("apps", "v1", "StatefulSet", "statefulsets"),
    ("apps", "v1", "DaemonSet", "daemonsets"),
    ("batch", "v1", "Job", "jobs"),
    ("batch", "v1", "CronJob", "cronjobs"),
    ("", "v1", "ReplicationController", "replicationcontrollers"),
];

/// The webhook path without HTTP: parse, images, images_to_verify, evaluate; returns the
/// containers verified and the evaluation.
fn admit(w: &World, body: &[u8]) -> (Vec<String>, Evaluation) {
    let rt = runtime();
    let r = admission::parse_review(body).unwrap_or_else(|e| panic!("parse_review: {e}"));
    let workload = admission::images(&r).unwrap_or_else(|e| panic!("images: {e}"));
    let to_verify = admission::images_to_verify(&r, &workload);
    let eval = rt.block_on(verifier::evaluate(
        &w.verifier,
        &NamespaceLabels::None,
        &Arc::new(Semaphore::new(4)),
        r.namespace.as_deref().unwrap_or("default"),
        &to_verify,
        now(),
        Duration::from_secs(8),
    ));
    (
        to_verify.iter().map(|c| c.container.clone()).collect(),
        eval,
    )
}

fn signed() -> String {
    at(ML, &format!(":v2.9{}", sha(DIGEST_A)))
}
fn unsigned() -> String {
    at(ML, &sha(DIGEST_D))
}

/// Each pod controller kind (and Pod): a CREATE with an unsigned image in any of its lists is
/// denied naming that container; all signed is allowed.
/// Guards: Portieris #508 / SPEC "Objects" (every pod-bearing kind is reviewed), and init
/// containers (Portieris reads containers + initContainers only).
#[test]
fn every_kind_every_list_is_verified() {
    let w = world();
    for (g, v, kind, res) in KINDS {
        let ok = object_of(
            kind,
            pod_spec(&[("init", &signed())], &[("main", &signed())], &[]),
            1,
        );
        let (_, eval) = admit(
            &w,
            &review((g, v, kind), res, "", "CREATE", ok, Value::Null),
        );
        assert!(eval.allowed(), "{kind} signed: {:?}", eval.denial);

        let bad_init = object_of(
            kind,
            pod_spec(&[("init", &unsigned())], &[("main", &signed())], &[]),
            1,
        );
        let (_, eval) = admit(
            &w,
            &review((g, v, kind), res, "", "CREATE", bad_init, Value::Null),
        );
        let denial = eval
            .denial
            .unwrap_or_else(|| panic!("{kind}: unsigned init container admitted"));
        assert!(
            denial.contains("(container \"init\")") && denial.contains("ml-prod"),
            "{kind}: {denial}"
        );

        let bad_main = object_of(kind, pod_spec(&[], &[("main", &unsigned())], &[]), 1);
        let (_, eval) = admit(
            &w,
            &review((g, v, kind), res, "", "CREATE", bad_main, Value::Null),
        );
        assert!(!eval.allowed(), "{kind}: unsigned container admitted");

        // UPDATE that changes an image is verified.
        let old = object_of(kind, pod_spec(&[], &[("main", &signed())], &[]), 1);
        let new = object_of(kind, pod_spec(&[], &[("main", &unsigned())], &[]), 1);
        let (_, eval) = admit(&w, &review((g, v, kind), res, "", "UPDATE", new, old));
        assert!(
            !eval.allowed(),
            "{kind}: image changed to unsigned on UPDATE admitted"
        );
    }
}

/// Kyverno #16275 (ivpol admitted an unsigned ephemeral container) and deckhouse #22398 (the
/// `pods/ephemeralcontainers` subresource never reviewed): `kubectl debug` adding an unsigned
/// debug container is denied; adding a signed one is allowed; the existing ones are not
/// re-verified.
#[test]
fn ephemeral_containers_are_verified() {
    let w = world();
    let pod = ("", "v1", "Pod");
    let old = object_of(
        "Pod",
        pod_spec(&[], &[("main", &signed())], &[("debug-1", &signed())]),
        1,
    );
    let new = object_of(
        "Pod",
        pod_spec(
            &[],
            &[("main", &signed())],
            &[("debug-1", &signed()), ("debug-2", &unsigned())],
        ),
        1,
    );
    let (verified, eval) = admit(
        &w,
        &review(
            pod,
            "pods",
            "ephemeralcontainers",
            "UPDATE",
            new,
            old.clone(),
        ),
    );
    assert_eq!(verified, vec!["debug-2".to_owned()]);
    let denial = eval.denial.expect("unsigned ephemeral container admitted");
    assert!(denial.contains("(container \"debug-2\")"), "{denial}");

    let good = object_of(
        "Pod",
        pod_spec(
            &[],
            &[("main", &signed())],
            &[("debug-1", &signed()), ("debug-2", &signed())],
        ),
        1,
    );
    let (_, eval) = admit(
        &w,
        &review(pod, "pods", "ephemeralcontainers", "UPDATE", good, old),
    );
    assert!(eval.allowed(), "{:?}", eval.denial);

    // A Pod CREATE carrying an ephemeral container (not possible through the API, but the object
    // says so) is verified too.
    let created = object_of(
        "Pod",
        pod_spec(&[], &[("main", &signed())], &[("dbg", &unsigned())]),
        1,
    );
    let (_, eval) = admit(&w, &review(pod, "pods", "", "CREATE", created, Value::Null));
    assert!(!eval.allowed(), "ephemeral container on CREATE admitted");
}

/// Portieris #508 / PR#512: a controller created with 0 replicas (or with images since
/// untrusted) and scaled up. The replicas UPDATE verifies nothing (SPEC: UPDATEs that change no
/// image are allowed) and the `scale` subresource carries no containers, but the Pod CREATE the
/// controller then makes is verified on its own, with no owner-based approval.
#[test]
fn scale_from_zero_verifies_the_pods() {
    let w = world();
    for (g, v, kind, res) in KINDS.iter().filter(|k| k.2 != "Pod") {
        let old = object_of(kind, pod_spec(&[], &[("main", &unsigned())], &[]), 0);
        let new = object_of(kind, pod_spec(&[], &[("main", &unsigned())], &[]), 3);
        let (verified, eval) = admit(&w, &review((g, v, kind), res, "", "UPDATE", new, old));
        assert!(
            verified.is_empty(),
            "{kind}: replicas-only UPDATE verified {verified:?}"
        );
        assert!(eval.allowed(), "{kind}");
    }
    let scale = review(
        ("autoscaling", "v1", "Scale"),
        "deployments",
        "scale",
        "UPDATE",
        json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "spec": {"replicas": 3}}),
        json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "spec": {"replicas": 0}}),
    );
    let r = admission::parse_review(&scale).unwrap();
    assert_eq!(admission::images(&r).unwrap(), Workload::Other);

    // The Pod the ReplicaSet controller creates, with its ownerReference, is verified anyway.
    let mut pod = object_of("Pod", pod_spec(&[], &[("main", &unsigned())], &[]), 1);
    pod["metadata"]["ownerReferences"] = json!([{
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x-5d4f", "uid": "u",
        "controller": true, "blockOwnerDeletion": true
    }]);
    let (verified, eval) = admit(
        &w,
        &review(("", "v1", "Pod"), "pods", "", "CREATE", pod, Value::Null),
    );
    assert_eq!(verified, vec!["main".to_owned()]);
    assert!(!eval.allowed(), "owned Pod with an unsigned image admitted");
}

/// Fail closed on the object: a container without an image is an error about the object, which
/// the handler answers with a denial (not a 400 that `failurePolicy: Ignore` would turn into an
/// admit).
#[test]
fn container_without_image_is_about_the_object() {
    let mut obj = object_of("Pod", pod_spec(&[], &[("main", &signed())], &[]), 1);
    obj["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "noimage"}));
    let body = review(("", "v1", "Pod"), "pods", "", "CREATE", obj, Value::Null);
    let r = admission::parse_review(&body).unwrap();
    let e = admission::images(&r).expect_err("container without image accepted");
    assert!(e.is_about_object(), "{e}");
    let _ = Operation::Create;
}

/// Warn and audit through evaluate: a warn failure allows with a warning, an audit failure allows
/// with an annotation, and an enforce failure in the same Pod still denies.
#[test]
fn modes_through_evaluate() {
    let w = world();
    let rt = runtime();
    let images = |list: &[(&str, String)]| -> Vec<ContainerImage> {
        list.iter()
            .enumerate()
            .map(|(index, (c, i))| ContainerImage {
                container: (*c).into(),
                list: ContainerList::Containers,
                index,
                image: i.clone(),
            })
            .collect()
    };
    let run = |ns: &str, list: Vec<ContainerImage>| {
        rt.block_on(verifier::evaluate(
            &w.verifier,
            &NamespaceLabels::None,
            &Arc::new(Semaphore::new(4)),
            ns,
            &list,
            now(),
            Duration::from_secs(8),
        ))
    };
    let sandbox = at("registry.ai-team.internal/sandbox/x", &sha(DIGEST_A));
    let audit = at(AUDIT, &sha(DIGEST_D));
    let e = run(
        "sandbox",
        images(&[("s", sandbox.clone()), ("a", audit.clone())]),
    );
    assert!(e.allowed(), "{:?}", e.denial);
    assert_eq!(e.warnings.len(), 1, "{:?}", e.warnings);
    assert_eq!(e.audit.len(), 1, "{:?}", e.audit);
    // The ml image in namespace sandbox: ml-prod (enforce) comes first; the later warn policies
    // for the same images must not soften it.
    let e = run(
        "sandbox",
        images(&[("s", sandbox), ("a", audit), ("m", unsigned())]),
    );
    let denial = e.denial.expect("enforce failure hidden by warn/audit");
    assert!(
        denial.contains("ml-prod") && !denial.contains("ml-sandbox-warn"),
        "{denial}"
    );
}

/// The review's case: an enforce policy over a registry and `defaultAction: allow`. No spelling of
/// the registry may fall through to the default: it meets the policy, or it is not a reference.
#[test]
fn no_spelling_of_a_registry_falls_through_to_default_allow() {
    let yaml = r#"trustRoots: []
policies:
  - name: ml
    images: ["registry.ai-team.internal/ml/**"]
    action: deny
  - name: hub
    images: ["docker.io/library/**"]
    action: deny
defaultAction: allow
"#;
    let config = signgate::config::Config::parse(yaml, Path::new("signgate.yaml")).unwrap();
    let none = std::collections::BTreeMap::new();
    for (image, policy) in [
        ("registry.ai-team.internal/ml/evil:v1", "ml"),
        ("registry.ai-team.internal:443/ml/evil:v1", "ml"),
        ("Registry.AI-Team.Internal/ml/evil:v1", "ml"),
        ("REGISTRY.AI-TEAM.INTERNAL:443/ml/evil:v1", "ml"),
        ("alpine", "hub"),
        ("docker.io/library/alpine", "hub"),
        ("index.docker.io/library/alpine", "hub"),
        ("registry-1.docker.io/library/alpine", "hub"),
        ("registry-1.docker.io/alpine", "hub"),
        ("index.docker.io:443/alpine", "hub"),
    ] {
        let r = Reference::parse(image).unwrap_or_else(|e| panic!("{image}: {e}"));
        let found = config.policies().select(&r, "prod", &none);
        assert_eq!(found.policy_name(), Some(policy), "{image} → {r}");
    }
    for image in [
        "registry.ai-team.internal:0443/ml/evil:v1",
        "registry.ai-team.internal:00443/ml/evil:v1",
        "registry.ai-team.internal:+443/ml/evil:v1",
    ] {
        assert!(
            Reference::parse(image).is_err(),
            "{image} must be refused, not matched against another registry"
        );
    }
}
