//! A Notation `trustpolicy.json` (version 1.0), validated as notation-go does
//! (`verifier/trustpolicy`), so an existing policy and trust store directory are used as they are:
//! each statement's `registryScopes` are exact repositories (or `*`, alone), and the image's
//! repository selects its statement (an exact scope, else `*`).

use std::collections::BTreeSet;

use serde::Deserialize;

use super::{Action, Identity, Level, Step, TrustPolicy, TrustStores, VerifyTimestamp};
use crate::pki::Certificate;

/// A trust store type, as `trustStores` entries name them (`ca:acme`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StoreType {
    /// `ca`: the certificates signatures of the `notary.x509` signing scheme must chain to.
    Ca,
    /// `signingAuthority`: the same for the `notary.x509.signingAuthority` signing scheme.
    SigningAuthority,
    /// `tsa`: timestamping authorities (RFC 3161 countersignatures).
    Tsa,
}

impl StoreType {
    /// The directory name under `truststore/x509/`.
    pub fn dir(self) -> &'static str {
        match self {
            StoreType::Ca => "ca",
            StoreType::SigningAuthority => "signingAuthority",
            StoreType::Tsa => "tsa",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawDocument {
    version: String,
    trust_policies: Vec<RawStatement>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawStatement {
    name: String,
    registry_scopes: Vec<String>,
    signature_verification: RawVerification,
    #[serde(default)]
    trust_stores: Vec<String>,
    #[serde(default)]
    trusted_identities: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawVerification {
    level: String,
    #[serde(default, rename = "override")]
    overrides: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    verify_timestamp: Option<String>,
}

/// One statement: its scopes, and `None` for `skip` or its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// `name`: unique in the document, never empty.
    pub name: String,
    /// `registryScopes`: repositories (`host[:port]/path`), each in one statement only, or `["*"]`.
    pub scopes: Vec<String>,
    /// `None`: level `skip` (no verification).
    pub verification: Option<StatementVerification>,
}

/// A verifying statement's settings, its stores still by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementVerification {
    /// `signatureVerification.level`: `strict`, `permissive` or `audit`.
    pub level: Level,
    /// `signatureVerification.override`: steps whose action differs from the level's.
    pub overrides: Vec<(Step, Action)>,
    /// `signatureVerification.verifyTimestamp`; `always` when absent.
    pub verify_timestamp: VerifyTimestamp,
    /// `trustStores`, each `type:name`; never empty.
    pub stores: Vec<(StoreType, String)>,
    /// `trustedIdentities`; never empty.
    pub identities: Vec<Identity>,
}

/// A validated trust policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDocument {
    statements: Vec<Statement>,
}

fn is_store_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl PolicyDocument {
    /// Parses and validates `trustpolicy.json` bytes; errors name the statement and field.
    pub fn parse(bytes: &[u8]) -> Result<PolicyDocument, String> {
        let raw: RawDocument = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a trust policy document: {e}"))?;
        if raw.version != "1.0" {
            return Err(format!(
                "version {:?}: only \"1.0\" is supported",
                raw.version
            ));
        }
        if raw.trust_policies.is_empty() {
            return Err("trustPolicies is empty".into());
        }
        let mut names = BTreeSet::new();
        let mut scopes_seen = BTreeSet::new();
        let mut statements = Vec::new();
        for s in raw.trust_policies {
            let at = format!("trustPolicies {:?}", s.name);
            if s.name.is_empty() || !names.insert(s.name.clone()) {
                return Err(format!("{at}: an empty or duplicate name"));
            }
            if s.registry_scopes.is_empty() {
                return Err(format!("{at}: registryScopes is empty"));
            }
            for scope in &s.registry_scopes {
                if scope == "*" {
                    if s.registry_scopes.len() > 1 {
                        return Err(format!("{at}: \"*\" must be the only scope"));
                    }
                } else if scope.contains('*')
                    || scope.contains('@')
                    || !scope.contains('/')
                    || scope
                        .rsplit('/')
                        .next()
                        .is_some_and(|last| last.contains(':'))
                {
                    return Err(format!(
                        "{at}: scope {scope:?} must be a repository (host[:port]/path, no tag, digest or wildcard)"
                    ));
                }
                if !scopes_seen.insert(scope.clone()) {
                    return Err(format!(
                        "{at}: scope {scope:?} is in more than one statement"
                    ));
                }
            }
            let v = &s.signature_verification;
            let level = match v.level.as_str() {
                "strict" => Some(Level::Strict),
                "permissive" => Some(Level::Permissive),
                "audit" => Some(Level::Audit),
                "skip" => None,
                other => return Err(format!("{at}: level {other:?}")),
            };
            let Some(level) = level else {
                if !s.trust_stores.is_empty()
                    || !s.trusted_identities.is_empty()
                    || !v.overrides.is_empty()
                {
                    return Err(format!(
                        "{at}: a skip statement has no trustStores, trustedIdentities or override"
                    ));
                }
                if s.registry_scopes == ["*"] {
                    return Err(format!(
                        "{at}: skip is not allowed for the global scope \"*\""
                    ));
                }
                statements.push(Statement {
                    name: s.name,
                    scopes: s.registry_scopes,
                    verification: None,
                });
                continue;
            };
            let mut overrides = Vec::new();
            for (step, action) in &v.overrides {
                overrides.push(
                    parse_override(step, action)
                        .map_err(|e| format!("{at}: override.{step}: {e}"))?,
                );
            }
            let verify_timestamp = match v.verify_timestamp.as_deref() {
                None | Some("always") => VerifyTimestamp::Always,
                Some("afterCertExpiry") => VerifyTimestamp::AfterCertExpiry,
                Some(other) => return Err(format!("{at}: verifyTimestamp {other:?}")),
            };
            if s.trust_stores.is_empty() || s.trusted_identities.is_empty() {
                return Err(format!(
                    "{at}: trustStores and trustedIdentities are required"
                ));
            }
            let mut stores = Vec::new();
            for entry in &s.trust_stores {
                let (t, name) = entry
                    .split_once(':')
                    .ok_or_else(|| format!("{at}: trust store {entry:?} is not type:name"))?;
                let t = match t {
                    "ca" => StoreType::Ca,
                    "signingAuthority" => StoreType::SigningAuthority,
                    "tsa" => StoreType::Tsa,
                    other => return Err(format!("{at}: trust store type {other:?}")),
                };
                if !is_store_name(name) {
                    return Err(format!("{at}: trust store name {name:?}"));
                }
                stores.push((t, name.to_owned()));
            }
            let identities = s
                .trusted_identities
                .iter()
                .map(|i| Identity::parse(i).map_err(|e| format!("{at}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            statements.push(Statement {
                name: s.name,
                scopes: s.registry_scopes,
                verification: Some(StatementVerification {
                    level,
                    overrides,
                    verify_timestamp,
                    stores,
                    identities,
                }),
            });
        }
        Ok(PolicyDocument { statements })
    }

    /// The statements in document order.
    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }

    /// The statement for `repository` (`host[:port]/path`): an exact scope, else `*`.
    pub fn select(&self, repository: &str) -> Option<&Statement> {
        self.statements
            .iter()
            .find(|s| s.scopes.iter().any(|x| x == repository))
            .or_else(|| self.statements.iter().find(|s| s.scopes == ["*"]))
    }
}

impl StatementVerification {
    /// The statement's policy, with its named stores read by `store` (the caller's IO).
    pub fn trust_policy(
        &self,
        mut store: impl FnMut(StoreType, &str) -> Result<Vec<Certificate>, String>,
    ) -> Result<TrustPolicy, String> {
        let mut stores = TrustStores::default();
        for (t, name) in &self.stores {
            let certs = store(*t, name)?;
            match t {
                StoreType::Ca => stores.ca.extend(certs),
                StoreType::SigningAuthority => stores.signing_authority.extend(certs),
                StoreType::Tsa => stores.tsa.extend(certs),
            }
        }
        TrustPolicy::new(
            stores,
            self.identities.clone(),
            self.level,
            self.overrides.clone(),
            self.verify_timestamp,
        )
    }
}

/// One `override` entry, `step: action`, as notation's trust policy writes it, with the rule
/// signgate holds every override to ([`Step::allows`]).
pub fn parse_override(step: &str, action: &str) -> Result<(Step, Action), String> {
    let (step, action) = (parse_step(step)?, parse_action(action)?);
    step.allows(action)?;
    Ok((step, action))
}

/// An `override` key.
fn parse_step(s: &str) -> Result<Step, String> {
    Ok(match s {
        "authenticity" => Step::Authenticity,
        "authenticTimestamp" => Step::AuthenticTimestamp,
        "expiry" => Step::Expiry,
        "revocation" => Step::Revocation,
        "integrity" => return Err("integrity cannot be overridden".into()),
        other => return Err(format!("override {other:?} is not a verification step")),
    })
}

/// An `override` value.
fn parse_action(s: &str) -> Result<Action, String> {
    Ok(match s {
        "enforce" => Action::Enforce,
        "log" => Action::Log,
        "skip" => Action::Skip,
        other => return Err(format!("override action {other:?} (enforce, log or skip)")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specs_example_parses_and_selects_by_exact_scope() {
        let doc = br#"{"version":"1.0","trustPolicies":[
  {"name":"prod","registryScopes":["registry.example.com/ml/pytorch"],
   "signatureVerification":{"level":"strict","override":{"revocation":"log"},"verifyTimestamp":"afterCertExpiry"},
   "trustStores":["ca:acme","tsa:globalsign"],
   "trustedIdentities":["x509.subject: C=US, ST=WA, O=acme-rockets.io, OU=Finance, CN=SecureBuilder"]},
  {"name":"unsigned-exception","registryScopes":["registry.example.com/tools/busybox"],"signatureVerification":{"level":"skip"}},
  {"name":"default","registryScopes":["*"],"signatureVerification":{"level":"audit"},"trustStores":["ca:acme"],"trustedIdentities":["*"]}]}"#;
        let d = PolicyDocument::parse(doc).unwrap();
        assert_eq!(
            d.select("registry.example.com/ml/pytorch").unwrap().name,
            "prod"
        );
        assert_eq!(
            d.select("registry.example.com/ml/pytorch2").unwrap().name,
            "default"
        );
        assert!(
            d.select("registry.example.com/tools/busybox")
                .unwrap()
                .verification
                .is_none()
        );
        let v = d.statements()[0].verification.as_ref().unwrap();
        assert_eq!(v.overrides, [(Step::Revocation, Action::Log)]);
        assert_eq!(
            v.stores,
            [
                (StoreType::Ca, "acme".into()),
                (StoreType::Tsa, "globalsign".into())
            ]
        );
    }

    #[test]
    fn what_notation_refuses_is_refused() {
        let statement = |s: &str| format!(r#"{{"version":"1.0","trustPolicies":[{s}]}}"#);
        for (bad, why) in [
            (
                statement(
                    r#"{"name":"a","registryScopes":["*","r.io/x"],"signatureVerification":{"level":"strict"},"trustStores":["ca:a"],"trustedIdentities":["*"]}"#,
                ),
                "only scope",
            ),
            (
                statement(
                    r#"{"name":"a","registryScopes":["r.io/x:v1"],"signatureVerification":{"level":"strict"},"trustStores":["ca:a"],"trustedIdentities":["*"]}"#,
                ),
                "repository",
            ),
            (
                statement(
                    r#"{"name":"a","registryScopes":["*"],"signatureVerification":{"level":"skip"}}"#,
                ),
                "global scope",
            ),
            (
                statement(
                    r#"{"name":"a","registryScopes":["r.io/x"],"signatureVerification":{"level":"strict","override":{"integrity":"log"}},"trustStores":["ca:a"],"trustedIdentities":["*"]}"#,
                ),
                "integrity",
            ),
            (
                statement(
                    r#"{"name":"a","registryScopes":["r.io/x"],"signatureVerification":{"level":"strict","override":{"authenticity":"log"}},"trustStores":["ca:a"],"trustedIdentities":["*"]}"#,
                ),
                "override.authenticity: authenticity is always enforced",
            ),
            (
                statement(
                    r#"{"name":"a","registryScopes":["r.io/x"],"signatureVerification":{"level":"audit","override":{"authenticity":"skip"}},"trustStores":["ca:a"],"trustedIdentities":["*"]}"#,
                ),
                "override.authenticity: authenticity is always enforced",
            ),
            (
                statement(
                    r#"{"name":"a","registryScopes":["r.io/x"],"signatureVerification":{"level":"strict","override":{"expiry":"skip"}},"trustStores":["ca:a"],"trustedIdentities":["*"]}"#,
                ),
                "override.expiry: skip is allowed for revocation only",
            ),
            (
                statement(
                    r#"{"name":"a","registryScopes":["r.io/x"],"signatureVerification":{"level":"strict"},"trustStores":["ca:a"]}"#,
                ),
                "required",
            ),
            (
                statement(
                    r#"{"name":"a","registryScopes":["r.io/x"],"signatureVerification":{"level":"strict"},"trustStores":["x:a"],"trustedIdentities":["*"]}"#,
                ),
                "type",
            ),
            (
                r#"{"version":"2.0","trustPolicies":[]}"#.to_owned(),
                "version",
            ),
        ] {
            let e = PolicyDocument::parse(bad.as_bytes()).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
