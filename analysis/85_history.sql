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
