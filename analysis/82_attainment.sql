-- slo_attainment: per (monitor, cell, objective) over the budget period (the runs whose last
-- request started within budget_s): requests n, the good share (attainment) and the error
-- budget left (1 = untouched, 0 = spent, < 0 = overspent). Reads only slo_counts: the view of
-- analysis/80_burn_rates.sql, or in `latlab monitor` a table of the counts it has read
-- (analysis/probes.py AttainmentCache), so both use this one definition.
CREATE VIEW slo_attainment AS
SELECT monitor_id, cell, objective, any_value(target) AS target, sum(n) AS n,
       1 - sum(bad) / sum(n) AS attainment,
       1 - sum(bad) / sum(n) / (1 - any_value(target)) AS budget_remaining
FROM slo_counts
WHERE last_at >= now() - to_seconds(budget_s)
GROUP BY monitor_id, cell, objective;
