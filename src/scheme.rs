//! The one seam every signature scheme plugs into. A scheme's verification is a pure function,
//! [`Scheme::judge`]: a trust root, the documents the IO layer fetched ([`SignatureSource`]), the
//! image the signatures must be about ([`Subject`]), the clock and the scheme's caps in; who
//! signed ([`Verified`]) or why not ([`TrustError`]) out. The judge walks the documents itself
//! (which referrer, which manifest, which envelope), so the walk is written once and fuzzed with
//! the rest; the IO layer only answers names. A source that does not hold a document yet says so
//! ([`SignatureSource::pending`]): the judge stops before any expensive check, the verifier
//! fetches what was asked, and judges again (`verifier/root.rs`).

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::reference::{Digest, Reference};
use crate::verdict::{Reason, TrustError, Verified};

/// Documents by name, as an IO layer fetched them for one image under one trust root.
///
/// Names: Notary v1 metadata by notary's file names (`root.json`, `2.root.json`,
/// `targets/releases.json`, and `<role>.<sha256>.json` through [`SignatureSource::fetch_pinned`]);
/// documents stored in the image's registry by [`OciName`]. `Ok(None)`: the document does not
/// exist; `Err`: it could not be had (an upstream failure, a cap, or "not fetched yet").
pub trait SignatureSource {
    /// The document `name`, refused when larger than `cap` bytes.
    fn fetch(&self, name: &str, cap: usize) -> Result<Option<Vec<u8>>, TrustError>;

    /// The metadata of `role` whose sha256 its parent pins. A server source fetches it by hash
    /// (`<role>.<hex>.json`, what notary's client does); a directory by name.
    fn fetch_pinned(
        &self,
        role: &str,
        cap: usize,
        _sha256_hex: &str,
    ) -> Result<Option<Vec<u8>>, TrustError> {
        self.fetch(&format!("{role}.json"), cap)
    }

    /// Some document asked for is still being fetched: the judge stops before any signature
    /// check (its answer will not be used; it runs again with the document).
    fn pending(&self) -> bool {
        false
    }

    /// The time this judgement may take is spent: the judge gives up before the next check
    /// ([`budget_spent`]).
    fn spent(&self) -> bool {
        false
    }
}

/// Fixture bytes in memory, as they are: a document past its cap is handed over, so the judge's
/// own checks (a length its parent pins, a cap checked before parsing) are what refuses it.
impl SignatureSource for BTreeMap<String, Vec<u8>> {
    fn fetch(&self, name: &str, _cap: usize) -> Result<Option<Vec<u8>>, TrustError> {
        Ok(self.get(name).cloned())
    }
}

/// The document `name` from `source`, refused when it is larger than `cap` whatever the source
/// did: the cap holds before anything parses it.
pub fn read(
    source: &dyn SignatureSource,
    name: &str,
    cap: usize,
) -> Result<Option<Vec<u8>>, TrustError> {
    match source.fetch(name, cap)? {
        Some(b) if b.len() > cap => Err(TrustError::new(
            Reason::TooLarge,
            None,
            format!("{name} is {} bytes, over its {cap}-byte cap", b.len()),
        )),
        b => Ok(b),
    }
}

/// Largest signature document (a signature manifest, a referrers list) read from a registry.
pub const MAX_SIGNATURE_MANIFEST: usize = 256 * 1024;

/// The refusal of a judge that stopped because [`SignatureSource::pending`]: never an answer,
/// the verifier fetches what was asked and judges again.
pub fn pending(what: &str) -> TrustError {
    TrustError::new(
        Reason::MissingMetadata,
        None,
        format!("{what}: being fetched"),
    )
}

/// The refusal of a judge that gave up because [`SignatureSource::spent`]: a timeout, which a
/// retry may pass.
pub fn budget_spent(scheme: &str) -> TrustError {
    TrustError::new(
        Reason::Timeout,
        None,
        format!(
            "{scheme}: signature checks gave up (the verification budget of one image is spent)"
        ),
    )
}

/// A content descriptor: media type, digest, size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// The manifest's media type.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// What the signatures must be about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The image as the Pod names it.
    pub reference: Reference,
    /// The manifest the registry serves for it (what Notation and cosign signatures bind), or
    /// `None` when the scheme decides the digest itself (Notary v1: the trusted digest is then
    /// compared with the registry's by the verifier).
    pub manifest: Option<Descriptor>,
}

impl Subject {
    /// The manifest, for schemes whose signatures bind one.
    pub fn manifest(&self) -> Result<&Descriptor, TrustError> {
        self.manifest.as_ref().ok_or_else(|| {
            TrustError::new(
                Reason::Internal,
                None,
                format!("{}: no manifest digest to verify against", self.reference),
            )
        })
    }
}

/// The name of a document stored in the image's repository at its registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OciName {
    /// The referrers list of the subject's digest (the API, else the tag schema).
    Referrers,
    /// A manifest by tag or digest.
    Manifest(String),
    /// A blob by digest, of the size its descriptor declares.
    Blob(Digest, u64),
}

impl OciName {
    /// The name a [`SignatureSource`] answers to.
    pub fn name(&self) -> String {
        match self {
            OciName::Referrers => "referrers".to_owned(),
            OciName::Manifest(t) => format!("manifest {t}"),
            OciName::Blob(d, size) => format!("blob {d} {size}"),
        }
    }

    /// The name read back, `None` when it is not one.
    pub fn parse(name: &str) -> Option<OciName> {
        if name == "referrers" {
            return Some(OciName::Referrers);
        }
        if let Some(t) = name.strip_prefix("manifest ") {
            return Some(OciName::Manifest(t.to_owned()));
        }
        let (d, size) = name.strip_prefix("blob ")?.split_once(' ')?;
        Some(OciName::Blob(Digest::parse(d).ok()?, size.parse().ok()?))
    }
}

/// A signature scheme: how it judges one image under one trust root.
pub trait Scheme {
    /// The trust root as configured, put to work.
    type Root;
    /// The caps this scheme holds attacker-sized input to.
    type Limits;
    /// The scheme's name in messages and metrics.
    const NAME: &'static str;

    /// Who signed `subject` under `root`, from the documents in `source`, at `now`, within
    /// `limits`; or why not. Pure: no IO, no clock, no state.
    fn judge(
        root: &Self::Root,
        source: &dyn SignatureSource,
        subject: &Subject,
        now: OffsetDateTime,
        limits: &Self::Limits,
    ) -> Result<Verified, TrustError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_names_read_back() {
        let d = Digest::sha256_of(b"x");
        for n in [
            OciName::Referrers,
            OciName::Manifest("sha256-abc.sig".into()),
            OciName::Manifest(d.to_string()),
            OciName::Blob(d.clone(), 42),
        ] {
            assert_eq!(OciName::parse(&n.name()), Some(n));
        }
        assert_eq!(OciName::parse("blob nope 1"), None);
        assert_eq!(OciName::parse("root.json"), None);
    }
}
