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

pub mod offline;
pub mod reference;
pub mod trust;
