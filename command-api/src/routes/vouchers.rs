//! `POST` and `GET /api/events/{event_id}/vouchers`: an organizer's discount codes. A new
//! voucher and its entry in the event's voucher book are one unit, so a code is unique per
//! event even when two organizers' tabs race; `uses` is read from the voucher streams
//! themselves, so it is never behind a booking that took one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use domain::show::ShowStatus;
use domain::voucher::book::{VoucherBookCommand, VoucherBookError};
use domain::voucher::{self, Voucher, VoucherCommand, VoucherError};
use plumbing::store::{Unit, UnitError};
use schemas::api::vouchers::{CreateVoucherRequest, VoucherResponse};
use uuid::Uuid;

use crate::http::auth::Caller;
use crate::http::consistency::Written;
use crate::http::context::RequestContext;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path};
use crate::http::store_error::from_persistence;
use crate::routes::event_access::owned_show;
use crate::state::AppState;

enum Refusal {
    CodeTaken(VoucherBookError),
    Voucher(VoucherError),
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    Path(event_id): Path<Uuid>,
    Json(body): Json<CreateVoucherRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let show = owned_show(&state, &caller, event_id).await?;
    if show.status == ShowStatus::Cancelled {
        return Err(ApiError::conflict("the event is cancelled"));
    }
    let now = Utc::now();
    let tier_ids = body.tier_ids.unwrap_or_default();
    voucher::check_new(
        &show,
        &body.code,
        &body.discount,
        body.max_uses,
        body.valid_until,
        &tier_ids,
        now,
    )
    .map_err(ApiError::Validation)?;

    let voucher_id = Uuid::new_v4();
    let mut unit = Unit::new(&ctx.metadata(Some(caller.user_id)));
    let book = unit.stream(&state.voucher_books, &event_id.to_string());
    let stream = unit.new_stream(&state.vouchers, &voucher_id.to_string());
    let code = body.code.clone();
    let create = VoucherCommand::Create {
        voucher_id,
        show_id: event_id,
        code: body.code.clone(),
        discount: body.discount.clone(),
        max_uses: body.max_uses,
        valid_until: body.valid_until,
        tier_ids: tier_ids.clone(),
        now,
    };
    let committed = unit
        .run(move |d| {
            d.execute(
                &book,
                VoucherBookCommand::Add {
                    voucher_id,
                    code: code.clone(),
                },
            )
            .map_err(Refusal::CodeTaken)?;
            d.execute(&stream, create.clone())
                .map_err(Refusal::Voucher)?;
            Ok(())
        })
        .await
        .map_err(|err| match err {
            UnitError::Rejected(Refusal::CodeTaken(e)) => ApiError::conflict(e.to_string()),
            UnitError::Rejected(Refusal::Voucher(e)) => ApiError::conflict(e.to_string()),
            UnitError::Contended => {
                ApiError::Unavailable("the event's vouchers are busy; retry shortly".into())
            }
            UnitError::Store(e) => from_persistence(e),
        })?;
    Ok((
        StatusCode::CREATED,
        Written(committed.position),
        Json(VoucherResponse {
            voucher_id,
            code: body.code,
            discount: body.discount,
            max_uses: body.max_uses,
            uses: 0,
            valid_until: body.valid_until,
            tier_ids,
        }),
    ))
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<Uuid>,
) -> Result<Json<Vec<VoucherResponse>>, ApiError> {
    owned_show(&state, &caller, event_id).await?;
    let (book, _) = state
        .voucher_books
        .current(&event_id.to_string())
        .await
        .map_err(from_persistence)?;
    let mut vouchers = Vec::with_capacity(book.codes.len());
    for voucher_id in book.codes.values() {
        let (voucher, _) = state
            .vouchers
            .current(&voucher_id.to_string())
            .await
            .map_err(from_persistence)?;
        if let Some(response) = response(&voucher) {
            vouchers.push(response);
        }
    }
    Ok(Json(vouchers))
}

fn response(voucher: &Voucher) -> Option<VoucherResponse> {
    Some(VoucherResponse {
        voucher_id: voucher.voucher_id?,
        code: voucher.code.clone(),
        discount: voucher.discount.clone()?,
        max_uses: voucher.max_uses,
        uses: voucher.uses(),
        valid_until: voucher.valid_until,
        tier_ids: voucher.tier_ids.clone(),
    })
}
