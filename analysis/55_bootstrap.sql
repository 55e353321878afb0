-- Bootstrap confidence intervals of median differences, for `latlab compare`.
--
-- The law (analysis/bootstrap.py says why it is exact): a bootstrap resample's median is
-- the mean of the sorted sample's values at positions ceil(n·U₍m₎) and ceil(n·U₍m'₎), with
-- U₍m₎ the m-th smallest of n uniforms, m = (n + 1) // 2, m' = m (odd n) or m + 1 (even n).
-- For n <= 48 the n uniforms are drawn and sorted; above, U₍m₎ ~ Beta(m, n − m + 1) comes
-- from its normal approximation and U₍m+1₎ = U₍m₎ + (1 − U₍m₎)·Beta(1, n − m) by inversion.
-- Each replicate costs a few hashes, not n draws; and since every drawn position lies near
-- the middle, only a band of sorted values around each median is needed: the one kept in
-- metric summaries (analysis/52_summaries.sql), else the whole group.
--
-- Inputs, filled by `latlab compare` (analysis/compare.py):
--   bootstrap_groups  one row per group of values: g (an id), run_id, cell, metric (a column
--                     of measured_ok), n (its non-NULL values), below (how many of its
--                     sorted values lie before band) and band (sorted values: positions
--                     below + 1 … below + len(band))
--   bootstrap_pairs   one row per comparison: pair (an id), baseline_g and g (groups)
--   variables latlab_bootstrap_seed (an integer) and latlab_bootstrap_replicates
CREATE TABLE bootstrap_groups (g BIGINT, run_id VARCHAR, cell VARCHAR, metric VARCHAR,
                               n BIGINT, below BIGINT, band DOUBLE[]);
CREATE TABLE bootstrap_pairs (pair BIGINT, baseline_g BIGINT, g BIGINT);

-- bootstrap_uniform(x): a number in (0, 1) from the integer x, by hashing it: the same seed
-- gives the same draws whatever the threads.
CREATE MACRO bootstrap_uniform(x) AS ((hash(x) >> 11)::DOUBLE + 0.5) / 9007199254740992;

-- bootstrap_position(n, u): the 1-based sorted position ceil(n·u), within 1 … n.
CREATE MACRO bootstrap_position(n, u) AS least(greatest(ceil(n * u), 1), n)::BIGINT;

-- bootstrap_positions: per group g, k1s and k2s: for replicate r (list index r), the two
-- positions k1 <= k2 (1-based, in the group's sorted values) whose mean value is that
-- replicate's median (k1 = k2 for odd n); k_lo, k_hi their range. Replicate r hashes
-- base = seed + 64·(r − 1) + 0, 1, 2 (n > 48) or + 1 … n (n <= 48).
CREATE VIEW bootstrap_positions AS
WITH s AS MATERIALIZED (
    SELECT g, n, m, m / (n + 1) AS mu, sqrt(m * (n - m + 1) / ((n + 1) ^ 2 * (n + 2))) AS sd,
           1 / (n - m) AS inv, (hash(getvariable('latlab_bootstrap_seed'), run_id, cell, metric)
                                >> 24) << 24 AS seed,
           range(getvariable('latlab_bootstrap_replicates')) AS rs
    FROM (SELECT *, (n + 1) // 2 AS m FROM bootstrap_groups WHERE n > 0)
),
large AS (  -- U(m) from its normal law; U(m+1) = U(m) + (1 − U(m))·(1 − V^(1/(n − m)))
    SELECT g, n, u1s,
           CASE WHEN n % 2 = 1 THEN u1s
                ELSE list_transform(rs, lambda r: u1s[r + 1] + (1 - u1s[r + 1])
                                    * (1 - bootstrap_uniform(seed + (64 * r + 2)::UBIGINT) ^ inv))
           END AS u2s
    FROM (SELECT *, list_transform(rs, lambda r: least(greatest(
                        mu + sd * sqrt(-2 * ln(bootstrap_uniform(seed + (64 * r)::UBIGINT)))
                        * cos(2 * pi() * bootstrap_uniform(seed + (64 * r + 1)::UBIGINT)),
                        0), 1)) AS u1s
          FROM s WHERE n > 48)
),
small AS (  -- the n uniforms of each replicate, sorted
    SELECT g, n, list(u[m] ORDER BY r) AS u1s,
           list(u[CASE WHEN n % 2 = 1 THEN m ELSE m + 1 END] ORDER BY r) AS u2s
    FROM (SELECT g, n, m, r, list_sort(list_transform(
                     range(1, n + 1), lambda j: bootstrap_uniform(seed + (64 * r + j)::UBIGINT)))
                     AS u
          FROM (SELECT *, unnest(rs) AS r FROM s WHERE n <= 48))
    GROUP BY g, n
)
SELECT g, n, k1s, k2s, list_min(k1s) AS k_lo, list_max(k2s) AS k_hi
FROM (SELECT g, n, list_transform(u1s, lambda u: bootstrap_position(n, u)) AS k1s,
             list_transform(u2s, lambda u: bootstrap_position(n, u)) AS k2s
      FROM (SELECT * FROM large UNION ALL SELECT * FROM small));

-- bootstrap_medians: per group g, medians: the replicates' resample medians (list index r:
-- the mean of the band's values at k1 and k2), and covered: whether the band holds every
-- drawn position (else compare reads the whole group and asks again).
CREATE VIEW bootstrap_medians AS
SELECT g, covered,
       list_transform(list_zip(list_select(band, list_transform(k1s, lambda k: k - below)),
                               list_select(band, list_transform(k2s, lambda k: k - below))),
                      lambda p: (p[1] + p[2]) / 2) AS medians
FROM (SELECT p.g, p.k1s, p.k2s, b.below, b.band,
             b.below + 1 <= p.k_lo AND b.below + len(b.band) >= p.k_hi AS covered
      FROM bootstrap_positions AS p JOIN bootstrap_groups AS b USING (g));

-- bootstrap_intervals: per pair, the 95 % percentile interval of (median − baseline's
-- median) over paired replicates (quantile_cont: linear interpolation), and covered.
CREATE VIEW bootstrap_intervals AS
WITH m AS MATERIALIZED (SELECT * FROM bootstrap_medians)
SELECT pair, ci[1] AS ci_low, ci[2] AS ci_high, covered
FROM (
    SELECT pr.pair, b.covered AND o.covered AS covered,
           list_aggregate(list_transform(list_zip(o.medians, b.medians),
                                         lambda d: d[1] - d[2]),
                          'quantile_cont', [0.025, 0.975]) AS ci
    FROM bootstrap_pairs AS pr
    JOIN m AS b ON b.g = pr.baseline_g
    JOIN m AS o ON o.g = pr.g
);
