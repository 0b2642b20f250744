//! The `Payment` aggregate: one charge of one booking at the payment provider, keyed by
//! payment id (also the provider's idempotency key, so the provider charges at most once):
//! requested → succeeded | failed; succeeded → refund requested → refunded.
//! Provider answers arrive as webhooks, possibly twice or late: every command here is
//! idempotent, and a late answer for a finished payment writes nothing.

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use cqrs_es::DomainEvent;
use cqrs_es::event_sink::EventSink;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Money;

/// What a person may see of the card behind a provider token, for events and receipts: the
/// simulator's test cards by name, any other token as a plain "Card". Nothing of the token
/// itself is kept, so a label can travel where the token must not.
pub fn card_label(token: &str) -> String {
    match token.trim() {
        "tok_visa" => "Visa test card",
        "tok_decline" => "Declining test card",
        "tok_timeout" => "Unanswered test card",
        _ => "Card",
    }
    .to_owned()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    #[default]
    Requested,
    Succeeded,
    Failed,
    RefundRequested,
    Refunded,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PaymentCommand {
    Request {
        booking_id: Uuid,
        amount: Money,
        /// What the buyer may see of the card; never the provider's token.
        card: String,
        now: DateTime<Utc>,
    },
    RecordSuccess {
        now: DateTime<Utc>,
    },
    RecordFailure {
        reason: String,
        now: DateTime<Utc>,
    },
    RequestRefund {
        now: DateTime<Utc>,
    },
    RecordRefund {
        now: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum PaymentEvent {
    PaymentRequested {
        booking_id: Uuid,
        amount: Money,
        /// What the buyer may see of the card (`card_label`). Version 1 carried the
        /// provider's token instead (`schemas::upcast`).
        #[serde(default)]
        card: String,
        requested_at: DateTime<Utc>,
    },
    PaymentSucceeded {
        succeeded_at: DateTime<Utc>,
    },
    PaymentFailed {
        reason: String,
        failed_at: DateTime<Utc>,
    },
    PaymentRefundRequested {
        requested_at: DateTime<Utc>,
    },
    PaymentRefunded {
        refunded_at: DateTime<Utc>,
    },
}

impl DomainEvent for PaymentEvent {
    fn event_type(&self) -> String {
        match self {
            PaymentEvent::PaymentRequested { .. } => "PaymentRequested",
            PaymentEvent::PaymentSucceeded { .. } => "PaymentSucceeded",
            PaymentEvent::PaymentFailed { .. } => "PaymentFailed",
            PaymentEvent::PaymentRefundRequested { .. } => "PaymentRefundRequested",
            PaymentEvent::PaymentRefunded { .. } => "PaymentRefunded",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        match self {
            // v2: the card's label instead of the provider's token.
            PaymentEvent::PaymentRequested { .. } => "2",
            _ => "1",
        }
        .to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    #[error("no such payment")]
    UnknownPayment,
    #[error("the payment was requested already for another booking or amount")]
    Mismatch,
    #[error("only a captured payment can be refunded")]
    NotCaptured,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    pub booking_id: Option<Uuid>,
    pub amount: Option<Money>,
    /// The card's label, not the provider's token.
    pub card: Option<String>,
    pub status: PaymentStatus,
    pub failure_reason: Option<String>,
}

impl Payment {
    pub fn exists(&self) -> bool {
        self.booking_id.is_some()
    }
}

impl Aggregate for Payment {
    const TYPE: &'static str = "payment";
    type Command = PaymentCommand;
    type Event = PaymentEvent;
    type Error = PaymentError;
    type Services = ();

    async fn handle(
        &mut self,
        command: PaymentCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), PaymentError> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: PaymentEvent) {
        match event {
            PaymentEvent::PaymentRequested {
                booking_id,
                amount,
                card,
                ..
            } => {
                self.booking_id = Some(booking_id);
                self.amount = Some(amount);
                self.card = Some(card);
                self.status = PaymentStatus::Requested;
            }
            PaymentEvent::PaymentSucceeded { .. } => self.status = PaymentStatus::Succeeded,
            PaymentEvent::PaymentFailed { reason, .. } => {
                self.status = PaymentStatus::Failed;
                self.failure_reason = Some(reason);
            }
            PaymentEvent::PaymentRefundRequested { .. } => {
                self.status = PaymentStatus::RefundRequested;
            }
            PaymentEvent::PaymentRefunded { .. } => self.status = PaymentStatus::Refunded,
        }
    }
}

impl Payment {
    fn decide(&self, command: PaymentCommand) -> Result<Vec<PaymentEvent>, PaymentError> {
        use PaymentStatus as S;
        if !self.exists() && !matches!(command, PaymentCommand::Request { .. }) {
            return Err(PaymentError::UnknownPayment);
        }
        Ok(match command {
            PaymentCommand::Request {
                booking_id,
                amount,
                card,
                now,
            } => {
                if self.exists() {
                    if self.booking_id != Some(booking_id) || self.amount.as_ref() != Some(&amount)
                    {
                        return Err(PaymentError::Mismatch);
                    }
                    return Ok(vec![]);
                }
                vec![PaymentEvent::PaymentRequested {
                    booking_id,
                    amount,
                    card,
                    requested_at: now,
                }]
            }
            PaymentCommand::RecordSuccess { now } => match self.status {
                S::Requested => vec![PaymentEvent::PaymentSucceeded { succeeded_at: now }],
                _ => vec![],
            },
            PaymentCommand::RecordFailure { reason, now } => match self.status {
                S::Requested => vec![PaymentEvent::PaymentFailed {
                    reason,
                    failed_at: now,
                }],
                _ => vec![],
            },
            PaymentCommand::RequestRefund { now } => match self.status {
                S::Succeeded => vec![PaymentEvent::PaymentRefundRequested { requested_at: now }],
                S::RefundRequested | S::Refunded => vec![],
                S::Requested | S::Failed => return Err(PaymentError::NotCaptured),
            },
            PaymentCommand::RecordRefund { now } => match self.status {
                S::RefundRequested => vec![PaymentEvent::PaymentRefunded { refunded_at: now }],
                _ => vec![],
            },
        })
    }
}
