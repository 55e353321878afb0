-- Monitoring views (latlab monitor, latlab alerts): SLO events, burn rates, attainment.
-- Needs the tables slo_objectives(objective, threshold_ms, target, budget_s) and
-- burn_windows(alert, severity, long_s, short_s, factor), created by analysis/objectives.py
-- from the SLO's `objectives` and `burn_alerts` (windows already multiplied by window_scale).

-- monitor_requests: each measured request (warm-up left out) with its run's monitor and round.
CREATE VIEW monitor_requests AS
SELECT q.*, r.monitor_id, r.monitor_round
FROM requests AS q
LEFT JOIN runs AS r USING (run_id)
WHERE NOT q.warmup;

-- slo_events: one row per (request, objective) it counts for, bad = it spent error budget.
-- errors: every request; bad when it failed. ttft: successful requests with a TTFT; bad
-- when TTFT > threshold_ms (a failure counts against `errors` only).
CREATE VIEW slo_events AS
SELECT m.monitor_id, m.run_id, m.cell, m.provider, m.model, m.prompt, m.guardrail,
       m.started_at, m.request_id, o.objective, o.target, o.budget_s,
       CASE WHEN o.objective = 'errors' THEN m.error_type IS NOT NULL
            ELSE m.ttft_ms > o.threshold_ms END AS bad
FROM monitor_requests AS m
CROSS JOIN slo_objectives AS o
WHERE o.objective = 'errors' OR (m.error_type IS NULL AND m.ttft_ms IS NOT NULL);

-- burn_rates: per (monitor, cell, objective, alert): the bad share of each window divided
-- by the budgeted bad share (1 - target); firing when both windows burn faster than factor
-- (Google SRE workbook, multi-window multi-burn-rate). A window without requests burns NULL.
CREATE VIEW burn_rates AS
WITH e AS (
    SELECT *, now() AS at FROM slo_events
    WHERE started_at >= now() - to_seconds((SELECT max(long_s) FROM burn_windows))
),
counted AS (
    SELECT e.monitor_id, e.cell, e.objective, w.alert, w.severity, w.factor, w.long_s,
           w.short_s, any_value(e.target) AS target, any_value(e.provider) AS provider,
           any_value(e.model) AS model, any_value(e.prompt) AS prompt,
           any_value(e.guardrail) AS guardrail,
           count(*) FILTER (WHERE e.started_at >= e.at - to_seconds(w.long_s)) AS long_n,
           count(*) FILTER (WHERE e.bad AND e.started_at >= e.at - to_seconds(w.long_s))
               AS long_bad,
           count(*) FILTER (WHERE e.started_at >= e.at - to_seconds(w.short_s)) AS short_n,
           count(*) FILTER (WHERE e.bad AND e.started_at >= e.at - to_seconds(w.short_s))
               AS short_bad
    FROM e
    CROSS JOIN burn_windows AS w
    GROUP BY e.monitor_id, e.cell, e.objective, w.alert, w.severity, w.factor, w.long_s,
             w.short_s
),
rated AS (
    SELECT *, long_bad / nullif(long_n, 0) / (1 - target) AS long_burn,
           short_bad / nullif(short_n, 0) / (1 - target) AS short_burn
    FROM counted
)
SELECT monitor_id, alert, severity, cell, provider, model, prompt, guardrail, objective,
       target, factor, long_s, long_n, long_bad, long_burn, short_s, short_n, short_bad,
       short_burn, coalesce(long_burn > factor AND short_burn > factor, false) AS firing
FROM rated;

-- slo_counts: per (monitor, run, cell, objective): requests and bad ones, and when the run's
-- last one started. `slo_attainment` (analysis/82_attainment.sql) sums them over the budget
-- period; `latlab monitor` keeps them from round to round instead of reading 30 days again.
CREATE VIEW slo_counts AS
SELECT monitor_id, run_id, cell, objective, any_value(target) AS target,
       any_value(budget_s) AS budget_s, max(started_at) AS last_at, count(*) AS n,
       count(*) FILTER (WHERE bad) AS bad
FROM slo_events
GROUP BY monitor_id, run_id, cell, objective;

-- probe_observations: what `latlab monitor` exports per request of a round (histograms,
-- error counter, exemplars).
CREATE VIEW probe_observations AS
SELECT run_id, cell, provider, model, prompt, guardrail, ttfb_ms, ttft_ms, total_ms,
       output_tps, coalesce(error_type, 'none') AS error_type, request_id
FROM requests
WHERE NOT warmup;

-- monitor_rounds: per monitor, its last round number, how many runs and when it last ran
-- (a restarted monitor continues after last_round), and its latest run's config (its SLO is
-- what `latlab alerts` evaluates by default).
CREATE VIEW monitor_rounds AS
SELECT monitor_id, max(monitor_round) AS last_round, count(*) AS runs,
       max(started_at) AS last_started, arg_max(config_yaml, started_at) AS config_yaml
FROM runs
WHERE monitor_id IS NOT NULL
GROUP BY monitor_id;
