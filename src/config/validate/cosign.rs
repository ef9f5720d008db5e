//! `cosign:` trust roots: named public keys (`publicKey` inline PEM or `publicKeyFile`, read
//! through [`crate::config::Reads::file`] so a rotated file is seen at the next reload),
//! keyless identities with their pinned Sigstore trusted root, `threshold` distinct signers,
//! `required` key names, and `transparencyLog` (`required`, the default, or `ignore` for
//! key-based roots only).

use std::collections::BTreeSet;
use std::sync::Arc;

use super::Validator;
use crate::config::error::{ConfigError, ErrorKind};
use crate::config::raw::{RawCosign, RawIdentity};
use crate::cosign::{CosignRoot, Identity, Matcher, NamedKey, TrustedRoot};
use crate::pki::VerifyingKey;

/// Keys one cosign trust root may name.
const MAX_KEYS: usize = 64;
/// Keyless identities one cosign trust root may accept.
const MAX_IDENTITIES: usize = 32;

impl Validator<'_> {
    pub(super) fn cosign_root(&self, item: &str, c: RawCosign) -> Result<CosignRoot, ConfigError> {
        let field = |f: &str| format!("{item}: cosign.{f}");
        let bad = |f: &str, detail: String| self.err(field(f), ErrorKind::Cosign { detail });
        let tlog_required = match c.transparency_log.as_deref() {
            None | Some("required") => true,
            Some("ignore") => false,
            Some(other) => {
                return Err(bad(
                    "transparencyLog",
                    format!("{other:?} is not required or ignore"),
                ));
            }
        };
        let keyless = c.keyless;
        if keyless.is_some() && !tlog_required {
            return Err(bad(
                "transparencyLog",
                "keyless signatures always need their transparency log entry: remove transparencyLog: ignore (or the keyless block)".into(),
            ));
        }
        // The trusted root: one file, given at the root or under keyless.
        let root_file = match (
            c.trusted_root_file,
            keyless.as_ref().and_then(|k| k.trusted_root_file.clone()),
        ) {
            (Some(a), Some(b)) if a != b => {
                return Err(bad(
                    "keyless.trustedRootFile",
                    format!(
                        "{b:?} differs from cosign.trustedRootFile {a:?}: give one trusted root"
                    ),
                ));
            }
            (Some(a), _) => Some(("trustedRootFile", a)),
            (None, Some(b)) => Some(("keyless.trustedRootFile", b)),
            (None, None) => None,
        };
        let transparency_log = match (root_file, tlog_required) {
            (None, true) => {
                return Err(bad(
                    "transparencyLog",
                    "required (the default) needs the Rekor keys: set trustedRootFile to a Sigstore trusted_root.json, or transparencyLog: ignore for key-based signatures without a log entry (as `cosign verify --insecure-ignore-tlog`)".into(),
                ));
            }
            (Some((f, _)), false) => {
                return Err(bad(
                    f,
                    "a trusted root is only read when transparencyLog is required".into(),
                ));
            }
            (None, false) => None,
            (Some((f, file)), true) => {
                let path = self.path(&field(f), Some(file))?.unwrap_or_default();
                let bytes = self
                    .reads
                    .file(&path)
                    .map_err(|e| bad(f, format!("cannot read {}: {e}", path.display())))?;
                let tr = TrustedRoot::parse(&bytes)
                    .map_err(|e| bad(f, format!("{}: {e}", path.display())))?;
                if tr.tlogs.is_empty() {
                    return Err(bad(
                        f,
                        format!("{} lists no transparency log (tlogs)", path.display()),
                    ));
                }
                if keyless.is_some() && (tr.authorities.is_empty() || tr.ctlogs.is_empty()) {
                    return Err(bad(
                        f,
                        format!(
                            "{} lists no certificate authority or no CT log: keyless certificates cannot be checked",
                            path.display()
                        ),
                    ));
                }
                Some(Arc::new(tr))
            }
        };
        let identities = match keyless {
            None => Vec::new(),
            Some(k) => {
                if k.identities.is_empty() || k.identities.len() > MAX_IDENTITIES {
                    return Err(bad(
                        "keyless.identities",
                        format!("give 1 to {MAX_IDENTITIES} identities (issuer and subject)"),
                    ));
                }
                k.identities
                    .into_iter()
                    .enumerate()
                    .map(|(i, id)| self.identity(&field(&format!("keyless.identities[{i}]")), id))
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        if c.keys.len() > MAX_KEYS || (c.keys.is_empty() && identities.is_empty()) {
            return Err(bad(
                "keys",
                format!("give 1 to {MAX_KEYS} named public keys, or keyless identities"),
            ));
        }
        let mut keys = Vec::new();
        let mut names = BTreeSet::new();
        let mut seen = Vec::new();
        for (i, k) in c.keys.into_iter().enumerate() {
            let f = format!("keys[{i}]");
            self.name(&field(&f), &k.name)?;
            if !names.insert(k.name.clone()) {
                return Err(bad(&f, format!("the key name {:?} is given twice", k.name)));
            }
            let pem = match (k.public_key, k.public_key_file) {
                (Some(pem), None) => pem,
                (None, Some(file)) => {
                    let ff = format!("{f}.publicKeyFile");
                    let path = self.path(&field(&ff), Some(file))?.unwrap_or_default();
                    let bytes = self
                        .reads
                        .file(&path)
                        .map_err(|e| bad(&ff, format!("cannot read {}: {e}", path.display())))?;
                    String::from_utf8(bytes)
                        .map_err(|_| bad(&ff, format!("{} is not PEM text", path.display())))?
                }
                _ => {
                    return Err(bad(
                        &f,
                        "give publicKey (PEM) or publicKeyFile, one of them".into(),
                    ));
                }
            };
            let key = VerifyingKey::from_pem(&pem)
                .map_err(|e| bad(&f, format!("not a public key cosign can sign with: {e}")))?;
            // Compared as key material (`VerifyingKey` equality), not as encoded bytes: one
            // P-256 key written compressed and uncompressed is one signer.
            if let Some((other, name)) =
                seen.iter()
                    .enumerate()
                    .find_map(|(j, (s, n)): (usize, &(VerifyingKey, String))| {
                        (*s == key).then_some((j, n))
                    })
            {
                return Err(bad(
                    &f,
                    format!(
                        "{:?} is the same key as keys[{other}] ({name:?}): a threshold counts distinct keys",
                        k.name
                    ),
                ));
            }
            seen.push((key.clone(), k.name.clone()));
            keys.push(NamedKey { name: k.name, key });
        }
        let threshold = c.threshold.unwrap_or(1);
        let signers = keys.len() + identities.len();
        if threshold == 0 || threshold > signers {
            return Err(bad(
                "threshold",
                format!(
                    "{threshold} must be between 1 and the number of keys and identities ({signers})"
                ),
            ));
        }
        let required = c.required.unwrap_or_default();
        let mut unique = BTreeSet::new();
        for (i, r) in required.iter().enumerate() {
            if !names.contains(r) {
                return Err(bad(
                    &format!("required[{i}]"),
                    format!("no key named {r:?} in keys"),
                ));
            }
            if !unique.insert(r) {
                return Err(bad(
                    &format!("required[{i}]"),
                    format!("{r:?} is listed twice"),
                ));
            }
        }
        Ok(CosignRoot {
            keys,
            threshold,
            required,
            transparency_log,
            identities,
        })
    }

    fn identity(&self, field: &str, id: RawIdentity) -> Result<Identity, ConfigError> {
        let one = |what: &str, exact: Option<String>, re: Option<String>| {
            let bad =
                |detail: String| self.err(format!("{field}.{what}"), ErrorKind::Cosign { detail });
            match (exact, re) {
                (Some(s), None) if !s.is_empty() => Ok(Matcher::Exact(s)),
                (None, Some(r)) if !r.is_empty() => {
                    Matcher::regex(&r).map_err(|e| bad(format!("{what}RegExp {r:?}: {e}")))
                }
                _ => Err(bad(format!(
                    "give {what} (exact) or {what}RegExp (an anchored regular expression), one of them, not empty"
                ))),
            }
        };
        Ok(Identity {
            issuer: one("issuer", id.issuer, id.issuer_reg_exp)?,
            subject: one("subject", id.subject, id.subject_reg_exp)?,
        })
    }
}
