//! What the load harnesses share (examples/loadgen.rs, peerbench.rs, coldbench.rs): knobs from the
//! environment, percentiles, the lab's upstream request counts, one timed review on a kept-alive
//! connection, issue 16's repeated-image GPU Pod review, signgate's configuration for the lab,
//! h2load's command line and output, and a process's memory. Not an example itself (no main.rs).
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};

use crate::harness::{Lab, Req, post_review};

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

/// The lab's logged requests as `METHOD URI STATUS` lines.
pub fn request_lines(reqs: &[Req]) -> Vec<String> {
    reqs.iter()
        .map(|r| format!("{} {} {}", r.method, r.uri, r.status))
        .collect()
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
        let (status, _, text) = post_review(client, url, body).await;
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

/// signgate's configuration for the lab: the notary trust root `ml-platform` with `pins`, the
/// lab registry, and either a policy enforcing it on every `ml/**` image (`defaultAction: deny`)
/// or no policies (`defaultAction: allow`).
pub fn config_yaml(lab: &Lab, pins: &[String], enforce: bool) -> String {
    let host = lab.registry_host();
    let mut c = lab.trust_yaml(pins);
    if enforce {
        c.extend([
            "policies:".to_owned(),
            "  - name: ml-prod".to_owned(),
            format!("    images: [\"{host}/ml/**\"]"),
            "    trustRoot: ml-platform".to_owned(),
            "    mode: enforce".to_owned(),
            "defaultAction: deny".to_owned(),
        ]);
    } else {
        c.extend(["policies: []".to_owned(), "defaultAction: allow".to_owned()]);
    }
    c.join("\n")
}

/// h2load arguments for `c` HTTP/1.1 connections, `d` seconds after a 1 s warm-up.
pub fn h1_args(c: usize, d: &str) -> Vec<String> {
    ["--h1", "-c", &c.to_string(), "-D", d, "--warm-up-time=1"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// h2load with `args` POSTing `body` to `url` with kube-apiserver's headers, each request logged
/// to `log` (start µs, status, duration µs).
pub fn h2load_command(args: &[String], body: &Path, log: &Path, url: &str) -> Command {
    let mut cmd = Command::new("h2load");
    cmd.args(args)
        .arg("-d")
        .arg(body)
        .args(["-H", "content-type: application/json"])
        .args(["-H", "accept: application/json, */*"])
        .arg(format!("--log-file={}", log.display()))
        .arg(url);
    cmd
}

/// The fields (split on spaces and commas) of h2load's `finished in 5.00s, 1234.50 req/s, ...`
/// line, if it printed one.
pub fn h2load_finished(stdout: &str) -> Option<Vec<&str>> {
    stdout
        .lines()
        .find(|l| l.starts_with("finished in"))
        .map(|l| l.split([' ', ',']).filter(|s| !s.is_empty()).collect())
}

/// The latencies in h2load's per-request `log` (ms, sorted) and how many answers were not 200.
pub fn h2load_latencies(log: &Path) -> (Vec<f64>, usize) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let (mut lat, mut non_200) = (Vec::new(), 0usize);
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 3 {
            continue;
        }
        if f[1] != "200" {
            non_200 += 1;
        }
        lat.push(f[2].parse::<f64>().unwrap() / 1000.0);
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (lat, non_200)
}

/// (VmRSS, VmHWM) in KiB from the text of a `/proc/PID/status`; 0 where a field is missing.
pub fn vm_kib(status: &str) -> (u64, u64) {
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
