//! The two mails of a ticket transfer (to the recipient, to the previous holder): subject,
//! plain-text body and a stable `Message-ID` per (new ticket, side). Pure: no I/O.

use chrono::{DateTime, Utc};
use lettre::Message;
use lettre::message::{Mailbox, header};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferSide {
    /// To the recipient, with the new ticket's code.
    Received,
    /// To the previous holder, whose ticket is now void.
    Sent,
}

impl TransferSide {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferSide::Received => "transfer_received",
            TransferSide::Sent => "transfer_sent",
        }
    }
}

/// One `Message-ID` per (new ticket, side): a transfer issues exactly one new ticket.
pub fn transfer_message_id(new_ticket_id: Uuid, side: TransferSide) -> String {
    format!(
        "<{new_ticket_id}.{}@ticketing.local>",
        side.as_str().replace('_', "-")
    )
}

#[derive(Debug, Clone)]
pub struct TransferMail {
    pub side: TransferSide,
    pub new_ticket_id: Uuid,
    /// The addressee's name.
    pub name: String,
    /// The other party's name.
    pub other_name: String,
    pub show_name: String,
    pub venue: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub seat_id: Option<String>,
    pub section_id: String,
    /// The new ticket's code (only the recipient's mail shows it).
    pub code: String,
}

impl TransferMail {
    pub fn message_id(&self) -> String {
        transfer_message_id(self.new_ticket_id, self.side)
    }

    pub fn subject(&self) -> String {
        match self.side {
            TransferSide::Received => {
                format!("A ticket for {} was transferred to you", self.show_name)
            }
            TransferSide::Sent => format!("You transferred your ticket for {}", self.show_name),
        }
    }

    fn place(&self) -> String {
        match &self.seat_id {
            Some(seat) => format!("seat {seat}"),
            None => format!("general admission, section {}", self.section_id),
        }
    }

    pub fn text(&self) -> String {
        let mut show = self.show_name.clone();
        if !self.venue.is_empty() {
            show.push_str(&format!(", {}", self.venue));
        }
        if let Some(at) = self.starts_at {
            show.push_str(&format!(", {}", at.format("%Y-%m-%d %H:%M UTC")));
        }
        let body = match self.side {
            TransferSide::Received => format!(
                "{} transferred a ticket for {show} to you ({}).\n\nYour ticket's code: {}\n\n\
                 Show it at the door; it is also under My tickets.",
                self.other_name,
                self.place(),
                self.code
            ),
            TransferSide::Sent => format!(
                "You transferred your ticket for {show} ({}) to {}. Your ticket's old code \
                 is no longer valid.",
                self.place(),
                self.other_name
            ),
        };
        format!("Hello {},\n\n{body}\n\n-- \nTicketing\n", self.name)
    }

    pub fn to_message(&self, from: Mailbox, to: Mailbox) -> Result<Message, lettre::error::Error> {
        Message::builder()
            .from(from)
            .to(to)
            .subject(self.subject())
            .message_id(Some(self.message_id()))
            .header(header::MIME_VERSION_1_0)
            .header(header::ContentType::TEXT_PLAIN)
            .body(self.text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(side: TransferSide) -> TransferMail {
        TransferMail {
            side,
            new_ticket_id: Uuid::from_u128(7),
            name: "Grace".into(),
            other_name: "Ada".into(),
            show_name: "Night Opera".into(),
            venue: "Hall".into(),
            starts_at: None,
            seat_id: Some("stalls:A:1".into()),
            section_id: "stalls".into(),
            code: "CODE123".into(),
        }
    }

    #[test]
    fn only_the_recipient_is_told_the_new_code() {
        assert!(mail(TransferSide::Received).text().contains("CODE123"));
        assert!(!mail(TransferSide::Sent).text().contains("CODE123"));
    }

    #[test]
    fn each_side_has_its_own_stable_message_id() {
        let received = mail(TransferSide::Received).message_id();
        let sent = mail(TransferSide::Sent).message_id();
        assert_ne!(received, sent);
        assert_eq!(
            received,
            format!("<{}.transfer-received@ticketing.local>", Uuid::from_u128(7))
        );
    }
}
