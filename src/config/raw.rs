//! The YAML, field for field: unknown fields are errors (`deny_unknown_fields`).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::policy::{Action, Mode, Require};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawConfig {
    pub(super) trust_roots: Vec<RawTrustRoot>,
    #[serde(default)]
    pub(super) registries: Vec<RawRegistry>,
    pub(super) policies: Vec<RawPolicy>,
    #[serde(default)]
    pub(super) default_action: Option<Action>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawTrustRoot {
    pub(super) name: String,
    #[serde(default)]
    pub(super) notary: Option<RawNotary>,
    #[serde(default)]
    pub(super) notation: Option<RawNotation>,
    #[serde(default)]
    pub(super) cosign: Option<RawCosign>,
}

/// `cosign:`: named public keys and keyless identities, how many distinct signers must have
/// signed, which keys must, and the transparency log requirement.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawCosign {
    #[serde(default)]
    pub(super) keys: Vec<RawCosignKey>,
    #[serde(default)]
    pub(super) threshold: Option<usize>,
    #[serde(default)]
    pub(super) required: Option<Vec<String>>,
    #[serde(default)]
    pub(super) transparency_log: Option<String>,
    /// The Sigstore trusted root with the Rekor keys (key-based roots); keyless roots may give
    /// it under `keyless` instead.
    #[serde(default)]
    pub(super) trusted_root_file: Option<String>,
    #[serde(default)]
    pub(super) keyless: Option<RawKeyless>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawCosignKey {
    pub(super) name: String,
    /// PEM public key, inline (`key` is the older spelling).
    #[serde(default, alias = "key")]
    pub(super) public_key: Option<String>,
    #[serde(default, alias = "keyFile")]
    pub(super) public_key_file: Option<String>,
}

/// `cosign.keyless`: Fulcio certificates checked against a pinned trusted root.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawKeyless {
    #[serde(default)]
    pub(super) trusted_root_file: Option<String>,
    #[serde(default)]
    pub(super) identities: Vec<RawIdentity>,
}

/// One accepted keyless identity: the OIDC issuer and the certificate subject, each exact or an
/// anchored regular expression.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawIdentity {
    #[serde(default)]
    pub(super) issuer: Option<String>,
    #[serde(default)]
    pub(super) issuer_reg_exp: Option<String>,
    #[serde(default)]
    pub(super) subject: Option<String>,
    #[serde(default)]
    pub(super) subject_reg_exp: Option<String>,
}

/// `notation:`: Notation's trust policy vocabulary, written here or as an existing
/// `trustpolicy.json` with its trust store directory.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawNotation {
    #[serde(default)]
    pub(super) trust_stores: Option<RawTrustStores>,
    #[serde(default)]
    pub(super) trusted_identities: Option<Vec<String>>,
    #[serde(default)]
    pub(super) level: Option<String>,
    #[serde(default, rename = "override")]
    pub(super) overrides: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub(super) verify_timestamp: Option<String>,
    #[serde(default)]
    pub(super) trust_policy_file: Option<String>,
    #[serde(default)]
    pub(super) trust_store_dir: Option<String>,
    /// CRLs (inline PEM or files): revocation checked offline against them.
    #[serde(default)]
    pub(super) crls: Vec<String>,
}

/// PEM bundles by Notation store type: inline PEM, or file paths.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawTrustStores {
    #[serde(default)]
    pub(super) ca: Vec<String>,
    #[serde(default)]
    pub(super) signing_authority: Vec<String>,
    #[serde(default)]
    pub(super) tsa: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawNotary {
    #[serde(default)]
    pub(super) url: Option<String>,
    #[serde(default)]
    pub(super) ca_file: Option<String>,
    #[serde(default)]
    pub(super) root_keys: Vec<String>,
    #[serde(default)]
    pub(super) root_key_files: Vec<String>,
    #[serde(default)]
    pub(super) require_roles: Option<Vec<String>>,
    #[serde(default)]
    pub(super) offline_dir: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawRegistry {
    pub(super) host: String,
    #[serde(default)]
    pub(super) ca_file: Option<String>,
    #[serde(default)]
    pub(super) credentials: Option<RawCredentials>,
    #[serde(default)]
    pub(super) notary: Option<String>,
}

/// One struct for the three credential forms, so that a mix is reported as such rather than as
/// whatever an untagged enum would make of it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawCredentials {
    #[serde(default)]
    pub(super) secret_name: Option<String>,
    #[serde(default)]
    pub(super) username: Option<String>,
    #[serde(default)]
    pub(super) password_file: Option<String>,
    #[serde(default)]
    pub(super) docker_config_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawPolicy {
    pub(super) name: String,
    pub(super) images: Vec<String>,
    #[serde(default)]
    pub(super) namespaces: Option<RawNamespaces>,
    #[serde(default)]
    pub(super) trust_root: Option<String>,
    #[serde(default)]
    pub(super) trust_roots: Option<Vec<String>>,
    #[serde(default)]
    pub(super) require: Option<Require>,
    #[serde(default)]
    pub(super) action: Option<Action>,
    #[serde(default)]
    pub(super) mode: Option<Mode>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawNamespaces {
    #[serde(default)]
    pub(super) match_labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub(super) names: Option<Vec<String>>,
}
