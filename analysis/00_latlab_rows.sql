-- latlab_rows(files): the rows of a source's Parquet files (union_by_name: older files may lack
-- newer columns), of the selected runs only. A compacted day file (runner/results/layout.py)
-- holds a whole UTC day of runs: when the selection takes only some of them, open_results
-- sets latlab_run_filter and fills latlab_selected_runs, and the rows are filtered by run id.
-- Otherwise the filtering branch is pruned when the query is planned (it costs nothing).
CREATE MACRO latlab_rows(files) AS TABLE
SELECT * FROM read_parquet(files, union_by_name = true)
WHERE NOT getvariable('latlab_run_filter')
UNION ALL BY NAME
SELECT * FROM read_parquet(files, union_by_name = true)
WHERE getvariable('latlab_run_filter') AND run_id IN (SELECT run_id FROM latlab_selected_runs);
