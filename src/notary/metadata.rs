//! Typed notary metadata (`tuf/data/{root,targets,snapshot,timestamp,types}.go`) and the signed
//! envelope, decoded from one parse so that what is verified is what is used.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use sha2::{Digest as _, Sha256, Sha512};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::keys::{self, PublicKey};
use crate::tuf::canonical::{self, Value};
use crate::verdict::{Reason, TrustError};

/// The root role's name (and its file, `root.json`).
pub const ROOT: &str = "root";
/// The top-level targets role's name: the parent of every delegation (`targets/<name>`).
pub const TARGETS: &str = "targets";
pub(crate) const SNAPSHOT: &str = "snapshot";
pub(crate) const TIMESTAMP: &str = "timestamp";
pub(crate) const RELEASES: &str = "targets/releases";

pub use crate::tuf::Signature;

/// A parsed `{"signed": …, "signatures": […]}` document.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// `MarshalCanonical(decode(signed))`: the bytes signatures cover.
    pub canonical: Vec<u8>,
    /// The `signed` object as parsed: always a JSON object.
    pub signed: Value,
    /// The `signatures` in document order (`method` lower-cased, `sig` base64-decoded); empty when
    /// there are none.
    pub signatures: Vec<Signature>,
}

fn malformed(role: &str, detail: impl Into<String>) -> TrustError {
    TrustError::role(Reason::MalformedMetadata, role, detail)
}

#[derive(Deserialize)]
struct RawSignature {
    keyid: String,
    method: String,
    sig: String,
}

impl Envelope {
    /// Parses `bytes` as the metadata of `role`, refusing anything over `cap` bytes.
    pub fn parse(bytes: &[u8], role: &str, cap: usize) -> Result<Envelope, TrustError> {
        if bytes.len() > cap {
            return Err(TrustError::role(
                Reason::TooLarge,
                role,
                format!("{} bytes exceeds the {cap}-byte cap", bytes.len()),
            ));
        }
        let doc = canonical::parse(bytes).map_err(|e| malformed(role, e.to_string()))?;
        let Value::Object(mut top) = doc else {
            return Err(malformed(role, "the document is not a JSON object"));
        };
        let signed = top
            .remove("signed")
            .ok_or_else(|| malformed(role, "the document has no \"signed\" object"))?;
        if !matches!(signed, Value::Object(_)) {
            return Err(malformed(role, "\"signed\" is not an object"));
        }
        let canonical = canonical::encode(&signed).map_err(|e| malformed(role, e.to_string()))?;
        let raw_sigs: Vec<RawSignature> = match top.remove("signatures") {
            Some(v) => serde_json::from_value(v.to_serde())
                .map_err(|e| malformed(role, format!("invalid \"signatures\": {e}")))?,
            None => Vec::new(),
        };
        let mut signatures = Vec::with_capacity(raw_sigs.len());
        for s in raw_sigs {
            let sig = B64.decode(&s.sig).map_err(|e| {
                malformed(
                    role,
                    format!("signature by key {} is not base64: {e}", s.keyid),
                )
            })?;
            signatures.push(Signature {
                keyid: s.keyid,
                method: s.method.to_ascii_lowercase(),
                sig,
            });
        }
        Ok(Envelope {
            canonical,
            signed,
            signatures,
        })
    }

    /// Decodes the signed body as `T`.
    fn body<T: for<'de> Deserialize<'de>>(&self, role: &str) -> Result<T, TrustError> {
        serde_json::from_value(self.signed.to_serde()).map_err(|e| malformed(role, e.to_string()))
    }
}

/// Fields every role has (`SignedCommon`).
#[derive(Debug, Clone)]
pub struct Common {
    /// `version`: at least 1.
    pub version: u64,
    /// `expires`, an RFC 3339 time.
    pub expires: OffsetDateTime,
}

#[derive(Deserialize)]
struct RawCommon {
    #[serde(rename = "_type")]
    typ: String,
    version: i64,
    expires: String,
}

impl Common {
    fn parse(env: &Envelope, role: &str, expected_type: &str) -> Result<Common, TrustError> {
        let raw: RawCommon = env.body(role)?;
        if raw.typ != expected_type {
            return Err(TrustError::role(
                Reason::WrongRoleType,
                role,
                format!("_type is {:?}, expected {expected_type:?}", raw.typ),
            ));
        }
        let version = u64::try_from(raw.version)
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| malformed(role, format!("version {} is below 1", raw.version)))?;
        let expires = OffsetDateTime::parse(&raw.expires, &Rfc3339).map_err(|e| {
            malformed(
                role,
                format!("expires {:?} is not an RFC 3339 time: {e}", raw.expires),
            )
        })?;
        Ok(Common { version, expires })
    }
}

/// A key as listed in `keys` maps: what it claims to be, and what it parsed to.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    /// The ID computed from the key's content, when its public bytes decode.
    pub computed_id: Option<String>,
    /// The usable key, or why it is not (such a key's signatures never count).
    pub key: Result<PublicKey, TrustError>,
}

#[derive(Deserialize)]
struct RawKey {
    keytype: String,
    keyval: RawKeyVal,
}

#[derive(Deserialize)]
struct RawKeyVal {
    public: String,
}

fn parse_keys(
    raw: BTreeMap<String, RawKey>,
    role: &str,
) -> Result<BTreeMap<String, KeyEntry>, TrustError> {
    let mut out = BTreeMap::new();
    for (id, k) in raw {
        let computed_id = B64
            .decode(&k.keyval.public)
            .ok()
            .map(|p| keys::tuf_key_id(&k.keytype, &p));
        let key = PublicKey::from_json(&k.keytype, &k.keyval.public, role);
        out.insert(id, KeyEntry { computed_id, key });
    }
    Ok(out)
}

/// Keys and threshold of a role.
#[derive(Debug, Clone, Deserialize)]
pub struct RoleKeys {
    /// The IDs of the keys that may sign for the role (root checks each is in its `keys`).
    pub keyids: Vec<String>,
    /// How many distinct keys must sign (root checks it is at least 1 for the base roles).
    pub threshold: i64,
}

/// `root.json` (`tuf/data/root.go`).
#[derive(Debug, Clone)]
pub struct Root {
    /// Version and expiry.
    pub common: Common,
    /// `keys`: every key the document defines, by the ID the document gives it.
    pub keys: BTreeMap<String, KeyEntry>,
    /// The base roles (`root`, `targets`, `snapshot`, `timestamp`, all present) and any others
    /// the document names.
    pub roles: BTreeMap<String, RoleKeys>,
}

#[derive(Deserialize)]
struct RawRoot {
    keys: BTreeMap<String, RawKey>,
    roles: BTreeMap<String, RoleKeys>,
}

impl Root {
    /// Decodes `root.json`'s signed body and checks its structure (`isValidRootStructure`): the
    /// four base roles, each with threshold ≥ 1 and only keys `keys` defines. Signatures are not
    /// checked here.
    pub fn parse(env: &Envelope) -> Result<Root, TrustError> {
        let common = Common::parse(env, ROOT, "Root")?;
        let raw: RawRoot = env.body(ROOT)?;
        let keys = parse_keys(raw.keys, ROOT)?;
        // isValidRootStructure: all four base roles, threshold ≥ 1, every key ID present.
        for name in [ROOT, TARGETS, SNAPSHOT, TIMESTAMP] {
            let r = raw
                .roles
                .get(name)
                .ok_or_else(|| malformed(ROOT, format!("root does not define the {name} role")))?;
            if r.threshold < 1 {
                return Err(malformed(
                    ROOT,
                    format!(
                        "the {name} role has threshold {} (must be ≥ 1)",
                        r.threshold
                    ),
                ));
            }
            if let Some(missing) = r.keyids.iter().find(|k| !keys.contains_key(*k)) {
                return Err(malformed(
                    ROOT,
                    format!("the {name} role lists key {missing}, which root does not define"),
                ));
            }
        }
        Ok(Root {
            common,
            keys,
            roles: raw.roles,
        })
    }

    /// The keys of base role `name` (present: checked at parse).
    pub fn role(&self, name: &str) -> Option<&RoleKeys> {
        self.roles.get(name)
    }
}

/// A file's pinned hashes and length (`FileMeta`, `tuf/data/types.go:181`).
#[derive(Debug, Clone, Deserialize)]
pub struct FileMeta {
    /// The file's length in bytes.
    pub length: i64,
    /// Hashes by algorithm (`sha256`, `sha512`), base64.
    pub hashes: BTreeMap<String, String>,
    /// Opaque data the signer attached; no rule reads it.
    #[serde(default)]
    pub custom: Option<serde_json::Value>,
}

impl FileMeta {
    /// The decoded sha256, when present and well-formed.
    pub fn sha256(&self) -> Option<[u8; 32]> {
        let raw = B64.decode(self.hashes.get("sha256")?).ok()?;
        raw.try_into().ok()
    }

    /// Checks `bytes` against the length and every known hash (`data.CheckHashes`: sha256 and
    /// sha512 must each match when present; sha256 is required). `name` is the file checked.
    pub fn check(&self, bytes: &[u8], name: &str) -> Result<(), TrustError> {
        if i64::try_from(bytes.len()).ok() != Some(self.length) {
            return Err(TrustError::role(
                Reason::LengthMismatch,
                name,
                format!(
                    "{} bytes, but its parent pins {} bytes",
                    bytes.len(),
                    self.length
                ),
            ));
        }
        let want256 = self.sha256().ok_or_else(|| {
            malformed(
                name,
                "its parent pins no valid sha256 hash for it".to_owned(),
            )
        })?;
        if Sha256::digest(bytes).as_slice() != want256 {
            return Err(TrustError::role(
                Reason::HashMismatch,
                name,
                "sha256 differs from the hash its parent pins",
            ));
        }
        if let Some(h512) = self.hashes.get("sha512") {
            let ok = B64
                .decode(h512)
                .is_ok_and(|w| Sha512::digest(bytes).as_slice() == w.as_slice());
            if !ok {
                return Err(TrustError::role(
                    Reason::HashMismatch,
                    name,
                    "sha512 differs from the hash its parent pins",
                ));
            }
        }
        Ok(())
    }
}

/// `timestamp.json`.
#[derive(Debug, Clone)]
pub struct Timestamp {
    /// Version and expiry.
    pub common: Common,
    /// What `snapshot.json` must be (a sha256 is always present).
    pub snapshot: FileMeta,
}

#[derive(Deserialize)]
struct RawMetaMap {
    meta: BTreeMap<String, FileMeta>,
}

impl Timestamp {
    /// Decodes `timestamp.json`'s signed body; refused unless it pins a sha256 for the snapshot.
    /// Signatures are not checked here.
    pub fn parse(env: &Envelope) -> Result<Timestamp, TrustError> {
        let common = Common::parse(env, TIMESTAMP, "Timestamp")?;
        let mut raw: RawMetaMap = env.body(TIMESTAMP)?;
        let snapshot = raw
            .meta
            .remove(SNAPSHOT)
            .filter(|m| m.sha256().is_some())
            .ok_or_else(|| malformed(TIMESTAMP, "timestamp pins no sha256 for snapshot"))?;
        Ok(Timestamp { common, snapshot })
    }
}

/// `snapshot.json`.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Version and expiry.
    pub common: Common,
    /// What each file must be, by role name (`root`, `targets` always with a sha256;
    /// delegations as listed).
    pub meta: BTreeMap<String, FileMeta>,
}

impl Snapshot {
    /// Decodes `snapshot.json`'s signed body; refused unless it pins a sha256 for `root` and
    /// `targets`. Signatures are not checked here.
    pub fn parse(env: &Envelope) -> Result<Snapshot, TrustError> {
        let common = Common::parse(env, SNAPSHOT, "Snapshot")?;
        let raw: RawMetaMap = env.body(SNAPSHOT)?;
        for name in [ROOT, TARGETS] {
            if raw.meta.get(name).and_then(FileMeta::sha256).is_none() {
                return Err(malformed(
                    SNAPSHOT,
                    format!("snapshot pins no sha256 for {name}"),
                ));
            }
        }
        Ok(Snapshot {
            common,
            meta: raw.meta,
        })
    }
}

/// A delegation as its parent declares it.
#[derive(Debug, Clone, Deserialize)]
pub struct Delegation {
    /// The role's full name, `targets/<name>`, a direct child of the declaring role.
    pub name: String,
    /// The IDs of its keys, each among the parent's `delegation_keys`.
    pub keyids: Vec<String>,
    /// How many distinct keys must sign it: at least 1.
    pub threshold: i64,
    /// Target name prefixes it may sign, as declared (`""` admits every name; an empty list,
    /// none); verification keeps only those its parent's paths admit.
    #[serde(default)]
    pub paths: Vec<String>,
}

/// `targets.json` or a delegated `targets/<name>.json`.
#[derive(Debug, Clone)]
pub struct Targets {
    /// Version and expiry.
    pub common: Common,
    /// What the role signs: target name (the tag) → the manifest's length and hashes.
    pub targets: BTreeMap<String, FileMeta>,
    /// The keys of its delegations, by ID (`delegations.keys`).
    pub delegation_keys: BTreeMap<String, KeyEntry>,
    /// Its direct child roles (`delegations.roles`), in document order.
    pub delegations: Vec<Delegation>,
}

#[derive(Deserialize)]
struct RawTargets {
    #[serde(default)]
    targets: BTreeMap<String, FileMeta>,
    #[serde(default)]
    delegations: Option<RawDelegations>,
}

#[derive(Deserialize)]
struct RawDelegations {
    #[serde(default)]
    keys: BTreeMap<String, RawKey>,
    #[serde(default)]
    roles: Vec<Delegation>,
}

/// Longest delegation name notary accepts.
const MAX_ROLE_NAME: usize = 255;

impl Targets {
    /// Parses the targets metadata of `role` and checks its delegation list
    /// (`isValidTargetsStructure`): names are valid direct children, key IDs exist, threshold ≥ 1.
    pub fn parse(env: &Envelope, role: &str) -> Result<Targets, TrustError> {
        let common = Common::parse(env, role, "Targets")?;
        let raw: RawTargets = env.body(role)?;
        let (keys_raw, delegations) = match raw.delegations {
            Some(d) => (d.keys, d.roles),
            None => (BTreeMap::new(), Vec::new()),
        };
        let delegation_keys = parse_keys(keys_raw, role)?;
        let invalid = |d: String| TrustError::role(Reason::InvalidDelegation, role, d);
        let mut seen = std::collections::BTreeSet::new();
        for d in &delegations {
            if !is_delegation_name(&d.name) {
                return Err(invalid(format!(
                    "{:?} is not a valid delegation name",
                    d.name
                )));
            }
            let parent = d.name.rsplit_once('/').map(|(p, _)| p);
            if parent != Some(role) {
                return Err(invalid(format!(
                    "{:?} is not a direct child of {role}",
                    d.name
                )));
            }
            if !seen.insert(d.name.as_str()) {
                return Err(invalid(format!("{:?} is declared twice", d.name)));
            }
            if d.threshold < 1 {
                return Err(invalid(format!(
                    "{} has threshold {} (must be ≥ 1)",
                    d.name, d.threshold
                )));
            }
            if let Some(k) = d.keyids.iter().find(|k| !delegation_keys.contains_key(*k)) {
                return Err(invalid(format!(
                    "{} lists key {k}, which is not among the delegation keys",
                    d.name
                )));
            }
        }
        Ok(Targets {
            common,
            targets: raw.targets,
            delegation_keys,
            delegations,
        })
    }
}

/// `data.IsDelegation`: `targets/…`, `[-a-z0-9_/]`, shorter than 256 bytes, already clean.
pub fn is_delegation_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("targets/") else {
        return false;
    };
    name.len() <= MAX_ROLE_NAME
        && !rest.is_empty()
        && name
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'/'))
        && rest
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delegation_names_follow_notary() {
        assert!(is_delegation_name("targets/releases"));
        assert!(is_delegation_name("targets/a/b_c-1"));
        assert!(!is_delegation_name("targets"));
        assert!(!is_delegation_name("targets/"));
        assert!(!is_delegation_name("targets/Releases"));
        assert!(!is_delegation_name("targets//x"));
        assert!(!is_delegation_name("targets/x/"));
        assert!(!is_delegation_name("root"));
        assert!(!is_delegation_name(&format!("targets/{}", "a".repeat(250))));
    }
}
