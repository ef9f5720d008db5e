//! Files the configuration names (itself, root key files, CA bundles, credentials), read with a
//! cap and recorded, so a reload can tell when any of them changed.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sha2::Digest as _;

/// Largest file the configuration may name, in bytes (4 MiB); a larger one is refused.
pub const MAX_FILE: u64 = 4 * 1024 * 1024;

/// What building a configuration read, recorded as it was read: every function that reads a
/// file the configuration names (itself, root keys, CA bundles, credentials, trust stores,
/// trusted roots) is handed this and reads through it, so a reload knows what to watch. Each file
/// is read with a cap of [`MAX_FILE`] (a mistaken path to a device or a huge file must not exhaust
/// memory).
#[derive(Debug, Default)]
pub(crate) struct Reads(RefCell<Vec<Read>>);

impl Reads {
    pub(crate) fn new() -> Reads {
        Reads::default()
    }

    /// Reads the file at `path`, refusing one larger than [`MAX_FILE`], and records it.
    pub(crate) fn file(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        let result = read_capped(path);
        let seen = result.as_ref().ok().map(|b| sha2::Sha256::digest(b).into());
        self.record(path, ReadKind::File, seen);
        result
    }

    /// The regular files directly in `dir`, sorted, at most `cap + 1` of them (the caller refuses
    /// more than `cap`), recorded: a file added to or removed from a directory the configuration
    /// reads as a whole (Notation's trust store layout) is a change, as an edited file is.
    pub(crate) fn dir(&self, dir: &Path, cap: usize) -> std::io::Result<Vec<PathBuf>> {
        let result = listing(dir, cap);
        let seen = result.as_ref().ok().map(|l| listing_digest(l));
        self.record(dir, ReadKind::Listing { cap }, seen);
        result
    }

    fn record(&self, path: &Path, kind: ReadKind, seen: Option<[u8; 32]>) {
        self.0.borrow_mut().push((path.to_owned(), kind, seen));
    }

    /// What was read, each path once (as first read).
    pub(crate) fn into_files(self) -> FileSet {
        let mut reads = self.0.into_inner();
        let mut seen = BTreeSet::new();
        reads.retain(|(p, kind, _)| seen.insert((p.clone(), *kind != ReadKind::File)));
        FileSet(reads)
    }
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

/// What was read at a path: a file's bytes, or a directory's listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadKind {
    File,
    /// The listing of at most `cap + 1` files.
    Listing {
        cap: usize,
    },
}

/// A file or directory read and the sha256 of what was read (`None`: it could not be read).
type Read = (PathBuf, ReadKind, Option<[u8; 32]>);

fn listing(dir: &Path, cap: usize) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .take(cap.saturating_add(1))
        .collect();
    files.sort();
    Ok(files)
}

fn listing_digest(files: &[PathBuf]) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    for f in files {
        h.update(f.as_os_str().as_encoded_bytes());
        h.update([0u8]);
    }
    h.finalize().into()
}

/// The files a configuration read ([`Reads`]), each with the sha256 of what was read (`None`:
/// it could not be read). A configuration's reload compares them with the files as they are now:
/// the configuration file, root key files, CA bundles, password and docker config files alike.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSet(Vec<Read>);

impl FileSet {
    /// Whether any file now differs from what was read (content, or readable or not), or any
    /// directory listed now lists other files. Follows symlinks, so a Secret or ConfigMap mount's
    /// `..data` swap is a change.
    pub fn changed(&self) -> bool {
        self.0.iter().any(|(path, kind, seen)| {
            let now = match kind {
                ReadKind::File => read_capped(path)
                    .ok()
                    .map(|b| sha2::Sha256::digest(&b).into()),
                ReadKind::Listing { cap } => listing(path, *cap).ok().map(|l| listing_digest(&l)),
            };
            now != *seen
        })
    }

    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.0.iter().map(|(p, _, _)| p.as_path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dir` listed through a fresh [`Reads`], and what that recorded.
    fn list(dir: &Path, cap: usize) -> (std::io::Result<Vec<PathBuf>>, FileSet) {
        let reads = Reads::new();
        let listed = reads.dir(dir, cap);
        (listed, reads.into_files())
    }

    #[test]
    fn a_listed_directory_changes_when_a_file_is_added_or_removed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.pem"), b"a").unwrap();
        let (listed, files) = list(dir.path(), 4);
        assert_eq!(listed.unwrap(), vec![dir.path().join("a.pem")]);
        assert!(!files.changed(), "nothing changed yet");

        std::fs::write(dir.path().join("b.pem"), b"b").unwrap();
        assert!(files.changed(), "a file added to the directory");

        let (_, files) = list(dir.path(), 4);
        assert!(!files.changed());
        std::fs::remove_file(dir.path().join("a.pem")).unwrap();
        assert!(files.changed(), "a file removed from the directory");
    }

    #[test]
    fn a_directory_that_could_not_be_listed_changes_when_it_appears() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("x509/ca/acme");
        let (listed, files) = list(&store, 4);
        assert!(listed.is_err());
        assert!(!files.changed());
        std::fs::create_dir_all(&store).unwrap();
        assert!(files.changed(), "the directory now exists");
    }

    #[test]
    fn a_listing_past_its_cap_stays_unchanged_while_the_directory_does() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..6 {
            std::fs::write(dir.path().join(format!("{i}.pem")), b"x").unwrap();
        }
        let (listed, files) = list(dir.path(), 2);
        assert_eq!(
            listed.unwrap().len(),
            3,
            "cap + 1 files, for the caller to refuse"
        );
        assert!(
            !files.changed(),
            "no rebuild at every poll for an oversized store"
        );
    }
}
