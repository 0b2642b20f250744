//! Names of the read models shared by the projections that build them and the queries that
//! wait for them (`X-Min-Position`): the consumer name and the aggregate types it applies.

pub struct ReadModelName {
    pub consumer: &'static str,
    pub aggregate_types: &'static [&'static str],
    /// The tables it builds (what a replay rebuilds and swaps).
    pub tables: &'static [&'static str],
}

/// `user_profile_view` and `user_address_view`.
pub const USER_PROFILES: ReadModelName = ReadModelName {
    consumer: "user-profiles",
    aggregate_types: &["user"],
    tables: &["user_profile_view", "user_address_view"],
};

/// `show_view`: the catalogue and event details.
pub const CATALOG: ReadModelName = ReadModelName {
    consumer: "catalog",
    aggregate_types: &["show"],
    tables: &["show_view"],
};

/// `section_view`, `seat_hold_view`, `ga_hold_view`: seat availability.
pub const AVAILABILITY: ReadModelName = ReadModelName {
    consumer: "availability",
    aggregate_types: &["show", "inventory"],
    tables: &["section_view", "seat_hold_view", "ga_hold_view"],
};

/// `booking_view`, `ticket_view`: each buyer's bookings and tickets.
pub const BOOKINGS: ReadModelName = ReadModelName {
    consumer: "bookings",
    aggregate_types: &["booking"],
    tables: &["booking_view", "ticket_view"],
};

/// `sales_section_tier`, `sales_booking`: sales figures per event and per minute.
pub const SALES: ReadModelName = ReadModelName {
    consumer: "sales",
    aggregate_types: &["show", "booking"],
    tables: &["sales_section_tier", "sales_booking"],
};

/// `invoice_view`: invoices and credit notes, from the organizers' ledgers.
pub const INVOICES: ReadModelName = ReadModelName {
    consumer: "invoices",
    aggregate_types: &["ledger"],
    tables: &["invoice_view"],
};

/// Every read model, in the order operators see them.
pub const ALL: [ReadModelName; 6] = [
    USER_PROFILES,
    CATALOG,
    AVAILABILITY,
    BOOKINGS,
    SALES,
    INVOICES,
];
