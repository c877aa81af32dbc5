//! Starting a real Envoy with the release filter on free ports.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Envoy binary: `$ENVOY_BIN`, or the one `cargo xtask test` installs under `.tools/`.
pub fn envoy_bin() -> PathBuf {
    std::env::var_os("ENVOY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo_root().join(".tools/venv/bin/envoy"))
}

/// The release filter as Envoy loads it: `$PORTCULLIS_WASM`, or the trimmed build that `cargo
/// xtask setup` (and `cargo xtask test`) writes to `target/portcullis/portcullis.wasm`.
pub fn wasm_path() -> PathBuf {
    let path = std::env::var_os("PORTCULLIS_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo_root().join("target/portcullis/portcullis.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask setup` (or `cargo xtask test`)",
        path.display()
    );
    path
}

/// How to run Envoy.
#[derive(Debug, Clone)]
pub struct EnvoyOptions {
    /// Worker threads.
    pub concurrency: u32,
    /// The filter configuration (JSON).
    pub plugin_config: Value,
    /// Whether Envoy's own `normalize_path`/`merge_slashes` are on (the filter normalises anyway).
    pub envoy_normalizes_paths: bool,
    /// Routes (Envoy `Route` objects) tried before the template's catch-all to the upstream.
    pub routes: Vec<Value>,
    /// TLS to the control plane: the CA file Envoy trusts and the name it expects (and sends as
    /// SNI); plain HTTP without it.
    pub control_plane_tls: Option<(PathBuf, String)>,
    /// A browser app under `/app/` that Envoy's oauth2 filter signs people in to
    /// (`envoy/browser-app.yaml`).
    pub browser_app: Option<BrowserApp>,
}

/// The client a browser app behind Envoy is registered as, and where it is.
#[derive(Debug, Clone)]
pub struct BrowserApp {
    /// The control plane's issuer URL (its authorization, token and logout endpoints).
    pub issuer: String,
    /// The app's origin as the browser sees it (`http://127.0.0.1:<port>`).
    pub origin: String,
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: String,
    /// The key Envoy signs its cookies with.
    pub hmac_secret: String,
}

/// `config` with `envoy/browser-app.yaml`'s secrets, oauth2 filter and routes for `app`.
pub fn with_browser_app(config: &str, app: &BrowserApp) -> String {
    let path = crate::repo_root().join("envoy/browser-app.yaml");
    let mut snippet =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (name, value) in [
        ("ISSUER", &app.issuer),
        ("APP_ORIGIN", &app.origin),
        ("CLIENT_ID", &app.client_id),
        ("CLIENT_SECRET", &app.client_secret),
        ("HMAC_SECRET", &app.hmac_secret),
    ] {
        snippet = snippet.replace(&format!("${{{name}}}"), value);
    }
    let part = |name: &str| -> Vec<String> {
        snippet
            .split(&format!("#@ {name}\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("browser-app.yaml has no `#@ {name}` part"))
            .lines()
            .take_while(|line| !line.starts_with("#@ "))
            .map(str::to_owned)
            .collect()
    };
    let indented = |lines: &[String], indent: &str| -> String {
        lines.iter().map(|l| format!("{indent}{l}\n")).collect()
    };
    let mut text = config.replacen(
        "static_resources:\n",
        &format!(
            "static_resources:\n  secrets:\n{}",
            indented(&part("secrets"), "    ")
        ),
        1,
    );
    let wasm = "- name: envoy.filters.http.wasm";
    let at = text
        .find(wasm)
        .unwrap_or_else(|| panic!("the template has no wasm filter"));
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let indent = text[line_start..at].to_owned();
    text.insert_str(line_start, &indented(&part("filter"), &indent));
    const ROUTES: &str = "routes:\n";
    let at = text
        .find(ROUTES)
        .unwrap_or_else(|| panic!("the template has no route list"))
        + ROUTES.len();
    let rest = &text[at..];
    let indent = rest[..rest.len() - rest.trim_start_matches(' ').len()].to_owned();
    text.insert_str(at, &indented(&part("routes"), &indent));
    text
}

/// What fills `CONTROL_PLANE_TRANSPORT`: `envoy/control-plane-tls.yaml` for `tls`, indented into
/// the cluster, or a comment saying the connection is plain.
pub fn control_plane_transport(tls: Option<&(PathBuf, String)>) -> String {
    let Some((ca, sni)) = tls else {
        return "# plain HTTP to the control plane (no transport_socket)".into();
    };
    let path = crate::repo_root().join("envoy/control-plane-tls.yaml");
    let snippet =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let snippet = snippet
        .replace("${CONTROL_PLANE_CA}", &ca.display().to_string())
        .replace("${CONTROL_PLANE_SNI}", sni);
    let lines: Vec<&str> = snippet.lines().filter(|l| !l.starts_with('#')).collect();
    lines.join("\n      ")
}

/// A filter configuration pointing at the bundle server (and pinning its signing key) with fast
/// test timings.
pub fn plugin_config(extra: Value) -> Value {
    let mut config = serde_json::json!({
        "cluster": "portcullis_control_plane",
        "credential": crate::bundle_server::CREDENTIAL,
        "bundle_signing_keys": crate::tokens::bundle_pins(),
        "refresh_interval_ms": 200,
        "long_poll_seconds": 5,
        "bypass_paths": ["/healthz"],
    });
    if let (Some(base), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        for (name, value) in extra {
            base.insert(name.clone(), value.clone());
        }
    }
    config
}

impl Default for EnvoyOptions {
    fn default() -> Self {
        EnvoyOptions {
            concurrency: 1,
            plugin_config: plugin_config(Value::Null),
            envoy_normalizes_paths: true,
            routes: Vec::new(),
            control_plane_tls: None,
            browser_app: None,
        }
    }
}

/// A running Envoy, killed on drop.
#[derive(Debug)]
pub struct Envoy {
    /// Listener port.
    pub port: u16,
    /// Admin port.
    pub admin_port: u16,
    /// Working directory (config, logs).
    pub dir: PathBuf,
    child: Child,
}

/// Fills every `${NAME}` of `envoy/envoy.template.yaml` from `values`; panics if one is left.
pub fn render_template(values: &[(&str, String)]) -> String {
    let mut text = std::fs::read_to_string(crate::repo_root().join("envoy/envoy.template.yaml"))
        .unwrap_or_else(|e| panic!("envoy/envoy.template.yaml: {e}"));
    for (name, value) in values {
        text = text.replace(&format!("${{{name}}}"), value);
    }
    let unfilled: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains("${"))
        .collect();
    assert!(unfilled.is_empty(), "unfilled placeholders: {unfilled:?}");
    text
}

/// The plugin configuration as the template embeds it (a YAML single-quoted string).
pub fn quoted_plugin_config(config: &Value) -> String {
    config.to_string().replace('\'', "''")
}

/// The Envoy configuration for the tests and the README's local run.
pub fn render_config(
    options: &EnvoyOptions,
    port: u16,
    admin_port: u16,
    upstream_port: u16,
    control_plane_port: u16,
    access_log: &str,
) -> String {
    let normalize = if options.envoy_normalizes_paths {
        "true"
    } else {
        "false"
    };
    let config = render_template(&[
        ("BIND_ADDRESS", "127.0.0.1".into()),
        ("CLUSTER_TYPE", "STATIC".into()),
        ("UPSTREAM_HOST", "127.0.0.1".into()),
        ("CONTROL_PLANE_HOST", "127.0.0.1".into()),
        ("LISTEN_PORT", port.to_string()),
        ("ADMIN_PORT", admin_port.to_string()),
        ("UPSTREAM_PORT", upstream_port.to_string()),
        ("CONTROL_PLANE_PORT", control_plane_port.to_string()),
        ("NORMALIZE_PATHS", normalize.into()),
        (
            "CONTROL_PLANE_TRANSPORT",
            control_plane_transport(options.control_plane_tls.as_ref()),
        ),
        ("ACCESS_LOG", access_log.into()),
        ("WASM_PATH", wasm_path().display().to_string()),
        (
            "PLUGIN_CONFIG",
            quoted_plugin_config(&options.plugin_config),
        ),
    ]);
    let config = with_routes_first(&config, &options.routes);
    match &options.browser_app {
        Some(app) => with_browser_app(&config, app),
        None => config,
    }
}

/// `config` with `routes` (as YAML flow mappings) ahead of the template's own.
fn with_routes_first(config: &str, routes: &[Value]) -> String {
    const ROUTES: &str = "routes:\n";
    let Some(at) = config.find(ROUTES) else {
        panic!("the template has no route list");
    };
    let (head, rest) = config.split_at(at + ROUTES.len());
    let indent = &rest[..rest.len() - rest.trim_start_matches(' ').len()];
    let mut text = head.to_owned();
    for route in routes {
        text.push_str(&format!("{indent}- {route}\n"));
    }
    text.push_str(rest);
    text
}

impl Envoy {
    /// Starts Envoy in front of `upstream_port`, fetching bundles from `control_plane_port`, and
    /// waits until it is ready.
    pub fn start(options: &EnvoyOptions, upstream_port: u16, control_plane_port: u16) -> Self {
        Self::start_on(
            options,
            crate::free_port(),
            crate::free_port(),
            upstream_port,
            control_plane_port,
        )
    }

    /// Like [`Envoy::start`] on fixed listener and admin ports.
    pub fn start_on(
        options: &EnvoyOptions,
        port: u16,
        admin_port: u16,
        upstream_port: u16,
        control_plane_port: u16,
    ) -> Self {
        let dir = crate::repo_root().join(format!("target/e2e/envoy-{port}"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let access_log = dir.join("access.log");
        let config = render_config(
            options,
            port,
            admin_port,
            upstream_port,
            control_plane_port,
            &access_log.display().to_string(),
        );
        let config_path = dir.join("envoy.yaml");
        std::fs::write(&config_path, config).unwrap_or_else(|e| panic!("write config: {e}"));
        let log =
            std::fs::File::create(dir.join("envoy.log")).unwrap_or_else(|e| panic!("log: {e}"));
        let child = Command::new(envoy_bin())
            .arg("-c")
            .arg(&config_path)
            .args([
                "--concurrency",
                &options.concurrency.to_string(),
                "--disable-hot-restart",
                "-l",
                "info",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e} (run `cargo xtask test` to install Envoy)",
                    envoy_bin().display()
                )
            });
        let mut envoy = Envoy {
            port,
            admin_port,
            dir,
            child,
        };
        envoy.wait_ready();
        envoy
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("envoy exited with {status}:\n{}", self.log());
            }
            if admin_get(self.admin_port, "/ready").is_some_and(|body| body.contains("LIVE"))
                && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("envoy not ready after 60 s:\n{}", self.log());
    }

    /// Envoy's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("envoy.log")).unwrap_or_default()
    }

    /// The access log so far.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }

    /// A counter or gauge from the admin `/stats` endpoint.
    pub fn stat(&self, name: &str) -> Option<u64> {
        let stats = admin_get(
            self.admin_port,
            &format!("/stats?filter=^{}$", name.replace('.', "\\.")),
        )?;
        stats.lines().find_map(|line| {
            let (n, v) = line.split_once(": ")?;
            (n == name).then(|| v.trim().parse().ok()).flatten()
        })
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking GET on the admin port; `None` unless the answer is 200.
pub fn admin_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}
