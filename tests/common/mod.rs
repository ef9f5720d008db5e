//! Builds signed Notary v1 repositories in memory, the way notary lays them out, so each attack
//! on the trust core is one readable function: change a body or the bytes, re-sign what an
//! attacker could re-sign, and check the verdict.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use der::EncodePem as _;
use p256::ecdsa::signature::Signer as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256, Sha512};
use spki::EncodePublicKey as _;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use signgate::notary::{Limits, PinnedKey, TrustState, VerifyContext};
use signgate::tuf::canonical;

pub const GUN: &str = "registry.ai-team.internal/ml/pytorch-cuda";

/// The committed `signed` interop set (tests/fixtures/interop: real notary output, root rotated
/// once, targets and the delegations targets/releases and targets/ci) and its case in cases.json.
pub struct Interop {
    /// Every metadata file, by notary's name (`root.json`, `1.root.json`, `targets/ci.json`, …).
    pub files: BTreeMap<String, Vec<u8>>,
    /// The pinned root key (`root-key.pem`).
    pub pins: Vec<PinnedKey>,
    /// The time the case says the set is valid at.
    pub now: OffsetDateTime,
    /// `cases.json`'s `signed` case: its `now` and its `checks`.
    pub case: Value,
}

impl Interop {
    /// The context to verify the set's repository ([`GUN`]) in: its pins, its `now`, default
    /// limits, and `previous` (use a default [`TrustState`] for a first verification).
    pub fn context<'a>(&'a self, previous: &'a TrustState) -> VerifyContext<'a> {
        VerifyContext {
            gun: GUN,
            pins: &self.pins,
            now: self.now,
            previous,
            limits: Limits::default(),
        }
    }
}

/// The `signed` interop set, read from tests/fixtures/interop.
pub fn interop_signed() -> Interop {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/interop");
    let cases: Value =
        serde_json::from_slice(&std::fs::read(root.join("cases.json")).unwrap()).unwrap();
    let case = cases["cases"]["signed"].clone();
    let dir = root.join("signed");
    let files = [
        "root.json",
        "1.root.json",
        "2.root.json",
        "timestamp.json",
        "snapshot.json",
        "targets.json",
        "targets/releases.json",
        "targets/ci.json",
    ]
    .into_iter()
    .map(|name| (name.to_owned(), std::fs::read(dir.join(name)).unwrap()))
    .collect();
    Interop {
        files,
        pins: PinnedKey::from_pem(&std::fs::read(dir.join("root-key.pem")).unwrap()).unwrap(),
        now: OffsetDateTime::parse(case["now"].as_str().unwrap(), &Rfc3339).unwrap(),
        case,
    }
}

/// The fixed clock every generated repository is valid at.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::parse("2026-11-28T12:00:00Z", &Rfc3339).unwrap()
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

pub fn days(n: i64) -> time::Duration {
    time::Duration::days(n)
}

/// A signing key of one of notary's types.
#[derive(Clone)]
pub enum Key {
    /// `ecdsa` (targets, delegations, client-side snapshot).
    P256(p256::ecdsa::SigningKey),
    /// `ecdsa-x509`: a P-256 key with a self-signed certificate (root keys).
    P256Cert(p256::ecdsa::SigningKey, String),
    /// `ed25519` (server-held timestamp and snapshot).
    Ed25519(ed25519_dalek::SigningKey),
}

pub fn p256_key(seed: u8) -> p256::ecdsa::SigningKey {
    let mut b = [seed; 32];
    b[0] = 0x01; // stay below the curve order
    p256::ecdsa::SigningKey::from_slice(&b).unwrap()
}

impl Key {
    pub fn ecdsa(seed: u8) -> Key {
        Key::P256(p256_key(seed))
    }

    pub fn ed25519(seed: u8) -> Key {
        Key::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]))
    }

    /// A root key: certificate with CN = `cn`, valid `from`..`to`.
    pub fn root(seed: u8, cn: &str, from: OffsetDateTime, to: OffsetDateTime) -> Key {
        let sk = p256_key(seed);
        let pem = root_cert(&sk, cn, from, to);
        Key::P256Cert(sk, pem)
    }

    pub fn keytype(&self) -> &'static str {
        match self {
            Key::P256(_) => "ecdsa",
            Key::P256Cert(..) => "ecdsa-x509",
            Key::Ed25519(_) => "ed25519",
        }
    }

    pub fn spki(&self) -> Vec<u8> {
        match self {
            Key::P256(k) | Key::P256Cert(k, _) => k
                .verifying_key()
                .to_public_key_der()
                .unwrap()
                .as_bytes()
                .to_vec(),
            Key::Ed25519(k) => k.verifying_key().as_bytes().to_vec(),
        }
    }

    /// The bytes `keyval.public` holds.
    pub fn public_bytes(&self) -> Vec<u8> {
        match self {
            Key::P256Cert(_, pem) => pem.as_bytes().to_vec(),
            _ => self.spki(),
        }
    }

    pub fn key_json(&self) -> Value {
        json!({"keytype": self.keytype(), "keyval": {"private": null, "public": B64.encode(self.public_bytes())}})
    }

    /// The TUF key ID.
    pub fn id(&self) -> String {
        let bytes = canonical::canonicalize(self.key_json().to_string().as_bytes()).unwrap();
        hex::encode(Sha256::digest(&bytes))
    }

    pub fn method(&self) -> &'static str {
        match self {
            Key::Ed25519(_) => "eddsa",
            _ => "ecdsa",
        }
    }

    /// Signs as notary does: raw r‖s for ECDSA, plain Ed25519.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match self {
            Key::P256(k) | Key::P256Cert(k, _) => {
                let s: p256::ecdsa::Signature = k.sign(msg);
                s.to_bytes().to_vec()
            }
            Key::Ed25519(k) => {
                use ed25519_dalek::Signer as _;
                k.sign(msg).to_bytes().to_vec()
            }
        }
    }

    /// The signature as DER (what a naive signer would produce).
    pub fn sign_der(&self, msg: &[u8]) -> Vec<u8> {
        match self {
            Key::P256(k) | Key::P256Cert(k, _) => {
                let s: p256::ecdsa::Signature = k.sign(msg);
                s.to_der().as_bytes().to_vec()
            }
            Key::Ed25519(_) => panic!("no DER form for ed25519"),
        }
    }

    pub fn pin(&self) -> PinnedKey {
        PinnedKey::from_spki(self.spki()).unwrap()
    }
}

/// A notary-style root certificate: self-signed, CN = GUN, not a CA, ECDSA-SHA256.
pub fn root_cert(
    sk: &p256::ecdsa::SigningKey,
    cn: &str,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> String {
    use x509_cert::builder::{Builder as _, CertificateBuilder};
    struct NotaryRoot(x509_cert::name::Name);
    impl x509_cert::builder::profile::BuilderProfile for NotaryRoot {
        fn get_issuer(&self, _: &x509_cert::name::Name) -> x509_cert::name::Name {
            self.0.clone()
        }
        fn get_subject(&self) -> x509_cert::name::Name {
            self.0.clone()
        }
        fn build_extensions(
            &self,
            _: spki::SubjectPublicKeyInfoRef<'_>,
            _: spki::SubjectPublicKeyInfoRef<'_>,
            _: &x509_cert::TbsCertificate,
        ) -> x509_cert::builder::Result<Vec<x509_cert::ext::Extension>> {
            Ok(Vec::new())
        }
    }
    let name = x509_cert::name::Name::from_str(&format!("CN={cn}")).unwrap();
    let t = |o: OffsetDateTime| {
        let st = std::time::UNIX_EPOCH + std::time::Duration::from_secs(o.unix_timestamp() as u64);
        x509_cert::time::Time::try_from(st).unwrap()
    };
    let validity = x509_cert::time::Validity::new(t(from), t(to));
    let spki = spki::SubjectPublicKeyInfoOwned::from_key(sk.verifying_key()).unwrap();
    let builder = CertificateBuilder::new(
        NotaryRoot(name),
        x509_cert::serial_number::SerialNumber::from(7u32),
        validity,
        spki,
    )
    .unwrap();
    let cert = builder.build::<_, p256::ecdsa::DerSignature>(sk).unwrap();
    cert.to_pem(der::pem::LineEnding::LF).unwrap()
}

/// `{"signed": body, "signatures": [...]}` signed over the canonical body by `keys`.
pub fn sign(body: &Value, keys: &[&Key]) -> Vec<u8> {
    let canon = canonical::canonicalize(body.to_string().as_bytes()).unwrap();
    let sigs: Vec<Value> = keys
        .iter()
        .map(|k| json!({"keyid": k.id(), "method": k.method(), "sig": B64.encode(k.sign(&canon))}))
        .collect();
    envelope(body, sigs)
}

pub fn envelope(body: &Value, sigs: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({"signed": body, "signatures": sigs})).unwrap()
}

/// `FileMeta` of `bytes` as notary's snapshot and timestamp write it.
pub fn file_meta(bytes: &[u8]) -> Value {
    json!({
        "length": bytes.len(),
        "hashes": {
            "sha256": B64.encode(Sha256::digest(bytes)),
            "sha512": B64.encode(Sha512::digest(bytes)),
        }
    })
}

/// A target entry for a manifest digest (`sha256:<hex>` → base64 of the raw digest).
pub fn target(digest_hex: &str, length: u64) -> Value {
    json!({"hashes": {"sha256": B64.encode(hex::decode(digest_hex).unwrap())}, "length": length})
}

pub const DIGEST_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const DIGEST_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
pub const DIGEST_C: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

/// A repository as `docker trust sign` leaves it: root (certificate key), targets with
/// `targets/releases` and `targets/ci`, server-held snapshot and timestamp keys (ed25519).
///
/// Tags: `v2.9` (releases, A), `v2.8` (targets B, releases A: releases wins), `base` (targets, C),
/// `ci-only` (targets/ci, B).
#[derive(Clone)]
pub struct Repo {
    pub gun: String,
    pub root_key: Key,
    pub targets_key: Key,
    pub snapshot_key: Key,
    pub timestamp_key: Key,
    pub releases_key: Key,
    pub ci_key: Key,
    pub root: Value,
    pub targets: Value,
    /// Delegated roles, by name.
    pub delegations: BTreeMap<String, Value>,
    pub snapshot: Value,
    pub timestamp: Value,
    /// Older root versions as served at `N.root.json`.
    pub old_roots: BTreeMap<u64, Vec<u8>>,
    /// Who signs root.json (default: the root key).
    pub root_signers: Vec<Key>,
}

impl Repo {
    pub fn new() -> Repo {
        Self::for_gun(GUN)
    }

    pub fn for_gun(gun: &str) -> Repo {
        let n = now();
        let root_key = Key::root(1, gun, n - days(30), n + days(3650));
        let targets_key = Key::ecdsa(2);
        let snapshot_key = Key::ed25519(3);
        let timestamp_key = Key::ed25519(4);
        let releases_key = Key::ecdsa(5);
        let ci_key = Key::ecdsa(6);
        let root = root_body(1, &[&root_key], &targets_key, &snapshot_key, &timestamp_key);
        let targets = json!({
            "_type": "Targets", "version": 3, "expires": rfc3339(n + days(1095)),
            "targets": {"v2.8": target(DIGEST_B, 527), "base": target(DIGEST_C, 400)},
            "delegations": {
                "keys": {releases_key.id(): releases_key.key_json(), ci_key.id(): ci_key.key_json()},
                "roles": [
                    {"name": "targets/releases", "keyids": [releases_key.id()], "threshold": 1, "paths": [""]},
                    {"name": "targets/ci", "keyids": [ci_key.id()], "threshold": 1, "paths": [""]},
                ]
            }
        });
        let mut delegations = BTreeMap::new();
        delegations.insert(
            "targets/releases".to_owned(),
            json!({
                "_type": "Targets", "version": 2, "expires": rfc3339(n + days(1095)),
                "targets": {"v2.9": target(DIGEST_A, 527), "v2.8": target(DIGEST_A, 527)},
                "delegations": {"keys": {}, "roles": []}
            }),
        );
        delegations.insert(
            "targets/ci".to_owned(),
            json!({
                "_type": "Targets", "version": 1, "expires": rfc3339(n + days(1095)),
                "targets": {"ci-only": target(DIGEST_B, 527)},
                "delegations": {"keys": {}, "roles": []}
            }),
        );
        let snapshot = json!({"_type": "Snapshot", "version": 4, "expires": rfc3339(n + days(1095)), "meta": {}});
        let timestamp = json!({"_type": "Timestamp", "version": 5, "expires": rfc3339(n + days(14)), "meta": {}});
        Repo {
            gun: gun.to_owned(),
            root_signers: vec![root_key.clone()],
            root_key,
            targets_key,
            snapshot_key,
            timestamp_key,
            releases_key,
            ci_key,
            root,
            targets,
            delegations,
            snapshot,
            timestamp,
            old_roots: BTreeMap::new(),
        }
    }

    pub fn pins(&self) -> Vec<PinnedKey> {
        vec![self.root_key.pin()]
    }

    /// Signs every role and chains the hashes: targets and delegations → snapshot → timestamp.
    pub fn files(&self) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        let root_signers: Vec<&Key> = self.root_signers.iter().collect();
        files.insert("root.json".to_owned(), sign(&self.root, &root_signers));
        files.insert(
            "targets.json".to_owned(),
            sign(&self.targets, &[&self.targets_key]),
        );
        for (name, body) in &self.delegations {
            let key = if name == "targets/ci" {
                &self.ci_key
            } else {
                &self.releases_key
            };
            files.insert(format!("{name}.json"), sign(body, &[key]));
        }
        for (n, bytes) in &self.old_roots {
            files.insert(format!("{n}.root.json"), bytes.clone());
        }
        self.rechain(&mut files);
        files
    }

    /// Recomputes snapshot from the root, targets and delegation files present, re-signs it, and
    /// then the timestamp: what a server holding both keys can always do.
    pub fn rechain(&self, files: &mut BTreeMap<String, Vec<u8>>) {
        let mut snapshot = self.snapshot.clone();
        let meta = snapshot["meta"].as_object_mut().unwrap();
        meta.insert("root".into(), file_meta(&files["root.json"]));
        meta.insert("targets".into(), file_meta(&files["targets.json"]));
        for name in self.delegations.keys() {
            if let Some(b) = files.get(&format!("{name}.json")) {
                meta.insert(name.clone(), file_meta(b));
            }
        }
        let snap = sign(&snapshot, &[&self.snapshot_key]);
        self.retimestamp(files, snap);
    }

    /// Installs snapshot bytes and a timestamp that pins them.
    pub fn retimestamp(&self, files: &mut BTreeMap<String, Vec<u8>>, snapshot: Vec<u8>) {
        let mut ts = self.timestamp.clone();
        ts["meta"] = json!({"snapshot": file_meta(&snapshot)});
        files.insert("snapshot.json".to_owned(), snapshot);
        files.insert(
            "timestamp.json".to_owned(),
            sign(&ts, &[&self.timestamp_key]),
        );
    }

    /// Rotates the root key: the current root.json becomes `N.root.json`, and the new version
    /// is signed by the old and the new root keys (`SignRoot`, tuf/tuf.go:895).
    pub fn rotate_root(&mut self, new_key: Key) {
        let version = self.root["version"].as_u64().unwrap();
        let signers: Vec<&Key> = self.root_signers.iter().collect();
        self.old_roots.insert(version, sign(&self.root, &signers));
        let old = self.root_key.clone();
        self.root = root_body(
            version + 1,
            &[&new_key],
            &self.targets_key,
            &self.snapshot_key,
            &self.timestamp_key,
        );
        self.root_signers = vec![old, new_key.clone()];
        self.root_key = new_key;
    }
}

impl Default for Repo {
    fn default() -> Self {
        Repo::new()
    }
}

pub fn root_body(
    version: u64,
    root_keys: &[&Key],
    targets: &Key,
    snapshot: &Key,
    timestamp: &Key,
) -> Value {
    let mut keys = serde_json::Map::new();
    for k in root_keys.iter().chain([&targets, &snapshot, &timestamp]) {
        keys.insert(k.id(), k.key_json());
    }
    json!({
        "_type": "Root", "version": version, "consistent_snapshot": false,
        "expires": rfc3339(now() + days(3650)),
        "keys": keys,
        "roles": {
            "root": {"keyids": root_keys.iter().map(|k| k.id()).collect::<Vec<_>>(), "threshold": 1},
            "targets": {"keyids": [targets.id()], "threshold": 1},
            "snapshot": {"keyids": [snapshot.id()], "threshold": 1},
            "timestamp": {"keyids": [timestamp.id()], "threshold": 1},
        }
    })
}

impl Repo {
    /// Writes the signed files as an offline bundle: `bundles/<GUN>/root.json`, ….
    pub fn write_bundle(&self, bundles: &std::path::Path) {
        let dir = bundles.join(&self.gun);
        for (name, bytes) in self.files() {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
    }

    /// The root key's certificate (PEM), to pin.
    pub fn root_cert_pem(&self) -> String {
        match &self.root_key {
            Key::P256Cert(_, pem) => pem.clone(),
            _ => panic!("root key without certificate"),
        }
    }
}
