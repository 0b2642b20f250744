//! Argon2id password hashing, off the async runtime (a hash takes tens of milliseconds).

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::settings::AuthSettings;

#[derive(Clone)]
pub struct Passwords {
    argon: Arc<Argon2<'static>>,
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
        Ok(Self {
            argon: Arc::new(argon),
            dummy_hash: Arc::new(dummy_hash),
        })
    }

    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        let argon = self.argon.clone();
        tokio::task::spawn_blocking(move || {
            argon
                .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))
        })
        .await?
    }

    /// Whether `password` matches `stored` (a PHC string); `None` verifies against a dummy
    /// hash and always answers false.
    pub async fn verify(&self, password: String, stored: Option<String>) -> anyhow::Result<bool> {
        let argon = self.argon.clone();
        let exists = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.as_ref().clone());
        tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&stored)
                .map_err(|e| anyhow::anyhow!("stored hash is not a PHC string: {e}"))?;
            Ok(argon.verify_password(password.as_bytes(), &parsed).is_ok() && exists)
        })
        .await?
    }
}
