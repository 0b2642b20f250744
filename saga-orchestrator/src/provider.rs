//! The `PaymentProvider` port and its HTTP adapter for the provider (the simulator locally).
//! A circuit breaker guards the provider: after consecutive failures calls are refused at
//! once for a while instead of piling up on a dead dependency; the saga retries them later.

use std::time::Duration;

use async_trait::async_trait;
use domain::money::Money;
use failsafe::backoff::Exponential;
use failsafe::failure_policy::ConsecutiveFailures;
use failsafe::futures::CircuitBreaker as _;
use failsafe::{Config, StateMachine, backoff, failure_policy};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChargeRequest {
    /// Also the idempotency key: the provider charges a payment id at most once.
    pub payment_id: Uuid,
    pub booking_id: Uuid,
    pub amount: Money,
    pub token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefundRequest {
    pub payment_id: Uuid,
    pub amount: Money,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the payment provider is unavailable (circuit open)")]
    CircuitOpen,
    #[error("the payment provider failed: {0}")]
    Failed(String),
}

#[async_trait]
pub trait PaymentProvider: Send + Sync {
    /// Asks for a charge; the outcome arrives later as a webhook.
    async fn charge(&self, request: &ChargeRequest) -> Result<(), ProviderError>;
    async fn refund(&self, request: &RefundRequest) -> Result<(), ProviderError>;
}

type Breaker = StateMachine<ConsecutiveFailures<Exponential>, ()>;

pub struct HttpProvider {
    client: reqwest::Client,
    base_url: String,
    breaker: Breaker,
}

impl HttpProvider {
    pub fn new(base_url: &str) -> anyhow::Result<Self> {
        let policy = failure_policy::consecutive_failures(
            5,
            // failsafe needs a first open period of at least one second; the cap stays well
            // below any payment deadline so a recovered provider is tried again in time.
            backoff::exponential(Duration::from_secs(1), Duration::from_secs(5)),
        );
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            breaker: Config::new().failure_policy(policy).build(),
        })
    }

    async fn post<T: Serialize + Sync>(&self, path: &str, body: &T) -> Result<(), ProviderError> {
        let url = format!("{}{path}", self.base_url);
        let call = async {
            let reply = self
                .client
                .post(&url)
                .json(body)
                .send()
                .await
                .map_err(|e| ProviderError::Failed(e.to_string()))?;
            if reply.status().is_success() {
                Ok(())
            } else {
                Err(ProviderError::Failed(format!(
                    "{url} answered {}",
                    reply.status()
                )))
            }
        };
        match self.breaker.call(call).await {
            Ok(()) => Ok(()),
            Err(failsafe::Error::Rejected) => {
                metrics::counter!("payment_provider_rejected_total").increment(1);
                Err(ProviderError::CircuitOpen)
            }
            Err(failsafe::Error::Inner(err)) => {
                metrics::counter!("payment_provider_failures_total").increment(1);
                Err(err)
            }
        }
    }
}

#[async_trait]
impl PaymentProvider for HttpProvider {
    async fn charge(&self, request: &ChargeRequest) -> Result<(), ProviderError> {
        self.post("/v1/charges", request).await
    }

    async fn refund(&self, request: &RefundRequest) -> Result<(), ProviderError> {
        self.post("/v1/refunds", request).await
    }
}
