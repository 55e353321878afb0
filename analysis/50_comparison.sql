-- Comparisons: the same metric of two groups of requests side by side.
--
-- metric_samples: one row per (successful measured request, metric): metric is one of
-- ttfb_ms, ttft_ms, total_ms (lower is better) or output_tps (higher is better).
CREATE VIEW metric_samples AS
UNPIVOT (SELECT run_id, cell, ttfb_ms, ttft_ms, total_ms, output_tps FROM measured_ok)
ON ttfb_ms, ttft_ms, total_ms, output_tps
INTO NAME metric VALUE value;

-- metric_stats_for(metrics, skip_runs := []): per (run_id, cell, metric) for each metric
-- named in the list `metrics`: n (non-NULL values), mean, p50 (quantile_cont), stddev
-- (sample). One pass over measured_ok; the metrics not named are not computed; the runs in
-- the list `skip_runs` (run ids) are left out.
CREATE MACRO metric_stats_of(x) AS
    {'n': count(x), 'mean': avg(x), 'p50': quantile_cont(x, 0.5), 'stddev': stddev_samp(x)};

-- (a metric not named is NULL throughout: no work; a FILTER clause would cost per row)
CREATE MACRO metric_stats_for(metrics, skip_runs := []) AS TABLE
SELECT run_id, cell, metric, s.n AS n, s.mean AS mean, s.p50 AS p50, s.stddev AS stddev
FROM (UNPIVOT (
    SELECT run_id, cell,
           metric_stats_of(CASE WHEN list_contains(metrics, 'ttfb_ms') THEN ttfb_ms END)
               AS ttfb_ms,
           metric_stats_of(CASE WHEN list_contains(metrics, 'ttft_ms') THEN ttft_ms END)
               AS ttft_ms,
           metric_stats_of(CASE WHEN list_contains(metrics, 'total_ms') THEN total_ms END)
               AS total_ms,
           metric_stats_of(CASE WHEN list_contains(metrics, 'output_tps') THEN output_tps END)
               AS output_tps
    FROM measured_ok
    WHERE NOT list_contains(skip_runs, run_id)
    GROUP BY run_id, cell
) ON ttfb_ms, ttft_ms, total_ms, output_tps INTO NAME metric VALUE s)
WHERE list_contains(metrics, metric);

-- metric_stats: metric_stats_for every metric.
CREATE VIEW metric_stats AS
FROM metric_stats_for(['ttfb_ms', 'ttft_ms', 'total_ms', 'output_tps']);

-- run_order: the selected runs, baseline first: the run named by the variable
-- latlab_baseline_run (set by `latlab compare`) if any, then by start time and id.
CREATE VIEW run_order AS
SELECT run_id,
       row_number() OVER (ORDER BY run_id IS DISTINCT FROM getvariable('latlab_baseline_run'),
                                   started_at NULLS LAST, run_id) AS ord
FROM (SELECT run_id, min(started_at) AS started_at FROM (
          SELECT run_id, started_at FROM runs
          UNION ALL SELECT run_id, NULL FROM (SELECT DISTINCT run_id FROM requests))
      GROUP BY run_id);

-- comparison: one row per (pair of groups, metric), baseline side by side with the other:
--   kind            'run': the same cell in two runs (baseline: the first run of run_order
--                   that has the cell); else an axis name ('provider', 'guardrail', …): two
--                   cells of one run that differ in that axis only (cell_pairs)
--   baseline_run, baseline_cell, run_id, cell, metric
--   n_baseline, n, baseline_p50, p50, delta_p50 (= p50 − baseline_p50), ratio_p50 (p50 /
--   baseline_p50), baseline_mean, mean, delta_mean
-- `latlab compare` adds a bootstrap confidence interval of delta_p50 and a verdict
-- (analysis/55_bootstrap.sql). comparison_of(stats_table): the same over a table with the
-- columns of metric_stats (compare computes metric_stats once, into a table).
CREATE MACRO comparison_of(stats_table) AS TABLE
WITH stats AS MATERIALIZED (SELECT * FROM query_table(stats_table)),
run_pairs AS (
    SELECT 'run' AS kind, b.run_id AS baseline_run, s.cell AS baseline_cell,
           s.run_id, s.cell
    FROM (SELECT DISTINCT run_id, cell FROM stats) AS s
    JOIN run_order AS o ON o.run_id = s.run_id
    JOIN (SELECT cell, arg_min(s2.run_id, o2.ord) AS run_id
          FROM (SELECT DISTINCT run_id, cell FROM stats) AS s2
          JOIN run_order AS o2 ON o2.run_id = s2.run_id
          GROUP BY cell) AS b ON b.cell = s.cell AND b.run_id <> s.run_id
),
axis_pairs AS (
    SELECT axis AS kind, run_id AS baseline_run, baseline_cell, run_id, cell
    FROM cell_pairs_of(stats_table)
),
pairs AS (SELECT * FROM run_pairs UNION ALL SELECT * FROM axis_pairs)
SELECT p.kind, p.baseline_run, p.baseline_cell, p.run_id, p.cell, b.metric,
       b.n AS n_baseline, c.n,
       b.p50 AS baseline_p50, c.p50, c.p50 - b.p50 AS delta_p50,
       c.p50 / nullif(b.p50, 0) AS ratio_p50,
       b.mean AS baseline_mean, c.mean, c.mean - b.mean AS delta_mean
FROM pairs AS p
JOIN stats AS b ON b.run_id = p.baseline_run AND b.cell = p.baseline_cell
JOIN stats AS c ON c.run_id = p.run_id AND c.cell = p.cell AND c.metric = b.metric;

CREATE VIEW comparison AS FROM comparison_of('metric_stats');
