//! Redis in production: security events reach a real Redis stream from the audit log, survive a
//! Redis outage and are never duplicated by two relays; login throttling is shared by replicas
//! and falls back to local counters when Redis is gone.

mod common;

use common::{config, TestApp, TestDb};
use portcullis_control_plane::events::{relay_once, STREAM};
use portcullis_control_plane::redis::{Connection, Reply};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A private redis-server (the machine's own on 6379 is shared by other tests).
struct RedisServer {
    port: u16,
    child: Child,
}

impl RedisServer {
    fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is required for these tests");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        RedisServer { port, child }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `(id, type)` of every stream entry.
async fn stream(url: &str) -> Vec<(String, String)> {
    let mut redis = Connection::open(url).await.unwrap();
    let Reply::Array(Some(entries)) = redis.command(&["XRANGE", STREAM, "-", "+"]).await.unwrap()
    else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter_map(|entry| {
            let Reply::Array(Some(parts)) = entry else {
                return None;
            };
            let (Reply::Bulk(Some(id)), Reply::Array(Some(fields))) = (&parts[0], &parts[1]) else {
                return None;
            };
            let kind = fields
                .iter()
                .skip(1)
                .step_by(2)
                .next()
                .and_then(|v| match v {
                    Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
                    _ => None,
                })?;
            Some((String::from_utf8_lossy(id).into_owned(), kind))
        })
        .collect()
}

async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn delivery_and_outage(db: &TestDb) {
    let port = free_port();
    let redis = RedisServer::start_on(port);
    let url = redis.url();
    let app = TestApp::start(config(db, &[("REDIS_URL", &url)])).await;
    let relay = portcullis_control_plane::events::spawn_relay(
        app.state.db().pool.clone(),
        url.clone(),
        Duration::from_millis(50),
    );
    let (id, secret) = app.client("web", "a", &["password"]).await;
    app.user("hank", "correct horse battery", &[], "a").await;
    app.login((&id, &secret), "hank", "correct horse battery", &[])
        .await;
    app.login((&id, &secret), "hank", "wrong password!", &[])
        .await;
    until("login events", || async {
        let kinds: Vec<String> = stream(&url).await.into_iter().map(|(_, k)| k).collect();
        kinds.contains(&"login.succeeded".to_owned()) && kinds.contains(&"login.failed".to_owned())
    })
    .await;
    // Non-event audit rows (token.issued by client_credentials) are not published.
    assert!(stream(&url).await.iter().all(|(_, k)| k != "token.issued"));

    // Redis goes away; events keep happening and wait in the audit log.
    drop(redis);
    app.login((&id, &secret), "hank", "wrong again!!", &[])
        .await;
    app.login((&id, &secret), "hank", "correct horse battery", &[])
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Redis is back (empty: it keeps nothing on disk); the backlog arrives in order.
    let _redis = RedisServer::start_on(port);
    until("the backlog", || async { stream(&url).await.len() >= 2 }).await;
    let entries = stream(&url).await;
    let kinds: Vec<&str> = entries.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(
        kinds,
        vec!["login.failed", "login.succeeded"],
        "{entries:?}"
    );
    relay.abort();
}
both_backends!(events_survive_a_redis_outage, delivery_and_outage);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_never_duplicate_an_event() {
    let db = TestDb::postgres().await;
    let redis = RedisServer::start_on(free_port());
    let app = TestApp::start(config(&db, &[])).await;
    let (id, secret) = app.client("web", "a", &["password"]).await;
    app.user("iris", "correct horse battery", &[], "a").await;
    for _ in 0..5 {
        app.login((&id, &secret), "iris", "correct horse battery", &[])
            .await;
    }
    let pool = app.state.db().pool.clone();
    let (url_a, url_b) = (redis.url(), redis.url());
    let (pool_a, pool_b) = (pool.clone(), pool.clone());
    let a = tokio::spawn(async move {
        let mut redis = Connection::open(&url_a).await.unwrap();
        relay_once(&pool_a, &mut redis).await.unwrap()
    });
    let b = tokio::spawn(async move {
        let mut redis = Connection::open(&url_b).await.unwrap();
        relay_once(&pool_b, &mut redis).await.unwrap()
    });
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let entries = stream(&redis.url()).await;
    // The bootstrap policy.published and five logins, each exactly once.
    let logins = entries
        .iter()
        .filter(|(_, k)| k == "login.succeeded")
        .count();
    assert_eq!(logins, 5, "{entries:?}");
    assert_eq!(entries.len(), 6, "{entries:?}");
    assert_eq!(a + b, 6, "each event added by exactly one relay");
    let mut ids: Vec<&String> = entries.iter().map(|(id, _)| id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 6);
}

async fn shared_throttle(db: &TestDb) {
    let redis = RedisServer::start_on(free_port());
    let url = redis.url();
    let a = TestApp::start(config(db, &[("REDIS_URL", &url)])).await;
    let b = TestApp::start(config(db, &[("REDIS_URL", &url)])).await;
    let (id, secret) = a.client("web", "a", &["password"]).await;
    a.user("kim", "correct horse battery", &[], "a").await;
    let attempt = |app: &TestApp, password: &'static str| {
        let (app, id, secret) = (app.clone(), id.clone(), secret.clone());
        async move {
            app.send(
                common::Call::new(axum::http::Method::POST, "/oauth2/token")
                    .basic(&id, &secret)
                    .client_ip("10.7.7.7")
                    .form(&[
                        ("grant_type", "password"),
                        ("username", "kim"),
                        ("password", password),
                    ]),
            )
            .await
            .status
        }
    };
    for _ in 0..5 {
        assert_eq!(
            attempt(&a, "guess guess").await,
            axum::http::StatusCode::BAD_REQUEST
        );
    }
    // Replica B, sharing Redis, throttles the same (account, address) pair.
    assert_eq!(
        attempt(&b, "correct horse battery").await,
        axum::http::StatusCode::TOO_MANY_REQUESTS
    );
    // Redis goes away: A still throttles from its own counters (fallback, not fail-open).
    drop(redis);
    assert_eq!(
        attempt(&a, "correct horse battery").await,
        axum::http::StatusCode::TOO_MANY_REQUESTS
    );
}
both_backends!(login_throttle_is_shared_through_redis, shared_throttle);

/// Two replicas on one Postgres with no database polling at all: a change committed on A wakes
/// B through Redis pub/sub, and B then serves A's bundle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_replica_wakes_the_other_through_redis() {
    let db = TestDb::postgres().await;
    let redis = RedisServer::start_on(free_port());
    let url = redis.url();
    let a = TestApp::start(config(&db, &[("REDIS_URL", &url)])).await;
    let b = TestApp::start(config(&db, &[("REDIS_URL", &url)])).await;
    let listener = portcullis_control_plane::fanout::spawn_listener(b.state.clone(), url.clone());
    // The listener is subscribed once a publish reaches a subscriber.
    until("the listener to subscribe", || async {
        let mut connection = Connection::open(&url).await.unwrap();
        connection
            .command(&[
                "PUBSUB",
                "NUMSUB",
                portcullis_control_plane::fanout::CHANNEL,
            ])
            .await
            .unwrap()
            == Reply::Array(Some(vec![
                Reply::Bulk(Some(
                    portcullis_control_plane::fanout::CHANNEL
                        .as_bytes()
                        .to_vec(),
                )),
                Reply::Integer(1),
            ]))
    })
    .await;
    let mut woken = b.state.subscribe();
    let before = b.state.published().version;
    let (id, secret) = a.client("svc", "a", &["client_credentials"]).await;
    let token = a.cc_token(&id, &secret, None).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    a.send(
        common::Call::new(axum::http::Method::POST, "/oauth2/revoke")
            .basic(&id, &secret)
            .form(&[("token", &token)]),
    )
    .await;
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(2), woken.changed())
        .await
        .expect("replica B was not woken through Redis")
        .unwrap();
    eprintln!(
        "replica B woken {:?} after the revocation",
        started.elapsed()
    );
    assert!(b.state.published().version > before);
    assert_eq!(b.state.published().version, a.state.published().version);
    listener.abort();
}
