//! notifier: Kafka → WebSocket rooms (`fanout`, `seat_map`, `rooms`, `ws`, `connection`,
//! `client`, `wire`), waiting-room positions (`queue_push`) and email (`email`).

pub mod client;
pub mod connection;
pub mod email;
pub mod fanout;
pub mod per_user;
pub mod queue_push;
pub mod rooms;
pub mod seat_map;
pub mod wire;
pub mod ws;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use clap::Parser;
use plumbing::jwt::TokenVerifier;
use plumbing::ops::{self, OpsState};
use plumbing::settings::Infra;
use plumbing::store::AggregateStore;

use crate::rooms::Hub;
use crate::ws::{WsConfig, WsState};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "notifier",
    about = "Pushes events to WebSocket clients and sends email"
)]
pub struct Settings {
    #[command(flatten)]
    pub infra: Infra,
    /// The public port: WebSocket `/ws` and `/health`.
    #[arg(long, env = "NOTIFIER_ADDR", default_value = "127.0.0.1:8081")]
    pub http_addr: String,
    /// Operations endpoints (/health, /ready, /metrics, /stats), apart from the public port.
    #[arg(long, env = "OPS_ADDR", default_value = "127.0.0.1:9104")]
    pub ops_addr: String,
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,
    #[arg(long, env = "JWT_ISSUER", default_value = "ticketing")]
    pub jwt_issuer: String,
    #[arg(long, env = "JWT_AUDIENCE", default_value = "ticketing-api")]
    pub jwt_audience: String,
    /// Comma-separated `Origin`s allowed to connect (clients that send no `Origin` are not
    /// browsers and always may); `*` allows any. The default is the web app's own origin
    /// (command-api on its default port), so the pages it serves can connect.
    #[arg(
        long,
        env = "WS_ALLOWED_ORIGINS",
        default_value = "http://127.0.0.1:8080,http://localhost:8080"
    )]
    pub ws_allowed_origins: String,
    /// Names this instance's consumer group (`notifier-<id>`); random when unset.
    #[arg(long, env = "NOTIFIER_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Frames an event room keeps for members that are behind; a member further behind gets
    /// a seat-map resync instead of the frames it missed.
    #[arg(long, env = "WS_CLIENT_BUFFER", default_value_t = 64)]
    pub client_buffer: usize,
    /// A write to a client not done within this many milliseconds drops it (a client that
    /// stopped reading, once its socket buffers are full).
    #[arg(long, env = "WS_SEND_TIMEOUT_MS", default_value_t = 5000)]
    pub send_timeout_ms: u64,
    /// WebSocket connections one user may hold open at once (API.md: 10).
    #[arg(long, env = "WS_MAX_CONNECTIONS_PER_USER", default_value_t = 10)]
    pub max_connections_per_user: usize,
    /// Event rooms one connection may be in (API.md: 20).
    #[arg(long, env = "WS_MAX_SUBSCRIPTIONS", default_value_t = 20)]
    pub max_subscriptions: usize,
    /// Messages a client may send per second, sustained; more are answered `rate_limited`.
    #[arg(long, env = "WS_CLIENT_MESSAGES_PER_SECOND", default_value_t = 10)]
    pub client_messages_per_second: u32,
    /// Messages a client may send at once (a reconnect re-subscribing to all its rooms).
    #[arg(long, env = "WS_CLIENT_MESSAGES_BURST", default_value_t = 30)]
    pub client_messages_burst: u32,
    #[arg(long, env = "WS_HEARTBEAT_SECONDS", default_value_t = 15)]
    pub heartbeat_seconds: u64,
    #[arg(long, env = "WS_IDLE_TIMEOUT_SECONDS", default_value_t = 60)]
    pub idle_timeout_seconds: u64,
    /// Kernel send buffer of each client socket, in bytes. Fixed rather than autotuned, so a
    /// client that stops reading blocks its connection after this much and is then dropped
    /// as slow, and kernel memory per connection stays bounded.
    #[arg(long, env = "WS_SOCKET_SEND_BUFFER", default_value_t = 64 * 1024)]
    pub socket_send_buffer: usize,
    /// How often the waiting-room positions of connected users are re-read (a user gets at
    /// most one `queue_position` frame per place per interval; admissions are immediate).
    #[arg(long, env = "WS_QUEUE_POLL_MS", default_value_t = 2000)]
    pub queue_poll_ms: u64,
    /// Window over which seat changes of one event are merged into one frame.
    #[arg(long, env = "WS_COALESCE_MS", default_value_t = 25)]
    pub coalesce_ms: u64,
    #[command(flatten)]
    pub email: email::EmailSettings,
}

async fn stats(State(hub): State<Arc<Hub>>) -> axum::Json<rooms::Stats> {
    axum::Json(hub.stats())
}

/// Like `ops::serve`, with a fixed send buffer on every accepted socket.
async fn serve(
    addr: &str,
    send_buffer: usize,
    router: Router,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    use axum::serve::ListenerExt;
    let listener = ops::bind(addr).await?.tap_io(move |tcp| {
        if let Err(err) = socket2::SockRef::from(&*tcp).set_send_buffer_size(send_buffer) {
            tracing::warn!(error = %err, "cannot size a socket's send buffer");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}

/// The `Origin` list of `WS_ALLOWED_ORIGINS`; empty (any origin) when it holds `*`.
fn allowed_origins(setting: &str) -> Vec<String> {
    let origins: Vec<String> = setting
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(str::to_owned)
        .collect();
    if origins.iter().any(|o| o == "*") {
        return Vec::new();
    }
    origins
}

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    plumbing::secrets::check("JWT_SECRET", &settings.jwt_secret)?;
    let pool = plumbing::db::connect(
        &settings.infra.database_url,
        settings.infra.database_max_connections,
    )
    .await?;
    let kafka = settings.infra.kafka();
    let shutdown = plumbing::shutdown::on_signal();
    let hub = Hub::new(settings.client_buffer);
    let instance = settings
        .instance_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());

    let fanout_task = fanout::spawn_dedicated(
        hub.clone(),
        settings.infra.database_url.clone(),
        kafka.clone(),
        instance,
        Duration::from_millis(settings.coalesce_ms.max(1)),
        shutdown.clone(),
    );
    let queue_task = tokio::spawn(
        queue_push::QueuePush {
            hub: hub.clone(),
            pool: pool.clone(),
            interval: Duration::from_millis(settings.queue_poll_ms.max(100)),
        }
        .run(shutdown.clone()),
    );
    let email_task = tokio::spawn(email::run(
        settings.email.clone(),
        pool.clone(),
        kafka.clone(),
        settings.jwt_secret.clone(),
        shutdown.clone(),
    ));

    let ws_state = WsState {
        hub: hub.clone(),
        config: Arc::new(WsConfig {
            verifier: TokenVerifier::new(
                settings.jwt_secret.as_bytes(),
                &settings.jwt_issuer,
                &settings.jwt_audience,
            ),
            allowed_origins: allowed_origins(&settings.ws_allowed_origins),
            heartbeat: Duration::from_secs(settings.heartbeat_seconds.max(1)),
            idle_timeout: Duration::from_secs(settings.idle_timeout_seconds.max(1)),
            send_timeout: Duration::from_millis(settings.send_timeout_ms.max(1)),
            max_subscriptions: settings.max_subscriptions,
            client_messages_per_second: settings.client_messages_per_second,
            client_messages_burst: settings.client_messages_burst,
        }),
        shows: AggregateStore::new(pool.clone(), ()),
        user_connections: per_user::UserConnections::new(settings.max_connections_per_user),
    };
    let ops_router = Router::new()
        .route("/stats", get(stats).with_state(hub))
        .merge(ops::router(OpsState::new(pool, kafka, shutdown.clone())));
    let ops_listener = ops::spawn_listener(&settings.ops_addr, ops_router, shutdown.clone())
        .await
        .context("cannot bind OPS_ADDR")?;
    let router = Router::new()
        .route("/ws", get(ws::upgrade).with_state(ws_state))
        .merge(ops::public_router());
    let served = serve(
        &settings.http_addr,
        settings.socket_send_buffer,
        router,
        shutdown.clone(),
    )
    .await;
    shutdown.cancel();
    if let Ok(Err(err)) = fanout_task.await {
        tracing::error!(error = format!("{err:#}"), "fan-out stopped");
    }
    if let Ok(Err(err)) = queue_task.await {
        tracing::error!(error = format!("{err:#}"), "queue positions stopped");
    }
    if let Ok(Err(err)) = email_task.await {
        tracing::error!(error = format!("{err:#}"), "email stopped");
    }
    let _ = ops_listener.await;
    served
}
