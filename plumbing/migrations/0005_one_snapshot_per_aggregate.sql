-- postgres-es keys snapshots by (type, id, last_sequence); two processes writing the first
-- snapshot of one aggregate would otherwise both succeed. With one row per aggregate the
-- loser gets a unique violation, which the store treats as a conflict and retries.
CREATE UNIQUE INDEX snapshots_one_per_aggregate ON snapshots (aggregate_type, aggregate_id);
