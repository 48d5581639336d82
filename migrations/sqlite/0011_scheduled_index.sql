-- The outbox looks only for scheduled deliveries: index those alone. A delivered,
-- rejected or dead row leaves the index when it is recorded instead of moving within it,
-- so recording an attempt writes fewer index pages, and the index stays the size of the
-- queue rather than of the whole history.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'scheduled';
