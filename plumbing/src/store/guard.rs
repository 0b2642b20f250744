//! One stream's cached state while a batch holds its lock: the state as stored (the base),
//! this round's working copy with the events decided on it, and whether the base was checked
//! against the store in this batch. Typed inside, erased (`Locked`) for units that span
//! aggregates of several types.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{PersistenceError, SerializedEvent};
use cqrs_es::{Aggregate, DomainEvent, EventEnvelope};
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::OwnedMutexGuard;

use super::sql::{self, Expected, Snapshot};
use super::{Inner, Loaded, StreamKey};

/// A stream locked by a batch, whatever its aggregate type.
pub(crate) trait Locked: Send {
    fn key(&self) -> &StreamKey;
    /// Loads a stream not cached yet (or assumes a made-up id empty), or catches up one
    /// cached below `at_least`.
    fn ensure(&mut self, new: bool, at_least: usize)
    -> BoxFuture<'_, Result<(), PersistenceError>>;
    /// The base as the store last confirmed it (for the append's check).
    fn expected(&self) -> Expected;
    /// Applies stored events newer than the base (from a check or a catch-up).
    fn apply_stored(&mut self, events: Vec<SerializedEvent>) -> Result<(), PersistenceError>;
    /// Whether the base was read from, or checked against, the store in this batch.
    fn verified(&self) -> bool;
    fn set_verified(&mut self);
    /// Starts deciding the batch again from the base.
    fn begin_round(&mut self);
    /// How many events this round has decided so far (a point to roll back to).
    fn mark(&self) -> usize;
    fn rollback(&mut self, mark: usize);
    /// The version after this round's events.
    fn working_version(&self) -> usize;
    /// This round's events from `mark` on, serialised.
    fn rows_since(&self, mark: usize) -> &[SerializedEvent];
    /// The snapshot to write with this round's events, if one is due.
    fn snapshot(&self) -> Result<Option<Snapshot>, PersistenceError>;
    /// The append succeeded: the working state becomes the cached base.
    fn commit(&mut self);
    /// The outcome is unknown: forget the cached state.
    fn invalidate(&mut self);
    fn as_any(&mut self) -> &mut dyn Any;
}

pub(crate) struct Guard<A: Aggregate> {
    pub(crate) store: Arc<Inner<A>>,
    pub(crate) key: StreamKey,
    pub(crate) loaded: OwnedMutexGuard<Option<Loaded<A>>>,
    working: Option<A>,
    events: Vec<A::Event>,
    rows: Vec<SerializedEvent>,
    verified: bool,
}

impl<A: Aggregate + Clone + 'static> Guard<A> {
    pub(crate) fn new(
        store: Arc<Inner<A>>,
        key: StreamKey,
        loaded: OwnedMutexGuard<Option<Loaded<A>>>,
    ) -> Self {
        Self {
            store,
            key,
            loaded,
            working: None,
            events: Vec::new(),
            rows: Vec::new(),
            verified: false,
        }
    }

    fn base(&self) -> &Loaded<A> {
        self.loaded
            .as_ref()
            .expect("a locked stream is ensured before it is decided on")
    }

    /// The state after this round's events.
    pub(crate) fn state(&self) -> &A {
        self.working.as_ref().unwrap_or(&self.base().aggregate)
    }

    /// Runs `command` on the working state; accepted events are recorded for the append.
    /// `Err(Ok(e))` is the aggregate's refusal, `Err(Err(e))` a technical failure.
    pub(crate) fn execute(
        &mut self,
        command: A::Command,
        metadata: &serde_json::Value,
    ) -> Result<Vec<A::Event>, Result<A::Error, PersistenceError>> {
        let base_version = self.base().version;
        if self.working.is_none() {
            self.working = Some(self.base().aggregate.clone());
        }
        let working = self.working.as_mut().expect("just made");
        let sink = EventSink::default();
        // Aggregates decide without I/O, so their futures complete on the first poll; one
        // that waited would be a bug in the domain, reported rather than blocked on.
        // `unconstrained`: the sink's (uncontended) lock must not be turned into a yield by
        // tokio's cooperative budget, which a batch of decisions in one task exhausts.
        let Some(handled) =
            tokio::task::unconstrained(working.handle(command, &self.store.services, &sink))
                .now_or_never()
        else {
            return Err(Err(not_pure()));
        };
        let Some(events) = tokio::task::unconstrained(sink.collect()).now_or_never() else {
            return Err(Err(not_pure()));
        };
        if let Err(err) = handled {
            if !events.is_empty() {
                // It wrote (and applied) events before refusing: rebuild the working state.
                self.rebuild();
            }
            return Err(Ok(err));
        }
        let first = base_version + self.events.len();
        for (i, event) in events.iter().enumerate() {
            let payload = serde_json::to_value(event).map_err(|e| Err(e.into()))?;
            self.rows.push(SerializedEvent::new(
                self.key.id.clone(),
                first + i + 1,
                A::TYPE.to_owned(),
                event.event_type(),
                event.event_version(),
                payload,
                metadata.clone(),
            ));
        }
        self.events.extend(events.iter().cloned());
        Ok(events)
    }

    /// The working state as the base plus this round's kept events.
    fn rebuild(&mut self) {
        if self.events.is_empty() {
            self.working = None;
            return;
        }
        let mut state = self.base().aggregate.clone();
        for event in &self.events {
            state.apply(event.clone());
        }
        self.working = Some(state);
    }

    /// (number, version) of the snapshot due with this round's events, if any.
    fn snapshot_due(&self) -> Option<(usize, usize)> {
        let every = self.store.snapshot_every?;
        let base = self.base();
        let version = self.working_version();
        (!self.events.is_empty() && version - base.snapshot.1 >= every)
            .then_some((base.snapshot.0 + 1, version))
    }

    async fn load(&mut self) -> Result<(), PersistenceError> {
        let mut loaded = Loaded::empty();
        if self.store.snapshot_every.is_some()
            && let Some((state, version, number)) =
                sql::snapshot(&self.store.pool, A::TYPE, &self.key.id).await?
        {
            loaded.aggregate = serde_json::from_value(state)?;
            loaded.version = version;
            loaded.snapshot = (number, version);
        }
        let newer = sql::newer(
            &self.store.pool,
            &[Expected {
                aggregate_type: A::TYPE,
                aggregate_id: self.key.id.clone(),
                version: loaded.version,
            }],
        )
        .await?;
        *self.loaded = Some(loaded);
        self.apply_stored(newer)
    }
}

fn not_pure() -> PersistenceError {
    PersistenceError::UnknownError(Box::new(std::io::Error::other(
        "an aggregate waited while deciding a command; aggregates must decide without I/O",
    )))
}

/// Applies stored events to a cached state, upcasting older versions first.
pub(crate) fn apply_events<A: Aggregate>(
    store: &Inner<A>,
    loaded: &mut Loaded<A>,
    events: Vec<SerializedEvent>,
) -> Result<(), PersistenceError> {
    for stored in events {
        if stored.sequence <= loaded.version {
            continue; // already applied (a catch-up racing an append of ours)
        }
        let stored = store.upcast(stored);
        let envelope = EventEnvelope::<A>::try_from(stored)?;
        loaded.aggregate.apply(envelope.payload);
        loaded.version = envelope.sequence;
    }
    loaded.fresh = false;
    loaded.checked_at = Some(Instant::now());
    Ok(())
}

impl<A: Aggregate + Clone + 'static> Locked for Guard<A> {
    fn key(&self) -> &StreamKey {
        &self.key
    }

    fn ensure(
        &mut self,
        new: bool,
        at_least: usize,
    ) -> BoxFuture<'_, Result<(), PersistenceError>> {
        async move {
            match self.loaded.as_ref() {
                None if new => {
                    *self.loaded = Some(Loaded {
                        fresh: true,
                        ..Loaded::empty()
                    });
                    // A made-up id has no events to check a refusal against; the append
                    // still checks it (should the id exist after all).
                    self.verified = true;
                }
                None => {
                    self.load().await?;
                    self.verified = true;
                }
                Some(loaded) if loaded.version < at_least => {
                    let newer = sql::newer(&self.store.pool, &[self.expected()]).await?;
                    self.apply_stored(newer)?;
                    self.verified = true;
                }
                Some(_) => {}
            }
            Ok(())
        }
        .boxed()
    }

    fn expected(&self) -> Expected {
        Expected {
            aggregate_type: A::TYPE,
            aggregate_id: self.key.id.clone(),
            version: self.base().version,
        }
    }

    fn apply_stored(&mut self, events: Vec<SerializedEvent>) -> Result<(), PersistenceError> {
        let store = self.store.clone();
        let loaded = self
            .loaded
            .as_mut()
            .expect("a stream is loaded before events are applied to it");
        apply_events(&store, loaded, events)
    }

    fn verified(&self) -> bool {
        self.verified
    }

    fn set_verified(&mut self) {
        self.verified = true;
    }

    fn begin_round(&mut self) {
        self.working = None;
        self.events.clear();
        self.rows.clear();
    }

    fn mark(&self) -> usize {
        self.events.len()
    }

    fn rollback(&mut self, mark: usize) {
        if self.events.len() > mark {
            self.events.truncate(mark);
            self.rows.truncate(mark);
            self.rebuild();
        }
    }

    fn working_version(&self) -> usize {
        self.base().version + self.events.len()
    }

    fn rows_since(&self, mark: usize) -> &[SerializedEvent] {
        &self.rows[mark.min(self.rows.len())..]
    }

    fn snapshot(&self) -> Result<Option<Snapshot>, PersistenceError> {
        let Some((number, version)) = self.snapshot_due() else {
            return Ok(None);
        };
        Ok(Some(Snapshot {
            aggregate_type: A::TYPE,
            aggregate_id: self.key.id.clone(),
            version,
            number,
            state: serde_json::to_value(self.state())?,
        }))
    }

    fn commit(&mut self) {
        if self.events.is_empty() {
            return;
        }
        let snapshot_due = self.snapshot_due();
        let version = self.working_version();
        let state = self.working.take();
        let loaded = self.loaded.as_mut().expect("committed streams are loaded");
        if let Some(state) = state {
            loaded.aggregate = state;
        }
        loaded.version = version;
        loaded.fresh = false;
        // The append found nothing newer: this is the stored state.
        loaded.checked_at = Some(Instant::now());
        if let Some(snapshot) = snapshot_due {
            loaded.snapshot = snapshot;
        }
        self.events.clear();
        self.rows.clear();
    }

    fn invalidate(&mut self) {
        *self.loaded = None;
        self.working = None;
        self.events.clear();
        self.rows.clear();
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
}

/// Metadata as stored with every event of a command.
pub(crate) fn metadata_value(metadata: &HashMap<String, String>) -> serde_json::Value {
    serde_json::to_value(metadata).unwrap_or_default()
}
