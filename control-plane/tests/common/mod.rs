//! Test harness: a fresh database per test ([`TestDb`]: a SQLite file, or a new PostgreSQL
//! database that is dropped afterwards), the real `app(state)` driven through
//! `tower::ServiceExt::oneshot`.

#![allow(dead_code)]

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use base64::Engine as _;
use http_body_util::BodyExt as _;
use portcullis_control_plane::infra::config::Config;
use portcullis_control_plane::state::AppState;
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tower::ServiceExt as _;

pub use portcullis_test_support::db::TestDb;

/// Where this crate's test databases and their directories live.
pub fn test_root() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
}

/// The repository's `policies/`.
pub fn policy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

/// Test credential for the bundle endpoint.
pub const BUNDLE_CREDENTIAL: &str = "test-bundle-credential-0123456789";
/// Test issuer.
pub const ISSUER: &str = "https://id.portcullis.test";

/// A configuration for `db` with test settings overridden by `extra`.
pub fn config(db: &TestDb, extra: &[(&str, &str)]) -> Config {
    let mut map: HashMap<String, String> = [
        ("DATABASE_URL", db.url.as_str()),
        ("PORTCULLIS_ISSUER", ISSUER),
        ("PORTCULLIS_BUNDLE_CREDENTIAL", BUNDLE_CREDENTIAL),
        (
            "PORTCULLIS_MASTER_KEY",
            "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=",
        ),
        ("PORTCULLIS_POLICY_DIR", policy_dir().to_str().unwrap()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in extra {
        map.insert((*k).to_owned(), (*v).to_owned());
    }
    Config::from_lookup(|name| map.get(name).cloned()).unwrap()
}

/// The service over one test database.
#[derive(Debug, Clone)]
pub struct TestApp {
    /// Shared state (for direct store access).
    pub state: AppState,
    router: Router,
}

/// A response, read fully.
#[derive(Debug)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: axum::http::HeaderMap,
    /// Body text.
    pub text: String,
}

impl Reply {
    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// A request under construction.
pub struct Call {
    path: String,
    builder: axum::http::request::Builder,
    body: Body,
    ip: SocketAddr,
}

impl Call {
    /// A request.
    pub fn new(method: Method, path: &str) -> Self {
        Call {
            path: path.to_owned(),
            builder: Request::builder().method(method).uri(path),
            body: Body::empty(),
            ip: "10.0.0.1:40000".parse().unwrap(),
        }
    }

    /// Appends a query string.
    pub fn uri_query(mut self, query: &str) -> Self {
        let uri = format!("{}?{query}", self.path);
        self.builder = self.builder.uri(uri);
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    /// Bearer token.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// HTTP Basic client authentication.
    pub fn basic(self, id: &str, secret: &str) -> Self {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        self.header("authorization", &format!("Basic {encoded}"))
    }

    /// A form body.
    pub fn form(mut self, params: &[(&str, &str)]) -> Self {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        self.builder = self
            .builder
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.body = Body::from(body);
        self
    }

    /// A JSON body.
    pub fn json(mut self, value: &Value) -> Self {
        self.builder = self
            .builder
            .header(header::CONTENT_TYPE, "application/json");
        self.body = Body::from(value.to_string());
        self
    }

    /// A raw body.
    pub fn raw(mut self, content_type: &str, body: impl Into<Body>) -> Self {
        self.builder = self.builder.header(header::CONTENT_TYPE, content_type);
        self.body = body.into();
        self
    }

    /// The client address the server sees.
    pub fn client_ip(mut self, ip: &str) -> Self {
        self.ip = format!("{ip}:40000").parse().unwrap();
        self
    }
}

impl TestApp {
    /// Opens the store for `config` the way `portcullis serve` does.
    pub async fn start(config: Config) -> Self {
        let (db, master) = portcullis_control_plane::server::open(&config)
            .await
            .unwrap();
        let state = AppState::new(db, config, master).await.unwrap();
        let router = portcullis_control_plane::app(state.clone());
        TestApp { state, router }
    }

    /// Sends `call`.
    pub async fn send(&self, call: Call) -> Reply {
        let mut request = call.builder.body(call.body).unwrap();
        request.extensions_mut().insert(ConnectInfo(call.ip));
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(Call::new(Method::GET, path)).await
    }

    /// Creates a client directly in the store; returns (id, secret).
    pub async fn client(&self, name: &str, scopes: &str, grants: &[&str]) -> (String, String) {
        let grants: Vec<_> = grants
            .iter()
            .map(|g| portcullis_control_plane::oauth::grant::GrantType::from_name(g).expect(g))
            .collect();
        self.client_from(&portcullis_control_plane::oauth::clients::NewClient {
            name,
            scopes,
            grants: &grants,
            ..Default::default()
        })
        .await
    }

    /// Creates a client with every field given; returns (id, secret).
    pub async fn client_from(
        &self,
        new: &portcullis_control_plane::oauth::clients::NewClient<'_>,
    ) -> (String, String) {
        let mut tx = self.state.db().pool.begin().await.unwrap();
        let (client, secret) =
            portcullis_control_plane::oauth::clients::create(&mut tx, self.state.master(), new)
                .await
                .unwrap();
        tx.commit().await.unwrap();
        (client.client_id, secret)
    }

    /// Creates a user of tenant `acme` directly in the store; returns the id.
    pub async fn user(
        &self,
        username: &str,
        password: &str,
        roles: &[&str],
        scopes: &str,
    ) -> String {
        self.user_in(username, password, roles, scopes, Some("acme"))
            .await
    }

    /// Creates a user of `tenant` directly in the store; returns the id.
    pub async fn user_in(
        &self,
        username: &str,
        password: &str,
        roles: &[&str],
        scopes: &str,
        tenant: Option<&str>,
    ) -> String {
        let hash = self.state.hasher().hash(password).await.unwrap();
        let mut tx = self.state.db().pool.begin().await.unwrap();
        let user = portcullis_control_plane::identity::users::create(
            &mut tx,
            &portcullis_control_plane::identity::users::NewUser {
                username: username.into(),
                password_hash: hash,
                email: Some(format!("{username}@example.test")),
                roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                scopes: scopes.into(),
                tenant: tenant.map(str::to_owned),
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        user.user_id
    }

    /// A client_credentials token.
    pub async fn cc_token(&self, id: &str, secret: &str, scope: Option<&str>) -> Reply {
        let mut params = vec![("grant_type", "client_credentials")];
        if let Some(scope) = scope {
            params.push(("scope", scope));
        }
        self.send(
            Call::new(Method::POST, "/oauth2/token")
                .basic(id, secret)
                .form(&params),
        )
        .await
    }

    /// A client_credentials token for the control plane (RFC 8707 `resource`), as a client
    /// with edge scopes besides its admin ones needs.
    pub async fn control_plane_token(&self, id: &str, secret: &str) -> String {
        let reply = self
            .send(
                Call::new(Method::POST, "/oauth2/token")
                    .basic(id, secret)
                    .form(&[("grant_type", "client_credentials"), ("resource", ISSUER)]),
            )
            .await;
        access_token(&reply)
    }

    /// A password-grant login.
    pub async fn login(
        &self,
        client: (&str, &str),
        username: &str,
        password: &str,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut params = vec![
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ];
        params.extend_from_slice(extra);
        self.send(
            Call::new(Method::POST, "/oauth2/token")
                .basic(client.0, client.1)
                .form(&params),
        )
        .await
    }

    /// An admin token: a client with `admin:full`.
    pub async fn admin_token(&self) -> String {
        let (id, secret) = self
            .client("admin-tool", "admin:full", &["client_credentials"])
            .await;
        self.cc_token(&id, &secret, None).await.json()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Introspects `token` as `client`.
    pub async fn introspect(&self, client: (&str, &str), token: &str) -> Value {
        self.send(
            Call::new(Method::POST, "/oauth2/introspect")
                .basic(client.0, client.1)
                .form(&[("token", token)]),
        )
        .await
        .json()
    }
}

/// The access token of a token response that must be 200.
pub fn access_token(reply: &Reply) -> String {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

/// The claims of a JWT, unverified (for looking at what the server issued).
pub fn decode_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Runs a test body on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::common::TestDb::sqlite($crate::common::test_root());
                super::$body(&db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = $crate::common::TestDb::postgres($crate::common::test_root()).await;
                super::$body(&db).await;
            }
        }
    };
}

/// A TOTP code for the first step after `last_step` (each step is accepted once), waiting until
/// that step is inside the server's ±1 window; the code and its step.
pub async fn totp_code_after(key: &[u8], last_step: i64) -> (String, i64) {
    let step = last_step + 1;
    while step > portcullis_control_plane::now() / 30 + 1 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    (
        portcullis_control_plane::identity::totp::code(key, step),
        step,
    )
}

/// Enrols TOTP through `/v1/me` with a user's control-plane `access` token and `password`
/// (start, then confirm with the current step); the key and that step.
pub async fn enrol_totp(app: &TestApp, access: &str, password: &str) -> (Vec<u8>, i64) {
    let enrol = app
        .send(
            Call::new(Method::POST, "/v1/me/totp")
                .bearer(access)
                .json(&serde_json::json!({"current_password": password})),
        )
        .await;
    assert_eq!(enrol.status, StatusCode::OK, "{}", enrol.text);
    let secret = enrol.json()["secret"].as_str().unwrap().to_owned();
    let key = portcullis_control_plane::identity::totp::decode_base32(&secret).unwrap();
    let step = portcullis_control_plane::now() / 30;
    let confirm = app
        .send(
            Call::new(Method::POST, "/v1/me/totp/confirm")
                .bearer(access)
                .json(
                    &serde_json::json!({"code": portcullis_control_plane::identity::totp::code(&key, step)}),
                ),
        )
        .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.text);
    (key, step)
}
