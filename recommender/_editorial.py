"""Editorial state: what the newsroom decided about the lists, by article id.

* **blocked**: ids kept out of every list (unknown ids too, so an article blocked
  before it is added stays blocked);
* **pins**: per source id, ids put at the top of its list, in this order;
* **bans**: per source id, ids never shown in its list.

An :class:`Editorial` is never changed: each action returns the next one. It
outlives a rebuild: :meth:`Editorial.carried_into` is what ``recommender build``
gives a freshly fitted model from the version it replaces.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["Carried", "Editorial"]


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Editorial:
    """Blocked ids, pins and bans (read-only mappings)."""

    blocked: frozenset[str] = frozenset()
    pins: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _frozen({}))
    bans: Mapping[str, frozenset[str]] = field(default_factory=lambda: _frozen({}))

    @classmethod
    def of(
        cls,
        blocked: Iterable[str] = (),
        pins: Mapping[str, Sequence[str]] | None = None,
        bans: Mapping[str, Iterable[str]] | None = None,
    ) -> Editorial:
        """An editorial state from plain collections (ids as strings)."""
        return cls(
            frozenset(str(a) for a in blocked),
            _frozen({str(k): tuple(dict.fromkeys(str(a) for a in v)) for k, v in (pins or {}).items() if v}),
            _frozen({str(k): frozenset(str(a) for a in v) for k, v in (bans or {}).items() if v}),
        )

    def __bool__(self) -> bool:
        return bool(self.blocked or self.pins or self.bans)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as plain collections (read-only mappings do not pickle), rebuilt by :meth:`of`."""
        return (Editorial.of, (sorted(self.blocked), dict(self.pins), {k: sorted(v) for k, v in self.bans.items()}))

    def block(self, article_ids: Iterable[str]) -> Editorial:
        return Editorial(self.blocked | set(article_ids), self.pins, self.bans)

    def unblock(self, article_ids: Iterable[str]) -> Editorial:
        return Editorial(self.blocked - set(article_ids), self.pins, self.bans)

    def pin(self, source_id: str, recommended_ids: Sequence[str]) -> Editorial:
        pins = dict(self.pins)
        if recommended_ids:
            pins[source_id] = tuple(dict.fromkeys(recommended_ids))
        else:
            pins.pop(source_id, None)
        return Editorial(self.blocked, _frozen(pins), self.bans)

    def ban(self, source_id: str, recommended_id: str) -> Editorial:
        bans = dict(self.bans)
        bans[source_id] = frozenset(bans.get(source_id, frozenset()) | {recommended_id})
        return Editorial(self.blocked, self.pins, _frozen(bans))

    def unban(self, source_id: str, recommended_id: str) -> Editorial:
        bans = dict(self.bans)
        left = frozenset(bans.get(source_id, frozenset()) - {recommended_id})
        if left:
            bans[source_id] = left
        else:
            bans.pop(source_id, None)
        return Editorial(self.blocked, self.pins, _frozen(bans))

    def merged_over(self, earlier: Editorial) -> Editorial:
        """``earlier`` with this state's decisions on top: blocks added, this state's pins and bans win."""
        return Editorial(
            earlier.blocked | self.blocked,
            _frozen({**dict(earlier.pins), **dict(self.pins)}),
            _frozen({**dict(earlier.bans), **dict(self.bans)}),
        )

    def carried_into(self, known: Collection[str]) -> tuple[Editorial, Carried]:
        """This state for a model of the articles ``known``, and what did not carry.

        Blocked ids are all kept (an article blocked before it is added stays
        blocked), and those not in ``known`` are reported. Pins and bans of a
        source that is not in ``known`` are dropped, as are pinned or banned ids
        that are not; both are reported.
        """
        pins, bans = {}, {}
        dropped_pins, dropped_bans = [], []
        for source, targets in self.pins.items():
            kept = tuple(t for t in targets if t in known)
            if source in known and kept:
                pins[source] = kept
            dropped_pins += [(source, t) for t in targets if source not in known or t not in known]
        for source, targets in self.bans.items():
            kept_bans = frozenset(t for t in targets if t in known)
            if source in known and kept_bans:
                bans[source] = kept_bans
            dropped_bans += [(source, t) for t in sorted(targets) if source not in known or t not in known]
        carried = Editorial(self.blocked, _frozen(pins), _frozen(bans))
        report = Carried(
            blocked=len(self.blocked),
            pins=len(pins),
            bans=len(bans),
            blocked_unknown=tuple(sorted(a for a in self.blocked if a not in known)),
            pins_dropped=tuple(dropped_pins),
            bans_dropped=tuple(dropped_bans),
        )
        return carried, report


@dataclass(frozen=True)
class Carried:
    """What a rebuild took over from the version it replaced (see :meth:`Editorial.carried_into`).

    Attributes
    ----------
    source : str or None
        The version the editorial state came from (its folder name), None when there was none.
    blocked, pins, bans : int
        Blocked ids, pinned lists and banned lists carried over.
    blocked_unknown : tuple of str
        Blocked ids that are not among the new model's articles (kept blocked).
    pins_dropped, bans_dropped : tuple of (source id, article id)
        Pins and bans dropped because the source or the article is not in the new model.
    """

    blocked: int = 0
    pins: int = 0
    bans: int = 0
    blocked_unknown: tuple[str, ...] = ()
    pins_dropped: tuple[tuple[str, str], ...] = ()
    bans_dropped: tuple[tuple[str, str], ...] = ()
    source: str | None = None

    def summary(self) -> str:
        """One line for a log or the CLI."""
        if self.source is None:
            return "No earlier version: no editorial state to carry over."
        text = (
            f"Editorial state carried over from {self.source}: {self.blocked} blocked, {self.pins} pinned and "
            f"{self.bans} banned lists"
        )
        notes = []
        if self.blocked_unknown:
            notes.append(f"{len(self.blocked_unknown)} blocked ids are not among the articles (kept blocked)")
        if self.pins_dropped:
            notes.append(f"{len(self.pins_dropped)} pins dropped (article gone)")
        if self.bans_dropped:
            notes.append(f"{len(self.bans_dropped)} bans dropped (article gone)")
        return text + ("; " + "; ".join(notes) if notes else "") + "."
