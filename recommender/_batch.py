"""Batch output: write precomputed lists as CSV, JSON Lines or Parquet, and the precompute job.

A path ending in ``.csv``, ``.jsonl`` or ``.parquet`` (optionally ``.gz`` for
CSV and JSON Lines) is one file of that format; any other path is a directory
of Parquet part files ``part-00000.parquet``, ... Every file is written under a
temporary name and renamed into place.

:func:`write_lists` writes a list frame already in memory. :func:`precompute`
computes every list of a saved model and writes it part by part, in this
process or on a Dask cluster, resumably::

    lists/
    ├── _parts.json           # model version, parameters, and for every finished part:
    │                         #   name, article rows [start, stop), lists, items, bytes, SHA-256
    ├── part-00000.parquet    # the lists of article rows [0, rows_per_part)
    └── part-00001.parquet    # ...

``pandas.read_parquet("lists")`` reads the parts as one table (files whose
names start with ``_`` or ``.`` are skipped).
"""

from __future__ import annotations

import collections
import contextlib
import gzip
import io
import json
import logging
import numbers
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import _lists
from ._cluster import connected, distributed
from ._locks import held
from ._outputs import write_csv, write_jsonl
from ._progress import bar as progress_bar
from ._ranking import CONTROL_NAMES, Controls
from ._store import Loaded, file_sha256, manifest_digest, read_json, read_model

__all__ = ["PARTS_MANIFEST", "PrecomputeResult", "output_format", "precompute", "write_lists"]

logger = logging.getLogger("recommender")

_SINGLE = {".csv": "csv", ".csv.gz": "csv", ".jsonl": "jsonl", ".jsonl.gz": "jsonl", ".parquet": "parquet"}

#: The manifest of a directory of precomputed parts.
PARTS_MANIFEST = "_parts.json"
#: The lock file of an output folder (see ``_locks``): one precompute writes a folder at a time.
_LOCK = ".lock"
#: The Parquet metadata entry that marks a part file as written by this library.
_MARK_KEY, _MARK = b"recommender", b"lists"
_LISTS_FORMAT = "recommender-lists"
_LISTS_FORMAT_VERSION = 1
#: Times Dask reruns a part whose task raised (a lost worker is handled by Dask's own rescheduling).
_RETRIES = 2
#: Seconds between manifest writes while parts complete (it is always written at the end).
_SAVE_EVERY = 1.0


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
    _check_count("part_rows", part_rows)
    target = Path(path)
    kind = output_format(target)
    if kind == "parts":
        if target.exists() and not target.is_dir():
            raise FileExistsError(f"Cannot write Parquet parts to '{target}': it is a file.")
        target.mkdir(parents=True, exist_ok=True)
        with held(target / _LOCK, what=f"The output '{target}'", wait=False, remove=True):
            _tidy(target, keep=set())  # the parts of an earlier write; never someone else's files
            written = []
            for number, start in enumerate(range(0, max(len(frame), 1), part_rows)):
                part = target / f"part-{number:05d}.parquet"
                _write_part(frame.iloc[start : start + part_rows], part)
                written.append(part)
        return written
    target.parent.mkdir(parents=True, exist_ok=True)
    _atomic(frame, target, kind)
    return [target]


def _check_count(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")


def _temporary(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def _atomic(frame: pd.DataFrame, target: Path, kind: str) -> None:
    temporary = _temporary(target)
    try:
        if kind == "parquet":
            frame.to_parquet(temporary, index=False)
        else:
            with _text_sink(temporary, target) as handle:
                _write_text(frame, handle, kind, header=True)
        os.replace(temporary, target)
    finally:
        if temporary.exists():
            temporary.unlink()


@contextlib.contextmanager
def _text_sink(temporary: Path, target: Path) -> Iterator[Any]:
    """A text handle on ``temporary``, gzip-compressed when ``target`` ends in ``.gz``; synced on close."""
    if target.name.lower().endswith(".gz"):
        with open(temporary, "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as packed:
                with io.TextIOWrapper(packed, encoding="utf-8", newline="") as handle:
                    yield handle
            raw.flush()
            os.fsync(raw.fileno())
    else:
        with open(temporary, "w", encoding="utf-8", newline="") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def _write_text(frame: pd.DataFrame, handle: Any, kind: str, *, header: bool) -> None:
    """Append ``frame`` as CSV (with or without the header) or JSON Lines to a text handle (see ``_outputs``)."""
    if kind == "csv":
        write_csv(frame, handle, header=header)
    else:
        write_jsonl(frame, handle)


# --------------------------------------------------------------------------- precompute


@dataclass(frozen=True)
class PrecomputeResult:
    """What :func:`precompute` did.

    Attributes
    ----------
    out : Path
        The output: the directory of Parquet parts, or the single file.
    files : tuple of Path
        The files holding the lists: the part files in row order, or the single file.
    model_version : str
        The model version the lists come from (as ``read_manifest(model_dir)["version"]``).
    articles : int
        Articles of the model; every one had its list computed (or reused).
    items : int
        Rows written (list items), over all parts.
    parts : int
        Parts of the job.
    computed : int
        Parts computed by this call.
    reused : int
        Parts found finished by an earlier call (file present, SHA-256 matching) and kept.
    seconds : float
        Wall time of the call.
    message : str
        One line: a new job, a resumed one (how many parts were kept), or one started
        over and why (another model version, other parameters).
    """

    out: Path
    files: tuple[Path, ...]
    model_version: str
    articles: int
    items: int
    parts: int
    computed: int
    reused: int
    seconds: float
    message: str


@dataclass(frozen=True)
class _Part:
    """One unit of work: the lists of article rows ``[start, stop)``, written to ``directory/name``."""

    model: str  # the model version folder (absolute), so every worker reads the same version
    model_sha256: str
    directory: str
    name: str
    start: int
    stop: int
    k: int
    explain: bool
    controls: dict[str, Any]


def precompute(
    model_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    k: int = 10,
    explain: bool = False,
    client: Any | str | None = None,
    workers: int | None = None,
    rows_per_part: int = 10_000,
    progress: bool | None = None,
    keep_parts: bool = False,
    **controls: Any,
) -> PrecomputeResult:
    """Compute every article's list from a saved model and write them, part by part, resumably.

    The model's articles are split into blocks of ``rows_per_part`` rows (parts).
    Each part's lists are ``load_model(model_dir).recommend_frame(k,
    article_ids=<the block's ids>, explain=explain, **controls)``, written as a
    Parquet file ``part-NNNNN.parquet`` under a temporary name and renamed into
    place, and recorded in ``_parts.json`` (model version, parameters, and each
    part's rows, counts and SHA-256), itself replaced atomically. A process
    loads the model once (memory-mapped from the shared path, cached per model
    version), so workers never receive a pickled copy of it.

    Parameters
    ----------
    model_dir : path-like
        A model directory written by ``Recommender.save`` (or one version folder in it).
        Its current version is read when the call starts; every part uses that version.
    out : path-like
        A directory of Parquet parts, or one file ending in ``.csv``, ``.csv.gz``,
        ``.jsonl``, ``.jsonl.gz`` or ``.parquet`` (as :func:`write_lists`). For a file,
        the parts are computed in the work directory ``.<name>.parts`` next to it and
        combined at the end; the work directory is then removed unless ``keep_parts``.
    k : int, default 10
        Items per list.
    explain : bool, default False
        Add the score parts and shared terms (see ``recommend_frame``).
    client : dask.distributed.Client or str, optional
        Run the parts on this Dask cluster, one task per unfinished part; a string is
        a scheduler address (``"tcp://host:8786"``) to connect to for this call. Workers
        that see ``model_dir`` and ``out`` at the same paths (a shared file system) load
        the model themselves and write their parts; otherwise the model is sent to
        each worker through Dask once and the parts come back to be written here.
    workers : int, optional
        Start a local Dask cluster of this many single-threaded worker processes for
        this call, and close it at the end. Not with ``client``. Without both, the
        parts run one after another in this process.
    rows_per_part : int, default 10_000
        Articles (model rows) per part: the unit of work, of retry and of resumption.
    progress : bool or None, default None
        A progress bar over finished parts on stderr; None: only on a terminal.
    keep_parts : bool, default False
        For a single-file ``out``: keep the work directory of parts after combining.
    **controls
        Ranking controls overriding the model's for this job (``half_life_days=30``, ...).

    Returns
    -------
    PrecomputeResult
        The files written, counts, parts computed and reused, and a one-line message.

    Raises
    ------
    ImportError
        ``client`` or ``workers`` was given and Dask is not installed
        (``pip install 'recommender[dask]'``).
    ValueError
        A bad ``k``, ``rows_per_part``, ``workers`` or control value, or both ``client`` and ``workers``.
    FileExistsError
        ``out`` is a file where a directory is needed, or the other way round.

    Notes
    -----
    Rerunning with the same model version and parameters (``k``, ``explain``, the
    controls after overrides, ``rows_per_part``) keeps the parts recorded in
    ``_parts.json`` whose files still match their SHA-256, and computes the rest: a
    job killed midway resumes where it stopped. Another model version or other
    parameters start over (``message`` says why). Part files not recorded, and
    temporary files left by a crash, are deleted. Two jobs must not write to the
    same ``out`` at once. With Dask, a part whose worker dies is rescheduled by
    Dask, and a part whose task raises is retried twice; parts are deterministic,
    so a part computed twice is written twice with the same bytes.

    Examples
    --------
    >>> import tempfile
    >>> import pandas as pd
    >>> import recommender as rec
    >>> from recommender._batch import precompute
    >>> articles = pd.DataFrame({"article_id": ["a", "b", "c"],
    ...                          "title": ["Cup final goal", "Late cup goal", "Election vote count"]})
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = rec.Recommender(min_df=1, max_df=1.0, latent_components=0).fit(articles).save(f"{folder}/model")
    ...     result = precompute(f"{folder}/model", f"{folder}/lists.csv", k=2, progress=False)
    ...     lists = pd.read_csv(result.out, dtype=str)
    >>> result.articles, result.parts, result.computed
    (3, 1, 1)
    >>> lists.loc[lists["reason"] == "similar", ["article_id", "recommended_id"]].values.tolist()
    [['a', 'b'], ['b', 'a']]
    """
    from ._store import read_manifest, version_dir

    started = time.perf_counter()
    _check_count("rows_per_part", rows_per_part)
    if workers is not None:
        _check_count("workers", workers)
        if client is not None:
            raise ValueError("Give client= (an existing Dask cluster) or workers= (a local one), not both.")
    target = Path(out)
    kind = output_format(target)
    if kind == "parts":
        if target.exists() and not target.is_dir():
            raise FileExistsError(f"Cannot write Parquet parts to '{target}': it is a file.")
        folder = target
    else:
        if target.is_dir():
            raise FileExistsError(f"Cannot write one {kind} file to '{target}': it is a directory.")
        folder = target.with_name(f".{target.name}.parts")
    if client is not None or workers is not None:
        distributed()  # fail before any work when Dask is missing

    manifest = read_manifest(model_dir)
    version = str(manifest["version"])
    version_folder = str(version_dir(model_dir).resolve())
    digest = manifest_digest(version_folder)
    model = _model(version_folder, digest)
    # checks k and the controls here, once, before any part runs
    _lists.checked_k(model.state, k)
    chosen = _controls(model, controls)
    n = len(model.state)
    header = {
        "format": _LISTS_FORMAT,
        "format_version": _LISTS_FORMAT_VERSION,
        "model": {"path": version_folder, "version": version, "manifest_sha256": digest},
        "parameters": _jsonable(
            {"k": int(k), "explain": bool(explain), "controls": chosen.as_dict(), "rows_per_part": int(rows_per_part)}
        ),
        "articles": n,
    }
    plan = [
        (f"part-{number:05d}.parquet", start, min(start + rows_per_part, n))
        for number, start in enumerate(range(0, max(n, 1), rows_per_part))
    ]
    folder.mkdir(parents=True, exist_ok=True)
    with held(folder / _LOCK, what=f"The output '{target}'", wait=False, remove=True):
        kept, message = _resume(folder, header, plan)
        _tidy(folder, keep=set(kept))
        ledger = _Ledger(folder / PARTS_MANIFEST, header, kept)
        ledger.save(complete=False)
        logger.info("precompute %s (version %s, identity %s) -> %s: %s", model_dir, version, digest, target, message)
        todo = [
            _Part(
                version_folder, digest, str(folder.resolve()), name, start, stop, int(k), bool(explain), dict(controls)
            )
            for name, start, stop in plan
            if name not in kept
        ]
        try:
            with progress_bar(
                progress, total=len(plan), initial=len(plan) - len(todo), desc="parts", unit="part"
            ) as bar:

                def record(entry: dict[str, Any]) -> None:
                    ledger.add(entry)
                    bar.update(1)

                if not todo:
                    pass
                elif client is None and workers is None:
                    for part in todo:
                        record(_compute_part(part))
                else:
                    _run_on_dask(todo, record, client=client, workers=workers, model=model)
        finally:
            ledger.save(complete=len(ledger.parts) == len(plan))
        files = [folder / name for name, _, _ in plan]
        items = sum(int(ledger.parts[name]["items"]) for name, _, _ in plan)
        if kind != "parts":
            _combine(files, target, kind)
            if not keep_parts:
                for path in [*files, folder / PARTS_MANIFEST]:
                    path.unlink(missing_ok=True)
    if kind != "parts":
        if not keep_parts:
            with contextlib.suppress(OSError):
                folder.rmdir()  # once its lock is gone too; left in place if something else was put there
        files = [target]
    return PrecomputeResult(
        out=target,
        files=tuple(files),
        model_version=version,
        articles=n,
        items=items,
        parts=len(plan),
        computed=len(todo),
        reused=len(plan) - len(todo),
        seconds=time.perf_counter() - started,
        message=message,
    )


def _run_on_dask(parts: list[_Part], record: Any, *, client: Any, workers: int | None, model: Loaded) -> None:
    """Submit one task per part and ``record`` each result as it completes.

    Workers that all read the model and write the output directory at the same paths (a shared file system)
    load the model themselves and write their parts; otherwise the model travels to every worker through Dask
    once and each part comes back to be written here.
    """
    with connected(client, workers) as client:
        run = uuid.uuid4().hex[:8]
        first = parts[0]
        shared = all(client.run(_sees, first.model, first.model_sha256, first.directory).values())
        if shared:
            futures = [
                client.submit(_compute_part, part, key=f"recommender-{part.name}-{run}", retries=_RETRIES)
                for part in parts
            ]
        else:
            logger.info(
                "precompute: the workers do not see %s and %s at these paths: the model goes to them through Dask, "
                "the parts come back here",
                first.model,
                first.directory,
            )
            [shipped] = client.scatter([model], broadcast=True, hash=False)
            futures = [
                client.submit(_computed_part, part, shipped, key=f"recommender-{part.name}-{run}", retries=_RETRIES)
                for part in parts
            ]
        try:
            for future in distributed().as_completed(futures, loop=client.loop):  # this client's loop (see _cluster)
                if shared:
                    record(future.result())
                else:
                    entry, payload = future.result()
                    size, digest = _write_bytes(payload, Path(first.directory) / entry["name"])
                    record(dict(entry, bytes=size, sha256=digest))
        except BaseException:
            client.cancel(futures)
            raise


def _sees(folder: str, digest: str, directory: str) -> bool:
    """On a worker: whether it reads this model version and can write the output directory at these paths."""
    try:
        return manifest_digest(folder) == digest and os.path.isdir(directory) and os.access(directory, os.W_OK)
    except (OSError, ValueError):
        return False


def _computed_part(part: _Part, model: Loaded) -> tuple[dict[str, Any], bytes]:
    """One part computed from a model sent by the client: its manifest entry and its Parquet bytes."""
    frame = lists_frame(model, part.start, part.stop, part.k, part.explain, _controls(model, part.controls))
    payload = _part_bytes(frame)
    entry = {"name": part.name, "rows": [part.start, part.stop], "lists": int(frame["article_id"].nunique())}
    return dict(entry, items=len(frame)), payload


def _compute_part(part: _Part) -> dict[str, Any]:
    """Compute and write one part; runs in this process or on a Dask worker. Returns its manifest entry."""
    model = _model(part.model, part.model_sha256)
    frame = lists_frame(model, part.start, part.stop, part.k, part.explain, _controls(model, part.controls))
    size, digest = _write_part(frame, Path(part.directory) / part.name)
    return {
        "name": part.name,
        "rows": [part.start, part.stop],
        "lists": int(frame["article_id"].nunique()),
        "items": len(frame),
        "bytes": size,
        "sha256": digest,
    }


def lists_frame(model: Loaded, start: int, stop: int, k: int, explain: bool, controls: Controls) -> pd.DataFrame:
    """The lists of the model's rows ``[start, stop)`` as one frame (as ``Recommender.recommend_frame``)."""
    rows = np.arange(start, stop)
    frames = []
    for begin in range(0, len(rows), 4096):
        chunk = rows[begin : begin + 4096]
        ranked, reasons = _lists.rows_lists(model.state, chunk, k, controls, None)
        frames.append(_lists.frame(model.state, chunk, ranked, reasons, explain))
    if not frames:
        return _lists.frame(model.state, rows, _lists.empty_ranked(k), np.empty((0, k), dtype=np.int64), explain)
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _controls(model: Loaded, overrides: dict[str, Any]) -> Controls:
    """The saved model's controls with this job's overrides, checked."""
    base = Controls(**{name: model.params[name] for name in CONTROL_NAMES if name in model.params})
    return _lists.checked_controls(model.state, base.replace(overrides))


#: Models loaded by this process, by (version folder, manifest digest); the last few are kept.
_MODELS: collections.OrderedDict[tuple[str, str], Loaded] = collections.OrderedDict()
_MODELS_KEPT = 2
_MODELS_LOCK = threading.Lock()


def _model(folder: str, digest: str) -> Loaded:
    """The model of one version folder, read (memory-mapped) once per process."""
    from ._errors import ModelFormatError

    key = (folder, digest)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is not None:
            _MODELS.move_to_end(key)
            return model
        if manifest_digest(folder) != digest:
            raise ModelFormatError(
                f"The model version '{folder}' changed while its lists were being computed. Run precompute again."
            )
        model = _MODELS[key] = read_model(folder)
        while len(_MODELS) > _MODELS_KEPT:
            _MODELS.popitem(last=False)
        return model


def _jsonable(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples as lists, numpy scalars as numbers)."""
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def _write_part(frame: pd.DataFrame, target: Path) -> tuple[int, str]:
    """Write one part atomically, with the same column types in every part; returns (bytes, SHA-256)."""
    return _write_bytes(_part_bytes(frame), target)


def _part_bytes(frame: pd.DataFrame) -> bytes:
    """One part as Parquet bytes, with the same column types in every part."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    # An all-missing column (url, category) is typed null; pandas' str columns are large_string.
    # Make both plain strings and drop the pandas metadata, so that every part has one schema.
    schema = pa.schema(
        [
            field.with_type(pa.string())
            if pa.types.is_null(field.type) or pa.types.is_large_string(field.type)
            else field
            for field in table.schema
        ]
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table.cast(schema.with_metadata({_MARK_KEY: _MARK})), sink)
    return sink.getvalue().to_pybytes()


def _write_bytes(payload: bytes, target: Path) -> tuple[int, str]:
    """Write ``payload`` to ``target`` atomically (a temporary file, synced, renamed); returns (bytes, SHA-256)."""
    temporary = _temporary(target)
    try:
        with open(temporary, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        size, digest = temporary.stat().st_size, file_sha256(temporary)
        os.replace(temporary, target)
    finally:
        if temporary.exists():
            temporary.unlink()
    return size, digest


def _resume(folder: Path, header: dict[str, Any], plan: list[tuple[str, int, int]]) -> tuple[dict[str, Any], str]:
    """The finished parts of an earlier run that can be kept, and a one-line message."""
    path = folder / PARTS_MANIFEST
    version = header["model"]["version"]
    fresh = f"New job: {len(plan)} parts from model version {version}."
    if not path.exists():
        return {}, fresh
    try:
        old = read_json(path)
        if not isinstance(old, dict) or old.get("format") != _LISTS_FORMAT:
            raise ValueError(f"not a {_LISTS_FORMAT} manifest")
        old_model, old_parameters, old_parts = old["model"], old["parameters"], old["parts"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return {}, f"Started over: '{path}' cannot be used ({exc})."
    if not isinstance(old_model, dict) or old_model.get("manifest_sha256") != header["model"]["manifest_sha256"]:
        was = old_model.get("version") if isinstance(old_model, dict) else None
        if was == version:
            why = f"another model also named version {version}"
        else:
            why = f"model version {was}, not the current version {version}"
        return {}, f"Started over: the parts in '{folder}' were computed from {why}."
    if old_parameters != header["parameters"]:
        changes = _differences(old_parameters, header["parameters"])
        return {}, f"Started over: the parameters changed ({'; '.join(changes)})."
    planned = {name: [start, stop] for name, start, stop in plan}
    kept = {}
    for entry in old_parts if isinstance(old_parts, list) else []:
        name = entry.get("name") if isinstance(entry, dict) else None
        if (
            name in planned
            and entry.get("rows") == planned[name]
            and (folder / name).is_file()
            and file_sha256(folder / name) == entry.get("sha256")
        ):
            kept[name] = entry
    if len(kept) == len(plan):
        return kept, f"Already done: all {len(plan)} parts from model version {version} are present."
    return kept, f"Resumed: {len(kept)} of {len(plan)} parts already done, {len(plan) - len(kept)} to compute."


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += _differences(old.get(key), new.get(key), f"{prefix}{key}" if not prefix else f"{prefix}.{key}")
        return out
    return [] if old == new else [f"{prefix} {old!r} -> {new!r}"]


def _tidy(folder: Path, *, keep: set[str]) -> None:
    """Delete the part files of an earlier run that are not kept, and temporary files left by a crash.

    Only files this library wrote are deleted (parts carry :data:`_MARK` in their
    Parquet metadata, or are recorded in ``_parts.json``); any other ``part-*``
    file in the folder is someone else's, and the job refuses to mix with it.
    """
    recorded = _recorded_parts(folder / PARTS_MANIFEST)
    foreign = [path.name for path in sorted(folder.glob("part-*")) if path.name not in recorded and not _is_ours(path)]
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise FileExistsError(
            f"'{folder}' holds part files that recommender did not write ({shown}); they are left alone. "
            "Write the lists to an empty folder, or to one that precompute wrote."
        )
    for path in folder.glob("part-*.parquet"):
        if path.name not in keep:
            path.unlink()
    for pattern in (".part-*.tmp", f".{PARTS_MANIFEST}.*.tmp"):
        for path in folder.glob(pattern):
            path.unlink(missing_ok=True)


def _recorded_parts(path: Path) -> set[str]:
    """The part names an earlier run recorded in ``_parts.json`` (none when it is missing or unusable)."""
    try:
        old = read_json(path)
        return {str(e["name"]) for e in old["parts"] if isinstance(e, dict) and "name" in e}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def _is_ours(path: Path) -> bool:
    """Whether a Parquet file carries this library's mark (see :func:`_part_bytes`)."""
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_schema(path).metadata or {}
    except Exception:  # not Parquet, unreadable: not ours
        return False
    return metadata.get(_MARK_KEY) == _MARK


class _Ledger:
    """The ``_parts.json`` manifest being kept up to date as parts finish."""

    def __init__(self, path: Path, header: dict[str, Any], parts: dict[str, Any]) -> None:
        self.path, self.header, self.parts = path, header, dict(parts)
        self._saved = 0.0

    def add(self, entry: dict[str, Any]) -> None:
        self.parts[entry["name"]] = entry
        if time.monotonic() - self._saved >= _SAVE_EVERY:
            self.save(complete=False)

    def save(self, *, complete: bool) -> None:
        document = {**self.header, "complete": complete, "parts": [self.parts[n] for n in sorted(self.parts)]}
        temporary = _temporary(self.path)
        try:
            with open(temporary, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(document, indent=1) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        finally:
            if temporary.exists():
                temporary.unlink()
        self._saved = time.monotonic()


def _combine(parts: list[Path], target: Path, kind: str) -> None:
    """Concatenate part files into one file of ``kind``, part by part, atomically."""
    import pyarrow.parquet as pq

    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(target)
    try:
        if kind == "parquet":
            with open(temporary, "wb") as handle:
                writer = None
                for part in parts:
                    table = pq.read_table(part)
                    if writer is None:
                        writer = pq.ParquetWriter(handle, table.schema)
                    writer.write_table(table)
                if writer is not None:
                    writer.close()
                handle.flush()
                os.fsync(handle.fileno())
        else:
            with _text_sink(temporary, target) as handle:
                for number, part in enumerate(parts):
                    _write_text(pd.read_parquet(part), handle, kind, header=number == 0)
        os.replace(temporary, target)
    finally:
        if temporary.exists():
            temporary.unlink()
