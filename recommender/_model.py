"""The model: :class:`Recommender` fits the pipeline and answers list queries.

``fit`` runs validation -> vectorising -> neighbour search -> popularity prior
and keeps, for every article, a pool of its ``pool_size`` most similar
articles. Queries re-rank those pools; they never recompute similarities.

Every list goes through one batch-first core (:meth:`Recommender._lists`):
``recommend`` is a batch of one, ``recommend_frame`` a batch of all.
"""

from __future__ import annotations

import datetime as dt
import logging
import numbers
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator

from ._articles import validate_articles
from ._errors import NotFittedError, SchemaError, UnknownArticleError
from ._neighbours import top_neighbours
from ._ranking import popularity, rank_candidates
from ._text import FIELDS, TextParams, Vocabulary, fit_vocabulary

__all__ = ["DISPLAY_FIELDS", "Recommendation", "Recommender"]

logger = logging.getLogger("recommender")

#: Fields of the recommended article shown on a page, in every list output.
DISPLAY_FIELDS = ("title", "url", "published", "category")

_NAT = np.iinfo(np.int64).min


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
        The ranking score (higher is better), see ``recommender._ranking``.
    similarity : float
        Cosine similarity of the TF-IDF vectors, in [0, 1].
    popularity : float
        The popularity prior of the recommended article, in [0, 1].
    rank : int
        Position in the list, starting at 1.
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


class Recommender(BaseEstimator):
    """Related-article recommender: TF-IDF neighbours re-ranked by a popularity prior.

    Parameters
    ----------
    popularity_weight : float, default 0.1
        How much the popularity prior scales similarity:
        ``score = similarity * (1 + popularity_weight * popularity)``. 0 = content only.
    pool_size : int, default 50
        Candidates kept per article at fit time; lists are re-ranked from this
        pool, so ``k`` can be at most ``pool_size``.
    title_weight, summary_weight, body_weight : float
        Field weights of the term frequencies (see ``recommender._text``).
    min_df : int, default 2
        Drop terms found in fewer articles.
    max_df : float, default 0.5
        Drop terms found in a larger share of articles.
    ngram_range : tuple of int, default (1, 1)
        Word n-gram lengths.
    reference_date : str or Timestamp, optional
        The date at which article ages are measured for the popularity prior;
        default: the newest ``published`` in the corpus. Never the wall clock, so
        the same input always gives the same lists.
    n_jobs : int, optional
        Parallel jobs for the neighbour search (joblib semantics).

    Attributes
    ----------
    articles_ : DataFrame
        The fitted articles' ``article_id``, display fields, ``views`` and ``tags``.
    vocabulary_ : Vocabulary
        Terms and idf weights.
    vectors_ : csr_matrix of shape (n_articles, n_terms)
        Unit-norm TF-IDF vectors.
    neighbours_ : ndarray of shape (n_articles, pool_size), int32
        Candidate rows, most similar first; -1 for empty slots.
    similarities_ : ndarray of shape (n_articles, pool_size), float32
        Their cosine similarities.
    popularity_ : ndarray of shape (n_articles,), float32
        The popularity prior.
    copy_groups_ : ndarray of shape (n_articles,), int32
        Label shared by articles with identical text (-1 when unique).
    reference_date_ : Timestamp or None
        The reference date used (None when no article has a date).
    rejected_ : list of dict
        Rows rejected while reading and fitting (``source, row, article_id, reason``).

    Examples
    --------
    >>> import pandas as pd, recommender as rec
    >>> articles = pd.DataFrame({
    ...     "article_id": ["a", "b", "c", "d"],
    ...     "title": ["Cup final goal", "Late goal wins cup", "Election vote count", "Vote count in election"],
    ...     "body": ["football cup final", "football cup goal", "election ballots vote", "ballots vote count"],
    ... })
    >>> model = rec.Recommender(min_df=1, max_df=1.0).fit(articles)
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
        reference_date: str | pd.Timestamp | None = None,
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
        self.reference_date = reference_date
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ fit

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
        )

    def _check_params(self) -> None:
        weight = self.popularity_weight
        if not isinstance(weight, numbers.Real) or not np.isfinite(weight) or weight < 0:
            raise ValueError(f"popularity_weight must be a finite number >= 0, got {weight!r}.")
        if not isinstance(self.pool_size, numbers.Integral) or self.pool_size < 1:
            raise ValueError(f"pool_size must be an integer >= 1, got {self.pool_size!r}.")

    def fit(self, articles: pd.DataFrame) -> Recommender:
        """Learn vectors, neighbour pools and the popularity prior from articles.

        Parameters
        ----------
        articles : DataFrame
            A table from :func:`recommender.load_articles`, or any DataFrame with an
            ``article_id`` column (or alias) and some text; it is validated the
            same way, and rows rejected here are added to ``rejected_``.

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
        table = validate_articles(articles)
        rejected = list(table.attrs.get("rejected", ()))
        if len(table) == 0:
            reasons = "; ".join(sorted({r["reason"] for r in rejected})[:3]) or "the table is empty"
            raise SchemaError(f"No valid articles to fit: {len(rejected)} rows rejected ({reasons}).")
        if rejected:
            logger.warning("fit: %d rows rejected; see model.rejected_", len(rejected))

        vocabulary, vectors = fit_vocabulary({f: table[f].tolist() for f in FIELDS}, params)
        published_ns = _to_ns(table["published"])
        reference = self._reference(published_ns)
        self.copy_groups_ = _copy_groups(table)
        self.neighbours_, self.similarities_ = top_neighbours(
            vectors, int(self.pool_size), groups=self.copy_groups_, n_jobs=self.n_jobs
        )
        self.popularity_ = popularity(table["views"].to_numpy(np.float64), published_ns, _ns(reference))
        self.vocabulary_ = vocabulary
        self.vectors_ = vectors
        self.reference_date_ = reference
        self.articles_ = table[["article_id", *DISPLAY_FIELDS, "views", "tags"]].reset_index(drop=True)
        self.rejected_ = rejected
        self._index()
        return self

    def _reference(self, published_ns: np.ndarray) -> pd.Timestamp | None:
        if self.reference_date is not None:
            stamp = pd.Timestamp(self.reference_date)
            return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        known = published_ns[published_ns != _NAT]
        return pd.Timestamp(int(known.max()), unit="ns", tz="UTC") if known.size else None

    def _index(self) -> None:
        """Build the lookup structures used on the request path."""
        table = self.articles_
        self._ids: list[str] = table["article_id"].tolist()
        self._row_of = {article_id: row for row, article_id in enumerate(self._ids)}
        self._titles: list[str] = table["title"].tolist()
        self._urls: list[str | None] = table["url"].tolist()
        self._categories: list[str | None] = table["category"].tolist()
        self._published = [None if pd.isna(p) else p.to_pydatetime() for p in table["published"]]

    # ------------------------------------------------------------------ queries

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

    def _lists(
        self, rows: np.ndarray, k: int, exclude: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Batch core: lists for source rows.

        Returns
        -------
        recommended, score, similarity, prior : ndarrays of shape (len(rows), k)
            ``recommended`` is -1 (and the numbers 0) where a list is shorter than k.
        """
        candidates = self.neighbours_[rows]
        sims = self.similarities_[rows]
        excluded = np.isin(candidates, exclude) if exclude is not None and exclude.size else None
        positions, scores = rank_candidates(candidates, sims, self.popularity_, self.popularity_weight, k, excluded)
        present = positions >= 0
        safe = np.where(present, positions, 0)
        recommended = np.where(present, np.take_along_axis(candidates, safe, axis=1), -1)
        similarity = np.where(present, np.take_along_axis(sims, safe, axis=1), 0.0).astype(np.float32)
        prior = np.where(present, self.popularity_[np.where(present, recommended, 0)], 0.0).astype(np.float32)
        return recommended, scores, similarity, prior

    def recommend(self, article_id: str, k: int = 5, *, exclude: Iterable[str] | None = None) -> list[Recommendation]:
        """The "You Might Like" list of one article.

        Parameters
        ----------
        article_id : str
        k : int, default 5
            Maximum list length (1 <= k <= pool_size). Shorter when fewer articles
            share any term with this one.
        exclude : iterable of str, optional
            Article ids to leave out (e.g. already read); unknown ids are ignored.

        Returns
        -------
        list of Recommendation
            Best first; never the article itself or an exact copy of it.

        Raises
        ------
        UnknownArticleError
            ``article_id`` is not in the model.
        """
        self._check_fitted()
        k = self._check_k(k)
        row = self.row_of(article_id)
        recommended, scores, sims, prior = self._lists(np.array([row]), k, self._rows_of(exclude))
        return [
            self._recommendation(int(r), rank, float(s), float(m), float(p))
            for rank, (r, s, m, p) in enumerate(
                zip(recommended[0], scores[0], sims[0], prior[0], strict=False), start=1
            )
            if r >= 0
        ]

    def _recommendation(self, row: int, rank: int, score: float, similarity: float, prior: float) -> Recommendation:
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
        )

    def recommend_frame(
        self,
        k: int = 10,
        *,
        article_ids: Sequence[str] | None = None,
        exclude: Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """Every article's list (or those of ``article_ids``) as one tidy DataFrame.

        Returns
        -------
        DataFrame
            Columns ``article_id, rank, recommended_id, score, similarity,
            popularity, title, url, published, category`` (the last four describe
            the recommended article); one row per list item, lists in article order,
            ranks from 1. The same numbers as :meth:`recommend`.
        """
        self._check_fitted()
        k = self._check_k(k)
        if article_ids is None:
            rows = np.arange(len(self._ids))
        else:
            rows = np.array([self.row_of(a) for a in article_ids], dtype=np.int64)
        recommended, scores, sims, prior = self._lists(rows, k, self._rows_of(exclude))
        return self._frame(rows, recommended, scores, sims, prior)

    def _frame(
        self,
        rows: np.ndarray,
        recommended: np.ndarray,
        scores: np.ndarray,
        sims: np.ndarray,
        prior: np.ndarray,
    ) -> pd.DataFrame:
        k = recommended.shape[1]
        present = recommended >= 0
        source = np.repeat(rows, k).reshape(-1, k)[present]
        target = recommended[present]
        ids = np.asarray(self._ids, dtype=object)
        table = self.articles_
        return pd.DataFrame(
            {
                "article_id": ids[source],
                "rank": np.broadcast_to(np.arange(1, k + 1), recommended.shape)[present].astype(np.int64),
                "recommended_id": ids[target],
                "score": scores[present],
                "similarity": sims[present],
                "popularity": prior[present],
                "title": table["title"].to_numpy(dtype=object)[target],
                "url": table["url"].to_numpy(dtype=object)[target],
                "published": table["published"].to_numpy()[target] if len(target) else table["published"].iloc[:0],
                "category": table["category"].to_numpy(dtype=object)[target],
            }
        )

    def popular(self, k: int = 10, *, exclude: Iterable[str] | None = None) -> list[Recommendation]:
        """The most popular articles (views per day), a fallback list for any page.

        Ordered by popularity, then newest, then input order. Without any view
        counts this is simply the newest articles. ``similarity`` is 0 and
        ``score`` equals ``popularity``.
        """
        self._check_fitted()
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}.")
        published = _to_ns(self.articles_["published"])
        order = np.lexsort((np.arange(len(self._ids)), -published.astype(np.float64), -self.popularity_))
        skip = set(self._rows_of(exclude).tolist())
        chosen = [int(r) for r in order if int(r) not in skip][:k]
        return [
            self._recommendation(r, rank, float(self.popularity_[r]), 0.0, float(self.popularity_[r]))
            for rank, r in enumerate(chosen, start=1)
        ]

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike[str]) -> str:
        """Save the fitted model as a new version under directory ``path``.

        The version is written completely, then a pointer file is switched to it
        with an atomic rename, so a reader never sees half a model. Returns the
        version's name. See :func:`recommender.load_model`.
        """
        from ._store import save_model

        self._check_fitted()
        return save_model(self, path)

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


def _to_ns(published: pd.Series) -> np.ndarray:
    """UTC timestamps -> int64 ns since the epoch, NaT -> int64 min."""
    values = pd.to_datetime(published, utc=True)
    return values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").view(np.int64)


def _ns(stamp: pd.Timestamp | None) -> int:
    return 0 if stamp is None else int(stamp.value)


def _copy_groups(table: pd.DataFrame) -> np.ndarray:
    """Label articles whose normalised title + summary + body are identical."""
    keys = (table["title"] + "\n" + table["summary"] + "\n" + table["body"]).str.lower().str.split().str.join(" ")
    codes, uniques = pd.factorize(keys)
    counts = np.bincount(codes, minlength=len(uniques))
    return np.where(counts[codes] > 1, codes, -1).astype(np.int32)


def _restore(
    model: Recommender,
    *,
    articles: pd.DataFrame,
    vocabulary: Vocabulary,
    vectors: sp.csr_matrix,
    neighbours: np.ndarray,
    similarities: np.ndarray,
    prior: np.ndarray,
    copy_groups: np.ndarray,
    reference_date: pd.Timestamp | None,
    rejected: list[dict[str, Any]],
) -> Recommender:
    """Set fitted state from stored arrays (used by the store module)."""
    model.articles_ = articles
    model.vocabulary_ = vocabulary
    model.vectors_ = vectors
    model.neighbours_ = neighbours
    model.similarities_ = similarities
    model.popularity_ = prior
    model.copy_groups_ = copy_groups
    model.reference_date_ = reference_date
    model.rejected_ = rejected
    model._index()
    return model
