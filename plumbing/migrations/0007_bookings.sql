-- Each buyer's bookings and tickets (projection "bookings").
CREATE TABLE booking_view
(
    booking_id        uuid PRIMARY KEY,
    user_id           uuid        NOT NULL,
    event_id          uuid        NOT NULL,
    status            text        NOT NULL,
    seats             jsonb       NOT NULL,
    general_admission jsonb       NOT NULL,
    total             jsonb       NOT NULL,
    hold_expires_at   timestamptz NOT NULL,
    failure_reason    text,
    placed_at         timestamptz NOT NULL
);

CREATE INDEX booking_view_user_idx ON booking_view (user_id, placed_at DESC, booking_id);
CREATE INDEX booking_view_event_idx ON booking_view (event_id, status);

CREATE TABLE ticket_view
(
    ticket_id     uuid PRIMARY KEY,
    booking_id    uuid        NOT NULL,
    user_id       uuid        NOT NULL,
    event_id      uuid        NOT NULL,
    idx           smallint    NOT NULL,
    seat_id       text,
    section_id    text        NOT NULL,
    status        text        NOT NULL,
    checked_in_at timestamptz
);

CREATE INDEX ticket_view_user_idx ON ticket_view (user_id, booking_id, idx);

-- Provider notifications already applied (webhook dedupe by notification_id).
CREATE TABLE payment_notifications
(
    notification_id text PRIMARY KEY,
    received_at     timestamptz NOT NULL DEFAULT now()
);

-- The saga's durable work: one row per pending step (a deadline or an action to retry).
-- Claimed with a lease (locked_until) in a short transaction, executed outside it.
CREATE TABLE saga_tasks
(
    booking_id   uuid        NOT NULL,
    kind         text        NOT NULL,
    detail       text        NOT NULL DEFAULT '',
    due_at       timestamptz NOT NULL,
    attempts     integer     NOT NULL DEFAULT 0,
    locked_until timestamptz,
    last_error   text,
    PRIMARY KEY (booking_id, kind, detail)
);

CREATE INDEX saga_tasks_due_idx ON saga_tasks (due_at);

-- Bookings per show, so cancelling a show reaches every booking.
CREATE TABLE saga_show_bookings
(
    show_id    uuid NOT NULL,
    booking_id uuid NOT NULL,
    PRIMARY KEY (show_id, booking_id)
);

CREATE TABLE saga_cancelled_shows
(
    show_id uuid PRIMARY KEY
);
