"""The fitted state: one object holding every part of a fitted model, and the fit pipeline that builds it.

``fit`` runs validation -> vectorising -> exact-copy keys and copy signatures
-> neighbour search -> popularity prior -> duplicate groups, and returns a
:class:`FittedState`: the :class:`~recommender._catalogue.Catalogue`, the
:class:`~recommender._index.VectorIndex`, the :class:`~recommender._pools.Pools`,
the :class:`~recommender._editorial.Editorial` state and the fit-time
:class:`Settings`.

A state is never changed. A live update or an editorial action builds the next
state (``evolve``), sharing the parts it does not change, and the model switches
one reference to it: a reader holding the old state keeps a consistent view.
Each state has a ``generation`` (one more than the state it came from) and its
own memo for what the request path derives from it (the cache of default
lists), so nothing cached can outlive the state it was computed from.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ._catalogue import Catalogue, table_of
from ._dates import NAT, stamp_ns, to_ns
from ._duplicates import copy_labels, duplicate_groups, signatures, text_keys
from ._editorial import Editorial
from ._errors import InvalidPart, SchemaError
from ._index import VectorIndex
from ._memo import Memo
from ._neighbours import thread_count
from ._pools import Pools
from ._progress import bar as progress_bar
from ._ranking import popularity, popularity_scale
from ._text import FIELDS, TextParams, Vocabulary, fit_vocabulary

__all__ = [
    "ALL_PAIRS",
    "COPY_CANDIDATES",
    "FittedState",
    "Settings",
    "Stages",
    "assemble_state",
    "fit_state",
    "group_rows",
    "settings_of",
]

logger = logging.getLogger("recommender")

#: Up to this many articles, every pair is judged for copies (not only the pool pairs).
ALL_PAIRS = 1000
#: Pool positions (most similar first) whose pairs are judged for copies in a larger model.
COPY_CANDIDATES = 10


@dataclass(frozen=True)
class Settings:
    """What ``fit`` fixed besides the text parameters: a later ``set_params`` changes them at the next fit only."""

    pool_size: int = 50
    duplicate_threshold: float | None = 0.7
    collapse: bool = True
    fallback_days: float = 30.0
    text_limit: int = 20_000
    mode: str = "exact"


@dataclass(frozen=True, eq=False)
class FittedState:
    """Every part of a fitted model (see the module docstring).

    Attributes
    ----------
    settings : Settings
    catalogue : Catalogue
    index : VectorIndex
    pools : Pools
    editorial : Editorial
    rejected, flagged : tuple of dict
        Rows rejected while reading and fitting; articles kept but reported.
    generation : int
        0 for a fitted or loaded state, one more for each state built from it.
    """

    settings: Settings
    catalogue: Catalogue
    index: VectorIndex
    pools: Pools
    editorial: Editorial
    rejected: tuple[dict[str, Any], ...] = ()
    flagged: tuple[dict[str, Any], ...] = ()
    generation: int = 0
    memo: Memo = field(default_factory=lambda: Memo(keep=1), repr=False)  # the lists under the controls asked last

    def __len__(self) -> int:
        return len(self.catalogue)

    def check(self) -> None:
        """Raise :class:`InvalidPart` unless every part keeps its rules and the parts agree (O(size)).

        What a loaded model passes before anything reads it: the compiled kernels
        then only see arrays inside their bounds.
        """
        n = len(self.catalogue)
        self.catalogue.check()
        self.index.check()
        self.pools.check(n)
        if len(self.index) != n:
            raise InvalidPart("vectors.shape", f"{len(self.index)} rows for {n} articles")
        if self.pools.size != self.settings.pool_size:
            raise InvalidPart("neighbours", f"pools of {self.pools.size}, but pool_size is {self.settings.pool_size}")

    def evolve(self, **changes: Any) -> FittedState:
        """The next state: these parts changed, the others shared, ``generation`` one more, a new memo."""
        return replace(self, generation=self.generation + 1, memo=Memo(keep=1), **changes)

    def memoised(self, key: Any, build: Any) -> Any:
        """``build()``, computed once per state and key (the request path's caches)."""
        return self.memo.once(key, build)

    @property
    def copy_labels(self) -> np.ndarray:
        """Label shared by articles with identical text (-1 when unique), shape (n,)."""
        return copy_labels(np.asarray(self.catalogue.text_keys))


# --------------------------------------------------------------------------- fit


def fit_state(
    articles: pd.DataFrame,
    text: TextParams,
    settings: Settings,
    *,
    reference_date: pd.Timestamp | None,
    n_jobs: int | None,
    progress: bool | None = None,
) -> FittedState:
    """Run the fit pipeline on a validated article table (see the module docstring)."""
    clock = Stages()
    rejected = list(articles.attrs.get("rejected", ()))
    if len(articles) == 0:
        reasons = "; ".join(sorted({r["reason"] for r in rejected})[:3]) or "the table is empty"
        raise SchemaError(f"No valid articles to fit: {len(rejected)} rows rejected ({reasons}).")
    if rejected:
        logger.warning("fit: %d rows rejected; see model.rejected_", len(rejected))
    flagged = list(articles.attrs.get("flagged", ()))
    if flagged:
        logger.warning("fit: %d articles dated in the future (kept); see model.flagged_", len(flagged))
    clock.done("validated %d articles", len(articles))

    fields = {f: articles[f].tolist() for f in FIELDS}
    threads = thread_count(n_jobs)
    # The copy keys and signatures (Python and a one-thread kernel) run beside the vectorising, whose steps
    # after the term count use one core: with two threads or more they cost little wall time.
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="recommender-copies") if threads > 1 else _Inline() as side
    ):
        keys_done = side.submit(text_keys, fields["title"], fields["summary"], fields["body"])
        sigs_done = side.submit(signatures, fields["title"], fields["summary"], fields["body"])
        try:
            with progress_bar(progress, total=1, desc="vectorising", unit="step") as bar:
                vocabulary, vectors = fit_vocabulary(fields, text, n_jobs=threads)
                bar.update(1)
            clock.done("vectorised: %d terms, %d stored values", len(vocabulary), vectors.nnz)
            keys = keys_done.result()
            clock.done("text keys")
            with progress_bar(progress, total=vectors.shape[0], desc="neighbours", unit="article") as bar:
                pools = Pools.build(
                    vectors, settings.pool_size, copy_labels(keys), n_jobs=n_jobs, mode=settings.mode,
                    progress=bar.update,
                )  # fmt: skip
            clock.done("neighbours (%s, pool %d)", settings.mode, settings.pool_size)
            sigs = sigs_done.result()
            clock.done("copy signatures")
        finally:
            sigs_done.cancel()
    state = assemble_state(
        table_of(articles), vocabulary, vectors, pools, keys, sigs, text, settings,
        reference_date=reference_date, rejected=rejected, flagged=flagged, n_jobs=threads,
    )  # fmt: skip
    clock.done("duplicate groups and lookups")
    return state


def assemble_state(
    table: pd.DataFrame,
    vocabulary: Vocabulary,
    vectors: Any,
    pools: Pools,
    keys: np.ndarray,
    sigs: Any,
    text: TextParams,
    settings: Settings,
    *,
    reference_date: pd.Timestamp | None,
    rejected: list[dict[str, Any]],
    flagged: list[dict[str, Any]],
    n_jobs: int = 1,
) -> FittedState:
    """The fitted state from what the pipeline computed (the last steps of ``fit``, here or on a cluster);
    ``n_jobs`` threads compare the copy candidates."""
    published_ns = to_ns(table["published"])
    reference = reference_date if reference_date is not None else _newest_past(published_ns)
    views = table["views"].to_numpy(np.float64)
    scale = popularity_scale(views, published_ns, stamp_ns(reference))
    prior = popularity(views, published_ns, stamp_ns(reference), scale)
    groups = group_rows(keys, sigs, pools, settings, n_jobs)
    catalogue = Catalogue(
        table=table,
        popularity=prior,
        popularity_scale=scale,
        reference_date=reference,
        text_keys=keys,
        signatures=sigs,
        groups=groups,
        fallback_days=float(settings.fallback_days),
    )
    index = VectorIndex(vocabulary, text, vectors, np.zeros(2, dtype=np.int64))
    return FittedState(settings, catalogue, index, pools, Editorial(), tuple(rejected), tuple(flagged))


def _newest_past(published_ns: np.ndarray) -> pd.Timestamp | None:
    """The reference date by default: the newest date up to now (a future date must not age the others)."""
    known = published_ns[published_ns != NAT]
    past = known[known <= pd.Timestamp.now(tz="UTC").value]
    known = past if past.size else known
    return pd.Timestamp(int(known.max()), unit="ns", tz="UTC") if known.size else None


def group_rows(keys: np.ndarray, sigs: Any, pools: Pools, settings: Settings, n_jobs: int = 1) -> np.ndarray:
    """Duplicate groups from the copy rule of ``recommender._duplicates`` (see there), shape (n,).

    The pairs judged: each row with the first :data:`COPY_CANDIDATES` of its
    pool (copies are each other's nearest neighbours; a story with more copies
    than that still forms one group, as the groups check the other pairs while
    they merge), or every pair up to :data:`ALL_PAIRS` articles, since a tiny
    corpus may have too few kept terms for its pools to hold them. (So the
    1,001st article can change a group whose copies the pools do not hold.)
    ``sigs`` may be None only when ``collapse`` is off or the threshold is None.
    """
    n = len(keys)
    if not settings.collapse:
        return np.arange(n, dtype=np.int64)
    threshold = None if settings.duplicate_threshold is None else float(settings.duplicate_threshold)
    if n <= ALL_PAIRS:
        a, b = np.triu_indices(n, 1)
        pairs = np.stack([a, b], axis=1)
    else:
        neighbours = np.asarray(pools.rows)[:, :COPY_CANDIDATES]
        present = neighbours >= 0
        sources = np.broadcast_to(np.arange(n)[:, None], neighbours.shape)[present]
        pairs = np.stack([sources, neighbours[present]], axis=1)
    return duplicate_groups(pairs, np.asarray(keys), sigs, threshold, n_jobs=n_jobs)


class _Inline:
    """An executor that runs each task when it is submitted (one thread asked for: nothing runs beside)."""

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def submit(self, function: Callable[..., Any], *args: Any) -> Future:
        done: Future = Future()
        try:
            done.set_result(function(*args))
        except BaseException as error:  # handed to .result(), as an executor does
            done.set_exception(error)
        return done


class Stages:
    """Logs how long each step of ``fit`` took (logger ``recommender``, level INFO)."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()

    def done(self, message: str, *args: Any) -> None:
        now = time.perf_counter()
        logger.info("fit: " + message + " in %.1f s (%.1f s so far)", *args, now - self.last, now - self.start)
        self.last = now


def settings_of(params: Mapping[str, Any]) -> Settings:
    """The fit-time settings from a model's parameters."""
    return Settings(
        pool_size=int(params["pool_size"]),
        duplicate_threshold=None if params["duplicate_threshold"] is None else float(params["duplicate_threshold"]),
        collapse=bool(params["collapse"]),
        fallback_days=float(params["fallback_days"]),
        text_limit=int(params["text_limit"]),
        mode=str(params["mode"]),
    )
