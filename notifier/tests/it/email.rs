//! Booking mails end to end: one mail per (booking, state) with a stable Message-ID, across
//! SIGKILLs and several notifier instances; an SMTP outage dead-letters and then recovers;
//! both parties of a ticket transfer are mailed.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use plumbing::testkit;
use schemas::ticket_codes::TicketCodes;
use uuid::Uuid;

use crate::stack::Stack;
use plumbing::testkit::smtp_sink::{Mail, SmtpSink, free_port};

const MAIL_TIMEOUT: Duration = Duration::from_secs(90);

fn expected_id(booking_id: Uuid, state: &str) -> String {
    format!("<{booking_id}.{state}@ticketing.local>")
}

/// Waits until every booking in `bookings` has at least one mail; returns all mails.
async fn mails_for_all(sink: &SmtpSink, bookings: &[Uuid], timeout: Duration) -> Vec<Mail> {
    testkit::eventually("a mail for every booking", timeout, || async {
        let mails = sink.mails();
        let mailed: BTreeSet<&str> = mails.iter().map(Mail::message_id).collect();
        bookings
            .iter()
            .all(|b| mailed.iter().any(|id| id.starts_with(&format!("<{b}."))))
            .then_some(mails)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn mails_the_buyer_once_per_confirmation_and_cancellation() {
    let stack = Stack::start().await;
    let sink = SmtpSink::start().await;
    let _notifier = stack.notifier(sink.port).await;
    let (buyer, email) = stack.buyer("Ada Lovelace").await;
    let show = stack.show("Night Opera").await;

    let confirmed = stack.confirmed_booking(buyer, show).await;
    let cancelled = stack
        .cancelled_booking(buyer, show, "the card was declined")
        .await;

    mails_for_all(&sink, &[confirmed, cancelled], MAIL_TIMEOUT).await;
    let confirmation = sink.mails_of(confirmed);
    assert_eq!(confirmation.len(), 1, "one confirmation mail");
    let mail = &confirmation[0];
    assert_eq!(mail.message_id(), expected_id(confirmed, "confirmed"));
    assert!(mail.header("to").is_some_and(|to| to.contains(&email)));
    assert_eq!(mail.header("subject"), Some("Your tickets for Night Opera"));
    let codes = TicketCodes::from_jwt_secret(testkit::jwt_secret());
    for index in 0..3 {
        let code = codes.sign(show, confirmed, index);
        assert!(
            mail.raw.contains(&code),
            "ticket {index}'s code is in the mail"
        );
    }
    assert!(mail.raw.contains("Seat A:1:1") && mail.raw.contains("Seat A:1:2"));

    let cancellation = sink.mails_of(cancelled);
    assert_eq!(cancellation.len(), 1, "one cancellation mail");
    assert_eq!(
        cancellation[0].message_id(),
        expected_id(cancelled, "cancelled")
    );
    assert!(cancellation[0].raw.contains("the card was declined"));
    assert_eq!(stack.sent_log_rows().await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_confirmation_is_mailed_when_the_notifier_is_killed_mid_stream() {
    let stack = Stack::start().await;
    let sink = SmtpSink::start().await;
    let (buyer, _) = stack.buyer("Grace Hopper").await;
    let show = stack.show("Compiler Concert").await;
    let mut notifier = stack.notifier(sink.port).await;
    let mut bookings = Vec::new();

    for round in 0..3 {
        let first = bookings.len();
        for _ in 0..10 {
            bookings.push(stack.confirmed_booking(buyer, show).await);
        }
        // SIGKILL as soon as this round's mails have started going out.
        testkit::eventually("mails of this round", MAIL_TIMEOUT, || async {
            bookings[first..]
                .iter()
                .any(|b| !sink.mails_of(*b).is_empty())
                .then_some(())
        })
        .await;
        notifier.kill().await;
        eprintln!("notifier killed ({} of 3)", round + 1);
        notifier = stack.notifier(sink.port).await;
    }

    let mails = mails_for_all(&sink, &bookings, Duration::from_secs(120)).await;
    let mut per_booking: HashMap<Uuid, Vec<&str>> = HashMap::new();
    for mail in &mails {
        let id = mail.message_id();
        let booking = bookings
            .iter()
            .find(|b| id.starts_with(&format!("<{b}.")))
            .expect("every mail belongs to a booking of this test");
        per_booking.entry(*booking).or_default().push(id);
    }
    let mut duplicates = 0;
    for booking in &bookings {
        let ids = &per_booking[booking];
        assert!(
            ids.iter()
                .all(|id| *id == expected_id(*booking, "confirmed")),
            "every mail of {booking} has the one stable Message-ID: {ids:?}"
        );
        duplicates += ids.len() - 1;
    }
    eprintln!(
        "{} bookings, {} mails, {duplicates} resent with the same Message-ID",
        bookings.len(),
        mails.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_smtp_outage_dead_letters_the_mail_and_later_mail_still_flows() {
    let stack = Stack::start().await;
    let port = free_port(); // nobody listens here yet
    let _notifier = stack.notifier(port).await;
    let (buyer, _) = stack.buyer("Alan Turing").await;
    let show = stack.show("Enigma Live").await;

    let lost = stack.confirmed_booking(buyer, show).await;
    let error = stack
        .dead_letter(&lost.to_string(), Duration::from_secs(120))
        .await;
    assert!(error.contains("SMTP"), "the dead letter says why: {error}");

    let sink = SmtpSink::start_on(port).await;
    let later = stack.confirmed_booking(buyer, show).await;
    mails_for_all(&sink, &[later], MAIL_TIMEOUT).await;
    assert_eq!(
        sink.mails_of(later)[0].message_id(),
        expected_id(later, "confirmed")
    );
    assert!(
        sink.mails_of(lost).is_empty(),
        "the dead-lettered mail is not sent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_notifier_instances_send_each_confirmation_once() {
    let stack = Stack::start().await;
    let sink = SmtpSink::start().await;
    let first = stack.notifier(sink.port).await;
    let second = stack.notifier(sink.port).await;
    let (buyer, _) = stack.buyer("Barbara Liskov").await;
    let show = stack.show("Substitution Suite").await;

    let mut bookings = Vec::new();
    for _ in 0..20 {
        bookings.push(stack.confirmed_booking(buyer, show).await);
    }

    let mails = mails_for_all(&sink, &bookings, MAIL_TIMEOUT).await;
    let ids: BTreeSet<&str> = mails.iter().map(Mail::message_id).collect();
    assert_eq!(ids.len(), bookings.len(), "one Message-ID per booking");
    assert_eq!(mails.len(), bookings.len(), "no confirmation mailed twice");
    assert_eq!(stack.sent_log_rows().await, 20);
    drop((first, second));
}

#[tokio::test(flavor = "multi_thread")]
async fn both_parties_of_a_transfer_are_mailed_and_only_the_recipient_gets_the_new_code() {
    let stack = Stack::start().await;
    let sink = SmtpSink::start().await;
    let _notifier = stack.notifier(sink.port).await;
    let (ada, ada_email) = stack.buyer("Ada Lovelace").await;
    let (grace, grace_email) = stack.buyer("Grace Hopper").await;
    let show = stack.show("Night Opera").await;
    let booking = stack.confirmed_booking(ada, show).await;

    let new_ticket = stack.transferred_ticket(booking, 0, ada, grace).await;

    let mails = testkit::eventually("both transfer mails", MAIL_TIMEOUT, || async {
        let mails = sink.mails_of(new_ticket);
        (mails.len() >= 2).then_some(mails)
    })
    .await;
    let of = |side: &str| {
        let id = format!("<{new_ticket}.{side}@ticketing.local>");
        let found: Vec<&Mail> = mails.iter().filter(|m| m.message_id() == id).collect();
        assert_eq!(found.len(), 1, "one {side} mail");
        found[0].clone()
    };
    let code = TicketCodes::from_jwt_secret(testkit::jwt_secret()).sign(show, booking, 3);
    let received = of("transfer-received");
    assert!(
        received
            .header("to")
            .is_some_and(|to| to.contains(&grace_email))
    );
    assert_eq!(
        received.header("subject"),
        Some("A ticket for Night Opera was transferred to you")
    );
    assert!(
        received.raw.contains(&code),
        "the recipient gets the new code"
    );
    assert!(received.raw.contains("A:1:1") && received.raw.contains("Ada Lovelace"));
    let sent = of("transfer-sent");
    assert!(sent.header("to").is_some_and(|to| to.contains(&ada_email)));
    assert!(!sent.raw.contains(&code), "the previous holder does not");
    assert!(sent.raw.contains("Grace Hopper"));
    // The confirmation and the two transfer mails, each logged once.
    testkit::eventually("three sent-log rows", MAIL_TIMEOUT, || async {
        (stack.sent_log_rows().await == 3).then_some(())
    })
    .await;
    assert_eq!(sink.mails_of(booking).len(), 1, "one confirmation");
}
