//! Pure trust paths over committed real notary output (tests/fixtures/interop/signed: root rotated
//! once, targets + the delegations targets/releases and targets/ci):
//! - `verify_repository`: root walk, timestamp → snapshot → targets → delegations, with every
//!   signature checked (what a cold or refreshed repository costs in CPU);
//! - `verify_repository` + `target::select` for a tag under docker's rule;
//! - `target::select` alone on an already verified repository (what a cache hit costs);
//! - `canonical::canonicalize` of the real `targets.json` (what each signature check re-encodes).
//!
//! `cargo bench --bench trust`; sample sizes are small so it finishes in well under a minute.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use signgate::notary::{self, Limits, PinnedKey, RoleRule, TrustState, VerifyContext};
use signgate::reference::Reference;

const GUN: &str = "registry.ai-team.internal/ml/pytorch-cuda";

struct Real {
    files: BTreeMap<String, Vec<u8>>,
    pins: Vec<PinnedKey>,
    now: OffsetDateTime,
}

fn real() -> Real {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/interop");
    let cases: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("cases.json")).unwrap()).unwrap();
    let dir = root.join("signed");
    let mut files = BTreeMap::new();
    for name in [
        "root.json",
        "1.root.json",
        "2.root.json",
        "timestamp.json",
        "snapshot.json",
        "targets.json",
        "targets/releases.json",
        "targets/ci.json",
    ] {
        files.insert(name.to_owned(), std::fs::read(dir.join(name)).unwrap());
    }
    Real {
        files,
        pins: PinnedKey::from_pem(&std::fs::read(dir.join("root-key.pem")).unwrap()).unwrap(),
        now: OffsetDateTime::parse(cases["cases"]["signed"]["now"].as_str().unwrap(), &Rfc3339)
            .unwrap(),
    }
}

fn bench(c: &mut Criterion) {
    let real = real();
    let previous = TrustState::default();
    let ctx = VerifyContext {
        gun: GUN,
        pins: &real.pins,
        now: real.now,
        previous: &previous,
        limits: Limits::default(),
    };
    let tag = Reference::parse(&format!("{GUN}:v2.9")).unwrap();
    let by_digest = Reference::parse(&format!(
        "{GUN}@sha256:61cae772b405f5cdc99fb9f3f911955b08db4825bb0be561d56d91f56afa11a9"
    ))
    .unwrap();
    // Sanity: the fixture verifies and v2.9 resolves to its targets/releases digest.
    let repo = notary::verify::verify_repository(&ctx, &real.files).unwrap();
    let t = notary::target::select(&repo, &tag, &RoleRule::Docker).unwrap();
    assert_eq!(
        t.digest().as_str(),
        "sha256:61cae772b405f5cdc99fb9f3f911955b08db4825bb0be561d56d91f56afa11a9"
    );

    let mut g = c.benchmark_group("trust");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("verify_repository(signed, 2 delegations)", |b| {
        b.iter(|| {
            notary::verify::verify_repository(black_box(&ctx), black_box(&real.files)).unwrap()
        })
    });
    g.bench_function("verify_repository+select(tag v2.9)", |b| {
        b.iter(|| {
            let repo = notary::verify::verify_repository(&ctx, black_box(&real.files)).unwrap();
            notary::target::select(&repo, black_box(&tag), &RoleRule::Docker).unwrap()
        })
    });
    g.bench_function("select(tag v2.9) on verified repo", |b| {
        b.iter(|| {
            notary::target::select(black_box(&repo), black_box(&tag), &RoleRule::Docker).unwrap()
        })
    });
    g.bench_function("select(@sha256) on verified repo", |b| {
        b.iter(|| {
            notary::target::select(black_box(&repo), black_box(&by_digest), &RoleRule::Docker)
                .unwrap()
        })
    });
    g.finish();

    let targets = &real.files["targets.json"];
    let mut g = c.benchmark_group("canonical");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Bytes(targets.len() as u64));
    g.bench_function("canonicalize(targets.json)", |b| {
        b.iter(|| signgate::tuf::canonical::canonicalize(black_box(targets)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
