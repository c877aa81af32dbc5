//! Redis over TLS (`rediss://`): a real redis-server with a certificate from a throw-away CA.
//! With that CA in `PORTCULLIS_REDIS_CA` the control plane's Redis handle talks to it and two
//! replicas' login throttles share their counters; with only the system's roots it cannot
//! connect at all (and each replica decides alone).

use portcullis_control_plane::identity::throttle::Throttle;
use portcullis_control_plane::infra::redis::Redis;
use portcullis_tests::tls::TestCa;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A redis-server that speaks only TLS, on a free port.
struct TlsRedis {
    port: u16,
    child: Child,
}

impl TlsRedis {
    fn start(ca: &TestCa) -> Self {
        let port = portcullis_tests::free_port();
        let path = |p: &std::path::Path| p.display().to_string();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args([
                "--tls-cert-file",
                &path(&ca.cert),
                "--tls-key-file",
                &path(&ca.key),
            ])
            .args([
                "--tls-ca-cert-file",
                &path(&ca.ca),
                "--tls-auth-clients",
                "no",
            ])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("redis-server is required for this test: {e}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server with TLS did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        TlsRedis { port, child }
    }

    fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Five failures on `a` for one (account, address); whether `b` then refuses that pair.
async fn shared(a: &Throttle, b: &Throttle) -> bool {
    let now = portcullis_control_plane::now();
    for _ in 0..5 {
        let attempt = a
            .start("kim", "10.7.7.7", now)
            .await
            .unwrap_or_else(|wait| panic!("refused for {wait} s"));
        attempt.failed(now).await;
    }
    b.start("kim", "10.7.7.7", now).await.is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_the_configured_ca_is_reached_and_shared() {
    let ca = TestCa::generate("redis");
    let redis = TlsRedis::start(&ca);
    let a = Throttle::new(Some(Redis::open(&redis.url(), Some(&ca.ca)).unwrap()));
    let b = Throttle::new(Some(Redis::open(&redis.url(), Some(&ca.ca)).unwrap()));
    assert!(
        shared(&a, &b).await,
        "two replicas on one Redis over TLS do not share their counters"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_an_untrusted_certificate_is_not_reached() {
    let ca = TestCa::generate("redis-untrusted");
    let redis = TlsRedis::start(&ca);
    // The system's roots do not include the throw-away CA.
    let a = Throttle::new(Some(Redis::open(&redis.url(), None).unwrap()));
    let b = Throttle::new(Some(Redis::open(&redis.url(), None).unwrap()));
    assert!(
        !shared(&a, &b).await,
        "replicas shared counters through a Redis whose certificate they cannot trust"
    );
}
