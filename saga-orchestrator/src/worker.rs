//! Runs due saga steps: each is decided and stored as one unit (`step`), then its provider
//! calls are made. Every action is idempotent (a command on an aggregate that already moved
//! on writes nothing; the payment id is the provider's idempotency key), so a step
//! interrupted anywhere is simply run again.
//! A failing step is retried with exponential backoff and jitter; after `max_attempts` it is
//! dead-lettered (published with its error, counted in `saga_dead_lettered_total`) and
//! dropped — and even then no seat stays held past its expiry, because the inventory counts an
//! expired hold as free.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use backon::{BackoffBuilder, ExponentialBuilder};
use domain::booking::Booking;
use domain::inventory::SectionInventory;
use domain::payment::Payment;
use domain::show::Show;
use plumbing::kafka::KafkaSettings;

use plumbing::store::AggregateStore;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::payment_tokens;
use crate::provider::{Charge, PaymentProvider};
use crate::step::{self, Call};
use crate::tasks::{self, Task};

/// How long a claimed step is this worker's. Short: when a saga process dies, the steps it
/// held wait this long before another (or the restarted) process runs them, and that wait
/// must fit well inside a payment deadline. A step that outlives it may run twice; every
/// action is idempotent.
const LEASE: Duration = Duration::from_secs(10);
/// Steps running at once per worker.
const WINDOW: usize = 32;

/// The aggregates the saga decides on, shared with the reactions that keep them warm.
#[derive(Clone)]
pub struct Stores {
    pub bookings: Arc<AggregateStore<Booking>>,
    pub payments: Arc<AggregateStore<Payment>>,
    pub inventory: Arc<AggregateStore<SectionInventory>>,
    pub shows: Arc<AggregateStore<Show>>,
    pub vouchers: Arc<AggregateStore<domain::voucher::Voucher>>,
    pub customers: Arc<AggregateStore<domain::customer::CustomerPlaces>>,
    pub waitlists: Arc<AggregateStore<domain::waitlist::Waitlist>>,
}

pub struct Worker {
    pub pool: PgPool,
    pub stores: Stores,
    pub provider: Arc<dyn PaymentProvider>,
    pub kafka: KafkaSettings,
    pub producer: FutureProducer,
    pub poll: Duration,
    pub max_attempts: i32,
    /// How long a waiting-list offer holds its places.
    pub waitlist_offer: chrono::Duration,
}

fn meta(task: &Task) -> HashMap<String, String> {
    HashMap::from([
        ("correlation_id".to_owned(), task.booking_id.to_string()),
        (
            "causation_id".to_owned(),
            format!("saga:{}", tasks::encode(&task.step).0),
        ),
    ])
}

impl Worker {
    /// Keeps up to `WINDOW` steps running, each in its own task: claims more whenever fewer
    /// than half are in flight (or the poll interval passes), so one slow step — a provider
    /// call — no longer holds back the steps claimed with it. (Own tasks, not futures polled
    /// by this loop: a step paused while the loop waits for a connection to claim with
    /// would hold its own connection — the pool ran dry that way.) Finished steps are
    /// removed by the next claim's statement (or once half a window has piled up); one that
    /// is not removed before its lease ends runs again, which every step allows. On shutdown,
    /// finishes the running ones.
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let mut running = JoinSet::new();
        let mut done: Vec<Task> = Vec::new();
        while !shutdown.is_cancelled() {
            if running.len() < WINDOW / 2 {
                let free = i64::try_from(WINDOW - running.len()).unwrap_or(0);
                match tasks::complete_and_claim(&this.pool, &done, free, LEASE).await {
                    Ok(due) => {
                        done.clear();
                        for task in due {
                            let worker = this.clone();
                            running.spawn(async move { worker.settle(task).await });
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "cannot claim saga steps"),
                }
            } else if done.len() >= WINDOW / 2 {
                this.flush(&mut done).await;
            }
            if running.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(this.poll) => {}
                }
                continue;
            }
            tokio::select! {
                finished = running.join_next() => {
                    if let Some(Ok(Some(task))) = finished {
                        done.push(task);
                    }
                }
                _ = tokio::time::sleep(this.poll) => {}
            }
        }
        while let Some(finished) = running.join_next().await {
            if let Ok(Some(task)) = finished {
                done.push(task);
            }
        }
        this.flush(&mut done).await;
    }

    async fn flush(&self, done: &mut Vec<Task>) {
        match tasks::complete_many(&self.pool, done).await {
            Ok(()) => done.clear(),
            // Kept for the next claim; their leases may end first, then they run again.
            Err(err) => tracing::warn!(error = %err, "cannot remove finished saga steps"),
        }
    }

    /// Runs one step and records a failure; a step that is finished (done, or dead-lettered)
    /// is returned for removal.
    async fn settle(&self, task: Task) -> Option<Task> {
        let kind = tasks::encode(&task.step).0;
        match self.execute(&task).await {
            Ok(()) => {
                metrics::counter!("saga_steps_total", "step" => kind, "outcome" => "ok")
                    .increment(1);
                Some(task)
            }
            Err(err) if task.attempts + 1 >= self.max_attempts => {
                tracing::error!(booking_id = %task.booking_id, step = kind, error = format!("{err:#}"), "saga step dead-lettered");
                metrics::counter!("saga_dead_lettered_total", "step" => kind).increment(1);
                self.dead_letter(&task, &err).await;
                Some(task)
            }
            Err(err) => {
                tracing::warn!(booking_id = %task.booking_id, step = kind, attempt = task.attempts + 1, error = format!("{err:#}"), "saga step failed; retrying");
                metrics::counter!("saga_steps_total", "step" => kind, "outcome" => "retry")
                    .increment(1);
                let retried = tasks::retry(
                    &self.pool,
                    &task,
                    backoff(task.attempts),
                    &format!("{err:#}"),
                )
                .await;
                if let Err(err) = retried {
                    // The lease runs out and the step runs again; every action is idempotent.
                    tracing::warn!(error = %err, "cannot record a saga step's failure");
                }
                None
            }
        }
    }

    async fn dead_letter(&self, task: &Task, err: &anyhow::Error) {
        let topic = schemas::topics::dead_letter_topic(
            &self.kafka.topic_prefix,
            crate::reactions::CONSUMER,
        );
        let body = serde_json::json!({
            "booking_id": task.booking_id,
            "step": tasks::encode(&task.step).0,
            "detail": tasks::encode(&task.step).1,
            "attempts": task.attempts + 1,
            "error": format!("{err:#}"),
        })
        .to_string();
        let key = task.booking_id.to_string();
        let record = FutureRecord::to(&topic).key(&key).payload(&body);
        if let Err((e, _)) = self.producer.send(record, Duration::from_secs(10)).await {
            tracing::error!(error = %e, "cannot publish a dead-lettered saga step");
        }
    }

    /// Decides and stores the step (one unit), then makes the provider calls it asked for.
    async fn execute(&self, task: &Task) -> anyhow::Result<()> {
        if task.step == crate::decide::Step::WaitlistOffers {
            let show_id = task.booking_id;
            return crate::waitlist::run(&self.stores, show_id, self.waitlist_offer, &meta(task))
                .await;
        }
        let calls = step::run(&self.stores, task.booking_id, &task.step, &meta(task)).await?;
        for call in calls {
            match call {
                Call::Charge(charge) => self.charge(charge).await?,
                Call::Refund(request) => self.provider.refund(&request).await?,
            }
        }
        Ok(())
    }

    /// Charges with the card token from the write side's vault, then forgets the token: the
    /// provider charges a payment id once, so an accepted charge is never asked for again and
    /// a missing token means exactly that.
    async fn charge(&self, charge: Charge) -> anyhow::Result<()> {
        let payment_id = charge.payment_id;
        let Some(token) = payment_tokens::token(&self.pool, payment_id).await? else {
            tracing::debug!(%payment_id, "the provider already accepted this charge");
            return Ok(());
        };
        self.provider.charge(&charge.with_token(token)).await?;
        payment_tokens::forget(&self.pool, payment_id).await?;
        Ok(())
    }
}

/// The pause before attempt `attempts + 1`: 200 ms doubling to 5 s, with jitter — short
/// enough that a step waiting on a recovered dependency runs again well before the payment
/// deadline. The attempt count is stored with the step, so the sequence is indexed.
fn backoff(attempts: i32) -> Duration {
    let attempt = usize::try_from(attempts.max(0)).unwrap_or(0);
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_max_times(attempt + 1)
        .with_jitter()
        .build()
        .nth(attempt)
        .unwrap_or(Duration::from_secs(5))
}
