-- runs: one row per selected run (config, host, status, start and end times).
-- open_results sets latlab_run_files to the selected runs' <results_dir>/runs/<run_id>.parquet.
-- If there are none, it skips this file and creates an empty table `runs` (RUNS_SCHEMA).
CREATE VIEW runs AS
SELECT * FROM read_parquet(getvariable('latlab_run_files'), union_by_name = true)
UNION ALL BY NAME
SELECT * FROM latlab_runs_columns;  -- every current column, NULL in older records
