//! `Voucher`: one discount code of one show and its uses — a consistency boundary of its
//! own, so `uses` never exceeds `max_uses` however many bookings race for the last one. A
//! use is taken in the same unit as the booking's hold and given back in the same unit as
//! the booking's end without a sale.
//!
//! A show's codes are listed by `VoucherBook` (`book`), which also keeps them unique per
//! show, case-insensitively.

pub mod book;
mod discount;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use discount::{Discount, TierLine};

/// Most uses a voucher may allow.
pub const MAX_USES: u32 = 100_000;

#[derive(Debug, Clone, PartialEq)]
pub enum VoucherCommand {
    Create {
        voucher_id: Uuid,
        show_id: Uuid,
        code: String,
        discount: Discount,
        max_uses: u32,
        valid_until: Option<DateTime<Utc>>,
        tier_ids: Vec<String>,
        now: DateTime<Utc>,
    },
    /// Takes one use for `booking_id`; the discount was worked out on the same state.
    Redeem {
        booking_id: Uuid,
        now: DateTime<Utc>,
    },
    /// Gives `booking_id`'s use back (its booking ended without a sale). Nothing to give
    /// back is not an error: the step that ends a booking may run twice.
    Return { booking_id: Uuid },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum VoucherEvent {
    VoucherCreated {
        voucher_id: Uuid,
        show_id: Uuid,
        code: String,
        discount: Discount,
        max_uses: u32,
        valid_until: Option<DateTime<Utc>>,
        tier_ids: Vec<String>,
        created_at: DateTime<Utc>,
    },
    VoucherRedeemed {
        booking_id: Uuid,
        redeemed_at: DateTime<Utc>,
    },
    VoucherReturned {
        booking_id: Uuid,
    },
}

impl DomainEvent for VoucherEvent {
    fn event_type(&self) -> String {
        match self {
            Self::VoucherCreated { .. } => "VoucherCreated",
            Self::VoucherRedeemed { .. } => "VoucherRedeemed",
            Self::VoucherReturned { .. } => "VoucherReturned",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// Why a voucher cannot be used (all answered as 422 `voucher-invalid`) or created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoucherError {
    #[error("no such voucher for this event")]
    Unknown,
    #[error("the voucher expired")]
    Expired,
    #[error("the voucher is used up")]
    UsedUp,
    #[error("the voucher is not valid for the tiers booked")]
    NotForTiers,
    #[error("the voucher's currency differs from the event's prices")]
    WrongCurrency,
    #[error("this voucher already exists")]
    AlreadyCreated,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Voucher {
    pub voucher_id: Option<Uuid>,
    pub show_id: Option<Uuid>,
    pub code: String,
    pub discount: Option<Discount>,
    pub max_uses: u32,
    pub valid_until: Option<DateTime<Utc>>,
    /// Empty: every tier.
    pub tier_ids: Vec<String>,
    pub created_at: Option<DateTime<Utc>>,
    /// The bookings holding a use.
    pub used_by: BTreeSet<Uuid>,
}

impl Voucher {
    pub fn exists(&self) -> bool {
        self.voucher_id.is_some()
    }

    pub fn uses(&self) -> u32 {
        self.used_by.len() as u32
    }

    /// Whether a booking with these lines may use the voucher at `now`, and its discount.
    pub fn discount_for(
        &self,
        lines: &[TierLine],
        now: DateTime<Utc>,
    ) -> Result<crate::money::Money, VoucherError> {
        let discount = self.discount.as_ref().ok_or(VoucherError::Unknown)?;
        if self.valid_until.is_some_and(|until| until <= now) {
            return Err(VoucherError::Expired);
        }
        if self.uses() >= self.max_uses {
            return Err(VoucherError::UsedUp);
        }
        discount.apply(lines, &self.tier_ids)
    }
}

impl Aggregate for Voucher {
    const TYPE: &'static str = "voucher";
    type Command = VoucherCommand;
    type Event = VoucherEvent;
    type Error = VoucherError;
    type Services = ();

    async fn handle(
        &mut self,
        command: VoucherCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), VoucherError> {
        if let Some(event) = self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: VoucherEvent) {
        match event {
            VoucherEvent::VoucherCreated {
                voucher_id,
                show_id,
                code,
                discount,
                max_uses,
                valid_until,
                tier_ids,
                created_at,
            } => {
                self.voucher_id = Some(voucher_id);
                self.show_id = Some(show_id);
                self.code = code;
                self.discount = Some(discount);
                self.max_uses = max_uses;
                self.valid_until = valid_until;
                self.tier_ids = tier_ids;
                self.created_at = Some(created_at);
            }
            VoucherEvent::VoucherRedeemed { booking_id, .. } => {
                self.used_by.insert(booking_id);
            }
            VoucherEvent::VoucherReturned { booking_id } => {
                self.used_by.remove(&booking_id);
            }
        }
    }
}

impl Voucher {
    fn decide(&self, command: VoucherCommand) -> Result<Option<VoucherEvent>, VoucherError> {
        match command {
            VoucherCommand::Create {
                voucher_id,
                show_id,
                code,
                discount,
                max_uses,
                valid_until,
                tier_ids,
                now,
            } => {
                if self.exists() {
                    return Err(VoucherError::AlreadyCreated);
                }
                Ok(Some(VoucherEvent::VoucherCreated {
                    voucher_id,
                    show_id,
                    code,
                    discount,
                    max_uses,
                    valid_until,
                    tier_ids,
                    created_at: now,
                }))
            }
            VoucherCommand::Redeem { booking_id, now } => {
                if !self.exists() {
                    return Err(VoucherError::Unknown);
                }
                if self.used_by.contains(&booking_id) {
                    return Ok(None);
                }
                if self.valid_until.is_some_and(|until| until <= now) {
                    return Err(VoucherError::Expired);
                }
                if self.uses() >= self.max_uses {
                    return Err(VoucherError::UsedUp);
                }
                Ok(Some(VoucherEvent::VoucherRedeemed {
                    booking_id,
                    redeemed_at: now,
                }))
            }
            VoucherCommand::Return { booking_id } => Ok(self
                .used_by
                .contains(&booking_id)
                .then_some(VoucherEvent::VoucherReturned { booking_id })),
        }
    }
}

/// The rules of a new voucher for `show` at `now`, every broken one listed.
pub fn check_new(
    show: &crate::show::Show,
    code: &str,
    discount: &Discount,
    max_uses: u32,
    valid_until: Option<DateTime<Utc>>,
    tier_ids: &[String],
    now: DateTime<Utc>,
) -> Result<(), Vec<crate::FieldError>> {
    let mut checks = crate::rules::Checks::new();
    let code_ok = (3..=32).contains(&code.len()) && crate::rules::is_chosen_id(code);
    if !code_ok {
        checks.fail("code", "must match ^[A-Za-z0-9_-]{3,32}$");
    }
    match discount {
        Discount::Percent(p) if !(1..=100).contains(p) => {
            checks.fail("discount.percent", "must be 1 to 100");
        }
        Discount::Amount(amount) => {
            if amount.amount_minor < 1 {
                checks.fail("discount.amount.amount_minor", "must be at least 1");
            }
            let currency = show.tiers.first().map(|t| t.price.currency.as_str());
            if currency.is_some_and(|c| c != amount.currency) {
                checks.fail("discount.amount.currency", "must be the event's currency");
            }
        }
        Discount::Percent(_) => {}
    }
    if !(1..=MAX_USES).contains(&max_uses) {
        checks.fail("max_uses", format!("must be 1 to {MAX_USES}"));
    }
    if valid_until.is_some_and(|until| until <= now) {
        checks.fail("valid_until", "must be in the future");
    }
    if tier_ids.len() > crate::rules::MAX_LIST {
        checks.fail(
            "tier_ids",
            format!("at most {} tiers", crate::rules::MAX_LIST),
        );
    }
    for (i, tier_id) in tier_ids.iter().enumerate() {
        if !show.tiers.iter().any(|t| &t.tier_id == tier_id) {
            checks.fail(&format!("tier_ids[{i}]"), "no such tier in this event");
        }
    }
    checks.finish()
}
