//! Opening the store (connect, migrate, master key, signing keys, first policy set) and
//! running the HTTP service until a shutdown signal.

use crate::audit::action::Action;
use crate::infra::config::Config;
use crate::infra::db::{self, Backend, Db};
use crate::keys::secrets::{MasterKey, SecretError};
use crate::policy::set::{PolicySet, PolicyStoreError};
use crate::state::AppState;
use axum::serve::ListenerExt as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database is unreachable or a migration failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// The master key is unusable.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// Keys could not be prepared.
    #[error(transparent)]
    Keys(#[from] crate::keys::signing::KeyError),
    /// The initial policy set is invalid.
    #[error("policies: {0}")]
    Policies(#[from] PolicyStoreError),
    /// The bundle could not be assembled.
    #[error(transparent)]
    Bundle(#[from] crate::bundle::AssembleError),
    /// The audit chain is not keyed yet, or does not verify.
    #[error("audit log: {0}")]
    Audit(#[from] crate::audit::ChainError),
    /// The TLS certificate or key is unusable.
    #[error("TLS: {0}")]
    Tls(#[from] crate::infra::tls::TlsError),
    /// The listener could not be bound.
    #[error("listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
}

/// The master key: `PORTCULLIS_MASTER_KEY`, or for the single-node SQLite default a key file
/// (`portcullis.key`, mode 0600) next to the database.
pub fn master_key(config: &Config, backend: Backend) -> Result<MasterKey, SecretError> {
    match (&config.master_key, backend) {
        (Some(text), _) => MasterKey::from_base64(text),
        (None, _) => {
            let path = sqlite_dir(&config.database_url).join("portcullis.key");
            MasterKey::from_file_or_create(&path)
        }
    }
}

fn sqlite_dir(url: &str) -> std::path::PathBuf {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or("");
    Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| std::path::PathBuf::from("."))
}

/// Audits a change the service made by itself (no request behind it) in `tx`.
async fn system_event(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    master: &MasterKey,
    action: Action,
    target: &str,
) -> Result<(), sqlx::Error> {
    crate::audit::append(
        tx,
        master,
        &crate::audit::Origin::default(),
        &crate::audit::Event {
            actor: "portcullis",
            action,
            target,
            outcome: "success",
            detail: serde_json::json!({}),
        },
    )
    .await
    .map(drop)
}

/// Connects, migrates and reads the master key, and nothing else (`audit rekey` runs on this).
pub async fn open_store(config: &Config) -> Result<(Db, MasterKey), StartError> {
    let db = db::connect(&config.database_url).await?;
    db::migrate(&db).await?;
    let master = master_key(config, db.backend)?;
    Ok((db, master))
}

/// Connects, migrates, checks the audit chain is keyed, prepares keys and loads the first policy
/// set if none exists.
pub async fn open(config: &Config) -> Result<(Db, MasterKey), StartError> {
    let (db, master) = open_store(config).await?;
    crate::audit::ensure_keyed(&db.pool).await?;
    let mut tx = db.pool.begin().await?;
    if crate::keys::signing::ensure(&mut tx, &master).await? {
        crate::bundle::bump(&mut tx).await?;
        system_event(&mut tx, &master, Action::KeyCreated, "signing-keys").await?;
    }
    if crate::keys::id_token::ensure_in_use(&mut tx, &master).await? {
        crate::bundle::bump(&mut tx).await?;
        system_event(&mut tx, &master, Action::KeyCreated, "id-token-keys").await?;
    }
    tx.commit().await?;
    if crate::policy::store::active(&db.pool).await?.is_none() {
        if let Some(dir) = initial_policy_dir(config) {
            let set = PolicySet::from_dir(&dir)?;
            let mut tx = db.pool.begin().await?;
            let version =
                crate::policy::store::store_and_activate(&mut tx, &set, "bootstrap").await?;
            crate::audit::append(
                &mut tx,
                &master,
                &crate::audit::Origin::default(),
                &crate::audit::Event {
                    actor: "system",
                    action: Action::PolicyPublished,
                    target: &format!("policy:{version}"),
                    outcome: "success",
                    detail: serde_json::json!({"source": dir.display().to_string()}),
                },
            )
            .await?;
            tx.commit().await?;
            tracing::info!(dir = %dir.display(), version, "loaded the first policy set");
        }
    }
    Ok((db, master))
}

fn initial_policy_dir(config: &Config) -> Option<std::path::PathBuf> {
    config.policy_dir.clone().or_else(|| {
        let local = std::path::PathBuf::from("policies");
        local.join("schema.cedarschema").exists().then_some(local)
    })
}

/// Serves until SIGINT/SIGTERM.
pub async fn serve(config: Config) -> Result<(), StartError> {
    let shutdown = shutdown_signal();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartError::Bind(config.listen, e))?;
    serve_on(listener, config, shutdown).await
}

/// Serves on `listener` until `shutdown` completes (tests and embedders pick the signal).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let tls = match &config.tls {
        Some(files) => Some(crate::infra::tls::acceptor(&files.cert, &files.key)?),
        None => None,
    };
    let (db, master) = open(&config).await?;
    let state = AppState::new(db, config.clone(), master).await?;
    // With Redis, replicas wake each other at once (fanout.rs) and the database poll is only the
    // safety net; without it, the poll is how a change on one replica reaches the others.
    let follow_every = if config.redis_url.is_some() {
        Duration::from_secs(5)
    } else {
        Duration::from_millis(500)
    };
    let follower = state.spawn_follower(follow_every);
    let fanout = state
        .redis()
        .map(|redis| crate::bundle::fanout::spawn_listener(state.clone(), redis.clone()));
    let maintenance = spawn_maintenance(state.clone());
    let checkpoints = spawn_checkpoints(state.clone());
    let relay = state.redis().map(|redis| {
        crate::audit::relay::spawn_relay(
            state.db().pool.clone(),
            redis.clone(),
            Duration::from_millis(200),
        )
    });
    tracing::info!(listen = %config.listen, tls = tls.is_some(), issuer = %config.issuer, "portcullis control plane serving");
    let app = crate::app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    // Long-polls would hold a graceful shutdown for up to a minute: in-flight requests get a
    // few seconds, then the server stops (edges simply poll again).
    let (fired, stopped) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        let _ = fired.send(());
    };
    // `tap_io` adds nothing but axum's `ConnectInfo<SocketAddr>` support for this listener type.
    let incoming = crate::infra::tls::Incoming::new(listener, tls)
        .map_err(|e| StartError::Bind(config.listen, e))?
        .tap_io(|_| ());
    let server = axum::serve(incoming, app).with_graceful_shutdown(signal);
    let grace = async move {
        if stopped.await.is_ok() {
            tokio::time::sleep(Duration::from_secs(3)).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let result = tokio::select! {
        result = server => result,
        () = grace => Ok(()),
    };
    follower.abort();
    maintenance.abort();
    checkpoints.abort();
    for task in [relay, fanout].into_iter().flatten() {
        task.abort();
    }
    state.db().pool.close().await;
    result.map_err(|e| StartError::Bind(config.listen, e))
}

/// Hourly: drop expired revocations, retire keys whose tokens have expired.
/// How often the audit head is checkpointed (when it moved).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(60);

fn spawn_checkpoints(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(CHECKPOINT_EVERY);
        let mut last = 0;
        loop {
            ticker.tick().await;
            match crate::audit::checkpoint_if_moved(&state.db().pool, state.master(), last).await {
                Ok(seq) => last = seq,
                Err(error) => tracing::warn!(%error, "audit checkpoint failed"),
            }
        }
    })
}

fn spawn_maintenance(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(3600));
        loop {
            ticker.tick().await;
            let pool = &state.db().pool;
            if let Err(error) = crate::identity::sessions::revocations::prune(pool).await {
                tracing::warn!(%error, "pruning revocations failed");
            }
            let grace = state.config().lifetimes.refresh_grace;
            if let Err(error) = crate::identity::sessions::forget_successors(pool, grace).await {
                tracing::warn!(%error, "forgetting refresh successors failed");
            }
            if let Err(error) = crate::oauth::codes::prune(pool).await {
                tracing::warn!(%error, "pruning authorization codes failed");
            }
            if let Err(error) = crate::identity::browser_sessions::prune(pool).await {
                tracing::warn!(%error, "pruning browser sessions failed");
            }
            if let Err(error) = retire_expired_keys(&state).await {
                tracing::warn!(%error, "retiring keys failed");
            }
        }
    })
}

/// Retires signing keys whose last token has expired, audited in the same transaction, and
/// republishes the bundle when any was; returns how many.
pub async fn retire_expired_keys(state: &AppState) -> Result<u64, StartError> {
    let mut tx = state.db().pool.begin().await?;
    let retired = crate::keys::signing::retire_expired(&mut tx).await?;
    if retired > 0 {
        crate::bundle::bump(&mut tx).await?;
        system_event(&mut tx, state.master(), Action::KeyRetired, "signing-keys").await?;
    }
    tx.commit().await?;
    if retired > 0 {
        state.republish().await?;
    }
    Ok(retired)
}

/// SIGINT or SIGTERM. The handlers are installed now, not when the future is first polled, so a
/// signal that arrives while the store is still opening is not fatal.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
