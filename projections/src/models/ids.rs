//! Aggregate ids as the read models key them.

use uuid::Uuid;

use crate::fold::{Fact, Poison};

fn poison(what: &str, fact: &Fact) -> Poison {
    Poison(format!(
        "{what} aggregate id {:?} is malformed",
        fact.aggregate_id
    ))
}

/// An aggregate id that is a UUID (`what` names the aggregate in the error).
pub fn uuid_id(what: &str, fact: &Fact) -> Result<Uuid, Poison> {
    fact.aggregate_id.parse().map_err(|_| poison(what, fact))
}

/// An inventory's aggregate id is `{show_id}:{section_id}`.
pub fn inventory_id(fact: &Fact) -> Result<(Uuid, String), Poison> {
    let (show, section) = fact
        .aggregate_id
        .split_once(':')
        .ok_or_else(|| poison("inventory", fact))?;
    let show = show.parse().map_err(|_| poison("inventory", fact))?;
    Ok((show, section.to_owned()))
}
