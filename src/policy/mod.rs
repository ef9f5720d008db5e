//! Policy: which image, in which namespace, needs what (a trust root's signature under a mode, or
//! a fixed verdict). Pure: the configuration's policies and defaults are data here, and nothing
//! reads a file, a clock or the network.

mod decision;
mod glob;
mod review;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;

use crate::reference::{Reference, RegistryHost};

pub use decision::{ImageDecision, Kind, Outcome, RootCheck, Signature, Verdict, Verified};
pub use glob::{Glob, GlobError};
pub use review::{ContainerDecision, Decision, Evaluation, ImageFailure, denial_message};

/// What happens to an image: `enforce` denies, `warn` allows with a warning, `audit` allows and
/// records the would-be denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A failure denies the review. The default.
    #[default]
    Enforce,
    /// A failure admits the image with an admission warning.
    Warn,
    /// A failure admits the image silently and is recorded in an audit annotation.
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
    /// Admit without verifying anything.
    Allow,
    /// Deny. The default `defaultAction`: images no policy covers are refused.
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
    /// `name`: unique among policies; appears in denials, warnings and logs.
    pub name: String,
    /// Never empty; an image matches when any glob does.
    pub images: Vec<Glob>,
    /// `None`: every namespace.
    pub namespaces: Option<NamespaceSelector>,
    /// What a matching image needs.
    pub target: PolicyTarget,
}

impl Policy {
    /// Whether this policy covers the image `host`/`path` (no tag or digest) in namespace
    /// `namespace` carrying `labels`.
    pub fn matches(
        &self,
        host: &RegistryHost,
        path: &str,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> bool {
        self.matches_image(host, path)
            && self
                .namespaces
                .as_ref()
                .is_none_or(|s| s.matches(namespace, labels))
    }

    fn matches_image(&self, host: &RegistryHost, path: &str) -> bool {
        self.images.iter().any(|g| g.matches_name(host, path))
    }

    fn selects_by_label(&self) -> bool {
        self.namespaces
            .as_ref()
            .is_some_and(NamespaceSelector::selects_by_label)
    }
}

/// The configuration's policies in file order, and `defaultAction` for images none matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policies {
    list: Vec<Policy>,
    default_action: Action,
}

impl std::ops::Deref for Policies {
    type Target = [Policy];

    fn deref(&self) -> &[Policy] {
        &self.list
    }
}

impl Policies {
    /// `list` in file order (the first match wins), and the action for images none matches.
    pub fn new(list: Vec<Policy>, default_action: Action) -> Policies {
        Policies {
            list,
            default_action,
        }
    }

    /// `defaultAction`: what happens to images no policy matches.
    pub fn default_action(&self) -> Action {
        self.default_action
    }

    /// The policy for the image `reference` in `namespace` with `labels`: the first match in file
    /// order, else `defaultAction`.
    pub fn select(
        &self,
        reference: &Reference,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> PolicyDecision<'_> {
        self.select_name(reference.host(), reference.path(), namespace, labels)
    }

    /// [`Policies::select`] for an image name written `host/path` (no tag or digest, as
    /// [`Reference::gun`] gives it); a name whose host is not a registry host matches no policy.
    pub fn select_image_name(
        &self,
        image_name: &str,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> PolicyDecision<'_> {
        match image_name
            .split_once('/')
            .and_then(|(h, p)| Some((RegistryHost::parse(h).ok()?, p)))
        {
            Some((host, path)) => self.select_name(&host, path, namespace, labels),
            None => PolicyDecision::Default(self.default_action),
        }
    }

    /// Whether any policy selects namespaces by label: only then are labels read from the
    /// Kubernetes API (and RBAC to list and watch namespaces needed).
    pub fn uses_labels(&self) -> bool {
        self.list.iter().any(Policy::selects_by_label)
    }

    /// Whether the policy for the image `reference` in `namespace` depends on the namespace's
    /// labels: in file order, a policy whose images and namespace names match comes with
    /// `matchLabels` before one without. When it does not, the choice is the same whatever the
    /// labels are, so unknown labels change nothing; when it does, unknown labels must fail
    /// closed (the label-selected policy or a later one may apply, and signgate cannot tell).
    pub fn needs_labels(&self, reference: &Reference, namespace: &str) -> bool {
        let (host, path) = (reference.host(), reference.path());
        self.list
            .iter()
            .find(|p| {
                p.matches_image(host, path)
                    && p.namespaces
                        .as_ref()
                        .is_none_or(|s| s.admits_name(namespace))
            })
            .is_some_and(Policy::selects_by_label)
    }

    fn select_name(
        &self,
        host: &RegistryHost,
        path: &str,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> PolicyDecision<'_> {
        self.list
            .iter()
            .find(|p| p.matches(host, path, namespace, labels))
            .map_or(
                PolicyDecision::Default(self.default_action),
                PolicyDecision::Policy,
            )
    }
}

/// How many of a policy's trust roots must verify the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Require {
    /// One is enough (a migration that accepts either signature).
    Any,
    /// Every one, on the same digest (dual signing). The default: it fails closed.
    #[default]
    All,
}

impl Require {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Require::Any => "any",
            Require::All => "all",
        }
    }
}

/// What a matching policy requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyTarget {
    /// `trustRoot` or `trustRoots` (+ `require`, `mode`): the image must be signed under these
    /// trust roots (one: `require` does not matter).
    Verify {
        /// The trust roots' names, never empty, each once.
        trust_roots: Vec<String>,
        /// How many of them must verify.
        require: Require,
        /// What a failure does.
        mode: Mode,
    },
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
    /// Whether the namespace `namespace`, carrying `labels`, is selected.
    pub fn matches(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        self.admits_name(namespace)
            && self
                .match_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
    }

    /// The name half of the selector: `names` empty or listing `namespace`.
    fn admits_name(&self, namespace: &str) -> bool {
        self.names.is_empty() || self.names.contains(namespace)
    }

    fn selects_by_label(&self) -> bool {
        !self.match_labels.is_empty()
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
    /// The matching policy; `None` when `defaultAction` applies.
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
