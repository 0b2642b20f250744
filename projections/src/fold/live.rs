//! The live path: a batch of claimed events folded over the rows it touches, written back
//! with one statement per table.
//!
//! Which rows a batch reads is found by folding it: a first pass over empty tables records
//! every row and group it looked for; they are loaded (one statement per table) and the
//! batch is folded again from what was loaded. A pass that found everything it read is
//! exact, and its changes are written. Reads never depend on what a row holds, so two passes
//! suffice; more are allowed in case a future model's reads do.

use std::marker::PhantomData;

use async_trait::async_trait;
use plumbing::consumer::HandleError;
use plumbing::projection::Projection;
use schemas::{DecodedEvent, Envelope};
use sqlx::PgConnection;

use super::{Fact, Model, RowSet, sql};

const MAX_PASSES: usize = 4;

/// A model as a live projection (see `plumbing::projection::ProjectionHandler`).
pub struct Live<M>(PhantomData<fn() -> M>);

impl<M> Default for Live<M> {
    fn default() -> Self {
        Live(PhantomData)
    }
}

#[async_trait]
impl<M: Model> Projection for Live<M> {
    fn name(&self) -> &'static str {
        M::NAME.consumer
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        events: Vec<(&Envelope, DecodedEvent)>,
    ) -> Result<(), HandleError> {
        let facts: Vec<Fact> = events
            .into_iter()
            .map(|(envelope, event)| Fact {
                aggregate_type: envelope.aggregate_type.clone(),
                aggregate_id: envelope.aggregate_id.clone(),
                sequence: i64::try_from(envelope.sequence).unwrap_or(i64::MAX),
                event,
            })
            .collect();
        fold_batch::<M>(tx, &facts).await
    }
}

/// Folds `facts` over the stored rows they touch and writes the changes, in `conn`'s
/// transaction.
pub async fn fold_batch<M: Model>(
    conn: &mut PgConnection,
    facts: &[Fact],
) -> Result<(), HandleError> {
    let transient = |e: anyhow::Error| HandleError::Transient(e);
    let mut loaded = M::Rows::default();
    for _ in 0..MAX_PASSES {
        let mut work = loaded.clone();
        for fact in facts {
            M::apply(&mut work, fact).map_err(|e| HandleError::Poison(e.into()))?;
        }
        let mut exact = true;
        for (pass, store) in work.tables().into_iter().zip(loaded.tables()) {
            let Some(missing) = pass.take_missing().map_err(|e| transient(e.into()))? else {
                continue;
            };
            exact = false;
            let rows = sql::load(conn, pass.table(), &missing).await?;
            store
                .absorb(&missing, rows)
                .map_err(|e| transient(anyhow::Error::new(e).context(pass.table())))?;
        }
        if exact {
            for table in work.tables() {
                let changes = table.take_changes(None).map_err(|e| transient(e.into()))?;
                sql::write(conn, table.table(), &changes).await?;
            }
            return Ok(());
        }
    }
    Err(transient(anyhow::anyhow!(
        "{}: a batch still read rows it had not loaded after {MAX_PASSES} passes",
        M::NAME.consumer
    )))
}
