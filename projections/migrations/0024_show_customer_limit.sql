-- An event's per-customer limit, shown on its detail (issue 17).
ALTER TABLE show_view ADD COLUMN max_tickets_per_customer integer;
