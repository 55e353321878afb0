-- Metric summaries: what `latlab compare` needs of each (run_id, cell, metric), small enough
-- to keep beside the results (analysis/summaries.py writes one file per run under
-- <results_dir>/summaries/ and reuses it while the run's request files are unchanged).
--
-- A bootstrap replicate's median is the mean of one or two sorted values near the middle
-- (analysis/bootstrap.py), so a summary keeps, besides n, mean, p50 and stddev, only a band
-- of sorted values around the median: wide enough for any replicate of any seed, so the
-- summary does not depend on the seed.

-- summary_reach(n): how many sorted positions each side of the middle the band must hold.
-- A drawn median position has a standard deviation of about √n / 2 positions: 3·√n is six
-- of them (a farther draw is rarer than 1 in 10⁸), + 32 for the second position of even n.
CREATE MACRO summary_reach(n) AS (ceil(3 * sqrt(n)) + 32)::BIGINT;

-- summary_band_of(x, lo, hi): for one group, `below` = its values < lo and `band` = its
-- values in [lo, hi] (in no order). (count(*) FILTER (…) would cost more per row.)
CREATE MACRO summary_band_of(x, lo, hi) AS {
    'below': sum(CASE WHEN x < lo THEN 1 ELSE 0 END)::BIGINT,
    'band': list(x) FILTER (WHERE x >= lo AND x <= hi)
};

-- metric_summaries_of(skip_runs): per (run_id, cell, metric) of every run but those in the
-- list `skip_runs`: metric_stats' n, mean, p50 and stddev, plus below (how many values lie
-- below the band) and band (sorted). Two passes over measured_ok: the statistics, then the
-- bands. The band: the sorted values at positions (n + 1) // 2 − reach … (n + 1) // 2 + 1 +
-- reach, read from the values within p50 ± 3·√(2π)·stddev·(reach + 1)/n (three times what a
-- normal sample needs to hold them); the whole group when n <= 1000.
-- Whether a band holds every position a compare draws is checked exactly, by position
-- (analysis/55_bootstrap.sql); compare reads the whole group where it does not.
CREATE MACRO metric_summaries_of(skip_runs) AS TABLE
WITH s AS MATERIALIZED (
    SELECT *, coalesce(p50 - w, '-infinity') AS lo, coalesce(p50 + w, 'infinity') AS hi
    FROM metric_stats_for(['ttfb_ms', 'ttft_ms', 'total_ms', 'output_tps'],
                          skip_runs := skip_runs),
    LATERAL (SELECT CASE WHEN n > 1000 THEN 3 * sqrt(2 * pi()) * coalesce(stddev, 0)
                                            * (summary_reach(n) + 1) / n END AS w)
),
edges AS (  -- one row per (run, cell): its metrics' band edges
    SELECT run_id, cell, row_number() OVER () AS cell_g,
           coalesce(any_value(lo) FILTER (WHERE metric = 'ttfb_ms'), 'infinity') AS ttfb_lo,
           coalesce(any_value(hi) FILTER (WHERE metric = 'ttfb_ms'), '-infinity') AS ttfb_hi,
           coalesce(any_value(lo) FILTER (WHERE metric = 'ttft_ms'), 'infinity') AS ttft_lo,
           coalesce(any_value(hi) FILTER (WHERE metric = 'ttft_ms'), '-infinity') AS ttft_hi,
           coalesce(any_value(lo) FILTER (WHERE metric = 'total_ms'), 'infinity') AS total_lo,
           coalesce(any_value(hi) FILTER (WHERE metric = 'total_ms'), '-infinity') AS total_hi,
           coalesce(any_value(lo) FILTER (WHERE metric = 'output_tps'), 'infinity') AS tps_lo,
           coalesce(any_value(hi) FILTER (WHERE metric = 'output_tps'), '-infinity') AS tps_hi
    FROM s GROUP BY run_id, cell
),
wide AS (  -- the one pass over the values
    SELECT any_value(e.run_id) AS run_id, any_value(e.cell) AS cell,
           summary_band_of(m.ttfb_ms, e.ttfb_lo, e.ttfb_hi) AS ttfb_ms,
           summary_band_of(m.ttft_ms, e.ttft_lo, e.ttft_hi) AS ttft_ms,
           summary_band_of(m.total_ms, e.total_lo, e.total_hi) AS total_ms,
           summary_band_of(m.output_tps, e.tps_lo, e.tps_hi) AS output_tps
    FROM (FROM measured_ok WHERE NOT list_contains(skip_runs, run_id)) AS m
    JOIN edges AS e USING (run_id, cell)
    GROUP BY e.cell_g
),
bands AS (
    UNPIVOT wide ON ttfb_ms, ttft_ms, total_ms, output_tps INTO NAME metric VALUE b
)
SELECT run_id, cell, metric, n, mean, p50, stddev, first - 1 AS below,
       band[first - below:last - below] AS band
FROM (
    SELECT s.run_id, s.cell, s.metric, s.n, s.mean, s.p50, s.stddev, b.below,
           list_sort(coalesce(b.band, [])) AS band,
           -- the positions kept: the reach around the middle, or the whole group
           CASE WHEN s.n > 1000
                THEN greatest(b.below + 1, (s.n + 1) // 2 - summary_reach(s.n))
                ELSE b.below + 1 END AS first,
           CASE WHEN s.n > 1000
                THEN least(b.below + len(band), (s.n + 1) // 2 + 1 + summary_reach(s.n))
                ELSE b.below + len(band) END AS last
    FROM s JOIN bands AS b USING (run_id, cell, metric)
);

-- metric_summaries: metric_summaries_of every run.
CREATE VIEW metric_summaries AS FROM metric_summaries_of([]);
