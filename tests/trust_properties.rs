//! Properties over arbitrary and mutated input: the metadata parsers and the whole verification
//! never panic, and no mutation of real trust data makes another digest trusted.

use std::collections::BTreeMap;

mod common;

use proptest::prelude::*;

use signgate::notary::metadata::{Envelope, Root, Snapshot, Targets, Timestamp};
use signgate::notary::{self, RoleRule, TrustState};
use signgate::reference::Reference;

use common::{GUN, Interop, interop_signed};

/// The committed `signed` interop set (real notary output), without `2.root.json` as these
/// properties have always mutated it, and its genuine digests per tag.
struct Real {
    set: Interop,
    genuine: BTreeMap<String, String>,
}

fn real() -> Real {
    let mut set = interop_signed();
    set.files.remove("2.root.json");
    let mut genuine = BTreeMap::new();
    for check in set.case["checks"].as_array().unwrap() {
        if check["expect"] == "trusted" && check.get("require_roles").is_none() {
            genuine.insert(
                check["image"].as_str().unwrap().to_owned(),
                check["digest"].as_str().unwrap().to_owned(),
            );
        }
    }
    Real { set, genuine }
}

/// Verifies the repository once and returns what each image resolves to (None: refused).
fn verdicts(
    real: &Real,
    files: &BTreeMap<String, Vec<u8>>,
    images: &[String],
) -> Vec<Option<String>> {
    let previous = TrustState::default();
    let ctx = real.set.context(&previous);
    let Ok(repo) = notary::verify::verify_repository(&ctx, files) else {
        return vec![None; images.len()];
    };
    images
        .iter()
        .map(|image| {
            let reference = Reference::parse(image).unwrap();
            notary::target::select(&repo, &reference, &RoleRule::Docker)
                .ok()
                .map(|t| t.digest().as_str().to_owned())
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Truncate { at: usize },
    Insert { at: usize, byte: u8 },
    Delete { at: usize, len: usize },
    Replace { at: usize, with: &'static str },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (
            any::<usize>(),
            prop::sample::select(vec![
                "\"",
                "{",
                "}",
                "[]",
                ",",
                "null",
                "1e999",
                "-1",
                "0",
                "\\u0000",
                "\"targets\":{}",
                "\"version\":99,",
                "\"threshold\":0,",
                "\"expires\":\"x\",",
                "\u{FFFD}",
            ])
        )
            .prop_map(|(at, with)| Mutation::Replace { at, with }),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let n = bytes.len().max(1);
    match *m {
        Mutation::Flip { at, bit } => {
            if !bytes.is_empty() {
                bytes[at % n] ^= 1 << bit;
            }
        }
        Mutation::Truncate { at } => bytes.truncate(at % n),
        Mutation::Insert { at, byte } => bytes.insert(at % (bytes.len() + 1), byte),
        Mutation::Delete { at, len } => {
            let start = at % n;
            let end = (start + len).min(bytes.len());
            bytes.drain(start.min(end)..end);
        }
        Mutation::Replace { at, with } => {
            let start = at % n;
            let end = (start + with.len()).min(bytes.len());
            bytes.splice(start.min(end)..end, with.bytes());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    /// Whatever one file of real trust data is turned into, verification returns (no panic), and
    /// a tag is either refused or trusted with its genuine digest.
    #[test]
    fn mutated_real_trust_data_never_yields_another_digest(
        file in prop::sample::select(vec![
            "root.json", "1.root.json", "timestamp.json", "snapshot.json", "targets.json",
            "targets/releases.json", "targets/ci.json",
        ]),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let real = real();
        let mut files = real.set.files.clone();
        let bytes = files.get_mut(file).unwrap();
        for m in &mutations {
            apply(bytes, m);
        }
        let mut images: Vec<String> = real.genuine.keys().cloned().collect();
        let never = ["ci-only", "unsigned", "nosuchtag"].map(|t| format!("{GUN}:{t}"));
        images.extend(never.iter().cloned());
        let got = verdicts(&real, &files, &images);
        for (image, verdict) in images.iter().zip(&got) {
            match real.genuine.get(image) {
                // Trusted only with its genuine digest.
                Some(digest) => {
                    if let Some(v) = verdict {
                        prop_assert_eq!(v, digest, "{} after mutating {}", image, file);
                    }
                }
                // Never trusted before: stays untrusted.
                None => prop_assert_eq!(verdict, &None, "{} after mutating {}", image, file),
            }
        }
    }

    /// The metadata parsers return an error, never panic, on arbitrary bytes.
    #[test]
    fn metadata_parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        parse_as_every_role(&bytes);
    }

    /// The same for JSON-shaped input, which gets much further into the parsers.
    #[test]
    fn metadata_parsers_never_panic_on_json_shapes(v in json_value(4)) {
        let doc = serde_json::json!({"signed": v, "signatures": [{"keyid": "a", "method": "ecdsa", "sig": "AAAA"}]});
        let bytes = serde_json::to_vec(&doc).unwrap();
        parse_as_every_role(&bytes);
    }
}

/// Parses `bytes` as the envelope of each role and, where that succeeds, as each role's metadata,
/// ignoring the results: only a panic fails.
fn parse_as_every_role(bytes: &[u8]) {
    for role in [
        "root",
        "targets",
        "snapshot",
        "timestamp",
        "targets/releases",
    ] {
        if let Ok(env) = Envelope::parse(bytes, role, 1 << 20) {
            let _ = Root::parse(&env);
            let _ = Targets::parse(&env, role);
            let _ = Snapshot::parse(&env);
            let _ = Timestamp::parse(&env);
        }
    }
}

fn json_value(depth: u32) -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        prop::sample::select(vec![
            "Root",
            "Targets",
            "Snapshot",
            "Timestamp",
            "ecdsa",
            "ed25519",
            "ecdsa-x509",
            "2026-12-01T00:00:00Z",
            "targets/releases",
            "root",
            "sha256",
            "AAAA",
            "",
        ])
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(depth, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "_type",
                    "version",
                    "expires",
                    "keys",
                    "roles",
                    "keyids",
                    "threshold",
                    "meta",
                    "targets",
                    "delegations",
                    "hashes",
                    "length",
                    "snapshot",
                    "keytype",
                    "keyval",
                    "public",
                    "name",
                    "paths",
                ]),
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(
                m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}
