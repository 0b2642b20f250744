//! `sales`: what each event sold, by tier and by minute — `sales_section_tier` (each
//! section's tier and price) and `sales_booking` (each booking's places per section), from
//! the `Show` and `Booking` streams. Tiers are joined in when read: pricing them here would
//! depend on the show stream having been applied first, and the show and booking topics are
//! not ordered with each other (pricing is frozen once the event is published, so the join
//! gives the prices the booking was made at). Tables: `migrations/0010_sales.sql`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::booking::{BookingEvent, BookingStatus};
use domain::money::Money;
use domain::show::{ShowEvent, Tier};
use plumbing::position::ReadModel;
use schemas::DecodedEvent;
use schemas::api::sales::{
    BookingCounts, SalesPoint, SalesReport, SalesTimeseries, TierSales, VoucherSales,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::bookings::{BookingKey, status};
use super::ids::uuid_id;
use crate::fold::{Fact, Model, NoGroup, Poison, Row, Ts};

pub const NAME: ReadModel = ReadModel {
    consumer: "sales",
    aggregate_types: &["show", "booking"],
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SectionTierRow {
    pub event_id: Uuid,
    pub section_id: String,
    pub tier_id: String,
    pub price_minor: i64,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SectionKey {
    pub event_id: Uuid,
    pub section_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EventGroup {
    pub event_id: Uuid,
}

impl Row for SectionTierRow {
    const TABLE: &'static str = "sales_section_tier";
    type Key = SectionKey;
    type Group = EventGroup;
    fn key(&self) -> SectionKey {
        SectionKey {
            event_id: self.event_id,
            section_id: self.section_id.clone(),
        }
    }
    fn group(&self) -> Option<EventGroup> {
        Some(EventGroup {
            event_id: self.event_id,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaleRow {
    pub booking_id: Uuid,
    pub event_id: Uuid,
    pub status: String,
    pub places: i32,
    pub total_minor: i64,
    pub currency: String,
    /// What a voucher took off `total_minor`, and its code.
    pub discount_minor: i64,
    pub voucher_code: Option<String>,
    /// `[{"section_id", "places"}]`, by section.
    pub lines: Value,
    pub hold_expires_at: Ts,
    pub placed_at: Ts,
    pub confirmed_at: Option<Ts>,
    pub refunded_at: Option<Ts>,
}

impl Row for SaleRow {
    const TABLE: &'static str = "sales_booking";
    type Key = BookingKey;
    type Group = NoGroup;
    fn key(&self) -> BookingKey {
        BookingKey {
            booking_id: self.booking_id,
        }
    }
}

crate::rows! {
    pub struct Rows { tiers: SectionTierRow, sales: SaleRow }
}

pub struct Sales;

impl Model for Sales {
    const NAME: ReadModel = NAME;
    type Rows = Rows;

    fn apply(rows: &mut Rows, fact: &Fact) -> Result<(), Poison> {
        match &fact.event {
            DecodedEvent::Show(ShowEvent::PricingSet { tiers }) => {
                set_pricing(rows, uuid_id("show", fact)?, tiers);
            }
            DecodedEvent::Booking(event) => {
                let key = BookingKey {
                    booking_id: uuid_id("booking", fact)?,
                };
                apply_booking(rows, key, event);
            }
            _ => {}
        }
        Ok(())
    }
}

fn set_pricing(rows: &mut Rows, event_id: Uuid, tiers: &[Tier]) {
    for key in rows.tiers.group(&EventGroup { event_id }) {
        rows.tiers.remove(&key);
    }
    for tier in tiers {
        for section in &tier.section_ids {
            rows.tiers.put(SectionTierRow {
                event_id,
                section_id: section.clone(),
                tier_id: tier.tier_id.clone(),
                price_minor: tier.price.amount_minor,
                currency: tier.price.currency.clone(),
            });
        }
    }
}

fn apply_booking(rows: &mut Rows, key: BookingKey, event: &BookingEvent) {
    let mut set = |to: BookingStatus, at: Option<(DateTime<Utc>, bool)>| {
        rows.sales.update(&key, |s| {
            s.status = status(to);
            match at {
                Some((at, false)) => s.confirmed_at = Some(at.into()),
                Some((at, true)) => s.refunded_at = Some(at.into()),
                None => {}
            }
        });
    };
    match event {
        BookingEvent::BookingPlaced {
            show_id,
            seats,
            general_admission,
            total,
            terms,
            hold_expires_at,
            placed_at,
            ..
        } => {
            // Places per section: a seat id starts with its section.
            let mut places: BTreeMap<&str, i64> = BTreeMap::new();
            for seat in seats {
                *places
                    .entry(seat.split(':').next().unwrap_or_default())
                    .or_default() += 1;
            }
            for ga in general_admission {
                *places.entry(ga.section_id.as_str()).or_default() += i64::from(ga.quantity);
            }
            let lines: Vec<Value> = places
                .iter()
                .map(|(section, places)| json!({"section_id": section, "places": places}))
                .collect();
            rows.sales.put_if_absent(SaleRow {
                booking_id: key.booking_id,
                event_id: *show_id,
                status: status(BookingStatus::Held),
                places: i32::try_from(places.values().sum::<i64>()).unwrap_or(i32::MAX),
                total_minor: total.amount_minor,
                currency: total.currency.clone(),
                discount_minor: terms.discount.as_ref().map_or(0, |d| d.amount_minor),
                voucher_code: terms.voucher_code.clone(),
                lines: Value::Array(lines),
                hold_expires_at: (*hold_expires_at).into(),
                placed_at: (*placed_at).into(),
                confirmed_at: None,
                refunded_at: None,
            });
        }
        BookingEvent::PaymentRequested { .. } => set(BookingStatus::PaymentPending, None),
        BookingEvent::BookingConfirmed { confirmed_at, .. } => {
            set(BookingStatus::Confirmed, Some((*confirmed_at, false)));
        }
        BookingEvent::BookingCancelled { .. } => set(BookingStatus::Cancelled, None),
        BookingEvent::BookingExpired { .. } => set(BookingStatus::Expired, None),
        BookingEvent::RefundRequested { .. } => set(BookingStatus::RefundPending, None),
        BookingEvent::BookingRefunded { refunded_at } => {
            set(BookingStatus::Refunded, Some((*refunded_at, true)));
        }
        // A transfer changes who holds a ticket, not what was sold.
        BookingEvent::TicketCheckedIn { .. } | BookingEvent::TicketTransferred { .. } => {}
    }
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The sales figures of `event_id`, whose tiers (every one appears, sold or not) and
/// currency come from the show.
pub async fn report(
    pool: &PgPool,
    event_id: Uuid,
    tiers: &[Tier],
    currency: &str,
) -> Result<SalesReport, sqlx::Error> {
    let money = |amount_minor: i64| Money {
        amount_minor,
        currency: currency.to_owned(),
    };
    let (sold, revenue, discounts, active, confirmed, cancelled, expired, refunded): (
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
    ) = sqlx::query_as(
        "SELECT coalesce(sum(places) FILTER (WHERE status = 'confirmed'), 0)::bigint,
                coalesce(sum(total_minor) FILTER (WHERE status = 'confirmed'), 0)::bigint,
                coalesce(sum(discount_minor) FILTER (WHERE status = 'confirmed'), 0)::bigint,
                count(*) FILTER (WHERE status = 'payment_pending'
                                    OR (status = 'held' AND hold_expires_at > now())),
                count(*) FILTER (WHERE status = 'confirmed'),
                count(*) FILTER (WHERE status = 'cancelled'),
                count(*) FILTER (WHERE status = 'expired'),
                count(*) FILTER (WHERE status = 'refunded')
           FROM sales_booking WHERE event_id = $1",
    )
    .bind(event_id)
    .fetch_one(pool)
    .await?;
    let by_tier: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT t.tier_id, sum((line->>'places')::bigint)::bigint,
                sum((line->>'places')::bigint * t.price_minor)::bigint
           FROM sales_booking b
          CROSS JOIN LATERAL jsonb_array_elements(b.lines) AS line
           JOIN sales_section_tier t
             ON t.event_id = b.event_id AND t.section_id = line->>'section_id'
          WHERE b.event_id = $1 AND b.status = 'confirmed'
          GROUP BY 1 ORDER BY 1",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await?;
    let by_tier = tiers
        .iter()
        .map(|tier| {
            let (sold, amount) = by_tier
                .iter()
                .find(|(id, _, _)| *id == tier.tier_id)
                .map_or((0, 0), |(_, s, a)| (*s, *a));
            TierSales {
                tier_id: tier.tier_id.clone(),
                sold: count(sold),
                revenue: money(amount),
            }
        })
        .collect();
    let vouchers: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT voucher_code, count(*), sum(discount_minor)::bigint
           FROM sales_booking
          WHERE event_id = $1 AND status = 'confirmed' AND voucher_code IS NOT NULL
          GROUP BY 1 ORDER BY 1",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await?;
    Ok(SalesReport {
        tickets_sold: count(sold),
        revenue: money(revenue),
        discounts: money(discounts),
        by_tier,
        vouchers: vouchers
            .into_iter()
            .map(|(code, uses, discount)| VoucherSales {
                code,
                uses: count(uses),
                discount: money(discount),
            })
            .collect(),
        active_holds: count(active),
        bookings: BookingCounts {
            confirmed: count(confirmed),
            cancelled: count(cancelled),
            expired: count(expired),
            refunded: count(refunded),
        },
        // Filled from the write side by the route (the list is no read model).
        waitlist: Default::default(),
    })
}

/// Sales and refunds of `event_id` per minute, oldest first.
pub async fn timeseries(
    pool: &PgPool,
    event_id: Uuid,
    currency: &str,
) -> Result<SalesTimeseries, sqlx::Error> {
    let rows: Vec<(DateTime<Utc>, i64, i64, i64, i64)> = sqlx::query_as(
        "WITH moves AS (
            SELECT date_trunc('minute', confirmed_at) AS minute, places AS sold,
                   total_minor AS revenue, 0 AS refunded_places, 0::bigint AS refunded
              FROM sales_booking WHERE event_id = $1 AND confirmed_at IS NOT NULL
            UNION ALL
            SELECT date_trunc('minute', refunded_at), 0, 0, places, total_minor
              FROM sales_booking WHERE event_id = $1 AND refunded_at IS NOT NULL)
         SELECT minute, sum(sold)::bigint, sum(revenue)::bigint,
                sum(refunded_places)::bigint, sum(refunded)::bigint
           FROM moves GROUP BY minute ORDER BY minute",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await?;
    let money = |amount_minor: i64| Money {
        amount_minor,
        currency: currency.to_owned(),
    };
    let points = rows
        .into_iter()
        .map(
            |(minute, sold, revenue, refunded_places, refunded)| SalesPoint {
                minute,
                tickets_sold: count(sold),
                revenue: money(revenue),
                tickets_refunded: count(refunded_places),
                refunded: money(refunded),
            },
        )
        .collect();
    Ok(SalesTimeseries { event_id, points })
}
