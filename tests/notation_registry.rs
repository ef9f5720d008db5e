//! Notation trust roots through the whole verifier, against a registry served in process
//! (`faults::Server`): Connaisseur's registry tree with a real notation JWS signature stored
//! through the referrers tag schema (N4, copied with its LICENSE into
//! tests/fixtures/notation/connaisseur), the dual-signing migration case (a Notary v1 root and a
//! Notation root in one policy, `all` and `any`), and hostile registries: an endless referrers
//! list, an oversized or endless envelope, a signature manifest for another digest, and more
//! candidates than the cap.

mod common;
mod faults;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use time::OffsetDateTime;

use common::{Repo, days, rfc3339, target};
use faults::{Reply, Server, sha256_digest};
use signgate::config::Config;
use signgate::policy::{ImageDecision, Outcome};
use signgate::verifier::{Verifier, VerifierSettings};

const REPO: &str = "sse-secure-systems/testimage";
const SIGNED: &str = "sha256:a136cc4e785798e5e8483047cf621cf0a0300a93d47703a3f066c340c070f5cf";
const UNSIGNED: &str = "sha256:c51f6b33b43f9f234af90bf310d976ea1bec487ab00ab61bd684b0efbbc15b53";
const SIG_MANIFEST: &str =
    "sha256:d397b30282982b80818b2705f8d542d35158bc59d8bf42549f3e898f23d55a77";
const ENVELOPE: &str = "sha256:929a0a249c4614eb8bef5a914308896e7c8c5422d508eaddfd98dfe61683e556";

fn fixture(rel: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/notation/connaisseur/sse-secure-systems/testimage")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The trust roots Connaisseur's test configures for this image (`01_notation.yaml`).
fn connaisseur_cert(name: &str) -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/notation/connaisseur/01_notation.yaml"),
    )
    .unwrap();
    let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    doc["trustRoots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap()["cert"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn docker_manifest(body: Vec<u8>) -> Reply {
    Reply::registry_doc("application/vnd.docker.distribution.manifest.v2+json", body)
}

fn oci(media_type: &str, body: Vec<u8>) -> Reply {
    Reply::full(200, media_type, body)
}

/// Connaisseur's registry tree as distribution 2.8 would serve it (no referrers API).
fn connaisseur_registry(path: &str) -> Reply {
    let base = format!("/v2/{REPO}");
    let Some(rest) = path.strip_prefix(&base) else {
        return Reply::not_found();
    };
    let hex = |d: &str| d.trim_start_matches("sha256:").to_owned();
    match rest {
        "/manifests/notation-sign" => docker_manifest(fixture("manifests/notation-sign.json")),
        "/manifests/notation-unsign" => docker_manifest(fixture("manifests/notation-unsign.json")),
        r if r == format!("/manifests/{SIGNED}") => {
            docker_manifest(fixture(&format!("manifests/{SIGNED}.json")))
        }
        r if r == format!("/manifests/{UNSIGNED}") => {
            docker_manifest(fixture(&format!("manifests/{UNSIGNED}.json")))
        }
        r if r == format!("/manifests/sha256-{}", hex(SIGNED)) => oci(
            "application/vnd.oci.image.index.v1+json",
            fixture(&format!("manifests/sha256-{}.json", hex(SIGNED))),
        ),
        r if r == format!("/manifests/{SIG_MANIFEST}") => oci(
            "application/vnd.oci.image.manifest.v1+json",
            fixture(&format!("manifests/{SIG_MANIFEST}.json")),
        ),
        r if r == format!("/blobs/{ENVELOPE}") => oci(
            "application/octet-stream",
            fixture(&format!("blobs/{ENVELOPE}.json")),
        ),
        _ => Reply::not_found(),
    }
}

struct Lab {
    dir: tempfile::TempDir,
    host: String,
    _registry: Server,
}

async fn lab(router: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Lab {
    let registry = Server::tls(router).await;
    let host = registry
        .url()
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("registry-ca.pem"), faults::ca_pem()).unwrap();
    Lab {
        dir,
        host,
        _registry: registry,
    }
}

impl Lab {
    /// A verifier with one Notation root (`nv2`, trusting `notation_cert`) for the repository.
    fn verifier(&self, notation_cert: &str, notary_tags: &[(&str, &str)]) -> Verifier {
        self.write_trust(notation_cert, notary_tags);
        let text = format!(
            "trustRoots:
  - name: nv2
    notation:
      trustStores:
        ca: [notation-ca.pem]
      trustedIdentities: [\"*\"]
registries:
  - host: \"{host}\"
    caFile: registry-ca.pem
policies:
  - name: only-notation
    images: [\"{host}/{REPO}\"]
    trustRoot: nv2
defaultAction: deny
",
            host = self.host
        );
        self.build(&text)
    }

    /// The files the configurations name: the offline bundle signing `notary_tags` (tag,
    /// digest of 526 bytes), its root certificate, and the Notation trust anchor.
    fn write_trust(&self, notation_cert: &str, notary_tags: &[(&str, &str)]) {
        let bundles = self.dir.path().join("bundles");
        let mut r = Repo::for_gun(&format!("{}/{REPO}", self.host));
        let now = OffsetDateTime::now_utc();
        for (tag, digest) in notary_tags {
            r.delegations.get_mut("targets/releases").unwrap()["targets"][*tag] =
                target(digest.trim_start_matches("sha256:"), 526);
        }
        for role in [&mut r.targets, &mut r.snapshot, &mut r.timestamp] {
            role["expires"] = json!(rfc3339(now + days(30)));
        }
        for body in r.delegations.values_mut() {
            body["expires"] = json!(rfc3339(now + days(30)));
        }
        r.write_bundle(&bundles);
        std::fs::write(self.dir.path().join("root.pem"), r.root_cert_pem()).unwrap();
        std::fs::write(self.dir.path().join("notation-ca.pem"), notation_cert).unwrap();
    }

    fn build(&self, text: &str) -> Verifier {
        let path: PathBuf = self.dir.path().join("signgate.yaml");
        std::fs::write(&path, text).unwrap();
        let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        Verifier::new(Arc::new(config), VerifierSettings::default()).unwrap()
    }

    fn image(&self, tag: &str) -> String {
        format!("{}/{REPO}:{tag}", self.host)
    }
}

async fn decide(v: &Verifier, image: &str) -> ImageDecision {
    v.decide(image, "ml", &BTreeMap::new(), OffsetDateTime::now_utc())
        .await
}

/// `(verified digest, signers)` or `(reason, message)`.
fn verdict(d: &ImageDecision) -> Result<(String, String), (String, String)> {
    match &d.outcome {
        Outcome::Verified(v) => Ok((v.digest.to_string(), v.signers())),
        Outcome::Failed(e) => Err((e.reason().as_str().to_owned(), e.to_string())),
        other => panic!("{}: {other:?}", d.image),
    }
}

#[tokio::test]
async fn n4_connaisseurs_notation_signature_verifies_through_the_tag_schema() {
    let lab = lab(connaisseur_registry).await;
    let v = lab.verifier(&connaisseur_cert("default"), &[]);
    let (digest, signers) = verdict(&decide(&v, &lab.image("notation-sign")).await).unwrap();
    assert_eq!(digest, SIGNED);
    assert!(signers.contains("nv2: CN=securesystems.de"), "{signers}");
    // By digest too.
    let by_digest = format!("{}/{REPO}@{SIGNED}", lab.host);
    assert!(verdict(&decide(&v, &by_digest).await).is_ok());

    let (reason, message) = verdict(&decide(&v, &lab.image("notation-unsign")).await).unwrap_err();
    assert_eq!(reason, "no_signature", "{message}");
    assert!(message.starts_with("notation: "), "{message}");
    // The signing chain's expiry is a trust data expiry series (role "certificate").
    let metrics = v.metrics().encode();
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("signgate_trust_data_expiry_timestamp_seconds{")
                && l.contains("role=\"certificate\"")
        })
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(
        line.contains("trust_root=\"nv2\"") && line.contains(REPO),
        "{line}"
    );
    // 2124-12-31T12:43:14Z, the self-signed leaf's notAfter.
    assert!(line.ends_with(" 4891322594"), "{line}");

    // Connaisseur's other trust root did not sign it.
    let other = lab.verifier(&connaisseur_cert("different-cert"), &[]);
    let (reason, message) =
        verdict(&decide(&other, &lab.image("notation-sign")).await).unwrap_err();
    assert_eq!(reason, "untrusted_signer", "{message}");
    assert!(message.contains("1 found"), "{message}");
}

#[tokio::test]
async fn dual_signing_notary_v1_and_notation_under_all_and_any() {
    let lab = lab(connaisseur_registry).await;
    // Notary v1 signs both tags; Notation signs only notation-sign.
    lab.write_trust(
        &connaisseur_cert("default"),
        &[("notation-sign", SIGNED), ("notation-unsign", UNSIGNED)],
    );
    let policies = |require: &str| {
        format!(
            "trustRoots:
  - name: dct
    notary:
      rootKeyFiles: [root.pem]
      offlineDir: bundles
  - name: nv2
    notation:
      trustStores:
        ca: [notation-ca.pem]
      trustedIdentities: [\"*\"]
      level: strict
registries:
  - host: \"{host}\"
    caFile: registry-ca.pem
policies:
  - name: migrate
    images: [\"{host}/{REPO}\"]
    trustRoots: [dct, nv2]
    require: {require}
defaultAction: deny
",
            host = lab.host
        )
    };
    let all = lab.build(&policies("all"));
    let any = lab.build(&policies("any"));
    // Both signatures on one digest: allowed under both, naming both signers.
    for v in [&all, &any] {
        let (digest, signers) = verdict(&decide(v, &lab.image("notation-sign")).await).unwrap();
        assert_eq!(digest, SIGNED);
        assert!(signers.contains("dct: targets/releases"), "{signers}");
        assert!(signers.contains("nv2: CN=securesystems.de"), "{signers}");
    }
    // Notary v1 only: any allows (the move has not reached this image), all denies naming the
    // missing Notation signature.
    let (digest, signers) = verdict(&decide(&any, &lab.image("notation-unsign")).await).unwrap();
    assert_eq!(digest, UNSIGNED);
    assert_eq!(signers, "dct: targets/releases");
    let (reason, message) =
        verdict(&decide(&all, &lab.image("notation-unsign")).await).unwrap_err();
    assert_eq!(reason, "no_signature", "{message}");
    assert!(
        message.contains("nv2") && message.contains("notation"),
        "{message}"
    );

    // Notation only (Notary v1 dropped the tag): all denies, any allows.
    lab.write_trust(&connaisseur_cert("default"), &[]);
    let all = lab.build(&policies("all"));
    let any = lab.build(&policies("any"));
    assert!(verdict(&decide(&any, &lab.image("notation-sign")).await).is_ok());
    let (reason, message) = verdict(&decide(&all, &lab.image("notation-sign")).await).unwrap_err();
    assert_eq!(reason, "tag_not_signed", "{message}");
    // Neither: denied under both.
    for v in [&all, &any] {
        assert!(verdict(&decide(v, &lab.image("notation-unsign")).await).is_err());
    }
}

/// The refusal of `notation-sign`, which must come within 5 s however the registry stalls.
async fn refused_within_5s(lab: &Lab, v: &Verifier) -> (String, String) {
    let started = Instant::now();
    let refused = verdict(&decide(v, &lab.image("notation-sign")).await).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    refused
}

/// A registry serving Connaisseur's signed image, with `sig` answering in place of the
/// signature documents.
async fn hostile(sig: impl Fn(&str) -> Option<Reply> + Send + Sync + 'static) -> (Lab, Verifier) {
    let lab = lab(move |path| sig(path).unwrap_or_else(|| connaisseur_registry(path))).await;
    let v = lab.verifier(&connaisseur_cert("default"), &[]);
    (lab, v)
}

#[tokio::test]
async fn an_endless_referrers_list_is_cut_off_and_refused() {
    let (lab, v) = hostile(|p| {
        p.contains("/manifests/sha256-").then(|| Reply::Endless {
            headers: vec![(
                "Content-Type".into(),
                "application/vnd.oci.image.index.v1+json".into(),
            )],
        })
    })
    .await;
    let (reason, message) = refused_within_5s(&lab, &v).await;
    assert!(
        ["too_large", "upstream_error"].contains(&reason.as_str()),
        "{reason}: {message}"
    );
}

/// A tag-schema index naming one signature manifest `manifest` (served by its digest) and the
/// envelope behind it answered by `envelope`.
async fn with_signature(
    manifest: Vec<u8>,
    envelope: impl Fn() -> Reply + Send + Sync + 'static,
) -> (Lab, Verifier, Arc<std::sync::atomic::AtomicUsize>) {
    let digest = sha256_digest(&manifest);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "artifactType": "application/vnd.cncf.notary.signature",
                       "digest": digest, "size": manifest.len()}]
    }))
    .unwrap();
    let blob_requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&blob_requests);
    let (lab, v) = hostile(move |p| {
        if p.contains("/manifests/sha256-") {
            Some(oci(
                "application/vnd.oci.image.index.v1+json",
                index.clone(),
            ))
        } else if p.ends_with(&format!("/manifests/{digest}")) {
            Some(oci(
                "application/vnd.oci.image.manifest.v1+json",
                manifest.clone(),
            ))
        } else if p.contains("/blobs/") {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Some(envelope())
        } else {
            None
        }
    })
    .await;
    (lab, v, blob_requests)
}

fn signature_manifest_with(f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut m: serde_json::Value =
        serde_json::from_slice(&fixture(&format!("manifests/{SIG_MANIFEST}.json"))).unwrap();
    f(&mut m);
    serde_json::to_vec(&m).unwrap()
}

fn redirect(status: u16, location: &str) -> Reply {
    Reply::Full {
        status,
        headers: vec![("Location".into(), location.into())],
        body: Vec::new(),
    }
}

/// Connaisseur's registry whose envelope download redirects as `blob` says, with `/storage/…`
/// answered by `storage`.
async fn redirecting(
    blob: impl Fn() -> Reply + Send + Sync + 'static,
    storage: impl Fn(&str) -> Reply + Send + Sync + 'static,
) -> (Lab, Verifier) {
    let envelope = format!("/v2/{REPO}/blobs/{ENVELOPE}");
    hostile(move |p| {
        if p == envelope {
            Some(blob())
        } else if p.starts_with("/storage/") {
            Some(storage(p))
        } else {
            None
        }
    })
    .await
}

fn stored_envelope(_: &str) -> Reply {
    oci(
        "application/octet-stream",
        fixture(&format!("blobs/{ENVELOPE}.json")),
    )
}

/// Registries send blob downloads to object storage with a redirect (Docker Hub, ECR, GCR,
/// Harbor on S3): one is followed, relative or absolute, and the bytes are still checked.
#[tokio::test]
async fn a_blob_download_redirected_to_storage_is_followed_once() {
    for status in [302, 307] {
        let (lab, v) = redirecting(
            move || redirect(status, "/storage/envelope?X-Amz-Signature=secret"),
            stored_envelope,
        )
        .await;
        let (digest, _) = verdict(&decide(&v, &lab.image("notation-sign")).await)
            .unwrap_or_else(|e| panic!("{status}: {e:?}"));
        assert_eq!(digest, SIGNED);
    }
    // Absolute, to the same server under another path.
    let host = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let h = std::sync::Arc::clone(&host);
    let (lab, v) = redirecting(
        move || redirect(307, &format!("https://{}/storage/abs", h.get().unwrap())),
        stored_envelope,
    )
    .await;
    host.set(lab.host.clone()).unwrap();
    assert!(verdict(&decide(&v, &lab.image("notation-sign")).await).is_ok());

    // What storage serves is checked against the descriptor like any blob.
    let (lab, v) = redirecting(
        || redirect(307, "/storage/other"),
        |_| oci("application/octet-stream", b"{}".to_vec()),
    )
    .await;
    let (reason, message) = verdict(&decide(&v, &lab.image("notation-sign")).await).unwrap_err();
    assert!(
        ["digest_mismatch", "length_mismatch"].contains(&reason.as_str()),
        "{reason}: {message}"
    );
}

#[tokio::test]
async fn a_second_redirect_or_one_to_plain_http_is_refused_without_its_query() {
    let (lab, v) = redirecting(
        || redirect(307, "/storage/hop?X-Amz-Signature=secret"),
        |_| redirect(302, "/storage/again?X-Amz-Signature=secret"),
    )
    .await;
    let (reason, message) = refused_within_5s(&lab, &v).await;
    assert_eq!(reason, "upstream_error", "{message}");
    assert!(message.contains("one redirect is followed"), "{message}");
    assert!(!message.contains("secret"), "{message}");

    let (lab, v) = redirecting(
        || redirect(307, "http://127.0.0.1:9/storage/x?X-Amz-Signature=secret"),
        stored_envelope,
    )
    .await;
    let (reason, message) = refused_within_5s(&lab, &v).await;
    assert_eq!(reason, "upstream_error", "{message}");
    assert!(message.contains("HTTPS only"), "{message}");
    assert!(!message.contains("secret"), "{message}");
}

#[tokio::test]
async fn a_64_mib_envelope_is_refused_without_fetching_it() {
    let manifest = signature_manifest_with(|m| m["layers"][0]["size"] = (64u64 << 20).into());
    let (lab, v, blobs) = with_signature(manifest, || Reply::Endless {
        headers: vec![("Content-Type".into(), "application/octet-stream".into())],
    })
    .await;
    let (reason, message) = verdict(&decide(&v, &lab.image("notation-sign")).await).unwrap_err();
    assert_eq!(reason, "too_large", "{message}");
    assert_eq!(blobs.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_envelope_that_never_ends_is_cut_off_at_its_declared_size() {
    let manifest = signature_manifest_with(|_| {});
    let (lab, v, blobs) = with_signature(manifest, || Reply::Endless {
        headers: vec![("Content-Type".into(), "application/octet-stream".into())],
    })
    .await;
    let (reason, message) = refused_within_5s(&lab, &v).await;
    assert!(blobs.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    assert!(
        [
            "too_large",
            "upstream_error",
            "hash_mismatch",
            "length_mismatch"
        ]
        .contains(&reason.as_str()),
        "{reason}: {message}"
    );
}

#[tokio::test]
async fn a_signature_manifest_for_another_digest_is_refused() {
    let other = sha256_digest(b"another image");
    let manifest = signature_manifest_with(|m| m["subject"]["digest"] = other.clone().into());
    let (lab, v, blobs) = with_signature(manifest, || {
        oci(
            "application/octet-stream",
            fixture(&format!("blobs/{ENVELOPE}.json")),
        )
    })
    .await;
    let (reason, message) = verdict(&decide(&v, &lab.image("notation-sign")).await).unwrap_err();
    assert_eq!(reason, "digest_mismatch", "{message}");
    assert!(message.contains("subject"), "{message}");
    assert_eq!(
        blobs.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the envelope is not fetched"
    );
}

#[tokio::test]
async fn candidates_beyond_the_cap_are_not_fetched() {
    let entries: Vec<serde_json::Value> = (0..1000u32)
        .map(|n| {
            json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "artifactType": "application/vnd.cncf.notary.signature",
                   "digest": sha256_digest(&n.to_be_bytes()),
                   "size": 700})
        })
        .collect();
    let index = serde_json::to_vec(&json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}))
    .unwrap();
    assert!(
        index.len() < 256 * 1024,
        "the index itself is under the document cap"
    );
    let lab = lab(move |p| {
        if p.contains("/manifests/sha256-") {
            oci("application/vnd.oci.image.index.v1+json", index.clone())
        } else {
            connaisseur_registry(p)
        }
    })
    .await;
    let v = lab.verifier(&connaisseur_cert("default"), &[]);
    let (reason, message) = verdict(&decide(&v, &lab.image("notation-sign")).await).unwrap_err();
    assert_eq!(reason, "image_not_found", "{message}");
    let fetched = lab
        ._registry
        .requests()
        .iter()
        .filter(|p| p.contains("/manifests/sha256:") && !p.contains(SIGNED))
        .count();
    assert_eq!(fetched, 32, "one fetch per candidate, at most 32");
}

#[tokio::test]
async fn a_burst_of_identical_reviews_fetches_each_document_once() {
    let lab = lab(connaisseur_registry).await;
    let v = lab.verifier(&connaisseur_cert("default"), &[]);
    let image = lab.image("notation-sign");
    let all = futures_util::future::join_all((0..50).map(|_| decide(&v, &image))).await;
    assert!(all.iter().all(|d| verdict(d).is_ok()));
    let requests = lab._registry.requests();
    let mut per_path: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &requests {
        *per_path.entry(p.as_str()).or_default() += 1;
    }
    assert!(per_path.values().all(|n| *n == 1), "{per_path:#?}");
    // tag, referrers API (404), tag schema index, signature manifest, envelope.
    assert_eq!(requests.len(), 5, "{requests:#?}");
}

/// `signgate verify IMAGE --config FILE --output json`, the binary, against the same registry:
/// each trust root reported with its kind, verdict, signer and digest.
#[tokio::test]
async fn verify_with_config_reports_each_root_with_its_kind() {
    let lab = lab(connaisseur_registry).await;
    lab.write_trust(
        &connaisseur_cert("default"),
        &[("notation-unsign", UNSIGNED)],
    );
    let config = lab.dir.path().join("signgate.yaml");
    std::fs::write(
        &config,
        format!(
            "trustRoots:
  - name: dct
    notary: {{ rootKeyFiles: [root.pem], offlineDir: bundles }}
  - name: nv2
    notation: {{ trustStores: {{ ca: [notation-ca.pem] }}, trustedIdentities: [\"*\"] }}
registries:
  - {{ host: \"{host}\", caFile: registry-ca.pem }}
policies:
  - {{ name: migrate, images: [\"{host}/{REPO}\"], trustRoots: [dct, nv2], require: any }}
",
            host = lab.host
        ),
    )
    .unwrap();
    let run = |image: String| {
        let config = config.clone();
        async move {
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_signgate"))
                .args(["verify", &image, "--config"])
                .arg(&config)
                .args(["--output", "json"])
                .output()
                .await
                .unwrap();
            let json: serde_json::Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
            (out.status.code(), json)
        }
    };
    let (code, json) = run(lab.image("notation-sign")).await;
    assert_eq!(code, Some(0), "{json:#}");
    let roots = json["trust_roots"].as_array().unwrap();
    assert_eq!(roots[0]["kind"], "notary");
    assert_eq!(roots[0]["verdict"], "untrusted");
    assert_eq!(roots[0]["reason"], "tag_not_signed");
    assert_eq!(roots[1]["kind"], "notation");
    assert_eq!(roots[1]["verdict"], "trusted");
    assert_eq!(roots[1]["digest"], SIGNED);
    assert!(
        roots[1]["signer"]
            .as_str()
            .unwrap()
            .contains("CN=securesystems.de")
    );
    assert_eq!(json["digest"], SIGNED);

    let (code, json) = run(lab.image("notation-unsign")).await;
    assert_eq!(code, Some(0), "{json:#}");
    assert_eq!(json["trust_roots"][1]["reason"], "no_signature");
    assert_eq!(json["trust_roots"][0]["verdict"], "trusted");
}

/// A verified signature is reused briefly, never past its chain's expiry.
#[tokio::test]
async fn a_reused_verification_ends_with_the_chain() {
    let lab = lab(connaisseur_registry).await;
    let v = lab.verifier(&connaisseur_cert("default"), &[]);
    let image = lab.image("notation-sign");
    let none = BTreeMap::new();
    let at = |t: OffsetDateTime| v.decide(&image, "ml", &none, t);
    assert!(verdict(&at(OffsetDateTime::now_utc()).await).is_ok());
    let after = time::macros::datetime!(2125-01-01 00:00 UTC);
    let (reason, message) = verdict(&at(after).await).unwrap_err();
    assert_eq!(reason, "certificate_expired", "{message}");
}

/// `permissive` accepts an authentic signature whose timestamp is missing, says so with the
/// signer, and counts it.
#[tokio::test]
async fn permissive_logs_what_it_relaxes_and_counts_it() {
    let lab = lab(connaisseur_registry).await;
    lab.write_trust(&connaisseur_cert("default"), &[]);
    let tsa = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "tests/fixtures/notation/notation-go/verifier/testdata/truststore/x509/tsa/test-timestamp/globalsignRoot.cer",
    );
    let text = |level: &str| {
        format!(
            "trustRoots:
  - name: nv2
    notation:
      trustStores: {{ ca: [notation-ca.pem], tsa: [\"{tsa}\"] }}
      trustedIdentities: [\"*\"]
      level: {level}
registries:
  - {{ host: \"{host}\", caFile: registry-ca.pem }}
policies:
  - {{ name: p, images: [\"{host}/{REPO}\"], trustRoot: nv2 }}
",
            tsa = tsa.display(),
            host = lab.host
        )
    };
    let strict = lab.build(&text("strict"));
    let (reason, message) =
        verdict(&decide(&strict, &lab.image("notation-sign")).await).unwrap_err();
    assert_eq!(reason, "invalid_timestamp", "{message}");
    let permissive = lab.build(&text("permissive"));
    let (_, signers) = verdict(&decide(&permissive, &lab.image("notation-sign")).await).unwrap();
    assert!(
        signers.ends_with("(logged: authenticTimestamp timestamp)"),
        "{signers}"
    );
    let metrics = permissive.metrics().encode();
    assert!(
        metrics.contains(
            "signgate_relaxed_checks_total{trust_root=\"nv2\",kind=\"notation\",step=\"authenticTimestamp\",reason=\"timestamp\"} 1"
        ),
        "{metrics}"
    );
}
