//! The WebSocket protocol of `/ws` as a real client library speaks it (tokio-tungstenite):
//! masked messages split over fragments, ping and pong, the closing handshake, and the close
//! for a message over the size limit. The browser side is covered by command-api's browser
//! flows (Chromium), the close at token expiry by command-api's realtime tests.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use plumbing::testkit::{self, Service, TestDb};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A notifier on a fresh database and topic prefix (no relay: nothing is published).
struct Notifier {
    _db: TestDb,
    service: Service,
}

impl Notifier {
    async fn start() -> Notifier {
        let db = testkit::fresh_database().await;
        let env = testkit::service_env(&db.url, &testkit::unique_prefix());
        let service = Service::start("notifier", &env, true).await;
        Notifier { _db: db, service }
    }

    async fn connect(&self) -> Socket {
        let now = chrono::Utc::now().timestamp();
        let claims = json!({"sub": uuid::Uuid::new_v4(), "roles": [], "iss": "ticketing",
                            "aud": "ticketing-api", "iat": now, "exp": now + 600});
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(testkit::jwt_secret().as_bytes()),
        )
        .expect("token");
        let url = format!(
            "{}/ws?token={token}",
            self.service.url().replacen("http://", "ws://", 1)
        );
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        socket
    }
}

/// The next message other than a server ping, within 10 s.
async fn next(socket: &mut Socket) -> Message {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, socket.next()).await {
            Ok(Some(Ok(Message::Ping(_)))) => continue,
            Ok(Some(Ok(message))) => return message,
            other => panic!("no message within 10 s: {other:?}"),
        }
    }
}

/// The code of the close frame that ends the connection (other messages skipped).
async fn close_code(socket: &mut Socket) -> CloseCode {
    loop {
        match next(socket).await {
            Message::Close(Some(frame)) => return frame.code,
            Message::Close(None) => panic!("a close frame without a code"),
            _ => continue,
        }
    }
}

#[tokio::test]
async fn a_text_message_split_over_masked_fragments_is_read_as_one() {
    let notifier = Notifier::start().await;
    let mut socket = notifier.connect().await;
    let room = format!("event:{}", uuid::Uuid::new_v4());
    let text = json!({"type": "subscribe", "room": room}).to_string();
    let (first, rest) = text.split_at(7);
    let (middle, last) = rest.split_at(10);
    // The client library masks every frame it sends, as a browser does.
    for (part, opcode, fin) in [
        (first, OpCode::Data(Data::Text), false),
        (middle, OpCode::Data(Data::Continue), false),
        (last, OpCode::Data(Data::Continue), true),
    ] {
        socket
            .send(Message::Frame(Frame::message(part.to_owned(), opcode, fin)))
            .await
            .expect("send a fragment");
    }
    // Only the whole message names a room: an event that does not exist is `unknown_room`
    // (a fragment read on its own would have been `bad_message`).
    let Message::Text(reply) = next(&mut socket).await else {
        panic!("expected a text reply");
    };
    let reply: Value = serde_json::from_str(&reply).expect("a JSON reply");
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["code"], "unknown_room", "{reply}");
}

#[tokio::test]
async fn a_ping_is_answered_with_a_pong_carrying_its_payload() {
    let notifier = Notifier::start().await;
    let mut socket = notifier.connect().await;
    socket
        .send(Message::Ping("are you there".into()))
        .await
        .expect("ping");
    assert_eq!(
        next(&mut socket).await,
        Message::Pong("are you there".into())
    );
}

#[tokio::test]
async fn a_client_close_is_answered_with_the_servers_close_and_the_end_of_the_stream() {
    let notifier = Notifier::start().await;
    let mut socket = notifier.connect().await;
    socket
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: Utf8Bytes::from_static("leaving"),
        })))
        .await
        .expect("close");
    assert_eq!(close_code(&mut socket).await, CloseCode::Normal);
    let end = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("the stream ends after the closing handshake");
    assert!(
        matches!(end, None | Some(Err(_))),
        "nothing after the close: {end:?}"
    );
}

#[tokio::test]
async fn a_client_message_over_16_kib_is_closed_with_1009() {
    let notifier = Notifier::start().await;
    let mut socket = notifier.connect().await;
    let oversize = json!({"type": "subscribe", "room": "x".repeat(17 * 1024)}).to_string();
    socket
        .send(Message::text(oversize))
        .await
        .expect("send the oversize message");
    assert_eq!(close_code(&mut socket).await, CloseCode::Size);

    // The limit is per connection: another one is served as before.
    let mut other = notifier.connect().await;
    other
        .send(Message::Ping("still".into()))
        .await
        .expect("ping");
    assert_eq!(next(&mut other).await, Message::Pong("still".into()));
}

#[tokio::test]
async fn a_user_past_the_connection_cap_is_refused_with_429_until_one_closes() {
    let db = testkit::fresh_database().await;
    let mut env = testkit::service_env(&db.url, &testkit::unique_prefix());
    env.insert("WS_MAX_CONNECTIONS_PER_USER".into(), "2".into());
    let service = Service::start("notifier", &env, true).await;
    let now = chrono::Utc::now().timestamp();
    let user = uuid::Uuid::new_v4();
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": user, "roles": [], "iss": "ticketing", "aud": "ticketing-api",
                "iat": now, "exp": now + 600}),
        &jsonwebtoken::EncodingKey::from_secret(testkit::jwt_secret().as_bytes()),
    )
    .expect("token");
    let url = format!(
        "{}/ws?token={token}",
        service.url().replacen("http://", "ws://", 1)
    );
    let (mut first, _) = tokio_tungstenite::connect_async(&url).await.expect("first");
    let (_second, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("second");
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            assert!(response.headers().contains_key("retry-after"));
        }
        other => panic!("the third connection was not refused with 429: {other:?}"),
    }
    // Closing one frees its slot (polled: the server notices the close asynchronously).
    first.close(None).await.expect("close");
    testkit::eventually(
        "the closed connection's slot to be given back",
        Duration::from_secs(10),
        || async {
            tokio_tungstenite::connect_async(&url)
                .await
                .ok()
                .map(|_| ())
        },
    )
    .await;
}
