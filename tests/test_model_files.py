"""Model files that checksums cannot vouch for: every loaded array and document is validated.

Anyone who can write a model directory can also write a consistent manifest, so
these tests corrupt a valid model and then rewrite every checksum. A load must
then raise :class:`ModelFormatError` (naming the file), or give a model that
answers every request; never another exception, never a crash of the process.

The loads run in one long-lived child process (restarted only after a crash), so
that a crash fails a test instead of killing the test run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from strategies import model_corruptions

import recommender as rec
from recommender._store import _decode_strings, _encode_strings

#: The child: one JSON line in (a model directory), one JSON line out (what loading and serving it gave).
CHILD = r"""
import hashlib, json, sys
import recommender as rec
from recommender._store import _decode_strings, _encode_strings

def serve(model):
    out = []
    for article_id in model.articles_["article_id"]:
        out.append([(r.article_id, round(r.score, 6), r.reason) for r in model.recommend(article_id, k=4)])
    out.append([r.article_id for r in model.recommend_for_text("storm harbour ferry", body="cup final goal")])
    out.append([r.article_id for r in model.popular(k=4)])
    return hashlib.sha256(json.dumps(out).encode()).hexdigest()

for line in sys.stdin:
    path = json.loads(line)
    try:
        answer = {"outcome": "ok", "lists": serve(rec.load_model(path))}
    except rec.ModelFormatError as exc:
        answer = {"outcome": "ModelFormatError", "message": str(exc)}
    except BaseException as exc:
        answer = {"outcome": "error", "message": f"{type(exc).__name__}: {exc}"[:500]}
    print(json.dumps(answer), flush=True)
"""


class Loader:
    """The long-lived child that loads model directories; a crash is reported and the child restarted."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def load(self, path: Path) -> dict:
        if self.process is None or self.process.poll() is not None:
            self.process = self._start()
        self.process.stdin.write(json.dumps(str(path)) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            self.process.stdin.close()
            self.process.stdout.close()
            self.process = None
            return {"outcome": "crash", "message": f"the loading process died with exit status {code}"}
        return json.loads(line)

    def close(self) -> None:
        if self.process is not None:
            self.process.stdin.close()
            self.process.wait(timeout=30)
            self.process.stdout.close()


@pytest.fixture(scope="module")
def loader():
    child = Loader()
    yield child
    child.close()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, loader: Loader) -> tuple[Path, str]:
    """A valid saved model with every kind of file (rejected and flagged rows, editorial state), and its lists."""
    frame = pd.DataFrame(
        {
            "article_id": ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9"],
            "title": [
                "Storm closes the harbour",
                "Ferry routes cut by the storm",
                "Harbour reopens after storm",
                "United win the cup final",
                "Late goal decides the cup final",
                "Keeper saves a penalty in the final",
                "Election count begins",
                "",
                "Harbour ferry back after the storm",
            ],
            "body": [
                "A storm closed the harbour and the ferry routes on the coast.",
                "The ferry routes were cut as the storm hit the coast and the harbour.",
                "The harbour reopened when the storm passed and the ferry sailed.",
                "United won the cup final with a late goal against City.",
                "A late goal decided the cup final for United.",
                "The keeper saved a penalty and his side won the cup final.",
                "Votes are counted after the election in every seat.",
                "",
                "The ferry came back to the harbour after the storm.",
            ],
            "published": ["2024-05-01", "2024-05-02", "2024-05-03", "2024-04-01", "2024-04-02", "2024-04-03",
                          "2024-05-04", "2024-05-04", "2031-01-01"],
            "views": [10, 200, 30, 4000, 50, 60, 700, 1, 5],
            "category": ["news", "news", "news", "sport", "sport", "sport", "politics", "politics", "news"],
            "tags": ["coast|storm", "coast", "storm", "cup", "cup|goal", "cup", "vote", "", "coast"],
        }
    )  # fmt: skip
    model = rec.Recommender(min_df=1).fit(frame)
    assert model.rejected_ and model.flagged_  # the empty row, and the future date
    model.pin("a1", ["a9"])
    model.ban("a4", "a6")
    model.block(["a7"])
    path = tmp_path_factory.mktemp("pristine") / "model"
    model.save(path)
    answer = loader.load(path)
    assert answer["outcome"] == "ok", answer
    return path, answer["lists"]


def version_of(path: Path) -> Path:
    return path / (path / "CURRENT").read_text().strip()


def reseal(version: Path) -> None:
    """Rewrite the manifest's size and SHA-256 of every file it lists: what a careful forger does."""
    manifest_path = version / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = manifest["files"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return  # the manifest itself is the corruption
    if not isinstance(files, dict):
        return
    for name in files:
        file = version / str(name)
        if file.is_file():
            files[name] = {"sha256": hashlib.sha256(file.read_bytes()).hexdigest(), "bytes": file.stat().st_size}
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")


def corrupted(pristine_path: Path, where: Path, corruption: Callable[[Path, Path], None]) -> Path:
    shutil.rmtree(where, ignore_errors=True)
    shutil.copytree(pristine_path, where)
    version = version_of(where)
    corruption(where, version)
    reseal(version)
    return where


# --------------------------------------------------------------------------- each named class


def set_item(name: str, index: tuple | int, value) -> Callable[[Path, Path], None]:
    def corruption(root: Path, version: Path) -> None:
        array = np.array(np.load(version / name))
        array[index] = value
        np.save(version / name, array, allow_pickle=False)

    return corruption


def resave(name: str, change: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path, Path], None]:
    def corruption(root: Path, version: Path) -> None:
        np.save(version / name, change(np.array(np.load(version / name))), allow_pickle=False)

    return corruption


def edit_json(name: str, change: Callable[[dict], None]) -> Callable[[Path, Path], None]:
    def corruption(root: Path, version: Path) -> None:
        document = json.loads((version / name).read_text(encoding="utf-8"))
        change(document)
        (version / name).write_text(json.dumps(document), encoding="utf-8")

    return corruption


def write(name: str, data: bytes, *, in_root: bool = False) -> Callable[[Path, Path], None]:
    def corruption(root: Path, version: Path) -> None:
        ((root if in_root else version) / name).write_bytes(data)

    return corruption


def swap_rows(name: str) -> Callable[[Path, Path], None]:
    def change(array: np.ndarray) -> np.ndarray:
        array[[2, 3]] = array[[3, 2]]
        return array

    return resave(name, change)


def strings(column: str, change: Callable[[list], list]) -> Callable[[Path, Path], None]:
    def corruption(root: Path, version: Path) -> None:
        arrays = {p: np.load(version / f"{column}.{p}.npy") for p in ("bytes", "ends", "missing")}
        values = _decode_strings({f"{column}.{p}": a for p, a in arrays.items()}, column)
        for name, array in _encode_strings(column, change(values)).items():
            np.save(version / f"{name}.npy", array, allow_pickle=False)

    return corruption


NAMED = {
    "vectors.indices beyond the vocabulary": (set_item("vectors.indices.npy", 0, 10**6), "vectors.indices.npy"),
    "vectors.indices negative": (set_item("vectors.indices.npy", -1, -3), "vectors.indices.npy"),
    "vectors.indices out of order in a row": (resave("vectors.indices.npy", lambda a: a[::-1].copy()), "vectors"),
    "vectors.indptr not monotone": (swap_rows("vectors.indptr.npy"), "vectors.indptr.npy"),
    "vectors.indptr beyond the values": (set_item("vectors.indptr.npy", -1, 10**7), "vectors"),
    "vectors.data NaN": (set_item("vectors.data.npy", 0, np.nan), "vectors.data.npy"),
    "vectors.data not unit rows": (resave("vectors.data.npy", lambda a: a * 2), "vectors.data.npy"),
    "vectors.shape one entry": (resave("vectors.shape.npy", lambda a: a[:1].copy()), "vectors.shape.npy"),
    "vectors.data big-endian": (resave("vectors.data.npy", lambda a: a.astype(">f4")), "vectors.data.npy"),
    "similarities NaN": (set_item("similarities.npy", (0, 0), np.nan), "similarities.npy"),
    "similarities rising": (set_item("similarities.npy", (0, 1), 5.0), "similarities.npy"),
    "neighbours out of range": (set_item("neighbours.npy", (0, 0), 10**6), "neighbours.npy"),
    "neighbours itself": (set_item("neighbours.npy", (0, 0), 0), "neighbours.npy"),
    "neighbours twice": (set_item("neighbours.npy", (0, 1), -7), "neighbours.npy"),
    "neighbours int64": (resave("neighbours.npy", lambda a: a.astype(np.int64)), "neighbours.npy"),
    "popularity NaN": (set_item("popularity.npy", 0, np.nan), "popularity.npy"),
    "popularity infinite": (set_item("popularity.npy", 1, np.inf), "popularity.npy"),
    "views negative": (set_item("views.npy", 0, -5.0), "views.npy"),
    "groups not a group": (set_item("groups.npy", 0, 3), "groups.npy"),
    "idf zero": (set_item("idf.npy", 0, 0.0), "idf.npy"),
    "components NaN": (set_item("components.npy", (0, 0), np.nan), "components.npy"),
    "vocabulary duplicate term": (swap_rows("vocabulary.ends.npy"), "vocabulary"),
    "vocabulary a term 8 million characters long": (
        strings("vocabulary", lambda terms: [*terms[:-1], terms[-1] + "z" * 8_000_000]),
        "a term of 8,000,0",
    ),
    "article ids duplicated": (strings("article_id", lambda ids: [ids[0], *ids[:-1]]), "article_id"),
    "title bytes not UTF-8": (resave("title.bytes.npy", lambda a: np.full_like(a, 0xFF)), "title"),
    "signatures unsorted": (resave("signatures.values.npy", lambda a: a[::-1].copy()), "signatures"),
    "min_df not a number": (edit_json("manifest.json", lambda m: m["parameters"].update(min_df="x")), "manifest.json"),
    "pool_size not a number": (
        edit_json("manifest.json", lambda m: m["parameters"].update(pool_size=[1])),
        "manifest.json",
    ),
    "parameters a list": (edit_json("manifest.json", lambda m: m.update(parameters=[1, 2])), "manifest.json"),
    "files a list": (edit_json("manifest.json", lambda m: m.update(files=[1])), "manifest.json"),
    "popularity_scale a string": (edit_json("manifest.json", lambda m: m.update(popularity_scale="x")), None),
    "manifest nested 100,000 deep": (write("manifest.json", b"[" * 100_000 + b"]" * 100_000), "manifest.json"),
    "editorial nested 100,000 deep": (write("editorial.json", b"[" * 100_000 + b"]" * 100_000), "editorial.json"),
    "editorial pins a list": (edit_json("editorial.json", lambda m: m.update(pins=[1])), "editorial.json"),
    "CURRENT not UTF-8": (write("CURRENT", b"\xff\xfe\x00", in_root=True), "CURRENT"),
    "CURRENT 10 MB": (write("CURRENT", b"v" * 10_000_000, in_root=True), "CURRENT"),
    "rejected.csv empty": (write("rejected.csv", b""), "rejected.csv"),
    "flagged.csv broken quote": (write("flagged.csv", b'source,row,article_id,reason\n"a,1,x,y\n'), "flagged.csv"),
    "flagged.csv foreign columns": (write("flagged.csv", b"x,y\n1,2\n"), "flagged.csv"),
    "array header garbage": (write("groups.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': <f8}\n"), "groups.npy"),
}


@pytest.mark.parametrize("name", list(NAMED))
def test_each_corruption_class_is_refused_naming_the_file(
    name: str, pristine: tuple[Path, str], loader: Loader, tmp_path: Path
) -> None:
    corruption, file = NAMED[name]
    answer = loader.load(corrupted(pristine[0], tmp_path / "model", corruption))
    assert answer["outcome"] == "ModelFormatError", answer
    if file is not None:
        assert file in answer["message"]


def test_a_reload_never_switches_to_a_version_that_fails_validation(tmp_path: Path, pristine) -> None:
    shutil.copytree(pristine[0], tmp_path / "model")
    holder = rec.ModelHolder(tmp_path / "model")
    before = [r.article_id for r in holder.recommend("a1", k=3)]
    model = rec.load_model(tmp_path / "model")
    model.save(tmp_path / "model")  # a new, valid version...
    version = version_of(tmp_path / "model")
    set_item("vectors.indices.npy", 0, 10**6)(tmp_path / "model", version)  # ...then broken and resealed
    reseal(version)
    with pytest.raises(rec.ModelFormatError, match=r"vectors\.indices\.npy"):
        holder.reload()
    assert [r.article_id for r in holder.recommend("a1", k=3)] == before


# --------------------------------------------------------------------------- random corruptions


@given(corruption=model_corruptions())
def test_random_corruptions_load_as_a_model_that_serves_or_raise_model_format_error(
    corruption, pristine: tuple[Path, str], loader: Loader, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A corruption that keeps every rule (another similarity, a letter of a title) is a different valid
    model: it must then answer every request. Anything else raises ModelFormatError."""
    where = tmp_path_factory.getbasetemp() / "corrupted"
    answer = loader.load(corrupted(pristine[0], where, corruption))
    assert answer["outcome"] in ("ok", "ModelFormatError"), answer
