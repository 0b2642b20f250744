//! The hub: connections and the rooms they are in. Every connection has a bounded queue of
//! outgoing frames; a publish never waits on a client — a connection whose queue is full is
//! dropped (counted in `dropped_slow_clients`), so one slow reader cannot slow the server or
//! make its memory grow.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use std::sync::Mutex;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

pub type Frame = Arc<str>;
pub type ConnId = u64;

#[derive(Default)]
struct Inner {
    /// Connection → its queue and rooms.
    connections: HashMap<ConnId, (mpsc::Sender<Frame>, HashSet<String>)>,
    /// Room → members.
    rooms: HashMap<String, HashSet<ConnId>>,
}

#[derive(Default)]
pub struct Hub {
    inner: Mutex<Inner>,
    next_id: AtomicU64,
    messages_sent: AtomicU64,
    dropped_slow: AtomicU64,
    /// Whether the fan-out consumer has its partitions (frames flow from then on).
    consuming: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub connections: usize,
    pub rooms: usize,
    pub messages_sent: u64,
    pub dropped_slow_clients: u64,
    /// The fan-out consumer is assigned its partitions: events from now on reach clients.
    pub consuming: bool,
}

impl Hub {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain maps behind; keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a connection in its own room.
    pub fn connect(&self, own_room: String, sender: mpsc::Sender<Frame>) -> ConnId {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut inner = self.lock();
        inner
            .connections
            .insert(id, (sender, HashSet::from([own_room.clone()])));
        inner.rooms.entry(own_room).or_default().insert(id);
        metrics::gauge!("ws_connections").set(inner.connections.len() as f64);
        id
    }

    pub fn join(&self, id: ConnId, room: &str) {
        let mut inner = self.lock();
        if let Some((_, rooms)) = inner.connections.get_mut(&id) {
            rooms.insert(room.to_owned());
            inner.rooms.entry(room.to_owned()).or_default().insert(id);
        }
    }

    pub fn leave(&self, id: ConnId, room: &str) {
        let mut inner = self.lock();
        if let Some((_, rooms)) = inner.connections.get_mut(&id) {
            rooms.remove(room);
        }
        Self::forget_member(&mut inner, room, id);
    }

    fn forget_member(inner: &mut Inner, room: &str, id: ConnId) {
        if let Some(members) = inner.rooms.get_mut(room) {
            members.remove(&id);
            if members.is_empty() {
                inner.rooms.remove(room);
            }
        }
    }

    /// Removes a connection (closing its queue, which ends its task).
    pub fn disconnect(&self, id: ConnId) {
        let mut inner = self.lock();
        if let Some((_, rooms)) = inner.connections.remove(&id) {
            for room in rooms {
                Self::forget_member(&mut inner, &room, id);
            }
        }
        metrics::gauge!("ws_connections").set(inner.connections.len() as f64);
    }

    /// Queues `frame` for every member of `room`; drops members whose queue is full.
    pub fn publish(&self, room: &str, frame: Frame) {
        let mut slow = Vec::new();
        {
            let inner = self.lock();
            let Some(members) = inner.rooms.get(room) else {
                return;
            };
            for id in members {
                if let Some((sender, _)) = inner.connections.get(id) {
                    match sender.try_send(frame.clone()) {
                        Ok(()) => {
                            self.messages_sent.fetch_add(1, Ordering::Relaxed);
                            metrics::counter!("ws_frames_sent_total").increment(1);
                        }
                        Err(TrySendError::Full(_)) => slow.push(*id),
                        Err(TrySendError::Closed(_)) => {}
                    }
                }
            }
        }
        for id in slow {
            self.dropped_slow.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("ws_dropped_slow_clients_total").increment(1);
            tracing::warn!(
                connection = id,
                room,
                "dropping a client that does not keep up"
            );
            self.disconnect(id);
        }
    }

    /// Connections in `room`.
    pub fn room_size(&self, room: &str) -> usize {
        self.lock().rooms.get(room).map_or(0, HashSet::len)
    }

    /// Users with at least one connection here (members of a `user:{id}` room).
    pub fn connected_users(&self) -> Vec<uuid::Uuid> {
        self.lock()
            .rooms
            .keys()
            .filter_map(|room| room.strip_prefix("user:"))
            .filter_map(|id| uuid::Uuid::parse_str(id).ok())
            .collect()
    }

    pub fn set_consuming(&self) {
        self.consuming.store(true, Ordering::Relaxed);
    }

    pub fn stats(&self) -> Stats {
        let inner = self.lock();
        Stats {
            connections: inner.connections.len(),
            rooms: inner.rooms.len(),
            messages_sent: self.messages_sent.load(Ordering::Relaxed),
            dropped_slow_clients: self.dropped_slow.load(Ordering::Relaxed),
            consuming: self.consuming.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_to_members_only() {
        let hub = Hub::new();
        let (a_tx, mut a_rx) = mpsc::channel(4);
        let (b_tx, mut b_rx) = mpsc::channel(4);
        let a = hub.connect("user:a".into(), a_tx);
        hub.connect("user:b".into(), b_tx);
        hub.join(a, "event:1");
        hub.publish("event:1", "x".into());
        hub.publish("user:b", "y".into());
        assert_eq!(a_rx.try_recv().as_deref().ok(), Some("x"));
        assert!(a_rx.try_recv().is_err());
        assert_eq!(b_rx.try_recv().as_deref().ok(), Some("y"));
        assert!(b_rx.try_recv().is_err());
    }

    #[test]
    fn a_full_queue_drops_that_client_only() {
        let hub = Hub::new();
        let (slow_tx, _slow_rx) = mpsc::channel(1);
        let (fast_tx, mut fast_rx) = mpsc::channel(8);
        let slow = hub.connect("user:s".into(), slow_tx);
        let fast = hub.connect("user:f".into(), fast_tx);
        hub.join(slow, "event:1");
        hub.join(fast, "event:1");
        for _ in 0..3 {
            hub.publish("event:1", "x".into());
        }
        let stats = hub.stats();
        assert_eq!(stats.connections, 1);
        assert_eq!(stats.dropped_slow_clients, 1);
        assert_eq!((0..3).filter(|_| fast_rx.try_recv().is_ok()).count(), 3);
    }

    #[test]
    fn leaving_empties_rooms() {
        let hub = Hub::new();
        let (tx, _rx) = mpsc::channel(1);
        let id = hub.connect("user:a".into(), tx);
        hub.join(id, "event:1");
        assert_eq!(hub.stats().rooms, 2);
        hub.leave(id, "event:1");
        assert_eq!(hub.stats().rooms, 1);
        hub.disconnect(id);
        assert_eq!(hub.stats().rooms, 0);
    }
}
