//! The caller's own profile and addresses. Reads come from the read models `projections`
//! builds (honouring `X-Min-Position`); writes go through the `User` aggregate. Every path is
//! scoped to the caller's own id, so another user's data cannot even be named.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use domain::rules::{Checks, MAX_STRING};
use domain::user::{Address, User, UserCommand, UserError};
use plumbing::position::ReadModel;
use projections::models::user_profiles;
use schemas::api::users::{AddressRequest, AddressResponse, Profile, UpdateProfileRequest};
use uuid::Uuid;

use crate::http::auth::Caller;
use crate::http::consistency::{MinPosition, Written};
use crate::http::context::RequestContext;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path};
use crate::http::store_error::from_execute;
use crate::state::AppState;

const PROFILES: ReadModel = user_profiles::NAME;

pub async fn get_profile(
    State(state): State<AppState>,
    caller: Caller,
    min: MinPosition,
) -> Result<impl IntoResponse, ApiError> {
    let freshness = min.wait(&state.pool, &[PROFILES]).await?;
    let profile = match user_profiles::profile(&state.pool, caller.user_id).await? {
        Some(profile) => profile,
        // Not projected yet (just registered): answer from the write side rather than 404.
        None => {
            let (user, _) = state
                .users
                .load(&caller.user_id.to_string())
                .await
                .map_err(|e| ApiError::internal(anyhow::Error::new(e)))?;
            profile_of(&user).ok_or_else(|| ApiError::NotFound("no such user".into()))?
        }
    };
    Ok((freshness, Json(profile)))
}

pub async fn update_profile(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    Json(body): Json<UpdateProfileRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let mut checks = Checks::new();
    if let Some(name) = &body.name {
        checks.text("name", name, MAX_STRING);
    }
    if let Some(Some(phone)) = &body.phone {
        check_phone(&mut checks, phone);
    }
    checks.finish().map_err(ApiError::Validation)?;
    let executed = state
        .users
        .execute(
            &caller.user_id.to_string(),
            UserCommand::UpdateProfile {
                name: body.name.map(|n| n.trim().to_owned()),
                phone: body.phone.map(|p| p.map(|p| p.trim().to_owned())),
            },
            &ctx.metadata(Some(caller.user_id)),
        )
        .await
        .map_err(|e| from_execute(e, user_error))?;
    let profile =
        profile_of(&executed.state).ok_or_else(|| ApiError::NotFound("no such user".into()))?;
    Ok((Written(executed.position()), Json(profile)))
}

pub async fn list_addresses(
    State(state): State<AppState>,
    caller: Caller,
    min: MinPosition,
) -> Result<impl IntoResponse, ApiError> {
    let freshness = min.wait(&state.pool, &[PROFILES]).await?;
    let addresses = user_profiles::addresses(&state.pool, caller.user_id).await?;
    Ok((freshness, Json(addresses)))
}

pub async fn add_address(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    Json(body): Json<AddressRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let address = checked_address(body)?;
    let address_id = Uuid::new_v4();
    let executed = state
        .users
        .execute(
            &caller.user_id.to_string(),
            UserCommand::AddAddress {
                address_id,
                address: address.clone(),
            },
            &ctx.metadata(Some(caller.user_id)),
        )
        .await
        .map_err(|e| from_execute(e, user_error))?;
    Ok((
        StatusCode::CREATED,
        Written(executed.position()),
        Json(AddressResponse::new(address_id, address)),
    ))
}

pub async fn update_address(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    Path(address_id): Path<Uuid>,
    Json(body): Json<AddressRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let address = checked_address(body)?;
    let executed = state
        .users
        .execute(
            &caller.user_id.to_string(),
            UserCommand::UpdateAddress {
                address_id,
                address: address.clone(),
            },
            &ctx.metadata(Some(caller.user_id)),
        )
        .await
        .map_err(|e| from_execute(e, user_error))?;
    Ok((
        Written(executed.position()),
        Json(AddressResponse::new(address_id, address)),
    ))
}

pub async fn delete_address(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    Path(address_id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let executed = state
        .users
        .execute(
            &caller.user_id.to_string(),
            UserCommand::RemoveAddress { address_id },
            &ctx.metadata(Some(caller.user_id)),
        )
        .await
        .map_err(|e| from_execute(e, user_error))?;
    Ok((StatusCode::NO_CONTENT, Written(executed.position())))
}

fn user_error(err: UserError) -> ApiError {
    match err {
        UserError::UnknownAddress => ApiError::NotFound("no such address".into()),
        UserError::UnknownUser => ApiError::NotFound("no such user".into()),
        UserError::EmailTaken | UserError::DuplicateAddress => ApiError::conflict(err.to_string()),
        UserError::TooManyAddresses => ApiError::unprocessable(err.to_string()),
    }
}

fn profile_of(user: &User) -> Option<Profile> {
    Some(Profile {
        user_id: user.user_id?,
        email: user.email.clone(),
        name: user.name.clone(),
        phone: user.phone.clone(),
        roles: user.roles.iter().copied().collect(),
        created_at: user.created_at?,
    })
}

fn check_phone(checks: &mut Checks, phone: &str) {
    let ok = (1..=32).contains(&phone.chars().count())
        && phone
            .chars()
            .all(|c| c.is_ascii_digit() || " +-()".contains(c));
    if !ok {
        checks.fail(
            "phone",
            "must be 1 to 32 characters of digits, spaces and + - ( )",
        );
    }
}

fn checked_address(body: AddressRequest) -> Result<Address, ApiError> {
    let mut checks = Checks::new();
    checks
        .text("label", &body.label, MAX_STRING)
        .text("line1", &body.line1, MAX_STRING)
        .optional_text("line2", body.line2.as_deref(), MAX_STRING)
        .text("city", &body.city, MAX_STRING)
        .text("postal_code", &body.postal_code, 20);
    if !(body.country.len() == 2 && body.country.chars().all(|c| c.is_ascii_uppercase())) {
        checks.fail("country", "must be an ISO 3166-1 alpha-2 code such as DE");
    }
    checks.finish().map_err(ApiError::Validation)?;
    Ok(body.into())
}
