"""Values built once per key, for the caches that fitted parts keep (term lists, inverted index, list cache).

A :class:`Memo` is a dict with one extra door, :meth:`Memo.once`: two threads
asking for the same missing key at once build its value once. ``keep`` bounds
how many keys are kept (the oldest goes first), for caches whose values are
large.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Memo"]


class Memo(dict):
    """A dict whose values :meth:`once` builds at most once per key."""

    def __init__(self, *args: Any, keep: int | None = None) -> None:
        super().__init__(*args)
        self._lock = threading.Lock()
        self._keep = keep

    def __reduce__(self) -> tuple[Any, ...]:
        """A memo travels empty (to a Dask worker, say): its values are caches, built again where they are used."""
        return (_empty, (self._keep,))

    def once(self, key: Any, build: Callable[[], Any]) -> Any:
        """The value of ``key``, built by ``build()`` the first time it is asked for."""
        value = self.get(key)
        if value is None:
            with self._lock:
                value = self.get(key)
                if value is None:
                    value = build()
                    while self._keep is not None and self and len(self) >= self._keep:
                        del self[next(iter(self))]
                    self[key] = value
        return value


def _empty(keep: int | None) -> Memo:
    return Memo(keep=keep)
