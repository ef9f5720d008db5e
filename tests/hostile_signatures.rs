//! Notation and cosign signatures pushed by someone without a trusted key, at the caps
//! (`tests/junk`): served by a hostile registry on loopback, decided by the whole verifier. Each
//! is refused with the reason that names it, within the review's deadline, and a repeat is
//! answered from the negative cache without fetching again. A genuinely signed image in the
//! same registry still verifies (the control: the registry serves what the verifier reads).
//! CPU per junk image and the latency of an unrelated image while junk is reviewed are measured
//! by `examples/junkbench.rs` (BENCHMARKS.md), not here.

mod crafted;
mod faults;
mod junk;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crafted::{ROOT, YEARS, cert, jws_over, key, leaf_exts, root};
use faults::Server;
use junk::{Envelope, Kind, Registry};
use signgate::config::Config;
use signgate::policy::{ImageDecision, Outcome};
use signgate::verifier::{Verifier, VerifierSettings};
use time::OffsetDateTime;

const LEAF: &str = "CN=ml-ci,O=acme,ST=WA,C=US";

struct Lab {
    dir: tempfile::TempDir,
    host: String,
    server: Server,
    reg: Registry,
}

async fn lab() -> Lab {
    let reg = Registry::default();
    let server = Server::tls(reg.router()).await;
    let host = server.url().trim_start_matches("https://").to_owned();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("registry-ca.pem"), faults::ca_pem()).unwrap();
    std::fs::write(dir.path().join("ca.pem"), crafted::pem(&root())).unwrap();
    Lab {
        dir,
        host,
        server,
        reg,
    }
}

impl Lab {
    /// `notation/**` under the crafted root (any identity); `cosign/**` under `keys` keys that
    /// are not the attacker's.
    fn verifier(&self, cosign_keys: u8) -> Verifier {
        let text = junk::config(&self.host, cosign_keys);
        let path = self.dir.path().join("signgate.yaml");
        std::fs::write(&path, text).unwrap();
        let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        Verifier::new(Arc::new(config), VerifierSettings::default()).unwrap()
    }

    fn image(&self, repo: &str, tag: &str) -> String {
        format!("{}/{repo}:{tag}", self.host)
    }

    fn blob_requests(&self) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|p| p.contains("/blobs/"))
            .count()
    }
}

async fn decide(v: &Verifier, image: &str) -> ImageDecision {
    v.decide(image, "ml", &BTreeMap::new(), OffsetDateTime::now_utc())
        .await
}

fn verdict(d: &ImageDecision) -> Result<String, (String, String)> {
    match &d.outcome {
        Outcome::Verified(v) => Ok(v.signers()),
        Outcome::Failed(e) => Err((e.reason().as_str().to_owned(), e.to_string())),
        other => panic!("{}: {other:?}", d.image),
    }
}

/// A Notation signature the crafted root issued, over `image`.
fn genuine(image: &signgate::notation::Descriptor) -> Envelope {
    let leaf = cert(LEAF, &key(3), (ROOT, &key(1)), YEARS, leaf_exts());
    Envelope::new(
        signgate::notation::MEDIA_TYPE_JWS,
        jws_over(image, &key(3), &[leaf, root()], |_| {}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notation_junk_at_the_caps_is_refused_and_remembered() {
    let lab = lab().await;
    let mut reg = lab.reg.clone();
    let good = reg.image("notation/app", "good");
    reg.notation("notation/app", &good, &[genuine(&good)]);
    let mut cache = HashMap::new();
    for kind in Kind::ALL {
        let img = reg.image("notation/app", kind.name());
        let envelopes = kind.envelopes(&img, &mut cache);
        reg.notation("notation/app", &img, &envelopes);
    }
    // One genuine signature behind the 32 junk ones: past the candidate cap, never examined.
    let buried = reg.image("notation/app", "buried");
    let mut envelopes = Kind::UntrustedChains.envelopes(&buried, &mut cache);
    envelopes.push(genuine(&buried));
    reg.notation("notation/app", &buried, &envelopes);

    let v = lab.verifier(1);
    assert!(
        verdict(&decide(&v, &lab.image("notation/app", "good")).await)
            .unwrap()
            .contains("ml-ci")
    );
    for (kind, reason, says) in [
        (
            Kind::UntrustedChains,
            "untrusted_signer",
            "is not in the ca trust store (32 found)",
        ),
        (
            Kind::LongChains,
            "invalid_certificate",
            "11 certificates, more than the 10",
        ),
        (Kind::Cbor, "malformed_metadata", "CBOR"),
        (
            Kind::Oversized,
            "too_large",
            "more than the 64 KiB an envelope may have",
        ),
    ] {
        let image = lab.image("notation/app", kind.name());
        let before = lab.blob_requests();
        let (got, message) = verdict(&decide(&v, &image).await).unwrap_err();
        assert_eq!(got, reason, "{kind:?}: {message}");
        assert!(message.contains(says), "{kind:?}: {message}");
        let fetched = lab.blob_requests() - before;
        if kind == Kind::Oversized {
            assert_eq!(
                fetched, 0,
                "an envelope declared past the cap is not fetched"
            );
        } else {
            assert!(fetched <= 32, "{kind:?}: {fetched} blob requests");
        }
        // The same junk again: the refusal is remembered, nothing is fetched or verified.
        let before = lab.blob_requests();
        let (again, message_again) = verdict(&decide(&v, &image).await).unwrap_err();
        assert_eq!((again, message_again), (got, message), "{kind:?}");
        assert_eq!(lab.blob_requests(), before, "{kind:?}: fetched again");
    }
    let (reason, message) =
        verdict(&decide(&v, &lab.image("notation/app", "buried")).await).unwrap_err();
    assert_eq!(reason, "untrusted_signer", "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosign_junk_is_bounded_by_the_signature_check_budget() {
    let lab = lab().await;
    let mut reg = lab.reg.clone();
    let repo = format!("{}/cosign/app", lab.host);
    let attacker: Vec<_> = (0..cosign_layers()).map(|i| key(50 + i as u8)).collect();
    let img = reg.image("cosign/app", "junk");
    reg.cosign("cosign/app", &repo, &img, &attacker);
    let good = reg.image("cosign/app", "good");
    reg.cosign("cosign/app", &repo, &good, &[key(200)]);

    // 32 layers × 8 keys = 256 checks, the budget: every one tried, none verifies.
    let v = lab.verifier(8);
    let (reason, message) =
        verdict(&decide(&v, &lab.image("cosign/app", "junk")).await).unwrap_err();
    assert_eq!(reason, "untrusted_signer", "{message}");
    assert!(message.contains("no signature verifies"), "{message}");
    // The control: a signature by the first configured key verifies.
    assert_eq!(
        verdict(&decide(&v, &lab.image("cosign/app", "good")).await).unwrap(),
        "cs: cosign signer k0"
    );
    // A ninth key: 288 checks, past the budget; the container is not examined, and that is said.
    let v = lab.verifier(9);
    let (reason, message) =
        verdict(&decide(&v, &lab.image("cosign/app", "junk")).await).unwrap_err();
    assert_eq!(reason, "malformed_metadata", "{message}");
    assert!(message.contains("not examined"), "{message}");
}

fn cosign_layers() -> usize {
    signgate::cosign::MAX_LAYERS
}

#[test]
fn the_junk_is_at_the_caps() {
    let image = signgate::notation::Descriptor {
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        digest: signgate::reference::Digest::sha256_of(b"x"),
        size: 1,
    };
    let mut cache = HashMap::new();
    let cbor = Kind::Cbor.envelopes(&image, &mut cache);
    assert_eq!(cbor.len(), signgate::notation::MAX_CANDIDATES);
    assert!(
        cbor.iter()
            .all(|e| e.bytes.len() == signgate::notation::MAX_ENVELOPE)
    );
    let chains = Kind::UntrustedChains.envelopes(&image, &mut cache);
    assert!(
        chains
            .iter()
            .all(|e| e.bytes.len() < signgate::notation::MAX_ENVELOPE)
    );
}
