//! Shared helpers: the in-process app over a fresh database, and the running stack
//! (command-api, relay, projections as real processes).

#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use clap::Parser;
use http_body_util::BodyExt;
use plumbing::testkit::{self, Service, TestDb};
use serde_json::Value;
use tower::ServiceExt;

use crate::contract;

pub const PASSWORD: &str = "correct horse battery";

/// The app in process (no network), for request/response tests.
pub struct TestApp {
    pub app: Router,
    pub db: TestDb,
    /// The state behind `app`, for tests that look at what it holds (cache sizes).
    pub state: command_api::state::AppState,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl TestApp {
    pub async fn new() -> TestApp {
        let db = testkit::fresh_database().await;
        let prefix = testkit::unique_prefix();
        let settings = command_api::settings::Settings::try_parse_from([
            "command-api",
            "--database-url",
            &db.url,
            "--kafka-brokers",
            &testkit::kafka_brokers(),
            "--kafka-topic-prefix",
            &prefix,
            "--jwt-secret",
            testkit::jwt_secret(),
            "--payment-webhook-secret",
            testkit::webhook_secret(),
            "--argon2-memory-kib",
            "1024",
            "--argon2-iterations",
            "1",
        ])
        .expect("test settings parse");
        let state = command_api::build_state(&settings).await.expect("state");
        TestApp {
            app: command_api::app(state.clone()),
            db,
            state,
        }
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let method_name = method.clone();
        let mut request = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = self
            .app
            .clone()
            .oneshot(request.body(Body::from(body)).expect("request"))
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let content_type = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        contract::assert_response(
            method_name.as_str(),
            path,
            status.as_u16(),
            content_type,
            &bytes,
        );
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn json(&self, method: Method, path: &str, body: &str, token: Option<&str>) -> Reply {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a.as_str()));
        }
        self.raw(method, path, body.as_bytes().to_vec(), &headers)
            .await
    }

    pub async fn register_and_login(&self, email: &str) -> String {
        let reg = self
            .json(
                Method::POST,
                "/api/auth/register",
                &serde_json::json!({"email": email, "password": PASSWORD, "name": "Test"})
                    .to_string(),
                None,
            )
            .await;
        assert_eq!(reg.status, StatusCode::CREATED, "register: {:?}", reg.body);
        let login = self
            .json(
                Method::POST,
                "/api/auth/login",
                &serde_json::json!({"email": email, "password": PASSWORD}).to_string(),
                None,
            )
            .await;
        assert_eq!(login.status, StatusCode::OK, "login: {:?}", login.body);
        login.body["access_token"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    /// A token for `user_id` with `roles`, signed like command-api's own.
    pub fn token_for(&self, user_id: uuid::Uuid, roles: &[&str]) -> String {
        mint_token(user_id, roles)
    }

    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.db.pool)
            .await
            .expect("count events")
    }
}

/// Asserts a problem+json answer with `status`.
pub fn assert_problem(reply: &Reply, status: StatusCode, context: &str) {
    assert_eq!(reply.status, status, "{context}: {:?}", reply.body);
    assert_eq!(
        reply
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "{context}: content type"
    );
    for member in ["type", "title", "status", "detail"] {
        assert!(
            reply.body.get(member).is_some(),
            "{context}: problem lacks {member}: {:?}",
            reply.body
        );
    }
    assert_eq!(reply.body["status"], status.as_u16(), "{context}");
}

/// A token for `user_id` with `roles`, signed with the test secret like command-api's own:
/// for tests that need many callers without registering each.
pub fn mint_token(user_id: uuid::Uuid, roles: &[&str]) -> String {
    let now = chrono::Utc::now().timestamp();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"sub": user_id, "roles": roles, "iss": "ticketing",
                            "aud": "ticketing-api", "iat": now, "exp": now + 600}),
        &jsonwebtoken::EncodingKey::from_secret(testkit::jwt_secret().as_bytes()),
    )
    .expect("token")
}

/// command-api (one or more instances), relay and projections as processes over one fresh
/// database and prefix.
pub struct Stack {
    pub db: TestDb,
    pub env: HashMap<String, String>,
    pub api: Option<Service>,
    /// Further command-api instances beyond `api`.
    pub more_apis: Vec<Service>,
    pub relay: Service,
    pub projections: Service,
    /// The payment simulator and saga, when started with `with_payments`.
    pub payment_sim: Option<Service>,
    pub saga: Option<Service>,
    pub notifiers: Vec<Service>,
    /// Waiting-room admitters started with `start_admitter`.
    pub admitters: Vec<Service>,
    pub http: reqwest::Client,
}

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin password 1";

impl Stack {
    pub async fn start() -> Stack {
        Self::start_with(1).await
    }

    pub async fn start_with(api_instances: usize) -> Stack {
        Self::start_configured(api_instances, &[]).await
    }

    /// A stack with `overrides` of its environment (e.g. short hold or payment timeouts).
    pub async fn start_configured(api_instances: usize, overrides: &[(&str, &str)]) -> Stack {
        let db = testkit::fresh_database().await;
        let prefix = testkit::unique_prefix();
        let mut env = testkit::service_env(&db.url, &prefix);
        for (k, v) in overrides {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        env.insert("BOOTSTRAP_ADMIN_EMAIL".into(), ADMIN_EMAIL.into());
        env.insert("BOOTSTRAP_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into());
        let relay = Service::start("relay", &env, true).await;
        let projections = Service::start("projections", &env, true).await;
        let api = Service::start("command-api", &env, true).await;
        let mut more_apis = Vec::new();
        for _ in 1..api_instances {
            more_apis.push(Service::start("command-api", &env, true).await);
        }
        Stack {
            db,
            env,
            api: Some(api),
            more_apis,
            relay,
            projections,
            payment_sim: None,
            saga: None,
            notifiers: Vec::new(),
            admitters: Vec::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api.as_ref().expect("api running").url())
    }

    /// The URL of `path` on command-api instance `i` (0 is `api`).
    pub fn url_on(&self, i: usize, path: &str) -> String {
        let service = if i == 0 {
            self.api.as_ref().expect("api running")
        } else {
            &self.more_apis[i - 1]
        };
        format!("{}{path}", service.url())
    }

    /// The URL of `path` on the operations listener of command-api instance `i`.
    pub fn ops_url_on(&self, i: usize, path: &str) -> String {
        let service = if i == 0 {
            self.api.as_ref().expect("api running")
        } else {
            &self.more_apis[i - 1]
        };
        format!("{}{path}", service.ops_url())
    }

    pub fn api_count(&self) -> usize {
        1 + self.more_apis.len()
    }

    /// Registers `email`, has the bootstrap admin grant it the organizer role, logs it in.
    pub async fn organizer(&self, email: &str) -> String {
        let reply = self.register(email).await;
        assert_eq!(reply.status(), 201, "register organizer");
        let user_id = reply.json::<Value>().await.expect("json")["user_id"]
            .as_str()
            .expect("id")
            .to_owned();
        let admin = self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let granted = self
            .http
            .post(self.url(&format!("/api/admin/users/{user_id}/roles")))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"role": "organizer"}))
            .send()
            .await
            .expect("grant");
        let path = format!("/api/admin/users/{user_id}/roles");
        let granted = contract::checked("POST", &path, granted).await;
        assert_eq!(granted.status(), 200, "grant organizer");
        self.login(email, PASSWORD).await
    }

    /// Sends `method path` with a token and JSON body; returns status, headers and JSON.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Value) {
        let method_name = method.clone();
        let mut request = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = request.send().await.expect("request");
        let reply = contract::checked(method_name.as_str(), path, reply).await;
        let status = reply.status();
        let headers = reply.headers().clone();
        let body = reply.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    /// The whole purchase path: command-api, relay, projections, the payment simulator
    /// (answering to the first command-api) and the saga.
    pub async fn with_payments(overrides: &[(&str, &str)]) -> Stack {
        let mut stack = Self::start_configured(1, overrides).await;
        let webhook = stack.url("/api/payments/webhook");
        stack.env.insert("PAYMENT_WEBHOOK_URL".into(), webhook);
        stack
            .env
            .insert("PAYMENT_SIM_ADDR".into(), "127.0.0.1:0".into());
        stack
            .env
            .entry("PAYMENT_SIM_LATENCY_MS".into())
            .or_insert_with(|| "50".into());
        let sim = Service::start("payment-sim", &stack.env, true).await;
        stack.env.insert("PAYMENT_PROVIDER_URL".into(), sim.url());
        stack
            .env
            .entry("SAGA_POLL_MS".into())
            .or_insert_with(|| "50".into());
        stack.saga = Some(Service::start("saga-orchestrator", &stack.env, true).await);
        stack.payment_sim = Some(sim);
        stack
    }

    /// Starts a notifier (one more each call) and returns its base URL (`http://…`).
    pub async fn start_notifier(&mut self, overrides: &[(&str, &str)]) -> String {
        let mut env = self.env.clone();
        for (k, v) in overrides {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        let notifier = Service::start("notifier", &env, true).await;
        let url = notifier.url();
        let stats = format!("{}/stats", notifier.ops_url());
        self.notifiers.push(notifier);
        // Live fan-out starts at the end of every partition as it stood when the instance
        // reported itself consuming; events before that are not for this instance.
        testkit::eventually(
            "the notifier to consume",
            Duration::from_secs(60),
            || async {
                let stats: Value = self.http.get(&stats).send().await.ok()?.json().await.ok()?;
                (stats["consuming"] == true).then_some(())
            },
        )
        .await;
        url
    }

    /// The operations listener of the notifier at `public_url` (as `start_notifier`
    /// returned it).
    pub fn notifier_ops_url(&self, public_url: &str) -> String {
        self.notifiers
            .iter()
            .find(|n| n.url() == public_url)
            .expect("a notifier this stack started")
            .ops_url()
    }

    /// The `/stats` URL of the notifier at `public_url`.
    pub fn notifier_stats_url(&self, public_url: &str) -> String {
        format!("{}/stats", self.notifier_ops_url(public_url))
    }

    /// Starts one more waiting-room admitter (the first one started becomes active).
    pub async fn start_admitter(&mut self) {
        let mut env = self.env.clone();
        env.insert("ADMITTER_TICK_MS".into(), "50".into());
        self.admitters
            .push(Service::start("admitter", &env, true).await);
    }

    /// Kills the saga (SIGKILL) and starts it again.
    pub async fn restart_saga(&mut self) {
        if let Some(saga) = self.saga.take() {
            saga.kill().await;
        }
        self.saga = Some(Service::start("saga-orchestrator", &self.env, true).await);
    }

    /// Kills the payment simulator (SIGKILL) and starts it again on the same address.
    pub async fn restart_payment_sim(&mut self) {
        let addr = self
            .payment_sim
            .as_ref()
            .and_then(|s| s.addr.clone())
            .expect("sim running");
        if let Some(sim) = self.payment_sim.take() {
            sim.kill().await;
        }
        let mut env = self.env.clone();
        env.insert("PAYMENT_SIM_ADDR".into(), addr);
        self.payment_sim = Some(Service::start("payment-sim", &env, true).await);
    }

    /// The simulator's ledger: `{charges: [{payment_id, booking_id, status, refunded, …}]}`.
    pub async fn ledger(&self) -> Value {
        let url = format!(
            "{}/ledger",
            self.payment_sim.as_ref().expect("sim running").ops_url()
        );
        self.http
            .get(url)
            .send()
            .await
            .expect("ledger")
            .json()
            .await
            .expect("json")
    }

    /// Kills command-api (SIGKILL) and starts a new one on a new port.
    pub async fn restart_api(&mut self) {
        if let Some(api) = self.api.take() {
            api.kill().await;
        }
        self.api = Some(Service::start("command-api", &self.env, true).await);
    }

    pub async fn register(&self, email: &str) -> reqwest::Response {
        let reply = self
            .http
            .post(self.url("/api/auth/register"))
            .json(&serde_json::json!({"email": email, "password": PASSWORD, "name": "Test User"}))
            .send()
            .await
            .expect("register request");
        contract::checked("POST", "/api/auth/register", reply).await
    }

    /// Registers and logs in `n` buyers (`{tag}{i}@example.com`), a few at a time: a
    /// thousand argon2 hashes at once would only queue behind the server's hashing slots and
    /// answer 503 on a loaded machine.
    pub async fn buyers(&self, n: usize, tag: &str) -> Vec<String> {
        use futures::stream::{self, StreamExt};
        stream::iter(0..n)
            .map(|i| async move {
                let email = format!("{tag}{i}@example.com");
                assert_eq!(
                    self.register(&email).await.status(),
                    201,
                    "register {email}"
                );
                self.login(&email, PASSWORD).await
            })
            .buffered(16)
            .collect()
            .await
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let reply = self
            .http
            .post(self.url("/api/auth/login"))
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await
            .expect("login request");
        let reply = contract::checked("POST", "/api/auth/login", reply).await;
        assert_eq!(reply.status(), 200, "login of {email}");
        let body: Value = reply.json().await.expect("login body");
        body["access_token"].as_str().expect("token").to_owned()
    }
}
