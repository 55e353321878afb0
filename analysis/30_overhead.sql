-- provider_overhead: what each indirect cell (Bedrock, Bedrock + guardrail, …) adds over the
-- direct Anthropic API cell (provider = 'anthropic') of the same run that matches it on every
-- other axis (model, prompt, stream/block and any extra matrix axis; the guardrail is the one
-- axis allowed to differ). One row per indirect cell; successful non-warm-up rows only.
--
-- Columns (ms unless noted; *_delta = indirect cell − direct cell, *_pct = delta / direct × 100):
--   n, n_direct                    successful requests in the cell and in the direct cell
--   ttft_p50_ms, ttft_p50_delta_ms, ttft_p50_delta_pct, ttft_mean_delta_ms
--   total_p50_ms, total_p50_delta_ms, total_p50_delta_pct, total_mean_delta_ms
--   server_latency_mean_ms         mean latency the provider reports itself (Bedrock:
--                                  invocationLatency, X-Amzn-Bedrock-Invocation-Latency, or
--                                  Converse metrics.latencyMs)
--   server_first_byte_mean_ms      mean firstByteLatency (InvokeModelWithResponseStream)
--   server_share                   server_latency_mean_ms / the cell's mean client total: how
--                                  much of what the client waited the provider accounts for
--   overhead_server_share          (server_latency_mean_ms − direct total mean) / total mean
--                                  delta: the share of the added time the provider reports as
--                                  its own (an estimate: the direct total stands in for the
--                                  model's time; on a real network it also holds the RTT)
--   interventions                  rows whose guardrail_action is INTERVENED
CREATE VIEW provider_overhead AS
WITH per_cell AS (
    SELECT run_id, cell,
           any_value(provider) AS provider,
           any_value(model) AS model,
           any_value(prompt) AS prompt,
           any_value(guardrail) AS guardrail,
           any_value(stream) AS stream,
           count(*) AS n,
           quantile_cont(ttft_ms, 0.50) AS ttft_p50_ms,
           avg(ttft_ms) AS ttft_mean_ms,
           quantile_cont(total_ms, 0.50) AS total_p50_ms,
           avg(total_ms) AS total_mean_ms,
           avg(server_latency_ms) AS server_latency_mean_ms,
           avg(server_first_byte_ms) AS server_first_byte_mean_ms,
           count(*) FILTER (WHERE guardrail_action = 'INTERVENED') AS interventions
    FROM measured_ok
    GROUP BY run_id, cell
),
keyed AS (
    -- cell = provider/model/prompt/guardrail/mode[/axis=value…]: the key drops provider and
    -- guardrail, so a cell and its direct counterpart share it.
    SELECT *, array_to_string(list_concat(list_slice(string_split(cell, '/'), 2, 3),
                                          list_slice(string_split(cell, '/'), 5, 1000)),
                              '/') AS match_key
    FROM per_cell
)
SELECT c.run_id, c.cell, c.provider, c.model, c.prompt, c.guardrail, c.stream,
       c.n, d.n AS n_direct,
       c.ttft_p50_ms,
       c.ttft_p50_ms - d.ttft_p50_ms AS ttft_p50_delta_ms,
       100 * (c.ttft_p50_ms - d.ttft_p50_ms) / d.ttft_p50_ms AS ttft_p50_delta_pct,
       c.ttft_mean_ms - d.ttft_mean_ms AS ttft_mean_delta_ms,
       c.total_p50_ms,
       c.total_p50_ms - d.total_p50_ms AS total_p50_delta_ms,
       100 * (c.total_p50_ms - d.total_p50_ms) / d.total_p50_ms AS total_p50_delta_pct,
       c.total_mean_ms - d.total_mean_ms AS total_mean_delta_ms,
       c.server_latency_mean_ms,
       c.server_first_byte_mean_ms,
       c.server_latency_mean_ms / c.total_mean_ms AS server_share,
       (c.server_latency_mean_ms - d.total_mean_ms)
           / nullif(c.total_mean_ms - d.total_mean_ms, 0) AS overhead_server_share,
       c.interventions
FROM keyed c
JOIN keyed d ON d.run_id = c.run_id AND d.match_key = c.match_key AND d.provider = 'anthropic'
WHERE c.provider <> 'anthropic'
ORDER BY c.run_id, c.model, c.prompt, c.stream, c.cell;
