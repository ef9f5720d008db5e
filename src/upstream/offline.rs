//! Trust data from a directory, laid out as notary serves it: `root.json`, `timestamp.json`,
//! `snapshot.json`, `targets.json`, `targets/<name>.json`, `N.root.json`.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use crate::notary::{MetadataSource, Reason, TrustError};

/// A directory of one repository's metadata files.
#[derive(Debug, Clone)]
pub struct DirSource {
    dir: PathBuf,
}

impl DirSource {
    /// The repository's directory (`<offlineDir>/<GUN>`); nothing is read yet.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DirSource { dir: dir.into() }
    }

    /// The directory files are read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl MetadataSource for DirSource {
    fn fetch(&self, name: &str, cap: usize) -> Result<Option<Vec<u8>>, TrustError> {
        // Names come from notary's file naming and validated delegation names; refuse anything
        // that could leave the directory all the same.
        if name
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(TrustError::new(
                Reason::MalformedMetadata,
                None,
                format!("refusing metadata file name {name:?}"),
            ));
        }
        let path = self.dir.join(name);
        // Only regular files: a FIFO or device would block or never end.
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => {
                return Err(TrustError::new(
                    Reason::MalformedMetadata,
                    None,
                    format!("{} is not a regular file", path.display()),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(_) => {}
        }
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(TrustError::new(
                    Reason::MissingMetadata,
                    None,
                    format!("cannot read {}: {e}", path.display()),
                ));
            }
        };
        let mut bytes = Vec::new();
        let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
        file.take(limit).read_to_end(&mut bytes).map_err(|e| {
            TrustError::new(
                Reason::MissingMetadata,
                None,
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        if bytes.len() > cap {
            return Err(TrustError::new(
                Reason::TooLarge,
                None,
                format!("{} is larger than its {cap}-byte cap", path.display()),
            ));
        }
        Ok(Some(bytes))
    }
}
