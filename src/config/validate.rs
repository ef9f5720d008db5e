//! The raw YAML validated into the domain types; the first error is reported, naming its field.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use url::Url;

use super::error::{At, ConfigError, ErrorKind};
use super::raw::{RawConfig, RawCredentials, RawNamespaces, RawNotary, RawPolicy, RawTrustRoot};
use super::{Config, Credentials, MAX_NAME, NotaryRoot, Reads, Registry, RootKind, TrustRoot};
use crate::notary::PinnedKey;
use crate::notary::metadata::{TARGETS, is_delegation_name};
use crate::policy::{Glob, NamespaceSelector, Policies, Policy, PolicyTarget};
use crate::reference::RegistryHost;

mod cosign;
mod notation;

pub(super) struct Validator<'a> {
    file: &'a Path,
    base: &'a Path,
    /// Where every file the configuration names is read.
    reads: &'a Reads,
}

impl<'a> Validator<'a> {
    /// Validates the content of `file`; relative paths resolve against its directory.
    pub(super) fn new(file: &'a Path, reads: &'a Reads) -> Validator<'a> {
        Validator {
            file,
            base: file.parent().unwrap_or(Path::new("")),
            reads,
        }
    }

    fn err(&self, field: impl Into<String>, kind: ErrorKind) -> ConfigError {
        ConfigError::new(At::new(self.file, field), kind)
    }

    pub(super) fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let mut trust_roots: Vec<TrustRoot> = Vec::with_capacity(raw.trust_roots.len());
        for (i, t) in raw.trust_roots.into_iter().enumerate() {
            let item = format!("trustRoots[{i}]");
            self.name(&item, &t.name)?;
            let item = format!("{item} ({})", t.name);
            if let Some(first) = trust_roots.iter().position(|o| o.name == t.name) {
                return Err(self.err(
                    format!("{item}: name"),
                    ErrorKind::DuplicateName {
                        what: "trust root",
                        list: "trustRoots",
                        name: t.name,
                        first,
                    },
                ));
            }
            trust_roots.push(self.trust_root(&item, t)?);
        }

        let mut registries: Vec<Registry> = Vec::with_capacity(raw.registries.len());
        for (i, r) in raw.registries.into_iter().enumerate() {
            let item = format!("registries[{i}]");
            let host = RegistryHost::parse(&r.host).map_err(|reason| {
                self.err(
                    format!("{item}: host"),
                    ErrorKind::InvalidHost {
                        host: r.host.clone(),
                        reason,
                    },
                )
            })?;
            let item = format!("{item} ({host})");
            if let Some(first) = registries.iter().position(|o| o.host == host) {
                return Err(self.err(
                    format!("{item}: host"),
                    ErrorKind::DuplicateRegistry {
                        host: host.to_string(),
                        first,
                    },
                ));
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
            && let Some((i, t)) = trust_roots.iter().enumerate().find(|(_, t)| {
                t.notary()
                    .is_some_and(|n| n.notary_url.is_none() && n.offline_dir.is_none())
            })
        {
            return Err(self.err(
                format!("trustRoots[{i}] ({}): notary.url", t.name),
                ErrorKind::NoNotaryServer,
            ));
        }

        let mut policies: Vec<Policy> = Vec::with_capacity(raw.policies.len());
        for (i, p) in raw.policies.into_iter().enumerate() {
            let item = format!("policies[{i}]");
            self.name(&item, &p.name)?;
            let item = format!("{item} ({})", p.name);
            if let Some(first) = policies.iter().position(|o| o.name == p.name) {
                return Err(self.err(
                    format!("{item}: name"),
                    ErrorKind::DuplicateName {
                        what: "policy",
                        list: "policies",
                        name: p.name,
                        first,
                    },
                ));
            }
            policies.push(self.policy(&item, p, &trust_roots)?);
        }

        Ok(Config {
            source: self.file.to_path_buf(),
            trust_roots,
            registries,
            policies: Policies::new(policies, raw.default_action.unwrap_or_default()),
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
            Err(self.err(
                format!("{item}: name"),
                ErrorKind::InvalidName {
                    name: name.to_owned(),
                },
            ))
        }
    }

    fn trust_root(&self, item: &str, t: RawTrustRoot) -> Result<TrustRoot, ConfigError> {
        let kind = match (t.notary, t.notation, t.cosign) {
            (Some(n), None, None) => RootKind::Notary(self.notary_root(item, n)?),
            (None, Some(n), None) => RootKind::Notation(self.notation_root(item, n)?),
            (None, None, Some(c)) => RootKind::Cosign(self.cosign_root(item, c)?),
            (notary, notation, cosign) => {
                let found = [
                    ("notary", notary.is_some()),
                    ("notation", notation.is_some()),
                    ("cosign", cosign.is_some()),
                ]
                .into_iter()
                .filter(|(_, set)| *set)
                .map(|(name, _)| name)
                .collect();
                return Err(self.err(item, ErrorKind::TrustRootKind { found }));
            }
        };
        Ok(TrustRoot { name: t.name, kind })
    }

    fn notary_root(&self, item: &str, n: RawNotary) -> Result<NotaryRoot, ConfigError> {
        let notary_url = match &n.url {
            Some(u) => Some(self.notary_url(&format!("{item}: notary.url"), u)?),
            None => None,
        };

        let mut root_keys = Vec::new();
        for (i, pem) in n.root_keys.iter().enumerate() {
            let keys = PinnedKey::from_pem(pem.as_bytes()).map_err(|source| {
                self.err(
                    format!("{item}: notary.rootKeys[{i}]"),
                    ErrorKind::RootKey { source },
                )
            })?;
            root_keys.extend(keys);
        }
        for (i, file) in n.root_key_files.into_iter().enumerate() {
            let field = format!("{item}: notary.rootKeyFiles[{i}]");
            let Some(path) = self.path(&field, Some(file))? else {
                continue;
            };
            let pem = self.reads.file(&path).map_err(|source| {
                self.err(
                    field.clone(),
                    ErrorKind::RootKeyFile {
                        path: path.clone(),
                        source,
                    },
                )
            })?;
            let keys = PinnedKey::from_pem(&pem).map_err(|source| {
                self.err(
                    format!("{field} ({})", path.display()),
                    ErrorKind::RootKey { source },
                )
            })?;
            root_keys.extend(keys);
        }
        if root_keys.is_empty() {
            return Err(self.err(format!("{item}: notary.rootKeys"), ErrorKind::NoRootKeys));
        }

        let require_roles = match n.require_roles {
            None => Vec::new(),
            Some(roles) => self.roles(&format!("{item}: notary.requireRoles"), roles)?,
        };

        Ok(NotaryRoot {
            notary_url,
            ca_file: self.path(&format!("{item}: notary.caFile"), n.ca_file)?,
            root_keys,
            require_roles,
            offline_dir: self.path(&format!("{item}: notary.offlineDir"), n.offline_dir)?,
        })
    }

    fn roles(&self, field: &str, roles: Vec<String>) -> Result<Vec<String>, ConfigError> {
        if roles.is_empty() {
            return Err(self.err(field, ErrorKind::InvalidRole { reason: "the list is empty; omit requireRoles for docker's rule (targets/releases, else targets)".to_owned() }));
        }
        let mut seen = BTreeSet::new();
        for (i, role) in roles.iter().enumerate() {
            if role != TARGETS && !is_delegation_name(role) {
                return Err(self.err(format!("{field}[{i}]"), ErrorKind::InvalidRole { reason: format!(
                        "{role:?} is not \"targets\" or a delegation name (\"targets/<name>\", lower-case letters, digits, '-', '_', '/')"
                    ) }));
            }
            if !seen.insert(role.as_str()) {
                return Err(self.err(
                    format!("{field}[{i}]"),
                    ErrorKind::InvalidRole {
                        reason: format!("{role:?} is listed twice"),
                    },
                ));
            }
        }
        Ok(roles)
    }

    fn notary_url(&self, field: &str, value: &str) -> Result<Url, ConfigError> {
        let url = Url::parse(value).map_err(|source| {
            self.err(
                field,
                ErrorKind::InvalidUrl {
                    url: value.to_owned(),
                    source,
                },
            )
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
            Some(reason) => Err(self.err(
                field,
                ErrorKind::NotaryUrl {
                    url: value.to_owned(),
                    reason,
                },
            )),
            None => Ok(url),
        }
    }

    /// An optional path, resolved against the configuration's directory.
    fn path(&self, field: &str, value: Option<String>) -> Result<Option<PathBuf>, ConfigError> {
        match value {
            None => Ok(None),
            Some(v) if v.is_empty() => Err(self.err(field, ErrorKind::EmptyPath)),
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
            return Err(self.err(field, ErrorKind::CredentialForms { forms }));
        }
        if let Some(name) = c.secret_name {
            if !is_dns_subdomain(&name) {
                return Err(self.err(
                    format!("{field}.secretName"),
                    ErrorKind::InvalidCredentialValue {
                        what: "Secret name",
                        value: name,
                    },
                ));
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
                    return Err(self.err(
                        format!("{field}.username"),
                        ErrorKind::InvalidCredentialValue {
                            what: "username",
                            value: username,
                        },
                    ));
                }
                let password_file = self
                    .path(&format!("{field}.passwordFile"), Some(password_file))?
                    .unwrap_or_default();
                Ok(Credentials::Basic {
                    username,
                    password_file,
                })
            }
            (Some(_), None) => Err(self.err(
                field,
                ErrorKind::IncompleteCredentials {
                    given: "username",
                    missing: "passwordFile",
                },
            )),
            _ => Err(self.err(
                field,
                ErrorKind::IncompleteCredentials {
                    given: "passwordFile",
                    missing: "username",
                },
            )),
        }
    }

    fn policy(
        &self,
        item: &str,
        p: RawPolicy,
        trust_roots: &[TrustRoot],
    ) -> Result<Policy, ConfigError> {
        if p.images.is_empty() {
            return Err(self.err(format!("{item}: images"), ErrorKind::NoImages));
        }
        let mut images = Vec::with_capacity(p.images.len());
        for (i, pattern) in p.images.into_iter().enumerate() {
            let glob = Glob::parse(&pattern).map_err(|source| {
                self.err(
                    format!("{item}: images[{i}]"),
                    ErrorKind::InvalidGlob {
                        pattern: pattern.clone(),
                        source,
                    },
                )
            })?;
            images.push(glob);
        }
        let namespaces = match p.namespaces {
            Some(ns) => Some(self.namespaces(&format!("{item}: namespaces"), ns)?),
            None => None,
        };
        let roots = match (p.trust_root, p.trust_roots) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    format!("{item}: trustRoot, trustRoots"),
                    ErrorKind::BothTrustRootAndTrustRoots,
                ));
            }
            (Some(one), None) => {
                if p.require.is_some() {
                    return Err(self.err(format!("{item}: require"), ErrorKind::RequireWithOneRoot));
                }
                Some(vec![(format!("{item}: trustRoot"), one)])
            }
            (None, Some(list)) => {
                if list.is_empty() {
                    return Err(self.err(
                        format!("{item}: trustRoots"),
                        ErrorKind::NoTrustRootOrAction,
                    ));
                }
                let mut seen = BTreeSet::new();
                let mut roots = Vec::with_capacity(list.len());
                for (i, name) in list.into_iter().enumerate() {
                    let field = format!("{item}: trustRoots[{i}]");
                    if !seen.insert(name.clone()) {
                        return Err(self.err(field, ErrorKind::DuplicateTrustRoot { name }));
                    }
                    roots.push((field, name));
                }
                Some(roots)
            }
            (None, None) => None,
        };
        let target = match (roots, p.action, p.mode) {
            (Some(_), Some(_), _) => {
                return Err(self.err(
                    format!("{item}: trustRoot, action"),
                    ErrorKind::BothTrustRootAndAction,
                ));
            }
            (None, None, _) => {
                return Err(self.err(item, ErrorKind::NoTrustRootOrAction));
            }
            (None, Some(_), Some(_)) => {
                return Err(self.err(format!("{item}: mode"), ErrorKind::ModeWithAction));
            }
            (None, Some(action), None) => {
                if p.require.is_some() {
                    return Err(self.err(format!("{item}: require"), ErrorKind::RequireWithOneRoot));
                }
                action.into()
            }
            (Some(roots), None, mode) => {
                let mut names = Vec::with_capacity(roots.len());
                for (field, name) in roots {
                    if !trust_roots.iter().any(|t| t.name == name) {
                        return Err(self.err(field, ErrorKind::UnknownTrustRoot { name }));
                    }
                    names.push(name);
                }
                PolicyTarget::Verify {
                    trust_roots: names,
                    require: p.require.unwrap_or_default(),
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
        let empty = |reason| self.err(field, ErrorKind::EmptyNamespaceSelector { reason });
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
                return Err(self.err(
                    format!("{field}.names[{i}]"),
                    ErrorKind::InvalidSelector {
                        what: "namespace name",
                        value: name.clone(),
                    },
                ));
            }
        }
        for (k, v) in &labels {
            if !is_label_key(k) {
                return Err(self.err(
                    format!("{field}.matchLabels"),
                    ErrorKind::InvalidSelector {
                        what: "label key",
                        value: k.clone(),
                    },
                ));
            }
            if !(v.is_empty() || is_label_name(v)) {
                return Err(self.err(
                    format!("{field}.matchLabels.{k}"),
                    ErrorKind::InvalidSelector {
                        what: "label value",
                        value: v.clone(),
                    },
                ));
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
