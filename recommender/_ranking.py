"""Ranking: turn candidate pools into the lists an editor would publish.

Pure functions of arrays. The formulas, defined here once:

* **Age** of an article at the reference date ``T`` (the newest ``published`` in
  the corpus unless set), in days, at least one::

      age = max(1, (T - published) / 1 day)

  An article without a date gets the median age of the dated ones (or 1 when none
  is dated); one published after ``T`` has age 1.
* **Popularity**, a prior in [0, 1] from views per day, log-scaled and divided by
  a scale fixed at fit time (the 99th percentile of the corpus, so one viral
  outlier does not flatten the rest)::

      popularity = min(1, ln(1 + views / age) / ln(1 + p99(views / age)))

  An article without a view count has popularity 0 (no signal).
* **Score** of a candidate for a source article, built up in steps; each step's
  change is one *part* of the score, and the parts add up to the score::

      s0 = similarity                                         cosine of the TF-IDF vectors
      s1 = s0 * (1 + popularity_weight * popularity)         popularity_part = s1 - s0
      s2 = s1 * 0.5 ** (gap_days / half_life_days)           freshness_part  = s2 - s1
      s3 = s2 * (1 + category_boost * same_category
                   + tag_boost * min(shared_tags, 4))         boost_part      = s3 - s2
      score = s3 - diversity * max similarity to the items   diversity_part  = score - s3
                                already above it (MMR)

  ``gap_days`` is the distance between the candidate's and the *source's*
  publication dates, so an archive article gets neighbours from its own time.
  Popularity scales similarity rather than adding to it, so an unrelated
  article (similarity near 0) stays near 0 however popular it is.
* **Undated articles** are neither favoured nor dropped: the hard windows
  (``max_age_days``, ``past_only``) keep them, and their freshness factor is the
  median factor of the dated candidates in the same list (1 when there are none,
  or when the source itself is undated).
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from ._dates import DAY_NS, NAT

if TYPE_CHECKING:
    from ._catalogue import Catalogue

__all__ = [
    "CONTENT_ONLY",
    "CONTROL_NAMES",
    "FALLBACK",
    "PART_NAMES",
    "PINNED",
    "REASONS",
    "SIMILAR",
    "Controls",
    "Ranked",
    "Sources",
    "age_days",
    "control_specs",
    "fill",
    "pin",
    "popularity",
    "popularity_scale",
    "rank",
    "top_entries",
]

#: The parts of a score besides similarity; similarity + parts = score.
PART_NAMES = ("popularity_part", "freshness_part", "boost_part", "diversity_part")
#: Why an item is in a list, and its code in a reasons array.
REASONS = ("similar", "fallback", "pinned")
SIMILAR, FALLBACK, PINNED = 0, 1, 2
#: Popular articles checked at a time when filling a list.
_FILL_CHUNK = 4096
#: Shared tags beyond this many add no further boost.
TAG_CAP = 4


# --------------------------------------------------------------------------- popularity


def age_days(published_ns: np.ndarray, reference_ns: int) -> np.ndarray:
    """Age in days (>= 1) at the reference time; undated articles get the median age.

    Parameters
    ----------
    published_ns : ndarray of shape (n,), int64
        Publication times in ns since the epoch; ``NAT`` (int64 min) = unknown.
    reference_ns : int
        Reference time in ns since the epoch.
    """
    published_ns = np.asarray(published_ns, dtype=np.int64)
    known = published_ns != NAT
    age = np.ones(published_ns.shape, dtype=np.float64)
    if known.any():
        delta = (reference_ns - published_ns[known]).astype(np.float64) / DAY_NS
        age[known] = np.maximum(1.0, delta)
        age[~known] = float(np.median(age[known]))
    return age


def _signal(views: np.ndarray, published_ns: np.ndarray, reference_ns: int) -> np.ndarray:
    views = np.asarray(views, dtype=np.float64)
    return np.log1p(np.where(np.isnan(views), 0.0, views) / age_days(published_ns, reference_ns))


def popularity_scale(views: np.ndarray, published_ns: np.ndarray, reference_ns: int) -> float:
    """The 99th percentile of ``ln(1 + views/age)`` over articles with views (0 when none)."""
    views = np.asarray(views, dtype=np.float64)
    known = ~np.isnan(views)
    if not known.any():
        return 0.0
    return float(np.percentile(_signal(views, published_ns, reference_ns)[known], 99))


def popularity(
    views: np.ndarray, published_ns: np.ndarray, reference_ns: int, scale: float | None = None
) -> np.ndarray:
    """The popularity prior in [0, 1] (see the module docstring); NaN views give 0.

    ``scale`` defaults to :func:`popularity_scale` of the same articles; a fitted
    model passes its frozen scale so that new view counts do not move everyone.

    Returns
    -------
    ndarray of shape (n,), float32
    """
    views = np.asarray(views, dtype=np.float64)
    if scale is None:
        scale = popularity_scale(views, published_ns, reference_ns)
    if scale <= 0:
        return np.zeros(views.shape, dtype=np.float32)
    prior = np.minimum(1.0, _signal(views, published_ns, reference_ns) / scale)
    prior[np.isnan(views)] = 0.0
    return prior.astype(np.float32)


# --------------------------------------------------------------------------- controls


def _number(
    name: str,
    value: Any,
    *,
    low: float = 0.0,
    high: float | None = None,
    allow_none: bool = False,
    integer: bool = False,
    above: bool = False,
) -> None:
    """Check one numeric control against its range; the error is one line naming the range and the value."""
    if value is None and allow_none:
        return
    kind = numbers.Integral if integer else numbers.Real
    ok = not isinstance(value, bool) and isinstance(value, kind) and bool(np.isfinite(value))
    ok = ok and (value > low if above else value >= low) and (high is None or value <= high)
    if not ok:
        what = "an integer" if integer else "a finite number"
        bound = f"> {low:g}" if above else f">= {low:g}"
        if high is not None:
            bound = f"in [{low:g}, {high:g}]"
        extra = " or None" if allow_none else ""
        raise ValueError(f"{name} must be {what} {bound}{extra}, got {value!r}.")


def _control(
    default: Any,
    kind: str,
    off: Any,
    help: str,
    *,
    low: float = 0.0,
    high: float | None = None,
    above: bool = False,
    none: bool = False,
) -> Any:
    """A ranking control's declaration: default, kind of value, range, its "off" value and its help line."""
    spec = {"kind": kind, "off": off, "help": help, "low": low, "high": high, "above": above, "none": none}
    return field(default=default, metadata=spec)


@dataclass(frozen=True)
class Controls:
    """The ranking controls: set on the model, overridable per call by keyword.

    This class is their one declaration: the model's parameters, the per-call
    keywords, the CLI flags and the content-only baseline all come from it.
    Every control has a range; a value outside it raises ``ValueError`` (one
    line naming the control, the range and the value).

    Attributes
    ----------
    popularity_weight : float >= 0, default 0.1
        How much the popularity prior scales similarity (0 = content only).
    half_life_days : float > 0 or None, default None
        Soft freshness: a candidate's score halves for every ``half_life_days``
        between its publication and the source's. None = off.
    max_age_days : float >= 0 or None, default None
        Hard window: drop candidates published more than this many days before or
        after the source. None = off.
    past_only : bool, default False
        Only candidates published no later than the source (for archives).
    category_boost : float >= 0, default 0.1
        Extra score share for a candidate in the source's category.
    tag_boost : float >= 0, default 0.05
        Extra score share per tag shared with the source (up to 4 tags).
    same_category : bool, default False
        Only candidates in the source's category (no filter when the source has none).
    categories : tuple of str or None, default None
        Only candidates in one of these categories.
    min_shared_tags : int >= 0, default 0
        Only candidates sharing at least this many tags with the source.
    diversity : float in [0, 1], default 0.0
        Maximal marginal relevance: subtract ``diversity`` times the highest
        similarity to an item already in the list (0 = off, 1 = a candidate as
        similar to a listed item as to the source is worth nothing).
    min_score : float >= 0, default 0.0
        Drop similar candidates scoring below this (before diversity).
    fallback : bool, default True
        Fill lists shorter than ``k`` from the popular articles (``reason="fallback"``).

    Whatever the controls, an item whose score is not positive is never listed as
    similar: it is dropped, and the fallback (when on) fills its slot.
    """

    popularity_weight: float = _control(
        0.1, "number", 0.0, "how much the popularity prior scales similarity (0 = content only)"
    )
    half_life_days: float | None = _control(
        None, "number", None, "soft freshness: the score halves every N days from the source's date", above=True,
        none=True,
    )  # fmt: skip
    max_age_days: float | None = _control(
        None, "number", None, "hard window: only articles within N days of the source", none=True
    )
    past_only: bool = _control(False, "bool", False, "only articles published no later than the source")
    category_boost: float = _control(0.1, "number", 0.0, "boost for an article in the source's category")
    tag_boost: float = _control(0.05, "number", 0.0, "boost per tag shared with the source (up to 4)")
    same_category: bool = _control(False, "bool", False, "only articles in the source's category")
    categories: tuple[str, ...] | None = _control(None, "names", None, "only articles in these categories")
    min_shared_tags: int = _control(0, "integer", 0, "only articles sharing at least N tags with the source")
    diversity: float = _control(0.0, "number", 0.0, "maximal marginal relevance weight, 0 to 1 (0 = off)", high=1.0)
    min_score: float = _control(0.0, "number", 0.0, "drop similar articles scoring below this")
    fallback: bool = _control(True, "bool", False, "fill short lists from the popular articles")

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            kind = spec.metadata["kind"]
            if kind in ("number", "integer"):
                _number(
                    spec.name,
                    value,
                    low=spec.metadata["low"],
                    high=spec.metadata["high"],
                    above=spec.metadata["above"],
                    allow_none=spec.metadata["none"],
                    integer=kind == "integer",
                )
            elif kind == "bool":
                if not isinstance(value, (bool, np.bool_)):
                    raise ValueError(f"{spec.name} must be True or False, got {value!r}.")
            elif value is not None:  # names
                if isinstance(value, str) or not all(isinstance(c, str) for c in value):
                    raise ValueError(f"{spec.name} must be a list of category names or None, got {value!r}.")
                object.__setattr__(self, spec.name, tuple(value))

    def replace(self, overrides: Mapping[str, Any]) -> Controls:
        """A copy with some controls changed; unknown names raise TypeError."""
        unknown = sorted(set(overrides) - set(CONTROL_NAMES))
        if unknown:
            raise TypeError(f"Unknown ranking control(s) {unknown}; the controls are: {', '.join(CONTROL_NAMES)}.")
        return dataclasses.replace(self, **overrides) if overrides else self

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CONTROL_NAMES}


#: The names of the ranking controls, in their declared order.
CONTROL_NAMES = tuple(spec.name for spec in fields(Controls))
#: Every control off: the similarity order, nothing else (the content-only baseline).
CONTENT_ONLY = {spec.name: spec.metadata["off"] for spec in fields(Controls)}


def control_specs() -> tuple[dataclasses.Field, ...]:
    """The declarations of the controls (name, default, and ``metadata``: kind, off, help, range)."""
    return fields(Controls)


# --------------------------------------------------------------------------- inputs and outputs


@dataclass(frozen=True)
class Sources:
    """The source articles of a batch of lists (arrays of length m)."""

    published_ns: np.ndarray
    category: np.ndarray
    tags: sp.csr_matrix
    group: np.ndarray  # -1 for text that is not in the model


@dataclass
class Ranked:
    """Ranked lists, arrays of shape (m, k); ``rows`` is -1 in empty slots."""

    rows: np.ndarray
    score: np.ndarray
    similarity: np.ndarray
    popularity_part: np.ndarray
    freshness_part: np.ndarray
    boost_part: np.ndarray
    diversity_part: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def parts(self) -> tuple[str, ...]:
        return PART_NAMES


# --------------------------------------------------------------------------- the ranking


def rank(
    candidates: np.ndarray,
    similarities: np.ndarray,
    sources: Sources,
    catalogue: Catalogue,
    controls: Controls,
    k: int,
    *,
    hidden_groups: np.ndarray | None = None,
    banned: Sequence[np.ndarray] | None = None,
    pair_similarity: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Ranked:
    """Rank candidate pools into lists of at most ``k`` similar articles.

    Parameters
    ----------
    candidates : ndarray of shape (m, pool), int
        Candidate rows per source, most similar first; -1 for an empty slot.
    similarities : ndarray of shape (m, pool), float32
    sources : Sources
    catalogue : Catalogue
    controls : Controls
    k : int
    hidden_groups : ndarray of shape (n_groups,), bool, optional
        Groups that must not appear (excluded by the caller).
    banned : sequence of m arrays of group labels, optional
        Per-source groups that must not appear.
    pair_similarity : callable, optional
        ``rows (c,) -> (c, c)`` cosine similarities between articles; needed when
        ``controls.diversity > 0``.

    Returns
    -------
    Ranked
        Duplicate groups are collapsed to their representative, with the
        representative's own similarity when it is in the pool (else the
        best-matching member's); the source's own group never appears.
    """
    valid = candidates >= 0
    safe = np.where(valid, candidates, 0)
    group = np.asarray(catalogue.groups)[safe]
    shown = catalogue.representative[safe]
    valid &= shown >= 0
    valid &= _allowed(np.where(valid, shown, 0), sources, catalogue, hidden_groups, banned)
    # Collapse duplicate groups: keep the first (most similar) member of each group, shown as the representative.
    valid &= _first_of_group(group, valid)
    shown = np.where(valid, shown, 0)
    similarities = _shown_similarity(candidates, similarities, shown, valid)

    # Hard filters, on the article that is shown.
    kept, dated, gap, category, shared = _filters(shown, sources, catalogue, controls)
    valid &= kept

    # Score, step by step.
    s0 = np.where(valid, similarities, 0.0).astype(np.float64)
    s1 = s0 * (1.0 + controls.popularity_weight * catalogue.popularity[shown])
    factor = np.ones_like(s0)
    if controls.half_life_days is not None:
        factor = np.where(dated, 0.5 ** (gap / controls.half_life_days), np.nan)
        factor = _fill_undated(factor, valid, sources.published_ns != NAT)
    s2 = s1 * factor
    same = (category == sources.category[:, None]) & (category >= 0)
    s3 = s2 * (1.0 + controls.category_boost * same + controls.tag_boost * np.minimum(shared, TAG_CAP))
    valid &= (s3 > 0) & (s3 >= controls.min_score)  # a score that is not positive is not "similar"

    keyed = np.where(valid, s3, -np.inf)
    order = np.argsort(-keyed, axis=1, kind="stable")
    if controls.diversity > 0 and pair_similarity is not None:
        chosen, penalty = _mmr(order, keyed, shown, controls.diversity, k, pair_similarity)
        present = chosen >= 0
        chosen = np.where(present, chosen, 0)
    else:
        chosen = order[:, :k]
        penalty = np.zeros(chosen.shape)
        present = (
            np.isfinite(np.take_along_axis(keyed, chosen, axis=1)) if chosen.size else np.zeros(chosen.shape, bool)
        )

    def pick(values: np.ndarray) -> np.ndarray:
        return np.where(present, np.take_along_axis(values, chosen, axis=1), 0.0)

    out = Ranked(
        rows=np.where(present, np.take_along_axis(shown, chosen, axis=1), -1),
        score=pick(s3) - np.where(present, penalty, 0.0),
        similarity=pick(s0),
        popularity_part=pick(s1 - s0),
        freshness_part=pick(s2 - s1),
        boost_part=pick(s3 - s2),
        diversity_part=np.where(present, -penalty, 0.0) + 0.0,  # + 0.0 turns -0.0 into 0.0
    )
    return _pad(out, k)


def _allowed(
    shown: np.ndarray,
    sources: Sources,
    catalogue: Catalogue,
    hidden_groups: np.ndarray | None,
    banned: Sequence[np.ndarray] | None,
) -> np.ndarray:
    """The exclusions, for articles about to be shown (shape (m, c)): never a blocked article, one of the
    source's own story, one of a story the caller excluded, or one of a story banned from the source's list."""
    group = np.asarray(catalogue.groups)[shown]
    ok = ~catalogue.blocked_rows[shown] & (group != sources.group[:, None])
    if hidden_groups is not None and hidden_groups.size:
        ok &= ~hidden_groups[group]
    if banned is not None:
        for i, groups in enumerate(banned):
            if len(groups):
                ok[i] &= ~np.isin(group[i], groups)
    return ok


def _filters(
    shown: np.ndarray, sources: Sources, catalogue: Catalogue, controls: Controls
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The hard filters of the controls, for articles about to be shown (shape (m, c)).

    Returns the mask of those kept, and what the score needs besides: whether
    both dates are known, the gap in days, the category codes and the number of
    tags shared with the source.
    """
    published = catalogue.published_ns[shown]
    source_time = sources.published_ns[:, None]
    dated = (published != NAT) & (source_time != NAT)
    gap = np.where(dated, np.abs(published - source_time).astype(np.float64) / DAY_NS, 0.0)
    kept = np.ones(shown.shape, dtype=bool)
    if controls.max_age_days is not None:
        kept &= ~dated | (gap <= controls.max_age_days)
    if controls.past_only:
        kept &= ~dated | (published <= source_time)
    category = catalogue.category[shown]
    if controls.same_category:
        has = sources.category[:, None] >= 0
        kept &= ~has | (category == sources.category[:, None])
    if controls.categories is not None:
        kept &= np.isin(category, catalogue.category_codes(controls.categories))
    shared = _shared_tags(sources.tags, catalogue.tags, shown)
    if controls.min_shared_tags > 0:
        kept &= shared >= controls.min_shared_tags
    return kept, dated, gap, category, shared


def pin(
    ranked: Ranked,
    reasons: np.ndarray,
    i: int,
    pins: np.ndarray,
    candidates: np.ndarray,
    similarities: np.ndarray,
    sources: Sources,
    catalogue: Catalogue,
    hidden_groups: np.ndarray | None,
    banned: Sequence[np.ndarray] | None,
) -> None:
    """Put an editor's pinned rows at the top of list ``i`` (in place), in their order.

    Pins pass the exclusions (:func:`_allowed`) but not the hard filters; the rest
    of the list follows, without the stories a pin already shows. A pinned
    article's similarity is its pool similarity (0 when it is not in the pool).
    """
    if pins.size == 0:
        return
    one = _source(sources, i)
    pins = pins[_allowed(pins[None, :], one, catalogue, hidden_groups, None if banned is None else [banned[i]])[0]]
    if pins.size == 0:
        return
    k = ranked.rows.shape[1]
    groups = np.asarray(catalogue.groups)
    pinned_groups = set(groups[pins].tolist())
    keep = [j for j in range(k) if ranked.rows[i, j] >= 0 and int(groups[ranked.rows[i, j]]) not in pinned_groups]
    fields_ = ("score", "similarity", *PART_NAMES)
    old = {name: getattr(ranked, name)[i].copy() for name in fields_}
    old_rows, old_reasons = ranked.rows[i].copy(), reasons[i].copy()
    pool_similarity = dict(zip(candidates.tolist(), similarities.tolist(), strict=True))
    ranked.rows[i] = -1
    reasons[i] = -1
    for name in fields_:
        getattr(ranked, name)[i] = 0.0
    for j, row in enumerate(pins[:k].tolist()):
        ranked.rows[i, j] = row
        reasons[i, j] = PINNED
        ranked.similarity[i, j] = ranked.score[i, j] = pool_similarity.get(row, 0.0)
    position = min(len(pins), k)
    for j in keep:
        if position >= k:
            break
        ranked.rows[i, position] = old_rows[j]
        reasons[i, position] = old_reasons[j]
        for name in fields_:
            getattr(ranked, name)[i, position] = old[name][j]
        position += 1


def fill(
    ranked: Ranked,
    reasons: np.ndarray,
    i: int,
    sources: Sources,
    catalogue: Catalogue,
    controls: Controls,
    hidden_groups: np.ndarray | None,
    banned: Sequence[np.ndarray] | None,
) -> None:
    """Fill the empty slots of list ``i`` (in place) from the popular articles.

    In the popular order (recent first, then by prior), the representatives that
    pass the exclusions and the hard filters and show a story not yet in the
    list; those in the source's category first when it has one. Score 0,
    ``reason="fallback"``.
    """
    empty = np.flatnonzero(ranked.rows[i] < 0)
    if empty.size == 0:
        return
    groups = np.asarray(catalogue.groups)
    taken = {int(groups[r]) for r in ranked.rows[i] if r >= 0}
    one = _source(sources, i)
    order = catalogue.fallback_order(
        int(one.published_ns[0]), max_age_days=controls.max_age_days, past_only=controls.past_only
    )
    source_category = int(one.category[0])
    picks: list[int] = []
    for same_category_pass in [True, False] if source_category >= 0 else [False]:
        for start in range(0, order.size, _FILL_CHUNK):
            chunk = order[start : start + _FILL_CHUNK]
            ok = _allowed(chunk[None, :], one, catalogue, hidden_groups, None if banned is None else [banned[i]])[0]
            ok &= _filters(chunk[None, :], one, catalogue, controls)[0][0]
            if same_category_pass:
                ok &= catalogue.category[chunk] == source_category
            for row in chunk[ok].tolist():
                group = int(groups[row])
                if group not in taken:
                    taken.add(group)
                    picks.append(row)
                    if len(picks) == empty.size:
                        break
            if len(picks) == empty.size:
                break
        if len(picks) == empty.size:
            break
    for slot, row in zip(empty[: len(picks)].tolist(), picks, strict=True):
        ranked.rows[i, slot] = row
        reasons[i, slot] = FALLBACK


def _source(sources: Sources, i: int) -> Sources:
    return Sources(
        published_ns=sources.published_ns[i : i + 1],
        category=sources.category[i : i + 1],
        tags=sources.tags[i : i + 1],
        group=sources.group[i : i + 1],
    )


def _shown_similarity(
    candidates: np.ndarray, similarities: np.ndarray, shown: np.ndarray, valid: np.ndarray
) -> np.ndarray:
    """Similarity of the article actually shown: the representative's own when it is in the pool.

    A group collapsed onto a representative that is not in the pool keeps the
    similarity of its best-matching member.
    """
    swap = valid & (shown != candidates)
    if not swap.any():
        return similarities
    m = candidates.shape[0]
    span = int(max(candidates.max(), shown.max())) + 2
    keys = (np.arange(m)[:, None] * span + candidates + 1).ravel()  # +1: the -1 slots never match
    order = np.argsort(keys, kind="stable")
    wanted = (np.arange(m)[:, None] * span + shown + 1)[swap]
    position = np.minimum(np.searchsorted(keys[order], wanted), keys.size - 1)
    found = keys[order][position] == wanted
    out = np.array(similarities, dtype=np.float32, copy=True)
    out[swap] = np.where(found, similarities.ravel()[order[position]], out[swap])
    return out


def _first_of_group(group: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Mask keeping, per row, only the first valid position of each group label."""
    width = group.shape[1]
    if width == 0:
        return valid
    key = np.where(valid, group, -1 - np.arange(width)[None, :])  # invalid slots never collide
    order = np.argsort(key, axis=1, kind="stable")
    ordered = np.take_along_axis(key, order, axis=1)
    first_sorted = np.ones_like(ordered, dtype=bool)
    first_sorted[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    first = np.empty_like(first_sorted)
    np.put_along_axis(first, order, first_sorted, axis=1)
    return first


def _shared_tags(source_tags: sp.csr_matrix, tags: sp.csr_matrix, shown: np.ndarray) -> np.ndarray:
    """Number of tags each shown candidate shares with its source, shape of ``shown``."""
    m, width = shown.shape
    if tags.shape[1] == 0 or source_tags.nnz == 0 or shown.size == 0:
        return np.zeros(shown.shape, dtype=np.int64)
    flat = tags[shown.ravel()]
    repeated = source_tags[np.repeat(np.arange(m), width)]
    counts = np.asarray(flat.multiply(repeated).sum(axis=1)).ravel()
    return counts.reshape(m, width).astype(np.int64)


def _fill_undated(factor: np.ndarray, valid: np.ndarray, source_dated: np.ndarray) -> np.ndarray:
    """Undated candidates get the median factor of the dated valid ones in their row."""
    out = factor.copy()
    out[~source_dated] = 1.0
    missing = np.isnan(out)
    if missing.any():
        usable = np.where(valid & ~missing, out, np.nan)
        with np.errstate(all="ignore"):
            rows_with = ~np.all(np.isnan(usable), axis=1)
            median = np.ones(out.shape[0])
            if rows_with.any():
                median[rows_with] = np.nanmedian(usable[rows_with], axis=1)
        out = np.where(missing, median[:, None], out)
    return out


def _mmr(
    order: np.ndarray,
    keyed: np.ndarray,
    shown: np.ndarray,
    diversity: float,
    k: int,
    pair_similarity: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy maximal marginal relevance over the best ``3k`` candidates of each row.

    Returns the chosen positions into the pool (-1 for an empty slot) and their
    penalties. Picking stops when no candidate's penalised score is positive.
    """
    m = order.shape[0]
    depth = min(order.shape[1], 3 * k)
    width = min(k, order.shape[1])
    chosen = np.full((m, width), -1, dtype=np.int64)
    penalty = np.zeros(chosen.shape)
    for i in range(m):
        top = order[i, :depth]
        scores = keyed[i, top]
        live = np.isfinite(scores)
        top, scores = top[live], scores[live]
        if top.size == 0:
            continue
        pairs = pair_similarity(shown[i, top])
        best_overlap = np.zeros(top.size)
        taken = np.zeros(top.size, dtype=bool)
        for slot in range(min(width, top.size)):
            value = np.where(taken, -np.inf, scores - diversity * best_overlap)
            j = int(np.argmax(value))  # first maximum: ties keep score order
            if not value[j] > 0:
                break
            chosen[i, slot] = top[j]
            penalty[i, slot] = diversity * best_overlap[j]
            taken[j] = True
            best_overlap = np.maximum(best_overlap, pairs[j])
    return chosen, penalty


def _pad(ranked: Ranked, k: int) -> Ranked:
    width = ranked.rows.shape[1]
    if width >= k:
        return ranked
    pad = ((0, 0), (0, k - width))
    ranked.rows = np.pad(ranked.rows, pad, constant_values=-1)
    for name in ("score", "similarity", *ranked.parts):
        setattr(ranked, name, np.pad(getattr(ranked, name), pad))
    return ranked


# --------------------------------------------------------------------------- explanations


def top_entries(matrix: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest positive entries of every row: ``(columns, values)``, each of shape (rows, k).

    Largest first, ties by column; ``columns`` is -1 and ``values`` 0 past a
    row's positive entries. Used for the shared terms of an explanation
    (the rows are element-wise products of two vectors).
    """
    matrix = matrix.tocsr()
    rows = matrix.shape[0]
    columns = np.full((rows, k), -1, dtype=np.int32)
    values = np.zeros((rows, k), dtype=np.float32)
    if rows == 0 or matrix.nnz == 0:
        return columns, values
    kernel = _top_entries_kernel()
    if kernel is not None:
        kernel(
            matrix.indptr.astype(np.int64),
            matrix.indices.astype(np.int32),
            matrix.data.astype(np.float32),
            columns,
            values,
        )
        return columns, values
    row_of = np.repeat(np.arange(rows), np.diff(matrix.indptr))
    order = np.lexsort((matrix.indices, -matrix.data, row_of))
    row_of, index, data = row_of[order], matrix.indices[order], matrix.data[order]
    position = np.arange(row_of.size) - matrix.indptr[row_of]
    keep = (position < k) & (data > 0)
    columns[row_of[keep], position[keep]] = index[keep]
    values[row_of[keep], position[keep]] = data[keep]
    return columns, values


_KERNELS: dict[str, Any] = {}


def _top_entries_rows(indptr, indices, data, columns, values):  # pragma: no cover - compiled by numba
    k = columns.shape[1]
    for row in range(indptr.size - 1):
        filled = 0
        for at in range(indptr[row], indptr[row + 1]):
            value = data[at]
            column = indices[at]
            if value <= 0:
                continue
            # the row's entries come in column order, so an equal value never displaces an earlier column
            if filled == k and value <= values[row, k - 1]:
                continue
            slot = filled if filled < k else k - 1
            while slot > 0 and values[row, slot - 1] < value:
                if slot < k:
                    values[row, slot] = values[row, slot - 1]
                    columns[row, slot] = columns[row, slot - 1]
                slot -= 1
            values[row, slot] = value
            columns[row, slot] = column
            if filled < k:
                filled += 1


def _top_entries_kernel() -> Any:
    """The compiled row scan, or None without numba (then a sort is used)."""
    if "top" not in _KERNELS:
        try:
            import numba
        except ImportError:  # pragma: no cover - numba is a dependency
            _KERNELS["top"] = None
        else:
            _KERNELS["top"] = numba.njit(cache=True, nogil=True)(_top_entries_rows)
    return _KERNELS["top"]
