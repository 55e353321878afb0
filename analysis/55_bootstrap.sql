-- Bootstrap confidence intervals of median differences, for `latlab compare`.
--
-- The law (analysis/bootstrap.py says why it is exact): a bootstrap resample's median is
-- the mean of the sorted sample's values at positions ceil(n·U₍m₎) and ceil(n·U₍m'₎), with
-- U₍m₎ the m-th smallest of n uniforms, m = (n + 1) // 2, m' = m (odd n) or m + 1 (even n).
-- For n <= 48 the n uniforms are drawn and sorted; above, U₍m₎ ~ Beta(m, n − m + 1) comes
-- from its normal approximation and U₍m+1₎ = U₍m₎ + (1 − U₍m₎)·Beta(1, n − m) by inversion.
-- Each replicate costs a few hashes, not n draws; and since every drawn position lies near
-- the middle, only a band of values around each median is read and sorted, not the group.
--
-- Inputs, filled by `latlab compare` (analysis/compare.py):
--   bootstrap_values  one row per group of values: g (an id), run_id, cell, metric, xs (the
--                     values, metric_values)
--   bootstrap_groups  the groups compared: g, n, p50, stddev (metric_stats_of(xs)) and
--                     widen, the band's width factor (NULL: the whole group)
--   bootstrap_pairs   one row per comparison: pair (an id), baseline_g and g (groups)
--   variables latlab_bootstrap_seed (an integer) and latlab_bootstrap_replicates
CREATE TABLE bootstrap_values (g BIGINT, run_id VARCHAR, cell VARCHAR, metric VARCHAR,
                               xs DOUBLE[]);
CREATE TABLE bootstrap_groups (g BIGINT, n BIGINT, p50 DOUBLE, stddev DOUBLE, widen DOUBLE);
CREATE TABLE bootstrap_pairs (pair BIGINT, baseline_g BIGINT, g BIGINT);

-- bootstrap_uniform(x): a number in (0, 1) from the integer x, by hashing it: the same seed
-- gives the same draws whatever the threads.
CREATE MACRO bootstrap_uniform(x) AS ((hash(x) >> 11)::DOUBLE + 0.5) / 9007199254740992;

-- bootstrap_position(n, u): the 1-based sorted position ceil(n·u), within 1 … n.
CREATE MACRO bootstrap_position(n, u) AS least(greatest(ceil(n * u), 1), n)::BIGINT;

-- bootstrap_positions: per group g and replicate r (0 … replicates − 1), the two positions
-- k1 <= k2 (1-based, in the group's sorted values) whose mean value is that replicate's
-- median (k1 = k2 for odd n). Replicate r of a group hashes base = seed + 64·r + 0, 1, 2
-- (n > 48) or + 1 … n (n <= 48).
CREATE VIEW bootstrap_positions AS
WITH s AS MATERIALIZED (
    SELECT g, n, (n + 1) // 2 AS m,
           (hash(getvariable('latlab_bootstrap_seed'), v.run_id, v.cell, v.metric) >> 24) << 24
               AS seed
    FROM bootstrap_groups JOIN (SELECT g, run_id, cell, metric FROM bootstrap_values) AS v
         USING (g)
    WHERE n > 0
),
d AS (
    SELECT g, n, m, r, seed + (64 * r)::UBIGINT AS base
    FROM s, range(getvariable('latlab_bootstrap_replicates')) AS t(r)
),
large AS (
    SELECT g, n, r, u1,
           CASE WHEN n % 2 = 1 THEN u1
                ELSE u1 + (1 - u1) * (1 - bootstrap_uniform(base + 2::UBIGINT) ^ (1 / (n - m)))
           END AS u2
    FROM (SELECT *, least(greatest(
                        m / (n + 1) + sqrt(m * (n - m + 1) / ((n + 1) ^ 2 * (n + 2)))
                        * sqrt(-2 * ln(bootstrap_uniform(base)))
                        * cos(2 * pi() * bootstrap_uniform(base + 1::UBIGINT)), 0), 1) AS u1
          FROM d WHERE n > 48)
),
small AS (
    SELECT g, n, r, u[m] AS u1, u[CASE WHEN n % 2 = 1 THEN m ELSE m + 1 END] AS u2
    FROM (SELECT *, list_sort(list_transform(range(1, n + 1),
                                             lambda j: bootstrap_uniform(base + j::UBIGINT))) AS u
          FROM d WHERE n <= 48)
)
SELECT g, r, bootstrap_position(n, u1) AS k1, bootstrap_position(n, u2) AS k2
FROM (SELECT * FROM large UNION ALL SELECT * FROM small);

-- bootstrap_medians: per group g and replicate r, the resample median, and covered: whether
-- the group's band held every drawn position (else compare widens it and asks again).
-- The band: the values within p50 ± 3·√(2π)·stddev·h/n, h = the farthest drawn position
-- from the middle (three times what a normal sample needs); the whole group when n <= 1000
-- or widen is NULL. below: the values under the band.
CREATE VIEW bootstrap_medians AS
WITH p AS MATERIALIZED (SELECT * FROM bootstrap_positions),
e AS (
    SELECT g, k_lo, k_hi, p50 - w AS lo, p50 + w AS hi
    FROM (SELECT *, CASE WHEN g.n > 1000 AND g.widen IS NOT NULL THEN
                     g.widen * 3 * sqrt(2 * pi()) * coalesce(g.stddev, 0)
                     * (greatest((g.n + 1) / 2 - k.k_lo, k.k_hi - (g.n + 1) / 2) + 1) / g.n
                 END AS w
          FROM bootstrap_groups AS g
          JOIN (SELECT g, min(k1) AS k_lo, max(k2) AS k_hi FROM p GROUP BY g) AS k USING (g))
),
bands AS (
    SELECT g, below, band, below + 1 <= k_lo AND below + len(band) >= k_hi AS covered
    FROM (SELECT e.g, e.k_lo, e.k_hi, len(list_filter(v.xs, lambda x: x < e.lo)) AS below,
                 list_sort(list_filter(v.xs, lambda x: (e.lo IS NULL OR x >= e.lo)
                                                       AND (e.hi IS NULL OR x <= e.hi))) AS band
          FROM e JOIN bootstrap_values AS v USING (g))
),
v AS (  -- the band's values with their positions
    SELECT g, below + generate_subscripts(band, 1) AS k, unnest(band) AS value FROM bands
)
SELECT p.g, p.r, (a.value + b.value) / 2 AS median, c.covered
FROM p
JOIN bands AS c USING (g)
LEFT JOIN v AS a ON a.g = p.g AND a.k = p.k1
LEFT JOIN v AS b ON b.g = p.g AND b.k = p.k2;

-- bootstrap_intervals: per pair, the 95 % percentile interval of (median − baseline's
-- median) over paired replicates (quantile_cont: linear interpolation), and covered.
CREATE VIEW bootstrap_intervals AS
WITH m AS MATERIALIZED (SELECT * FROM bootstrap_medians)
SELECT pr.pair, ci[1] AS ci_low, ci[2] AS ci_high, covered
FROM (
    SELECT pr.pair, bool_and(b.covered AND o.covered) AS covered,
           quantile_cont(o.median - b.median, [0.025, 0.975]) AS ci
    FROM bootstrap_pairs AS pr
    JOIN m AS b ON b.g = pr.baseline_g
    JOIN m AS o ON o.g = pr.g AND o.r = b.r
    GROUP BY pr.pair
) AS pr;
