//! OpenID Connect through an independent relying party: the `openidconnect` crate discovers a
//! running control plane, runs the authorization code flow with PKCE and a nonce, verifies the
//! ID token (signature against the published JWKS, issuer, audience, nonce, `at_hash`), reads
//! userinfo and refreshes. The browser's part (the login page) is played with `reqwest`, cookie
//! and hidden fields included, as in `authorization_code.rs`.

mod common;

use axum::http::{Method, StatusCode};
use common::{config, Call, TestApp, TestDb};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use portcullis_control_plane::oauth::clients::NewClient;
use portcullis_control_plane::oauth::grant::GrantType;
use portcullis_control_plane::oauth::registration::IdTokenAlg;
use portcullis_test_support::html::hidden_fields;
use serde_json::{json, Value};

const CALLBACK: &str = "https://rp.example.test/callback";
const PASSWORD: &str = "correct horse battery";

/// A running control plane with an authorization-code client signing ID tokens with `alg`
/// and the user `alice`; its issuer, the client's id and secret, and the stop signal.
struct Running {
    issuer: String,
    client_id: String,
    secret: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn running(db: &TestDb, alg: IdTokenAlg) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let config = config(db, &[("PORTCULLIS_ISSUER", &issuer)]);
    let app = TestApp::start(config.clone()).await;
    let (client_id, secret) = app
        .client_from(&NewClient {
            name: "relying party",
            scopes: "api:items:read",
            grants: &[GrantType::AuthorizationCode, GrantType::RefreshToken],
            redirect_uris: &[CALLBACK.to_owned()],
            id_token_alg: alg,
            ..Default::default()
        })
        .await;
    app.user("alice", PASSWORD, &[], "api:items:read").await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(portcullis_control_plane::server::serve_on(
        listener,
        config,
        async move {
            let _ = stopped.await;
        },
    ));
    Running {
        issuer,
        client_id,
        secret,
        _stop: stop,
    }
}

/// What the browser brings back to the redirect URI after signing alice in at `auth_url`: the
/// query parameters of the redirect.
async fn sign_in(http: &reqwest::Client, issuer: &str, auth_url: &str) -> Vec<(String, String)> {
    let page = http.get(auth_url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "the login page is shown");
    let cookie = page
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("the page sets its login cookie")
        .to_owned();
    let mut form = hidden_fields(&page.text().await.unwrap());
    form.push(("username".into(), "alice".into()));
    form.push(("password".into(), PASSWORD.into()));
    let back = http
        .post(format!("{issuer}/oauth2/login"))
        .header("cookie", cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        back.status(),
        StatusCode::SEE_OTHER,
        "{:?}",
        back.text().await
    );
    let location = back.headers()["location"].to_str().unwrap().to_owned();
    let url = url::Url::parse(&location).unwrap();
    assert_eq!(
        format!(
            "{}://{}{}",
            url.scheme(),
            url.host_str().unwrap(),
            url.path()
        ),
        CALLBACK
    );
    url.query_pairs()
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The whole flow through the relying-party library, for `alg`.
async fn relying_party_flow(db: &TestDb, alg: IdTokenAlg, expected: CoreJwsSigningAlgorithm) {
    let server = running(db, alg).await;
    let http = reqwest::ClientBuilder::new()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(server.issuer.clone()).unwrap(), &http)
            .await
            .expect("the relying party reads the discovery document and the JWKS");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(server.client_id.clone()),
        Some(ClientSecret::new(server.secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("api:items:read".into()))
        .set_pkce_challenge(challenge)
        .url();

    let back = sign_in(&http, &server.issuer, auth_url.as_str()).await;
    assert_eq!(
        param(&back, "state"),
        Some(csrf.secret().as_str()),
        "state comes back"
    );
    assert_eq!(
        param(&back, "iss"),
        Some(server.issuer.as_str()),
        "RFC 9207 iss"
    );
    let code = param(&back, "code").expect("a code").to_owned();

    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("the code is exchanged");
    let id_token = tokens.id_token().expect("openid gives an ID token");
    let id_verifier = client
        .id_token_verifier()
        .set_allowed_algs([expected.clone()]);
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .expect("the ID token verifies: signature, issuer, audience, expiry, nonce");
    assert_eq!(id_token.signing_alg().unwrap(), &expected);
    let at_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(
        claims.access_token_hash(),
        Some(&at_hash),
        "at_hash binds the access token"
    );
    assert!(claims.subject().as_str().starts_with("user:"));
    assert!(claims.auth_time().is_some(), "auth_time");
    let amr: Vec<String> = claims
        .auth_method_refs()
        .expect("amr")
        .iter()
        .map(|m| m.to_string())
        .collect();
    assert_eq!(amr, ["pwd"]);
    let refresh = tokens
        .refresh_token()
        .expect("the client may refresh")
        .clone();

    let userinfo: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo answers the access token");
    assert_eq!(userinfo.subject(), claims.subject(), "the same sub");
    assert_eq!(
        userinfo.preferred_username().map(|u| u.as_str()),
        Some("alice"),
        "profile"
    );
    assert_eq!(
        userinfo.email().map(|e| e.as_str()),
        Some("alice@example.test"),
        "email"
    );
    assert_eq!(userinfo.email_verified(), Some(false));

    let refreshed = client
        .exchange_refresh_token(&refresh)
        .unwrap()
        .request_async(&http)
        .await
        .expect("the refresh token is exchanged");
    assert_ne!(
        refreshed.access_token().secret(),
        tokens.access_token().secret()
    );
}

async fn a_relying_party_library_signs_in_with_an_rs256_id_token(db: &TestDb) {
    relying_party_flow(
        db,
        IdTokenAlg::RS256,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    )
    .await;
}

both_backends!(
    rs256_relying_party,
    a_relying_party_library_signs_in_with_an_rs256_id_token
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_asked_for_es256_gets_es256_id_tokens() {
    let db = TestDb::sqlite(common::test_root());
    relying_party_flow(
        &db,
        IdTokenAlg::ES256,
        CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_asked_for_eddsa_gets_eddsa_id_tokens() {
    let db = TestDb::sqlite(common::test_root());
    relying_party_flow(&db, IdTokenAlg::EdDSA, CoreJwsSigningAlgorithm::EdDsa).await;
}

/// The discovery document has every member Discovery 1.0 §3 requires, and the RFC 8414
/// document agrees with it.
async fn discovery_lists_what_an_openid_provider_must(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let openid = app.get("/.well-known/openid-configuration").await;
    assert_eq!(openid.status, StatusCode::OK);
    let document: Value = serde_json::from_str(&openid.text).unwrap();
    for member in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
    ] {
        assert!(document.get(member).is_some(), "{member} in {document}");
    }
    assert_eq!(document["response_types_supported"], json!(["code"]));
    assert_eq!(
        document["code_challenge_methods_supported"],
        json!(["S256"])
    );
    assert_eq!(document["request_uri_parameter_supported"], json!(false));
    assert!(document["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("RS256")));
    let oauth: Value = serde_json::from_str(
        &app.get("/.well-known/oauth-authorization-server")
            .await
            .text,
    )
    .unwrap();
    for (name, value) in oauth.as_object().unwrap() {
        assert_eq!(
            &document[name], value,
            "{name} is the same in both documents"
        );
    }
}

both_backends!(discovery, discovery_lists_what_an_openid_provider_must);

/// Registering a browser client through the admin API publishes the key of its first ID token
/// in the JWKS (with `use` and `alg`), and the bundle the edges follow never carries it.
async fn a_browser_client_publishes_its_id_token_key_but_never_to_the_edge(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let admin = app.admin_token().await;
    let jwks = |text: &str| -> Vec<Value> {
        serde_json::from_str::<Value>(text).unwrap()["keys"]
            .as_array()
            .unwrap()
            .clone()
    };
    let before = jwks(&app.get("/.well-known/jwks.json").await.text);
    assert!(
        before.iter().all(|k| k["alg"] == "EdDSA"),
        "no ID-token key before a browser client: {before:?}"
    );
    let created = app
        .send(
            Call::new(Method::POST, "/admin/v1/clients")
                .bearer(&admin)
                .json(&json!({
                    "name": "web",
                    "grant_types": ["authorization_code"],
                    "redirect_uris": [CALLBACK],
                })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let created: Value = serde_json::from_str(&created.text).unwrap();
    assert_eq!(created["client"]["id_token_signed_response_alg"], "RS256");
    let after = jwks(&app.get("/.well-known/jwks.json").await.text);
    let rsa: Vec<&Value> = after.iter().filter(|k| k["kty"] == "RSA").collect();
    assert_eq!(rsa.len(), 2, "active and next RS256 keys: {after:?}");
    for key in &rsa {
        assert_eq!(key["alg"], "RS256");
        assert_eq!(key["use"], "sig");
        assert!(key.get("d").is_none(), "public parts only");
    }
    let bundle = app.state.published();
    let rsa_kids: Vec<&str> = rsa.iter().map(|k| k["kid"].as_str().unwrap()).collect();
    for kid in rsa_kids {
        assert!(
            bundle.keys.get(kid).is_none(),
            "the edge does not trust the ID-token key {kid}"
        );
    }
}

both_backends!(
    id_token_keys,
    a_browser_client_publishes_its_id_token_key_but_never_to_the_edge
);

/// A database writer who copies an ID-token key row into the access-token keys plants nothing:
/// the row keeps its sealed key but the JWKS refuses a key that is not of its table.
async fn an_id_token_key_copied_into_the_access_token_keys_is_refused(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let mut tx = app.state.db().pool.begin().await.unwrap();
    portcullis_control_plane::keys::id_token::ensure(
        &mut tx,
        app.state.master(),
        portcullis_authz::jwk::Algorithm::Rs256,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let pool = &app.state.db().pool;
    assert!(
        portcullis_control_plane::keys::signing::jwks(pool, app.state.master())
            .await
            .is_ok(),
        "the access-token keys as they are"
    );
    sqlx::query(
        "INSERT INTO signing_keys (kid, alg, sealed_private, public_jwk, state, created_at, activated_at, retire_after) \
         SELECT kid, alg, sealed_private, public_jwk, 'next', created_at, NULL, NULL FROM id_token_keys WHERE state = 'active'",
    )
    .execute(pool)
    .await
    .unwrap();
    let planted = portcullis_control_plane::keys::signing::jwks(pool, app.state.master()).await;
    assert!(
        matches!(
            planted,
            Err(portcullis_control_plane::keys::signing::KeyError::Corrupt(
                _
            ))
        ),
        "{planted:?}"
    );
}

both_backends!(
    copied_key_rows,
    an_id_token_key_copied_into_the_access_token_keys_is_refused
);

/// A key rotation rotates the ID-token keys too, and the JWKS the running service publishes
/// follows at once (the keys it holds in memory are read again whenever one changes).
async fn a_key_rotation_republishes_the_id_token_keys(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let admin = app.admin_token().await;
    let created = app
        .send(
            Call::new(Method::POST, "/admin/v1/clients")
                .bearer(&admin)
                .json(&json!({"name": "web", "grant_types": ["authorization_code"], "redirect_uris": [CALLBACK]})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let rsa_kids = |text: &str| -> Vec<String> {
        serde_json::from_str::<Value>(text).unwrap()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["kty"] == "RSA")
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let before = rsa_kids(&app.get("/.well-known/jwks.json").await.text);
    assert_eq!(before.len(), 2, "{before:?}");
    let rotated = app
        .send(Call::new(Method::POST, "/admin/v1/keys/rotate?force=true").bearer(&admin))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let after = rsa_kids(&app.get("/.well-known/jwks.json").await.text);
    assert_eq!(
        after.len(),
        2,
        "the new active key and a new next one: {after:?}"
    );
    assert_ne!(before, after, "the published ID-token keys changed");
    assert_eq!(
        before.iter().filter(|kid| after.contains(kid)).count(),
        1,
        "the next key stays (now signing), the forced-out active one is gone: {before:?} → {after:?}"
    );
}

both_backends!(
    id_token_key_rotation,
    a_key_rotation_republishes_the_id_token_keys
);
