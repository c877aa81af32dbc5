//! The database: one SQL dialect subset that runs on SQLite (embedded default) and PostgreSQL,
//! reached through sqlx's `Any` driver, and the embedded migrations.

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor as _, Row as _};
use std::str::FromStr as _;
use std::time::Duration;

/// The embedded migrations, applied in order and recorded in `schema_migrations`.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/0001_init.sql")),
    (2, include_str!("../../migrations/0002_event_relay.sql")),
    (3, include_str!("../../migrations/0003_policy_tests.sql")),
    (
        4,
        include_str!("../../migrations/0004_client_roles_tenant.sql"),
    ),
    (
        5,
        include_str!("../../migrations/0005_refresh_successor.sql"),
    ),
    (6, include_str!("../../migrations/0006_audit_keyed.sql")),
    (
        7,
        include_str!("../../migrations/0007_bundle_signing_keys.sql"),
    ),
    (
        8,
        include_str!("../../migrations/0008_session_audience.sql"),
    ),
    (
        9,
        include_str!("../../migrations/0009_audit_address_pseudonym.sql"),
    ),
    (
        10,
        include_str!("../../migrations/0010_authorization_code.sql"),
    ),
    (11, include_str!("../../migrations/0011_openid_connect.sql")),
];

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file (single node).
    Sqlite,
    /// PostgreSQL (shared by replicas).
    Postgres,
}

/// A connection pool and what it talks to.
#[derive(Debug, Clone)]
pub struct Db {
    /// The pool.
    pub pool: AnyPool,
    /// The backend.
    pub backend: Backend,
}

/// Connects to `url` (`sqlite:…` or `postgres://…`).
pub async fn connect(url: &str) -> Result<Db, sqlx::Error> {
    sqlx::any::install_default_drivers();
    let backend = if url.starts_with("sqlite:") {
        Backend::Sqlite
    } else {
        Backend::Postgres
    };
    let options = AnyConnectOptions::from_str(url)?;
    let pool = match backend {
        // One writer at a time is what SQLite does anyway; a single connection turns lock
        // contention into queueing instead of SQLITE_BUSY errors.
        Backend::Sqlite => {
            AnyPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(5))
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        Ok(())
                    })
                })
                .connect_with(options)
                .await?
        }
        Backend::Postgres => {
            AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(2))
                .connect_with(options)
                .await?
        }
    };
    Ok(Db { pool, backend })
}

/// Applies the migrations not yet recorded; returns how many ran.
pub async fn migrate(db: &Db) -> Result<usize, sqlx::Error> {
    // Up to date: no DDL at all, so a service role without CREATE (see
    // `control-plane/sql/postgres-audit-insert-only.sql`) starts.
    let recorded: Result<Vec<i64>, sqlx::Error> =
        sqlx::query_scalar("SELECT version FROM schema_migrations")
            .fetch_all(&db.pool)
            .await;
    if recorded.is_ok_and(|done| MIGRATIONS.iter().all(|(v, _)| done.contains(v))) {
        return Ok(0);
    }
    db.pool
        .execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .await?;
    let mut applied = 0;
    for (version, sql) in MIGRATIONS {
        let mut tx = db.pool.begin().await?;
        if db.backend == Backend::Postgres {
            // Replicas starting together take turns.
            tx.execute("SELECT pg_advisory_xact_lock(74017)").await?;
        }
        let done = sqlx::query("SELECT version FROM schema_migrations WHERE version = $1")
            .bind(*version)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if done {
            continue;
        }
        for statement in statements(sql) {
            tx.execute(statement.as_str()).await?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(*version)
            .bind(crate::now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        applied += 1;
    }
    Ok(applied)
}

/// Splits a migration into statements, dropping `--` comment lines.
fn statements(sql: &str) -> Vec<String> {
    let without_comments: String = sql
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A stored list (scopes, roles, grant types are kept as space-separated text).
pub fn words(text: &str) -> Vec<String> {
    text.split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether the database answers.
pub async fn ping(db: &Db) -> bool {
    sqlx::query("SELECT 1")
        .fetch_one(&db.pool)
        .await
        .and_then(|row| {
            row.try_get::<i32, _>(0)
                .or_else(|_| row.try_get::<i64, _>(0).map(|v| v as i32))
        })
        .is_ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn statements_are_split_and_comments_dropped() {
        let parts =
            super::statements("-- c\nCREATE TABLE a (x TEXT);\n\nINSERT INTO a VALUES ('y');\n");
        assert_eq!(
            parts,
            vec!["CREATE TABLE a (x TEXT)", "INSERT INTO a VALUES ('y')"]
        );
    }
}
