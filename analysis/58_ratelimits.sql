-- Rate-limit headroom from the response headers (columns ratelimit_*; providers/ratelimits.py).

-- ratelimit_samples: one row per (request, limit) whose response reported that limit.
CREATE VIEW ratelimit_samples AS
SELECT * FROM (
    SELECT run_id, cell, provider, model, started_at, error_type, 'requests' AS limit_name,
           ratelimit_requests_limit AS limit_value,
           ratelimit_requests_remaining AS remaining FROM requests WHERE NOT warmup
    UNION ALL
    SELECT run_id, cell, provider, model, started_at, error_type, 'input_tokens',
           ratelimit_input_tokens_limit, ratelimit_input_tokens_remaining
    FROM requests WHERE NOT warmup
    UNION ALL
    SELECT run_id, cell, provider, model, started_at, error_type, 'output_tokens',
           ratelimit_output_tokens_limit, ratelimit_output_tokens_remaining
    FROM requests WHERE NOT warmup
    UNION ALL
    SELECT run_id, cell, provider, model, started_at, error_type, 'tokens',
           ratelimit_tokens_limit, ratelimit_tokens_remaining
    FROM requests WHERE NOT warmup
)
WHERE limit_value IS NOT NULL;

-- ratelimit_cells: per (run, cell): the requests refused for the rate limit (error_type
-- rate_limited: HTTP 429, Bedrock's ThrottlingException, Vertex's RESOURCE_EXHAUSTED) and their
-- share, and the limit with the least headroom any response reported (peak_limit,
-- peak_headroom = least remaining / limit; NULL where no response reported a limit, as on
-- Bedrock and Vertex).
CREATE VIEW ratelimit_cells AS
WITH refused AS (
    SELECT run_id, cell, count(*) AS n,
           count(*) FILTER (WHERE error_type = 'rate_limited') AS rate_limited,
           avg((error_type IS NOT DISTINCT FROM 'rate_limited')::INT) AS rate_limited_share
    FROM requests
    WHERE NOT warmup
    GROUP BY run_id, cell
),
per_limit AS (
    SELECT run_id, cell, limit_name, min(remaining / nullif(limit_value, 0)) AS headroom
    FROM ratelimit_samples
    GROUP BY run_id, cell, limit_name
),
tightest AS (
    SELECT run_id, cell, first(limit_name ORDER BY headroom, limit_name) AS peak_limit,
           min(headroom) AS peak_headroom
    FROM per_limit
    GROUP BY run_id, cell
)
SELECT r.*, t.peak_limit, t.peak_headroom
FROM refused AS r LEFT JOIN tightest AS t USING (run_id, cell);

-- ratelimit_headroom: per (run, cell, limit): the least remaining / limit any response of
-- the run reported (headroom: 1 = untouched, 0 = exhausted), and the share of the cell's
-- requests that were refused for the rate limit (rate_limited_share, from ratelimit_cells).
CREATE VIEW ratelimit_headroom AS
SELECT s.run_id, s.cell, any_value(s.provider) AS provider, any_value(s.model) AS model,
       s.limit_name, max(s.limit_value) AS limit_value, min(s.remaining) AS min_remaining,
       min(s.remaining / nullif(s.limit_value, 0)) AS headroom,
       any_value(r.rate_limited_share) AS rate_limited_share
FROM ratelimit_samples AS s
JOIN ratelimit_cells AS r USING (run_id, cell)
GROUP BY s.run_id, s.cell, s.limit_name;
