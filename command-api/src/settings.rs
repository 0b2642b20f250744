//! Typed configuration of the command-api and relay processes, from the environment (or the
//! same names as flags), validated at start.

use std::time::Duration;

use clap::Args;
pub use plumbing::settings::Infra;

#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "command-api",
    about = "Ticketing HTTP API (commands and queries)"
)]
pub struct Settings {
    #[command(flatten)]
    pub infra: Infra,
    /// Address to listen on; port 0 picks a free port (logged as `LISTENING <addr>`).
    #[arg(long, env = "HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: String,
    /// Operations endpoints (/health, /ready, /metrics), apart from the public port.
    #[arg(long, env = "OPS_ADDR", default_value = "127.0.0.1:9103")]
    pub ops_addr: String,
    #[command(flatten)]
    pub auth: AuthSettings,
    #[command(flatten)]
    pub limits: RateLimitSettings,
    /// How long a hold lasts until `pay`.
    #[arg(long, env = "HOLD_TTL_SECONDS", default_value_t = 600)]
    pub hold_ttl_seconds: u64,
    /// How long the payment provider has to answer once a buyer paid.
    #[arg(long, env = "PAYMENT_TIMEOUT_SECONDS", default_value_t = 120)]
    pub payment_timeout_seconds: u64,
    /// Transfers allowed per seat or place (0 turns transfers off; at most 20).
    #[arg(long, env = "TICKET_MAX_TRANSFERS", default_value_t = 3)]
    pub ticket_max_transfers: u8,
    /// HMAC secret of the payment provider's webhooks (`X-Signature`). Required, at least 32
    /// bytes: with a guessable one anyone could sign "payment succeeded".
    #[arg(long, env = "PAYMENT_WEBHOOK_SECRET", hide_env_values = true)]
    pub payment_webhook_secret: String,
    /// The notifier's WebSocket URL as browsers reach it (the web app connects there);
    /// unset, the pages use `ws://<the page's host>:8081/ws`.
    #[arg(long, env = "NOTIFIER_PUBLIC_URL")]
    pub notifier_public_url: Option<String>,
    #[arg(long, env = "BOOTSTRAP_ADMIN_EMAIL")]
    pub bootstrap_admin_email: Option<String>,
    #[arg(long, env = "BOOTSTRAP_ADMIN_PASSWORD", hide_env_values = true)]
    pub bootstrap_admin_password: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct AuthSettings {
    /// HMAC secret of the HS256 access tokens; shared with the notifier. Required, at least
    /// 32 bytes; ticket codes and idempotency hashes derive from it too.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,
    #[arg(long, env = "JWT_ISSUER", default_value = "ticketing")]
    pub jwt_issuer: String,
    #[arg(long, env = "JWT_AUDIENCE", default_value = "ticketing-api")]
    pub jwt_audience: String,
    #[arg(long, env = "JWT_TTL_SECONDS", default_value_t = 900)]
    pub jwt_ttl_seconds: u64,
    /// Argon2id memory cost in KiB (OWASP's 19 MiB by default). Lower only for tests and
    /// load generation that create many users.
    #[arg(long, env = "ARGON2_MEMORY_KIB", default_value_t = 19_456)]
    pub argon2_memory_kib: u32,
    #[arg(long, env = "ARGON2_ITERATIONS", default_value_t = 2)]
    pub argon2_iterations: u32,
    #[arg(long, env = "ARGON2_PARALLELISM", default_value_t = 1)]
    pub argon2_parallelism: u32,
}

#[derive(Debug, Clone, Args)]
pub struct RateLimitSettings {
    /// Failed logins per (account, client address) per minute; beyond them that client
    /// waits a delay that doubles with each further failure (at most 15 minutes). Other
    /// clients of the same account are not affected.
    #[arg(
        long,
        env = "RATE_LIMIT_FAILED_LOGINS_PER_MINUTE",
        default_value_t = 10
    )]
    pub failed_logins_per_minute: u32,
    /// Behind a reverse proxy: the header it puts the client's address in (its last entry
    /// is used, e.g. `x-forwarded-for`). Unset, the TCP peer's address is the client's.
    #[arg(long, env = "CLIENT_IP_HEADER")]
    pub client_ip_header: Option<String>,
    /// Sustained command rate per user (requests per second).
    #[arg(long, env = "RATE_LIMIT_COMMANDS_PER_SECOND", default_value_t = 50)]
    pub commands_per_second: u32,
    #[arg(long, env = "RATE_LIMIT_COMMANDS_BURST", default_value_t = 100)]
    pub commands_burst: u32,
}

impl Settings {
    pub fn validate(&self) -> anyhow::Result<()> {
        plumbing::secrets::check("JWT_SECRET", &self.auth.jwt_secret)?;
        plumbing::secrets::check("PAYMENT_WEBHOOK_SECRET", &self.payment_webhook_secret)?;
        anyhow::ensure!(
            self.auth.jwt_ttl_seconds > 0,
            "JWT_TTL_SECONDS must be positive"
        );
        anyhow::ensure!(
            self.limits.failed_logins_per_minute > 0
                && self.limits.commands_per_second > 0
                && self.limits.commands_burst > 0,
            "rate limits must be positive"
        );
        // A booking's tickets are numbered in one byte: 10 places, each reissued at most 20
        // times, stay below 256.
        anyhow::ensure!(
            self.ticket_max_transfers <= 20,
            "TICKET_MAX_TRANSFERS must be between 0 and 20"
        );
        anyhow::ensure!(
            self.bootstrap_admin_email.is_some() == self.bootstrap_admin_password.is_some(),
            "set both BOOTSTRAP_ADMIN_EMAIL and BOOTSTRAP_ADMIN_PASSWORD, or neither"
        );
        anyhow::ensure!(
            self.notifier_public_url
                .as_deref()
                .is_none_or(|u| u.starts_with("ws://") || u.starts_with("wss://")),
            "NOTIFIER_PUBLIC_URL must be a ws:// or wss:// URL"
        );
        Ok(())
    }

    pub fn jwt_ttl(&self) -> Duration {
        Duration::from_secs(self.auth.jwt_ttl_seconds)
    }
}

#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "relay",
    about = "Publishes the events table to Kafka, in commit order"
)]
pub struct RelaySettings {
    #[command(flatten)]
    pub infra: Infra,
    /// Operations endpoints (/health, /ready, /metrics).
    #[arg(long, env = "OPS_ADDR", default_value = "127.0.0.1:9100")]
    pub ops_addr: String,
    #[arg(long, env = "RELAY_BATCH_SIZE", default_value_t = 500)]
    pub batch_size: i64,
    /// Pause between polls when the feed is empty, in milliseconds.
    #[arg(long, env = "RELAY_IDLE_POLL_MS", default_value_t = 20)]
    pub idle_poll_ms: u64,
    /// Name of the checkpoint row (one per relayed store).
    #[arg(long, env = "RELAY_NAME", default_value = "main")]
    pub name: String,
}
