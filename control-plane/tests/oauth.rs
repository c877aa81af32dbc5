//! OAuth 2.0 endpoints over SQLite and PostgreSQL.

mod common;

use axum::http::{Method, StatusCode};
use common::{config, decode_claims, Call, TestApp, TestDb, ISSUER};
use portcullis_authz::claims::ClaimRules;
use portcullis_authz::jwk::{Jwks, KeySet};
use serde_json::{json, Value};

async fn metadata_and_jwks(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let meta = app.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(meta.status, StatusCode::OK);
    let meta = meta.json();
    assert_eq!(meta["issuer"], ISSUER);
    assert_eq!(meta["token_endpoint"], format!("{ISSUER}/oauth2/token"));
    assert_eq!(meta["jwks_uri"], format!("{ISSUER}/.well-known/jwks.json"));
    let jwks = app.get("/.well-known/jwks.json").await;
    let keys = jwks.json()["keys"].as_array().unwrap().clone();
    // The active key and the pre-published next key.
    assert_eq!(keys.len(), 2, "{}", jwks.text);
    for key in &keys {
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["alg"], "EdDSA");
        assert!(key.get("d").is_none(), "private part exposed: {key}");
    }
    assert!(!jwks.text.contains("\"d\""));
}
both_backends!(metadata_and_jwks_are_public_only, metadata_and_jwks);

async fn client_credentials(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let (id, secret) = app
        .client(
            "svc",
            "api:items:read api:items:write",
            &["client_credentials"],
        )
        .await;
    // Basic, everything allowed.
    let reply = app.cc_token(&id, &secret, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.header("cache-control").as_deref(), Some("no-store"));
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "api:items:read api:items:write");
    assert!(body.get("refresh_token").is_none());
    let token = body["access_token"].as_str().unwrap();
    // The token verifies with the edge's code against the published JWKS.
    let jwks: Jwks = serde_json::from_str(&app.get("/.well-known/jwks.json").await.text).unwrap();
    let (keys, _) = KeySet::from_jwks(&jwks);
    let rules = ClaimRules {
        issuer: ISSUER.into(),
        audiences: vec!["portcullis-edge".into()],
        leeway: 0,
        max_lifetime: 3600,
    };
    let claims =
        portcullis_authz::jws::verify(token, &keys, &rules, portcullis_control_plane::now(), 8192)
            .unwrap();
    assert_eq!(claims.sub.to_string(), format!("client:{id}"));
    assert_eq!(claims.client_id, id);
    assert!(claims.sid.is_none());
    let header: Value = {
        use base64::Engine as _;
        let h = token.split('.').next().unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "EdDSA");

    // client_secret_post, scope narrowed to the allow-list.
    let reply = app
        .send(Call::new(Method::POST, "/oauth2/token").form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("scope", "api:items:read api:system:admin"),
        ]))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["scope"], "api:items:read");
    // Only scopes it may not have.
    let reply = app.cc_token(&id, &secret, Some("api:system:admin")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"], "invalid_scope");
    // Wrong secret: 401 invalid_client with a Basic challenge; the secret is not echoed.
    let reply = app.cc_token(&id, "pcs_wrong", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["error"], "invalid_client");
    assert!(reply
        .header("www-authenticate")
        .unwrap()
        .starts_with("Basic"));
    // Unknown client looks the same.
    let unknown = app.cc_token("nope", "pcs_wrong", None).await;
    assert_eq!(unknown.status, reply.status);
    assert_eq!(unknown.text, reply.text);
    // Both authentication methods at once.
    let reply = app
        .send(
            Call::new(Method::POST, "/oauth2/token")
                .basic(&id, &secret)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_secret", &secret),
                ]),
        )
        .await;
    assert_eq!(reply.json()["error"], "invalid_request");
    // A grant it may not use, and one that does not exist.
    let reply = app
        .send(
            Call::new(Method::POST, "/oauth2/token")
                .basic(&id, &secret)
                .form(&[
                    ("grant_type", "password"),
                    ("username", "x"),
                    ("password", "y"),
                ]),
        )
        .await;
    assert_eq!(reply.json()["error"], "unauthorized_client");
    let reply = app
        .send(
            Call::new(Method::POST, "/oauth2/token")
                .basic(&id, &secret)
                .form(&[("grant_type", "implicit")]),
        )
        .await;
    assert_eq!(reply.json()["error"], "unsupported_grant_type");
}
both_backends!(client_credentials_grant, client_credentials);

async fn malformed_requests(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let (id, secret) = app.client("svc", "a", &["client_credentials"]).await;
    let token_form = |body: &'static str| {
        Call::new(Method::POST, "/oauth2/token")
            .basic(&id, &secret)
            .raw("application/x-www-form-urlencoded", body)
    };
    // Repeated parameter.
    let reply = app
        .send(token_form(
            "grant_type=client_credentials&grant_type=password",
        ))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"], "invalid_request");
    // A repeated parameter whose name holds a quote, a backslash, a newline and non-ASCII: the
    // description names it within RFC 6749's error_description character set.
    let reply = app
        .send(token_form(
            "grant_type=client_credentials&x%22%5C%0A%C3%A9=1&x%22%5C%0A%C3%A9=2",
        ))
        .await;
    assert_eq!(reply.json()["error"], "invalid_request");
    let description = reply.json()["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(description.contains("`x????`"), "{description}");
    assert!(
        description
            .bytes()
            .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e)),
        "{description:?}"
    );
    // JSON instead of a form.
    let reply = app
        .send(
            Call::new(Method::POST, "/oauth2/token")
                .basic(&id, &secret)
                .json(&json!({"grant_type": "client_credentials"})),
        )
        .await;
    assert_eq!(reply.json()["error"], "invalid_request");
    // Oversized body: a clear 4xx, never a 500.
    let reply = app
        .send(
            Call::new(Method::POST, "/oauth2/token")
                .basic(&id, &secret)
                .raw(
                    "application/x-www-form-urlencoded",
                    format!(
                        "grant_type=client_credentials&scope={}",
                        "a".repeat(100_000)
                    ),
                ),
        )
        .await;
    assert!(reply.status.is_client_error(), "{}", reply.status);
    // Missing grant type, garbage Basic header.
    let reply = app
        .send(
            Call::new(Method::POST, "/oauth2/token")
                .basic(&id, &secret)
                .form(&[("scope", "a")]),
        )
        .await;
    assert_eq!(reply.json()["error"], "invalid_request");
    let reply = app
        .send(
            Call::new(Method::POST, "/oauth2/token")
                .header("authorization", "Basic !!!")
                .form(&[("grant_type", "client_credentials")]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    // Non-UTF-8 in the form.
    let reply = app
        .send(
            Call::new(Method::POST, "/oauth2/token")
                .basic(&id, &secret)
                .raw(
                    "application/x-www-form-urlencoded",
                    b"grant_type=%FF%FE".to_vec(),
                ),
        )
        .await;
    assert!(reply.status.is_client_error());
}
both_backends!(malformed_requests_get_clear_errors, malformed_requests);

async fn password_login(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let web = app
        .client_from(&portcullis_control_plane::oauth::clients::NewClient {
            name: "web",
            scopes: "api:items:read api:items:write api:reports:read",
            grants: &[
                portcullis_control_plane::oauth::grant::GrantType::Password,
                portcullis_control_plane::oauth::grant::GrantType::RefreshToken,
            ],
            roles: &["developer".into()],
            tenant: None,
            ..Default::default()
        })
        .await;
    let web = (web.0.as_str(), web.1.as_str());
    let user_id = app
        .user(
            "alice",
            "correct horse battery",
            &["developer"],
            "api:items:read api:payments:write",
        )
        .await;
    let ok = app.login(web, "alice", "correct horse battery", &[]).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let body = ok.json();
    // Scopes are the user's, narrowed to the client's allow-list.
    assert_eq!(body["scope"], "api:items:read");
    assert!(body["refresh_token"].as_str().unwrap().starts_with("pcr_"));
    let claims = decode_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], format!("user:{user_id}"));
    assert_eq!(claims["roles"], json!(["developer"]));
    assert_eq!(claims["tenant"], "acme");
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert!(claims["sid"].is_string());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );

    // Unknown user and wrong password: identical status and body.
    let wrong = app.login(web, "alice", "wrong password!", &[]).await;
    let unknown = app.login(web, "mallory", "wrong password!", &[]).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.text, unknown.text);
    assert_eq!(wrong.json()["error"], "invalid_grant");
    // No truncation: the password plus a suffix is wrong.
    let longer = app
        .login(web, "alice", "correct horse battery and more", &[])
        .await;
    assert_eq!(longer.status, StatusCode::BAD_REQUEST);

    // The audit names the user and never holds the password or tokens.
    let audit = portcullis_control_plane::audit::list(&app.state.db().pool, &Default::default())
        .await
        .unwrap();
    assert!(audit
        .iter()
        .any(|r| r.action == "login.succeeded" && r.target == format!("user:{user_id}")));
    assert!(audit.iter().any(|r| r.action == "login.failed"));
    let dump = serde_json::to_string(&audit).unwrap();
    assert!(!dump.contains("correct horse"));
    assert!(!dump.contains("pcr_"));
    assert!(!dump.contains(body["access_token"].as_str().unwrap()));
}
both_backends!(password_grant, password_login);

async fn throttling(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let web = app.client("web", "a", &["password"]).await;
    let web = (web.0.as_str(), web.1.as_str());
    app.user("bob", "correct horse battery", &[], "a").await;
    let attempt = |ip: &'static str, password: &'static str| {
        let app = app.clone();
        let (id, secret) = (web.0.to_owned(), web.1.to_owned());
        async move {
            app.send(
                Call::new(Method::POST, "/oauth2/token")
                    .basic(&id, &secret)
                    .client_ip(ip)
                    .form(&[
                        ("grant_type", "password"),
                        ("username", "bob"),
                        ("password", password),
                    ]),
            )
            .await
        }
    };
    for _ in 0..5 {
        assert_eq!(
            attempt("10.9.9.9", "guess guess").await.status,
            StatusCode::BAD_REQUEST
        );
    }
    let throttled = attempt("10.9.9.9", "correct horse battery").await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.json()["error"], "temporarily_unavailable");
    assert!(throttled.header("retry-after").is_some());
    // The real user elsewhere is not locked out.
    assert_eq!(
        attempt("192.168.7.7", "correct horse battery").await.status,
        StatusCode::OK
    );
}
both_backends!(failed_logins_are_throttled_without_lockout, throttling);

async fn refresh_rotation(db: &TestDb) {
    let app = TestApp::start(config(db, &[("PORTCULLIS_REFRESH_GRACE", "1")])).await;
    let (web_id, web_secret) = app
        .client("web", "a b", &["password", "refresh_token"])
        .await;
    let web = (web_id.as_str(), web_secret.as_str());
    let (other_id, other_secret) = app
        .client("other", "a b", &["password", "refresh_token"])
        .await;
    app.user("carol", "correct horse battery", &[], "a b").await;
    let login = app
        .login(web, "carol", "correct horse battery", &[])
        .await
        .json();
    let first = login["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |token: String, client: (String, String)| {
        let app = app.clone();
        async move {
            app.send(
                Call::new(Method::POST, "/oauth2/token")
                    .basic(&client.0, &client.1)
                    .form(&[("grant_type", "refresh_token"), ("refresh_token", &token)]),
            )
            .await
        }
    };
    let web_owned = (web_id.clone(), web_secret.clone());
    // Bound to its client.
    let stolen = refresh(first.clone(), (other_id.clone(), other_secret.clone())).await;
    assert_eq!(stolen.json()["error"], "invalid_grant");
    // Rotation.
    let rotated = refresh(first.clone(), web_owned.clone()).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let rotated = rotated.json();
    let second = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    let second_access = rotated["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        decode_claims(&second_access)["sid"],
        decode_claims(login["access_token"].as_str().unwrap())["sid"]
    );
    // An identical retry within the grace window (the client lost the answer) gets the same
    // successor, and the family lives on.
    let retry = refresh(first.clone(), web_owned.clone()).await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.text);
    assert_eq!(
        retry.json()["refresh_token"].as_str(),
        Some(second.as_str()),
        "the retry gets the same successor, not a second one"
    );
    assert_eq!(app.introspect(web, &second).await["active"], true);
    // Replay after the grace window: the whole family is revoked, at the edge too.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let reuse = refresh(first.clone(), web_owned.clone()).await;
    assert_eq!(reuse.json()["error"], "invalid_grant");
    assert_eq!(app.introspect(web, &second).await, json!({"active": false}));
    assert_eq!(
        app.introspect(web, &second_access).await,
        json!({"active": false})
    );
    let after = refresh(second.clone(), web_owned.clone()).await;
    assert_eq!(after.json()["error"], "invalid_grant");
    let sid = decode_claims(&second_access)["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let bundle = app
        .send(Call::new(Method::GET, "/plugin/v1/bundle").bearer(common::BUNDLE_CREDENTIAL))
        .await
        .json();
    assert!(bundle["revoked"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["sid"] == sid.as_str()));
    let audit = portcullis_control_plane::audit::list(&app.state.db().pool, &Default::default())
        .await
        .unwrap();
    assert!(audit.iter().any(|r| r.action == "token.reuse_detected"));
    assert!(
        audit.iter().any(|r| r.action == "token.refresh_retried"),
        "a retry within grace is told apart from a rotation"
    );
}
both_backends!(refresh_rotation_and_reuse_detection, refresh_rotation);

async fn concurrent_refresh(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let (id, secret) = app.client("web", "a", &["password", "refresh_token"]).await;
    app.user("dave", "correct horse battery", &[], "a").await;
    let login = app
        .login((&id, &secret), "dave", "correct horse battery", &[])
        .await
        .json();
    let token = login["refresh_token"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (app, id, secret, token) = (app.clone(), id.clone(), secret.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            app.send(
                Call::new(Method::POST, "/oauth2/token")
                    .basic(&id, &secret)
                    .form(&[("grant_type", "refresh_token"), ("refresh_token", &token)]),
            )
            .await
        }));
    }
    let mut successors = std::collections::BTreeSet::new();
    for task in tasks {
        let reply = task.await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        successors.insert(reply.json()["refresh_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        successors.len(),
        1,
        "one concurrent refresh rotates; the identical retries get its successor"
    );
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM refresh_tokens")
        .fetch_one(&app.state.db().pool)
        .await
        .unwrap();
    assert_eq!(rows, 2, "the first refresh token and one successor");
}
both_backends!(concurrent_refreshes_rotate_once, concurrent_refresh);

async fn revocation_and_introspection(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let (id, secret) = app.client("svc", "a", &["client_credentials"]).await;
    let (rs_id, rs_secret) = app
        .client("resource-server", "introspect", &["client_credentials"])
        .await;
    let token = app.cc_token(&id, &secret, None).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Introspection needs client authentication.
    let anonymous = app
        .send(Call::new(Method::POST, "/oauth2/introspect").form(&[("token", &token)]))
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let active = app.introspect((&rs_id, &rs_secret), &token).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], id.as_str());
    assert_eq!(active["scope"], "a");
    // Garbage is inactive, with nothing else in the body.
    assert_eq!(
        app.introspect((&rs_id, &rs_secret), "garbage").await,
        json!({"active": false})
    );
    // Another client cannot revoke it (200, nothing happens).
    let reply = app
        .send(
            Call::new(Method::POST, "/oauth2/revoke")
                .basic(&rs_id, &rs_secret)
                .form(&[("token", &token)]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        app.introspect((&rs_id, &rs_secret), &token).await["active"],
        true
    );
    // Its own client can; the revocation reaches the bundle.
    let before = app.state.published().version;
    let reply = app
        .send(
            Call::new(Method::POST, "/oauth2/revoke")
                .basic(&id, &secret)
                .form(&[("token", &token), ("token_type_hint", "access_token")]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        app.introspect((&rs_id, &rs_secret), &token).await,
        json!({"active": false})
    );
    assert!(app.state.published().version > before);
    let jti = decode_claims(&token)["jti"].as_str().unwrap().to_owned();
    let bundle = app
        .send(Call::new(Method::GET, "/plugin/v1/bundle").bearer(common::BUNDLE_CREDENTIAL))
        .await
        .json();
    assert!(bundle["revoked"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["jti"] == jti.as_str()));
    // Unknown tokens: still 200 (RFC 7009 §2.2).
    let reply = app
        .send(
            Call::new(Method::POST, "/oauth2/revoke")
                .basic(&id, &secret)
                .form(&[("token", "nothing")]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}
both_backends!(
    revocation_and_introspection_work,
    revocation_and_introspection
);

async fn userinfo_and_introspection_of_users(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let (id, secret) = app
        .client_from(&portcullis_control_plane::oauth::clients::NewClient {
            name: "web",
            scopes: "a",
            grants: &[
                portcullis_control_plane::oauth::grant::GrantType::Password,
                portcullis_control_plane::oauth::grant::GrantType::RefreshToken,
            ],
            roles: &["viewer".into()],
            tenant: None,
            ..Default::default()
        })
        .await;
    let user_id = app
        .user("erin", "correct horse battery", &["viewer", "ops"], "a")
        .await;
    let login = app
        .login((&id, &secret), "erin", "correct horse battery", &[])
        .await
        .json();
    let access = login["access_token"].as_str().unwrap();
    let info = app
        .send(Call::new(Method::GET, "/oauth2/userinfo").bearer(access))
        .await;
    assert_eq!(info.status, StatusCode::OK);
    let info = info.json();
    assert_eq!(info["sub"], format!("user:{user_id}"));
    assert_eq!(info["preferred_username"], "erin");
    let missing = app.get("/oauth2/userinfo").await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert!(missing
        .header("www-authenticate")
        .unwrap()
        .contains("invalid_token"));
    let active = app.introspect((&id, &secret), access).await;
    assert_eq!(active["username"], "erin");
    assert_eq!(active["email"], "erin@example.test");
    assert_eq!(
        active["roles"],
        json!(["viewer"]),
        "the token's roles (the client has viewer only), not the stored ones"
    );
    assert_eq!(active["tenant"], "acme");
    let refresh = app
        .introspect((&id, &secret), login["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(refresh["active"], true);
    assert_eq!(refresh["token_type"], "refresh_token");
    assert_eq!(refresh["roles"], json!(["viewer"]));
}
both_backends!(
    userinfo_and_user_introspection,
    userinfo_and_introspection_of_users
);

async fn refresh_follows_current_scopes(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let (id, secret) = app
        .client("web", "a b", &["password", "refresh_token"])
        .await;
    let user_id = app.user("quinn", "correct horse battery", &[], "a b").await;
    let login = app
        .login((&id, &secret), "quinn", "correct horse battery", &[])
        .await
        .json();
    assert_eq!(login["scope"], "a b");
    // An administrator takes scope b away; the next refresh no longer carries it.
    let mut tx = app.state.db().pool.begin().await.unwrap();
    portcullis_control_plane::identity::users::update(
        &mut tx,
        &user_id,
        &serde_json::from_value(json!({"scopes": "a"})).unwrap(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let refreshed = app
        .send(
            Call::new(Method::POST, "/oauth2/token")
                .basic(&id, &secret)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", login["refresh_token"].as_str().unwrap()),
                ]),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);
    assert_eq!(refreshed.json()["scope"], "a");
}
both_backends!(
    refresh_narrows_to_current_scopes,
    refresh_follows_current_scopes
);

async fn introspection_scope(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let (a, a_secret) = app.client("a", "x", &["client_credentials"]).await;
    let (b, b_secret) = app.client("b", "x", &["client_credentials"]).await;
    let token = app.cc_token(&a, &a_secret, None).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Its own client may look; another client without `introspect` sees nothing.
    assert_eq!(
        app.introspect((&a, &a_secret), &token).await["active"],
        true
    );
    assert_eq!(
        app.introspect((&b, &b_secret), &token).await,
        json!({"active": false})
    );
}
both_backends!(
    introspection_is_limited_to_owners_and_resource_servers,
    introspection_scope
);

async fn retry_after_successor_used(db: &TestDb) {
    let app = TestApp::start(config(db, &[("PORTCULLIS_REFRESH_GRACE", "30")])).await;
    let (id, secret) = app.client("web", "a", &["password", "refresh_token"]).await;
    app.user("erin", "correct horse battery", &[], "a").await;
    let login = app
        .login((&id, &secret), "erin", "correct horse battery", &[])
        .await
        .json();
    let refresh = |token: &str| {
        let (app, id, secret, token) = (app.clone(), id.clone(), secret.clone(), token.to_owned());
        async move {
            app.send(
                Call::new(Method::POST, "/oauth2/token")
                    .basic(&id, &secret)
                    .form(&[("grant_type", "refresh_token"), ("refresh_token", &token)]),
            )
            .await
        }
    };
    let first = login["refresh_token"].as_str().unwrap().to_owned();
    let second = refresh(&first).await.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let third = refresh(&second).await.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Inside the grace window, but the successor was already used: not a lost answer.
    let replay = refresh(&first).await;
    assert_eq!(replay.json()["error"], "invalid_grant", "{}", replay.text);
    assert_eq!(
        app.introspect((&id, &secret), &third).await,
        json!({"active": false}),
        "the family a thief may hold is revoked, not kept"
    );
}
both_backends!(
    a_replay_after_the_successor_was_used_revokes_the_family_even_within_grace,
    retry_after_successor_used
);
