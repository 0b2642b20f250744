//! Given / when / then tests of every `Show` rule.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;

type ShowTest = TestFramework<Show>;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
}

fn starts() -> DateTime<Utc> {
    now() + Duration::days(30)
}

fn show_id() -> Uuid {
    Uuid::from_u128(7)
}

fn owner() -> Actor {
    Actor {
        user_id: Uuid::from_u128(1),
        admin: false,
    }
}

fn stranger() -> Actor {
    Actor {
        user_id: Uuid::from_u128(2),
        admin: false,
    }
}

fn admin() -> Actor {
    Actor {
        user_id: Uuid::from_u128(3),
        admin: true,
    }
}

fn created() -> ShowEvent {
    ShowEvent::ShowCreated {
        show_id: show_id(),
        organizer_id: owner().user_id,
        name: "Hamlet".into(),
        venue: "Globe".into(),
        description: None,
        starts_at: starts(),
        created_at: now(),
    }
}

fn sections() -> Vec<Section> {
    vec![
        Section::Seated {
            section_id: "stalls".into(),
            name: "Stalls".into(),
            rows: vec![Row {
                row: "A".into(),
                seats: 10,
            }],
        },
        Section::GeneralAdmission {
            section_id: "floor".into(),
            name: "Floor".into(),
            capacity: 100,
        },
    ]
}

fn tiers() -> Vec<Tier> {
    vec![
        Tier {
            tier_id: "premium".into(),
            name: "Premium".into(),
            price: Money::new(9_000, "EUR"),
            section_ids: vec!["stalls".into()],
        },
        Tier {
            tier_id: "standing".into(),
            name: "Standing".into(),
            price: Money::new(4_500, "EUR"),
            section_ids: vec!["floor".into()],
        },
    ]
}

fn laid_out() -> Vec<ShowEvent> {
    vec![
        created(),
        ShowEvent::LayoutSet {
            sections: sections(),
        },
    ]
}

fn priced() -> Vec<ShowEvent> {
    let mut events = laid_out();
    events.push(ShowEvent::PricingSet { tiers: tiers() });
    events
}

fn published() -> Vec<ShowEvent> {
    let mut events = priced();
    events.push(ShowEvent::ShowPublished {
        sales_open_at: now(),
        sales_close_at: starts(),
        queue: None,
        max_tickets_per_customer: None,
        published_at: now(),
    });
    events
}

fn publish(actor: Actor) -> ShowCommand {
    ShowCommand::Publish {
        actor,
        sales_open_at: None,
        sales_close_at: None,
        queue: None,
        max_tickets_per_customer: None,
        now: now(),
    }
}

fn invalid_fields(result: Result<Vec<ShowEvent>, ShowError>) -> Vec<String> {
    match result {
        Err(ShowError::Invalid(errors)) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn creates_a_draft() {
    ShowTest::with(())
        .given_no_previous_events()
        .when_async(ShowCommand::Create {
            show_id: show_id(),
            organizer_id: owner().user_id,
            name: "Hamlet".into(),
            venue: "Globe".into(),
            description: None,
            starts_at: starts(),
            now: now(),
        })
        .await
        .then_expect_events(vec![created()]);
}

#[tokio::test]
async fn rejects_a_show_starting_in_the_past_or_without_a_name() {
    let result = ShowTest::with(())
        .given_no_previous_events()
        .when_async(ShowCommand::Create {
            show_id: show_id(),
            organizer_id: owner().user_id,
            name: " ".into(),
            venue: "Globe".into(),
            description: Some("x".repeat(5_001)),
            starts_at: now() - Duration::hours(1),
            now: now(),
        })
        .await
        .inspect_result();
    assert_eq!(invalid_fields(result), ["name", "description", "starts_at"]);
}

#[tokio::test]
async fn rejects_creating_a_show_twice() {
    ShowTest::with(())
        .given(vec![created()])
        .when_async(ShowCommand::Create {
            show_id: show_id(),
            organizer_id: owner().user_id,
            name: "Hamlet".into(),
            venue: "Globe".into(),
            description: None,
            starts_at: starts(),
            now: now(),
        })
        .await
        .then_expect_error(ShowError::AlreadyExists);
}

#[tokio::test]
async fn sets_a_layout() {
    ShowTest::with(())
        .given(vec![created()])
        .when_async(ShowCommand::SetLayout {
            actor: owner(),
            sections: sections(),
        })
        .await
        .then_expect_events(vec![ShowEvent::LayoutSet {
            sections: sections(),
        }]);
}

#[tokio::test]
async fn rejects_an_invalid_layout() {
    let mut bad = sections();
    bad.push(bad[0].clone());
    let result = ShowTest::with(())
        .given(vec![created()])
        .when_async(ShowCommand::SetLayout {
            actor: owner(),
            sections: bad,
        })
        .await
        .inspect_result();
    assert_eq!(invalid_fields(result), ["sections[2].section_id"]);
}

#[tokio::test]
async fn a_stranger_cannot_see_or_change_a_draft() {
    ShowTest::with(())
        .given(vec![created()])
        .when_async(ShowCommand::SetLayout {
            actor: stranger(),
            sections: sections(),
        })
        .await
        .then_expect_error(ShowError::DraftOfAnotherOrganizer);
}

#[tokio::test]
async fn a_stranger_cannot_change_a_published_show() {
    ShowTest::with(())
        .given(published())
        .when_async(ShowCommand::Cancel {
            actor: stranger(),
            now: now(),
        })
        .await
        .then_expect_error(ShowError::NotOwner);
}

#[tokio::test]
async fn an_admin_may_change_any_show() {
    ShowTest::with(())
        .given(vec![created()])
        .when_async(ShowCommand::SetLayout {
            actor: admin(),
            sections: sections(),
        })
        .await
        .then_expect_events(vec![ShowEvent::LayoutSet {
            sections: sections(),
        }]);
}

#[tokio::test]
async fn commands_to_an_unknown_show_fail() {
    ShowTest::with(())
        .given_no_previous_events()
        .when_async(publish(owner()))
        .await
        .then_expect_error(ShowError::UnknownShow);
}

#[tokio::test]
async fn layout_is_frozen_once_published() {
    ShowTest::with(())
        .given(published())
        .when_async(ShowCommand::SetLayout {
            actor: owner(),
            sections: sections(),
        })
        .await
        .then_expect_error(ShowError::Frozen(ShowStatus::Published));
}

#[tokio::test]
async fn pricing_is_frozen_once_published() {
    ShowTest::with(())
        .given(published())
        .when_async(ShowCommand::SetPricing {
            actor: owner(),
            tiers: tiers(),
        })
        .await
        .then_expect_error(ShowError::Frozen(ShowStatus::Published));
}

#[tokio::test]
async fn prices_every_section_in_one_tier() {
    ShowTest::with(())
        .given(laid_out())
        .when_async(ShowCommand::SetPricing {
            actor: owner(),
            tiers: tiers(),
        })
        .await
        .then_expect_events(vec![ShowEvent::PricingSet { tiers: tiers() }]);
}

#[tokio::test]
async fn rejects_pricing_before_a_layout() {
    ShowTest::with(())
        .given(vec![created()])
        .when_async(ShowCommand::SetPricing {
            actor: owner(),
            tiers: tiers(),
        })
        .await
        .then_expect_error(ShowError::LayoutMissing);
}

#[tokio::test]
async fn rejects_a_section_in_no_tier_or_two_tiers() {
    let mut missing = tiers();
    missing.pop();
    let result = ShowTest::with(())
        .given(laid_out())
        .when_async(ShowCommand::SetPricing {
            actor: owner(),
            tiers: missing,
        })
        .await
        .inspect_result();
    assert_eq!(invalid_fields(result), ["tiers"]);

    let mut twice = tiers();
    twice[1].section_ids.push("stalls".into());
    let result = ShowTest::with(())
        .given(laid_out())
        .when_async(ShowCommand::SetPricing {
            actor: owner(),
            tiers: twice,
        })
        .await
        .inspect_result();
    assert_eq!(invalid_fields(result), ["tiers"]);
}

#[tokio::test]
async fn rejects_unknown_sections_mixed_currencies_and_negative_prices() {
    let mut bad = tiers();
    bad[0].section_ids.push("balcony".into());
    bad[1].price = Money::new(-1, "USD");
    let result = ShowTest::with(())
        .given(laid_out())
        .when_async(ShowCommand::SetPricing {
            actor: owner(),
            tiers: bad,
        })
        .await
        .inspect_result();
    assert_eq!(
        invalid_fields(result),
        [
            "tiers[0].section_ids",
            "tiers[1].price.currency",
            "tiers[1].price.amount_minor"
        ]
    );
}

#[tokio::test]
async fn a_new_layout_clears_the_pricing() {
    let mut show = Show::default();
    for event in priced() {
        show.apply(event);
    }
    assert!(!show.tiers.is_empty());
    show.apply(ShowEvent::LayoutSet {
        sections: sections(),
    });
    assert!(show.tiers.is_empty());
}

#[tokio::test]
async fn publishes_with_default_sales_window() {
    ShowTest::with(())
        .given(priced())
        .when_async(publish(owner()))
        .await
        .then_expect_events(vec![ShowEvent::ShowPublished {
            sales_open_at: now(),
            sales_close_at: starts(),
            queue: None,
            max_tickets_per_customer: None,
            published_at: now(),
        }]);
}

#[tokio::test]
async fn publishes_with_a_waiting_room() {
    let queue = QueueSettings {
        enabled: true,
        admit_per_minute: 100,
        admission_minutes: 10,
    };
    ShowTest::with(())
        .given(priced())
        .when_async(ShowCommand::Publish {
            actor: owner(),
            sales_open_at: Some(now() + Duration::days(1)),
            sales_close_at: None,
            queue: Some(queue.clone()),
            max_tickets_per_customer: None,
            now: now(),
        })
        .await
        .then_expect_events(vec![ShowEvent::ShowPublished {
            sales_open_at: now() + Duration::days(1),
            sales_close_at: starts(),
            queue: Some(queue),
            max_tickets_per_customer: None,
            published_at: now(),
        }]);
}

#[tokio::test]
async fn rejects_publishing_without_layout_or_pricing() {
    ShowTest::with(())
        .given(vec![created()])
        .when_async(publish(owner()))
        .await
        .then_expect_error(ShowError::LayoutMissing);
    ShowTest::with(())
        .given(laid_out())
        .when_async(publish(owner()))
        .await
        .then_expect_error(ShowError::PricingMissing);
}

#[tokio::test]
async fn rejects_an_inverted_or_late_sales_window_and_a_bad_queue() {
    let result = ShowTest::with(())
        .given(priced())
        .when_async(ShowCommand::Publish {
            actor: owner(),
            sales_open_at: Some(starts() - Duration::days(1)),
            sales_close_at: Some(starts() + Duration::days(1)),
            queue: Some(QueueSettings {
                enabled: true,
                admit_per_minute: 0,
                admission_minutes: 10,
            }),
            max_tickets_per_customer: None,
            now: now(),
        })
        .await
        .inspect_result();
    assert_eq!(
        invalid_fields(result),
        ["sales_close_at", "queue.admit_per_minute"]
    );

    let result = ShowTest::with(())
        .given(priced())
        .when_async(ShowCommand::Publish {
            actor: owner(),
            sales_open_at: Some(starts() - Duration::days(1)),
            sales_close_at: Some(starts() - Duration::days(2)),
            queue: None,
            max_tickets_per_customer: None,
            now: now(),
        })
        .await
        .inspect_result();
    assert_eq!(invalid_fields(result), ["sales_close_at"]);
}

#[tokio::test]
async fn rejects_publishing_twice() {
    ShowTest::with(())
        .given(published())
        .when_async(publish(owner()))
        .await
        .then_expect_error(ShowError::AlreadyPublished);
}

#[tokio::test]
async fn cancels_a_published_show() {
    ShowTest::with(())
        .given(published())
        .when_async(ShowCommand::Cancel {
            actor: owner(),
            now: now(),
        })
        .await
        .then_expect_events(vec![ShowEvent::ShowCancelled {
            cancelled_at: now(),
            reason: CANCELLED_BY_ORGANIZER.into(),
        }]);
}

#[tokio::test]
async fn rejects_cancelling_twice_and_publishing_a_cancelled_show() {
    let mut cancelled = published();
    cancelled.push(ShowEvent::ShowCancelled {
        cancelled_at: now(),
        reason: CANCELLED_BY_ORGANIZER.into(),
    });
    ShowTest::with(())
        .given(cancelled.clone())
        .when_async(ShowCommand::Cancel {
            actor: owner(),
            now: now(),
        })
        .await
        .then_expect_error(ShowError::AlreadyCancelled);
    ShowTest::with(())
        .given(cancelled)
        .when_async(publish(owner()))
        .await
        .then_expect_error(ShowError::AlreadyCancelled);
}

#[test]
fn knows_when_it_is_on_sale_and_its_lowest_price() {
    let mut show = Show::default();
    for event in published() {
        show.apply(event);
    }
    assert!(show.on_sale(now()));
    assert!(!show.on_sale(now() - Duration::seconds(1)));
    assert!(!show.on_sale(starts()));
    assert_eq!(show.min_price(), Some(&Money::new(4_500, "EUR")));
    assert_eq!(
        show.tier_of("floor").map(|t| t.tier_id.as_str()),
        Some("standing")
    );
}

#[tokio::test]
async fn the_organizer_announces_to_a_published_show() {
    ShowTest::with(())
        .given(published())
        .when_async(ShowCommand::Announce {
            actor: owner(),
            message: "Doors open at 19:00".into(),
            now: now(),
        })
        .await
        .then_expect_events(vec![ShowEvent::AnnouncementPosted {
            message: "Doors open at 19:00".into(),
            posted_at: now(),
        }]);
}

#[tokio::test]
async fn announcements_need_a_published_show_its_owner_and_a_message() {
    let announce = |actor, message: &str| ShowCommand::Announce {
        actor,
        message: message.into(),
        now: now(),
    };
    ShowTest::with(())
        .given(priced())
        .when_async(announce(owner(), "too early"))
        .await
        .then_expect_error(ShowError::NotPublished);
    ShowTest::with(())
        .given(published())
        .when_async(announce(stranger(), "not mine"))
        .await
        .then_expect_error(ShowError::NotOwner);
    let result = ShowTest::with(())
        .given(published())
        .when_async(announce(owner(), "  "))
        .await
        .inspect_result();
    assert_eq!(invalid_fields(result), ["message"]);
}
