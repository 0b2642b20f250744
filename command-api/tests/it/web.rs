//! The web app: its pages and assets as command-api serves them (in process), the QR
//! endpoint, and the six browser flows of issue 16 — Playwright for Python driving Debian's
//! headless Chromium (`tests/browser/flows.py`) against one running stack.

use std::process::Stdio;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use plumbing::testkit;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tower::ServiceExt;

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, Stack, TestApp, mint_token};

async fn fetch(
    app: &TestApp,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = app
        .app
        .clone()
        .oneshot(request.body(Body::from(body.to_owned())).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, headers, bytes.to_vec())
}

const PAGES: &[(&str, &str)] = &[
    ("/", "storefront"),
    ("/login", "login"),
    ("/register", "register"),
    ("/tickets", "tickets"),
    ("/organizer", "organizer"),
    ("/events/6f1c1c9e-8c2a-4d55-9b3e-0a7d2c1e5f10", "event"),
    ("/bookings/6f1c1c9e-8c2a-4d55-9b3e-0a7d2c1e5f10", "booking"),
    (
        "/organizer/events/6f1c1c9e-8c2a-4d55-9b3e-0a7d2c1e5f10",
        "organizer-event",
    ),
    ("/checkin/6f1c1c9e-8c2a-4d55-9b3e-0a7d2c1e5f10", "checkin"),
];

#[tokio::test]
async fn every_page_is_html_with_its_own_script_and_a_content_security_policy() {
    let app = TestApp::new().await;
    for (path, page) in PAGES {
        let (status, headers, body) = fetch(&app, "GET", path, &[], "").await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let html = String::from_utf8(body).expect("utf-8");
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .expect("ascii")
                .starts_with("text/html"),
            "{path}"
        );
        let csp = headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .expect("ascii");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(
            html.contains(&format!("src=\"/assets/js/{page}.js\"")),
            "{path} loads its script"
        );
        assert!(!html.contains("{{"), "{path}: an unfilled placeholder");
        // Nothing comes from another origin (the app works without internet).
        assert!(
            !html.contains("https://") && !html.contains("http://"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn paths_that_are_neither_a_page_nor_an_api_route_answer_404() {
    let app = TestApp::new().await;
    for path in [
        "/nowhere",
        "/events",
        "/events/not-a-uuid",
        "/bookings/42",
        "/organizer/events/x",
        "/checkin/",
        "/assets/js/missing.js",
        "/assets/../Cargo.toml",
        "/index.html",
    ] {
        let (status, headers, _) = fetch(&app, "GET", path, &[], "").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "application/problem+json",
            "{path}"
        );
    }
}

#[tokio::test]
async fn assets_are_served_with_their_type_and_revalidated_by_etag() {
    let app = TestApp::new().await;
    for (path, kind) in [
        ("/assets/js/seatmap.js", "text/javascript"),
        ("/assets/app.css", "text/css"),
        ("/assets/vendor/uplot.esm.js", "text/javascript"),
        (
            "/assets/vendor/reconnecting-websocket.js",
            "text/javascript",
        ),
        ("/assets/logo.svg", "image/svg+xml"),
    ] {
        let (status, headers, body) = fetch(&app, "GET", path, &[], "").await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .expect("ascii")
                .starts_with(kind),
            "{path}"
        );
        assert!(!body.is_empty(), "{path}");
        let etag = headers[header::ETAG].to_str().expect("ascii").to_owned();
        let (status, _, body) = fetch(&app, "GET", path, &[("if-none-match", &etag)], "").await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(body.is_empty(), "{path}");
    }
}

#[tokio::test]
async fn a_ticket_code_is_drawn_as_an_svg_qr_code_and_a_forged_one_is_refused() {
    let app = TestApp::new().await;
    let token = format!("Bearer {}", mint_token(uuid::Uuid::new_v4(), &[]));
    let event_id = uuid::Uuid::new_v4();
    let codes = schemas::ticket_codes::TicketCodes::from_jwt_secret(testkit::jwt_secret());
    let code = codes.sign(event_id, uuid::Uuid::new_v4(), 0);
    let headers = [
        ("content-type", "application/json"),
        ("authorization", token.as_str()),
    ];
    let body = serde_json::json!({"event_id": event_id, "code": code}).to_string();
    let (status, answer_headers, svg) =
        fetch(&app, "POST", "/api/tickets/qr", &headers, &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer_headers[header::CONTENT_TYPE], "image/svg+xml");
    let svg = String::from_utf8(svg).expect("utf-8");
    assert!(svg.contains("<svg") && svg.contains("<path"), "{svg}");
    assert_eq!(svg, command_api::web::qr::svg_of(&code).expect("svg"));

    // Another event's code, a made-up code, no token.
    for (body, auth, expected) in [
        (
            serde_json::json!({"event_id": uuid::Uuid::new_v4(), "code": code}),
            true,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            serde_json::json!({"event_id": event_id, "code": "print me anything"}),
            true,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            serde_json::json!({"event_id": event_id, "code": code}),
            false,
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        let mut headers = vec![("content-type", "application/json")];
        if auth {
            headers.push(("authorization", token.as_str()));
        }
        let (status, answer_headers, _) =
            fetch(&app, "POST", "/api/tickets/qr", &headers, &body.to_string()).await;
        assert_eq!(status, expected, "{body}");
        assert_eq!(
            answer_headers[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }
}

/// Where the flows' screenshots go: `<target>/web-screenshots`.
fn screenshot_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test binary> → target/web-screenshots
    exe.ancestors()
        .nth(3)
        .expect("target folder")
        .join("web-screenshots")
}

/// A port nothing listens on now, for a notifier whose address the pages must know before
/// it starts (and which a restart must keep).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The notifier on `port` (the pages' configured WebSocket address, kept across restarts),
/// accepting browsers from the app's own origin only.
async fn start_notifier(stack: &mut Stack, port: u16, app_origin: &str) {
    let addr = format!("127.0.0.1:{port}");
    stack
        .start_notifier(&[
            ("NOTIFIER_ADDR", addr.as_str()),
            ("WS_ALLOWED_ORIGINS", app_origin),
            ("WS_QUEUE_POLL_MS", "300"),
        ])
        .await;
}

#[tokio::test]
async fn buyers_organizers_and_door_staff_complete_their_flows_in_a_real_browser() {
    let python = std::env::var("SMTP_SINK_PYTHON")
        .expect("SMTP_SINK_PYTHON must name the tools venv's python with Playwright (compose/test.sh sets it)");
    let axe = std::env::var("AXE_CORE_JS").expect(
        "AXE_CORE_JS must name axe-core's axe.min.js (compose/test.sh fetches it from npm)",
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let started = tokio::time::Instant::now();

    let notifier_port = free_port();
    let notifier_url = format!("ws://127.0.0.1:{notifier_port}/ws");
    let mut stack = Stack::with_payments(&[
        ("NOTIFIER_PUBLIC_URL", notifier_url.as_str()),
        ("RATE_LIMIT_COMMANDS_PER_SECOND", "1000"),
        ("RATE_LIMIT_COMMANDS_BURST", "1000"),
    ])
    .await;
    let app_url = stack.url("");
    start_notifier(&mut stack, notifier_port, &app_url).await;
    stack.start_admitter().await;
    eprintln!("WEB stack up in {:.1} s", started.elapsed().as_secs_f64());

    let shots = screenshot_dir();
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    let mut flows = Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/flows.py"
        ))
        .env("APP_URL", &app_url)
        .env("ADMIN_EMAIL", ADMIN_EMAIL)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("JWT_SECRET", testkit::jwt_secret())
        .env("AXE_JS", &axe)
        .env("CHROMIUM", &chromium)
        .env("SCREENSHOTS", &shots)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the browser flows start (is Playwright in the tools venv?)");
    let mut to_flows = flows.stdin.take().expect("stdin");
    let mut lines = BufReader::new(flows.stdout.take().expect("stdout")).lines();
    let mut metrics = Vec::new();
    let run = async {
        while let Some(line) = lines.next_line().await.expect("read the flows' output") {
            eprintln!("[browser] {line}");
            match line.as_str() {
                "KILL_NOTIFIER" => {
                    let notifier = stack.notifiers.pop().expect("a notifier runs");
                    notifier.kill().await;
                }
                "START_NOTIFIER" => start_notifier(&mut stack, notifier_port, &app_url).await,
                other => {
                    if other.starts_with("METRIC ")
                        || other.starts_with("AXE ")
                        || other.starts_with("FLOW ")
                    {
                        metrics.push(other.to_owned());
                    }
                    continue;
                }
            }
            to_flows
                .write_all(b"DONE\n")
                .await
                .expect("answer the flows");
            to_flows.flush().await.expect("flush");
        }
        flows.wait().await.expect("the flows finish")
    };
    let status = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the browser flows finish within 5 minutes");
    eprintln!("WEB results:\n  {}", metrics.join("\n  "));
    eprintln!(
        "WEB browser flows took {:.1} s in all (stack start included); screenshots in {}",
        started.elapsed().as_secs_f64(),
        shots.display()
    );
    assert!(
        status.success(),
        "a browser flow failed (see [browser] lines above)"
    );
}
