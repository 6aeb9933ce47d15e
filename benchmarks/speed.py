#!/usr/bin/env python
"""Speed of the neighbour step, and of texts -> lists, against the peers, in one run.

Corpus: ``SynthCorpus(seed=0)`` from ``../shared/bench/peers.py`` (the shared synthetic news-like corpus),
vectorised with the same ``TfidfVectorizer`` settings that peers.py uses (``make_vectorizer``), cached where
peers.py caches it (``$TMPDIR/peers-cache``).

Two comparisons:

* ``--mode neighbours``: the all-pairs top-``k`` step alone on that one sparse matrix. Methods: ``ours``
  (``top_neighbours``, compiled engine), ``ours_scipy`` (``top_neighbours(engine="scipy")``, the engine before
  the compiled one), ``sparse_dot_topn``, ``sklearn_brute`` (N <= 10k only: it holds an N x N block),
  ``gensim`` (``SparseMatrixSimilarity``). Each is timed ``--repeats`` times (median printed); the first call of
  ``ours`` also compiles the kernels, so one untimed warm-up call on a tiny matrix comes first. Printed per
  method: median seconds, peak RSS growth during the step (VmHWM reset before it), recall@k on a 1000-row sample
  against exact top-k (tie-aware, exactly as peers.py measures it), and the ratio peer / ours.
* ``--mode end-to-end``: texts in, every list out. ``rec.Recommender(n_jobs=threads).fit(frame)`` +
  ``recommend_frame(k)`` (our default configuration: three fields, latent blend, pool 50, duplicate groups,
  ranking), ``ours_approx`` (the same with ``mode="approx"``), against ``TfidfVectorizer().fit_transform`` +
  ``sparse_dot_topn`` + the per-row id lists. ``--stages`` also prints the stage times of each ``fit`` (the
  ``recommender`` logger at INFO: vectorising, neighbours, copy groups), of ``recommend_frame``, and the peer's
  vectorising and top-n.

* ``--mode scale``: our engine alone at large N (e.g. 1M), stage by stage: generating the texts, validating,
  vectorising (the engine's own ``fit_vocabulary``: three fields + latent columns), copy groups, and the
  neighbour step (``--nmode approx`` by default), each with its time and peak RSS growth.

Methods of ``--mode neighbours`` also include ``ours_approx`` (``top_neighbours(mode="approx")``);
``--engine-vectors`` runs every method on the engine's own vectors instead of peers.py's TF-IDF matrix.

Usage (from the repository root, with ``pip install -e '.[bench]'``)::

    python benchmarks/speed.py --n 10000                      # neighbour step, all peers
    python benchmarks/speed.py --n 100000 --methods ours,sparse_dot_topn
    python benchmarks/speed.py --n 10000 --mode end-to-end
    python benchmarks/speed.py --n 100000 --methods ours,ours_approx,sparse_dot_topn --engine-vectors
    python benchmarks/speed.py --n 1000000 --mode scale

Output: a table on stdout and, with ``--json PATH``, the records as JSON lines. Timings on a shared machine are
noisy: compare ratios within one run, and read the load average printed before and after.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import statistics
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import scipy.sparse as sp
from corpora import shared_dir

BENCH_DIR = shared_dir() / "bench"
#: This script's own stage times (``--stages``): the peer's and ``recommend_frame``'s.
STAGES = logging.getLogger("speed")
METHODS = ("ours", "ours_approx", "ours_scipy", "sparse_dot_topn", "sklearn_brute", "gensim")
SKLEARN_MAX_N = 10_000


def load_peers():
    """The shared peers module, or None (with a message) when ../shared/bench is absent."""
    if not (BENCH_DIR / "peers.py").is_file():
        print(
            f"skipped: {BENCH_DIR / 'peers.py'} not found (the shared benchmark folder beside the repository, or "
            "$RECOMMENDER_SHARED)."
        )
        return None
    sys.path.insert(0, str(BENCH_DIR))
    import peers

    return peers


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


class Peak:
    """Peak RSS growth of a step: the kernel's VmHWM reset before it, plus a 20 ms sampler as a fallback."""

    def __init__(self, peers):
        self.peers = peers

    def __enter__(self):
        gc.collect()
        self.base = self.peers.rss_mb()
        self.hwm_ok = self.peers.reset_hwm()
        self.sampled = self.base
        self.done = False

        def sample():
            while not self.done:
                self.sampled = max(self.sampled, self.peers.rss_mb())
                time.sleep(0.02)

        self.thread = threading.Thread(target=sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done = True
        self.thread.join()
        peak = self.peers.hwm_mb() if self.hwm_ok else self.sampled
        self.growth_mb = max(0.0, peak - self.base)


# ---------------------------------------------------------------------------------------------- methods


def run_ours(X, k, threads):
    from recommender._neighbours import top_neighbours

    return top_neighbours(X, k, n_jobs=threads)[0]


def run_ours_approx(X, k, threads):
    from recommender._neighbours import top_neighbours

    return top_neighbours(X, k, n_jobs=threads, mode="approx")[0]


def run_ours_scipy(X, k, threads):
    from recommender._neighbours import top_neighbours

    return top_neighbours(X, k, n_jobs=threads, engine="scipy")[0]


def run_sparse_dot_topn(X, k, threads):
    from sparse_dot_topn import sp_matmul_topn

    C = sp_matmul_topn(X, X.T, top_n=k + 1, sort=True, n_threads=threads)
    return _csr_ids(C, k)


def _csr_ids(C, k):
    """CSR with <= k+1 entries per row, self included -> (n, k) ids by score, self removed, -1 padded."""
    C = C.tocsr()
    n = C.shape[0]
    ids = np.full((n, k), -1, dtype=np.int64)
    for i in range(n):
        a, b = C.indptr[i], C.indptr[i + 1]
        cols = C.indices[a:b][np.argsort(-C.data[a:b], kind="stable")]
        cols = cols[cols != i][:k]
        ids[i, : len(cols)] = cols
    return ids


def run_sklearn_brute(X, k, threads):
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k + 1, metric="cosine", algorithm="brute", n_jobs=threads).fit(X)
    ind = nn.kneighbors(X, return_distance=False)
    return np.array([[j for j in row if j != i][:k] for i, row in enumerate(ind)], dtype=np.int64)


def run_gensim(X, k, threads, chunk=1024):
    from gensim.matutils import Sparse2Corpus
    from gensim.similarities import SparseMatrixSimilarity

    n = X.shape[0]
    index = SparseMatrixSimilarity(
        Sparse2Corpus(X, documents_columns=False),
        num_features=X.shape[1],
        num_docs=n,
        num_nnz=int(X.nnz),
        num_best=k + 1,
        dtype=np.float32,
    )
    ids = np.full((n, k), -1, dtype=np.int64)
    for s in range(0, n, chunk):
        for j, best in enumerate(index[X[s : s + chunk]]):
            found = [d for d, _ in best if d != s + j][:k]
            ids[s + j, : len(found)] = found
    return ids


RUNNERS = {
    "ours": run_ours,
    "ours_approx": run_ours_approx,
    "ours_scipy": run_ours_scipy,
    "sparse_dot_topn": run_sparse_dot_topn,
    "sklearn_brute": run_sklearn_brute,
    "gensim": run_gensim,
}


def available(method: str) -> str | None:
    """None when the method can run, else why not."""
    module = {"sparse_dot_topn": "sparse_dot_topn", "gensim": "gensim", "ours": "numba", "ours_approx": "numba"}.get(
        method
    )
    if module is None:
        return None
    try:
        __import__(module)
    except ImportError:
        return f"{module} not installed (pip install -e '.[bench]')"
    return None


# ---------------------------------------------------------------------------------------------- modes


def matrix(peers, n):
    args = SimpleNamespace(
        corpus="synthetic",
        n=n,
        text_cols=None,
        no_cache=False,
        cache_dir=str(Path(__import__("tempfile").gettempdir()) / "peers-cache"),
    )
    X, meta, _ = peers.get_matrix(args)
    return sp.csr_matrix(X, dtype=np.float32), meta


def engine_matrix(peers, n):
    """The engine's own vectors of the first N SynthCorpus texts (three fields + latent columns), cached."""
    import recommender as rec
    from recommender._articles import validate_articles
    from recommender._text import FIELDS, fit_vocabulary

    path = Path(__import__("tempfile").gettempdir()) / "peers-cache" / f"engine-vectors-{rec.__version__}-n{n}.npz"
    if path.is_file():
        return sp.load_npz(path).tocsr()
    table = validate_articles(synth_frame(peers, n))
    vectors = fit_vocabulary({f: table[f].tolist() for f in FIELDS}, rec.Recommender().text_params())[1]
    vectors = sp.csr_matrix(vectors, dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sp.save_npz(path, vectors, compressed=False)
    return vectors


def real_matrix(peers, name):
    """peers.py's TF-IDF over title + body of a shared research corpus (benchmarks/corpora.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import corpora

    frame = {"bbc": corpora.load_bbc, "20newsgroups": corpora.load_20newsgroups, "reuters": corpora.load_reuters}[
        name
    ]()
    texts = (frame["title"] + " " + frame["body"]).tolist()
    return sp.csr_matrix(peers.make_vectorizer().fit_transform(texts), dtype=np.float32)


def neighbours_mode(peers, args, n):
    if args.corpus != "synthetic":
        X = real_matrix(peers, args.corpus)
        n = X.shape[0]
    else:
        X = engine_matrix(peers, n) if args.engine_vectors else matrix(peers, n)[0]
    corpus = "SynthCorpus(seed=0)" if args.corpus == "synthetic" else args.corpus
    print(
        f"\n## neighbour step: {corpus} N={n:,}, "
        f"{'engine vectors (with latent columns)' if args.engine_vectors else 'peers.py TF-IDF'}, "
        f"k={args.k}, threads={args.threads}, "
        f"{X.shape[1]:,} terms, {X.nnz / n:.0f} terms/row; loadavg before {loadavg()}"
    )
    if "ours" in args.methods or "ours_approx" in args.methods:
        from recommender._neighbours import top_neighbours

        t = time.perf_counter()
        top_neighbours(X[:50], args.k, n_jobs=args.threads)  # compile, or load the cached kernels
        top_neighbours(X[:50], args.k, n_jobs=args.threads, mode="approx")
        print(f"ours: kernel compile/load {time.perf_counter() - t:.2f} s (not timed below)")
    rng = np.random.default_rng(12345)
    sample = np.sort(rng.choice(n, min(1000, n), replace=False))
    records = []
    for method in args.methods:
        why = available(method)
        if why is None and method == "sklearn_brute" and n > SKLEARN_MAX_N:
            why = f"N > {SKLEARN_MAX_N:,} (it holds an N x N block)"
        if why:
            print(f"{method:16s} skipped: {why}", flush=True)
            continue
        times, peaks = [], []
        for _ in range(args.repeats):
            ids = None
            gc.collect()
            with Peak(peers) as peak:
                t = time.perf_counter()
                ids = RUNNERS[method](X, args.k, args.threads)
                times.append(time.perf_counter() - t)
            peaks.append(peak.growth_mb)
        recall, strict = peers.recall_vs_exact(X, np.asarray(ids, dtype=np.int64), sample, args.k)
        record = dict(
            mode="neighbours",
            method=method,
            n=n,
            k=args.k,
            threads=args.threads,
            seconds=statistics.median(times),
            runs=[round(x, 3) for x in times],
            peak_growth_mb=round(max(peaks), 1),
            recall=round(recall, 4),
            recall_strict=round(strict, 4),
        )
        records.append(record)
        print(
            f"{method:16s} {record['seconds']:8.3f} s  runs {record['runs']}  peak +{record['peak_growth_mb']:.0f} MB"
            f"  recall@{args.k} {record['recall']:.4f} (strict {record['recall_strict']:.4f})",
            flush=True,
        )
    print(f"loadavg after {loadavg()}")
    ratios(records)
    return records


def synth_frame(peers, n):
    """SynthCorpus texts ("Title. summary. body.") as an article table."""
    import pandas as pd

    rows = [t.split(". ", 2) for t in peers.SynthCorpus(seed=0).texts(n)]
    return pd.DataFrame(
        {
            "article_id": [f"s{i}" for i in range(n)],
            "title": [r[0] for r in rows],
            "summary": [r[1] if len(r) > 1 else "" for r in rows],
            "body": [r[2] if len(r) > 2 else "" for r in rows],
        }
    )


def e2e_ours(peers, frame, texts, k, threads):
    import recommender as rec

    model = rec.Recommender(n_jobs=threads).fit(frame)
    started = time.perf_counter()
    lists = model.recommend_frame(k=k)
    STAGES.info("recommend_frame in %.1f s", time.perf_counter() - started)
    return len(lists)


def e2e_ours_approx(peers, frame, texts, k, threads):
    import recommender as rec

    model = rec.Recommender(n_jobs=threads, mode="approx").fit(frame)
    lists = model.recommend_frame(k=k)
    return len(lists)


def e2e_sparse_dot_topn(peers, frame, texts, k, threads):
    from sparse_dot_topn import sp_matmul_topn

    started = time.perf_counter()
    X = peers.make_vectorizer().fit_transform(texts).tocsr()
    vectorised = time.perf_counter()
    C = sp_matmul_topn(X, X.T, top_n=k + 1, sort=True, n_threads=threads)
    ids = _csr_ids(C, k)
    STAGES.info(
        "peer: vectorised (TfidfVectorizer.fit_transform, one thread) in %.1f s; top-n and id lists in %.1f s",
        vectorised - started, time.perf_counter() - vectorised,
    )  # fmt: skip
    return int((ids >= 0).sum())


def end_to_end_mode(peers, args, n):
    frame = synth_frame(peers, n)
    texts = peers.SynthCorpus(seed=0).texts(n)
    print(
        f"\n## end to end (texts in, all top-{args.k} lists out): SynthCorpus(seed=0) N={n:,}, "
        f"threads={args.threads}; loadavg before {loadavg()}"
    )
    if "ours" in args.methods:
        from recommender._neighbours import top_neighbours

        top_neighbours(sp.identity(60, dtype=np.float32, format="csr"), args.k)  # compile or load the kernels
    records = []
    runners = (("ours", e2e_ours), ("ours_approx", e2e_ours_approx), ("sparse_dot_topn", e2e_sparse_dot_topn))
    for method, runner in runners:
        if method not in args.methods:
            continue
        why = available(method)
        if why:  # a peer asked for that is not installed is said so, not left out in silence
            print(f"{method:16s} skipped: {why}", flush=True)
            continue
        times, peaks = [], []
        for _ in range(args.repeats):
            gc.collect()
            with Peak(peers) as peak:
                t = time.perf_counter()
                runner(peers, frame, texts, args.k, args.threads)
                times.append(time.perf_counter() - t)
            peaks.append(peak.growth_mb)
        record = dict(
            mode="end-to-end",
            method=method,
            n=n,
            k=args.k,
            threads=args.threads,
            seconds=statistics.median(times),
            runs=[round(x, 3) for x in times],
            peak_growth_mb=round(max(peaks), 1),
        )
        records.append(record)
        print(
            f"{method:16s} {record['seconds']:8.3f} s  runs {record['runs']}  peak +{record['peak_growth_mb']:.0f} MB",
            flush=True,
        )
    print(f"loadavg after {loadavg()}")
    ratios(records)
    return records


def scale_mode(peers, args, n):
    """Our engine alone at large N, stage by stage: texts, vectors (the engine's own), neighbours (``--nmode``)."""
    import recommender as rec
    from recommender._articles import validate_articles
    from recommender._duplicates import copy_labels, text_keys
    from recommender._neighbours import top_neighbours
    from recommender._text import FIELDS, fit_vocabulary

    print(
        f"\n## scale: SynthCorpus(seed=0) N={n:,}, our engine alone, mode={args.nmode}, pool={args.k}, "
        f"threads={args.threads}; loadavg before {loadavg()}",
        flush=True,
    )
    top_neighbours(sp.identity(60, dtype=np.float32, format="csr"), 2, mode=args.nmode)  # compile or load kernels
    stages = {}

    def stage(name, fn):
        gc.collect()
        with Peak(peers) as peak:
            t = time.perf_counter()
            value = fn()
            stages[name] = dict(seconds=round(time.perf_counter() - t, 2))
        stages[name]["peak_growth_mb"] = round(peak.growth_mb)
        stages[name]["peak_rss_mb"] = round(peak.base + peak.growth_mb)  # RSS before the stage + its growth
        stages[name]["rss_mb"] = round(peers.rss_mb())
        print(
            f"  {name:12s} {stages[name]['seconds']:9.2f} s  peak +{peak.growth_mb:.0f} MB  "
            f"(RSS after {stages[name]['rss_mb']} MB)",
            flush=True,
        )
        return value

    frame = stage("generate", lambda: synth_frame(peers, n))
    table = stage("validate", lambda: validate_articles(frame))
    frame = None  # free the texts
    params = rec.Recommender().text_params()
    vectors = stage("vectorise", lambda: fit_vocabulary({f: table[f].tolist() for f in FIELDS}, params)[1])
    groups = stage("copy_labels", lambda: copy_labels(text_keys(table["title"], table["summary"], table["body"])))
    table = None
    vectors = sp.csr_matrix(vectors, dtype=np.float32)
    done = [0]

    def tick(count):  # the progress callable of top_neighbours: a line per tenth of the rows
        before = done[0] * 10 // n
        done[0] += count
        if done[0] * 10 // n > before:
            print(f"    neighbours: {done[0]:,} / {n:,} rows", flush=True)

    stage(
        "neighbours",
        lambda: top_neighbours(
            vectors,
            args.k,
            copy_labels=groups,
            n_jobs=args.threads,
            mode=args.nmode,
            progress=tick,
        ),
    )
    assert done[0] == n
    print(
        f"  process peak RSS (largest RSS before a stage + its growth) "
        f"{max(v['peak_rss_mb'] for v in stages.values())} MB; loadavg after {loadavg()}",
        flush=True,
    )
    return [
        dict(
            mode="scale",
            method="ours",
            nmode=args.nmode,
            n=n,
            k=args.k,
            threads=args.threads,
            stages=stages,
            peak_rss_mb=max(v["peak_rss_mb"] for v in stages.values()),
        )
    ]


def ratios(records):
    """Each peer's time over each of our methods' time (ours, ours_approx), same run."""
    for ours in (r for r in records if r["method"] in ("ours", "ours_approx")):
        for r in records:
            if r is not ours and not (ours["method"] == "ours_approx" and r["method"] == "ours"):
                print(
                    f"  {r['method']:16s} / {ours['method']:11s} = {r['seconds'] / ours['seconds']:6.2f}x time"
                    f"   ({ours['method']} / {r['method']} = {ours['seconds'] / r['seconds']:.3f})"
                )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[10_000], help="corpus sizes (first N documents)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument(
        "--mode",
        choices=("neighbours", "end-to-end", "both", "scale"),
        default="neighbours",
        help="scale: our engine alone, stage by stage (generate, vectorise, neighbours), e.g. N=1M",
    )
    ap.add_argument("--nmode", choices=("exact", "approx"), default="approx", help="neighbour mode of --mode scale")
    ap.add_argument(
        "--engine-vectors",
        action="store_true",
        help="neighbours mode: the engine's own vectors (three fields + 20 latent columns, copy groups) "
        "instead of peers.py's TF-IDF matrix; peers then run on those vectors too",
    )
    ap.add_argument(
        "--corpus",
        choices=("synthetic", "bbc", "20newsgroups", "reuters"),
        default="synthetic",
        help="neighbours mode: a shared research corpus (read from ../shared/data) instead of SynthCorpus; --n is ignored",
    )
    ap.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, from {','.join(METHODS)}")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="append the records as JSON lines to this file")
    ap.add_argument("--stages", action="store_true", help="end-to-end: print each fit's stage times (INFO log)")
    args = ap.parse_args(argv)
    if args.stages:
        stages = logging.StreamHandler(sys.stdout)
        stages.setFormatter(logging.Formatter("    stage: %(message)s"))
        for name in ("recommender", STAGES.name):
            logging.getLogger(name).addHandler(stages)
            logging.getLogger(name).setLevel(logging.INFO)
    args.methods = [m for m in args.methods.split(",") if m]
    unknown = set(args.methods) - set(METHODS)
    if unknown:
        ap.error(f"unknown methods {sorted(unknown)}; choose from {METHODS}")
    peers = load_peers()
    if peers is None:
        return 0
    records = []
    for n in args.n:
        if args.mode in ("neighbours", "both"):
            records += neighbours_mode(peers, args, n)
        if args.mode in ("end-to-end", "both"):
            records += end_to_end_mode(peers, args, n)
        if args.mode == "scale":
            records += scale_mode(peers, args, n)
    if args.json:
        with open(args.json, "a") as f:
            for r in records:
                f.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
