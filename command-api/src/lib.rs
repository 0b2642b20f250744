//! command-api: the public HTTP origin. Commands go through the aggregates into the event
//! store; queries read the read models `projections` builds. The relay that publishes the
//! event store to Kafka lives here too (`relay` module, `relay` binary), because the write
//! side owns the store.

pub mod bootstrap;
pub mod http;
pub mod invoice_pdf;
pub mod passwords;
pub mod payment_tokens;
pub mod purchase;
pub mod relay;
pub mod routes;
pub mod sessions;
pub mod settings;
pub mod state;
pub mod ticket_pdf;
pub mod web;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use domain::user::User;
use plumbing::ops::{self, OpsState};
use plumbing::store::AggregateStore;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::http::error::{self, ApiError};
use crate::http::extract::BODY_LIMIT;
use crate::http::{auth::JwtKeys, idempotency, rate_limit};
use crate::passwords::Passwords;
use crate::settings::Settings;
use crate::state::AppState;

/// The whole HTTP application; tests drive it in process with `tower::ServiceExt::oneshot`.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/auth/register", post(routes::auth::register))
        .route("/api/auth/login", post(routes::auth::login))
        .route("/api/auth/refresh", post(routes::sessions::refresh))
        .route("/api/auth/logout", post(routes::sessions::logout))
        .route("/api/auth/sessions", get(routes::sessions::list))
        .route(
            "/api/auth/sessions/{session_id}",
            axum::routing::delete(routes::sessions::revoke),
        )
        .route(
            "/api/admin/users/{user_id}/roles",
            post(routes::admin::grant_role),
        )
        .route("/api/admin/projections", get(routes::admin::projections))
        .route("/api/invoices", get(routes::invoices::list))
        .route("/api/invoices/{invoice_id}", get(routes::invoices::get))
        .route("/api/invoices/{invoice_id}/pdf", get(routes::invoices::pdf))
        .route(
            "/api/users/profile",
            get(routes::users::get_profile).put(routes::users::update_profile),
        )
        .route(
            "/api/users/addresses",
            get(routes::users::list_addresses).post(routes::users::add_address),
        )
        .route(
            "/api/users/addresses/{address_id}",
            put(routes::users::update_address).delete(routes::users::delete_address),
        )
        .route("/api/openapi.json", get(routes::docs::openapi))
        .route("/api/docs", get(routes::docs::page))
        .route("/api/events/templates", get(routes::events::templates))
        .route(
            "/api/events",
            get(routes::catalog::list_events).post(routes::events::create_event),
        )
        .route("/api/events/{event_id}", get(routes::catalog::get_event))
        .route(
            "/api/events/{event_id}/queue",
            get(routes::queue::place).post(routes::queue::join),
        )
        .route(
            "/api/events/{event_id}/queue/stats",
            get(routes::queue::stats),
        )
        .route("/api/events/{event_id}/sales", get(routes::sales::report))
        .route(
            "/api/events/{event_id}/sales/timeseries",
            get(routes::sales::timeseries),
        )
        .route(
            "/api/events/{event_id}/layout",
            post(routes::events::set_layout),
        )
        .route(
            "/api/events/{event_id}/pricing",
            post(routes::events::set_pricing),
        )
        .route(
            "/api/events/{event_id}/publish",
            post(routes::events::publish),
        )
        .route(
            "/api/events/{event_id}/cancel",
            post(routes::events::cancel),
        )
        .route(
            "/api/events/{event_id}/announcements",
            post(routes::events::announce),
        )
        .route(
            "/api/events/{event_id}/vouchers",
            get(routes::vouchers::list).post(routes::vouchers::create),
        )
        .route(
            "/api/events/{event_id}/waitlist",
            get(routes::waitlist::get)
                .post(routes::waitlist::join)
                .delete(routes::waitlist::leave),
        )
        .route(
            "/api/events/{event_id}/availability",
            get(routes::catalog::availability),
        )
        .route(
            "/api/bookings",
            post(routes::bookings::create_booking).get(routes::booking_queries::list_bookings),
        )
        .route(
            "/api/bookings/{booking_id}",
            get(routes::booking_queries::get_booking),
        )
        .route(
            "/api/bookings/{booking_id}/pay",
            post(routes::bookings::pay),
        )
        .route(
            "/api/bookings/{booking_id}/cancel",
            post(routes::bookings::cancel_booking),
        )
        .route("/api/payments/webhook", post(routes::webhook::webhook))
        .route("/api/tickets", get(routes::tickets::list_tickets))
        .route("/api/tickets/qr", post(web::qr::render))
        .route(
            "/api/tickets/{ticket_id}/transfer",
            post(routes::ticket_transfer::transfer),
        )
        .route("/api/tickets/{ticket_id}/pdf", get(routes::ticket_pdf::pdf))
        .route("/api/checkin", post(routes::tickets::check_in))
        .method_not_allowed_fallback(error::method_not_allowed)
        .fallback(error::not_found)
        // Innermost first: idempotency sees the request after rate limiting.
        .layer(middleware::from_fn_with_state(
            state.idempotency(),
            idempotency::idempotency,
        ))
        .layer(middleware::from_fn_with_state(
            state.command_limits(),
            rate_limit::limit_commands,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state.clone());

    let request_id = axum::http::HeaderName::from_static("x-request-id");
    Router::new()
        // `/ready` and `/metrics` live on the operations listener (`run`), never here.
        .merge(ops::public_router())
        .merge(api)
        .merge(web::router(state.pages.clone()))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http().make_span_with(|req: &Request| {
                        let id = req
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-");
                        tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
                    }),
                )
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(middleware::from_fn(reject_oversized)),
        )
}

/// Refuses a declared body over the limit before reading any of it.
async fn reject_oversized(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > BODY_LIMIT as u64) {
        return ApiError::PayloadTooLarge.into_response();
    }
    next.run(request).await
}

/// Builds the state from settings: connects, migrates, ensures the bootstrap admin.
pub async fn build_state(settings: &Settings) -> anyhow::Result<AppState> {
    let pool = plumbing::db::connect(
        &settings.infra.database_url,
        settings.infra.database_max_connections,
    )
    .await?;
    let jwt = Arc::new(JwtKeys::new(
        settings.auth.jwt_secret.as_bytes(),
        &settings.auth.jwt_issuer,
        &settings.auth.jwt_audience,
        settings.jwt_ttl(),
    ));
    let state = AppState {
        users: Arc::new(AggregateStore::<User>::new(pool.clone(), ())),
        shows: Arc::new(
            AggregateStore::new(pool.clone(), ()).with_upcasters(schemas::upcast::upcasters()),
        ),
        // Hot sections grow long streams: a cold load reads a snapshot and the tail. They
        // come first in a unit's lock order, so bookings batch on their section.
        inventory: Arc::new(
            AggregateStore::new(pool.clone(), ())
                .with_snapshots(100)
                .with_lock_rank(10),
        ),
        // Version-1 payment requests carried a card token; upcast, they carry its label.
        bookings: Arc::new(
            AggregateStore::new(pool.clone(), ()).with_upcasters(schemas::upcast::upcasters()),
        ),
        payments: Arc::new(
            AggregateStore::new(pool.clone(), ()).with_upcasters(schemas::upcast::upcasters()),
        ),
        vouchers: Arc::new(AggregateStore::new(pool.clone(), ())),
        voucher_books: Arc::new(AggregateStore::new(pool.clone(), ())),
        waitlists: Arc::new(AggregateStore::new(pool.clone(), ()).with_snapshots(100)),
        customers: Arc::new(AggregateStore::new(pool.clone(), ())),
        payment_timeout: Duration::from_secs(settings.payment_timeout_seconds),
        webhook_secret: Arc::new(settings.payment_webhook_secret.clone().into_bytes()),
        // Derived from the JWT secret: every instance signs and verifies the same codes.
        ticket_codes: schemas::ticket_codes::TicketCodes::from_jwt_secret(
            &settings.auth.jwt_secret,
        ),
        hold_ttl: Duration::from_secs(settings.hold_ttl_seconds),
        ticket_max_transfers: settings.ticket_max_transfers,
        // Derived from the JWT secret, so every instance computes the same request hashes.
        idempotency_key: Arc::new(format!("idempotency:{}", settings.auth.jwt_secret).into_bytes()),
        passwords: Passwords::new(&settings.auth)?,
        limits: Arc::new(rate_limit::RateLimits::new(&settings.limits)),
        joiner: waiting_room::join::Joiner::spawn(pool.clone()),
        pages: web::Pages::render(settings.notifier_public_url.as_deref())
            .context("cannot render the web app's pages")?,
        // The probe lives as long as the process (or the test's runtime).
        ops: OpsState::new(
            pool.clone(),
            settings.infra.kafka(),
            tokio_util::sync::CancellationToken::new(),
        ),
        jwt,
        pool,
    };
    if let (Some(email), Some(password)) = (
        &settings.bootstrap_admin_email,
        &settings.bootstrap_admin_password,
    ) {
        bootstrap::ensure_admin(&state, email, password)
            .await
            .context("cannot ensure the bootstrap admin")?;
    }
    Ok(state)
}

/// Runs the HTTP server until SIGTERM / Ctrl-C.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    settings.validate()?;
    let state = build_state(&settings).await?;
    let shutdown = plumbing::shutdown::on_signal();
    tokio::spawn(housekeeping(state.clone(), shutdown.clone()));
    let ops_listener = ops::spawn_listener(
        &settings.ops_addr,
        ops::router(state.ops.clone()),
        shutdown.clone(),
    )
    .await
    .context("cannot bind OPS_ADDR")?;
    let served = ops::serve(settings.http_addr.clone(), app(state), shutdown).await;
    let _ = ops_listener.await;
    served
}

/// Bounds in-memory limiter state and purges expired idempotency keys.
async fn housekeeping(state: AppState, shutdown: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        state.limits.housekeeping();
        if let Err(err) = idempotency::purge_expired(&state.pool).await {
            tracing::warn!(error = %err, "cannot purge expired idempotency keys");
        }
    }
}
