//! Browser sign-in: the authorization endpoint, the hosted login page and the code exchange
//! (RFC 6749 §4.1 with PKCE, RFC 7636), over SQLite and PostgreSQL. The browser is played by
//! the test: it follows the pages' forms as a browser would, cookie and hidden fields included.

mod common;

use axum::http::{Method, StatusCode};
use common::{
    access_token, config, decode_claims, enrol_totp, Call, Reply, TestApp, TestDb, ISSUER,
};
use portcullis_control_plane::oauth::clients::NewClient;
use portcullis_control_plane::oauth::grant::GrantType;
use portcullis_control_plane::oauth::registration::AuthMethod;
use portcullis_test_support::html::hidden_fields;
use serde_json::json;
use std::collections::HashMap;

const CALLBACK: &str = "https://app.example.test/callback";
const PASSWORD: &str = "correct horse battery";
// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A confidential web client allowed the browser grant and refresh.
async fn web_client(app: &TestApp, name: &str) -> (String, String) {
    app.client_from(&NewClient {
        name,
        scopes: "api:items:read api:items:write self",
        grants: &[GrantType::AuthorizationCode, GrantType::RefreshToken],
        roles: &["viewer".into()],
        redirect_uris: &[CALLBACK.to_owned(), "http://127.0.0.1/native".to_owned()],
        ..Default::default()
    })
    .await
}

async fn started(db: &TestDb) -> (TestApp, (String, String), String) {
    let app = TestApp::start(config(db, &[])).await;
    let client = web_client(&app, "web").await;
    let user = app
        .user("alice", PASSWORD, &["viewer"], "api:items:read self")
        .await;
    (app, client, user)
}

fn query(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The standard authorization request of `client_id`, with `changes` (an empty value removes
/// a parameter).
fn request(client_id: &str, changes: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", CALLBACK),
        ("scope", "openid api:items:read"),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    for (name, value) in changes {
        pairs.retain(|(n, _)| n != name);
        if !value.is_empty() {
            pairs.push((name, value));
        }
    }
    query(&pairs)
}

async fn authorize(app: &TestApp, query: &str) -> Reply {
    app.send(Call::new(Method::GET, "/oauth2/authorize").uri_query(query))
        .await
}

/// The `name=value` of the login cookie a page set.
fn cookie_of(reply: &Reply) -> String {
    let set = reply
        .header("set-cookie")
        .expect("the page sets its login cookie");
    set.split(';').next().unwrap().to_owned()
}

/// Posts `page`'s form with `fields` added, as the browser holding `cookie` would.
async fn submit(app: &TestApp, page: &Reply, cookie: &str, fields: &[(&str, &str)]) -> Reply {
    let mut params = hidden_fields(&page.text);
    params.extend(
        fields
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    );
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    app.send(
        Call::new(Method::POST, "/oauth2/login")
            .header("cookie", cookie)
            .form(&pairs),
    )
    .await
}

/// Where a 303 sends the browser, and its query parameters.
fn redirected(reply: &Reply) -> (String, HashMap<String, String>) {
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text);
    let location = reply.header("location").expect("a redirect has a Location");
    let (base, query) = location.split_once('?').unwrap_or((&location, ""));
    let params = form_urlencoded::parse(query.as_bytes())
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    (base.to_owned(), params)
}

/// Signs `username` in through the login page; the code from the redirect.
async fn code_for(app: &TestApp, query: &str, username: &str, password: &str) -> String {
    let page = authorize(app, query).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let cookie = cookie_of(&page);
    let done = submit(
        app,
        &page,
        &cookie,
        &[("username", username), ("password", password)],
    )
    .await;
    let (base, params) = redirected(&done);
    assert_eq!(base, CALLBACK);
    params["code"].clone()
}

async fn exchange(app: &TestApp, client: &(String, String), code: &str, verifier: &str) -> Reply {
    app.send(
        Call::new(Method::POST, "/oauth2/token")
            .basic(&client.0, &client.1)
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", verifier),
            ]),
    )
    .await
}

async fn refresh(app: &TestApp, client: &(String, String), token: &str) -> Reply {
    app.send(
        Call::new(Method::POST, "/oauth2/token")
            .basic(&client.0, &client.1)
            .form(&[("grant_type", "refresh_token"), ("refresh_token", token)]),
    )
    .await
}

async fn a_user_signs_in_on_the_login_page_and_the_code_becomes_tokens(db: &TestDb) {
    let (app, client, user) = started(db).await;
    let page = authorize(&app, &request(&client.0, &[])).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(
        page.text.contains("name=\"password\""),
        "the login form: {}",
        page.text
    );
    let cookie = cookie_of(&page);
    let done = submit(
        &app,
        &page,
        &cookie,
        &[("username", "alice"), ("password", PASSWORD)],
    )
    .await;
    let (base, params) = redirected(&done);
    assert_eq!(base, CALLBACK, "back to the registered redirect URI");
    assert_eq!(params["state"], "st-123", "state comes back as sent");
    assert_eq!(params["iss"], ISSUER, "RFC 9207 iss names this issuer");
    let tokens = exchange(&app, &client, &params["code"], VERIFIER).await;
    let access = access_token(&tokens);
    let claims = decode_claims(&access);
    assert_eq!(claims["sub"], format!("user:{user}"));
    assert_eq!(claims["client_id"], client.0);
    assert_eq!(claims["amr"], json!(["pwd"]), "signed in with a password");
    assert_eq!(
        claims["scope"], "api:items:read",
        "openid asks for identity, not access"
    );
    assert!(claims["sid"].is_string(), "the token names its session");
    let refreshed = refresh(
        &app,
        &client,
        tokens.json()["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        refreshed.status,
        StatusCode::OK,
        "the refresh token works: {}",
        refreshed.text
    );
}
both_backends!(
    a_user_signs_in_on_the_login_page_and_the_code_becomes_tokens_on,
    a_user_signs_in_on_the_login_page_and_the_code_becomes_tokens
);

async fn an_unknown_client_or_an_unregistered_redirect_uri_gets_a_page_and_no_redirect(
    db: &TestDb,
) {
    let (app, client, _) = started(db).await;
    let mut cases = vec![
        request("no-such-client", &[]),
        request(&client.0, &[("client_id", "")]),
    ];
    for uri in [
        "https://app.example.test/callback/extra",
        "https://app.example.test/callback?x=1",
        "https://APP.example.test/callback",
        "https://app.example.test/Callback",
        "https://app.example.test/callback/",
        "https://app.example.test:8443/callback",
        "http://app.example.test/callback",
        "https://evil.example/callback",
        "http://127.0.0.1/native/extra",
    ] {
        cases.push(request(&client.0, &[("redirect_uri", uri)]));
    }
    for case in cases {
        let reply = authorize(&app, &case).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{case}: {}",
            reply.text
        );
        assert_eq!(reply.header("location"), None, "{case} must not redirect");
        assert!(
            reply
                .header("content-type")
                .unwrap()
                .starts_with("text/html"),
            "{case}: an error page"
        );
    }
    // A native app's loopback redirect matches on any port (RFC 8252 §7.3).
    let native = authorize(
        &app,
        &request(
            &client.0,
            &[("redirect_uri", "http://127.0.0.1:49152/native")],
        ),
    )
    .await;
    assert_eq!(native.status, StatusCode::OK, "{}", native.text);
}
both_backends!(
    an_unknown_client_or_an_unregistered_redirect_uri_gets_a_page_and_no_redirect_on,
    an_unknown_client_or_an_unregistered_redirect_uri_gets_a_page_and_no_redirect
);

async fn requests_without_s256_pkce_go_back_to_the_client_refused(db: &TestDb) {
    let (app, client, _) = started(db).await;
    for (changes, error) in [
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("code_challenge", "short")], "invalid_request"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("scope", "admin:full")], "invalid_scope"),
        (vec![("prompt", "none")], "login_required"),
    ] {
        let reply = authorize(&app, &request(&client.0, &changes)).await;
        let (base, params) = redirected(&reply);
        assert_eq!(base, CALLBACK, "{changes:?}");
        assert_eq!(params["error"], error, "{changes:?}");
        assert_eq!(params["state"], "st-123", "{changes:?}: state comes back");
        assert!(!params.contains_key("code"), "{changes:?}: no code");
    }
}
both_backends!(
    requests_without_s256_pkce_go_back_to_the_client_refused_on,
    requests_without_s256_pkce_go_back_to_the_client_refused
);

async fn a_code_works_only_for_its_client_redirect_uri_and_verifier_and_only_once(db: &TestDb) {
    let (app, client, _) = started(db).await;
    let other = web_client(&app, "other").await;
    let code = code_for(&app, &request(&client.0, &[]), "alice", PASSWORD).await;
    let wrong_verifier = exchange(&app, &client, &code, &VERIFIER.replace('d', "e")).await;
    assert_eq!(wrong_verifier.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong_verifier.json()["error"], "invalid_grant");
    let after = exchange(&app, &client, &code, VERIFIER).await;
    assert_eq!(
        after.json()["error"],
        "invalid_grant",
        "a failed attempt uses the code up"
    );

    let code = code_for(&app, &request(&client.0, &[]), "alice", PASSWORD).await;
    let at_other = exchange(&app, &other, &code, VERIFIER).await;
    assert_eq!(
        at_other.json()["error"],
        "invalid_grant",
        "client A's code at client B"
    );

    let code = code_for(&app, &request(&client.0, &[]), "alice", PASSWORD).await;
    let elsewhere = app
        .send(
            Call::new(Method::POST, "/oauth2/token")
                .basic(&client.0, &client.1)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", "http://127.0.0.1/native"),
                    ("code_verifier", VERIFIER),
                ]),
        )
        .await;
    assert_eq!(
        elsewhere.json()["error"],
        "invalid_grant",
        "another redirect URI"
    );

    let missing = app
        .send(
            Call::new(Method::POST, "/oauth2/token")
                .basic(&client.0, &client.1)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", "pcc_nothing"),
                    ("redirect_uri", CALLBACK),
                ]),
        )
        .await;
    assert_eq!(
        missing.json()["error"],
        "invalid_request",
        "no verifier: {}",
        missing.text
    );
}
both_backends!(
    a_code_works_only_for_its_client_redirect_uri_and_verifier_and_only_once_on,
    a_code_works_only_for_its_client_redirect_uri_and_verifier_and_only_once
);

async fn a_replayed_code_is_refused_and_ends_what_its_first_exchange_opened(db: &TestDb) {
    let (app, client, _) = started(db).await;
    let code = code_for(&app, &request(&client.0, &[]), "alice", PASSWORD).await;
    let first = exchange(&app, &client, &code, VERIFIER).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let replay = exchange(&app, &client, &code, VERIFIER).await;
    assert_eq!(replay.json()["error"], "invalid_grant", "{}", replay.text);
    let refreshed = refresh(
        &app,
        &client,
        first.json()["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        refreshed.json()["error"],
        "invalid_grant",
        "the first exchange's session ended: {}",
        refreshed.text
    );
}
both_backends!(
    a_replayed_code_is_refused_and_ends_what_its_first_exchange_opened_on,
    a_replayed_code_is_refused_and_ends_what_its_first_exchange_opened
);

async fn the_login_form_needs_the_browsers_own_csrf_token(db: &TestDb) {
    let (app, client, _) = started(db).await;
    let page = authorize(&app, &request(&client.0, &[])).await;
    let cookie = cookie_of(&page);
    let credentials = [("username", "alice"), ("password", PASSWORD)];
    let without_cookie = app
        .send(
            Call::new(Method::POST, "/oauth2/login").form(
                &hidden_fields(&page.text)
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .chain(credentials)
                    .collect::<Vec<_>>(),
            ),
        )
        .await;
    assert_eq!(without_cookie.status, StatusCode::FORBIDDEN, "no cookie");
    // Another browser's cookie (an attacker's own login page) does not fit this form.
    let other_page = authorize(&app, &request(&client.0, &[])).await;
    let other_cookie = cookie_of(&other_page);
    assert_ne!(other_cookie, cookie);
    let crossed = submit(&app, &page, &other_cookie, &credentials).await;
    assert_eq!(
        crossed.status,
        StatusCode::FORBIDDEN,
        "another browser's token"
    );
    let done = submit(&app, &page, &cookie, &credentials).await;
    redirected(&done);
}
both_backends!(
    the_login_form_needs_the_browsers_own_csrf_token_on,
    the_login_form_needs_the_browsers_own_csrf_token
);

async fn the_login_page_keeps_out_of_frames_caches_and_referrers(db: &TestDb) {
    let (app, client, _) = started(db).await;
    let page = authorize(&app, &request(&client.0, &[])).await;
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(page.header("x-frame-options").as_deref(), Some("DENY"));
    assert_eq!(
        page.header("referrer-policy").as_deref(),
        Some("no-referrer")
    );
    assert_eq!(page.header("cache-control").as_deref(), Some("no-store"));
    let cookie = page.header("set-cookie").unwrap();
    for flag in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(cookie.contains(flag), "cookie lacks {flag}: {cookie}");
    }
    assert!(
        cookie.starts_with("__Host-"),
        "an https issuer's cookie is __Host- prefixed: {cookie}"
    );
    assert!(
        page.text.contains("<label for=\"username\">"),
        "labelled fields"
    );
}
both_backends!(
    the_login_page_keeps_out_of_frames_caches_and_referrers_on,
    the_login_page_keeps_out_of_frames_caches_and_referrers
);

async fn wrong_credentials_get_the_same_answer_and_no_code(db: &TestDb) {
    let (app, client, _) = started(db).await;
    let mut answers = Vec::new();
    for (username, password) in [("alice", "wrong password"), ("nobody", PASSWORD)] {
        let page = authorize(&app, &request(&client.0, &[])).await;
        let cookie = cookie_of(&page);
        let reply = submit(
            &app,
            &page,
            &cookie,
            &[("username", username), ("password", password)],
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{username}");
        assert_eq!(reply.header("location"), None, "{username}: no redirect");
        answers.push(reply.text.replace(username, "USER"));
    }
    assert_eq!(
        answers[0]
            .split("class=\"error\"")
            .nth(1)
            .map(|s| s.split('<').next()),
        answers[1]
            .split("class=\"error\"")
            .nth(1)
            .map(|s| s.split('<').next()),
        "a wrong password and an unknown user read the same"
    );
}
both_backends!(
    wrong_credentials_get_the_same_answer_and_no_code_on,
    wrong_credentials_get_the_same_answer_and_no_code
);

async fn a_user_with_totp_gives_the_code_on_a_second_page(db: &TestDb) {
    let (app, client, user) = started(db).await;
    let (password_id, password_secret) = app.client("cli", "self", &["password"]).await;
    let access = access_token(
        &app.login(
            (&password_id, &password_secret),
            "alice",
            PASSWORD,
            &[("scope", "self")],
        )
        .await,
    );
    let (key, step) = enrol_totp(&app, &access, PASSWORD).await;

    let page = authorize(&app, &request(&client.0, &[])).await;
    let cookie = cookie_of(&page);
    let code_page = submit(
        &app,
        &page,
        &cookie,
        &[("username", "alice"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(code_page.status, StatusCode::OK, "{}", code_page.text);
    assert!(
        code_page.text.contains("name=\"otp\""),
        "the code step: {}",
        code_page.text
    );
    assert_eq!(
        code_page.header("location"),
        None,
        "no code before the second factor"
    );
    let wrong = submit(&app, &code_page, &cookie, &[("otp", "000000")]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.text);
    let (otp, _) = common::totp_code_after(&key, step).await;
    let done = submit(&app, &code_page, &cookie, &[("otp", &otp)]).await;
    let (_, params) = redirected(&done);
    let claims = decode_claims(&access_token(
        &exchange(&app, &client, &params["code"], VERIFIER).await,
    ));
    assert_eq!(claims["sub"], format!("user:{user}"));
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
}
both_backends!(
    a_user_with_totp_gives_the_code_on_a_second_page_on,
    a_user_with_totp_gives_the_code_on_a_second_page
);

async fn a_disabled_users_code_cannot_be_exchanged(db: &TestDb) {
    let (app, client, user) = started(db).await;
    let code = code_for(&app, &request(&client.0, &[]), "alice", PASSWORD).await;
    let admin = app.admin_token().await;
    let disabled = app
        .send(Call::new(Method::POST, &format!("/admin/v1/users/{user}/disable")).bearer(&admin))
        .await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.text);
    let reply = exchange(&app, &client, &code, VERIFIER).await;
    assert_eq!(reply.json()["error"], "invalid_grant", "{}", reply.text);
}
both_backends!(
    a_disabled_users_code_cannot_be_exchanged_on,
    a_disabled_users_code_cannot_be_exchanged
);

async fn a_public_client_exchanges_its_code_with_pkce_and_no_secret(db: &TestDb) {
    let (app, _, _) = started(db).await;
    let (spa, _) = app
        .client_from(&NewClient {
            name: "spa",
            scopes: "api:items:read",
            grants: &[GrantType::AuthorizationCode, GrantType::RefreshToken],
            redirect_uris: &[CALLBACK.to_owned()],
            auth_method: AuthMethod::None,
            ..Default::default()
        })
        .await;
    let code = code_for(&app, &request(&spa, &[]), "alice", PASSWORD).await;
    let reply = app
        .send(Call::new(Method::POST, "/oauth2/token").form(&[
            ("grant_type", "authorization_code"),
            ("client_id", &spa),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ]))
        .await;
    let claims = decode_claims(&access_token(&reply));
    assert_eq!(claims["client_id"], spa);
    let refreshed = app
        .send(Call::new(Method::POST, "/oauth2/token").form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &spa),
            (
                "refresh_token",
                reply.json()["refresh_token"].as_str().unwrap(),
            ),
        ]))
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);
    assert_ne!(
        refreshed.json()["refresh_token"],
        reply.json()["refresh_token"],
        "a public client's refresh token rotates"
    );
    // Naming a public client does not open the grants that need a secret.
    let cc = app
        .send(
            Call::new(Method::POST, "/oauth2/token")
                .form(&[("grant_type", "client_credentials"), ("client_id", &spa)]),
        )
        .await;
    assert_eq!(cc.status, StatusCode::UNAUTHORIZED, "{}", cc.text);
    // A confidential client cannot leave its secret out.
    let (web, _) = web_client(&app, "web-2").await;
    let code = code_for(&app, &request(&web, &[]), "alice", PASSWORD).await;
    let no_secret = app
        .send(Call::new(Method::POST, "/oauth2/token").form(&[
            ("grant_type", "authorization_code"),
            ("client_id", &web),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ]))
        .await;
    assert_eq!(
        no_secret.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        no_secret.text
    );
}
both_backends!(
    a_public_client_exchanges_its_code_with_pkce_and_no_secret_on,
    a_public_client_exchanges_its_code_with_pkce_and_no_secret
);

async fn registration_refuses_ambiguous_redirect_uris_and_secretless_machine_clients(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let admin = app.admin_token().await;
    let create = |body: serde_json::Value| {
        let admin = admin.clone();
        let app = &app;
        async move {
            app.send(
                Call::new(Method::POST, "/admin/v1/clients")
                    .bearer(&admin)
                    .json(&body),
            )
            .await
        }
    };
    for uri in [
        "https://a.example/cb#x",
        "https://*.example/cb",
        "http://a.example/cb",
        "cb",
    ] {
        let reply = create(
            json!({"name": "bad", "grant_types": ["authorization_code"], "redirect_uris": [uri]}),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{uri}: {}",
            reply.text
        );
    }
    let no_uri = create(json!({"name": "bad", "grant_types": ["authorization_code"]})).await;
    assert_eq!(
        no_uri.status,
        StatusCode::BAD_REQUEST,
        "the code grant needs a redirect URI"
    );
    let machine = create(json!({"name": "bad", "grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"})).await;
    assert_eq!(
        machine.status,
        StatusCode::BAD_REQUEST,
        "a public client cannot use client_credentials"
    );
    let spa = create(json!({
        "name": "spa", "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"
    }))
    .await;
    assert_eq!(spa.status, StatusCode::CREATED, "{}", spa.text);
    assert!(
        spa.json().get("client_secret").is_none(),
        "a public client gets no secret"
    );
    assert_eq!(spa.json()["client"]["redirect_uris"], json!([CALLBACK]));
    let id = spa.json()["client_id"].as_str().unwrap().to_owned();
    let rotate = app
        .send(
            Call::new(
                Method::POST,
                &format!("/admin/v1/clients/{id}/rotate-secret"),
            )
            .bearer(&admin),
        )
        .await;
    assert_eq!(rotate.status, StatusCode::CONFLICT, "{}", rotate.text);
}
both_backends!(
    registration_refuses_ambiguous_redirect_uris_and_secretless_machine_clients_on,
    registration_refuses_ambiguous_redirect_uris_and_secretless_machine_clients
);

async fn the_login_page_is_throttled_like_every_sign_in(db: &TestDb) {
    let (app, client, _) = started(db).await;
    let page = authorize(&app, &request(&client.0, &[])).await;
    let cookie = cookie_of(&page);
    let mut throttled = None;
    for attempt in 1..=60 {
        let reply = submit(
            &app,
            &page,
            &cookie,
            &[("username", "alice"), ("password", "guess")],
        )
        .await;
        match reply.status {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => {
                throttled = Some(attempt);
                assert!(
                    reply.header("retry-after").is_some(),
                    "429 says when to retry"
                );
                break;
            }
            other => panic!("attempt {attempt}: {other} {}", reply.text),
        }
    }
    assert!(
        throttled.is_some(),
        "60 wrong passwords in a row were never throttled"
    );
    let right = submit(
        &app,
        &page,
        &cookie,
        &[("username", "alice"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(
        right.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the lockout holds for the right password too: {}",
        right.text
    );
}
both_backends!(
    the_login_page_is_throttled_like_every_sign_in_on,
    the_login_page_is_throttled_like_every_sign_in
);

/// Signs in on the login page; the code and the sign-in session cookie (`name=value`).
async fn sign_in_with_session(
    app: &TestApp,
    query: &str,
    session: Option<&str>,
) -> (String, String) {
    let page = authorize(app, query).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let mut cookie = cookie_of(&page);
    if let Some(session) = session {
        cookie = format!("{cookie}; {session}");
    }
    let done = submit(
        app,
        &page,
        &cookie,
        &[("username", "alice"), ("password", PASSWORD)],
    )
    .await;
    let set = done
        .header("set-cookie")
        .expect("a sign-in sets the session cookie");
    for flag in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(set.contains(flag), "the session cookie lacks {flag}: {set}");
    }
    assert!(set.starts_with("__Host-portcullis-session="), "{set}");
    let (_, params) = redirected(&done);
    (
        params["code"].clone(),
        set.split(';').next().unwrap().to_owned(),
    )
}

async fn authorize_with(app: &TestApp, query: &str, session: &str) -> Reply {
    app.send(
        Call::new(Method::GET, "/oauth2/authorize")
            .uri_query(query)
            .header("cookie", session),
    )
    .await
}

async fn a_live_sign_in_session_skips_the_login_page_for_another_client(db: &TestDb) {
    let (app, client, user) = started(db).await;
    let other = web_client(&app, "other").await;
    let (_, session) = sign_in_with_session(&app, &request(&client.0, &[]), None).await;
    let reply = authorize_with(&app, &request(&other.0, &[]), &session).await;
    let (base, params) = redirected(&reply);
    assert_eq!(base, CALLBACK, "single sign-on: straight back with a code");
    assert_eq!(params["state"], "st-123");
    let claims = decode_claims(&access_token(
        &exchange(&app, &other, &params["code"], VERIFIER).await,
    ));
    assert_eq!(claims["sub"], format!("user:{user}"));
    assert_eq!(claims["client_id"], other.0);
    assert_eq!(
        claims["amr"],
        json!(["pwd"]),
        "the session's sign-in methods"
    );

    let silent = authorize_with(&app, &request(&other.0, &[("prompt", "none")]), &session).await;
    assert!(
        redirected(&silent).1.contains_key("code"),
        "prompt=none with a session gives a code"
    );
    let forced = authorize_with(&app, &request(&other.0, &[("prompt", "login")]), &session).await;
    assert_eq!(
        forced.status,
        StatusCode::OK,
        "prompt=login shows the login page"
    );
    let aged = authorize_with(&app, &request(&other.0, &[("max_age", "0")]), &session).await;
    assert_eq!(
        aged.status,
        StatusCode::OK,
        "max_age=0 asks for a sign-in again, even within the same second"
    );
    let recent = authorize_with(&app, &request(&other.0, &[("max_age", "3600")]), &session).await;
    assert!(
        redirected(&recent).1.contains_key("code"),
        "a sign-in within max_age stands"
    );
}
both_backends!(
    a_live_sign_in_session_skips_the_login_page_for_another_client_on,
    a_live_sign_in_session_skips_the_login_page_for_another_client
);

async fn every_sign_in_gets_a_new_session_and_ends_the_one_the_browser_held(db: &TestDb) {
    let (app, client, _) = started(db).await;
    let (_, first) = sign_in_with_session(&app, &request(&client.0, &[]), None).await;
    let (_, second) = sign_in_with_session(&app, &request(&client.0, &[]), Some(&first)).await;
    assert_ne!(first, second, "a new session value at each sign-in");
    let with_first = authorize_with(&app, &request(&client.0, &[]), &first).await;
    assert_eq!(
        with_first.status,
        StatusCode::OK,
        "the replaced session signs nobody in"
    );
    let with_second = authorize_with(&app, &request(&client.0, &[]), &second).await;
    assert!(redirected(&with_second).1.contains_key("code"));
}
both_backends!(
    every_sign_in_gets_a_new_session_and_ends_the_one_the_browser_held_on,
    every_sign_in_gets_a_new_session_and_ends_the_one_the_browser_held
);

async fn a_disabled_users_sign_in_session_no_longer_skips_the_login_page(db: &TestDb) {
    let (app, client, user) = started(db).await;
    let (_, session) = sign_in_with_session(&app, &request(&client.0, &[]), None).await;
    let admin = app.admin_token().await;
    let disabled = app
        .send(Call::new(Method::POST, &format!("/admin/v1/users/{user}/disable")).bearer(&admin))
        .await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.text);
    let enabled = app
        .send(Call::new(Method::POST, &format!("/admin/v1/users/{user}/enable")).bearer(&admin))
        .await;
    assert_eq!(enabled.status, StatusCode::OK, "{}", enabled.text);
    let reply = authorize_with(&app, &request(&client.0, &[]), &session).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "disabling ended the session for good: {}",
        reply.text
    );
    let silent = authorize_with(&app, &request(&client.0, &[("prompt", "none")]), &session).await;
    assert_eq!(redirected(&silent).1["error"], "login_required");
}
both_backends!(
    a_disabled_users_sign_in_session_no_longer_skips_the_login_page_on,
    a_disabled_users_sign_in_session_no_longer_skips_the_login_page
);

async fn an_idle_sign_in_session_ends(db: &TestDb) {
    let app = TestApp::start(config(db, &[("PORTCULLIS_SESSION_IDLE", "1")])).await;
    let client = web_client(&app, "web").await;
    app.user("alice", PASSWORD, &["viewer"], "api:items:read self")
        .await;
    let (_, session) = sign_in_with_session(&app, &request(&client.0, &[]), None).await;
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let reply = authorize_with(&app, &request(&client.0, &[]), &session).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "idle beyond PORTCULLIS_SESSION_IDLE: {}",
        reply.text
    );
}
both_backends!(
    an_idle_sign_in_session_ends_on,
    an_idle_sign_in_session_ends
);

async fn a_live_sign_in_gives_a_public_native_client_no_code_without_the_login_page(db: &TestDb) {
    let (app, client, _) = started(db).await;
    let loopback = ["http://127.0.0.1/callback".to_owned()];
    let https = [CALLBACK.to_owned()];
    let public = |name, redirect_uris| NewClient {
        name,
        scopes: "api:items:read",
        grants: &[GrantType::AuthorizationCode],
        auth_method: AuthMethod::None,
        redirect_uris,
        ..Default::default()
    };
    let (native, _) = app.client_from(&public("native", &loopback)).await;
    let (spa, _) = app.client_from(&public("spa", &https)).await;
    let (_, session) = sign_in_with_session(&app, &request(&client.0, &[]), None).await;
    let native_request = |extra: &[(&str, &str)]| {
        let mut changes = vec![("redirect_uri", "http://127.0.0.1:49152/callback")];
        changes.extend_from_slice(extra);
        request(&native, &changes)
    };
    let shown = authorize_with(&app, &native_request(&[]), &session).await;
    assert_eq!(
        shown.status,
        StatusCode::OK,
        "any app on the device could have sent this request: the user signs in (RFC 8252 §8.6)"
    );
    let silent = authorize_with(&app, &native_request(&[("prompt", "none")]), &session).await;
    let (base, params) = redirected(&silent);
    assert_eq!(base, "http://127.0.0.1:49152/callback");
    assert_eq!(params["error"], "login_required");
    assert!(!params.contains_key("code"));
    let web = authorize_with(&app, &request(&spa, &[]), &session).await;
    assert!(
        redirected(&web).1.contains_key("code"),
        "a public client returning to an https origin it registered keeps single sign-on"
    );
}
both_backends!(
    a_live_sign_in_gives_a_public_native_client_no_code_without_the_login_page_on,
    a_live_sign_in_gives_a_public_native_client_no_code_without_the_login_page
);

async fn a_code_from_a_sign_in_that_has_ended_opens_nothing(db: &TestDb) {
    let (app, client, user) = started(db).await;
    let (code, _) = sign_in_with_session(&app, &request(&client.0, &[]), None).await;
    let admin = app.admin_token().await;
    for verb in ["disable", "enable"] {
        let reply = app
            .send(Call::new(Method::POST, &format!("/admin/v1/users/{user}/{verb}")).bearer(&admin))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{verb}: {}", reply.text);
    }
    let reply = exchange(&app, &client, &code, VERIFIER).await;
    assert_eq!(
        reply.json()["error"],
        "invalid_grant",
        "the user is enabled again, but the sign-in the code came from was ended: {}",
        reply.text
    );
}
both_backends!(
    a_code_from_a_sign_in_that_has_ended_opens_nothing_on,
    a_code_from_a_sign_in_that_has_ended_opens_nothing
);

async fn the_openid_scope_gives_an_id_token_for_the_client_with_nonce_and_sign_in(db: &TestDb) {
    let (app, client, user) = started(db).await;
    let (code, _) = sign_in_with_session(&app, &request(&client.0, &[]), None).await;
    let reply = exchange(&app, &client, &code, VERIFIER).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let id_token = reply.json()["id_token"]
        .as_str()
        .expect("scope openid gives an ID token")
        .to_owned();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            id_token.split('.').next().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "RS256", "the default algorithm: {header}");
    assert_ne!(header["typ"], "at+jwt", "an ID token is no access token");
    let claims = decode_claims(&id_token);
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], format!("user:{user}"));
    assert_eq!(claims["aud"], client.0);
    assert_eq!(claims["azp"], client.0);
    assert_eq!(claims["nonce"], "n-456");
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert!(claims["auth_time"].as_i64().is_some(), "{claims}");
    assert!(
        claims["sid"].as_str().is_some(),
        "the browser sign-in: {claims}"
    );
    assert_eq!(
        reply.json()["scope"],
        "openid api:items:read",
        "the granted scope names openid too"
    );
    let access = decode_claims(&access_token(&reply));
    assert_eq!(
        access["scope"], "api:items:read",
        "the access token carries access scopes only"
    );

    let (code, _) = sign_in_with_session(
        &app,
        &request(&client.0, &[("scope", "api:items:read")]),
        None,
    )
    .await;
    let plain = exchange(&app, &client, &code, VERIFIER).await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.text);
    assert!(
        plain.json().get("id_token").is_none(),
        "no openid, no ID token: {}",
        plain.text
    );
}
both_backends!(
    the_openid_scope_gives_an_id_token_for_the_client_with_nonce_and_sign_in_on,
    the_openid_scope_gives_an_id_token_for_the_client_with_nonce_and_sign_in
);

async fn userinfo_answers_with_the_claims_of_the_openid_scopes_granted(db: &TestDb) {
    let (app, client, user) = started(db).await;
    let userinfo = |scope: &'static str| {
        let app = &app;
        let client = &client;
        async move {
            let (code, _) =
                sign_in_with_session(app, &request(&client.0, &[("scope", scope)]), None).await;
            let access = access_token(&exchange(app, client, &code, VERIFIER).await);
            app.send(Call::new(Method::GET, "/oauth2/userinfo").bearer(&access))
                .await
                .json()
        }
    };
    let (code, _) = sign_in_with_session(
        &app,
        &request(&client.0, &[("scope", "openid profile")]),
        None,
    )
    .await;
    let access = access_token(&exchange(&app, &client, &code, VERIFIER).await);
    let get = app
        .send(Call::new(Method::GET, "/oauth2/userinfo").bearer(&access))
        .await;
    let post = app
        .send(Call::new(Method::POST, "/oauth2/userinfo").bearer(&access))
        .await;
    assert_eq!(post.status, StatusCode::OK, "{}", post.text);
    assert_eq!(
        post.json(),
        get.json(),
        "userinfo answers POST as GET (Core §5.3.1)"
    );
    let bare = userinfo("openid api:items:read").await;
    assert_eq!(
        bare,
        json!({"sub": format!("user:{user}")}),
        "openid alone: sub"
    );
    let profile = userinfo("openid profile").await;
    assert_eq!(profile["preferred_username"], "alice");
    assert!(profile["updated_at"].as_i64().is_some(), "{profile}");
    assert!(profile.get("email").is_none(), "{profile}");
    let email = userinfo("openid email").await;
    assert_eq!(email["email"], "alice@example.test");
    assert_eq!(email["email_verified"], false);
    assert!(email.get("preferred_username").is_none(), "{email}");
}
both_backends!(
    userinfo_answers_with_the_claims_of_the_openid_scopes_granted_on,
    userinfo_answers_with_the_claims_of_the_openid_scopes_granted
);

const SIGNED_OUT: &str = "https://app.example.test/signed-out";

/// A web client that registered where logout may send the browser back.
async fn client_with_logout(app: &TestApp) -> (String, String) {
    app.client_from(&NewClient {
        name: "web with logout",
        scopes: "api:items:read self",
        grants: &[GrantType::AuthorizationCode, GrantType::RefreshToken],
        redirect_uris: &[CALLBACK.to_owned()],
        post_logout_redirect_uris: &[SIGNED_OUT.to_owned()],
        ..Default::default()
    })
    .await
}

async fn logout(app: &TestApp, pairs: &[(&str, &str)], session: &str) -> Reply {
    app.send(
        Call::new(Method::GET, "/oauth2/logout")
            .uri_query(&query(pairs))
            .header("cookie", session),
    )
    .await
}

async fn logout_with_an_id_token_hint_ends_the_sign_in_and_its_tokens_at_once(db: &TestDb) {
    let (app, _, _) = started(db).await;
    let client = client_with_logout(&app).await;
    let (code, session) = sign_in_with_session(&app, &request(&client.0, &[]), None).await;
    let tokens = exchange(&app, &client, &code, VERIFIER).await;
    let access = access_token(&tokens);
    let id_token = tokens.json()["id_token"].as_str().unwrap().to_owned();
    let refresh_token = tokens.json()["refresh_token"].as_str().unwrap().to_owned();

    let out = logout(
        &app,
        &[
            ("id_token_hint", &id_token),
            ("post_logout_redirect_uri", SIGNED_OUT),
            ("state", "bye-1"),
        ],
        &session,
    )
    .await;
    let (base, params) = redirected(&out);
    assert_eq!(base, SIGNED_OUT, "back where the client registered");
    assert_eq!(params["state"], "bye-1");
    let cleared = out
        .header("set-cookie")
        .expect("the session cookie is cleared");
    assert!(
        cleared.starts_with("__Host-portcullis-session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );

    let userinfo = app
        .send(Call::new(Method::GET, "/oauth2/userinfo").bearer(&access))
        .await;
    assert_eq!(
        userinfo.status,
        StatusCode::UNAUTHORIZED,
        "the session's access token is revoked: {}",
        userinfo.text
    );
    let refreshed = refresh(&app, &client, &refresh_token).await;
    assert_eq!(
        refreshed.json()["error"],
        "invalid_grant",
        "{}",
        refreshed.text
    );
    let again = authorize_with(&app, &request(&client.0, &[]), &session).await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "the ended sign-in no longer skips the login page"
    );
}
both_backends!(
    logout_with_an_id_token_hint_ends_the_sign_in_and_its_tokens_at_once_on,
    logout_with_an_id_token_hint_ends_the_sign_in_and_its_tokens_at_once
);

async fn logout_without_a_hint_asks_the_user_first(db: &TestDb) {
    let (app, client, _) = started(db).await;
    let (_, session) = sign_in_with_session(&app, &request(&client.0, &[]), None).await;
    let asked = logout(&app, &[], &session).await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.text);
    assert!(
        asked.text.contains("Do you want to sign out?"),
        "{}",
        asked.text
    );
    let still = authorize_with(&app, &request(&client.0, &[]), &session).await;
    assert!(
        redirected(&still).1.contains_key("code"),
        "a link alone signs nobody out"
    );

    let login_cookie = cookie_of(&asked);
    let cookies = format!("{login_cookie}; {session}");
    let forged = app
        .send(
            Call::new(Method::POST, "/oauth2/logout")
                .header("cookie", &cookies)
                .form(&[("csrf", "not-the-token")]),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text);
    let form = hidden_fields(&asked.text);
    assert!(form.iter().any(|(n, _)| n == "csrf"), "{form:?}");
    let pairs: Vec<(&str, &str)> = form.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let confirmed = app
        .send(
            Call::new(Method::POST, "/oauth2/logout")
                .header("cookie", &cookies)
                .form(&pairs),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text);
    assert!(
        confirmed.text.contains("You are signed out"),
        "{}",
        confirmed.text
    );
    let gone = authorize_with(&app, &request(&client.0, &[]), &session).await;
    assert_eq!(
        gone.status,
        StatusCode::OK,
        "the confirmed logout ended the sign-in"
    );
}
both_backends!(
    logout_without_a_hint_asks_the_user_first_on,
    logout_without_a_hint_asks_the_user_first
);

async fn logout_sends_the_browser_only_to_a_registered_post_logout_uri(db: &TestDb) {
    let (app, other, _) = started(db).await;
    let client = client_with_logout(&app).await;
    let (code, session) = sign_in_with_session(&app, &request(&client.0, &[]), None).await;
    let tokens = exchange(&app, &client, &code, VERIFIER).await;
    let id_token = tokens.json()["id_token"].as_str().unwrap().to_owned();
    let access = access_token(&tokens);
    for (case, pairs) in [
        (
            "an unregistered address",
            vec![
                ("id_token_hint", id_token.as_str()),
                ("post_logout_redirect_uri", "https://evil.example/"),
            ],
        ),
        (
            "a registered address with a changed path",
            vec![
                ("id_token_hint", id_token.as_str()),
                (
                    "post_logout_redirect_uri",
                    "https://app.example.test/signed-out/x",
                ),
            ],
        ),
        (
            "an address without a client to check it against",
            vec![("post_logout_redirect_uri", SIGNED_OUT)],
        ),
        (
            "a hint of one client and the id of another",
            vec![
                ("id_token_hint", id_token.as_str()),
                ("client_id", other.0.as_str()),
            ],
        ),
        (
            "a hint this server did not sign",
            vec![("id_token_hint", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln")],
        ),
        (
            "an access token as a hint",
            vec![("id_token_hint", access.as_str())],
        ),
    ] {
        let reply = logout(&app, &pairs, &session).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{case}: {}",
            reply.text
        );
        assert!(reply.header("location").is_none(), "{case}: no redirect");
    }
    let still = authorize_with(&app, &request(&client.0, &[]), &session).await;
    assert!(
        redirected(&still).1.contains_key("code"),
        "no refused request ended the sign-in"
    );
}
both_backends!(
    logout_sends_the_browser_only_to_a_registered_post_logout_uri_on,
    logout_sends_the_browser_only_to_a_registered_post_logout_uri
);

/// A preflight from `origin` for `method path`; the `Access-Control-Allow-Origin` it got.
async fn preflight(app: &TestApp, path: &str, method: &str, origin: &str) -> Option<String> {
    app.send(
        Call::new(Method::OPTIONS, path)
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            ),
    )
    .await
    .header("access-control-allow-origin")
}

async fn a_browser_clients_origin_may_call_the_client_endpoints_and_no_other_origin(db: &TestDb) {
    let (app, client, _) = started(db).await;
    let registered = "https://app.example.test";
    for (path, method) in [
        ("/oauth2/token", "POST"),
        ("/oauth2/revoke", "POST"),
        ("/oauth2/userinfo", "GET"),
        ("/.well-known/openid-configuration", "GET"),
        ("/.well-known/jwks.json", "GET"),
    ] {
        assert_eq!(
            preflight(&app, path, method, registered).await.as_deref(),
            Some(registered),
            "{method} {path} from the origin of a registered redirect URI"
        );
        assert_eq!(
            preflight(&app, path, method, "https://evil.example").await,
            None,
            "{method} {path} from an origin no client registered"
        );
    }
    assert_eq!(
        preflight(
            &app,
            "/oauth2/token",
            "POST",
            "https://app.example.test:8443"
        )
        .await,
        None,
        "another port is another origin"
    );
    for (path, method) in [
        ("/admin/v1/users", "GET"),
        ("/v1/me/sessions", "GET"),
        ("/oauth2/login", "POST"),
        ("/oauth2/logout", "GET"),
        ("/oauth2/introspect", "POST"),
    ] {
        assert_eq!(
            preflight(&app, path, method, registered).await,
            None,
            "{method} {path} is never cross-origin"
        );
    }
    let discovery = app
        .send(
            Call::new(Method::GET, "/.well-known/openid-configuration")
                .header("origin", registered),
        )
        .await;
    assert_eq!(discovery.status, StatusCode::OK);
    assert_eq!(
        discovery.header("access-control-allow-origin").as_deref(),
        Some(registered)
    );
    assert!(
        discovery
            .header("access-control-allow-credentials")
            .is_none(),
        "no credentials: these endpoints take no cookie"
    );
    let admin = app.admin_token().await;
    let disabled = app
        .send(
            Call::new(Method::PATCH, &format!("/admin/v1/clients/{}", client.0))
                .bearer(&admin)
                .json(&json!({"disabled": true})),
        )
        .await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.text);
    assert_eq!(
        preflight(&app, "/oauth2/token", "POST", registered).await,
        None,
        "a disabled client's origin is no longer let in"
    );
}
both_backends!(
    a_browser_clients_origin_may_call_the_client_endpoints_and_no_other_origin_on,
    a_browser_clients_origin_may_call_the_client_endpoints_and_no_other_origin
);

async fn a_public_client_revokes_its_own_refresh_token_by_client_id_alone(db: &TestDb) {
    let (app, _, _) = started(db).await;
    let uris = [CALLBACK.to_owned()];
    let public = |name| NewClient {
        name,
        scopes: "api:items:read",
        grants: &[GrantType::AuthorizationCode, GrantType::RefreshToken],
        redirect_uris: &uris,
        auth_method: AuthMethod::None,
        ..Default::default()
    };
    let (spa, _) = app.client_from(&public("spa")).await;
    let (other, _) = app.client_from(&public("other spa")).await;
    let code = code_for(&app, &request(&spa, &[]), "alice", PASSWORD).await;
    let tokens = app
        .send(Call::new(Method::POST, "/oauth2/token").form(&[
            ("grant_type", "authorization_code"),
            ("client_id", &spa),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ]))
        .await;
    let refresh_token = tokens.json()["refresh_token"].as_str().unwrap().to_owned();
    let by_other = app
        .send(Call::new(Method::POST, "/oauth2/revoke").form(&[
            ("client_id", other.as_str()),
            ("token", refresh_token.as_str()),
        ]))
        .await;
    assert_eq!(
        by_other.status,
        StatusCode::OK,
        "RFC 7009: 200 whatever happened"
    );
    let refreshed = app
        .send(Call::new(Method::POST, "/oauth2/token").form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &spa),
            ("refresh_token", &refresh_token),
        ]))
        .await;
    assert_eq!(
        refreshed.status,
        StatusCode::OK,
        "another client cannot revoke it: {}",
        refreshed.text
    );
    let rotated = refreshed.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let own = app
        .send(
            Call::new(Method::POST, "/oauth2/revoke")
                .form(&[("client_id", spa.as_str()), ("token", rotated.as_str())]),
        )
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    let after = app
        .send(Call::new(Method::POST, "/oauth2/token").form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &spa),
            ("refresh_token", &rotated),
        ]))
        .await;
    assert_eq!(
        after.json()["error"],
        "invalid_grant",
        "revoked by its own client: {}",
        after.text
    );
    let (web, _) = web_client(&app, "confidential").await;
    let without_secret = app
        .send(
            Call::new(Method::POST, "/oauth2/revoke")
                .form(&[("client_id", web.as_str()), ("token", "anything")]),
        )
        .await;
    assert_eq!(
        without_secret.status,
        StatusCode::UNAUTHORIZED,
        "a confidential client still needs its secret: {}",
        without_secret.text
    );
}
both_backends!(
    a_public_client_revokes_its_own_refresh_token_by_client_id_alone_on,
    a_public_client_revokes_its_own_refresh_token_by_client_id_alone
);

async fn a_hint_of_another_users_sign_in_asks_the_browsers_user_first(db: &TestDb) {
    let (app, _, _) = started(db).await;
    let client = client_with_logout(&app).await;
    app.user("mallory", PASSWORD, &["viewer"], "api:items:read self")
        .await;
    // Mallory signs in elsewhere and keeps her own ID token.
    let page = authorize(&app, &request(&client.0, &[])).await;
    let cookie = cookie_of(&page);
    let done = submit(
        &app,
        &page,
        &cookie,
        &[("username", "mallory"), ("password", PASSWORD)],
    )
    .await;
    let (_, params) = redirected(&done);
    let hers = exchange(&app, &client, &params["code"], VERIFIER)
        .await
        .json()["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Alice follows Mallory's link.
    let (_, session) = sign_in_with_session(&app, &request(&client.0, &[]), None).await;
    let link = logout(
        &app,
        &[
            ("id_token_hint", &hers),
            ("post_logout_redirect_uri", SIGNED_OUT),
        ],
        &session,
    )
    .await;
    assert_eq!(link.status, StatusCode::OK, "{}", link.text);
    assert!(
        link.text.contains("Do you want to sign out?"),
        "someone else's hint is no proof that this browser's user asked: {}",
        link.text
    );
    let still = authorize_with(&app, &request(&client.0, &[]), &session).await;
    assert!(
        redirected(&still).1.contains_key("code"),
        "alice is still signed in"
    );
}
both_backends!(
    a_hint_of_another_users_sign_in_asks_the_browsers_user_first_on,
    a_hint_of_another_users_sign_in_asks_the_browsers_user_first
);

async fn prompt_is_a_list_where_none_stands_alone(db: &TestDb) {
    let (app, client, _) = started(db).await;
    let (_, session) = sign_in_with_session(&app, &request(&client.0, &[]), None).await;
    let login = authorize_with(
        &app,
        &request(&client.0, &[("prompt", "consent login")]),
        &session,
    )
    .await;
    assert_eq!(login.status, StatusCode::OK, "login in the list asks again");
    let consent = authorize_with(
        &app,
        &request(&client.0, &[("prompt", "consent")]),
        &session,
    )
    .await;
    assert!(
        redirected(&consent).1.contains_key("code"),
        "no consent page: consent asks for nothing more"
    );
    let mixed = authorize_with(
        &app,
        &request(&client.0, &[("prompt", "none login")]),
        &session,
    )
    .await;
    assert_eq!(redirected(&mixed).1["error"], "invalid_request");
    let unknown = authorize_with(&app, &request(&client.0, &[("prompt", "bogus")]), &session).await;
    assert_eq!(redirected(&unknown).1["error"], "invalid_request");
}
both_backends!(
    prompt_is_a_list_where_none_stands_alone_on,
    prompt_is_a_list_where_none_stands_alone
);

async fn openid_scope_names_are_never_a_clients_access_scopes(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let admin = app.admin_token().await;
    for reserved in ["openid", "profile", "email", "offline_access"] {
        let reply = app
            .send(
                Call::new(Method::POST, "/admin/v1/clients")
                    .bearer(&admin)
                    .json(&json!({"name": "web", "scopes": format!("api:items:read {reserved}")})),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{reserved}: {}",
            reply.text
        );
        assert!(
            reply.text.contains(reserved),
            "the error names it: {}",
            reply.text
        );
    }
    let created = app
        .send(
            Call::new(Method::POST, "/admin/v1/clients")
                .bearer(&admin)
                .json(&json!({"name": "web", "scopes": "api:items:read"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json()["client_id"].as_str().unwrap().to_owned();
    let changed = app
        .send(
            Call::new(Method::PATCH, &format!("/admin/v1/clients/{id}"))
                .bearer(&admin)
                .json(&json!({"scopes": "api:items:read email"})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::BAD_REQUEST, "{}", changed.text);
}
both_backends!(
    openid_scope_names_are_never_a_clients_access_scopes_on,
    openid_scope_names_are_never_a_clients_access_scopes
);
