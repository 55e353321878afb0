-- The HTML report's plots (analysis/report.py, analysis/plots.py) read these, never every
-- row: per-cell box statistics over all rows, and a bounded sample of real requests.

-- report_boxes: one row per (run_id, cell, metric) of ttft_ms, total_ms and output_tps over
-- successful measured rows: n, min (lo), p5, p25, p50, p75, p95, max (hi) (quantile_cont;
-- the whiskers are p5 and p95), from one pass (one sort per metric).
CREATE MACRO report_box_quantiles(x) AS quantile_cont(x, [0.05, 0.25, 0.5, 0.75, 0.95]);

CREATE VIEW report_boxes AS
WITH b AS MATERIALIZED (
    SELECT run_id, cell,
           count(ttft_ms) AS ttft_n, min(ttft_ms) AS ttft_lo, max(ttft_ms) AS ttft_hi,
           report_box_quantiles(ttft_ms) AS ttft_q,
           count(total_ms) AS total_n, min(total_ms) AS total_lo, max(total_ms) AS total_hi,
           report_box_quantiles(total_ms) AS total_q,
           count(output_tps) AS tps_n, min(output_tps) AS tps_lo, max(output_tps) AS tps_hi,
           report_box_quantiles(output_tps) AS tps_q
    FROM measured_ok
    GROUP BY run_id, cell
),
long AS (
    SELECT run_id, cell, 'ttft_ms' AS metric, ttft_n AS n, ttft_lo AS lo, ttft_q AS q,
           ttft_hi AS hi FROM b
    UNION ALL
    SELECT run_id, cell, 'total_ms', total_n, total_lo, total_q, total_hi FROM b
    UNION ALL
    SELECT run_id, cell, 'output_tps', tps_n, tps_lo, tps_q, tps_hi FROM b
)
SELECT run_id, cell, metric, n, lo, q[1] AS p5, q[2] AS p25, q[3] AS p50, q[4] AS p75,
       q[5] AS p95, hi
FROM long
WHERE n > 0;

-- report_sample(per_cell): about `per_cell` successful measured requests of each
-- (run_id, cell), evenly spread over its iterations (every k-th; all of them when the cell
-- has no more), with, per request, its start in seconds since its run's first measured
-- request, TTFT and total; k_ttft is its rank by TTFT within the sample and n_sample the
-- sample's TTFT count (the sample's ECDF is k_ttft / n_sample), n the cell's successful
-- measured requests.
CREATE MACRO report_sample(per_cell) AS TABLE
WITH sizes AS MATERIALIZED (
    SELECT run_id, cell, count(*) AS n, min(started_at) AS first
    FROM measured_ok GROUP BY run_id, cell
),
starts AS (SELECT run_id, min(first) AS run_start FROM sizes GROUP BY run_id),
chosen AS (
    SELECT m.run_id, m.cell, m.request_id, m.iteration, m.worker, m.concurrency,
           m.ttft_ms, m.total_ms, s.n,
           (epoch_us(m.started_at) - epoch_us(r.run_start)) / 1e6 AS start_s
    FROM measured_ok AS m JOIN sizes AS s USING (run_id, cell) JOIN starts AS r USING (run_id)
    WHERE s.n <= per_cell OR m.iteration % (s.n // per_cell) = 0
)
SELECT *,
       row_number() OVER (PARTITION BY run_id, cell ORDER BY ttft_ms NULLS LAST) AS k_ttft,
       count(ttft_ms) OVER (PARTITION BY run_id, cell) AS n_sample
FROM chosen;
