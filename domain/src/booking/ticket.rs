//! Tickets: one per seat or general-admission place, issued when a booking is confirmed.
//! Ticket ids are derived from (booking, position), so a retried confirmation issues the
//! same tickets. The scannable code is signed at the edge (command-api), not stored.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::GeneralAdmission;

/// Namespace of ticket ids (fixed; never change it).
const TICKET_NAMESPACE: Uuid = Uuid::from_u128(0x5b7e_0c1d_93a2_4f6b_8e14_7d2c_6a90_b3f1);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    #[default]
    Valid,
    CheckedIn,
    Void,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IssuedTicket {
    pub ticket_id: Uuid,
    /// The ticket's position within its booking (what its code carries).
    pub index: u8,
    /// `None` for general admission.
    pub seat_id: Option<String>,
    pub section_id: String,
    #[serde(default)]
    pub status: TicketStatus,
    #[serde(default)]
    pub checked_in_at: Option<DateTime<Utc>>,
    /// Who holds the ticket when it is not the buyer (a transfer's recipient).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder_id: Option<Uuid>,
    /// How often this place was transferred before this ticket was issued (the cap is per
    /// seat, so a reissued ticket carries its predecessor's count plus one).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub transfers: u8,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

pub fn ticket_id(booking_id: Uuid, index: u8) -> Uuid {
    let mut name = booking_id.as_bytes().to_vec();
    name.push(index);
    Uuid::new_v5(&TICKET_NAMESPACE, &name)
}

/// One ticket per seat, then one per general-admission place, in booking order.
pub fn issue(
    booking_id: Uuid,
    seats: &[String],
    general_admission: &[GeneralAdmission],
) -> Vec<IssuedTicket> {
    let seated = seats.iter().map(|seat| {
        let section = crate::show::layout::parse_seat_id(seat)
            .map(|(s, _, _)| s.to_owned())
            .unwrap_or_default();
        (Some(seat.clone()), section)
    });
    let standing = general_admission
        .iter()
        .flat_map(|g| (0..g.quantity).map(move |_| (None, g.section_id.clone())));
    seated
        .chain(standing)
        .enumerate()
        .map(|(i, (seat_id, section_id))| {
            let index = u8::try_from(i).unwrap_or(u8::MAX);
            IssuedTicket {
                ticket_id: ticket_id(booking_id, index),
                index,
                seat_id,
                section_id,
                status: TicketStatus::Valid,
                checked_in_at: None,
                holder_id: None,
                transfers: 0,
            }
        })
        .collect()
}
