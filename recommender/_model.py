"""The model: :class:`Recommender` fits the pipeline and answers list queries.

``fit`` runs validation -> vectorising -> neighbour search -> duplicate groups
-> popularity prior, and keeps, for every article, a pool of its ``pool_size``
most similar articles. Queries re-rank those pools with the ranking controls
(``recommender._ranking``); they never rerun the neighbour search.

Every list goes through one batch-first core (:meth:`Recommender._lists`):
``recommend`` is a batch of one, ``recommend_frame`` a batch of all, and
``recommend_for_text`` a batch of one whose source is not in the model.
"""

from __future__ import annotations

import datetime as dt
import logging
import numbers
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator

from ._articles import validate_articles
from ._dates import DAY_NS, NAT, stamp_ns, to_ns, utc_timestamp
from ._duplicates import (
    DEFAULT_THRESHOLD,
    Signatures,
    compare,
    copy_labels,
    duplicate_groups,
    is_copy,
    representatives,
    signatures,
    text_keys,
)
from ._errors import ArticleValidationError, ModelFormatError, NotFittedError, SchemaError, UnknownArticleError
from ._neighbours import SIMILARITY_FLOOR, select_top, top_neighbours
from ._progress import bar as progress_bar
from ._ranking import (
    CONTROL_NAMES,
    PART_NAMES,
    Catalogue,
    Controls,
    Ranked,
    Sources,
    popularity,
    popularity_scale,
    rank,
    top_entries,
)
from ._text import FIELDS, TextParams, Vocabulary, fit_vocabulary, make_counter, unknown_tokens, vectorise

__all__ = ["DISPLAY_FIELDS", "PART_NAMES", "REASONS", "Recommendation", "Recommender"]

logger = logging.getLogger("recommender")

#: Fields of the recommended article shown on a page, in every list output.
DISPLAY_FIELDS = ("title", "url", "published", "category")
#: Why an item is in a list.
REASONS = ("similar", "fallback", "pinned")
#: Terms shown per item as the explanation of its similarity.
SHARED_TERMS = 5
#: Share of out-of-vocabulary tokens in added or edited articles above which a refit is advised.
DRIFT_REFIT = 0.2
_SIMILAR, _FALLBACK, _PINNED = 0, 1, 2


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


class Recommender(BaseEstimator):
    """Related-article recommender: TF-IDF neighbours re-ranked for news.

    Parameters
    ----------
    popularity_weight : float, default 0.1
        How much the popularity prior scales similarity (0 = content only).
    pool_size : int, default 50
        Candidates kept per article at fit time; ``k`` can be at most this.
    title_weight, summary_weight, body_weight : float, default 2.0, 1.0, 1.0
        Field weights of the term frequencies (see ``recommender._text``).
    min_df : int, default 2
        Drop terms found in fewer articles.
    max_df : float, default 0.5
        Drop terms found in a larger share of articles.
    ngram_range : tuple of int, default (1, 1)
        Word n-gram lengths.
    latent_components : int, default 20
        Dimensions of the latent (TruncatedSVD) part of the vectors; 0 = off.
    latent_weight : float, default 0.3
        Share of the latent cosine in the similarity (see ``recommender._text``).
    half_life_days, max_age_days, past_only, category_boost, tag_boost, same_category, categories, min_shared_tags, diversity, min_score, fallback
        Ranking controls, the defaults of every query; each can be overridden per
        call by keyword. See :class:`recommender._ranking.Controls`.
    duplicate_threshold : float or None, default 0.7
        Containment, in (0, 1], at which two articles are copies of each other:
        the share of the shorter text's 5-word shingles found in the longer one,
        on their own text without boilerplate (see ``recommender._duplicates``).
        Copies form a duplicate group: one story, shown once. None: only exact
        copies are grouped.
    collapse : bool, default True
        Collapse duplicate groups in lists; False switches grouping off entirely
        (every article is its own group).
    stop_words : "news", "english", None or list of str, default "news"
        Words left out of the vectors: ``"news"`` (function words only),
        ``"english"`` (scikit-learn's list, which also drops content words such
        as fire, bill and interest), None, or these words.
    fallback_days : float, default 30
        "Recent" for the popular fallback: published within this many days
        before the reference date.
    text_limit : int, default 20000
        ``recommend_for_text`` reads at most this many characters of each field.
    reference_date : str or Timestamp, optional
        The date at which article ages are measured for the popularity prior;
        default: the newest ``published`` in the corpus. Never the wall clock.
    mode : {"exact", "approx"}, default "exact"
        Neighbour search: ``exact`` finds every article's true most similar
        articles; ``approx`` gathers candidates from each article's most
        weighted words only and scores them exactly (much faster on large
        corpora, a little recall lost; see ``docs/performance.md``).
    n_jobs : int, optional
        Threads for the neighbour search (joblib semantics: -1 = all cores).

    Attributes
    ----------
    articles_ : DataFrame
        ``article_id``, display fields, ``views`` and ``tags`` of every article.
    vocabulary_ : Vocabulary
        Terms and idf weights (frozen after fit).
    vectors_ : csr_matrix of shape (n_articles, n_terms)
    neighbours_ : ndarray of shape (n_articles, pool_size), int32
        Candidate rows, most similar first; -1 for empty slots.
    similarities_ : ndarray of shape (n_articles, pool_size), float32
    popularity_ : ndarray of shape (n_articles,), float32
    popularity_scale_ : float
        The popularity scale (frozen after fit).
    groups_ : ndarray of shape (n_articles,), int64
        Duplicate-group label of each article (the first row of its group).
    signatures_ : Signatures or None
        The sampled shingle sets copies are judged on (None for a model saved
        in format 1 or 2, before they existed).
    reference_date_ : Timestamp or None
    rejected_ : list of dict
        Rows rejected while reading and fitting (``source, row, article_id, reason``).
    flagged_ : list of dict
        Articles kept but reported, with the same keys: a publication date in the
        future (see :func:`recommender.flagged_frame`).

    Examples
    --------
    >>> import pandas as pd, recommender as rec
    >>> articles = pd.DataFrame({
    ...     "article_id": ["a", "b", "c", "d"],
    ...     "title": ["Cup final goal", "Late goal wins cup", "Election vote count", "Vote count in election"],
    ...     "body": ["football cup final", "football cup goal", "election ballots vote", "ballots vote count"],
    ... })
    >>> model = rec.Recommender(min_df=1, max_df=1.0, fallback=False).fit(articles)
    >>> [r.article_id for r in model.recommend("a", k=1)]
    ['b']
    """

    def __init__(
        self,
        popularity_weight: float = 0.1,
        pool_size: int = 50,
        *,
        title_weight: float = 2.0,
        summary_weight: float = 1.0,
        body_weight: float = 1.0,
        min_df: int = 2,
        max_df: float = 0.5,
        ngram_range: tuple[int, int] = (1, 1),
        latent_components: int = 20,
        latent_weight: float = 0.3,
        half_life_days: float | None = None,
        max_age_days: float | None = None,
        past_only: bool = False,
        category_boost: float = 0.1,
        tag_boost: float = 0.05,
        same_category: bool = False,
        categories: Sequence[str] | None = None,
        min_shared_tags: int = 0,
        diversity: float = 0.0,
        min_score: float = 0.0,
        fallback: bool = True,
        duplicate_threshold: float | None = DEFAULT_THRESHOLD,
        collapse: bool = True,
        stop_words: str | Sequence[str] | None = "news",
        fallback_days: float = 30.0,
        text_limit: int = 20_000,
        reference_date: str | pd.Timestamp | None = None,
        mode: str = "exact",
        n_jobs: int | None = None,
    ) -> None:
        self.popularity_weight = popularity_weight
        self.pool_size = pool_size
        self.title_weight = title_weight
        self.summary_weight = summary_weight
        self.body_weight = body_weight
        self.min_df = min_df
        self.max_df = max_df
        self.ngram_range = ngram_range
        self.latent_components = latent_components
        self.latent_weight = latent_weight
        self.half_life_days = half_life_days
        self.max_age_days = max_age_days
        self.past_only = past_only
        self.category_boost = category_boost
        self.tag_boost = tag_boost
        self.same_category = same_category
        self.categories = categories
        self.min_shared_tags = min_shared_tags
        self.diversity = diversity
        self.min_score = min_score
        self.fallback = fallback
        self.duplicate_threshold = duplicate_threshold
        self.collapse = collapse
        self.stop_words = stop_words
        self.fallback_days = fallback_days
        self.text_limit = text_limit
        self.reference_date = reference_date
        self.mode = mode
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ parameters

    def text_params(self) -> TextParams:
        """The vectoriser parameters of this model (validated)."""
        return TextParams(
            field_weights={
                "title": float(self.title_weight),
                "summary": float(self.summary_weight),
                "body": float(self.body_weight),
            },
            min_df=self.min_df,
            max_df=float(self.max_df),
            ngram_range=(int(self.ngram_range[0]), int(self.ngram_range[1])),
            latent_components=self.latent_components,
            latent_weight=float(self.latent_weight),
            stop_words=self.stop_words if isinstance(self.stop_words, (str, type(None))) else tuple(self.stop_words),
        )

    def controls(self, **overrides: Any) -> Controls:
        """The ranking controls of this model, with per-call ``overrides`` applied."""
        controls = Controls(**{name: getattr(self, name) for name in CONTROL_NAMES}).replace(overrides)
        if controls.categories is not None and hasattr(self, "_category_names"):
            unknown = sorted(set(controls.categories) - set(self._category_names))
            if unknown:
                known = ", ".join(repr(c) for c in self._category_names[:20]) or "none"
                raise ValueError(f"Unknown categories {unknown}: the model's categories are {known}.")
        return controls

    def _check_params(self) -> None:
        self.controls()
        if not isinstance(self.pool_size, numbers.Integral) or isinstance(self.pool_size, bool) or self.pool_size < 1:
            raise ValueError(f"pool_size must be an integer >= 1, got {self.pool_size!r}.")
        threshold = self.duplicate_threshold
        if threshold is not None and (not isinstance(threshold, numbers.Real) or not 0 < threshold <= 1):
            raise ValueError(f"duplicate_threshold must be in (0, 1] or None, got {threshold!r}.")
        if not isinstance(self.collapse, (bool, np.bool_)):
            raise ValueError(f"collapse must be True or False, got {self.collapse!r}.")
        self.text_params()
        if not isinstance(self.fallback_days, numbers.Real) or not self.fallback_days >= 0:
            raise ValueError(f"fallback_days must be a number >= 0, got {self.fallback_days!r}.")
        if not isinstance(self.text_limit, numbers.Integral) or self.text_limit < 1:
            raise ValueError(f"text_limit must be an integer >= 1, got {self.text_limit!r}.")
        if self.mode not in ("exact", "approx"):
            raise ValueError(f"mode must be 'exact' or 'approx', got {self.mode!r}.")

    # ------------------------------------------------------------------ fit

    def fit(self, articles: pd.DataFrame, *, progress: bool | None = None) -> Recommender:
        """Learn vectors, neighbour pools, duplicate groups and the popularity prior.

        Parameters
        ----------
        articles : DataFrame
            A table from :func:`recommender.load_articles`, or any DataFrame with an
            ``article_id`` column (or alias) and some text; it is validated the
            same way, and rows rejected here are added to ``rejected_``.
        progress : bool or None, default None
            Show progress bars on stderr (tqdm); None shows them only when stderr
            is a terminal.

        Returns
        -------
        self
        """
        if not isinstance(articles, pd.DataFrame):
            raise TypeError(
                f"fit() expects a pandas DataFrame, got {type(articles).__name__}; "
                "read files with recommender.load_articles(path) first."
            )
        self._check_params()
        params = self.text_params()
        clock = _Stages()
        table = validate_articles(articles)
        rejected = list(table.attrs.get("rejected", ()))
        if len(table) == 0:
            reasons = "; ".join(sorted({r["reason"] for r in rejected})[:3]) or "the table is empty"
            raise SchemaError(f"No valid articles to fit: {len(rejected)} rows rejected ({reasons}).")
        if rejected:
            logger.warning("fit: %d rows rejected; see model.rejected_", len(rejected))
        flagged = list(table.attrs.get("flagged", ()))
        if flagged:
            logger.warning("fit: %d articles dated in the future (kept); see model.flagged_", len(flagged))
        clock.done("validated %d articles", len(table))

        with progress_bar(progress, total=1, desc="vectorising", unit="step") as bar:
            vocabulary, vectors = fit_vocabulary({f: table[f].tolist() for f in FIELDS}, params)
            bar.update(1)
        clock.done("vectorised: %d terms, %d stored values", len(vocabulary), vectors.nnz)
        published_ns = to_ns(table["published"])
        reference = self._reference(published_ns)
        views = table["views"].to_numpy(np.float64)
        self.text_keys_ = text_keys(table["title"], table["summary"], table["body"])
        clock.done("text keys")
        self.signatures_ = signatures(table["title"].tolist(), table["summary"].tolist(), table["body"].tolist())
        clock.done("copy signatures")
        with progress_bar(progress, total=vectors.shape[0], desc="neighbours", unit="article") as bar:
            self.neighbours_, self.similarities_ = top_neighbours(
                vectors,
                int(self.pool_size),
                copy_labels=copy_labels(self.text_keys_),
                n_jobs=self.n_jobs,
                mode=self.mode,
                progress=bar.update,
            )
        clock.done("neighbours (%s, pool %d)", self.mode, int(self.pool_size))
        self.popularity_scale_ = popularity_scale(views, published_ns, stamp_ns(reference))
        self.popularity_ = popularity(views, published_ns, stamp_ns(reference), self.popularity_scale_)
        self.vocabulary_ = vocabulary
        self.vectors_ = vectors
        self.reference_date_ = reference
        self.articles_ = table[["article_id", *DISPLAY_FIELDS, "views", "tags"]].reset_index(drop=True)
        self.rejected_ = rejected
        self.flagged_ = flagged
        self.blocked_: set[str] = set()
        self.pins_: dict[str, list[str]] = {}
        self.bans_: dict[str, set[str]] = {}
        self.drift_counts_ = np.zeros(2, dtype=np.int64)  # (out-of-vocabulary tokens, tokens) of later articles
        self.groups_ = self._duplicate_groups()
        clock.done("duplicate groups")
        self._index()
        clock.done("lookup index")
        return self

    def _reference(self, published_ns: np.ndarray) -> pd.Timestamp | None:
        if self.reference_date is not None:
            try:
                stamp = pd.Timestamp(self.reference_date)
            except (ValueError, TypeError):
                raise ValueError(f"reference_date must be a date, got {self.reference_date!r}.") from None
            return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        known = published_ns[published_ns != NAT]
        # A future date (flagged at ingest) must not age every other article: the
        # newest date up to now is the reference, unless every date is in the future.
        past = known[known <= pd.Timestamp.now(tz="UTC").value]
        known = past if past.size else known
        return pd.Timestamp(int(known.max()), unit="ns", tz="UTC") if known.size else None

    def _duplicate_groups(self) -> np.ndarray:
        """Duplicate groups from the copy rule of ``recommender._duplicates`` (see there)."""
        n = len(self.text_keys_)
        if not self.collapse:
            return np.arange(n, dtype=np.int64)
        threshold = None if self.duplicate_threshold is None else float(self.duplicate_threshold)
        return duplicate_groups(self._candidate_pairs(), np.asarray(self.text_keys_), self.signatures_, threshold)

    def _candidate_pairs(self) -> np.ndarray:
        """Pairs of rows judged for copies, shape (m, 2): each row with the first :data:`_COPY_CANDIDATES`
        of its pool, or every pair of a small model.

        Copies are each other's nearest neighbours, so the head of a pool holds
        them (a story with more copies than that still forms one group: the
        groups check the other pairs as they merge); up to :data:`_ALL_PAIRS`
        articles every pair is judged, since a tiny corpus may have too few kept
        terms for its pools to hold them. (So the 1,001st article can change a
        group whose copies the pools do not hold: the pools of such a pair would
        have to miss it while being full of less similar articles.)
        """
        n = len(self.text_keys_)
        if n <= _ALL_PAIRS:
            a, b = np.triu_indices(n, 1)
            return np.stack([a, b], axis=1)
        neighbours = np.asarray(self.neighbours_)[:, :_COPY_CANDIDATES]
        present = neighbours >= 0
        sources = np.broadcast_to(np.arange(n)[:, None], neighbours.shape)[present]
        return np.stack([sources, neighbours[present]], axis=1)

    @property
    def copy_groups_(self) -> np.ndarray:
        """Label shared by articles with identical text (-1 when unique), shape (n_articles,)."""
        self._check_fitted()
        return copy_labels(self.text_keys_)

    def _index(self) -> None:
        """Build the derived lookup structures used on the request path."""
        table = self.articles_
        self._ids: list[str] = table["article_id"].tolist()
        self._row_of = {article_id: row for row, article_id in enumerate(self._ids)}
        self._titles: list[str] = table["title"].tolist()
        self._urls: list[str | None] = table["url"].tolist()
        self._categories: list[str | None] = table["category"].tolist()
        self._published = [None if pd.isna(p) else p.to_pydatetime() for p in table["published"]]
        self._published_ns = to_ns(table["published"])
        names = sorted({c for c in self._categories if c is not None})
        code = {name: i for i, name in enumerate(names)}
        self._category_names = names
        self._category = np.array([code.get(c, -1) if c is not None else -1 for c in self._categories], dtype=np.int64)
        self._tag_code: dict[str, int] = {}
        self._tags = self._tag_matrix(table["tags"].tolist(), grow=True)
        self._terms = self.vocabulary_.terms.tolist()
        self._counter = None
        self._inverted = None
        self._refresh_catalog()  # also drops the request-path cache

    def _tag_matrix(self, tag_lists: Sequence[Sequence[str]], *, grow: bool) -> sp.csr_matrix:
        rows, cols = [], []
        for i, tags in enumerate(tag_lists):
            for tag in tags:
                code = self._tag_code.get(tag)
                if code is None and grow:
                    code = self._tag_code[tag] = len(self._tag_code)
                if code is not None:
                    rows.append(i)
                    cols.append(code)
        data = np.ones(len(rows), dtype=np.float32)
        return sp.csr_matrix((data, (rows, cols)), shape=(len(tag_lists), len(self._tag_code)))

    def _refresh_catalog(self) -> None:
        """Recompute what depends on views, groups and the blocklist."""
        self._cache = None
        blocked = np.zeros(len(self._ids), dtype=bool)
        for article_id in self.blocked_:
            row = self._row_of.get(article_id)
            if row is not None:
                blocked[row] = True
        self._blocked = blocked
        views = self.articles_["views"].to_numpy(np.float64)
        self._representative = representatives(np.asarray(self.groups_), self._published_ns, views, blocked)
        self._catalogue = Catalogue(
            published_ns=self._published_ns,
            category=self._category,
            category_names=self._category_names,
            tags=self._tags,
            popularity=np.asarray(self.popularity_),
            group=np.asarray(self.groups_),
            representative=self._representative,
        )
        recent_from = stamp_ns(self.reference_date_) - int(float(self.fallback_days) * DAY_NS)
        recent = (self._published_ns != NAT) & (self._published_ns >= recent_from) if self.reference_date_ else blocked
        self._popular_order = np.lexsort(
            (np.arange(len(self._ids)), -self._published_ns.astype(np.float64), -np.asarray(self.popularity_), ~recent)
        )

    # ------------------------------------------------------------------ validation helpers

    def _check_fitted(self) -> None:
        if not hasattr(self, "neighbours_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet: call fit(articles) or load a saved model "
                "with recommender.load_model(path) first."
            )

    def _check_k(self, k: Any) -> int:
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}.")
        if k > self.neighbours_.shape[1]:
            raise ValueError(
                f"k={k} is larger than the candidate pool of this model (pool_size={self.neighbours_.shape[1]}); "
                f"refit with pool_size >= {k}."
            )
        return int(k)

    def row_of(self, article_id: str) -> int:
        """Internal row of an article_id; raises UnknownArticleError."""
        self._check_fitted()
        try:
            return self._row_of[article_id]
        except (KeyError, TypeError):
            raise UnknownArticleError(
                f"Unknown article_id {article_id!r}: the model has {len(self._ids):,} articles. "
                "Refit with it, or use model.popular() as a fallback."
            ) from None

    def _rows_of(self, article_ids: Iterable[str] | None) -> np.ndarray:
        """Rows of the known ids among article_ids (unknown ids cannot appear anyway)."""
        if article_ids is None:
            return np.empty(0, dtype=np.int64)
        if isinstance(article_ids, str):
            article_ids = [article_ids]
        rows = [self._row_of.get(a) for a in article_ids]
        return np.array([r for r in rows if r is not None], dtype=np.int64)

    def _hidden_groups(self, exclude: Iterable[str] | None) -> np.ndarray | None:
        rows = self._rows_of(exclude)
        if rows.size == 0:
            return None
        hidden = np.zeros(len(self._ids), dtype=bool)
        hidden[np.asarray(self.groups_)[rows]] = True
        return hidden

    # ------------------------------------------------------------------ the list core

    def _sources(self, rows: np.ndarray) -> Sources:
        return Sources(
            published_ns=self._published_ns[rows],
            category=self._category[rows],
            tags=self._tags[rows],
            group=np.asarray(self.groups_)[rows],
        )

    def _pair_similarity(self, rows: np.ndarray) -> np.ndarray:
        block = self.vectors_[rows]
        return (block @ block.T).toarray()

    def _lists(
        self,
        candidates: np.ndarray,
        similarities: np.ndarray,
        sources: Sources,
        source_ids: Sequence[str | None],
        k: int,
        controls: Controls,
        exclude: Iterable[str] | None,
    ) -> tuple[Ranked, np.ndarray]:
        """Batch core: ranked lists plus the reason code of every slot, shape (m, k)."""
        hidden = self._hidden_groups(exclude)
        groups = np.asarray(self.groups_)
        banned = None
        if self.bans_:
            banned = [
                groups[self._rows_of(self.bans_.get(s, ()))] if s is not None else np.empty(0, np.int64)
                for s in source_ids
            ]
        ranked = rank(
            candidates,
            similarities,
            sources,
            self._catalogue,
            controls,
            k,
            hidden_groups=hidden,
            banned=banned,
            pair_similarity=self._pair_similarity,
        )
        reasons = np.where(ranked.rows >= 0, _SIMILAR, -1)
        pinned = [i for i, s in enumerate(source_ids) if s is not None and s in self.pins_]
        for i in pinned:
            self._apply_pins(ranked, reasons, i, source_ids[i], candidates[i], similarities[i], sources, hidden, banned)
        if controls.fallback:
            for i in np.flatnonzero((ranked.rows < 0).any(axis=1)):
                self._fill(ranked, reasons, int(i), sources, controls, hidden, banned)
        return ranked, reasons

    def _allowed(self, row: int, i: int, sources: Sources, hidden: np.ndarray | None, banned: Any) -> bool:
        group = int(self.groups_[row])
        if self._blocked[row] or group == sources.group[i]:
            return False
        if hidden is not None and hidden[group]:
            return False
        return not (banned is not None and group in set(banned[i].tolist()))

    def _apply_pins(
        self,
        ranked: Ranked,
        reasons: np.ndarray,
        i: int,
        source_id: str,
        candidates: np.ndarray,
        similarities: np.ndarray,
        sources: Sources,
        hidden: np.ndarray | None,
        banned: Any,
    ) -> None:
        """Put an editor's pinned articles at the top of list ``i``."""
        k = ranked.rows.shape[1]
        pins = [
            r for r in self._rows_of(self.pins_[source_id]).tolist() if self._allowed(r, i, sources, hidden, banned)
        ]
        if not pins:
            return
        groups = np.asarray(self.groups_)
        pinned_groups = {int(groups[r]) for r in pins}
        keep = [j for j in range(k) if ranked.rows[i, j] >= 0 and int(groups[ranked.rows[i, j]]) not in pinned_groups]
        fields = ("score", "similarity", *ranked.parts)
        old = {name: getattr(ranked, name)[i].copy() for name in fields}
        old_rows, old_reasons = ranked.rows[i].copy(), reasons[i].copy()
        pool_similarity = dict(zip(candidates.tolist(), similarities.tolist(), strict=True))
        ranked.rows[i] = -1
        reasons[i] = -1
        for name in fields:
            getattr(ranked, name)[i] = 0.0
        for j, row in enumerate(pins[:k]):
            ranked.rows[i, j] = row
            reasons[i, j] = _PINNED
            ranked.similarity[i, j] = ranked.score[i, j] = pool_similarity.get(row, 0.0)
        position = min(len(pins), k)
        for j in keep:
            if position >= k:
                break
            ranked.rows[i, position] = old_rows[j]
            reasons[i, position] = old_reasons[j]
            for name in fields:
                getattr(ranked, name)[i, position] = old[name][j]
            position += 1

    def _fill(
        self,
        ranked: Ranked,
        reasons: np.ndarray,
        i: int,
        sources: Sources,
        controls: Controls,
        hidden: np.ndarray | None,
        banned: Any,
    ) -> None:
        """Fill the empty slots of list ``i`` from the popular articles (same category first)."""
        k = ranked.rows.shape[1]
        slot = int(np.argmax(ranked.rows[i] < 0))
        groups = np.asarray(self.groups_)
        taken = {int(groups[r]) for r in ranked.rows[i] if r >= 0}
        source_category = int(sources.category[i])
        source_time = int(sources.published_ns[i])
        allowed_categories = (
            None if controls.categories is None else set(self._catalogue.category_codes(controls.categories).tolist())
        )
        passes = [True, False] if source_category >= 0 else [False]
        for same_category_pass in passes:
            for row in self._popular_order.tolist():
                if slot >= k:
                    return
                shown = int(self._representative[row])
                if shown != row or int(groups[row]) in taken:
                    continue
                if not self._allowed(row, i, sources, hidden, banned):
                    continue
                category = int(self._category[row])
                if same_category_pass and category != source_category:
                    continue
                if (controls.same_category and source_category >= 0 and category != source_category) or (
                    allowed_categories is not None and category not in allowed_categories
                ):
                    continue
                if not self._within_window(row, source_time, controls):
                    continue
                if controls.min_shared_tags > 0:
                    shared = self._tags[row].multiply(sources.tags[i]).sum()
                    if shared < controls.min_shared_tags:
                        continue
                ranked.rows[i, slot] = row
                reasons[i, slot] = _FALLBACK
                taken.add(int(groups[row]))
                slot += 1

    def _within_window(self, row: int, source_time: int, controls: Controls) -> bool:
        published = int(self._published_ns[row])
        if published == NAT or source_time == NAT:
            return True
        if controls.past_only and published > source_time:
            return False
        if controls.max_age_days is not None:
            return abs(published - source_time) / DAY_NS <= controls.max_age_days
        return True

    def _shared_terms(
        self, source_vectors: sp.csr_matrix, pairs: np.ndarray, rows: np.ndarray
    ) -> list[tuple[tuple[str, float], ...]]:
        """Top shared terms of each (source index, recommended row) pair."""
        if len(rows) == 0:
            return []
        columns, values = top_entries(self._word_products(source_vectors[pairs], rows), SHARED_TERMS)
        return [
            tuple((self._terms[c], v) for c, v in zip(cs, vs, strict=True) if c >= 0)
            for cs, vs in zip(columns.tolist(), _rounded(values).tolist(), strict=True)
        ]

    def _items(
        self, ranked: Ranked, reasons: np.ndarray, source_vectors: sp.csr_matrix | None, explain: bool
    ) -> list[list[Recommendation]]:
        """Ranked arrays -> lists of Recommendation (one per source)."""
        present = ranked.rows >= 0
        terms: dict[tuple[int, int], tuple[tuple[str, float], ...]] = {}
        if explain and source_vectors is not None:
            where = np.argwhere(present & (ranked.similarity > 0))
            explained = self._shared_terms(source_vectors, where[:, 0], ranked.rows[where[:, 0], where[:, 1]])
            terms = {(int(a), int(b)): t for (a, b), t in zip(where.tolist(), explained, strict=True)}
        lists = []
        for i in range(ranked.rows.shape[0]):
            items = []
            for j in np.flatnonzero(present[i]).tolist():
                row = int(ranked.rows[i, j])
                items.append(
                    self._recommendation(
                        row,
                        len(items) + 1,
                        REASONS[int(reasons[i, j])],
                        float(ranked.score[i, j]),
                        float(ranked.similarity[i, j]),
                        float(self.popularity_[row]),
                        tuple(float(getattr(ranked, name)[i, j]) for name in PART_NAMES),
                        terms.get((i, j), ()),
                    )
                )
            lists.append(items)
        return lists

    def _recommendation(
        self,
        row: int,
        rank: int,
        reason: str,
        score: float,
        similarity: float,
        prior: float,
        parts: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0),
        shared: tuple[tuple[str, float], ...] = (),
    ) -> Recommendation:
        """One list item for article ``row``: its display fields plus the given numbers."""
        popularity_part, freshness_part, boost_part, diversity_part = parts
        return Recommendation(
            article_id=self._ids[row],
            title=self._titles[row],
            url=self._urls[row],
            published=self._published[row],
            category=self._categories[row],
            score=score,
            similarity=similarity,
            popularity=prior,
            rank=rank,
            reason=reason,
            popularity_part=popularity_part,
            freshness_part=freshness_part,
            boost_part=boost_part,
            diversity_part=diversity_part,
            shared_terms=shared,
        )

    # ------------------------------------------------------------------ queries

    def recommend(
        self,
        article_id: str,
        k: int = 5,
        *,
        exclude: Iterable[str] | None = None,
        explain: bool = True,
        **overrides: Any,
    ) -> list[Recommendation]:
        """The "You Might Like" list of one article.

        Parameters
        ----------
        article_id : str
        k : int, default 5
            List length (1 <= k <= pool_size). Shorter only when ``fallback`` is
            off and fewer articles qualify.
        exclude : iterable of str, optional
            Article ids to leave out (e.g. already read), with their duplicates;
            unknown ids are ignored.
        explain : bool, default True
            Fill ``shared_terms`` of each item.
        **overrides
            Ranking controls for this call (``half_life_days=30``, ``diversity=0.3``,
            ...); see :class:`recommender._ranking.Controls`.

        Returns
        -------
        list of Recommendation
            Best first; never the article itself, a duplicate of it, an excluded,
            blocked or banned article, or two members of one duplicate group.

        Raises
        ------
        UnknownArticleError
            ``article_id`` is not in the model.
        """
        self._check_fitted()
        k = self._check_k(k)
        row = self.row_of(article_id)
        if not overrides and k <= _CACHE_DEPTH:
            items = self._from_cache(row, k, exclude, explain)
            if items is not None:
                return items
        controls = self.controls(**overrides)
        rows = np.array([row])
        ranked, reasons = self._lists(
            self.neighbours_[rows], self.similarities_[rows], self._sources(rows), [article_id], k, controls, exclude
        )
        return self._items(ranked, reasons, self.vectors_[rows], explain)[0]

    # ------------------------------------------------------------------ request-path cache

    def _text_similarities(self, query: sp.csr_matrix) -> np.ndarray:
        """Similarity of one query vector to every article, shape (n_articles,).

        Only the postings of the query's own words are read (an inverted index,
        built once), plus a small dense product for the latent columns, instead
        of a pass over every article's vector.
        """
        words, latent = self._inverted_index()
        query = query.tocsr()
        columns, values = query.indices, query.data.astype(np.float32)
        n_terms = len(self._terms)
        similarities = np.zeros(len(self._ids), dtype=np.float32)
        is_word = columns < n_terms
        if is_word.any():
            similarities += np.asarray(words[columns[is_word]].T @ values[is_word], dtype=np.float32).ravel()
        if latent.shape[0] and (~is_word).any():
            dense = np.zeros(latent.shape[0], dtype=np.float32)
            dense[columns[~is_word] - n_terms] = values[~is_word]
            # einsum, not BLAS: a threaded sgemv this small is slower than one core's loop (7.8 ms vs 0.6 ms at 100k)
            similarities += np.einsum("i,ij->j", dense, latent)
        return similarities

    def _inverted_index(self) -> tuple[sp.csr_matrix, np.ndarray]:
        index = getattr(self, "_inverted", None)
        if index is None:
            n_terms = len(self._terms)
            vectors = self.vectors_.tocsr()
            words = vectors[:, :n_terms].T.tocsr()
            latent = np.ascontiguousarray(vectors[:, n_terms:].toarray().T, dtype=np.float32)
            index = self._inverted = (words, latent)
        return index

    def warm(self) -> Recommender:
        """Compute the request-path cache now instead of on the first ``recommend``; returns self.

        The cache holds every article's list under the model's own controls
        (the first ``_CACHE_DEPTH`` items, with their explanations), so that
        ``recommend`` with those controls is a lookup. Any change to the model
        (updates, blocklist, pins, bans, views, parameters) drops it.
        """
        self._check_fitted()
        self._list_cache()
        self._inverted_index()
        return self

    def set_params(self, **params: Any) -> Recommender:
        self._cache = None
        return super().set_params(**params)

    def _list_cache(self) -> _ListCache:
        cache = getattr(self, "_cache", None)
        if cache is None:
            cache = self._cache = self._build_cache()
        return cache

    def _build_cache(self) -> _ListCache:
        controls = self.controls()
        n = len(self._ids)
        depth = min(_CACHE_DEPTH, self.neighbours_.shape[1])
        parts = []
        for start in range(0, n, 4096):
            rows = np.arange(start, min(start + 4096, n))
            ranked, reasons = self._lists(
                self.neighbours_[rows],
                self.similarities_[rows],
                self._sources(rows),
                [self._ids[r] for r in rows],
                depth,
                controls,
                None,
            )
            terms, values = self._shared_term_arrays(rows, ranked)
            parts.append((ranked, reasons, terms, values))

        def stack(get: Any) -> np.ndarray:
            return np.concatenate([get(p) for p in parts]) if parts else np.empty((0, depth))

        rows = stack(lambda p: p[0].rows).astype(np.int64)
        columns = [stack(lambda p, name=name: getattr(p[0], name)) for name in ("score", "similarity", *PART_NAMES)]
        prior = np.where(rows >= 0, np.asarray(self.popularity_)[np.where(rows >= 0, rows, 0)], 0.0)
        return _ListCache(
            rows=rows,
            numbers=np.stack([*columns, prior], axis=-1).astype(np.float64),
            reasons=stack(lambda p: p[1]).astype(np.int8),
            terms=stack(lambda p: p[2]),
            term_values=_rounded(stack(lambda p: p[3])),
            diversity=float(controls.diversity),
        )

    def _shared_term_arrays(self, rows: np.ndarray, ranked: Ranked) -> tuple[np.ndarray, np.ndarray]:
        """Top shared term ids and contributions of every cached item, shape (m, depth, SHARED_TERMS)."""
        m, depth = ranked.rows.shape
        terms = np.full((m, depth, SHARED_TERMS), -1, dtype=np.int32)
        values = np.zeros((m, depth, SHARED_TERMS), dtype=np.float32)
        where = np.argwhere((ranked.rows >= 0) & (ranked.similarity > 0))
        if where.size:
            products = self._word_products(self.vectors_[rows[where[:, 0]]], ranked.rows[where[:, 0], where[:, 1]])
            terms[where[:, 0], where[:, 1]], values[where[:, 0], where[:, 1]] = top_entries(products, SHARED_TERMS)
        return terms, values

    def _word_products(self, sources: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
        """Element-wise products of source vectors and the vectors of ``rows``, word columns only."""
        n_terms = len(self._terms)
        return sources[:, :n_terms].multiply(self.vectors_[rows][:, :n_terms]).tocsr()

    def _from_cache(
        self, row: int, k: int, exclude: Iterable[str] | None, explain: bool
    ) -> list[Recommendation] | None:
        """The list from the cache, or None when the cache cannot give the exact answer."""
        cache = self._list_cache()
        slots = [j for j, r in enumerate(cache.rows[row].tolist()) if r >= 0]
        if exclude is not None:
            if isinstance(exclude, str):
                exclude = [exclude]
            hidden = {int(self.groups_[r]) for r in self._rows_of(exclude).tolist()}
            if hidden:
                if cache.diversity > 0 or self._ids[row] in self.pins_:
                    return None  # the penalties or the pinned order would change
                kept = [j for j in slots if int(self.groups_[cache.rows[row, j]]) not in hidden]
                if len(kept) < k and len(slots) == cache.rows.shape[1]:
                    return None  # the cache is too short to fill k after the exclusions
                slots = kept
        items = []
        targets = cache.rows[row].tolist()
        numbers = cache.numbers[row].tolist()
        reasons = cache.reasons[row].tolist()
        if explain:
            terms = cache.terms[row].tolist()
            term_values = cache.term_values[row].tolist()
        for rank_, j in enumerate(slots[:k], start=1):
            target = targets[j]
            score, similarity, popularity_part, freshness_part, boost_part, diversity_part, prior = numbers[j]
            shared: tuple[tuple[str, float], ...] = ()
            if explain:
                shared = tuple((self._terms[t], v) for t, v in zip(terms[j], term_values[j], strict=True) if t >= 0)
            items.append(
                self._recommendation(
                    target,
                    rank_,
                    REASONS[reasons[j]],
                    score,
                    similarity,
                    prior,
                    (popularity_part, freshness_part, boost_part, diversity_part),
                    shared,
                )
            )
        return items

    def recommend_for_text(
        self,
        title: str = "",
        summary: str = "",
        body: str = "",
        *,
        published: str | pd.Timestamp | dt.datetime | None = None,
        category: str | None = None,
        tags: Sequence[str] | str = (),
        k: int = 5,
        exclude: Iterable[str] | None = None,
        explain: bool = True,
        **overrides: Any,
    ) -> list[Recommendation]:
        """The list for a text that is not in the model (a draft, a new article).

        Uses the fitted vocabulary and the same ranking controls as
        :meth:`recommend`. Each field is cut to ``text_limit`` characters (20,000 by
        default) so a huge input cannot stall a web request. An article of the
        model that is a copy of the text (exactly, or by the copy rule of
        ``duplicate_threshold``) is never recommended.
        """
        self._check_fitted()
        k = self._check_k(k)
        controls = self.controls(**overrides)
        limit = int(self.text_limit)
        fields = {name: [str(value or "")[:limit]] for name, value in zip(FIELDS, (title, summary, body), strict=True)}
        if self._counter is None and len(self.vocabulary_):  # no terms at all: vectorise gives zeros
            self._counter = make_counter(self.vocabulary_, self.text_params())
        query = vectorise(fields, self.vocabulary_, self.text_params(), self._counter)
        similarities = self._text_similarities(query)
        key = text_keys(fields["title"], fields["summary"], fields["body"])[0]
        similarities[np.asarray(self.text_keys_) == key] = -np.inf
        rows, sims = select_top(similarities[None, :], self.neighbours_.shape[1], len(self._ids))
        rows, sims = self._without_copies_of(fields, rows, sims)
        stamp = utc_timestamp(published)
        tag_list = [t.strip() for t in tags.split(";")] if isinstance(tags, str) else [str(t).strip() for t in tags]
        code = self._category_names.index(category) if category in self._category_names else -1
        sources = Sources(
            published_ns=np.array([NAT if stamp is None else stamp.value], dtype=np.int64),
            category=np.array([code if category is not None else -1], dtype=np.int64),
            tags=self._tag_matrix([[t for t in tag_list if t]], grow=False),
            group=np.array([-1], dtype=np.int64),
        )
        ranked, reasons = self._lists(rows, sims, sources, [None], k, controls, exclude)
        return self._items(ranked, reasons, query, explain)[0]

    def _without_copies_of(
        self, fields: Mapping[str, list[str]], rows: np.ndarray, sims: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Drop the near copies of a draft from its candidates (``rows``, ``sims`` of shape (1, pool))."""
        candidates = np.flatnonzero(rows[0] >= 0)
        if self.signatures_ is None or not self.collapse or self.duplicate_threshold is None or not candidates.size:
            return rows, sims
        draft = signatures(fields["title"], fields["summary"], fields["body"])
        shared, containment, _, sampled = compare(
            draft, np.zeros(candidates.size, dtype=np.int64), self.signatures_, rows[0, candidates]
        )
        copies = candidates[is_copy(shared, containment, sampled, float(self.duplicate_threshold))]
        if copies.size:
            keep = np.ones(rows.shape[1], dtype=bool)
            keep[copies] = False
            pad = np.full(copies.size, -1, dtype=rows.dtype)
            rows = np.concatenate([rows[0, keep], pad])[None, :]
            sims = np.concatenate([sims[0, keep], np.zeros(copies.size, dtype=sims.dtype)])[None, :]
        return rows, sims

    def recommend_frame(
        self,
        k: int = 10,
        *,
        article_ids: Sequence[str] | None = None,
        exclude: Iterable[str] | None = None,
        explain: bool = False,
        batch_size: int = 4096,
        progress: bool | None = None,
        **overrides: Any,
    ) -> pd.DataFrame:
        """Every article's list (or those of ``article_ids``) as one tidy DataFrame.

        Returns
        -------
        DataFrame
            Columns ``article_id, rank, recommended_id, score, similarity,
            popularity, title, url, published, category, reason`` (``title`` to
            ``category`` describe the recommended article), plus ``popularity_part,
            freshness_part, boost_part, diversity_part, shared_terms`` when
            ``explain=True`` (``shared_terms`` as ``"term=0.0123; ..."``). ``progress``
            shows a progress bar (None: only on a terminal). One row
            per list item, lists in article order, ranks from 1. The same lists as
            :meth:`recommend` with the same controls.
        """
        self._check_fitted()
        k = self._check_k(k)
        controls = self.controls(**overrides)
        if article_ids is None:
            rows = np.arange(len(self._ids))
        else:
            rows = np.array([self.row_of(a) for a in article_ids], dtype=np.int64)
        frames = []
        with progress_bar(progress, total=len(rows), desc="lists", unit="article") as bar:
            for start in range(0, len(rows), batch_size):
                chunk = rows[start : start + batch_size]
                ranked, reasons = self._lists(
                    self.neighbours_[chunk],
                    self.similarities_[chunk],
                    self._sources(chunk),
                    [self._ids[r] for r in chunk],
                    k,
                    controls,
                    exclude,
                )
                frames.append(self._frame(chunk, ranked, reasons, explain))
                bar.update(len(chunk))
        if not frames:
            return self._frame(rows, _empty_ranked(k), np.empty((0, k), dtype=np.int64), explain)
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    def _frame(self, rows: np.ndarray, ranked: Ranked, reasons: np.ndarray, explain: bool) -> pd.DataFrame:
        present = ranked.rows >= 0
        k = ranked.rows.shape[1]
        # ranks count only the present items of each list
        ranks = np.cumsum(present, axis=1)[present]
        source = np.repeat(rows, k).reshape(-1, k)[present]
        target = ranked.rows[present]
        ids = np.asarray(self._ids, dtype=object)
        table = self.articles_
        frame = pd.DataFrame(
            {
                "article_id": ids[source],
                "rank": ranks.astype(np.int64),
                "recommended_id": ids[target],
                "score": ranked.score[present].astype(np.float64),
                "similarity": ranked.similarity[present].astype(np.float64),
                "popularity": np.asarray(self.popularity_)[target].astype(np.float64),
                "title": table["title"].to_numpy(dtype=object)[target],
                "url": table["url"].to_numpy(dtype=object)[target],
                "published": table["published"].iloc[target].reset_index(drop=True),
                "category": table["category"].to_numpy(dtype=object)[target],
                "reason": np.asarray(REASONS, dtype=object)[reasons[present]] if target.size else np.empty(0, object),
            }
        )
        if explain:
            for name in PART_NAMES:
                frame[name] = getattr(ranked, name)[present].astype(np.float64)
            where = np.argwhere(present & (ranked.similarity > 0))
            explained = self._shared_terms(self.vectors_[rows], where[:, 0], ranked.rows[where[:, 0], where[:, 1]])
            text = np.full(ranked.rows.shape, "", dtype=object)
            for (i, j), terms in zip(where.tolist(), explained, strict=True):
                text[i, j] = "; ".join(f"{t}={v:.4f}" for t, v in terms)
            frame["shared_terms"] = text[present]
        return frame

    def popular(
        self, k: int = 10, *, category: str | None = None, exclude: Iterable[str] | None = None
    ) -> list[Recommendation]:
        """The most popular articles: a fallback list for any page.

        Recent articles (published within ``fallback_days`` of the reference date)
        by views per day, then older ones; within ``category`` only when given.
        Without any view counts this is the newest articles. Duplicates are shown
        once (their representative); blocked articles never. ``similarity`` is 0
        and ``score`` equals ``popularity``.
        """
        self._check_fitted()
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}.")
        hidden = self._hidden_groups(exclude)
        groups = np.asarray(self.groups_)
        chosen: list[int] = []
        seen: set[int] = set()
        for row in self._popular_order.tolist():
            if len(chosen) >= k:
                break
            if self._representative[row] != row or int(groups[row]) in seen:
                continue
            if hidden is not None and hidden[groups[row]]:
                continue
            if category is not None and self._categories[row] != category:
                continue
            chosen.append(row)
            seen.add(int(groups[row]))
        return [
            self._recommendation(r, rank_, "fallback", float(self.popularity_[r]), 0.0, float(self.popularity_[r]))
            for rank_, r in enumerate(chosen, start=1)
        ]

    def duplicate_groups(self) -> pd.DataFrame:
        """The duplicate groups with more than one member, and why each member is in its group.

        Returns
        -------
        DataFrame
            Columns ``group`` (numbered from 1), ``article_id``, ``title``,
            ``published``, ``views``, ``representative`` (True for the member shown
            in lists), ``containment`` and ``resemblance`` (of the member's own
            text and the representative's, see ``recommender._duplicates``; 1 for
            exact copies and the representative itself; NaN for a model saved
            before copy signatures), one row per member, representative first.
        """
        self._check_fitted()
        groups = np.asarray(self.groups_)
        counts = np.bincount(groups, minlength=len(groups))
        members = np.flatnonzero(counts[groups] > 1)
        columns = ["group", "article_id", "title", "published", "views", "representative", "containment", "resemblance"]
        if members.size == 0:
            return pd.DataFrame({c: [] for c in columns})
        is_rep = self._representative[members] == members
        order = np.lexsort((members, ~is_rep, groups[members]))
        members = members[order]
        _, number = np.unique(groups[members], return_inverse=True)
        table = self.articles_.iloc[members]
        shown = self._representative[members]
        shown = np.where(shown >= 0, shown, groups[members])  # every member blocked: judged against the first
        keys = np.asarray(self.text_keys_)
        if self.signatures_ is None:
            containment = resemblance = np.full(members.size, np.nan)
        else:
            _, containment, resemblance, _ = compare(self.signatures_, members, self.signatures_, shown)
            exact = keys[members] == keys[shown]
            containment = np.where(exact, 1.0, containment)
            resemblance = np.where(exact, 1.0, resemblance)
        return pd.DataFrame(
            {
                "group": number.ravel() + 1,
                "article_id": table["article_id"].to_numpy(dtype=object),
                "title": table["title"].to_numpy(dtype=object),
                "published": table["published"].to_numpy(),
                "views": table["views"].to_numpy(),
                "representative": self._representative[members] == members,
                "containment": np.round(containment, 4),
                "resemblance": np.round(resemblance, 4),
            }
        )

    # ------------------------------------------------------------------ editorial controls

    def block(self, article_ids: Iterable[str]) -> list[str]:
        """Keep articles out of every list (unpublished, retracted) until unblocked.

        Unknown ids are recorded too, so an article blocked before it is added
        stays blocked. Saved with the model. Returns the ids whose lists changed.
        """
        self._check_fitted()
        ids = [article_ids] if isinstance(article_ids, str) else list(article_ids)
        before = self._representative.copy()
        self.blocked_ |= set(ids)
        return self._after_catalog_change(self._rows_of(ids), before)

    def unblock(self, article_ids: Iterable[str]) -> list[str]:
        """Allow blocked articles again. Returns the ids whose lists changed."""
        self._check_fitted()
        ids = [article_ids] if isinstance(article_ids, str) else list(article_ids)
        before = self._representative.copy()
        self.blocked_ -= set(ids)
        return self._after_catalog_change(self._rows_of(ids), before)

    def _after_catalog_change(self, rows: np.ndarray, before: np.ndarray) -> list[str]:
        self._refresh_catalog()
        changed = np.union1d(rows, np.flatnonzero(before != self._representative))
        return self._ids_of(self._sources_listing(changed))

    def _sources_listing(self, rows: np.ndarray) -> np.ndarray:
        """Rows whose candidate pool holds any of ``rows`` or a duplicate of them."""
        if len(rows) == 0:
            return np.empty(0, dtype=np.int64)
        groups = np.asarray(self.groups_)
        members = np.flatnonzero(np.isin(groups, groups[rows]))
        return np.flatnonzero(np.isin(self.neighbours_, members).any(axis=1))

    def _ids_of(self, rows: Iterable[int]) -> list[str]:
        return [self._ids[int(r)] for r in sorted(set(int(r) for r in rows))]

    def pin(self, source_id: str, recommended_ids: Sequence[str]) -> list[str]:
        """Put chosen articles, in this order, at the top of one article's list.

        Replaces earlier pins of ``source_id``; an empty sequence removes them.
        Pinned articles still never include the source, or an excluded, blocked
        or banned article. Saved with the model. Returns ``[source_id]``.
        """
        self.row_of(source_id)
        ids = [recommended_ids] if isinstance(recommended_ids, str) else list(recommended_ids)
        for article_id in ids:
            self.row_of(article_id)
        if ids:
            self.pins_[source_id] = list(dict.fromkeys(ids))
        else:
            self.pins_.pop(source_id, None)
        self._cache = None
        return [source_id]

    def ban(self, source_id: str, recommended_id: str) -> list[str]:
        """Never show ``recommended_id`` (or its duplicates) in ``source_id``'s list. Returns ``[source_id]``."""
        self.row_of(source_id)
        self.row_of(recommended_id)
        self.bans_.setdefault(source_id, set()).add(recommended_id)
        self._cache = None
        return [source_id]

    def unban(self, source_id: str, recommended_id: str) -> list[str]:
        """Undo :meth:`ban`. Returns ``[source_id]``."""
        self._check_fitted()
        banned = self.bans_.get(source_id, set())
        banned.discard(recommended_id)
        if not banned:
            self.bans_.pop(source_id, None)
        self._cache = None
        return [source_id]

    # ------------------------------------------------------------------ live updates

    def _prepare_new(self, articles: pd.DataFrame) -> pd.DataFrame:
        if not isinstance(articles, pd.DataFrame):
            raise TypeError(f"expected a pandas DataFrame of articles, got {type(articles).__name__}.")
        table = validate_articles(articles, strict=True)
        if len(table) == 0:
            raise ArticleValidationError("No articles given.")
        return table

    def _flag(self, table: pd.DataFrame) -> None:
        """Replace the flags of the articles in a validated table of new or edited articles by theirs."""
        ids = set(table["article_id"])
        self.flagged_ = [f for f in self.flagged_ if f.get("article_id") not in ids] + [
            dict(f) for f in table.attrs.get("flagged", ())
        ]

    def _check_signatures(self, method: str) -> None:
        if self.signatures_ is None:
            raise ModelFormatError(
                f"{method}: this model was saved in model format 1 or 2, before copy signatures, so new or edited "
                "articles cannot be judged for copies like the rest: rebuild it with this version "
                "(`recommender build` or Recommender().fit) to add or edit articles. Its lists, blocks, pins, bans, "
                "view updates and removals still work."
            )

    def _writable(self) -> None:
        """Copy memory-mapped arrays before changing them."""
        for name in ("neighbours_", "similarities_", "popularity_", "text_keys_", "groups_"):
            setattr(self, name, np.array(getattr(self, name)))

    def _vectorise(self, table: pd.DataFrame) -> sp.csr_matrix:
        params = self.text_params()
        fields = {f: table[f].tolist() for f in FIELDS}
        self.drift_counts_ = np.asarray(self.drift_counts_) + np.array(unknown_tokens(fields, self.vocabulary_, params))
        if self._counter is None and len(self.vocabulary_):  # no terms at all: vectorise gives zeros
            self._counter = make_counter(self.vocabulary_, params)
        return vectorise(fields, self.vocabulary_, params, self._counter)

    def add_articles(self, articles: pd.DataFrame) -> list[str]:
        """Add new articles without a refit (vocabulary and idf stay frozen).

        The new articles get lists, and enter the pools of existing articles
        where they now belong. Invalid rows raise :class:`ArticleValidationError`
        and change nothing; an id already in the model raises too (use
        :meth:`update_articles`).

        Returns
        -------
        list of str
            The ids whose lists changed (the new ones included), sorted.
        """
        self._check_fitted()
        self._check_signatures("add_articles")
        table = self._prepare_new(articles)
        known = [a for a in table["article_id"] if a in self._row_of]
        if known:
            raise ArticleValidationError(
                f"add_articles: {len(known)} article_id(s) already in the model (first: {known[0]!r}); "
                "use update_articles() for edits."
            )
        new_vectors = self._vectorise(table)
        self._writable()
        n_old = len(self._ids)
        unseen = np.full(len(table), -1, dtype=np.int64)
        before = (np.concatenate([self.groups_, unseen]), np.concatenate([self._representative, unseen]))
        published_ns = to_ns(table["published"])
        views = table["views"].to_numpy(np.float64)
        self.vectors_ = sp.vstack([self.vectors_, new_vectors], format="csr")
        self.articles_ = pd.concat(
            [self.articles_, table[["article_id", *DISPLAY_FIELDS, "views", "tags"]]], ignore_index=True
        )
        self.popularity_ = np.concatenate(
            [self.popularity_, popularity(views, published_ns, stamp_ns(self.reference_date_), self.popularity_scale_)]
        )
        self.text_keys_ = np.concatenate([self.text_keys_, text_keys(table["title"], table["summary"], table["body"])])
        self.signatures_ = self.signatures_.concat(_signatures_of(table))
        pool = self.neighbours_.shape[1]
        self.neighbours_ = np.vstack([self.neighbours_, np.full((len(table), pool), -1, dtype=np.int32)])
        self.similarities_ = np.vstack([self.similarities_, np.zeros((len(table), pool), dtype=np.float32)])
        new_rows = np.arange(n_old, n_old + len(table))
        affected = np.union1d(new_rows, self._qualifying(new_rows))
        self._flag(table)
        return self._refresh(affected, changed=new_rows, always=new_rows, before=before)

    def update_articles(self, articles: pd.DataFrame) -> list[str]:
        """Replace edited articles (text, date, views, category, ...) without a refit.

        Every id must already be in the model. Returns the ids whose lists changed.
        """
        self._check_fitted()
        self._check_signatures("update_articles")
        table = self._prepare_new(articles)
        rows = np.array([self.row_of(a) for a in table["article_id"]], dtype=np.int64)
        new_vectors = self._vectorise(table)
        self._writable()
        holders = self._sources_listing(rows)
        vectors = self.vectors_.tolil()
        vectors[rows] = new_vectors
        self.vectors_ = vectors.tocsr()
        self.vectors_.sort_indices()
        self.vectors_ = self.vectors_.astype(np.float32)
        frame = self.articles_.copy()
        replacement = table[["article_id", *DISPLAY_FIELDS, "views", "tags"]].set_index(pd.Index(rows))
        for column in replacement.columns:
            frame.loc[rows, column] = replacement[column].to_numpy()
        frame["published"] = pd.to_datetime(frame["published"], utc=True)
        frame["views"] = frame["views"].astype(np.float64)
        self.articles_ = frame
        published_ns = to_ns(table["published"])
        self.popularity_[rows] = popularity(
            table["views"].to_numpy(np.float64), published_ns, stamp_ns(self.reference_date_), self.popularity_scale_
        )
        self.text_keys_[rows] = text_keys(table["title"], table["summary"], table["body"])
        self.signatures_ = self.signatures_.replace(rows, _signatures_of(table))
        affected = np.union1d(np.union1d(rows, holders), self._qualifying(rows))
        self._flag(table)
        before = (np.asarray(self.groups_).copy(), self._representative.copy())
        return self._refresh(affected, changed=rows, always=np.union1d(rows, holders), before=before)

    def remove_articles(self, article_ids: Iterable[str]) -> list[str]:
        """Take articles out of the model and out of every list.

        Returns the ids whose lists changed, including the removed ids (their
        lists are gone).
        """
        self._check_fitted()
        ids = [article_ids] if isinstance(article_ids, str) else list(article_ids)
        rows = np.unique([self.row_of(a) for a in ids]).astype(np.int64)
        if rows.size == len(self._ids):
            raise ValueError("remove_articles would remove every article; fit a new model instead.")
        self._writable()
        holders = self._sources_listing(rows)
        keep = np.ones(len(self._ids), dtype=bool)
        keep[rows] = False
        new_row = np.cumsum(keep) - 1
        new_row[~keep] = -1
        neighbours = self.neighbours_[keep]
        remapped = np.where(neighbours >= 0, new_row[np.where(neighbours >= 0, neighbours, 0)], -1)
        self.neighbours_ = remapped.astype(np.int32)
        self.similarities_ = self.similarities_[keep]
        self.vectors_ = self.vectors_[keep]
        self.articles_ = self.articles_[keep].reset_index(drop=True)
        self.popularity_ = self.popularity_[keep]
        self.text_keys_ = self.text_keys_[keep]
        if self.signatures_ is not None:
            self.signatures_ = self.signatures_.take(np.flatnonzero(keep))
        shown = self._representative
        shown = np.where(shown >= 0, new_row[np.where(shown >= 0, shown, 0)], -1)[keep]  # -1: it was removed
        self.groups_ = _relabel(np.asarray(self.groups_)[keep])  # recomputed in _refresh when signatures exist
        before = (np.asarray(self.groups_).copy(), shown)
        gone = set(ids)
        self.flagged_ = [f for f in self.flagged_ if f.get("article_id") not in gone]
        affected = new_row[holders[keep[holders]]]
        changed = self._refresh(affected, changed=np.empty(0, np.int64), always=affected, before=before)
        return sorted(set(changed) | set(ids))

    def update_views(self, views: Mapping[str, float] | pd.DataFrame | pd.Series) -> list[str]:
        """Refresh view counts (they change hourly); the popularity scale stays frozen.

        ``views`` maps article_id to the new count: a dict, a Series indexed by
        id, or a DataFrame with ``article_id`` (or ``id``) and ``views`` columns.
        Unknown ids raise :class:`UnknownArticleError`; invalid counts raise
        ``ValueError``. Returns the ids whose lists changed.
        """
        self._check_fitted()
        mapping = _views_mapping(views)
        rows = np.array([self.row_of(a) for a in mapping], dtype=np.int64)
        values = np.array(list(mapping.values()), dtype=np.float64)
        self._writable()
        frame = self.articles_.copy()
        frame.loc[rows, "views"] = values
        self.articles_ = frame
        published_ns = self._published_ns[rows]
        before = self._representative.copy()
        self.popularity_[rows] = popularity(
            values, published_ns, stamp_ns(self.reference_date_), self.popularity_scale_
        )
        return self._after_catalog_change(rows, before)

    def _qualifying(self, rows: np.ndarray) -> np.ndarray:
        """Existing rows whose pool one of ``rows`` could now enter (an over-approximation)."""
        if len(rows) == 0:
            return np.empty(0, dtype=np.int64)
        best = np.zeros(self.vectors_.shape[0], dtype=np.float32)
        step = max(1, 32_000_000 // max(len(best), 1))  # bounded memory: about 128 MB of similarities at a time
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            sims = (self.vectors_ @ self.vectors_[chunk].T).toarray()
            sims[chunk, np.arange(len(chunk))] = 0.0
            np.maximum(best, sims.max(axis=1), out=best)
        last = self.similarities_[:, -1]
        full = self.neighbours_[:, -1] >= 0
        return np.flatnonzero((best > SIMILARITY_FLOOR) & (~full | (best >= last - 1e-6)))

    def _refresh(
        self, rows: np.ndarray, *, changed: np.ndarray, always: np.ndarray, before: tuple[np.ndarray, np.ndarray]
    ) -> list[str]:
        """Recompute the pools of ``rows`` and everything derived; return the ids whose lists changed.

        ``before`` holds every current row's duplicate-group label and representative
        before the update, in the current rows (-1 for a new row or a removed
        representative), so that a group that splits, merges or changes its
        representative reaches the lists that show it.
        """
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        old_rows = self.neighbours_[rows].copy()
        old_sims = self.similarities_[rows].copy()
        if rows.size:
            fresh, sims = top_neighbours(
                self.vectors_,
                self.neighbours_.shape[1],
                copy_labels=copy_labels(self.text_keys_),
                rows=rows,
                n_jobs=self.n_jobs,
                mode=self.mode,
            )
            self.neighbours_[rows] = fresh
            self.similarities_[rows] = sims
        pool_changed = rows[
            (old_rows != self.neighbours_[rows]).any(axis=1) | (old_sims != self.similarities_[rows]).any(axis=1)
        ]
        if self.signatures_ is not None or not self.collapse:
            self.groups_ = self._duplicate_groups()
        self._index()
        old_groups, old_rep = before
        moved = np.union1d(changed, np.flatnonzero((old_rep != self._representative) | (old_groups != self.groups_)))
        result = np.union1d(np.union1d(pool_changed, always), self._sources_listing(moved))
        return self._ids_of(result)

    def drift(self) -> float:
        """Share of the tokens of added or edited articles that the vocabulary lacks.

        0.0 right after fit. Above :data:`DRIFT_REFIT` (0.2) a refit is advised:
        the frozen vocabulary no longer describes what the site publishes.
        """
        self._check_fitted()
        missing, total = (int(x) for x in np.asarray(self.drift_counts_))
        return missing / total if total else 0.0

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike[str]) -> str:
        """Save the fitted model as a new version under directory ``path``.

        The version is written completely, then a pointer file is switched to it
        with an atomic rename, so a reader never sees half a model. The blocklist,
        pins and bans are saved too. Returns the version's name. See
        :func:`recommender.load_model`.
        """
        from ._store import save_model

        self._check_fitted()
        version = save_model(self, path)
        self.path_ = str(path)
        self.version_ = version
        return version

    def precompute(
        self,
        out: str | os.PathLike[str],
        *,
        k: int = 10,
        explain: bool = False,
        client: Any = None,
        workers: int | None = None,
        progress: bool | None = None,
        **controls: Any,
    ) -> Any:
        """Write every article's list to ``out``, part by part, resumably, locally or on Dask.

        The model must have been saved or loaded (``self.path_``): every worker
        memory-maps it from that directory. ``client`` is a
        ``dask.distributed.Client`` (or a scheduler address), ``workers=N`` starts
        a local cluster; neither runs in this process. See
        :func:`recommender._batch.precompute` (returns its ``PrecomputeResult``).
        """
        from ._batch import precompute

        self._check_fitted()
        path = getattr(self, "path_", None)
        if path is None:
            raise ValueError("precompute needs a saved model: call model.save(path) (or use load_model) first.")
        return precompute(
            path, out, k=k, explain=explain, client=client, workers=workers, progress=progress, **controls
        )

    @property
    def n_articles(self) -> int:
        """Number of fitted articles."""
        self._check_fitted()
        return len(self._ids)

    @property
    def article_ids(self) -> list[str]:
        """The fitted article ids in row order (a copy)."""
        self._check_fitted()
        return list(self._ids)


#: Items per article kept by the request-path cache of default lists (see ``Recommender.warm``).
_CACHE_DEPTH = 10
#: Up to this many articles, every pair is judged for copies (not only the pool pairs).
_ALL_PAIRS = 1000
#: Pool positions (most similar first) whose pairs are judged for copies in a larger model.
_COPY_CANDIDATES = 10


@dataclass(frozen=True)
class _ListCache:
    """Every article's list under the model's own controls; arrays of shape (n, depth[, ...])."""

    rows: np.ndarray
    numbers: np.ndarray  # score, similarity, the parts, then the recommended article's popularity
    reasons: np.ndarray
    terms: np.ndarray
    term_values: np.ndarray
    diversity: float


def _rounded(values: np.ndarray) -> np.ndarray:
    """Shared-term contributions as shown: float64, rounded to 6 decimals (the same on every path)."""
    return np.round(np.asarray(values, dtype=np.float64), 6)


class _Stages:
    """Logs how long each step of ``fit`` took (logger ``recommender``, level INFO)."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()

    def done(self, message: str, *args: Any) -> None:
        now = time.perf_counter()
        logger.info("fit: " + message + " in %.1f s (%.1f s so far)", *args, now - self.last, now - self.start)
        self.last = now


def _empty_ranked(k: int) -> Ranked:
    zeros = np.zeros((0, k))
    return Ranked(np.full((0, k), -1), zeros, zeros, zeros, zeros, zeros, zeros)


def _views_mapping(views: Any) -> dict[str, float]:
    if isinstance(views, pd.DataFrame):
        id_column = "article_id" if "article_id" in views.columns else "id"
        if id_column not in views.columns or "views" not in views.columns:
            raise SchemaError(
                f"update_views needs 'article_id' and 'views' columns, got {', '.join(map(str, views.columns))}."
            )
        pairs = zip(views[id_column].astype(str), views["views"], strict=True)
    elif isinstance(views, pd.Series):
        pairs = zip(views.index.astype(str), views.to_numpy(), strict=True)
    elif isinstance(views, Mapping):
        pairs = ((str(k), v) for k, v in views.items())
    else:
        raise TypeError(f"update_views expects a mapping, Series or DataFrame, got {type(views).__name__}.")
    out: dict[str, float] = {}
    for article_id, value in pairs:
        try:
            number = float(str(value).replace(",", "")) if isinstance(value, str) else float(value)
        except (TypeError, ValueError):
            raise ValueError(f"views of {article_id!r} is not a number: {value!r}.") from None
        if not np.isfinite(number) or number < 0:
            raise ValueError(f"views of {article_id!r} must be a finite number >= 0, got {value!r}.")
        out[article_id] = number
    return out


def _signatures_of(table: pd.DataFrame) -> Signatures:
    return signatures(table["title"].tolist(), table["summary"].tolist(), table["body"].tolist())


def _relabel(groups: np.ndarray) -> np.ndarray:
    """Group labels as the smallest row of each group (after rows were removed)."""
    n = groups.shape[0]
    if n == 0:
        return groups.astype(np.int64)
    _, codes = np.unique(groups, return_inverse=True)
    smallest = np.full(int(codes.max()) + 1, n, dtype=np.int64)
    np.minimum.at(smallest, codes, np.arange(n))
    return smallest[codes]


def _restore(
    model: Recommender,
    *,
    articles: pd.DataFrame,
    vocabulary: Vocabulary,
    vectors: sp.csr_matrix,
    neighbours: np.ndarray,
    similarities: np.ndarray,
    prior: np.ndarray,
    text_keys: np.ndarray,
    signatures: Signatures | None,
    groups: np.ndarray,
    reference_date: pd.Timestamp | None,
    popularity_scale: float,
    drift_counts: np.ndarray,
    rejected: list[dict[str, Any]],
    editorial: Mapping[str, Any],
    flagged: Sequence[Mapping[str, Any]] = (),
) -> Recommender:
    """Set fitted state from stored arrays (used by the store module)."""
    model.articles_ = articles
    model.vocabulary_ = vocabulary
    model.vectors_ = vectors
    model.neighbours_ = neighbours
    model.similarities_ = similarities
    model.popularity_ = prior
    model.text_keys_ = text_keys
    model.signatures_ = signatures
    model.groups_ = groups
    model.reference_date_ = reference_date
    model.popularity_scale_ = popularity_scale
    model.drift_counts_ = drift_counts
    model.rejected_ = rejected
    model.flagged_ = [dict(f) for f in flagged]
    model.blocked_ = {str(a) for a in editorial.get("blocked", [])}
    model.pins_ = {str(k): [str(a) for a in v] for k, v in editorial.get("pins", {}).items()}
    model.bans_ = {str(k): {str(a) for a in v} for k, v in editorial.get("bans", {}).items()}
    model._index()
    return model
