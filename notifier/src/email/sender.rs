//! The SMTP sender: lettre's async transport on tokio, plain or with required STARTTLS.

use std::time::Duration;

use anyhow::Context;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::{self, AsyncSmtpTransport};
use lettre::{AsyncTransport, Message, Tokio1Executor};

use super::settings::EmailSettings;

/// Longest one SMTP exchange may take before it counts as failed (and is retried).
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a mail was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The server answered 5xx: the same mail would be refused again.
    #[error("SMTP server refused the mail: {0}")]
    Refused(smtp::Error),
    /// Connection, TLS, timeout or a 4xx answer: another try may succeed.
    #[error("SMTP send failed: {0}")]
    Failed(smtp::Error),
}

pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpSender {
    pub fn new(settings: &EmailSettings, host: &str) -> anyhow::Result<Self> {
        let builder = if settings.smtp_starttls {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .with_context(|| format!("cannot set up STARTTLS to {host}"))?
        } else {
            // No TLS: for local relays and test sinks; STARTTLS is opt-in by setting.
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        };
        let mut builder = builder.port(settings.smtp_port).timeout(Some(SMTP_TIMEOUT));
        match (&settings.smtp_username, &settings.smtp_password) {
            (Some(user), Some(password)) => {
                builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
            }
            (None, None) => {}
            _ => anyhow::bail!("SMTP_USERNAME and SMTP_PASSWORD must be set together"),
        }
        Ok(Self {
            transport: builder.build(),
        })
    }

    /// Returns once the server accepted the mail for delivery.
    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(err) if err.is_permanent() => Err(SendError::Refused(err)),
            Err(err) => Err(SendError::Failed(err)),
        }
    }
}
