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
