"""The catalogue: everything known about each article besides its words.

Ids and display fields, dates, categories, tags, views and the popularity
prior, the exact-copy keys and copy signatures, the duplicate groups and, given
the editorial blocklist, the member each group shows (its representative) and
the order of the popular fallback. A :class:`Catalogue` is never changed: a live
update or an editorial action builds the next one, sharing what did not change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._dates import DAY_NS, NAT, stamp_ns, to_ns
from ._duplicates import Signatures, compare, representatives
from ._errors import InvalidPart, UnknownArticleError

__all__ = ["DISPLAY_FIELDS", "TABLE_COLUMNS", "Catalogue", "replaced_rows", "table_of"]

#: Fields of a recommended article shown on a page, in every list output.
DISPLAY_FIELDS = ("title", "url", "published", "category")
#: The columns of :attr:`Catalogue.table`.
TABLE_COLUMNS = ("article_id", *DISPLAY_FIELDS, "views", "tags")


@dataclass(frozen=True, eq=False)
class Catalogue:
    """The articles of a fitted model, in row order (arrays of length n).

    Attributes
    ----------
    table : DataFrame
        ``article_id, title, url, published, category, views, tags`` (read-only by convention).
    popularity : ndarray of shape (n,), float32
        The popularity prior (see ``recommender._ranking``).
    popularity_scale : float
        The frozen scale of the prior.
    reference_date : Timestamp or None
        The date at which ages are measured.
    text_keys : ndarray of shape (n,), int64
        Keys of the normalised full text: equal keys are exact copies.
    signatures : Signatures or None
        The sampled shingle sets copies are judged on (None for a model of format 1 or 2).
    groups : ndarray of shape (n,), int64
        Duplicate-group label of each article (the smallest row of its group).
    blocked : frozenset of str
        Blocked article ids (the editorial blocklist, unknown ids included).
    fallback_days : float
        "Recent" window of the popular fallback (frozen at fit).
    """

    table: pd.DataFrame
    popularity: np.ndarray
    popularity_scale: float
    reference_date: pd.Timestamp | None
    text_keys: np.ndarray
    signatures: Signatures | None
    groups: np.ndarray
    blocked: frozenset[str] = frozenset()
    fallback_days: float = 30.0
    _derived: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        new = "ids" not in self._derived
        if new:  # a new table: its lookups (kept by evolve() when the table stays)
            self._derived.update(_lookups(self.table))
        self._check_rows(lookups=new)
        derived = self._derived
        blocked = np.zeros(len(derived["ids"]), dtype=bool)
        for article_id in self.blocked:
            row = derived["row_of"].get(article_id)
            if row is not None:
                blocked[row] = True
        views = self.table["views"].to_numpy(np.float64)
        published_ns = derived["published_ns"]
        derived["blocked_rows"] = blocked
        derived["representative"] = representatives(np.asarray(self.groups), published_ns, views, blocked)
        if self.reference_date is not None:
            recent_from = stamp_ns(self.reference_date) - int(float(self.fallback_days) * DAY_NS)
            recent = (published_ns != NAT) & (published_ns >= recent_from)
        else:
            recent = np.zeros(len(blocked), dtype=bool)
        derived["popular_order"] = np.lexsort(
            (np.arange(len(blocked)), -published_ns.astype(np.float64), -np.asarray(self.popularity), ~recent)
        )
        order = derived["popular_order"]
        shown = order[derived["representative"][order] == order]  # each story once, as its representative
        rank = np.full(len(blocked), -1, dtype=np.int64)
        rank[shown] = np.arange(shown.size)
        dated = shown[published_ns[shown] != NAT]
        by_date = dated[np.argsort(published_ns[dated], kind="stable")]
        derived["fallback"] = (shown, rank, by_date, published_ns[by_date], shown[published_ns[shown] == NAT])

    def check(self) -> None:
        """Raise :class:`InvalidPart` unless every array is consistent (O(size)), copy signatures included.

        The rules that do not read the signatures run whenever a catalogue is built.
        """
        self._check_rows(lookups=True)
        if self.signatures is not None:
            try:
                self.signatures.check(len(self))
            except ValueError as exc:
                raise InvalidPart("signatures", str(exc)) from None

    def _check_rows(self, *, lookups: bool) -> None:
        """The array rules (vectorised), and with ``lookups`` those of the ids and titles (a loop over them)."""
        derived = self._derived
        ids, n = derived["ids"], len(derived["ids"])
        if lookups and (not all(isinstance(a, str) and a for a in ids) or len(derived["row_of"]) != n):
            raise InvalidPart("article_id", "ids must be non-empty and unique")
        if lookups and not all(isinstance(t, str) for t in derived["titles"]):
            raise InvalidPart("title", "every article must have a title")
        for part, array, dtype in (
            ("popularity", self.popularity, np.float32),
            ("text_keys", self.text_keys, np.int64),
            ("groups", self.groups, np.int64),
        ):
            if array.shape != (n,) or array.dtype != dtype:
                raise InvalidPart(part, f"expected {n} values of {np.dtype(dtype)}, got {array.shape} {array.dtype}")
        if not (np.isfinite(self.popularity) & (self.popularity >= 0)).all():
            raise InvalidPart("popularity", "values must be finite and >= 0")
        if not (np.isfinite(self.popularity_scale) and self.popularity_scale >= 0):
            raise InvalidPart("popularity_scale", f"must be finite and >= 0, got {self.popularity_scale!r}")
        views = self.table["views"].to_numpy(np.float64)
        if (np.isinf(views) | (views < 0)).any():
            raise InvalidPart("views", "view counts must be >= 0 and finite (or missing)")
        groups = np.asarray(self.groups)
        if n and (int(groups.min()) < 0 or (groups > np.arange(n)).any() or (groups[groups] != groups).any()):
            raise InvalidPart("groups", "each label must be the smallest row of its group")
        if not (np.isfinite(self.fallback_days) and self.fallback_days >= 0):
            raise InvalidPart("fallback_days", f"must be finite and >= 0, got {self.fallback_days!r}")

    # ------------------------------------------------------------------ lookups

    def __len__(self) -> int:
        return len(self._derived["ids"])

    @property
    def ids(self) -> list[str]:
        """Article ids in row order (do not change the list)."""
        return self._derived["ids"]

    @property
    def titles(self) -> list[str]:
        return self._derived["titles"]

    @property
    def urls(self) -> list[str | None]:
        return self._derived["urls"]

    @property
    def categories(self) -> list[str | None]:
        return self._derived["categories"]

    @property
    def published(self) -> list[dt.datetime | None]:
        return self._derived["published"]

    @property
    def published_ns(self) -> np.ndarray:
        """Publication times in ns since the epoch, ``NAT`` when unknown, shape (n,)."""
        return self._derived["published_ns"]

    @property
    def category(self) -> np.ndarray:
        """Category codes into :attr:`category_names` (-1 = none), shape (n,)."""
        return self._derived["category"]

    @property
    def category_names(self) -> tuple[str, ...]:
        return self._derived["category_names"]

    @property
    def tags(self) -> sp.csr_matrix:
        """One row per article, one column per tag, 1 where the article has it."""
        return self._derived["tags"]

    @property
    def views(self) -> np.ndarray:
        return self.table["views"].to_numpy(np.float64)

    @property
    def blocked_rows(self) -> np.ndarray:
        """True for the rows of blocked articles, shape (n,)."""
        return self._derived["blocked_rows"]

    @property
    def representative(self) -> np.ndarray:
        """The row shown for each row's group (-1 when every member is blocked), shape (n,)."""
        return self._derived["representative"]

    @property
    def popular_order(self) -> np.ndarray:
        """Rows by the popular fallback's order: recent first, then by prior, newest, row."""
        return self._derived["popular_order"]

    def fallback_order(
        self, source_ns: int = NAT, *, max_age_days: float | None = None, past_only: bool = False
    ) -> np.ndarray:
        """The stories a list may be filled with, in the popular order, each as its representative.

        With a date window (``max_age_days`` around a dated source, ``past_only``)
        only the articles inside it and the undated ones, found by a binary search
        over the articles sorted by date: a fill costs what the window holds, not a
        walk over the whole catalogue.
        """
        shown, rank, by_date, dates, undated = self._derived["fallback"]
        if source_ns == NAT or (max_age_days is None and not past_only):
            return shown
        low, high = 0, dates.size
        if max_age_days is not None:
            reach = int(min(float(max_age_days) * DAY_NS, 2**62)) + 1_000_000  # a ms wider: the filter decides
            low = int(np.searchsorted(dates, max(source_ns - reach, -(2**63) + 1), side="left"))
            high = int(np.searchsorted(dates, min(source_ns + reach, 2**63 - 1), side="right"))
        if past_only:
            high = min(high, int(np.searchsorted(dates, source_ns, side="right")))
        inside = np.concatenate([by_date[low : max(low, high)], undated])
        return inside[np.argsort(rank[inside], kind="stable")]

    def row_of(self, article_id: str) -> int:
        """The row of an article id; raises :class:`UnknownArticleError`."""
        try:
            return self._derived["row_of"][article_id]
        except (KeyError, TypeError):
            raise UnknownArticleError(
                f"Unknown article_id {article_id!r}: the model has {len(self):,} articles. "
                "Refit with it, or use model.popular() as a fallback."
            ) from None

    def has(self, article_id: Any) -> bool:
        try:
            return article_id in self._derived["row_of"]
        except TypeError:
            return False

    def rows_of(self, article_ids: Iterable[str] | str | None) -> np.ndarray:
        """Rows of the known ids among ``article_ids`` (unknown ids are left out)."""
        if article_ids is None:
            return np.empty(0, dtype=np.int64)
        if isinstance(article_ids, str):
            article_ids = [article_ids]
        lookup = self._derived["row_of"]
        rows = [lookup.get(a) for a in article_ids if isinstance(a, str)]
        return np.array([r for r in rows if r is not None], dtype=np.int64)

    def ids_of(self, rows: Iterable[int]) -> list[str]:
        """The ids of ``rows``, sorted and without repeats."""
        ids = self._derived["ids"]
        return [ids[int(r)] for r in sorted({int(r) for r in rows})]

    def category_codes(self, names: Sequence[str]) -> np.ndarray:
        lookup = {name: code for code, name in enumerate(self.category_names)}
        return np.array([lookup[n] for n in names if n in lookup], dtype=np.int64)

    def category_code(self, name: str | None) -> int:
        return self.category_names.index(name) if name in self.category_names else -1

    def tag_matrix(self, tag_lists: Sequence[Sequence[str]]) -> sp.csr_matrix:
        """Tag rows over this catalogue's tag columns (tags it does not know are left out)."""
        codes = self._derived["tag_code"]
        rows, cols = [], []
        for i, tags in enumerate(tag_lists):
            for tag in tags:
                code = codes.get(tag)
                if code is not None:
                    rows.append(i)
                    cols.append(code)
        data = np.ones(len(rows), dtype=np.float32)
        return sp.csr_matrix((data, (rows, cols)), shape=(len(tag_lists), len(codes)))

    def members(self, rows: np.ndarray) -> np.ndarray:
        """Every row in the duplicate groups of ``rows``."""
        if len(rows) == 0:
            return np.empty(0, dtype=np.int64)
        groups = np.asarray(self.groups)
        return np.flatnonzero(np.isin(groups, groups[rows]))

    def hidden_groups(self, article_ids: Iterable[str] | str | None) -> np.ndarray | None:
        """A mask over group labels hiding the groups of ``article_ids`` (None when none is known)."""
        rows = self.rows_of(article_ids)
        if rows.size == 0:
            return None
        hidden = np.zeros(len(self), dtype=bool)
        hidden[np.asarray(self.groups)[rows]] = True
        return hidden

    def duplicate_report(self) -> pd.DataFrame:
        """The duplicate groups with more than one member, and why each member is in its group.

        Columns ``group`` (numbered from 1), ``article_id``, ``title``, ``published``,
        ``views``, ``representative``, ``containment``, ``resemblance`` (see
        ``Recommender.duplicate_groups``).
        """
        catalogue = self
        groups = np.asarray(catalogue.groups)
        counts = np.bincount(groups, minlength=len(groups))
        members = np.flatnonzero(counts[groups] > 1)
        columns = ["group", "article_id", "title", "published", "views", "representative", "containment", "resemblance"]
        if members.size == 0:
            return pd.DataFrame({c: [] for c in columns})
        representative = catalogue.representative
        is_rep = representative[members] == members
        order = np.lexsort((members, ~is_rep, groups[members]))
        members = members[order]
        _, number = np.unique(groups[members], return_inverse=True)
        table = catalogue.table.iloc[members]
        shown = representative[members]
        shown = np.where(shown >= 0, shown, groups[members])  # every member blocked: judged against the first
        keys = np.asarray(catalogue.text_keys)
        if catalogue.signatures is None:
            containment = resemblance = np.full(members.size, np.nan)
        else:
            _, containment, resemblance, _ = compare(catalogue.signatures, members, catalogue.signatures, shown)
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
                "representative": representative[members] == members,
                "containment": np.round(containment, 4),
                "resemblance": np.round(resemblance, 4),
            }
        )

    # ------------------------------------------------------------------ the next catalogue

    def evolve(self, **changes: Any) -> Catalogue:
        """A new catalogue with some fields changed; the lookups of an unchanged table are shared."""
        keep = {} if "table" in changes else {k: self._derived[k] for k in _LOOKUPS}
        return replace(self, _derived=keep, **changes)

    def with_blocked(self, blocked: Collection[str]) -> Catalogue:
        return self.evolve(blocked=frozenset(blocked))

    def with_views(self, rows: np.ndarray, views: np.ndarray, prior: np.ndarray) -> Catalogue:
        """New view counts of ``rows`` and the whole new prior; the lookups (which views do not touch) are shared."""
        table = self.table.copy()
        table.loc[rows, "views"] = views
        keep = {k: self._derived[k] for k in _LOOKUPS}
        return replace(self, table=table, popularity=prior, _derived=keep)


_LOOKUPS = (
    "ids", "row_of", "titles", "urls", "categories", "published", "published_ns", "category_names", "category",
    "tag_code", "tags",
)  # fmt: skip


def _lookups(table: pd.DataFrame) -> dict[str, Any]:
    """Lists, codes and matrices of a catalogue table that the request path reads."""
    ids = table["article_id"].tolist()
    categories = table["category"].tolist()
    names = sorted({c for c in categories if c is not None})
    code = {name: i for i, name in enumerate(names)}
    tag_code: dict[str, int] = {}
    rows, cols = [], []
    for i, tags in enumerate(table["tags"].tolist()):
        for tag in tags:
            rows.append(i)
            cols.append(tag_code.setdefault(tag, len(tag_code)))
    return {
        "ids": ids,
        "row_of": {article_id: row for row, article_id in enumerate(ids)},
        "titles": table["title"].tolist(),
        "urls": table["url"].tolist(),
        "categories": categories,
        "published": [None if pd.isna(p) else p.to_pydatetime() for p in table["published"]],
        "published_ns": to_ns(table["published"]),
        "category_names": tuple(names),
        "category": np.array([code.get(c, -1) if c is not None else -1 for c in categories], dtype=np.int64),
        "tag_code": tag_code,
        "tags": sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(ids), len(tag_code))),
    }


def table_of(articles: pd.DataFrame) -> pd.DataFrame:
    """The catalogue columns of a validated article table, in row order, in arrays of their own: a column taken
    from a block that pandas consolidated would keep the whole block alive (every article's summary and body)."""
    return articles[list(TABLE_COLUMNS)].reset_index(drop=True).copy(deep=True)


def replaced_rows(table: pd.DataFrame, rows: np.ndarray, edited: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``rows`` replaced by the catalogue columns of ``edited`` (same order)."""
    frame = table.copy()
    replacement = edited[list(TABLE_COLUMNS)].set_index(pd.Index(rows))
    for column in replacement.columns:
        frame.loc[rows, column] = replacement[column].to_numpy()
    frame["published"] = pd.to_datetime(frame["published"], utc=True)
    frame["views"] = frame["views"].astype(np.float64)
    return frame
