//! Topic names: `ticketing.<aggregate>.v<N>`, key = aggregate id. A prefix lets tests and
//! tenants share one broker without sharing topics.

/// The aggregate types whose events are published, with their topic version.
pub const AGGREGATE_TOPICS: &[(&str, u32)] = &[
    ("user", 1),
    ("show", 1),
    ("inventory", 1),
    ("booking", 1),
    ("payment", 1),
    ("ledger", 1),
    ("voucher", 1),
    ("voucher_book", 1),
    ("customer_places", 1),
    ("waitlist", 1),
];

pub fn topic_for(prefix: &str, aggregate_type: &str) -> String {
    let version = AGGREGATE_TOPICS
        .iter()
        .find(|(t, _)| *t == aggregate_type)
        .map_or(1, |(_, v)| *v);
    format!("{prefix}ticketing.{aggregate_type}.v{version}")
}

pub fn all_topics(prefix: &str) -> Vec<String> {
    AGGREGATE_TOPICS
        .iter()
        .map(|(t, _)| topic_for(prefix, t))
        .collect()
}

/// Dead letters of one consumer group.
pub fn dead_letter_topic(prefix: &str, group: &str) -> String {
    format!("{prefix}ticketing.dlq.{group}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_follow_the_naming_rule() {
        assert_eq!(topic_for("", "user"), "ticketing.user.v1");
        assert_eq!(topic_for("t1.", "user"), "t1.ticketing.user.v1");
        assert_eq!(
            dead_letter_topic("", "projections"),
            "ticketing.dlq.projections"
        );
    }
}
