//! `cosign:` trust roots against signatures made by the real `cosign` 2.5 (Debian trixie; legacy
//! `sha256-<hex>.sig` layout, `--tlog-upload=false`) in the real registry, and crafted
//! simple-signing payloads (craft.py) for what cosign would not write: a payload naming another
//! digest, or another repository. Decided through `Verifier::decide`, by tag and by digest, under
//! three roots: any one of three keys, two of three, and two required keys; the real
//! `cosign verify` agrees on what it can check.
//!
//! A second test puts Sigstore bundles beside them: cosign 3.1 (v0.3 DSSE bundles through the
//! referrers tag schema), sigstore-js (its DSSE `keyid` quirk), signatures in both layouts on one
//! image, and signatures with Rekor entries and keyless Fulcio-style certificates from a private
//! Sigstore the harness makes (craft.py `sigstore-root`: CA, CT log and Rekor keys in a
//! `trusted_root.json`): the log required, a SET by a log no trusted root lists, a certificate
//! expired at the log's time, another identity.
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

/// A configuration written to `dir` and loaded into a verifier; images decided in a namespace
/// (each test's policies select their trust root by namespace).
struct Judge {
    verifier: Verifier,
    rt: tokio::runtime::Runtime,
}

impl Judge {
    fn load(dir: &Path, text: &str) -> Judge {
        let path = dir.join("signgate.yaml");
        std::fs::write(&path, text).unwrap();
        let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        Judge {
            verifier: Verifier::new(Arc::new(config), VerifierSettings::default()).unwrap(),
            rt: tokio::runtime::Runtime::new().unwrap(),
        }
    }

    fn decide(&self, image: &str, ns: &str) -> ImageDecision {
        self.rt.block_on(self.verifier.decide(
            image,
            ns,
            &BTreeMap::new(),
            OffsetDateTime::now_utc(),
        ))
    }

    fn allowed(&self, image: &str, ns: &str, signers: &str) {
        let d = self.decide(image, ns);
        assert!(!d.failed(), "{image} in {ns}: {}", d.reason_text());
        let text = format!("{:?}", d.outcome);
        assert!(text.contains(signers), "{image} in {ns}: {text}");
    }

    fn denied(&self, image: &str, ns: &str, reason: &str, says: &str) {
        let d = self.decide(image, ns);
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
    }
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
    let judge = Judge::load(dir.path(), &text);
    let allowed = |image: &str, ns: &str, signers: &str| judge.allowed(image, ns, signers);
    let denied =
        |image: &str, ns: &str, reason: &str, says: &str| judge.denied(image, ns, reason, says);

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
            "required_key_missing",
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
        "required_key_missing",
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
        (format!("      transparencyLog: require\n{key}"), "not required or ignore"),
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
        ("      transparencyLog: ignore\n      keys:\n        - name: ci\n".to_owned(), "give publicKey (PEM) or publicKeyFile"),
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

#[test]
fn bundles_logs_and_keyless_signatures_in_the_real_registry() {
    use harness::{Desc, LogOpts, LoggedSigner};
    let lab = Lab::start();
    let host = lab.registry_host();
    let alice = harness::cosign_generate_key_pair(&lab, "alice");
    let js = harness::crafted_signer(&lab, "js", SignerKind::SelfSigned, 30);
    let dave = harness::crafted_signer(&lab, "dave", SignerKind::SelfSigned, 30);
    let trusted_root = harness::sigstore_root(&lab);
    const GHA: &str = "https://token.actions.githubusercontent.com";
    const CI: &str = "https://github.com/acme/ml/.github/workflows/release.yml@refs/heads/main";

    let push = |repo: &str| -> (Desc, String) {
        let p = lab.push_image(repo, "v1", &format!("bundle {repo}"));
        (Desc::of(&p), harness::image_ref(&lab, repo, &p))
    };
    // cosign 3 (alice) and sigstore-js (js, with its keyid quirk): bundles, no log entry.
    let (_, c3) = push("b/cosign3");
    harness::cosign3_sign(&lab, &c3, &alice);
    let (_, jsimg) = push("b/js");
    let quirk = harness::sigstore_js_sign(&lab, &jsimg, &js.key, true);
    assert!(quirk.keyid.is_some());
    // Both layouts on one image: cosign 2's .sig by alice, a sigstore-js bundle by js.
    let (_, both) = push("b/both");
    harness::cosign2_sign(&lab, &both, &alice);
    harness::sigstore_js_sign(&lab, &both, &js.key, false);
    // A bundle whose statement names another image.
    let (elsewhere, _) = push("b/elsewhere");
    let (moved_desc, moved) = push("b/moved");
    let b = harness::craft_cosign_bundle(&lab, &js, &elsewhere.digest, None);
    harness::push_bundle_referrer(&lab, "b/moved", &moved_desc.digest, &moved_desc, &b);

    // Logged and keyless signatures from the private Sigstore, both layouts each.
    let logged = |repo: &str, signer: LoggedSigner<'_>, bundle: bool, opts: LogOpts| -> String {
        let (d, r) = push(repo);
        let sig = harness::cosign_logged(
            &lab,
            signer,
            &d.digest,
            &format!("{host}/{repo}"),
            bundle,
            opts,
        );
        harness::attach_logged(&lab, repo, &d, &sig);
        r
    };
    let ci = LoggedSigner::Keyless {
        subject: CI,
        issuer: GHA,
    };
    let ok = LogOpts::default();
    let dave_simple = logged("b/dave-simple", LoggedSigner::Key(&dave), false, ok);
    let dave_bundle = logged("b/dave-bundle", LoggedSigner::Key(&dave), true, ok);
    let rogue = LogOpts {
        rogue_log: true,
        ..ok
    };
    let dave_rogue = logged("b/dave-rogue", LoggedSigner::Key(&dave), false, rogue);
    let keyless_simple = logged("b/keyless-simple", ci, false, ok);
    let keyless_bundle = logged("b/keyless-bundle", ci, true, ok);
    let evil = LoggedSigner::Keyless {
        subject: "https://github.com/evil/ml/.github/workflows/release.yml@refs/heads/main",
        issuer: GHA,
    };
    let keyless_evil = logged("b/keyless-evil", evil, true, ok);
    let late = LogOpts {
        after_expiry: true,
        ..ok
    };
    let keyless_expired = logged("b/keyless-expired", ci, false, late);
    let keyless_expired_bundle = logged("b/keyless-expired-bundle", ci, true, late);
    let keyless_rogue = logged("b/keyless-rogue", ci, true, rogue);

    // The real cosign 3 agrees with the private Sigstore's keyless signatures, both layouts:
    // accepts the good ones, refuses those whose certificate expired before the log's time and
    // the one logged by a rogue log.
    for (image, ok) in [
        (&keyless_simple, true),
        (&keyless_bundle, true),
        (&keyless_expired, false),
        (&keyless_expired_bundle, false),
        (&keyless_rogue, false),
    ] {
        let r = harness::cosign_verify_keyless(&lab, Cosign::V3, image, &trusted_root, CI, GHA);
        assert_eq!(r.ok(), ok, "cosign 3 verify {image}: {}", r.stderr());
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&trusted_root, dir.path().join("trusted_root.json")).unwrap();
    let pem = |p: &Path| yaml_pem(&std::fs::read_to_string(p).unwrap(), 12);
    let key = |name: &str, p: &Path| {
        format!("        - name: {name}\n          publicKey: |\n{}", pem(p))
    };
    let ca = lab.ca_pem_path().display();
    let text = format!(
        "trustRoots:
  - name: keys
    cosign:
      transparencyLog: ignore
      keys:
{alice}{js}  - name: two
    cosign:
      transparencyLog: ignore
      threshold: 2
      keys:
{alice}{js}  - name: logged
    cosign:
      trustedRootFile: trusted_root.json
      keys:
{alice}{dave}  - name: keyless
    cosign:
      keyless:
        trustedRootFile: trusted_root.json
        identities:
          - {{ issuer: \"{GHA}\", subjectRegExp: \"https://github\\\\.com/acme/.*\" }}
registries:
  - host: \"{host}\"
    caFile: {ca}
policies:
  - {{ name: keys, images: [\"{host}/b/**\"], namespaces: {{ names: [keys] }}, trustRoot: keys }}
  - {{ name: two, images: [\"{host}/b/**\"], namespaces: {{ names: [two] }}, trustRoot: two }}
  - {{ name: logged, images: [\"{host}/b/**\"], namespaces: {{ names: [logged] }}, trustRoot: logged }}
  - {{ name: keyless, images: [\"{host}/b/**\"], namespaces: {{ names: [keyless] }}, trustRoot: keyless }}
defaultAction: deny
",
        alice = key("alice", &alice.public),
        js = key("js", &js.public),
        dave = key("dave", &dave.public),
    );
    let judge = Judge::load(dir.path(), &text);
    let allowed = |image: &str, ns: &str, signers: &str| judge.allowed(image, ns, signers);
    let denied =
        |image: &str, ns: &str, reason: &str, says: &str| judge.denied(image, ns, reason, says);

    // Bundles by key, the log ignored.
    allowed(&c3, "keys", "cosign signer alice");
    allowed(&jsimg, "keys", "cosign signer js");
    allowed(&both, "keys", "cosign signers alice, js");
    // Two keys over two layouts make a threshold of two.
    allowed(&both, "two", "cosign signers alice, js");
    denied(
        &c3,
        "two",
        "untrusted_signer",
        "1 of the 2 keys needed signed (alice)",
    );
    denied(&moved, "keys", "digest_mismatch", &elsewhere.digest);

    // The log required: a SET from the pinned log, both layouts; none, or a rogue log's, refused.
    allowed(&dave_simple, "logged", "cosign signer dave");
    allowed(&dave_bundle, "logged", "cosign signer dave");
    denied(
        &c3,
        "logged",
        "transparency_log",
        "has no transparency log entry",
    );
    denied(
        &dave_rogue,
        "logged",
        "transparency_log",
        "which the trusted root does not list",
    );

    // Keyless: the lab CA's certificate, its SCT, the SET, the identity by regular expression.
    let who = format!("{CI} ({GHA})");
    allowed(&keyless_simple, "keyless", &who);
    allowed(&keyless_bundle, "keyless", &who);
    denied(
        &keyless_evil,
        "keyless",
        "untrusted_signer",
        "github.com/evil/ml",
    );
    denied(
        &keyless_expired,
        "keyless",
        "certificate_expired",
        "not valid at the log-attested signing time",
    );
    denied(
        &keyless_expired_bundle,
        "keyless",
        "certificate_expired",
        "log-attested",
    );
    denied(
        &keyless_rogue,
        "keyless",
        "transparency_log",
        "which the trusted root does not list",
    );
    // A keyless root does not accept key signatures, nor key roots keyless ones.
    denied(
        &dave_simple,
        "keyless",
        "untrusted_signer",
        "no signature verifies",
    );
    denied(
        &keyless_simple,
        "logged",
        "untrusted_signer",
        "no signature verifies",
    );
}
