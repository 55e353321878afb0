-- spans: every span of the selected runs (agent sessions: session → turn → model_call →
-- http_call, and tool_call). open_results sets latlab_span_files to the selected runs'
-- <results_dir>/spans/<run_id>/*.parquet; with none it creates an empty table `spans`
-- (runner.spans.SPANS_SCHEMA) instead. As for requests, the union with the empty table
-- latlab_spans_columns makes every current column exist (NULL in older files).
-- A model_call span's span_id is requests.span_id. Columns: docs/columns.md.
CREATE VIEW spans AS
SELECT * FROM latlab_rows(getvariable('latlab_span_files'))
UNION ALL BY NAME
SELECT * FROM latlab_spans_columns;
