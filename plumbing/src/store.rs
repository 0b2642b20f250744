//! The write side's door to the event store: runs a command against one aggregate and
//! appends the events it decides, through postgres-es.
//!
//! `CqrsFramework::execute` reloads every aggregate from scratch and cannot tell what it
//! wrote; on a hot aggregate that means a full reload per command and a storm of
//! optimistic-concurrency conflicts. Here commands for one aggregate are serialised in
//! process behind a per-aggregate lock, the state is cached between commands and only
//! caught up with events written elsewhere (one indexed query returning usually nothing),
//! and a conflict with another process (the sequence's primary key) drops the cache and
//! retries with jittered backoff.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{
    EventUpcaster, PersistedEventRepository, PersistenceError, SerializedEvent,
};
use cqrs_es::{Aggregate, DomainEvent, EventEnvelope};
use dashmap::DashMap;
use postgres_es::PostgresEventRepository;
use rand::Rng;
use sqlx::PgPool;
use tokio::sync::Mutex;

use crate::position::{Position, PositionEntry};

/// How many times a command is re-run after losing an optimistic-concurrency race.
const MAX_CONFLICT_RETRIES: u32 = 12;
/// Cached aggregates kept before idle ones are evicted.
const CACHE_CAPACITY: usize = 50_000;

#[derive(Debug, thiserror::Error)]
pub enum ExecuteError<E: std::error::Error> {
    /// The aggregate refused the command: a business rule.
    #[error(transparent)]
    Rejected(E),
    /// Still losing races after every retry; the caller should answer 503 and retry later.
    #[error("aggregate is too contended, retries exhausted")]
    Contended,
    #[error("event store failure: {0}")]
    Store(#[source] PersistenceError),
}

/// What one successful command wrote and the aggregate's state afterwards.
#[derive(Debug, Clone)]
pub struct Executed<A: Aggregate> {
    pub aggregate_id: String,
    pub events: Vec<A::Event>,
    /// Sequence of the aggregate after the command (unchanged when nothing was written).
    pub version: u64,
    pub state: A,
}

impl<A: Aggregate> Executed<A> {
    /// The read-your-writes position of what this command wrote (empty if nothing).
    pub fn position(&self) -> Position {
        if self.events.is_empty() {
            return Position::default();
        }
        Position::from(vec![PositionEntry {
            aggregate_type: A::TYPE.to_owned(),
            aggregate_id: self.aggregate_id.clone(),
            sequence: self.version,
        }])
    }
}

struct Loaded<A> {
    aggregate: A,
    version: usize,
    /// The stored snapshot's number and the version it captured (0, 0 = none yet).
    snapshot: (usize, usize),
}

impl<A: Default> Loaded<A> {
    fn empty() -> Self {
        Self {
            aggregate: A::default(),
            version: 0,
            snapshot: (0, 0),
        }
    }
}

type Slot<A> = Arc<Mutex<Option<Loaded<A>>>>;

pub struct AggregateStore<A: Aggregate> {
    repo: PostgresEventRepository,
    services: A::Services,
    upcasters: Vec<Box<dyn EventUpcaster>>,
    slots: DashMap<String, Slot<A>>,
    /// Snapshot every this many events (streams that grow long: inventory).
    snapshot_every: Option<usize>,
    _aggregate: PhantomData<A>,
}

impl<A> AggregateStore<A>
where
    A: Aggregate + Clone,
    A::Command: Clone,
{
    pub fn new(pool: PgPool, services: A::Services) -> Self {
        Self {
            repo: PostgresEventRepository::new(pool),
            services,
            upcasters: Vec::new(),
            slots: DashMap::new(),
            snapshot_every: None,
            _aggregate: PhantomData,
        }
    }

    /// Stores a snapshot every `events` events, so a cold load reads the snapshot and the
    /// tail instead of the whole stream.
    pub fn with_snapshots(mut self, events: usize) -> Self {
        self.snapshot_every = Some(events.max(1));
        self
    }

    pub fn with_upcasters(mut self, upcasters: Vec<Box<dyn EventUpcaster>>) -> Self {
        self.upcasters = upcasters;
        self
    }

    /// Loads the current state straight from the store, bypassing the cache. For reads that
    /// must see every committed write, whichever instance made it (login, role checks).
    pub async fn load(&self, aggregate_id: &str) -> Result<(A, u64), PersistenceError> {
        let mut loaded = Loaded::empty();
        self.catch_up(aggregate_id, &mut loaded).await?;
        Ok((loaded.aggregate, loaded.version as u64))
    }

    /// The current state through the cache (caught up with the store), for hot read paths
    /// that may share the per-aggregate queue with commands.
    pub async fn current(&self, aggregate_id: &str) -> Result<(A, u64), PersistenceError> {
        let slot = self.slot(aggregate_id);
        let mut guard = slot.lock().await;
        let loaded = guard.get_or_insert_with(Loaded::empty);
        self.catch_up(aggregate_id, loaded).await?;
        Ok((loaded.aggregate.clone(), loaded.version as u64))
    }

    /// Runs `command` against the aggregate and appends what it decides.
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &HashMap<String, String>,
    ) -> Result<Executed<A>, ExecuteError<A::Error>> {
        let slot = self.slot(aggregate_id);
        let mut guard = slot.lock().await;
        let mut attempt = 0;
        loop {
            let loaded = guard.get_or_insert_with(Loaded::empty);
            self.catch_up(aggregate_id, loaded)
                .await
                .map_err(ExecuteError::Store)?;

            let mut next = loaded.aggregate.clone();
            let sink = EventSink::default();
            if let Err(err) = next.handle(command.clone(), &self.services, &sink).await {
                return Err(ExecuteError::Rejected(err));
            }
            let events = sink.collect().await;
            if events.is_empty() {
                return Ok(Executed {
                    aggregate_id: aggregate_id.to_owned(),
                    events,
                    version: loaded.version as u64,
                    state: next,
                });
            }

            let serialized = serialize::<A>(aggregate_id, loaded.version, &events, metadata)
                .map_err(ExecuteError::Store)?;
            let new_version = loaded.version + events.len();
            let snapshot = self.snapshot_due(loaded, new_version);
            let snapshot_update = match &snapshot {
                Some(number) => Some((
                    aggregate_id.to_owned(),
                    serde_json::to_value(&next)
                        .map_err(|e| ExecuteError::Store(PersistenceError::from(e)))?,
                    *number,
                )),
                None => None,
            };
            match self.repo.persist::<A>(&serialized, snapshot_update).await {
                Ok(()) => {
                    loaded.version = new_version;
                    if let Some(number) = snapshot {
                        loaded.snapshot = (number, new_version);
                    }
                    loaded.aggregate = next.clone();
                    let version = loaded.version as u64;
                    drop(guard);
                    self.evict_idle();
                    return Ok(Executed {
                        aggregate_id: aggregate_id.to_owned(),
                        events,
                        version,
                        state: next,
                    });
                }
                Err(PersistenceError::OptimisticLockError) if attempt < MAX_CONFLICT_RETRIES => {
                    attempt += 1;
                    metrics::counter!("aggregate_conflicts_retried_total", "aggregate" => A::TYPE)
                        .increment(1);
                    // Another process appended first (or moved the snapshot): start again
                    // from what is stored before deciding again.
                    if self.snapshot_every.is_some() {
                        *guard = None;
                    }
                    tokio::time::sleep(conflict_backoff(attempt)).await;
                }
                Err(PersistenceError::OptimisticLockError) => {
                    metrics::counter!("aggregate_conflicts_exhausted_total", "aggregate" => A::TYPE)
                        .increment(1);
                    *guard = None;
                    return Err(ExecuteError::Contended);
                }
                Err(err) => {
                    // The outcome is unknown (the commit may have happened): forget the
                    // cached state so the next command starts from what is stored.
                    *guard = None;
                    return Err(ExecuteError::Store(err));
                }
            }
        }
    }

    fn slot(&self, aggregate_id: &str) -> Slot<A> {
        if let Some(slot) = self.slots.get(aggregate_id) {
            return slot.clone();
        }
        self.slots
            .entry(aggregate_id.to_owned())
            .or_insert_with(|| Arc::new(Mutex::new(None)))
            .clone()
    }

    /// Keeps the cache bounded: once over capacity, drops every slot no command holds.
    fn evict_idle(&self) {
        if self.slots.len() > CACHE_CAPACITY {
            self.slots.retain(|_, slot| Arc::strong_count(slot) > 1);
        }
    }

    /// The number of the snapshot to write with events up to `new_version`, if one is due.
    fn snapshot_due(&self, loaded: &Loaded<A>, new_version: usize) -> Option<usize> {
        let every = self.snapshot_every?;
        (new_version - loaded.snapshot.1 >= every).then_some(loaded.snapshot.0 + 1)
    }

    async fn catch_up(
        &self,
        aggregate_id: &str,
        loaded: &mut Loaded<A>,
    ) -> Result<(), PersistenceError> {
        if loaded.version == 0
            && self.snapshot_every.is_some()
            && let Some(snapshot) = self.repo.get_snapshot::<A>(aggregate_id).await?
        {
            loaded.aggregate = serde_json::from_value(snapshot.aggregate)?;
            loaded.version = snapshot.current_sequence;
            loaded.snapshot = (snapshot.current_snapshot, snapshot.current_sequence);
        }
        let newer = if loaded.version == 0 {
            self.repo.get_events::<A>(aggregate_id).await?
        } else {
            self.repo
                .get_last_events::<A>(aggregate_id, loaded.version)
                .await?
        };
        for stored in newer {
            let stored = self.upcast(stored);
            let envelope = EventEnvelope::<A>::try_from(stored)?;
            loaded.aggregate.apply(envelope.payload);
            loaded.version = envelope.sequence;
        }
        Ok(())
    }

    fn upcast(&self, event: SerializedEvent) -> SerializedEvent {
        self.upcasters.iter().fold(event, |event, upcaster| {
            if upcaster.can_upcast(&event.event_type, &event.event_version) {
                upcaster.upcast(event)
            } else {
                event
            }
        })
    }
}

fn serialize<A: Aggregate>(
    aggregate_id: &str,
    version: usize,
    events: &[A::Event],
    metadata: &HashMap<String, String>,
) -> Result<Vec<SerializedEvent>, PersistenceError> {
    let metadata = serde_json::to_value(metadata)?;
    events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            Ok(SerializedEvent::new(
                aggregate_id.to_owned(),
                version + i + 1,
                A::TYPE.to_owned(),
                event.event_type(),
                event.event_version(),
                serde_json::to_value(event)?,
                metadata.clone(),
            ))
        })
        .collect()
}

/// Exponential backoff from 2 ms, capped at 200 ms, with full jitter so racing processes
/// spread out instead of colliding again in lockstep.
fn conflict_backoff(attempt: u32) -> Duration {
    let cap = 2u64.saturating_mul(1 << attempt.min(7)).min(200);
    Duration::from_millis(rand::rng().random_range(1..=cap))
}
