"""Persistence: the model directory. The only module that touches model files.

A model directory holds numbered versions and a pointer to the current one::

    models/news/
    ├── CURRENT                  # one line: the name of the current version
    ├── version-000001/
    └── version-000002/
        ├── manifest.json        # format, versions, parameters, counts, reference date, SHA-256 of every file
        ├── neighbours.npy       # (n, pool) int32 ... one .npy file per array
        ├── rejected.csv         # rows rejected while reading and fitting (when there were any)
        └── flagged.csv          # rows kept but reported, e.g. dated in the future (when there were any)

:func:`save_state` writes a new version into a temporary folder, renames it
into place, and then replaces ``CURRENT`` with an atomic rename, so a reader
either sees the old model or the new one, never half of one. Older versions
beyond ``keep`` are removed afterwards.

:func:`read_model` follows ``CURRENT``, checks the format and every file's
SHA-256, and reads arrays with ``numpy.load(..., allow_pickle=False,
mmap_mode="r")``: no code from the files runs, and worker processes of a web
server share one copy of the arrays through the page cache. Strings are stored
as UTF-8 bytes plus offsets.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._articles import REJECTED_COLUMNS
from ._catalogue import Catalogue
from ._dates import now_text, to_ns
from ._duplicates import Signatures
from ._editorial import Carried, Editorial
from ._errors import InvalidPart, ModelFormatError
from ._index import VectorIndex
from ._locks import held
from ._outputs import from_spreadsheet_cell, write_csv
from ._pools import Pools
from ._state import FittedState, Settings, settings_of
from ._text import TextParams, Vocabulary
from ._tokens import MAX_TERM_CHARS

__all__ = [
    "AUDIT",
    "FORMAT",
    "FORMAT_VERSION",
    "OLDEST_FORMAT_VERSION",
    "Loaded",
    "Saved",
    "append_audit",
    "editorial_of",
    "file_sha256",
    "manifest_digest",
    "newest_valid_version",
    "read_audit",
    "read_json",
    "read_manifest",
    "read_model",
    "rollback",
    "same_but_editorial",
    "save_state",
    "version_dir",
    "versions_of",
]

FORMAT = "recommender-model"
FORMAT_VERSION = 4
#: Format history. 1: the first format. 2: adds ``flagged.csv``; a format-1 model
#: loads as a model with nothing flagged. 3: adds the copy signatures
#: (``signatures.*.npy``) and the parameters ``stop_words`` and ``collapse``, drops
#: ``title_keys.npy``; a format-1 or 2 model loads with its stored duplicate groups,
#: ``stop_words="english"`` (what it was fitted with) and no signatures, so
#: ``add_articles``/``update_articles`` ask for a rebuild. 4: stores tags one by one
#: (``tag_values.*``, ``tag_counts.npy``) instead of joined by a separator that a tag
#: could itself contain (``tags.*``); a model of format 1 to 3 loads its joined tags.
#: Versions below this one cannot be read.
OLDEST_FORMAT_VERSION = 1
#: Parameters a manifest of an older format lacks, with the meaning they had then.
_OLD_MEANING = {"stop_words": "english", "collapse": True}
POINTER = "CURRENT"
#: Complete versions a save keeps by default (besides the newest full build and the newest that loads).
KEEP = 5
#: The save lock of a model directory (see :func:`save_state`).
LOCK = ".lock"
MANIFEST = "manifest.json"
_VERSION_NAME = re.compile(r"^version-(\d{6,})$")
_STRING_COLUMNS = ("article_id", "title", "url", "category")
#: How formats 1 to 3 joined an article's tags.
_OLD_TAG_SEPARATOR = "\x1f"
#: The most memory the vocabulary may take once loaded (bytes): its terms are a fixed-width array, as wide as
#: the longest term. A model built now has no term longer than ``MAX_TERM_CHARS`` (64); one built before that
#: rule may, and loads while its array stays under this.
_TERMS_BYTES = 512 * 2**20


# --------------------------------------------------------------------------- save


@dataclass(frozen=True)
class Saved:
    """What :func:`save_state` wrote."""

    name: str  # the version folder, e.g. "version-000003"
    digest: str  # the version's identity: SHA-256 of its manifest (see manifest_digest)
    state: FittedState  # the state as saved (with the editorial state carried over, if it was)
    carried: Carried | None  # what a fresh fit took over from the version it replaced, if it did


def save_state(
    state: FittedState,
    params: Mapping[str, Any],
    path: str | os.PathLike[str],
    *,
    carry_editorial: bool = False,
    keep: int = KEEP,
    build: bool = False,
) -> Saved:
    """Write a new version of a fitted state under ``path`` and make it current.

    Parameters
    ----------
    state : FittedState
    params : mapping
        The model's parameters (``Recommender.get_params()``), saved in the manifest.
    path : path-like
        The model directory (created if needed).
    carry_editorial : bool, default False
        Give the new version the editorial state of the directory's current
        version with ``state``'s own on top (see ``Editorial.merged_over`` and
        ``Editorial.carried_into``). It is read under the directory's save lock
        as the new version is published, so no editorial save made meanwhile is
        lost.
    keep : int, default 5
        Complete versions kept after saving (the new one included), besides the
        newest full build and the newest version that loads; older ones are
        deleted (see :func:`_prune`). Editorial saves make a version each, so
        this is what makes a rollback useful.
    build : bool, default False
        The state comes from a fit (a full build), not from editing a loaded model;
        recorded in the manifest (``"build": true``) for the retention rule.

    The new version is read back and validated (:func:`read_model`) before
    ``CURRENT`` is switched to it: a save never publishes a version that does
    not load. Arrays memory-mapped from a version of the same directory (a
    loaded model saved after an editorial action) are hard-linked, not copied:
    an editorial-only version costs its editorial state and its string columns.
    """
    from . import __version__

    model_dir = Path(path)
    if model_dir.exists() and not model_dir.is_dir():
        raise ModelFormatError(f"Cannot save a model to '{model_dir}': it is a file, expected a directory.")
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{os.getpid()}-", dir=model_dir))
    try:
        files: dict[str, dict[str, Any]] = {}
        for name, array in _arrays(state).items():
            files[f"{name}.npy"] = _linked(model_dir, array, staging / f"{name}.npy") or _write_array(
                staging / f"{name}.npy", array
            )
        for name, records in (("rejected.csv", state.rejected), ("flagged.csv", state.flagged)):
            if records:
                target = staging / name
                with open(target, "w", encoding="utf-8", newline="") as handle:
                    write_csv(pd.DataFrame.from_records(list(records), columns=list(REJECTED_COLUMNS)), handle)
                _fsync(target)
                files[name] = _describe_file(target)
        with _save_lock(model_dir):
            _remove_leftovers(model_dir)
            carried = None
            if carry_editorial:
                editorial, carried = _carried(model_dir, state)
                if editorial != state.editorial:
                    state = state.evolve(editorial=editorial, catalogue=state.catalogue.with_blocked(editorial.blocked))
            files["editorial.json"] = _write_editorial(staging / "editorial.json", state.editorial)
            manifest = _manifest(state, params, {k: _entry(v) for k, v in files.items()}, __version__)
            manifest["build"] = bool(build)
            manifest_path = staging / MANIFEST
            manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            _fsync(manifest_path)
            _fsync(staging)
            digest = manifest_digest(staging)
            try:
                source = _editorial_only_of(model_dir, files)
                if source is None:
                    read_model(staging, verify=False)  # as a reader will see it: sizes and every rule
                else:  # the arrays and reports of a version this process loaded (and so checked): check the rest
                    read_manifest(staging)
                    _read_editorial(staging / "editorial.json")
            except ModelFormatError as exc:
                raise ModelFormatError(f"The new version failed its own check and was not published: {exc}") from None
            name = _publish(model_dir, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _prune(model_dir, keep=keep, loads=name)
    return Saved(name, digest, state, carried)


def _carried(model_dir: Path, state: FittedState) -> tuple[Editorial, Carried]:
    """The editorial state the directory's current version hands to a freshly fitted one, and the report."""
    current = _current_name(model_dir)
    if current is None or not (model_dir / current / "editorial.json").is_file():
        return state.editorial, Carried(source=None)
    earlier = _read_editorial(model_dir / current / "editorial.json")
    earlier_state = Editorial.of(earlier["blocked"], earlier["pins"], earlier["bans"])
    editorial, report = state.editorial.merged_over(earlier_state).carried_into(set(state.catalogue.ids))
    return editorial, replace(report, source=current)


def _write_editorial(path: Path, editorial: Editorial) -> dict[str, Any]:
    path.write_text(
        json.dumps(
            {
                "blocked": sorted(editorial.blocked),
                "pins": {k: list(v) for k, v in sorted(editorial.pins.items())},
                "bans": {k: sorted(v) for k, v in sorted(editorial.bans.items())},
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    _fsync(path)
    return _describe_file(path)


def _manifest(state: FittedState, params: Mapping[str, Any], files: dict[str, Any], library: str) -> dict[str, Any]:
    catalogue, index = state.catalogue, state.index
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": library,
        "parameters": _json_params(dict(params)),
        "counts": {
            "articles": len(state),
            "terms": len(index.vocabulary),
            "pool_size": state.pools.size,
            "vector_entries": int(index.vectors.nnz),
            "rejected": len(state.rejected),
            "flagged": len(state.flagged),
            "copies": int((state.copy_labels >= 0).sum()),
            "duplicate_groups": int((np.bincount(np.asarray(catalogue.groups)) > 1).sum()) if len(state) else 0,
            "blocked": len(state.editorial.blocked),
            "pins": len(state.editorial.pins),
            "bans": len(state.editorial.bans),
        },
        "reference_date": None if catalogue.reference_date is None else catalogue.reference_date.isoformat(),
        "popularity_scale": float(catalogue.popularity_scale),
        "latent_weight": float(index.vocabulary.latent_weight),
        "copy_signatures": catalogue.signatures is not None,
        "drift_counts": [int(x) for x in np.asarray(index.drift_counts)],
        "files": files,
    }


def _save_lock(model_dir: Path) -> contextlib.AbstractContextManager[None]:
    """The model directory's save lock (``.lock``): one publication at a time, across processes and threads."""
    return held(model_dir / LOCK, what=f"The model directory '{model_dir}'", wait=True)


def manifest_digest(version_dir: str | os.PathLike[str]) -> str:
    """The identity of a model version: the SHA-256 of its manifest file (which holds every file's SHA-256)."""
    return hashlib.sha256((Path(version_dir) / MANIFEST).read_bytes()).hexdigest()


def _arrays(state: FittedState) -> dict[str, np.ndarray]:
    catalogue, index = state.catalogue, state.index
    vectors = index.vectors.tocsr()
    table = catalogue.table
    arrays: dict[str, np.ndarray] = {
        "vectors.data": np.asarray(vectors.data, dtype=np.float32),
        "vectors.indices": np.asarray(vectors.indices, dtype=np.int32),
        "vectors.indptr": np.asarray(vectors.indptr, dtype=np.int64),
        "vectors.shape": np.asarray(vectors.shape, dtype=np.int64),
        "idf": np.asarray(index.vocabulary.idf, dtype=np.float32),
        "components": np.zeros((0, len(index.vocabulary)), dtype=np.float32)
        if index.vocabulary.components is None
        else np.asarray(index.vocabulary.components, dtype=np.float32),
        "neighbours": np.asarray(state.pools.rows, dtype=np.int32),
        "similarities": np.asarray(state.pools.similarities, dtype=np.float32),
        "popularity": np.asarray(catalogue.popularity, dtype=np.float32),
        "text_keys": np.asarray(catalogue.text_keys, dtype=np.int64),
        "groups": np.asarray(catalogue.groups, dtype=np.int64),
        "published": to_ns(table["published"]),
        "views": table["views"].to_numpy(dtype=np.float64),
    }
    signatures = catalogue.signatures
    if signatures is not None:  # None: a model loaded from format 1 or 2 (saved again without them)
        arrays.update(
            {
                "signatures.values": np.asarray(signatures.values, dtype=np.uint32),
                "signatures.indptr": np.asarray(signatures.indptr, dtype=np.int64),
                "signatures.level": np.asarray(signatures.level, dtype=np.uint8),
                "signatures.size": np.asarray(signatures.size, dtype=np.int32),
            }
        )
    arrays.update(_encode_strings("vocabulary", index.vocabulary.terms.tolist()))
    for column in _STRING_COLUMNS:
        arrays.update(_encode_strings(column, table[column].tolist()))
    tags = table["tags"].tolist()
    arrays.update(_encode_strings("tag_values", [tag for article in tags for tag in article]))
    arrays["tag_counts"] = np.array([len(article) for article in tags], dtype=np.int64)
    return arrays


def _encode_strings(name: str, values: list[str | None]) -> dict[str, np.ndarray]:
    """Strings -> UTF-8 bytes, end offsets, and a mask of missing values."""
    encoded = [b"" if v is None else str(v).encode("utf-8") for v in values]
    ends = np.cumsum([len(b) for b in encoded], dtype=np.int64)
    return {
        f"{name}.bytes": np.frombuffer(b"".join(encoded), dtype=np.uint8),
        f"{name}.ends": ends,
        f"{name}.missing": np.array([v is None for v in values], dtype=bool),
    }


def _decode_strings(arrays: dict[str, np.ndarray], name: str) -> list[str | None]:
    raw, ends, missing = (np.asarray(arrays[f"{name}.{part}"]) for part in ("bytes", "ends", "missing"))
    if raw.dtype != np.uint8 or ends.dtype != np.int64 or missing.dtype != bool:
        raise InvalidPart(name, "expected uint8 bytes, int64 end offsets and a bool mask")
    if raw.ndim != 1 or ends.ndim != 1 or ends.shape != missing.shape:
        raise InvalidPart(name, "expected one end offset and one mask value per string")
    if ends.size and (ends[0] < 0 or (np.diff(ends) < 0).any() or ends[-1] != raw.size):
        raise InvalidPart(name, "end offsets must rise to the number of bytes")
    data = raw.tobytes()
    out: list[str | None] = []
    start = 0
    try:
        for end, absent in zip(ends.tolist(), missing.tolist(), strict=True):
            out.append(None if absent else data[start:end].decode("utf-8"))
            start = end
    except UnicodeDecodeError as exc:
        raise InvalidPart(name, f"not valid UTF-8 ({exc})") from None
    return out


def _entry(info: Mapping[str, Any]) -> dict[str, Any]:
    """A file's manifest entry (without where it was linked from)."""
    return {"sha256": info["sha256"], "bytes": info["bytes"]}


def _editorial_only_of(model_dir: Path, files: Mapping[str, Any]) -> Path | None:
    """The version of ``model_dir`` whose every file but ``editorial.json`` has the checksums in ``files``
    (a save of a loaded model after an editorial action), or None."""
    linked = {entry.get("from") for entry in files.values() if isinstance(entry, dict)} - {None}
    if len(linked) != 1:
        return None
    source = model_dir / linked.pop()
    try:
        theirs = read_json(source / MANIFEST)["files"]
    except (OSError, KeyError, TypeError, ModelFormatError):
        return None
    ours = {k: {"sha256": v["sha256"], "bytes": v["bytes"]} for k, v in files.items() if k != "editorial.json"}
    theirs = {k: v for k, v in theirs.items() if k != "editorial.json"} if isinstance(theirs, dict) else None
    return source if ours == theirs else None


def _linked(model_dir: Path, array: np.ndarray, target: Path) -> dict[str, Any] | None:
    """Hard-link ``target`` to the file ``array`` is memory-mapped from, when that file is a whole array of a
    version of this model directory (an editorial save of a loaded model: its arrays did not change); the
    manifest entry of that version describes it. None (write it) otherwise, or where links do not work."""
    base: Any = array
    while isinstance(base, np.ndarray) and not isinstance(base, np.memmap):
        base = base.base  # a view's owner; memory allocated elsewhere (numba, mmap) ends the walk
    if not isinstance(base, np.memmap) or not getattr(base, "filename", None):
        return None
    source = Path(base.filename)
    whole = (
        array.shape == base.shape
        and array.dtype == base.dtype
        and array.flags.c_contiguous
        and array.__array_interface__["data"][0] == base.__array_interface__["data"][0]
    )
    if (
        not whole
        or source.parent.parent.resolve() != model_dir.resolve()
        or not _VERSION_NAME.match(source.parent.name)
    ):
        return None
    try:
        entry = read_json(source.parent / MANIFEST)["files"][source.name]
        if not isinstance(entry, dict) or entry.get("bytes") != source.stat().st_size:
            return None
        os.link(source, target)
    except (OSError, KeyError, TypeError, ModelFormatError):
        return None
    return {"sha256": entry["sha256"], "bytes": entry["bytes"], "from": source.parent.name}


def _write_array(path: Path, array: np.ndarray) -> dict[str, Any]:
    with open(path, "wb") as handle:
        np.save(handle, np.ascontiguousarray(array), allow_pickle=False)
        handle.flush()
        os.fsync(handle.fileno())
    return _describe_file(path)


def _describe_file(path: Path) -> dict[str, Any]:
    return {"sha256": file_sha256(path), "bytes": path.stat().st_size}


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() and hasattr(os, "O_DIRECTORY") else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _versions(model_dir: Path, *, complete: bool = True) -> list[tuple[int, str]]:
    """The versions of a model directory, oldest first: those with a manifest (``complete``), or every entry
    named like one (what a new version's number must come after: a stray file or an empty folder too)."""
    found = []
    for entry in model_dir.iterdir():
        match = _VERSION_NAME.match(entry.name)
        if match and (not complete or (entry / MANIFEST).is_file()):
            found.append((int(match.group(1)), entry.name))
    return sorted(found)


def _publish(model_dir: Path, staging: Path) -> str:
    """Rename the staged version into place and point CURRENT at it."""
    for _ in range(1000):
        existing = _versions(model_dir, complete=False)
        number = existing[-1][0] + 1 if existing else 1
        name = f"version-{number:06d}"
        try:
            os.rename(staging, model_dir / name)  # fails if another writer took the name
        except OSError:
            continue
        break
    else:
        raise ModelFormatError(f"Could not allocate a version name under '{model_dir}'.")
    _fsync(model_dir)
    _point(model_dir, name)
    return name


def _point(model_dir: Path, name: str) -> None:
    """Make ``name`` the current version: write the pointer to a temporary file, then rename it into place."""
    pointer = model_dir / f".{POINTER}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"  # unique per thread too
    with open(pointer, "w", encoding="utf-8") as handle:
        handle.write(name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(pointer, model_dir / POINTER)
    _fsync(model_dir)


# what save_state and _publish name their temporary entries: ".staging-<pid>-..." and ".CURRENT.<pid>[.<id>].tmp"
_LEFTOVER = re.compile(rf"^\.(?:staging-(\d+)-.+|{re.escape(POINTER)}\.(\d+)(?:\.[0-9a-f]+)?\.tmp)$")


def _remove_leftovers(model_dir: Path) -> None:
    """Delete staging folders and pointer files left by a save that was killed.

    Their names carry the writer's process id; those of a process still running
    (another save in progress) are left alone.
    """
    for entry in model_dir.iterdir():
        found = _LEFTOVER.match(entry.name)
        if not found:
            continue
        pid = int(found.group(1) or found.group(2))
        if pid == os.getpid() or _running(pid):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C there: never guess, keep the leftover
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # OverflowError: a number no process can have
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's), or cannot tell: leave it
    return True


def _prune(model_dir: Path, *, keep: int, loads: str | None = None) -> None:
    """Delete old versions: keep the newest ``keep`` complete ones, the current one, the newest full build, and
    the newest version that loads (``loads``: known to, having just been checked), so that a rollback always has
    somewhere to go. Only complete versions count."""
    current = _current_name(model_dir)
    versions = [name for _, name in _versions(model_dir)]
    keeping = set(versions[-max(1, keep) :]) | {current}
    builds = [name for name in versions if _is_build(model_dir / name)]
    if builds:
        keeping.add(builds[-1])
    newest = versions[-1] if versions else None
    if newest is not None and newest != loads:
        for name in reversed(versions):
            if _loads(model_dir / name):
                keeping.add(name)
                break
    for name in versions:
        if name not in keeping:
            shutil.rmtree(model_dir / name, ignore_errors=True)


def _is_build(version: Path) -> bool:
    try:
        return read_json(version / MANIFEST).get("build") is True
    except (OSError, ModelFormatError, AttributeError):
        return False


def _loads(version: Path) -> bool:
    """Whether a version loads: every checksum and every rule."""
    try:
        read_model(version)
    except (OSError, ModelFormatError):
        return False
    return True


#: The audit trail of editorial actions, kept in the model directory (it outlives versions and rebuilds).
AUDIT = "audit.jsonl"


def append_audit(path: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    """Append one editorial action (who, what, the version it made) with the time, under the save lock."""
    model_dir = Path(path)
    entry = {"at": now_text(), **record}
    with _save_lock(model_dir):
        with open(model_dir / AUDIT, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def read_audit(path: str | os.PathLike[str], *, last: int = 100) -> list[dict[str, Any]]:
    """The last ``last`` entries of the audit trail, newest last (lines that do not parse are skipped)."""
    file = Path(path) / AUDIT
    if not file.is_file():
        return []
    with open(file, "rb") as handle:
        handle.seek(max(0, file.stat().st_size - 2_000_000))  # the tail is enough for the last entries
        lines = handle.read().decode("utf-8", "replace").splitlines()
    entries = []
    for line in lines[-last:]:
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def editorial_of(version: str | os.PathLike[str]) -> Editorial:
    """The editorial state of one version folder (checked)."""
    data = _read_editorial(Path(version) / "editorial.json")
    return Editorial.of(data["blocked"], data["pins"], data["bans"])


def same_but_editorial(first: Mapping[str, Any], second: Mapping[str, Any]) -> bool:
    """Whether two manifests describe the same arrays, reports and parameters (only the editorial state differs)."""

    def rest(manifest: Mapping[str, Any]) -> tuple[Any, Any]:
        files = manifest.get("files")
        if not isinstance(files, dict):
            return None, None
        return {k: v for k, v in files.items() if k != "editorial.json"}, manifest.get("parameters")

    one, two = rest(first), rest(second)
    return one[0] is not None and one == two


def versions_of(path: str | os.PathLike[str]) -> list[str]:
    """The complete versions of a model directory, oldest first."""
    return [name for _, name in _versions(Path(path))]


def rollback(path: str | os.PathLike[str], to: str | None = None) -> str:
    """Point ``CURRENT`` back at an earlier version; returns its name.

    ``to`` names the version (``version-000003``, or ``3``); by default the newest
    version before the current one that loads. The version is checked (checksums
    and every rule) before the switch, under the directory's save lock.
    """
    model_dir = Path(path)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"Model directory not found: '{model_dir}'.")
    with _save_lock(model_dir):
        versions = versions_of(model_dir)
        try:
            current = _current_name(model_dir)
        except ModelFormatError:
            current = None
        if to is not None:
            name = f"version-{int(to):06d}" if str(to).isdigit() else str(to)
            if name not in versions:
                raise ModelFormatError(f"'{model_dir}' has no version {to!r}; it has {', '.join(versions) or 'none'}.")
            candidates = [name]
        else:
            before = versions[: versions.index(current)] if current in versions else versions
            candidates = list(reversed(before))
        errors = []
        for name in candidates:
            try:
                read_model(model_dir / name)
            except ModelFormatError as exc:
                errors.append(f"{name}: {exc}")
                continue
            _point(model_dir, name)
            return name
        if not candidates:
            raise ModelFormatError(f"'{model_dir}' has no version before {current} to roll back to.")
        raise ModelFormatError(f"No version to roll back to loads: {'; '.join(errors)[:500]}")


def newest_valid_version(path: str | os.PathLike[str]) -> Path:
    """The newest complete version of a model directory that loads (checksums and every rule)."""
    model_dir = Path(path)
    for name in reversed(versions_of(model_dir)):
        if _loads(model_dir / name):
            return model_dir / name
    raise ModelFormatError(f"'{model_dir}' has no version that loads. Rebuild the model with `recommender build`.")


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, pd.Timestamp):
            value = value.isoformat()
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


# --------------------------------------------------------------------------- load


#: The largest JSON document read from a model or output folder (a manifest is a few kB; editorial.json
#: holds every pin and ban), and the largest CURRENT pointer.
JSON_LIMIT = 256 * 2**20
_POINTER_LIMIT = 256


def read_json(path: Path, *, limit: int = JSON_LIMIT) -> Any:
    """A JSON document written by this library, read with bounds: at most ``limit`` bytes, UTF-8, any depth
    the parser can hold. Raises ``OSError`` or :class:`ModelFormatError` naming the file."""
    with open(path, "rb") as handle:
        raw = handle.read(limit + 1)
    if len(raw) > limit:
        raise ModelFormatError(f"'{path}' is larger than {limit:,} bytes: it was not written by recommender.")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise ModelFormatError(f"'{path}' is not valid JSON: {why}") from None


def _current_name(model_dir: Path) -> str | None:
    pointer = model_dir / POINTER
    if not pointer.is_file():
        return None
    with open(pointer, "rb") as handle:
        raw = handle.read(_POINTER_LIMIT + 1)
    try:
        name = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        name = None
    if len(raw) > _POINTER_LIMIT or name is None or not _VERSION_NAME.match(name):
        raise ModelFormatError(
            f"'{pointer}' does not name a model version (expected one line such as 'version-000001'): "
            f"{raw[:40]!r}{'...' if len(raw) > 40 else ''}."
        )
    return name


def version_dir(path: str | os.PathLike[str]) -> Path:
    """The folder of the current version of a model directory (or the version folder itself)."""
    model_dir = Path(path)
    if not model_dir.exists():
        raise FileNotFoundError(f"Model directory not found: '{model_dir}'. Build one with `recommender build`.")
    if (model_dir / MANIFEST).is_file():
        return model_dir  # a version folder given directly
    name = _current_name(model_dir)
    if name is None:
        raise ModelFormatError(
            f"'{model_dir}' is not a recommender model directory: it has no {POINTER} pointer file nor {MANIFEST}."
        )
    if not _VERSION_NAME.match(name) or not (model_dir / name / MANIFEST).is_file():
        raise ModelFormatError(f"'{model_dir}/{POINTER}' points to {name!r}, which is not a complete model version.")
    return model_dir / name


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of the current version of a model directory (checked, not verified)."""
    version = version_dir(path)
    manifest = read_json(version / MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelFormatError(f"'{version}' is not a recommender model (manifest format is not {FORMAT!r}).")
    found = manifest.get("format_version")
    if not isinstance(found, int) or isinstance(found, bool):
        raise ModelFormatError(f"'{version}' has an invalid format_version {found!r}.")
    if found < OLDEST_FORMAT_VERSION:
        raise ModelFormatError(
            f"'{version}' was written in model format {found} by recommender "
            f"{manifest.get('library_version', '?')}; this version reads formats {OLDEST_FORMAT_VERSION} to "
            f"{FORMAT_VERSION}. Rebuild the model from the articles: recommender build ARTICLES --out MODEL_DIR."
        )
    if found > FORMAT_VERSION:
        raise ModelFormatError(
            f"'{version}' was written in model format {found} by recommender "
            f"{manifest.get('library_version', '?')}; this version reads format {FORMAT_VERSION}. "
            "Upgrade recommender, or rebuild the model with `recommender build`."
        )
    manifest["version"] = version.name
    manifest["digest"] = manifest_digest(version)
    return manifest


@dataclass(frozen=True)
class Loaded:
    """A model version read from disk: its parameters and fitted state, where it lies and its identity."""

    params: dict[str, Any]
    state: FittedState
    version_dir: Path
    name: str
    digest: str


def read_model(path: str | os.PathLike[str], *, verify: bool = True) -> Loaded:
    """Read the current version of a model directory (or one version folder): parameters and fitted state.

    Every file is checked against the manifest (size, and SHA-256 unless
    ``verify=False``); arrays are memory-mapped read-only with
    ``allow_pickle=False``. Raises ``FileNotFoundError`` or
    :class:`ModelFormatError`, never runs code from the files.
    """
    manifest = read_manifest(path)
    version = version_dir(path)
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ModelFormatError(f"'{version / MANIFEST}' lists no files.")
    for name, info in files.items():
        file = version / name
        if "/" in name or "\\" in name or name.startswith("."):
            raise ModelFormatError(f"'{version / MANIFEST}' names an invalid file {name!r}.")
        if not isinstance(info, dict):
            raise ModelFormatError(f"'{version / MANIFEST}' describes {name!r} as {info!r}, expected sha256 and bytes.")
        if not file.is_file():
            raise ModelFormatError(f"Model file missing: '{file}'. Rebuild the model with `recommender build`.")
        if file.stat().st_size != info.get("bytes"):
            raise ModelFormatError(
                f"Model file '{file}' has {file.stat().st_size} bytes, the manifest says {info.get('bytes')}: it is truncated or altered."
            )
        if verify and file_sha256(file) != info.get("sha256"):
            raise ModelFormatError(
                f"Model file '{file}' does not match its SHA-256 in the manifest: it was altered or corrupted."
            )
    arrays: dict[str, np.ndarray] = {}
    for name in files:
        if name.endswith(".npy"):
            try:
                array = np.load(version / name, mmap_mode="r", allow_pickle=False)
            except Exception as exc:  # numpy parses the header of an untrusted file: any failure is a format error
                raise ModelFormatError(
                    f"Model file '{version / name}' cannot be read safely: {type(exc).__name__}: {exc}"
                ) from None
            if array.dtype.names is not None or not array.dtype.isnative:
                raise ModelFormatError(
                    f"Model file '{version / name}' is invalid: arrays must be plain and in this machine's byte "
                    f"order, got dtype {array.dtype.str!r}."
                )
            arrays[name[:-4]] = array
    params = manifest.get("parameters", {})
    if not isinstance(params, dict):
        raise ModelFormatError(f"'{version / MANIFEST}' has parameters {params!r}, expected an object.")
    params = {**_OLD_MEANING, **params}  # an older manifest lacks them: they keep the meaning they had then
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    # flagged.csv exists from format 2 on
    reports: dict[str, list[dict[str, Any]]] = {"rejected.csv": [], "flagged.csv": []}
    for name in reports:
        if name in files:
            reports[name] = _read_report(version / name)
    editorial = _read_editorial(version / "editorial.json") if "editorial.json" in files else {}
    try:
        state = _state(arrays, manifest, params, editorial, reports)
        state.check()
    except KeyError as exc:
        raise ModelFormatError(f"Model '{version}' lacks {exc}: it is incomplete.") from None
    except InvalidPart as exc:
        raise ModelFormatError(f"Model file {_file_of(version, exc.part, files)} is invalid: {exc.rule}.") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise ModelFormatError(f"Model '{version}' is inconsistent: {exc}") from None
    return Loaded(params, state, version, str(manifest["version"]), manifest_digest(version))


def _file_of(version: Path, part: str, files: Mapping[str, Any]) -> str:
    """The file (or files) a part is stored in, quoted, for an error message."""
    names = sorted(n for n in files if n == f"{part}.npy" or n.startswith(f"{part}."))
    if not names:
        return f"'{version / MANIFEST}' ({part})"
    return ", ".join(f"'{version / n}'" for n in names[:4]) + (" ..." if len(names) > 4 else "")


def _read_editorial(path: Path) -> dict[str, Any]:
    """``editorial.json``, checked: ``blocked`` a list of ids, ``pins`` and ``bans`` objects of id lists."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise ModelFormatError(
            f"'{path}' is invalid: expected an object with blocked, pins and bans, got {data!r:.60}."
        )

    def ids(value: Any, what: str) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ModelFormatError(f"'{path}' is invalid: {what} must be a list of article ids, got {value!r:.60}.")
        return value

    def lists_by_id(key: str) -> dict[str, list[str]]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise ModelFormatError(
                f"'{path}' is invalid: '{key}' must be an object of article id -> list of article ids, got {value!r:.60}."
            )
        return {source: ids(targets, f"'{key}' of {source!r}") for source, targets in value.items()}

    return {
        "blocked": ids(data.get("blocked", []), "'blocked'"),
        "pins": lists_by_id("pins"),
        "bans": lists_by_id("bans"),
    }


def _read_report(path: Path) -> list[dict[str, Any]]:
    """``rejected.csv`` or ``flagged.csv``, checked: its header, and every record with as many fields."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, on_bad_lines="error", encoding="utf-8", engine="c")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise ModelFormatError(f"Model file '{path}' is not a valid report: {str(exc).strip()[:200]}") from None
    frame.columns = [from_spreadsheet_cell(str(c)) for c in frame.columns]
    if "reason" not in frame.columns or not set(frame.columns) <= set(REJECTED_COLUMNS):
        raise ModelFormatError(
            f"Model file '{path}' is not a valid report: expected columns from {list(REJECTED_COLUMNS)}, "
            f"got {list(frame.columns)[:10]}."
        )
    return [_rejected_record(r) for r in frame.to_dict("records")]


def _rejected_record(record: dict[str, str]) -> dict[str, Any]:
    """A rejected.csv (or flagged.csv) row as fit() recorded it: empty cells are None, ``row`` is an int."""
    out: dict[str, Any] = {
        key: (from_spreadsheet_cell(value) if value != "" else None) for key, value in record.items()
    }
    if out.get("row") is not None and out["row"].isdigit():
        out["row"] = int(out["row"])
    return out


def _tags(arrays: dict[str, np.ndarray], n: int) -> list[tuple[str, ...]]:
    """Every article's tags: stored one by one (format 4), or joined by ``_OLD_TAG_SEPARATOR`` (formats 1-3)."""
    if "tag_counts" not in arrays:
        joined = _decode_strings(arrays, "tags")
        if len(joined) != n:
            raise InvalidPart("tags", f"{len(joined)} values for {n} articles")
        return [tuple(t.split(_OLD_TAG_SEPARATOR)) if t else () for t in joined]
    values = _decode_strings(arrays, "tag_values")
    counts = np.asarray(arrays["tag_counts"])
    if counts.shape != (n,) or counts.dtype != np.int64 or (counts < 0).any() or int(counts.sum()) != len(values):
        raise InvalidPart("tag_counts", f"expected {n} counts >= 0 adding up to the {len(values)} tags")
    if any(v is None for v in values):
        raise InvalidPart("tag_values", "a tag is missing")
    ends = np.cumsum(counts).tolist()
    return [tuple(values[end - count : end]) for end, count in zip(ends, counts.tolist(), strict=True)]


def _signatures(arrays: dict[str, np.ndarray], n: int) -> Signatures | None:
    """The copy signatures (checked by ``Catalogue.check``); None when the model has none (written in format 1 or 2)."""
    names = ("values", "indptr", "level", "size")
    present = [f"signatures.{name}" in arrays for name in names]
    if not any(present):
        return None
    if not all(present):
        raise InvalidPart("signatures", "the copy signatures are incomplete")
    return Signatures(*(np.asarray(arrays[f"signatures.{name}"]) for name in names))


def _state(
    arrays: dict[str, np.ndarray],
    manifest: dict[str, Any],
    params: dict[str, Any],
    editorial: Mapping[str, Any],
    reports: dict[str, list[dict[str, Any]]],
) -> FittedState:
    shape_array = np.asarray(arrays["vectors.shape"])
    if shape_array.shape != (2,) or shape_array.dtype.kind not in "iu" or (shape_array < 0).any():
        raise InvalidPart("vectors.shape", f"expected (rows, columns), got {shape_array!r:.80}")
    shape = (int(shape_array[0]), int(shape_array[1]))
    try:
        vectors = sp.csr_matrix(
            (arrays["vectors.data"], arrays["vectors.indices"], arrays["vectors.indptr"]), shape=shape, copy=False
        )
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidPart("vectors", f"not a sparse matrix of shape {shape}: {exc}") from None
    n = shape[0]
    neighbours = arrays["neighbours"]
    similarities = arrays["similarities"]
    for name in ("published", "views"):  # the rest is checked by the parts that own it (FittedState.check)
        array, dtype = arrays[name], (np.int64 if name == "published" else np.float64)
        if array.shape != (n,) or array.dtype != dtype:
            raise InvalidPart(name, f"expected {n} values of {np.dtype(dtype)}, got {array.shape} {array.dtype}")
    terms = _decode_strings(arrays, "vocabulary")
    if any(t is None for t in terms):
        raise InvalidPart("vocabulary", "a term is missing")
    longest = max(map(len, terms), default=0)  # type: ignore[arg-type]
    if longest > MAX_TERM_CHARS and 4 * longest * len(terms) > _TERMS_BYTES:
        raise InvalidPart(
            "vocabulary",
            f"a term of {longest:,} characters would make the {len(terms):,} terms take "
            f"{4 * longest * len(terms) / 2**20:,.0f} MB (terms longer than {MAX_TERM_CHARS} are not counted)",
        )
    components = np.asarray(arrays["components"])
    if components.ndim != 2:
        raise InvalidPart("components", f"expected a 2-d array, got shape {components.shape}")
    columns = {c: _decode_strings(arrays, c) for c in _STRING_COLUMNS}
    tags = _tags(arrays, n)
    for name, values in columns.items():
        if len(values) != n:
            raise InvalidPart(name, f"{len(values)} values for {n} articles")
    published = pd.to_datetime(np.asarray(arrays["published"]).view("datetime64[ns]")).tz_localize("UTC")
    articles = pd.DataFrame(
        {
            "article_id": pd.Series(columns["article_id"], dtype=object),
            "title": pd.Series(columns["title"], dtype=object),
            "url": pd.Series(columns["url"], dtype=object),
            "published": pd.Series(published),
            "category": pd.Series(columns["category"], dtype=object),
            "views": np.asarray(arrays["views"]),
            "tags": pd.Series(tags, dtype=object),
        }
    )
    reference = manifest.get("reference_date")
    try:
        defaults = Settings()
        settings = settings_of({**{f.name: getattr(defaults, f.name) for f in fields(Settings)}, **params})
        text = TextParams(
            field_weights={
                "title": float(params.get("title_weight", 2.0)),
                "summary": float(params.get("summary_weight", 1.0)),
                "body": float(params.get("body_weight", 1.0)),
            },
            min_df=params.get("min_df", 2),
            max_df=float(params.get("max_df", 0.5)),
            ngram_range=tuple(int(x) for x in params.get("ngram_range", (1, 1))),
            latent_components=params.get("latent_components", 20),
            latent_weight=float(params.get("latent_weight", 0.3)),
            stop_words=params["stop_words"]
            if isinstance(params["stop_words"], (str, type(None)))
            else tuple(params["stop_words"]),
        )
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidPart("parameters", f"unusable parameters ({exc})") from None
    vocabulary = Vocabulary(
        np.array(terms, dtype=str),
        np.asarray(arrays["idf"]),
        components if components.shape[0] else None,
        float(manifest.get("latent_weight", 0.0)) if components.shape[0] else 0.0,
    )
    drift = np.array([int(x) for x in manifest.get("drift_counts", [0, 0])], dtype=np.int64)
    chosen = Editorial.of(editorial.get("blocked", []), editorial.get("pins", {}), editorial.get("bans", {}))
    catalogue = Catalogue(
        table=articles,
        popularity=arrays["popularity"],
        popularity_scale=float(manifest["popularity_scale"]),
        reference_date=None if reference is None else pd.Timestamp(reference),
        text_keys=arrays["text_keys"],
        signatures=_signatures(arrays, n),
        groups=arrays["groups"],
        blocked=chosen.blocked,
        fallback_days=settings.fallback_days,
    )
    return FittedState(
        settings=settings,
        catalogue=catalogue,
        index=VectorIndex(vocabulary, text, vectors, drift),
        pools=Pools(neighbours, similarities),
        editorial=chosen,
        rejected=tuple(reports["rejected.csv"]),
        flagged=tuple(reports["flagged.csv"]),
    )
