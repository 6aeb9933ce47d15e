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

import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._dates import now_text
from ._errors import ModelFormatError, UnknownArticleError
from ._model import Recommendation, Recommender, load_model
from ._store import (
    editorial_of,
    manifest_digest,
    newest_valid_version,
    read_manifest,
    same_but_editorial,
    version_dir,
)

__all__ = ["Answer", "ModelHolder"]

logger = logging.getLogger("recommender")


@dataclass(frozen=True, slots=True)
class Answer:
    """A list and the model version that produced it.

    Attributes
    ----------
    items : list of Recommendation
    version : str
        SHA-256 of the manifest of the model version that answered.
    fallback : bool
        True when the article asked for is not in the model and the list is the
        popular list instead (:meth:`ModelHolder.related`).
    """

    items: list[Recommendation]
    version: str
    fallback: bool = False

    def __iter__(self):  # so that ``for item in holder.recommend(...)`` works like a list
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Recommendation:
        return self.items[index]

    def to_dict(self) -> dict[str, Any]:
        """``{"version": ..., "fallback": ..., "items": [Recommendation.to_dict(), ...]}``, JSON-safe."""
        return {"version": self.version, "fallback": self.fallback, "items": [item.to_dict() for item in self.items]}


class ModelHolder:
    """Thread-safe access to the current version of a model directory.

    Parameters
    ----------
    path : path-like
        The model directory (as written by ``Recommender.save``).
    warm : bool, default True
        Build the request caches on load, so the first page view after a
        (re)load is as fast as the others.
    watch : bool, default False
        Reload in the background whenever the directory's current version
        changes (checked every ``interval`` seconds; the new version is loaded
        and warmed before the switch, the old one answers meanwhile). A version
        that fails to load is logged and skipped; the old one keeps serving.
        Each process (each worker of a multi-process server) watches for itself.
    interval : float, default 2.0
        Seconds between two checks of ``watch``.
    newest_valid : bool, default False
        When the current version does not load, serve the newest complete
        version that does (logged as a warning) instead of raising; see
        :func:`recommender.load_model`.

    Examples
    --------
    A web server module loads the holder once and calls it per request::

        holder = ModelHolder("models/news")
        answer = holder.recommend("a-123", k=5)
        answer.version, [r.article_id for r in answer]
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        warm: bool = True,
        watch: bool = False,
        interval: float = 2.0,
        newest_valid: bool = False,
    ) -> None:
        if not (isinstance(interval, (int, float)) and not isinstance(interval, bool) and interval > 0):
            raise ValueError(f"interval must be a number of seconds > 0, got {interval!r}.")
        self.path = Path(path)
        self._warm = warm
        self._newest_valid = newest_valid
        self._reloading = threading.Lock()
        folder, digest = self._newest()
        self._current = self._load(folder, digest)
        self.loaded_at = now_text()  # when the version serving now was switched in (ISO 8601 UTC)
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.last_error: str | None = None  # why the last background reload failed (None: it did not)
        self._broken: str | None = None if self._current[1] == digest else digest  # a CURRENT that did not load
        if watch:
            self._watcher = threading.Thread(
                target=self._watch, args=(float(interval),), name=f"recommender-watch-{self.path.name}", daemon=True
            )
            self._watcher.start()

    def _watch(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self._switch()
            except Exception as exc:  # a broken version must never stop the watcher
                message = f"{type(exc).__name__}: {exc}"
                if message != self.last_error:
                    logger.warning("ModelHolder(%s): not switching to the new version: %s", self.path, message)
                self.last_error = message

    def _switch(self) -> bool:
        """Switch to the directory's current version if it changed and was not found broken before."""
        with self._reloading:
            folder, digest = self._newest()
            if digest in (self._current[1], self._broken):
                return False
            try:
                current = self._load(folder, digest)
            except Exception:
                self._broken = digest  # tried again only once CURRENT points elsewhere
                raise
            self._broken = None if current[1] == digest else digest  # newest_valid served another version
            if current[1] == self._current[1]:
                return False
            self._current, self.loaded_at = current, now_text()
            self.last_error = (
                None if self._broken is None else f"{folder.name} does not load; serving the newest valid version"
            )
            return True

    def close(self) -> None:
        """Stop watching (the holder keeps answering from the version it has)."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=30)

    def __enter__(self) -> ModelHolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _newest(self) -> tuple[Path, str]:
        """The directory's current version folder and the SHA-256 of its manifest."""
        folder = version_dir(self.path)
        return folder, manifest_digest(folder)

    def _load(self, folder: Path, digest: str) -> tuple[Recommender, str]:
        current = self.__dict__.get("_current")
        if current is not None and self._editorial_only(current[0], folder):
            # an editor's click: the same arrays with another editorial state; no reload of the arrays
            model = current[0]._with_editorial(editorial_of(folder), saved=(str(folder), folder.name, digest))
            if self._warm:
                model.warm()
            return model, digest
        try:
            model = load_model(folder)
        except ModelFormatError as exc:
            if not self._newest_valid:
                raise
            folder = newest_valid_version(self.path)
            logger.warning(
                "ModelHolder(%s): %s; serving %s, the newest version that loads", self.path, exc, folder.name
            )
            model, digest = load_model(folder), manifest_digest(folder)
        if self._warm:
            model.warm()
        return model, digest

    @staticmethod
    def _editorial_only(model: Recommender, folder: Path) -> bool:
        """Whether the version in ``folder`` differs from ``model``'s own version only in its editorial state."""
        saved = model.__dict__.get("_saved")
        if not saved:
            return False
        try:
            return same_but_editorial(read_manifest(saved[0]), read_manifest(folder))
        except (OSError, ModelFormatError):
            return False

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
        self._broken = None  # a reload asked for by hand tries the current version again
        return self._switch()

    def recommend(
        self, article_id: str, k: int = 5, *, exclude: Iterable[str] | None = None, **controls: Any
    ) -> Answer:
        """``Recommender.recommend`` on the current version; see there for the arguments."""
        model, version = self._current
        return Answer(model.recommend(article_id, k=k, exclude=exclude, **controls), version)

    def related(self, article_id: str, k: int = 5, *, exclude: Iterable[str] | None = None, **controls: Any) -> Answer:
        """:meth:`recommend`, but never raising for an unknown id: the page of an article the model does not
        know yet (published after the last build) gets the popular list, with ``Answer.fallback`` True.

        Invalid arguments (``k``, a control) still raise ``ValueError``: they are the caller's to fix.
        """
        model, version = self._current
        try:
            return Answer(model.recommend(article_id, k=k, exclude=exclude, **controls), version)
        except UnknownArticleError:
            return Answer(model.popular(k, exclude=exclude), version, fallback=True)

    def recommend_for_text(self, **arguments: Any) -> Answer:
        """``Recommender.recommend_for_text`` on the current version; see there for the arguments."""
        model, version = self._current
        return Answer(model.recommend_for_text(**arguments), version)

    def popular(self, k: int = 10, **arguments: Any) -> Answer:
        """``Recommender.popular`` on the current version."""
        model, version = self._current
        return Answer(model.popular(k, **arguments), version)
