-- Per consumer (projection, saga, …) and aggregate: the last sequence whose effect is durable.
-- Written in the same transaction as the effect; it is both the dedupe of redeliveries and
-- what X-Min-Position waits on.
CREATE TABLE consumer_applied
(
    consumer       text   NOT NULL,
    aggregate_type text   NOT NULL,
    aggregate_id   text   NOT NULL,
    last_sequence  bigint NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, aggregate_type, aggregate_id)
);
