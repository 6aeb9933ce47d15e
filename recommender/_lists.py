"""Lists: a fitted state, sources and controls in; ranked lists, list items and list frames out.

Every list goes through one batch-first core, :func:`ranked_lists`: the pool
ranking, then an editor's pins, then the popular fallback, all rules of
``recommender._ranking``. ``recommend`` is a batch of one, ``recommend_frame``
a batch of all, and ``recommend_for_text`` a batch of one whose source is not
in the model, so the same controls give the same numbers through every door.

The request path of the website reads the lists of the model's own controls
from a cache of every article's list (:func:`cached_items`), built once per
fitted state and controls: a state is never changed, so the cache cannot
outlive the state it describes.
"""

from __future__ import annotations

import datetime as dt
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._dates import NAT, date_text, utc_timestamp
from ._duplicates import compare, is_copy, signatures, text_key
from ._index import SHARED_TERMS, rounded
from ._neighbours import select_top
from ._ranking import FALLBACK, PART_NAMES, REASONS, SIMILAR, Controls, Ranked, Sources, fill, pin, rank
from ._state import FittedState
from ._text import FIELDS

__all__ = [
    "CACHE_DEPTH",
    "Recommendation",
    "cached_items",
    "checked_controls",
    "checked_k",
    "frame",
    "items",
    "popular",
    "ranked_lists",
    "rows_lists",
    "text_lists",
]

#: Items per article kept by the request-path cache of default lists.
CACHE_DEPTH = 10


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One item of a "You Might Like" list.

    Attributes
    ----------
    article_id : str
        The recommended article.
    title, url, published, category
        Its display fields (``url``, ``published`` and ``category`` may be None).
    score : float
        The ranking score: ``similarity + popularity_part + freshness_part +
        boost_part + diversity_part`` (see ``recommender._ranking``).
    similarity : float
        Cosine similarity of the TF-IDF vectors, in [0, 1].
    popularity : float
        The popularity prior of the recommended article, in [0, 1].
    rank : int
        Position in the list, starting at 1.
    reason : str
        ``"similar"``, ``"fallback"`` (filled from the popular articles) or
        ``"pinned"`` (put there by an editor).
    popularity_part, freshness_part, boost_part, diversity_part : float
        How much each ranking step changed the score.
    shared_terms : tuple of (str, float)
        Up to 5 terms the two articles share, with their contribution to the
        similarity (the contributions of all shared terms add up to it).
    """

    article_id: str
    title: str
    url: str | None
    published: dt.datetime | None
    category: str | None
    score: float
    similarity: float
    popularity: float
    rank: int
    reason: str = "similar"
    popularity_part: float = 0.0
    freshness_part: float = 0.0
    boost_part: float = 0.0
    diversity_part: float = 0.0
    shared_terms: tuple[tuple[str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The item as JSON-safe values: ``published`` as ISO 8601 UTC text with seconds and ``Z`` (or None),
        ``shared_terms`` as ``[term, contribution]`` pairs; numbers unrounded, so the parts still add up."""
        return {
            "rank": self.rank,
            "article_id": self.article_id,
            "title": self.title,
            "url": self.url,
            "published": date_text(self.published),
            "category": self.category,
            "score": self.score,
            "similarity": self.similarity,
            "popularity": self.popularity,
            "reason": self.reason,
            "popularity_part": self.popularity_part,
            "freshness_part": self.freshness_part,
            "boost_part": self.boost_part,
            "diversity_part": self.diversity_part,
            "shared_terms": [[term, value] for term, value in self.shared_terms],
        }


# --------------------------------------------------------------------------- the arguments


def checked_controls(state: FittedState, controls: Controls) -> Controls:
    """``controls``, after checking that the categories it names are the model's."""
    if controls.categories is not None:
        known = state.catalogue.category_names
        unknown = sorted(set(controls.categories) - set(known))
        if unknown:
            names = ", ".join(repr(c) for c in known[:20]) or "none"
            raise ValueError(f"Unknown categories {unknown}: the model's categories are {names}.")
    return controls


def checked_k(state: FittedState, k: Any) -> int:
    """``k`` as an int, or ``ValueError`` unless 1 <= k <= pool_size."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}.")
    pool = state.pools.size
    if k > pool:
        raise ValueError(
            f"k={k} is larger than the candidate pool of this model (pool_size={pool}); refit with pool_size >= {k}."
        )
    return int(k)


# --------------------------------------------------------------------------- the core


def sources_of(state: FittedState, rows: np.ndarray) -> Sources:
    catalogue = state.catalogue
    return Sources(
        published_ns=catalogue.published_ns[rows],
        category=catalogue.category[rows],
        tags=catalogue.tags[rows],
        group=np.asarray(catalogue.groups)[rows],
    )


def ranked_lists(
    state: FittedState,
    candidates: np.ndarray,
    similarities: np.ndarray,
    sources: Sources,
    source_ids: Sequence[str | None],
    k: int,
    controls: Controls,
    exclude: Iterable[str] | None,
) -> tuple[Ranked, np.ndarray]:
    """Ranked lists plus the reason code of every slot (see ``recommender._ranking.REASONS``), shape (m, k)."""
    catalogue, editorial = state.catalogue, state.editorial
    hidden = catalogue.hidden_groups(exclude)
    groups = np.asarray(catalogue.groups)
    banned = None
    if editorial.bans:
        banned = [
            groups[catalogue.rows_of(editorial.bans.get(s, ()))] if s is not None else np.empty(0, np.int64)
            for s in source_ids
        ]
    ranked = rank(
        candidates,
        similarities,
        sources,
        catalogue,
        controls,
        k,
        hidden_groups=hidden,
        banned=banned,
        pair_similarity=state.index.pair_similarity,
    )
    reasons = np.where(ranked.rows >= 0, SIMILAR, -1)
    for i, source in enumerate(source_ids):
        if source is not None and source in editorial.pins:
            pins = catalogue.rows_of(editorial.pins[source])
            pin(ranked, reasons, i, pins, candidates[i], similarities[i], sources, catalogue, hidden, banned)
    if controls.fallback:
        for i in np.flatnonzero((ranked.rows < 0).any(axis=1)).tolist():
            fill(ranked, reasons, i, sources, catalogue, controls, hidden, banned)
    return ranked, reasons


def rows_lists(
    state: FittedState, rows: np.ndarray, k: int, controls: Controls, exclude: Iterable[str] | None
) -> tuple[Ranked, np.ndarray]:
    """The lists of the articles at ``rows``."""
    pools = state.pools
    ids = state.catalogue.ids
    return ranked_lists(
        state,
        pools.rows[rows],
        pools.similarities[rows],
        sources_of(state, rows),
        [ids[r] for r in rows.tolist()],
        k,
        controls,
        exclude,
    )


def text_lists(
    state: FittedState,
    texts: tuple[str, str, str],
    *,
    published: Any,
    category: str | None,
    tags: Sequence[str] | str,
    k: int,
    controls: Controls,
    exclude: Iterable[str] | None,
) -> tuple[Ranked, np.ndarray, sp.csr_matrix]:
    """The list of a text that is not in the model; and its vector (for explanations).

    Each field is cut to the fit-time ``text_limit`` for the ranking; an article of
    the model that is a copy of the text (exactly, keyed on the whole text, or by
    the copy rule) is never recommended.
    """
    limit = state.settings.text_limit
    whole = [str(value or "") for value in texts]
    fields = {name: [value[:limit]] for name, value in zip(FIELDS, whole, strict=True)}
    query = state.index.vectorise(fields)
    catalogue = state.catalogue
    similarities = state.index.text_similarities(query)
    key = text_key(*whole)  # the whole text, as the stored keys: a long copy is still a copy
    exact = np.flatnonzero(np.asarray(catalogue.text_keys) == key)
    similarities[exact] = -np.inf
    rows, sims = select_top(similarities[None, :], state.pools.size, len(catalogue))
    rows, sims, near = _without_copies_of(state, fields, rows, sims)
    copies = np.concatenate([exact, near]).tolist()
    if copies:  # hidden from the fallback fill too, as an excluded id is
        exclude = [*(exclude or ()), *(catalogue.ids[r] for r in copies)]
    stamp = utc_timestamp(published)
    tag_list = [t.strip() for t in tags.split(";")] if isinstance(tags, str) else [str(t).strip() for t in tags]
    sources = Sources(
        published_ns=np.array([NAT if stamp is None else stamp.value], dtype=np.int64),
        category=np.array([catalogue.category_code(category) if category is not None else -1], dtype=np.int64),
        tags=catalogue.tag_matrix([[t for t in tag_list if t]]),
        group=np.array([-1], dtype=np.int64),
    )
    ranked, reasons = ranked_lists(state, rows, sims, sources, [None], k, controls, exclude)
    return ranked, reasons, query


def _without_copies_of(
    state: FittedState, fields: dict[str, list[str]], rows: np.ndarray, sims: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop the near copies of a draft from its candidates (``rows``, ``sims`` of shape (1, pool)); and their rows."""
    catalogue, settings = state.catalogue, state.settings
    candidates = np.flatnonzero(rows[0] >= 0)
    none = np.empty(0, dtype=np.int64)
    if catalogue.signatures is None or not settings.collapse or settings.duplicate_threshold is None:
        return rows, sims, none
    if not candidates.size:
        return rows, sims, none
    draft = signatures(fields["title"], fields["summary"], fields["body"])
    shared, containment, _, sampled = compare(
        draft, np.zeros(candidates.size, dtype=np.int64), catalogue.signatures, rows[0, candidates]
    )
    copies = candidates[is_copy(shared, containment, sampled, float(settings.duplicate_threshold))]
    found = rows[0, copies].astype(np.int64)
    if copies.size:
        keep = np.ones(rows.shape[1], dtype=bool)
        keep[copies] = False
        pad = np.full(copies.size, -1, dtype=rows.dtype)
        rows = np.concatenate([rows[0, keep], pad])[None, :]
        sims = np.concatenate([sims[0, keep], np.zeros(copies.size, dtype=sims.dtype)])[None, :]
    return rows, sims, found


# --------------------------------------------------------------------------- items and frames


def _item(
    state: FittedState,
    row: int,
    rank_: int,
    reason: str,
    score: float,
    similarity: float,
    prior: float,
    parts: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0),
    shared: tuple[tuple[str, float], ...] = (),
) -> Recommendation:
    """One list item for article ``row``: its display fields plus the given numbers."""
    catalogue = state.catalogue
    popularity_part, freshness_part, boost_part, diversity_part = parts
    return Recommendation(
        article_id=catalogue.ids[row],
        title=catalogue.titles[row],
        url=catalogue.urls[row],
        published=catalogue.published[row],
        category=catalogue.categories[row],
        score=score,
        similarity=similarity,
        popularity=prior,
        rank=rank_,
        reason=reason,
        popularity_part=popularity_part,
        freshness_part=freshness_part,
        boost_part=boost_part,
        diversity_part=diversity_part,
        shared_terms=shared,
    )


def items(
    state: FittedState, ranked: Ranked, reasons: np.ndarray, source_vectors: sp.csr_matrix | None, explain: bool
) -> list[list[Recommendation]]:
    """Ranked arrays -> lists of Recommendation (one per source)."""
    present = ranked.rows >= 0
    terms: dict[tuple[int, int], tuple[tuple[str, float], ...]] = {}
    if explain and source_vectors is not None:
        where = np.argwhere(present & (ranked.similarity > 0))
        explained = state.index.shared_terms(source_vectors[where[:, 0]], ranked.rows[where[:, 0], where[:, 1]])
        terms = {(int(a), int(b)): t for (a, b), t in zip(where.tolist(), explained, strict=True)}
    prior = np.asarray(state.catalogue.popularity)
    lists = []
    for i in range(ranked.rows.shape[0]):
        row_items = []
        for j in np.flatnonzero(present[i]).tolist():
            row = int(ranked.rows[i, j])
            row_items.append(
                _item(
                    state,
                    row,
                    len(row_items) + 1,
                    REASONS[int(reasons[i, j])],
                    float(ranked.score[i, j]),
                    float(ranked.similarity[i, j]),
                    float(prior[row]),
                    tuple(float(getattr(ranked, name)[i, j]) for name in PART_NAMES),
                    terms.get((i, j), ()),
                )
            )
        lists.append(row_items)
    return lists


def frame(state: FittedState, rows: np.ndarray, ranked: Ranked, reasons: np.ndarray, explain: bool) -> pd.DataFrame:
    """The lists of ``rows`` as a tidy DataFrame, one row per list item (see ``Recommender.recommend_frame``)."""
    present = ranked.rows >= 0
    k = ranked.rows.shape[1]
    ranks = np.cumsum(present, axis=1)[present]  # ranks count only the present items of each list
    source = np.repeat(rows, k).reshape(-1, k)[present]
    target = ranked.rows[present]
    catalogue = state.catalogue
    ids = np.asarray(catalogue.ids, dtype=object)
    table = catalogue.table
    out = pd.DataFrame(
        {
            "article_id": ids[source],
            "rank": ranks.astype(np.int64),
            "recommended_id": ids[target],
            "score": ranked.score[present].astype(np.float64),
            "similarity": ranked.similarity[present].astype(np.float64),
            "popularity": np.asarray(catalogue.popularity)[target].astype(np.float64),
            "title": table["title"].to_numpy(dtype=object)[target],
            "url": table["url"].to_numpy(dtype=object)[target],
            "published": table["published"].iloc[target].reset_index(drop=True),
            "category": table["category"].to_numpy(dtype=object)[target],
            "reason": np.asarray(REASONS, dtype=object)[reasons[present]] if target.size else np.empty(0, object),
        }
    )
    if explain:
        for name in PART_NAMES:
            out[name] = getattr(ranked, name)[present].astype(np.float64)
        where = np.argwhere(present & (ranked.similarity > 0))
        vectors = state.index.vectors
        explained = state.index.shared_terms(vectors[rows[where[:, 0]]], ranked.rows[where[:, 0], where[:, 1]])
        text = np.full(ranked.rows.shape, "", dtype=object)
        for (i, j), terms in zip(where.tolist(), explained, strict=True):
            text[i, j] = "; ".join(f"{t}={v:.4f}" for t, v in terms)
        out["shared_terms"] = text[present]
    return out


def empty_ranked(k: int) -> Ranked:
    zeros = np.zeros((0, k))
    return Ranked(np.full((0, k), -1), zeros, zeros, zeros, zeros, zeros, zeros)


#: Stories examined at a time by :func:`popular`.
_POPULAR_CHUNK = 1024


def popular(
    state: FittedState, k: int, *, category: str | None = None, exclude: Iterable[str] | None = None
) -> list[Recommendation]:
    """The most popular articles (see ``Recommender.popular``)."""
    catalogue = state.catalogue
    hidden = catalogue.hidden_groups(exclude)
    groups = np.asarray(catalogue.groups)
    names = catalogue.category_names
    if category is not None and category not in names:
        return []
    order = catalogue.fallback_order()  # one representative per story
    chosen: list[int] = []
    for start in range(0, order.size, _POPULAR_CHUNK):  # stops at the first chunk that completes the list
        chunk = order[start : start + _POPULAR_CHUNK]
        ok = np.ones(chunk.size, dtype=bool)
        if hidden is not None:
            ok &= ~hidden[groups[chunk]]
        if category is not None:
            ok &= catalogue.category[chunk] == names.index(category)
        chosen += chunk[ok][: k - len(chosen)].tolist()
        if len(chosen) >= k:
            break
    prior = np.asarray(catalogue.popularity)
    return [
        _item(state, r, rank_, "fallback", float(prior[r]), 0.0, float(prior[r])) for rank_, r in enumerate(chosen, 1)
    ]


# --------------------------------------------------------------------------- the request-path cache


@dataclass(frozen=True)
class _ListCache:
    """Every article's list under one set of controls; arrays of shape (n, depth[, ...]).

    The explanations (shared terms) of a row's items are computed the first time that row is asked for
    with ``explain=True`` and kept (``explained``), or for every row at once by :func:`warm`
    (``everything``): building the lists after an update does no work for explanations nobody asked for.
    """

    rows: np.ndarray
    numbers: np.ndarray  # score, similarity, the parts, then the recommended article's popularity
    reasons: np.ndarray
    diversity: float
    explained: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    everything: list[np.ndarray] = field(default_factory=list, repr=False)


def warm(state: FittedState, controls: Controls) -> None:
    """Build the cache of the lists under ``controls``, every list's explanations and the inverted index now."""
    cache = _list_cache(state, controls)
    if not cache.everything:
        n = cache.rows.shape[0]
        parts = [_cached_terms(state, cache, np.arange(s, min(s + 4096, n))) for s in range(0, n, 4096)]
        if parts:
            terms = np.concatenate([p[0] for p in parts])
            values = np.concatenate([p[1] for p in parts])
            cache.everything[:] = [terms, values]  # one assignment: a reader sees none or both
    state.index.warm()


def carry_cache(old: FittedState, new: FittedState, controls: Controls, rows: np.ndarray) -> None:
    """Give ``new`` the list cache of ``old`` under ``controls`` with only the lists of ``rows`` ranked again.

    For a state that differs from ``old`` in its editorial state only (the same
    articles, vectors and pools): the lists of ``rows`` (the sources and holders
    an editorial action names) and every list with a fallback item (the popular
    order may have moved) are ranked again, with their explanations when ``old``
    had them all; the others are the same arrays. Nothing happens when ``old``
    has no such cache.
    """
    cache = old.memo.get(("lists", controls))
    if cache is None or len(old) != len(new):
        return
    rows = np.union1d(np.asarray(rows, dtype=np.int64), np.flatnonzero((cache.reasons == FALLBACK).any(axis=1)))
    depth = cache.rows.shape[1]
    fresh_rows, numbers, reasons = cache.rows.copy(), cache.numbers.copy(), cache.reasons.copy()
    prior = np.asarray(new.catalogue.popularity)
    for start in range(0, rows.size, 4096):
        chunk = rows[start : start + 4096]
        ranked, why = rows_lists(new, chunk, depth, controls, None)
        targets = ranked.rows.astype(np.int64)
        columns = [getattr(ranked, name) for name in ("score", "similarity", *PART_NAMES)]
        columns.append(np.where(targets >= 0, prior[np.where(targets >= 0, targets, 0)], 0.0))
        fresh_rows[chunk], numbers[chunk], reasons[chunk] = targets, np.stack(columns, axis=-1), why
    carried = _ListCache(rows=fresh_rows, numbers=numbers, reasons=reasons, diversity=cache.diversity)
    if cache.everything and rows.size:
        terms, values = (array.copy() for array in cache.everything)
        terms[rows], values[rows] = _cached_terms(new, carried, rows)
        carried.everything[:] = [terms, values]
    new.memo.once(("lists", controls), lambda: carried)


def _list_cache(state: FittedState, controls: Controls) -> _ListCache:
    return state.memoised(("lists", controls), lambda: _build_cache(state, controls))


def _build_cache(state: FittedState, controls: Controls) -> _ListCache:
    n = len(state)
    depth = min(CACHE_DEPTH, state.pools.size)
    parts = []
    for start in range(0, n, 4096):
        rows = np.arange(start, min(start + 4096, n))
        ranked, reasons = rows_lists(state, rows, depth, controls, None)
        parts.append((ranked, reasons))

    def stack(get: Any) -> np.ndarray:
        return np.concatenate([get(p) for p in parts]) if parts else np.empty((0, depth))

    rows = stack(lambda p: p[0].rows).astype(np.int64)
    columns = [stack(lambda p, name=name: getattr(p[0], name)) for name in ("score", "similarity", *PART_NAMES)]
    prior = np.asarray(state.catalogue.popularity)
    prior = np.where(rows >= 0, prior[np.where(rows >= 0, rows, 0)], 0.0)
    return _ListCache(
        rows=rows,
        numbers=np.stack([*columns, prior], axis=-1).astype(np.float64),
        reasons=stack(lambda p: p[1]).astype(np.int8),
        diversity=float(controls.diversity),
    )


def _cached_terms(state: FittedState, cache: _ListCache, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top shared term ids and rounded contributions of the cached items of ``rows``, shape (m, depth, SHARED_TERMS)."""
    targets = cache.rows[rows]
    m, depth = targets.shape
    terms = np.full((m, depth, SHARED_TERMS), -1, dtype=np.int32)
    values = np.zeros((m, depth, SHARED_TERMS), dtype=np.float32)
    where = np.argwhere((targets >= 0) & (cache.numbers[rows, :, 1] > 0))
    if where.size:
        sources = state.index.vectors[rows[where[:, 0]]]
        found = state.index.shared_term_arrays(sources, targets[where[:, 0], where[:, 1]])
        terms[where[:, 0], where[:, 1]], values[where[:, 0], where[:, 1]] = found
    return terms, rounded(values)


def _row_terms(state: FittedState, cache: _ListCache, row: int) -> tuple[np.ndarray, np.ndarray]:
    """The explanations of one row's cached items (computed once, then kept)."""
    if cache.everything:
        terms, values = cache.everything
        return terms[row], values[row]
    found = cache.explained.get(row)
    if found is None:  # two threads may both compute it: the same values, one kept
        terms, values = _cached_terms(state, cache, np.array([row]))
        found = cache.explained.setdefault(row, (terms[0], values[0]))
    return found


def cached_items(
    state: FittedState, controls: Controls, row: int, k: int, exclude: Iterable[str] | None, explain: bool
) -> list[Recommendation] | None:
    """The list of ``row`` from the cache of the lists under ``controls``; None when it cannot give the exact answer."""
    if k > min(CACHE_DEPTH, state.pools.size):
        return None
    cache = _list_cache(state, controls)
    catalogue = state.catalogue
    groups = np.asarray(catalogue.groups)
    slots = [j for j, r in enumerate(cache.rows[row].tolist()) if r >= 0]
    if exclude is not None:
        hidden = {int(groups[r]) for r in catalogue.rows_of(exclude).tolist()}
        if hidden:
            if cache.diversity > 0 or catalogue.ids[row] in state.editorial.pins:
                return None  # the penalties or the pinned order would change
            kept = [j for j in slots if int(groups[cache.rows[row, j]]) not in hidden]
            if len(kept) < k and len(slots) == cache.rows.shape[1]:
                return None  # the cache is too short to fill k after the exclusions
            slots = kept
    out = []
    targets = cache.rows[row].tolist()
    numbers = cache.numbers[row].tolist()
    reasons = cache.reasons[row].tolist()
    if explain:
        row_terms, row_values = _row_terms(state, cache, row)
        terms, term_values = row_terms.tolist(), row_values.tolist()
        words = state.index.terms
    for rank_, j in enumerate(slots[:k], start=1):
        score, similarity, popularity_part, freshness_part, boost_part, diversity_part, prior = numbers[j]
        shared: tuple[tuple[str, float], ...] = ()
        if explain:
            shared = tuple((words[t], v) for t, v in zip(terms[j], term_values[j], strict=True) if t >= 0)
        out.append(
            _item(
                state,
                targets[j],
                rank_,
                REASONS[reasons[j]],
                score,
                similarity,
                prior,
                (popularity_part, freshness_part, boost_part, diversity_part),
                shared,
            )
        )
    return out
