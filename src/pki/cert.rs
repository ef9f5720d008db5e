//! X.509 certificates: parsed once, with what chain rules read (names, validity, key usage, basic
//! constraints, extended key usage, raw extensions) and the check that one was issued by another.

use std::collections::BTreeMap;

use der::{Decode as _, Encode as _};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use x509_cert::ext::pkix::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage as X509KeyUsage, KeyUsages,
};

use super::PkiError;
use super::key::{SigAlg, SigEncoding, VerifyingKey, hash};

/// The `codeSigning` extended key usage.
pub const OID_EKU_CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";
/// The `timeStamping` extended key usage.
pub const OID_EKU_TIME_STAMPING: &str = "1.3.6.1.5.5.7.3.8";

/// Signature algorithms with SHA-1 (RSA, ECDSA, DSA): refused everywhere, Notary v1 included.
pub const SHA1_SIGNATURE_OIDS: [&str; 4] = [
    "1.2.840.113549.1.1.5",
    "1.3.14.3.2.29",
    "1.2.840.10045.4.1",
    "1.2.840.10040.4.3",
];

/// The key usage bits chain rules read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyUsage {
    /// `digitalSignature` (bit 0): signing code, timestamps, anything but certificates and CRLs.
    pub digital_signature: bool,
    /// `contentCommitment` (bit 1, once `nonRepudiation`).
    pub content_commitment: bool,
    /// `keyEncipherment` (bit 2).
    pub key_encipherment: bool,
    /// `dataEncipherment` (bit 3).
    pub data_encipherment: bool,
    /// `keyAgreement` (bit 4).
    pub key_agreement: bool,
    /// `keyCertSign` (bit 5): the key signs certificates (a CA).
    pub key_cert_sign: bool,
    /// `cRLSign` (bit 6): the key signs revocation lists.
    pub crl_sign: bool,
    /// `encipherOnly` (bit 7).
    pub encipher_only: bool,
    /// `decipherOnly` (bit 8).
    pub decipher_only: bool,
}

/// A parsed certificate with its DER bytes.
#[derive(Debug, Clone)]
pub struct Certificate {
    der: Vec<u8>,
    cert: x509_cert::Certificate,
    subject: Vec<(String, String)>,
    subject_single_valued: bool,
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for Certificate {}

pub(super) fn to_time(t: &x509_cert::time::Time) -> OffsetDateTime {
    let secs = i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Short names of the attribute types Notation's identities and people read.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.5" => "SERIALNUMBER",
        "2.5.4.9" => "STREET",
        "2.5.4.17" => "POSTALCODE",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "1.2.840.113549.1.9.1" => "E",
        _ => return None,
    })
}

/// The attributes of a name in order (RDN by RDN), values as text, and whether every RDN holds
/// one attribute.
fn attributes(name: &x509_cert::name::Name) -> (Vec<(String, String)>, bool) {
    let mut out = Vec::new();
    let mut single_valued = true;
    for rdn in name.iter_rdn() {
        single_valued &= rdn.iter().count() == 1;
        for atv in rdn.iter() {
            let oid = atv.oid.to_string();
            let key = short_name(&oid).map_or(oid, str::to_owned);
            let value = atv
                .value
                .decode_as::<der::asn1::Utf8StringRef<'_>>()
                .map(|s| s.as_str().to_owned())
                .or_else(|_| {
                    atv.value
                        .decode_as::<der::asn1::PrintableStringRef<'_>>()
                        .map(|s| s.as_str().to_owned())
                })
                .or_else(|_| {
                    atv.value
                        .decode_as::<der::asn1::Ia5StringRef<'_>>()
                        .map(|s| s.as_str().to_owned())
                })
                .unwrap_or_else(|_| hex::encode(atv.value.value()));
            out.push((key, value));
        }
    }
    (out, single_valued)
}

impl Certificate {
    /// Parses one DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Certificate, PkiError> {
        let cert = x509_cert::Certificate::from_der(der)
            .map_err(|e| PkiError::Certificate(format!("not a DER X.509 certificate: {e}")))?;
        let (subject, subject_single_valued) = attributes(cert.tbs_certificate().subject());
        Ok(Certificate {
            der: der.to_vec(),
            cert,
            subject,
            subject_single_valued,
        })
    }

    /// Every certificate of a PEM bundle (at least one).
    pub fn parse_pem_bundle(pem: &str) -> Result<Vec<Certificate>, PkiError> {
        let certs = x509_cert::Certificate::load_pem_chain(pem.as_bytes())
            .map_err(|e| PkiError::Certificate(format!("not a PEM certificate bundle: {e}")))?;
        if certs.is_empty() {
            return Err(PkiError::Certificate(
                "the PEM bundle holds no certificate".into(),
            ));
        }
        certs
            .into_iter()
            .map(|c| {
                let der = c
                    .to_der()
                    .map_err(|e| PkiError::Certificate(e.to_string()))?;
                Certificate::from_der(&der)
            })
            .collect()
    }

    /// A trust store file: a PEM bundle, or one DER certificate.
    pub fn parse_file(bytes: &[u8]) -> Result<Vec<Certificate>, PkiError> {
        match std::str::from_utf8(bytes) {
            Ok(text) if text.contains("-----BEGIN") => Certificate::parse_pem_bundle(text),
            _ => Certificate::from_der(bytes).map(|c| vec![c]),
        }
    }

    /// The parsed certificate, for the rest of this module.
    pub(super) fn inner(&self) -> &x509_cert::Certificate {
        &self.cert
    }

    /// The certificate's DER encoding, as given.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The subject's attributes in order, with short names (C, ST, O, OU, CN, …).
    pub fn subject(&self) -> &[(String, String)] {
        &self.subject
    }

    /// The subject as a distinguished name that identities can be matched against: each
    /// attribute type once, each RDN single-valued (notation-go's `ParseDistinguishedName`).
    /// A subject with `O=evil, O=acme` or `O=evil+CN=x` is refused, so no identity can match
    /// it by one of its values.
    pub fn subject_dn(&self) -> Result<BTreeMap<String, String>, PkiError> {
        if !self.subject_single_valued {
            return Err(PkiError::Certificate(format!(
                "subject {:?} has a multi-valued RDN",
                self.subject_text()
            )));
        }
        let mut dn = BTreeMap::new();
        for (k, v) in &self.subject {
            if dn.insert(k.clone(), v.clone()).is_some() {
                return Err(PkiError::Certificate(format!(
                    "subject {:?} has {k} more than once",
                    self.subject_text()
                )));
            }
        }
        Ok(dn)
    }

    /// The subject for people (RFC 4514 order).
    pub fn subject_text(&self) -> String {
        self.cert.tbs_certificate().subject().to_string()
    }

    /// The issuer for people (RFC 4514 order).
    pub fn issuer_text(&self) -> String {
        self.cert.tbs_certificate().issuer().to_string()
    }

    /// The last common name of the subject, Go's `Subject.CommonName`.
    pub fn common_name(&self) -> Option<&str> {
        self.subject
            .iter()
            .rev()
            .find(|(k, _)| k == "CN")
            .map(|(_, v)| v.as_str())
    }

    /// The start of the validity period (`notBefore`), included.
    pub fn not_before(&self) -> OffsetDateTime {
        to_time(&self.cert.tbs_certificate().validity().not_before)
    }

    /// The end of the validity period (`notAfter`), included.
    pub fn not_after(&self) -> OffsetDateTime {
        to_time(&self.cert.tbs_certificate().validity().not_after)
    }

    /// Whether `t` is within the validity period (both ends included).
    pub fn valid_at(&self, t: OffsetDateTime) -> bool {
        self.not_before() <= t && t <= self.not_after()
    }

    /// The subject's public key; refused like any [`VerifyingKey`] (unsupported type, RSA under
    /// [`crate::pki::MIN_RSA_BITS`]).
    pub fn public_key(&self) -> Result<VerifyingKey, PkiError> {
        let spki = self
            .cert
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|e| PkiError::Certificate(e.to_string()))?;
        VerifyingKey::from_spki_der(&spki)
    }

    /// Issuer and subject are the same name.
    pub fn is_self_issued(&self) -> bool {
        self.cert.tbs_certificate().issuer() == self.cert.tbs_certificate().subject()
    }

    /// Self-issued and signed by its own key.
    pub fn is_self_signed(&self) -> bool {
        self.is_self_issued() && self.verify_issued_by(self).is_ok()
    }

    /// Whether its signature algorithm uses SHA-1.
    pub fn signed_with_sha1(&self) -> bool {
        SHA1_SIGNATURE_OIDS.contains(&self.cert.signature_algorithm().oid.to_string().as_str())
    }

    /// Checks that `issuer` issued this certificate: the issuer name is the issuer's subject and
    /// the issuer's key verifies the signature (RSA PKCS#1 v1.5 or PSS, ECDSA, Ed25519 with
    /// SHA-256/384/512; SHA-1 is refused).
    pub fn verify_issued_by(&self, issuer: &Certificate) -> Result<(), PkiError> {
        let tbs = self.cert.tbs_certificate();
        if tbs.issuer() != issuer.cert.tbs_certificate().subject() {
            return Err(PkiError::Certificate(format!(
                "issued by {:?}, not by {:?}",
                self.issuer_text(),
                issuer.subject_text()
            )));
        }
        if self.signed_with_sha1() {
            return Err(PkiError::Certificate(format!(
                "certificate {:?} is signed with SHA-1",
                self.subject_text()
            )));
        }
        let algorithm = self.cert.signature_algorithm();
        let params = algorithm.parameters.as_ref().and_then(|p| p.to_der().ok());
        let tbs_der = tbs
            .to_der()
            .map_err(|e| PkiError::Certificate(e.to_string()))?;
        verify_by_algorithm(
            &issuer.public_key()?,
            &algorithm.oid.to_string(),
            params.as_deref(),
            None,
            &tbs_der,
            self.cert.signature().raw_bytes(),
        )
    }

    /// The key usage extension and whether it is critical.
    pub fn key_usage(&self) -> Result<Option<(KeyUsage, bool)>, PkiError> {
        let found = self
            .cert
            .tbs_certificate()
            .get_extension::<X509KeyUsage>()
            .map_err(|e| PkiError::Certificate(format!("key usage: {e}")))?;
        Ok(found.map(|(critical, ku)| {
            let has = |u: KeyUsages| ku.0.contains(u);
            (
                KeyUsage {
                    digital_signature: has(KeyUsages::DigitalSignature),
                    content_commitment: has(KeyUsages::NonRepudiation),
                    key_encipherment: has(KeyUsages::KeyEncipherment),
                    data_encipherment: has(KeyUsages::DataEncipherment),
                    key_agreement: has(KeyUsages::KeyAgreement),
                    key_cert_sign: has(KeyUsages::KeyCertSign),
                    crl_sign: has(KeyUsages::CRLSign),
                    encipher_only: has(KeyUsages::EncipherOnly),
                    decipher_only: has(KeyUsages::DecipherOnly),
                },
                critical,
            )
        }))
    }

    /// Basic constraints: `(cA, pathLenConstraint, critical)`.
    pub fn basic_constraints(&self) -> Result<Option<(bool, Option<u8>, bool)>, PkiError> {
        let found = self
            .cert
            .tbs_certificate()
            .get_extension::<BasicConstraints>()
            .map_err(|e| PkiError::Certificate(format!("basic constraints: {e}")))?;
        Ok(found.map(|(critical, bc)| (bc.ca, bc.path_len_constraint, critical)))
    }

    /// Extended key usage OIDs and whether the extension is critical.
    pub fn extended_key_usage(&self) -> Result<Option<(Vec<String>, bool)>, PkiError> {
        let found = self
            .cert
            .tbs_certificate()
            .get_extension::<ExtendedKeyUsage>()
            .map_err(|e| PkiError::Certificate(format!("extended key usage: {e}")))?;
        Ok(
            found
                .map(|(critical, eku)| (eku.0.iter().map(ToString::to_string).collect(), critical)),
        )
    }

    /// A raw extension value (`extnValue` contents) by OID, and whether it is critical.
    pub fn extension(&self, oid: &str) -> Option<(&[u8], bool)> {
        self.cert
            .tbs_certificate()
            .extensions()?
            .iter()
            .find(|e| e.extn_id.to_string() == oid)
            .map(|e| (e.extn_value.as_bytes(), e.critical))
    }

    /// The subject alternative names cosign identities are matched on: e-mail addresses, URIs,
    /// DNS names, and UTF-8 `otherName` values (Fulcio's `1.3.6.1.4.1.57264.1.7` usernames).
    pub fn subject_alt_names(&self) -> Result<Vec<String>, PkiError> {
        use x509_cert::ext::pkix::SubjectAltName;
        use x509_cert::ext::pkix::name::GeneralName;
        let Some((_, san)) = self
            .cert
            .tbs_certificate()
            .get_extension::<SubjectAltName>()
            .map_err(|e| PkiError::Certificate(format!("subject alternative name: {e}")))?
        else {
            return Ok(Vec::new());
        };
        Ok(san
            .0
            .iter()
            .filter_map(|n| match n {
                GeneralName::Rfc822Name(s)
                | GeneralName::UniformResourceIdentifier(s)
                | GeneralName::DnsName(s) => Some(s.to_string()),
                GeneralName::OtherName(o) => o
                    .value
                    .decode_as::<der::asn1::Utf8StringRef<'_>>()
                    .ok()
                    .map(|s| s.as_str().to_owned()),
                _ => None,
            })
            .collect())
    }

    /// The DER TBSCertificate with the extension `oid` left out: what a CT log signed for a
    /// precertificate whose SCT list (`oid`) was added afterwards (RFC 6962 §3.2).
    pub fn tbs_without_extension(&self, oid: &str) -> Result<Vec<u8>, PkiError> {
        use x509_cert::ext::Extension;
        let bad = |e: der::Error| PkiError::Certificate(format!("TBSCertificate: {e}"));
        let tbs = self.cert.tbs_certificate().to_der().map_err(bad)?;
        let fields = Vec::<der::Any>::from_der(&tbs).map_err(bad)?;
        let extensions_tag = der::Tag::ContextSpecific {
            constructed: true,
            number: der::TagNumber(3),
        };
        let mut out = Vec::with_capacity(fields.len());
        for f in fields {
            if der::Tagged::tag(&f) != extensions_tag {
                out.push(f);
                continue;
            }
            let inner = der::Any::from_der(f.value()).map_err(bad)?;
            let kept: Vec<Extension> = Vec::<Extension>::from_der(&inner.to_der().map_err(bad)?)
                .map_err(bad)?
                .into_iter()
                .filter(|e| e.extn_id.to_string() != oid)
                .collect();
            let seq = kept.to_der().map_err(bad)?;
            out.push(der::Any::new(extensions_tag, seq).map_err(bad)?);
        }
        out.to_der().map_err(bad)
    }

    /// The SHA-256 of the DER encoding: the certificate's usual fingerprint.
    pub fn sha256_fingerprint(&self) -> [u8; 32] {
        Sha256::digest(&self.der).into()
    }
}

const OID_SHA256: &str = "2.16.840.1.101.3.4.2.1";
const OID_SHA384: &str = "2.16.840.1.101.3.4.2.2";
const OID_SHA512: &str = "2.16.840.1.101.3.4.2.3";

/// Verifies `sig` over `message` with `key` by an X.509/CMS signature algorithm identifier
/// (`oid` and its DER `params`): RSA PKCS#1 v1.5 or PSS, ECDSA (DER), Ed25519, with SHA-256/384/512.
/// `digest_oid` is the separate digest algorithm CMS names beside a bare `rsaEncryption`.
/// SHA-1 and anything else are refused.
pub fn verify_by_algorithm(
    key: &VerifyingKey,
    oid: &str,
    params: Option<&[u8]>,
    digest_oid: Option<&str>,
    message: &[u8],
    sig: &[u8],
) -> Result<(), PkiError> {
    let ecdsa = |size: usize| {
        // The hash is the algorithm's; the curve is the key's.
        match key.ecdsa_alg() {
            Some(own) if alg_hash_size(own) == size => {
                key.verify(own, SigEncoding::Der, message, sig)
            }
            _ => key.verify_ecdsa_prehash(&hash(size, message), sig),
        }
    };
    let rsa = |alg: SigAlg| key.verify(alg, SigEncoding::Der, message, sig);
    match oid {
        "1.2.840.10045.4.3.2" => ecdsa(32),
        "1.2.840.10045.4.3.3" => ecdsa(48),
        "1.2.840.10045.4.3.4" => ecdsa(64),
        "1.2.840.113549.1.1.11" => rsa(SigAlg::RsaPkcs1Sha256),
        "1.2.840.113549.1.1.12" => rsa(SigAlg::RsaPkcs1Sha384),
        "1.2.840.113549.1.1.13" => rsa(SigAlg::RsaPkcs1Sha512),
        // rsaEncryption: PKCS#1 v1.5 with the separately named digest (CMS signer infos).
        "1.2.840.113549.1.1.1" => match digest_oid {
            Some(OID_SHA256) => rsa(SigAlg::RsaPkcs1Sha256),
            Some(OID_SHA384) => rsa(SigAlg::RsaPkcs1Sha384),
            Some(OID_SHA512) => rsa(SigAlg::RsaPkcs1Sha512),
            other => Err(PkiError::Certificate(format!(
                "rsaEncryption with digest {other:?}"
            ))),
        },
        // id-ecPublicKey as a signature algorithm (some CMS signers): ECDSA with the named digest.
        "1.2.840.10045.2.1" => match digest_oid {
            Some(OID_SHA256) => ecdsa(32),
            Some(OID_SHA384) => ecdsa(48),
            Some(OID_SHA512) => ecdsa(64),
            other => Err(PkiError::Certificate(format!(
                "ECDSA with digest {other:?}"
            ))),
        },
        "1.3.101.112" => key.verify(SigAlg::Ed25519, SigEncoding::Raw, message, sig),
        "1.2.840.113549.1.1.10" => {
            let params =
                params.ok_or_else(|| PkiError::Certificate("RSA-PSS without parameters".into()))?;
            let params = rsa::pkcs1::RsaPssParams::<der::Any>::from_der(params)
                .map_err(|e| PkiError::Certificate(format!("RSA-PSS parameters: {e}")))?;
            let alg = match params.hash.oid.to_string().as_str() {
                OID_SHA256 => SigAlg::RsaPssSha256,
                OID_SHA384 => SigAlg::RsaPssSha384,
                OID_SHA512 => SigAlg::RsaPssSha512,
                other => {
                    return Err(PkiError::Certificate(format!("RSA-PSS with hash {other}")));
                }
            };
            rsa(alg)
        }
        other => Err(PkiError::Certificate(format!(
            "unsupported signature algorithm {other}"
        ))),
    }
}

fn alg_hash_size(a: SigAlg) -> usize {
    match a {
        SigAlg::EcdsaP384Sha384 | SigAlg::RsaPkcs1Sha384 | SigAlg::RsaPssSha384 => 48,
        SigAlg::EcdsaP521Sha512 | SigAlg::RsaPkcs1Sha512 | SigAlg::RsaPssSha512 => 64,
        _ => 32,
    }
}
