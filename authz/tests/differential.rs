//! The edge's verifier against `jsonwebtoken`, the well-kept crate, on the same key, issuer,
//! audience, algorithm and clock: valid tokens, every one-character mutation of them, and
//! hand-crafted hostile tokens signed with the right key. The rule: the edge never accepts a
//! token that `jsonwebtoken` refuses. (The edge may refuse more: it also requires `typ: at+jwt`,
//! `iat`, a bounded lifetime and unique JSON members, and refuses `crit`.)

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{ed_key, es_key, rs_key, with_changes, AUDIENCE, ISSUER};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use portcullis_authz::claims::ClaimRules;
use portcullis_authz::issue::SigningKey;
use portcullis_authz::jwk::{Jwks, KeySet};
use portcullis_authz::jws;
use serde_json::{json, Value};

const LEEWAY: i64 = 60;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// One key as both verifiers see it.
struct Pair {
    signer: SigningKey,
    keys: KeySet,
    decoding: DecodingKey,
    algorithm: Algorithm,
}

impl Pair {
    fn new(signer: SigningKey) -> Self {
        let jwk = signer.public_jwk();
        let part = |v: &Option<String>| v.clone().unwrap_or_default();
        let (decoding, algorithm) = match jwk.kty.as_str() {
            "OKP" => (
                DecodingKey::from_ed_components(&part(&jwk.x)).unwrap(),
                Algorithm::EdDSA,
            ),
            "EC" => (
                DecodingKey::from_ec_components(&part(&jwk.x), &part(&jwk.y)).unwrap(),
                Algorithm::ES256,
            ),
            _ => (
                DecodingKey::from_rsa_components(&part(&jwk.n), &part(&jwk.e)).unwrap(),
                Algorithm::RS256,
            ),
        };
        let (keys, rejected) = KeySet::from_jwks(&Jwks { keys: vec![jwk] });
        assert!(rejected.is_empty(), "{rejected:?}");
        Pair {
            signer,
            keys,
            decoding,
            algorithm,
        }
    }

    fn edge(&self, token: &str) -> Result<(), String> {
        let rules = ClaimRules {
            issuer: ISSUER.into(),
            audiences: vec![AUDIENCE.into()],
            leeway: LEEWAY,
            max_lifetime: 86_400,
        };
        jws::verify(token, &self.keys, &rules, now(), 16_384)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn reference(&self, token: &str) -> Result<(), String> {
        let mut validation = Validation::new(self.algorithm);
        validation.leeway = LEEWAY as u64;
        validation.validate_nbf = true;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<Value>(token, &self.decoding, &validation)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Fails if the edge accepts `token` while `jsonwebtoken` refuses it; returns whether the
    /// edge accepted.
    fn check(&self, token: &str, what: &str) -> bool {
        let edge = self.edge(token);
        if edge.is_ok() {
            if let Err(refused) = self.reference(token) {
                panic!(
                    "{what}: the edge accepted a token jsonwebtoken refuses ({refused}):\n{token}"
                );
            }
        }
        edge.is_ok()
    }

    fn header(&self) -> Value {
        json!({"alg": self.signer.algorithm().as_str(), "typ": "at+jwt", "kid": self.signer.kid()})
    }

    fn signed(&self, header: &Value, claims: &Value) -> String {
        self.signer
            .sign_raw(header.to_string().as_bytes(), claims.to_string().as_bytes())
    }
}

fn pairs() -> [Pair; 3] {
    [
        Pair::new(ed_key()),
        Pair::new(es_key()),
        Pair::new(rs_key()),
    ]
}

fn claims() -> Value {
    let now = now();
    json!({"iss": ISSUER, "sub": "user:42", "aud": [AUDIENCE], "exp": now + 900, "iat": now,
        "nbf": now, "jti": "jti-1", "client_id": "web", "scope": "api:items:read"})
}

#[test]
fn both_verifiers_accept_a_well_formed_token_of_each_algorithm() {
    for pair in pairs() {
        let token = pair.signed(&pair.header(), &claims());
        assert_eq!(pair.edge(&token), Ok(()), "{:?}", pair.algorithm);
        assert_eq!(
            pair.reference(&token),
            Ok(()),
            "jsonwebtoken accepts the edge's own tokens ({:?}): the comparison is not vacuous",
            pair.algorithm
        );
    }
}

#[test]
fn no_one_character_change_makes_the_edge_accept_what_jsonwebtoken_refuses() {
    for pair in pairs() {
        let token = pair.signed(&pair.header(), &claims());
        let mut accepted = 0;
        for (at, original) in token.char_indices() {
            for replacement in ['A', 'B', 'g', 'Q', '0', '-', '_', '.', '=', '+', '/', ' '] {
                if replacement == original {
                    continue;
                }
                let mut mutated = token.clone();
                mutated.replace_range(at..at + original.len_utf8(), &replacement.to_string());
                if pair.check(
                    &mutated,
                    &format!("{:?} char {at} → {replacement:?}", pair.algorithm),
                ) {
                    accepted += 1;
                }
            }
            let mut dropped = token.clone();
            dropped.remove(at);
            pair.check(&dropped, &format!("{:?} char {at} dropped", pair.algorithm));
        }
        for suffix in ["=", "==", ".", "A", " ", "\n"] {
            pair.check(&format!("{token}{suffix}"), &format!("suffix {suffix:?}"));
        }
        // Base64url's last character may carry unused bits: a change there that decodes to the
        // same bytes is the only kind of mutation either verifier may accept.
        assert!(
            accepted <= 8,
            "{:?}: {accepted} mutated tokens were accepted",
            pair.algorithm
        );
    }
}

#[test]
fn hostile_headers_signed_with_the_right_key_are_never_accepted_against_jsonwebtoken() {
    for pair in pairs() {
        let base = pair.header();
        let kid = pair.signer.kid().to_owned();
        let other_alg = if pair.algorithm == Algorithm::EdDSA {
            "ES256"
        } else {
            "EdDSA"
        };
        let headers = [
            json!({"alg": "none", "typ": "at+jwt", "kid": kid}),
            json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}),
            json!({"alg": other_alg, "typ": "at+jwt", "kid": kid}),
            json!({"alg": "RS384", "typ": "at+jwt", "kid": kid}),
            json!({"typ": "at+jwt", "kid": kid}),
            with_changes(base.clone(), json!({"kid": null})),
            with_changes(base.clone(), json!({"kid": "someone-else"})),
            with_changes(base.clone(), json!({"kid": 7})),
            with_changes(base.clone(), json!({"typ": null})),
            with_changes(base.clone(), json!({"typ": "JWT"})),
            with_changes(base.clone(), json!({"crit": ["exp"]})),
            with_changes(base.clone(), json!({"b64": false, "crit": ["b64"]})),
            with_changes(base.clone(), json!({"zip": "DEF"})),
            with_changes(
                base.clone(),
                json!({"jku": "https://attacker.example/jwks"}),
            ),
            with_changes(base.clone(), json!({"jwk": pair.signer.public_jwk()})),
            with_changes(
                base.clone(),
                json!({"alg": pair.signer.algorithm().as_str().to_lowercase()}),
            ),
            json!([base.clone()]),
            json!("at+jwt"),
        ];
        for header in headers {
            pair.check(
                &pair.signed(&header, &claims()),
                &format!("header {header}"),
            );
        }
        // Raw bytes the JSON values above cannot express: duplicate members, non-JSON.
        let header_text = base.to_string();
        let duplicate_alg = header_text.replacen('{', "{\"alg\":\"none\",", 1);
        for raw in [duplicate_alg.as_str(), "{", "", "null", "{}"] {
            let token = pair
                .signer
                .sign_raw(raw.as_bytes(), claims().to_string().as_bytes());
            pair.check(&token, &format!("raw header {raw:?}"));
        }
    }
}

#[test]
fn hostile_claims_signed_with_the_right_key_are_never_accepted_against_jsonwebtoken() {
    let now = now();
    let changes = [
        json!({"exp": now - 3600}),
        json!({"exp": now - LEEWAY - 1}),
        json!({"exp": null}),
        json!({"exp": (now + 900).to_string()}),
        json!({"exp": (now + 900) as f64 + 0.5}),
        json!({"exp": -1}),
        json!({"exp": i64::MAX}),
        json!({"exp": u64::MAX}),
        json!({"nbf": now + 3600}),
        json!({"nbf": now + LEEWAY + 1}),
        json!({"nbf": "now"}),
        json!({"iat": now + 3600}),
        json!({"iss": null}),
        json!({"iss": format!("{ISSUER}/")}),
        json!({"iss": ISSUER.to_uppercase()}),
        json!({"iss": [ISSUER]}),
        json!({"aud": null}),
        json!({"aud": AUDIENCE}),
        json!({"aud": []}),
        json!({"aud": ["someone-else"]}),
        json!({"aud": [AUDIENCE.to_uppercase()]}),
        json!({"aud": [[AUDIENCE]]}),
        json!({"sub": null}),
        json!({"sub": 42}),
    ];
    for pair in pairs() {
        for change in &changes {
            let token = pair.signed(&pair.header(), &with_changes(claims(), change.clone()));
            pair.check(&token, &format!("claims changed by {change}"));
        }
        // Duplicate members, which JSON parsers resolve differently.
        let text = claims().to_string();
        let twice = text.replacen('{', &format!("{{\"exp\":{},", now - 3600), 1);
        for raw in [twice.as_str(), "[]", "null", "{}"] {
            let token = pair
                .signer
                .sign_raw(pair.header().to_string().as_bytes(), raw.as_bytes());
            pair.check(&token, &format!("raw claims {raw:?}"));
        }
    }
}

#[test]
fn signatures_in_other_encodings_are_never_accepted_against_jsonwebtoken() {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    for pair in pairs() {
        let token = pair.signed(&pair.header(), &claims());
        let (input, signature) = token.rsplit_once('.').unwrap();
        let raw = URL_SAFE_NO_PAD.decode(signature).unwrap();
        let mut longer = raw.clone();
        longer.push(0);
        let mut leading_zero = vec![0];
        leading_zero.extend_from_slice(&raw);
        for (what, encoded) in [
            ("padded", URL_SAFE.encode(&raw)),
            ("standard alphabet", STANDARD.encode(&raw)),
            ("a byte longer", URL_SAFE_NO_PAD.encode(&longer)),
            ("a leading zero", URL_SAFE_NO_PAD.encode(&leading_zero)),
            (
                "a byte shorter",
                URL_SAFE_NO_PAD.encode(&raw[..raw.len() - 1]),
            ),
            ("empty", String::new()),
        ] {
            pair.check(&format!("{input}.{encoded}"), what);
        }
    }
}
