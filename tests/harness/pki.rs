//! Throwaway certificates made with the `openssl` CLI in a directory: P-256 keys, a self-signed CA,
//! leaves it issues. For the lab (`harness`), the hostile servers (`tests/faults`) and the serving
//! tests (`tests/server.rs`), which include this file on its own.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `openssl ARGS` in `dir` (stdin closed); panics with its stderr unless it exits 0; returns
/// its stdout.
pub fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    run_checked(Command::new("openssl").args(args).current_dir(dir))
}

/// Runs a short helper command (stdin closed); panics with its stderr unless it exits 0; returns
/// its stdout.
pub fn run_checked(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (run scripts/test)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A new P-256 key (SEC1 PEM) at `out`, relative to `dir` (or absolute).
pub fn genkey_p256(dir: &Path, out: impl AsRef<OsStr>) {
    run_checked(
        Command::new("openssl")
            .args([
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
            ])
            .arg(out)
            .current_dir(dir),
    );
}

/// A throwaway CA in `dir`: P-256 key `<stem>.key` and self-signed `<stem>.crt` for `subj`.
pub fn make_ca(dir: &Path, stem: &str, subj: &str, days: u32) {
    let key = format!("{stem}.key");
    genkey_p256(dir, &key);
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            &key,
            "-sha256",
            "-days",
            &days.to_string(),
            "-subj",
            subj,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            &format!("{stem}.crt"),
        ],
    );
}

/// `<name>.key` (P-256) and `<name>.crt` for `subj` with the extensions `ext` (kept as
/// `<name>.ext`), issued by `<ca>.crt`/`<ca>.key` in `dir`.
pub fn issue_cert(dir: &Path, ca: &str, name: &str, subj: &str, ext: &str, days: u32) {
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    let ext_file = format!("{name}.ext");
    genkey_p256(dir, &key);
    openssl(
        dir,
        &["req", "-new", "-key", &key, "-subj", subj, "-out", &csr],
    );
    std::fs::write(dir.join(&ext_file), ext).expect("ext file");
    sign_csr(dir, ca, &csr, &ext_file, days, &format!("{name}.crt"));
}

/// The certificate `out` for the request `csr` with the extensions in `ext_file`, issued (SHA-256)
/// by `<ca>.crt`/`<ca>.key` in `dir`.
pub fn sign_csr(dir: &Path, ca: &str, csr: &str, ext_file: &str, days: u32, out: &str) {
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            &days.to_string(),
            "-sha256",
            "-extfile",
            ext_file,
            "-out",
            out,
        ],
    );
}
