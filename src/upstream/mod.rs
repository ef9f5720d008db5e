//! Network and file IO at the edge: the capped, token-aware HTTPS client ([`http`]), registries
//! (manifests and digests: [`registry`]), notary servers with their trust data cache
//! ([`notary`]), offline trust data bundles ([`offline`]) and namespace labels watched from the
//! Kubernetes API ([`namespaces`]). Everything here records into the [`crate::metrics::Metrics`]
//! it is given.

mod coalesce;
pub mod http;
pub mod lane;
pub mod namespaces;
pub mod notary;
pub mod offline;
pub mod registry;

pub use http::{BasicCredentials, FetchError};
pub use lane::{Lane, LaneRuntime};
pub use namespaces::{NamespaceLabels, NamespaceWatch};
pub use notary::{CacheSettings, NotaryClient, NotaryServer, TrustDataCache, TrustRootClient};
pub use offline::DirSource;
pub use registry::{Document, MAX_SIGNATURE_MANIFEST, RegistrySettings, Resolved, Resolver};
