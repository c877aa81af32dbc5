//! Least privilege in the admin API, over SQLite and PostgreSQL: no administrator grants or
//! manages a principal with more than its own token holds, a tenant's administrator stays in its
//! tenant, and roles reach a token only where the client has them.

mod common;

use axum::http::{Method, StatusCode};
use common::{config, decode_claims, Call, Reply, TestApp, TestDb};
use portcullis_control_plane::oauth::clients::NewClient;
use portcullis_control_plane::oauth::grant::GrantType;
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery";

/// What the partial administrator's token holds: two admin areas, one API scope, one role.
const PARTIAL_SCOPES: &str = "admin:users admin:clients api:items:read";

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

async fn client_token(app: &TestApp, id: &str, secret: &str) -> String {
    let reply = app.cc_token(id, secret, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

/// A client-credentials token holding [`PARTIAL_SCOPES`] and role `sre`.
async fn partial_admin(app: &TestApp) -> String {
    let (id, secret) = app
        .client_from(&NewClient {
            name: "partial-admin",
            scopes: PARTIAL_SCOPES,
            grants: &[GrantType::ClientCredentials],
            roles: &strings(&["sre"]),
            tenant: None,
            ..Default::default()
        })
        .await;
    app.control_plane_token(&id, &secret).await
}

async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let mut request = Call::new(method, path).bearer(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    app.send(request).await
}

fn assert_refused(reply: &Reply, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::FORBIDDEN,
        "{what}: {}",
        reply.text
    );
    assert_eq!(
        reply.json()["error"],
        "insufficient_scope",
        "{what}: {}",
        reply.text
    );
}

/// The user record as `admin:full` sees it.
async fn user_record(app: &TestApp, full: &str, id: &str) -> Reply {
    call(
        app,
        full,
        Method::GET,
        &format!("/admin/v1/users/{id}"),
        None,
    )
    .await
}

async fn client_record(app: &TestApp, full: &str, id: &str) -> Value {
    let reply = call(
        app,
        full,
        Method::GET,
        &format!("/admin/v1/clients/{id}"),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()["client"].clone()
}

/// Every verb on a user, with the status it gets when the target is within the caller's power.
fn user_verbs() -> Vec<(Method, &'static str, Option<Value>, StatusCode)> {
    vec![
        (Method::GET, "/export", None, StatusCode::OK),
        (
            Method::PATCH,
            "",
            Some(json!({"email": "changed@example.test"})),
            StatusCode::OK,
        ),
        (Method::POST, "/disable", None, StatusCode::OK),
        (Method::POST, "/enable", None, StatusCode::OK),
        (Method::DELETE, "", None, StatusCode::NO_CONTENT),
    ]
}

async fn users_area(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let full = app.admin_token().await;
    let partial = partial_admin(&app).await;
    for (n, (method, suffix, body, allowed)) in user_verbs().into_iter().enumerate() {
        let weak = app
            .user_in(
                &format!("weak{n}"),
                PASSWORD,
                &["sre"],
                "api:items:read",
                None,
            )
            .await;
        let strong = app
            .user_in(
                &format!("strong{n}"),
                PASSWORD,
                &["admin"],
                "admin:full",
                None,
            )
            .await;
        if suffix == "/enable" {
            for id in [&weak, &strong] {
                let path = format!("/admin/v1/users/{id}/disable");
                assert_eq!(
                    call(&app, &full, Method::POST, &path, None).await.status,
                    StatusCode::OK
                );
            }
        }
        let before = user_record(&app, &full, &strong).await.json();
        let what = format!("{method} /admin/v1/users/{{id}}{suffix}");
        let reply = call(
            &app,
            &partial,
            method.clone(),
            &format!("/admin/v1/users/{weak}{suffix}"),
            body.clone(),
        )
        .await;
        assert_eq!(
            reply.status, allowed,
            "{what} on a user within the caller's power: {}",
            reply.text
        );
        let reply = call(
            &app,
            &partial,
            method.clone(),
            &format!("/admin/v1/users/{strong}{suffix}"),
            body.clone(),
        )
        .await;
        assert_refused(&reply, &format!("{what} on an admin:full user"));
        assert_eq!(
            user_record(&app, &full, &strong).await.json(),
            before,
            "{what}: a refused request changes nothing"
        );
        // admin:full is exempt from the subset rule.
        let reply = call(
            &app,
            &full,
            method,
            &format!("/admin/v1/users/{strong}{suffix}"),
            body,
        )
        .await;
        assert_eq!(
            reply.status, allowed,
            "{what} by admin:full: {}",
            reply.text
        );
    }
}
both_backends!(
    every_user_verb_needs_a_target_within_the_callers_power,
    users_area
);

async fn user_grants(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let full = app.admin_token().await;
    let partial = partial_admin(&app).await;
    let create = |username: &str, scopes: &str, roles: &[&str]| json!({"username": username, "password": PASSWORD, "scopes": scopes, "roles": roles});
    let ok = call(
        &app,
        &partial,
        Method::POST,
        "/admin/v1/users",
        Some(create("held", "api:items:read", &["sre"])),
    )
    .await;
    assert_eq!(
        ok.status,
        StatusCode::CREATED,
        "scopes and roles the caller holds: {}",
        ok.text
    );
    for (username, scopes, roles) in [
        ("sysadmin", "api:system:admin", &[][..]),
        ("full", "admin:full", &[][..]),
        ("keys", "api:items:read admin:keys", &[][..]),
        ("roleadmin", "api:items:read", &["admin"][..]),
    ] {
        let reply = call(
            &app,
            &partial,
            Method::POST,
            "/admin/v1/users",
            Some(create(username, scopes, roles)),
        )
        .await;
        assert_refused(
            &reply,
            &format!("creating a user with `{scopes}` and roles {roles:?}"),
        );
        let listed = call(
            &app,
            &full,
            Method::GET,
            &format!("/admin/v1/users?prefix={username}"),
            None,
        )
        .await;
        assert_eq!(
            listed.json()["users"],
            json!([]),
            "a refused create stores nothing"
        );
    }
    let weak = ok.json()["user_id"].as_str().unwrap().to_owned();
    let path = format!("/admin/v1/users/{weak}");
    for patch in [
        json!({"scopes": "api:items:read api:system:admin"}),
        json!({"roles": ["sre", "ops"]}),
    ] {
        let reply = call(&app, &partial, Method::PATCH, &path, Some(patch.clone())).await;
        assert_refused(&reply, &format!("granting {patch}"));
    }
    let record = user_record(&app, &full, &weak).await.json();
    assert_eq!(
        record["scopes"],
        json!(["api:items:read"]),
        "refused grants change nothing"
    );
    assert_eq!(record["roles"], json!(["sre"]));
    let narrowed = call(
        &app,
        &partial,
        Method::PATCH,
        &path,
        Some(json!({"scopes": ""})),
    )
    .await;
    assert_eq!(
        narrowed.status,
        StatusCode::OK,
        "taking a scope away is within power: {}",
        narrowed.text
    );
    let granted = call(
        &app,
        &full,
        Method::PATCH,
        &path,
        Some(json!({"scopes": "api:system:admin", "roles": ["admin"]})),
    )
    .await;
    assert_eq!(
        granted.status,
        StatusCode::OK,
        "admin:full grants anything: {}",
        granted.text
    );
}
both_backends!(a_partial_admin_grants_users_only_what_it_holds, user_grants);

async fn sessions_area(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let full = app.admin_token().await;
    let partial = partial_admin(&app).await;
    let (web, web_secret) = app
        .client_from(&NewClient {
            name: "web",
            scopes: "api:items:read admin:full",
            grants: &[GrantType::Password, GrantType::RefreshToken],
            roles: &strings(&["sre", "admin"]),
            tenant: None,
            ..Default::default()
        })
        .await;
    let mut sids = Vec::new();
    for (username, roles, scopes) in [
        ("weak", "sre", "api:items:read"),
        ("strong", "admin", "admin:full"),
    ] {
        app.user_in(username, PASSWORD, &[roles], scopes, None)
            .await;
        let login = app
            .login((&web, &web_secret), username, PASSWORD, &[])
            .await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.text);
        sids.push(
            decode_claims(login.json()["access_token"].as_str().unwrap())["sid"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let reply = call(
        &app,
        &partial,
        Method::DELETE,
        &format!("/admin/v1/sessions/{}", sids[1]),
        None,
    )
    .await;
    assert_refused(&reply, "ending an admin:full user's session");
    let reply = call(
        &app,
        &partial,
        Method::DELETE,
        &format!("/admin/v1/sessions/{}", sids[0]),
        None,
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::NO_CONTENT,
        "ending a session of a user within power: {}",
        reply.text
    );
    let live = call(&app, &full, Method::GET, "/admin/v1/sessions", None)
        .await
        .json();
    let live: Vec<&str> = live["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        live,
        vec![sids[1].as_str()],
        "only the permitted session ended"
    );
}
both_backends!(
    ending_a_session_needs_its_user_within_the_callers_power,
    sessions_area
);

/// Every verb on a client, with the status it gets when the target is within the caller's power.
fn client_verbs() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::POST, "/rotate-secret", None),
        (
            Method::PATCH,
            "",
            Some(json!({"grant_types": ["client_credentials", "password"]})),
        ),
        (Method::PATCH, "", Some(json!({"disabled": true}))),
    ]
}

async fn clients_area(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let full = app.admin_token().await;
    let partial = partial_admin(&app).await;
    for (n, (method, suffix, body)) in client_verbs().into_iter().enumerate() {
        let (weak, _) = app
            .client_from(&NewClient {
                name: &format!("weak{n}"),
                scopes: "api:items:read",
                grants: &[GrantType::ClientCredentials],
                roles: &strings(&["sre"]),
                tenant: None,
                ..Default::default()
            })
            .await;
        // The bootstrap admin's shape: the client the reported attack took over.
        let (strong, strong_secret) = app
            .client("strong", "admin:full", &["client_credentials"])
            .await;
        let before = client_record(&app, &full, &strong).await;
        let what = format!(
            "{method} /admin/v1/clients/{{id}}{suffix} {}",
            body.clone().unwrap_or_default()
        );
        let reply = call(
            &app,
            &partial,
            method.clone(),
            &format!("/admin/v1/clients/{weak}{suffix}"),
            body.clone(),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{what} on a client within the caller's power: {}",
            reply.text
        );
        let reply = call(
            &app,
            &partial,
            method.clone(),
            &format!("/admin/v1/clients/{strong}{suffix}"),
            body.clone(),
        )
        .await;
        assert_refused(&reply, &format!("{what} on an admin:full client"));
        assert!(!reply.text.contains("pcs_"), "no secret in a refusal");
        assert_eq!(
            client_record(&app, &full, &strong).await,
            before,
            "{what}: a refused request changes nothing"
        );
        let token = client_token(&app, &strong, &strong_secret).await;
        assert_eq!(
            decode_claims(&token)["scope"],
            "admin:full",
            "the admin:full client still signs in as before"
        );
        let reply = call(
            &app,
            &full,
            method,
            &format!("/admin/v1/clients/{strong}{suffix}"),
            body,
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{what} by admin:full: {}",
            reply.text
        );
    }
}
both_backends!(
    every_client_verb_needs_a_target_within_the_callers_power,
    clients_area
);

async fn client_grants(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let partial = partial_admin(&app).await;
    let create =
        |scopes: &str, roles: &[&str]| json!({"name": "new", "scopes": scopes, "roles": roles});
    let ok = call(
        &app,
        &partial,
        Method::POST,
        "/admin/v1/clients",
        Some(create("api:items:read", &["sre"])),
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
    for (scopes, roles) in [
        ("admin:full", &[][..]),
        ("api:system:admin", &[][..]),
        ("", &["admin"][..]),
    ] {
        let reply = call(
            &app,
            &partial,
            Method::POST,
            "/admin/v1/clients",
            Some(create(scopes, roles)),
        )
        .await;
        assert_refused(
            &reply,
            &format!("creating a client with `{scopes}` and roles {roles:?}"),
        );
    }
    let id = ok.json()["client_id"].as_str().unwrap().to_owned();
    let path = format!("/admin/v1/clients/{id}");
    for patch in [json!({"scopes": "admin:full"}), json!({"roles": ["admin"]})] {
        let reply = call(&app, &partial, Method::PATCH, &path, Some(patch.clone())).await;
        assert_refused(&reply, &format!("granting {patch} to a client"));
    }
    let listed = call(&app, &partial, Method::GET, "/admin/v1/clients", None)
        .await
        .json();
    assert_eq!(
        listed["clients"].as_array().map(Vec::len),
        Some(2),
        "the partial admin and the one it created"
    );
}
both_backends!(
    a_partial_admin_grants_clients_only_what_it_holds,
    client_grants
);

/// Signs in a user through a password client that has `scopes` and `roles`, for the control
/// plane when `scopes` has an admin scope, else for the edge.
async fn user_token(app: &TestApp, username: &str, scopes: &str, roles: &[&str]) -> String {
    let (id, secret) = app
        .client_from(&NewClient {
            name: "console",
            scopes,
            grants: &[GrantType::Password],
            roles: &strings(roles),
            tenant: None,
            ..Default::default()
        })
        .await;
    let resource: &[(&str, &str)] = if scopes.contains("admin:") {
        &[("resource", common::ISSUER)]
    } else {
        &[]
    };
    let login = app
        .login((&id, &secret), username, PASSWORD, resource)
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    login.json()["access_token"].as_str().unwrap().to_owned()
}

/// An installation with tenants: `acme`'s administrator (`me`, signed in as `acme`) and user
/// `ann`, `globex`'s `gus`, and `free` of no tenant.
struct Tenants {
    app: TestApp,
    /// An untenanted `admin:full` token.
    full: String,
    /// `acme`'s administrator's token.
    acme: String,
    /// The user ids of `acme-admin`, `acme-ann`, `globex-gus` and `no-tenant`.
    me: String,
    ann: String,
    gus: String,
    free: String,
}

async fn tenants(db: &TestDb) -> Tenants {
    let app = TestApp::start(config(db, &[])).await;
    let full = app.admin_token().await;
    let scopes = "admin:users admin:clients api:items:read";
    let me = app
        .user_in("acme-admin", PASSWORD, &["sre"], scopes, Some("acme"))
        .await;
    let acme = user_token(&app, "acme-admin", scopes, &["sre"]).await;
    assert_eq!(decode_claims(&acme)["tenant"], "acme");
    let ann = app
        .user_in(
            "acme-ann",
            PASSWORD,
            &["sre"],
            "api:items:read",
            Some("acme"),
        )
        .await;
    let gus = app
        .user_in(
            "globex-gus",
            PASSWORD,
            &["sre"],
            "api:items:read",
            Some("globex"),
        )
        .await;
    let free = app.user_in("no-tenant", PASSWORD, &[], "", None).await;
    Tenants {
        app,
        full,
        acme,
        me,
        ann,
        gus,
        free,
    }
}

async fn tenant_admin_users(db: &TestDb) {
    let Tenants {
        app,
        full,
        acme,
        me,
        ann,
        gus,
        free,
    } = tenants(db).await;
    let listed = call(&app, &acme, Method::GET, "/admin/v1/users", None)
        .await
        .json();
    let mut names: Vec<&str> = listed["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        vec!["acme-admin", "acme-ann"],
        "a tenant admin lists its tenant only"
    );
    for other in [&gus, &free] {
        for (method, suffix, body) in [
            (Method::GET, "", None),
            (Method::GET, "/export", None),
            (Method::PATCH, "", Some(json!({"email": "x@example.test"}))),
            (Method::POST, "/disable", None),
            (Method::DELETE, "", None),
        ] {
            let reply = call(
                &app,
                &acme,
                method.clone(),
                &format!("/admin/v1/users/{other}{suffix}"),
                body,
            )
            .await;
            assert_eq!(
                reply.status,
                StatusCode::NOT_FOUND,
                "{method} {suffix} outside the tenant: {}",
                reply.text
            );
        }
        assert_eq!(
            user_record(&app, &full, other).await.json()["disabled"],
            false,
            "nothing happened to it"
        );
    }
    for (target, tenant) in [(&ann, "globex"), (&ann, ""), (&me, "globex"), (&me, "")] {
        let reply = call(
            &app,
            &acme,
            Method::PATCH,
            &format!("/admin/v1/users/{target}"),
            Some(json!({"tenant": tenant})),
        )
        .await;
        assert_refused(&reply, &format!("moving a user to tenant `{tenant}`"));
        assert_eq!(
            user_record(&app, &full, target).await.json()["tenant"],
            "acme"
        );
    }
    let created = call(
        &app,
        &acme,
        Method::POST,
        "/admin/v1/users",
        Some(json!({"username": "acme-new", "password": PASSWORD})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(
        created.json()["tenant"],
        "acme",
        "a tenant admin's users are born in its tenant"
    );
    let elsewhere = call(
        &app,
        &acme,
        Method::POST,
        "/admin/v1/users",
        Some(json!({"username": "globex-new", "password": PASSWORD, "tenant": "globex"})),
    )
    .await;
    assert_refused(&elsewhere, "creating a user in another tenant");
}
both_backends!(
    a_tenant_admin_manages_only_its_tenants_users,
    tenant_admin_users
);

async fn tenant_admin_clients(db: &TestDb) {
    let Tenants {
        app, full, acme, ..
    } = tenants(db).await;
    let client = call(
        &app,
        &acme,
        Method::POST,
        "/admin/v1/clients",
        Some(json!({"name": "acme-svc", "scopes": "api:items:read"})),
    )
    .await;
    assert_eq!(client.status, StatusCode::CREATED, "{}", client.text);
    assert_eq!(client.json()["client"]["tenant"], "acme");
    let token = client_token(
        &app,
        client.json()["client_id"].as_str().unwrap(),
        client.json()["client_secret"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        decode_claims(&token)["tenant"],
        "acme",
        "a tenant client's own tokens carry its tenant"
    );
    let clients = call(&app, &acme, Method::GET, "/admin/v1/clients", None)
        .await
        .json();
    let tenants: Vec<&Value> = clients["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["tenant"])
        .collect();
    assert_eq!(
        tenants,
        vec![&json!("acme")],
        "a tenant admin lists its tenant's clients only"
    );
    let untenanted = clients_of(&app, &full)
        .await
        .into_iter()
        .find(|c| c["tenant"].is_null())
        .unwrap();
    let reply = call(
        &app,
        &acme,
        Method::POST,
        &format!(
            "/admin/v1/clients/{}/rotate-secret",
            untenanted["client_id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
}
both_backends!(
    a_tenant_admin_manages_only_its_tenants_clients,
    tenant_admin_clients
);

async fn tenant_admin_sessions(db: &TestDb) {
    let Tenants { app, acme, me, .. } = tenants(db).await;
    // Sessions: the tenant admin sees and ends only its tenant's.
    let gus_token = user_token(&app, "globex-gus", "api:items:read", &[]).await;
    let gus_sid = decode_claims(&gus_token)["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let sessions = call(&app, &acme, Method::GET, "/admin/v1/sessions", None)
        .await
        .json();
    let owners: Vec<&str> = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        owners,
        vec![me.as_str()],
        "only the acme admin's own session is listed"
    );
    let reply = call(
        &app,
        &acme,
        Method::DELETE,
        &format!("/admin/v1/sessions/{gus_sid}"),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
}
both_backends!(
    a_tenant_admin_sees_and_ends_only_its_tenants_sessions,
    tenant_admin_sessions
);

async fn clients_of(app: &TestApp, full: &str) -> Vec<Value> {
    let reply = call(app, full, Method::GET, "/admin/v1/clients", None).await;
    reply.json()["clients"].as_array().unwrap().clone()
}

async fn tenant_full_admins(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    app.user_in("acme-root", PASSWORD, &[], "admin:full", Some("acme"))
        .await;
    let root = user_token(&app, "acme-root", "admin:full", &[]).await;
    for (method, path) in [
        (Method::GET, "/admin/v1/keys"),
        (Method::POST, "/admin/v1/keys/rotate"),
        (Method::GET, "/admin/v1/audit"),
        (Method::GET, "/admin/v1/policies"),
    ] {
        let reply = call(&app, &root, method.clone(), path, None).await;
        assert_refused(
            &reply,
            &format!("{method} {path} with a tenant's admin:full"),
        );
    }
    let users = call(&app, &root, Method::GET, "/admin/v1/users", None).await;
    assert_eq!(users.status, StatusCode::OK, "{}", users.text);
    let full = app.admin_token().await;
    let keys = call(&app, &full, Method::GET, "/admin/v1/keys", None).await;
    assert_eq!(
        keys.status,
        StatusCode::OK,
        "an untenanted admin:full reaches the keys: {}",
        keys.text
    );
}
both_backends!(installation_areas_refuse_tenant_tokens, tenant_full_admins);

async fn role_narrowing(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    app.user_in("rolf", PASSWORD, &["sre", "ops"], "api:items:read", None)
        .await;
    let token = user_token(&app, "rolf", "api:items:read", &["sre"]).await;
    assert_eq!(
        decode_claims(&token)["roles"],
        json!(["sre"]),
        "only the roles the client has reach the token"
    );
    let none = user_token(&app, "rolf", "api:items:read", &[]).await;
    assert_eq!(
        decode_claims(&none)["roles"],
        json!([]),
        "a client without roles carries none of the user's"
    );
    let (id, secret) = app
        .client_from(&NewClient {
            name: "svc",
            scopes: "api:items:read",
            grants: &[GrantType::ClientCredentials],
            roles: &strings(&["ops"]),
            tenant: None,
            ..Default::default()
        })
        .await;
    let own = client_token(&app, &id, &secret).await;
    assert_eq!(
        decode_claims(&own)["roles"],
        json!(["ops"]),
        "a client's own token carries its roles"
    );
}
both_backends!(
    roles_reach_a_token_only_where_the_client_has_them,
    role_narrowing
);

async fn demotion(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let full = app.admin_token().await;
    let (id, secret) = app
        .client("keys-admin", "admin:keys", &["client_credentials"])
        .await;
    let token = client_token(&app, &id, &secret).await;
    let keys = call(&app, &token, Method::GET, "/admin/v1/keys", None).await;
    assert_eq!(keys.status, StatusCode::OK, "{}", keys.text);
    let demoted = call(
        &app,
        &full,
        Method::PATCH,
        &format!("/admin/v1/clients/{id}"),
        Some(json!({"scopes": ""})),
    )
    .await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.text);
    let keys = call(&app, &token, Method::GET, "/admin/v1/keys", None).await;
    assert_refused(&keys, "the same token after its client lost admin:keys");
    let moved = call(
        &app,
        &full,
        Method::PATCH,
        &format!("/admin/v1/clients/{id}"),
        Some(json!({"scopes": "admin:keys", "tenant": "acme"})),
    )
    .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
    let keys = call(&app, &token, Method::GET, "/admin/v1/keys", None).await;
    assert_refused(&keys, "a tenantless token whose client moved into a tenant");
}
both_backends!(a_demotion_takes_effect_at_the_next_request, demotion);

async fn tenant_clients(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    app.user_in("ann", PASSWORD, &[], "api:items:read", Some("acme"))
        .await;
    app.user_in("gus", PASSWORD, &[], "api:items:read", Some("globex"))
        .await;
    app.user_in("root", PASSWORD, &[], "api:items:read", None)
        .await;
    let (id, secret) = app
        .client_from(&NewClient {
            name: "acme-web",
            scopes: "api:items:read",
            grants: &[GrantType::Password],
            roles: &[],
            tenant: Some("acme"),
            ..Default::default()
        })
        .await;
    let ok = app.login((&id, &secret), "ann", PASSWORD, &[]).await;
    assert_eq!(
        ok.status,
        StatusCode::OK,
        "its own tenant's user: {}",
        ok.text
    );
    for outsider in ["gus", "root"] {
        let reply = app.login((&id, &secret), outsider, PASSWORD, &[]).await;
        assert_eq!(
            reply.json()["error"],
            "invalid_grant",
            "{outsider} through acme's client: {}",
            reply.text
        );
        assert_eq!(
            reply.json()["error_description"],
            "invalid username, password or one-time code",
            "no hint why"
        );
    }
}
both_backends!(
    a_tenants_client_signs_in_only_that_tenants_users,
    tenant_clients
);

/// A partial administrator acts on a user while an `admin:full` administrator's promotion of
/// that user is in flight: the check must see the promotion, not the row as it was (on Postgres,
/// where the two transactions really overlap).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_in_flight_is_seen_by_the_check_not_raced() {
    use sqlx::Connection as _;
    let db = TestDb::postgres(common::test_root()).await;
    let app = TestApp::start(config(&db, &[])).await;
    let partial = partial_admin(&app).await;
    let user_id = app
        .user_in("vera", PASSWORD, &[], "api:items:read", None)
        .await;
    // The promotion: locked and written, not yet committed.
    let mut promoter = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut promotion = promoter.begin().await.unwrap();
    sqlx::query("UPDATE users SET scopes = 'admin:full api:items:read' WHERE id = $1")
        .bind(&user_id)
        .execute(&mut *promotion)
        .await
        .unwrap();
    let disabling = {
        let (app, partial, user_id) = (app.clone(), partial.clone(), user_id.clone());
        tokio::spawn(async move {
            app.send(
                Call::new(Method::POST, &format!("/admin/v1/users/{user_id}/disable"))
                    .bearer(&partial),
            )
            .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    promotion.commit().await.unwrap();
    let reply = disabling.await.unwrap();
    assert_refused(&reply, "disabling a user promoted to admin:full meanwhile");
    let disabled: i64 = sqlx::query_scalar("SELECT disabled FROM users WHERE id = $1")
        .bind(&user_id)
        .fetch_one(&app.state.db().pool)
        .await
        .unwrap();
    assert_eq!(disabled, 0, "the refused change was applied");
}
