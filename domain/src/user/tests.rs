//! Given / when / then tests of every `User` rule.

use chrono::{TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;

type UserTest = TestFramework<User>;

fn ada_id() -> Uuid {
    user_id_for_email("ada@example.com")
}

fn registered() -> UserEvent {
    UserEvent::UserRegistered {
        user_id: ada_id(),
        email: "ada@example.com".into(),
        name: "Ada".into(),
        password_hash: "$argon2id$stub".into(),
        registered_at: Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap(),
    }
}

fn register() -> UserCommand {
    UserCommand::Register {
        user_id: ada_id(),
        email: "ada@example.com".into(),
        name: "Ada".into(),
        password_hash: "$argon2id$stub".into(),
        now: Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap(),
    }
}

fn home() -> Address {
    Address {
        label: "home".into(),
        line1: "1 Main St".into(),
        line2: None,
        city: "Springfield".into(),
        postal_code: "12345".into(),
        country: "US".into(),
    }
}

#[tokio::test]
async fn registers_a_new_account() {
    UserTest::with(())
        .given_no_previous_events()
        .when_async(register())
        .await
        .then_expect_events(vec![registered()]);
}

#[tokio::test]
async fn rejects_second_registration_of_the_same_email() {
    UserTest::with(())
        .given(vec![registered()])
        .when_async(register())
        .await
        .then_expect_error(UserError::EmailTaken);
}

#[test]
fn user_id_is_stable_per_normalized_email() {
    assert_eq!(
        user_id_for_email("ada@example.com"),
        user_id_for_email("ada@example.com")
    );
    assert_ne!(
        user_id_for_email("ada@example.com"),
        user_id_for_email("bob@example.com")
    );
}

#[tokio::test]
async fn registration_makes_a_customer() {
    let mut user = User::default();
    user.apply(registered());
    assert!(user.roles.contains(&Role::Customer));
    assert_eq!(user.roles.len(), 1);
}

#[tokio::test]
async fn grants_a_new_role() {
    UserTest::with(())
        .given(vec![registered()])
        .when_async(UserCommand::GrantRole {
            role: Role::Organizer,
        })
        .await
        .then_expect_events(vec![UserEvent::RoleGranted {
            role: Role::Organizer,
        }]);
}

#[tokio::test]
async fn granting_a_held_role_again_writes_nothing() {
    UserTest::with(())
        .given(vec![
            registered(),
            UserEvent::RoleGranted { role: Role::Admin },
        ])
        .when_async(UserCommand::GrantRole { role: Role::Admin })
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn rejects_role_grant_for_unknown_user() {
    UserTest::with(())
        .given_no_previous_events()
        .when_async(UserCommand::GrantRole { role: Role::Staff })
        .await
        .then_expect_error(UserError::UnknownUser);
}

#[tokio::test]
async fn updates_profile_keeping_omitted_fields() {
    UserTest::with(())
        .given(vec![registered()])
        .when_async(UserCommand::UpdateProfile {
            name: None,
            phone: Some(Some("+49 30 123".into())),
        })
        .await
        .then_expect_events(vec![UserEvent::ProfileUpdated {
            name: "Ada".into(),
            phone: Some("+49 30 123".into()),
        }]);
}

#[tokio::test]
async fn profile_update_without_change_writes_nothing() {
    UserTest::with(())
        .given(vec![registered()])
        .when_async(UserCommand::UpdateProfile {
            name: Some("Ada".into()),
            phone: None,
        })
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn clears_the_phone() {
    UserTest::with(())
        .given(vec![
            registered(),
            UserEvent::ProfileUpdated {
                name: "Ada".into(),
                phone: Some("1".into()),
            },
        ])
        .when_async(UserCommand::UpdateProfile {
            name: None,
            phone: Some(None),
        })
        .await
        .then_expect_events(vec![UserEvent::ProfileUpdated {
            name: "Ada".into(),
            phone: None,
        }]);
}

#[tokio::test]
async fn rejects_profile_update_for_unknown_user() {
    UserTest::with(())
        .given_no_previous_events()
        .when_async(UserCommand::UpdateProfile {
            name: Some("X".into()),
            phone: None,
        })
        .await
        .then_expect_error(UserError::UnknownUser);
}

#[tokio::test]
async fn adds_an_address() {
    let id = Uuid::from_u128(1);
    UserTest::with(())
        .given(vec![registered()])
        .when_async(UserCommand::AddAddress {
            address_id: id,
            address: home(),
        })
        .await
        .then_expect_events(vec![UserEvent::AddressAdded {
            address_id: id,
            address: home(),
        }]);
}

#[tokio::test]
async fn rejects_an_address_id_used_twice() {
    let id = Uuid::from_u128(1);
    UserTest::with(())
        .given(vec![
            registered(),
            UserEvent::AddressAdded {
                address_id: id,
                address: home(),
            },
        ])
        .when_async(UserCommand::AddAddress {
            address_id: id,
            address: home(),
        })
        .await
        .then_expect_error(UserError::DuplicateAddress);
}

#[tokio::test]
async fn rejects_more_than_the_address_limit() {
    let mut given = vec![registered()];
    given.extend((0..MAX_ADDRESSES as u128).map(|i| UserEvent::AddressAdded {
        address_id: Uuid::from_u128(i + 1),
        address: home(),
    }));
    UserTest::with(())
        .given(given)
        .when_async(UserCommand::AddAddress {
            address_id: Uuid::from_u128(999),
            address: home(),
        })
        .await
        .then_expect_error(UserError::TooManyAddresses);
}

#[tokio::test]
async fn updates_an_existing_address() {
    let id = Uuid::from_u128(1);
    let moved = Address {
        city: "Shelbyville".into(),
        ..home()
    };
    UserTest::with(())
        .given(vec![
            registered(),
            UserEvent::AddressAdded {
                address_id: id,
                address: home(),
            },
        ])
        .when_async(UserCommand::UpdateAddress {
            address_id: id,
            address: moved.clone(),
        })
        .await
        .then_expect_events(vec![UserEvent::AddressUpdated {
            address_id: id,
            address: moved,
        }]);
}

#[tokio::test]
async fn rejects_update_of_unknown_address() {
    UserTest::with(())
        .given(vec![registered()])
        .when_async(UserCommand::UpdateAddress {
            address_id: Uuid::from_u128(7),
            address: home(),
        })
        .await
        .then_expect_error(UserError::UnknownAddress);
}

#[tokio::test]
async fn removes_an_address() {
    let id = Uuid::from_u128(1);
    UserTest::with(())
        .given(vec![
            registered(),
            UserEvent::AddressAdded {
                address_id: id,
                address: home(),
            },
        ])
        .when_async(UserCommand::RemoveAddress { address_id: id })
        .await
        .then_expect_events(vec![UserEvent::AddressRemoved { address_id: id }]);
}

#[tokio::test]
async fn rejects_removal_of_unknown_address() {
    UserTest::with(())
        .given(vec![registered()])
        .when_async(UserCommand::RemoveAddress {
            address_id: Uuid::from_u128(7),
        })
        .await
        .then_expect_error(UserError::UnknownAddress);
}

#[tokio::test]
async fn removed_address_may_not_be_removed_twice() {
    let id = Uuid::from_u128(1);
    UserTest::with(())
        .given(vec![
            registered(),
            UserEvent::AddressAdded {
                address_id: id,
                address: home(),
            },
            UserEvent::AddressRemoved { address_id: id },
        ])
        .when_async(UserCommand::RemoveAddress { address_id: id })
        .await
        .then_expect_error(UserError::UnknownAddress);
}
