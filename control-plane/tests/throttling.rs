//! Login throttling from outside: a botnet (one guess per address) gets a bounded number of
//! guesses per account while the account's owner still signs in from a known address; a right
//! password without the right one-time code answers exactly as a wrong password; one-time codes
//! are capped per account; `X-Forwarded-For` counts only behind a trusted proxy.

mod common;

use axum::http::{Method, StatusCode};
use common::{config, Call, Reply, TestApp, TestDb};
use sqlx::Row as _;

/// One password-grant attempt from `ip`.
async fn sign_in(
    app: &TestApp,
    client: &(String, String),
    ip: &str,
    username: &str,
    password: &str,
    otp: Option<&str>,
) -> Reply {
    let mut form = vec![
        ("grant_type", "password"),
        ("username", username),
        ("password", password),
    ];
    if let Some(otp) = otp {
        form.push(("otp", otp));
    }
    app.send(
        Call::new(Method::POST, "/oauth2/token")
            .basic(&client.0, &client.1)
            .client_ip(ip)
            .form(&form),
    )
    .await
}

async fn botnet(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let client = app.client("web", "a", &["password"]).await;
    app.user("olga", "correct horse battery", &[], "a").await;
    // Olga signed in from home before the attack.
    let home = sign_in(
        &app,
        &client,
        "192.168.1.20",
        "olga",
        "correct horse battery",
        None,
    )
    .await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.text);
    // 180 wrong passwords, each from its own address (127.0.0.2 … 127.0.0.181).
    let mut evaluated = 0;
    let mut longest_wait = 0;
    for i in 2..=181 {
        let reply = sign_in(
            &app,
            &client,
            &format!("127.0.0.{i}"),
            "olga",
            "guess guess",
            None,
        )
        .await;
        match reply.status {
            StatusCode::BAD_REQUEST => evaluated += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                let wait: i64 = reply.header("retry-after").unwrap().parse().unwrap();
                longest_wait = longest_wait.max(wait);
            }
            other => panic!("attempt {i}: {other} {}", reply.text),
        }
    }
    assert!(
        evaluated <= portcullis_control_plane::identity::throttle::PER_ACCOUNT_PER_HOUR,
        "{evaluated} of 180 guesses reached the password check"
    );
    assert!(
        evaluated < 20,
        "a burst of new addresses is held back at once: {evaluated}"
    );
    assert!(
        longest_wait <= 40,
        "a new address waits a bounded time, not {longest_wait} s"
    );
    let owner = sign_in(
        &app,
        &client,
        "192.168.1.20",
        "olga",
        "correct horse battery",
        None,
    )
    .await;
    assert_eq!(
        owner.status,
        StatusCode::OK,
        "the owner's known address is not locked out: {}",
        owner.text
    );
}
both_backends!(
    a_botnet_gets_a_bounded_number_of_guesses_per_account,
    botnet
);

/// Enrols TOTP for `username` through `/v1/me`; the key.
async fn enrol_totp(app: &TestApp, client: &(String, String), username: &str) -> Vec<u8> {
    let login = app
        .login(
            (&client.0, &client.1),
            username,
            "correct horse battery",
            &[("scope", "self")],
        )
        .await;
    let access = common::access_token(&login);
    common::enrol_totp(app, &access, "correct horse battery")
        .await
        .0
}

/// `detail.code` of every `mfa.failed` audit row, oldest first.
async fn mfa_failures(app: &TestApp) -> Vec<String> {
    sqlx::query("SELECT detail FROM audit_log WHERE action = 'mfa.failed' ORDER BY seq")
        .fetch_all(&app.state.db().pool)
        .await
        .unwrap()
        .iter()
        .map(|row| {
            let detail: serde_json::Value = serde_json::from_str(&row.get::<String, _>(0)).unwrap();
            detail["code"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

async fn no_password_oracle(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let client = app.client("web", "a self", &["password"]).await;
    app.user("pia", "correct horse battery", &["self"], "a")
        .await;
    enrol_totp(&app, &client, "pia").await;
    let wrong_password = sign_in(&app, &client, "10.5.0.1", "pia", "guess guess", None).await;
    let no_code = sign_in(
        &app,
        &client,
        "10.5.0.2",
        "pia",
        "correct horse battery",
        None,
    )
    .await;
    let wrong_code = sign_in(
        &app,
        &client,
        "10.5.0.3",
        "pia",
        "correct horse battery",
        Some("000000"),
    )
    .await;
    for (what, reply) in [("no code", &no_code), ("a wrong code", &wrong_code)] {
        assert_eq!(
            (reply.status, reply.json()),
            (wrong_password.status, wrong_password.json()),
            "the right password with {what} answers differently from a wrong password"
        );
    }
    assert_eq!(
        mfa_failures(&app).await,
        vec!["missing", "wrong"],
        "both are audited as mfa.failed with the reason"
    );
    // A scope the client may not grant is refused before the password is looked at.
    for password in ["correct horse battery", "guess guess"] {
        let reply = app
            .send(
                Call::new(Method::POST, "/oauth2/token")
                    .basic(&client.0, &client.1)
                    .client_ip("10.5.0.9")
                    .form(&[
                        ("grant_type", "password"),
                        ("username", "pia"),
                        ("password", password),
                        ("scope", "not-a-scope"),
                    ]),
            )
            .await;
        assert_eq!(
            reply.json()["error"],
            "invalid_scope",
            "{password}: {}",
            reply.text
        );
    }
}
both_backends!(
    a_right_password_without_the_right_code_answers_as_a_wrong_password,
    no_password_oracle
);

async fn code_cap(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let client = app.client("web", "a self", &["password"]).await;
    app.user("quinn", "correct horse battery", &["self"], "a")
        .await;
    let key = enrol_totp(&app, &client, "quinn").await;
    // Someone who has the password guesses codes, from a new address each time.
    for i in 0..portcullis_control_plane::identity::throttle::OTP_FAILURES {
        let guess = format!("{:06}", 111_111 * (i % 9 + 1));
        let reply = sign_in(
            &app,
            &client,
            &format!("10.6.0.{i}"),
            "quinn",
            "correct horse battery",
            Some(&guess),
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    }
    let step = portcullis_control_plane::now() / 30 + 1;
    let right = portcullis_control_plane::identity::totp::code(&key, step);
    let capped = sign_in(
        &app,
        &client,
        "10.6.1.1",
        "quinn",
        "correct horse battery",
        Some(&right),
    )
    .await;
    assert_eq!(
        capped.status,
        StatusCode::BAD_REQUEST,
        "after five wrong codes even the right one is not checked: {}",
        capped.text
    );
    assert_eq!(capped.json()["error"], "invalid_grant");
    assert_eq!(
        mfa_failures(&app).await.last().map(String::as_str),
        Some("too_many_codes")
    );
}
both_backends!(one_time_codes_are_capped_per_account, code_cap);

/// Five wrong passwords for `rita` from behind 127.0.0.1 claiming `forwarded`, then the right one
/// claiming `next`; the status of the last.
async fn behind_a_proxy(
    app: &TestApp,
    client: &(String, String),
    forwarded: &str,
    next: &str,
) -> StatusCode {
    let attempt = |xff: String, password: &'static str| {
        let (app, client) = (app.clone(), client.clone());
        async move {
            app.send(
                Call::new(Method::POST, "/oauth2/token")
                    .basic(&client.0, &client.1)
                    .client_ip("127.0.0.1")
                    .header("x-forwarded-for", &xff)
                    .form(&[
                        ("grant_type", "password"),
                        ("username", "rita"),
                        ("password", password),
                    ]),
            )
            .await
            .status
        }
    };
    for _ in 0..5 {
        assert_eq!(
            attempt(forwarded.to_owned(), "guess guess").await,
            StatusCode::BAD_REQUEST
        );
    }
    attempt(next.to_owned(), "correct horse battery").await
}

async fn forwarded_for(db: &TestDb) {
    let trusting = TestApp::start(config(
        db,
        &[("PORTCULLIS_TRUSTED_PROXIES", "127.0.0.1/32")],
    ))
    .await;
    let client = trusting.client("web", "a", &["password"]).await;
    trusting
        .user("rita", "correct horse battery", &[], "a")
        .await;
    assert_eq!(
        behind_a_proxy(&trusting, &client, "10.20.0.1", "10.20.0.2").await,
        StatusCode::OK,
        "behind a trusted proxy, the client the proxy names is counted"
    );
    let client_ip: String = sqlx::query_scalar(
        "SELECT client_ip FROM audit_log WHERE action = 'login.failed' ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(&trusting.state.db().pool)
    .await
    .unwrap();
    assert_eq!(
        client_ip, "10.20.0.1",
        "the audit row names the forwarded client"
    );

    let db = TestDb::sqlite(common::test_root());
    let untrusting = TestApp::start(config(&db, &[])).await;
    let client = untrusting.client("web", "a", &["password"]).await;
    untrusting
        .user("rita", "correct horse battery", &[], "a")
        .await;
    assert_eq!(
        behind_a_proxy(&untrusting, &client, "10.20.0.1", "10.20.0.2").await,
        StatusCode::TOO_MANY_REQUESTS,
        "from an untrusted peer, X-Forwarded-For is ignored and the peer is counted"
    );
}
both_backends!(
    forwarded_for_counts_only_behind_a_trusted_proxy,
    forwarded_for
);
