# One peer engine computing reduce.naas (min, max, avg, count of `delay` by `key`) on a CSV or
# Parquet file and writing every result row to a CSV file.
import sys
engine, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
if engine == "duckdb":
    import duckdb
    c = duckdb.connect(config={"threads": threads})
    src = f"read_parquet('{path}')" if path.endswith(".parquet") else f"read_csv('{path}', header=true, columns={{'key':'VARCHAR','delay':'INTEGER','x':'DOUBLE'}})"
    c.execute(f"COPY (SELECT key, min(delay), max(delay), avg(delay), count(*) FROM {src} GROUP BY key) TO '{out}' (HEADER, DELIMITER ',')")
elif engine == "polars":
    import os
    os.environ["POLARS_MAX_THREADS"] = str(threads)
    import polars as pl
    lf = pl.scan_parquet(path) if path.endswith(".parquet") else pl.scan_csv(path, schema={"key": pl.Utf8, "delay": pl.Int32, "x": pl.Float64})
    lf.group_by("key").agg(pl.col("delay").min().alias("min"), pl.col("delay").max().alias("max"), pl.col("delay").mean().alias("avg"), pl.len().alias("count")).sink_csv(out)
elif engine == "datafusion":
    from datafusion import SessionContext, SessionConfig
    ctx = SessionContext(SessionConfig().with_target_partitions(threads))
    if path.endswith(".parquet"):
        ctx.register_parquet("t", path)
    else:
        import pyarrow as pa
        ctx.register_csv("t", path, schema=pa.schema([("key", pa.string()), ("delay", pa.int32()), ("x", pa.float64())]))
    ctx.sql("SELECT key, min(delay), max(delay), avg(delay), count(*) FROM t GROUP BY key").write_csv(out, with_header=True)
