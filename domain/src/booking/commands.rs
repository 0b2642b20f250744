//! Commands of the `Booking` aggregate; the time (and the show's start) arrive with them.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{CancelReason, GeneralAdmission, Terms};
use crate::money::Money;

#[derive(Debug, Clone, PartialEq)]
pub enum BookingCommand {
    /// Records a booking whose seats are already held in every section it names.
    Place {
        booking_id: Uuid,
        user_id: Uuid,
        show_id: Uuid,
        seats: Vec<String>,
        general_admission: Vec<GeneralAdmission>,
        total: Money,
        terms: Terms,
        hold_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    /// The buyer pays: held → payment_pending until `payment_deadline`.
    RequestPayment {
        payment_id: Uuid,
        /// What the buyer may see of the card; never the provider's token.
        card: String,
        payment_deadline: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    /// The payment succeeded and the seats are sold: issue the tickets.
    Confirm {
        now: DateTime<Utc>,
    },
    Cancel {
        reason: CancelReason,
        detail: String,
        now: DateTime<Utc>,
    },
    /// The hold ran out before payment.
    Expire {
        now: DateTime<Utc>,
    },
    /// Cancel a confirmed booking: its payment is refunded, then its tickets void.
    RequestRefund {
        reason: CancelReason,
        starts_at: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    MarkRefunded {
        now: DateTime<Utc>,
    },
    CheckIn {
        ticket_id: Uuid,
        now: DateTime<Utc>,
    },
    /// Reissue `from_user_id`'s ticket to `to_user_id` (a registered user) with a new code.
    TransferTicket {
        ticket_id: Uuid,
        from_user_id: Uuid,
        to_user_id: Uuid,
        /// Transfers allowed per place (`TICKET_MAX_TRANSFERS`).
        max_transfers: u8,
        starts_at: DateTime<Utc>,
        now: DateTime<Utc>,
    },
}
