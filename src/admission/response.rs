//! AdmissionReview responses, shaped the way kube-apiserver checks them
//! (`VerifyAdmissionResponse` in kube-apiserver's `pkg/admission/plugin/webhook/request`).
//!
//! - Envelope exactly `admission.k8s.io/v1` / `AdmissionReview`, `response.uid` echoing the
//!   request's, lower-camel field names.
//! - No `patch` or `patchType` except from [`patch_response`] (the mutating endpoint).
//! - A denial carries `status.code` 403, `reason` `Forbidden` and the message; the API server
//!   prefixes it with `admission webhook "<name>" denied the request: `.
//! - Warnings: the API server silently drops any with a control character, cuts each to 256 runes
//!   once 4096 runes are used in a request, and drops the rest. They are made to fit here instead,
//!   so nothing is lost without a trace.
//! - Audit annotation keys are recorded as `<webhook name>/<key>` and must then be a qualified
//!   name with exactly one `/`, or they are dropped.

use std::collections::{BTreeMap, HashSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};

use super::review::{API_VERSION, KIND};

/// The longest warning the API server passes on uncut, in characters (runes).
pub const MAX_WARNING_CHARS: usize = 256;
/// The API server's budget for all warning text of one request, in characters (runes).
pub const MAX_WARNINGS_TOTAL_CHARS: usize = 4096;
/// The longest audit annotation key: the API server records it as `<webhook name>/<key>`, a
/// qualified name whose part after the `/` is at most 63 characters (longer, or with a second
/// `/`, it is dropped).
pub const MAX_AUDIT_KEY_CHARS: usize = 63;
const ELLIPSIS: char = '…';

/// An allowing response. `warnings` and `audit_annotations` are sanitised
/// ([`sanitize_warnings`], [`sanitize_audit_annotations`]) and omitted when empty.
pub fn allowed(
    uid: &str,
    warnings: Vec<String>,
    audit_annotations: BTreeMap<String, String>,
) -> Value {
    review(uid, true, None, warnings, audit_annotations, None)
}

/// A denying response with `status: {code: 403, reason: Forbidden, message}`.
pub fn denied(
    uid: &str,
    message: String,
    warnings: Vec<String>,
    audit_annotations: BTreeMap<String, String>,
) -> Value {
    let message = if message.trim().is_empty() {
        "denied by signgate".to_owned()
    } else {
        message
    };
    let status = json!({"code": 403, "reason": "Forbidden", "message": message});
    review(uid, false, Some(status), warnings, audit_annotations, None)
}

/// An allowing response for the mutating endpoint carrying a JSONPatch (RFC 6902 array):
/// `patchType: JSONPatch` and `patch` as base64 of its JSON. An empty patch (`[]` or `null`) gives
/// a plain allowing response, without `patch` or `patchType`. Warnings and audit annotations as
/// in [`allowed`]. Never use this on `/validate`: the API server rejects any patch from a
/// validating webhook.
pub fn patch_response(
    uid: &str,
    json_patch: Value,
    warnings: Vec<String>,
    audit_annotations: BTreeMap<String, String>,
) -> Value {
    let patch = match &json_patch {
        Value::Null => None,
        Value::Array(ops) if ops.is_empty() => None,
        patch => Some(B64.encode(patch.to_string())),
    };
    review(uid, true, None, warnings, audit_annotations, patch)
}

fn review(
    uid: &str,
    allowed: bool,
    status: Option<Value>,
    warnings: Vec<String>,
    audit_annotations: BTreeMap<String, String>,
    patch: Option<String>,
) -> Value {
    let mut response = Map::new();
    response.insert("uid".into(), Value::String(uid.to_owned()));
    response.insert("allowed".into(), Value::Bool(allowed));
    if let Some(status) = status {
        response.insert("status".into(), status);
    }
    let warnings = sanitize_warnings(warnings);
    if !warnings.is_empty() {
        response.insert(
            "warnings".into(),
            Value::Array(warnings.into_iter().map(Value::String).collect()),
        );
    }
    let annotations = sanitize_audit_annotations(audit_annotations);
    if !annotations.is_empty() {
        response.insert(
            "auditAnnotations".into(),
            Value::Object(
                annotations
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            ),
        );
    }
    if let Some(patch) = patch {
        response.insert("patchType".into(), Value::String("JSONPatch".into()));
        response.insert("patch".into(), Value::String(patch));
    }
    json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "response": Value::Object(response),
    })
}

/// Makes warnings pass the API server unchanged: control characters become spaces, blank and
/// duplicate warnings are dropped (the API server drops duplicates too), each is cut to
/// [`MAX_WARNING_CHARS`] with a final `…`, and when all of them exceed
/// [`MAX_WARNINGS_TOTAL_CHARS`] the first ones that fit are kept, followed by `… and N more`.
pub fn sanitize_warnings(warnings: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut clean: Vec<(String, usize)> = Vec::with_capacity(warnings.len());
    for warning in warnings {
        let text = truncate(&without_controls(&warning), MAX_WARNING_CHARS);
        if text.is_empty() || !seen.insert(text.clone()) {
            continue;
        }
        let chars = text.chars().count();
        clean.push((text, chars));
    }

    let total: usize = clean.iter().map(|(_, chars)| chars).sum();
    if total <= MAX_WARNINGS_TOTAL_CHARS {
        return clean.into_iter().map(|(text, _)| text).collect();
    }
    // Keep the longest prefix that leaves room for the summary of what is dropped.
    let mut keep = 0;
    let mut used = 0;
    for (i, (_, chars)) in clean.iter().enumerate() {
        if used + chars + more(clean.len() - i - 1).chars().count() > MAX_WARNINGS_TOTAL_CHARS {
            break;
        }
        used += chars;
        keep = i + 1;
    }
    let dropped = clean.len() - keep;
    let mut out: Vec<String> = clean.into_iter().take(keep).map(|(text, _)| text).collect();
    out.push(more(dropped));
    out
}

fn more(n: usize) -> String {
    format!("{ELLIPSIS} and {n} more")
}

fn without_controls(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// `s` cut to at most `max` characters, the last of them `…` when cut.
fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some(_) => {
            let mut cut: String = s.chars().take(max.saturating_sub(1)).collect();
            cut.push(ELLIPSIS);
            cut
        }
    }
}

/// Makes audit annotation keys valid once the API server prefixes them with `<webhook name>/`:
/// a qualified name's name part, 1 to 63 characters of `[A-Za-z0-9-_.]` starting and ending
/// alphanumeric, and no `/` (the full key must have exactly one). Other characters become `-`,
/// leading and trailing non-alphanumerics are trimmed, long keys are cut, and a key left empty is
/// dropped. When two keys end up equal, the first (in key order) wins. Values are kept as they are.
pub fn sanitize_audit_annotations(
    annotations: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (key, value) in annotations {
        let key = audit_key(&key);
        if !key.is_empty() {
            out.entry(key).or_insert(value);
        }
    }
    out
}

fn audit_key(key: &str) -> String {
    let mapped: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    // All ASCII now, so byte and character counts agree.
    let cut: String = trimmed.chars().take(MAX_AUDIT_KEY_CHARS).collect();
    cut.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_to_256_chars_with_ellipsis() {
        let long = "é".repeat(300);
        let cut = truncate(&long, MAX_WARNING_CHARS);
        assert_eq!(cut.chars().count(), 256);
        assert!(cut.ends_with('…'));
        let exact = "a".repeat(256);
        assert_eq!(truncate(&exact, MAX_WARNING_CHARS), exact);
    }

    #[test]
    fn control_characters_become_spaces() {
        let out = sanitize_warnings(vec!["line one\nline\ttwo\u{7f}\u{85}end\r\n".into()]);
        assert_eq!(out, vec!["line one line two  end".to_owned()]);
    }

    #[test]
    fn blank_and_duplicate_warnings_are_dropped() {
        let out = sanitize_warnings(vec![
            "a".into(),
            "\n".into(),
            "".into(),
            "a".into(),
            "b".into(),
        ]);
        assert_eq!(out, vec!["a".to_owned(), "b".to_owned()]);
    }

    #[test]
    fn over_budget_keeps_a_prefix_and_counts_the_rest() {
        let warnings: Vec<String> = (0..40)
            .map(|i| format!("{i:03}{}", "x".repeat(297)))
            .collect();
        let out = sanitize_warnings(warnings);
        let total: usize = out.iter().map(|w| w.chars().count()).sum();
        assert!(total <= MAX_WARNINGS_TOTAL_CHARS);
        assert!(out.iter().all(|w| w.chars().count() <= MAX_WARNING_CHARS));
        // 256 per warning: 15 fit with the summary (15 * 256 = 3840), 16 would not.
        assert_eq!(out.len(), 16);
        assert_eq!(out.last().unwrap(), "… and 25 more");
        assert!(out[14].starts_with("014"));
    }

    #[test]
    fn budget_edge_uses_every_char() {
        // 16 warnings of exactly 256 chars fill the budget exactly: nothing dropped.
        let warnings: Vec<String> = (0..16)
            .map(|i| format!("{i:02}{}", "y".repeat(254)))
            .collect();
        assert_eq!(sanitize_warnings(warnings.clone()), warnings);
    }

    #[test]
    fn audit_keys_become_qualified_name_parts() {
        let mut a = BTreeMap::new();
        a.insert("denied-images".to_owned(), "1".to_owned());
        a.insert("policy/pytorch-gpu-prod".to_owned(), "2".to_owned());
        a.insert("-._".to_owned(), "3".to_owned());
        a.insert("Would Deny!".to_owned(), "4".to_owned());
        a.insert("k".repeat(70), "5".to_owned());
        let out = sanitize_audit_annotations(a);
        let keys: Vec<&str> = out.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            vec![
                "Would-Deny",
                "denied-images",
                &"k".repeat(63),
                "policy-pytorch-gpu-prod"
            ]
        );
    }
}
