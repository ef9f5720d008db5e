//! cosign trust roots against byte-real cosign output: Connaisseur's cosign test registry
//! (tests/fixtures/cosign/connaisseur, commit 0c40cab) served in process (`faults::Server`), and
//! Connaisseur's own `TestValidateImage` verdicts replayed through the whole verifier: one
//! signer, three signers on one payload under thresholds and required keys, unsigned, and a
//! keyless signature that no configured key verifies. The signatures name
//! `index.docker.io/securesystemsengineering/testimage` while the registry here is on
//! 127.0.0.1: a mirror of the signed repository, which cosign accepts too.

mod faults;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use time::OffsetDateTime;

use faults::{Reply, Server, sha256_digest};
use signgate::config::Config;
use signgate::policy::Outcome;
use signgate::verifier::{Verifier, VerifierSettings};

const REPO: &str = "securesystemsengineering/testimage";

fn fixture_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cosign/connaisseur")
        .join(rel)
}

fn fixture(rel: &str) -> Vec<u8> {
    let p = fixture_path(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A trust root key by name, from Connaisseur's configuration files.
fn key(name: &str) -> String {
    for (file, roots) in [
        ("01_cosign.yaml", "/trustRoots"),
        (
            "multicosigner-keys.yaml",
            "/application/validators/0/trustRoots",
        ),
    ] {
        let doc: serde_json::Value =
            serde_saphyr::from_str(&String::from_utf8(fixture(file)).unwrap()).unwrap();
        if let Some(k) = doc
            .pointer(roots)
            .and_then(|r| r.as_array())
            .and_then(|r| r.iter().find(|r| r["name"] == name))
        {
            return k["key"].as_str().unwrap().to_owned();
        }
    }
    panic!("no key {name}")
}

/// The tree as distribution would serve it: tags and digests of the image manifests, the `.sig`
/// tags, the payload blobs.
fn registry(path: &str) -> Reply {
    let Some(rest) = path.strip_prefix(&format!("/v2/{REPO}")) else {
        return Reply::not_found();
    };
    let docker = "application/vnd.docker.distribution.manifest.v2+json";
    let images = [
        "multi-cosigned-alice",
        "multi-cosigned-alice-bob-charlie",
        "keyless",
        "co-unsigned",
    ];
    if let Some(reference) = rest.strip_prefix("/manifests/") {
        for tag in images {
            let body = fixture(&format!("testimage/manifests/{tag}.json"));
            let digest = sha256_digest(&body);
            if reference == tag || reference == digest {
                return Reply::registry_doc(docker, body);
            }
        }
        if reference.ends_with(".sig") {
            let rel = format!("testimage/manifests/{reference}.json");
            if fixture_path(&rel).exists() {
                return Reply::registry_doc(docker, fixture(&rel));
            }
        }
        return Reply::not_found();
    }
    if let Some(digest) = rest.strip_prefix("/blobs/") {
        let rel = format!("testimage/blobs/{digest}.json");
        if fixture_path(&rel).exists() {
            return Reply::full(200, "application/octet-stream", fixture(&rel));
        }
    }
    Reply::not_found()
}

fn pem_block(pem: &str) -> String {
    pem.lines().map(|l| format!("            {l}\n")).collect()
}

fn config(dir: &Path, host: &str) -> PathBuf {
    let keys = |names: &[&str]| -> String {
        names
            .iter()
            .map(|n| {
                format!(
                    "        - name: {n}\n          key: |\n{}",
                    pem_block(&key(n))
                )
            })
            .collect()
    };
    let root = |name: &str, extra: &str, names: &[&str]| {
        format!(
            "  - name: {name}\n    cosign:\n      transparencyLog: ignore\n{extra}      keys:\n{}",
            keys(names)
        )
    };
    let roots = [
        root("alice", "", &["alice"]),
        root("alice-bob", "", &["alice", "bob"]),
        root("alice-bob-2", "      threshold: 2\n", &["alice", "bob"]),
        root(
            "all-3",
            "      threshold: 3\n",
            &["alice", "bob", "charlie"],
        ),
        root("need-bob", "      required: [bob]\n", &["alice", "bob"]),
        root(
            "need-bob-alice",
            "      required: [bob, alice]\n",
            &["alice", "bob"],
        ),
    ]
    .concat();
    // Keyless, against sigstore-go's copy of the public-good trusted root (Fulcio, CT log and
    // Rekor keys of 2024): the certificate's identity, then another one.
    std::fs::write(
        dir.join("trusted_root.json"),
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/sigstore-go/trusted-root-public-good.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let keyless = |name: &str, identity: &str| {
        format!(
            "  - name: {name}\n    cosign:\n      keyless:\n        trustedRootFile: trusted_root.json\n        identities: [{identity}]\n"
        )
    };
    let roots = [
        roots,
        keyless(
            "keyless",
            "{ issuer: \"https://github.com/login/oauth\", subject: philipp.belitz@securesystems.de }",
        ),
        keyless(
            "keyless-re",
            "{ issuerRegExp: \"https://github\\\\.com/.*\", subjectRegExp: \".*@securesystems\\\\.de\" }",
        ),
        keyless(
            "keyless-other",
            "{ issuer: \"https://github.com/login/oauth\", subject: someone@securesystems.de }",
        ),
        keyless(
            "keyless-google",
            "{ issuer: \"https://accounts.google.com\", subject: philipp.belitz@securesystems.de }",
        ),
    ]
    .concat();
    let policies: String = [
        "alice",
        "alice-bob",
        "alice-bob-2",
        "all-3",
        "need-bob",
        "need-bob-alice",
        "keyless",
        "keyless-re",
        "keyless-other",
        "keyless-google",
    ]
    .iter()
    .map(|r| {
        format!("  - {{ name: {r}, images: [\"{host}/{REPO}\"], namespaces: {{ names: [{r}] }}, trustRoot: {r} }}\n")
    })
    .collect();
    let text = format!(
        "trustRoots:\n{roots}registries:\n  - host: \"{host}\"\n    caFile: registry-ca.pem\npolicies:\n{policies}defaultAction: deny\n"
    );
    std::fs::write(dir.join("registry-ca.pem"), faults::ca_pem()).unwrap();
    let path = dir.join("signgate.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// What one of Connaisseur's cases expects: admitted with this digest and these signers, or denied
/// with this reason label and a reason text containing this.
enum Want<'a> {
    Allowed(&'a str, &'a str),
    Denied(&'a str, &'a str),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connaisseurs_cosign_registry_and_verdicts() {
    let server = Server::tls(registry).await;
    let host = server.url().trim_start_matches("https://").to_owned();
    let dir = tempfile::tempdir().unwrap();
    let config = Config::load(&config(dir.path(), &host)).unwrap_or_else(|e| panic!("{e}"));
    let verifier = Verifier::new(Arc::new(config), VerifierSettings::default()).unwrap();
    let decide = async |image: &str, root: &str| {
        verifier
            .decide(image, root, &BTreeMap::new(), OffsetDateTime::now_utc())
            .await
    };
    const ALICE: &str = "sha256:071bf7a986f1ca9cb2a1f0bc8392822a7777f90d58f2d2c6f271913e08de7c81";
    const THREE: &str = "sha256:bfec161fecb0a887df7cb85e4da327c65986ccda7060cf3cd92171c6c90d7533";
    let who = "philipp.belitz@securesystems.de (https://github.com/login/oauth)";
    let by_who =
        format!("the keyless signature is by {who}, which no identity of the trust root accepts");
    let other_repository = "the signed payload names repository \"docker.io/phbelitz/rekor-test\"";

    // Connaisseur's TestValidateImage, case by case, in this order: (tag, trust root, verdict).
    use Want::{Allowed, Denied};
    for (tag, root, want) in [
        // 1: alice's signature under alice.
        (
            "multi-cosigned-alice",
            "alice",
            Allowed(ALICE, "cosign signer alice"),
        ),
        // 3 and 9: an unsigned image.
        ("co-unsigned", "alice-bob", Denied("no_signature", ".sig")),
        ("co-unsigned", "alice", Denied("no_signature", ".sig")),
        // 5: three signers, threshold 2 over alice and bob.
        (
            "multi-cosigned-alice-bob-charlie",
            "alice-bob-2",
            Allowed(THREE, "cosign signers alice, bob"),
        ),
        // 6: threshold 3 over alice and bob (charlie is not among Connaisseur's keys there): here
        // with charlie's key, all three sign.
        (
            "multi-cosigned-alice-bob-charlie",
            "all-3",
            Allowed(THREE, "cosign signers alice, bob, charlie"),
        ),
        // 7 and 8: bob required, only alice signed.
        (
            "multi-cosigned-alice",
            "need-bob",
            Denied(
                "required_key_missing",
                "0 of 1 required keys signed; missing: bob",
            ),
        ),
        (
            "multi-cosigned-alice",
            "need-bob-alice",
            Denied(
                "required_key_missing",
                "1 of 2 required keys signed; missing: bob",
            ),
        ),
        // Threshold 2 with only alice.
        (
            "multi-cosigned-alice",
            "alice-bob-2",
            Denied("untrusted_signer", "1 of the 2 keys needed signed (alice)"),
        ),
        // The keyless signature (a Fulcio certificate, a Rekor bundle) is no key's.
        (
            "keyless",
            "alice-bob",
            Denied(
                "untrusted_signer",
                "no signature verifies with the trust root's keys",
            ),
        ),
        // The keyless signature under keyless roots, offline: the Fulcio certificate chains to the
        // pinned public-good authority, its SCT verifies, the Rekor SET verifies and its
        // hashedrekord body records this signature, certificate and payload; the certificate
        // (valid ten minutes in May 2024) is judged at the log-attested time, not now. Every step
        // passes, and then the payload's claim decides: this signature was made for
        // `docker.io/phbelitz/rekor-test` and copied beside testimage (cosign ignores
        // docker-reference; signgate does not let a signature vouch for another repository).
        // Claims are read only once a trusted signer signed them, so this denial says the
        // identity, certificate and log entry all held.
        (
            "keyless",
            "keyless",
            Denied("untrusted_signer", other_repository),
        ),
        (
            "keyless",
            "keyless-re",
            Denied("untrusted_signer", other_repository),
        ),
        // Another subject, or the same subject from another issuer: denied, naming who signed.
        (
            "keyless",
            "keyless-other",
            Denied("untrusted_signer", &by_who),
        ),
        (
            "keyless",
            "keyless-google",
            Denied("untrusted_signer", "no identity of the trust root accepts"),
        ),
        // Key-signed images have no certificate: a keyless root finds no signer (and their layers
        // carry no log entry).
        (
            "multi-cosigned-alice",
            "keyless",
            Denied(
                "untrusted_signer",
                "no signature verifies with the trust root's keys or identities",
            ),
        ),
    ] {
        let image = format!("{host}/{REPO}:{tag}");
        let d = decide(&image, root).await;
        let case = format!("{image} under {root}");
        match want {
            Allowed(digest, signers) => {
                assert!(!d.failed(), "{case}: {}", d.reason_text());
                match &d.outcome {
                    Outcome::Verified(v) => {
                        assert_eq!(v.digest.as_str(), digest, "{case}");
                        assert!(v.signers().contains(signers), "{case}: {}", v.signers());
                    }
                    other => panic!("{case}: {other:?}"),
                }
            }
            Denied(reason, says) => {
                assert!(d.failed() && !d.admitted(), "{case} was not denied");
                assert_eq!(d.reason_label(), reason, "{case}: {}", d.reason_text());
                assert!(
                    d.reason_text().contains(says),
                    "{case}: {:?} not in {}",
                    says,
                    d.reason_text()
                );
            }
        }
    }

    // By digest too, and a repeat is served from the verified cache with no new request.
    let by_digest = format!("{host}/{REPO}@{THREE}");
    let d = decide(&by_digest, "alice-bob-2").await;
    assert!(!d.failed(), "{}", d.reason_text());
    let before = server.requests().len();
    let again = decide(&by_digest, "alice-bob-2").await;
    assert!(!again.failed());
    assert!(
        server.requests().len() - before <= 1,
        "{:?}",
        &server.requests()[before..]
    );
}
