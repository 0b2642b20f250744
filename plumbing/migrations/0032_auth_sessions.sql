-- Sessions (issue 18): a login opens one; its refresh tokens rotate within it and only their
-- SHA-256 is kept. A spent token presented again revokes its session (RFC 9700).
CREATE TABLE auth_sessions
(
    session_id   uuid PRIMARY KEY,
    user_id      uuid        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now(),
    user_agent   text        NOT NULL DEFAULT '',
    revoked_at   timestamptz
);
CREATE INDEX auth_sessions_live_idx ON auth_sessions (user_id) WHERE revoked_at IS NULL;

CREATE TABLE auth_refresh_tokens
(
    token_hash bytea PRIMARY KEY,
    session_id uuid        NOT NULL REFERENCES auth_sessions ON DELETE CASCADE,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    spent_at   timestamptz
);
CREATE INDEX auth_refresh_tokens_session_idx ON auth_refresh_tokens (session_id);
