# One peer engine computing an example's aggregation of `delay` by `key` on a CSV or Parquet
# file and writing every result row to a CSV file:
#   peer.py ENGINE INPUT OUTPUT [THREADS] [reduce|top_k|robust_mean|histogram]
# `reduce` is reduce.naas (min, max, avg and count); `top_k` is top_k.naas (the 4 largest
# values, largest first; a key with fewer values has empty fields where naasc pads);
# `robust_mean` is robust_mean.naas (the mean of delay clamped to [-1000, 1000]); `histogram`
# is histogram.naas with `micros` bound to delay (8 counts: bucket b holds the values with b of
# the thresholds 16, 32, ..., 1024 at or below them).
import sys
engine, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
aggregate = sys.argv[5] if len(sys.argv) > 5 else "reduce"
K = 4
LIMIT = 1000
THRESHOLDS = [1 << (i + 4) for i in range(7)]
BUCKETS = len(THRESHOLDS) + 1
AGGREGATES = ("reduce", "top_k", "robust_mean", "histogram")
if aggregate not in AGGREGATES:
    sys.exit(f"unknown aggregate {aggregate}: one of {', '.join(AGGREGATES)}")
# The SQL engines' forms of robust_mean and histogram.
CLAMPED_MEAN = f"avg(greatest(-{LIMIT}, least({LIMIT}, delay)))"
BUCKET = " + ".join(f"CAST(delay >= {t} AS INTEGER)" for t in THRESHOLDS)
COUNTS = ", ".join(f"sum(CASE WHEN b = {j} THEN 1 ELSE 0 END)" for j in range(BUCKETS))


def sql(src, top_k):
    """The query over the table `src` in both SQL engines; `top_k` is the engine's own
    query for top_k.naas (the engines have no common top-n aggregate)."""
    if aggregate == "reduce":
        return f"SELECT key, min(delay), max(delay), avg(delay), count(*) FROM {src} GROUP BY key"
    if aggregate == "robust_mean":
        return f"SELECT key, {CLAMPED_MEAN} FROM {src} GROUP BY key"
    if aggregate == "histogram":
        return f"SELECT key, {COUNTS} FROM (SELECT key, {BUCKET} AS b FROM {src}) GROUP BY key"
    return top_k


if engine == "duckdb":
    import duckdb
    c = duckdb.connect(config={"threads": threads})
    src = f"read_parquet('{path}')" if path.endswith(".parquet") else f"read_csv('{path}', header=true, columns={{'key':'VARCHAR','delay':'INTEGER','x':'DOUBLE'}})"
    # DuckDB's max(x, n): the n largest values, largest first.
    picks = ", ".join(f"t[{i + 1}]" for i in range(K))
    query = sql(src, f"SELECT key, {picks} FROM (SELECT key, max(delay, {K}) AS t FROM {src} GROUP BY key)")
    c.execute(f"COPY ({query}) TO '{out}' (HEADER, DELIMITER ',')")
elif engine == "polars":
    import os
    os.environ["POLARS_MAX_THREADS"] = str(threads)
    import polars as pl
    lf = pl.scan_parquet(path) if path.endswith(".parquet") else pl.scan_csv(path, schema={"key": pl.Utf8, "delay": pl.Int32, "x": pl.Float64})
    if aggregate == "reduce":
        lf = lf.group_by("key").agg(pl.col("delay").min().alias("min"), pl.col("delay").max().alias("max"), pl.col("delay").mean().alias("avg"), pl.len().alias("count"))
    elif aggregate == "robust_mean":
        lf = lf.group_by("key").agg(pl.col("delay").clip(-LIMIT, LIMIT).mean().alias("robust_mean"))
    elif aggregate == "histogram":
        lf = lf.with_columns(sum((pl.col("delay") >= t).cast(pl.Int32) for t in THRESHOLDS).alias("b"))
        lf = lf.group_by("key").agg([(pl.col("b") == j).sum().alias(f"h{j}") for j in range(BUCKETS)])
    else:
        lf = lf.group_by("key").agg(pl.col("delay").top_k(K).sort(descending=True).alias("t"))
        lf = lf.with_columns([pl.col("t").list.get(i, null_on_oob=True).alias(f"t{i}") for i in range(K)]).drop("t")
    lf.sink_csv(out)
elif engine == "datafusion":
    from datafusion import SessionContext, SessionConfig
    ctx = SessionContext(SessionConfig().with_target_partitions(threads))
    if path.endswith(".parquet"):
        ctx.register_parquet("t", path)
    else:
        import pyarrow as pa
        ctx.register_csv("t", path, schema=pa.schema([("key", pa.string()), ("delay", pa.int32()), ("x", pa.float64())]))
    # DataFusion has no top-n aggregate: the values in order, then the first K.
    picks = ", ".join(f"a[{i + 1}]" for i in range(K))
    query = sql("t", f"SELECT key, {picks} FROM (SELECT key, array_agg(delay ORDER BY delay DESC) AS a FROM t GROUP BY key)")
    ctx.sql(query).write_csv(out, with_header=True)
else:
    sys.exit(f"unknown engine {engine}: duckdb, polars or datafusion")
