//! `cargo xtask up`: the whole system on this machine until Ctrl-C — the control plane
//! (`portcullis serve`, SQLite in `target/demo/`), Envoy with the release filter following its
//! bundle and with its oauth2 filter signing people in to the demo browser app at `/app/`
//! (`envoy/browser-app.yaml`), and an echo upstream that also serves that app. Demo identities
//! are created with the real CLI; bob's TOTP through self-service.

use portcullis_tests::control_plane::ControlPlane;
use portcullis_tests::echo::EchoUpstream;
use portcullis_tests::envoy::{plugin_config, BrowserApp, Envoy, EnvoyOptions};
use serde_json::{json, Value};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CONTROL_PLANE: &str = "127.0.0.1:8080";
const EDGE: &str = "127.0.0.1:10000";
const BOB_PASSWORD: &str = "bob demo password";

/// Kills the child on drop so Ctrl-C leaves nothing behind.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn portcullis_bin() -> PathBuf {
    std::env::var_os("PORTCULLIS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| portcullis_tests::repo_root().join("target/debug/portcullis"))
}

fn cli(dir: &Path, credential: &str, args: &[&str], stdin: Option<&str>) -> Value {
    let mut child = Command::new(portcullis_bin())
        .args(args)
        .current_dir(dir)
        .env("PORTCULLIS_BUNDLE_CREDENTIAL", credential)
        .env("PORTCULLIS_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", portcullis_bin().display()));
    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
        let _ = input.write_all(text.as_bytes());
    }
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("portcullis {args:?}: {e}"));
    assert!(output.status.success(), "portcullis {args:?} failed");
    serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
}

fn field<'a>(value: &'a Value, name: &str) -> &'a str {
    value[name].as_str().unwrap_or_default()
}

#[tokio::main]
async fn main() {
    let dir = portcullis_tests::repo_root().join("target/demo");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let policies = portcullis_tests::repo_root().join("policies");
    let credential = format!("demo-bundle-{}", std::process::id() as u64 * 7919 + 104_729);

    // Identities first (the CLI opens the same SQLite store and migrates it).
    let admin = cli(
        &dir,
        &credential,
        &["bootstrap", "--username", "admin", "--password-stdin"],
        Some("demo admin password"),
    );
    let service = cli(
        &dir,
        &credential,
        &[
            "client",
            "create",
            "--name",
            "inventory-service",
            "--scopes",
            "api:items:read",
        ],
        None,
    );
    let web = cli(
        &dir,
        &credential,
        &[
            "client",
            "create",
            "--name",
            "web",
            "--scopes",
            "api:items:read api:items:write self",
            "--grants",
            "password,refresh_token",
            "--roles",
            "sre",
        ],
        None,
    );
    cli(
        &dir,
        &credential,
        &[
            "user",
            "create",
            "--username",
            "alice",
            "--password-stdin",
            "--roles",
            "sre",
            "--scopes",
            "api:items:read api:items:write",
        ],
        Some("alice demo password"),
    );

    // The browser app behind Envoy: a confidential client of the authorization code grant.
    let app = cli(
        &dir,
        &credential,
        &[
            "client",
            "create",
            "--name",
            "Demo app",
            "--scopes",
            "api:items:read",
            "--grants",
            "authorization_code",
            "--redirect-uri",
            &format!("http://{EDGE}/app/callback"),
            "--post-logout-redirect-uri",
            &format!("http://{EDGE}/app/signed-out"),
        ],
        None,
    );
    cli(
        &dir,
        &credential,
        &[
            "user",
            "create",
            "--username",
            "bob",
            "--password-stdin",
            "--scopes",
            "api:items:read",
        ],
        Some(BOB_PASSWORD),
    );

    // The keys Envoy's filter pins: it applies only bundles the control plane signed.
    let pins = cli(&dir, &credential, &["keys", "bundle-public"], None);

    let control_plane = Guard(
        Command::new(portcullis_bin())
            .arg("serve")
            .current_dir(&dir)
            .env("PORTCULLIS_LISTEN", CONTROL_PLANE)
            .env("PORTCULLIS_BUNDLE_CREDENTIAL", &credential)
            .env("PORTCULLIS_POLICY_DIR", &policies)
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(dir.join("control-plane.log"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .spawn()
            .unwrap_or_else(|e| panic!("portcullis serve: {e}")),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(CONTROL_PLANE).is_err() {
        assert!(
            Instant::now() < deadline,
            "control plane did not start; see {}/control-plane.log",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let web_client = (
        field(&web, "client_id").to_owned(),
        field(&web, "client_secret").to_owned(),
    );
    let database_url = format!("sqlite://{}/portcullis.db?mode=rwc", dir.display());
    let (bob_secret, _) = ControlPlane::running_at(8080, &database_url)
        .enrol_totp(&web_client, "bob", BOB_PASSWORD)
        .await;
    let upstream = EchoUpstream::start_on(8081).await;
    let options = EnvoyOptions {
        plugin_config: plugin_config(
            json!({"credential": credential, "bundle_signing_keys": pins["keys"], "refresh_interval_ms": 1000, "long_poll_seconds": 20, "bypass_paths": ["/healthz", "/app/signed-out"]}),
        ),
        browser_app: Some(BrowserApp {
            issuer: format!("http://{CONTROL_PLANE}"),
            origin: format!("http://{EDGE}"),
            client_id: field(&app, "client_id").to_owned(),
            client_secret: field(&app, "client_secret").to_owned(),
            hmac_secret: format!("demo-cookies-{credential}"),
        }),
        ..EnvoyOptions::default()
    };
    let envoy = Envoy::start_on(&options, 10000, 9901, upstream.port, 8080);

    println!(
        r#"
Portcullis is up (Ctrl-C stops everything):
  control plane   http://{CONTROL_PLANE}   (SQLite and key file in {dir}; log control-plane.log)
  Envoy + filter  http://{EDGE}   (admin http://127.0.0.1:9901; config and logs in {envoy_dir})
  demo upstream   http://127.0.0.1:8081    (echoes the headers it receives; the demo app under /app/)

0. Open this in a browser: http://{EDGE}/app/
  Envoy sends you to the Portcullis login page: username bob, password "{BOB_PASSWORD}", then the
  one-time code. Add bob's TOTP secret {bob_secret} to an authenticator app, or print the
  current code (wait for the next one if it is the code of this very half-minute):
  python3 -c 'import base64,hmac,struct,time;s="{bob_secret}";k=base64.b32decode(s+"="*(-len(s)%8));h=hmac.new(k,struct.pack(">Q",int(time.time())//30),"sha1").digest();o=h[-1]&15;print("%06d"%((struct.unpack(">I",h[o:o+4])[0]&0x7fffffff)%1000000))'
  The app shows who you are (the identity headers the filter sent); "Sign out" ends the sign-in
  at Portcullis, and Envoy refuses that session's token from then on.

1. A service gets a token (client_credentials) and calls through Envoy:
  TOKEN=$(curl -s -u '{svc_id}:{svc_secret}' -d grant_type=client_credentials http://{CONTROL_PLANE}/oauth2/token | python3 -c 'import sys,json;print(json.load(sys.stdin)["access_token"])')
  curl -i http://127.0.0.1:10000/api/items                                       # 401: no token
  curl -i -H "Authorization: Bearer $TOKEN" http://127.0.0.1:10000/api/items     # 200: x-portcullis-* headers echoed
  curl -i -H "Authorization: Bearer $TOKEN" -X POST http://127.0.0.1:10000/api/items   # 403: no write scope

2. A user logs in (password grant through the first-party client "web"):
  USER_TOKEN=$(curl -s -u '{web_id}:{web_secret}' -d grant_type=password -d username=alice -d 'password=alice demo password' http://{CONTROL_PLANE}/oauth2/token | python3 -c 'import sys,json;print(json.load(sys.stdin)["access_token"])')
  curl -i -H "Authorization: Bearer $USER_TOKEN" -X POST http://127.0.0.1:10000/api/items   # 200: alice may write
  curl -i -H "Authorization: Bearer $USER_TOKEN" http://127.0.0.1:10000/ops/status          # 200: role sre is in ops
  curl -i -H "Authorization: Bearer $USER_TOKEN" http://127.0.0.1:10000/admin/users         # 403: admin area

3. Revoke the service token; Envoy rejects it within about a second:
  curl -s -u '{svc_id}:{svc_secret}' -d "token=$TOKEN" http://{CONTROL_PLANE}/oauth2/revoke
  sleep 1; curl -i -H "Authorization: Bearer $TOKEN" http://127.0.0.1:10000/api/items     # 401

4. Administer (user "admin" logs in through the admin client; admin:full):
  ADMIN_TOKEN=$(curl -s -u '{admin_id}:{admin_secret}' -d grant_type=password -d username=admin -d 'password=demo admin password' http://{CONTROL_PLANE}/oauth2/token | python3 -c 'import sys,json;print(json.load(sys.stdin)["access_token"])')
  curl -s -H "Authorization: Bearer $ADMIN_TOKEN" http://{CONTROL_PLANE}/admin/v1/users          # the users
  curl -s -H "Authorization: Bearer $ADMIN_TOKEN" http://{CONTROL_PLANE}/admin/v1/policies       # the policies in force
OpenAPI: http://{CONTROL_PLANE}/openapi.json
Filter metrics: curl -s http://127.0.0.1:9901/stats | grep portcullis
"#,
        dir = dir.display(),
        envoy_dir = envoy.dir.display(),
        svc_id = field(&service, "client_id"),
        svc_secret = field(&service, "client_secret"),
        web_id = field(&web, "client_id"),
        web_secret = field(&web, "client_secret"),
        admin_id = field(&admin, "client_id"),
        admin_secret = field(&admin, "client_secret"),
        bob_secret = bob_secret,
    );
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .unwrap_or_else(|e| panic!("signal handler: {e}"));
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    println!("stopping");
    drop(envoy);
    drop(upstream);
    drop(control_plane);
}
