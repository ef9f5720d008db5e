//! One structured line per review, with its images, digests and verdicts.

use std::fmt::{self, Write as _};

use crate::admission::Review;
use crate::logs::JsonStr;
use crate::policy::{ContainerDecision, Decision, Evaluation, Outcome};

/// One structured line per review.
pub(super) fn log_review(
    review: &Review,
    eval: Option<&Evaluation>,
    decision: Decision,
    seconds: f64,
) {
    if !tracing::enabled!(tracing::Level::INFO) {
        return;
    }
    let images = ImagesJson(eval.map(|e| e.decisions.as_slice()).unwrap_or_default());
    tracing::info!(
        uid = %review.uid,
        namespace = review.namespace.as_deref().unwrap_or(""),
        kind = %review.kind.kind,
        name = review.name.as_deref().unwrap_or(""),
        operation = review.operation.as_str(),
        dry_run = review.dry_run,
        decision = decision.as_str(),
        duration_ms = seconds * 1e3,
        images_json = %images,
        "admission review"
    );
}

/// A review's images as a compact JSON array, written straight into the log line (no
/// intermediate `Value` or string: this runs for every review).
struct ImagesJson<'a>(&'a [ContainerDecision]);

impl fmt::Display for ImagesJson<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('[')?;
        for (i, d) in self.0.iter().enumerate() {
            let x = &d.decision;
            if i > 0 {
                f.write_char(',')?;
            }
            write!(
                f,
                r#"{{"container":{},"image":{},"policy":{},"mode":"{}""#,
                JsonStr(&d.container),
                JsonStr(&x.image),
                JsonStr(x.policy_label()),
                x.mode.as_str(),
            )?;
            match &x.outcome {
                Outcome::Verified(v) => write!(f, r#","digest":"{}""#, v.digest)?,
                _ => f.write_str(r#","digest":null"#)?,
            }
            if x.failed() {
                write!(
                    f,
                    r#","verdict":"{}","reason":{}}}"#,
                    x.reason_label(),
                    JsonStr(&x.reason_text())
                )?;
            } else {
                f.write_str(r#","verdict":"ok","reason":null}"#)?;
            }
        }
        f.write_char(']')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_image_list_is_an_empty_array() {
        assert_eq!(ImagesJson(&[]).to_string(), "[]");
    }
}
