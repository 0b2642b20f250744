//! Ticket transfer bodies (`POST /api/tickets/{ticket_id}/transfer`).

use domain::booking::TicketStatus;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferTicketRequest {
    /// The email of the registered user who receives the ticket.
    pub email: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct TicketTransferResponse {
    /// The transferred ticket, now void.
    pub ticket_id: Uuid,
    /// Always `void`.
    pub status: TicketStatus,
    /// The recipient's new ticket (a new code; listed by their `GET /api/tickets`).
    pub new_ticket_id: Uuid,
}
