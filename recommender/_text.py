"""Text vectorising: TF-IDF over title, summary and body with field weights.

The maths, in one place:

* Each field is tokenised by scikit-learn's word analyzer (lower case, accents
  stripped, HTML tags and entities removed, English stop words dropped).
* The vocabulary is shared by all fields. A term's document frequency ``df``
  counts an article once if the term is in any of its fields; terms with
  ``df < min_df`` or ``df > max_df * n_articles`` are dropped.
* Term frequency is sublinear per field, then weighted and summed::

      tf(t, d) = sum over fields f with c_f(t, d) > 0 of  w_f * (1 + ln c_f(t, d))

* ``idf(t) = ln((1 + n) / (1 + df(t))) + 1`` (scikit-learn's smooth idf), and each
  row ``tf * idf`` is scaled to unit L2 norm, so a dot product is a cosine.

These are pure functions of arrays; the fitted state (terms and idf) is kept by
the model.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, strip_accents_unicode

__all__ = [
    "FIELDS",
    "TextParams",
    "Vocabulary",
    "build_analyzer",
    "fit_vocabulary",
    "vectorise",
]

FIELDS = ("title", "summary", "body")

_TAG = re.compile(r"<[^>]{0,2000}>")
_WORD_PATTERN = r"(?u)\b\w\w+\b"


@dataclass(frozen=True)
class TextParams:
    """Parameters of the vectoriser (all stored in the model manifest).

    Attributes
    ----------
    field_weights : mapping of field name to weight
        ``w_f`` in the module formula; a field with weight 0 is ignored.
    min_df : int
        Minimum number of articles a term must appear in.
    max_df : float
        Maximum share of articles a term may appear in (0 < max_df <= 1).
    ngram_range : (int, int)
        Word n-gram lengths, e.g. ``(1, 2)`` for words and word pairs. N-grams
        never cross from one field into another.
    token_pattern : str
        Regular expression of a token.
    max_chars : int
        Each field is cut to this many characters before tokenising, so a
        multi-megabyte body cannot stall a request.
    """

    field_weights: Mapping[str, float]
    min_df: int = 2
    max_df: float = 0.5
    ngram_range: tuple[int, int] = (1, 1)
    token_pattern: str = _WORD_PATTERN
    max_chars: int = 100_000

    def __post_init__(self) -> None:
        unknown = set(self.field_weights) - set(FIELDS)
        if unknown:
            raise ValueError(f"field_weights has unknown fields {sorted(unknown)}; expected keys from {FIELDS}.")
        for name, weight in self.field_weights.items():
            if not np.isfinite(weight) or weight < 0:
                raise ValueError(f"field_weights[{name!r}] must be a finite number >= 0, got {weight!r}.")
        if not any(self.field_weights.get(f, 0) > 0 for f in FIELDS):
            raise ValueError(
                f"field_weights must give at least one field a positive weight, got {dict(self.field_weights)}."
            )
        if int(self.min_df) != self.min_df or self.min_df < 1:
            raise ValueError(f"min_df must be an integer >= 1, got {self.min_df!r}.")
        if not 0.0 < self.max_df <= 1.0:
            raise ValueError(f"max_df must be in (0, 1], got {self.max_df!r}.")
        low, high = self.ngram_range
        if not 1 <= low <= high:
            raise ValueError(f"ngram_range must be (low, high) with 1 <= low <= high, got {self.ngram_range!r}.")
        if self.max_chars < 1:
            raise ValueError(f"max_chars must be >= 1, got {self.max_chars!r}.")


@dataclass(frozen=True)
class Vocabulary:
    """Fitted text state: the kept terms (sorted) and their idf weights."""

    terms: np.ndarray  # shape (n_terms,), str
    idf: np.ndarray  # shape (n_terms,), float32

    def __len__(self) -> int:
        return int(self.terms.shape[0])


def _clean(text: str) -> str:
    """Lower-case, strip accents, and drop HTML tags and entities."""
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    return strip_accents_unicode(text.lower())


def _counter(params: TextParams, vocabulary: Mapping[str, int] | None = None) -> CountVectorizer:
    return CountVectorizer(
        preprocessor=_clean,
        stop_words="english",
        token_pattern=params.token_pattern,
        ngram_range=tuple(params.ngram_range),
        vocabulary=vocabulary,
        dtype=np.float32,
    )


def build_analyzer(params: TextParams) -> Callable[[str], list[str]]:
    """The tokeniser used for every field: text -> list of terms."""
    return _counter(params).build_analyzer()


def _field_texts(fields: Mapping[str, Sequence[str]], params: TextParams) -> list[tuple[float, list[str]]]:
    limit = params.max_chars
    out = []
    for name in FIELDS:
        weight = float(params.field_weights.get(name, 0.0))
        if weight > 0 and name in fields:
            out.append((weight, [t[:limit] if len(t) > limit else t for t in fields[name]]))
    return out


def _weighted_tf(counts: list[tuple[float, sp.csr_matrix]], n_terms: int, n_docs: int) -> sp.csr_matrix:
    total = sp.csr_matrix((n_docs, n_terms), dtype=np.float32)
    for weight, matrix in counts:
        matrix = matrix.tocsr().astype(np.float32)
        matrix.data = weight * (1.0 + np.log(matrix.data, dtype=np.float32))
        total = total + matrix
    return total.tocsr()


def fit_vocabulary(fields: Mapping[str, Sequence[str]], params: TextParams) -> tuple[Vocabulary, sp.csr_matrix]:
    """Learn terms and idf from the articles' fields and return their vectors.

    Parameters
    ----------
    fields : mapping of field name to a sequence of n strings
    params : TextParams

    Returns
    -------
    vocabulary : Vocabulary
    vectors : csr_matrix of shape (n, n_terms), float32, rows of unit norm (or zero)
    """
    texts = _field_texts(fields, params)
    n_docs = len(texts[0][1]) if texts else 0
    stacked = [t for _, field in texts for t in field]
    counter = _counter(params)
    try:
        counts = counter.fit_transform(stacked).tocsr()
    except ValueError:  # nothing but stop words (or no text) anywhere
        empty = Vocabulary(np.array([], dtype=str), np.array([], dtype=np.float32))
        return empty, sp.csr_matrix((n_docs, 0), dtype=np.float32)
    terms = np.array(counter.get_feature_names_out(), dtype=str)
    per_field = [counts[i * n_docs : (i + 1) * n_docs] for i in range(len(texts))]
    present = per_field[0].copy()
    for matrix in per_field[1:]:
        present = present + matrix
    df = np.bincount(present.tocsr().indices, minlength=len(terms))
    keep = (df >= params.min_df) & (df <= params.max_df * n_docs)
    columns = np.flatnonzero(keep)
    idf = (np.log((1.0 + n_docs) / (1.0 + df[columns])) + 1.0).astype(np.float32)
    vocabulary = Vocabulary(terms[columns], idf)
    tf = _weighted_tf([(w, m[:, columns]) for (w, _), m in zip(texts, per_field, strict=True)], len(columns), n_docs)
    return vocabulary, _normalise(tf, idf)


def vectorise(
    fields: Mapping[str, Sequence[str]],
    vocabulary: Vocabulary,
    params: TextParams,
    counter: CountVectorizer | None = None,
) -> sp.csr_matrix:
    """Vectors of articles over a fitted vocabulary (terms outside it are ignored).

    ``counter`` may be a cached result of :func:`make_counter` for speed.
    """
    texts = _field_texts(fields, params)
    n_docs = len(texts[0][1]) if texts else 0
    if len(vocabulary) == 0:
        return sp.csr_matrix((n_docs, 0), dtype=np.float32)
    counter = counter if counter is not None else make_counter(vocabulary, params)
    counts = [(w, counter.transform(field)) for w, field in texts]
    return _normalise(_weighted_tf(counts, len(vocabulary), n_docs), vocabulary.idf)


def make_counter(vocabulary: Vocabulary, params: TextParams) -> CountVectorizer:
    """A term counter fixed to a fitted vocabulary."""
    counter = _counter(params, {str(t): i for i, t in enumerate(vocabulary.terms)})
    counter.fit([])  # fixed vocabulary: validates it, learns nothing
    return counter


def _normalise(tf: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    tf = tf.tocsr()
    tf.data *= idf[tf.indices]
    norms = np.sqrt(np.asarray(tf.multiply(tf).sum(axis=1)).ravel()).astype(np.float32)
    norms[norms == 0] = 1.0
    tf.data /= np.repeat(norms, np.diff(tf.indptr))
    tf.sort_indices()
    return tf.astype(np.float32)


def drift(fields: Mapping[str, Sequence[str]], vocabulary: Vocabulary, params: TextParams) -> float:
    """Share of the tokens of ``fields`` that are not in the vocabulary (0 when there are none)."""
    analyzer = build_analyzer(params)
    known = set(vocabulary.terms.tolist())
    total = missing = 0
    for _, field in _field_texts(fields, params):
        for text in field:
            for term in analyzer(text):
                total += 1
                missing += term not in known
    return missing / total if total else 0.0
