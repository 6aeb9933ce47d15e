#!/usr/bin/env python
"""Peak memory of a fit with one huge body, against the same fit without it (issue 16).

Ten articles, one of them with a body of ``--mb`` million characters of news-like words.
Each fit runs in a fresh process; the figure is the growth of the peak resident memory
over the process's memory just before the fit, per character of the big field.

Usage::

    python benchmarks/ingest_memory.py [--mb 18]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

WORDS = "storm harbour ferry coast wind rain closed routes the and of to".split()


def one(size: int) -> dict:
    import random

    import pandas as pd

    import recommender as rec

    rng = random.Random(0)
    piece = " ".join(rng.choice(WORDS) for _ in range(2000)) + " "  # no temporary list of every word
    body = piece * max(1, size // len(piece)) if size else "storm harbour"
    frame = pd.DataFrame(
        {
            "article_id": [f"a{i}" for i in range(10)],
            "title": [f"Storm news {i}" for i in range(10)],
            "body": [body] + ["storm harbour ferry coast"] * 9,
        }
    )
    table = rec.load_articles(frame, max_field_chars=max(10_000_000, len(body) + 1))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    model = rec.Recommender(min_df=1).fit(table)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"field_mb": round(len(body) / 1e6, 1), "kept": model.n_articles, "fit_s": round(time.perf_counter() - started, 2),
            "peak_growth_mb": round(peak - before, 1)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=18.0)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(one(args.child)))
        return 0
    results = [
        json.loads(subprocess.run([sys.executable, __file__, "--child", str(size)], capture_output=True, text=True,
                                  check=True).stdout.strip().splitlines()[-1])
        for size in (0, int(args.mb * 1e6))
    ]  # fmt: skip
    small, big = results
    extra = big["peak_growth_mb"] - small["peak_growth_mb"]
    print(json.dumps({"small": small, "big": big, "extra_peak_per_field": round(extra / big["field_mb"], 2),
                      "loadavg": Path("/proc/loadavg").read_text().strip()}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
