//! Money in integer minor units with an ISO 4217 currency code.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Money {
    pub amount_minor: i64,
    /// ISO 4217 code, three upper-case letters (`EUR`).
    pub currency: String,
}

impl Money {
    pub fn new(amount_minor: i64, currency: &str) -> Self {
        Self {
            amount_minor,
            currency: currency.to_owned(),
        }
    }

    pub fn is_valid_currency(code: &str) -> bool {
        code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase())
    }

    /// `self × n`, or `None` on overflow.
    pub fn times(&self, n: u32) -> Option<Money> {
        Some(Money {
            amount_minor: self.amount_minor.checked_mul(i64::from(n))?,
            currency: self.currency.clone(),
        })
    }

    /// Sum of amounts in one currency; `None` for mixed currencies or overflow.
    pub fn sum<'a>(mut items: impl Iterator<Item = &'a Money>, currency: &str) -> Option<Money> {
        items.try_fold(Money::new(0, currency), |acc, m| {
            (m.currency == acc.currency).then_some(())?;
            Some(Money::new(
                acc.amount_minor.checked_add(m.amount_minor)?,
                currency,
            ))
        })
    }
}
