//! `Waitlist`: the waiting list of one sold-out show (stream id = the show id). People join
//! in order with the quantity they want; when places free up the saga offers them to the
//! first waiting person whose quantity fits, as a held booking placed in the same unit as the
//! `Offer` here, so one entry never has two offers and an offer is never lost. The entry
//! then follows its booking: paid (`Accepted`) or ended unpaid (`Lapsed`, which lets the next
//! person have the places).

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The places one person may wait for (a booking's maximum).
pub const MAX_WAITLIST_QUANTITY: u32 = crate::booking::MAX_PLACES_PER_BOOKING;

#[derive(Debug, Clone, PartialEq)]
pub enum WaitlistCommand {
    /// Puts `user_id` on the list for `quantity` places; only while nothing is available
    /// (`sold_out`, judged by the caller on the sections' current state). Someone already
    /// on it keeps their place (and their quantity); someone whose offer lapsed joins again
    /// at the end.
    Join {
        show_id: Uuid,
        user_id: Uuid,
        quantity: u32,
        sold_out: bool,
        now: DateTime<Utc>,
    },
    /// Takes `user_id` off the list, whatever their entry's state. An open offer stays a held
    /// booking of theirs until it is paid, cancelled or expires.
    Leave { user_id: Uuid, now: DateTime<Utc> },
    /// Records that `booking_id` holds places for `user_id`, who must be waiting.
    Offer {
        user_id: Uuid,
        booking_id: Uuid,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    /// The offer `booking_id` was paid (`accepted`) or ended unpaid. Idempotent; an offer
    /// the list no longer has (its person left) is ignored.
    Settle {
        booking_id: Uuid,
        accepted: bool,
        now: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum WaitlistEvent {
    WaitlistJoined {
        show_id: Uuid,
        user_id: Uuid,
        quantity: u32,
        joined_at: DateTime<Utc>,
    },
    WaitlistLeft {
        user_id: Uuid,
        left_at: DateTime<Utc>,
    },
    WaitlistOffered {
        user_id: Uuid,
        booking_id: Uuid,
        expires_at: DateTime<Utc>,
        offered_at: DateTime<Utc>,
    },
    WaitlistOfferAccepted {
        user_id: Uuid,
        booking_id: Uuid,
        accepted_at: DateTime<Utc>,
    },
    WaitlistOfferLapsed {
        user_id: Uuid,
        booking_id: Uuid,
        lapsed_at: DateTime<Utc>,
    },
}

impl DomainEvent for WaitlistEvent {
    fn event_type(&self) -> String {
        match self {
            Self::WaitlistJoined { .. } => "WaitlistJoined",
            Self::WaitlistLeft { .. } => "WaitlistLeft",
            Self::WaitlistOffered { .. } => "WaitlistOffered",
            Self::WaitlistOfferAccepted { .. } => "WaitlistOfferAccepted",
            Self::WaitlistOfferLapsed { .. } => "WaitlistOfferLapsed",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitlistError {
    #[error("places are available for this event: book them instead")]
    PlacesAvailable,
    #[error("a waiting list entry is for 1 to {MAX_WAITLIST_QUANTITY} places")]
    WrongQuantity,
    #[error("not on this event's waiting list")]
    NotOnList,
    #[error("this person is not waiting for an offer")]
    NotWaiting,
}

/// Where one person's entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryStatus {
    Waiting,
    /// Places are held for them as booking `booking_id` until `expires_at`.
    Offered {
        booking_id: Uuid,
        expires_at: DateTime<Utc>,
    },
    /// They paid for the offer.
    Accepted {
        booking_id: Uuid,
    },
    /// The offer ended unpaid (expired or declined); joining again starts at the end.
    Lapsed {
        booking_id: Uuid,
    },
}

impl EntryStatus {
    /// The offer's booking, once there is one.
    pub fn booking_id(&self) -> Option<Uuid> {
        match *self {
            EntryStatus::Waiting => None,
            EntryStatus::Offered { booking_id, .. }
            | EntryStatus::Accepted { booking_id }
            | EntryStatus::Lapsed { booking_id } => Some(booking_id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub user_id: Uuid,
    pub quantity: u32,
    pub status: EntryStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Waitlist {
    pub show_id: Option<Uuid>,
    /// In the order people joined.
    pub entries: Vec<Entry>,
}

impl Waitlist {
    pub fn entry(&self, user_id: Uuid) -> Option<&Entry> {
        self.entries.iter().find(|e| e.user_id == user_id)
    }

    /// `user_id`'s 1-based rank among those waiting; 0 when they are not waiting.
    pub fn position(&self, user_id: Uuid) -> u64 {
        let mut rank = 0;
        for entry in self.waiting() {
            rank += 1;
            if entry.user_id == user_id {
                return rank;
            }
        }
        0
    }

    /// Those waiting for an offer, first come first.
    pub fn waiting(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(|e| e.status == EntryStatus::Waiting)
    }

    /// The open offers' bookings.
    pub fn open_offers(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.entries.iter().filter_map(|e| match e.status {
            EntryStatus::Offered { booking_id, .. } => Some(booking_id),
            _ => None,
        })
    }

    fn offered(&self, booking_id: Uuid) -> Option<&Entry> {
        self.entries.iter().find(
            |e| matches!(e.status, EntryStatus::Offered { booking_id: b, .. } if b == booking_id),
        )
    }

    fn decide(&self, command: WaitlistCommand) -> Result<Option<WaitlistEvent>, WaitlistError> {
        Ok(Some(match command {
            WaitlistCommand::Join {
                show_id,
                user_id,
                quantity,
                sold_out,
                now,
            } => {
                if !(1..=MAX_WAITLIST_QUANTITY).contains(&quantity) {
                    return Err(WaitlistError::WrongQuantity);
                }
                match self.entry(user_id).map(|e| e.status) {
                    Some(EntryStatus::Lapsed { .. }) | None => {}
                    Some(_) => return Ok(None),
                }
                if !sold_out {
                    return Err(WaitlistError::PlacesAvailable);
                }
                WaitlistEvent::WaitlistJoined {
                    show_id,
                    user_id,
                    quantity,
                    joined_at: now,
                }
            }
            WaitlistCommand::Leave { user_id, now } => {
                if self.entry(user_id).is_none() {
                    return Err(WaitlistError::NotOnList);
                }
                WaitlistEvent::WaitlistLeft {
                    user_id,
                    left_at: now,
                }
            }
            WaitlistCommand::Offer {
                user_id,
                booking_id,
                expires_at,
                now,
            } => match self.entry(user_id).map(|e| e.status) {
                Some(EntryStatus::Waiting) => WaitlistEvent::WaitlistOffered {
                    user_id,
                    booking_id,
                    expires_at,
                    offered_at: now,
                },
                Some(EntryStatus::Offered { booking_id: b, .. }) if b == booking_id => {
                    return Ok(None);
                }
                Some(_) => return Err(WaitlistError::NotWaiting),
                None => return Err(WaitlistError::NotOnList),
            },
            WaitlistCommand::Settle {
                booking_id,
                accepted,
                now,
            } => {
                let Some(entry) = self.offered(booking_id) else {
                    return Ok(None);
                };
                let user_id = entry.user_id;
                if accepted {
                    WaitlistEvent::WaitlistOfferAccepted {
                        user_id,
                        booking_id,
                        accepted_at: now,
                    }
                } else {
                    WaitlistEvent::WaitlistOfferLapsed {
                        user_id,
                        booking_id,
                        lapsed_at: now,
                    }
                }
            }
        }))
    }

    fn set_status(&mut self, user_id: Uuid, status: EntryStatus) {
        if let Some(entry) = self.entries.iter_mut().find(|e| e.user_id == user_id) {
            entry.status = status;
        }
    }
}

impl Aggregate for Waitlist {
    const TYPE: &'static str = "waitlist";
    type Command = WaitlistCommand;
    type Event = WaitlistEvent;
    type Error = WaitlistError;
    type Services = ();

    async fn handle(
        &mut self,
        command: WaitlistCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), WaitlistError> {
        if let Some(event) = self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: WaitlistEvent) {
        match event {
            WaitlistEvent::WaitlistJoined {
                show_id,
                user_id,
                quantity,
                ..
            } => {
                self.show_id = Some(show_id);
                self.entries.retain(|e| e.user_id != user_id);
                self.entries.push(Entry {
                    user_id,
                    quantity,
                    status: EntryStatus::Waiting,
                });
            }
            WaitlistEvent::WaitlistLeft { user_id, .. } => {
                self.entries.retain(|e| e.user_id != user_id);
            }
            WaitlistEvent::WaitlistOffered {
                user_id,
                booking_id,
                expires_at,
                ..
            } => self.set_status(
                user_id,
                EntryStatus::Offered {
                    booking_id,
                    expires_at,
                },
            ),
            WaitlistEvent::WaitlistOfferAccepted {
                user_id,
                booking_id,
                ..
            } => self.set_status(user_id, EntryStatus::Accepted { booking_id }),
            WaitlistEvent::WaitlistOfferLapsed {
                user_id,
                booking_id,
                ..
            } => self.set_status(user_id, EntryStatus::Lapsed { booking_id }),
        }
    }
}
