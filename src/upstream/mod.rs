//! Network and file IO at the edge: the capped, token-aware HTTPS client ([`http`]), registries
//! (digests, manifests, referrers and blobs, where Notation and cosign signatures live:
//! [`registry`]), notary servers with their trust data cache ([`notary`]), offline trust data
//! bundles ([`offline`]), namespace labels watched from the Kubernetes API ([`namespaces`]), the
//! running Pods listed from it ([`pods`]), and
//! the runtime `serve` runs exchanges and signature checks on ([`lane`]). Everything here records
//! into the [`crate::metrics::Metrics`] it is given.

mod coalesce;
pub mod http;
pub mod lane;
pub mod namespaces;
pub mod notary;
pub mod offline;
pub mod pods;
pub mod registry;

pub use http::{BasicCredentials, FetchError};
pub use lane::{Lane, LaneRuntime};
pub use namespaces::{NamespaceLabels, NamespaceWatch};
pub use notary::{CacheSettings, NotaryClient, NotaryServer, TrustDataCache, TrustRootClient};
pub use offline::DirSource;
pub use registry::{Document, MAX_SIGNATURE_MANIFEST, RegistrySettings, Resolved, Resolver};
