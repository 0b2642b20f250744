//! Input rules shared by every aggregate and by the HTTP layer that checks bodies before
//! turning them into commands (API.md "Limits").

use std::sync::LazyLock;

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Longest ordinary string (names, labels, address lines).
pub const MAX_STRING: usize = 200;
/// Longest email address (RFC 5321 path limit).
pub const MAX_EMAIL: usize = 254;
/// Longest free-text description.
pub const MAX_DESCRIPTION: usize = 5_000;
/// Password length bounds, in characters.
pub const PASSWORD_LEN: std::ops::RangeInclusive<usize> = 8..=128;
/// Longest list in any body.
pub const MAX_LIST: usize = 1_000;

/// One broken rule of one field; a validation problem lists them all at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Collects field errors while a body is checked.
#[derive(Debug, Default)]
pub struct Checks(Vec<FieldError>);

impl Checks {
    pub fn new() -> Self {
        Self::default()
    }

    /// A required text of 1..=`max` characters after trimming, without control characters.
    pub fn text(&mut self, field: &str, value: &str, max: usize) -> &mut Self {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            self.fail(field, "must not be empty");
        } else {
            self.optional_text(field, Some(value), max);
        }
        self
    }

    /// An optional text: when present, at most `max` characters (empty is allowed) and no
    /// control characters other than line breaks and tabs.
    pub fn optional_text(&mut self, field: &str, value: Option<&str>, max: usize) -> &mut Self {
        if let Some(v) = value {
            if v.chars().count() > max {
                self.fail(field, format!("must be at most {max} characters"));
            } else if has_forbidden_control(v) {
                self.fail(field, "must not contain control characters");
            }
        }
        self
    }

    pub fn email(&mut self, field: &str, value: &str) -> &mut Self {
        if has_forbidden_control(value) {
            self.fail(field, "must not contain control characters");
        } else if value.chars().count() > MAX_EMAIL {
            self.fail(field, format!("must be at most {MAX_EMAIL} characters"));
        } else if !is_plausible_email(value) {
            self.fail(field, "must be an email address like name@example.com");
        }
        self
    }

    pub fn password(&mut self, field: &str, value: &str) -> &mut Self {
        let len = value.chars().count();
        if !PASSWORD_LEN.contains(&len) {
            self.fail(
                field,
                format!(
                    "must be {} to {} characters",
                    PASSWORD_LEN.start(),
                    PASSWORD_LEN.end()
                ),
            );
        }
        self
    }

    /// An organizer-chosen id (`section_id`, `tier_id`, `row`, `template_id`).
    pub fn chosen_id(&mut self, field: &str, value: &str) -> &mut Self {
        if !is_chosen_id(value) {
            self.fail(field, "must match ^[A-Za-z0-9_-]{1,32}$");
        }
        self
    }

    pub fn fail(&mut self, field: &str, message: impl Into<String>) -> &mut Self {
        self.0.push(FieldError::new(field, message));
        self
    }

    /// `Ok` when nothing failed, else every failure in the order found.
    pub fn finish(&mut self) -> Result<(), Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(std::mem::take(&mut self.0))
        }
    }
}

/// Control characters other than tab and line breaks (NUL cannot even be stored as JSON text
/// in PostgreSQL).
pub fn has_forbidden_control(value: &str) -> bool {
    value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

static CHOSEN_ID: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::unwrap_used)] // a constant pattern, checked by the tests below
    Regex::new("^[A-Za-z0-9_-]{1,32}$").unwrap()
});

pub fn is_chosen_id(value: &str) -> bool {
    CHOSEN_ID.is_match(value)
}

/// Deliberately loose: one `@` with something on both sides and a dot in the domain, no
/// whitespace. Deliverability is proven by mail, not by a regex.
pub fn is_plausible_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !value.chars().any(char::is_whitespace)
}

/// The form an email is compared and stored in: trimmed and lower-cased, so uniqueness is
/// case-insensitive.
pub fn normalize_email(value: &str) -> String {
    value.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chosen_ids_follow_the_published_pattern() {
        assert!(is_chosen_id("stalls"));
        assert!(is_chosen_id("A-1_b"));
        assert!(!is_chosen_id(""));
        assert!(!is_chosen_id("has space"));
        assert!(!is_chosen_id(&"x".repeat(33)));
        assert!(!is_chosen_id("a:b"));
    }

    #[test]
    fn checks_collect_every_failure() {
        let errors = Checks::new()
            .text("name", "  ", MAX_STRING)
            .email("email", "nope")
            .password("password", "short")
            .finish()
            .expect_err("three fields are wrong");
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "email", "password"]);
    }

    #[test]
    fn overlong_text_is_rejected_by_characters_not_bytes() {
        assert!(
            Checks::new()
                .text("n", &"é".repeat(200), 200)
                .finish()
                .is_ok()
        );
        assert!(
            Checks::new()
                .text("n", &"é".repeat(201), 200)
                .finish()
                .is_err()
        );
    }

    #[test]
    fn control_characters_are_rejected() {
        assert!(Checks::new().text("n", "a\u{0}b", 200).finish().is_err());
        assert!(
            Checks::new()
                .optional_text("d", Some("line\nbreak\ttab"), 200)
                .finish()
                .is_ok()
        );
        assert!(Checks::new().email("e", "a\u{0}@b.co").finish().is_err());
    }

    #[test]
    fn emails_are_normalized_for_comparison() {
        assert_eq!(normalize_email("  Ada@Example.COM "), "ada@example.com");
        assert!(is_plausible_email("ada@example.com"));
        assert!(!is_plausible_email("ada@@example.com"));
        assert!(!is_plausible_email("ada example@x.com"));
    }
}
