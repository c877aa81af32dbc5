//! The real control plane (the `portcullis-control-plane` library's `serve_on`, the same code
//! `portcullis serve` runs) on a free port in its own runtime, and a small client for it.

use crate::http::{request_with_body, Response};
use base64::Engine as _;
use portcullis_control_plane::infra::config::Config;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use portcullis_test_support::db::TestDb;

/// Credential the edge presents for the bundle.
pub const BUNDLE_CREDENTIAL: &str = "e2e-bundle-credential-0123456789abcdef";
/// Master key for test stores (base64 of 32 bytes).
pub const MASTER_KEY: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";

/// A running control plane; stopped on drop.
#[derive(Debug)]
pub struct ControlPlane {
    /// Listen port.
    pub port: u16,
    /// The database it uses.
    pub database_url: String,
    /// The issuer it puts into tokens.
    pub issuer: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A SQLite database in a fresh directory under [`e2e_dir`] named after `name` (left there
/// after the test).
pub fn sqlite_url(name: &str) -> String {
    let dir = e2e_dir().join(format!("cp-{name}-{}", crate::free_port()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    format!("sqlite://{}/portcullis.db?mode=rwc", dir.display())
}

/// The configuration a test control plane runs with.
pub fn config(port: u16, database_url: &str, extra: &[(&str, &str)]) -> Config {
    let policies = crate::repo_root().join("policies");
    let mut map: HashMap<String, String> = HashMap::new();
    for (k, v) in [
        ("PORTCULLIS_LISTEN", format!("127.0.0.1:{port}")),
        ("DATABASE_URL", database_url.to_owned()),
        ("PORTCULLIS_BUNDLE_CREDENTIAL", BUNDLE_CREDENTIAL.to_owned()),
        ("PORTCULLIS_MASTER_KEY", MASTER_KEY.to_owned()),
        ("PORTCULLIS_POLICY_DIR", policies.display().to_string()),
        ("PORTCULLIS_ISSUER", format!("http://127.0.0.1:{port}")),
    ] {
        map.insert(k.to_owned(), v);
    }
    for (k, v) in extra {
        map.insert((*k).to_owned(), (*v).to_owned());
    }
    Config::from_lookup(|name| map.get(name).cloned())
        .unwrap_or_else(|e| panic!("control plane config: {e}"))
}

/// The `Authorization` value for HTTP Basic client authentication.
pub fn basic(client: &(String, String)) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", client.0, client.1))
    )
}

impl ControlPlane {
    /// Starts on a free port over `database_url`.
    pub fn start(database_url: &str) -> Self {
        Self::start_with(crate::free_port(), database_url, &[])
    }

    /// Starts on `port` with extra configuration, and waits until it is ready.
    pub fn start_with(port: u16, database_url: &str, extra: &[(&str, &str)]) -> Self {
        Self::start_checked(port, database_url, extra, ready)
    }

    /// Starts on a free port serving TLS with `ca`'s server certificate (and an `https://`
    /// issuer), and waits until `/readyz` answers over TLS.
    pub fn start_tls(database_url: &str, ca: &crate::tls::TestCa) -> Self {
        let port = crate::free_port();
        let (cert, key) = (ca.cert.display().to_string(), ca.key.display().to_string());
        let issuer = format!("https://127.0.0.1:{port}");
        let extra = [
            ("PORTCULLIS_TLS_CERT", cert.as_str()),
            ("PORTCULLIS_TLS_KEY", key.as_str()),
            ("PORTCULLIS_ISSUER", issuer.as_str()),
        ];
        Self::start_checked(port, database_url, &extra, |port| {
            ca.status_line(port, "/readyz")
                .is_some_and(|line| line.starts_with("HTTP/1.1 200"))
        })
    }

    fn start_checked(
        port: u16,
        database_url: &str,
        extra: &[(&str, &str)],
        ready: impl Fn(u16) -> bool,
    ) -> Self {
        let config = config(port, database_url, extra);
        let issuer = config.issuer.clone();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("runtime: {e}"));
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(config.listen)
                    .await
                    .unwrap_or_else(|e| panic!("bind {}: {e}", config.listen));
                let stop = async move {
                    let _ = stop.await;
                };
                if let Err(error) =
                    portcullis_control_plane::server::serve_on(listener, config, stop).await
                {
                    eprintln!("control plane stopped: {error}");
                }
            });
        });
        let plane = ControlPlane {
            port,
            database_url: database_url.to_owned(),
            issuer,
            shutdown: Some(shutdown),
            thread: Some(thread),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if ready(port) {
                return plane;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("control plane on {port} did not become ready");
    }

    /// A handle on a control plane running elsewhere (another process) on `port` over
    /// `database_url`: its client calls work, and dropping it stops nothing.
    pub fn running_at(port: u16, database_url: &str) -> Self {
        ControlPlane {
            port,
            database_url: database_url.to_owned(),
            issuer: format!("http://127.0.0.1:{port}"),
            shutdown: None,
            thread: None,
        }
    }

    /// Stops the server (connections close; the store stays).
    pub fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// The issuer URL.
    pub fn issuer(&self) -> String {
        self.issuer.clone()
    }

    /// Sends a request; `body` is form or JSON text as `content_type` says.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        content_type: Option<&str>,
        body: &str,
    ) -> Response {
        let mut headers: Vec<(&str, &[u8])> = Vec::new();
        if let Some(auth) = authorization {
            headers.push(("authorization", auth.as_bytes()));
        }
        if let Some(ct) = content_type {
            headers.push(("content-type", ct.as_bytes()));
        }
        request_with_body(self.port, method, path, &headers, body.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// A form `POST` to `path` with Basic client authentication.
    pub async fn post_form(
        &self,
        path: &str,
        client: &(String, String),
        params: &[(&str, &str)],
    ) -> Response {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        self.call(
            "POST",
            path,
            Some(&basic(client)),
            Some("application/x-www-form-urlencoded"),
            &body,
        )
        .await
    }

    /// `POST /oauth2/token` with Basic client authentication.
    pub async fn token(&self, client: &(String, String), params: &[(&str, &str)]) -> Response {
        self.post_form("/oauth2/token", client, params).await
    }

    /// A client_credentials access token.
    pub async fn client_token(&self, client: &(String, String), scope: Option<&str>) -> String {
        let mut params = vec![("grant_type", "client_credentials")];
        if let Some(scope) = scope {
            params.push(("scope", scope));
        }
        self.access_token(client, &params).await
    }

    /// A `client_credentials` token for the control plane itself (RFC 8707 `resource` = the
    /// issuer), as a client with edge scopes besides its admin ones needs.
    pub async fn admin_token(&self, client: &(String, String)) -> String {
        let issuer = self.issuer();
        let params = [
            ("grant_type", "client_credentials"),
            ("resource", issuer.as_str()),
        ];
        self.access_token(client, &params).await
    }

    /// The access token of a token request that must succeed.
    async fn access_token(&self, client: &(String, String), params: &[(&str, &str)]) -> String {
        let reply = self.token(client, params).await;
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        reply.json()["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Enrols TOTP for `username` through self-service (a password-grant token with scope
    /// `self` through `web`) and confirms it with the current step; the secret (base32, as an
    /// authenticator app takes it) and a code for the next step, which stays inside the
    /// server's ±1 window for at least 30 s and is a later step than the confirmation's.
    pub async fn enrol_totp(
        &self,
        web: &(String, String),
        username: &str,
        password: &str,
    ) -> (String, String) {
        let login = self
            .token(
                web,
                &[
                    ("grant_type", "password"),
                    ("username", username),
                    ("password", password),
                    ("scope", "self"),
                ],
            )
            .await;
        let own = login.json()["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let enrol = self
            .admin(
                "POST",
                "/v1/me/totp",
                &own,
                Some(&serde_json::json!({"current_password": password})),
            )
            .await;
        let encoded = enrol.json()["secret"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let secret =
            portcullis_control_plane::identity::totp::decode_base32(&encoded).unwrap_or_default();
        let step = portcullis_control_plane::now() / 30;
        let code = portcullis_control_plane::identity::totp::code(&secret, step);
        let confirm = self
            .admin(
                "POST",
                "/v1/me/totp/confirm",
                &own,
                Some(&serde_json::json!({ "code": code })),
            )
            .await;
        assert_eq!(
            confirm.status,
            200,
            "{}",
            String::from_utf8_lossy(&confirm.body)
        );
        (
            encoded,
            portcullis_control_plane::identity::totp::code(&secret, step + 1),
        )
    }

    /// `POST /oauth2/revoke`.
    pub async fn revoke(&self, client: &(String, String), token: &str) -> Response {
        self.post_form("/oauth2/revoke", client, &[("token", token)])
            .await
    }

    /// An admin API call with a bearer token and a JSON body.
    pub async fn admin(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Response {
        let auth = format!("Bearer {token}");
        let text = body.map(Value::to_string).unwrap_or_default();
        let content_type = body.map(|_| "application/json");
        self.call(method, path, Some(&auth), content_type, &text)
            .await
    }

    /// The bundle-signing public keys edges pin (as `portcullis keys bundle-public` prints
    /// them): the filter configuration's `bundle_signing_keys`.
    pub async fn bundle_pins(&self) -> Value {
        let db = portcullis_control_plane::infra::db::connect(&self.database_url)
            .await
            .unwrap_or_else(|e| panic!("db: {e}"));
        let master = portcullis_control_plane::keys::secrets::MasterKey::from_base64(MASTER_KEY)
            .unwrap_or_else(|e| panic!("{e}"));
        let pins = portcullis_control_plane::keys::bundle::pins(&db.pool, &master)
            .await
            .unwrap_or_else(|e| panic!("bundle pins: {e}"));
        db.pool.close().await;
        serde_json::to_value(pins.keys).unwrap_or_default()
    }

    /// An edge token for `user:42` with `scope`, signed in the store with the active token key
    /// (as the token endpoint would issue it), for tests that do not speak HTTP to the plane.
    pub async fn signed_edge_token(&self, scope: &str) -> String {
        let db = portcullis_control_plane::infra::db::connect(&self.database_url)
            .await
            .unwrap_or_else(|e| panic!("db: {e}"));
        let master = portcullis_control_plane::keys::secrets::MasterKey::from_base64(MASTER_KEY)
            .unwrap_or_else(|e| panic!("{e}"));
        let key = portcullis_control_plane::keys::signing::active(&db.pool, &master)
            .await
            .unwrap_or_else(|e| panic!("active key: {e}"));
        db.pool.close().await;
        let mut claims = crate::tokens::claims(scope);
        claims["iss"] = self.issuer.clone().into();
        key.sign(&claims).unwrap_or_else(|e| panic!("signing: {e}"))
    }

    /// Creates a client directly in the store (as `portcullis client create` does).
    pub async fn create_client(
        &self,
        name: &str,
        scopes: &str,
        grants: &[&str],
    ) -> (String, String) {
        self.create_client_with_roles(name, scopes, grants, &[])
            .await
    }

    /// Creates a client with roles (its own, and those its users' tokens may carry).
    pub async fn create_client_with_roles(
        &self,
        name: &str,
        scopes: &str,
        grants: &[&str],
        roles: &[&str],
    ) -> (String, String) {
        let db = portcullis_control_plane::infra::db::connect(&self.database_url)
            .await
            .unwrap_or_else(|e| panic!("db: {e}"));
        let master = portcullis_control_plane::keys::secrets::MasterKey::from_base64(MASTER_KEY)
            .unwrap_or_else(|e| panic!("{e}"));
        let grants: Vec<_> = grants
            .iter()
            .map(|g| portcullis_control_plane::oauth::grant::GrantType::from_name(g).expect(g))
            .collect();
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        let mut tx = db.pool.begin().await.unwrap_or_else(|e| panic!("{e}"));
        let new = portcullis_control_plane::oauth::clients::NewClient {
            name,
            scopes,
            grants: &grants,
            roles: &roles,
            tenant: None,
            ..Default::default()
        };
        let (client, secret) =
            portcullis_control_plane::oauth::clients::create(&mut tx, &master, &new)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        tx.commit().await.unwrap_or_else(|e| panic!("{e}"));
        db.pool.close().await;
        (client.client_id, secret)
    }
}

/// Whether `/readyz` answers 200 (the store is open and migrated once the server answers).
fn ready(port: u16) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream
        .write_all(b"GET /readyz HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where the test control plane keeps its databases' files.
pub fn e2e_dir() -> PathBuf {
    crate::repo_root().join("target/e2e")
}

/// A fresh PostgreSQL database (with a directory under [`e2e_dir`]), dropped with the value.
pub async fn postgres_db() -> TestDb {
    TestDb::postgres(&e2e_dir()).await
}
