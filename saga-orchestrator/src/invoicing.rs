//! Invoices: a confirmed booking gets an invoice and a refunded one a credit note from its
//! organizer's `InvoiceLedger` (consumer `invoicing`, on the booking topic). The ledger
//! numbers them and refuses to issue twice, so a redelivered event — after a crash between
//! the command and the offset commit — issues nothing new; conflicts between instances are
//! retried by the store. Lines are one per tier, priced from the event's tiers.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use domain::booking::{Booking, BookingEvent};
use domain::ledger::{DocumentKind, InvoiceLedger, InvoiceLine, LedgerCommand};
use domain::money::Money;
use domain::show::Show;
use plumbing::consumer::{HandleError, Handler};
use plumbing::store::{AggregateStore, ExecuteError};
use schemas::{DecodedEvent, Envelope};

pub const CONSUMER: &str = "invoicing";

pub struct Invoicing {
    pub bookings: Arc<AggregateStore<Booking>>,
    pub shows: Arc<AggregateStore<Show>>,
    pub ledgers: Arc<AggregateStore<InvoiceLedger>>,
}

fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> HandleError {
    HandleError::Unavailable(anyhow::Error::new(err))
}

/// The tier id of the line a voucher's discount is invoiced on.
pub const DISCOUNT_LINE: &str = "discount";

/// One line per tier: the booking's places grouped by their section's tier; then a negative
/// line for a voucher's discount, so the lines add up to the booking's total.
pub fn lines(booking: &Booking, show: &Show) -> Result<Vec<InvoiceLine>, String> {
    let mut places: BTreeMap<String, u32> = BTreeMap::new();
    for seat in &booking.seats {
        let section = seat.split(':').next().unwrap_or_default();
        *places.entry(section.to_owned()).or_default() += 1;
    }
    for ga in &booking.general_admission {
        *places.entry(ga.section_id.clone()).or_default() += ga.quantity;
    }
    let mut by_tier: BTreeMap<String, (u32, Money, String)> = BTreeMap::new();
    for (section, count) in places {
        let tier = show
            .tier_of(&section)
            .ok_or_else(|| format!("section {section} has no tier"))?;
        let entry = by_tier
            .entry(tier.tier_id.clone())
            .or_insert_with(|| (0, tier.price.clone(), tier.name.clone()));
        entry.0 += count;
    }
    let mut lines: Vec<InvoiceLine> = by_tier
        .into_iter()
        .map(|(tier_id, (quantity, unit_price, name))| InvoiceLine {
            amount: Money::new(
                unit_price.amount_minor * i64::from(quantity),
                &unit_price.currency,
            ),
            description: format!("{name} - {}", show.name),
            tier_id,
            quantity,
            unit_price,
        })
        .collect();
    if let Some(discount) = booking
        .terms
        .discount
        .as_ref()
        .filter(|d| d.amount_minor > 0)
    {
        let off = Money::new(-discount.amount_minor, &discount.currency);
        lines.push(InvoiceLine {
            tier_id: DISCOUNT_LINE.to_owned(),
            description: match &booking.terms.voucher_code {
                Some(code) => format!("Voucher {code}"),
                None => "Voucher".to_owned(),
            },
            quantity: 1,
            unit_price: off.clone(),
            amount: off,
        });
    }
    Ok(lines)
}

/// The command's metadata: same correlation as the booking, caused by this event.
fn metadata(envelope: &Envelope) -> HashMap<String, String> {
    HashMap::from([
        (
            "correlation_id".to_owned(),
            envelope
                .metadata
                .correlation_id
                .clone()
                .unwrap_or_else(|| envelope.aggregate_id.clone()),
        ),
        ("causation_id".to_owned(), envelope.event_id.to_string()),
    ])
}

#[async_trait]
impl Handler for Invoicing {
    async fn handle(&self, envelope: &Envelope) -> Result<(), HandleError> {
        let event = schemas::decode(envelope).map_err(|e| HandleError::Poison(e.into()))?;
        let kind = match event {
            DecodedEvent::Booking(BookingEvent::BookingConfirmed { .. }) => DocumentKind::Invoice,
            DecodedEvent::Booking(BookingEvent::BookingRefunded { .. }) => DocumentKind::CreditNote,
            _ => return Ok(()),
        };
        // The booking as of this event at least (the saga's reactions usually have it cached).
        let (booking, _) = self
            .bookings
            .at_least(&envelope.aggregate_id, envelope.sequence)
            .await
            .map_err(unavailable)?;
        let (Some(booking_id), Some(show_id), Some(buyer_id), Some(total)) = (
            booking.booking_id,
            booking.show_id,
            booking.user_id,
            booking.total.clone(),
        ) else {
            return Err(HandleError::Poison(anyhow::anyhow!(
                "booking {} is incomplete",
                envelope.aggregate_id
            )));
        };
        // Its organizer, name and tiers never change once it is on sale.
        let (show, _) = self
            .shows
            .cached(&show_id.to_string(), Duration::MAX, |s| {
                s.organizer_id.is_some()
            })
            .await
            .map_err(unavailable)?;
        let organizer = show.organizer_id.ok_or_else(|| {
            HandleError::Poison(anyhow::anyhow!("event {show_id} has no organizer"))
        })?;
        let lines = lines(&booking, &show).map_err(|e| HandleError::Poison(anyhow::anyhow!(e)))?;
        let command = LedgerCommand::Issue {
            kind,
            booking_id,
            event_id: show_id,
            buyer_id,
            lines,
            total,
            now: Utc::now(),
        };
        match self
            .ledgers
            .execute(&organizer.to_string(), command, &metadata(envelope))
            .await
        {
            Ok(_) => Ok(()),
            Err(ExecuteError::Rejected(err)) => Err(HandleError::Poison(anyhow::Error::new(err))),
            Err(ExecuteError::Contended) => Err(HandleError::Transient(anyhow::anyhow!(
                "ledger {organizer} contended"
            ))),
            Err(ExecuteError::Store(err)) => Err(unavailable(err)),
        }
    }
}
