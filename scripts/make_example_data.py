#!/usr/bin/env python3
"""Writes the small data sets under examples/data/ that README.md's tour runs on.

Deterministic (fixed seed), so re-running it reproduces the committed files byte for byte:
    python3 scripts/make_example_data.py
"""
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "examples" / "data"

CARRIERS = {"AA": 9, "DL": 6, "UA": 11, "WN": 4, "B6": 14, "AS": 2, "NK": 17, "F9": 12}
AIRPORTS = ["ATL", "DFW", "DEN", "ORD", "LAX", "JFK", "SEA", "SFO", "LAS", "MCO", "BOS", "PHX"]
SERVICES = {"auth": 60, "search": 420, "checkout": 260, "images": 1200, "profile": 40}


def flights(rng: random.Random) -> str:
    """Per-flight arrival delays in minutes (reduce.naas: `delay`); all rows valid."""
    rows = ["carrier,origin,dest,delay"]
    carriers = list(CARRIERS)
    weights = [30, 25, 28, 35, 10, 8, 9, 6]
    for _ in range(4000):
        carrier = rng.choices(carriers, weights)[0]
        origin, dest = rng.sample(AIRPORTS, 2)
        # Most flights are near on time; a long tail is late, a few are very late.
        delay = round(rng.gauss(0, 8) + rng.expovariate(1 / CARRIERS[carrier]))
        if rng.random() < 0.01:
            delay += rng.randint(120, 600)
        rows.append(f"{carrier},{origin},{dest},{delay}")
    return "\n".join(rows) + "\n"


def requests(rng: random.Random) -> str:
    """Request latencies in microseconds (histogram.naas: `micros`), with some invalid rows."""
    rows = ["service,status,micros"]
    services = list(SERVICES)
    invalid = ["", "NA", "timeout", "-1", "12.5", "1e12"]
    for _ in range(3000):
        service = rng.choice(services)
        status = rng.choices([200, 404, 500], [95, 4, 1])[0]
        if rng.random() < 0.005:
            micros = rng.choice(invalid)
        else:
            micros = str(max(1, round(rng.lognormvariate(0, 0.8) * SERVICES[service])))
        rows.append(f"{service},{status},{micros}")
    return "\n".join(rows) + "\n"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = random.Random(2026)
    (OUT / "flights.csv").write_text(flights(rng))
    (OUT / "requests.csv").write_text(requests(rng))


if __name__ == "__main__":
    main()
