//! Certificate revocation lists given as files (no network): which certificates an issuer has
//! revoked, and when, in a list that issuer signed.

use der::{Decode as _, Encode as _};
use time::OffsetDateTime;

use super::cert::{to_time, verify_by_algorithm};
use super::{Certificate, PkiError};

/// A parsed CRL.
#[derive(Debug, Clone)]
pub struct Crl {
    der: Vec<u8>,
    list: x509_cert::crl::CertificateList,
}

impl PartialEq for Crl {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for Crl {}

impl Crl {
    /// One DER CRL.
    pub fn from_der(der: &[u8]) -> Result<Crl, PkiError> {
        let list = x509_cert::crl::CertificateList::from_der(der)
            .map_err(|e| PkiError::Certificate(format!("not a DER X.509 CRL: {e}")))?;
        Ok(Crl {
            der: der.to_vec(),
            list,
        })
    }

    /// A CRL file: PEM blocks `X509 CRL` (one or more), or one DER CRL.
    pub fn parse_file(bytes: &[u8]) -> Result<Vec<Crl>, PkiError> {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Crl::from_der(bytes).map(|c| vec![c]);
        };
        if !text.contains("-----BEGIN") {
            return Crl::from_der(bytes).map(|c| vec![c]);
        }
        let mut out = Vec::new();
        let mut rest = text;
        const END: &str = "-----END X509 CRL-----";
        while let Some((_, block)) = rest.split_once("-----BEGIN X509 CRL-----") {
            let (body, after) = block
                .split_once(END)
                .ok_or_else(|| PkiError::Certificate("an X509 CRL block has no END line".into()))?;
            let pem = format!("-----BEGIN X509 CRL-----{body}{END}\n");
            let (label, der) = der::pem::decode_vec(pem.as_bytes())
                .map_err(|e| PkiError::Certificate(format!("CRL PEM: {e}")))?;
            if label != "X509 CRL" {
                return Err(PkiError::Certificate(format!("PEM label {label:?}")));
            }
            out.push(Crl::from_der(&der)?);
            rest = after;
        }
        if out.is_empty() {
            return Err(PkiError::Certificate(
                "the file holds no X509 CRL block".into(),
            ));
        }
        Ok(out)
    }

    /// Whether this list is the issuer's of `cert` (by name; the signature is checked with
    /// [`Crl::verify_signed_by`]).
    pub fn covers(&self, cert: &Certificate) -> bool {
        &self.list.tbs_cert_list.issuer == cert.inner().tbs_certificate().issuer()
    }

    /// Checks that `issuer` signed this list.
    pub fn verify_signed_by(&self, issuer: &Certificate) -> Result<(), PkiError> {
        if &self.list.tbs_cert_list.issuer != issuer.inner().tbs_certificate().subject() {
            return Err(PkiError::Certificate("the CRL is another issuer's".into()));
        }
        let tbs = self
            .list
            .tbs_cert_list
            .to_der()
            .map_err(|e| PkiError::Certificate(e.to_string()))?;
        let alg = &self.list.signature_algorithm;
        let params = alg.parameters.as_ref().and_then(|p| p.to_der().ok());
        verify_by_algorithm(
            &issuer.public_key()?,
            &alg.oid.to_string(),
            params.as_deref(),
            None,
            &tbs,
            self.list.signature.raw_bytes(),
        )
    }

    /// When the list was issued (`thisUpdate`).
    pub fn this_update(&self) -> OffsetDateTime {
        to_time(&self.list.tbs_cert_list.this_update)
    }

    /// `None`: the list names no next update.
    pub fn next_update(&self) -> Option<OffsetDateTime> {
        self.list.tbs_cert_list.next_update.as_ref().map(to_time)
    }

    /// When `cert` was revoked, if this list revokes it (by serial number).
    pub fn revoked_at(&self, cert: &Certificate) -> Option<OffsetDateTime> {
        let serial = cert.inner().tbs_certificate().serial_number();
        self.list
            .tbs_cert_list
            .revoked_certificates
            .as_ref()?
            .iter()
            .find(|r| &r.serial_number == serial)
            .map(|r| to_time(&r.revocation_date))
    }
}
