-- The notifier's email sent-log: one row per mail the SMTP server accepted, keyed by its
-- stable Message-ID (one per booking and state), so a redelivered booking event does not
-- mail the buyer again.
CREATE TABLE email_sent_log (
    message_id text PRIMARY KEY,
    booking_id uuid NOT NULL,
    state text NOT NULL,
    recipient text NOT NULL,
    sent_at timestamptz NOT NULL DEFAULT now()
);
