//! Where Notation signatures live: OCI image manifests whose `subject` is the signed image and
//! whose one layer is the envelope, listed by the referrers API or the referrers tag schema
//! (notation-go `registry/repository.go`). Everything in an index is a candidate only: each
//! signature manifest is fetched by digest and must name the image as its subject.

use serde::Deserialize;

use super::envelope::{MEDIA_TYPE_COSE, MEDIA_TYPE_JWS};
use super::{Descriptor, NotationError, Reason};
use crate::oci::{Index, RawDescriptor};
use crate::reference::Digest;

/// The artifact type of a Notation signature manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.cncf.notary.signature";
/// The empty config of manifests with an `artifactType`.
const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";

#[derive(Deserialize)]
struct Manifest {
    #[serde(rename = "artifactType", default)]
    artifact_type: Option<String>,
    config: RawDescriptor,
    #[serde(default)]
    layers: Vec<RawDescriptor>,
    subject: Option<RawDescriptor>,
}

fn descriptor(d: &RawDescriptor) -> Result<Descriptor, NotationError> {
    Ok(Descriptor {
        media_type: d.media_type.clone(),
        digest: Digest::parse(&d.digest).map_err(|e| {
            NotationError::new(
                Reason::Malformed,
                format!("descriptor digest {:?}: {e}", d.digest),
            )
        })?,
        size: d.size,
    })
}

/// The Notation signature manifests an image index (a referrers list or the tag-schema index)
/// names, at most `cap`; entries of other artifact types are skipped. An index entry without an
/// `artifactType` is kept as a candidate (the manifest itself decides).
pub fn signature_candidates(index: &[u8], cap: usize) -> Result<Vec<Descriptor>, NotationError> {
    let index: Index = serde_json::from_slice(index)
        .map_err(|e| NotationError::new(Reason::Malformed, format!("referrers index: {e}")))?;
    let mut out = Vec::new();
    for m in &index.manifests {
        let notation = m
            .artifact_type
            .as_deref()
            .is_none_or(|t| t == ARTIFACT_TYPE);
        if notation && let Ok(d) = descriptor(m) {
            if out.len() == cap {
                break;
            }
            out.push(d);
        }
    }
    Ok(out)
}

/// The envelope descriptor of a Notation signature manifest whose subject must be `subject`'s
/// digest. Both flavours are accepted: `artifactType` with the empty config, and the legacy
/// config media type; exactly one layer, a JWS or COSE envelope. `None`: not a Notation
/// signature (another artifact in the same index).
pub fn envelope_descriptor(
    manifest: &[u8],
    subject: &Digest,
) -> Result<Option<Descriptor>, NotationError> {
    let m: Manifest = serde_json::from_slice(manifest)
        .map_err(|e| NotationError::new(Reason::Malformed, format!("signature manifest: {e}")))?;
    let is_notation = match m.artifact_type.as_deref() {
        Some(ARTIFACT_TYPE) => m.config.media_type == EMPTY_CONFIG,
        Some(_) => false,
        None => m.config.media_type == ARTIFACT_TYPE,
    };
    if !is_notation {
        return Ok(None);
    }
    let Some(s) = &m.subject else {
        return Err(NotationError::new(
            Reason::SubjectMismatch,
            "signature manifest has no subject",
        ));
    };
    if &descriptor(s)?.digest != subject {
        return Err(NotationError::new(
            Reason::SubjectMismatch,
            format!(
                "signature manifest's subject is {}, not {subject}",
                s.digest
            ),
        ));
    }
    let [layer] = m.layers.as_slice() else {
        return Err(NotationError::new(
            Reason::Malformed,
            format!(
                "a signature manifest has exactly one layer, this one {}",
                m.layers.len()
            ),
        ));
    };
    if layer.media_type != MEDIA_TYPE_JWS && layer.media_type != MEDIA_TYPE_COSE {
        return Err(NotationError::new(
            Reason::UnsupportedSignature,
            format!("envelope type {:?}", layer.media_type),
        ));
    }
    descriptor(layer).map(Some)
}
