//! Given / when / then tests of the `InvoiceLedger` rules.

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;

type LedgerTest = TestFramework<InvoiceLedger>;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 18, 0, 0).unwrap()
}

fn lines() -> Vec<InvoiceLine> {
    vec![InvoiceLine {
        tier_id: "std".into(),
        description: "Standard".into(),
        quantity: 2,
        unit_price: Money::new(4_500, "EUR"),
        amount: Money::new(9_000, "EUR"),
    }]
}

fn issue(kind: DocumentKind, booking: u128) -> LedgerCommand {
    LedgerCommand::Issue {
        kind,
        booking_id: Uuid::from_u128(booking),
        event_id: Uuid::from_u128(100),
        buyer_id: Uuid::from_u128(200),
        lines: lines(),
        total: Money::new(9_000, "EUR"),
        now: t0(),
    }
}

fn issued(kind: DocumentKind, booking: u128, number: u64) -> LedgerEvent {
    LedgerEvent::DocumentIssued {
        invoice_id: document_id(Uuid::from_u128(booking), kind),
        kind,
        number,
        booking_id: Uuid::from_u128(booking),
        event_id: Uuid::from_u128(100),
        buyer_id: Uuid::from_u128(200),
        lines: lines(),
        total: Money::new(9_000, "EUR"),
        issued_at: t0(),
    }
}

#[tokio::test]
async fn the_first_invoice_is_number_one() {
    LedgerTest::with(())
        .given_no_previous_events()
        .when_async(issue(DocumentKind::Invoice, 1))
        .await
        .then_expect_events(vec![issued(DocumentKind::Invoice, 1, 1)]);
}

#[tokio::test]
async fn numbers_follow_on_across_invoices_and_credit_notes() {
    LedgerTest::with(())
        .given(vec![
            issued(DocumentKind::Invoice, 1, 1),
            issued(DocumentKind::Invoice, 2, 2),
        ])
        .when_async(issue(DocumentKind::CreditNote, 1))
        .await
        .then_expect_events(vec![issued(DocumentKind::CreditNote, 1, 3)]);
}

#[tokio::test]
async fn issuing_again_writes_nothing_and_keeps_the_number() {
    LedgerTest::with(())
        .given(vec![issued(DocumentKind::Invoice, 1, 1)])
        .when_async(issue(DocumentKind::Invoice, 1))
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn a_credit_note_needs_the_invoice() {
    LedgerTest::with(())
        .given_no_previous_events()
        .when_async(issue(DocumentKind::CreditNote, 1))
        .await
        .then_expect_error(LedgerError::CreditWithoutInvoice);
}

#[test]
fn document_ids_are_stable_and_distinct_per_kind() {
    let booking = Uuid::from_u128(7);
    assert_eq!(
        document_id(booking, DocumentKind::Invoice),
        document_id(booking, DocumentKind::Invoice)
    );
    assert_ne!(
        document_id(booking, DocumentKind::Invoice),
        document_id(booking, DocumentKind::CreditNote)
    );
}
