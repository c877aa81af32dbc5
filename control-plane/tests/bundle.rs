//! The edge bundle, key rotation and replicas sharing one database.

mod common;

use axum::http::{Method, StatusCode};
use common::{config, Call, TestApp, TestDb, BUNDLE_CREDENTIAL};
use portcullis_authz::bundle::Snapshot;
use std::time::{Duration, Instant};

fn bundle_call() -> Call {
    Call::new(Method::GET, "/plugin/v1/bundle").bearer(BUNDLE_CREDENTIAL)
}

async fn bundle_contract(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    assert_eq!(
        app.get("/plugin/v1/bundle").await.status,
        StatusCode::UNAUTHORIZED
    );
    let wrong = app
        .send(Call::new(Method::GET, "/plugin/v1/bundle").bearer("not-the-credential"))
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let reply = app.send(bundle_call()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let etag = reply.header("etag").unwrap();
    // The edge's own validation accepts it.
    let snapshot = Snapshot::from_json(reply.text.as_bytes()).unwrap();
    assert_eq!(snapshot.issuer, common::ISSUER);
    assert_eq!(snapshot.keys.len(), 2);
    assert!(snapshot.engine.policy_count() > 0);
    // Conditional request.
    let same = app.send(bundle_call().header("if-none-match", &etag)).await;
    assert_eq!(same.status, StatusCode::NOT_MODIFIED);
    // Long-poll: held until a change, then answered with the new version.
    let waiter = {
        let app = app.clone();
        let etag = etag.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let reply = app
                .send(
                    bundle_call()
                        .uri_query("wait=10")
                        .header("if-none-match", &etag),
                )
                .await;
            (reply, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (id, secret) = app.client("svc", "a", &["client_credentials"]).await;
    let token = app.cc_token(&id, &secret, None).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.send(
        Call::new(Method::POST, "/oauth2/revoke")
            .basic(&id, &secret)
            .form(&[("token", &token)]),
    )
    .await;
    let (reply, waited) = waiter.await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_ne!(reply.header("etag").unwrap(), etag);
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    // A long-poll with nothing new times out with 304.
    let etag = reply.header("etag").unwrap();
    let started = Instant::now();
    let idle = app
        .send(
            bundle_call()
                .uri_query("wait=1")
                .header("if-none-match", &etag),
        )
        .await;
    assert_eq!(idle.status, StatusCode::NOT_MODIFIED);
    assert!(started.elapsed() >= Duration::from_millis(900));
    let bad = app.send(bundle_call().uri_query("wait=soon")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}
both_backends!(bundle_etag_and_long_poll, bundle_contract);

async fn key_rotation(db: &TestDb) {
    let app = TestApp::start(config(db, &[("PORTCULLIS_KEY_PREPUBLISH", "2")])).await;
    let admin = app.admin_token().await;
    let keys = app
        .send(Call::new(Method::GET, "/admin/v1/keys").bearer(&admin))
        .await
        .json();
    let next = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["state"] == "next")
        .unwrap()["kid"]
        .clone();
    let (id, secret) = app.client("svc", "a", &["client_credentials"]).await;
    let old_token = app.cc_token(&id, &secret, None).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The next key was published moments ago: edges may not have it yet, so rotation waits.
    let early = app
        .send(Call::new(Method::POST, "/admin/v1/keys/rotate").bearer(&admin))
        .await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.text);
    assert!(early.text.contains("published too recently"));
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let rotated = app
        .send(Call::new(Method::POST, "/admin/v1/keys/rotate").bearer(&admin))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    // The pre-published key signs now.
    assert_eq!(rotated.json()["active_kid"], next);
    let new_token = app.cc_token(&id, &secret, None).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let header = |t: &str| -> serde_json::Value {
        use base64::Engine as _;
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(header(&new_token)["kid"], next);
    // The old key stays published (retiring) so its tokens keep working; a new next appears.
    let jwks = app.get("/.well-known/jwks.json").await.json();
    let kids: Vec<_> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    assert_eq!(kids.len(), 3);
    assert!(kids.contains(&header(&old_token)["kid"]));
    let (rs, rs_secret) = app
        .client("rs", "introspect", &["client_credentials"])
        .await;
    assert_eq!(
        app.introspect((&rs, &rs_secret), &old_token).await["active"],
        true
    );
    assert_eq!(
        app.introspect((&rs, &rs_secret), &new_token).await["active"],
        true
    );
    // An emergency rotation (compromised key) retires the signing key at once: its tokens stop
    // working, while keys already retiring keep theirs.
    let forced = app
        .send(Call::new(Method::POST, "/admin/v1/keys/rotate?force=true").bearer(&admin))
        .await;
    assert_eq!(forced.status, StatusCode::OK, "{}", forced.text);
    assert_eq!(
        app.introspect((&rs, &rs_secret), &new_token).await,
        serde_json::json!({"active": false})
    );
    assert_eq!(
        app.introspect((&rs, &rs_secret), &old_token).await["active"],
        true
    );
    // Keys are sealed at rest: the stored private part is not the raw seed and opens only with
    // the master key.
    let sealed: Vec<String> = sqlx::query_scalar("SELECT sealed_private FROM signing_keys")
        .fetch_all(&app.state.db().pool)
        .await
        .unwrap();
    assert!(sealed.iter().all(|s| s.len() > 60));
    let bundle = app.send(bundle_call()).await.text;
    assert!(!bundle.contains("\"d\""));
}
both_backends!(key_rotation_prepublishes_and_keeps_old_keys, key_rotation);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_postgres() {
    let db = TestDb::postgres(common::test_root()).await;
    let a = TestApp::start(config(&db, &[])).await;
    let b = TestApp::start(config(&db, &[])).await;
    let follower = b.state.spawn_follower(Duration::from_millis(100));
    let (id, secret) = a.client("svc", "a", &["client_credentials"]).await;
    // A token from replica A is valid on replica B…
    let token = a.cc_token(&id, &secret, None).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(b.introspect((&id, &secret), &token).await["active"], true);
    // …and revoking it on A is seen by B and in B's bundle within the follow interval.
    a.send(
        Call::new(Method::POST, "/oauth2/revoke")
            .basic(&id, &secret)
            .form(&[("token", &token)]),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if b.introspect((&id, &secret), &token).await == serde_json::json!({"active": false}) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replica B never saw the revocation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let from_a = a.send(bundle_call()).await;
    let from_b = b.send(bundle_call()).await;
    assert_eq!(from_a.header("etag"), from_b.header("etag"));
    follower.abort();
}

#[tokio::test]
async fn restart_keeps_keys_revocations_and_audit() {
    let db = TestDb::sqlite(common::test_root());
    let (id, secret, token, kid_before) = {
        let app = TestApp::start(config(&db, &[])).await;
        let (id, secret) = app.client("svc", "a", &["client_credentials"]).await;
        let token = app.cc_token(&id, &secret, None).await.json()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        app.send(
            Call::new(Method::POST, "/oauth2/revoke")
                .basic(&id, &secret)
                .form(&[("token", &token)]),
        )
        .await;
        let kid = app.get("/.well-known/jwks.json").await.json()["keys"].clone();
        app.state.db().pool.close().await;
        (id, secret, token, kid)
    };
    let app = TestApp::start(config(&db, &[])).await;
    assert_eq!(
        app.get("/.well-known/jwks.json").await.json()["keys"],
        kid_before
    );
    assert_eq!(
        app.introspect((&id, &secret), &token).await,
        serde_json::json!({"active": false})
    );
    assert!(
        portcullis_control_plane::audit::verify(&app.state.db().pool, app.state.master())
            .await
            .unwrap()
            >= 3
    );
}

/// A revoked token stays on the list until no edge can accept it any more: past its `exp` by the
/// largest leeway an edge may apply (the 6-minute soak found tokens accepted again in between).
async fn revocations_outlive_the_leeway(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let now = portcullis_control_plane::now();
    let margin = portcullis_authz::config::MAX_LEEWAY_SECONDS;
    let pool = &app.state.db().pool;
    for (id, exp) in [
        ("in-leeway", now - margin + 30),
        ("beyond-leeway", now - margin - 30),
    ] {
        sqlx::query(
            "INSERT INTO revocations (id, jti, sid, sub, sub_before, exp, created_at) VALUES ($1, $2, NULL, NULL, NULL, $3, $4)",
        )
        .bind(id)
        .bind(id)
        .bind(exp)
        .bind(now)
        .execute(pool)
        .await
        .unwrap();
    }
    let listed = portcullis_control_plane::bundle::live_revocations(pool, now)
        .await
        .unwrap();
    let jtis: Vec<_> = listed.iter().filter_map(|e| e.jti.as_deref()).collect();
    assert_eq!(jtis, ["in-leeway"]);
    let pruned = portcullis_control_plane::identity::sessions::revocations::prune(pool)
        .await
        .unwrap();
    assert_eq!(pruned, 1);
}
both_backends!(
    revocations_outlive_the_edge_leeway,
    revocations_outlive_the_leeway
);

/// The pins an edge configures, from `GET /admin/v1/keys/bundle`.
fn pins_of(view: &serde_json::Value) -> portcullis_authz::bundle_signature::PinnedKeys {
    let jwks: Vec<portcullis_authz::jwk::Jwk> =
        serde_json::from_value(view["pins"].clone()).unwrap();
    portcullis_authz::bundle_signature::PinnedKeys::from_jwks(&jwks).unwrap()
}

/// The kid of `state` among the listed bundle-signing keys.
fn kid_in(view: &serde_json::Value, state: &str) -> String {
    let keys = view["keys"].as_array().unwrap();
    let key = keys.iter().find(|k| k["state"] == state);
    key.and_then(|k| k["kid"].as_str()).unwrap().to_owned()
}

/// An app serving bundles, an admin token for it, its bundle-signing keys as the admin API
/// lists them, and a bundle it served.
struct Signed {
    app: TestApp,
    admin: String,
    /// The listed bundle-signing keys.
    view: serde_json::Value,
    /// The kids of the active and the next key.
    active: String,
    next: String,
    /// What an edge pins: the listed pins.
    pins: portcullis_authz::bundle_signature::PinnedKeys,
    /// A bundle, as served.
    reply: common::Reply,
}

async fn signed(db: &TestDb) -> Signed {
    let app = TestApp::start(config(db, &[])).await;
    let admin = app.admin_token().await;
    let view = app.send(bundle_keys_call(&admin)).await.json();
    let (active, next) = (kid_in(&view, "active"), kid_in(&view, "next"));
    let pins = pins_of(&view);
    let reply = app.send(bundle_call()).await;
    Signed {
        app,
        admin,
        view,
        active,
        next,
        pins,
        reply,
    }
}

fn bundle_keys_call(admin: &str) -> Call {
    Call::new(Method::GET, "/admin/v1/keys/bundle").bearer(admin)
}

async fn bundle_signing(db: &TestDb) {
    let Signed {
        app,
        view,
        active,
        next,
        pins,
        reply,
        ..
    } = signed(db).await;
    let pinned_kids: Vec<&str> = view["pins"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert_eq!(
        pinned_kids,
        [active.as_str(), next.as_str()],
        "the pins are the active key, then the next one"
    );
    let signature = reply.header("portcullis-bundle-signature");
    let signed_by = pins.verify(
        signature.as_deref().map(str::as_bytes),
        reply.text.as_bytes(),
    );
    assert_eq!(
        signed_by,
        Ok(active.as_str()),
        "the bundle is signed by the active key"
    );
    let mut altered = reply.text.clone().into_bytes();
    altered.push(b' ');
    assert!(
        pins.verify(signature.as_deref().map(str::as_bytes), &altered)
            .is_err(),
        "the signature covers the exact body"
    );
    let same = app
        .send(bundle_call().header("if-none-match", &reply.header("etag").unwrap()))
        .await;
    assert_eq!(
        same.status,
        StatusCode::NOT_MODIFIED,
        "304 semantics change"
    );
    // Both answers vouch, signed, that this version is current now.
    let version = reply.json()["version"].as_u64().unwrap();
    for (what, answer) in [("200", &reply), ("304", &same)] {
        let fresh = answer.header("portcullis-bundle-freshness");
        let at = pins.verify_freshness(fresh.as_deref().map(str::as_bytes), version);
        assert!(
            at.as_ref()
                .is_ok_and(|at| at.abs_diff(portcullis_control_plane::now() as u64) <= 5),
            "the {what} carries no current signed freshness: {at:?}"
        );
    }
}
both_backends!(
    bundles_and_their_freshness_are_signed_by_the_active_bundle_key,
    bundle_signing
);

async fn bundle_keys_apart(db: &TestDb) {
    let Signed {
        app,
        active,
        next,
        reply,
        ..
    } = signed(db).await;
    // Separate from token keys: no bundle key verifies tokens, none is in a JWKS.
    let jwks = app.get("/.well-known/jwks.json").await.text;
    assert!(
        !jwks.contains(&active) && !jwks.contains(&next) && !reply.text.contains(&active),
        "a bundle-signing key is published as a token key"
    );
    let sealed: Vec<String> = sqlx::query_scalar("SELECT sealed_private FROM bundle_signing_keys")
        .fetch_all(&app.state.db().pool)
        .await
        .unwrap();
    assert_eq!(sealed.len(), 2);
    assert!(
        sealed.iter().all(|s| s.len() > 60),
        "bundle keys are sealed at rest"
    );
}
both_backends!(
    bundle_signing_keys_are_sealed_and_never_token_keys,
    bundle_keys_apart
);

async fn bundle_key_rotation(db: &TestDb) {
    let Signed {
        app,
        admin,
        active,
        next,
        pins,
        reply,
        ..
    } = signed(db).await;
    // Rotation: the next key signs, the old one retires, a new next appears; an edge pinning the
    // original two keys goes on applying bundles.
    let early = app
        .send(Call::new(Method::POST, "/admin/v1/keys/bundle/rotate").bearer(&admin))
        .await;
    assert_eq!(
        early.status,
        StatusCode::CONFLICT,
        "a next key younger than the pre-publication time signs (no edge may pin it yet): {}",
        early.text
    );
    let rotated = app
        .send(Call::new(Method::POST, "/admin/v1/keys/bundle/rotate?force=true").bearer(&admin))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let view = rotated.json();
    assert_eq!(view["active_kid"], next.as_str());
    assert_eq!(kid_in(&view, "retired"), active);
    let new_next = kid_in(&view, "next");
    assert!(new_next != active && new_next != next);
    let after = app.send(bundle_call()).await;
    assert_ne!(
        after.header("etag"),
        reply.header("etag"),
        "the rotation moves the bundle version so edges fetch the new signature"
    );
    let signature = after.header("portcullis-bundle-signature");
    assert_eq!(
        pins.verify(
            signature.as_deref().map(str::as_bytes),
            after.text.as_bytes()
        ),
        Ok(next.as_str()),
        "an edge that pinned active and next refuses the rotated bundle"
    );
    let audit: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log")
        .fetch_all(&app.state.db().pool)
        .await
        .unwrap();
    assert!(audit.iter().any(|a| a == "bundle_key.rotated"), "{audit:?}");

    // The keys survive a restart (opening the store again creates none).
    let again = TestApp::start(config(db, &[])).await;
    let reopened = again.send(bundle_keys_call(&admin)).await.json();
    assert_eq!(reopened["pins"], view["pins"], "a restart changed the pins");
}
both_backends!(
    a_bundle_key_rotation_keeps_edges_that_pinned_the_next_key_applying_bundles,
    bundle_key_rotation
);

/// Swaps the public part of `table`'s next key for `planted` (as someone who can write the
/// database but does not hold the master key could); returns the kid and the original.
async fn plant(
    app: &TestApp,
    table: &str,
    planted: &portcullis_authz::jwk::Jwk,
) -> (String, String) {
    let (kid, original): (String, String) = sqlx::query_as(&format!(
        "SELECT kid, public_jwk FROM {table} WHERE state = 'next'"
    ))
    .fetch_one(&app.state.db().pool)
    .await
    .unwrap();
    let mut planted = planted.clone();
    planted.kid = Some(kid.clone());
    sqlx::query(&format!(
        "UPDATE {table} SET public_jwk = $1 WHERE kid = $2"
    ))
    .bind(serde_json::to_string(&planted).unwrap())
    .bind(&kid)
    .execute(&app.state.db().pool)
    .await
    .unwrap();
    (kid, original)
}

async fn planted_keys(db: &TestDb) {
    use portcullis_authz::issue::SigningKey;
    let app = TestApp::start(config(db, &[])).await;
    let attacker = SigningKey::ed25519("attacker", [66; 32]).public_jwk();
    let attacker_x = attacker.x.clone().unwrap();
    let before = app.send(bundle_call()).await;
    assert_eq!(before.status, StatusCode::OK);

    // A token key: the next bundle would trust tokens the attacker signs.
    plant(&app, "signing_keys", &attacker).await;
    let mut tx = app.state.db().pool.begin().await.unwrap();
    portcullis_control_plane::bundle::bump(&mut tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(
        app.state.refresh().await.is_err(),
        "a bundle with a planted token key was assembled"
    );
    let served = app.send(bundle_call()).await;
    assert!(
        !served.text.contains(&attacker_x),
        "the planted key reached the edge"
    );
    assert_eq!(
        served.header("etag"),
        before.header("etag"),
        "the last good bundle stays"
    );
    let jwks = app.get("/.well-known/jwks.json").await;
    assert!(
        !jwks.text.contains(&attacker_x),
        "the planted key is published"
    );

    // A bundle key: operators would pin the attacker's key.
    plant(&app, "bundle_signing_keys", &attacker).await;
    let admin = app.admin_token().await;
    let pins = app
        .send(Call::new(Method::GET, "/admin/v1/keys/bundle").bearer(&admin))
        .await;
    assert!(
        !pins.status.is_success() && !pins.text.contains(&attacker_x),
        "the planted bundle key is offered for pinning: {} {}",
        pins.status,
        pins.text
    );
}
both_backends!(
    a_public_key_planted_in_the_database_is_refused,
    planted_keys
);

fn policy_compilations(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("portcullis_policy_compilations_total "))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no compilation counter in:\n{metrics}"))
}

/// A revocation changes the bundle every edge follows but not its policies: the control plane
/// publishes it without compiling Cedar again; only a new policy version is compiled.
async fn revocations_reuse_policies(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let compiled_at_start = policy_compilations(&app.get("/metrics").await.text);
    assert_eq!(
        compiled_at_start, 1,
        "the policies in force compile once at start"
    );
    let first = Snapshot::from_json(app.send(bundle_call()).await.text.as_bytes()).unwrap();
    let (id, secret) = app.client("svc", "a", &["client_credentials"]).await;
    for _ in 0..3 {
        let token = common::access_token(&app.cc_token(&id, &secret, None).await);
        let revoked = app
            .send(
                Call::new(Method::POST, "/oauth2/revoke")
                    .basic(&id, &secret)
                    .form(&[("token", &token)]),
            )
            .await;
        assert_eq!(revoked.status, StatusCode::OK);
    }
    let after = Snapshot::from_json(app.send(bundle_call()).await.text.as_bytes()).unwrap();
    assert!(
        after.version > first.version,
        "each revocation moved the bundle"
    );
    assert_eq!(
        after.revocations.len(),
        first.revocations.len() + 3,
        "the revocations are in the bundle"
    );
    assert_eq!(
        policy_compilations(&app.get("/metrics").await.text),
        compiled_at_start,
        "revocations must not compile the policies again"
    );

    let (admin_id, admin_secret) = app
        .client("policy-admin", "admin:policies", &["client_credentials"])
        .await;
    let admin = common::access_token(&app.cc_token(&admin_id, &admin_secret, None).await);
    let active = app
        .send(Call::new(Method::GET, "/admin/v1/policies").bearer(&admin))
        .await
        .json();
    let policies = format!(
        "{}\n@id(\"never\")\nforbid (principal, action, resource) when {{ false }};\n",
        active["policies"].as_str().unwrap()
    );
    let pushed = app
        .send(
            Call::new(Method::PUT, "/admin/v1/policies")
                .bearer(&admin)
                .json(&serde_json::json!({"schema": active["schema"],
                    "entities": active["entities"], "policies": policies})),
        )
        .await;
    assert!(pushed.status.is_success(), "{}", pushed.text);
    assert_eq!(
        policy_compilations(&app.get("/metrics").await.text),
        compiled_at_start + 1,
        "a new policy version is compiled once"
    );
    let newest = Snapshot::from_json(app.send(bundle_call()).await.text.as_bytes()).unwrap();
    assert_eq!(
        newest.engine.policy_count(),
        after.engine.policy_count() + 1,
        "the new policy is in the bundle"
    );
}
both_backends!(
    revocations_publish_without_compiling_the_policies_again,
    revocations_reuse_policies
);
