//! A person at a real browser (Debian's Chromium, driven by playwright-core from npm:
//! `tests/browser/sign-in.mjs`) signs in to the demo app behind a real Envoy, whose oauth2
//! filter runs the authorization code flow against a real control plane: the app's page sends
//! the browser to the login page, password then one-time code, back on the app, which names the
//! user; signing out ends the sign-in, and the access token the browser held (in Envoy's sealed
//! cookies, replayed) is then rejected at Envoy. Screenshots of each page are written to `target/browser/`.
//!
//! `cargo xtask test` installs Chromium and the npm package (`PORTCULLIS_CHROMIUM`,
//! `PORTCULLIS_BROWSER_DIR`).

use portcullis_tests::control_plane::{sqlite_url, ControlPlane, BUNDLE_CREDENTIAL};
use portcullis_tests::echo::EchoUpstream;
use portcullis_tests::envoy::{plugin_config, BrowserApp, Envoy, EnvoyOptions};
use portcullis_tests::stack::await_first_bundle;
use serde_json::{json, Value};
use std::path::PathBuf;

const PASSWORD: &str = "correct horse battery";

fn browser_dir() -> PathBuf {
    std::env::var_os("PORTCULLIS_BROWSER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| portcullis_tests::repo_root().join("tests/browser"))
}

fn chromium() -> PathBuf {
    std::env::var_os("PORTCULLIS_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_with_password_and_totp_through_envoy_and_signing_out_ends_the_token() {
    let plane = ControlPlane::start(&sqlite_url("browser"));
    let operator = plane
        .create_client(
            "operator",
            "admin:users admin:clients api:items:read self",
            &["client_credentials"],
        )
        .await;
    let admin = plane.admin_token(&operator).await;
    let created = plane
        .admin(
            "POST",
            "/admin/v1/users",
            &admin,
            Some(&json!({"username": "rosa", "password": PASSWORD, "scopes": "api:items:read"})),
        )
        .await;
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let user_id = created.json()["user_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let web = plane.create_client("web", "self", &["password"]).await;
    let (_, otp) = plane.enrol_totp(&web, "rosa", PASSWORD).await;

    let port = portcullis_tests::free_port();
    let origin = format!("http://127.0.0.1:{port}");
    let app = plane
        .admin(
            "POST",
            "/admin/v1/clients",
            &admin,
            Some(&json!({
                "name": "Demo app",
                "scopes": "api:items:read",
                "grant_types": ["authorization_code"],
                "redirect_uris": [format!("{origin}/app/callback")],
                "post_logout_redirect_uris": [format!("{origin}/app/signed-out")],
                "token_endpoint_auth_method": "client_secret_post",
            })),
        )
        .await;
    assert_eq!(app.status, 201, "{}", String::from_utf8_lossy(&app.body));
    let app = app.json();
    let upstream = EchoUpstream::start().await;
    let options = EnvoyOptions {
        plugin_config: plugin_config(json!({
            "credential": BUNDLE_CREDENTIAL,
            "bundle_signing_keys": plane.bundle_pins().await,
            "refresh_interval_ms": 200,
            "long_poll_seconds": 5,
            "bypass_paths": ["/healthz", "/app/signed-out"],
        })),
        browser_app: Some(BrowserApp {
            issuer: plane.issuer(),
            origin: origin.clone(),
            client_id: app["client_id"].as_str().unwrap_or_default().to_owned(),
            client_secret: app["client_secret"].as_str().unwrap_or_default().to_owned(),
            hmac_secret: "browser-test-hmac-secret-0123456789abcdef".into(),
        }),
        ..EnvoyOptions::default()
    };
    let envoy = Envoy::start_on(
        &options,
        port,
        portcullis_tests::free_port(),
        upstream.port,
        plane.port,
    );
    await_first_bundle(&envoy).await;

    let screenshots = portcullis_tests::repo_root().join("target/browser");
    let output = tokio::process::Command::new("node")
        .arg(browser_dir().join("sign-in.mjs"))
        .current_dir(browser_dir())
        .env("APP_URL", format!("{origin}/app/"))
        .env("USERNAME", "rosa")
        .env("PASSWORD", PASSWORD)
        .env("OTP", &otp)
        .env("SCREENSHOTS", &screenshots)
        .env("CHROMIUM", chromium())
        .output()
        .await
        .unwrap_or_else(|e| panic!("node (run `cargo xtask test` to install it): {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| {
            panic!(
                "the browser script printed no result ({e}):\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    assert!(
        seen.get("error").is_none(),
        "the browser stopped: {}\nseen: {seen:#}\nEnvoy:\n{}",
        seen["error"].as_str().unwrap_or_default(),
        envoy.log()
    );
    let pages = seen["pages"].as_array().cloned().unwrap_or_default();
    let login_url = pages[0]["url"].as_str().unwrap_or_default();
    assert!(
        login_url.starts_with(&format!("{}/oauth2/authorize?", plane.issuer())),
        "the app sent the browser to the login page: {login_url}"
    );
    assert!(
        login_url.contains("code_challenge_method=S256"),
        "Envoy asks with PKCE: {login_url}"
    );
    assert_eq!(
        seen["sub"],
        format!("user:{user_id}"),
        "the app names the signed-in user: {seen:#}"
    );
    assert_eq!(seen["client"], app["client_id"]);
    assert_eq!(
        seen["bearer_cookie"], true,
        "Envoy holds the access token in its cookie"
    );
    assert_eq!(
        seen["app_before"], 200,
        "the browser's cookies (its access token) work at Envoy while signed in: {seen:#}"
    );
    assert_eq!(
        seen["app_after"], 401,
        "signing out revoked the same access token: replayed, Envoy's filter refuses it: {seen:#}"
    );
    assert_eq!(
        pages.last().and_then(|p| p["name"].as_str()),
        Some("login-again"),
        "after signing out the app asks for a sign-in again: {seen:#}"
    );
    for page in &pages {
        let name = page["name"].as_str().unwrap_or_default();
        assert!(
            std::fs::read_dir(&screenshots)
                .map(|entries| entries.filter_map(Result::ok).any(|e| e
                    .file_name()
                    .to_string_lossy()
                    .ends_with(&format!("{name}.png"))))
                .unwrap_or(false),
            "a screenshot of {name} in {}",
            screenshots.display()
        );
    }
}
