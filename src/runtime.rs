//! Runtime wiring: the configuration in force put to work (its [`Verifier`]), reloaded when its
//! file or any file it names changes (root keys, CA bundles, credentials); the last good one is
//! kept when a new one is invalid, and the error is reported (logs, metrics, `/readyz`). It sits
//! above [`crate::config`] (which only reads and validates) and [`crate::verifier`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::config::{Config, FileSet, Reads};
use crate::policy::Kind;
use crate::verifier::{Verifier, VerifierSettings};

/// The verifier built from the configuration in force, and the last reload error.
pub struct ConfigState {
    path: PathBuf,
    settings: VerifierSettings,
    /// The verifier in force and every file that went into it.
    current: RwLock<(Arc<Verifier>, FileSet)>,
    last_error: RwLock<Option<String>>,
    /// The last refusal reported: the files the refused build read, and the error. The same
    /// refusal is reported once, not at every poll.
    rejected: RwLock<Option<(FileSet, String)>>,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// No file it read changed.
    Unchanged,
    /// A new configuration is in force.
    Applied,
    /// The new file is invalid; the previous configuration stays in force.
    Rejected(String),
}

/// Builds the verifier, recording every file it read.
fn build(path: &Path, settings: &VerifierSettings) -> (Result<Verifier, String>, FileSet) {
    let reads = Reads::new();
    let verifier = Config::load_recorded(path, &reads)
        .map_err(|e| e.to_string())
        .and_then(|config| {
            Verifier::new_recorded(Arc::new(config), settings.clone(), &reads)
                .map_err(|e| format!("{}: {e}", path.display()))
        });
    (verifier, reads.into_files())
}

/// The trust roots of the configuration in force, for metrics: their series start at zero, and
/// the expiry series of roots no longer configured go.
fn declare_trust_roots(settings: &VerifierSettings, verifier: &Verifier) {
    let roots: Vec<(&str, Kind)> = verifier
        .config()
        .trust_roots()
        .iter()
        .map(|t| (t.name.as_str(), t.kind()))
        .collect();
    settings.metrics.set_trust_roots(&roots);
}

impl ConfigState {
    /// Loads the configuration; an error here is fatal (the server does not start).
    pub fn load(path: &Path, settings: VerifierSettings) -> Result<ConfigState, String> {
        let (verifier, files) = build(path, &settings);
        let verifier = verifier?;
        declare_trust_roots(&settings, &verifier);
        Ok(ConfigState {
            path: path.to_owned(),
            settings,
            current: RwLock::new((Arc::new(verifier), files)),
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
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error.read().ok().and_then(|g| g.clone())
    }

    /// Re-reads the configuration file and every file it names (root keys, CA bundles, password
    /// and docker config files); when any changed, builds the configuration again and applies it
    /// if valid. Caches restart with a new configuration; the rollback memory of trust roots whose
    /// URL and pins are unchanged is carried over (`Verifier::remember_from`). Blocking.
    /// A refused build is tried again at every poll (a key file it names may appear later) but
    /// reported once per distinct files and error; files put back to the configuration in force
    /// clear the reported error.
    pub fn reload(&self) -> Reload {
        let changed = self.current.read().map(|g| g.1.changed()).unwrap_or(true);
        if !changed {
            self.clear_rejection();
            return Reload::Unchanged;
        }
        match build(&self.path, &self.settings) {
            (Ok(v), files) => {
                // Caches start afresh, but not the rollback memory of unchanged trust roots.
                let carried = v.remember_from(&self.verifier());
                declare_trust_roots(&self.settings, &v);
                tracing::debug!(repositories = carried, "rollback memory carried over");
                if let Ok(mut g) = self.current.write() {
                    *g = (Arc::new(v), files);
                }
                self.clear_rejection();
                Reload::Applied
            }
            (Err(e), files) => self.reject(files, e),
        }
    }

    /// The files the configuration in force was built from.
    pub fn files(&self) -> FileSet {
        self.current.read().map(|g| g.1.clone()).unwrap_or_default()
    }

    fn reject(&self, files: FileSet, e: String) -> Reload {
        if let Ok(mut r) = self.rejected.write() {
            let what = (files, e.clone());
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

    /// Polls the files every `interval` (a ConfigMap or Secret mount swaps `..data` atomically, so
    /// paths are re-read rather than watched), calling `observe` with each reload's result.
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

    fn pins(state: &ConfigState) -> Vec<crate::notary::PinnedKey> {
        state.verifier().config().trust_roots()[0]
            .notary()
            .unwrap()
            .root_keys
            .clone()
    }

    /// Every file the configuration names is watched, not only the configuration: a rotated root
    /// key file (written in place, or swapped as kubelet swaps a Secret's `..data` symlink) and a
    /// rotated password file are applied at the next poll, the configuration file untouched.
    #[test]
    fn a_rotated_key_or_password_file_is_applied_at_the_next_poll() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // A Secret mount: root.pem -> ..data/root.pem, ..data -> ..2026_12_01 (a directory).
        std::fs::create_dir(d.join("..2026_12_01")).unwrap();
        std::fs::write(d.join("..2026_12_01/root.pem"), ROOT_KEY).unwrap();
        std::os::unix::fs::symlink("..2026_12_01", d.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/root.pem", d.join("root.pem")).unwrap();
        std::fs::write(d.join("password"), "first\n").unwrap();
        let path = d.join("signgate.yaml");
        std::fs::write(
            &path,
            "trustRoots:\n  - name: t\n    notary:\n      url: https://n.example.com\n      rootKeyFiles: [root.pem]\nregistries:\n  - host: reg.example.com\n    credentials: { username: ci, passwordFile: password }\npolicies: []\n",
        )
        .unwrap();
        let state = ConfigState::load(&path, VerifierSettings::default()).unwrap();
        let names: Vec<_> = state
            .files()
            .paths()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["signgate.yaml", "root.pem", "password"]);
        let first = pins(&state);
        assert_eq!(state.reload(), Reload::Unchanged);

        // The Secret is updated: a new directory, and `..data` swapped to it.
        std::fs::create_dir(d.join("..2026_12_02")).unwrap();
        std::fs::write(d.join("..2026_12_02/root.pem"), OTHER_KEY).unwrap();
        std::os::unix::fs::symlink("..2026_12_02", d.join("..data_tmp")).unwrap();
        std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
        assert_eq!(state.reload(), Reload::Applied);
        let second = pins(&state);
        assert_ne!(first, second, "the old pin is still in force");
        assert_eq!(state.reload(), Reload::Unchanged);

        // The file written in place.
        std::fs::write(d.join("..2026_12_02/root.pem"), ROOT_KEY).unwrap();
        assert_eq!(state.reload(), Reload::Applied);
        assert_eq!(pins(&state), first);

        // A rotated pull credential.
        std::fs::write(d.join("password"), "second\n").unwrap();
        assert_eq!(state.reload(), Reload::Applied);
        assert_eq!(state.reload(), Reload::Unchanged);

        // A key file that breaks: refused once, the last good pins keep serving.
        std::fs::write(d.join("..2026_12_02/root.pem"), "not a key").unwrap();
        assert!(matches!(state.reload(), Reload::Rejected(e) if e.contains("root.pem")));
        assert_eq!(state.reload(), Reload::Unchanged);
        assert_eq!(pins(&state), first);
    }

    /// A trust root removed by a reload takes its trust data expiry series with it: a gauge left
    /// behind would fire the expiry alert for data nobody uses.
    #[test]
    fn a_reload_drops_the_expiry_series_of_removed_trust_roots() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signgate.yaml");
        std::fs::write(dir.path().join("root.pem"), ROOT_KEY).unwrap();
        let config = |names: &[&str]| {
            let roots: String = names
                .iter()
                .map(|n| format!("  - name: {n}\n    notary:\n      url: https://n.example.com\n      rootKeyFiles: [root.pem]\n"))
                .collect();
            format!("trustRoots:\n{roots}policies: []\n")
        };
        std::fs::write(&path, config(&["kept", "removed"])).unwrap();
        let settings = VerifierSettings::default();
        let metrics = std::sync::Arc::clone(&settings.metrics);
        let state = ConfigState::load(&path, settings).unwrap();
        let series = |root: &str| {
            metrics.encode().lines().any(|l| {
                l.starts_with("signgate_trust_data_expiry_timestamp_seconds{")
                    && l.contains(&format!("trust_root=\"{root}\""))
            })
        };
        for root in ["kept", "removed"] {
            assert!(metrics.trust_expiry(root, "reg.example.com/ml/x", "targets", 2_000_000_000));
            assert!(series(root));
        }
        std::fs::write(&path, config(&["kept"])).unwrap();
        assert_eq!(state.reload(), Reload::Applied);
        assert!(series("kept"));
        assert!(!series("removed"), "{}", metrics.encode());
    }

    /// A real root certificate (any pin will do: nothing is verified here).
    const ROOT_KEY: &str = include_str!("../tests/fixtures/interop/signed/root-key.pem");
    /// Another repository's root certificate.
    const OTHER_KEY: &str = include_str!("../tests/fixtures/interop/other-root/root-key.pem");
}
