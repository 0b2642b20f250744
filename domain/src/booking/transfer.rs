//! Ticket transfer: a confirmed booking's valid ticket is reissued to another registered user
//! as a new ticket (a new index, so a new id and a new signed code) for the same place, and
//! the old one is void. The booking stays the buyer's; the new ticket's holder is the
//! recipient. Transfers are counted per place across reissues and allowed only before the
//! show starts.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::ticket::ticket_id;
use super::{Booking, BookingError, BookingEvent, BookingStatus, IssuedTicket, TicketStatus};

/// The facts a transfer is decided on (`BookingCommand::TransferTicket`).
pub(super) struct Transfer {
    pub ticket_id: Uuid,
    pub from_user_id: Uuid,
    pub to_user_id: Uuid,
    pub max_transfers: u8,
    pub starts_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

impl Booking {
    /// Who holds `ticket`: its recipient if it was transferred, else the buyer.
    pub fn holder_of(&self, ticket: &IssuedTicket) -> Option<Uuid> {
        ticket.holder_id.or(self.user_id)
    }

    /// Whether any of this booking's tickets went to someone else.
    pub fn has_transferred(&self) -> bool {
        self.tickets.iter().any(|t| t.transfers > 0)
    }

    pub(super) fn decide_transfer(&self, t: Transfer) -> Result<Vec<BookingEvent>, BookingError> {
        let ticket = self
            .tickets
            .iter()
            .find(|x| x.ticket_id == t.ticket_id)
            .ok_or(BookingError::UnknownTicket)?;
        // Someone else's ticket is indistinguishable from no ticket (404, not 403).
        if self.holder_of(ticket) != Some(t.from_user_id) {
            return Err(BookingError::NotTheHolder);
        }
        if self.status != BookingStatus::Confirmed {
            return Err(BookingError::TicketVoid);
        }
        match (ticket.status, ticket.checked_in_at) {
            (TicketStatus::Void, _) => return Err(BookingError::TicketVoid),
            (TicketStatus::CheckedIn, Some(at)) => {
                return Err(BookingError::AlreadyCheckedIn { at });
            }
            (TicketStatus::CheckedIn, None) => return Err(BookingError::CheckedIn),
            (TicketStatus::Valid, _) => {}
        }
        if t.now >= t.starts_at {
            return Err(BookingError::TooLateToTransfer);
        }
        if ticket.transfers >= t.max_transfers {
            return Err(BookingError::TransferLimit {
                max: t.max_transfers,
            });
        }
        if t.to_user_id == t.from_user_id {
            return Err(BookingError::TransferToSelf);
        }
        let booking_id = self.booking_id.ok_or(BookingError::UnknownBooking)?;
        // Indices are dense (0..n), so the next one names a ticket no code has named yet.
        let index = self
            .tickets
            .iter()
            .map(|x| x.index)
            .max()
            .and_then(|i| i.checked_add(1))
            .ok_or(BookingError::TransferLimit {
                max: t.max_transfers,
            })?;
        Ok(vec![BookingEvent::TicketTransferred {
            ticket_id: t.ticket_id,
            new_ticket: IssuedTicket {
                ticket_id: ticket_id(booking_id, index),
                index,
                seat_id: ticket.seat_id.clone(),
                section_id: ticket.section_id.clone(),
                status: TicketStatus::Valid,
                checked_in_at: None,
                holder_id: Some(t.to_user_id),
                transfers: ticket.transfers + 1,
            },
            from_user_id: t.from_user_id,
            to_user_id: t.to_user_id,
            transferred_at: t.now,
        }])
    }
}
