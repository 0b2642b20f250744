//! The mail of one booking state: subject, plain-text and HTML bodies, and the stable
//! `Message-ID` that names (booking, state). Pure: no I/O.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use domain::money::Money;
use lettre::Message;
use lettre::message::{Mailbox, MultiPart, header};
use uuid::Uuid;

/// The booking states a buyer is mailed about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailState {
    /// Places held for the buyer from an event's waiting list.
    Offered,
    Confirmed,
    Cancelled,
    Expired,
    Refunded,
}

impl MailState {
    pub fn as_str(self) -> &'static str {
        match self {
            MailState::Offered => "offered",
            MailState::Confirmed => "confirmed",
            MailState::Cancelled => "cancelled",
            MailState::Expired => "expired",
            MailState::Refunded => "refunded",
        }
    }
}

/// One `Message-ID` per (booking, state), whichever instance sends it and however often, so
/// a resend after a crash is recognisable as the same mail.
pub fn message_id(booking_id: Uuid, state: MailState) -> String {
    format!("<{booking_id}.{}@ticketing.local>", state.as_str())
}

/// A ticket as the mail shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketLine {
    pub code: String,
    /// `None` for general admission.
    pub seat_id: Option<String>,
    pub section_id: String,
}

impl TicketLine {
    fn place(&self) -> String {
        match &self.seat_id {
            Some(seat) => format!("Seat {seat}"),
            None => format!("General admission, section {}", self.section_id),
        }
    }
}

/// Everything a booking mail says.
#[derive(Debug, Clone)]
pub struct BookingMail {
    pub state: MailState,
    pub booking_id: Uuid,
    pub buyer_name: String,
    pub show_name: String,
    pub venue: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub seats: Vec<String>,
    pub tickets: Vec<TicketLine>,
    pub failure_reason: Option<String>,
    pub total: Option<Money>,
    /// Until when the places are held (an offer's deadline).
    pub hold_expires_at: Option<DateTime<Utc>>,
}

impl BookingMail {
    pub fn message_id(&self) -> String {
        message_id(self.booking_id, self.state)
    }

    pub fn subject(&self) -> String {
        let show = &self.show_name;
        match self.state {
            MailState::Offered => format!("Places for {show} are free for you"),
            MailState::Confirmed => format!("Your tickets for {show}"),
            MailState::Cancelled => format!("Your booking for {show} was cancelled"),
            MailState::Expired => format!("Your hold for {show} expired"),
            MailState::Refunded => format!("Your booking for {show} was refunded"),
        }
    }

    fn show_line(&self) -> String {
        let mut line = self.show_name.clone();
        if !self.venue.is_empty() {
            let _ = write!(line, ", {}", self.venue);
        }
        if let Some(at) = self.starts_at {
            let _ = write!(line, ", {}", at.format("%Y-%m-%d %H:%M UTC"));
        }
        line
    }

    /// The paragraphs both bodies share, before any list.
    fn lead(&self) -> String {
        let booking = self.booking_id;
        let show = self.show_line();
        let reason = self
            .failure_reason
            .as_deref()
            .unwrap_or("no reason was given");
        match self.state {
            MailState::Offered => {
                let amount = self
                    .total
                    .as_ref()
                    .map(|money| format!(" for {}", format_money(money)))
                    .unwrap_or_default();
                let until = self
                    .hold_expires_at
                    .map(|at| format!(" until {}", at.format("%Y-%m-%d %H:%M:%S UTC")))
                    .unwrap_or_default();
                format!(
                    "Places for {show} freed up and you are next on its waiting list: they are held for you{amount} as booking {booking}{until}. Pay for the booking before then, or the places go to the next person waiting."
                )
            }
            MailState::Confirmed => {
                format!("Your booking {booking} for {show} is confirmed. Your tickets:")
            }
            MailState::Cancelled => {
                format!("Your booking {booking} for {show} was cancelled: {reason}.")
            }
            MailState::Expired => format!(
                "Your hold {booking} for {show} expired before payment; the places were released."
            ),
            MailState::Refunded => {
                let amount = self
                    .total
                    .as_ref()
                    .map(|money| format!(" {}", format_money(money)))
                    .unwrap_or_default();
                format!(
                    "Your booking {booking} for {show} was refunded{amount}; its tickets are no longer valid."
                )
            }
        }
    }

    pub fn text(&self) -> String {
        let mut out = format!("Hello {},\n\n{}\n", self.buyer_name, self.lead());
        if self.state == MailState::Confirmed {
            out.push('\n');
            for ticket in &self.tickets {
                let _ = writeln!(out, "  {}: {}", ticket.place(), ticket.code);
            }
            out.push_str("\nShow a ticket's code at the door.\n");
        } else if !self.seats.is_empty() {
            let _ = writeln!(out, "\nSeats: {}", self.seats.join(", "));
        }
        out.push_str("\n-- \nTicketing\n");
        out
    }

    pub fn html(&self) -> String {
        let mut out = format!(
            "<!DOCTYPE html>\n<html><body>\n<p>Hello {},</p>\n<p>{}</p>\n",
            escape(&self.buyer_name),
            escape(&self.lead())
        );
        if self.state == MailState::Confirmed {
            out.push_str("<table>\n<tr><th>Place</th><th>Code</th></tr>\n");
            for ticket in &self.tickets {
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td><code>{}</code></td></tr>",
                    escape(&ticket.place()),
                    escape(&ticket.code)
                );
            }
            out.push_str("</table>\n<p>Show a ticket's code at the door.</p>\n");
        } else if !self.seats.is_empty() {
            let _ = writeln!(out, "<p>Seats: {}</p>", escape(&self.seats.join(", ")));
        }
        out.push_str("</body></html>\n");
        out
    }

    /// The whole message, plain text and HTML as alternatives.
    pub fn to_message(&self, from: Mailbox, to: Mailbox) -> Result<Message, lettre::error::Error> {
        Message::builder()
            .from(from)
            .to(to)
            .subject(self.subject())
            .message_id(Some(self.message_id()))
            .header(header::MIME_VERSION_1_0)
            .multipart(MultiPart::alternative_plain_html(self.text(), self.html()))
    }
}

fn format_money(money: &Money) -> String {
    let sign = if money.amount_minor < 0 { "-" } else { "" };
    let abs = money.amount_minor.unsigned_abs();
    format!("{} {sign}{}.{:02}", money.currency, abs / 100, abs % 100)
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(state: MailState) -> BookingMail {
        BookingMail {
            state,
            booking_id: Uuid::from_u128(7),
            buyer_name: "Ada <Lovelace>".into(),
            show_name: "Opera".into(),
            venue: "Hall".into(),
            starts_at: None,
            seats: vec!["A:1:2".into()],
            tickets: vec![
                TicketLine {
                    code: "code-one".into(),
                    seat_id: Some("A:1:2".into()),
                    section_id: "A".into(),
                },
                TicketLine {
                    code: "code-two".into(),
                    seat_id: None,
                    section_id: "GA".into(),
                },
            ],
            failure_reason: Some("payment declined".into()),
            total: Some(Money::new(1250, "EUR")),
            hold_expires_at: None,
        }
    }

    fn formatted(mail: &BookingMail) -> String {
        let from: Mailbox = "Ticketing <tickets@ticketing.local>".parse().expect("from");
        let to: Mailbox = "ada@example.com".parse().expect("to");
        let message = mail.to_message(from, to).expect("message builds");
        String::from_utf8(message.formatted()).expect("utf-8")
    }

    #[test]
    fn an_offer_says_until_when_the_places_are_held_and_for_how_much() {
        let mut offer = mail(MailState::Offered);
        offer.hold_expires_at = "2026-12-03T19:15:00Z".parse().ok();
        let text = offer.text();
        assert!(text.contains("waiting list"), "{text}");
        assert!(text.contains("until 2026-12-03 19:15:00 UTC"), "{text}");
        assert!(text.contains("12.50"), "{text}");
        assert_eq!(offer.subject(), "Places for Opera are free for you");
    }

    #[test]
    fn message_id_names_booking_and_state() {
        assert_eq!(
            message_id(Uuid::from_u128(7), MailState::Cancelled),
            "<00000000-0000-0000-0000-000000000007.cancelled@ticketing.local>"
        );
    }

    #[test]
    fn confirmation_lists_every_ticket_code_with_its_place() {
        let text = mail(MailState::Confirmed).text();
        assert!(text.contains("Seat A:1:2: code-one"), "{text}");
        assert!(
            text.contains("General admission, section GA: code-two"),
            "{text}"
        );
    }

    #[test]
    fn cancellation_says_why() {
        let mail = mail(MailState::Cancelled);
        assert_eq!(mail.subject(), "Your booking for Opera was cancelled");
        assert!(mail.text().contains("was cancelled: payment declined."));
        assert!(!mail.text().contains("code-one"));
    }

    #[test]
    fn refund_states_the_amount() {
        assert!(
            mail(MailState::Refunded)
                .text()
                .contains("was refunded EUR 12.50;")
        );
    }

    #[test]
    fn html_escapes_what_users_typed() {
        let html = mail(MailState::Expired).html();
        assert!(html.contains("Hello Ada &lt;Lovelace&gt;,"), "{html}");
    }

    #[test]
    fn message_is_multipart_with_the_stable_message_id() {
        let raw = formatted(&mail(MailState::Confirmed));
        assert!(raw.contains(
            "Message-ID: <00000000-0000-0000-0000-000000000007.confirmed@ticketing.local>"
        ));
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("text/plain"));
        assert!(raw.contains("text/html"));
    }
}
