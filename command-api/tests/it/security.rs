//! Secure-by-default checks (issue 22): services refuse to start without their secrets,
//! operations endpoints stay off the public port, per-user resources stay bounded.

use std::process::Stdio;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use plumbing::testkit;
use serde_json::json;
use uuid::Uuid;

use plumbing::testkit::Service;

use crate::support::{Stack, TestApp, assert_problem, mint_token};

/// Runs `binary` with the test environment minus `unset` and `overrides`; it must exit on
/// its own. Returns (success, stderr + stdout).
async fn run_to_exit(binary: &str, unset: &str, overrides: &[(&str, &str)]) -> (bool, String) {
    let mut env = testkit::service_env(&testkit::database_url(), &testkit::unique_prefix());
    env.remove(unset);
    for (k, v) in overrides {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    let child = tokio::process::Command::new(testkit::binary(binary))
        .env_clear()
        .envs(&env)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn service");
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{binary} without {unset} kept running"))
        .expect("wait");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn every_service_without_its_secret_exits_non_zero_naming_it() {
    for (binary, secret) in [
        ("command-api", "JWT_SECRET"),
        ("command-api", "PAYMENT_WEBHOOK_SECRET"),
        ("notifier", "JWT_SECRET"),
        ("payment-sim", "PAYMENT_WEBHOOK_SECRET"),
    ] {
        let (success, output) = run_to_exit(binary, secret, &[]).await;
        assert!(!success, "{binary} started without {secret}");
        assert!(
            output.contains(secret),
            "{binary}'s message names {secret}: {output}"
        );
    }
}

#[tokio::test]
async fn services_refuse_short_and_published_secrets() {
    let former_default = "dev-only-secret-change-me-0123456789abcdef";
    for (binary, secret, value, says) in [
        (
            "command-api",
            "JWT_SECRET",
            "short-secret",
            "at least 32 bytes",
        ),
        ("command-api", "JWT_SECRET", former_default, "published"),
        (
            "command-api",
            "PAYMENT_WEBHOOK_SECRET",
            "x",
            "at least 32 bytes",
        ),
        ("notifier", "JWT_SECRET", former_default, "published"),
        (
            "payment-sim",
            "PAYMENT_WEBHOOK_SECRET",
            "",
            "PAYMENT_WEBHOOK_SECRET",
        ),
    ] {
        let (success, output) = run_to_exit(binary, "", &[(secret, value)]).await;
        assert!(!success, "{binary} started with {secret}={value:?}");
        assert!(
            output.contains(says),
            "{binary} with {secret}={value:?} says {says:?}: {output}"
        );
    }
}

#[tokio::test]
async fn readiness_and_metrics_are_not_on_the_public_port() {
    let mut stack = Stack::with_payments(&[]).await;
    let notifier = stack.start_notifier(&[]).await;
    let api = stack.api.as_ref().expect("api");
    let sim = stack.payment_sim.as_ref().expect("payment-sim");
    assert_ne!(
        api.ops_url(),
        api.url(),
        "command-api has an operations listener"
    );

    let on_public = [
        (api.url(), "/metrics"),
        (api.url(), "/ready"),
        (notifier.clone(), "/metrics"),
        (notifier.clone(), "/ready"),
        (notifier.clone(), "/stats"),
        (sim.url(), "/ledger"),
    ];
    for (base, path) in on_public {
        let reply = stack
            .http
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("request");
        assert_eq!(reply.status(), 404, "{base}{path} is not public");
    }
    for base in [api.url(), notifier.clone(), sim.url()] {
        let reply = stack
            .http
            .get(format!("{base}/health"))
            .send()
            .await
            .expect("health");
        assert_eq!(reply.status(), 200, "{base}/health stays public");
    }

    // On the operations listener, readiness comes from the background probe.
    let ready = testkit::eventually(
        "command-api's operations listener to report ready",
        Duration::from_secs(30),
        || async {
            let r = stack
                .http
                .get(format!("{}/ready", api.ops_url()))
                .send()
                .await
                .ok()?;
            (r.status() == 200).then_some(r)
        },
    )
    .await;
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body, serde_json::json!({"postgres": true, "kafka": true}));
    let metrics = stack
        .http
        .get(format!("{}/metrics", api.ops_url()))
        .send()
        .await
        .expect("metrics");
    assert_eq!(metrics.status(), 200);
    let stats = stack
        .http
        .get(stack.notifier_stats_url(&notifier))
        .send()
        .await
        .expect("stats");
    assert_eq!(stats.status(), 200);
    let ledger = stack
        .http
        .get(format!("{}/ledger", sim.ops_url()))
        .send()
        .await
        .expect("ledger");
    assert_eq!(ledger.status(), 200);
}

#[tokio::test]
async fn requests_for_ids_that_do_not_exist_leave_nothing_in_the_caches() {
    let app = TestApp::new().await;
    for _ in 0..200 {
        // A new caller each time: the per-user command limit is not what is tested here.
        let token = mint_token(Uuid::new_v4(), &["customer", "organizer"]);
        let event_id = Uuid::new_v4();
        let booking = app
            .json(
                Method::POST,
                "/api/bookings",
                &json!({"event_id": event_id, "seats": ["stalls:A:1"]}).to_string(),
                Some(&token),
            )
            .await;
        assert_problem(
            &booking,
            StatusCode::UNPROCESSABLE_ENTITY,
            "booking on no event",
        );
        let pay = app
            .json(
                Method::POST,
                &format!("/api/bookings/{}/pay", Uuid::new_v4()),
                r#"{"payment_token":"tok_visa"}"#,
                Some(&token),
            )
            .await;
        assert_problem(&pay, StatusCode::NOT_FOUND, "paying no booking");
        let join = app
            .json(
                Method::POST,
                &format!("/api/events/{event_id}/queue"),
                "",
                Some(&token),
            )
            .await;
        assert_problem(&join, StatusCode::NOT_FOUND, "joining no event's queue");
    }
    assert_eq!(app.state.shows.cached_streams(), 0, "shows cached");
    assert_eq!(app.state.bookings.cached_streams(), 0, "bookings cached");
    assert_eq!(app.state.inventory.cached_streams(), 0, "inventory cached");
}

#[tokio::test]
async fn a_position_beyond_the_stores_head_is_refused_at_once() {
    let app = TestApp::new().await;
    // Well-formed, but naming an event nobody wrote: it would otherwise wait 5 s per call.
    let forged = plumbing::position::Position::from(vec![plumbing::position::PositionEntry {
        aggregate_type: "show".into(),
        aggregate_id: Uuid::new_v4().to_string(),
        sequence: 1,
    }])
    .encode();
    for path in [
        "/api/events",
        &format!("/api/events/{}/availability", Uuid::new_v4()),
    ] {
        let reply = app
            .raw(
                Method::GET,
                path,
                Vec::new(),
                &[("x-min-position", &forged)],
            )
            .await;
        assert_problem(&reply, StatusCode::BAD_REQUEST, path);
    }
}

/// A client whose connections come from `address` (any of 127/8 reaches the loopback
/// listener, so each address is a different client to the server).
fn client_from(address: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(address))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

#[tokio::test]
async fn a_locked_account_still_logs_in_from_another_client() {
    let stack = Stack::start().await;
    let email = "locked@example.com";
    assert_eq!(stack.register(email).await.status(), 201);
    let login = |client: &reqwest::Client, password: &str| {
        client
            .post(stack.url("/api/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
    };

    let attacker = client_from([127, 0, 0, 2]);
    for i in 0..10 {
        let reply = login(&attacker, "wrong password").await.expect("login");
        assert_eq!(reply.status(), 401, "attempt {i}");
    }
    let locked = login(&attacker, "wrong password").await.expect("login");
    assert_eq!(locked.status(), 429, "the guessing client is locked out");
    assert!(locked.headers().contains_key("retry-after"));
    let right_from_attacker = login(&attacker, crate::support::PASSWORD)
        .await
        .expect("login");
    assert_eq!(
        right_from_attacker.status(),
        429,
        "the locked client waits, even with the right password"
    );

    let owner = client_from([127, 0, 0, 3]);
    let reply = login(&owner, crate::support::PASSWORD)
        .await
        .expect("login");
    assert_eq!(
        reply.status(),
        200,
        "the owner logs in from their own client"
    );
}

#[tokio::test]
async fn anonymous_requests_store_no_idempotency_keys() {
    let app = TestApp::new().await;
    for i in 0..20 {
        let key = Uuid::new_v4().to_string();
        let reply = app
            .raw(
                Method::POST,
                "/api/auth/register",
                json!({"email": format!("anon{i}@example.com"), "password": crate::support::PASSWORD, "name": "A"})
                    .to_string()
                    .into_bytes(),
                &[("content-type", "application/json"), ("idempotency-key", &key)],
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        assert!(!reply.headers.contains_key("idempotent-replayed"));
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM idempotency_keys")
        .fetch_one(&app.db.pool)
        .await
        .expect("count keys");
    assert_eq!(stored, 0, "anonymous requests left idempotency rows");

    // A signed-in caller's key is still stored and replayed.
    let token = app.register_and_login("keyed@example.com").await;
    let address =
        br#"{"label":"h","line1":"1 St","city":"X","postal_code":"1","country":"DE"}"#.to_vec();
    let headers = [
        ("authorization", format!("Bearer {token}")),
        ("content-type", "application/json".to_owned()),
        ("idempotency-key", "same".to_owned()),
    ];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first = app
        .raw(
            Method::POST,
            "/api/users/addresses",
            address.clone(),
            &headers,
        )
        .await;
    let again = app
        .raw(Method::POST, "/api/users/addresses", address, &headers)
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(again.status, StatusCode::CREATED);
    assert!(again.headers.contains_key("idempotent-replayed"));
}

/// The application role the services run as: the cluster's own `ticketing_app` (made by
/// compose/postgres.sh; compose/test.sh passes its password as `TEST_APP_DATABASE_PASSWORD`,
/// and `TEST_APP_DATABASE_ROLE` may name another), or, on a cluster whose owner may still
/// create roles, one made for this test and dropped at the end.
struct AppRole {
    name: String,
    password: String,
    made_here: bool,
}

impl AppRole {
    async fn create(owner: &sqlx::PgPool) -> AppRole {
        if let Ok(password) = std::env::var("TEST_APP_DATABASE_PASSWORD") {
            return AppRole {
                name: std::env::var("TEST_APP_DATABASE_ROLE")
                    .unwrap_or_else(|_| "ticketing_app".into()),
                password,
                made_here: false,
            };
        }
        let role = AppRole {
            name: format!("app_{}", Uuid::new_v4().simple()),
            password: Uuid::new_v4().simple().to_string(),
            made_here: true,
        };
        sqlx::query(&format!(
            "CREATE ROLE {} LOGIN PASSWORD '{}'",
            role.name, role.password
        ))
        .execute(owner)
        .await
        .expect(
            "create an application role: set TEST_APP_DATABASE_PASSWORD to the password of the \
             cluster's ticketing_app (compose/test.sh does), as the owner may not create roles",
        );
        role
    }

    /// `db_url` (the owner's) with this role's credentials.
    fn url(&self, db_url: &str) -> String {
        let (_, rest) = db_url.split_once('@').expect("URL with credentials");
        format!("postgres://{}:{}@{rest}", self.name, self.password)
    }

    async fn remove(self, owner: &sqlx::PgPool) {
        if !self.made_here {
            // The cluster's role stays; its grants were on this test's database only.
            return;
        }
        for statement in [
            format!("DROP OWNED BY {}", self.name),
            format!("DROP ROLE {}", self.name),
        ] {
            sqlx::query(&statement)
                .execute(owner)
                .await
                .expect("drop the application role");
        }
    }
}

fn permission_denied(result: Result<sqlx::postgres::PgQueryResult, sqlx::Error>) -> bool {
    matches!(result, Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42501"))
}

#[tokio::test]
async fn the_application_role_cannot_drop_table_events_yet_runs_the_services() {
    let db = testkit::fresh_database().await;
    let prefix = testkit::unique_prefix();
    let role = AppRole::create(&db.pool).await;

    // The owner migrates (done) and grants: `projections migrate --grant-to`.
    let mut env = testkit::service_env(&db.url, &prefix);
    let migrate = tokio::process::Command::new(testkit::binary("projections"))
        .envs(&env)
        .args(["migrate", "--grant-to", &role.name])
        .output()
        .await
        .expect("run projections migrate");
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );

    let app_url = role.url(&db.url);
    let app = sqlx::PgPool::connect(&app_url)
        .await
        .expect("connect as the app role");
    for statement in [
        "DROP TABLE events",
        "DELETE FROM events",
        "UPDATE events SET payload = payload",
        "TRUNCATE events",
        "CREATE TABLE mine (x int)",
        "ALTER TABLE user_profile_view ADD COLUMN x int",
    ] {
        let result = sqlx::query(statement).execute(&app).await;
        assert!(
            permission_denied(result),
            "the application role may not: {statement}"
        );
    }
    app.close().await;

    // The services run as that role: commands append events, the relay and a projection
    // move them into a read model.
    env.insert("DATABASE_URL".into(), app_url);
    let relay = Service::start("relay", &env, true).await;
    let projections = Service::start("projections", &env, true).await;
    let api = Service::start("command-api", &env, true).await;
    let http = reqwest::Client::new();
    let registered = http
        .post(format!("{}/api/auth/register", api.url()))
        .json(&json!({"email": "app-role@example.com", "password": crate::support::PASSWORD, "name": "A"}))
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status(), 201);
    let position = registered
        .headers()
        .get("x-event-position")
        .expect("position")
        .to_str()
        .expect("ascii")
        .to_owned();
    let login: serde_json::Value = http
        .post(format!("{}/api/auth/login", api.url()))
        .json(&json!({"email": "app-role@example.com", "password": crate::support::PASSWORD}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let token = login["access_token"].as_str().expect("token").to_owned();
    let profile = testkit::eventually(
        "the profile read model to have the registration",
        Duration::from_secs(60),
        || async {
            let r = http
                .get(format!("{}/api/users/profile", api.url()))
                .bearer_auth(&token)
                .header("x-min-position", &position)
                .send()
                .await
                .ok()?;
            (r.status() == 200 && r.headers().get("x-consistency").is_none()).then_some(r)
        },
    )
    .await;
    let profile: serde_json::Value = profile.json().await.expect("json");
    assert_eq!(profile["email"], "app-role@example.com");

    drop((relay, projections, api));
    role.remove(&db.pool).await;
}

#[tokio::test]
async fn the_schema_owner_is_no_superuser_and_may_create_databases_but_no_roles() {
    // The tests' URL is the schema owner's, as the migrations and the replay CLI use it.
    let owner = sqlx::PgPool::connect(&testkit::database_url())
        .await
        .expect("connect as the owner");
    let (superuser, create_role, create_db, replication, bypass_rls): (
        bool,
        bool,
        bool,
        bool,
        bool,
    ) = sqlx::query_as(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls
               FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&owner)
    .await
    .expect("the owner's attributes");
    assert!(!superuser, "the schema owner is not a superuser");
    assert!(
        !create_role,
        "nor may it create roles (a way to any privilege)"
    );
    assert!(
        !replication && !bypass_rls,
        "nor replicate or bypass row security"
    );
    assert!(create_db, "it creates the tests' databases");
    let owns_database: bool = sqlx::query_scalar(
        "SELECT pg_get_userbyid(datdba) = current_user FROM pg_database
          WHERE datname = current_database()",
    )
    .fetch_one(&owner)
    .await
    .expect("the database's owner");
    assert!(owns_database, "it owns its database");
    for statement in [
        format!("CREATE ROLE intruder_{} SUPERUSER", Uuid::new_v4().simple()),
        "ALTER SYSTEM SET fsync = off".to_owned(),
    ] {
        assert!(
            permission_denied(sqlx::query(&statement).execute(&owner).await),
            "the owner may not: {statement}"
        );
    }
    owner.close().await;
}
