//! Bundle signatures: the edge applies a bundle only if a key pinned in its own configuration
//! signed exactly the bytes it received.
//!
//! The rule: every `200` bundle response carries a `Portcullis-Bundle-Signature` header holding a
//! detached compact JWS (RFC 7515 Appendix F) over the body bytes as received: the protected
//! header `{"alg":"EdDSA","kid":"…","typ":"portcullis-bundle+jws"}`, an empty payload segment,
//! and an Ed25519 signature over `BASE64URL(header) "." BASE64URL(body)`. The `kid` must name a
//! key in the filter's `bundle_signing_keys`. A missing or malformed header, another algorithm
//! or type, a JOSE extension (`crit`, `b64`, `zip`), a `kid` that is not pinned, or a signature
//! that does not verify refuses the bundle, and the last good one stays in force.
//!
//! The reason: the bundle decides which token keys, policies and revocations the edge trusts.
//! Anyone who can change it in transit (a proxy, a hijacked route or DNS answer, a stolen bundle
//! credential) could otherwise add a key of their own to the JWKS and mint tokens every edge
//! accepts, or drop a revocation. The pins come from the filter configuration, never from the
//! control plane at run time: a key learnt over the same wire would protect nothing. The
//! signature proves origin and integrity, not freshness: someone on the wire can still withhold
//! new bundles (answer `304`), which TLS to the control plane and `staleness_limit_seconds`
//! address.
//!
//! The bundle-signing keys are their own keys, never token keys: a token key signs for every
//! client that gets a token, a bundle key only for the control plane's bundle endpoint, and the
//! explicit `typ` keeps a signature made for one purpose from being taken for the other.

use crate::issue::SigningKey;
use crate::json::UniqueObject;
use crate::jwk::{Algorithm, Jwk, JwkError};
use crate::jws::{check_header, decode, TokenError, MAX_KID_LEN};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::json;

/// The response header that carries the signature (lower case, as Envoy hands headers over).
pub const SIGNATURE_HEADER: &str = "portcullis-bundle-signature";
/// The `typ` of a bundle signature's protected header.
pub const SIGNATURE_TYPE: &str = "portcullis-bundle+jws";
/// Longest signature header accepted, checked before any decoding.
pub const MAX_SIGNATURE_BYTES: usize = 1024;

/// Why a bundle's signature was refused; the bundle is not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The response has no signature header.
    #[error("bundle is not signed")]
    Missing,
    /// Not `header..signature` in strict unpadded base64url, or too long.
    #[error("bundle signature is not a detached compact JWS")]
    Malformed,
    /// The protected header is not a JSON object with unique member names.
    #[error("bundle signature header is not valid JSON")]
    BadHeader,
    /// `alg` is not `EdDSA`.
    #[error("bundle signature algorithm is not EdDSA")]
    UnsupportedAlgorithm,
    /// `typ` is not `portcullis-bundle+jws`.
    #[error("bundle signature type is not {SIGNATURE_TYPE}")]
    WrongType,
    /// `crit`, `b64` or `zip` is present.
    #[error("bundle signature uses an unsupported header extension")]
    UnsupportedExtension,
    /// `kid` missing, not a string, or too long.
    #[error("bundle signature key id is missing or malformed")]
    BadKeyId,
    /// No pinned key has this `kid`.
    #[error("bundle is signed by key `{0}`, which is not in bundle_signing_keys")]
    UnpinnedKey(String),
    /// The signature does not verify over the body received.
    #[error("bundle signature does not verify (the body was altered or another key signed it)")]
    BadSignature,
    /// The body is larger than any bundle may be (refused before it is encoded and hashed).
    #[error("bundle is larger than {} bytes", crate::bundle::MAX_BUNDLE_BYTES)]
    TooLarge,
}

impl SignatureError {
    /// Short stable name for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            SignatureError::Missing => "unsigned",
            SignatureError::Malformed => "malformed",
            SignatureError::BadHeader => "bad_header",
            SignatureError::UnsupportedAlgorithm => "unsupported_alg",
            SignatureError::WrongType => "wrong_typ",
            SignatureError::UnsupportedExtension => "unsupported_extension",
            SignatureError::BadKeyId => "bad_kid",
            SignatureError::UnpinnedKey(_) => "unpinned_kid",
            SignatureError::TooLarge => "too_large",
            SignatureError::BadSignature => "bad_signature",
        }
    }
}

impl From<TokenError> for SignatureError {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::UnsupportedAlgorithm => SignatureError::UnsupportedAlgorithm,
            TokenError::WrongType => SignatureError::WrongType,
            TokenError::UnsupportedExtension => SignatureError::UnsupportedExtension,
            TokenError::BadKeyId => SignatureError::BadKeyId,
            _ => SignatureError::Malformed,
        }
    }
}

/// The header that says, signed, when the control plane last vouched for a bundle version:
/// `<unix seconds>.<detached JWS over the freshness statement>`. It comes with every `200` and
/// every `304`, so that neither an unsigned `304` nor a replayed old `200` can keep an edge from
/// going stale: the edge's freshness is the signed time, not the time a response arrived.
pub const FRESHNESS_HEADER: &str = "portcullis-bundle-freshness";

/// What a freshness header signs: the bundle version and the time.
fn freshness_statement(version: u64, at: u64) -> Vec<u8> {
    format!("portcullis-bundle-freshness:{version}:{at}").into_bytes()
}

/// The [`FRESHNESS_HEADER`] value saying `version` was current at `at` (unix seconds).
pub fn sign_freshness(key: &SigningKey, version: u64, at: u64) -> String {
    format!("{at}.{}", sign(key, &freshness_statement(version, at)))
}

/// Signs `body` as a bundle: the detached compact JWS that goes into [`SIGNATURE_HEADER`].
pub fn sign(key: &SigningKey, body: &[u8]) -> String {
    let header = json!({"alg": key.algorithm().as_str(), "kid": key.kid(), "typ": SIGNATURE_TYPE});
    sign_with_header(key, header.to_string().as_bytes(), body)
}

/// Signs `body` under an arbitrary protected header; tests use it to build hostile signatures.
pub fn sign_with_header(key: &SigningKey, header: &[u8], body: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(header);
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(body));
    let signature = URL_SAFE_NO_PAD.encode(key.sign_bytes(input.as_bytes()));
    format!("{header}..{signature}")
}

/// The bundle-signing public keys an edge trusts, from its configuration.
///
/// Verification uses ed25519-dalek's `verify_strict` rather than [`crate::ed25519`]'s tables:
/// those cost ≈ 220 KB per key per worker and pay off over thousands of token checks, while a
/// bundle is verified once per version.
#[derive(Debug, Clone, Default)]
pub struct PinnedKeys {
    keys: Vec<(String, ed25519_dalek::VerifyingKey)>,
}

impl PinnedKeys {
    /// The pins from Ed25519 JWKs (`kty: OKP`, `crv: Ed25519`, a `kid`, `x`; `alg` and `use`,
    /// when present, `EdDSA` and `sig`). All or nothing: one unusable pin is a configuration
    /// error, never a key silently left out.
    pub fn from_jwks(jwks: &[Jwk]) -> Result<Self, JwkError> {
        let mut keys: Vec<(String, ed25519_dalek::VerifyingKey)> = Vec::with_capacity(jwks.len());
        for jwk in jwks {
            let (kid, key) = pinned_key(jwk)?;
            if keys.iter().any(|(known, _)| *known == kid) {
                return Err(JwkError::DuplicateKid(kid));
            }
            keys.push((kid, key));
        }
        Ok(PinnedKeys { keys })
    }

    /// Number of pinned keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is pinned (then no bundle verifies).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks a [`FRESHNESS_HEADER`] value for `version`; returns the signed time (unix seconds).
    pub fn verify_freshness(
        &self,
        header: Option<&[u8]>,
        version: u64,
    ) -> Result<u64, SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let text = std::str::from_utf8(header).map_err(|_| SignatureError::Malformed)?;
        let (at, signature) = text.split_once('.').ok_or(SignatureError::Malformed)?;
        if at.is_empty() || at.len() > 12 || !at.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SignatureError::Malformed);
        }
        let at: u64 = at.parse().map_err(|_| SignatureError::Malformed)?;
        self.verify(
            Some(signature.as_bytes()),
            &freshness_statement(version, at),
        )?;
        Ok(at)
    }

    /// Checks the signature header value `signature` against `body`; returns the signing `kid`.
    pub fn verify(&self, signature: Option<&[u8]>, body: &[u8]) -> Result<&str, SignatureError> {
        let signature = signature.ok_or(SignatureError::Missing)?;
        if body.len() > crate::bundle::MAX_BUNDLE_BYTES {
            return Err(SignatureError::TooLarge);
        }
        if signature.len() > MAX_SIGNATURE_BYTES {
            return Err(SignatureError::Malformed);
        }
        let text = std::str::from_utf8(signature).map_err(|_| SignatureError::Malformed)?;
        let mut segments = text.split('.');
        let (Some(header_b64), Some(""), Some(signature_b64), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(SignatureError::Malformed);
        };
        let header =
            UniqueObject::parse(&decode(header_b64)?).map_err(|_| SignatureError::BadHeader)?;
        let (algorithm, kid) = check_header(&header, |typ| typ == SIGNATURE_TYPE)?;
        if algorithm != Algorithm::EdDsa {
            return Err(SignatureError::UnsupportedAlgorithm);
        }
        let (kid, key) = self
            .keys
            .iter()
            .find(|(pinned, _)| pinned == kid)
            // The kid is the sender's text and goes to the log: printable ASCII only.
            .ok_or_else(|| {
                SignatureError::UnpinnedKey(
                    kid.chars()
                        .filter(char::is_ascii_graphic)
                        .take(64)
                        .collect(),
                )
            })?;
        let signature = ed25519_dalek::Signature::from_slice(&decode(signature_b64)?)
            .map_err(|_| SignatureError::BadSignature)?;
        let input = format!("{header_b64}.{}", URL_SAFE_NO_PAD.encode(body));
        key.verify_strict(input.as_bytes(), &signature)
            .map_err(|_| SignatureError::BadSignature)?;
        Ok(kid)
    }
}

fn pinned_key(jwk: &Jwk) -> Result<(String, ed25519_dalek::VerifyingKey), JwkError> {
    let kid = jwk
        .kid
        .clone()
        .filter(|k| !k.is_empty() && k.len() <= MAX_KID_LEN)
        .ok_or(JwkError::MissingKid)?;
    if jwk.d.is_some() {
        return Err(JwkError::PrivateMaterial(kid));
    }
    if jwk.key_use.as_deref().is_some_and(|u| u != "sig") {
        return Err(JwkError::NotForSigning(kid));
    }
    let ed25519 = jwk.kty == "OKP" && jwk.crv.as_deref() == Some("Ed25519");
    if !ed25519 || jwk.alg.as_deref().is_some_and(|a| a != "EdDSA") {
        return Err(JwkError::Unsupported(kid));
    }
    let key = jwk
        .x
        .as_deref()
        .and_then(|x| URL_SAFE_NO_PAD.decode(x).ok())
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .and_then(|bytes| ed25519_dalek::VerifyingKey::from_bytes(&bytes).ok())
        .filter(|key| !key.is_weak());
    match key {
        Some(key) => Ok((kid, key)),
        None => Err(JwkError::Malformed(kid)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> SigningKey {
        SigningKey::ed25519("b-1", [5; 32])
    }

    fn pinned() -> PinnedKeys {
        PinnedKeys::from_jwks(&[signer().public_jwk()]).unwrap()
    }

    const BODY: &[u8] = br#"{"version":1}"#;

    #[test]
    fn a_signature_by_a_pinned_key_over_the_exact_body_verifies() {
        let signature = sign(&signer(), BODY);
        assert!(
            signature.contains(".."),
            "detached: the payload segment is empty"
        );
        assert_eq!(pinned().verify(Some(signature.as_bytes()), BODY), Ok("b-1"));
    }

    #[test]
    fn a_freshness_statement_verifies_only_for_its_version_and_time() {
        let key = signer();
        let pins = pinned();
        let fresh = sign_freshness(&key, 7, 1_800_000_000);
        assert_eq!(
            pins.verify_freshness(Some(fresh.as_bytes()), 7),
            Ok(1_800_000_000)
        );
        assert_eq!(
            pins.verify_freshness(Some(fresh.as_bytes()), 8),
            Err(SignatureError::BadSignature),
            "a statement for another version verifies"
        );
        let (_, signature) = fresh.split_once('.').unwrap();
        let later = format!("1900000000.{signature}");
        assert_eq!(
            pins.verify_freshness(Some(later.as_bytes()), 7),
            Err(SignatureError::BadSignature),
            "a statement whose time was moved verifies"
        );
        let stranger = sign_freshness(&SigningKey::ed25519("b-1", [6; 32]), 7, 1_800_000_000);
        assert!(pins.verify_freshness(Some(stranger.as_bytes()), 7).is_err());
        assert_eq!(pins.verify_freshness(None, 7), Err(SignatureError::Missing));
        for garbage in ["", "x.y", "-1.abc", "99999999999999.abc"] {
            assert_eq!(
                pins.verify_freshness(Some(garbage.as_bytes()), 7),
                Err(SignatureError::Malformed),
                "{garbage}"
            );
        }
    }

    #[test]
    fn every_kind_of_bad_signature_is_refused_with_its_reason() {
        let key = signer();
        let good = sign(&key, BODY);
        let header = |h: serde_json::Value| sign_with_header(&key, h.to_string().as_bytes(), BODY);
        let stranger = SigningKey::ed25519("b-1", [6; 32]);
        let (head, tail) = good.split_once("..").unwrap();
        let oversized = vec![b' '; crate::bundle::MAX_BUNDLE_BYTES + 1];
        let cases: Vec<(Option<String>, &[u8], SignatureError)> = vec![
            (None, BODY, SignatureError::Missing),
            (
                Some(good.clone()),
                br#"{"version":2}"#,
                SignatureError::BadSignature,
            ),
            (
                Some(sign(&stranger, BODY)),
                BODY,
                SignatureError::BadSignature,
            ),
            (
                Some(sign(&SigningKey::ed25519("b-9", [5; 32]), BODY)),
                BODY,
                SignatureError::UnpinnedKey("b-9".into()),
            ),
            (
                Some(format!("{head}.e30.{tail}")),
                BODY,
                SignatureError::Malformed,
            ),
            (
                Some(format!("{head}..{tail}=")),
                BODY,
                SignatureError::Malformed,
            ),
            (Some("x".repeat(2000)), BODY, SignatureError::Malformed),
            (
                Some(format!("bm90IGpzb24..{tail}")),
                BODY,
                SignatureError::BadHeader,
            ),
            (
                Some(header(
                    json!({"alg": "ES256", "kid": "b-1", "typ": SIGNATURE_TYPE}),
                )),
                BODY,
                SignatureError::UnsupportedAlgorithm,
            ),
            (
                Some(header(
                    json!({"alg": "none", "kid": "b-1", "typ": SIGNATURE_TYPE}),
                )),
                BODY,
                SignatureError::UnsupportedAlgorithm,
            ),
            (
                Some(header(
                    json!({"alg": "EdDSA", "kid": "b-1", "typ": "at+jwt"}),
                )),
                BODY,
                SignatureError::WrongType,
            ),
            (
                Some(header(
                    json!({"alg": "EdDSA", "kid": "b-1", "typ": SIGNATURE_TYPE, "b64": false}),
                )),
                BODY,
                SignatureError::UnsupportedExtension,
            ),
            (
                Some(header(json!({"alg": "EdDSA", "typ": SIGNATURE_TYPE}))),
                BODY,
                SignatureError::BadKeyId,
            ),
            (
                Some(sign(
                    &SigningKey::ed25519("b-9\nforged log line", [5; 32]),
                    BODY,
                )),
                BODY,
                SignatureError::UnpinnedKey("b-9forgedlogline".into()),
            ),
            (Some(good.clone()), &oversized, SignatureError::TooLarge),
        ];
        let pins = pinned();
        for (signature, body, expected) in cases {
            let verdict = pins.verify(signature.as_deref().map(str::as_bytes), body);
            assert_eq!(verdict, Err(expected.clone()), "{signature:?}");
            assert!(!expected.reason().is_empty());
        }
    }

    #[test]
    fn pins_must_be_usable_ed25519_public_keys() {
        let mut private = signer().public_jwk();
        private.d = Some("AAAA".into());
        let p256 = SigningKey::es256("ec", [9; 32]).unwrap().public_jwk();
        let mut no_kid = signer().public_jwk();
        no_kid.kid = None;
        let mut weak = signer().public_jwk();
        let mut identity = [0u8; 32];
        identity[0] = 1;
        weak.x = Some(URL_SAFE_NO_PAD.encode(identity));
        let mut encryption = signer().public_jwk();
        encryption.key_use = Some("enc".into());
        let cases = [
            (vec![private], JwkError::PrivateMaterial("b-1".into())),
            (vec![p256], JwkError::Unsupported("ec".into())),
            (vec![no_kid], JwkError::MissingKid),
            (vec![weak], JwkError::Malformed("b-1".into())),
            (vec![encryption], JwkError::NotForSigning("b-1".into())),
            (
                vec![signer().public_jwk(), signer().public_jwk()],
                JwkError::DuplicateKid("b-1".into()),
            ),
        ];
        for (jwks, expected) in cases {
            assert_eq!(PinnedKeys::from_jwks(&jwks).unwrap_err(), expected);
        }
        assert!(PinnedKeys::from_jwks(&[]).unwrap().is_empty());
    }
}
