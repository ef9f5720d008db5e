//! Root certificates: notary's rules for the x509 keys of the root role.
//!
//! `trustpinning/certs.go` (`parseAllCerts`, `MatchCNToGun`) and `tuf/utils/x509.go:311`
//! (`ValidateCertificate`).

use der::{Decode as _, Encode as _};
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::ext::pkix::BasicConstraints;

/// Notary accepts a certificate whose NotBefore is up to one day in the future.
const NOT_BEFORE_LEEWAY_SECS: i64 = 24 * 60 * 60;

/// A leaf certificate followed by its intermediates, as a root key's `keyval.public` holds them.
#[derive(Debug, Clone)]
pub struct CertBundle {
    leaf: Certificate,
    leaf_spki: Vec<u8>,
}

/// What a certificate says about itself, for people (`inspect-root`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// The leaf's subject (RFC 4514 order).
    pub subject: String,
    /// The subject's last common name (Go's `Subject.CommonName`): for a root key, the GUN.
    pub common_name: Option<String>,
    /// NotBefore, unix seconds.
    pub not_before: i64,
    /// NotAfter, unix seconds.
    pub not_after: i64,
}

/// A broken certificate rule, with its reason kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertProblem {
    /// CN does not name this repository.
    GunMismatch(String),
    /// Outside NotBefore (with leeway) .. NotAfter.
    Expired(String),
    /// Any other rule.
    Invalid(String),
}

impl CertBundle {
    /// Parses a PEM bundle: exactly one leaf (non-CA) certificate, first, then CA intermediates.
    pub fn parse(pem: &[u8]) -> Result<CertBundle, String> {
        let certs = Certificate::load_pem_chain(pem)
            .map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
        let mut iter = certs.into_iter();
        let leaf = iter
            .next()
            .ok_or_else(|| "the PEM bundle holds no certificate".to_owned())?;
        if is_ca(&leaf) {
            return Err("the first certificate of the bundle is a CA, not a leaf".into());
        }
        // The CA certificates after the leaf are checked for shape only: notary never verifies
        // the chain of a root certificate.
        if iter.any(|c| !is_ca(&c)) {
            return Err("the bundle holds more than one leaf certificate".into());
        }
        let leaf_spki = leaf
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|e| format!("cannot encode the certificate's public key: {e}"))?;
        Ok(CertBundle { leaf, leaf_spki })
    }

    /// DER SubjectPublicKeyInfo of the leaf.
    pub(crate) fn leaf_spki(&self) -> &[u8] {
        &self.leaf_spki
    }

    /// The leaf's subject, CN and validity.
    pub fn summary(&self) -> CertSummary {
        summarize(&self.leaf)
    }

    /// Checks notary's rules for a root certificate of `gun`. With `now`, the validity period is
    /// enforced (with one day of NotBefore leeway); without it, only the static rules.
    pub fn validate(&self, gun: &str, now: Option<OffsetDateTime>) -> Result<(), CertProblem> {
        let cn = summarize(&self.leaf).common_name.unwrap_or_default();
        if !cn_matches_gun(&cn, gun) {
            return Err(CertProblem::GunMismatch(format!(
                "root certificate is for {cn:?}, not for repository {gun:?}"
            )));
        }
        // Invalid intermediates are dropped, as notary's validRootIntCerts does; they are never
        // used to verify anything.
        check_certificate(&self.leaf, now)
    }
}

/// `MatchCNToGun`: equal, or a CN ending in `*` is a prefix of the GUN.
pub(crate) fn cn_matches_gun(cn: &str, gun: &str) -> bool {
    match cn.strip_suffix('*') {
        Some(prefix) => gun.starts_with(prefix),
        None => cn == gun,
    }
}

/// DER SubjectPublicKeyInfo of one DER certificate.
pub(crate) fn spki_of_der(der: &[u8]) -> Result<Vec<u8>, String> {
    let cert = Certificate::from_der(der).map_err(|e| format!("invalid certificate: {e}"))?;
    cert.tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| format!("cannot encode the certificate's public key: {e}"))
}

fn is_ca(cert: &Certificate) -> bool {
    matches!(
        cert.tbs_certificate().get_extension::<BasicConstraints>(),
        Ok(Some((_, BasicConstraints { ca: true, .. })))
    )
}

fn unix(t: &x509_cert::time::Time) -> i64 {
    i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

fn summarize(cert: &Certificate) -> CertSummary {
    let tbs = cert.tbs_certificate();
    CertSummary {
        subject: tbs.subject().to_string(),
        common_name: last_common_name(tbs.subject()),
        not_before: unix(&tbs.validity().not_before),
        not_after: unix(&tbs.validity().not_after),
    }
}

/// Go's `Subject.CommonName` is the last CN attribute.
fn last_common_name(name: &x509_cert::name::Name) -> Option<String> {
    const CN: &str = "2.5.4.3";
    name.iter()
        .filter(|atv| atv.oid.to_string() == CN)
        .filter_map(|atv| {
            x509_cert::ext::pkix::name::DirectoryString::try_from(&atv.value)
                .ok()
                .map(|d| d.value().into_owned())
                .or_else(|| {
                    der::asn1::Ia5StringRef::try_from(&atv.value)
                        .ok()
                        .map(|s| s.as_str().to_owned())
                })
        })
        .last()
}

fn check_certificate(cert: &Certificate, now: Option<OffsetDateTime>) -> Result<(), CertProblem> {
    let s = summarize(cert);
    let name = s.common_name.as_deref().unwrap_or("(no CN)");
    if s.not_before > s.not_after {
        return Err(CertProblem::Invalid(format!(
            "certificate {name:?} has NotBefore after NotAfter"
        )));
    }
    let alg = cert.signature_algorithm().oid.to_string();
    if crate::pki::SHA1_SIGNATURE_OIDS.contains(&alg.as_str()) {
        return Err(CertProblem::Invalid(format!(
            "certificate {name:?} is signed with SHA-1"
        )));
    }
    let spki = cert.tbs_certificate().subject_public_key_info();
    if spki.algorithm.oid.to_string() == "1.2.840.113549.1.1.1" {
        use spki::DecodePublicKey as _;
        let der = spki.to_der().unwrap_or_default();
        let bits = rsa::PublicKey::from_public_key_der(&der)
            .map(|k| rsa::traits::PublicKeyParts::size(&k) * 8)
            .unwrap_or(0);
        if bits < crate::pki::MIN_RSA_BITS {
            return Err(CertProblem::Invalid(format!(
                "certificate {name:?} has an RSA key of {bits} bits; at least 2048 are required"
            )));
        }
    }
    if let Some(now) = now {
        let now = now.unix_timestamp();
        if now.saturating_add(NOT_BEFORE_LEEWAY_SECS) < s.not_before {
            return Err(CertProblem::Expired(format!(
                "certificate {name:?} is not valid before {}",
                fmt_unix(s.not_before)
            )));
        }
        if now > s.not_after {
            return Err(CertProblem::Expired(format!(
                "certificate {name:?} expired at {}",
                fmt_unix(s.not_after)
            )));
        }
    }
    Ok(())
}

/// RFC 3339 text of a unix time, for messages.
pub fn fmt_unix(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cn_wildcard_is_a_prefix_rule() {
        assert!(cn_matches_gun(
            "docker.io/library/alpine",
            "docker.io/library/alpine"
        ));
        assert!(cn_matches_gun(
            "registry.internal/ml/*",
            "registry.internal/ml/pytorch"
        ));
        assert!(!cn_matches_gun(
            "registry.internal/ml/*",
            "registry.internal/other"
        ));
        assert!(!cn_matches_gun(
            "registry.internal/ml",
            "registry.internal/ml/pytorch"
        ));
        assert!(!cn_matches_gun("", "x"));
    }
}
