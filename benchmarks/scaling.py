#!/usr/bin/env python
"""Scaling of the batch jobs: the build and ``precompute`` in this process, then on Dask clusters of 1, 2, ... workers.

Corpus: the first N texts of the shared synthetic corpus ``SynthCorpus(seed=0)``
(``../shared/bench/peers.py``; ``$RECOMMENDER_SHARED/bench/peers.py`` where that variable is set, as in
every benchmark: see ``corpora.shared_dir``) as title/summary/body, the default configuration
(``Recommender()``).

* ``in-process``: ``Recommender(n_jobs=T).fit(frame)`` and ``precompute(model, out)``
  (parts one after another) in this process, T = ``--threads`` (default 2);
* ``dask xW``: a ``LocalCluster(n_workers=W, threads_per_worker=1, processes=True,
  memory_limit=--memory-limit)`` started before the clock starts (its start-up, with the
  warm-up build below, is reported apart as ``cluster_start_s``), then
  ``Recommender(n_jobs=T).fit(frame, client=client)`` (T threads for the step the client
  runs, the copy comparison) and ``precompute(..., client=client)``. Dask's default worker settings, unless ``--build-config`` (or its
  older name ``--no-worker-profile``): then those of the cluster ``recommender build
  --workers W`` starts itself (``WORKER_CONFIG``: no statistical profiler in the
  workers, and managed memory spilled to disk from lower thresholds).

Before either is timed, an untimed build and precompute of the first 600 articles run in
this process and on each cluster (``warmed``), so that compiling or loading the compiled
kernels is in neither timing (on a fresh checkout numba compiles them on their first call;
each process loads them once, the ranking's on its first precompute).

``--input files`` gives both sides ``--files`` Parquet files of the same rows instead (written before any
timing): what a batch job's ``recommender build FILES... --workers N`` reads. The workers then read and validate
the files themselves; in-process, ``load_articles(files)`` and the fit are timed together. With the pandas frame
(the default), this process validates it and sends it in chunks, work that more workers do not share.

Each Dask build also reports, from Dask's task stream (``stream_figures``): ``build_no_task_s``, the seconds of
the build in which no worker computed a task (the client's own steps, such as validating a pandas frame, the
latent components and the duplicate groups, and the waits between tasks), with the longest of those waits named
by the tasks around them (``build_waits``). More workers do not shorten it, so it bounds the speed-up (Amdahl):
``t_W >= no_task_s + (t_1 - no_task_s) / W``. And where the rest of the efficiency goes: ``build_busy_mean``, the
mean number of workers computing (idle workers), and ``build_task_slowdown``, the tasks' compute seconds against
the 1-worker run's (each task slower beside the others: memory bandwidth, caches, the client's CPU).

Every Dask run is checked against the in-process run: the pools bit for bit and the
precompute parts by SHA-256 (``identical``). Speed-up and efficiency are against
the 1-worker run when it was measured (``speed_up = t1 / tW``, ``efficiency =
speed_up / W``), and ``vs_in_process`` = in-process seconds / Dask seconds (its inverse is
the Dask run's time as a multiple of the in-process one). Peak
RSS of a worker (``build_worker_peak_rss_mb``) is sampled every 0.1 s from this
process (psutil) during the build, the highest of all workers, a worker restarted by its
nanny included (``build_worker_restarts`` counts them: a worker that went past 95% of its
``memory_limit`` is restarted, and its tasks computed again).
``/proc/loadavg`` is printed before and after.

``--repeats R`` runs the whole sequence (the in-process run, then each worker count) R
times, one round after another, and ends with one row per run: the median of each figure
over the rounds, and each ratio's median over the rounds' own ratios (a Dask run against
the in-process run of its round), with all the values. The machine is shared and noisy:
quote the medians of a few rounds, not one run.

Each result is printed and appended to ``--out`` (JSON lines) as soon as it is
measured; a run that would start after ``--time-limit`` seconds is skipped (and
said so), so the sweep can run as one prepared script on a machine lent for a
few minutes. The worker counts run in the order given: put the short runs first.

Usage::

    python benchmarks/scaling.py [--n 100000] [--workers 2 4 8 16 1] [--steps build precompute]
                                 [--threads 2] [--memory-limit 4GiB] [--time-limit 840] [--out scaling.jsonl]
                                 [--build-config] [--block-rows R] [--repeats R] [--input frame|files]
                                 [--files 64]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from corpora import shared_dir

ROOT = Path(__file__).resolve().parents[1]
PEERS = shared_dir() / "bench" / "peers.py"


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "n/a"


def synth_frame(n: int):
    """The first N SynthCorpus texts as an article table (``benchmarks/speed.py``'s ``synth_frame``)."""
    sys.path.insert(0, str(PEERS.parent))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import peers
    from speed import synth_frame as frame_of

    return frame_of(peers, n)


def pools_digest(model) -> str:
    state = model._state
    digest = hashlib.sha256()
    for array in (state.pools.rows, state.pools.similarities, state.index.vectors.data, state.index.vectors.indices):
        digest.update(array.tobytes())
    return digest.hexdigest()


def part_digests(folder: Path) -> list[str]:
    from recommender._batch import PARTS_MANIFEST

    return [p["sha256"] for p in json.loads((folder / PARTS_MANIFEST).read_text())["parts"]]


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RssSampler:
    """The highest resident set size of a cluster's workers, sampled every 0.1 s from a thread (MB).

    The workers' process ids are asked again every second, so that a worker its nanny restarted (for going past
    95% of its ``memory_limit``, say) is followed too; ``restarts`` counts the workers seen beyond the first ones.
    """

    def __init__(self, client) -> None:
        import threading

        self.client = client
        self.processes: dict[int, object] = {}
        self.first = 0
        self.peak = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)

    def refresh(self) -> None:
        import psutil

        try:
            pids = list(self.client.run(os.getpid).values())
        except Exception:  # a worker that is being replaced: asked again in a second
            return
        for pid in pids:
            if pid not in self.processes:
                try:
                    self.processes[pid] = psutil.Process(pid)
                except psutil.Error:
                    pass

    @property
    def restarts(self) -> int:
        return len(self.processes) - self.first

    def sample(self) -> None:
        last = 0.0
        while not self.stop.is_set():
            if time.perf_counter() - last > 1.0:
                self.refresh()
                last = time.perf_counter()
            for process in self.processes.values():
                try:
                    self.peak = max(self.peak, process.memory_info().rss / 2**20)
                except Exception:  # a worker that died: its successor is found by the next refresh
                    pass
            self.stop.wait(0.1)

    def __enter__(self) -> RssSampler:
        self.refresh()
        self.first = len(self.processes)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def stream_figures(stream: list[dict], start: float, stop: float, waits: int = 3) -> dict:
    """What Dask's task stream of one build says of ``start..stop`` (``time.time()``):

    * ``no_task_s``: seconds in which no worker computed a task: the client's own steps (validating a pandas frame,
      the latent components, the duplicate groups...) and the waits between tasks. Not shortened by more workers,
      it bounds the speed-up (Amdahl): ``t_W >= no_task_s + (t_1 - no_task_s) / W``;
    * ``task_s``: the tasks' compute seconds added up. Against the 1-worker run's it says how much slower each
      task ran beside the others (memory bandwidth, caches, the client's CPU), where ``busy_mean`` says how well
      the workers were kept busy;
    * ``busy_mean``: ``task_s`` over the wall time, the mean number of workers computing;
    * ``waits``: the ``waits`` longest stretches of no task, each as ``[seconds, the task that ended before it,
      the task that started after it]`` (Dask's ``key_split`` names; "start" and "end" for the build's ends).
    """
    from dask.utils import key_split

    spans = sorted(
        (max(s["start"], start), min(s["stop"], stop), key_split(task["key"]))
        for task in stream
        for s in task.get("startstops", ())
        if s.get("action") == "compute" and s["stop"] > start and s["start"] < stop
    )
    gaps, reached, last = [], start, "start"
    for a, b, name in spans:
        if a > reached:
            gaps.append((a - reached, last, name))
        if b > reached:
            reached, last = b, name
    if stop > reached:
        gaps.append((stop - reached, last, "end"))
    task_s = sum(b - a for a, b, _ in spans)
    return {
        "no_task_s": sum(g[0] for g in gaps),
        "task_s": task_s,
        "busy_mean": task_s / (stop - start) if stop > start else 0.0,
        "waits": [[round(g[0], 3), g[1], g[2]] for g in sorted(gaps, reverse=True)[:waits]],
    }


def write_files(frame, folder: Path, files: int) -> list[str]:
    """``frame`` as ``files`` Parquet files of consecutive rows (the input of a batch job: ``recommender build
    FILES...``), written before any timing."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, len(frame), max(1, min(files, len(frame))) + 1).astype(int)
    paths = []
    for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        path = folder / f"articles-{i:04d}.parquet"
        frame.iloc[lo:hi].to_parquet(path, index=False)
        paths.append(str(path))
    return paths


def warm_up() -> None:
    import recommender._batch
    import recommender._cluster  # noqa: F401
    from recommender._neighbours import _kernels

    _kernels()  # numba loads its compiled kernels from the on-disk cache once per process


#: Articles of the untimed build that runs every compiled kernel once before the timed runs
WARM_UP_ROWS = 600


def warmed(frame, threads: int, client=None) -> None:
    """An untimed build and precompute of the first :data:`WARM_UP_ROWS` articles, in this process or on
    ``client``: numba compiles a kernel on its first call (its cache is empty on a fresh checkout) and loads it
    from the cache once per process after that (the ranking's and the model reader's kernels too, which only
    precompute runs), so neither side's timing includes it."""
    import recommender as rec
    from recommender._batch import precompute

    model = rec.Recommender(n_jobs=threads).fit(frame.iloc[:WARM_UP_ROWS], client=client, progress=False)
    with tempfile.TemporaryDirectory(prefix="scaling-warm-up-") as folder:
        model.save(Path(folder) / "model")
        precompute(Path(folder) / "model", Path(folder) / "lists", k=10, client=client, progress=False)


def one_round(
    args: argparse.Namespace, frame, paths: list[str] | None, scratch: Path, tag: dict, began: float, report
) -> list[dict]:
    """The in-process run, then one Dask run per worker count, each checked against the in-process run of the
    same round, both given ``frame`` or, with ``paths``, those files of it; returns the rows reported (``tag``, such
    as the round's number, added to each)."""
    import dask
    from dask.distributed import Client, LocalCluster, get_task_stream

    import recommender as rec
    from recommender._batch import precompute
    from recommender._cluster import WORKER_CONFIG

    scratch.mkdir()
    rows: list[dict] = []

    def keep(row: dict) -> dict:
        row = report({**row, **tag})
        rows.append(row)
        return row

    source = frame if paths is None else paths  # what the Dask build is given
    started = time.perf_counter()
    if args.skip_in_process:
        truth = build_s = None
    else:
        table = frame if paths is None else rec.load_articles(paths)  # files are read inside the timing
        model = rec.Recommender(n_jobs=args.threads).fit(table, progress=False)
        del table
        build_s = time.perf_counter() - started
        truth = pools_digest(model)
        model.save(scratch / "model")
        del model
    row = {"run": "in-process", "workers": 0, "build_s": build_s, "peak_rss_mb": peak_rss_mb()}
    if "precompute" in args.steps and not args.skip_in_process:
        started = time.perf_counter()
        precompute(scratch / "model", scratch / "lists-local", k=args.k, rows_per_part=args.rows_per_part,
                   progress=False)  # fmt: skip
        row["precompute_s"] = time.perf_counter() - started
        reference = part_digests(scratch / "lists-local")
    local = keep(row)
    baseline: dict = {}
    for workers in args.workers:
        if args.time_limit is not None and time.perf_counter() - began > args.time_limit:
            keep({"run": f"dask x{workers}", "skipped": f"past the time limit of {args.time_limit:.0f} s"})
            continue
        started = time.perf_counter()
        settings = WORKER_CONFIG if args.build_config else {}
        with (
            dask.config.set(settings),
            LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                memory_limit=args.memory_limit,
            ) as cluster,
            Client(cluster) as client,
        ):  # fmt: skip
            client.wait_for_workers(workers)
            client.run(warm_up)
            warmed(frame, args.threads, client)
            row = {"run": f"dask x{workers}", "workers": workers, "cluster_start_s": time.perf_counter() - started}
            if "build" in args.steps:
                started = time.perf_counter()
                wall = time.time()
                with RssSampler(client) as sampler, get_task_stream(client) as stream:
                    spread = rec.Recommender(n_jobs=args.threads).fit(
                        source, client=client, block_rows=args.block_rows, progress=False
                    )
                row["build_s"] = time.perf_counter() - started
                figures = stream_figures(stream.data, wall, time.time())
                row.update({f"build_{key}": value for key, value in figures.items()})
                row["build_worker_peak_rss_mb"] = sampler.peak
                row["build_worker_restarts"] = sampler.restarts
                if truth is not None:
                    row["build_identical"] = pools_digest(spread) == truth
                    row["build_vs_in_process"] = build_s / row["build_s"]
                del spread
            if "precompute" in args.steps and not args.skip_in_process:
                out = scratch / f"lists-{workers}"
                started = time.perf_counter()
                precompute(scratch / "model", out, k=args.k, rows_per_part=args.rows_per_part, client=client,
                           progress=False)  # fmt: skip
                row["precompute_s"] = time.perf_counter() - started
                row["precompute_identical"] = part_digests(out) == reference
                row["precompute_vs_in_process"] = local["precompute_s"] / row["precompute_s"]
        for step in ("build", "precompute"):
            if f"{step}_s" not in row:
                continue
            if workers == 1:
                baseline[step] = row[f"{step}_s"]
            if step in baseline:
                row.update(against_one(row, step, baseline))
        if workers == 1 and "build_task_s" in row:
            baseline["build_task"] = row["build_task_s"]
        keep(row)
    # speed-ups of runs measured before the 1-worker run (it is best run last: it is the longest)
    for row in list(rows):
        for step in ("build", "precompute"):
            if step in baseline and row.get("workers") and f"{step}_s" in row and f"{step}_speed_up" not in row:
                keep({"run": row["run"], **against_one(row, step, baseline)})
    return rows


def against_one(row: dict, step: str, baseline: dict) -> dict:
    """A Dask run's ``step`` against the 1-worker run's (``baseline``): speed-up and efficiency, and for the
    build ``build_task_slowdown``, its tasks' compute seconds over the 1-worker run's (1.0: each task ran as fast
    beside the others as alone; efficiency is then lost to idle workers, which ``build_busy_mean`` shows)."""
    speed_up = baseline[step] / row[f"{step}_s"]
    figures = {f"{step}_speed_up": speed_up, f"{step}_efficiency": speed_up / row["workers"]}
    if step == "build" and "build_task" in baseline and "build_task_s" in row:
        figures["build_task_slowdown"] = row["build_task_s"] / baseline["build_task"]
    return figures


#: what ``--repeats`` summarises, per run, as the median over the rounds
SUMMARISED = (
    "build_s", "precompute_s", "build_vs_in_process", "precompute_vs_in_process", "build_speed_up",
    "build_efficiency", "precompute_speed_up", "precompute_efficiency", "build_worker_peak_rss_mb",
    "build_no_task_s", "build_task_s", "build_busy_mean", "build_task_slowdown",
)  # fmt: skip


def medians(rounds: list[list[dict]]) -> list[dict]:
    """One row per run (in-process, dask xW): the median of each :data:`SUMMARISED` figure over the rounds that
    measured it, with the figures themselves. A ratio's median is that of the rounds' ratios (each Dask run
    against the in-process run of its own round), not a ratio of medians."""
    merged: dict[str, dict[str, list[float]]] = {}
    for rows in rounds:
        for row in rows:
            if "run" not in row:
                continue
            figures = merged.setdefault(row["run"], {})
            for key in SUMMARISED:
                if row.get(key) is not None:
                    figures.setdefault(key, []).append(row[key])
    summary = []
    for run, figures in merged.items():
        row: dict = {"run": run, "summary": f"median of {len(rounds)} rounds"}
        for key, values in figures.items():
            row[f"{key}_median"] = statistics.median(values)
            row[f"{key}_all"] = [round(v, 3) for v in values]
        summary.append(row)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="articles (default 100000)")
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 1], help="worker counts, in order (default 2 1)")
    parser.add_argument("--steps", nargs="+", default=["build", "precompute"], choices=["build", "precompute"])
    parser.add_argument("--threads", type=int, default=2, help="threads of the in-process run (default 2)")
    parser.add_argument("--memory-limit", default="auto", help="memory_limit per worker (default: Dask's auto)")
    parser.add_argument("--time-limit", type=float, default=None, help="start no run after this many seconds")
    parser.add_argument(
        "--repeats", type=int, default=1,
        help="rounds of the in-process run and the Dask runs, one after another; medians at the end (default 1)",
    )  # fmt: skip
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--rows-per-part", type=int, default=10_000)
    parser.add_argument(
        "--block-rows", type=int, default=None, help="rows per block of the Dask build (default: the build's own)"
    )
    parser.add_argument(
        "--input", choices=("frame", "files"), default="frame",
        help="what the build is given: the pandas frame (default; validated and sent by the client) or --files "
        "Parquet files of it (read by the workers; in-process: load_articles(files) + fit, both timed)",
    )  # fmt: skip
    parser.add_argument("--files", type=int, default=64, help="Parquet files of --input files (default 64)")
    parser.add_argument("--out", default=None, help="append each result to this JSON-lines file")
    parser.add_argument(
        "--skip-in-process", action="store_true", help="no in-process run (and no check of identity): memory runs"
    )
    parser.add_argument(
        "--build-config",
        "--no-worker-profile",
        dest="build_config",
        action="store_true",
        help="the workers' settings of `recommender build --workers` (WORKER_CONFIG: no statistical profiler, "
        "earlier spilling), not Dask's defaults",
    )
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if not PEERS.exists():
        print(f"skipped: {PEERS} (SynthCorpus) not found")
        return 0
    import logging

    logging.getLogger("distributed").setLevel(logging.ERROR)
    began = time.perf_counter()
    results: list[dict] = []

    def report(row: dict) -> dict:
        row = {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}
        results.append(row)
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
        return row

    report(
        {"loadavg_before": loadavg(), "n": args.n, "cores": os.cpu_count(), "threads": args.threads,
         "input": args.input if args.input == "frame" else f"{args.files} Parquet files"}
    )  # fmt: skip
    frame = synth_frame(args.n)
    scratch = Path(tempfile.mkdtemp(prefix="scaling-"))
    rounds: list[list[dict]] = []
    try:
        paths = write_files(frame, scratch / "input", args.files) if args.input == "files" else None
        warmed(frame, args.threads)  # the first run of a checkout compiles the kernels: not part of the timing
        for repeat in range(args.repeats):
            if repeat and args.time_limit is not None and time.perf_counter() - began > args.time_limit:
                report({"round": repeat + 1, "skipped": f"past the time limit of {args.time_limit:.0f} s"})
                break
            tag = {"round": repeat + 1} if args.repeats > 1 else {}
            rounds.append(one_round(args, frame, paths, scratch / f"round-{repeat + 1}", tag, began, report))
            if args.repeats > 1:
                report({"loadavg": loadavg(), "after_round": repeat + 1})
        if args.repeats > 1:
            for row in medians(rounds):
                report(row)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report({"loadavg_after": loadavg(), "seconds": time.perf_counter() - began})
    identical = [v for r in results for k, v in r.items() if k.endswith("_identical")]
    return 0 if all(identical) else 1


if __name__ == "__main__":
    sys.exit(main())
