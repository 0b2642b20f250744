//! The problem+json body (RFC 9457) every error response carries.

use domain::FieldError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An error response (`application/problem+json`). Other extensions (`unavailable`,
/// `checked_in_at`, …) are further top-level members, so unknown members are allowed.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem, e.g. `/problems/validation`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    pub detail: String,
    /// Every broken rule of a validation problem (422).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<FieldError>")]
    pub errors: Option<Vec<FieldError>>,
}
