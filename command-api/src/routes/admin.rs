//! Admin endpoints: `POST /api/admin/users/{user_id}/roles` (the next login carries the
//! role) and `GET /api/admin/projections` (read-model health).

use axum::extract::State;
use chrono::{DateTime, Utc};
use domain::user::{Role, UserCommand, UserError};
use schemas::api::ops::{ProjectionHealth, ProjectionsHealth};
use schemas::api::users::{GrantRoleRequest, RolesResponse};
use uuid::Uuid;

use crate::http::auth::Caller;
use crate::http::consistency::Written;
use crate::http::context::RequestContext;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path};
use crate::http::store_error::from_execute;
use crate::state::AppState;

pub async fn grant_role(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    Path(user_id): Path<Uuid>,
    Json(body): Json<GrantRoleRequest>,
) -> Result<(Written, Json<RolesResponse>), ApiError> {
    caller.require(Role::Admin)?;
    let executed = state
        .users
        .execute(
            &user_id.to_string(),
            UserCommand::GrantRole {
                role: body.role.into(),
            },
            &ctx.metadata(Some(caller.user_id)),
        )
        .await
        .map_err(|e| {
            from_execute(e, |e| match e {
                UserError::UnknownUser => ApiError::NotFound("no such user".into()),
                other => ApiError::unprocessable(other.to_string()),
            })
        })?;
    Ok((
        Written(executed.position()),
        Json(RolesResponse {
            user_id,
            roles: executed.state.roles.iter().copied().collect(),
        }),
    ))
}

/// `GET /api/admin/projections`: each read model's consumer as it last reported itself
/// (see `plumbing::health`).
pub async fn projections(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ProjectionsHealth>, ApiError> {
    caller.require(Role::Admin)?;
    let head: i64 = sqlx::query_scalar("SELECT coalesce(max(global_position), 0) FROM events")
        .fetch_one(&state.pool)
        .await?;
    let rows: Vec<(String, i64, i64, i64, DateTime<Utc>, bool)> = sqlx::query_as(
        "SELECT consumer, applied_position, lag_messages, dead_lettered, reported_at,
                reported_at > now() - interval '30 seconds'
           FROM consumer_health",
    )
    .fetch_all(&state.pool)
    .await?;
    let projections = projections::models::ALL
        .iter()
        .map(|model| {
            let consumer = model.name().consumer;
            let row = rows.iter().find(|r| r.0 == consumer);
            ProjectionHealth {
                name: consumer.to_owned(),
                applied_position: row.map_or(0, |r| r.1),
                lag_messages: row.map_or(0, |r| r.2),
                dead_lettered: row.map_or(0, |r| r.3),
                reported_at: row.map(|r| r.4),
                healthy: row.is_some_and(|r| r.5 && r.3 == 0),
            }
        })
        .collect();
    Ok(Json(ProjectionsHealth {
        head_position: head,
        projections,
    }))
}
