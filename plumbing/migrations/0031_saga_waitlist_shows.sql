-- The waiting list (issue 17): the shows someone joined the waiting list of, so the saga
-- looks for offers to make only where a booking's end can matter to somebody.
CREATE TABLE saga_waitlist_shows
(
    show_id uuid PRIMARY KEY
);
