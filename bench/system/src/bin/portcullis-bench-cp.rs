//! `cargo xtask bench control-plane [--seconds N] [--sqlite] [--smoke]`: token endpoint
//! throughput. `--smoke`: one second per measurement.
//!
//! Starts the control plane (PostgreSQL by default, audit on — every token is an audit row) and
//! drives it over keep-alive HTTP/1.1 from this process:
//! 1. the raw argon2id rate of this machine through the service's own hasher (the physical
//!    limit of the password grant);
//! 2. password logins/s under a login flood, and `/healthz` latency measured during that flood
//!    (the event loop must not stall while argon2 runs); then the same through the hosted login
//!    page (`POST /oauth2/login` as a browser submits it, answered 303 with a code);
//! 3. `client_credentials` tokens/s and latency percentiles at saturation, then
//!    `authorization_code` exchanges/s (no password hashing: the codes are issued beforehand,
//!    as the login page would, to distinct users so that no session cap is reached), without and
//!    with `openid` (an RS256 ID token more per exchange);
//! 4. the edge bundle with no revocations and with 1,000 (revoked access tokens): its size, the
//!    latency of a full fetch and of an `If-None-Match` revalidation, and the time to parse and
//!    validate it into a snapshot (natively; what every Envoy does once per change).
//!
//! Prints a Markdown table for BENCHMARKS.md.

use base64::Engine as _;
use portcullis_tests::control_plane::{postgres_db, sqlite_url, ControlPlane};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A keep-alive HTTP/1.1 connection sending one fixed request over and over.
struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
    async fn open(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        let _ = stream.set_nodelay(true);
        Connection {
            stream,
            buffer: Vec::with_capacity(8192),
        }
    }

    /// Sends `raw` and returns the status code.
    async fn send(&mut self, raw: &[u8]) -> u16 {
        if self.stream.write_all(raw).await.is_err() {
            return 0;
        }
        self.buffer.clear();
        let mut chunk = [0u8; 8192];
        loop {
            let Ok(n) = self.stream.read(&mut chunk).await else {
                return 0;
            };
            if n == 0 {
                return 0;
            }
            self.buffer.extend_from_slice(&chunk[..n]);
            if let Some(status) = complete(&self.buffer) {
                return status;
            }
        }
    }
}

fn complete(raw: &[u8]) -> Option<u16> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    if raw.len() - split - 4 < length {
        return None;
    }
    head.get(9..12).and_then(|s| s.parse().ok())
}

fn post_form(path: &str, basic: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nhost: bench\r\nauthorization: Basic {basic}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

struct Run {
    ok: u64,
    failed: u64,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Run {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index]
    }
}

/// One connection's requests: the statuses counted (`expected` is success; a dropped connection
/// is reopened) and each latency.
struct Tally {
    port: u16,
    expected: u16,
    connection: Connection,
    ok: u64,
    failed: u64,
    latencies: Vec<Duration>,
}

impl Tally {
    async fn open(port: u16, expected: u16) -> Self {
        Tally {
            port,
            expected,
            connection: Connection::open(port).await,
            ok: 0,
            failed: 0,
            latencies: Vec::new(),
        }
    }

    async fn send(&mut self, raw: &[u8]) {
        let sent = Instant::now();
        let status = self.connection.send(raw).await;
        self.latencies.push(sent.elapsed());
        if status == self.expected {
            self.ok += 1;
        } else {
            self.failed += 1;
            if status == 0 {
                self.connection = Connection::open(self.port).await;
            }
        }
    }

    fn counts(self) -> (u64, u64, Vec<Duration>) {
        (self.ok, self.failed, self.latencies)
    }
}

/// The connections' tallies as one run that started at `started`.
async fn gather(
    tasks: Vec<tokio::task::JoinHandle<(u64, u64, Vec<Duration>)>>,
    started: Instant,
) -> Run {
    let mut run = Run {
        ok: 0,
        failed: 0,
        latencies: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        if let Ok((ok, failed, latencies)) = task.await {
            run.ok += ok;
            run.failed += failed;
            run.latencies.extend(latencies);
        }
    }
    run.elapsed = started.elapsed();
    run.latencies.sort();
    run
}

/// `connections` keep-alive connections sending `raw` for `seconds`.
async fn drive(port: u16, raw: Arc<Vec<u8>>, connections: usize, seconds: u64) -> Run {
    drive_expecting(port, raw, connections, seconds, 200).await
}

/// [`drive`], where `expected` is the status of success.
async fn drive_expecting(
    port: u16,
    raw: Arc<Vec<u8>>,
    connections: usize,
    seconds: u64,
    expected: u16,
) -> Run {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let raw = Arc::clone(&raw);
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::open(port, expected).await;
            while Instant::now() < deadline {
                tally.send(&raw).await;
            }
            tally.counts()
        }));
    }
    gather(tasks, started).await
}

/// `connections` keep-alive connections that together send each of `requests` once.
async fn drive_each(port: u16, requests: Vec<Vec<u8>>, connections: usize) -> Run {
    let started = Instant::now();
    let per = requests.len().div_ceil(connections.max(1)).max(1);
    let mut tasks = Vec::new();
    for chunk in requests.chunks(per) {
        let chunk = chunk.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::open(port, 200).await;
            for raw in &chunk {
                tally.send(raw).await;
            }
            tally.counts()
        }));
    }
    gather(tasks, started).await
}

// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const CALLBACK: &str = "https://bench.example/callback";

/// `count` codes for `client_id`, issued in the store as the login page issues them (to
/// `count / 8` new users, each below the session cap), as token requests of `basic`;
/// `openid_scope` asks for an ID token.
async fn code_exchanges(
    url: &str,
    client_id: &str,
    basic: &str,
    count: usize,
    openid_scope: &str,
) -> Vec<Vec<u8>> {
    use portcullis_control_plane::identity::users::{self, NewUser};
    use portcullis_control_plane::oauth::codes::{self, Issued};
    let db = portcullis_control_plane::infra::db::connect(url)
        .await
        .unwrap_or_else(|e| panic!("db: {e}"));
    let master = portcullis_control_plane::keys::secrets::MasterKey::from_base64(
        portcullis_tests::control_plane::MASTER_KEY,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // One real hash for every user: the exchange never looks at it.
    let hasher = portcullis_control_plane::identity::passwords::Hasher::new(1)
        .unwrap_or_else(|e| panic!("{e}"));
    let hash = hasher
        .hash("correct horse battery")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut tx = db.pool.begin().await.unwrap_or_else(|e| panic!("{e}"));
    let mut requests = Vec::with_capacity(count);
    let users = count.div_ceil(8);
    let tag = portcullis_tests::free_port();
    for u in 0..users {
        let user = users::create(
            &mut tx,
            &NewUser {
                username: format!("code-{tag}-{u}"),
                password_hash: hash.clone(),
                scopes: "api:items:read".into(),
                ..NewUser::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..8 {
            if requests.len() == count {
                break;
            }
            let code = codes::issue(
                &mut tx,
                &master,
                &Issued {
                    client_id: client_id.to_owned(),
                    user_id: user.user_id.clone(),
                    redirect_uri: CALLBACK.into(),
                    code_challenge: CHALLENGE.into(),
                    scope: "api:items:read".into(),
                    audience: "portcullis-edge".into(),
                    nonce: None,
                    openid_scope: openid_scope.into(),
                    amr: "pwd".into(),
                    auth_time: portcullis_control_plane::now(),
                    browser_session_id: None,
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
            requests.push(post_form(
                "/oauth2/token",
                basic,
                &format!(
                    "grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Fbench.example%2Fcallback&code_verifier={VERIFIER}"
                ),
            ));
        }
    }
    tx.commit().await.unwrap_or_else(|e| panic!("{e}"));
    requests
}

/// argon2id verifications per second with every core busy, through the service's hasher.
async fn argon2_rate(seconds: u64) -> f64 {
    let hasher = portcullis_control_plane::identity::passwords::Hasher::new(
        std::thread::available_parallelism().map_or(2, |n| n.get()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for _ in 0..4 {
        let hasher = hasher.clone();
        workers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let _ = hasher.verify(None, "correct horse battery").await;
                n += 1;
            }
            n
        }));
    }
    let mut hashes = 0;
    for worker in workers {
        hashes += worker.await.unwrap_or(0);
    }
    hashes as f64 / started.elapsed().as_secs_f64()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args
        .iter()
        .skip_while(|a| *a != "--seconds")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(if portcullis_tests::smoke() { 1 } else { 5 });
    let sqlite = args.iter().any(|a| a == "--sqlite");
    let postgres = if sqlite {
        None
    } else {
        Some(postgres_db().await)
    };
    let url = match &postgres {
        Some(db) => db.url.clone(),
        None => sqlite_url("bench"),
    };
    let plane = ControlPlane::start_with(
        portcullis_tests::free_port(),
        &url,
        &[("PORTCULLIS_LOG", "warn")],
    );
    let port = plane.port;
    let service = plane
        .create_client("bench-service", "api:items:read", &["client_credentials"])
        .await;
    let web = plane
        .create_client("bench-web", "api:items:read", &["password"])
        .await;
    let admin = plane
        .create_client(
            "bench-admin",
            "admin:users admin:clients api:items:read",
            &["client_credentials"],
        )
        .await;
    let admin_token = plane.admin_token(&admin).await;
    let browser = plane
        .admin(
            "POST",
            "/admin/v1/clients",
            &admin_token,
            Some(
                &serde_json::json!({"name": "bench-browser", "scopes": "api:items:read",
                "grant_types": ["authorization_code"], "redirect_uris": [CALLBACK]}),
            ),
        )
        .await;
    assert_eq!(
        browser.status,
        201,
        "{}",
        String::from_utf8_lossy(&browser.body)
    );
    let browser = browser.json();
    let browser = (
        browser["client_id"].as_str().unwrap_or_default().to_owned(),
        browser["client_secret"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    );
    for i in 0..64 {
        let reply = plane
            .admin(
                "POST",
                "/admin/v1/users",
                &admin_token,
                Some(&serde_json::json!({"username": format!("user{i}"), "password": "correct horse battery", "scopes": "api:items:read"})),
            )
            .await;
        assert_eq!(reply.status, 201);
    }
    let basic = |c: &(String, String)| {
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.0, c.1))
    };

    // 1. The raw argon2id rate through the service's hasher, all cores (measured again after
    // the flood; the higher of the two is the bound, so noise cannot flatter the ratio).
    let first_bound = argon2_rate(seconds).await;
    // 2. A login flood, with /healthz sampled during it: the password grant, then the login page.
    let login_bodies: Vec<Arc<Vec<u8>>> = (0..16)
        .map(|i| {
            Arc::new(post_form(
                "/oauth2/token",
                &basic(&web),
                &format!("grant_type=password&username=user{i}&password=correct+horse+battery"),
            ))
        })
        .collect();
    let (logins, health) = flood(port, login_bodies, 200, seconds).await;
    let mut page_bodies = Vec::new();
    for i in 16..32 {
        page_bodies.push(Arc::new(
            login_page_post(port, &browser.0, &format!("user{i}")).await,
        ));
    }
    let (page_logins, page_health) = flood(port, page_bodies, 303, seconds).await;
    let argon2_rate = first_bound.max(argon2_rate(seconds).await);

    // 3. client_credentials at saturation (last: its tens of thousands of audit rows would leave
    // the database busy with background work during the login phases).
    let raw = Arc::new(post_form(
        "/oauth2/token",
        &basic(&service),
        "grant_type=client_credentials",
    ));
    drive(port, Arc::clone(&raw), 16, 1).await;
    let cc = drive(port, raw, 32, seconds).await;

    // Code exchanges: as many codes as about `seconds` at 3,000/s (2,000/s is the goal).
    let count = if portcullis_tests::smoke() {
        400
    } else {
        3_000 * seconds as usize
    };
    let plain_codes = code_exchanges(&url, &browser.0, &basic(&browser), count, "").await;
    let plain = drive_each(port, plain_codes, 32).await;
    let openid_codes = code_exchanges(&url, &browser.0, &basic(&browser), count, "openid").await;
    let openid = drive_each(port, openid_codes, 32).await;

    // 4. The bundle, empty revocation list and then 1,000 (smoke: 100) revoked access tokens.
    let empty = bundle_cost(port).await;
    // Revocation is rate limited per client (a burst of 100), so ten clients share them.
    let revokers = if portcullis_tests::smoke() { 1 } else { 10 };
    for i in 0..revokers {
        let revoker = plane
            .create_client(
                &format!("revoker-{i}"),
                "api:items:read",
                &["client_credentials"],
            )
            .await;
        for _ in 0..100 {
            let token = plane.client_token(&revoker, None).await;
            let reply = plane.revoke(&revoker, &token).await;
            assert_eq!(reply.status, 200, "revocation refused");
        }
    }
    let full = bundle_cost(port).await;

    let backend = if sqlite { "SQLite" } else { "PostgreSQL" };
    println!("\n| measurement ({backend}, audit on, {seconds} s each) | result |");
    println!("|---|---|");
    println!(
        "| client_credentials tokens/s (32 connections) | {:.0} ({} failed), p50 {}, p99 {} |",
        cc.rate(),
        cc.failed,
        ms(cc.percentile(0.5)),
        ms(cc.percentile(0.99))
    );
    for (label, run) in [("", &plain), (" with openid (+ RS256 ID token)", &openid)] {
        println!(
            "| authorization_code exchanges/s{label} (32 connections, {} codes) | {:.0} ({} failed), p50 {}, p99 {} |",
            run.ok + run.failed,
            run.rate(),
            run.failed,
            ms(run.percentile(0.5)),
            ms(run.percentile(0.99))
        );
    }
    println!("| raw argon2id verifications/s (m=19456, t=2, p=1, all cores) | {argon2_rate:.1} |");
    println!(
        "| password logins/s (16 connections) | {:.1} = {:.0}% of the argon2id bound ({} failed), p99 {} |",
        logins.rate(),
        100.0 * logins.rate() / argon2_rate,
        logins.failed,
        ms(logins.percentile(0.99))
    );
    println!(
        "| /healthz during the login flood | p50 {}, p99 {}, max {} ({} samples) |",
        ms(health.percentile(0.5)),
        ms(health.percentile(0.99)),
        ms(health.percentile(1.0)),
        health.latencies.len()
    );
    println!(
        "| login page sign-ins/s (16 connections, POST /oauth2/login → 303) | {:.1} = {:.0}% of the argon2id bound ({} failed), p99 {}; /healthz p99 {}, max {} |",
        page_logins.rate(),
        100.0 * page_logins.rate() / argon2_rate,
        page_logins.failed,
        ms(page_logins.percentile(0.99)),
        ms(page_health.percentile(0.99)),
        ms(page_health.percentile(1.0))
    );
    let full_label = format!("{} revocations", revokers * 100);
    for (label, cost) in [("no revocations", &empty), (full_label.as_str(), &full)] {
        println!(
            "| bundle, {label} ({} entries) | {:.1} KiB; full fetch p50 {}, p99 {}; 304 revalidation p50 {}; parse + validate at the edge (native) {} |",
            cost.revoked,
            cost.bytes as f64 / 1024.0,
            ms(cost.fetch.percentile(0.5)),
            ms(cost.fetch.percentile(0.99)),
            ms(cost.revalidate.percentile(0.5)),
            ms(cost.parse)
        );
    }
    drop(plane);
    drop(postgres);
}

/// A sign-in on the login page as a browser submits it for `username` (password
/// `correct horse battery`): the login cookie and the form's hidden fields from
/// `GET /oauth2/authorize` of `client_id`, then the `POST /oauth2/login`, answered 303 with a
/// code each time it is sent.
async fn login_page_post(port: u16, client_id: &str, username: &str) -> Vec<u8> {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", CALLBACK),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("state", "bench"),
        ])
        .finish();
    let page = portcullis_tests::http::get(port, &format!("/oauth2/authorize?{query}"), None).await;
    assert_eq!(page.status, 200, "{}", String::from_utf8_lossy(&page.body));
    let cookie = page
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("the login page sets its cookie"))
        .to_owned();
    let mut form =
        portcullis_test_support::html::hidden_fields(&String::from_utf8_lossy(&page.body));
    form.push(("username".into(), username.into()));
    form.push(("password".into(), "correct horse battery".into()));
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    format!(
        "POST /oauth2/login HTTP/1.1\r\nhost: bench\r\ncookie: {cookie}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One connection per body sending it for `seconds` (`expected` is success), with `/healthz`
/// sampled every 10 ms meanwhile: the logins and the health latencies.
async fn flood(port: u16, bodies: Vec<Arc<Vec<u8>>>, expected: u16, seconds: u64) -> (Run, Run) {
    let health = tokio::spawn(async move {
        let mut connection = Connection::open(port).await;
        let raw = b"GET /healthz HTTP/1.1\r\nhost: bench\r\n\r\n".to_vec();
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut latencies = Vec::new();
        while Instant::now() < deadline {
            let sent = Instant::now();
            connection.send(&raw).await;
            latencies.push(sent.elapsed());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        latencies
    });
    let mut floods = Vec::new();
    for body in bodies {
        floods.push(tokio::spawn(drive_expecting(
            port, body, 1, seconds, expected,
        )));
    }
    let mut logins = Run {
        ok: 0,
        failed: 0,
        latencies: Vec::new(),
        elapsed: Duration::from_secs(seconds),
    };
    for flood in floods {
        if let Ok(run) = flood.await {
            logins.ok += run.ok;
            logins.failed += run.failed;
            logins.latencies.extend(run.latencies);
        }
    }
    logins.latencies.sort();
    let mut health = Run {
        ok: 0,
        failed: 0,
        latencies: health.await.unwrap_or_default(),
        elapsed: Duration::ZERO,
    };
    health.latencies.sort();
    (logins, health)
}

struct BundleCost {
    bytes: usize,
    revoked: usize,
    fetch: Run,
    revalidate: Run,
    parse: Duration,
}

/// Sends `raw` `times` times, one after the other on `connection`; `ok` counts answers with
/// status `expected`.
async fn one_by_one(connection: &mut Connection, raw: &[u8], times: usize, expected: u16) -> Run {
    let started = Instant::now();
    let mut run = Run {
        ok: 0,
        failed: 0,
        latencies: Vec::with_capacity(times),
        elapsed: Duration::ZERO,
    };
    for _ in 0..times {
        let sent = Instant::now();
        let status = connection.send(raw).await;
        run.latencies.push(sent.elapsed());
        if status == expected {
            run.ok += 1;
        } else {
            run.failed += 1;
        }
    }
    run.elapsed = started.elapsed();
    run.latencies.sort();
    run
}

/// Fetches the bundle 200 times in full and 200 times with `If-None-Match`, then parses it.
async fn bundle_cost(port: u16) -> BundleCost {
    let credential = portcullis_tests::control_plane::BUNDLE_CREDENTIAL;
    let fetch_raw = format!(
        "GET /plugin/v1/bundle HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer {credential}\r\n\r\n"
    );
    let mut connection = Connection::open(port).await;
    let fetch = one_by_one(&mut connection, fetch_raw.as_bytes(), 200, 200).await;
    let raw = connection.buffer.clone();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no bundle response"));
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("etag:"))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default();
    let body = raw[split + 4..].to_vec();
    let revalidate_raw = format!(
        "GET /plugin/v1/bundle HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer {credential}\r\nif-none-match: {etag}\r\n\r\n"
    );
    let revalidate = one_by_one(&mut connection, revalidate_raw.as_bytes(), 200, 304).await;
    assert_eq!(revalidate.ok, 200, "If-None-Match must answer 304");
    let started = Instant::now();
    let rounds = 20;
    for _ in 0..rounds {
        portcullis_authz::bundle::Snapshot::from_json(&body)
            .unwrap_or_else(|e| panic!("bundle does not parse: {e}"));
    }
    let parse = started.elapsed() / rounds;
    let revoked = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|b| b["revoked"].as_array().map(Vec::len))
        .unwrap_or(0);
    BundleCost {
        bytes: body.len(),
        revoked,
        fetch,
        revalidate,
        parse,
    }
}
