"""Ingest: read article exports and validate them into the canonical article table.

This is the only module that reads input files. Every source (CSV, JSON Lines,
JSON, Parquet, each optionally gzip-compressed; a pandas DataFrame; a folder of
raw ``.txt`` pages) goes through the same validation, and every row that cannot
be used is reported with one reason instead of being dropped silently.

The canonical table has the columns :data:`COLUMNS`:

============  ==========================  =========================================
column        dtype                       meaning
============  ==========================  =========================================
article_id    str                         the site's id, read verbatim (``"007"``)
title         str                         headline ("" when absent)
summary       str                         lede / description ("" when absent)
body          str                         article text ("" when absent)
published     datetime64[ns, UTC]         publication time; NaT = unknown
views         float64                     view count; NaN = unknown
category      str or None                 section
url           str or None                 link shown in the list
tags          tuple of str                tags (list column or ``;``-separated)
============  ==========================  =========================================

Rejected rows are listed in ``articles.attrs["rejected"]``: a list of records
``{"source", "row", "article_id", "reason"}`` (``row`` is the 1-based data row or
line in its source). ``pandas.DataFrame(articles.attrs["rejected"])`` shows them
as a table.

Rows that are kept but look wrong (today: a publication date in the future) are
listed the same way in ``articles.attrs["flagged"]`` (see :func:`flagged_frame`).
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import pandas as pd

from ._errors import ArticleValidationError, PageFormatError, SchemaError
from ._pages import read_pages

__all__ = [
    "ALIASES",
    "COLUMNS",
    "Source",
    "cut_articles",
    "duplicate_reason",
    "flagged_frame",
    "interactions_from_mind",
    "joined_parts",
    "load_articles",
    "read_part",
    "read_partition",
    "rejected_frame",
    "validate_articles",
    "validate_part",
]

COLUMNS = (
    "article_id",
    "title",
    "summary",
    "body",
    "published",
    "views",
    "category",
    "url",
    "tags",
)
TEXT_COLUMNS = ("title", "summary", "body")
REJECTED_COLUMNS = ("source", "row", "article_id", "reason")

#: The parser's own cap on one CSV field (characters); the row limit is ``max_field_chars``.
_CSV_PARSE_LIMIT = 2**31 - 1
#: The longest field kept (characters): a longer one rejects its row (``max_field_chars``).
MAX_FIELD_CHARS = 10_000_000

#: Alternative column names mapped onto canonical ones, in order of preference.
#: A canonical name present in the input always wins over its aliases.
ALIASES: Mapping[str, tuple[str, ...]] = {
    "article_id": ("id", "article id", "articleid", "news_id", "doc_id", "guid"),
    "title": ("headline", "subject"),
    "summary": ("description", "lede", "lead", "abstract", "excerpt", "standfirst"),
    "body": ("text", "content", "article", "story"),
    "published": ("date", "published_at", "publish_date", "pubdate", "datetime"),
    "views": ("view_count", "views_count", "pageviews", "page_views", "hits"),
    "category": ("section", "topic"),
    "url": ("link", "href"),
    "tags": ("keywords", "labels"),
}

Source = Union[str, "os.PathLike[str]", pd.DataFrame]

_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".json", ".parquet", ".tsv")
_VIEWS_SEPARATORS = re.compile(r"(?<=\d)[,_ ](?=\d{3}(?:\D|$))")


# --------------------------------------------------------------------------- public entry points


def load_articles(
    source: Source | Sequence[Source],
    *,
    strict: bool = False,
    keep: Sequence[str] = (),
    max_field_chars: int = MAX_FIELD_CHARS,
) -> pd.DataFrame:
    """Read articles from files, folders or DataFrames into the canonical table.

    Parameters
    ----------
    source : path, DataFrame, or a sequence of them
        A ``.csv``, ``.jsonl``/``.ndjson``, ``.json`` or ``.parquet`` file, or
        MIND's ``news.tsv`` (each optionally ``.gz``), a folder of raw ``.txt``
        pages, or a DataFrame. Several
        sources are read in order and validated as one table, so an id repeated
        across files is a duplicate.
    strict : bool, default False
        If True, raise :class:`ArticleValidationError` on the first invalid row
        instead of rejecting it.
    keep : sequence of str, optional
        Other columns to keep after the canonical ones (e.g. a label column for
        :func:`recommender.evaluate`); a missing one is a :class:`SchemaError`.
    max_field_chars : int, default 10,000,000
        The longest field kept, in characters (:data:`MAX_FIELD_CHARS`); a row
        with a longer one is rejected naming the field and its size. While a file
        is read, a row costs about twice its size in memory.

    Returns
    -------
    DataFrame
        The valid articles with the columns :data:`COLUMNS`, in input order, with
        a fresh ``RangeIndex``. Rejected rows are in ``.attrs["rejected"]``.

    Raises
    ------
    FileNotFoundError
        A path does not exist.
    SchemaError
        A file cannot be read, has no ``article_id`` column (or alias), or has no
        text column.
    ArticleValidationError
        ``strict=True`` and a row is invalid.

    Examples
    --------
    >>> import pandas as pd, recommender as rec
    >>> frame = pd.DataFrame({"id": ["007", "007", "8"], "text": ["a story", "again", ""]})
    >>> articles = rec.load_articles(frame)
    >>> articles["article_id"].tolist()
    ['007']
    >>> [r["reason"] for r in articles.attrs["rejected"]]
    ["duplicate article_id '007' (first seen in row 1)", 'no text: title, summary and body are all empty']
    """
    sources: list[Source]
    if isinstance(source, (str, os.PathLike, pd.DataFrame)):
        sources = [source]
    else:
        sources = list(source)
        if not sources:
            raise SchemaError("No input given: pass a file, a folder, a DataFrame or a list of them.")
    frames: list[pd.DataFrame] = []
    read_problems: list[dict[str, Any]] = []
    for position, item in enumerate(sources):
        frame, problems = _read_source(item)
        frame["__order__"] = position
        frames.append(frame)
        read_problems.extend(dict(p, __order__=position) for p in problems)
    table, row_problems, flags = _validate_frames(frames, strict=False, keep=keep, max_field_chars=max_field_chars)
    # Report every problem in input order: by source, then by row.
    problems = sorted(
        read_problems + row_problems,
        key=lambda p: (p.get("__order__", 0), p["row"] if p.get("row") is not None else 0),
    )
    if strict and problems:
        raise ArticleValidationError(_describe(problems[0]))
    table.attrs["rejected"] = [_public(p) for p in problems]
    table.attrs["flagged"] = [_public(p) for p in flags]
    return table


def validate_articles(
    frames: pd.DataFrame | Sequence[pd.DataFrame],
    *,
    strict: bool = False,
    keep: Sequence[str] = (),
    max_field_chars: int | None = None,
) -> pd.DataFrame:
    """Map column names, coerce types and reject invalid rows.

    Accepts a raw DataFrame (columns named as in :data:`ALIASES` are renamed) or
    an already canonical table, for which it is idempotent. Rows are rejected for
    a missing or duplicate ``article_id`` (the first occurrence is kept), no text
    at all, negative or non-numeric ``views``, and an unparseable ``published``.

    A frame read by this module carries ``__source__`` and ``__row__`` columns
    naming where each row came from; other frames are described by their 1-based
    position. ``max_field_chars`` (None: no limit) rejects rows with a longer
    field, as :func:`load_articles` does while reading.

    Returns
    -------
    DataFrame
        The canonical table; ``.attrs["rejected"]`` lists the rejected rows,
        after those already in the input's ``attrs``; ``.attrs["flagged"]`` the
        kept rows that look wrong (a date in the future), each article once.
    """
    parts = [frames] if isinstance(frames, pd.DataFrame) else list(frames)
    carried, carried_flags = _carried(parts)
    valid, problems, flags = _validate_frames(parts, strict=strict, keep=keep, max_field_chars=max_field_chars)
    return _reported(valid, problems, flags, carried, carried_flags)


def _carried(parts: Sequence[pd.DataFrame]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rejected and the flagged rows that the input frames carry in their ``attrs`` (copies)."""
    rejected = [dict(r) for part in parts for r in part.attrs.get("rejected", ())]
    flagged = [dict(r) for part in parts for r in part.attrs.get("flagged", ())]
    return rejected, flagged


def _reported(
    valid: pd.DataFrame,
    problems: list[dict[str, Any]],
    flags: list[dict[str, Any]],
    carried: list[dict[str, Any]],
    carried_flags: list[dict[str, Any]],
    known: set[Any] | None = None,
) -> pd.DataFrame:
    """``valid`` with its ``attrs``: the rejected rows after ``carried``, and the flagged rows after
    ``carried_flags``, each article flagged once (none of ``known``, by default the articles of
    ``carried_flags``)."""
    known = {f.get("article_id") for f in carried_flags} if known is None else known
    valid.attrs["rejected"] = carried + [_public(p) for p in problems]
    valid.attrs["flagged"] = carried_flags + [_public(f) for f in flags if f["article_id"] not in known]
    return valid


def cut_articles(
    articles: pd.DataFrame, cut: Callable[[np.ndarray], Sequence[int]]
) -> tuple[list[pd.DataFrame], list[dict[str, Any]], list[dict[str, Any]]]:
    """``articles`` in parts of consecutive rows, not yet validated, to be validated apart (:func:`validate_part`,
    on a Dask worker, say) and reported as one table (:func:`joined_parts`).

    ``cut`` takes the characters of each row's text fields and returns where to cut the rows (``[0, ..., n]``).
    Returns the parts (canonical columns, rows numbered in the whole table; one empty part when ``articles`` has no
    rows) and the rejected and flagged rows that ``articles`` carried.

    Raises
    ------
    SchemaError
        As :func:`validate_articles` does: no ``article_id`` column, no text column.
    """
    table = _canonical_columns(articles)
    carried, carried_flags = _carried([articles])
    chars = np.zeros(len(table), dtype=np.int64)
    for name in TEXT_COLUMNS:
        chars += _characters(table[name])
    bounds = list(cut(chars)) if len(table) else [0, 0]
    if len(table) and (
        bounds[0] != 0 or bounds[-1] != len(table) or any(b <= a for a, b in itertools.pairwise(bounds))
    ):
        raise ValueError(f"cut must return increasing bounds from 0 to {len(table)}, got {bounds[:3]}...")
    return [table.iloc[lo:hi] for lo, hi in itertools.pairwise(bounds)], carried, carried_flags


def _characters(column: pd.Series) -> np.ndarray:
    """Characters of each value that is text (0 for any other), without making Python strings of a string
    column's values."""
    if isinstance(column.dtype, pd.StringDtype):
        return column.str.len().fillna(0).to_numpy(np.int64)
    return np.fromiter((len(v) if isinstance(v, str) else 0 for v in column.tolist()), np.int64, len(column))


def validate_part(
    part: pd.DataFrame, now: pd.Timestamp, *, max_field_chars: int | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One part of :func:`cut_articles`, validated alone (dates compared with ``now``, the same for every part).

    Returns the rows it keeps (canonical columns, then ``__source__`` and ``__row__``) and its report for
    :func:`joined_parts`: its size, every row it rejects and flags (with its position in the part) and the id,
    source and row of each row it keeps. A row's reason may still change when the parts are joined: an id kept in
    an earlier part makes it a duplicate.
    """
    valid, problems, flags = _validate(
        part, strict=False, extra=("__source__", "__row__"), max_field_chars=max_field_chars, now=now
    )
    report = {
        "size": len(part),
        "problems": problems,
        "flags": flags,
        "ids": valid["article_id"].tolist(),
        "sources": valid["__source__"].tolist(),
        "rows": [_plain(r) for r in valid["__row__"].tolist()],
    }
    return valid, report


def read_part(source: Source, now: pd.Timestamp) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One input of :func:`load_articles` (a file, a folder of pages), read and validated alone, as
    :func:`validate_part` returns it; the report also holds the rows the reader could not read, which
    :func:`joined_parts` puts in the order ``load_articles`` of every input at once reports them.

    Raises
    ------
    FileNotFoundError, SchemaError, PageFormatError
        As :func:`load_articles` does.
    """
    frame, read_problems = _read_source(source)
    valid, report = validate_part(_canonical_columns(frame), now, max_field_chars=MAX_FIELD_CHARS)
    report["read_problems"] = read_problems
    return valid, report


def read_partition(part: pd.DataFrame, position: int, now: pd.Timestamp) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Partition ``position`` of a Dask DataFrame, validated alone as :func:`validate_part` returns it; its rows
    are named ``partition N, row R``.

    Raises
    ------
    SchemaError
        As :func:`validate_articles` does.
    """
    part = part.copy()
    part["__source__"] = f"partition {position}"
    part["__row__"] = np.arange(1, len(part) + 1)
    return validate_part(_canonical_columns(part), now)


def joined_parts(
    reports: Iterable[Mapping[str, Any]],
    carried: Sequence[Mapping[str, Any]] = (),
    carried_flags: Sequence[Mapping[str, Any]] = (),
    *,
    strict: bool = False,
) -> tuple[list[np.ndarray], list[dict[str, Any]], list[dict[str, Any]]]:
    """The reports of :func:`validate_part` of every part, in order, joined as :func:`validate_articles` reports
    the whole table: an id kept in an earlier part makes a row a duplicate (whatever else it lacks, as in one
    table), the first valid occurrence is kept, each article is flagged once.

    Returns, per part, the positions among its kept rows of those now dropped (duplicates of an earlier part's),
    then the rejected rows (after ``carried``) and the flagged rows (after ``carried_flags``).

    Raises
    ------
    ArticleValidationError
        ``strict`` and a row is invalid: the first, with the message of ``validate_articles(strict=True)``.
    """
    first: dict[str, tuple[Any, Any]] = {}
    known = {f.get("article_id") for f in carried_flags}
    drops: list[np.ndarray] = []
    rejected = [dict(r) for r in carried]
    flagged = [dict(f) for f in carried_flags]
    for report in reports:
        problem_at = {p["__at__"]: p for p in report["problems"]}
        ids, sources, rows = report["ids"], report["sources"], report["rows"]
        if report["size"] != len(problem_at) + len(ids) or not len(ids) == len(sources) == len(rows):
            raise ValueError(f"joined_parts: a report of {report['size']} rows does not list each row once.")
        kept = 0
        drop: list[int] = []
        dropped_at: set[int] = set()
        found = []
        for at in range(report["size"]):
            problem = problem_at.get(at)
            if problem is None:
                seen = first.get(ids[kept])
                if seen is None:
                    first[ids[kept]] = (sources[kept], rows[kept])
                else:
                    reason = duplicate_reason(ids[kept], seen, sources[kept])
                    problem = {"source": sources[kept], "row": rows[kept], "article_id": ids[kept], "reason": reason}
                    drop.append(kept)
                    dropped_at.add(at)
                kept += 1
            elif problem["article_id"] is not None and problem["article_id"] in first:
                seen = first[problem["article_id"]]
                problem = dict(problem, reason=duplicate_reason(problem["article_id"], seen, problem["source"]))
            if problem is not None:
                found.append(problem)
        if "read_problems" in report:  # an input read by load_articles' readers: its problems by row, as it says them
            found = sorted(
                [*report["read_problems"], *found], key=lambda p: p["row"] if p.get("row") is not None else 0
            )
        if strict and found:
            raise ArticleValidationError(_describe(found[0]))
        rejected.extend(_public(p) for p in found)
        drops.append(np.asarray(drop, dtype=np.int64))
        flagged.extend(
            _public(f) for f in report["flags"] if f["__at__"] not in dropped_at and f["article_id"] not in known
        )
    return drops, rejected, flagged


def duplicate_reason(article_id: str, seen: tuple[Any, Any], source: Any) -> str:
    """The reason of a row whose id was kept first at ``seen`` (its source and row)."""
    where = f"row {seen[1]}" if seen[0] == source else f"{seen[0]}, row {seen[1]}"
    return f"duplicate article_id {article_id!r} (first seen in {where})"


def _validate_frames(
    parts: list[pd.DataFrame], *, strict: bool, keep: Sequence[str] = (), max_field_chars: int | None = None
) -> tuple[pd.DataFrame, list[dict[str, Any]], list[dict[str, Any]]]:
    if max_field_chars is not None and (
        isinstance(max_field_chars, bool) or not isinstance(max_field_chars, int) or max_field_chars < 1
    ):
        raise ValueError(f"max_field_chars must be an integer >= 1, got {max_field_chars!r}.")
    canonical = [_canonical_columns(p, keep) for p in parts]
    table = pd.concat(canonical, ignore_index=True) if len(canonical) > 1 else canonical[0]
    extra = [name for name in keep if name not in COLUMNS]
    return _validate(table, strict=strict, extra=extra, max_field_chars=max_field_chars)


def _public(problem: Mapping[str, Any]) -> dict[str, Any]:
    """A problem as reported: text that is not valid Unicode (an id, a file name) shown with escapes, so that
    the report itself can be saved and printed."""
    return {
        k: _SURROGATE.sub(_escaped, v) if isinstance(v, str) else v
        for k, v in problem.items()
        if not k.startswith("__")
    }


def _escaped(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def rejected_frame(articles: pd.DataFrame) -> pd.DataFrame:
    """The rejected rows of a table returned by :func:`load_articles` as a DataFrame.

    Columns ``source, row, article_id, reason``; empty (with those columns) when
    nothing was rejected.
    """
    records = list(articles.attrs.get("rejected", ()))
    return pd.DataFrame.from_records(records, columns=list(REJECTED_COLUMNS))


def flagged_frame(articles: pd.DataFrame) -> pd.DataFrame:
    """The kept-but-flagged rows of a table returned by :func:`load_articles`.

    A row is flagged, and kept, when its ``published`` date is later than the
    time it was read (a scheduled article, or a clock or time-zone error). Columns
    ``source, row, article_id, reason``; empty when nothing was flagged.
    """
    records = list(articles.attrs.get("flagged", ()))
    return pd.DataFrame.from_records(records, columns=list(REJECTED_COLUMNS))


# --------------------------------------------------------------------------- readers


def _read_source(source: Source) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Read one source into a raw frame with ``__source__``/``__row__`` columns."""
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
        label = "<DataFrame>"
        if "__row__" not in frame.columns:
            frame["__row__"] = np.arange(1, len(frame) + 1)
        if "__source__" not in frame.columns:
            frame["__source__"] = label
        frame.attrs = {}
        return frame, []
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(
            f"Input not found: '{path}'. Give a file (.csv, .jsonl, .json, .parquet, optionally .gz) or a folder of .txt pages."
        )
    if path.is_dir():
        return _read_pages(path)
    name = path.name.lower()
    base = name[:-3] if name.endswith(".gz") else name
    suffix = next((s for s in _SUFFIXES if base.endswith(s)), None)
    if suffix is None:
        raise SchemaError(
            f"Unsupported input '{path.name}': expected .csv, .jsonl, .ndjson, .json, .parquet or MIND's "
            "news .tsv (optionally .gz), or a folder of .txt pages."
        )
    try:
        if suffix == ".csv":
            frame, problems = _read_csv(path)
        elif suffix in (".jsonl", ".ndjson"):
            frame, problems = _read_json_lines(path)
        elif suffix == ".tsv":
            frame, problems = _with_rows(read_mind_news(path)), []
        elif suffix == ".json":
            frame, problems = _read_json(path)
        else:
            frame, problems = _read_parquet(path), []
    except UnicodeDecodeError as exc:
        raise SchemaError(
            f"'{path.name}' is not valid UTF-8 (byte {exc.object[exc.start]:#04x} at offset {exc.start}): "
            "re-export it as UTF-8."
        ) from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise SchemaError(f"Cannot read '{path.name}': {exc}") from None
    frame["__source__"] = path.name
    return frame, [dict(p, source=path.name) for p in problems]


def _open_text(path: Path) -> io.TextIOBase:
    raw = gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


#: Canonical columns whose values may span lines in a CSV record (everyday multi-paragraph text).
_MULTILINE = ("summary", "body")


def _read_csv(path: Path) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """A CSV export, read record by record (streamed, also from ``.gz``), strictly.

    Quoting must be well-formed (a closing quote is followed by a delimiter or the
    end of the record), or the file is refused naming the line. Every record must
    have the header's number of fields, and only ``summary`` and ``body`` (and
    columns that are not the library's) may hold line breaks: a quote left open in
    a title glues the next lines into it, so such a record is rejected naming the
    lines it spans, never read as one article.
    """
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_PARSE_LIMIT))
    problems: list[dict[str, Any]] = []
    with _open_text(path) as handle:
        reader = csv.reader(handle, strict=True)
        try:
            header = next(reader)
            while not header:  # blank lines before the header
                header = next(reader)
        except StopIteration:
            raise SchemaError(f"'{path.name}' is empty: expected a header row naming the columns.") from None
        except csv.Error as exc:
            raise SchemaError(f"'{path.name}' is not well-formed CSV (line {reader.line_num}): {exc}") from None
        width = len(header)
        single_line = [i for i, name in enumerate(header) if _canonical_name(name) not in (None, *_MULTILINE)]
        columns: list[list[str]] = [[] for _ in header]
        rows: list[int] = []
        number = 0
        first = reader.line_num + 1
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise SchemaError(
                    f"'{path.name}' is not well-formed CSV (line {reader.line_num}): {exc}. "
                    "Quote fields that hold the delimiter, a quote or a line break, and double the quotes inside them."
                ) from None
            lines = f"line {first}" if reader.line_num == first else f"lines {first}-{reader.line_num}"
            first = reader.line_num + 1
            if not fields:
                continue  # a blank line
            number += 1
            if len(fields) != width:
                problems.append(
                    _problem(
                        number,
                        fields[0].strip() or None if fields else None,
                        f"{len(fields)} fields where the header has {width} ({lines}): "
                        "a delimiter or a quote is probably unbalanced",
                    )
                )
                continue
            broken = next((i for i in single_line if "\n" in fields[i] or "\r" in fields[i]), None)
            if broken is not None:
                problems.append(
                    _problem(
                        number,
                        fields[0].strip() or None,
                        f"a line break inside {header[broken]!r} ({lines}): a quote opened there "
                        "is probably not closed, and the lines it swallowed are rejected with it",
                    )
                )
                continue
            for column, value in zip(columns, fields, strict=True):
                column.append(value)
            rows.append(number)
    frame = pd.DataFrame({i: pd.Series(values, dtype=object) for i, values in enumerate(columns)})
    frame.columns = header
    frame["__row__"] = np.array(rows, dtype=np.int64)
    return frame, problems


def _canonical_name(column: str) -> str | None:
    """The canonical column a header name is read as (None: not one of the library's)."""
    name = column.strip().lower()
    if name in COLUMNS:
        return name
    return next((canonical for canonical, aliases in ALIASES.items() if name in aliases), None)


def _read_json_lines(path: Path) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    with _open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(_problem(number, None, f"malformed JSON line: {exc.msg} at column {exc.colno}"))
                continue
            except (ValueError, RecursionError) as exc:  # a 5,000-digit number, nesting deeper than Python's stack
                why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0]
                problems.append(_problem(number, None, f"unreadable JSON line: {why}"))
                continue
            if not isinstance(value, dict):
                problems.append(_problem(number, None, f"JSON line is a {type(value).__name__}, expected an object"))
                continue
            value["__row__"] = number
            records.append(value)
    if not records and not problems:
        raise SchemaError(f"'{path.name}' holds no JSON lines: expected one article object per line.")
    return _frame_from_records(records), problems


def _read_json(path: Path) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    with _open_text(path) as handle:
        text = handle.read()
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return _read_json_lines(path)  # JSON Lines saved as .json
    except (ValueError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0]
        raise SchemaError(f"'{path.name}' cannot be read as JSON: {why}.") from None
    if isinstance(value, dict):
        for key in ("articles", "data", "items", "records"):
            if isinstance(value.get(key), list):
                value = value[key]
                break
        else:
            value = [value]
    if not isinstance(value, list):
        raise SchemaError(f"'{path.name}' holds a JSON {type(value).__name__}: expected a list of article objects.")
    records: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    for number, item in enumerate(value, start=1):
        if isinstance(item, dict):
            records.append(dict(item, __row__=number))
        else:
            problems.append(_problem(number, None, f"item is a {type(item).__name__}, expected an object"))
    return _frame_from_records(records), problems


def _read_parquet(path: Path) -> pd.DataFrame:
    data: Any = path
    if path.name.lower().endswith(".gz"):
        with gzip.open(path, "rb") as handle:
            data = io.BytesIO(handle.read())
    try:
        frame = pd.read_parquet(data)
    except ImportError as exc:
        raise SchemaError(f"Reading '{path.name}' needs pyarrow: {exc}") from None
    except Exception as exc:  # pyarrow raises its own ArrowInvalid for corrupt files
        raise SchemaError(f"'{path.name}' is not a readable Parquet file: {exc}") from None
    _release_arrow_memory()
    frame = frame.reset_index(drop=True)
    frame["__row__"] = np.arange(1, len(frame) + 1)
    return frame


def _release_arrow_memory() -> None:
    """Hand the pages Arrow's allocator kept from decoding back to the system (large exports)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def _read_pages(folder: Path) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    try:
        records, rejections = read_pages(folder)
    except PageFormatError as exc:
        raise SchemaError(str(exc)) from None
    frame = _frame_from_records([dict(r, __source__=f"{r['article_id']}.txt", __row__=1) for r in records])
    if not records:  # every page rejected: an empty table, the rejections say why
        frame = pd.DataFrame(columns=["article_id", "title", "summary", "body", "__source__", "__row__"])
    problems = [
        {"source": r.get("source", folder.name), "row": 1, "article_id": r.get("article_id"), "reason": r["reason"]}
        for r in rejections
    ]
    return frame, problems


def _with_rows(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    frame["__row__"] = np.arange(1, len(frame) + 1)
    return frame


def _frame_from_records(records: list[dict[str, Any]]) -> pd.DataFrame:
    # object columns: inferring pandas' Arrow-backed text would fail on text that is not valid Unicode,
    # which validation rejects row by row instead
    if not records:
        return pd.DataFrame({"__row__": []})
    names = list(dict.fromkeys(name for record in records for name in record))
    frame = pd.DataFrame({name: pd.Series([r.get(name) for r in records], dtype=object) for name in names})
    return frame


def _problem(row: int | None, article_id: Any, reason: str) -> dict[str, Any]:
    return {"source": None, "row": row, "article_id": article_id, "reason": reason}


def _describe(problem: Mapping[str, Any]) -> str:
    where = problem.get("source") or "input"
    if problem.get("row") is not None:
        where = f"{where}, row {problem['row']}"
    if problem.get("article_id") is not None:
        where = f"{where} (article_id {problem['article_id']!r})"
    return f"Invalid article in {where}: {problem['reason']}"


# --------------------------------------------------------------------------- schema


def _canonical_columns(frame: pd.DataFrame, keep: Sequence[str] = ()) -> pd.DataFrame:
    """Rename aliases to canonical names; raise SchemaError for missing required columns."""
    lower: dict[str, Any] = {}
    known = set(COLUMNS) | {alias for aliases in ALIASES.values() for alias in aliases}
    for column in frame.columns:
        name = str(column).strip().lower()
        if name in lower and name in known:
            raise SchemaError(
                f"Columns {str(lower[name])!r} and {str(column)!r} are both read as {name!r}: "
                "keep one of them (or rename the other)."
            )
        lower.setdefault(name, column)
    mapping: dict[Any, str] = {}
    for name in COLUMNS:
        if name in lower:
            mapping[lower[name]] = name
            continue
        for alias in ALIASES.get(name, ()):
            if alias in lower and lower[alias] not in mapping:
                mapping[lower[alias]] = name
                break
    if "article_id" not in mapping.values():
        found = ", ".join(repr(str(c)) for c in frame.columns if not str(c).startswith("__")) or "none"
        if len(frame) == 0 and found == "none":
            raise SchemaError("The input has no columns and no rows: expected at least 'article_id' and a text column.")
        raise SchemaError(
            f"Missing column 'article_id' (or one of {', '.join(ALIASES['article_id'])}); columns found: {found}."
        )
    if not any(name in mapping.values() for name in TEXT_COLUMNS):
        found = ", ".join(repr(str(c)) for c in frame.columns if not str(c).startswith("__"))
        raise SchemaError(
            "Missing text: expected at least one of 'title', 'summary', 'body' (or an alias such as "
            f"'text', 'content', 'description'); columns found: {found}."
        )
    out = pd.DataFrame(index=frame.index)
    inverse = {canonical: original for original, canonical in mapping.items()}
    for name in COLUMNS:
        out[name] = frame[inverse[name]] if name in inverse else None
    out["__source__"] = frame["__source__"] if "__source__" in frame.columns else "<DataFrame>"
    out["__row__"] = frame["__row__"] if "__row__" in frame.columns else np.arange(1, len(frame) + 1)
    out["__order__"] = frame["__order__"] if "__order__" in frame.columns else 0
    for name in keep:
        if name in COLUMNS:
            continue
        if name not in frame.columns:
            found = ", ".join(repr(str(c)) for c in frame.columns if not str(c).startswith("__"))
            raise SchemaError(f"Column {name!r} to keep is not in the input; columns found: {found}.")
        out[name] = frame[name]
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- validation


def _field_problem(
    article_id: str, texts: Mapping[str, str], others: Mapping[str, list[Any]], i: int, max_field_chars: int | None
) -> str | None:
    """Why a row's fields cannot be kept (not valid Unicode, longer than the limit), or None."""
    fields = {"article_id": article_id, **texts, **{name: values[i] for name, values in others.items()}}
    for name, value in fields.items():
        problem = _unicode_problem(name, value)
        if problem:
            return problem
        if max_field_chars is None:
            continue
        size = sum(len(v) for v in value) if isinstance(value, tuple) else len(value or "")
        if size > max_field_chars:
            return (
                f"{name} has {size:,} characters, over the limit of {max_field_chars:,} "
                "(max_field_chars; raise it to keep such rows)"
            )
    return None


def _validate(
    table: pd.DataFrame,
    *,
    strict: bool,
    extra: Sequence[str] = (),
    max_field_chars: int | None = None,
    now: pd.Timestamp | None = None,
) -> tuple[pd.DataFrame, list[dict[str, Any]], list[dict[str, Any]]]:
    """The kept rows, the rejected ones and the flagged ones (each with ``__at__``, its position in ``table``) of a
    canonical ``table``. ``now``: the time that dates are compared with (the time of the call by default)."""
    n = len(table)
    reasons: list[str | None] = [None] * n
    ids = [_as_id(v) for v in table["article_id"].tolist()]
    texts = {name: [_as_text(v) for v in table[name].tolist()] for name in TEXT_COLUMNS}
    views = [_as_views(v) for v in table["views"].tolist()]
    published = [_as_timestamp(v) for v in table["published"].tolist()]
    others = {
        "category": [_as_optional_text(v) for v in table["category"].tolist()],
        "url": [_as_optional_text(v) for v in table["url"].tolist()],
        "tags": [_as_tags(v) for v in table["tags"].tolist()],
    }
    first_row: dict[str, tuple[Any, Any]] = {}
    sources = table["__source__"].tolist()
    rows = table["__row__"].tolist()

    for i in range(n):
        reason: str | None = None
        if ids[i] is None:
            reason = "missing article_id"
        elif ids[i] in first_row:
            reason = duplicate_reason(ids[i], first_row[ids[i]], sources[i])
        elif not any(texts[name][i].strip() for name in TEXT_COLUMNS):
            reason = "no text: title, summary and body are all empty"
        elif isinstance(views[i], str):
            reason = views[i]
        elif isinstance(published[i], str):
            reason = published[i]
        else:
            reason = _field_problem(ids[i], {name: texts[name][i] for name in TEXT_COLUMNS}, others, i, max_field_chars)
        if reason is None:
            first_row[ids[i]] = (sources[i], rows[i])  # type: ignore[index]
        elif strict:
            raise ArticleValidationError(
                _describe({"source": sources[i], "row": rows[i], "article_id": ids[i], "reason": reason})
            )
        reasons[i] = reason

    keep = np.array([r is None for r in reasons], dtype=bool)
    orders = table["__order__"].tolist()
    problems = [
        {
            "source": sources[i],
            "row": _plain(rows[i]),
            "article_id": ids[i],
            "reason": reasons[i],
            "__order__": orders[i],
            "__at__": i,
        }
        for i in range(n)
        if reasons[i] is not None
    ]
    now = pd.Timestamp.now(tz="UTC") if now is None else now
    flags = [
        {
            "source": sources[i],
            "row": _plain(rows[i]),
            "article_id": ids[i],
            "reason": f"published in the future: {published[i].isoformat()} (kept)",
            "__order__": orders[i],
            "__at__": i,
        }
        for i in range(n)
        if keep[i] and isinstance(published[i], pd.Timestamp) and published[i] > now
    ]
    valid = pd.DataFrame(
        {
            "article_id": pd.Series([ids[i] for i in range(n) if keep[i]], dtype=object),
            # dtype=object keeps the str objects themselves: inferring pandas' string
            # dtype would copy every text into Arrow and back (three copies at once).
            "title": pd.Series([texts["title"][i] for i in range(n) if keep[i]], dtype=object),
            "summary": pd.Series([texts["summary"][i] for i in range(n) if keep[i]], dtype=object),
            "body": pd.Series([texts["body"][i] for i in range(n) if keep[i]], dtype=object),
            "published": pd.to_datetime(
                pd.Series([published[i] for i in range(n) if keep[i]], dtype="datetime64[ns, UTC]")
            ),
            "views": np.array([views[i] for i in range(n) if keep[i]], dtype=np.float64),
            "category": pd.Series([others["category"][i] for i in range(n) if keep[i]], dtype=object),
            "url": pd.Series([others["url"][i] for i in range(n) if keep[i]], dtype=object),
            "tags": pd.Series([others["tags"][i] for i in range(n) if keep[i]], dtype=object),
        }
    )
    for name in TEXT_COLUMNS:
        valid[name] = valid[name].astype(object)
    for name in extra:
        valid[name] = table[name].to_numpy()[keep]
    return valid, problems, flags


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return value is pd.NA or value is pd.NaT


def _decoded(value: Any) -> Any:
    """Bytes (Parquet BINARY text without its UTF-8 note, a DataFrame of bytes) as text; bytes that are not
    UTF-8 become unpaired surrogates, which :func:`_unicode_problem` then rejects."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "surrogateescape")
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")


def _unicode_problem(name: str, value: Any) -> str | None:
    """The reason to reject a field that is not valid Unicode (it could not be saved, nor shown)."""
    texts = value if isinstance(value, tuple) else (value,)
    for text in texts:
        if isinstance(text, str) and not text.isascii() and _SURROGATE.search(text):  # isascii: a flag, O(1)
            return f"{name} is not valid text: it holds bytes that are not UTF-8 or an unpaired surrogate (such as '\\ud800')"
    return None


def _as_id(value: Any) -> str | None:
    value = _decoded(value)
    if _is_missing(value):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)  # a JSON/Parquet number 7.0 is id "7"
    text = str(value).strip()
    return text or None


def _as_text(value: Any) -> str:
    value = _decoded(value)
    if _is_missing(value):
        return ""
    return str(value)


def _as_optional_text(value: Any) -> str | None:
    value = _decoded(value)
    if _is_missing(value):
        return None
    text = str(value).strip()
    return text or None


def _as_views(value: Any) -> float | str:
    """A view count as float (NaN = unknown), or a rejection reason."""
    if _is_missing(value):
        return float("nan")
    if isinstance(value, bool):
        return f"views is not a number: {value!r}"
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
    else:
        text = str(value).strip()
        if not text:
            return float("nan")
        cleaned = _VIEWS_SEPARATORS.sub("", text)
        try:
            number = float(cleaned)
        except ValueError:
            return f"views is not a number: {text[:40]!r}"
    if not np.isfinite(number):
        return f"views is not a finite number: {value!r}"
    if number < 0:
        return f"views is negative: {value!r}"
    return number


#: Dates pandas reads relative to the wall clock: never reproducible, so rejected.
_RELATIVE_DATES = ("now", "today", "yesterday", "tomorrow")
#: A number written as text (a CSV cell): read as the same number a JSON or Parquet value would be.
_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
#: An integer that reads as a calendar day or year (YYYYMMDD or YYYY, years 1900-2199), not Unix seconds.
_YYYYMMDD = re.compile(r"^(?:19|20|21)\d\d(?:(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))?$")


def _as_timestamp(value: Any) -> pd.Timestamp | str:
    """A UTC timestamp (NaT = unknown), or a rejection reason. Naive times are UTC.

    The same rule for every format: a number, or text that is a number, is Unix
    seconds (milliseconds beyond 1e11), except an integer that is a calendar day
    or year (``20240501``, ``2024``); other text is parsed by pandas; relative words
    (``now``, ``today``...) are rejected.
    """
    if _is_missing(value):
        return pd.NaT
    if isinstance(value, str) and not value.strip():
        return pd.NaT
    if isinstance(value, str) and value.strip().lower() in _RELATIVE_DATES:
        return (
            f"published is a relative date ({value.strip()[:20]!r}): it would change with the day the build runs; "
            "give the date itself"
        )
    if isinstance(value, bool):
        return f"published is not a date: {value!r}"
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        value = float(value.strip()) if any(c in value for c in ".eE") else int(value.strip())
    try:
        if isinstance(value, (int, float, np.integer, np.floating)):
            number = value.item() if isinstance(value, np.generic) else value
            if isinstance(number, float) and number.is_integer() and abs(number) < 1e4 * 1e4:
                number = int(number)  # 20240501.0: a column of numbers that pandas made floats
            if isinstance(number, int) and _YYYYMMDD.match(str(number)):  # 20240501 is a day, not 1970-08-23
                stamp = pd.Timestamp(str(number)) if number > 9999 else pd.Timestamp(year=number, month=1, day=1)
            else:  # Unix seconds, or milliseconds beyond 1e11 (year 5138 in seconds); integers stay exact
                unit = "ms" if abs(number) >= 1e11 else "s"
                stamp = pd.Timestamp(number if isinstance(number, int) else float(number), unit=unit)
        else:
            stamp = pd.Timestamp(value.strip() if isinstance(value, str) else value)
    except (ValueError, TypeError, OverflowError):
        return f"published is not a date: {str(value)[:40]!r}"
    if stamp is pd.NaT:
        return pd.NaT
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    try:
        return stamp.as_unit("ns")
    except (ValueError, OverflowError):  # pandas' OutOfBoundsDatetime is a ValueError
        return f"published is out of range (years 1678 to 2261): {str(value)[:40]!r}"


def _as_tags(value: Any) -> tuple[str, ...]:
    value = _decoded(value)
    if value is None:
        return ()
    if isinstance(value, str):
        items: Iterable[Any] = value.split(";")
    elif isinstance(value, (list, tuple, np.ndarray, pd.Series)):
        items = list(value)
    elif _is_missing(value):
        return ()
    else:
        items = [value]
    seen: dict[str, None] = {}
    for item in items:
        item = _decoded(item)
        if _is_missing(item):
            continue
        tag = str(item).strip()
        if tag:
            seen.setdefault(tag, None)
    return tuple(seen)


# --------------------------------------------------------------------------- MIND and interaction logs

#: Columns of MIND's ``news.tsv`` and ``behaviors.tsv`` (no header row in the files).
MIND_NEWS_COLUMNS = (
    "news_id",
    "category",
    "subcategory",
    "title",
    "abstract",
    "url",
    "title_entities",
    "abstract_entities",
)
MIND_BEHAVIORS_COLUMNS = ("impression_id", "user_id", "time", "history", "impressions")


def _read_tsv(path: Path, names: Sequence[str]) -> pd.DataFrame:
    try:
        with _open_text(path) as handle:
            frame = pd.read_csv(
                handle, sep="\t", header=None, names=list(names), dtype=str, keep_default_na=False, quoting=3
            )
    except pd.errors.EmptyDataError:
        raise SchemaError(f"'{path.name}' is empty.") from None
    except pd.errors.ParserError as exc:
        raise SchemaError(f"'{path.name}' is not a MIND tab-separated file: {str(exc).strip()}") from None
    return frame


def read_mind_news(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read MIND ``news.tsv`` (optionally ``.gz``) as an article table for :func:`load_articles`.

    Columns ``article_id`` (the news id), ``category``, ``title``, ``summary``
    (the abstract), ``url``, ``tags`` (the subcategory). MIND has no bodies and
    no publication dates.
    """
    source = Path(path)
    if not source.exists():
        raise FileNotFoundError(f"MIND news file not found: '{source}'.")
    raw = _read_tsv(source, MIND_NEWS_COLUMNS)
    return pd.DataFrame(
        {
            "article_id": raw["news_id"],
            "category": raw["category"],
            "title": raw["title"],
            "summary": raw["abstract"],
            "url": raw["url"],
            "tags": raw["subcategory"],
        }
    )


def read_mind_behaviors(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read MIND ``behaviors.tsv`` (optionally ``.gz``) with its five named columns."""
    source = Path(path)
    if not source.exists():
        raise FileNotFoundError(f"MIND behaviors file not found: '{source}'.")
    return _read_tsv(source, MIND_BEHAVIORS_COLUMNS)


def load_interactions(source: str | os.PathLike[str] | pd.DataFrame) -> pd.DataFrame:
    """Read an interactions log: ``user_id, article_id, timestamp`` per read.

    Accepts a DataFrame, a CSV/JSONL/JSON/Parquet file with those columns
    (``id`` or ``news_id`` for ``article_id``, ``time``/``date`` for ``timestamp``
    are mapped), or MIND's ``behaviors.tsv`` (recognised by its name), converted
    with :func:`recommender.interactions_from_mind`.
    """
    if isinstance(source, pd.DataFrame):
        frame = source
    else:
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"Interactions log not found: '{path}'.")
        if "behaviors" in path.name.lower() and ".tsv" in path.name.lower():
            return interactions_from_mind(read_mind_behaviors(path))
        frame, problems = _read_source(path)
        if problems:
            raise SchemaError(f"'{path.name}': {_describe(problems[0])}")
    renames = {}
    lower = {str(c).strip().lower(): c for c in frame.columns}
    for canonical, aliases in (
        ("user_id", ("user", "userid", "user id")),
        ("article_id", ("id", "news_id", "item_id", "articleid")),
        ("timestamp", ("time", "date", "datetime", "ts")),
    ):
        if canonical in lower:
            renames[lower[canonical]] = canonical
        else:
            found = next((lower[a] for a in aliases if a in lower), None)
            if found is not None:
                renames[found] = canonical
    frame = frame.rename(columns=renames)
    missing = [c for c in ("user_id", "article_id", "timestamp") if c not in frame.columns]
    if missing:
        raise SchemaError(f"The interactions log lacks {missing}; columns found: {', '.join(map(str, frame.columns))}.")
    return frame[["user_id", "article_id", "timestamp"]].reset_index(drop=True)


def interactions_from_mind(behaviors: pd.DataFrame) -> pd.DataFrame:
    """Turn MIND ``behaviors.tsv`` rows into a ``user_id, article_id, timestamp`` log.

    Parameters
    ----------
    behaviors : DataFrame
        The five MIND columns ``impression_id, user_id, time, history,
        impressions`` (read with ``header=None`` and these names).

    Returns
    -------
    DataFrame
        One row per click: clicked impressions (``newsid-1``) at the impression
        time, and history clicks at NaT (they happened before the log starts,
        so they always count as "before T").
    """
    needed = ["user_id", "time", "history", "impressions"]
    if any(c not in behaviors.columns for c in needed):
        raise SchemaError(f"MIND behaviors need columns {needed}, got {list(behaviors.columns)}.")
    rows: list[tuple[str, str, Any]] = []
    times = pd.to_datetime(behaviors["time"], format="%m/%d/%Y %I:%M:%S %p", utc=True)
    for user, when, history, impressions in zip(
        behaviors["user_id"].astype(str), times, behaviors["history"], behaviors["impressions"], strict=True
    ):
        if isinstance(history, str):
            rows.extend((user, item, pd.NaT) for item in history.split())
        if isinstance(impressions, str):
            for token in impressions.split():
                item, _, label = token.rpartition("-")
                if label == "1":
                    rows.append((user, item, when))
    log = pd.DataFrame(rows, columns=["user_id", "article_id", "timestamp"])
    log["timestamp"] = pd.to_datetime(log["timestamp"], utc=True)
    return log.drop_duplicates(ignore_index=True)
