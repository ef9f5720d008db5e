//! Pure trust paths over committed real notary output (tests/fixtures/interop/signed: root rotated
//! once, targets + the delegations targets/releases and targets/ci):
//! - `verify_repository`: root walk, timestamp → snapshot → targets → delegations, with every
//!   signature checked (what a cold or refreshed repository costs in CPU);
//! - `verify_repository` + `target::select` for a tag under docker's rule;
//! - `target::select` alone on an already verified repository (what a cache hit costs);
//! - `canonical::canonicalize` of the real `targets.json` (what each signature check re-encodes).
//!
//! `cargo bench --bench trust`; sample sizes are small so it finishes in well under a minute.

use std::hint::black_box;
use std::time::Duration;

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use signgate::notary::{self, RoleRule, TrustState};
use signgate::reference::Reference;

use common::{GUN, interop_signed};

fn bench(c: &mut Criterion) {
    let real = interop_signed();
    let previous = TrustState::default();
    let ctx = real.context(&previous);
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
