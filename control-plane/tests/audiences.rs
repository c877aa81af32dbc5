//! Tokens are for one audience (RFC 8707), over SQLite and PostgreSQL: the control plane's own
//! API takes only control-plane tokens, `/v1/me` only a user's token with scope `self`, and a
//! `resource` the client may not have is `invalid_target`.

mod common;

use axum::http::{Method, StatusCode};
use common::{access_token, config, decode_claims, Call, Reply, TestApp, TestDb, ISSUER};

const PASSWORD: &str = "correct horse battery";

async fn token(app: &TestApp, id: &str, secret: &str, params: &[(&str, &str)]) -> Reply {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(params);
    app.send(
        Call::new(Method::POST, "/oauth2/token")
            .basic(id, secret)
            .form(&form),
    )
    .await
}

async fn one_audience(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let (id, secret) = app
        .client(
            "mixed",
            "admin:users api:items:read",
            &["client_credentials"],
        )
        .await;
    let edge = access_token(&token(&app, &id, &secret, &[]).await);
    let claims = decode_claims(&edge);
    assert_eq!(claims["aud"], serde_json::json!(["portcullis-edge"]));
    assert_eq!(
        claims["scope"], "api:items:read",
        "an edge token carries no admin scope"
    );
    let reply = app
        .send(Call::new(Method::GET, "/admin/v1/users").bearer(&edge))
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "an edge token does not open the admin API: {}",
        reply.text
    );

    let admin = access_token(&token(&app, &id, &secret, &[("resource", ISSUER)]).await);
    let claims = decode_claims(&admin);
    assert_eq!(claims["aud"], serde_json::json!([ISSUER]));
    assert_eq!(
        claims["scope"], "admin:users",
        "a control-plane token carries no edge scope"
    );
    let reply = app
        .send(Call::new(Method::GET, "/admin/v1/users").bearer(&admin))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);

    // /v1/authorize answers as the edge: a control-plane token is not valid there.
    let (rs, rs_secret) = app.client("rs", "authorize", &["client_credentials"]).await;
    let answer = app
        .send(
            Call::new(Method::POST, "/v1/authorize")
                .basic(&rs, &rs_secret)
                .json(&serde_json::json!({"token": admin, "method": "GET", "path": "/api/items"})),
        )
        .await
        .json();
    assert_eq!(answer["decision"], "deny");
    assert_eq!(answer["reason"], "invalid_token");

    let unknown = token(
        &app,
        &id,
        &secret,
        &[("resource", "https://elsewhere.example")],
    )
    .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        unknown.json()["error"],
        "invalid_target",
        "{}",
        unknown.text
    );
    let (svc, svc_secret) = app
        .client("svc", "api:items:read", &["client_credentials"])
        .await;
    let refused = token(&app, &svc, &svc_secret, &[("resource", ISSUER)]).await;
    assert_eq!(
        refused.json()["error"],
        "invalid_target",
        "a client with no control-plane scope: {}",
        refused.text
    );
    let default =
        access_token(&token(&app, &svc, &svc_secret, &[("resource", "portcullis-edge")]).await);
    assert_eq!(
        decode_claims(&default)["aud"],
        serde_json::json!(["portcullis-edge"])
    );
}
both_backends!(a_token_opens_only_its_own_audience, one_audience);

async fn self_service(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    app.user("sam", PASSWORD, &[], "api:items:read").await;
    let (web, web_secret) = app
        .client("web", "api:items:read self", &["password"])
        .await;
    let (plain, plain_secret) = app.client("plain", "api:items:read", &["password"]).await;
    let login = |client: (String, String), extra: Vec<(&'static str, &'static str)>| {
        let app = &app;
        async move {
            let reply = app
                .login((&client.0, &client.1), "sam", PASSWORD, &extra)
                .await;
            access_token(&reply)
        }
    };
    let me = |token: String| {
        let app = &app;
        async move {
            app.send(Call::new(Method::GET, "/v1/me/sessions").bearer(&token))
                .await
        }
    };
    let own = login((web.clone(), web_secret.clone()), vec![("scope", "self")]).await;
    assert_eq!(
        decode_claims(&own)["scope"],
        "self",
        "every user has self; the client allows it"
    );
    assert_eq!(me(own).await.status, StatusCode::OK);
    let edge = login((web.clone(), web_secret.clone()), vec![]).await;
    assert_eq!(decode_claims(&edge)["scope"], "api:items:read");
    assert_eq!(
        me(edge).await.status,
        StatusCode::UNAUTHORIZED,
        "an edge token does not open /v1/me"
    );
    let refused = app
        .login(
            (&plain, &plain_secret),
            "sam",
            PASSWORD,
            &[("scope", "self")],
        )
        .await;
    assert_eq!(
        refused.json()["error"],
        "invalid_scope",
        "a client without self cannot grant it: {}",
        refused.text
    );
    let (bot, bot_secret) = app.client("bot", "self", &["client_credentials"]).await;
    let client_token = access_token(&token(&app, &bot, &bot_secret, &[]).await);
    let reply = me(client_token).await;
    assert_eq!(
        reply.status,
        StatusCode::FORBIDDEN,
        "a client has no /v1/me: {}",
        reply.text
    );
}
both_backends!(only_a_users_self_token_opens_v1_me, self_service);

async fn refresh(
    app: &TestApp,
    client: (&str, &str),
    token: &str,
    extra: &[(&str, &str)],
) -> Reply {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    form.extend_from_slice(extra);
    app.send(
        Call::new(Method::POST, "/oauth2/token")
            .basic(client.0, client.1)
            .form(&form),
    )
    .await
}

fn refresh_token(reply: &Reply) -> String {
    reply.json()["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no refresh token: {}", reply.text))
        .to_owned()
}

/// RFC 8707 §2.2: a refresh token gives access tokens only for the audiences of the grant that
/// opened its session; another `resource` is `invalid_target` and the refresh token survives.
async fn refresh_bound(db: &TestDb) {
    let app = TestApp::start(config(
        db,
        &[("PORTCULLIS_AUDIENCES", "portcullis-edge orders")],
    ))
    .await;
    app.user("sam", PASSWORD, &[], "api:items:read").await;
    let (id, secret) = app
        .client("web", "api:items:read self", &["password", "refresh_token"])
        .await;
    let client = (id.as_str(), secret.as_str());
    let login = app
        .login(client, "sam", PASSWORD, &[("resource", "orders")])
        .await;
    assert_eq!(
        decode_claims(&access_token(&login))["aud"],
        serde_json::json!(["orders"])
    );

    // Without resource: the grant's own audience, not every edge audience.
    let same = refresh(&app, client, &refresh_token(&login), &[]).await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.text);
    assert_eq!(
        decode_claims(&access_token(&same))["aud"],
        serde_json::json!(["orders"]),
        "a refresh without resource keeps the grant's audience"
    );
    let current = refresh_token(&same);
    for other in ["portcullis-edge", ISSUER] {
        let refused = refresh(&app, client, &current, &[("resource", other)]).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
        assert_eq!(
            refused.json()["error"],
            "invalid_target",
            "a refresh for {other} outside the grant: {}",
            refused.text
        );
    }
    let named = refresh(&app, client, &current, &[("resource", "orders")]).await;
    assert_eq!(
        named.status,
        StatusCode::OK,
        "the refused refreshes did not use up the refresh token: {}",
        named.text
    );

    // A grant for the whole edge may be narrowed to one of its audiences on refresh.
    let wide = app.login(client, "sam", PASSWORD, &[]).await;
    assert_eq!(
        decode_claims(&access_token(&wide))["aud"],
        serde_json::json!(["portcullis-edge", "orders"])
    );
    let narrowed = refresh(
        &app,
        client,
        &refresh_token(&wide),
        &[("resource", "portcullis-edge")],
    )
    .await;
    assert_eq!(
        decode_claims(&access_token(&narrowed))["aud"],
        serde_json::json!(["portcullis-edge"]),
        "{}",
        narrowed.text
    );
    let control_plane = refresh(
        &app,
        client,
        &refresh_token(&narrowed),
        &[("resource", ISSUER)],
    )
    .await;
    assert_eq!(
        control_plane.json()["error"],
        "invalid_target",
        "an edge grant never refreshes into a control-plane token: {}",
        control_plane.text
    );

    // After an audience is removed from the configuration, a session bound to it and another
    // refreshes for the rest of its audiences only.
    let restarted = TestApp::start(config(db, &[("PORTCULLIS_AUDIENCES", "orders")])).await;
    let rest = refresh(&restarted, client, &refresh_token(&narrowed), &[]).await;
    assert_eq!(
        decode_claims(&access_token(&rest))["aud"],
        serde_json::json!(["orders"]),
        "{}",
        rest.text
    );

    // A session opened before sessions were bound is bound to the side its scopes imply.
    let legacy = app.login(client, "sam", PASSWORD, &[]).await;
    sqlx::query("UPDATE sessions SET audience = ''")
        .execute(&app.state.db().pool)
        .await
        .unwrap();
    let refused = refresh(
        &app,
        client,
        &refresh_token(&legacy),
        &[("resource", ISSUER)],
    )
    .await;
    assert_eq!(
        refused.json()["error"],
        "invalid_target",
        "a legacy edge session does not refresh into a control-plane token: {}",
        refused.text
    );
    let kept = refresh(&app, client, &refresh_token(&legacy), &[]).await;
    assert_eq!(
        decode_claims(&access_token(&kept))["aud"],
        serde_json::json!(["portcullis-edge", "orders"]),
        "{}",
        kept.text
    );
}
both_backends!(
    a_refresh_token_is_bound_to_the_audiences_of_its_grant,
    refresh_bound
);
