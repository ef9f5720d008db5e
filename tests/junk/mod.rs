//! The worst signature junk someone who can push to a covered repository can build against
//! signgate's caps, served by the hostile registry (`faults::Server`), for the hostile suite
//! (`tests/hostile_signatures.rs`) and its benchmark (`examples/junkbench.rs`):
//!
//! - Notation: 32 signature manifests (the candidate cap) per image, each a JWS carrying a
//!   10-certificate chain (the chain cap) of the attacker's own, signed by his own leaf; chains
//!   one longer than the cap; COSE envelopes of 64 KiB (the envelope cap) of CBOR junk; envelopes
//!   declared larger than the cap;
//! - cosign: a `.sig` manifest of 32 layers (the layer cap), each a well-formed ECDSA signature by
//!   the attacker's key, to be tried with every configured key.
//!
//! Envelope blobs are shared by every image that carries them (as an attacker would reuse them):
//! each image still has its own referrers list, so nothing verified for one is reused for another.
// Shared by several binaries, each using a part.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Signer as _;
use serde_json::json;

use crate::crafted::{YEARS, ca_exts, cert, jws_over, key, leaf_exts};
use crate::faults::{Reply, sha256_digest};
use signgate::notation::{Descriptor, MEDIA_TYPE_COSE, MEDIA_TYPE_JWS};
use signgate::reference::Digest;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// An envelope as a signature manifest names it: media type, bytes, and the size the manifest
/// declares (the real size unless a test lies).
#[derive(Clone)]
pub struct Envelope {
    pub media_type: &'static str,
    pub bytes: Arc<Vec<u8>>,
    pub declared: u64,
}

impl Envelope {
    pub fn new(media_type: &'static str, bytes: Vec<u8>) -> Envelope {
        let declared = bytes.len() as u64;
        Envelope {
            media_type,
            bytes: Arc::new(bytes),
            declared,
        }
    }
}

/// Documents by request path (`/v2/<repo>/manifests/<ref>`, `/v2/<repo>/blobs/<digest>`);
/// anything else, the referrers API included, is 404 (distribution 2.8 has none).
/// Clones share the documents, so images can be added once the server runs (and its address,
/// which cosign payloads name, is known).
#[derive(Default, Clone)]
pub struct Registry {
    docs: Arc<RwLock<HashMap<String, Doc>>>,
}

/// A served document: its media type and body.
type Doc = (String, Arc<Vec<u8>>);

impl Registry {
    pub fn router(&self) -> impl Fn(&str) -> Reply + Send + Sync + 'static {
        let docs = Arc::clone(&self.docs);
        move |path| match docs.read().unwrap().get(path) {
            Some((media_type, body)) => Reply::registry_doc(media_type, body.to_vec()),
            None => Reply::not_found(),
        }
    }

    fn manifest(
        &mut self,
        repo: &str,
        tag: Option<&str>,
        media_type: &str,
        body: Vec<u8>,
    ) -> Descriptor {
        let digest = sha256_digest(&body);
        let size = body.len() as u64;
        let body = Arc::new(body);
        for r in tag.into_iter().chain([digest.as_str()]) {
            self.docs.write().unwrap().insert(
                format!("/v2/{repo}/manifests/{r}"),
                (media_type.to_owned(), Arc::clone(&body)),
            );
        }
        Descriptor {
            media_type: media_type.to_owned(),
            digest: Digest::parse(&digest).unwrap(),
            size,
        }
    }

    fn blob(&mut self, repo: &str, body: Arc<Vec<u8>>) -> String {
        let digest = sha256_digest(&body);
        self.docs.write().unwrap().insert(
            format!("/v2/{repo}/blobs/{digest}"),
            ("application/octet-stream".into(), body),
        );
        digest
    }

    /// An image manifest of its own at `repo:tag`.
    pub fn image(&mut self, repo: &str, tag: &str) -> Descriptor {
        let config = format!("{{\"image\":\"{repo}:{tag}\"}}");
        let body = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": sha256_digest(config.as_bytes()), "size": config.len()},
            "layers": [],
        }))
        .unwrap();
        self.manifest(repo, Some(tag), OCI_MANIFEST, body)
    }

    /// `envelopes` as Notation signatures of `image`, through the referrers tag schema.
    pub fn notation(&mut self, repo: &str, image: &Descriptor, envelopes: &[Envelope]) {
        let mut entries = Vec::new();
        for e in envelopes {
            let layer = self.blob(repo, Arc::clone(&e.bytes));
            let body = serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": "application/vnd.cncf.notary.signature",
                "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                           "digest": sha256_digest(b"{}"), "size": 2},
                "layers": [{"mediaType": e.media_type, "digest": layer, "size": e.declared}],
                "subject": {"mediaType": image.media_type, "digest": image.digest.as_str(),
                            "size": image.size},
            }))
            .unwrap();
            let m = self.manifest(repo, None, OCI_MANIFEST, body);
            entries.push(
                json!({"mediaType": OCI_MANIFEST, "digest": m.digest.as_str(),
                "size": m.size, "artifactType": "application/vnd.cncf.notary.signature"}),
            );
        }
        self.index(repo, image, entries);
    }

    fn index(&mut self, repo: &str, image: &Descriptor, manifests: Vec<serde_json::Value>) {
        let body = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests,
        }))
        .unwrap();
        let tag = image.digest.as_str().replace(':', "-");
        self.manifest(repo, Some(&tag), OCI_INDEX, body);
    }

    /// A cosign `.sig` manifest for `image`: one simple-signing layer per signature, all over
    /// the same (correct) payload, each signature made by `signers` in turn.
    pub fn cosign(
        &mut self,
        repo: &str,
        reference: &str,
        image: &Descriptor,
        signers: &[SigningKey],
    ) {
        let payload = serde_json::to_vec(&json!({
            "critical": {"identity": {"docker-reference": reference},
                         "image": {"docker-manifest-digest": image.digest.as_str()},
                         "type": "cosign container image signature"},
            "optional": null,
        }))
        .unwrap();
        let payload = Arc::new(payload);
        let digest = self.blob(repo, Arc::clone(&payload));
        let layers: Vec<_> = signers
            .iter()
            .map(|k| {
                let sig: p256::ecdsa::DerSignature = k.sign(&payload);
                json!({"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                       "digest": digest, "size": payload.len(),
                       "annotations": {"dev.cosignproject.cosign/signature":
                                       STANDARD.encode(sig.as_bytes())}})
            })
            .collect();
        let config = b"{}";
        let body = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": sha256_digest(config), "size": 2},
            "layers": layers,
        }))
        .unwrap();
        let tag = format!("{}.sig", image.digest.as_str().replace(':', "-"));
        self.manifest(repo, Some(&tag), OCI_MANIFEST, body);
    }
}

/// A chain of `n` P-256 certificates, leaf first, under a root of the attacker's own (seeds from
/// `seed`), and the leaf's key, which signs the envelope so that its signature would verify.
pub fn attacker_chain(seed: u8, n: usize) -> (SigningKey, Vec<Vec<u8>>) {
    assert!(n >= 2);
    let name = |i: usize| format!("CN=attacker {seed}-{i},O=acme,ST=WA,C=US");
    let keys: Vec<SigningKey> = (0..n).map(|i| key(seed.wrapping_add(i as u8))).collect();
    let mut chain = Vec::new();
    for i in 0..n {
        let issuer = (i + 1).min(n - 1);
        let exts = if i == 0 { leaf_exts() } else { ca_exts(None) };
        chain.push(cert(
            &name(i),
            &keys[i],
            (&name(issuer), &keys[issuer]),
            YEARS,
            exts,
        ));
    }
    (keys[0].clone(), chain)
}

/// A JWS over `image` carrying `chain`, signed by `leaf`.
pub fn chain_envelope(image: &Descriptor, leaf: &SigningKey, chain: &[Vec<u8>]) -> Envelope {
    Envelope::new(MEDIA_TYPE_JWS, jws_over(image, leaf, chain, |_| {}))
}

/// `len` bytes of COSE junk: a CBOR array of one-byte integers, as large as stated.
pub fn cbor_junk(len: usize) -> Envelope {
    let mut bytes = vec![0x9a];
    let items = len.saturating_sub(5);
    bytes.extend_from_slice(&u32::try_from(items).unwrap().to_be_bytes());
    bytes.resize(len, 0x01);
    Envelope::new(MEDIA_TYPE_COSE, bytes)
}

/// The kinds of junk image, each at the caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 32 envelopes, each a 10-certificate chain of the attacker's own.
    UntrustedChains,
    /// 32 envelopes, each a chain one certificate longer than the cap.
    LongChains,
    /// 32 COSE envelopes of 64 KiB of CBOR junk.
    Cbor,
    /// 32 envelopes declared at 1 MiB.
    Oversized,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::UntrustedChains,
        Kind::LongChains,
        Kind::Cbor,
        Kind::Oversized,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::UntrustedChains => "untrusted-chains",
            Kind::LongChains => "long-chains",
            Kind::Cbor => "cbor",
            Kind::Oversized => "oversized",
        }
    }

    /// The 32 envelopes of this kind for `image` (chains are made once and reused by the
    /// caller through `cache`).
    pub fn envelopes(
        self,
        image: &Descriptor,
        cache: &mut HashMap<&'static str, Vec<Envelope>>,
    ) -> Vec<Envelope> {
        let made = cache.entry(self.name()).or_insert_with(|| {
            let one = match self {
                Kind::UntrustedChains => {
                    let (leaf, chain) = attacker_chain(100, signgate::notation::MAX_CHAIN);
                    chain_envelope(image, &leaf, &chain)
                }
                Kind::LongChains => {
                    let (leaf, chain) = attacker_chain(150, signgate::notation::MAX_CHAIN + 1);
                    chain_envelope(image, &leaf, &chain)
                }
                Kind::Cbor => cbor_junk(signgate::notation::MAX_ENVELOPE),
                Kind::Oversized => {
                    let mut e = cbor_junk(1024);
                    e.declared = 1024 * 1024;
                    e
                }
            };
            // 32 distinct blobs (a trailing byte of whitespace or junk each), one per candidate.
            (0..signgate::notation::MAX_CANDIDATES)
                .map(|i| {
                    let mut bytes = one.bytes.to_vec();
                    if one.media_type == MEDIA_TYPE_JWS {
                        bytes.extend(std::iter::repeat_n(b' ', i));
                    } else if bytes.len() > 8 {
                        let last = bytes.len() - 1;
                        bytes[last] = i as u8;
                    }
                    let declared = if one.declared == one.bytes.len() as u64 {
                        bytes.len() as u64
                    } else {
                        one.declared
                    };
                    Envelope {
                        media_type: one.media_type,
                        bytes: Arc::new(bytes),
                        declared,
                    }
                })
                .collect()
        });
        made.clone()
    }
}

/// The configuration both the suite and the benchmark verify under: `notation/**` under the
/// crafted root (`ca.pem`, any identity), `cosign/**` under `cosign_keys` keys (seeds 200…) that
/// are not the attacker's; the registry's CA in `registry-ca.pem`.
pub fn config(host: &str, cosign_keys: u8) -> String {
    let mut keys = String::new();
    for i in 0..cosign_keys {
        let der = spki::EncodePublicKey::to_public_key_der(key(200 + i).verifying_key()).unwrap();
        let b64 = STANDARD.encode(der.as_bytes());
        keys.push_str(&format!(
            "        - name: k{i}\n          publicKey: \"-----BEGIN PUBLIC KEY-----\\n{b64}\\n-----END PUBLIC KEY-----\\n\"\n"
        ));
    }
    format!(
        "trustRoots:
  - name: nv2
    notation:
      trustStores:
        ca: [ca.pem]
      trustedIdentities: [\"*\"]
  - name: cs
    cosign:
      transparencyLog: ignore
      keys:
{keys}registries:
  - host: \"{host}\"
    caFile: registry-ca.pem
policies:
  - name: notation
    images: [\"{host}/notation/**\"]
    trustRoot: nv2
  - name: cosign
    images: [\"{host}/cosign/**\"]
    trustRoot: cs
defaultAction: deny
"
    )
}
