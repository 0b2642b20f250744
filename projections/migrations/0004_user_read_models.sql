-- Read models of the User aggregate, built by projections from Kafka.
CREATE TABLE user_profile_view
(
    user_id    uuid PRIMARY KEY,
    email      text        NOT NULL,
    name       text        NOT NULL,
    phone      text,
    roles      text[]      NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE user_address_view
(
    address_id  uuid PRIMARY KEY,
    user_id     uuid        NOT NULL,
    label       text        NOT NULL,
    line1       text        NOT NULL,
    line2       text,
    city        text        NOT NULL,
    postal_code text        NOT NULL,
    country     text        NOT NULL,
    added_at    bigint      NOT NULL
);

CREATE INDEX user_address_view_user_idx ON user_address_view (user_id, added_at);
