//! The admission path without verification, on the realistic 3-container GPU training Pod
//! (tests/fixtures/admission/pod-gpu-training-create.json, an init container, the trainer and the
//! DCGM exporter): parse the AdmissionReview → extract the images → pick what needs verifying →
//! build the answer (allowed or denied) → serialise it. This is the per-review work signgate does
//! around a cache hit; the verification itself is in `benches/trust.rs`.
//!
//! `cargo bench --bench admission`

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use signgate::admission;

fn bench(c: &mut Criterion) {
    let body = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/admission/pod-gpu-training-create.json"),
    )
    .unwrap();
    let review = admission::parse_review(&body).unwrap();
    let workload = admission::images(&review).unwrap();
    assert_eq!(admission::images_to_verify(&review, &workload).len(), 3);

    let mut g = c.benchmark_group("admission");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("parse_review(gpu pod)", |b| {
        b.iter(|| admission::parse_review(black_box(&body)).unwrap())
    });
    // kube's own type for the same body (tests/admission.rs compares what each accepts).
    g.bench_function("kube AdmissionReview<DynamicObject>(gpu pod)", |b| {
        b.iter(|| {
            serde_json::from_slice::<
                kube::core::admission::AdmissionReview<kube::core::DynamicObject>,
            >(black_box(&body))
            .unwrap()
        })
    });
    g.bench_function("images+images_to_verify(gpu pod)", |b| {
        b.iter(|| {
            let w = admission::images(black_box(&review)).unwrap();
            admission::images_to_verify(&review, &w)
        })
    });
    g.bench_function("parse→images→to_verify→allowed→bytes", |b| {
        b.iter(|| {
            let r = admission::parse_review(black_box(&body)).unwrap();
            let w = admission::images(&r).unwrap();
            let v = admission::images_to_verify(&r, &w);
            assert_eq!(v.len(), 3);
            serde_json::to_vec(&admission::allowed(&r.uid, Vec::new(), BTreeMap::new())).unwrap()
        })
    });
    g.bench_function("parse→images→to_verify→denied→bytes", |b| {
        b.iter(|| {
            let r = admission::parse_review(black_box(&body)).unwrap();
            let w = admission::images(&r).unwrap();
            let v = admission::images_to_verify(&r, &w);
            let msg = format!(
                "image {} is not signed: no trust data for tag {:?}",
                v[1].image, "v2.9"
            );
            serde_json::to_vec(&admission::denied(&r.uid, msg, Vec::new(), BTreeMap::new()))
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
