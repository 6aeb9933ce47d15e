"""Dates: one representation for every step (int64 nanoseconds since the epoch, UTC).

``NAT`` (the smallest int64) stands for "no date". Ingest parses dates into a
UTC datetime column; every step after it works on :func:`to_ns` of that column.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["DATE_FORMAT", "DAY_NS", "NAT", "date_text", "now_text", "stamp_ns", "to_ns", "utc_timestamp"]

#: The one text form of a date in every output: ISO 8601, UTC, seconds, ``Z``.
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

#: "No date" in an int64 nanosecond array.
NAT = np.iinfo(np.int64).min
#: One day in nanoseconds.
DAY_NS = 86_400 * 10**9


def to_ns(values: pd.Series | pd.Index | np.ndarray) -> np.ndarray:
    """UTC timestamps -> int64 ns since the epoch; missing -> :data:`NAT`. Shape (n,)."""
    stamps = pd.to_datetime(pd.Series(values) if isinstance(values, np.ndarray) else values, utc=True)
    return stamps.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").view(np.int64)


def stamp_ns(stamp: pd.Timestamp | None) -> int:
    """One UTC timestamp in ns since the epoch; 0 for None (no reference date)."""
    return 0 if stamp is None else int(stamp.value)


def utc_timestamp(value: Any, name: str = "published") -> pd.Timestamp | None:
    """A date given by a caller, as a UTC timestamp (naive times are UTC); None for no date.

    Raises ``ValueError`` naming ``name`` when ``value`` is not a date.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ValueError(f"{name} must be a date, got {value!r}.") from None
    if stamp is pd.NaT:
        return None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def date_text(value: Any) -> str | None:
    """A date as text in :data:`DATE_FORMAT` (naive times are UTC); None for no date."""
    if value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    stamp = pd.Timestamp(value)
    if stamp is pd.NaT:
        return None
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime(DATE_FORMAT)


def now_text() -> str:
    """The wall clock as text in :data:`DATE_FORMAT` (for logs, locks and audit entries, never for lists)."""
    return pd.Timestamp.now(tz="UTC").strftime(DATE_FORMAT)
