//! Notation's two envelope types read into one shape: the signed bytes, the signature, the
//! certificate chain, the timestamp token and the protected headers. JWS is the flattened JSON
//! serialization (notation-core-go `signature/jws`); COSE is `COSE_Sign1_Tagged` (tag 18,
//! `signature/cose`). Signatures are checked over the bytes as received, never re-encoded.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ciborium::Value as Cbor;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::limits::{MAX_CBOR_DEPTH, MAX_CBOR_ITEMS, MAX_CHAIN, MAX_ENVELOPE};
use super::{NotationError, Reason};
use crate::pki::{SigAlg, SigEncoding};

/// `application/jose+json`
pub const MEDIA_TYPE_JWS: &str = "application/jose+json";
/// `application/cose`
pub const MEDIA_TYPE_COSE: &str = "application/cose";

pub(super) const SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
pub(super) const SIGNING_TIME: &str = "io.cncf.notary.signingTime";
pub(super) const AUTHENTIC_SIGNING_TIME: &str = "io.cncf.notary.authenticSigningTime";
pub(super) const EXPIRY: &str = "io.cncf.notary.expiry";
pub(super) const VERIFICATION_PLUGIN: &str = "io.cncf.notary.verificationPlugin";
pub(super) const VERIFICATION_PLUGIN_MIN_VERSION: &str =
    "io.cncf.notary.verificationPluginMinVersion";
const TIMESTAMP_SIGNATURE: &str = "io.cncf.notary.timestampSignature";

/// The algorithm a Notation envelope declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    Es512,
}

impl Alg {
    pub(super) fn sig_alg(self) -> SigAlg {
        match self {
            Alg::Ps256 => SigAlg::RsaPssSha256,
            Alg::Ps384 => SigAlg::RsaPssSha384,
            Alg::Ps512 => SigAlg::RsaPssSha512,
            Alg::Es256 => SigAlg::EcdsaP256Sha256,
            Alg::Es384 => SigAlg::EcdsaP384Sha384,
            Alg::Es512 => SigAlg::EcdsaP521Sha512,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::Es512 => "ES512",
        }
    }
}

/// The protected headers Notation defines, as both envelopes carry them.
#[derive(Debug, Clone)]
pub(super) struct Headers {
    pub(super) alg: Alg,
    /// `crit`, as names (COSE integer labels written as numbers).
    pub(super) crit: Vec<String>,
    pub(super) cty: Option<String>,
    pub(super) signing_scheme: Option<String>,
    pub(super) signing_time: Option<OffsetDateTime>,
    pub(super) authentic_signing_time: Option<OffsetDateTime>,
    pub(super) expiry: Option<OffsetDateTime>,
    /// Every header name present in the protected header.
    pub(super) present: BTreeSet<String>,
}

/// A parsed envelope.
#[derive(Debug, Clone)]
pub(super) struct Envelope {
    pub(super) headers: Headers,
    pub(super) payload: Vec<u8>,
    /// What the signature signs: `protected.payload` (JWS) or `Sig_structure` (COSE).
    pub(super) signing_input: Vec<u8>,
    pub(super) signature: Vec<u8>,
    /// DER certificates, leaf first.
    pub(super) chain: Vec<Vec<u8>>,
    /// An RFC 3161 `TimeStampToken`, if any.
    pub(super) timestamp: Option<Vec<u8>>,
}

impl Envelope {
    /// The ECDSA signature encoding both envelopes use.
    pub(super) const ENCODING: SigEncoding = SigEncoding::Raw;

    /// Parses an envelope of `media_type`: at most [`MAX_ENVELOPE`] bytes and [`MAX_CHAIN`]
    /// certificates, checked before the parts are decoded.
    pub(super) fn parse(media_type: &str, bytes: &[u8]) -> Result<Envelope, NotationError> {
        if bytes.len() > MAX_ENVELOPE {
            return Err(NotationError::new(
                Reason::TooLarge,
                format!(
                    "{} bytes, more than the {} KiB an envelope may have",
                    bytes.len(),
                    MAX_ENVELOPE / 1024
                ),
            ));
        }
        match media_type {
            MEDIA_TYPE_JWS => parse_jws(bytes),
            MEDIA_TYPE_COSE => parse_cose(bytes),
            other => Err(NotationError::new(
                Reason::UnsupportedSignature,
                format!(
                    "envelope type {other:?} is neither {MEDIA_TYPE_JWS} nor {MEDIA_TYPE_COSE}"
                ),
            )),
        }
    }
}

fn malformed(what: impl std::fmt::Display) -> NotationError {
    NotationError::new(Reason::Malformed, format!("malformed envelope: {what}"))
}

fn time(name: &str, s: &str) -> Result<OffsetDateTime, NotationError> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| malformed(format!("{name} {s:?}: {e}")))
}

fn jws_alg(s: &str) -> Result<Alg, NotationError> {
    Ok(match s {
        "PS256" => Alg::Ps256,
        "PS384" => Alg::Ps384,
        "PS512" => Alg::Ps512,
        "ES256" => Alg::Es256,
        "ES384" => Alg::Es384,
        "ES512" => Alg::Es512,
        other => {
            return Err(NotationError::new(
                Reason::UnsupportedSignature,
                format!("signature algorithm {other:?} is not one Notation allows"),
            ));
        }
    })
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Jws {
    payload: String,
    protected: String,
    header: JwsHeader,
    signature: String,
}

#[derive(serde::Deserialize)]
struct JwsHeader {
    x5c: Vec<String>,
    #[serde(rename = "io.cncf.notary.timestampSignature", default)]
    timestamp: Option<String>,
}

fn parse_jws(bytes: &[u8]) -> Result<Envelope, NotationError> {
    let jws: Jws = serde_json::from_slice(bytes).map_err(|e| malformed(format!("JWS: {e}")))?;
    // A signed field that does not decode is an invalid signature, as notation-go reports it.
    let url = |what: &str, s: &str| {
        URL_SAFE_NO_PAD.decode(s).map_err(|e| {
            NotationError::new(
                Reason::Integrity,
                format!("the signature is invalid: JWS {what} is not base64url: {e}"),
            )
        })
    };
    check_chain_length(jws.header.x5c.len())?;
    let protected = url("protected", &jws.protected)?;
    let payload = url("payload", &jws.payload)?;
    let signature = url("signature", &jws.signature)?;
    let chain = jws
        .header
        .x5c
        .iter()
        .map(|c| STANDARD.decode(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| malformed(format!("x5c is not base64: {e}")))?;
    let timestamp = jws
        .header
        .timestamp
        .map(|t| STANDARD.decode(t))
        .transpose()
        .map_err(|e| malformed(format!("timestamp is not base64: {e}")))?;
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&protected)
        .map_err(|e| malformed(format!("JWS protected header: {e}")))?;
    let text = |name: &str| -> Result<Option<String>, NotationError> {
        match map.get(name) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(malformed(format!("{name} is not a string"))),
        }
    };
    let when = |name: &str| text(name)?.map(|s| time(name, &s)).transpose();
    let alg = jws_alg(&text("alg")?.ok_or_else(|| malformed("no alg"))?)?;
    let crit = match map.get("crit") {
        None => Vec::new(),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| malformed("crit holds a non-string"))?,
        Some(_) => return Err(malformed("crit is not an array")),
    };
    let headers = Headers {
        alg,
        crit,
        cty: text("cty")?,
        signing_scheme: text(SIGNING_SCHEME)?,
        signing_time: when(SIGNING_TIME)?,
        authentic_signing_time: when(AUTHENTIC_SIGNING_TIME)?,
        expiry: when(EXPIRY)?,
        present: map.keys().cloned().collect(),
    };
    let mut signing_input = jws.protected.into_bytes();
    signing_input.push(b'.');
    signing_input.extend_from_slice(jws.payload.as_bytes());
    Ok(Envelope {
        headers,
        payload,
        signing_input,
        signature,
        chain,
        timestamp,
    })
}

/// COSE header labels as names: integers as their number, text as itself.
fn label_name(l: &Cbor) -> Option<String> {
    match l {
        Cbor::Integer(i) => Some(i128::from(*i).to_string()),
        Cbor::Text(t) => Some(t.clone()),
        _ => None,
    }
}

fn cose_alg(v: &Cbor) -> Result<Alg, NotationError> {
    let n = match v {
        Cbor::Integer(i) => i128::from(*i),
        _ => return Err(malformed("alg is not an integer")),
    };
    Ok(match n {
        -37 => Alg::Ps256,
        -38 => Alg::Ps384,
        -39 => Alg::Ps512,
        -7 => Alg::Es256,
        -35 => Alg::Es384,
        -36 => Alg::Es512,
        other => {
            return Err(NotationError::new(
                Reason::UnsupportedSignature,
                format!("COSE algorithm {other} is not one Notation allows"),
            ));
        }
    })
}

/// A CBOR time: tag 1 around an integer (or float) of epoch seconds; untagged is refused, as
/// notation-core-go does.
fn cose_time(name: &str, v: &Cbor) -> Result<OffsetDateTime, NotationError> {
    let Cbor::Tag(1, inner) = v else {
        return Err(malformed(format!("{name} is not a CBOR tag 1 time")));
    };
    let secs = match inner.as_ref() {
        Cbor::Integer(i) => i64::try_from(i128::from(*i)).ok(),
        Cbor::Float(f) if f.is_finite() && f.abs() < 1e15 => Some(f.trunc() as i64),
        _ => None,
    }
    .ok_or_else(|| malformed(format!("{name} is not epoch seconds")))?;
    OffsetDateTime::from_unix_timestamp(secs).map_err(|e| malformed(format!("{name}: {e}")))
}

/// Refuses a chain longer than [`MAX_CHAIN`].
fn check_chain_length(n: usize) -> Result<(), NotationError> {
    if n > MAX_CHAIN {
        return Err(NotationError::new(
            Reason::InvalidCertificate,
            format!(
                "the envelope carries {n} certificates, more than the {MAX_CHAIN} a chain may have"
            ),
        ));
    }
    Ok(())
}

/// Checks that `bytes` is exactly one CBOR data item of definite lengths, with at most
/// [`MAX_CBOR_ITEMS`] items nested at most [`MAX_CBOR_DEPTH`] deep, without building anything:
/// what ciborium then decodes is bounded by what it reads (no amplification of a megabyte of
/// one-byte integers into a value tree).
fn check_cbor_shape(bytes: &[u8]) -> Result<(), NotationError> {
    let mut pos = 0usize;
    let mut budget = MAX_CBOR_ITEMS;
    cbor_item(bytes, &mut pos, 0, &mut budget)?;
    if pos != bytes.len() {
        return Err(malformed(format!(
            "CBOR: {} bytes after the envelope",
            bytes.len() - pos
        )));
    }
    Ok(())
}

fn cbor_item(
    bytes: &[u8],
    pos: &mut usize,
    depth: usize,
    budget: &mut usize,
) -> Result<(), NotationError> {
    if depth > MAX_CBOR_DEPTH {
        return Err(malformed(format!(
            "CBOR nests deeper than {MAX_CBOR_DEPTH} levels"
        )));
    }
    if *budget == 0 {
        return Err(malformed(format!(
            "CBOR holds more than {MAX_CBOR_ITEMS} data items"
        )));
    }
    *budget -= 1;
    let truncated = || malformed("CBOR: truncated");
    let initial = *bytes.get(*pos).ok_or_else(truncated)?;
    *pos += 1;
    let (major, info) = (initial >> 5, initial & 0x1f);
    let width = match info {
        0..=23 => 0,
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        31 => {
            return Err(malformed(
                "CBOR: indefinite lengths are not used by COSE_Sign1",
            ));
        }
        _ => {
            return Err(malformed(format!(
                "CBOR: reserved additional information {info}"
            )));
        }
    };
    let mut arg = u64::from(if width == 0 { info } else { 0 });
    for _ in 0..width {
        arg = (arg << 8) | u64::from(*bytes.get(*pos).ok_or_else(truncated)?);
        *pos += 1;
    }
    match major {
        // Integers, and simple values and floats (their bytes are the argument).
        0 | 1 | 7 => Ok(()),
        // Byte and text strings.
        2 | 3 => {
            let len = usize::try_from(arg).map_err(|_| truncated())?;
            let end = pos
                .checked_add(len)
                .filter(|e| *e <= bytes.len())
                .ok_or_else(truncated)?;
            *pos = end;
            Ok(())
        }
        // Arrays and maps: every element (a map's keys and values) counts against the budget,
        // so a huge declared length fails at the budget, not after it.
        4 | 5 => {
            let per = if major == 5 { 2 } else { 1 };
            let n = arg.saturating_mul(per);
            if n > *budget as u64 {
                return Err(malformed(format!(
                    "CBOR holds more than {MAX_CBOR_ITEMS} data items"
                )));
            }
            for _ in 0..n {
                cbor_item(bytes, pos, depth + 1, budget)?;
            }
            Ok(())
        }
        // A tag around one item.
        _ => cbor_item(bytes, pos, depth + 1, budget),
    }
}

fn parse_cose(bytes: &[u8]) -> Result<Envelope, NotationError> {
    check_cbor_shape(bytes)?;
    let value: Cbor =
        ciborium::de::from_reader(bytes).map_err(|e| malformed(format!("CBOR: {e}")))?;
    let Cbor::Tag(18, inner) = value else {
        return Err(malformed("not a COSE_Sign1_Tagged (CBOR tag 18)"));
    };
    let Cbor::Array(parts) = *inner else {
        return Err(malformed("COSE_Sign1 is not an array"));
    };
    let [
        Cbor::Bytes(protected),
        Cbor::Map(unprotected),
        Cbor::Bytes(payload),
        Cbor::Bytes(signature),
    ] = <[Cbor; 4]>::try_from(parts).map_err(|_| malformed("COSE_Sign1 does not have 4 parts"))?
    else {
        return Err(malformed("COSE_Sign1 parts have the wrong types"));
    };
    check_cbor_shape(&protected)?;
    let Cbor::Map(map) = ciborium::de::from_reader::<Cbor, _>(protected.as_slice())
        .map_err(|e| malformed(format!("protected header: {e}")))?
    else {
        return Err(malformed("the protected header is not a map"));
    };
    let get = |name: &str| {
        map.iter()
            .find(|(k, _)| label_name(k).as_deref() == Some(name))
            .map(|(_, v)| v)
    };
    let text = |name: &str| -> Result<Option<String>, NotationError> {
        match get(name) {
            None => Ok(None),
            Some(Cbor::Text(s)) => Ok(Some(s.clone())),
            Some(_) => Err(malformed(format!("{name} is not text"))),
        }
    };
    let when = |name: &str| get(name).map(|v| cose_time(name, v)).transpose();
    let alg = cose_alg(get("1").ok_or_else(|| malformed("no alg (label 1)"))?)?;
    let crit = match get("2") {
        None => Vec::new(),
        Some(Cbor::Array(a)) => a
            .iter()
            .map(label_name)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| malformed("crit holds a label that is neither integer nor text"))?,
        Some(_) => return Err(malformed("crit is not an array")),
    };
    let cty = match get("3") {
        None => None,
        Some(Cbor::Text(s)) => Some(s.clone()),
        Some(_) => return Err(malformed("content type is not text")),
    };
    let headers = Headers {
        alg,
        crit,
        cty,
        signing_scheme: text(SIGNING_SCHEME)?,
        signing_time: when(SIGNING_TIME)?,
        authentic_signing_time: when(AUTHENTIC_SIGNING_TIME)?,
        expiry: when(EXPIRY)?,
        present: map.iter().filter_map(|(k, _)| label_name(k)).collect(),
    };
    // x5chain (label 33): unprotected, as notation-core-go reads it; protected also allowed.
    let x5chain = unprotected
        .iter()
        .chain(map.iter())
        .find(|(k, _)| label_name(k).as_deref() == Some("33"))
        .map(|(_, v)| v);
    let chain = match x5chain {
        Some(Cbor::Bytes(b)) => vec![b.clone()],
        Some(Cbor::Array(a)) => {
            check_chain_length(a.len())?;
            a.iter()
                .map(|c| match c {
                    Cbor::Bytes(b) => Some(b.clone()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| malformed("x5chain holds a non-bytes entry"))?
        }
        _ => Vec::new(),
    };
    let timestamp = unprotected
        .iter()
        .find(|(k, _)| label_name(k).as_deref() == Some(TIMESTAMP_SIGNATURE))
        .map(|(_, v)| match v {
            Cbor::Bytes(b) => Ok(b.clone()),
            _ => Err(malformed("timestampSignature is not bytes")),
        })
        .transpose()?;
    let sig_structure = Cbor::Array(vec![
        Cbor::Text("Signature1".into()),
        Cbor::Bytes(protected),
        Cbor::Bytes(Vec::new()),
        Cbor::Bytes(payload.clone()),
    ]);
    let mut signing_input = Vec::new();
    ciborium::ser::into_writer(&sig_structure, &mut signing_input)
        .map_err(|e| malformed(format!("Sig_structure: {e}")))?;
    Ok(Envelope {
        headers,
        payload,
        signing_input,
        signature,
        chain,
        timestamp,
    })
}
