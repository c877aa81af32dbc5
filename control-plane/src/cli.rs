//! The `portcullis` command line (clap): generated help, typed arguments, shell completions
//! (`portcullis completions bash`). Every command takes the same configuration as `serve`, each
//! setting a flag or its environment variable (`--database-url` or `DATABASE_URL`, …; see
//! `--help`); commands that create something print one JSON object on stdout.

use crate::audit::{self, Origin};
use crate::identity::passwords::Hasher;
use crate::identity::service::UserSpec;
use crate::infra::config::{Config, Settings};
use crate::oauth::grant::GrantType;
use crate::oauth::registration::{AuthMethod, IdTokenAlg};
use crate::oauth::service::ClientSpec;
use crate::policy::set::PolicySet;
use crate::service::{Actor, Context};
use crate::{identity, keys, oauth, policy};
use clap::{Args, CommandFactory as _, Parser, Subcommand};
use serde_json::{json, Value};
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// The Portcullis control plane and its administration.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the control plane (PORTCULLIS_LISTEN, DATABASE_URL, …)
    Serve,
    /// Apply database migrations
    Migrate,
    /// Create the first administrator (only on an empty store)
    Bootstrap {
        /// The administrator's username.
        #[arg(long)]
        username: String,
        #[command(flatten)]
        password: PasswordStdin,
    },
    /// Users
    #[command(subcommand)]
    User(UserCommand),
    /// OAuth clients
    #[command(subcommand)]
    Client(ClientCommand),
    /// Token-signing and bundle-signing keys
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Policy folders and the policy store
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// The hash-chained audit log
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Print a shell completion script
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
}

/// The password, read from standard input: passwords never go on the command line.
#[derive(Debug, Args)]
struct PasswordStdin {
    /// Read the password from standard input (required).
    #[arg(long = "password-stdin")]
    password_stdin: bool,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user
    Create {
        /// Username.
        #[arg(long)]
        username: String,
        #[command(flatten)]
        password: PasswordStdin,
        /// Roles, comma separated.
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
        /// Scopes, space separated.
        #[arg(long, default_value = "")]
        scopes: String,
        /// Tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Email address.
        #[arg(long)]
        email: Option<String>,
    },
    /// Disable a user and end all its sessions
    Disable {
        /// User id.
        #[arg(long)]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Create a client (prints its secret once)
    Create {
        /// Name.
        #[arg(long)]
        name: String,
        /// Scopes, space separated.
        #[arg(long, default_value = "")]
        scopes: String,
        /// Grant types, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "client_credentials", value_parser = grant_type)]
        grants: Vec<GrantType>,
        /// Roles, comma separated.
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
        /// Tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// A redirect URI for the authorization code grant (repeat for several).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// A public client (an SPA or native app): no secret, authorization_code and
        /// refresh_token only.
        #[arg(long)]
        public: bool,
        /// Where logout may send the browser back (repeat for several).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// What its ID tokens are signed with: RS256, ES256 or EdDSA.
        #[arg(long = "id-token-alg", default_value = "RS256", value_parser = id_token_alg)]
        id_token_alg: IdTokenAlg,
    },
    /// New secret; the old one works for the overlap window
    Rotate {
        /// Client id.
        #[arg(long)]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// The pre-published next key starts signing
    Rotate {
        /// A compromised key: rotate now and retire the old key.
        #[arg(long)]
        force: bool,
    },
    /// The bundle-signing public keys (active, next) to pin in every filter's bundle_signing_keys
    BundlePublic,
    /// The next bundle-signing key signs, the active one retires (pin the new next key beside it)
    RotateBundle {
        /// Before the pre-publication time has passed.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Format every *.cedar file
    Fmt {
        /// The policy folder.
        #[arg(long)]
        dir: PathBuf,
        /// List the unformatted files, change nothing.
        #[arg(long)]
        check: bool,
    },
    /// Validate a policy folder (no database needed)
    Validate {
        /// The policy folder.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Run DIR/tests/ALLOW/*.json and DIR/tests/DENY/*.json
    Test {
        /// The policy folder.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Corpus decisions that differ between OTHER and DIR
    Diff {
        /// The policy folder.
        #[arg(long)]
        dir: PathBuf,
        /// The folder to compare with.
        #[arg(long)]
        against: PathBuf,
    },
    /// Test locally, then publish to a running control plane
    Push {
        /// The policy folder.
        #[arg(long)]
        dir: PathBuf,
        /// The control plane, http://host:port.
        #[arg(long)]
        url: String,
        /// An access token with admin:policies.
        #[arg(long, env = "PORTCULLIS_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// A PEM file of a CA to trust for an https:// URL, besides the public roots.
        #[arg(long)]
        ca: Option<PathBuf>,
    },
    /// Validate, store and activate a policy folder
    Load {
        /// The policy folder.
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the audit chain (and that it still holds a checkpoint's row)
    Verify {
        /// A checkpoint printed earlier (pcc1.…).
        #[arg(long)]
        checkpoint: Option<String>,
    },
    /// Print a signed checkpoint of the audit head
    Checkpoint,
    /// Once, after upgrading a store whose audit chain predates keying
    Rekey,
    /// Print the public key checkpoints verify with (JWK)
    CheckpointKey,
}

/// Why a command failed; printed as one line, exit status 1 (2 for usage).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments (clap's message, with usage).
    #[error("{0}")]
    Usage(String),
    /// Invalid configuration.
    #[error(transparent)]
    Config(#[from] crate::infra::config::ConfigError),
    /// The command failed.
    #[error("{0}")]
    Failed(String),
}

fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::Failed(e.to_string())
}

fn password_from_stdin(flag: &PasswordStdin) -> Result<String, CliError> {
    if !flag.password_stdin {
        return Err(CliError::Usage(
            "--password-stdin is required (passwords never go on the command line)".into(),
        ));
    }
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).map_err(failed)?;
    let password = text.strip_suffix('\n').unwrap_or(&text);
    Ok(password.strip_suffix('\r').unwrap_or(password).to_owned())
}

/// `policy fmt`: rewrites every `*.cedar` file of `dir` formatted, or with `check` only reports
/// the files that are not.
fn format_dir(dir: &Path, check: bool) -> Result<(), CliError> {
    let mut changed = Vec::new();
    for path in portcullis_authz::folder::cedar_files(dir).map_err(failed)? {
        let text = std::fs::read_to_string(&path).map_err(failed)?;
        let formatted = crate::policy::set::format_policies(&text)
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
    let cli = match Cli::try_parse_from(
        std::iter::once("portcullis".to_owned()).chain(args.iter().cloned()),
    ) {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            // --help and --version: printed, and not an error.
            print!("{error}");
            return Ok(());
        }
        Err(error) => return Err(CliError::Usage(error.render().to_string())),
    };
    init_logging(cli.settings.get("PORTCULLIS_LOG").as_deref());
    match cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "portcullis",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Policy(command) if !matches!(command, PolicyCommand::Load { .. }) => {
            offline_policy(command).await
        }
        command => with_store(command, &cli.settings).await,
    }
}

/// Logs to standard error at `level` (`PORTCULLIS_LOG`: error, warn, info, debug, trace).
fn init_logging(level: Option<&str>) {
    let level = match level {
        Some("error") => tracing::Level::ERROR,
        Some("warn") => tracing::Level::WARN,
        Some("debug") => tracing::Level::DEBUG,
        Some("trace") => tracing::Level::TRACE,
        _ => tracing::Level::INFO,
    };
    // A second run in one process (tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .try_init();
}

/// The policy commands that need no database.
async fn offline_policy(command: PolicyCommand) -> Result<(), CliError> {
    match command {
        PolicyCommand::Test { dir } => {
            let (_, results) = crate::policy::corpus::test_dir(&dir).map_err(failed)?;
            let failures: Vec<_> = results.iter().filter(|r| !r.passed()).collect();
            print(&json!({"passed": results.len() - failures.len(), "failed": failures}));
            if failures.is_empty() {
                Ok(())
            } else {
                Err(failed(format!(
                    "{} of {} cases failed",
                    failures.len(),
                    results.len()
                )))
            }
        }
        PolicyCommand::Diff { dir, against } => {
            let ours = PolicySet::from_dir(&dir)
                .map_err(failed)?
                .validate()
                .map_err(failed)?;
            let theirs = PolicySet::from_dir(&against)
                .map_err(failed)?
                .validate()
                .map_err(failed)?;
            let cases = portcullis_authz::folder::corpus(&dir).map_err(failed)?;
            let before = crate::policy::corpus::run_corpus(&theirs, &cases);
            let after = crate::policy::corpus::run_corpus(&ours, &cases);
            let changed: Vec<Value> = before
                .iter()
                .zip(&after)
                .filter(|(b, a)| b.got != a.got)
                .map(|(b, a)| json!({"file": a.file, "before": b.got, "after": a.got, "deciding": a.policy_ids}))
                .collect();
            print(&json!({"cases": cases.len(), "changed": changed}));
            Ok(())
        }
        PolicyCommand::Push {
            dir,
            url,
            token,
            ca,
        } => {
            let (set, results) = crate::policy::corpus::test_dir(&dir).map_err(failed)?;
            let failures = results.iter().filter(|r| !r.passed()).count();
            if failures > 0 {
                return Err(failed(format!(
                    "{failures} corpus cases fail; run `portcullis policy test --dir {}` (nothing pushed)",
                    dir.display()
                )));
            }
            let token = token.ok_or_else(|| {
                CliError::Usage(
                    "PORTCULLIS_TOKEN (or --token) must hold an access token with admin:policies"
                        .into(),
                )
            })?;
            let body = serde_json::to_string(&set).map_err(failed)?;
            let (status, reply) = put(&url, "/admin/v1/policies", &token, body, ca.as_deref())
                .await
                .map_err(failed)?;
            println!("{reply}");
            if status == 200 {
                Ok(())
            } else {
                Err(failed(format!(
                    "the control plane refused the push ({status})"
                )))
            }
        }
        PolicyCommand::Fmt { dir, check } => format_dir(&dir, check),
        PolicyCommand::Validate { dir } => {
            let problems = crate::policy::diagnostics::check_dir(&dir).map_err(failed)?;
            if !problems.is_empty() {
                for problem in &problems {
                    eprintln!("{problem}\n");
                }
                return Err(failed(format!("{} problems", problems.len())));
            }
            let set = PolicySet::from_dir(&dir).map_err(failed)?;
            let engine = set.validate().map_err(failed)?;
            print(&json!({"valid": true, "policies": engine.policy_count()}));
            Ok(())
        }
        PolicyCommand::Load { .. } => unreachable!("policy load needs the store"),
    }
}

/// The commands that read the configuration and open the store. Each change is an operation of
/// the service layer, acted by the [`Actor::operator`].
async fn with_store(command: Command, settings: &Settings) -> Result<(), CliError> {
    let config = Config::from_settings(settings)?;
    match command {
        Command::Serve => return crate::server::serve(config).await.map_err(failed),
        Command::Audit(AuditCommand::Rekey) => {
            let (db, master) = crate::server::open_store(&config).await.map_err(failed)?;
            let rows = audit::rekey(&db.pool, &master).await.map_err(failed)?;
            print(&json!({"rekeyed": rows}));
            return Ok(());
        }
        _ => {}
    }
    let (db, master) = crate::server::open(&config).await.map_err(failed)?;
    let pool = &db.pool;
    let hasher = Hasher::new(1).map_err(failed)?;
    let actor = Actor::operator();
    let origin = Origin {
        client_ip: "local".into(),
        request_id: crate::keys::secrets::random_id().unwrap_or_default(),
    };
    let ctx = Context::offline(pool, &master, &config, &hasher, &actor, &origin);
    match command {
        Command::Migrate => {
            print(&json!({"migrated": true}));
        }
        Command::Bootstrap { username, password } => {
            let password = password_from_stdin(&password)?;
            let (user, client, secret) = identity::service::bootstrap(&ctx, username, &password)
                .await
                .map_err(failed)?;
            print(
                &json!({"user_id": user.user_id, "client_id": client.client_id, "client_secret": secret}),
            );
        }
        Command::User(UserCommand::Create {
            username,
            password,
            roles,
            scopes,
            tenant,
            email,
        }) => {
            let spec = UserSpec {
                username,
                password: password_from_stdin(&password)?,
                email,
                roles: trimmed(roles),
                scopes,
                tenant,
            };
            let user = identity::service::create_user(&ctx, spec)
                .await
                .map_err(failed)?;
            print(&json!({"user_id": user.user_id}));
        }
        Command::User(UserCommand::Disable { id }) => {
            let ended = identity::service::disable_user(&ctx, &id)
                .await
                .map_err(failed)?;
            print(&json!({"user_id": id, "disabled": true, "sessions_ended": ended}));
        }
        Command::Client(ClientCommand::Create {
            name,
            scopes,
            grants,
            roles,
            tenant,
            redirect_uris,
            public,
            id_token_alg,
            post_logout_redirect_uris,
        }) => {
            let spec = ClientSpec {
                name,
                scopes,
                grant_types: grants,
                roles: trimmed(roles),
                tenant,
                redirect_uris,
                auth_method: if public {
                    AuthMethod::None
                } else {
                    AuthMethod::ClientSecretBasic
                },
                id_token_alg,
                post_logout_redirect_uris,
            };
            let (client, secret) = oauth::service::create_client(&ctx, &spec)
                .await
                .map_err(failed)?;
            let mut created = json!({"client_id": client.client_id});
            if let Some(secret) = secret {
                created["client_secret"] = json!(secret);
            }
            print(&created);
        }
        Command::Client(ClientCommand::Rotate { id }) => {
            let rotated = oauth::service::rotate_client_secret(&ctx, &id)
                .await
                .map_err(failed)?;
            print(&json!({"client_id": id, "client_secret": rotated.secret}));
        }
        Command::Keys(KeysCommand::Rotate { force }) => {
            let kid = keys::service::rotate_signing_key(&ctx, force)
                .await
                .map_err(failed)?;
            print(&json!({"active_kid": kid}));
        }
        Command::Keys(KeysCommand::BundlePublic) => {
            print(&json!(keys::bundle::pins(pool, &master)
                .await
                .map_err(failed)?));
        }
        Command::Keys(KeysCommand::RotateBundle { force }) => {
            let kid = keys::service::rotate_bundle_key(&ctx, force)
                .await
                .map_err(failed)?;
            let pins = keys::bundle::pins(pool, &master).await.map_err(failed)?;
            print(&json!({"active_kid": kid, "keys": pins.keys}));
        }
        Command::Policy(PolicyCommand::Load { dir }) => {
            let set = PolicySet::from_dir(&dir).map_err(failed)?;
            let version = policy::service::publish(&ctx, &set).await.map_err(failed)?;
            print(&json!({"version": version}));
        }
        Command::Audit(AuditCommand::Verify { checkpoint }) => {
            let rows = match checkpoint {
                Some(text) => {
                    let checkpoint = audit::Checkpoint::verified(&text, &master).map_err(failed)?;
                    audit::verify_against(pool, &master, &checkpoint)
                        .await
                        .map_err(failed)?
                }
                None => audit::verify(pool, &master).await.map_err(failed)?,
            };
            print(&json!({"verified": rows}));
        }
        Command::Audit(AuditCommand::Checkpoint) => {
            let checkpoint = audit::checkpoint(pool).await.map_err(failed)?;
            print(&json!({"seq": checkpoint.seq, "checkpoint": checkpoint.sign(&master)}));
        }
        Command::Audit(AuditCommand::CheckpointKey) => {
            print(
                &serde_json::to_value(master.audit_checkpoint_key().public_jwk())
                    .map_err(|e| CliError::Failed(e.to_string()))?,
            );
        }
        Command::Serve
        | Command::Audit(AuditCommand::Rekey)
        | Command::Completions { .. }
        | Command::Policy(_) => unreachable!("dispatched before the store opens"),
    }
    Ok(())
}

/// A grant type named on the command line.
fn grant_type(name: &str) -> Result<GrantType, String> {
    GrantType::from_name(name.trim()).ok_or_else(|| {
        let known: Vec<_> = GrantType::ALL.iter().map(|g| g.as_str()).collect();
        format!("unknown grant type (one of {})", known.join(", "))
    })
}

fn id_token_alg(name: &str) -> Result<IdTokenAlg, String> {
    IdTokenAlg::from_name(name.trim()).ok_or_else(|| {
        let known: Vec<_> = IdTokenAlg::ALL.iter().map(|a| a.as_str()).collect();
        format!("unknown ID token algorithm (one of {})", known.join(", "))
    })
}

/// Comma-separated items without blanks (`--roles "a, b,"` is `a`, `b`).
fn trimmed(items: Vec<String>) -> Vec<String> {
    items
        .into_iter()
        .map(|item| item.trim().to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

/// `PUT`s a JSON `body` to `url` + `path` with `token` as its bearer, over HTTP or HTTPS (the public
/// roots, and `ca` when given); the status and the response body.
async fn put(
    url: &str,
    path: &str,
    token: &str,
    body: String,
    ca: Option<&Path>,
) -> Result<(u16, String), String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err("--url must be http://host:port or https://host[:port]".into());
    }
    let mut client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(60));
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
        let certificate =
            reqwest::Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", ca.display()))?;
        client = client.add_root_certificate(certificate);
    }
    let client = client.build().map_err(|e| e.to_string())?;
    let response = client
        .put(format!("{}{path}", url.trim_end_matches('/')))
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| e.to_string())?;
    Ok((status, text))
}
