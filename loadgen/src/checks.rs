//! End-of-run checks against the platform's database: relay and projection lag (and how
//! long they take to drain once the load stops), and correctness — no seat sold twice, sold
//! = tickets, nothing held once every hold and payment deadline has passed.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use domain::inventory::{SectionInventory, inventory_id};
use plumbing::position::ReadModel;
use plumbing::store::AggregateStore;
use projections::models::{availability, bookings, catalog};
use sqlx::PgPool;
use uuid::Uuid;

use crate::setup::Event;

const READ_MODELS: [ReadModel; 3] = [catalog::NAME, availability::NAME, bookings::NAME];

/// Events the relay has not published and each projection has not applied.
pub async fn backlog(pool: &PgPool) -> anyhow::Result<(i64, Vec<(&'static str, i64)>)> {
    let relay: i64 = sqlx::query_scalar(
        "SELECT coalesce((SELECT max(global_position) FROM events), 0)
              - coalesce((SELECT max(global_position) FROM relay_checkpoint), 0)",
    )
    .fetch_one(pool)
    .await?;
    let mut consumers = Vec::new();
    for model in READ_MODELS {
        let types: Vec<String> = model
            .aggregate_types
            .iter()
            .map(|t| (*t).to_owned())
            .collect();
        let behind: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(e.last - coalesce(c.last_sequence, 0)), 0)::bigint
             FROM (SELECT aggregate_type, aggregate_id, max(sequence) AS last FROM events
                   WHERE aggregate_type = ANY($2) GROUP BY 1, 2) e
             LEFT JOIN consumer_applied c ON c.consumer = $1
                  AND c.aggregate_type = e.aggregate_type AND c.aggregate_id = e.aggregate_id
             WHERE e.last > coalesce(c.last_sequence, 0)",
        )
        .bind(model.consumer)
        .bind(&types)
        .fetch_one(pool)
        .await?;
        consumers.push((model.consumer, behind));
    }
    Ok((relay, consumers))
}

/// Prints the backlog when the load stopped and how long it took to drain (deadline 60 s).
pub async fn lag_after_load(pool: &PgPool) -> anyhow::Result<Option<Duration>> {
    let stopped = Instant::now();
    let (relay, consumers) = backlog(pool).await?;
    println!("backlog when the load stopped: relay {relay} events, projections {consumers:?}");
    loop {
        let (relay, consumers) = backlog(pool).await?;
        if relay == 0 && consumers.iter().all(|(_, behind)| *behind == 0) {
            let drained = stopped.elapsed();
            println!(
                "relay and projections caught up {:.2} s after the load stopped",
                drained.as_secs_f64()
            );
            return Ok(Some(drained));
        }
        if stopped.elapsed() > Duration::from_secs(60) {
            println!("NOT caught up 60 s after the load: relay {relay}, projections {consumers:?}");
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Correctness of `events` once every hold and payment deadline has passed: waits until
/// `quiet_after` (the last hold's TTL plus the payment timeout), then compares the store's
/// inventory with the read models. Returns whether everything holds.
pub async fn correctness(
    pool: &PgPool,
    events: &[Event],
    quiet_after: Duration,
) -> anyhow::Result<bool> {
    if !quiet_after.is_zero() {
        println!(
            "waiting {:.0} s for every hold and payment deadline to pass",
            quiet_after.as_secs_f64()
        );
        tokio::time::sleep(quiet_after).await;
        // Then for the projections to apply the expiries and cancellations that follow.
        lag_after_load(pool).await?;
    }
    let store: AggregateStore<SectionInventory> =
        AggregateStore::new(pool.clone(), ()).with_snapshots(100);
    let now = Utc::now();
    let mut ok = true;
    let (mut sold_total, mut tickets_total) = (0u64, 0i64);
    for event in events {
        let event_id: Uuid = event.id.parse().context("event id")?;
        let (mut sold, mut held) = (0u64, 0u64);
        for section in &event.sections {
            let (inventory, _) = store
                .current(&inventory_id(event_id, &section.section_id))
                .await?;
            sold += u64::from(inventory.sold());
            held += u64::from(inventory.held(now));
        }
        // A seat in two confirmed bookings is a seat sold twice.
        let doubly_sold: Vec<(String, i64)> = sqlx::query_as(
            "SELECT seat, count(*) FROM booking_view, jsonb_array_elements_text(seats) AS seat
             WHERE event_id = $1 AND status = 'confirmed' GROUP BY seat HAVING count(*) > 1",
        )
        .bind(event_id)
        .fetch_all(pool)
        .await?;
        let tickets: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM ticket_view WHERE event_id = $1 AND status <> 'void'",
        )
        .bind(event_id)
        .fetch_one(pool)
        .await?;
        if !doubly_sold.is_empty() {
            ok = false;
            println!("OVERSOLD in {}: {doubly_sold:?}", event.id);
        }
        if i64::try_from(sold)? != tickets {
            ok = false;
            println!(
                "event {}: {sold} places sold in the store, {tickets} tickets",
                event.id
            );
        }
        if held != 0 && !quiet_after.is_zero() {
            ok = false;
            println!(
                "event {}: {held} places still held after every deadline",
                event.id
            );
        }
        sold_total += sold;
        tickets_total += tickets;
    }
    println!(
        "correctness: {sold_total} places sold, {tickets_total} tickets, no seat in two \
         confirmed bookings: {}",
        if ok { "OK" } else { "FAILED" }
    );
    Ok(ok)
}

/// When the last booking of `events` was confirmed (for seats sold per second).
pub async fn last_confirmation(
    pool: &PgPool,
    events: &[Event],
) -> anyhow::Result<Option<chrono::DateTime<Utc>>> {
    let ids: Vec<Uuid> = events.iter().filter_map(|e| e.id.parse().ok()).collect();
    Ok(sqlx::query_scalar(
        "SELECT max(e.recorded_at) FROM events e
         JOIN booking_view b ON b.booking_id::text = e.aggregate_id
         WHERE e.aggregate_type = 'booking' AND e.event_type = 'BookingConfirmed'
           AND b.event_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_one(pool)
    .await?)
}

/// Whether every watcher's seat map (seat → the status its last frame gave it) matches the
/// store's inventory now, seat by seat; with a line saying so.
pub async fn watchers_agree(
    pool: &PgPool,
    event: &Event,
    maps: &[std::collections::HashMap<String, String>],
) -> anyhow::Result<(bool, String)> {
    let store: AggregateStore<SectionInventory> =
        AggregateStore::new(pool.clone(), ()).with_snapshots(100);
    let event_id: Uuid = event.id.parse().context("event id")?;
    let now = Utc::now();
    let mut sections = std::collections::HashMap::new();
    for section in &event.sections {
        let (inventory, _) = store
            .current(&inventory_id(event_id, &section.section_id))
            .await?;
        sections.insert(section.section_id.clone(), inventory);
    }
    let (mut seats, mut wrong) = (0usize, Vec::new());
    for map in maps {
        for (seat, status) in map {
            seats += 1;
            let section = seat.split(':').next().unwrap_or_default();
            let actual = sections
                .get(section)
                .map_or("unknown section", |inventory| {
                    inventory.seat_status(seat, now)
                });
            if actual != status {
                wrong.push(format!("{seat}: {status}, store {actual}"));
            }
        }
    }
    let line = format!(
        "watchers' seat maps: {seats} seat statuses on {} timed sockets, {} differ from the store{}",
        maps.len(),
        wrong.len(),
        if wrong.is_empty() {
            String::new()
        } else {
            format!(" (e.g. {:?})", &wrong[..wrong.len().min(5)])
        }
    );
    Ok((wrong.is_empty(), line))
}
