"""Duplicates: which articles are copies of each other, and the groups shown once.

A *copy* is the same text published again: syndicated with a credit line and a
newsletter footer, under a new headline, cut after some paragraphs, lightly
edited (a corrected name or number), or with other whitespace, punctuation,
case or HTML. A follow-up, the next day's update, another outlet's own
write-up of the same event, a templated report about another company and a
reply in the same forum thread are *not* copies: they stay in each other's lists.

**The measure: word shingles with containment.** Copies are judged on each
article's own text, never on the TF-IDF vocabulary (which ``min_df``/``max_df``
prune to a dozen words on a small site):

1. *Own text* (:func:`own_text`): summary and body (the title only when both
   are empty: a headline may change, and an equal title alone never makes two
   articles one story). HTML tags and entities are removed, and lines of known
   boilerplate are dropped with fixed patterns (:data:`QUOTES`, :data:`CREDITS`,
   :data:`BOILERPLATE_PHRASES`, :data:`BYLINE`, :data:`LINK_BLOCKS`): bylines,
   syndication and copyright credits, newsletter, social and "Related:" lines
   (with the short link lines after them), photo credits, agency datelines and
   sign-offs, quoted lines of a reply (``>``, ``AB>``, ``|``, short ``:`` lines,
   "In article <...> writes:", "... wrote:"), and a signature block at the end
   (after a ``--`` line followed by at most ten lines of text, or else after a
   rule of dashes, underscores or the like followed by at most five short lines,
   or by at most ten closed by the same rule). Credits and prompts count only on
   short lines that do not end a sentence, so a paragraph that starts "Reporting
   by the Post found ..." or "Video by a bystander shows ..." stays. No statistic of the corpus is used,
   so a ten-article site gets the same judgement as a large one.
2. *Shingles*: the set of 5-word windows (:data:`SHINGLE_WORDS`) of the own
   text's words (letters and digits, lower case, accents and punctuation
   dropped), each hashed to 32 bits. A text of fewer than 5 words is one shingle.
3. *Containment* of two texts ``A`` and ``B`` with shingle sets ``S(A)``,
   ``S(B)``: ``|S(A) & S(B)| / min(|S(A)|, |S(B)|)``, the share of the shorter
   text found in the longer one; *resemblance* is ``|S(A) & S(B)| / |S(A) | S(B)|``.
   Containment rather than resemblance, because a copy cut after some paragraphs
   or padded with a footer resembles its original only in part but is wholly
   contained in it.
4. **The rule.** Two articles are copies when their normalised texts are equal
   (:func:`text_keys`), or when (a) they share at least :data:`MIN_SHINGLES`
   (20) shingles of non-boilerplate text (about 24 words: a shared footer or
   signature that the patterns miss cannot make two short articles copies, and a
   text too short to judge is a copy only when exactly equal) and (b) the
   containment is at least the threshold (the model's ``duplicate_threshold``,
   default :data:`DEFAULT_THRESHOLD`).

   *The edit budget.* Changing a share ``e`` of the words at scattered places
   removes about ``1 - (1 - e) ** 5`` of the shingles: ``e = 5%`` leaves a
   containment of 0.77, ``e = 10%`` leaves 0.59. The default threshold 0.7
   therefore accepts up to about 7% of the words changed (more when the changes
   are bunched in one passage) and rejects a template filled with another
   company's names and figures, which changes far more.
5. *Estimates at scale.* A long article keeps only the shingles whose hash has
   its lowest ``level`` bits zero, with ``level`` the smallest that leaves at
   most :data:`SAMPLE_CAP` (128) values; an article of up to 128 shingles keeps
   them all. Two articles are compared at the larger of their two levels, where
   both samples are exact samples of their sets (a value kept at level ``L`` is
   kept at every lower level), so a truncated copy is still wholly contained in
   its original's sample; counts at level ``L`` stand for ``2 ** L`` shingles.
   When the shorter text keeps fewer than 20 sampled shingles at that level (a
   short text against a long one), the estimate is coarse: it must keep at least
   :data:`MIN_SAMPLED` (8) and reach a containment of at least
   :data:`FEW_SAMPLED_CONTAINMENT` (0.9). The signatures are stored in the model
   (:class:`Signatures`), so ``add_articles``, ``update_articles`` and a loaded
   model judge exactly like ``fit``.

   *Why this and not MinHash.* A MinHash signature estimates resemblance; the
   containment of a short text in a long one follows from it only through the
   two sizes, with an error that grows as the sizes part (about 0.1 for a copy
   cut to a third, at 128 hashes). The nested sample above keeps subsets as
   subsets, costs one hash per shingle to build (not 128) and the same 512 bytes
   per article at most.

**Groups without chains.** The caller gives the candidate pairs (the model: each
article with the head of its neighbour pool, since copies are each other's
nearest neighbours, or every pair of a small model), and exact copies are always
one group, so the cost is linear in the number of articles. Copy pairs are merged
into groups strongest first (containment, then resemblance, then rows), and two
groups merge only when *every* member of one is a copy of every member of the
other (complete linkage, the pairs outside the candidates judged on demand):
every member of a group is a copy of every other member, and so of whichever
member is shown. A chain of near-misses (A copies B, B copies C, A does not copy
C) never makes one group.

**Known limits** (each a consequence of judging the text alone): automated posts
filled from one template (an earthquake bot, a results table) that differ in
fewer than about 7% of their words count as copies; so does a short piece that
is mostly a statement quoted whole in a longer one; a teaser of less than about a
tenth of a very long article is too little text against its sample to call a
copy; scripts written without spaces (Chinese, Thai) make one word per clause,
so their short texts are copies only when exactly equal.

**Representative** of a group: the member shown in lists, the newest, then the
most viewed, then the first in input order, among the members not blocked.

All functions are pure functions of arrays and strings.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import re
import threading
import unicodedata
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

try:  # compiled kernels (the same functions run as plain Python without numba)
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; this guards odd installs
    numba = None

__all__ = [
    "BOILERPLATE_PHRASES",
    "BYLINE",
    "CREDITS",
    "DEFAULT_THRESHOLD",
    "LINK_BLOCKS",
    "MIN_SHINGLES",
    "QUOTES",
    "SAMPLE_CAP",
    "SHINGLE_WORDS",
    "Signatures",
    "compare",
    "copy_labels",
    "duplicate_groups",
    "own_text",
    "representatives",
    "signatures",
    "text_keys",
]

#: Words per shingle.
SHINGLE_WORDS = 5
#: Sampled shingle values kept per article at most (see the module docstring, step 5).
SAMPLE_CAP = 128
#: Shingles two copies must share (about 24 words of non-boilerplate text), and sampled shingles of the shorter
#: text a comparison needs for the plain threshold.
MIN_SHINGLES = 20
#: A comparison resting on fewer than MIN_SHINGLES sampled shingles of the shorter text (a short text against a
#: long one) needs at least this many, and this containment.
MIN_SAMPLED = 8
FEW_SAMPLED_CONTAINMENT = 0.9
#: Default containment at which two articles are copies (``duplicate_threshold``).
DEFAULT_THRESHOLD = 0.7
#: Characters of own text read per article (a copy is judged on its first 100,000 characters).
MAX_CHARS = 100_000

_AGENCIES = r"reuters?|ap|afp|upi|dpa|ansa|efe|pa|aap|ians|pti|xinhua|kyodo|bloomberg|wire service"
# Every pattern is matched against a line with its surrounding whitespace stripped, and none starts with a
# repeat that can overlap the next one: no pattern backtracks more than linearly on hostile lines.
#: Quoted lines of a reply, matched at the start of a line of any length: "> ", "AB> ", "| ", "} ", "$> ".
QUOTES = r"(?:[A-Za-z]{1,3} ?)?>|[|}]|\$>"
#: Boilerplate lines, matched at the start of a short line (at most :data:`_CREDIT_LINE` characters) that does
#: not end a sentence: credits and sign-offs, photo and video credits, prompts to subscribe, share or follow.
CREDITS = (
    r"(?:additional )?(?:reporting|writing|editing|compiled|translated|produced) by\b",
    r"(?:photo|photograph|picture|image|video|graphic|illustration|caption|credit)s?(?: ?:| by\b)",
    r"\((?:ap|afp|reuters|getty|epa)\b[^)\n]{0,60}\)$",
    rf"[-\u2013\u2014(]{{0,3}} ?(?:end|ends|more|{_AGENCIES}) ?[-\u2013\u2014)]{{0,3}}$",
    r"(?:advertisement|advert|sponsored|promoted)$",
    r"(?:share this|click here|download (?:our|the) app|follow us\b)",
)
#: Boilerplate phrases anywhere in a short line (at most :data:`_SHORT_LINE` characters), sentence or not, in
#: lower case: syndication and copyright credits, newsletter prompts, corrections notes, reply attributions.
BOILERPLATE_PHRASES = (
    r"^(?:first|originally) (?:published|appeared|posted) (?:in|on|by|at)\b",
    r"\b(?:this|the) (?:article|story|piece|report|post|column|interview)\b[^.]{0,60}\b(?:first|originally) "
    r"(?:published|appeared|posted)\b",
    r"\b(?:republished|reprinted|reproduced|syndicated) (?:with|by|under|from)\b",
    r"\ball rights reserved\b",
    r"(?:©|\bcopyright\b) ?(?:© ?)?(?:19|20)\d\d",
    r"^©",
    r"\b(?:sign up|subscribe)\b[^.]{0,40}\b(?:newsletter|our|now|today|here|free|inbox|alerts)\b",
    r"^this (?:story|article|post|report) (?:was|has been|is) (?:updated|corrected|amended)\b",
    r"^in article ?<",
    r"^quoted from\b",
    r"\b(?:writes|wrote)(?: in [^:]{0,80})? ?:$",
)
#: Literal pieces of :data:`BOILERPLATE_PHRASES`: a line holding none of them cannot match (a fast first check).
_PHRASE_MARKS = (
    "published", "appeared", "posted", "republished", "reprinted", "reproduced", "syndicated", "reserved", "©",
    "copyright", "sign up", "subscribe", "updated", "corrected", "amended", "in article", "quoted from", "wrote",
    "writes",
)  # fmt: skip
#: A byline: "By" and capitalised words (names, titles, an outlet) filling a short line; case matters.
BYLINE = (
    r"(?:By|BY) [A-Z][^\s,|&/\u2013\u2014-]*"  # a name's words never hold the separators: no backtracking
    r"(?:[ \t,|&/\u2013\u2014-]+(?:[A-Z][^\s,|&/\u2013\u2014-]*|and|for|of|the|in|at|de|da|la|le|van|von|der|al|bin))*$"
)
#: A heading that starts a block of links (a line of at most 4 words, or a label with a colon): dropped with the
#: short lines (a headline each) that follow it.
LINK_BLOCKS = (
    r"(?:related|read more|read also|also read|more on this|more from|see also|recommended|you might like|"
    r"you may also like|most read|popular now|trending)\b"
)
#: Words a line after a link-block heading may have and still count as a link.
_LINK_WORDS = 15
#: Characters of a line checked for boilerplate phrases, and for credits; longer lines are paragraphs.
_SHORT_LINE = 300
_CREDIT_LINE = 120
#: Characters of a line quoted with a leading colon (":" quoting wraps short lines; news paragraphs may start so).
_COLON_QUOTE = 100
#: A signature block: at most this many lines after a separator line at the end of the text.
_SIGNATURE_LINES = 10
#: A line of a signature block after a rule has at most this many characters.
_SIGNATURE_WIDTH = 80
_DELIMITER = re.compile(r"--$")
_SEPARATOR = re.compile(r"([-_=*~#+])\1{2,}$")
_QUOTE = re.compile(QUOTES)
_CREDITS = re.compile("|".join(CREDITS), re.IGNORECASE)
_PHRASES = re.compile("|".join(BOILERPLATE_PHRASES))
_BYLINE = re.compile(BYLINE)
_LINK_BLOCK = re.compile(LINK_BLOCKS, re.IGNORECASE)
_DATELINE = re.compile(
    rf"(?:[A-Z][\w .,'/-]{{0,60}})?\((?:{_AGENCIES})\) ?[-\u2013\u2014:]{{1,3}} ?",
    re.IGNORECASE,
)
# [^<>]: a tag never spans another "<", so a run of "<" is read once, not 2,000 characters from each
_BLOCK_TAG = re.compile(
    r"<\s{0,5}/?\s{0,5}(?:p|br|div|li|ul|ol|h[1-6]|tr|table|blockquote|section|article|hr)\b[^<>]{0,2000}>", re.I
)
_TAG = re.compile(r"<[^<>]{0,2000}>")


# --------------------------------------------------------------------------- exact copies


#: What ``str.split()`` splits at.
_WHITESPACE = re.compile(r"\s")


def text_keys(titles: Sequence[str], summaries: Sequence[str], bodies: Sequence[str]) -> np.ndarray:
    """Stable 64-bit keys of the normalised full text (lower case, whitespace collapsed), shape (n,), int64.

    The key of ``title``, ``summary`` and ``body`` is the hash of their words in
    order, lower-cased and joined by one space (:func:`text_key`, in pieces of about
    :data:`_KEY_PIECE` characters: a 20 MB body costs a few pieces of memory, not a
    list of every word, and no field is ever cut). Articles whose
    fields are all ASCII (most, and a flag CPython keeps) are normalised by a
    compiled pass over :data:`_KEY_BLOCK` articles at a time, with the same
    bytes as a result; the others by :func:`text_key`.
    """
    n = len(titles)
    if not len(summaries) == len(bodies) == n:
        raise ValueError(f"text_keys: {n} titles, {len(summaries)} summaries and {len(bodies)} bodies.")
    keys = np.empty(n, dtype=np.int64)
    for start in range(0, n, _KEY_BLOCK):
        fields = list(zip(titles[start : start + _KEY_BLOCK], summaries[start : start + _KEY_BLOCK],
                          bodies[start : start + _KEY_BLOCK], strict=True))  # fmt: skip
        plain = []
        for i, (t, s, b) in enumerate(fields):
            if t.isascii() and s.isascii() and b.isascii():
                plain.append(i)
            else:
                keys[start + i] = text_key(t, s, b)
        if not plain:
            continue
        encoded = [" ".join(fields[i]).encode("ascii") for i in plain]
        ends = np.cumsum([len(e) for e in encoded], dtype=np.int64)
        buffer = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        if ends[-1] != buffer.size:  # the bound the kernel relies on
            raise AssertionError("text keys: text ends do not match the buffer")
        out = np.empty(buffer.size, dtype=np.uint8)
        out_ends = np.empty(len(plain), dtype=np.int64)
        _kernel("normalise")(buffer, ends, _KEY_TABLE, out, out_ends)
        view = memoryview(out)
        begin = 0
        for i, end in zip(plain, out_ends.tolist(), strict=True):
            digest = hashlib.blake2b(view[begin:end], digest_size=8).digest()
            keys[start + i] = int.from_bytes(digest, "little", signed=True)
            begin = end
    return keys


#: Articles normalised at a time by :func:`text_keys` (bounded temporaries whatever the corpus).
_KEY_BLOCK = 4096
#: Pairs compared per thread at least (:func:`compare`): fewer are not worth a thread.
_COMPARE_RUN = 20_000


def _normalise_ascii(buffer, ends, table, out, out_ends):  # pragma: no cover - compiled by numba
    """ASCII texts (text ``i`` ends at ``ends[i]`` in ``buffer``) lower-cased, each run of whitespace made one
    space, none at either end, written one after another to ``out`` (text ``i`` ends at ``out_ends[i]``);
    never longer than the input. ``table`` (:data:`_KEY_TABLE`) maps each byte to its lower case, and each
    byte that ``str.split`` splits at to a space. Without branches: every byte is written, and the end moves
    on but for a space after a space."""
    used = 0
    begin = 0
    for doc in range(ends.shape[0]):
        stop = ends[doc]
        first = used
        after_space = True  # spaces before the first word are dropped
        for at in range(begin, stop):
            byte = table[buffer[at]]
            space = byte == 32
            out[used] = byte
            used += 1 - (space & after_space)
            after_space = space
        if after_space and used > first:  # a space after the last word
            used -= 1
        out_ends[doc] = used
        begin = stop


#: The bytes of ASCII text for :func:`_normalise_ascii`: lower case, and what ``str.split`` splits at (bytes
#: 9-13 and 28-31, as ``str.isspace`` says) as a space.
_KEY_TABLE = np.array(
    [c if c >= 128 else 32 if chr(c).isspace() else ord(chr(c).lower()) for c in range(256)], dtype=np.uint8
)


#: Characters normalised at a time by :func:`text_key` (a piece ends at whitespace).
_KEY_PIECE = 1 << 16


def text_key(*fields: str) -> int:
    """The copy key of one article's fields (see :func:`text_keys`)."""
    digest = hashlib.blake2b(digest_size=8)
    started = False
    for text in fields:
        start, size = 0, len(text)
        while start < size:
            stop = start + _KEY_PIECE
            if stop < size:  # end the piece at whitespace, so that no word (nor a final sigma) is split
                cut = _WHITESPACE.search(text, stop)
                stop = size if cut is None else cut.start()
            words = text[start:stop].lower().split()
            if words:
                digest.update(((" " if started else "") + " ".join(words)).encode("utf-8"))
                started = True
            start = stop
    return int.from_bytes(digest.digest(), "little", signed=True)


def copy_labels(keys: np.ndarray) -> np.ndarray:
    """Label rows sharing a text key; -1 for rows without an exact copy. Shape (n,), int32."""
    codes, uniques = _factorize(keys)
    counts = np.bincount(codes, minlength=len(uniques))
    return np.where(counts[codes] > 1, codes, -1).astype(np.int32)


def _factorize(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniques, first, codes = np.unique(keys, return_index=True, return_inverse=True)
    # relabel by first appearance so labels do not depend on hash values
    rank = np.empty(len(uniques), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(uniques))
    return rank[codes.ravel()], uniques


# --------------------------------------------------------------------------- own text


def own_text(title: str, summary: str, body: str) -> str:
    """The text a copy is judged on: summary and body without boilerplate (see the module docstring).

    >>> own_text("Storm", "", "By Ann Lee\\nThe storm closed the harbour.\\nSign up for our newsletter!")
    'The storm closed the harbour.'
    """
    text = f"{summary}\n{body}" if summary and body else (summary or body or title)
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS]
    if "<" in text:
        text = _TAG.sub(" ", _BLOCK_TAG.sub("\n", text))
    if "&" in text:
        text = html.unescape(text)
    lines = _without_signature([line.strip() for line in text.splitlines()])
    kept = []
    in_links = False
    for line in lines:
        if not line:
            continue
        if in_links and len(line.split()) <= _LINK_WORDS:
            continue
        in_links = False
        if _is_link_heading(line):
            in_links = True
        elif not _is_boilerplate(line):
            kept.append(line)
    if kept:
        dateline = _DATELINE.match(kept[0])
        if dateline:
            kept[0] = kept[0][dateline.end() :]
    return "\n".join(kept).strip()


def _is_link_heading(line: str) -> bool:
    if not _LINK_BLOCK.match(line):
        return False
    words = len(line.split())
    return words <= 4 or (words <= 20 and ":" in line[:40])


def _is_boilerplate(line: str) -> bool:
    """One stripped line: a quoted line, a byline, a credit, a prompt or another boilerplate phrase."""
    if _QUOTE.match(line) or (line[0] == ":" and len(line) <= _COLON_QUOTE):
        return True
    if len(line) <= _CREDIT_LINE and line[-1] not in ".!?" and (_CREDITS.match(line) or _BYLINE.match(line)):
        return True
    return len(line) <= _SHORT_LINE and _has_phrase(line)


def _without_signature(lines: list[str]) -> list[str]:
    """Stripped lines before a signature block at the end: after the first "--" line followed by at most ten
    lines of text, or else after the first rule (a line of one repeated mark: dashes, underscores, pluses, ...)
    followed by at most five short lines, or by at most ten short lines closed by the same rule (a framed block)."""
    text = [at for at, line in enumerate(lines) if line]
    window = text[max(1, len(text) - 1 - _SIGNATURE_LINES) :]
    for at in window:
        if _DELIMITER.match(lines[at]):
            return lines[:at]
    last = lines[text[-1]] if text else ""
    for position, at in enumerate(window):
        rule = _SEPARATOR.match(lines[at])
        if rule is None:
            continue
        after = window[position + 1 :]
        if not after or any(len(lines[a]) > _SIGNATURE_WIDTH for a in after):
            continue
        framed = len(after) > 1 and last == lines[at]
        if len(after) <= _SIGNATURE_LINES // 2 or framed:
            return lines[:at]
    return lines


def _has_phrase(line: str) -> bool:
    low = line.lower()
    return any(mark in low for mark in _PHRASE_MARKS) and _PHRASES.search(low) is not None


# --------------------------------------------------------------------------- signatures


@dataclass(frozen=True)
class Signatures:
    """Sampled shingle sets of n articles (see the module docstring, step 5).

    Attributes
    ----------
    values : ndarray of shape (total,), uint32
        The kept shingle hashes, article after article, ascending within each.
    indptr : ndarray of shape (n + 1,), int64
        Article ``i`` owns ``values[indptr[i]:indptr[i + 1]]``.
    level : ndarray of shape (n,), uint8
        The sampling level: the kept values are those with ``level`` low bits zero.
    size : ndarray of shape (n,), int32
        Shingles of the article's own text (before sampling, repeats counted).
    """

    values: np.ndarray
    indptr: np.ndarray
    level: np.ndarray
    size: np.ndarray

    def __len__(self) -> int:
        return int(self.level.shape[0])

    def __sizeof__(self) -> int:
        """Bytes held, arrays included (what Dask counts as a task result's memory, and spills)."""
        return object.__sizeof__(self) + sum(int(a.nbytes) for a in (self.values, self.indptr, self.level, self.size))

    def take(self, rows: np.ndarray) -> Signatures:
        """The signatures of ``rows``, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, stops = self.indptr[rows], self.indptr[rows + 1]
        lengths = stops - starts
        indptr = np.zeros(rows.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        index = np.repeat(starts - indptr[:-1], lengths) + np.arange(int(indptr[-1]), dtype=np.int64)
        return Signatures(self.values[index], indptr, self.level[rows], self.size[rows])

    def concat(self, other: Signatures) -> Signatures:
        """These signatures followed by ``other``'s."""
        return Signatures.joined([self, other])

    @staticmethod
    def joined(parts: Sequence[Signatures]) -> Signatures:
        """The signatures of ``parts`` one after another (each array copied once, whatever the number of parts)."""
        if not parts:
            return Signatures(
                np.zeros(0, np.uint32), np.zeros(1, np.int64), np.zeros(0, np.uint8), np.zeros(0, np.int32)
            )
        starts = np.cumsum([0] + [int(p.indptr[-1]) for p in parts])
        return Signatures(
            np.concatenate([p.values for p in parts]),
            np.concatenate(
                [p.indptr[:-1] + start for p, start in zip(parts, starts[:-1], strict=True)] + [starts[-1:]]
            ),
            np.concatenate([p.level for p in parts]),
            np.concatenate([p.size for p in parts]),
        )

    def replace(self, rows: np.ndarray, other: Signatures) -> Signatures:
        """These signatures with those of ``rows`` replaced by ``other``'s (same order)."""
        rows = np.asarray(rows, dtype=np.int64)
        n = len(self)
        source = np.arange(n, dtype=np.int64)
        source[rows] = n + np.arange(rows.size)
        return self.concat(other).take(source)

    def check(self, n: int) -> None:
        """Raise ValueError unless these are consistent signatures of ``n`` articles."""
        values, indptr, level, size = self.values, self.indptr, self.level, self.size
        for name, array, dtype, shape in (
            ("values", values, np.uint32, None),
            ("indptr", indptr, np.int64, (n + 1,)),
            ("level", level, np.uint8, (n,)),
            ("size", size, np.int32, (n,)),
        ):
            if array.dtype != dtype or array.ndim != 1 or (shape is not None and array.shape != shape):
                raise ValueError(f"signature {name} has shape {array.shape} and dtype {array.dtype}")
        if indptr[0] != 0 or indptr[-1] != values.size or (np.diff(indptr) < 0).any():
            raise ValueError("signature offsets are not monotone from 0 to the number of values")
        if (level > 32).any() or (size < 0).any() or (np.diff(indptr) > size).any():
            raise ValueError("signature levels or sizes out of range")
        owner = np.repeat(np.arange(n), np.diff(indptr))
        ascending = values[1:] > values[:-1]
        if not (ascending | (owner[1:] != owner[:-1])).all():
            raise ValueError("signature values are not strictly ascending within each article")
        masks = (np.left_shift(np.uint64(1), level.astype(np.uint64)) - np.uint64(1))[owner]
        if (values.astype(np.uint64) & masks).any():
            raise ValueError("signature values do not match their sampling level")


def signatures(titles: Sequence[str], summaries: Sequence[str], bodies: Sequence[str]) -> Signatures:
    """The sampled shingle sets of articles' own texts.

    Returns
    -------
    Signatures
        Of ``len(titles)`` articles.
    """
    n = len(titles)
    parts = []
    block = 16_384  # articles per call of the kernel: bounded temporaries whatever n
    for start in range(0, n, block):
        stop = min(start + block, n)
        texts = [
            _folded(own_text(t, s, b))
            for t, s, b in zip(titles[start:stop], summaries[start:stop], bodies[start:stop], strict=True)
        ]
        encoded = [t.encode("utf-8", "surrogatepass") for t in texts]
        ends = np.cumsum([len(e) for e in encoded], dtype=np.int64)
        buffer = np.frombuffer(b"".join(encoded), dtype=np.uint8) if ends.size and ends[-1] else np.zeros(0, np.uint8)
        count = stop - start
        out = np.zeros((count, SAMPLE_CAP), dtype=np.uint32)
        kept = np.zeros(count, dtype=np.int64)
        level = np.zeros(count, dtype=np.uint8)
        size = np.zeros(count, dtype=np.int32)
        _kernel("shingle")(buffer, ends, _ASCII, SHINGLE_WORDS, out, kept, level, size)
        indptr = np.zeros(count + 1, dtype=np.int64)
        np.cumsum(kept, out=indptr[1:])
        mask = np.arange(SAMPLE_CAP)[None, :] < kept[:, None]
        parts.append(Signatures(out[mask], indptr, level, size))
    return Signatures.joined(parts)


def _folded(text: str) -> str:
    """Non-ASCII text in lower case with accents split off (the kernel lower-cases ASCII, skips combining marks)."""
    return text if text.isascii() else unicodedata.normalize("NFKD", text.lower())


# --------------------------------------------------------------------------- comparing


def compare(
    left: Signatures, left_rows: np.ndarray, right: Signatures, right_rows: np.ndarray, *, n_jobs: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Compare pairs ``(left[left_rows[p]], right[right_rows[p]])``, in runs of at least :data:`_COMPARE_RUN`
    pairs on up to ``n_jobs`` threads (the kernel does not hold the GIL; each run writes its own pairs).

    Returns
    -------
    shared : ndarray of shape (m,), float64
        Estimated shingles the two texts share.
    containment, resemblance : ndarray of shape (m,), float64
        See the module docstring (0 when either text has no shingles).
    sampled : ndarray of shape (m,), int64
        Sampled shingles of the shorter text at the level of the comparison
        (all of its shingles at level 0): how much text the figures rest on.
    """
    left_rows = np.asarray(left_rows, dtype=np.int64)
    right_rows = np.asarray(right_rows, dtype=np.int64)
    if left_rows.shape != right_rows.shape or left_rows.ndim != 1:
        raise ValueError("compare needs two 1-d row arrays of one length")
    for rows, signatures_ in ((left_rows, left), (right_rows, right)):
        if rows.size and (rows.min() < 0 or rows.max() >= len(signatures_)):
            raise IndexError("compare: rows outside the signatures")
    m = left_rows.size
    inter = np.zeros(m, dtype=np.int64)
    sizes = np.zeros((m, 2), dtype=np.int64)
    levels = np.zeros(m, dtype=np.int64)
    kernel = _kernel("compare")

    def run(bounds: tuple[int, int]) -> None:
        a, b = bounds
        kernel(
            left.values, left.indptr, left.level, right.values, right.indptr, right.level,
            left_rows[a:b], right_rows[a:b], inter[a:b], sizes[a:b], levels[a:b],
        )  # fmt: skip

    runs = max(1, min(int(n_jobs), m // _COMPARE_RUN))
    if runs == 1:  # the request path's few pairs: no pool
        run((0, m))
    else:
        cuts = np.linspace(0, m, runs + 1).astype(np.int64).tolist()
        with ThreadPoolExecutor(max_workers=runs, thread_name_prefix="recommender-compare") as pool:
            list(pool.map(run, itertools.pairwise(cuts)))
    smaller = sizes.min(axis=1)
    union = sizes.sum(axis=1) - inter
    containment = np.divide(inter, smaller, out=np.zeros(m), where=smaller > 0)
    resemblance = np.divide(inter, union, out=np.zeros(m), where=union > 0)
    shared = inter.astype(np.float64) * np.exp2(levels)
    return shared, containment, resemblance, smaller


def is_copy(shared: np.ndarray, containment: np.ndarray, sampled: np.ndarray, threshold: float) -> np.ndarray:
    """The copy rule (module docstring, step 4) on the output of :func:`compare`."""
    enough = (sampled >= MIN_SHINGLES) & (containment >= threshold)
    few = (sampled >= MIN_SAMPLED) & (containment >= max(threshold, FEW_SAMPLED_CONTAINMENT))
    return (shared >= MIN_SHINGLES) & (enough | few)


# --------------------------------------------------------------------------- groups


def duplicate_groups(
    pairs: np.ndarray,
    keys: np.ndarray,
    signatures_: Signatures | None,
    threshold: float | None,
    *,
    n_jobs: int = 1,
) -> np.ndarray:
    """Duplicate-group label of every row (the smallest row of its group), shape (n,), int64.

    Parameters
    ----------
    pairs : ndarray of shape (m, 2), int
        Candidate pairs of rows (the neighbour-pool pairs); order and repeats do
        not matter.
    keys : ndarray of shape (n,), int64
        :func:`text_keys`: equal keys are exact copies, always one group.
    signatures_ : Signatures or None
        Of the n rows; needed unless ``threshold`` is None.
    threshold : float or None
        Containment of a copy; None groups exact copies only.
    n_jobs : int
        Threads for comparing the candidate pairs.
    """
    n = keys.shape[0]
    node, _ = _factorize(keys)  # one node per distinct text: exact copies are one node
    first = np.full(int(node.max()) + 1 if n else 0, n, dtype=np.int64)
    np.minimum.at(first, node, np.arange(n))
    parent = np.arange(first.size)
    if threshold is not None and n and len(pairs):
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        a, b = node[pairs[:, 0]], node[pairs[:, 1]]
        keys_ = np.minimum(a, b) * first.size + np.maximum(a, b)
        keys_ = np.sort(keys_[a != b])
        keys_ = keys_[np.concatenate([[True], keys_[1:] != keys_[:-1]])] if keys_.size else keys_
        if keys_.size:
            unique = np.stack([keys_ // first.size, keys_ % first.size], axis=1)
            parent = _complete_linkage(unique, first, signatures_, float(threshold), parent, n_jobs)
    # label: the smallest row of each group
    root = parent[node]
    smallest = np.full(first.size, n, dtype=np.int64)
    np.minimum.at(smallest, root, np.arange(n))
    return smallest[root]


def _complete_linkage(
    node_pairs: np.ndarray,
    first: np.ndarray,
    signatures_: Signatures,
    threshold: float,
    parent: np.ndarray,
    n_jobs: int = 1,
) -> np.ndarray:
    """Merge copy pairs strongest first; two groups merge only if all their cross pairs are copies.

    ``node_pairs`` are distinct ``(x, y)`` pairs of nodes with ``x < y``, sorted; a cross pair outside them is
    judged when a merge needs it, all of one merge's pairs in one call.
    """
    n_nodes = first.size
    rows_a, rows_b = first[node_pairs[:, 0]], first[node_pairs[:, 1]]
    shared, containment, resemblance, sampled = compare(signatures_, rows_a, signatures_, rows_b, n_jobs=n_jobs)
    copy = is_copy(shared, containment, sampled, threshold)
    if not copy.any():
        return parent
    keys = node_pairs[:, 0] * n_nodes + node_pairs[:, 1]  # ascending, as the pairs are sorted
    edges = np.flatnonzero(copy)
    order = edges[np.lexsort((node_pairs[edges, 1], node_pairs[edges, 0], -resemblance[edges], -containment[edges]))]
    members: dict[int, np.ndarray] = {}

    def all_copies(left: np.ndarray, right: np.ndarray) -> bool:
        a, b = np.repeat(left, right.size), np.tile(right, left.size)
        low, high = np.minimum(a, b), np.maximum(a, b)
        wanted = low * n_nodes + high
        at = np.minimum(np.searchsorted(keys, wanted), keys.size - 1)
        known = keys[at] == wanted
        if not copy[at[known]].all():
            return False
        if known.all():
            return True
        s, c, _, m = compare(signatures_, first[low[~known]], signatures_, first[high[~known]])
        return bool(is_copy(s, c, m, threshold).all())

    for x, y in node_pairs[order].tolist():
        gx, gy = parent[x], parent[y]
        if gx == gy:
            continue
        mx = members.get(gx, np.array([gx], dtype=np.int64))
        my = members.get(gy, np.array([gy], dtype=np.int64))
        if all_copies(mx, my):
            keep, drop = (gx, gy) if gx < gy else (gy, gx)
            merged = np.concatenate([mx, my])
            members[keep] = merged
            members.pop(drop, None)
            parent[merged] = keep
    return parent


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


# --------------------------------------------------------------------------- kernels

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3


def _ascii_table() -> np.ndarray:
    """Per ASCII byte: 0 for a separator, else the byte in lower case."""
    table = np.zeros(128, dtype=np.uint8)
    for code in range(128):
        char = chr(code)
        if char.isascii() and char.isalnum():
            table[code] = ord(char.lower())
    return table


_ASCII = _ascii_table()


def _is_separator(code):  # pragma: no cover - compiled by numba
    """Non-ASCII codepoints that end a word: Latin-1 signs, general punctuation, symbols, CJK punctuation."""
    return (
        (code <= 0xBF)
        or code == 0xD7
        or code == 0xF7
        or (0x2000 <= code <= 0x2BFF)
        or (0x3000 <= code <= 0x303F)
        or (0xFE30 <= code <= 0xFE4F)
        or (0xFF00 <= code <= 0xFF0F)
        or (0xFF1A <= code <= 0xFF20)
        or code >= 0x1F000
    )


def _shingle_rows(buffer, ends, ascii_table, width, out, kept, level, size):  # pragma: no cover - compiled by numba
    """Sampled shingle hashes of each text in ``buffer`` (UTF-8 bytes; text ``i`` ends at ``ends[i]``).

    Words are runs of letters and digits (ASCII lower-cased through
    ``ascii_table``, other letters as they are, combining marks skipped), hashed
    with FNV-1a; a shingle is the FNV-1a combination of ``width`` word hashes,
    finalised with splitmix64, top 32 bits. The kept values are those with the
    ``level`` lowest bits zero, ``level`` the smallest leaving at most
    ``out.shape[1]`` distinct values, ascending.
    """
    cap = out.shape[1]
    offset = np.uint64(_FNV_OFFSET)
    prime = np.uint64(_FNV_PRIME)
    start = 0
    histogram = np.zeros(34, dtype=np.int64)
    for doc in range(ends.size):
        stop = ends[doc]
        tokens = np.empty(max(1, (stop - start) // 2 + 1), dtype=np.uint64)
        count = 0
        h = offset
        in_word = False
        at = start
        while at < stop:
            byte = int(buffer[at])  # int: plain Python (no numba) must not do uint8 arithmetic
            if byte < 0x80:
                lowered = ascii_table[byte]
                if lowered == 0:
                    if in_word:
                        tokens[count] = h
                        count += 1
                        in_word = False
                        h = offset
                else:
                    h = (h ^ np.uint64(lowered)) * prime
                    in_word = True
                at += 1
                continue
            code = 0
            step = 1
            if byte >= 0xF0 and at + 3 < stop:
                code = ((byte & 0x07) << 18) | ((int(buffer[at + 1]) & 0x3F) << 12)
                code |= ((int(buffer[at + 2]) & 0x3F) << 6) | (int(buffer[at + 3]) & 0x3F)
                step = 4
            elif byte >= 0xE0 and at + 2 < stop:
                code = ((byte & 0x0F) << 12) | ((int(buffer[at + 1]) & 0x3F) << 6) | (int(buffer[at + 2]) & 0x3F)
                step = 3
            elif byte >= 0xC0 and at + 1 < stop:
                code = ((byte & 0x1F) << 6) | (int(buffer[at + 1]) & 0x3F)
                step = 2
            if 0x300 <= code <= 0x36F:  # a combining mark (an accent split off): inside the word, not hashed
                pass
            elif _is_separator(code):
                if in_word:
                    tokens[count] = h
                    count += 1
                    in_word = False
                    h = offset
            else:
                for k in range(step):
                    h = (h ^ np.uint64(buffer[at + k])) * prime
                in_word = True
            at += step
        if in_word:
            tokens[count] = h
            count += 1
        start = stop
        # the shingles: windows of `width` words (one window of all the words when there are fewer)
        windows = count - width + 1 if count >= width else (1 if count > 0 else 0)
        span = width if count >= width else count
        values = np.empty(windows, dtype=np.uint32)
        for w in range(windows):
            s = offset
            for k in range(span):
                s = (s ^ tokens[w + k]) * prime
            s ^= s >> np.uint64(30)
            s *= np.uint64(0xBF58476D1CE4E5B9)
            s ^= s >> np.uint64(27)
            s *= np.uint64(0x94D049BB133111EB)
            s ^= s >> np.uint64(31)
            values[w] = np.uint32(s >> np.uint64(32))
        size[doc] = windows
        # the distinct values, ascending, and how many have at least z trailing zero bits
        values.sort()
        histogram[:] = 0
        distinct = 0
        for w in range(windows):
            value = values[w]
            if distinct > 0 and value == values[distinct - 1]:
                continue
            values[distinct] = value
            distinct += 1
            zeros = 0
            while zeros < 32 and (int(value) >> zeros) & 1 == 0:
                zeros += 1
            histogram[zeros] += 1
        # the smallest level that leaves at most `cap` distinct values
        chosen = 33
        at_least = 0
        while chosen > 0 and at_least + histogram[chosen - 1] <= cap:
            chosen -= 1
            at_least += histogram[chosen]
        chosen = min(chosen, 32)
        level[doc] = chosen
        mask = (1 << chosen) - 1
        n_kept = 0
        for w in range(distinct):
            if int(values[w]) & mask == 0:
                out[doc, n_kept] = values[w]
                n_kept += 1
        kept[doc] = n_kept


def _compare_pairs(
    values_a, indptr_a, level_a, values_b, indptr_b, level_b, rows_a, rows_b, inter, sizes, levels
):  # pragma: no cover - compiled by numba
    """Shared sampled values and both sample sizes of each pair, at the larger of the two levels.

    The side at the larger level is used whole; the other is thinned to that
    level as the merge walks it (its values at the larger level are a subset).
    """
    for p in range(rows_a.size):
        a = rows_a[p]
        b = rows_b[p]
        swap = level_a[a] > level_b[b]
        # ``x`` is the side at the lower (or equal) level, thinned to the level of ``y``
        if swap:
            x_values, x_start, x_stop = values_b, indptr_b[b], indptr_b[b + 1]
            y_values, y_start, y_stop = values_a, indptr_a[a], indptr_a[a + 1]
            chosen = int(level_a[a])
        else:
            x_values, x_start, x_stop = values_a, indptr_a[a], indptr_a[a + 1]
            y_values, y_start, y_stop = values_b, indptr_b[b], indptr_b[b + 1]
            chosen = int(level_b[b])
        mask = (1 << chosen) - 1
        both = 0
        count_x = 0
        i = x_start
        j = y_start
        while i < x_stop:
            x = x_values[i]
            i += 1
            if int(x) & mask != 0:
                continue
            count_x += 1
            while j < y_stop and y_values[j] < x:
                j += 1
            if j < y_stop and y_values[j] == x:
                both += 1
                j += 1
        inter[p] = both
        if swap:
            sizes[p, 0] = y_stop - y_start
            sizes[p, 1] = count_x
        else:
            sizes[p, 0] = count_x
            sizes[p, 1] = y_stop - y_start
        levels[p] = chosen


_KERNELS: dict[str, object] = {}
_KERNELS_LOCK = threading.Lock()


def _kernel(name: str):  # type: ignore[no-untyped-def]
    """A compiled kernel (compiled on first use, cached on disk), or the plain function without numba.

    The plain functions compute the same values (tested): their uint64 hashing wraps around as intended, so
    they run with numpy's overflow warnings off.
    """
    with _KERNELS_LOCK:  # two threads asking at once compile once
        if not _KERNELS:
            if numba is None or _PLAIN:
                _KERNELS["shingle"], _KERNELS["compare"] = _plain(_shingle_rows), _plain(_compare_pairs)
                _KERNELS["normalise"] = _plain(_normalise_ascii)
            else:
                global _is_separator
                _is_separator = numba.njit(cache=True, inline="always")(_is_separator)
                _KERNELS["shingle"] = numba.njit(cache=True, nogil=True)(_shingle_rows)
                _KERNELS["compare"] = numba.njit(cache=True, nogil=True)(_compare_pairs)
                _KERNELS["normalise"] = numba.njit(cache=True, nogil=True)(_normalise_ascii)
        return _KERNELS[name]


#: Run the plain Python kernels even where numba is installed (for testing that both agree).
_PLAIN = False


def _plain(function):  # type: ignore[no-untyped-def]
    def run(*args):  # type: ignore[no-untyped-def]
        with np.errstate(over="ignore"):
            return function(*args)

    return run
