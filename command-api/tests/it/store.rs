//! The aggregate store on real PostgreSQL: snapshots bound cold loads and stay correct when
//! two processes (two stores) write the same aggregate.

use std::collections::HashMap;

use chrono::{Duration, Utc};
use domain::inventory::{HoldRequest, InventoryCommand, SectionInventory, inventory_id};
use domain::show::{Row, Section};
use plumbing::store::{AggregateStore, Unit, UnitError};
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

/// Readers of one aggregate share catch-up queries, but none may be answered with a state
/// older than a write committed (by another process) before it called.
#[tokio::test]
async fn shared_reads_never_miss_a_write_committed_before_the_call() {
    let db = testkit::fresh_database().await;
    let show = Uuid::new_v4();
    let id = inventory_id(show, "s");
    let meta = HashMap::new();
    let reader = std::sync::Arc::new(AggregateStore::<SectionInventory>::new(db.pool.clone(), ()));
    let writer = AggregateStore::<SectionInventory>::new(db.pool.clone(), ());
    let stop = tokio_util::sync::CancellationToken::new();
    // Readers hammering the same aggregate, so every checked read finds catch-ups in flight.
    let background: Vec<_> = (0..16)
        .map(|_| {
            let (reader, stop, id) = (reader.clone(), stop.clone(), id.clone());
            tokio::spawn(async move {
                let mut reads = 0u64;
                while !stop.is_cancelled() {
                    reader.current(&id).await.expect("background read");
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for seat in 1..=100u32 {
        let written = writer
            .execute(&id, hold(show, seat), &meta)
            .await
            .expect("hold")
            .version;
        let (state, version) = reader.current(&id).await.expect("read");
        assert!(
            version >= written,
            "a read after the write committed saw version {version} < {written}"
        );
        assert!(state.held_seats.contains_key(&format!("s:A:{seat}")));
    }
    stop.cancel();
    let mut reads = 0;
    for task in background {
        reads += task.await.expect("reader");
    }
    // The query count is not asserted (timing-dependent); the readers must have run.
    assert!(reads > 0);
}

/// A show cancelled before `ShowCancelled` had a `reason` (version 1), stored as it was then.
async fn store_v1_cancelled_show(pool: &sqlx::PgPool) -> Uuid {
    let show = Uuid::new_v4();
    let created = serde_json::json!({"ShowCreated": {
        "show_id": show, "organizer_id": Uuid::new_v4(), "name": "Old", "venue": "Hall",
        "description": null, "starts_at": "2030-01-01T19:00:00Z", "created_at": "2026-01-01T00:00:00Z"}});
    let cancelled = serde_json::json!({"ShowCancelled": {"cancelled_at": "2026-01-02T00:00:00Z"}});
    for (sequence, event_type, payload) in
        [(1, "ShowCreated", created), (2, "ShowCancelled", cancelled)]
    {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             VALUES ('show', $1, $2, $3, '1', $4, '{}')",
        )
        .bind(show.to_string())
        .bind(sequence as i64)
        .bind(event_type)
        .bind(payload)
        .execute(pool)
        .await
        .expect("store v1 event");
    }
    show
}

#[tokio::test]
async fn a_version_1_event_loads_decodes_and_replays_as_the_current_version() {
    use domain::show::{CANCELLED_BY_ORGANIZER, Show, ShowEvent, ShowStatus};
    let db = testkit::fresh_database().await;
    let show = store_v1_cancelled_show(&db.pool).await;

    // The aggregate, through the upcasters.
    let store = AggregateStore::<Show>::new(db.pool.clone(), ())
        .with_upcasters(schemas::upcast::upcasters());
    let (state, version) = store.load(&show.to_string()).await.expect("load");
    assert_eq!((state.status, version), (ShowStatus::Cancelled, 2));

    // Every consumer's decode.
    let envelope = schemas::Envelope {
        event_id: schemas::envelope::event_id("show", &show.to_string(), 2),
        aggregate_type: "show".into(),
        aggregate_id: show.to_string(),
        sequence: 2,
        global_position: 2,
        event_type: "ShowCancelled".into(),
        event_version: "1".into(),
        occurred_at: chrono::Utc::now(),
        payload: serde_json::json!({"cancelled_at": "2026-01-02T00:00:00Z"}),
        metadata: Default::default(),
    };
    match schemas::decode(&envelope).expect("decodes") {
        schemas::DecodedEvent::Show(ShowEvent::ShowCancelled { reason, .. }) => {
            assert_eq!(reason, CANCELLED_BY_ORGANIZER)
        }
        other => panic!("decoded as {other:?}"),
    }

    // And the read model, replayed from Kafka through the relay.
    let prefix = testkit::unique_prefix();
    let env = testkit::service_env(&db.url, &prefix);
    let relay = testkit::Service::start("relay", &env, true).await;
    let projections = testkit::Service::start("projections", &env, true).await;
    testkit::eventually(
        "the v1 cancellation in the catalogue",
        std::time::Duration::from_secs(60),
        || async {
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM show_view WHERE event_id = $1")
                    .bind(show)
                    .fetch_optional(&db.pool)
                    .await
                    .ok()
                    .flatten();
            (status.as_deref() == Some("cancelled")).then_some(())
        },
    )
    .await;
    relay.kill().await;
    projections.kill().await;
}

/// The feed orders by transaction id as a number. Stored as text, 10 sorts before 9; a feed
/// that sorted that way stepped past the smaller id and lost its events for every reader
/// (relay, replay) whenever a batch straddled a power of ten of the transaction counter.
#[tokio::test]
async fn the_feed_reads_transaction_ids_in_numeric_order() {
    let db = testkit::fresh_database().await;
    // Transaction ids 9 and 10 are long finished on any cluster, so both are below the
    // horizon; the rows are inserted with them explicitly.
    for (xid, aggregate) in [(10, "b"), (9, "a")] {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                 event_version, payload, metadata, transaction_id)
             VALUES ('user', $1, 1, 'ProfileUpdated', '1', '{}', '{}', $2::text::xid8)",
        )
        .bind(aggregate)
        .bind(xid.to_string())
        .execute(&db.pool)
        .await
        .expect("insert");
    }
    let mut conn = db.pool.acquire().await.expect("connection");
    let mut cursor = plumbing::feed::Cursor::default();
    let mut read = Vec::new();
    loop {
        let batch = plumbing::feed::next_batch(&mut conn, &cursor, 1)
            .await
            .expect("batch");
        let Some(last) = batch.last() else { break };
        cursor = plumbing::feed::Cursor::after(last);
        read.extend(batch.iter().map(|e| e.transaction_id.clone()));
    }
    assert_eq!(read, ["9", "10"], "every event, in transaction order");
}

/// A toy aggregate whose `Overdraw` writes an event and then refuses — which none of ours
/// does, but the store must not keep such a half-applied state for the next command.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Counter {
    value: i64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
enum CounterEvent {
    Added(i64),
}

impl cqrs_es::DomainEvent for CounterEvent {
    fn event_type(&self) -> String {
        "Added".into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone)]
enum CounterCommand {
    Add(i64),
    Overdraw(i64),
    /// Adds `n` unless the value would pass `limit` (refused without writing).
    AddUpTo {
        n: i64,
        limit: i64,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("refused after writing")]
struct Refused;

impl cqrs_es::Aggregate for Counter {
    const TYPE: &'static str = "test_counter";
    type Command = CounterCommand;
    type Event = CounterEvent;
    type Error = Refused;
    type Services = ();

    async fn handle(
        &mut self,
        command: CounterCommand,
        _services: &(),
        sink: &cqrs_es::event_sink::EventSink<Self>,
    ) -> Result<(), Refused> {
        match command {
            CounterCommand::Add(n) => {
                sink.write(CounterEvent::Added(n), self).await;
                Ok(())
            }
            CounterCommand::Overdraw(n) => {
                sink.write(CounterEvent::Added(n), self).await;
                Err(Refused)
            }
            CounterCommand::AddUpTo { n, limit } => {
                if self.value + n > limit {
                    return Err(Refused);
                }
                sink.write(CounterEvent::Added(n), self).await;
                Ok(())
            }
        }
    }

    fn apply(&mut self, event: CounterEvent) {
        let CounterEvent::Added(n) = event;
        self.value += n;
    }
}

#[tokio::test]
async fn a_command_refused_after_writing_leaves_no_trace_in_its_batch() {
    let db = testkit::fresh_database().await;
    let store = AggregateStore::<Counter>::new(db.pool.clone(), ());
    let meta = HashMap::new();
    // Queued together, so group commit decides them in shared batches.
    let commands = (0..60).map(|i| {
        let command = if i % 2 == 0 {
            CounterCommand::Add(1)
        } else {
            CounterCommand::Overdraw(100)
        };
        let (store, meta) = (&store, &meta);
        async move { store.execute("c", command, meta).await.is_ok() }
    });
    let accepted = futures::future::join_all(commands).await;
    assert_eq!(accepted.iter().filter(|ok| **ok).count(), 30);
    let (cached, version) = store.current("c").await.expect("cached");
    let (stored, stored_version) = AggregateStore::<Counter>::new(db.pool.clone(), ())
        .load("c")
        .await
        .expect("stored");
    assert_eq!((cached.value, version), (30, 30));
    assert_eq!((stored.value, stored_version), (30, 30));
}

/// `execute_new` skips the load for an id the caller made up; should the id exist after all,
/// the append conflicts and the command is decided again on what is stored.
#[tokio::test]
async fn execute_new_on_an_existing_id_decides_on_what_is_stored() {
    let db = testkit::fresh_database().await;
    let meta = HashMap::new();
    let first = AggregateStore::<Counter>::new(db.pool.clone(), ());
    first
        .execute("c", CounterCommand::Add(1), &meta)
        .await
        .expect("first write");
    let second = AggregateStore::<Counter>::new(db.pool.clone(), ());
    let executed = second
        .execute_new("c", CounterCommand::Add(2), &meta)
        .await
        .expect("decided again after the conflict");
    assert_eq!((executed.state.value, executed.version), (3, 2));
    let (stored, version) = first.load("c").await.expect("stored");
    assert_eq!((stored.value, version), (3, 2));
}

fn counter_store(db: &testkit::TestDb) -> AggregateStore<Counter> {
    AggregateStore::<Counter>::new(db.pool.clone(), ())
}

#[tokio::test]
async fn a_unit_over_two_streams_stores_both_or_neither() {
    let db = testkit::fresh_database().await;
    let store = counter_store(&db);
    let meta = HashMap::new();
    let mut unit = Unit::new(&meta);
    let (a, b) = (unit.stream(&store, "a"), unit.stream(&store, "b"));
    let refused = unit
        .run(move |d| {
            d.execute(&a, CounterCommand::Add(1))?;
            d.execute(&b, CounterCommand::AddUpTo { n: 5, limit: 3 })?;
            Ok(())
        })
        .await;
    assert!(matches!(refused, Err(UnitError::Rejected(Refused))));
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert_eq!(stored, 0, "the first stream's event was not stored either");
    assert_eq!(store.current("a").await.expect("a").1, 0, "nor cached");

    let mut unit = Unit::new(&meta);
    let (a, b) = (unit.stream(&store, "a"), unit.stream(&store, "b"));
    let committed = unit
        .run(move |d| {
            d.execute(&a, CounterCommand::Add(1))?;
            d.execute(&b, CounterCommand::AddUpTo { n: 2, limit: 3 })?;
            Ok::<_, Refused>(())
        })
        .await
        .expect("both accepted");
    assert_eq!(
        committed.position.entries().len(),
        2,
        "the position names both streams"
    );
    let (ids, transactions): (i64, i64) = sqlx::query_as(
        "SELECT count(DISTINCT aggregate_id), count(DISTINCT transaction_id) FROM events",
    )
    .fetch_one(&db.pool)
    .await
    .expect("events");
    assert_eq!((ids, transactions), (2, 1), "two streams, one transaction");
}

#[tokio::test]
async fn a_decision_on_a_stale_cache_is_caught_by_the_append_and_made_again() {
    let db = testkit::fresh_database().await;
    let meta = HashMap::new();
    // Two stores = two processes; `mine` caches value 1, then `other` moves it to 6.
    let (mine, other) = (counter_store(&db), counter_store(&db));
    mine.execute("c", CounterCommand::Add(1), &meta)
        .await
        .expect("seed");
    other
        .execute("c", CounterCommand::Add(5), &meta)
        .await
        .expect("elsewhere");
    // On its stale copy (1) this fits under 7; on the stored value (6) it does too: the
    // append finds the newer event, and the decision runs again on 6.
    let executed = mine
        .execute("c", CounterCommand::AddUpTo { n: 1, limit: 7 }, &meta)
        .await
        .expect("decided again on the stored state");
    assert_eq!((executed.state.value, executed.version), (7, 3));
    // On the stale copy (7) this would fit; on the stored value it must not.
    other
        .execute("c", CounterCommand::Add(2), &meta)
        .await
        .expect("elsewhere");
    let refused = mine
        .execute("c", CounterCommand::AddUpTo { n: 1, limit: 9 }, &meta)
        .await;
    assert!(
        matches!(
            refused,
            Err(plumbing::store::ExecuteError::Rejected(Refused))
        ),
        "{refused:?}"
    );
    let (stored, version) = mine.load("c").await.expect("stored");
    assert_eq!((stored.value, version), (9, 4));
}

#[tokio::test]
async fn a_refusal_on_a_stale_cache_is_checked_against_the_store_first() {
    let db = testkit::fresh_database().await;
    let meta = HashMap::new();
    let (mine, other) = (counter_store(&db), counter_store(&db));
    mine.execute("c", CounterCommand::Add(9), &meta)
        .await
        .expect("seed");
    other
        .execute("c", CounterCommand::Add(-5), &meta)
        .await
        .expect("elsewhere");
    // The stale copy (9) would refuse; the stored value (4) leaves room.
    let executed = mine
        .execute("c", CounterCommand::AddUpTo { n: 5, limit: 10 }, &meta)
        .await
        .expect("accepted on the stored state");
    assert_eq!((executed.state.value, executed.version), (9, 3));
}

#[tokio::test]
async fn units_naming_the_same_streams_in_any_order_never_deadlock() {
    let db = testkit::fresh_database().await;
    let meta = HashMap::new();
    let store = counter_store(&db);
    let units = (0..100).map(|i| {
        let (store, meta) = (&store, &meta);
        async move {
            let mut unit = Unit::new(meta);
            let names = if i % 2 == 0 { ["x", "y"] } else { ["y", "x"] };
            let first = unit.stream(store, names[0]);
            let second = unit.stream(store, names[1]);
            unit.run(move |d| {
                d.execute(&first, CounterCommand::Add(1))?;
                d.execute(&second, CounterCommand::Add(1))?;
                Ok::<_, Refused>(())
            })
            .await
            .map(|_| ())
            .map_err(|e| format!("{e:?}"))
        }
    });
    let done = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        futures::future::join_all(units),
    )
    .await
    .expect("every unit finishes: locks are taken in one order");
    let failed: Vec<String> = done.into_iter().filter_map(Result::err).collect();
    assert!(failed.is_empty(), "{failed:?}");
    for id in ["x", "y"] {
        let (stored, version) = store.load(id).await.expect("stored");
        assert_eq!((stored.value, version), (100, 100), "{id}");
    }
}
