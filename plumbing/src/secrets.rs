//! The start-up check every secret from the environment passes: long enough to resist
//! guessing, and none of the values this repository has ever shipped or documented.

/// HMAC-SHA256 keys shorter than this are refused (RFC 7518 §3.2: at least the hash size).
pub const MIN_SECRET_BYTES: usize = 32;

/// Values that appeared in this repository as defaults, examples or test constants: anyone
/// can read them, so a deployment holding one is as open as one holding none.
const KNOWN_VALUES: &[&str] = &[
    "dev-only-secret-change-me-0123456789abcdef",
    "test-secret-0123456789abcdef0123456789abcdef",
    "test-webhook-secret-0123456789",
    "change-me-local-admin",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error(
        "{name} is empty: set it to a random string of at least {MIN_SECRET_BYTES} bytes \
         (for example `head -c 48 /dev/urandom | base64`)"
    )]
    Missing { name: &'static str },
    #[error("{name} is {len} bytes long: it must be at least {MIN_SECRET_BYTES} bytes")]
    TooShort { name: &'static str, len: usize },
    #[error("{name} holds a published development value: generate a random one")]
    Known { name: &'static str },
}

/// Refuses a secret that is empty, shorter than [`MIN_SECRET_BYTES`] or a known value.
/// Checked at start, so a misconfigured service exits before it accepts a request.
pub fn check(name: &'static str, value: &str) -> Result<(), SecretError> {
    if value.is_empty() {
        return Err(SecretError::Missing { name });
    }
    if value.len() < MIN_SECRET_BYTES {
        return Err(SecretError::TooShort {
            name,
            len: value.len(),
        });
    }
    if KNOWN_VALUES.contains(&value) || value.bytes().all(|b| b == value.as_bytes()[0]) {
        return Err(SecretError::Known { name });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_an_empty_secret_by_name() {
        assert_eq!(
            check("JWT_SECRET", ""),
            Err(SecretError::Missing { name: "JWT_SECRET" })
        );
    }

    #[test]
    fn refuses_a_secret_shorter_than_32_bytes() {
        assert_eq!(
            check("PAYMENT_WEBHOOK_SECRET", "short"),
            Err(SecretError::TooShort {
                name: "PAYMENT_WEBHOOK_SECRET",
                len: 5
            })
        );
    }

    #[test]
    fn refuses_the_former_built_in_default() {
        assert_eq!(
            check("JWT_SECRET", "dev-only-secret-change-me-0123456789abcdef"),
            Err(SecretError::Known { name: "JWT_SECRET" })
        );
    }

    #[test]
    fn refuses_one_repeated_character() {
        assert!(check("JWT_SECRET", &"a".repeat(64)).is_err());
    }

    #[test]
    fn accepts_a_random_secret() {
        assert_eq!(
            check("JWT_SECRET", "q4Vx0bS9m2LkE7rTzY1uWc8pNa3HdJ6f"),
            Ok(())
        );
    }
}
