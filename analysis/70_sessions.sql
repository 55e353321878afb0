-- session_times: one row per session (the root `session` span) with the time spent in model
-- calls and in each tool category, counts, and shares of the session's wall-clock time.
--   total_ms        the session span's duration (wall clock, start to last turn)
--   model_ms        sum of model_call spans (each model call, retries included)
--   tool_ms         sum of tool_call spans; <category>_ms per category (bash, cli, mcp, file,
--                   other); tools of one turn run one after another, so these add up
--   other_ms        total_ms − model_ms − tool_ms (the agent loop's own time)
--   model_share, tool_share   model_ms / total_ms, tool_ms / total_ms
--   turns, model_calls, tool_calls, <category>_calls, errors (spans with status 'error')
CREATE VIEW session_times AS
WITH sessions AS (
    SELECT run_id, session_id, cell, provider, driver, task, model, status,
           duration_ms AS total_ms, started_at
    FROM spans WHERE kind = 'session'
),
parts AS (
    SELECT run_id, session_id,
           count(*) FILTER (WHERE kind = 'turn') AS turns,
           count(*) FILTER (WHERE kind = 'model_call') AS model_calls,
           coalesce(sum(duration_ms) FILTER (WHERE kind = 'model_call'), 0) AS model_ms,
           count(*) FILTER (WHERE kind = 'tool_call') AS tool_calls,
           coalesce(sum(duration_ms) FILTER (WHERE kind = 'tool_call'), 0) AS tool_ms,
           coalesce(sum(duration_ms) FILTER (WHERE kind = 'tool_call' AND category = 'bash'), 0)
               AS bash_ms,
           coalesce(sum(duration_ms) FILTER (WHERE kind = 'tool_call' AND category = 'cli'), 0)
               AS cli_ms,
           coalesce(sum(duration_ms) FILTER (WHERE kind = 'tool_call' AND category = 'mcp'), 0)
               AS mcp_ms,
           coalesce(sum(duration_ms) FILTER (WHERE kind = 'tool_call' AND category = 'file'), 0)
               AS file_ms,
           coalesce(sum(duration_ms) FILTER (WHERE kind = 'tool_call' AND category = 'other'), 0)
               AS other_tool_ms,
           count(*) FILTER (WHERE kind = 'tool_call' AND category = 'bash') AS bash_calls,
           count(*) FILTER (WHERE kind = 'tool_call' AND category = 'cli') AS cli_calls,
           count(*) FILTER (WHERE kind = 'tool_call' AND category = 'mcp') AS mcp_calls,
           count(*) FILTER (WHERE kind = 'tool_call' AND category = 'file') AS file_calls,
           count(*) FILTER (WHERE kind = 'tool_call' AND category = 'other') AS other_calls,
           count(*) FILTER (WHERE kind = 'http_call') AS http_calls,
           count(*) FILTER (WHERE status = 'error' AND kind <> 'session') AS errors,
           max(ttft_ms) FILTER (WHERE kind = 'model_call') AS ttft_max_ms,
           avg(ttft_ms) FILTER (WHERE kind = 'model_call') AS ttft_mean_ms
    FROM spans GROUP BY run_id, session_id
)
SELECT s.run_id, s.session_id, s.cell, s.provider, s.driver, s.task, s.model, s.status,
       s.started_at, s.total_ms, p.model_ms, p.tool_ms,
       s.total_ms - p.model_ms - p.tool_ms AS other_ms,
       p.bash_ms, p.cli_ms, p.mcp_ms, p.file_ms, p.other_tool_ms,
       p.model_ms / nullif(s.total_ms, 0) AS model_share,
       p.tool_ms / nullif(s.total_ms, 0) AS tool_share,
       p.turns, p.model_calls, p.tool_calls, p.bash_calls, p.cli_calls, p.mcp_calls,
       p.file_calls, p.other_calls, p.http_calls, p.errors, p.ttft_mean_ms
FROM sessions s JOIN parts p USING (run_id, session_id);

-- tool_timings: per (run, provider, driver, task, model): sessions and the mean per session
-- of total, model and tool time (per category), counts, and the shares of total time.
CREATE VIEW tool_timings AS
SELECT run_id, provider, driver, task, model,
       count(*) AS sessions,
       count(*) FILTER (WHERE status <> 'ok') AS failed_sessions,
       avg(total_ms) AS total_mean_ms,
       quantile_cont(total_ms, 0.5) AS total_p50_ms,
       avg(model_ms) AS model_mean_ms,
       avg(tool_ms) AS tool_mean_ms,
       avg(bash_ms) AS bash_mean_ms, avg(cli_ms) AS cli_mean_ms, avg(mcp_ms) AS mcp_mean_ms,
       avg(file_ms) AS file_mean_ms, avg(other_tool_ms) AS other_tool_mean_ms,
       sum(model_ms) / nullif(sum(total_ms), 0) AS model_share,
       sum(tool_ms) / nullif(sum(total_ms), 0) AS tool_share,
       avg(model_calls) AS model_calls_mean, avg(tool_calls) AS tool_calls_mean,
       avg(bash_calls) AS bash_calls_mean, avg(cli_calls) AS cli_calls_mean,
       avg(mcp_calls) AS mcp_calls_mean, avg(file_calls) AS file_calls_mean,
       avg(turns) AS turns_mean
FROM session_times
GROUP BY run_id, provider, driver, task, model;

-- session_deltas: across providers, the session-level difference for the same task, driver
-- and run (the seed study's table): for every pair of providers, b − a of the mean total,
-- model and tool time per session, and b's total over a's. Direct providers come first as
-- `a` (the baseline), then Bedrock/Vertex ones; ties by name.
CREATE VIEW session_deltas AS
WITH ranked AS (
    SELECT *, CASE WHEN provider ILIKE '%bedrock%' OR provider ILIKE '%vertex%' THEN 1
                   ELSE 0 END AS indirect
    FROM tool_timings
)
SELECT a.run_id, a.driver, a.task,
       a.provider AS provider_a, b.provider AS provider_b,
       a.sessions AS sessions_a, b.sessions AS sessions_b,
       a.total_mean_ms AS total_a_ms, b.total_mean_ms AS total_b_ms,
       b.total_mean_ms - a.total_mean_ms AS total_delta_ms,
       b.model_mean_ms - a.model_mean_ms AS model_delta_ms,
       b.tool_mean_ms - a.tool_mean_ms AS tool_delta_ms,
       b.total_mean_ms / nullif(a.total_mean_ms, 0) AS total_ratio
FROM ranked a JOIN ranked b
  ON a.run_id = b.run_id AND a.driver = b.driver AND a.task = b.task
 AND (a.indirect < b.indirect OR (a.indirect = b.indirect AND a.provider < b.provider));

-- http_calls_by_endpoint: calls per session by endpoint (messages, count_tokens, telemetry,
-- MCP, …): count, errors, time (sum and median), median TTFB and bytes, per session.
CREATE VIEW http_calls_by_endpoint AS
SELECT run_id, session_id, any_value(provider) AS provider, any_value(task) AS task,
       method, endpoint,
       count(*) AS calls,
       count(*) FILTER (WHERE status <> 'ok') AS errors,
       sum(duration_ms) AS total_ms,
       quantile_cont(duration_ms, 0.5) AS total_p50_ms,
       quantile_cont(ttfb_ms, 0.5) AS ttfb_p50_ms,
       sum(request_bytes) AS request_bytes,
       sum(response_bytes) AS response_bytes,
       list(DISTINCT model) FILTER (WHERE model IS NOT NULL) AS models
FROM spans WHERE kind = 'http_call'
GROUP BY run_id, session_id, method, endpoint;

-- cli_vs_proxy: Claude Code sessions, the CLI's own figures beside what latlab measured:
-- cli_duration_ms (the CLI's wall clock) vs total_ms (the process, start-up included),
-- cli_duration_api_ms (its time in API calls) vs proxy_model_ms (sum of proxied Messages
-- calls, upstream time at the proxy): api_overhead_ms = the difference, the CLI's client-side
-- time per session around its API calls (plus the loopback hop); cli_ttft_ms vs the proxy's.
CREATE VIEW cli_vs_proxy AS
SELECT t.run_id, t.session_id, t.provider, t.task, t.model_calls,
       t.total_ms, TRY_CAST(json_extract(s.attributes, '$.cli_duration_ms') AS DOUBLE)
           AS cli_duration_ms,
       t.model_ms AS proxy_model_ms,
       TRY_CAST(json_extract(s.attributes, '$.cli_duration_api_ms') AS DOUBLE)
           AS cli_duration_api_ms,
       TRY_CAST(json_extract(s.attributes, '$.cli_duration_api_ms') AS DOUBLE) - t.model_ms
           AS api_overhead_ms,
       TRY_CAST(json_extract(s.attributes, '$.cli_ttft_ms') AS DOUBLE) AS cli_ttft_ms,
       t.ttft_mean_ms AS proxy_ttft_mean_ms,
       TRY_CAST(json_extract(s.attributes, '$.cli_num_turns') AS BIGINT) AS cli_num_turns,
       TRY_CAST(json_extract(s.attributes, '$.cli_total_cost_usd') AS DOUBLE) AS cli_cost_usd
FROM session_times t JOIN spans s ON s.session_id = t.session_id AND s.kind = 'session'
WHERE t.driver = 'claude_code';

-- http_calls: every HTTP call latlab made or proxied, one row each: the http_call spans of
-- agent sessions, and every request row that has no span of its own (plain request runs: one
-- row = one call; endpoint from the provider's API: Messages, or Bedrock's
-- /model/{modelId}/<operation>). host and bytes are known for spans only; a row's retries
-- (requests.retries) were calls too, but only the final one is timed.
CREATE VIEW http_calls AS
SELECT run_id, session_id, span_id, 'span' AS source, started_at, method, endpoint, host,
       http_status AS status, ttfb_ms, duration_ms AS total_ms, request_bytes,
       response_bytes, request_id, model, error_type
FROM spans WHERE kind = 'http_call'
UNION ALL BY NAME
SELECT run_id, session_id, span_id, 'requests' AS source, started_at, 'POST' AS method,
       CASE WHEN api IN ('invoke', 'invoke_stream', 'converse', 'converse_stream')
            THEN '/model/{modelId}/' || replace(api, '_stream', '')
                 || CASE WHEN stream AND api LIKE 'invoke%' THEN '-with-response-stream'
                         WHEN stream THEN '-stream' ELSE '' END
            ELSE '/v1/messages' END AS endpoint,
       NULL AS host, status, ttfb_ms, total_ms, NULL AS request_bytes, NULL AS response_bytes,
       request_id, model_id AS model, error_type
FROM requests WHERE span_id IS NULL;
