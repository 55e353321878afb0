-- cell_axes: one row per (run_id, cell, axis): a cell name is
-- provider/model/prompt/guardrail/stream|block[/key=value…] (runner/engine/plan.py), so its
-- segments are the matrix axes. axis_index is 1-based; extra axes are named by their key.
-- cell_axes_of(cells_table): the same for the (run_id, cell) of any table or view.
CREATE MACRO cell_axes_of(cells_table) AS TABLE
SELECT run_id, cell, axis_index,
       CASE axis_index
           WHEN 1 THEN 'provider' WHEN 2 THEN 'model' WHEN 3 THEN 'prompt'
           WHEN 4 THEN 'guardrail' WHEN 5 THEN 'stream'
           ELSE split_part(value, '=', 1)
       END AS axis,
       value
FROM (
    SELECT run_id, cell,
           generate_subscripts(string_split(cell, '/'), 1) AS axis_index,
           unnest(string_split(cell, '/')) AS value
    FROM (SELECT DISTINCT run_id, cell FROM query_table(cells_table))
);

CREATE VIEW cell_axes AS FROM cell_axes_of('measured');

-- Which side of a pair is the baseline: the direct API, no guardrail, streaming, else the
-- value that sorts first.
CREATE MACRO baseline_rank(value) AS
    CASE WHEN value IN ('anthropic', 'none', 'stream') THEN 0 ELSE 1 END;

-- cell_pairs: every two cells of the same run whose names differ in exactly one axis.
-- Columns: run_id, axis (provider, model, prompt, guardrail, stream or an extra axis key),
-- baseline_cell, cell, baseline_value, value. One row per pair, baseline chosen by
-- baseline_rank then by name.
-- cell_pairs_of(cells_table): the same among the cells of any table or view.
CREATE MACRO cell_pairs_of(cells_table) AS TABLE
WITH cell_axes AS (FROM cell_axes_of(cells_table)),
sizes AS (
    SELECT run_id, cell, count(*) AS axes FROM cell_axes GROUP BY run_id, cell
),
diff AS (
    SELECT a.run_id, a.cell AS baseline_cell, b.cell,
           count(*) AS shared_axes,
           count(*) FILTER (WHERE a.value <> b.value) AS n_diff,
           any_value(a.axis) FILTER (WHERE a.value <> b.value) AS axis,
           any_value(a.value) FILTER (WHERE a.value <> b.value) AS baseline_value,
           any_value(b.value) FILTER (WHERE a.value <> b.value) AS value
    FROM cell_axes AS a
    JOIN cell_axes AS b
      ON a.run_id = b.run_id AND a.axis_index = b.axis_index AND a.cell <> b.cell
    GROUP BY a.run_id, a.cell, b.cell
)
SELECT d.run_id, d.axis, d.baseline_cell, d.cell, d.baseline_value, d.value
FROM diff AS d
JOIN sizes AS sa ON sa.run_id = d.run_id AND sa.cell = d.baseline_cell
JOIN sizes AS sb ON sb.run_id = d.run_id AND sb.cell = d.cell
WHERE d.n_diff = 1 AND sa.axes = d.shared_axes AND sb.axes = d.shared_axes
  AND (baseline_rank(d.baseline_value), d.baseline_value)
      < (baseline_rank(d.value), d.value);

CREATE VIEW cell_pairs AS FROM cell_pairs_of('measured');
