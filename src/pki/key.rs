//! Public keys and signature verification by a declared algorithm: never guessed from a length.

use aws_lc_rs::signature as sig;
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use spki::DecodePublicKey as _;

use super::PkiError;

/// RSA keys shorter than this are refused (Notation, cosign and notary agree): the one rule for
/// every scheme, Notary v1 included.
pub const MIN_RSA_BITS: usize = 2048;

/// A signature algorithm, hash included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigAlg {
    /// ECDSA on P-256 with SHA-256 (JOSE `ES256`).
    EcdsaP256Sha256,
    /// ECDSA on P-384 with SHA-384 (JOSE `ES384`).
    EcdsaP384Sha384,
    /// ECDSA on P-521 with SHA-512 (JOSE `ES512`).
    EcdsaP521Sha512,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (JOSE `RS256`).
    RsaPkcs1Sha256,
    /// RSASSA-PKCS1-v1_5 with SHA-384 (JOSE `RS384`).
    RsaPkcs1Sha384,
    /// RSASSA-PKCS1-v1_5 with SHA-512 (JOSE `RS512`).
    RsaPkcs1Sha512,
    /// RSASSA-PSS, MGF1 with the same hash, salt length = hash length.
    RsaPssSha256,
    /// [`SigAlg::RsaPssSha256`] with SHA-384.
    RsaPssSha384,
    /// [`SigAlg::RsaPssSha256`] with SHA-512.
    RsaPssSha512,
    /// Ed25519 (pure, over the message itself).
    Ed25519,
}

/// How an ECDSA signature is encoded: ASN.1 DER (X.509, cosign) or fixed-width `r‖s` (JOSE,
/// COSE). Ignored for RSA and Ed25519.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigEncoding {
    /// ASN.1 DER `SEQUENCE { r, s }`.
    Der,
    /// `r‖s`, each the curve's size in bytes, big-endian.
    Raw,
}

#[derive(Debug, Clone)]
enum Material {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(p521::ecdsa::VerifyingKey),
    Rsa(rsa::PublicKey, usize),
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// A public key ready to verify: ECDSA P-256/P-384/P-521, RSA (≥ 2048 bits) or Ed25519.
#[derive(Debug, Clone)]
pub struct VerifyingKey {
    spki: Vec<u8>,
    material: Material,
}

/// Two keys are the same key when their material is, however each was encoded (an EC point
/// compressed or not, an RSA key with or without leading zeros or parameters).
impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.canonical() == other.canonical()
    }
}

impl Eq for VerifyingKey {}

impl VerifyingKey {
    /// From a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<VerifyingKey, PkiError> {
        let material = if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_der(der) {
            Material::P256(k)
        } else if let Ok(k) = p384::ecdsa::VerifyingKey::from_public_key_der(der) {
            Material::P384(k)
        } else if let Ok(k) = p521::ecdsa::VerifyingKey::from_public_key_der(der) {
            Material::P521(k)
        } else if let Ok(k) = rsa::PublicKey::from_public_key_der(der) {
            let bits = rsa::traits::PublicKeyParts::size(&k) * 8;
            if bits < MIN_RSA_BITS {
                return Err(PkiError::Key(format!(
                    "RSA key of {bits} bits (at least {MIN_RSA_BITS})"
                )));
            }
            Material::Rsa(k, bits)
        } else if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_der(der) {
            Material::Ed25519(k)
        } else {
            return Err(PkiError::Key(
                "not an ECDSA P-256/P-384/P-521, RSA or Ed25519 SubjectPublicKeyInfo".into(),
            ));
        };
        Ok(VerifyingKey {
            spki: der.to_vec(),
            material,
        })
    }

    /// From a `PUBLIC KEY` PEM block.
    pub fn from_pem(pem: &str) -> Result<VerifyingKey, PkiError> {
        let (label, der) = super::decode_pem(pem.as_bytes())?;
        if label != "PUBLIC KEY" {
            return Err(PkiError::Key(format!(
                "a PEM {label:?} block, not PUBLIC KEY"
            )));
        }
        VerifyingKey::from_spki_der(&der)
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The key material in one form whatever its encoding: the algorithm, then the SEC1
    /// uncompressed point (ECDSA, with its curve), the modulus and exponent (RSA, minimal
    /// big-endian, each with its length) or the 32 key bytes (Ed25519). Keys are compared and
    /// signers counted by this, never by their encoded bytes or their configured names.
    pub fn canonical(&self) -> Vec<u8> {
        fn with_len(out: &mut Vec<u8>, bytes: &[u8]) {
            // Lengths are of a key this module parsed: an RSA modulus fits u32.
            out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        let mut out = Vec::new();
        match &self.material {
            Material::P256(k) => {
                out.extend_from_slice(b"ecdsa-p256:");
                out.extend_from_slice(k.to_sec1_point(false).as_bytes());
            }
            Material::P384(k) => {
                out.extend_from_slice(b"ecdsa-p384:");
                out.extend_from_slice(k.to_sec1_point(false).as_bytes());
            }
            Material::P521(k) => {
                out.extend_from_slice(b"ecdsa-p521:");
                out.extend_from_slice(k.to_sec1_point(false).as_bytes());
            }
            Material::Rsa(k, _) => {
                use rsa::traits::PublicKeyParts as _;
                out.extend_from_slice(b"rsa:");
                with_len(&mut out, &k.n_bytes());
                with_len(&mut out, &k.e_bytes());
            }
            Material::Ed25519(k) => {
                out.extend_from_slice(b"ed25519:");
                out.extend_from_slice(k.as_bytes());
            }
        }
        out
    }

    /// `ECDSA P-256`, `RSA 3072`, `Ed25519`.
    pub fn describe(&self) -> String {
        match &self.material {
            Material::P256(_) => "ECDSA P-256".into(),
            Material::P384(_) => "ECDSA P-384".into(),
            Material::P521(_) => "ECDSA P-521".into(),
            Material::Rsa(_, bits) => format!("RSA {bits}"),
            Material::Ed25519(_) => "Ed25519".into(),
        }
    }

    /// RSA key size in bits, or the EC curve size.
    pub fn bits(&self) -> usize {
        match &self.material {
            Material::P256(_) => 256,
            Material::P384(_) => 384,
            Material::P521(_) => 521,
            Material::Rsa(_, bits) => *bits,
            Material::Ed25519(_) => 256,
        }
    }

    /// Whether this is an RSA key.
    pub fn is_rsa(&self) -> bool {
        matches!(self.material, Material::Rsa(..))
    }

    /// Verifies `signature` over `message` by `alg`, which must fit the key.
    pub fn verify(
        &self,
        alg: SigAlg,
        encoding: SigEncoding,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), PkiError> {
        use p256::ecdsa::signature::Verifier as _;
        let bad = |_| PkiError::BadSignature;
        let mismatch = || PkiError::AlgorithmMismatch {
            alg,
            key: self.describe(),
        };
        macro_rules! ecdsa {
            ($key:expr, $der:ident, $raw:ident) => {{
                let alg = match encoding {
                    SigEncoding::Der => &sig::$der,
                    SigEncoding::Raw => &sig::$raw,
                };
                sig::UnparsedPublicKey::new(alg, $key.to_sec1_point(false).as_bytes())
                    .verify(message, signature)
                    .map_err(|_| PkiError::BadSignature)
            }};
        }
        macro_rules! rsa {
            ($scheme:ident, $hash:ty, $key:expr) => {{
                let sig = rsa::$scheme::Signature::try_from(signature).map_err(bad)?;
                rsa::$scheme::VerifyingKey::<$hash>::new($key.clone())
                    .verify(message, &sig)
                    .map_err(bad)
            }};
        }
        match (&self.material, alg) {
            (Material::P256(k), SigAlg::EcdsaP256Sha256) => {
                ecdsa!(k, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_FIXED)
            }
            (Material::P384(k), SigAlg::EcdsaP384Sha384) => {
                ecdsa!(k, ECDSA_P384_SHA384_ASN1, ECDSA_P384_SHA384_FIXED)
            }
            (Material::P521(k), SigAlg::EcdsaP521Sha512) => {
                ecdsa!(k, ECDSA_P521_SHA512_ASN1, ECDSA_P521_SHA512_FIXED)
            }
            (Material::Rsa(k, _), SigAlg::RsaPkcs1Sha256) => rsa!(pkcs1v15, Sha256, k),
            (Material::Rsa(k, _), SigAlg::RsaPkcs1Sha384) => rsa!(pkcs1v15, Sha384, k),
            (Material::Rsa(k, _), SigAlg::RsaPkcs1Sha512) => rsa!(pkcs1v15, Sha512, k),
            (Material::Rsa(k, _), SigAlg::RsaPssSha256) => rsa!(pss, Sha256, k),
            (Material::Rsa(k, _), SigAlg::RsaPssSha384) => rsa!(pss, Sha384, k),
            (Material::Rsa(k, _), SigAlg::RsaPssSha512) => rsa!(pss, Sha512, k),
            (Material::Ed25519(k), SigAlg::Ed25519) => {
                let sig = ed25519_dalek::Signature::from_slice(signature).map_err(bad)?;
                k.verify_strict(message, &sig).map_err(bad)
            }
            _ => Err(mismatch()),
        }
    }

    /// Verifies an ECDSA signature over a message already hashed (an X.509 certificate signed
    /// with a hash that is not its issuer curve's own: P-256 keys signing with SHA-384). The
    /// hash is told by the digest's length: SHA-256, SHA-384 or SHA-512.
    pub(super) fn verify_ecdsa_prehash(
        &self,
        digest: &[u8],
        der_sig: &[u8],
    ) -> Result<(), PkiError> {
        use aws_lc_rs::digest::{Digest, SHA256, SHA384, SHA512};
        let bad = |_| PkiError::BadSignature;
        let (hash, column) = match digest.len() {
            32 => (&SHA256, 0),
            48 => (&SHA384, 1),
            64 => (&SHA512, 2),
            _ => return Err(PkiError::BadSignature),
        };
        let by_hash: [&'static sig::EcdsaVerificationAlgorithm; 3] = match &self.material {
            Material::P256(_) => [
                &sig::ECDSA_P256_SHA256_ASN1,
                &sig::ECDSA_P256_SHA384_ASN1,
                &sig::ECDSA_P256_SHA512_ASN1,
            ],
            Material::P384(_) => [
                &sig::ECDSA_P384_SHA256_ASN1,
                &sig::ECDSA_P384_SHA384_ASN1,
                &sig::ECDSA_P384_SHA512_ASN1,
            ],
            Material::P521(_) => [
                &sig::ECDSA_P521_SHA256_ASN1,
                &sig::ECDSA_P521_SHA384_ASN1,
                &sig::ECDSA_P521_SHA512_ASN1,
            ],
            _ => return Err(PkiError::BadSignature),
        };
        let point = self.sec1_point().ok_or(PkiError::BadSignature)?;
        let alg = by_hash.get(column).copied().ok_or(PkiError::BadSignature)?;
        let digest = Digest::import_less_safe(digest, hash).map_err(bad)?;
        sig::UnparsedPublicKey::new(alg, point)
            .verify_digest(&digest, der_sig)
            .map_err(bad)
    }

    /// The uncompressed SEC1 point of an ECDSA key.
    fn sec1_point(&self) -> Option<Vec<u8>> {
        match &self.material {
            Material::P256(k) => Some(k.to_sec1_point(false).as_bytes().to_vec()),
            Material::P384(k) => Some(k.to_sec1_point(false).as_bytes().to_vec()),
            Material::P521(k) => Some(k.to_sec1_point(false).as_bytes().to_vec()),
            _ => None,
        }
    }

    /// Verifies an ASN.1 DER ECDSA signature over a SHA-256 `digest`, whatever the key's curve
    /// (cosign hashes with SHA-256 for every key).
    pub(crate) fn verify_ecdsa_sha256(
        &self,
        digest: &[u8],
        der_sig: &[u8],
    ) -> Result<(), PkiError> {
        self.verify_ecdsa_prehash(digest, der_sig)
    }

    /// The curve's own algorithm for an ECDSA key.
    pub(super) fn ecdsa_alg(&self) -> Option<SigAlg> {
        match &self.material {
            Material::P256(_) => Some(SigAlg::EcdsaP256Sha256),
            Material::P384(_) => Some(SigAlg::EcdsaP384Sha384),
            Material::P521(_) => Some(SigAlg::EcdsaP521Sha512),
            _ => None,
        }
    }
}

/// SHA-256, SHA-384 or SHA-512 of `data`, by output size in bytes.
pub(super) fn hash(size: usize, data: &[u8]) -> Vec<u8> {
    match size {
        48 => Sha384::digest(data).to_vec(),
        64 => Sha512::digest(data).to_vec(),
        _ => Sha256::digest(data).to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::signature::Signer as _;
    use spki::EncodePublicKey as _;

    use super::*;

    fn p256_key() -> (p256::ecdsa::SigningKey, VerifyingKey) {
        let sk = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
        let der = sk.verifying_key().to_public_key_der().unwrap();
        (sk, VerifyingKey::from_spki_der(der.as_bytes()).unwrap())
    }

    #[test]
    fn ecdsa_in_both_encodings_and_only_with_its_own_algorithm() {
        let (sk, vk) = p256_key();
        let sig: p256::ecdsa::Signature = sk.sign(b"payload");
        vk.verify(
            SigAlg::EcdsaP256Sha256,
            SigEncoding::Raw,
            b"payload",
            &sig.to_bytes(),
        )
        .unwrap();
        vk.verify(
            SigAlg::EcdsaP256Sha256,
            SigEncoding::Der,
            b"payload",
            sig.to_der().as_bytes(),
        )
        .unwrap();
        assert_eq!(
            vk.verify(
                SigAlg::EcdsaP256Sha256,
                SigEncoding::Raw,
                b"payloaD",
                &sig.to_bytes()
            ),
            Err(PkiError::BadSignature)
        );
        // The DER bytes are not accepted as raw, nor raw as DER.
        assert!(
            vk.verify(
                SigAlg::EcdsaP256Sha256,
                SigEncoding::Raw,
                b"payload",
                sig.to_der().as_bytes()
            )
            .is_err()
        );
        assert!(matches!(
            vk.verify(
                SigAlg::RsaPssSha256,
                SigEncoding::Raw,
                b"payload",
                &sig.to_bytes()
            ),
            Err(PkiError::AlgorithmMismatch { .. })
        ));
        assert!(matches!(
            vk.verify(
                SigAlg::EcdsaP384Sha384,
                SigEncoding::Raw,
                b"payload",
                &sig.to_bytes()
            ),
            Err(PkiError::AlgorithmMismatch { .. })
        ));
        assert_eq!(vk.describe(), "ECDSA P-256");
        let pem =
            der::pem::encode_string("PUBLIC KEY", der::pem::LineEnding::LF, vk.spki_der()).unwrap();
        assert_eq!(VerifyingKey::from_pem(&pem).unwrap(), vk);
    }

    #[test]
    fn ed25519_verifies_strictly() {
        use ed25519_dalek::Signer as _;
        let sk = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let der = sk.verifying_key().to_public_key_der().unwrap();
        let vk = VerifyingKey::from_spki_der(der.as_bytes()).unwrap();
        let sig = sk.sign(b"m");
        vk.verify(SigAlg::Ed25519, SigEncoding::Raw, b"m", &sig.to_bytes())
            .unwrap();
        assert!(
            vk.verify(SigAlg::Ed25519, SigEncoding::Raw, b"n", &sig.to_bytes())
                .is_err()
        );
    }

    #[test]
    fn garbage_is_refused_not_a_panic() {
        assert!(VerifyingKey::from_spki_der(b"\x30\x03\x02\x01\x00").is_err());
        assert!(
            VerifyingKey::from_pem(
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
            )
            .is_err()
        );
        let (_, vk) = p256_key();
        for sig in [&b""[..], &[0u8; 64][..], &[0xff; 200][..]] {
            assert!(
                vk.verify(SigAlg::EcdsaP256Sha256, SigEncoding::Raw, b"m", sig)
                    .is_err()
            );
            assert!(
                vk.verify(SigAlg::EcdsaP256Sha256, SigEncoding::Der, b"m", sig)
                    .is_err()
            );
        }
    }
}
