"""Neighbour search: every article's most cosine-similar articles, in row blocks.

Rows of the input are unit-norm TF-IDF vectors, so a dot product is a cosine.
The all-pairs product is computed one block of rows at a time, so memory holds
at most ``block_rows x n`` similarities, never an ``n x n`` matrix; blocks run in
parallel with joblib.

Order is deterministic: by similarity descending, then by row ascending, so
the same input always gives the same pools. An article is never its own
neighbour, nor a neighbour of an exact copy of itself (same ``group`` label);
only articles with a similarity above :data:`SIMILARITY_FLOOR` (1e-6, float32
noise) are candidates. Missing slots are
``row = -1`` and ``similarity = 0``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed

__all__ = ["SIMILARITY_FLOOR", "block_rows_for", "select_top", "top_neighbours"]

#: Similarities at or below this are "nothing in common": float32 rounding leaves about 1e-8 where two
#: articles share no term (with the latent blend, where their topic vectors are orthogonal).
SIMILARITY_FLOOR = 1e-6
#: Similarities held per block (float32 values): about 128 MB.
_BLOCK_BUDGET = 32_000_000


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
        Parallel jobs (joblib semantics; None = 1).
    block_rows : int, optional
        Rows per block; default from :func:`block_rows_for`.
    rows : ndarray of int, optional
        Only compute the pools of these source rows (in this order); the
        candidates are still all rows. Used to refresh pools after updates.

    Returns
    -------
    rows : ndarray of shape (len(rows) or n, pool), int32
        Neighbour rows, best first; -1 where there are fewer candidates.
    similarities : ndarray of shape (n, pool), float32
        Their cosine similarities; 0 where ``rows`` is -1.
    """
    if pool < 1:
        raise ValueError(f"pool must be >= 1, got {pool!r}.")
    vectors = sp.csr_matrix(vectors, dtype=np.float32)
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
    rows = np.concatenate([p[0] for p in parts])
    sims = np.concatenate([p[1] for p in parts])
    return rows, sims


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
