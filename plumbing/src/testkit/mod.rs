//! Test support shared by the integration tests of every crate: a fresh database per test,
//! unique topic prefixes, polling with deadlines, and the real service binaries started as
//! processes (killable with SIGKILL or stopped with SIGTERM).
//!
//! Environment: `TEST_DATABASE_URL` (a superuser URL of the shared cluster),
//! `TEST_ISOLATED_DATABASE_URL` (a second cluster for tests that hold transactions open),
//! `KAFKA_BROKERS`.

#![allow(clippy::unwrap_used)]

pub mod smtp_sink;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;
use uuid::Uuid;

use crate::kafka::KafkaSettings;

pub fn database_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://ticketing:ticketing@127.0.0.1:5432/ticketing".into())
}

pub fn isolated_database_url() -> String {
    std::env::var("TEST_ISOLATED_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://ticketing:ticketing@127.0.0.1:5433/ticketing".into())
}

pub fn kafka_brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// A database created for one test, migrated, with its URL for spawned services.
pub struct TestDb {
    pub url: String,
    pub pool: PgPool,
}

/// Creates a new database on the cluster of `server_url` and applies the migrations.
pub async fn fresh_database_on(server_url: &str) -> TestDb {
    let name = format!("t_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(server_url)
        .await
        .expect("test PostgreSQL must be running (compose/test.sh starts it)");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create test database");
    admin.close().await.ok();
    let (base, _) = server_url
        .rsplit_once('/')
        .expect("URL has a database path");
    let url = format!("{base}/{name}");
    let pool = PgPoolOptions::new()
        .max_connections(20)
        .connect(&url)
        .await
        .expect("connect to test database");
    crate::db::migrator()
        .await
        .expect("migrations")
        .run(&pool)
        .await
        .expect("migrate test database");
    TestDb { url, pool }
}

pub async fn fresh_database() -> TestDb {
    fresh_database_on(&database_url()).await
}

/// A topic and group prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("t{}.", &Uuid::new_v4().simple().to_string()[..12])
}

pub fn kafka(prefix: &str) -> KafkaSettings {
    KafkaSettings {
        brokers: kafka_brokers(),
        topic_prefix: prefix.to_owned(),
        partitions: 3,
        replication_factor: 1,
    }
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(10);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// Path of a workspace binary; `cargo build --workspace` must have built it.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test binary> → target/<profile>/<name>
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first",
        path.display()
    );
    path
}

/// A service binary running as a child process. Dropping it kills it (SIGKILL).
pub struct Service {
    pub name: String,
    child: Child,
    /// The `LISTENING <addr>` it printed, if it serves HTTP.
    pub addr: Option<String>,
    /// The `OPS_LISTENING <addr>` it printed before, when its operations endpoints have a
    /// listener apart from its public port (command-api, notifier, payment-sim).
    pub ops_addr: Option<String>,
}

impl Service {
    /// Starts `name` with `env`; when `wait_listening`, waits for its `LISTENING` line.
    pub async fn start(name: &str, env: &HashMap<String, String>, wait_listening: bool) -> Service {
        let mut child = Command::new(binary(name))
            .envs(env)
            .env(
                "RUST_LOG",
                std::env::var("SERVICE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut addr = None;
        let mut ops_addr = None;
        if wait_listening {
            let found = tokio::time::timeout(Duration::from_secs(60), async {
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(a) = line.strip_prefix("OPS_LISTENING ") {
                        ops_addr = Some(a.trim().to_owned());
                    } else if let Some(a) = line.strip_prefix("LISTENING ") {
                        return Some(a.trim().to_owned());
                    }
                }
                None
            })
            .await
            .ok()
            .flatten();
            addr = Some(found.unwrap_or_else(|| panic!("{name} did not start listening")));
        }
        // Keep draining stdout so the child never blocks on a full pipe; what it logs (WARN
        // and above by default, `SERVICE_LOG` to change) goes to the test's stderr.
        let tag = name.to_owned();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[{tag}] {line}");
            }
        });
        Service {
            name: name.to_owned(),
            child,
            addr,
            ops_addr,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr.as_ref().expect("service listens"))
    }

    /// Where its operations endpoints are: the separate listener when it has one, else its
    /// only address (relay, projections, saga, admitter).
    pub fn ops_url(&self) -> String {
        match &self.ops_addr {
            Some(addr) => format!("http://{addr}"),
            None => self.url(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("kill");
    }

    /// SIGTERM, then waits for a clean exit; returns whether it exited successfully.
    pub async fn terminate(mut self, timeout: Duration) -> bool {
        let pid = self.pid().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().await;
        assert!(
            sent.is_ok_and(|s| s.success()),
            "cannot signal {}",
            self.name
        );
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) => status.success(),
            _ => false,
        }
    }

    /// Whether the process has exited (without waiting).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

/// Environment for a service bound to `db` and `prefix`, on a free port.
pub fn service_env(db_url: &str, prefix: &str) -> HashMap<String, String> {
    HashMap::from([
        ("DATABASE_URL".into(), db_url.to_owned()),
        ("DATABASE_MAX_CONNECTIONS".into(), "10".into()),
        ("KAFKA_BROKERS".into(), kafka_brokers()),
        ("KAFKA_TOPIC_PREFIX".into(), prefix.to_owned()),
        ("KAFKA_PARTITIONS".into(), "3".into()),
        ("HTTP_ADDR".into(), "127.0.0.1:0".into()),
        ("OPS_ADDR".into(), "127.0.0.1:0".into()),
        ("NOTIFIER_ADDR".into(), "127.0.0.1:0".into()),
        ("JWT_SECRET".into(), jwt_secret().into()),
        ("PAYMENT_WEBHOOK_SECRET".into(), webhook_secret().into()),
        ("JWT_ISSUER".into(), "ticketing".into()),
        ("JWT_AUDIENCE".into(), "ticketing-api".into()),
        // Cheap hashing for tests that register many users (never the defaults in code).
        ("ARGON2_MEMORY_KIB".into(), "1024".into()),
        ("ARGON2_ITERATIONS".into(), "1".into()),
        ("RELAY_IDLE_POLL_MS".into(), "10".into()),
    ])
}

/// This test process's token secret: random per run, as services refuse known values.
pub fn jwt_secret() -> &'static str {
    static SECRET: OnceLock<String> = OnceLock::new();
    SECRET.get_or_init(random_secret)
}

/// This test process's payment webhook secret (random per run).
pub fn webhook_secret() -> &'static str {
    static SECRET: OnceLock<String> = OnceLock::new();
    SECRET.get_or_init(random_secret)
}

fn random_secret() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}
