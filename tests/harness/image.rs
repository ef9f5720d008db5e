//! A small deterministic Docker schema2 image (one gzip'd tar layer holding `hello.txt`), built in
//! memory: the same payload always gives the same manifest digest, another payload another digest.

use sha2::{Digest as _, Sha256};

pub const MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const CONFIG_V1: &str = "application/vnd.docker.container.image.v1+json";
pub const LAYER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The full Accept list: without it distribution 2.8 down-converts to schema1 (another digest).
pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json";

pub struct Blob {
    pub digest: String,
    pub bytes: Vec<u8>,
}

impl Blob {
    fn new(bytes: Vec<u8>) -> Blob {
        Blob {
            digest: sha256_digest(&bytes),
            bytes,
        }
    }
}

pub struct Image {
    pub config: Blob,
    pub layer: Blob,
    /// The exact manifest bytes pushed (the registry serves them back unchanged).
    pub manifest: Vec<u8>,
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

pub fn build(payload: &str) -> Image {
    let tar = tar_one_file("hello.txt", format!("{payload}\n").as_bytes());
    let diff_id = sha256_digest(&tar);
    let layer = Blob::new(gzip_stored(&tar));
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/hello.txt"], "Labels": {"lab.payload": payload}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "signgate test harness"}],
    });
    let config = Blob::new(serde_json::to_vec(&config).unwrap_or_default());
    let manifest = format!(
        concat!(
            r#"{{"schemaVersion":2,"mediaType":"{mt}","#,
            r#""config":{{"mediaType":"{ct}","size":{cs},"digest":"{cd}"}},"#,
            r#""layers":[{{"mediaType":"{lt}","size":{ls},"digest":"{ld}"}}]}}"#
        ),
        mt = MANIFEST_V2,
        ct = CONFIG_V1,
        cs = config.bytes.len(),
        cd = config.digest,
        lt = LAYER_TAR_GZIP,
        ls = layer.bytes.len(),
        ld = layer.digest,
    );
    Image {
        config,
        layer,
        manifest: manifest.into_bytes(),
    }
}

/// A ustar archive with one regular file (mtime 0, mode 0644, uid/gid 0), padded like Python's
/// tarfile to a 10 KiB record.
fn tar_one_file(name: &str, body: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    let put = |h: &mut [u8; 512], off: usize, s: &[u8]| h[off..off + s.len()].copy_from_slice(s);
    put(&mut h, 0, name.as_bytes());
    put(&mut h, 100, b"0000644\0");
    put(&mut h, 108, b"0000000\0");
    put(&mut h, 116, b"0000000\0");
    put(&mut h, 124, format!("{:011o}\0", body.len()).as_bytes());
    put(&mut h, 136, b"00000000000\0");
    put(&mut h, 148, b"        ");
    h[156] = b'0';
    put(&mut h, 257, b"ustar\0");
    put(&mut h, 263, b"00");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    put(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(body);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out.resize(out.len().div_ceil(10240) * 10240, 0);
    out
}

/// gzip with deflate "stored" blocks: valid, deterministic, no compression crate needed.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let chunks: Vec<&[u8]> = data.chunks(65535).collect();
    if chunks.is_empty() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    for (i, c) in chunks.iter().enumerate() {
        out.push(u8::from(i + 1 == chunks.len()));
        let len = c.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(c);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
