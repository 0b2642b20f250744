-- The waiting list (issue 17): a booking the saga placed for someone on an event's waiting
-- list answers `"offer": true`.
ALTER TABLE booking_view ADD COLUMN offer boolean NOT NULL DEFAULT false;
