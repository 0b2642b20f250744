//! The waiting-room scenario: many users join one event's queue at once (joins/s and
//! latency), every one gets exactly one place, then the admission rate is observed over a
//! window and compared with the configured `admit_per_minute`.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use futures::StreamExt;
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::Target;
use crate::api::Api;
use crate::record::Recorder;
use crate::setup;

#[derive(Debug, Args)]
pub struct QueueArgs {
    #[arg(long, default_value_t = 100_000)]
    pub users: usize,
    /// Joins in flight.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    #[arg(long, default_value_t = 6_000)]
    pub admit_per_minute: u32,
    /// How long admissions are watched after the joins.
    #[arg(long, default_value_t = 30)]
    pub observe_seconds: u64,
    /// Joining needs only a token, so the users' tokens are signed here rather than
    /// registering 100,000 accounts: the platform's JWT settings.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,
    #[arg(long, env = "JWT_ISSUER", default_value = "ticketing")]
    pub jwt_issuer: String,
    #[arg(long, env = "JWT_AUDIENCE", default_value = "ticketing-api")]
    pub jwt_audience: String,
}

fn token(args: &QueueArgs, user: Uuid) -> anyhow::Result<String> {
    let now = chrono::Utc::now().timestamp();
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": user, "roles": ["customer"], "iss": args.jwt_issuer,
                "aud": args.jwt_audience, "iat": now, "exp": now + 3600}),
        &jsonwebtoken::EncodingKey::from_secret(args.jwt_secret.as_bytes()),
    )?)
}

pub async fn run(target: &Target, args: QueueArgs) -> anyhow::Result<bool> {
    let recorder = Recorder::default();
    let api = Api::new(&target.api, recorder.clone())?;
    let pool = plumbing::db::connect(&target.database_url, 4).await?;
    let run = super::run_id();
    let organizer = setup::organizer(&api, target, &run).await?;
    let event = setup::event(
        &api,
        &organizer,
        "Waiting room",
        json!({"template_id": "arena"}),
        Some(
            json!({"queue": {"enabled": true, "admit_per_minute": args.admit_per_minute,
                              "admission_minutes": 10}}),
        ),
    )
    .await?;
    let tokens: Vec<String> = (0..args.users)
        .map(|_| token(&args, Uuid::new_v4()))
        .collect::<anyhow::Result<_>>()?;

    let path = format!("/api/events/{}/queue", event.id);
    let started = Instant::now();
    let failures: usize = futures::stream::iter(tokens.iter())
        .map(|token| {
            let (api, path) = (&api, &path);
            async move {
                let answer = api
                    .call(
                        "POST /api/events/{id}/queue",
                        Method::POST,
                        path,
                        Some(token),
                        None,
                    )
                    .await;
                usize::from(!answer.is_ok_and(|a| a.status.as_u16() == 201))
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .fold(0, |sum, failed| async move { sum + failed })
        .await;
    let elapsed = started.elapsed();
    println!("--- results ---");
    println!(
        "{} joins in {:.1} s = {:.0} joins/s ({failures} failed)",
        args.users,
        elapsed.as_secs_f64(),
        args.users as f64 / elapsed.as_secs_f64()
    );

    let event_id: Uuid = event.id.parse().context("event id")?;
    let (places, ordinals, last): (i64, i64, Option<i64>) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT ordinal), max(ordinal)
         FROM waiting_room_places WHERE event_id = $1",
    )
    .bind(event_id)
    .fetch_one(&pool)
    .await?;
    let places_ok =
        failures == 0 && places == args.users as i64 && ordinals == places && last == Some(places);
    println!(
        "places: {places} for {} users, {ordinals} distinct ordinals, last {last:?}: {}",
        args.users,
        if places_ok { "OK" } else { "FAILED" }
    );

    // Admission accuracy over a window that starts now (the queue is far from drained).
    let window = Duration::from_secs(args.observe_seconds.max(1));
    let from = chrono::Utc::now();
    tokio::time::sleep(window).await;
    let to = from + chrono::Duration::from_std(window)?;
    let admitted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM waiting_room_admissions
         WHERE event_id = $1 AND admitted_at >= $2 AND admitted_at < $3",
    )
    .bind(event_id)
    .bind(from)
    .bind(to)
    .fetch_one(&pool)
    .await?;
    let rate = admitted as f64 / window.as_secs_f64() * 60.0;
    let error = (rate - f64::from(args.admit_per_minute)).abs() / f64::from(args.admit_per_minute);
    println!(
        "admissions: {admitted} in {:.0} s = {rate:.0}/min for {}/min configured ({:.1}% off)",
        window.as_secs_f64(),
        args.admit_per_minute,
        error * 100.0
    );
    // In joining order, each place once.
    let (admissions, distinct, in_order): (i64, i64, bool) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT ordinal),
                coalesce(bool_and(ordinal = rn), true)
         FROM (SELECT ordinal, row_number() OVER (ORDER BY id) AS rn
               FROM waiting_room_admissions WHERE event_id = $1) a",
    )
    .bind(event_id)
    .fetch_one(&pool)
    .await?;
    let order_ok = admissions == distinct && in_order;
    println!(
        "admission order: {admissions} admissions, {distinct} distinct places, in joining \
         order: {}",
        if order_ok { "OK" } else { "FAILED" }
    );
    recorder.print();
    Ok(places_ok && order_ok)
}
