# Checks that a peer's result file agrees with naasc's: the same keys, and for each key
# - reduce.naas (min, max, avg, count): equal integers, averages within 1e-9 relative (the
#   engines sum in different orders);
# - top_k.naas (columns `top_k[i]`): the same values, naasc's padding (the type's minimum)
#   standing for the empty fields a peer writes for a key with fewer than K values.
# Exits 1 naming the first difference.
import csv, sys

I64_MIN = -(2 ** 63)

def rows(path):
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        return header, {r[0]: r[1:] for r in reader if r}

(header, naasc), (_, peer) = rows(sys.argv[1]), rows(sys.argv[2])
if naasc.keys() != peer.keys():
    missing = sorted(naasc.keys() ^ peer.keys())[:3]
    sys.exit(f"different keys ({len(naasc)} vs {len(peer)}), e.g. {missing}")
top_k = header[1].startswith("top_k[")
for key, ours in naasc.items():
    p = peer[key]
    if top_k:
        mine = [int(v) for v in ours if int(v) != I64_MIN]
        theirs = [int(v) for v in p if v != ""]
        if mine != theirs:
            sys.exit(f"key {key}: naasc {mine}, peer {theirs}")
        continue
    mn, mx, avg, n = ours
    if (int(mn), int(mx), int(n)) != (int(p[0]), int(p[1]), int(p[3])) or abs(float(avg) - float(p[2])) > 1e-9 * max(1.0, abs(float(avg))):
        sys.exit(f"key {key}: naasc {ours}, peer {p}")
print(f"agree: {len(naasc)} keys")
