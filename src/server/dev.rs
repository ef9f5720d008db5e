//! A throwaway certificate authority and serving certificate for `signgate serve --dev`.

use std::io::{self, Write as _};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::time::{Duration, SystemTime};

use p256::ecdsa::{DerSignature, SigningKey};
use p256::pkcs8::EncodePrivateKey as _;
use x509_cert::builder::profile::cabf::{Root, tls::CertificateType, tls::Subscriber};
use x509_cert::builder::{Builder as _, CertificateBuilder};
use x509_cert::der::asn1::{Ia5String, OctetString};
use x509_cert::der::pem::LineEnding;
use x509_cert::der::{EncodePem as _, Error as DerError};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

use super::tls::provider;

/// How long the development certificates are valid.
const VALIDITY: Duration = Duration::from_secs(90 * 24 * 60 * 60);
/// Backdating of NotBefore, for clocks slightly behind this one.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// File names written by [`dev_certificate`].
pub(crate) const DEV_CERT_FILE: &str = "tls.crt";
pub(crate) const DEV_KEY_FILE: &str = "tls.key";
pub(crate) const DEV_CA_FILE: &str = "ca.crt";

/// Why the development certificate could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevCertError {
    /// The system random source failed.
    #[error("no randomness available for the development key")]
    Random,
    /// A DNS name is not valid in a certificate.
    #[error("{name:?} is not a valid certificate DNS name")]
    InvalidName { name: String },
    /// The certificate builder refused the input.
    #[error("cannot build the development certificate: {0}")]
    Build(#[from] x509_cert::builder::Error),
    /// DER encoding failed.
    #[error("cannot encode the development certificate: {0}")]
    Encode(#[from] DerError),
    /// PEM encoding failed.
    #[error("cannot PEM-encode the development certificate: {0}")]
    Pem(#[from] x509_cert::der::pem::Error),
    /// A public key cannot be encoded.
    #[error("cannot encode the development public key: {0}")]
    PublicKey(#[from] x509_cert::spki::Error),
    /// The private key cannot be encoded as PKCS#8.
    #[error("cannot encode the development private key: {0}")]
    PrivateKey(#[from] p256::pkcs8::Error),
    /// A file cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Creates a new P-256 certificate authority and a serving certificate it signs, valid for 90
/// days, for `dns_names` plus `localhost`, `127.0.0.1` and `::1` (names that parse as IP addresses
/// become IP SANs). Writes `dir/tls.crt`, `dir/tls.key` (PKCS#8, mode 0600) and `dir/ca.crt` (the
/// bundle to trust, e.g. the webhook's `caBundle`) and returns
/// `(cert_path, key_path, ca_bundle_path)`.
pub fn dev_certificate(
    dns_names: &[impl AsRef<str>],
    dir: &Path,
) -> Result<(PathBuf, PathBuf, PathBuf), DevCertError> {
    let ca_key = random_key()?;
    let leaf_key = random_key()?;

    let now = SystemTime::now();
    let validity = Validity::new(
        Time::try_from(now.checked_sub(BACKDATE).unwrap_or(now))?,
        Time::try_from(now + VALIDITY)?,
    );

    let ca_name = Name::from_str("CN=signgate development CA,O=signgate,C=US")?;
    let ca = CertificateBuilder::new(
        Root::new(false, ca_name.clone())?,
        random_serial()?,
        validity,
        SubjectPublicKeyInfoOwned::from_key(ca_key.verifying_key())?,
    )?
    .build::<_, DerSignature>(&ca_key)?;

    let names = subject_alt_names(dns_names)?;
    let first = dns_names
        .first()
        .map(|n| n.as_ref().to_owned())
        .unwrap_or_else(|| "localhost".to_owned());
    let subject = Name::from_str(&format!("CN={}", escape_rdn(&first)))?;
    let profile = Subscriber {
        certificate_type: CertificateType::domain_validated(subject, names.clone())?,
        issuer: ca_name,
        client_auth: false,
    };
    let mut leaf = CertificateBuilder::new(
        profile,
        random_serial()?,
        validity,
        SubjectPublicKeyInfoOwned::from_key(leaf_key.verifying_key())?,
    )?;
    leaf.add_extension(&SubjectAltName(names))?;
    let leaf = leaf.build::<_, DerSignature>(&ca_key)?;

    let key_der = leaf_key.to_pkcs8_der()?;
    let key_pem =
        x509_cert::der::pem::encode_string("PRIVATE KEY", LineEnding::LF, key_der.as_bytes())?;
    let ca_pem = ca.to_pem(LineEnding::LF)?;
    let leaf_pem = leaf.to_pem(LineEnding::LF)?;

    std::fs::create_dir_all(dir).map_err(|source| DevCertError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let cert_path = dir.join(DEV_CERT_FILE);
    let key_path = dir.join(DEV_KEY_FILE);
    let ca_path = dir.join(DEV_CA_FILE);
    write_file(&ca_path, ca_pem.as_bytes(), false)?;
    write_file(&key_path, key_pem.as_bytes(), true)?;
    write_file(&cert_path, leaf_pem.as_bytes(), false)?;
    Ok((cert_path, key_path, ca_path))
}

/// Escapes the RFC 4514 special characters of a name used as a CN.
fn escape_rdn(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn subject_alt_names(dns_names: &[impl AsRef<str>]) -> Result<Vec<GeneralName>, DevCertError> {
    let mut names: Vec<GeneralName> = Vec::new();
    let defaults = ["localhost", "127.0.0.1", "::1"];
    let all = dns_names
        .iter()
        .map(AsRef::as_ref)
        .chain(defaults.iter().copied());
    for name in all {
        let general = match name.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => GeneralName::IpAddress(OctetString::new(ip.octets().to_vec())?),
            Ok(IpAddr::V6(ip)) => GeneralName::IpAddress(OctetString::new(ip.octets().to_vec())?),
            Err(_) => {
                if name.is_empty() || !name.is_ascii() {
                    return Err(DevCertError::InvalidName {
                        name: name.to_owned(),
                    });
                }
                GeneralName::DnsName(Ia5String::new(name).map_err(|_| {
                    DevCertError::InvalidName {
                        name: name.to_owned(),
                    }
                })?)
            }
        };
        if !names.contains(&general) {
            names.push(general);
        }
    }
    Ok(names)
}

/// Random bytes from the TLS crypto provider (no separate RNG dependency).
fn random_bytes<const N: usize>() -> Result<[u8; N], DevCertError> {
    let mut buf = [0u8; N];
    provider()
        .secure_random
        .fill(&mut buf)
        .map_err(|_| DevCertError::Random)?;
    Ok(buf)
}

fn random_key() -> Result<SigningKey, DevCertError> {
    // 32 random bytes are a valid P-256 scalar except with negligible probability; retry then.
    for _ in 0..8 {
        if let Ok(key) = SigningKey::from_slice(&random_bytes::<32>()?) {
            return Ok(key);
        }
    }
    Err(DevCertError::Random)
}

fn random_serial() -> Result<SerialNumber, DevCertError> {
    let mut bytes = random_bytes::<16>()?;
    // Positive, and without a leading zero byte (DER minimal encoding).
    if let Some(first) = bytes.first_mut() {
        *first = (*first & 0x7f) | 0x40;
    }
    Ok(SerialNumber::new(&bytes)?)
}

fn write_file(path: &Path, contents: &[u8], private: bool) -> Result<(), DevCertError> {
    let err = |source| DevCertError::Write {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(err)?;
    // `mode` applies only to a new file; an existing one is narrowed before the key is written.
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(err)?;
    }
    #[cfg(not(unix))]
    let _ = private;
    file.write_all(contents).map_err(err)?;
    file.sync_all().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_default_names_once_and_ip_addresses_as_ip_sans() {
        let names = subject_alt_names(&["signgate.signgate.svc", "10.0.0.7", "localhost"]).unwrap();
        assert_eq!(names.len(), 5);
        assert!(
            matches!(&names[0], GeneralName::DnsName(n) if n.as_str() == "signgate.signgate.svc")
        );
        assert!(matches!(&names[1], GeneralName::IpAddress(ip) if ip.as_bytes() == [10, 0, 0, 7]));
        assert!(matches!(&names[2], GeneralName::DnsName(n) if n.as_str() == "localhost"));
        assert!(matches!(&names[4], GeneralName::IpAddress(ip) if ip.as_bytes().len() == 16));
    }

    #[test]
    fn rejects_names_that_are_not_ascii() {
        assert!(matches!(
            subject_alt_names(&["bücher.example"]),
            Err(DevCertError::InvalidName { .. })
        ));
        assert!(matches!(
            subject_alt_names(&[""]),
            Err(DevCertError::InvalidName { .. })
        ));
    }

    #[test]
    fn escapes_rdn_specials() {
        assert_eq!(escape_rdn("a,b=c"), r"a\,b\=c");
    }

    #[test]
    fn writes_a_pair_that_loads() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, ca) = dev_certificate(&["signgate.signgate.svc"], dir.path()).unwrap();
        let resolver = crate::server::ReloadingCert::load(&cert, &key).unwrap();
        assert_eq!(resolver.current().cert.len(), 1);
        let days = (resolver.not_after_unix() - crate::server::tls::now_unix()) / 86_400;
        assert!((89..=90).contains(&days), "{days}");
        assert!(
            std::fs::read_to_string(ca)
                .unwrap()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
    }
}
