//! What a voucher takes off a booking: a percentage of the eligible lines (rounded half up
//! to the minor unit) or a fixed amount capped at their sum. Lines of tiers the voucher is
//! not for are never discounted.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::VoucherError;
use crate::money::Money;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Discount {
    /// 1..=100 percent of the eligible lines.
    Percent(u8),
    /// A fixed amount, at most the eligible lines' sum.
    Amount(Money),
}

/// One tier's part of a booking: its places times the tier's price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierLine {
    pub tier_id: String,
    pub amount: Money,
}

impl Discount {
    /// The discount on `lines` for a voucher restricted to `tier_ids` (empty: every tier).
    pub fn apply(&self, lines: &[TierLine], tier_ids: &[String]) -> Result<Money, VoucherError> {
        let eligible: Vec<&TierLine> = lines
            .iter()
            .filter(|l| tier_ids.is_empty() || tier_ids.contains(&l.tier_id))
            .collect();
        let Some(first) = eligible.first() else {
            return Err(VoucherError::NotForTiers);
        };
        let currency = first.amount.currency.clone();
        let sum = Money::sum(eligible.iter().map(|l| &l.amount), &currency)
            .ok_or(VoucherError::WrongCurrency)?;
        let off = match self {
            Self::Percent(percent) => {
                // Half up: amounts are never negative, so adding half the divisor rounds.
                let scaled = i128::from(sum.amount_minor) * i128::from(*percent) + 50;
                i64::try_from(scaled / 100).unwrap_or(sum.amount_minor)
            }
            Self::Amount(amount) => {
                if amount.currency != currency {
                    return Err(VoucherError::WrongCurrency);
                }
                amount.amount_minor.min(sum.amount_minor)
            }
        };
        Ok(Money::new(off.min(sum.amount_minor), &currency))
    }
}
