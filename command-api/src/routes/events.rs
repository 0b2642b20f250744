//! Organizer commands on shows (API.md's events): create, layout, pricing, publish, cancel,
//! and the venue templates.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use domain::show::{Actor, ShowCommand, ShowError, ShowStatus, templates};
use domain::user::Role;
use plumbing::store::Executed;
use schemas::api::events::{
    AnnouncementRequest, CreateEventRequest, EventStatusResponse, LayoutRequest, LayoutResponse,
    PricingRequest, PricingResponse, PublishRequest,
};
use serde_json::json;
use uuid::Uuid;

use crate::http::auth::Caller;
use crate::http::consistency::Written;
use crate::http::context::RequestContext;
use crate::http::error::ApiError;
use crate::http::extract::{Json, OptionalJson, Path};
use crate::http::store_error::from_execute;
use crate::state::AppState;

pub async fn templates() -> Json<Vec<templates::Template>> {
    Json(templates::all())
}

pub async fn create_event(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    Json(body): Json<CreateEventRequest>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_organizer()?;
    let event_id = Uuid::new_v4();
    let executed = execute(
        &state,
        &caller,
        &ctx,
        event_id,
        ShowCommand::Create {
            show_id: event_id,
            organizer_id: caller.user_id,
            name: body.name.trim().to_owned(),
            venue: body.venue.trim().to_owned(),
            description: body.description,
            starts_at: body.starts_at,
            now: Utc::now(),
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Written(executed.position()),
        Json(EventStatusResponse {
            event_id,
            status: ShowStatus::Draft,
        }),
    ))
}

pub async fn set_layout(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    Path(event_id): Path<Uuid>,
    Json(body): Json<LayoutRequest>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_organizer()?;
    let sections = match body {
        LayoutRequest::Sections(layout) => layout.sections,
        LayoutRequest::Template(t) => {
            templates::find(&t.template_id)
                .ok_or_else(|| {
                    ApiError::Validation(vec![domain::FieldError::new(
                        "template_id",
                        "no such template",
                    )])
                })?
                .sections
        }
    };
    let executed = execute(
        &state,
        &caller,
        &ctx,
        event_id,
        ShowCommand::SetLayout {
            actor: actor(&caller),
            sections,
        },
    )
    .await?;
    Ok((
        Written(executed.position()),
        Json(LayoutResponse {
            event_id,
            sections: executed.state.sections,
        }),
    ))
}

pub async fn set_pricing(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    Path(event_id): Path<Uuid>,
    Json(body): Json<PricingRequest>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_organizer()?;
    let executed = execute(
        &state,
        &caller,
        &ctx,
        event_id,
        ShowCommand::SetPricing {
            actor: actor(&caller),
            tiers: body.tiers,
        },
    )
    .await?;
    Ok((
        Written(executed.position()),
        Json(PricingResponse {
            event_id,
            tiers: executed.state.tiers,
        }),
    ))
}

pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    Path(event_id): Path<Uuid>,
    OptionalJson(body): OptionalJson<PublishRequest>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_organizer()?;
    let executed = execute(
        &state,
        &caller,
        &ctx,
        event_id,
        ShowCommand::Publish {
            actor: actor(&caller),
            sales_open_at: body.sales_open_at,
            sales_close_at: body.sales_close_at,
            queue: body.queue,
            max_tickets_per_customer: body.max_tickets_per_customer,
            now: Utc::now(),
        },
    )
    .await?;
    Ok((
        Written(executed.position()),
        Json(EventStatusResponse {
            event_id,
            status: ShowStatus::Published,
        }),
    ))
}

pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    Path(event_id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_organizer()?;
    let executed = execute(
        &state,
        &caller,
        &ctx,
        event_id,
        ShowCommand::Cancel {
            actor: actor(&caller),
            now: Utc::now(),
        },
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Written(executed.position()),
        Json(EventStatusResponse {
            event_id,
            status: ShowStatus::Cancelled,
        }),
    ))
}

pub async fn announce(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    Path(event_id): Path<Uuid>,
    Json(body): Json<AnnouncementRequest>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_organizer()?;
    let executed = execute(
        &state,
        &caller,
        &ctx,
        event_id,
        ShowCommand::Announce {
            actor: actor(&caller),
            message: body.message,
            now: Utc::now(),
        },
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Written(executed.position())))
}

fn actor(caller: &Caller) -> Actor {
    Actor {
        user_id: caller.user_id,
        admin: caller.has(Role::Admin),
    }
}

async fn execute(
    state: &AppState,
    caller: &Caller,
    ctx: &RequestContext,
    event_id: Uuid,
    command: ShowCommand,
) -> Result<Executed<domain::show::Show>, ApiError> {
    state
        .shows
        .execute(
            &event_id.to_string(),
            command,
            &ctx.metadata(Some(caller.user_id)),
        )
        .await
        .map_err(|e| from_execute(e, show_error))
}

pub fn show_error(err: ShowError) -> ApiError {
    match err {
        ShowError::UnknownShow | ShowError::DraftOfAnotherOrganizer => {
            ApiError::NotFound("no such event".into())
        }
        ShowError::NotOwner => ApiError::Forbidden(err.to_string()),
        ShowError::Invalid(errors) => ApiError::Validation(errors),
        ShowError::Frozen(status) => ApiError::Conflict {
            detail: err.to_string(),
            extensions: serde_json::Map::from_iter([("event_status".to_owned(), json!(status))]),
        },
        ShowError::AlreadyExists
        | ShowError::LayoutMissing
        | ShowError::PricingMissing
        | ShowError::AlreadyPublished
        | ShowError::AlreadyCancelled
        | ShowError::NotPublished => ApiError::conflict(err.to_string()),
    }
}
