//! Venue templates an organizer can start a layout from (`GET /api/events/templates`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::layout::{Row, Section};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Template {
    pub template_id: String,
    pub name: String,
    pub sections: Vec<Section>,
}

fn rows(labels: impl Iterator<Item = String>, seats: u32) -> Vec<Row> {
    labels.map(|row| Row { row, seats }).collect()
}

fn letters(n: u8) -> impl Iterator<Item = String> {
    (0..n).map(|i| ((b'A' + i) as char).to_string())
}

fn numbered(n: u32) -> impl Iterator<Item = String> {
    (1..=n).map(|i| i.to_string())
}

/// A seated theatre (800 seats), a standing venue (1,800 places) and a mixed arena (21,200).
pub fn all() -> Vec<Template> {
    let mut arena = vec![Section::GeneralAdmission {
        section_id: "floor".into(),
        name: "Floor (standing)".into(),
        capacity: 6_000,
    }];
    for side in ["north", "east", "south", "west"] {
        arena.push(Section::Seated {
            section_id: format!("lower-{side}"),
            name: format!("Lower tier {side}"),
            rows: rows(numbered(40), 50),
        });
    }
    for side in ["north", "east", "south", "west"] {
        arena.push(Section::Seated {
            section_id: format!("upper-{side}"),
            name: format!("Upper tier {side}"),
            rows: rows(numbered(30), 60),
        });
    }
    vec![
        Template {
            template_id: "theatre".into(),
            name: "Theatre (stalls and balcony)".into(),
            sections: vec![
                Section::Seated {
                    section_id: "stalls".into(),
                    name: "Stalls".into(),
                    rows: rows(letters(20), 30),
                },
                Section::Seated {
                    section_id: "balcony".into(),
                    name: "Balcony".into(),
                    rows: rows(letters(8), 25),
                },
            ],
        },
        Template {
            template_id: "club".into(),
            name: "Standing venue".into(),
            sections: vec![
                Section::GeneralAdmission {
                    section_id: "floor".into(),
                    name: "Floor".into(),
                    capacity: 1_500,
                },
                Section::GeneralAdmission {
                    section_id: "mezzanine".into(),
                    name: "Mezzanine".into(),
                    capacity: 300,
                },
            ],
        },
        Template {
            template_id: "arena".into(),
            name: "Arena (standing floor, seated tiers)".into(),
            sections: arena,
        },
    ]
}

pub fn find(template_id: &str) -> Option<Template> {
    all().into_iter().find(|t| t.template_id == template_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::show::layout::check_layout;

    #[test]
    fn every_template_is_a_valid_layout() {
        for template in all() {
            assert_eq!(
                check_layout(&template.sections),
                Ok(()),
                "{}",
                template.template_id
            );
        }
    }

    #[test]
    fn offers_theatre_standing_and_a_large_mixed_arena() {
        let theatre = find("theatre").expect("theatre");
        assert!(theatre.sections.iter().all(Section::is_seated));
        let club = find("club").expect("club");
        assert!(club.sections.iter().all(|s| !s.is_seated()));
        let arena = find("arena").expect("arena");
        let places: u32 = arena.sections.iter().map(Section::capacity).sum();
        assert!(places >= 20_000, "arena has {places}");
        assert!(arena.sections.iter().any(Section::is_seated));
        assert!(arena.sections.iter().any(|s| !s.is_seated()));
    }
}
