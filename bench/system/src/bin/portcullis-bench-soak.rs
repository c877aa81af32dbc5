//! `cargo xtask bench soak [--seconds N]`: a bounded load run through Envoy with mixed tokens
//! while policies are pushed and signing keys rotated.
//!
//! The whole system (control plane on PostgreSQL, Envoy with the release filter, echo upstream).
//! Eight connections send, round-robin: valid tokens (expect 200), tokens revoked and confirmed
//! revoked at the edge (expect 401), garbage and forged tokens (expect 401) and writes outside the
//! token's scope (expect 403). Meanwhile a policy set is pushed every 2 s (alternating with and
//! without an unrelated permit) and keys are rotated as often as pre-publication allows. Reports
//! requests by kind, wrong decisions, 5xx for valid tokens, and memory before and after.
//! `--smoke`: 8 s, and any wrong decision, 5xx, idle kind or missing push or rotation fails it.

use portcullis_tests::control_plane::{postgres_db, ControlPlane};
use portcullis_tests::http::{get, request};
use portcullis_tests::stack::Stack;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lifetime of the soak's client tokens, in seconds.
const TOKEN_TTL: &str = "60";
/// Revoked tokens the generator keeps sending.
const REVOKED_KEPT: usize = 200;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[derive(Default)]
struct Tally {
    sent: [AtomicU64; 4],
    wrong: [AtomicU64; 4],
    valid_5xx: AtomicU64,
}

const KINDS: [&str; 4] = [
    "valid token (200)",
    "revoked token (401)",
    "garbage or forged token (401)",
    "write outside scope (403)",
];

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::args()
        .skip_while(|a| a != "--seconds")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(if portcullis_tests::smoke() { 8 } else { 30 });
    let db = postgres_db().await;
    let plane = ControlPlane::start_with(
        portcullis_tests::free_port(),
        &db.url,
        // Short-lived client tokens: revocation entries and retired keys expire during the run,
        // so the state the system must hold stops growing and memory can be judged flat or not.
        &[
            ("PORTCULLIS_KEY_PREPUBLISH", "1"),
            ("PORTCULLIS_CLIENT_ACCESS_TTL", TOKEN_TTL),
            ("PORTCULLIS_ACCESS_TTL", TOKEN_TTL),
        ],
    );
    let s = Stack::around(plane).await;
    let port = s.envoy.port;
    let service = s
        .plane
        .create_client("svc", "api:items:read", &["client_credentials"])
        .await;
    let ops = s
        .plane
        .create_client("ops", "admin:policies admin:keys", &["client_credentials"])
        .await;
    let mut admin = s.plane.client_token(&ops, None).await;

    let valid: Arc<Mutex<Vec<String>>> = Arc::default();
    let revoked: Arc<Mutex<Vec<String>>> = Arc::default();
    for _ in 0..20 {
        let token = s.plane.client_token(&service, None).await;
        valid.lock().map(|mut v| v.push(token)).ok();
    }
    let forged = portcullis_authz::issue::SigningKey::ed25519("k-forged", [3; 32]).sign_access_token(&json!({
        "iss": s.plane.issuer(), "sub": "client:x", "aud": ["portcullis-edge"], "exp": portcullis_control_plane::now() + 600,
        "iat": portcullis_control_plane::now(), "jti": "forged", "client_id": "x", "scope": "api:items:read"
    }));
    let bad_tokens = Arc::new(vec!["garbage".to_owned(), forged]);

    let envoy_before = rss_kib(s.envoy.pid());
    let bench_before = rss_kib(std::process::id());
    let tally = Arc::new(Tally::default());
    let deadline = Instant::now() + Duration::from_secs(seconds);

    // Memory every tenth of the run, so growth that levels off shows apart from a leak.
    let envoy_pid = s.envoy.pid();
    let sampler = tokio::spawn(async move {
        let mut samples = Vec::new();
        let every = Duration::from_secs(seconds.max(10) / 10);
        while Instant::now() < deadline {
            tokio::time::sleep(every).await;
            samples.push((rss_kib(envoy_pid), rss_kib(std::process::id())));
        }
        samples
    });

    let mut workers = Vec::new();
    for worker in 0..8u64 {
        let (valid, revoked, bad, tally) = (
            valid.clone(),
            revoked.clone(),
            bad_tokens.clone(),
            tally.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut i = worker;
            while Instant::now() < deadline {
                i += 1;
                let kind = (i % 4) as usize;
                let pick = |list: &Arc<Mutex<Vec<String>>>| {
                    list.lock()
                        .ok()
                        .and_then(|l| (!l.is_empty()).then(|| l[(i as usize) % l.len()].clone()))
                };
                let (status, expected) = match kind {
                    0 => match pick(&valid) {
                        Some(t) => (get(port, "/api/items", Some(&t)).await.status, 200),
                        None => continue,
                    },
                    1 => match pick(&revoked) {
                        Some(t) => (get(port, "/api/items", Some(&t)).await.status, 401),
                        None => continue,
                    },
                    2 => (
                        get(port, "/api/items", Some(&bad[(i as usize) % bad.len()]))
                            .await
                            .status,
                        401,
                    ),
                    _ => match pick(&valid) {
                        Some(t) => {
                            let auth = format!("Bearer {t}");
                            let status = request(
                                port,
                                "POST",
                                "/api/items",
                                &[("authorization", auth.as_bytes())],
                            )
                            .await
                            .map(|r| r.status)
                            .unwrap_or(0);
                            (status, 403)
                        }
                        None => continue,
                    },
                };
                tally.sent[kind].fetch_add(1, Ordering::Relaxed);
                if status != expected {
                    tally.wrong[kind].fetch_add(1, Ordering::Relaxed);
                }
                if kind == 0 && status >= 500 {
                    tally.valid_5xx.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }

    // Changes while the load runs: revocations, new tokens, policy pushes, key rotations.
    let base: Value = s
        .plane
        .admin("GET", "/admin/v1/policies", &admin, None)
        .await
        .json();
    let base_policies = base["policies"].as_str().unwrap_or_default().to_owned();
    let extra = format!("{base_policies}\n@id(\"soak-extra\")\npermit (principal, action in Action::\"read\", resource)\nwhen {{ resource.path like \"/soak/*\" }};\n");
    let (mut pushes, mut rotations, mut revocations) = (0, 0, 0);
    let mut tick = 0u64;
    while Instant::now() < deadline {
        tick += 1;
        if tick.is_multiple_of(20) {
            admin = s.plane.client_token(&ops, None).await;
        }
        // A new valid token, and one of the old ones revoked; it joins the revoked list only once
        // the edge refuses it, so every 401 expected below is owed.
        let fresh = s.plane.client_token(&service, None).await;
        let victim = valid.lock().ok().and_then(|mut v| {
            v.push(fresh);
            (v.len() > 20).then(|| v.remove(0))
        });
        if let Some(victim) = victim {
            s.plane.revoke(&service, &victim).await;
            let started = Instant::now();
            while get(port, "/api/items", Some(&victim)).await.status != 401
                && started.elapsed() < Duration::from_secs(5)
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            revoked
                .lock()
                .map(|mut r| {
                    r.push(victim);
                    // The generator keeps the newest revoked tokens only (they stay 401 when
                    // they expire), so its own memory does not grow with the run.
                    if r.len() > REVOKED_KEPT {
                        r.remove(0);
                    }
                })
                .ok();
            revocations += 1;
        }
        if tick.is_multiple_of(4) {
            let policies = if pushes % 2 == 0 {
                &extra
            } else {
                &base_policies
            };
            let body = json!({"schema": base["schema"], "policies": policies, "entities": base["entities"]});
            if s.plane
                .admin("PUT", "/admin/v1/policies", &admin, Some(&body))
                .await
                .status
                == 200
            {
                pushes += 1;
            }
        }
        if tick.is_multiple_of(6)
            && s.plane
                .admin("POST", "/admin/v1/keys/rotate", &admin, None)
                .await
                .status
                == 200
        {
            rotations += 1;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for worker in workers {
        let _ = worker.await;
    }
    let envoy_after = rss_kib(s.envoy.pid());
    let bench_after = rss_kib(std::process::id());
    let samples = sampler.await.unwrap_or_default();

    println!("\n| soak, {seconds} s, 8 connections | requests | wrong decisions |");
    println!("|---|---|---|");
    let mut total = 0;
    for (kind, name) in KINDS.iter().enumerate() {
        let sent = tally.sent[kind].load(Ordering::Relaxed);
        total += sent;
        println!(
            "| {name} | {sent} | {} |",
            tally.wrong[kind].load(Ordering::Relaxed)
        );
    }
    println!(
        "| **all** | {total} | 5xx for valid tokens: {} |",
        tally.valid_5xx.load(Ordering::Relaxed)
    );
    println!("\nDuring the run: {revocations} revocations, {pushes} policy pushes, {rotations} key rotations.");
    println!(
        "Memory (VmRSS): Envoy {:.1} → {:.1} MiB; control plane + load generator process {:.1} → {:.1} MiB.",
        envoy_before as f64 / 1024.0,
        envoy_after as f64 / 1024.0,
        bench_before as f64 / 1024.0,
        bench_after as f64 / 1024.0
    );
    if portcullis_tests::smoke() {
        for (kind, name) in KINDS.iter().enumerate() {
            assert!(
                tally.sent[kind].load(Ordering::Relaxed) > 0,
                "no {name} was sent"
            );
            assert_eq!(
                tally.wrong[kind].load(Ordering::Relaxed),
                0,
                "wrong decisions: {name}"
            );
        }
        assert_eq!(
            tally.valid_5xx.load(Ordering::Relaxed),
            0,
            "5xx for valid tokens"
        );
        assert!(revocations > 0 && pushes > 0 && rotations > 0, "the soak changed nothing: {revocations} revocations, {pushes} pushes, {rotations} rotations");
    }
    let mib = |kib: u64| format!("{:.1}", kib as f64 / 1024.0);
    println!(
        "Envoy VmRSS every tenth of the run (MiB): {}",
        samples
            .iter()
            .map(|(envoy, _)| mib(*envoy))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "Control plane + load generator VmRSS every tenth of the run (MiB): {}",
        samples
            .iter()
            .map(|(_, bench)| mib(*bench))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
