-- runs: one row per selected run (config, host, status, start and end times).
-- open_results sets latlab_run_files to the selected runs' <results_dir>/runs/<run_id>.parquet.
-- If there are none, it skips this file and creates an empty table `runs` (RUNS_SCHEMA).
CREATE VIEW runs AS
SELECT * FROM latlab_rows(getvariable('latlab_run_files'))
UNION ALL BY NAME
SELECT * FROM latlab_runs_columns;  -- every current column, NULL in older records
