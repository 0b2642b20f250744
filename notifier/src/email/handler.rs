//! The Kafka handler: a booking event of a state the buyer hears about becomes one mail,
//! unless the sent-log already has its Message-ID.

use std::time::Duration;

use async_trait::async_trait;
use cqrs_es::persist::PersistenceError;
use domain::booking::{Booking, BookingEvent, IssuedTicket};
use domain::show::Show;
use domain::user::User;
use lettre::message::Mailbox;
use plumbing::consumer::{HandleError, Handler};
use plumbing::store::AggregateStore;
use schemas::ticket_codes::TicketCodes;
use schemas::{DecodedEvent, Envelope};
use sqlx::PgPool;
use uuid::Uuid;

use super::message::{BookingMail, MailState, TicketLine};
use super::sender::{SendError, SmtpSender};
use super::sent_log;

mod transfer;

/// How long a buyer's cached name is used before it is read again.
const USER_FRESH_FOR: Duration = Duration::from_secs(60);

pub struct EmailHandler {
    pool: PgPool,
    bookings: AggregateStore<Booking>,
    users: AggregateStore<User>,
    shows: AggregateStore<Show>,
    sender: SmtpSender,
    codes: TicketCodes,
    from: Mailbox,
}

impl EmailHandler {
    pub fn new(pool: PgPool, sender: SmtpSender, codes: TicketCodes, from: Mailbox) -> Self {
        Self {
            bookings: AggregateStore::new(pool.clone(), ()),
            users: AggregateStore::new(pool.clone(), ()),
            shows: AggregateStore::new(pool.clone(), ())
                .with_upcasters(schemas::upcast::upcasters()),
            pool,
            sender,
            codes,
            from,
        }
    }

    /// What the buyer is told, from the booking as of the event (cached from the events this
    /// consumer receives), its buyer and its show; the event's own tickets win over the
    /// current state (a later refund voids them).
    async fn compose(
        &self,
        booking_id: Uuid,
        sequence: u64,
        state: MailState,
        issued: Option<Vec<IssuedTicket>>,
    ) -> Result<(BookingMail, Mailbox), HandleError> {
        let (booking, _) = self
            .bookings
            .at_least(&booking_id.to_string(), sequence)
            .await
            .map_err(store_error)?;
        let (user_id, show_id) = match (booking.user_id, booking.show_id) {
            (Some(user), Some(show)) if booking.exists() => (user, show),
            _ => return Err(poison(format!("booking {booking_id} is not in the store"))),
        };
        // A buyer's address never changes; a renamed buyer is greeted by the new name within
        // a minute.
        let (user, _) = self
            .users
            .cached(&user_id.to_string(), USER_FRESH_FOR, User::is_registered)
            .await
            .map_err(store_error)?;
        if !user.is_registered() {
            return Err(poison(format!("buyer {user_id} is not in the store")));
        }
        // A booked show is published: its name, venue and start never change.
        let (show, _) = self
            .shows
            .cached(&show_id.to_string(), Duration::MAX, Show::exists)
            .await
            .map_err(store_error)?;
        if !show.exists() {
            return Err(poison(format!("show {show_id} is not in the store")));
        }
        let to = Mailbox::new(
            Some(user.name.clone()),
            user.email
                .parse()
                .map_err(|e| poison(format!("buyer {user_id} has an unusable email: {e}")))?,
        );
        let tickets = issued
            .unwrap_or(booking.tickets)
            .into_iter()
            .map(|t| TicketLine {
                code: self.codes.sign(show_id, booking_id, t.index),
                seat_id: t.seat_id,
                section_id: t.section_id,
            })
            .collect();
        let mail = BookingMail {
            state,
            booking_id,
            buyer_name: user.name,
            show_name: show.name,
            venue: show.venue,
            starts_at: show.starts_at,
            seats: booking.seats,
            tickets,
            failure_reason: booking.failure_reason,
            total: booking.total,
            hold_expires_at: booking.hold_expires_at,
        };
        Ok((mail, to))
    }
}

#[async_trait]
impl Handler for EmailHandler {
    async fn handle(&self, envelope: &Envelope) -> Result<(), HandleError> {
        if envelope.aggregate_type != "booking" {
            return Ok(());
        }
        let event = schemas::decode(envelope).map_err(|e| HandleError::Poison(e.into()))?;
        if let DecodedEvent::Booking(event) = &event {
            self.bookings
                .observe(&envelope.aggregate_id, envelope.sequence, event.clone())
                .await;
        }
        if let DecodedEvent::Booking(BookingEvent::TicketTransferred {
            new_ticket,
            from_user_id,
            to_user_id,
            ..
        }) = event
        {
            let booking_id: Uuid = envelope
                .aggregate_id
                .parse()
                .map_err(|e| poison(format!("booking id {:?}: {e}", envelope.aggregate_id)))?;
            return self
                .mail_transfer(transfer::Transferred {
                    booking_id,
                    sequence: envelope.sequence,
                    new_ticket,
                    from_user_id,
                    to_user_id,
                })
                .await;
        }
        let (state, issued) = match event {
            DecodedEvent::Booking(BookingEvent::BookingPlaced { terms, .. }) if terms.offer => {
                (MailState::Offered, None)
            }
            DecodedEvent::Booking(BookingEvent::BookingConfirmed { tickets, .. }) => {
                (MailState::Confirmed, Some(tickets))
            }
            DecodedEvent::Booking(BookingEvent::BookingCancelled { .. }) => {
                (MailState::Cancelled, None)
            }
            DecodedEvent::Booking(BookingEvent::BookingExpired { .. }) => {
                (MailState::Expired, None)
            }
            DecodedEvent::Booking(BookingEvent::BookingRefunded { .. }) => {
                (MailState::Refunded, None)
            }
            _ => return Ok(()),
        };
        let booking_id: Uuid = envelope
            .aggregate_id
            .parse()
            .map_err(|e| poison(format!("booking id {:?}: {e}", envelope.aggregate_id)))?;
        let message_id = super::message::message_id(booking_id, state);

        let mut tx = self.pool.begin().await?;
        sent_log::lock(&mut tx, &message_id).await?;
        if sent_log::contains(&mut tx, &message_id).await? {
            metrics::counter!("emails_already_sent_total", "state" => state.as_str()).increment(1);
            return Ok(());
        }
        let (mail, to) = self
            .compose(booking_id, envelope.sequence, state, issued)
            .await?;
        let recipient = to.email.to_string();
        let message = mail
            .to_message(self.from.clone(), to)
            .map_err(|e| poison(format!("cannot build the mail: {e}")))?;
        if let Err(err) = self.sender.send(message).await {
            metrics::counter!("email_failures_total", "state" => state.as_str()).increment(1);
            return Err(match err {
                SendError::Refused(_) => HandleError::Poison(err.into()),
                SendError::Failed(_) => HandleError::Transient(err.into()),
            });
        }
        // Accepted by the server. If the process dies before this commits, the event is
        // redelivered and the mail goes out again with the same Message-ID.
        sent_log::record(&mut tx, &message_id, booking_id, state.as_str(), &recipient).await?;
        tx.commit().await?;
        metrics::counter!("emails_sent_total", "state" => state.as_str()).increment(1);
        tracing::info!(%booking_id, state = state.as_str(), message_id, "mail sent");
        Ok(())
    }
}

fn poison(reason: String) -> HandleError {
    HandleError::Poison(anyhow::anyhow!(reason))
}

fn store_error(err: PersistenceError) -> HandleError {
    match err {
        PersistenceError::DeserializationError(_) => HandleError::Poison(err.into()),
        PersistenceError::ConnectionError(_) => HandleError::Unavailable(err.into()),
        PersistenceError::OptimisticLockError | PersistenceError::UnknownError(_) => {
            HandleError::Transient(err.into())
        }
    }
}
