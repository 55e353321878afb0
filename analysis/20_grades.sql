-- grades: one row per (run_id, cell): each SLO metric's value and grade, and the
-- overall grade = the worst metric grade.
-- Needs the table slo_thresholds(grade, rank, ttft_p50_ms, ttft_p99_ms, output_tps_mean,
-- error_rate), created by analysis/query.py::open_results from the SLO config (rank 1 =
-- A = strictest). A metric's grade is the best grade whose threshold it meets
-- (ttft_p50_ms, ttft_p99_ms, error_rate: value <= threshold; output_tps_mean: value >=
-- threshold); it is F if it meets none, or if its value is NULL because the cell has no
-- successful request. A NULL value in a cell with successes (not measurable, e.g.
-- output_tps of a non-streaming cell) gets no grade and is left out of the overall grade.

-- Grade letters by rank, F one past the loosest grade.
CREATE VIEW slo_grades AS
SELECT grade, rank FROM slo_thresholds
UNION ALL
SELECT 'F', coalesce(max(rank), 0) + 1 FROM slo_thresholds;

-- rank of a metric: the best matching threshold rank, else F (or NULL: not measurable).
CREATE MACRO slo_rank(matched_rank, value, ok) AS
    CASE
        WHEN matched_rank IS NOT NULL THEN matched_rank
        WHEN value IS NULL AND ok > 0 THEN NULL
        ELSE (SELECT max(rank) FROM slo_grades)
    END;

CREATE MACRO slo_letter(r) AS (SELECT grade FROM slo_grades WHERE rank = r);

CREATE VIEW grades AS
WITH c AS MATERIALIZED (
    -- the columns of `cells` a grade needs, from its parts (analysis/10_cells.sql)
    SELECT run_id, cell, provider, api, model, model_id, prompt, guardrail, stream,
           concurrency, n, ok, errors, error_rate, ttft_p50_ms, ttft_p99_ms, output_tps_mean
    FROM cell_summary
),
matched AS (
    SELECT c.run_id, c.cell,
           min(t.rank) FILTER (WHERE c.ttft_p50_ms <= t.ttft_p50_ms) AS ttft_p50_match,
           min(t.rank) FILTER (WHERE c.ttft_p99_ms <= t.ttft_p99_ms) AS ttft_p99_match,
           min(t.rank) FILTER (WHERE c.output_tps_mean >= t.output_tps_mean) AS output_tps_match,
           min(t.rank) FILTER (WHERE c.error_rate <= t.error_rate) AS error_rate_match
    FROM c
    CROSS JOIN slo_thresholds AS t
    GROUP BY c.run_id, c.cell
),
ranked AS (
    SELECT c.run_id, c.cell, c.provider, c.api, c.model, c.prompt, c.guardrail, c.stream,
           c.concurrency, c.n, c.ok, c.errors,
           c.ttft_p50_ms,
           slo_rank(m.ttft_p50_match, c.ttft_p50_ms, c.ok) AS ttft_p50_rank,
           c.ttft_p99_ms,
           slo_rank(m.ttft_p99_match, c.ttft_p99_ms, c.ok) AS ttft_p99_rank,
           c.output_tps_mean,
           slo_rank(m.output_tps_match, c.output_tps_mean, c.ok) AS output_tps_mean_rank,
           c.error_rate,
           slo_rank(m.error_rate_match, c.error_rate, c.ok) AS error_rate_rank
    FROM c
    LEFT JOIN matched AS m USING (run_id, cell)
)
SELECT run_id, cell, provider, api, model, prompt, guardrail, stream, concurrency,
       n, ok, errors,
       slo_letter(greatest(ttft_p50_rank, ttft_p99_rank, output_tps_mean_rank,
                           error_rate_rank)) AS grade,
       ttft_p50_ms, slo_letter(ttft_p50_rank) AS ttft_p50_grade,
       ttft_p99_ms, slo_letter(ttft_p99_rank) AS ttft_p99_grade,
       output_tps_mean, slo_letter(output_tps_mean_rank) AS output_tps_mean_grade,
       error_rate, slo_letter(error_rate_rank) AS error_rate_grade
FROM ranked;
