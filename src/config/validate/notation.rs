//! `notation:` trust roots: Notation's trust policy vocabulary written in the configuration, or an
//! existing `trustpolicy.json` and trust store directory used as they are. Every certificate file
//! is read through [`Reads::file`] and every store directory listed through [`Reads::dir`], so a
//! reload sees a rotated store and a certificate added to or removed from one.

use std::path::{Path, PathBuf};

use super::Validator;
use crate::config::Reads;
use crate::config::error::{ConfigError, ErrorKind};
use crate::config::raw::{RawNotation, RawTrustStores};
use crate::notation::{
    Identity, Level, PolicyDocument, RootPolicy, ScopedPolicy, StoreType, TrustPolicy, TrustStores,
    VerifyTimestamp, parse_override,
};
use crate::pki::{Certificate, Crl};

/// Certificates a trust store directory may hold at most (a wrong path must not read a disk).
const MAX_STORE_FILES: usize = 256;

impl Validator<'_> {
    pub(super) fn notation_root(
        &self,
        item: &str,
        mut n: RawNotation,
    ) -> Result<RootPolicy, ConfigError> {
        let field = |f: &str| format!("{item}: notation.{f}");
        let bad = |f: &str, detail: String| self.err(field(f), ErrorKind::Notation { detail });
        let crls = self.crls(item, std::mem::take(&mut n.crls))?;
        match (n.trust_policy_file, n.trust_store_dir) {
            (None, None) => {}
            (Some(file), Some(dir)) => {
                let inline = [
                    ("trustStores", n.trust_stores.is_some()),
                    ("trustedIdentities", n.trusted_identities.is_some()),
                    ("level", n.level.is_some()),
                    ("override", n.overrides.is_some()),
                    ("verifyTimestamp", n.verify_timestamp.is_some()),
                ];
                if let Some((name, _)) = inline.iter().find(|(_, set)| *set) {
                    return Err(bad(
                        name,
                        format!(
                            "{name} is written in the trust policy file; give trustPolicyFile and trustStoreDir, or the settings inline, not both"
                        ),
                    ));
                }
                let file = self
                    .path(&field("trustPolicyFile"), Some(file))?
                    .unwrap_or_default();
                let dir = self
                    .path(&field("trustStoreDir"), Some(dir))?
                    .unwrap_or_default();
                return self.trust_policy_file(item, &file, &dir, &crls);
            }
            (Some(_), None) => {
                return Err(bad(
                    "trustStoreDir",
                    "trustPolicyFile needs trustStoreDir (the directory holding x509/ca/<name>/, …)".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(bad(
                    "trustPolicyFile",
                    "trustStoreDir needs trustPolicyFile".into(),
                ));
            }
        }

        let stores = n.trust_stores.ok_or_else(|| {
            bad(
                "trustStores",
                "give trustStores (ca, signingAuthority, tsa), or trustPolicyFile and trustStoreDir".into(),
            )
        })?;
        let stores = self.inline_stores(item, stores)?;
        let identities = n.trusted_identities.ok_or_else(|| {
            bad(
                "trustedIdentities",
                "give the trusted identities (\"x509.subject: C=…, ST=…, O=…\"), or [\"*\"] for any".into(),
            )
        })?;
        let identities = identities
            .iter()
            .enumerate()
            .map(|(i, id)| {
                Identity::parse(id).map_err(|e| bad(&format!("trustedIdentities[{i}]"), e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let level = match n.level.as_deref() {
            None | Some("strict") => Level::Strict,
            Some("permissive") => Level::Permissive,
            Some("audit") => Level::Audit,
            Some("skip") => {
                return Err(bad(
                    "level",
                    "skip verifies nothing: use a policy with action: allow for images that need no signature".into(),
                ));
            }
            Some(other) => {
                return Err(bad(
                    "level",
                    format!("{other:?} is not strict, permissive or audit"),
                ));
            }
        };
        let mut overrides = Vec::new();
        for (step, action) in n.overrides.unwrap_or_default() {
            let f = format!("override.{step}");
            overrides.push(parse_override(&step, &action).map_err(|e| bad(&f, e))?);
        }
        let verify_timestamp = match n.verify_timestamp.as_deref() {
            None | Some("always") => VerifyTimestamp::Always,
            Some("afterCertExpiry") => VerifyTimestamp::AfterCertExpiry,
            Some(other) => {
                return Err(bad(
                    "verifyTimestamp",
                    format!("{other:?} is not always or afterCertExpiry"),
                ));
            }
        };
        TrustPolicy::new(stores, identities, level, overrides, verify_timestamp)
            .map(|p| RootPolicy::Inline(p.with_crls(crls)))
            .map_err(|e| {
                self.err(
                    format!("{item}: notation"),
                    ErrorKind::Notation { detail: e },
                )
            })
    }

    /// `trustStores`: each entry inline PEM, or a file (PEM or DER) relative to the
    /// configuration.
    fn inline_stores(&self, item: &str, raw: RawTrustStores) -> Result<TrustStores, ConfigError> {
        let mut stores = TrustStores::default();
        for (name, entries, into) in [
            ("ca", raw.ca, &mut stores.ca),
            (
                "signingAuthority",
                raw.signing_authority,
                &mut stores.signing_authority,
            ),
            ("tsa", raw.tsa, &mut stores.tsa),
        ] {
            for (i, entry) in entries.into_iter().enumerate() {
                let field = format!("{item}: notation.trustStores.{name}[{i}]");
                let certs = if entry.trim_start().starts_with("-----BEGIN") {
                    Certificate::parse_pem_bundle(&entry).map_err(|e| e.to_string())
                } else {
                    let path = self.path(&field, Some(entry))?.unwrap_or_default();
                    read_certificates(self.reads, &path)
                }
                .map_err(|detail| self.err(field.clone(), ErrorKind::Notation { detail }))?;
                if certs.is_empty() {
                    return Err(self.err(
                        field,
                        ErrorKind::Notation {
                            detail: "holds no certificate".into(),
                        },
                    ));
                }
                into.extend(certs);
            }
        }
        Ok(stores)
    }

    /// `crls`: each entry inline PEM (`X509 CRL`) or a file (PEM or DER).
    fn crls(&self, item: &str, entries: Vec<String>) -> Result<Vec<Crl>, ConfigError> {
        let mut out = Vec::new();
        for (i, entry) in entries.into_iter().enumerate() {
            let field = format!("{item}: notation.crls[{i}]");
            let crls = if entry.trim_start().starts_with("-----BEGIN") {
                Crl::parse_file(entry.as_bytes()).map_err(|e| e.to_string())
            } else {
                let path = self.path(&field, Some(entry))?.unwrap_or_default();
                self.reads
                    .file(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))
                    .and_then(|b| {
                        Crl::parse_file(&b).map_err(|e| format!("{}: {e}", path.display()))
                    })
            }
            .map_err(|detail| self.err(field, ErrorKind::Notation { detail }))?;
            out.extend(crls);
        }
        Ok(out)
    }

    /// An existing `trustpolicy.json` and its trust store directory (`DIR/x509/<type>/<name>/`).
    fn trust_policy_file(
        &self,
        item: &str,
        file: &Path,
        dir: &Path,
        crls: &[Crl],
    ) -> Result<RootPolicy, ConfigError> {
        let field = format!("{item}: notation.trustPolicyFile");
        let bytes = self.reads.file(file).map_err(|e| {
            self.err(
                field.clone(),
                ErrorKind::Notation {
                    detail: format!("cannot read {}: {e}", file.display()),
                },
            )
        })?;
        let doc = PolicyDocument::parse(&bytes).map_err(|e| {
            self.err(
                field.clone(),
                ErrorKind::Notation {
                    detail: format!("{}: {e}", file.display()),
                },
            )
        })?;
        let mut out = Vec::new();
        for s in doc.statements() {
            let policy = match &s.verification {
                None => None,
                Some(v) => Some(
                    v.trust_policy(|t, name| read_store(self.reads, dir, t, name))
                        .map(|p| p.with_crls(crls.to_vec()))
                        .map_err(|e| {
                            self.err(
                                field.clone(),
                                ErrorKind::Notation {
                                    detail: format!(
                                        "{}: statement {:?}: {e}",
                                        file.display(),
                                        s.name
                                    ),
                                },
                            )
                        })?,
                ),
            };
            out.push(ScopedPolicy {
                name: s.name.clone(),
                scopes: s.scopes.clone(),
                policy,
            });
        }
        Ok(RootPolicy::Document(out))
    }
}

/// The certificates of one file, PEM or DER.
fn read_certificates(reads: &Reads, path: &Path) -> Result<Vec<Certificate>, String> {
    let bytes = reads
        .file(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Certificate::parse_file(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// A named store of Notation's trust store layout: every file in `DIR/x509/<type>/<name>/`.
fn read_store(
    reads: &Reads,
    dir: &Path,
    t: StoreType,
    name: &str,
) -> Result<Vec<Certificate>, String> {
    let store: PathBuf = dir.join("x509").join(t.dir()).join(name);
    let files = reads.dir(&store, MAX_STORE_FILES).map_err(|e| {
        format!(
            "trust store {}:{name}: cannot read {}: {e}",
            t.dir(),
            store.display()
        )
    })?;
    if files.len() > MAX_STORE_FILES {
        return Err(format!(
            "{} holds more than {MAX_STORE_FILES} files",
            store.display()
        ));
    }
    let mut certs = Vec::new();
    for f in files {
        certs.extend(read_certificates(reads, &f)?);
    }
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", store.display()));
    }
    Ok(certs)
}
