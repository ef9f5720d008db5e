//! `cosign:` trust roots: named public keys (inline PEM or a file, read through [`read_file`] so a
//! rotated key file is seen at the next reload), `threshold` distinct keys, `required` key names,
//! and `transparencyLog`, which must be `ignore` until Rekor entries are verified.

use std::collections::BTreeSet;

use super::Validator;
use crate::config::error::{ConfigError, ErrorKind};
use crate::config::raw::RawCosign;
use crate::config::read_file;
use crate::cosign::{CosignRoot, NamedKey};
use crate::pki::VerifyingKey;

/// Keys one cosign trust root may name.
const MAX_KEYS: usize = 64;

impl Validator<'_> {
    pub(super) fn cosign_root(&self, item: &str, c: RawCosign) -> Result<CosignRoot, ConfigError> {
        let field = |f: &str| format!("{item}: cosign.{f}");
        let bad = |f: &str, detail: String| self.err(field(f), ErrorKind::Cosign { detail });
        match c.transparency_log.as_deref() {
            Some("ignore") => {}
            None | Some("require") => {
                return Err(bad(
                    "transparencyLog",
                    "signgate does not verify Rekor transparency log entries yet: set transparencyLog: ignore (key-based signatures, as `cosign verify --insecure-ignore-tlog` checks them)".into(),
                ));
            }
            Some(other) => {
                return Err(bad(
                    "transparencyLog",
                    format!("{other:?} is not ignore or require"),
                ));
            }
        }
        if c.keys.is_empty() || c.keys.len() > MAX_KEYS {
            return Err(bad(
                "keys",
                format!("give 1 to {MAX_KEYS} named public keys"),
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
            let pem = match (k.key, k.key_file) {
                (Some(pem), None) => pem,
                (None, Some(file)) => {
                    let ff = format!("{f}.keyFile");
                    let path = self.path(&field(&ff), Some(file))?.unwrap_or_default();
                    let bytes = read_file(&path)
                        .map_err(|e| bad(&ff, format!("cannot read {}: {e}", path.display())))?;
                    String::from_utf8(bytes)
                        .map_err(|_| bad(&ff, format!("{} is not PEM text", path.display())))?
                }
                _ => {
                    return Err(bad(&f, "give key (PEM) or keyFile, one of them".into()));
                }
            };
            let key = VerifyingKey::from_pem(&pem)
                .map_err(|e| bad(&f, format!("not a public key cosign can sign with: {e}")))?;
            if let Some(other) = seen.iter().position(|s: &VerifyingKey| *s == key) {
                return Err(bad(
                    &f,
                    format!("the same key as keys[{other}]: a threshold counts distinct keys"),
                ));
            }
            seen.push(key.clone());
            keys.push(NamedKey { name: k.name, key });
        }
        let threshold = c.threshold.unwrap_or(1);
        if threshold == 0 || threshold > keys.len() {
            return Err(bad(
                "threshold",
                format!(
                    "{threshold} must be between 1 and the number of keys ({})",
                    keys.len()
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
        })
    }
}
