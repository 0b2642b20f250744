//! Email to buyers: booking confirmation, cancellation, expiry and refund over SMTP, and
//! both parties of a ticket transfer.
//!
//! One consumer group (`notifier-email`) shared by every notifier instance, so each event is
//! mailed by one of them; at-least-once like every consumer, with a stable Message-ID per
//! (booking, state) and a sent-log (`sent_log`) so a redelivery does not mail again. SMTP
//! failures are retried with backoff by the consumer runtime, then dead-lettered to
//! `ticketing.dlq.notifier-email` while the consumer goes on.

mod handler;
mod message;
mod sender;
mod sent_log;
mod settings;
mod transfer_mail;

use std::sync::Arc;

use anyhow::Context;
use lettre::message::Mailbox;
use plumbing::consumer::{self, ConsumerSettings};
use plumbing::kafka::KafkaSettings;
use schemas::ticket_codes::TicketCodes;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub use handler::EmailHandler;
pub use message::{BookingMail, MailState, TicketLine, message_id};
pub use sender::{SendError, SmtpSender};
pub use settings::EmailSettings;
pub use transfer_mail::{TransferMail, TransferSide, transfer_message_id};

/// The consumer name: the group id (prefixed) and the dead-letter topic's suffix.
pub const CONSUMER: &str = "notifier-email";

/// Consumes booking events with one shared consumer group and mails buyers, until
/// `shutdown`. Returns at once (after saying so) when no SMTP server is configured.
pub async fn run(
    settings: EmailSettings,
    pool: PgPool,
    kafka: KafkaSettings,
    jwt_secret: String,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Some(host) = settings.smtp_host.clone() else {
        tracing::info!("SMTP_HOST is not set; email is disabled");
        return Ok(());
    };
    let from: Mailbox = settings
        .mail_from
        .parse()
        .with_context(|| format!("MAIL_FROM {:?} is not a mailbox", settings.mail_from))?;
    let sender = SmtpSender::new(&settings, &host)?;
    let handler = EmailHandler::new(
        pool,
        sender,
        TicketCodes::from_jwt_secret(&jwt_secret),
        from,
    );
    let topics = vec![schemas::topics::topic_for(&kafka.topic_prefix, "booking")];
    tracing::info!(
        host,
        port = settings.smtp_port,
        starttls = settings.smtp_starttls,
        "email enabled"
    );
    consumer::run(
        ConsumerSettings::new(kafka, CONSUMER, topics),
        Arc::new(handler),
        shutdown,
    )
    .await
}
