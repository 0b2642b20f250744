//! Every read model, registered once: `ALL` is what the projections process consumes and
//! what `replay` and `verify` rebuild. A model is one module — its rows, its fold and the
//! queries command-api calls — with its tables' migration in `projections/migrations`.

pub mod availability;
pub mod bookings;
pub mod catalog;
mod ids;
pub mod invoices;
pub mod sales;
pub mod user_profiles;

use std::sync::Arc;

use plumbing::consumer::Handler;
use plumbing::position::ReadModel;
use plumbing::projection::ProjectionHandler;
use sqlx::PgPool;

use crate::fold::live::Live;
use crate::fold::{Model, RowSet};
use crate::replay::rebuild::{Rebuild, Rebuilder};

/// The read models, in the order operators see them.
pub static ALL: [&dyn Registered; 6] = [
    &user_profiles::UserProfiles,
    &catalog::Catalog,
    &availability::Availability,
    &bookings::Bookings,
    &sales::Sales,
    &invoices::Invoices,
];

/// A model as the registry holds it, whatever its row types.
pub trait Registered: Send + Sync {
    fn name(&self) -> ReadModel;
    /// Its tables, as a replay rebuilds and swaps them.
    fn tables(&self) -> Vec<&'static str>;
    /// Its live consumer's handler.
    fn handler(&self, pool: PgPool) -> Arc<dyn Handler>;
    /// An empty rebuild of it.
    fn rebuilder(&self) -> Box<dyn Rebuilder>;
}

impl<M: Model> Registered for M {
    fn name(&self) -> ReadModel {
        M::NAME
    }

    fn tables(&self) -> Vec<&'static str> {
        M::Rows::default()
            .tables()
            .iter()
            .map(|t| t.table())
            .collect()
    }

    fn handler(&self, pool: PgPool) -> Arc<dyn Handler> {
        Arc::new(ProjectionHandler::new(pool, Live::<M>::default()))
    }

    fn rebuilder(&self) -> Box<dyn Rebuilder> {
        Box::new(Rebuild::<M>::default())
    }
}

/// The models `name` selects: `all`, or one by its consumer name.
pub fn select(name: &str) -> anyhow::Result<Vec<&'static dyn Registered>> {
    if name == "all" {
        return Ok(ALL.to_vec());
    }
    let chosen: Vec<&'static dyn Registered> = ALL
        .iter()
        .copied()
        .filter(|m| m.name().consumer == name)
        .collect();
    anyhow::ensure!(
        !chosen.is_empty(),
        "no read model {name:?}; choose one of {:?} or all",
        ALL.iter().map(|m| m.name().consumer).collect::<Vec<_>>()
    );
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_has_its_own_consumer_name_and_tables() {
        let mut consumers: Vec<&str> = ALL.iter().map(|m| m.name().consumer).collect();
        let mut tables: Vec<&str> = ALL.iter().flat_map(|m| m.tables()).collect();
        let (models, all_tables) = (consumers.len(), tables.len());
        consumers.sort_unstable();
        consumers.dedup();
        tables.sort_unstable();
        tables.dedup();
        assert_eq!(consumers.len(), models, "two models share a consumer name");
        assert_eq!(tables.len(), all_tables, "two models build the same table");
    }
}
