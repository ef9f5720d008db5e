use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::EncodePublicKey as _;

use super::*;

const DIGEST: &str = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const OTHER: &str = "sha256:60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

fn payload(digest: &str, reference: &str, kind: &str) -> Vec<u8> {
    format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{reference}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"{kind}"}},"optional":null}}"#
    )
    .into_bytes()
}

/// The keys of `root` whose signature over the simple-signing `payload` counts.
fn signers(root: &CosignRoot, payload: &[u8], signature: &[u8]) -> Vec<SignedBy> {
    let ev = Evidence {
        content: Signed::Simple(payload.to_vec()),
        signatures: vec![signature.to_vec()],
        certificate: None,
        tlog: vec![],
    };
    verify_evidence(root, &ev, time::OffsetDateTime::now_utc()).0
}

fn image() -> Reference {
    Reference::parse("registry.example:5000/ml/pytorch-cuda:v2.9").unwrap()
}

fn key(seed: u8) -> (p256::ecdsa::SigningKey, VerifyingKey) {
    let sk = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap();
    let der = sk.verifying_key().to_public_key_der().unwrap();
    (sk, VerifyingKey::from_spki_der(der.as_bytes()).unwrap())
}

fn root(threshold: usize, required: &[&str]) -> (CosignRoot, Vec<p256::ecdsa::SigningKey>) {
    let (a, ka) = key(1);
    let (b, kb) = key(2);
    (
        CosignRoot {
            keys: vec![
                NamedKey {
                    name: "ci".into(),
                    key: ka,
                },
                NamedKey {
                    name: "release".into(),
                    key: kb,
                },
            ],
            threshold,
            required: required.iter().map(|s| (*s).to_owned()).collect(),
            transparency_log: None,
            identities: vec![],
        },
        vec![a, b],
    )
}

fn sign(sk: &p256::ecdsa::SigningKey, payload: &[u8]) -> Vec<u8> {
    let sig: p256::ecdsa::Signature = sk.sign(payload);
    sig.to_der().as_bytes().to_vec()
}

#[test]
fn a_payload_must_name_the_digest_the_repository_and_the_type() {
    let d = Digest::parse(DIGEST).unwrap();
    let good = payload(
        DIGEST,
        "registry.example:5000/ml/pytorch-cuda",
        SIGNATURE_TYPE,
    );
    check_payload(&good, &image(), &d).unwrap();
    let e = check_payload(
        &payload(
            OTHER,
            "registry.example:5000/ml/pytorch-cuda",
            SIGNATURE_TYPE,
        ),
        &image(),
        &d,
    )
    .unwrap_err();
    assert_eq!(e.reason, Reason::DigestMismatch, "{e}");
    assert!(e.detail.contains(OTHER), "{e}");
    let e = check_payload(
        &payload(DIGEST, "registry.example:5000/ml/other", SIGNATURE_TYPE),
        &image(),
        &d,
    )
    .unwrap_err();
    assert_eq!(e.reason, Reason::WrongSubject, "{e}");
    let e = check_payload(
        &payload(
            DIGEST,
            "registry.example:5000/ml/pytorch-cuda",
            "attestation",
        ),
        &image(),
        &d,
    )
    .unwrap_err();
    assert_eq!(e.reason, Reason::WrongSubject, "{e}");
    for junk in [&b"{}"[..], b"[]", b"not json", b""] {
        assert_eq!(
            check_payload(junk, &image(), &d).unwrap_err().reason,
            Reason::Malformed
        );
    }
    // A mirror or pull-through cache of the signed repository: the same path, or the same path
    // under a proxy project; not a repository whose path merely ends alike.
    let signed_at_hub = payload(DIGEST, "index.docker.io/org/app", SIGNATURE_TYPE);
    for mirror in [
        "registry.example:5000/org/app:v1",
        "harbor.example/dockerhub-proxy/org/app:v1",
    ] {
        check_payload(&signed_at_hub, &Reference::parse(mirror).unwrap(), &d).unwrap();
    }
    for other in [
        "harbor.example/myorg/app:v1",
        "harbor.example/xorg/app:v1",
        "docker.io/org/app2:v1",
    ] {
        let e = check_payload(&signed_at_hub, &Reference::parse(other).unwrap(), &d).unwrap_err();
        assert_eq!(e.reason, Reason::WrongSubject, "{other}: {e}");
    }
    // Docker Hub's spellings are one repository.
    let hub = Reference::parse("busybox:1.37").unwrap();
    check_payload(
        &payload(DIGEST, "index.docker.io/library/busybox", SIGNATURE_TYPE),
        &hub,
        &d,
    )
    .unwrap();
}

#[test]
fn signature_layers_are_the_simple_signing_ones_with_a_base64_signature() {
    let layer = |mt: &str, ann: Option<&str>| {
        let ann = ann.map_or(String::new(), |a| {
            format!(r#","annotations":{{"{SIGNATURE_ANNOTATION}":"{a}"}}"#)
        });
        format!(r#"{{"mediaType":"{mt}","size":10,"digest":"{DIGEST}"{ann}}}"#)
    };
    let manifest = |layers: Vec<String>| {
        format!(r#"{{"schemaVersion":2,"layers":[{}]}}"#, layers.join(",")).into_bytes()
    };
    let got = signature_layers(&manifest(vec![
        layer("application/vnd.oci.image.layer.v1.tar", None),
        layer(SIMPLE_SIGNING, Some("c2ln")),
    ]))
    .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].signature, b"sig");
    assert_eq!(got[0].payload_size, 10);
    assert_eq!(
        signature_layers(&manifest(vec![])).unwrap_err().reason,
        Reason::NoSignature
    );
    for bad in [
        manifest(vec![layer(SIMPLE_SIGNING, None)]),
        manifest(vec![layer(SIMPLE_SIGNING, Some("!!"))]),
        b"{\"layers\": 3}".to_vec(),
    ] {
        assert_eq!(
            signature_layers(&bad).unwrap_err().reason,
            Reason::Malformed
        );
    }
    // At most MAX_LAYERS are looked at.
    let many = manifest(
        (0..MAX_LAYERS + 5)
            .map(|_| layer(SIMPLE_SIGNING, Some("c2ln")))
            .collect(),
    );
    assert_eq!(signature_layers(&many).unwrap().len(), MAX_LAYERS);
}

#[test]
fn signers_threshold_and_required_keys() {
    let (r, sks) = root(1, &[]);
    let p = payload(
        DIGEST,
        "registry.example:5000/ml/pytorch-cuda",
        SIGNATURE_TYPE,
    );
    assert_eq!(signers(&r, &p, &sign(&sks[0], &p)), ["ci"]);
    assert_eq!(signers(&r, &p, &sign(&sks[1], &p)), ["release"]);
    // A signature over other bytes, by an unknown key, or garbage: nobody.
    let mut other = p.clone();
    other.push(b' ');
    assert!(signers(&r, &other, &sign(&sks[0], &p)).is_empty());
    let (stranger, _) = key(3);
    assert!(signers(&r, &p, &sign(&stranger, &p)).is_empty());
    assert!(signers(&r, &p, b"\x30\x00").is_empty());

    // Each name its own key here; one key under two names is its own test.
    let set = |names: &[&str]| {
        names
            .iter()
            .map(|s| SignedBy {
                name: (*s).to_owned(),
                key: s.as_bytes().to_vec(),
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(decide(&r, &set(&["ci"])).unwrap(), "cosign signer ci");
    let e = decide(&r, &set(&[])).unwrap_err();
    assert_eq!(e.reason, Reason::Untrusted);
    assert!(e.detail.contains("no signature verifies"), "{e}");

    let (two, _) = root(2, &[]);
    let e = decide(&two, &set(&["ci"])).unwrap_err();
    assert!(
        e.detail.contains("1 of the 2 keys needed signed (ci)"),
        "{e}"
    );
    assert_eq!(
        decide(&two, &set(&["ci", "release"])).unwrap(),
        "cosign signers ci, release"
    );

    let (req, _) = root(1, &["ci", "release"]);
    let e = decide(&req, &set(&["ci"])).unwrap_err();
    assert_eq!(e.detail, "1 of 2 required keys signed; missing: release");

    // One key under two names (a configured key that is also a keyless certificate's key) is
    // one signer; one keyless identity signing with two ephemeral keys is one signer too.
    let by = |name: &str, key: &[u8]| SignedBy {
        name: name.to_owned(),
        key: key.to_vec(),
    };
    let e = decide(&two, &[by("ci", b"k1"), by("ci@example (keyless)", b"k1")]).unwrap_err();
    assert!(
        e.detail
            .contains("1 of the 2 keys needed signed (ci = ci@example (keyless))"),
        "{e}"
    );
    let e = decide(&two, &[by("id", b"k1"), by("id", b"k2")]).unwrap_err();
    assert!(
        e.detail.contains("1 of the 2 keys needed signed (id)"),
        "{e}"
    );
    // Merging is transitive: a–b share a key, b–c a name.
    let e = decide(
        &two,
        &[
            by("a", b"k1"),
            by("b", b"k1"),
            by("b", b"k2"),
            by("c", b"k2"),
        ],
    )
    .unwrap_err();
    assert!(e.detail.contains("(a = b = c)"), "{e}");
    assert_eq!(
        decide(&two, &[by("a", b"k1"), by("b", b"k2")]).unwrap(),
        "cosign signers a, b"
    );
}

#[test]
fn a_key_is_the_same_key_however_it_is_encoded() {
    let (_, vk) = key(1);
    let der = vk.spki_der();
    let point = &der[der.len() - 65..];
    let mut compressed =
        hex::decode("3039301306072a8648ce3d020106082a8648ce3d030107032200").unwrap();
    compressed.push(2 | (point[64] & 1));
    compressed.extend_from_slice(&point[1..33]);
    let again = VerifyingKey::from_spki_der(&compressed).unwrap();
    assert_ne!(again.spki_der(), vk.spki_der());
    assert_eq!(again, vk);
    assert_eq!(again.canonical(), vk.canonical());
    let (_, other) = key(2);
    assert_ne!(other, vk);
}

#[test]
fn other_key_types_verify_as_cosign_signs() {
    use sha2::Digest as _;
    let p = payload(
        DIGEST,
        "registry.example:5000/ml/pytorch-cuda",
        SIGNATURE_TYPE,
    );
    // P-384: ECDSA over the SHA-256 of the payload (cosign's default hash for every key).
    let sk = p384::ecdsa::SigningKey::from_slice(&[7u8; 48]).unwrap();
    let der = sk.verifying_key().to_public_key_der().unwrap();
    let vk = VerifyingKey::from_spki_der(der.as_bytes()).unwrap();
    use p384::ecdsa::signature::hazmat::PrehashSigner as _;
    let sig: p384::ecdsa::Signature = sk.sign_prehash(&sha2::Sha256::digest(&p)).unwrap();
    let r = CosignRoot {
        keys: vec![NamedKey {
            name: "p384".into(),
            key: vk,
        }],
        threshold: 1,
        required: vec![],
        transparency_log: None,
        identities: vec![],
    };
    assert_eq!(signers(&r, &p, sig.to_der().as_bytes()), ["p384"]);
    // Ed25519: over the payload itself.
    let sk = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let der =
        ed25519_dalek::pkcs8::EncodePublicKey::to_public_key_der(&sk.verifying_key()).unwrap();
    let vk = VerifyingKey::from_spki_der(der.as_bytes()).unwrap();
    let sig = ed25519_dalek::Signer::sign(&sk, &p);
    let r = CosignRoot {
        keys: vec![NamedKey {
            name: "ed".into(),
            key: vk,
        }],
        threshold: 1,
        required: vec![],
        transparency_log: None,
        identities: vec![],
    };
    assert_eq!(signers(&r, &p, &sig.to_bytes()), ["ed"]);
}
