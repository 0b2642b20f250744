//! The hub: rooms and who is in them. Each room is one broadcast ring of frames
//! (`tokio::sync::broadcast`): a publish encodes a WebSocket frame once (`wire`), stores it
//! once and wakes the members; each connection reads the ring at its own pace through a
//! cursor of its own and writes the same bytes. No lock is held over the members, and a
//! connection costs the hub a cursor, not a queue.
//!
//! A member that falls further behind than the ring holds learns it on its next read
//! (`Lagged`): in an event room it gets a fresh `seat_status` of the whole seat map instead
//! of the backlog ([`Room::resync`]); in its own `user:` room, whose frames cannot be
//! rebuilt, it is dropped as slow. A client that stops reading altogether is dropped by its
//! connection when a write does not complete in time (`ws`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::broadcast;

/// One WebSocket frame of a room, encoded whole (header and payload) and shared by every
/// member it goes to: cloning is a reference count. `seq` numbers it within its room.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub seq: u64,
    pub bytes: Bytes,
}

/// Builds a room's resync frame: the whole seat map as of the newest frame published.
pub trait Resync: Send + Sync {
    fn frame(&self) -> Bytes;
}

#[derive(Default)]
struct ResyncSlot {
    source: Option<Arc<dyn Resync>>,
    built: Option<Bytes>,
}

pub struct Room {
    tx: broadcast::Sender<Frame>,
    /// What a lagging member is sent instead of its backlog, and that frame once built
    /// (built on demand, at most once per state: a room of lagging members shares it).
    resync: Mutex<ResyncSlot>,
    /// The newest frame's `seq`, and how many members have written it to their socket: how
    /// far the last frame's delivery has come.
    published: AtomicU64,
    caught_up: AtomicUsize,
}

impl Room {
    /// A new cursor at the next frame to be published.
    pub fn subscribe(&self) -> broadcast::Receiver<Frame> {
        self.tx.subscribe()
    }

    /// The `seq` of the newest frame published.
    pub fn head(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }

    /// A member wrote frame `seq` (or a resync as of it) to its socket.
    pub fn delivered(&self, seq: u64) {
        if seq == self.head() {
            self.caught_up.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The resync frame for a member that lagged; `None` when the room has no seat map.
    pub fn resync(&self) -> Option<Bytes> {
        let mut slot = self.resync.lock().unwrap_or_else(|p| p.into_inner());
        if slot.built.is_none() {
            slot.built = slot.source.as_ref().map(|source| source.frame());
        }
        slot.built.clone()
    }
}

/// A connection's membership of one room: its cursor in the room's ring. Drop the cursor,
/// then call [`Hub::leave`].
pub struct Member {
    pub name: Arc<str>,
    pub room: Arc<Room>,
    pub rx: broadcast::Receiver<Frame>,
}

pub struct Hub {
    rooms: RwLock<HashMap<Arc<str>, Arc<Room>>>,
    /// Frames an event room keeps for members that are behind.
    room_capacity: usize,
    connections: AtomicUsize,
    messages_sent: AtomicU64,
    dropped_slow: AtomicU64,
    resyncs: AtomicU64,
    /// Whether the fan-out consumer has its partitions (frames flow from then on).
    consuming: AtomicBool,
}

/// A user's own room keeps fewer frames (every connected user has one, so its ring is memory
/// per connection): they are rare, and a member that misses one is dropped (its client
/// reconnects and reads its bookings again).
const USER_ROOM_CAPACITY: usize = 8;

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub connections: usize,
    pub rooms: usize,
    pub messages_sent: u64,
    pub dropped_slow_clients: u64,
    /// Seat-map resyncs sent to members that fell behind their room.
    pub resyncs: u64,
    /// The fan-out consumer is assigned its partitions: events from now on reach clients.
    pub consuming: bool,
}

impl Hub {
    pub fn new(room_capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            rooms: RwLock::default(),
            room_capacity: room_capacity.max(1),
            connections: AtomicUsize::new(0),
            messages_sent: AtomicU64::new(0),
            dropped_slow: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            consuming: AtomicBool::new(false),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Arc<str>, Arc<Room>>> {
        // A panic while holding the lock leaves a plain map behind; keep serving.
        self.rooms.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Arc<str>, Arc<Room>>> {
        self.rooms.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a connection in (`disconnected` counts it out).
    pub fn connected(&self) {
        let n = self.connections.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::gauge!("ws_connections").set(n as f64);
    }

    pub fn disconnected(&self) {
        let n = self.connections.fetch_sub(1, Ordering::Relaxed) - 1;
        metrics::gauge!("ws_connections").set(n as f64);
    }

    /// Joins `name`, creating the room when it is new. The cursor starts at the next frame.
    pub fn join(&self, name: &str) -> Member {
        // Subscribing under the read lock orders it before any removal (`leave` removes a
        // room under the write lock only once it has no member).
        {
            let rooms = self.read();
            if let Some((key, room)) = rooms.get_key_value(name) {
                return Member {
                    name: key.clone(),
                    room: room.clone(),
                    rx: room.tx.subscribe(),
                };
            }
        }
        let mut rooms = self.write();
        let capacity = if name.starts_with("user:") {
            USER_ROOM_CAPACITY
        } else {
            self.room_capacity
        };
        let (key, room) = match rooms.get_key_value(name) {
            Some((key, room)) => (key.clone(), room.clone()),
            None => {
                let key: Arc<str> = name.into();
                let room = Arc::new(Room {
                    tx: broadcast::channel(capacity).0,
                    resync: Mutex::default(),
                    published: AtomicU64::new(0),
                    caught_up: AtomicUsize::new(0),
                });
                rooms.insert(key.clone(), room.clone());
                (key, room)
            }
        };
        let rx = room.tx.subscribe();
        Member {
            name: key,
            room,
            rx,
        }
    }

    /// Leaves a room whose cursor the caller has dropped; the last member out removes it.
    pub fn leave(&self, name: &Arc<str>, room: &Arc<Room>) {
        if room.tx.receiver_count() > 0 {
            return;
        }
        let mut rooms = self.write();
        if room.tx.receiver_count() == 0 && rooms.get(name).is_some_and(|r| Arc::ptr_eq(r, room)) {
            rooms.remove(name);
        }
    }

    /// Queues the text frame `text` for every member of `room` (none: nothing happens),
    /// encoded once. Never waits.
    pub fn publish(&self, room: &str, text: &str) {
        let Some(room) = self.read().get(room).cloned() else {
            return;
        };
        let seq = room.published.fetch_add(1, Ordering::AcqRel) + 1;
        room.caught_up.store(0, Ordering::Release);
        let frame = Frame {
            seq,
            bytes: crate::wire::text(text),
        };
        let members = room.tx.send(frame).unwrap_or(0) as u64;
        self.messages_sent.fetch_add(members, Ordering::Relaxed);
        metrics::counter!("ws_frames_sent_total").increment(members);
    }

    /// Whether the newest frame of `room` has reached its members' sockets (all but one in a
    /// hundred, so a few stalled clients do not hold the room back): the fan-out sends the
    /// next one then, so a big room gets fewer, fuller frames instead of a backlog.
    pub fn delivered_to_room(&self, room: &str) -> bool {
        let Some(room) = self.read().get(room).cloned() else {
            return true;
        };
        if room.head() == 0 {
            return true;
        }
        let members = room.tx.receiver_count();
        room.caught_up.load(Ordering::Acquire) + members / 100 >= members
    }

    /// Sets what members of `room` that fall behind are resynchronised from. Call it before
    /// publishing the frame the state belongs to: a member that lags then never gets a
    /// resync older than a frame it already skipped.
    pub fn set_resync(&self, room: &str, source: Arc<dyn Resync>) {
        if let Some(room) = self.read().get(room) {
            *room.resync.lock().unwrap_or_else(|p| p.into_inner()) = ResyncSlot {
                source: Some(source),
                built: None,
            };
        }
    }

    /// Counts a client dropped for not keeping up.
    pub fn dropped_slow(&self) {
        self.dropped_slow.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("ws_dropped_slow_clients_total").increment(1);
    }

    pub fn resynced(&self) {
        self.resyncs.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("ws_resyncs_total").increment(1);
    }

    /// Connections in `room`.
    pub fn room_size(&self, room: &str) -> usize {
        self.read().get(room).map_or(0, |r| r.tx.receiver_count())
    }

    /// Users with at least one connection here (members of a `user:{id}` room).
    pub fn connected_users(&self) -> Vec<uuid::Uuid> {
        self.read()
            .keys()
            .filter_map(|room| room.strip_prefix("user:"))
            .filter_map(|id| uuid::Uuid::parse_str(id).ok())
            .collect()
    }

    pub fn set_consuming(&self) {
        self.consuming.store(true, Ordering::Relaxed);
    }

    pub fn is_consuming(&self) -> bool {
        self.consuming.load(Ordering::Relaxed)
    }

    pub fn stats(&self) -> Stats {
        Stats {
            connections: self.connections.load(Ordering::Relaxed),
            rooms: self.read().len(),
            messages_sent: self.messages_sent.load(Ordering::Relaxed),
            dropped_slow_clients: self.dropped_slow.load(Ordering::Relaxed),
            resyncs: self.resyncs.load(Ordering::Relaxed),
            consuming: self.consuming.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::text;
    use tokio::sync::broadcast::error::TryRecvError;

    struct Whole(&'static str);
    impl Resync for Whole {
        fn frame(&self) -> Bytes {
            text(self.0)
        }
    }

    fn bytes(member: &mut Member) -> Option<Bytes> {
        member.rx.try_recv().ok().map(|f| f.bytes)
    }

    #[test]
    fn publishes_to_members_only() {
        let hub = Hub::new(4);
        let mut a = hub.join("event:1");
        let mut b = hub.join("user:b");
        hub.publish("event:1", "x");
        hub.publish("user:b", "y");
        hub.publish("event:nobody", "z");
        assert_eq!(bytes(&mut a), Some(text("x")));
        assert!(a.rx.try_recv().is_err());
        assert_eq!(bytes(&mut b), Some(text("y")));
        assert!(b.rx.try_recv().is_err());
        assert_eq!(hub.stats().messages_sent, 2);
    }

    #[test]
    fn every_member_shares_the_one_encoded_frame() {
        let hub = Hub::new(4);
        let mut a = hub.join("event:1");
        let mut b = hub.join("event:1");
        hub.publish("event:1", "shared");
        let (a, b) = (bytes(&mut a).expect("a"), bytes(&mut b).expect("b"));
        assert_eq!(a, text("shared"));
        assert_eq!(a.as_ptr(), b.as_ptr(), "one copy of the frame");
    }

    #[test]
    fn a_member_further_behind_than_the_ring_lags_and_gets_the_resync() {
        let hub = Hub::new(2);
        let mut slow = hub.join("event:1");
        let mut fast = hub.join("event:1");
        hub.set_resync("event:1", Arc::new(Whole("whole map")));
        for frame in ["1", "2", "3"] {
            hub.publish("event:1", frame);
            assert_eq!(bytes(&mut fast), Some(text(frame)));
        }
        assert!(matches!(slow.rx.try_recv(), Err(TryRecvError::Lagged(1))));
        assert_eq!(slow.room.resync(), Some(text("whole map")));
    }

    #[test]
    fn the_resync_is_built_once_per_state() {
        struct Counting(AtomicUsize);
        impl Resync for Counting {
            fn frame(&self) -> Bytes {
                text(&self.0.fetch_add(1, Ordering::Relaxed).to_string())
            }
        }
        let hub = Hub::new(2);
        let member = hub.join("event:1");
        let source = Arc::new(Counting(AtomicUsize::new(0)));
        hub.set_resync("event:1", source.clone());
        assert_eq!(member.room.resync(), Some(text("0")));
        assert_eq!(member.room.resync(), Some(text("0")));
        hub.set_resync("event:1", source);
        assert_eq!(member.room.resync(), Some(text("1")));
    }

    #[test]
    fn a_room_counts_as_delivered_once_its_members_wrote_the_newest_frame() {
        let hub = Hub::new(4);
        assert!(
            hub.delivered_to_room("event:1"),
            "no room, nothing to wait for"
        );
        let mut a = hub.join("event:1");
        let mut b = hub.join("event:1");
        assert!(hub.delivered_to_room("event:1"), "nothing published yet");
        hub.publish("event:1", "1");
        hub.publish("event:1", "2");
        for member in [&mut a, &mut b] {
            let stale = member.rx.try_recv().expect("frame 1");
            member.room.delivered(stale.seq);
        }
        assert!(
            !hub.delivered_to_room("event:1"),
            "an older frame does not count"
        );
        for member in [&mut a, &mut b] {
            let newest = member.rx.try_recv().expect("frame 2");
            assert!(!hub.delivered_to_room("event:1"));
            member.room.delivered(newest.seq);
        }
        assert!(hub.delivered_to_room("event:1"));
    }

    #[test]
    fn the_last_member_out_removes_the_room() {
        let hub = Hub::new(4);
        let leave = |member: Member| {
            let Member { name, room, rx } = member;
            drop(rx);
            hub.leave(&name, &room);
        };
        let a = hub.join("event:1");
        let b = hub.join("event:1");
        let own = hub.join("user:a");
        assert_eq!((hub.stats().rooms, hub.room_size("event:1")), (2, 2));
        leave(a);
        assert_eq!((hub.stats().rooms, hub.room_size("event:1")), (2, 1));
        leave(b);
        assert_eq!(hub.stats().rooms, 1);
        leave(own);
        assert_eq!(hub.stats().rooms, 0);
    }
}
