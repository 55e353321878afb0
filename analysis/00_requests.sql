-- requests: every request row of the selected runs, warm-up rows included.
-- open_results sets latlab_request_files to the selected runs'
-- <results_dir>/requests/<run_id>/*.parquet and the compacted day files holding the others
-- (latlab_rows reads only the selected runs' rows of those). If there are none, it skips
-- this file and creates an empty table `requests` with REQUESTS_SCHEMA instead.
-- union_by_name: files written by older versions may lack newer columns; the union with
-- the empty table latlab_requests_columns (today's schema) makes every current column
-- exist, NULL in older rows, so every view reads results of any latlab version.
-- Columns: docs/columns.md.
CREATE VIEW requests AS
SELECT * FROM latlab_rows(getvariable('latlab_request_files'))
UNION ALL BY NAME
SELECT * FROM latlab_requests_columns;
