//! What every TUF client shares, whichever flavour of TUF it reads: canonical JSON (the bytes
//! signatures cover), the threshold rule (distinct keys, counted by key material), expiry and the
//! version rule that refuses rollbacks. Notary v1 ([`crate::notary`]) is one flavour; what is
//! only notary's (key IDs over its key JSON, x509 root certificates bound to the GUN,
//! `targets/releases`, the file names its server uses) stays there.

pub mod canonical;
pub mod rules;

pub use rules::{Signature, SigningKey, check_expiry, check_threshold, check_version, fmt_time};
