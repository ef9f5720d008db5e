//! The certificate chain of a Notation signature (notation-core-go
//! `x509/codesigning_cert_validations.go`): fixed by the envelope, leaf first, each issued by the
//! next, ending in a self-signed root; leaf and CA rules on key usage, basic constraints and
//! extended key usage; no SHA-1, RSA ≥ 2048, EC ≥ 256. No path building: trust is one exact
//! match of a chain certificate in the configured store. And trusted identities: the leaf's
//! subject, matched as a subset of RFC 4514 attributes (notation-go `verifyX509TrustedIdentities`).

use std::collections::BTreeMap;

use super::limits::MAX_CHAIN;
use crate::pki::{Certificate, OID_EKU_CODE_SIGNING, OID_EKU_TIME_STAMPING};

const OID_EKU_ANY: &str = "2.5.29.37.0";
const OID_EKU_SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";
const OID_EKU_CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";
const OID_EKU_EMAIL: &str = "1.3.6.1.5.5.7.3.4";

/// Checks the chain rules; the error says which certificate broke which rule. Every rule that
/// costs no signature check comes first. Then the links, starting with the one below `anchor`
/// (the chain certificate found in the trust store) and going down to the leaf, then up to the
/// root: a chain that copies a trusted certificate above certificates it did not issue fails at
/// its first signature check, however long it is.
pub(super) fn validate_code_signing_chain(
    chain: &[Certificate],
    anchor: usize,
) -> Result<(), String> {
    let Some((leaf, rest)) = chain.split_first() else {
        return Err("the envelope carries no certificate".into());
    };
    if chain.len() > MAX_CHAIN {
        return Err(format!(
            "{} certificates, more than the {MAX_CHAIN} a chain may have",
            chain.len()
        ));
    }
    for c in chain {
        if c.signed_with_sha1() {
            return Err(format!(
                "certificate {:?} is signed with SHA-1",
                c.subject_text()
            ));
        }
        let key = c
            .public_key()
            .map_err(|e| format!("certificate {:?}: {e}", c.subject_text()))?;
        if key.is_rsa() && key.bits() < 2048 || !key.is_rsa() && key.bits() < 256 {
            return Err(format!(
                "certificate {:?}: {} key too small",
                c.subject_text(),
                key.describe()
            ));
        }
    }
    leaf_rules(leaf, OID_EKU_CODE_SIGNING)?;
    for (i, parent) in rest.iter().enumerate() {
        // Only the last certificate may be self-signed.
        if i + 1 < rest.len() && parent.is_self_issued() {
            return Err(format!(
                "certificate {:?} is self-issued but not the last of the chain",
                parent.subject_text()
            ));
        }
        // Certificates below this CA in the chain, not counting the leaf (RFC 5280 path length).
        ca_rules(parent, i)?;
    }
    let root = chain.last().unwrap_or(leaf);
    let not_root = || {
        if rest.is_empty() {
            format!(
                "the only certificate, {:?}, is not self-signed",
                leaf.subject_text()
            )
        } else {
            format!(
                "the chain ends in {:?}, which is not a self-signed root",
                root.subject_text()
            )
        }
    };
    if !root.is_self_issued() {
        return Err(not_root());
    }
    let top = chain.len() - 1;
    let anchor = anchor.min(top);
    for i in (0..anchor).rev().chain(anchor..top) {
        let (Some(child), Some(parent)) = (chain.get(i), chain.get(i + 1)) else {
            continue;
        };
        child.verify_issued_by(parent).map_err(|e| {
            format!(
                "certificate {:?} is not issued by the next one: {e}",
                child.subject_text()
            )
        })?;
    }
    if !root.is_self_signed() {
        return Err(not_root());
    }
    Ok(())
}

/// The rules for the certificate that signs (`eku`: codeSigning for signatures, timeStamping
/// for a TSA).
pub(super) fn leaf_rules(leaf: &Certificate, eku: &str) -> Result<(), String> {
    let name = leaf.subject_text();
    let ku = leaf.key_usage().map_err(|e| e.to_string())?;
    match ku {
        Some((ku, true)) => {
            if !ku.digital_signature {
                return Err(format!("leaf {name:?}: key usage lacks digitalSignature"));
            }
            if ku.key_encipherment
                || ku.data_encipherment
                || ku.key_agreement
                || ku.key_cert_sign
                || ku.crl_sign
                || ku.encipher_only
                || ku.decipher_only
            {
                return Err(format!(
                    "leaf {name:?}: key usage allows more than signing (keyEncipherment, keyCertSign, …)"
                ));
            }
        }
        Some((_, false)) => return Err(format!("leaf {name:?}: key usage is not critical")),
        None => return Err(format!("leaf {name:?}: no key usage extension")),
    }
    if let Some((true, _, _)) = leaf.basic_constraints().map_err(|e| e.to_string())? {
        return Err(format!(
            "leaf {name:?} is a CA certificate (basic constraints cA=true)"
        ));
    }
    if let Some((ekus, critical)) = leaf.extended_key_usage().map_err(|e| e.to_string())? {
        if eku == OID_EKU_TIME_STAMPING {
            if ekus != [OID_EKU_TIME_STAMPING] || !critical {
                return Err(format!(
                    "timestamping certificate {name:?}: extended key usage must be exactly timeStamping, critical"
                ));
            }
        } else {
            for bad in [
                OID_EKU_ANY,
                OID_EKU_SERVER_AUTH,
                OID_EKU_CLIENT_AUTH,
                OID_EKU_EMAIL,
                OID_EKU_TIME_STAMPING,
            ] {
                if ekus.iter().any(|e| e == bad) {
                    return Err(format!(
                        "leaf {name:?}: extended key usage {bad} is not allowed for code signing"
                    ));
                }
            }
        }
    } else if eku == OID_EKU_TIME_STAMPING {
        return Err(format!(
            "timestamping certificate {name:?} has no extended key usage"
        ));
    }
    Ok(())
}

/// The rules for an issuing certificate with `below` CA certificates between it and the leaf.
pub(super) fn ca_rules(ca: &Certificate, below: usize) -> Result<(), String> {
    let name = ca.subject_text();
    match ca.basic_constraints().map_err(|e| e.to_string())? {
        Some((true, path_len, true)) => {
            if let Some(max) = path_len
                && below > usize::from(max)
            {
                return Err(format!(
                    "CA {name:?}: path length {below} exceeds its constraint {max}"
                ));
            }
        }
        Some((true, _, false)) => {
            return Err(format!("CA {name:?}: basic constraints not critical"));
        }
        _ => {
            return Err(format!(
                "{name:?} issues certificates but is not a CA (basic constraints)"
            ));
        }
    }
    match ca.key_usage().map_err(|e| e.to_string())? {
        Some((ku, true)) if ku.key_cert_sign => Ok(()),
        Some((_, true)) => Err(format!("CA {name:?}: key usage lacks keyCertSign")),
        Some((_, false)) => Err(format!("CA {name:?}: key usage not critical")),
        None => Err(format!("CA {name:?}: no key usage extension")),
    }
}

/// A trusted identity: `*`, or the attributes an `x509.subject:` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// `*`: any signing certificate the trust stores accept.
    Any,
    /// The attributes (short name → value, `ST` for `S`) the leaf's subject must hold, each with
    /// that value; C, ST and O are always among them.
    Subject(BTreeMap<String, String>),
}

impl Identity {
    /// Parses `*` or `x509.subject: C=US, ST=WA, O=acme-rockets.io, …`: C, ST and O are
    /// required; `S` means `ST`; multi-valued RDNs, repeated attributes and `#` hex values are
    /// refused, as notation-go does.
    pub fn parse(s: &str) -> Result<Identity, String> {
        let s = s.trim();
        if s == "*" {
            return Ok(Identity::Any);
        }
        let dn = s
            .strip_prefix("x509.subject:")
            .ok_or_else(|| format!("{s:?} is neither \"*\" nor \"x509.subject: <DN>\""))?
            .trim();
        let mut attrs = BTreeMap::new();
        for part in split_unescaped(dn, ',') {
            let part = part.trim();
            if split_unescaped(part, '+').len() > 1 {
                return Err(format!("{s:?}: multi-valued RDN {part:?} is not supported"));
            }
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("{s:?}: {part:?} is not KEY=VALUE"))?;
            let k = k.trim().to_ascii_uppercase();
            let k = if k == "S" { "ST".to_owned() } else { k };
            let v = v.trim();
            if v.is_empty() || v.starts_with('#') {
                return Err(format!("{s:?}: {k} has an empty or hex (#) value"));
            }
            if attrs.insert(k.clone(), unescape(v)).is_some() {
                return Err(format!("{s:?}: {k} is given twice"));
            }
        }
        for required in ["C", "ST", "O"] {
            if !attrs.contains_key(required) {
                return Err(format!(
                    "{s:?}: a trusted identity needs C, ST and O ({required} is missing)"
                ));
            }
        }
        Ok(Identity::Subject(attrs))
    }

    /// Whether the leaf's subject (as [`Certificate::subject_dn`] gives it: every attribute
    /// once) holds every attribute of this identity with the same value.
    pub fn matches(&self, leaf_dn: &BTreeMap<String, String>) -> bool {
        match self {
            Identity::Any => true,
            Identity::Subject(want) => want.iter().all(|(k, v)| leaf_dn.get(k) == Some(v)),
        }
    }

    /// Two subject identities overlap when one's attributes are a subset of the other's.
    pub(super) fn overlaps(&self, other: &Identity) -> bool {
        match (self, other) {
            (Identity::Subject(a), Identity::Subject(b)) => {
                a.iter().all(|(k, v)| b.get(k) == Some(v))
                    || b.iter().all(|(k, v)| a.get(k) == Some(v))
            }
            _ => false,
        }
    }
}

fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(s.get(start..i).unwrap_or(""));
            start = i + c.len_utf8();
        }
    }
    out.push(s.get(start..).unwrap_or(""));
    out
}

fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut escaped = false;
    for c in v.chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    out
}

/// The position of the first chain certificate byte-identical to one of `store`
/// (notation-core-go `VerifyAuthenticity`): the chain's trust anchor.
pub(super) fn anchor_in_store(chain: &[Certificate], store: &[Certificate]) -> Option<usize> {
    chain.iter().position(|c| store.iter().any(|t| t == c))
}

/// Whether the certificate carries a revocation source (an OCSP responder or a CRL distribution
/// point): without network, its status is unknown.
pub(super) fn has_revocation_source(c: &Certificate) -> bool {
    const AIA: &str = "1.3.6.1.5.5.7.1.1";
    const CRL_DP: &str = "2.5.29.31";
    // id-ad-ocsp, DER-encoded OID bytes inside the AIA value.
    const OCSP_METHOD: &[u8] = &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
    c.extension(CRL_DP).is_some()
        || c.extension(AIA)
            .is_some_and(|(v, _)| v.windows(OCSP_METHOD.len()).any(|w| w == OCSP_METHOD))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_parse_as_notation_does() {
        let id = Identity::parse(
            "x509.subject: C=US, S=WA, O=acme-rockets.io, OU=Finance, CN=SecureBuilder",
        )
        .unwrap();
        let Identity::Subject(a) = &id else { panic!() };
        assert_eq!(a.get("ST").map(String::as_str), Some("WA"));
        assert_eq!(a.len(), 5);
        assert_eq!(Identity::parse("*").unwrap(), Identity::Any);
        for bad in [
            "x509.subject: C=US, O=acme",
            "x509.subject: C=US, ST=WA, O=a, O=b",
            "x509.subject: C=US+ST=WA, O=a",
            "x509.subject: C=US, ST=WA, O=#04024869",
            "subject: C=US, ST=WA, O=a",
            "x509.subject: C=US, ST, O=a",
        ] {
            assert!(Identity::parse(bad).is_err(), "{bad}");
        }
        let narrow = Identity::parse("x509.subject: C=US, ST=WA, O=a, CN=x").unwrap();
        let wide = Identity::parse("x509.subject: C=US, ST=WA, O=a").unwrap();
        let other = Identity::parse("x509.subject: C=US, ST=WA, O=b").unwrap();
        assert!(narrow.overlaps(&wide) && wide.overlaps(&narrow));
        assert!(!wide.overlaps(&other));
        let escaped = Identity::parse(r"x509.subject: C=US, ST=WA, O=Acme\, Inc.").unwrap();
        let Identity::Subject(e) = escaped else {
            panic!()
        };
        assert_eq!(e.get("O").map(String::as_str), Some("Acme, Inc."));
    }

    /// A P-256 certificate signed by its own key, carrying exactly `extensions`.
    fn with_extensions(extensions: Vec<x509_cert::ext::Extension>) -> Certificate {
        use std::str::FromStr as _;
        use x509_cert::builder::{Builder as _, CertificateBuilder};
        use x509_cert::der::Encode as _;
        use x509_cert::name::Name;
        struct Exact(Name, Vec<x509_cert::ext::Extension>);
        impl x509_cert::builder::profile::BuilderProfile for Exact {
            fn get_issuer(&self, _: &Name) -> Name {
                self.0.clone()
            }
            fn get_subject(&self) -> Name {
                self.0.clone()
            }
            fn build_extensions(
                &self,
                _: spki::SubjectPublicKeyInfoRef<'_>,
                _: spki::SubjectPublicKeyInfoRef<'_>,
                _: &x509_cert::TbsCertificate,
            ) -> x509_cert::builder::Result<Vec<x509_cert::ext::Extension>> {
                Ok(self.1.clone())
            }
        }
        let key = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
        let t = |s: u64| {
            x509_cert::time::Time::try_from(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(s),
            )
            .unwrap()
        };
        let der = CertificateBuilder::new(
            Exact(Name::from_str("CN=TSA,O=acme,C=US").unwrap(), extensions),
            x509_cert::serial_number::SerialNumber::from(7u32),
            x509_cert::time::Validity::new(t(1_700_000_000), t(2_000_000_000)),
            spki::SubjectPublicKeyInfoOwned::from_key(key.verifying_key()).unwrap(),
        )
        .unwrap()
        .build::<_, p256::ecdsa::DerSignature>(&key)
        .unwrap()
        .to_der()
        .unwrap();
        Certificate::from_der(&der).unwrap()
    }

    /// RFC 3161 §2.3 as notation-go applies it to a TSA's certificate: exactly one extended key
    /// usage, timeStamping, marked critical; a critical key usage with digitalSignature.
    #[test]
    fn timestamping_certificates_have_one_critical_time_stamping_usage() {
        use x509_cert::der::Encode as _;
        use x509_cert::der::asn1::{ObjectIdentifier, OctetString};
        use x509_cert::ext::Extension;
        use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, KeyUsages};
        let ext = |oid: &str, critical: bool, value: Vec<u8>| Extension {
            extn_id: ObjectIdentifier::new_unwrap(oid),
            critical,
            extn_value: OctetString::new(value).unwrap(),
        };
        let eku = |oids: &[&str], critical: bool| {
            let value = ExtendedKeyUsage(
                oids.iter()
                    .map(|o| ObjectIdentifier::new_unwrap(o))
                    .collect(),
            );
            ext("2.5.29.37", critical, value.to_der().unwrap())
        };
        let ku = |flags: x509_cert::der::flagset::FlagSet<KeyUsages>| {
            ext("2.5.29.15", true, KeyUsage(flags).to_der().unwrap())
        };
        let signing = || ku(KeyUsages::DigitalSignature.into());
        let ts = OID_EKU_TIME_STAMPING;

        let good = with_extensions(vec![signing(), eku(&[ts], true)]);
        leaf_rules(&good, ts).unwrap();
        for (what, extensions) in [
            ("EKU not critical", vec![signing(), eku(&[ts], false)]),
            (
                "EKU beside codeSigning",
                vec![signing(), eku(&[ts, OID_EKU_CODE_SIGNING], true)],
            ),
            ("no EKU", vec![signing()]),
            (
                "only codeSigning",
                vec![signing(), eku(&[OID_EKU_CODE_SIGNING], true)],
            ),
            (
                "no digitalSignature",
                vec![ku(KeyUsages::NonRepudiation.into()), eku(&[ts], true)],
            ),
            (
                "certificate signing too",
                vec![
                    ku(KeyUsages::DigitalSignature | KeyUsages::KeyCertSign),
                    eku(&[ts], true),
                ],
            ),
            ("no key usage", vec![eku(&[ts], true)]),
        ] {
            let e = leaf_rules(&with_extensions(extensions), ts).unwrap_err();
            assert!(e.contains("TSA"), "{what}: {e}");
        }
        // A code signing leaf must not be a TSA's.
        assert!(leaf_rules(&good, OID_EKU_CODE_SIGNING).is_err());
    }
}
