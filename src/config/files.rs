//! Files the configuration names (itself, root key files, CA bundles, credentials), read with a
//! cap and recorded, so a reload can tell when any of them changed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sha2::Digest as _;

pub const MAX_FILE: u64 = 4 * 1024 * 1024;

/// Reads a local file the configuration names, refusing one larger than [`MAX_FILE`] (a
/// mistaken path to a device or a huge file must not exhaust memory). Every file a configuration
/// puts to work is read here, so [`record_reads`] sees all of them.
pub(crate) fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let result = read_capped(path);
    READS.with(|r| {
        if let Some(reads) = r.borrow_mut().as_mut() {
            let seen = result.as_ref().ok().map(|b| sha2::Sha256::digest(b).into());
            reads.push((path.to_owned(), seen));
        }
    });
    result
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

/// A file read and the sha256 of what was read (`None`: it could not be read).
type Read = (PathBuf, Option<[u8; 32]>);

thread_local! {
    /// The reads [`record_reads`] is collecting on this thread.
    static READS: std::cell::RefCell<Option<Vec<Read>>> = const { std::cell::RefCell::new(None) };
}

/// The files something read through [`read_file`], each with the sha256 of what was read (`None`:
/// it could not be read). A configuration's reload compares them with the files as they are now:
/// the configuration file, root key files, CA bundles, password and docker config files alike.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSet(Vec<Read>);

impl FileSet {
    /// Whether any file now differs from what was read (content, or readable or not). Follows
    /// symlinks, so a Secret or ConfigMap mount's `..data` swap is a change.
    pub fn changed(&self) -> bool {
        self.0.iter().any(|(path, seen)| {
            let now = read_capped(path)
                .ok()
                .map(|b| sha2::Sha256::digest(&b).into());
            now != *seen
        })
    }

    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.0.iter().map(|(p, _)| p.as_path())
    }
}

/// Runs `f` on this thread and returns what it read through [`read_file`].
pub(crate) fn record_reads<T>(f: impl FnOnce() -> T) -> (T, FileSet) {
    let outer = READS.with(|r| r.borrow_mut().replace(Vec::new()));
    let out = f();
    let reads = READS.with(|r| std::mem::replace(&mut *r.borrow_mut(), outer));
    let mut reads = reads.unwrap_or_default();
    // A file read twice counts once, as first read.
    let mut seen = BTreeSet::new();
    reads.retain(|(p, _)| seen.insert(p.clone()));
    (out, FileSet(reads))
}
