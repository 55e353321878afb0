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

-- batches: one row per multi-call batch (rows with a batch_id; runner/engine/batches.py). ok: the batch
-- got its answer (fallback: its last attempt succeeded; other kinds: every call did).
-- calls: rows (client-cache hits included); provider_calls: requests actually sent.
CREATE VIEW batches AS
SELECT run_id, cell, batch_id,
       any_value(batch_kind) AS batch_kind,
       any_value(batch_mode) AS batch_mode,
       any_value(iteration) AS iteration,
       bool_or(warmup) AS warmup,
       any_value(prompt_label) AS prompt_label,
       count(*) AS calls,
       count(*) FILTER (WHERE coalesce(batch_role, '') <> 'cache') AS provider_calls,
       max(batch_wall_ms) AS wall_ms,
       CASE WHEN any_value(batch_kind) = 'fallback'
            THEN arg_max(error_type IS NULL, batch_step)
            ELSE bool_and(error_type IS NULL) END AS ok,
       coalesce(sum(input_tokens), 0) + coalesce(sum(cache_read_tokens), 0)
           + coalesce(sum(cache_write_tokens), 0) AS input_tokens,
       coalesce(sum(output_tokens), 0) AS output_tokens,
       sum(cost_usd) AS cost_usd,
       any_value(route) AS route,
       bool_and(route_correct) AS route_correct,
       any_value(client_cache) AS client_cache,
       bool_and(client_cache_correct) AS client_cache_correct
FROM requests
WHERE batch_id IS NOT NULL
GROUP BY run_id, cell, batch_id;

-- batch_cells: one row per (run_id, cell) of a batch experiment, over non-warm-up batches.
-- success_rate: share of batches ok; wall_*: batch wall time; calls/tokens/cost: per batch.
-- Routing: small_share (batches routed small), routing_accuracy (route = label).
-- Client cache: hit_rate, wall_hit_p50_ms / wall_miss_p50_ms, wrong_hit_rate (share of hits
-- whose cached answer was for another label).
CREATE VIEW batch_cells AS
SELECT run_id, cell,
       any_value(batch_kind) AS batch_kind,
       any_value(batch_mode) AS batch_mode,
       count(*) AS batches,
       avg(ok::INT) AS success_rate,
       quantile_cont(wall_ms, 0.50) AS wall_p50_ms,
       quantile_cont(wall_ms, 0.99) AS wall_p99_ms,
       avg(wall_ms) AS wall_mean_ms,
       avg(calls) AS calls_mean,
       avg(provider_calls) AS provider_calls_mean,
       avg(input_tokens) AS input_tokens_mean,
       avg(output_tokens) AS output_tokens_mean,
       avg(cost_usd) AS cost_per_batch_usd,
       avg((route = 'small')::INT) AS small_share,
       avg(route_correct::INT) AS routing_accuracy,
       avg((client_cache = 'hit')::INT) AS hit_rate,
       quantile_cont(wall_ms, 0.50) FILTER (WHERE client_cache = 'hit') AS wall_hit_p50_ms,
       quantile_cont(wall_ms, 0.50) FILTER (WHERE client_cache = 'miss') AS wall_miss_p50_ms,
       avg((NOT client_cache_correct)::INT) FILTER (WHERE client_cache = 'hit')
           AS wrong_hit_rate
FROM batches
WHERE NOT warmup
GROUP BY run_id, cell;
