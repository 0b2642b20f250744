-- What each consumer reports about itself every few seconds (see plumbing::health): how far
-- it has applied, how many messages wait for it, and how many it dead-lettered. Read by
-- GET /api/admin/projections.
CREATE TABLE consumer_health
(
    consumer         text        PRIMARY KEY,
    applied_position bigint      NOT NULL,
    lag_messages     bigint      NOT NULL,
    dead_lettered    bigint      NOT NULL,
    reported_at      timestamptz NOT NULL
);
