//! `cosign:` trust roots against signatures made by the real `cosign` 2.5 (Debian trixie; legacy
//! `sha256-<hex>.sig` layout, `--tlog-upload=false`) in the real registry, and crafted
//! simple-signing payloads (craft.py) for what cosign would not write: a payload naming another
//! digest, or another repository. Decided through `Verifier::decide`, by tag and by digest, under
//! three roots: any one of three keys, two of three, and two required keys; the real
//! `cosign verify` agrees on what it can check.
//!
//! Needs scripts/install-sigtools (scripts/test runs it): without the tools it fails and says so.

mod harness;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use harness::{Cosign, Lab, Pushed, SignerKind};
use signgate::config::Config;
use signgate::policy::ImageDecision;
use signgate::verifier::{Verifier, VerifierSettings};
use time::OffsetDateTime;

fn yaml_pem(pem: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    pem.lines()
        .map(|l| format!("{pad}{l}\n"))
        .collect::<String>()
}

#[test]
fn cosign_2_signatures_under_thresholds_and_required_keys() {
    let lab = Lab::start();
    let alice = harness::cosign_generate_key_pair(&lab, "alice");
    let bob = harness::cosign_generate_key_pair(&lab, "bob");
    let carol = harness::crafted_signer(&lab, "carol", SignerKind::SelfSigned, 30);
    let carol_pem = std::fs::read_to_string(&carol.public).unwrap();
    let host = lab.registry_host();

    let push = |repo: &str| -> (Pushed, String, String) {
        let p = lab.push_image(repo, "v1", &format!("cosign {repo}"));
        let by_digest = harness::image_ref(&lab, repo, &p);
        (p, by_digest, format!("{host}/{repo}:v1"))
    };
    let (_, one, one_tag) = push("cosign/one");
    harness::cosign2_sign(&lab, &one, &alice);
    let (_, two, two_tag) = push("cosign/two");
    harness::cosign2_sign(&lab, &two, &alice);
    harness::cosign2_sign(&lab, &two, &bob);
    let (_, unsigned, _) = push("cosign/unsigned");
    // carol (crafted P-256 key): one good signature, one over a payload naming another image's
    // digest, one naming another repository.
    let attach = |repo: &str, target: &Pushed, names_digest: &str, names_repo: &str| {
        let (payload, sig) = harness::craft_cosign_simple(
            &lab,
            &carol,
            names_digest,
            &format!("{host}/{names_repo}"),
        );
        harness::append_cosign_sig_layer(&lab, repo, target.digest.as_str(), &payload, &sig);
    };
    let (c, carol_img, _) = push("cosign/carol");
    attach("cosign/carol", &c, c.digest.as_str(), "cosign/carol");
    let (m, moved, _) = push("cosign/moved");
    let (other, _, _) = push("cosign/other");
    attach("cosign/moved", &m, other.digest.as_str(), "cosign/moved");
    let (e, elsewhere, _) = push("cosign/elsewhere");
    attach("cosign/elsewhere", &e, e.digest.as_str(), "cosign/other");

    // The real cosign agrees where it can: alice's key verifies one, not unsigned.
    assert!(harness::cosign_verify(&lab, Cosign::V2, &one, &alice.public).ok());
    assert!(!harness::cosign_verify(&lab, Cosign::V2, &unsigned, &alice.public).ok());

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bob.pub"), &bob.public_pem).unwrap();
    let ca = lab.ca_pem_path().display();
    let keys = |names: &[&str]| {
        let mut out = String::new();
        for n in names {
            match *n {
                "alice" => out.push_str(&format!(
                    "        - name: alice\n          key: |\n{}",
                    yaml_pem(&alice.public_pem, 12)
                )),
                // A key file, relative to the configuration.
                "bob" => out.push_str("        - name: bob\n          keyFile: bob.pub\n"),
                _ => out.push_str(&format!(
                    "        - name: carol\n          key: |\n{}",
                    yaml_pem(&carol_pem, 12)
                )),
            }
        }
        out
    };
    let text = format!(
        "trustRoots:
  - name: any-key
    cosign:
      transparencyLog: ignore
      keys:
{any}  - name: two-of-three
    cosign:
      transparencyLog: ignore
      threshold: 2
      keys:
{any}  - name: alice-and-bob
    cosign:
      transparencyLog: ignore
      required: [alice, bob]
      keys:
{ab}registries:
  - host: \"{host}\"
    caFile: {ca}
policies:
  - {{ name: any, images: [\"{host}/cosign/**\"], namespaces: {{ names: [any] }}, trustRoot: any-key }}
  - {{ name: two, images: [\"{host}/cosign/**\"], namespaces: {{ names: [two] }}, trustRoot: two-of-three }}
  - {{ name: both, images: [\"{host}/cosign/**\"], namespaces: {{ names: [both] }}, trustRoot: alice-and-bob }}
defaultAction: deny
",
        any = keys(&["alice", "bob", "carol"]),
        ab = keys(&["alice", "bob"]),
    );
    let path = dir.path().join("signgate.yaml");
    std::fs::write(&path, text).unwrap();
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let verifier = Verifier::new(Arc::new(config), VerifierSettings::default()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let decide = |image: &str, ns: &str| -> ImageDecision {
        rt.block_on(verifier.decide(image, ns, &BTreeMap::new(), OffsetDateTime::now_utc()))
    };
    let allowed = |image: &str, ns: &str, signers: &str| {
        let d = decide(image, ns);
        assert!(!d.failed(), "{image} in {ns}: {}", d.reason_text());
        let text = format!("{:?}", d.outcome);
        assert!(text.contains(signers), "{image} in {ns}: {text}");
    };
    let denied = |image: &str, ns: &str, reason: &str, says: &str| {
        let d = decide(image, ns);
        assert!(
            d.failed() && !d.admitted(),
            "{image} in {ns} was not denied"
        );
        assert_eq!(
            d.reason_label(),
            reason,
            "{image} in {ns}: {}",
            d.reason_text()
        );
        assert!(
            d.reason_text().contains(says),
            "{image} in {ns}: {}",
            d.reason_text()
        );
    };

    for (image, by) in [(&one, "digest"), (&one_tag, "tag")] {
        eprintln!("one by {by}");
        allowed(image, "any", "cosign signer alice");
        denied(
            image,
            "two",
            "untrusted_signer",
            "1 of the 2 keys needed signed (alice)",
        );
        denied(
            image,
            "both",
            "untrusted_signer",
            "1 of 2 required keys signed; missing: bob",
        );
    }
    for image in [&two, &two_tag] {
        allowed(image, "any", "cosign signers alice, bob");
        allowed(image, "two", "cosign signers alice, bob");
        allowed(image, "both", "cosign signers alice, bob");
    }
    denied(&unsigned, "any", "no_signature", ".sig manifest");
    allowed(&carol_img, "any", "cosign signer carol");
    denied(
        &carol_img,
        "both",
        "untrusted_signer",
        "missing: alice, bob",
    );
    denied(&moved, "any", "digest_mismatch", other.digest.as_str());
    denied(&elsewhere, "any", "untrusted_signer", "names repository");
}

/// The configuration refuses what signgate cannot verify yet, and keys it cannot use, naming the
/// field.
#[test]
fn cosign_roots_are_refused_with_the_field_that_is_wrong() {
    // A real P-256 public key (a notary root key of the interop fixtures).
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/interop/signed/root-key.pem"
    ))
    .unwrap();
    let pem = pem.as_str();
    let root = |body: &str| format!("trustRoots:\n  - name: c\n    cosign:\n{body}policies: []\n");
    let key = format!(
        "      keys:\n        - name: ci\n          key: |\n{}",
        yaml_pem(pem, 12)
    );
    let ok = root(&format!("      transparencyLog: ignore\n{key}"));
    Config::parse(&ok, Path::new("signgate.yaml")).unwrap_or_else(|e| panic!("{e}"));
    for (body, says) in [
        (key.clone(), "transparencyLog"),
        (format!("      transparencyLog: require\n{key}"), "does not verify Rekor"),
        ("      transparencyLog: ignore\n      keys: []\n".to_owned(), "cosign.keys"),
        (format!("      transparencyLog: ignore\n      threshold: 2\n{key}"), "cosign.threshold"),
        (format!("      transparencyLog: ignore\n      required: [nobody]\n{key}"), "no key named \"nobody\""),
        (
            "      transparencyLog: ignore\n      keys:\n        - name: ci\n          key: not a key\n".to_owned(),
            "cosign.keys[0]",
        ),
        (
            format!("      transparencyLog: ignore\n{key}        - name: ci2\n          key: |\n{}", yaml_pem(pem, 12)),
            "the same key as keys[0]",
        ),
        ("      transparencyLog: ignore\n      keys:\n        - name: ci\n".to_owned(), "give key (PEM) or keyFile"),
    ] {
        let e = Config::parse(&root(&body), Path::new("signgate.yaml"))
            .err()
            .unwrap_or_else(|| panic!("accepted:\n{body}"))
            .to_string();
        assert!(e.contains(says), "{says:?} not in: {e}");
    }
    let both = "trustRoots:\n  - name: c\n    notation: {}\n    cosign: {keys: []}\npolicies: []\n";
    let e = Config::parse(both, Path::new("signgate.yaml"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("found notation and cosign"), "{e}");
}
