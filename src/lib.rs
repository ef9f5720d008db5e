//! signgate: admit only container images signed by a publisher the cluster trusts.
//!
//! One AdmissionReview flows through the modules in this order (the README's Layout has the
//! whole tree): [`server`] accepts the HTTPS connection, [`webhook`] parses and answers it with
//! [`admission`] (review in, images out, response back), [`verifier`] decides each image under
//! the [`policy`] of the [`config`] in force, asking [`upstream`] (registries, notary servers, the
//! Kubernetes API) for bytes that the pure scheme cores judge behind one seam ([`scheme`]):
//! [`notary`] (Notary v1, on [`tuf`]'s shared rules), [`notation`] (Notary Project) and
//! [`cosign`] (Sigstore), on [`pki`]'s keys and certificates, each answering in [`verdict`]'s
//! terms. [`metrics`] and [`logs`] record what happened.
// Every public item says what it is for (`cargo clippy -D warnings` turns a gap into an error).
#![warn(missing_docs)]
// Never panic on input: no unwrap, expect, panic or unchecked indexing outside tests (clippy.toml
// allows them in `#[cfg(test)]` code).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![warn(clippy::indexing_slicing)]

pub mod admission;
pub mod audit;
pub mod config;
pub mod cosign;
pub mod logs;
pub mod metrics;
pub mod notary;
pub mod notation;
mod oci;
pub mod pki;
pub mod policy;
pub mod reference;
pub mod runtime;
pub mod scheme;
pub mod server;
pub mod tuf;
pub mod upstream;
pub mod verdict;
pub mod verifier;
pub mod webhook;
