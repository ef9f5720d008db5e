//! Public keys as notary lists them, their IDs, and signature verification per method.
//!
//! Key types and encodings: `tuf/data/keys.go`; verifiers: `tuf/signed/verifiers.go`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest as _, Sha256};
use spki::DecodePublicKey as _;

use super::cert::{self, CertBundle};
use crate::tuf::canonical::{self, Value};
use crate::verdict::{Reason, TrustError};

use crate::pki::MIN_RSA_BITS;

/// A key type notary knows (`tuf/data/types.go:98`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// `ecdsa`: a P-256 public key, DER SubjectPublicKeyInfo.
    Ecdsa,
    /// `ecdsa-x509`: a P-256 key in a PEM certificate (leaf first, then intermediates).
    EcdsaX509,
    /// `ed25519`: the raw 32-byte public key.
    Ed25519,
    /// `rsa`: an RSA public key (at least 2048 bits), DER SubjectPublicKeyInfo.
    Rsa,
    /// `rsa-x509`: an RSA key in a PEM certificate (leaf first, then intermediates).
    RsaX509,
}

impl KeyType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ecdsa" => KeyType::Ecdsa,
            "ecdsa-x509" => KeyType::EcdsaX509,
            "ed25519" => KeyType::Ed25519,
            "rsa" => KeyType::Rsa,
            "rsa-x509" => KeyType::RsaX509,
            _ => return None,
        })
    }

    /// The `keytype` string notary writes.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Ecdsa => "ecdsa",
            KeyType::EcdsaX509 => "ecdsa-x509",
            KeyType::Ed25519 => "ed25519",
            KeyType::Rsa => "rsa",
            KeyType::RsaX509 => "rsa-x509",
        }
    }
}

/// The cryptographic key behind a TUF key, ready to verify.
#[derive(Debug, Clone)]
enum Material {
    P256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
    Rsa(Box<rsa::PublicKey>),
}

impl Material {
    fn normalized_spki(&self) -> Option<Vec<u8>> {
        use spki::EncodePublicKey as _;
        match self {
            Material::P256(k) => k.to_public_key_der().ok().map(|d| d.as_bytes().to_vec()),
            Material::Rsa(k) => k.to_public_key_der().ok().map(|d| d.as_bytes().to_vec()),
            Material::Ed25519(k) => Some(k.as_bytes().to_vec()),
        }
    }
}

/// A TUF public key from metadata, with its IDs and parsed material.
#[derive(Debug, Clone)]
pub struct PublicKey {
    keytype: KeyType,
    /// `hex(sha256(canonical key JSON))`: the ID metadata uses.
    id: String,
    /// The ID of the bare public key (notary's `CanonicalKeyID`): equal to `id` except for x509 keys.
    canonical_id: String,
    /// DER SubjectPublicKeyInfo, or the raw 32 bytes of an Ed25519 key: identifies key material.
    spki: Vec<u8>,
    material: Material,
    /// The certificate bundle, for x509 key types.
    certs: Option<CertBundle>,
}

impl crate::tuf::SigningKey for PublicKey {
    fn material(&self) -> &[u8] {
        self.spki()
    }

    fn verify(&self, method: &str, msg: &[u8], sig: &[u8]) -> bool {
        PublicKey::verify(self, method, msg, sig)
    }
}

impl PublicKey {
    /// Parses a key as metadata lists it: its `keytype` and the base64 `keyval.public`.
    /// `role` names the metadata it came from, for errors.
    pub(crate) fn from_json(
        keytype: &str,
        public_b64: &str,
        role: &str,
    ) -> Result<Self, TrustError> {
        let bad = |d: String| TrustError::role(Reason::UnsupportedKey, role, d);
        let kt = KeyType::parse(keytype)
            .ok_or_else(|| bad(format!("unsupported key type {keytype:?}")))?;
        let public = B64
            .decode(public_b64)
            .map_err(|e| bad(format!("{keytype} key's public value is not base64: {e}")))?;
        Self::from_public_bytes(kt, public, role)
    }

    /// Builds a key from its type and decoded `keyval.public` bytes.
    pub(crate) fn from_public_bytes(
        keytype: KeyType,
        public: Vec<u8>,
        role: &str,
    ) -> Result<Self, TrustError> {
        let bad = |d: String| TrustError::role(Reason::UnsupportedKey, role, d);
        let id = tuf_key_id(keytype.as_str(), &public);
        let (spki, certs) = match keytype {
            KeyType::Ecdsa | KeyType::Rsa => (public, None),
            KeyType::Ed25519 => (public, None),
            KeyType::EcdsaX509 | KeyType::RsaX509 => {
                let bundle = CertBundle::parse(&public)
                    .map_err(|e| bad(format!("{} key {id}: {e}", keytype.as_str())))?;
                (bundle.leaf_spki().to_vec(), Some(bundle))
            }
        };
        let material = match keytype {
            KeyType::Ecdsa | KeyType::EcdsaX509 => Material::P256(
                p256::ecdsa::VerifyingKey::from_public_key_der(&spki)
                    .map_err(|e| bad(format!("key {id} is not a P-256 public key: {e}")))?,
            ),
            KeyType::Rsa | KeyType::RsaX509 => {
                let k = rsa::PublicKey::from_public_key_der(&spki)
                    .map_err(|e| bad(format!("key {id} is not an RSA public key: {e}")))?;
                let bits = rsa::traits::PublicKeyParts::size(&k) * 8;
                if bits < MIN_RSA_BITS {
                    return Err(bad(format!(
                        "RSA key {id} has {bits} bits; at least {MIN_RSA_BITS} are required"
                    )));
                }
                Material::Rsa(Box::new(k))
            }
            KeyType::Ed25519 => {
                let raw: &[u8; 32] = spki.as_slice().try_into().map_err(|_| {
                    bad(format!("ed25519 key {id} has {} bytes, not 32", spki.len()))
                })?;
                Material::Ed25519(
                    ed25519_dalek::VerifyingKey::from_bytes(raw)
                        .map_err(|e| bad(format!("ed25519 key {id} is invalid: {e}")))?,
                )
            }
        };
        // Key material is compared in one encoding (Go's MarshalPKIXPublicKey), so a compressed
        // point or a re-encoded SPKI cannot pass for a different key.
        let spki = material.normalized_spki().unwrap_or(spki);
        let canonical_id = match keytype {
            KeyType::EcdsaX509 => tuf_key_id("ecdsa", &spki),
            KeyType::RsaX509 => tuf_key_id("rsa", &spki),
            _ => id.clone(),
        };
        Ok(PublicKey {
            keytype,
            id,
            canonical_id,
            spki,
            material,
            certs,
        })
    }

    /// The key type the metadata declares.
    pub fn keytype(&self) -> KeyType {
        self.keytype
    }

    /// The TUF key ID computed from the key's content.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The public-key ID (`notary key list`, `docker trust inspect`'s root key).
    pub fn canonical_id(&self) -> &str {
        &self.canonical_id
    }

    /// DER SubjectPublicKeyInfo (raw bytes for Ed25519): equal for equal key material.
    pub fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// The certificate bundle of an x509 key.
    pub fn certs(&self) -> Option<&CertBundle> {
        self.certs.as_ref()
    }

    /// Verifies `sig` over `msg` with the declared (lower-cased) `method`. Only the method that
    /// matches the key type is accepted; nothing is guessed from lengths.
    pub fn verify(&self, method: &str, msg: &[u8], sig: &[u8]) -> bool {
        use p256::ecdsa::signature::Verifier as _;
        match (method, &self.material) {
            // Raw r‖s, SHA-256 (verifiers.go:208); exactly 64 bytes for P-256.
            ("ecdsa", Material::P256(vk)) => {
                sig.len() == 64
                    && p256::ecdsa::Signature::from_slice(sig)
                        .is_ok_and(|s| vk.verify(msg, &s).is_ok())
            }
            ("eddsa", Material::Ed25519(vk)) => ed25519_dalek::Signature::from_slice(sig)
                .is_ok_and(|s| vk.verify_strict(msg, &s).is_ok()),
            // RSASSA-PSS, SHA-256, salt length 32 (verifiers.go:124).
            ("rsapss", Material::Rsa(k)) => {
                sig.len() >= MIN_RSA_BITS / 8 && {
                    let vk = rsa::pss::VerifyingKey::<Sha256>::new_with_salt_len((**k).clone(), 32);
                    rsa::pss::Signature::try_from(sig).is_ok_and(|s| vk.verify(msg, &s).is_ok())
                }
            }
            _ => false,
        }
    }
}

/// `hex(sha256({"keytype":T,"keyval":{"private":null,"public":base64(public)}}))`
/// (`tuf/data/keys.go:213 TUFKey.ID`).
pub(crate) fn tuf_key_id(keytype: &str, public: &[u8]) -> String {
    let mut keyval = std::collections::BTreeMap::new();
    keyval.insert("private".to_owned(), Value::Null);
    keyval.insert("public".to_owned(), Value::String(B64.encode(public)));
    let mut key = std::collections::BTreeMap::new();
    key.insert("keytype".to_owned(), Value::String(keytype.to_owned()));
    key.insert("keyval".to_owned(), Value::Object(keyval));
    // Strings and nulls only: canonical encoding cannot fail.
    let bytes = canonical::encode(&Value::Object(key)).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

/// A root key pinned in configuration: a public key, or the public key of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedKey {
    spki: Vec<u8>,
    canonical_id: String,
}

/// Why a pinned key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    /// No `PUBLIC KEY` or `CERTIFICATE` block in the PEM text.
    #[error("no PEM \"PUBLIC KEY\" or \"CERTIFICATE\" block found")]
    NoKey,
    /// A PEM block could not be decoded.
    #[error("invalid PEM: {0}")]
    Pem(String),
    /// A block decoded but holds no key signgate can use.
    #[error("unsupported key: {0}")]
    Key(String),
}

impl PinnedKey {
    /// Reads every `PUBLIC KEY` and `CERTIFICATE` block in `pem` (other blocks are ignored).
    pub fn from_pem(pem: &[u8]) -> Result<Vec<PinnedKey>, PinError> {
        let text = std::str::from_utf8(pem).map_err(|_| PinError::Pem("not UTF-8 text".into()))?;
        let mut keys = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("-----BEGIN ") {
            let block = rest.get(start..).unwrap_or_default();
            let end_marker = block
                .find("-----END ")
                .and_then(|e| {
                    block
                        .get(e + 9..)
                        .and_then(|t| t.find("-----"))
                        .map(|f| e + 9 + f + 5)
                })
                .ok_or_else(|| PinError::Pem("unterminated PEM block".into()))?;
            let one = block.get(..end_marker).unwrap_or_default();
            rest = block.get(end_marker..).unwrap_or_default();
            let label = one
                .strip_prefix("-----BEGIN ")
                .and_then(|l| l.split_once("-----"))
                .map(|(l, _)| l)
                .unwrap_or_default();
            if label != "PUBLIC KEY" && label != "CERTIFICATE" {
                continue;
            }
            let (label, der) =
                pem_rfc7468_decode(one.as_bytes()).map_err(|e| PinError::Pem(e.to_string()))?;
            let spki = match label.as_str() {
                "PUBLIC KEY" => der,
                _ => cert::spki_of_der(&der).map_err(PinError::Key)?,
            };
            keys.push(PinnedKey::from_spki(spki).map_err(PinError::Key)?);
        }
        if keys.is_empty() {
            return Err(PinError::NoKey);
        }
        Ok(keys)
    }

    /// A pin from DER SubjectPublicKeyInfo.
    pub fn from_spki(spki: Vec<u8>) -> Result<PinnedKey, String> {
        let (keytype, material) =
            if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_der(&spki) {
                ("ecdsa", Material::P256(k))
            } else if let Ok(k) = rsa::PublicKey::from_public_key_der(&spki) {
                ("rsa", Material::Rsa(Box::new(k)))
            } else {
                return Err("the public key is neither ECDSA P-256 nor RSA".into());
            };
        let spki = material.normalized_spki().unwrap_or(spki);
        Ok(PinnedKey {
            canonical_id: tuf_key_id(keytype, &spki),
            spki,
        })
    }

    /// The canonical key ID, as `notary key list` shows it.
    pub fn canonical_id(&self) -> &str {
        &self.canonical_id
    }

    /// DER SubjectPublicKeyInfo in Go's encoding.
    pub fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// Whether `key` carries this pinned public key.
    pub fn matches(&self, key: &PublicKey) -> bool {
        self.spki == key.spki
    }
}

fn pem_rfc7468_decode(block: &[u8]) -> Result<(String, Vec<u8>), der::pem::Error> {
    let (label, der) = der::pem::decode_vec(block)?;
    Ok((label.to_owned(), der))
}

#[cfg(test)]
mod tests {
    use super::*;

    // An RSA-2048 key and RSASSA-PSS signatures made with openssl
    // (`openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32|20`).
    const RSA_PUBLIC: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAoW0ZDlAWhtinOr8pPlz8pqBvtmuSXvrTnvaL0sCP/Z13CSZkzJwhKUA+bq3RhAiLGmjB0MeWXn6zMiJNINzGUEVzAzdt32hCLwekhGoFQs4oGj9ljFcQFW6TWWeKyF/fkm6Nup1JyKcabrxHGPB74O3faffPkTd3IiodzuoRDTtg2gOfGj8wOLqVldsocK+noLB/kvqA/ezP2mlGjsj/M1nhb9j0/OB9UXb5TaXb7v9XPTrOU03H/YTDPIc0FOcvB68wT9nmF/jCKOx48OyuXXN+VtG/tLMtBAv1aa/kyZjXzY3LsHrwC6MKQmoPsA9VI2UjTTXztnsY6az7ioFs9wIDAQAB";
    const RSA_SIG_SALT32: &str = "WfQG2MY8unJOYFZKRo7gt/bA+GHrPnmXQtSX2CeVGt62BLXblSOh5m+SbsOYa6ZVvdMQY7MPj7D/XqBqvyCIHy1FI7m6208sNS2aTxq8Ynv5XVbvBg8D7ULp6hs0nlb5YnTJRTlDYDa6Gv2UM67gsrSxQJ4cLVkX0od4k9qwx/e0VTzONCaKeCqI4T/2flvNu+qUo2ags7BLxp48OHy+IQwmtIdTINrEOIs5e2ivJ9/FwnCswa+Yf52PFmF98yy0IJgQIrL6foQUlXk4T9X4wTvItfFRH3NOgU6oN2u1TrVOAvgPeyqJ469/kJ6OObLbBFIaFtg3skTsTS7d7ulfzA==";
    const RSA_SIG_SALT20: &str = "PJHaKImXRa9i+QUNmHU3B7XzWSl+11gicyasGZ+ZEX8Q/hEwttbNQXYaKkU4+VaPQL3VEV9d55krf3Ltq1WRWuFR2VwOD3IgoYScYRpseGiYeakoibQZmOVtNXD9qqAjK6Wkp3cf+Y45wWdRy+eOkKMhUms+QxX5HMnJoxu+55D4MMbd1+C0LeKr8CABb8P/izrTiciV8iO56xh5KsgLFm6xkYBE1VAPn0FDwNMn7916rRJdCarcuxG9MOO6ZVp9WmeSUBHmS15fJ59q795dYgSN0G50MVkBRobSgoWKlpwMfQQuukc7ebaPVMBZe1j+JLgGAeZ5aVk+Rz1AjUdgIw==";
    const RSA_1024_PUBLIC: &str = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDSx+KM7BlwDGkmM24GthDxr52aftIDJapKn3i2CB/Jesyi07aBVRrqTSKDrnhOe+Aj9ayLeXMtAaArIHemXfAxnsuMkEFX1ZWxUz77BzyL9nR/4D77Cv7VMa3t4yX7MBedI57x/Z6B01xhxeoLMPIJ0Vh3WXWsITbe/oLfOf8eWwIDAQAB";
    const MSG: &[u8] = br#"{"_type":"Targets","version":1}"#;

    fn b64(s: &str) -> Vec<u8> {
        B64.decode(s).unwrap()
    }

    #[test]
    fn rsapss_verifies_with_salt_length_32_only() {
        let key = PublicKey::from_json("rsa", RSA_PUBLIC, "targets").unwrap();
        assert!(key.verify("rsapss", MSG, &b64(RSA_SIG_SALT32)));
        assert!(!key.verify("rsapss", b"other message", &b64(RSA_SIG_SALT32)));
        assert!(!key.verify("rsapss", MSG, &b64(RSA_SIG_SALT20)));
        // The method must match the key type.
        assert!(!key.verify("ecdsa", MSG, &b64(RSA_SIG_SALT32)));
        assert!(!key.verify("rsapkcs1v15", MSG, &b64(RSA_SIG_SALT32)));
        assert_eq!(key.canonical_id(), key.id());
    }

    #[test]
    fn refuses_weak_and_malformed_keys() {
        let weak = PublicKey::from_json("rsa", RSA_1024_PUBLIC, "targets").unwrap_err();
        assert_eq!(weak.reason(), Reason::UnsupportedKey);
        for (keytype, public) in [
            ("ed25519", B64.encode([7u8; 31])),
            ("ecdsa", B64.encode(b"not a key")),
            (
                "ecdsa-x509",
                B64.encode(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            ),
            ("dsa", RSA_PUBLIC.to_owned()),
            ("rsa", "%%%".to_owned()),
        ] {
            let e = PublicKey::from_json(keytype, &public, "targets").unwrap_err();
            assert_eq!(e.reason(), Reason::UnsupportedKey, "{keytype}");
        }
    }

    #[test]
    fn key_id_is_sha256_of_canonical_key_json() {
        // {"keytype":"ed25519","keyval":{"private":null,"public":"AAAA…"}} hashed.
        let public = [0u8; 32];
        let json = format!(
            r#"{{"keytype":"ed25519","keyval":{{"private":null,"public":"{}"}}}}"#,
            B64.encode(public)
        );
        assert_eq!(
            tuf_key_id("ed25519", &public),
            hex::encode(Sha256::digest(json.as_bytes()))
        );
    }

    #[test]
    fn pins_read_public_keys_and_certificates_and_ignore_other_blocks() {
        let body: Vec<String> = RSA_PUBLIC
            .as_bytes()
            .chunks(64)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        let pem = format!(
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            body.join("\n")
        );
        let pins = PinnedKey::from_pem(pem.as_bytes()).unwrap();
        assert_eq!(pins.len(), 1);
        assert_eq!(PinnedKey::from_pem(b"nothing here"), Err(PinError::NoKey));
        assert!(matches!(
            PinnedKey::from_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA"),
            Err(PinError::Pem(_))
        ));
    }
}
