"""Ranking: the popularity prior and the blend that re-ranks candidate pools.

The formulas, defined here once:

* **Age** of an article at the reference date ``T`` (the newest ``published`` in
  the corpus unless set), in days, at least one::

      age = max(1, (T - published) / 1 day)

  An article without a date gets the median age of the dated ones (or 1 when none
  is dated); one published after ``T`` has age 1.
* **Popularity**, a prior in [0, 1] from views per day, log-scaled and divided by
  the corpus' 99th percentile so one viral outlier does not flatten the rest::

      rate = views / age
      popularity = min(1, ln(1 + rate) / ln(1 + p99(rate)))

  An article without a view count has popularity 0 (no signal).
* **Score**: popularity scales similarity, it does not add to it, so an
  unrelated article (similarity near 0) stays near 0 however popular it is::

      score = similarity * (1 + popularity_weight * popularity)

  ``popularity_weight = 0`` is pure content; 0.1 lets the most popular article
  gain at most 10 % over an unviewed one of equal similarity.

Functions here are pure: arrays in, arrays out.
"""

from __future__ import annotations

import numpy as np

__all__ = ["age_days", "blend", "popularity", "rank_candidates"]

_DAY_NS = 86_400 * 10**9


def age_days(published_ns: np.ndarray, reference_ns: int) -> np.ndarray:
    """Age in days (>= 1) at the reference time; undated articles get the median age.

    Parameters
    ----------
    published_ns : ndarray of shape (n,), int64
        Publication times in ns since the epoch; ``np.iinfo(np.int64).min`` (NaT) = unknown.
    reference_ns : int
        Reference time in ns since the epoch.
    """
    published_ns = np.asarray(published_ns, dtype=np.int64)
    known = published_ns != np.iinfo(np.int64).min
    age = np.ones(published_ns.shape, dtype=np.float64)
    if known.any():
        delta = (reference_ns - published_ns[known]).astype(np.float64) / _DAY_NS
        age[known] = np.maximum(1.0, delta)
        age[~known] = float(np.median(age[known]))
    return age


def popularity(views: np.ndarray, published_ns: np.ndarray, reference_ns: int) -> np.ndarray:
    """The popularity prior in [0, 1] (see the module docstring); NaN views give 0.

    Returns
    -------
    ndarray of shape (n,), float32
    """
    views = np.asarray(views, dtype=np.float64)
    rate = np.where(np.isnan(views), 0.0, views) / age_days(published_ns, reference_ns)
    signal = np.log1p(rate)
    known = ~np.isnan(views)
    if not known.any():
        return np.zeros(views.shape, dtype=np.float32)
    scale = float(np.percentile(signal[known], 99))
    if scale <= 0:
        return np.zeros(views.shape, dtype=np.float32)
    prior = np.minimum(1.0, signal / scale)
    prior[~known] = 0.0
    return prior.astype(np.float32)


def blend(similarity: np.ndarray, prior: np.ndarray, popularity_weight: float) -> np.ndarray:
    """``score = similarity * (1 + popularity_weight * prior)``, elementwise, float32."""
    return (np.asarray(similarity, dtype=np.float32) * (1.0 + np.float32(popularity_weight) * prior)).astype(np.float32)


def rank_candidates(
    candidates: np.ndarray,
    similarities: np.ndarray,
    prior: np.ndarray,
    popularity_weight: float,
    k: int,
    excluded: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Re-rank candidate pools by score and keep the best ``k`` of each.

    Parameters
    ----------
    candidates : ndarray of shape (m, pool), int
        Candidate rows per source, -1 for an empty slot.
    similarities : ndarray of shape (m, pool), float32
    prior : ndarray of shape (n,), float32
        Popularity of every row.
    popularity_weight : float
    k : int
        List length.
    excluded : ndarray of shape (m, pool), bool, optional
        Candidates to leave out.

    Returns
    -------
    positions : ndarray of shape (m, k), int
        Positions in the pool, best first; -1 where fewer than k remain.
    scores : ndarray of shape (m, k), float32
        Their scores; 0 where ``positions`` is -1. Ties keep pool order (which is
        similarity, then row).
    """
    valid = candidates >= 0
    if excluded is not None:
        valid &= ~excluded
    prior_of = np.where(valid, prior[np.where(valid, candidates, 0)], 0.0)
    scores = blend(similarities, prior_of, popularity_weight)
    keyed = np.where(valid, scores, -np.inf)
    order = np.argsort(-keyed, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(keyed, order, axis=1)
    present = np.isfinite(top)
    positions = np.where(present, order, -1)
    out_scores = np.where(present, top, 0.0).astype(np.float32)
    if positions.shape[1] < k:
        pad = k - positions.shape[1]
        positions = np.pad(positions, ((0, 0), (0, pad)), constant_values=-1)
        out_scores = np.pad(out_scores, ((0, 0), (0, pad)))
    return positions, out_scores
