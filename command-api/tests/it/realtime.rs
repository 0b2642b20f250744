//! The notifier against the running stack: seat changes reach everyone watching an event,
//! booking and payment statuses reach their owner only, two instances deliver the same room
//! messages, and connections are authenticated before the upgrade.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use plumbing::testkit;
use reqwest::Method as M;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::purchase::{SECTION_ROWS, buyer, hold, hold_and_pay, published_show};
use crate::support::Stack;

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn ws_url(base: &str) -> String {
    format!("{}/ws", base.replacen("http://", "ws://", 1))
}

pub async fn connect(base: &str, token: &str) -> Socket {
    let mut request = ws_url(base).into_client_request().expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    socket
}

/// The HTTP status a refused upgrade answered.
async fn refused(base: &str, token: Option<&str>, origin: Option<&str>) -> u16 {
    let mut request = ws_url(base).into_client_request().expect("request");
    if let Some(token) = token {
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().expect("header"));
    }
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Ok(_) => 101,
        Err(other) => panic!("unexpected error {other}"),
    }
}

async fn send(socket: &mut Socket, value: Value) {
    socket
        .send(Message::text(value.to_string()))
        .await
        .expect("send");
}

/// Next JSON frame satisfying `want`, within `timeout`; other frames are skipped.
pub async fn next_matching(
    socket: &mut Socket,
    timeout: Duration,
    want: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no matching frame within {timeout:?}");
        match tokio::time::timeout(left, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let frame: Value = serde_json::from_str(text.as_str()).expect("json frame");
                if want(&frame) {
                    return frame;
                }
            }
            Ok(Some(Ok(_))) => {}
            Ok(other) => panic!("socket ended: {other:?}"),
            Err(_) => panic!("no matching frame within {timeout:?}"),
        }
    }
}

/// Every text frame that arrives within `window` (to check that none of a kind came).
pub async fn frames_within(socket: &mut Socket, window: Duration) -> Vec<Value> {
    let deadline = Instant::now() + window;
    let mut frames = Vec::new();
    while let Ok(Some(Ok(message))) = tokio::time::timeout(
        deadline.saturating_duration_since(Instant::now()),
        socket.next(),
    )
    .await
    {
        if let Message::Text(text) = message {
            frames.push(serde_json::from_str(text.as_str()).expect("json"));
        }
    }
    frames
}

fn changes_seat(frame: &Value, seat: &str, status: &str) -> bool {
    frame["type"] == "seat_status"
        && frame["changes"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["seat_id"] == seat && c["status"] == status)
        })
}

pub async fn subscribe(socket: &mut Socket, event: &str) {
    send(
        socket,
        json!({"type": "subscribe", "room": format!("event:{event}")}),
    )
    .await;
    let reply = next_matching(socket, Duration::from_secs(10), |f| {
        f["type"] == "subscribed" || f["type"] == "error"
    })
    .await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
}

#[tokio::test]
async fn watchers_see_seats_change_and_buyers_see_their_own_booking_only() {
    let mut stack = Stack::with_payments(&[]).await;
    let notifier = stack.start_notifier(&[]).await;
    let organizer = stack.organizer("org@example.com").await;
    let event = published_show(&stack, &organizer).await;
    let watcher_token = buyer(&stack, "watcher@example.com").await;
    let buyer_token = buyer(&stack, "buyer@example.com").await;
    let stranger_token = buyer(&stack, "stranger@example.com").await;
    let mut watcher = connect(&notifier, &watcher_token).await;
    let mut own = connect(&notifier, &buyer_token).await;
    let mut stranger = connect(&notifier, &stranger_token).await;
    subscribe(&mut watcher, &event).await;

    // Latency: from the hold's 201 to the frame announcing it.
    let mut latencies = Vec::new();
    for n in 1..=20 {
        let seat = format!("hall:R9:{}", n % 10 + 1);
        let seat = if n > 10 {
            format!("hall:R8:{}", n - 10)
        } else {
            seat
        };
        let (status, _, body) = stack
            .call(
                M::POST,
                "/api/bookings",
                &buyer_token,
                Some(json!({"event_id": event, "seats": [seat]})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let accepted = Instant::now();
        let frame = next_matching(&mut watcher, Duration::from_secs(15), |f| {
            changes_seat(f, &seat, "held")
        })
        .await;
        latencies.push(accepted.elapsed());
        assert_eq!(frame["event_id"], json!(event));
        assert!(frame["position"].as_i64().is_some_and(|p| p > 0));
        assert!(
            frame["sections"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["section_id"] == "hall"))
        );
    }
    latencies.sort();
    eprintln!(
        "REALTIME: command accepted → frame received over {} holds: median {:?}, p99 {:?}",
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 99 / 100]
    );

    // A purchase: the watcher sees the seat sold; the buyer sees their statuses.
    let (booking, _) = hold_and_pay(
        &stack,
        &buyer_token,
        &event,
        &["hall:R7:1"],
        "tok_visa",
        "confirmed",
    )
    .await;
    next_matching(&mut watcher, Duration::from_secs(15), |f| {
        changes_seat(f, "hall:R7:1", "sold")
    })
    .await;
    next_matching(&mut own, Duration::from_secs(15), |f| {
        f["type"] == "payment_status"
            && f["booking_id"] == json!(booking)
            && f["status"] == "succeeded"
    })
    .await;
    next_matching(&mut own, Duration::from_secs(15), |f| {
        f["type"] == "booking_status"
            && f["booking_id"] == json!(booking)
            && f["status"] == "confirmed"
    })
    .await;

    // A cancelled hold frees its seat for everyone watching.
    let released = hold(&stack, &buyer_token, &event, &["hall:R7:2"]).await;
    let (status, _, _) = stack
        .call(
            M::POST,
            &format!("/api/bookings/{released}/cancel"),
            &buyer_token,
            None,
        )
        .await;
    assert_eq!(status, 202);
    next_matching(&mut watcher, Duration::from_secs(15), |f| {
        changes_seat(f, "hall:R7:2", "available")
    })
    .await;

    // The organizer's announcement reaches the event's room.
    let (status, _, body) = stack
        .call(
            M::POST,
            &format!("/api/events/{event}/announcements"),
            &organizer,
            Some(json!({"message": "Doors open at 19:00"})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let announced = next_matching(&mut watcher, Duration::from_secs(15), |f| {
        f["type"] == "announcement"
    })
    .await;
    assert_eq!(
        announced,
        json!({"type": "announcement", "event_id": event, "message": "Doors open at 19:00"})
    );
    let (status, _, _) = stack
        .call(
            M::POST,
            &format!("/api/events/{event}/announcements"),
            &buyer_token,
            Some(json!({"message": "spam"})),
        )
        .await;
    assert_eq!(status, 403, "a customer cannot announce");

    // The stranger is in no room of these: nothing about the buyer's bookings reached them.
    let leaked: Vec<Value> = frames_within(&mut stranger, Duration::from_millis(500))
        .await
        .into_iter()
        .filter(|f| {
            f["type"] == "booking_status"
                || f["type"] == "payment_status"
                || f["type"] == "seat_status"
        })
        .collect();
    assert!(leaked.is_empty(), "another user received {leaked:?}");

    let stats: Value = stack
        .http
        .get(stack.notifier_stats_url(&notifier))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["connections"], 3);
    assert!(stats["messages_sent"].as_u64().is_some_and(|n| n >= 20));
    assert_eq!(stats["dropped_slow_clients"], 0);
}

/// An expiry writes only the booking (the lapsed hold already counts as free in its
/// section): watchers still see the seat freed, from the booking's seats.
#[tokio::test]
async fn a_lapsed_hold_frees_its_seat_on_every_watchers_map() {
    let mut stack = Stack::with_payments(&[("HOLD_TTL_SECONDS", "3")]).await;
    let notifier = stack.start_notifier(&[]).await;
    let organizer = stack.organizer("org-lapse@example.com").await;
    let event = published_show(&stack, &organizer).await;
    let watcher_token = buyer(&stack, "watcher-lapse@example.com").await;
    let buyer_token = buyer(&stack, "buyer-lapse@example.com").await;
    let mut watcher = connect(&notifier, &watcher_token).await;
    let mut own = connect(&notifier, &buyer_token).await;
    subscribe(&mut watcher, &event).await;

    let booking = hold(&stack, &buyer_token, &event, &["hall:R3:3", "hall:R3:4"]).await;
    next_matching(&mut watcher, Duration::from_secs(15), |f| {
        changes_seat(f, "hall:R3:3", "held")
    })
    .await;
    let freed = next_matching(&mut watcher, Duration::from_secs(30), |f| {
        changes_seat(f, "hall:R3:3", "available")
    })
    .await;
    assert!(changes_seat(&freed, "hall:R3:4", "available"), "{freed}");
    let hall = freed["sections"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["section_id"] == "hall"))
        .unwrap_or_else(|| panic!("the hall's count travels with the seats: {freed}"));
    assert_eq!(hall["available"], json!(SECTION_ROWS * 10), "{freed}");
    next_matching(&mut own, Duration::from_secs(15), |f| {
        f["type"] == "booking_status"
            && f["booking_id"] == json!(booking)
            && f["status"] == "expired"
    })
    .await;
    // And the seats can be held again at once.
    hold(&stack, &watcher_token, &event, &["hall:R3:3", "hall:R3:4"]).await;
}

#[tokio::test]
async fn two_notifier_instances_deliver_the_same_room_messages() {
    let mut stack = Stack::with_payments(&[]).await;
    let first = stack.start_notifier(&[]).await;
    let second = stack.start_notifier(&[]).await;
    let organizer = stack.organizer("org@example.com").await;
    let event = published_show(&stack, &organizer).await;
    let a = buyer(&stack, "a@example.com").await;
    let b = buyer(&stack, "b@example.com").await;
    let mut on_first = connect(&first, &a).await;
    let mut on_second = connect(&second, &b).await;
    subscribe(&mut on_first, &event).await;
    subscribe(&mut on_second, &event).await;
    hold(&stack, &a, &event, &["hall:R0:5"]).await;
    for socket in [&mut on_first, &mut on_second] {
        next_matching(socket, Duration::from_secs(15), |f| {
            changes_seat(f, "hall:R0:5", "held")
        })
        .await;
    }
}

#[tokio::test]
async fn connections_are_authenticated_before_the_upgrade() {
    let mut stack = Stack::with_payments(&[]).await;
    let notifier = stack
        .start_notifier(&[("WS_ALLOWED_ORIGINS", "https://tickets.example")])
        .await;
    let token = buyer(&stack, "ws@example.com").await;
    let now = chrono::Utc::now().timestamp();
    let forge = |claims: Value, secret: &str| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("token")
    };
    let sub = uuid::Uuid::new_v4();
    let expired = forge(
        json!({"sub": sub, "roles": [], "iss": "ticketing", "aud": "ticketing-api", "iat": now - 600, "exp": now - 120}),
        testkit::jwt_secret(),
    );
    let wrong_audience = forge(
        json!({"sub": sub, "roles": [], "iss": "ticketing", "aud": "other", "iat": now, "exp": now + 600}),
        testkit::jwt_secret(),
    );
    let forged = forge(
        json!({"sub": sub, "roles": [], "iss": "ticketing", "aud": "ticketing-api", "iat": now, "exp": now + 600}),
        "not-the-secret-not-the-secret-not-the-secret",
    );
    assert_eq!(refused(&notifier, None, None).await, 401, "no token");
    assert_eq!(refused(&notifier, Some(&forged), None).await, 401, "forged");
    assert_eq!(
        refused(&notifier, Some(&expired), None).await,
        401,
        "expired"
    );
    assert_eq!(
        refused(&notifier, Some(&wrong_audience), None).await,
        401,
        "wrong audience"
    );
    assert_eq!(
        refused(&notifier, Some(&token), Some("https://evil.example")).await,
        403,
        "foreign origin"
    );
    assert_eq!(
        refused(&notifier, Some(&token), Some("https://tickets.example")).await,
        101,
        "allowed origin"
    );

    // ?token= works too; a bad subscribe answers an error frame and the connection goes on.
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("{}?token={token}", ws_url(&notifier)))
            .await
            .expect("connect with query token");
    send(
        &mut socket,
        json!({"type": "subscribe", "room": "user:someone-else"}),
    )
    .await;
    let error = next_matching(&mut socket, Duration::from_secs(5), |f| {
        f["type"] == "error"
    })
    .await;
    assert_eq!(error["code"], "bad_room");
    send(&mut socket, json!({"nonsense": true})).await;
    next_matching(&mut socket, Duration::from_secs(5), |f| {
        f["type"] == "error"
    })
    .await;
    // An event that does not exist is no room to join.
    send(
        &mut socket,
        json!({"type": "subscribe", "room": format!("event:{}", uuid::Uuid::new_v4())}),
    )
    .await;
    let error = next_matching(&mut socket, Duration::from_secs(5), |f| {
        f["type"] == "error"
    })
    .await;
    assert_eq!(error["code"], "unknown_room");

    // A connection whose token expires is closed with 4001, not left open past it.
    let issued = chrono::Utc::now().timestamp();
    let short_lived = forge(
        json!({"sub": sub, "roles": [], "iss": "ticketing", "aud": "ticketing-api", "iat": issued, "exp": issued + 3}),
        testkit::jwt_secret(),
    );
    let mut expiring = connect(&notifier, &short_lived).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "still open 20 s after the token expired");
        match tokio::time::timeout(left, expiring.next()).await {
            Ok(Some(Ok(Message::Close(Some(frame))))) => break u16::from(frame.code),
            Ok(Some(Ok(_))) => continue,
            other => panic!("ended without a close frame: {other:?}"),
        }
    };
    assert_eq!(code, 4001, "close code at token expiry");
    assert!(
        chrono::Utc::now().timestamp() >= issued + 2,
        "closed before the token expired"
    );
}

/// A draft event of `organizer`'s (visible to them only); returns its id.
async fn draft(stack: &Stack, organizer: &str, name: &str) -> String {
    let starts = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    let (status, _, body) = stack
        .call(
            M::POST,
            "/api/events",
            organizer,
            Some(json!({"name": name, "venue": "Hall", "starts_at": starts})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["event_id"].as_str().expect("event id").to_owned()
}

/// The answer to a `subscribe` to `event`: `subscribed`, or the `error` frame.
async fn try_subscribe(socket: &mut Socket, event: &str) -> Value {
    send(
        socket,
        json!({"type": "subscribe", "room": format!("event:{event}")}),
    )
    .await;
    next_matching(socket, Duration::from_secs(10), |f| {
        f["type"] == "subscribed" || f["type"] == "error"
    })
    .await
}

#[tokio::test]
async fn the_21st_subscription_gets_an_error_frame_and_others_drafts_are_unknown_rooms() {
    let mut stack = Stack::with_payments(&[]).await;
    let notifier = stack.start_notifier(&[]).await;
    let organizer = stack.organizer("many@example.com").await;
    let other = stack.organizer("other@example.com").await;
    let mut events = Vec::new();
    for n in 0..21 {
        events.push(draft(&stack, &organizer, &format!("Draft {n}")).await);
    }
    let foreign = draft(&stack, &other, "Not yours").await;
    let mut socket = connect(&notifier, &organizer).await;

    // Someone else's draft does not exist for this caller; one's own drafts may be watched.
    let refused = try_subscribe(&mut socket, &foreign).await;
    assert_eq!(refused["code"], "unknown_room", "{refused}");
    for event in &events[..20] {
        subscribe(&mut socket, event).await;
    }
    // Subscribing again to a room already joined takes no new place.
    subscribe(&mut socket, &events[0]).await;
    let refused = try_subscribe(&mut socket, &events[20]).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "too_many_subscriptions", "{refused}");
    assert!(refused["message"].is_string(), "{refused}");

    // The connection stays usable: leaving a room makes space for another.
    send(
        &mut socket,
        json!({"type": "unsubscribe", "room": format!("event:{}", events[0])}),
    )
    .await;
    next_matching(&mut socket, Duration::from_secs(10), |f| {
        f["type"] == "unsubscribed"
    })
    .await;
    subscribe(&mut socket, &events[20]).await;
}

#[tokio::test]
async fn a_client_sending_faster_than_its_rate_limit_gets_rate_limited_error_frames() {
    let mut stack = Stack::with_payments(&[]).await;
    let notifier = stack
        .start_notifier(&[
            ("WS_CLIENT_MESSAGES_PER_SECOND", "1"),
            ("WS_CLIENT_MESSAGES_BURST", "5"),
        ])
        .await;
    let token = buyer(&stack, "flood@example.com").await;
    let mut socket = connect(&notifier, &token).await;
    let room = format!("event:{}", uuid::Uuid::new_v4());
    for _ in 0..20 {
        send(&mut socket, json!({"type": "unsubscribe", "room": room})).await;
    }
    let mut answers = Vec::new();
    while answers.len() < 20 {
        answers.push(
            next_matching(&mut socket, Duration::from_secs(10), |f| {
                f["type"] == "unsubscribed" || f["type"] == "error"
            })
            .await,
        );
    }
    let limited = answers
        .iter()
        .filter(|f| f["type"] == "error" && f["code"] == "rate_limited")
        .count();
    // The burst is served; most of the rest (a token refills each second) is refused.
    assert!(
        (10..=15).contains(&limited),
        "{limited} of 20 rate limited: {answers:?}"
    );
    assert_eq!(answers[0]["type"], "unsubscribed", "the burst is served");
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn a_client_that_never_reads_is_dropped_and_others_keep_receiving() {
    let mut stack = Stack::with_payments(&[]).await;
    let notifier = stack.start_notifier(&[("WS_CLIENT_BUFFER", "4")]).await;
    let pid = stack.notifiers[0].pid();
    let organizer = stack.organizer("org@example.com").await;
    let event = published_show(&stack, &organizer).await;
    let token = buyer(&stack, "reader@example.com").await;
    let slow_token = buyer(&stack, "sleeper@example.com").await;

    // The slow client: a tiny receive buffer and a socket nobody reads, so the server's
    // writes stall after a few kilobytes.
    let addr: std::net::SocketAddr = notifier
        .trim_start_matches("http://")
        .parse()
        .expect("addr");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let stream = socket.connect(addr).await.expect("tcp");
    let mut request = ws_url(&notifier).into_client_request().expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {slow_token}").parse().expect("header"),
    );
    let (mut slow, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream))
        .await
        .expect("handshake");
    subscribe(&mut slow, &event).await;
    let mut reader = connect(&notifier, &token).await;
    subscribe(&mut reader, &event).await;

    let before = rss_kib(pid);
    let message = "x".repeat(900);
    let mut dropped = false;
    let mut sent = 0;
    for n in 0..600 {
        let (status, _, _) = stack
            .call(
                M::POST,
                &format!("/api/events/{event}/announcements"),
                &organizer,
                Some(json!({"message": format!("{n} {message}")})),
            )
            .await;
        assert_eq!(status, 202);
        sent = n;
        // The reader keeps up: it gets every announcement.
        next_matching(&mut reader, Duration::from_secs(15), |f| {
            f["type"] == "announcement"
                && f["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(&format!("{n} ")))
        })
        .await;
        let stats: Value = stack
            .http
            .get(stack.notifier_stats_url(&notifier))
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("json");
        if stats["dropped_slow_clients"] == 1 {
            assert_eq!(stats["connections"], 1, "only the reader is left");
            dropped = true;
            break;
        }
    }
    assert!(
        dropped,
        "the client that never reads was not dropped after {sent} announcements"
    );
    let grown = rss_kib(pid).saturating_sub(before);
    eprintln!(
        "SLOW CLIENT: dropped after {sent} announcements of 1 kB; notifier RSS grew {grown} KiB"
    );
    assert!(grown < 64 * 1024, "notifier memory grew by {grown} KiB");
}
