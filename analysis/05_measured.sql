-- The rows every statistic is computed over.

-- Non-warm-up rows.
CREATE VIEW measured AS
SELECT * FROM requests WHERE NOT warmup;

-- Successful non-warm-up rows (error_type NULL = success).
CREATE VIEW measured_ok AS
SELECT * FROM measured WHERE error_type IS NULL;

-- One row per inter-token gap of every successful non-warm-up request.
-- gap_index is 1-based: gap 1 is between content tokens 1 and 2.
CREATE VIEW gaps AS
SELECT run_id, cell, iteration, worker, started_at,
       generate_subscripts(itl_ms, 1) AS gap_index,
       unnest(itl_ms) AS gap_ms
FROM measured_ok;
