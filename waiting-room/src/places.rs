//! Reading the waiting room. Every status is computed with the database's clock, the same
//! one the admitter stamps admissions with, so "admitted until" means one thing everywhere.

use chrono::{DateTime, Utc};
use schemas::api::queue::{PlaceStatus, QueuePlace, QueueStats};
use sqlx::PgPool;
use uuid::Uuid;

/// One row of a user's place, with the queue's cursor and the database's clock.
#[derive(sqlx::FromRow)]
struct PlaceRow {
    ordinal: i64,
    admitted_until: Option<DateTime<Utc>>,
    admitted_through: i64,
    now: DateTime<Utc>,
}

impl PlaceRow {
    fn place(&self) -> QueuePlace {
        place_of(
            self.ordinal,
            self.admitted_through,
            self.admitted_until,
            self.now,
        )
    }
}

/// A place from its ordinal and the queue's admission cursor.
pub(crate) fn place_of(
    ordinal: i64,
    admitted_through: i64,
    admitted_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> QueuePlace {
    match admitted_until {
        // Not admitted yet: everyone waiting ahead holds an ordinal in
        // (admitted_through, ordinal).
        None => QueuePlace {
            position: u64::try_from(ordinal - admitted_through).unwrap_or(0),
            status: PlaceStatus::Waiting,
            admitted_until: None,
        },
        Some(until) => QueuePlace {
            position: 0,
            status: if until > now {
                PlaceStatus::Admitted
            } else {
                PlaceStatus::Expired
            },
            admitted_until: Some(until),
        },
    }
}

/// The caller's place in an event's queue, if they joined it.
pub async fn place(
    pool: &PgPool,
    event_id: Uuid,
    user_id: Uuid,
) -> sqlx::Result<Option<QueuePlace>> {
    let row: Option<PlaceRow> = sqlx::query_as(
        "SELECT p.ordinal, p.admitted_until, r.admitted_through, now() AS now
         FROM waiting_room_places p JOIN waiting_rooms r USING (event_id)
         WHERE p.event_id = $1 AND p.user_id = $2",
    )
    .bind(event_id)
    .bind(user_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| r.place()))
}

/// Whether `user_id` holds a valid admission to `event_id` now.
pub async fn is_admitted(pool: &PgPool, event_id: Uuid, user_id: Uuid) -> sqlx::Result<bool> {
    let admitted: Option<Option<bool>> = sqlx::query_scalar(
        "SELECT admitted_until > now() FROM waiting_room_places
         WHERE event_id = $1 AND user_id = $2",
    )
    .bind(event_id)
    .bind(user_id)
    .fetch_optional(pool)
    .await?;
    Ok(admitted.flatten().unwrap_or(false))
}

#[derive(sqlx::FromRow)]
struct StatsRow {
    admit_per_minute: i32,
    joined: i64,
    admitted_through: i64,
    admitted: i64,
    expired: i64,
    admitted_last_minute: i64,
}

/// The queue's figures; `None` when nobody ever joined it.
pub async fn stats(pool: &PgPool, event_id: Uuid) -> sqlx::Result<Option<QueueStats>> {
    // The counts of admitted places read one index range of the event; the queue's length
    // and totals come from the cursor row.
    let row: Option<StatsRow> = sqlx::query_as(
        "SELECT r.admit_per_minute, r.joined, r.admitted_through,
                (SELECT count(*) FROM waiting_room_places p
                 WHERE p.event_id = r.event_id AND p.admitted_until > now()) AS admitted,
                (SELECT count(*) FROM waiting_room_places p
                 WHERE p.event_id = r.event_id AND p.admitted_until <= now()) AS expired,
                (SELECT count(*) FROM waiting_room_admissions a
                 WHERE a.event_id = r.event_id
                   AND a.admitted_at > now() - interval '60 seconds') AS admitted_last_minute
         FROM waiting_rooms r WHERE r.event_id = $1",
    )
    .bind(event_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| QueueStats {
        event_id,
        waiting: u64::try_from(r.joined - r.admitted_through).unwrap_or(0),
        admitted: u64::try_from(r.admitted).unwrap_or(0),
        expired: u64::try_from(r.expired).unwrap_or(0),
        joined_total: u64::try_from(r.joined).unwrap_or(0),
        admitted_total: u64::try_from(r.admitted_through).unwrap_or(0),
        admit_per_minute: u32::try_from(r.admit_per_minute).unwrap_or(0),
        admitted_last_minute: u64::try_from(r.admitted_last_minute).unwrap_or(0),
    }))
}

/// A user's place in one event's queue, for pushing to that user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPlace {
    pub user_id: Uuid,
    pub event_id: Uuid,
    pub place: QueuePlace,
}

#[derive(sqlx::FromRow)]
struct UserPlaceRow {
    user_id: Uuid,
    event_id: Uuid,
    ordinal: i64,
    admitted_until: Option<DateTime<Utc>>,
    admitted_through: i64,
    now: DateTime<Utc>,
}

impl UserPlaceRow {
    fn into_user_place(self) -> UserPlace {
        UserPlace {
            user_id: self.user_id,
            event_id: self.event_id,
            place: place_of(
                self.ordinal,
                self.admitted_through,
                self.admitted_until,
                self.now,
            ),
        }
    }
}

/// The current places of `users`: waiting ones, and admissions that are valid or ran out
/// within the last `admission_minutes` (older ones are history, not news).
pub async fn places_of_users(pool: &PgPool, users: &[Uuid]) -> sqlx::Result<Vec<UserPlace>> {
    let rows: Vec<UserPlaceRow> = sqlx::query_as(
        "SELECT p.user_id, p.event_id, p.ordinal, p.admitted_until, r.admitted_through,
                now() AS now
         FROM waiting_room_places p JOIN waiting_rooms r USING (event_id)
         WHERE p.user_id = ANY($1)
           AND (p.admitted_until IS NULL
                OR p.admitted_until > now() - make_interval(mins => r.admission_minutes))",
    )
    .bind(users)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(UserPlaceRow::into_user_place)
        .collect())
}

/// The places admitted by one admission step (ordinals in `(from, through]`).
pub async fn admitted_in(
    pool: &PgPool,
    event_id: Uuid,
    from: i64,
    through: i64,
) -> sqlx::Result<Vec<UserPlace>> {
    let rows: Vec<UserPlaceRow> = sqlx::query_as(
        "SELECT p.user_id, p.event_id, p.ordinal, p.admitted_until, r.admitted_through,
                now() AS now
         FROM waiting_room_places p JOIN waiting_rooms r USING (event_id)
         WHERE p.event_id = $1 AND p.ordinal > $2 AND p.ordinal <= $3",
    )
    .bind(event_id)
    .bind(from)
    .bind(through)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(UserPlaceRow::into_user_place)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn a_waiting_place_counts_those_ahead_that_are_not_admitted() {
        let now = Utc::now();
        let place = place_of(12, 9, None, now);
        assert_eq!(place.position, 3);
        assert_eq!(place.status, PlaceStatus::Waiting);
    }

    #[test]
    fn an_admission_is_valid_until_its_end_and_expired_from_then() {
        let now = Utc::now();
        let until = now + TimeDelta::seconds(1);
        assert_eq!(
            place_of(3, 9, Some(until), now).status,
            PlaceStatus::Admitted
        );
        assert_eq!(
            place_of(3, 9, Some(until), until).status,
            PlaceStatus::Expired
        );
        assert_eq!(place_of(3, 9, Some(until), now).position, 0);
    }
}
