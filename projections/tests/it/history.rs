//! A store holding every event type (and `ShowCancelled` and both `PaymentRequested` at
//! version 1, the latter with the card tokens they held before issue 22), written straight
//! into the events table as the aggregate store writes it: two users, three shows (one
//! cancelled at v1, one at v2), a seated and a general-admission section with holds taken
//! over, released, extended, sold and returned, bookings in every state, payments and an
//! organizer's invoices and credit note.

use chrono::{DateTime, Duration, Utc};
use cqrs_es::DomainEvent;
use domain::booking::ticket::ticket_id;
use domain::booking::{BookingEvent, CancelReason, GeneralAdmission, IssuedTicket, TicketStatus};
use domain::customer::{CustomerEvent, customer_places_id};
use domain::inventory::InventoryEvent;
use domain::ledger::{DocumentKind, InvoiceLine, LedgerEvent};
use domain::money::Money;
use domain::payment::PaymentEvent;
use domain::show::{QueueSettings, Row, Section, ShowEvent, Tier};
use domain::user::{Address, Role, UserEvent};
use domain::voucher::book::VoucherBookEvent;
use domain::voucher::{Discount, VoucherEvent};
use domain::waitlist::WaitlistEvent;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// One stored event.
pub struct Stored {
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    pub event_type: String,
    pub version: String,
    pub payload: Value,
    pub recorded_at: DateTime<Utc>,
}

/// Events in the order they are appended; sequences are numbered per aggregate.
#[derive(Default)]
pub struct History {
    pub events: Vec<Stored>,
    pub clock: Option<DateTime<Utc>>,
}

impl History {
    fn now(&mut self) -> DateTime<Utc> {
        let next = self.clock.unwrap_or_else(Utc::now) + Duration::milliseconds(10);
        self.clock = Some(next);
        next
    }

    pub fn push<E: DomainEvent + Serialize>(
        &mut self,
        aggregate_type: &'static str,
        id: &str,
        event: E,
    ) {
        let recorded_at = self.now();
        self.events.push(Stored {
            aggregate_type,
            aggregate_id: id.to_owned(),
            event_type: event.event_type(),
            version: event.event_version(),
            payload: serde_json::to_value(&event).expect("event json"),
            recorded_at,
        });
    }

    pub fn push_raw(
        &mut self,
        aggregate_type: &'static str,
        id: &str,
        event_type: &str,
        version: &str,
        inner: Value,
    ) {
        let recorded_at = self.now();
        self.events.push(Stored {
            aggregate_type,
            aggregate_id: id.to_owned(),
            event_type: event_type.to_owned(),
            version: version.to_owned(),
            payload: json!({ event_type: inner }),
            recorded_at,
        });
    }

    /// Appends every event, one transaction per event, numbering sequences per aggregate.
    pub async fn store(&self, pool: &PgPool) {
        for event in &self.events {
            sqlx::query(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                     event_version, payload, metadata, recorded_at)
                 SELECT $1, $2, coalesce(max(sequence), 0) + 1, $3, $4, $5, '{}', $6
                   FROM events WHERE aggregate_type = $1 AND aggregate_id = $2",
            )
            .bind(event.aggregate_type)
            .bind(&event.aggregate_id)
            .bind(&event.event_type)
            .bind(&event.version)
            .bind(sqlx::types::Json(&event.payload))
            .bind(event.recorded_at)
            .execute(pool)
            .await
            .expect("append");
        }
    }
}

fn eur(amount_minor: i64) -> Money {
    Money::new(amount_minor, "EUR")
}

fn address(label: &str) -> Address {
    Address {
        label: label.into(),
        line1: "1 Tab\tand \\ Street".into(),
        line2: None,
        city: "Oslo".into(),
        postal_code: "0150".into(),
        country: "NO".into(),
    }
}

/// Ids of what the history made, for assertions.
pub struct Made {
    pub organizer: Uuid,
    pub show: Uuid,
    pub cancelled_v1: Uuid,
    pub kept_address: Uuid,
    /// When b1's hold on stalls A:1 and A:2 was extended for payment (before it was sold).
    pub extended_at: DateTime<Utc>,
    pub bookings: Vec<Uuid>,
}

pub fn every_event_type(history: &mut History) -> Made {
    let (organizer, buyer) = (Uuid::new_v4(), Uuid::new_v4());
    let (o, b) = (organizer.to_string(), buyer.to_string());
    for (id, name) in [(&o, "Olga \"O\" Organizer"), (&b, "Bo Buyer")] {
        history.push(
            "user",
            id,
            UserEvent::UserRegistered {
                user_id: id.parse().expect("uuid"),
                email: format!("{id}@example.com"),
                name: name.into(),
                password_hash: "$argon2id$never-published".into(),
                registered_at: Utc::now(),
            },
        );
    }
    history.push(
        "user",
        &o,
        UserEvent::RoleGranted {
            role: Role::Organizer,
        },
    );
    history.push(
        "user",
        &o,
        UserEvent::RoleGranted {
            role: Role::Organizer,
        },
    );
    history.push(
        "user",
        &o,
        UserEvent::ProfileUpdated {
            name: "Olga".into(),
            phone: Some("+47 1234".into()),
        },
    );
    let (kept, gone) = (Uuid::new_v4(), Uuid::new_v4());
    history.push(
        "user",
        &o,
        UserEvent::AddressAdded {
            address_id: kept,
            address: address("home"),
        },
    );
    history.push(
        "user",
        &o,
        UserEvent::AddressAdded {
            address_id: gone,
            address: address("work"),
        },
    );
    history.push(
        "user",
        &o,
        UserEvent::AddressUpdated {
            address_id: kept,
            address: address("home, new"),
        },
    );
    history.push("user", &o, UserEvent::AddressRemoved { address_id: gone });
    // Another user naming the organizer's address changes nothing.
    history.push(
        "user",
        &b,
        UserEvent::AddressUpdated {
            address_id: kept,
            address: address("stolen"),
        },
    );
    history.push("user", &b, UserEvent::AddressRemoved { address_id: kept });

    let show = Uuid::new_v4();
    let s = show.to_string();
    let stalls = Section::Seated {
        section_id: "stalls".into(),
        name: "Stalls".into(),
        rows: vec![
            Row {
                row: "A".into(),
                seats: 5,
            },
            Row {
                row: "B".into(),
                seats: 5,
            },
        ],
    };
    let floor = Section::GeneralAdmission {
        section_id: "floor".into(),
        name: "Floor".into(),
        capacity: 50,
    };
    let old = Section::GeneralAdmission {
        section_id: "old".into(),
        name: "Old".into(),
        capacity: 9,
    };
    history.push(
        "show",
        &s,
        ShowEvent::ShowCreated {
            show_id: show,
            organizer_id: organizer,
            name: "Hamlet".into(),
            venue: "Globe".into(),
            description: Some("A play\nin five acts".into()),
            starts_at: Utc::now() + Duration::days(30),
            created_at: Utc::now(),
        },
    );
    history.push(
        "show",
        &s,
        ShowEvent::LayoutSet {
            sections: vec![stalls.clone(), old],
        },
    );
    let tier = |id: &str, price, sections: &[&str]| Tier {
        tier_id: id.into(),
        name: id.into(),
        price: eur(price),
        section_ids: sections.iter().map(|s| (*s).to_owned()).collect(),
    };
    history.push(
        "show",
        &s,
        ShowEvent::PricingSet {
            tiers: vec![tier("all", 900, &["stalls", "old"])],
        },
    );
    history.push(
        "show",
        &s,
        ShowEvent::LayoutSet {
            sections: vec![stalls.clone(), floor.clone()],
        },
    );
    history.push(
        "show",
        &s,
        ShowEvent::PricingSet {
            tiers: vec![
                tier("seat", 3000, &["stalls"]),
                tier("floor", 2000, &["floor"]),
            ],
        },
    );
    history.push(
        "show",
        &s,
        ShowEvent::ShowPublished {
            sales_open_at: Utc::now() - Duration::hours(1),
            sales_close_at: Utc::now() + Duration::days(29),
            queue: Some(QueueSettings {
                enabled: false,
                admit_per_minute: 600,
                admission_minutes: 10,
            }),
            max_tickets_per_customer: None,
            published_at: Utc::now(),
        },
    );
    history.push(
        "show",
        &s,
        ShowEvent::AnnouncementPosted {
            message: "Doors at 7".into(),
            posted_at: Utc::now(),
        },
    );

    let (stalls_id, floor_id) = (format!("{s}:stalls"), format!("{s}:floor"));
    history.push(
        "inventory",
        &stalls_id,
        InventoryEvent::SectionOpened {
            show_id: show,
            section: stalls,
        },
    );
    history.push(
        "inventory",
        &floor_id,
        InventoryEvent::SectionOpened {
            show_id: show,
            section: floor,
        },
    );
    let bookings: Vec<Uuid> = (0..7).map(|_| Uuid::new_v4()).collect();
    let [b1, b2, b3, b4, b5, b6, b7] = bookings[..] else {
        unreachable!()
    };
    let later = || Utc::now() + Duration::minutes(10);
    let seats = |ids: &[&str]| {
        ids.iter()
            .map(|i| format!("stalls:{i}"))
            .collect::<Vec<_>>()
    };
    let place = |history: &mut History,
                 booking: Uuid,
                 seat_ids: Vec<String>,
                 ga: Vec<GeneralAdmission>,
                 total| {
        history.push(
            "booking",
            &booking.to_string(),
            BookingEvent::BookingPlaced {
                booking_id: booking,
                user_id: buyer,
                show_id: show,
                seats: seat_ids,
                general_admission: ga,
                total: eur(total),
                terms: Default::default(),
                hold_expires_at: later(),
                placed_at: Utc::now(),
            },
        );
    };
    let ga = |quantity| {
        vec![GeneralAdmission {
            section_id: "floor".into(),
            quantity,
        }]
    };

    // b1: two seats, paid, checked in, refunded.
    history.push(
        "inventory",
        &stalls_id,
        InventoryEvent::SeatsHeld {
            booking_id: b1,
            seats: seats(&["A:1", "A:2"]),
            quantity: 2,
            expires_at: later(),
        },
    );
    place(history, b1, seats(&["A:1", "A:2"]), vec![], 6000);
    let payment = Uuid::new_v4();
    history.push(
        "booking",
        &b1.to_string(),
        BookingEvent::PaymentRequested {
            payment_id: payment,
            card: "Visa test card".into(),
            payment_deadline: later(),
            requested_at: Utc::now(),
        },
    );
    history.push(
        "payment",
        &payment.to_string(),
        PaymentEvent::PaymentRequested {
            booking_id: b1,
            amount: eur(6000),
            card: "Visa test card".into(),
            requested_at: Utc::now(),
        },
    );
    history.push(
        "inventory",
        &stalls_id,
        InventoryEvent::HoldExtended {
            booking_id: b1,
            expires_at: later() + Duration::minutes(2),
        },
    );
    let extended_at = history.clock.expect("recorded");
    history.push(
        "payment",
        &payment.to_string(),
        PaymentEvent::PaymentSucceeded {
            succeeded_at: Utc::now(),
        },
    );
    history.push(
        "inventory",
        &stalls_id,
        InventoryEvent::HoldSold {
            booking_id: b1,
            seats: seats(&["A:1", "A:2"]),
            quantity: 2,
        },
    );
    let tickets = |booking: Uuid, places: &[Option<&str>], section: &str| -> Vec<IssuedTicket> {
        places
            .iter()
            .enumerate()
            .map(|(i, seat)| IssuedTicket {
                ticket_id: ticket_id(booking, i as u8),
                index: i as u8,
                seat_id: seat.map(|s| format!("stalls:{s}")),
                section_id: section.into(),
                status: TicketStatus::Valid,
                checked_in_at: None,
                holder_id: None,
                transfers: 0,
            })
            .collect()
    };
    history.push(
        "booking",
        &b1.to_string(),
        BookingEvent::BookingConfirmed {
            tickets: tickets(b1, &[Some("A:1"), Some("A:2")], "stalls"),
            confirmed_at: Utc::now(),
        },
    );
    history.push(
        "booking",
        &b1.to_string(),
        BookingEvent::TicketCheckedIn {
            ticket_id: ticket_id(b1, 0),
            checked_in_at: Utc::now(),
        },
    );
    // The second ticket goes to the organizer: the old one turns void, a third appears.
    history.push(
        "booking",
        &b1.to_string(),
        BookingEvent::TicketTransferred {
            ticket_id: ticket_id(b1, 1),
            new_ticket: IssuedTicket {
                ticket_id: ticket_id(b1, 2),
                index: 2,
                seat_id: Some("stalls:A:2".into()),
                section_id: "stalls".into(),
                status: TicketStatus::Valid,
                checked_in_at: None,
                holder_id: Some(organizer),
                transfers: 1,
            },
            from_user_id: buyer,
            to_user_id: organizer,
            transferred_at: Utc::now(),
        },
    );
    history.push(
        "booking",
        &b1.to_string(),
        BookingEvent::RefundRequested {
            reason: CancelReason::UserRequested,
            requested_at: Utc::now(),
        },
    );
    history.push(
        "payment",
        &payment.to_string(),
        PaymentEvent::PaymentRefundRequested {
            requested_at: Utc::now(),
        },
    );
    history.push(
        "payment",
        &payment.to_string(),
        PaymentEvent::PaymentRefunded {
            refunded_at: Utc::now(),
        },
    );
    history.push(
        "inventory",
        &stalls_id,
        InventoryEvent::SaleReturned {
            booking_id: b1,
            seats: seats(&["A:1", "A:2"]),
            quantity: 2,
        },
    );
    history.push(
        "booking",
        &b1.to_string(),
        BookingEvent::BookingRefunded {
            refunded_at: Utc::now(),
        },
    );

    // b2 holds A:3 and expires; b3 takes it over, then is cancelled; b2's late release
    // must not free b3's seat. b4 keeps B:1 held.
    history.push(
        "inventory",
        &stalls_id,
        InventoryEvent::SeatsHeld {
            booking_id: b2,
            seats: seats(&["A:3"]),
            quantity: 1,
            expires_at: Utc::now(),
        },
    );
    place(history, b2, seats(&["A:3"]), vec![], 3000);
    history.push(
        "inventory",
        &stalls_id,
        InventoryEvent::HoldExpired {
            booking_id: b2,
            seats: seats(&["A:3"]),
            quantity: 1,
        },
    );
    history.push(
        "inventory",
        &stalls_id,
        InventoryEvent::SeatsHeld {
            booking_id: b3,
            seats: seats(&["A:3"]),
            quantity: 1,
            expires_at: later(),
        },
    );
    history.push(
        "inventory",
        &stalls_id,
        InventoryEvent::HoldReleased {
            booking_id: b2,
            seats: seats(&["A:3"]),
            quantity: 1,
        },
    );
    history.push(
        "booking",
        &b2.to_string(),
        BookingEvent::BookingExpired {
            expired_at: Utc::now(),
        },
    );
    place(history, b3, seats(&["A:3"]), vec![], 3000);
    let declined = Uuid::new_v4();
    history.push_raw(
        "payment",
        &declined.to_string(),
        "PaymentRequested",
        "1",
        json!({"booking_id": b3, "amount": eur(3000), "token": "tok_decline",
               "requested_at": Utc::now()}),
    );
    history.push(
        "payment",
        &declined.to_string(),
        PaymentEvent::PaymentFailed {
            reason: "declined".into(),
            failed_at: Utc::now(),
        },
    );
    history.push(
        "booking",
        &b3.to_string(),
        BookingEvent::BookingCancelled {
            reason: CancelReason::PaymentDeclined,
            detail: "the card was declined".into(),
            cancelled_at: Utc::now(),
        },
    );
    history.push(
        "inventory",
        &stalls_id,
        InventoryEvent::SeatsHeld {
            booking_id: b4,
            seats: seats(&["B:1"]),
            quantity: 1,
            expires_at: later(),
        },
    );
    place(history, b4, seats(&["B:1"]), vec![], 3000);

    // General admission: b5 buys 3 and returns them; b6 holds 2 through payment; b7's
    // hold is released.
    for (booking, quantity) in [(b5, 3), (b6, 2), (b7, 4)] {
        history.push(
            "inventory",
            &floor_id,
            InventoryEvent::SeatsHeld {
                booking_id: booking,
                seats: vec![],
                quantity,
                expires_at: later(),
            },
        );
        place(
            history,
            booking,
            vec![],
            ga(quantity),
            2000 * i64::from(quantity),
        );
    }
    history.push(
        "inventory",
        &floor_id,
        InventoryEvent::HoldExtended {
            booking_id: b5,
            expires_at: later() + Duration::minutes(2),
        },
    );
    history.push(
        "inventory",
        &floor_id,
        InventoryEvent::HoldSold {
            booking_id: b5,
            seats: vec![],
            quantity: 3,
        },
    );
    history.push(
        "booking",
        &b5.to_string(),
        BookingEvent::BookingConfirmed {
            tickets: tickets(b5, &[None, None, None], "floor"),
            confirmed_at: Utc::now(),
        },
    );
    history.push(
        "inventory",
        &floor_id,
        InventoryEvent::SaleReturned {
            booking_id: b5,
            seats: vec![],
            quantity: 1,
        },
    );
    // Stored before issue 22: version 1, with the card token in the event.
    history.push_raw(
        "booking",
        &b6.to_string(),
        "PaymentRequested",
        "1",
        json!({"payment_id": Uuid::new_v4(), "payment_token": "tok_timeout",
               "payment_deadline": later(), "requested_at": Utc::now()}),
    );
    history.push(
        "inventory",
        &floor_id,
        InventoryEvent::HoldExtended {
            booking_id: b6,
            expires_at: later() + Duration::minutes(2),
        },
    );
    history.push(
        "inventory",
        &floor_id,
        InventoryEvent::HoldReleased {
            booking_id: b7,
            seats: vec![],
            quantity: 4,
        },
    );

    let line = |quantity: u32, unit| InvoiceLine {
        tier_id: "seat".into(),
        description: "Seat".into(),
        quantity,
        unit_price: eur(unit),
        amount: eur(unit * i64::from(quantity)),
    };
    let document =
        |history: &mut History, booking: Uuid, kind, number, lines: Vec<InvoiceLine>, total| {
            history.push(
                "ledger",
                &o,
                LedgerEvent::DocumentIssued {
                    invoice_id: Uuid::new_v4(),
                    kind,
                    number,
                    booking_id: booking,
                    event_id: show,
                    buyer_id: buyer,
                    lines,
                    total: eur(total),
                    issued_at: Utc::now(),
                },
            );
        };
    document(
        history,
        b1,
        DocumentKind::Invoice,
        1,
        vec![line(2, 3000)],
        6000,
    );
    document(
        history,
        b5,
        DocumentKind::Invoice,
        2,
        vec![line(3, 2000)],
        6000,
    );
    document(
        history,
        b1,
        DocumentKind::CreditNote,
        3,
        vec![line(2, -3000)],
        -6000,
    );

    // A voucher with its book entry, a use taken and given back, and a buyer's counted
    // places: no read model folds them (uses are read from the write side), but they travel.
    let voucher = Uuid::new_v4();
    history.push(
        "voucher_book",
        &show.to_string(),
        VoucherBookEvent::VoucherCodeAdded {
            voucher_id: voucher,
            code: "EARLY".into(),
        },
    );
    history.push(
        "voucher",
        &voucher.to_string(),
        VoucherEvent::VoucherCreated {
            voucher_id: voucher,
            show_id: show,
            code: "EARLY".into(),
            discount: Discount::Percent(10),
            max_uses: 10,
            valid_until: None,
            tier_ids: vec![],
            created_at: Utc::now(),
        },
    );
    for event in [
        VoucherEvent::VoucherRedeemed {
            booking_id: b5,
            redeemed_at: Utc::now(),
        },
        VoucherEvent::VoucherReturned { booking_id: b5 },
    ] {
        history.push("voucher", &voucher.to_string(), event);
    }
    let counted = customer_places_id(show, buyer);
    for event in [
        CustomerEvent::PlacesReserved {
            booking_id: b5,
            places: 3,
        },
        CustomerEvent::PlacesReleased { booking_id: b5 },
    ] {
        history.push("customer_places", &counted, event);
    }
    for event in [
        WaitlistEvent::WaitlistJoined {
            show_id: show,
            user_id: buyer,
            quantity: 2,
            joined_at: Utc::now(),
        },
        WaitlistEvent::WaitlistOffered {
            user_id: buyer,
            booking_id: b5,
            expires_at: Utc::now(),
            offered_at: Utc::now(),
        },
        WaitlistEvent::WaitlistOfferLapsed {
            user_id: buyer,
            booking_id: b5,
            lapsed_at: Utc::now(),
        },
        WaitlistEvent::WaitlistJoined {
            show_id: show,
            user_id: buyer,
            quantity: 2,
            joined_at: Utc::now(),
        },
        WaitlistEvent::WaitlistOffered {
            user_id: buyer,
            booking_id: b5,
            expires_at: Utc::now(),
            offered_at: Utc::now(),
        },
        WaitlistEvent::WaitlistOfferAccepted {
            user_id: buyer,
            booking_id: b5,
            accepted_at: Utc::now(),
        },
        WaitlistEvent::WaitlistLeft {
            user_id: buyer,
            left_at: Utc::now(),
        },
    ] {
        history.push("waitlist", &show.to_string(), event);
    }

    // A show cancelled at version 2, and one cancelled before `reason` existed (version 1).
    let (cancelled_v2, cancelled_v1) = (Uuid::new_v4(), Uuid::new_v4());
    for id in [cancelled_v2, cancelled_v1] {
        history.push(
            "show",
            &id.to_string(),
            ShowEvent::ShowCreated {
                show_id: id,
                organizer_id: organizer,
                name: "Cancelled".into(),
                venue: "Nowhere".into(),
                description: None,
                starts_at: Utc::now() + Duration::days(3),
                created_at: Utc::now(),
            },
        );
    }
    history.push(
        "show",
        &cancelled_v2.to_string(),
        ShowEvent::ShowCancelled {
            cancelled_at: Utc::now(),
            reason: "the venue flooded".into(),
        },
    );
    history.push_raw(
        "show",
        &cancelled_v1.to_string(),
        "ShowCancelled",
        "1",
        json!({"cancelled_at": Utc::now()}),
    );
    Made {
        organizer,
        show,
        cancelled_v1,
        kept_address: kept,
        extended_at,
        bookings,
    }
}
