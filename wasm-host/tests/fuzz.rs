//! Whatever a client or the control plane sends, the filter never traps and only ever answers
//! with the statuses it documents.

mod common;

use common::*;
use portcullis_wasm_host::abi::HeaderMap;
use portcullis_wasm_host::{Host, Outcome};
use proptest::prelude::*;
use std::cell::RefCell;

const ANSWERS: [u32; 5] = [200, 400, 401, 403, 503];

/// Bytes Envoy can deliver in a header value (no NUL, CR or LF).
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    let byte = any::<u8>().prop_filter("not NUL/CR/LF", |b| !matches!(b, 0 | b'\r' | b'\n'));
    proptest::collection::vec(byte, 0..48)
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("authorization".to_owned()),
        Just("x-portcullis-sub".to_owned()),
        "x-portcullis-[a-z]{0,6}",
        "[!#$%&'*+.^_`|~0-9a-z-]{1,16}",
    ]
}

fn authorization() -> impl Strategy<Value = Vec<u8>> {
    let valid = token(&key());
    prop_oneof![
        Just(format!("Bearer {valid}").into_bytes()),
        (0..valid.len(), any::<u8>()).prop_map(move |(at, byte)| {
            let mut bytes = format!("Bearer {valid}").into_bytes();
            bytes[7 + at] = byte.max(1);
            bytes
        }),
        "(Bearer|bearer|Basic)? ?[ -~]{0,80}".prop_map(String::into_bytes),
        header_value(),
    ]
}

fn request_headers() -> impl Strategy<Value = HeaderMap> {
    let method = prop_oneof![
        Just("GET".to_owned()),
        Just("POST".to_owned()),
        "[ -~]{0,10}"
    ];
    let path = prop_oneof![
        "/api/items/[0-9]{1,3}",
        "/[ -~]{0,40}",
        "(/|%2[eEfF]|\\.|\\.\\.|%00|\\?|#|[a-z]){0,16}",
        "\\PC{0,24}",
    ];
    let extra = proptest::collection::vec((header_name(), header_value()), 0..6);
    let auth = proptest::option::of(authorization());
    (method, path, extra, auth).prop_map(|(method, path, extra, auth)| {
        let mut headers = vec![
            (":method".to_owned(), method.into_bytes()),
            (":path".to_owned(), path.into_bytes()),
            (":authority".to_owned(), b"edge.test".to_vec()),
        ];
        headers.extend(auth.map(|a| ("authorization".to_owned(), a)));
        headers.extend(extra);
        headers
    })
}

fn check(outcome: &Outcome) -> Result<(), TestCaseError> {
    if let Outcome::Respond(response) = outcome {
        prop_assert!(
            ANSWERS.contains(&response.status),
            "answered {}",
            response.status
        );
    }
    Ok(())
}

thread_local! {
    static READY: RefCell<Option<Host>> = const { RefCell::new(None) };
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_requests_never_trap(headers in request_headers()) {
        READY.with(|ready| {
            let mut ready = ready.borrow_mut();
            let host = ready.get_or_insert_with(common::ready);
            let outcome = host.request_raw(headers.clone());
            let outcome = outcome.map_err(|e| TestCaseError::fail(format!("{headers:?}: {e:?}")))?;
            check(&outcome)
        })?;
    }
}

fn bundle_body() -> impl Strategy<Value = Vec<u8>> {
    let good = serde_json::to_value(bundle(7, &[&key()])).unwrap();
    let text = good.to_string();
    let fields = [
        "version",
        "issuer",
        "audiences",
        "jwks",
        "policies",
        "schema",
        "entities",
        "revoked",
    ];
    let value = prop_oneof![
        Just(serde_json::Value::Null),
        any::<i64>().prop_map(serde_json::Value::from),
        "\\PC{0,40}".prop_map(serde_json::Value::from),
        proptest::collection::vec("[ -~]{0,8}", 0..3).prop_map(serde_json::Value::from),
    ];
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        (0..text.len()).prop_map(move |cut| text.as_bytes()[..cut].to_vec()),
        (proptest::sample::select(fields.to_vec()), value).prop_map(move |(field, value)| {
            let mut bundle = good.clone();
            bundle[field] = value;
            serde_json::to_vec(&bundle).unwrap()
        }),
        "(permit|forbid|\\(|\\)|principal|action|resource|when|\\{|\\}|;|,|==| |\"|@id)*".prop_map(
            |policies| {
                let mut bundle = bundle(7, &[&key()]);
                bundle.policies = policies;
                serde_json::to_vec(&bundle).unwrap()
            }
        ),
    ]
}

fn call_response() -> impl Strategy<Value = (HeaderMap, Vec<u8>)> {
    let status = prop_oneof![Just(200u16), Just(304), 100u16..600];
    let etag = proptest::option::of(header_value());
    // Unsigned, signed by the pinned key (so the parser sees every body) or garbage signatures.
    let signature = (0u8..3, header_value());
    (status, etag, bundle_body(), signature).prop_map(|(status, etag, body, signature)| {
        let mut headers = vec![(":status".to_owned(), status.to_string().into_bytes())];
        headers.extend(etag.map(|e| ("etag".to_owned(), e)));
        let signature = match signature {
            (0, _) => None,
            (1, _) => Some(bundle_signature(&body).into_bytes()),
            (_, garbage) => Some(garbage),
        };
        headers.extend(signature.map(|s| ("portcullis-bundle-signature".to_owned(), s)));
        (headers, body)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bundle_responses_never_trap_and_a_good_bundle_still_installs(
        (headers, body) in call_response(),
    ) {
        let mut host = started();
        host.tick().unwrap();
        let (call, _) = only_call(&host);
        let delivered = host.deliver(call, headers, body);
        prop_assert!(delivered.is_ok(), "{delivered:?}");
        let valid = token(&key());
        let outcome = host.request(&[(":method", "GET"), (":path", "/api/items/7"), ("authorization", &format!("Bearer {valid}"))]);
        let outcome = outcome.map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        check(&outcome)?;

        for _ in 0..100 {
            if !host.pending_calls().is_empty() {
                break;
            }
            host.advance(1_000);
            host.tick().unwrap();
        }
        let (call, _) = only_call(&host);
        respond_signed(&mut host, call, "\"good\"", &bundle_json(1_000_000, &[&key()]));
        prop_assert_eq!(status(&get(&mut host, Some(&valid), &[])), 200);
    }
}
