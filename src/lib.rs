//! signgate: admit only container images signed by a trusted Docker Content Trust publisher.
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod admission;
pub mod config;
pub mod logs;
pub mod metrics;
pub mod namespaces;
pub mod notary;
pub mod observe;
pub mod offline;
pub mod online;
pub mod reference;
pub mod resolve;
pub mod server;
pub mod trust;
pub mod verifier;
pub mod webhook;
