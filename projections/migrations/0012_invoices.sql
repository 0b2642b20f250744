-- Invoices and credit notes (projection "invoices", from the organizers' ledger streams).
-- Numbers come from the ledger events, so a rebuild reproduces them exactly.
CREATE TABLE invoice_view
(
    invoice_id   uuid        PRIMARY KEY,
    organizer_id uuid        NOT NULL,
    number       bigint      NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    booking_id   uuid        NOT NULL,
    event_id     uuid        NOT NULL,
    buyer_id     uuid        NOT NULL,
    lines        jsonb       NOT NULL,
    total        jsonb       NOT NULL,
    issued_at    timestamptz NOT NULL,
    UNIQUE (organizer_id, number)
);

CREATE INDEX invoice_view_buyer_idx ON invoice_view (buyer_id, issued_at DESC, number DESC);
