//! The OpenAPI gate: `schemathesis` (pinned by `cargo xtask`, which installs it) generates
//! requests from the control plane's own `/openapi.json` and checks every answer against the
//! document with all of its checks (status codes, content types, response schemas, schema-valid
//! input accepted, schema-violating input refused, authentication enforced, unsupported methods,
//! stateful sequences). `tests/schemathesis/schemathesis.toml` gives it the credentials each area
//! needs and says, with the reason, where a check cannot apply.

use portcullis_tests::control_plane::{basic, sqlite_url, ControlPlane, BUNDLE_CREDENTIAL};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;

/// The schemathesis CLI: `$PORTCULLIS_SCHEMATHESIS`, or the one `cargo xtask` installs.
fn schemathesis_bin() -> PathBuf {
    let path = std::env::var_os("PORTCULLIS_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| portcullis_tests::repo_root().join(".tools/venv/bin/schemathesis"));
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask setup` (or `cargo xtask test`)",
        path.display()
    );
    path
}

/// A JSON call that must succeed; its body.
async fn created(plane: &ControlPlane, token: &str, path: &str, body: Value) -> Value {
    let reply = plane
        .call(
            "POST",
            path,
            Some(&format!("Bearer {token}")),
            Some("application/json"),
            &body.to_string(),
        )
        .await;
    assert_eq!(
        reply.status,
        201,
        "{path}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_what_the_control_plane_accepts_and_answers() {
    let plane = ControlPlane::start(&sqlite_url("openapi"));
    let admin = plane
        .create_client(
            "openapi-admin",
            "admin:full self",
            &["client_credentials", "password"],
        )
        .await;
    let admin_token = plane.admin_token(&admin).await;
    // A user of its own for /v1/me, and throwaway principals for the changes that would
    // otherwise end the gate's own access (disable, delete, a client's grants).
    let password = "openapi gate password";
    created(
        &plane,
        &admin_token,
        "/admin/v1/users",
        json!({"username": "gate", "password": password}),
    )
    .await;
    let reply = plane
        .token(
            &admin,
            &[
                ("grant_type", "password"),
                ("username", "gate"),
                ("password", password),
                ("scope", "self"),
            ],
        )
        .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let self_token = reply.json()["access_token"].as_str().unwrap().to_owned();
    let spare = |name: &str| json!({"username": name, "password": format!("{name} password 123")});
    let spare_user = created(&plane, &admin_token, "/admin/v1/users", spare("spare")).await;
    let doomed_user = created(&plane, &admin_token, "/admin/v1/users", spare("doomed")).await;
    let spare_client = created(
        &plane,
        &admin_token,
        "/admin/v1/clients",
        json!({"name": "spare"}),
    )
    .await;

    let work = portcullis_tests::repo_root().join(format!(
        "target/e2e/schemathesis-{}",
        portcullis_tests::free_port()
    ));
    std::fs::create_dir_all(&work).unwrap();
    let config = portcullis_tests::repo_root().join("tests/schemathesis/schemathesis.toml");
    let client_basic = basic(&admin);
    let output = Command::new(schemathesis_bin())
        .current_dir(&work)
        .arg("--config-file")
        .arg(&config)
        .args(["run", &format!("{}/openapi.json", plane.issuer())])
        .args(["--seed", "1", "--workers", "1", "--max-examples", "25"])
        .args(["--generation-database", "none", "--no-color"])
        .env("PC_ADMIN_TOKEN", &admin_token)
        .env("PC_SELF_TOKEN", &self_token)
        .env(
            "PC_CLIENT_BASIC",
            client_basic.strip_prefix("Basic ").unwrap(),
        )
        .env("PC_BUNDLE_CREDENTIAL", BUNDLE_CREDENTIAL)
        .env("PC_SPARE_USER", spare_user["user_id"].as_str().unwrap())
        .env("PC_DOOMED_USER", doomed_user["user_id"].as_str().unwrap())
        .env(
            "PC_SPARE_CLIENT",
            spare_client["client_id"].as_str().unwrap(),
        )
        .output()
        .unwrap_or_else(|e| panic!("schemathesis: {e}"));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = std::fs::remove_dir_all(&work);
    assert!(
        output.status.success(),
        "schemathesis found the control plane and its OpenAPI document disagreeing:\n{report}"
    );
    let count = |label: &str| -> Option<String> {
        let line = report.lines().find(|l| l.trim_start().starts_with(label))?;
        Some(line.trim_start()[label.len()..].trim().to_owned())
    };
    let (selected, tested) = (count("Selected:"), count("Tested:"));
    let documented = plane
        .call("GET", "/openapi.json", None, None, "")
        .await
        .json()["paths"]
        .as_object()
        .unwrap()
        .iter()
        // Schemathesis leaves out the operation that serves the document it runs from.
        .filter(|(path, _)| path.as_str() != "/openapi.json")
        .map(|(_, methods)| methods.as_object().unwrap().len())
        .sum::<usize>();
    assert_eq!(
        (selected, tested),
        (
            Some(format!("{documented}/{documented}")),
            Some(documented.to_string())
        ),
        "schemathesis tested every documented operation:\n{report}"
    );
}
