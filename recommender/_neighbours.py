"""Neighbour search: every article's most cosine-similar articles.

Rows of the input are unit-norm TF-IDF vectors, so a dot product is a cosine.

Two engines give the same pools:

* **compiled** (numba, the default when numba is installed): for one source row
  at a time, the similarities to the rows that share a term with it are
  accumulated term-at-a-time over the posting lists of the row's terms into one
  float32 buffer of length ``n`` per thread (the most frequent terms, held by 12%
  of the rows or more, added as whole columns of ``n`` values, which the CPU's
  vector units do faster than a scattered add per posting), which is scanned once: the dense
  columns (such as the latent blend) are added for the rows it reached (computed
  512 rows at a time, across rows, so that the CPU's vector units do them), and
  each is offered to a top-``pool`` kept as a heap of (similarity, row), sorted at
  the end. Similarity is symmetric, so for all rows only the pairs
  ``j > i`` are computed and each is offered to both rows' pools; threads work
  on interleaved rows without the GIL, each with its own partial pools, merged
  at the end. A pair that shares no term has only the dense part, at most
  ``|d_i| |d_j|`` (Cauchy-Schwarz on the dense columns); a row whose pool is
  full with a last similarity above its bound ``|d_i| max_j |d_j|`` is exact
  (with the latent blend that is nearly every row: its pairs that share no word
  score at most ``latent_weight``), and the few others are searched again over
  every row. Memory: the vectors, their posting lists, the frequent terms'
  columns (at most 64 MB), one buffer of ``n`` floats and one set of partial
  pools per thread.
* **scipy** (the fallback without numba): the product of a block of rows with
  all rows, ``block_rows x n`` similarities at a time, in parallel with joblib.

A pair's similarity is summed in the same order whichever row is the source
(shared term columns ascending, then the dense part, itself four running sums
over the dense columns added in a fixed order, see ``_dense_dot``), so it is bit-for-bit the
same in both rows' pools, whatever the threads, blocks or ``rows``.

``mode="approx"`` (compiled only) scores far fewer pairs: the rows are clustered
(spherical k-means), a row's candidates are the rows of its nearest clusters and
those sharing one of its rare words, ranked by its heaviest terms and the dense
part, then neighbours of neighbours;
every candidate is re-scored with the exact sum, so what it returns is exact and
only some true neighbours are missed (recall@10 about 0.97-0.99 on SynthCorpus
from 100k to 1M).

Order is deterministic: by similarity descending, then by row ascending, so
the same input always gives the same pools. An article is never its own
neighbour, nor a neighbour of an exact copy of itself (same ``copy_labels`` label);
only articles with a similarity above :data:`SIMILARITY_FLOOR` (1e-6, float32
noise) are candidates. Missing slots are
``row = -1`` and ``similarity = 0``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed

from ._errors import InvalidPart

try:  # compiled engine (optional at import, so the scipy engine still works without numba)
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; this guards odd installs
    numba = None

__all__ = ["SIMILARITY_FLOOR", "block_rows_for", "check_csr", "select_top", "thread_count", "top_neighbours"]

#: Similarities at or below this are "nothing in common": float32 rounding leaves about 1e-8 where two
#: articles share no term (with the latent blend, where their topic vectors are orthogonal).
SIMILARITY_FLOOR = 1e-6
#: Similarities held per block (float32 values): about 128 MB.
_BLOCK_BUDGET = 32_000_000
#: A column stored in at least this share of the rows is handled as a dense column (e.g. the latent blend).
_DENSE_SHARE = 0.5
_ENGINES = ("auto", "numba", "scipy")
_MODES = ("exact", "approx")
#: ``approx`` defaults: term columns per query, the floor of the candidates re-scored per row, the clusters
#: a row's candidates come from, and the neighbours' lists read by pass 2.
_QUERY_TERMS = 32
_CANDIDATES = 100
_PROBES = 4
_MAX_POSTINGS = 1000
_FAN = 20
#: ``approx`` clusters: about this many rows each (``ceil(n / _CLUSTER_ROWS)`` clusters, popular ones split),
#: centroids fitted on this many sampled rows per cluster, in at most :data:`_ROUNDS` rounds of k-means.
_CLUSTER_ROWS = 1000
_SAMPLE_PER_CLUSTER = 50
_ROUNDS = 8
#: A cluster that takes more than this many times its share of the sample is split (see ``_clusters``).
_SPLIT_ABOVE = 2
#: Rows ahead whose entries are prefetched while re-scoring candidates (their entries are mostly not in cache).
_AHEAD = 2
#: Source rows per call of a compiled kernel (``progress`` is called after each).
_CHUNK = 8192
#: Rows whose dense parts the symmetric pass computes at once (``_dense_block``).
_SPAN = 512
#: Source rows the symmetric pass sweeps the targets for together (each span's dense columns read once for
#: them all), at most :data:`_SOURCE_VALUES` buffered similarities per thread.
_SOURCES = 16
_SOURCE_VALUES = 4_000_000
#: A term held by at least this share of the target rows is added to a source's sums as a whole column of the
#: targets (see ``_add_terms_dense``): at that density one vectorised add per row costs less than a scattered
#: add per posting. The most frequent such terms first, at most :data:`_HEAVY_VALUES` float32 values in all.
_HEAVY_SHARE = 0.12
_HEAVY_VALUES = 16_000_000


def block_rows_for(n: int, budget: int = _BLOCK_BUDGET) -> int:
    """Rows per block so that a ``rows x n`` float32 block stays within ``budget`` values."""
    return int(max(1, min(4096, budget // max(n, 1))))


def top_neighbours(
    vectors: sp.csr_matrix,
    pool: int,
    *,
    copy_labels: np.ndarray | None = None,
    n_jobs: int | None = None,
    block_rows: int | None = None,
    rows: np.ndarray | None = None,
    engine: str = "auto",
    mode: str = "exact",
    query_terms: int = _QUERY_TERMS,
    candidates: int | None = None,
    probes: int = _PROBES,
    max_postings: int = _MAX_POSTINGS,
    fan: int = _FAN,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``pool`` most similar other rows of every row (or of ``rows``).

    Parameters
    ----------
    vectors : csr_matrix of shape (n, n_terms)
        Unit-norm rows.
    pool : int
        Neighbours kept per row (>= 1).
    copy_labels : ndarray of shape (n,), optional
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
    mode : {"exact", "approx"}
        ``exact``: every pair is scored. ``approx`` (compiled engine only), two
        passes over clusters of the rows (spherical k-means, about 1,000 rows
        a cluster, seeded: a function of the vectors and ``query_terms``
        only). Pass 1 (an
        inverted-file search): a row's candidates are the rows of its
        ``probes`` nearest clusters and the rows that share one of its rare
        query terms (``max_postings``), ranked by the partial dot product over
        its ``query_terms`` heaviest term columns (Elasticsearch's
        ``max_query_terms``) plus the dense (latent) part; the best
        ``candidates`` are re-scored exactly. Pass 2 (neighbours of
        neighbours, as in NN-descent): the first ``fan`` neighbours of the
        row's first ``fan`` pass-1 neighbours are re-scored exactly too.
        Every similarity returned is the exact one, bit for bit; neighbours
        are only missed, never mis-scored or mis-ordered. A row's pool
        depends only on the input and that row, so ``rows=``, ``n_jobs`` and
        reruns give the same pools. Up to 1,000 rows there is one cluster, so
        every row is ranked; with ``candidates`` at least the number of rows
        (200 for a pool of 50: up to 200 rows) every row is re-scored and the
        pools are exact.
    query_terms : int, default 32
        ``approx``: term columns per source row used to find candidates.
    candidates : int, optional
        ``approx``: pass-1 candidates re-scored exactly per source row;
        default ``max(4 * pool, 100)``.
    probes : int, default 4
        ``approx``: the nearest clusters (by the same partial dot product
        with their centroids) whose rows are a row's pass-1 candidates.
    max_postings : int, default 1000
        ``approx``: a query term's posting list is read whole (rows of every
        cluster are candidates) when it holds at most this many entries (a
        rare word), and only within the probed clusters otherwise; 0 = clusters
        only.
    fan : int, default 20
        ``approx``: pass 2 reads the first ``fan`` pass-1 neighbours of the
        first ``fan`` pass-1 neighbours (0 = no pass 2).
    progress : callable, optional
        Called with the number of source rows finished, after each chunk of
        rows (compiled engine) or at the end (scipy engine); the counts add up
        to the number of source rows (``approx``: pass 1 reports the first
        half, pass 2 the rest). It does not change the result; use it to
        drive e.g. ``tqdm(total=n).update``.

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
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}.")
    if mode == "approx" and (engine == "scipy" or numba is None):
        raise ValueError("mode='approx' needs the compiled engine: pip install numba, and engine='auto' or 'numba'.")
    if query_terms < 1:
        raise ValueError(f"query_terms must be >= 1, got {query_terms!r}.")
    if probes < 1:
        raise ValueError(f"probes must be >= 1, got {probes!r}.")
    if max_postings < 0:
        raise ValueError(f"max_postings must be >= 0, got {max_postings!r}.")
    if fan < 0:
        raise ValueError(f"fan must be >= 0, got {fan!r}.")
    if candidates is None:
        candidates = max(4 * pool, _CANDIDATES)
    if candidates < pool:
        raise ValueError(f"candidates must be >= pool ({pool}), got {candidates!r}.")
    vectors = sp.csr_matrix(vectors, dtype=np.float32)
    if engine == "scipy" or (engine == "auto" and numba is None):
        result = _scipy_engine(vectors, pool, copy_labels, n_jobs, block_rows, rows)
        if progress is not None:
            progress(len(result[0]))
        return result
    approx = (int(query_terms), int(candidates), int(probes), int(max_postings), int(fan)) if mode == "approx" else None
    return _numba_engine(vectors, pool, copy_labels, n_jobs, rows, approx, progress)


def thread_count(n_jobs: int | None) -> int:
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
        raise ValueError(f"copy_labels must have shape ({n},), got {groups.shape}.")
    return groups.astype(np.int64)


def _split_dense(vectors: sp.csr_matrix, dense_cols: np.ndarray | None = None) -> tuple[sp.csr_matrix, np.ndarray]:
    """Split off the dense columns (by default :func:`dense_columns` of ``vectors`` itself): (sparse rest, dense
    columns transposed, shape (d, n))."""
    n = vectors.shape[0]
    if dense_cols is None:
        dense_cols = dense_columns(np.bincount(vectors.indices, minlength=vectors.shape[1]), n)
    if len(dense_cols) == 0:
        return vectors, np.zeros((0, n), dtype=np.float32)
    keep = np.ones(vectors.shape[1], dtype=bool)
    keep[dense_cols] = False
    dense_t = np.ascontiguousarray(vectors[:, dense_cols].toarray().T, dtype=np.float32)
    return vectors[:, np.flatnonzero(keep)].tocsr(), dense_t


def _engine_arrays(
    vectors: sp.csr_matrix, dense_cols: np.ndarray | None = None, with_postings: bool = True
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """What the compiled kernels read: (the sparse part's CSR arrays, its posting lists' CSR arrays) and the
    dense rows (row-major: a row's dense part is one cache line or two). ``with_postings`` False: empty posting lists,
    for a block whose rows are only read (the first block of a tile)."""
    check_csr(vectors)
    sparse, dense_t = _split_dense(vectors, dense_cols)
    dense_rows = np.ascontiguousarray(dense_t.T)
    if not sparse.has_sorted_indices:  # a copy: the caller's matrix may be read-only (memory-mapped)
        sparse = sparse.sorted_indices()
    if with_postings:
        postings = sparse.T.tocsr()  # each term's rows, ascending
        postings.sort_indices()
    else:
        postings = sp.csr_matrix((sparse.shape[1], 0), dtype=sparse.dtype)
    arrays = (
        sparse.indptr.astype(np.int64, copy=False),
        sparse.indices.astype(np.int32, copy=False),
        sparse.data,
        postings.indptr.astype(np.int64, copy=False),
        postings.indices.astype(np.int32, copy=False),
        postings.data,
    )
    return arrays, dense_rows


def _unsettled(dense_rows: np.ndarray, rows: np.ndarray, sims: np.ndarray, floor: np.float32) -> np.ndarray:
    """Rows whose pool from the pairs that share a term may miss a pair that shares none.

    Such a pair's similarity is the dense part alone, at most ``|d_i| max_j |d_j|``
    (Cauchy-Schwarz; a margin covers float32 rounding of the 20-odd products). A
    full pool whose last similarity is above that bound is exact.
    """
    if dense_rows.shape[1] == 0 or rows.shape[0] == 0:
        return np.empty(0, dtype=np.int64)
    norms = np.sqrt(np.einsum("ij,ij->i", dense_rows, dense_rows, dtype=np.float64))
    return _unsettled_of(norms, rows, sims, floor)


def _unsettled_of(
    norms: np.ndarray, rows: np.ndarray, sims: np.ndarray, floor: np.float32, top: float | None = None
) -> np.ndarray:
    """``_unsettled`` from the rows' dense norms; ``top``: the largest dense norm of every row (None: of these)."""
    if rows.shape[0] == 0 or not norms.size:
        return np.empty(0, dtype=np.int64)
    top = float(norms.max()) if top is None else float(top)
    if top == 0:
        return np.empty(0, dtype=np.int64)
    reach = norms * top  # a term-free pair's similarity is at most this
    settled = (rows[:, -1] >= 0) & (sims[:, -1].astype(np.float64) > reach * (1.0 + 1e-4) + 1e-6)
    return np.flatnonzero(~settled & (reach > float(floor)))


def _numba_engine(
    vectors: sp.csr_matrix,
    pool: int,
    groups: np.ndarray | None,
    n_jobs: int | None,
    rows: np.ndarray | None,
    approx: tuple[int, int, int, int] | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    n = vectors.shape[0]
    labels = _labels(groups, n)
    sources = None if rows is None else np.asarray(rows, dtype=np.int64)
    count = n if sources is None else len(sources)
    if count == 0 or n == 0:
        if progress is not None and count:
            progress(count)
        return np.full((count, pool), -1, dtype=np.int32), np.zeros((count, pool), dtype=np.float32)
    arrays, dense_rows = _engine_arrays(vectors, with_postings=approx is None)  # approx lists rows by cluster
    # approx clusters every row whatever the sources, so its threads are not capped by their count
    threads = max(1, min(thread_count(n_jobs), numba.config.NUMBA_NUM_THREADS, count if approx is None else n))
    floor = np.float32(SIMILARITY_FLOOR)
    kernels = _kernels()
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        if sources is None and approx is None:
            # symmetric: partial pools per thread, filled span by span, merged at the end
            dense_t = np.ascontiguousarray(dense_rows.T)
            part_sims = np.full((threads, n, pool), floor, dtype=np.float32)
            part_rows = np.full((threads, n, pool), -1, dtype=np.int32)
            worst_sims = np.full((threads, n), floor, dtype=np.float32)
            worst_rows = np.full((threads, n), -1, dtype=np.int32)
            heavy_of, heavy = heavy_columns(arrays[3:], n)
            for start in range(0, n, _CHUNK):
                stop = min(n, start + _CHUNK)
                kernels["all"](
                    start, stop, *arrays, heavy_of, heavy, dense_t, labels, part_sims, part_rows, worst_sims,
                    worst_rows, floor,
                )  # fmt: skip
                if progress is not None:
                    progress(stop - start)
            del heavy
            out_rows, out_sims = kernels["merge"](part_sims, part_rows)
            del part_sims, part_rows
            unsettled = _unsettled(dense_rows, out_rows, out_sims, floor)
            for start in range(0, len(unsettled), _CHUNK):  # pools a pair sharing no term could still enter
                chunk = unsettled[start : start + _CHUNK]
                part = kernels["some"](chunk, *arrays, dense_rows, labels, pool, threads, floor)
                out_rows[chunk], out_sims[chunk] = part
        else:
            if sources is None:
                sources = np.arange(n, dtype=np.int64)
            out_rows = np.empty((count, pool), dtype=np.int32)
            out_sims = np.empty((count, pool), dtype=np.float32)
            if approx is not None:
                out_rows, out_sims = _approx_engine(
                    sources, arrays, dense_rows, labels, pool, threads, floor, approx, progress, kernels
                )
            for start in range(0, count if approx is None else 0, _CHUNK):
                stop = min(count, start + _CHUNK)
                part = kernels["some"](sources[start:stop], *arrays, dense_rows, labels, pool, threads, floor)
                out_rows[start:stop], out_sims[start:stop] = part
                if progress is not None:
                    progress(stop - start)
    finally:
        numba.set_num_threads(previous)
    empty = out_rows < 0
    out_sims[empty] = 0.0
    return out_rows, out_sims


def _clusters(arrays, dense_rows, n_terms, probes, query_terms, threads, kernels):
    """Each row's ``probes`` most similar cluster centroids, best first (the first is the row's own cluster).

    Spherical k-means (cosine, unit-norm centroids) of a seeded sample of :data:`_SAMPLE_PER_CLUSTER` rows per
    cluster, ``ceil(n / _CLUSTER_ROWS)`` clusters; a cluster that takes more than :data:`_SPLIT_ABOVE` times
    its share of the sample (a popular topic) is split by k-means of its own rows into clusters of about that
    share, so that clusters stay near :data:`_CLUSTER_ROWS` rows. A row's similarity to a centroid is the
    partial dot product over its ``query_terms`` heaviest term columns plus the dense part
    (``_nearest_clusters``). Every step is seeded and sums in a fixed order, so the clusters are a function of
    the vectors and ``query_terms`` only (not of threads or ``rows=``)."""
    indptr, indices, data = arrays[:3]
    n = len(indptr) - 1

    def nearest(rows, centroids, top):
        postings = centroids[0].T.tocsr()  # term -> centroids, ascending
        postings.sort_indices()
        k_arrays = (postings.indptr.astype(np.int64), postings.indices.astype(np.int32), postings.data)
        dense_t = np.ascontiguousarray(centroids[1].T)
        return kernels["nearest"](
            rows, indptr, indices, data, dense_rows, *k_arrays, dense_t, top, query_terms, threads
        )[0]  # fmt: skip

    rng = np.random.default_rng(0)
    count = -(-n // _CLUSTER_ROWS)
    size = min(n, _SAMPLE_PER_CLUSTER * count)
    sample = np.arange(n, dtype=np.int64) if size == n else np.sort(rng.choice(n, size, replace=False))
    sparse = sp.csr_matrix((data, indices, indptr), shape=(n, n_terms))
    labels, (cent_sparse, cent_dense) = _kmeans(sample, count, rng, sparse, dense_rows, nearest)
    parts_sparse = []
    parts_dense = []
    for cluster in range(count):
        members = sample[labels == cluster]
        split = round(len(members) / _SAMPLE_PER_CLUSTER)
        if len(members) > _SPLIT_ABOVE * _SAMPLE_PER_CLUSTER and split >= 2:
            _, (sub_sparse, sub_dense) = _kmeans(members, split, rng, sparse, dense_rows, nearest)
            parts_sparse.append(sub_sparse)
            parts_dense.append(sub_dense)
        else:
            parts_sparse.append(cent_sparse[cluster])
            parts_dense.append(cent_dense[cluster : cluster + 1])
    centroids = sp.vstack(parts_sparse, format="csr"), np.concatenate(parts_dense)
    return nearest(np.arange(n, dtype=np.int64), centroids, probes)


def _kmeans(rows, count, rng, sparse, dense_rows, nearest):
    """Spherical k-means of ``rows`` into ``count`` clusters, started from ``count`` of them (at most
    :data:`_ROUNDS` rounds; a cluster left without rows keeps its centroid): (each row's cluster, (the
    centroids' sparse part as CSR, their dense part))."""
    part = sparse[rows]
    dense = dense_rows[rows]
    pick = np.sort(rng.choice(len(rows), count, replace=False))
    centroids = part[pick], np.ascontiguousarray(dense[pick])
    labels = nearest(rows, centroids, 1)[:, 0]
    for _ in range(_ROUNDS):
        member = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (labels, np.arange(len(rows)))))
        member.resize((count, len(rows)))
        sums = (member @ part).tocsr()  # scipy sums each centroid's rows in one fixed order
        sums_dense = np.asarray(member @ dense, dtype=np.float32)
        norms = np.sqrt(np.asarray(sums.multiply(sums).sum(axis=1)).ravel() + (sums_dense**2).sum(axis=1))
        empty = norms == 0
        scale = (1.0 / np.where(empty, 1.0, norms)).astype(np.float32) * ~empty
        centroids = (
            (sp.diags(scale) @ sums + sp.diags(empty.astype(np.float32)) @ centroids[0]).tocsr(),
            np.ascontiguousarray(scale[:, None] * sums_dense + empty[:, None] * centroids[1], dtype=np.float32),
        )
        moved = nearest(rows, centroids, 1)[:, 0]
        if (moved == labels).all():
            break
        labels = moved
    return labels, centroids


def _approx_engine(sources, arrays, dense_rows, labels, pool, threads, floor, approx, progress, kernels):
    """Two passes: candidates from the nearest clusters (pass 1), then neighbours of neighbours (pass 2), both
    re-scored exactly."""
    n = len(arrays[0]) - 1
    n_terms = arrays[3].shape[0] - 1
    query_terms, candidates, probes, max_postings, fan = approx
    count = len(sources)
    norms = _row_norms(dense_rows).astype(np.float32)
    nearest = _clusters(arrays, dense_rows, n_terms, probes, query_terms, threads, kernels)
    own = nearest[:, 0].astype(np.int64)
    order = np.argsort(own, kind="stable")  # the rows, cluster by cluster
    starts = np.zeros(int(nearest.max()) + 2, dtype=np.int64)  # every probed cluster has its span
    starts[1:] = np.cumsum(np.bincount(own, minlength=len(starts) - 1))
    p_indptr = np.zeros(n_terms + 1, dtype=np.int64)
    p_indptr[1:] = np.cumsum(np.bincount(arrays[1], minlength=n_terms))
    p_pos, p_data = kernels["positions"](*arrays[:3], order, p_indptr)
    dense_t = np.ascontiguousarray(dense_rows[order].T)
    # Rows are visited cluster by cluster, and within a cluster by their heaviest term column: consecutive
    # visits then probe the same clusters and read the same posting lists, still in cache (a row's pool does
    # not depend on it).
    heaviest = kernels["heaviest"](*arrays[:3])
    width = max(pool, fan)
    # pass 1 on the sources and (for rows=) on their pass-1 neighbours, whose lists pass 2 reads
    if count == n and (sources == np.arange(n)).all():
        first = sources
    else:
        first = np.unique(sources)
    lookup = np.full(n, -1, dtype=np.int64)
    first_rows = np.empty((0, width), dtype=np.int32)
    first_sims = np.empty((0, width), dtype=np.float32)
    half = count // 2
    reported = 0
    todo = first
    for _ in range(2):  # the sources, then (rows=) the rows their pass-2 candidates come from
        if len(todo) == 0:
            break
        todo = todo[np.lexsort((heaviest[todo], own[todo]))]
        lookup[todo] = np.arange(len(first_rows), len(first_rows) + len(todo))
        rows_part = np.empty((len(todo), width), dtype=np.int32)
        sims_part = np.empty((len(todo), width), dtype=np.float32)
        for start in range(0, len(todo), _CHUNK):
            stop = min(len(todo), start + _CHUNK)
            rows_part[start:stop], sims_part[start:stop] = kernels["probed"](
                todo[start:stop], *arrays[:3], p_indptr, p_pos, p_data, order, starts, nearest, dense_rows,
                dense_t, norms, labels, width, threads, floor, query_terms, candidates, max_postings,
            )  # fmt: skip
            if progress is not None and len(first_rows) == 0:
                step = half * stop // len(todo) - reported
                if step:
                    progress(step)
                    reported += step
        first_rows = np.concatenate([first_rows, rows_part])
        first_sims = np.concatenate([first_sims, sims_part])
        linked = np.unique(rows_part[:, :fan])
        todo = linked[(linked >= 0) & (lookup[np.maximum(linked, 0)] < 0)].astype(np.int64)
        todo = np.unique(todo)
    del p_pos, p_data, dense_t
    out_rows = np.empty((count, pool), dtype=np.int32)
    out_sims = np.empty((count, pool), dtype=np.float32)
    visit = np.lexsort((heaviest[sources], own[sources]))  # positions in sources, grouped as above
    for start in range(0, count, _CHUNK):
        stop = min(count, start + _CHUNK)
        out_rows[visit[start:stop]], out_sims[visit[start:stop]] = kernels["refine"](
            sources[visit[start:stop]],
            lookup,
            first_rows,
            first_sims,
            *arrays[:3],
            dense_rows,
            labels,
            pool,
            threads,
            floor,
            fan,
            n_terms,
        )
        if progress is not None:
            step = half + (count - half) * stop // count - reported
            if step:
                progress(step)
                reported += step
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
        raise ValueError(f"copy_labels must have shape ({n},), got {groups.shape}.")
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


# ---------------------------------------------------------------------------------------------- tiles
# The neighbour search split into tasks (the build on Dask, ``recommender._cluster``): row blocks, and tiles of
# block x block, each giving partial pools for the rows of both blocks. Every pair is summed as in the one-process
# search, so merging the partial pools of every tile gives the same pools, bit for bit.


def dense_columns(column_counts: np.ndarray, n: int) -> np.ndarray:
    """The columns handled as dense columns (see ``_split_dense``), from every row's column counts."""
    if n < 8:
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(np.asarray(column_counts) >= max(1.0, _DENSE_SHARE * n))


def empty_pools(count: int, pool: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` empty partial pools: (rows -1, similarities at the floor)."""
    return np.full((count, pool), -1, dtype=np.int32), np.full((count, pool), np.float32(SIMILARITY_FLOOR))


def heavy_columns(postings: tuple[np.ndarray, np.ndarray, np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """The terms whose posting lists (CSR arrays of terms x ``n`` target rows) the sums add as whole columns (see
    ``_add_terms_dense``): ``(heavy_of, heavy)``, ``heavy_of[term]`` the term's row of ``heavy`` or -1, ``heavy``
    of shape (count, n), float32, zero where a target lacks the term."""
    t_indptr, t_rows, t_data = postings
    counts = np.diff(t_indptr)
    heavy_of = np.full(counts.shape[0], -1, dtype=np.int32)
    limit = _HEAVY_VALUES // max(n, 1)
    chosen = np.flatnonzero(counts >= max(1.0, _HEAVY_SHARE * n))
    chosen = chosen[np.argsort(-counts[chosen], kind="stable")][:limit]
    heavy = np.zeros((chosen.size, n), dtype=np.float32)
    for k, term in enumerate(chosen):
        a, b = t_indptr[term], t_indptr[term + 1]
        heavy[k, t_rows[a:b]] = t_data[a:b]
    heavy_of[chosen] = np.arange(chosen.size, dtype=np.int32)
    return heavy_of, heavy


def _tile_arrays(
    vectors: sp.csr_matrix, dense_cols: np.ndarray, with_postings: bool = True
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """The kernel arrays of one block (``_engine_arrays``, with the dense columns of the whole matrix), checked."""
    vectors = sp.csr_matrix(vectors, dtype=np.float32)
    return _engine_arrays(vectors, dense_cols, with_postings)


def single_threaded() -> None:
    """The calling thread's compiled loops on one thread from now on (numba's thread count is the calling
    thread's own): for a task of the build on Dask, where a worker runs one task per thread of its own. Without it
    the parallel loops of a tile or a merge also start numba's other threads, on cores the other workers use."""
    if numba is not None and numba.get_num_threads() != 1:
        numba.set_num_threads(1)


def check_csr(matrix: sp.csr_matrix, part: str = "vectors") -> None:
    """Raise :class:`InvalidPart` unless a CSR matrix's index arrays fit its shape.

    The compiled kernels (and scipy's own slicing) do not check bounds, so every
    matrix they see passes this first: row pointers from 0, non-decreasing, ending
    at the number of stored values; column indices inside the width; as many
    values as indices, all finite (a NaN would slip past every comparison that
    sizes a kernel's buffers). O(stored values).
    """
    n, width = matrix.shape
    indptr, indices = matrix.indptr, matrix.indices
    if indptr.ndim != 1 or indptr.shape != (n + 1,) or indptr.dtype.kind not in "iu":
        raise InvalidPart(f"{part}.indptr", f"expected {n + 1} integer row pointers, got shape {indptr.shape}")
    if indptr[0] != 0 or indptr[-1] != indices.size or (n and (np.diff(indptr) < 0).any()):
        raise InvalidPart(f"{part}.indptr", "row pointers must rise from 0 to the number of stored values")
    if indices.ndim != 1 or indices.dtype.kind not in "iu" or matrix.data.shape != indices.shape:
        raise InvalidPart(f"{part}.indices", "expected one integer column index per stored value")
    if indices.size and (int(indices.min()) < 0 or int(indices.max()) >= width):
        raise InvalidPart(f"{part}.indices", f"column indices must lie in [0, {width})")
    if matrix.data.size and not np.isfinite(matrix.data).all():
        raise InvalidPart(f"{part}.data", "stored values must be finite (no NaN or infinity)")


def tile_pools(
    first: sp.csr_matrix,
    second: sp.csr_matrix | None,
    offsets: tuple[int, int],
    labels: tuple[np.ndarray, np.ndarray | None],
    dense_cols: np.ndarray,
    pool: int,
    bars: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None]:
    """Partial pools from the pairs of one tile that share a term.

    ``second`` None: the pairs within block ``first``; else the pairs of a row of
    ``first`` (global rows ``offsets[0] + i``) and a row of ``second`` (global rows
    ``offsets[1] + j``, after those of ``first``). ``labels`` are the blocks' copy
    labels, ``dense_cols`` :func:`dense_columns` of the whole matrix. Returns
    ``(rows, similarities)`` for the rows of ``first`` and (None for one block) for
    the rows of ``second``, with global row numbers, empty slots -1 at the floor
    similarity (merge them with :func:`merged_pools`).

    ``bars`` (two blocks only): pools of the same rows found already, ``(rows,
    similarities)`` sorted best first, such as each block's own tile. A full one
    holds ``pool`` pairs at least as similar as its last, so the tile offers a row
    only the pairs that rank above that last entry: fewer pool updates, and the
    merged pools are the same.
    """
    kernels = _kernels()
    floor = np.float32(SIMILARITY_FLOOR)
    arrays, dense_a = _tile_arrays(first, dense_cols, with_postings=second is None)  # two blocks: A's rows are read
    count_a = first.shape[0]
    labels_a = np.ascontiguousarray(labels[0], dtype=np.int64)
    if labels_a.shape != (count_a,):
        raise ValueError(f"labels of the first block must have shape ({count_a},), got {labels_a.shape}.")
    if second is None:
        part_rows, part_sims = empty_pools(count_a, pool)
        worst_sims = np.full((1, count_a), floor, dtype=np.float32)
        worst_rows = np.full((1, count_a), -1, dtype=np.int32)
        part_rows, part_sims = part_rows[None], part_sims[None]
        if count_a:
            dense_t = np.ascontiguousarray(dense_a.T)
            kernels["all"](
                0, count_a, *arrays, *heavy_columns(arrays[3:], count_a), dense_t, labels_a, part_sims, part_rows,
                worst_sims, worst_rows, floor,
            )  # fmt: skip
        rows, sims = kernels["merge"](part_sims, part_rows)  # the pools of the pass are heaps: sorted here
        rows[rows >= 0] += offsets[0]
        return (rows, sims), None
    if first.shape[1] != second.shape[1]:
        raise ValueError(f"the blocks have {first.shape[1]} and {second.shape[1]} columns.")
    count_b = second.shape[0]
    labels_b = np.ascontiguousarray(labels[1], dtype=np.int64)
    if labels_b.shape != (count_b,):
        raise ValueError(f"labels of the second block must have shape ({count_b},), got {labels_b.shape}.")
    if offsets[1] < offsets[0] + count_a:
        raise ValueError("the second block's rows must come after the first block's.")
    b_arrays, dense_b = _tile_arrays(second, dense_cols)
    b_postings = b_arrays[3:]  # B's rows are not read: the copy of its sparse part is let go before the kernel runs
    del b_arrays
    rows_a, sims_a = empty_pools(count_a, pool)
    rows_b, sims_b = empty_pools(count_b, pool)
    bar_a = _bar(bars[0] if bars is not None else None, count_a, pool)
    bar_b = _bar(bars[1] if bars is not None else None, count_b, pool)
    if count_a and count_b:
        kernels["cross"](
            *arrays[:3], *b_postings, *heavy_columns(b_postings, count_b), dense_a, np.ascontiguousarray(dense_b.T),
            labels_a, labels_b,
            sims_a, rows_a, sims_b, rows_b, *bar_a, *bar_b, np.int32(offsets[0]), np.int32(offsets[1]), floor,
        )  # fmt: skip
        rows_a, sims_a = kernels["merge"](sims_a[None], rows_a[None])  # the kernel's heaps, sorted
        rows_b, sims_b = kernels["merge"](sims_b[None], rows_b[None])
    return (rows_a, sims_a), (rows_b, sims_b)


def _bar(found: tuple[np.ndarray, np.ndarray] | None, count: int, pool: int) -> tuple[np.ndarray, np.ndarray]:
    """The last (similarity, row) of each of ``count`` sorted pools found already (floor and -1: none)."""
    if found is None:
        return np.full(count, np.float32(SIMILARITY_FLOOR)), np.full(count, -1, dtype=np.int32)
    rows, sims = np.asarray(found[0]), np.asarray(found[1])
    if rows.shape != (count, pool) or sims.shape != (count, pool):
        raise ValueError(f"bars must be pools of shape ({count}, {pool}), got {rows.shape} and {sims.shape}.")
    last_sims = np.ascontiguousarray(sims[:, -1], dtype=np.float32)
    last_rows = np.ascontiguousarray(rows[:, -1], dtype=np.int32)
    empty = last_rows < 0
    last_sims[empty] = np.float32(SIMILARITY_FLOOR)  # a pool not full bounds nothing
    return last_sims, last_rows


def sweep_pools(
    first: sp.csr_matrix,
    sources: np.ndarray,
    second: sp.csr_matrix,
    offsets: tuple[int, int],
    labels: tuple[np.ndarray, np.ndarray],
    dense_cols: np.ndarray,
    pool: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Partial pools of rows ``sources`` of block ``first`` against every row of ``second`` (any order of blocks,
    the same block too), whether or not a pair shares a term: the rows that :func:`unsettled_rows` names."""
    kernels = _kernels()
    floor = np.float32(SIMILARITY_FLOOR)
    sources = np.ascontiguousarray(sources, dtype=np.int64)
    if sources.size and (sources.min() < 0 or sources.max() >= first.shape[0]):
        raise ValueError("sources must be rows of the first block.")
    labels_a = np.ascontiguousarray(labels[0], dtype=np.int64)
    labels_b = np.ascontiguousarray(labels[1], dtype=np.int64)
    if labels_a.shape != (first.shape[0],) or labels_b.shape != (second.shape[0],):
        raise ValueError("labels must have one entry per row of each block.")
    if first.shape[1] != second.shape[1]:
        raise ValueError(f"the blocks have {first.shape[1]} and {second.shape[1]} columns.")
    # the sources' rows only, and B's posting lists of their terms only (they are few: building B's whole posting
    # lists would cost more than the sweep); the terms renumbered in the same order, so each pair is summed as in
    # the tiles
    first = sp.csr_matrix(first, dtype=np.float32)
    check_csr(first)
    arrays, dense_a = _tile_arrays(first[sources], dense_cols, with_postings=False)
    indptr, indices, data = arrays[:3]  # term columns numbered without the dense ones, as ``_split_dense`` numbers them
    terms = np.unique(indices)
    second = sp.csr_matrix(second, dtype=np.float32)
    check_csr(second)
    dense_cols = np.asarray(dense_cols, dtype=np.int64)
    keep = np.ones(second.shape[1], dtype=bool)
    keep[dense_cols] = False
    postings = second[:, np.flatnonzero(keep)[terms]].T.tocsr()  # each term's rows, ascending
    postings.sort_indices()
    dense_b = np.ascontiguousarray(second[:, dense_cols].toarray(), dtype=np.float32)
    rows, sims = empty_pools(len(sources), pool)
    if len(sources) and second.shape[0]:
        kernels["sweep"](
            np.arange(len(sources), dtype=np.int64), indptr, np.searchsorted(terms, indices).astype(np.int32), data,
            postings.indptr.astype(np.int64, copy=False), postings.indices.astype(np.int32, copy=False),
            postings.data, dense_a, dense_b, labels_a[sources], labels_b, sims, rows,
            offsets[0] + sources, np.int64(offsets[1]), floor,
        )  # fmt: skip
    return rows, sims


def merged_pools(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """One pool per row from partial pools of the same rows (best first, ties by row)."""
    if len(parts) == 1:
        return parts[0]
    rows = np.stack([np.asarray(r, dtype=np.int32) for r, _ in parts])
    sims = np.stack([np.asarray(s, dtype=np.float32) for _, s in parts])
    if rows.shape != sims.shape or rows.ndim != 3:
        raise ValueError("partial pools must all have the same shape.")
    if rows.size and (rows.min() < -1):
        raise ValueError("partial pools hold negative rows.")
    return _kernels()["merge"](sims, rows)


def merged_sorted(
    first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`merged_pools` of two sorted pools of the same rows (as :func:`tile_pools` and the merges return
    them: best first, ties by row, empty slots last), in one pass over each (a tenth of the time of the general
    merge). Raises ValueError where a pool's similarities rise along a row or an empty slot comes before a
    filled one (ties are taken to be in row order, as every merge leaves them)."""
    (rows_a, sims_a), (rows_b, sims_b) = first, second
    arrays = [np.ascontiguousarray(a, dtype=t) for a, t in ((rows_a, np.int32), (sims_a, np.float32),
                                                            (rows_b, np.int32), (sims_b, np.float32))]  # fmt: skip
    if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 2:
        raise ValueError("sorted pools must all have the same shape (rows, pool).")
    for rows, sims in (arrays[:2], arrays[2:]):
        valid = rows >= 0
        if rows.size and (
            rows.min() < -1 or (np.diff(sims, axis=1) > 0).any() or (np.diff(valid.view(np.int8), axis=1) > 0).any()
        ):
            raise ValueError("pools to merge in one pass must be sorted best first, with their empty slots last.")
    return _kernels()["merge_sorted"](arrays[1], arrays[0], arrays[3], arrays[2])


def dense_norms(vectors: sp.csr_matrix, dense_cols: np.ndarray) -> np.ndarray:
    """Each row's norm over the dense columns (float64), for :func:`unsettled_rows`."""
    if len(dense_cols) == 0:
        return np.zeros(vectors.shape[0], dtype=np.float64)
    return _row_norms(np.ascontiguousarray(sp.csr_matrix(vectors)[:, dense_cols].toarray(), dtype=np.float32))


def _row_norms(dense: np.ndarray) -> np.ndarray:
    """Each row's Euclidean norm (float64) of a dense float32 array."""
    return np.sqrt(np.einsum("ij,ij->i", dense, dense, dtype=np.float64))


def unsettled_rows(norms: np.ndarray, rows: np.ndarray, sims: np.ndarray, top: float | None = None) -> np.ndarray:
    """The rows whose pool a pair sharing no term could still enter (see ``_unsettled``), from their
    :func:`dense_norms`; ``top``: the largest dense norm of every row of the matrix, when these are a block of it
    (None: these are every row)."""
    return _unsettled_of(np.asarray(norms, dtype=np.float64), rows, sims, np.float32(SIMILARITY_FLOOR), top)


def finished(rows: np.ndarray, sims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merged pools as ``top_neighbours`` returns them (similarity 0 in empty slots)."""
    sims = np.array(sims, dtype=np.float32)
    sims[rows < 0] = 0.0
    return np.asarray(rows, dtype=np.int32), sims


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


def _propose(cand_sims, cand_rows, kept, value, row):  # pragma: no cover - compiled
    """Offer (value, row) to the best candidates, kept sorted (``_insert``) in ``cand_*``, of which the first
    ``kept`` are filled; returns how many are filled after."""
    size = cand_sims.shape[0]
    if kept < size:
        kept += 1
        _insert(cand_sims[:kept], cand_rows[:kept], value, row)
    elif value > cand_sims[size - 1] or (value == cand_sims[size - 1] and row < cand_rows[size - 1]):
        _insert(cand_sims, cand_rows, value, row)
    return kept


def _worse(s1, r1, s2, r2):  # pragma: no cover - compiled
    """Whether entry (s1, r1) ranks below (s2, r2): lower similarity, or the same and a higher row."""
    return (s1 < s2) | ((s1 == s2) & (r1 > r2))  # no branches: the outcome is a coin toss in a heap


def _offer(heap_sims, heap_rows, value, row):  # pragma: no cover - compiled
    """Put (value, row) into a pool kept as a heap with its worst entry first, in place of that entry (the
    caller has checked that it ranks above it): O(log pool) where ``_insert`` moves up to ``pool`` entries."""
    k = heap_sims.shape[0]
    p = 0
    while True:
        c = 2 * p + 1
        if c >= k:
            break
        if c + 1 < k and _worse(heap_sims[c + 1], heap_rows[c + 1], heap_sims[c], heap_rows[c]):
            c += 1
        if not _worse(heap_sims[c], heap_rows[c], value, row):
            break
        heap_sims[p] = heap_sims[c]
        heap_rows[p] = heap_rows[c]
        p = c
    heap_sims[p] = value
    heap_rows[p] = row


def _candidates(row, lo, hi, dense, own_worst, worst, floor, sims, rows, found_rows, found_sims):  # pragma: no cover
    """The targets ``lo <= j < hi`` of one source whose pair may enter a pool: the term part ``row[j]`` (then
    cleared) plus the dense part ``dense[j - lo]``, above the floor and not below both the source's worst
    ``own_worst`` and ``worst[j]``. Written to ``found_*``, the lines of their pools (``sims``, ``rows``)
    fetched ahead; returns how many. A target whose term part is 0 (it shares no term with the source, or its
    shared terms cancel) has the dense part alone, and is left to the bound of ``_unsettled``.

    Two passes: every target's sum, or -1 where it fails a test, into ``found_sims`` (one loop without
    branches, which the compiler vectorises), then the passing ones moved to the front, in order."""
    pool_size = sims.shape[1]
    m = hi - lo
    sums = row[lo:hi]  # slices from 0: a loop indexed from lo > 0 is not vectorised (8x slower)
    bars = worst[lo:hi]
    for q in range(m):
        term = sums[q]
        v = term + dense[q]  # + 0.0 without dense columns: unchanged
        sums[q] = 0.0
        keep = (term != 0.0) & (v > floor) & ((v >= own_worst) | (v >= bars[q]))
        found_sims[q] = v if keep else np.float32(-1.0)
    found = 0
    for q in range(m):  # found <= q: each sum is read before its slot is written
        v = found_sims[q]
        if v < 0.0:
            continue
        j = lo + q
        found_rows[found] = j
        found_sims[found] = v
        found += 1
        for e in range(0, pool_size, 16):  # the 64-byte lines of j's pool
            _prefetch(sims[j], e)
            _prefetch(rows[j], e)
    return found


def _dense_block(source, dense_t, lo, hi, s0, s1, s2, s3, out):  # pragma: no cover - compiled
    """``out[q]`` = the dense part of the similarity of a row whose dense values are ``source`` (length d) and
    row ``lo + q`` of ``dense_t`` (the dense columns transposed, shape (d, n)), for ``lo <= lo + q < hi``,
    across ``q`` at once (SIMD): the same four running sums per pair, over the same columns, added in the same
    order, so every value is bit-for-bit ``_dense_pair``'s. ``s*`` are scratch. One column per loop (one array
    written, one read), so that the compiler vectorises each."""
    d = dense_t.shape[0]
    m = hi - lo
    for q in range(m):
        s0[q] = 0.0
        s1[q] = 0.0
        s2[q] = 0.0
        s3[q] = 0.0
    for c in range(d):
        a = source[c]
        r = dense_t[c, lo:hi]
        k = c % 4
        if k == 0:
            for q in range(m):
                s0[q] += a * r[q]
        elif k == 1:
            for q in range(m):
                s1[q] += a * r[q]
        elif k == 2:
            for q in range(m):
                s2[q] += a * r[q]
        else:
            for q in range(m):
                s3[q] += a * r[q]
    for q in range(m):
        out[q] = (s0[q] + s1[q]) + (s2[q] + s3[q])


def _span_scratch(size):  # pragma: no cover - compiled
    """Per-thread buffers for ``size`` target rows at a time: the dense parts (``_dense_block``'s output, zero) and
    its four running sums, and the rows found with their similarities (``_candidates``)."""
    return (
        np.zeros(size, dtype=np.float32),
        np.empty(size, dtype=np.float32),
        np.empty(size, dtype=np.float32),
        np.empty(size, dtype=np.float32),
        np.empty(size, dtype=np.float32),
        np.empty(size, dtype=np.int64),
        np.empty(size, dtype=np.float32),
    )


def _dense_dot(dense_rows, i, j):  # pragma: no cover - compiled
    """The dense part of similarity(i, j) (see ``_dense_pair``)."""
    return _dense_pair(dense_rows, i, dense_rows, j)


def _dense_pair(first, i, second, j):  # pragma: no cover - compiled
    """The dense part of the similarity of row ``i`` of ``first`` and row ``j`` of ``second``, summed in one fixed
    order on every path: four running sums over the columns ``c = k mod 4`` (independent, so they run side by
    side), added as ``(s0 + s1) + (s2 + s3)``."""
    d = first.shape[1]
    s0 = np.float32(0.0)
    s1 = np.float32(0.0)
    s2 = np.float32(0.0)
    s3 = np.float32(0.0)
    c = 0
    while c + 4 <= d:
        s0 += first[i, c] * second[j, c]
        s1 += first[i, c + 1] * second[j, c + 1]
        s2 += first[i, c + 2] * second[j, c + 2]
        s3 += first[i, c + 3] * second[j, c + 3]
        c += 4
    if c < d:
        s0 += first[i, c] * second[j, c]
    if c + 1 < d:
        s1 += first[i, c + 1] * second[j, c + 1]
    if c + 2 < d:
        s2 += first[i, c + 2] * second[j, c + 2]
    return (s0 + s1) + (s2 + s3)


def _add_terms(acc, i, lo, indptr, indices, data, t_indptr, t_rows, t_data):  # pragma: no cover - compiled
    """acc[j] += the term part of similarity(i, j) for every j >= lo: row i's term columns ascending, each over
    its posting list (``t_*``, rows ascending)."""
    for p in range(indptr[i], indptr[i + 1]):
        _add_posting(acc, lo, indices[p], data[p], t_indptr, t_rows, t_data)


def _add_posting(acc, lo, term, weight, t_indptr, t_rows, t_data):  # pragma: no cover - compiled
    """acc[j] += weight * (row j's value of ``term``) for the rows j >= lo of its posting list."""
    a = t_indptr[term]
    b = t_indptr[term + 1]
    if lo > 0:
        a += np.searchsorted(t_rows[a:b], lo)
    rows = t_rows[a:b]  # slices from 0: the loop runs about a fifth faster than one indexed from a
    values = t_data[a:b]
    for q in range(rows.shape[0]):
        acc[rows[q]] += weight * values[q]


def _add_terms_dense(acc, i, lo, indptr, indices, data, t_indptr, t_rows, t_data, heavy_of, heavy):  # pragma: no cover
    """``_add_terms``, bit for bit, with the terms of :func:`heavy_columns` (``heavy_of[term] >= 0``) added as
    whole columns (``heavy[heavy_of[term]]``, every row from ``lo``, zeros where the term is absent) in one
    loop the compiler vectorises, instead of a scattered add per posting: a zero added, of either sign, leaves a
    sum as it was (a sum starts at +0.0, and +0.0 + -0.0 is +0.0), and each row's terms are still added in the
    same order."""
    sums = acc[lo:]  # slices from 0: a loop from lo > 0 is not vectorised
    for p in range(indptr[i], indptr[i + 1]):
        term = indices[p]
        weight = data[p]
        h = heavy_of[term]
        if h < 0:
            _add_posting(acc, lo, term, weight, t_indptr, t_rows, t_data)
        else:
            column = heavy[h, lo:]
            for q in range(sums.shape[0]):
                sums[q] += weight * column[q]


def _accumulate(acc, i, lo, indptr, indices, data, t_indptr, t_rows, t_data, dense_rows):  # pragma: no cover
    """acc[j] += similarity(i, j) for every j >= lo: term columns ascending, then the dense part."""
    n = acc.shape[0]
    _add_terms(acc, i, lo, indptr, indices, data, t_indptr, t_rows, t_data)
    if dense_rows.shape[1] > 0:
        for j in range(lo, n):
            acc[j] += _dense_dot(dense_rows, i, j)


def _all_rows_span(
    start,
    stop,
    indptr,
    indices,
    data,
    t_indptr,
    t_rows,
    t_data,
    heavy_of,
    heavy,
    dense_t,
    groups,
    part_sims,
    part_rows,
    worst_sims,
    worst_rows,
    floor,
):  # pragma: no cover
    """Source rows ``start <= i < stop`` of the symmetric pass: each pair (i, j > i) that shares a term computed
    once (term columns ascending, then the dense part, see ``_dense_dot``) and offered to both rows.

    Sources are taken :data:`_SOURCES` at a time (thread ``t`` takes every ``threads``-th such block): the term
    parts of a block's sources are summed first (one buffer of ``n`` per source), then the targets are swept
    :data:`_SPAN` rows at a time, and within a span source by source, so that the span's dense columns
    (``dense_t``, the dense columns transposed, shape (d, n)) are read from memory once per block rather than
    once per source; each dense part is ``_dense_block``'s, bit for bit. In a span, the pairs that may enter
    a pool are found first and their pools fetched ahead, then offered. Thread ``t`` keeps its own partial
    pools ``part_*[t]``, as heaps with the worst entry first (copied to ``worst_*[t]``, kept current), carried
    over from block to block and merged (and sorted) by ``_merge_parts`` at the end.
    """
    n = indptr.shape[0] - 1
    d = dense_t.shape[0]
    threads = part_sims.shape[0]
    width = min(_SOURCES, max(1, _SOURCE_VALUES // max(n, 1)))
    for t in numba.prange(threads):
        acc = np.zeros((width, n), dtype=np.float32)
        dense, s0, s1, s2, s3, found_rows, found_sims = _span_scratch(_SPAN)
        t_sims = part_sims[t]
        t_rowz = part_rows[t]
        w_sims = worst_sims[t]
        w_rows = worst_rows[t]
        for first in range(start + t * width, stop, threads * width):  # interleaved: rows near the end do less
            last = min(stop, first + width)
            for i in range(first, last):
                _add_terms_dense(
                    acc[i - first], i, i + 1, indptr, indices, data, t_indptr, t_rows, t_data, heavy_of, heavy
                )
            for block in range(first + 1, n, _SPAN):
                span_end = min(n, block + _SPAN)
                for i in range(first, last):
                    lo = max(block, i + 1)
                    if lo >= span_end:
                        continue
                    row = acc[i - first]
                    if d > 0:
                        _dense_block(dense_t[:, i], dense_t, lo, span_end, s0, s1, s2, s3, dense)
                    gi = groups[i]
                    own_sims = t_sims[i]
                    own_rows = t_rowz[i]
                    found = _candidates(
                        row, lo, span_end, dense, own_sims[0], w_sims, floor, t_sims, t_rowz, found_rows, found_sims
                    )
                    for f in range(found):
                        j = found_rows[f]
                        v = found_sims[f]
                        better_for_i = v > own_sims[0] or (v == own_sims[0] and j < own_rows[0])
                        better_for_j = v > w_sims[j] or (v == w_sims[j] and i < w_rows[j])
                        if (better_for_i or better_for_j) and (gi < 0 or groups[j] != gi):
                            if better_for_i:
                                _offer(own_sims, own_rows, v, j)
                                w_sims[i] = own_sims[0]
                                w_rows[i] = own_rows[0]
                            if better_for_j:
                                _offer(t_sims[j], t_rowz[j], v, i)
                                w_sims[j] = t_sims[j, 0]
                                w_rows[j] = t_rowz[j, 0]


def _merge_parts(part_sims, part_rows):  # pragma: no cover
    """Merge partial pools of every row (in any order: heaps or sorted) into one pool per row, sorted best
    first; empty slots: row -1 at the floor similarity."""
    parts, n, pool = part_sims.shape
    floor = np.float32(SIMILARITY_FLOOR)
    out_sims = np.empty((n, pool), dtype=np.float32)
    out_rows = np.empty((n, pool), dtype=np.int32)
    for r in numba.prange(n):
        best_sims = np.full(pool, -np.inf, dtype=np.float32)
        best_rows = np.full(pool, -1, dtype=np.int32)
        for t in range(parts):
            for p in range(pool):
                v = part_sims[t, r, p]
                row = part_rows[t, r, p]
                if row >= 0 and _worse(best_sims[0], best_rows[0], v, row):
                    _offer(best_sims, best_rows, v, row)
        for a in range(1, pool):  # sort best first (insertion sort: a pool is small)
            v = best_sims[a]
            row = best_rows[a]
            b = a - 1
            while b >= 0 and _worse(best_sims[b], best_rows[b], v, row):
                best_sims[b + 1] = best_sims[b]
                best_rows[b + 1] = best_rows[b]
                b -= 1
            best_sims[b + 1] = v
            best_rows[b + 1] = row
        for a in range(pool):
            if best_rows[a] < 0:
                best_sims[a] = floor
        out_sims[r] = best_sims
        out_rows[r] = best_rows
    return out_rows, out_sims


def _merge_sorted(sims_a, rows_a, sims_b, rows_b):  # pragma: no cover - compiled
    """Two sorted pools of every row merged into one, sorted (see ``merged_sorted``): the better of the two heads
    (``_worse``'s order) taken ``pool`` times, empty slots (row -1) at the floor similarity."""
    n, pool = sims_a.shape
    floor = np.float32(SIMILARITY_FLOOR)
    out_sims = np.empty((n, pool), dtype=np.float32)
    out_rows = np.empty((n, pool), dtype=np.int32)
    for r in range(n):
        i = 0
        j = 0
        for p in range(pool):
            has_a = i < pool and rows_a[r, i] >= 0
            has_b = j < pool and rows_b[r, j] >= 0
            if has_a and (not has_b or not _worse(sims_a[r, i], rows_a[r, i], sims_b[r, j], rows_b[r, j])):
                out_sims[r, p] = sims_a[r, i]
                out_rows[r, p] = rows_a[r, i]
                i += 1
            elif has_b:
                out_sims[r, p] = sims_b[r, j]
                out_rows[r, p] = rows_b[r, j]
                j += 1
            else:
                out_sims[r, p] = floor
                out_rows[r, p] = -1
    return out_rows, out_sims


def _some_rows(
    sources, indptr, indices, data, t_indptr, t_rows, t_data, dense_rows, groups, pool, threads, floor
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
            _accumulate(acc, i, 0, indptr, indices, data, t_indptr, t_rows, t_data, dense_rows)
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


def _query(i, indptr, indices, data, query_terms, terms, weights):  # pragma: no cover - compiled
    """Row ``i``'s ``query_terms`` heaviest term columns (weight descending, then column ascending), written to
    ``terms``/``weights`` in column order; returns how many."""
    a = indptr[i]
    b = indptr[i + 1]
    length = b - a
    threshold = -np.inf
    ties = 0  # columns of weight == threshold still to take
    if length > query_terms:
        ordered = np.sort(data[a:b])
        threshold = ordered[length - query_terms]
        above = 0
        for p in range(a, b):
            if data[p] > threshold:
                above += 1
        ties = query_terms - above
    count = 0
    for p in range(a, b):
        weight = data[p]
        if weight < threshold:
            continue
        if weight == threshold:
            if ties == 0:
                continue
            ties -= 1
        terms[count] = indices[p]
        weights[count] = weight
        count += 1
        if count == query_terms:  # the buffers' size, whatever the values compare like
            break
    return count


def _nearest_clusters(
    sources, indptr, indices, data, dense_rows, k_indptr, k_clusters, k_data, k_dense_t, top, query_terms, threads
):  # pragma: no cover
    """Each source row's ``top`` most similar centroids (similarity descending, then cluster ascending) by the
    partial dot product over the row's ``query_terms`` heaviest term columns (``_query``) plus the dense part:
    the centroids' sparse parts as posting lists ``k_*`` (term -> clusters), their dense parts transposed
    ``k_dense_t`` (shape (d, clusters); summed column by column, across the clusters at once). A row with
    nothing in common with any centroid (an empty row, say) takes the clusters ``i, i + 1, ...`` modulo their
    number, so that such rows do not pile into the first clusters."""
    count = sources.shape[0]
    d, n_clusters = k_dense_t.shape
    width = min(top, n_clusters)
    out_clusters = np.full((count, width), -1, dtype=np.int32)
    out_sims = np.full((count, width), -np.inf, dtype=np.float32)
    for t in numba.prange(threads):
        acc = np.zeros(n_clusters, dtype=np.float32)
        terms = np.empty(query_terms, dtype=np.int64)
        weights = np.empty(query_terms, dtype=np.float32)
        for s in range(t, count, threads):
            i = sources[s]
            for m in range(_query(i, indptr, indices, data, query_terms, terms, weights)):
                weight = weights[m]
                term = terms[m]
                for q in range(k_indptr[term], k_indptr[term + 1]):
                    acc[k_clusters[q]] += weight * k_data[q]
            for e in range(d):
                value = dense_rows[i, e]
                column = k_dense_t[e]
                for c in range(n_clusters):
                    acc[c] += value * column[c]
            own_sims = out_sims[s]
            own = out_clusters[s]
            for c in range(n_clusters):
                v = acc[c]
                acc[c] = 0.0
                if v > own_sims[width - 1]:  # clusters ascending: a tie keeps the lower one
                    _insert(own_sims, own, v, c)
            if not own_sims[0] > 0.0:  # nothing in common with any centroid (an empty row, say): spread by row
                for m in range(width):
                    own[m] = (i + m) % n_clusters
    return out_clusters, out_sims


def _position_postings(indptr, indices, data, order, p_indptr):  # pragma: no cover - compiled
    """Posting lists of the rows taken in ``order``: row ``order[pos]`` listed as ``pos``, ascending in each list."""
    fill = p_indptr[:-1].copy()
    p_pos = np.empty(p_indptr[-1], dtype=np.int32)
    p_data = np.empty(p_indptr[-1], dtype=np.float32)
    for pos in range(order.shape[0]):
        i = order[pos]
        for p in range(indptr[i], indptr[i + 1]):
            term = indices[p]
            f = fill[term]
            p_pos[f] = pos
            p_data[f] = data[p]
            fill[term] = f + 1
    return p_pos, p_data


def _probed_rows(
    sources,
    indptr,
    indices,
    data,
    p_indptr,
    p_pos,
    p_data,
    order,
    starts,
    probes,
    dense_rows,
    dense_t,
    norms,
    groups,
    pool,
    threads,
    floor,
    query_terms,
    candidates,
    max_postings,
):  # pragma: no cover
    """Pass 1 of ``approx``: the candidates of source row ``i`` are the rows of the clusters it probes
    (``probes[i]``; cluster ``c`` holds the rows ``order[starts[c]:starts[c + 1]]``) and the rows that share one
    of its rare query terms, ranked by the partial dot product over ``i``'s ``query_terms`` heaviest term
    columns plus the dense part; the best ``candidates`` are re-scored exactly (``_rescore``). A query term's
    posting list (``p_*``, positions in ``order``) is read whole when it holds at most ``max_postings`` entries
    (a rare word: same-story articles share those), and only within the probed clusters otherwise. A row
    outside the probed clusters gets its dense part only when its partial score plus the Cauchy-Schwarz bound
    of the dense part (``norms``: each row's dense norm) can still enter the candidates."""
    n = indptr.shape[0] - 1
    n_terms = p_indptr.shape[0] - 1
    d = dense_rows.shape[1]
    count = sources.shape[0]
    width = probes.shape[1]
    out_sims = np.full((count, pool), floor, dtype=np.float32)
    out_rows = np.full((count, pool), -1, dtype=np.int32)
    widest = 1
    for c in range(starts.shape[0] - 1):
        widest = max(widest, starts[c + 1] - starts[c])
    longest = 0  # the longest list read whole: a source row reads at most query_terms of them
    for term in range(n_terms):
        length = p_indptr[term + 1] - p_indptr[term]
        if length <= max_postings:
            longest = max(longest, length)
    for t in numba.prange(threads):
        acc = np.zeros(n, dtype=np.float32)  # partial term scores by position; zero again after every source
        touched = np.empty(min(query_terms, n_terms) * longest + 1, dtype=np.int64)  # positions reached whole
        dense, s0, s1, s2, s3, _, _ = _span_scratch(widest)
        query = np.zeros(n_terms, dtype=np.float32)
        cand_sims = np.empty(candidates, dtype=np.float32)
        cand_rows = np.empty(candidates, dtype=np.int32)
        own_dense = np.empty(d, dtype=np.float32)
        terms = np.empty(query_terms, dtype=np.int64)
        weights = np.empty(query_terms, dtype=np.float32)
        for s in range(t, count, threads):
            i = sources[s]
            a = indptr[i]
            b = indptr[i + 1]
            reached = 0
            for e in range(_query(i, indptr, indices, data, query_terms, terms, weights)):
                weight = weights[e]
                term = terms[e]
                lo_t = p_indptr[term]
                hi_t = p_indptr[term + 1]
                if hi_t - lo_t <= max_postings:
                    for q in range(lo_t, hi_t):
                        pos = p_pos[q]
                        v = acc[pos]
                        # listed without a branch on first touch (still zero); a sum that comes back to exactly
                        # zero lists its row again, and such repeats are skipped below
                        touched[reached] = pos
                        reached += v == 0.0
                        acc[pos] = v + weight * p_data[q]
                    continue
                listed = p_pos[lo_t:hi_t]
                for m in range(width):
                    c = probes[i, m]
                    if c < 0:
                        break
                    x = lo_t + np.searchsorted(listed, starts[c])
                    y = lo_t + np.searchsorted(listed, starts[c + 1])
                    for q in range(x, y):
                        acc[p_pos[q]] += weight * p_data[q]
            for e in range(d):
                own_dense[e] = dense_rows[i, e]
            gi = groups[i]
            kept = 0
            for m in range(width):
                c = probes[i, m]
                if c < 0:
                    break
                lo = starts[c]
                hi = starts[c + 1]
                if d > 0:
                    _dense_block(own_dense, dense_t, lo, hi, s0, s1, s2, s3, dense)
                for q in range(hi - lo):
                    pos = lo + q
                    v = acc[pos]
                    acc[pos] = 0.0
                    if d > 0:
                        v += dense[q]
                    j = order[pos]
                    if j != i and (gi < 0 or groups[j] != gi):
                        kept = _propose(cand_sims, cand_rows, kept, v, j)
            # the rows reached through rare terms outside the probed clusters (those inside are zero again)
            own_norm = norms[i] + np.float32(1e-5)
            for m in range(reached):
                pos = touched[m]
                v = acc[pos]
                if v == 0.0 or v == -np.inf:
                    continue
                acc[pos] = -np.inf  # seen: a repeat reads -inf
                j = order[pos]
                if j == i or (gi >= 0 and groups[j] == gi):
                    continue
                if d > 0:
                    if kept == candidates and v + own_norm * norms[j] < cand_sims[candidates - 1]:
                        continue
                    v += _dense_dot(dense_rows, i, j)
                kept = _propose(cand_sims, cand_rows, kept, v, j)
            for m in range(reached):
                acc[touched[m]] = 0.0
            for p in range(a, b):
                query[indices[p]] = data[p]
            _rescore(i, cand_rows, kept, query, indptr, indices, data, dense_rows, floor, out_sims[s], out_rows[s])
            for p in range(a, b):
                query[indices[p]] = 0.0
    return out_rows, out_sims


def _rescore(i, rows, count, query, indptr, indices, data, dense_rows, floor, own_sims, own_rows):  # pragma: no cover
    """Offer the exact similarity of ``i`` to ``rows[:count]`` to the pool ``own_*``: the shared term columns
    ascending, then the dense part (the exact engine's order; a zero product leaves the sum unchanged), so
    a kept similarity is bit-for-bit the exact one. ``query`` holds ``i``'s term weights, scattered.

    Each row's entries are mostly not in cache: they are prefetched :data:`_AHEAD` rows ahead."""
    d = dense_rows.shape[1]
    last = own_sims.shape[0] - 1
    for m in range(min(_AHEAD, count)):
        _fetch_row(rows[m], indptr, indices, data, dense_rows)
    for m in range(count):
        if m + _AHEAD < count:
            _fetch_row(rows[m + _AHEAD], indptr, indices, data, dense_rows)
        j = rows[m]
        v = np.float32(0.0)
        for q in range(indptr[j], indptr[j + 1]):
            v += query[indices[q]] * data[q]
        if d > 0:
            v += _dense_dot(dense_rows, i, j)
        if v > floor and (v > own_sims[last] or (v == own_sims[last] and j < own_rows[last])):
            _insert(own_sims, own_rows, v, j)


def _fetch_row(j, indptr, indices, data, dense_rows):  # pragma: no cover - compiled
    """Ask for row ``j``'s entries to be brought into cache (no effect on results)."""
    for q in range(indptr[j], indptr[j + 1], 16):  # 16 4-byte values per 64-byte cache line
        _prefetch(indices, q)
        _prefetch(data, q)
    if dense_rows.shape[1] > 0:
        _prefetch(dense_rows[j], 0)


def _heaviest_terms(indptr, indices, data):  # pragma: no cover - compiled
    """Each row's heaviest term column (ties: the lower column; -1 where there is none)."""
    n = indptr.shape[0] - 1
    first = np.full(n, -1, dtype=np.int64)
    for i in numba.prange(n):
        best = -np.inf
        for p in range(indptr[i], indptr[i + 1]):
            if data[p] > best:
                best = data[p]
                first[i] = indices[p]
    return first


def _refine_rows(
    sources,
    lookup,
    first_rows,
    first_sims,
    indptr,
    indices,
    data,
    dense_rows,
    groups,
    pool,
    threads,
    floor,
    fan,
    n_terms,
):  # pragma: no cover
    """Pass 2 of ``approx``: a row's pool among its pass-1 list and the first ``fan`` of its first ``fan``
    neighbours' pass-1 lists, every candidate re-scored exactly (the exact engine's summation order)."""
    n = indptr.shape[0] - 1
    count = sources.shape[0]
    width = first_rows.shape[1]
    out_sims = np.full((count, pool), floor, dtype=np.float32)
    out_rows = np.full((count, pool), -1, dtype=np.int32)
    last = pool - 1
    for t in numba.prange(threads):
        seen = np.zeros((n >> 6) + 1, dtype=np.uint64)
        touched = np.empty(width + fan * fan, dtype=np.int32)
        query = np.zeros(n_terms, dtype=np.float32)
        for s in range(t, count, threads):
            i = sources[s]
            gi = groups[i]
            own = lookup[i]
            own_sims = out_sims[s]
            own_rows = out_rows[s]
            listed = 0
            for m in range(width):  # the pass-1 list: already exact
                j = first_rows[own, m]
                if j < 0:
                    break
                seen[j >> 6] |= np.uint64(1) << np.uint64(j & 63)
                listed += 1
                v = first_sims[own, m]
                if v > own_sims[last] or (v == own_sims[last] and j < own_rows[last]):
                    _insert(own_sims, own_rows, v, j)
            for m in range(listed):
                touched[m] = first_rows[own, m]
            reached = listed
            for m in range(min(fan, listed)):  # the new rows among the neighbours' lists
                via = lookup[first_rows[own, m]]
                for r in range(min(fan, width)):
                    j = first_rows[via, r]
                    if j < 0:
                        break
                    word = j >> 6
                    bit = np.uint64(1) << np.uint64(j & 63)
                    if j == i or seen[word] & bit or (gi >= 0 and groups[j] == gi):
                        continue
                    seen[word] |= bit
                    touched[reached] = j
                    reached += 1
            for p in range(indptr[i], indptr[i + 1]):
                query[indices[p]] = data[p]
            _rescore(
                i,
                touched[listed:reached],
                reached - listed,
                query,
                indptr,
                indices,
                data,
                dense_rows,
                floor,
                own_sims,
                own_rows,
            )
            for p in range(indptr[i], indptr[i + 1]):
                query[indices[p]] = 0.0
            for m in range(reached):
                seen[touched[m] >> 6] = 0
    return out_rows, out_sims


def _cross_pairs(
    indptr,
    indices,
    data,
    t_indptr,
    t_rows,
    t_data,
    heavy_of,
    heavy,
    dense_a,
    dense_b_t,
    groups_a,
    groups_b,
    sims_a,
    rows_a,
    sims_b,
    rows_b,
    bar_a,
    bar_a_rows,
    bar_b,
    bar_b_rows,
    offset_a,
    offset_b,
    floor,
):  # pragma: no cover - compiled
    """Every pair (i of block A, j of block B) that shares a term: its similarity summed as in ``_all_rows_span``
    (term columns ascending, then the dense part) and offered to both rows' pools (global rows: offsets added).

    The same sweep as ``_all_rows_span``: sources :data:`_SOURCES` at a time, targets of B :data:`_SPAN` at a
    time (``dense_b_t``: B's dense columns transposed), the pairs that may enter a pool found first and their
    pools fetched ahead. The pools are heaps, worst entry first (sort them with ``_merge_parts``). A row is
    offered only pairs that rank above its bar (``bar_*``: the last entry of a full pool of it found already)."""
    count_a = groups_a.shape[0]
    count_b = groups_b.shape[0]
    d = dense_b_t.shape[0]
    width = min(_SOURCES, max(1, _SOURCE_VALUES // max(count_b, 1)))
    acc = np.zeros((width, count_b), dtype=np.float32)
    dense, s0, s1, s2, s3, found_rows, found_sims = _span_scratch(_SPAN)
    worst_a = bar_a.copy()  # what a pair must beat: the bar, then the heap's worst once above it (compact)
    worst_a_rows = bar_a_rows.copy()
    worst_b = bar_b.copy()
    worst_b_rows = bar_b_rows.copy()
    for first in range(0, count_a, width):
        last = min(count_a, first + width)
        for i in range(first, last):
            _add_terms_dense(acc[i - first], i, 0, indptr, indices, data, t_indptr, t_rows, t_data, heavy_of, heavy)
        for block in range(0, count_b, _SPAN):
            span_end = min(count_b, block + _SPAN)
            for i in range(first, last):
                row = acc[i - first]
                if d > 0:
                    _dense_block(dense_a[i], dense_b_t, block, span_end, s0, s1, s2, s3, dense)
                gi = groups_a[i]
                row_i = offset_a + i
                found = _candidates(
                    row, block, span_end, dense, worst_a[i], worst_b, floor, sims_b, rows_b, found_rows, found_sims
                )
                for f in range(found):
                    j = found_rows[f]
                    v = found_sims[f]
                    row_j = offset_b + j
                    better_for_i = v > worst_a[i] or (v == worst_a[i] and row_j < worst_a_rows[i])
                    better_for_j = v > worst_b[j] or (v == worst_b[j] and row_i < worst_b_rows[j])
                    if (better_for_i or better_for_j) and (gi < 0 or groups_b[j] != gi):
                        if better_for_i:
                            _offer(sims_a[i], rows_a[i], v, row_j)
                            if _worse(bar_a[i], bar_a_rows[i], sims_a[i, 0], rows_a[i, 0]):
                                worst_a[i] = sims_a[i, 0]
                                worst_a_rows[i] = rows_a[i, 0]
                        if better_for_j:
                            _offer(sims_b[j], rows_b[j], v, row_i)
                            if _worse(bar_b[j], bar_b_rows[j], sims_b[j, 0], rows_b[j, 0]):
                                worst_b[j] = sims_b[j, 0]
                                worst_b_rows[j] = rows_b[j, 0]


def _sweep_rows(
    sources,
    indptr,
    indices,
    data,
    t_indptr,
    t_rows,
    t_data,
    dense_a,
    dense_b,
    groups_a,
    groups_b,
    sims,
    rows,
    rows_a,
    offset_b,
    floor,
):  # pragma: no cover - compiled
    """Rows ``sources`` of block A (global rows ``rows_a``, one per source) against every row of block B, shared
    term or not (as ``_some_rows``)."""
    count_b = groups_b.shape[0]
    d = dense_a.shape[1]
    last = sims.shape[1] - 1
    acc = np.zeros(count_b, dtype=np.float32)
    for s in range(sources.shape[0]):
        i = sources[s]
        _add_terms(acc, i, 0, indptr, indices, data, t_indptr, t_rows, t_data)
        gi = groups_a[i]
        own_sims = sims[s]
        own_rows = rows[s]
        row_i = rows_a[s]
        for j in range(count_b):
            v = acc[j]
            acc[j] = 0.0
            if d > 0:
                v += _dense_pair(dense_a, i, dense_b, j)
            row_j = offset_b + j
            if v <= floor or row_j == row_i or (gi >= 0 and groups_b[j] == gi):
                continue
            if v > own_sims[last] or (v == own_sims[last] and row_j < own_rows[last]):
                _insert(own_sims, own_rows, v, row_j)


_COMPILED: dict = {}


def _prefetch(array, index):  # pragma: no cover - replaced by _prefetch_instruction() before compiling
    """Hint that ``array[index]`` will be read soon (no effect on results)."""


def _prefetch_instruction():
    """A compiled ``_prefetch``: LLVM's prefetch intrinsic (read, keep in all cache levels), or a no-op where this
    numba/LLVM cannot emit it. Either way results are the same; only speed differs."""
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    def make(name):
        @intrinsic
        def prefetch(typingctx, array, index):
            def codegen(context, builder, signature, args):
                array_type = signature.args[0]
                view = context.make_array(array_type)(context, builder, args[0])
                pointer = cgutils.get_item_pointer(context, builder, array_type, view, [args[1]], wraparound=False)
                byte_pointer = ir.IntType(8).as_pointer()
                int32 = ir.IntType(32)
                function = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, int32, int32, int32]), name
                )
                # (address, 0 = read, 3 = keep in all levels, 1 = data cache)
                arguments = [builder.bitcast(pointer, byte_pointer), int32(0), int32(3), int32(1)]
                builder.call(function, arguments)
                return context.get_dummy_value()

            return types.void(array, index), codegen

        return prefetch

    for name in ("llvm.prefetch.p0", "llvm.prefetch.p0i8"):
        prefetch = make(name)

        def probe(values, prefetch=prefetch):
            prefetch(values, 1)
            return values[1]

        try:
            if numba.njit(probe)(np.arange(2.0)) == 1.0:
                return prefetch
        except Exception:  # an LLVM that rejects this name: try the next, else no prefetch
            continue
    return numba.njit(inline="always")(lambda array, index: None)


def _kernels():
    """The compiled kernels (compiled on first call, cached on disk by numba)."""
    if not _COMPILED:
        global _insert, _dense_pair, _dense_dot, _add_terms, _accumulate, _rescore, _fetch_row, _prefetch
        global _add_posting, _add_terms_dense
        global _worse, _offer, _dense_block, _candidates, _query, _span_scratch, _propose
        _prefetch = _prefetch_instruction()
        _insert = numba.njit(cache=True, nogil=True, inline="always")(_insert)
        _propose = numba.njit(cache=True, nogil=True, inline="always")(_propose)
        _worse = numba.njit(cache=True, nogil=True, inline="always")(_worse)
        _offer = numba.njit(cache=True, nogil=True, inline="always")(_offer)
        _dense_block = numba.njit(cache=True, nogil=True, inline="always")(_dense_block)
        _span_scratch = numba.njit(cache=True, nogil=True, inline="always")(_span_scratch)
        _candidates = numba.njit(cache=True, nogil=True, inline="always")(_candidates)
        _dense_pair = numba.njit(cache=True, nogil=True, inline="always")(_dense_pair)
        _dense_dot = numba.njit(cache=True, nogil=True, inline="always")(_dense_dot)
        _add_posting = numba.njit(cache=True, nogil=True, inline="always")(_add_posting)
        _add_terms = numba.njit(cache=True, nogil=True, inline="always")(_add_terms)
        _add_terms_dense = numba.njit(cache=True, nogil=True, inline="always")(_add_terms_dense)
        _accumulate = numba.njit(cache=True, nogil=True)(_accumulate)
        _fetch_row = numba.njit(cache=True, nogil=True, inline="always")(_fetch_row)
        _rescore = numba.njit(cache=True, nogil=True)(_rescore)
        parallel = numba.njit(cache=True, nogil=True, parallel=True)
        _COMPILED["all"] = parallel(_all_rows_span)
        _COMPILED["merge"] = parallel(_merge_parts)
        _COMPILED["merge_sorted"] = numba.njit(cache=True, nogil=True)(_merge_sorted)
        _COMPILED["some"] = parallel(_some_rows)
        _COMPILED["heaviest"] = parallel(_heaviest_terms)
        _query = numba.njit(cache=True, nogil=True, inline="always")(_query)
        _COMPILED["refine"] = parallel(_refine_rows)
        _COMPILED["nearest"] = parallel(_nearest_clusters)
        _COMPILED["positions"] = numba.njit(cache=True, nogil=True)(_position_postings)
        _COMPILED["probed"] = parallel(_probed_rows)
        # one thread each (a task of the build on Dask), but compiled as the others: numba's parallel pipeline
        # makes these loops about twice as fast (same arithmetic, same results)
        _COMPILED["cross"] = parallel(_cross_pairs)
        _COMPILED["sweep"] = parallel(_sweep_rows)
    return _COMPILED
