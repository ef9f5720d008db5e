//! Notation signatures made by the reference implementation (notation-go's test data, copied
//! with its LICENSE into tests/fixtures/notation/notation-go; see the README there), verified
//! by signgate with the verdict notation-go gives, failure reason included.

use std::path::{Path, PathBuf};

use signgate::notation::{
    Descriptor, Identity, Level, MEDIA_TYPE_COSE, MEDIA_TYPE_JWS, Reason, TrustPolicy, TrustStores,
    VerifyTimestamp, envelope_descriptor, signature_candidates, verify_any, verify_envelope,
};
use signgate::pki::Certificate;
use signgate::reference::Digest;
use time::OffsetDateTime;
use time::macros::datetime;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/notation/notation-go")
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(dir().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn store(rel: &str) -> Vec<Certificate> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir().join(rel)).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        out.extend(Certificate::parse_file(&bytes).unwrap());
    }
    out
}

fn root_store() -> Vec<Certificate> {
    Certificate::parse_file(&read(
        "verifier/testdata/truststore/x509/ca/valid-trust-store/NotationTestRoot.pem",
    ))
    .unwrap()
}

fn policy(stores: TrustStores, level: Level, ts: VerifyTimestamp) -> TrustPolicy {
    TrustPolicy::new(stores, vec![Identity::Any], level, Vec::new(), ts).unwrap()
}

fn ca(certs: Vec<Certificate>) -> TrustStores {
    TrustStores {
        ca: certs,
        ..TrustStores::default()
    }
}

/// The subject of the mock envelopes (notation-go `internal/mock/mocks.go` `ImageDescriptor`).
fn mock_image() -> Descriptor {
    Descriptor {
        media_type: "application/vnd.docker.distribution.manifest.v2+json".into(),
        digest: Digest::parse(
            "sha256:60043cf45eaebc4c0867fea485a039b598f52fd09fd5b07b0b2d2f88fad9d74e",
        )
        .unwrap(),
        size: 528,
    }
}

const NOW: OffsetDateTime = datetime!(2026-12-04 00:00 UTC);

fn mock(name: &str) -> Vec<u8> {
    read(&format!("internal/mock/testdata/{name}.json"))
}

/// Why the mock envelope `name` is refused for the mock image under `policy`.
fn refusal(policy: &TrustPolicy, name: &str) -> Reason {
    verify_envelope(policy, &mock_image(), MEDIA_TYPE_JWS, &mock(name), NOW)
        .unwrap_err()
        .reason()
}

#[test]
fn n1_mock_envelopes_have_notation_gos_verdicts() {
    let ca_policy = policy(ca(root_store()), Level::Strict, VerifyTimestamp::Always);
    let sa_policy = policy(
        TrustStores {
            signing_authority: root_store(),
            ..TrustStores::default()
        },
        Level::Strict,
        VerifyTimestamp::Always,
    );
    let image = mock_image();
    let ok = verify_envelope(
        &ca_policy,
        &image,
        MEDIA_TYPE_JWS,
        &mock("ca_valid_sig_env"),
        NOW,
    )
    .unwrap();
    assert!(ok.signer.contains("CN=Notation Test Root"), "{}", ok.signer);
    assert_eq!(ok.digest, image.digest);
    assert!(ok.logged.is_empty(), "{:?}", ok.logged);
    verify_envelope(
        &sa_policy,
        &image,
        MEDIA_TYPE_JWS,
        &mock("sa_valid_sig_env"),
        NOW,
    )
    .unwrap();

    let cases: &[(&TrustPolicy, &str, Reason)] = &[
        (&ca_policy, "ca_invalid_sig_env", Reason::Integrity),
        (&sa_policy, "sa_invalid_sig_env", Reason::Integrity),
        (&ca_policy, "ca_expired_sig_env", Reason::Expired),
        (&sa_policy, "sa_expired_sig_env", Reason::Expired),
        (
            &ca_policy,
            "ca_plugin_sig_env",
            Reason::UnsupportedSignature,
        ),
        (
            &sa_policy,
            "sa_plugin_sig_env",
            Reason::UnsupportedSignature,
        ),
        // A signingAuthority signature is not trusted through the ca store, nor the reverse.
        (&ca_policy, "sa_valid_sig_env", Reason::UntrustedChain),
        (&sa_policy, "ca_valid_sig_env", Reason::UntrustedChain),
    ];
    for (policy, name, reason) in cases {
        let e = verify_envelope(policy, &image, MEDIA_TYPE_JWS, &mock(name), NOW).unwrap_err();
        assert_eq!(e.reason(), *reason, "{name}: {e}");
    }
    for version in [
        "0.0.9",
        "1.0.0-alpha",
        "1.0.0-alpha.beta",
        "1.0.0",
        "1.0.1",
        "1.0.9",
        "1.1.0-alpha",
        "1.2.3",
    ] {
        let name = if ["1.0.1", "1.0.9", "1.1.0-alpha", "1.2.3"].contains(&version) {
            format!("ca_incompatible_pluginver_sig_env_{version}")
        } else {
            format!("ca_compatible_pluginver_sig_env_{version}")
        };
        let e = verify_envelope(&ca_policy, &image, MEDIA_TYPE_JWS, &mock(&name), NOW).unwrap_err();
        assert_eq!(e.reason(), Reason::UnsupportedSignature, "{name}: {e}");
    }
}

#[test]
fn n1_the_signature_must_name_the_image() {
    let p = policy(ca(root_store()), Level::Strict, VerifyTimestamp::Always);
    let mut other = mock_image();
    other.size = 529;
    let e =
        verify_envelope(&p, &other, MEDIA_TYPE_JWS, &mock("ca_valid_sig_env"), NOW).unwrap_err();
    assert_eq!(e.reason(), Reason::SubjectMismatch, "{e}");
    other = mock_image();
    other.media_type = "application/vnd.oci.image.manifest.v1+json".into();
    let e =
        verify_envelope(&p, &other, MEDIA_TYPE_JWS, &mock("ca_valid_sig_env"), NOW).unwrap_err();
    assert_eq!(e.reason(), Reason::SubjectMismatch, "{e}");
}

#[test]
fn n1_levels_log_what_they_do_not_enforce() {
    let image = mock_image();
    // Expired signature: strict fails, permissive and audit log it.
    for level in [Level::Permissive, Level::Audit] {
        let p = policy(ca(root_store()), level, VerifyTimestamp::Always);
        let v =
            verify_envelope(&p, &image, MEDIA_TYPE_JWS, &mock("ca_expired_sig_env"), NOW).unwrap();
        assert_eq!(v.logged.len(), 1, "{level:?}: {:#?}", v.logged);
        assert_eq!(v.logged[0].reason, Reason::Expired);
    }
    // An untrusted chain: Notation's audit would only log it; signgate enforces authenticity at
    // every level (a trust root must not vouch for whoever signed), and integrity always.
    let wrong = ca(store(
        "verifier/testdata/truststore/x509/tsa/test-timestamp",
    ));
    for level in [Level::Permissive, Level::Audit] {
        let p = policy(wrong.clone(), level, VerifyTimestamp::Always);
        assert_eq!(
            refusal(&p, "ca_valid_sig_env"),
            Reason::UntrustedChain,
            "{level:?}"
        );
        assert_eq!(
            refusal(&p, "ca_invalid_sig_env"),
            Reason::Integrity,
            "{level:?}"
        );
    }
    let wrong_identity = TrustPolicy::new(
        ca(root_store()),
        vec![Identity::parse("x509.subject: C=US, ST=WA, O=someone-else").unwrap()],
        Level::Audit,
        Vec::new(),
        VerifyTimestamp::Always,
    )
    .unwrap();
    assert_eq!(
        refusal(&wrong_identity, "ca_valid_sig_env"),
        Reason::UntrustedIdentity
    );
}

#[test]
fn n1_a_wrong_identity_is_untrusted() {
    let image = mock_image();
    let only = |id: &str| {
        TrustPolicy::new(
            ca(root_store()),
            vec![Identity::parse(id).unwrap()],
            Level::Strict,
            Vec::new(),
            VerifyTimestamp::Always,
        )
        .unwrap()
    };
    let right = only("x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN=Notation Test Root");
    if let Err(e) = verify_envelope(
        &right,
        &image,
        MEDIA_TYPE_JWS,
        &mock("ca_valid_sig_env"),
        NOW,
    ) {
        panic!("{e}");
    }
    let subset = only("x509.subject: C=US, ST=WA, O=Notary, CN=Notation Test Root");
    verify_envelope(
        &subset,
        &image,
        MEDIA_TYPE_JWS,
        &mock("ca_valid_sig_env"),
        NOW,
    )
    .unwrap();
    let wrong = only("x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN=wabbit-networks.io");
    assert_eq!(
        refusal(&wrong, "ca_valid_sig_env"),
        Reason::UntrustedIdentity
    );
}

#[test]
fn n1_a_leaf_outside_its_validity_is_refused() {
    // sig_env_with_metadata: the leaf was valid for one day in January 2023.
    let image = Descriptor {
        media_type: "application/vnd.docker.distribution.manifest.v2+json".into(),
        digest: Digest::parse(
            "sha256:5a07385af4e6b6af81b0ebfd435aedccdfa3507f0609c658209e1aba57159b2b",
        )
        .unwrap(),
        size: 942,
    };
    let bytes = mock("sig_env_with_metadata");
    let p = policy(
        ca(vec![leaf_of(MEDIA_TYPE_JWS, &bytes, &image)]),
        Level::Strict,
        VerifyTimestamp::Always,
    );
    let e = verify_envelope(&p, &image, MEDIA_TYPE_JWS, &bytes, NOW).unwrap_err();
    assert_eq!(e.reason(), Reason::CertificateExpired, "{e}");
    verify_envelope(
        &p,
        &image,
        MEDIA_TYPE_JWS,
        &mock("sig_env_with_metadata"),
        datetime!(2023-01-11 12:00 UTC),
    )
    .unwrap();
}

/// N2: one real image in an OCI layout, signed by notation as JWS and as COSE.
fn layout_image() -> Descriptor {
    let index: serde_json::Value =
        serde_json::from_slice(&read("internal/testdata/oci-layout/index.json")).unwrap();
    let image = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            m["digest"] == "sha256:19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0"
        })
        .expect("the signed image is in the layout's index");
    let digest = Digest::parse(image["digest"].as_str().unwrap()).unwrap();
    let blob = read(&format!(
        "internal/testdata/oci-layout/blobs/sha256/{}",
        digest.hex()
    ));
    assert_eq!(
        Digest::sha256_of(&blob),
        digest,
        "the manifest blob hashes to its digest"
    );
    Descriptor {
        media_type: image["mediaType"].as_str().unwrap().into(),
        digest,
        size: blob.len() as u64,
    }
}

#[test]
fn n2_the_same_image_signed_as_jws_and_cose_verifies_both_ways() {
    let image = layout_image();
    assert_eq!(image.size, 481);
    for (media_type, file) in [
        (MEDIA_TYPE_JWS, "internal/testdata/jws_signature.sig"),
        (MEDIA_TYPE_COSE, "internal/testdata/cose_signature.sig"),
    ] {
        let bytes = read(file);
        // The signer is self-signed (CN=alpine): trusted by pinning its own certificate.
        let leaf = leaf_of(media_type, &bytes, &image);
        let p = policy(ca(vec![leaf]), Level::Strict, VerifyTimestamp::Always);
        let v = verify_envelope(&p, &image, media_type, &bytes, NOW).unwrap();
        assert!(v.signer.contains("CN=alpine"), "{file}: {}", v.signer);
        // Not trusted by another store.
        let other = policy(ca(root_store()), Level::Strict, VerifyTimestamp::Always);
        let e = verify_envelope(&other, &image, media_type, &bytes, NOW).unwrap_err();
        assert_eq!(e.reason(), Reason::UntrustedChain, "{file}: {e}");
        // One flipped byte anywhere in the signature, payload or chain breaks integrity or
        // parsing, or (in the pinned certificate) makes the chain a stranger's.
        let mut bad = bytes.clone();
        let at = bad.len() / 2;
        bad[at] ^= 0x01;
        let e = verify_envelope(&p, &image, media_type, &bad, NOW).unwrap_err();
        assert!(
            matches!(
                e.reason(),
                Reason::Integrity
                    | Reason::Malformed
                    | Reason::InvalidCertificate
                    | Reason::UntrustedChain
            ),
            "{file}: {e}"
        );
        // The envelope read as the other type is malformed, never accepted.
        let swapped = if media_type == MEDIA_TYPE_JWS {
            MEDIA_TYPE_COSE
        } else {
            MEDIA_TYPE_JWS
        };
        assert!(verify_envelope(&p, &image, swapped, &bytes, NOW).is_err());
    }
}

/// The self-signed leaf of an envelope, found by trying the layout's signature with an audit
/// policy (authenticity logged) and reading the certificate from the error-free result's chain.
fn leaf_of(media_type: &str, bytes: &[u8], image: &Descriptor) -> Certificate {
    signgate::notation::envelope_chain(media_type, bytes)
        .unwrap()
        .into_iter()
        .next()
        .map(|der| Certificate::from_der(&der).unwrap())
        .unwrap_or_else(|| panic!("no chain for {}", image.digest))
}

/// A signature manifest for `subject` as notation 1.x writes it (artifactType, empty config).
fn signature_manifest(subject: &Descriptor, envelope: &[u8], media_type: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.cncf.notary.signature",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                   "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2},
        "layers": [{"mediaType": media_type, "digest": Digest::sha256_of(envelope).as_str(), "size": envelope.len()}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest.as_str(), "size": subject.size}
    }))
    .unwrap()
}

#[test]
fn n2_signature_manifests_bind_the_envelope_to_the_image() {
    let image = layout_image();
    let jws = read("internal/testdata/jws_signature.sig");
    let manifest = signature_manifest(&image, &jws, MEDIA_TYPE_JWS);
    let env = envelope_descriptor(&manifest, &image.digest)
        .unwrap()
        .unwrap();
    assert_eq!(env.digest, Digest::sha256_of(&jws));
    assert_eq!(env.size, jws.len() as u64);
    assert_eq!(env.media_type, MEDIA_TYPE_JWS);
    // The same manifest read for another image: refused, whatever its envelope says.
    let other = Digest::sha256_of(b"another image");
    assert_eq!(
        envelope_descriptor(&manifest, &other).unwrap_err().reason(),
        Reason::SubjectMismatch
    );
    // Another artifact type (a cosign bundle in the same index) is not a Notation signature.
    let mut cosign: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    cosign["artifactType"] = "application/vnd.dev.sigstore.bundle.v0.3+json".into();
    assert_eq!(
        envelope_descriptor(&serde_json::to_vec(&cosign).unwrap(), &image.digest).unwrap(),
        None
    );
    // Two layers, or an unknown envelope type, are refused.
    let mut two: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let layer = two["layers"][0].clone();
    two["layers"].as_array_mut().unwrap().push(layer);
    assert_eq!(
        envelope_descriptor(&serde_json::to_vec(&two).unwrap(), &image.digest)
            .unwrap_err()
            .reason(),
        Reason::Malformed
    );
    // The referrers index: Notation entries kept (capped), others skipped.
    let entry = |t: &str, n: u8| {
        serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": t, "digest": Digest::sha256_of(&[n]).as_str(), "size": 10})
    };
    let mut entries = vec![entry("application/vnd.dev.cosign.artifact.sig.v1+json", 0)];
    entries.extend((1..=40).map(|n| entry("application/vnd.cncf.notary.signature", n)));
    let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}))
    .unwrap();
    let found = signature_candidates(&index, 32).unwrap();
    assert_eq!(found.len(), 32);
    assert_eq!(found[0].digest, Digest::sha256_of(&[1]));
    assert_eq!(
        signature_candidates(b"{\"manifests\": 7}", 32)
            .unwrap_err()
            .reason(),
        Reason::Malformed
    );
}

/// N3: RFC 3161 timestamps (GlobalSign tokens); the image of every N3 envelope.
fn n3_image() -> Descriptor {
    Descriptor {
        media_type: "application/vnd.docker.distribution.manifest.v2+json".into(),
        digest: Digest::parse(
            "sha256:c0669ef34cdc14332c0f1ab0c2c01acb91d96014b172f1a76f3a39e63d1f0bda",
        )
        .unwrap(),
        size: 528,
    }
}

fn n3(name: &str) -> (Vec<u8>, &'static str) {
    let bytes = read(&format!("verifier/testdata/timestamp/sigEnv/{name}.sig"));
    let media = if name.starts_with("jws")
        || name == "withoutTimestamp"
        || name == "timestampBeforeNotBefore"
    {
        MEDIA_TYPE_JWS
    } else {
        MEDIA_TYPE_COSE
    };
    (bytes, media)
}

/// notation-go checks these envelopes' timestamps alone (`verifyAuthenticTimestamp`); their
/// self-signed testTSA leaves are pinned here so that the whole verification runs.
fn n3_policy(ts: VerifyTimestamp, with_tsa: bool) -> TrustPolicy {
    let mut ca = store("verifier/testdata/truststore/x509/ca/valid-trust-store");
    for name in [
        "jwsExpiredWithTimestamp",
        "coseExpiredWithTimestamp",
        "timestampBeforeNotBefore",
        "timestampAfterNotAfter",
    ] {
        let (bytes, media) = n3(name);
        ca.push(leaf_of(media, &bytes, &n3_image()));
    }
    policy(
        TrustStores {
            ca,
            tsa: if with_tsa {
                store("verifier/testdata/truststore/x509/tsa/test-timestamp")
            } else {
                Vec::new()
            },
            ..TrustStores::default()
        },
        Level::Strict,
        ts,
    )
}

#[test]
fn n3_timestamps_have_notation_gos_verdicts() {
    let image = n3_image();
    let always = n3_policy(VerifyTimestamp::Always, true);
    for name in [
        "jwsWithTimestamp",
        "coseWithTimestamp",
        "jwsExpiredWithTimestamp",
        "coseExpiredWithTimestamp",
    ] {
        let (bytes, media) = n3(name);
        verify_envelope(&always, &image, media, &bytes, NOW)
            .unwrap_or_else(|e| panic!("{name}: {e} ({:?})", e.reason()));
    }
    // afterCertExpiry: a certificate still valid needs no timestamp.
    let after = n3_policy(VerifyTimestamp::AfterCertExpiry, true);
    let (bytes, media) = n3("withoutTimestamp");
    verify_envelope(&after, &image, media, &bytes, NOW).unwrap();
    for (name, reason) in [
        ("withoutTimestamp", Reason::Timestamp),
        ("timestampBeforeNotBefore", Reason::CertificateExpired),
        ("timestampAfterNotAfter", Reason::CertificateExpired),
    ] {
        let (bytes, media) = n3(name);
        let e = verify_envelope(&always, &image, media, &bytes, NOW).unwrap_err();
        assert_eq!(e.reason(), reason, "{name}: {e}");
    }
    // A TSA the store does not hold: the timestamp does not count.
    let (bytes, media) = n3("jwsWithTimestamp");
    let mut wrong_tsa = n3_policy(VerifyTimestamp::Always, false);
    wrong_tsa = TrustPolicy::new(
        TrustStores {
            tsa: root_store(),
            ..wrong_tsa.stores().clone()
        },
        vec![Identity::Any],
        Level::Strict,
        Vec::new(),
        VerifyTimestamp::Always,
    )
    .unwrap();
    let e = verify_envelope(&wrong_tsa, &image, media, &bytes, NOW).unwrap_err();
    assert_eq!(e.reason(), Reason::Timestamp, "{e}");
    // No tsa store: an expired signing certificate fails even with a timestamp.
    let (bytes, media) = n3("coseExpiredWithTimestamp");
    let e = verify_envelope(
        &n3_policy(VerifyTimestamp::Always, false),
        &image,
        media,
        &bytes,
        NOW,
    )
    .unwrap_err();
    assert_eq!(e.reason(), Reason::CertificateExpired, "{e}");
}

#[test]
fn several_signatures_the_first_that_verifies_wins_and_failures_say_the_most_relevant() {
    let p = policy(ca(root_store()), Level::Strict, VerifyTimestamp::Always);
    let image = mock_image();
    let jws = |n: &str| (MEDIA_TYPE_JWS.to_owned(), mock(n));
    verify_any(
        &p,
        &image,
        &[jws("ca_invalid_sig_env"), jws("ca_valid_sig_env")],
        NOW,
    )
    .unwrap();
    let e = verify_any(
        &p,
        &image,
        &[jws("ca_invalid_sig_env"), jws("ca_expired_sig_env")],
        NOW,
    )
    .unwrap_err();
    assert_eq!(e.reason(), Reason::Expired);
    assert!(e.detail().contains("2 found"), "{e}");
    assert_eq!(
        verify_any::<Vec<u8>>(&p, &image, &[], NOW)
            .unwrap_err()
            .reason(),
        Reason::NoSignature
    );
}

/// An existing `trustpolicy.json` and trust store directory, used as they are: the statement is
/// chosen by the image's repository, and its stores are read from notation-go's layout.
#[test]
fn an_existing_trust_policy_file_and_store_directory_are_used_as_they_are() {
    use signgate::config::{Config, RootKind};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("trustpolicy.json"),
        r#"{"version":"1.0","trustPolicies":[
  {"name":"ml","registryScopes":["registry.example.com/ml/pytorch"],
   "signatureVerification":{"level":"strict"},
   "trustStores":["ca:valid-trust-store"],"trustedIdentities":["*"]},
  {"name":"tools","registryScopes":["registry.example.com/tools/busybox"],"signatureVerification":{"level":"skip"}},
  {"name":"else","registryScopes":["*"],"signatureVerification":{"level":"strict"},
   "trustStores":["tsa:test-timestamp","ca:valid-trust-store"],"trustedIdentities":["x509.subject: C=US, ST=WA, O=wabbit-networks.io"]}]}"#,
    )
    .unwrap();
    let config = format!(
        "trustRoots:\n  - name: nv2\n    notation:\n      trustPolicyFile: trustpolicy.json\n      trustStoreDir: {}\npolicies: []\n",
        dir_of("verifier/testdata/truststore").display()
    );
    let path = dir.path().join("signgate.yaml");
    std::fs::write(&path, config).unwrap();
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let RootKind::Notation(root) = &config.trust_root("nv2").unwrap().kind else {
        panic!("a notation root");
    };
    let image = mock_image();
    let ml = root.select("registry.example.com/ml/pytorch").unwrap();
    verify_envelope(ml, &image, MEDIA_TYPE_JWS, &mock("ca_valid_sig_env"), NOW).unwrap();
    // The global statement trusts another identity only.
    let other = root.select("registry.example.com/ml/other").unwrap();
    assert_eq!(
        refusal(other, "ca_valid_sig_env"),
        Reason::UntrustedIdentity
    );
    // skip verifies nothing, so it vouches for nothing.
    let e = root
        .select("registry.example.com/tools/busybox")
        .unwrap_err();
    assert!(e.detail().contains("skips verification"), "{e}");
}

/// A certificate added to a trust store directory is applied at the next reload, with the
/// configuration and policy files untouched (a store is read as a whole: its listing counts, not
/// only the files read last time), and one removed is dropped again.
#[test]
fn a_certificate_added_to_or_removed_from_a_store_directory_is_applied_at_the_next_reload() {
    use signgate::config::RootKind;
    use signgate::runtime::{ConfigState, Reload};
    use signgate::verifier::VerifierSettings;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("trustpolicy.json"),
        r#"{"version":"1.0","trustPolicies":[{"name":"all","registryScopes":["*"],
   "signatureVerification":{"level":"strict"},"trustStores":["ca:rotating"],"trustedIdentities":["*"]}]}"#,
    )
    .unwrap();
    let from = dir_of("verifier/testdata/truststore/x509/ca/valid-trust-store");
    let store = dir.path().join("truststore/x509/ca/rotating");
    std::fs::create_dir_all(&store).unwrap();
    // A store that does not hold the mock signatures' root.
    std::fs::copy(
        from.join("GlobalSignRootCA.crt"),
        store.join("GlobalSignRootCA.crt"),
    )
    .unwrap();
    let path = dir.path().join("signgate.yaml");
    std::fs::write(
        &path,
        "trustRoots:\n  - name: nv2\n    notation:\n      trustPolicyFile: trustpolicy.json\n      trustStoreDir: truststore\npolicies: []\n",
    )
    .unwrap();
    let state =
        ConfigState::load(&path, VerifierSettings::default()).unwrap_or_else(|e| panic!("{e}"));
    let verdict = |state: &ConfigState| -> Option<Reason> {
        let verifier = state.verifier();
        let RootKind::Notation(root) = &verifier.config().trust_root("nv2").unwrap().kind else {
            panic!("a notation root");
        };
        let policy = root.select("registry.example.com/ml/pytorch").unwrap();
        verify_envelope(
            policy,
            &mock_image(),
            MEDIA_TYPE_JWS,
            &mock("ca_valid_sig_env"),
            NOW,
        )
        .err()
        .map(|e| e.reason())
    };
    assert_eq!(verdict(&state), Some(Reason::UntrustedChain));
    assert_eq!(state.reload(), Reload::Unchanged);

    for f in ["wabbit-networks.io.crt", "NotationTestRoot.pem"] {
        std::fs::copy(from.join(f), store.join(f)).unwrap();
    }
    assert_eq!(
        state.reload(),
        Reload::Applied,
        "a certificate added to the store"
    );
    assert_eq!(verdict(&state), None);

    for f in ["wabbit-networks.io.crt", "NotationTestRoot.pem"] {
        std::fs::remove_file(store.join(f)).unwrap();
    }
    assert_eq!(
        state.reload(),
        Reload::Applied,
        "certificates removed from the store"
    );
    assert_eq!(verdict(&state), Some(Reason::UntrustedChain));
}

fn dir_of(rel: &str) -> PathBuf {
    dir().join(rel)
}

/// The judge behind the one seam walks referrers → signature manifest → envelope by name, and
/// verifies notation-go's valid mock envelope found that way; the same walk over a source whose
/// referrers list names another manifest, or whose envelope is missing, refuses.
#[test]
fn the_judge_reads_the_signature_through_its_source() {
    use signgate::notation::{Notation, RootPolicy};
    use signgate::scheme::{OciName, Scheme, Subject};
    use std::collections::BTreeMap;

    let image = mock_image();
    let envelope = mock("ca_valid_sig_env");
    let manifest = signature_manifest(&image, &envelope, MEDIA_TYPE_JWS);
    let index = |m: &[u8]| {
        serde_json::json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.cncf.notary.signature",
            "digest": Digest::sha256_of(m).as_str(), "size": m.len()}]})
        .to_string()
        .into_bytes()
    };
    let blob = OciName::Blob(Digest::sha256_of(&envelope), envelope.len() as u64).name();
    let source = BTreeMap::from([
        (OciName::Referrers.name(), index(&manifest)),
        (
            OciName::Manifest(Digest::sha256_of(&manifest).to_string()).name(),
            manifest.clone(),
        ),
        (blob.clone(), envelope.clone()),
    ]);
    let root = RootPolicy::Inline(policy(
        ca(root_store()),
        Level::Strict,
        VerifyTimestamp::Always,
    ));
    let subject = Subject {
        reference: signgate::reference::Reference::parse("registry.example/app:v1").unwrap(),
        manifest: Some(image.clone()),
    };
    let judge = |s: &BTreeMap<String, Vec<u8>>| {
        Notation::judge(&root, s, &subject, NOW, &Default::default())
    };
    let v = judge(&source).unwrap();
    assert_eq!(v.digest(), &image.digest);
    assert_eq!(v.expiries().len(), 1, "{v:?}");

    let mut elsewhere = source.clone();
    elsewhere.insert(OciName::Referrers.name(), index(b"another manifest"));
    let e = judge(&elsewhere).unwrap_err();
    assert_eq!(e.reason().as_str(), "image_not_found", "{e}");

    let mut no_envelope = source.clone();
    no_envelope.remove(&blob);
    let e = judge(&no_envelope).unwrap_err();
    assert_eq!(e.reason().as_str(), "image_not_found", "{e}");
}
