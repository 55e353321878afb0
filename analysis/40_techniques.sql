-- Views for the committed technique experiments (experiments/README.md).

-- load_levels: one row per (run_id, cell) of a load sweep (experiments/concurrency_scaling.yaml).
-- wall_s: first send to last response end among the cell's measured rows (a load level's
-- cells run as one group, so the span is the level's own). throughput_rps: successful
-- requests per second of wall time; output_tps: successful output tokens per second;
-- rejected: rows answered 429/529 (rate_limited/overloaded). goodput: share of measured
-- requests that succeeded within the per-request TTFT budget, the SLO's grade-A
-- ttft_p99_ms (slo_thresholds); goodput_rps: those requests per second.
-- offered_rate: the cell's open-loop rate (from its name, rate=R), NULL for closed loop.
CREATE VIEW load_levels AS
WITH budget AS (SELECT ttft_p99_ms AS ttft_budget_ms FROM slo_thresholds WHERE grade = 'A'),
level AS (
    SELECT run_id, cell,
           any_value(concurrency) AS concurrency,
           TRY_CAST(nullif(regexp_extract(cell, 'rate=([0-9.]+)', 1), '') AS DOUBLE)
               AS offered_rate,
           count(*) AS n,
           count(*) FILTER (WHERE error_type IS NULL) AS ok,
           count(*) FILTER (WHERE error_type IN ('overloaded', 'rate_limited')) AS rejected,
           (max(epoch_us(started_at) + coalesce(total_ms, ttfb_ms, 0) * 1000)
               - min(epoch_us(started_at))) / 1e6 AS wall_s,
           coalesce(sum(output_tokens) FILTER (WHERE error_type IS NULL), 0) AS output_tokens,
           quantile_cont(ttft_ms, 0.50) FILTER (WHERE error_type IS NULL) AS ttft_p50_ms,
           quantile_cont(ttft_ms, 0.90) FILTER (WHERE error_type IS NULL) AS ttft_p90_ms,
           quantile_cont(ttft_ms, 0.99) FILTER (WHERE error_type IS NULL) AS ttft_p99_ms,
           count(*) FILTER (WHERE error_type IS NULL
                            AND ttft_ms <= (SELECT ttft_budget_ms FROM budget)) AS good
    FROM measured
    GROUP BY run_id, cell
)
SELECT run_id, cell, concurrency, offered_rate, n, ok, rejected, wall_s,
       ok / nullif(wall_s, 0) AS throughput_rps,
       output_tokens / nullif(wall_s, 0) AS output_tps,
       ttft_p50_ms, ttft_p90_ms, ttft_p99_ms,
       good / n AS goodput,
       good / nullif(wall_s, 0) AS goodput_rps
FROM level;

-- cache_effect: one row per (run_id, cell) of a prompt-caching study
-- (experiments/prompt_caching.yaml), over measured successful rows. A hit is a request
-- that read tokens from the cache (cache_read_tokens > 0); a miss read none (it may have
-- written the cache: cache_write_tokens > 0).
CREATE VIEW cache_effect AS
SELECT run_id, cell,
       count(*) AS n,
       count(*) FILTER (WHERE coalesce(cache_read_tokens, 0) > 0) / count(*) AS hit_rate,
       quantile_cont(ttft_ms, 0.50) FILTER (WHERE coalesce(cache_read_tokens, 0) > 0)
           AS ttft_hit_p50_ms,
       quantile_cont(ttft_ms, 0.50) FILTER (WHERE coalesce(cache_read_tokens, 0) = 0)
           AS ttft_miss_p50_ms,
       avg(input_tokens) AS input_tokens_mean,
       avg(cache_write_tokens) AS cache_write_tokens_mean,
       avg(cache_read_tokens) AS cache_read_tokens_mean,
       avg(cost_usd) AS cost_per_request_usd,
       sum(cost_usd) AS cost_usd
FROM measured_ok
GROUP BY run_id, cell;
