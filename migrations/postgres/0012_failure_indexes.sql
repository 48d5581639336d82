-- Index only what an operator looks for: failed submissions (to replay them) and
-- dead-lettered or rejected deliveries (to replay or requeue them). Almost every
-- submission is processed and almost every delivery ends delivered, so each of these
-- indexes stays the size of the failures instead of the whole history, and the write
-- path (one submission and one delivery per lead) touches two B-trees fewer per lead.
-- Listing processed submissions by status now scans; by source it still uses
-- `submissions_by_source`.
DROP INDEX submissions_by_status;
CREATE INDEX submissions_failed ON submissions (received_at) WHERE status = 'failed';
DROP INDEX deliveries_by_buyer;
CREATE INDEX deliveries_failed ON deliveries (buyer, created_at) WHERE status IN ('dead', 'rejected');
CREATE INDEX deliveries_dead_letters ON deliveries (updated_at) WHERE status IN ('dead', 'rejected');
