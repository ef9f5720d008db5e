//! The migration off Docker Content Trust, end to end through the webhook as kube-apiserver calls
//! it (`signgate serve` as a process, real TLS, HTTP/1.1 keep-alive, `POST /validate?timeout=10s`):
//! one image signed four ways in the real registry — Notary v1 by the real `notary` CLI, Notation
//! by the real `notation` CLI, cosign 2 (legacy `.sig`) and cosign 3 (a v0.3 bundle through the
//! referrers tag schema, beside Notation's entry in the same index), and a keyless bundle from
//! the harness's private Sigstore (Fulcio-style certificate with SCT, Rekor SET and inclusion
//! proof) — decided under `require: all` and `require: any` over the four kinds of trust root.
//!
//! Needs scripts/install-deps and scripts/install-sigtools (scripts/test runs both).

mod harness;
#[allow(unused_imports)]
mod webhook_support;

use harness::{
    Desc, EnvelopeFormat, LogOpts, LoggedSigner, SignOpts, all_any_policies_yaml, yaml_text,
};
use serde_json::Value;
use webhook_support::*;

const GHA: &str = "https://token.actions.githubusercontent.com";
const CI: &str = "https://github.com/acme/ml/.github/workflows/release.yml@refs/heads/main";

#[test]
fn one_image_signed_four_ways_under_all_and_any() {
    let lab = harness::Lab::start();
    let host = lab.registry_host();
    let notary = lab.notary();
    let alice = harness::cosign_generate_key_pair(&lab, "alice");
    let bob = harness::cosign_generate_key_pair(&lab, "bob");
    let nv2 = harness::notation_generate_test_cert(&lab, "ml-release");
    let trusted_root = harness::sigstore_root(&lab);

    // Each image: pushed, then signed by the schemes listed.
    #[derive(Clone, Copy, PartialEq)]
    enum By {
        Notary,
        Notation,
        Cosign2,
        Cosign3,
        Keyless,
    }
    let mut guns = Vec::new();
    let mut make = |repo: &str, by: &[By]| -> String {
        let pushed = lab.push_image(repo, "v1", &format!("migration {repo}"));
        let by_digest = harness::image_ref(&lab, repo, &pushed);
        if by.contains(&By::Notary) {
            let gun = lab.gun(repo);
            notary.init_docker_like(&gun);
            notary.add_delegation(&gun, "targets/releases", "releases");
            notary.sign(&gun, "v1", &pushed, Some("targets/releases"));
            guns.push(gun);
        }
        if by.contains(&By::Notation) {
            harness::notation_sign(
                &lab,
                &by_digest,
                &SignOpts {
                    format: EnvelopeFormat::Jws,
                    timestamp: None,
                    key: &nv2,
                },
            );
        }
        if by.contains(&By::Cosign2) {
            harness::cosign2_sign(&lab, &by_digest, &alice);
        }
        if by.contains(&By::Cosign3) {
            harness::cosign3_sign(&lab, &by_digest, &bob);
        }
        if by.contains(&By::Keyless) {
            let desc = Desc::of(&pushed);
            let sig = harness::cosign_logged(
                &lab,
                LoggedSigner::Keyless {
                    subject: CI,
                    issuer: GHA,
                },
                &desc.digest,
                &format!("{host}/{repo}"),
                true,
                LogOpts::default(),
            );
            harness::attach_logged(&lab, repo, &desc, &sig);
        }
        format!("{host}/{repo}:v1")
    };
    use By::*;
    let all_full = make("all/full", &[Notary, Notation, Cosign2, Cosign3, Keyless]);
    let all_one_cosign_key = make("all/one-cosign-key", &[Notary, Notation, Cosign2, Keyless]);
    let all_no_keyless = make("all/no-keyless", &[Notary, Notation, Cosign2, Cosign3]);
    let any_keyless = make("any/keyless", &[Keyless]);
    let any_cosign = make("any/cosign", &[Cosign2, Cosign3]);
    let any_notary = make("any/notary", &[Notary]);
    let any_none = make("any/none", &[]);

    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&trusted_root, dir.path().join("trusted_root.json")).unwrap();
    let pem_lines = |pem: &str, indent: usize| -> String {
        pem.lines()
            .map(|l| format!("{}{l}\n", " ".repeat(indent)))
            .collect()
    };
    let text = format!(
        "trustRoots:
{dct}{nv2}  - name: cosign-keys
    cosign:
      transparencyLog: ignore
      threshold: 2
      keys:
        - name: alice
          publicKey: |
{alice}        - name: bob
          publicKey: |
{bob}  - name: cosign-keyless
    cosign:
      keyless:
        trustedRootFile: trusted_root.json
        identities: [ {{ issuer: \"{GHA}\", subjectRegExp: \"https://github\\\\.com/acme/.*\" }} ]
{registries}{policies}defaultAction: deny
",
        dct = yaml_text(&lab.notary_root_yaml("dct", "rootKeys", &lab.root_key_pins(&guns))),
        nv2 = yaml_text(&nv2.trust_root_yaml("nv2")),
        registries = yaml_text(&lab.registries_yaml()),
        policies = yaml_text(&all_any_policies_yaml(
            &host,
            "dct, nv2, cosign-keys, cosign-keyless"
        )),
        alice = pem_lines(&alice.public_pem, 12),
        bob = pem_lines(&bob.public_pem, 12),
    );
    let config = dir.path().join("signgate.yaml");
    std::fs::write(&config, text).unwrap();
    let serve = start_serve(&lab, &config, dir.path());
    let client = apiserver_client(&lab);

    let mut n = 0;
    let mut decide = |images: &[&str]| -> Value {
        n += 1;
        let containers: Vec<(String, &str)> = images
            .iter()
            .enumerate()
            .map(|(i, im)| (format!("c{i}"), *im))
            .collect();
        let containers: Vec<(&str, &str)> =
            containers.iter().map(|(c, im)| (c.as_str(), *im)).collect();
        let body = review(
            &uid(n),
            "CREATE",
            "ml-prod",
            POD,
            pod(&containers, &[]),
            Value::Null,
        );
        let (status, resp, version) = post(&client, &serve, body);
        assert_eq!(status, 200, "{resp}");
        assert_eq!(version, reqwest::Version::HTTP_11);
        resp["response"].clone()
    };
    let message = |r: &Value| {
        r["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    // all: every kind verifies the same digest.
    let r = decide(&[&all_full]);
    assert_eq!(r["allowed"], true, "{r:#}");
    // all, one cosign key short of the threshold of two: denied, naming the root and why.
    let r = decide(&[&all_one_cosign_key]);
    assert_eq!(r["allowed"], false, "{r:#}");
    let m = message(&r);
    assert!(
        m.contains(&all_one_cosign_key) && m.contains("cosign-keys"),
        "{m}"
    );
    assert!(m.contains("1 of the 2 keys needed signed (alice)"), "{m}");
    // all, without the keyless signature: denied naming the keyless root.
    let r = decide(&[&all_no_keyless]);
    assert_eq!(r["allowed"], false, "{r:#}");
    assert!(message(&r).contains("cosign-keyless"), "{}", message(&r));
    // any: each kind alone admits; nothing admits nothing.
    for image in [&any_keyless, &any_cosign, &any_notary] {
        let r = decide(&[image]);
        assert_eq!(r["allowed"], true, "{image}: {r:#}");
    }
    let r = decide(&[&any_none]);
    assert_eq!(r["allowed"], false, "{r:#}");
    assert!(message(&r).contains(&any_none), "{}", message(&r));
    // One Pod, four images, four schemes: allowed together; with the unsigned one, denied
    // naming only it.
    let r = decide(&[&all_full, &any_keyless, &any_cosign, &any_notary]);
    assert_eq!(r["allowed"], true, "{r:#}");
    let r = decide(&[&all_full, &any_none]);
    assert_eq!(r["allowed"], false);
    assert!(!message(&r).contains(&all_full), "{}", message(&r));

    // The metrics count each kind's verifications, with bounded labels.
    let metrics = metrics_text(&serve);
    for kind in ["notary", "notation", "cosign"] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("signgate_verifications_total{")
                    && l.contains(&format!("kind=\"{kind}\""))
                    && l.contains("result=\"trusted\"")),
            "no trusted {kind} verification in:\n{metrics}"
        );
    }
    // No tag or digest in any label (repositories appear only as the `gun` of the Notary v1
    // and Notation expiry gauges, as SPEC lists them).
    assert!(
        !metrics.contains(":v1\"") && !metrics.contains("sha256:"),
        "a tag or digest in a label:\n{metrics}"
    );
}
