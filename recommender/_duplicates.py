"""Duplicates: exact copies, syndicated copies and repeated headlines, as groups.

Three kinds of sameness, all pure functions of arrays:

* **Exact copies**: identical title + summary + body after lower-casing and
  collapsing whitespace (a stable 64-bit hash of that text). They are kept out of
  each other's neighbour pools.
* **Duplicate groups**: connected components of the graph whose edges are exact
  copies, pairs in each other's pools with cosine similarity at least
  ``threshold``, and pairs of articles with the same normalised title (letters and
  digits only, lower case, at least :data:`MIN_TITLE_WORDS` words, so that short
  generic headlines such as "Weather" do not merge unrelated stories).
* **Representative** of a group: the member shown in lists, the newest, then the
  most viewed, then the first in input order, among the members not blocked.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

__all__ = ["MIN_TITLE_WORDS", "copy_groups", "duplicate_groups", "representatives", "text_keys", "title_keys"]

MIN_TITLE_WORDS = 4
_NON_WORD = re.compile(r"[^\w]+|_")
NAT = np.iinfo(np.int64).min


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def text_keys(titles: Sequence[str], summaries: Sequence[str], bodies: Sequence[str]) -> np.ndarray:
    """Stable 64-bit keys of the normalised full text, shape (n,), int64."""
    return np.array(
        [_hash(" ".join(f"{t}\n{s}\n{b}".lower().split())) for t, s, b in zip(titles, summaries, bodies, strict=True)],
        dtype=np.int64,
    )


def title_keys(titles: Sequence[str]) -> np.ndarray:
    """Stable keys of normalised titles, 0 for titles shorter than MIN_TITLE_WORDS words."""
    out = np.zeros(len(titles), dtype=np.int64)
    for i, title in enumerate(titles):
        words = _NON_WORD.sub(" ", title.lower()).split()
        if len(words) >= MIN_TITLE_WORDS:
            out[i] = _hash(" ".join(words)) or 1
    return out


def copy_groups(keys: np.ndarray) -> np.ndarray:
    """Label rows sharing a text key; -1 for rows without a copy. Shape (n,), int32."""
    codes, uniques = _factorize(keys)
    counts = np.bincount(codes, minlength=len(uniques))
    return np.where(counts[codes] > 1, codes, -1).astype(np.int32)


def _factorize(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniques, first, codes = np.unique(keys, return_index=True, return_inverse=True)
    # relabel by first appearance so labels do not depend on hash values
    rank = np.empty(len(uniques), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(uniques))
    return rank[codes.ravel()], uniques


def duplicate_groups(
    neighbours: np.ndarray,
    similarities: np.ndarray,
    threshold: float,
    text: np.ndarray,
    titles: np.ndarray,
) -> np.ndarray:
    """Duplicate-group label of every row (the smallest row of its group), shape (n,), int64."""
    n = neighbours.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    close = (neighbours >= 0) & (similarities >= threshold)
    sources = np.repeat(np.arange(n), neighbours.shape[1])[close.ravel()]
    targets = neighbours.ravel()[close.ravel()]
    edges = [(sources, targets)]
    for keys, usable in ((text, np.ones(n, dtype=bool)), (titles, titles != 0)):
        rows = np.flatnonzero(usable)
        codes, _ = _factorize(keys[rows])
        order = np.argsort(codes, kind="stable")
        same = codes[order][1:] == codes[order][:-1]
        edges.append((rows[order][1:][same], rows[order][:-1][same]))
    a = np.concatenate([e[0] for e in edges])
    b = np.concatenate([e[1] for e in edges])
    graph = sp.coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    smallest = np.full(labels.max() + 1, n, dtype=np.int64)
    np.minimum.at(smallest, labels, np.arange(n))
    return smallest[labels]


def representatives(group: np.ndarray, published_ns: np.ndarray, views: np.ndarray, blocked: np.ndarray) -> np.ndarray:
    """Row shown for each row's group: newest, then most viewed, then first; -1 if all blocked."""
    n = group.shape[0]
    rep = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return rep
    open_rows = np.flatnonzero(~blocked)
    views_key = np.where(np.isnan(views), -1.0, views)
    # best first: newest, most viewed, smallest row
    order = open_rows[np.lexsort((open_rows, -views_key[open_rows], -published_ns[open_rows].astype(np.float64)))]
    best = np.full(n, -1, dtype=np.int64)
    groups_in_order = group[order]
    _, first = np.unique(groups_in_order, return_index=True)
    best[groups_in_order[first]] = order[first]
    rep = best[group]
    return rep
