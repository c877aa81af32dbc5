//! The `portcullis` command line. Every command reads the same environment as `serve`
//! (`DATABASE_URL`, `PORTCULLIS_MASTER_KEY`, …); commands that create something print one JSON
//! object on stdout.

use crate::audit::{self, Event, Origin};
use crate::clients::NewClient;
use crate::config::Config;
use crate::policies::PolicySet;
use crate::users::NewUser;
use serde_json::{json, Value};
use std::io::Read as _;
use std::path::PathBuf;

/// Usage text.
pub const USAGE: &str = "\
usage: portcullis <command>

  serve                                   run the control plane (PORTCULLIS_LISTEN, DATABASE_URL, …)
  migrate                                 apply database migrations
  bootstrap --username U --password-stdin create the first administrator (only on an empty store)
  user create --username U --password-stdin [--roles r1,r2] [--scopes \"a b\"] [--tenant T] [--email E]
  user disable --id ID                    disable a user and end all sessions
  client create --name N [--scopes \"a b\"] [--grants client_credentials,password,refresh_token] [--roles r1,r2] [--tenant T]
  client rotate --id ID                   new secret; the old one works for the overlap window
  keys rotate [--force]                   the pre-published next key starts signing (--force: a
                                          compromised key — rotate now and retire the old key)
  keys bundle-public                      the bundle-signing public keys (active, next) to pin in
                                          every filter's bundle_signing_keys
  keys rotate-bundle [--force]            the next bundle-signing key signs, the active one
                                          retires (pin the new next key beside it; --force:
                                          before the pre-publication time has passed)
  policy fmt --dir DIR [--check]          format every *.cedar file (--check: list, change nothing)
  policy validate --dir DIR               validate a policy folder (no database needed)
  policy test --dir DIR                   run DIR/tests/ALLOW/*.json and DIR/tests/DENY/*.json
  policy diff --dir DIR --against OTHER   corpus decisions that differ between OTHER and DIR
  policy push --dir DIR --url URL         test locally, then publish to a running control plane
                                          (token with admin:policies in PORTCULLIS_TOKEN)
  policy load --dir DIR                   validate, store and activate a policy folder
  audit verify [--checkpoint TEXT]        check the audit chain (and that it still holds a checkpoint's row)
  audit checkpoint                        print a signed checkpoint of the audit head
  audit rekey                             once, after upgrading a store whose audit chain predates keying
  audit checkpoint-key                    print the public key checkpoints verify with (JWK)

environment: PORTCULLIS_LISTEN (127.0.0.1:8080), DATABASE_URL (sqlite://portcullis.db?mode=rwc),
  REDIS_URL, PORTCULLIS_ISSUER (http://<listen>), PORTCULLIS_AUDIENCES (portcullis-edge),
  PORTCULLIS_MASTER_KEY (required with Postgres), PORTCULLIS_BUNDLE_CREDENTIAL,
  PORTCULLIS_POLICY_DIR, PORTCULLIS_ACCESS_TTL, PORTCULLIS_CLIENT_ACCESS_TTL,
  PORTCULLIS_REFRESH_TTL, PORTCULLIS_REFRESH_GRACE, PORTCULLIS_KEY_PREPUBLISH (300),
  PORTCULLIS_TLS_CERT and PORTCULLIS_TLS_KEY (PEM files: serve TLS 1.3)";

/// Why a command failed; printed as one line, exit status 1 (2 for usage).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments.
    #[error("{0}\n\n{USAGE}")]
    Usage(String),
    /// Invalid configuration.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The command failed.
    #[error("{0}")]
    Failed(String),
}

/// How long a next key must have been published before a rotation (none with `--force`).
fn prepublish(options: &Options, config: &Config) -> i64 {
    if options.flag("force") {
        0
    } else {
        config.lifetimes.key_prepublish
    }
}

fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::Failed(e.to_string())
}

/// `--name value` options after the command words.
struct Options {
    pairs: Vec<(String, Option<String>)>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self, CliError> {
        let mut pairs = Vec::new();
        let mut iter = args.iter().peekable();
        while let Some(arg) = iter.next() {
            let Some(name) = arg.strip_prefix("--") else {
                return Err(CliError::Usage(format!("unexpected argument `{arg}`")));
            };
            let value = match iter.peek() {
                Some(next) if !next.starts_with("--") => iter.next().cloned(),
                _ => None,
            };
            pairs.push((name.to_owned(), value));
        }
        Ok(Options { pairs })
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    fn flag(&self, name: &str) -> bool {
        self.pairs.iter().any(|(n, _)| n == name)
    }

    fn required(&self, name: &str) -> Result<&str, CliError> {
        self.value(name)
            .ok_or_else(|| CliError::Usage(format!("--{name} is required")))
    }

    fn check_known(&self, known: &[&str]) -> Result<(), CliError> {
        match self
            .pairs
            .iter()
            .find(|(n, _)| !known.contains(&n.as_str()))
        {
            Some((name, _)) => Err(CliError::Usage(format!("unknown option --{name}"))),
            None => Ok(()),
        }
    }
}

fn list(text: Option<&str>) -> Vec<String> {
    text.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn password_from_stdin(options: &Options) -> Result<String, CliError> {
    if !options.flag("password-stdin") {
        return Err(CliError::Usage(
            "--password-stdin is required (passwords never go on the command line)".into(),
        ));
    }
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).map_err(failed)?;
    let password = text.strip_suffix('\n').unwrap_or(&text);
    let password = password.strip_suffix('\r').unwrap_or(password).to_owned();
    crate::passwords::check_policy(&password).map_err(failed)?;
    Ok(password)
}

/// `policy fmt`: rewrites every `*.cedar` file of `dir` formatted, or with `check` only reports
/// the files that are not.
fn format_dir(dir: &std::path::Path, check: bool) -> Result<(), CliError> {
    let mut changed = Vec::new();
    for path in crate::policies::cedar_files(dir).map_err(failed)? {
        let text = std::fs::read_to_string(&path).map_err(failed)?;
        let formatted = crate::policies::format_policies(&text)
            .map_err(|e| failed(format!("{}: {e}", path.display())))?;
        if formatted != text {
            if !check {
                std::fs::write(&path, &formatted).map_err(failed)?;
            }
            changed.push(path.display().to_string());
        }
    }
    if check {
        print(&json!({"unformatted": changed}));
        if !changed.is_empty() {
            return Err(failed(format!(
                "{} files are not formatted; run `portcullis policy fmt --dir {}`",
                changed.len(),
                dir.display()
            )));
        }
    } else {
        print(&json!({"formatted": changed}));
    }
    Ok(())
}

fn print(value: &Value) {
    println!("{value}");
}

/// Runs the command in `args` (without the program name).
pub async fn run(args: &[String]) -> Result<(), CliError> {
    let words: Vec<&str> = args
        .iter()
        .take_while(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    let options = Options::parse(&args[words.len()..])?;
    if options.flag("help") || words.is_empty() || words == ["help"] {
        println!("{USAGE}");
        return Ok(());
    }
    if words == ["policy", "test"] {
        options.check_known(&["dir"])?;
        let dir = PathBuf::from(options.required("dir")?);
        let (_, results) = crate::policies::test_dir(&dir).map_err(failed)?;
        let failures: Vec<_> = results.iter().filter(|r| !r.passed()).collect();
        print(&json!({"passed": results.len() - failures.len(), "failed": failures}));
        return if failures.is_empty() {
            Ok(())
        } else {
            Err(failed(format!(
                "{} of {} cases failed",
                failures.len(),
                results.len()
            )))
        };
    }
    if words == ["policy", "diff"] {
        options.check_known(&["dir", "against"])?;
        let dir = PathBuf::from(options.required("dir")?);
        let other = PathBuf::from(options.required("against")?);
        let ours = PolicySet::from_dir(&dir)
            .map_err(failed)?
            .validate()
            .map_err(failed)?;
        let theirs = PolicySet::from_dir(&other)
            .map_err(failed)?
            .validate()
            .map_err(failed)?;
        let cases = crate::policies::load_corpus(&dir).map_err(failed)?;
        let before = crate::policies::run_corpus(&theirs, &cases);
        let after = crate::policies::run_corpus(&ours, &cases);
        let changed: Vec<Value> = before
            .iter()
            .zip(&after)
            .filter(|(b, a)| b.got != a.got)
            .map(|(b, a)| json!({"file": a.file, "before": b.got, "after": a.got, "deciding": a.policy_ids}))
            .collect();
        print(&json!({"cases": cases.len(), "changed": changed}));
        return Ok(());
    }
    if words == ["policy", "push"] {
        options.check_known(&["dir", "url"])?;
        let dir = PathBuf::from(options.required("dir")?);
        let (set, results) = crate::policies::test_dir(&dir).map_err(failed)?;
        let failures = results.iter().filter(|r| !r.passed()).count();
        if failures > 0 {
            return Err(failed(format!(
                "{failures} corpus cases fail; run `portcullis policy test --dir {}` (nothing pushed)",
                dir.display()
            )));
        }
        let token = std::env::var("PORTCULLIS_TOKEN").map_err(|_| {
            CliError::Usage("PORTCULLIS_TOKEN must hold an access token with admin:policies".into())
        })?;
        let body = serde_json::to_string(&set).map_err(failed)?;
        let (status, reply) = http_put(
            options.required("url")?,
            "/admin/v1/policies",
            &token,
            &body,
        )
        .await
        .map_err(failed)?;
        println!("{reply}");
        return if status == 200 {
            Ok(())
        } else {
            Err(failed(format!(
                "the control plane refused the push ({status})"
            )))
        };
    }
    if words == ["policy", "fmt"] {
        options.check_known(&["dir", "check"])?;
        return format_dir(
            &PathBuf::from(options.required("dir")?),
            options.flag("check"),
        );
    }
    if words == ["policy", "validate"] {
        options.check_known(&["dir"])?;
        let dir = PathBuf::from(options.required("dir")?);
        let problems = crate::diagnostics::check_dir(&dir).map_err(failed)?;
        if !problems.is_empty() {
            for problem in &problems {
                eprintln!("{problem}\n");
            }
            return Err(failed(format!("{} problems", problems.len())));
        }
        let set = PolicySet::from_dir(&dir).map_err(failed)?;
        let engine = set.validate().map_err(failed)?;
        print(&json!({"valid": true, "policies": engine.policy_count()}));
        return Ok(());
    }
    let config = Config::from_env()?;
    if words == ["serve"] {
        options.check_known(&[])?;
        return crate::server::serve(config).await.map_err(failed);
    }
    if words == ["audit", "rekey"] {
        options.check_known(&[])?;
        let (db, master) = crate::server::open_store(&config).await.map_err(failed)?;
        let rows = audit::rekey(&db.pool, &master).await.map_err(failed)?;
        print(&json!({"rekeyed": rows}));
        return Ok(());
    }
    let (db, master) = crate::server::open(&config).await.map_err(failed)?;
    let pool = &db.pool;
    let origin = Origin {
        client_ip: "local".into(),
        request_id: crate::secrets::random_id().unwrap_or_default(),
    };
    match words.as_slice() {
        ["migrate"] => {
            options.check_known(&[])?;
            print(&json!({"migrated": true}));
        }
        ["bootstrap"] => {
            options.check_known(&["username", "password-stdin"])?;
            if crate::users::any_exist(pool).await.map_err(failed)? {
                return Err(failed(
                    "bootstrap runs only on an empty store; use the admin API",
                ));
            }
            let username = options.required("username")?.to_owned();
            let password = password_from_stdin(&options)?;
            let hasher = crate::passwords::Hasher::new(1).map_err(failed)?;
            let hash = hasher.hash(&password).await.map_err(failed)?;
            let mut tx = pool.begin().await.map_err(failed)?;
            let user = crate::users::create(
                &mut tx,
                &NewUser {
                    username,
                    password_hash: hash,
                    roles: vec!["admin".into()],
                    scopes: "admin:full".into(),
                    ..NewUser::default()
                },
            )
            .await
            .map_err(failed)?;
            let (client, secret) = crate::clients::create(
                &mut tx,
                &master,
                &NewClient {
                    name: "portcullis-admin",
                    scopes: "admin:full admin:users admin:clients admin:keys admin:audit admin:policies self",
                    grants: &["password".into(), "refresh_token".into()],
                    roles: &["admin".into()],
                    tenant: None,
                },
            )
            .await
            .map_err(failed)?;
            let target = format!("user:{}", user.user_id);
            audit::append(
                &mut tx,
                &master,
                &origin,
                &cli_event("admin.bootstrapped", &target),
            )
            .await
            .map_err(failed)?;
            tx.commit().await.map_err(failed)?;
            print(
                &json!({"user_id": user.user_id, "client_id": client.client_id, "client_secret": secret}),
            );
        }
        ["user", "create"] => {
            options.check_known(&[
                "username",
                "password-stdin",
                "roles",
                "scopes",
                "tenant",
                "email",
            ])?;
            let username = options.required("username")?.to_owned();
            crate::users::check_username(&username).map_err(failed)?;
            let password = password_from_stdin(&options)?;
            let hasher = crate::passwords::Hasher::new(1).map_err(failed)?;
            let hash = hasher.hash(&password).await.map_err(failed)?;
            let mut tx = pool.begin().await.map_err(failed)?;
            let user = crate::users::create(
                &mut tx,
                &NewUser {
                    username,
                    password_hash: hash,
                    email: options.value("email").map(str::to_owned),
                    roles: list(options.value("roles")),
                    scopes: options.value("scopes").unwrap_or("").to_owned(),
                    tenant: options.value("tenant").map(str::to_owned),
                },
            )
            .await
            .map_err(failed)?;
            let target = format!("user:{}", user.user_id);
            audit::append(
                &mut tx,
                &master,
                &origin,
                &cli_event("user.created", &target),
            )
            .await
            .map_err(failed)?;
            tx.commit().await.map_err(failed)?;
            print(&json!({"user_id": user.user_id}));
        }
        ["user", "disable"] => {
            options.check_known(&["id"])?;
            let id = options.required("id")?;
            let longest = config.lifetimes.longest_access();
            let mut tx = pool.begin().await.map_err(failed)?;
            crate::users::set_disabled(&mut tx, id, true)
                .await
                .map_err(failed)?;
            let ended = crate::sessions::end_for_user(&mut tx, id, longest)
                .await
                .map_err(failed)?;
            crate::bundle::bump(&mut tx).await.map_err(failed)?;
            let target = format!("user:{id}");
            audit::append(
                &mut tx,
                &master,
                &origin,
                &cli_event("user.disabled", &target),
            )
            .await
            .map_err(failed)?;
            tx.commit().await.map_err(failed)?;
            print(&json!({"user_id": id, "disabled": true, "sessions_ended": ended}));
        }
        ["client", "create"] => {
            options.check_known(&["name", "scopes", "grants", "roles", "tenant"])?;
            let grants = match options.value("grants") {
                Some(text) => list(Some(text)),
                None => vec!["client_credentials".into()],
            };
            let mut tx = pool.begin().await.map_err(failed)?;
            let (client, secret) = crate::clients::create(
                &mut tx,
                &master,
                &NewClient {
                    name: options.required("name")?,
                    scopes: options.value("scopes").unwrap_or(""),
                    grants: &grants,
                    roles: &list(options.value("roles")),
                    tenant: options.value("tenant"),
                },
            )
            .await
            .map_err(failed)?;
            let target = format!("client:{}", client.client_id);
            audit::append(
                &mut tx,
                &master,
                &origin,
                &cli_event("client.created", &target),
            )
            .await
            .map_err(failed)?;
            tx.commit().await.map_err(failed)?;
            print(&json!({"client_id": client.client_id, "client_secret": secret}));
        }
        ["client", "rotate"] => {
            options.check_known(&["id"])?;
            let id = options.required("id")?;
            let overlap = config.lifetimes.secret_overlap;
            let mut tx = pool.begin().await.map_err(failed)?;
            let secret = crate::clients::rotate_secret(&mut tx, &master, id, overlap)
                .await
                .map_err(failed)?;
            let target = format!("client:{id}");
            audit::append(
                &mut tx,
                &master,
                &origin,
                &cli_event("client.secret_rotated", &target),
            )
            .await
            .map_err(failed)?;
            tx.commit().await.map_err(failed)?;
            print(&json!({"client_id": id, "client_secret": secret}));
        }
        ["keys", "rotate"] => {
            options.check_known(&["force"])?;
            let prepublish = prepublish(&options, &config);
            let mut tx = pool.begin().await.map_err(failed)?;
            let kid = crate::keys::rotate(
                &mut tx,
                &master,
                config.lifetimes.longest_access(),
                prepublish,
                options.flag("force"),
            )
            .await
            .map_err(failed)?;
            audit::append(
                &mut tx,
                &master,
                &origin,
                &cli_event("key.rotated", &format!("key:{kid}")),
            )
            .await
            .map_err(failed)?;
            tx.commit().await.map_err(failed)?;
            print(&json!({"active_kid": kid}));
        }
        ["keys", "bundle-public"] => {
            options.check_known(&[])?;
            print(&json!(crate::bundle_keys::pins(pool, &master)
                .await
                .map_err(failed)?));
        }
        ["keys", "rotate-bundle"] => {
            options.check_known(&["force"])?;
            let prepublish = prepublish(&options, &config);
            let mut tx = pool.begin().await.map_err(failed)?;
            let kid = crate::bundle_keys::rotate(&mut tx, &master, prepublish)
                .await
                .map_err(failed)?;
            audit::append(
                &mut tx,
                &master,
                &origin,
                &cli_event("bundle_key.rotated", &format!("key:{kid}")),
            )
            .await
            .map_err(failed)?;
            tx.commit().await.map_err(failed)?;
            let pins = crate::bundle_keys::pins(pool, &master)
                .await
                .map_err(failed)?;
            print(&json!({"active_kid": kid, "keys": pins.keys}));
        }
        ["policy", "load"] => {
            options.check_known(&["dir"])?;
            let set =
                PolicySet::from_dir(&PathBuf::from(options.required("dir")?)).map_err(failed)?;
            let mut tx = pool.begin().await.map_err(failed)?;
            let version = crate::policies::store_and_activate(&mut tx, &set, "cli")
                .await
                .map_err(failed)?;
            audit::append(
                &mut tx,
                &master,
                &origin,
                &cli_event("policy.published", &format!("policy:{version}")),
            )
            .await
            .map_err(failed)?;
            tx.commit().await.map_err(failed)?;
            print(&json!({"version": version}));
        }
        ["audit", "verify"] => {
            options.check_known(&["checkpoint"])?;
            let rows = match options.value("checkpoint") {
                Some(text) => {
                    let checkpoint = audit::Checkpoint::verified(text, &master).map_err(failed)?;
                    audit::verify_against(pool, &master, &checkpoint)
                        .await
                        .map_err(failed)?
                }
                None => audit::verify(pool, &master).await.map_err(failed)?,
            };
            print(&json!({"verified": rows}));
        }
        ["audit", "checkpoint"] => {
            options.check_known(&[])?;
            let checkpoint = audit::checkpoint(pool).await.map_err(failed)?;
            print(&json!({"seq": checkpoint.seq, "checkpoint": checkpoint.sign(&master)}));
        }
        ["audit", "checkpoint-key"] => {
            options.check_known(&[])?;
            print(
                &serde_json::to_value(master.audit_checkpoint_key().public_jwk())
                    .map_err(|e| CliError::Failed(e.to_string()))?,
            );
        }
        _ => {
            return Err(CliError::Usage(format!(
                "unknown command `{}`",
                words.join(" ")
            )));
        }
    }
    Ok(())
}

/// A minimal HTTP/1.1 `PUT` over plain TCP (`http://host:port` only; put TLS in front of the
/// control plane with a proxy and push from inside).
async fn http_put(url: &str, path: &str, token: &str, body: &str) -> Result<(u16, String), String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let authority = url
        .strip_prefix("http://")
        .ok_or("--url must be http://host:port")?
        .trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| format!("{authority}: {e}"))?;
    let request = format!(
        "PUT {path} HTTP/1.1\r\nhost: {authority}\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("malformed response")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("malformed status line")?;
    Ok((status, body.to_owned()))
}

fn cli_event<'a>(action: &'a str, target: &'a str) -> Event<'a> {
    Event {
        actor: "cli",
        action,
        target,
        outcome: "success",
        detail: json!({}),
    }
}
