//! Given / when / then tests of vouchers, and the discount arithmetic.

use chrono::{Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::money::Money;

type VoucherTest = TestFramework<Voucher>;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap()
}

fn eur(minor: i64) -> Money {
    Money::new(minor, "EUR")
}

fn line(tier: &str, minor: i64) -> TierLine {
    TierLine {
        tier_id: tier.into(),
        amount: eur(minor),
    }
}

fn created(max_uses: u32, valid_until: Option<DateTime<Utc>>) -> VoucherEvent {
    VoucherEvent::VoucherCreated {
        voucher_id: Uuid::from_u128(7),
        show_id: Uuid::from_u128(1),
        code: "EARLY".into(),
        discount: Discount::Percent(10),
        max_uses,
        valid_until,
        tier_ids: vec![],
        created_at: t0(),
    }
}

fn redeemed(n: u128) -> VoucherEvent {
    VoucherEvent::VoucherRedeemed {
        booking_id: Uuid::from_u128(n),
        redeemed_at: t0(),
    }
}

#[tokio::test]
async fn a_use_is_taken_while_uses_remain() {
    VoucherTest::with(())
        .given(vec![created(2, None), redeemed(1)])
        .when_async(VoucherCommand::Redeem {
            booking_id: Uuid::from_u128(2),
            now: t0(),
        })
        .await
        .then_expect_events(vec![redeemed(2)]);
}

#[tokio::test]
async fn a_used_up_voucher_is_refused() {
    VoucherTest::with(())
        .given(vec![created(1, None), redeemed(1)])
        .when_async(VoucherCommand::Redeem {
            booking_id: Uuid::from_u128(2),
            now: t0(),
        })
        .await
        .then_expect_error(VoucherError::UsedUp);
}

#[tokio::test]
async fn an_expired_voucher_is_refused() {
    VoucherTest::with(())
        .given(vec![created(5, Some(t0()))])
        .when_async(VoucherCommand::Redeem {
            booking_id: Uuid::from_u128(2),
            now: t0() + Duration::seconds(1),
        })
        .await
        .then_expect_error(VoucherError::Expired);
}

#[tokio::test]
async fn a_returned_use_can_be_taken_again() {
    VoucherTest::with(())
        .given(vec![
            created(1, None),
            redeemed(1),
            VoucherEvent::VoucherReturned {
                booking_id: Uuid::from_u128(1),
            },
        ])
        .when_async(VoucherCommand::Redeem {
            booking_id: Uuid::from_u128(2),
            now: t0(),
        })
        .await
        .then_expect_events(vec![redeemed(2)]);
}

#[tokio::test]
async fn returning_a_use_never_taken_writes_nothing() {
    VoucherTest::with(())
        .given(vec![created(1, None)])
        .when_async(VoucherCommand::Return {
            booking_id: Uuid::from_u128(9),
        })
        .await
        .then_expect_events(vec![]);
}

#[test]
fn a_percentage_rounds_half_up_to_the_minor_unit() {
    // 15% of 4,530 = 679.5 → 680.
    let off = Discount::Percent(15).apply(&[line("std", 4_530)], &[]);
    assert_eq!(off, Ok(eur(680)));
}

#[test]
fn only_the_lines_of_the_vouchers_tiers_are_discounted() {
    let lines = [line("vip", 10_000), line("std", 4_000)];
    let off = Discount::Percent(50).apply(&lines, &["std".into()]);
    assert_eq!(off, Ok(eur(2_000)));
}

#[test]
fn a_fixed_amount_is_capped_at_the_eligible_sum() {
    let lines = [line("vip", 10_000), line("std", 4_000)];
    let off = Discount::Amount(eur(5_000)).apply(&lines, &["std".into()]);
    assert_eq!(off, Ok(eur(4_000)));
}

#[test]
fn a_voucher_for_other_tiers_is_refused() {
    let off = Discount::Percent(10).apply(&[line("std", 4_000)], &["vip".into()]);
    assert_eq!(off, Err(VoucherError::NotForTiers));
}

#[test]
fn a_fixed_amount_in_another_currency_is_refused() {
    let off = Discount::Amount(Money::new(100, "USD")).apply(&[line("std", 4_000)], &[]);
    assert_eq!(off, Err(VoucherError::WrongCurrency));
}

#[test]
fn a_discount_is_worked_out_only_while_the_voucher_is_valid() {
    let mut voucher = Voucher::default();
    voucher.apply(created(1, Some(t0())));
    let lines = [line("std", 1_000)];
    assert_eq!(
        voucher.discount_for(&lines, t0() - Duration::seconds(1)),
        Ok(eur(100))
    );
    assert_eq!(
        voucher.discount_for(&lines, t0()),
        Err(VoucherError::Expired)
    );
    voucher.apply(redeemed(1));
    assert_eq!(
        voucher.discount_for(&lines, t0() - Duration::seconds(1)),
        Err(VoucherError::UsedUp)
    );
}
