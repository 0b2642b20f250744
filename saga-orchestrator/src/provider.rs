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

/// A charge the saga decided on, before its card token is read from the vault
/// (`payment_tokens`): the saga's decisions never see a token.
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    pub payment_id: Uuid,
    pub booking_id: Uuid,
    pub amount: Money,
}

impl Charge {
    pub fn with_token(self, token: String) -> ChargeRequest {
        ChargeRequest {
            payment_id: self.payment_id,
            booking_id: self.booking_id,
            amount: self.amount,
            token,
        }
    }
}

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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Instant;

    use axum::http::StatusCode;

    use super::*;

    /// A provider on a local port that counts the requests it receives and answers 503
    /// until told to recover.
    async fn flaky_provider() -> (String, Arc<AtomicUsize>, Arc<AtomicBool>) {
        let received = Arc::new(AtomicUsize::new(0));
        let healthy = Arc::new(AtomicBool::new(false));
        let (count, up) = (received.clone(), healthy.clone());
        let app = axum::Router::new().route(
            "/v1/charges",
            axum::routing::post(move || {
                let (count, up) = (count.clone(), up.clone());
                async move {
                    count.fetch_add(1, Ordering::SeqCst);
                    if up.load(Ordering::SeqCst) {
                        StatusCode::ACCEPTED
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{address}"), received, healthy)
    }

    fn request() -> ChargeRequest {
        ChargeRequest {
            payment_id: Uuid::new_v4(),
            booking_id: Uuid::new_v4(),
            amount: Money::new(1_000, "EUR"),
            token: "tok_visa".into(),
        }
    }

    #[tokio::test]
    async fn five_failures_open_the_circuit_and_a_recovered_provider_closes_it() {
        let (url, received, healthy) = flaky_provider().await;
        let provider = HttpProvider::new(&url).expect("provider");
        for _ in 0..5 {
            assert!(matches!(
                provider.charge(&request()).await,
                Err(ProviderError::Failed(_))
            ));
        }
        // Open: refused at once, without reaching the provider.
        for _ in 0..20 {
            assert!(matches!(
                provider.charge(&request()).await,
                Err(ProviderError::CircuitOpen)
            ));
        }
        assert_eq!(received.load(Ordering::SeqCst), 5);

        healthy.store(true, Ordering::SeqCst);
        // After the open period (≥ 1 s) a trial call goes through and closes the circuit.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match provider.charge(&request()).await {
                Ok(()) => break,
                Err(ProviderError::CircuitOpen) => {
                    assert!(Instant::now() < deadline, "the circuit never half-opened");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert!(provider.charge(&request()).await.is_ok(), "closed again");
        assert_eq!(received.load(Ordering::SeqCst), 7);
    }
}
