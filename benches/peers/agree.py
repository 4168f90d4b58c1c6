# Checks that a peer's result file agrees with naasc's for reduce.naas (min, max, avg, count of
# one column by key): the same keys, equal integers, and averages within 1e-9 relative (the
# engines sum in different orders). Exits 1 naming the first difference.
import csv, sys

def rows(path):
    with open(path, newline="") as f:
        reader = csv.reader(f)
        next(reader)
        return {r[0]: r[1:] for r in reader if r}

naasc, peer = rows(sys.argv[1]), rows(sys.argv[2])
if naasc.keys() != peer.keys():
    missing = sorted(naasc.keys() ^ peer.keys())[:3]
    sys.exit(f"different keys ({len(naasc)} vs {len(peer)}), e.g. {missing}")
for key, (mn, mx, avg, n) in naasc.items():
    p = peer[key]
    if (int(mn), int(mx), int(n)) != (int(p[0]), int(p[1]), int(p[3])) or abs(float(avg) - float(p[2])) > 1e-9 * max(1.0, abs(float(avg))):
        sys.exit(f"key {key}: naasc {[mn, mx, avg, n]}, peer {p}")
print(f"agree: {len(naasc)} keys")
