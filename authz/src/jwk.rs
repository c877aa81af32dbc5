//! Trusted verification keys, read from a JWKS (RFC 7517).
//!
//! Each key fixes its own algorithm: a token is verified with the algorithm of the key its `kid`
//! names, and a header that asks for anything else is refused (RFC 8725 §3.1). Only asymmetric
//! algorithms exist here, so HMAC-with-the-public-key confusion cannot be expressed at all.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::traits::PublicKeyParts as _;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::HashMap;

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// Signature algorithms the edge verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Ed25519 (RFC 8037), the default and fastest inside wasm.
    EdDsa,
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
}

impl Algorithm {
    /// The JOSE name of the algorithm.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::EdDsa => "EdDSA",
            Algorithm::Es256 => "ES256",
            Algorithm::Rs256 => "RS256",
        }
    }

    /// Parses a JOSE algorithm name; names are case-sensitive (RFC 7515 §4.1.1).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "EdDSA" => Some(Algorithm::EdDsa),
            "ES256" => Some(Algorithm::Es256),
            "RS256" => Some(Algorithm::Rs256),
            _ => None,
        }
    }
}

/// A JSON Web Key as it travels in a JWKS. Unknown members are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type: `OKP`, `EC` or `RSA`.
    pub kty: String,
    /// Key id, required: tokens select their key by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Algorithm the key is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Intended use; only `sig` (or absent) is accepted.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    /// Curve for `OKP` and `EC` keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// Public x coordinate (EC) or public key (OKP), base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// Public y coordinate (EC), base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// RSA modulus, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// Private part; its presence makes the key unacceptable in a public key set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d: Option<String>,
}

/// A JWK set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

/// Why a JWK was not accepted as a trusted key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwkError {
    /// The key has no `kid`.
    #[error("key has no `kid`")]
    MissingKid,
    /// Two keys share a `kid`.
    #[error("duplicate key id `{0}`")]
    DuplicateKid(String),
    /// `use` is present and not `sig`.
    #[error("key `{0}` is not a signing key")]
    NotForSigning(String),
    /// The key type, curve or algorithm is not one the edge verifies.
    #[error("key `{0}` has an unsupported type, curve or algorithm")]
    Unsupported(String),
    /// The key carries private parameters.
    #[error("key `{0}` contains private key material")]
    PrivateMaterial(String),
    /// A parameter is missing or badly encoded, or the key is invalid (e.g. a weak Ed25519 point).
    #[error("key `{0}` is malformed")]
    Malformed(String),
    /// RSA modulus shorter than [`MIN_RSA_BITS`].
    #[error("key `{0}` is an RSA key of {1} bits, below the {MIN_RSA_BITS}-bit minimum")]
    WeakRsa(String, usize),
}

#[derive(Debug, Clone)]
enum Verifier {
    Ed25519(crate::ed25519::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
    Rsa(rsa::pkcs1v15::VerifyingKey<Sha256>),
}

/// A key the edge trusts, bound to exactly one algorithm.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    algorithm: Algorithm,
    verifier: Verifier,
}

impl TrustedKey {
    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Checks `signature` over `message`. Malformed signatures (wrong length, zero or
    /// out-of-range ECDSA scalars, non-canonical Ed25519 `S`) simply fail.
    ///
    /// Ed25519 uses RFC 8032's cofactorless check, not ed25519-dalek's `verify_strict`: its
    /// extra checks reject small-order public keys, which [`KeySet::from_jwks`] already refuses,
    /// and small-order `R`, which nobody without the private key can get accepted for a key that
    /// is not weak. See [`crate::ed25519`] for how it is computed.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        use ed25519_dalek::Verifier as _;
        match &self.verifier {
            Verifier::Ed25519(key) => key.verify(message, signature),
            Verifier::P256(key) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify(message, &sig).is_ok()),
            Verifier::Rsa(key) => rsa::pkcs1v15::Signature::try_from(signature)
                .is_ok_and(|sig| key.verify(message, &sig).is_ok()),
        }
    }
}

/// The trusted keys, by `kid`.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, TrustedKey>,
}

impl KeySet {
    /// Builds the set from a JWKS. Keys that cannot be trusted are left out and reported, so one
    /// bad key never hides the others; duplicate `kid`s drop every key with that id.
    pub fn from_jwks(jwks: &Jwks) -> (Self, Vec<JwkError>) {
        let mut keys = HashMap::new();
        let mut rejected = Vec::new();
        let mut duplicated = Vec::new();
        for jwk in &jwks.keys {
            match trusted_key(jwk) {
                Ok((kid, key)) => {
                    if keys.insert(kid.clone(), key).is_some() {
                        duplicated.push(kid);
                    }
                }
                Err(err) => rejected.push(err),
            }
        }
        for kid in duplicated {
            keys.remove(&kid);
            rejected.push(JwkError::DuplicateKid(kid));
        }
        (KeySet { keys }, rejected)
    }

    /// The key named `kid`.
    pub fn get(&self, kid: &str) -> Option<&TrustedKey> {
        self.keys.get(kid)
    }

    /// Number of trusted keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn trusted_key(jwk: &Jwk) -> Result<(String, TrustedKey), JwkError> {
    let kid = jwk
        .kid
        .clone()
        .filter(|k| !k.is_empty())
        .ok_or(JwkError::MissingKid)?;
    if jwk.d.is_some() {
        return Err(JwkError::PrivateMaterial(kid));
    }
    if jwk.key_use.as_deref().is_some_and(|u| u != "sig") {
        return Err(JwkError::NotForSigning(kid));
    }
    let unsupported = || JwkError::Unsupported(kid.clone());
    let malformed = || JwkError::Malformed(kid.clone());
    let (algorithm, verifier) = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("OKP", Some("Ed25519")) => {
            let x: [u8; 32] = decode(jwk.x.as_deref())
                .and_then(|b| b.try_into().ok())
                .ok_or_else(malformed)?;
            let key = crate::ed25519::VerifyingKey::from_bytes(x).ok_or_else(malformed)?;
            (Algorithm::EdDsa, Verifier::Ed25519(key))
        }
        ("EC", Some("P-256")) => {
            let x = decode(jwk.x.as_deref())
                .filter(|b| b.len() == 32)
                .ok_or_else(malformed)?;
            let y = decode(jwk.y.as_deref())
                .filter(|b| b.len() == 32)
                .ok_or_else(malformed)?;
            let mut sec1 = Vec::with_capacity(65);
            sec1.push(0x04);
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).map_err(|_| malformed())?;
            (Algorithm::Es256, Verifier::P256(key))
        }
        ("RSA", None) => {
            let n = decode(jwk.n.as_deref()).ok_or_else(malformed)?;
            let e = decode(jwk.e.as_deref()).ok_or_else(malformed)?;
            let key = rsa::RsaPublicKey::new(
                rsa::BigUint::from_bytes_be(&n),
                rsa::BigUint::from_bytes_be(&e),
            )
            .map_err(|_| malformed())?;
            let bits = key.n().bits();
            if bits < MIN_RSA_BITS {
                return Err(JwkError::WeakRsa(kid, bits));
            }
            (
                Algorithm::Rs256,
                Verifier::Rsa(rsa::pkcs1v15::VerifyingKey::new(key)),
            )
        }
        _ => return Err(unsupported()),
    };
    if let Some(alg) = jwk.alg.as_deref() {
        if Algorithm::from_name(alg) != Some(algorithm) {
            return Err(unsupported());
        }
    }
    Ok((
        kid,
        TrustedKey {
            algorithm,
            verifier,
        },
    ))
}

fn decode(value: Option<&str>) -> Option<Vec<u8>> {
    value.and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issue::SigningKey;

    #[test]
    fn accepts_each_supported_key_type() {
        let keys = [
            SigningKey::ed25519("ed", [7; 32]),
            SigningKey::es256("ec", [9; 32]).unwrap(),
        ];
        let jwks = Jwks {
            keys: keys.iter().map(SigningKey::public_jwk).collect(),
        };
        let (set, rejected) = KeySet::from_jwks(&jwks);
        assert!(rejected.is_empty(), "{rejected:?}");
        assert_eq!(
            set.get("ed").map(TrustedKey::algorithm),
            Some(Algorithm::EdDsa)
        );
        assert_eq!(
            set.get("ec").map(TrustedKey::algorithm),
            Some(Algorithm::Es256)
        );
    }

    #[test]
    fn refuses_private_material_wrong_use_and_mismatched_alg() {
        let mut private = SigningKey::ed25519("a", [1; 32]).public_jwk();
        private.d = Some("AAAA".into());
        let mut encryption = SigningKey::ed25519("b", [2; 32]).public_jwk();
        encryption.key_use = Some("enc".into());
        let mut wrong_alg = SigningKey::ed25519("c", [3; 32]).public_jwk();
        wrong_alg.alg = Some("ES256".into());
        let mut no_kid = SigningKey::ed25519("d", [4; 32]).public_jwk();
        no_kid.kid = None;
        let hmac = Jwk {
            kty: "oct".into(),
            kid: Some("e".into()),
            ..Jwk::default()
        };
        let (set, rejected) = KeySet::from_jwks(&Jwks {
            keys: vec![private, encryption, wrong_alg, no_kid, hmac],
        });
        assert!(set.is_empty());
        assert_eq!(
            rejected,
            vec![
                JwkError::PrivateMaterial("a".into()),
                JwkError::NotForSigning("b".into()),
                JwkError::Unsupported("c".into()),
                JwkError::MissingKid,
                JwkError::Unsupported("e".into()),
            ]
        );
    }

    #[test]
    fn duplicate_kids_drop_both_keys() {
        let a = SigningKey::ed25519("same", [1; 32]).public_jwk();
        let b = SigningKey::ed25519("same", [2; 32]).public_jwk();
        let (set, rejected) = KeySet::from_jwks(&Jwks { keys: vec![a, b] });
        assert!(set.get("same").is_none());
        assert_eq!(rejected, vec![JwkError::DuplicateKid("same".into())]);
    }

    /// Ed25519 group order L, little-endian.
    const ED25519_ORDER: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    /// Adds L to the little-endian scalar `s`: the same point equation, a non-canonical encoding.
    fn plus_order(s: &[u8]) -> Vec<u8> {
        let mut carry = 0u16;
        s.iter()
            .zip(ED25519_ORDER)
            .map(|(a, b)| {
                let sum = u16::from(*a) + u16::from(b) + carry;
                carry = sum >> 8;
                (sum & 0xff) as u8
            })
            .collect()
    }

    #[test]
    fn ed25519_accepts_only_canonical_untampered_signatures() {
        // Weak keys are refused at load, so verification can skip verify_strict's per-signature
        // small-order checks; these are the rules it must still keep.
        let signer = SigningKey::ed25519("ed", [7; 32]);
        let (set, _) = KeySet::from_jwks(&Jwks {
            keys: vec![signer.public_jwk()],
        });
        let key = set.get("ed").unwrap();
        let message = b"header.payload";
        let signature = signer.sign_bytes(message);
        assert!(key.verify(message, &signature));
        assert!(!key.verify(b"header.payloaD", &signature));

        let (r, s) = signature.split_at(32);
        // S < 2^252 + small, so S + L stays below 2^253: a verifier that only checked the top
        // three bits (ed25519-dalek's `legacy_compatibility`) would accept it.
        assert_eq!(s[31] & 0xf0, 0, "this S is below 2^252");
        let non_canonical = [r, &plus_order(s)].concat();
        assert!(
            !key.verify(message, &non_canonical),
            "S + L must be refused"
        );

        // R as the identity (a small-order point) with S = 0, the all-zero signature, and every
        // single-bit flip.
        let mut identity_r = vec![0u8; 64];
        identity_r[0] = 1;
        assert!(!key.verify(message, &identity_r));
        assert!(!key.verify(message, &[0u8; 64]));
        for bit in 0..512 {
            let mut flipped = signature.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(!key.verify(message, &flipped), "bit {bit} flipped");
        }
        assert!(!key.verify(message, &signature[..63]));
    }

    #[test]
    fn refuses_weak_and_malformed_keys() {
        // The identity point is a small-order Ed25519 key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = Jwk {
            kty: "OKP".into(),
            crv: Some("Ed25519".into()),
            kid: Some("weak".into()),
            x: Some(URL_SAFE_NO_PAD.encode(identity)),
            ..Jwk::default()
        };
        let short = Jwk {
            kty: "RSA".into(),
            kid: Some("rsa1024".into()),
            n: Some(URL_SAFE_NO_PAD.encode([0xff; 128])),
            e: Some(URL_SAFE_NO_PAD.encode([1, 0, 1])),
            ..Jwk::default()
        };
        let off_curve = Jwk {
            kty: "EC".into(),
            crv: Some("P-256".into()),
            kid: Some("off".into()),
            x: Some(URL_SAFE_NO_PAD.encode([1; 32])),
            y: Some(URL_SAFE_NO_PAD.encode([1; 32])),
            ..Jwk::default()
        };
        let (set, rejected) = KeySet::from_jwks(&Jwks {
            keys: vec![weak, short, off_curve],
        });
        assert!(set.is_empty());
        assert_eq!(
            rejected,
            vec![
                JwkError::Malformed("weak".into()),
                JwkError::WeakRsa("rsa1024".into(), 1024),
                JwkError::Malformed("off".into()),
            ]
        );
    }
}
