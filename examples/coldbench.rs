//! Cold verification per signature format, in one run on the same lab (`scripts/bench --cold`):
//! the first decision about a never-seen signed image, Docker Content Trust (Notary v1, signed
//! with the notary CLI, a `targets/releases` delegation) beside Notary Project (Notation, signed
//! with the notation CLI, found through the referrers tag schema on distribution 2.8) and cosign
//! (signed with cosign 2, key-based, the legacy `.sig` tag), each with a fresh verifier (no
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

fn main() {
    let n = env_or("BENCH_COLD", 9);
    let lab = Lab::start();
    let notary = lab.notary();
    let key = harness::notation_generate_test_cert(&lab, "bench-ci");
    let host = lab.registry_host();
    let ca = lab.ca_pem_path().display().to_string();

    // Notary v1: one repository per image (a cold GUN each), docker's delegation layout.
    let mut dct = Vec::new();
    let mut roots = String::new();
    for i in 0..n {
        let repo = format!("cold/dct-{i}");
        let p = lab.push_image(&repo, "v1", &format!("cold dct {i}"));
        let gun = lab.gun(&repo);
        notary.init_docker_like(&gun);
        notary.add_delegation(&gun, "targets/releases", "ci");
        notary.sign(&gun, "v1", &p, Some("targets/releases"));
        roots.push_str(&format!("        - {}\n", lab.root_key_pem(&gun).display()));
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

    // cosign: one repository per image, cosign 2's legacy .sig layout, one key.
    let cosign_key = harness::cosign_generate_key_pair(&lab, "bench-ci");
    let mut cos = Vec::new();
    for i in 0..n {
        let repo = format!("cold/cosign-{i}");
        let p = lab.push_image(&repo, "v1", &format!("cold cosign {i}"));
        harness::cosign2_sign(&lab, &harness::image_ref(&lab, &repo, &p), &cosign_key);
        cos.push(format!("{host}/{repo}:v1"));
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("signgate.yaml");
    std::fs::write(
        &path,
        format!(
            "trustRoots:
  - name: dct
    notary:
      url: {notary}
      caFile: {ca}
      rootKeyFiles:
{roots}  - name: nv2
    notation:
      trustStores: {{ ca: [{store}] }}
      trustedIdentities: [\"{identity}\"]
  - name: cos
    cosign:
      transparencyLog: ignore
      keys: [{{ name: ci, keyFile: {cosign_pub} }}]
registries:
  - {{ host: \"{host}\", caFile: {ca} }}
policies:
  - {{ name: dct, images: [\"{host}/cold/dct-*\"], trustRoot: dct }}
  - {{ name: nv2, images: [\"{host}/cold/nv2-*\"], trustRoot: nv2 }}
  - {{ name: cos, images: [\"{host}/cold/cosign-*\"], trustRoot: cos }}
",
            notary = lab.notary_url(),
            store = key.trust_store_pem.display(),
            identity = key.identity,
            cosign_pub = cosign_key.public.display(),
        ),
    )
    .expect("write config");
    let config = Arc::new(Config::load(&path).unwrap_or_else(|e| panic!("{e}")));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let labels = BTreeMap::new();

    let mut rows = Vec::new();
    // Interleaved, so that machine noise falls on every format alike.
    let mut dct_samples = Vec::new();
    let mut nv2_samples = Vec::new();
    let mut cos_samples = Vec::new();
    for i in 0..n {
        for (image, out) in [
            (&dct[i], &mut dct_samples),
            (&nv2[i], &mut nv2_samples),
            (&cos[i], &mut cos_samples),
        ] {
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
    rows.push(format!(
        "| Notary v1 (notary CLI, targets/releases) {}",
        stats(&dct_samples)
    ));
    rows.push(format!(
        "| Notation (notation CLI, JWS, tag schema) {}",
        stats(&nv2_samples)
    ));
    rows.push(format!(
        "| cosign (cosign 2, key-based, .sig tag) {}",
        stats(&cos_samples)
    ));
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
