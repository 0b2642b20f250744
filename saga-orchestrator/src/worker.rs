//! Runs due saga steps: reads the booking and its payment from the event store, asks
//! `decide` what to do, and does it. Every action is idempotent (a command on an aggregate
//! that already moved on writes nothing), so a step interrupted anywhere is simply run again.
//! A failing step is retried with exponential backoff and jitter; after `max_attempts` it is
//! dead-lettered (published with its error, counted in `saga_dead_lettered_total`) and
//! dropped — and even then no seat stays held past its expiry, because the inventory counts an
//! expired hold as free.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use chrono::Utc;
use domain::booking::{Booking, BookingCommand};
use domain::inventory::{InventoryCommand, InventoryError, SectionInventory, inventory_id};
use domain::payment::{Payment, PaymentCommand};
use domain::show::Show;
use plumbing::kafka::KafkaSettings;
use plumbing::store::{AggregateStore, ExecuteError};
use rand::Rng;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::decide::{Action, decide};
use crate::provider::{ChargeRequest, PaymentProvider, RefundRequest};
use crate::tasks::{self, Task};

/// How long a claimed step is this worker's. Short: when a saga process dies, the steps it
/// held wait this long before another (or the restarted) process runs them, and that wait
/// must fit well inside a payment deadline. A step that outlives it may run twice; every
/// action is idempotent.
const LEASE: Duration = Duration::from_secs(10);
/// Steps running at once per worker.
const WINDOW: usize = 32;

pub struct Stores {
    pub bookings: Arc<AggregateStore<Booking>>,
    pub payments: Arc<AggregateStore<Payment>>,
    pub inventory: Arc<AggregateStore<SectionInventory>>,
    pub shows: Arc<AggregateStore<Show>>,
}

pub struct Worker {
    pub pool: PgPool,
    pub stores: Stores,
    pub provider: Arc<dyn PaymentProvider>,
    pub kafka: KafkaSettings,
    pub producer: FutureProducer,
    pub poll: Duration,
    pub max_attempts: i32,
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

fn failed<E: std::fmt::Debug>(what: &str) -> impl FnOnce(E) -> anyhow::Error + '_ {
    move |e| anyhow::anyhow!("{what}: {e:?}")
}

impl Worker {
    /// Keeps up to `WINDOW` steps running, each in its own task: claims more whenever fewer
    /// than half are in flight (or the poll interval passes), so one slow step — a provider
    /// call — no longer holds back the steps claimed with it. (Own tasks, not futures polled
    /// by this loop: a step paused while the loop waits for a connection to claim with
    /// would hold its own connection — the pool ran dry that way.) On shutdown, finishes the
    /// running ones.
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let mut running = JoinSet::new();
        while !shutdown.is_cancelled() {
            if running.len() < WINDOW / 2 {
                let free = i64::try_from(WINDOW - running.len()).unwrap_or(0);
                match tasks::claim_due(&this.pool, free, LEASE).await {
                    Ok(due) => {
                        for task in due {
                            let worker = this.clone();
                            running.spawn(async move { worker.settle(&task).await });
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "cannot claim saga steps"),
                }
            }
            if running.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(this.poll) => {}
                }
                continue;
            }
            tokio::select! {
                _ = running.join_next() => {}
                _ = tokio::time::sleep(this.poll) => {}
            }
        }
        while running.join_next().await.is_some() {}
    }

    /// Runs one step and records its outcome.
    async fn settle(&self, task: &Task) {
        let kind = tasks::encode(&task.step).0;
        let outcome = self.execute(task).await;
        let recorded = match outcome {
            Ok(()) => {
                metrics::counter!("saga_steps_total", "step" => kind, "outcome" => "ok")
                    .increment(1);
                tasks::complete(&self.pool, task).await
            }
            Err(err) if task.attempts + 1 >= self.max_attempts => {
                tracing::error!(booking_id = %task.booking_id, step = kind, error = format!("{err:#}"), "saga step dead-lettered");
                metrics::counter!("saga_dead_lettered_total", "step" => kind).increment(1);
                self.dead_letter(task, &err).await;
                tasks::complete(&self.pool, task).await
            }
            Err(err) => {
                tracing::warn!(booking_id = %task.booking_id, step = kind, attempt = task.attempts + 1, error = format!("{err:#}"), "saga step failed; retrying");
                metrics::counter!("saga_steps_total", "step" => kind, "outcome" => "retry")
                    .increment(1);
                tasks::retry(
                    &self.pool,
                    task,
                    backoff(task.attempts),
                    &format!("{err:#}"),
                )
                .await
            }
        };
        if let Err(err) = recorded {
            // The lease runs out and the step runs again; every action is idempotent.
            tracing::warn!(error = %err, "cannot record a saga step's outcome");
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

    async fn execute(&self, task: &Task) -> anyhow::Result<()> {
        let id = task.booking_id.to_string();
        let (booking, _) = self
            .stores
            .bookings
            .load(&id)
            .await
            .map_err(failed("load booking"))?;
        let payment = match booking.payment_id {
            Some(payment_id) => Some(
                self.stores
                    .payments
                    .load(&payment_id.to_string())
                    .await
                    .map_err(failed("load payment"))?
                    .0,
            )
            .filter(Payment::exists),
            None => None,
        };
        let now = Utc::now();
        let actions = decide(&task.step, &booking, payment.as_ref(), now);
        for action in actions {
            self.perform(task, &booking, action).await?;
        }
        Ok(())
    }

    async fn perform(&self, task: &Task, booking: &Booking, action: Action) -> anyhow::Result<()> {
        let meta = meta(task);
        let now = Utc::now();
        let booking_id = task.booking_id;
        let id = booking_id.to_string();
        let show_id = booking.show_id.unwrap_or_default();
        let sections = booking.section_ids();
        let meta = &meta;
        let id = &id;
        let book = |command| async move {
            self.stores
                .bookings
                .execute(id, command, meta)
                .await
                .map(|_| ())
                .map_err(failed("booking command"))
        };
        match action {
            Action::RecordPaymentRequest {
                payment_id,
                amount,
                token,
            } => {
                self.stores
                    .payments
                    .execute(
                        &payment_id.to_string(),
                        PaymentCommand::Request {
                            booking_id,
                            amount,
                            token,
                            now,
                        },
                        meta,
                    )
                    .await
                    .map_err(failed("record payment request"))?;
            }
            Action::Charge {
                payment_id,
                amount,
                token,
            } => {
                self.provider
                    .charge(&ChargeRequest {
                        payment_id,
                        booking_id,
                        amount,
                        token,
                    })
                    .await?;
            }
            Action::ConfirmSales => {
                for section in &sections {
                    let sold = self
                        .stores
                        .inventory
                        .execute(
                            &inventory_id(show_id, section),
                            InventoryCommand::ConfirmSale { booking_id },
                            meta,
                        )
                        .await;
                    match sold {
                        Ok(_) => {}
                        Err(ExecuteError::Rejected(InventoryError::NoHold)) => {
                            // The seats were given to someone else before the payment
                            // settled: undo what was sold and cancel; `Release` refunds.
                            self.return_sales(show_id, &sections, booking_id, meta)
                                .await?;
                            return book(BookingCommand::Cancel {
                                reason: domain::booking::CancelReason::PaymentTimedOut,
                                detail: "the seats were released before the payment completed"
                                    .into(),
                                now,
                            })
                            .await;
                        }
                        Err(err) => return Err(failed("confirm sale")(err)),
                    }
                }
            }
            Action::ConfirmBooking => book(BookingCommand::Confirm { now }).await?,
            Action::CancelBooking { reason, detail } => {
                book(BookingCommand::Cancel {
                    reason,
                    detail,
                    now,
                })
                .await?;
            }
            Action::ExpireBooking => book(BookingCommand::Expire { now }).await?,
            Action::ReleaseHolds => {
                for section in &sections {
                    self.release(&inventory_id(show_id, section), booking_id, meta)
                        .await?;
                }
            }
            Action::ReleaseHold { inventory_id } => {
                self.release(&inventory_id, booking_id, meta).await?;
            }
            Action::RequestPaymentRefund { payment_id } => {
                self.stores
                    .payments
                    .execute(
                        &payment_id.to_string(),
                        PaymentCommand::RequestRefund { now },
                        meta,
                    )
                    .await
                    .map_err(failed("request refund"))?;
            }
            Action::CallRefund { payment_id, amount } => {
                self.provider
                    .refund(&RefundRequest { payment_id, amount })
                    .await?;
            }
            Action::MarkBookingRefunded => book(BookingCommand::MarkRefunded { now }).await?,
            Action::ReturnSales => {
                self.return_sales(show_id, &sections, booking_id, meta)
                    .await?
            }
            Action::RequestBookingRefund { reason } => {
                let (show, _) = self
                    .stores
                    .shows
                    .load(&show_id.to_string())
                    .await
                    .map_err(failed("load show"))?;
                book(BookingCommand::RequestRefund {
                    reason,
                    starts_at: show.starts_at.unwrap_or(now),
                    now,
                })
                .await?;
            }
        }
        Ok(())
    }

    async fn release(
        &self,
        inventory: &str,
        booking_id: uuid::Uuid,
        meta: &HashMap<String, String>,
    ) -> anyhow::Result<()> {
        self.stores
            .inventory
            .execute(inventory, InventoryCommand::Release { booking_id }, meta)
            .await
            .map(|_| ())
            .map_err(failed("release hold"))
    }

    async fn return_sales(
        &self,
        show_id: uuid::Uuid,
        sections: &[String],
        booking_id: uuid::Uuid,
        meta: &HashMap<String, String>,
    ) -> anyhow::Result<()> {
        for section in sections {
            self.stores
                .inventory
                .execute(
                    &inventory_id(show_id, section),
                    InventoryCommand::ReturnSale { booking_id },
                    meta,
                )
                .await
                .map_err(failed("return sale"))?;
        }
        Ok(())
    }
}

/// 200 ms doubling to 5 s, with jitter: short enough that a step waiting on a recovered
/// dependency runs again well before the payment deadline.
fn backoff(attempts: i32) -> Duration {
    let cap = (200u64 << attempts.clamp(0, 8)).min(5_000);
    Duration::from_millis(rand::rng().random_range(cap / 2..=cap))
}
