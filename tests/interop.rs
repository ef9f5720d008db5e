//! Interop with the reference implementation: trust data published by the real notary CLI and
//! served by the real notary-server (`scripts/gen-fixtures`), checked against the verdicts the
//! reference client gave, through the library and through `signgate verify --offline`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use signgate::notary::{self, Limits, PinnedKey, Reason, RoleRule, TrustState, VerifyContext};
use signgate::reference::Reference;
use signgate::upstream::DirSource;

#[derive(Deserialize)]
struct Cases {
    cases: std::collections::BTreeMap<String, Case>,
}

#[derive(Deserialize)]
struct Case {
    dir: String,
    gun: String,
    now: String,
    root_key: String,
    checks: Vec<Check>,
}

#[derive(Deserialize)]
struct Check {
    name: String,
    image: String,
    expect: String,
    digest: Option<String>,
    role: Option<String>,
    reason: Option<String>,
    #[serde(default)]
    require_roles: Vec<String>,
    root_key: Option<String>,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/interop")
}

fn load() -> Cases {
    load_from(&fixtures())
}

fn load_from(root: &Path) -> Cases {
    let text = std::fs::read_to_string(root.join("cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn pins(dir: &Path, file: &str) -> Vec<PinnedKey> {
    PinnedKey::from_pem(&std::fs::read(dir.join(file)).unwrap()).unwrap()
}

fn verify(
    dir: &Path,
    pins: &[PinnedKey],
    now: OffsetDateTime,
    image: &str,
    rule: &RoleRule,
) -> Result<notary::VerifiedTarget, notary::TrustError> {
    let reference = Reference::parse(image).unwrap();
    let gun = reference.gun();
    let previous = TrustState::default();
    let ctx = VerifyContext {
        gun: &gun,
        pins,
        now,
        previous: &previous,
        limits: Limits::default(),
    };
    notary::verify_image(&ctx, &DirSource::new(dir), &reference, rule).map(|(t, _)| t)
}

fn rule(check: &Check) -> RoleRule {
    if check.require_roles.is_empty() {
        RoleRule::Docker
    } else {
        RoleRule::Require(check.require_roles.clone())
    }
}

#[test]
fn library_gives_the_reference_clients_verdict() {
    library_matches_reference_client(&fixtures());
}

/// Publishes fresh trust data with the real notary CLI against real servers started for this
/// test, and checks it like the committed set: the verifier keeps up with what notary writes today.
#[test]
fn library_gives_the_reference_clients_verdict_on_freshly_published_data() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("interop");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen-fixtures");
    let mut child = Command::new("bash")
        .arg(&script)
        .env("SIGNGATE_FIXTURES_OUT", &out)
        .env("SIGNGATE_NO_INSTALL", "1")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("scripts/gen-fixtures did not finish within 300 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(
        status.success(),
        "scripts/gen-fixtures failed (its log is above); it needs the Debian packages that scripts/test installs"
    );
    library_matches_reference_client(&out);
}

fn library_matches_reference_client(root: &Path) {
    let cases = load_from(root);
    assert!(cases.cases.len() >= 4, "fixture cases are missing");
    let mut checked = 0;
    for case in cases.cases.values() {
        let dir = root.join(&case.dir);
        let now = OffsetDateTime::parse(&case.now, &Rfc3339).unwrap();
        for check in &case.checks {
            let pins = pins(&dir, check.root_key.as_deref().unwrap_or(&case.root_key));
            let got = verify(&dir, &pins, now, &check.image, &rule(check));
            let label = format!("{}/{}", case.dir, check.name);
            match check.expect.as_str() {
                "trusted" => {
                    let t = got.unwrap_or_else(|e| {
                        panic!("{label}: expected trusted, got {}: {e}", e.reason())
                    });
                    assert_eq!(
                        Some(t.digest().as_str()),
                        check.digest.as_deref(),
                        "{label}"
                    );
                    assert_eq!(
                        Some(t.roles().join(",").as_str()),
                        check.role.as_deref(),
                        "{label}"
                    );
                    assert_eq!(t.gun(), case.gun, "{label}");
                }
                _ => {
                    let e = got
                        .err()
                        .unwrap_or_else(|| panic!("{label}: expected untrusted"));
                    assert_eq!(
                        Some(e.reason().as_str()),
                        check.reason.as_deref(),
                        "{label}: {e}"
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} checks ran");
}

#[test]
fn cli_gives_the_reference_clients_verdict_and_exit_code() {
    let cases = load();
    for case in cases.cases.values() {
        let dir = fixtures().join(&case.dir);
        for check in &case.checks {
            let label = format!("{}/{}", case.dir, check.name);
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_signgate"));
            cmd.args(["verify", "--offline"])
                .arg(&dir)
                .arg("--root-key")
                .arg(dir.join(check.root_key.as_deref().unwrap_or(&case.root_key)))
                .args(["--now", &case.now, "--output", "json", &check.image]);
            for r in &check.require_roles {
                cmd.args(["--require-role", r]);
            }
            let out = cmd.output().unwrap();
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!(
                    "{label}: stdout is not JSON ({e}): {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
            if check.expect == "trusted" {
                assert_eq!(out.status.code(), Some(0), "{label}: {doc}");
                assert_eq!(doc["trusted"], true, "{label}");
                assert_eq!(doc["digest"].as_str(), check.digest.as_deref(), "{label}");
                assert_eq!(doc["role"].as_str(), check.role.as_deref(), "{label}");
            } else {
                assert_eq!(out.status.code(), Some(1), "{label}: {doc}");
                assert_eq!(doc["trusted"], false, "{label}");
                assert_eq!(doc["reason"].as_str(), check.reason.as_deref(), "{label}");
            }
        }
    }
}

/// The image the "signed" case signs in `targets/releases`.
const V29: &str = "registry.ai-team.internal/ml/pytorch-cuda:v2.9";

/// [`verify`] of [`V29`] under docker's rule.
fn verify_v29(
    dir: &Path,
    pins: &[PinnedKey],
    now: OffsetDateTime,
) -> Result<notary::VerifiedTarget, notary::TrustError> {
    verify(dir, pins, now, V29, &RoleRule::Docker)
}

/// [`verify_v29`], which must refuse: the reason, and the role it names.
fn refusal_v29(dir: &Path, pins: &[PinnedKey], now: OffsetDateTime) -> (Reason, Option<String>) {
    let err = verify_v29(dir, pins, now).unwrap_err();
    (err.reason(), err.role_name().map(str::to_owned))
}

/// `verify --offline DIR --root-key KEY` followed by `rest`.
fn offline_args<'a>(dir: &'a str, key: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["verify", "--offline", dir, "--root-key", key];
    args.extend_from_slice(rest);
    args
}

fn signed_case() -> (PathBuf, OffsetDateTime, Vec<PinnedKey>) {
    let cases = load();
    let case = &cases.cases["signed"];
    let dir = fixtures().join(&case.dir);
    let now = OffsetDateTime::parse(&case.now, &Rfc3339).unwrap();
    let p = pins(&dir, &case.root_key);
    (dir, now, p)
}

#[test]
fn real_trust_data_freezes_after_the_timestamp_expires() {
    let (dir, now, pins) = signed_case();
    assert!(verify_v29(&dir, &pins, now + time::Duration::days(13)).is_ok());
    assert_eq!(
        refusal_v29(&dir, &pins, now + time::Duration::days(15)),
        (Reason::Expired, Some("timestamp".to_owned()))
    );
}

#[test]
fn real_trust_data_with_one_flipped_byte_is_refused() {
    let (dir, now, pins) = signed_case();
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&dir, copy.path());
    let path = copy.path().join("targets/releases.json");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.iter().position(|&b| b == b'=').unwrap();
    bytes[at - 1] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(
        refusal_v29(copy.path(), &pins, now),
        (Reason::HashMismatch, Some("targets/releases".to_owned()))
    );
}

#[test]
fn inspect_root_prints_the_key_an_admin_pins() {
    let (dir, _, pins) = signed_case();
    // The current root (v2 after the server took the snapshot key) keeps the original root key.
    let out = Command::new(env!("CARGO_BIN_EXE_signgate"))
        .args(["inspect-root", "--output", "json"])
        .arg(dir.join("root.json"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = &doc["keys"][0];
    assert_eq!(
        key["canonical_key_id"].as_str(),
        Some(pins[0].canonical_id())
    );
    assert_eq!(
        key["common_name"].as_str(),
        Some("registry.ai-team.internal/ml/pytorch-cuda")
    );
    assert_eq!(key["keytype"].as_str(), Some("ecdsa-x509"));
    let printed = PinnedKey::from_pem(key["public_key_pem"].as_str().unwrap().as_bytes()).unwrap();
    assert_eq!(printed, pins);
}

#[test]
fn cli_reports_usage_errors_with_exit_code_2() {
    let (dir, now, _) = signed_case();
    let now = now.format(&Rfc3339).unwrap();
    let bin = env!("CARGO_BIN_EXE_signgate");
    let image = V29;
    let run = |args: &[&str]| Command::new(bin).args(args).output().unwrap();
    let dir_s = dir.to_str().unwrap();
    let key = dir.join("root-key.pem");
    let key_s = key.to_str().unwrap();
    for (args, needle) in [
        (
            offline_args("/nonexistent", key_s, &[image]),
            "/nonexistent",
        ),
        (
            offline_args(dir_s, "/nonexistent.pem", &[image]),
            "/nonexistent.pem",
        ),
        (
            offline_args(dir_s, dir.join("root.json").to_str().unwrap(), &[image]),
            "root.json",
        ),
        (
            offline_args(dir_s, key_s, &["--now", "yesterday", image]),
            "--now",
        ),
        (
            offline_args(dir_s, key_s, &["Registry/UPPER:x"]),
            "Registry/UPPER",
        ),
        (vec!["verify", "--offline", dir_s, image], "--root-key"),
        (
            offline_args(dir_s, key_s, &["--require-role", "Bad Role", image]),
            "Bad Role",
        ),
        (
            vec!["inspect-root", "/nonexistent/root.json"],
            "/nonexistent/root.json",
        ),
        (vec!["inspect-root", key_s], "root-key.pem"),
        (
            offline_args(dir_s, key_s, &["--now", &now, "--output", "yaml", image]),
            "yaml",
        ),
    ] {
        let out = run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(needle),
            "{args:?}: stderr does not name {needle:?}: {err}"
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
