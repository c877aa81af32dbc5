//! The `portcullis` binary's contract: what scripts and operators rely on.

mod common;

use serde_json::Value;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn portcullis(db: &common::TestDb, args: &[&str], stdin: Option<&str>) -> (i32, Value, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .current_dir(db.dir())
        .env_clear()
        .env("DATABASE_URL", &db.url)
        .env("PORTCULLIS_POLICY_DIR", common::policy_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (
        output.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn create_commands_print_one_json_object() {
    let db = common::TestDb::sqlite(common::test_root());
    // An unknown command is a usage error (exit 2).
    let (code, _, err) = portcullis(&db, &["client", "make", "--name", "svc"], None);
    assert_eq!(code, 2, "{err}");
    let (code, client, err) = portcullis(
        &db,
        &["client", "create", "--name", "svc", "--scopes", "a b"],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(client["client_id"].is_string());
    assert!(client["client_secret"]
        .as_str()
        .unwrap()
        .starts_with("pcs_"));
    let (code, scoped, err) = portcullis(
        &db,
        &[
            "client", "create", "--name", "web", "--grants", "password", "--roles", "sre,ops",
            "--tenant", "acme",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let stored = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = portcullis_control_plane::infra::db::connect(&db.url)
            .await
            .unwrap();
        portcullis_control_plane::oauth::clients::get(
            &store.pool,
            scoped["client_id"].as_str().unwrap(),
        )
        .await
        .unwrap()
        .unwrap()
    });
    assert_eq!(stored.roles, vec!["sre", "ops"], "--roles is stored");
    assert_eq!(stored.tenant.as_deref(), Some("acme"), "--tenant is stored");
    let (code, user, err) = portcullis(
        &db,
        &[
            "user",
            "create",
            "--username",
            "ann",
            "--password-stdin",
            "--roles",
            "viewer,ops",
            "--scopes",
            "a b",
        ],
        Some("correct horse battery\n"),
    );
    assert_eq!(code, 0, "{err}");
    assert!(user["user_id"].is_string());
    assert!(
        !err.contains("correct horse"),
        "password leaked to logs: {err}"
    );
    // Weak passwords are refused.
    let (code, _, err) = portcullis(
        &db,
        &["user", "create", "--username", "bo", "--password-stdin"],
        Some("password1\n"),
    );
    assert_eq!(code, 1);
    assert!(err.contains("too common"), "{err}");
    // Bootstrap only on an empty store.
    let (code, _, err) = portcullis(
        &db,
        &["bootstrap", "--username", "root", "--password-stdin"],
        Some("correct horse battery\n"),
    );
    assert_eq!(code, 1);
    assert!(err.contains("empty store"), "{err}");
    let (code, verified, err) = portcullis(&db, &["audit", "verify"], None);
    assert_eq!(code, 0, "{err}");
    assert!(verified["verified"].as_i64().unwrap() >= 3);
    // The next key was published a moment ago: a normal rotation waits, an emergency one does not.
    let (code, _, err) = portcullis(&db, &["keys", "rotate"], None);
    assert_eq!(code, 1);
    assert!(err.contains("published too recently"), "{err}");
    let (code, rotated, err) = portcullis(&db, &["keys", "rotate", "--force"], None);
    assert_eq!(code, 0, "{err}");
    assert!(rotated["active_kid"].as_str().unwrap().starts_with("k-"));
}

#[test]
fn bootstrap_creates_the_first_admin_once() {
    let db = common::TestDb::sqlite(common::test_root());
    let (code, admin, err) = portcullis(
        &db,
        &["bootstrap", "--username", "root", "--password-stdin"],
        Some("correct horse battery"),
    );
    assert_eq!(code, 0, "{err}");
    assert!(admin["user_id"].is_string() && admin["client_secret"].is_string());
    let (code, _, _) = portcullis(
        &db,
        &["bootstrap", "--username", "root2", "--password-stdin"],
        Some("correct horse battery"),
    );
    assert_eq!(code, 1);
}

#[test]
fn invalid_configuration_names_the_variable() {
    let output = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["migrate"])
        .env("PORTCULLIS_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("PORTCULLIS_LISTEN"));
}

#[test]
fn policy_validate_shows_cedar_diagnostics() {
    let db = common::TestDb::sqlite(common::test_root());
    let (code, ok, err) = portcullis(
        &db,
        &[
            "policy",
            "validate",
            "--dir",
            common::policy_dir().to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(ok["valid"], true);
    let broken = db.dir().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::copy(
        common::policy_dir().join("schema.cedarschema"),
        broken.join("schema.cedarschema"),
    )
    .unwrap();
    std::fs::write(
        broken.join("bad.cedar"),
        "permit (principal, action, resource) when { context.nope == 1 };",
    )
    .unwrap();
    let (code, _, err) = portcullis(
        &db,
        &["policy", "validate", "--dir", broken.to_str().unwrap()],
        None,
    );
    assert_eq!(code, 1);
    assert!(err.contains("nope"), "{err}");
}

/// `portcullis serve` on a free port over `db`, once `/readyz` answers.
fn serve(db: &common::TestDb, stderr: Stdio) -> (std::process::Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("serve")
        .current_dir(db.dir())
        .env("DATABASE_URL", &db.url)
        .env("PORTCULLIS_LISTEN", format!("127.0.0.1:{port}"))
        .env("PORTCULLIS_POLICY_DIR", common::policy_dir())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(port, "/readyz").is_none() {
        assert!(Instant::now() < deadline, "serve did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port)
}

#[test]
fn serve_listens_where_told_and_stops_on_sigterm() {
    let db = common::TestDb::sqlite(common::test_root());
    let (mut child, port) = serve(&db, Stdio::piped());
    let metadata = http_get(port, "/.well-known/oauth-authorization-server").unwrap();
    let metadata: Value = serde_json::from_str(&metadata).unwrap();
    // The default issuer is the listen address.
    assert_eq!(metadata["issuer"], format!("http://127.0.0.1:{port}"));
    // The master key file was created private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(db.dir().join("portcullis.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "key file readable by others: {mode:o}");
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "serve ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::Read as _;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

#[test]
fn policy_test_runs_the_corpus_and_diff_shows_what_changes() {
    let db = common::TestDb::sqlite(common::test_root());
    let policies = common::policy_dir();
    let (code, report, err) = portcullis(
        &db,
        &["policy", "test", "--dir", policies.to_str().unwrap()],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(report["passed"].as_u64().unwrap() >= 10);
    // A copy without the MFA rule: its DENY case fails, and diff names it.
    let copy = db.dir().join("weaker");
    std::fs::create_dir_all(copy.join("tests")).unwrap();
    for name in ["schema.cedarschema", "entities.json", "admin-api.cedar"] {
        std::fs::copy(policies.join(name), copy.join(name)).unwrap();
    }
    let text = std::fs::read_to_string(policies.join("api.cedar")).unwrap();
    let start = text.find("// Payments need a second factor.").unwrap();
    let end = text[start..].find("};").unwrap() + start + 2;
    std::fs::write(
        copy.join("api.cedar"),
        format!("{}{}", &text[..start], &text[end..]),
    )
    .unwrap();
    for folder in ["ALLOW", "DENY"] {
        let target = copy.join("tests").join(folder);
        std::fs::create_dir_all(&target).unwrap();
        for entry in std::fs::read_dir(policies.join("tests").join(folder)).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, target.join(path.file_name().unwrap())).unwrap();
        }
    }
    let (code, report, _) = portcullis(
        &db,
        &["policy", "test", "--dir", copy.to_str().unwrap()],
        None,
    );
    assert_eq!(code, 1);
    assert_eq!(report["failed"][0]["file"], "DENY/payment-without-mfa.json");
    let (code, diff, err) = portcullis(
        &db,
        &[
            "policy",
            "diff",
            "--dir",
            copy.to_str().unwrap(),
            "--against",
            policies.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(diff["changed"].as_array().unwrap().len(), 1, "{diff}");
    assert_eq!(diff["changed"][0]["file"], "DENY/payment-without-mfa.json");
    assert_eq!(diff["changed"][0]["after"], "allow");
}

#[test]
fn a_toml_file_configures_and_bad_values_name_their_key() {
    let db = common::TestDb::sqlite(common::test_root());
    let file = db.dir().join("portcullis.toml");
    std::fs::write(&file, "listen = \"nowhere\"\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["migrate"])
        .env_clear()
        .env("PORTCULLIS_CONFIG", &file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("PORTCULLIS_LISTEN"));
    std::fs::write(&file, format!("database_url = \"{}\"\n", db.url)).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["audit", "verify"])
        .current_dir(db.dir())
        .env_clear()
        .env("PORTCULLIS_CONFIG", &file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        db.dir().join("portcullis.db").exists(),
        "the file's database_url was not used"
    );
}

#[test]
fn policy_push_publishes_to_a_running_control_plane() {
    use std::io::{Read as _, Write as _};
    let db = common::TestDb::sqlite(common::test_root());
    let (mut server, port) = serve(&db, Stdio::null());
    let (code, client, err) = portcullis(
        &db,
        &[
            "client",
            "create",
            "--name",
            "ci",
            "--scopes",
            "admin:policies",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let form = "grant_type=client_credentials";
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!(
            "{}:{}",
            client["client_id"].as_str().unwrap(),
            client["client_secret"].as_str().unwrap()
        ),
    );
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST /oauth2/token HTTP/1.1\r\nhost: x\r\nauthorization: Basic {basic}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{form}",
        form.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let token: serde_json::Value =
        serde_json::from_str(response.split_once("\r\n\r\n").unwrap().1).unwrap();
    let token = token["access_token"].as_str().unwrap();
    let push = |dir: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args([
                "policy",
                "push",
                "--dir",
                dir.to_str().unwrap(),
                "--url",
                &format!("http://127.0.0.1:{port}"),
            ])
            .env_clear()
            .env("PORTCULLIS_TOKEN", token)
            .output()
            .unwrap()
    };
    let pushed = push(&common::policy_dir());
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let reply: serde_json::Value = serde_json::from_slice(&pushed.stdout).unwrap();
    assert_eq!(reply["version"], 2);
    // A folder whose corpus fails is not pushed at all.
    let broken = db.dir().join("broken");
    std::fs::create_dir_all(broken.join("tests/DENY")).unwrap();
    std::fs::copy(
        common::policy_dir().join("schema.cedarschema"),
        broken.join("schema.cedarschema"),
    )
    .unwrap();
    std::fs::write(
        broken.join("all.cedar"),
        "permit (principal, action, resource);",
    )
    .unwrap();
    std::fs::copy(
        common::policy_dir().join("tests/DENY/public-write.json"),
        broken.join("tests/DENY/public-write.json"),
    )
    .unwrap();
    let refused = push(&broken);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("nothing pushed"));
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
}

#[test]
fn policy_fmt_and_validate_point_at_the_file_and_line() {
    let db = common::TestDb::sqlite(common::test_root());
    let policies = common::policy_dir();
    // The repository's own policies are formatted.
    let (code, report, err) = portcullis(
        &db,
        &[
            "policy",
            "fmt",
            "--dir",
            policies.to_str().unwrap(),
            "--check",
        ],
        None,
    );
    assert_eq!(code, 0, "{err} {report}");

    let copy = db.dir().join("messy");
    std::fs::create_dir_all(&copy).unwrap();
    for name in ["schema.cedarschema", "entities.json"] {
        std::fs::copy(policies.join(name), copy.join(name)).unwrap();
    }
    let messy = "// Kept.\n@id(\"x\") permit(principal,action in Action::\"read\",resource) when {context.scopes.contains(\"a\")};";
    std::fs::write(copy.join("a.cedar"), messy).unwrap();
    let dir = copy.to_str().unwrap();
    let (code, report, _) = portcullis(&db, &["policy", "fmt", "--dir", dir, "--check"], None);
    assert_eq!(code, 1);
    assert!(report["unformatted"][0]
        .as_str()
        .unwrap()
        .ends_with("a.cedar"));
    assert_eq!(
        std::fs::read_to_string(copy.join("a.cedar")).unwrap(),
        messy
    );
    let (code, _, err) = portcullis(&db, &["policy", "fmt", "--dir", dir], None);
    assert_eq!(code, 0, "{err}");
    let formatted = std::fs::read_to_string(copy.join("a.cedar")).unwrap();
    assert_ne!(formatted, messy);
    assert!(formatted.contains("// Kept."), "{formatted}");
    let (code, _, err) = portcullis(&db, &["policy", "fmt", "--dir", dir, "--check"], None);
    assert_eq!(code, 0, "{err}");
    let (code, report, err) = portcullis(&db, &["policy", "validate", "--dir", dir], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report["policies"], 1);

    // A file that does not validate: the report names the file and line and points at it.
    std::fs::write(
        copy.join("b.cedar"),
        "@id(\"y\")\npermit (principal, action, resource)\nwhen { context.nope };\n",
    )
    .unwrap();
    let (code, _, err) = portcullis(&db, &["policy", "validate", "--dir", dir], None);
    assert_eq!(code, 1);
    assert!(err.contains("b.cedar:3:"), "{err}");
    assert!(err.contains("when { context.nope };"), "{err}");
    assert!(err.contains('^'), "{err}");
}

#[test]
fn keys_bundle_public_prints_the_keys_to_pin_and_rotate_bundle_moves_them_on() {
    let db = common::TestDb::sqlite(common::test_root());
    let (code, printed, err) = portcullis(&db, &["keys", "bundle-public"], None);
    assert_eq!(code, 0, "{err}");
    let jwks: portcullis_authz::jwk::Jwks = serde_json::from_value(printed.clone())
        .unwrap_or_else(|e| panic!("not a JWKS: {e}: {printed}"));
    let pins = portcullis_authz::bundle_signature::PinnedKeys::from_jwks(&jwks.keys);
    assert_eq!(
        pins.map(|p| p.len()).ok(),
        Some(2),
        "the active and the next key, usable as bundle_signing_keys: {printed}"
    );
    let (_, again, _) = portcullis(&db, &["keys", "bundle-public"], None);
    assert_eq!(again, printed, "printing the keys created new ones");
    let (code, _, _) = portcullis(&db, &["keys", "rotate-bundle"], None);
    assert_ne!(code, 0, "a next key created seconds ago starts signing");
    let (code, rotated, err) = portcullis(&db, &["keys", "rotate-bundle", "--force"], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        rotated["active_kid"], printed["keys"][1]["kid"],
        "the next key signs after a rotation"
    );
    assert_eq!(rotated["keys"][0], printed["keys"][1]);
    assert_ne!(
        rotated["keys"][1], printed["keys"][0],
        "a new next key is created"
    );
}

/// What the binary prints for `args`: exit code, stdout, stderr.
fn printed(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .env_clear()
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn help_is_generated_for_every_command_and_names_the_environment() {
    let (code, help, err) = printed(&["--help"]);
    assert_eq!(code, 0, "{err}");
    for command in [
        "serve",
        "bootstrap",
        "user",
        "client",
        "keys",
        "policy",
        "audit",
        "completions",
    ] {
        assert!(help.contains(command), "--help lists {command}:\n{help}");
    }
    assert!(
        help.contains("DATABASE_URL"),
        "--help names the environment:\n{help}"
    );
    let (code, help, err) = printed(&["client", "create", "--help"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        help.contains("--grants") && help.contains("client_credentials"),
        "a subcommand's help lists its options and defaults:\n{help}"
    );
}

#[test]
fn usage_errors_exit_2_and_say_what_is_wrong() {
    let (code, _, err) = printed(&["client", "create"]);
    assert_eq!(code, 2, "a missing required option is a usage error: {err}");
    assert!(err.contains("--name"), "the missing option is named: {err}");
    let (code, _, err) = printed(&["keys", "rotate", "--forse"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--force"),
        "a misspelt option gets a suggestion: {err}"
    );
}

#[test]
fn a_password_never_comes_from_the_command_line() {
    let db = common::TestDb::sqlite(common::test_root());
    let (code, _, err) = portcullis(&db, &["bootstrap", "--username", "root"], None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--password-stdin"), "{err}");
    let (code, _, err) = portcullis(
        &db,
        &["bootstrap", "--username", "root", "--password", "x"],
        None,
    );
    assert_eq!(code, 2, "there is no --password option: {err}");
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, script, err) = printed(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(
            script.contains("portcullis") && script.contains("rotate-bundle"),
            "{shell}: the script completes the commands:\n{script}"
        );
    }
    let (code, _, _) = printed(&["completions", "tcsh"]);
    assert_eq!(code, 2, "an unknown shell is a usage error");
}
