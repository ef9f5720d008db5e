//! Notation signing material no tool makes, for the crafted and hostile suites: certificates
//! with chosen names, extensions and validity (x509-cert's builder, P-256 keys from a seed) and
//! JWS envelopes over a descriptor, signed correctly so that only what a test breaks can refuse
//! them.
// Shared by several test binaries, each using a part.
#![allow(dead_code)]

use std::str::FromStr as _;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use der::Encode as _;
use der::asn1::{ObjectIdentifier, OctetString};
use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Signer as _;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;
use x509_cert::builder::{Builder as _, CertificateBuilder};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::name::Name;

use signgate::notation::Descriptor;
use signgate::reference::Digest;

pub const NOW: OffsetDateTime = datetime!(2026-12-04 00:00 UTC);
pub const CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";
pub const SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";

pub struct Profile {
    pub issuer: Name,
    pub subject: Name,
    pub extensions: Vec<Extension>,
}

impl x509_cert::builder::profile::BuilderProfile for Profile {
    fn get_issuer(&self, _: &Name) -> Name {
        self.issuer.clone()
    }
    fn get_subject(&self) -> Name {
        self.subject.clone()
    }
    fn build_extensions(
        &self,
        _: spki::SubjectPublicKeyInfoRef<'_>,
        _: spki::SubjectPublicKeyInfoRef<'_>,
        _: &x509_cert::TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(self.extensions.clone())
    }
}

pub fn ext(oid: &str, critical: bool, value: &impl der::Encode) -> Extension {
    Extension {
        extn_id: ObjectIdentifier::new_unwrap(oid),
        critical,
        extn_value: OctetString::new(value.to_der().unwrap()).unwrap(),
    }
}

pub fn key_usage(
    flags: impl Into<x509_cert::der::flagset::FlagSet<KeyUsages>>,
    critical: bool,
) -> Extension {
    ext("2.5.29.15", critical, &KeyUsage(flags.into()))
}

pub fn basic(ca: bool, path_len: Option<u8>) -> Extension {
    ext(
        "2.5.29.19",
        true,
        &BasicConstraints {
            ca,
            path_len_constraint: path_len,
        },
    )
}

pub fn eku(oids: &[&str]) -> Extension {
    ext(
        "2.5.29.37",
        false,
        &ExtendedKeyUsage(
            oids.iter()
                .map(|o| ObjectIdentifier::new_unwrap(o))
                .collect(),
        ),
    )
}

pub fn ca_exts(path_len: Option<u8>) -> Vec<Extension> {
    vec![
        basic(true, path_len),
        key_usage(KeyUsages::KeyCertSign | KeyUsages::CRLSign, true),
    ]
}

pub fn leaf_exts() -> Vec<Extension> {
    vec![
        key_usage(KeyUsages::DigitalSignature, true),
        eku(&[CODE_SIGNING]),
    ]
}

/// A certificate for `key`, named `subject`, issued by `issuer` (name and key).
pub fn cert(
    subject: &str,
    key: &SigningKey,
    issuer: (&str, &SigningKey),
    valid: (OffsetDateTime, OffsetDateTime),
    extensions: Vec<Extension>,
) -> Vec<u8> {
    let t = |o: OffsetDateTime| {
        let st = std::time::UNIX_EPOCH + std::time::Duration::from_secs(o.unix_timestamp() as u64);
        x509_cert::time::Time::try_from(st).unwrap()
    };
    let profile = Profile {
        issuer: Name::from_str(issuer.0).unwrap(),
        subject: Name::from_str(subject).unwrap(),
        extensions,
    };
    let spki = spki::SubjectPublicKeyInfoOwned::from_key(key.verifying_key()).unwrap();
    let serial = x509_cert::serial_number::SerialNumber::from(
        u32::from_be_bytes(
            key.verifying_key().to_sec1_point(true).as_bytes()[1..5]
                .try_into()
                .unwrap(),
        ) >> 1,
    );
    let builder = CertificateBuilder::new(
        profile,
        serial,
        x509_cert::time::Validity::new(t(valid.0), t(valid.1)),
        spki,
    )
    .unwrap();
    builder
        .build::<_, p256::ecdsa::DerSignature>(issuer.1)
        .unwrap()
        .to_der()
        .unwrap()
}

pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_slice(&[seed; 32]).unwrap()
}

pub const ROOT: &str = "CN=Crafted Root,O=acme,ST=WA,C=US";
pub const INTER: &str = "CN=Crafted Intermediate,O=acme,ST=WA,C=US";
pub const LEAF: &str = "CN=ml-ci,O=acme,ST=WA,C=US";
pub const YEARS: (OffsetDateTime, OffsetDateTime) = (
    datetime!(2025-01-01 00:00 UTC),
    datetime!(2035-01-01 00:00 UTC),
);

pub fn root() -> Vec<u8> {
    cert(ROOT, &key(1), (ROOT, &key(1)), YEARS, ca_exts(None))
}

pub fn image() -> Descriptor {
    Descriptor {
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        digest: Digest::sha256_of(b"crafted image"),
        size: 13,
    }
}

/// A JWS envelope over the image, signed by `signer` with `chain` (leaf first); `headers`
/// adjusts the protected header.
pub fn jws(signer: &SigningKey, chain: &[Vec<u8>], headers: impl FnOnce(&mut Value)) -> Vec<u8> {
    jws_over(&image(), signer, chain, headers)
}

/// A JWS envelope over `img`, as [`jws`].
pub fn jws_over(
    img: &Descriptor,
    signer: &SigningKey,
    chain: &[Vec<u8>],
    headers: impl FnOnce(&mut Value),
) -> Vec<u8> {
    let mut protected = json!({
        "alg": "ES256",
        "crit": ["io.cncf.notary.signingScheme"],
        "cty": "application/vnd.cncf.notary.payload.v1+json",
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": "2026-12-01T10:00:00+01:00",
    });
    headers(&mut protected);
    let payload = json!({"targetArtifact": {"mediaType": img.media_type,
        "digest": img.digest.as_str(), "size": img.size}});
    let p = URL_SAFE_NO_PAD.encode(protected.to_string());
    let b = URL_SAFE_NO_PAD.encode(payload.to_string());
    let sig: p256::ecdsa::Signature = signer.sign(format!("{p}.{b}").as_bytes());
    serde_json::to_vec(&json!({
        "payload": b, "protected": p,
        "header": {"x5c": chain.iter().map(|c| STANDARD.encode(c)).collect::<Vec<_>>()},
        "signature": URL_SAFE_NO_PAD.encode(sig.to_bytes()),
    }))
    .unwrap()
}

/// A certificate's DER as PEM, as a trust store file holds it.
pub fn pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}
