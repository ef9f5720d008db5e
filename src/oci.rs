//! The OCI wire shapes signature formats read from a referrers index (the API's answer or the
//! tag-schema index) and from the manifests it lists: descriptors as they arrive, before each
//! format decides what it keeps.

use serde::Deserialize;

/// A descriptor as received (digest unparsed: each format reports its own error).
#[derive(Deserialize)]
pub(crate) struct RawDescriptor {
    #[serde(rename = "mediaType", default)]
    pub(crate) media_type: String,
    pub(crate) digest: String,
    pub(crate) size: u64,
    #[serde(rename = "artifactType", default)]
    pub(crate) artifact_type: Option<String>,
}

/// An image index: a referrers list.
#[derive(Deserialize)]
pub(crate) struct Index {
    #[serde(default)]
    pub(crate) manifests: Vec<RawDescriptor>,
}
