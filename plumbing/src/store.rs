//! The write side's door to the event store: runs a command against one aggregate and
//! appends the events it decides, through postgres-es.
//!
//! `CqrsFramework::execute` reloads every aggregate from scratch and cannot tell what it
//! wrote; on a hot aggregate that means a full reload per command and a storm of
//! optimistic-concurrency conflicts. Here commands for one aggregate are serialised in
//! process behind a per-aggregate lock, the state is cached between commands and only
//! caught up with events written elsewhere (one indexed query returning usually nothing),
//! and a conflict with another process (the sequence's primary key) catches up with what it
//! wrote and retries with jittered backoff. Appends are ours (`append`): one statement for a
//! batch's events, and a snapshot that moves forward without ever conflicting.
//!
//! Group commit: commands that queue up on one aggregate while its lock is held are decided
//! together by whoever takes the lock next — each against the state the ones before it left,
//! in arrival order — and everything they decided is appended in one transaction. A hot
//! section with hundreds of holds waiting commits once per batch instead of once per hold,
//! and a refusal (seat taken) costs no commit at all. Each caller still gets its own answer:
//! its events, its version, or its own rejection; a conflict re-decides the whole batch.

use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
use tokio::sync::{Mutex, oneshot};

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
    /// The ticket of the last catch-up `current` completed (see `SlotInner::reads`).
    read: u64,
    /// Known to match the store without asking it (an id just made up, see `execute_new`):
    /// the next batch skips its catch-up once.
    fresh: bool,
}

impl<A: Default> Loaded<A> {
    fn empty() -> Self {
        Self {
            aggregate: A::default(),
            version: 0,
            snapshot: (0, 0),
            read: 0,
            fresh: false,
        }
    }
}

/// A command waiting for its aggregate's lock, with where to send its answer.
struct Pending<A: Aggregate> {
    command: A::Command,
    metadata: HashMap<String, String>,
    reply: oneshot::Sender<Result<Executed<A>, ExecuteError<A::Error>>>,
}

/// One aggregate's cached state (behind the lock commands take turns on) and the commands
/// waiting for it.
struct SlotInner<A: Aggregate> {
    state: Mutex<Option<Loaded<A>>>,
    pending: std::sync::Mutex<VecDeque<Pending<A>>>,
    /// Tickets of `current`'s catch-ups, taken when one starts: a reader that waited for
    /// the lock may use a catch-up that started after it arrived instead of querying again.
    reads: AtomicU64,
}

type Slot<A> = Arc<SlotInner<A>>;

/// Commands decided and appended together at most.
const MAX_BATCH: usize = 128;

/// What one command of a batch came to.
enum Outcome<A: Aggregate> {
    Rejected(A::Error),
    Accepted {
        events: Vec<A::Event>,
        version: u64,
        state: A,
    },
}

/// The same store failure for every caller of a batch (the error itself is not `Clone`).
fn replicate(err: &PersistenceError) -> PersistenceError {
    match err {
        PersistenceError::OptimisticLockError => PersistenceError::OptimisticLockError,
        other => PersistenceError::UnknownError(Box::new(std::io::Error::other(other.to_string()))),
    }
}

pub struct AggregateStore<A: Aggregate> {
    repo: PostgresEventRepository,
    pool: PgPool,
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
            repo: PostgresEventRepository::new(pool.clone()),
            pool,
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
    ///
    /// Readers arriving together share one query: the hot event's show is read by every hold
    /// request, and one query each behind the slot's lock would serialise them all. A reader
    /// uses the state a catch-up left only if that catch-up started after the reader arrived,
    /// so it still sees every write committed before its call.
    pub async fn current(&self, aggregate_id: &str) -> Result<(A, u64), PersistenceError> {
        let slot = self.slot(aggregate_id);
        let arrived = slot.reads.load(Ordering::SeqCst);
        let mut guard = slot.state.lock().await;
        let loaded = guard.get_or_insert_with(Loaded::empty);
        if loaded.read <= arrived {
            let ticket = slot.reads.fetch_add(1, Ordering::SeqCst) + 1;
            self.catch_up(aggregate_id, loaded).await?;
            loaded.read = ticket;
        }
        Ok((loaded.aggregate.clone(), loaded.version as u64))
    }

    /// `execute` for an aggregate whose id the caller has just made up (a random UUID): the
    /// load, which could only find nothing, is skipped. Should the id exist after all, the
    /// append conflicts and the command is decided again against what is stored.
    pub async fn execute_new(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &HashMap<String, String>,
    ) -> Result<Executed<A>, ExecuteError<A::Error>> {
        {
            let slot = self.slot(aggregate_id);
            let mut guard = slot.state.lock().await;
            guard.get_or_insert_with(|| Loaded {
                fresh: true,
                ..Loaded::empty()
            });
        }
        self.execute(aggregate_id, command, metadata).await
    }

    /// Runs `command` against the aggregate and appends what it decides (possibly in one
    /// transaction with other commands that queued up on the same aggregate meanwhile).
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &HashMap<String, String>,
    ) -> Result<Executed<A>, ExecuteError<A::Error>> {
        let slot = self.slot(aggregate_id);
        let (reply, mut answer) = oneshot::channel();
        slot.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(Pending {
                command,
                metadata: metadata.clone(),
                reply,
            });
        loop {
            {
                let mut guard = slot.state.lock().await;
                let batch: Vec<Pending<A>> = {
                    let mut pending = slot.pending.lock().unwrap_or_else(|p| p.into_inner());
                    let take = pending.len().min(MAX_BATCH);
                    pending.drain(..take).collect()
                };
                if !batch.is_empty() {
                    self.run_batch(aggregate_id, &mut guard, batch).await;
                }
            }
            // Whoever took this command into a batch answered it before letting the lock
            // go; otherwise it is still queued and the next turn takes it.
            match answer.try_recv() {
                Ok(result) => {
                    self.evict_idle();
                    return result;
                }
                Err(oneshot::error::TryRecvError::Empty) => {}
                Err(oneshot::error::TryRecvError::Closed) => {
                    return Err(ExecuteError::Store(PersistenceError::UnknownError(
                        Box::new(std::io::Error::other(
                            "the batch holding this command was abandoned",
                        )),
                    )));
                }
            }
        }
    }

    /// Decides every command of `batch` in order and appends all their events at once;
    /// answers each caller.
    async fn run_batch(
        &self,
        aggregate_id: &str,
        guard: &mut Option<Loaded<A>>,
        batch: Vec<Pending<A>>,
    ) {
        metrics::histogram!("aggregate_batch_commands", "aggregate" => A::TYPE)
            .record(batch.len() as f64);
        let fail_all = |batch: Vec<Pending<A>>, err: &dyn Fn() -> ExecuteError<A::Error>| {
            for pending in batch {
                let _ = pending.reply.send(Err(err()));
            }
        };
        let mut attempt = 0;
        loop {
            let loaded = guard.get_or_insert_with(Loaded::empty);
            let caught_up = if std::mem::take(&mut loaded.fresh) {
                Ok(())
            } else {
                self.catch_up(aggregate_id, loaded).await
            };
            if let Err(err) = caught_up {
                *guard = None;
                return fail_all(batch, &|| ExecuteError::Store(replicate(&err)));
            }
            let mut next = loaded.aggregate.clone();
            let mut version = loaded.version;
            let mut outcomes = Vec::with_capacity(batch.len());
            let mut serialized = Vec::new();
            for pending in &batch {
                // Decided on `next` itself, not a copy: a refusal (most commands on a
                // sold-out section) then costs no clone of the state.
                let sink = EventSink::default();
                let handled = next
                    .handle(pending.command.clone(), &self.services, &sink)
                    .await;
                let events = sink.collect().await;
                if let Err(err) = handled {
                    if !events.is_empty() {
                        // It wrote (and applied) events before refusing: rebuild the state
                        // the commands accepted so far left.
                        next = loaded.aggregate.clone();
                        for outcome in &outcomes {
                            if let Outcome::Accepted { events, .. } = outcome {
                                for event in events {
                                    next.apply(A::Event::clone(event));
                                }
                            }
                        }
                    }
                    outcomes.push(Outcome::<A>::Rejected(err));
                    continue;
                }
                match serialize::<A>(aggregate_id, version, &events, &pending.metadata) {
                    Ok(rows) => serialized.extend(rows),
                    Err(err) => {
                        return fail_all(batch, &|| ExecuteError::Store(replicate(&err)));
                    }
                }
                version += events.len();
                outcomes.push(Outcome::Accepted {
                    events,
                    version: version as u64,
                    state: next.clone(),
                });
            }
            if !serialized.is_empty() {
                let snapshot = self.snapshot_due(loaded, version);
                let snapshot_update = match &snapshot {
                    Some(number) => match serde_json::to_value(&next) {
                        Ok(value) => Some((aggregate_id.to_owned(), value, *number)),
                        Err(err) => {
                            let err = PersistenceError::from(err);
                            return fail_all(batch, &|| ExecuteError::Store(replicate(&err)));
                        }
                    },
                    None => None,
                };
                match crate::append::append(&self.pool, A::TYPE, &serialized, snapshot_update).await
                {
                    Ok(()) => {
                        loaded.version = version;
                        if let Some(number) = snapshot {
                            loaded.snapshot = (number, version);
                        }
                        loaded.aggregate = next;
                    }
                    Err(PersistenceError::OptimisticLockError)
                        if attempt < MAX_CONFLICT_RETRIES =>
                    {
                        attempt += 1;
                        metrics::counter!("aggregate_conflicts_retried_total", "aggregate" => A::TYPE)
                            .increment(1);
                        // Another process appended first: catch up with what it wrote and
                        // decide the whole batch again.
                        tokio::time::sleep(conflict_backoff(attempt)).await;
                        continue;
                    }
                    Err(PersistenceError::OptimisticLockError) => {
                        metrics::counter!("aggregate_conflicts_exhausted_total", "aggregate" => A::TYPE)
                            .increment(1);
                        *guard = None;
                        return fail_all(batch, &|| ExecuteError::Contended);
                    }
                    Err(err) => {
                        // The outcome is unknown (the commit may have happened): forget the
                        // cached state so the next command starts from what is stored.
                        *guard = None;
                        return fail_all(batch, &|| ExecuteError::Store(replicate(&err)));
                    }
                }
            }
            for (pending, outcome) in batch.into_iter().zip(outcomes) {
                let answer = match outcome {
                    Outcome::Rejected(err) => Err(ExecuteError::Rejected(err)),
                    Outcome::Accepted {
                        events,
                        version,
                        state,
                    } => Ok(Executed {
                        aggregate_id: aggregate_id.to_owned(),
                        events,
                        version,
                        state,
                    }),
                };
                let _ = pending.reply.send(answer);
            }
            return;
        }
    }

    fn slot(&self, aggregate_id: &str) -> Slot<A> {
        if let Some(slot) = self.slots.get(aggregate_id) {
            return slot.clone();
        }
        self.slots
            .entry(aggregate_id.to_owned())
            .or_insert_with(|| {
                Arc::new(SlotInner {
                    state: Mutex::new(None),
                    pending: std::sync::Mutex::new(VecDeque::new()),
                    reads: AtomicU64::new(0),
                })
            })
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
