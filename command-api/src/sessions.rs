//! Sessions: a login opens one, and its refresh tokens rotate within it (RFC 9700's refresh
//! token rotation). Only a token's SHA-256 is stored. Presenting a spent token means it was
//! copied, so the whole session is revoked, including its newest token. Sessions are account
//! state, not domain facts: they live in plain tables (`auth_sessions`,
//! `auth_refresh_tokens`) rather than the event store, like idempotency keys and lockouts.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// How long a refresh token may wait to be used.
pub const REFRESH_TTL: Duration = Duration::days(30);
/// Longest `User-Agent` kept.
const MAX_USER_AGENT: usize = 256;
/// Longest refresh token looked up (ours are 64 hex digits plus a prefix).
const MAX_TOKEN: usize = 128;

/// A refresh token as handed out, and its hash as stored.
struct Minted {
    token: String,
    hash: Vec<u8>,
}

fn mint() -> Minted {
    let token = format!("rt_{}", hex::encode(rand::random::<[u8; 32]>()));
    let hash = digest(&token);
    Minted { token, hash }
}

fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn user_agent(raw: Option<&str>) -> String {
    raw.unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_USER_AGENT)
        .collect()
}

/// What a refresh attempt found.
pub enum Refreshed {
    /// A new refresh token for `user_id`'s `session_id`.
    Rotated {
        user_id: Uuid,
        session_id: Uuid,
        refresh_token: String,
    },
    /// Unknown, expired, spent (the session is now revoked) or of a revoked session.
    Refused,
}

/// Opens a session for `user_id` and returns it with its first refresh token.
pub async fn open(
    pool: &PgPool,
    user_id: Uuid,
    agent: Option<&str>,
) -> Result<(Uuid, String), sqlx::Error> {
    let session_id = Uuid::new_v4();
    let minted = mint();
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO auth_sessions (session_id, user_id, user_agent) VALUES ($1, $2, $3)")
        .bind(session_id)
        .bind(user_id)
        .bind(user_agent(agent))
        .execute(&mut *tx)
        .await?;
    insert_token(&mut tx, session_id, &minted.hash, Utc::now()).await?;
    tx.commit().await?;
    Ok((session_id, minted.token))
}

async fn insert_token(
    tx: &mut Transaction<'_, Postgres>,
    session_id: Uuid,
    hash: &[u8],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO auth_refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
    )
    .bind(hash)
    .bind(session_id)
    .bind(now + REFRESH_TTL)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Presented {
    session_id: Uuid,
    user_id: Uuid,
    expires_at: DateTime<Utc>,
    spent: bool,
    revoked: bool,
}

/// Spends `token` and issues the session's next one; a spent token revokes its session. The
/// token's row is locked, so two refreshes racing with one token rotate it once: the second
/// finds it spent and revokes the session (as a thief's replay would).
pub async fn refresh(
    pool: &PgPool,
    token: &str,
    agent: Option<&str>,
) -> Result<Refreshed, sqlx::Error> {
    if token.is_empty() || token.len() > MAX_TOKEN {
        return Ok(Refreshed::Refused);
    }
    let now = Utc::now();
    let mut tx = pool.begin().await?;
    let presented: Option<Presented> = sqlx::query_as(
        "SELECT t.session_id, s.user_id, t.expires_at, t.spent_at IS NOT NULL AS spent,
                s.revoked_at IS NOT NULL AS revoked
           FROM auth_refresh_tokens t JOIN auth_sessions s USING (session_id)
          WHERE t.token_hash = $1
            FOR UPDATE OF t, s",
    )
    .bind(digest(token))
    .fetch_optional(&mut *tx)
    .await?;
    let Some(found) = presented else {
        return Ok(Refreshed::Refused);
    };
    if found.spent {
        if !found.revoked {
            tracing::warn!(session_id = %found.session_id, "a spent refresh token was presented: the session is revoked");
            revoke_in(&mut tx, found.session_id, now).await?;
            tx.commit().await?;
        }
        return Ok(Refreshed::Refused);
    }
    if found.revoked || found.expires_at <= now {
        return Ok(Refreshed::Refused);
    }
    sqlx::query("UPDATE auth_refresh_tokens SET spent_at = $2 WHERE token_hash = $1")
        .bind(digest(token))
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE auth_sessions SET last_used_at = $2, user_agent = $3 WHERE session_id = $1",
    )
    .bind(found.session_id)
    .bind(now)
    .bind(user_agent(agent))
    .execute(&mut *tx)
    .await?;
    let minted = mint();
    insert_token(&mut tx, found.session_id, &minted.hash, now).await?;
    tx.commit().await?;
    Ok(Refreshed::Rotated {
        user_id: found.user_id,
        session_id: found.session_id,
        refresh_token: minted.token,
    })
}

async fn revoke_in(
    tx: &mut Transaction<'_, Postgres>,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE auth_sessions SET revoked_at = $2 WHERE session_id = $1 AND revoked_at IS NULL",
    )
    .bind(session_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Revokes `user_id`'s session `session_id`; false when they have no such live session.
pub async fn revoke(pool: &PgPool, user_id: Uuid, session_id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE auth_sessions SET revoked_at = now()
          WHERE session_id = $1 AND user_id = $2 AND revoked_at IS NULL",
    )
    .bind(session_id)
    .bind(user_id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[derive(sqlx::FromRow)]
pub struct SessionRow {
    pub session_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub user_agent: String,
}

/// `user_id`'s live sessions (not revoked, with a refresh token still usable), newest first.
pub async fn live(pool: &PgPool, user_id: Uuid) -> Result<Vec<SessionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.session_id, s.created_at, s.last_used_at, s.user_agent
           FROM auth_sessions s
          WHERE s.user_id = $1 AND s.revoked_at IS NULL
            AND EXISTS (SELECT 1 FROM auth_refresh_tokens t
                         WHERE t.session_id = s.session_id AND t.spent_at IS NULL
                           AND t.expires_at > now())
          ORDER BY s.last_used_at DESC
          LIMIT 100",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_are_long_random_and_stored_only_as_their_hash() {
        let (a, b) = (mint(), mint());
        assert_ne!(a.token, b.token);
        assert_eq!(a.token.len(), 3 + 64);
        assert_eq!(a.hash, digest(&a.token));
        assert_ne!(a.hash, a.token.as_bytes());
    }

    #[test]
    fn user_agents_are_cut_and_cleaned() {
        assert_eq!(user_agent(Some("curl/8\n")), "curl/8");
        assert_eq!(user_agent(Some(&"x".repeat(1000))).len(), MAX_USER_AGENT);
        assert_eq!(user_agent(None), "");
    }
}
