-- cells: one row per (run_id, cell) over measured (non-warm-up) rows.
-- Naming: <metric>_<stat>_ms for times (ms), output_tps_<stat> for tokens/s,
-- stat in mean|min|max|stddev|p50|p90|p95|p99. Counts (n, ok, errors) use every
-- measured row; every latency/speed statistic uses successful rows only.
-- Percentiles are quantile_cont (linear interpolation); stddev is the sample stddev.
-- Formulas: docs/columns.md.

CREATE VIEW cells AS
WITH counts AS (
    SELECT run_id, cell,
           any_value(provider) AS provider,
           any_value(api) AS api,
           any_value(model) AS model,
           any_value(model_id) AS model_id,
           any_value(prompt) AS prompt,
           any_value(guardrail) AS guardrail,
           any_value(stream) AS stream,
           any_value(concurrency) AS concurrency,
           count(*) AS n,
           count(*) FILTER (WHERE error_type IS NULL) AS ok,
           count(*) FILTER (WHERE error_type IS NOT NULL) AS errors,
           count(*) FILTER (WHERE error_type IS NOT NULL) / count(*) AS error_rate
    FROM measured
    GROUP BY run_id, cell
),
stats AS (
    SELECT run_id, cell,
           avg(ttfb_ms) AS ttfb_mean_ms,
           min(ttfb_ms) AS ttfb_min_ms,
           max(ttfb_ms) AS ttfb_max_ms,
           stddev_samp(ttfb_ms) AS ttfb_stddev_ms,
           quantile_cont(ttfb_ms, 0.50) AS ttfb_p50_ms,
           quantile_cont(ttfb_ms, 0.90) AS ttfb_p90_ms,
           quantile_cont(ttfb_ms, 0.95) AS ttfb_p95_ms,
           quantile_cont(ttfb_ms, 0.99) AS ttfb_p99_ms,
           avg(ttft_ms) AS ttft_mean_ms,
           min(ttft_ms) AS ttft_min_ms,
           max(ttft_ms) AS ttft_max_ms,
           stddev_samp(ttft_ms) AS ttft_stddev_ms,
           quantile_cont(ttft_ms, 0.50) AS ttft_p50_ms,
           quantile_cont(ttft_ms, 0.90) AS ttft_p90_ms,
           quantile_cont(ttft_ms, 0.95) AS ttft_p95_ms,
           quantile_cont(ttft_ms, 0.99) AS ttft_p99_ms,
           avg(total_ms) AS total_mean_ms,
           min(total_ms) AS total_min_ms,
           max(total_ms) AS total_max_ms,
           stddev_samp(total_ms) AS total_stddev_ms,
           quantile_cont(total_ms, 0.50) AS total_p50_ms,
           quantile_cont(total_ms, 0.90) AS total_p90_ms,
           quantile_cont(total_ms, 0.95) AS total_p95_ms,
           quantile_cont(total_ms, 0.99) AS total_p99_ms,
           avg(generation_ms) AS generation_mean_ms,
           min(generation_ms) AS generation_min_ms,
           max(generation_ms) AS generation_max_ms,
           stddev_samp(generation_ms) AS generation_stddev_ms,
           quantile_cont(generation_ms, 0.50) AS generation_p50_ms,
           quantile_cont(generation_ms, 0.90) AS generation_p90_ms,
           quantile_cont(generation_ms, 0.95) AS generation_p95_ms,
           quantile_cont(generation_ms, 0.99) AS generation_p99_ms,
           avg(output_tps) AS output_tps_mean,
           min(output_tps) AS output_tps_min,
           max(output_tps) AS output_tps_max,
           stddev_samp(output_tps) AS output_tps_stddev,
           quantile_cont(output_tps, 0.50) AS output_tps_p50,
           quantile_cont(output_tps, 0.90) AS output_tps_p90,
           quantile_cont(output_tps, 0.95) AS output_tps_p95,
           quantile_cont(output_tps, 0.99) AS output_tps_p99,
           -- mean over requests of each request's own mean gap (requests with >= 1 gap)
           avg(list_avg(itl_ms)) AS itl_request_mean_ms,
           -- TPOT as vLLM defines it: decode time per output token after the first
           avg((total_ms - ttft_ms) / (output_tokens - 1))
               FILTER (WHERE output_tokens > 1) AS tpot_mean_ms,
           -- normalized latency: end-to-end time per output token
           avg(total_ms / output_tokens)
               FILTER (WHERE output_tokens > 0) AS norm_latency_mean_ms,
           quantile_cont((total_ms - ttft_ms) / (output_tokens - 1), 0.50)
               FILTER (WHERE output_tokens > 1) AS tpot_p50_ms,
           quantile_cont((total_ms - ttft_ms) / (output_tokens - 1), 0.99)
               FILTER (WHERE output_tokens > 1) AS tpot_p99_ms,
           quantile_cont(total_ms / output_tokens, 0.50)
               FILTER (WHERE output_tokens > 0) AS norm_latency_p50_ms,
           -- output tokens/s of the whole request: output tokens / total time
           avg(1000.0 * output_tokens / total_ms)
               FILTER (WHERE total_ms > 0) AS e2e_tps_mean
    FROM measured_ok
    GROUP BY run_id, cell
),
itl AS (
    -- distribution of every gap of every successful request in the cell
    SELECT run_id, cell,
           avg(gap_ms) AS itl_mean_ms,
           quantile_cont(gap_ms, 0.50) AS itl_p50_ms,
           quantile_cont(gap_ms, 0.90) AS itl_p90_ms,
           quantile_cont(gap_ms, 0.99) AS itl_p99_ms,
           min(gap_ms) AS itl_min_ms,
           max(gap_ms) AS itl_max_ms,
           stddev_samp(gap_ms) AS itl_stddev_ms,
           quantile_cont(gap_ms, 0.95) AS itl_p95_ms
    FROM gaps
    GROUP BY run_id, cell
),
good AS (
    -- goodput: a request is good if it succeeded, its TTFT is within grade A's TTFT P99
    -- ceiling and (where measurable) its output tokens/s reach grade A's floor
    SELECT m.run_id, m.cell,
           count(*) FILTER (WHERE m.error_type IS NULL
                            AND m.ttft_ms <= a.ttft_p99_ms
                            AND (m.output_tps IS NULL OR m.output_tps >= a.output_tps_mean))
               AS good
    FROM measured AS m
    CROSS JOIN (SELECT * FROM slo_thresholds WHERE grade = 'A') AS a
    GROUP BY m.run_id, m.cell
)
SELECT counts.*,
       stats.* EXCLUDE (run_id, cell, itl_request_mean_ms, tpot_mean_ms, norm_latency_mean_ms,
                        tpot_p50_ms, tpot_p99_ms, norm_latency_p50_ms, e2e_tps_mean),
       itl.* EXCLUDE (run_id, cell),
       stats.itl_request_mean_ms,
       stats.tpot_mean_ms,
       stats.norm_latency_mean_ms,
       stats.tpot_p50_ms, stats.tpot_p99_ms, stats.norm_latency_p50_ms, stats.e2e_tps_mean,
       coalesce(good.good, 0) AS good,
       coalesce(good.good, 0) / counts.n AS goodput
FROM counts
LEFT JOIN stats USING (run_id, cell)
LEFT JOIN itl USING (run_id, cell)
LEFT JOIN good USING (run_id, cell);
