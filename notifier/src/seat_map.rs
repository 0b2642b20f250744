//! The seat map of one event as of the newest `seat_status` frame sent for it: what a
//! member that fell behind its room is sent instead of the frames it skipped. It holds the
//! sections this instance has sent changes of (a section it never announced cannot have
//! been missed), as the same inventory states the last frame was made from.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::Utc;
use domain::inventory::SectionInventory;
use schemas::ws::{SeatChange, SectionAvailable, ServerMessage};
use uuid::Uuid;

use crate::rooms::Resync;

#[derive(Clone, Default)]
pub struct SeatMap {
    pub event_id: Uuid,
    pub position: i64,
    /// Section id → its inventory (persistent maps inside: a copy shares the seats).
    pub sections: BTreeMap<String, SectionInventory>,
}

impl SeatMap {
    pub fn new(event_id: Uuid) -> Self {
        Self {
            event_id,
            ..Self::default()
        }
    }

    /// Takes in a frame's sections and position.
    pub fn update(&mut self, position: i64, sections: BTreeMap<String, SectionInventory>) {
        self.position = self.position.max(position);
        self.sections.extend(sections);
    }
}

impl Resync for SeatMap {
    /// Every seat of the known sections with its status, and their availability.
    fn frame(&self) -> Bytes {
        let now = Utc::now();
        let mut changes = Vec::new();
        let mut sections = Vec::new();
        for (section_id, inventory) in &self.sections {
            if let Some(section) = &inventory.section {
                changes.extend(section.seat_ids().into_iter().map(|seat_id| {
                    let status = inventory.seat_status(&seat_id, now).to_owned();
                    SeatChange { seat_id, status }
                }));
            }
            sections.push(SectionAvailable {
                section_id: section_id.clone(),
                available: inventory.available(now),
            });
        }
        let text = ServerMessage::SeatStatus {
            event_id: self.event_id,
            position: self.position,
            changes,
            sections,
        }
        .to_frame();
        crate::wire::text(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::show::{Row, Section};
    use uuid::Uuid;

    fn section(id: &str, seats: u32) -> SectionInventory {
        SectionInventory {
            section: Some(Section::Seated {
                section_id: id.into(),
                name: id.into(),
                rows: vec![Row {
                    row: "A".into(),
                    seats,
                }],
            }),
            ..SectionInventory::default()
        }
    }

    #[test]
    fn the_resync_lists_every_seat_of_every_known_section_at_the_newest_position() {
        let event = Uuid::new_v4();
        let mut map = SeatMap::new(event);
        let mut stalls = section("stalls", 2);
        stalls
            .sold_seats
            .insert("stalls:A:2".into(), Uuid::new_v4());
        map.update(7, BTreeMap::from([("stalls".to_owned(), stalls)]));
        map.update(5, BTreeMap::from([("box".to_owned(), section("box", 1))]));
        let frame = map.frame();
        // The payload after the 4-byte header of a 126..65535-byte text frame.
        assert_eq!(&frame[..2], &[0x81, 126]);
        let frame: serde_json::Value = serde_json::from_slice(&frame[4..]).expect("json frame");
        assert_eq!(frame["type"], "seat_status");
        assert_eq!(frame["event_id"], event.to_string());
        assert_eq!(frame["position"], 7);
        assert_eq!(
            frame["changes"],
            serde_json::json!([
                {"seat_id": "box:A:1", "status": "available"},
                {"seat_id": "stalls:A:1", "status": "available"},
                {"seat_id": "stalls:A:2", "status": "sold"},
            ])
        );
        assert_eq!(
            frame["sections"],
            serde_json::json!([
                {"section_id": "box", "available": 1},
                {"section_id": "stalls", "available": 1},
            ])
        );
    }
}
