//! Setting the stage through the public API: an organizer, published events, buyers.

use anyhow::Context;
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use crate::Target;
use crate::api::Api;

/// The password every seeded account uses. Cheap hashing is the platform's business: run it
/// with `ARGON2_MEMORY_KIB=1024 ARGON2_ITERATIONS=1` (as `compose/bench.sh` does) to seed
/// thousands of buyers quickly.
pub const PASSWORD: &str = "load generator password";

/// A published event and what can be bought in it.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub sections: Vec<SectionPlan>,
}

#[derive(Debug, Clone)]
pub struct SectionPlan {
    pub section_id: String,
    /// Seat ids in row order (adjacent seats are neighbours); empty for general admission.
    pub seats: Vec<String>,
    pub capacity: u32,
}

impl SectionPlan {
    pub fn general_admission(&self) -> bool {
        self.seats.is_empty()
    }
}

/// A buyer with a token.
#[derive(Debug, Clone)]
pub struct Buyer {
    pub token: String,
}

/// Registers an organizer for this run, has the admin grant the role, logs in.
pub async fn organizer(api: &Api, target: &Target, run: &str) -> anyhow::Result<String> {
    let email = format!("organizer-{run}@loadgen.test");
    let user_id = api.register(&email, PASSWORD).await?;
    let admin = api
        .login(&target.admin_email, &target.admin_password)
        .await
        .context("the bootstrap admin must exist (BOOTSTRAP_ADMIN_EMAIL/PASSWORD)")?;
    api.expect(
        "POST /api/admin/users/{id}/roles",
        Method::POST,
        &format!("/api/admin/users/{user_id}/roles"),
        &admin,
        Some(json!({"role": "organizer"})),
        200,
    )
    .await?;
    api.login(&email, PASSWORD).await
}

/// Creates, lays out (a template id or explicit sections), prices (one tier) and publishes
/// an event, then reads its sections back from the catalogue.
pub async fn event(
    api: &Api,
    organizer: &str,
    name: &str,
    layout: Value,
    publish: Option<Value>,
) -> anyhow::Result<Event> {
    let starts = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let created = api
        .expect(
            "POST /api/events",
            Method::POST,
            "/api/events",
            organizer,
            Some(json!({"name": name, "venue": "Load Arena", "starts_at": starts})),
            201,
        )
        .await?;
    let id = created["event_id"].as_str().context("event_id")?.to_owned();
    let laid_out = api
        .expect(
            "POST /api/events/{id}/layout",
            Method::POST,
            &format!("/api/events/{id}/layout"),
            organizer,
            Some(layout),
            200,
        )
        .await?;
    let section_ids: Vec<Value> = laid_out["sections"]
        .as_array()
        .map(|s| s.iter().map(|s| s["section_id"].clone()).collect())
        .unwrap_or_default();
    api.expect(
        "POST /api/events/{id}/pricing",
        Method::POST,
        &format!("/api/events/{id}/pricing"),
        organizer,
        Some(json!({"tiers": [{"tier_id": "std", "name": "Standard",
            "price": {"amount_minor": 4500, "currency": "EUR"}, "section_ids": section_ids}]})),
        200,
    )
    .await?;
    api.expect(
        "POST /api/events/{id}/publish",
        Method::POST,
        &format!("/api/events/{id}/publish"),
        organizer,
        publish,
        200,
    )
    .await?;
    let sections = laid_out["sections"]
        .as_array()
        .context("the layout answer lists the sections")?
        .iter()
        .map(section_plan)
        .collect::<anyhow::Result<_>>()?;
    Ok(Event { id, sections })
}

fn section_plan(section: &Value) -> anyhow::Result<SectionPlan> {
    let section_id = section["section_id"]
        .as_str()
        .context("section_id")?
        .to_owned();
    if section["kind"] == "general_admission" {
        let capacity = section["capacity"].as_u64().context("capacity")? as u32;
        return Ok(SectionPlan {
            section_id,
            seats: Vec::new(),
            capacity,
        });
    }
    let mut seats = Vec::new();
    for row in section["rows"].as_array().context("rows")? {
        let label = row["row"].as_str().context("row")?;
        for n in 1..=row["seats"].as_u64().context("seats")? {
            seats.push(format!("{section_id}:{label}:{n}"));
        }
    }
    Ok(SectionPlan {
        capacity: seats.len() as u32,
        section_id,
        seats,
    })
}

/// Registers and logs in `count` buyers, `concurrency` at a time.
pub async fn buyers(
    api: &Api,
    run: &str,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<Buyer>> {
    let started = std::time::Instant::now();
    let buyers: Vec<anyhow::Result<Buyer>> = futures::stream::iter(0..count)
        .map(|i| async move {
            let email = format!("buyer-{run}-{i}@loadgen.test");
            api.register(&email, PASSWORD).await?;
            Ok(Buyer {
                token: api.login(&email, PASSWORD).await?,
            })
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let buyers: Vec<Buyer> = buyers.into_iter().collect::<anyhow::Result<_>>()?;
    println!(
        "seeded {} buyers in {:.1} s",
        buyers.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(buyers)
}
