//! The trust core against genuine repositories and one function per attack, each asserting the
//! exact reason. Repositories are generated and signed in the test (`common::Repo`).

mod common;

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rstest::rstest;
use serde_json::json;

use common::*;
use signgate::notary::{
    self, Limits, PinnedKey, Reason, RoleRule, TrustState, VerifiedTarget, VerifyContext,
};
use signgate::reference::Reference;

type Files = BTreeMap<String, Vec<u8>>;

/// One verification: the data, the pins, the clock, prior state and what is asked.
struct Scenario {
    files: Files,
    pins: Vec<PinnedKey>,
    now: time::OffsetDateTime,
    previous: TrustState,
    limits: Limits,
    image: String,
    rule: RoleRule,
}

impl Scenario {
    fn new(repo: &Repo, tag_or_digest: &str) -> Scenario {
        Scenario::with_files(repo, repo.files(), tag_or_digest)
    }

    fn with_files(repo: &Repo, files: Files, tag_or_digest: &str) -> Scenario {
        Scenario {
            files,
            pins: repo.pins(),
            now: now(),
            previous: TrustState::default(),
            limits: Limits::default(),
            image: format!("{}{tag_or_digest}", repo.gun),
            rule: RoleRule::Docker,
        }
    }

    fn run(&self) -> Result<VerifiedTarget, Reason> {
        let reference = Reference::parse(&self.image).unwrap();
        let gun = reference.gun();
        let ctx = VerifyContext {
            gun: &gun,
            pins: &self.pins,
            now: self.now,
            previous: &self.previous,
            limits: self.limits,
        };
        notary::verify_image(&ctx, &self.files, &reference, &self.rule)
            .map(|(t, _)| t)
            .map_err(|e| {
                eprintln!("{}: {e}", e.reason());
                e.reason()
            })
    }
}

fn trusted(s: &Scenario) -> (String, Vec<String>) {
    let t = s
        .run()
        .unwrap_or_else(|r| panic!("expected trusted, got {r}"));
    (t.digest().as_str().to_owned(), t.roles().to_vec())
}

fn digest(hex: &str) -> String {
    format!("sha256:{hex}")
}

/// A root key whose certificate is valid from yesterday for ten years.
fn root_key(seed: u8) -> Key {
    Key::root(seed, GUN, now() - days(1), now() + days(3650))
}

/// A repository whose version 1 root is signed by a root certificate valid from `from` to `to`.
fn repo_with_root_certificate(from: time::OffsetDateTime, to: time::OffsetDateTime) -> Repo {
    let mut repo = Repo::new();
    repo.root_key = Key::root(1, GUN, from, to);
    repo.root_signers = vec![repo.root_key.clone()];
    repo.root = root_body(
        1,
        &[&repo.root_key],
        &repo.targets_key,
        &repo.snapshot_key,
        &repo.timestamp_key,
    );
    repo
}

/// The served text of `repo`'s targets.json.
fn targets_text(repo: &Repo) -> String {
    String::from_utf8(repo.files()["targets.json"].clone()).unwrap()
}

/// `repo`'s files with `name` served as `bytes`, nothing re-signed.
fn files_with(repo: &Repo, name: &str, bytes: Vec<u8>) -> Files {
    let mut files = repo.files();
    files.insert(name.into(), bytes);
    files
}

/// `repo`'s files with `name` served as `bytes` and snapshot and timestamp re-signed over them
/// (as a server holding those keys can), asked for `tag`.
fn rechained(repo: &Repo, name: &str, bytes: Vec<u8>, tag: &str) -> Scenario {
    let mut files = files_with(repo, name, bytes);
    repo.rechain(&mut files);
    Scenario::with_files(repo, files, tag)
}

/// A `{keyid, method, sig}` signature whose `sig` is `sign` over `repo`'s canonical targets body.
fn targets_signature(
    repo: &Repo,
    keyid: &str,
    method: &str,
    sign: impl FnOnce(&[u8]) -> Vec<u8>,
) -> serde_json::Value {
    let canon =
        signgate::tuf::canonical::canonicalize(repo.targets.to_string().as_bytes()).unwrap();
    json!({"keyid": keyid, "method": method, "sig": B64.encode(sign(&canon))})
}

/// `repo`'s targets body served with exactly `sigs`, re-chained, asked for `:base`.
fn targets_signed_with(repo: &Repo, sigs: Vec<serde_json::Value>) -> Scenario {
    rechained(repo, "targets.json", envelope(&repo.targets, sigs), ":base")
}

/// Genuine data asked for `:v2.9` by a verifier that already trusted `newer`.
fn after_trusting(newer: &Repo) -> Scenario {
    let mut s = Scenario::new(&Repo::new(), ":v2.9");
    s.previous = state_after(newer, &newer.files());
    s
}

// ---------------------------------------------------------------- genuine repositories

#[rstest]
#[case::tag_in_releases(":v2.9", DIGEST_A, "targets/releases")]
#[case::releases_wins_over_targets(":v2.8", DIGEST_A, "targets/releases")]
#[case::tag_only_in_targets(":base", DIGEST_C, "targets")]
#[case::tag_and_matching_digest(&format!(":v2.9@sha256:{DIGEST_A}"), DIGEST_A, "targets/releases")]
#[case::digest_signed_under_some_tag(&format!("@sha256:{DIGEST_C}"), DIGEST_C, "targets")]
fn accepts_genuine_repository(#[case] reference: &str, #[case] want: &str, #[case] role: &str) {
    let repo = Repo::new();
    let s = Scenario::new(&repo, reference);
    assert_eq!(trusted(&s), (digest(want), vec![role.to_owned()]));
}

#[test]
fn digest_reference_uses_the_same_rule_as_tags() {
    // B is signed by targets for v2.8, but releases overrides v2.8 with A, and ci-only (B) is
    // in a delegation docker does not accept: B is trusted under no tag.
    let repo = Repo::new();
    let s = Scenario::new(&repo, &format!("@sha256:{DIGEST_B}"));
    assert_eq!(s.run(), Err(Reason::DigestNotSigned));
}

#[test]
fn follows_root_rotated_twice_from_the_pinned_original_key() {
    let mut repo = Repo::new();
    let original = repo.root_key.pin();
    repo.rotate_root(root_key(11));
    repo.rotate_root(root_key(12));
    let mut s = Scenario::new(&repo, ":v2.9");
    s.pins = vec![original];
    assert_eq!(trusted(&s).0, digest(DIGEST_A));
    // The newest key pinned alone works too.
    s.pins = repo.pins();
    assert_eq!(trusted(&s).0, digest(DIGEST_A));
}

#[test]
fn accepts_a_pinned_certificate_as_well_as_a_public_key() {
    let repo = Repo::new();
    let Key::P256Cert(_, pem) = &repo.root_key else {
        unreachable!()
    };
    let mut s = Scenario::new(&repo, ":v2.9");
    s.pins = PinnedKey::from_pem(pem.as_bytes()).unwrap();
    assert_eq!(trusted(&s).0, digest(DIGEST_A));
}

#[test]
fn verifies_canonical_bytes_not_the_served_text() {
    // Go's Marshal HTML-escapes and compacts the embedded body; whitespace and escapes in the
    // served text do not change what was signed.
    let repo = Repo::new();
    let reformatted = targets_text(&repo)
        .replacen("{\"signed\":{", "{ \"signed\" : {\n", 1)
        .replace("\"base\"", "\"\\u0062ase\"");
    let s = rechained(&repo, "targets.json", reformatted.into_bytes(), ":base");
    assert_eq!(trusted(&s).0, digest(DIGEST_C));
}

#[test]
fn fields_unknown_to_signgate_are_kept_in_what_is_verified() {
    // Signed bodies may carry fields notary adds later; they are covered by the signature, so
    // dropping them would break verification and changing them must too.
    let mut repo = Repo::new();
    repo.targets["x-future"] = json!({"note": "<&>", "n": 1});
    repo.delegations.get_mut("targets/releases").unwrap()["custom"] = json!([1, 2, 3]);
    assert_eq!(trusted(&Scenario::new(&repo, ":v2.9")).0, digest(DIGEST_A));

    let changed = targets_text(&repo).replace("\"n\":1", "\"n\":2");
    assert_eq!(
        rechained(&repo, "targets.json", changed.into_bytes(), ":base").run(),
        Err(Reason::ThresholdNotMet)
    );
}

#[test]
fn required_roles_must_all_sign_one_digest() {
    let repo = Repo::new();
    let mut s = Scenario::new(&repo, ":v2.9");
    s.rule = RoleRule::Require(vec!["targets/releases".into()]);
    assert_eq!(
        trusted(&s),
        (digest(DIGEST_A), vec!["targets/releases".to_owned()])
    );

    s.image = format!("{GUN}:base");
    assert_eq!(s.run(), Err(Reason::RequiredRoleMissing));

    s.image = format!("{GUN}:v2.8");
    s.rule = RoleRule::Require(vec!["targets/releases".into(), "targets".into()]);
    assert_eq!(s.run(), Err(Reason::RequiredRolesDisagree));

    s.rule = RoleRule::Require(vec!["targets/qa".into()]);
    assert_eq!(s.run(), Err(Reason::RequiredRoleMissing));
}

#[test]
fn threshold_of_two_is_met_by_two_distinct_keys() {
    let mut repo = Repo::new();
    let second = Key::ecdsa(21);
    repo.root["keys"][second.id()] = second.key_json();
    repo.root["roles"]["targets"] =
        json!({"keyids": [repo.targets_key.id(), second.id()], "threshold": 2});
    let signed = sign(&repo.targets, &[&repo.targets_key, &second]);
    assert_eq!(
        trusted(&rechained(&repo, "targets.json", signed, ":base")).0,
        digest(DIGEST_C)
    );
}

#[test]
fn accepts_root_certificate_starting_within_a_day() {
    let repo = repo_with_root_certificate(now() + time::Duration::hours(12), now() + days(3650));
    assert_eq!(trusted(&Scenario::new(&repo, ":v2.9")).0, digest(DIGEST_A));
}

#[test]
fn expired_releases_delegation_falls_back_to_targets_as_docker_does() {
    let mut repo = Repo::new();
    repo.delegations.get_mut("targets/releases").unwrap()["expires"] =
        json!(rfc3339(now() - days(1)));
    // v2.8 is also in targets: docker skips the expired delegation and uses targets.
    assert_eq!(
        trusted(&Scenario::new(&repo, ":v2.8")),
        (digest(DIGEST_B), vec!["targets".into()])
    );
    // v2.9 is only in the expired delegation: the reason is its expiry.
    assert_eq!(Scenario::new(&repo, ":v2.9").run(), Err(Reason::Expired));
}

// ---------------------------------------------------------------- attacks, one function each

fn tag_never_signed() -> Scenario {
    Scenario::new(&Repo::new(), ":v3.1")
}

fn tag_only_in_ci_delegation() -> Scenario {
    Scenario::new(&Repo::new(), ":ci-only")
}

fn reference_digest_differs() -> Scenario {
    Scenario::new(&Repo::new(), &format!(":v2.9@sha256:{DIGEST_B}"))
}

fn unsigned_repository() -> Scenario {
    let repo = Repo::new();
    Scenario::with_files(&repo, Files::new(), ":v2.9")
}

fn root_signed_by_unpinned_key() -> Scenario {
    let repo = Repo::new();
    let mut s = Scenario::new(&repo, ":v2.9");
    s.pins = vec![Key::ecdsa(99).pin()];
    s
}

fn root_of_another_repository() -> Scenario {
    // Another repository's genuine data (CN = its GUN) replayed under this GUN, with its key pinned.
    let other = Repo::for_gun("registry.ai-team.internal/ml/other");
    let mut s = Scenario::new(&other, ":v2.9");
    s.image = format!("{GUN}:v2.9");
    s
}

fn root_certificate_expired() -> Scenario {
    let repo = repo_with_root_certificate(now() - days(400), now() - days(1));
    Scenario::new(&repo, ":v2.9")
}

fn root_certificate_not_yet_valid() -> Scenario {
    let repo = repo_with_root_certificate(now() + days(2), now() + days(3650));
    Scenario::new(&repo, ":v2.9")
}

/// A repository whose metadata `body` (root, targets, snapshot) expired yesterday, asked for
/// `tag`.
fn expired_yesterday(body: fn(&mut Repo) -> &mut serde_json::Value, tag: &str) -> Scenario {
    let mut repo = Repo::new();
    body(&mut repo)["expires"] = json!(rfc3339(now() - days(1)));
    Scenario::new(&repo, tag)
}

fn root_metadata_expired() -> Scenario {
    expired_yesterday(|r| &mut r.root, ":v2.9")
}

fn rotation_to_a_root_the_old_key_never_signed() -> Scenario {
    // A server replaces the root (ml/rerooted): v2 is signed only by a new key.
    let mut repo = Repo::new();
    let original = repo.root_key.pin();
    repo.rotate_root(root_key(31));
    repo.root_signers = vec![repo.root_key.clone()];
    let mut s = Scenario::new(&repo, ":v2.9");
    s.pins = vec![original];
    s
}

fn rotation_with_a_missing_version() -> Scenario {
    let mut repo = Repo::new();
    let original = repo.root_key.pin();
    repo.rotate_root(root_key(11));
    repo.rotate_root(root_key(12));
    let mut files = repo.files();
    files.remove("2.root.json");
    let mut s = Scenario::with_files(&repo, files, ":v2.9");
    s.pins = vec![original];
    s
}

fn targets_tampered_after_signing() -> Scenario {
    let repo = Repo::new();
    let mut body = repo.targets.clone();
    body["targets"]["base"] = target(DIGEST_B, 527);
    let forged = String::from_utf8(sign(&body, &[&repo.targets_key])).unwrap();
    // Keep the genuine signature, swap the body.
    let genuine: serde_json::Value = serde_json::from_str(&targets_text(&repo)).unwrap();
    let swapped = envelope(
        &serde_json::from_str::<serde_json::Value>(&forged).unwrap()["signed"],
        genuine["signatures"].as_array().unwrap().clone(),
    );
    Scenario::with_files(&repo, files_with(&repo, "targets.json", swapped), ":base")
}

fn targets_tampered_and_rechained_by_a_compromised_server() -> Scenario {
    // The server holds the snapshot and timestamp keys; it still cannot sign targets.
    let mut s = targets_tampered_after_signing();
    let repo = Repo::new();
    repo.rechain(&mut s.files);
    s
}

fn timestamp_frozen_past_expiry() -> Scenario {
    let mut s = Scenario::new(&Repo::new(), ":v2.9");
    s.now = now() + days(15);
    s
}

fn targets_expired() -> Scenario {
    expired_yesterday(|r| &mut r.targets, ":base")
}

fn snapshot_expired() -> Scenario {
    expired_yesterday(|r| &mut r.snapshot, ":v2.9")
}

fn targets_rolled_back() -> Scenario {
    let mut newer = Repo::new();
    newer.targets["version"] = json!(7);
    after_trusting(&newer)
}

fn timestamp_rolled_back() -> Scenario {
    let mut newer = Repo::new();
    newer.timestamp["version"] = json!(9);
    after_trusting(&newer)
}

fn root_rolled_back() -> Scenario {
    let mut newer = Repo::new();
    newer.rotate_root(root_key(11));
    after_trusting(&newer)
}

fn old_targets_mixed_with_new_snapshot() -> Scenario {
    let repo = Repo::new();
    let mut old = repo.clone();
    old.targets["version"] = json!(2);
    old.targets["targets"]["base"] = target(DIGEST_B, 527);
    let old_targets = old.files()["targets.json"].clone();
    Scenario::with_files(
        &repo,
        files_with(&repo, "targets.json", old_targets),
        ":base",
    )
}

fn snapshot_pins_another_root() -> Scenario {
    let repo = Repo::new();
    let mut other = repo.clone();
    other.root["expires"] = json!(rfc3339(now() + days(100)));
    let other_root = other.files()["root.json"].clone();
    Scenario::with_files(&repo, files_with(&repo, "root.json", other_root), ":v2.9")
}

fn snapshot_length_differs_from_timestamp() -> Scenario {
    let repo = Repo::new();
    let mut files = repo.files();
    let mut snap = files["snapshot.json"].clone();
    snap.push(b' ');
    files.insert("snapshot.json".into(), snap);
    Scenario::with_files(&repo, files, ":v2.9")
}

fn same_key_signed_twice() -> Scenario {
    let mut repo = Repo::new();
    repo.root["roles"]["targets"]["threshold"] = json!(2);
    let sig = targets_signature(&repo, &repo.targets_key.id(), "ecdsa", |c| {
        repo.targets_key.sign(c)
    });
    targets_signed_with(&repo, vec![sig.clone(), sig])
}

fn same_key_material_under_two_ids() -> Scenario {
    // The targets key listed twice: as a bare key and as a certificate of the same key.
    let mut repo = Repo::new();
    let Key::P256(sk) = repo.targets_key.clone() else {
        unreachable!()
    };
    let as_cert = Key::P256Cert(
        sk.clone(),
        root_cert(&sk, "targets", now() - days(1), now() + days(10)),
    );
    repo.root["keys"][as_cert.id()] = as_cert.key_json();
    repo.root["roles"]["targets"] =
        json!({"keyids": [repo.targets_key.id(), as_cert.id()], "threshold": 2});
    let signed = sign(&repo.targets, &[&repo.targets_key, &as_cert]);
    rechained(&repo, "targets.json", signed, ":base")
}

fn key_id_not_matching_key_content() -> Scenario {
    // root lists the targets key under another key's ID, and the signature names that ID.
    let mut repo = Repo::new();
    let fake_id = Key::ecdsa(77).id();
    let real = repo.targets_key.clone();
    repo.root["keys"]
        .as_object_mut()
        .unwrap()
        .remove(&real.id());
    repo.root["keys"][&fake_id] = real.key_json();
    repo.root["roles"]["targets"]["keyids"] = json!([fake_id]);
    let sig = targets_signature(&repo, &fake_id, "ecdsa", |c| real.sign(c));
    targets_signed_with(&repo, vec![sig])
}

fn ecdsa_signature_in_der_form() -> Scenario {
    let repo = Repo::new();
    let sig = targets_signature(&repo, &repo.targets_key.id(), "ecdsa", |c| {
        repo.targets_key.sign_der(c)
    });
    targets_signed_with(&repo, vec![sig])
}

fn signature_method_not_matching_key_type() -> Scenario {
    let repo = Repo::new();
    let sig = targets_signature(&repo, &repo.targets_key.id(), "eddsa", |c| {
        repo.targets_key.sign(c)
    });
    targets_signed_with(&repo, vec![sig])
}

fn targets_without_signatures() -> Scenario {
    targets_signed_with(&Repo::new(), vec![])
}

fn timestamp_document_of_another_type() -> Scenario {
    let repo = Repo::new();
    let mut body = json!({"_type": "Snapshot", "version": 5, "expires": rfc3339(now() + days(14))});
    body["meta"] = json!({"snapshot": file_meta(&repo.files()["snapshot.json"])});
    let files = files_with(&repo, "timestamp.json", sign(&body, &[&repo.timestamp_key]));
    Scenario::with_files(&repo, files, ":v2.9")
}

fn releases_signed_by_a_key_it_does_not_delegate_to() -> Scenario {
    let repo = Repo::new();
    let signed = sign(&repo.delegations["targets/releases"], &[&repo.ci_key]);
    rechained(&repo, "targets/releases.json", signed, ":v2.9")
}

fn releases_outside_its_delegated_paths() -> Scenario {
    let mut repo = Repo::new();
    repo.targets["delegations"]["roles"][0]["paths"] = json!(["v3"]);
    Scenario::new(&repo, ":v2.9")
}

fn delegation_that_is_not_a_direct_child() -> Scenario {
    let mut repo = Repo::new();
    repo.targets["delegations"]["roles"][1]["name"] = json!("targets/releases/ci");
    Scenario::new(&repo, ":v2.9")
}

fn delegation_listed_but_not_served() -> Scenario {
    let repo = Repo::new();
    let mut files = repo.files();
    files.remove("targets/releases.json");
    Scenario::with_files(&repo, files, ":v2.9")
}

fn oversized_targets() -> Scenario {
    let mut s = Scenario::new(&Repo::new(), ":v2.9");
    s.limits.targets = 512;
    s
}

fn oversized_timestamp() -> Scenario {
    let mut repo = Repo::new();
    repo.timestamp["padding"] = json!("x".repeat(70 * 1024));
    Scenario::new(&repo, ":v2.9")
}

fn metadata_that_is_not_json() -> Scenario {
    let truncated = b"{\"signed\": {\"_type\": \"Targets\"".to_vec();
    rechained(&Repo::new(), "targets.json", truncated, ":base")
}

fn version_written_as_a_float() -> Scenario {
    let repo = Repo::new();
    // 3.0 canonicalises to 3, so the signature still verifies; the typed field must refuse it.
    let text = targets_text(&repo).replace("\"version\":3", "\"version\":3.0");
    rechained(&repo, "targets.json", text.into_bytes(), ":base")
}

fn duplicate_key_smuggling_a_second_target_list() -> Scenario {
    // The served text repeats "targets"; the verifier and the typed view must both take the last.
    let repo = Repo::new();
    let forged = targets_text(&repo).replacen(
        "\"targets\":{",
        &format!(
            "\"targets\":{{\"evil\":{},\"base\":{}}},\"targets\":{{",
            target(DIGEST_B, 1),
            target(DIGEST_B, 1)
        ),
        1,
    );
    rechained(&repo, "targets.json", forged.into_bytes(), ":evil")
}

fn rotated_out_pinned_key_signs_a_new_root_after_rotation_was_seen() -> (Scenario, Reason) {
    // P is pinned; the publisher rotated to Q (v2) and this verifier saw v2. An attacker holding P
    // serves a v3 signed by P alone (and no N.root.json): trust must come from v2, not from P.
    let mut repo = Repo::new();
    let p = repo.root_key.clone();
    repo.rotate_root(root_key(11));
    let seen = state_after_with(&repo, &repo.files(), &[p.pin()]);
    let mut evil = Repo::new();
    evil.targets_key = Key::ecdsa(99);
    evil.targets["targets"] = json!({"v2.9": target(DIGEST_C, 1)});
    evil.targets["delegations"] = json!({"keys": {}, "roles": []});
    evil.delegations.clear();
    evil.root = root_body(
        3,
        &[&p],
        &evil.targets_key,
        &evil.snapshot_key,
        &evil.timestamp_key,
    );
    let mut s = Scenario::new(&evil, ":v2.9");
    s.pins = vec![p.pin()];
    s.previous = seen;
    (s, Reason::RootRotationFailed)
}

fn rotation_through_a_root_whose_certificate_expired() -> (Scenario, Reason) {
    let mut repo = Repo::new();
    let pinned = repo.root_key.pin();
    repo.rotate_root(Key::root(11, GUN, now() - days(400), now() - days(10)));
    repo.rotate_root(root_key(12));
    let mut s = Scenario::new(&repo, ":v2.9");
    s.pins = vec![pinned];
    (s, Reason::RootRotationFailed)
}

fn releases_served_without_signatures() -> (Scenario, Reason) {
    // notary treats "no signatures" as fatal, not as an under-threshold role to skip, so v2.8
    // must not fall back to the targets digest.
    let repo = Repo::new();
    let unsigned = envelope(&repo.delegations["targets/releases"], vec![]);
    (
        rechained(&repo, "targets/releases.json", unsigned, ":v2.8"),
        Reason::MalformedMetadata,
    )
}

fn root_changed_without_a_version_bump() -> (Scenario, Reason) {
    let repo = Repo::new();
    let seen = state_after(&repo, &repo.files());
    let mut other = repo.clone();
    other.root["expires"] = json!(rfc3339(now() + days(100)));
    let mut s = Scenario::new(&other, ":v2.9");
    s.previous = seen;
    (s, Reason::RootRotationFailed)
}

fn endless_root_history_from_a_hostile_server() -> (Scenario, Reason) {
    // A root.json claiming version 60 and 59 large, valid-looking older versions, none pinned:
    // the walk reads one at a time and stops at its byte budget.
    let repo = Repo::new();
    let stranger = root_key(50);
    let mut files = repo.files();
    for v in 1..=60u64 {
        let mut body = root_body(
            v,
            &[&stranger],
            &repo.targets_key,
            &repo.snapshot_key,
            &repo.timestamp_key,
        );
        body["padding"] = json!("x".repeat(200 * 1024));
        let name = if v == 60 {
            "root.json".to_owned()
        } else {
            format!("{v}.root.json")
        };
        files.insert(name, sign(&body, &[&stranger]));
    }
    (
        Scenario::with_files(&repo, files, ":v2.9"),
        Reason::TooLarge,
    )
}

#[rstest]
#[case::endless_root_history(endless_root_history_from_a_hostile_server)]
#[case::rotated_out_pinned_key(rotated_out_pinned_key_signs_a_new_root_after_rotation_was_seen)]
#[case::rotation_through_expired_certificate(rotation_through_a_root_whose_certificate_expired)]
#[case::releases_without_signatures(releases_served_without_signatures)]
#[case::root_changed_without_version_bump(root_changed_without_a_version_bump)]
fn rejects_stateful_attack(#[case] attack: fn() -> (Scenario, Reason)) {
    let (scenario, reason) = attack();
    assert_eq!(scenario.run().map(|t| t.digest().to_string()), Err(reason));
}

#[test]
fn a_pinned_current_root_needs_no_older_versions() {
    // Versions 2 and 3 of the history are missing, but root.json itself is signed by the pin.
    let mut repo = Repo::new();
    let same = repo.root_key.clone();
    repo.rotate_root(same.clone());
    repo.rotate_root(same);
    let mut files = repo.files();
    files.remove("2.root.json");
    files.remove("3.root.json");
    assert_eq!(
        trusted(&Scenario::with_files(&repo, files, ":v2.9")).0,
        digest(DIGEST_A)
    );
}

#[test]
fn a_verifier_that_saw_v1_walks_each_rotation_after_it() {
    let mut repo = Repo::new();
    let original = repo.root_key.pin();
    let seen = state_after(&repo, &repo.files());
    repo.rotate_root(root_key(11));
    repo.rotate_root(root_key(12));
    let mut s = Scenario::new(&repo, ":v2.9");
    s.pins = vec![original];
    s.previous = seen.clone();
    assert_eq!(trusted(&s).0, digest(DIGEST_A));
    // Without 2.root.json the walk from v1 cannot be completed.
    s.files.remove("2.root.json");
    assert_eq!(s.run(), Err(Reason::RootRotationFailed));
}

#[rstest]
#[case::tag_never_signed(tag_never_signed, Reason::TagNotSigned)]
#[case::tag_only_in_ci_delegation(tag_only_in_ci_delegation, Reason::TagOnlyInOtherDelegation)]
#[case::reference_digest_differs(reference_digest_differs, Reason::DigestMismatch)]
#[case::unsigned_repository(unsigned_repository, Reason::RepositoryNotSigned)]
#[case::root_signed_by_unpinned_key(root_signed_by_unpinned_key, Reason::RootNotPinned)]
#[case::root_of_another_repository(root_of_another_repository, Reason::GunMismatch)]
#[case::root_certificate_expired(root_certificate_expired, Reason::CertificateExpired)]
#[case::root_certificate_not_yet_valid(root_certificate_not_yet_valid, Reason::CertificateExpired)]
#[case::root_metadata_expired(root_metadata_expired, Reason::Expired)]
#[case::rotation_to_a_root_the_old_key_never_signed(
    rotation_to_a_root_the_old_key_never_signed,
    Reason::RootRotationFailed
)]
#[case::rotation_with_a_missing_version(
    rotation_with_a_missing_version,
    Reason::RootRotationFailed
)]
#[case::targets_tampered_after_signing(targets_tampered_after_signing, Reason::HashMismatch)]
#[case::targets_tampered_and_rechained(
    targets_tampered_and_rechained_by_a_compromised_server,
    Reason::ThresholdNotMet
)]
#[case::timestamp_frozen_past_expiry(timestamp_frozen_past_expiry, Reason::Expired)]
#[case::targets_expired(targets_expired, Reason::Expired)]
#[case::snapshot_expired(snapshot_expired, Reason::Expired)]
#[case::targets_rolled_back(targets_rolled_back, Reason::Rollback)]
#[case::timestamp_rolled_back(timestamp_rolled_back, Reason::Rollback)]
#[case::root_rolled_back(root_rolled_back, Reason::Rollback)]
#[case::old_targets_mixed_with_new_snapshot(
    old_targets_mixed_with_new_snapshot,
    Reason::HashMismatch
)]
#[case::snapshot_pins_another_root(snapshot_pins_another_root, Reason::HashMismatch)]
#[case::snapshot_length_differs(snapshot_length_differs_from_timestamp, Reason::LengthMismatch)]
#[case::same_key_signed_twice(same_key_signed_twice, Reason::ThresholdNotMet)]
#[case::same_key_material_under_two_ids(same_key_material_under_two_ids, Reason::ThresholdNotMet)]
#[case::key_id_not_matching_key_content(key_id_not_matching_key_content, Reason::InvalidKeyId)]
#[case::ecdsa_signature_in_der_form(ecdsa_signature_in_der_form, Reason::ThresholdNotMet)]
#[case::method_not_matching_key_type(
    signature_method_not_matching_key_type,
    Reason::ThresholdNotMet
)]
#[case::targets_without_signatures(targets_without_signatures, Reason::ThresholdNotMet)]
#[case::timestamp_of_another_type(timestamp_document_of_another_type, Reason::WrongRoleType)]
#[case::releases_signed_by_undelegated_key(
    releases_signed_by_a_key_it_does_not_delegate_to,
    Reason::ThresholdNotMet
)]
#[case::releases_outside_its_paths(releases_outside_its_delegated_paths, Reason::TagNotSigned)]
#[case::delegation_not_a_direct_child(
    delegation_that_is_not_a_direct_child,
    Reason::InvalidDelegation
)]
#[case::delegation_listed_but_not_served(delegation_listed_but_not_served, Reason::MissingMetadata)]
#[case::oversized_targets(oversized_targets, Reason::TooLarge)]
#[case::oversized_timestamp(oversized_timestamp, Reason::TooLarge)]
#[case::metadata_not_json(metadata_that_is_not_json, Reason::MalformedMetadata)]
#[case::version_written_as_a_float(version_written_as_a_float, Reason::MalformedMetadata)]
#[case::duplicate_key_smuggling(duplicate_key_smuggling_a_second_target_list, Reason::TagNotSigned)]
fn rejects_attack(#[case] scenario: fn() -> Scenario, #[case] reason: Reason) {
    assert_eq!(
        scenario().run().map(|t| t.digest().to_string()),
        Err(reason)
    );
}

/// The state a verifier holds after trusting `repo`.
fn state_after(repo: &Repo, files: &Files) -> TrustState {
    state_after_with(repo, files, &repo.pins())
}

fn state_after_with(repo: &Repo, files: &Files, pins: &[PinnedKey]) -> TrustState {
    let ctx = VerifyContext {
        gun: &repo.gun,
        pins,
        now: now(),
        previous: &TrustState::default(),
        limits: Limits::default(),
    };
    notary::verify::verify_repository(&ctx, files)
        .unwrap()
        .state()
        .clone()
}
