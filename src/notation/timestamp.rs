//! RFC 3161 timestamp countersignatures (notation-go `verifier/timestamp`, tspclient-go): a CMS
//! SignedData whose content is a `TSTInfo`, signed by a TSA certificate that chains to the
//! policy's `tsa` store, over a message imprint that must be the hash of the envelope's signature.
//! What comes out is the time interval the TSA vouches for (`genTime ± accuracy`).

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use der::{Decode as _, Encode as _};
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use super::limits::MAX_TSA_CHAIN as MAX_DEPTH;
use crate::pki::{Certificate, OID_EKU_TIME_STAMPING, verify_by_algorithm};

const OID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const OID_TST_INFO: &str = "1.2.840.113549.1.9.16.1.4";
const OID_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const OID_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
const OID_SIGNING_CERTIFICATE: &str = "1.2.840.113549.1.9.16.2.12";
const OID_SIGNING_CERTIFICATE_V2: &str = "1.2.840.113549.1.9.16.2.47";
const OID_SHA1: &str = "1.3.14.3.2.26";
const OID_SHA256: &str = "2.16.840.1.101.3.4.2.1";
const OID_SHA384: &str = "2.16.840.1.101.3.4.2.2";
const OID_SHA512: &str = "2.16.840.1.101.3.4.2.3";

/// The interval a verified timestamp vouches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Interval {
    pub(super) earliest: OffsetDateTime,
    pub(super) latest: OffsetDateTime,
}

fn hash(oid: &str, data: &[u8]) -> Result<Vec<u8>, String> {
    Ok(match oid {
        OID_SHA256 => Sha256::digest(data).to_vec(),
        OID_SHA384 => Sha384::digest(data).to_vec(),
        OID_SHA512 => Sha512::digest(data).to_vec(),
        other => return Err(format!("hash algorithm {other} is not SHA-256/384/512")),
    })
}

/// Verifies `token` as a timestamp of `signature` by a TSA chaining to `roots`.
pub(super) fn verify(
    token: &[u8],
    signature: &[u8],
    roots: &[Certificate],
) -> Result<Interval, String> {
    let info = ContentInfo::from_der(token).map_err(|e| format!("timestamp token: {e}"))?;
    if info.content_type.to_string() != OID_SIGNED_DATA {
        return Err(format!(
            "timestamp token content is {}, not SignedData",
            info.content_type
        ));
    }
    let signed: SignedData = info
        .content
        .decode_as()
        .map_err(|e| format!("timestamp SignedData: {e}"))?;
    let encap = &signed.encap_content_info;
    if encap.econtent_type.to_string() != OID_TST_INFO {
        return Err(format!(
            "timestamp content type {} is not TSTInfo",
            encap.econtent_type
        ));
    }
    let tst_der = encap
        .econtent
        .as_ref()
        .ok_or("the timestamp token has no TSTInfo")?
        .decode_as::<der::asn1::OctetString>()
        .map_err(|e| format!("TSTInfo wrapper: {e}"))?
        .into_bytes();
    let tst = TstInfo::parse(&tst_der)?;
    if tst.imprint != hash(&tst.imprint_alg, signature)? {
        return Err("the timestamp is for another signature (message imprint mismatch)".into());
    }

    let [signer] = signed.signer_infos.0.as_slice() else {
        return Err(format!(
            "a timestamp token has one signer, this one {}",
            signed.signer_infos.0.len()
        ));
    };
    let certs: Vec<&x509_cert::Certificate> = signed
        .certificates
        .as_ref()
        .map(|set| {
            set.0
                .iter()
                .filter_map(|c| match c {
                    CertificateChoices::Certificate(c) => Some(c),
                    CertificateChoices::Other(_) => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let signer_cert = certs
        .iter()
        .find(|c| match &signer.sid {
            SignerIdentifier::IssuerAndSerialNumber(is) => {
                c.tbs_certificate().issuer() == &is.issuer
                    && c.tbs_certificate().serial_number() == &is.serial_number
            }
            SignerIdentifier::SubjectKeyIdentifier(ski) => c
                .tbs_certificate()
                .get_extension::<x509_cert::ext::pkix::SubjectKeyIdentifier>()
                .ok()
                .flatten()
                .is_some_and(|(_, own)| own.0 == ski.0),
        })
        .ok_or("signing certificate not found in the timestamp token")?;
    let to_ours = |c: &x509_cert::Certificate| {
        c.to_der()
            .map_err(|e| e.to_string())
            .and_then(|d| Certificate::from_der(&d).map_err(|e| e.to_string()))
    };
    let signer_ours = to_ours(signer_cert)?;
    let others = certs
        .iter()
        .map(|c| to_ours(c))
        .collect::<Result<Vec<_>, _>>()?;

    // Signed attributes: content type, message digest, and the signing certificate's hash.
    let attrs = signer
        .signed_attrs
        .as_ref()
        .ok_or("the timestamp signer has no signed attributes")?;
    let attr = |oid: &str| {
        attrs
            .iter()
            .find(|a| a.oid.to_string() == oid)
            .and_then(|a| a.values.iter().next())
    };
    let content_type = attr(OID_CONTENT_TYPE)
        .and_then(|v| v.decode_as::<der::asn1::ObjectIdentifier>().ok())
        .ok_or("the timestamp's signed content-type attribute is missing")?;
    if content_type.to_string() != OID_TST_INFO {
        return Err(format!("signed content type {content_type} is not TSTInfo"));
    }
    let digest_oid = signer.digest_alg.oid.to_string();
    let message_digest = attr(OID_MESSAGE_DIGEST)
        .and_then(|v| v.decode_as::<der::asn1::OctetString>().ok())
        .ok_or("the timestamp's signed message-digest attribute is missing")?;
    if message_digest.as_bytes() != hash(&digest_oid, &tst_der)?.as_slice() {
        return Err("the timestamp's message digest does not match its TSTInfo".into());
    }
    let (cert_hash_alg, cert_hash) = if let Some(v) = attr(OID_SIGNING_CERTIFICATE_V2) {
        ess_cert_id(&v.to_der().map_err(|e| e.to_string())?, true)?
    } else if let Some(v) = attr(OID_SIGNING_CERTIFICATE) {
        ess_cert_id(&v.to_der().map_err(|e| e.to_string())?, false)?
    } else {
        return Err("the timestamp names no signing certificate".into());
    };
    let own_hash = if cert_hash_alg == OID_SHA1 {
        use sha1::Digest as _;
        sha1::Sha1::digest(signer_ours.der()).to_vec()
    } else {
        hash(&cert_hash_alg, signer_ours.der())?
    };
    if own_hash != cert_hash {
        return Err(
            "the timestamp's signing-certificate attribute names another certificate".into(),
        );
    }
    let signed_attrs_der = attrs.to_der().map_err(|e| e.to_string())?;
    let params = signer
        .signature_algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.to_der().ok());
    let key = signer_ours.public_key().map_err(|e| e.to_string())?;
    verify_by_algorithm(
        &key,
        &signer.signature_algorithm.oid.to_string(),
        params.as_deref(),
        Some(&digest_oid),
        &signed_attrs_der,
        signer.signature.as_bytes(),
    )
    .map_err(|e| format!("the timestamp's signature: {e}"))?;

    // The TSA certificate: time stamping only, and a chain to the tsa store at genTime.
    // RFC 3161 §2.3 and notation-go's timestamping leaf rules: one EKU, timeStamping,
    // critical; a critical key usage allowing digital signatures only.
    super::chain::leaf_rules(&signer_ours, OID_EKU_TIME_STAMPING)?;
    chain_to_roots(&signer_ours, &others, roots, tst.gen_time)?;
    let earliest = tst.gen_time.checked_sub(tst.accuracy);
    let latest = tst.gen_time.checked_add(tst.accuracy);
    match (earliest, latest) {
        (Some(earliest), Some(latest)) => Ok(Interval { earliest, latest }),
        _ => Err("the timestamp's accuracy puts it outside any representable time".into()),
    }
}

/// Walks issuers from `leaf` through the token's certificates to a certificate of `roots`, each
/// valid at `at`.
fn chain_to_roots(
    leaf: &Certificate,
    pool: &[Certificate],
    roots: &[Certificate],
    at: OffsetDateTime,
) -> Result<(), String> {
    let mut current = leaf.clone();
    for _ in 0..MAX_DEPTH {
        if !current.valid_at(at) {
            return Err(format!(
                "TSA certificate {:?} is not valid at the timestamp's time",
                current.subject_text()
            ));
        }
        if roots.contains(&current) {
            return Ok(());
        }
        if let Some(root) = roots.iter().find(|r| current.verify_issued_by(r).is_ok()) {
            return if root.valid_at(at) {
                Ok(())
            } else {
                Err(format!(
                    "TSA root {:?} is not valid at the timestamp's time",
                    root.subject_text()
                ))
            };
        }
        let next = pool
            .iter()
            .find(|c| **c != current && current.verify_issued_by(c).is_ok())
            .ok_or_else(|| {
                format!(
                    "the TSA certificate {:?} does not chain to the tsa trust store",
                    leaf.subject_text()
                )
            })?;
        if !matches!(next.basic_constraints(), Ok(Some((true, _, _)))) {
            return Err(format!(
                "TSA chain certificate {:?} is not a CA",
                next.subject_text()
            ));
        }
        current = next.clone();
    }
    Err("the TSA chain is too long".into())
}

/// The first ESSCertID(v2) of a SigningCertificate(V2) attribute value: (hash OID, hash).
fn ess_cert_id(value: &[u8], v2: bool) -> Result<(String, Vec<u8>), String> {
    let bad = |w: &str| format!("signing-certificate attribute: {w}");
    let (_, outer, _) = tlv(value, 0x30).map_err(|e| bad(&e))?;
    let (_, certs, _) = tlv(outer, 0x30).map_err(|e| bad(&e))?;
    let (_, id, _) = tlv(certs, 0x30).map_err(|e| bad(&e))?;
    if !v2 {
        let (_, h, _) = tlv(id, 0x04).map_err(|e| bad(&e))?;
        return Ok((OID_SHA1.into(), h.to_vec()));
    }
    // ESSCertIDv2: hashAlgorithm DEFAULT sha256, certHash.
    if id.first() == Some(&0x30) {
        let (_, alg, rest) = tlv(id, 0x30).map_err(|e| bad(&e))?;
        let (_, oid, _) = tlv(alg, 0x06).map_err(|e| bad(&e))?;
        let oid = der::asn1::ObjectIdentifier::from_bytes(oid).map_err(|e| bad(&e.to_string()))?;
        let (_, h, _) = tlv(rest, 0x04).map_err(|e| bad(&e))?;
        Ok((oid.to_string(), h.to_vec()))
    } else {
        let (_, h, _) = tlv(id, 0x04).map_err(|e| bad(&e))?;
        Ok((OID_SHA256.into(), h.to_vec()))
    }
}

/// One DER element of `tag` (0 = any): (tag, contents, rest). Lengths are bounded by the input.
fn tlv(input: &[u8], tag: u8) -> Result<(u8, &[u8], &[u8]), String> {
    let (&t, rest) = input.split_first().ok_or("truncated")?;
    if tag != 0 && t != tag {
        return Err(format!("expected tag {tag:#04x}, found {t:#04x}"));
    }
    let (&first, mut rest) = rest.split_first().ok_or("truncated length")?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err("unsupported length".into());
        }
        let (bytes, tail) = rest.split_at_checked(n).ok_or("truncated length")?;
        rest = tail;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    let (body, tail) = rest.split_at_checked(len).ok_or("truncated contents")?;
    Ok((t, body, tail))
}

/// The fields of a `TSTInfo` signgate uses.
struct TstInfo {
    imprint_alg: String,
    imprint: Vec<u8>,
    gen_time: OffsetDateTime,
    accuracy: Duration,
}

impl TstInfo {
    fn parse(der_bytes: &[u8]) -> Result<TstInfo, String> {
        let bad = |w: String| format!("TSTInfo: {w}");
        let (_, body, _) = tlv(der_bytes, 0x30).map_err(bad)?;
        let (_, version, rest) = tlv(body, 0x02).map_err(bad)?;
        if version != [1] {
            return Err("TSTInfo: version is not 1".into());
        }
        let (_, _policy, rest) = tlv(rest, 0x06).map_err(bad)?;
        let (_, imprint, rest) = tlv(rest, 0x30).map_err(bad)?;
        let (_, alg, hashed) = tlv(imprint, 0x30).map_err(bad)?;
        let (_, oid, _) = tlv(alg, 0x06).map_err(bad)?;
        let imprint_alg = der::asn1::ObjectIdentifier::from_bytes(oid)
            .map_err(|e| bad(e.to_string()))?
            .to_string();
        let (_, imprint, _) = tlv(hashed, 0x04).map_err(bad)?;
        let (_, _serial, rest) = tlv(rest, 0x02).map_err(bad)?;
        let (_, generated, rest) = tlv(rest, 0x18).map_err(bad)?;
        let gen_time = generalized_time(generated).map_err(bad)?;
        let mut accuracy = Duration::ZERO;
        if rest.first() == Some(&0x30) {
            let (_, mut acc, _) = tlv(rest, 0x30).map_err(bad)?;
            while !acc.is_empty() {
                let (t, v, tail) = tlv(acc, 0).map_err(bad)?;
                let n = v.iter().try_fold(0i64, |a, b| {
                    a.checked_mul(256)
                        .and_then(|a| a.checked_add(i64::from(*b)))
                });
                let n = n
                    .filter(|n| *n < 1 << 40)
                    .ok_or_else(|| bad("accuracy out of range".into()))?;
                let part = match t {
                    0x02 => Duration::seconds(n),
                    0x80 => Duration::milliseconds(n),
                    0x81 => Duration::microseconds(n),
                    _ => Duration::ZERO,
                };
                accuracy = accuracy
                    .checked_add(part)
                    .filter(|a| *a <= Duration::DAY)
                    .ok_or_else(|| bad("accuracy is more than a day".into()))?;
                acc = tail;
            }
        }
        Ok(TstInfo {
            imprint_alg,
            imprint: imprint.to_vec(),
            gen_time,
            accuracy,
        })
    }
}

/// `YYYYMMDDHHMMSS[.f+]Z`, as RFC 3161 writes genTime.
fn generalized_time(bytes: &[u8]) -> Result<OffsetDateTime, String> {
    let s = std::str::from_utf8(bytes).map_err(|_| "genTime is not text".to_owned())?;
    let body = s.strip_suffix('Z').ok_or("genTime is not UTC")?;
    let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
    let digits = |r: std::ops::Range<usize>| -> Result<u32, String> {
        whole
            .get(r)
            .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| format!("genTime {s:?}"))
    };
    if whole.len() != 14 || !fraction.bytes().all(|b| b.is_ascii_digit()) || fraction.len() > 9 {
        return Err(format!("genTime {s:?}"));
    }
    let month = u8::try_from(digits(4..6)?)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok());
    let date = time::Date::from_calendar_date(
        i32::try_from(digits(0..4)?).map_err(|e| e.to_string())?,
        month.ok_or_else(|| format!("genTime {s:?}"))?,
        u8::try_from(digits(6..8)?).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let nanos = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}")
            .parse::<u32>()
            .map_err(|e| e.to_string())?
    };
    let t = time::Time::from_hms_nano(
        u8::try_from(digits(8..10)?).map_err(|e| e.to_string())?,
        u8::try_from(digits(10..12)?).map_err(|e| e.to_string())?,
        u8::try_from(digits(12..14)?).map_err(|e| e.to_string())?,
        nanos,
    )
    .map_err(|e| e.to_string())?;
    Ok(PrimitiveDateTime::new(date, t).assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generalized_times_parse_with_and_without_fractions() {
        let t = generalized_time(b"20240618062937Z").unwrap();
        assert_eq!(t.unix_timestamp(), 1_718_692_177);
        let f = generalized_time(b"20240618062937.125Z").unwrap();
        assert_eq!(f - t, Duration::milliseconds(125));
        for bad in [
            "2024061806293Z",
            "20240618062937",
            "20241318062937Z",
            "2024061806293xZ",
            "20240618062937.Z1",
        ] {
            assert!(generalized_time(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    /// A TSTInfo with `accuracy` (DER contents of the Accuracy SEQUENCE).
    fn tst_info(accuracy: &[u8]) -> Vec<u8> {
        let el = |tag: u8, body: &[u8]| {
            let mut v = vec![tag, u8::try_from(body.len()).unwrap()];
            v.extend_from_slice(body);
            v
        };
        let sha256 = el(
            0x30,
            &el(
                0x06,
                &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01],
            ),
        );
        let imprint = el(0x30, &[sha256, el(0x04, &[0u8; 32])].concat());
        el(
            0x30,
            &[
                el(0x02, &[1]),
                el(0x06, &[0x2a, 0x03]),
                imprint,
                el(0x02, &[7]),
                el(0x18, b"20240618062937Z"),
                el(0x30, accuracy),
            ]
            .concat(),
        )
    }

    #[test]
    fn accuracy_is_bounded() {
        let ok = TstInfo::parse(&tst_info(&[0x02, 0x01, 0x01, 0x80, 0x02, 0x01, 0xf4])).unwrap();
        assert_eq!(ok.accuracy, Duration::milliseconds(1500));
        // 2^39 seconds (17,000 years) would overflow the time type; more than a day is refused.
        for huge in [
            &[0x02, 0x05, 0x7f, 0xff, 0xff, 0xff, 0xff][..],
            &[0x02, 0x03, 0x01, 0x51, 0x81],
        ] {
            let e = TstInfo::parse(&tst_info(huge)).err().unwrap();
            assert!(e.contains("accuracy"), "{e}");
        }
    }

    #[test]
    fn tlv_refuses_what_overruns_its_input() {
        assert!(tlv(&[0x30, 0x05, 0x01], 0x30).is_err());
        assert!(tlv(&[0x30, 0x85, 0, 0, 0, 0, 1], 0x30).is_err());
        assert!(tlv(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff], 0x30).is_err());
        assert!(tlv(&[], 0x30).is_err());
        assert_eq!(
            tlv(&[0x04, 0x01, 0xaa, 0xbb], 0x04).unwrap(),
            (0x04, &[0xaa][..], &[0xbb][..])
        );
    }
}
