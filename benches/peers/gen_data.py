# Writes a CSV `key,delay,x` for the runtime benchmarks, deterministically (seed 7):
# `gen_data.py ROWS KEYS uniform|zipf OUT [LOW]` (zipf with s = 1.2, capped at KEYS - 1; delays
# from LOW, default -60, up to 600; histogram.naas's `micros: u32` needs LOW 0). Needs numpy.
import sys, numpy as np
rows, keys, dist, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
low = int(sys.argv[5]) if len(sys.argv) > 5 else -60
rng = np.random.default_rng(7)
if dist == "uniform":
    k = rng.integers(0, keys, rows)
else:
    k = np.minimum(rng.zipf(1.2, rows) - 1, keys - 1)
d = rng.integers(low, 600, rows, dtype=np.int32)
x = np.round(rng.random(rows) * 1000, 3)
with open(out, "w") as f:
    f.write("key,delay,x\n")
    chunk = 1_000_000
    for i in range(0, rows, chunk):
        ks = k[i:i+chunk]; ds = d[i:i+chunk]; xs = x[i:i+chunk]
        f.write("".join(f"k{a},{b},{c}\n" for a, b, c in zip(ks.tolist(), ds.tolist(), xs.tolist())))
