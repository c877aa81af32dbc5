//! docker-compose.yml cannot run here (no Docker engine), so this checks it against the
//! repository: the Envoy config it mounts is the template rendered for compose and passes
//! `envoy --mode validate`, every mounted file exists, every variable it sets is one the control
//! plane reads, and the ports and credentials on both sides agree: both take the bundle
//! credential from `portcullis.env`, and Envoy takes its pinned bundle-signing keys from there.

use portcullis_authz::config::PluginConfig;
use portcullis_tests::envoy::{envoy_bin, quoted_plugin_config, render_template, wasm_path};
use portcullis_tests::repo_root;
use serde_json::json;
use std::process::Command;

const CREDENTIAL_VARIABLE: &str = "PORTCULLIS_BUNDLE_CREDENTIAL";
const PINS_VARIABLE: &str = "PORTCULLIS_BUNDLE_SIGNING_KEYS";

/// `value` with each `${NAME…}` of compose's interpolation replaced by a stand-in.
fn interpolated(value: &str) -> String {
    let mut out = value.to_owned();
    while let Some(start) = out.find("${") {
        let Some(end) = out[start..].find('}') else {
            break;
        };
        let name = &out[start + 2..start + end];
        let stand_in = if name.starts_with("PORTCULLIS_REDIS_PASSWORD") {
            "redis-password"
        } else {
            "x"
        };
        out.replace_range(start..start + end + 1, stand_in);
    }
    out
}

fn compose_values(wasm: &str) -> Vec<(&'static str, String)> {
    let plugin = json!({
        "cluster": "portcullis_control_plane",
        "authority": "control-plane",
        "credential_env": CREDENTIAL_VARIABLE,
        "bundle_signing_keys_env": PINS_VARIABLE,
        "bypass_paths": ["/healthz"],
    });
    vec![
        ("BIND_ADDRESS", "0.0.0.0".into()),
        ("CLUSTER_TYPE", "STRICT_DNS".into()),
        ("UPSTREAM_HOST", "upstream".into()),
        ("CONTROL_PLANE_HOST", "control-plane".into()),
        ("LISTEN_PORT", "10000".into()),
        ("ADMIN_PORT", "9901".into()),
        ("UPSTREAM_PORT", "8081".into()),
        ("CONTROL_PLANE_PORT", "8080".into()),
        ("NORMALIZE_PATHS", "true".into()),
        (
            "CONTROL_PLANE_TRANSPORT",
            portcullis_tests::envoy::control_plane_transport(None),
        ),
        ("ACCESS_LOG", "/dev/stdout".into()),
        ("WASM_PATH", wasm.into()),
        ("PLUGIN_CONFIG", quoted_plugin_config(&plugin)),
    ]
}

fn compose() -> String {
    std::fs::read_to_string(repo_root().join("docker-compose.yml")).unwrap()
}

/// `NAME=value` lines of `portcullis.env.example`, the env file's template.
fn env_file() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo_root().join("portcullis.env.example")).unwrap();
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn env_file_value(name: &str) -> String {
    let entries = env_file();
    let found = entries.iter().find(|(k, _)| k == name);
    found.map(|(_, v)| v.clone()).unwrap_or_default()
}

/// The lines of one service's block in docker-compose.yml, joined.
fn service_block(text: &str, service: &str) -> String {
    text.lines()
        .skip_while(|l| l.trim_end() != format!("  {service}:"))
        .skip(1)
        .take_while(|l| l.starts_with("    ") || l.is_empty())
        .collect()
}

/// `KEY: value` lines of one service's `environment:` block.
fn environment(service: &str) -> Vec<(String, String)> {
    let text = compose();
    let mut lines = text
        .lines()
        .skip_while(|l| l.trim_end() != format!("  {service}:"));
    lines.next();
    let block: Vec<&str> = lines
        .take_while(|l| l.starts_with("    ") || l.is_empty())
        .collect();
    block
        .iter()
        .skip_while(|l| l.trim() != "environment:")
        .skip(1)
        .take_while(|l| l.starts_with("      "))
        .filter_map(|l| l.trim().split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn envoy_compose_config_is_the_rendered_template() {
    let rendered = render_template(&compose_values("/etc/envoy/portcullis.wasm"));
    let committed =
        std::fs::read_to_string(repo_root().join("envoy/envoy-compose.yaml")).unwrap_or_default();
    if committed != rendered {
        std::fs::write(
            repo_root().join("target/envoy-compose.expected.yaml"),
            &rendered,
        )
        .unwrap();
        panic!("envoy/envoy-compose.yaml is stale: the expected rendering is in target/envoy-compose.expected.yaml");
    }
}

#[test]
fn envoy_accepts_the_compose_config() {
    let dir = repo_root().join("target/e2e/compose");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("envoy.yaml");
    std::fs::write(
        &path,
        render_template(&compose_values(&wasm_path().display().to_string())),
    )
    .unwrap();
    // What the env file holds once `keys bundle-public` has been appended to it.
    let pins = json!({ "keys": portcullis_tests::tokens::bundle_pins() });
    let output = Command::new(envoy_bin())
        .args(["--mode", "validate", "-c"])
        .arg(&path)
        .env(CREDENTIAL_VARIABLE, env_file_value(CREDENTIAL_VARIABLE))
        .env(PINS_VARIABLE, pins.to_string())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "envoy rejects the compose config:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn compose_matches_the_repository() {
    let text = compose();
    // Mounted and built files exist (the filter is a build output of the test command).
    for line in text.lines() {
        let line = line.trim().trim_start_matches("- ");
        if let Some(path) = line.strip_prefix("./").and_then(|l| l.split(':').next()) {
            assert!(
                repo_root().join(path).exists(),
                "{path} is mounted but missing"
            );
        }
        if let Some(file) = line.strip_prefix("dockerfile: ") {
            assert!(repo_root().join(file).exists(), "{file} is missing");
        }
    }
    // The control plane only gets variables it reads.
    let env = environment("control-plane");
    assert!(env.len() >= 6, "{env:?}");
    for (name, _) in &env {
        assert!(
            portcullis_control_plane::infra::config::VARIABLES.contains(&name.as_str()),
            "{name} is set in compose but never read"
        );
    }
    let value = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    // Its configuration is valid (master key stands in for the required variable).
    let listen = value("PORTCULLIS_LISTEN");
    let from_file = env_file();
    let config = portcullis_control_plane::infra::config::Config::from_lookup(|name| match name {
        "PORTCULLIS_MASTER_KEY" => Some("AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=".into()),
        other => env
            .iter()
            .chain(&from_file)
            .find(|(k, _)| k == other)
            .map(|(_, v)| interpolated(v)),
    })
    .unwrap();
    assert!(config.database_url.contains("@postgres:5432/"));
    // The service runs as the insert-only role; the owner migrates and grants first.
    assert!(
        config
            .database_url
            .starts_with("postgres://portcullis_app:"),
        "the control plane runs as the database owner: {}",
        config.database_url
    );
    let migrate = environment("migrate");
    assert!(
        migrate
            .iter()
            .any(|(k, v)| k == "DATABASE_URL" && v.starts_with("postgres://portcullis:")),
        "migrate does not run as the owner: {migrate:?}"
    );
    let grant = service_block(&text, "grant");
    assert!(
        grant.contains("/sql/postgres-audit-insert-only.sql")
            && grant.contains("./control-plane/sql:/sql:ro")
            && grant.contains("condition: service_completed_successfully"),
        "grant does not apply the insert-only role after migrate: {grant}"
    );
    assert!(
        service_block(&text, "control-plane").contains("grant:"),
        "the control plane starts before its role is granted"
    );
    // Redis needs its password, from the operator's environment, never from a committed file.
    let redis = service_block(&text, "redis");
    assert!(
        redis.contains("--requirepass") && redis.contains("${PORTCULLIS_REDIS_PASSWORD"),
        "compose's Redis accepts anyone: {redis}"
    );
    assert_eq!(
        config.redis_url.as_deref(),
        Some("redis://:redis-password@redis:6379"),
        "the control plane does not send the Redis password"
    );
    assert_eq!(listen, "0.0.0.0:8080");
    // The credential comes from the env file, on both sides, and never from a committed file.
    assert!(
        value(CREDENTIAL_VARIABLE).is_empty() && !text.contains("credential-change-me"),
        "the bundle credential is written into docker-compose.yml"
    );
    assert!(config
        .bundle_credential
        .is_some_and(|c| c == env_file_value(CREDENTIAL_VARIABLE)));
    for service in ["control-plane", "envoy"] {
        let block = service_block(&text, service);
        assert!(
            block.contains("env_file: portcullis.env"),
            "{service} does not read portcullis.env"
        );
    }
    let ignored = std::fs::read_to_string(repo_root().join(".gitignore")).unwrap();
    assert!(
        ignored.lines().any(|l| l == "portcullis.env"),
        "portcullis.env is not git-ignored"
    );
    assert!(
        env_file().iter().any(|(k, _)| k == PINS_VARIABLE),
        "the env file has no place for the bundle-signing keys"
    );
    // Envoy's filter reads both variables, which Envoy passes into its VM, and fetches from the
    // port the control plane serves.
    let envoy = std::fs::read_to_string(repo_root().join("envoy/envoy-compose.yaml")).unwrap();
    let plugin_json = envoy
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("value: '")
                .and_then(|v| v.strip_suffix('\''))
        })
        .unwrap()
        .replace("''", "'");
    let plugin: PluginConfig = serde_json::from_str(&plugin_json).unwrap();
    assert_eq!(plugin.credential_env.as_deref(), Some(CREDENTIAL_VARIABLE));
    assert_eq!(
        plugin.bundle_signing_keys_env.as_deref(),
        Some(PINS_VARIABLE)
    );
    assert!(envoy.contains(&format!(
        "host_env_keys: [{CREDENTIAL_VARIABLE}, {PINS_VARIABLE}]"
    )));
    assert!(envoy.contains("address: control-plane, port_value: 8080"));
    assert!(text.contains("\"8080:8080\""));
    // The upstream listens where Envoy sends traffic.
    assert_eq!(
        environment("upstream"),
        vec![("HTTP_PORT".to_owned(), "8081".to_owned())]
    );
    assert!(envoy.contains("address: upstream, port_value: 8081"));
    assert!(text.contains("./target/portcullis/portcullis.wasm:/etc/envoy/portcullis.wasm"));
    // Every service has a health check or is depended on only as started.
    for service in ["postgres", "redis", "control-plane", "envoy"] {
        let block = service_block(&text, service);
        assert!(
            block.contains("healthcheck:"),
            "{service} has no health check"
        );
    }
}

#[test]
fn every_envoy_configuration_binds_the_admin_interface_to_loopback() {
    let admin_line = |text: &str| {
        let mut lines = text.lines().skip_while(|l| !l.starts_with("admin:"));
        lines.nth(1).map(str::to_owned).unwrap_or_default()
    };
    for file in ["envoy/envoy.template.yaml", "envoy/envoy-compose.yaml"] {
        let text = std::fs::read_to_string(repo_root().join(file)).unwrap();
        assert!(
            admin_line(&text).contains("address: 127.0.0.1,"),
            "{file}: the admin interface is not on 127.0.0.1: {}",
            admin_line(&text)
        );
    }
    // The tests' and the README's renderings come from the template; the benchmark builds its own.
    let bench =
        std::fs::read_to_string(repo_root().join("bench/system/src/bin/portcullis-bench-edge.rs"))
            .unwrap();
    assert!(bench.contains(
        r#""admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}}"#
    ));
    let compose = compose();
    assert!(
        !compose.contains("9901:"),
        "docker-compose.yml publishes Envoy's admin port"
    );
}
