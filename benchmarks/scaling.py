#!/usr/bin/env python
"""Batch job scaling: ``precompute`` in this process, then on Dask clusters of 1, 2, ... workers.

Builds (once, cached under --model-dir, the same model as benchmarks/serving.py)
a model of N articles of the shared synthetic corpus ``SynthCorpus(seed=0)``,
then times ``precompute(model_dir, out, k=...)``:

* ``local``: the parts one after another in this process (no Dask);
* ``dask``: on a ``LocalCluster(n_workers=W, threads_per_worker=1, processes=True)``
  for every W of ``--workers``; the cluster is started before the clock starts
  and its workers have imported recommender (start-up time reported apart); each
  worker then loads the model itself from the shared path (counted, as the local
  run counts its own load).

Every run writes to a fresh directory; the parts of every run must have the same
SHA-256 as the local run's (``identical``). Speed-up = local seconds / run seconds.
``/proc/loadavg`` is printed before and after: on a shared machine, other load
eats into the speed-up.

Usage::

    python benchmarks/scaling.py [--n 100000] [--workers 1 2] [-k 10] [--explain]
                                 [--rows-per-part 10000] [--model-dir models/bench-100000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "n/a"


def checksums(folder: Path) -> list[str]:
    from recommender._batch import PARTS_MANIFEST

    return [p["sha256"] for p in json.loads((folder / PARTS_MANIFEST).read_text())["parts"]]


def warm_up() -> None:
    import recommender._batch  # noqa: F401


def run(model_dir: Path, out: Path, client, args: argparse.Namespace) -> float:
    import recommender._batch as batch

    batch._MODELS.clear()  # every run loads the model itself, as a fresh process would
    started = time.perf_counter()
    result = batch.precompute(
        model_dir,
        out,
        k=args.k,
        explain=args.explain,
        rows_per_part=args.rows_per_part,
        client=client,
        progress=False,
    )
    seconds = time.perf_counter() - started
    assert result.computed == result.parts, result.message
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="articles (default 100000)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default 1 2)")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--explain", action="store_true", help="add score parts and shared terms (heavier lists)")
    parser.add_argument("--rows-per-part", type=int, default=10_000)
    parser.add_argument("--model-dir", default=None, help="default: models/bench-N")
    args = parser.parse_args()
    model_dir = Path(args.model_dir or ROOT / "models" / f"bench-{args.n}")
    if not (model_dir / "CURRENT").exists():
        if not (ROOT.parent / "shared" / "bench" / "peers.py").exists():
            print("skipped: ../shared/bench/peers.py (SynthCorpus) not found")
            return 0
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from serving import build

        build(args.n, model_dir)

    from dask.distributed import Client, LocalCluster

    import recommender as rec

    print(json.dumps({"loadavg_before": loadavg()}), flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="scaling-"))
    rows = []
    try:
        local_s = run(model_dir, scratch / "local", None, args)
        reference = checksums(scratch / "local")
        rows.append({"mode": "local", "workers": 0, "seconds": local_s, "speed_up": 1.0, "identical": True})
        print(json.dumps({**rows[-1], "parts": len(reference)}), flush=True)
        for workers in args.workers:
            started = time.perf_counter()
            with (
                LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
                ) as cluster,
                Client(cluster) as client,
            ):
                client.wait_for_workers(workers)
                client.run(warm_up)  # imports (numpy, scikit-learn, numba, ...): once per worker process
                start_s = time.perf_counter() - started
                out = scratch / f"dask-{workers}"
                seconds = run(model_dir, out, client, args)
            rows.append(
                {
                    "mode": "dask",
                    "workers": workers,
                    "seconds": seconds,
                    "speed_up": local_s / seconds,
                    "identical": checksums(out) == reference,
                    "cluster_start_s": round(start_s, 2),
                }
            )
            print(json.dumps({**rows[-1], "seconds": round(seconds, 2), "speed_up": round(local_s / seconds, 2)}))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps({"loadavg_after": loadavg()}), flush=True)
    articles = rec.read_manifest(model_dir)["counts"]["articles"]
    print(
        f"\nprecompute of {articles:,} articles, k={args.k}, explain={args.explain}, {args.rows_per_part:,} rows/part"
    )
    print(f"{'run':<12}{'seconds':>9}{'speed-up':>10}  identical to local")
    for row in rows:
        name = "local" if row["mode"] == "local" else f"dask x{row['workers']}"
        print(f"{name:<12}{row['seconds']:>9.2f}{row['speed_up']:>10.2f}  {row['identical']}")
    return 0 if all(r["identical"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
