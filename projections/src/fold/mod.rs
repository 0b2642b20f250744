//! The fold engine: a read model is a pure function `apply(&mut Rows, &Fact)` over tables
//! of rows held in memory, and the engine moves rows between memory and PostgreSQL for it.
//! The live consumer (`live`) loads what a batch reads, folds the batch and writes the
//! changed rows with one statement per table; the replay (`crate::replay`) folds the whole
//! store into complete tables and writes them with `COPY`. Both run the same `apply`, so a
//! model's rules exist once.

pub mod copy;
pub mod io;
pub mod live;
pub mod row;
pub mod sql;
pub mod table;

use plumbing::position::ReadModel;
use schemas::DecodedEvent;

pub use io::TableIo;
pub use row::{NoGroup, Row, Ts, json};
pub use table::Table;

/// One event as a fold sees it.
#[derive(Debug, Clone)]
pub struct Fact {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event: DecodedEvent,
}

/// An event a model can never apply (a malformed aggregate id): dead-lettered live,
/// skipped with a warning by a replay.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Poison(pub String);

/// The tables of one model, in memory.
pub trait RowSet: Default + Clone + Send + Sync + 'static {
    fn tables(&mut self) -> Vec<&mut dyn TableIo>;
}

/// A read model: its name (the consumer, which also keys `consumer_applied`, and the
/// aggregate types it reads), its tables and its rules.
pub trait Model: Send + Sync + 'static {
    const NAME: ReadModel;
    type Rows: RowSet;

    /// Applies one event. Pure: everything it reads and writes is in `rows`. A fold reads
    /// only through `Table`, so a live batch can tell what to load.
    fn apply(rows: &mut Self::Rows, fact: &Fact) -> Result<(), Poison>;
}

/// Declares a model's `Rows`: one `Table` per field.
#[macro_export]
macro_rules! rows {
    ($(#[$meta:meta])* pub struct $name:ident { $($field:ident: $row:ty),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Default, Clone)]
        pub struct $name {
            $(pub $field: $crate::fold::Table<$row>,)+
        }

        impl $crate::fold::RowSet for $name {
            fn tables(&mut self) -> Vec<&mut dyn $crate::fold::TableIo> {
                vec![$(&mut self.$field),+]
            }
        }
    };
}
