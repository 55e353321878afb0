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

-- ratelimit_headroom: per (run, cell, limit): the least remaining / limit any response of
-- the run reported (headroom: 1 = untouched, 0 = exhausted), and the share of the cell's
-- requests that were refused for the rate limit (rate_limited_share: HTTP 429).
CREATE VIEW ratelimit_headroom AS
WITH refused AS (
    SELECT run_id, cell,
           avg((error_type IS NOT DISTINCT FROM 'rate_limited')::INT) AS rate_limited_share
    FROM requests
    WHERE NOT warmup
    GROUP BY run_id, cell
)
SELECT s.run_id, s.cell, any_value(s.provider) AS provider, any_value(s.model) AS model,
       s.limit_name, max(s.limit_value) AS limit_value, min(s.remaining) AS min_remaining,
       min(s.remaining / nullif(s.limit_value, 0)) AS headroom,
       any_value(r.rate_limited_share) AS rate_limited_share
FROM ratelimit_samples AS s
JOIN refused AS r USING (run_id, cell)
GROUP BY s.run_id, s.cell, s.limit_name;
