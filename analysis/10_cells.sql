-- cells: one row per (run_id, cell) over measured (non-warm-up) rows.
-- Naming: <metric>_<stat>_ms for times (ms), output_tps_<stat> for tokens/s,
-- stat in mean|min|max|stddev|p50|p90|p95|p99. Counts (n, ok, errors) use every
-- measured row; every latency/speed statistic uses successful rows only.
-- Percentiles are quantile_cont (linear interpolation); stddev is the sample stddev.
-- Formulas: docs/columns.md.
--
-- `cells` joins four parts, each a view of its own so that a view needing a few columns
-- (grades) computes only its part: cell_summary (= cell_counts + cell_latency, one pass),
-- cell_gaps, cell_tokens, cell_goodput. The four percentiles of a metric come from one
-- sort (a list of quantiles).

-- cell_summary: cell_counts and cell_latency side by side, from one pass over measured
-- (ok_only(x, error_type): x on successful rows, NULL on errors, which every statistic
-- skips).
CREATE MACRO ok_only(x, error_type) AS CASE WHEN error_type IS NULL THEN x END;

CREATE VIEW cell_summary AS
SELECT run_id, cell, provider, api, model, model_id, prompt, guardrail, stream, concurrency,
       n, ok, errors, error_rate,
       ttfb_mean_ms, ttfb_min_ms, ttfb_max_ms, ttfb_stddev_ms,
       ttfb_q[1] AS ttfb_p50_ms, ttfb_q[2] AS ttfb_p90_ms, ttfb_q[3] AS ttfb_p95_ms, ttfb_q[4] AS ttfb_p99_ms,
       ttft_mean_ms, ttft_min_ms, ttft_max_ms, ttft_stddev_ms,
       ttft_q[1] AS ttft_p50_ms, ttft_q[2] AS ttft_p90_ms, ttft_q[3] AS ttft_p95_ms, ttft_q[4] AS ttft_p99_ms,
       total_mean_ms, total_min_ms, total_max_ms, total_stddev_ms,
       total_q[1] AS total_p50_ms, total_q[2] AS total_p90_ms, total_q[3] AS total_p95_ms, total_q[4] AS total_p99_ms,
       generation_mean_ms, generation_min_ms, generation_max_ms, generation_stddev_ms,
       generation_q[1] AS generation_p50_ms, generation_q[2] AS generation_p90_ms, generation_q[3] AS generation_p95_ms, generation_q[4] AS generation_p99_ms,
       output_tps_mean, output_tps_min, output_tps_max, output_tps_stddev,
       output_tps_q[1] AS output_tps_p50, output_tps_q[2] AS output_tps_p90, output_tps_q[3] AS output_tps_p95, output_tps_q[4] AS output_tps_p99
FROM (
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
           count(ok_only(1, error_type)) AS ok,
           count(error_type) AS errors,
           count(error_type) / count(*) AS error_rate,
           avg(ok_only(ttfb_ms, error_type)) AS ttfb_mean_ms, min(ok_only(ttfb_ms, error_type)) AS ttfb_min_ms,
           max(ok_only(ttfb_ms, error_type)) AS ttfb_max_ms, stddev_samp(ok_only(ttfb_ms, error_type)) AS ttfb_stddev_ms,
           quantile_cont(ok_only(ttfb_ms, error_type), [0.50, 0.90, 0.95, 0.99]) AS ttfb_q,
           avg(ok_only(ttft_ms, error_type)) AS ttft_mean_ms, min(ok_only(ttft_ms, error_type)) AS ttft_min_ms,
           max(ok_only(ttft_ms, error_type)) AS ttft_max_ms, stddev_samp(ok_only(ttft_ms, error_type)) AS ttft_stddev_ms,
           quantile_cont(ok_only(ttft_ms, error_type), [0.50, 0.90, 0.95, 0.99]) AS ttft_q,
           avg(ok_only(total_ms, error_type)) AS total_mean_ms, min(ok_only(total_ms, error_type)) AS total_min_ms,
           max(ok_only(total_ms, error_type)) AS total_max_ms, stddev_samp(ok_only(total_ms, error_type)) AS total_stddev_ms,
           quantile_cont(ok_only(total_ms, error_type), [0.50, 0.90, 0.95, 0.99]) AS total_q,
           avg(ok_only(generation_ms, error_type)) AS generation_mean_ms,
           min(ok_only(generation_ms, error_type)) AS generation_min_ms,
           max(ok_only(generation_ms, error_type)) AS generation_max_ms,
           stddev_samp(ok_only(generation_ms, error_type)) AS generation_stddev_ms,
           quantile_cont(ok_only(generation_ms, error_type), [0.50, 0.90, 0.95, 0.99]) AS generation_q,
           avg(ok_only(output_tps, error_type)) AS output_tps_mean, min(ok_only(output_tps, error_type)) AS output_tps_min,
           max(ok_only(output_tps, error_type)) AS output_tps_max,
           stddev_samp(ok_only(output_tps, error_type)) AS output_tps_stddev,
           quantile_cont(ok_only(output_tps, error_type), [0.50, 0.90, 0.95, 0.99]) AS output_tps_q
    FROM measured
    GROUP BY run_id, cell
);

CREATE VIEW cell_counts AS
SELECT run_id, cell, provider, api, model, model_id, prompt, guardrail, stream, concurrency,
       n, ok, errors, error_rate
FROM cell_summary;

-- latency statistics of the cells with at least one successful request
CREATE VIEW cell_latency AS
SELECT * EXCLUDE (provider, api, model, model_id, prompt, guardrail, stream, concurrency,
                  n, ok, errors, error_rate)
FROM cell_summary WHERE ok > 0;

-- distribution of every gap of every successful request in the cell
CREATE VIEW cell_gaps AS
SELECT run_id, cell, itl_mean_ms, itl_q[1] AS itl_p50_ms, itl_q[2] AS itl_p90_ms,
       itl_q[4] AS itl_p99_ms, itl_min_ms, itl_max_ms, itl_stddev_ms, itl_q[3] AS itl_p95_ms
FROM (
    SELECT run_id, cell,
           avg(gap_ms) AS itl_mean_ms,
           quantile_cont(gap_ms, [0.50, 0.90, 0.95, 0.99]) AS itl_q,
           min(gap_ms) AS itl_min_ms,
           max(gap_ms) AS itl_max_ms,
           stddev_samp(gap_ms) AS itl_stddev_ms
    FROM gaps
    GROUP BY run_id, cell
);

CREATE VIEW cell_tokens AS
SELECT run_id, cell,
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
GROUP BY run_id, cell;

-- goodput: a request is good if it succeeded, its TTFT is within grade A's TTFT P99
-- ceiling and (where measurable) its output tokens/s reach grade A's floor
CREATE VIEW cell_goodput AS
SELECT m.run_id, m.cell,
       count(*) FILTER (WHERE m.error_type IS NULL
                        AND m.ttft_ms <= a.ttft_p99_ms
                        AND (m.output_tps IS NULL OR m.output_tps >= a.output_tps_mean))
           AS good
FROM measured AS m
CROSS JOIN (SELECT * FROM slo_thresholds WHERE grade = 'A') AS a
GROUP BY m.run_id, m.cell;

CREATE VIEW cells AS
SELECT k.*,
       g.* EXCLUDE (run_id, cell),
       t.* EXCLUDE (run_id, cell),
       coalesce(o.good, 0) AS good,
       coalesce(o.good, 0) / k.n AS goodput
FROM cell_summary AS k
LEFT JOIN cell_gaps AS g USING (run_id, cell)
LEFT JOIN cell_tokens AS t USING (run_id, cell)
LEFT JOIN cell_goodput AS o USING (run_id, cell);
