//! signgate's local demo (README command one, via `scripts/demo`): a real notary-server and
//! registry on 127.0.0.1, a GPU training image signed the way `docker trust sign` does and an
//! unsigned tag beside it, `signgate serve` with a policy that enforces signatures, and two
//! AdmissionReviews sent the way kube-apiserver sends them: the signed Pod is admitted, the unsigned
//! one is denied. Everything it starts is stopped at the end.

#[allow(unused_imports)]
#[path = "../tests/harness/mod.rs"]
mod harness;
#[allow(unused_imports)]
#[path = "../tests/webhook_support/mod.rs"]
mod webhook_support;

use webhook_support::*;

fn main() {
    println!(
        "== starting docker-registry and notary-server on 127.0.0.1 (TLS), publishing trust data with the notary CLI"
    );
    let s = setup();
    println!("   registry  https://{}", s.lab.registry_host());
    println!("   notary    {}", s.lab.notary_url());
    println!(
        "   signed    {}  (targets/releases, {})",
        s.signed, s.signed_digest.digest
    );
    println!("   unsigned  {}", s.unsigned);
    println!(
        "\n== signgate serve is running at {} with this configuration:",
        s.serve.url
    );
    let config = std::fs::read_to_string(&s.config).unwrap();
    let mut in_pem = false;
    for line in config.lines() {
        if line.contains("-----BEGIN") {
            in_pem = true;
            println!(
                "   {}(a pinned root public key, PEM)",
                line.split("-----").next().unwrap_or_default()
            );
        } else if line.contains("-----END") {
            in_pem = false;
        } else if !in_pem {
            println!("   {line}");
        }
    }
    let client = apiserver_client(&s.lab);
    // The GPU training Pod's review `uid(n)`, its trainer running `trainer`.
    let gpu_pod = |n: u32, trainer: &str| {
        pod_review(
            n,
            "ml-prod",
            &[("trainer", trainer), ("dcgm", &s.other_signed)],
            &[("fetch-data", &s.signed)],
        )
    };

    println!(
        "\n== a signed GPU training Pod (init container + trainer + DCGM exporter), as kube-apiserver sends it (HTTP/1.1, POST /validate?timeout=10s)"
    );
    let (status, resp, _) = post(&client, &s.serve, gpu_pod(1, &s.signed));
    println!(
        "   HTTP {status}: allowed = {}",
        resp["response"]["allowed"]
    );
    assert_eq!(resp["response"]["allowed"], true, "{resp}");

    println!("\n== the same Pod with the unsigned nightly image");
    let (status, resp, _) = post(&client, &s.serve, gpu_pod(2, &s.unsigned));
    println!(
        "   HTTP {status}: allowed = {}, code {}",
        resp["response"]["allowed"], resp["response"]["status"]["code"]
    );
    println!(
        "   message: {}",
        resp["response"]["status"]["message"]
            .as_str()
            .unwrap_or_default()
    );
    assert_eq!(resp["response"]["allowed"], false, "{resp}");

    println!("\n== in the dev namespace the policy only warns");
    let body = pod_review(3, "ml-dev", &[("trainer", &s.unsigned)], &[]);
    let (_, resp, _) = post(&client, &s.serve, body);
    println!(
        "   allowed = {}, warnings = {}",
        resp["response"]["allowed"], resp["response"]["warnings"]
    );

    println!(
        "\n== a few metric lines from {}/metrics",
        s.serve.metrics_url
    );
    let metrics = metrics_text(&s.serve);
    for line in metrics.lines().filter(|l| {
        (l.starts_with("signgate_admission_requests_total{")
            || l.starts_with("signgate_verifications_total{")
            || l.starts_with("signgate_cache_hits_total{"))
            && !l.ends_with(" 0")
    }) {
        println!("   {line}");
    }
    println!("\n== stopping signgate, the registry and the notary server");
    drop(s);
    println!("done");
}
