"""Text vectorising: TF-IDF over title, summary and body with field weights.

The maths, in one place:

* Each field is tokenised by scikit-learn's word analyzer (lower case, accents
  stripped, HTML tags and entities removed, words of two or more letters or
  digits) and the stop words are dropped: by default :data:`NEWS_STOP_WORDS`,
  function words only (articles, determiners, pronouns, auxiliaries and
  modals, prepositions, conjunctions and a few function adverbs such as "not"
  and "also"). scikit-learn's ``"english"`` list also removes content words
  that carry news (fire, bill, interest, system, show, call, found, move, back,
  part, side, top, front, full, serious, empty, detail, hundred, ...), so
  "Notre Dame catches fire" would share no "fire" with "Hotel fire kills
  three"; it stays available as ``stop_words="english"``.
* The vocabulary is shared by all fields. A term's document frequency ``df``
  counts an article once if the term is in any of its fields; terms with
  ``df < min_df`` or ``df > max_df * n_articles`` are dropped.
* Term frequency is sublinear per field, then weighted and summed::

      tf(t, d) = sum over fields f with c_f(t, d) > 0 of  w_f * (1 + ln c_f(t, d))

* ``idf(t) = ln((1 + n) / (1 + df(t))) + 1`` (scikit-learn's smooth idf), and each
  row ``x = tf * idf`` is scaled to unit L2 norm, so a dot product is a cosine.
* A latent blend adds topic similarity to word overlap: ``z = x @ C.T`` with ``C``
  the ``latent_components`` right singular vectors of the fitted matrix
  (TruncatedSVD, seeded, fitted on at most :data:`LATENT_SAMPLE` rows spread evenly over
  the corpus), ``z`` scaled to unit norm, and the vector is
  ``[sqrt(1 - w) * x, sqrt(w) * z]`` with ``w = latent_weight``, so that::

      cosine = (1 - w) * cosine(x, x') + w * cosine(z, z')

  The latent columns come after the term columns. ``w = 0`` or no components
  turns the blend off.

These are pure functions of arrays; the fitted state (terms and idf) is kept by
the model.
"""

from __future__ import annotations

import functools
import html
import re
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer, strip_accents_unicode

from ._errors import InvalidPart
from ._tokens import MAX_TERM_CHARS, count_terms, fast_path

__all__ = [
    "FIELDS",
    "LATENT_SAMPLE",
    "NEWS_STOP_WORDS",
    "STOP_LISTS",
    "FieldCounts",
    "TermCounter",
    "TextParams",
    "Vocabulary",
    "blend",
    "build_analyzer",
    "count_fields",
    "document_frequencies",
    "fit_components",
    "fit_vocabulary",
    "kept_terms",
    "latent_sample",
    "sample_components",
    "term_counter",
    "tfidf_rows",
    "unknown_tokens",
    "vectorise",
]

FIELDS = ("title", "summary", "body")

_BLOCK_ROWS = 65_536  # articles per block of the fitting temporaries
#: Rows the latent components are fitted on at most (:func:`latent_sample`): the few top directions of a corpus
#: are settled by far fewer articles than a large site has, and the fit then costs the same at any size.
LATENT_SAMPLE = 10_000
_TAG = re.compile(r"<[^<>]{0,2000}>")  # [^<>]: a run of "<" is read once, not 2,000 characters from each
_WORD_PATTERN = r"(?u)\b\w\w+\b"

#: The default stop list: English function words (and contraction pieces such as "ll", "ve"), no content word.
NEWS_STOP_WORDS = frozenset(
    """
    the an this that these those each every either neither some any no all both such another other others
    much many more most few fewer less least several own same
    me my mine myself you your yours yourself yourselves he him his himself she her hers herself it its itself
    we us our ours ourselves they them their theirs themselves who whom whose which what whatever whoever
    whichever whom someone somebody something anyone anybody anything everyone everybody everything nobody
    nothing none noone
    be am is are was were been being have has had having do does did doing will would shall should can cannot
    could may might must ought ll ve re isn aren wasn weren hasn haven hadn doesn didn shouldn wouldn couldn
    mustn needn
    about above across after against along amid amidst among amongst around as at before behind below beneath
    beside besides between beyond by despite down during except for from in inside into near of off on onto
    out outside over per since through throughout till to toward towards under underneath until unlike up upon
    via with within without
    and or but nor so yet because although though while whereas whilst if unless whether than when whenever
    where wherever whereby how why
    not also very too there here then thus hence however therefore just only even ever never rather quite
    """.split()
)
#: Named stop lists of the ``stop_words`` parameter.
STOP_LISTS = ("news", "english")


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
    latent_components : int
        Dimensions of the latent blend (0 = off). Fewer are used when the corpus
        has fewer articles or terms.
    latent_weight : float
        Share of the latent cosine in the similarity, in [0, 1).
    stop_words : "news", "english", None or tuple of str
        Words left out: ``"news"`` (:data:`NEWS_STOP_WORDS`, the default),
        ``"english"`` (scikit-learn's list), None (none) or the given words
        (each one word as the tokeniser sees it; case and accents do not matter).
    """

    field_weights: Mapping[str, float]
    min_df: int = 2
    max_df: float = 0.5
    ngram_range: tuple[int, int] = (1, 1)
    token_pattern: str = _WORD_PATTERN
    max_chars: int = 100_000
    latent_components: int = 20
    latent_weight: float = 0.3
    stop_words: str | tuple[str, ...] | None = "news"

    def __post_init__(self) -> None:
        object.__setattr__(self, "stop_words", _stop_words(self.stop_words, self.token_pattern))
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
        if int(self.latent_components) != self.latent_components or self.latent_components < 0:
            raise ValueError(f"latent_components must be an integer >= 0, got {self.latent_components!r}.")
        if not 0.0 <= self.latent_weight < 1.0:
            raise ValueError(f"latent_weight must be in [0, 1), got {self.latent_weight!r}.")


@dataclass(frozen=True)
class Vocabulary:
    """Fitted text state: the kept terms (sorted), their idf weights, the latent components."""

    terms: np.ndarray  # shape (n_terms,), str
    idf: np.ndarray  # shape (n_terms,), float32
    components: np.ndarray | None = None  # shape (n_components, n_terms), float32
    latent_weight: float = 0.0

    def __len__(self) -> int:
        return int(self.terms.shape[0])

    @property
    def width(self) -> int:
        """Columns of a vector: the terms, then the latent dimensions."""
        return len(self) + (0 if self.components is None else int(self.components.shape[0]))

    def check(self) -> None:
        """Raise :class:`InvalidPart` unless terms, idf and components are consistent (O(size))."""
        terms, idf, components = self.terms, self.idf, self.components
        if terms.ndim != 1 or terms.dtype.kind != "U":
            raise InvalidPart("vocabulary", f"expected a list of terms, got shape {terms.shape}")
        if terms.size and (not (terms[1:] > terms[:-1]).all() or not terms[0]):
            raise InvalidPart("vocabulary", "terms must be non-empty, unique and sorted")
        if idf.dtype != np.float32 or idf.shape != terms.shape:
            raise InvalidPart("idf", f"expected {terms.size} float32 weights, got {idf.shape} {idf.dtype}")
        if not (np.isfinite(idf) & (idf > 0)).all():
            raise InvalidPart("idf", "weights must be finite and positive")
        if components is not None:
            if components.dtype != np.float32 or components.ndim != 2 or components.shape[1] != terms.size:
                raise InvalidPart("components", f"expected (k, {terms.size}) float32, got {components.shape}")
            if not np.isfinite(components).all():
                raise InvalidPart("components", "values must be finite")
        if not (np.isfinite(self.latent_weight) and 0.0 <= self.latent_weight < 1.0):
            raise InvalidPart("latent_weight", f"must be in [0, 1), got {self.latent_weight!r}")


def _clean(text: str) -> str:
    """Lower-case, strip accents, and drop HTML tags and entities."""
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    if not text.isascii():  # first: the compatibility forms it unfolds may be capitals (U+1D6E2 -> U+0391)
        text = strip_accents_unicode(text)
    return text.lower()


def _stop_words(value: object, token_pattern: str) -> str | tuple[str, ...] | None:
    """Check a ``stop_words`` value; a list of words comes back as a sorted tuple of cleaned words."""
    if value is None or value in STOP_LISTS:
        return value  # type: ignore[return-value]
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise ValueError(f"stop_words must be 'news', 'english', None or a list of words, got {value!r}.")
    tokenise = re.compile(token_pattern).findall
    words = set()
    for word in value:
        cleaned = _clean(word) if isinstance(word, str) else None
        if cleaned is None or tokenise(cleaned) != [cleaned]:
            raise ValueError(f"stop_words must be single words as the tokeniser reads them, got {word!r}.")
        words.add(cleaned)
    return tuple(sorted(words))


def _stop_set(params: TextParams) -> frozenset[str]:
    """The stop words of ``params`` as a set of words (every counter takes them from here)."""
    return _stop_words_of(params.stop_words)


@functools.lru_cache(maxsize=16)
def _stop_words_of(stop_words: str | tuple[str, ...] | None) -> frozenset[str]:
    if stop_words == "english":
        return frozenset(ENGLISH_STOP_WORDS)
    if stop_words == "news":
        return NEWS_STOP_WORDS
    return frozenset(stop_words) if stop_words else frozenset()


#: Below this many characters in all, new texts are counted by scikit-learn's counter (the same counts): the
#: compiled counter's fixed cost per call (arrow arrays, a dictionary) is more than it saves on a draft or two.
_SMALL_TEXT = 50_000


@dataclass(frozen=True)
class TermCounter:
    """Counts a fitted vocabulary's terms in new texts (see :func:`term_counter`)."""

    columns: Mapping[str, int]
    fixed: CountVectorizer


def term_counter(vocabulary: Vocabulary, params: TextParams) -> TermCounter:
    """The counter of a fitted vocabulary's terms: build once, reuse for every new text."""
    columns = {str(t): i for i, t in enumerate(vocabulary.terms.tolist())}
    fixed = _counter(params, columns)
    with warnings.catch_warnings():
        # Every term came out of this same analyzer (lower-cased), so it matches; scikit-learn's
        # str.isupper() check can still fire on rare letters without a lower-case form.
        warnings.filterwarnings("ignore", message="Upper case characters found in vocabulary", category=UserWarning)
        fixed.fit([])  # fixed vocabulary: validates it, learns nothing
    return TermCounter(columns, fixed)


def _counts(
    texts: list[str], params: TextParams, counter: TermCounter | None, n_jobs: int
) -> tuple[np.ndarray | None, sp.csr_matrix]:
    """Term counts of raw field texts: learning the terms (``counter`` None) or over a fitted vocabulary.

    The compiled counter runs where it gives scikit-learn's tokens (the default token pattern, single words),
    scikit-learn's elsewhere and for a few short new texts; both give the same counts.
    """
    fast = fast_path(params.token_pattern, params.ngram_range)
    if counter is None:
        if fast:
            return count_terms([_clean(t) for t in texts], _stop_set(params), n_jobs=n_jobs)
        learner = _counter(params)
        counts = learner.fit_transform(texts).tocsr()
        names = learner.get_feature_names_out()
        short = np.fromiter((len(t) <= MAX_TERM_CHARS for t in names), dtype=bool, count=len(names))
        if not short.all():  # the compiled counter's rule: a longer term is not counted
            names, counts = names[short], counts[:, short].tocsr()
        terms = np.array(names, dtype=str)
    else:
        if fast and sum(map(len, texts)) >= _SMALL_TEXT:
            return None, count_terms([_clean(t) for t in texts], _stop_set(params), counter.columns, n_jobs=n_jobs)[1]
        counts = counter.fixed.transform(texts).tocsr()
        terms = None
    counts.sort_indices()  # columns ascending, as the compiled counter gives them: sums run in one order
    return terms, counts


def _counter(params: TextParams, vocabulary: Mapping[str, int] | None = None) -> CountVectorizer:
    return CountVectorizer(
        preprocessor=_clean,
        stop_words=sorted(_stop_set(params)) or None,
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


def fit_vocabulary(
    fields: Mapping[str, Sequence[str]], params: TextParams, *, n_jobs: int = 1
) -> tuple[Vocabulary, sp.csr_matrix]:
    """Learn terms and idf from the articles' fields and return their vectors.

    Parameters
    ----------
    fields : mapping of field name to a sequence of n strings
    params : TextParams
    n_jobs : int
        Threads for counting terms.

    Returns
    -------
    vocabulary : Vocabulary
    vectors : csr_matrix of shape (n, n_terms), float32, rows of unit norm (or zero)
    """
    counts = count_fields(fields, params, n_jobs=n_jobs)
    n_docs = counts.n_docs
    columns, idf = kept_terms(document_frequencies(counts), n_docs, params)
    if columns.size == 0:
        empty = Vocabulary(np.array([], dtype=str), np.array([], dtype=np.float32))
        return empty, sp.csr_matrix((n_docs, 0), dtype=np.float32)
    column_of = np.full(len(counts.terms), -1, dtype=np.int64)
    column_of[columns] = np.arange(columns.size)
    # One block of articles at a time keeps the temporaries (slices, sums) to a block, whatever n.
    parts = [tfidf_rows(counts, start, min(start + _BLOCK_ROWS, n_docs), column_of, idf) for start in
             range(0, n_docs, _BLOCK_ROWS)]  # fmt: skip
    terms = counts.terms[columns]
    del counts
    sparse = sp.vstack(parts, format="csr") if len(parts) != 1 else parts[0]
    del parts
    components = fit_components(sparse, params)
    weight = float(params.latent_weight) if components is not None else 0.0
    vocabulary = Vocabulary(terms, idf, components, weight)
    return vocabulary, blend(sparse, vocabulary)


@dataclass(frozen=True, eq=False)
class FieldCounts:
    """Term counts of the weighted fields of ``n_docs`` articles (:func:`count_fields`).

    ``counts`` stacks the fields: row ``f * n_docs + i`` is field ``weights[f]`` of
    article ``i``, columns are ``terms`` (every token seen, sorted by code point),
    each row's columns ascending.
    """

    terms: np.ndarray
    counts: sp.csr_matrix
    weights: tuple[float, ...]
    n_docs: int

    def __sizeof__(self) -> int:
        """Bytes held, arrays included (what Dask counts as a task result's memory, and spills)."""
        matrix = self.counts
        arrays = (self.terms, matrix.data, matrix.indices, matrix.indptr)
        return object.__sizeof__(self) + sum(int(a.nbytes) for a in arrays)

    def rows(self, start: int, stop: int) -> list[tuple[float, sp.csr_matrix]]:
        """(weight, counts of articles ``start:stop``) of each field."""
        n = self.n_docs
        return [(w, self.counts[f * n + start : f * n + stop]) for f, w in enumerate(self.weights)]


def count_fields(fields: Mapping[str, Sequence[str]], params: TextParams, *, n_jobs: int = 1) -> FieldCounts:
    """Learn the terms of the articles' weighted fields and count them (the first step of fitting)."""
    texts = _field_texts(fields, params)
    n_docs = len(next(iter(fields.values()), ())) if not texts else len(texts[0][1])
    stacked = [t for _, field in texts for t in field]
    try:
        terms, counts = _counts(stacked, params, None, n_jobs)
    except ValueError:  # scikit-learn's counter: nothing but stop words (or no text) anywhere
        terms, counts = np.array([], dtype=str), sp.csr_matrix((len(stacked), 0), dtype=np.float32)
    return FieldCounts(terms, counts, tuple(w for w, _ in texts), n_docs)


def document_frequencies(counts: FieldCounts) -> np.ndarray:
    """Articles holding each term in any field, shape (len(terms),), int64 (one compiled pass)."""
    indptr, indices = _checked_counts(counts)
    return _kernel("df")(indptr, indices, counts.n_docs, len(counts.weights), len(counts.terms))


def _checked_counts(counts: FieldCounts) -> tuple[np.ndarray, np.ndarray]:
    """The stacked counts' row pointers (int64) and terms (as stored), after checking the bounds the kernels
    rely on."""
    matrix = counts.counts
    indptr = np.ascontiguousarray(matrix.indptr, dtype=np.int64)
    indices = np.ascontiguousarray(matrix.indices)
    rows = len(counts.weights) * counts.n_docs
    if matrix.shape != (rows, len(counts.terms)) or indptr.shape != (rows + 1,):
        raise AssertionError("term counts: shape does not match the fields and terms")
    if indptr[0] != 0 or indptr[-1] != indices.size or (np.diff(indptr) < 0).any():
        raise AssertionError("term counts: row pointers out of order")
    if indices.size and (indices.min() < 0 or indices.max() >= len(counts.terms)):
        raise AssertionError("term counts: terms out of range")
    if not matrix.has_sorted_indices:
        raise AssertionError("term counts: each row's terms must be ascending")
    return indptr, indices


def _article_df(indptr, indices, n_docs, n_fields, width):  # pragma: no cover - compiled by numba
    """Articles whose field rows (row ``f * n_docs + i`` for article ``i``) hold each term."""
    df = np.zeros(width, dtype=np.int64)
    mark = np.full(width, -1, dtype=np.int64)
    for i in range(n_docs):
        for f in range(n_fields):
            row = f * n_docs + i
            for p in range(indptr[row], indptr[row + 1]):
                term = indices[p]
                if mark[term] != i:
                    mark[term] = i
                    df[term] += 1
    return df


def kept_terms(df: np.ndarray, n_docs: int, params: TextParams) -> tuple[np.ndarray, np.ndarray]:
    """The terms kept by ``min_df``/``max_df`` (positions in the terms) and their idf."""
    keep = (df >= params.min_df) & (df <= params.max_df * n_docs)
    columns = np.flatnonzero(keep)
    idf = (np.log((1.0 + n_docs) / (1.0 + df[columns])) + 1.0).astype(np.float32)
    return columns, idf


def tfidf_rows(counts: FieldCounts, start: int, stop: int, column_of: np.ndarray, idf: np.ndarray) -> sp.csr_matrix:
    """Unit TF-IDF rows (before the latent blend) of articles ``start:stop``.

    ``column_of`` maps each of ``counts.terms`` to its column in the vocabulary, -1
    for a term not kept; it must be increasing where it is not -1, so that each
    row's columns stay ascending (the order its norm is summed in). One compiled
    pass merges each article's field rows: the weighted term frequencies of a
    column added in field order, times the idf, then divided by the row's norm
    (squares summed in column order), all in float32. Fitting, the build on Dask
    and :func:`vectorise` all go through here, so one text gets one vector.
    """
    n_docs = counts.n_docs
    if not 0 <= start <= stop <= n_docs:
        raise ValueError(f"tfidf_rows: rows {start}:{stop} outside 0:{n_docs}.")
    # only these articles' rows, stacked by field as in ``counts``: checked and weighted, whatever n
    block = counts
    if (start, stop) != (0, n_docs) and counts.weights:
        fields = sp.vstack([m for _, m in counts.rows(start, stop)], format="csr")
        block = FieldCounts(counts.terms, fields, counts.weights, stop - start)
    indptr, indices = _checked_counts(block)
    column_of = np.ascontiguousarray(column_of, dtype=np.int64)
    idf = np.ascontiguousarray(idf, dtype=np.float32)
    width = len(idf)
    if column_of.shape != (len(counts.terms),) or (column_of.size and column_of.max() >= width):
        raise ValueError("tfidf_rows: column_of must map every term to a column below len(idf), or -1.")
    kept = column_of[column_of >= 0]
    if (np.diff(kept) <= 0).any():
        raise ValueError("tfidf_rows: column_of must be increasing where it is not -1.")
    size = stop - start
    data = block.counts.data
    weighted = np.empty(data.size, dtype=np.float32)  # weight * (1 + ln count)
    for f, w in enumerate(block.weights):
        a, b = indptr[f * size], indptr[(f + 1) * size]
        weighted[a:b] = w * (1.0 + np.log(data[a:b].astype(np.float32, copy=False), dtype=np.float32))
    out_indptr = np.zeros(size + 1, dtype=np.int64)
    out_indices = np.empty(data.size, dtype=np.int32)  # a row has at most its fields' entries
    out_data = np.empty(data.size, dtype=np.float32)
    _kernel("tfidf")(indptr, indices, weighted, size, len(block.weights), 0, size, column_of, idf, out_indptr,
                     out_indices, out_data)  # fmt: skip
    used = int(out_indptr[-1])
    return sp.csr_matrix((out_data[:used].copy(), out_indices[:used].copy(), out_indptr), shape=(stop - start, width))


def _tfidf_pass(
    indptr, indices, weighted, n_docs, n_fields, start, stop, column_of, idf, out_indptr, out_indices, out_data
):  # pragma: no cover - compiled by numba
    """Each article's field rows merged by column (terms not kept skipped), the weighted values of a column
    added in field order, times its idf, and the row divided by its norm (squares summed in column order).
    ``out_*`` hold at least the rows' entries of all fields."""
    pos = np.empty(n_fields, dtype=np.int64)
    end = np.empty(n_fields, dtype=np.int64)
    k = 0
    for i in range(start, stop):
        for f in range(n_fields):
            pos[f] = indptr[f * n_docs + i]
            end[f] = indptr[f * n_docs + i + 1]
        first = k
        while True:
            best = -1
            for f in range(n_fields):
                while pos[f] < end[f] and column_of[indices[pos[f]]] < 0:
                    pos[f] += 1
                if pos[f] < end[f]:
                    c = column_of[indices[pos[f]]]
                    if best < 0 or c < best:
                        best = c
            if best < 0:
                break
            value = np.float32(0.0)
            found = False
            for f in range(n_fields):
                if pos[f] < end[f] and column_of[indices[pos[f]]] == best:
                    value = weighted[pos[f]] if not found else value + weighted[pos[f]]
                    found = True
                    pos[f] += 1
            out_indices[k] = best
            out_data[k] = value * idf[best]
            k += 1
        total = np.float32(0.0)
        for q in range(first, k):
            total += out_data[q] * out_data[q]
        norm = np.sqrt(total)
        if norm == 0:
            norm = np.float32(1.0)
        for q in range(first, k):
            out_data[q] /= norm
        out_indptr[i - start + 1] = k


_KERNELS: dict[str, Callable[..., Any]] = {}
_KERNELS_LOCK = threading.Lock()


def _kernel(name: str) -> Callable[..., Any]:
    """A compiled kernel of this module (compiled on first use, cached on disk)."""
    with _KERNELS_LOCK:  # two threads asking at once compile once
        if not _KERNELS:
            import numba

            _KERNELS["df"] = numba.njit(cache=True, nogil=True)(_article_df)
            _KERNELS["tfidf"] = numba.njit(cache=True, nogil=True)(_tfidf_pass)
        return _KERNELS[name]


def fit_components(sparse: sp.csr_matrix, params: TextParams) -> np.ndarray | None:
    """Right singular vectors of the term matrix (of :func:`latent_sample` of its rows), or None when the blend is
    off or impossible."""
    return sample_components(sparse[latent_sample(sparse.shape[0])], sparse.shape[0], params)


def sample_components(sample: sp.csr_matrix, n: int, params: TextParams) -> np.ndarray | None:
    """:func:`fit_components` of an ``n``-row term matrix from its rows :func:`latent_sample` alone (``sample``,
    in that order): what the build on Dask gathers, instead of every row."""
    count = min(int(params.latent_components), sample.shape[1] - 1, n - 1)
    if params.latent_weight <= 0 or count < 1:
        return None
    svd = TruncatedSVD(n_components=count, algorithm="randomized", n_iter=7, random_state=0)
    # explained_variance_ratio_ (unused here) is 0/0 when all rows agree
    with np.errstate(invalid="ignore", divide="ignore"):
        svd.fit(sample)
    return svd.components_.astype(np.float32)


def latent_sample(n: int) -> np.ndarray:
    """The rows the latent components are fitted on: all ``n`` up to :data:`LATENT_SAMPLE`, else that many spread
    evenly over the rows (``floor(q n / LATENT_SAMPLE)``, ascending), the same on every path that fits."""
    if n <= LATENT_SAMPLE:
        return np.arange(n, dtype=np.int64)
    return np.arange(LATENT_SAMPLE, dtype=np.int64) * n // LATENT_SAMPLE


def blend(sparse: sp.csr_matrix, vocabulary: Vocabulary) -> sp.csr_matrix:
    """Append the weighted latent part to unit term vectors (see the module docstring)."""
    if vocabulary.components is None:
        return sparse
    sparse = sparse.tocsr()
    sparse.sort_indices()
    latent = np.asarray(sparse @ vocabulary.components.T, dtype=np.float32)
    norms = np.linalg.norm(latent, axis=1, keepdims=True)
    latent = np.divide(latent, norms, out=np.zeros_like(latent), where=norms > 0)
    weight = vocabulary.latent_weight
    # Each row: its term entries, then its latent entries (columns n_terms ...), written
    # straight into the arrays of the result (an hstack would go through COO, twice the size).
    n, width = latent.shape
    n_terms = sparse.shape[1]
    indptr = sparse.indptr.astype(np.int64) + width * np.arange(n + 1, dtype=np.int64)
    slots = np.zeros(int(indptr[-1]), dtype=bool)
    slots[(indptr[1:, None] - width + np.arange(width)).ravel()] = True  # the latent slots
    data = np.empty(slots.size, dtype=np.float32)
    indices = np.empty(slots.size, dtype=np.int32)
    data[~slots] = sparse.data * np.float32(np.sqrt(1.0 - weight))
    indices[~slots] = sparse.indices
    data[slots] = (latent * np.float32(np.sqrt(weight))).ravel()
    indices[slots] = np.tile(np.arange(n_terms, n_terms + width, dtype=np.int32), n)
    del slots, latent
    combined = sp.csr_matrix((data, indices, indptr), shape=(n, n_terms + width))
    combined.eliminate_zeros()
    return _unit_rows(combined)


def _unit_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    matrix = matrix.tocsr().astype(np.float32, copy=False)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel()).astype(np.float32)
    norms[norms == 0] = 1.0
    matrix.data /= np.repeat(norms, np.diff(matrix.indptr))
    matrix.sort_indices()
    return matrix


def vectorise(
    fields: Mapping[str, Sequence[str]],
    vocabulary: Vocabulary,
    params: TextParams,
    counter: TermCounter | None = None,
) -> sp.csr_matrix:
    """Vectors of articles over a fitted vocabulary (terms outside it are ignored).

    ``counter`` (:func:`term_counter`) may be cached by the caller for speed.
    """
    texts = _field_texts(fields, params)
    n_docs = len(texts[0][1]) if texts else 0
    if len(vocabulary) == 0:
        return sp.csr_matrix((n_docs, vocabulary.width), dtype=np.float32)
    counter = counter if counter is not None else term_counter(vocabulary, params)
    _, stacked = _counts([t for _, field in texts for t in field], params, counter, 1)  # one call for all fields
    counts = FieldCounts(vocabulary.terms, stacked.tocsr(), tuple(w for w, _ in texts), n_docs)
    every = np.arange(len(vocabulary), dtype=np.int64)  # the counts' columns are the vocabulary's
    return blend(tfidf_rows(counts, 0, n_docs, every, vocabulary.idf), vocabulary)


def unknown_tokens(fields: Mapping[str, Sequence[str]], vocabulary: Vocabulary, params: TextParams) -> tuple[int, int]:
    """``(tokens not in the vocabulary, tokens)`` over the weighted fields of ``fields``."""
    analyzer = build_analyzer(params)
    known = set(vocabulary.terms.tolist())
    total = missing = 0
    for _, field in _field_texts(fields, params):
        for text in field:
            for term in analyzer(text):
                total += 1
                missing += term not in known
    return missing, total
