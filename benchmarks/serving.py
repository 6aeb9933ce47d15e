#!/usr/bin/env python
"""Request path: latency of recommend() and recommend_for_text() on a loaded model, load time, memory.

Builds (once, cached under --model-dir) a model of N articles of the shared
synthetic news-like corpus ``SynthCorpus(seed=0)`` from ``../shared/bench/peers.py``,
then, in fresh processes:

* loads it (time, resident memory) and warms the request cache;
* times ``recommend(id, k=5)`` with the default controls over many random ids, and
  with a per-call override (the full path, no cache);
* times ``recommend_for_text(title, body, k=5)`` on held-out synthetic texts;
* starts two more processes that load the same model and reports how much of
  their memory is shared (the arrays are memory-mapped, so worker processes of a
  web server share one copy through the page cache).

``--stage validate`` prints what validating every loaded array adds: the median of
3 ``read_model`` calls (checksums, reading, validation), of 3 ``FittedState.check``
calls alone, and of 3 loads as ``ModelHolder.reload`` does them (load and warm), with the shares.
``--stage http`` measures ``GET /articles/{id}/related`` through ``recommender serve --workers 2``
(requests per second, p50/p99 latency, 4 client threads) and the in-process call in the same run;
``--stage editorial`` an editor's click (load, pin, save) and how long a watching
``ModelHolder`` takes to serve the new version, against a full reload.
``--stage validate-parts --n 1000000`` times the two largest parts (vectors with vocabulary,
and pools) at sizes whose model takes too long to build here.

Usage::

    python benchmarks/serving.py [--n 100000] [--calls 20000] [--model-dir models/bench-100k]
    python benchmarks/serving.py --n 100000 --stage validate
    python benchmarks/serving.py --n 1000000 --stage validate-parts

Targets (issue 5): recommend() p99 <= 100 us; recommend_for_text() p99 <= 20 ms.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from corpora import shared_dir

ROOT = Path(__file__).resolve().parents[1]


def synth_texts(n: int, offset: int = 0) -> list[str]:
    sys.path.insert(0, str(shared_dir() / "bench"))
    from peers import SynthCorpus

    return SynthCorpus(seed=0).texts(n + offset)[offset:]


def build(n: int, model_dir: Path) -> None:
    import pandas as pd

    import recommender as rec

    started = time.perf_counter()
    texts = synth_texts(n)
    generated = time.perf_counter()
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "article_id": [f"a{i}" for i in range(n)],
            "title": [t.split(".")[0] for t in texts],
            "body": texts,
            "views": rng.integers(0, 100_000, n),
            "published": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
        }
    )
    model = rec.Recommender(n_jobs=2).fit(frame)
    fitted = time.perf_counter()
    model.save(model_dir)
    print(
        json.dumps(
            {
                "stage": "build",
                "n": n,
                "generate_s": round(generated - started, 1),
                "fit_s": round(fitted - generated, 1),
                "save_s": round(time.perf_counter() - fitted, 1),
            }
        ),
        flush=True,
    )


def rss_mb() -> dict[str, float]:
    out = {}
    try:
        with open("/proc/self/smaps_rollup") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                if key in ("Rss", "Pss", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty"):
                    out[key] = int(rest.split()[0]) / 1024
    except OSError:
        pass
    return out


def measure(model_dir: Path, calls: int, text_calls: int) -> None:
    import recommender as rec

    before = rss_mb()
    started = time.perf_counter()
    model = rec.load_model(model_dir)
    loaded = time.perf_counter()
    model.warm()
    warmed = time.perf_counter()
    ids = model.article_ids
    rng = np.random.default_rng(1)
    picks = rng.integers(0, len(ids), calls)
    gc.collect()
    gc.disable()
    timings = np.empty(calls)
    for i, row in enumerate(picks):
        t = time.perf_counter()
        model.recommend(ids[row], k=5)
        timings[i] = time.perf_counter() - t
    full = np.empty(min(calls, 2000))
    for i, row in enumerate(picks[: len(full)]):
        t = time.perf_counter()
        model.recommend(ids[row], k=5, half_life_days=30)
        full[i] = time.perf_counter() - t
    texts = synth_texts(text_calls, offset=len(ids))
    text_timings = np.empty(text_calls)
    for i, text in enumerate(texts):
        t = time.perf_counter()
        model.recommend_for_text(title=text.split(".")[0], body=text, k=5)
        text_timings[i] = time.perf_counter() - t
    gc.enable()

    def stats(values: np.ndarray, scale: float) -> dict[str, float]:
        return {f"p{q}": round(float(np.percentile(values, q)) * scale, 1) for q in (50, 90, 99)}

    print(
        json.dumps(
            {
                "stage": "serve",
                "articles": len(ids),
                "load_s": round(loaded - started, 2),
                "warm_s": round(warmed - loaded, 2),
                "memory_before_load_mb": before,
                "memory_after_mb": rss_mb(),
                "recommend_default_us": stats(timings, 1e6),
                "recommend_override_us": stats(full, 1e6),
                "recommend_for_text_ms": stats(text_timings, 1e3),
                "loadavg": open("/proc/loadavg").read().split()[:3],
            }
        ),
        flush=True,
    )


def validation(model_dir: Path, repeats: int = 3) -> None:
    """What validating every array (``FittedState.check``) adds to ``load_model`` and ``ModelHolder.reload``."""
    import recommender as rec
    from recommender._store import read_model

    loads, checks, reloads = [], [], []
    for _ in range(repeats):
        started = time.perf_counter()
        loaded = read_model(model_dir)  # checksums, reading, validation
        loads.append(time.perf_counter() - started)
        started = time.perf_counter()
        loaded.state.check()
        checks.append(time.perf_counter() - started)
    holder = rec.ModelHolder(model_dir)
    for _ in range(repeats):
        started = time.perf_counter()
        holder._load(*holder._newest())  # what reload() does when the digest changed: load and warm
        reloads.append(time.perf_counter() - started)
    load, check, reload = (float(np.median(v)) for v in (loads, checks, reloads))
    print(
        json.dumps(
            {"articles": len(loaded.state), "vector_entries": int(loaded.state.index.vectors.nnz),
             "read_model_s": round(load, 3), "validation_s": round(check, 3),
             "validation_share_of_load": round(check / load, 3), "reload_s": round(reload, 3),
             "validation_share_of_reload": round(check / reload, 3), "repeats": repeats, "loadavg": loadavg()}
        ),
        flush=True,
    )  # fmt: skip


def validation_parts(n: int, repeats: int = 3) -> None:
    """The two largest parts of validation (the vectors and the pools) at ``n`` articles, without a model.

    For sizes whose model takes too long to build here: the engine's own vectors of
    ``n`` SynthCorpus texts (``benchmarks/speed.py``'s cached ``engine_matrix``), a
    vocabulary of as many terms, and pools of 50 random rows per article.
    """
    sys.path.insert(0, str(shared_dir() / "bench"))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import peers
    from speed import engine_matrix

    from recommender._index import VectorIndex
    from recommender._pools import Pools
    from recommender._text import TextParams, Vocabulary

    vectors = engine_matrix(peers, n)
    latent = 20
    terms = np.array([f"t{i:07d}" for i in range(vectors.shape[1] - latent)])
    rng = np.random.default_rng(0)
    vocabulary = Vocabulary(
        terms, np.ones(terms.size, np.float32), rng.random((latent, terms.size), dtype=np.float32), 0.3
    )
    index = VectorIndex(vocabulary, TextParams(field_weights={"body": 1.0}), vectors, np.zeros(2, np.int64))
    rows = (np.arange(n)[:, None] + rng.choice(np.arange(1, n), 50, replace=False)) % n  # distinct, never itself
    pools = Pools(rows.astype(np.int32), np.sort(rng.random((n, 50), dtype=np.float32), axis=1)[:, ::-1].copy())
    timings = {"vectors_and_vocabulary_s": [], "pools_s": []}
    for _ in range(repeats):
        started = time.perf_counter()
        index.check()
        timings["vectors_and_vocabulary_s"].append(time.perf_counter() - started)
        started = time.perf_counter()
        pools.check(n)
        timings["pools_s"].append(time.perf_counter() - started)
    out = {"articles": n, "vector_entries": int(vectors.nnz), "repeats": repeats, "loadavg": loadavg()}
    out.update({name: round(float(np.median(values)), 3) for name, values in timings.items()})
    print(json.dumps(out), flush=True)


def http(model_dir: Path, requests: int = 8000, clients: int = 4, workers: int = 2) -> None:
    """``GET /articles/{id}/related`` through ``recommender serve --workers 2`` against the in-process call."""
    import socket
    import threading

    import httpx2

    import recommender as rec

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "recommender", "serve", str(model_dir), "--port", str(port),
               "--workers", str(workers)]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        holder = rec.ModelHolder(model_dir)
        ids = holder.model.article_ids
        picks = np.random.default_rng(2).integers(0, len(ids), requests)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                httpx2.get(base + "/health", timeout=2)
                break
            except httpx2.HTTPError:
                time.sleep(0.5)
        with httpx2.Client(base_url=base, timeout=30) as warmup:  # every worker warm: many calls
            for row in picks[:400]:
                warmup.get(f"/articles/{ids[row]}/related", params={"k": 5})
        timings = np.empty(requests)
        errors = [0]

        def client(part: int) -> None:
            with httpx2.Client(base_url=base, timeout=30) as session:
                for i in range(part, requests, clients):
                    t = time.perf_counter()
                    if session.get(f"/articles/{ids[picks[i]]}/related", params={"k": 5}).status_code != 200:
                        errors[0] += 1
                    timings[i] = time.perf_counter() - t

        before = loadavg()
        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        inprocess = np.empty(requests)
        for i, row in enumerate(picks):
            t = time.perf_counter()
            holder.recommend(ids[row], k=5)
            inprocess[i] = time.perf_counter() - t
        print(json.dumps({
            "articles": len(ids), "server_workers": workers, "clients": clients, "requests": requests,
            "errors": errors[0], "http_requests_per_s": round(requests / wall, 1),
            "http_p50_ms": round(float(np.percentile(timings, 50)) * 1e3, 2),
            "http_p99_ms": round(float(np.percentile(timings, 99)) * 1e3, 2),
            "in_process_p50_us": round(float(np.percentile(inprocess, 50)) * 1e6, 1),
            "in_process_p99_us": round(float(np.percentile(inprocess, 99)) * 1e6, 1),
            "loadavg_before": before, "loadavg_after": loadavg(),
        }), flush=True)  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=60)


def editorial(model_dir: Path, repeats: int = 3) -> None:
    """An editor's click as the web layer makes it (``recommender.web``'s action: pin on a copy of the served
    model, save an editorial-only version, switch this worker), how long another watching worker takes to
    serve it, and a full reload of the same model (load and warm) for comparison."""
    import shutil
    import tempfile
    import threading

    import recommender as rec
    from recommender.web import _edit

    work = Path(tempfile.mkdtemp(prefix="editorial-")) / "model"
    shutil.copytree(model_dir, work, copy_function=os.link)  # hard links: the benchmark never changes a file
    editor = rec.ModelHolder(work)
    other = rec.ModelHolder(work, watch=True, interval=0.05)
    ids = editor.model.article_ids
    clicks, pickups = [], []
    for i in range(repeats):
        started = time.perf_counter()
        _edit(editor, work, threading.Lock(), "pin", {"source_id": ids[i], "recommended_ids": [ids[i + 1]]}, "bench")
        done = time.perf_counter()
        while other.version != editor.version:
            time.sleep(0.005)
        assert other.recommend(ids[i], k=5)[0].article_id == ids[i + 1]
        clicks.append(done - started)
        pickups.append(time.perf_counter() - done)
    other.close()
    started = time.perf_counter()
    rec.load_model(work).warm()
    full = time.perf_counter() - started
    print(json.dumps({
        "articles": len(ids), "click_s": round(float(np.median(clicks)), 3),
        "picked_up_by_another_worker_s": round(float(np.median(pickups)), 3), "full_reload_s": round(full, 2),
        "repeats": repeats, "loadavg": loadavg(),
    }), flush=True)  # fmt: skip
    shutil.rmtree(work.parent, ignore_errors=True)


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "n/a"


def worker(model_dir: Path) -> None:
    import recommender as rec

    model = rec.load_model(model_dir, verify=False)
    model.recommend(model.article_ids[0], k=5)
    print(json.dumps({"stage": "worker", "memory_mb": rss_mb()}), flush=True)
    sys.stdin.read()  # stay alive until the parent has measured


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--text-calls", type=int, default=300)
    parser.add_argument("--model-dir", default=None)
    parser.add_argument(
        "--stage",
        choices=["all", "build", "serve", "worker", "validate", "validate-parts", "http", "editorial"],
        default="all",
    )
    args = parser.parse_args()
    model_dir = Path(args.model_dir or ROOT / "models" / f"bench-{args.n}")
    if not (shared_dir() / "bench" / "peers.py").exists():
        print(f"skipped: {shared_dir() / 'bench' / 'peers.py'} (SynthCorpus) not found")
        return 0
    if args.stage == "build" or (args.stage == "all" and not (model_dir / "CURRENT").exists()):
        build(args.n, model_dir)
    if args.stage == "worker":
        worker(model_dir)
        return 0
    if args.stage == "serve":
        measure(model_dir, args.calls, args.text_calls)
        return 0
    if args.stage == "validate":
        validation(model_dir)
        return 0
    if args.stage == "validate-parts":
        validation_parts(args.n)
        return 0
    if args.stage == "http":
        http(model_dir)
        return 0
    if args.stage == "editorial":
        editorial(model_dir)
        return 0
    if args.stage == "all":
        command = [sys.executable, __file__, "--model-dir", str(model_dir), "--n", str(args.n)]
        subprocess.run(
            [*command, "--stage", "serve", "--calls", str(args.calls), "--text-calls", str(args.text_calls)], check=True
        )
        workers = [
            subprocess.Popen([*command, "--stage", "worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        for process in workers:
            print(process.stdout.readline().strip(), flush=True)
        for process in workers:
            process.communicate("")
    return 0


if __name__ == "__main__":
    sys.exit(main())
