"""Batch output: write precomputed lists as CSV, JSON Lines or Parquet.

A path ending in ``.csv``, ``.jsonl`` or ``.parquet`` (optionally ``.gz`` for
CSV and JSON Lines) is one file of that format; any other path is a directory
of Parquet part files ``part-00000.parquet``, ... of at most ``part_rows`` rows.
Every file is written under a temporary name and renamed into place.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path

import pandas as pd

__all__ = ["output_format", "write_lists"]

_SINGLE = {".csv": "csv", ".csv.gz": "csv", ".jsonl": "jsonl", ".jsonl.gz": "jsonl", ".parquet": "parquet"}


def output_format(path: str | os.PathLike[str]) -> str:
    """``"csv"``, ``"jsonl"``, ``"parquet"`` (one file) or ``"parts"`` (a directory)."""
    name = Path(path).name.lower()
    for suffix, kind in _SINGLE.items():
        if name.endswith(suffix):
            return kind
    return "parts"


def write_lists(frame: pd.DataFrame, path: str | os.PathLike[str], *, part_rows: int = 1_000_000) -> list[Path]:
    """Write a list frame (as from ``Recommender.recommend_frame``) to ``path``.

    Returns
    -------
    list of Path
        The files written.
    """
    if isinstance(part_rows, bool) or not isinstance(part_rows, numbers.Integral) or part_rows < 1:
        raise ValueError(f"part_rows must be an integer >= 1, got {part_rows!r}.")
    target = Path(path)
    kind = output_format(target)
    if kind == "parts":
        if target.exists() and not target.is_dir():
            raise FileExistsError(f"Cannot write Parquet parts to '{target}': it is a file.")
        target.mkdir(parents=True, exist_ok=True)
        for old in target.glob("part-*.parquet"):
            old.unlink()
        written = []
        for number, start in enumerate(range(0, max(len(frame), 1), part_rows)):
            part = target / f"part-{number:05d}.parquet"
            _atomic(frame.iloc[start : start + part_rows], part, "parquet")
            written.append(part)
        return written
    target.parent.mkdir(parents=True, exist_ok=True)
    _atomic(frame, target, kind)
    return [target]


def _atomic(frame: pd.DataFrame, target: Path, kind: str) -> None:
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        if kind == "csv":
            frame.to_csv(
                temporary,
                index=False,
                date_format="%Y-%m-%dT%H:%M:%SZ",
                compression="gzip" if target.name.lower().endswith(".gz") else None,
            )
        elif kind == "jsonl":
            frame.to_json(
                temporary,
                orient="records",
                lines=True,
                date_format="iso",
                compression="gzip" if target.name.lower().endswith(".gz") else None,
            )
        else:
            frame.to_parquet(temporary, index=False)
        os.replace(temporary, target)
    finally:
        if temporary.exists():
            temporary.unlink()
