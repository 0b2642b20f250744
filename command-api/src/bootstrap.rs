//! Ensures the bootstrap admin from `BOOTSTRAP_ADMIN_EMAIL` / `BOOTSTRAP_ADMIN_PASSWORD`.
//! Idempotent and safe when several instances start at once: registration of one email is
//! decided by the event store (one stream per email), and granting a held role writes nothing.

use std::collections::HashMap;

use anyhow::Context;
use chrono::Utc;
use domain::rules::{self, Checks};
use domain::user::{Role, UserCommand, UserError, user_id_for_email};
use plumbing::store::ExecuteError;

use crate::state::AppState;

pub async fn ensure_admin(state: &AppState, email: &str, password: &str) -> anyhow::Result<()> {
    Checks::new()
        .email("BOOTSTRAP_ADMIN_EMAIL", email)
        .password("BOOTSTRAP_ADMIN_PASSWORD", password)
        .finish()
        .map_err(|errors| anyhow::anyhow!("invalid bootstrap admin: {errors:?}"))?;
    let email = rules::normalize_email(email);
    let user_id = user_id_for_email(&email);
    let id = user_id.to_string();
    let meta = HashMap::from([("correlation_id".to_owned(), "bootstrap".to_owned())]);
    let (existing, _) = state.users.load(&id).await?;
    if existing.is_registered() {
        // Anyone can register any email: an existing account only becomes admin if it is
        // the configured one, proven by the configured password.
        let proven = state
            .passwords
            .verify(password.to_owned(), Some(existing.password_hash.clone()))
            .await?;
        anyhow::ensure!(
            proven,
            "an account {email} exists but BOOTSTRAP_ADMIN_PASSWORD does not match it; \
             refusing to make it admin"
        );
    } else {
        let password_hash = state.passwords.hash(password.to_owned()).await?;
        let registered = state
            .users
            .execute(
                &id,
                UserCommand::Register {
                    user_id,
                    email: email.clone(),
                    name: "Administrator".into(),
                    password_hash,
                    now: Utc::now(),
                },
                &meta,
            )
            .await;
        match registered {
            Ok(_) | Err(ExecuteError::Rejected(UserError::EmailTaken)) => {}
            Err(err) => return Err(err).context("cannot register the bootstrap admin"),
        }
    }
    state
        .users
        .execute(&id, UserCommand::GrantRole { role: Role::Admin }, &meta)
        .await
        .context("cannot grant the admin role")?;
    tracing::info!(%email, "bootstrap admin ensured");
    Ok(())
}
