//! A fresh database per test: a SQLite file in a new directory, or a new PostgreSQL database
//! that is dropped when the test is done.

use std::path::{Path, PathBuf};

/// The environment variable naming the PostgreSQL server tests create databases on.
pub const POSTGRES_ENV: &str = "PORTCULLIS_TEST_POSTGRES";

/// The PostgreSQL server tests create databases on: [`POSTGRES_ENV`], by default
/// `postgres://postgres@127.0.0.1:5432/test`.
pub fn postgres_admin_url() -> String {
    std::env::var(POSTGRES_ENV).unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database that exists for one test, with a directory for the test's files.
///
/// Dropping it drops the PostgreSQL database (forcibly, even with connections still open) and
/// removes the directory.
#[derive(Debug)]
pub struct TestDb {
    /// The `DATABASE_URL` for it.
    pub url: String,
    postgres_name: Option<String>,
    dir: PathBuf,
}

impl TestDb {
    /// A SQLite file in a fresh directory under `root`.
    pub fn sqlite(root: &Path) -> Self {
        let dir = fresh_dir(root, &random_name());
        TestDb {
            url: format!("sqlite://{}/portcullis.db?mode=rwc", dir.display()),
            postgres_name: None,
            dir,
        }
    }

    /// A new PostgreSQL database on [`postgres_admin_url`]'s server, with a fresh directory
    /// under `root`.
    ///
    /// # Panics
    /// If the server cannot be reached or the database cannot be created.
    pub async fn postgres(root: &Path) -> Self {
        use sqlx::Connection as _;
        let admin = postgres_admin_url();
        let name = format!("pc_test_{}", random_name());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is required for these tests: {e}"));
        sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap_or_else(|e| panic!("create database {name}: {e}"));
        let _ = conn.close().await;
        let base = admin
            .rsplit_once('/')
            .map(|(base, _)| base.to_owned())
            .unwrap_or_else(|| panic!("{admin} names no database"));
        TestDb {
            url: format!("{base}/{name}"),
            dir: fresh_dir(root, &name),
            postgres_name: Some(name),
        }
    }

    /// The directory for this test's files.
    pub fn dir(&self) -> &PathBuf {
        &self.dir
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.postgres_name.take() {
            drop_postgres(name);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Drops database `name`, waiting until it is gone.
fn drop_postgres(name: String) {
    let admin = postgres_admin_url();
    // A thread with its own runtime: Drop may run inside the test's runtime, which cannot be
    // blocked on.
    let _ = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async move {
            use sqlx::Connection as _;
            if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                let _ = sqlx::Executor::execute(
                    &mut conn,
                    format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                )
                .await;
                let _ = conn.close().await;
            }
        });
    })
    .join();
}

/// A new directory `cp-{name}` under `root`.
fn fresh_dir(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(format!("cp-{name}"));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// 16 random hex digits: unique across tests and test processes running at once.
fn random_name() -> String {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes).unwrap_or_else(|e| panic!("getrandom: {e}"));
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
