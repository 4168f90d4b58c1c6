# Checks that a peer's result file agrees with naasc's: the same keys, and for each key
# - top_k.naas (columns `top_k[i]`): the same values, naasc's padding (the type's minimum)
#   standing for the empty fields a peer writes for a key with fewer than K values;
# - any other aggregate, column by column: equal integers where both wrote integers, else
#   numbers within 1e-9 relative (averages: the engines sum in different orders).
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
    if len(ours) != len(p):
        sys.exit(f"key {key}: naasc has {len(ours)} values, peer {len(p)}")
    for a, b in zip(ours, p):
        try:
            same = int(a) == int(b)
        except ValueError:
            same = abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)))
        if not same:
            sys.exit(f"key {key}: naasc {ours}, peer {p}")
print(f"agree: {len(naasc)} keys")
