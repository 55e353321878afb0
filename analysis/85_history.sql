-- History over a time window (`latlab report --since 24h`): variables latlab_since_s (the
-- window, seconds) and latlab_bucket_s (the time-series bucket), set by analysis/history.py.

-- history_buckets: per (cell, time bucket) within the window: requests, TTFT and total
-- percentiles of the successful ones, and the error rate.
CREATE VIEW history_buckets AS
SELECT cell,
       time_bucket(to_seconds(getvariable('latlab_bucket_s')), started_at) AS bucket,
       count(*) AS n,
       quantile_cont(ttft_ms, 0.5) FILTER (WHERE error_type IS NULL) AS ttft_p50_ms,
       quantile_cont(ttft_ms, 0.9) FILTER (WHERE error_type IS NULL) AS ttft_p90_ms,
       quantile_cont(ttft_ms, 0.99) FILTER (WHERE error_type IS NULL) AS ttft_p99_ms,
       quantile_cont(total_ms, 0.5) FILTER (WHERE error_type IS NULL) AS total_p50_ms,
       avg((error_type IS NOT NULL)::INT) AS error_rate
FROM measured
WHERE started_at >= now() - to_seconds(getvariable('latlab_since_s'))
GROUP BY cell, bucket;

-- history_hour_of_day: per (cell, UTC hour 0-23) within the window.
CREATE VIEW history_hour_of_day AS
SELECT cell, hour(started_at) AS hour_utc, count(*) AS n,
       quantile_cont(ttft_ms, 0.5) FILTER (WHERE error_type IS NULL) AS ttft_p50_ms,
       quantile_cont(ttft_ms, 0.9) FILTER (WHERE error_type IS NULL) AS ttft_p90_ms,
       quantile_cont(ttft_ms, 0.99) FILTER (WHERE error_type IS NULL) AS ttft_p99_ms,
       avg((error_type IS NOT NULL)::INT) AS error_rate
FROM measured
WHERE started_at >= now() - to_seconds(getvariable('latlab_since_s'))
GROUP BY cell, hour_utc;

-- history_windows: successful TTFTs of the last window (`side` = `last`) and the one before
-- (`before`), for the bootstrap comparison.
CREATE VIEW history_windows AS
SELECT cell,
       CASE WHEN started_at >= now() - to_seconds(getvariable('latlab_since_s'))
            THEN 'last' ELSE 'before' END AS side,
       ttft_ms
FROM measured_ok
WHERE ttft_ms IS NOT NULL
  AND started_at >= now() - to_seconds(2 * getvariable('latlab_since_s'));

-- history_groups: per (cell, side) of history_windows, its TTFTs sorted, as rows of
-- bootstrap_groups (analysis/55_bootstrap.sql; `run_id` holds the side): `latlab report
-- --since` compares the two windows with `latlab compare`'s bootstrap.
CREATE VIEW history_groups AS
SELECT row_number() OVER (ORDER BY cell, side) AS g, side AS run_id, cell,
       'ttft_ms' AS metric, count(*) AS n, 0 AS below, list(ttft_ms ORDER BY ttft_ms) AS band
FROM history_windows
GROUP BY cell, side;

-- history_pairs: per cell with both windows, the pair (before = baseline, last) of the
-- groups history.py copied into bootstrap_groups.
CREATE VIEW history_pairs AS
SELECT row_number() OVER (ORDER BY b.cell) AS pair, b.g AS baseline_g, o.g
FROM bootstrap_groups AS b
JOIN bootstrap_groups AS o ON o.cell = b.cell AND o.run_id = 'last'
WHERE b.run_id = 'before';

-- history_comparison: per cell, the TTFT median of each window, their difference and its
-- 95 % bootstrap interval (bootstrap_intervals over the filled groups and pairs).
CREATE VIEW history_comparison AS
SELECT b.cell, b.n AS n_before, list_aggregate(b.band, 'median') AS ttft_p50_before_ms,
       o.n AS n_last, list_aggregate(o.band, 'median') AS ttft_p50_last_ms,
       ttft_p50_last_ms - ttft_p50_before_ms AS delta_ms, i.ci_low AS ci_low_ms,
       i.ci_high AS ci_high_ms
FROM bootstrap_pairs AS p
JOIN bootstrap_groups AS b ON b.g = p.baseline_g
JOIN bootstrap_groups AS o ON o.g = p.g
JOIN bootstrap_intervals AS i USING (pair);
