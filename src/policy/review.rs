//! The answer to one review, from the decision for each container's image: modes applied
//! (enforce denies, warn warns, audit records the would-be denial in an audit annotation), SPEC's
//! denial text, and the review's decision and mode for metrics. Pure.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use sha2::Digest as _;

use super::{ImageDecision, Mode};
use crate::admission::{MAX_AUDIT_KEY_CHARS as MAX_AUDIT_KEY, image_in_container};

/// One container's decision.
#[derive(Debug, Clone)]
pub struct ContainerDecision {
    /// The container's name.
    pub container: String,
    /// The decision for its image (shared by the containers that run the same image).
    pub decision: Arc<ImageDecision>,
}

/// The outcome of one AdmissionReview.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Allowed without warnings (audit records may still be written).
    Allowed,
    /// Denied: an image failed under an enforce policy.
    Denied,
    /// Allowed with warnings (warn mode).
    Warned,
}

impl Decision {
    pub(crate) const ALL: [Decision; 3] = [Decision::Allowed, Decision::Denied, Decision::Warned];

    /// The stable name (a metric label value).
    pub const fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Denied => "denied",
            Decision::Warned => "warned",
        }
    }
}

/// What to answer.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    /// One per container, in the order given.
    pub decisions: Vec<ContainerDecision>,
    /// SPEC's denial message when an enforce policy failed, naming every failing image.
    pub denial: Option<String>,
    /// One per image that failed under a warn policy.
    pub warnings: Vec<String>,
    /// Would-be denials under audit policies.
    pub audit: BTreeMap<String, String>,
}

impl Evaluation {
    /// Applies each decision's mode: a failure under enforce denies, under warn warns, under audit
    /// records an audit annotation.
    pub fn new(decisions: Vec<ContainerDecision>) -> Evaluation {
        let mut failures = Vec::new();
        let mut warnings = Vec::new();
        let mut audit = BTreeMap::new();
        for d in &decisions {
            let x = &d.decision;
            if !x.failed() {
                continue;
            }
            let failure = ImageFailure {
                image: x.image.clone(),
                container: d.container.clone(),
                policy: x.policy_label().to_owned(),
                reason: x.reason_text(),
            };
            match x.mode {
                Mode::Enforce => failures.push(failure),
                Mode::Warn => warnings.push(failure.warning()),
                Mode::Audit => {
                    let key = audit_key(&d.container, &audit);
                    audit.insert(key, failure.clause());
                }
            }
        }
        Evaluation {
            decisions,
            denial: (!failures.is_empty()).then(|| denial_message(&failures)),
            warnings,
            audit,
        }
    }

    /// Whether the review is allowed: no image failed under an enforce policy.
    pub fn allowed(&self) -> bool {
        self.denial.is_none()
    }

    /// `denied`, `warned` (allowed with warnings) or `allowed`.
    pub fn decision(&self) -> Decision {
        if !self.allowed() {
            Decision::Denied
        } else if self.warnings.is_empty() {
            Decision::Allowed
        } else {
            Decision::Warned
        }
    }

    /// The mode that decided, for metrics: the strictest mode among the verifying policies that
    /// failed, else the strictest among verifying policies; `None` when no policy verified.
    pub fn mode(&self) -> Option<Mode> {
        let rank = |m: &Mode| match m {
            Mode::Enforce => 3,
            Mode::Warn => 2,
            Mode::Audit => 1,
        };
        let verifying = self.decisions.iter().filter(|d| d.decision.verifying());
        let failed = verifying.clone().filter(|d| d.decision.failed());
        failed
            .map(|d| d.decision.mode)
            .max_by_key(rank)
            .or_else(|| verifying.map(|d| d.decision.mode).max_by_key(rank))
    }
}

/// Why one image was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageFailure {
    /// The image as written in the manifest.
    pub image: String,
    /// The container's name.
    pub container: String,
    /// The policy's name, or `defaultAction`.
    pub policy: String,
    /// Why, for people: the text after `denied by policy "…": `.
    pub reason: String,
}

/// The denial message: one clause per failure in the given order, which is container order in
/// the spec when the failures come from [`crate::admission::images_to_verify`]; exact duplicates
/// are named once. Each clause is SPEC's form:
/// `image "registry.ai-team.internal/ml/pytorch-cuda:v2.9" (container "trainer") denied by policy
/// "pytorch-gpu-prod": no trust data for tag "v2.9"`, joined with `; `.
pub fn denial_message(failures: &[ImageFailure]) -> String {
    let mut seen = HashSet::new();
    let mut clauses = Vec::with_capacity(failures.len());
    for f in failures {
        if seen.insert(f) {
            clauses.push(f.clause());
        }
    }
    clauses.join("; ")
}

impl ImageFailure {
    /// SPEC's clause: `image "…" (container "…") denied by policy "…": <reason>`.
    pub(crate) fn clause(&self) -> String {
        format!(
            "{} denied by policy {:?}: {}",
            image_in_container(&self.image, &self.container),
            self.policy,
            self.reason
        )
    }

    /// The warning for a failure under a warn policy.
    pub fn warning(&self) -> String {
        format!(
            "{} is not trusted under policy {:?} (warn mode): {}",
            image_in_container(&self.image, &self.container),
            self.policy,
            self.reason
        )
    }
}

const AUDIT_PREFIX: &str = "audit-";

/// `audit-<container>`: one distinct key per container. A name that does not fit as it is (too
/// long, or characters a key cannot hold) is cut and given a hash of the whole name, so two
/// containers sharing a long prefix never overwrite each other's record.
fn audit_key(container: &str, taken: &BTreeMap<String, String>) -> String {
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
    let plain = format!("{AUDIT_PREFIX}{container}");
    let fits = plain.len() <= MAX_AUDIT_KEY
        && container.chars().all(valid)
        && container.ends_with(|c: char| c.is_ascii_alphanumeric());
    if fits && !taken.contains_key(&plain) {
        return plain;
    }
    let hash = hex::encode(sha2::Sha256::digest(container.as_bytes()));
    let short = hash.get(..10).unwrap_or(&hash);
    let room = MAX_AUDIT_KEY - AUDIT_PREFIX.len() - 1 - short.len();
    let head: String = container
        .chars()
        .map(|c| {
            if valid(c) {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(room)
        .collect();
    let head = head.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    let mut key = if head.is_empty() {
        format!("{AUDIT_PREFIX}{short}")
    } else {
        format!("{AUDIT_PREFIX}{head}-{short}")
    };
    // The same container listed twice (a review of both lists of a Pod): keep both records.
    let mut n = 2;
    while taken.contains_key(&key) {
        key = format!("{AUDIT_PREFIX}{short}-{n}");
        n += 1;
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A qualified name's part after the `/`, as the API server checks audit annotation keys.
    fn is_qualified_name_part(k: &str) -> bool {
        let b = k.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b.first().is_some_and(u8::is_ascii_alphanumeric)
            && b.last().is_some_and(u8::is_ascii_alphanumeric)
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    }

    #[test]
    fn audit_keys_are_distinct_and_valid() {
        let long_a = format!("{}-a", "x".repeat(60));
        let long_b = format!("{}-b", "x".repeat(60));
        let mut taken = BTreeMap::new();
        for c in [
            "trainer",
            long_a.as_str(),
            long_b.as_str(),
            "Trainer_Sidecar",
            "-",
            "trainer",
        ] {
            let k = audit_key(c, &taken);
            assert!(is_qualified_name_part(&k), "{c:?} → {k:?}");
            assert!(!taken.contains_key(&k), "{c:?} → {k:?} overwrites a record");
            taken.insert(k, c.to_owned());
        }
        assert!(taken.contains_key("audit-trainer"));
        assert_eq!(taken.len(), 6);
    }

    #[test]
    fn denial_message_has_specs_form() {
        let f = ImageFailure {
            image: "registry.ai-team.internal/ml/pytorch-cuda:v2.9".into(),
            container: "trainer".into(),
            policy: "pytorch-gpu-prod".into(),
            reason: "no trust data for tag \"v2.9\"".into(),
        };
        assert_eq!(
            denial_message(std::slice::from_ref(&f)),
            r#"image "registry.ai-team.internal/ml/pytorch-cuda:v2.9" (container "trainer") denied by policy "pytorch-gpu-prod": no trust data for tag "v2.9""#
        );
        assert_eq!(denial_message(&[]), "");
    }
}
