#!/usr/bin/env python
"""Live updates: the wall time of each kind of update on a fitted model, against a refit.

Fits the default model (or ``--mode approx``) on N articles of ``SynthCorpus(seed=0)``
from ``../shared/bench/peers.py`` (title, summary, body split at the first two
full stops), warms it, then times each call ``--repeats`` times on the live
model, one article per call:

* ``add_articles`` (a new article), ``update_articles`` (an edited title),
  ``remove_articles``, ``update_views``, ``block`` + ``unblock``, ``pin``;
* the first ``recommend`` after an update (it rebuilds the list cache of the new state),
  and a cached ``recommend`` after that.

The peer in the same run is the refit an update replaces: ``fit`` on the same
articles. Medians are printed with the load average.

Usage::

    python benchmarks/updates.py [--n 100000] [--mode approx] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from corpora import shared_dir

ROOT = Path(__file__).resolve().parents[1]


def frame(texts: list[str], start: int, stop: int, suffix: str = ""):
    import pandas as pd

    rows = [t.split(". ", 2) for t in texts[start:stop]]
    return pd.DataFrame(
        {
            "article_id": [f"s{i}" for i in range(start, stop)],
            "title": [r[0] + suffix for r in rows],
            "summary": [r[1] if len(r) > 1 else "" for r in rows],
            "body": [r[2] if len(r) > 2 else "" for r in rows],
            "views": np.arange(start, stop, dtype=np.float64),
        }
    )


def loadavg() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--mode", choices=("exact", "approx"), default="exact")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    shared = shared_dir() / "bench"
    if not (shared / "peers.py").exists():
        sys.exit(f"needs ../shared/bench/peers.py (SynthCorpus); not found at {shared}")
    sys.path.insert(0, str(shared))
    sys.path.insert(0, str(ROOT))
    from peers import SynthCorpus

    import recommender as rec

    n, repeats = args.n, args.repeats
    texts = SynthCorpus(seed=0).texts(n + repeats)
    print(f"## live updates: SynthCorpus(seed=0) N={n:,}, mode={args.mode}, n_jobs={args.threads}")
    print(f"loadavg before {loadavg()}")
    started = time.perf_counter()
    model = rec.Recommender(n_jobs=args.threads, mode=args.mode).fit(frame(texts, 0, n)).warm()
    fit_seconds = time.perf_counter() - started
    print(f"refit (the peer): fit + warm {fit_seconds:.2f} s")

    times: dict[str, list[float]] = {}

    def timed(name, call):
        t = time.perf_counter()
        call()
        times.setdefault(name, []).append(time.perf_counter() - t)

    for r in range(repeats):
        timed("add_articles (1)", lambda r=r: model.add_articles(frame(texts, n + r, n + r + 1)))
        timed("first recommend after it", lambda r=r: model.recommend(f"s{r}", k=5))
        timed("cached recommend", lambda r=r: model.recommend(f"s{r + 1}", k=5))
        timed("update_articles (1)", lambda r=r: model.update_articles(frame(texts, r, r + 1, " revised")))
        timed("remove_articles (1)", lambda r=r: model.remove_articles([f"s{100 + r}"]))
        timed("update_views (1)", lambda r=r: model.update_views({f"s{200 + r}": 10.0**6}))
        timed("block + unblock (1)", lambda r=r: (model.block([f"s{300 + r}"]), model.unblock([f"s{300 + r}"])))
        timed("pin (1)", lambda r=r: model.pin(f"s{400 + r}", [f"s{500 + r}"]))
    print(f"{'call':28s} {'median':>10s} {'of refit':>9s}  runs")
    for name, values in times.items():
        median = statistics.median(values)
        runs = ", ".join(f"{v:.4f}" for v in values)
        print(f"{name:28s} {median:9.4f}s {median / fit_seconds:9.4f}  {runs}")
    print(f"loadavg after {loadavg()}")


if __name__ == "__main__":
    main()
