//! The fuzz harnesses: one function per target, each taking the raw input bytes.
//!
//! Shared by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`, nightly) and by the stable replay
//! test `tests/fuzz_corpus.rs`, which includes this file with `#[path]` and runs every file of
//! `fuzz/corpus/<target>/` through the same function. A harness must never panic on any input
//! except to report a broken property: every `assert!` here is an invariant of signgate's parsers.
//!
//! Only `signgate`, `serde_json` and `time` are used, so the file compiles in both crates.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use signgate::admission::{self, Operation};
use signgate::config::Config;
use signgate::notary::metadata::{Envelope, Root, Snapshot, Targets, Timestamp};
use signgate::notary::{self, Limits, PinnedKey, RoleRule};
use signgate::notation::{
    self as nv2, Descriptor, Identity, Level, TrustPolicy, TrustStores, VerifyTimestamp,
};
use signgate::pki::Certificate;
use signgate::policy::{self, Glob, PolicyTarget};
use signgate::reference::{Digest, Reference};
use signgate::scheme::{OciName, Scheme, Subject};
use signgate::tuf::canonical;

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// Every target, by the name of its corpus directory and binary.
pub const TARGETS: &[(&str, Target)] = &[
    ("admission_review", admission_review),
    ("image_reference", image_reference),
    ("metadata", metadata),
    ("verify_repository", verify_repository),
    ("canonical_json", canonical_json),
    ("config", config),
    ("notation", notation),
    ("cosign", cosign),
];

// ------------------------------------------------------------------------------ admission

/// An AdmissionReview body: `parse_review`, `images`, `images_to_verify`, then the response
/// helpers fed with what the body carries.
pub fn admission_review(data: &[u8]) {
    let Ok(review) = admission::parse_review(data) else {
        return;
    };
    let Ok(workload) = admission::images(&review) else {
        return;
    };
    let all = workload.images();
    let to_verify = admission::images_to_verify(&review, &workload);
    // What is verified is always a subset of what the object runs.
    for c in &to_verify {
        assert!(all.contains(c), "images_to_verify invented {c:?}");
    }
    match review.operation {
        // A CREATE verifies every image: nothing is skipped on a new object.
        Operation::Create => assert_eq!(to_verify.len(), all.len(), "CREATE skipped an image"),
        Operation::Delete | Operation::Connect => {
            assert!(to_verify.is_empty(), "DELETE/CONNECT verified an image")
        }
        Operation::Update => {}
    }
    // An UPDATE without oldObject verifies everything.
    if review.operation == Operation::Update && review.old_object.is_none() {
        assert_eq!(
            to_verify.len(),
            all.len(),
            "UPDATE without oldObject skipped an image"
        );
    }
    for c in all {
        let _ = Reference::parse(&c.image);
    }
    let warnings = admission::sanitize_warnings(
        all.iter()
            .map(|c| format!("image {:?} (container {:?}) warn", c.image, c.container))
            .collect(),
    );
    let mut total = 0;
    for w in &warnings {
        let n = w.chars().count();
        assert!(n <= admission::MAX_WARNING_CHARS, "warning of {n} chars");
        assert!(!w.chars().any(char::is_control), "control char in warning");
        total += n;
    }
    assert!(
        total <= admission::MAX_WARNINGS_TOTAL_CHARS,
        "warnings total {total} chars"
    );
    let failures: Vec<policy::ImageFailure> = to_verify
        .iter()
        .map(|c| policy::ImageFailure {
            image: c.image.clone(),
            container: c.container.clone(),
            policy: "p".into(),
            reason: "r".into(),
        })
        .collect();
    let message = policy::denial_message(&failures);
    let _ = admission::denied(&review.uid, message, Vec::new(), BTreeMap::new());
}

// ------------------------------------------------------------------------------ references

/// An image reference: `Reference::parse`, then the normalisation and anchoring invariants the
/// policy match relies on.
pub fn image_reference(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(reference) = Reference::parse(text) else {
        return;
    };
    // Normalisation is a fixpoint: the printed form parses to the same reference.
    let printed = reference.to_string();
    assert_eq!(
        Reference::parse(&printed).as_ref(),
        Ok(&reference),
        "{text:?} printed as {printed:?} does not parse back"
    );
    let gun = reference.gun();
    assert!(
        reference.tag().is_some() || reference.digest().is_some(),
        "{text:?}: neither tag nor digest (docker defaults to :latest)"
    );
    if let Some(d) = reference.digest() {
        let hex = d.as_str().strip_prefix("sha256:").unwrap_or_default();
        assert!(
            hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            "{text:?}: digest {d} accepted"
        );
    }
    // The GUN is a name: it parses as a reference to itself with the default tag.
    let again = Reference::parse(&gun).unwrap_or_else(|e| panic!("GUN {gun:?} of {text:?}: {e}"));
    assert_eq!(again.gun(), gun, "GUN of {text:?} is not stable");

    // A literal glob of the name matches it, and only it (anchored at both ends, per segment).
    if let Ok(glob) = Glob::parse(&gun) {
        assert!(
            glob.matches(&gun),
            "literal glob {gun:?} does not match itself"
        );
        for other in [
            format!("{gun}x"),
            format!("{gun}/x"),
            format!("evil.com/{gun}"),
            format!("{gun}.evil.com"),
        ] {
            assert!(
                !glob.matches(&other),
                "literal glob {gun:?} matches {other:?}"
            );
        }
        if let Some((host, path)) = gun.split_once('/') {
            let other = format!("{host}.evil.com/{path}");
            assert!(!glob.matches(&other), "glob {gun:?} matches {other:?}");
        }
    }
    if let Some((host, _)) = gun.split_once('/')
        && let Ok(glob) = Glob::parse(&format!("{host}/ml/**"))
    {
        let path = reference.path();
        let inside = path == "ml" || path.starts_with("ml/");
        assert_eq!(
            glob.matches(&gun),
            inside,
            "{host}/ml/** vs {gun:?}: anchoring broken"
        );
    }
}

// ------------------------------------------------------------------------------ TUF metadata

const METADATA_ROLES: &[&str] = &[
    "root",
    "targets",
    "snapshot",
    "timestamp",
    "targets/releases",
];

/// One metadata document parsed as every role: `Envelope::parse`, then the typed body.
pub fn metadata(data: &[u8]) {
    let cap = 4 * 1024 * 1024;
    for role in METADATA_ROLES {
        let Ok(env) = Envelope::parse(data, role, cap) else {
            continue;
        };
        match *role {
            "root" => {
                if let Ok(root) = Root::parse(&env) {
                    for name in ["root", "targets", "snapshot", "timestamp"] {
                        let _ = root.role(name);
                    }
                }
            }
            "snapshot" => {
                let _ = Snapshot::parse(&env);
            }
            "timestamp" => {
                let _ = Timestamp::parse(&env);
            }
            _ => {
                let _ = Targets::parse(&env, role);
            }
        }
    }
}

// ------------------------------------------------------------------------------ verification

/// The committed interop set `tests/fixtures/interop/signed`, made by the real notary tools.
const SIGNED: &[(&str, &[u8])] = &[
    (
        "1.root.json",
        include_bytes!("../../tests/fixtures/interop/signed/1.root.json"),
    ),
    (
        "2.root.json",
        include_bytes!("../../tests/fixtures/interop/signed/2.root.json"),
    ),
    (
        "root.json",
        include_bytes!("../../tests/fixtures/interop/signed/root.json"),
    ),
    (
        "snapshot.json",
        include_bytes!("../../tests/fixtures/interop/signed/snapshot.json"),
    ),
    (
        "targets.json",
        include_bytes!("../../tests/fixtures/interop/signed/targets.json"),
    ),
    (
        "targets/ci.json",
        include_bytes!("../../tests/fixtures/interop/signed/targets/ci.json"),
    ),
    (
        "targets/releases.json",
        include_bytes!("../../tests/fixtures/interop/signed/targets/releases.json"),
    ),
    (
        "timestamp.json",
        include_bytes!("../../tests/fixtures/interop/signed/timestamp.json"),
    ),
];
const SIGNED_ROOT_KEY: &[u8] = include_bytes!("../../tests/fixtures/interop/signed/root-key.pem");
const SIGNED_GUN: &str = "registry.ai-team.internal/ml/pytorch-cuda";
/// The case's `now` in `cases.json`.
const SIGNED_NOW: i64 = 1_795_830_109; // 2026-11-28T01:41:49Z

/// What is asked of the set: tags, a tag with its digest, digest-only references.
const VERIFY_REFS: &[&str] = &[
    ":v2.9",
    ":v2.8",
    ":base",
    ":ci-only",
    ":unsigned",
    "@sha256:61cae772b405f5cdc99fb9f3f911955b08db4825bb0be561d56d91f56afa11a9",
    ":v2.9@sha256:61cae772b405f5cdc99fb9f3f911955b08db4825bb0be561d56d91f56afa11a9",
    "@sha256:b22942a2d4b43e87b84a5d81b33d00c86863f1ef7e06951c11e963546d274b40",
];

fn signed_pins() -> &'static [PinnedKey] {
    static PINS: OnceLock<Vec<PinnedKey>> = OnceLock::new();
    PINS.get_or_init(|| PinnedKey::from_pem(SIGNED_ROOT_KEY).unwrap_or_default())
}

fn verify_set(files: &BTreeMap<String, Vec<u8>>, which: usize, rule: &RoleRule) -> Option<String> {
    let image = format!("{SIGNED_GUN}{}", VERIFY_REFS[which % VERIFY_REFS.len()]);
    let reference = Reference::parse(&image).ok()?;
    let root = notary::Pinned {
        keys: signed_pins().to_vec(),
        rule: rule.clone(),
    };
    let subject = Subject {
        reference,
        manifest: None,
    };
    let now = time::OffsetDateTime::from_unix_timestamp(SIGNED_NOW).ok()?;
    notary::Notary::judge(&root, files, &subject, now, &Limits::default())
        .ok()
        .map(|v| v.digest().as_str().to_owned())
}

fn rules() -> [RoleRule; 3] {
    [
        RoleRule::Docker,
        RoleRule::Require(vec!["targets/releases".into()]),
        RoleRule::Require(vec!["targets/releases".into(), "targets".into()]),
    ]
}

/// What the untouched set trusts, per (reference, rule).
pub fn baseline() -> &'static BTreeMap<(usize, usize), Option<String>> {
    static BASE: OnceLock<BTreeMap<(usize, usize), Option<String>>> = OnceLock::new();
    BASE.get_or_init(|| {
        let files: BTreeMap<String, Vec<u8>> = SIGNED
            .iter()
            .map(|(n, b)| ((*n).to_owned(), b.to_vec()))
            .collect();
        let mut out = BTreeMap::new();
        for (r, rule) in rules().iter().enumerate() {
            for which in 0..VERIFY_REFS.len() {
                out.insert((which, r), verify_set(&files, which, rule));
            }
        }
        out
    })
}

/// The full chain over the committed interop set with one file replaced (or added, or removed).
///
/// Input: byte 0 picks the file (`SIGNED` index; past the end: an extra `3.root.json`, or
/// removal of a file when the rest is empty), byte 1 the reference and the role rule, the rest
/// is the file's new content. Property: whatever the replacement, verification never trusts a
/// digest the genuine set does not trust for that reference and rule (the signatures and hashes
/// of every other file pin it).
pub fn verify_repository(data: &[u8]) {
    let [pick, ask, content @ ..] = data else {
        return;
    };
    let mut files: BTreeMap<String, Vec<u8>> = SIGNED
        .iter()
        .map(|(n, b)| ((*n).to_owned(), b.to_vec()))
        .collect();
    let pick = usize::from(*pick) % (SIGNED.len() + 1);
    let name = SIGNED.get(pick).map_or("3.root.json", |(n, _)| n);
    if content.is_empty() {
        files.remove(name);
    } else {
        files.insert(name.to_owned(), content.to_vec());
    }
    let which = usize::from(*ask) % VERIFY_REFS.len();
    let r = (usize::from(*ask) / VERIFY_REFS.len()) % 3;
    let rule = &rules()[r];
    if let Some(got) = verify_set(&files, which, rule) {
        let want = baseline().get(&(which, r)).cloned().flatten();
        assert_eq!(
            Some(&got),
            want.as_ref(),
            "replacing {name} made {} trusted as {got} (genuine: {want:?})",
            VERIFY_REFS[which]
        );
    }
}

// ------------------------------------------------------------------------------ canonical JSON

/// `canonicalize`, and its idempotence whenever the output is JSON again (no raw control bytes,
/// which canonical JSON writes unescaped inside strings).
pub fn canonical_json(data: &[u8]) {
    let Ok(once) = canonical::canonicalize(data) else {
        return;
    };
    if once.iter().any(|&b| b < 0x20) {
        return;
    }
    let twice = canonical::canonicalize(&once);
    assert_eq!(
        twice.as_deref(),
        Ok(once.as_slice()),
        "canonicalize is not idempotent on {:?}",
        String::from_utf8_lossy(&once)
    );
}

// ------------------------------------------------------------------------------ configuration

/// A configuration file: `Config::parse`, then the guarantees a parsed configuration gives.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Relative key files resolve against a directory that does not exist.
    let origin = Path::new("/nonexistent/signgate-fuzz/signgate.yaml");
    let Ok(cfg) = Config::parse(text, origin) else {
        return;
    };
    let mut names = std::collections::BTreeSet::new();
    for p in cfg.policies().iter() {
        assert!(
            names.insert(p.name.clone()),
            "duplicate policy {:?}",
            p.name
        );
        assert!(!p.images.is_empty(), "policy {:?} without images", p.name);
        if let PolicyTarget::Verify { trust_roots, .. } = &p.target {
            assert!(
                !trust_roots.is_empty(),
                "policy {:?} without trust roots",
                p.name
            );
            for trust_root in trust_roots {
                assert!(
                    cfg.trust_root(trust_root).is_some(),
                    "policy {:?} names missing trust root {trust_root:?}",
                    p.name
                );
            }
        }
    }
    for (t, n) in cfg
        .trust_roots()
        .iter()
        .filter_map(|t| Some((t, t.notary()?)))
    {
        assert!(
            !n.root_keys.is_empty(),
            "trust root {:?} without keys",
            t.name
        );
        if let Some(url) = &n.notary_url {
            assert_eq!(url.scheme(), "https", "trust root {:?}", t.name);
        }
        assert!(
            n.notary_url.is_some()
                || n.offline_dir.is_some()
                || cfg.registries().iter().any(|r| r.notary.is_some()),
            "trust root {:?} without a notary server",
            t.name
        );
    }
    let labels = BTreeMap::new();
    for image in [
        "registry.ai-team.internal/ml/pytorch-cuda",
        "docker.io/library/alpine",
        "registry.ai-team.internal.evil.com/ml/x",
    ] {
        let _ = cfg.policies().select_image_name(image, "default", &labels);
    }
}

// ------------------------------------------------------------------------------ notation

/// Notation, in the one shape of every scheme's target: the input becomes a document of a
/// `SignatureSource` and the scheme judges the image ([`Scheme::judge`]). The first byte picks
/// the document: a JWS or COSE envelope (the signature manifest and referrers list around it are
/// built to name it), a signature manifest, a referrers list; or the rest is read as a trust
/// policy document. Each is judged under a fixed policy with and without a tsa store, for an
/// image nobody signed (which must never verify) and for notation-go's mock image.
pub fn notation(data: &[u8]) {
    let [pick, rest @ ..] = data else {
        return;
    };
    let image = Descriptor {
        media_type: "application/vnd.docker.distribution.manifest.v2+json".into(),
        digest: Digest::sha256_of(b"unused"),
        size: 528,
    };
    let mock_image = Descriptor {
        digest: match Digest::parse(
            "sha256:60043cf45eaebc4c0867fea485a039b598f52fd09fd5b07b0b2d2f88fad9d74e",
        ) {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        },
        ..image.clone()
    };
    let now = time::macros::datetime!(2026-12-04 00:00 UTC);
    let limits = nv2::Limits::default();
    let docs = |subject: &Descriptor| -> Option<BTreeMap<String, Vec<u8>>> {
        Some(match pick % 5 {
            0 | 1 => {
                let media = if pick % 5 == 0 {
                    nv2::MEDIA_TYPE_JWS
                } else {
                    nv2::MEDIA_TYPE_COSE
                };
                let manifest = oci_manifest(nv2::ARTIFACT_TYPE, media, rest, &subject.digest);
                oci_source(nv2::ARTIFACT_TYPE, &manifest, Some(rest))
            }
            2 => oci_source(nv2::ARTIFACT_TYPE, rest, None),
            3 => BTreeMap::from([(OciName::Referrers.name(), rest.to_vec())]),
            _ => {
                let _ = nv2::PolicyDocument::parse(rest);
                return None;
            }
        })
    };
    for policy in policies() {
        let root = &nv2::RootPolicy::Inline(policy.clone());
        if let Some(source) = docs(&image) {
            let verdict = judge::<nv2::Notation>(root, &source, &image, now, &limits);
            assert!(
                verdict.is_err(),
                "a signature verified for an image nobody signed: {verdict:?}"
            );
        }
        if let Some(source) = docs(&mock_image) {
            let _ = judge::<nv2::Notation>(root, &source, &mock_image, now, &limits);
        }
    }
    if pick % 5 == 3
        && let Ok(found) = nv2::signature_candidates(rest, 32)
    {
        assert!(found.len() <= 32, "{} candidates", found.len());
    }
}

/// The scheme's judge over `source` for the image `manifest` names, as the verifier runs it.
fn judge<S: Scheme>(
    root: &S::Root,
    source: &BTreeMap<String, Vec<u8>>,
    manifest: &Descriptor,
    now: time::OffsetDateTime,
    limits: &S::Limits,
) -> Result<signgate::verdict::Verified, signgate::verdict::TrustError> {
    let subject = Subject {
        reference: Reference::parse("registry.example/app:v1").map_err(|e| {
            signgate::verdict::TrustError::new(
                signgate::verdict::Reason::Internal,
                None,
                e.to_string(),
            )
        })?,
        manifest: Some(manifest.clone()),
    };
    S::judge(root, source, &subject, now, limits)
}

/// A signature manifest of `artifact_type` for `subject` with one layer: `content` as `media`.
fn oci_manifest(artifact_type: &str, media: &str, content: &[u8], subject: &Digest) -> Vec<u8> {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": Digest::sha256_of(b"{}").as_str(), "size": 2},
        "layers": [{"mediaType": media, "digest": Digest::sha256_of(content).as_str(), "size": content.len()}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject.as_str(), "size": 528},
    })
    .to_string()
    .into_bytes()
}

/// A registry's documents for one signature: a referrers list naming `manifest` (as
/// `artifact_type`), the manifest, and `blob` by digest and size.
fn oci_source(
    artifact_type: &str,
    manifest: &[u8],
    blob: Option<&[u8]>,
) -> BTreeMap<String, Vec<u8>> {
    let m = Digest::sha256_of(manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m.as_str(), "size": manifest.len(), "artifactType": artifact_type}],
    });
    let mut docs = BTreeMap::from([
        (OciName::Referrers.name(), index.to_string().into_bytes()),
        (OciName::Manifest(m.to_string()).name(), manifest.to_vec()),
    ]);
    if let Some(bytes) = blob {
        let name = OciName::Blob(Digest::sha256_of(bytes), bytes.len() as u64).name();
        docs.insert(name, bytes.to_vec());
    }
    docs
}

/// notation-go's test root as the ca store; once more with its GlobalSign TSA root.
fn policies() -> &'static [TrustPolicy] {
    static POLICIES: OnceLock<Vec<TrustPolicy>> = OnceLock::new();
    POLICIES.get_or_init(|| {
        let root = include_bytes!(
            "../../tests/fixtures/notation/notation-go/verifier/testdata/truststore/x509/ca/valid-trust-store/NotationTestRoot.pem"
        );
        let tsa = include_bytes!(
            "../../tests/fixtures/notation/notation-go/verifier/testdata/truststore/x509/tsa/test-timestamp/globalsignRoot.cer"
        );
        let certs = |b: &[u8]| match Certificate::parse_file(b) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        [Vec::new(), certs(tsa)]
            .into_iter()
            .map(|tsa| {
                let stores = TrustStores {
                    ca: certs(root),
                    tsa,
                    ..TrustStores::default()
                };
                match TrustPolicy::new(stores, vec![Identity::Any], Level::Strict, Vec::new(), VerifyTimestamp::Always) {
                    Ok(p) => p,
                    Err(e) => panic!("{e}"),
                }
            })
            .collect()
    })
}

// ------------------------------------------------------------------------------ cosign

/// sigstore-go's copy of the public-good trusted root.
fn public_good() -> &'static std::sync::Arc<signgate::cosign::TrustedRoot> {
    static ROOT: OnceLock<std::sync::Arc<signgate::cosign::TrustedRoot>> = OnceLock::new();
    ROOT.get_or_init(|| {
        std::sync::Arc::new(
            signgate::cosign::TrustedRoot::parse(include_bytes!(
                "../../tests/fixtures/sigstore-go/trusted-root-public-good.json"
            ))
            .expect("public-good trusted root"),
        )
    })
}

/// cosign, in the one shape of every scheme's target: the input becomes a document of a
/// `SignatureSource` — a Sigstore bundle (the referrer manifest and list around it built to
/// name it), a `.sig` manifest, a referrers list — and the scheme judges the image
/// ([`Scheme::judge`]) under a keyless root that accepts any identity under public-good, and under
/// a root with no signer (which must never admit). The bytes are also read as a trusted root, a
/// legacy Rekor annotation, a bundle candidate list and a referrer manifest.
pub fn cosign(data: &[u8]) {
    use signgate::cosign::{self as cs, CosignRoot, Identity, Matcher, bundle, rekor};
    let image = Descriptor {
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        digest: Digest::parse(
            "sha256:0000000000000000000000000000000000000000000000000000000000000000",
        )
        .expect("digest"),
        size: 528,
    };
    let digest = image.digest.clone();
    let any = || Matcher::regex(".*").expect("regex");
    let keyless = CosignRoot {
        keys: vec![],
        threshold: 1,
        required: vec![],
        transparency_log: Some(std::sync::Arc::clone(public_good())),
        identities: vec![Identity {
            issuer: any(),
            subject: any(),
        }],
    };
    let nobody = CosignRoot {
        identities: vec![],
        ..keyless.clone()
    };
    const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
    let bundle_manifest = oci_manifest(BUNDLE, BUNDLE, data, &digest);
    let sources = [
        oci_source(BUNDLE, &bundle_manifest, Some(data)),
        BTreeMap::from([(
            OciName::Manifest(cs::signature_tag(&digest)).name(),
            data.to_vec(),
        )]),
        BTreeMap::from([(OciName::Referrers.name(), data.to_vec())]),
    ];
    let now = time::OffsetDateTime::now_utc();
    let limits = cs::Limits::default();
    for source in &sources {
        let _ = judge::<cs::Cosign>(&keyless, source, &image, now, &limits);
        let verdict = judge::<cs::Cosign>(&nobody, source, &image, now, &limits);
        assert!(
            verdict.is_err(),
            "a root without signers admitted {verdict:?}"
        );
    }
    if let Ok(ev) = bundle::parse(data) {
        let (who, _) = cs::verify_evidence(&nobody, &ev, now);
        assert!(who.is_empty(), "a root without signers counted {who:?}");
    }
    let _ = cs::TrustedRoot::parse(data);
    let _ = cs::signature_layers(data);
    let _ = bundle::candidates(data, 32);
    let _ = bundle::bundle_layer(data, &digest);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = rekor::parse_legacy(text);
    }
}
