//! The decision for one image: which policy applied, in which mode, what each of its trust roots
//! found, and the outcome (allowed or denied by the policy itself, verified, or failed with a
//! reason). Combining the trust roots' findings under `require: any | all` is decided here.

use super::{Mode, PolicyDecision, PolicyTarget, Require};
use crate::reference::Digest;
use crate::verdict::{Reason, TrustError};

/// The signature formats a trust root can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Docker Content Trust: Notary v1 / TUF trust data at a notary server.
    Notary,
    /// Notary Project signatures (Notation), found as referrers of the digest.
    Notation,
    /// cosign signatures: the `.sig` tag or Sigstore bundles.
    Cosign,
}

impl Kind {
    /// The stable name (a metric label value and the configuration's key).
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Notary => "notary",
            Kind::Notation => "notation",
            Kind::Cosign => "cosign",
        }
    }
}

/// A signature a trust root accepted on the image's digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The trust root's name.
    pub trust_root: String,
    /// Its signature format.
    pub kind: Kind,
    /// Who signed: the Notary v1 roles, a certificate subject, or key names.
    pub signer: String,
}

/// The image's digest, and the signatures that made it trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The digest every accepting trust root verified: the one that runs.
    pub digest: Digest,
    /// One per trust root that accepted the image.
    pub signatures: Vec<Signature>,
}

impl Verified {
    /// The signers, for people: `ml-platform: targets/releases; ml-cosign: ci`.
    pub fn signers(&self) -> String {
        self.signatures
            .iter()
            .map(|s| format!("{}: {}", s.trust_root, s.signer))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// What one trust root found for the image.
#[derive(Debug, Clone)]
pub struct RootCheck {
    /// The trust root's name.
    pub trust_root: String,
    /// Its signature format.
    pub kind: Kind,
    /// The digest it verified and who signed it, or why not.
    pub result: Result<crate::verdict::Verified, TrustError>,
    /// Served from cached trust data.
    pub cache_hit: bool,
    /// How long it took.
    pub seconds: f64,
}

/// What happened to one image.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A policy (or the default) allows it without verification.
    AllowedByPolicy,
    /// A policy (or the default) denies it outright.
    DeniedByPolicy,
    /// Its signatures verified as the policy requires.
    Verified(Verified),
    /// Verification failed, with the reason.
    Failed(TrustError),
}

impl Outcome {
    /// The outcome of a verifying policy from its trust roots' checks: under `all`, every root
    /// must have verified, on one digest; under `any`, one is enough (and every root that
    /// verified is named). With one trust root, its own finding, unchanged.
    pub fn combine(require: Require, checks: &[RootCheck]) -> Outcome {
        let failed: Vec<(&RootCheck, &TrustError)> = checks
            .iter()
            .filter_map(|c| c.result.as_ref().err().map(|e| (c, e)))
            .collect();
        if let ([(_, e)], 1) = (failed.as_slice(), checks.len()) {
            return Outcome::Failed((*e).clone());
        }
        let verified: Vec<(&RootCheck, &Digest, String)> = checks
            .iter()
            .filter_map(|c| {
                c.result
                    .as_ref()
                    .ok()
                    .map(|v| (c, v.digest(), v.signed_by()))
            })
            .collect();
        let Some((first_root, first, _)) = verified.first() else {
            return Outcome::Failed(roots_failed(require, checks.len(), &failed));
        };
        if require == Require::All && !failed.is_empty() {
            return Outcome::Failed(roots_failed(require, checks.len(), &failed));
        }
        // What runs is one digest: roots that verified different ones disagree, under any too.
        if let Some((other, d, _)) = verified.iter().find(|(_, d, _)| d != first) {
            return Outcome::Failed(TrustError::new(
                Reason::RootsDisagree,
                None,
                format!(
                    "trust roots disagree on the digest: {:?} verified {first}, {:?} verified {d}",
                    first_root.trust_root, other.trust_root
                ),
            ));
        }
        Outcome::Verified(Verified {
            digest: (*first).clone(),
            signatures: verified
                .iter()
                .map(|(c, _, s)| Signature {
                    trust_root: c.trust_root.clone(),
                    kind: c.kind,
                    signer: s.clone(),
                })
                .collect(),
        })
    }
}

/// The failure of a multi-root policy: each failing root with its reason; the first one's reason
/// is the label.
fn roots_failed(
    require: Require,
    roots: usize,
    failed: &[(&RootCheck, &TrustError)],
) -> TrustError {
    let reason = failed.first().map_or(Reason::Internal, |(_, e)| e.reason());
    let each: Vec<String> = failed
        .iter()
        .map(|(c, e)| {
            format!(
                "trust root {:?} ({}): {}",
                c.trust_root,
                c.kind.as_str(),
                reason_text(e)
            )
        })
        .collect();
    let need = match require {
        Require::All => format!("all {roots} trust roots must verify"),
        Require::Any => format!("none of {roots} trust roots verified"),
    };
    TrustError::new(reason, None, format!("{need}: {}", each.join("; ")))
}

/// A failure's text for people: the detail, prefixed by the role it concerns when the detail
/// does not name it.
fn reason_text(e: &TrustError) -> String {
    match e.role_name() {
        Some(role) if !e.detail().contains(role) => format!("{role}: {}", e.detail()),
        _ => e.detail().to_owned(),
    }
}

/// The decision for one image: the policy that applied, its mode, and the outcome.
#[derive(Debug, Clone)]
pub struct ImageDecision {
    /// The image as written in the manifest.
    pub image: String,
    /// The matching policy's name; `None` for `defaultAction`.
    pub policy: Option<String>,
    /// The trust roots of a verifying policy (empty for allow, deny and unmatched images).
    pub trust_roots: Vec<String>,
    /// The verifying policy's mode; `enforce` for `action`, `defaultAction` and images no policy
    /// could be chosen for.
    pub mode: Mode,
    /// What happened, before the mode is applied.
    pub outcome: Outcome,
    /// What each trust root found (empty when nothing was verified).
    pub checks: Vec<RootCheck>,
    /// How long the decision took.
    pub seconds: f64,
}

impl ImageDecision {
    /// The decision for `image` under `found` (the policy that applies, or the default action):
    /// its policy, trust roots and mode come from there.
    pub fn under(
        image: &str,
        found: &PolicyDecision<'_>,
        outcome: Outcome,
        checks: Vec<RootCheck>,
        seconds: f64,
    ) -> ImageDecision {
        let (trust_roots, mode) = match found.target() {
            PolicyTarget::Verify {
                trust_roots, mode, ..
            } => (trust_roots.clone(), *mode),
            PolicyTarget::Allow | PolicyTarget::Deny => (Vec::new(), Mode::Enforce),
        };
        ImageDecision {
            image: image.to_owned(),
            policy: found.policy_name().map(str::to_owned),
            trust_roots,
            mode,
            outcome,
            checks,
            seconds,
        }
    }

    /// `image` failed with `err` before any policy could be chosen (its reference is invalid, or
    /// the namespace's labels are unknown): denied, whatever a policy's mode would have been.
    pub fn unmatched(image: &str, err: TrustError, seconds: f64) -> ImageDecision {
        ImageDecision {
            image: image.to_owned(),
            policy: None,
            trust_roots: Vec::new(),
            mode: Mode::Enforce,
            outcome: Outcome::Failed(err),
            checks: Vec::new(),
            seconds,
        }
    }

    /// Whether a policy that verifies signatures applied.
    pub fn verifying(&self) -> bool {
        !self.trust_roots.is_empty()
    }

    /// Whether the outcome, before the mode is applied, is a denial.
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::DeniedByPolicy | Outcome::Failed(_))
    }

    /// Whether the image may run: a failure denies only in enforce mode.
    pub fn admitted(&self) -> bool {
        !self.failed() || self.mode != Mode::Enforce
    }

    /// The verdict: allowed, warned (it fails, and its policy only warns or audits), or denied.
    pub fn verdict(&self) -> Verdict {
        if !self.failed() {
            Verdict::Allowed
        } else if self.admitted() {
            Verdict::Warned
        } else {
            Verdict::Denied
        }
    }

    /// Whether every trust root was served from cached trust data.
    pub fn cache_hit(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.cache_hit)
    }

    /// The policy's name for messages (`defaultAction` when none matched).
    pub fn policy_label(&self) -> &str {
        self.policy.as_deref().unwrap_or("defaultAction")
    }

    /// Why it failed, for people: SPEC's denial text after "denied by policy …: ".
    pub fn reason_text(&self) -> String {
        match &self.outcome {
            Outcome::DeniedByPolicy => "the policy denies this image".to_owned(),
            Outcome::Failed(e) => reason_text(e),
            Outcome::AllowedByPolicy | Outcome::Verified(_) => String::new(),
        }
    }

    /// A bounded label for metrics.
    pub fn reason_label(&self) -> &'static str {
        match &self.outcome {
            Outcome::DeniedByPolicy => "policy_deny",
            Outcome::Failed(e) => e.reason().as_str(),
            Outcome::AllowedByPolicy | Outcome::Verified(_) => "none",
        }
    }
}

/// What a decision means for the workload: the verdict `signgate check` and the audit report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// The policy admits it, verified or allowed.
    Allowed,
    /// It fails, and its policy only warns or audits.
    Warned,
    /// It fails under an enforcing policy: it would not be admitted now.
    Denied,
}

impl Verdict {
    /// Its name in tables, JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Warned => "warned",
            Verdict::Denied => "denied",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn ok(root: &str, kind: Kind, digest: &str) -> RootCheck {
        RootCheck {
            trust_root: root.into(),
            kind,
            result: Ok(crate::verdict::Verified::new(
                Digest::parse(digest).unwrap(),
                vec![format!("{root}-signer")],
                None,
            )),
            cache_hit: true,
            seconds: 0.0,
        }
    }

    fn failed(root: &str, kind: Kind, reason: Reason, detail: &str) -> RootCheck {
        RootCheck {
            trust_root: root.into(),
            kind,
            result: Err(TrustError::new(reason, None, detail)),
            cache_hit: false,
            seconds: 0.0,
        }
    }

    fn reason(o: &Outcome) -> Option<Reason> {
        match o {
            Outcome::Failed(e) => Some(e.reason()),
            _ => None,
        }
    }

    #[test]
    fn one_trust_root_decides_alone_with_its_own_reason_and_text() {
        let f = failed(
            "dct",
            Kind::Notary,
            Reason::TagNotSigned,
            "no trust data for tag \"v2.9\"",
        );
        for require in [Require::Any, Require::All] {
            match Outcome::combine(require, std::slice::from_ref(&f)) {
                Outcome::Failed(e) => {
                    assert_eq!(e.reason(), Reason::TagNotSigned);
                    assert_eq!(e.detail(), "no trust data for tag \"v2.9\"");
                }
                other => panic!("{other:?}"),
            }
            let Outcome::Verified(v) = Outcome::combine(require, &[ok("dct", Kind::Notary, A)])
            else {
                panic!("not verified")
            };
            assert_eq!(v.digest.as_str(), A);
        }
    }

    #[test]
    fn all_needs_every_root_on_one_digest() {
        let both = [ok("dct", Kind::Notary, A), ok("nv2", Kind::Notation, A)];
        let Outcome::Verified(v) = Outcome::combine(Require::All, &both) else {
            panic!("not verified")
        };
        assert_eq!(v.signatures.len(), 2);
        assert_eq!(v.signers(), "dct: dct-signer; nv2: nv2-signer");

        let one_missing = [
            ok("dct", Kind::Notary, A),
            failed(
                "nv2",
                Kind::Notation,
                Reason::SignatureNotFound,
                "notation: no signature",
            ),
        ];
        let o = Outcome::combine(Require::All, &one_missing);
        assert_eq!(reason(&o), Some(Reason::SignatureNotFound));
        let Outcome::Failed(e) = o else {
            unreachable!()
        };
        assert!(e.detail().contains("all 2 trust roots must verify"), "{e}");
        assert!(e.detail().contains("trust root \"nv2\" (notation)"), "{e}");

        let disagree = [ok("dct", Kind::Notary, A), ok("nv2", Kind::Notation, B)];
        assert_eq!(
            reason(&Outcome::combine(Require::All, &disagree)),
            Some(Reason::RootsDisagree)
        );
    }

    #[test]
    fn any_needs_one_and_names_every_failure_when_none_verified() {
        let one = [
            failed("dct", Kind::Notary, Reason::UpstreamError, "notary down"),
            ok("cos", Kind::Cosign, A),
        ];
        let Outcome::Verified(v) = Outcome::combine(Require::Any, &one) else {
            panic!("not verified")
        };
        assert_eq!(v.signatures[0].trust_root, "cos");
        let none = [
            failed("dct", Kind::Notary, Reason::UpstreamError, "notary down"),
            failed(
                "cos",
                Kind::Cosign,
                Reason::UntrustedSigner,
                "cosign: 0 of 1 keys signed",
            ),
        ];
        let Outcome::Failed(e) = Outcome::combine(Require::Any, &none) else {
            panic!("verified")
        };
        assert_eq!(e.reason(), Reason::UpstreamError);
        assert!(e.detail().contains("none of 2 trust roots verified"), "{e}");
        assert!(
            e.detail().contains("notary down") && e.detail().contains("0 of 1 keys"),
            "{e}"
        );
        // Two roots that pass on different digests disagree under any, too: what runs is one.
        let disagree = [ok("dct", Kind::Notary, A), ok("cos", Kind::Cosign, B)];
        assert_eq!(
            reason(&Outcome::combine(Require::Any, &disagree)),
            Some(Reason::RootsDisagree)
        );
    }
}
