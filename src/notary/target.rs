//! Which digest a trusted repository binds to a reference, as docker decides it
//! (`cli/command/image/trust.go TrustedReference` over `client/reader.go:117 GetTargetByName` and
//! `tuf/tuf.go:701 WalkTargets`), or as a policy's required roles decide it.

use std::collections::{BTreeSet, VecDeque};

use super::metadata::{FileMeta, RELEASES, TARGETS};
use super::verify::TrustedRepo;
use crate::reference::{Digest, Reference};
use crate::verdict::{Reason, TrustError};

/// A digest the trust data binds to an image: only this module can build one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTarget {
    gun: String,
    tag: String,
    digest: Digest,
    length: i64,
    roles: Vec<String>,
}

impl VerifiedTarget {
    /// The repository (GUN, `host/path`) whose trust data signs the target.
    pub fn gun(&self) -> &str {
        &self.gun
    }

    /// The signed tag (target name).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The trusted manifest digest.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The signed manifest length.
    pub fn length(&self) -> i64 {
        self.length
    }

    /// The role(s) whose signature made it trusted.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }
}

/// How a tag's signer is chosen.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RoleRule {
    /// docker's rule: `targets/releases`, else `targets`; no other delegation counts.
    #[default]
    Docker,
    /// Every named role must sign the tag itself, and all with one digest.
    Require(Vec<String>),
}

/// The trusted target for `reference` under `rule`:
/// - `name:tag`: the tag's trusted digest;
/// - `name:tag@sha256:…`: the tag's trusted digest, which must equal the reference's;
/// - `name@sha256:…`: trusted when some tag's trusted digest (under the same rule) is that digest.
pub fn select(
    repo: &TrustedRepo,
    reference: &Reference,
    rule: &RoleRule,
) -> Result<VerifiedTarget, TrustError> {
    if reference.gun() != repo.gun() {
        return Err(TrustError::plain(
            Reason::InvalidReference,
            format!("image {reference} is not in repository {}", repo.gun()),
        ));
    }
    match (reference.tag(), reference.digest()) {
        (Some(tag), digest) => {
            let t = for_tag(repo, tag, rule)?;
            match digest {
                Some(d) if d != t.digest() => Err(TrustError::plain(
                    Reason::DigestMismatch,
                    format!("tag {tag:?} is signed with digest {}, not {d}", t.digest()),
                )),
                _ => Ok(t),
            }
        }
        (None, Some(digest)) => for_digest(repo, digest, rule),
        (None, None) => Err(TrustError::plain(
            Reason::InvalidReference,
            format!("image {reference} has neither tag nor digest"),
        )),
    }
}

/// The trusted target of `tag` under `rule`.
pub(crate) fn for_tag(
    repo: &TrustedRepo,
    tag: &str,
    rule: &RoleRule,
) -> Result<VerifiedTarget, TrustError> {
    match rule {
        RoleRule::Docker => docker_rule(repo, tag),
        RoleRule::Require(required) => required_roles(repo, tag, required),
    }
}

fn build(
    repo: &TrustedRepo,
    tag: &str,
    meta: &FileMeta,
    roles: Vec<String>,
) -> Result<VerifiedTarget, TrustError> {
    // convertTarget: hashes["sha256"] must exist.
    let raw = meta.sha256().ok_or_else(|| {
        TrustError::plain(
            Reason::InvalidTarget,
            format!(
                "tag {tag:?} in {} has no valid sha256 hash",
                roles.join(", ")
            ),
        )
    })?;
    Ok(VerifiedTarget {
        gun: repo.gun().to_owned(),
        tag: tag.to_owned(),
        digest: Digest::from_sha256(&raw),
        length: meta.length,
        roles,
    })
}

fn docker_rule(repo: &TrustedRepo, tag: &str) -> Result<VerifiedTarget, TrustError> {
    let priority = [RELEASES, TARGETS];
    for role in priority {
        let skip: Vec<&str> = priority.iter().copied().filter(|r| *r != role).collect();
        if let Some((hit_role, meta)) = walk(repo, tag, role, &skip) {
            if hit_role != RELEASES && hit_role != TARGETS {
                return Err(TrustError::plain(
                    Reason::TagOnlyInOtherDelegation,
                    format!(
                        "no trust data for tag {tag:?}: it is signed by {hit_role}, and only {RELEASES} or {TARGETS} are accepted"
                    ),
                ));
            }
            return build(repo, tag, meta, vec![hit_role.to_owned()]);
        }
    }
    // Not found: say why as precisely as the data allows.
    if let Some(other) = repo.roles().iter().find(|(name, r)| {
        r.targets.targets.contains_key(tag) && *name != RELEASES && *name != TARGETS
    }) {
        return Err(TrustError::plain(
            Reason::TagOnlyInOtherDelegation,
            format!(
                "no trust data for tag {tag:?}: it is signed only by {}, and only {RELEASES} or {TARGETS} are accepted",
                other.0
            ),
        ));
    }
    if let Some(e) = repo.skipped_error(RELEASES) {
        return Err(e.clone());
    }
    Err(TrustError::plain(
        Reason::TagNotSigned,
        format!("no trust data for tag {tag:?}"),
    ))
}

fn required_roles(
    repo: &TrustedRepo,
    tag: &str,
    required: &[String],
) -> Result<VerifiedTarget, TrustError> {
    let mut found: Vec<(&str, &FileMeta)> = Vec::new();
    for name in required {
        let Some(role) = repo.role(name) else {
            if let Some(e) = repo.skipped_error(name) {
                return Err(e.clone());
            }
            return Err(TrustError::plain(
                Reason::RequiredRoleMissing,
                format!(
                    "required role {name} does not exist in this repository, so it did not sign tag {tag:?}"
                ),
            ));
        };
        let meta = role
            .targets
            .targets
            .get(tag)
            .filter(|_| path_allowed(&role.paths, tag))
            .ok_or_else(|| {
                TrustError::plain(
                    Reason::RequiredRoleMissing,
                    format!("required role {name} did not sign tag {tag:?}"),
                )
            })?;
        found.push((name, meta));
    }
    let Some(((_, first), rest)) = found.split_first() else {
        return docker_rule(repo, tag);
    };
    let first_digest = first.sha256();
    if let Some((other, _)) = rest.iter().find(|(_, m)| m.sha256() != first_digest) {
        return Err(TrustError::plain(
            Reason::RequiredRolesDisagree,
            format!(
                "required roles disagree on tag {tag:?}: {} and {other} signed different digests",
                required.first().map(String::as_str).unwrap_or_default()
            ),
        ));
    }
    build(repo, tag, first, required.to_vec())
}

fn for_digest(
    repo: &TrustedRepo,
    digest: &Digest,
    rule: &RoleRule,
) -> Result<VerifiedTarget, TrustError> {
    let names: BTreeSet<&str> = repo
        .roles()
        .values()
        .flat_map(|r| r.targets.targets.keys().map(String::as_str))
        .collect();
    for name in names {
        if let Ok(t) = for_tag(repo, name, rule)
            && t.digest() == digest
        {
            return Ok(t);
        }
    }
    Err(TrustError::plain(
        Reason::DigestNotSigned,
        format!("no accepted role signs digest {digest} under any tag"),
    ))
}

/// `isValidPath`/`CheckPaths`: some path of the role is a prefix of the target name.
fn path_allowed(paths: &[String], target: &str) -> bool {
    paths.iter().any(|p| target.starts_with(p.as_str()))
}

fn is_ancestor_or_self(candidate: &str, of: &str) -> bool {
    of == candidate || of.starts_with(&format!("{candidate}/"))
}

/// `WalkTargets`: breadth-first from `targets`, descending towards `start`, visiting the
/// loaded roles of `start`'s subtree whose paths admit `target` (skipping `skip` and their
/// subtrees); the first role that lists `target` wins.
fn walk<'r>(
    repo: &'r TrustedRepo,
    target: &str,
    start: &str,
    skip: &[&str],
) -> Option<(&'r str, &'r FileMeta)> {
    let mut queue: VecDeque<&str> = VecDeque::from([TARGETS]);
    while let Some(name) = queue.pop_front() {
        let Some((role_name, role)) = repo.roles().get_key_value(name) else {
            continue;
        };
        let children = role.targets.delegations.iter().map(|d| d.name.as_str());
        if start.starts_with(&format!("{name}/")) {
            queue.extend(children);
            continue;
        }
        if path_allowed(&role.paths, target)
            && is_ancestor_or_self(start, name)
            && !skip.contains(&name)
        {
            if let Some(meta) = role.targets.targets.get(target) {
                return Some((role_name.as_str(), meta));
            }
            queue.extend(children);
        }
    }
    None
}
