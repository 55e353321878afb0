-- advice: rules over the measured views that turn findings into advice, each row naming the
-- evidence (run, cell, figures) that triggered it. Columns: rule, run_id, cell, advice,
-- evidence. Thresholds below; "high TTFT" means above the SLO's grade-A TTFT P50.
--   prompt_caching  mean input tokens >= 1024, no cache reads, TTFT p50 above grade A
--   smaller_model   an Opus model whose mean output is <= 300 tokens (a short task)
--   route_direct    provider_overhead: an indirect provider adds >= 50 % to TTFT p50
--   reuse_clients   at least half the requests opened a connection costing >= 20 ms
--   stream          a non-streamed cell whose total p50 is above grade A's TTFT P50
--   raise_timeout   requests that timed out
--   rate_limits     requests refused for the rate limit, or a limit the responses reported
--                   with < 10 % left at its lowest (ratelimit_cells, 58_ratelimits.sql)
CREATE VIEW advice AS
WITH a AS (SELECT * FROM slo_thresholds WHERE grade = 'A'),
tokens AS (
    SELECT run_id, cell, avg(input_tokens) AS input_mean, avg(output_tokens) AS output_mean,
           sum(coalesce(cache_read_tokens, 0)) AS cache_reads
    FROM measured_ok GROUP BY run_id, cell
),
caching AS (
    SELECT 'prompt_caching' AS rule, c.run_id, c.cell,
           'cache the prompt prefix (prompt caching): a long prompt is re-read on every call'
               AS advice,
           format('mean input {:.0f} tokens, 0 cache reads, TTFT p50 {:.0f} ms > {:.0f} ms',
                  t.input_mean, c.ttft_p50_ms, a.ttft_p50_ms) AS evidence
    FROM cell_summary c JOIN tokens t USING (run_id, cell), a
    WHERE t.input_mean >= 1024 AND t.cache_reads = 0 AND c.ttft_p50_ms > a.ttft_p50_ms
),
smaller AS (
    SELECT 'smaller_model' AS rule, c.run_id, c.cell,
           'use a smaller model (Sonnet or Haiku) for short tasks' AS advice,
           format('mean output {:.0f} tokens, total p50 {:.0f} ms{}', t.output_mean,
                  c.total_p50_ms,
                  coalesce((SELECT format('; {} in this run: {:.0f} ms', arg_min(o.model, o.total_p50_ms),
                                          min(o.total_p50_ms))
                            FROM cell_pairs p JOIN cell_summary o ON o.run_id = p.run_id
                                 AND o.cell = CASE WHEN p.cell = c.cell THEN p.baseline_cell
                                                   ELSE p.cell END
                            WHERE p.run_id = c.run_id AND p.axis = 'model'
                              AND c.cell IN (p.cell, p.baseline_cell)
                              AND o.model NOT LIKE 'opus%'
                            HAVING count(*) > 0), '')) AS evidence
    FROM cell_summary c JOIN tokens t USING (run_id, cell)
    WHERE c.model LIKE 'opus%' AND t.output_mean <= 300
),
route AS (
    SELECT 'route_direct' AS rule, o.run_id, o.cell,
           format('route latency-sensitive {} calls to the direct API (or another region): '
                  '{} overhead dominates', o.model, o.provider) AS advice,
           format('TTFT p50 +{:.0f} ms (+{:.0f}%) over the direct API; the provider reports '
                  '{:.0f}% of the client''s time', o.ttft_p50_delta_ms, o.ttft_p50_delta_pct,
                  100 * coalesce(o.server_share, 0)) AS evidence
    FROM provider_overhead o
    WHERE o.ttft_p50_delta_pct >= 50
),
reuse AS (
    SELECT 'reuse_clients' AS rule, b.run_id, b.cell,
           'reuse one HTTP client (keep-alive pool) instead of a connection per request'
               AS advice,
           format('{} of {} requests opened a connection, {:.0f} ms each ({:.0f}% of the '
                  'mean total)', b.new_connections, b.n, b.connect_new_mean_ms,
                  100 * b.connect_mean_ms / b.total_mean_ms) AS evidence
    FROM budget b
    WHERE b.new_connections >= 0.5 * b.n AND b.connect_new_mean_ms >= 20
),
stream AS (
    SELECT 'stream' AS rule, c.run_id, c.cell,
           'stream user-facing calls: without streaming the user waits for the whole answer'
               AS advice,
           format('not streamed: first token = total, p50 {:.0f} ms > {:.0f} ms{}',
                  c.total_p50_ms, a.ttft_p50_ms,
                  coalesce((SELECT format('; streamed in this run: TTFT p50 {:.0f} ms',
                                          any_value(s.ttft_p50_ms))
                            FROM cell_pairs p JOIN cell_summary s ON s.run_id = p.run_id
                                 AND s.cell = p.baseline_cell
                            WHERE p.run_id = c.run_id AND p.axis = 'stream' AND p.cell = c.cell
                            HAVING count(*) > 0), '')) AS evidence
    FROM cell_summary c, a
    WHERE NOT c.stream AND c.total_p50_ms > a.ttft_p50_ms
),
timeouts AS (
    SELECT 'raise_timeout' AS rule, run_id, cell,
           'raise the client timeout (workload.timeout_s) or shorten the output (max_tokens)'
               AS advice,
           format('{} of {} requests timed out', count(*) FILTER (WHERE error_type = 'timeout'),
                  count(*))
           || coalesce(format(' (after up to {:.0f} ms)',
                              max(total_ms) FILTER (WHERE error_type = 'timeout')), '')
               AS evidence
    FROM measured
    GROUP BY run_id, cell
    HAVING count(*) FILTER (WHERE error_type = 'timeout') > 0
),
limited AS (
    SELECT *, replace(peak_limit, '_', ' ') || ' per minute' AS peak_label
    FROM ratelimit_cells
    WHERE rate_limited > 0 OR peak_headroom < 0.1
),
rate AS (
    SELECT 'rate_limits' AS rule, run_id, cell,
           CASE WHEN rate_limited = 0
                THEN format('close to the {} limit at peak: spread the traffic over time or '
                            'raise the limit before the load grows', peak_label)
                WHEN peak_limit IS NULL
                THEN 'lower the concurrency or spread the traffic over time, or ask the '
                     'provider for a higher quota (it reports no remaining quota to watch)'
                ELSE format('lower the concurrency or spread the traffic over time (or over '
                            'more keys), or raise the {} limit', peak_label) END AS advice,
           CASE WHEN rate_limited = 0 THEN 'no request rate-limited'
                ELSE format('rate-limited {:.0f} % of requests ({} of {})',
                            100 * rate_limited_share, rate_limited, n) END
           || coalesce(format('; headroom {:.0f} % at peak ({})', 100 * peak_headroom,
                              peak_label), '') AS evidence
    FROM limited
)
SELECT * FROM caching UNION ALL SELECT * FROM smaller UNION ALL SELECT * FROM route
UNION ALL SELECT * FROM reuse UNION ALL SELECT * FROM stream UNION ALL SELECT * FROM timeouts
UNION ALL SELECT * FROM rate;
