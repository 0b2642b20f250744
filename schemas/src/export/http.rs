//! The HTTP bodies of API.md with their file names: requests in the reading contract (what
//! the server accepts), responses in the writing contract (what it sends); query strings too,
//! described as the objects they deserialize into. Types used only inside a body (`Money`,
//! `Section`, …) appear in that body's `$defs`. `tests/coverage.rs` fails when a type of
//! `schemas::api` is in none of them.

use domain::show::templates::Template;
use serde_json::Value;

use super::{Contract, schema_for};
use crate::api::bookings::{
    BookingHeldResponse, BookingPage, BookingStatusResponse, BookingView, CheckInRequest,
    CheckInResponse, CreateBookingRequest, PageQuery, PayRequest, TicketQrRequest, TicketView,
    UnavailableSection, WebhookNotification,
};
use crate::api::events::{
    AnnouncementRequest, Availability, AvailabilityQuery, CreateEventRequest, EventDetail,
    EventListQuery, EventPage, EventStatusResponse, LayoutRequest, LayoutResponse, PricingRequest,
    PricingResponse, PublishRequest,
};
use crate::api::invoices::{InvoiceDocument, InvoiceSummary};
use crate::api::ops::ProjectionsHealth;
use crate::api::problem::Problem;
use crate::api::queue::{QueuePlace, QueueStats};
use crate::api::sales::{SalesReport, SalesTimeseries};
use crate::api::tickets::{TicketTransferResponse, TransferTicketRequest};
use crate::api::users::{
    AddressRequest, AddressResponse, GrantRoleRequest, LoginRequest, Profile, RefreshRequest,
    RegisterRequest, RegisterResponse, RolesResponse, SessionView, TokenResponse,
    UpdateProfileRequest,
};
use crate::api::vouchers::{CreateVoucherRequest, VoucherResponse};
use crate::api::waitlist::{JoinWaitlistRequest, WaitlistEntryResponse};

/// (type name, schema) of every body. A new body type is added here.
pub(super) fn bodies() -> Vec<(String, Value)> {
    vec![
        // Auth and users.
        request::<RegisterRequest>(),
        response::<RegisterResponse>(),
        request::<LoginRequest>(),
        response::<TokenResponse>(),
        request::<RefreshRequest>(),
        response::<SessionView>(),
        request::<GrantRoleRequest>(),
        response::<RolesResponse>(),
        response::<Profile>(),
        request::<UpdateProfileRequest>(),
        request::<AddressRequest>(),
        response::<AddressResponse>(),
        // Events (catalogue and inventory).
        response::<Template>(),
        request::<CreateEventRequest>(),
        request::<AnnouncementRequest>(),
        response::<EventStatusResponse>(),
        request::<LayoutRequest>(),
        response::<LayoutResponse>(),
        request::<PricingRequest>(),
        response::<PricingResponse>(),
        request::<PublishRequest>(),
        request::<EventListQuery>(),
        response::<EventPage>(),
        response::<EventDetail>(),
        request::<AvailabilityQuery>(),
        response::<Availability>(),
        // Bookings, payments, tickets.
        request::<CreateBookingRequest>(),
        response::<BookingHeldResponse>(),
        // Listed in a 409 problem's `unavailable_sections`.
        response::<UnavailableSection>(),
        request::<PayRequest>(),
        response::<BookingStatusResponse>(),
        // Commerce.
        request::<CreateVoucherRequest>(),
        response::<VoucherResponse>(),
        request::<JoinWaitlistRequest>(),
        response::<WaitlistEntryResponse>(),
        response::<BookingView>(),
        request::<PageQuery>(),
        response::<BookingPage>(),
        response::<TicketView>(),
        request::<CheckInRequest>(),
        response::<CheckInResponse>(),
        request::<TicketQrRequest>(),
        request::<TransferTicketRequest>(),
        response::<TicketTransferResponse>(),
        request::<WebhookNotification>(),
        // Invoices.
        response::<InvoiceSummary>(),
        response::<InvoiceDocument>(),
        // Virtual waiting room.
        response::<QueuePlace>(),
        response::<QueueStats>(),
        // Sales analytics.
        response::<SalesReport>(),
        response::<SalesTimeseries>(),
        // Operations.
        response::<ProjectionsHealth>(),
        // Errors.
        response::<Problem>(),
    ]
}

fn request<T: schemars::JsonSchema>() -> (String, Value) {
    (
        T::schema_name().into_owned(),
        schema_for::<T>(Contract::Read),
    )
}

fn response<T: schemars::JsonSchema>() -> (String, Value) {
    (
        T::schema_name().into_owned(),
        schema_for::<T>(Contract::Write),
    )
}
