//! Venue layouts: seated sections of numbered rows and general-admission capacities, seat
//! ids (`{section_id}:{row}:{number}`) and the rules a layout must satisfy.

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::rules::{Checks, MAX_LIST, MAX_STRING};

/// Most places in one section.
pub const MAX_SECTION_PLACES: u32 = 10_000;
/// Most places in one event.
pub const MAX_EVENT_PLACES: u32 = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Row {
    pub row: String,
    /// Seats numbered 1..=seats.
    pub seats: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Section {
    Seated {
        section_id: String,
        name: String,
        rows: Vec<Row>,
    },
    GeneralAdmission {
        section_id: String,
        name: String,
        capacity: u32,
    },
}

impl Section {
    pub fn section_id(&self) -> &str {
        match self {
            Section::Seated { section_id, .. } | Section::GeneralAdmission { section_id, .. } => {
                section_id
            }
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Section::Seated { name, .. } | Section::GeneralAdmission { name, .. } => name,
        }
    }

    pub fn is_seated(&self) -> bool {
        matches!(self, Section::Seated { .. })
    }

    /// Places in the section (saturating; validation bounds it).
    pub fn capacity(&self) -> u32 {
        match self {
            Section::Seated { rows, .. } => {
                rows.iter().fold(0u32, |a, r| a.saturating_add(r.seats))
            }
            Section::GeneralAdmission { capacity, .. } => *capacity,
        }
    }

    /// Whether `seat_id` names a seat of this (seated) section.
    pub fn has_seat(&self, seat_id: &str) -> bool {
        let Section::Seated {
            section_id, rows, ..
        } = self
        else {
            return false;
        };
        match parse_seat_id(seat_id) {
            Some((section, row, number)) => {
                section == section_id
                    && rows
                        .iter()
                        .any(|r| r.row == row && (1..=r.seats).contains(&number))
            }
            None => false,
        }
    }

    /// Every seat id, row by row (seated sections only).
    pub fn seat_ids(&self) -> Vec<String> {
        match self {
            Section::Seated {
                section_id, rows, ..
            } => rows
                .iter()
                .flat_map(|r| (1..=r.seats).map(move |n| seat_id(section_id, &r.row, n)))
                .collect(),
            Section::GeneralAdmission { .. } => Vec::new(),
        }
    }
}

pub fn seat_id(section_id: &str, row: &str, number: u32) -> String {
    format!("{section_id}:{row}:{number}")
}

/// Splits `section:row:number`; `number` must be canonical decimal (no sign, no leading zero).
pub fn parse_seat_id(seat_id: &str) -> Option<(&str, &str, u32)> {
    let mut parts = seat_id.split(':');
    let (section, row, number) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || number.starts_with('0')
        || !number.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some((section, row, number.parse().ok()?))
}

/// Checks a whole layout; every broken rule is reported with the field path.
pub fn check_layout(sections: &[Section]) -> Result<(), Vec<crate::FieldError>> {
    let mut checks = Checks::new();
    if sections.is_empty() {
        checks.fail("sections", "a layout needs at least one section");
    }
    if sections.len() > MAX_LIST {
        checks.fail("sections", format!("at most {MAX_LIST} sections"));
    }
    let mut ids = BTreeSet::new();
    let mut total: u64 = 0;
    for (i, section) in sections.iter().enumerate() {
        let at = format!("sections[{i}]");
        checks
            .chosen_id(&format!("{at}.section_id"), section.section_id())
            .text(&format!("{at}.name"), section.name(), MAX_STRING);
        if !ids.insert(section.section_id()) {
            checks.fail(
                &format!("{at}.section_id"),
                "section ids must be unique within an event",
            );
        }
        match section {
            Section::Seated { rows, .. } => {
                if rows.is_empty() || rows.len() > MAX_LIST {
                    checks.fail(&format!("{at}.rows"), format!("1 to {MAX_LIST} rows"));
                }
                let mut row_ids = BTreeSet::new();
                for (j, row) in rows.iter().enumerate() {
                    checks.chosen_id(&format!("{at}.rows[{j}].row"), &row.row);
                    if !row_ids.insert(row.row.as_str()) {
                        checks.fail(
                            &format!("{at}.rows[{j}].row"),
                            "row ids must be unique within a section",
                        );
                    }
                    if row.seats == 0 {
                        checks.fail(
                            &format!("{at}.rows[{j}].seats"),
                            "a row needs at least one seat",
                        );
                    }
                }
            }
            Section::GeneralAdmission { capacity, .. } => {
                if *capacity == 0 {
                    checks.fail(&format!("{at}.capacity"), "capacity must be at least 1");
                }
            }
        }
        let places = section.capacity();
        if places > MAX_SECTION_PLACES {
            checks.fail(
                &at,
                format!("a section holds at most {MAX_SECTION_PLACES} places"),
            );
        }
        total += u64::from(places);
    }
    if total > u64::from(MAX_EVENT_PLACES) {
        checks.fail(
            "sections",
            format!("an event holds at most {MAX_EVENT_PLACES} places"),
        );
    }
    checks.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seated(id: &str, rows: &[(&str, u32)]) -> Section {
        Section::Seated {
            section_id: id.into(),
            name: id.into(),
            rows: rows
                .iter()
                .map(|(r, s)| Row {
                    row: (*r).into(),
                    seats: *s,
                })
                .collect(),
        }
    }

    #[test]
    fn seat_ids_are_canonical() {
        assert_eq!(parse_seat_id("stalls:A:12"), Some(("stalls", "A", 12)));
        assert_eq!(parse_seat_id("stalls:A:012"), None);
        assert_eq!(parse_seat_id("stalls:A:+1"), None);
        assert_eq!(parse_seat_id("stalls:A"), None);
        assert_eq!(parse_seat_id("stalls:A:1:2"), None);
    }

    #[test]
    fn a_section_knows_its_seats() {
        let s = seated("stalls", &[("A", 3), ("B", 2)]);
        assert!(s.has_seat("stalls:A:3"));
        assert!(!s.has_seat("stalls:A:4"));
        assert!(!s.has_seat("stalls:C:1"));
        assert!(!s.has_seat("balcony:A:1"));
        assert_eq!(s.capacity(), 5);
        assert_eq!(s.seat_ids().len(), 5);
    }

    #[test]
    fn rejects_duplicate_sections_and_rows() {
        let errors = check_layout(&[seated("a", &[("A", 1), ("A", 2)]), seated("a", &[("B", 1)])])
            .expect_err("duplicates");
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn rejects_oversized_sections_and_events() {
        assert!(check_layout(&[seated("a", &[("A", 10_001)])]).is_err());
        assert!(check_layout(&[seated("a", &[("A", 10_000)])]).is_ok());
        let big: Vec<Section> = (0..11)
            .map(|i| Section::GeneralAdmission {
                section_id: format!("ga{i}"),
                name: "GA".into(),
                capacity: 10_000,
            })
            .collect();
        assert!(check_layout(&big).is_err());
    }

    #[test]
    fn rejects_empty_and_malformed_sections() {
        assert!(check_layout(&[]).is_err());
        assert!(check_layout(&[seated("bad id", &[("A", 1)])]).is_err());
        assert!(check_layout(&[seated("a", &[])]).is_err());
        assert!(check_layout(&[seated("a", &[("A", 0)])]).is_err());
        assert!(
            check_layout(&[Section::GeneralAdmission {
                section_id: "ga".into(),
                name: "Floor".into(),
                capacity: 0
            }])
            .is_err()
        );
    }
}
