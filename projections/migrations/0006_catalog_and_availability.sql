-- The catalogue (projection "catalog") and seat availability (projection "availability").

CREATE TABLE show_view
(
    event_id        uuid PRIMARY KEY,
    organizer_id    uuid        NOT NULL,
    name            text        NOT NULL,
    venue           text        NOT NULL,
    description     text,
    starts_at       timestamptz NOT NULL,
    status          text        NOT NULL,
    sales_open_at   timestamptz,
    sales_close_at  timestamptz,
    queue           jsonb,
    sections        jsonb       NOT NULL DEFAULT '[]',
    tiers           jsonb       NOT NULL DEFAULT '[]',
    min_price_minor bigint,
    currency        text,
    created_at      timestamptz NOT NULL
);

CREATE INDEX show_view_published_idx ON show_view (starts_at, event_id) WHERE status = 'published';
CREATE INDEX show_view_organizer_idx ON show_view (organizer_id, starts_at, event_id);

-- One row per section: layout (for capacity and seat ids) and general-admission sales.
CREATE TABLE section_view
(
    event_id    uuid    NOT NULL,
    section_id  text    NOT NULL,
    position    integer NOT NULL DEFAULT 0,
    kind        text,
    capacity    integer NOT NULL DEFAULT 0,
    layout      jsonb,
    sold_places integer NOT NULL DEFAULT 0,
    PRIMARY KEY (event_id, section_id)
);

-- Seats that are not available: held (until expires_at) or sold. Absent = available.
CREATE TABLE seat_hold_view
(
    event_id   uuid NOT NULL,
    section_id text NOT NULL,
    seat_id    text NOT NULL,
    status     text NOT NULL CHECK (status IN ('held', 'sold')),
    booking_id uuid NOT NULL,
    expires_at timestamptz,
    PRIMARY KEY (event_id, seat_id)
);

CREATE INDEX seat_hold_view_section_idx ON seat_hold_view (event_id, section_id);

-- General-admission holds; a hold past expires_at counts as available.
CREATE TABLE ga_hold_view
(
    event_id   uuid        NOT NULL,
    section_id text        NOT NULL,
    booking_id uuid        NOT NULL,
    quantity   integer     NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (event_id, section_id, booking_id)
);
