//! Names of the read models shared by the projections that build them and the queries that
//! wait for them (`X-Min-Position`): the consumer name and the aggregate types it applies.

pub struct ReadModelName {
    pub consumer: &'static str,
    pub aggregate_types: &'static [&'static str],
}

/// `user_profile_view` and `user_address_view`.
pub const USER_PROFILES: ReadModelName = ReadModelName {
    consumer: "user-profiles",
    aggregate_types: &["user"],
};

/// `show_view`: the catalogue and event details.
pub const CATALOG: ReadModelName = ReadModelName {
    consumer: "catalog",
    aggregate_types: &["show"],
};

/// `section_view`, `seat_hold_view`, `ga_hold_view`: seat availability.
pub const AVAILABILITY: ReadModelName = ReadModelName {
    consumer: "availability",
    aggregate_types: &["show", "inventory"],
};

/// `booking_view`, `ticket_view`: each buyer's bookings and tickets.
pub const BOOKINGS: ReadModelName = ReadModelName {
    consumer: "bookings",
    aggregate_types: &["booking"],
};
