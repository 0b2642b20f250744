-- The virtual waiting room (see the waiting-room crate). Plain tables rather than an event
-- stream: a hot on-sale has 100,000 users join one event's queue within a minute, and one
-- aggregate per queue would serialise those joins on its event sequence.
--
-- Every place in a queue has an ordinal, dense per event: `joined` is the last ordinal handed
-- out and every ordinal <= `admitted_through` has been admitted. Ordinals are handed out and
-- admitted in order under this row's lock, so the places still waiting are exactly the
-- ordinals in (admitted_through, joined] and a position is `ordinal - admitted_through` —
-- computed without looking at anyone else's place.
CREATE TABLE waiting_rooms (
    event_id uuid PRIMARY KEY,
    admit_per_minute integer NOT NULL CHECK (admit_per_minute > 0),
    admission_minutes integer NOT NULL CHECK (admission_minutes > 0),
    -- The event's sales window: admitting before sales open would spend admissions nobody
    -- can use, and after they close there is nothing left to admit to.
    admit_from timestamptz NOT NULL,
    admit_until timestamptz NOT NULL,
    joined bigint NOT NULL DEFAULT 0,
    admitted_through bigint NOT NULL DEFAULT 0,
    CHECK (0 <= admitted_through AND admitted_through <= joined)
);

-- A user's current place in an event's queue. Rejoining after an admission expired gives
-- the row a new ordinal at the back (its old one is <= admitted_through, so no waiting
-- ordinal is ever left empty).
CREATE TABLE waiting_room_places (
    event_id uuid NOT NULL REFERENCES waiting_rooms (event_id),
    user_id uuid NOT NULL,
    ordinal bigint NOT NULL,
    joined_at timestamptz NOT NULL,
    admitted_at timestamptz,
    admitted_until timestamptz,
    PRIMARY KEY (event_id, user_id),
    UNIQUE (event_id, ordinal)
);
CREATE INDEX waiting_room_places_user ON waiting_room_places (user_id);

-- Every admission ever made, in admission order: the audit trail ("who got in when") and the
-- source of the measured admission rate in the queue statistics. Deliberately without a
-- unique key on the ordinal, so a double admission would show instead of failing.
CREATE TABLE waiting_room_admissions (
    id bigserial PRIMARY KEY,
    event_id uuid NOT NULL,
    user_id uuid NOT NULL,
    ordinal bigint NOT NULL,
    admitted_at timestamptz NOT NULL
);
CREATE INDEX waiting_room_admissions_event ON waiting_room_admissions (event_id, admitted_at);
