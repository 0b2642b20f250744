//! Aggregate ids as the read models key them.

use plumbing::consumer::HandleError;
use schemas::Envelope;
use uuid::Uuid;

fn poison(what: &str, envelope: &Envelope) -> HandleError {
    HandleError::Poison(anyhow::anyhow!(
        "{what} aggregate id {:?} is malformed",
        envelope.aggregate_id
    ))
}

/// A show's aggregate id is its event id.
pub fn show_id(envelope: &Envelope) -> Result<Uuid, HandleError> {
    uuid_id("show", envelope)
}

/// An aggregate id that is a UUID (`what` names the aggregate in the error).
pub fn uuid_id(what: &str, envelope: &Envelope) -> Result<Uuid, HandleError> {
    envelope
        .aggregate_id
        .parse()
        .map_err(|_| poison(what, envelope))
}

/// An inventory's aggregate id is `{show_id}:{section_id}`.
pub fn inventory_id(envelope: &Envelope) -> Result<(Uuid, String), HandleError> {
    let (show, section) = envelope
        .aggregate_id
        .split_once(':')
        .ok_or_else(|| poison("inventory", envelope))?;
    let show = show.parse().map_err(|_| poison("inventory", envelope))?;
    Ok((show, section.to_owned()))
}
