"""Live updates and editorial actions: each builds the next fitted state and says whose lists changed.

The vocabulary, idf, latent components, reference date and popularity scale
stay frozen. After any sequence of updates the pools equal those computed from
scratch over the current articles with the frozen vocabulary, and the groups
those of the copy rule over the current articles. Every function here is
``(state, change) -> (next state, ids whose lists changed)``; none changes the
state it is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._catalogue import Catalogue, replaced_rows, table_of
from ._dates import stamp_ns, to_ns
from ._duplicates import Signatures, copy_labels, signatures, text_keys
from ._editorial import Editorial
from ._errors import ArticleValidationError, ModelFormatError, SchemaError
from ._index import replaced_vectors
from ._ranking import popularity
from ._state import FittedState, group_rows
from ._text import FIELDS

__all__ = [
    "add",
    "edit_blocks",
    "edit_list",
    "need_signatures",
    "relabelled",
    "remove",
    "set_views",
    "update",
    "views_mapping",
]


def add(state: FittedState, articles: pd.DataFrame, *, n_jobs: int | None) -> tuple[FittedState, list[str]]:
    """Add validated new articles: they get lists, and enter the pools where they now belong."""
    need_signatures(state, "add_articles")
    catalogue = state.catalogue
    known = [a for a in articles["article_id"] if catalogue.has(a)]
    if known:
        raise ArticleValidationError(
            f"add_articles: {len(known)} article_id(s) already in the model (first: {known[0]!r}); "
            "use update_articles() for edits."
        )
    fields = {f: articles[f].tolist() for f in FIELDS}
    new_vectors = state.index.vectorise(fields)
    n_old, count = len(state), len(articles)
    index = state.index.with_vectors(
        sp.vstack([state.index.vectors, new_vectors], format="csr"), state.index.drift_of(fields)
    )
    published_ns = to_ns(articles["published"])
    prior = popularity(
        articles["views"].to_numpy(np.float64),
        published_ns,
        stamp_ns(catalogue.reference_date),
        catalogue.popularity_scale,
    )
    unseen = np.full(count, -1, dtype=np.int64)
    before = (np.concatenate([catalogue.groups, unseen]), np.concatenate([catalogue.representative, unseen]))
    table = pd.concat([catalogue.table, table_of(articles)], ignore_index=True)
    keys = np.concatenate([catalogue.text_keys, text_keys(articles["title"], articles["summary"], articles["body"])])
    sigs = catalogue.signatures.concat(_signatures_of(articles))
    new_rows = np.arange(n_old, n_old + count)
    pools = state.pools.extended(count)
    affected = np.union1d(new_rows, pools.qualifying(index.vectors, new_rows))
    draft = catalogue.evolve(
        table=table,
        popularity=np.concatenate([catalogue.popularity, prior]),
        text_keys=keys,
        signatures=sigs,
        groups=np.concatenate([catalogue.groups, new_rows]),
    )
    flagged = _reflagged(state.flagged, articles)
    return _refresh(state, draft, index, pools, affected, changed=new_rows, always=new_rows, before=before, flagged=flagged, n_jobs=n_jobs)  # fmt: skip


def update(state: FittedState, articles: pd.DataFrame, *, n_jobs: int | None) -> tuple[FittedState, list[str]]:
    """Replace edited articles (text, date, views, category, ...); every id must be in the model."""
    need_signatures(state, "update_articles")
    catalogue = state.catalogue
    rows = np.array([catalogue.row_of(a) for a in articles["article_id"]], dtype=np.int64)
    fields = {f: articles[f].tolist() for f in FIELDS}
    new_vectors = state.index.vectorise(fields)
    holders = state.pools.holding(catalogue.members(rows))
    vectors = replaced_vectors(state.index.vectors, rows, new_vectors)
    index = state.index.with_vectors(vectors, state.index.drift_of(fields))
    prior = np.array(catalogue.popularity)
    prior[rows] = popularity(
        articles["views"].to_numpy(np.float64),
        to_ns(articles["published"]),
        stamp_ns(catalogue.reference_date),
        catalogue.popularity_scale,
    )
    keys = np.array(catalogue.text_keys)
    keys[rows] = text_keys(articles["title"], articles["summary"], articles["body"])
    before = (np.asarray(catalogue.groups), catalogue.representative)
    draft = catalogue.evolve(
        table=replaced_rows(catalogue.table, rows, articles),
        popularity=prior,
        text_keys=keys,
        signatures=catalogue.signatures.replace(rows, _signatures_of(articles)),
    )
    affected = np.union1d(np.union1d(rows, holders), state.pools.qualifying(index.vectors, rows))
    flagged = _reflagged(state.flagged, articles)
    return _refresh(
        state, draft, index, state.pools, affected, changed=rows, always=np.union1d(rows, holders), before=before,
        flagged=flagged, n_jobs=n_jobs,
    )  # fmt: skip


def remove(state: FittedState, article_ids: Iterable[str], *, n_jobs: int | None) -> tuple[FittedState, list[str]]:
    """Take articles out of the model and of every list; the ids changed include the removed ones."""
    catalogue = state.catalogue
    ids = [article_ids] if isinstance(article_ids, str) else list(article_ids)
    rows = np.unique([catalogue.row_of(a) for a in ids]).astype(np.int64)
    if rows.size == len(state):
        raise ValueError("remove_articles would remove every article; fit a new model instead.")
    holders = state.pools.holding(catalogue.members(rows))
    keep = np.ones(len(state), dtype=bool)
    keep[rows] = False
    new_row = np.cumsum(keep) - 1
    new_row[~keep] = -1
    shown = catalogue.representative
    shown = np.where(shown >= 0, new_row[np.where(shown >= 0, shown, 0)], -1)[keep]  # -1: it was removed
    groups = relabelled(np.asarray(catalogue.groups)[keep])  # recomputed in _refresh when signatures exist
    draft = catalogue.evolve(
        table=catalogue.table[keep].reset_index(drop=True),
        popularity=np.asarray(catalogue.popularity)[keep],
        text_keys=np.asarray(catalogue.text_keys)[keep],
        signatures=None if catalogue.signatures is None else catalogue.signatures.take(np.flatnonzero(keep)),
        groups=groups,
    )
    index = state.index.with_vectors(state.index.vectors[keep])
    gone = set(ids)
    flagged = tuple(f for f in state.flagged if f.get("article_id") not in gone)
    affected = new_row[holders[keep[holders]]]
    nxt, changed = _refresh(
        state, draft, index, state.pools.taken(keep), affected, changed=np.empty(0, np.int64), always=affected,
        before=(groups.copy(), shown), flagged=flagged, n_jobs=n_jobs,
    )  # fmt: skip
    return nxt, sorted(set(changed) | gone)


def set_views(state: FittedState, views: Mapping[str, float]) -> tuple[FittedState, list[str]]:
    """New view counts (validated numbers by id); the popularity scale stays frozen."""
    catalogue = state.catalogue
    rows = np.array([catalogue.row_of(a) for a in views], dtype=np.int64)
    values = np.array(list(views.values()), dtype=np.float64)
    prior = np.array(catalogue.popularity)
    prior[rows] = popularity(
        values, catalogue.published_ns[rows], stamp_ns(catalogue.reference_date), catalogue.popularity_scale
    )
    draft = catalogue.with_views(rows, values, prior)
    return _shown_changed(state, state.evolve(catalogue=draft), rows)


def edit_blocks(state: FittedState, editorial: Editorial, article_ids: Iterable[str]) -> tuple[FittedState, list[str]]:
    """A new blocklist; the lists that hold ``article_ids`` (or a story whose shown member changed) change."""
    catalogue = state.catalogue
    nxt = state.evolve(editorial=editorial, catalogue=catalogue.with_blocked(editorial.blocked))
    return _shown_changed(state, nxt, catalogue.rows_of(list(article_ids)))


def edit_list(state: FittedState, editorial: Editorial, source_id: str) -> tuple[FittedState, list[str]]:
    """New pins or bans of one source: only that source's list changes."""
    return state.evolve(editorial=editorial), [source_id]


def views_mapping(views: Any) -> dict[str, float]:
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


# --------------------------------------------------------------------------- helpers


def _shown_changed(old: FittedState, new: FittedState, rows: np.ndarray) -> tuple[FittedState, list[str]]:
    """Lists change where they hold ``rows`` or a group whose representative changed."""
    moved = np.flatnonzero(old.catalogue.representative != new.catalogue.representative)
    changed = np.union1d(rows, moved)
    holders = new.pools.holding(new.catalogue.members(changed))
    return new, new.catalogue.ids_of(holders)


def _refresh(
    state: FittedState,
    draft: Catalogue,
    index: Any,
    pools: Any,
    rows: np.ndarray,
    *,
    changed: np.ndarray,
    always: np.ndarray,
    before: tuple[np.ndarray, np.ndarray],
    flagged: tuple[dict[str, Any], ...],
    n_jobs: int | None,
) -> tuple[FittedState, list[str]]:
    """Search the pools of ``rows`` again, regroup, and return the next state and the ids whose lists changed.

    ``before`` holds every current row's group label and representative before
    the update, in the current rows (-1 for a new row or a removed
    representative), so that a group that splits, merges or changes its
    representative reaches the lists that show it.
    """
    settings = state.settings
    pools, pool_changed = pools.refreshed(
        index.vectors, rows, copy_labels(np.asarray(draft.text_keys)), n_jobs=n_jobs, mode=settings.mode
    )
    if draft.signatures is not None or not settings.collapse:
        draft = draft.evolve(groups=group_rows(draft.text_keys, draft.signatures, pools, settings))
    old_groups, old_rep = before
    moved = np.union1d(changed, np.flatnonzero((old_rep != draft.representative) | (old_groups != draft.groups)))
    nxt = state.evolve(catalogue=draft, index=index, pools=pools, flagged=flagged)
    result = np.union1d(np.union1d(pool_changed, always), pools.holding(draft.members(moved)))
    return nxt, draft.ids_of(result)


def relabelled(groups: np.ndarray) -> np.ndarray:
    """Group labels as the smallest row of each group (after rows were removed)."""
    n = groups.shape[0]
    if n == 0:
        return groups.astype(np.int64)
    _, codes = np.unique(groups, return_inverse=True)
    smallest = np.full(int(codes.max()) + 1, n, dtype=np.int64)
    np.minimum.at(smallest, codes, np.arange(n))
    return smallest[codes]


def _signatures_of(articles: pd.DataFrame) -> Signatures:
    return signatures(articles["title"].tolist(), articles["summary"].tolist(), articles["body"].tolist())


def _reflagged(flagged: tuple[dict[str, Any], ...], articles: pd.DataFrame) -> tuple[dict[str, Any], ...]:
    """The flags of the articles of a validated table of new or edited articles replace theirs."""
    ids = set(articles["article_id"])
    return tuple(f for f in flagged if f.get("article_id") not in ids) + tuple(
        dict(f) for f in articles.attrs.get("flagged", ())
    )


def need_signatures(state: FittedState, method: str) -> None:
    if state.catalogue.signatures is None:
        raise ModelFormatError(
            f"{method}: this model was saved in model format 1 or 2, before copy signatures, so new or edited "
            "articles cannot be judged for copies like the rest: rebuild it with this version "
            "(`recommender build` or Recommender().fit) to add or edit articles. Its lists, blocks, pins, bans, "
            "view updates and removals still work."
        )
