//! `POST /api/admin/users/{user_id}/roles`: admins grant roles; the next login carries them.

use axum::extract::State;
use domain::user::{Role, UserCommand, UserError};
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
