//! One WebSocket connection after the upgrade: its rooms' frames out, its client's
//! messages in, heartbeats, and the close at token expiry — one task per connection, on the
//! upgraded socket itself. It reads every room it is in through a cursor (`rooms`) and
//! writes each frame's shared, already encoded bytes (`wire`): nothing is copied, queued or
//! buffered for it, and an idle connection holds no buffer at all.
//!
//! Falling behind is handled per room: lagging in an event room means a seat-map resync
//! instead of the skipped frames, lagging in the connection's own room, or a write that
//! does not complete within `send_timeout` (a client that stopped reading), drops it.

use std::sync::Arc;

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use plumbing::jwt::AccessClaims;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_stream::StreamMap;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::client::{self, RateLimit, Request};
use crate::rooms::{Frame, Hub, Room};
use crate::wire::{self, Decoder, Incoming};
use crate::ws::WsState;

/// Frames already waiting that are written before the connection looks at its client again.
const BATCH: usize = 16;
/// A client message may be this long (they are a few dozen bytes).
const MAX_MESSAGE: usize = 16 * 1024;
/// Bytes read from the client at a time.
const READ_CHUNK: usize = 128;

type Socket = TokioIo<Upgraded>;

/// The rooms a connection is in, each read through its own cursor.
struct Rooms {
    hub: Arc<Hub>,
    streams: StreamMap<Arc<str>, BroadcastStream<Frame>>,
    joined: Vec<(Arc<str>, Arc<Room>)>,
}

impl Rooms {
    fn new(hub: Arc<Hub>, own: &str) -> Self {
        let mut rooms = Self {
            hub,
            streams: StreamMap::new(),
            joined: Vec::new(),
        };
        rooms.join(own);
        rooms
    }

    fn is_in(&self, name: &str) -> bool {
        self.joined.iter().any(|(n, _)| &**n == name)
    }

    fn join(&mut self, name: &str) {
        if self.is_in(name) {
            return;
        }
        let member = self.hub.join(name);
        self.streams
            .insert(member.name.clone(), BroadcastStream::new(member.rx));
        self.joined.push((member.name, member.room));
    }

    fn leave(&mut self, name: &str) {
        if let Some(at) = self.joined.iter().position(|(n, _)| &**n == name) {
            let (name, room) = self.joined.swap_remove(at);
            self.streams.remove(&name);
            self.hub.leave(&name, &room);
        }
    }

    fn room(&self, name: &str) -> Option<&Arc<Room>> {
        self.joined
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, room)| room)
    }

    /// After a lag: a new cursor at the room's newest frame (the skipped ones are dropped,
    /// not replayed) and the resync frame built after it, so nothing it covers is missed;
    /// with the `seq` of the newest frame it stands for.
    fn resync(&mut self, name: &Arc<str>) -> Option<(u64, Bytes)> {
        let (_, room) = self.joined.iter().find(|(n, _)| n == name)?;
        self.streams
            .insert(name.clone(), BroadcastStream::new(room.subscribe()));
        let head = room.head();
        room.resync().map(|frame| (head, frame))
    }

    fn leave_all(mut self) {
        self.streams.clear();
        for (name, room) in std::mem::take(&mut self.joined) {
            self.hub.leave(&name, &room);
        }
    }

    /// Event rooms joined (the connection's own room is not counted).
    fn subscriptions(&self) -> usize {
        self.joined.len().saturating_sub(1)
    }
}

/// Why a connection ends: with a close frame to send, or silently (the socket is gone or
/// stuck).
type End = Option<(u16, &'static str)>;

const TOO_SLOW: End = Some((1008, "too slow: frames were not read in time"));

pub async fn run(socket: Upgraded, state: WsState, claims: AccessClaims) {
    let mut socket = TokioIo::new(socket);
    let config = state.config.clone();
    state.hub.connected();
    let mut rooms = Rooms::new(state.hub.clone(), &format!("user:{}", claims.sub));
    let lifetime = std::time::Duration::from_secs(
        claims
            .exp
            .saturating_sub(chrono::Utc::now().timestamp().max(0) as u64),
    );
    // One timer for both the next ping and the token's expiry: each costs memory in every
    // connection's task.
    let expires_at = Instant::now() + lifetime;
    let timer = tokio::time::sleep_until((Instant::now() + config.heartbeat).min(expires_at));
    tokio::pin!(timer);
    let mut limit = RateLimit::new(
        config.client_messages_per_second,
        config.client_messages_burst,
    );
    let mut decoder = Decoder::new(MAX_MESSAGE);
    let mut chunk = [0u8; READ_CHUNK];
    let mut last_seen = Instant::now();
    let end: End = 'connection: loop {
        tokio::select! {
            next = rooms.streams.next() => {
                let Some(first) = next else { break None };
                let written = deliver(&mut socket, &mut rooms, &state.hub, first);
                match tokio::time::timeout(config.send_timeout, written).await {
                    Ok(Ok(())) => {}
                    Ok(Err(end)) => break end,
                    Err(_) => {
                        state.hub.dropped_slow();
                        break None;
                    }
                }
            }
            read = socket.read(&mut chunk) => {
                let n = match read {
                    Ok(0) | Err(_) => break None,
                    Ok(n) => n,
                };
                last_seen = Instant::now();
                decoder.push(&chunk[..n]);
                loop {
                    let reply = match decoder.next_message() {
                        Ok(None) => break,
                        Err(err) => break 'connection Some((err.close_code(), "protocol error")),
                        Ok(Some(Incoming::Close)) => break 'connection Some((1000, "")),
                        Ok(Some(Incoming::Ping(payload))) => wire::pong(payload),
                        Ok(Some(Incoming::Pong | Incoming::Binary)) => continue,
                        Ok(Some(Incoming::Text(text))) if limit.allow(last_seen) => {
                            // Boxed: the store read behind it would otherwise make every
                            // connection's task that much bigger for the rare subscribe.
                            let reply = Box::pin(answer(&state, &claims, &mut rooms, &text)).await;
                            wire::text(&reply)
                        }
                        Ok(Some(Incoming::Text(_))) => {
                            wire::text(&client::error_frame(client::RATE_LIMITED))
                        }
                    };
                    if !send(&mut socket, &reply, &state).await {
                        break 'connection None;
                    }
                }
            }
            _ = &mut timer => {
                let now = Instant::now();
                if now >= expires_at {
                    break Some((4001, "token expired"));
                }
                if last_seen.elapsed() > config.idle_timeout {
                    break Some((1001, "idle timeout"));
                }
                if !send(&mut socket, &wire::ping(), &state).await {
                    break None;
                }
                timer.as_mut().reset((now + config.heartbeat).min(expires_at));
            }
        }
    };
    rooms.leave_all();
    state.hub.disconnected();
    if let Some((code, reason)) = end {
        let close = wire::close(code, reason);
        let _ = tokio::time::timeout(config.send_timeout, socket.write_all(&close)).await;
    }
    let _ = tokio::time::timeout(config.send_timeout, socket.shutdown()).await;
}

/// Writes one frame of the connection's own (a reply, a pong, a ping); `false` when the
/// socket is gone or the write did not complete in time (the client is then counted as
/// slow).
async fn send(socket: &mut Socket, frame: &Bytes, state: &WsState) -> bool {
    match tokio::time::timeout(state.config.send_timeout, socket.write_all(frame)).await {
        Ok(sent) => sent.is_ok(),
        Err(_) => {
            state.hub.dropped_slow();
            false
        }
    }
}

/// Writes `first` and the frames already waiting behind it (up to `BATCH`).
async fn deliver(
    socket: &mut Socket,
    rooms: &mut Rooms,
    hub: &Hub,
    first: (Arc<str>, Result<Frame, BroadcastStreamRecvError>),
) -> Result<(), End> {
    write(socket, rooms, hub, first).await?;
    for _ in 1..BATCH {
        let Some(Some(next)) = rooms.streams.next().now_or_never() else {
            break;
        };
        write(socket, rooms, hub, next).await?;
    }
    Ok(())
}

/// Writes one room frame, or the resync that replaces a lagging room's backlog.
async fn write(
    socket: &mut Socket,
    rooms: &mut Rooms,
    hub: &Hub,
    (room, item): (Arc<str>, Result<Frame, BroadcastStreamRecvError>),
) -> Result<(), End> {
    let (seq, bytes) = match item {
        Ok(frame) => (frame.seq, frame.bytes),
        Err(BroadcastStreamRecvError::Lagged(skipped)) => {
            if room.starts_with("user:") {
                // Its own frames (bookings, payments) cannot be rebuilt: start afresh.
                hub.dropped_slow();
                tracing::warn!(room = %room, skipped, "dropping a client that does not keep up");
                return Err(TOO_SLOW);
            }
            hub.resynced();
            match rooms.resync(&room) {
                Some(frame) => frame,
                None => return Ok(()),
            }
        }
    };
    socket.write_all(&bytes).await.map_err(|_| None)?;
    if let Some(room) = rooms.room(&room) {
        room.delivered(seq);
    }
    Ok(())
}
/// Carries out a client message and returns the reply frame.
async fn answer(state: &WsState, claims: &AccessClaims, rooms: &mut Rooms, text: &str) -> String {
    use schemas::ws::ServerMessage;
    let (request, event) = match client::parse(text) {
        Ok(parsed) => parsed,
        Err(refusal) => return client::error_frame(refusal),
    };
    match request {
        Request::Join(room) => {
            if !rooms.is_in(&room) {
                if rooms.subscriptions() >= state.config.max_subscriptions {
                    return client::error_frame(client::TOO_MANY_SUBSCRIPTIONS);
                }
                if let Err(refusal) = client::may_watch(&state.shows, claims, event).await {
                    return client::error_frame(refusal);
                }
                rooms.join(&room);
            }
            ServerMessage::Subscribed { room }.to_frame()
        }
        Request::Leave(room) => {
            rooms.leave(&room);
            ServerMessage::Unsubscribed { room }.to_frame()
        }
    }
}
