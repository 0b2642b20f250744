//! WebSocket watchers subscribed to an event: frames counted per connection, and the
//! latency from an accepted hold to the `seat_status` frame that shows it, timed on every
//! `sample_every`-th socket (so a server that serves its room in order cannot look fast by
//! serving the first socket first). Watchers cost as little as possible per frame: the
//! sockets that are not timed only count their frames, nothing is decoded.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use dashmap::DashMap;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::record::Recorder;

pub const E2E: &str = "hold accepted → seat_status frame";

/// Connections per loopback source address: below the ~28,000 ephemeral ports of one.
const PER_SOURCE_ADDRESS: usize = 20_000;

/// One seat's accepted holds, and frames that showed a hold before its answer arrived.
#[derive(Default)]
struct SeatLog {
    accepted: Vec<Instant>,
    /// Which hold of the seat (k) each frame seen before that hold's answer showed.
    early: Vec<usize>,
}

/// Matches accepted holds with the frames that show them on each timed socket: the k-th
/// `held` change of a seat a socket sees belongs to the seat's k-th accepted hold. A frame
/// that beats the HTTP answer counts as zero latency.
#[derive(Default)]
pub struct E2eTracker {
    seats: DashMap<String, SeatLog>,
}

impl E2eTracker {
    pub fn accepted(&self, seat: &str, at: Instant, recorder: &Recorder) {
        let mut log = self.seats.entry(seat.to_owned()).or_default();
        log.accepted.push(at);
        let k = log.accepted.len() - 1;
        let before = log.early.len();
        log.early.retain(|&hold| hold != k);
        for _ in log.early.len()..before {
            recorder.record(E2E, Duration::ZERO);
        }
    }

    fn framed(&self, seat: &str, k: usize, at: Instant, recorder: &Recorder) {
        let mut log = self.seats.entry(seat.to_owned()).or_default();
        match log.accepted.get(k) {
            Some(accepted) => recorder.record(E2E, at.saturating_duration_since(*accepted)),
            None => log.early.push(k),
        }
    }
}

/// Only what timing needs from a `seat_status` frame, borrowed from its text.
#[derive(Deserialize)]
struct SeatStatus<'a> {
    #[serde(borrow)]
    changes: Vec<Change<'a>>,
}

#[derive(Deserialize)]
struct Change<'a> {
    seat_id: &'a str,
    status: &'a str,
}

/// A timed socket: its tracker, how many `held` changes of each seat it has seen, and the
/// seat map its frames add up to (checked against the store at the end).
struct Timing {
    tracker: Arc<E2eTracker>,
    recorder: Recorder,
    seen: HashMap<String, usize>,
    map: Arc<Mutex<HashMap<String, String>>>,
}

impl Timing {
    fn frame(&mut self, text: &str) {
        if !text.starts_with(r#"{"type":"seat_status""#) {
            return;
        }
        let Ok(frame) = serde_json::from_str::<SeatStatus>(text) else {
            return;
        };
        let now = Instant::now();
        for change in frame.changes.iter().filter(|c| c.status == "held") {
            let seen = self.seen.entry(change.seat_id.to_owned()).or_default();
            self.tracker
                .framed(change.seat_id, *seen, now, &self.recorder);
            *seen += 1;
        }
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        for change in &frame.changes {
            map.insert(change.seat_id.to_owned(), change.status.to_owned());
        }
    }
}

pub struct Watchers {
    pub frames: Arc<AtomicU64>,
    pub closed: Arc<AtomicU64>,
    pub connected: usize,
    pub timed: usize,
    /// Each timed socket's seat map: seat → the status its last frame gave it.
    maps: Vec<Arc<Mutex<HashMap<String, String>>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Watchers {
    /// Connects `count` sockets (with `tokens` round robin), one after the other, each
    /// subscribed to `event:{event_id}`; every `sample_every`-th one (from the first) times
    /// hold → frame latency.
    #[allow(clippy::too_many_arguments)]
    pub async fn connect(
        notifier: &str,
        tokens: &[String],
        count: usize,
        sample_every: usize,
        event_id: &str,
        accepted: Arc<E2eTracker>,
        recorder: Recorder,
    ) -> anyhow::Result<Self> {
        let frames = Arc::new(AtomicU64::new(0));
        let closed = Arc::new(AtomicU64::new(0));
        let url = format!("{}/ws", notifier.replacen("http", "ws", 1));
        let server: SocketAddr = tokio::net::lookup_host(
            url.trim_start_matches("ws://")
                .split('/')
                .next()
                .unwrap_or_default(),
        )
        .await?
        .next()
        .context("the notifier's address does not resolve")?;
        // A client's receive side needs little: frames are read as they come.
        let config = WebSocketConfig::default()
            .read_buffer_size(8 * 1024)
            .write_buffer_size(0);
        let mut tasks = Vec::with_capacity(count);
        let mut maps = Vec::new();
        let started = Instant::now();
        for i in 0..count {
            let mut request = url.as_str().into_client_request()?;
            request.headers_mut().insert(
                "authorization",
                format!("Bearer {}", tokens[i % tokens.len()]).parse()?,
            );
            let stream = connect_from(source_address(server, i), server)
                .await
                .with_context(|| format!("TCP connection #{i}"))?;
            let (mut socket, _) =
                tokio_tungstenite::client_async_with_config(request, stream, Some(config))
                    .await
                    .with_context(|| format!("WebSocket connection #{i}"))?;
            let subscribe =
                serde_json::json!({"type": "subscribe", "room": format!("event:{event_id}")});
            socket.send(Message::text(subscribe.to_string())).await?;
            // Wait for the acknowledgement so every counted socket is in the room.
            loop {
                match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
                    Ok(Some(Ok(Message::Text(text)))) if text.contains("\"subscribed\"") => break,
                    Ok(Some(Ok(_))) => {}
                    other => anyhow::bail!("socket #{i} not subscribed: {other:?}"),
                }
            }
            let frames = frames.clone();
            let closed = closed.clone();
            let mut timing = (i % sample_every.max(1) == 0).then(|| Timing {
                tracker: accepted.clone(),
                recorder: recorder.clone(),
                seen: HashMap::new(),
                map: Arc::default(),
            });
            if let Some(timing) = &timing {
                maps.push(timing.map.clone());
            }
            tasks.push(tokio::spawn(async move {
                while let Some(message) = socket.next().await {
                    match message {
                        Ok(Message::Text(text)) => {
                            frames.fetch_add(1, Ordering::Relaxed);
                            if let Some(timing) = &mut timing {
                                timing.frame(text.as_str());
                            }
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
                closed.fetch_add(1, Ordering::Relaxed);
            }));
            if (i + 1) % 2_000 == 0 {
                println!("  {} sockets connected", i + 1);
            }
        }
        println!(
            "connected {count} WebSocket clients in {:.1} s ({} of them timed)",
            started.elapsed().as_secs_f64(),
            maps.len()
        );
        Ok(Self {
            frames,
            closed,
            connected: count,
            timed: maps.len(),
            maps,
            tasks,
        })
    }

    /// The seat maps of the timed sockets as their frames so far add up.
    pub fn seat_maps(&self) -> Vec<HashMap<String, String>> {
        self.maps
            .iter()
            .map(|m| m.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .collect()
    }

    pub fn close(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

/// The local address of connection `i`: beyond `PER_SOURCE_ADDRESS` connections to a
/// loopback server, the next 127.0.0.x, so the ephemeral ports of one do not run out.
fn source_address(server: SocketAddr, i: usize) -> Option<SocketAddr> {
    let IpAddr::V4(ip) = server.ip() else {
        return None;
    };
    let n = i / PER_SOURCE_ADDRESS;
    if !ip.is_loopback() || n == 0 {
        return None;
    }
    let host = u8::try_from(1 + n).ok()?;
    Some(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, host)),
        0,
    ))
}

async fn connect_from(
    local: Option<SocketAddr>,
    server: SocketAddr,
) -> std::io::Result<tokio::net::TcpStream> {
    let socket = if server.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    if let Some(local) = local {
        socket.bind(local)?;
    }
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Resident memory of a process in KiB (Linux `/proc`): now, and its peak so far.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// CPU time a process has used so far (user + system), from `/proc/{pid}/stat`.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some(Duration::from_millis(ticks * 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_addresses_move_to_the_next_loopback_address_every_20000_connections() {
        let server: SocketAddr = "127.0.0.1:8081".parse().expect("addr");
        assert_eq!(source_address(server, 0), None);
        assert_eq!(source_address(server, 19_999), None);
        assert_eq!(
            source_address(server, 20_000),
            Some("127.0.0.2:0".parse().expect("addr"))
        );
        assert_eq!(
            source_address(server, 45_000),
            Some("127.0.0.3:0".parse().expect("addr"))
        );
        let remote: SocketAddr = "10.0.0.1:8081".parse().expect("addr");
        assert_eq!(source_address(remote, 45_000), None);
    }

    #[test]
    fn each_timed_socket_matches_a_seats_kth_frame_with_its_kth_hold() {
        let tracker = E2eTracker::default();
        let recorder = Recorder::default();
        let start = Instant::now();
        tracker.accepted("s:A:1", start, &recorder);
        // Two sockets see the first hold's frame; one sees the second hold's before its
        // answer arrives.
        for _ in 0..2 {
            tracker.framed("s:A:1", 0, start + Duration::from_millis(40), &recorder);
        }
        tracker.framed("s:A:1", 1, start + Duration::from_millis(50), &recorder);
        assert_eq!(recorder.count(E2E), 2);
        let p99 = recorder.p99(E2E).expect("samples");
        assert!(p99 >= Duration::from_millis(40) && p99 < Duration::from_millis(41));
        tracker.accepted("s:A:1", start + Duration::from_millis(60), &recorder);
        assert_eq!(
            recorder.count(E2E),
            3,
            "the early frame counts once answered"
        );
    }

    #[test]
    fn cpu_time_reads_this_process() {
        assert!(cpu_time(std::process::id()).is_some());
    }
}
