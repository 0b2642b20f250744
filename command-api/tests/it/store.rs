//! The aggregate store on real PostgreSQL: snapshots bound cold loads and stay correct when
//! two processes (two stores) write the same aggregate.

use std::collections::HashMap;

use chrono::{Duration, Utc};
use domain::inventory::{HoldRequest, InventoryCommand, SectionInventory, inventory_id};
use domain::show::{Row, Section};
use plumbing::store::AggregateStore;
use plumbing::testkit;
use uuid::Uuid;

fn section() -> Section {
    Section::Seated {
        section_id: "s".into(),
        name: "S".into(),
        rows: vec![Row {
            row: "A".into(),
            seats: 500,
        }],
    }
}

fn hold(show: Uuid, seat: u32) -> InventoryCommand {
    let now = Utc::now();
    InventoryCommand::Hold {
        show_id: show,
        section: section(),
        booking_id: Uuid::new_v4(),
        request: HoldRequest::Seats(vec![format!("s:A:{seat}")]),
        expires_at: now + Duration::minutes(10),
        now,
    }
}

#[tokio::test]
async fn snapshots_bound_cold_loads_and_survive_two_writers() {
    let db = testkit::fresh_database().await;
    let show = Uuid::new_v4();
    let id = inventory_id(show, "s");
    let meta = HashMap::new();
    // Two stores = two command-api processes sharing the database.
    let a = AggregateStore::<SectionInventory>::new(db.pool.clone(), ()).with_snapshots(50);
    let b = AggregateStore::<SectionInventory>::new(db.pool.clone(), ()).with_snapshots(50);
    let writes = (1..=240u32).map(|seat| {
        let store = if seat % 2 == 0 { &a } else { &b };
        let meta = &meta;
        let id = &id;
        async move {
            store
                .execute(id, hold(show, seat), meta)
                .await
                .map(|e| e.version)
        }
    });
    for result in futures::future::join_all(writes).await {
        result.expect("every hold succeeds despite the other writer");
    }

    let (last_sequence, snapshots): (i64, i64) = sqlx::query_as(
        "SELECT max(last_sequence), count(*) FROM snapshots WHERE aggregate_id = $1",
    )
    .bind(&id)
    .fetch_one(&db.pool)
    .await
    .expect("snapshot row");
    assert_eq!(snapshots, 1, "one snapshot row per aggregate");
    assert!(last_sequence >= 200, "snapshot is recent: {last_sequence}");

    // A cold store (a restarted process) loads snapshot + tail and agrees with a full replay.
    let cold = AggregateStore::<SectionInventory>::new(db.pool.clone(), ()).with_snapshots(50);
    let (from_snapshot, version) = cold.current(&id).await.expect("load");
    let plain = AggregateStore::<SectionInventory>::new(db.pool.clone(), ());
    let (replayed, replayed_version) = plain.load(&id).await.expect("replay");
    assert_eq!(version, replayed_version);
    assert_eq!(from_snapshot, replayed);
    assert_eq!(from_snapshot.held_seats.len(), 240);
    // 240 holds plus the section's opening.
    assert_eq!(version, 241);
}
