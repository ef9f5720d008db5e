//! Notation signatures made by the real `notation` CLI (1.3.2: JWS, COSE, RFC 3161 timestamped by
//! a local `openssl ts` TSA) and Docker Content Trust signatures made by the real `notary` CLI, on
//! images in the lab's real registry (Debian's distribution 2.8: no referrers API, so notation
//! stores through the tag schema), decided by signgate: in process (`Verifier`), by the webhook's
//! handlers (a Pod review through the router), and by `signgate verify --config` (the binary).
//!
//! The migration matrix: Notation only, Notary v1 only, both, neither, under `require: all` and
//! `require: any`; crafted signatures beside real ones (another subject, a CA as leaf, a plugin
//! header, a payload for another digest) and a cosign signature in the same tag-schema index.
//!
//! Needs scripts/install-deps (notary, docker-registry) and scripts/install-sigtools (notation,
//! cosign); scripts/test runs both. Without them the harness fails and says what is missing.

mod harness;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use harness::{
    CraftedSigner, Desc, EnvelopeFormat, EnvelopeOpts, Lab, ManifestStyle, NotationKey, SignOpts,
    SignerKind, Tsa, all_any_policies_yaml, yaml_text,
};
use signgate::config::Config;
use signgate::policy::{ImageDecision, Outcome};
use signgate::verifier::{Verifier, VerifierSettings};
use time::OffsetDateTime;

/// One image of the matrix: its repository and digest reference.
struct Img {
    repo: String,
    desc: Desc,
    reference: String,
    tag_ref: String,
}

fn push(lab: &Lab, repo: &str) -> (Img, harness::Pushed) {
    let p = lab.push_image(repo, "v1", &format!("notation lab {repo}"));
    let img = Img {
        repo: repo.to_owned(),
        reference: harness::image_ref(lab, repo, &p),
        tag_ref: format!("{}/{repo}:v1", lab.registry_host()),
        desc: Desc::of(&p),
    };
    (img, p)
}

fn sign(lab: &Lab, img: &Img, key: &NotationKey, format: EnvelopeFormat, ts: Option<&Tsa>) {
    harness::notation_sign(
        lab,
        &img.reference,
        &SignOpts {
            format,
            timestamp: ts,
            key,
        },
    );
}

/// The configuration: `dct` (Notary v1 at the lab's notary, every lab root pinned), `nv2`
/// (Notation, the signer's trust store and identity), `nv2-ts` (the same with the lab TSA
/// required), policies `all/**` (both, all), `any/**` (both, any), `ts/**` (nv2-ts) and
/// `crafted/**` (the crafted signers' roots, so their junk reaches the certificate rules).
fn config(
    lab: &Lab,
    dir: &Path,
    guns: &[String],
    key: &NotationKey,
    tsa: &Tsa,
    crafted: &[&CraftedSigner],
) -> std::path::PathBuf {
    let host = lab.registry_host();
    let text = format!(
        "trustRoots:
{dct}{nv2}  - name: nv2-ts
    notation:
      trustStores:
        ca: [{store}]
        tsa: [{tsa}]
      trustedIdentities: [\"{identity}\"]
  - name: crafted
    notation:
      trustStores:
        ca: [{crafted}]
      trustedIdentities: [\"*\"]
{registries}{policies}  - name: ts
    images: [\"{host}/ts/**\"]
    trustRoot: nv2-ts
  - name: crafted
    images: [\"{host}/crafted/**\"]
    trustRoot: crafted
defaultAction: deny
",
        dct = yaml_text(&lab.notary_root_yaml("dct", "rootKeyFiles", &lab.root_key_files(guns))),
        nv2 = yaml_text(&key.trust_root_yaml("nv2")),
        registries = yaml_text(&lab.registries_yaml()),
        policies = yaml_text(&all_any_policies_yaml(&host, "dct, nv2")),
        store = key.trust_store_pem.display(),
        identity = key.identity,
        tsa = tsa.root_pem.display(),
        crafted = crafted
            .iter()
            .map(|c| c.trust_pem.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    );
    let path = dir.join("signgate.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn verdict(d: &ImageDecision) -> Result<(String, String), (String, String)> {
    match &d.outcome {
        Outcome::Verified(v) => Ok((v.digest.to_string(), v.signers())),
        Outcome::Failed(e) => Err((e.reason().as_str().to_owned(), e.to_string())),
        other => panic!("{}: {other:?}", d.image),
    }
}

#[test]
fn real_notation_and_notary_signatures_under_all_and_any() {
    let lab = Lab::start();
    let key = harness::notation_generate_test_cert(&lab, "ml-ci");
    let tsa = Tsa::start(&lab);
    let notary = lab.notary();

    // The matrix, once under all/ and once under any/.
    let mut guns = Vec::new();
    let mut images = BTreeMap::new();
    for policy in ["all", "any"] {
        for case in ["both", "notation", "notary", "neither"] {
            let repo = format!("{policy}/{case}");
            let (img, pushed) = push(&lab, &repo);
            if case == "both" || case == "notary" {
                let gun = lab.gun(&repo);
                notary.init_docker_like(&gun);
                notary.sign(&gun, "v1", &pushed, None);
                guns.push(gun);
            }
            if case == "both" || case == "notation" {
                // JWS under all/, COSE under any/: both envelope types through the same path.
                let format = if policy == "all" {
                    EnvelopeFormat::Jws
                } else {
                    EnvelopeFormat::Cose
                };
                sign(&lab, &img, &key, format, None);
            }
            images.insert(repo, img);
        }
    }
    // Timestamped and not, under a root that requires the lab TSA.
    let (ts_signed, _) = push(&lab, "ts/stamped");
    sign(&lab, &ts_signed, &key, EnvelopeFormat::Jws, Some(&tsa));
    let (ts_unstamped, _) = push(&lab, "ts/unstamped");
    sign(&lab, &ts_unstamped, &key, EnvelopeFormat::Cose, None);

    // Crafted beside real: one image whose tag-schema index lists a signature manifest for
    // another subject, a CA-leaf signature, a plugin-header signature, a payload for another
    // digest, and a cosign signature; and the same with one valid signature added.
    let crafted = harness::crafted_signer(&lab, "crafted", SignerKind::SelfSigned, 2);
    let ca_leaf = harness::crafted_signer(&lab, "ca-leaf", SignerKind::CaLeaf, 2);
    let (elsewhere, _) = push(&lab, "crafted/elsewhere");
    let (junk_only, _) = push(&lab, "crafted/junk-only");
    let (junk_and_good, _) = push(&lab, "crafted/junk-and-good");
    let cosigner = harness::cosign_generate_key_pair(&lab, "lab-cosign");
    for img in [&junk_only, &junk_and_good] {
        let attach = |signer: &CraftedSigner,
                      target: &Desc,
                      subject: &Desc,
                      opts: &EnvelopeOpts| {
            let env =
                harness::craft_notation_envelope(&lab, EnvelopeFormat::Jws, signer, target, opts);
            harness::push_notation_signature(
                &lab,
                &img.repo,
                &img.desc.digest,
                subject,
                &env.bytes,
                &env.media_type,
                &env.thumbprints,
                ManifestStyle::Artifact,
            );
        };
        let plain = EnvelopeOpts::default();
        attach(&crafted, &img.desc, &elsewhere.desc, &plain);
        attach(&ca_leaf, &img.desc, &img.desc, &plain);
        attach(
            &crafted,
            &img.desc,
            &img.desc,
            &EnvelopeOpts {
                plugin: Some("com.example.plugin".into()),
                ..EnvelopeOpts::default()
            },
        );
        attach(&crafted, &elsewhere.desc, &img.desc, &plain);
        harness::cosign2_sign(&lab, &img.reference, &cosigner);
    }
    {
        let env = harness::craft_notation_envelope(
            &lab,
            EnvelopeFormat::Cose,
            &crafted,
            &junk_and_good.desc,
            &EnvelopeOpts::default(),
        );
        harness::push_notation_signature(
            &lab,
            &junk_and_good.repo,
            &junk_and_good.desc.digest,
            &junk_and_good.desc,
            &env.bytes,
            &env.media_type,
            &env.thumbprints,
            ManifestStyle::Legacy,
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let config_path = config(&lab, dir.path(), &guns, &key, &tsa, &[&crafted, &ca_leaf]);
    let config = Config::load(&config_path).unwrap_or_else(|e| panic!("{e}"));
    let verifier = Verifier::new(Arc::new(config), VerifierSettings::default()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let decide = |image: &str| {
        rt.block_on(verifier.decide(image, "ml", &BTreeMap::new(), OffsetDateTime::now_utc()))
    };

    // The matrix, by tag (what a Pod names) and by digest.
    for (policy, case, allowed) in [
        ("all", "both", true),
        ("all", "notation", false),
        ("all", "notary", false),
        ("all", "neither", false),
        ("any", "both", true),
        ("any", "notation", true),
        ("any", "notary", true),
        ("any", "neither", false),
    ] {
        let img = &images[&format!("{policy}/{case}")];
        for reference in [&img.tag_ref, &img.reference] {
            let d = decide(reference);
            match (verdict(&d), allowed) {
                (Ok((digest, signers)), true) => {
                    assert_eq!(digest, img.desc.digest, "{reference}");
                    if case != "notary" {
                        assert!(
                            signers.contains("nv2: CN=ml-ci") || signers.contains("nv2: C=US"),
                            "{reference}: {signers}"
                        );
                    }
                    if case != "notation" {
                        assert!(signers.contains("dct: targets"), "{reference}: {signers}");
                    }
                }
                (Err((reason, message)), false) => {
                    let expected: &[&str] = match case {
                        "notation" => &[
                            "repository_not_signed",
                            "tag_not_signed",
                            "digest_not_signed",
                        ],
                        "notary" => &["no_signature"],
                        _ => &["repository_not_signed", "no_signature"],
                    };
                    assert!(
                        expected.contains(&reason.as_str()),
                        "{reference}: {reason}: {message}"
                    );
                }
                (v, _) => panic!("{reference} ({policy}/{case}): {v:?}"),
            }
        }
    }

    // Timestamps: required by nv2-ts, verified against the lab TSA.
    assert!(verdict(&decide(&ts_signed.tag_ref)).is_ok());
    let (reason, message) = verdict(&decide(&ts_unstamped.tag_ref)).unwrap_err();
    assert_eq!(reason, "invalid_timestamp", "{message}");

    // Crafted: junk alone is refused with the most telling reason; a valid one beside it wins.
    let (reason, message) = verdict(&decide(&junk_only.reference)).unwrap_err();
    assert!(
        [
            "invalid_certificate",
            "digest_mismatch",
            "unsupported_signature"
        ]
        .contains(&reason.as_str()),
        "{reason}: {message}"
    );
    assert!(message.contains("4 found"), "{message}");
    let (digest, _) = verdict(&decide(&junk_and_good.reference)).unwrap();
    assert_eq!(digest, junk_and_good.desc.digest);

    // The webhook's handlers: a Pod naming the dual-signed image under all/ and the
    // Notation-only image under all/: denied, naming the image and the failing root.
    let review = |images: &[&str]| {
        let containers: Vec<serde_json::Value> = images
            .iter()
            .enumerate()
            .map(|(i, image)| serde_json::json!({"name": format!("c{i}"), "image": image}))
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "0d9c5f7e-1b2a-4c3d-8e9f-a0b1c2d3e4f5",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": "ml", "operation": "CREATE",
                "userInfo": {"username": "system:serviceaccount:ml:ci"},
                "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "trainer", "namespace": "ml"},
                           "spec": {"containers": containers}}}
        }))
        .unwrap()
    };
    let settings = VerifierSettings::default();
    let metrics = Arc::clone(&settings.metrics);
    let state = Arc::new(signgate::runtime::ConfigState::load(&config_path, settings).unwrap());
    let router = signgate::webhook::router(Arc::new(signgate::webhook::AppState {
        config: state,
        metrics: Arc::clone(&metrics),
        namespaces: signgate::upstream::NamespaceLabels::None,
        limit: Arc::new(tokio::sync::Semaphore::new(8)),
        deadline: std::time::Duration::from_secs(8),
    }));
    let post = |body: Vec<u8>| {
        rt.block_on(async {
            use tower::ServiceExt as _;
            let req = axum::http::Request::post("/validate?timeout=10s")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body))
                .unwrap();
            let resp = router.clone().oneshot(req).await.unwrap();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
        })
    };
    let both = &images["all/both"].tag_ref;
    let answer = post(review(&[both]));
    assert_eq!(answer["response"]["allowed"], true, "{answer:#}");
    let notation_only = &images["all/notation"].tag_ref;
    let answer = post(review(&[both, notation_only]));
    assert_eq!(answer["response"]["allowed"], false, "{answer:#}");
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains(notation_only.as_str()) && message.contains("dct"),
        "{message}"
    );
    let text = metrics.encode();
    assert!(
        text.lines()
            .any(|l| l.starts_with("signgate_verifications_total{")
                && l.contains("kind=\"notation\"")
                && l.contains("trust_root=\"nv2\"")
                && !l.ends_with(" 0")),
        "{text}"
    );

    // `signgate verify --config`, the binary: each root with its kind and verdict.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_signgate"))
        .args(["verify", &images["any/notation"].tag_ref, "--config"])
        .arg(&config_path)
        .args(["--output", "json"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{doc:#}");
    assert_eq!(doc["trust_roots"][0]["kind"], "notary");
    assert_eq!(doc["trust_roots"][0]["verdict"], "untrusted");
    assert_eq!(doc["trust_roots"][1]["kind"], "notation");
    assert_eq!(doc["trust_roots"][1]["verdict"], "trusted");
    assert_eq!(doc["digest"], images["any/notation"].desc.digest.as_str());
}
