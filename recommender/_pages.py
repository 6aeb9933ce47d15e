"""Parse raw scraped article pages into article records.

A raw page is a plain-text file, one per article, laid out like this::

    <site banner lines: any number, any text, dropped>
    <title>
    Views: 1,234
    2023-05-19 11:25
    <lede: one paragraph>

    <body paragraph 1: repeats the lede as its first sentence>

    <body paragraph 2>
    ...
    You Might Like...
    <anything here is not article text and is dropped>

How a page is read:

* A UTF-8 byte-order mark is stripped and CRLF / CR line endings become LF.
  Extra blank lines (empty or whitespace only) are allowed anywhere.
* The header is anchored on the first *date line*, a line holding only
  ``YYYY-MM-DD HH:MM`` or ``YYYY-MM-DD HH:MM:SS`` (surrounding whitespace
  allowed). The nearest non-blank line before it is the ``Views:`` line if it
  starts with ``Views:``; the title is the non-blank line just before the
  ``Views:`` line, or just before the date line when there is no ``Views:``
  line. Everything before the title is the banner and is dropped.
* A page with no date line is anchored on its first ``Views:`` line instead:
  the title is the non-blank line before it and ``published`` is ``None``.
* After the header, a *paragraph* is a run of consecutive non-blank lines,
  each stripped of surrounding whitespace and joined by one space. The first
  paragraph is the lede (``summary``); the later ones, joined by a blank line
  (``"\\n\\n"``), are the ``body``, kept verbatim (the body usually repeats
  the lede; this module does not remove it).
* The article text ends at the trailer, the first line after the header that
  starts with ``You Might Like`` written in Title Case or UPPER CASE (any
  punctuation or text may follow on the same line). That line and everything
  after it are dropped. A body sentence in ordinary sentence case
  (``You might like ...``) is not a trailer and is kept.
* ``views`` is an ``int`` when the value is a clean number (digits, optionally
  with comma thousands separators: ``Views: 1,234`` is 1234), the raw value
  string when it is anything else (``Views: many`` gives ``"many"``; rejecting
  such a row is the validation step's job), and ``None`` when the page has no
  ``Views:`` line.

Errors in a page's layout raise :class:`~recommender._errors.PageFormatError`;
:func:`read_pages` turns them into per-file rejections so that one bad file
does not stop the others.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from recommender._errors import PageFormatError

__all__ = ["parse_page", "read_pages"]

_BOM = "\ufeff"

# A line holding only a timestamp, e.g. "2023-05-19 11:25" or "2023-05-19 11:25:07".
_DATE_LINE = re.compile(r"\s*([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}(?::[0-9]{2})?)\s*")

# The views line; the value is anything after the colon (possibly empty).
_VIEWS_LINE = re.compile(r"\s*Views:[ \t]*(.*?)\s*")

# A clean view count: plain digits, or digits grouped in threes by commas.
_VIEWS_NUMBER = re.compile(r"[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+")

# The start of the trailer; its capitalisation is checked separately.
_TRAILER = re.compile(r"\s*(you might like)", re.IGNORECASE)
_TRAILER_SPELLINGS = frozenset({"You Might Like", "YOU MIGHT LIKE"})

_EXPECTED_LAYOUT = (
    "expected banner lines, a title line, 'Views: N', a date line 'YYYY-MM-DD HH:MM', then the lede and body paragraphs"
)


def _normalise(text: str) -> str:
    """Strip a leading byte-order mark and turn CRLF / CR line endings into LF."""
    text = text.removeprefix(_BOM)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _is_blank(line: str) -> bool:
    return not line.strip()


def _previous_non_blank(lines: list[str], index: int) -> int | None:
    """Return the index of the last non-blank line before ``index``, or None."""
    for i in range(index - 1, -1, -1):
        if not _is_blank(lines[i]):
            return i
    return None


def _first_match(pattern: re.Pattern[str], lines: list[str]) -> tuple[int, re.Match[str]] | None:
    """Return the index and match of the first line that fully matches, or None."""
    for i, line in enumerate(lines):
        match = pattern.fullmatch(line)
        if match is not None:
            return i, match
    return None


def _is_trailer(line: str) -> bool:
    match = _TRAILER.match(line)
    return match is not None and match.group(1) in _TRAILER_SPELLINGS


def _parse_views(value: str) -> int | str:
    """Return a clean view count as int, anything else as the raw string."""
    if _VIEWS_NUMBER.fullmatch(value):
        return int(value.replace(",", ""))
    return value


def _paragraphs(lines: list[str]) -> list[str]:
    """Group lines into paragraphs: runs of non-blank lines joined by a space."""
    paragraphs: list[str] = []
    current: list[str] = []
    for line in lines:
        if _is_blank(line):
            if current:
                paragraphs.append(" ".join(current))
                current = []
        else:
            current.append(line.strip())
    if current:
        paragraphs.append(" ".join(current))
    return paragraphs


def parse_page(text: str, article_id: str) -> dict[str, object]:
    """Parse the text of one raw scraped article page.

    See the module docstring for the page layout.

    Parameters
    ----------
    text : str
        The whole page as text (already decoded). A leading UTF-8 byte-order
        mark and CRLF / CR line endings are accepted.
    article_id : str
        The external id of the article; copied into the record and used in
        error messages.

    Returns
    -------
    dict of str to object
        ``{"article_id": str, "title": str, "summary": str, "body": str,
        "published": str or None, "views": int, str or None}``. ``published``
        is the date as written on the page (e.g. ``"2023-05-19 11:25"``), or
        ``None`` when the page has no date line. ``views`` is an ``int`` for a
        clean number, the raw value string otherwise, and ``None`` when the
        page has no ``Views:`` line. ``body`` is ``""`` when the page has only
        a lede.

    Raises
    ------
    TypeError
        If ``text`` is not a ``str`` (decode bytes first).
    PageFormatError
        If the page is empty, has neither a date line nor a ``Views:`` line,
        has no title line before its header, or has no text after its header.

    Examples
    --------
    >>> page = (
    ...     "My News Site\\n"
    ...     "Otters Learn to Juggle\\n"
    ...     "Views: 1,234\\n"
    ...     "2024-02-03 08:15\\n"
    ...     "Otters juggle now.\\n"
    ...     "\\n"
    ...     "Otters juggle now. Keepers are amazed.\\n"
    ...     "You Might Like...\\n"
    ... )
    >>> record = parse_page(page, "a-1")
    >>> record["title"], record["views"], record["published"]
    ('Otters Learn to Juggle', 1234, '2024-02-03 08:15')
    >>> record["summary"]
    'Otters juggle now.'
    >>> record["body"]
    'Otters juggle now. Keepers are amazed.'
    """
    if not isinstance(text, str):
        raise TypeError(
            f"parse_page() expected the page text as str for article_id "
            f"{article_id!r}, got {type(text).__name__}; decode bytes as UTF-8 first."
        )
    where = f"Page {article_id!r}"
    lines = _normalise(text).split("\n")
    if all(_is_blank(line) for line in lines):
        raise PageFormatError(f"{where} is empty: {_EXPECTED_LAYOUT}, got no text.")

    dates = _first_match(_DATE_LINE, lines)
    published: str | None = None
    views_index: int | None = None
    views: int | str | None = None
    if dates is not None:
        header_end, date_match = dates
        published = date_match.group(1)
        before = _previous_non_blank(lines, header_end)
        views_match = None if before is None else _VIEWS_LINE.fullmatch(lines[before])
        if views_match is not None:
            views_index = before
            views = _parse_views(views_match.group(1))
    else:
        views_found = _first_match(_VIEWS_LINE, lines)
        if views_found is None:
            raise PageFormatError(
                f"{where} has no date line ('YYYY-MM-DD HH:MM') and no "
                f"'Views: N' line, so its header cannot be found: {_EXPECTED_LAYOUT}."
            )
        header_end, views_match = views_found
        views_index = header_end
        views = _parse_views(views_match.group(1))

    title_anchor = header_end if views_index is None else views_index

    title_index = _previous_non_blank(lines, title_anchor)
    if title_index is None:
        anchor = "'Views:' line" if views_index is not None else "date line"
        raise PageFormatError(
            f"{where} has no title line: expected a non-blank line just before "
            f"its {anchor} (line {title_anchor + 1}), got nothing before it."
        )
    title = lines[title_index].strip()

    content = lines[header_end + 1 :]
    trailer = next((i for i, line in enumerate(content) if _is_trailer(line)), None)
    if trailer is not None:
        content = content[:trailer]
    paragraphs = _paragraphs(content)
    if not paragraphs:
        raise PageFormatError(
            f"{where} has no article text: expected a lede paragraph after its "
            f"header (line {header_end + 1}) and before any 'You Might Like' "
            f"trailer, got none."
        )

    return {
        "article_id": article_id,
        "title": title,
        "summary": paragraphs[0],
        "body": "\n\n".join(paragraphs[1:]),
        "published": published,
        "views": views,
    }


#: Table files that may sit in a page folder by mistake (named in the rejection).
_TABLE_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".json", ".parquet", ".tsv", ".gz")


def read_pages(
    folder: str | os.PathLike[str],
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Parse every ``*.txt`` page in a folder.

    Files are read in order of file name; sub-folders are not searched. The
    ``article_id`` of each page is its file name without the ``.txt``
    extension.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder holding the raw pages.

    Returns
    -------
    records : list of dict
        One record per page that parsed, as returned by :func:`parse_page`,
        in file-name order.
    rejections : list of dict
        One ``{"source": file name, "article_id": str, "reason": str}`` per
        page that is not valid UTF-8 or does not have the page layout
        (:class:`PageFormatError`), and one (``article_id`` None) per other
        entry of the folder (a ``.csv``, a sub-folder; hidden files aside);
        ``reason`` is a one-line message. A rejected page does not stop the
        others. ``.TXT`` counts as ``.txt``.

    Raises
    ------
    FileNotFoundError
        If ``folder`` does not exist.
    NotADirectoryError
        If ``folder`` is not a directory.
    PageFormatError
        If ``folder`` holds no ``*.txt`` files.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (Path(tmp) / "a-1.txt").write_text(
    ...         "Title\\nViews: 3\\n2024-01-01 09:00\\nLede.\\n", encoding="utf-8"
    ...     )
    ...     _ = (Path(tmp) / "a-2.txt").write_bytes(b"\\xff\\xfe")
    ...     records, rejections = read_pages(tmp)
    >>> [r["article_id"] for r in records], [r["article_id"] for r in rejections]
    (['a-1'], ['a-2'])
    """
    path = Path(folder)
    if not path.exists():
        raise FileNotFoundError(f"Pages folder {str(path)!r} does not exist: expected a folder of *.txt article pages.")
    if not path.is_dir():
        raise NotADirectoryError(
            f"Pages folder {str(path)!r} is not a directory: expected a folder of *.txt article pages."
        )
    entries = sorted(path.iterdir(), key=lambda p: p.name)
    files = [p for p in entries if p.suffix.lower() == ".txt" and p.is_file()]
    if not files:
        raise PageFormatError(
            f"Pages folder {str(path)!r} has no *.txt files: expected one "
            f"article page per .txt file (sub-folders are not searched)."
        )

    records: list[dict[str, object]] = []
    rejections: list[dict[str, object]] = []
    pages = set(files)
    for file in entries:  # in name order; nothing in the folder is skipped without a word
        if file not in pages:
            if not file.name.startswith("."):
                what = "a folder (sub-folders are not searched)" if file.is_dir() else "not a .txt page"
                hint = " Give it as an input of its own." if file.suffix.lower() in _TABLE_SUFFIXES else ""
                reason = f"{file.name!r} in a page folder is {what}.{hint}"
                rejections.append({"source": file.name, "article_id": None, "reason": reason})
            continue
        article_id = file.stem
        data = file.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            reason = (
                f"File {file.name!r} is not valid UTF-8: byte "
                f"0x{data[exc.start]:02x} at offset {exc.start} ({exc.reason})."
            )
            rejections.append({"source": file.name, "article_id": article_id, "reason": reason})
            continue
        try:
            records.append(parse_page(text, article_id))
        except PageFormatError as exc:
            reason = " ".join(str(exc).split())
            rejections.append({"source": file.name, "article_id": article_id, "reason": reason})
    return records, rejections
