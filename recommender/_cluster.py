"""The build on a Dask cluster: the fitted state of a one-process fit, bit for bit, from tasks run by the workers.

The steps (a task per input partition or per block of rows; the client merges the small results):

1. **Articles.** File paths are read by the workers, a Dask DataFrame's partitions
   are computed there, a pandas frame is cut into chunks here and each chunk is
   validated by a worker. Every partition is validated by the rules of
   :func:`~recommender.load_articles` and reports every row; the reports are
   joined here (:func:`~recommender._articles.joined_parts`), so that the rows
   kept, their reasons, order and flags, and strict's error, are those of one
   table (an id kept in an earlier partition makes a row a duplicate whatever
   else it lacks; the first valid occurrence is kept). The texts stay on the
   workers.
2. **Terms.** Each partition counts its terms (``count_fields``); the workers add
   up the document frequencies of every term in a merge tree (a few partitions a
   task), the client keeps the vocabulary and idf exactly as ``fit_vocabulary``
   does, and each partition's terms are mapped to their columns on the workers.
3. **Vectors.** The rows are cut into blocks of at most ``block_rows`` rows, in
   order (a block may span partitions). Each block computes its TF-IDF rows; the
   client gathers only the rows the latent components are fitted on
   (``latent_sample``, as a one-process fit does), fits them once and ships them:
   each block blends its own rows. The client gathers the blended blocks (it
   writes the model) while the search runs.
4. **Neighbours.** Tiles of blocks ``a <= b``: a tile gives partial pools for the
   rows of both blocks from the pairs that share a term (``tile_pools``). Each
   block's own tile runs first, then the tiles of near blocks before those of far
   ones. Each block's partial pools are merged as its tiles finish (a chain of
   merges), and a tile's bars are its two blocks' pools merged so far, from the
   tiles submitted a few per worker before it: a pair below a full pool's last
   entry is not offered (the more tiles have run, the fewer pairs are offered).
   The last tile of each worker runs as two tasks, each of half its first
   block's rows: shorter last tasks, so that the workers end closer together.
   Once a block's tiles are all merged, its rows whose pool a pair sharing no
   term could still enter (``unsettled_rows``) are searched again against every
   block (``sweep_pools``). Each pair is summed in the one fixed order of the
   one-process search, so the pools are the same bit for bit.
5. **The rest** (text keys and copy signatures, computed per partition;
   duplicate groups, popularity, the catalogue) is assembled here, with the
   ``n_jobs`` threads of the model.

Memory per worker: one partition's articles while its task runs (a pandas frame is
sent in chunks of at most ``_CHUNK_CHARS`` characters of text; the texts are not kept
once the task has run, see ``_arguments_dropped``), then its share of the partitions'
term counts and the blocks' vectors, and per running tile two blocks, one block's
posting lists with its most frequent terms as dense columns (at most 64 MB, see
``heavy_columns``) and the partial pools of both (about ``2 * block_rows * pool_size * 8``
bytes). Everything that grows with the corpus is Dask's managed memory, which Dask
spills to the worker's disk beyond its memory target: a task's result is released
once it is used (the client holds no tile's result; merges run ahead of the waiting
tiles), and the tasks hand their freed heap back to the system. No worker holds the
whole matrix. The client holds what the model holds: vectors, pools and the
catalogue (no texts).

Nothing needs a shared file system: data travels through Dask (only file inputs
must be readable by the workers). A worker that dies is replaced by its nanny and
its tasks are computed again from their inputs; the result is the same.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import itertools
import logging
import math
import operator
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._articles import cut_articles, joined_parts, read_part, read_partition, validate_part
from ._catalogue import table_of
from ._duplicates import Signatures, copy_labels, signatures, text_keys
from ._errors import SchemaError
from ._neighbours import (
    dense_columns,
    dense_norms,
    finished,
    merged_pools,
    merged_sorted,
    single_threaded,
    sweep_pools,
    thread_count,
    tile_pools,
    unsettled_rows,
)
from ._pools import Pools
from ._progress import bar as progress_bar
from ._state import FittedState, Settings, Stages, assemble_state
from ._text import (
    FIELDS,
    FieldCounts,
    TextParams,
    Vocabulary,
    blend,
    count_fields,
    document_frequencies,
    kept_terms,
    latent_sample,
    sample_components,
    tfidf_rows,
)

__all__ = ["BLOCK_ROWS", "DASK_HINT", "WORKER_CONFIG", "check_inputs", "connected", "distributed", "fit_on_dask"]

logger = logging.getLogger("recommender")

DASK_HINT = "pip install 'recommender[dask]'"
#: Most rows per block of the neighbour search on Dask (a tile holds two blocks); fewer when that leaves too
#: few tiles to keep every worker busy (see ``_block_rows``).
BLOCK_ROWS = 20_000
#: Tiles per worker that the default block size aims at, at least: uneven tiles then even out (at 100k articles on
#: two workers, 21 tiles of 6 blocks left no worker idle at the end, where 15 tiles of 5 blocks left one worker
#: idle for 2.2 s while the other ran the last tile; a scratch run of Dask's task stream).
_TILES_PER_WORKER = 8
#: Chunks per worker that a pandas frame is sent in, at least: the partitions' tasks even out across the workers.
_CHUNKS_PER_WORKER = 4
#: Most characters of text (title, summary and body together) per chunk of a pandas frame. A partition's task
#: holds about eight times its text at its peak (the texts, their tokens and term counts, the copy signatures:
#: +127 MB for 5,000 articles of 2,300 characters, +389 MB for 20,000, in one process), so chunks of a bounded
#: text size keep that peak the same whatever the corpus's size.
_CHUNK_CHARS = 8_000_000
#: Priority of the tasks that free memory or finish a block (merges, the search of unsettled rows) over the
#: tiles submitted before them and still waiting to run (Dask runs the tasks submitted first first).
_SOON = 1
#: Partial pools merged per task of the merge tree of the unsettled rows' sweeps: two, so that partial pools
#: wait for one other part at most.
_FAN_IN = 2
#: Partitions' terms merged per task of the merge tree of the vocabulary.
_TERMS_FAN_IN = 4
#: A tile's bars are its blocks' pools merged from the tiles submitted this many per worker before it (those have
#: run by then, mostly, so that a tile seldom waits for its bars).
_BAR_LAG = 2
#: Retries of a task that raised (a task whose worker died is rescheduled by Dask, not counted here).
_RETRIES = 2


#: Dask settings of the worker processes that ``connected`` starts itself:
#:
#: - no statistical profiler (it samples every thread's stack every 10 ms; a build's tasks are compiled loops it
#:   cannot see into, and the build at 100k on two workers took 45.2 s and 46.1 s without it, 46.0-47.7 s with it);
#: - managed memory spilled to the worker's disk from 50% of ``memory_limit`` (Dask: 60%), and from a process
#:   memory of 60% (Dask: 70%). What a worker of the build cannot spill (the libraries, the compiled kernels, the
#:   running task) is about 500 MB whatever N; what grows with N (its share of the blocks' vectors, the partial
#:   pools) is managed. Under 1 GiB, peak worker RSS was 631 / 682 / 681 MB at 100k / 200k / 400k articles with
#:   these thresholds, 679 MB and 796 MB at 100k and 400k with Dask's (``docs/performance.md``).
#:
#: For a cluster of your own, set ``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False``,
#: ``DASK_DISTRIBUTED__WORKER__MEMORY__TARGET=0.5`` and ``DASK_DISTRIBUTED__WORKER__MEMORY__SPILL=0.6`` where the
#: workers start.
WORKER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.worker.memory.target": 0.5,
    "distributed.worker.memory.spill": 0.6,
}


def distributed() -> Any:
    """``dask.distributed``, imported on first use; a clear error when Dask is not installed."""
    try:
        from dask import distributed as module
    except ImportError as exc:
        raise ImportError(
            f"Running on Dask (client=, workers=, --workers or --scheduler) needs dask.distributed, which cannot "
            f"be imported ({exc}). Install it with: {DASK_HINT}"
        ) from None
    return module


@contextlib.contextmanager
def connected(client: Any, workers: int | None) -> Iterator[Any]:
    """The Dask client to run on: ``client`` itself, a client of the scheduler address ``client``, or (``client``
    None) a local cluster of ``workers`` single-threaded worker processes, closed at the end."""
    module = distributed()
    with contextlib.ExitStack() as stack:
        if isinstance(client, str):
            client = stack.enter_context(module.Client(client))
        elif client is None:
            from dask import config  # importable: distributed() was

            with config.set(WORKER_CONFIG):
                cluster = stack.enter_context(
                    module.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
                )
            client = stack.enter_context(module.Client(cluster))
        yield client


#: Name of the worker plugin a build registers for its duration (:func:`_arguments_dropped`).
_PLUGIN = "recommender-drop-arguments"


@contextlib.contextmanager
def _arguments_dropped(client: Any) -> Iterator[None]:
    """While the build runs, a worker drops the arguments of a :data:`_CARRIERS` task as soon as it has run.

    A Dask worker keeps a task's arguments (its ``run_spec``) as long as it keeps the task, and it keeps a task
    that has run as long as a task that depends on it is kept: a pandas chunk's texts, sent inside its partition's
    task, would stay on the worker until the TF-IDF rows are computed from the partition's term counts, i.e.
    the texts of every partition a worker read (412-426 MB per worker at 400k articles, where a worker then
    paused for good). The scheduler keeps its own copy to send again, should the task have to run again.
    Without the plugin (a Dask whose worker state differs), the build is the same, and holds more memory; so is a
    build that runs beside another on the same cluster after the other has ended and removed the plugin.
    """
    try:
        client.register_plugin(_dropping_plugin(), name=_PLUGIN)
    except Exception as exc:  # an optional saving: the build goes on without it
        logger.info("fit: the workers keep the arguments of the tasks that have run (%s)", exc)
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            client.unregister_worker_plugin(_PLUGIN)


def _dropping_plugin() -> Any:
    """The worker plugin of :func:`_arguments_dropped` (a class made here: ``distributed`` is imported on use)."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class DropArguments(WorkerPlugin):  # pickled by value (cloudpickle): the workers need no such name
        def __init__(self) -> None:
            self.tasks: dict = {}

        def setup(self, worker: Any) -> None:
            self.tasks = worker.state.tasks

        def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
            # only a task that has just run: one on its way to run again passes through "released" after its new
            # arguments are set (from "fetch", "flight" or "error"), and must keep them
            if start == "executing" and finish == "memory" and isinstance(key, str) and key.startswith(_CARRIERS):
                task = self.tasks.get(key)
                if task is not None and task.state == "memory":
                    task.run_spec = None  # a task sent again to run comes with its arguments again

    return DropArguments()


# --------------------------------------------------------------------------- tasks (run by the workers)


def _trim_heap() -> None:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``; nothing where there is none).

    A task's temporaries (a partition's texts and tokens, a tile's posting lists) are freed when it ends, but
    glibc keeps most of those pages: the worker's memory would then stay at its largest task's high-water mark
    plus the fragments, which Dask sees as "unmanaged" memory it cannot spill, and pauses the worker on.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _task(task: Callable[..., Any]) -> Callable[..., Any]:
    """A task run by a worker: its compiled loops on the worker's thread that runs it (``single_threaded``), and
    its freed memory handed back to the system when it ends (:func:`_trim_heap`)."""

    @functools.wraps(task)
    def run(*args: Any) -> Any:
        single_threaded()
        try:
            return task(*args)
        finally:
            _trim_heap()

    return run


def _parts_of(frame: pd.DataFrame, report: dict[str, Any], params: TextParams) -> dict[str, Any]:
    """Everything the build needs from one partition's validated articles, in one task (the texts are not kept):
    its report for the check of ids (``joined_parts``), the catalogue rows with exact-copy keys and copy
    signatures, the term counts."""
    return {
        "provenance": report,
        "described": {
            "table": table_of(frame),
            "keys": text_keys(frame["title"], frame["summary"], frame["body"]),
            "signatures": signatures(frame["title"].tolist(), frame["summary"].tolist(), frame["body"].tolist()),
        },
        "counts": count_fields({f: frame[f].tolist() for f in FIELDS}, params, n_jobs=1),
    }


@_task
def _front_of_chunk(part: pd.DataFrame, now: pd.Timestamp, params: TextParams) -> dict[str, Any]:
    return _parts_of(*validate_part(part, now), params)


@_task
def _front_of_path(path: str, now: pd.Timestamp, params: TextParams) -> dict[str, Any]:
    try:
        valid, report = read_part(path, now)
    except (SchemaError, OSError) as exc:  # the input's fault: said once, not retried
        return {"provenance": {"error": exc}}
    return _parts_of(valid, report, params)


@_task
def _front_of_partition(part: pd.DataFrame, position: int, now: pd.Timestamp, params: TextParams) -> dict[str, Any]:
    try:
        valid, report = read_partition(part, position, now)
    except SchemaError as exc:
        return {"provenance": {"error": exc}}
    return _parts_of(valid, report, params)


def _part(front: dict[str, Any], name: str) -> Any:
    """One part of a partition's result (None where reading it failed: the client raises that error)."""
    return front.get(name)


def _kept_rows(n: int, drop: np.ndarray) -> np.ndarray:
    keep = np.ones(n, dtype=bool)
    keep[drop] = False
    return np.flatnonzero(keep)


def _kept_described(described: dict[str, Any], drop: np.ndarray) -> dict[str, Any]:
    """A partition's catalogue rows, keys and signatures without the rows ``drop`` (ids seen in an earlier
    partition)."""
    rows = _kept_rows(len(described["keys"]), drop)
    sigs = described["signatures"]
    return {
        "table": described["table"].iloc[rows].reset_index(drop=True),
        "keys": described["keys"][rows],
        "signatures": None if sigs is None else sigs.take(rows),
    }


def _kept_counts(counts: FieldCounts, drop: np.ndarray) -> FieldCounts:
    """A partition's term counts without the rows ``drop``."""
    n = counts.n_docs
    rows = _kept_rows(n, drop)
    stacked = np.concatenate([f * n + rows for f in range(len(counts.weights))] or [np.empty(0, dtype=np.int64)])
    return FieldCounts(counts.terms, counts.counts[stacked], counts.weights, int(rows.size))


def _frequencies(counts: FieldCounts | None) -> tuple[np.ndarray, np.ndarray, int] | None:
    """A partition's terms and their document frequencies (None for a partition that could not be read)."""
    return None if counts is None else (counts.terms, document_frequencies(counts), counts.n_docs)


@_task
def _terms_union(*parts: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Every term of ``parts`` (each sorted terms and their document frequencies first) once, in code point order
    (np.unique's order, as ``fit_vocabulary``'s), with its document frequencies summed."""
    terms, where = np.unique(np.concatenate([p[0] for p in parts]), return_inverse=True)
    df = np.zeros(terms.size, dtype=np.int64)
    np.add.at(df, where.ravel(), np.concatenate([np.asarray(p[1], dtype=np.int64) for p in parts]))
    return terms, df


def _term_columns(frequencies: tuple[np.ndarray, ...], vocabulary: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """A partition's term columns: the column of each of its terms in the vocabulary, -1 for a term not kept
    (``vocabulary``: every term, sorted, and its column)."""
    terms, column_of = vocabulary
    return column_of[np.searchsorted(terms, frequencies[0])]


@_task
def _tfidf(pieces: list[tuple[FieldCounts, int, int, np.ndarray]], idf: np.ndarray) -> sp.csr_matrix:
    """One block's TF-IDF rows from its pieces: (a partition's counts, start, stop, the partition's term columns)."""
    parts = [tfidf_rows(counts, start, stop, column_of, idf) for counts, start, stop, column_of in pieces]
    return parts[0] if len(parts) == 1 else sp.vstack(parts, format="csr")


def _rows(matrix: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
    return matrix[rows]


@_task
def _blended(tfidf: sp.csr_matrix, latent: tuple[np.ndarray | None, float]) -> sp.csr_matrix:
    components, weight = latent
    return blend(tfidf, Vocabulary(np.array([], dtype=str), np.array([], dtype=np.float32), components, weight))


def _same(value: Any) -> Any:
    return value


#: Keys of the tasks whose arguments carry data (a pandas chunk's texts, the shared arrays, a block's term maps),
#: which a worker drops once they have run (:func:`_arguments_dropped`). A key is the task's name and a random
#: suffix, Dask naming a task after its function: the names are taken from the functions themselves.
_CARRIERS = tuple(f"{task.__name__}-" for task in (_front_of_chunk, _same, _tfidf))


@_task
def _tile(*args: Any) -> Any:
    return tile_pools(*args)


@_task
def _sweep(*args: Any) -> Any:
    return sweep_pools(*args)


@_task
def _merged(*parts: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return merged_pools(list(parts))


@_task
def _merged_side(
    pools: tuple[np.ndarray, np.ndarray], tile: Any, side: int, start: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``pools`` merged with the partial pools of one side of a tile: those of rows ``start`` on of ``pools`` (a
    tile of part of a block's rows, see ``_Search``)."""
    part = tile[side]
    stop = start + len(part[0])
    if start == 0 and stop == len(pools[0]):
        return merged_sorted(pools, part)
    rows, sims = np.array(pools[0]), np.array(pools[1])
    rows[start:stop], sims[start:stop] = merged_sorted((rows[start:stop], sims[start:stop]), part)
    return rows, sims


def _row_range(value: Any, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of a matrix, an array or pools ``(rows, similarities)``."""
    if isinstance(value, tuple):
        return tuple(_row_range(v, start, stop) for v in value)
    return value[start:stop]


def _column_counts(vectors: sp.csr_matrix) -> np.ndarray:
    return np.bincount(vectors.indices, minlength=vectors.shape[1])


def _dense_columns(n: int, *counts: np.ndarray) -> np.ndarray:
    return dense_columns(np.sum(counts, axis=0), n)


def _top(*norms: np.ndarray) -> float:
    return max((float(x.max()) for x in norms if x.size), default=0.0)


@_task
def _unsettled(merged: tuple[np.ndarray, np.ndarray], norms: np.ndarray, top: float) -> np.ndarray:
    return unsettled_rows(norms, merged[0], merged[1], top)


# --------------------------------------------------------------------------- the client's side


@dataclass(frozen=True)
class _Block:
    """Global rows ``offset:offset + size``: rows ``start:stop`` of each ``(partition, start, stop)`` of
    ``pieces``, in order (a block may span partitions, and a partition blocks)."""

    offset: int
    size: int
    pieces: tuple[tuple[int, int, int], ...]


def _blocks(sizes: Sequence[int], block_rows: int) -> list[_Block]:
    """The fewest blocks of at most ``block_rows`` rows, as even as can be, cut in order from partitions of
    ``sizes`` rows."""
    n = int(sum(sizes))
    count = math.ceil(n / block_rows)
    bounds = [i * n // count for i in range(count + 1)] if count else [0]
    starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).tolist()
    blocks = []
    for lo, hi in itertools.pairwise(bounds):
        pieces = tuple(
            (p, max(lo, starts[p]) - starts[p], min(hi, starts[p + 1]) - starts[p])
            for p in range(len(sizes))
            if max(lo, starts[p]) < min(hi, starts[p + 1])
        )
        blocks.append(_Block(lo, hi - lo, pieces))
    return blocks


def fit_on_dask(
    articles: Any,
    text: TextParams,
    settings: Settings,
    *,
    client: Any,
    reference_date: pd.Timestamp | None,
    block_rows: int | None = None,
    strict: bool = False,
    progress: bool | None = None,
    n_jobs: int | None = None,
) -> FittedState:
    """Fit on the Dask cluster of ``client`` (see the module docstring): the same state as ``fit_state``.

    ``articles``: a pandas DataFrame, a Dask DataFrame, or file paths (read by the workers).
    ``block_rows``: rows per block of the neighbour search; None: :data:`BLOCK_ROWS` or fewer, so that there
    are about eight tiles per worker. The pools do not depend on it. ``n_jobs``: threads of the steps run here
    (the duplicate groups; joblib's convention). The caller checks the inputs first (:func:`check_inputs`,
    before it starts a cluster).
    """
    module = distributed()
    with warnings.catch_warnings():
        # Inputs and components travel in the task graph so that a lost worker's tasks can run again anywhere.
        warnings.filterwarnings("ignore", message=".*[Ll]arge graph.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*[Ll]arge object.*", category=UserWarning)
        with _arguments_dropped(client):
            return _fit(articles, text, settings, module, client, reference_date, block_rows, strict, progress, n_jobs)


def check_inputs(articles: Any, settings: Settings, block_rows: int | None) -> None:
    """Refuse what the build on Dask cannot do, before a cluster starts or any work is sent."""
    if settings.mode != "exact":
        raise ValueError(
            f"mode={settings.mode!r} builds in one process only (the approximate search reads every row's "
            "neighbours of neighbours): build with mode='exact' on Dask, or without client= / --workers."
        )
    if block_rows is not None and (isinstance(block_rows, bool) or not isinstance(block_rows, int) or block_rows < 1):
        raise ValueError(f"block_rows must be a positive integer, got {block_rows!r}.")
    if isinstance(articles, pd.DataFrame) or _is_dask_frame(articles):
        return
    paths = [articles] if isinstance(articles, (str, os.PathLike)) else articles
    if not isinstance(paths, Sequence) or not paths or not all(isinstance(p, (str, os.PathLike)) for p in paths):
        raise TypeError(
            "fit(client=...) expects a pandas DataFrame, a Dask DataFrame or file paths, got "
            f"{type(articles).__name__}."
        )
    for path in paths:
        if not os.path.exists(path):
            raise FileNotFoundError(f"No such file or folder: '{path}'.")


def _is_dask_frame(value: Any) -> bool:
    return hasattr(value, "to_delayed") and hasattr(value, "npartitions")


def _submit(client: Any, function: Any, *args: Any, **kwargs: Any) -> Any:
    return client.submit(function, *args, retries=_RETRIES, pure=False, **kwargs)


def _fit(
    articles: Any,
    text: TextParams,
    settings: Settings,
    module: Any,
    client: Any,
    reference_date: pd.Timestamp | None,
    block_rows: int | None,
    strict: bool,
    progress: bool | None,
    n_jobs: int | None,
) -> FittedState:
    clock = Stages()
    fronts, checked = _partitions(articles, client, strict, text)
    # Each partition's result is taken apart at once (ahead of the partitions waiting to be read), so that its task
    # (and a pandas chunk's texts, which travel inside it) is released on the worker as soon as it is done, not
    # when every partition is.
    parts = [
        [_submit(client, _part, f, name, priority=_SOON) for f in fronts]
        for name in ("provenance", "described", "counts")
    ]
    del fronts
    # each partition's terms as read, counted while the ids are checked (kept where no row is dropped)
    read_terms = [_submit(client, _frequencies, c) for c in parts[2]]
    # 1. ids across partitions
    provenance = client.gather(parts[0])
    drops, rejected, flagged = checked(provenance)
    described = [
        _submit(client, _kept_described, d, drop) if len(drop) else d for d, drop in zip(parts[1], drops, strict=True)
    ]
    counts = [
        _submit(client, _kept_counts, c, drop) if len(drop) else c for c, drop in zip(parts[2], drops, strict=True)
    ]
    del parts
    sizes = [len(p["ids"]) - len(d) for p, d in zip(provenance, drops, strict=True)]
    n = sum(sizes)
    if n == 0:
        reasons = "; ".join(sorted({r["reason"] for r in rejected})[:3]) or "the table is empty"
        raise SchemaError(f"No valid articles to fit: {len(rejected)} rows rejected ({reasons}).")
    if rejected:
        logger.warning("fit: %d rows rejected; see model.rejected_", len(rejected))
    if flagged:
        logger.warning("fit: %d articles dated in the future (kept); see model.flagged_", len(flagged))
    clock.done("on Dask: read and validated %d articles in %d partitions", n, len(provenance))
    # 2. terms: every partition's terms and document frequencies merged by the workers, a few partitions a task
    # (the client would take a time that grows with the partitions: sets of terms mostly the same, again and again)
    frequencies = [
        _submit(client, _frequencies, c) if len(drop) else f
        for c, f, drop in zip(counts, read_terms, drops, strict=True)
    ]
    del read_terms
    union = client.gather(_tree(client, frequencies, _terms_union, _TERMS_FAN_IN))
    terms, df = union[0], np.asarray(union[1], dtype=np.int64)
    columns, idf = kept_terms(df, n, text)
    clock.done("counted terms: %d kept of %d", columns.size, len(terms))
    column_of = np.full(len(terms), -1, dtype=np.int64)
    column_of[columns] = np.arange(columns.size)
    # 3. vectors
    blocks = _blocks(sizes, block_rows or _block_rows(n, _workers(client)))
    if columns.size:  # the TF-IDF rows first: the workers compute them while the client reads the parts
        vocabulary_columns = _submit(client, _same, (terms, column_of))  # one copy per worker
        maps = [_submit(client, _term_columns, f, vocabulary_columns, priority=_SOON) for f in frequencies]
        shared_idf = _submit(client, _same, idf)  # one copy per worker, not one per block's task
        tfidf = [
            _submit(client, _tfidf, [(counts[p], start, stop, maps[p]) for p, start, stop in b.pieces], shared_idf)
            for b in blocks
        ]
        # the latent components from the rows of the sample alone, gathered from their blocks
        sample = latent_sample(n)
        picks = [
            _submit(client, _rows, t, sample[(sample >= b.offset) & (sample < b.offset + b.size)] - b.offset)
            for t, b in zip(tfidf, blocks, strict=True)
        ]
    del counts
    # the text keys (8 bytes an article) now: the search needs the copy groups; the catalogue rows and copy
    # signatures while the tiles run
    keys = np.concatenate(client.gather([_submit(client, _part, d, "keys", priority=_SOON) for d in described]))
    clock.done("text keys")
    if columns.size == 0:
        vocabulary = Vocabulary(np.array([], dtype=str), np.array([], dtype=np.float32))
        vectors = sp.csr_matrix((n, 0), dtype=np.float32)
        pools = Pools.build(vectors, settings.pool_size, copy_labels(keys))
        table, sigs = _catalogue(described)
    else:
        components = sample_components(sp.vstack(client.gather(picks), format="csr"), n, text)
        del picks
        weight = float(text.latent_weight) if components is not None else 0.0
        vocabulary = Vocabulary(terms[columns], idf, components, weight)
        clock.done("TF-IDF rows of %d blocks, latent components", len(blocks))
        if components is None:
            block_vectors = tfidf
        else:
            latent = _submit(client, _same, (components, weight))
            block_vectors = [_submit(client, _blended, t, latent) for t in tfidf]
        del tfidf
        # 4. neighbours: the tasks go first, the client gathers the model's vectors while they run
        search = _Search(client, blocks, block_vectors, n, copy_labels(keys), settings.pool_size)
        # one block at a time: a worker serialises one block to send, not its whole share of the matrix
        vectors = sp.vstack([v.result() for v in block_vectors], format="csr")
        clock.done("blended vectors gathered")
        table, sigs = _catalogue(described)
        clock.done("catalogue rows and copy signatures")
        pools = search.pools(module, progress)
        clock.done("neighbours: %d tiles in %d tasks", len(blocks) * (len(blocks) + 1) // 2, search.tasks)
    return assemble_state(
        table, vocabulary, vectors, pools, keys, sigs, text, settings,
        reference_date=reference_date, rejected=rejected, flagged=flagged, n_jobs=thread_count(n_jobs),
    )  # fmt: skip


def _workers(client: Any) -> int:
    return len(client.scheduler_info().get("workers", ())) or 1


def _block_rows(n: int, workers: int) -> int:
    """The default rows per block: at most :data:`BLOCK_ROWS`, and blocks enough for about
    :data:`_TILES_PER_WORKER` tiles per worker (``b`` blocks make ``b (b + 1) / 2`` tiles)."""
    blocks = math.ceil((math.sqrt(1 + 8 * _TILES_PER_WORKER * workers) - 1) / 2)
    return max(1, min(BLOCK_ROWS, math.ceil(n / blocks)))


def _partitions(articles: Any, client: Any, strict: bool, params: TextParams) -> tuple[list[Any], Callable[..., Any]]:
    """Futures of each partition's front task, and the function that checks their provenance as one table
    (returning each partition's rows to drop, the rejected and the flagged rows). Every partition is validated by a
    worker and reports every row; :func:`_joined` reads the reports as ``load_articles`` of every input at once (a
    pandas frame: ``validate_articles`` of the frame). A pandas frame is sent in chunks of at most
    :data:`BLOCK_ROWS` rows and about :data:`_CHUNK_CHARS` characters."""
    now = pd.Timestamp.now(tz="UTC")  # one time for every partition's dates, as in one table
    if isinstance(articles, pd.DataFrame):
        least = _CHUNKS_PER_WORKER * _workers(client)
        chunks, carried, carried_flags = cut_articles(
            articles, lambda chars: _chunk_bounds(chars, least, BLOCK_ROWS, _CHUNK_CHARS)
        )
        fronts = [_submit(client, _front_of_chunk, chunk, now, params) for chunk in chunks]
        return fronts, functools.partial(_joined, carried=carried, carried_flags=carried_flags, strict=strict)
    checked = functools.partial(_joined, carried=(), carried_flags=(), strict=strict)
    if _is_dask_frame(articles):
        futures = client.compute(articles.to_delayed())
        return [_submit(client, _front_of_partition, f, i, now, params) for i, f in enumerate(futures)], checked
    paths = [articles] if isinstance(articles, (str, os.PathLike)) else list(articles)
    return [_submit(client, _front_of_path, os.fspath(p), now, params) for p in paths], checked


def _chunk_bounds(chars: np.ndarray, least: int, most_rows: int, most_chars: int) -> list[int]:
    """Where to cut rows of ``chars`` characters each into chunks, in order: at least ``least`` chunks (fewer only
    when there are fewer rows), each of at most ``most_rows`` rows and at most ``most_chars`` characters (a longer
    row makes a chunk of its own), the rows and the text left shared out evenly over the chunks left."""
    n = int(chars.size)
    ends = np.cumsum(chars)
    total = int(ends[-1]) if n else 0
    planned = max(least, math.ceil(total / most_chars), 1)
    bounds = [0]
    while bounds[-1] < n:
        lo = bounds[-1]
        left = max(planned - (len(bounds) - 1), 1)
        base = int(ends[lo - 1]) if lo else 0
        target = min(most_chars, (total - base) / left)
        hi = int(np.searchsorted(ends, base + target, side="right"))  # the rows that fit, one at least
        bounds.append(min(max(hi, lo + 1), lo + min(most_rows, math.ceil((n - lo) / left))))
    return bounds


def _joined(
    provenance: list[dict[str, Any]], carried: Any, carried_flags: Any, strict: bool
) -> tuple[list[np.ndarray], list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows to drop per partition (an id already kept in an earlier partition), and every rejected and flagged row,
    as those of one table (:func:`~recommender._articles.joined_parts`); an input that could not be read at all
    raises its error first, as ``load_articles`` does before it validates a row."""
    for part in provenance:
        if "error" in part:
            raise part["error"]
    return joined_parts(provenance, carried, carried_flags, strict=strict)


def _catalogue(described: list[Any]) -> tuple[pd.DataFrame, Signatures | None]:
    """The catalogue rows and copy signatures of every partition, gathered one partition at a time (a worker
    never sends all of its parts at once); the futures are taken out of ``described`` as they are read, so that
    the workers release those parts while the tiles run."""
    parts = []
    while described:
        parts.append(described.pop(0).result())
    return pd.concat([p["table"] for p in parts], ignore_index=True), _concatenated([p["signatures"] for p in parts])


def _concatenated(parts: Sequence[Signatures | None]) -> Signatures | None:
    if any(p is None for p in parts):
        return None
    return Signatures.joined(parts)


class _Search:
    """The neighbour search as tiles of blocks (see the module docstring, step 4): every task is submitted when
    it is made, and :meth:`pools` waits for them."""

    def __init__(
        self, client: Any, blocks: list[_Block], block_vectors: list[Any], n: int, labels: np.ndarray, pool: int
    ) -> None:
        self.client, self.block_vectors, self.n, self.pool = client, block_vectors, n, pool
        self.spans = [(b.offset, b.offset + b.size) for b in blocks]
        # each block's copy labels once, as a task of their own: a tile that carried its blocks' labels in its
        # arguments would keep them on its worker from the time it is assigned (tiles grow as the square of N)
        self.block_labels = [_submit(client, _same, labels[a0:a1]) for a0, a1 in self.spans]
        counts = [_submit(client, _column_counts, v) for v in block_vectors]
        self.dense_cols = _submit(client, _dense_columns, n, *counts)
        # each block's pools so far, merged as its tiles finish (a chain of merges per block): a tile's bars
        workers = _workers(client)
        lag = _BAR_LAG * workers
        merged: list[list[tuple[int, Any]]] = [[] for _ in blocks]  # (submitted at, merged pools) per block
        self.tiles = []
        for a, (a0, _) in enumerate(self.spans):  # each block's own tile first: it bars the others
            tile = _submit(
                client, _tile, block_vectors[a], None, (a0, a0), (self.block_labels[a], None), self.dense_cols, pool
            )
            self.tiles.append(tile)
            merged[a].append((len(self.tiles), _submit(client, operator.getitem, tile, 0)))
        pairs = _pairs(len(blocks))  # near blocks first, each block's tiles spread out
        for index, (a, b) in enumerate(pairs):
            (a0, a1), (b0, _) = self.spans[a], self.spans[b]
            bars = tuple(_merged_by(merged[x], len(self.tiles) - lag) for x in (a, b))
            # the last tile of each worker in halves (of block a's rows): shorter last tasks, so that a worker whose
            # tiles end first waits less for the others (Dask hands out the tasks; it does not promise an even end)
            halves = index >= len(pairs) - workers and a1 - a0 > 1
            for lo, hi in itertools.pairwise([0, (a1 - a0) // 2, a1 - a0] if halves else [0, a1 - a0]):
                first, labels_a, bar_a = block_vectors[a], self.block_labels[a], bars[0]
                if halves:
                    first, labels_a, bar_a = (_submit(client, _row_range, x, lo, hi) for x in (first, labels_a, bar_a))
                tile = _submit(
                    client, _tile, first, block_vectors[b], (a0 + lo, b0), (labels_a, self.block_labels[b]),
                    self.dense_cols, pool, (bar_a, bars[1]),
                )  # fmt: skip
                self.tiles.append(tile)
                for x, side, start in ((a, 0, lo), (b, 1, 0)):
                    merged[x].append(
                        (len(self.tiles),
                         _submit(client, _merged_side, merged[x][-1][1], tile, side, start, priority=_SOON))
                    )  # fmt: skip
        self.merged = [chain[-1][1] for chain in merged]
        self.tasks = len(self.tiles)
        norms = [_submit(client, dense_norms, v, self.dense_cols, priority=_SOON) for v in block_vectors]
        top = _submit(client, _top, *norms, priority=_SOON)
        self.unsettled = [
            _submit(client, _unsettled, m, norm, top, priority=_SOON)
            for m, norm in zip(self.merged, norms, strict=True)
        ]

    def pools(self, module: Any, progress: bool | None) -> Pools:
        """Each block's pools as its tiles are merged; the rows ``unsettled_rows`` names searched again against
        every block as soon as their block's pools are there."""
        client, pool, spans = self.client, self.pool, self.spans
        rows = np.empty((self.n, pool), dtype=np.int32)
        sims = np.empty((self.n, pool), dtype=np.float32)
        block_of = {f.key: a for a, f in enumerate(self.unsettled)}
        # on this client's own loop: as_completed takes the default client's, which is another client's when
        # another build (or the caller) made one since, and stops with it
        waiting = module.as_completed([*self.tiles, *self.unsettled], loop=client.loop)
        self.tiles = self.unsettled = []  # a tile's result is dropped once its parts are taken (not held here)
        swept = []
        with progress_bar(progress, total=self.tasks, desc="neighbour tiles", unit="tile") as bar:
            for future in waiting:
                a = block_of.get(future.key)
                if a is None:
                    bar.update(1)
                    continue
                mine = future.result()
                (a0, a1), merged = spans[a], self.merged[a]
                rows[a0:a1], sims[a0:a1] = merged.result()
                self.merged[a] = None
                if mine.size:
                    parts = [self._submit_sweep(a, mine, b) for b in range(len(spans))]
                    swept.append((mine + a0, _tree(client, parts)))
        if swept:
            logger.info(
                "fit: %d rows searched again over every block (a pair sharing no term could enter)",
                sum(mine.size for mine, _ in swept),
            )
        for mine, future in swept:
            rows[mine], sims[mine] = future.result()
        return Pools(*finished(rows, sims))

    def _submit_sweep(self, a: int, mine: np.ndarray, b: int) -> Any:
        """Partial pools of rows ``mine`` of block ``a`` against every row of block ``b``."""
        a0, b0 = self.spans[a][0], self.spans[b][0]
        return _submit(
            self.client, _sweep, self.block_vectors[a], mine, self.block_vectors[b], (a0, b0),
            (self.block_labels[a], self.block_labels[b]), self.dense_cols, self.pool, priority=_SOON,
        )  # fmt: skip


def _pairs(count: int) -> list[tuple[int, int]]:
    """The tiles ``(a, b)``, ``a < b``, of ``count`` blocks, by distance ``b - a`` and then ``a``."""
    return [(a, a + distance) for distance in range(1, count) for a in range(count - distance)]


def _merged_by(chain: list[tuple[int, Any]], before: int) -> Any:
    """The latest merged pools of ``chain`` submitted by tile ``before``; the first entry (the block's own tile)
    if none was submitted by then."""
    found = chain[0][1]
    for submitted, pools in chain:
        if submitted > before:
            break
        found = pools
    return found


def _tree(client: Any, parts: list[Any], merge: Callable[..., Any] | None = None, fan_in: int = _FAN_IN) -> Any:
    """One future merging ``parts`` with ``merge`` (default :func:`_merged`: partial pools of the same rows),
    ``fan_in`` at a time, each merge as soon as its parts are there."""
    merge = _merged if merge is None else merge
    while len(parts) > 1:
        parts = [
            _submit(client, merge, *parts[i : i + fan_in], priority=_SOON)
            if len(parts[i : i + fan_in]) > 1
            else parts[i]
            for i in range(0, len(parts), fan_in)
        ]
    return parts[0]
