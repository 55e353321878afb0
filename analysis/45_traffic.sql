-- Views for real traffic shapes: trace replay and multi-turn conversations
-- (runner/engine/traffic.py, runner/engine/conversation.py; docs/columns.md).

-- replay_summary: one row per (run_id, cell) of a replay (rows with planned send times from a
-- trace). span_s: the last scheduled send after the first; offered_rps: requests per second
-- of that span; send_delay_p50_ms / _max_ms: how late the client sent (scheduled → sent);
-- on_time_share: share sent within 5 ms of schedule; hit_rate: share that read the prompt
-- cache; ttft_hit_p50_ms / ttft_miss_p50_ms: TTFT of those that did / did not.
CREATE VIEW replay_summary AS
SELECT run_id, cell,
       count(*) AS n,
       count(*) FILTER (WHERE error_type IS NULL) / count(*) AS ok_share,
       (max(scheduled_ms) - min(scheduled_ms)) / 1000 AS span_s,
       (count(*) - 1) / nullif((max(scheduled_ms) - min(scheduled_ms)) / 1000, 0) AS offered_rps,
       quantile_cont(send_delay_ms, 0.50) AS send_delay_p50_ms,
       max(send_delay_ms) AS send_delay_max_ms,
       count(*) FILTER (WHERE send_delay_ms < 5) / count(*) AS on_time_share,
       count(*) FILTER (WHERE coalesce(cache_read_tokens, 0) > 0) / count(*) AS hit_rate,
       quantile_cont(ttft_ms, 0.50) FILTER (WHERE coalesce(cache_read_tokens, 0) > 0
                                           AND error_type IS NULL) AS ttft_hit_p50_ms,
       quantile_cont(ttft_ms, 0.50) FILTER (WHERE coalesce(cache_read_tokens, 0) = 0
                                           AND error_type IS NULL) AS ttft_miss_p50_ms
FROM measured
WHERE cell LIKE '%/replay=%'
GROUP BY run_id, cell;

-- conversation_turns: TTFT against context length, one row per (run_id, cell, turn, cached)
-- of multi-turn conversations (rows with a turn and context_tokens). cached: the turn read
-- tokens from the prompt cache (cache_read_tokens > 0). Successful measured rows only.
CREATE VIEW conversation_turns AS
SELECT run_id, cell, turn,
       coalesce(cache_read_tokens, 0) > 0 AS cached,
       count(*) AS n,
       avg(context_tokens) AS context_tokens_mean,
       avg(cache_read_tokens) AS cache_read_tokens_mean,
       quantile_cont(ttft_ms, 0.50) AS ttft_p50_ms,
       avg(ttft_ms) AS ttft_mean_ms
FROM measured_ok
WHERE context_tokens IS NOT NULL
GROUP BY ALL;

-- conversation_growth: how TTFT grows with the context, one row per (run_id, cell).
-- ttft_ms_per_1k_context: least-squares slope of TTFT on context_tokens (ms per 1,000 tokens;
-- without caching ≈ the provider's prefill cost, on the emulator its profile's
-- prefill_ms_per_1k_tokens); hit_rate: share of turns that read the prompt cache.
CREATE VIEW conversation_growth AS
WITH turns AS (
    SELECT *, max(turn) OVER (PARTITION BY run_id, cell) AS last_turn
    FROM measured_ok WHERE context_tokens IS NOT NULL
)
SELECT run_id, cell,
       count(*) AS n,
       count(DISTINCT session_id) AS conversations,
       max(turn) + 1 AS turns,
       max(context_tokens) AS context_tokens_max,
       regr_slope(ttft_ms, context_tokens) * 1000 AS ttft_ms_per_1k_context,
       quantile_cont(ttft_ms, 0.50) FILTER (WHERE turn = 0) AS ttft_first_turn_p50_ms,
       quantile_cont(ttft_ms, 0.50) FILTER (WHERE turn = last_turn) AS ttft_last_turn_p50_ms,
       count(*) FILTER (WHERE coalesce(cache_read_tokens, 0) > 0) / count(*) AS hit_rate
FROM turns
GROUP BY run_id, cell;
