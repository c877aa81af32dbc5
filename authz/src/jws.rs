//! Compact JWS access tokens: strict decoding, header rules and signature verification.
//!
//! The order matters: size and shape are checked before any decoding, the header before any
//! cryptography, and the payload is parsed only once the signature has verified, so forged tokens
//! cost as little as possible and never reach the claims parser.
//!
//! Why our own verifier and not `jsonwebtoken` (which signs the control plane's tokens): it is
//! stricter where an edge must be — one algorithm per key, fixed by the key and never by the
//! header; `typ` must be `at+jwt` (RFC 9068) so an ID token or another JWT cannot pass as an
//! access token; `crit`, `b64` and `zip` refused; duplicate JSON members refused in header and
//! payload (parsers disagree on which one wins); a size bound and strict unpadded base64url before
//! any decoding; `iat` and a bounded lifetime required — and faster in the filter: Ed25519 with
//! fixed-base tables built once per key (`ed25519.rs`) and no allocation of the claims before the
//! signature has verified. `tests/differential.rs` holds it to never accepting a token that
//! `jsonwebtoken`, configured with the same key, issuer, audience and algorithm, refuses.

use crate::claims::{AccessClaims, ClaimRules, ClaimsError};
use crate::json::UniqueObject;
use crate::jwk::{Algorithm, KeySet};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

/// Default cap on the length of a token, checked before any work.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Longest accepted `kid`.
pub const MAX_KID_LEN: usize = 256;

/// Why a token was refused. Every variant maps to `401 invalid_token`; the variant itself only
/// goes to logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Longer than the configured cap.
    #[error("token is too large")]
    TooLarge,
    /// Not three base64url segments, or not strict unpadded base64url.
    #[error("token is not a compact JWS")]
    Malformed,
    /// The JOSE header is not a JSON object with unique member names.
    #[error("token header is not valid JSON")]
    BadHeader,
    /// `alg` is missing or not an accepted asymmetric algorithm (`none`, `HS256`, …).
    #[error("algorithm is not accepted")]
    UnsupportedAlgorithm,
    /// `typ` is not `at+jwt` (RFC 9068).
    #[error("token type is not at+jwt")]
    WrongType,
    /// `crit`, `b64` or `zip` is present: extensions this verifier does not implement.
    #[error("token uses an unsupported header extension")]
    UnsupportedExtension,
    /// `kid` missing, not a string, or too long.
    #[error("key id is missing or malformed")]
    BadKeyId,
    /// No trusted key has this `kid`.
    #[error("unknown key id")]
    UnknownKey,
    /// The header's `alg` differs from the algorithm of the key it names.
    #[error("algorithm does not match the key")]
    AlgorithmMismatch,
    /// The signature does not verify.
    #[error("signature is invalid")]
    BadSignature,
    /// The payload is not a JSON object with unique member names.
    #[error("token payload is not valid JSON")]
    BadPayload,
    /// A claim is missing, mistyped or fails its check.
    #[error(transparent)]
    Claims(#[from] ClaimsError),
}

impl TokenError {
    /// Short stable name for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::TooLarge => "too_large",
            TokenError::Malformed => "malformed",
            TokenError::BadHeader => "bad_header",
            TokenError::UnsupportedAlgorithm => "unsupported_alg",
            TokenError::WrongType => "wrong_typ",
            TokenError::UnsupportedExtension => "unsupported_extension",
            TokenError::BadKeyId => "bad_kid",
            TokenError::UnknownKey => "unknown_kid",
            TokenError::AlgorithmMismatch => "alg_mismatch",
            TokenError::BadSignature => "bad_signature",
            TokenError::BadPayload => "bad_payload",
            TokenError::Claims(ClaimsError::Expired) => "expired",
            TokenError::Claims(ClaimsError::NotYetValid) => "not_yet_valid",
            TokenError::Claims(ClaimsError::WrongIssuer) => "wrong_issuer",
            TokenError::Claims(ClaimsError::WrongAudience) => "wrong_audience",
            TokenError::Claims(ClaimsError::LifetimeTooLong) => "lifetime_too_long",
            TokenError::Claims(ClaimsError::Missing(_) | ClaimsError::Malformed(_)) => "bad_claims",
        }
    }
}

/// Verifies `token` with `keys` and checks its claims against `rules` at `now`.
pub fn verify(
    token: &str,
    keys: &KeySet,
    rules: &ClaimRules,
    now: i64,
    max_bytes: usize,
) -> Result<AccessClaims, TokenError> {
    if token.len() > max_bytes {
        return Err(TokenError::TooLarge);
    }
    let mut segments = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(TokenError::Malformed);
    };
    let header = UniqueObject::parse(&decode(header_b64)?).map_err(|_| TokenError::BadHeader)?;
    let (algorithm, kid) = check_header(&header, |typ| {
        typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
    })?;
    let key = keys.get(kid).ok_or(TokenError::UnknownKey)?;
    if key.algorithm() != algorithm {
        return Err(TokenError::AlgorithmMismatch);
    }
    let signature = decode(signature_b64)?;
    let payload = decode(payload_b64)?;
    let signing_input_len = header_b64.len() + 1 + payload_b64.len();
    let signing_input = token
        .get(..signing_input_len)
        .ok_or(TokenError::Malformed)?;
    if !key.verify(signing_input.as_bytes(), &signature) {
        return Err(TokenError::BadSignature);
    }
    let payload = UniqueObject::parse(&payload).map_err(|_| TokenError::BadPayload)?;
    let claims = AccessClaims::from_object(&payload)?;
    claims.check(rules, now)?;
    Ok(claims)
}

/// Strict base64url: no padding, no whitespace, no standard-alphabet characters, canonical
/// trailing bits, non-empty.
pub(crate) fn decode(segment: &str) -> Result<Vec<u8>, TokenError> {
    if segment.is_empty() {
        return Err(TokenError::Malformed);
    }
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| TokenError::Malformed)
}

/// The JOSE header rules shared by access tokens and bundle signatures: an accepted `alg`, a
/// `typ` that `typ_ok` accepts, no extension this verifier does not implement, and a `kid`.
pub(crate) fn check_header(
    header: &UniqueObject,
    typ_ok: impl Fn(&str) -> bool,
) -> Result<(Algorithm, &str), TokenError> {
    let algorithm = match header.get("alg") {
        Some(Value::String(name)) => Algorithm::from_name(name),
        _ => None,
    }
    .ok_or(TokenError::UnsupportedAlgorithm)?;
    if !matches!(header.get("typ"), Some(Value::String(typ)) if typ_ok(typ)) {
        return Err(TokenError::WrongType);
    }
    if ["crit", "b64", "zip"]
        .iter()
        .any(|name| header.contains(name))
    {
        return Err(TokenError::UnsupportedExtension);
    }
    // `jku`, `x5u`, `jwk` and `x5c` are deliberately ignored: a token's keys only ever come from
    // the bundle, and a bundle's from the filter configuration.
    match header.get("kid") {
        Some(Value::String(kid)) if !kid.is_empty() && kid.len() <= MAX_KID_LEN => {
            Ok((algorithm, kid.as_str()))
        }
        _ => Err(TokenError::BadKeyId),
    }
}
