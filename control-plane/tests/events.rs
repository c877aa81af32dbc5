//! Redis in production: security events reach a real Redis stream from the audit log, survive a
//! Redis outage and are never duplicated by two relays; login throttling is shared by replicas,
//! falls back to local counters when Redis is gone and shares again when it returns; a Redis
//! with a password is reached with the URL's credentials.

mod common;

use axum::http::StatusCode;
use common::{config, TestApp, TestDb};
use portcullis_control_plane::audit::relay::{relay_once, STREAM};
use portcullis_control_plane::infra::redis::Redis;
use redis::AsyncCommands as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A private redis-server (the machine's own on 6379 is shared by other tests).
struct RedisServer {
    port: u16,
    child: Child,
}

impl RedisServer {
    fn start_on(port: u16) -> Self {
        Self::start_with(port, &[])
    }

    fn start_with(port: u16, extra: &[&str]) -> Self {
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
            .args(extra)
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
    let mut redis = Redis::open(url, None).unwrap().connection();
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(STREAM)
        .arg("-")
        .arg("+")
        .query_async(&mut redis)
        .await
        .unwrap();
    entries
        .into_iter()
        .filter_map(|(id, fields)| {
            let kind = fields.into_iter().find(|(name, _)| name == "type")?.1;
            Some((id, kind))
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
    let relay = portcullis_control_plane::audit::relay::spawn_relay(
        app.state.db().pool.clone(),
        Redis::open(&url, None).unwrap(),
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
    let db = TestDb::postgres(common::test_root()).await;
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
        let mut redis = Redis::open(&url_a, None).unwrap().connection();
        relay_once(&pool_a, &mut redis).await.unwrap()
    });
    let b = tokio::spawn(async move {
        let mut redis = Redis::open(&url_b, None).unwrap().connection();
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

/// One password-grant attempt for `kim` from `ip`; its status.
async fn kim_signs_in(
    app: &TestApp,
    client: &(String, String),
    ip: &str,
    password: &str,
) -> StatusCode {
    app.send(
        common::Call::new(axum::http::Method::POST, "/oauth2/token")
            .basic(&client.0, &client.1)
            .client_ip(ip)
            .form(&[
                ("grant_type", "password"),
                ("username", "kim"),
                ("password", password),
            ]),
    )
    .await
    .status
}

async fn shared_throttle(db: &TestDb) {
    let port = free_port();
    let redis = RedisServer::start_on(port);
    let url = redis.url();
    let a = TestApp::start(config(db, &[("REDIS_URL", &url)])).await;
    let b = TestApp::start(config(db, &[("REDIS_URL", &url)])).await;
    let client = a.client("web", "a", &["password"]).await;
    a.user("kim", "correct horse battery", &[], "a").await;
    for _ in 0..5 {
        assert_eq!(
            kim_signs_in(&a, &client, "10.7.7.7", "guess guess").await,
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        kim_signs_in(&b, &client, "10.7.7.7", "correct horse battery").await,
        StatusCode::TOO_MANY_REQUESTS,
        "replica B, sharing Redis, throttles the same (account, address) pair"
    );
    drop(redis);
    assert_eq!(
        kim_signs_in(&a, &client, "10.7.7.7", "correct horse battery").await,
        StatusCode::TOO_MANY_REQUESTS,
        "with Redis gone, A still throttles from its own counters (fallback, not fail-open)"
    );
    // Redis returns (empty): the replicas reconnect by themselves and share again.
    let _redis = RedisServer::start_on(port);
    until("replica A to reach Redis again", || async {
        Redis::open(&url, None)
            .unwrap()
            .connection()
            .get_del::<_, Option<String>>("nothing")
            .await
            .is_ok()
    })
    .await;
    for _ in 0..5 {
        assert_eq!(
            kim_signs_in(&a, &client, "10.7.7.8", "guess guess").await,
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        kim_signs_in(&b, &client, "10.7.7.8", "correct horse battery").await,
        StatusCode::TOO_MANY_REQUESTS,
        "after Redis came back, B sees A's new failures"
    );
}
both_backends!(login_throttle_is_shared_through_redis, shared_throttle);

/// Two replicas on one Postgres with no database polling at all: a change committed on A wakes
/// B through Redis pub/sub, and B then serves A's bundle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_replica_wakes_the_other_through_redis() {
    let db = TestDb::postgres(common::test_root()).await;
    let redis = RedisServer::start_on(free_port());
    let url = redis.url();
    let a = TestApp::start(config(&db, &[("REDIS_URL", &url)])).await;
    let b = TestApp::start(config(&db, &[("REDIS_URL", &url)])).await;
    let listener = portcullis_control_plane::bundle::fanout::spawn_listener(
        b.state.clone(),
        Redis::open(&url, None).unwrap(),
    );
    // The listener is subscribed once a publish reaches a subscriber.
    until("the listener to subscribe", || async {
        let mut connection = Redis::open(&url, None).unwrap().connection();
        let subscribers: (String, i64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(portcullis_control_plane::bundle::fanout::CHANNEL)
            .query_async(&mut connection)
            .await
            .unwrap();
        subscribers.1 == 1
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

async fn password_protected(db: &TestDb) {
    let port = free_port();
    let _redis = RedisServer::start_with(port, &["--requirepass", "s3cret-redis-pass"]);
    let url = format!("redis://:s3cret-redis-pass@127.0.0.1:{port}");
    let wrong = format!("redis://:not-the-password@127.0.0.1:{port}");
    let a = TestApp::start(config(db, &[("REDIS_URL", &url)])).await;
    let b = TestApp::start(config(db, &[("REDIS_URL", &url)])).await;
    let stranger = TestApp::start(config(db, &[("REDIS_URL", &wrong)])).await;
    let relay = portcullis_control_plane::audit::relay::spawn_relay(
        a.state.db().pool.clone(),
        Redis::open(&url, None).unwrap(),
        Duration::from_millis(50),
    );
    let client = a.client("web", "a", &["password"]).await;
    a.user("kim", "correct horse battery", &[], "a").await;
    for _ in 0..5 {
        assert_eq!(
            kim_signs_in(&a, &client, "10.8.8.8", "guess guess").await,
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        kim_signs_in(&b, &client, "10.8.8.8", "correct horse battery").await,
        StatusCode::TOO_MANY_REQUESTS,
        "B authenticated to Redis with the URL's password and shares A's counters"
    );
    assert_eq!(
        kim_signs_in(&stranger, &client, "10.8.8.8", "correct horse battery").await,
        StatusCode::OK,
        "a replica with the wrong password cannot read the counters (it decides alone)"
    );
    until("login events on the protected stream", || async {
        stream(&url)
            .await
            .iter()
            .any(|(_, kind)| kind == "login.failed")
    })
    .await;
    relay.abort();
}
both_backends!(
    a_redis_with_a_password_is_reached_with_the_urls_credentials,
    password_protected
);

async fn shared_bucket(db: &TestDb) {
    let redis = RedisServer::start_on(free_port());
    let url = redis.url();
    let a = TestApp::start(config(db, &[("REDIS_URL", &url)])).await;
    let b = TestApp::start(config(db, &[("REDIS_URL", &url)])).await;
    let client = a.client("web", "a", &["password"]).await;
    a.user("kim", "correct horse battery", &[], "a").await;
    // A botnet spreads its guesses over both replicas, one address each.
    let mut evaluated = 0;
    for i in 0..40 {
        let app = if i % 2 == 0 { &a } else { &b };
        if kim_signs_in(app, &client, &format!("10.9.0.{i}"), "guess guess").await
            == StatusCode::BAD_REQUEST
        {
            evaluated += 1;
        }
    }
    assert_eq!(
        evaluated, 10,
        "the replicas share one bucket per account (10 at once), not one each"
    );
}
both_backends!(the_account_bucket_is_shared_through_redis, shared_bucket);

async fn write_refused(db: &TestDb) {
    let port = free_port();
    let _redis = RedisServer::start_on(port);
    let url = format!("redis://127.0.0.1:{port}");
    let a = TestApp::start(config(db, &[("REDIS_URL", &url)])).await;
    let client = a.client("web", "a", &["password"]).await;
    a.user("kim", "correct horse battery", &[], "a").await;
    // Redis keeps answering reads but refuses every write (as a read-only replica after a
    // failover, or one out of memory, would).
    let refused: Result<String, _> = redis::cmd("CONFIG")
        .arg("SET")
        .arg("min-replicas-to-write")
        .arg("1")
        .query_async(&mut Redis::open(&url, None).unwrap().connection())
        .await;
    refused.unwrap();
    for _ in 0..5 {
        assert_eq!(
            kim_signs_in(&a, &client, "10.7.7.9", "guess guess").await,
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        kim_signs_in(&a, &client, "10.7.7.9", "guess guess").await,
        StatusCode::TOO_MANY_REQUESTS,
        "the failures Redis could not store still count (the stricter view decides)"
    );
}
both_backends!(
    a_redis_that_refuses_writes_does_not_open_the_throttle,
    write_refused
);
