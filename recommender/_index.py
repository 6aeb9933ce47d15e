"""The vector index: the fitted vocabulary, its frozen text parameters, every article's vector.

It vectorises new text exactly as at fit time (the text parameters are frozen
here, whatever the model's parameters say later), scores a query against every
article through an inverted index of the word columns, and explains a
similarity by the words two articles share. A :class:`VectorIndex` is never
changed: updates build the next one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._errors import InvalidPart
from ._memo import Memo
from ._neighbours import check_csr
from ._ranking import top_entries
from ._text import TextParams, Vocabulary, term_counter, unknown_tokens, vectorise

__all__ = ["SHARED_TERMS", "VectorIndex", "replaced_vectors", "rounded"]

#: Terms shown per item as the explanation of its similarity.
SHARED_TERMS = 5


@dataclass(frozen=True, eq=False)
class VectorIndex:
    """Vocabulary, text parameters and vectors of the fitted articles.

    Attributes
    ----------
    vocabulary : Vocabulary
    params : TextParams
        The text parameters of the fit, frozen.
    vectors : csr_matrix of shape (n, width), float32
        Unit rows: term columns, then the latent columns.
    drift_counts : ndarray of shape (2,), int64
        ``(tokens not in the vocabulary, tokens)`` of the articles added or edited since fit.
    """

    vocabulary: Vocabulary
    params: TextParams
    vectors: sp.csr_matrix
    drift_counts: np.ndarray
    _memo: Memo = field(default_factory=Memo, repr=False)

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def check(self) -> None:
        """Raise :class:`InvalidPart` unless vocabulary, vectors and drift counts are consistent (O(size)).

        Vectors: CSR arrays inside their shape (:func:`check_csr`), one column per
        term and latent dimension, float32, finite, column indices ascending within
        each row, and every row of length 1 (or 0: an article without a kept word).
        """
        self.vocabulary.check()
        vectors = self.vectors
        check_csr(vectors)
        if vectors.shape[1] != self.vocabulary.width:
            raise InvalidPart(
                "vectors.shape", f"{vectors.shape[1]} columns, but the vocabulary has {self.vocabulary.width}"
            )
        if vectors.data.dtype != np.float32:  # finite: check_csr
            raise InvalidPart("vectors.data", "values must be float32")
        if not vectors.has_canonical_format:
            raise InvalidPart("vectors.indices", "column indices must be ascending and unique within each row")
        lengths = np.zeros(vectors.shape[0], dtype=np.float64)
        filled = np.diff(vectors.indptr) > 0
        if filled.any():
            squares = np.square(vectors.data, dtype=np.float64)
            lengths[filled] = np.add.reduceat(squares, vectors.indptr[:-1][filled])
        if (np.abs(lengths[filled] - 1.0) > 1e-3).any():
            raise InvalidPart("vectors.data", "every row must have length 1")
        drift = self.drift_counts
        if drift.shape != (2,) or drift.dtype != np.int64 or drift[0] < 0 or drift[0] > drift[1]:
            raise InvalidPart(
                "drift_counts", f"expected (unknown tokens, tokens) with 0 <= unknown <= tokens, got {drift}"
            )

    @property
    def terms(self) -> list[str]:
        return self._cached("terms", lambda: self.vocabulary.terms.tolist())

    def _cached(self, name: str, build: Any) -> Any:
        return self._memo.once(name, build)

    # ------------------------------------------------------------------ new text

    def vectorise(self, fields: Mapping[str, Sequence[str]]) -> sp.csr_matrix:
        """Vectors of new texts over the frozen vocabulary, shape (m, width)."""
        counter = self._term_counter() if len(self.vocabulary) else None  # no terms: zero rows
        return vectorise(fields, self.vocabulary, self.params, counter)

    def _term_counter(self) -> Any:
        return self._cached("counter", lambda: term_counter(self.vocabulary, self.params))

    def drift_of(self, fields: Mapping[str, Sequence[str]]) -> np.ndarray:
        """``(tokens unknown to the vocabulary, tokens)`` of new texts."""
        return np.array(unknown_tokens(fields, self.vocabulary, self.params), dtype=np.int64)

    # ------------------------------------------------------------------ similarities

    def text_similarities(self, query: sp.csr_matrix) -> np.ndarray:
        """Similarity of one query vector to every article, shape (n,).

        Only the postings of the query's own words are read (an inverted index,
        built once), plus a small dense product for the latent columns, instead
        of a pass over every article's vector.
        """
        words, latent = self._cached("inverted", self._inverted)
        query = query.tocsr()
        columns, values = query.indices, query.data.astype(np.float32)
        n_terms = len(self.vocabulary)
        similarities = np.zeros(len(self), dtype=np.float32)
        is_word = columns < n_terms
        if is_word.any():
            similarities += np.asarray(words[columns[is_word]].T @ values[is_word], dtype=np.float32).ravel()
        if latent.shape[0] and (~is_word).any():
            dense = np.zeros(latent.shape[0], dtype=np.float32)
            dense[columns[~is_word] - n_terms] = values[~is_word]
            # einsum, not BLAS: a threaded sgemv this small is slower than one core's loop (7.8 ms vs 0.6 ms at 100k)
            similarities += np.einsum("i,ij->j", dense, latent)
        return similarities

    def _inverted(self) -> tuple[sp.csr_matrix, np.ndarray]:
        n_terms = len(self.vocabulary)
        vectors = self.vectors.tocsr()
        words = vectors[:, :n_terms].T.tocsr()
        latent = np.ascontiguousarray(vectors[:, n_terms:].toarray().T, dtype=np.float32)
        return words, latent

    def warm(self) -> None:
        """Build the inverted index, the term list and the term counter now rather than on the first query."""
        self._cached("inverted", self._inverted)
        self.terms  # noqa: B018 - built on first use
        if len(self.vocabulary):
            self._term_counter()

    def pair_similarity(self, rows: np.ndarray) -> np.ndarray:
        """Cosine similarities among ``rows``, shape (c, c)."""
        block = self.vectors[rows]
        return (block @ block.T).toarray()

    # ------------------------------------------------------------------ explanations

    def word_products(self, sources: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
        """Element-wise products of source vectors and the vectors of ``rows``, word columns only."""
        n_terms = len(self.vocabulary)
        return sources[:, :n_terms].multiply(self.vectors[rows][:, :n_terms]).tocsr()

    def shared_term_arrays(self, sources: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top shared term columns and contributions of each (source vector, row) pair, shape (m, SHARED_TERMS)."""
        if len(rows) == 0:
            return np.full((0, SHARED_TERMS), -1, dtype=np.int32), np.zeros((0, SHARED_TERMS), dtype=np.float32)
        return top_entries(self.word_products(sources, rows), SHARED_TERMS)

    def shared_terms(self, sources: sp.csr_matrix, rows: np.ndarray) -> list[tuple[tuple[str, float], ...]]:
        """Top shared terms of each (source vector, row) pair, with contributions rounded as shown."""
        columns, values = self.shared_term_arrays(sources, rows)
        terms = self.terms
        return [
            tuple((terms[c], v) for c, v in zip(cs, vs, strict=True) if c >= 0)
            for cs, vs in zip(columns.tolist(), rounded(values).tolist(), strict=True)
        ]

    # ------------------------------------------------------------------ the next index

    def with_vectors(self, vectors: sp.csr_matrix, drift: np.ndarray | None = None) -> VectorIndex:
        """The same vocabulary and parameters over other vectors (after an update)."""
        counts = self.drift_counts if drift is None else np.asarray(self.drift_counts) + drift
        kept = {name: self._memo[name] for name in ("counter", "terms") if name in self._memo}  # vocabulary only
        return replace(self, vectors=vectors, drift_counts=counts, _memo=Memo(kept))


def replaced_vectors(vectors: sp.csr_matrix, rows: np.ndarray, new: sp.csr_matrix) -> sp.csr_matrix:
    """``vectors`` with the rows ``rows`` (unique, in any order) replaced by the rows of ``new``, in order.

    One pass of array copies over the CSR arrays (no per-row Python work): the
    rows around the replaced ones are copied in slices, so the cost is a
    memory copy of the matrix, not a rebuild.
    """
    vectors, new = vectors.tocsr(), new.tocsr()
    rows = np.asarray(rows, dtype=np.int64)
    n = vectors.shape[0]
    if new.shape != (rows.size, vectors.shape[1]) or np.unique(rows).size != rows.size:
        raise ValueError("replaced_vectors: one new row per distinct replaced row, of the same width.")
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise IndexError(f"replaced_vectors: rows must lie in [0, {n}).")
    order = np.argsort(rows, kind="stable")
    rows, new = rows[order], new[order]
    lengths = np.diff(vectors.indptr).astype(np.int64)
    lengths[rows] = np.diff(new.indptr)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    indices = np.empty(int(indptr[-1]), dtype=vectors.indices.dtype)
    data = np.empty(int(indptr[-1]), dtype=np.float32)
    starts = np.concatenate([[0], rows + 1])  # kept stretches: [previous replaced row + 1, next replaced row)
    stops = np.concatenate([rows, [n]])
    for i, (lo, hi) in enumerate(zip(starts.tolist(), stops.tolist(), strict=True)):
        if hi > lo:
            a, b = vectors.indptr[lo], vectors.indptr[hi]
            indices[indptr[lo] : indptr[hi]] = vectors.indices[a:b]
            data[indptr[lo] : indptr[hi]] = vectors.data[a:b]
        if i < rows.size:
            r = rows[i]
            indices[indptr[r] : indptr[r + 1]] = new.indices[new.indptr[i] : new.indptr[i + 1]]
            data[indptr[r] : indptr[r + 1]] = new.data[new.indptr[i] : new.indptr[i + 1]]
    out = sp.csr_matrix((data, indices, indptr), shape=vectors.shape)
    out.sort_indices()
    return out


def rounded(values: np.ndarray) -> np.ndarray:
    """Shared-term contributions as shown: float64, rounded to 6 decimals (the same on every path)."""
    return np.round(np.asarray(values, dtype=np.float64), 6)
