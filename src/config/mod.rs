//! The configuration file: raw serde types that mirror the YAML exactly (`deny_unknown_fields`),
//! validated into domain types, with errors that name the file and the field at fault.
//!
//! ```yaml
//! trustRoots:
//!   - name: ml-platform
//!     notary: { url: https://notary.internal:4443, rootKeys: ["-----BEGIN PUBLIC KEY-----…"] }
//! registries:
//!   - host: registry.ai-team.internal
//!     credentials: { dockerConfigFile: /etc/signgate/registry/config.json }
//! policies:
//!   - name: pytorch-gpu-prod
//!     images: ["registry.ai-team.internal/ml/**"]
//!     trustRoot: ml-platform
//! defaultAction: deny
//! ```
//!
//! Choices the product contract leaves open:
//! - Relative paths (`caFile`, `passwordFile`, `dockerConfigFile`, `offlineDir`, `rootKeyFiles`)
//!   resolve against the configuration file's directory. Root keys are read here; CA bundles and
//!   credentials when the verifier is built from the configuration. Every read goes through
//!   [`Reads`], so a reload ([`crate::runtime::ConfigState`]) watches each file that went into the
//!   configuration in force (mounted Secrets rotate under a running server).
//! - Notary URLs must be `https`, without user info, query or fragment.
//! - Image globs are anchored, `*` stays within one `/`-separated segment, `**` spans zero or
//!   more whole segments, and the first segment must be a registry host (see
//!   [`crate::policy::Glob`]).
//! - Trust root and policy names are 1–128 of `A-Za-z0-9._-` (trust root names become metric
//!   labels; both appear in admission warnings and denials).
//! - `requireRoles: []` is refused (omit it for docker's rule); `namespaces` with both `names` and
//!   `matchLabels` needs both to match; an empty `names` or `matchLabels` is refused.
//! - Registry hosts are compared in the one canonical form of [`RegistryHost`] (case, `:443`,
//!   Docker Hub's aliases); a port with leading zeros is refused.
//! - The first error is reported, not all of them.
//!
//! Layout: [`raw`] mirrors the YAML, [`validate`] turns it into these types, [`error`] says where
//! and what is wrong, [`files`] reads what the configuration names; [`crate::runtime`] keeps the
//! one in force current.

mod error;
mod files;
mod raw;
mod validate;
mod yaml;

use std::path::{Path, PathBuf};

use url::Url;

use crate::notary::{PinnedKey, RoleRule};
use crate::policy::{Kind, Policies};
use crate::reference::RegistryHost;

pub use error::{At, ConfigError, ErrorKind};
pub use files::MAX_FILE;
pub(crate) use files::{FileSet, Reads};

/// Longest trust root or policy name: they appear in denial messages, trust root names in metric
/// labels.
const MAX_NAME: usize = 128;

/// A validated configuration: names are unique, every policy's trust root exists, every key parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    source: PathBuf,
    trust_roots: Vec<TrustRoot>,
    registries: Vec<Registry>,
    policies: Policies,
}

/// A publisher the cluster trusts, by name, and how its signatures are verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustRoot {
    /// `name`: unique among trust roots, 1–128 of `A-Za-z0-9._-`; policies refer to it, and it is
    /// a metric label.
    pub name: String,
    /// The signature format and its settings.
    pub kind: RootKind,
}

/// A trust root has exactly one kind: the signature format it verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootKind {
    /// `notary:` Docker Content Trust at a notary server, or from an offline bundle.
    Notary(NotaryRoot),
    /// `notation:` Notary Project signatures found as referrers of the image's digest.
    Notation(crate::notation::RootPolicy),
    /// `cosign:` cosign signatures, in the legacy `.sig` manifest or as Sigstore bundles among
    /// the digest's referrers, by public key or keyless identity.
    Cosign(crate::cosign::CosignRoot),
}

impl TrustRoot {
    /// The signature format.
    pub fn kind(&self) -> Kind {
        match &self.kind {
            RootKind::Notary(_) => Kind::Notary,
            RootKind::Notation(_) => Kind::Notation,
            RootKind::Cosign(_) => Kind::Cosign,
        }
    }

    /// The Notary v1 settings of a `notary:` trust root.
    pub fn notary(&self) -> Option<&NotaryRoot> {
        match &self.kind {
            RootKind::Notary(n) => Some(n),
            RootKind::Notation(_) | RootKind::Cosign(_) => None,
        }
    }
}

/// A notary server (or offline bundle) and the root keys pinned for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotaryRoot {
    /// `notary.url`: always `https`. `None`: each image's registry names its notary server
    /// (`registries[].notary`).
    pub notary_url: Option<Url>,
    /// `notary.caFile`, resolved against the configuration's directory; not read at load time.
    pub ca_file: Option<PathBuf>,
    /// `notary.rootKeys` then `notary.rootKeyFiles`, in order: never empty.
    pub root_keys: Vec<PinnedKey>,
    /// `notary.requireRoles`; empty means docker's rule.
    pub require_roles: Vec<String>,
    /// `notary.offlineDir`: an air-gapped bundle, `DIR/<GUN>/root.json`, …; not read at load time.
    pub offline_dir: Option<PathBuf>,
}

impl NotaryRoot {
    /// The rule that picks a tag's signer for this trust root.
    pub fn role_rule(&self) -> RoleRule {
        if self.require_roles.is_empty() {
            RoleRule::Docker
        } else {
            RoleRule::Require(self.require_roles.clone())
        }
    }
}

/// Settings for one registry `host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// Canonical, as image references name it.
    pub host: RegistryHost,
    /// `caFile`: extra CA certificates (PEM) for the registry's TLS, resolved against the
    /// configuration's directory; not read at load time. `None`: the system roots only.
    pub ca_file: Option<PathBuf>,
    /// `credentials`. `None`: anonymous pulls.
    pub credentials: Option<Credentials>,
    /// Default notary server for this registry's images, used by trust roots without `notary.url`.
    pub notary: Option<Url>,
}

/// How to authenticate to a registry: exactly one form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `{ secretName }`: a `kubernetes.io/dockerconfigjson` Secret in signgate's namespace.
    Secret {
        /// The Secret's name.
        name: String,
    },
    /// `{ username, passwordFile }`: the password is read from the file when used.
    Basic {
        /// The user name, never empty.
        username: String,
        /// The file holding the password, resolved against the configuration's directory.
        password_file: PathBuf,
    },
    /// `{ dockerConfigFile }`: a docker `config.json`.
    DockerConfig {
        /// The file, resolved against the configuration's directory.
        file: PathBuf,
    },
}

impl Config {
    /// Reads and validates the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_recorded(path, &Reads::new())
    }

    /// [`Config::load`], every file read recorded in `reads`.
    pub(crate) fn load_recorded(path: &Path, reads: &Reads) -> Result<Config, ConfigError> {
        let text = reads
            .file(path)
            .and_then(|b| {
                String::from_utf8(b).map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text")
                })
            })
            .map_err(|source| ConfigError::new(At::new(path, ""), ErrorKind::Read { source }))?;
        Config::parse_recorded(&text, path, reads)
    }

    /// Parses and validates `text`, the content of the file `origin`: errors name `origin`, and
    /// relative paths resolve against its directory. Root key files are read.
    pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        Config::parse_recorded(text, origin, &Reads::new())
    }

    /// [`Config::parse`], every file read recorded in `reads`.
    fn parse_recorded(text: &str, origin: &Path, reads: &Reads) -> Result<Config, ConfigError> {
        let options = serde_saphyr::options! { with_snippet: false };
        let raw: raw::RawConfig = serde_saphyr::from_str_with_options(text, options)
            .map_err(|e| ConfigError::from_yaml(e, text, origin))?;
        validate::Validator::new(origin, reads).config(raw)
    }

    /// The file this configuration came from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The trust roots in file order.
    pub fn trust_roots(&self) -> &[TrustRoot] {
        &self.trust_roots
    }

    /// The `registries` entries in file order, one per host.
    pub fn registries(&self) -> &[Registry] {
        &self.registries
    }

    /// The policies in file order (the first match wins) and `defaultAction`.
    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    /// The trust root named `name`, if any.
    pub fn trust_root(&self, name: &str) -> Option<&TrustRoot> {
        self.trust_roots.iter().find(|t| t.name == name)
    }

    /// The settings for a registry `host[:port]`, compared in canonical form ([`RegistryHost`]).
    pub fn registry(&self, host: &str) -> Option<&Registry> {
        let host = RegistryHost::parse(host).ok()?;
        self.registries.iter().find(|r| r.host == host)
    }
}
