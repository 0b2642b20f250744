-- Vouchers (issue 17): what a booking's voucher took off its total, for the buyer's booking
-- view and the organizer's sales figures (revenue is already net: `total_minor` is after
-- the discount).
ALTER TABLE booking_view ADD COLUMN discount jsonb;
ALTER TABLE sales_booking ADD COLUMN discount_minor bigint NOT NULL DEFAULT 0;
ALTER TABLE sales_booking ADD COLUMN voucher_code text;
