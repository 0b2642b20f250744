//! `queue_position` frames: each user connected here hears about their own places in
//! waiting rooms. Two paths, because positions and admissions matter differently:
//!
//! - admissions are pushed at once: the admitter `pg_notify`s each admission step in its
//!   transaction, and this instance sends `admitted` to those of the step's users it holds;
//! - positions drift with every admission, so they are polled: every `interval` the places
//!   of all users connected here are read in one query and a frame goes to each user whose
//!   position or status changed since the last one sent — at most one per interval per
//!   place, however fast the queue moves.
//!
//! A notification missed while the listener reconnects is caught up by the next poll.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use schemas::api::queue::QueuePlace;
use schemas::ws::ServerMessage;
use serde::Deserialize;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use waiting_room::places::{self, UserPlace};

use crate::rooms::Hub;

/// (user, event) → the place last pushed.
type Sent = Arc<Mutex<HashMap<(Uuid, Uuid), QueuePlace>>>;

pub struct QueuePush {
    pub hub: Arc<Hub>,
    pub pool: PgPool,
    pub interval: Duration,
}

#[derive(Deserialize)]
struct AdmissionStep {
    event_id: Uuid,
    from: i64,
    through: i64,
}

impl QueuePush {
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let sent: Sent = Arc::default();
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(waiting_room::ADMITTED_CHANNEL).await?;
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = ticker.tick() => {
                    if let Err(err) = self.poll(&sent).await {
                        tracing::warn!(error = %err, "cannot read queue places");
                    }
                }
                notification = listener.recv() => match notification {
                    Ok(notification) => {
                        match serde_json::from_str::<AdmissionStep>(notification.payload()) {
                            Ok(step) => {
                                if let Err(err) = self.admitted(&sent, &step).await {
                                    tracing::warn!(error = %err, "cannot read admitted places");
                                }
                            }
                            Err(err) => tracing::warn!(error = %err, "malformed admission notice"),
                        }
                    }
                    // PgListener reconnects on the next recv; the poll covers the gap.
                    Err(err) => {
                        tracing::warn!(error = %err, "admission notices interrupted");
                        tokio::select! {
                            _ = shutdown.cancelled() => return Ok(()),
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                },
            }
        }
    }

    async fn admitted(&self, sent: &Sent, step: &AdmissionStep) -> sqlx::Result<()> {
        let connected: std::collections::HashSet<Uuid> =
            self.hub.connected_users().into_iter().collect();
        if connected.is_empty() {
            return Ok(());
        }
        let admitted = places::admitted_in(&self.pool, step.event_id, step.from, step.through)
            .await?
            .into_iter()
            .filter(|p| connected.contains(&p.user_id));
        for place in admitted {
            self.push_if_changed(sent, place);
        }
        Ok(())
    }

    async fn poll(&self, sent: &Sent) -> sqlx::Result<()> {
        let users = self.hub.connected_users();
        if users.is_empty() {
            sent.lock().unwrap_or_else(|p| p.into_inner()).clear();
            return Ok(());
        }
        let current = places::places_of_users(&self.pool, &users).await?;
        let keys: std::collections::HashSet<(Uuid, Uuid)> =
            current.iter().map(|p| (p.user_id, p.event_id)).collect();
        for place in current {
            self.push_if_changed(sent, place);
        }
        // Forget users who left and places that aged out, so the map stays bounded.
        sent.lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|key, _| keys.contains(key));
        Ok(())
    }

    fn push_if_changed(&self, sent: &Sent, place: UserPlace) {
        let key = (place.user_id, place.event_id);
        {
            let mut sent = sent.lock().unwrap_or_else(|p| p.into_inner());
            if sent.get(&key) == Some(&place.place) {
                return;
            }
            sent.insert(key, place.place.clone());
        }
        let frame = ServerMessage::QueuePosition {
            event_id: place.event_id,
            position: place.place.position,
            status: place.place.status,
            admitted_until: place.place.admitted_until,
        };
        metrics::counter!("ws_queue_position_frames_total").increment(1);
        self.hub
            .publish(&format!("user:{}", place.user_id), &frame.to_frame());
    }
}
