-- Idempotency keys of state-changing requests, scoped to (caller, method, path, key).
-- state 'running' is a lease: a request that crashed mid-flight frees its key after
-- lease_until; 'done' rows replay their stored response for 24 hours.
CREATE TABLE idempotency_keys
(
    caller       text        NOT NULL,
    method       text        NOT NULL,
    path         text        NOT NULL,
    key          text        NOT NULL,
    request_hash text        NOT NULL,
    state        text        NOT NULL CHECK (state IN ('running', 'done')),
    lease_until  timestamptz NOT NULL,
    status       smallint,
    headers      jsonb,
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (caller, method, path, key)
);

CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
