"""The build on a Dask cluster: the fitted state of a one-process fit, bit for bit, from tasks run by the workers.

The steps (a task per input partition or per block of rows; the client merges the small results):

1. **Articles.** File paths are read by the workers, a Dask DataFrame's partitions
   are computed there, a pandas frame is validated here and sent in blocks. Every
   partition is validated by the rules of :func:`~recommender.load_articles`;
   ids are then checked across partitions here (the first valid occurrence is
   kept, as in one table). The texts stay on the workers.
2. **Terms.** Each partition counts its terms (``count_fields``); the client adds
   up the document frequencies of every term and keeps the vocabulary and idf
   exactly as ``fit_vocabulary`` does.
3. **Vectors.** Each block (at most ``block_rows`` rows of a partition) computes its
   TF-IDF rows; the client gathers them (it writes the model), fits the latent
   components once on the same rows as a one-process fit does (``latent_sample``),
   and ships them: each block blends its own rows.
4. **Neighbours.** Tiles of blocks ``a <= b``: a tile gives partial pools for the
   rows of both blocks from the pairs that share a term (``tile_pools``). Each
   block's own tile runs first; its pools are the bars of the block's other tiles
   (a pair below a full pool's last entry is not offered). The partial pools of
   each block are merged in a tree of tasks. The rows whose pool
   a pair sharing no term could still enter (``unsettled_rows``) are searched
   again against every block. Each pair is summed in the one fixed order of the
   one-process search, so the pools are the same bit for bit.
5. **The rest** (text keys and copy signatures, computed per partition;
   duplicate groups, popularity, the catalogue) is assembled here.

Memory per worker: one partition's articles and term counts while steps 1-3 run;
then its share of the blocks' vectors (Dask's managed memory, which Dask spills to
the worker's disk beyond its memory target) and, per running tile, two blocks,
one block's posting lists and the partial pools of both (about
``2 * block_rows * pool_size * 8`` bytes). No worker holds the whole matrix. The
client holds what the model holds: vectors, pools and the catalogue (no texts).

Nothing needs a shared file system: data travels through Dask (only file inputs
must be readable by the workers). A worker that dies is replaced by its nanny and
its tasks are computed again from their inputs; the result is the same.
"""

from __future__ import annotations

import contextlib
import logging
import math
import operator
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._articles import load_articles, validate_articles
from ._catalogue import table_of
from ._duplicates import Signatures, copy_labels, signatures, text_keys
from ._errors import ArticleValidationError, SchemaError
from ._neighbours import (
    dense_columns,
    dense_norms,
    finished,
    merged_pools,
    sweep_pools,
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
    fit_components,
    kept_terms,
    tfidf_rows,
)

__all__ = ["BLOCK_ROWS", "DASK_HINT", "check_inputs", "connected", "distributed", "fit_on_dask"]

logger = logging.getLogger("recommender")

DASK_HINT = "pip install 'recommender[dask]'"
#: Most rows per block of the neighbour search on Dask (a tile holds two blocks); fewer when that leaves too
#: few tiles to keep every worker busy (see ``_block_rows``).
BLOCK_ROWS = 20_000
#: Tiles per worker that the default block size aims at (uneven tiles then even out).
_TILES_PER_WORKER = 4
#: Partial pools merged per task of the merge tree: two, so that a tile's partial pools wait for one other
#: tile at most, not for seven (each is ``2 * block_rows * pool_size * 4`` bytes held until merged).
_FAN_IN = 2
#: Retries of a task that raised (a task whose worker died is rescheduled by Dask, not counted here).
_RETRIES = 2


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
            cluster = stack.enter_context(
                module.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
            )
            client = stack.enter_context(module.Client(cluster))
        yield client


# --------------------------------------------------------------------------- tasks (run by the workers)


def _read_path(path: str, position: int, strict: bool) -> pd.DataFrame:
    """One input file, validated (the rows keep where they came from, for the check of ids across files)."""
    frame = load_articles(path, strict=strict, keep=("__source__", "__row__"))
    for problem in (*frame.attrs["rejected"], *frame.attrs["flagged"]):
        problem["__order__"] = position
    return frame


def _read_partition(part: pd.DataFrame, position: int, strict: bool) -> pd.DataFrame:
    """One partition of a Dask DataFrame, validated; its rows are named ``partition N, row R``."""
    part = part.copy()
    part["__source__"] = f"partition {position}"
    part["__row__"] = np.arange(1, len(part) + 1)
    frame = validate_articles(part, strict=strict, keep=("__source__", "__row__"))
    for problem in (*frame.attrs["rejected"], *frame.attrs["flagged"]):
        problem["__order__"] = position
    return frame


def _front(frame: pd.DataFrame, params: TextParams) -> dict[str, Any]:
    """Everything the build needs from one partition's articles, in one task (the texts are not kept):
    what the check of ids needs, the catalogue rows with exact-copy keys and copy signatures, the term counts."""
    return {
        "provenance": {
            "ids": frame["article_id"].tolist(),
            "sources": frame["__source__"].tolist() if "__source__" in frame else None,
            "rows": frame["__row__"].tolist() if "__row__" in frame else None,
            "rejected": list(frame.attrs.get("rejected", ())),
            "flagged": list(frame.attrs.get("flagged", ())),
        },
        "described": {
            "table": table_of(frame),
            "keys": text_keys(frame["title"], frame["summary"], frame["body"]),
            "signatures": signatures(frame["title"].tolist(), frame["summary"].tolist(), frame["body"].tolist()),
        },
        "counts": count_fields({f: frame[f].tolist() for f in FIELDS}, params, n_jobs=1),
    }


def _front_of_path(path: str, position: int, strict: bool, params: TextParams) -> dict[str, Any]:
    try:
        frame = _read_path(path, position, strict)
    except (SchemaError, ArticleValidationError, OSError) as exc:  # the input's fault: said once, not retried
        return {"provenance": {"error": exc}}
    return _front(frame, params)


def _front_of_partition(part: pd.DataFrame, position: int, strict: bool, params: TextParams) -> dict[str, Any]:
    try:
        frame = _read_partition(part, position, strict)
    except (SchemaError, ArticleValidationError) as exc:
        return {"provenance": {"error": exc}}
    return _front(frame, params)


def _kept(front: dict[str, Any], drop: np.ndarray) -> dict[str, Any]:
    """A partition's catalogue rows and counts without the rows ``drop`` (ids seen in an earlier partition)."""
    counts: FieldCounts = front["counts"]
    n = counts.n_docs
    keep = np.ones(n, dtype=bool)
    keep[drop] = False
    rows = np.flatnonzero(keep)
    stacked = np.concatenate([f * n + rows for f in range(len(counts.weights))] or [np.empty(0, dtype=np.int64)])
    described = front["described"]
    sigs = described["signatures"]
    return {
        "described": {
            "table": described["table"].iloc[rows].reset_index(drop=True),
            "keys": described["keys"][rows],
            "signatures": None if sigs is None else sigs.take(rows),
        },
        "counts": FieldCounts(counts.terms, counts.counts[stacked], counts.weights, int(rows.size)),
    }


def _frequencies(counts: FieldCounts) -> tuple[np.ndarray, np.ndarray, int]:
    return counts.terms, document_frequencies(counts), counts.n_docs


def _tfidf(counts: FieldCounts, start: int, stop: int, column_of: np.ndarray, idf: np.ndarray) -> sp.csr_matrix:
    return tfidf_rows(counts, start, stop, column_of, idf)


def _blended(tfidf: sp.csr_matrix, latent: tuple[np.ndarray | None, float]) -> sp.csr_matrix:
    components, weight = latent
    return blend(tfidf, Vocabulary(np.array([], dtype=str), np.array([], dtype=np.float32), components, weight))


def _same(value: Any) -> Any:
    return value


def _merged(*parts: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return merged_pools(list(parts))


# --------------------------------------------------------------------------- the client's side


@dataclass(frozen=True)
class _Block:
    """Rows ``start:stop`` of partition ``partition``; global rows ``offset:offset + stop - start``."""

    partition: int
    start: int
    stop: int
    offset: int

    @property
    def size(self) -> int:
        return self.stop - self.start


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
) -> FittedState:
    """Fit on the Dask cluster of ``client`` (see the module docstring): the same state as ``fit_state``.

    ``articles``: a pandas DataFrame, a Dask DataFrame, or file paths (read by the workers).
    ``block_rows``: rows per block of the neighbour search; None: :data:`BLOCK_ROWS` or fewer, so that there
    are about four tiles per worker. The pools do not depend on it. The caller checks the inputs first
    (:func:`check_inputs`, before it starts a cluster).
    """
    module = distributed()
    with warnings.catch_warnings():
        # Inputs and components travel in the task graph so that a lost worker's tasks can run again anywhere.
        warnings.filterwarnings("ignore", message=".*[Ll]arge graph.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*[Ll]arge object.*", category=UserWarning)
        return _fit(articles, text, settings, module, client, reference_date, block_rows, strict, progress)


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
) -> FittedState:
    clock = Stages()
    fronts, carried = _partitions(articles, client, BLOCK_ROWS, strict, text)
    # 1. ids across partitions
    provenance = client.gather([_submit(client, operator.getitem, f, "provenance") for f in fronts])
    drops, rejected, flagged = _checked_ids(provenance, carried, strict)
    kept = [_submit(client, _kept, f, d) if len(d) else f for f, d in zip(fronts, drops, strict=True)]
    sizes = [len(p["ids"]) - len(d) for p, d in zip(provenance, drops, strict=True)]
    n = sum(sizes)
    if n == 0:
        reasons = "; ".join(sorted({r["reason"] for r in rejected})[:3]) or "the table is empty"
        raise SchemaError(f"No valid articles to fit: {len(rejected)} rows rejected ({reasons}).")
    if rejected:
        logger.warning("fit: %d rows rejected; see model.rejected_", len(rejected))
    if flagged:
        logger.warning("fit: %d articles dated in the future (kept); see model.flagged_", len(flagged))
    clock.done("on Dask: read and validated %d articles in %d partitions", n, len(fronts))
    described = [_submit(client, operator.getitem, k, "described") for k in kept]
    counts = [_submit(client, operator.getitem, k, "counts") for k in kept]
    del fronts, kept
    # 2. terms
    frequencies = client.gather([_submit(client, _frequencies, c) for c in counts])
    terms = np.unique(np.concatenate([t for t, _, _ in frequencies])) if frequencies else np.array([], dtype=str)
    df = np.zeros(len(terms), dtype=np.int64)
    positions = []
    for part_terms, part_df, _ in frequencies:
        where = np.searchsorted(terms, part_terms)
        df[where] += part_df
        positions.append(where)
    columns, idf = kept_terms(df, n, text)
    clock.done("counted terms: %d kept of %d", columns.size, len(terms))
    column_of = np.full(len(terms), -1, dtype=np.int64)
    column_of[columns] = np.arange(columns.size)
    # 3. vectors
    block_rows = block_rows or _block_rows(n, len(client.scheduler_info().get("workers", ())) or 1)
    blocks = [
        _Block(p, start, min(start + block_rows, size), 0)
        for p, size in enumerate(sizes)
        for start in range(0, size, block_rows)
    ]
    offsets = np.concatenate([[0], np.cumsum([b.size for b in blocks])]).astype(np.int64)
    blocks = [_Block(b.partition, b.start, b.stop, int(offsets[i])) for i, b in enumerate(blocks)]
    parts = client.gather(described)
    table = pd.concat([p["table"] for p in parts], ignore_index=True)
    keys = np.concatenate([p["keys"] for p in parts])
    sigs = _concatenated([p["signatures"] for p in parts])
    del parts, described
    clock.done("text keys and copy signatures")
    if columns.size == 0:
        vocabulary = Vocabulary(np.array([], dtype=str), np.array([], dtype=np.float32))
        vectors = sp.csr_matrix((n, 0), dtype=np.float32)
        pools = Pools.build(vectors, settings.pool_size, copy_labels(keys))
    else:
        maps = [column_of[where] for where in positions]
        tfidf = [_submit(client, _tfidf, counts[b.partition], b.start, b.stop, maps[b.partition], idf) for b in blocks]
        del counts
        sparse = sp.vstack(client.gather(tfidf), format="csr")
        clock.done("TF-IDF rows of %d blocks", len(blocks))
        components = fit_components(sparse, text)
        weight = float(text.latent_weight) if components is not None else 0.0
        vocabulary = Vocabulary(terms[columns], idf, components, weight)
        vectors = blend(sparse, vocabulary)
        del sparse
        clock.done("latent components and blend")
        latent = _submit(client, _same, (components, weight))
        block_vectors = [_submit(client, _blended, t, latent) for t in tfidf]
        del tfidf
        # 4. neighbours
        pools = _pools(client, module, blocks, block_vectors, vectors, copy_labels(keys), settings.pool_size, progress)
        clock.done("neighbours: %d tiles", len(blocks) * (len(blocks) + 1) // 2)
    return assemble_state(
        table, vocabulary, vectors, pools, keys, sigs, text, settings,
        reference_date=reference_date, rejected=rejected, flagged=flagged,
    )  # fmt: skip


def _block_rows(n: int, workers: int) -> int:
    """The default rows per block: at most :data:`BLOCK_ROWS`, and blocks enough for about
    :data:`_TILES_PER_WORKER` tiles per worker (``b`` blocks make ``b (b + 1) / 2`` tiles)."""
    blocks = math.ceil((math.sqrt(1 + 8 * _TILES_PER_WORKER * workers) - 1) / 2)
    return max(1, min(BLOCK_ROWS, math.ceil(n / blocks)))


def _partitions(
    articles: Any, client: Any, block_rows: int, strict: bool, params: TextParams
) -> tuple[list[Any], list[list[dict[str, Any]]]]:
    """Futures of each partition's :func:`_front`, and the rejected and flagged rows found here (a pandas frame)."""
    if isinstance(articles, pd.DataFrame):
        table = validate_articles(articles, strict=strict)
        carried = [list(table.attrs.get("rejected", ())), list(table.attrs.get("flagged", ()))]
        chunks = [table.iloc[s : s + block_rows].reset_index(drop=True) for s in range(0, len(table), block_rows)]
        return [_submit(client, _front, c, params) for c in chunks or [table]], carried
    if _is_dask_frame(articles):
        futures = client.compute(articles.to_delayed())
        return [_submit(client, _front_of_partition, f, i, strict, params) for i, f in enumerate(futures)], [[], []]
    paths = [articles] if isinstance(articles, (str, os.PathLike)) else list(articles)
    return [_submit(client, _front_of_path, os.fspath(p), i, strict, params) for i, p in enumerate(paths)], [[], []]


def _checked_ids(
    provenance: list[dict[str, Any]], carried: list[list[dict]], strict: bool
) -> tuple[list[np.ndarray], list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows to drop per partition (an id already kept in an earlier partition), and every rejected and flagged row.

    The reasons read as those of one table (``load_articles`` of every input at once), in input order.
    """
    first: dict[str, tuple[Any, Any]] = {}
    drops: list[np.ndarray] = []
    rejected: list[dict[str, Any]] = list(carried[0])
    flagged: list[dict[str, Any]] = list(carried[1])
    problems: list[dict[str, Any]] = []
    for part in provenance:
        if "error" in part:
            raise part["error"]
    for position, part in enumerate(provenance):
        sources = part["sources"] or [None] * len(part["ids"])
        rows = part["rows"] or [None] * len(part["ids"])
        drop = []
        dropped_where = set()
        for i, article_id in enumerate(part["ids"]):
            seen = first.get(article_id)
            if seen is None:
                first[article_id] = (sources[i], rows[i])
                continue
            where = f"row {seen[1]}" if seen[0] == sources[i] else f"{seen[0]}, row {seen[1]}"
            reason = f"duplicate article_id {article_id!r} (first seen in {where})"
            if strict:
                raise ArticleValidationError(f"{sources[i]}, row {rows[i]}: {reason}")
            drop.append(i)
            dropped_where.add((sources[i], rows[i]))
            problems.append(
                {"source": sources[i], "row": rows[i], "article_id": article_id, "reason": reason,
                 "__order__": position}
            )  # fmt: skip
        drops.append(np.asarray(drop, dtype=np.int64))
        problems.extend(part["rejected"])
        flagged.extend(f for f in part["flagged"] if (f.get("source"), f.get("row")) not in dropped_where)
    problems.sort(key=lambda p: (p.get("__order__", 0), p["row"] if p.get("row") is not None else 0))
    rejected.extend({k: v for k, v in p.items() if k != "__order__"} for p in problems)
    flagged = [{k: v for k, v in f.items() if k != "__order__"} for f in flagged]
    return drops, rejected, flagged


def _concatenated(parts: Sequence[Signatures | None]) -> Signatures | None:
    if any(p is None for p in parts):
        return None
    out = parts[0]
    for part in parts[1:]:
        out = out.concat(part)
    return out


def _pools(
    client: Any,
    module: Any,
    blocks: list[_Block],
    block_vectors: list[Any],
    vectors: sp.csr_matrix,
    labels: np.ndarray,
    pool: int,
    progress: bool | None,
) -> Pools:
    """The neighbour search as tiles of blocks (see the module docstring, step 4)."""
    n = vectors.shape[0]
    dense_cols = dense_columns(np.bincount(vectors.indices, minlength=vectors.shape[1]), n)
    spans = [(b.offset, b.offset + b.size) for b in blocks]
    sides: list[list[Any]] = [[] for _ in blocks]
    tiles = []
    for a, (a0, a1) in enumerate(spans):  # each block's own tile first: its pools are the bars of the others
        tile = _submit(client, tile_pools, block_vectors[a], None, (a0, a0), (labels[a0:a1], None), dense_cols, pool)
        tiles.append(tile)
        sides[a].append(_submit(client, operator.getitem, tile, 0))
    for a, (a0, a1) in enumerate(spans):
        for b in range(a + 1, len(blocks)):
            b0, b1 = spans[b]
            tile = _submit(
                client, tile_pools, block_vectors[a], block_vectors[b], (a0, b0),
                (labels[a0:a1], labels[b0:b1]), dense_cols, pool, (sides[a][0], sides[b][0]),
            )  # fmt: skip
            tiles.append(tile)
            sides[a].append(_submit(client, operator.getitem, tile, 0))
            sides[b].append(_submit(client, operator.getitem, tile, 1))
    merged = [_tree(client, parts) for parts in sides]
    with progress_bar(progress, total=len(tiles), desc="neighbour tiles", unit="tile") as bar:
        for _ in module.as_completed(tiles):
            bar.update(1)
    del tiles, sides
    rows = np.empty((n, pool), dtype=np.int32)
    sims = np.empty((n, pool), dtype=np.float32)
    for (a0, a1), future in zip(spans, merged, strict=True):
        rows[a0:a1], sims[a0:a1] = future.result()
    del merged
    unsettled = unsettled_rows(dense_norms(vectors, dense_cols), rows, sims)
    if len(unsettled):
        logger.info("fit: %d rows searched again over every block (a pair sharing no term could enter)", unsettled.size)
    sweeps = []
    for a, (a0, a1) in enumerate(spans):
        mine = unsettled[(unsettled >= a0) & (unsettled < a1)]
        if mine.size == 0:
            continue
        parts = [
            _submit(
                client,
                sweep_pools,
                block_vectors[a],
                mine - a0,
                block_vectors[b],
                (a0, b0),
                (labels[a0:a1], labels[b0:b1]),
                dense_cols,
                pool,
            )
            for b, (b0, b1) in enumerate(spans)
        ]
        sweeps.append((mine, _tree(client, parts)))
    for mine, future in sweeps:
        rows[mine], sims[mine] = future.result()
    return Pools(*finished(rows, sims))


def _tree(client: Any, parts: list[Any]) -> Any:
    """One future merging ``parts`` (partial pools of the same rows), ``_FAN_IN`` at a time."""
    while len(parts) > 1:
        parts = [
            _submit(client, _merged, *parts[i : i + _FAN_IN]) if len(parts[i : i + _FAN_IN]) > 1 else parts[i]
            for i in range(0, len(parts), _FAN_IN)
        ]
    return parts[0]
