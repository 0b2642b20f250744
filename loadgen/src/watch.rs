//! WebSocket watchers subscribed to an event: frames counted per connection, and the
//! latency from an accepted hold to the `seat_status` frame that shows it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use dashmap::DashMap;
use futures::{SinkExt, StreamExt};
use schemas::ws::ServerMessage;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::record::Recorder;

pub const E2E: &str = "hold accepted → seat_status frame";

/// Matches accepted holds with the frames that show them, whichever arrives first (a frame
/// can beat the HTTP answer; that counts as zero latency).
#[derive(Default)]
pub struct E2eTracker {
    accepted: DashMap<String, Instant>,
    framed: DashMap<String, Instant>,
}

impl E2eTracker {
    pub fn accepted(&self, seat: &str, at: Instant, recorder: &Recorder) {
        if self.framed.remove(seat).is_some() {
            recorder.record(E2E, Duration::ZERO);
        } else {
            self.accepted.insert(seat.to_owned(), at);
        }
    }

    fn framed(&self, seat: &str, at: Instant, recorder: &Recorder) {
        if let Some((_, accepted)) = self.accepted.remove(seat) {
            recorder.record(E2E, at.saturating_duration_since(accepted));
        } else {
            self.framed.insert(seat.to_owned(), at);
        }
    }
}

pub struct Watchers {
    pub frames: Arc<AtomicU64>,
    pub closed: Arc<AtomicU64>,
    pub connected: usize,
    tasks: Vec<JoinHandle<()>>,
}

impl Watchers {
    /// Connects `count` sockets (with `tokens` round robin), `concurrency` at a time, each
    /// subscribed to `event:{event_id}`. The first socket measures end-to-end latency.
    pub async fn connect(
        notifier: &str,
        tokens: &[String],
        count: usize,
        event_id: &str,
        accepted: Arc<E2eTracker>,
        recorder: Recorder,
    ) -> anyhow::Result<Self> {
        let frames = Arc::new(AtomicU64::new(0));
        let closed = Arc::new(AtomicU64::new(0));
        let url = format!("{}/ws", notifier.replacen("http", "ws", 1));
        let mut tasks = Vec::with_capacity(count);
        let started = Instant::now();
        for i in 0..count {
            let mut request = url.as_str().into_client_request()?;
            request.headers_mut().insert(
                "authorization",
                format!("Bearer {}", tokens[i % tokens.len()]).parse()?,
            );
            let (mut socket, _) = tokio_tungstenite::connect_async(request)
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
            let measure = (i == 0).then(|| (accepted.clone(), recorder.clone()));
            tasks.push(tokio::spawn(async move {
                while let Some(message) = socket.next().await {
                    let Ok(Message::Text(text)) = message else {
                        if message.is_err() {
                            break;
                        }
                        continue;
                    };
                    frames.fetch_add(1, Ordering::Relaxed);
                    let Some((accepted, recorder)) = &measure else {
                        continue;
                    };
                    if let Ok(ServerMessage::SeatStatus { changes, .. }) =
                        serde_json::from_str::<ServerMessage>(text.as_str())
                    {
                        let now = Instant::now();
                        for change in changes.iter().filter(|c| c.status == "held") {
                            accepted.framed(&change.seat_id, now, recorder);
                        }
                    }
                }
                closed.fetch_add(1, Ordering::Relaxed);
            }));
            if (i + 1) % 2_000 == 0 {
                println!("  {} sockets connected", i + 1);
            }
        }
        println!(
            "connected {count} WebSocket clients in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(Self {
            frames,
            closed,
            connected: count,
            tasks,
        })
    }

    pub fn close(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

/// Resident memory of a process in KiB (Linux `/proc`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}
