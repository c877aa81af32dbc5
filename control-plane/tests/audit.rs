//! The audit trail against someone who can write the database: a row rewritten with the chain
//! recomputed (unkeyed) is found; a dropped tail and a history rewritten with the key are found
//! against a signed checkpoint; checkpoints cannot be forged; a store chained before the chain
//! was keyed is keyed at start only if its old chain verifies.

mod common;

use common::{config, TestApp, TestDb};
use portcullis_control_plane::audit::{self, ChainError, Checkpoint};
use portcullis_control_plane::keys::secrets::MasterKey;
use sha2::{Digest, Sha256};
use sqlx::Row as _;

/// Some audit rows: client creations and token issuance.
async fn with_rows(db: &TestDb) -> TestApp {
    let app = TestApp::start(config(db, &[])).await;
    let (id, secret) = app.client("svc", "a", &["client_credentials"]).await;
    for _ in 0..4 {
        app.cc_token(&id, &secret, None).await;
    }
    app
}

/// Re-chains every row with plain SHA-256 as someone without the master key would, after
/// `tamper` changed the rows; points the head at the result and marks the chain `keyed`.
async fn rechain_unkeyed(app: &TestApp, keyed: i64) {
    let pool = &app.state.db().pool;
    let rows = sqlx::query(
        "SELECT seq, at, actor, action, target, outcome, client_ip, request_id, detail, client_ip_pseudonym FROM audit_log ORDER BY seq",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut prev = "0".repeat(64);
    for row in &rows {
        let seq: i64 = row.get(0);
        let at: i64 = row.get(1);
        let pseudonym: String = row.get(9);
        let address = if pseudonym.is_empty() {
            row.get(6)
        } else {
            format!("pseudonym:{pseudonym}")
        };
        let mut hasher = Sha256::new();
        let fields: Vec<String> = vec![
            prev.clone(),
            seq.to_string(),
            at.to_string(),
            row.get(2),
            row.get(3),
            row.get(4),
            row.get(5),
            address,
            row.get(7),
            row.get(8),
        ];
        for field in &fields {
            hasher.update((field.len() as u64).to_be_bytes());
            hasher.update(field.as_bytes());
        }
        let hash: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        sqlx::query("UPDATE audit_log SET prev_hash = $1, hash = $2 WHERE seq = $3")
            .bind(&prev)
            .bind(&hash)
            .bind(seq)
            .execute(pool)
            .await
            .unwrap();
        prev = hash;
    }
    sqlx::query("UPDATE audit_head SET hash = $1, keyed = $2 WHERE id = 1")
        .bind(&prev)
        .bind(keyed)
        .execute(pool)
        .await
        .unwrap();
}

async fn rewritten_without_key(db: &TestDb) {
    let app = with_rows(db).await;
    let pool = &app.state.db().pool;
    let rows = audit::verify(pool, app.state.master()).await.unwrap();
    assert!(rows >= 5, "{rows}");
    sqlx::query("UPDATE audit_log SET outcome = 'failure' WHERE seq = 2")
        .execute(pool)
        .await
        .unwrap();
    rechain_unkeyed(&app, 1).await;
    assert_eq!(
        audit::verify(pool, app.state.master()).await,
        Err(ChainError::Broken(1)),
        "a chain recomputed without the master key does not verify"
    );
}
both_backends!(
    a_row_rewritten_with_its_chain_recomputed_is_found_without_the_key,
    rewritten_without_key
);

/// Drops the newest `n` rows and points the head at the last one left, keeping the chain valid.
async fn drop_tail(app: &TestApp, n: i64) {
    let pool = &app.state.db().pool;
    let head: i64 = sqlx::query_scalar("SELECT seq FROM audit_head WHERE id = 1")
        .fetch_one(pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_log WHERE seq > $1")
        .bind(head - n)
        .execute(pool)
        .await
        .unwrap();
    let last: String = sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = $1")
        .bind(head - n)
        .fetch_one(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(head - n)
        .bind(last)
        .execute(pool)
        .await
        .unwrap();
}

async fn dropped_tail(db: &TestDb) {
    let app = with_rows(db).await;
    let (pool, master) = (&app.state.db().pool, app.state.master());
    let signed = audit::checkpoint(pool).await.unwrap().sign(master);
    let checkpoint = Checkpoint::verified(&signed, master).unwrap();
    assert!(audit::verify_against(pool, master, &checkpoint)
        .await
        .is_ok());
    drop_tail(&app, 2).await;
    assert!(
        audit::verify(pool, master).await.is_ok(),
        "the chain alone cannot show a dropped tail"
    );
    assert_eq!(
        audit::verify_against(pool, master, &checkpoint).await,
        Err(ChainError::TailDropped {
            checkpoint: checkpoint.seq,
            head: checkpoint.seq - 2
        })
    );
}
both_backends!(a_dropped_tail_is_found_against_a_checkpoint, dropped_tail);

async fn rewritten_with_key(db: &TestDb) {
    let app = with_rows(db).await;
    let (pool, master) = (&app.state.db().pool, app.state.master());
    let checkpoint =
        Checkpoint::verified(&audit::checkpoint(pool).await.unwrap().sign(master), master).unwrap();
    // Someone who can write the database rewrites a row, recomputes the unkeyed chain, clears
    // the keyed flag, and gets an operator to run the one-time `audit rekey`.
    sqlx::query("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3")
        .execute(pool)
        .await
        .unwrap();
    rechain_unkeyed(&app, 0).await;
    assert!(audit::rekey(pool, master).await.unwrap() > 0);
    assert!(
        audit::verify(pool, master).await.is_ok(),
        "the chain is valid again"
    );
    assert_eq!(
        audit::verify_against(pool, master, &checkpoint).await,
        Err(ChainError::Rewritten(checkpoint.seq)),
        "the checkpoint taken before shows the rewrite"
    );
}
both_backends!(
    a_history_rewritten_with_the_key_is_found_against_a_checkpoint,
    rewritten_with_key
);

async fn forged_checkpoints(db: &TestDb) {
    let app = with_rows(db).await;
    let (pool, master) = (&app.state.db().pool, app.state.master());
    let signed = audit::checkpoint(pool).await.unwrap().sign(master);
    assert!(Checkpoint::verified(&signed, master).is_ok());
    let (message, signature) = signed.rsplit_once('.').unwrap();
    let mut parts: Vec<&str> = message.split('.').collect();
    let higher = (parts[1].parse::<i64>().unwrap() + 1).to_string();
    parts[1] = &higher;
    let moved = format!("{}.{signature}", parts.join("."));
    assert!(
        matches!(
            Checkpoint::verified(&moved, master),
            Err(ChainError::BadCheckpoint(_))
        ),
        "a checkpoint whose sequence was changed verifies"
    );
    let other = MasterKey::from_bytes([42; 32]);
    let foreign = audit::checkpoint(pool).await.unwrap().sign(&other);
    assert!(
        matches!(
            Checkpoint::verified(&foreign, master),
            Err(ChainError::BadCheckpoint(_))
        ),
        "a checkpoint signed under another master key verifies"
    );
    assert!(Checkpoint::verified("pcc1.1.x", master).is_err());
}
both_backends!(checkpoints_cannot_be_forged, forged_checkpoints);

async fn checkpoint_rows(db: &TestDb) {
    let app = with_rows(db).await;
    let (pool, master) = (&app.state.db().pool, app.state.master());
    let head = audit::checkpoint(pool).await.unwrap().seq;
    let row = audit::checkpoint_if_moved(pool, master, 0).await.unwrap();
    assert_eq!(row, head + 1, "the checkpoint is the next row");
    let text: String = sqlx::query_scalar(
        "SELECT target FROM audit_log WHERE seq = $1 AND action = 'audit.checkpoint'",
    )
    .bind(row)
    .fetch_one(pool)
    .await
    .unwrap();
    let checkpoint = Checkpoint::verified(&text, master).unwrap();
    assert_eq!(checkpoint.seq, head, "it vouches for the head before it");
    assert_eq!(
        audit::checkpoint_if_moved(pool, master, row).await.unwrap(),
        row,
        "no new checkpoint while nothing happened"
    );
    assert!(audit::verify(pool, master).await.is_ok());
}
both_backends!(
    the_head_is_checkpointed_into_the_log_when_it_moves,
    checkpoint_rows
);

async fn legacy_chain(db: &TestDb) {
    let app = with_rows(db).await;
    let (pool, master) = (&app.state.db().pool, app.state.master());
    // A store from before the chain was keyed.
    rechain_unkeyed(&app, 0).await;
    assert!(audit::verify(pool, master).await.is_err());
    let refused = portcullis_control_plane::server::open(&config(db, &[])).await;
    assert!(
        matches!(
            refused,
            Err(portcullis_control_plane::server::StartError::Audit(
                ChainError::Unkeyed
            ))
        ),
        "the service starts on an unkeyed chain (it must not key it by itself): {refused:?}"
    );
    let rows = audit::rekey(pool, master).await.unwrap();
    assert!(rows >= 5, "{rows}");
    assert!(audit::verify(pool, master).await.is_ok());
    let rekeyed: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'audit.rekeyed'")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(rekeyed, 1, "the rekey is itself audited");
    assert_eq!(
        audit::rekey(pool, master).await,
        Err(ChainError::AlreadyKeyed)
    );
    assert!(portcullis_control_plane::server::open(&config(db, &[]))
        .await
        .is_ok());
}
both_backends!(an_unkeyed_chain_is_keyed_only_by_the_operator, legacy_chain);

async fn legacy_refusals(db: &TestDb) {
    let app = with_rows(db).await;
    let (pool, master) = (&app.state.db().pool, app.state.master());
    // A broken old chain is not blessed.
    rechain_unkeyed(&app, 0).await;
    sqlx::query("UPDATE audit_log SET outcome = 'failure' WHERE seq = 2")
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(audit::rekey(pool, master).await, Err(ChainError::Broken(2)));
    let keyed: i64 = sqlx::query_scalar("SELECT keyed FROM audit_head WHERE id = 1")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(keyed, 0, "nothing changed");
    // A chain this version wrote (it holds a checkpoint) is never re-keyed, even with the flag
    // cleared and the rows re-chained.
    let other = TestDb::sqlite(common::test_root());
    let app = with_rows(&other).await;
    let (pool, master) = (&app.state.db().pool, app.state.master());
    audit::checkpoint_if_moved(pool, master, 0).await.unwrap();
    rechain_unkeyed(&app, 0).await;
    assert_eq!(
        audit::rekey(pool, master).await,
        Err(ChainError::AlreadyKeyed)
    );
}
both_backends!(
    a_broken_or_checkpointed_chain_is_never_rekeyed,
    legacy_refusals
);

async fn head_moved_back(db: &TestDb) {
    let app = with_rows(db).await;
    let (pool, master) = (&app.state.db().pool, app.state.master());
    let previous: (i64, String) = sqlx::query_as(
        "SELECT seq, hash FROM audit_log WHERE seq = (SELECT MAX(seq) - 2 FROM audit_log)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(previous.0)
        .bind(&previous.1)
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(
        audit::verify(pool, master).await,
        Err(ChainError::BeyondHead(previous.0)),
        "a head moved back over rows that still exist is found"
    );
}
both_backends!(a_head_moved_back_is_found, head_moved_back);

/// `control-plane/sql/postgres-audit-insert-only.sql` with its role renamed for this test (roles
/// are shared by every database of the server).
fn insert_only_sql(role: &str) -> String {
    include_str!("../sql/postgres-audit-insert-only.sql").replace("portcullis_app", role)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_role_appends_to_the_audit_log_but_cannot_change_it() {
    use sqlx::Executor as _;
    let db = TestDb::postgres(common::test_root()).await;
    let owner = with_rows(&db).await;
    let role = format!("pc_app_{}", db.url.rsplit('_').next().unwrap_or("x"));
    // One statement per line, comments left out.
    for statement in insert_only_sql(&role)
        .lines()
        .filter(|line| !line.starts_with("--") && !line.trim().is_empty())
    {
        owner.state.db().pool.execute(statement).await.unwrap();
    }
    let (base, name) = db.url.rsplit_once('/').unwrap();
    let app_url = format!(
        "{}/{name}",
        base.replacen("postgres@", &format!("{role}@"), 1)
    );
    assert_ne!(app_url, db.url, "the test must connect as the service role");
    let service = TestApp::start(config(&db, &[("DATABASE_URL", &app_url)])).await;
    let (id, secret) = service.client("svc2", "a", &["client_credentials"]).await;
    let issued = service.cc_token(&id, &secret, None).await;
    assert_eq!(issued.status, axum::http::StatusCode::OK, "{}", issued.text);
    let pool = &service.state.db().pool;
    assert!(
        audit::verify(pool, service.state.master()).await.unwrap() > 5,
        "the service role appended and reads the chain"
    );
    for statement in [
        "UPDATE audit_log SET outcome = 'failure' WHERE seq = 2",
        "DELETE FROM audit_log WHERE seq = 2",
        "TRUNCATE audit_log",
    ] {
        let refused = pool.execute(statement).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("permission denied")),
            "{statement}: {refused:?}"
        );
    }
    // It erases a user (the one column it may change), and the chain still verifies.
    let erased_user = service
        .user("erin", "correct horse battery", &[], "a")
        .await;
    let failed = service
        .login((&id, &secret), "erin", "not her password", &[])
        .await;
    assert_eq!(
        failed.status,
        axum::http::StatusCode::BAD_REQUEST,
        "{}",
        failed.text
    );
    let admin = service.admin_token().await;
    let deleted = service
        .send(
            common::Call::new(
                axum::http::Method::DELETE,
                &format!("/admin/v1/users/{erased_user}"),
            )
            .bearer(&admin),
        )
        .await;
    assert_eq!(
        deleted.status,
        axum::http::StatusCode::NO_CONTENT,
        "{}",
        deleted.text
    );
    assert!(
        audit::verify(pool, service.state.master()).await.is_ok(),
        "an erasure leaves the chain intact"
    );
    // Blanking any other row's address is found.
    pool.execute("UPDATE audit_log SET client_ip = '' WHERE client_ip <> ''")
        .await
        .unwrap();
    assert!(
        matches!(
            audit::verify(pool, service.state.master()).await,
            Err(ChainError::Broken(_))
        ),
        "an address blanked without an erasure breaks the chain"
    );
    for statement in [
        "UPDATE audit_log SET client_ip_pseudonym = '' WHERE seq = 2",
        "UPDATE audit_log SET hash = hash WHERE seq = 2",
    ] {
        let refused = pool.execute(statement).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("permission denied")),
            "only client_ip may change: {statement}: {refused:?}"
        );
    }
    // The owner still can (the role, not the table, is what stops it).
    owner
        .state
        .db()
        .pool
        .execute("UPDATE audit_log SET outcome = outcome WHERE seq = 2")
        .await
        .unwrap();
    drop(service);
    let _ = owner
        .state
        .db()
        .pool
        .execute(
            format!("REASSIGN OWNED BY {role} TO postgres; DROP OWNED BY {role}; DROP ROLE {role}")
                .as_str(),
        )
        .await;
}

/// Outside an erasure (see `admin.rs`), a blanked address breaks the chain, and so does an
/// address changed to another one or a dropped pseudonym.
async fn addresses(db: &TestDb) {
    let app = with_rows(db).await;
    let pool = &app.state.db().pool;
    let master = app.state.master();
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT seq, client_ip, client_ip_pseudonym FROM audit_log WHERE client_ip <> '' ORDER BY seq",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(
        rows.len() >= 3,
        "requests leave rows with their address: {rows:?}"
    );
    for (seq, address, pseudonym) in &rows {
        assert_eq!(
            pseudonym,
            &master.address_pseudonym(address),
            "row {seq} carries its address's pseudonym"
        );
    }
    let [(blanked, blanked_address, _), (changed, address, _), (dropped, ..)] =
        [&rows[0], &rows[1], &rows[2]]
            .map(|(seq, address, pseudonym)| (*seq, address.clone(), pseudonym.clone()));
    sqlx::query("UPDATE audit_log SET client_ip = '' WHERE seq = $1")
        .bind(blanked)
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(
        audit::verify(pool, master).await,
        Err(ChainError::Broken(blanked)),
        "an address blanked on a row of someone whose erasure the chain does not record"
    );
    sqlx::query("UPDATE audit_log SET client_ip = $1 WHERE seq = $2")
        .bind(&blanked_address)
        .bind(blanked)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET client_ip = '198.51.100.1' WHERE seq = $1")
        .bind(changed)
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(
        audit::verify(pool, master).await,
        Err(ChainError::Broken(changed)),
        "another address than the one the pseudonym was made from"
    );
    sqlx::query("UPDATE audit_log SET client_ip = $1 WHERE seq = $2")
        .bind(&address)
        .bind(changed)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET client_ip_pseudonym = '' WHERE seq = $1")
        .bind(dropped)
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(
        audit::verify(pool, master).await,
        Err(ChainError::Broken(dropped)),
        "a dropped pseudonym changes what the chain covers"
    );
}
both_backends!(
    addresses_blanked_or_changed_outside_an_erasure_break_the_chain,
    addresses
);

/// Actions of the audit rows with `action` prefix `prefix`, oldest first.
async fn actions(app: &TestApp, prefix: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE $1 ORDER BY seq")
        .bind(format!("{prefix}%"))
        .fetch_all(&app.state.db().pool)
        .await
        .unwrap()
}

async fn key_changes(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    assert_eq!(
        actions(&app, "key.").await,
        vec!["key.created"],
        "the keys made at first start are audited"
    );
    // Nothing to retire: nothing audited.
    assert_eq!(
        portcullis_control_plane::server::retire_expired_keys(&app.state)
            .await
            .unwrap(),
        0
    );
    assert_eq!(actions(&app, "key.").await, vec!["key.created"]);
    sqlx::query(
        "UPDATE signing_keys SET state = 'retiring', retire_after = 1 WHERE state = 'next'",
    )
    .execute(&app.state.db().pool)
    .await
    .unwrap();
    assert_eq!(
        portcullis_control_plane::server::retire_expired_keys(&app.state)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        actions(&app, "key.").await,
        vec!["key.created", "key.retired"],
        "a scheduled retirement is audited"
    );
    assert!(audit::verify(&app.state.db().pool, app.state.master())
        .await
        .is_ok());
}
both_backends!(
    key_creation_at_start_and_scheduled_retirement_are_audited,
    key_changes
);
