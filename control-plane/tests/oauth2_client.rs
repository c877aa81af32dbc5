//! A real OAuth 2.0 client library (the `oauth2` crate over reqwest) completes the
//! client_credentials, password and refresh flows against a running server.

mod common;

use common::{config, TestDb};
use oauth2::basic::BasicClient;
use oauth2::{
    ClientId, ClientSecret, RefreshToken, ResourceOwnerPassword, ResourceOwnerUsername, Scope,
    TokenResponse, TokenUrl,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_crate_completes_every_grant() {
    let db = TestDb::postgres(common::test_root()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let issuer = format!("http://127.0.0.1:{port}");
    let config = config(&db, &[("PORTCULLIS_ISSUER", &issuer)]);
    // Identities first, through the store the server will open.
    let app = common::TestApp::start(config.clone()).await;
    let (svc_id, svc_secret) = app
        .client(
            "svc",
            "api:items:read api:items:write",
            &["client_credentials"],
        )
        .await;
    let (web_id, web_secret) = app
        .client("web", "api:items:read", &["password", "refresh_token"])
        .await;
    app.user("jade", "correct horse battery", &[], "api:items:read")
        .await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(portcullis_control_plane::server::serve_on(
        listener,
        config,
        async move {
            let _ = stopped.await;
        },
    ));
    let http = reqwest::ClientBuilder::new()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let token_url = TokenUrl::new(format!("{issuer}/oauth2/token")).unwrap();

    let service = BasicClient::new(ClientId::new(svc_id))
        .set_client_secret(ClientSecret::new(svc_secret))
        .set_token_uri(token_url.clone());
    let token = service
        .exchange_client_credentials()
        .add_scope(Scope::new("api:items:read".into()))
        .request_async(&http)
        .await
        .unwrap();
    assert!(!token.access_token().secret().is_empty());
    assert_eq!(
        token.scopes().unwrap(),
        &vec![Scope::new("api:items:read".into())]
    );
    assert!(token.refresh_token().is_none());
    assert_eq!(token.expires_in().unwrap().as_secs(), 3600);

    let web = BasicClient::new(ClientId::new(web_id))
        .set_client_secret(ClientSecret::new(web_secret))
        .set_token_uri(token_url);
    let login = web
        .exchange_password(
            &ResourceOwnerUsername::new("jade".into()),
            &ResourceOwnerPassword::new("correct horse battery".into()),
        )
        .request_async(&http)
        .await
        .unwrap();
    let refresh = login.refresh_token().unwrap().clone();
    let rotated = web
        .exchange_refresh_token(&refresh)
        .request_async(&http)
        .await
        .unwrap();
    assert_ne!(rotated.refresh_token().unwrap().secret(), refresh.secret());
    // A retry within the grace window (the library lost the answer) gets the same successor.
    let retried = web
        .exchange_refresh_token(&RefreshToken::new(refresh.secret().clone()))
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(
        retried.refresh_token().unwrap().secret(),
        rotated.refresh_token().unwrap().secret()
    );
    // The library surfaces our RFC 6749 §5.2 errors as typed error responses.
    let unknown = web
        .exchange_refresh_token(&RefreshToken::new("pcr_not-a-refresh-token".into()))
        .request_async(&http)
        .await;
    match unknown {
        Err(oauth2::RequestTokenError::ServerResponse(error)) => {
            assert_eq!(error.error().as_ref(), "invalid_grant");
        }
        other => panic!("expected invalid_grant, got {other:?}"),
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
