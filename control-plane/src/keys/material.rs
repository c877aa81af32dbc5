//! What a key's sealed private part is for each algorithm, and the two keys made from it: the
//! `authz` signing key (which derives the public JWK, checked against the stored one, and signs
//! bundles) and the `jsonwebtoken` key that signs tokens.
//!
//! EdDSA: the 32-byte Ed25519 seed. ES256: the 32-byte P-256 scalar. RS256: the PKCS#1 DER of a
//! 2048-bit key, the size RFC 7518 §3.3 requires at least and every relying party takes.

use crate::keys::secrets::{random_bytes, SecretError};
use p256::pkcs8::EncodePrivateKey as _;
use portcullis_authz::issue::SigningKey;
use portcullis_authz::jwk::Algorithm;
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};

/// Size of the RSA keys made here, in bits.
pub const RSA_BITS: usize = 2048;

/// PKCS#8 v1 for an Ed25519 seed (RFC 8410 §7): this prefix, then the 32 seed bytes.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Why key material could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum MaterialError {
    /// The system's random source failed.
    #[error(transparent)]
    Random(#[from] SecretError),
    /// Generation failed.
    #[error("{0} key generation failed")]
    Generate(&'static str),
    /// Stored material is not a key of its algorithm.
    #[error("stored key material is not a valid {0} key")]
    Corrupt(&'static str),
}

/// New private material for `alg`.
pub fn generate(alg: Algorithm) -> Result<Vec<u8>, MaterialError> {
    match alg {
        Algorithm::EdDsa => Ok(random_bytes::<32>()?.to_vec()),
        Algorithm::Es256 => {
            let key = p256::SecretKey::random(&mut rand_core::OsRng);
            Ok(key.to_bytes().to_vec())
        }
        Algorithm::Rs256 => {
            let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, RSA_BITS)
                .map_err(|_| MaterialError::Generate("RSA"))?;
            let der = key
                .to_pkcs1_der()
                .map_err(|_| MaterialError::Generate("RSA"))?;
            Ok(der.as_bytes().to_vec())
        }
    }
}

fn scalar(alg: Algorithm, material: &[u8]) -> Result<[u8; 32], MaterialError> {
    material
        .try_into()
        .map_err(|_| MaterialError::Corrupt(alg.as_str()))
}

/// The `authz` signing key of `material`.
pub fn signing_key(
    kid: &str,
    alg: Algorithm,
    material: &[u8],
) -> Result<SigningKey, MaterialError> {
    let corrupt = || MaterialError::Corrupt(alg.as_str());
    match alg {
        Algorithm::EdDsa => Ok(SigningKey::ed25519(kid, scalar(alg, material)?)),
        Algorithm::Es256 => SigningKey::es256(kid, scalar(alg, material)?).map_err(|_| corrupt()),
        Algorithm::Rs256 => {
            let key = rsa::RsaPrivateKey::from_pkcs1_der(material).map_err(|_| corrupt())?;
            Ok(SigningKey::rs256(kid, key))
        }
    }
}

/// The `jsonwebtoken` key of `material`.
pub fn encoding_key(
    alg: Algorithm,
    material: &[u8],
) -> Result<jsonwebtoken::EncodingKey, MaterialError> {
    match alg {
        Algorithm::EdDsa => Ok(ed25519_encoding_key(&scalar(alg, material)?)),
        Algorithm::Es256 => {
            let key = p256::SecretKey::from_slice(material)
                .map_err(|_| MaterialError::Corrupt(alg.as_str()))?;
            let der = key
                .to_pkcs8_der()
                .map_err(|_| MaterialError::Corrupt(alg.as_str()))?;
            Ok(jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes()))
        }
        Algorithm::Rs256 => Ok(jsonwebtoken::EncodingKey::from_rsa_der(material)),
    }
}

/// The `jsonwebtoken` key of an Ed25519 seed.
pub fn ed25519_encoding_key(seed: &[u8; 32]) -> jsonwebtoken::EncodingKey {
    let mut der = ED25519_PKCS8_PREFIX.to_vec();
    der.extend_from_slice(seed);
    jsonwebtoken::EncodingKey::from_ed_der(&der)
}

/// The `jsonwebtoken` name of `alg`.
pub fn jsonwebtoken_algorithm(alg: Algorithm) -> jsonwebtoken::Algorithm {
    match alg {
        Algorithm::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        Algorithm::Es256 => jsonwebtoken::Algorithm::ES256,
        Algorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
    }
}

#[cfg(test)]
mod tests {
    use super::{encoding_key, generate, jsonwebtoken_algorithm, signing_key};
    use portcullis_authz::jwk::{Algorithm, Jwks, KeySet};

    #[test]
    fn what_jsonwebtoken_signs_with_each_kind_of_material_verifies_with_its_derived_public_key() {
        for alg in [Algorithm::EdDsa, Algorithm::Es256, Algorithm::Rs256] {
            let material = generate(alg).expect("generates");
            let public = signing_key("k", alg, &material).unwrap().public_jwk();
            let mut header = jsonwebtoken::Header::new(jsonwebtoken_algorithm(alg));
            header.kid = Some("k".into());
            header.typ = Some("at+jwt".into());
            let claims = serde_json::json!({"iss": "https://id.test", "sub": "user:1",
                "aud": ["edge"], "iat": 1_800_000_000, "exp": 1_800_000_300, "jti": "j",
                "client_id": "web"});
            let token =
                jsonwebtoken::encode(&header, &claims, &encoding_key(alg, &material).unwrap())
                    .unwrap_or_else(|e| panic!("{alg:?} signs: {e}"));
            let (keys, _) = KeySet::from_jwks(&Jwks { keys: vec![public] });
            let rules = portcullis_authz::claims::ClaimRules {
                issuer: "https://id.test".into(),
                audiences: vec!["edge".into()],
                leeway: 0,
                max_lifetime: 600,
            };
            portcullis_authz::jws::verify(&token, &keys, &rules, 1_800_000_100, 8192)
                .unwrap_or_else(|e| panic!("{alg:?}: the derived public key verifies: {e:?}"));
        }
    }

    #[test]
    fn material_of_the_wrong_size_or_shape_is_refused_as_corrupt() {
        assert!(signing_key("k", Algorithm::EdDsa, &[1; 31]).is_err());
        assert!(
            signing_key("k", Algorithm::Es256, &[0; 32]).is_err(),
            "zero is no scalar"
        );
        assert!(signing_key("k", Algorithm::Rs256, b"not der").is_err());
    }
}
