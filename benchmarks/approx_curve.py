#!/usr/bin/env python
"""Recall against time of the approximate neighbour search, for a few settings, at large N.

The engine's own vectors (three fields + the latent blend, the default configuration)
of the first N texts of ``SynthCorpus(seed=0)`` (``../shared/bench/peers.py``; cached
by ``benchmarks/speed.py``'s ``engine_matrix``). For each setting ``QUERY_TERMS,
CANDIDATES, PROBES, FAN`` of ``top_neighbours(vectors, 50, mode="approx", ...)``
over every row on ``--threads`` threads: the seconds of the neighbour step and the
tie-aware recall@10 on ``--sample`` random rows against exact search over the same
vectors (a listed neighbour counts when its exact similarity is at least the 10th best
minus 1e-6, as ``benchmarks/pipeline.py`` measures it), with the similarity captured
(sum of the 10 listed over the sum of the 10 best). The default setting is
``32,200,4,20`` (pool 50: candidates ``max(4 * pool, 100)``). ``/proc/loadavg`` is printed before and after each setting; each
result is printed (and appended to ``--out``) as soon as it is measured.

Usage::

    python benchmarks/approx_curve.py --n 1000000 --settings 32,200,2,20 32,200,4,20 32,400,8,20 [--out curve.jsonl]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from corpora import shared_dir

ROOT = Path(__file__).resolve().parents[1]
BENCH = shared_dir() / "bench"


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "n/a"


def exact_top(vectors, rows: np.ndarray, k: int) -> np.ndarray:
    """The exact similarities of each sampled row to every row (the row itself excluded), best k, per row."""
    best = np.empty((len(rows), k), dtype=np.float64)
    for start in range(0, len(rows), 50):
        chunk = rows[start : start + 50]
        sims = (vectors[chunk] @ vectors.T).toarray()
        sims[np.arange(len(chunk)), chunk] = -np.inf
        best[start : start + len(chunk)] = -np.sort(-sims, axis=1)[:, :k]
    return best


def recall(vectors, rows: np.ndarray, pools: np.ndarray, best: np.ndarray, k: int) -> tuple[float, float, float]:
    hits = 0
    captured = []
    for i, row in enumerate(rows):
        listed = pools[i, :k]
        listed = listed[listed >= 0]
        sims = (vectors[row] @ vectors[listed].T).toarray().ravel() if listed.size else np.zeros(0)
        hits += int(np.sum(sims >= best[i, k - 1] - 1e-6))
        total = best[i].sum()
        captured.append(sims.sum() / total if total > 0 else 1.0)
    return hits / (k * len(rows)), float(np.mean(captured)), float(np.min(captured))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--settings", nargs="+", default=["32,200,4,20"], help="QUERY_TERMS,CANDIDATES,PROBES,FAN")
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if not (BENCH / "peers.py").exists():
        print("skipped: ../shared/bench/peers.py (SynthCorpus) not found")
        return 0
    sys.path.insert(0, str(BENCH))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import peers
    from speed import engine_matrix

    from recommender._neighbours import top_neighbours

    def report(row: dict) -> None:
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")

    started = time.perf_counter()
    vectors = engine_matrix(peers, args.n)
    report({"n": vectors.shape[0], "stored": int(vectors.nnz), "vectors_s": round(time.perf_counter() - started, 1)})
    rows = np.sort(np.random.default_rng(0).choice(vectors.shape[0], size=args.sample, replace=False))
    started = time.perf_counter()
    best = exact_top(vectors, rows, args.k)
    report({"exact_sample_s": round(time.perf_counter() - started, 1), "sample": args.sample})
    for setting in args.settings:
        query_terms, candidates, probes, fan = (int(x) for x in setting.split(","))
        before = loadavg()
        started = time.perf_counter()
        pools, _ = top_neighbours(
            vectors, 50, mode="approx", n_jobs=args.threads, query_terms=query_terms, candidates=candidates,
            probes=probes, fan=fan,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        found, mean, least = recall(vectors, rows, pools[rows], best, args.k)
        report(
            {"setting": setting, "seconds": round(seconds, 1), f"recall@{args.k}": round(found, 4),
             "captured_mean": round(mean, 4), "captured_min": round(least, 4), "loadavg_before": before,
             "loadavg_after": loadavg()}
        )  # fmt: skip
        del pools
    return 0


if __name__ == "__main__":
    sys.exit(main())
