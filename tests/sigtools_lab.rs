//! Proves tests/harness/sigtools.rs with the real tools alone (independent of signgate's own
//! verifiers): the lab's images are signed with the real `notation` (JWS, COSE, RFC 3161
//! timestamped, a CA-issued chain), `cosign` 2 and 3 and sigstore-js, plus crafted signatures; then
//! the real `notation verify` (strict trust policy) and `cosign verify --key … --insecure-ignore-tlog`
//! say which verify, and the registry is checked to hold the tag-schema entries the tools wrote.
//!
//! Needs scripts/install-sigtools (scripts/test runs it): without the tools it fails and says so.

mod harness;

use std::path::Path;
use std::time::Instant;

use harness::{
    COSE, Cosign, CraftedSigner, Desc, EnvelopeFormat, EnvelopeOpts, JOSE, Lab, ManifestStyle,
    NOTATION_SIGNATURE, NotationKey, NotationTrust, OCI_EMPTY, SIMPLESIGNING, SigTools, SignOpts,
    SignerKind, Tsa,
};

fn took(what: &str, t: Instant) {
    eprintln!("[sigtools] {what}: {:.1?}", t.elapsed());
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap()
}

/// One image per case, so each verdict of the real tool is about one signature.
struct Img {
    repo: String,
    desc: Desc,
    reference: String,
}

fn push(lab: &Lab, repo: &str) -> Img {
    let p = lab.push_image(repo, "v1", &format!("sigtools {repo}"));
    Img {
        repo: repo.to_owned(),
        reference: harness::image_ref(lab, repo, &p),
        desc: Desc::of(&p),
    }
}

fn strict(signer: &CraftedSigner) -> NotationTrust {
    NotationTrust {
        ca: vec![(signer.name.clone(), signer.trust_pem.clone())],
        tsa: Vec::new(),
        identities: vec![signer.identity.clone()],
        level: "strict".into(),
    }
}

/// Checks the manifest notation 1.3.2 stores here: legacy (no artifactType, config mediaType =
/// the signature type), one envelope layer of `layer_type`, subject = the image.
fn assert_notation_manifest(lab: &Lab, img: &Img, digest: &str, layer_type: &str) {
    let m = json(&harness::fetch_manifest(lab, &img.repo, digest));
    assert_eq!(m["mediaType"], harness::OCI_MANIFEST, "{m}");
    assert!(m.get("artifactType").is_none(), "legacy manifest: {m}");
    assert_eq!(m["config"]["mediaType"], NOTATION_SIGNATURE, "{m}");
    assert_eq!(m["config"]["digest"], harness::EMPTY_DIGEST, "{m}");
    assert_eq!(m["layers"].as_array().unwrap().len(), 1, "{m}");
    assert_eq!(m["layers"][0]["mediaType"], layer_type, "{m}");
    assert_eq!(m["subject"]["digest"], img.desc.digest.as_str(), "{m}");
    assert_eq!(m["subject"]["size"], img.desc.size, "{m}");
}

#[test]
fn real_tools_sign_and_verify_and_refuse_crafted_signatures() {
    let t0 = Instant::now();
    let tools = SigTools::get();
    eprintln!("[sigtools] {}", tools.describe());
    let lab = Lab::start();

    // ---------------------------------------------------------------------------------------
    // notation: JWS, COSE, timestamped JWS, a CA-issued chain
    let t = Instant::now();
    let key = notation_key(&lab);
    let tsa = Tsa::start(&lab);
    let n_jws = push(&lab, "notation/jws");
    assert_eq!(
        harness::referrers_api_status(&lab, &n_jws.repo, &n_jws.desc.digest),
        404,
        "distribution 2.8 has no referrers API: every tool falls back to the tag schema"
    );
    let n_cose = push(&lab, "notation/cose");
    let n_ts = push(&lab, "notation/timestamped");
    let n_chain = push(&lab, "notation/ca-chain");
    let sign = |img: &Img, format, ts: Option<&Tsa>, key: &NotationKey| {
        harness::notation_sign(
            &lab,
            &img.reference,
            &SignOpts {
                format,
                timestamp: ts,
                key,
            },
        )
    };
    let e_jws = sign(&n_jws, EnvelopeFormat::Jws, None, &key);
    let e_cose = sign(&n_cose, EnvelopeFormat::Cose, None, &key);
    let e_ts = sign(&n_ts, EnvelopeFormat::Jws, Some(&tsa), &key);
    assert!(tsa.requests() >= 1, "notation asked the lab TSA");
    let chain_signer = harness::crafted_signer(&lab, "chain-signer", SignerKind::CaIssued, 3650);
    let chain_key = harness::notation_add_key(&lab, &chain_signer);
    let e_chain = sign(&n_chain, EnvelopeFormat::Jws, None, &chain_key);
    for (img, e, layer) in [
        (&n_jws, &e_jws, JOSE),
        (&n_cose, &e_cose, COSE),
        (&n_ts, &e_ts, JOSE),
        (&n_chain, &e_chain, JOSE),
    ] {
        // the index entry carries artifactType; the manifest it lists is the legacy shape
        assert_eq!(
            e.artifact_type.as_deref(),
            Some(NOTATION_SIGNATURE),
            "{e:?}"
        );
        assert!(
            e.annotations.contains_key(harness::THUMBPRINT_ANNOTATION),
            "{e:?}"
        );
        assert_notation_manifest(&lab, img, &e.digest, layer);
    }
    took("notation: 4 signatures", t);

    let t = Instant::now();
    let strict_key = NotationTrust::strict_for(&key);
    for img in [&n_jws, &n_cose, &n_ts] {
        harness::notation_verify(&lab, &img.reference, &strict_key).expect_ok();
    }
    // with a TSA store the timestamp is required, verified against the lab TSA root
    let with_tsa = strict_key.clone().with_tsa(&tsa);
    harness::notation_verify(&lab, &n_ts.reference, &with_tsa).expect_ok();
    let out = harness::notation_verify(&lab, &n_jws.reference, &with_tsa).expect_refused();
    assert!(out.contains("timestamp"), "{out}");
    // the CA-issued chain verifies against its root
    harness::notation_verify(
        &lab,
        &n_chain.reference,
        &NotationTrust::strict_for(&chain_key),
    )
    .expect_ok();
    // another trust store, or another identity: refused
    let other = harness::crafted_signer(&lab, "stranger", SignerKind::SelfSigned, 2);
    harness::notation_verify(&lab, &n_jws.reference, &strict(&other)).expect_refused();
    let mut wrong_id = strict_key.clone();
    wrong_id.identities =
        vec!["x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN=someone-else".into()];
    harness::notation_verify(&lab, &n_jws.reference, &wrong_id).expect_refused();
    took("notation verify: 9 verdicts", t);

    // ---------------------------------------------------------------------------------------
    // cosign 2 (legacy .sig), cosign 3 (bundle), sigstore-js (bundle)
    let t = Instant::now();
    let alice = harness::cosign_generate_key_pair(&lab, "alice");
    let bob = harness::cosign_generate_key_pair(&lab, "bob");
    assert!(alice.public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    let c2 = push(&lab, "cosign/v2");
    let c3 = push(&lab, "cosign/v3");
    let sig = harness::cosign2_sign(&lab, &c2.reference, &alice);
    let sig_manifest = json(&harness::fetch_manifest(&lab, &c2.repo, &sig));
    assert_eq!(sig_manifest["layers"].as_array().unwrap().len(), 1);
    assert_eq!(sig_manifest["layers"][0]["mediaType"], SIMPLESIGNING);
    assert!(harness::referrers_index(&lab, &c2.repo, &c2.desc.digest).is_none());
    let b3 = harness::cosign3_sign(&lab, &c3.reference, &bob);
    // cosign 3.1.1's quirk: the index entry's artifactType is the empty type, not the bundle's
    assert_eq!(b3.artifact_type.as_deref(), Some(OCI_EMPTY), "{b3:?}");
    let m3 = json(&harness::fetch_manifest(&lab, &c3.repo, &b3.digest));
    assert_eq!(m3["artifactType"], harness::BUNDLE_V03, "{m3}");
    assert_eq!(
        m3["config"]["artifactType"],
        harness::BUNDLE_V03,
        "stray: {m3}"
    );
    assert_eq!(m3["layers"][0]["mediaType"], harness::BUNDLE_V03, "{m3}");
    assert_eq!(m3["subject"]["digest"], c3.desc.digest.as_str(), "{m3}");
    let bundle = json(&harness::fetch_blob(
        &lab,
        &c3.repo,
        m3["layers"][0]["digest"].as_str().unwrap(),
    ));
    assert!(bundle["verificationMaterial"]["publicKey"]["hint"].is_string());
    assert!(bundle["verificationMaterial"].get("tlogEntries").is_none());
    assert!(
        bundle["dsseEnvelope"]["signatures"][0]
            .get("keyid")
            .is_none()
    );
    took("cosign: 2 keys, 2 signatures", t);

    let t = Instant::now();
    harness::cosign_verify(&lab, Cosign::V2, &c2.reference, &alice.public).expect_ok();
    harness::cosign_verify(&lab, Cosign::V3, &c2.reference, &alice.public).expect_ok();
    harness::cosign_verify(&lab, Cosign::V2, &c2.reference, &bob.public).expect_refused();
    harness::cosign_verify(&lab, Cosign::V3, &c3.reference, &bob.public).expect_ok();
    harness::cosign_verify(&lab, Cosign::V3, &c3.reference, &alice.public).expect_refused();
    // cosign 2.5 looks for the legacy .sig only (no bundle support by default)
    harness::cosign_verify(&lab, Cosign::V2, &c3.reference, &bob.public).expect_refused();
    took("cosign verify: 6 verdicts", t);

    let t = Instant::now();
    let js_signer = harness::crafted_signer(&lab, "sigstore-js", SignerKind::SelfSigned, 2);
    let js_hint = push(&lab, "sigstore-js/hint");
    let js_plain = push(&lab, "sigstore-js/no-hint");
    let with_hint = harness::sigstore_js_sign(&lab, &js_hint.reference, &js_signer.key, true);
    let without = harness::sigstore_js_sign(&lab, &js_plain.reference, &js_signer.key, false);
    assert!(
        with_hint.keyid.is_some(),
        "sigstore-js puts the hint into the DSSE keyid"
    );
    assert_eq!(without.keyid, None);
    // @sigstore/oci writes the bundle type as the index entry's artifactType (unlike cosign)
    assert_eq!(
        with_hint.entry.artifact_type.as_deref(),
        Some(harness::BUNDLE_V03)
    );
    let out = harness::cosign_verify(&lab, Cosign::V3, &js_hint.reference, &js_signer.public)
        .expect_refused();
    assert!(out.contains("threshold"), "cosign rejects the keyid: {out}");
    harness::cosign_verify(&lab, Cosign::V3, &js_plain.reference, &js_signer.public).expect_ok();
    took("sigstore-js: 2 bundles, 2 verdicts", t);

    // ---------------------------------------------------------------------------------------
    // crafted Notation envelopes, each alone on its image; controls made the same way verify
    let t = Instant::now();
    let crafted = harness::crafted_signer(&lab, "crafted", SignerKind::SelfSigned, 2);
    let ca_leaf = harness::crafted_signer(&lab, "ca-leaf", SignerKind::CaLeaf, 2);
    let elsewhere = push(&lab, "crafted/elsewhere");
    let plain = EnvelopeOpts::default();
    let notation_case = |repo: &str,
                         format: EnvelopeFormat,
                         signer: &CraftedSigner,
                         target: Option<&Desc>,
                         subject: Option<&Desc>,
                         opts: &EnvelopeOpts| {
        let img = push(&lab, repo);
        let env = harness::craft_notation_envelope(
            &lab,
            format,
            signer,
            target.unwrap_or(&img.desc),
            opts,
        );
        harness::push_notation_signature(
            &lab,
            &img.repo,
            &img.desc.digest,
            subject.unwrap_or(&img.desc),
            &env.bytes,
            &env.media_type,
            &env.thumbprints,
            ManifestStyle::Legacy,
        );
        img
    };
    let ok_jws = notation_case(
        "crafted/jws-valid",
        EnvelopeFormat::Jws,
        &crafted,
        None,
        None,
        &plain,
    );
    let ok_cose = notation_case(
        "crafted/cose-valid",
        EnvelopeFormat::Cose,
        &crafted,
        None,
        None,
        &plain,
    );
    let payload_other = notation_case(
        "crafted/payload-other-digest",
        EnvelopeFormat::Jws,
        &crafted,
        Some(&elsewhere.desc),
        None,
        &plain,
    );
    // a signature valid for this image, whose manifest's `subject` names another image, listed
    // in this image's tag-schema index (which any client can write)
    let subject_other = notation_case(
        "crafted/subject-other-digest",
        EnvelopeFormat::Jws,
        &crafted,
        None,
        Some(&elsewhere.desc),
        &plain,
    );
    let plugin = notation_case(
        "crafted/plugin-critical",
        EnvelopeFormat::Cose,
        &crafted,
        None,
        None,
        &EnvelopeOpts {
            plugin: Some("com.example.nonexistent".into()),
            ..EnvelopeOpts::default()
        },
    );
    let ca_leaf_img = notation_case(
        "crafted/ca-leaf",
        EnvelopeFormat::Jws,
        &ca_leaf,
        None,
        None,
        &plain,
    );
    let artifact_style = push(&lab, "crafted/artifact-manifest");
    let env = harness::craft_notation_envelope(
        &lab,
        EnvelopeFormat::Jws,
        &crafted,
        &artifact_style.desc,
        &plain,
    );
    harness::push_notation_signature(
        &lab,
        &artifact_style.repo,
        &artifact_style.desc.digest,
        &artifact_style.desc,
        &env.bytes,
        &env.media_type,
        &env.thumbprints,
        ManifestStyle::Artifact,
    );
    took("crafted notation: 7 cases", t);

    let t = Instant::now();
    let trust = strict(&crafted);
    for img in [&ok_jws, &ok_cose, &artifact_style] {
        harness::notation_verify(&lab, &img.reference, &trust).expect_ok();
    }
    let out = harness::notation_verify(&lab, &payload_other.reference, &trust).expect_refused();
    assert!(out.contains("integrity") || out.contains("digest"), "{out}");
    let out = harness::notation_verify(&lab, &plugin.reference, &trust).expect_refused();
    assert!(out.contains("plugin"), "{out}");
    let out =
        harness::notation_verify(&lab, &ca_leaf_img.reference, &strict(&ca_leaf)).expect_refused();
    assert!(out.to_lowercase().contains("ca"), "{out}");
    let mut wrong = trust.clone();
    wrong.identities = vec!["x509.subject: C=US, ST=WA, O=signgate lab, CN=someone-else".into()];
    harness::notation_verify(&lab, &ok_jws.reference, &wrong).expect_refused();
    let subject_verdict = harness::notation_verify(&lab, &subject_other.reference, &trust);
    eprintln!(
        "[sigtools] notation 1.3.2 on a tag-schema entry whose manifest subject is another \
         digest (payload names this one): {}",
        if subject_verdict.ok() {
            "ACCEPTED"
        } else {
            "refused"
        }
    );
    // notation 1.3.2 accepts it (its payload, which is signed, names this image); the entry is
    // there for signgate, which refuses a manifest whose subject is another digest.
    let _ = subject_verdict;
    took("crafted notation: 9 verdicts", t);

    // ---------------------------------------------------------------------------------------
    // crafted cosign: simple-signing payloads and bundles
    let t = Instant::now();
    let csign = harness::crafted_signer(&lab, "crafted-cosign", SignerKind::SelfSigned, 2);
    let simple_case = |repo: &str, named: Option<&str>| {
        let img = push(&lab, repo);
        let (payload, sig) = harness::craft_cosign_simple(
            &lab,
            &csign,
            named.unwrap_or(&img.desc.digest),
            &format!("{}/{repo}", lab.registry_host()),
        );
        harness::append_cosign_sig_layer(&lab, &img.repo, &img.desc.digest, &payload, &sig);
        img
    };
    let simple_ok = simple_case("crafted/simple-valid", None);
    let simple_other = simple_case("crafted/simple-other-digest", Some(&elsewhere.desc.digest));
    let bundle_case = |repo: &str, named: Option<&str>| {
        let img = push(&lab, repo);
        let b = harness::craft_cosign_bundle(&lab, &csign, named.unwrap_or(&img.desc.digest), None);
        harness::push_bundle_referrer(&lab, &img.repo, &img.desc.digest, &img.desc, &b);
        img
    };
    let bundle_ok = bundle_case("crafted/bundle-valid", None);
    let bundle_other = bundle_case("crafted/bundle-other-digest", Some(&elsewhere.desc.digest));
    harness::cosign_verify(&lab, Cosign::V2, &simple_ok.reference, &csign.public).expect_ok();
    harness::cosign_verify(&lab, Cosign::V2, &simple_other.reference, &csign.public)
        .expect_refused();
    harness::cosign_verify(&lab, Cosign::V3, &bundle_ok.reference, &csign.public).expect_ok();
    harness::cosign_verify(&lab, Cosign::V3, &bundle_other.reference, &csign.public)
        .expect_refused();
    took("crafted cosign: 4 cases, 4 verdicts", t);

    // ---------------------------------------------------------------------------------------
    // everything on one digest: valid and crafted signatures and an unrelated cosign entry share
    // the tag-schema index; the legacy .sig gets a crafted layer beside the real one
    let t = Instant::now();
    let mixed = push(&lab, "mixed/app");
    let n_valid = sign(&mixed, EnvelopeFormat::Jws, None, &key);
    let d = &mixed.desc;
    let bad1 = harness::craft_notation_envelope(
        &lab,
        EnvelopeFormat::Jws,
        &crafted,
        &elsewhere.desc,
        &plain,
    );
    let bad1 = harness::push_notation_signature(
        &lab,
        &mixed.repo,
        &d.digest,
        d,
        &bad1.bytes,
        &bad1.media_type,
        &bad1.thumbprints,
        ManifestStyle::Legacy,
    );
    let bad2 = harness::craft_notation_envelope(
        &lab,
        EnvelopeFormat::Cose,
        &crafted,
        d,
        &EnvelopeOpts {
            plugin: Some("com.example.nonexistent".into()),
            ..EnvelopeOpts::default()
        },
    );
    let bad2 = harness::push_notation_signature(
        &lab,
        &mixed.repo,
        &d.digest,
        d,
        &bad2.bytes,
        &bad2.media_type,
        &bad2.thumbprints,
        ManifestStyle::Legacy,
    );
    let b_mixed = harness::cosign3_sign(&lab, &mixed.reference, &bob);
    harness::cosign2_sign(&lab, &mixed.reference, &alice);
    let (payload, sig) = harness::craft_cosign_simple(
        &lab,
        &csign,
        &elsewhere.desc.digest,
        &format!("{}/{}", lab.registry_host(), mixed.repo),
    );
    let sig_digest = harness::append_cosign_sig_layer(&lab, &mixed.repo, &d.digest, &payload, &sig);
    let index = harness::referrers_index(&lab, &mixed.repo, &d.digest).unwrap();
    assert_eq!(index.entries.len(), 4, "{}", index.json);
    for e in [&n_valid.digest, &bad1.digest, &bad2.digest] {
        assert_eq!(
            index.entry(e).unwrap().artifact_type.as_deref(),
            Some(NOTATION_SIGNATURE)
        );
    }
    assert_eq!(
        index
            .entry(&b_mixed.digest)
            .unwrap()
            .artifact_type
            .as_deref(),
        Some(OCI_EMPTY)
    );
    assert_eq!(index.with_artifact_type(NOTATION_SIGNATURE).len(), 3);
    let sig_m = json(&harness::fetch_manifest(&lab, &mixed.repo, &sig_digest));
    assert_eq!(sig_m["layers"].as_array().unwrap().len(), 2, "{sig_m}");
    // the real tools still find the valid signature among the others
    harness::notation_verify(&lab, &mixed.reference, &strict_key).expect_ok();
    harness::notation_verify(&lab, &mixed.reference, &trust).expect_refused();
    harness::cosign_verify(&lab, Cosign::V2, &mixed.reference, &alice.public).expect_ok();
    harness::cosign_verify(&lab, Cosign::V3, &mixed.reference, &bob.public).expect_ok();
    harness::cosign_verify(&lab, Cosign::V2, &mixed.reference, &csign.public).expect_refused();
    took("mixed index: 7 entries/layers, 5 verdicts", t);
    took("whole test", t0);
}

/// The tools sign through the registry's token auth (and the TLS-served token realm).
#[test]
fn real_tools_sign_through_token_auth() {
    let t0 = Instant::now();
    let lab = Lab::start_with_token_auth();
    let img = push(&lab, "authed/app");
    let key = notation_key(&lab);
    harness::notation_sign(
        &lab,
        &img.reference,
        &SignOpts {
            format: EnvelopeFormat::Cose,
            timestamp: None,
            key: &key,
        },
    );
    harness::notation_verify(&lab, &img.reference, &NotationTrust::strict_for(&key)).expect_ok();
    let alice = harness::cosign_generate_key_pair(&lab, "alice");
    harness::cosign2_sign(&lab, &img.reference, &alice);
    harness::cosign3_sign(&lab, &img.reference, &alice);
    harness::cosign_verify(&lab, Cosign::V2, &img.reference, &alice.public).expect_ok();
    harness::cosign_verify(&lab, Cosign::V3, &img.reference, &alice.public).expect_ok();
    let js = harness::crafted_signer(&lab, "js", SignerKind::SelfSigned, 2);
    harness::sigstore_js_sign(&lab, &img.reference, &js.key, false);
    let index = harness::referrers_index(&lab, &img.repo, &img.desc.digest).unwrap();
    assert_eq!(index.entries.len(), 3, "{}", index.json);
    assert!(lab.token_requests() > 0);
    assert!(
        lab.token_log().iter().any(|i| i
            .scopes
            .iter()
            .any(|s| s.contains("authed/app") && s.contains("push"))),
        "{:?}",
        lab.token_log()
    );
    took("token-auth lab: 4 signatures, 3 verdicts", t0);
}

fn notation_key(lab: &Lab) -> NotationKey {
    let key = harness::notation_generate_test_cert(lab, "lab-signer");
    assert!(Path::new(&key.trust_store_pem).is_file());
    assert_eq!(
        key.identity,
        "x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN=lab-signer"
    );
    key
}
