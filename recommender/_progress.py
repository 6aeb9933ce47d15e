"""Progress bars (tqdm, on stderr): shown when asked, or by default only on a terminal."""

from __future__ import annotations

from typing import Any

__all__ = ["bar"]


def bar(progress: bool | None, **options: Any) -> Any:
    """A tqdm bar: shown when ``progress`` is True, hidden when False, and when None only if stderr is a terminal."""
    from tqdm import tqdm

    return tqdm(disable=None if progress is None else not progress, leave=False, **options)
