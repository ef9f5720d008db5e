//! The decision for one image: which policy applied, in which mode, and what happened (allowed or
//! denied by the policy itself, verified, or failed with a reason).

use super::{Mode, PolicyDecision, PolicyTarget};
use crate::trust::{TrustError, VerifiedTarget};

/// What happened to one image.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A policy (or the default) allows it without verification.
    AllowedByPolicy,
    /// A policy (or the default) denies it outright.
    DeniedByPolicy,
    /// Its signature verified: the trusted target.
    Verified(VerifiedTarget),
    /// Verification failed, with the reason.
    Failed(TrustError),
}

/// The decision for one image: the policy that applied, its mode, and the outcome.
#[derive(Debug, Clone)]
pub struct ImageDecision {
    /// The image as written in the manifest.
    pub image: String,
    /// The matching policy's name; `None` for `defaultAction`.
    pub policy: Option<String>,
    /// The trust root of a verifying policy.
    pub trust_root: Option<String>,
    pub mode: Mode,
    pub outcome: Outcome,
    /// Served from cached trust data.
    pub cache_hit: bool,
    /// How long the decision took.
    pub seconds: f64,
}

impl ImageDecision {
    /// The decision for `image` under `found` (the policy that applies, or the default action):
    /// its policy, trust root and mode come from there.
    pub fn under(
        image: &str,
        found: &PolicyDecision<'_>,
        outcome: Outcome,
        cache_hit: bool,
        seconds: f64,
    ) -> ImageDecision {
        let (trust_root, mode) = match found.target() {
            PolicyTarget::Verify { trust_root, mode } => (Some(trust_root.clone()), *mode),
            PolicyTarget::Allow | PolicyTarget::Deny => (None, Mode::Enforce),
        };
        ImageDecision {
            image: image.to_owned(),
            policy: found.policy_name().map(str::to_owned),
            trust_root,
            mode,
            outcome,
            cache_hit,
            seconds,
        }
    }

    /// `image` failed with `err` before any policy could be chosen (its reference is invalid, or
    /// the namespace's labels are unknown): denied, whatever a policy's mode would have been.
    pub(crate) fn unmatched(image: &str, err: TrustError, seconds: f64) -> ImageDecision {
        ImageDecision {
            image: image.to_owned(),
            policy: None,
            trust_root: None,
            mode: Mode::Enforce,
            outcome: Outcome::Failed(err),
            cache_hit: false,
            seconds,
        }
    }

    /// Whether the outcome, before the mode is applied, is a denial.
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::DeniedByPolicy | Outcome::Failed(_))
    }

    /// Whether the image may run: a failure denies only in enforce mode.
    pub fn admitted(&self) -> bool {
        !self.failed() || self.mode != Mode::Enforce
    }

    /// The policy's name for messages (`defaultAction` when none matched).
    pub fn policy_label(&self) -> &str {
        self.policy.as_deref().unwrap_or("defaultAction")
    }

    /// Why it failed, for people: SPEC's denial text after "denied by policy …: ".
    pub fn reason_text(&self) -> String {
        match &self.outcome {
            Outcome::DeniedByPolicy => "the policy denies this image".to_owned(),
            Outcome::Failed(e) => match e.role_name() {
                Some(role) if !e.detail().contains(role) => format!("{role}: {}", e.detail()),
                _ => e.detail().to_owned(),
            },
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
