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

-- within_slo: a request met the search's per-request SLO: it succeeded, its TTFT is at most
-- ttft_limit (ms) and, when tpot_limit is not NULL, its mean inter-token gap (time per output
-- token) at most tpot_limit (ms).
CREATE MACRO within_slo(error_type, ttft_ms, itl_ms, ttft_limit, tpot_limit) AS
    error_type IS NULL AND ttft_ms <= ttft_limit
    AND (tpot_limit IS NULL OR coalesce(list_avg(itl_ms), 0) <= tpot_limit);

-- load_steps(ttft_limit, tpot_limit): one row per run of a load step (the capacity search,
-- runner/app/search.py): n measured requests, good (within_slo), errors, and ttft_rise: the
-- TTFT median of the last quarter of the run (by scheduled send time) over the first
-- quarter's: a queue that keeps growing (saturation) shows as a rise well above 1.
CREATE MACRO load_steps(ttft_limit, tpot_limit) AS TABLE
WITH quartered AS (
    SELECT *, ntile(4) OVER (PARTITION BY run_id ORDER BY scheduled_ms, started_at) AS quarter
    FROM measured
)
SELECT run_id,
       count(*) AS n,
       count(*) FILTER (WHERE within_slo(error_type, ttft_ms, itl_ms, ttft_limit, tpot_limit))
           AS good,
       count(error_type) AS errors,
       quantile_cont(ttft_ms, 0.5) FILTER (WHERE quarter = 4 AND error_type IS NULL)
           / nullif(quantile_cont(ttft_ms, 0.5) FILTER (WHERE quarter = 1
                                                        AND error_type IS NULL), 0)
           AS ttft_rise
FROM quartered
GROUP BY run_id;

-- replay_calls: a replayed session call by call (replay rows with a session_id), one row per
-- call and cell: its TTFT and total time, how late it was sent, and elapsed_ms: the session's
-- wall time from its first call's send to this call's end (model time plus the recorded gaps).
CREATE VIEW replay_calls AS
SELECT run_id, cell, provider, session_id, turn, started_at, ttft_ms, total_ms, send_delay_ms,
       error_type,
       (epoch_us(started_at) - epoch_us(first_value(started_at) OVER session)) / 1000
           + coalesce(total_ms, 0) AS elapsed_ms
FROM measured
WHERE cell LIKE '%/replay=%' AND session_id IS NOT NULL
WINDOW session AS (PARTITION BY run_id, cell, session_id ORDER BY started_at);

-- replay_sessions: where a replayed session's time went, one row per (run_id, cell, session):
-- model_ms (the calls' total time), between_calls_ms (the recorded tool/think gaps as
-- replayed, plus the client's delays) and wall_ms (first send to last end).
CREATE VIEW replay_sessions AS
SELECT run_id, cell, any_value(provider) AS provider, session_id,
       count(*) AS calls,
       count(error_type) AS errors,
       sum(total_ms) AS model_ms,
       sum(ttft_ms) AS ttft_ms_sum,
       max(elapsed_ms) AS wall_ms,
       max(elapsed_ms) - sum(total_ms) AS between_calls_ms
FROM replay_calls
GROUP BY run_id, cell, session_id;
