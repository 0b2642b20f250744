//! Offers from a show's waiting list, as one saga step per show (`Step::WaitlistOffers`),
//! scheduled when someone joins and whenever one of the show's bookings ends.
//!
//! First every open offer whose booking ended is settled (paid → accepted; expired,
//! cancelled → lapsed), then the places free at that moment go to those waiting, first come
//! first, each to the first person whose quantity fits in one section (the best seats as
//! `best_available` chooses them, adjacent when possible, or general-admission places) and
//! whose customer limit allows it. An offer is a booking placed in the same unit as the
//! section's hold, the buyer's counted places and the list's `Offer`: the places are held
//! for that person alone until the offer expires, and a crash can leave neither a hold
//! without its offer nor an offer without its hold. Every unit is idempotent (an entry no
//! longer waiting is skipped), so the step may run any number of times.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::booking::{BookingCommand, BookingStatus, GeneralAdmission, Terms};
use domain::customer::{CustomerCommand, customer_places_id};
use domain::inventory::inventory_id;
use domain::purchase::{self, BestRequest, PurchasePlan, PurchaseRequest};
use domain::show::Show;
use domain::waitlist::{Entry, EntryStatus, WaitlistCommand};
use plumbing::store::{Unit, UnitError};
use uuid::Uuid;

use crate::worker::Stores;

/// A published show's layout and prices never change; a cancellation or a closed sale
/// seen a second late costs at most an offer that the saga's cancellation then ends.
const SHOW_FRESH_FOR: Duration = Duration::from_secs(1);

/// Settles the show's ended offers and offers its free places to those waiting.
pub async fn run(
    stores: &Stores,
    show_id: Uuid,
    offer_for: chrono::Duration,
    metadata: &HashMap<String, String>,
) -> anyhow::Result<()> {
    let id = show_id.to_string();
    let (list, _) = stores.waitlists.current(&id).await?;
    for booking_id in list.open_offers().collect::<Vec<_>>() {
        settle(stores, show_id, booking_id, metadata).await?;
    }
    let now = Utc::now();
    let (show, _) = stores
        .shows
        .cached(&id, SHOW_FRESH_FOR, |s| s.starts_at.is_some())
        .await?;
    if !show.on_sale(now) {
        return Ok(());
    }
    let (list, _) = stores.waitlists.current(&id).await?;
    let waiting: Vec<Entry> = list.waiting().cloned().collect();
    if waiting.is_empty() {
        return Ok(());
    }
    let mut free = free_places(stores, &show, now).await?;
    for entry in waiting {
        // Sections in layout order where the quantity could fit; only those are tried.
        let candidates: Vec<String> = free
            .iter()
            .filter(|(_, available)| *available >= entry.quantity)
            .map(|(section_id, _)| section_id.clone())
            .collect();
        for section_id in candidates {
            let offer = Offer {
                show: &show,
                user_id: entry.user_id,
                quantity: entry.quantity,
                section_id: &section_id,
                expires_at: now + offer_for,
                now,
            };
            match offer.place(stores, metadata).await? {
                Placed::Offered => {
                    if let Some((_, available)) = free.iter_mut().find(|(s, _)| *s == section_id) {
                        *available -= entry.quantity;
                    }
                    tracing::info!(%show_id, user_id = %entry.user_id, section_id, "waiting-list offer made");
                    break;
                }
                Placed::DoesNotFit => continue,
                Placed::NotForThem => break,
            }
        }
    }
    Ok(())
}

/// Each section's free places at `now`, in layout order (a section nobody has held in yet has
/// no stream: all of it is free).
async fn free_places(
    stores: &Stores,
    show: &Show,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<(String, u32)>> {
    let Some(show_id) = show.show_id else {
        return Ok(Vec::new());
    };
    let mut free = Vec::with_capacity(show.sections.len());
    for section in &show.sections {
        let id = inventory_id(show_id, section.section_id());
        let available = stores
            .inventory
            .with_cached(
                &id,
                Duration::ZERO,
                |_| false,
                |inventory, _| inventory.available_in(section, now),
            )
            .await?;
        free.push((section.section_id().to_owned(), available));
    }
    Ok(free)
}

/// Moves an open offer on once its booking ended: paid → accepted, otherwise lapsed.
async fn settle(
    stores: &Stores,
    show_id: Uuid,
    booking_id: Uuid,
    metadata: &HashMap<String, String>,
) -> anyhow::Result<()> {
    let mut unit = Unit::new(metadata);
    let list = unit.stream(&stores.waitlists, &show_id.to_string());
    // Declared though only read: the append checks it did not move meanwhile.
    let booking = unit.stream(&stores.bookings, &booking_id.to_string());
    let outcome = unit
        .run(move |d| {
            let accepted = match d.state(&booking).status {
                // Paid: a refund later does not make it an unused offer.
                BookingStatus::Confirmed
                | BookingStatus::RefundPending
                | BookingStatus::Refunded => true,
                BookingStatus::Expired | BookingStatus::Cancelled => false,
                BookingStatus::Held | BookingStatus::PaymentPending => return Ok(()),
            };
            d.execute(
                &list,
                WaitlistCommand::Settle {
                    booking_id,
                    accepted,
                    now: Utc::now(),
                },
            )
            .map(|_| ())
        })
        .await;
    match outcome {
        Ok(_) => Ok(()),
        Err(UnitError::Rejected(err)) => anyhow::bail!("settle offer {booking_id}: {err}"),
        Err(UnitError::Contended) => anyhow::bail!("the waiting list is contended"),
        Err(UnitError::Store(err)) => Err(err.into()),
    }
}

/// How an attempt to offer places in one section ended.
enum Placed {
    Offered,
    /// The section could not supply the places (taken meanwhile, or not side by side).
    DoesNotFit,
    /// Not for this person now: no longer waiting, or past their customer limit.
    NotForThem,
}

#[derive(Debug)]
enum Refusal {
    DoesNotFit,
    NotForThem,
    Failed(String),
}

/// One person's offer in one section.
struct Offer<'a> {
    show: &'a Show,
    user_id: Uuid,
    quantity: u32,
    section_id: &'a str,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
}

impl Offer<'_> {
    /// The section's plan: the best seats there, or general-admission places.
    fn plan(&self) -> Option<(PurchasePlan, bool)> {
        let section = self.show.section(self.section_id)?;
        if section.is_seated() {
            let request = BestRequest {
                quantity: self.quantity,
                section_id: Some(self.section_id),
                tier_id: None,
                adjacent: true,
            };
            let plan = purchase::plan_best(self.show, request, self.now).ok()?;
            Some((plan.into_iter().next()?, true))
        } else {
            let general_admission = [GeneralAdmission {
                section_id: self.section_id.to_owned(),
                quantity: self.quantity,
            }];
            let request = PurchaseRequest {
                seats: &[],
                general_admission: &general_admission,
            };
            let plan = purchase::plan(self.show, request, self.now).ok()?;
            Some((plan, false))
        }
    }

    async fn place(
        &self,
        stores: &Stores,
        metadata: &HashMap<String, String>,
    ) -> anyhow::Result<Placed> {
        let Some(show_id) = self.show.show_id else {
            return Ok(Placed::NotForThem);
        };
        let Some((plan, seated)) = self.plan() else {
            return Ok(Placed::DoesNotFit);
        };
        let (user_id, quantity, now, expires_at) =
            (self.user_id, self.quantity, self.now, self.expires_at);
        let booking_id = Uuid::new_v4();
        let mut unit = Unit::new(metadata);
        let list = unit.stream(&stores.waitlists, &show_id.to_string());
        let [(section_id, hold)] = plan
            .holds(show_id, booking_id, expires_at, now)
            .try_into()
            .map_err(|_| anyhow::anyhow!("an offer's plan holds in one section"))?;
        let section = unit.stream(&stores.inventory, &inventory_id(show_id, &section_id));
        let customer = self.show.max_tickets_per_customer.map(|limit| {
            let id = customer_places_id(show_id, user_id);
            (unit.stream(&stores.customers, &id), limit)
        });
        let booking = unit.new_stream(&stores.bookings, &booking_id.to_string());
        let general_admission = if seated {
            Vec::new()
        } else {
            vec![GeneralAdmission {
                section_id: section_id.clone(),
                quantity,
            }]
        };
        let total = plan.total.clone();
        let outcome = unit
            .run(move |d| {
                let waiting = d
                    .state(&list)
                    .entry(user_id)
                    .is_some_and(|e| e.status == EntryStatus::Waiting);
                if !waiting {
                    return Err(Refusal::NotForThem);
                }
                let (seats, hold) = if seated {
                    purchase::best_hold(d.state(&section), &hold, quantity, true, now)
                        .ok_or(Refusal::DoesNotFit)?
                } else {
                    (Vec::new(), hold.clone())
                };
                if let Some((stream, limit)) = &customer {
                    d.execute(
                        stream,
                        CustomerCommand::Reserve {
                            booking_id,
                            places: quantity,
                            limit: *limit,
                        },
                    )
                    .map_err(|_| Refusal::NotForThem)?;
                }
                d.execute(&section, hold).map_err(|_| Refusal::DoesNotFit)?;
                let place = BookingCommand::Place {
                    booking_id,
                    user_id,
                    show_id,
                    seats,
                    general_admission: general_admission.clone(),
                    total: total.clone(),
                    terms: Terms {
                        customer_limited: customer.is_some(),
                        offer: true,
                        ..Terms::default()
                    },
                    hold_expires_at: expires_at,
                    now,
                };
                d.execute(&booking, place)
                    .map_err(|e| Refusal::Failed(format!("place the offer: {e}")))?;
                d.execute(
                    &list,
                    WaitlistCommand::Offer {
                        user_id,
                        booking_id,
                        expires_at,
                        now,
                    },
                )
                .map_err(|_| Refusal::NotForThem)?;
                Ok(())
            })
            .await;
        match outcome {
            Ok(_) => Ok(Placed::Offered),
            Err(UnitError::Rejected(Refusal::DoesNotFit)) => Ok(Placed::DoesNotFit),
            Err(UnitError::Rejected(Refusal::NotForThem)) => Ok(Placed::NotForThem),
            Err(UnitError::Rejected(Refusal::Failed(why))) => anyhow::bail!(why),
            Err(UnitError::Contended) => anyhow::bail!("the offer's streams are contended"),
            Err(UnitError::Store(err)) => Err(err.into()),
        }
    }
}
