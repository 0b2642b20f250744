//! `TableIo`: what the engine asks of any table, whatever its row type — what a fold read
//! without having it, taking loaded rows in, and the changes to write back.

use serde_json::Value;

use super::copy::{CopyEncoder, CopyError};
use super::row::Row;
use super::table::{Stored, Table};

/// Rows a pass read that the table did not hold: keys and groups, as JSON objects whose
/// fields are columns.
#[derive(Debug, Default)]
pub struct Missing {
    pub keys: Vec<Value>,
    pub groups: Vec<Value>,
}

/// What a table must write to reach its in-memory state.
#[derive(Debug, Default)]
pub struct Changes {
    /// The `COPY` statement naming the columns in the order `copy` holds them.
    pub copy_statement: Option<String>,
    /// Rows that are new to the stored table, as `COPY` text lines (when an encoder was
    /// given).
    pub copy: Vec<u8>,
    pub copy_rows: usize,
    /// Rows to insert or overwrite, as JSON objects.
    pub upserts: Vec<Value>,
    /// Keys of rows to delete, as JSON objects.
    pub deletes: Vec<Value>,
    /// The primary key's columns, quoted.
    pub key_columns: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.copy_rows == 0 && self.upserts.is_empty() && self.deletes.is_empty()
    }
}

/// A table of any row type, as the engine drives it.
pub trait TableIo: Send {
    fn table(&self) -> &'static str;
    /// From now on every row is in memory (a replay starting from empty tables).
    fn set_complete(&mut self);
    /// What the last pass read without having it, if anything.
    fn take_missing(&mut self) -> Result<Option<Missing>, serde_json::Error>;
    /// Takes in the stored rows loaded for `missing`.
    fn absorb(&mut self, missing: &Missing, rows: Vec<Value>) -> Result<(), serde_json::Error>;
    /// The changes since the last call, after which they count as stored. With an encoder,
    /// rows that are certainly new are encoded for `COPY` instead of upserted.
    fn take_changes(&mut self, copy: Option<&CopyEncoder>) -> Result<Changes, CopyError> {
        let mut all = Changes::default();
        self.drain_changes(copy, usize::MAX, &mut |changes| {
            all = changes;
            true
        })?;
        Ok(all)
    }
    /// `take_changes` handed out in parts of at most `chunk` `COPY` rows as they are
    /// encoded (the last part carries the upserts and deletes); stops early when `out`
    /// returns false.
    fn drain_changes(
        &mut self,
        copy: Option<&CopyEncoder>,
        chunk: usize,
        out: &mut dyn FnMut(Changes) -> bool,
    ) -> Result<(), CopyError>;
    /// Rows held in memory.
    fn rows(&self) -> usize;
}

impl<R: Row> TableIo for Table<R> {
    fn table(&self) -> &'static str {
        R::TABLE
    }

    fn set_complete(&mut self) {
        self.complete = true;
    }

    fn take_missing(&mut self) -> Result<Option<Missing>, serde_json::Error> {
        if self.missing_keys.is_empty() && self.missing_groups.is_empty() {
            return Ok(None);
        }
        let keys = self
            .missing_keys
            .drain()
            .map(|k| serde_json::to_value(&k))
            .collect::<Result<_, _>>()?;
        let groups = self
            .missing_groups
            .drain()
            .map(|g| serde_json::to_value(&g))
            .collect::<Result<_, _>>()?;
        Ok(Some(Missing { keys, groups }))
    }

    fn absorb(&mut self, missing: &Missing, rows: Vec<Value>) -> Result<(), serde_json::Error> {
        for row in rows {
            self.absorb_row(serde_json::from_value::<R>(row)?);
        }
        for key in &missing.keys {
            self.absorb_absent(serde_json::from_value(key.clone())?);
        }
        for group in &missing.groups {
            self.loaded_groups
                .insert(serde_json::from_value(group.clone())?);
        }
        Ok(())
    }

    fn drain_changes(
        &mut self,
        copy: Option<&CopyEncoder>,
        chunk: usize,
        out: &mut dyn FnMut(Changes) -> bool,
    ) -> Result<(), CopyError> {
        let mut key_columns = Vec::new();
        if let Some(Value::Object(fields)) =
            self.dirty.first().map(serde_json::to_value).transpose()?
        {
            key_columns = fields.keys().map(|c| format!("\"{c}\"")).collect();
        }
        let fresh = || Changes {
            key_columns: key_columns.clone(),
            ..Changes::default()
        };
        let mut changes = fresh();
        for key in std::mem::take(&mut self.dirty) {
            if changes.copy_rows >= chunk {
                let full = std::mem::replace(&mut changes, fresh());
                if !out(full) {
                    return Ok(());
                }
            }
            let Some(slot) = self.slots.get_mut(&key) else {
                continue;
            };
            slot.dirty = false;
            match (&slot.row, slot.stored, copy) {
                (Some(row), Stored::No, Some(encoder)) => {
                    if changes.copy_statement.is_none() {
                        changes.copy_statement = Some(encoder.statement(row)?);
                    }
                    encoder.encode(row, &mut changes.copy)?;
                    changes.copy_rows += 1;
                }
                (Some(row), _, _) => changes.upserts.push(serde_json::to_value(row)?),
                (None, Stored::No, _) => {}
                (None, _, _) => changes.deletes.push(serde_json::to_value(&key)?),
            }
            if slot.row.is_some() {
                slot.stored = Stored::Yes;
            } else if self.complete {
                // A complete table answers for keys it does not hold: forget the row.
                self.slots.remove(&key);
            } else {
                slot.stored = Stored::No;
            }
        }
        out(changes);
        Ok(())
    }

    fn rows(&self) -> usize {
        self.len()
    }
}
