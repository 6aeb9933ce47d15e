#!/usr/bin/env python
"""The batch job end to end at large N: an article export in, every list file out, through the CLI.

What a site's nightly job does, timed and with its peak memory, in fresh processes:

1. *(not timed as part of the job)* write ``N`` articles of ``SynthCorpus(seed=0)`` from
   ``../shared/bench/peers.py`` as a Parquet export (``article_id, title, summary, body,
   published, views, category``; dates, views and categories seeded), 10k articles at a
   time so the generator never holds the whole corpus; reused when it already exists;
2. ``recommender build EXPORT --out MODEL --mode MODE --n-jobs THREADS --quiet``: ingest,
   validation, vectors, neighbour pools, duplicate groups, saving the model (the stage times
   come from the library's INFO log);
3. ``recommender precompute MODEL --out LISTS.parquet -k K --quiet``: every article's list.

"Ingest to all lists written" is step 2 + step 3. Peak memory is each child process's
maximum resident set (``wait4``). The load average is printed before and after, since the
machine may be shared.

Usage::

    python benchmarks/pipeline.py --n 100000
    python benchmarks/pipeline.py --n 1000000 --mode approx      # the issue's 1M target (30 minutes)

Outputs go under ``--workdir`` (default ``models/pipeline``, ignored by git); ``--clean`` removes
the model and the lists afterwards (the export is kept for the next run).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from corpora import shared_dir

ROOT = Path(__file__).resolve().parents[1]
BENCH = shared_dir() / "bench"
CATEGORIES = ("politics", "world", "business", "sport", "science", "health", "culture", "technology")

# The child runs the CLI with the library's INFO log on stderr, so fit's stage times are printed.
CHILD = (
    "import logging, sys\n"
    "logging.basicConfig(level=logging.INFO, format='    %(message)s', stream=sys.stderr)\n"
    "from recommender._cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def write_export(n: int, path: Path) -> float:
    """Write N SynthCorpus articles as Parquet, 10k at a time; returns the seconds taken."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sys.path.insert(0, str(BENCH))
    from peers import SynthCorpus

    started = time.perf_counter()
    corpus = SynthCorpus(seed=0)
    rng = np.random.default_rng([0, 7])
    start_ns = np.datetime64("2024-01-01T00:00:00", "ns")
    tmp = path.with_suffix(".partial")
    writer = None
    written = 0
    block = 0
    try:
        while written < n:
            texts = corpus._block(block)[: n - written]  # one seeded block of 10k texts (peers.py)
            block += 1
            rows = [t.split(". ", 2) for t in texts]
            m = len(rows)
            seconds = rng.integers(0, 2 * 365 * 86400, m)
            table = pa.table(
                {
                    "article_id": [f"s{written + i}" for i in range(m)],
                    "title": [r[0] for r in rows],
                    "summary": [r[1] if len(r) > 1 else "" for r in rows],
                    "body": [r[2] if len(r) > 2 else "" for r in rows],
                    "published": pa.array(start_ns + seconds.astype("timedelta64[s]"), pa.timestamp("ns", tz="UTC")),
                    "views": np.round(np.exp(rng.normal(6.0, 1.5, m))).astype(np.int64),
                    "category": [CATEGORIES[c] for c in rng.integers(0, len(CATEGORIES), m)],
                }
            )
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
            written += m
            if block % 10 == 0:
                print(f"  export: {written:,} / {n:,} articles", flush=True)
    finally:
        if writer is not None:
            writer.close()
    os.replace(tmp, path)
    return time.perf_counter() - started


def run_child(name: str, argv: list[str]) -> dict:
    """Run the CLI in a fresh process; returns seconds, the child's peak RSS and its output lines."""
    print(f"\n$ recommender {' '.join(argv)}   (loadavg {loadavg()})", flush=True)
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    lines = []
    assert child.stdout is not None
    for line in child.stdout:
        lines.append(line.rstrip("\n"))
        print(f"  | {lines[-1]}", flush=True)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"{name} failed with exit status {child.returncode}")
    return dict(seconds=seconds, peak_rss_mb=usage.ru_maxrss / 1024, lines=lines)


def fit_stages(lines: list[str]) -> list[tuple[str, float]]:
    """The ``fit: ... in X s`` lines of the library's log."""
    out = []
    for line in lines:
        found = re.search(r"fit: (.*) in ([0-9.]+) s \(", line)
        if found:
            out.append((found.group(1), float(found.group(2))))
    return out


def recall_check(model_dir: Path, sample: int, k: int) -> tuple[float, float, float]:
    """The model's first k pool entries against exact search, on ``sample`` random articles.

    Returns the tie-aware recall@k (a listed neighbour counts when its exact
    similarity is at least the k-th best exact similarity minus 1e-6, as ``peers.py``
    measures it), and the mean and minimum over articles of the similarity captured:
    the sum of the k listed similarities over the sum of the k best. The article
    itself and its exact copies are never neighbours.
    """
    import recommender as rec

    model = rec.load_model(model_dir, verify=False)
    vectors = model.vectors_.tocsr()
    n = vectors.shape[0]
    rows = np.sort(np.random.default_rng(0).choice(n, size=min(sample, n), replace=False))
    pools = np.asarray(model.neighbours_)[rows, :k]
    copies = np.asarray(model.copy_groups_)
    hits = total = 0
    captured = []
    for start in range(0, len(rows), 50):
        chunk = rows[start : start + 50]
        exact = (vectors[chunk] @ vectors.T).toarray()
        for i, row in enumerate(chunk):
            exact[i, row] = -np.inf
            if copies[row] >= 0:
                exact[i, copies == copies[row]] = -np.inf
            best = np.partition(exact[i], -k)[-k:]
            kth = best.min()
            listed = pools[start + i]
            listed = listed[listed >= 0]
            hits += int(np.sum(exact[i, listed] >= kth - 1e-6))
            total += k
            captured.append(exact[i, listed].sum() / best.sum() if best.sum() > 0 else 1.0)
    return hits / total, float(np.mean(captured)), float(np.min(captured))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="articles (default 100000)")
    ap.add_argument("--mode", choices=("exact", "approx"), default="approx", help="neighbour mode (default approx)")
    ap.add_argument("--pool-size", type=int, default=None, help="candidates kept per article (default: the library's)")
    ap.add_argument("-k", type=int, default=10, help="list length (default 10)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="--n-jobs of build (default: all cores)")
    ap.add_argument("--workdir", type=Path, default=ROOT / "models" / "pipeline")
    ap.add_argument("--clean", action="store_true", help="remove the model and the lists afterwards")
    ap.add_argument("--recall-sample", type=int, default=1000, help="articles for the recall@k check (0 = skip)")
    ap.add_argument("--recall-of", type=Path, default=None, help="only measure recall@k of this model directory")
    args = ap.parse_args(argv)
    if args.recall_of is not None:
        started = time.perf_counter()
        recall, mean, least = recall_check(args.recall_of, args.recall_sample, args.k)
        print(
            f"{args.recall_of}, first {args.k} of each pool against exact search, {args.recall_sample} sampled "
            f"articles: recall@{args.k} {recall:.4f} (tie-aware); similarity captured: mean {mean:.4f}, "
            f"min {least:.4f} ({time.perf_counter() - started:.0f} s)"
        )
        return 0

    if not (BENCH / "peers.py").exists():
        print(f"skipped: {BENCH / 'peers.py'} (SynthCorpus) is not present")
        return 0
    args.workdir.mkdir(parents=True, exist_ok=True)
    export = args.workdir / f"synth-{args.n}.parquet"
    model = args.workdir / f"model-{args.n}"
    lists = args.workdir / f"lists-{args.n}.parquet"
    print(
        f"## batch job end to end: SynthCorpus(seed=0) N={args.n:,}, mode={args.mode}, k={args.k}, "
        f"threads={args.threads}, cores={os.cpu_count()}; loadavg {loadavg()}",
        flush=True,
    )
    if export.exists():
        print(f"export: reusing {export} ({export.stat().st_size / 2**20:,.0f} MiB)")
    else:
        seconds = write_export(args.n, export)
        print(f"export: wrote {export} ({export.stat().st_size / 2**20:,.0f} MiB) in {seconds:.1f} s (not timed below)")
    shutil.rmtree(model, ignore_errors=True)
    lists.unlink(missing_ok=True)

    build_argv = ["build", str(export), "--out", str(model), "--mode", args.mode, "--n-jobs", str(args.threads)]
    if args.pool_size is not None:
        build_argv += ["--pool-size", str(args.pool_size)]
    build = run_child("build", [*build_argv, "--quiet"])
    precompute = run_child("precompute", ["precompute", str(model), "--out", str(lists), "-k", str(args.k), "--quiet"])

    import pyarrow.parquet as pq

    meta = pq.ParquetFile(lists).metadata
    sources = pq.read_table(lists, columns=["article_id"]).column("article_id").to_pandas().nunique()
    print(
        f"\nlists: {meta.num_rows:,} rows for {sources:,} articles in {lists} "
        f"({lists.stat().st_size / 2**20:,.0f} MiB); loadavg after {loadavg()}"
    )
    stages = fit_stages(build["lines"])
    fitted = sum(s for _, s in stages)
    print("\n| step | seconds | peak RSS of the process |\n| --- | --- | --- |")
    print(f"| build (CLI, whole) | {build['seconds']:.1f} | {build['peak_rss_mb']:,.0f} MB |")
    for name, seconds in stages:
        print(f"| &nbsp; fit: {name} | {seconds:.1f} | |")
    print(f"| &nbsp; reading the export, saving the model, start-up | {build['seconds'] - fitted:.1f} | |")
    print(f"| precompute (CLI) | {precompute['seconds']:.1f} | {precompute['peak_rss_mb']:,.0f} MB |")
    total = build["seconds"] + precompute["seconds"]
    print(
        f"| **ingest to all lists written** | **{total:.1f}** ({total / 60:.1f} min) | "
        f"{max(build['peak_rss_mb'], precompute['peak_rss_mb']):,.0f} MB |"
    )
    if args.recall_sample:
        recall, mean, least = recall_check(model, args.recall_sample, args.k)
        print(
            f"\nfirst {args.k} of each pool against exact search, {args.recall_sample} sampled articles: "
            f"recall@{args.k} {recall:.4f} (tie-aware); similarity captured: mean {mean:.4f}, min {least:.4f}"
        )
    if args.clean:
        shutil.rmtree(model, ignore_errors=True)
        lists.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
