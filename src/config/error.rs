//! Why a configuration was refused: where ([`At`]: file, line and column, field path) and what
//! ([`ErrorKind`]). Every message starts with the place.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::notary::PinError;
use crate::policy::GlobError;

use super::MAX_NAME;
use super::yaml::{yaml_message, yaml_path_at};

/// Where an error is: the file, the line and column when the YAML parser knows them, and the
/// field path (`trustRoots[1] (ml-platform): notary.rootKeys[0]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At {
    /// The configuration file (a file it names, such as a key file, appears in the message).
    pub file: PathBuf,
    /// 1-based line and column.
    pub line_column: Option<(u64, u64)>,
    /// Empty for the whole file.
    pub field: String,
}

impl At {
    pub(super) fn new(file: &Path, field: impl Into<String>) -> Box<At> {
        Box::new(At {
            file: file.to_path_buf(),
            line_column: None,
            field: field.into(),
        })
    }
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((l, c)) = self.line_column {
            write!(f, ":{l}:{c}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        Ok(())
    }
}

/// Why a configuration was refused: `<file>[:line:column][: field]: <what>`.
#[derive(Debug)]
pub struct ConfigError {
    at: Box<At>,
    kind: ErrorKind,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.kind)
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}

impl ConfigError {
    pub(super) fn new(at: Box<At>, kind: ErrorKind) -> ConfigError {
        ConfigError { at, kind }
    }

    /// Where the error is.
    pub fn at(&self) -> &At {
        &self.at
    }

    /// What is wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    pub(super) fn from_yaml(err: serde_saphyr::Error, text: &str, file: &Path) -> ConfigError {
        let location = err
            .location()
            .filter(|l| *l != serde_saphyr::Location::UNKNOWN);
        let at = Box::new(At {
            file: file.to_path_buf(),
            line_column: location.map(|l| (l.line(), l.column())),
            field: location
                .map(|l| yaml_path_at(text, l.line(), l.column()))
                .unwrap_or_default(),
        });
        match err.without_snippet() {
            serde_saphyr::Error::SerdeUnknownField {
                field, expected, ..
            } => ConfigError::new(
                at,
                ErrorKind::UnknownField {
                    field: field.clone(),
                    expected: expected.clone(),
                },
            ),
            _ => ConfigError::new(
                at,
                ErrorKind::Yaml {
                    source: Box::new(err),
                },
            ),
        }
    }
}

/// What is wrong (the message after the place).
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// The file could not be read.
    #[error("cannot read the configuration: {source}")]
    Read {
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed or does not have the expected shape (wrong type, missing field).
    #[error("{}", yaml_message(source))]
    Yaml {
        /// The parser's error; its location is in [`At`].
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// A field the configuration does not define (a typo, or a feature this version lacks).
    #[error("unknown field {field:?}; expected one of {}", expected.join(", "))]
    UnknownField {
        /// The field as written.
        field: String,
        /// The fields its parent does define.
        expected: Vec<&'static str>,
    },
    /// A trust root or policy name that is empty or has characters other than `A-Za-z0-9._-`.
    #[error("invalid name {name:?}: use 1 to {MAX_NAME} letters, digits, '.', '_' or '-'")]
    InvalidName {
        /// The name as written.
        name: String,
    },
    /// Two trust roots, or two policies, with one name.
    #[error("duplicate {what} name {name:?} (also used by {list}[{first}])")]
    DuplicateName {
        /// What is named: `trust root` or `policy`.
        what: &'static str,
        /// The list both are in: `trustRoots` or `policies`.
        list: &'static str,
        /// The name used twice.
        name: String,
        /// The 0-based index of the first entry with the name.
        first: usize,
    },
    /// Two registries entries for one host.
    #[error("duplicate registry host {host:?} (also used by registries[{first}])")]
    DuplicateRegistry {
        /// The host in its canonical form.
        host: String,
        /// The 0-based index of the first entry for the host.
        first: usize,
    },
    /// A policy's `trustRoot` names no trust root.
    #[error("no trust root named {name:?} in trustRoots")]
    UnknownTrustRoot {
        /// The trust root name the policy gives.
        name: String,
    },
    /// A trust root with none, or more than one, of `notary`, `notation` and `cosign`.
    #[error(
        "give exactly one of notary, notation or cosign; found {}",
        if found.is_empty() { "none".to_owned() } else { found.join(" and ") }
    )]
    TrustRootKind {
        /// The kinds given (`notary`, `notation`, `cosign`); empty when none is.
        found: Vec<&'static str>,
    },
    /// A `notation:` trust root that Notation's rules refuse, or whose trust policy or stores
    /// cannot be read.
    #[error("{detail}")]
    Notation {
        /// What Notation's rules refuse, or what could not be read, and where.
        detail: String,
    },
    /// A `cosign:` trust root that cannot be used as written (keys, threshold, required keys,
    /// transparency log).
    #[error("{detail}")]
    Cosign {
        /// What cannot be used, and why.
        detail: String,
    },
    /// A policy with both `trustRoot` and `trustRoots`.
    #[error("give trustRoot (one) or trustRoots (a list), not both")]
    BothTrustRootAndTrustRoots,
    /// `require` on a policy with one `trustRoot` or an `action`: it chooses among `trustRoots`.
    #[error("require (any or all) applies to trustRoots, a list of trust roots")]
    RequireWithOneRoot,
    /// A trust root named twice in one `trustRoots`.
    #[error("trust root {name:?} is listed twice")]
    DuplicateTrustRoot {
        /// The trust root listed twice.
        name: String,
    },
    /// A policy has both `trustRoot` and `action`.
    #[error("give either trustRoot or action, not both")]
    BothTrustRootAndAction,
    /// A policy has neither `trustRoot` nor `action`.
    #[error("give trustRoot (verify signatures) or action (allow or deny)")]
    NoTrustRootOrAction,
    /// `mode` on a policy with `action`: modes apply only to verification.
    #[error("mode applies only to policies with trustRoot, not to action")]
    ModeWithAction,
    /// A pinned root key that is not a usable PEM public key or certificate.
    #[error("{source}")]
    RootKey {
        /// Why the key cannot be pinned.
        #[source]
        source: PinError,
    },
    /// A `rootKeyFiles` entry that could not be read.
    #[error("cannot read {}: {source}", path.display())]
    RootKeyFile {
        /// The file, resolved against the configuration file's directory.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// A trust root with no notary server: no `notary.url`, no `offlineDir`, and no registry with a
    /// default `notary`.
    #[error(
        "give the notary server's url, or a default notary server for the registries its images come from (registries[].notary)"
    )]
    NoNotaryServer,
    /// A trust root without any root key: nothing could be trusted.
    #[error("a trust root needs at least one key in rootKeys or rootKeyFiles")]
    NoRootKeys,
    /// A URL that does not parse.
    #[error("{url:?} is not a URL: {source}")]
    InvalidUrl {
        /// The URL as written.
        url: String,
        /// Why it does not parse.
        #[source]
        source: url::ParseError,
    },
    /// A notary URL that is not `https://host[:port][/path]`.
    #[error("{url:?}: {reason}")]
    NotaryUrl {
        /// The URL as written.
        url: String,
        /// What is wrong with it (scheme, query, credentials…).
        reason: &'static str,
    },
    /// A `requireRoles` entry that is not `targets` or a delegation name, or a bad list.
    #[error("{reason}")]
    InvalidRole {
        /// What is wrong, naming the role.
        reason: String,
    },
    /// An image glob that cannot be used.
    #[error("invalid image glob {pattern:?}: {source}")]
    InvalidGlob {
        /// The glob as written.
        pattern: String,
        /// Why it cannot be used.
        #[source]
        source: GlobError,
    },
    /// A policy without image globs.
    #[error("a policy needs at least one image glob")]
    NoImages,
    /// A namespace selector with neither `names` nor `matchLabels`, or an empty one.
    #[error("{reason}")]
    EmptyNamespaceSelector {
        /// What is missing or empty, and what to write instead.
        reason: &'static str,
    },
    /// A namespace name, label key or label value Kubernetes would not accept.
    #[error("{value:?} is not a valid {what}")]
    InvalidSelector {
        /// What the value should be: `namespace name`, `label key` or `label value`.
        what: &'static str,
        /// The value as written.
        value: String,
    },
    /// A registry host that is not `host[:port]`.
    #[error("{host:?} is not a registry host[:port]: {reason}")]
    InvalidHost {
        /// The host as written.
        host: String,
        /// Why it is not a registry host.
        reason: crate::reference::HostError,
    },
    /// Credentials with no form or more than one of `{secretName}`, `{username, passwordFile}`,
    /// `{dockerConfigFile}`.
    #[error(
        "give exactly one of {{secretName}}, {{username, passwordFile}} or {{dockerConfigFile}}; found {}",
        if forms.is_empty() { "none".to_owned() } else { forms.join(" and ") }
    )]
    CredentialForms {
        /// The forms given (`secretName`, `username/passwordFile`, `dockerConfigFile`); empty when
        /// none is.
        forms: Vec<&'static str>,
    },
    /// `{username, passwordFile}` with one of the two missing.
    #[error("{missing} is required with {given}")]
    IncompleteCredentials {
        /// The field given: `username` or `passwordFile`.
        given: &'static str,
        /// The other one, missing.
        missing: &'static str,
    },
    /// A Secret name that is not a Kubernetes object name, or an empty username.
    #[error("{value:?} is not a valid {what}")]
    InvalidCredentialValue {
        /// What the value should be: `Secret name` or `username`.
        what: &'static str,
        /// The value as written.
        value: String,
    },
    /// An empty file path.
    #[error("a file path must not be empty")]
    EmptyPath,
}
