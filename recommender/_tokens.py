"""Term counting: cleaned texts in, a sparse matrix of term counts out, the same counts as scikit-learn's.

scikit-learn's ``CountVectorizer`` finds tokens with a Python regular
expression and counts them in a Python loop, a dictionary update per token.
For the default word pattern ``\\b\\w\\w+\\b`` (runs of two or more word
characters), the same counts come out of compiled passes that release the
GIL, so blocks of 4,096 texts run on ``n_jobs`` threads:

* a numba scan over each block's UTF-8 bytes copies out every run of two or
  more word characters, up to :data:`MAX_TERM_CHARS` (``_scan``);
* pyarrow dictionary-encodes the tokens of each block; the blocks'
  dictionaries are unified into one, stop words are dropped on that
  dictionary (not per token), and the kept terms are sorted by code point as
  scikit-learn sorts them;
* a compiled pass counts each text's terms into CSR rows with sorted columns
  (``_distinct``, ``_rows``).

"Word character" is exactly what Python's ``re`` means by ``\\w`` on this
interpreter (``str.isalnum()`` or ``_``): the scan's table is built from
Python's own Unicode data, so the tokens are those of scikit-learn's analyzer
on every text. Other token patterns and word n-grams use scikit-learn's
analyzer (see :func:`fast_path`). Every array a kernel indexes is checked
first (text ends against the buffer, token parents and codes against their
ranges).
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

__all__ = ["DEFAULT_PATTERNS", "MAX_TERM_CHARS", "count_terms", "fast_path"]

#: Token patterns with the fast path: Python's default and scikit-learn's spelling of it.
DEFAULT_PATTERNS = (r"(?u)\b\w\w+\b", r"\b\w\w+\b")
#: Texts per block handed to one thread.
_BLOCK = 4096
#: Entries of the term counts put in column order at a time (``_rows``; more for a text with more terms, or for a
#: quarter of the terms when that is more).
_ORDER_ENTRIES = 1 << 20
#: The longest term counted, in characters (code points): a longer run of word characters (a hash, a base64 run,
#: words run together) is not a term. Terms are kept in fixed-width arrays, as wide as the longest one, so a
#: single longer token would make every term's slot as wide: one 20,000-character token in 5,000 articles made
#: the vocabulary 3.4 GB. The real corpora we test on have no word this long (their longest are joined-up link
#: names and lines of underscores).
MAX_TERM_CHARS = 64


@functools.lru_cache(maxsize=16)
def _value_set(words: frozenset[str]) -> pa.Array:
    return pa.array(sorted(words), type=pa.large_string())


def fast_path(token_pattern: str, ngram_range: Sequence[int]) -> bool:
    """Whether :func:`count_terms` gives exactly scikit-learn's tokens for these settings."""
    return token_pattern in DEFAULT_PATTERNS and tuple(ngram_range) == (1, 1)


@functools.cache
def _word_table() -> np.ndarray:
    """``table[c]``: whether code point ``c`` is a word character of Python's ``re`` (``\\w``) here."""
    table = np.fromiter((chr(c).isalnum() for c in range(sys.maxunicode + 1)), dtype=bool, count=sys.maxunicode + 1)
    table[ord("_")] = True
    table[0xD800:0xE000] = False  # lone surrogates (kept by "surrogatepass") are never word characters
    return table


def _scan(buffer, ends, word, longest, out, offsets, parents):  # pragma: no cover - compiled by numba
    """Tokens of each text in ``buffer`` (UTF-8 bytes; text ``i`` ends at ``ends[i]``), copied one after another.

    A token is a run of two to ``longest`` code points ``c`` with ``word[c]`` (a longer run is skipped). Token
    ``t`` is ``out[offsets[t]:offsets[t + 1]]``, from text ``parents[t]``.
    Returns the number of tokens. ``out`` holds ``buffer.size`` bytes,
    ``parents`` and ``offsets`` at least ``buffer.size // 3 + ends.size + 2``
    entries (a token takes two bytes or more and, but at the end of a text, a
    separator byte after it), so no write can leave them.
    """
    limit = word.size
    count = 0
    used = 0
    offsets[0] = 0
    begin = 0
    for doc in range(ends.size):
        stop = ends[doc]
        at = begin
        start = -1
        chars = 0
        while at < stop:
            byte = np.int64(buffer[at])
            code = limit  # not a word character unless decoded below
            step = 1
            if byte < 0x80:
                code = byte
            elif byte >= 0xF0:
                if at + 3 < stop:
                    code = ((byte & 0x07) << 18) | ((np.int64(buffer[at + 1]) & 0x3F) << 12)
                    code |= ((np.int64(buffer[at + 2]) & 0x3F) << 6) | (np.int64(buffer[at + 3]) & 0x3F)
                    step = 4
            elif byte >= 0xE0:
                if at + 2 < stop:
                    code = (
                        ((byte & 0x0F) << 12)
                        | ((np.int64(buffer[at + 1]) & 0x3F) << 6)
                        | (np.int64(buffer[at + 2]) & 0x3F)
                    )
                    step = 3
            elif byte >= 0xC0:
                if at + 1 < stop:
                    code = ((byte & 0x1F) << 6) | (np.int64(buffer[at + 1]) & 0x3F)
                    step = 2
            if code < limit and word[code]:
                if start < 0:
                    start = at
                    chars = 0
                chars += 1
            elif start >= 0:
                if 2 <= chars <= longest:
                    for k in range(start, at):  # a loop: a slice copy costs more than a token's few bytes
                        out[used] = buffer[k]
                        used += 1
                    parents[count] = doc
                    count += 1
                    offsets[count] = used
                start = -1
            at += step
        if start >= 0 and 2 <= chars <= longest:
            for k in range(start, stop):
                out[used] = buffer[k]
                used += 1
            parents[count] = doc
            count += 1
            offsets[count] = used
        begin = stop
    return count


def _rows(parents, codes, column, indptr, indices, data, mark, slot, cap):  # pragma: no cover - compiled by numba
    """CSR rows of term counts from tokens in text order: token ``t`` of text ``parents[t]`` (ascending) is
    term ``column[codes[t]]`` (-1: not counted); ``indptr`` from :func:`_distinct`. ``mark[c]`` is the last
    text that counted term ``c``, ``slot[c]`` where.

    Each row's columns end ascending without a sort per text: the entries of a run of texts are put in column
    order by counting (texts ascending within a column; ``slot``, no longer needed, holds where each column's
    entries go) and written back text by text, at most ``cap`` entries at a time (``cap`` at least the entries of
    the longest text, so that any one text fits)."""
    fill = indptr[:-1].copy()
    for t in range(parents.shape[0]):
        c = column[codes[t]]
        if c < 0:
            continue
        d = parents[t]
        if mark[c] != d:
            mark[c] = d
            slot[c] = fill[d]
            indices[fill[d]] = c
            data[fill[d]] = 1
            fill[d] += 1
        else:
            data[slot[c]] += 1
    n = indptr.shape[0] - 1
    width = mark.shape[0]
    text_of = np.empty(cap, dtype=np.int32)
    count_of = np.empty(cap, dtype=np.int64)
    r0 = 0
    while r0 < n:
        r1 = r0 + 1
        while r1 < n and indptr[r1 + 1] - indptr[r0] <= cap:
            r1 += 1
        slot[:] = 0
        for e in range(indptr[r0], indptr[r1]):
            slot[indices[e]] += 1
        total = 0
        for c in range(width):  # slot[c]: where column c's first entry goes
            size = slot[c]
            slot[c] = total
            total += size
        for r in range(r0, r1):  # slot[c]: where column c's next entry goes
            for e in range(indptr[r], indptr[r + 1]):
                c = indices[e]
                at = slot[c]
                slot[c] = at + 1
                text_of[at] = r
                count_of[at] = data[e]
        for r in range(r0, r1):
            fill[r] = indptr[r]
        at = 0
        for c in range(width):  # slot[c]: now where column c's entries end
            while at < slot[c]:
                r = text_of[at]
                indices[fill[r]] = c
                data[fill[r]] = count_of[at]
                fill[r] += 1
                at += 1
        r0 = r1


def _distinct(parents, codes, column, n_docs, mark):  # pragma: no cover - compiled by numba
    """Distinct counted terms of each text."""
    sizes = np.zeros(n_docs + 1, dtype=np.int64)
    for t in range(parents.shape[0]):
        c = column[codes[t]]
        if c >= 0 and mark[c] != parents[t]:
            mark[c] = parents[t]
            sizes[parents[t] + 1] += 1
    return sizes


_KERNELS: dict[str, object] = {}
_KERNELS_LOCK = threading.Lock()


def _kernel(name: str):  # type: ignore[no-untyped-def]
    with _KERNELS_LOCK:  # two threads asking at once compile once
        if not _KERNELS:
            for key, function in (("scan", _scan), ("distinct", _distinct), ("rows", _rows)):
                _KERNELS[key] = numba.njit(cache=True, nogil=True)(function)
        return _KERNELS[name]


def _tokens(texts: Sequence[str]) -> tuple[pa.DictionaryArray, np.ndarray]:
    """The tokens of ``texts`` in order, dictionary-encoded, and the index of the text each came from."""
    encoded = [t.encode("utf-8", "surrogatepass") for t in texts]
    ends = np.cumsum([len(e) for e in encoded], dtype=np.int64)
    buffer = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    size = buffer.size
    if ends.size and (ends[-1] != size or (np.diff(ends) < 0).any()):  # the bounds the kernel relies on
        raise AssertionError("token scan: text ends do not match the buffer")
    out = np.empty(size, dtype=np.uint8)
    # a token takes two bytes or more and, but at the end of a text, one byte after it: at most this many
    most = size // 3 + ends.size + 2
    offsets = np.empty(most, dtype=np.int64)
    parents = np.empty(most, dtype=np.int64)
    count = int(_kernel("scan")(buffer, ends, _word_table(), MAX_TERM_CHARS, out, offsets, parents))
    tokens = pa.LargeStringArray.from_buffers(count, pa.py_buffer(offsets[: count + 1]), pa.py_buffer(out))
    # a copy: a view would keep the whole scratch array (half the text's bytes, in int64) alive
    return pc.dictionary_encode(tokens), parents[:count].astype(np.int32)


def _blocks(texts: Sequence[str], n_jobs: int) -> tuple[pa.ChunkedArray, np.ndarray]:
    """The tokens of all ``texts`` (one dictionary), block by block on ``n_jobs`` threads, and their texts."""
    work = [(texts[s : s + _BLOCK], s) for s in range(0, len(texts), _BLOCK)]

    def one(item):
        block, start = item
        tokens, parents = _tokens(block)
        return tokens, parents + np.int32(start)

    found = _map(one, work, n_jobs)
    empty = pc.dictionary_encode(pa.array([], type=pa.large_string()))
    tokens = pa.chunked_array([t for t, _ in found] or [empty], type=empty.type).unify_dictionaries()
    parents = np.concatenate([p for _, p in found]) if found else np.empty(0, np.int32)
    return tokens, parents


def _map(function: Callable[[Any], Any], items: list[Any], threads: int) -> list[Any]:
    """``[function(x) for x in items]``, on up to ``threads`` threads (the kernels here release the GIL)."""
    if threads <= 1 or len(items) <= 1:
        return [function(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(threads, len(items))) as pool:
        return list(pool.map(function, items))


def _count_rows(
    parents: np.ndarray, codes: np.ndarray, column: np.ndarray, n_docs: int, width: int, n_jobs: int = 1
) -> sp.csr_matrix:
    """Term counts from tokens in text order (see ``_rows``), after checking the bounds the kernels rely on.

    With ``n_jobs`` > 1 the texts are cut into that many runs, each counted on its own thread (its own
    ``mark`` and ``slot``, its own rows of the result); the counts are the same."""
    parents = np.ascontiguousarray(parents, dtype=np.int32)
    codes = np.ascontiguousarray(codes, dtype=np.int32)
    column = np.ascontiguousarray(column, dtype=np.int64)
    if parents.shape != codes.shape or (parents.size and (parents[0] < 0 or parents[-1] >= n_docs)):
        raise AssertionError("term counts: token parents out of range")
    # (slices compared, not np.diff: no temporary of the tokens' size in int64)
    if parents.size and ((parents[1:] < parents[:-1]).any() or codes.min() < 0 or codes.max() >= column.size):
        raise AssertionError("term counts: tokens out of order or codes out of range")
    if column.size and column.max() >= width:
        raise AssertionError("term counts: columns out of range")
    runs = max(1, min(int(n_jobs), n_docs // 1024))  # texts d0 <= d < d1, their tokens t0 <= t < t1
    docs = np.linspace(0, n_docs, runs + 1).astype(np.int64)
    cuts = np.searchsorted(parents, docs)
    parts = [(int(docs[r]), int(docs[r + 1]), int(cuts[r]), int(cuts[r + 1])) for r in range(runs)]

    def local(part: tuple[int, int, int, int]) -> np.ndarray:  # a run's parents, as texts of the run
        d0, _, t0, t1 = part
        return parents[t0:t1] - np.int32(d0)

    def sizes_of(part: tuple[int, int, int, int]) -> np.ndarray:
        d0, d1, t0, t1 = part
        mark = np.full(max(width, 1), -1, dtype=np.int64)
        return _kernel("distinct")(local(part), codes[t0:t1], column, d1 - d0, mark)[1:]

    def fill(part: tuple[int, int, int, int]) -> None:
        d0, d1, t0, t1 = part
        mark = np.full(max(width, 1), -1, dtype=np.int64)
        slot = np.empty(max(width, 1), dtype=np.int64)
        bounds = indptr[d0 : d1 + 1]
        # entries put in column order at a time: any one text of the run fits, and a quarter of the columns at
        # least, so that the passes over the columns cost at most four per entry
        cap = max(_ORDER_ENTRIES, int(np.diff(bounds).max(initial=0)), width // 4, 1)
        _kernel("rows")(local(part), codes[t0:t1], column, bounds, indices, data, mark, slot, cap)

    sizes = _map(sizes_of, parts, runs)
    indptr = np.concatenate([[0], np.cumsum(np.concatenate(sizes))]).astype(np.int64)
    indices = np.empty(int(indptr[-1]), dtype=np.int32)
    data = np.empty(int(indptr[-1]), dtype=np.int64)  # integers: a float32 count would stop at 2**24
    _map(fill, parts, runs)
    return sp.csr_matrix((data.astype(np.float32), indices, indptr), shape=(n_docs, width))


def count_terms(
    texts: Sequence[str],
    stop_words: Collection[str],
    vocabulary: Mapping[str, int] | None = None,
    *,
    n_jobs: int = 1,
) -> tuple[np.ndarray, sp.csr_matrix]:
    """Term counts of cleaned ``texts``, shape (len(texts), n_terms), float32.

    With ``vocabulary`` (term -> column) the columns are its terms and other
    tokens are ignored; without, the terms are every token seen, sorted as
    scikit-learn sorts them (by code point), and returned.
    """
    if len(texts) >= 2**31:
        raise ValueError("count_terms: at most 2**31 - 1 texts per call.")
    tokens, parents = _blocks(list(texts), max(1, int(n_jobs)))
    dictionary = tokens.chunks[0].dictionary if tokens.num_chunks else pa.array([], type=pa.large_string())
    codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in tokens.chunks]).astype(np.int32)
    seen = np.asarray(dictionary.to_pylist(), dtype=object)
    stop = np.asarray(pc.is_in(dictionary, value_set=_value_set(frozenset(stop_words))))
    if vocabulary is None:
        kept = np.flatnonzero(~stop) if seen.size else np.empty(0, np.int64)
        order = kept[np.argsort(seen[kept].astype(str), kind="stable")] if kept.size else kept
        column = np.full(seen.size, -1, dtype=np.int64)
        column[order] = np.arange(order.size)
        terms = seen[order].astype(str) if order.size else np.array([], dtype=str)
        width = order.size
    else:
        column = np.array([vocabulary.get(t, -1) for t in seen.tolist()], dtype=np.int64)
        column[stop] = -1
        terms = None
        width = len(vocabulary)
    counts = _count_rows(parents, codes, column, len(texts), width, n_jobs=max(1, int(n_jobs)))
    return terms, counts
