//! One model being rebuilt: its tables, complete and in memory, and the sequences it has
//! applied per aggregate (its `consumer_applied` rows), folded event by event with the live
//! path's `apply` and claim rule.

use foldhash::HashMap;

use plumbing::position::ReadModel;
use plumbing::projection::next_in_line;
use serde::Serialize;

use crate::fold::copy::{CopyEncoder, CopyError};
use crate::fold::io::Changes;
use crate::fold::{Fact, Model, RowSet, TableIo, Ts};

/// A model being rebuilt, whatever its type.
pub trait Rebuilder: Send {
    fn name(&self) -> ReadModel;
    /// Folds the events of the model's aggregate types, in order; events already applied
    /// or ahead of a missing one are skipped, as live.
    fn fold(&mut self, facts: &[Fact]);
    /// Events applied so far.
    fn events(&self) -> u64;
    fn tables(&mut self) -> Vec<&mut dyn TableIo>;
    fn applied(&mut self) -> &mut Applied;
}

pub struct Rebuild<M: Model> {
    rows: M::Rows,
    applied: Applied,
    events: u64,
}

impl<M: Model> Default for Rebuild<M> {
    /// An empty rebuild: complete, empty tables.
    fn default() -> Self {
        let mut rows = M::Rows::default();
        for table in rows.tables() {
            table.set_complete();
        }
        Self {
            rows,
            applied: Applied::new(M::NAME.consumer),
            events: 0,
        }
    }
}

impl<M: Model> Rebuilder for Rebuild<M> {
    fn name(&self) -> ReadModel {
        M::NAME
    }

    fn fold(&mut self, facts: &[Fact]) {
        for fact in facts {
            if !M::NAME
                .aggregate_types
                .contains(&fact.aggregate_type.as_str())
            {
                continue;
            }
            if !self.applied.claim(fact) {
                continue;
            }
            self.events += 1;
            if let Err(err) = M::apply(&mut self.rows, fact) {
                // The live consumer dead-letters such an event; the replay skips it alike.
                tracing::warn!(model = M::NAME.consumer, error = %err, aggregate_id = %fact.aggregate_id,
                    "event the model refuses skipped");
            }
        }
    }

    fn events(&self) -> u64 {
        self.events
    }

    fn tables(&mut self) -> Vec<&mut dyn TableIo> {
        self.rows.tables()
    }

    fn applied(&mut self) -> &mut Applied {
        &mut self.applied
    }
}

struct Sequence {
    last: i64,
    stored: bool,
    dirty: bool,
}

/// The model's applied sequence per aggregate: what its `consumer_applied` rows will say.
pub struct Applied {
    consumer: &'static str,
    by_type: HashMap<String, HashMap<String, Sequence>>,
}

/// A `consumer_applied` row.
#[derive(Serialize)]
struct AppliedRow<'a> {
    consumer: &'a str,
    aggregate_type: &'a str,
    aggregate_id: &'a str,
    last_sequence: i64,
    updated_at: Ts,
}

impl Applied {
    fn new(consumer: &'static str) -> Self {
        Self {
            consumer,
            by_type: HashMap::default(),
        }
    }

    /// Whether `fact` is its aggregate's next event (and if so, records it applied).
    fn claim(&mut self, fact: &Fact) -> bool {
        let ids = self.by_type.entry(fact.aggregate_type.clone()).or_default();
        let applied = ids.get(fact.aggregate_id.as_str()).map_or(0, |s| s.last);
        if !next_in_line(applied, fact.sequence) {
            if fact.sequence > applied {
                tracing::warn!(consumer = self.consumer, aggregate_id = %fact.aggregate_id,
                    last = applied, sequence = fact.sequence, "event ahead of its aggregate's sequence skipped");
            }
            return false;
        }
        match ids.get_mut(fact.aggregate_id.as_str()) {
            Some(sequence) => {
                sequence.last = fact.sequence;
                sequence.dirty = true;
            }
            None => {
                ids.insert(
                    fact.aggregate_id.clone(),
                    Sequence {
                        last: fact.sequence,
                        stored: false,
                        dirty: true,
                    },
                );
            }
        }
        true
    }

    /// Every applied sequence: (aggregate type, aggregate id, last sequence).
    pub fn sequences(&self) -> impl Iterator<Item = (&str, &str, i64)> {
        self.by_type.iter().flat_map(|(t, ids)| {
            ids.iter()
                .map(move |(id, s)| (t.as_str(), id.as_str(), s.last))
        })
    }

    /// The `consumer_applied` rows that changed since the last call (new ones as `COPY`
    /// lines when an encoder is given).
    pub fn take_changes(&mut self, copy: Option<&CopyEncoder>) -> Result<Changes, CopyError> {
        let now = Ts::from(chrono::Utc::now());
        let mut changes = Changes {
            key_columns: ["consumer", "aggregate_type", "aggregate_id"]
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect(),
            ..Changes::default()
        };
        for (aggregate_type, ids) in &mut self.by_type {
            for (aggregate_id, sequence) in ids.iter_mut().filter(|(_, s)| s.dirty) {
                let row = AppliedRow {
                    consumer: self.consumer,
                    aggregate_type,
                    aggregate_id,
                    last_sequence: sequence.last,
                    updated_at: now,
                };
                match copy {
                    Some(encoder) if !sequence.stored => {
                        if changes.copy_statement.is_none() {
                            changes.copy_statement = Some(encoder.statement(&row)?);
                        }
                        encoder.encode(&row, &mut changes.copy)?;
                        changes.copy_rows += 1;
                    }
                    _ => changes.upserts.push(serde_json::to_value(&row)?),
                }
                sequence.dirty = false;
                sequence.stored = true;
            }
        }
        Ok(changes)
    }
}
