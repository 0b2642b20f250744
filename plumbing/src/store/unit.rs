//! Multi-stream units: one decision over several streams (a booking and its sections, a
//! voucher, a customer's limit…), appended in ONE statement with an expected version for
//! every stream it read, so either all of it is stored or none of it — a refusal writes
//! nothing and needs no compensation.
//!
//! Locking: a unit takes the locks of its streams in one global order (`StreamKey`: rank,
//! type, id). It queues on its first stream; whoever next holds that stream's lock decides
//! every unit queued there (group commit), taking the other streams those units name in the
//! same order — all of them sort after the first, so no two batches can wait on each other.
//! Stores of hot streams (inventory sections) rank first, so a hot section's holds batch on
//! the section.
//!
//! Freshness: cached states are used without asking the store. The append itself checks
//! that no stream moved (and returns what moved, then the batch is decided again); a unit
//! that writes nothing (refused, or nothing to do) is checked with one read before it is
//! answered, so a stale cache can neither accept, refuse nor skip wrongly.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use cqrs_es::Aggregate;
use cqrs_es::persist::{PersistenceError, SerializedEvent};
use futures::future::BoxFuture;
use sqlx::PgPool;
use tokio::sync::oneshot;

use super::guard::{Guard, Locked, metadata_value};
use super::sql::{self, Expected};
use super::{AggregateStore, StreamKey};
use crate::position::{Position, PositionEntry};

/// How many times a batch is decided again after losing an append race outright.
const MAX_CONFLICT_RETRIES: usize = 12;
/// Units decided and appended together at most.
const MAX_BATCH: usize = 128;
/// How many times a batch is decided again because another writer moved one of its streams
/// since it was cached, before its callers are told to come back later.
const MAX_STALE_ROUNDS: usize = 32;

/// A stream a unit declared, typed for `Decision`.
pub struct StreamRef<A> {
    key: StreamKey,
    _aggregate: PhantomData<fn() -> A>,
}

impl<A> Clone for StreamRef<A> {
    fn clone(&self) -> Self {
        Self {
            key: self.key.clone(),
            _aggregate: PhantomData,
        }
    }
}

impl<A> StreamRef<A> {
    pub fn id(&self) -> &str {
        &self.key.id
    }
}

/// A stream of some store, seen from a unit: where its queue and lock are.
pub(crate) trait Stream: Send + Sync {
    fn pending(&self) -> &std::sync::Mutex<VecDeque<Queued>>;
    fn lock(&self) -> BoxFuture<'_, Box<dyn Locked>>;
    fn pool(&self) -> &PgPool;
    fn evict_idle(&self);
}

struct Declared {
    key: StreamKey,
    stream: Arc<dyn Stream>,
    /// The id was just made up: skip the load that could only find nothing.
    new: bool,
    /// The cached state must include at least this sequence (an event the caller saw).
    at_least: usize,
}

type Erased = Box<dyn Any + Send>;
type Decide = Box<dyn FnMut(&mut Decision<'_>) -> Result<Erased, Erased> + Send>;

enum Failure {
    Rejected(Erased),
    Contended,
    Store(PersistenceError),
}

type Answer = Result<(Erased, Position), Failure>;

/// A unit waiting for its first stream's lock, with where to send its answer.
pub(crate) struct Queued {
    streams: Vec<Declared>,
    decide: Decide,
    metadata: serde_json::Value,
    reply: oneshot::Sender<Answer>,
}

/// What a committed unit decided and where its events are (for `X-Event-Position`).
#[derive(Debug)]
pub struct Committed<T> {
    pub value: T,
    pub position: Position,
}

#[derive(Debug, thiserror::Error)]
pub enum UnitError<E> {
    /// The decision refused: nothing was written.
    #[error("the unit was refused")]
    Rejected(E),
    /// Still losing append races after every retry; answer 503 and retry later.
    #[error("streams are too contended, retries exhausted")]
    Contended,
    #[error("event store failure: {0}")]
    Store(#[source] PersistenceError),
}

/// The streams of one decision, declared before it runs (their locks are taken in order).
pub struct Unit {
    streams: Vec<Declared>,
    metadata: serde_json::Value,
}

impl Unit {
    /// `metadata` (correlation, causation, user ids) is stored with every event written.
    pub fn new(metadata: &HashMap<String, String>) -> Self {
        Self {
            streams: Vec::new(),
            metadata: metadata_value(metadata),
        }
    }

    /// A stream the decision reads and may write.
    pub fn stream<A>(&mut self, store: &AggregateStore<A>, id: &str) -> StreamRef<A>
    where
        A: Aggregate + Clone + 'static,
    {
        self.declare(store, id, false, 0)
    }

    /// A stream whose id the caller has just made up (a random UUID): its load, which
    /// could only find nothing, is skipped. Should it exist after all, the append's check
    /// finds it and the decision runs again on what is stored.
    pub fn new_stream<A>(&mut self, store: &AggregateStore<A>, id: &str) -> StreamRef<A>
    where
        A: Aggregate + Clone + 'static,
    {
        self.declare(store, id, true, 0)
    }

    /// A stream whose cached state must include at least event `sequence` — one the caller
    /// has seen (a consumer deciding on the event it received).
    pub fn stream_at_least<A>(
        &mut self,
        store: &AggregateStore<A>,
        id: &str,
        sequence: u64,
    ) -> StreamRef<A>
    where
        A: Aggregate + Clone + 'static,
    {
        let at_least = usize::try_from(sequence).unwrap_or(usize::MAX);
        self.declare(store, id, false, at_least)
    }

    fn declare<A>(
        &mut self,
        store: &AggregateStore<A>,
        id: &str,
        new: bool,
        at_least: usize,
    ) -> StreamRef<A>
    where
        A: Aggregate + Clone + 'static,
    {
        let key = store.key(id);
        match self.streams.iter_mut().find(|d| d.key == key) {
            Some(declared) => {
                declared.new &= new;
                declared.at_least = declared.at_least.max(at_least);
            }
            None => self.streams.push(Declared {
                key: key.clone(),
                stream: Arc::new(store.handle(id)),
                new,
                at_least,
            }),
        }
        StreamRef {
            key,
            _aggregate: PhantomData,
        }
    }

    /// Decides with `decide` against the streams' current states and appends what it wrote,
    /// all or nothing. `decide` may run more than once (after another writer moved one of the
    /// streams); it runs under the streams' locks, so it must be quick and do no I/O.
    pub async fn run<T, E, F>(mut self, mut decide: F) -> Result<Committed<T>, UnitError<E>>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: FnMut(&mut Decision<'_>) -> Result<T, E> + Send + 'static,
    {
        if self.streams.is_empty() {
            return Err(UnitError::Store(PersistenceError::UnknownError(Box::new(
                std::io::Error::other("a unit needs at least one stream"),
            ))));
        }
        self.streams.sort_by(|a, b| a.key.cmp(&b.key));
        let first = self.streams[0].stream.clone();
        let (reply, mut answer) = oneshot::channel();
        let queued = Queued {
            streams: self.streams,
            decide: Box::new(move |d| {
                decide(d)
                    .map(|t| Box::new(t) as Erased)
                    .map_err(|e| Box::new(e) as Erased)
            }),
            metadata: self.metadata,
            reply,
        };
        lock_queue(first.pending()).push_back(queued);
        let answer = loop {
            {
                let guard = first.lock().await;
                let batch: Vec<Queued> = {
                    let mut pending = lock_queue(first.pending());
                    let take = pending.len().min(MAX_BATCH);
                    pending.drain(..take).collect()
                };
                if !batch.is_empty() {
                    run_batch(first.pool().clone(), guard, batch).await;
                }
            }
            // Whoever took this unit into a batch answered it before letting the lock go;
            // otherwise it is still queued and the next turn takes it.
            match answer.try_recv() {
                Ok(answer) => break answer,
                Err(oneshot::error::TryRecvError::Empty) => {}
                Err(oneshot::error::TryRecvError::Closed) => {
                    break Err(Failure::Store(PersistenceError::UnknownError(Box::new(
                        std::io::Error::other("the batch holding this unit was abandoned"),
                    ))));
                }
            }
        };
        first.evict_idle();
        match answer {
            Ok((value, position)) => Ok(Committed {
                value: *value
                    .downcast::<T>()
                    .expect("a unit's answer has the type its decision returned"),
                position,
            }),
            Err(Failure::Rejected(err)) => Err(UnitError::Rejected(
                *err.downcast::<E>()
                    .expect("a unit's refusal has the type its decision returned"),
            )),
            Err(Failure::Contended) => Err(UnitError::Contended),
            Err(Failure::Store(err)) => Err(UnitError::Store(err)),
        }
    }
}

fn lock_queue(
    queue: &std::sync::Mutex<VecDeque<Queued>>,
) -> std::sync::MutexGuard<'_, VecDeque<Queued>> {
    queue.lock().unwrap_or_else(|p| p.into_inner())
}

/// The streams of one unit as its decision sees them: the states after the units decided
/// before it in this batch.
pub struct Decision<'a> {
    guards: &'a mut BTreeMap<StreamKey, Box<dyn Locked>>,
    declared: &'a [Declared],
    metadata: &'a serde_json::Value,
    failure: Option<PersistenceError>,
}

impl Decision<'_> {
    fn guard<A>(&mut self, stream: &StreamRef<A>) -> &mut Guard<A>
    where
        A: Aggregate + Clone + 'static,
    {
        assert!(
            self.declared.iter().any(|d| d.key == stream.key),
            "a unit decides only on the streams it declared ({:?})",
            stream.key
        );
        self.guards
            .get_mut(&stream.key)
            .and_then(|g| g.as_any().downcast_mut::<Guard<A>>())
            .expect("a declared stream is locked with its own type")
    }

    /// The stream's state, including what this decision has written to it so far.
    pub fn state<A>(&mut self, stream: &StreamRef<A>) -> &A
    where
        A: Aggregate + Clone + 'static,
    {
        self.guard(stream).state()
    }

    /// The stream's version, including what this decision has written to it so far.
    pub fn version<A>(&mut self, stream: &StreamRef<A>) -> u64
    where
        A: Aggregate + Clone + 'static,
    {
        self.guard(stream).working_version() as u64
    }

    /// Runs `command` on the stream; its events are appended with the unit's, or not at all.
    pub fn execute<A>(
        &mut self,
        stream: &StreamRef<A>,
        command: A::Command,
    ) -> Result<Vec<A::Event>, A::Error>
    where
        A: Aggregate + Clone + 'static,
    {
        let metadata = self.metadata;
        match self.guard(stream).execute(command, metadata) {
            Ok(events) => Ok(events),
            Err(Ok(refused)) => Err(refused),
            Err(Err(failure)) => {
                // Not the aggregate's refusal: the unit fails as a whole whatever the
                // decision makes of this.
                self.failure = Some(failure);
                Ok(Vec::new())
            }
        }
    }
}

enum Outcome {
    Accepted {
        value: Erased,
        position: Position,
        /// Where this unit's events are: (stream, first event index, end) in this round.
        segments: Vec<(StreamKey, usize, usize)>,
    },
    Rejected(Erased),
    Failed(PersistenceError),
}

impl Outcome {
    fn writes_nothing(&self) -> bool {
        match self {
            Outcome::Accepted { segments, .. } => segments.is_empty(),
            Outcome::Rejected(_) => true,
            Outcome::Failed(_) => false,
        }
    }
}

/// Decides every unit of `batch` in order and appends all their events at once; answers each.
async fn run_batch(pool: PgPool, first: Box<dyn Locked>, mut batch: Vec<Queued>) {
    metrics::histogram!("aggregate_batch_commands", "aggregate" => first.key().aggregate_type)
        .record(batch.len() as f64);
    let first_key = first.key().clone();
    let mut needs: BTreeMap<StreamKey, (Arc<dyn Stream>, bool, usize)> = BTreeMap::new();
    for unit in &batch {
        for d in &unit.streams {
            let need = needs
                .entry(d.key.clone())
                .or_insert_with(|| (d.stream.clone(), true, 0));
            need.1 &= d.new;
            need.2 = need.2.max(d.at_least);
        }
    }
    let mut guards: BTreeMap<StreamKey, Box<dyn Locked>> = BTreeMap::new();
    guards.insert(first_key.clone(), first);
    // In key order, and all after the first (see the module's note): no lock cycle.
    for (key, (stream, _, _)) in &needs {
        if *key != first_key {
            guards.insert(key.clone(), stream.lock().await);
        }
    }
    // Exponential from 2 ms, capped at 200 ms, with jitter, so racing processes spread out
    // instead of colliding again in lockstep.
    let mut backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(2))
        .with_max_delay(Duration::from_millis(200))
        .with_max_times(MAX_CONFLICT_RETRIES)
        .with_jitter()
        .build();
    let mut stale_rounds = 0;
    let started = std::time::Instant::now();
    loop {
        for (key, (_, new, at_least)) in &needs {
            let guard = guards.get_mut(key).expect("every needed stream is locked");
            if let Err(err) = guard.ensure(*new, *at_least).await {
                return fail(&mut guards, batch, &err);
            }
        }
        let outcomes = decide_round(&mut guards, &mut batch);

        // A unit that writes nothing — refused, or accepted with nothing to do — is not
        // checked by any append, so a stale state would go unnoticed (an idempotent command
        // that looks done on an old copy): check its streams before answering.
        let unverified: BTreeSet<StreamKey> = batch
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| o.writes_nothing())
            .flat_map(|(unit, _)| unit.streams.iter().map(|d| d.key.clone()))
            .filter(|key| !guards[key].verified())
            .collect();
        if !unverified.is_empty() {
            let expected: Vec<Expected> = unverified.iter().map(|k| guards[k].expected()).collect();
            match sql::newer(&pool, &expected).await {
                Ok(newer) => {
                    for key in &unverified {
                        guards.get_mut(key).expect("locked").set_verified();
                    }
                    if !newer.is_empty() {
                        if let Err(err) = apply_newer(&mut guards, newer) {
                            return fail(&mut guards, batch, &err);
                        }
                        continue;
                    }
                }
                Err(err) => return fail(&mut guards, batch, &err),
            }
        }

        let mut rows: Vec<SerializedEvent> = Vec::new();
        let mut expected: BTreeMap<StreamKey, Expected> = BTreeMap::new();
        for (unit, outcome) in batch.iter().zip(&outcomes) {
            if let Outcome::Accepted { segments, .. } = outcome {
                for (key, from, to) in segments {
                    rows.extend_from_slice(&guards[key].rows_since(*from)[..to - from]);
                }
                for d in &unit.streams {
                    expected
                        .entry(d.key.clone())
                        .or_insert_with(|| guards[&d.key].expected());
                }
            }
        }
        if rows.is_empty() {
            return answer(batch, outcomes);
        }
        let mut snapshots = Vec::new();
        for guard in guards.values() {
            match guard.snapshot() {
                Ok(Some(snapshot)) => snapshots.push(snapshot),
                Ok(None) => {}
                Err(err) => return fail(&mut guards, batch, &err),
            }
        }
        let expected: Vec<Expected> = expected.into_values().collect();
        match sql::append(&pool, &expected, &rows, &snapshots).await {
            Ok(newer) if newer.is_empty() => {
                for guard in guards.values_mut() {
                    guard.commit();
                }
                return answer(batch, outcomes);
            }
            Ok(newer) => {
                // Another writer moved a stream since it was cached: nothing was written;
                // decide again on what it wrote.
                metrics::counter!("aggregate_stale_decisions_total", "aggregate" => first_key.aggregate_type)
                    .increment(1);
                stale_rounds += 1;
                if stale_rounds > MAX_STALE_ROUNDS {
                    return contended(&mut guards, batch, "stale rounds", started);
                }
                for e in &expected {
                    if let Some(guard) = guards
                        .values_mut()
                        .find(|g| g.key().matches(e.aggregate_type, &e.aggregate_id))
                    {
                        guard.set_verified();
                    }
                }
                if let Err(err) = apply_newer(&mut guards, newer) {
                    return fail(&mut guards, batch, &err);
                }
            }
            Err(PersistenceError::OptimisticLockError) => {
                let Some(pause) = backoff.next() else {
                    return contended(&mut guards, batch, "conflicts", started);
                };
                metrics::counter!("aggregate_conflicts_retried_total", "aggregate" => first_key.aggregate_type)
                    .increment(1);
                // A writer slipped in between the check and the insert: catch up with every
                // stream and decide the whole batch again.
                tokio::time::sleep(pause).await;
                let all: Vec<Expected> = guards.values().map(|g| g.expected()).collect();
                match sql::newer(&pool, &all).await {
                    Ok(newer) => {
                        for guard in guards.values_mut() {
                            guard.set_verified();
                        }
                        if let Err(err) = apply_newer(&mut guards, newer) {
                            return fail(&mut guards, batch, &err);
                        }
                    }
                    Err(err) => return fail(&mut guards, batch, &err),
                }
            }
            Err(err) => {
                // The outcome is unknown (the commit may have happened): forget the cached
                // states so the next decision starts from what is stored.
                return fail(&mut guards, batch, &err);
            }
        }
    }
}

/// One round: every unit decided in order on the states the ones before it left.
fn decide_round(
    guards: &mut BTreeMap<StreamKey, Box<dyn Locked>>,
    batch: &mut [Queued],
) -> Vec<Outcome> {
    for guard in guards.values_mut() {
        guard.begin_round();
    }
    let mut outcomes = Vec::with_capacity(batch.len());
    for unit in batch.iter_mut() {
        let marks: Vec<usize> = unit.streams.iter().map(|d| guards[&d.key].mark()).collect();
        let mut decision = Decision {
            guards,
            declared: &unit.streams,
            metadata: &unit.metadata,
            failure: None,
        };
        let result = (unit.decide)(&mut decision);
        let failure = decision.failure.take();
        let rollback = |guards: &mut BTreeMap<StreamKey, Box<dyn Locked>>| {
            for (d, mark) in unit.streams.iter().zip(&marks) {
                guards.get_mut(&d.key).expect("locked").rollback(*mark);
            }
        };
        match (failure, result) {
            (Some(err), _) => {
                rollback(guards);
                outcomes.push(Outcome::Failed(err));
            }
            (None, Err(refused)) => {
                rollback(guards);
                outcomes.push(Outcome::Rejected(refused));
            }
            (None, Ok(value)) => {
                let mut entries = Vec::new();
                let mut segments = Vec::new();
                for (d, mark) in unit.streams.iter().zip(&marks) {
                    let guard = &guards[&d.key];
                    if guard.mark() > *mark {
                        segments.push((d.key.clone(), *mark, guard.mark()));
                        entries.push(PositionEntry {
                            aggregate_type: d.key.aggregate_type.to_owned(),
                            aggregate_id: d.key.id.clone(),
                            sequence: guard.working_version() as u64,
                        });
                    }
                }
                outcomes.push(Outcome::Accepted {
                    value,
                    position: Position::from(entries),
                    segments,
                });
            }
        }
    }
    outcomes
}

fn apply_newer(
    guards: &mut BTreeMap<StreamKey, Box<dyn Locked>>,
    newer: Vec<SerializedEvent>,
) -> Result<(), PersistenceError> {
    let mut by_stream: BTreeMap<(String, String), Vec<SerializedEvent>> = BTreeMap::new();
    for event in newer {
        by_stream
            .entry((event.aggregate_type.clone(), event.aggregate_id.clone()))
            .or_default()
            .push(event);
    }
    for ((aggregate_type, aggregate_id), events) in by_stream {
        if let Some(guard) = guards
            .values_mut()
            .find(|g| g.key().matches(&aggregate_type, &aggregate_id))
        {
            guard.apply_stored(events)?;
        }
    }
    Ok(())
}

fn answer(batch: Vec<Queued>, outcomes: Vec<Outcome>) {
    for (unit, outcome) in batch.into_iter().zip(outcomes) {
        let answer = match outcome {
            Outcome::Accepted {
                value, position, ..
            } => Ok((value, position)),
            Outcome::Rejected(refused) => Err(Failure::Rejected(refused)),
            Outcome::Failed(err) => Err(Failure::Store(replicate(&err))),
        };
        let _ = unit.reply.send(answer);
    }
}

/// Every unit of the batch is told to come back later; the cached states are forgotten.
fn contended(
    guards: &mut BTreeMap<StreamKey, Box<dyn Locked>>,
    batch: Vec<Queued>,
    why: &str,
    started: std::time::Instant,
) {
    if let Some(first) = guards.keys().next() {
        metrics::counter!("aggregate_conflicts_exhausted_total", "aggregate" => first.aggregate_type)
            .increment(1);
        tracing::warn!(
            first = ?first,
            streams = guards.len(),
            units = batch.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            why,
            "a batch gave up: its streams kept moving"
        );
    }
    for guard in guards.values_mut() {
        guard.invalidate();
    }
    for unit in batch {
        let _ = unit.reply.send(Err(Failure::Contended));
    }
}

/// Every unit of the batch fails with `err`; the cached states are forgotten.
fn fail(
    guards: &mut BTreeMap<StreamKey, Box<dyn Locked>>,
    batch: Vec<Queued>,
    err: &PersistenceError,
) {
    for guard in guards.values_mut() {
        guard.invalidate();
    }
    for unit in batch {
        let _ = unit.reply.send(Err(Failure::Store(replicate(err))));
    }
}

/// The same store failure for every caller of a batch (the error itself is not `Clone`).
fn replicate(err: &PersistenceError) -> PersistenceError {
    match err {
        PersistenceError::OptimisticLockError => PersistenceError::OptimisticLockError,
        PersistenceError::ConnectionError(e) => {
            PersistenceError::ConnectionError(Box::new(std::io::Error::other(e.to_string())))
        }
        other => PersistenceError::UnknownError(Box::new(std::io::Error::other(other.to_string()))),
    }
}
