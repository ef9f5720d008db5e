//! The TUF chain as notary's client builds it (`client/tufclient.go`, `tuf/builder.go`):
//! pinned root (walking `N.root.json`) → timestamp → snapshot → root hash → targets → delegations.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use time::OffsetDateTime;

use super::cert::CertProblem;
use super::keys::{PinnedKey, PublicKey};
use super::metadata::{
    Delegation, Envelope, FileMeta, KeyEntry, ROOT, Root, SNAPSHOT, Snapshot, TARGETS, TIMESTAMP,
    Targets, Timestamp,
};
use crate::tuf;
use crate::verdict::{Reason, TrustError};

/// Size caps. Far below notary's (100 MiB root, 1 MiB timestamp): a webhook must not be made to
/// buffer large documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest `root.json` (and each `N.root.json`) read.
    pub root: usize,
    /// Largest `timestamp.json` read.
    pub timestamp: usize,
    /// Snapshot, targets and each delegation are also capped at the length their parent pins.
    pub snapshot: usize,
    /// Largest targets document (top-level and each delegation) read.
    pub targets: usize,
    /// Delegated roles loaded per repository.
    pub max_delegations: usize,
    /// Root versions walked.
    pub max_root_versions: usize,
    /// Bytes of `N.root.json` fetched in one walk.
    pub root_walk_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            root: 512 * 1024,
            timestamp: 64 * 1024,
            snapshot: 1024 * 1024,
            targets: 4 * 1024 * 1024,
            max_delegations: 64,
            max_root_versions: 64,
            root_walk_bytes: 4 * 1024 * 1024,
        }
    }
}

/// The versions of every role trusted before, so that no role goes backwards (rollback) across
/// verifications. Kept by the caller (per repository) between calls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustState {
    versions: BTreeMap<String, u64>,
    /// The bytes of the root trusted last: later roots must be reached from it by rotation.
    root: Option<Arc<Vec<u8>>>,
}

impl TrustState {
    /// The version of `role` trusted last, if any.
    pub fn version(&self, role: &str) -> Option<u64> {
        self.versions.get(role).copied()
    }

    fn check(&self, role: &str, version: u64) -> Result<(), TrustError> {
        tuf::check_version(role, version, self.version(role))
    }

    /// Merges `other` into this state, keeping the higher version of each role (and the root
    /// of the higher version).
    pub(crate) fn merge(&mut self, other: &TrustState) {
        if other.version(ROOT) >= self.version(ROOT) && other.root.is_some() {
            self.root.clone_from(&other.root);
        }
        for (role, v) in &other.versions {
            let e = self.versions.entry(role.clone()).or_insert(*v);
            *e = (*e).max(*v);
        }
    }
}

/// What a verification needs besides the metadata.
#[derive(Debug, Clone, Copy)]
pub struct VerifyContext<'a> {
    /// The repository (docker's GUN), e.g. `registry.internal/ml/pytorch-cuda`.
    pub gun: &'a str,
    /// Root keys pinned in configuration: the only source of root trust.
    pub pins: &'a [PinnedKey],
    /// The clock, injected.
    pub now: OffsetDateTime,
    /// Versions trusted before (rollback protection).
    pub previous: &'a TrustState,
    /// The size and count caps.
    pub limits: Limits,
}

/// Where metadata files come from: notary's file names (`root.json`, `3.root.json`,
/// `snapshot.json`, `targets/releases.json`); the one source trait of every scheme.
pub use crate::scheme::SignatureSource as MetadataSource;

/// Checks that `env` is signed by at least `threshold` distinct keys among `keyids`
/// (`tuf/signed/verify.go:45`, with [`tuf::check_threshold`]'s counting). A signature naming a key
/// whose content has another ID fails hard.
fn check_signatures(
    env: &Envelope,
    role: &str,
    keyids: &[String],
    threshold: i64,
    keys: &BTreeMap<String, KeyEntry>,
    accept: &dyn Fn(&PublicKey) -> bool,
) -> Result<(), TrustError> {
    let key = |id: &str| -> Result<Option<&PublicKey>, TrustError> {
        let Some(entry) = keys.get(id) else {
            return Ok(None);
        };
        if entry.computed_id.as_deref() != Some(id) {
            return Err(TrustError::role(
                Reason::InvalidKeyId,
                role,
                format!("key {id} does not hash to its ID"),
            ));
        }
        Ok(entry.key.as_ref().ok())
    };
    tuf::check_threshold(
        role,
        &env.canonical,
        &env.signatures,
        keyids,
        threshold,
        &key,
        accept,
    )
}

fn problem_to_error(p: CertProblem) -> TrustError {
    match p {
        CertProblem::GunMismatch(d) => TrustError::role(Reason::GunMismatch, ROOT, d),
        CertProblem::Expired(d) => TrustError::role(Reason::CertificateExpired, ROOT, d),
        CertProblem::Invalid(d) => TrustError::role(Reason::InvalidCertificate, ROOT, d),
    }
}

/// One root version, parsed, with its raw bytes.
struct RootDoc {
    env: Envelope,
    root: Root,
    bytes: Vec<u8>,
}

impl RootDoc {
    fn parse(bytes: Vec<u8>, cap: usize) -> Result<RootDoc, TrustError> {
        let env = Envelope::parse(&bytes, ROOT, cap)?;
        let root = Root::parse(&env)?;
        Ok(RootDoc { env, root, bytes })
    }

    fn version(&self) -> u64 {
        self.root.common.version
    }

    /// The root role's x509 keys whose certificates pass notary's rules for `gun` (`now`: also
    /// check validity dates). Returns the first problem seen, for the error message.
    fn usable_root_keys(
        &self,
        gun: &str,
        now: Option<OffsetDateTime>,
    ) -> (BTreeSet<Vec<u8>>, Option<TrustError>) {
        let mut ok = BTreeSet::new();
        let mut problem = None;
        let ids = self
            .root
            .role(ROOT)
            .map(|r| r.keyids.as_slice())
            .unwrap_or_default();
        for id in ids {
            let Some(KeyEntry { key: Ok(key), .. }) = self.root.keys.get(id) else {
                continue;
            };
            // Root keys that are not certificates are skipped, as in trustpinning/certs.go.
            let Some(certs) = key.certs() else { continue };
            match certs.validate(gun, now) {
                Ok(()) => {
                    ok.insert(key.spki().to_vec());
                }
                Err(p) => {
                    problem.get_or_insert(problem_to_error(p));
                }
            }
        }
        (ok, problem)
    }

    /// Checks this document's signatures against `signer`'s root role, counting only keys in
    /// `usable` (key material).
    fn signed_by(&self, signer: &Root, usable: &BTreeSet<Vec<u8>>) -> Result<(), TrustError> {
        let role = signer
            .role(ROOT)
            .ok_or_else(|| TrustError::role(Reason::MalformedMetadata, ROOT, "no root role"))?;
        check_signatures(
            &self.env,
            ROOT,
            &role.keyids,
            role.threshold,
            &signer.keys,
            &|k| usable.contains(k.spki()),
        )
    }
}

/// A root that the pins trust, directly or through rotations.
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    root: Root,
    bytes: Arc<Vec<u8>>,
}

impl TrustedRoot {
    /// The root's version.
    pub fn version(&self) -> u64 {
        self.root.common.version
    }

    /// When the root expires.
    pub fn expires(&self) -> OffsetDateTime {
        self.root.common.expires
    }
}

fn rotation_failed(detail: String) -> TrustError {
    TrustError::role(Reason::RootRotationFailed, ROOT, detail)
}

/// Checks that `next` may follow `prev`: the next version number, signed by `prev`'s root keys to
/// its threshold and by its own root keys to its own threshold, with its own certificates valid
/// now (`updateRootVersions`, tufclient.go:142; `ValidateRoot` checks the new root's certificate
/// dates, not the previous root's).
fn check_rotation(
    ctx: &VerifyContext<'_>,
    prev: &RootDoc,
    next: &RootDoc,
) -> Result<(), TrustError> {
    if next.version() != prev.version() + 1 {
        return Err(rotation_failed(format!(
            "root version {} is missing between {} and {}",
            prev.version() + 1,
            prev.version(),
            next.version()
        )));
    }
    let (prev_keys, _) = prev.usable_root_keys(ctx.gun, None);
    let (own_keys, problem) = next.usable_root_keys(ctx.gun, Some(ctx.now));
    let rotation = next
        .signed_by(&prev.root, &prev_keys)
        .and_then(|()| next.signed_by(&next.root, &own_keys));
    rotation.map_err(|e| {
        let why = problem.map(|p| format!(" ({p})")).unwrap_or_default();
        rotation_failed(format!(
            "root version {} is not signed by version {}'s root keys and its own: {}{why}",
            next.version(),
            prev.version(),
            e.detail()
        ))
    })
}

/// Whether pinned keys alone sign `doc` to its own root threshold (certificates checked for the
/// GUN but not for dates: a pinned key is trusted by configuration).
fn signed_by_pins(ctx: &VerifyContext<'_>, doc: &RootDoc) -> (bool, Option<TrustError>) {
    let (usable, problem) = doc.usable_root_keys(ctx.gun, None);
    let pinned: BTreeSet<Vec<u8>> = usable
        .into_iter()
        .filter(|spki| ctx.pins.iter().any(|p| p.spki() == spki.as_slice()))
        .collect();
    (
        !pinned.is_empty() && doc.signed_by(&doc.root, &pinned).is_ok(),
        problem,
    )
}

/// Establishes root trust for the current `root.json`, fetching `N.root.json` one version at a
/// time and keeping only the previous version in memory:
///
/// - With a root trusted before (`ctx.previous`), the walk starts there, as notary's cached root
///   does: a pinned key that a rotation removed no longer grants trust, and the root cannot go back.
/// - Otherwise, a current root that pinned keys sign is the anchor; failing that, the walk starts at
///   the lowest available version that pinned keys sign (`1.root.json` upwards).
///
/// Every step must be the next version, signed by its predecessor's root keys and threshold and by
/// its own. The newest root must then pass its own certificate dates and expiry.
pub(crate) fn verify_root(
    ctx: &VerifyContext<'_>,
    current: Vec<u8>,
    source: &dyn MetadataSource,
) -> Result<TrustedRoot, TrustError> {
    let newest = RootDoc::parse(current, ctx.limits.root)?;
    let n = newest.version();
    let mut budget = ctx.limits.root_walk_bytes;
    let mut fetch = |v: u64| -> Result<Option<RootDoc>, TrustError> {
        let Some(bytes) = source.fetch(&format!("{v}.root.json"), ctx.limits.root)? else {
            return Ok(None);
        };
        budget = budget.checked_sub(bytes.len()).ok_or_else(|| {
            TrustError::role(
                Reason::TooLarge,
                ROOT,
                format!(
                    "root versions exceed the {}-byte budget for one walk",
                    ctx.limits.root_walk_bytes
                ),
            )
        })?;
        RootDoc::parse(bytes, ctx.limits.root).map(Some)
    };
    let walk_to_newest = |start: RootDoc,
                          fetch: &mut dyn FnMut(u64) -> Result<Option<RootDoc>, TrustError>|
     -> Result<(), TrustError> {
        let mut prev = start;
        while prev.version() + 1 < n {
            let v = prev.version() + 1;
            let next = fetch(v)?.ok_or_else(|| {
                rotation_failed(format!(
                    "{v}.root.json is not available to walk from version {} to {n}",
                    prev.version()
                ))
            })?;
            if next.version() != v {
                return Err(rotation_failed(format!(
                    "{v}.root.json holds version {}",
                    next.version()
                )));
            }
            check_rotation(ctx, &prev, &next)?;
            prev = next;
        }
        check_rotation(ctx, &prev, &newest)
    };

    let mut first_problem: Option<TrustError> = None;
    if let Some(prev_bytes) = ctx.previous.root.as_deref() {
        let prev = RootDoc::parse(prev_bytes.to_vec(), ctx.limits.root)?;
        if n < prev.version() {
            return Err(TrustError::role(
                Reason::Rollback,
                ROOT,
                format!(
                    "version {n} is older than version {} trusted before",
                    prev.version()
                ),
            ));
        }
        if n == prev.version() {
            if newest.bytes.as_slice() != prev.bytes.as_slice() {
                return Err(rotation_failed(format!(
                    "root version {n} differs from the version {n} trusted before"
                )));
            }
        } else {
            walk_to_newest(prev, &mut fetch)?;
        }
    } else {
        let (pinned, problem) = signed_by_pins(ctx, &newest);
        first_problem = problem;
        if !pinned {
            // Find the lowest version the pins sign, then walk up from it.
            if usize::try_from(n).unwrap_or(usize::MAX) > ctx.limits.max_root_versions {
                return Err(TrustError::role(
                    Reason::TooLarge,
                    ROOT,
                    format!(
                        "root version {n} is beyond the {} versions walked",
                        ctx.limits.max_root_versions
                    ),
                ));
            }
            let mut anchor = None;
            for v in 1..n {
                let Some(doc) = fetch(v)? else { continue };
                if doc.version() != v {
                    return Err(rotation_failed(format!(
                        "{v}.root.json holds version {}",
                        doc.version()
                    )));
                }
                let (ok, problem) = signed_by_pins(ctx, &doc);
                if let Some(p) = problem {
                    first_problem.get_or_insert(p);
                }
                if ok {
                    anchor = Some(doc);
                    break;
                }
            }
            let Some(anchor) = anchor else {
                // A certificate for another repository is the more precise reason.
                if let Some(p) = first_problem.filter(|p| p.reason() == Reason::GunMismatch) {
                    return Err(p);
                }
                return Err(TrustError::role(
                    Reason::RootNotPinned,
                    ROOT,
                    format!(
                        "no root version of {} is signed by a pinned root key (pinned: {})",
                        ctx.gun,
                        ctx.pins
                            .iter()
                            .map(|p| p.canonical_id())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            };
            walk_to_newest(anchor, &mut fetch)?;
        }
    }

    // The newest root: its own certificates must be valid now, then version, then expiry.
    let (current_keys, problem) = newest.usable_root_keys(ctx.gun, Some(ctx.now));
    if let Err(e) = newest.signed_by(&newest.root, &current_keys) {
        return Err(problem.or(first_problem).unwrap_or(e));
    }
    ctx.previous.check(ROOT, n)?;
    tuf::check_expiry(ROOT, newest.root.common.expires, ctx.now)?;
    Ok(TrustedRoot {
        root: newest.root,
        bytes: Arc::new(newest.bytes),
    })
}

/// A loaded targets role (top-level or delegated).
#[derive(Debug, Clone)]
pub struct LoadedRole {
    /// The role's targets.
    pub targets: Targets,
    /// Paths this role may sign, already restricted by its ancestors (`[""]` for `targets`).
    pub paths: Vec<String>,
}

/// A delegated role that was skipped (expired or under threshold), with its subtree.
#[derive(Debug, Clone)]
pub struct SkippedRole {
    /// The delegated role's name.
    pub name: String,
    /// Why it was skipped.
    pub error: TrustError,
}

/// A repository whose whole TUF chain verified: only this module can build one.
#[derive(Debug, Clone)]
pub struct TrustedRepo {
    gun: String,
    root: TrustedRoot,
    timestamp: Timestamp,
    snapshot: Snapshot,
    roles: BTreeMap<String, LoadedRole>,
    skipped: Vec<SkippedRole>,
    state: TrustState,
}

impl TrustedRepo {
    /// The repository (GUN).
    pub fn gun(&self) -> &str {
        &self.gun
    }

    /// The versions now trusted: the caller keeps them for the next verification.
    pub fn state(&self) -> &TrustState {
        &self.state
    }

    /// Every role's expiry (`root`, `timestamp`, `snapshot`, `targets`, delegations).
    pub fn expiries(&self) -> Vec<(String, OffsetDateTime)> {
        let mut out = vec![
            (ROOT.to_owned(), self.root.expires()),
            (TIMESTAMP.to_owned(), self.timestamp.common.expires),
            (SNAPSHOT.to_owned(), self.snapshot.common.expires),
        ];
        out.extend(
            self.roles
                .iter()
                .map(|(n, r)| (n.clone(), r.targets.common.expires)),
        );
        out
    }

    /// Roles that were skipped, with why.
    pub fn skipped(&self) -> &[SkippedRole] {
        &self.skipped
    }

    pub(crate) fn role(&self, name: &str) -> Option<&LoadedRole> {
        self.roles.get(name)
    }

    pub(crate) fn roles(&self) -> &BTreeMap<String, LoadedRole> {
        &self.roles
    }

    pub(crate) fn skipped_error(&self, name: &str) -> Option<&TrustError> {
        self.skipped
            .iter()
            .find(|s| s.name == name)
            .map(|s| &s.error)
    }
}

fn fetch_required(
    source: &dyn MetadataSource,
    name: &str,
    role: &str,
    cap: usize,
) -> Result<Vec<u8>, TrustError> {
    source.fetch(name, cap)?.ok_or_else(|| {
        TrustError::role(
            Reason::MissingMetadata,
            role,
            format!("{name} is not available"),
        )
    })
}

/// Fetches the bytes a parent pins, capped at the pinned length, and checks length and hashes.
fn fetch_pinned(
    source: &dyn MetadataSource,
    role: &str,
    meta: &FileMeta,
    cap: usize,
) -> Result<Vec<u8>, TrustError> {
    let pinned = usize::try_from(meta.length).unwrap_or(usize::MAX);
    if pinned > cap {
        return Err(TrustError::role(
            Reason::TooLarge,
            role,
            format!("pinned length {} exceeds the {cap}-byte cap", meta.length),
        ));
    }
    let want = meta.sha256().map(hex::encode).unwrap_or_default();
    let bytes = source.fetch_pinned(role, pinned, &want)?.ok_or_else(|| {
        TrustError::role(
            Reason::MissingMetadata,
            role,
            format!("{role}.json is not available"),
        )
    })?;
    meta.check(&bytes, role)?;
    Ok(bytes)
}

/// Loads and verifies the whole chain of `ctx.gun` from `source`.
pub fn verify_repository(
    ctx: &VerifyContext<'_>,
    source: &dyn MetadataSource,
) -> Result<TrustedRepo, TrustError> {
    let current = source.fetch("root.json", ctx.limits.root)?.ok_or_else(|| {
        TrustError::role(
            Reason::RepositoryNotSigned,
            ROOT,
            format!("no trust data for {}", ctx.gun),
        )
    })?;
    let root = verify_root(ctx, current, source)?;
    verify_from_root(ctx, source, root)
}

/// Verifies timestamp → snapshot → targets → delegations under an already trusted root.
pub(crate) fn verify_from_root(
    ctx: &VerifyContext<'_>,
    source: &dyn MetadataSource,
    root: TrustedRoot,
) -> Result<TrustedRepo, TrustError> {
    let mut state = TrustState {
        root: Some(Arc::clone(&root.bytes)),
        ..TrustState::default()
    };
    state.versions.insert(ROOT.to_owned(), root.version());

    // Timestamp.
    let ts_bytes = fetch_required(source, "timestamp.json", TIMESTAMP, ctx.limits.timestamp)?;
    let ts_env = Envelope::parse(&ts_bytes, TIMESTAMP, ctx.limits.timestamp)?;
    let base_role = |name: &str| {
        root.root.role(name).cloned().ok_or_else(|| {
            TrustError::role(Reason::MalformedMetadata, ROOT, format!("no {name} role"))
        })
    };
    let ts_keys = base_role(TIMESTAMP)?;
    check_signatures(
        &ts_env,
        TIMESTAMP,
        &ts_keys.keyids,
        ts_keys.threshold,
        &root.root.keys,
        &|_| true,
    )?;
    let timestamp = Timestamp::parse(&ts_env)?;
    ctx.previous.check(TIMESTAMP, timestamp.common.version)?;
    tuf::check_expiry(TIMESTAMP, timestamp.common.expires, ctx.now)?;
    state
        .versions
        .insert(TIMESTAMP.to_owned(), timestamp.common.version);

    // Snapshot, by the hash and length the timestamp pins.
    let snap_bytes = fetch_pinned(source, SNAPSHOT, &timestamp.snapshot, ctx.limits.snapshot)?;
    let snap_env = Envelope::parse(&snap_bytes, SNAPSHOT, ctx.limits.snapshot)?;
    let snap_keys = base_role(SNAPSHOT)?;
    check_signatures(
        &snap_env,
        SNAPSHOT,
        &snap_keys.keyids,
        snap_keys.threshold,
        &root.root.keys,
        &|_| true,
    )?;
    let snapshot = Snapshot::parse(&snap_env)?;
    ctx.previous.check(SNAPSHOT, snapshot.common.version)?;
    tuf::check_expiry(SNAPSHOT, snapshot.common.expires, ctx.now)?;
    state
        .versions
        .insert(SNAPSHOT.to_owned(), snapshot.common.version);

    // The root we trust must be the one the snapshot pins (validateChecksumsFromSnapshot).
    if let Some(meta) = snapshot.meta.get(ROOT) {
        meta.check(&root.bytes, ROOT)?;
    }

    // Targets.
    let targets_meta = snapshot.meta.get(TARGETS).ok_or_else(|| {
        TrustError::role(
            Reason::MalformedMetadata,
            SNAPSHOT,
            "snapshot pins no targets",
        )
    })?;
    let t_bytes = fetch_pinned(source, TARGETS, targets_meta, ctx.limits.targets)?;
    let t_env = Envelope::parse(&t_bytes, TARGETS, ctx.limits.targets)?;
    let t_keys = base_role(TARGETS)?;
    check_signatures(
        &t_env,
        TARGETS,
        &t_keys.keyids,
        t_keys.threshold,
        &root.root.keys,
        &|_| true,
    )?;
    let targets = Targets::parse(&t_env, TARGETS)?;
    ctx.previous.check(TARGETS, targets.common.version)?;
    tuf::check_expiry(TARGETS, targets.common.expires, ctx.now)?;
    state
        .versions
        .insert(TARGETS.to_owned(), targets.common.version);

    let mut roles = BTreeMap::new();
    let mut skipped = Vec::new();
    // Breadth-first over delegations (downloadTargets, tufclient.go:213).
    let mut queue: VecDeque<(String, Delegation, Vec<String>)> = VecDeque::new();
    let enqueue = |queue: &mut VecDeque<(String, Delegation, Vec<String>)>,
                   parent: &str,
                   t: &Targets,
                   parent_paths: &[String]| {
        for d in &t.delegations {
            queue.push_back((
                parent.to_owned(),
                d.clone(),
                restrict_paths(&d.paths, parent_paths),
            ));
        }
    };
    let root_paths = vec![String::new()];
    enqueue(&mut queue, TARGETS, &targets, &root_paths);
    roles.insert(
        TARGETS.to_owned(),
        LoadedRole {
            targets,
            paths: root_paths,
        },
    );
    let mut loaded = 0usize;
    while let Some((parent, decl, paths)) = queue.pop_front() {
        let name = decl.name.clone();
        // Only roles the snapshot lists exist (ChecksumKnown).
        let Some(meta) = snapshot.meta.get(&name) else {
            continue;
        };
        loaded += 1;
        if loaded > ctx.limits.max_delegations {
            return Err(TrustError::role(
                Reason::TooLarge,
                &name,
                format!("more than {} delegated roles", ctx.limits.max_delegations),
            ));
        }
        let bytes = fetch_pinned(source, &name, meta, ctx.limits.targets)?;
        let env = Envelope::parse(&bytes, &name, ctx.limits.targets)?;
        let parent_keys = roles
            .get(&parent)
            .map(|r: &LoadedRole| r.targets.delegation_keys.clone())
            .unwrap_or_default();
        // Expired or under-threshold delegations are skipped with their subtree; any other
        // error is fatal (loadDelegation, builder.go:578), including no signatures at all
        // (ErrNoSignatures is not ErrRoleThreshold).
        if env.signatures.is_empty() {
            return Err(TrustError::role(
                Reason::MalformedMetadata,
                &name,
                "the delegation has no signatures",
            ));
        }
        if let Err(e) = check_signatures(
            &env,
            &name,
            &decl.keyids,
            decl.threshold,
            &parent_keys,
            &|_| true,
        ) {
            if e.reason() == Reason::ThresholdNotMet {
                skipped.push(SkippedRole { name, error: e });
                continue;
            }
            return Err(e);
        }
        let t = Targets::parse(&env, &name)?;
        ctx.previous.check(&name, t.common.version)?;
        if let Err(e) = tuf::check_expiry(&name, t.common.expires, ctx.now) {
            skipped.push(SkippedRole { name, error: e });
            continue;
        }
        state.versions.insert(name.clone(), t.common.version);
        enqueue(&mut queue, &name, &t, &paths);
        roles.insert(name, LoadedRole { targets: t, paths });
    }

    Ok(TrustedRepo {
        gun: ctx.gun.to_owned(),
        root,
        timestamp,
        snapshot,
        roles,
        skipped,
        state,
    })
}

/// `RestrictDelegationPathPrefixes` (roles.go:221): keep the child's paths that have one of the
/// parent's paths as a string prefix.
fn restrict_paths(child: &[String], parent: &[String]) -> Vec<String> {
    child
        .iter()
        .filter(|c| parent.iter().any(|p| c.starts_with(p.as_str())))
        .cloned()
        .collect()
}
