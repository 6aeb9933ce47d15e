"""Text written where people open it: CSV cells safe in spreadsheets, exact JSON Lines, printable terminal lines.

Article text is written into files that editors open in spreadsheets and into
lines printed on an operator's terminal, so it is written so that it cannot run
there:

* **CSV** (:func:`write_csv`): a text cell that starts with ``=``, ``+``, ``-``,
  ``@``, a tab or a carriage return would run as a formula in Excel, LibreOffice
  or Google Sheets (OWASP "CSV injection"); such a cell (and one that starts with
  ``'`` and then one of those) is written with a ``'`` in front (:func:`spreadsheet_cell`), which
  spreadsheets show as text. :func:`from_spreadsheet_cell` undoes it exactly;
  the library does so wherever it reads its own CSV files back. Records end in
  CRLF (RFC 4180), so a field holding a bare ``\\r`` or ``\\n`` is quoted and a
  reader never splits it. Numbers are not touched.
* **JSON Lines** (:func:`write_jsonl`): every value exact (floats as Python's
  shortest round-trip form, so parts still add up and tiny scores stay), dates as
  ISO 8601 UTC seconds with ``Z``, missing values ``null``.
* **Terminal** (:func:`printable`): control characters (escape sequences, bell,
  OSC 52 clipboard writes, bidirectional overrides) are shown as ``\\x1b``-style
  escapes instead of being sent raw.

Parquet files keep every value exact and untouched.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any

import numpy as np
import pandas as pd

from ._dates import DATE_FORMAT, date_text

__all__ = ["from_spreadsheet_cell", "printable", "spreadsheet_cell", "write_csv", "write_jsonl"]

#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: What :func:`spreadsheet_cell` puts in front, and the second characters after which it is removed again.
_QUOTE = "'"
_ESCAPED = (*FORMULA_STARTS, _QUOTE)


def spreadsheet_cell(value: str) -> str:
    """``value`` as a CSV cell that no spreadsheet runs: a ``'`` in front when it starts like a formula.

    Text that already starts with a ``'`` followed by one of those characters (or by
    another ``'``) gets one too, so that :func:`from_spreadsheet_cell` is exact; a
    title in quotes (``'Earth-based life...'``) is left as it is.
    """
    if value.startswith(FORMULA_STARTS) or (value[:1] == _QUOTE and value[1:2] in _ESCAPED and len(value) > 1):
        return _QUOTE + value
    return value


def from_spreadsheet_cell(value: str) -> str:
    """The text a :func:`spreadsheet_cell` was made from (any other text comes back unchanged)."""
    return value[1:] if len(value) > 1 and value[0] == _QUOTE and value[1] in _ESCAPED else value


def _text_column(values: pd.Series) -> pd.Series:
    return values.map(lambda v: spreadsheet_cell(v) if isinstance(v, str) else v)


def write_csv(frame: pd.DataFrame, handle: Any, *, header: bool = True) -> None:
    """Append ``frame`` to a text handle as CSV: text cells made safe, dates as ISO UTC seconds, CRLF records."""
    safe = frame.copy(deep=False)
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column].dtype):
            safe[column] = _text_column(safe[column])
    if header:
        safe.columns = [spreadsheet_cell(str(c)) for c in safe.columns]
    safe.to_csv(handle, index=False, header=header, date_format=DATE_FORMAT, lineterminator="\r\n")


def _json_value(value: Any) -> Any:
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        return date_text(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return value if isinstance(value, str) else str(value)


def write_jsonl(frame: pd.DataFrame, handle: Any) -> None:
    """Append ``frame`` to a text handle as JSON Lines, every value exact (see the module docstring)."""
    columns = [str(c) for c in frame.columns]
    for row in frame.itertuples(index=False, name=None):
        record = {name: _json_value(value) for name, value in zip(columns, row, strict=True)}
        handle.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str, *, newlines: bool = False) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``, ``\\u202e``), so that printing it
    cannot move the cursor, retitle or clear the terminal, write the clipboard or reorder the line.

    Tabs are kept; line breaks too when ``newlines`` is true.
    """
    if text.isascii() and text.isprintable():
        return text

    def escape(match: re.Match[str]) -> str:
        char = match.group()
        if newlines and char == "\n":
            return char
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _CONTROL.sub(escape, text)
