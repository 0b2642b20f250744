-- A booking's tickets are read together (a refund voids them all): find them by booking.
CREATE INDEX ticket_view_booking_idx ON ticket_view (booking_id);
