"""Serving: one model directory behind many threads, reloaded without a pause.

A web server calls :meth:`ModelHolder.recommend` on every page view, from any
number of threads, while a batch job writes new versions into the same model
directory. :meth:`ModelHolder.reload` loads the directory's current version
completely (and warms it) *before* switching one reference to it, so a call
sees either the old model or the new one, never a mix; each call reads that
reference once. Every answer names the model version that produced it
(:attr:`Answer.version`, the SHA-256 of that version's manifest).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._model import Recommendation, Recommender, load_model
from ._store import manifest_digest, version_dir

__all__ = ["Answer", "ModelHolder"]


@dataclass(frozen=True, slots=True)
class Answer:
    """A list and the model version that produced it.

    Attributes
    ----------
    items : list of Recommendation
    version : str
        SHA-256 of the manifest of the model version that answered.
    """

    items: list[Recommendation]
    version: str

    def __iter__(self):  # so that ``for item in holder.recommend(...)`` works like a list
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class ModelHolder:
    """Thread-safe access to the current version of a model directory.

    Parameters
    ----------
    path : path-like
        The model directory (as written by ``Recommender.save``).
    warm : bool, default True
        Build the request caches on load, so the first page view after a
        (re)load is as fast as the others.

    Examples
    --------
    A web server module loads the holder once and calls it per request::

        holder = ModelHolder("models/news")
        answer = holder.recommend("a-123", k=5)
        answer.version, [r.article_id for r in answer]
    """

    def __init__(self, path: str | os.PathLike[str], *, warm: bool = True) -> None:
        self.path = Path(path)
        self._warm = warm
        self._reloading = threading.Lock()
        self._current = self._load(*self._newest())

    def _newest(self) -> tuple[Path, str]:
        """The directory's current version folder and the SHA-256 of its manifest."""
        folder = version_dir(self.path)
        return folder, manifest_digest(folder)

    def _load(self, folder: Path, digest: str) -> tuple[Recommender, str]:
        model = load_model(folder)
        if self._warm:
            model.warm()
        return model, digest

    @property
    def model(self) -> Recommender:
        """The model serving now (do not change it: load, update and save a copy instead)."""
        return self._current[0]

    @property
    def version(self) -> str:
        """SHA-256 of the manifest of the version serving now."""
        return self._current[1]

    def reload(self) -> bool:
        """Switch to the directory's current version if it changed; returns whether it switched.

        The new version is loaded and warmed first; calls in flight finish on the
        old one. A failing load (a corrupt new version) raises and leaves the
        old version serving.
        """
        with self._reloading:
            folder, digest = self._newest()
            if digest == self._current[1]:
                return False
            self._current = self._load(folder, digest)
            return True

    def recommend(
        self, article_id: str, k: int = 5, *, exclude: Iterable[str] | None = None, **controls: Any
    ) -> Answer:
        """``Recommender.recommend`` on the current version; see there for the arguments."""
        model, version = self._current
        return Answer(model.recommend(article_id, k=k, exclude=exclude, **controls), version)

    def recommend_for_text(self, **arguments: Any) -> Answer:
        """``Recommender.recommend_for_text`` on the current version; see there for the arguments."""
        model, version = self._current
        return Answer(model.recommend_for_text(**arguments), version)

    def popular(self, k: int = 10, **arguments: Any) -> Answer:
        """``Recommender.popular`` on the current version."""
        model, version = self._current
        return Answer(model.popular(k, **arguments), version)
