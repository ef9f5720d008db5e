//! sigstore-go's public bundles and trusted roots (tests/fixtures/sigstore-go, Apache-2.0,
//! sigstore/sigstore-go commit 4594ab4) through signgate's pure cosign code: the verdicts
//! sigstore-go's own tests assert hold here too, and each tampering is refused with its reason.
//!
//! - `bundle-publish.json`: key-signed DSSE (npm publish attestation), Rekor `intoto` entry with
//!   a SET from the public-good log (`publish_key.pub`, `trusted-root-public-good.json`);
//! - `bundle-provenance.json`: keyless (GitHub Actions, sigstore-js release workflow), Fulcio
//!   certificate with an embedded SCT, Rekor `intoto` entry with a SET;
//! - `othername.sigstore.json`: keyless v0.3 message signature with an `otherName` SAN,
//!   `hashedrekord` entry, against `scaffolding.json` (sigstore-go `TestEntityWithOthernameSan`);
//! - `public-key-validity.sigstore.json`: key-signed v0.3 message signature with only an RFC 3161
//!   timestamp (no log entry).

use std::sync::Arc;

use signgate::cosign::{
    self, CosignRoot, Identity, Matcher, NamedKey, Reason, Signed, TrustedRoot, bundle,
};
use signgate::pki::VerifyingKey;
use signgate::reference::{Digest, Reference};

fn fixture(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sigstore-go")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn public_good() -> Arc<TrustedRoot> {
    Arc::new(TrustedRoot::parse(&fixture("trusted-root-public-good.json")).unwrap())
}

fn key(name: &str, file: &str) -> NamedKey {
    NamedKey {
        name: name.into(),
        key: VerifyingKey::from_pem(&String::from_utf8(fixture(file)).unwrap()).unwrap(),
    }
}

fn root(keys: Vec<NamedKey>, tlog: Option<Arc<TrustedRoot>>, ids: Vec<Identity>) -> CosignRoot {
    CosignRoot {
        keys,
        threshold: 1,
        required: vec![],
        transparency_log: tlog,
        identities: ids,
    }
}

/// A root of the one key `name` (the PEM `file`) that wants an entry in public-good's log.
fn logged_key_root(name: &str, file: &str) -> CosignRoot {
    root(vec![key(name, file)], Some(public_good()), vec![])
}

fn exact(issuer: &str, subject: &str) -> Identity {
    Identity {
        issuer: Matcher::Exact(issuer.into()),
        subject: Matcher::Exact(subject.into()),
    }
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn reasons(f: &[cosign::CosignError]) -> Vec<(Reason, String)> {
    f.iter().map(|e| (e.reason, e.detail.clone())).collect()
}

/// `ev` verified against `r` now is refused: nobody counts, and the first failure is for `reason`
/// (when one is given) and says `says`. All the failures, for more checks.
fn assert_refused(
    r: &CosignRoot,
    ev: &cosign::Evidence,
    reason: Option<Reason>,
    says: &str,
) -> Vec<cosign::CosignError> {
    let (who, fails) = cosign::verify_evidence(r, ev, now());
    assert!(who.is_empty(), "{says:?}: counted {who:?}");
    if let Some(reason) = reason {
        assert_eq!(fails[0].reason, reason, "{:?}", reasons(&fails));
    }
    assert!(
        fails[0].detail.contains(says),
        "{says:?} not in {}",
        fails[0].detail
    );
    fails
}

const GHA: &str = "https://token.actions.githubusercontent.com";
const RELEASE: &str =
    "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main";

#[test]
fn key_signed_dsse_bundle_with_a_set_from_the_public_good_log() {
    let ev = bundle::parse(&fixture("bundle-publish.json")).unwrap();
    assert!(matches!(ev.content, Signed::Dsse { .. }));
    assert_eq!(ev.tlog.len(), 1);

    // The key and the log entry: the signer counts.
    let r = logged_key_root("publish", "publish_key.pub");
    let (who, fails) = cosign::verify_evidence(&r, &ev, now());
    assert_eq!(who, ["publish"], "{:?}", reasons(&fails));

    // Without the log requirement the signature alone counts too (transparencyLog: ignore).
    let r_ignore = root(vec![key("publish", "publish_key.pub")], None, vec![]);
    assert_eq!(
        cosign::verify_evidence(&r_ignore, &ev, now()).0,
        ["publish"]
    );

    // Another key: nothing counts.
    let other = logged_key_root("other", "public-key-validity.pem");
    assert!(cosign::verify_evidence(&other, &ev, now()).0.is_empty());

    // It is an npm publish attestation, not an image signature: its claims do not count.
    let image = Reference::parse(&format!(
        "registry.example/ml/app@sha256:{}",
        "a".repeat(64)
    ))
    .unwrap();
    let digest = Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap();
    let e = cosign::check_claims(&ev.content, &image, &digest).unwrap_err();
    assert_eq!(e.reason, Reason::WrongSubject, "{}", e.detail);
}

#[test]
fn a_set_signed_by_an_unknown_log_key_is_refused() {
    let ev = bundle::parse(&fixture("bundle-publish.json")).unwrap();
    // A trusted root whose only transparency log is another (scaffolding's): the entry's log is
    // not pinned.
    let scaffolding = Arc::new(TrustedRoot::parse(&fixture("scaffolding.json")).unwrap());
    let r = root(
        vec![key("publish", "publish_key.pub")],
        Some(scaffolding),
        vec![],
    );
    let fails = assert_refused(
        &r,
        &ev,
        Some(Reason::Tlog),
        "which the trusted root does not list",
    );
    assert_eq!(fails.len(), 1);

    // The pinned log's id, but a SET that this log did not sign: the entry's time moved by one
    // second (what a forger without the log's key would have to do).
    let mut moved = ev.clone();
    moved.tlog[0].integrated_time += 1;
    let r = logged_key_root("publish", "publish_key.pub");
    assert_refused(
        &r,
        &moved,
        Some(Reason::Tlog),
        "does not verify with the log's key",
    );

    // No log entry at all, with the log required.
    let mut bare = ev.clone();
    bare.tlog.clear();
    assert_refused(&r, &bare, None, "has no transparency log entry");
}

#[test]
fn a_log_entry_about_another_signature_does_not_vouch_for_this_one() {
    // The provenance bundle's valid entry (its SET verifies) attached to the publish bundle's
    // signature: the body records another signature and signer.
    let publish = bundle::parse(&fixture("bundle-publish.json")).unwrap();
    let provenance = bundle::parse(&fixture("bundle-provenance.json")).unwrap();
    let mut mixed = publish.clone();
    mixed.tlog = provenance.tlog.clone();
    let r = logged_key_root("publish", "publish_key.pub");
    assert_refused(&r, &mixed, Some(Reason::Tlog), "records another signature");
}

#[test]
fn keyless_bundle_chains_to_public_good_with_its_sct_and_identity() {
    let ev = bundle::parse(&fixture("bundle-provenance.json")).unwrap();
    assert!(ev.certificate.is_some());
    let ok = |ids: Vec<Identity>| {
        let r = root(vec![], Some(public_good()), ids);
        cosign::verify_evidence(&r, &ev, now())
    };
    let (who, fails) = ok(vec![exact(GHA, RELEASE)]);
    assert_eq!(who, [format!("{RELEASE} ({GHA})")], "{:?}", reasons(&fails));

    // Regular expressions match the whole subject.
    let re = |issuer: &str, subject: &str| Identity {
        issuer: Matcher::regex(issuer).unwrap(),
        subject: Matcher::regex(subject).unwrap(),
    };
    assert_eq!(
        ok(vec![re(
            r"https://token\.actions\.githubusercontent\.com",
            r"https://github\.com/sigstore/.*"
        )])
        .0
        .len(),
        1
    );
    // Unanchored by the writer, anchored by signgate: a fragment does not match.
    let (who, fails) = ok(vec![re(".*", "github.com/sigstore")]);
    assert!(who.is_empty());
    assert_eq!(fails[0].reason, Reason::Identity);

    // Another identity: refused, naming who signed.
    let (who, fails) = ok(vec![exact(
        GHA,
        "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main",
    )]);
    assert!(who.is_empty());
    assert_eq!(fails[0].reason, Reason::Identity);
    assert!(fails[0].detail.contains(RELEASE), "{}", fails[0].detail);
    // The right subject from another issuer.
    let (who, fails) = ok(vec![exact("https://accounts.google.com", RELEASE)]);
    assert!(who.is_empty());
    assert_eq!(fails[0].reason, Reason::Identity);

    // A trusted root without public-good's CT logs: the SCT is from no pinned log.
    let mut no_ct = (*public_good()).clone();
    no_ct.ctlogs.clear();
    let r = root(vec![], Some(Arc::new(no_ct)), vec![exact(GHA, RELEASE)]);
    assert_refused(&r, &ev, Some(Reason::Certificate), "SCT");

    // The CT log pinned only until before the certificate was stamped: its SCT does not count.
    let mut ended = (*public_good()).clone();
    for l in &mut ended.ctlogs {
        l.valid.end = Some(time::macros::datetime!(2023-01-01 0:00 UTC));
    }
    let r = root(vec![], Some(Arc::new(ended)), vec![exact(GHA, RELEASE)]);
    assert_refused(&r, &ev, None, "SCT");

    // A trusted root without public-good's Fulcio: the certificate chains to nothing pinned.
    let mut no_ca = (*public_good()).clone();
    no_ca.authorities.clear();
    let r = root(vec![], Some(Arc::new(no_ca)), vec![exact(GHA, RELEASE)]);
    assert_refused(&r, &ev, Some(Reason::Certificate), "does not chain");

    // Identities without a trusted root (the configuration refuses this; the code holds anyway):
    // the certificate is checked against nothing, so it does not count.
    let r = root(vec![], None, vec![exact(GHA, RELEASE)]);
    assert_refused(&r, &ev, Some(Reason::Certificate), "");

    // Key-based roots do not read the certificate.
    let r = logged_key_root("publish", "publish_key.pub");
    assert!(cosign::verify_evidence(&r, &ev, now()).0.is_empty());
}

#[test]
fn keyless_message_signature_with_an_othername_san() {
    // sigstore-go TestEntityWithOthernameSan: issuer http://oidc.local:8080, SAN foo!oidc.local,
    // artifact sha256:bc103b4a…; an e-mail identity does not verify.
    let ev = bundle::parse(&fixture("othername.sigstore.json")).unwrap();
    let scaffolding = Arc::new(TrustedRoot::parse(&fixture("scaffolding.json")).unwrap());
    let r = root(
        vec![],
        Some(scaffolding.clone()),
        vec![exact("http://oidc.local:8080", "foo!oidc.local")],
    );
    let (who, fails) = cosign::verify_evidence(&r, &ev, now());
    assert_eq!(
        who,
        ["foo!oidc.local (http://oidc.local:8080)"],
        "{:?}",
        reasons(&fails)
    );
    let r = root(
        vec![],
        Some(scaffolding),
        vec![exact("http://oidc.local:8080", "foo@oidc.local")],
    );
    assert!(cosign::verify_evidence(&r, &ev, now()).0.is_empty());

    // The message digest is the artifact's: an image with that digest is what it signs.
    let hexd = "bc103b4a84971ef6459b294a2b98568a2bfb72cded09d4acd1e16366a401f95b";
    let digest = Digest::parse(&format!("sha256:{hexd}")).unwrap();
    let image = Reference::parse(&format!("registry.example/app@sha256:{hexd}")).unwrap();
    cosign::check_claims(&ev.content, &image, &digest).unwrap();
    let other = Digest::parse(&format!("sha256:{}", "0".repeat(64))).unwrap();
    let e = cosign::check_claims(&ev.content, &image, &other).unwrap_err();
    assert_eq!(e.reason, Reason::DigestMismatch);
}

#[test]
fn inclusion_proofs_are_verified_and_a_proof_alone_does_not_date_a_certificate() {
    // othername's entry carries a SET and an inclusion proof (4-leaf tree, checkpoint signed by
    // the scaffolding log): both verify above. Each tampering refuses the entry.
    let ev = bundle::parse(&fixture("othername.sigstore.json")).unwrap();
    assert!(ev.tlog[0].proof.is_some());
    let scaffolding = Arc::new(TrustedRoot::parse(&fixture("scaffolding.json")).unwrap());
    let r = root(
        vec![],
        Some(scaffolding),
        vec![exact("http://oidc.local:8080", "foo!oidc.local")],
    );
    let refused = |ev: &cosign::Evidence, says: &str| {
        assert_refused(&r, ev, Some(Reason::Tlog), says);
    };
    let with_proof = |f: &dyn Fn(&mut signgate::cosign::rekor::InclusionProof)| {
        let mut e = ev.clone();
        f(e.tlog[0].proof.as_mut().unwrap());
        e
    };
    refused(
        &with_proof(&|p| p.hashes[0][0] ^= 1),
        "does not lead to its root hash",
    );
    refused(
        &with_proof(&|p| p.log_index = 2),
        "does not lead to its root hash",
    );
    refused(
        &with_proof(&|p| p.log_index = 9),
        "does not fit its tree size",
    );
    refused(
        &with_proof(&|p| p.checkpoint = p.checkpoint.replacen("\n4\n", "\n5\n", 1)),
        "checkpoint for another tree",
    );
    refused(
        &with_proof(&|p| {
            // The signature line's last character changed: another signature.
            let end = p.checkpoint.trim_end().len() - 2;
            let mut c = p.checkpoint.clone().into_bytes();
            c[end] = if c[end] == b'A' { b'B' } else { b'A' };
            p.checkpoint = String::from_utf8(c).unwrap();
        }),
        "the log's key did not sign",
    );
    // The signature line signed as another log than the origin names, or with another key hint:
    // the signature still verifies (neither is signed), but the line is not the pinned log's.
    refused(
        &with_proof(&|p| {
            p.checkpoint = p.checkpoint.replacen(
                "\u{2014} rekor-00001-deployment-56bf7777c9-jds5x ",
                "\u{2014} rekor.sigstore.dev ",
                1,
            )
        }),
        "for another origin",
    );
    refused(
        &with_proof(&|p| {
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::STANDARD;
            let (head, sig) = p.checkpoint.trim_end().rsplit_once(' ').unwrap();
            let mut raw = b64.decode(sig).unwrap();
            raw[0] ^= 1;
            p.checkpoint = format!("{head} {}\n", b64.encode(raw));
        }),
        "another key hint",
    );
    // The proof without the SET: inclusion is proven, but nothing attests when, and a keyless
    // certificate is only valid for ten minutes.
    let mut proof_only = ev.clone();
    proof_only.tlog[0].set = None;
    refused(&proof_only, "needs the log-attested time");
}

#[test]
fn an_undated_log_entry_needs_a_log_key_valid_now() {
    // Without a SET nothing signs integratedTime, so it is not read: moved before the log key's
    // validity it changes nothing, and the entry's inclusion still verifies (the keyless
    // certificate is then refused for want of an attested time, not for the time).
    let ev = bundle::parse(&fixture("othername.sigstore.json")).unwrap();
    let ids = || vec![exact("http://oidc.local:8080", "foo!oidc.local")];
    let scaffolding = Arc::new(TrustedRoot::parse(&fixture("scaffolding.json")).unwrap());
    let mut undated = ev.clone();
    undated.tlog[0].set = None;
    undated.tlog[0].integrated_time = 0;
    let r = root(vec![], Some(scaffolding), ids());
    assert_refused(&r, &undated, None, "needs the log-attested time");

    // The log key retired a day after the entry: the dated entry still counts (its SET attests
    // a time inside the key's validity); the undated one does not (the key is not valid now).
    let mut doc: serde_json::Value = serde_json::from_slice(&fixture("scaffolding.json")).unwrap();
    let end = time::OffsetDateTime::from_unix_timestamp(ev.tlog[0].integrated_time + 86_400)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    doc["tlogs"][0]["publicKey"]["validFor"]["end"] = serde_json::Value::String(end);
    let retired = Arc::new(TrustedRoot::parse(&serde_json::to_vec(&doc).unwrap()).unwrap());
    let r = root(vec![], Some(retired), ids());
    assert_eq!(
        cosign::verify_evidence(&r, &ev, now()).0,
        ["foo!oidc.local (http://oidc.local:8080)"]
    );
    assert_refused(
        &r,
        &undated,
        Some(Reason::Tlog),
        "its log key is not valid now",
    );
}

#[test]
fn key_signed_message_signature_without_a_log_entry() {
    let ev = bundle::parse(&fixture("public-key-validity.sigstore.json")).unwrap();
    assert!(ev.tlog.is_empty());
    // sha256("test content") is what it signs (sigstore-go TestPublicKeyValidity…).
    use sha2::Digest as _;
    let want: [u8; 32] = sha2::Sha256::digest(b"test content").into();
    assert_eq!(ev.content, Signed::Message { sha256: want });
    let r = root(vec![key("k", "public-key-validity.pem")], None, vec![]);
    assert_eq!(cosign::verify_evidence(&r, &ev, now()).0, ["k"]);
    // With the log required (any trusted root), there is no entry to verify: refused.
    let r = logged_key_root("k", "public-key-validity.pem");
    assert_refused(&r, &ev, Some(Reason::Tlog), "");
}

#[test]
fn malformed_bundles_and_trusted_roots_are_refused_with_the_reason() {
    for (bytes, says) in [
        (&b"{"[..], "is not a Sigstore bundle"),
        (br#"{"mediaType":"application/json","verificationMaterial":{}}"#, "not a Sigstore bundle version"),
        (br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{}}"#, "exactly one of"),
        (br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{},"messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"AAAA"},"signature":"AA=="}}"#, "not 32 bytes"),
        (br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"tlogEntries":[{"logIndex":"x","logId":{"keyId":"AA=="},"integratedTime":"1","canonicalizedBody":"e30="}]},"messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"AAAA"},"signature":"AA=="}}"#, "logIndex"),
    ] {
        let e = bundle::parse(bytes).unwrap_err();
        assert_eq!(e.reason, Reason::Malformed);
        assert!(e.detail.contains(says), "{says:?} not in {}", e.detail);
    }
    assert!(
        bundle::parse(&vec![b' '; 200 * 1024])
            .unwrap_err()
            .detail
            .contains("128 KiB")
    );
    for (bytes, says) in [
        (&b"[]"[..], "not a Sigstore trusted root"),
        (
            br#"{"tlogs":[{"publicKey":{"rawBytes":"AAAA"},"logId":{"keyId":"AA=="}}]}"#,
            "tlogs[0].publicKey",
        ),
        (
            br#"{"mediaType":"application/json"}"#,
            "not a Sigstore trusted root",
        ),
    ] {
        let e = TrustedRoot::parse(bytes).unwrap_err();
        assert!(e.contains(says), "{says:?} not in {e}");
    }
    // A log whose keyId is not its key's hash.
    let mut v: serde_json::Value =
        serde_json::from_slice(&fixture("trusted-root-public-good.json")).unwrap();
    v["tlogs"][0]["logId"]["keyId"] = "AAAA".into();
    let e = TrustedRoot::parse(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert!(e.contains("tlogs[0].logId.keyId is not the SHA-256"), "{e}");
}
