//! The buying loop: a bounded number of virtual users take buyers one after another; each
//! buyer tries to hold seats (up to `attempts` times when they are taken) and pays for a
//! hold with `tok_visa` or `tok_decline`. Bounded by the buyers and by `duration`.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use rand::rngs::StdRng;
use rand::{SeedableRng, seq::IndexedRandom};
use reqwest::Method;
use serde_json::json;

use crate::api::Api;
use crate::setup::{Buyer, Event, SectionPlan};
use crate::watch::E2eTracker;

/// What one hold asks for.
pub struct HoldRequest {
    pub event_id: String,
    pub seats: Vec<String>,
    pub general_admission: Option<(String, u32)>,
}

/// How virtual users choose what to hold.
pub enum Picker {
    /// Weighted sections of one or more events; random or adjacent seats.
    Random {
        events: Vec<Event>,
        /// One weight per section of every event, in order.
        weights: Vec<(usize, usize, f64)>,
        adjacent: bool,
        places: RangeInclusive<u32>,
    },
    /// Every virtual user walks its own section in order: nobody ever collides.
    Dedicated {
        /// (event id, section) per virtual user.
        lanes: Vec<(String, SectionPlan)>,
        cursors: Vec<AtomicUsize>,
        places: RangeInclusive<u32>,
    },
}

impl Picker {
    pub fn random(
        events: Vec<Event>,
        weight: impl Fn(&SectionPlan) -> f64,
        adjacent: bool,
    ) -> Self {
        let mut weights = Vec::new();
        for (e, event) in events.iter().enumerate() {
            for (s, section) in event.sections.iter().enumerate() {
                weights.push((e, s, weight(section)));
            }
        }
        Picker::Random {
            events,
            weights,
            adjacent,
            places: 1..=4,
        }
    }

    pub fn dedicated(events: &[Event], vus: usize) -> Self {
        let all: Vec<(String, SectionPlan)> = events
            .iter()
            .flat_map(|e| e.sections.iter().map(|s| (e.id.clone(), s.clone())))
            .collect();
        let lanes: Vec<_> = (0..vus).map(|v| all[v % all.len()].clone()).collect();
        Picker::Dedicated {
            cursors: (0..vus).map(|_| AtomicUsize::new(0)).collect(),
            lanes,
            places: 1..=4,
        }
    }

    fn pick(&self, vu: usize, rng: &mut StdRng) -> Option<HoldRequest> {
        match self {
            Picker::Random {
                events,
                weights,
                adjacent,
                places,
            } => {
                let &(e, s, _) = weights.choose_weighted(rng, |w| w.2).ok()?;
                let (event, section) = (&events[e], &events[e].sections[s]);
                let wanted = rng.random_range(places.clone());
                if section.general_admission() {
                    return Some(HoldRequest {
                        event_id: event.id.clone(),
                        seats: Vec::new(),
                        general_admission: Some((section.section_id.clone(), wanted)),
                    });
                }
                let seats = if *adjacent {
                    let start = rng.random_range(0..section.seats.len());
                    section.seats[start..(start + wanted as usize).min(section.seats.len())]
                        .to_vec()
                } else {
                    section
                        .seats
                        .choose_multiple(rng, wanted as usize)
                        .cloned()
                        .collect()
                };
                Some(HoldRequest {
                    event_id: event.id.clone(),
                    seats,
                    general_admission: None,
                })
            }
            Picker::Dedicated {
                lanes,
                cursors,
                places,
            } => {
                let (event_id, section) = &lanes[vu];
                let wanted = rng.random_range(places.clone()) as usize;
                let start = cursors[vu].fetch_add(wanted, Ordering::Relaxed);
                if section.general_admission() {
                    return (start + wanted <= section.capacity as usize).then(|| HoldRequest {
                        event_id: event_id.clone(),
                        seats: Vec::new(),
                        general_admission: Some((section.section_id.clone(), wanted as u32)),
                    });
                }
                let seats = section.seats.get(start..start + wanted)?.to_vec();
                Some(HoldRequest {
                    event_id: event_id.clone(),
                    seats,
                    general_admission: None,
                })
            }
        }
    }
}

pub struct Plan {
    pub picker: Picker,
    pub vus: usize,
    /// Holds a buyer tries before giving up (each further one after a 409).
    pub attempts: u32,
    /// Share of payments made with `tok_visa` (the rest `tok_decline`); 0 holds only.
    pub pay_share: f64,
    pub visa_share: f64,
    pub duration: Duration,
    /// Start again from the first buyer when all have had their turn (bounded by time).
    pub recycle: bool,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub elapsed: Duration,
    pub holds_created: u64,
    pub holds_conflict: u64,
    pub holds_other: u64,
    pub seats_held: u64,
    pub payments: u64,
    pub buyers_served: usize,
}

impl Outcome {
    pub fn answered_per_second(&self) -> f64 {
        (self.holds_created + self.holds_conflict) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn created_per_second(&self) -> f64 {
        self.holds_created as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs the plan; `accepted` (when watching WebSockets) receives each held seat with the
/// instant its hold was accepted.
pub async fn drive(
    api: &Api,
    buyers: &[Buyer],
    plan: &Plan,
    accepted: Option<Arc<E2eTracker>>,
) -> Outcome {
    let started = Instant::now();
    let deadline = started + plan.duration;
    let next_buyer = AtomicUsize::new(0);
    let counters: [AtomicU64; 5] = Default::default();
    let [created, conflict, other, seats_held, payments] = &counters;
    let workers = (0..plan.vus).map(|vu| {
        let next_buyer = &next_buyer;
        let accepted = accepted.clone();
        async move {
            let mut rng = StdRng::seed_from_u64(vu as u64 + 1);
            while Instant::now() < deadline {
                let b = next_buyer.fetch_add(1, Ordering::Relaxed);
                let buyer = if plan.recycle && !buyers.is_empty() {
                    &buyers[b % buyers.len()]
                } else {
                    let Some(buyer) = buyers.get(b) else { break };
                    buyer
                };
                for _ in 0..plan.attempts.max(1) {
                    let Some(request) = plan.picker.pick(vu, &mut rng) else {
                        break;
                    };
                    let mut body = json!({"event_id": request.event_id, "seats": request.seats});
                    if let Some((section, quantity)) = &request.general_admission {
                        body["general_admission"] =
                            json!([{"section_id": section, "quantity": quantity}]);
                    }
                    let answer = api
                        .call(
                            "POST /api/bookings",
                            Method::POST,
                            "/api/bookings",
                            Some(&buyer.token),
                            Some(body),
                        )
                        .await;
                    let Ok(answer) = answer else {
                        other.fetch_add(1, Ordering::Relaxed);
                        break;
                    };
                    match answer.status.as_u16() {
                        201 => {
                            created.fetch_add(1, Ordering::Relaxed);
                            let now = Instant::now();
                            let held = request.seats.len() as u64
                                + request
                                    .general_admission
                                    .as_ref()
                                    .map_or(0, |g| u64::from(g.1));
                            seats_held.fetch_add(held, Ordering::Relaxed);
                            if let Some(accepted) = &accepted {
                                for seat in &request.seats {
                                    accepted.accepted(seat, now, &api.recorder);
                                }
                            }
                            if rng.random_bool(plan.pay_share.clamp(0.0, 1.0)) {
                                let token = if rng.random_bool(plan.visa_share.clamp(0.0, 1.0)) {
                                    "tok_visa"
                                } else {
                                    "tok_decline"
                                };
                                let booking =
                                    answer.body["booking_id"].as_str().unwrap_or_default();
                                let paid = api
                                    .call(
                                        "POST /api/bookings/{id}/pay",
                                        Method::POST,
                                        &format!("/api/bookings/{booking}/pay"),
                                        Some(&buyer.token),
                                        Some(json!({"payment_token": token})),
                                    )
                                    .await;
                                if paid.is_ok_and(|p| p.status.as_u16() == 202) {
                                    payments.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            break;
                        }
                        409 => {
                            conflict.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            other.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
            }
        }
    });
    futures::future::join_all(workers).await;
    Outcome {
        elapsed: started.elapsed(),
        holds_created: created.load(Ordering::Relaxed),
        holds_conflict: conflict.load(Ordering::Relaxed),
        holds_other: other.load(Ordering::Relaxed),
        seats_held: seats_held.load(Ordering::Relaxed),
        payments: payments.load(Ordering::Relaxed),
        buyers_served: next_buyer.load(Ordering::Relaxed).min(buyers.len()),
    }
}

/// Prints the throughput lines of an outcome.
pub fn print(outcome: &Outcome) {
    println!(
        "holds answered: {:.0}/s ({} created 201, {} conflicts 409, {} other) over {:.1} s; \
         {:.0} created/s; {} seats held; {} payments accepted; {} buyers served",
        outcome.answered_per_second(),
        outcome.holds_created,
        outcome.holds_conflict,
        outcome.holds_other,
        outcome.elapsed.as_secs_f64(),
        outcome.created_per_second(),
        outcome.seats_held,
        outcome.payments,
        outcome.buyers_served,
    );
}
