//! Replays every seed and regression input of the fuzz targets (`fuzz/corpus/<target>/*`) through
//! the same harness functions the cargo-fuzz targets call (`fuzz/src/lib.rs`), on stable. A panic
//! (a crash or a broken property: no panic on input, canonical JSON idempotence, literal globs
//! anchored, normalisation a fixpoint, no forged trust) fails this test, naming the file.
//!
//! Fuzzing itself needs nightly: `scripts/fuzz [SECONDS]`.

#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::path::Path;

fn corpus_files(target: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let (_, run) = harness::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap();
    let files = corpus_files(target);
    assert!(!files.is_empty(), "fuzz/corpus/{target} is empty");
    let mut failed = Vec::new();
    for path in &files {
        let data = std::fs::read(path).unwrap();
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} corpus inputs panicked: {failed:#?}",
        failed.len(),
        files.len()
    );
}

#[test]
fn every_target_has_a_corpus() {
    for (name, _) in harness::TARGETS {
        assert!(
            !corpus_files(name).is_empty(),
            "fuzz/corpus/{name} is empty"
        );
    }
}

#[test]
fn admission_review_corpus() {
    replay("admission_review");
}

#[test]
fn image_reference_corpus() {
    replay("image_reference");
}

#[test]
fn metadata_corpus() {
    replay("metadata");
}

#[test]
fn verify_repository_corpus() {
    replay("verify_repository");
}

#[test]
fn canonical_json_corpus() {
    replay("canonical_json");
}

#[test]
fn config_corpus() {
    replay("config");
}

#[test]
fn notation_corpus() {
    replay("notation");
}

#[test]
fn cosign_corpus() {
    replay("cosign");
}

/// The genuine interop set verifies through the harness, so the "no forged trust" property of
/// `verify_repository` is not vacuous: v2.9 and the tag@digest form are trusted, unsigned is not.
#[test]
fn verify_harness_baseline_trusts_the_genuine_set() {
    let base = harness::baseline();
    let v29 =
        Some("sha256:61cae772b405f5cdc99fb9f3f911955b08db4825bb0be561d56d91f56afa11a9".to_owned());
    assert_eq!(base[&(0, 0)], v29, "v2.9 under docker's rule");
    assert_eq!(base[&(6, 0)], v29, "v2.9@digest under docker's rule");
    assert_eq!(base[&(4, 0)], None, "unsigned");
    assert_eq!(base[&(3, 0)], None, "ci-only is signed by targets/ci only");
}
