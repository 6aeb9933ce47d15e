"""The model: :class:`Recommender`, the scikit-learn face of the engine.

It holds the parameters and one reference to a fitted state
(``recommender._state.FittedState``), and each method is a few lines over the
rooms that own the work:

* ``fit`` -> :func:`recommender._state.fit_state` (the pipeline);
* the queries -> ``recommender._lists`` (one batch-first core for every list);
* the live updates and editorial actions -> ``recommender._updates``, which
  build the next state; the model then switches its one reference to it, so a
  reader holding the old state keeps a consistent view;
* ``save``, :func:`load_model` -> ``recommender._store``; ``precompute`` ->
  ``recommender._batch``.
"""

from __future__ import annotations

import logging
import numbers
import os
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator

from . import _lists, _updates
from ._articles import validate_articles
from ._catalogue import DISPLAY_FIELDS
from ._dates import utc_timestamp
from ._duplicates import DEFAULT_THRESHOLD, Signatures
from ._editorial import Carried
from ._errors import ArticleValidationError, NotFittedError
from ._lists import Recommendation
from ._neighbours import thread_count
from ._progress import bar as progress_bar
from ._ranking import CONTROL_NAMES, PART_NAMES, REASONS, Controls
from ._state import FittedState, fit_state, settings_of
from ._text import TextParams, Vocabulary

__all__ = ["DISPLAY_FIELDS", "PART_NAMES", "REASONS", "Recommendation", "Recommender", "load_model"]

logger = logging.getLogger("recommender")

#: Share of out-of-vocabulary tokens in added or edited articles above which a refit is advised.
DRIFT_REFIT = 0.2


#: The longest window in days (about 270 years): any longer does not fit the nanosecond clock of the dates.
_MAX_DAYS = 100_000
#: Guards the creation of each model's writer lock (see ``Recommender._writing``).
_WRITERS = threading.Lock()


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
        articles; ``approx`` clusters the articles (k-means), ranks the
        articles of each one's nearest clusters and those sharing one of its
        rare words by its most weighted words, then scores the best exactly
        (much faster on large corpora, a little recall lost; see
        ``docs/performance.md``).
    n_jobs : int, optional
        Threads for counting terms, the neighbour search, comparing copy candidates and the batches of
        :meth:`recommend_frame` (joblib semantics: -1 = all cores; None = 1). A build on Dask
        (``fit(..., client=)``) runs the first two on the workers (one thread each) and compares the copy
        candidates here, with these threads.

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
    text_keys_ : ndarray of shape (n_articles,), int64
        Keys of the normalised full text (equal keys: exact copies).
    signatures_ : Signatures or None
        The sampled shingle sets copies are judged on (None for a model saved
        in format 1 or 2, before they existed).
    reference_date_ : Timestamp or None
    rejected_ : list of dict
        Rows rejected while reading and fitting (``source, row, article_id, reason``).
    flagged_ : list of dict
        Articles kept but reported, with the same keys: a publication date in the
        future (see :func:`recommender.flagged_frame`).
    drift_counts_ : ndarray of shape (2,), int64
        ``(tokens not in the vocabulary, tokens)`` of the articles added or edited since fit.

    Attributes ending in ``_`` are fitted state: ``fit`` sets them, and live
    updates change them as partial fits do (``add_articles`` and the like). The
    editorial state (:attr:`blocked`, :attr:`pins`, :attr:`bans`) and where the
    model was saved (:attr:`path`, :attr:`version`, :attr:`version_name`) are
    not learned, so they carry no suffix.

    Parameters that shape the fit (the text parameters, ``pool_size``,
    ``duplicate_threshold``, ``collapse``, ``fallback_days``, ``text_limit``,
    ``mode``, ``reference_date``) are frozen in the fitted state: a later
    :meth:`set_params` changes them at the next ``fit``. The ranking controls
    take effect at once.

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
        """The vectoriser parameters of these parameters (validated); a fitted model keeps those of its fit."""
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

    def controls(self, **controls: Any) -> Controls:
        """The ranking controls of this model, with per-call ``controls`` applied."""
        out = Controls(**{name: getattr(self, name) for name in CONTROL_NAMES}).replace(controls)
        state = getattr(self, "_state", None)
        return out if state is None else _lists.checked_controls(state, out)

    def _own_controls(self) -> Controls:
        """:meth:`controls` without overrides, built once per value of the twelve parameters (the request path)."""
        key = tuple(_hashable(getattr(self, name)) for name in CONTROL_NAMES)
        known = self.__dict__.get("_own")
        if known is None or known[0] != key or known[2] is not getattr(self, "_state", None):
            known = self._own = (key, self.controls(), getattr(self, "_state", None))
        return known[1]

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
        days = self.fallback_days
        if not isinstance(days, numbers.Real) or isinstance(days, bool) or not 0 <= days <= _MAX_DAYS:
            raise ValueError(f"fallback_days must be a number of days in [0, {_MAX_DAYS:,}], got {days!r}.")
        if not isinstance(self.text_limit, numbers.Integral) or self.text_limit < 1:
            raise ValueError(f"text_limit must be an integer >= 1, got {self.text_limit!r}.")
        if self.mode not in ("exact", "approx"):
            raise ValueError(f"mode must be 'exact' or 'approx', got {self.mode!r}.")
        utc_timestamp(self.reference_date, "reference_date")

    def set_params(self, **params: Any) -> Recommender:
        """Set parameters (scikit-learn's ``set_params``).

        The ranking controls take effect at once, on the next query. Every other
        parameter (text parameters, ``pool_size``, ``duplicate_threshold``,
        ``collapse``, ``fallback_days``, ``text_limit``, ``mode``,
        ``reference_date``) shapes the fit and takes effect at the next ``fit``: a
        fitted model keeps what it was fitted with.
        """
        return super().set_params(**params)

    # ------------------------------------------------------------------ fit

    def fit(
        self,
        articles: Any,
        *,
        progress: bool | None = None,
        client: Any = None,
        workers: int | None = None,
        block_rows: int | None = None,
        strict: bool = False,
    ) -> Recommender:
        """Learn vectors, neighbour pools, duplicate groups and the popularity prior.

        Parameters
        ----------
        articles : DataFrame, or (with ``client`` or ``workers``) a Dask DataFrame or file paths
            A table from :func:`recommender.load_articles`, or any DataFrame with an
            ``article_id`` column (or alias) and some text; it is validated the
            same way, and rows rejected here are added to ``rejected_``. On Dask,
            file paths (one or a list, any format ``load_articles`` reads) are read
            by the workers and a Dask DataFrame's partitions are computed there.
        progress : bool or None, default None
            Show progress bars on stderr (tqdm); None shows them only when stderr
            is a terminal.
        client : dask.distributed.Client or str, optional
            Build on this Dask cluster (a string is a scheduler address such as
            ``"tcp://host:8786"``): the vectors, the document frequencies and the
            neighbour search run as tasks on the workers, and the fitted model is
            the same, bit for bit, as without ``client``. ``mode="exact"`` only.
            See ``docs/performance.md`` ("The build on Dask") for what each worker
            needs.
        workers : int, optional
            Build on a local Dask cluster of this many single-threaded worker
            processes, started for this call and closed at the end. Not with ``client``.
        block_rows : int, optional
            On Dask: rows per block of the neighbour search (default: at most
            20,000, fewer when that leaves too few tasks for the workers); a task
            holds two blocks. The model does not depend on it.
        strict : bool, default False
            Raise :class:`~recommender.ArticleValidationError` at the first invalid
            row instead of rejecting it.

        Returns
        -------
        self

        Raises
        ------
        ImportError
            ``client`` or ``workers`` was given and Dask is not installed.
        """
        from ._cluster import check_inputs, connected, fit_on_dask

        if client is None and workers is None:
            if block_rows is not None:
                raise ValueError("block_rows= is a setting of the build on Dask: give client= or workers= too.")
            if not isinstance(articles, pd.DataFrame):
                raise TypeError(
                    f"fit() expects a pandas DataFrame, got {type(articles).__name__}; "
                    "read files with recommender.load_articles(path) first (or build on Dask with client=)."
                )
            self._check_params()
            state = fit_state(
                validate_articles(articles, strict=strict),
                self.text_params(),
                settings_of(self.get_params()),
                reference_date=utc_timestamp(self.reference_date, "reference_date"),
                n_jobs=self.n_jobs,
                progress=progress,
            )
        else:
            if client is not None and workers is not None:
                raise ValueError("Give client= (an existing Dask cluster) or workers= (a local one), not both.")
            if workers is not None and (
                isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1
            ):
                raise ValueError(f"workers must be a positive integer, got {workers!r}.")
            self._check_params()
            settings = settings_of(self.get_params())
            check_inputs(articles, settings, block_rows)
            with connected(client, workers) as dask_client:
                state = fit_on_dask(
                    articles,
                    self.text_params(),
                    settings,
                    client=dask_client,
                    reference_date=utc_timestamp(self.reference_date, "reference_date"),
                    block_rows=block_rows,
                    strict=strict,
                    progress=progress,
                    n_jobs=self.n_jobs,
                )
        with self._writing():
            self._adopt(state, saved=None)
            self._origin = "fit"
            self._from_fit = True
        return self

    def _adopt(self, state: FittedState, *, saved: tuple[str, str, str] | None) -> None:
        """Serve ``state`` from now on; ``saved`` is (model directory, version name, digest) when it is on disk."""
        self._state = state
        self._saved = saved
        self._saved_generation = state.generation if saved is not None else None

    def _writing(self) -> threading.RLock:
        """The lock that serialises this model's writers (updates, editorial actions, fit, save).

        Readers never take it: every writer builds the next state and switches one
        reference, so a reader sees the old state or the new one, never a mix.
        """
        lock = self.__dict__.get("_writer")
        if lock is None:
            with _WRITERS:
                lock = self.__dict__.setdefault("_writer", threading.RLock())
        return lock

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_writer", None)  # a lock does not travel; the copy makes its own
        return state

    def editable_copy(self) -> Recommender:
        """A copy to edit and save, sharing this model's fitted state (nothing is copied; edits build new states).

        For a server that serves this model from many threads (``ModelHolder.model``):
        an editorial action on the copy never changes what the original serves, and
        saving the copy links the arrays of the version it was loaded from.
        """
        copy = Recommender(**self.get_params())
        copy._adopt(self._fitted(), saved=self.__dict__.get("_saved"))
        copy._origin = self.__dict__.get("_origin", "loaded")
        copy.__dict__["_from_fit"] = self.__dict__.get("_from_fit", False)
        return copy

    def _with_editorial(self, editorial: Any, *, saved: tuple[str, str, str]) -> Recommender:
        """A copy serving this model's arrays with another editorial state (a version that differs only in it).

        Its list cache is this model's with only the lists the change can reach ranked again (the sources
        of changed pins and bans, the lists holding a blocked or unblocked story, the lists with a fallback).
        """
        state = self._fitted()
        before = state.editorial
        flipped = sorted(before.blocked ^ editorial.blocked)
        nxt, changed = _updates.edit_blocks(state, editorial, flipped)
        sources = {
            source
            for source in set(before.pins) | set(editorial.pins) | set(before.bans) | set(editorial.bans)
            if before.pins.get(source) != editorial.pins.get(source)
            or before.bans.get(source) != editorial.bans.get(source)
        }
        pinned_flipped = {s for s, pins in editorial.pins.items() if set(pins) & set(flipped)}
        catalogue = nxt.catalogue
        rows = catalogue.rows_of([i for i in {*changed, *sources, *pinned_flipped} if catalogue.has(i)])
        _lists.carry_cache(state, nxt, self._own_controls(), rows)
        copy = Recommender(**self.get_params())
        copy._adopt(nxt, saved=saved)
        copy._origin = "loaded"
        return copy

    def _fitted(self) -> FittedState:
        state = getattr(self, "_state", None)
        if state is None:
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet: call fit(articles) or load a saved model "
                "with recommender.load_model(path) first."
            )
        return state

    def _check_fitted(self) -> None:
        self._fitted()

    def __sklearn_is_fitted__(self) -> bool:
        return getattr(self, "_state", None) is not None

    # ------------------------------------------------------------------ fitted attributes

    @property
    def articles_(self) -> pd.DataFrame:
        """``article_id``, display fields, ``views`` and ``tags`` of every article."""
        return self._fitted().catalogue.table

    @property
    def vocabulary_(self) -> Vocabulary:
        return self._fitted().index.vocabulary

    @property
    def vectors_(self) -> sp.csr_matrix:
        return self._fitted().index.vectors

    @property
    def neighbours_(self) -> np.ndarray:
        return self._fitted().pools.rows

    @property
    def similarities_(self) -> np.ndarray:
        return self._fitted().pools.similarities

    @property
    def popularity_(self) -> np.ndarray:
        return self._fitted().catalogue.popularity

    @property
    def popularity_scale_(self) -> float:
        return self._fitted().catalogue.popularity_scale

    @property
    def reference_date_(self) -> pd.Timestamp | None:
        return self._fitted().catalogue.reference_date

    @property
    def groups_(self) -> np.ndarray:
        return self._fitted().catalogue.groups

    @property
    def text_keys_(self) -> np.ndarray:
        return self._fitted().catalogue.text_keys

    @property
    def signatures_(self) -> Signatures | None:
        return self._fitted().catalogue.signatures

    @property
    def copy_groups_(self) -> np.ndarray:
        """Label shared by articles with identical text (-1 when unique), shape (n_articles,)."""
        return self._fitted().copy_labels

    @property
    def rejected_(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._fitted().rejected]

    @property
    def flagged_(self) -> list[dict[str, Any]]:
        return [dict(f) for f in self._fitted().flagged]

    @property
    def drift_counts_(self) -> np.ndarray:
        return self._fitted().index.drift_counts

    @property
    def n_articles(self) -> int:
        """Number of fitted articles."""
        return len(self._fitted())

    @property
    def article_ids(self) -> list[str]:
        """The fitted article ids in row order (a copy)."""
        return list(self._fitted().catalogue.ids)

    def row_of(self, article_id: str) -> int:
        """Internal row of an article_id; raises UnknownArticleError."""
        return self._fitted().catalogue.row_of(article_id)

    # ------------------------------------------------------------------ editorial state and where it is saved

    @property
    def blocked(self) -> set[str]:
        """Ids kept out of every list (a copy; change it with :meth:`block` and :meth:`unblock`)."""
        return set(self._fitted().editorial.blocked)

    @property
    def pins(self) -> dict[str, list[str]]:
        """Pinned ids by source id (a copy; change it with :meth:`pin`)."""
        return {k: list(v) for k, v in self._fitted().editorial.pins.items()}

    @property
    def bans(self) -> dict[str, set[str]]:
        """Banned ids by source id (a copy; change it with :meth:`ban` and :meth:`unban`)."""
        return {k: set(v) for k, v in self._fitted().editorial.bans.items()}

    @property
    def path(self) -> str | None:
        """The model directory this model was saved to or loaded from (None when it never was)."""
        saved = getattr(self, "_saved", None)
        return None if saved is None else saved[0]

    @property
    def version_name(self) -> str | None:
        """The folder name of the saved version (``version-000003``), None when never saved."""
        saved = getattr(self, "_saved", None)
        return None if saved is None else saved[1]

    @property
    def version(self) -> str | None:
        """The identity of the saved version: the SHA-256 of its manifest (as ``Answer.version``), or None."""
        saved = getattr(self, "_saved", None)
        return None if saved is None else saved[2]

    @property
    def unsaved_changes(self) -> bool:
        """True when the model changed (updates, editorial actions) since it was saved or loaded, or never was."""
        state = self._fitted()
        return getattr(self, "_saved_generation", None) != state.generation

    @property
    def carried(self) -> Carried | None:
        """What the last :meth:`save` of a freshly fitted model took over from the version it replaced, or None."""
        return getattr(self, "_carried", None)

    blocked_ = property(lambda self: _deprecated(self, "blocked_", "blocked"))
    pins_ = property(lambda self: _deprecated(self, "pins_", "pins"))
    bans_ = property(lambda self: _deprecated(self, "bans_", "bans"))
    path_ = property(lambda self: _deprecated(self, "path_", "path"))
    version_ = property(lambda self: _deprecated(self, "version_", "version_name"))

    # ------------------------------------------------------------------ queries

    def _check_k(self, k: Any) -> int:
        return _lists.checked_k(self._fitted(), k)

    def recommend(
        self,
        article_id: str,
        k: int = 5,
        *,
        exclude: Iterable[str] | None = None,
        explain: bool = True,
        **controls: Any,
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
        **controls
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
        state = self._fitted()
        k = self._check_k(k)
        row = state.catalogue.row_of(article_id)
        own = self._own_controls() if not controls else self.controls(**controls)
        if not controls:  # the model's own controls: the request-path cache
            cached = _lists.cached_items(state, own, row, k, exclude, explain)
            if cached is not None:
                return cached
        rows = np.array([row])
        ranked, reasons = _lists.rows_lists(state, rows, k, own, exclude)
        return _lists.items(state, ranked, reasons, state.index.vectors[rows], explain)[0]

    def recommend_for_text(
        self,
        title: str = "",
        summary: str = "",
        body: str = "",
        *,
        published: str | pd.Timestamp | Any = None,
        category: str | None = None,
        tags: Sequence[str] | str = (),
        k: int = 5,
        exclude: Iterable[str] | None = None,
        explain: bool = True,
        **controls: Any,
    ) -> list[Recommendation]:
        """The list for a text that is not in the model (a draft, a new article).

        Uses the fitted vocabulary and the same ranking controls as
        :meth:`recommend`. Each field is cut to ``text_limit`` characters (20,000 by
        default, as fitted) so a huge input cannot stall a web request. An article
        of the model that is a copy of the text (exactly, or by the copy rule of
        ``duplicate_threshold``) is never recommended. No text at all (every field
        empty or blank) raises ``ValueError``.
        """
        state = self._fitted()
        k = self._check_k(k)
        if not any(isinstance(v, str) and v.strip() for v in (title, summary, body)):
            raise ValueError("recommend_for_text needs some text: give a title, a summary or a body.")
        ranked, reasons, query = _lists.text_lists(
            state,
            (title, summary, body),
            published=published,
            category=category,
            tags=tags,
            k=k,
            controls=self.controls(**controls),
            exclude=exclude,
        )
        return _lists.items(state, ranked, reasons, query, explain)[0]

    def recommend_frame(
        self,
        k: int = 10,
        *,
        article_ids: Sequence[str] | None = None,
        exclude: Iterable[str] | None = None,
        explain: bool = False,
        batch_size: int = 4096,
        progress: bool | None = None,
        **controls: Any,
    ) -> pd.DataFrame:
        """Every article's list (or those of ``article_ids``) as one tidy DataFrame.

        Returns
        -------
        DataFrame
            Columns ``article_id, rank, recommended_id, score, similarity,
            popularity, title, url, published, category, reason`` (``article_id``
            is the source article; ``title`` to ``category`` describe the
            recommended one), plus ``popularity_part, freshness_part, boost_part,
            diversity_part, shared_terms`` when ``explain=True`` (``shared_terms``
            as ``"term=0.0123; ..."``). ``progress`` shows a progress bar (None:
            only on a terminal). One row per list item, lists in article order,
            ranks from 1. The same lists as :meth:`recommend` with the same controls.
        """
        state = self._fitted()
        k = self._check_k(k)
        own = self.controls(**controls)
        if article_ids is None:
            rows = np.arange(len(state))
        else:
            rows = np.array([state.catalogue.row_of(a) for a in article_ids], dtype=np.int64)
        exclude = None if exclude is None else list(exclude)  # read by every batch

        def batch(start: int) -> tuple[int, pd.DataFrame]:
            chunk = rows[start : start + batch_size]
            ranked, reasons = _lists.rows_lists(state, chunk, k, own, exclude)
            return len(chunk), _lists.frame(state, chunk, ranked, reasons, explain)

        starts = range(0, len(rows), batch_size)
        threads = min(thread_count(self.n_jobs), len(starts))
        frames = []
        with (
            progress_bar(progress, total=len(rows), desc="lists", unit="article") as bar,
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="recommender-lists")
            if threads > 1
            else nullcontext() as pool,
        ):
            for done, part in pool.map(batch, starts) if pool is not None else map(batch, starts):  # in order
                frames.append(part)
                bar.update(done)
        if not frames:
            return _lists.frame(state, rows, _lists.empty_ranked(k), np.empty((0, k), dtype=np.int64), explain)
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

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
        state = self._fitted()
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}.")
        return _lists.popular(state, int(k), category=category, exclude=exclude)

    def warm(self) -> Recommender:
        """Compute the request-path cache now instead of on the first ``recommend``; returns self.

        The cache holds every article's list under the model's own controls
        (the first ``CACHE_DEPTH`` items, with their explanations), so that
        ``recommend`` with those controls is a lookup. It belongs to the fitted
        state: any change to the model builds a new state, with a new cache.
        """
        _lists.warm(self._fitted(), self._own_controls())
        return self

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
        return self._fitted().catalogue.duplicate_report()

    # ------------------------------------------------------------------ editorial controls

    def block(self, article_ids: Iterable[str]) -> list[str]:
        """Keep articles out of every list (unpublished, retracted) until unblocked.

        Unknown ids are recorded too, so an article blocked before it is added
        stays blocked. Saved with the model, and carried over by a rebuild. Returns
        the ids whose lists changed.
        """
        with self._writing():
            ids = [article_ids] if isinstance(article_ids, str) else list(article_ids)
            state = self._fitted()
            self._state, changed = _updates.edit_blocks(state, state.editorial.block(ids), ids)
            return changed

    def unblock(self, article_ids: Iterable[str]) -> list[str]:
        """Allow blocked articles again. Returns the ids whose lists changed."""
        with self._writing():
            ids = [article_ids] if isinstance(article_ids, str) else list(article_ids)
            state = self._fitted()
            self._state, changed = _updates.edit_blocks(state, state.editorial.unblock(ids), ids)
            return changed

    def pin(self, source_id: str, recommended_ids: Sequence[str]) -> list[str]:
        """Put chosen articles, in this order, at the top of one article's list.

        Replaces earlier pins of ``source_id``; an empty sequence removes them.
        Pinned articles still never include the source, or an excluded, blocked
        or banned article. Saved with the model. Returns ``[source_id]``.
        """
        with self._writing():
            state = self._fitted()
            state.catalogue.row_of(source_id)
            ids = [recommended_ids] if isinstance(recommended_ids, str) else list(recommended_ids)
            for article_id in ids:
                state.catalogue.row_of(article_id)
            self._state, changed = _updates.edit_list(state, state.editorial.pin(source_id, ids), source_id)
            return changed

    def ban(self, source_id: str, recommended_id: str) -> list[str]:
        """Never show ``recommended_id`` (or its duplicates) in ``source_id``'s list. Returns ``[source_id]``."""
        with self._writing():
            state = self._fitted()
            state.catalogue.row_of(source_id)
            state.catalogue.row_of(recommended_id)
            self._state, changed = _updates.edit_list(state, state.editorial.ban(source_id, recommended_id), source_id)
            return changed

    def unban(self, source_id: str, recommended_id: str) -> list[str]:
        """Undo :meth:`ban`. Returns ``[source_id]``."""
        with self._writing():
            state = self._fitted()
            self._state, changed = _updates.edit_list(
                state, state.editorial.unban(source_id, recommended_id), source_id
            )
            return changed

    # ------------------------------------------------------------------ live updates

    def _prepare_new(self, articles: pd.DataFrame) -> pd.DataFrame:
        if not isinstance(articles, pd.DataFrame):
            raise TypeError(f"expected a pandas DataFrame of articles, got {type(articles).__name__}.")
        table = validate_articles(articles, strict=True)
        if len(table) == 0:
            raise ArticleValidationError("No articles given.")
        return table

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
        with self._writing():
            state = self._fitted()
            _updates.need_signatures(state, "add_articles")  # before reading the rows: a clear error first
            self._state, changed = _updates.add(state, self._prepare_new(articles), n_jobs=self.n_jobs)
            return changed

    def update_articles(self, articles: pd.DataFrame) -> list[str]:
        """Replace edited articles (text, date, views, category, ...) without a refit.

        Every id must already be in the model. Returns the ids whose lists changed.
        """
        with self._writing():
            state = self._fitted()
            _updates.need_signatures(state, "update_articles")
            self._state, changed = _updates.update(state, self._prepare_new(articles), n_jobs=self.n_jobs)
            return changed

    def remove_articles(self, article_ids: Iterable[str]) -> list[str]:
        """Take articles out of the model and out of every list.

        Returns the ids whose lists changed, including the removed ids (their
        lists are gone).
        """
        with self._writing():
            self._state, changed = _updates.remove(self._fitted(), article_ids, n_jobs=self.n_jobs)
            return changed

    def update_views(self, views: Mapping[str, float] | pd.DataFrame | pd.Series) -> list[str]:
        """Refresh view counts (they change hourly); the popularity scale stays frozen.

        ``views`` maps article_id to the new count: a dict, a Series indexed by
        id, or a DataFrame with ``article_id`` (or ``id``) and ``views`` columns.
        Unknown ids raise :class:`UnknownArticleError`; invalid counts raise
        ``ValueError``. Returns the ids whose lists changed.
        """
        with self._writing():
            state = self._fitted()
            mapping = _updates.views_mapping(views)
            for article_id in mapping:
                state.catalogue.row_of(article_id)
            self._state, changed = _updates.set_views(state, mapping)
            return changed

    def drift(self) -> float:
        """Share of the tokens of added or edited articles that the vocabulary lacks.

        0.0 right after fit. Above :data:`DRIFT_REFIT` (0.2) a refit is advised:
        the frozen vocabulary no longer describes what the site publishes.
        """
        missing, total = (int(x) for x in np.asarray(self.drift_counts_))
        return missing / total if total else 0.0

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike[str], *, carry_editorial: bool | None = None) -> str:
        """Save the fitted model as a new version under directory ``path``.

        The version is written completely, then a pointer file is switched to it
        with an atomic rename, so a reader never sees half a model. The blocklist,
        pins and bans are saved too.

        A freshly fitted model saved into a directory that already has a version
        takes over that version's editorial state (read under the directory's
        save lock, at the moment the new version is published, so that a pin made
        while a long build ran is not lost), with its own edits on top; see
        :attr:`carried`. A loaded model saves exactly its own state.
        ``carry_editorial=False`` saves a fitted model without carrying anything
        over (``recommender build --reset-editorial``); True carries for a loaded
        model too.

        Returns the version's name. See :func:`recommender.load_model`.
        """
        with self._writing():
            from ._store import save_state

            state = self._fitted()
            carry = getattr(self, "_origin", "loaded") == "fit" if carry_editorial is None else bool(carry_editorial)
            built = bool(self.__dict__.get("_from_fit"))  # fitted here (a full build), not loaded
            saved = save_state(state, self.get_params(), path, carry_editorial=carry, build=built)
            if saved.state is not state:
                self._state = saved.state  # the carried-over editorial state, now the model's own
            self._adopt(self._state, saved=(str(path), saved.name, saved.digest))
            self._origin = "saved"
            self._carried = saved.carried
            if saved.carried is not None:
                logger.info("save: %s", saved.carried.summary())
            return saved.name

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

        Every worker memory-maps the saved version this model was saved to or
        loaded from, so the model must have no unsaved changes: after an update
        or an editorial action, call :meth:`save` first (otherwise this raises
        ``ValueError`` rather than write lists that miss the changes).
        ``client`` is a ``dask.distributed.Client`` (or a scheduler address),
        ``workers=N`` starts a local cluster; neither runs in this process. See
        :func:`recommender._batch.precompute` (returns its ``PrecomputeResult``).
        """
        from ._batch import precompute

        self._fitted()
        if self.path is None:
            raise ValueError("precompute needs a saved model: call model.save(path) (or use load_model) first.")
        if self.unsaved_changes:
            raise ValueError(
                f"precompute reads the saved version {self.version_name} in '{self.path}', and this model has "
                "changed since (updates or editorial actions): call model.save(path) first, so that the lists "
                "hold the changes."
            )
        return precompute(
            self._saved[0], out, k=k, explain=explain, client=client, workers=workers, progress=progress, **controls
        )


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _deprecated(model: Recommender, old: str, new: str) -> Any:
    warnings.warn(
        f"Recommender.{old} is deprecated and will be removed in the next release; use Recommender.{new}.",
        DeprecationWarning,
        stacklevel=3,
    )
    return getattr(model, new)


def load_model(path: str | os.PathLike[str], *, verify: bool = True, newest_valid: bool = False) -> Recommender:
    """Load the current version of a model directory written by :meth:`Recommender.save`.

    Parameters
    ----------
    path : path-like
        The model directory (or one version folder inside it).
    verify : bool, default True
        Check the SHA-256 of every file against the manifest.
    newest_valid : bool, default False
        When the current version does not load (corrupt, incomplete), log a
        warning naming it and load the newest complete version that does
        (``recommender rollback`` makes that choice permanent). False: raise.

    Returns
    -------
    Recommender
        A fitted model whose arrays are memory-mapped read-only.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ModelFormatError
        The directory is not a model, is of a newer format, or a file is missing,
        truncated or altered.
    """
    from ._errors import ModelFormatError
    from ._store import read_model

    try:
        loaded = read_model(path, verify=verify)
    except ModelFormatError as exc:
        if not newest_valid:
            raise
        from ._store import newest_valid_version

        folder = newest_valid_version(path)
        logger.warning("load_model: the current version of %s does not load (%s); serving %s", path, exc, folder.name)
        loaded = read_model(folder, verify=verify)
    model = Recommender()
    try:
        model.set_params(**loaded.params)
        model._check_params()
    except (TypeError, ValueError) as exc:
        raise ModelFormatError(
            f"Model file '{loaded.version_dir / 'manifest.json'}' has unusable parameters: {exc}"
        ) from None
    model._adopt(loaded.state, saved=(str(path), loaded.name, loaded.digest))
    try:
        model.controls()  # the stored ranking controls must fit the stored articles (categories...)
    except (TypeError, ValueError) as exc:
        raise ModelFormatError(
            f"Model file '{loaded.version_dir / 'manifest.json'}' has unusable parameters: {exc}"
        ) from None
    model._origin = "loaded"
    return model
