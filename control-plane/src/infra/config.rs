//! Service configuration: flags, environment variables (clap reads both, see [`Settings`]) and an
//! optional TOML file. Every invalid value is refused at start with a message naming the
//! variable.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable holds a value that cannot be used.
    #[error("{name}: {problem}")]
    Invalid {
        /// The environment variable.
        name: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

fn invalid(name: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        problem: problem.into(),
    }
}

/// Token lifetimes and rotation windows, in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifetimes {
    /// Access tokens issued to users.
    pub access: i64,
    /// Access tokens from `client_credentials`.
    pub client_access: i64,
    /// Absolute lifetime of a refresh-token family (session).
    pub refresh: i64,
    /// How long a just-rotated refresh token may be replayed without revoking its family.
    pub refresh_grace: i64,
    /// How long a rotated client secret keeps working.
    pub secret_overlap: i64,
    /// How long the next signing key is published before a rotation may make it sign.
    pub key_prepublish: i64,
    /// How long a browser's sign-in (SSO) session lives without use.
    pub session_idle: i64,
    /// How long a browser's sign-in session lives at most, however often it is used.
    pub session_max: i64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            access: 15 * 60,
            client_access: 60 * 60,
            refresh: 30 * 24 * 60 * 60,
            refresh_grace: 10,
            secret_overlap: 24 * 60 * 60,
            key_prepublish: 5 * 60,
            session_idle: 30 * 60,
            session_max: 12 * 60 * 60,
        }
    }
}

impl Lifetimes {
    /// The longest an access token can live: keys and revocations are kept this long.
    pub fn longest_access(&self) -> i64 {
        self.access.max(self.client_access)
    }
}

/// Everything the service needs to run. Its `Debug` leaves out every credential (database and
/// Redis URLs may hold passwords).
#[derive(Clone)]
pub struct Config {
    /// Listen address (`PORTCULLIS_LISTEN`).
    pub listen: SocketAddr,
    /// Database URL (`DATABASE_URL`), SQLite file by default.
    pub database_url: String,
    /// Redis URL (`REDIS_URL`), optional: `redis://[user:password@]host[:port][/db]`, or
    /// `rediss://` for TLS.
    pub redis_url: Option<String>,
    /// PEM file of the CA that signs the Redis server's certificate (`PORTCULLIS_REDIS_CA`);
    /// the system's roots without it.
    pub redis_ca: Option<PathBuf>,
    /// Peers whose `X-Forwarded-For` is believed (`PORTCULLIS_TRUSTED_PROXIES`, CIDRs separated
    /// by spaces or commas); from anyone else the peer address is the client address.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Public issuer URL (`PORTCULLIS_ISSUER`).
    pub issuer: String,
    /// The edge's audiences, put into edge tokens and the bundle (`PORTCULLIS_AUDIENCES`, space
    /// separated).
    pub audiences: Vec<String>,
    /// The control plane's own audience (`PORTCULLIS_CONTROL_PLANE_AUDIENCE`, the issuer by
    /// default): the only one its admin API and `/v1/me` accept.
    pub control_plane_audience: String,
    /// Credential the edge filters present to fetch the bundle (`PORTCULLIS_BUNDLE_CREDENTIAL`).
    pub bundle_credential: Option<String>,
    /// Folder the first policy version is loaded from (`PORTCULLIS_POLICY_DIR`).
    pub policy_dir: Option<PathBuf>,
    /// Master key source (`PORTCULLIS_MASTER_KEY`, base64 of 32 bytes).
    pub master_key: Option<String>,
    /// Token lifetimes.
    pub lifetimes: Lifetimes,
    /// Bearer credential `/metrics` requires (`PORTCULLIS_METRICS_TOKEN`); open without it.
    pub metrics_token: Option<String>,
    /// Live sessions a user may hold (`PORTCULLIS_MAX_SESSIONS`, 10); a new sign-in beyond it
    /// ends the oldest.
    pub max_sessions: usize,
    /// Certificate and key the listener serves TLS with (`PORTCULLIS_TLS_CERT`,
    /// `PORTCULLIS_TLS_KEY`); plain HTTP without them. See [`crate::infra::tls`].
    pub tls: Option<TlsFiles>,
}

/// The PEM files of the listener's TLS certificate chain and private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |value: &Option<String>| value.as_ref().map(|_| "<redacted>");
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &"<redacted>")
            .field("redis_url", &set(&self.redis_url))
            .field("redis_ca", &self.redis_ca)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("control_plane_audience", &self.control_plane_audience)
            .field("bundle_credential", &set(&self.bundle_credential))
            .field("policy_dir", &self.policy_dir)
            .field("master_key", &set(&self.master_key))
            .field("lifetimes", &self.lifetimes)
            .field("metrics_token", &set(&self.metrics_token))
            .field("max_sessions", &self.max_sessions)
            .field("tls", &self.tls)
            .finish()
    }
}

/// Default [`Config::max_sessions`].
pub const DEFAULT_MAX_SESSIONS: usize = 10;

/// Declares [`Settings`], one optional flag per variable with the variable as its `env`, and
/// [`VARIABLES`].
macro_rules! settings {
    ($($(#[$meta:meta])* $field:ident: $name:literal, $secret:literal, $help:literal;)*) => {
        /// Every setting, as a flag or its environment variable (a flag wins over the variable,
        /// and the variable over the `--config` file). Values are checked by
        /// [`Config::from_lookup`], which names the variable of a bad one.
        #[derive(Debug, Default, Clone, clap::Args)]
        #[command(next_help_heading = "Configuration (each flag or its variable)")]
        pub struct Settings {
            $(
                #[doc = $help]
                $(#[$meta])*
                #[arg(long, env = $name, global = true, hide_env_values = $secret, value_name = "VALUE")]
                pub $field: Option<String>,
            )*
        }

        impl Settings {
            /// The value given for the variable `name`, if any (an empty value is none).
            pub fn get(&self, name: &str) -> Option<String> {
                match name {
                    $($name => self.$field.clone(),)*
                    _ => None,
                }
                .filter(|value| !value.is_empty())
            }
        }

        /// Every environment variable the service reads.
        pub const VARIABLES: &[&str] = &[$($name),*];
    };
}

settings! {
    listen: "PORTCULLIS_LISTEN", false, "Listen address [default: 127.0.0.1:8080]";
    database_url: "DATABASE_URL", true, "sqlite://… or postgres://… [default: sqlite://portcullis.db?mode=rwc]";
    redis_url: "REDIS_URL", true, "redis:// or rediss:// (optional: throttling and fan-out across replicas)";
    redis_ca: "PORTCULLIS_REDIS_CA", false, "PEM file of the CA of a rediss:// server";
    trusted_proxies: "PORTCULLIS_TRUSTED_PROXIES", false, "Peers whose X-Forwarded-For is believed (CIDRs)";
    issuer: "PORTCULLIS_ISSUER", false, "Public issuer URL [default: http://<listen>]";
    audiences: "PORTCULLIS_AUDIENCES", false, "The edge's audiences, space separated [default: portcullis-edge]";
    control_plane_audience: "PORTCULLIS_CONTROL_PLANE_AUDIENCE", false, "The control plane's own audience [default: the issuer]";
    bundle_credential: "PORTCULLIS_BUNDLE_CREDENTIAL", true, "What edges present to fetch the bundle (16+ characters)";
    master_key: "PORTCULLIS_MASTER_KEY", true, "Base64 of 32 random bytes (required with Postgres)";
    policy_dir: "PORTCULLIS_POLICY_DIR", false, "Folder the first policy version is loaded from";
    access_ttl: "PORTCULLIS_ACCESS_TTL", false, "User access-token lifetime, seconds [default: 900]";
    client_access_ttl: "PORTCULLIS_CLIENT_ACCESS_TTL", false, "client_credentials access-token lifetime, seconds [default: 3600]";
    refresh_ttl: "PORTCULLIS_REFRESH_TTL", false, "Session (refresh-token family) lifetime, seconds [default: 2592000]";
    refresh_grace: "PORTCULLIS_REFRESH_GRACE", false, "Replay grace of a just-rotated refresh token, seconds [default: 10]";
    key_prepublish: "PORTCULLIS_KEY_PREPUBLISH", false, "How long a next key is published before it may sign, seconds [default: 300]";
    max_sessions: "PORTCULLIS_MAX_SESSIONS", false, "Live sessions per user [default: 10]";
    session_idle: "PORTCULLIS_SESSION_IDLE", false, "Browser sign-in session lifetime without use, seconds [default: 1800]";
    session_max: "PORTCULLIS_SESSION_MAX", false, "Browser sign-in session lifetime at most, seconds [default: 43200]";
    metrics_token: "PORTCULLIS_METRICS_TOKEN", true, "Bearer token /metrics requires (16+ characters; open without it)";
    log: "PORTCULLIS_LOG", false, "error, warn, info, debug or trace [default: info]";
    config: "PORTCULLIS_CONFIG", false, "TOML file with the other settings (keys without the PORTCULLIS_ prefix, lower case)";
    tls_cert: "PORTCULLIS_TLS_CERT", false, "PEM certificate chain: serve TLS 1.3";
    tls_key: "PORTCULLIS_TLS_KEY", true, "PEM private key of PORTCULLIS_TLS_CERT";
}

/// The variable each key of a TOML configuration file stands for.
fn file_values(text: &str) -> Result<std::collections::HashMap<String, String>, ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| invalid("PORTCULLIS_CONFIG", e.message().to_owned()))?;
    let mut values = std::collections::HashMap::new();
    for (key, value) in table {
        let upper = key.to_ascii_uppercase();
        let name = VARIABLES
            .iter()
            .find(|v| **v == upper || **v == format!("PORTCULLIS_{upper}"))
            .ok_or_else(|| invalid("PORTCULLIS_CONFIG", format!("unknown key `{key}`")))?;
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(n) => n.to_string(),
            other => {
                return Err(invalid(
                    "PORTCULLIS_CONFIG",
                    format!(
                        "`{key}` must be a string or an integer, not {}",
                        other.type_str()
                    ),
                ))
            }
        };
        values.insert((*name).to_owned(), text);
    }
    Ok(values)
}

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default database: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://portcullis.db?mode=rwc";
/// Default audience.
pub const DEFAULT_AUDIENCE: &str = "portcullis-edge";

impl Config {
    /// Reads the configuration from `settings` (flags and environment) and, when
    /// `PORTCULLIS_CONFIG` names one, a TOML file whose keys are the variable names in lower case
    /// without the `PORTCULLIS_` prefix (`listen = "0.0.0.0:8080"`, `database_url = "postgres://…"`).
    /// Flags and the environment win over the file.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let file = match settings.get("PORTCULLIS_CONFIG") {
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| invalid("PORTCULLIS_CONFIG", format!("{path}: {e}")))?;
                file_values(&text)?
            }
            None => std::collections::HashMap::new(),
        };
        Self::from_lookup(|name| settings.get(name).or_else(|| file.get(name).cloned()))
    }

    /// Reads the configuration through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let listen_text = lookup("PORTCULLIS_LISTEN").unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            invalid(
                "PORTCULLIS_LISTEN",
                format!("`{listen_text}` is not an address like 127.0.0.1:8080"),
            )
        })?;
        let database_url =
            lookup("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        if !(database_url.starts_with("sqlite:") || database_url.starts_with("postgres")) {
            return Err(invalid(
                "DATABASE_URL",
                "must start with sqlite: or postgres://",
            ));
        }
        let redis_url = lookup("REDIS_URL");
        let redis_ca = lookup("PORTCULLIS_REDIS_CA").map(PathBuf::from);
        if let Some(url) = &redis_url {
            crate::infra::redis::validate(url, redis_ca.as_deref()).map_err(|e| match e {
                crate::infra::redis::RedisSetupError::Ca(_) => {
                    invalid("PORTCULLIS_REDIS_CA", e.to_string())
                }
                crate::infra::redis::RedisSetupError::Url(_) => invalid("REDIS_URL", e.to_string()),
            })?;
        }
        let trusted_proxies = lookup("PORTCULLIS_TRUSTED_PROXIES")
            .unwrap_or_default()
            .split([' ', ','])
            .filter(|c| !c.is_empty())
            .map(|cidr| {
                cidr.parse::<ipnet::IpNet>()
                    .or_else(|_| cidr.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        invalid(
                            "PORTCULLIS_TRUSTED_PROXIES",
                            format!("`{cidr}` is not an address or CIDR like 10.0.0.0/8"),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let issuer = lookup("PORTCULLIS_ISSUER").unwrap_or_else(|| format!("http://{listen}"));
        if !(issuer.starts_with("https://") || issuer.starts_with("http://"))
            || issuer.ends_with('/')
            || issuer.contains(['?', '#'])
        {
            return Err(invalid(
                "PORTCULLIS_ISSUER",
                "must be an http(s) URL without query, fragment or trailing slash",
            ));
        }
        let audiences: Vec<String> = lookup("PORTCULLIS_AUDIENCES")
            .unwrap_or_else(|| DEFAULT_AUDIENCE.into())
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if audiences.is_empty() {
            return Err(invalid(
                "PORTCULLIS_AUDIENCES",
                "needs at least one audience",
            ));
        }
        let control_plane_audience =
            lookup("PORTCULLIS_CONTROL_PLANE_AUDIENCE").unwrap_or_else(|| issuer.clone());
        if control_plane_audience.is_empty()
            || control_plane_audience.contains(char::is_whitespace)
            || audiences.contains(&control_plane_audience)
        {
            return Err(invalid(
                "PORTCULLIS_CONTROL_PLANE_AUDIENCE",
                "must be one word that is not also in PORTCULLIS_AUDIENCES (a token is for the edge or for the control plane, never both)",
            ));
        }
        let bundle_credential = lookup("PORTCULLIS_BUNDLE_CREDENTIAL");
        if bundle_credential.as_ref().is_some_and(|c| c.len() < 16) {
            return Err(invalid(
                "PORTCULLIS_BUNDLE_CREDENTIAL",
                "must be at least 16 characters",
            ));
        }
        let max_sessions = match lookup("PORTCULLIS_MAX_SESSIONS") {
            None => DEFAULT_MAX_SESSIONS,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=10_000).contains(n))
                .ok_or_else(|| {
                    invalid(
                        "PORTCULLIS_MAX_SESSIONS",
                        "must be a number from 1 to 10000",
                    )
                })?,
        };
        let metrics_token = lookup("PORTCULLIS_METRICS_TOKEN");
        if metrics_token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(invalid(
                "PORTCULLIS_METRICS_TOKEN",
                "must be at least 16 characters",
            ));
        }
        let master_key = lookup("PORTCULLIS_MASTER_KEY");
        if master_key.is_none() && !database_url.starts_with("sqlite:") {
            return Err(invalid(
                "PORTCULLIS_MASTER_KEY",
                "is required with a shared database (base64 of 32 random bytes)",
            ));
        }
        let mut lifetimes = Lifetimes::default();
        let seconds = |name: &'static str, default: i64, max: i64| -> Result<i64, ConfigError> {
            match lookup(name) {
                None => Ok(default),
                Some(text) => match text.parse::<i64>() {
                    Ok(n) if (1..=max).contains(&n) => Ok(n),
                    _ => Err(invalid(name, format!("must be whole seconds in 1..={max}"))),
                },
            }
        };
        lifetimes.access = seconds("PORTCULLIS_ACCESS_TTL", lifetimes.access, 86_400)?;
        lifetimes.client_access = seconds(
            "PORTCULLIS_CLIENT_ACCESS_TTL",
            lifetimes.client_access,
            86_400,
        )?;
        lifetimes.refresh = seconds("PORTCULLIS_REFRESH_TTL", lifetimes.refresh, 400 * 86_400)?;
        lifetimes.refresh_grace =
            seconds("PORTCULLIS_REFRESH_GRACE", lifetimes.refresh_grace, 120)?;
        lifetimes.key_prepublish = seconds(
            "PORTCULLIS_KEY_PREPUBLISH",
            lifetimes.key_prepublish,
            7 * 86_400,
        )?;
        lifetimes.session_max =
            seconds("PORTCULLIS_SESSION_MAX", lifetimes.session_max, 30 * 86_400)?;
        lifetimes.session_idle = seconds(
            "PORTCULLIS_SESSION_IDLE",
            lifetimes.session_idle,
            lifetimes.session_max,
        )?;
        let tls = match (lookup("PORTCULLIS_TLS_CERT"), lookup("PORTCULLIS_TLS_KEY")) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.into(),
                key: key.into(),
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid(
                    "PORTCULLIS_TLS_KEY",
                    "is required with PORTCULLIS_TLS_CERT",
                ))
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "PORTCULLIS_TLS_CERT",
                    "is required with PORTCULLIS_TLS_KEY",
                ))
            }
        };
        Ok(Config {
            tls,
            listen,
            database_url,
            redis_url,
            redis_ca,
            trusted_proxies,
            issuer,
            audiences,
            control_plane_audience,
            bundle_credential,
            policy_dir: lookup("PORTCULLIS_POLICY_DIR").map(PathBuf::from),
            master_key,
            lifetimes,
            metrics_token,
            max_sessions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_follow_the_contract() {
        let config = config(&[]).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.issuer, "http://127.0.0.1:8080");
        assert!(config.database_url.starts_with("sqlite:"));
        assert_eq!(config.audiences, vec!["portcullis-edge".to_string()]);
        assert_eq!(config.control_plane_audience, "http://127.0.0.1:8080");
    }

    #[test]
    fn the_control_plane_audience_is_never_an_edge_audience() {
        let error = config(&[("PORTCULLIS_CONTROL_PLANE_AUDIENCE", "portcullis-edge")])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("PORTCULLIS_CONTROL_PLANE_AUDIENCE"),
            "{error}"
        );
        let named = config(&[("PORTCULLIS_CONTROL_PLANE_AUDIENCE", "portcullis-admin")]).unwrap();
        assert_eq!(named.control_plane_audience, "portcullis-admin");
    }

    #[test]
    fn a_toml_file_names_variables_without_their_prefix() {
        let values = file_values(
            "listen = \"0.0.0.0:9000\"\ndatabase_url = \"sqlite://x.db\"\naccess_ttl = 600\n",
        )
        .unwrap();
        assert_eq!(values["PORTCULLIS_LISTEN"], "0.0.0.0:9000");
        assert_eq!(values["DATABASE_URL"], "sqlite://x.db");
        assert_eq!(values["PORTCULLIS_ACCESS_TTL"], "600");
        let unknown = file_values("lisen = \"x\"").unwrap_err().to_string();
        assert!(
            unknown.starts_with("PORTCULLIS_CONFIG") && unknown.contains("lisen"),
            "{unknown}"
        );
        assert!(file_values("listen = [1]").is_err());
        assert!(file_values("not toml ===").is_err());
    }

    #[test]
    fn every_variable_is_a_flag_and_a_flag_is_read_like_its_variable() {
        use clap::{CommandFactory as _, Parser as _};
        #[derive(clap::Parser)]
        struct Probe {
            #[command(flatten)]
            settings: Settings,
        }
        let command = Probe::command();
        for name in VARIABLES {
            assert!(
                command
                    .get_arguments()
                    .any(|arg| arg.get_env() == Some(std::ffi::OsStr::new(name))),
                "{name} has a flag"
            );
        }
        let probe =
            Probe::try_parse_from(["probe", "--listen", "0.0.0.0:9000", "--max-sessions", "3"])
                .unwrap();
        let config = Config::from_settings(&probe.settings).unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(config.max_sessions, 3);
        let bad = Probe::try_parse_from(["probe", "--max-sessions", "0"]).unwrap();
        let error = Config::from_settings(&bad.settings)
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("PORTCULLIS_MAX_SESSIONS"), "{error}");
    }

    #[test]
    fn only_documented_variables_are_read() {
        let asked = std::cell::RefCell::new(Vec::new());
        let _ = Config::from_lookup(|name| {
            asked.borrow_mut().push(name.to_owned());
            None
        });
        for name in asked.borrow().iter() {
            assert!(
                VARIABLES.contains(&name.as_str()),
                "{name} is not in VARIABLES"
            );
        }
    }

    #[test]
    fn debug_output_holds_no_credential() {
        let config = config(&[
            ("DATABASE_URL", "postgres://app:db-secret@db/portcullis"),
            ("REDIS_URL", "redis://:redis-secret@cache"),
            (
                "PORTCULLIS_MASTER_KEY",
                "bWFzdGVyLXNlY3JldC1tYXN0ZXItc2VjcmV0LTEyMzQ=",
            ),
            ("PORTCULLIS_BUNDLE_CREDENTIAL", "bundle-secret-0123456789"),
            ("PORTCULLIS_METRICS_TOKEN", "metrics-secret-0123456789"),
        ])
        .unwrap();
        let shown = format!("{config:?}");
        for secret in [
            "db-secret",
            "redis-secret",
            "bWFzdGVy",
            "bundle-secret",
            "metrics-secret",
        ] {
            assert!(!shown.contains(secret), "{secret} shows in {shown}");
        }
    }

    #[test]
    fn invalid_values_name_their_variable() {
        for (pairs, name) in [
            (vec![("PORTCULLIS_LISTEN", "nowhere")], "PORTCULLIS_LISTEN"),
            (vec![("DATABASE_URL", "mysql://x")], "DATABASE_URL"),
            (vec![("REDIS_URL", "http://x")], "REDIS_URL"),
            (
                vec![
                    ("REDIS_URL", "rediss://x"),
                    ("PORTCULLIS_REDIS_CA", "/nonexistent/ca.pem"),
                ],
                "PORTCULLIS_REDIS_CA",
            ),
            (
                vec![("PORTCULLIS_METRICS_TOKEN", "short")],
                "PORTCULLIS_METRICS_TOKEN",
            ),
            (
                vec![("PORTCULLIS_MAX_SESSIONS", "0")],
                "PORTCULLIS_MAX_SESSIONS",
            ),
            (
                vec![("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/8 everyone")],
                "PORTCULLIS_TRUSTED_PROXIES",
            ),
            (
                vec![("PORTCULLIS_ISSUER", "http://x/")],
                "PORTCULLIS_ISSUER",
            ),
            (
                vec![("PORTCULLIS_ACCESS_TTL", "-5")],
                "PORTCULLIS_ACCESS_TTL",
            ),
            (
                vec![("DATABASE_URL", "postgres://localhost/x")],
                "PORTCULLIS_MASTER_KEY",
            ),
            (
                vec![("PORTCULLIS_BUNDLE_CREDENTIAL", "short")],
                "PORTCULLIS_BUNDLE_CREDENTIAL",
            ),
            (
                vec![("PORTCULLIS_TLS_CERT", "cert.pem")],
                "PORTCULLIS_TLS_KEY",
            ),
            (
                vec![("PORTCULLIS_TLS_KEY", "key.pem")],
                "PORTCULLIS_TLS_CERT",
            ),
        ] {
            let error = config(&pairs).unwrap_err().to_string();
            assert!(error.starts_with(name), "{error}");
        }
    }
}
