//! The real signing tools against a running [`Lab`]: `notation` (JWS, COSE, RFC 3161
//! timestamped), `cosign` 2 (legacy `.sig`) and 3 (Sigstore bundles), sigstore-js (a second bundle
//! producer), and crafted signatures (tests/harness/sign/craft.py) pushed in the layout the real
//! tools use, for the cases no tool produces.
//!
//! The tools come from `scripts/install-sigtools` (run by scripts/test through
//! scripts/install-deps): `$SIGNGATE_TOOLS` (default `~/.cache/signgate-tools`) holds them and
//! `tools.env` says where each one is. Without it every helper here panics and says to run it:
//! nothing is skipped.
//!
//! Everything runs on loopback with verified TLS against the lab CA:
//! - notation has no CA flag: it gets `SSL_CERT_FILE=<lab CA>` (Go's crypto/x509 then trusts
//!   exactly that file on Linux), never `--insecure-registry`;
//! - cosign gets `--registry-cacert <lab CA>`;
//! - sigstore-js gets the CA through its `--ca` (see sigstore-js-sign.js: @sigstore/oci would
//!   otherwise speak plain HTTP to any `127.0.0.1` registry);
//! - cosign 3 gets an empty signing config and an empty trusted root (`--signing-config`,
//!   `--trusted-root`), so it neither uploads to Rekor nor fetches the public-good TUF root
//!   (without `--trusted-root` it tries to reach the TUF CDN before signing).
//!
//! Each tool runs with its own HOME, XDG dirs, NOTATION_CONFIG and DOCKER_CONFIG under
//! `<lab dir>/sigtools/`, proxy variables removed, stdin closed (a prompt fails, it does not hang).
//! In token-auth labs the tools get the lab's credentials (notation `-u/-p`, cosign
//! `--registry-username/--registry-password`, sigstore-js `--user/--password`).

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::accept::Acceptor;
use super::image::sha256_digest;
use super::{
    CLI_TIMEOUT, Lab, MANIFEST_V2, PROXY_VARS, Pushed, issue_cert, make_ca, run_checked,
    run_with_timeout,
};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// sha256 of `{}`: the empty config every referrer manifest here points to.
pub const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
pub const NOTATION_SIGNATURE: &str = "application/vnd.cncf.notary.signature";
pub const JOSE: &str = "application/jose+json";
pub const COSE: &str = "application/cose";
pub const THUMBPRINT_ANNOTATION: &str = "io.cncf.notary.x509chain.thumbprint#S256";
pub const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";
pub const SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const COSIGN_SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
pub const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Passphrase of every cosign key made here (given to cosign as `COSIGN_PASSWORD`).
pub const COSIGN_PASSWORD: &str = "lab-cosign-pass";
/// The Accept list for referrer indexes and signature manifests (distribution 2.8 serves an OCI
/// index only when the Accept list names it).
pub const OCI_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

// -------------------------------------------------------------------------------------------
// the installed tools

/// Paths and versions recorded by scripts/install-sigtools in `$SIGNGATE_TOOLS/tools.env`.
#[derive(Debug, Clone)]
pub struct SigTools {
    pub dir: PathBuf,
    pub notation: PathBuf,
    /// Debian package version, e.g. `1.3.2-2`
    pub notation_version: String,
    pub cosign2: PathBuf,
    pub cosign2_version: String,
    pub cosign3: PathBuf,
    pub cosign3_version: String,
    pub oras: PathBuf,
    pub oras_version: String,
    /// Python of the venv with cryptography, jwcrypto, pycose, cbor2
    pub python: PathBuf,
    pub node: PathBuf,
    /// `NODE_PATH` holding @sigstore/sign and @sigstore/oci
    pub sigstore_js_node_path: PathBuf,
    pub sigstore_js_versions: String,
}

impl SigTools {
    /// The installed tools; panics (with what to run) when scripts/install-sigtools has not run.
    pub fn get() -> &'static SigTools {
        static TOOLS: OnceLock<SigTools> = OnceLock::new();
        TOOLS.get_or_init(SigTools::load)
    }

    fn load() -> SigTools {
        let dir = std::env::var_os("SIGNGATE_TOOLS")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/signgate-tools"))
            })
            .expect("neither SIGNGATE_TOOLS nor HOME is set");
        let env_file = dir.join("tools.env");
        let text = std::fs::read_to_string(&env_file).unwrap_or_else(|e| {
            panic!(
                "{}: {e}. The signing tools (notation, cosign 2 and 3, oras, the Python and npm \
                 signers) are not installed: run scripts/install-sigtools (scripts/test does, \
                 through scripts/install-deps)",
                env_file.display()
            )
        });
        let vars: BTreeMap<&str, &str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .collect();
        let var = |k: &str| -> String {
            vars.get(k).map(|v| (*v).to_owned()).unwrap_or_else(|| {
                panic!(
                    "{} has no {k}: run scripts/install-sigtools again",
                    env_file.display()
                )
            })
        };
        let path = |k: &str| -> PathBuf {
            let p = PathBuf::from(var(k));
            assert!(
                p.exists(),
                "{k}={} (from {}) does not exist: run scripts/install-sigtools again",
                p.display(),
                env_file.display()
            );
            p
        };
        SigTools {
            notation: path("NOTATION"),
            notation_version: var("NOTATION_VERSION"),
            cosign2: path("COSIGN2"),
            cosign2_version: var("COSIGN2_VERSION"),
            cosign3: path("COSIGN3"),
            cosign3_version: var("COSIGN3_VERSION"),
            oras: path("ORAS"),
            oras_version: var("ORAS_VERSION"),
            python: path("SIGN_PYTHON"),
            node: path("NODE"),
            sigstore_js_node_path: path("SIGSTORE_JS_NODE_PATH"),
            sigstore_js_versions: var("SIGSTORE_JS_VERSIONS"),
            dir,
        }
    }

    /// One line naming every tool and version (for test logs and fixture READMEs).
    pub fn describe(&self) -> String {
        format!(
            "notation {} (Debian forky), cosign {} (Debian trixie), cosign {} (Debian forky), \
             oras {} (Debian forky), {}",
            self.notation_version,
            self.cosign2_version,
            self.cosign3_version,
            self.oras_version,
            self.sigstore_js_versions
        )
    }
}

/// What a tool run did (any exit status); `Display` shows the command and both streams.
#[derive(Debug)]
pub struct Run {
    pub cmd: String,
    pub output: Output,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.output.status.success()
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    /// Panics with the whole run unless it exited 0; returns stdout.
    pub fn expect_ok(&self) -> String {
        assert!(self.ok(), "{self}");
        self.stdout()
    }
    /// Panics with the whole run if it exited 0; returns stdout + stderr.
    pub fn expect_refused(&self) -> String {
        assert!(!self.ok(), "expected a refusal, but it passed: {self}");
        format!("{}{}", self.stdout(), self.stderr())
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} -> {}\nstdout:\n{}\nstderr:\n{}",
            self.cmd,
            self.output.status,
            self.stdout(),
            self.stderr()
        )
    }
}

/// `<lab>/sigtools/<sub>` (made on first use).
fn sig_dir(lab: &Lab, sub: &str) -> PathBuf {
    let d = lab.dir.join("sigtools").join(sub);
    std::fs::create_dir_all(&d).expect("sigtools dir");
    d
}

fn seq() -> usize {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst) + 1
}

/// A command with the lab's confined environment: own HOME/XDG/DOCKER_CONFIG, no proxy.
fn tool(lab: &Lab, program: &Path) -> Command {
    let home = sig_dir(lab, "home");
    let mut cmd = Command::new(program);
    for v in PROXY_VARS {
        cmd.env_remove(v);
    }
    for v in [
        "NOTATION_CONFIG",
        "NOTATION_LIBEXEC",
        "NOTATION_USERNAME",
        "NOTATION_PASSWORD",
        "COSIGN_REPOSITORY",
        "COSIGN_EXPERIMENTAL",
        "TUF_ROOT",
        "SSL_CERT_DIR",
    ] {
        cmd.env_remove(v);
    }
    cmd.env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("DOCKER_CONFIG", home.join(".docker"))
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .current_dir(&lab.dir);
    cmd
}

fn run(mut cmd: Command) -> Run {
    let desc = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let output = run_with_timeout(&mut cmd, None, CLI_TIMEOUT);
    Run { cmd: desc, output }
}

// -------------------------------------------------------------------------------------------
// references and descriptors

/// An OCI descriptor (what an index entry, `subject` or `targetArtifact` names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desc {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Desc {
    /// The descriptor of an image `Lab::push_image` pushed (a Docker schema2 manifest).
    pub fn of(p: &Pushed) -> Desc {
        Desc {
            media_type: MANIFEST_V2.to_owned(),
            digest: p.digest.clone(),
            size: p.size,
        }
    }
    fn json(&self) -> serde_json::Value {
        serde_json::json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// `127.0.0.1:PORT/<repo>@sha256:…`: the reference every signing helper takes.
pub fn image_ref(lab: &Lab, repo: &str, p: &Pushed) -> String {
    format!("{}/{repo}@{}", lab.registry_host(), p.digest)
}

/// (`127.0.0.1:PORT/<repo>`, `<repo>`, `sha256:…`) of a digest reference into the lab registry.
fn split_ref(lab: &Lab, image: &str) -> (String, String, String) {
    let (name, digest) = image
        .split_once('@')
        .unwrap_or_else(|| panic!("{image}: a digest reference (…@sha256:…) is required"));
    let repo = name
        .strip_prefix(&format!("{}/", lab.registry_host()))
        .unwrap_or_else(|| panic!("{image} is not in the lab registry {}", lab.registry_host()));
    (name.to_owned(), repo.to_owned(), digest.to_owned())
}

/// The referrers tag schema's tag for a digest: `<alg>-<hex>`, algorithm cut to 32 characters and
/// the encoded part to 64 (distribution-spec "Referrers Tag Schema").
pub fn tag_schema_tag(digest: &str) -> String {
    let (alg, hex) = digest.split_once(':').expect("algorithm:hex digest");
    let alg: String = alg.chars().take(32).collect();
    let hex: String = hex.chars().take(64).collect();
    format!("{alg}-{hex}")
}

fn creds_args(lab: &Lab, user_flag: &str, password_flag: &str) -> Vec<String> {
    match &lab.net.creds {
        Some((u, p)) => vec![
            user_flag.to_owned(),
            u.clone(),
            password_flag.to_owned(),
            p.clone(),
        ],
        None => Vec::new(),
    }
}

// -------------------------------------------------------------------------------------------
// registry reads and writes (the layouts the real tools use)

/// One entry of a referrers index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub annotations: BTreeMap<String, String>,
}

/// The image index stored under the referrers tag schema's tag (`sha256-<hex>`).
#[derive(Debug, Clone)]
pub struct ReferrersIndex {
    /// exactly the bytes the registry serves
    pub bytes: Vec<u8>,
    pub json: serde_json::Value,
    pub entries: Vec<IndexEntry>,
}

impl ReferrersIndex {
    pub fn entry(&self, digest: &str) -> Option<&IndexEntry> {
        self.entries.iter().find(|e| e.digest == digest)
    }
    pub fn with_artifact_type(&self, t: &str) -> Vec<&IndexEntry> {
        self.entries
            .iter()
            .filter(|e| e.artifact_type.as_deref() == Some(t))
            .collect()
    }
}

/// What the registry stores under `<repo>:sha256-<hex>` (None: no such tag). Also checks that the
/// registry has no referrers API (distribution 2.8: `GET /v2/<repo>/referrers/<digest>` is 404),
/// which is why every tool here falls back to the tag schema.
pub fn referrers_index(lab: &Lab, repo: &str, digest: &str) -> Option<ReferrersIndex> {
    let (status, bytes, ct) = get_manifest(lab, repo, &tag_schema_tag(digest));
    if status == 404 {
        return None;
    }
    assert_eq!(
        status,
        200,
        "GET {repo}:{}: {}",
        tag_schema_tag(digest),
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(
        ct.as_deref(),
        Some(OCI_INDEX),
        "tag-schema index media type"
    );
    let json: serde_json::Value = serde_json::from_slice(&bytes).expect("index JSON");
    let entries = json["manifests"]
        .as_array()
        .expect("index.manifests")
        .iter()
        .map(|m| IndexEntry {
            media_type: m["mediaType"].as_str().unwrap_or_default().to_owned(),
            digest: m["digest"].as_str().unwrap_or_default().to_owned(),
            size: m["size"].as_u64().unwrap_or_default(),
            artifact_type: m["artifactType"].as_str().map(str::to_owned),
            annotations: m["annotations"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    Some(ReferrersIndex {
        bytes,
        json,
        entries,
    })
}

/// 404 from the registry's referrers route (distribution 2.8 has none).
pub fn referrers_api_status(lab: &Lab, repo: &str, digest: &str) -> u16 {
    lab.net
        .request(
            "GET",
            &format!("{}/v2/{repo}/referrers/{digest}", lab.registry_url()),
            &[("Accept", OCI_INDEX)],
            None,
        )
        .status
}

/// GET a manifest (by tag or digest) with the OCI + Docker Accept list:
/// (status, bytes, Content-Type).
pub fn get_manifest(lab: &Lab, repo: &str, reference: &str) -> (u16, Vec<u8>, Option<String>) {
    let r = lab.net.request(
        "GET",
        &format!("{}/v2/{repo}/manifests/{reference}", lab.registry_url()),
        &[("Accept", OCI_ACCEPT)],
        None,
    );
    let ct = r.header("content-type").map(str::to_owned);
    (r.status, r.body, ct)
}

/// The manifest bytes (panics unless 200; checks the digest when `reference` is one).
pub fn fetch_manifest(lab: &Lab, repo: &str, reference: &str) -> Vec<u8> {
    let (status, bytes, _) = get_manifest(lab, repo, reference);
    assert_eq!(
        status,
        200,
        "GET {repo} manifest {reference}: {}",
        String::from_utf8_lossy(&bytes)
    );
    if reference.starts_with("sha256:") {
        assert_eq!(sha256_digest(&bytes), reference, "manifest digest");
    }
    bytes
}

/// A blob's bytes (digest checked).
pub fn fetch_blob(lab: &Lab, repo: &str, digest: &str) -> Vec<u8> {
    let r = lab.net.request(
        "GET",
        &format!("{}/v2/{repo}/blobs/{digest}", lab.registry_url()),
        &[],
        None,
    );
    assert_eq!(r.status, 200, "GET blob {repo}@{digest}: {}", r.text());
    assert_eq!(sha256_digest(&r.body), digest, "blob digest");
    r.body
}

/// Uploads a blob (monolithic POST + PUT) unless the registry has it; returns its digest.
pub fn push_blob(lab: &Lab, repo: &str, bytes: &[u8]) -> String {
    let digest = sha256_digest(bytes);
    let base = lab.registry_url();
    let head = lab.net.request(
        "HEAD",
        &format!("{base}/v2/{repo}/blobs/{digest}"),
        &[],
        None,
    );
    if head.status == 200 {
        return digest;
    }
    let r = lab.net.request(
        "POST",
        &format!("{base}/v2/{repo}/blobs/uploads/"),
        &[],
        Some(b""),
    );
    assert_eq!(r.status, 202, "POST upload: {}", r.text());
    let loc = r.header("location").expect("upload Location").to_owned();
    let mut put = url::Url::parse(&base)
        .and_then(|b| b.join(&loc))
        .expect("upload URL");
    put.query_pairs_mut().append_pair("digest", &digest);
    let r = lab.net.request(
        "PUT",
        put.as_str(),
        &[("Content-Type", "application/octet-stream")],
        Some(bytes),
    );
    assert_eq!(r.status, 201, "PUT blob {digest}: {}", r.text());
    digest
}

/// PUT a manifest under `reference` (a tag, or its digest); returns its digest.
pub fn put_manifest(
    lab: &Lab,
    repo: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
) -> String {
    let r = lab.net.request(
        "PUT",
        &format!("{}/v2/{repo}/manifests/{reference}", lab.registry_url()),
        &[("Content-Type", media_type)],
        Some(bytes),
    );
    assert_eq!(
        r.status,
        201,
        "PUT manifest {repo}:{reference}: {}",
        r.text()
    );
    let digest = sha256_digest(bytes);
    assert_eq!(
        r.header("docker-content-digest"),
        Some(digest.as_str()),
        "stored byte for byte"
    );
    digest
}

/// Appends `entry` to the tag-schema index of `attach_to` (creating it), as notation, cosign 3 and
/// @sigstore/oci do on a registry without the referrers API: GET the index, add the entry if its
/// digest is absent, PUT it back. The listed manifest must already exist (the registry checks).
pub fn append_to_referrers_index(lab: &Lab, repo: &str, attach_to: &str, entry: serde_json::Value) {
    let tag = tag_schema_tag(attach_to);
    let mut index = match referrers_index(lab, repo, attach_to) {
        Some(i) => i.json,
        None => serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}),
    };
    let list = index["manifests"].as_array_mut().expect("manifests");
    if !list.iter().any(|m| m["digest"] == entry["digest"]) {
        list.push(entry);
    }
    let bytes = serde_json::to_vec(&index).expect("index JSON");
    put_manifest(lab, repo, &tag, OCI_INDEX, &bytes);
}

fn created_now() -> String {
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("whole seconds");
    now.format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339")
}

/// How a Notation signature manifest is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestStyle {
    /// notation ≤ 1.1, and notation 1.3.2 on a registry without the referrers API: no
    /// `artifactType`, `config.mediaType` = the signature type
    Legacy,
    /// `artifactType` = the signature type, empty config
    Artifact,
}

/// Pushes a Notation envelope the way notation does on this registry: the envelope blob and the
/// `{}` config, the signature manifest by digest, then its entry (with `artifactType`) appended to
/// `attach_to`'s tag-schema index. `subject` is what the manifest says it signs (normally the
/// image at `attach_to`). Returns the signature manifest's descriptor.
#[allow(clippy::too_many_arguments)] // the test harness's one call shape
pub fn push_notation_signature(
    lab: &Lab,
    repo: &str,
    attach_to: &str,
    subject: &Desc,
    envelope: &[u8],
    envelope_media_type: &str,
    thumbprints: &[String],
    style: ManifestStyle,
) -> Desc {
    let layer = push_blob(lab, repo, envelope);
    push_blob(lab, repo, b"{}");
    let annotations = serde_json::json!({
        THUMBPRINT_ANNOTATION: serde_json::to_string(thumbprints).expect("thumbprints"),
        CREATED_ANNOTATION: created_now(),
    });
    let config_mt = match style {
        ManifestStyle::Legacy => NOTATION_SIGNATURE,
        ManifestStyle::Artifact => OCI_EMPTY,
    };
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_mt, "digest": EMPTY_DIGEST, "size": 2},
        "layers": [{"mediaType": envelope_media_type, "digest": layer, "size": envelope.len()}],
        "subject": subject.json(),
        "annotations": annotations,
    });
    if style == ManifestStyle::Artifact {
        m["artifactType"] = NOTATION_SIGNATURE.into();
    }
    put_referrer(
        lab,
        repo,
        attach_to,
        &m,
        serde_json::json!({"annotations": annotations, "artifactType": NOTATION_SIGNATURE}),
    )
}

/// Pushes a Sigstore bundle the way cosign 3.1.1 does here: a referrer manifest (artifactType =
/// the bundle type, the `{}` config carrying a stray `artifactType`, one bundle layer, `subject`),
/// and an index entry whose `artifactType` is `application/vnd.oci.empty.v1+json` (cosign's
/// quirk, kyverno#16664). Returns the manifest descriptor.
pub fn push_bundle_referrer(
    lab: &Lab,
    repo: &str,
    attach_to: &str,
    subject: &Desc,
    bundle: &[u8],
) -> Desc {
    let layer = push_blob(lab, repo, bundle);
    push_blob(lab, repo, b"{}");
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_EMPTY, "size": 2, "digest": EMPTY_DIGEST, "artifactType": BUNDLE_V03},
        "layers": [{"mediaType": BUNDLE_V03, "size": bundle.len(), "digest": layer}],
        "annotations": {
            "dev.sigstore.bundle.content": "dsse-envelope",
            "dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1",
            CREATED_ANNOTATION: created_now(),
        },
        "subject": subject.json(),
        "artifactType": BUNDLE_V03,
    });
    put_referrer(
        lab,
        repo,
        attach_to,
        &m,
        serde_json::json!({"artifactType": OCI_EMPTY}),
    )
}

/// Puts the referrer manifest `m` (an OCI image manifest) by digest and lists it in
/// `attach_to`'s tag-schema referrers index: its descriptor plus the fields of `entry_extra`.
/// Returns the manifest descriptor.
fn put_referrer(
    lab: &Lab,
    repo: &str,
    attach_to: &str,
    m: &serde_json::Value,
    entry_extra: serde_json::Value,
) -> Desc {
    let bytes = serde_json::to_vec(m).expect("manifest JSON");
    let digest = put_manifest(lab, repo, &sha256_digest(&bytes), OCI_MANIFEST, &bytes);
    let mut entry = serde_json::json!({
        "mediaType": OCI_MANIFEST, "digest": digest, "size": bytes.len(),
    });
    let serde_json::Value::Object(extra) = entry_extra else {
        panic!("index entry fields must be a JSON object: {entry_extra}");
    };
    entry.as_object_mut().expect("entry object").extend(extra);
    append_to_referrers_index(lab, repo, attach_to, entry);
    Desc {
        media_type: OCI_MANIFEST.to_owned(),
        digest,
        size: bytes.len() as u64,
    }
}

/// Appends one simple-signing layer to `attach_to`'s legacy cosign manifest (tag
/// `sha256-<hex>.sig`, created if absent) exactly as cosign 2 lays it out: the payload blob as a
/// layer with the `dev.cosignproject.cosign/signature` annotation, its digest added to the config's
/// `rootfs.diff_ids`. Returns the new `.sig` manifest digest.
pub fn append_cosign_sig_layer(
    lab: &Lab,
    repo: &str,
    attach_to: &str,
    payload: &[u8],
    signature_b64: &str,
) -> String {
    append_cosign_sig_layer_annotated(
        lab,
        repo,
        attach_to,
        payload,
        serde_json::json!({COSIGN_SIGNATURE_ANNOTATION: signature_b64}),
    )
}

/// [`append_cosign_sig_layer`] with the layer's annotations given whole (a keyless or logged
/// signature also carries `dev.sigstore.cosign/certificate` and `dev.sigstore.cosign/bundle`).
pub fn append_cosign_sig_layer_annotated(
    lab: &Lab,
    repo: &str,
    attach_to: &str,
    payload: &[u8],
    annotations: serde_json::Value,
) -> String {
    let tag = format!("{}.sig", tag_schema_tag(attach_to));
    let payload_digest = push_blob(lab, repo, payload);
    let (status, bytes, _) = get_manifest(lab, repo, &tag);
    let (mut manifest, mut config) = if status == 200 {
        let m: serde_json::Value = serde_json::from_slice(&bytes).expect(".sig manifest");
        let c = fetch_blob(
            lab,
            repo,
            m["config"]["digest"].as_str().expect("config digest"),
        );
        (m, serde_json::from_slice(&c).expect(".sig config"))
    } else {
        (
            serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}),
            serde_json::json!({
                "architecture": "", "created": "0001-01-01T00:00:00Z",
                "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
                "rootfs": {"type": "layers", "diff_ids": []}, "config": {},
            }),
        )
    };
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .expect("diff_ids")
        .push(payload_digest.clone().into());
    let config_bytes = serde_json::to_vec(&config).expect("config JSON");
    let config_digest = push_blob(lab, repo, &config_bytes);
    manifest["config"] = serde_json::json!({
        "mediaType": OCI_CONFIG, "size": config_bytes.len(), "digest": config_digest,
    });
    manifest["layers"]
        .as_array_mut()
        .expect("layers")
        .push(serde_json::json!({
            "mediaType": SIMPLESIGNING, "size": payload.len(), "digest": payload_digest,
            "annotations": annotations,
        }));
    let bytes = serde_json::to_vec(&manifest).expect("manifest JSON");
    put_manifest(lab, repo, &tag, OCI_MANIFEST, &bytes)
}

/// The entries of `attach_to`'s index that are not in `before`.
fn new_entries(lab: &Lab, repo: &str, attach_to: &str, before: &[String]) -> Vec<IndexEntry> {
    referrers_index(lab, repo, attach_to)
        .map(|i| i.entries)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| !before.contains(&e.digest))
        .collect()
}

fn index_digests(lab: &Lab, repo: &str, attach_to: &str) -> Vec<String> {
    referrers_index(lab, repo, attach_to)
        .map(|i| i.entries.into_iter().map(|e| e.digest).collect())
        .unwrap_or_default()
}

fn one_new_entry(
    lab: &Lab,
    repo: &str,
    attach_to: &str,
    before: &[String],
    what: &str,
) -> IndexEntry {
    let mut new = new_entries(lab, repo, attach_to, before);
    assert_eq!(
        new.len(),
        1,
        "{what} should have added exactly one entry to {repo}:{}: {new:?}",
        tag_schema_tag(attach_to)
    );
    new.remove(0)
}

// -------------------------------------------------------------------------------------------
// notation

/// A signing key notation knows (an entry of the signer config's `signingkeys.json`).
#[derive(Debug, Clone)]
pub struct NotationKey {
    pub name: String,
    pub key: PathBuf,
    /// the chain notation puts into the envelope: leaf first (PEM)
    pub cert: PathBuf,
    /// the certificate a verifier's `ca` trust store holds (the self-signed leaf, or the root)
    pub trust_store_pem: PathBuf,
    /// the leaf subject as a trusted identity: `x509.subject: C=US, ST=WA, …`
    pub identity: String,
}

impl NotationKey {
    /// A notation trust root `name` of signgate's configuration (an entry of `trustRoots:`):
    /// this key's trust store as `ca`, its identity trusted.
    pub fn trust_root_yaml(&self, name: &str) -> Vec<String> {
        vec![
            format!("  - name: {name}"),
            "    notation:".to_owned(),
            "      trustStores:".to_owned(),
            format!("        ca: [{}]", self.trust_store_pem.display()),
            format!("      trustedIdentities: [\"{}\"]", self.identity),
        ]
    }
}

/// `NOTATION_CONFIG` of the lab's signer (keys, signingkeys.json, its own trust store); its
/// parent is the signer's `XDG_CONFIG_HOME` (notation reads `config.json` from there).
fn notation_signer_dir(lab: &Lab) -> PathBuf {
    sig_dir(lab, "notation-signer/notation")
}

fn notation(lab: &Lab, config: &Path) -> Command {
    let t = SigTools::get();
    let mut cmd = tool(lab, &t.notation);
    // notation has no CA flag: Go reads SSL_CERT_FILE as the whole root set (verified TLS against
    // exactly the lab CA; never --insecure-registry)
    cmd.env("SSL_CERT_FILE", lab.ca_pem_path())
        .env("NOTATION_CONFIG", config)
        .env("XDG_CONFIG_HOME", config.parent().expect("config parent"));
    cmd
}

/// `x509.subject: C=US, ST=WA, …` of a PEM certificate's subject (openssl's oneline order).
pub fn x509_identity(cert: &Path) -> String {
    let out = run_checked(
        Command::new("openssl")
            .args([
                "x509",
                "-noout",
                "-subject",
                "-nameopt",
                "sep_comma_plus_space",
                "-in",
            ])
            .arg(cert),
    );
    let s = String::from_utf8_lossy(&out);
    let s = s.trim().trim_start_matches("subject=").trim();
    format!("x509.subject: {s}")
}

/// `notation cert generate-test NAME` in the lab's signer config: a self-signed RSA-2048 leaf
/// (`C=US, ST=WA, L=Seattle, O=Notary, CN=NAME`, valid 24 h), its key, and the trust store
/// `ca/NAME` notation made for it.
pub fn notation_generate_test_cert(lab: &Lab, name: &str) -> NotationKey {
    let cfg = notation_signer_dir(lab);
    let mut cmd = notation(lab, &cfg);
    cmd.args(["cert", "generate-test", name]);
    run(cmd).expect_ok();
    let key = cfg.join(format!("localkeys/{name}.key"));
    let cert = cfg.join(format!("localkeys/{name}.crt"));
    let store = cfg.join(format!("truststore/x509/ca/{name}/{name}.crt"));
    for p in [&key, &cert, &store] {
        assert!(
            p.is_file(),
            "notation cert generate-test made no {}",
            p.display()
        );
    }
    NotationKey {
        name: name.to_owned(),
        identity: x509_identity(&cert),
        key,
        cert,
        trust_store_pem: store,
    }
}

/// Adds an existing key and certificate chain (PEM, leaf first) to the signer's key list
/// (`signingkeys.json`, as `notation key` would for a local key), e.g. a CA-issued chain made by
/// [`crafted_signer`].
pub fn notation_add_key(lab: &Lab, signer: &CraftedSigner) -> NotationKey {
    let cfg = notation_signer_dir(lab);
    let keys_file = cfg.join("signingkeys.json");
    let mut keys: serde_json::Value = std::fs::read(&keys_file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| serde_json::json!({"keys": []}));
    let list = keys["keys"].as_array_mut().expect("keys");
    list.retain(|k| k["name"] != signer.name.as_str());
    list.push(serde_json::json!({
        "name": signer.name, "keyPath": signer.key, "certPath": signer.chain_pem,
    }));
    std::fs::write(&keys_file, serde_json::to_vec_pretty(&keys).expect("JSON")).expect("write");
    NotationKey {
        name: signer.name.clone(),
        key: signer.key.clone(),
        cert: signer.chain_pem.clone(),
        trust_store_pem: signer.trust_pem.clone(),
        identity: signer.identity.clone(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeFormat {
    Jws,
    Cose,
}

impl EnvelopeFormat {
    pub fn media_type(self) -> &'static str {
        match self {
            EnvelopeFormat::Jws => JOSE,
            EnvelopeFormat::Cose => COSE,
        }
    }
    fn flag(self) -> &'static str {
        match self {
            EnvelopeFormat::Jws => "jws",
            EnvelopeFormat::Cose => "cose",
        }
    }
}

pub struct SignOpts<'a> {
    pub format: EnvelopeFormat,
    /// countersign with this TSA (`--timestamp-url`, `--timestamp-root-cert`)
    pub timestamp: Option<&'a Tsa>,
    pub key: &'a NotationKey,
}

/// `notation sign --key NAME [--signature-format cose] [--timestamp-url …] IMAGE`: returns the
/// index entry of the signature it stored (notation 1.3.2 writes it through the tag schema here,
/// as a *legacy* manifest while the index entry carries `artifactType`).
pub fn notation_sign(lab: &Lab, image: &str, opts: &SignOpts<'_>) -> IndexEntry {
    let (_, repo, digest) = split_ref(lab, image);
    let before = index_digests(lab, &repo, &digest);
    let mut cmd = notation(lab, &notation_signer_dir(lab));
    cmd.args(["sign", "--key", &opts.key.name])
        .args(["--signature-format", opts.format.flag()]);
    if let Some(tsa) = opts.timestamp {
        // The TSA vouches for genTime ± 1 s; a certificate made less than that ago would not be
        // valid over the whole interval (notation refuses it, rightly). Let it age.
        if let Ok(made) = std::fs::metadata(&opts.key.cert).and_then(|m| m.modified()) {
            let age = made.elapsed().unwrap_or_default();
            let need = std::time::Duration::from_millis(2500);
            if age < need {
                std::thread::sleep(need - age);
            }
        }
        cmd.args(["--timestamp-url", &tsa.url])
            .arg("--timestamp-root-cert")
            .arg(&tsa.root_pem);
    }
    cmd.args(creds_args(lab, "--username", "--password"));
    cmd.arg(image);
    run(cmd).expect_ok();
    one_new_entry(lab, &repo, &digest, &before, "notation sign")
}

/// A verifier's view: trust stores and the policy for one repository.
#[derive(Debug, Clone)]
pub struct NotationTrust {
    /// `ca` stores: (name, PEM file)
    pub ca: Vec<(String, PathBuf)>,
    /// `tsa` stores: (name, root PEM)
    pub tsa: Vec<(String, PathBuf)>,
    /// `"*"` or `x509.subject: …` entries
    pub identities: Vec<String>,
    /// `strict`, `permissive`, `audit`
    pub level: String,
}

impl NotationTrust {
    /// Strict, one `ca` store holding `key`'s trust certificate, its leaf as the only identity.
    pub fn strict_for(key: &NotationKey) -> NotationTrust {
        NotationTrust {
            ca: vec![(key.name.clone(), key.trust_store_pem.clone())],
            tsa: Vec::new(),
            identities: vec![key.identity.clone()],
            level: "strict".into(),
        }
    }
    pub fn with_tsa(mut self, tsa: &Tsa) -> NotationTrust {
        self.tsa.push(("lab-tsa".into(), tsa.root_pem.clone()));
        self
    }
}

/// `notation verify -v IMAGE` from a fresh verifier config (nothing shared with the signer):
/// the trust stores and a `trustpolicy.json` scoped to exactly the image's repository.
/// notation 1.3.2 reads `trustpolicy.json` only (not `trustpolicy.oci.json`); both are written.
pub fn notation_verify(lab: &Lab, image: &str, trust: &NotationTrust) -> Run {
    let (name, _, _) = split_ref(lab, image);
    let cfg = sig_dir(lab, &format!("notation-verify-{}/notation", seq()));
    let mut stores = Vec::new();
    for (kind, list) in [("ca", &trust.ca), ("tsa", &trust.tsa)] {
        for (store, pem) in list {
            let d = cfg.join(format!("truststore/x509/{kind}/{store}"));
            std::fs::create_dir_all(&d).expect("trust store dir");
            let file = pem.file_name().expect("PEM file name");
            std::fs::copy(pem, d.join(file)).expect("copy into trust store");
            stores.push(format!("{kind}:{store}"));
        }
    }
    stores.dedup();
    let policy = serde_json::json!({
        "version": "1.0",
        "trustPolicies": [{
            "name": "lab",
            "registryScopes": [name],
            "signatureVerification": {"level": trust.level},
            "trustStores": stores,
            "trustedIdentities": trust.identities,
        }],
    });
    let bytes = serde_json::to_vec_pretty(&policy).expect("policy JSON");
    std::fs::write(cfg.join("trustpolicy.json"), &bytes).expect("trustpolicy.json");
    std::fs::write(cfg.join("trustpolicy.oci.json"), &bytes).expect("trustpolicy.oci.json");
    let mut cmd = notation(lab, &cfg);
    cmd.args(["verify", "-v"])
        .args(creds_args(lab, "--username", "--password"))
        .arg(image);
    run(cmd)
}

// -------------------------------------------------------------------------------------------
// a local RFC 3161 TSA

/// An RFC 3161 time-stamping authority on 127.0.0.1: `openssl ts -reply` behind a small HTTP
/// server thread in the test process. Its P-256 root (`root_pem`) issued the TSA certificate
/// (EKU timeStamping, critical); tokens carry ESSCertIDv2 (sha256) and the chain, accuracy 1 s.
pub struct Tsa {
    pub url: String,
    pub root_pem: PathBuf,
    pub cert_pem: PathBuf,
    requests: Arc<AtomicUsize>,
    acceptor: Acceptor,
}

const TS_CNF: &str = "[ tsa ]\ndefault_tsa = tsa_config\n\n[ tsa_config ]\ndir = .\n\
serial = ./serial\ncrypto_device = builtin\nsigner_cert = ./tsa.crt\ncerts = ./root.crt\n\
signer_key = ./tsa.key\nsigner_digest = sha256\ndefault_policy = 1.2.3.4.1\n\
other_policies = 1.2.3.4.5\ndigests = sha256, sha384, sha512\naccuracy = secs:1\n\
ordering = yes\ntsa_name = yes\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n";

impl Tsa {
    /// Makes the TSA's keys and certificates under `<lab>/sigtools/tsa-N` and starts serving.
    pub fn start(lab: &Lab) -> Tsa {
        let dir = sig_dir(lab, &format!("tsa-{}", seq()));
        make_ca(
            &dir,
            "root",
            "/C=US/O=signgate lab/CN=signgate lab TSA root",
            3650,
        );
        issue_cert(
            &dir,
            "root",
            "tsa",
            "/C=US/O=signgate lab/CN=signgate lab TSA",
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=critical,timeStamping\nsubjectKeyIdentifier=hash\n",
            3650,
        );
        std::fs::write(dir.join("ts.cnf"), TS_CNF).expect("ts.cnf");
        std::fs::write(dir.join("serial"), "01\n").expect("serial");

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind TSA");
        let requests = Arc::new(AtomicUsize::new(0));
        let (requests2, dir2) = (requests.clone(), dir.clone());
        let lock = Arc::new(Mutex::new(()));
        let acceptor = Acceptor::spawn("lab-tsa", listener, move |conn| {
            let _one_at_a_time = lock.lock().unwrap_or_else(|e| e.into_inner());
            requests2.fetch_add(1, Ordering::SeqCst);
            if let Err(e) = serve_tsa(conn, &dir2) {
                eprintln!("lab TSA: {e}");
            }
        });
        Tsa {
            url: format!("http://{}/", acceptor.addr()),
            root_pem: dir.join("root.crt"),
            cert_pem: dir.join("tsa.crt"),
            requests,
            acceptor,
        }
    }

    /// How many time-stamp requests it answered (or tried to).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// One HTTP/1.1 request (`POST`, `application/timestamp-query` body with Content-Length) ->
/// `openssl ts -reply` -> `application/timestamp-reply`.
fn serve_tsa(mut tcp: TcpStream, dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tcp.read(&mut chunk)?;
        if n == 0 || buf.len() > 64 * 1024 {
            return Ok(());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    };
    let head = String::from_utf8_lossy(buf.get(..head_end).unwrap_or_default()).into_owned();
    let len: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = buf.get(head_end..).unwrap_or_default().to_vec();
    while body.len() < len.min(1 << 20) {
        let n = tcp.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    let (status, reply) = if head.starts_with("POST ") && !body.is_empty() {
        let q = dir.join("request.tsq");
        let r = dir.join("reply.tsr");
        std::fs::write(&q, &body)?;
        let out = Command::new("openssl")
            .args(["ts", "-reply", "-config", "ts.cnf", "-queryfile"])
            .arg(&q)
            .arg("-out")
            .arg(&r)
            .current_dir(dir)
            .output()?;
        if out.status.success() {
            ("200 OK", std::fs::read(&r)?)
        } else {
            eprintln!(
                "lab TSA: openssl ts -reply: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            ("500 Internal Server Error", Vec::new())
        }
    } else {
        ("400 Bad Request", Vec::new())
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/timestamp-reply\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        reply.len()
    );
    tcp.write_all(resp.as_bytes())?;
    tcp.write_all(&reply)?;
    tcp.flush()?;
    Ok(())
}

// -------------------------------------------------------------------------------------------
// cosign

/// A cosign key pair (encrypted with [`COSIGN_PASSWORD`]) made by `cosign generate-key-pair`.
#[derive(Debug, Clone)]
pub struct CosignKey {
    pub name: String,
    pub key: PathBuf,
    pub public: PathBuf,
    pub public_pem: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cosign {
    /// cosign 2.5 (Debian trixie): legacy `.sig`
    V2,
    /// cosign 3.1 (Debian forky): Sigstore bundles through the tag schema
    V3,
}

fn cosign(lab: &Lab, which: Cosign) -> Command {
    let t = SigTools::get();
    let mut cmd = tool(
        lab,
        match which {
            Cosign::V2 => &t.cosign2,
            Cosign::V3 => &t.cosign3,
        },
    );
    cmd.env("COSIGN_PASSWORD", COSIGN_PASSWORD)
        .env_remove("SIGSTORE_ID_TOKEN");
    cmd
}

fn registry_args(lab: &Lab) -> Vec<String> {
    let mut a = vec![
        "--registry-cacert".to_owned(),
        lab.ca_pem_path().to_string_lossy().into_owned(),
    ];
    a.extend(creds_args(
        lab,
        "--registry-username",
        "--registry-password",
    ));
    a
}

/// `cosign generate-key-pair --output-key-prefix <lab>/sigtools/cosign/NAME` (`COSIGN_PASSWORD`).
pub fn cosign_generate_key_pair(lab: &Lab, name: &str) -> CosignKey {
    let dir = sig_dir(lab, "cosign");
    let mut cmd = cosign(lab, Cosign::V2);
    cmd.arg("generate-key-pair")
        .arg("--output-key-prefix")
        .arg(dir.join(name));
    run(cmd).expect_ok();
    let public = dir.join(format!("{name}.pub"));
    CosignKey {
        name: name.to_owned(),
        key: dir.join(format!("{name}.key")),
        public_pem: std::fs::read_to_string(&public).expect("cosign public key"),
        public,
    }
}

/// An empty signing config (`cosign signing-config create`: no Fulcio, Rekor or TSA) and an
/// empty trusted root (`cosign trusted-root create`), made once per lab.
fn cosign3_offline_config(lab: &Lab) -> (PathBuf, PathBuf) {
    let dir = sig_dir(lab, "cosign");
    let sc = dir.join("signing-config.json");
    let tr = dir.join("trusted-root.json");
    if !sc.exists() {
        let mut cmd = cosign(lab, Cosign::V3);
        cmd.args(["signing-config", "create", "--out"]).arg(&sc);
        run(cmd).expect_ok();
    }
    if !tr.exists() {
        let mut cmd = cosign(lab, Cosign::V3);
        cmd.args(["trusted-root", "create", "--out"]).arg(&tr);
        run(cmd).expect_ok();
    }
    (sc, tr)
}

/// cosign 2: `sign --key K --tlog-upload=false` (the legacy `sha256-<hex>.sig` manifest; one more
/// simple-signing layer per new signature). Returns the `.sig` manifest's digest afterwards.
pub fn cosign2_sign(lab: &Lab, image: &str, key: &CosignKey) -> String {
    let (_, repo, digest) = split_ref(lab, image);
    let mut cmd = cosign(lab, Cosign::V2);
    cmd.args(["sign", "--yes", "--tlog-upload=false", "--key"])
        .arg(&key.key)
        .args(registry_args(lab))
        .arg(image);
    run(cmd).expect_ok();
    sha256_digest(&fetch_manifest(
        lab,
        &repo,
        &format!("{}.sig", tag_schema_tag(&digest)),
    ))
}

/// cosign 3: `sign --key K --signing-config <empty> --trusted-root <empty>`: a DSSE/in-toto v0.3
/// bundle with only `publicKey.hint`, attached through the tag schema. Returns its index entry.
pub fn cosign3_sign(lab: &Lab, image: &str, key: &CosignKey) -> IndexEntry {
    let (_, repo, digest) = split_ref(lab, image);
    let (sc, tr) = cosign3_offline_config(lab);
    let before = index_digests(lab, &repo, &digest);
    let mut cmd = cosign(lab, Cosign::V3);
    cmd.args(["sign", "--yes", "--key"])
        .arg(&key.key)
        .arg("--signing-config")
        .arg(&sc)
        .arg("--trusted-root")
        .arg(&tr)
        .args(registry_args(lab))
        .arg(image);
    run(cmd).expect_ok();
    one_new_entry(lab, &repo, &digest, &before, "cosign 3 sign")
}

/// `cosign verify --key PUB --insecure-ignore-tlog IMAGE` with cosign 2 (legacy `.sig`), or with
/// cosign 3 (bundles first, then `.sig`; `--trusted-root <empty>` keeps it offline).
pub fn cosign_verify(lab: &Lab, which: Cosign, image: &str, public_key: &Path) -> Run {
    let mut cmd = cosign(lab, which);
    cmd.args(["verify", "--insecure-ignore-tlog", "--key"])
        .arg(public_key);
    if which == Cosign::V3 {
        let (_, tr) = cosign3_offline_config(lab);
        cmd.arg("--trusted-root").arg(tr);
    }
    cmd.args(registry_args(lab)).arg(image);
    run(cmd)
}

/// `cosign verify` of a keyless signature against a trusted root (`--trusted-root`, offline:
/// the SET and the embedded SCT), the identity exact. cosign 3 reads bundles first, then `.sig`.
pub fn cosign_verify_keyless(
    lab: &Lab,
    which: Cosign,
    image: &str,
    trusted_root: &Path,
    subject: &str,
    issuer: &str,
) -> Run {
    let mut cmd = cosign(lab, which);
    cmd.args(["verify", "--trusted-root"])
        .arg(trusted_root)
        .args([
            "--certificate-identity",
            subject,
            "--certificate-oidc-issuer",
            issuer,
        ]);
    cmd.args(registry_args(lab)).arg(image);
    run(cmd)
}

// -------------------------------------------------------------------------------------------
// sigstore-js (@sigstore/sign + @sigstore/oci)

/// What [`sigstore_js_sign`] stored.
#[derive(Debug, Clone)]
pub struct JsSigned {
    pub entry: IndexEntry,
    /// the DSSE signature's `keyid` (None when no hint was set)
    pub keyid: Option<String>,
    /// the bundle bytes uploaded
    pub bundle: Vec<u8>,
}

/// A second, independent bundle producer: tests/harness/sign/sigstore-js-sign.js signs the
/// in-toto statement with `key_pem` (unencrypted PKCS#8) through @sigstore/sign and attaches it
/// with @sigstore/oci (tag schema here). With `hint`, sigstore-js sets the DSSE `keyid` to the
/// key hint (cosign's: base64 SHA-256 of the SPKI), which cosign 3.1.1 then rejects; without, the
/// `keyid` is empty and cosign accepts the bundle.
pub fn sigstore_js_sign(lab: &Lab, image: &str, key_pem: &Path, hint: bool) -> JsSigned {
    let t = SigTools::get();
    let (_, repo, digest) = split_ref(lab, image);
    let before = index_digests(lab, &repo, &digest);
    let out_bundle = sig_dir(lab, "sigstore-js").join(format!("bundle-{}.json", seq()));
    let mut cmd = tool(lab, &t.node);
    cmd.env("NODE_PATH", &t.sigstore_js_node_path)
        .arg(harness_file("sign/sigstore-js-sign.js"))
        .arg("--key")
        .arg(key_pem)
        .args(["--image", image, "--ca"])
        .arg(lab.ca_pem_path())
        .arg("--out-bundle")
        .arg(&out_bundle)
        .args(creds_args(lab, "--user", "--password"));
    if !hint {
        cmd.arg("--no-hint");
    }
    let out = run(cmd).expect_ok();
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("sigstore-js-sign output");
    let entry = one_new_entry(lab, &repo, &digest, &before, "sigstore-js");
    assert_eq!(
        Some(entry.digest.as_str()),
        v["descriptor"]["digest"].as_str()
    );
    JsSigned {
        entry,
        keyid: v["keyid"].as_str().map(str::to_owned),
        bundle: std::fs::read(&out_bundle).expect("bundle file"),
    }
}

// -------------------------------------------------------------------------------------------
// crafted signatures (tests/harness/sign/craft.py)

fn harness_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/harness")
        .join(rel)
}

/// Runs `craft.py SUBCOMMAND ARGS…` with the venv's Python; returns its JSON answer.
pub fn craft(lab: &Lab, args: &[&str]) -> serde_json::Value {
    let t = SigTools::get();
    let mut cmd = tool(lab, &t.python);
    cmd.arg(harness_file("sign/craft.py"))
        .args(args)
        .current_dir(sig_dir(lab, "craft"));
    let out = run(cmd).expect_ok();
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("craft.py {args:?}: {e}: {out}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerKind {
    /// one self-signed leaf (like `notation cert generate-test`, but EC P-256)
    SelfSigned,
    /// root CA -> leaf (codeSigning); the verifier trusts the root
    CaIssued,
    /// root CA -> a "leaf" that is itself a CA (`cA=true`, keyCertSign): Notation refuses it
    CaLeaf,
}

/// A key and certificate chain made by craft.py, usable by craft.py's envelopes and (through
/// [`notation_add_key`]) by the real notation.
#[derive(Debug, Clone)]
pub struct CraftedSigner {
    pub name: String,
    /// PKCS#8 PEM, unencrypted
    pub key: PathBuf,
    /// PEM SubjectPublicKeyInfo
    pub public: PathBuf,
    /// the chain, leaf first, one PEM file
    pub chain_pem: PathBuf,
    /// each certificate of the chain, leaf first
    pub chain: Vec<PathBuf>,
    /// what a verifier's trust store holds (the self-signed leaf, or the root)
    pub trust_pem: PathBuf,
    /// `x509.subject: C=US, ST=WA, O=…, CN=…`
    pub identity: String,
}

/// Makes a signer with craft.py: EC P-256 keys; the leaf subject is
/// `C=US, ST=WA, O=signgate lab, CN=<name>`; `days` of validity (fixtures use years).
pub fn crafted_signer(lab: &Lab, name: &str, kind: SignerKind, days: u32) -> CraftedSigner {
    let dir = sig_dir(lab, "craft");
    let p = |n: &str| dir.join(format!("{name}.{n}"));
    let s = |p: &PathBuf| p.to_string_lossy().into_owned();
    let days = days.to_string();
    craft(
        lab,
        &[
            "keypair",
            "--alg",
            "ec256",
            "--out",
            &s(&p("key")),
            "--pub",
            &s(&p("pub")),
        ],
    );
    // `craft.py cert`: a `kind` certificate of the key `<name>.<key>` for `subject`, issued by
    // `<name>.<issuer>.crt`/`.key` (else self-signed), written to `<name>.<out>`.
    let cert = |kind: &str, key: &str, subject: &str, issuer: Option<&str>, out: &str| {
        let mut args = vec![
            "cert".to_owned(),
            "--kind".into(),
            kind.into(),
            "--key".into(),
            s(&p(key)),
            "--subject".into(),
            subject.into(),
        ];
        if let Some(i) = issuer {
            args.extend([
                "--issuer-cert".into(),
                s(&p(&format!("{i}.crt"))),
                "--issuer-key".into(),
                s(&p(&format!("{i}.key"))),
            ]);
        }
        args.extend(["--days".into(), days.clone(), "--out".into(), s(&p(out))]);
        craft(lab, &args.iter().map(String::as_str).collect::<Vec<_>>());
    };
    let leaf_subject = format!("C=US,ST=WA,O=signgate lab,CN={name}");
    let (chain, trust) = match kind {
        SignerKind::SelfSigned => {
            cert("self-signed-leaf", "key", &leaf_subject, None, "crt");
            (vec![p("crt")], p("crt"))
        }
        SignerKind::CaIssued | SignerKind::CaLeaf => {
            craft(
                lab,
                &["keypair", "--alg", "ec256", "--out", &s(&p("root.key"))],
            );
            cert(
                "root",
                "root.key",
                &format!("C=US,ST=WA,O=signgate lab,CN={name} root CA"),
                None,
                "root.crt",
            );
            let leaf_kind = if kind == SignerKind::CaLeaf {
                "ca-leaf"
            } else {
                "leaf"
            };
            cert(leaf_kind, "key", &leaf_subject, Some("root"), "crt");
            (vec![p("crt"), p("root.crt")], p("root.crt"))
        }
    };
    let mut pem = Vec::new();
    for c in &chain {
        pem.extend(std::fs::read(c).expect("cert PEM"));
    }
    std::fs::write(p("chain.pem"), pem).expect("chain PEM");
    CraftedSigner {
        name: name.to_owned(),
        key: p("key"),
        public: p("pub"),
        chain_pem: p("chain.pem"),
        identity: x509_identity(&chain[0]),
        chain,
        trust_pem: trust,
    }
}

/// A Notation envelope made by craft.py.
#[derive(Debug, Clone)]
pub struct CraftedEnvelope {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub thumbprints: Vec<String>,
}

/// What to put into a crafted Notation envelope.
#[derive(Debug, Clone, Default)]
pub struct EnvelopeOpts {
    /// adds `io.cncf.notary.verificationPlugin: NAME` and lists it in `crit`
    pub plugin: Option<String>,
    /// adds `io.cncf.notary.expiry` (now + seconds), listed in `crit`
    pub expiry_seconds: Option<i64>,
}

/// craft.py `notation`: a JWS (jwcrypto) or COSE (pycose) envelope whose payload names `target`.
pub fn craft_notation_envelope(
    lab: &Lab,
    format: EnvelopeFormat,
    signer: &CraftedSigner,
    target: &Desc,
    opts: &EnvelopeOpts,
) -> CraftedEnvelope {
    let out = sig_dir(lab, "craft").join(format!("envelope-{}", seq()));
    let chain = signer
        .chain
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(",");
    let size = target.size.to_string();
    let mut args = vec![
        "notation".to_owned(),
        "--format".into(),
        format.flag().into(),
        "--key".into(),
        signer.key.to_string_lossy().into_owned(),
        "--chain".into(),
        chain,
        "--digest".into(),
        target.digest.clone(),
        "--size".into(),
        size,
        "--media-type".into(),
        target.media_type.clone(),
        "--out".into(),
        out.to_string_lossy().into_owned(),
    ];
    if let Some(p) = &opts.plugin {
        args.extend(["--plugin".into(), p.clone()]);
    }
    if let Some(s) = opts.expiry_seconds {
        args.extend(["--expiry-seconds".into(), s.to_string()]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let v = craft(lab, &refs);
    CraftedEnvelope {
        bytes: std::fs::read(&out).expect("envelope"),
        media_type: v["mediaType"].as_str().expect("mediaType").to_owned(),
        thumbprints: v["thumbprints"]
            .as_array()
            .expect("thumbprints")
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
    }
}

/// craft.py `cosign-simple`: (payload bytes naming `digest`, base64 DER ECDSA signature).
pub fn craft_cosign_simple(
    lab: &Lab,
    signer: &CraftedSigner,
    digest: &str,
    reference: &str,
) -> (Vec<u8>, String) {
    let out = sig_dir(lab, "craft").join(format!("payload-{}.json", seq()));
    let v = craft(
        lab,
        &[
            "cosign-simple",
            "--key",
            &signer.key.to_string_lossy(),
            "--digest",
            digest,
            "--reference",
            reference,
            "--out-payload",
            &out.to_string_lossy(),
        ],
    );
    (
        std::fs::read(&out).expect("payload"),
        v["signature"].as_str().expect("signature").to_owned(),
    )
}

/// craft.py `cosign-bundle`: a v0.3 DSSE bundle whose in-toto statement names `digest`
/// (`keyid`: the DSSE signature's keyid, absent when None).
pub fn craft_cosign_bundle(
    lab: &Lab,
    signer: &CraftedSigner,
    digest: &str,
    keyid: Option<&str>,
) -> Vec<u8> {
    let out = sig_dir(lab, "craft").join(format!("bundle-{}.json", seq()));
    let key = signer.key.to_string_lossy().into_owned();
    let out_s = out.to_string_lossy().into_owned();
    let mut args = vec![
        "cosign-bundle",
        "--key",
        &key,
        "--digest",
        digest,
        "--out",
        &out_s,
    ];
    if let Some(k) = keyid {
        args.extend(["--keyid", k]);
    }
    craft(lab, &args);
    std::fs::read(&out).expect("bundle")
}

// -------------------------------------------------------------------------------------------
// a private Sigstore (craft.py sigstore-root / cosign-logged)

/// The lab's private Sigstore trusted root (Fulcio CA, CT log, Rekor key), made once per lab.
pub fn sigstore_root(lab: &Lab) -> PathBuf {
    let dir = sig_dir(lab, "sigstore");
    let tr = dir.join("trusted_root.json");
    if !tr.exists() {
        craft(lab, &["sigstore-root", "--dir", &dir.to_string_lossy()]);
    }
    tr
}

/// Who signs a logged cosign signature.
#[derive(Debug, Clone, Copy)]
pub enum LoggedSigner<'a> {
    /// A Fulcio-style certificate from the lab's CA for this subject and OIDC issuer.
    Keyless { subject: &'a str, issuer: &'a str },
    /// A crafted key (no certificate).
    Key(&'a CraftedSigner),
}

/// What [`cosign_logged`] made for one layout.
#[derive(Debug, Clone)]
pub enum Logged {
    /// A legacy `.sig` layer: the payload and its annotations.
    Simple {
        payload: Vec<u8>,
        annotations: serde_json::Value,
    },
    /// A v0.3 bundle.
    Bundle(Vec<u8>),
}

/// Options of a logged signature.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogOpts {
    /// the SET is signed by a Rekor key the trusted root does not list
    pub rogue_log: bool,
    /// the log's time is an hour after the certificate expired
    pub after_expiry: bool,
}

/// craft.py `cosign-logged`: a cosign signature over `digest` with a Rekor entry and SET from
/// the lab's private Sigstore ([`sigstore_root`]), in the legacy layout (`bundle` false) or as a
/// v0.3 bundle.
pub fn cosign_logged(
    lab: &Lab,
    signer: LoggedSigner<'_>,
    digest: &str,
    reference: &str,
    bundle: bool,
    opts: LogOpts,
) -> Logged {
    let root = sigstore_root(lab);
    let root_dir = root
        .parent()
        .expect("sigstore dir")
        .to_string_lossy()
        .into_owned();
    let out = sig_dir(lab, "craft").join(format!("logged-{}", seq()));
    let out_s = out.to_string_lossy().into_owned();
    let key;
    let mut args = vec![
        "cosign-logged",
        "--root-dir",
        &root_dir,
        "--digest",
        digest,
        "--reference",
        reference,
        "--out",
        &out_s,
    ];
    match signer {
        LoggedSigner::Keyless { subject, issuer } => {
            args.extend(["--identity", subject, "--issuer", issuer]);
        }
        LoggedSigner::Key(s) => {
            key = s.key.to_string_lossy().into_owned();
            args.extend(["--key", key.as_str()]);
        }
    }
    args.extend(["--layout", if bundle { "bundle" } else { "simple" }]);
    if opts.rogue_log {
        args.extend(["--log", "rogue"]);
    }
    if opts.after_expiry {
        args.push("--after-expiry");
    }
    let v = craft(lab, &args);
    let bytes = std::fs::read(&out).expect("cosign-logged output");
    if bundle {
        Logged::Bundle(bytes)
    } else {
        Logged::Simple {
            payload: bytes,
            annotations: v["annotations"].clone(),
        }
    }
}

/// Attaches a [`Logged`] signature to `image` in `repo`: a `.sig` layer or a bundle referrer.
pub fn attach_logged(lab: &Lab, repo: &str, image: &Desc, logged: &Logged) {
    match logged {
        Logged::Simple {
            payload,
            annotations,
        } => {
            append_cosign_sig_layer_annotated(
                lab,
                repo,
                &image.digest,
                payload,
                annotations.clone(),
            );
        }
        Logged::Bundle(b) => {
            push_bundle_referrer(lab, repo, &image.digest, image, b);
        }
    }
}
