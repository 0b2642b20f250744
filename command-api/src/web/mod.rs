//! The web app (API.md, "Web app"): the pages people use, served at `/` beside the API. Each
//! page is a small HTML file (`web/pages/`) wrapped in one shell and rendered once at start;
//! the pages' scripts and styles (`web/assets/`, vendored libraries under `vendor/`) are
//! embedded into the binary, so the app needs nothing at run time but command-api itself.
//! The pages talk to the public API and the notifier's WebSocket like any other client.

pub mod assets;
pub mod qr;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;
use uuid::Uuid;

use crate::http::error::ApiError;

#[derive(RustEmbed)]
#[folder = "web/pages/"]
struct PageFiles;

/// Every page: (file under `web/pages/`, title). The page's script is `/assets/js/<file>.js`.
const PAGES: &[(&str, &str)] = &[
    ("storefront", "Events"),
    ("login", "Sign in"),
    ("register", "Create an account"),
    ("event", "Event"),
    ("booking", "Checkout"),
    ("tickets", "My tickets"),
    ("organizer", "Organizer"),
    ("organizer-event", "Live sales"),
    ("checkin", "Check-in"),
];

/// Scripts load only from this origin; the WebSocket goes to the notifier, on another port.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self' ws: wss:; \
    object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The rendered pages, by file name.
#[derive(Clone)]
pub struct Pages {
    html: Arc<HashMap<&'static str, String>>,
}

impl Pages {
    /// Renders every page into the shell. `notifier_url` is the WebSocket URL the pages
    /// connect to; without it they use port 8081 of the host they were loaded from.
    pub fn render(notifier_url: Option<&str>) -> anyhow::Result<Pages> {
        let shell = page_file("_shell")?;
        let mut html = HashMap::new();
        for (name, title) in PAGES {
            let body = page_file(name)?;
            let page = shell
                .replace("{{title}}", title)
                .replace("{{notifier_url}}", &escape(notifier_url.unwrap_or("")))
                .replace("{{page}}", name)
                .replace("{{main}}", &body);
            html.insert(*name, page);
        }
        Ok(Pages {
            html: Arc::new(html),
        })
    }

    fn page(&self, name: &str) -> Response {
        let Some(body) = self.html.get(name) else {
            return ApiError::NotFound("no such page".into()).into_response();
        };
        let mut response = Html(body.clone()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
        response
    }
}

fn page_file(name: &str) -> anyhow::Result<String> {
    let file = PageFiles::get(&format!("{name}.html"))
        .ok_or_else(|| anyhow::anyhow!("web/pages/{name}.html is missing"))?;
    Ok(String::from_utf8(file.data.into_owned())?)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A page whose path names a resource by UUID; anything else in that place is not a page.
fn with_id(pages: &Pages, name: &str, id: &str) -> Response {
    if Uuid::parse_str(id).is_err() {
        return ApiError::NotFound("no such page".into()).into_response();
    }
    pages.page(name)
}

/// The pages and their assets. Every other path stays with the API's 404.
pub fn router(pages: Pages) -> Router {
    Router::new()
        .route(
            "/",
            get(|State(p): State<Pages>| async move { p.page("storefront") }),
        )
        .route(
            "/login",
            get(|State(p): State<Pages>| async move { p.page("login") }),
        )
        .route(
            "/register",
            get(|State(p): State<Pages>| async move { p.page("register") }),
        )
        .route(
            "/tickets",
            get(|State(p): State<Pages>| async move { p.page("tickets") }),
        )
        .route(
            "/organizer",
            get(|State(p): State<Pages>| async move { p.page("organizer") }),
        )
        .route(
            "/events/{event_id}",
            get(
                |State(p): State<Pages>, Path(id): Path<String>| async move {
                    with_id(&p, "event", &id)
                },
            ),
        )
        .route(
            "/bookings/{booking_id}",
            get(
                |State(p): State<Pages>, Path(id): Path<String>| async move {
                    with_id(&p, "booking", &id)
                },
            ),
        )
        .route(
            "/organizer/events/{event_id}",
            get(
                |State(p): State<Pages>, Path(id): Path<String>| async move {
                    with_id(&p, "organizer-event", &id)
                },
            ),
        )
        .route(
            "/checkin/{event_id}",
            get(
                |State(p): State<Pages>, Path(id): Path<String>| async move {
                    with_id(&p, "checkin", &id)
                },
            ),
        )
        .route("/assets/{*path}", get(assets::serve))
        .with_state(pages)
}
