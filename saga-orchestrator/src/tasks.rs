//! The saga's durable work list (`saga_tasks`): deadlines and steps to (re)try, one row per
//! (booking, step). A worker claims due rows with a short lease in a short transaction and
//! runs them outside it (a long transaction would hold back the relay), then deletes them —
//! unless the step was scheduled again meanwhile, in which case it runs again.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::decide::Step;

#[derive(Debug, Clone)]
pub struct Task {
    pub booking_id: Uuid,
    pub step: Step,
    pub due_at: DateTime<Utc>,
    pub attempts: i32,
}

/// (kind, detail) as stored.
pub fn encode(step: &Step) -> (&'static str, String) {
    match step {
        Step::Charge => ("charge", String::new()),
        Step::Settle => ("settle", String::new()),
        Step::HoldDeadline => ("hold_deadline", String::new()),
        Step::PaymentDeadline => ("payment_deadline", String::new()),
        Step::Release => ("release", String::new()),
        Step::Refund => ("refund", String::new()),
        Step::CompleteRefund => ("complete_refund", String::new()),
        Step::OrphanHold { inventory_id } => ("orphan_hold", inventory_id.clone()),
        Step::CancelForShow => ("cancel_for_show", String::new()),
        Step::WaitlistOffers => ("waitlist_offers", String::new()),
    }
}

pub fn decode(kind: &str, detail: &str) -> Option<Step> {
    Some(match kind {
        "charge" => Step::Charge,
        "settle" => Step::Settle,
        "hold_deadline" => Step::HoldDeadline,
        "payment_deadline" => Step::PaymentDeadline,
        "release" => Step::Release,
        "refund" => Step::Refund,
        "complete_refund" => Step::CompleteRefund,
        "orphan_hold" => Step::OrphanHold {
            inventory_id: detail.to_owned(),
        },
        "cancel_for_show" => Step::CancelForShow,
        "waitlist_offers" => Step::WaitlistOffers,
        _ => return None,
    })
}

/// Schedules `step` for `booking_id` at `due_at`; scheduling it again moves it to the new
/// time and frees it, so a step already claimed runs once more with fresh state.
pub async fn schedule(
    conn: &mut PgConnection,
    booking_id: Uuid,
    step: &Step,
    due_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let (kind, detail) = encode(step);
    sqlx::query(
        "INSERT INTO saga_tasks (booking_id, kind, detail, due_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (booking_id, kind, detail) DO UPDATE
            SET due_at = EXCLUDED.due_at, locked_until = NULL, attempts = 0",
    )
    .bind(booking_id)
    .bind(kind)
    .bind(detail)
    .bind(due_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// `schedule` for many steps in one statement (a consumer's batch). A step named twice
/// keeps its latest due time.
pub async fn schedule_many(
    conn: &mut PgConnection,
    steps: &[(Uuid, Step, DateTime<Utc>)],
) -> Result<(), sqlx::Error> {
    let mut latest: std::collections::BTreeMap<(Uuid, &'static str, String), DateTime<Utc>> =
        std::collections::BTreeMap::new();
    for (booking_id, step, due_at) in steps {
        let (kind, detail) = encode(step);
        latest.insert((*booking_id, kind, detail), *due_at);
    }
    if latest.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(latest.len());
    let mut kinds = Vec::with_capacity(latest.len());
    let mut details = Vec::with_capacity(latest.len());
    let mut dues = Vec::with_capacity(latest.len());
    for ((booking_id, kind, detail), due_at) in latest {
        ids.push(booking_id);
        kinds.push(kind);
        details.push(detail);
        dues.push(due_at);
    }
    sqlx::query(
        "INSERT INTO saga_tasks (booking_id, kind, detail, due_at)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[])
         ON CONFLICT (booking_id, kind, detail) DO UPDATE
            SET due_at = EXCLUDED.due_at, locked_until = NULL, attempts = 0",
    )
    .bind(&ids)
    .bind(&kinds)
    .bind(&details)
    .bind(&dues)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Row {
    booking_id: Uuid,
    kind: String,
    detail: String,
    due_at: DateTime<Utc>,
    attempts: i32,
}

/// Removes the steps in `done` that were not scheduled again while they ran, and claims up
/// to `limit` due ones for `lease` (other workers skip them meanwhile): one statement for
/// both, so finishing a step costs no statement of its own.
pub async fn complete_and_claim(
    pool: &PgPool,
    done: &[Task],
    limit: i64,
    lease: Duration,
) -> Result<Vec<Task>, sqlx::Error> {
    let (ids, kinds, details, dues) = columns(done);
    let rows: Vec<Row> = sqlx::query_as(
        "WITH done AS (
             DELETE FROM saga_tasks t
              USING unnest($3::uuid[], $4::text[], $5::text[], $6::timestamptz[])
                    AS d(booking_id, kind, detail, due_at)
              WHERE t.booking_id = d.booking_id AND t.kind = d.kind
                AND t.detail = d.detail AND t.due_at = d.due_at
         )
         UPDATE saga_tasks t SET locked_until = now() + make_interval(secs => $2)
           FROM (SELECT booking_id, kind, detail FROM saga_tasks
                  WHERE due_at <= now() AND (locked_until IS NULL OR locked_until < now())
                  ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED) due
          WHERE t.booking_id = due.booking_id AND t.kind = due.kind AND t.detail = due.detail
      RETURNING t.booking_id, t.kind, t.detail, t.due_at, t.attempts",
    )
    .bind(limit)
    .bind(lease.as_secs_f64())
    .bind(&ids)
    .bind(&kinds)
    .bind(&details)
    .bind(&dues)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            Some(Task {
                step: decode(&r.kind, &r.detail)?,
                booking_id: r.booking_id,
                due_at: r.due_at,
                attempts: r.attempts,
            })
        })
        .collect())
}

type Columns = (
    Vec<Uuid>,
    Vec<&'static str>,
    Vec<String>,
    Vec<DateTime<Utc>>,
);

fn columns(tasks: &[Task]) -> Columns {
    let mut columns: Columns = Default::default();
    for task in tasks {
        let (kind, detail) = encode(&task.step);
        columns.0.push(task.booking_id);
        columns.1.push(kind);
        columns.2.push(detail);
        columns.3.push(task.due_at);
    }
    columns
}

/// Done: removes the steps unless they were scheduled again while they ran.
pub async fn complete_many(pool: &PgPool, done: &[Task]) -> Result<(), sqlx::Error> {
    if done.is_empty() {
        return Ok(());
    }
    let (ids, kinds, details, dues) = columns(done);
    sqlx::query(
        "DELETE FROM saga_tasks t
          USING unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[])
                AS d(booking_id, kind, detail, due_at)
          WHERE t.booking_id = d.booking_id AND t.kind = d.kind
            AND t.detail = d.detail AND t.due_at = d.due_at",
    )
    .bind(&ids)
    .bind(&kinds)
    .bind(&details)
    .bind(&dues)
    .execute(pool)
    .await?;
    Ok(())
}

/// Failed: tries again after `after`, remembering the error.
pub async fn retry(
    pool: &PgPool,
    task: &Task,
    after: Duration,
    error: &str,
) -> Result<(), sqlx::Error> {
    let (kind, detail) = encode(&task.step);
    sqlx::query(
        "UPDATE saga_tasks
            SET attempts = attempts + 1, due_at = now() + make_interval(secs => $5),
                locked_until = NULL, last_error = $6
          WHERE booking_id = $1 AND kind = $2 AND detail = $3 AND due_at = $4",
    )
    .bind(task.booking_id)
    .bind(kind)
    .bind(detail)
    .bind(task.due_at)
    .bind(after.as_secs_f64())
    .bind(error.chars().take(1_000).collect::<String>())
    .execute(pool)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_round_trip_through_their_stored_form() {
        for step in [
            Step::Charge,
            Step::Settle,
            Step::HoldDeadline,
            Step::PaymentDeadline,
            Step::Release,
            Step::Refund,
            Step::CompleteRefund,
            Step::OrphanHold {
                inventory_id: "a:b".into(),
            },
            Step::CancelForShow,
            Step::WaitlistOffers,
        ] {
            let (kind, detail) = encode(&step);
            assert_eq!(decode(kind, &detail), Some(step));
        }
    }
}
