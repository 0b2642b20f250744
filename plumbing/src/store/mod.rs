//! The write side's door to the event store: decides commands against cached aggregates and
//! appends what they decide, one stream at a time (`execute`) or several at once (`Unit`).
//!
//! `CqrsFramework::execute` reloads every aggregate from scratch and cannot tell what it
//! wrote; on a hot aggregate that means a full reload per command and a storm of
//! optimistic-concurrency conflicts. Here commands for one stream are serialised in process
//! behind a per-stream lock and decided on a cached state that is not read again before a
//! decision: the append (one statement, `sql::append`) checks that nothing moved and, if
//! something did, returns the newer events so the decision runs again on them. Commands that
//! queue up on a stream while its lock is held are decided together by whoever takes it next
//! and appended in one statement (group commit); each caller gets its own answer.
//!
//! Consumers keep their caches warm from the events they receive (`observe`), so they decide
//! from what they got rather than from catch-up reads.

mod guard;
mod sql;
mod unit;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cqrs_es::Aggregate;
use cqrs_es::persist::{EventUpcaster, PersistenceError, SerializedEvent};
use dashmap::DashMap;
use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::PgPool;
use tokio::sync::Mutex;

pub use unit::{Committed, Decision, StreamRef, Unit, UnitError};

use crate::position::{Position, PositionEntry};
use guard::{Guard, Locked, apply_events};
use unit::{Queued, Stream};

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

impl<E: std::error::Error> From<UnitError<E>> for ExecuteError<E> {
    fn from(err: UnitError<E>) -> Self {
        match err {
            UnitError::Rejected(e) => Self::Rejected(e),
            UnitError::Contended => Self::Contended,
            UnitError::Store(e) => Self::Store(e),
        }
    }
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

/// A stream's place in the global lock order: rank first (hot streams rank low, so units
/// queue and batch on them), then type and id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct StreamKey {
    rank: u8,
    aggregate_type: &'static str,
    id: String,
}

impl StreamKey {
    fn matches(&self, aggregate_type: &str, id: &str) -> bool {
        self.aggregate_type == aggregate_type && self.id == id
    }
}

/// A stream's cached state.
pub(crate) struct Loaded<A> {
    aggregate: A,
    version: usize,
    /// The stored snapshot's number and the version it captured (0, 0 = none known).
    snapshot: (usize, usize),
    /// The ticket of the last catch-up `current` completed (see `SlotInner::reads`).
    read: u64,
    /// Assumed empty without asking the store (an id just made up): not yet confirmed.
    fresh: bool,
    /// When the store last confirmed this state (a read, or an append that found nothing
    /// newer).
    checked_at: Option<Instant>,
}

impl<A: Default> Loaded<A> {
    fn empty() -> Self {
        Self {
            aggregate: A::default(),
            version: 0,
            snapshot: (0, 0),
            read: 0,
            fresh: false,
            checked_at: None,
        }
    }
}

/// One stream's cached state (behind the lock decisions take turns on) and the units
/// waiting for it.
pub(crate) struct SlotInner<A: Aggregate> {
    state: Arc<Mutex<Option<Loaded<A>>>>,
    pending: std::sync::Mutex<VecDeque<Queued>>,
    /// Tickets of `current`'s catch-ups, taken when one starts: a reader that waited for
    /// the lock may use a catch-up that started after it arrived instead of querying again.
    reads: AtomicU64,
}

type Slot<A> = Arc<SlotInner<A>>;

pub(crate) struct Inner<A: Aggregate> {
    pool: PgPool,
    services: A::Services,
    upcasters: Vec<Box<dyn EventUpcaster>>,
    slots: DashMap<String, Slot<A>>,
    /// Snapshot every this many events (streams that grow long: inventory).
    snapshot_every: Option<usize>,
    rank: u8,
}

pub struct AggregateStore<A: Aggregate> {
    inner: Arc<Inner<A>>,
}

impl<A: Aggregate> Clone for AggregateStore<A> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<A: Aggregate + Clone + 'static> AggregateStore<A> {
    pub(crate) fn key(&self, id: &str) -> StreamKey {
        StreamKey {
            rank: self.inner.rank,
            aggregate_type: A::TYPE,
            id: id.to_owned(),
        }
    }

    pub(crate) fn handle(&self, id: &str) -> Handle<A> {
        Handle {
            store: self.inner.clone(),
            slot: self.inner.slot(id),
            key: self.key(id),
        }
    }
}

impl<A> AggregateStore<A>
where
    A: Aggregate + Clone + 'static,
    A::Command: Clone + Send + 'static,
    A::Event: 'static,
    A::Error: Send + 'static,
{
    pub fn new(pool: PgPool, services: A::Services) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                services,
                upcasters: Vec::new(),
                slots: DashMap::new(),
                snapshot_every: None,
                rank: 100,
            }),
        }
    }

    fn configure(self, change: impl FnOnce(&mut Inner<A>)) -> Self {
        let mut inner = Arc::try_unwrap(self.inner)
            .unwrap_or_else(|_| panic!("a store is configured before it is shared"));
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Stores a snapshot every `events` events, so a cold load reads the snapshot and the
    /// tail instead of the whole stream.
    pub fn with_snapshots(self, events: usize) -> Self {
        self.configure(|inner| inner.snapshot_every = Some(events.max(1)))
    }

    pub fn with_upcasters(self, upcasters: Vec<Box<dyn EventUpcaster>>) -> Self {
        self.configure(|inner| inner.upcasters = upcasters)
    }

    /// Where this store's streams come in a unit's lock order (lower first; default 100).
    /// The hottest streams rank first: units queue on their first stream, so they batch
    /// (group commit) on it.
    pub fn with_lock_rank(self, rank: u8) -> Self {
        self.configure(|inner| inner.rank = rank)
    }

    /// Loads the current state straight from the store, bypassing the cache. For reads that
    /// must see every committed write, whichever instance made it (login, role checks).
    pub async fn load(&self, aggregate_id: &str) -> Result<(A, u64), PersistenceError> {
        let mut loaded = Loaded::empty();
        self.inner.catch_up(aggregate_id, &mut loaded).await?;
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
        self.cached(aggregate_id, Duration::ZERO, |_| false).await
    }

    /// The cached state without asking the store when the store confirmed it less than
    /// `fresh_for` ago and `good_enough` accepts it; otherwise as `current`. For facts that
    /// never change once true (a published show's layout and prices, a booking's buyer),
    /// where a stale copy cannot mislead.
    pub async fn cached(
        &self,
        aggregate_id: &str,
        fresh_for: Duration,
        good_enough: impl FnOnce(&A) -> bool,
    ) -> Result<(A, u64), PersistenceError> {
        self.with_cached(aggregate_id, fresh_for, good_enough, |a, v| (a.clone(), v))
            .await
    }

    /// `cached`, handing the state to `then` under the stream's lock instead of copying it
    /// (a show is read by every hold; copying its layout each time was a tenth of
    /// command-api's CPU). `then` must be quick: decisions on the stream wait for it.
    pub async fn with_cached<R>(
        &self,
        aggregate_id: &str,
        fresh_for: Duration,
        good_enough: impl FnOnce(&A) -> bool,
        then: impl FnOnce(&A, u64) -> R,
    ) -> Result<R, PersistenceError> {
        self.read(
            aggregate_id,
            |loaded| {
                loaded.checked_at.is_some_and(|at| at.elapsed() < fresh_for)
                    && good_enough(&loaded.aggregate)
            },
            then,
        )
        .await
    }

    /// The state including at least event `sequence` (one the caller received): the cache
    /// when it has it, otherwise caught up.
    pub async fn at_least(
        &self,
        aggregate_id: &str,
        sequence: u64,
    ) -> Result<(A, u64), PersistenceError> {
        self.read(
            aggregate_id,
            |loaded| loaded.version as u64 >= sequence,
            |a, v| (a.clone(), v),
        )
        .await
    }

    async fn read<R>(
        &self,
        aggregate_id: &str,
        accept: impl FnOnce(&Loaded<A>) -> bool,
        then: impl FnOnce(&A, u64) -> R,
    ) -> Result<R, PersistenceError> {
        let slot = self.inner.slot(aggregate_id);
        let arrived = slot.reads.load(Ordering::SeqCst);
        let mut guard = slot.state.lock().await;
        let loaded = guard.get_or_insert_with(Loaded::empty);
        let cached = loaded.version > 0 && !loaded.fresh && accept(loaded);
        if !cached && (loaded.read <= arrived || loaded.fresh) {
            let ticket = slot.reads.fetch_add(1, Ordering::SeqCst) + 1;
            if let Err(err) = self.inner.catch_up(aggregate_id, loaded).await {
                *guard = None;
                return Err(err);
            }
            loaded.read = ticket;
        }
        let answer = then(&loaded.aggregate, loaded.version as u64);
        // Nothing stored under this id (a caller's made-up id): keep no entry for it, or
        // random ids would fill the cache. A slot someone else holds stays (a unit may be
        // about to create the stream).
        if loaded.version == 0 && !loaded.fresh {
            *guard = None;
            drop(guard);
            self.inner.slots.remove_if(aggregate_id, |_, held| {
                Arc::ptr_eq(held, &slot) && Arc::strong_count(held) <= 2
            });
            return Ok(answer);
        }
        drop(guard);
        self.inner.evict_idle();
        Ok(answer)
    }

    /// How many streams the cache holds (bounded; see `CACHE_CAPACITY`).
    pub fn cached_streams(&self) -> usize {
        self.inner.slots.len()
    }

    /// Keeps the cached state of a stream up to date with an event a consumer received:
    /// applied when it is the next one, ignored when already applied, and the cache entry is
    /// dropped on a gap (the next use loads it). A stream's first event starts its entry.
    pub async fn observe(&self, aggregate_id: &str, sequence: u64, event: A::Event) {
        let slot = match self.inner.slots.get(aggregate_id) {
            Some(slot) => slot.clone(),
            None if sequence == 1 => self.inner.slot(aggregate_id),
            None => return,
        };
        let Ok(sequence) = usize::try_from(sequence) else {
            return;
        };
        let mut guard = slot.state.lock().await;
        match guard.as_mut() {
            Some(loaded) if !loaded.fresh && sequence <= loaded.version => {}
            Some(loaded) if !loaded.fresh && sequence == loaded.version + 1 => {
                loaded.aggregate.apply(event);
                loaded.version = sequence;
                loaded.checked_at = Some(Instant::now());
            }
            None if sequence == 1 => {
                let mut loaded: Loaded<A> = Loaded::empty();
                loaded.aggregate.apply(event);
                loaded.version = 1;
                loaded.checked_at = Some(Instant::now());
                *guard = Some(loaded);
            }
            Some(loaded) if loaded.fresh && sequence == 1 => {
                loaded.aggregate.apply(event);
                loaded.version = 1;
                loaded.fresh = false;
                loaded.checked_at = Some(Instant::now());
            }
            _ => *guard = None,
        }
        drop(guard);
        self.inner.evict_idle();
    }

    /// Runs `command` against the aggregate and appends what it decides (possibly in one
    /// statement with other commands that queued up on the same aggregate meanwhile).
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &HashMap<String, String>,
    ) -> Result<Executed<A>, ExecuteError<A::Error>> {
        let mut unit = Unit::new(metadata);
        let stream = unit.stream(self, aggregate_id);
        self.execute_in(unit, stream, command).await
    }

    /// `execute` for an aggregate whose id the caller has just made up (a random UUID): the
    /// load, which could only find nothing, is skipped. Should the id exist after all, the
    /// append's check finds it and the command is decided again against what is stored.
    pub async fn execute_new(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &HashMap<String, String>,
    ) -> Result<Executed<A>, ExecuteError<A::Error>> {
        let mut unit = Unit::new(metadata);
        let stream = unit.new_stream(self, aggregate_id);
        self.execute_in(unit, stream, command).await
    }

    async fn execute_in(
        &self,
        unit: Unit,
        stream: StreamRef<A>,
        command: A::Command,
    ) -> Result<Executed<A>, ExecuteError<A::Error>> {
        let aggregate_id = stream.id().to_owned();
        let committed = unit
            .run(move |d| {
                let events = d.execute(&stream, command.clone())?;
                Ok((events, d.version(&stream), d.state(&stream).clone()))
            })
            .await?;
        let (events, version, state) = committed.value;
        Ok(Executed {
            aggregate_id,
            events,
            version,
            state,
        })
    }
}

impl<A: Aggregate + Clone + 'static> Inner<A> {
    fn slot(&self, aggregate_id: &str) -> Slot<A> {
        if let Some(slot) = self.slots.get(aggregate_id) {
            return slot.clone();
        }
        self.slots
            .entry(aggregate_id.to_owned())
            .or_insert_with(|| {
                Arc::new(SlotInner {
                    state: Arc::new(Mutex::new(None)),
                    pending: std::sync::Mutex::new(VecDeque::new()),
                    reads: AtomicU64::new(0),
                })
            })
            .clone()
    }

    /// Keeps the cache bounded: once over capacity, drops every slot nothing holds.
    fn evict_idle(&self) {
        if self.slots.len() > CACHE_CAPACITY {
            self.slots.retain(|_, slot| Arc::strong_count(slot) > 1);
        }
    }

    async fn catch_up(
        &self,
        aggregate_id: &str,
        loaded: &mut Loaded<A>,
    ) -> Result<(), PersistenceError> {
        if loaded.version == 0
            && self.snapshot_every.is_some()
            && let Some((state, version, number)) =
                sql::snapshot(&self.pool, A::TYPE, aggregate_id).await?
        {
            loaded.aggregate = serde_json::from_value(state)?;
            loaded.version = version;
            loaded.snapshot = (number, version);
        }
        let newer = sql::newer(
            &self.pool,
            &[sql::Expected {
                aggregate_type: A::TYPE,
                aggregate_id: aggregate_id.to_owned(),
                version: loaded.version,
            }],
        )
        .await?;
        apply_events(self, loaded, newer)
    }
}

impl<A: Aggregate> Inner<A> {
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

/// A stream of a store, for units.
pub(crate) struct Handle<A: Aggregate> {
    store: Arc<Inner<A>>,
    slot: Slot<A>,
    key: StreamKey,
}

impl<A: Aggregate + Clone + 'static> Stream for Handle<A> {
    fn pending(&self) -> &std::sync::Mutex<VecDeque<Queued>> {
        &self.slot.pending
    }

    fn lock(&self) -> BoxFuture<'_, Box<dyn Locked>> {
        async move {
            let loaded = self.slot.state.clone().lock_owned().await;
            Box::new(Guard::new(self.store.clone(), self.key.clone(), loaded)) as Box<dyn Locked>
        }
        .boxed()
    }

    fn pool(&self) -> &PgPool {
        &self.store.pool
    }

    fn evict_idle(&self) {
        self.store.evict_idle();
    }
}
