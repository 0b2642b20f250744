-- Sales analytics (projection "sales", from the show and booking streams).

-- Each section's tier and unit price, from the event's pricing.
CREATE TABLE sales_section_tier
(
    event_id    uuid   NOT NULL,
    section_id  text   NOT NULL,
    tier_id     text   NOT NULL,
    price_minor bigint NOT NULL,
    currency    text   NOT NULL,
    PRIMARY KEY (event_id, section_id)
);

-- One row per booking with its places per section (tiers are joined in when read: the show
-- and booking streams are not ordered with each other), its status and when it was
-- confirmed or refunded: the sales figures and the per-minute series are sums over these.
CREATE TABLE sales_booking
(
    booking_id      uuid        PRIMARY KEY,
    event_id        uuid        NOT NULL,
    status          text        NOT NULL,
    places          integer     NOT NULL,
    total_minor     bigint      NOT NULL,
    currency        text        NOT NULL,
    -- [{"section_id", "places"}]
    lines           jsonb       NOT NULL,
    hold_expires_at timestamptz NOT NULL,
    placed_at       timestamptz NOT NULL,
    confirmed_at    timestamptz,
    refunded_at     timestamptz
);

CREATE INDEX sales_booking_event_idx ON sales_booking (event_id, status);
