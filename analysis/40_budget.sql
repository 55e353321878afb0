-- Latency budget: where every millisecond of a request goes. Successful non-warm-up rows.
--
-- request_phases: one row per successful measured request, its total split into phases
-- that add up to total_ms exactly (ms):
--   connect_ms      connect + TLS (connect_ms + tls_ms); 0 when a pooled connection was reused
--   headers_ms      ttfb − connect: request sent → status line and headers (time to headers)
--   first_token_ms  ttft − ttfb: headers → first content token (non-streaming: the body)
--   generation_ms   first → last content token (0 when not streamed)
--   tail_ms         total − ttft − generation: after the last token to the end (client remainder)
-- and, where the provider reports its own latency (Bedrock), beside them (not added):
--   server_ms          server_latency_ms
--   outside_server_ms  total − server_ms: what the client waited outside the provider's
--                      reported time (network, front end, client)
CREATE VIEW request_phases AS
SELECT run_id, cell, provider, model, prompt, guardrail, stream,
       iteration, worker, started_at, new_connection,
       c AS connect_ms,
       coalesce(ttfb_ms, ttft_ms) - c AS headers_ms,
       ttft_ms - coalesce(ttfb_ms, ttft_ms) AS first_token_ms,
       g AS generation_ms,
       total_ms - ttft_ms - g AS tail_ms,
       total_ms,
       server_latency_ms AS server_ms,
       total_ms - server_latency_ms AS outside_server_ms
FROM (
    SELECT *, coalesce(connect_ms, 0) + coalesce(tls_ms, 0) AS c,
           coalesce(generation_ms, 0) AS g
    FROM measured_ok
);

-- budget: one row per (run_id, cell): mean and median (p50) of every phase. Means add up to
-- total_mean_ms; medians do not add up (each is the median of its own phase).
--   n                    successful measured requests
--   new_connections      requests that opened a connection
--   connect_new_mean_ms  mean connect + TLS over those requests only (what one setup costs)
--   connect_mean_ms      connect + TLS per request, amortized (0 for reused connections)
--   server_n             requests with a provider-reported latency (server_*: over those)
--   server_share         server_mean_ms / total_mean_ms over the same requests
CREATE VIEW budget AS
SELECT c.run_id, c.cell,
       any_value(c.provider) AS provider, any_value(c.model) AS model,
       any_value(c.prompt) AS prompt, any_value(c.guardrail) AS guardrail,
       any_value(c.stream) AS stream,
       count(*) AS n,
       count(CASE WHEN c.new_connection OR c.connect_ms > 0 THEN 1 END) AS new_connections,
       avg(CASE WHEN c.new_connection OR c.connect_ms > 0 THEN c.connect_ms END)
           AS connect_new_mean_ms,
       avg(c.connect_ms) AS connect_mean_ms, quantile_cont(c.connect_ms, 0.5) AS connect_p50_ms,
       avg(c.headers_ms) AS headers_mean_ms, quantile_cont(c.headers_ms, 0.5) AS headers_p50_ms,
       avg(c.first_token_ms) AS first_token_mean_ms,
       quantile_cont(c.first_token_ms, 0.5) AS first_token_p50_ms,
       avg(c.generation_ms) AS generation_mean_ms,
       quantile_cont(c.generation_ms, 0.5) AS generation_p50_ms,
       avg(c.tail_ms) AS tail_mean_ms, quantile_cont(c.tail_ms, 0.5) AS tail_p50_ms,
       avg(c.total_ms) AS total_mean_ms, quantile_cont(c.total_ms, 0.5) AS total_p50_ms,
       count(c.server_ms) AS server_n,
       avg(c.server_ms) AS server_mean_ms, quantile_cont(c.server_ms, 0.5) AS server_p50_ms,
       avg(c.outside_server_ms) AS outside_server_mean_ms,
       quantile_cont(c.outside_server_ms, 0.5) AS outside_server_p50_ms,
       avg(c.server_ms) / avg(CASE WHEN c.server_ms IS NOT NULL THEN c.total_ms END)
           AS server_share
FROM request_phases AS c
GROUP BY c.run_id, c.cell;

-- budget_phases: the budget in long form, one row per (run_id, cell, phase) in request
-- order (phase_order 1…5): mean_ms, p50_ms, share = mean_ms / total mean (0 … 1).
CREATE VIEW budget_phases AS
SELECT b.run_id, b.cell, p.phase_order, p.phase, p.mean_ms, p.p50_ms,
       p.mean_ms / nullif(b.total_mean_ms, 0) AS share
FROM budget AS b,
     (VALUES (1, 'connect'), (2, 'headers'), (3, 'first_token'), (4, 'generation'),
             (5, 'tail')) AS names(phase_order, phase),
     LATERAL (SELECT names.phase_order, names.phase,
                     CASE names.phase
                         WHEN 'connect' THEN b.connect_mean_ms
                         WHEN 'headers' THEN b.headers_mean_ms
                         WHEN 'first_token' THEN b.first_token_mean_ms
                         WHEN 'generation' THEN b.generation_mean_ms
                         ELSE b.tail_mean_ms END AS mean_ms,
                     CASE names.phase
                         WHEN 'connect' THEN b.connect_p50_ms
                         WHEN 'headers' THEN b.headers_p50_ms
                         WHEN 'first_token' THEN b.first_token_p50_ms
                         WHEN 'generation' THEN b.generation_p50_ms
                         ELSE b.tail_p50_ms END AS p50_ms) AS p;

-- budget_delta: for every pair of cells of one run that differ in one axis (cell_pairs),
-- what the cell adds over its baseline, per phase (mean ms; cell − baseline):
--   connect_delta_ms … tail_delta_ms, total_delta_ms, total_delta_pct (of the baseline's
--   mean total), total_p50_delta_ms,
--   server_delta_ms   the part of the added time the provider reports as its own: cell's
--                     server_mean_ms − the baseline's (or, if the baseline reports none, its
--                     whole mean total, which then stands in for the model's time: an estimate)
--   summary           one sentence, e.g. "bedrock adds 729 ms (+41%) over anthropic, of which
--                     +700 ms server-side"
CREATE VIEW budget_delta AS
SELECT p.run_id, p.axis, p.baseline_cell, p.cell, p.baseline_value, p.value,
       b.n AS n_baseline, c.n,
       c.connect_mean_ms - b.connect_mean_ms AS connect_delta_ms,
       c.headers_mean_ms - b.headers_mean_ms AS headers_delta_ms,
       c.first_token_mean_ms - b.first_token_mean_ms AS first_token_delta_ms,
       c.generation_mean_ms - b.generation_mean_ms AS generation_delta_ms,
       c.tail_mean_ms - b.tail_mean_ms AS tail_delta_ms,
       c.total_mean_ms - b.total_mean_ms AS total_delta_ms,
       100 * (c.total_mean_ms - b.total_mean_ms) / nullif(b.total_mean_ms, 0)
           AS total_delta_pct,
       c.total_p50_ms - b.total_p50_ms AS total_p50_delta_ms,
       c.server_mean_ms - coalesce(b.server_mean_ms, b.total_mean_ms) AS server_delta_ms,
       format('{} {} {:.0f} ms ({:+.0f}%) over {}{}',
              p.value,
              CASE WHEN c.total_mean_ms >= b.total_mean_ms THEN 'adds' ELSE 'saves' END,
              abs(c.total_mean_ms - b.total_mean_ms),
              100 * (c.total_mean_ms - b.total_mean_ms) / nullif(b.total_mean_ms, 0),
              p.baseline_value,
              CASE WHEN c.server_mean_ms IS NULL THEN ''
                   ELSE format(', of which {:+.0f} ms server-side',
                               c.server_mean_ms - coalesce(b.server_mean_ms, b.total_mean_ms))
              END) AS summary
FROM cell_pairs AS p
JOIN budget AS b ON b.run_id = p.run_id AND b.cell = p.baseline_cell
JOIN budget AS c ON c.run_id = p.run_id AND c.cell = p.cell;
