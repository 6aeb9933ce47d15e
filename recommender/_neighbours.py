"""Neighbour search: every article's most cosine-similar articles.

Rows of the input are unit-norm TF-IDF vectors, so a dot product is a cosine.

Two engines give the same pools:

* **compiled** (numba, the default when numba is installed): for one source row
  at a time, the similarities to every other row are accumulated into one dense
  float32 buffer of length ``n`` per thread (term-at-a-time over the posting
  lists of the row's terms; dense columns such as the latent blend as a vector
  sweep), then scanned once into a top-``pool`` kept sorted by (similarity, row).
  Similarity is symmetric, so for all rows only the pairs ``j > i`` are computed
  and each similarity is offered to both rows' pools; threads work on
  interleaved rows without the GIL, each with its own partial pools, merged at
  the end. Memory: the vectors, their posting lists, one buffer of ``n`` floats
  and one set of partial pools per thread.
* **scipy** (the fallback without numba): the product of a block of rows with
  all rows, ``block_rows x n`` similarities at a time, in parallel with joblib.

A pair's similarity is summed in the same order whichever row is the source
(dense columns, then shared term columns ascending), so it is bit-for-bit the
same in both rows' pools, whatever the threads, blocks or ``rows``.

Order is deterministic: by similarity descending, then by row ascending, so
the same input always gives the same pools. An article is never its own
neighbour, nor a neighbour of an exact copy of itself (same ``group`` label);
only articles with a similarity above :data:`SIMILARITY_FLOOR` (1e-6, float32
noise) are candidates. Missing slots are
``row = -1`` and ``similarity = 0``.
"""

from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed

try:  # compiled engine (optional at import, so the scipy engine still works without numba)
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; this guards odd installs
    numba = None

__all__ = ["SIMILARITY_FLOOR", "block_rows_for", "select_top", "top_neighbours"]

#: Similarities at or below this are "nothing in common": float32 rounding leaves about 1e-8 where two
#: articles share no term (with the latent blend, where their topic vectors are orthogonal).
SIMILARITY_FLOOR = 1e-6
#: Similarities held per block (float32 values): about 128 MB.
_BLOCK_BUDGET = 32_000_000
#: A column stored in at least this share of the rows is handled as a dense column (e.g. the latent blend).
_DENSE_SHARE = 0.5
_ENGINES = ("auto", "numba", "scipy")


def block_rows_for(n: int, budget: int = _BLOCK_BUDGET) -> int:
    """Rows per block so that a ``rows x n`` float32 block stays within ``budget`` values."""
    return int(max(1, min(4096, budget // max(n, 1))))


def top_neighbours(
    vectors: sp.csr_matrix,
    pool: int,
    *,
    groups: np.ndarray | None = None,
    n_jobs: int | None = None,
    block_rows: int | None = None,
    rows: np.ndarray | None = None,
    engine: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """The ``pool`` most similar other rows of every row (or of ``rows``).

    Parameters
    ----------
    vectors : csr_matrix of shape (n, n_terms)
        Unit-norm rows.
    pool : int
        Neighbours kept per row (>= 1).
    groups : ndarray of shape (n,), optional
        Exact-copy labels: rows with the same label are never neighbours of each
        other. Label ``-1`` means "no copies".
    n_jobs : int, optional
        Parallel threads (compiled engine) or jobs (scipy engine), joblib
        semantics: None = 1, -1 = all cores. The result does not depend on it.
    block_rows : int, optional
        Rows per block of the scipy engine; default from :func:`block_rows_for`.
        The compiled engine holds one row of similarities per thread instead.
    rows : ndarray of int, optional
        Only compute the pools of these source rows (in this order); the
        candidates are still all rows. Used to refresh pools after updates.
    engine : {"auto", "numba", "scipy"}
        ``auto`` uses numba when it is installed. Both give the same pools.

    Returns
    -------
    rows : ndarray of shape (len(rows) or n, pool), int32
        Neighbour rows, best first; -1 where there are fewer candidates.
    similarities : ndarray of shape (n, pool), float32
        Their cosine similarities; 0 where ``rows`` is -1.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> vectors = sp.csr_matrix(np.array([[1, 0], [0.8, 0.6], [0, 1]], dtype=np.float32))
    >>> rows, sims = top_neighbours(vectors, 2)
    >>> rows.tolist()
    [[1, -1], [0, 2], [1, -1]]
    >>> [[round(float(s), 2) for s in row] for row in sims]
    [[0.8, 0.0], [0.8, 0.6], [0.6, 0.0]]
    """
    if pool < 1:
        raise ValueError(f"pool must be >= 1, got {pool!r}.")
    if engine not in _ENGINES:
        raise ValueError(f"engine must be one of {_ENGINES}, got {engine!r}.")
    if engine == "numba" and numba is None:
        raise ValueError("engine='numba' needs numba: pip install numba (or use engine='scipy').")
    vectors = sp.csr_matrix(vectors, dtype=np.float32)
    if engine == "scipy" or (engine == "auto" and numba is None):
        return _scipy_engine(vectors, pool, groups, n_jobs, block_rows, rows)
    return _numba_engine(vectors, pool, groups, n_jobs, rows)


def _threads(n_jobs: int | None) -> int:
    """joblib's n_jobs convention -> a thread count."""
    cpus = os.cpu_count() or 1
    if n_jobs is None or n_jobs == 0:
        return 1
    if n_jobs < 0:
        return max(1, cpus + 1 + n_jobs)
    return int(n_jobs)


def _labels(groups: np.ndarray | None, n: int) -> np.ndarray:
    if groups is None:
        return np.full(n, -1, dtype=np.int64)
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise ValueError(f"groups must have shape ({n},), got {groups.shape}.")
    return groups.astype(np.int64)


def _split_dense(vectors: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """Split off the columns stored in most rows: (sparse rest, dense columns transposed, shape (d, n))."""
    n = vectors.shape[0]
    counts = np.bincount(vectors.indices, minlength=vectors.shape[1])
    dense_cols = np.flatnonzero(counts >= max(1.0, _DENSE_SHARE * n)) if n >= 8 else np.empty(0, dtype=np.int64)
    if dense_cols.size == 0:
        return vectors, np.zeros((0, n), dtype=np.float32)
    keep = np.ones(vectors.shape[1], dtype=bool)
    keep[dense_cols] = False
    dense_t = np.ascontiguousarray(vectors[:, dense_cols].toarray().T, dtype=np.float32)
    return vectors[:, np.flatnonzero(keep)].tocsr(), dense_t


def _numba_engine(
    vectors: sp.csr_matrix,
    pool: int,
    groups: np.ndarray | None,
    n_jobs: int | None,
    rows: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    n = vectors.shape[0]
    labels = _labels(groups, n)
    sources = None if rows is None else np.asarray(rows, dtype=np.int64)
    count = n if sources is None else len(sources)
    if count == 0 or n == 0:
        return np.full((count, pool), -1, dtype=np.int32), np.zeros((count, pool), dtype=np.float32)
    sparse, dense_t = _split_dense(vectors)
    if not sparse.has_sorted_indices:  # a copy: the caller's matrix may be read-only (memory-mapped)
        sparse = sparse.sorted_indices()
    postings = sparse.T.tocsr()  # each term's rows, ascending
    postings.sort_indices()
    threads = max(1, min(_threads(n_jobs), numba.config.NUMBA_NUM_THREADS, count))
    arrays = (
        sparse.indptr.astype(np.int64, copy=False),
        sparse.indices.astype(np.int32, copy=False),
        sparse.data,
        postings.indptr.astype(np.int64, copy=False),
        postings.indices.astype(np.int32, copy=False),
        postings.data,
        dense_t,
        labels,
    )
    floor = np.float32(SIMILARITY_FLOOR)
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        if sources is None:
            out_rows, out_sims = _kernels()[0](*arrays, pool, threads, floor)
        else:
            out_rows, out_sims = _kernels()[1](sources, *arrays, pool, threads, floor)
    finally:
        numba.set_num_threads(previous)
    empty = out_rows < 0
    out_sims[empty] = 0.0
    return out_rows, out_sims


def _scipy_engine(
    vectors: sp.csr_matrix,
    pool: int,
    groups: np.ndarray | None,
    n_jobs: int | None,
    block_rows: int | None,
    rows: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    n = vectors.shape[0]
    sources = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    step = block_rows or block_rows_for(n)
    transposed = vectors.T.tocsr()
    members = _copy_members(groups, n)
    blocks = [sources[s : s + step] for s in range(0, len(sources), step)]
    if n_jobs in (None, 1) or len(blocks) < 2:
        parts = [_block(vectors, transposed, b, pool, members) for b in blocks]
    else:
        parts = Parallel(n_jobs=n_jobs)(delayed(_block)(vectors, transposed, b, pool, members) for b in blocks)
    if not parts:
        return np.empty((0, pool), dtype=np.int32), np.empty((0, pool), dtype=np.float32)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _copy_members(groups: np.ndarray | None, n: int) -> dict[int, np.ndarray]:
    """Row -> all rows of its copy group, for rows that have copies."""
    if groups is None:
        return {}
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise ValueError(f"groups must have shape ({n},), got {groups.shape}.")
    members: dict[int, np.ndarray] = {}
    labelled = np.flatnonzero(groups >= 0)
    if labelled.size == 0:
        return members
    order = labelled[np.argsort(groups[labelled], kind="stable")]
    labels = groups[order]
    cuts = np.flatnonzero(np.diff(labels)) + 1
    for chunk in np.split(order, cuts):
        if chunk.size > 1:
            for row in chunk:
                members[int(row)] = chunk
    return members


def _block(
    vectors: sp.csr_matrix,
    transposed: sp.csr_matrix,
    sources: np.ndarray,
    pool: int,
    members: dict[int, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    n = vectors.shape[0]
    sims = (vectors[sources] @ transposed).toarray()
    local = np.arange(len(sources))
    sims[local, sources] = -np.inf
    for i, row in enumerate(sources.tolist()):
        copies = members.get(row)
        if copies is not None:
            sims[i, copies] = -np.inf
    return select_top(sims, pool, n)


def select_top(sims: np.ndarray, pool: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``pool`` columns per row of a dense block, ties broken by column; only values > SIMILARITY_FLOOR."""
    count = sims.shape[0]
    width = min(pool, n)
    out_rows = np.full((count, pool), -1, dtype=np.int32)
    out_sims = np.zeros((count, pool), dtype=np.float32)
    if width == 0 or count == 0:
        return out_rows, out_sims
    if width < n:
        chosen = np.argpartition(-sims, width - 1, axis=1)[:, :width]
    else:
        chosen = np.broadcast_to(np.arange(n), (count, n)).copy()
    values = np.take_along_axis(sims, chosen, axis=1)
    floor = values.min(axis=1)
    # Rows where the boundary value is tied with unchosen columns: pick the lowest columns.
    tied = np.flatnonzero((sims >= floor[:, None]).sum(axis=1) > width)
    for i in tied:
        candidates = np.flatnonzero(sims[i] >= floor[i])
        order = np.lexsort((candidates, -sims[i, candidates]))[:width]
        chosen[i] = candidates[order]
        values[i] = sims[i, chosen[i]]
    order = np.lexsort((chosen, -values), axis=1)
    chosen = np.take_along_axis(chosen, order, axis=1)
    values = np.take_along_axis(values, order, axis=1)
    good = values > SIMILARITY_FLOOR
    out_rows[:, :width] = np.where(good, chosen, -1)
    out_sims[:, :width] = np.where(good, values, 0.0)
    return out_rows, out_sims


# ---------------------------------------------------------------------------------------------- compiled engine
# Plain functions compiled by numba on first use (``_kernels``); nothing is compiled at import time.


def _insert(best_sims, best_rows, value, row):  # pragma: no cover - compiled
    """Put (value, row) into a pool kept sorted by similarity descending, then row ascending."""
    p = best_sims.shape[0] - 1
    while p > 0 and (value > best_sims[p - 1] or (value == best_sims[p - 1] and row < best_rows[p - 1])):
        best_sims[p] = best_sims[p - 1]
        best_rows[p] = best_rows[p - 1]
        p -= 1
    best_sims[p] = value
    best_rows[p] = row


def _accumulate(acc, i, lo, indptr, indices, data, t_indptr, t_rows, t_data, dense_t):  # pragma: no cover
    """acc[j] += similarity(i, j) for every j >= lo: dense columns first, then term columns ascending."""
    n = acc.shape[0]
    for c in range(dense_t.shape[0]):
        weight = dense_t[c, i]
        if weight != 0:
            column = dense_t[c]
            for j in range(lo, n):
                acc[j] += weight * column[j]
    for p in range(indptr[i], indptr[i + 1]):
        term = indices[p]
        weight = data[p]
        a = t_indptr[term]
        b = t_indptr[term + 1]
        if lo > 0:
            a += np.searchsorted(t_rows[a:b], lo)
        for q in range(a, b):
            acc[t_rows[q]] += weight * t_data[q]


def _all_rows(
    indptr, indices, data, t_indptr, t_rows, t_data, dense_t, groups, pool, threads, floor
):  # pragma: no cover
    """Every row's pool, computing each pair once (j > i) and offering it to both rows."""
    n = indptr.shape[0] - 1
    part_sims = np.full((threads, n, pool), floor, dtype=np.float32)
    part_rows = np.full((threads, n, pool), -1, dtype=np.int32)
    worst_sims = np.full((threads, n), floor, dtype=np.float32)  # part_sims[t, :, -1], kept compact
    worst_rows = np.full((threads, n), -1, dtype=np.int32)
    last = pool - 1
    for t in numba.prange(threads):
        acc = np.zeros(n, dtype=np.float32)
        t_sims = part_sims[t]
        t_rowz = part_rows[t]
        w_sims = worst_sims[t]
        w_rows = worst_rows[t]
        for i in range(t, n, threads):  # interleaved: rows near the end have less work
            lo = i + 1
            _accumulate(acc, i, lo, indptr, indices, data, t_indptr, t_rows, t_data, dense_t)
            gi = groups[i]
            own_sims = t_sims[i]
            own_rows = t_rowz[i]
            for j in range(lo, n):
                v = acc[j]
                acc[j] = 0.0
                if v <= floor:
                    continue
                better_for_i = v > own_sims[last] or (v == own_sims[last] and j < own_rows[last])
                better_for_j = v > w_sims[j] or (v == w_sims[j] and i < w_rows[j])
                if (better_for_i or better_for_j) and (gi < 0 or groups[j] != gi):
                    if better_for_i:
                        _insert(own_sims, own_rows, v, j)
                    if better_for_j:
                        _insert(t_sims[j], t_rowz[j], v, i)
                        w_sims[j] = t_sims[j, last]
                        w_rows[j] = t_rowz[j, last]
            w_sims[i] = own_sims[last]
            w_rows[i] = own_rows[last]
    out_sims = np.empty((n, pool), dtype=np.float32)
    out_rows = np.empty((n, pool), dtype=np.int32)
    for r in numba.prange(n):
        best_sims = part_sims[0, r].copy()
        best_rows = part_rows[0, r].copy()
        for t in range(1, threads):
            for p in range(pool):
                v = part_sims[t, r, p]
                row = part_rows[t, r, p]
                if row < 0:
                    break
                if v > best_sims[last] or (v == best_sims[last] and (row < best_rows[last] or best_rows[last] < 0)):
                    _insert(best_sims, best_rows, v, row)
        out_sims[r] = best_sims
        out_rows[r] = best_rows
    return out_rows, out_sims


def _some_rows(
    sources, indptr, indices, data, t_indptr, t_rows, t_data, dense_t, groups, pool, threads, floor
):  # pragma: no cover
    """The pools of ``sources`` only (all rows are candidates)."""
    n = indptr.shape[0] - 1
    count = sources.shape[0]
    out_sims = np.full((count, pool), floor, dtype=np.float32)
    out_rows = np.full((count, pool), -1, dtype=np.int32)
    last = pool - 1
    for t in numba.prange(threads):
        acc = np.zeros(n, dtype=np.float32)
        for s in range(t, count, threads):
            i = sources[s]
            _accumulate(acc, i, 0, indptr, indices, data, t_indptr, t_rows, t_data, dense_t)
            acc[i] = 0.0  # never the row itself
            gi = groups[i]
            own_sims = out_sims[s]
            own_rows = out_rows[s]
            for j in range(n):
                v = acc[j]
                acc[j] = 0.0
                if v > floor and (v > own_sims[last] or (v == own_sims[last] and j < own_rows[last])):
                    if j != i and (gi < 0 or groups[j] != gi):
                        _insert(own_sims, own_rows, v, j)
    return out_rows, out_sims


_COMPILED: list = []


def _kernels():
    """The compiled kernels (compiled on first call, cached on disk by numba)."""
    if not _COMPILED:
        global _insert, _accumulate
        _insert = numba.njit(cache=True, nogil=True, inline="always")(_insert)
        _accumulate = numba.njit(cache=True, nogil=True)(_accumulate)
        _COMPILED.append(numba.njit(cache=True, nogil=True, parallel=True)(_all_rows))
        _COMPILED.append(numba.njit(cache=True, nogil=True, parallel=True)(_some_rows))
    return _COMPILED
