//! The payment provider's webhook signature (API.md): `X-Signature: t=<unix seconds>,
//! v1=<hex HMAC-SHA256 of "<t>.<raw body>">`. Shared by the provider (simulator) that signs
//! and command-api that verifies.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Oldest signature accepted, in seconds (replays of captured requests are refused).
pub const MAX_AGE_SECONDS: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("webhook signature is missing")]
    Missing,
    #[error("webhook signature is malformed")]
    Malformed,
    #[error("webhook signature is too old")]
    Stale,
    #[error("webhook signature does not match")]
    Mismatch,
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new_from_slice(b"-").expect("one-byte key"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Signature` value for `body` at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(digest))
}

/// Checks a header value against the raw body at `now` (unix seconds).
pub fn verify(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signature = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signature = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (timestamp, signature) = timestamp.zip(signature).ok_or(SignatureError::Malformed)?;
    // The timestamp is the sender's i64: `now - t` could overflow, so the distance is taken
    // without arithmetic that can.
    if now.abs_diff(timestamp) > MAX_AGE_SECONDS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    mac(secret, timestamp, body)
        .verify_slice(&signature)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_fresh_correct_signature() {
        let sig = sign(b"secret", 1_000, b"{}");
        assert_eq!(verify(b"secret", Some(&sig), b"{}", 1_100), Ok(()));
    }

    #[test]
    fn extreme_timestamps_are_stale_not_an_overflow() {
        for t in [i64::MIN, i64::MAX] {
            let header = format!("t={t},v1=00");
            assert_eq!(
                verify(b"secret", Some(&header), b"{}", 1_000),
                Err(SignatureError::Stale)
            );
        }
        let header = "t=1000,v1=00";
        assert_eq!(
            verify(b"secret", Some(header), b"{}", i64::MIN),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn refuses_wrong_stale_missing_and_tampered() {
        let sig = sign(b"secret", 1_000, b"{}");
        assert_eq!(
            verify(b"other", Some(&sig), b"{}", 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"secret", Some(&sig), b"{}", 1_301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(b"secret", Some(&sig), b"{ }", 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"secret", None, b"{}", 1_000),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(b"secret", Some("t=abc,v1=zz"), b"{}", 1_000),
            Err(SignatureError::Malformed)
        );
    }
}
