//! The policy store refuses pushes that break the stored test corpus, runs a pushed corpus, and
//! keeps the corpus with each version.

mod common;

use axum::http::{Method, StatusCode};
use common::{config, Call, TestApp, TestDb};
use serde_json::{json, Value};

async fn policy_admin(app: &TestApp) -> String {
    let (id, secret) = app
        .client("policy-admin", "admin:policies", &["client_credentials"])
        .await;
    app.cc_token(&id, &secret, None).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The active set with one policy's text taken out.
fn without(active: &Value, policy_id: &str) -> String {
    let text = active["policies"].as_str().unwrap();
    let start = text.find(&format!("@id(\"{policy_id}\")")).unwrap();
    let end = text[start..].find("};").unwrap() + start + 2;
    format!("{}{}", &text[..start], &text[end..])
}

async fn stored_corpus(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let admin = policy_admin(&app).await;
    let get = || Call::new(Method::GET, "/admin/v1/policies").bearer(&admin);
    let put = |body: &Value| {
        Call::new(Method::PUT, "/admin/v1/policies")
            .bearer(&admin)
            .json(body)
    };
    let active = app.send(get()).await.json();
    let stored = active["tests"].as_array().unwrap().len();
    assert!(
        stored >= 30,
        "the repository corpus was stored with the first version: {stored}"
    );

    // A set that does not validate is refused with Cedar's diagnostic, line and caret.
    let broken = json!({"schema": active["schema"], "entities": active["entities"],
        "policies": "@id(\"x\")\npermit (principal, action, resource)\nwhen { context.nope };\n"});
    let refused = app.send(put(&broken)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let message = refused.json()["error_description"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("policies:3:"), "{message}");
    assert!(
        message.contains("when { context.nope };") && message.contains('^'),
        "{message}"
    );

    // Dropping tenant isolation without a corpus: the stored corpus refuses it, naming the cases.
    let weaker = json!({"schema": active["schema"], "policies": without(&active, "tenant-isolation"),
        "entities": active["entities"]});
    let refused = app.send(put(&weaker)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let message = refused.json()["error_description"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("stored test corpus"), "{message}");
    assert!(
        message.contains("DENY/tenant-cannot-read-another-tenant.json"),
        "{message}"
    );
    assert_eq!(app.send(get()).await.json()["version"], active["version"]);

    // The same change with its own corpus that still expects isolation: refused as well.
    let with_tests = |tests: Vec<Value>| {
        let mut body = weaker.clone();
        body["tests"] = Value::Array(tests);
        body
    };
    let all: Vec<Value> = active["tests"].as_array().unwrap().clone();
    let refused = app.send(put(&with_tests(all.clone()))).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.json()["error_description"]
        .as_str()
        .unwrap()
        .contains("its own test corpus"));

    // A corpus that agrees with the change replaces the stored one.
    let agreeing: Vec<Value> = all
        .into_iter()
        .filter(|case| !case["file"].as_str().unwrap().contains("tenant"))
        .collect();
    let kept = agreeing.len();
    let accepted = app.send(put(&with_tests(agreeing))).await;
    assert_eq!(accepted.status, StatusCode::OK, "{:?}", accepted.json());
    let now_active = app.send(get()).await.json();
    assert_ne!(now_active["version"], active["version"]);
    assert_eq!(now_active["tests"].as_array().unwrap().len(), kept);

    // A push without a corpus is now checked against the new stored one: removing the MFA rule
    // breaks its DENY case.
    let no_mfa = json!({"schema": now_active["schema"],
        "policies": without(&now_active, "payments-need-mfa"), "entities": now_active["entities"]});
    let refused = app.send(put(&no_mfa)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.json()["error_description"]
        .as_str()
        .unwrap()
        .contains("DENY/payment-without-mfa.json"));
}

both_backends!(pushes_must_pass_the_stored_corpus, stored_corpus);
