//! Kafka → rooms. Each notifier instance consumes every topic with a group of its own
//! (`notifier-<instance>`, from the end of every partition as it stood at start), so
//! instances scale out without a shared pub/sub: each delivers everything to its own clients. Seat changes are coalesced per event
//! over at least `coalesce` (a burst of a thousand holds is a few frames, not a thousand),
//! and longer while the room's previous frame is still being written to its members (see
//! `due`), and carry the section counts of the inventory as of the newest event seen.
//!
//! Frames are made from what the events carry and from aggregates cached here and kept up
//! to date by the same events (`observe`): an aggregate is read from the store only the
//! first time this instance meets it (it consumes from the latest offsets).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use domain::booking::{Booking, BookingEvent};
use domain::inventory::{InventoryEvent, SectionInventory, inventory_id};
use domain::payment::Payment;
use domain::show::ShowEvent;
use plumbing::kafka::KafkaSettings;
use plumbing::store::AggregateStore;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use schemas::ws::{SeatChange, SectionAvailable, ServerMessage};
use schemas::{DecodedEvent, Envelope};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::rooms::Hub;
use crate::seat_map::SeatMap;

pub struct Fanout {
    pub hub: Arc<Hub>,
    pub bookings: AggregateStore<Booking>,
    pub payments: AggregateStore<Payment>,
    pub inventory: AggregateStore<SectionInventory>,
    pub coalesce: Duration,
}

#[derive(Default)]
struct Pending {
    changes: BTreeMap<String, &'static str>,
    /// Section id → the newest sequence of its inventory seen in this batch.
    sections: BTreeMap<String, u64>,
    position: i64,
    /// When the oldest change of this batch arrived.
    since: Option<std::time::Instant>,
}

/// The longest a seat change waits for its room's previous frame to be delivered.
const MAX_WAIT: Duration = Duration::from_millis(500);

/// Whether a batch of seat changes whose oldest arrived `waited` ago goes out now: after the
/// `base` window, once the room's previous frame has reached (nearly) every member, or after
/// `MAX_WAIT` regardless. A room of 10,000 thus gets as many frames as its sockets can take,
/// each carrying everything since the last, rather than a backlog that grows behind them;
/// a small room gets a frame every `base`.
fn due(waited: Duration, base: Duration, delivered: impl FnOnce() -> bool) -> bool {
    waited >= base && (waited >= MAX_WAIT || delivered())
}

/// Runs the fan-out on a thread and runtime of its own, with its own small pool: taking in
/// events and deciding frames must not queue behind the sockets' writes (a frame to 10,000
/// members wakes 10,000 connection tasks, and a task woken in the shared runtime would wait
/// for all of them). The answer arrives when it stops.
pub fn spawn_dedicated(
    hub: Arc<Hub>,
    database_url: String,
    kafka: KafkaSettings,
    instance: String,
    coalesce: Duration,
    shutdown: CancellationToken,
) -> tokio::sync::oneshot::Receiver<anyhow::Result<()>> {
    let (done, stopped) = tokio::sync::oneshot::channel();
    let started = std::thread::Builder::new()
        .name("fan-out".into())
        .spawn(move || {
            let outcome = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot build the fan-out runtime")
                .and_then(|runtime| {
                    runtime.block_on(async move {
                        let pool = plumbing::db::connect(&database_url, 4).await?;
                        let fanout = Fanout {
                            hub,
                            bookings: AggregateStore::new(pool.clone(), ()),
                            payments: AggregateStore::new(pool.clone(), ()),
                            inventory: AggregateStore::new(pool, ()).with_snapshots(100),
                            coalesce,
                        };
                        fanout.run(kafka, instance, shutdown).await
                    })
                });
            let _ = done.send(outcome);
        });
    if let Err(err) = started {
        tracing::error!(error = %err, "cannot start the fan-out thread");
    }
    stopped
}

/// Assigns every partition of `topics` at its end as it stands now (its high watermark).
///
/// A subscription with `auto.offset.reset=latest` looks the end up only once the group has
/// assigned the partitions, some time after the instance said it was consuming: an event
/// published in between was never delivered, and a watcher who had just reconnected to a
/// restarted notifier (and re-read the availability) missed that seat for good. With the
/// offsets fixed before the instance reports itself consuming, everything published after
/// that report reaches its rooms. Each instance has the partitions to itself, so no group
/// coordination is needed.
fn pin_to_end(consumer: StreamConsumer, topics: &[String]) -> anyhow::Result<StreamConsumer> {
    const TIMEOUT: Duration = Duration::from_secs(10);
    let mut assignment = TopicPartitionList::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), TIMEOUT)
            .with_context(|| format!("cannot read the partitions of {topic}"))?;
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            let (_, high) = consumer
                .fetch_watermarks(topic, partition.id(), TIMEOUT)
                .with_context(|| format!("cannot read the end of {topic}/{}", partition.id()))?;
            assignment.add_partition_offset(topic, partition.id(), Offset::Offset(high))?;
        }
    }
    consumer
        .assign(&assignment)
        .context("cannot assign the fan-out partitions")?;
    Ok(consumer)
}

impl Fanout {
    pub async fn run(
        self,
        kafka: KafkaSettings,
        instance: String,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let topics: Vec<String> = ["inventory", "booking", "payment", "show"]
            .iter()
            .map(|t| schemas::topics::topic_for(&kafka.topic_prefix, t))
            .collect();
        kafka.ensure_topics(&topics).await?;
        let mut config = kafka.consumer_config(&kafka.group_id(&format!("notifier-{instance}")));
        // Live delivery only: a new instance starts at the end; nothing to resume.
        config
            .set("auto.offset.reset", "latest")
            .set("enable.auto.commit", "false");
        let consumer: StreamConsumer = config
            .create()
            .context("cannot create the fan-out consumer")?;
        let consumer = tokio::task::spawn_blocking(move || pin_to_end(consumer, &topics))
            .await
            .context("the fan-out consumer's assignment panicked")??;
        self.hub.set_consuming();
        let mut pending: HashMap<Uuid, Pending> = HashMap::new();
        let mut maps: HashMap<Uuid, SeatMap> = HashMap::new();
        let mut flush = tokio::time::interval(self.coalesce);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = flush.tick() => self.flush(&mut pending, &mut maps).await,
                message = consumer.recv() => match message {
                    Ok(message) => {
                        let Some(envelope) = message.payload().and_then(|p| serde_json::from_slice::<Envelope>(p).ok()) else {
                            continue;
                        };
                        if let Err(err) = self.handle(&envelope, &mut pending).await {
                            tracing::warn!(error = format!("{err:#}"), event_type = %envelope.event_type, "cannot fan out an event");
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "fan-out consumer error");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                },
            }
        }
    }

    async fn handle(
        &self,
        envelope: &Envelope,
        pending: &mut HashMap<Uuid, Pending>,
    ) -> anyhow::Result<()> {
        match schemas::decode(envelope)? {
            DecodedEvent::Inventory(event) => {
                self.inventory
                    .observe(&envelope.aggregate_id, envelope.sequence, event.clone())
                    .await;
                let (show, section) = envelope
                    .aggregate_id
                    .split_once(':')
                    .context("inventory id without a section")?;
                let show: Uuid = show.parse()?;
                let (seats, status) = match event {
                    InventoryEvent::SeatsHeld { seats, .. } => (seats, "held"),
                    InventoryEvent::HoldReleased { seats, .. }
                    | InventoryEvent::HoldExpired { seats, .. }
                    | InventoryEvent::SaleReturned { seats, .. } => (seats, "available"),
                    InventoryEvent::HoldSold { seats, .. } => (seats, "sold"),
                    InventoryEvent::SectionOpened { .. } | InventoryEvent::HoldExtended { .. } => {
                        return Ok(());
                    }
                };
                let entry = pending.entry(show).or_default();
                for seat in seats {
                    entry.changes.insert(seat, status);
                }
                let newest = entry.sections.entry(section.to_owned()).or_default();
                *newest = (*newest).max(envelope.sequence);
                entry.position = entry.position.max(envelope.global_position);
                entry.since.get_or_insert_with(std::time::Instant::now);
            }
            DecodedEvent::Booking(event) => {
                self.bookings
                    .observe(&envelope.aggregate_id, envelope.sequence, event.clone())
                    .await;
                let (booking, _) = self
                    .bookings
                    .at_least(&envelope.aggregate_id, envelope.sequence)
                    .await?;
                // An expiry leaves the sections as they were (a lapsed hold already counts as
                // free there): its seats are announced from the booking.
                if let (BookingEvent::BookingExpired { .. }, Some(show)) = (&event, booking.show_id)
                {
                    let entry = pending.entry(show).or_default();
                    for seat in &booking.seats {
                        entry.changes.insert(seat.clone(), "available");
                    }
                    for section in booking.section_ids() {
                        entry.sections.entry(section).or_default();
                    }
                    entry.position = entry.position.max(envelope.global_position);
                    entry.since.get_or_insert_with(std::time::Instant::now);
                }
                if let (
                    BookingEvent::BookingPlaced {
                        terms,
                        show_id,
                        hold_expires_at,
                        ..
                    },
                    Some(user),
                    Some(booking_id),
                ) = (&event, booking.user_id, booking.booking_id)
                    && terms.offer
                {
                    let frame = ServerMessage::WaitlistOffer {
                        event_id: *show_id,
                        booking_id,
                        expires_at: *hold_expires_at,
                    };
                    self.hub.publish(&format!("user:{user}"), &frame.to_frame());
                }
                if let (Some(user), Some(booking_id)) = (booking.user_id, booking.booking_id) {
                    let frame = ServerMessage::BookingStatus {
                        booking_id,
                        status: booking.status,
                        failure_reason: booking.failure_reason.clone(),
                    };
                    self.hub.publish(&format!("user:{user}"), &frame.to_frame());
                }
            }
            DecodedEvent::Show(ShowEvent::AnnouncementPosted { message, .. }) => {
                let Ok(event_id) = Uuid::parse_str(&envelope.aggregate_id) else {
                    return Ok(());
                };
                let frame = ServerMessage::Announcement { event_id, message };
                self.hub
                    .publish(&format!("event:{event_id}"), &frame.to_frame());
            }
            DecodedEvent::Payment(event) => {
                self.payments
                    .observe(&envelope.aggregate_id, envelope.sequence, event)
                    .await;
                let (payment, _) = self
                    .payments
                    .at_least(&envelope.aggregate_id, envelope.sequence)
                    .await?;
                let Some(booking_id) = payment.booking_id else {
                    return Ok(());
                };
                // Only its buyer is needed, and that never changes.
                let (booking, _) = self
                    .bookings
                    .cached(&booking_id.to_string(), Duration::MAX, Booking::exists)
                    .await?;
                if let Some(user) = booking.user_id {
                    let frame = ServerMessage::PaymentStatus {
                        booking_id,
                        status: payment.status,
                    };
                    self.hub.publish(&format!("user:{user}"), &frame.to_frame());
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Sends one `seat_status` frame per event with changes since the last flush, encoded
    /// once for every subscriber, after updating the event's seat map (what a subscriber
    /// that fell behind is resynchronised from).
    async fn flush(&self, pending: &mut HashMap<Uuid, Pending>, maps: &mut HashMap<Uuid, SeatMap>) {
        let now = Utc::now();
        let due: Vec<Uuid> = pending
            .iter()
            .filter(|(show, batch)| {
                batch.since.is_none_or(|since| {
                    due(since.elapsed(), self.coalesce, || {
                        self.hub.delivered_to_room(&format!("event:{show}"))
                    })
                })
            })
            .map(|(show, _)| *show)
            .collect();
        for show in due {
            let Some(batch) = pending.remove(&show) else {
                continue;
            };
            let mut sections = Vec::new();
            let mut states = BTreeMap::new();
            for (section, sequence) in &batch.sections {
                match self
                    .inventory
                    .at_least(&inventory_id(show, section), *sequence)
                    .await
                {
                    Ok((inventory, _)) => {
                        sections.push(SectionAvailable {
                            section_id: section.clone(),
                            available: inventory.available(now),
                        });
                        states.insert(section.clone(), inventory);
                    }
                    Err(err) => tracing::warn!(error = %err, "cannot read section availability"),
                }
            }
            // Each seat as its section stands now (a seat released and taken again within the
            // window is held, not available); the event's own word when the section is unknown.
            let changes = batch
                .changes
                .iter()
                .map(|(seat, status)| {
                    let section = seat.split(':').next().unwrap_or_default();
                    let status = states
                        .get(section)
                        .map_or(*status, |inventory| inventory.seat_status(seat, now));
                    SeatChange {
                        seat_id: seat.clone(),
                        status: status.to_owned(),
                    }
                })
                .collect();
            let frame = ServerMessage::SeatStatus {
                event_id: show,
                position: batch.position,
                changes,
                sections,
            };
            let room = format!("event:{show}");
            let map = maps.entry(show).or_insert_with(|| SeatMap::new(show));
            map.update(batch.position, states);
            self.hub.set_resync(&room, Arc::new(map.clone()));
            self.hub.publish(&room, &frame.to_frame());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_wait_for_the_window_then_for_the_previous_frame_at_most_max_wait() {
        let base = Duration::from_millis(25);
        let ms = Duration::from_millis;
        assert!(!due(ms(10), base, || true), "inside the window");
        assert!(
            due(ms(25), base, || true),
            "the previous frame is delivered"
        );
        assert!(
            !due(ms(300), base, || false),
            "the previous frame is on its way"
        );
        assert!(due(MAX_WAIT, base, || false), "waited long enough");
    }
}
