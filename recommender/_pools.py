"""Neighbour pools: every article's ``pool_size`` most similar articles, kept from fit to query.

Queries re-rank these pools; they never rerun the neighbour search. Live
updates refresh only the pools an update can reach (:meth:`Pools.qualifying`),
and the result equals a search from scratch over the current vectors. A
:class:`Pools` is never changed: every operation returns the next one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ._errors import InvalidPart
from ._neighbours import SIMILARITY_FLOOR, top_neighbours

__all__ = ["Pools"]


@dataclass(frozen=True, eq=False)
class Pools:
    """Candidate rows and their similarities, most similar first.

    Attributes
    ----------
    rows : ndarray of shape (n, pool_size), int32
        Candidate rows; -1 for empty slots.
    similarities : ndarray of shape (n, pool_size), float32
    """

    rows: np.ndarray
    similarities: np.ndarray

    @property
    def size(self) -> int:
        """Candidates per article (``pool_size``)."""
        return int(self.rows.shape[1])

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def check(self, n: int) -> None:
        """Raise :class:`InvalidPart` unless these are pools of ``n`` articles (O(size)).

        Rows in ``[0, n)``, each at most once, never the article itself, filled slots first and empty
        ones (-1) after them; similarities finite and not increasing along a pool.
        """
        rows, sims = self.rows, self.similarities
        if rows.dtype != np.int32 or rows.ndim != 2 or rows.shape[0] != n:
            raise InvalidPart("neighbours", f"expected ({n}, pool_size) int32, got {rows.shape} {rows.dtype}")
        if sims.dtype != np.float32 or sims.shape != rows.shape:
            raise InvalidPart("similarities", f"expected {rows.shape} float32, got {sims.shape} {sims.dtype}")
        if not rows.size:
            return
        if int(rows.min()) < -1 or int(rows.max()) >= n:
            raise InvalidPart("neighbours", f"rows must lie in [0, {n}) or be -1 (an empty slot)")
        empty = rows < 0
        if (empty[:, :-1] & ~empty[:, 1:]).any():
            raise InvalidPart("neighbours", "an empty slot (-1) is followed by a filled one")
        if (rows == np.arange(n, dtype=np.int32)[:, None]).any():
            raise InvalidPart("neighbours", "an article is in its own pool")
        ordered = np.sort(rows, axis=1)
        if ((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)).any():
            raise InvalidPart("neighbours", "an article appears twice in one pool")
        if not np.isfinite(sims).all():
            raise InvalidPart("similarities", "values must be finite")
        if ((sims[:, 1:] > sims[:, :-1]) & ~empty[:, 1:]).any():
            raise InvalidPart("similarities", "similarities must not increase along a pool")

    @classmethod
    def build(
        cls,
        vectors: sp.csr_matrix,
        size: int,
        copy_labels: np.ndarray,
        *,
        n_jobs: int | None = None,
        mode: str = "exact",
        progress: Callable[[int], None] | None = None,
    ) -> Pools:
        """Search the pools of every row (see :func:`recommender._neighbours.top_neighbours`)."""
        rows, sims = top_neighbours(
            vectors, int(size), copy_labels=copy_labels, n_jobs=n_jobs, mode=mode, progress=progress
        )
        return cls(rows, sims)

    def refreshed(
        self,
        vectors: sp.csr_matrix,
        rows: np.ndarray,
        copy_labels: np.ndarray,
        *,
        n_jobs: int | None = None,
        mode: str = "exact",
    ) -> tuple[Pools, np.ndarray]:
        """The pools with those of ``rows`` searched again; and the rows whose pool changed."""
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        if rows.size == 0:
            return self, rows
        fresh, sims = top_neighbours(vectors, self.size, copy_labels=copy_labels, rows=rows, n_jobs=n_jobs, mode=mode)
        changed = rows[(self.rows[rows] != fresh).any(axis=1) | (self.similarities[rows] != sims).any(axis=1)]
        neighbours, similarities = np.array(self.rows), np.array(self.similarities)
        neighbours[rows] = fresh
        similarities[rows] = sims
        return Pools(neighbours, similarities), changed

    def extended(self, count: int) -> Pools:
        """These pools followed by ``count`` empty ones (for articles just added)."""
        return Pools(
            np.vstack([self.rows, np.full((count, self.size), -1, dtype=np.int32)]),
            np.vstack([self.similarities, np.zeros((count, self.size), dtype=np.float32)]),
        )

    def taken(self, keep: np.ndarray) -> Pools:
        """The pools of the rows in the mask ``keep``, with rows renumbered; removed rows leave empty slots."""
        new_row = np.cumsum(keep) - 1
        new_row[~keep] = -1
        neighbours = self.rows[keep]
        remapped = np.where(neighbours >= 0, new_row[np.where(neighbours >= 0, neighbours, 0)], -1)
        return Pools(remapped.astype(np.int32), self.similarities[keep])

    def holding(self, members: np.ndarray) -> np.ndarray:
        """Rows whose pool holds any of ``members``."""
        if len(members) == 0:
            return np.empty(0, dtype=np.int64)
        return np.flatnonzero(np.isin(self.rows, members).any(axis=1))

    def qualifying(self, vectors: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
        """Rows whose pool one of ``rows`` (new or edited) could now enter (an over-approximation)."""
        if len(rows) == 0:
            return np.empty(0, dtype=np.int64)
        best = np.zeros(vectors.shape[0], dtype=np.float32)
        step = max(1, 32_000_000 // max(len(best), 1))  # bounded memory: about 128 MB of similarities at a time
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            sims = (vectors @ vectors[chunk].T).toarray()
            sims[chunk, np.arange(len(chunk))] = 0.0
            np.maximum(best, sims.max(axis=1), out=best)
        n = min(len(best), len(self))
        last = np.zeros(len(best), dtype=np.float32)
        full = np.zeros(len(best), dtype=bool)
        last[:n] = self.similarities[:n, -1]
        full[:n] = self.rows[:n, -1] >= 0
        return np.flatnonzero((best > SIMILARITY_FLOOR) & (~full | (best >= last - 1e-6)))
