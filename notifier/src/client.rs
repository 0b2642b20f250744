//! What a client may ask over its socket: `subscribe` / `unsubscribe` to `event:{id}` rooms,
//! at most `max_subscriptions` of them, each naming an event the caller may see (a draft only
//! to its organizer and admins, as on the HTTP side), and at a bounded rate. Every refusal is
//! an `error` frame (API.md) and the connection stays usable.

use std::time::Duration;

use domain::show::{Show, ShowStatus};
use plumbing::jwt::AccessClaims;
use plumbing::store::AggregateStore;
use schemas::ws::{ClientMessage, ServerMessage};
use tokio::time::Instant;
use uuid::Uuid;

/// What a client message asks of its connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    Join(String),
    Leave(String),
}

/// An `error` frame's code and message.
pub type Refusal = (&'static str, &'static str);

pub fn error_frame((code, message): Refusal) -> String {
    ServerMessage::Error {
        code: code.to_owned(),
        message: message.to_owned(),
    }
    .to_frame()
}

/// Parses a client text frame into a request for an `event:{uuid}` room.
pub fn parse(text: &str) -> Result<(Request, Uuid), Refusal> {
    let message = serde_json::from_str::<ClientMessage>(text).map_err(|_| {
        (
            "bad_message",
            "expected {\"type\": \"subscribe\" | \"unsubscribe\", \"room\": \"event:{id}\"}",
        )
    })?;
    let (ClientMessage::Subscribe { room } | ClientMessage::Unsubscribe { room }) = &message;
    let event = event_of(room).ok_or(("bad_room", "room must be event:{event_id}"))?;
    Ok(match message {
        ClientMessage::Subscribe { room } => (Request::Join(room), event),
        ClientMessage::Unsubscribe { room } => (Request::Leave(room), event),
    })
}

/// `event:{uuid}` rooms are the only ones a client may join; `user:` rooms are implicit.
fn event_of(room: &str) -> Option<Uuid> {
    room.strip_prefix("event:")
        .and_then(|id| Uuid::parse_str(id).ok())
}

/// Whether the caller may watch `event`: it exists on the write side and is published (or
/// cancelled), or it is a draft of the caller's own, or the caller is an admin.
pub async fn may_watch(
    shows: &AggregateStore<Show>,
    claims: &AccessClaims,
    event: Uuid,
) -> Result<(), Refusal> {
    let unknown = ("unknown_room", "no such event, or it is not visible to you");
    // A published event stays visible, so a cached copy of one is good enough; anything else
    // is read again (a draft may have been published since).
    let (show, _) = shows
        .cached(&event.to_string(), Duration::MAX, |s| {
            s.exists() && s.status != ShowStatus::Draft
        })
        .await
        .map_err(|err| {
            tracing::warn!(error = %err, "cannot read an event to check a subscription");
            ("unavailable", "cannot check the event now; try again")
        })?;
    let visible = show.status != ShowStatus::Draft
        || show.organizer_id == Some(claims.sub)
        || claims.roles.iter().any(|r| r == "admin");
    if show.exists() && visible {
        Ok(())
    } else {
        Err(unknown)
    }
}

/// A token bucket on the frames a client sends: `burst` at once, `per_second` sustained.
pub struct RateLimit {
    tokens: f32,
    burst: f32,
    per_second: f32,
    last: Instant,
}

impl RateLimit {
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            tokens: burst as f32,
            burst: burst.max(1) as f32,
            per_second: per_second as f32,
            last: Instant::now(),
        }
    }

    /// Takes a token at `now`; `false` when the client is over its rate.
    pub fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f32();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

pub const RATE_LIMITED: Refusal = (
    "rate_limited",
    "too many messages; this one was ignored, slow down",
);
pub const TOO_MANY_SUBSCRIPTIONS: Refusal = (
    "too_many_subscriptions",
    "at most 20 rooms per connection; unsubscribe from one first",
);

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = "2f6c1a3e-0d3b-4d7a-9f77-2b9c0f3c7a10";

    #[test]
    fn only_event_rooms_with_uuids_are_joinable() {
        let room = format!("event:{EVENT}");
        let subscribe = format!(r#"{{"type":"subscribe","room":"{room}"}}"#);
        assert_eq!(
            parse(&subscribe),
            Ok((Request::Join(room), EVENT.parse().expect("uuid")))
        );
        for room in ["event:nope", "event:", &format!("user:{EVENT}")] {
            let text = format!(r#"{{"type":"subscribe","room":"{room}"}}"#);
            assert_eq!(parse(&text).map_err(|r| r.0), Err("bad_room"), "{room}");
        }
        assert_eq!(parse("{}").map_err(|r| r.0), Err("bad_message"));
    }

    #[test]
    fn the_rate_limit_allows_a_burst_then_the_sustained_rate() {
        let start = Instant::now();
        let mut limit = RateLimit::new(10, 3);
        assert!((0..3).all(|_| limit.allow(start)));
        assert!(!limit.allow(start));
        assert!(limit.allow(start + Duration::from_millis(100)));
        assert!(!limit.allow(start + Duration::from_millis(100)));
    }
}
