//! `random-ids`: requests naming ids that do not exist (bookings on no event → 422, paying
//! no booking and joining no event's queue → 404), as any free account could send them,
//! while command-api's resident memory is sampled. With caches that keep no entry for
//! unknown ids the figure stays flat; the run fails if it grows by more than
//! `--max-growth-mib` after the warm-up, or if any answer is not the documented refusal.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use clap::Args;
use futures::stream::{self, StreamExt};
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::Target;
use crate::api::Api;
use crate::record::Recorder;
use crate::watch::rss_kib;

#[derive(Debug, Args)]
pub struct RandomIdsArgs {
    /// Requests in all (each names fresh random ids).
    #[arg(long, default_value_t = 100_000)]
    pub requests: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Accounts the requests are spread over (keeps each under the per-user command limit).
    #[arg(long, default_value_t = 50)]
    pub accounts: usize,
    /// command-api's process id, whose resident memory is sampled.
    #[arg(long, env = "COMMAND_API_PID")]
    pub pid: u32,
    /// Allowed growth of resident memory from after the warm-up to the end.
    #[arg(long, default_value_t = 64)]
    pub max_growth_mib: u64,
}

/// How many requests warm up allocator pools and connections before the first sample.
const WARM_UP: u64 = 2_000;

pub async fn run(target: &Target, args: RandomIdsArgs) -> anyhow::Result<bool> {
    let api = Api::new(&target.api, Recorder::default())?;
    let run = super::run_id();
    let mut tokens = Vec::with_capacity(args.accounts);
    for i in 0..args.accounts {
        let email = format!("rnd{run}-{i}@example.com");
        api.register(&email, "random ids password").await?;
        tokens.push(api.login(&email, "random ids password").await?);
    }
    let tokens = Arc::new(tokens);
    let rss = |label: &str| -> anyhow::Result<u64> {
        let kib = rss_kib(args.pid).context("cannot read command-api's resident memory")?;
        println!(
            "{label:<28} command-api RSS {:>8.1} MiB",
            kib as f64 / 1024.0
        );
        Ok(kib)
    };
    rss("before any request")?;
    let unexpected = Arc::new(AtomicU64::new(0));
    let send = |from: u64, to: u64| {
        let (api, tokens, unexpected) = (api.clone(), tokens.clone(), unexpected.clone());
        stream::iter(from..to).for_each_concurrent(args.concurrency, move |n| {
            let (api, tokens, unexpected) = (api.clone(), tokens.clone(), unexpected.clone());
            async move {
                let token = &tokens[n as usize % tokens.len()];
                let id = Uuid::new_v4();
                // API.md: a booking on an event that does not exist is not on sale (422).
                let (endpoint, path, body, expected) = match n % 3 {
                    0 => (
                        "POST /api/bookings",
                        "/api/bookings".to_owned(),
                        Some(json!({"event_id": id, "seats": ["stalls:A:1"]})),
                        422,
                    ),
                    1 => (
                        "POST /api/bookings/{id}/pay",
                        format!("/api/bookings/{id}/pay"),
                        Some(json!({"payment_token": "tok_visa"})),
                        404,
                    ),
                    _ => (
                        "POST /api/events/{id}/queue",
                        format!("/api/events/{id}/queue"),
                        None,
                        404,
                    ),
                };
                let answer = api
                    .call(endpoint, Method::POST, &path, Some(token), body)
                    .await;
                if !answer.is_ok_and(|a| a.status == expected) {
                    unexpected.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    send(0, WARM_UP.min(args.requests)).await;
    let warm = rss(&format!("after {WARM_UP} (warm-up)"))?;
    let step = (args.requests / 4).max(1);
    let mut done = WARM_UP.min(args.requests);
    let mut last = warm;
    while done < args.requests {
        let next = (done + step).min(args.requests);
        send(done, next).await;
        done = next;
        last = rss(&format!("after {done}"))?;
    }
    api.recorder.print();
    let growth_mib = last.saturating_sub(warm) / 1024;
    let unexpected = unexpected.load(Ordering::Relaxed);
    println!(
        "growth after warm-up: {growth_mib} MiB (allowed {}); unexpected answers: {unexpected}",
        args.max_growth_mib
    );
    Ok(growth_mib <= args.max_growth_mib && unexpected == 0)
}
