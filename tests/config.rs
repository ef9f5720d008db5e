//! The configuration contract (SPEC.md, "Configuration"): the full example loads into the domain
//! types, every kind of mistake is refused with an error that names the file and the field, image
//! globs are anchored, and the first matching policy wins.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rstest::rstest;

use signgate::config::{Config, ConfigError, Credentials, ErrorKind};
use signgate::notary::{PinError, PinnedKey, RoleRule};
use signgate::policy::{Action, Glob, GlobError, Mode, PolicyDecision, PolicyTarget, Require};
use signgate::reference::Reference;

/// P-256 public keys made with `openssl ecparam -genkey -name prime256v1 | openssl ec -pubout`.
const KEY_A: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE7JFLay+gWe7E2Swm84qeIJjVPIW0
8cIBLvY6J2UAV3v4sbt03GFIsgPOnQUiTE8zblL+bsEdBP6uxkasgus9wQ==
-----END PUBLIC KEY-----
";
const KEY_B: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEbgofUp6Syof9eIt6Aqi4n6MQ4LiH
iIHDMYBoxY/6wdoFocYrSlDCNg2sozfJTbNOoZe2RoWK6wZZB70xMsZUdg==
-----END PUBLIC KEY-----
";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config")
}

const ORIGIN: &str = "/etc/signgate/config.yaml";

/// `pem` (a P-256 SubjectPublicKeyInfo with an uncompressed point) with its point compressed:
/// the same key, other bytes.
fn compressed_p256(pem: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = b64.decode(body).unwrap();
    let point = &der[der.len() - 65..];
    assert_eq!(point[0], 4, "an uncompressed point");
    let mut spki = hex::decode("3039301306072a8648ce3d020106082a8648ce3d030107032200").unwrap();
    spki.push(2 | (point[64] & 1));
    spki.extend_from_slice(&point[1..33]);
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        b64.encode(spki)
    )
}

/// `$KEY_A` / `$KEY_B` become the keys as double-quoted YAML strings, `$KEY_A_COMPRESSED` the
/// first key with its point compressed.
fn parse(yaml: &str) -> Result<Config, ConfigError> {
    let quoted = |k: &str| format!("{:?}", k);
    let notation_ca = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "tests/fixtures/notation/notation-go/verifier/testdata/truststore/x509/ca/valid-trust-store/NotationTestRoot.pem",
    ))
    .unwrap();
    let text = yaml
        .replace("$KEY_A_COMPRESSED", &quoted(&compressed_p256(KEY_A)))
        .replace("$KEY_A", &quoted(KEY_A))
        .replace("$KEY_B", &quoted(KEY_B))
        .replace("$NOTATION_CA", &quoted(&notation_ca));
    Config::parse(&text, Path::new(ORIGIN))
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

// ------------------------------------------------------------------------------------------------
// The full example.
// ------------------------------------------------------------------------------------------------

#[test]
fn loads_the_spec_example_into_domain_types() {
    let path = fixtures().join("signgate.yaml");
    let config = Config::load(&path).unwrap();
    let dir = fixtures();
    assert_eq!(config.source(), path);

    // Trust roots, with inline keys, key files (a certificate and a public key) and paths.
    let ml = config.trust_root("ml-platform").unwrap().notary().unwrap();
    assert_eq!(
        ml.notary_url.as_ref().map(url::Url::as_str).unwrap(),
        "https://notary.ai-team.internal:4443/"
    );
    assert_eq!(
        ml.ca_file.as_deref(),
        Some(Path::new("/etc/signgate/ca/notary-ca.crt"))
    );
    let cert_key =
        PinnedKey::from_pem(&std::fs::read(dir.join("keys/notary-root-cert.pem")).unwrap())
            .unwrap();
    let inline_key = PinnedKey::from_pem(KEY_A.as_bytes()).unwrap();
    assert_eq!(ml.root_keys, [inline_key.clone(), cert_key].concat());
    assert_eq!(ml.require_roles, ["targets/releases"]);
    assert_eq!(
        ml.role_rule(),
        RoleRule::Require(vec!["targets/releases".into()])
    );
    assert_eq!(
        ml.offline_dir.as_deref(),
        Some(dir.join("bundles/ml-platform").as_path())
    );
    let vendor = config.trust_root("vendor").unwrap().notary().unwrap();
    assert_eq!(vendor.root_keys, inline_key);
    assert_eq!(vendor.role_rule(), RoleRule::Docker);
    assert_eq!(
        (vendor.ca_file.as_ref(), vendor.offline_dir.as_ref()),
        (None, None)
    );
    assert!(config.trust_root("nope").is_none());
    assert_eq!(config.trust_roots().len(), 2);

    // Registries: the three credential forms; hosts looked up case-insensitively.
    let reg = config.registry("registry.ai-team.internal").unwrap();
    assert_eq!(
        reg.credentials,
        Some(Credentials::Secret {
            name: "harbor-pull".into()
        })
    );
    assert_eq!(
        reg.notary.as_ref().map(url::Url::as_str),
        Some("https://notary.ai-team.internal:4443/")
    );
    assert_eq!(
        reg.ca_file.as_deref(),
        Some(Path::new("/etc/signgate/ca/registry-ca.crt"))
    );
    assert_eq!(
        config
            .registry("registry.ai-team.internal:5000")
            .unwrap()
            .credentials,
        Some(Credentials::Basic {
            username: "robot".into(),
            password_file: dir.join("secrets/robot-password"),
        })
    );
    assert_eq!(
        config.registry("index.docker.io").unwrap().credentials,
        Some(Credentials::DockerConfig {
            file: "/var/run/secrets/docker/config.json".into()
        })
    );
    assert!(config.registry("Registry.AI-Team.internal").is_some());
    // One registry, whatever the spelling: the default port and case change nothing.
    assert!(config.registry("registry.ai-team.internal:443").is_some());
    assert!(config.registry("registry.ai-team.internal:0443").is_none());
    assert!(config.registry("quay.io").is_none());

    // Policies, in file order.
    let names: Vec<&str> = config.policies().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "pytorch-gpu-prod",
            "pytorch-gpu-staging",
            "vendor-images",
            "cluster-system",
            "no-latest-hub"
        ]
    );
    let prod = &config.policies()[0];
    assert_eq!(prod.images[0].as_str(), "registry.ai-team.internal/ml/**");
    assert_eq!(
        prod.target,
        PolicyTarget::Verify {
            trust_roots: vec!["ml-platform".into()],
            require: Require::All,
            mode: Mode::Enforce
        }
    );
    let ns = prod.namespaces.as_ref().unwrap();
    assert!(ns.names.is_empty());
    assert_eq!(ns.match_labels, labels(&[("env", "prod")]));
    assert_eq!(
        config.policies()[1].target,
        PolicyTarget::Verify {
            trust_roots: vec!["ml-platform".into()],
            require: Require::All,
            mode: Mode::Warn
        }
    );
    assert_eq!(
        config.policies()[2].target,
        PolicyTarget::Verify {
            trust_roots: vec!["vendor".into()],
            require: Require::All,
            mode: Mode::Enforce
        }
    );
    assert_eq!(config.policies()[3].target, PolicyTarget::Allow);
    assert_eq!(config.policies()[4].target, PolicyTarget::Deny);
    assert_eq!(config.policies().default_action(), Action::Deny);
}

#[test]
fn policy_for_takes_the_first_match_in_file_order_else_the_default_action() {
    let config = Config::load(&fixtures().join("signgate.yaml")).unwrap();
    let prod = labels(&[("env", "prod"), ("team", "ml")]);
    let none = labels(&[]);
    let decide = |image: &str, ns: &str, l: &BTreeMap<String, String>| {
        config
            .policies()
            .select_image_name(image, ns, l)
            .policy_name()
    };
    let img = "registry.ai-team.internal/ml/pytorch-cuda";
    // Both ml policies cover the image; the namespace picks one, the first that matches.
    assert_eq!(decide(img, "training", &prod), Some("pytorch-gpu-prod"));
    assert_eq!(
        decide(img, "ml-staging", &none),
        Some("pytorch-gpu-staging")
    );
    assert_eq!(decide(img, "ml-staging", &prod), Some("pytorch-gpu-prod"));
    // A label with another value is no match; neither policy covers this namespace.
    let dev = labels(&[("env", "dev")]);
    assert_eq!(decide(img, "training", &dev), None);
    assert_eq!(
        config.policies().select_image_name(img, "training", &dev),
        PolicyDecision::Default(Action::Deny)
    );
    assert_eq!(
        config
            .policies()
            .select_image_name(img, "training", &dev)
            .target(),
        &PolicyTarget::Deny
    );

    assert_eq!(
        decide("docker.io/pytorch/pytorch", "any", &none),
        Some("vendor-images")
    );
    assert_eq!(
        decide("nvcr.io/nvidia/pytorch", "any", &none),
        Some("vendor-images")
    );
    assert_eq!(
        decide("registry.k8s.io/pause", "kube-system", &none),
        Some("cluster-system")
    );
    assert_eq!(
        decide("docker.io/library/alpine", "any", &none),
        Some("no-latest-hub")
    );
    assert_eq!(decide("quay.io/x/y", "any", &none), None);

    let d = config
        .policies()
        .select_image_name("registry.k8s.io/pause", "kube-system", &none);
    assert_eq!(d.target(), &PolicyTarget::Allow);
    assert_eq!(d.policy().map(|p| p.name.as_str()), Some("cluster-system"));

    // The same, from a reference as a Pod spec gives it.
    let r = Reference::parse("pytorch/pytorch:2.9").unwrap();
    assert_eq!(
        config.policies().select(&r, "any", &none).policy_name(),
        Some("vendor-images")
    );
}

#[test]
fn default_action_defaults_to_deny_and_can_allow() {
    let minimal = "trustRoots: []\npolicies: []\n";
    let c = parse(minimal).unwrap();
    assert_eq!(c.policies().default_action(), Action::Deny);
    assert_eq!(
        c.policies()
            .select_image_name("docker.io/library/alpine", "default", &BTreeMap::new())
            .target(),
        &PolicyTarget::Deny
    );
    let c = parse(&format!("{minimal}defaultAction: allow\n")).unwrap();
    let d = c
        .policies()
        .select_image_name("docker.io/library/alpine", "default", &BTreeMap::new());
    assert_eq!(d, PolicyDecision::Default(Action::Allow));
    assert_eq!(d.target(), &PolicyTarget::Allow);
    assert_eq!(d.policy_name(), None);
}

#[test]
fn namespace_names_and_labels_must_both_match_when_both_are_given() {
    let c = parse(
        "trustRoots: []
policies:
  - name: both
    images: [\"reg.io/**\"]
    namespaces: { names: [a, b], matchLabels: { env: prod, tier: gpu } }
    action: allow
",
    )
    .unwrap();
    let full = labels(&[("env", "prod"), ("tier", "gpu"), ("extra", "x")]);
    let partial = labels(&[("env", "prod")]);
    assert_eq!(
        c.policies()
            .select_image_name("reg.io/x", "a", &full)
            .policy_name(),
        Some("both")
    );
    assert_eq!(
        c.policies()
            .select_image_name("reg.io/x", "b", &full)
            .policy_name(),
        Some("both")
    );
    assert_eq!(
        c.policies()
            .select_image_name("reg.io/x", "c", &full)
            .policy_name(),
        None
    );
    assert_eq!(
        c.policies()
            .select_image_name("reg.io/x", "a", &partial)
            .policy_name(),
        None
    );
}

/// Whether a policy choice depends on the namespace's labels (so unknown labels must fail
/// closed): only when, in file order, a label-selected policy whose images and names match comes
/// before any policy that matches without labels.
#[test]
fn labels_are_needed_only_where_a_label_selected_policy_comes_first() {
    let c = parse(
        "trustRoots: []
policies:
  - { name: system, images: [\"reg.io/system/**\"], action: allow }
  - { name: by-label, images: [\"reg.io/ml/**\"], namespaces: { matchLabels: { env: dev } }, action: allow }
  - { name: ml, images: [\"reg.io/ml/**\"], action: deny }
  - { name: named, images: [\"reg.io/tools/**\"], namespaces: { names: [a] }, action: allow }
  - { name: named-label, images: [\"reg.io/tools/**\"], namespaces: { names: [b], matchLabels: { env: dev } }, action: allow }
",
    )
    .unwrap();
    let p = c.policies();
    assert!(p.uses_labels());
    let needs = |image: &str, ns: &str| p.needs_labels(&Reference::parse(image).unwrap(), ns);
    assert!(
        !needs("reg.io/system/pause:1", "a"),
        "a label-free policy comes first"
    );
    assert!(
        needs("reg.io/ml/x:1", "a"),
        "the label-selected policy comes first"
    );
    assert!(
        !needs("reg.io/tools/x:1", "a"),
        "the named policy matches first"
    );
    assert!(
        needs("reg.io/tools/x:1", "b"),
        "names match, then labels decide"
    );
    assert!(
        !needs("reg.io/tools/x:1", "c"),
        "no policy can match: the default, whatever the labels"
    );
    assert!(!needs("other.io/x:1", "a"));
    let plain = parse("trustRoots: []\npolicies:\n  - { name: n, images: [\"reg.io/**\"], namespaces: { names: [a] }, action: allow }\n").unwrap();
    assert!(!plain.policies().uses_labels());
}

#[test]
fn relative_paths_resolve_against_the_configuration_directory() {
    let c = Config::parse(
        &format!(
            "trustRoots:
  - name: t
    notary:
      url: https://notary.example.com/prefix
      caFile: ca/notary.crt
      rootKeys: [{KEY_A:?}]
      offlineDir: ../bundles
registries:
  - host: reg.example.com
    caFile: /abs/ca.crt
    credentials: {{ dockerConfigFile: docker/config.json }}
policies: []
"
        ),
        Path::new("/etc/signgate/config.yaml"),
    )
    .unwrap();
    let t = c.trust_root("t").unwrap().notary().unwrap();
    assert_eq!(
        t.ca_file.as_deref(),
        Some(Path::new("/etc/signgate/ca/notary.crt"))
    );
    assert_eq!(
        t.offline_dir.as_deref(),
        Some(Path::new("/etc/signgate/../bundles"))
    );
    assert_eq!(t.notary_url.as_ref().unwrap().path(), "/prefix");
    let r = c.registry("reg.example.com").unwrap();
    assert_eq!(r.ca_file.as_deref(), Some(Path::new("/abs/ca.crt")));
    assert_eq!(
        r.credentials,
        Some(Credentials::DockerConfig {
            file: "/etc/signgate/docker/config.json".into()
        })
    );
    // Files other than root keys are not read at load time: none of these need to exist.
}

#[test]
fn accepts_several_keys_and_certificates_in_one_block() {
    let cert = std::fs::read_to_string(fixtures().join("keys/notary-root-cert.pem")).unwrap();
    let both = format!("{KEY_A}{KEY_B}{cert}");
    let c = Config::parse(
        &format!(
            "trustRoots:\n  - name: t\n    notary: {{ url: https://n.example.com, rootKeys: [{both:?}] }}\npolicies: []\n"
        ),
        Path::new(ORIGIN),
    )
    .unwrap();
    assert_eq!(
        c.trust_root("t").unwrap().notary().unwrap().root_keys.len(),
        3
    );
}

// ------------------------------------------------------------------------------------------------
// Errors: each names the file and the field; tests match the variant, not the wording.
// ------------------------------------------------------------------------------------------------

const TR: &str = "trustRoots:
  - name: ml-platform
    notary:
      url: https://notary.example.com:4443
      rootKeys: [$KEY_A]
";

fn with_policy(policy: &str) -> String {
    format!("{TR}policies:\n{policy}")
}

fn with_registry(registry: &str) -> String {
    format!("{TR}registries:\n{registry}policies: []\n")
}

fn with_notation(fields: &str) -> String {
    format!("trustRoots:\n  - name: nv2\n    notation:\n{fields}policies: []\n")
}

fn with_notary(fields: &str) -> String {
    format!("trustRoots:\n  - name: ml-platform\n    notary:\n{fields}policies: []\n")
}

fn with_cosign(fields: &str) -> String {
    format!("trustRoots:\n  - name: cs\n    cosign:\n{fields}policies: []\n")
}

#[test]
fn cosign_trust_roots_with_a_pinned_sigstore_trusted_root() {
    // SPEC's example shape: keys, keyless identities, the trusted root, the log required.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/sigstore-go/trusted-root-public-good.json"),
        dir.path().join("trusted_root.json"),
    )
    .unwrap();
    std::fs::write(dir.path().join("not-a-root.json"), "{\"tlogs\": 3}").unwrap();
    std::fs::write(dir.path().join("empty-root.json"), "{}").unwrap();
    let load = |cosign: &str| {
        let path = dir.path().join("signgate.yaml");
        std::fs::write(
            &path,
            format!(
                "trustRoots:\n  - name: ml-cosign\n    cosign:\n{}policies: []\n",
                cosign.replace("$KEY_A", &format!("{KEY_A:?}"))
            ),
        )
        .unwrap();
        Config::load(&path)
    };
    load("      keys: [ { name: ci, publicKey: $KEY_A } ]\n      threshold: 1\n      required: [ci]\n      keyless:\n        trustedRootFile: trusted_root.json\n        identities: [ { issuer: \"https://token.actions.githubusercontent.com\", subjectRegExp: \"^https://github.com/acme/.*$\" } ]\n      transparencyLog: required\n")
        .unwrap_or_else(|e| panic!("{e}"));
    // Key-based with the log required (the default): the trusted root at the root level.
    load("      keys: [ { name: ci, publicKey: $KEY_A } ]\n      trustedRootFile: trusted_root.json\n")
        .unwrap_or_else(|e| panic!("{e}"));
    // Keyless only: the threshold counts identities.
    load("      keyless:\n        trustedRootFile: trusted_root.json\n        identities: [ { issuer: a, subject: b }, { issuer: a, subject: c } ]\n      threshold: 2\n")
        .unwrap_or_else(|e| panic!("{e}"));
    for (cosign, field, says) in [
        (
            "      keys: [ { name: ci, publicKey: $KEY_A } ]\n      trustedRootFile: missing.json\n",
            "cosign.trustedRootFile",
            "cannot read",
        ),
        (
            "      keys: [ { name: ci, publicKey: $KEY_A } ]\n      trustedRootFile: not-a-root.json\n",
            "cosign.trustedRootFile",
            "not a Sigstore trusted root",
        ),
        (
            "      keys: [ { name: ci, publicKey: $KEY_A } ]\n      trustedRootFile: empty-root.json\n",
            "cosign.trustedRootFile",
            "lists no transparency log",
        ),
        (
            "      keys: [ { name: ci, publicKey: $KEY_A } ]\n      trustedRootFile: trusted_root.json\n      transparencyLog: ignore\n",
            "cosign.trustedRootFile",
            "only read when transparencyLog is required",
        ),
        (
            "      trustedRootFile: trusted_root.json\n      keyless:\n        trustedRootFile: other.json\n        identities: [ { issuer: a, subject: b } ]\n",
            "cosign.keyless.trustedRootFile",
            "give one trusted root",
        ),
        (
            "      keyless:\n        trustedRootFile: trusted_root.json\n        identities: []\n",
            "cosign.keyless.identities",
            "give 1 to 32 identities",
        ),
        (
            "      keyless:\n        trustedRootFile: trusted_root.json\n        identities: [ { issuer: a, issuerRegExp: a, subject: b } ]\n",
            "cosign.keyless.identities[0].issuer",
            "one of them",
        ),
        (
            "      keyless:\n        trustedRootFile: trusted_root.json\n        identities: [ { issuer: a } ]\n",
            "cosign.keyless.identities[0].subject",
            "one of them",
        ),
        (
            "      keyless:\n        trustedRootFile: trusted_root.json\n        identities: [ { issuer: a, subjectRegExp: \"(\" } ]\n",
            "cosign.keyless.identities[0].subject",
            "not a regular expression",
        ),
        (
            "      keyless:\n        trustedRootFile: empty-root.json\n        identities: [ { issuer: a, subject: b } ]\n",
            "cosign.keyless.trustedRootFile",
            "lists no transparency log",
        ),
        (
            "      keyless:\n        trustedRootFile: trusted_root.json\n        identities: [ { issuer: a, subject: b } ]\n      threshold: 2\n",
            "cosign.threshold",
            "number of keys and identities (1)",
        ),
    ] {
        let e = load(cosign).expect_err(cosign).to_string();
        assert!(e.contains(field), "{field:?} not in {e}");
        assert!(e.contains(says), "{says:?} not in {e}");
    }
}

#[rstest]
// YAML shape.
#[case::unknown_top_level_field(
    format!("{TR}policies: []\nextra: 1\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::UnknownField { field, .. } if field == "extra"),
    "config.yaml:7:1"
)]
#[case::unknown_notary_field(
    with_notary("      url: https://n.example.com\n      rootKeys: [$KEY_A]\n      urll: https://x\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::UnknownField { field, .. } if field == "urll"),
    "config.yaml:6:7: trustRoots[0].notary: unknown field \"urll\""
)]
#[case::unknown_field_first_in_its_mapping(
    with_notary("      urll: https://x\n      url: https://n.example.com\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::UnknownField { .. }),
    "config.yaml:4:7: trustRoots[0].notary: unknown field \"urll\""
)]
#[case::unknown_policy_field(
    with_policy("  - name: p\n    images: [\"reg.io/**\"]\n    trustroot: ml-platform\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::UnknownField { .. }),
    "policies[0]: unknown field \"trustroot\""
)]
#[case::password_inline_is_not_a_field(
    with_registry("  - host: reg.io\n    credentials: { username: u, password: hunter2 }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::UnknownField { field, .. } if field == "password"),
    "registries[0].credentials: unknown field \"password\""
)]
#[case::wrong_type(
    with_notary("      url: [https://n.example.com]\n      rootKeys: [$KEY_A]\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Yaml { .. }),
    "config.yaml:4:12: trustRoots[0].notary.url"
)]
#[case::missing_required_field(
    format!("{TR}\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Yaml { .. }),
    "policies"
)]
#[case::unknown_mode(
    with_policy("  - name: p\n    images: [\"reg.io/**\"]\n    trustRoot: ml-platform\n    mode: strict\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Yaml { .. }),
    "policies[0].mode"
)]
#[case::unknown_default_action(
    format!("{TR}policies: []\ndefaultAction: maybe\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Yaml { .. }),
    "config.yaml:7:16: defaultAction"
)]
#[case::duplicate_key(
    format!("{TR}policies: []\npolicies: []\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Yaml { .. }),
    "config.yaml:7:1"
)]
#[case::malformed_yaml(
    "trustRoots: [\n".to_owned(),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Yaml { .. }),
    "config.yaml:"
)]
// Names.
#[case::invalid_name(
    format!("trustRoots:\n  - name: ml platform\n    notary: {{ url: https://n.example.com, rootKeys: [$KEY_A] }}\npolicies: []\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::InvalidName { .. }),
    "trustRoots[0]: name"
)]
#[case::duplicate_trust_root(
    format!("{TR}  - name: ml-platform\n    notary: {{ url: https://other.example.com, rootKeys: [$KEY_B] }}\npolicies: []\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::DuplicateName { what: "trust root", first: 0, .. }),
    "trustRoots[1] (ml-platform): name"
)]
#[case::duplicate_policy(
    with_policy("  - { name: p, images: [\"a.io/**\"], action: allow }\n  - { name: p, images: [\"b.io/**\"], action: deny }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::DuplicateName { what: "policy", first: 0, .. }),
    "policies[1] (p): name"
)]
#[case::duplicate_registry_host(
    with_registry("  - host: reg.io\n  - host: Reg.IO\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::DuplicateRegistry { first: 0, .. }),
    "registries[1] (reg.io): host"
)]
// Policies.
#[case::missing_trust_root(
    with_policy("  - { name: p, images: [\"reg.io/**\"], trustRoot: nope }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::UnknownTrustRoot { name, .. } if name == "nope"),
    "policies[0] (p): trustRoot"
)]
#[case::missing_trust_root_in_a_list(
    with_policy("  - { name: p, images: [\"reg.io/**\"], trustRoots: [ml-platform, nope], require: any }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::UnknownTrustRoot { name, .. } if name == "nope"),
    "policies[0] (p): trustRoots[1]"
)]
#[case::trust_root_listed_twice(
    with_policy("  - { name: p, images: [\"reg.io/**\"], trustRoots: [ml-platform, ml-platform] }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::DuplicateTrustRoot { .. }),
    "policies[0] (p): trustRoots[1]"
)]
#[case::empty_trust_roots(
    with_policy("  - { name: p, images: [\"reg.io/**\"], trustRoots: [] }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::NoTrustRootOrAction),
    "policies[0] (p): trustRoots"
)]
#[case::both_trust_root_and_trust_roots(
    with_policy("  - { name: p, images: [\"reg.io/**\"], trustRoot: ml-platform, trustRoots: [ml-platform] }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::BothTrustRootAndTrustRoots),
    "policies[0] (p): trustRoot, trustRoots"
)]
#[case::require_with_one_trust_root(
    with_policy("  - { name: p, images: [\"reg.io/**\"], trustRoot: ml-platform, require: any }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::RequireWithOneRoot),
    "policies[0] (p): require"
)]
#[case::require_is_any_or_all(
    with_policy("  - { name: p, images: [\"reg.io/**\"], trustRoots: [ml-platform], require: most }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Yaml { .. }),
    "policies[0].require"
)]
#[case::trust_root_without_a_kind(
    format!("trustRoots:\n  - name: bare\npolicies: []\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::TrustRootKind { found } if found.is_empty()),
    "trustRoots[0] (bare)"
)]
#[case::notary_and_notation_in_one_trust_root(
    format!("trustRoots:\n  - name: both\n    notary: {{ url: https://n.io, rootKeys: [$KEY_A] }}\n    notation: {{ trustStores: {{ ca: [$NOTATION_CA] }}, trustedIdentities: [\"*\"] }}\npolicies: []\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::TrustRootKind { found } if found == &["notary", "notation"]),
    "trustRoots[0] (both): give exactly one of notary, notation or cosign; found notary and notation"
)]
#[case::notation_without_trust_stores(
    with_notation("      trustedIdentities: [\"*\"]\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Notation { .. }),
    "trustRoots[0] (nv2): notation.trustStores"
)]
#[case::notation_without_identities(
    with_notation("      trustStores: { ca: [$NOTATION_CA] }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Notation { .. }),
    "trustRoots[0] (nv2): notation.trustedIdentities"
)]
#[case::notation_identity_without_state(
    with_notation("      trustStores: { ca: [$NOTATION_CA] }\n      trustedIdentities: [\"x509.subject: C=US, O=acme\"]\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Notation { .. }),
    "trustRoots[0] (nv2): notation.trustedIdentities[0]"
)]
#[case::notation_level_skip_is_a_policy_action(
    with_notation("      trustStores: { ca: [$NOTATION_CA] }\n      trustedIdentities: [\"*\"]\n      level: skip\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Notation { detail } if detail.contains("action: allow")),
    "trustRoots[0] (nv2): notation.level"
)]
#[case::notation_integrity_cannot_be_overridden(
    with_notation("      trustStores: { ca: [$NOTATION_CA] }\n      trustedIdentities: [\"*\"]\n      override: { integrity: log }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Notation { .. }),
    "trustRoots[0] (nv2): notation.override.integrity"
)]
#[case::notation_skip_only_for_revocation(
    with_notation("      trustStores: { ca: [$NOTATION_CA] }\n      trustedIdentities: [\"*\"]\n      override: { expiry: skip }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Notation { detail } if detail.contains("skip is allowed for revocation only")),
    "trustRoots[0] (nv2): notation.override.expiry"
)]
#[case::notation_authenticity_cannot_be_logged(
    with_notation("      trustStores: { ca: [$NOTATION_CA] }\n      trustedIdentities: [\"*\"]\n      override: { authenticity: log }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Notation { detail } if detail.contains("authenticity is always enforced")),
    "trustRoots[0] (nv2): notation.override.authenticity"
)]
#[case::notation_authenticity_cannot_be_skipped_at_audit(
    with_notation("      trustStores: { ca: [$NOTATION_CA] }\n      trustedIdentities: [\"*\"]\n      level: audit\n      override: { authenticity: skip }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Notation { detail } if detail.contains("authenticity is always enforced")),
    "trustRoots[0] (nv2): notation.override.authenticity"
)]
#[case::notation_store_that_is_not_a_certificate(
    with_notation("      trustStores: { ca: [$KEY_A] }\n      trustedIdentities: [\"*\"]\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Notation { .. }),
    "trustRoots[0] (nv2): notation.trustStores.ca[0]"
)]
#[case::notation_crl_that_is_not_one(
    with_notation("      trustStores: { ca: [$NOTATION_CA] }\n      trustedIdentities: [\"*\"]\n      crls: [$NOTATION_CA]\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Notation { detail } if detail.contains("X509 CRL")),
    "trustRoots[0] (nv2): notation.crls[0]"
)]
#[case::notation_crl_file_missing(
    with_notation("      trustStores: { ca: [$NOTATION_CA] }\n      trustedIdentities: [\"*\"]\n      crls: [missing.crl]\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Notation { detail } if detail.contains("missing.crl")),
    "trustRoots[0] (nv2): notation.crls[0]"
)]
#[case::notation_policy_file_needs_its_store_dir(
    with_notation("      trustPolicyFile: trustpolicy.json\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Notation { .. }),
    "trustRoots[0] (nv2): notation.trustStoreDir"
)]
#[case::notation_policy_file_or_inline_not_both(
    with_notation("      trustPolicyFile: trustpolicy.json\n      trustStoreDir: truststore\n      level: audit\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Notation { .. }),
    "trustRoots[0] (nv2): notation.level"
)]
#[case::notation_policy_file_unreadable(
    with_notation("      trustPolicyFile: missing-trustpolicy.json\n      trustStoreDir: truststore\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Notation { detail } if detail.contains("missing-trustpolicy.json")),
    "trustRoots[0] (nv2): notation.trustPolicyFile"
)]
#[case::both_trust_root_and_action(
    with_policy("  - { name: p, images: [\"reg.io/**\"], trustRoot: ml-platform, action: allow }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::BothTrustRootAndAction),
    "policies[0] (p): trustRoot, action"
)]
#[case::neither_trust_root_nor_action(
    with_policy("  - { name: p, images: [\"reg.io/**\"] }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::NoTrustRootOrAction),
    "policies[0] (p)"
)]
#[case::mode_with_action(
    with_policy("  - { name: p, images: [\"reg.io/**\"], action: deny, mode: warn }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::ModeWithAction),
    "policies[0] (p): mode"
)]
#[case::no_images(
    with_policy("  - { name: p, images: [], action: deny }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::NoImages),
    "policies[0] (p): images"
)]
#[case::glob_without_host(
    with_policy("  - { name: p, images: [\"reg.io/**\", alpine], action: deny }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::InvalidGlob { source: GlobError::NoHost, .. }),
    "policies[0] (p): images[1]"
)]
#[case::glob_with_question_mark(
    with_policy("  - { name: p, images: [\"reg.io/ml/x?\"], action: deny }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::InvalidGlob { source: GlobError::Metachar('?'), .. }),
    "policies[0] (p): images[0]"
)]
#[case::glob_docker_hub_short_name(
    with_policy("  - { name: p, images: [\"library/*\"], action: deny }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::InvalidGlob { source: GlobError::NotAHost(_), .. }),
    "policies[0] (p): images[0]"
)]
#[case::empty_namespace_selector(
    with_policy("  - { name: p, images: [\"reg.io/**\"], action: deny, namespaces: {} }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::EmptyNamespaceSelector { .. }),
    "policies[0] (p): namespaces"
)]
#[case::empty_namespace_names(
    with_policy("  - { name: p, images: [\"reg.io/**\"], action: deny, namespaces: { names: [] } }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::EmptyNamespaceSelector { .. }),
    "policies[0] (p): namespaces"
)]
#[case::empty_match_labels(
    with_policy("  - { name: p, images: [\"reg.io/**\"], action: deny, namespaces: { names: [a], matchLabels: {} } }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::EmptyNamespaceSelector { .. }),
    "policies[0] (p): namespaces"
)]
#[case::invalid_namespace_name(
    with_policy("  - { name: p, images: [\"reg.io/**\"], action: deny, namespaces: { names: [prod, Prod_1] } }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::InvalidSelector { what: "namespace name", .. }),
    "policies[0] (p): namespaces.names[1]"
)]
#[case::invalid_label_value(
    with_policy("  - { name: p, images: [\"reg.io/**\"], action: deny, namespaces: { matchLabels: { env: \"prod env\" } } }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::InvalidSelector { what: "label value", .. }),
    "policies[0] (p): namespaces.matchLabels.env"
)]
// Trust roots.
#[case::unparseable_root_key(
    with_notary("      url: https://n.example.com\n      rootKeys: [$KEY_A, \"not a key\"]\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::RootKey { source: PinError::NoKey, .. }),
    "config.yaml: trustRoots[0] (ml-platform): notary.rootKeys[1]: no PEM \"PUBLIC KEY\" or \"CERTIFICATE\" block found"
)]
#[case::corrupt_root_key(
    with_notary("      url: https://n.example.com\n      rootKeys: [\"-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----\\n\"]\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::RootKey { .. }),
    "trustRoots[0] (ml-platform): notary.rootKeys[0]"
)]
#[case::no_root_keys(
    with_notary("      url: https://n.example.com\n      rootKeys: []\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::NoRootKeys),
    "trustRoots[0] (ml-platform): notary.rootKeys"
)]
#[case::missing_root_key_file(
    with_notary("      url: https://n.example.com\n      rootKeyFiles: [keys/absent.pem]\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::RootKeyFile { path, .. } if path == Path::new("/etc/signgate/keys/absent.pem")),
    "trustRoots[0] (ml-platform): notary.rootKeyFiles[0]"
)]
#[case::no_notary_server(
    with_notary("      rootKeys: [$KEY_A]\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::NoNotaryServer),
    "trustRoots[0] (ml-platform): notary.url"
)]
#[case::http_notary_url(
    with_notary("      url: http://notary.example.com\n      rootKeys: [$KEY_A]\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::NotaryUrl { .. }),
    "trustRoots[0] (ml-platform): notary.url"
)]
#[case::http_localhost_notary_url(
    with_notary("      url: http://127.0.0.1:4443\n      rootKeys: [$KEY_A]\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::NotaryUrl { .. }),
    "notary.url"
)]
#[case::notary_url_with_credentials(
    with_notary("      url: https://user:pw@notary.example.com\n      rootKeys: [$KEY_A]\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::NotaryUrl { .. }),
    "notary.url"
)]
#[case::notary_url_not_a_url(
    with_notary("      url: notary.example.com\n      rootKeys: [$KEY_A]\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::InvalidUrl { .. }),
    "trustRoots[0] (ml-platform): notary.url"
)]
#[case::invalid_role(
    with_notary("      url: https://n.example.com\n      rootKeys: [$KEY_A]\n      requireRoles: [targets/releases, root]\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::InvalidRole { .. }),
    "trustRoots[0] (ml-platform): notary.requireRoles[1]"
)]
#[case::upper_case_role(
    with_notary("      url: https://n.example.com\n      rootKeys: [$KEY_A]\n      requireRoles: [targets/Releases]\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::InvalidRole { .. }),
    "notary.requireRoles[0]"
)]
#[case::empty_role_list(
    with_notary("      url: https://n.example.com\n      rootKeys: [$KEY_A]\n      requireRoles: []\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::InvalidRole { .. }),
    "notary.requireRoles"
)]
#[case::empty_path(
    with_notary("      url: https://n.example.com\n      rootKeys: [$KEY_A]\n      caFile: \"\"\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::EmptyPath),
    "trustRoots[0] (ml-platform): notary.caFile"
)]
// Registries.
#[case::registry_host_with_scheme(
    with_registry("  - host: https://reg.io\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::InvalidHost { .. }),
    "registries[0]: host"
)]
#[case::registry_host_with_path(
    with_registry("  - host: reg.io\n  - host: reg.io/ml\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::InvalidHost { .. }),
    "registries[1]: host"
)]
#[case::registry_host_bad_port(
    with_registry("  - host: reg.io:https\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::InvalidHost { .. }),
    "registries[0]: host"
)]
#[case::registry_notary_http(
    with_registry("  - host: reg.io\n    notary: http://notary.reg.io\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::NotaryUrl { .. }),
    "registries[0] (reg.io): notary"
)]
#[case::cosign_log_required_without_a_trusted_root(
    with_cosign("      keys: [ { name: ci, publicKey: $KEY_A } ]\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Cosign { detail } if detail.contains("set trustedRootFile")),
    "trustRoots[0] (cs): cosign.transparencyLog"
)]
#[case::cosign_keyless_with_the_log_ignored(
    with_cosign("      transparencyLog: ignore\n      keyless: { trustedRootFile: tr.json, identities: [ { issuer: a, subject: b } ] }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Cosign { detail } if detail.contains("keyless signatures always need")),
    "trustRoots[0] (cs): cosign.transparencyLog"
)]
#[case::cosign_one_key_written_two_ways(
    with_cosign("      transparencyLog: ignore\n      threshold: 2\n      keys: [ { name: alice, publicKey: $KEY_A }, { name: bob, publicKey: $KEY_A_COMPRESSED } ]\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Cosign { detail } if detail.contains("\"bob\" is the same key as keys[0] (\"alice\")")),
    "trustRoots[0] (cs): cosign.keys[1]"
)]
#[case::cosign_transparency_log_value(
    with_cosign("      transparencyLog: require\n      keys: [ { name: ci, publicKey: $KEY_A } ]\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Cosign { detail } if detail.contains("not required or ignore")),
    "trustRoots[0] (cs): cosign.transparencyLog"
)]
#[case::cosign_neither_keys_nor_keyless(
    with_cosign("      transparencyLog: ignore\n      keys: []\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Cosign { .. }),
    "trustRoots[0] (cs): cosign.keys"
)]
#[case::cosign_key_and_key_file(
    with_cosign("      transparencyLog: ignore\n      keys: [ { name: ci, publicKey: $KEY_A, publicKeyFile: k.pub } ]\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::Cosign { detail } if detail.contains("publicKey (PEM) or publicKeyFile")),
    "trustRoots[0] (cs): cosign.keys[0]"
)]
#[case::credentials_two_forms(
    with_registry("  - host: reg.io\n    credentials: { secretName: pull, dockerConfigFile: config.json }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::CredentialForms { forms, .. } if forms.len() == 2),
    "registries[0] (reg.io): credentials"
)]
#[case::credentials_no_form(
    with_registry("  - host: reg.io\n    credentials: {}\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::CredentialForms { forms, .. } if forms.is_empty()),
    "registries[0] (reg.io): credentials"
)]
#[case::username_without_password_file(
    with_registry("  - host: reg.io\n    credentials: { username: robot }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::IncompleteCredentials { missing: "passwordFile", .. }),
    "registries[0] (reg.io): credentials"
)]
#[case::invalid_secret_name(
    with_registry("  - host: reg.io\n    credentials: { secretName: Harbor_Pull }\n"),
    |e: &ConfigError| matches!(e.kind(), ErrorKind::InvalidCredentialValue { .. }),
    "registries[0] (reg.io): credentials.secretName"
)]
fn refuses_bad_configuration(
    #[case] yaml: String,
    #[case] is_expected: fn(&ConfigError) -> bool,
    #[case] names: &str,
) {
    let err = parse(&yaml).expect_err("configuration should be refused");
    assert!(is_expected(&err), "unexpected error variant: {err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with(ORIGIN.trim_end_matches("config.yaml")),
        "{message}"
    );
    assert!(
        message.contains(names),
        "{message:?} should contain {names:?}"
    );
    assert_eq!(err.at().file, Path::new(ORIGIN));
    assert!(!message.contains('\n'), "one line: {message:?}");
}

#[test]
fn parse_errors_carry_line_column_and_field_path() {
    let err = parse(&with_notary(
        "      url: https://n.example.com\n      rootKeys: [$KEY_A]\n      urll: x\n",
    ))
    .unwrap_err();
    let at = err.at();
    assert_eq!(at.line_column, Some((6, 7)));
    assert_eq!(at.field, "trustRoots[0].notary");
    assert!(
        err.to_string()
            .contains("expected one of url, caFile, rootKeys")
    );

    let err = parse("trustRoots:\n  - name: a\n    notary: { url: https://n.example.com }\n  - notary: { url: https://n.example.com }\npolicies: []\n").unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Yaml { .. }), "{err:?}");
    assert_eq!(err.at().field, "trustRoots[1]");
    assert!(err.to_string().contains("name"), "{err}");
}

#[test]
fn empty_and_null_documents_are_yaml_errors() {
    for text in ["", "# nothing\n", "trustRoots:\npolicies: []\n", "- a\n"] {
        let err = parse(text).unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::Yaml { .. }),
            "{text:?}: {err:?}"
        );
        assert!(err.to_string().starts_with(ORIGIN), "{err}");
    }
}

#[test]
fn load_reports_an_unreadable_file() {
    let path = fixtures().join("absent.yaml");
    let err = Config::load(&path).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("absent.yaml"), "{err}");
}

#[test]
fn files_larger_than_the_cap_are_refused_by_name_not_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("huge.pem");
    std::fs::write(&big, vec![b'A'; signgate::config::MAX_FILE as usize + 1]).unwrap();
    let config = dir.path().join("signgate.yaml");
    std::fs::write(
        &config,
        "trustRoots:\n  - name: t\n    notary:\n      url: https://n.example.com\n      rootKeyFiles: [huge.pem]\npolicies: []\n",
    )
    .unwrap();
    let err = Config::load(&config).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::RootKeyFile { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("rootKeyFiles[0]") && text.contains("huge.pem"),
        "{text}"
    );
    assert!(
        std::error::Error::source(&err).is_some_and(|s| s.to_string().contains("larger than")),
        "{err:?}"
    );

    // The configuration file itself, too.
    std::fs::write(&config, vec![b'#'; signgate::config::MAX_FILE as usize + 1]).unwrap();
    let err = Config::load(&config).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Read { .. }), "{err:?}");
}

#[test]
fn config_error_can_cross_threads() {
    fn assert_send_sync<T: Send + Sync + 'static + std::error::Error>() {}
    assert_send_sync::<ConfigError>();
}

// ------------------------------------------------------------------------------------------------
// Image globs.
// ------------------------------------------------------------------------------------------------

#[rstest]
#[case::double_star_spans_segments(
    "registry.ai-team.internal/ml/**",
    "registry.ai-team.internal/ml/pytorch-cuda",
    true
)]
#[case::double_star_spans_many(
    "registry.ai-team.internal/ml/**",
    "registry.ai-team.internal/ml/a/b/c",
    true
)]
#[case::double_star_matches_zero_segments(
    "registry.ai-team.internal/ml/**",
    "registry.ai-team.internal/ml",
    true
)]
#[case::bypass_host_suffix(
    "registry.ai-team.internal/ml/**",
    "registry.ai-team.internal.evil.com/ml/x",
    false
)]
#[case::bypass_host_in_path(
    "registry.ai-team.internal/ml/**",
    "evil.com/registry.ai-team.internal/ml/x",
    false
)]
#[case::bypass_segment_prefix(
    "registry.ai-team.internal/ml/**",
    "registry.ai-team.internal/mlx/y",
    false
)]
#[case::bypass_other_port(
    "registry.ai-team.internal/ml/**",
    "registry.ai-team.internal:5000/ml/x",
    false
)]
#[case::host_case_is_the_same_registry(
    "registry.ai-team.internal/ml/**",
    "REGISTRY.ai-team.internal/ml/x",
    true
)]
#[case::default_port_is_the_same_registry(
    "registry.ai-team.internal/ml/**",
    "registry.ai-team.internal:443/ml/x",
    true
)]
#[case::literal_default_port_in_glob("reg.io:443/ml/*", "reg.io/ml/x", true)]
#[case::wildcard_host_other_port("*.internal/ml/*", "reg.internal:5000/ml/x", false)]
#[case::path_is_case_sensitive("reg.io/ml/x", "reg.io/ML/x", false)]
#[case::star_one_segment("docker.io/library/*", "docker.io/library/alpine", true)]
#[case::star_not_across_segments("docker.io/library/*", "docker.io/library/alpine/x", false)]
#[case::star_not_zero_segments("docker.io/library/*", "docker.io/library", false)]
#[case::star_other_namespace("docker.io/library/*", "docker.io/pytorch/pytorch", false)]
#[case::star_prefix("docker.io/library/*", "docker.io/librar/alpine", false)]
#[case::index_docker_io_is_docker_io("docker.io/library/*", "index.docker.io/library/alpine", true)]
#[case::star_within_segment("reg.io/ml/pytorch-*", "reg.io/ml/pytorch-cuda", true)]
#[case::star_within_segment_anchored("reg.io/ml/pytorch-*", "reg.io/ml/my-pytorch-cuda", false)]
#[case::star_within_segment_not_slash("reg.io/ml/pytorch-*", "reg.io/ml/pytorch-cuda/x", false)]
#[case::literal_is_exact("reg.io/ml/x", "reg.io/ml/x", true)]
#[case::literal_no_trailing("reg.io/ml/x", "reg.io/ml/xy", false)]
#[case::literal_no_prefix("reg.io/ml/x", "reg.io/ml/x/y", false)]
#[case::double_star_middle("reg.io/**/cuda", "reg.io/cuda", true)]
#[case::double_star_middle_many("reg.io/**/cuda", "reg.io/a/b/cuda", true)]
#[case::double_star_middle_anchored("reg.io/**/cuda", "reg.io/a/b/cuda-x", false)]
#[case::wildcard_host("*.ai-team.internal/ml/*", "registry.ai-team.internal/ml/x", true)]
#[case::wildcard_host_anchored(
    "*.ai-team.internal/ml/*",
    "registry.ai-team.internal.evil.com/ml/x",
    false
)]
#[case::everything("*/**", "docker.io/library/alpine", true)]
#[case::everything_needs_a_path("*/**", "docker.io", false)]
#[case::name_without_path("reg.io/**", "reg.io", false)]
#[case::name_with_empty_segment("reg.io/**", "reg.io//x", false)]
fn globs_match_anchored(#[case] pattern: &str, #[case] name: &str, #[case] expected: bool) {
    let glob = Glob::parse(pattern).unwrap();
    assert_eq!(glob.matches(name), expected, "{pattern} vs {name}");
}

#[rstest]
#[case::empty("", GlobError::Empty)]
#[case::no_slash("alpine", GlobError::NoHost)]
#[case::double_star_alone("**", GlobError::NoHost)]
#[case::empty_segment("docker.io//alpine", GlobError::EmptySegment)]
#[case::leading_slash("/docker.io/alpine", GlobError::EmptySegment)]
#[case::trailing_slash("docker.io/library/", GlobError::EmptySegment)]
#[case::question_mark("docker.io/library/alpin?", GlobError::Metachar('?'))]
#[case::character_class("docker.io/library/[ab]*", GlobError::Metachar('['))]
#[case::braces("docker.io/{a,b}/x", GlobError::Metachar('{'))]
#[case::tag("docker.io/library/alpine:3", GlobError::TagOrDigest)]
#[case::digest("docker.io/library/alpine@sha256:00", GlobError::TagOrDigest)]
#[case::partial_double_star("reg.io/ml**", GlobError::PartialDoubleStar)]
#[case::double_star_host("**/ml/x", GlobError::DoubleStarHost)]
#[case::wildcard_default_port("*.internal:443/x", GlobError::WildcardDefaultPort)]
#[case::hub_short_name("library/alpine", GlobError::NotAHost("library".into()))]
#[case::invalid_host("reg..io/x", GlobError::NotAHost("reg..io".into()))]
#[case::upper_case_path(
    "reg.io/ML/x",
    GlobError::InvalidChar('M', "repository path (lower-case letters, digits, '.', '_', '-')")
)]
#[case::space(
    "reg.io/ml x/y",
    GlobError::InvalidChar(' ', "repository path (lower-case letters, digits, '.', '_', '-')")
)]
fn refuses_invalid_globs(#[case] pattern: &str, #[case] expected: GlobError) {
    assert_eq!(Glob::parse(pattern), Err(expected), "{pattern}");
}

#[test]
fn localhost_and_ports_are_hosts() {
    for p in ["localhost/x", "localhost:5000/x/**", "127.0.0.1:5000/ml/*"] {
        assert!(Glob::parse(p).is_ok(), "{p}");
    }
    assert!(
        Glob::parse("localhost:5000/x/y")
            .unwrap()
            .matches("localhost:5000/x/y")
    );
}
