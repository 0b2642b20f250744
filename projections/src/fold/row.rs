//! What a read-model row is to the fold engine: a serde struct whose fields are its table's
//! columns, with a key (the primary key's columns) and, for rows read together, a group.

use std::fmt::Debug;
use std::hash::Hash;

use chrono::{DateTime, SubsecRound, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One row of a read-model table. Field names are column names: rows travel to and from
/// PostgreSQL as JSON objects (`to_jsonb`, `jsonb_populate_recordset`) and as `COPY` text,
/// so a row must name every column of its table.
pub trait Row: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// The table, unqualified: the search path picks the live schema or a scratch one.
    const TABLE: &'static str;
    /// The primary key, as a struct whose fields are the key columns.
    type Key: Serialize + DeserializeOwned + Hash + Eq + Clone + Debug + Send + Sync;
    /// Rows a fold reads together (`Table::group`), as a struct of column values; `NoGroup`
    /// for tables only read by key.
    type Group: Serialize + DeserializeOwned + Hash + Eq + Clone + Debug + Send + Sync;

    fn key(&self) -> Self::Key;

    /// The group this row belongs to; `None` for tables without groups.
    fn group(&self) -> Option<Self::Group> {
        None
    }
}

/// The group type of tables that are only read by key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NoGroup {}

/// A `timestamptz` as PostgreSQL stores it: whole microseconds. Events carry nanoseconds;
/// cutting them here (as sqlx's binary encoding always did) makes a row written through
/// JSON, through `COPY` and by earlier versions of the projections compare equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ts(DateTime<Utc>);

impl Ts {
    pub fn get(self) -> DateTime<Utc> {
        self.0
    }
}

impl From<DateTime<Utc>> for Ts {
    fn from(t: DateTime<Utc>) -> Self {
        Ts(t.trunc_subsecs(6))
    }
}

/// A JSON column value of `value` (stored as `jsonb`).
pub fn json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}
