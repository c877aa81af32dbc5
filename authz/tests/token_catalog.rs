//! The bad-token catalogue (security reference §1.2), each case against the real verifier.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use portcullis_authz::bundle::Snapshot;
use portcullis_authz::claims::{ClaimRules, ClaimsError};
use portcullis_authz::issue::SigningKey;
use portcullis_authz::jwk::KeySet;
use portcullis_authz::jws::{self, TokenError, DEFAULT_MAX_TOKEN_BYTES};
use serde_json::{json, Value};

fn keys() -> KeySet {
    Snapshot::from_bundle(&bundle(&[&ed_key(), &es_key(), &rs_key()], vec![]))
        .unwrap()
        .keys
}

fn rules() -> ClaimRules {
    ClaimRules {
        issuer: ISSUER.into(),
        audiences: vec![AUDIENCE.into()],
        leeway: 60,
        max_lifetime: 86_400,
    }
}

fn verify(token: &str) -> Result<(), TokenError> {
    jws::verify(token, &keys(), &rules(), NOW, DEFAULT_MAX_TOKEN_BYTES).map(|_| ())
}

fn header(alg: &str, kid: &str) -> Value {
    json!({"alg": alg, "typ": "at+jwt", "kid": kid})
}

fn signed(key: &SigningKey, header: &Value, claims: &Value) -> String {
    key.sign_raw(header.to_string().as_bytes(), claims.to_string().as_bytes())
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token whose signature segment is replaced.
fn with_signature(token: &str, signature: &str) -> String {
    let (input, _) = token.rsplit_once('.').unwrap();
    format!("{input}.{signature}")
}

#[test]
fn valid_tokens_of_every_algorithm_verify() {
    for key in [ed_key(), es_key(), rs_key()] {
        let claims = jws::verify(
            &key.sign_access_token(&claims()),
            &keys(),
            &rules(),
            NOW,
            8192,
        );
        assert_eq!(claims.map(|c| c.jti), Ok("jti-1".to_owned()), "{key:?}");
    }
}

#[test]
fn alg_none_in_any_case_is_refused() {
    for alg in ["none", "None", "NONE", "nOnE"] {
        let unsigned = format!(
            "{}.{}.",
            b64(header(alg, "ed-1").to_string().as_bytes()),
            b64(claims().to_string().as_bytes())
        );
        assert_eq!(
            verify(&unsigned),
            Err(TokenError::UnsupportedAlgorithm),
            "{alg}"
        );
    }
}

#[test]
fn hmac_with_the_public_key_is_refused() {
    use sha2::Digest as _;
    // Whatever the HMAC output, HS256 is not an accepted algorithm, so no MAC is ever computed.
    let input = format!(
        "{}.{}",
        b64(header("HS256", "ed-1").to_string().as_bytes()),
        b64(claims().to_string().as_bytes())
    );
    let fake_mac = sha2::Sha256::digest(ed_key().public_jwk().x.unwrap().as_bytes());
    assert_eq!(
        verify(&format!("{input}.{}", b64(&fake_mac))),
        Err(TokenError::UnsupportedAlgorithm)
    );
}

#[test]
fn header_alg_must_match_the_key() {
    let token = signed(&ed_key(), &header("ES256", "ed-1"), &claims());
    assert_eq!(verify(&token), Err(TokenError::AlgorithmMismatch));
    let token = signed(&es_key(), &header("RS256", "es-1"), &claims());
    assert_eq!(verify(&token), Err(TokenError::AlgorithmMismatch));
}

#[test]
fn tampered_signatures_and_encodings_are_refused() {
    let token = ed_key().sign_access_token(&claims());
    let (input, signature) = token.rsplit_once('.').unwrap();
    let mut raw = URL_SAFE_NO_PAD.decode(signature).unwrap();
    raw[10] ^= 0x01;
    assert_eq!(
        verify(&with_signature(&token, &b64(&raw))),
        Err(TokenError::BadSignature)
    );
    assert_eq!(
        verify(&with_signature(&token, &b64(&raw[..63]))),
        Err(TokenError::BadSignature)
    );
    raw[10] ^= 0x01;
    raw.push(0);
    assert_eq!(
        verify(&with_signature(&token, &b64(&raw))),
        Err(TokenError::BadSignature)
    );
    assert_eq!(verify(&format!("{token}=")), Err(TokenError::Malformed));
    assert_eq!(
        verify(&format!("{input}.{signature} ")),
        Err(TokenError::Malformed)
    );
    assert_eq!(
        verify(&format!("{input}.{signature}.")),
        Err(TokenError::Malformed)
    );
    assert_eq!(
        verify(&format!("{input}.{signature}.x.y")),
        Err(TokenError::Malformed)
    );
    assert_eq!(verify(input), Err(TokenError::Malformed));
    let with_newline = token.replacen('.', ".\n", 1);
    assert_eq!(verify(&with_newline), Err(TokenError::Malformed));
    let standard_alphabet = with_signature(&token, &signature.replace('-', "+").replace('_', "/"));
    if standard_alphabet != token {
        assert_eq!(verify(&standard_alphabet), Err(TokenError::Malformed));
    }
    // Payload swapped after signing.
    let (h, _) = input.split_once('.').unwrap();
    let forged = format!(
        "{h}.{}.{signature}",
        b64(claims_with(json!({"sub": "user:1"})).to_string().as_bytes())
    );
    assert_eq!(verify(&forged), Err(TokenError::BadSignature));
}

#[test]
fn psychic_ecdsa_signatures_are_refused() {
    // CVE-2022-21449: r = s = 0 must never verify.
    let token = es_key().sign_access_token(&claims());
    let n = hex_bytes("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    let mut r_is_n = n.clone();
    r_is_n.extend_from_slice(&[1; 32]);
    for signature in [vec![0u8; 64], r_is_n, vec![0xff; 64], vec![0u8; 72]] {
        assert_eq!(
            verify(&with_signature(&token, &b64(&signature))),
            Err(TokenError::BadSignature)
        );
    }
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn embedded_keys_and_key_urls_are_ignored() {
    let attacker = SigningKey::ed25519("attacker", [99; 32]);
    let mut hostile = header("EdDSA", "attacker");
    hostile["jku"] = json!("https://evil.example/jwks.json");
    hostile["x5u"] = json!("https://evil.example/cert.pem");
    hostile["jwk"] = serde_json::to_value(attacker.public_jwk()).unwrap();
    assert_eq!(
        verify(&signed(&attacker, &hostile, &claims())),
        Err(TokenError::UnknownKey)
    );
    hostile["kid"] = json!("ed-1");
    assert_eq!(
        verify(&signed(&attacker, &hostile, &claims())),
        Err(TokenError::BadSignature)
    );
    // A trusted kid with the right key passes even with the junk present: the junk is inert.
    assert!(verify(&signed(&ed_key(), &hostile, &claims())).is_ok());
}

#[test]
fn hostile_kids_are_plain_lookup_misses() {
    for kid in [
        "../../dev/null",
        "' OR 1=1--",
        "ed-1\u{0}",
        "еd-1",
        &"k".repeat(200),
    ] {
        let token = signed(&ed_key(), &header("EdDSA", kid), &claims());
        assert_eq!(verify(&token), Err(TokenError::UnknownKey), "{kid:?}");
    }
    let long = signed(&ed_key(), &header("EdDSA", &"k".repeat(4096)), &claims());
    assert!(matches!(
        verify(&long),
        Err(TokenError::BadKeyId | TokenError::TooLarge)
    ));
    for kid in [json!(""), json!(1), Value::Null] {
        let token = signed(
            &ed_key(),
            &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid}),
            &claims(),
        );
        assert_eq!(verify(&token), Err(TokenError::BadKeyId), "{kid}");
    }
    let no_kid = signed(
        &ed_key(),
        &json!({"alg": "EdDSA", "typ": "at+jwt"}),
        &claims(),
    );
    assert_eq!(verify(&no_kid), Err(TokenError::BadKeyId));
}

#[test]
fn header_extensions_are_refused() {
    for (name, value) in [
        ("crit", json!(["exp"])),
        ("crit", json!(["unknown"])),
        ("crit", json!([])),
        ("crit", json!("exp")),
        ("b64", json!(false)),
        ("zip", json!("DEF")),
    ] {
        let mut h = header("EdDSA", "ed-1");
        h[name] = value.clone();
        assert_eq!(
            verify(&signed(&ed_key(), &h, &claims())),
            Err(TokenError::UnsupportedExtension),
            "{name}={value}"
        );
    }
}

#[test]
fn typ_must_be_an_access_token() {
    for typ in [
        json!("JWT"),
        json!("id_token+jwt"),
        json!("at+jwt "),
        json!(null),
        json!(1),
    ] {
        let mut h = header("EdDSA", "ed-1");
        h["typ"] = typ.clone();
        assert_eq!(
            verify(&signed(&ed_key(), &h, &claims())),
            Err(TokenError::WrongType),
            "{typ}"
        );
    }
    for typ in ["AT+JWT", "application/at+jwt"] {
        let mut h = header("EdDSA", "ed-1");
        h["typ"] = json!(typ);
        assert!(verify(&signed(&ed_key(), &h, &claims())).is_ok(), "{typ}");
    }
}

#[test]
fn mistyped_dates_are_refused_through_the_verifier() {
    for bad in [
        json!("1800000900"),
        Value::Null,
        json!(1.8e9),
        json!(-5),
        json!(1e300),
    ] {
        let token = ed_key().sign_access_token(&claims_with(json!({"exp": bad.clone()})));
        let expected = if bad.is_null() {
            ClaimsError::Missing("exp")
        } else {
            ClaimsError::Malformed("exp")
        };
        assert_eq!(verify(&token), Err(TokenError::Claims(expected)), "{bad}");
    }
}

#[test]
fn expiry_leeway_and_identity_claims() {
    let expired =
        ed_key().sign_access_token(&claims_with(json!({"exp": NOW - 61, "iat": NOW - 900})));
    assert_eq!(
        verify(&expired),
        Err(TokenError::Claims(ClaimsError::Expired))
    );
    let within =
        ed_key().sign_access_token(&claims_with(json!({"exp": NOW - 59, "iat": NOW - 900})));
    assert!(verify(&within).is_ok());
    let cases = [
        (json!({"iss": "https://evil"}), ClaimsError::WrongIssuer),
        (json!({"aud": ["someone-else"]}), ClaimsError::WrongAudience),
        (json!({"sub": ""}), ClaimsError::Malformed("sub")),
    ];
    for (change, expected) in cases {
        let token = ed_key().sign_access_token(&claims_with(change.clone()));
        assert_eq!(
            verify(&token),
            Err(TokenError::Claims(expected)),
            "{change}"
        );
    }
}

#[test]
fn duplicate_names_are_refused() {
    let dup_header = br#"{"alg":"EdDSA","typ":"at+jwt","kid":"ed-1","alg":"none"}"#;
    let token = ed_key().sign_raw(dup_header, claims().to_string().as_bytes());
    assert_eq!(verify(&token), Err(TokenError::BadHeader));
    let payload = claims().to_string();
    let dup_claims = payload.replacen('{', r#"{"sub":"user:1","#, 1);
    let token = ed_key().sign_raw(
        header("EdDSA", "ed-1").to_string().as_bytes(),
        dup_claims.as_bytes(),
    );
    assert_eq!(verify(&token), Err(TokenError::BadPayload));
}

#[test]
fn hostile_payloads_fail_fast() {
    let h = header("EdDSA", "ed-1").to_string();
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let non_utf8 = b"{\"sub\":\"\xff\xfe\"}".to_vec();
    let huge_number = format!(r#"{{"exp":{}}}"#, "9".repeat(10_000));
    for payload in [
        deep.into_bytes(),
        non_utf8,
        huge_number.into_bytes(),
        b"\xef\xbb\xbf{}".to_vec(),
    ] {
        let token = ed_key().sign_raw(h.as_bytes(), &payload);
        let result = jws::verify(&token, &keys(), &rules(), NOW, 1 << 20);
        assert!(
            matches!(result, Err(TokenError::BadPayload | TokenError::Claims(_))),
            "{result:?}"
        );
    }
    for size in [64 * 1024, 1024 * 1024] {
        let token = format!(
            "{}.{}.{}",
            "a".repeat(size / 3),
            "b".repeat(size / 3),
            "c".repeat(size / 3)
        );
        assert_eq!(verify(&token), Err(TokenError::TooLarge));
    }
    assert_eq!(verify("\u{0}\u{1}"), Err(TokenError::Malformed));
    let not_utf8_header = format!("{}.{}.{}", b64(b"\xff\xff"), b64(b"{}"), b64(&[0; 64]));
    assert_eq!(verify(&not_utf8_header), Err(TokenError::BadHeader));
}
