//! Notation signatures no tool makes: certificate chains that break Notation's rules (a CA as
//! leaf, a TLS-only leaf, a non-critical key usage, an intermediate that is not a CA, a path
//! length exceeded, a chain out of order, an expired leaf) and envelopes with headers the rules
//! refuse (an unknown critical header, an algorithm that does not fit the key, an expiry before the
//! signing time), each signed correctly in the test so that only the broken rule can refuse it.

mod crafted;

use der::Encode as _;
use der::asn1::{ObjectIdentifier, OctetString};
use p256::ecdsa::SigningKey;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;
use x509_cert::builder::Builder as _;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::KeyUsages;

use crafted::*;
use signgate::notation::{
    Identity, Level, MEDIA_TYPE_JWS, Reason, TrustPolicy, TrustStores, VerifyTimestamp, verify_any,
    verify_envelope,
};
use signgate::pki::Certificate;

fn trusting(root: &[u8]) -> TrustPolicy {
    TrustPolicy::new(
        TrustStores {
            ca: vec![Certificate::from_der(root).unwrap()],
            ..TrustStores::default()
        },
        vec![Identity::Any],
        Level::Strict,
        Vec::new(),
        VerifyTimestamp::Always,
    )
    .unwrap()
}

fn verdict(env: &[u8]) -> Result<String, (Reason, String)> {
    verify_envelope(&trusting(&root()), &image(), MEDIA_TYPE_JWS, env, NOW)
        .map(|v| v.signer)
        .map_err(|e| (e.reason(), e.detail().to_owned()))
}

fn leaf(extensions: Vec<Extension>) -> Vec<u8> {
    cert(LEAF, &key(3), (ROOT, &key(1)), YEARS, extensions)
}

#[test]
fn a_well_formed_two_and_three_certificate_chain_verifies() {
    let env = jws(&key(3), &[leaf(leaf_exts()), root()], |_| {});
    assert!(verdict(&env).unwrap().contains("CN=ml-ci"));
    let inter = cert(INTER, &key(2), (ROOT, &key(1)), YEARS, ca_exts(Some(0)));
    let leaf = cert(LEAF, &key(3), (INTER, &key(2)), YEARS, leaf_exts());
    verdict(&jws(&key(3), &[leaf, inter, root()], |_| {})).unwrap();
}

#[test]
fn chains_that_break_notations_rules_are_invalid_certificates() {
    let inter_not_ca = cert(INTER, &key(2), (ROOT, &key(1)), YEARS, leaf_exts());
    let root_len0 = cert(ROOT, &key(1), (ROOT, &key(1)), YEARS, ca_exts(Some(0)));
    let inter = cert(INTER, &key(2), (ROOT, &key(1)), YEARS, ca_exts(None));
    let under_inter = cert(LEAF, &key(3), (INTER, &key(2)), YEARS, leaf_exts());
    let cases: Vec<(&str, Vec<Vec<u8>>, &str)> = vec![
        (
            "a CA as leaf",
            vec![
                leaf(vec![
                    basic(true, None),
                    key_usage(KeyUsages::DigitalSignature, true),
                ]),
                root(),
            ],
            "is a CA certificate",
        ),
        (
            "a TLS server leaf",
            vec![
                leaf(vec![
                    key_usage(KeyUsages::DigitalSignature, true),
                    eku(&[SERVER_AUTH]),
                ]),
                root(),
            ],
            "extended key usage",
        ),
        (
            "key usage not critical",
            vec![
                leaf(vec![key_usage(KeyUsages::DigitalSignature, false)]),
                root(),
            ],
            "not critical",
        ),
        (
            "key usage for encryption too",
            vec![
                leaf(vec![key_usage(
                    KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment,
                    true,
                )]),
                root(),
            ],
            "more than signing",
        ),
        ("no key usage", vec![leaf(vec![]), root()], "no key usage"),
        (
            "an intermediate that is not a CA",
            vec![
                cert(LEAF, &key(3), (INTER, &key(2)), YEARS, leaf_exts()),
                inter_not_ca,
                root(),
            ],
            "",
        ),
        (
            "out of order",
            vec![under_inter.clone(), root(), inter.clone()],
            "not the last of the chain",
        ),
        (
            "a link that does not chain",
            vec![leaf(leaf_exts()), inter.clone(), root()],
            "not issued by the next",
        ),
    ];
    for (what, chain, says) in cases {
        let (reason, detail) = verdict(&jws(&key(3), &chain, |_| {})).unwrap_err();
        assert_eq!(reason, Reason::InvalidCertificate, "{what}: {detail}");
        assert!(detail.contains(says), "{what}: {detail}");
    }
    // A chain that ends below any root reaches nothing in the store: refused before any rule.
    let (reason, detail) = verdict(&jws(&key(3), &[leaf(leaf_exts())], |_| {})).unwrap_err();
    assert_eq!(reason, Reason::UntrustedChain, "{detail}");
    // A path length is the trusted root's own rule, so that root is the one in the store.
    let chain = [under_inter, inter, root_len0.clone()];
    let err = verify_envelope(
        &trusting(&root_len0),
        &image(),
        MEDIA_TYPE_JWS,
        &jws(&key(3), &chain, |_| {}),
        NOW,
    )
    .unwrap_err();
    assert_eq!(err.reason(), Reason::InvalidCertificate, "{}", err.detail());
    assert!(err.detail().contains("path length"), "{}", err.detail());
}

#[test]
fn a_leaf_expired_now_without_a_timestamp_is_refused() {
    let old = (
        datetime!(2024-01-01 00:00 UTC),
        datetime!(2025-01-01 00:00 UTC),
    );
    let expired = cert(LEAF, &key(3), (ROOT, &key(1)), old, leaf_exts());
    let (reason, detail) = verdict(&jws(&key(3), &[expired, root()], |_| {})).unwrap_err();
    assert_eq!(reason, Reason::CertificateExpired, "{detail}");
}

/// A change to an envelope's protected header.
type Adjust = Box<dyn FnOnce(&mut Value)>;

#[test]
fn headers_the_rules_refuse() {
    let chain = [leaf(leaf_exts()), root()];
    let cases: Vec<(&str, Adjust, Reason)> = vec![
        (
            "an unknown critical header",
            Box::new(|h| {
                h["crit"] = json!(["io.cncf.notary.signingScheme", "io.acme.policy"]);
                h["io.acme.policy"] = json!("x");
            }),
            Reason::UnsupportedSignature,
        ),
        (
            "a verification plugin",
            Box::new(|h| {
                h["crit"] = json!([
                    "io.cncf.notary.signingScheme",
                    "io.cncf.notary.verificationPlugin"
                ]);
                h["io.cncf.notary.verificationPlugin"] = json!("com.acme.plugin");
            }),
            Reason::UnsupportedSignature,
        ),
        (
            "a critical header that is absent",
            Box::new(|h| {
                h["crit"] = json!(["io.cncf.notary.signingScheme", "io.cncf.notary.expiry"])
            }),
            Reason::Malformed,
        ),
        (
            "signingScheme not critical",
            Box::new(|h| h["crit"] = json!([])),
            Reason::Malformed,
        ),
        (
            "an algorithm that does not fit the key",
            Box::new(|h| h["alg"] = json!("ES384")),
            Reason::Integrity,
        ),
        (
            "expiry before signing time",
            Box::new(|h| {
                h["crit"] = json!(["io.cncf.notary.signingScheme", "io.cncf.notary.expiry"]);
                h["io.cncf.notary.expiry"] = json!("2026-11-30T00:00:00Z");
            }),
            Reason::Malformed,
        ),
        (
            "another payload type",
            Box::new(|h| h["cty"] = json!("application/json")),
            Reason::Malformed,
        ),
    ];
    for (what, adjust, reason) in cases {
        let (got, detail) = verdict(&jws(&key(3), &chain, adjust)).unwrap_err();
        assert_eq!(got, reason, "{what}: {detail}");
    }
    // Signed by another key than the leaf's: integrity.
    let (got, detail) = verdict(&jws(&key(9), &chain, |_| {})).unwrap_err();
    assert_eq!(got, Reason::Integrity, "{detail}");
}

#[test]
fn a_valid_signature_beside_crafted_ones_is_found() {
    let good = jws(&key(3), &[leaf(leaf_exts()), root()], |_| {});
    let ca_leaf = jws(&key(3), &[leaf(vec![basic(true, None)]), root()], |_| {});
    let other_signer = jws(&key(9), &[leaf(leaf_exts()), root()], |_| {});
    let policy = trusting(&root());
    let all = [ca_leaf, other_signer, good]
        .into_iter()
        .map(|b| (MEDIA_TYPE_JWS.to_owned(), b))
        .collect::<Vec<_>>();
    verify_any(&policy, &image(), &all, NOW).unwrap();
    let e = verify_any(&policy, &image(), &all[..2], NOW).unwrap_err();
    assert!(e.detail().contains("(2 found)"), "{e}");
}

/// A CRL by `issuer` (DER certificate and key) revoking `revoked` (DER certificates), valid
/// until `next`.
fn crl(issuer: (&[u8], &SigningKey), revoked: &[&[u8]], next: OffsetDateTime) -> Vec<u8> {
    crl_at(issuer, revoked, datetime!(2026-11-01 00:00 UTC), next)
}

/// A CRL by `issuer` issued at `this`, listing `revoked`, next update `next`.
fn crl_at(
    issuer: (&[u8], &SigningKey),
    revoked: &[&[u8]],
    this: OffsetDateTime,
    next: OffsetDateTime,
) -> Vec<u8> {
    use der::Decode as _;
    use x509_cert::builder::CrlBuilder;
    let t = |o: OffsetDateTime| {
        let st = std::time::UNIX_EPOCH + std::time::Duration::from_secs(o.unix_timestamp() as u64);
        x509_cert::time::Time::try_from(st).unwrap()
    };
    let issuer_cert = x509_cert::Certificate::from_der(issuer.0).unwrap();
    let entries: Vec<x509_cert::crl::RevokedCert> = revoked
        .iter()
        .map(|c| x509_cert::crl::RevokedCert {
            serial_number: x509_cert::Certificate::from_der(c)
                .unwrap()
                .tbs_certificate()
                .serial_number()
                .clone(),
            revocation_date: t(datetime!(2026-11-01 00:00 UTC)),
            crl_entry_extensions: None,
        })
        .collect();
    CrlBuilder::new_with_this_update(
        &issuer_cert,
        x509_cert::ext::pkix::CrlNumber::try_from(1u32).unwrap(),
        t(this),
    )
    .unwrap()
    .with_next_update(Some(t(next)))
    .with_certificates(entries.into_iter())
    .build::<_, p256::ecdsa::DerSignature>(issuer.1)
    .unwrap()
    .to_der()
    .unwrap()
}

fn with_crls(crls: &[Vec<u8>], level: Level) -> TrustPolicy {
    TrustPolicy::new(
        TrustStores {
            ca: vec![Certificate::from_der(&root()).unwrap()],
            ..TrustStores::default()
        },
        vec![Identity::Any],
        level,
        Vec::new(),
        VerifyTimestamp::Always,
    )
    .unwrap()
    .with_crls(
        crls.iter()
            .map(|c| signgate::pki::Crl::from_der(c).unwrap())
            .collect(),
    )
}

#[test]
fn crls_from_configuration_revoke_offline() {
    // A leaf naming a CRL distribution point (the URL is never fetched).
    let dp = Extension {
        extn_id: ObjectIdentifier::new_unwrap("2.5.29.31"),
        critical: false,
        extn_value: OctetString::new(
            hex::decode("30223020a01ea01c861a687474703a2f2f63726c2e61636d652e746573742f612e63726c")
                .unwrap(),
        )
        .unwrap(),
    };
    let mut exts = leaf_exts();
    exts.push(dp);
    let leaf = cert(LEAF, &key(3), (ROOT, &key(1)), YEARS, exts);
    let env = jws(&key(3), &[leaf.clone(), root()], |_| {});
    let check = |policy: &TrustPolicy| {
        verify_envelope(policy, &image(), MEDIA_TYPE_JWS, &env, NOW)
            .map(|v| v.logged.iter().map(|l| l.reason).collect::<Vec<_>>())
            .map_err(|e| (e.reason(), e.detail().to_owned()))
    };
    // No CRL: unknown, logged by default even under strict.
    assert_eq!(
        check(&with_crls(&[], Level::Strict)).unwrap(),
        [Reason::RevocationUnknown]
    );
    // The root's CRL, current, not listing the leaf: good.
    let fresh = datetime!(2027-01-01 00:00 UTC);
    let clean = crl((&root(), &key(1)), &[], fresh);
    // As a PEM file of two lists, as operators ship them.
    let pem = der::pem::encode_string("X509 CRL", der::pem::LineEnding::LF, &clean).unwrap();
    let two = signgate::pki::Crl::parse_file(format!("{pem}{pem}").as_bytes()).unwrap();
    assert_eq!(two.len(), 2);
    assert_eq!(two[0], signgate::pki::Crl::from_der(&clean).unwrap());
    assert!(
        check(&with_crls(&[clean], Level::Strict))
            .unwrap()
            .is_empty()
    );
    // Listing the leaf: revoked, enforced under strict, logged under permissive.
    let revoking = crl((&root(), &key(1)), &[&leaf], fresh);
    let (reason, detail) =
        check(&with_crls(std::slice::from_ref(&revoking), Level::Strict)).unwrap_err();
    assert_eq!(reason, Reason::Revoked, "{detail}");
    assert_eq!(
        check(&with_crls(&[revoking], Level::Permissive)).unwrap(),
        [Reason::Revoked]
    );
    // A stale CRL: unknown, enforced under strict once CRLs are configured.
    let stale = crl((&root(), &key(1)), &[], datetime!(2026-11-15 00:00 UTC));
    let (reason, detail) = check(&with_crls(&[stale], Level::Strict)).unwrap_err();
    assert_eq!(reason, Reason::RevocationUnknown, "{detail}");
    // A CRL naming the root as issuer but signed by another key does not count.
    let forged = crl((&root(), &key(7)), &[], fresh);
    let (reason, detail) = check(&with_crls(&[forged], Level::Strict)).unwrap_err();
    assert_eq!(reason, Reason::RevocationUnknown, "{detail}");
    // Two lists by the issuer: an older one, still valid and clean, listed first, cannot hide the
    // revocation in a newer one; and freshness is the newest list's, whatever the order.
    let newer = datetime!(2026-11-20 00:00 UTC);
    let newer_revoking = crl_at((&root(), &key(1)), &[&leaf], newer, fresh);
    let older_clean = crl((&root(), &key(1)), &[], fresh);
    let (reason, detail) =
        check(&with_crls(&[older_clean, newer_revoking], Level::Strict)).unwrap_err();
    assert_eq!(reason, Reason::Revoked, "{detail}");
    let older_stale = crl((&root(), &key(1)), &[], datetime!(2026-11-15 00:00 UTC));
    let newer_clean = crl_at((&root(), &key(1)), &[], newer, fresh);
    assert!(
        check(&with_crls(&[older_stale, newer_clean], Level::Strict))
            .unwrap()
            .is_empty()
    );
}

/// A leaf from the trusted CA whose subject repeats an attribute (`O=evil, O=acme`) or puts two
/// in one RDN is not any `x509.subject` identity, even one whose attributes it holds: the
/// identity must be a subset of a plain DN, each attribute once (notation-go's
/// `ParseDistinguishedName`). `*` trusts any subject, as notation-go does.
#[test]
fn a_subject_with_repeated_or_multi_valued_attributes_is_no_identity() {
    let acme = |identities: Vec<Identity>| {
        TrustPolicy::new(
            TrustStores {
                ca: vec![Certificate::from_der(&root()).unwrap()],
                ..TrustStores::default()
            },
            identities,
            Level::Strict,
            Vec::new(),
            VerifyTimestamp::Always,
        )
        .unwrap()
    };
    let subject = vec![Identity::parse("x509.subject: C=US, ST=WA, O=acme").unwrap()];
    let signed_as = |dn: &str| {
        let leaf = cert(dn, &key(3), (ROOT, &key(1)), YEARS, leaf_exts());
        jws(&key(3), &[leaf, root()], |_| {})
    };
    let check = |policy: &TrustPolicy, dn: &str| {
        verify_envelope(policy, &image(), MEDIA_TYPE_JWS, &signed_as(dn), NOW)
            .map(|v| v.signer)
            .map_err(|e| (e.reason(), e.detail().to_owned()))
    };
    // The control: a plain subject holding the identity's attributes is trusted.
    check(&acme(subject.clone()), LEAF).unwrap();
    for (dn, says) in [
        ("CN=tenant-b,O=acme,O=evil,ST=WA,C=US", "O more than once"),
        ("CN=tenant-b,O=evil,O=acme,ST=WA,C=US", "O more than once"),
        ("CN=tenant-b+O=acme,ST=WA,C=US", "multi-valued RDN"),
    ] {
        let (reason, detail) = check(&acme(subject.clone()), dn).unwrap_err();
        assert_eq!(reason, Reason::UntrustedIdentity, "{dn}: {detail}");
        assert!(detail.contains(says), "{dn}: {detail}");
        check(&acme(vec![Identity::Any]), dn).unwrap_or_else(|e| panic!("{dn} under *: {e:?}"));
    }
}
