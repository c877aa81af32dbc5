//! Signing access tokens: the control plane issues with these keys and tests forge with them.

use crate::jwk::{Algorithm, Jwk};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use serde_json::{json, Value};
use sha2::Sha256;

/// Why a signing key could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    /// The private scalar or document is not a valid key.
    #[error("invalid {0} private key")]
    Invalid(&'static str),
}

#[derive(Clone)]
enum Signer {
    Ed25519(Box<ed25519_dalek::SigningKey>),
    Es256(Box<p256::ecdsa::SigningKey>),
    Rs256(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
}

/// A private key with its `kid`, able to sign compact JWS tokens.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    signer: Signer,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.algorithm().as_str())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// An Ed25519 key from its 32-byte seed.
    pub fn ed25519(kid: &str, seed: [u8; 32]) -> Self {
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        SigningKey {
            kid: kid.to_owned(),
            signer: Signer::Ed25519(Box::new(key)),
        }
    }

    /// A P-256 key from its 32-byte private scalar.
    pub fn es256(kid: &str, scalar: [u8; 32]) -> Result<Self, SigningKeyError> {
        let key = p256::ecdsa::SigningKey::from_slice(&scalar)
            .map_err(|_| SigningKeyError::Invalid("P-256"))?;
        Ok(SigningKey {
            kid: kid.to_owned(),
            signer: Signer::Es256(Box::new(key)),
        })
    }

    /// An RSA key from a PKCS#8 PEM document.
    pub fn rs256_from_pkcs8_pem(kid: &str, pem: &str) -> Result<Self, SigningKeyError> {
        let key =
            rsa::RsaPrivateKey::from_pkcs8_pem(pem).map_err(|_| SigningKeyError::Invalid("RSA"))?;
        Ok(Self::rs256(kid, key))
    }

    /// An RSA key.
    pub fn rs256(kid: &str, key: rsa::RsaPrivateKey) -> Self {
        let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(key);
        SigningKey {
            kid: kid.to_owned(),
            signer: Signer::Rs256(Box::new(signer)),
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        match self.signer {
            Signer::Ed25519(_) => Algorithm::EdDsa,
            Signer::Es256(_) => Algorithm::Es256,
            Signer::Rs256(_) => Algorithm::Rs256,
        }
    }

    /// The public half as a JWK with `kid`, `alg` and `use: sig`.
    pub fn public_jwk(&self) -> Jwk {
        let b64 = |bytes: &[u8]| Some(URL_SAFE_NO_PAD.encode(bytes));
        let mut jwk = Jwk {
            kid: Some(self.kid.clone()),
            alg: Some(self.algorithm().as_str().to_owned()),
            key_use: Some("sig".to_owned()),
            ..Jwk::default()
        };
        match &self.signer {
            Signer::Ed25519(key) => {
                jwk.kty = "OKP".into();
                jwk.crv = Some("Ed25519".into());
                jwk.x = b64(key.verifying_key().as_bytes());
            }
            Signer::Es256(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                jwk.kty = "EC".into();
                jwk.crv = Some("P-256".into());
                jwk.x = point.x().and_then(|x| b64(x));
                jwk.y = point.y().and_then(|y| b64(y));
            }
            Signer::Rs256(key) => {
                let private: &rsa::RsaPrivateKey = key.as_ref().as_ref();
                let public = private.to_public_key();
                jwk.kty = "RSA".into();
                jwk.n = b64(&public.n().to_bytes_be());
                jwk.e = b64(&public.e().to_bytes_be());
            }
        }
        jwk
    }

    /// Signs `claims` as an RFC 9068 access token (`typ: at+jwt`, this key's `alg` and `kid`).
    pub fn sign_access_token(&self, claims: &Value) -> String {
        let header = json!({"alg": self.algorithm().as_str(), "typ": "at+jwt", "kid": self.kid});
        self.sign_raw(header.to_string().as_bytes(), claims.to_string().as_bytes())
    }

    /// Signs arbitrary header and payload bytes; tests use it to build hostile tokens.
    pub fn sign_raw(&self, header: &[u8], payload: &[u8]) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = self.sign_bytes(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// The raw JWS signature of `message` (r‖s for ES256).
    pub fn sign_bytes(&self, message: &[u8]) -> Vec<u8> {
        use ed25519_dalek::Signer as _;
        match &self.signer {
            Signer::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
            Signer::Es256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_bytes().to_vec()
            }
            Signer::Rs256(key) => {
                let signature: rsa::pkcs1v15::Signature = key.sign(message);
                Box::<[u8]>::from(signature).into_vec()
            }
        }
    }
}
