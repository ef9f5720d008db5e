//! Cold verification per signature format, in one run on the same lab (`scripts/bench --cold`):
//! the first decision about a never-seen signed image, Docker Content Trust (Notary v1, signed
//! with the notary CLI, a `targets/releases` delegation) beside Notary Project (Notation, signed
//! with the notation CLI, found through the referrers tag schema on distribution 2.8) and cosign
//! (key-based with cosign 2, the legacy `.sig` tag, and with cosign 3, a bundle through the tag
//! schema; keyless bundles from the harness's private Sigstore), each with a fresh verifier (no
//! cache), then the same image again. Reports p50/min/max milliseconds and the
//! upstream requests each cold decision made. Everything on 127.0.0.1; bounded by BENCH_COLD
//! images per format (default 9).

mod bench_support;
#[path = "../tests/harness/mod.rs"]
mod harness;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use bench_support::env_or;
use harness::{EnvelopeFormat, Lab, SignOpts};
use signgate::config::Config;
use signgate::policy::Outcome;
use signgate::verifier::{Verifier, VerifierSettings};
use time::OffsetDateTime;

struct Sample {
    cold_ms: f64,
    warm_ms: f64,
    requests: u64,
}

fn stats(samples: &[Sample]) -> String {
    let mut cold: Vec<f64> = samples.iter().map(|s| s.cold_ms).collect();
    cold.sort_by(f64::total_cmp);
    let mut warm: Vec<f64> = samples.iter().map(|s| s.warm_ms).collect();
    warm.sort_by(f64::total_cmp);
    let mut req: Vec<u64> = samples.iter().map(|s| s.requests).collect();
    req.sort_unstable();
    let mid = |v: &[f64]| v.get(v.len() / 2).copied().unwrap_or(f64::NAN);
    format!(
        "| {:.1} ms | {:.1}–{:.1} ms | {} ({}–{}) | {:.3} ms |",
        mid(&cold),
        cold.first().copied().unwrap_or(f64::NAN),
        cold.last().copied().unwrap_or(f64::NAN),
        req.get(req.len() / 2).copied().unwrap_or(0),
        req.first().copied().unwrap_or(0),
        req.last().copied().unwrap_or(0),
        mid(&warm),
    )
}

const KEYLESS_ISSUER: &str = "https://token.actions.githubusercontent.com";
const KEYLESS_SUBJECT: &str =
    "https://github.com/acme/ml/.github/workflows/release.yml@refs/heads/main";

fn main() {
    let n = env_or("BENCH_COLD", 9);
    let lab = Lab::start();
    let notary = lab.notary();
    let key = harness::notation_generate_test_cert(&lab, "bench-ci");
    let host = lab.registry_host();

    // Notary v1: one repository per image (a cold GUN each), docker's delegation layout.
    let mut dct = Vec::new();
    let mut guns = Vec::new();
    for i in 0..n {
        let repo = format!("cold/dct-{i}");
        let p = lab.push_image(&repo, "v1", &format!("cold dct {i}"));
        let gun = lab.gun(&repo);
        notary.init_docker_like(&gun);
        notary.add_delegation(&gun, "targets/releases", "ci");
        notary.sign(&gun, "v1", &p, Some("targets/releases"));
        guns.push(gun);
        dct.push(format!("{host}/{repo}:v1"));
    }
    // Notation: one repository per image, a JWS signature through the tag schema.
    let mut nv2 = Vec::new();
    for i in 0..n {
        let repo = format!("cold/nv2-{i}");
        let p = lab.push_image(&repo, "v1", &format!("cold nv2 {i}"));
        harness::notation_sign(
            &lab,
            &harness::image_ref(&lab, &repo, &p),
            &SignOpts {
                format: EnvelopeFormat::Jws,
                timestamp: None,
                key: &key,
            },
        );
        nv2.push(format!("{host}/{repo}:v1"));
    }

    // cosign: one repository per image, one key: cosign 2's legacy .sig layout, and cosign 3's
    // bundle through the tag schema; and keyless bundles from the harness's private Sigstore
    // (certificate chain, SCT, SET and inclusion proof to verify).
    let cosign_key = harness::cosign_generate_key_pair(&lab, "bench-ci");
    let mut cos = Vec::new();
    let mut cos3 = Vec::new();
    let mut keyless = Vec::new();
    for i in 0..n {
        let repo = format!("cold/cosign-{i}");
        let p = lab.push_image(&repo, "v1", &format!("cold cosign {i}"));
        harness::cosign2_sign(&lab, &harness::image_ref(&lab, &repo, &p), &cosign_key);
        cos.push(format!("{host}/{repo}:v1"));
        let repo = format!("cold/cosign3-{i}");
        let p = lab.push_image(&repo, "v1", &format!("cold cosign 3 {i}"));
        harness::cosign3_sign(&lab, &harness::image_ref(&lab, &repo, &p), &cosign_key);
        cos3.push(format!("{host}/{repo}:v1"));
        let repo = format!("cold/keyless-{i}");
        let p = lab.push_image(&repo, "v1", &format!("cold keyless {i}"));
        let desc = harness::Desc::of(&p);
        let sig = harness::cosign_logged(
            &lab,
            harness::LoggedSigner::Keyless {
                subject: KEYLESS_SUBJECT,
                issuer: KEYLESS_ISSUER,
            },
            &desc.digest,
            &format!("{host}/{repo}"),
            true,
            harness::LogOpts::default(),
        );
        harness::attach_logged(&lab, &repo, &desc, &sig);
        keyless.push(format!("{host}/{repo}:v1"));
    }
    let trusted_root = harness::sigstore_root(&lab);

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("signgate.yaml");
    std::fs::write(
        &path,
        format!(
            "trustRoots:
{dct}{nv2}  - name: cos
    cosign:
      transparencyLog: ignore
      keys: [{{ name: ci, publicKeyFile: {cosign_pub} }}]
  - name: keyless
    cosign:
      keyless:
        trustedRootFile: {trusted_root}
        identities: [{{ issuer: \"{KEYLESS_ISSUER}\", subject: \"{KEYLESS_SUBJECT}\" }}]
{registries}policies:
  - {{ name: dct, images: [\"{host}/cold/dct-*\"], trustRoot: dct }}
  - {{ name: nv2, images: [\"{host}/cold/nv2-*\"], trustRoot: nv2 }}
  - {{ name: cos, images: [\"{host}/cold/cosign*\"], trustRoot: cos }}
  - {{ name: keyless, images: [\"{host}/cold/keyless-*\"], trustRoot: keyless }}
",
            dct = harness::yaml_text(&lab.notary_root_yaml(
                "dct",
                "rootKeyFiles",
                &lab.root_key_files(&guns)
            )),
            nv2 = harness::yaml_text(&key.trust_root_yaml("nv2")),
            registries = harness::yaml_text(&lab.registries_yaml()),
            cosign_pub = cosign_key.public.display(),
            trusted_root = trusted_root.display(),
        ),
    )
    .expect("write config");
    let config = Arc::new(Config::load(&path).unwrap_or_else(|e| panic!("{e}")));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let labels = BTreeMap::new();

    // Interleaved, so that machine noise falls on every format alike.
    let mut formats: Vec<(&str, &Vec<String>, Vec<Sample>)> = vec![
        ("Notary v1 (notary CLI, targets/releases)", &dct, Vec::new()),
        ("Notation (notation CLI, JWS, tag schema)", &nv2, Vec::new()),
        ("cosign (cosign 2, key-based, .sig tag)", &cos, Vec::new()),
        (
            "cosign (cosign 3, key-based, bundle, tag schema)",
            &cos3,
            Vec::new(),
        ),
        (
            "cosign keyless (bundle: chain, SCT, SET, inclusion proof)",
            &keyless,
            Vec::new(),
        ),
    ];
    for i in 0..n {
        for (_, images, out) in &mut formats {
            let image = &images[i];
            let verifier =
                Verifier::new(Arc::clone(&config), VerifierSettings::default()).expect("verifier");
            let decide = || {
                let t = Instant::now();
                let d =
                    rt.block_on(verifier.decide(image, "ml", &labels, OffsetDateTime::now_utc()));
                assert!(
                    matches!(d.outcome, Outcome::Verified(_)),
                    "{image}: {:?}",
                    d.outcome
                );
                t.elapsed().as_secs_f64() * 1000.0
            };
            let cold_ms = decide();
            let requests = verifier.upstream_requests();
            let warm_ms = decide();
            out.push(Sample {
                cold_ms,
                warm_ms,
                requests,
            });
        }
    }
    let rows: Vec<String> = formats
        .iter()
        .map(|(label, _, samples)| format!("| {label} {}", stats(samples)))
        .collect();
    println!(
        "== cold verification, {n} never-seen images per format, a fresh verifier each (debug builds are slower: run with --release)"
    );
    println!(
        "| format | cold p50 | cold min–max | upstream requests p50 (min–max) | same image again p50 |"
    );
    println!("|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
}
