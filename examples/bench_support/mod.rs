//! What the load harnesses share (examples/loadgen.rs, peerbench.rs, coldbench.rs): knobs from the
//! environment, percentiles, the lab's upstream request counts, one timed review on a kept-alive
//! connection, and issue 16's repeated-image GPU Pod review. Not an example itself (no main.rs).
#![allow(dead_code)]

use std::time::Instant;

use serde_json::{Value, json};

use crate::harness::Lab;

/// `name` from the environment as a number, else `default`.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p`th percentile (nearest rank) of `sorted`; NaN when empty.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

/// `x` to three decimals, for results files.
pub fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Requests the lab's notary server and registry have logged so far.
pub fn upstream(lab: &Lab) -> (usize, usize) {
    (
        lab.notary_request_log().len(),
        lab.registry_request_log().len(),
    )
}

/// One review POSTed to `url` on a kept-alive connection (`client` lives on `rt`, so its pooled
/// connection survives between calls): (ms, the parsed answer). The time is the review's, not a
/// TLS handshake's. Anything but 200 stops the run.
pub fn post_timed(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
) -> (f64, Value) {
    rt.block_on(async {
        let t = Instant::now();
        let r = client
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json, */*")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let ms = t.elapsed().as_secs_f64() * 1e3;
        assert_eq!(status, 200, "{url}: {text}");
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{url}: the answer is not JSON ({e}): {text}"));
        (ms, v)
    })
}

/// The size the repeated-image GPU review is padded to (issue 16's 7.4 KB Pod).
pub const GPU_BODY_BYTES: usize = 7_400;

/// The PyTorchJob worker Pod review of tests/fixtures/admission (namespace `ml-prod`) with a
/// fourth container, the init container and all three containers naming `image`, padded to
/// [`GPU_BODY_BYTES`] (± one env entry) with evaluator env entries: the body of issue 16's
/// independent run. Compact JSON with a trailing newline, as kube-apiserver sends it.
pub fn gpu_repeated_review(image: &str) -> Vec<u8> {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/admission/pod-gpu-training-create.json"
    );
    let mut v: Value = serde_json::from_slice(&std::fs::read(fixture).unwrap()).unwrap();
    let spec = &mut v["request"]["object"]["spec"];
    let mut evaluator = spec["containers"][0].clone();
    evaluator["name"] = json!("evaluator");
    spec["containers"].as_array_mut().unwrap().push(evaluator);
    for list in ["initContainers", "containers"] {
        for c in spec[list].as_array_mut().unwrap() {
            c["image"] = json!(image);
        }
    }
    assert_eq!(spec["initContainers"].as_array().unwrap().len(), 1);
    assert_eq!(spec["containers"].as_array().unwrap().len(), 3);
    let mut i = 0;
    loop {
        let mut body = serde_json::to_vec(&v).unwrap();
        body.push(b'\n');
        if body.len() >= GPU_BODY_BYTES {
            return body;
        }
        let c = &mut v["request"]["object"]["spec"]["containers"][2];
        if c["env"].is_null() {
            c["env"] = json!([]);
        }
        c["env"].as_array_mut().unwrap().push(json!({
            "name": format!("EVAL_SHARD_{i:02}"),
            "value": format!("s3://ml-eval/llama-pretrain/holdout/shard-{i:02}.tar"),
        }));
        i += 1;
    }
}
