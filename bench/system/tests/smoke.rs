//! Every bench, run the way `cargo xtask bench …` runs it but with `--smoke`: the smallest
//! sizes for a few seconds. Each bench asserts in smoke mode that its scenarios behave as it
//! assumes (the statuses it expects, changes that take effect), never a speed; these tests
//! check that it ran to its table. So a bench that stopped measuring what it says fails here.

use std::path::PathBuf;
use std::process::{Command, Output};

fn wasm_from(variable: &str, build: &str) -> PathBuf {
    let path = std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{variable} is not set: {build} (or run `cargo xtask test`)"));
    assert!(path.exists(), "{} is missing: {build}", path.display());
    path
}

/// Runs `command` and returns what it printed, failing with its output if it failed.
fn ran(command: &mut Command) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    );
    assert!(
        status.success(),
        "{command:?} failed ({status}):\n{stdout}\n{stderr}"
    );
    stdout
}

fn bench(binary: &str, args: &[&str]) -> String {
    let floor = wasm_from(
        "PORTCULLIS_FLOOR_WASM",
        "`cargo build --release --target wasm32-wasip1 -p portcullis-bench-floor`",
    );
    ran(Command::new(binary)
        .args(args)
        .arg("--smoke")
        .env("ENVOY_BIN", portcullis_tests::envoy::envoy_bin())
        .env("PORTCULLIS_WASM", portcullis_tests::envoy::wasm_path())
        .env("PORTCULLIS_FLOOR_WASM", floor))
}

#[test]
fn the_edge_bench_gets_200_from_every_listener() {
    let table = bench(env!("CARGO_BIN_EXE_portcullis-bench-edge"), &[]);
    assert!(
        table.contains("| (c) 2,000 distinct tokens |"),
        "every scenario ran: {table}"
    );
}

#[test]
fn the_edge_policy_scaling_bench_gets_200_with_and_without_slicing() {
    let table = bench(env!("CARGO_BIN_EXE_portcullis-bench-edge"), &["--policies"]);
    assert!(table.contains("| 10 |"), "the 10-policy row ran: {table}");
}

#[test]
fn the_control_plane_bench_issues_tokens_and_serves_the_bundle() {
    let table = bench(env!("CARGO_BIN_EXE_portcullis-bench-cp"), &["--sqlite"]);
    assert!(
        table.contains("| measurement"),
        "the table printed: {table}"
    );
}

#[test]
fn the_propagation_bench_sees_a_revocation_and_a_policy_push_take_effect_at_envoy() {
    let table = bench(env!("CARGO_BIN_EXE_portcullis-bench-propagation"), &[]);
    assert!(
        table.contains("| token revocation") && table.contains("| policy push"),
        "both changes were measured: {table}"
    );
}

#[test]
fn the_soak_makes_no_wrong_decision_while_policies_and_keys_change() {
    let table = bench(env!("CARGO_BIN_EXE_portcullis-bench-soak"), &[]);
    assert!(table.contains("| **all** |"), "the soak reported: {table}");
}

#[test]
fn the_gate_bench_runs_every_stage_in_v8() {
    let wasm = wasm_from(
        "PORTCULLIS_BENCH_GATE_WASM",
        "`cargo build --release --target wasm32-wasip1 -p portcullis-bench-gate`",
    );
    let stages = ran(Command::new("node")
        .args(["--no-liftoff", "--no-warnings"])
        .arg(portcullis_tests::repo_root().join("bench/gate/run.mjs"))
        .arg(wasm)
        .arg("--smoke"));
    for stage in [
        "jws::verify",
        "prepare",
        "decide (sliced)",
        "request cached",
    ] {
        assert!(
            stages.contains(&format!("{stage}: ")),
            "stage {stage} ran: {stages}"
        );
    }
}
