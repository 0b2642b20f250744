-- The payment provider's card tokens, keyed by payment id (issue 22): stored by command-api's
-- pay route before the PaymentRequested event that names the payment, read by the saga when
-- it charges, and forgotten once the provider has accepted the charge (or a day later at the
-- latest). No event, Kafka record, read model or dead letter ever holds a token.
CREATE TABLE payment_tokens
(
    payment_id uuid PRIMARY KEY,
    token      text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX payment_tokens_created_idx ON payment_tokens (created_at);

-- Version-1 events carried the token themselves. The saga now reads it only from here, so
-- copy the tokens of payments requested within the last day (older ones are past any
-- payment deadline and would be forgotten at once).
INSERT INTO payment_tokens (payment_id, token, created_at)
SELECT (payload -> 'PaymentRequested' ->> 'payment_id')::uuid,
       payload -> 'PaymentRequested' ->> 'payment_token',
       (payload -> 'PaymentRequested' ->> 'requested_at')::timestamptz
  FROM events
 WHERE aggregate_type = 'booking'
   AND event_type = 'PaymentRequested'
   AND event_version = '1'
   AND payload -> 'PaymentRequested' ->> 'payment_token' IS NOT NULL
   AND (payload -> 'PaymentRequested' ->> 'requested_at')::timestamptz > now() - interval '1 day'
ON CONFLICT (payment_id) DO NOTHING;
