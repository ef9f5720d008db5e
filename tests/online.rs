//! Online verification against real servers: Debian's notary-server and docker-registry, started
//! by the harness on 127.0.0.1 with TLS, trust data published by the real notary CLI as
//! `docker trust sign` does.

#[allow(unused_imports)]
mod harness;

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::{Lab, Pushed};
use signgate::metrics::Metrics;
use signgate::notary::{Limits, PinnedKey, Reason, RoleRule, TrustError, VerifiedTarget};
use signgate::reference::Reference;
use signgate::upstream::{
    BasicCredentials, CacheSettings, NotaryClient, NotaryServer, RegistrySettings, Resolver,
    TrustRootClient,
};
use signgate::verifier;
use time::OffsetDateTime;

struct Clients {
    trust: TrustRootClient,
    registry: Resolver,
}

fn clients(
    lab: &Lab,
    pin: &std::path::Path,
    settings: CacheSettings,
    creds: Option<BasicCredentials>,
) -> Clients {
    let ca = std::fs::read(lab.ca_pem_path()).unwrap();
    let pins = PinnedKey::from_pem(&std::fs::read(pin).unwrap()).unwrap();
    let client = NotaryClient::new(
        NotaryServer {
            url: lab.notary_url(),
            ca_pem: Some(ca.clone()),
            credentials: creds.clone(),
            request_timeout: Duration::from_secs(3),
        },
        Arc::new(Metrics::new()),
    )
    .unwrap();
    Clients {
        trust: TrustRootClient::new("lab", client, pins, Limits::default(), settings),
        registry: Resolver::new(
            HashMap::new(),
            RegistrySettings {
                ca_pem: Some(ca),
                credentials: creds,
            },
            Duration::from_secs(3),
            Duration::ZERO,
            Arc::new(Metrics::new()),
        ),
    }
}

/// Clients pinned to `gun`'s original root key, with the default cache and no credentials.
fn clients_for(lab: &Lab, gun: &str) -> Clients {
    clients(lab, &lab.root_key_pem(gun), CacheSettings::default(), None)
}

/// Cache settings that ask the notary server again on every verification.
fn refreshing() -> CacheSettings {
    CacheSettings {
        refresh: Duration::ZERO,
        ..CacheSettings::default()
    }
}

/// Initialises `repo` as docker does, with a delegation `targets/<name>` (key `<name>`) for each
/// of `delegations`: its GUN.
fn docker_repo(lab: &Lab, repo: &str, delegations: &[&str]) -> String {
    let notary = lab.notary();
    let gun = lab.gun(repo);
    notary.init_docker_like(&gun);
    for name in delegations {
        notary.add_delegation(&gun, &format!("targets/{name}"), name);
    }
    gun
}

/// Initialises `repo` as docker does, pushes `payload` as `v1` and signs it with the targets key:
/// the GUN and the signed image.
fn publish_v1(lab: &Lab, repo: &str, payload: &str) -> (String, Pushed) {
    let notary = lab.notary();
    let gun = docker_repo(lab, repo, &[]);
    let img = lab.push_image(repo, "v1", payload);
    notary.sign(&gun, "v1", &img, None);
    (gun, img)
}

/// Runs a `signgate ... --output json` command: its exit code and the JSON it printed.
fn json_output(cmd: &mut Command) -> (Option<i32>, serde_json::Value) {
    let out = cmd.output().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), doc)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn verify(
    rt: &tokio::runtime::Runtime,
    c: &Clients,
    image: &str,
    rule: &RoleRule,
    now: OffsetDateTime,
) -> Result<VerifiedTarget, TrustError> {
    let reference = Reference::parse(image).unwrap();
    rt.block_on(verifier::verify_image(
        &c.trust,
        &c.registry,
        &reference,
        rule,
        now,
    ))
}

fn reason(r: Result<VerifiedTarget, TrustError>) -> Reason {
    match r {
        Ok(t) => panic!("expected a refusal, got trusted {}", t.digest()),
        Err(e) => {
            eprintln!("refused as expected: {}: {e}", e.reason());
            e.reason()
        }
    }
}

fn digest(r: Result<VerifiedTarget, TrustError>) -> (String, Vec<String>) {
    let t = r.unwrap_or_else(|e| panic!("expected trusted, got {}: {e}", e.reason()));
    (t.digest().to_string(), t.roles().to_vec())
}

#[test]
fn verifies_docker_signed_repositories_against_real_servers() {
    let lab = Lab::start();
    let rt = runtime();
    let now = OffsetDateTime::now_utc();
    let notary = lab.notary();

    let gun = docker_repo(&lab, "ml/pytorch-cuda", &["releases", "ci"]);
    let v29 = lab.push_image("ml/pytorch-cuda", "v2.9", "pytorch 2.9 cuda 12");
    notary.sign(&gun, "v2.9", &v29, Some("targets/releases"));
    // v2.8: targets signs an old build, releases the current one; the registry holds the current.
    let old = lab.push_image("ml/pytorch-cuda", "v2.8", "pytorch 2.8 old build");
    notary.sign(&gun, "v2.8", &old, None);
    let v28 = lab.push_image("ml/pytorch-cuda", "v2.8", "pytorch 2.8 rebuilt");
    notary.sign(&gun, "v2.8", &v28, Some("targets/releases"));
    let base = lab.push_image("ml/pytorch-cuda", "base", "base image");
    notary.sign(&gun, "base", &base, None);
    let ci = lab.push_image("ml/pytorch-cuda", "ci-only", "ci build");
    notary.sign(&gun, "ci-only", &ci, Some("targets/ci"));
    lab.push_image("ml/pytorch-cuda", "unsigned", "never signed");
    let signed = lab.push_image("ml/pytorch-cuda", "moved", "signed then moved");
    notary.sign(&gun, "moved", &signed, Some("targets/releases"));
    lab.push_image("ml/pytorch-cuda", "moved", "a miner");

    let c = clients_for(&lab, &gun);
    let docker = RoleRule::Docker;

    // A cold verification: count what it costs at the servers.
    let (n0, r0) = (
        lab.notary_request_log().len(),
        lab.registry_requests("/manifests/"),
    );
    let started = Instant::now();
    let got = digest(verify(&rt, &c, &format!("{gun}:v2.9"), &docker, now));
    let cold = started.elapsed();
    assert_eq!(
        got,
        (v29.digest.clone(), vec!["targets/releases".to_owned()])
    );
    let notary_cold = lab.notary_request_log().len() - n0;
    let registry_cold = lab.registry_requests("/manifests/") - r0;
    eprintln!(
        "cold verification: {notary_cold} notary requests, {registry_cold} registry manifest requests, {:.1} ms (client counted {})",
        cold.as_secs_f64() * 1e3,
        c.trust.requests() + c.registry.requests()
    );
    // root, timestamp, snapshot, targets, targets/releases, targets/ci: the chain needs no fewer.
    assert_eq!(notary_cold, 6, "{:#?}", &lab.notary_request_log()[n0..]);
    assert_eq!(registry_cold, 1);

    // Warm: served from the cache, the registry asked once more for the tag.
    let n1 = lab.notary_request_log().len();
    assert_eq!(
        digest(verify(&rt, &c, &format!("{gun}:v2.8"), &docker, now)),
        (v28.digest.clone(), vec!["targets/releases".to_owned()])
    );
    assert_eq!(
        lab.notary_request_log().len(),
        n1,
        "a warm verification must not ask the notary server"
    );

    assert_eq!(
        digest(verify(&rt, &c, &format!("{gun}:base"), &docker, now)).0,
        base.digest
    );
    assert_eq!(
        reason(verify(&rt, &c, &format!("{gun}:ci-only"), &docker, now)),
        Reason::TagOnlyInOtherDelegation
    );
    assert_eq!(
        reason(verify(&rt, &c, &format!("{gun}:unsigned"), &docker, now)),
        Reason::TagNotSigned
    );
    assert_eq!(
        reason(verify(&rt, &c, &format!("{gun}:moved"), &docker, now)),
        Reason::DigestMismatch
    );
    // By digest the registry is not asked: the signed digest of "moved" is still trusted.
    assert_eq!(
        digest(verify(
            &rt,
            &c,
            &format!("{gun}@{}", signed.digest),
            &docker,
            now
        ))
        .0,
        signed.digest
    );
    assert_eq!(
        reason(verify(
            &rt,
            &c,
            &format!("{gun}@{}", ci.digest),
            &docker,
            now
        )),
        Reason::DigestNotSigned
    );
    assert_eq!(
        reason(verify(
            &rt,
            &c,
            &format!("{gun}:v2.8"),
            &RoleRule::Require(vec!["targets/releases".into(), "targets".into()]),
            now
        )),
        Reason::RequiredRolesDisagree
    );
    assert_eq!(
        reason(verify(&rt, &c, &format!("{gun}:nosuchtag"), &docker, now)),
        Reason::TagNotSigned
    );

    // Frozen trust data: 15 days on, the 14-day timestamp has expired.
    let fresh = clients_for(&lab, &gun);
    assert_eq!(
        reason(verify(
            &rt,
            &fresh,
            &format!("{gun}:v2.9"),
            &docker,
            now + time::Duration::days(15)
        )),
        Reason::Expired
    );

    // The command line, as a person or script runs it.
    let cli = |image: &str| {
        json_output(
            Command::new(env!("CARGO_BIN_EXE_signgate"))
                .args(["verify", "--notary", &lab.notary_url(), "--output", "json"])
                .arg("--root-key")
                .arg(lab.root_key_pem(&gun))
                .arg("--ca-file")
                .arg(lab.ca_pem_path())
                .arg(image),
        )
    };
    let (code, doc) = cli(&format!("{gun}:v2.9"));
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["digest"].as_str(), Some(v29.digest.as_str()));
    assert_eq!(doc["role"].as_str(), Some("targets/releases"));
    // root, timestamp, snapshot, targets, releases, ci + the manifest.
    assert_eq!(doc["upstream_requests"].as_u64(), Some(7), "{doc}");
    let (code, doc) = cli(&format!("{gun}:moved"));
    assert_eq!(
        (code, doc["reason"].as_str()),
        (Some(1), Some("digest_mismatch")),
        "{doc}"
    );

    // The same through a configuration file, as the webhook reads it.
    let dir = tempfile::tempdir().unwrap();
    let pem = std::fs::read_to_string(lab.root_key_pem(&gun)).unwrap();
    let indented: String = pem
        .lines()
        .map(|l| format!("          {l}"))
        .collect::<Vec<_>>()
        .join("\n");
    let host = lab.registry_host();
    let ca = lab.ca_pem_path().display().to_string();
    let config = [
        "trustRoots:".to_owned(),
        "  - name: lab".to_owned(),
        "    notary:".to_owned(),
        format!("      url: {}", lab.notary_url()),
        format!("      caFile: {ca}"),
        "      rootKeys:".to_owned(),
        "        - |".to_owned(),
        indented,
        "registries:".to_owned(),
        format!("  - host: {host}"),
        format!("    caFile: {ca}"),
        "policies:".to_owned(),
        "  - name: pytorch-gpu-prod".to_owned(),
        format!("    images: [\"{host}/ml/**\"]"),
        "    trustRoot: lab".to_owned(),
        "    mode: enforce".to_owned(),
        "  - name: base-images".to_owned(),
        format!("    images: [\"{host}/base/*\"]"),
        "    action: allow".to_owned(),
        "defaultAction: deny".to_owned(),
    ]
    .join("\n");
    let config_path = dir.path().join("signgate.yaml");
    std::fs::write(&config_path, config).unwrap();
    let with_config = |image: &str| {
        json_output(
            Command::new(env!("CARGO_BIN_EXE_signgate"))
                .args(["verify", "--output", "json", "--config"])
                .arg(&config_path)
                .arg(image),
        )
    };
    let (code, doc) = with_config(&format!("{gun}:v2.9"));
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(
        (doc["policy"].as_str(), doc["digest"].as_str()),
        (Some("pytorch-gpu-prod"), Some(v29.digest.as_str()))
    );
    let (code, doc) = with_config(&format!("{gun}:unsigned"));
    assert_eq!(
        (code, doc["reason"].as_str()),
        (Some(1), Some("tag_not_signed")),
        "{doc}"
    );
    let (code, doc) = with_config(&format!("{}/base/alpine:3", lab.registry_host()));
    assert_eq!(
        (code, doc["outcome"].as_str()),
        (Some(0), Some("allowed_by_policy")),
        "{doc}"
    );
    let (code, doc) = with_config("docker.io/library/alpine:3");
    assert_eq!(
        (code, doc["outcome"].as_str(), doc["policy"].as_str()),
        (Some(1), Some("denied_by_policy"), Some("defaultAction")),
        "{doc}"
    );

    // A trust root without notary.url uses the default notary server of the image's registry
    // (registries[].notary); an image from a registry without one is refused, saying so.
    let by_registry = std::fs::read_to_string(&config_path)
        .unwrap()
        .replace(&format!("      url: {}\n", lab.notary_url()), "")
        .replace(
            &format!("    caFile: {ca}\npolicies:"),
            &format!(
                "    caFile: {ca}\n    notary: {}\npolicies:\n  - name: elsewhere\n    images: [\"elsewhere.test/**\"]\n    trustRoot: lab",
                lab.notary_url()
            ),
        );
    assert!(!by_registry.contains("url:"), "{by_registry}");
    std::fs::write(&config_path, by_registry).unwrap();
    let (code, doc) = with_config(&format!("{gun}:v2.9"));
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["digest"].as_str(), Some(v29.digest.as_str()), "{doc}");
    let (code, doc) = with_config("elsewhere.test/ml/x:v1");
    assert_eq!(
        (code, doc["reason"].as_str()),
        (Some(1), Some("no_notary_server")),
        "{doc}"
    );

    // A repository with images but no trust data.
    lab.push_image("ml/unsigned-repo", "v1", "no trust data");
    assert_eq!(
        reason(verify(
            &rt,
            &c,
            &format!("{}:v1", lab.gun("ml/unsigned-repo")),
            &docker,
            now
        )),
        Reason::RepositoryNotSigned
    );
}

#[test]
fn follows_root_rotations_and_refuses_a_replaced_root() {
    let lab = Lab::start();
    let rt = runtime();
    let now = OffsetDateTime::now_utc();
    let notary = lab.notary();
    let docker = RoleRule::Docker;

    // Rotated twice after v1 was signed; v2 signed after: trusted from the original pin.
    let (gun, v1) = publish_v1(&lab, "ml/rotated", "rotated v1");
    let original = lab.root_key_pem(&gun);
    let seen = clients(&lab, &original, refreshing(), None);
    assert_eq!(
        digest(verify(&rt, &seen, &format!("{gun}:v1"), &docker, now)).0,
        v1.digest
    );
    notary.rotate_root(&gun);
    notary.rotate_root(&gun);
    let v2 = lab.push_image("ml/rotated", "v2", "rotated v2");
    notary.sign(&gun, "v2", &v2, None);
    // A verifier that trusted the old root walks the rotations.
    assert_eq!(
        digest(verify(&rt, &seen, &format!("{gun}:v2"), &docker, now)).0,
        v2.digest
    );
    // So does a new one from the original pin.
    let cold = clients(&lab, &original, CacheSettings::default(), None);
    assert_eq!(
        digest(verify(&rt, &cold, &format!("{gun}:v1"), &docker, now)).0,
        v1.digest
    );

    // Re-rooted: trust data deleted and published again under another root key.
    let (gun, r1) = publish_v1(&lab, "ml/rerooted", "genuine");
    let pin = lab.root_key_pem(&gun);
    let no_negative_cache = CacheSettings {
        negative_ttl: Duration::ZERO,
        ..refreshing()
    };
    let seen = clients(&lab, &pin, no_negative_cache, None);
    assert_eq!(
        digest(verify(&rt, &seen, &format!("{gun}:v1"), &docker, now)).0,
        r1.digest
    );
    notary.delete_trust_data(&gun);
    let other = notary.fresh();
    other.init_docker_like(&gun);
    let evil = lab.push_image("ml/rerooted", "v1", "replaced");
    other.sign(&gun, "v1", &evil, None);
    // The verifier that trusted the first root refuses the second, and so does a new one.
    let r = reason(verify(&rt, &seen, &format!("{gun}:v1"), &docker, now));
    assert!(
        matches!(r, Reason::RootRotationFailed | Reason::RootNotPinned),
        "{r}"
    );
    let cold = clients(&lab, &pin, CacheSettings::default(), None);
    assert_eq!(
        reason(verify(&rt, &cold, &format!("{gun}:v1"), &docker, now)),
        Reason::RootNotPinned
    );
}

#[test]
fn two_hundred_concurrent_verifications_fetch_each_document_once() {
    let lab = Lab::start();
    let rt = runtime();
    let now = OffsetDateTime::now_utc();
    let notary = lab.notary();
    let gun = docker_repo(&lab, "ml/burst", &["releases"]);
    let img = lab.push_image("ml/burst", "v1", "burst");
    notary.sign(&gun, "v1", &img, Some("targets/releases"));
    let c = Arc::new(clients_for(&lab, &gun));
    let n0 = lab.notary_request_log().len();
    let r0 = lab.registry_request_log().len();

    let image = format!("{gun}:v1");
    let results = rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let c = Arc::clone(&c);
            let image = image.clone();
            tasks.push(tokio::spawn(async move {
                let reference = Reference::parse(&image).unwrap();
                verifier::verify_image(&c.trust, &c.registry, &reference, &RoleRule::Docker, now)
                    .await
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().is_ok_and(|t| t.digest().as_str() == img.digest))
    );

    let notary_log = &lab.notary_request_log()[n0..];
    let mut per_path: BTreeMap<&str, usize> = BTreeMap::new();
    for r in notary_log {
        *per_path.entry(r.uri.as_str()).or_default() += 1;
    }
    eprintln!("notary requests for 200 concurrent verifications: {per_path:#?}");
    assert!(
        per_path.values().all(|&n| n == 1),
        "a document was fetched twice: {per_path:#?}"
    );
    assert_eq!(
        per_path.len(),
        5,
        "root, timestamp, snapshot, targets, targets/releases"
    );
    let manifests = lab.registry_request_log()[r0..]
        .iter()
        .filter(|r| r.uri.contains("/manifests/"))
        .count();
    assert_eq!(manifests, 1, "the manifest was fetched {manifests} times");
}

#[test]
fn token_authenticated_notary_and_registry() {
    let lab = Lab::start_with_token_auth();
    let rt = runtime();
    let now = OffsetDateTime::now_utc();
    let (gun, img) = publish_v1(&lab, "ml/authed", "authed");
    let pin = lab.root_key_pem(&gun);
    let creds = BasicCredentials {
        username: "ci".into(),
        password: "s3cret".into(),
    };
    let c = clients(&lab, &pin, CacheSettings::default(), Some(creds));
    let t0 = lab.token_requests();
    assert_eq!(
        digest(verify(
            &rt,
            &c,
            &format!("{gun}:v1"),
            &RoleRule::Docker,
            now
        ))
        .0,
        img.digest
    );
    assert!(lab.token_requests() > t0, "no token was requested");

    // Without credentials both servers refuse, and the reason says so.
    let anon = clients(&lab, &pin, CacheSettings::default(), None);
    assert_eq!(
        reason(verify(
            &rt,
            &anon,
            &format!("{gun}:v1"),
            &RoleRule::Docker,
            now
        )),
        Reason::UpstreamError
    );
}

#[test]
fn notary_outage_uses_cached_data_only_until_it_expires() {
    let mut lab = Lab::start();
    let rt = runtime();
    let now = OffsetDateTime::now_utc();
    let (gun, img) = publish_v1(&lab, "ml/outage", "outage");
    let settings = CacheSettings {
        unreachable_backoff: Duration::ZERO,
        ..refreshing()
    };
    let pin = lab.root_key_pem(&gun);
    let c = clients(&lab, &pin, settings, None);
    let image = format!("{gun}:v1");
    assert_eq!(
        digest(verify(&rt, &c, &image, &RoleRule::Docker, now)).0,
        img.digest
    );

    lab.stop_notary();
    // Cached, still valid: served.
    assert_eq!(
        digest(verify(
            &rt,
            &c,
            &image,
            &RoleRule::Docker,
            now + time::Duration::days(1)
        ))
        .0,
        img.digest
    );
    // Cached but expired (the timestamp lasts 14 days): refused, saying why.
    let err = verify(
        &rt,
        &c,
        &image,
        &RoleRule::Docker,
        now + time::Duration::days(15),
    )
    .unwrap_err();
    assert_eq!(err.reason(), Reason::UpstreamError);
    assert!(err.to_string().contains("expired"), "{err}");
    // A repository never seen: a clear error.
    let cold = clients(&lab, &pin, CacheSettings::default(), None);
    let err = verify(&rt, &cold, &image, &RoleRule::Docker, now).unwrap_err();
    assert_eq!(err.reason(), Reason::UpstreamError, "{err}");

    lab.start_notary();
    assert_eq!(
        digest(verify(&rt, &c, &image, &RoleRule::Docker, now)).0,
        img.digest
    );
}
