//! The configuration file: raw serde types that mirror the YAML exactly (`deny_unknown_fields`),
//! validated into domain types, with errors that name the file and the field at fault.
//!
//! ```yaml
//! trustRoots:
//!   - name: ml-platform
//!     notary: { url: https://notary.internal:4443, rootKeys: ["-----BEGIN PUBLIC KEY-----…"] }
//! registries:
//!   - host: registry.ai-team.internal
//!     credentials: { secretName: harbor-pull }
//! policies:
//!   - name: pytorch-gpu-prod
//!     images: ["registry.ai-team.internal/ml/**"]
//!     trustRoot: ml-platform
//! defaultAction: deny
//! ```
//!
//! Choices the product contract leaves open:
//! - Relative paths (`caFile`, `passwordFile`, `dockerConfigFile`, `offlineDir`, `rootKeyFiles`)
//!   resolve against the configuration file's directory. Only root keys are read at load time;
//!   the other files are read, and their absence reported, by the code that uses them (mounted
//!   Secrets rotate under a running server).
//! - Notary URLs must be `https`, without user info, query or fragment.
//! - Image globs are anchored, `*` stays within one `/`-separated segment, `**` spans zero or
//!   more whole segments, and the first segment must be a registry host (see [`Glob`]).
//! - Trust root and policy names are 1–128 of `A-Za-z0-9._-` (they become metric labels and
//!   appear in admission warnings).
//! - `requireRoles: []` is refused (omit it for docker's rule); `namespaces` with both `names` and
//!   `matchLabels` needs both to match; an empty `names` or `matchLabels` is refused.
//! - Registry hosts are compared in the one canonical form of [`RegistryHost`] (case, `:443`,
//!   Docker Hub's aliases); a port with leading zeros is refused.
//! - The first error is reported, not all of them.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::Digest as _;
use url::Url;

use crate::reference::{Reference, RegistryHost};
use crate::trust::metadata::{TARGETS, is_delegation_name};
use crate::trust::{PinError, PinnedKey, RoleRule};

/// Longest trust root or policy name: they appear in metric labels and denial messages.
const MAX_NAME: usize = 128;

// ---------------------------------------------------------------------------------------------
// Raw types: the YAML, field for field.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConfig {
    trust_roots: Vec<RawTrustRoot>,
    #[serde(default)]
    registries: Vec<RawRegistry>,
    policies: Vec<RawPolicy>,
    #[serde(default)]
    default_action: Option<Action>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawTrustRoot {
    name: String,
    notary: RawNotary,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawNotary {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    ca_file: Option<String>,
    #[serde(default)]
    root_keys: Vec<String>,
    #[serde(default)]
    root_key_files: Vec<String>,
    #[serde(default)]
    require_roles: Option<Vec<String>>,
    #[serde(default)]
    offline_dir: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRegistry {
    host: String,
    #[serde(default)]
    ca_file: Option<String>,
    #[serde(default)]
    credentials: Option<RawCredentials>,
    #[serde(default)]
    notary: Option<String>,
}

/// One struct for the three credential forms, so that a mix is reported as such rather than as
/// whatever an untagged enum would make of it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawCredentials {
    #[serde(default)]
    secret_name: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password_file: Option<String>,
    #[serde(default)]
    docker_config_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPolicy {
    name: String,
    images: Vec<String>,
    #[serde(default)]
    namespaces: Option<RawNamespaces>,
    #[serde(default)]
    trust_root: Option<String>,
    #[serde(default)]
    action: Option<Action>,
    #[serde(default)]
    mode: Option<Mode>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawNamespaces {
    #[serde(default)]
    match_labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    names: Option<Vec<String>>,
}

// ---------------------------------------------------------------------------------------------
// Domain types.
// ---------------------------------------------------------------------------------------------

/// A validated configuration: names are unique, every policy's trust root exists, every key parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    source: PathBuf,
    trust_roots: Vec<TrustRoot>,
    registries: Vec<Registry>,
    policies: Vec<Policy>,
    default_action: Action,
}

/// A publisher the cluster trusts: a notary server and the root keys pinned for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustRoot {
    pub name: String,
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

impl TrustRoot {
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
    pub ca_file: Option<PathBuf>,
    pub credentials: Option<Credentials>,
    /// Default notary server for this registry's images, used by trust roots without `notary.url`.
    pub notary: Option<Url>,
}

/// How to authenticate to a registry: exactly one form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `{ secretName }`: a `kubernetes.io/dockerconfigjson` Secret in signgate's namespace.
    Secret { name: String },
    /// `{ username, passwordFile }`: the password is read from the file when used.
    Basic {
        username: String,
        password_file: PathBuf,
    },
    /// `{ dockerConfigFile }`: a docker `config.json`.
    DockerConfig { file: PathBuf },
}

/// What happens to an image: `enforce` denies, `warn` allows with a warning, `audit` allows and
/// records the would-be denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Warn,
    Audit,
}

impl Mode {
    /// The configuration spelling, also used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
            Mode::Audit => "audit",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fixed verdict: a policy's `action`, or `defaultAction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    #[default]
    Deny,
}

impl Action {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy: which images, in which namespaces, and what they need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    /// Never empty; an image matches when any glob does.
    pub images: Vec<Glob>,
    /// `None`: every namespace.
    pub namespaces: Option<NamespaceSelector>,
    pub target: PolicyTarget,
}

impl Policy {
    /// Whether this policy covers `image_name` (normalised `host/path`, no tag or digest) in
    /// namespace `namespace` carrying `labels`.
    pub fn matches(
        &self,
        image_name: &str,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> bool {
        self.images.iter().any(|g| g.matches(image_name))
            && self
                .namespaces
                .as_ref()
                .is_none_or(|s| s.matches(namespace, labels))
    }

    /// [`Policy::matches`] for a parsed reference (its host already canonical).
    pub fn matches_reference(
        &self,
        reference: &Reference,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> bool {
        self.images
            .iter()
            .any(|g| g.matches_name(reference.host(), reference.path()))
            && self
                .namespaces
                .as_ref()
                .is_none_or(|s| s.matches(namespace, labels))
    }
}

/// What a matching policy requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyTarget {
    /// `trustRoot` (+ `mode`): the image must be signed under this trust root.
    Verify { trust_root: String, mode: Mode },
    /// `action: allow`.
    Allow,
    /// `action: deny`.
    Deny,
}

impl From<Action> for PolicyTarget {
    fn from(a: Action) -> Self {
        match a {
            Action::Allow => PolicyTarget::Allow,
            Action::Deny => PolicyTarget::Deny,
        }
    }
}

/// `namespaces`: `names` and/or `matchLabels`; when both are given, both must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceSelector {
    /// Empty: any name.
    pub names: BTreeSet<String>,
    /// Every label must be present with this value. Empty: any labels.
    pub match_labels: BTreeMap<String, String>,
}

impl NamespaceSelector {
    pub fn matches(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        (self.names.is_empty() || self.names.contains(namespace))
            && self
                .match_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// The policy that applies to an image, or the default action when none matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyDecision<'a> {
    /// The first policy, in file order, whose images and namespaces match.
    Policy(&'a Policy),
    /// No policy matched: `defaultAction`.
    Default(Action),
}

static ALLOW: PolicyTarget = PolicyTarget::Allow;
static DENY: PolicyTarget = PolicyTarget::Deny;

impl<'a> PolicyDecision<'a> {
    pub fn policy(&self) -> Option<&'a Policy> {
        match self {
            PolicyDecision::Policy(p) => Some(p),
            PolicyDecision::Default(_) => None,
        }
    }

    /// The matching policy's name, for messages and logs.
    pub fn policy_name(&self) -> Option<&'a str> {
        self.policy().map(|p| p.name.as_str())
    }

    /// What is required of the image.
    pub fn target(&self) -> &'a PolicyTarget {
        match self {
            PolicyDecision::Policy(p) => &p.target,
            PolicyDecision::Default(Action::Allow) => &ALLOW,
            PolicyDecision::Default(Action::Deny) => &DENY,
        }
    }
}

/// Largest file the configuration names (itself, key files, CA bundles, docker configs).
pub const MAX_FILE: u64 = 4 * 1024 * 1024;

/// Reads a local file the configuration names, refusing one larger than [`MAX_FILE`] (a
/// mistaken path to a device or a huge file must not exhaust memory). Every file a configuration
/// puts to work is read here, so [`record_reads`] sees all of them.
pub fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let result = read_capped(path);
    READS.with(|r| {
        if let Some(reads) = r.borrow_mut().as_mut() {
            let seen = result.as_ref().ok().map(|b| sha2::Sha256::digest(b).into());
            reads.push((path.to_owned(), seen));
        }
    });
    result
}

fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut buf = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE + 1)
        .read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_FILE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_FILE} bytes"),
        ));
    }
    Ok(buf)
}

/// A file read and the sha256 of what was read (`None`: it could not be read).
type Read = (PathBuf, Option<[u8; 32]>);

thread_local! {
    /// The reads [`record_reads`] is collecting on this thread.
    static READS: std::cell::RefCell<Option<Vec<Read>>> = const { std::cell::RefCell::new(None) };
}

/// The files something read through [`read_file`], each with the sha256 of what was read (`None`:
/// it could not be read). A configuration's reload compares them with the files as they are now:
/// the configuration file, root key files, CA bundles, password and docker config files alike.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSet(Vec<Read>);

impl FileSet {
    /// Whether any file now differs from what was read (content, or readable or not). Follows
    /// symlinks, so a Secret or ConfigMap mount's `..data` swap is a change.
    pub fn changed(&self) -> bool {
        self.0.iter().any(|(path, seen)| {
            let now = read_capped(path)
                .ok()
                .map(|b| sha2::Sha256::digest(&b).into());
            now != *seen
        })
    }

    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.0.iter().map(|(p, _)| p.as_path())
    }
}

/// Runs `f` on this thread and returns what it read through [`read_file`].
pub fn record_reads<T>(f: impl FnOnce() -> T) -> (T, FileSet) {
    let outer = READS.with(|r| r.borrow_mut().replace(Vec::new()));
    let out = f();
    let reads = READS.with(|r| std::mem::replace(&mut *r.borrow_mut(), outer));
    let mut reads = reads.unwrap_or_default();
    // A file read twice counts once, as first read.
    let mut seen = BTreeSet::new();
    reads.retain(|(p, _)| seen.insert(p.clone()));
    (out, FileSet(reads))
}

impl Config {
    /// Reads and validates the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read_file(path)
            .and_then(|b| {
                String::from_utf8(b).map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text")
                })
            })
            .map_err(|source| ConfigError::Read {
                at: At::file(path),
                source,
            })?;
        Config::parse(&text, path)
    }

    /// Parses and validates `text`, the content of the file `origin`: errors name `origin`, and
    /// relative paths resolve against its directory. Root key files are read.
    pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let options = serde_saphyr::options! { with_snippet: false };
        let raw: RawConfig = serde_saphyr::from_str_with_options(text, options)
            .map_err(|e| ConfigError::from_yaml(e, text, origin))?;
        Validator {
            file: origin,
            base: origin.parent().unwrap_or(Path::new("")),
        }
        .config(raw)
    }

    /// The file this configuration came from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    pub fn trust_roots(&self) -> &[TrustRoot] {
        &self.trust_roots
    }

    pub fn registries(&self) -> &[Registry] {
        &self.registries
    }

    /// In file order: the first match wins.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    pub fn default_action(&self) -> Action {
        self.default_action
    }

    pub fn trust_root(&self, name: &str) -> Option<&TrustRoot> {
        self.trust_roots.iter().find(|t| t.name == name)
    }

    /// The settings for a registry `host[:port]`, compared in canonical form ([`RegistryHost`]).
    pub fn registry(&self, host: &str) -> Option<&Registry> {
        let host = RegistryHost::parse(host).ok()?;
        self.registries.iter().find(|r| r.host == host)
    }

    /// The policy for `image_name` (normalised `host/path`, without tag or digest, as
    /// [`Reference::gun`] gives it) in `namespace` with `labels`: the first match in file order,
    /// else `defaultAction`.
    pub fn policy_for(
        &self,
        image_name: &str,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> PolicyDecision<'_> {
        self.policies
            .iter()
            .find(|p| p.matches(image_name, namespace, labels))
            .map_or(
                PolicyDecision::Default(self.default_action),
                PolicyDecision::Policy,
            )
    }

    /// [`Config::policy_for`] for a parsed reference.
    pub fn policy_for_reference(
        &self,
        reference: &Reference,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> PolicyDecision<'_> {
        self.policies
            .iter()
            .find(|p| p.matches_reference(reference, namespace, labels))
            .map_or(
                PolicyDecision::Default(self.default_action),
                PolicyDecision::Policy,
            )
    }
}

// ---------------------------------------------------------------------------------------------
// Errors.
// ---------------------------------------------------------------------------------------------

/// Where an error is: the file, the line and column when the YAML parser knows them, and the
/// field path (`trustRoots[1] (ml-platform): notary.rootKeys[0]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At {
    pub file: PathBuf,
    /// 1-based line and column.
    pub line_column: Option<(u64, u64)>,
    /// Empty for the whole file.
    pub field: String,
}

impl At {
    fn file(file: &Path) -> Box<At> {
        Box::new(At {
            file: file.to_path_buf(),
            line_column: None,
            field: String::new(),
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

/// Why a configuration was refused. Every message starts with the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{at}: cannot read the configuration: {source}")]
    Read {
        at: Box<At>,
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed or does not have the expected shape (wrong type, missing field).
    #[error("{at}: {}", yaml_message(source))]
    Yaml {
        at: Box<At>,
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// A field the configuration does not define (a typo, or a feature this version lacks).
    #[error("{at}: unknown field {field:?}; expected one of {}", expected.join(", "))]
    UnknownField {
        at: Box<At>,
        field: String,
        expected: Vec<&'static str>,
    },
    /// A trust root or policy name that is empty or has characters other than `A-Za-z0-9._-`.
    #[error("{at}: invalid name {name:?}: use 1 to {MAX_NAME} letters, digits, '.', '_' or '-'")]
    InvalidName { at: Box<At>, name: String },
    /// Two trust roots, or two policies, with one name.
    #[error("{at}: duplicate {what} name {name:?} (also used by {list}[{first}])")]
    DuplicateName {
        at: Box<At>,
        what: &'static str,
        list: &'static str,
        name: String,
        first: usize,
    },
    /// Two registries entries for one host.
    #[error("{at}: duplicate registry host {host:?} (also used by registries[{first}])")]
    DuplicateRegistry {
        at: Box<At>,
        host: String,
        first: usize,
    },
    /// A policy's `trustRoot` names no trust root.
    #[error("{at}: no trust root named {name:?} in trustRoots")]
    UnknownTrustRoot { at: Box<At>, name: String },
    /// A policy has both `trustRoot` and `action`.
    #[error("{at}: give either trustRoot or action, not both")]
    BothTrustRootAndAction { at: Box<At> },
    /// A policy has neither `trustRoot` nor `action`.
    #[error("{at}: give trustRoot (verify signatures) or action (allow or deny)")]
    NoTrustRootOrAction { at: Box<At> },
    /// `mode` on a policy with `action`: modes apply only to verification.
    #[error("{at}: mode applies only to policies with trustRoot, not to action")]
    ModeWithAction { at: Box<At> },
    /// A pinned root key that is not a usable PEM public key or certificate.
    #[error("{at}: {source}")]
    RootKey {
        at: Box<At>,
        #[source]
        source: PinError,
    },
    /// A `rootKeyFiles` entry that could not be read.
    #[error("{at}: cannot read {}: {source}", path.display())]
    RootKeyFile {
        at: Box<At>,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A trust root with no notary server: no `notary.url`, no `offlineDir`, and no registry with a
    /// default `notary`.
    #[error(
        "{at}: give the notary server's url, or a default notary server for the registries its images come from (registries[].notary)"
    )]
    NoNotaryServer { at: Box<At> },
    /// A trust root without any root key: nothing could be trusted.
    #[error("{at}: a trust root needs at least one key in rootKeys or rootKeyFiles")]
    NoRootKeys { at: Box<At> },
    /// A URL that does not parse.
    #[error("{at}: {url:?} is not a URL: {source}")]
    InvalidUrl {
        at: Box<At>,
        url: String,
        #[source]
        source: url::ParseError,
    },
    /// A notary URL that is not `https://host[:port][/path]`.
    #[error("{at}: {url:?}: {reason}")]
    NotaryUrl {
        at: Box<At>,
        url: String,
        reason: &'static str,
    },
    /// A `requireRoles` entry that is not `targets` or a delegation name, or a bad list.
    #[error("{at}: {reason}")]
    InvalidRole { at: Box<At>, reason: String },
    /// An image glob that cannot be used.
    #[error("{at}: invalid image glob {pattern:?}: {source}")]
    InvalidGlob {
        at: Box<At>,
        pattern: String,
        #[source]
        source: GlobError,
    },
    /// A policy without image globs.
    #[error("{at}: a policy needs at least one image glob")]
    NoImages { at: Box<At> },
    /// A namespace selector with neither `names` nor `matchLabels`, or an empty one.
    #[error("{at}: {reason}")]
    EmptyNamespaceSelector { at: Box<At>, reason: &'static str },
    /// A namespace name, label key or label value Kubernetes would not accept.
    #[error("{at}: {value:?} is not a valid {what}")]
    InvalidSelector {
        at: Box<At>,
        what: &'static str,
        value: String,
    },
    /// A registry host that is not `host[:port]`.
    #[error("{at}: {host:?} is not a registry host[:port]: {reason}")]
    InvalidHost {
        at: Box<At>,
        host: String,
        reason: crate::reference::HostError,
    },
    /// Credentials with no form or more than one of `{secretName}`, `{username, passwordFile}`,
    /// `{dockerConfigFile}`.
    #[error(
        "{at}: give exactly one of {{secretName}}, {{username, passwordFile}} or {{dockerConfigFile}}; found {}",
        if forms.is_empty() { "none".to_owned() } else { forms.join(" and ") }
    )]
    CredentialForms {
        at: Box<At>,
        forms: Vec<&'static str>,
    },
    /// `{username, passwordFile}` with one of the two missing.
    #[error("{at}: {missing} is required with {given}")]
    IncompleteCredentials {
        at: Box<At>,
        given: &'static str,
        missing: &'static str,
    },
    /// A Secret name that is not a Kubernetes object name, or an empty username.
    #[error("{at}: {value:?} is not a valid {what}")]
    InvalidCredentialValue {
        at: Box<At>,
        what: &'static str,
        value: String,
    },
    /// An empty file path.
    #[error("{at}: a file path must not be empty")]
    EmptyPath { at: Box<At> },
}

impl ConfigError {
    /// Where the error is.
    pub fn at(&self) -> &At {
        match self {
            ConfigError::Read { at, .. }
            | ConfigError::Yaml { at, .. }
            | ConfigError::UnknownField { at, .. }
            | ConfigError::InvalidName { at, .. }
            | ConfigError::DuplicateName { at, .. }
            | ConfigError::DuplicateRegistry { at, .. }
            | ConfigError::UnknownTrustRoot { at, .. }
            | ConfigError::BothTrustRootAndAction { at }
            | ConfigError::NoTrustRootOrAction { at }
            | ConfigError::ModeWithAction { at }
            | ConfigError::RootKey { at, .. }
            | ConfigError::RootKeyFile { at, .. }
            | ConfigError::NoRootKeys { at }
            | ConfigError::NoNotaryServer { at }
            | ConfigError::InvalidUrl { at, .. }
            | ConfigError::NotaryUrl { at, .. }
            | ConfigError::InvalidRole { at, .. }
            | ConfigError::InvalidGlob { at, .. }
            | ConfigError::NoImages { at }
            | ConfigError::EmptyNamespaceSelector { at, .. }
            | ConfigError::InvalidSelector { at, .. }
            | ConfigError::InvalidHost { at, .. }
            | ConfigError::CredentialForms { at, .. }
            | ConfigError::IncompleteCredentials { at, .. }
            | ConfigError::InvalidCredentialValue { at, .. }
            | ConfigError::EmptyPath { at } => at,
        }
    }

    fn from_yaml(err: serde_saphyr::Error, text: &str, file: &Path) -> ConfigError {
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
            } => ConfigError::UnknownField {
                at,
                field: field.clone(),
                expected: expected.clone(),
            },
            _ => ConfigError::Yaml {
                at,
                source: Box::new(err),
            },
        }
    }
}

/// serde-saphyr's user-facing wording, without its location suffix (the [`At`] prefix has it).
fn yaml_message(err: &serde_saphyr::Error) -> String {
    struct NoLocation;
    impl serde_saphyr::Localizer for NoLocation {
        fn attach_location<'a>(
            &self,
            base: Cow<'a, str>,
            _loc: serde_saphyr::Location,
        ) -> Cow<'a, str> {
            base
        }
    }
    struct Plain;
    impl serde_saphyr::MessageFormatter for Plain {
        fn localizer(&self) -> &dyn serde_saphyr::Localizer {
            &NoLocation
        }
        fn format_message<'a>(&self, err: &'a serde_saphyr::Error) -> Cow<'a, str> {
            serde_saphyr::UserMessageFormatter.format_message(err)
        }
    }
    err.render_with_options(serde_saphyr::render_options! {
        formatter: &Plain,
        snippets: serde_saphyr::SnippetMode::Off,
    })
}

/// The field path of the YAML node at `line`:`column` (1-based), as `a.b[2].c`: the last node
/// that starts at or before that position. A mapping key stands for its mapping, so an unknown
/// field is reported at the mapping that holds it (the message names the field).
fn yaml_path_at(text: &str, line: u64, column: u64) -> String {
    use serde_saphyr::granit_parser::{Event, Parser};

    #[derive(Clone)]
    enum Seg {
        Key(String),
        Index(usize),
    }
    enum Frame {
        Map { key: String, want_key: bool },
        Seq { next: usize },
    }
    /// A node (scalar, alias or finished collection) completed its slot in `top`.
    fn advance(top: Option<&mut Frame>, key: Option<String>) {
        match top {
            Some(Frame::Map { key: k, want_key }) if *want_key => {
                *k = key.unwrap_or_else(|| "?".to_owned());
                *want_key = false;
            }
            Some(Frame::Map { want_key, .. }) => *want_key = true,
            Some(Frame::Seq { next }) => *next += 1,
            None => {}
        }
    }
    /// A collection used as a mapping key has no name of its own.
    fn complex_key_or(slot: Option<Seg>, is_key: bool) -> Option<Seg> {
        if is_key {
            Some(Seg::Key("?".to_owned()))
        } else {
            slot
        }
    }
    fn render(path: &[Option<Seg>]) -> String {
        let mut s = String::new();
        for seg in path.iter().flatten() {
            match seg {
                Seg::Key(k) if s.is_empty() => s.push_str(k),
                Seg::Key(k) => {
                    s.push('.');
                    s.push_str(k);
                }
                Seg::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }

    let target = (
        usize::try_from(line).unwrap_or(usize::MAX),
        usize::try_from(column.saturating_sub(1)).unwrap_or(usize::MAX),
    );
    let mut frames: Vec<Frame> = Vec::new();
    // One entry per open collection: its slot in its parent (`None` for the document's root).
    let mut path: Vec<Option<Seg>> = Vec::new();
    let mut best: Option<((usize, usize), String)> = None;
    let mut parser = Parser::new_from_str(text);
    while let Some(Ok((event, span))) = parser.next_event() {
        let pos = (span.start.line(), span.start.col());
        let is_node = matches!(
            event,
            Event::Scalar(..)
                | Event::Alias(_)
                | Event::SequenceStart(..)
                | Event::MappingStart(..)
        );
        if !is_node {
            if matches!(event, Event::SequenceEnd | Event::MappingEnd) {
                frames.pop();
                path.pop();
                advance(frames.last_mut(), None);
            }
            continue;
        }
        if pos > target {
            break;
        }
        let (slot, is_key) = match frames.last() {
            Some(Frame::Map { want_key: true, .. }) => (None, true),
            Some(Frame::Map { key, .. }) => (Some(Seg::Key(key.clone())), false),
            Some(Frame::Seq { next }) => (Some(Seg::Index(*next)), false),
            None => (None, false),
        };
        // The first node at a position wins: a mapping and its first key start together.
        if best.as_ref().is_none_or(|(p, _)| pos > *p) {
            let mut here = path.clone();
            here.push(slot.clone());
            best = Some((pos, render(&here)));
        }
        match event {
            Event::Scalar(value, ..) => {
                advance(frames.last_mut(), is_key.then(|| value.into_owned()));
            }
            Event::SequenceStart(..) => {
                path.push(complex_key_or(slot, is_key));
                frames.push(Frame::Seq { next: 0 });
            }
            Event::MappingStart(..) => {
                path.push(complex_key_or(slot, is_key));
                frames.push(Frame::Map {
                    key: String::new(),
                    want_key: true,
                });
            }
            _ => advance(frames.last_mut(), None),
        }
    }
    best.map(|(_, p)| p).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Validation.
// ---------------------------------------------------------------------------------------------

struct Validator<'a> {
    file: &'a Path,
    base: &'a Path,
}

impl Validator<'_> {
    fn at(&self, field: impl Into<String>) -> Box<At> {
        Box::new(At {
            file: self.file.to_path_buf(),
            line_column: None,
            field: field.into(),
        })
    }

    fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let mut trust_roots: Vec<TrustRoot> = Vec::with_capacity(raw.trust_roots.len());
        for (i, t) in raw.trust_roots.into_iter().enumerate() {
            let item = format!("trustRoots[{i}]");
            self.name(&item, &t.name)?;
            let item = format!("{item} ({})", t.name);
            if let Some(first) = trust_roots.iter().position(|o| o.name == t.name) {
                return Err(ConfigError::DuplicateName {
                    at: self.at(format!("{item}: name")),
                    what: "trust root",
                    list: "trustRoots",
                    name: t.name,
                    first,
                });
            }
            trust_roots.push(self.trust_root(&item, t)?);
        }

        let mut registries: Vec<Registry> = Vec::with_capacity(raw.registries.len());
        for (i, r) in raw.registries.into_iter().enumerate() {
            let item = format!("registries[{i}]");
            let host = RegistryHost::parse(&r.host).map_err(|reason| ConfigError::InvalidHost {
                at: self.at(format!("{item}: host")),
                host: r.host.clone(),
                reason,
            })?;
            let item = format!("{item} ({host})");
            if let Some(first) = registries.iter().position(|o| o.host == host) {
                return Err(ConfigError::DuplicateRegistry {
                    at: self.at(format!("{item}: host")),
                    host: host.to_string(),
                    first,
                });
            }
            registries.push(Registry {
                ca_file: self.path(&format!("{item}: caFile"), r.ca_file)?,
                credentials: match r.credentials {
                    Some(c) => Some(self.credentials(&format!("{item}: credentials"), c)?),
                    None => None,
                },
                notary: match r.notary {
                    Some(u) => Some(self.notary_url(&format!("{item}: notary"), &u)?),
                    None => None,
                },
                host,
            });
        }

        if !registries.iter().any(|r| r.notary.is_some())
            && let Some((i, t)) = trust_roots
                .iter()
                .enumerate()
                .find(|(_, t)| t.notary_url.is_none() && t.offline_dir.is_none())
        {
            return Err(ConfigError::NoNotaryServer {
                at: self.at(format!("trustRoots[{i}] ({}): notary.url", t.name)),
            });
        }

        let mut policies: Vec<Policy> = Vec::with_capacity(raw.policies.len());
        for (i, p) in raw.policies.into_iter().enumerate() {
            let item = format!("policies[{i}]");
            self.name(&item, &p.name)?;
            let item = format!("{item} ({})", p.name);
            if let Some(first) = policies.iter().position(|o| o.name == p.name) {
                return Err(ConfigError::DuplicateName {
                    at: self.at(format!("{item}: name")),
                    what: "policy",
                    list: "policies",
                    name: p.name,
                    first,
                });
            }
            policies.push(self.policy(&item, p, &trust_roots)?);
        }

        Ok(Config {
            source: self.file.to_path_buf(),
            trust_roots,
            registries,
            policies,
            default_action: raw.default_action.unwrap_or_default(),
        })
    }

    fn name(&self, item: &str, name: &str) -> Result<(), ConfigError> {
        let ok = !name.is_empty()
            && name.len() <= MAX_NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(())
        } else {
            Err(ConfigError::InvalidName {
                at: self.at(format!("{item}: name")),
                name: name.to_owned(),
            })
        }
    }

    fn trust_root(&self, item: &str, t: RawTrustRoot) -> Result<TrustRoot, ConfigError> {
        let n = t.notary;
        let notary_url = match &n.url {
            Some(u) => Some(self.notary_url(&format!("{item}: notary.url"), u)?),
            None => None,
        };

        let mut root_keys = Vec::new();
        for (i, pem) in n.root_keys.iter().enumerate() {
            let keys =
                PinnedKey::from_pem(pem.as_bytes()).map_err(|source| ConfigError::RootKey {
                    at: self.at(format!("{item}: notary.rootKeys[{i}]")),
                    source,
                })?;
            root_keys.extend(keys);
        }
        for (i, file) in n.root_key_files.into_iter().enumerate() {
            let field = format!("{item}: notary.rootKeyFiles[{i}]");
            let Some(path) = self.path(&field, Some(file))? else {
                continue;
            };
            let pem = read_file(&path).map_err(|source| ConfigError::RootKeyFile {
                at: self.at(field.clone()),
                path: path.clone(),
                source,
            })?;
            let keys = PinnedKey::from_pem(&pem).map_err(|source| ConfigError::RootKey {
                at: self.at(format!("{field} ({})", path.display())),
                source,
            })?;
            root_keys.extend(keys);
        }
        if root_keys.is_empty() {
            return Err(ConfigError::NoRootKeys {
                at: self.at(format!("{item}: notary.rootKeys")),
            });
        }

        let require_roles = match n.require_roles {
            None => Vec::new(),
            Some(roles) => self.roles(&format!("{item}: notary.requireRoles"), roles)?,
        };

        Ok(TrustRoot {
            name: t.name,
            notary_url,
            ca_file: self.path(&format!("{item}: notary.caFile"), n.ca_file)?,
            root_keys,
            require_roles,
            offline_dir: self.path(&format!("{item}: notary.offlineDir"), n.offline_dir)?,
        })
    }

    fn roles(&self, field: &str, roles: Vec<String>) -> Result<Vec<String>, ConfigError> {
        if roles.is_empty() {
            return Err(ConfigError::InvalidRole {
                at: self.at(field),
                reason: "the list is empty; omit requireRoles for docker's rule (targets/releases, else targets)".to_owned(),
            });
        }
        let mut seen = BTreeSet::new();
        for (i, role) in roles.iter().enumerate() {
            if role != TARGETS && !is_delegation_name(role) {
                return Err(ConfigError::InvalidRole {
                    at: self.at(format!("{field}[{i}]")),
                    reason: format!(
                        "{role:?} is not \"targets\" or a delegation name (\"targets/<name>\", lower-case letters, digits, '-', '_', '/')"
                    ),
                });
            }
            if !seen.insert(role.as_str()) {
                return Err(ConfigError::InvalidRole {
                    at: self.at(format!("{field}[{i}]")),
                    reason: format!("{role:?} is listed twice"),
                });
            }
        }
        Ok(roles)
    }

    fn notary_url(&self, field: &str, value: &str) -> Result<Url, ConfigError> {
        let url = Url::parse(value).map_err(|source| ConfigError::InvalidUrl {
            at: self.at(field),
            url: value.to_owned(),
            source,
        })?;
        let reason = if url.scheme() != "https" {
            Some("the notary server must be reached over https")
        } else if !url.username().is_empty() || url.password().is_some() {
            Some("credentials do not belong in the URL")
        } else if url.query().is_some() || url.fragment().is_some() {
            Some("a notary URL has no query or fragment")
        } else if url.host_str().is_none_or(str::is_empty) {
            Some("the URL has no host")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(ConfigError::NotaryUrl {
                at: self.at(field),
                url: value.to_owned(),
                reason,
            }),
            None => Ok(url),
        }
    }

    /// An optional path, resolved against the configuration's directory.
    fn path(&self, field: &str, value: Option<String>) -> Result<Option<PathBuf>, ConfigError> {
        match value {
            None => Ok(None),
            Some(v) if v.is_empty() => Err(ConfigError::EmptyPath { at: self.at(field) }),
            Some(v) => Ok(Some(self.base.join(v))),
        }
    }

    fn credentials(&self, field: &str, c: RawCredentials) -> Result<Credentials, ConfigError> {
        let mut forms = Vec::new();
        if c.secret_name.is_some() {
            forms.push("secretName");
        }
        if c.username.is_some() || c.password_file.is_some() {
            forms.push("username/passwordFile");
        }
        if c.docker_config_file.is_some() {
            forms.push("dockerConfigFile");
        }
        if forms.len() != 1 {
            return Err(ConfigError::CredentialForms {
                at: self.at(field),
                forms,
            });
        }
        if let Some(name) = c.secret_name {
            if !is_dns_subdomain(&name) {
                return Err(ConfigError::InvalidCredentialValue {
                    at: self.at(format!("{field}.secretName")),
                    what: "Secret name",
                    value: name,
                });
            }
            return Ok(Credentials::Secret { name });
        }
        if let Some(file) = c.docker_config_file {
            let file = self.path(&format!("{field}.dockerConfigFile"), Some(file))?;
            return Ok(Credentials::DockerConfig {
                file: file.unwrap_or_default(),
            });
        }
        match (c.username, c.password_file) {
            (Some(username), Some(password_file)) => {
                if username.is_empty() || username.chars().any(char::is_control) {
                    return Err(ConfigError::InvalidCredentialValue {
                        at: self.at(format!("{field}.username")),
                        what: "username",
                        value: username,
                    });
                }
                let password_file = self
                    .path(&format!("{field}.passwordFile"), Some(password_file))?
                    .unwrap_or_default();
                Ok(Credentials::Basic {
                    username,
                    password_file,
                })
            }
            (Some(_), None) => Err(ConfigError::IncompleteCredentials {
                at: self.at(field),
                given: "username",
                missing: "passwordFile",
            }),
            _ => Err(ConfigError::IncompleteCredentials {
                at: self.at(field),
                given: "passwordFile",
                missing: "username",
            }),
        }
    }

    fn policy(
        &self,
        item: &str,
        p: RawPolicy,
        trust_roots: &[TrustRoot],
    ) -> Result<Policy, ConfigError> {
        if p.images.is_empty() {
            return Err(ConfigError::NoImages {
                at: self.at(format!("{item}: images")),
            });
        }
        let mut images = Vec::with_capacity(p.images.len());
        for (i, pattern) in p.images.into_iter().enumerate() {
            let glob = Glob::parse(&pattern).map_err(|source| ConfigError::InvalidGlob {
                at: self.at(format!("{item}: images[{i}]")),
                pattern: pattern.clone(),
                source,
            })?;
            images.push(glob);
        }
        let namespaces = match p.namespaces {
            Some(ns) => Some(self.namespaces(&format!("{item}: namespaces"), ns)?),
            None => None,
        };
        let target = match (p.trust_root, p.action, p.mode) {
            (Some(_), Some(_), _) => {
                return Err(ConfigError::BothTrustRootAndAction {
                    at: self.at(format!("{item}: trustRoot, action")),
                });
            }
            (None, None, _) => {
                return Err(ConfigError::NoTrustRootOrAction { at: self.at(item) });
            }
            (None, Some(_), Some(_)) => {
                return Err(ConfigError::ModeWithAction {
                    at: self.at(format!("{item}: mode")),
                });
            }
            (None, Some(action), None) => action.into(),
            (Some(name), None, mode) => {
                if !trust_roots.iter().any(|t| t.name == name) {
                    return Err(ConfigError::UnknownTrustRoot {
                        at: self.at(format!("{item}: trustRoot")),
                        name,
                    });
                }
                PolicyTarget::Verify {
                    trust_root: name,
                    mode: mode.unwrap_or_default(),
                }
            }
        };
        Ok(Policy {
            name: p.name,
            images,
            namespaces,
            target,
        })
    }

    fn namespaces(&self, field: &str, ns: RawNamespaces) -> Result<NamespaceSelector, ConfigError> {
        let empty = |reason| ConfigError::EmptyNamespaceSelector {
            at: self.at(field),
            reason,
        };
        let (names, labels) = match (ns.names, ns.match_labels) {
            (None, None) => {
                return Err(empty(
                    "give names and/or matchLabels, or omit namespaces to match every namespace",
                ));
            }
            (Some(n), _) if n.is_empty() => {
                return Err(empty("names is empty: it would match no namespace"));
            }
            (_, Some(l)) if l.is_empty() => {
                return Err(empty("matchLabels is empty; omit it to match any labels"));
            }
            (n, l) => (n.unwrap_or_default(), l.unwrap_or_default()),
        };
        for (i, name) in names.iter().enumerate() {
            if !is_dns_label(name) {
                return Err(ConfigError::InvalidSelector {
                    at: self.at(format!("{field}.names[{i}]")),
                    what: "namespace name",
                    value: name.clone(),
                });
            }
        }
        for (k, v) in &labels {
            if !is_label_key(k) {
                return Err(ConfigError::InvalidSelector {
                    at: self.at(format!("{field}.matchLabels")),
                    what: "label key",
                    value: k.clone(),
                });
            }
            if !(v.is_empty() || is_label_name(v)) {
                return Err(ConfigError::InvalidSelector {
                    at: self.at(format!("{field}.matchLabels.{k}")),
                    what: "label value",
                    value: v.clone(),
                });
            }
        }
        Ok(NamespaceSelector {
            names: names.into_iter().collect(),
            match_labels: labels,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Names Kubernetes and registries accept.
// ---------------------------------------------------------------------------------------------

/// RFC 1123 label: a namespace name.
fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// RFC 1123 subdomain: most object names (Secrets) and label key prefixes.
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b.first().is_some_and(u8::is_ascii_alphanumeric)
                && b.last().is_some_and(u8::is_ascii_alphanumeric)
        })
}

/// A label name or value: `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63 characters.
fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// A label key: `[prefix/]name`, the prefix a DNS subdomain.
fn is_label_key(s: &str) -> bool {
    match s.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_label_name(name),
        None => is_label_name(s),
    }
}

// ---------------------------------------------------------------------------------------------
// Image globs.
// ---------------------------------------------------------------------------------------------

/// An anchored image-name glob, matched against normalised names `host/path` (no tag, no digest):
/// - `*` matches any characters within one `/`-separated segment;
/// - `**`, a whole segment, matches zero or more whole segments
///   (`reg.io/ml/**` matches `reg.io/ml`, `reg.io/ml/x` and `reg.io/ml/x/y`, not `reg.io/mlx`);
/// - no other metacharacters (`?`, `[`, `{` are refused);
/// - the first segment is the registry host (`docker.io` for Docker Hub). It may use `*`
///   (`*.ai-team.internal`, or `*/**` for every image) but not `**`.
///
/// The host is compared in [`RegistryHost`]'s canonical form on both sides (lower case, no `:443`,
/// Docker Hub's aliases as `docker.io`), so that an image cannot slip past a policy by spelling its
/// registry differently. The path is case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    host: String,
    path: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `**`
    Any,
    /// Literal text with `*` wildcards.
    Pattern(String),
}

/// Why an image glob was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    /// No pattern at all.
    #[error("the pattern is empty")]
    Empty,
    /// No `/`: a glob names a registry host and a repository path.
    #[error(
        "a glob names a registry host and a repository path, e.g. \"docker.io/library/*\" or \"*/**\" for every image"
    )]
    NoHost,
    /// `a//b`, a leading or a trailing `/`.
    #[error("empty path segment (\"//\", or a leading or trailing '/')")]
    EmptySegment,
    /// A metacharacter signgate does not support.
    #[error("{0:?} is not supported: only * (within a segment) and ** (whole segments) are")]
    Metachar(char),
    /// A character no image name contains at that place.
    #[error("{0:?} cannot appear in an image name's {1}")]
    InvalidChar(char, &'static str),
    /// A tag or digest: globs match names only.
    #[error("globs match image names without tag or digest")]
    TagOrDigest,
    /// `**` mixed with other characters in a segment.
    #[error("** must be a whole path segment")]
    PartialDoubleStar,
    /// `**` as the registry host.
    #[error("the first segment is the registry host: use * (one host), not **")]
    DoubleStarHost,
    /// A wildcard host with the default port, which names are compared without.
    #[error("omit the default port :443 from a wildcard registry host")]
    WildcardDefaultPort,
    /// The first segment is not a registry host: docker would read it as a Docker Hub path.
    #[error(
        "{0:?} is not a registry host (it has no '.' or ':' and is not localhost); Docker Hub images are named docker.io/…"
    )]
    NotAHost(String),
}

impl Glob {
    pub fn parse(pattern: &str) -> Result<Glob, GlobError> {
        if pattern.is_empty() {
            return Err(GlobError::Empty);
        }
        let (host, rest) = pattern.split_once('/').ok_or(GlobError::NoHost)?;
        if host.is_empty() || rest.is_empty() || rest.split('/').any(str::is_empty) {
            return Err(GlobError::EmptySegment);
        }
        for c in pattern.chars() {
            if matches!(c, '?' | '[' | ']' | '{' | '}' | '!' | '\\') {
                return Err(GlobError::Metachar(c));
            }
            if c == '@' {
                return Err(GlobError::TagOrDigest);
            }
        }

        if host == "**" {
            return Err(GlobError::DoubleStarHost);
        }
        if host.contains("**") {
            return Err(GlobError::PartialDoubleStar);
        }
        if let Some(c) = host
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '*')))
        {
            return Err(GlobError::InvalidChar(c, "registry host"));
        }
        let host = if host.contains('*') {
            // Names are canonical: no `:443`, no leading zeros. A literal port in a wildcard host
            // must be written that way too, or it would never match.
            if let Some((_, port)) = host.rsplit_once(':')
                && !port.contains('*')
            {
                if port == "443" {
                    return Err(GlobError::WildcardDefaultPort);
                }
                if crate::reference::parse_port(port).is_err() {
                    return Err(GlobError::NotAHost(host.to_owned()));
                }
            }
            host.to_ascii_lowercase()
        } else {
            let looks_like_host = host.contains(['.', ':']) || host == "localhost";
            match RegistryHost::parse(host) {
                Ok(h) if looks_like_host => h.as_str().to_owned(),
                _ => return Err(GlobError::NotAHost(host.to_owned())),
            }
        };

        let mut path = Vec::new();
        for seg in rest.split('/') {
            if seg == "**" {
                path.push(Segment::Any);
                continue;
            }
            if seg.contains("**") {
                return Err(GlobError::PartialDoubleStar);
            }
            if seg.contains(':') {
                return Err(GlobError::TagOrDigest);
            }
            if let Some(c) = seg.chars().find(|c| {
                !(c.is_ascii_lowercase()
                    || c.is_ascii_digit()
                    || matches!(c, '.' | '_' | '-' | '*'))
            }) {
                return Err(GlobError::InvalidChar(
                    c,
                    "repository path (lower-case letters, digits, '.', '_', '-')",
                ));
            }
            path.push(Segment::Pattern(seg.to_owned()));
        }
        Ok(Glob {
            pattern: pattern.to_owned(),
            host,
            path,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether `image_name` (`host/path`, no tag or digest) matches, whole. The host is read
    /// as [`RegistryHost`] writes it; an invalid one matches nothing.
    pub fn matches(&self, image_name: &str) -> bool {
        let Some((host, rest)) = image_name.split_once('/') else {
            return false;
        };
        RegistryHost::parse(host).is_ok_and(|h| self.matches_name(&h, rest))
    }

    /// Whether the image named `host`/`rest` matches, whole.
    pub fn matches_name(&self, host: &RegistryHost, rest: &str) -> bool {
        if !wildcard(self.host.as_bytes(), host.as_str().as_bytes()) {
            return false;
        }
        // A set of positions in `path` reached so far; `**` may also be skipped.
        let len = self.path.len();
        let mut states = vec![false; len + 1];
        if let Some(s) = states.first_mut() {
            *s = true;
        }
        self.skip_double_stars(&mut states);
        for seg in rest.split('/') {
            if seg.is_empty() {
                return false;
            }
            let mut next = vec![false; len + 1];
            for (i, p) in self.path.iter().enumerate() {
                if !states.get(i).copied().unwrap_or(false) {
                    continue;
                }
                let to = match p {
                    Segment::Any => i,
                    Segment::Pattern(p) if wildcard(p.as_bytes(), seg.as_bytes()) => i + 1,
                    Segment::Pattern(_) => continue,
                };
                if let Some(n) = next.get_mut(to) {
                    *n = true;
                }
            }
            self.skip_double_stars(&mut next);
            if !next.contains(&true) {
                return false;
            }
            states = next;
        }
        states.last().copied().unwrap_or(false)
    }

    /// Adds the positions reached by letting each reachable `**` match nothing.
    fn skip_double_stars(&self, states: &mut [bool]) {
        for (i, p) in self.path.iter().enumerate() {
            if matches!(p, Segment::Any)
                && states.get(i).copied().unwrap_or(false)
                && let Some(n) = states.get_mut(i + 1)
            {
                *n = true;
            }
        }
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

/// `*`-only wildcard match of a whole segment (`*` matches any run of bytes, including none).
fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // The last `*` seen and the text position it is currently matched up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(c) if text.get(t) == Some(c) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|r| r.iter().all(|&c| c == b'*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_matches_within_a_segment() {
        for (p, t, want) in [
            ("*", "", true),
            ("*", "abc", true),
            ("a*c", "abc", true),
            ("a*c", "ac", true),
            ("a*c", "abcd", false),
            ("*b*", "abc", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("abc", "abc", true),
            ("abc", "ab", false),
            ("", "", true),
            ("", "a", false),
        ] {
            assert_eq!(wildcard(p.as_bytes(), t.as_bytes()), want, "{p} vs {t}");
        }
    }

    #[test]
    fn many_double_stars_stay_fast() {
        let g = Glob::parse(&format!("reg.io/{}x", "**/".repeat(40))).unwrap();
        let name = format!("reg.io/{}y", "a/".repeat(100));
        assert!(!g.matches(&name));
    }

    #[test]
    fn yaml_paths_name_the_node_at_a_position() {
        let text = "trustRoots:\n  - name: a\n    notary:\n      url: x\n      urll: y\n  - name: b\n    notary: {url: [1]}\n";
        // The unknown key `urll` stands for its mapping.
        assert_eq!(yaml_path_at(text, 5, 7), "trustRoots[0].notary");
        // A value names its key.
        assert_eq!(yaml_path_at(text, 4, 12), "trustRoots[0].notary.url");
        // A whole list item.
        assert_eq!(yaml_path_at(text, 6, 5), "trustRoots[1]");
        assert_eq!(yaml_path_at(text, 7, 19), "trustRoots[1].notary.url");
        assert_eq!(yaml_path_at(text, 7, 20), "trustRoots[1].notary.url[0]");
        assert_eq!(yaml_path_at(text, 1, 1), "");
    }
}
