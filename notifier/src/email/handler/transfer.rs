//! Transfer mails: a `TicketTransferred` becomes two mails, one to the recipient (with the
//! new ticket's code) and one to the previous holder, each sent at most once per sent-log
//! entry under its own stable Message-ID, so a redelivery after one of them went out sends
//! only the other.

use std::time::Duration;

use domain::booking::IssuedTicket;
use domain::show::Show;
use domain::user::User;
use lettre::message::Mailbox;
use plumbing::consumer::HandleError;
use uuid::Uuid;

use super::{EmailHandler, USER_FRESH_FOR, poison, store_error};
use crate::email::sender::SendError;
use crate::email::sent_log;
use crate::email::transfer_mail::{TransferMail, TransferSide};

/// What a `TicketTransferred` event says, as the mails need it.
pub(super) struct Transferred {
    pub booking_id: Uuid,
    pub sequence: u64,
    pub new_ticket: IssuedTicket,
    pub from_user_id: Uuid,
    pub to_user_id: Uuid,
}

impl EmailHandler {
    pub(super) async fn mail_transfer(&self, t: Transferred) -> Result<(), HandleError> {
        let (booking, _) = self
            .bookings
            .at_least(&t.booking_id.to_string(), t.sequence)
            .await
            .map_err(store_error)?;
        let Some(show_id) = booking.show_id else {
            return Err(poison(format!(
                "booking {} is not in the store",
                t.booking_id
            )));
        };
        let (show, _) = self
            .shows
            .cached(&show_id.to_string(), Duration::MAX, Show::exists)
            .await
            .map_err(store_error)?;
        if !show.exists() {
            return Err(poison(format!("show {show_id} is not in the store")));
        }
        let from = self.user(t.from_user_id).await?;
        let to = self.user(t.to_user_id).await?;
        for side in [TransferSide::Received, TransferSide::Sent] {
            let (me, other) = match side {
                TransferSide::Received => (&to, &from),
                TransferSide::Sent => (&from, &to),
            };
            let mail = TransferMail {
                side,
                new_ticket_id: t.new_ticket.ticket_id,
                name: me.name.clone(),
                other_name: other.name.clone(),
                show_name: show.name.clone(),
                venue: show.venue.clone(),
                starts_at: show.starts_at,
                seat_id: t.new_ticket.seat_id.clone(),
                section_id: t.new_ticket.section_id.clone(),
                code: self.codes.sign(show_id, t.booking_id, t.new_ticket.index),
            };
            let mailbox = Mailbox::new(
                Some(me.name.clone()),
                me.email
                    .parse()
                    .map_err(|e| poison(format!("user {} has an unusable email: {e}", me.email)))?,
            );
            self.send_once(t.booking_id, &mail, mailbox).await?;
        }
        Ok(())
    }

    async fn user(&self, user_id: Uuid) -> Result<User, HandleError> {
        let (user, _) = self
            .users
            .cached(&user_id.to_string(), USER_FRESH_FOR, User::is_registered)
            .await
            .map_err(store_error)?;
        if !user.is_registered() {
            return Err(poison(format!("user {user_id} is not in the store")));
        }
        Ok(user)
    }

    /// Sends `mail` unless the sent-log has its Message-ID, then records it.
    async fn send_once(
        &self,
        booking_id: Uuid,
        mail: &TransferMail,
        to: Mailbox,
    ) -> Result<(), HandleError> {
        let message_id = mail.message_id();
        let state = mail.side.as_str();
        let mut tx = self.pool.begin().await?;
        sent_log::lock(&mut tx, &message_id).await?;
        if sent_log::contains(&mut tx, &message_id).await? {
            metrics::counter!("emails_already_sent_total", "state" => state).increment(1);
            return Ok(());
        }
        let recipient = to.email.to_string();
        let message = mail
            .to_message(self.from.clone(), to)
            .map_err(|e| poison(format!("cannot build the mail: {e}")))?;
        if let Err(err) = self.sender.send(message).await {
            metrics::counter!("email_failures_total", "state" => state).increment(1);
            return Err(match err {
                SendError::Refused(_) => HandleError::Poison(err.into()),
                SendError::Failed(_) => HandleError::Transient(err.into()),
            });
        }
        sent_log::record(&mut tx, &message_id, booking_id, state, &recipient).await?;
        tx.commit().await?;
        metrics::counter!("emails_sent_total", "state" => state).increment(1);
        tracing::info!(%booking_id, state, message_id, "mail sent");
        Ok(())
    }
}
