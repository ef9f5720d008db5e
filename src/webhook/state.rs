//! The configuration in force, reloaded when its file changes; the last good one is kept when a
//! new one is invalid, and the error is reported (logs, metrics, `/readyz`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::config::Config;
use crate::verifier::{Verifier, VerifierSettings};

/// The verifier built from the configuration in force, and the last reload error.
pub struct ConfigState {
    path: PathBuf,
    settings: VerifierSettings,
    current: RwLock<(Arc<Verifier>, [u8; 32])>,
    last_error: RwLock<Option<String>>,
    /// The last refusal reported: the refused file's fingerprint (none when unreadable) and the
    /// error. The same refusal is reported once, not at every poll.
    rejected: RwLock<Option<(Option<[u8; 32]>, String)>>,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    Unchanged,
    Applied,
    /// The new file is invalid; the previous configuration stays in force.
    Rejected(String),
}

fn fingerprint(path: &Path) -> Result<[u8; 32], String> {
    crate::config::read_file(path)
        .map(|b| Sha256::digest(&b).into())
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn build(path: &Path, settings: VerifierSettings) -> Result<Verifier, String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    Verifier::new(Arc::new(config), settings).map_err(|e| format!("{}: {e}", path.display()))
}

impl ConfigState {
    /// Loads the configuration; an error here is fatal (the server does not start).
    pub fn load(path: &Path, settings: VerifierSettings) -> Result<ConfigState, String> {
        let print = fingerprint(path)?;
        let verifier = build(path, settings)?;
        Ok(ConfigState {
            path: path.to_owned(),
            settings,
            current: RwLock::new((Arc::new(verifier), print)),
            last_error: RwLock::new(None),
            rejected: RwLock::new(None),
        })
    }

    /// The verifier in force.
    pub fn verifier(&self) -> Arc<Verifier> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g.0),
            Err(poisoned) => Arc::clone(&poisoned.into_inner().0),
        }
    }

    /// The error of the last rejected reload, until a reload succeeds.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.read().ok().and_then(|g| g.clone())
    }

    /// Re-reads the file; applies it when its content changed and it is valid. Caches restart
    /// with a new configuration; the rollback memory of trust roots whose URL and pins are
    /// unchanged is carried over (`Verifier::remember_from`). Blocking.
    /// A refused file is built again at every poll (a key file it names may appear later) but
    /// reported once per distinct content and error; a file put back to the configuration in
    /// force clears the reported error.
    pub fn reload(&self) -> Reload {
        let print = match fingerprint(&self.path) {
            Ok(p) => p,
            Err(e) => return self.reject(None, e),
        };
        let same = self.current.read().map(|g| g.1 == print).unwrap_or(false);
        if same {
            self.clear_rejection();
            return Reload::Unchanged;
        }
        match build(&self.path, self.settings) {
            Ok(v) => {
                // Caches start afresh, but not the rollback memory of unchanged trust roots.
                let carried = v.remember_from(&self.verifier());
                tracing::debug!(repositories = carried, "rollback memory carried over");
                if let Ok(mut g) = self.current.write() {
                    *g = (Arc::new(v), print);
                }
                self.clear_rejection();
                Reload::Applied
            }
            Err(e) => self.reject(Some(print), e),
        }
    }

    fn reject(&self, print: Option<[u8; 32]>, e: String) -> Reload {
        if let Ok(mut r) = self.rejected.write() {
            let what = (print, e.clone());
            if r.as_ref() == Some(&what) {
                return Reload::Unchanged;
            }
            *r = Some(what);
        }
        if let Ok(mut last) = self.last_error.write() {
            *last = Some(e.clone());
        }
        Reload::Rejected(e)
    }

    fn clear_rejection(&self) {
        if let Ok(mut r) = self.rejected.write() {
            *r = None;
        }
        if let Ok(mut e) = self.last_error.write() {
            *e = None;
        }
    }

    /// Polls the file every `interval` (a ConfigMap mount swaps `..data` atomically, so the path
    /// is re-read rather than watched), calling `observe` with each reload's result.
    pub fn watch(
        self: &Arc<Self>,
        interval: Duration,
        observe: impl Fn(&Reload) + Send + Sync + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let state = Arc::clone(&me);
                // Building a verifier reads files: keep it off the async workers.
                let r = tokio::task::spawn_blocking(move || state.reload())
                    .await
                    .unwrap_or_else(|e| Reload::Rejected(format!("reload task failed: {e}")));
                if r != Reload::Unchanged {
                    observe(&r);
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const GOOD: &str = "trustRoots: []\npolicies: []\ndefaultAction: deny\n";

    #[test]
    fn a_refused_file_is_reported_once_and_putting_the_good_one_back_clears_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signgate.yaml");
        std::fs::write(&path, GOOD).unwrap();
        let state = ConfigState::load(&path, VerifierSettings::default()).unwrap();
        assert_eq!(state.reload(), Reload::Unchanged);

        std::fs::write(&path, format!("{GOOD}bogus: 1\n")).unwrap();
        assert!(matches!(state.reload(), Reload::Rejected(e) if e.contains("bogus")));
        // The same refused content is not reported again at every poll...
        assert_eq!(state.reload(), Reload::Unchanged);
        assert!(state.last_error().is_some_and(|e| e.contains("bogus")));
        // ...but different refused content is.
        std::fs::write(&path, format!("{GOOD}other: 1\n")).unwrap();
        assert!(matches!(state.reload(), Reload::Rejected(e) if e.contains("other")));

        // Back to the configuration in force: nothing to apply, nothing left to report.
        std::fs::write(&path, GOOD).unwrap();
        assert_eq!(state.reload(), Reload::Unchanged);
        assert_eq!(state.last_error(), None);

        // A missing file is reported once too, and the old configuration keeps serving.
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(state.reload(), Reload::Rejected(e) if e.contains("cannot read")));
        assert_eq!(state.reload(), Reload::Unchanged);
        std::fs::write(&path, GOOD.replace("deny", "allow")).unwrap();
        assert_eq!(state.reload(), Reload::Applied);
        assert_eq!(state.last_error(), None);

        // A root key file that is not there yet (a Secret mounted after the ConfigMap): refused
        // once, and applied when the key file appears, the configuration file untouched.
        let key = dir.path().join("root.pem");
        std::fs::write(
            &path,
            "trustRoots:\n  - name: t\n    notary:\n      url: https://n.example.com\n      rootKeyFiles: [root.pem]\npolicies: []\n",
        )
        .unwrap();
        assert!(matches!(state.reload(), Reload::Rejected(e) if e.contains("root.pem")));
        assert_eq!(state.reload(), Reload::Unchanged);
        std::fs::write(&key, ROOT_KEY).unwrap();
        assert_eq!(state.reload(), Reload::Applied);
    }

    /// A real root certificate (any pin will do: nothing is verified here).
    const ROOT_KEY: &str = include_str!("../../tests/fixtures/interop/signed/root-key.pem");
}
