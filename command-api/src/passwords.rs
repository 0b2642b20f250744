//! Argon2id password hashing, off the async runtime (a hash takes tens of milliseconds).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::settings::AuthSettings;

/// How long a request waits for a hashing slot before it is told to come back (503).
const SLOT_WAIT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Passwords {
    argon: Arc<Argon2<'static>>,
    /// Bounds concurrent hashes (each takes ARGON2_MEMORY_KIB and a core for tens of
    /// milliseconds): unauthenticated register/login floods queue here instead of
    /// exhausting memory and the blocking pool.
    slots: Arc<Semaphore>,
    /// Verified against when the account does not exist, so a wrong email costs as long as a
    /// wrong password and timing does not reveal which accounts exist.
    dummy_hash: Arc<String>,
}

impl Passwords {
    pub fn new(settings: &AuthSettings) -> anyhow::Result<Self> {
        let params = Params::new(
            settings.argon2_memory_kib,
            settings.argon2_iterations,
            settings.argon2_parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("invalid ARGON2_* settings: {e}"))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy_hash = argon
            .hash_password(b"not-a-password", &SaltString::generate(&mut OsRng))
            .map_err(|e| anyhow::anyhow!("cannot hash: {e}"))?
            .to_string();
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            slots: Arc::new(Semaphore::new(cores * 2)),
            argon: Arc::new(argon),
            dummy_hash: Arc::new(dummy_hash),
        })
    }

    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        let _slot = self.slot().await?;
        let argon = self.argon.clone();
        tokio::task::spawn_blocking(move || {
            argon
                .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))
        })
        .await
        .map_err(anyhow::Error::new)?
        .map_err(PasswordError::Failed)
    }

    async fn slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, PasswordError> {
        tokio::time::timeout(SLOT_WAIT, self.slots.acquire())
            .await
            .map_err(|_| PasswordError::Busy)?
            .map_err(|e| PasswordError::Failed(e.into()))
    }

    /// Whether `password` matches `stored` (a PHC string); `None` verifies against a dummy
    /// hash and always answers false.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, PasswordError> {
        let _slot = self.slot().await?;
        let argon = self.argon.clone();
        let exists = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.as_ref().clone());
        tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&stored)
                .map_err(|e| anyhow::anyhow!("stored hash is not a PHC string: {e}"))?;
            Ok(argon.verify_password(password.as_bytes(), &parsed).is_ok() && exists)
        })
        .await
        .map_err(anyhow::Error::new)?
        .map_err(PasswordError::Failed)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("too many password checks in progress")]
    Busy,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<PasswordError> for crate::http::error::ApiError {
    fn from(err: PasswordError) -> Self {
        match err {
            PasswordError::Busy => {
                Self::Unavailable("too many sign-ins at once; retry shortly".into())
            }
            PasswordError::Failed(e) => Self::Internal(e),
        }
    }
}
