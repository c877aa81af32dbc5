//! `cargo xtask bench edge [--seconds N] [--smoke]`: Envoy CPU per request, same Envoy, same
//! run. With `--smoke`, cells of 200 ms that must all answer 200 (see `portcullis_tests::smoke`).
//!
//! One Envoy (1 worker, direct response) with listeners for: no auth; the bare wasm filter;
//! native `jwt_authn` + `rbac` requiring a scope, without and with `jwt_cache_config`; and the
//! Portcullis filter with an equivalent Cedar policy, caches on, caches off, and caches on with
//! lean outputs (only `x-portcullis-sub` upstream, denials alone recorded). A keep-alive load
//! generator drives each listener in turn while the Envoy process's CPU time (utime + stime from
//! /proc) is sampled, so the result is CPU µs per request — independent of how fast the load
//! generator is. Results print as a Markdown table.
//!
//! `--policies` measures Cedar inside the filter instead: for 10, 100 and 1,000 policies, one
//! listener with policy slicing (the default) and one evaluating every policy, each with its own
//! bundle, token cache on and decision cache off (every request is evaluated).

use portcullis_authz::issue::SigningKey;
use portcullis_tests::bundle_server::BundleServer;
use portcullis_tests::envoy::{plugin_config, wasm_path};
use portcullis_tests::tokens::{bundle, claims, key, AUDIENCE, ISSUER};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CONNECTIONS: usize = 16;
const DISTINCT_TOKENS: usize = 2_000;
const SCOPE: &str = "api:items:read";

#[tokio::main]
async fn main() {
    let seconds: u64 = flag_value("--seconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let seconds = if portcullis_tests::smoke() {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(seconds)
    };
    if std::env::args().any(|a| a == "--policies") {
        policy_scaling(seconds).await;
        return;
    }
    if let Some(other) = flag_value("--ab") {
        compare_builds(&other, seconds).await;
        return;
    }
    let es256 = SigningKey::es256("native-es256", [31; 32]).unwrap_or_else(|e| panic!("{e}"));
    let server = BundleServer::start(&edge_bundle(), 0);
    let ports: Vec<u16> = (0..8).map(|_| portcullis_tests::free_port()).collect();
    let (floor, lean) = (ports[6], ports[7]);
    let (admin, noauth, edge) = (ports[0], ports[1], ports[4]);
    let (native, native_cached, edge_uncached) = (ports[2], ports[3], ports[5]);
    let config = envoy_config(
        admin,
        noauth,
        [native, native_cached, edge, edge_uncached, floor, lean],
        server.port,
        &es256,
    );
    let mut envoy = start_envoy(&config, "envoy-bench.json");
    let pid = envoy.id();

    let edge_token = |c: &Value| key().sign_access_token(c);
    let native_token = |c: &Value| es256.sign_access_token(c);
    let one = claims(SCOPE);
    let pool: Vec<Value> = (0..DISTINCT_TOKENS)
        .map(|i| {
            let mut c = claims(SCOPE);
            c["jti"] = json!(format!("bench-{i}"));
            c
        })
        .collect();
    wait_for(edge, &edge_token(&one)).await;
    wait_for(noauth, "").await;

    // `--only noauth|bare|edge|edge-uncached`: load one listener with scenario (a) for
    // `--seconds`, e.g. under `perf record -p <pid>` to see where Envoy's time goes.
    let only = flag_value("--only");
    if let Some(only) = only {
        let port = match only.as_str() {
            "noauth" => noauth,
            "bare" => floor,
            "edge-uncached" => edge_uncached,
            _ => edge,
        };
        println!("envoy pid {pid}: loading {only} for {seconds:?}");
        let m = measure(pid, port, &[edge_token(&one)], false, seconds).await;
        println!("{only}: {:.1} µs per request ({:.0} rps)", m.cpu_us, m.rps);
        let _ = envoy.kill();
        let _ = envoy.wait();
        return;
    }
    let mut rows = Vec::new();
    let scenarios: [(&str, bool, bool); 3] = [
        ("(a) one repeated token, one path", false, false),
        ("(b) one repeated token, distinct paths", false, true),
        ("(c) 2,000 distinct tokens", true, false),
    ];
    for (name, distinct_tokens, distinct_paths) in scenarios {
        let tokens = |sign: &dyn Fn(&Value) -> String| -> Vec<String> {
            if distinct_tokens {
                pool.iter().map(sign).collect()
            } else {
                vec![sign(&one)]
            }
        };
        let edge_tokens = tokens(&edge_token);
        let native_tokens = tokens(&native_token);
        let base = measure(pid, noauth, &[String::new()], distinct_paths, seconds).await;
        let bare = measure(pid, floor, &edge_tokens, distinct_paths, seconds).await;
        let jwt = measure(pid, native, &native_tokens, distinct_paths, seconds).await;
        let jwt_cached = measure(pid, native_cached, &native_tokens, distinct_paths, seconds).await;
        let ours = measure(pid, edge, &edge_tokens, distinct_paths, seconds).await;
        let ours_uncached =
            measure(pid, edge_uncached, &edge_tokens, distinct_paths, seconds).await;
        let ours_lean = measure(pid, lean, &edge_tokens, distinct_paths, seconds).await;
        rows.push((
            name,
            base,
            bare,
            jwt,
            jwt_cached,
            ours,
            ours_uncached,
            ours_lean,
        ));
    }
    let _ = envoy.kill();
    let _ = envoy.wait();

    println!("\nEnvoy 1.40, 1 worker, direct response; CPU µs per request ({seconds:?} per cell, {CONNECTIONS} keep-alive connections)\n");
    println!("| scenario | no auth | bare wasm filter (added) | jwt_authn+rbac ES256 (added) | + jwt_cache_config (added) | Portcullis EdDSA + Cedar, caches on (added) | Portcullis, caches off (added) | caches on / bare wasm | caches on / native uncached | caches off / native uncached | caches on, lean outputs (added) | lean / native uncached |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (name, base, bare, jwt, cached, ours, ours_uncached, lean) in rows {
        let added = |m: &Measured| (m.cpu_us - base.cpu_us).max(0.0);
        let (a_jwt, a_cached, a_ours, a_uncached) = (
            added(&jwt),
            added(&cached),
            added(&ours),
            added(&ours_uncached),
        );
        let (a_bare, a_lean) = (added(&bare), added(&lean));
        println!(
            "| {name} | {:.1} µs ({:.0} rps) | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1}× | {:.2}× | {:.2}× | {:.1} | {:.2}× |",
            base.cpu_us,
            base.rps,
            a_bare,
            a_jwt,
            a_cached,
            a_ours,
            a_uncached,
            a_ours / a_bare.max(0.01),
            a_ours / a_jwt.max(0.01),
            a_uncached / a_jwt.max(0.01),
            a_lean,
            a_lean / a_jwt.max(0.01)
        );
        let errors = bare.errors
            + jwt.errors
            + cached.errors
            + ours.errors
            + ours_uncached.errors
            + lean.errors;
        if errors > 0 {
            println!("|  ↳ non-200 answers: {errors} | | | | | | | | | | | |");
        }
    }
    drop(server);
}

#[derive(Debug, Clone, Copy)]
struct Measured {
    cpu_us: f64,
    rps: f64,
    errors: u64,
}

/// Envoy with one worker on `config`, written to `target/bench/<file>` for inspection.
fn start_envoy(config: &Value, file: &str) -> std::process::Child {
    let dir = portcullis_tests::repo_root().join("target/bench");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let config_path = dir.join(file);
    std::fs::write(&config_path, config.to_string()).unwrap_or_else(|e| panic!("{e}"));
    Command::new(portcullis_tests::envoy::envoy_bin())
        .arg("-c")
        .arg(&config_path)
        .args(["--concurrency", "1", "--disable-hot-restart", "-l", "error"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("envoy: {e}"))
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

async fn measure(
    pid: u32,
    port: u16,
    tokens: &[String],
    distinct_paths: bool,
    cell: Duration,
) -> Measured {
    // Warm up caches and connections so every cell measures the steady state.
    let _ = drive(
        port,
        tokens,
        distinct_paths,
        cell.min(Duration::from_secs(1)),
    )
    .await;
    let before = cpu_ticks(pid);
    let (ok, errors, elapsed) = drive(port, tokens, distinct_paths, cell).await;
    if portcullis_tests::smoke() {
        assert!(ok > 0, "listener {port} answered nothing");
        assert_eq!(
            errors,
            0,
            "listener {port} answered {errors} of {} with non-200",
            ok + errors
        );
    }
    let ticks = cpu_ticks(pid).saturating_sub(before) as f64;
    let total = (ok + errors).max(1) as f64;
    Measured {
        cpu_us: ticks / clock_ticks_per_second() * 1e6 / total,
        rps: total / elapsed,
        errors,
    }
}

async fn drive(
    port: u16,
    tokens: &[String],
    distinct_paths: bool,
    duration: Duration,
) -> (u64, u64, f64) {
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let counter = Arc::new(AtomicU64::new(0));
    let tokens = Arc::new(tokens.to_vec());
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (ok, errors, counter, tokens) =
            (ok.clone(), errors.clone(), counter.clone(), tokens.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                return;
            };
            let _ = stream.set_nodelay(true);
            let mut buffer = vec![0u8; 64 * 1024];
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed) as usize;
                let token = &tokens[n % tokens.len()];
                let path = if distinct_paths {
                    format!("/api/items/{}", n % 10_000)
                } else {
                    "/api/items".to_owned()
                };
                let auth = if token.is_empty() {
                    String::new()
                } else {
                    format!("authorization: Bearer {token}\r\n")
                };
                let request = format!("GET {path} HTTP/1.1\r\nhost: bench\r\n{auth}\r\n");
                if stream.write_all(request.as_bytes()).await.is_err() {
                    return;
                }
                let mut read = 0;
                loop {
                    match stream.read(&mut buffer[read..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read += n,
                    }
                    if let Some(status) = complete_status(&buffer[..read]) {
                        if status == 200 {
                            ok.fetch_add(1, Ordering::Relaxed);
                        } else {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                        break;
                    }
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    (
        ok.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64(),
    )
}

fn complete_status(raw: &[u8]) -> Option<u16> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split])
        .ok()?
        .to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (raw.len() >= split + 4 + length)
        .then(|| head.get(9..12).and_then(|s| s.parse().ok()))
        .flatten()
}

async fn wait_for(port: u16, token: &str) {
    for _ in 0..400 {
        let (ok, _, _) = drive(port, &[token.to_owned()], false, Duration::from_millis(50)).await;
        if ok > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("listener {port} never answered 200");
}

fn listener(name: &str, port: u16, mut filters: Vec<Value>) -> Value {
    filters.push(json!({"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}));
    json!({
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": name,
                "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [{
                    "match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}
                }]}]},
                "http_filters": filters
            }
        }]}]
    })
}

fn native_filters(es256: &SigningKey, cached: bool) -> Vec<Value> {
    let jwks = json!({"keys": [es256.public_jwk()]}).to_string();
    let mut provider = json!({
        "issuer": ISSUER, "audiences": [AUDIENCE],
        "local_jwks": {"inline_string": jwks}, "payload_in_metadata": "jwt_payload", "forward": true
    });
    if cached {
        provider["jwt_cache_config"] = json!({"jwt_cache_size": 4096});
    }
    vec![
        json!({"name": "envoy.filters.http.jwt_authn", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"p": provider},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]
        }}),
        json!({"name": "envoy.filters.http.rbac", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {"action": "ALLOW", "policies": {"scope": {
                "permissions": [{"any": true}],
                "principals": [{"metadata": {
                    "filter": "envoy.filters.http.jwt_authn",
                    "path": [{"key": "jwt_payload"}, {"key": "scope"}],
                    "value": {"string_match": {"exact": SCOPE}}
                }}]
            }}}
        }}),
    ]
}

fn envoy_config(
    admin: u16,
    noauth: u16,
    listeners: [u16; 6],
    cp: u16,
    es256: &SigningKey,
) -> Value {
    let [native, native_cached, edge, edge_uncached, floor, lean] = listeners;
    let (cached, uncached) = (caches_on(), caches_off());
    let mut lean_outputs = caches_on();
    lean_outputs["identity_headers"] = json!(["sub"]);
    lean_outputs["decision_record"] = json!("denied");
    bootstrap(
        admin,
        vec![
            listener("noauth", noauth, vec![]),
            listener("bare_wasm", floor, vec![floor_filter()]),
            listener("native", native, native_filters(es256, false)),
            listener("native_cached", native_cached, native_filters(es256, true)),
            listener("portcullis", edge, vec![wasm_filter(cached)]),
            listener(
                "portcullis_uncached",
                edge_uncached,
                vec![wasm_filter(uncached)],
            ),
            listener("portcullis_lean", lean, vec![wasm_filter(lean_outputs)]),
        ],
        vec![control_plane_cluster(cp)],
    )
}

/// The bundle of scenarios (a)–(c): one policy requiring the scope the native listeners require.
fn edge_bundle() -> portcullis_authz::bundle::Bundle {
    let mut edge_bundle = bundle(1, &[&key()]);
    edge_bundle.policies = format!(
        "@id(\"items-read\")\npermit (principal, action in Action::\"read\", resource)\nwhen {{ context.scopes.contains(\"{SCOPE}\") }};\n"
    );
    edge_bundle
}

/// The cluster the filter fetches its bundle from by default (a [`BundleServer`] on `port`).
fn control_plane_cluster(port: u16) -> Value {
    bundle_cluster("portcullis_control_plane", port)
}

/// A cluster `name` reaching a [`BundleServer`] on `port`.
fn bundle_cluster(name: &str, port: u16) -> Value {
    json!({
        "name": name, "type": "STATIC", "connect_timeout": "1s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{
            "endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}
        }]}]}
    })
}

/// An Envoy bootstrap: the admin interface on `admin`, static listeners and clusters.
fn bootstrap(admin: u16, listeners: Vec<Value>, clusters: Vec<Value>) -> Value {
    json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {"listeners": listeners, "clusters": clusters}
    })
}

fn wasm_filter(cache_settings: Value) -> Value {
    wasm_filter_in("portcullis", cache_settings)
}

/// The value after `name` on the command line (`--seconds 8` → `8`).
fn flag_value(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

/// Both of the filter's caches on, sized to hold the whole 2,000-token pool.
fn caches_on() -> Value {
    json!({"token_cache_size": 4096, "decision_cache_size": 16384})
}

/// Both caches off: every request verifies its signature and evaluates Cedar.
fn caches_off() -> Value {
    json!({"token_cache_size": 0, "decision_cache_size": 0})
}

/// `--ab OTHER.wasm`: the filter (`PORTCULLIS_WASM`) and another build of it, each in its own
/// VM and listener of one Envoy, loaded in turn with scenario (a) for `--rounds` rounds (default
/// 6, rounded up to an even number), next to no auth; both caches off with `--uncached`.
/// Interleaving in one process keeps machine drift out of the comparison, and alternating which
/// build goes first in a round keeps the position out of it.
async fn compare_builds(other: &str, seconds: Duration) {
    let rounds: usize = flag_value("--rounds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    // An even count, so each build goes first as often as the other.
    let rounds = rounds + rounds % 2;
    let server = BundleServer::start(&edge_bundle(), 0);
    let [admin, noauth, a, b] = [0; 4].map(|_| portcullis_tests::free_port());
    let settings = if std::env::args().any(|a| a == "--uncached") {
        caches_off()
    } else {
        caches_on()
    };
    let config = bootstrap(
        admin,
        vec![
            listener("noauth", noauth, vec![]),
            listener("portcullis", a, vec![wasm_filter(settings.clone())]),
            listener(
                "portcullis_b",
                b,
                vec![wasm_filter_from("portcullis_b", Path::new(other), settings)],
            ),
        ],
        vec![control_plane_cluster(server.port)],
    );
    let mut envoy = start_envoy(&config, "envoy-bench-ab.json");
    let pid = envoy.id();
    let token = key().sign_access_token(&claims(SCOPE));
    for port in [a, b] {
        wait_for(port, &token).await;
    }
    wait_for(noauth, "").await;
    let tokens = [token];
    let (mut sum_a, mut sum_b) = (0.0, 0.0);
    println!("| round | no auth | A (added) | B (added) | B − A |");
    println!("|---|---|---|---|---|");
    for round in 1..=rounds {
        let base = measure(pid, noauth, &[String::new()], false, seconds).await;
        // Which build runs first alternates: the second cell of a round read ~2 µs lower than
        // the first whichever build it held.
        let (m_a, m_b) = if round % 2 == 1 {
            let m_a = measure(pid, a, &tokens, false, seconds).await;
            (m_a, measure(pid, b, &tokens, false, seconds).await)
        } else {
            let m_b = measure(pid, b, &tokens, false, seconds).await;
            (measure(pid, a, &tokens, false, seconds).await, m_b)
        };
        let (added_a, added_b) = (m_a.cpu_us - base.cpu_us, m_b.cpu_us - base.cpu_us);
        sum_a += added_a;
        sum_b += added_b;
        println!(
            "| {round} | {:.1} µs | {added_a:.1} µs | {added_b:.1} µs | {:+.1} µs |",
            base.cpu_us,
            added_b - added_a
        );
    }
    let n = rounds as f64;
    println!(
        "| mean | | {:.1} µs | {:.1} µs | {:+.1} µs |",
        sum_a / n,
        sum_b / n,
        (sum_b - sum_a) / n
    );
    let _ = envoy.kill();
    let _ = envoy.wait();
}

/// The bare wasm floor (`bench/floor/`): reads one header, in its own VM.
fn floor_filter() -> Value {
    let path = std::env::var("PORTCULLIS_FLOOR_WASM").unwrap_or_else(|_| {
        panic!("PORTCULLIS_FLOOR_WASM is not set: run `cargo xtask bench edge`")
    });
    json!({"name": "envoy.filters.http.wasm", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": {
            "name": "floor",
            "vm_config": {"vm_id": "floor", "runtime": "envoy.wasm.runtime.v8",
                "code": {"local": {"filename": path}}}
        }
    }})
}

/// The filter in its own VM (`vm_id`), so listeners with different bundles do not share one.
fn wasm_filter_in(vm_id: &str, settings: Value) -> Value {
    wasm_filter_from(vm_id, &wasm_path(), settings)
}

/// The filter built as `wasm`, in its own VM (`vm_id`).
fn wasm_filter_from(vm_id: &str, wasm: &Path, settings: Value) -> Value {
    json!({"name": "envoy.filters.http.wasm", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": {
            "name": "portcullis", "root_id": "portcullis",
            "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                "value": plugin_config(settings).to_string()},
            "vm_config": {"vm_id": vm_id, "runtime": "envoy.wasm.runtime.v8",
                "code": {"local": {"filename": wasm.display().to_string()}}}
        }
    }})
}

async fn policy_scaling(seconds: Duration) {
    let counts: &[usize] = if portcullis_tests::smoke() {
        &[10]
    } else {
        &[10, 100, 1_000]
    };
    let servers: Vec<BundleServer> = counts
        .iter()
        .map(|&n| {
            let mut edge_bundle = bundle(1, &[&key()]);
            edge_bundle.policies = portcullis_tests::policy_sets::generated(n);
            BundleServer::start(&edge_bundle, 0)
        })
        .collect();
    let admin = portcullis_tests::free_port();
    let noauth = portcullis_tests::free_port();
    let floor = portcullis_tests::free_port();
    let mut listeners = vec![
        listener("noauth", noauth, vec![]),
        listener("bare_wasm", floor, vec![floor_filter()]),
    ];
    let mut clusters = Vec::new();
    let mut cells = Vec::new();
    for (&n, server) in counts.iter().zip(&servers) {
        let cluster = format!("bundle_{n}");
        clusters.push(bundle_cluster(&cluster, server.port));
        for slicing in [true, false] {
            let port = portcullis_tests::free_port();
            let name = format!("policies_{n}_{}", if slicing { "sliced" } else { "all" });
            let settings = json!({"cluster": cluster, "token_cache_size": 4096,
                "decision_cache_size": 0, "policy_slicing": slicing});
            listeners.push(listener(&name, port, vec![wasm_filter_in(&name, settings)]));
            cells.push((n, slicing, port));
        }
    }
    let config = bootstrap(admin, listeners, clusters);
    let mut envoy = start_envoy(&config, "envoy-bench-policies.json");
    let pid = envoy.id();
    let token = key().sign_access_token(&claims(SCOPE));
    wait_for(noauth, "").await;
    for &(_, _, port) in &cells {
        wait_for(port, &token).await;
    }
    let tokens = [token];
    let base = measure(pid, noauth, &[String::new()], true, seconds).await;
    let bare = measure(pid, floor, &tokens, true, seconds).await;
    let mut results = Vec::new();
    for &(n, slicing, port) in &cells {
        results.push((n, slicing, measure(pid, port, &tokens, true, seconds).await));
    }
    let _ = envoy.kill();
    let _ = envoy.wait();
    let floor_added = (bare.cpu_us - base.cpu_us).max(0.0);
    println!("\nEnvoy 1.40, 1 worker, direct response; repeated token, distinct paths, decision cache off; CPU µs per request ({seconds:?} per cell); no auth = {:.1} µs ({:.0} rps); the bare wasm filter adds {floor_added:.1} µs\n", base.cpu_us, base.rps);
    println!(
        "| policies | sliced (added) | every policy (added) | sliced / every policy | sliced beyond the bare wasm filter | non-200 |"
    );
    println!("|---|---|---|---|---|---|");
    for &n in counts {
        let added = |slicing: bool| {
            results
                .iter()
                .find(|(m, s, _)| *m == n && *s == slicing)
                .map(|(_, _, measured)| *measured)
        };
        if let (Some(sliced), Some(all)) = (added(true), added(false)) {
            let (a, b) = (
                (sliced.cpu_us - base.cpu_us).max(0.0),
                (all.cpu_us - base.cpu_us).max(0.0),
            );
            println!(
                "| {n} | {a:.1} µs | {b:.1} µs | {:.2}× | {:.1} µs | {} |",
                a / b.max(0.01),
                (a - floor_added).max(0.0),
                sliced.errors + all.errors + bare.errors
            );
        }
    }
    drop(servers);
}
