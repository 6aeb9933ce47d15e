"""Tests for recommender._batch.precompute: every list of a saved model, part by part, locally or on Dask.

The truth is ``model.recommend_frame(k)`` of the same saved model: precompute must
give the same lists (ids, order, scores) however the rows are split, wherever the
parts run, and however often the job is interrupted. The embedded Wikinews corpus
(291 articles) is split into parts of 50 rows, so a job has 6 parts.

The Dask tests run on the session's real ``LocalCluster`` of two worker processes
(``conftest.py``); they are skipped when dask.distributed is not installed.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import recommender as rec
from recommender._batch import PARTS_MANIFEST, precompute

ROWS = 50  # rows per part: 291 articles -> 6 parts
K = 5
STRING_IDS = {"article_id": str, "recommended_id": str}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "wikinews"
    rec.Recommender().fit(rec.load_articles(rec.demo_corpus_path()), progress=False).save(path)
    return path


@pytest.fixture(scope="module")
def expected(model_dir: Path) -> pd.DataFrame:
    """The truth: every list of the saved model, in one call."""
    return rec.load_model(model_dir).recommend_frame(K, progress=False)


def strings(values: pd.Series) -> list[str | None]:
    """Values as Python strings, missing as None (object, str and read-back dtypes alike)."""
    return [None if pd.isna(v) else str(v) for v in values]


def assert_same_lists(found: pd.DataFrame, truth: pd.DataFrame) -> None:
    """Same rows in the same order: ids, ranks and reasons exactly, numbers within 1e-6."""
    found = found.reset_index(drop=True)
    assert found.columns.tolist() == truth.columns.tolist()
    assert len(found) == len(truth)
    for column in ["article_id", "recommended_id", "reason", "title", "url", "category"]:
        assert strings(found[column]) == strings(truth[column]), column
    assert found["rank"].tolist() == truth["rank"].tolist()
    for column in ["score", "similarity", "popularity"]:
        np.testing.assert_allclose(found[column].to_numpy(float), truth[column].to_numpy(float), atol=1e-6)
    dates = [pd.to_datetime(f["published"], utc=True).dt.as_unit("ns") for f in (found, truth)]
    assert dates[0].equals(dates[1])


def parts_manifest(folder: Path) -> dict:
    return json.loads((folder / PARTS_MANIFEST).read_text(encoding="utf-8"))


def checksums(folder: Path) -> list[str]:
    return [p["sha256"] for p in parts_manifest(folder)["parts"]]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp"))


# --------------------------------------------------------------------------- local


def test_local_parts_equal_recommend_frame(model_dir: Path, expected: pd.DataFrame, tmp_path: Path) -> None:
    out = tmp_path / "lists"
    result = precompute(model_dir, out, k=K, rows_per_part=ROWS, progress=False)

    assert (result.articles, result.parts, result.computed, result.reused) == (291, 6, 6, 0)
    assert result.items == len(expected)
    assert result.model_version == "version-000001" and result.message.startswith("New job")
    assert [p.name for p in result.files] == [f"part-{i:05d}.parquet" for i in range(6)]
    assert_same_lists(pd.read_parquet(out), expected)  # pandas reads the folder as one table, _parts.json skipped

    manifest = parts_manifest(out)
    assert manifest["complete"] is True
    assert manifest["model"]["version"] == "version-000001"
    assert manifest["parameters"]["k"] == K and manifest["parameters"]["explain"] is False
    assert manifest["parameters"]["controls"]["popularity_weight"] == 0.1  # the model's controls, resolved
    assert [p["rows"] for p in manifest["parts"]] == [
        [0, 50],
        [50, 100],
        [100, 150],
        [150, 200],
        [200, 250],
        [250, 291],
    ]
    assert sum(p["items"] for p in manifest["parts"]) == len(expected)
    ids = rec.load_model(model_dir).article_ids
    for part, path in zip(manifest["parts"], result.files, strict=True):
        frame = pd.read_parquet(path)
        start, stop = part["rows"]
        assert set(frame["article_id"]) <= set(ids[start:stop])  # each part holds the lists of its own rows
        assert part["items"] == len(frame) and part["bytes"] == path.stat().st_size
    assert leftovers(out) == []


def test_explain_and_controls_are_passed_to_every_part(model_dir: Path, tmp_path: Path) -> None:
    controls = {"half_life_days": 30.0, "diversity": 0.2, "popularity_weight": 0.0}
    truth = rec.load_model(model_dir).recommend_frame(3, explain=True, progress=False, **controls)
    out = tmp_path / "lists.parquet"
    precompute(model_dir, out, k=3, explain=True, rows_per_part=100, progress=False, **controls)
    found = pd.read_parquet(out)
    assert_same_lists(found, truth)
    assert found["shared_terms"].tolist() == truth["shared_terms"].tolist()
    for column in ["popularity_part", "freshness_part", "boost_part", "diversity_part"]:
        np.testing.assert_allclose(found[column].to_numpy(float), truth[column].to_numpy(float), atol=1e-6)


@pytest.mark.parametrize("name", ["lists.csv", "lists.csv.gz", "lists.jsonl", "lists.jsonl.gz", "lists.parquet"])
def test_single_file_combines_the_parts_like_write_lists(
    model_dir: Path, expected: pd.DataFrame, tmp_path: Path, name: str
) -> None:
    out = tmp_path / "out" / name
    result = precompute(model_dir, out, k=K, rows_per_part=ROWS, progress=False)
    assert result.files == (out,) and result.parts == 6
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [name]  # the work directory is gone

    reference = tmp_path / "reference" / name
    rec.write_lists(expected, reference)
    if name.endswith(".parquet"):
        assert_same_lists(pd.read_parquet(out), expected)
    else:  # the same text as write_lists writes
        opener = gzip.open if name.endswith(".gz") else open
        with opener(out, "rt", encoding="utf-8") as found, opener(reference, "rt", encoding="utf-8") as truth:
            assert found.read() == truth.read()
        read = pd.read_csv if ".csv" in name else lambda p, **kw: pd.read_json(p, lines=True, **kw)
        assert_same_lists(read(out, dtype=STRING_IDS), expected)


def test_single_file_can_keep_its_parts_and_resume_from_them(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "lists.csv"
    precompute(model_dir, out, k=K, rows_per_part=ROWS, progress=False, keep_parts=True)
    work = tmp_path / ".lists.csv.parts"
    assert len(list(work.glob("part-*.parquet"))) == 6
    first = out.read_bytes()
    out.unlink()
    again = precompute(model_dir, out, k=K, rows_per_part=ROWS, progress=False)
    assert (again.computed, again.reused) == (0, 6) and again.message.startswith("Already done")
    assert out.read_bytes() == first
    assert not work.exists()


# --------------------------------------------------------------------------- resume


def test_rerun_recomputes_only_a_lost_part(model_dir: Path, expected: pd.DataFrame, tmp_path: Path) -> None:
    out = tmp_path / "lists"
    precompute(model_dir, out, k=K, rows_per_part=ROWS, progress=False)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    sums = checksums(out)

    # A crash after part 2 was removed and before the manifest recorded it, plus debris of the crash:
    manifest = parts_manifest(out)
    manifest["parts"] = [p for p in manifest["parts"] if p["name"] != "part-00002.parquet"]
    manifest["complete"] = False
    (out / PARTS_MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    (out / "part-00002.parquet").unlink()
    (out / ".part-00003.parquet.999.abcd1234.tmp").write_bytes(b"half a part")
    # part 4 was damaged on disk: its checksum no longer matches, so it is recomputed too
    damaged = out / "part-00004.parquet"
    damaged.write_bytes(damaged.read_bytes()[:-10])

    result = precompute(model_dir, out, k=K, rows_per_part=ROWS, progress=False)
    assert (result.computed, result.reused) == (2, 4)
    assert result.message == "Resumed: 4 of 6 parts already done, 2 to compute."
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert sorted(n for n in after if after[n] == before.get(n)) == [
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00003.parquet",
        "part-00005.parquet",
    ]
    assert checksums(out) == sums  # same bytes as the first run
    assert parts_manifest(out)["complete"] is True
    assert_same_lists(pd.read_parquet(out), expected)
    assert leftovers(out) == []


def test_a_job_interrupted_midway_resumes(
    model_dir: Path, expected: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import recommender._batch as batch

    out = tmp_path / "lists"
    real = batch._compute_part
    done = []

    def crash_on_the_fourth(part):
        if len(done) == 3:
            raise KeyboardInterrupt  # the operator pressed Ctrl-C
        done.append(part.name)
        return real(part)

    monkeypatch.setattr(batch, "_compute_part", crash_on_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        precompute(model_dir, out, k=K, rows_per_part=ROWS, progress=False)
    manifest = parts_manifest(out)
    assert manifest["complete"] is False
    assert [p["name"] for p in manifest["parts"]] == done == [f"part-{i:05d}.parquet" for i in range(3)]

    monkeypatch.setattr(batch, "_compute_part", real)
    result = precompute(model_dir, out, k=K, rows_per_part=ROWS, progress=False)
    assert (result.computed, result.reused) == (3, 3)
    assert_same_lists(pd.read_parquet(out), expected)


def test_other_parameters_start_over(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "lists"
    precompute(model_dir, out, k=K, rows_per_part=ROWS, progress=False)
    result = precompute(model_dir, out, k=3, rows_per_part=ROWS, progress=False, diversity=0.5)
    assert (result.computed, result.reused) == (6, 0)
    assert result.message == "Started over: the parameters changed (controls.diversity 0.0 -> 0.5; k 5 -> 3)."
    assert pd.read_parquet(out).groupby("article_id")["rank"].max().max() == 3

    fewer = precompute(model_dir, out, k=3, rows_per_part=100, progress=False, diversity=0.5)
    assert "rows_per_part 50 -> 100" in fewer.message
    assert sorted(p.name for p in out.glob("part-*.parquet")) == [f"part-{i:05d}.parquet" for i in range(3)]


def test_a_new_model_version_invalidates_old_parts(newsroom: pd.DataFrame, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model = rec.Recommender(min_df=1, max_df=1.0, latent_components=0, fallback=False).fit(newsroom, progress=False)
    model.save(model_dir)
    out = tmp_path / "lists"
    first = precompute(model_dir, out, k=2, rows_per_part=3, progress=False)
    lists = pd.read_parquet(out)
    # by eye: football recommends football, the election articles recommend elections
    assert set(lists.loc[lists["article_id"] == "foot-1", "recommended_id"]) == {"foot-2", "foot-3"}
    assert set(lists.loc[lists["article_id"] == "vote-1", "recommended_id"]) == {"vote-2", "vote-3"}

    model.block(["foot-2"])
    model.save(model_dir)  # version-000002 becomes current
    result = precompute(model_dir, out, k=2, rows_per_part=3, progress=False)
    assert (first.model_version, result.model_version) == ("version-000001", "version-000002")
    assert (result.computed, result.reused) == (3, 0)
    assert "version-000001" in result.message and "version-000002" in result.message
    lists = pd.read_parquet(out)
    assert "foot-2" not in set(lists["recommended_id"])
    assert lists.loc[lists["article_id"] == "foot-1", "recommended_id"].tolist()[0] == "foot-3"
    assert parts_manifest(out)["model"]["version"] == "version-000002"


def test_an_empty_model_writes_one_empty_part(tmp_path: Path) -> None:
    articles = pd.DataFrame({"article_id": ["a", "b"], "title": ["cup final", "vote count"]})
    rec.Recommender(min_df=1, max_df=1.0, latent_components=0, fallback=False).fit(articles).save(tmp_path / "m")
    result = precompute(tmp_path / "m", tmp_path / "lists", k=3, progress=False)
    assert (result.parts, result.items) == (1, 0)
    assert len(pd.read_parquet(tmp_path / "lists")) == 0


def test_progress_bar_counts_parts(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    precompute(model_dir, tmp_path / "lists", k=K, rows_per_part=ROWS, progress=True)
    assert "parts" in capsys.readouterr().err
    precompute(model_dir, tmp_path / "quiet", k=K, rows_per_part=ROWS)  # None: only on a terminal
    assert capsys.readouterr().err == ""


def test_bad_arguments_fail_before_writing(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "lists"
    with pytest.raises(ValueError, match="rows_per_part must be an integer >= 1, got 0"):
        precompute(model_dir, out, rows_per_part=0)
    with pytest.raises(ValueError, match="not both"):
        precompute(model_dir, out, client=object(), workers=2)
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        precompute(model_dir, out, workers=0)
    with pytest.raises(ValueError, match="k must be"):
        precompute(model_dir, out, k=0)
    with pytest.raises(TypeError, match="Unknown ranking control"):
        precompute(model_dir, out, half_life=3)
    assert not out.exists()
    (tmp_path / "file").write_text("keep me", encoding="utf-8")
    with pytest.raises(FileExistsError, match="it is a file"):
        precompute(model_dir, tmp_path / "file")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(FileExistsError, match="it is a directory"):
        precompute(model_dir, tmp_path / "dir.csv")


def test_without_dask_local_runs_work_and_dask_runs_say_what_to_install(model_dir: Path, tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["dask"] = None  # as if dask were not installed
        import recommender
        from recommender._batch import precompute
        assert not any(m == "dask" or m.startswith(("dask.", "distributed")) for m in sys.modules if sys.modules[m])
        result = precompute({str(model_dir)!r}, {str(tmp_path / "lists")!r}, k=2, progress=False)
        print(result.parts, result.items)
        try:
            precompute({str(model_dir)!r}, {str(tmp_path / "other")!r}, workers=2)
        except ImportError as exc:
            print(exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first.split()[0] == "1"
    assert "pip install 'recommender[dask]'" in second
    assert not (tmp_path / "other").exists()


# --------------------------------------------------------------------------- Dask


def test_distributed_output_equals_local_output(
    model_dir: Path, expected: pd.DataFrame, tmp_path: Path, client
) -> None:
    local = precompute(model_dir, tmp_path / "local", k=K, rows_per_part=ROWS, progress=False)
    spread = precompute(model_dir, tmp_path / "dask", k=K, rows_per_part=ROWS, progress=False, client=client)
    assert (spread.parts, spread.computed, spread.items) == (local.parts, 6, local.items)
    assert checksums(tmp_path / "dask") == checksums(tmp_path / "local")  # byte for byte
    assert_same_lists(pd.read_parquet(tmp_path / "dask"), expected)
    # a scheduler address works as well as a client
    by_address = precompute(model_dir, tmp_path / "address", k=K, rows_per_part=100, client=client.scheduler.address)
    assert by_address.parts == 3
    assert_same_lists(pd.read_parquet(tmp_path / "address"), expected)
    # the workers did the work, each loading the model itself from the shared path
    loaded = client.run(lambda: len(__import__("recommender._batch", fromlist=["_MODELS"])._MODELS))
    assert len(loaded) == 2 and sum(loaded.values()) >= 1


def test_a_killed_worker_still_gives_identical_output(
    model_dir: Path, expected: pd.DataFrame, tmp_path: Path, client
) -> None:
    marker = tmp_path / "killed-once"
    out = tmp_path / "lists.csv"

    def install(marker: str, victim: str) -> None:
        """On each worker: the first attempt at ``victim`` kills its own worker process."""
        import recommender._batch as batch

        real = batch._compute_part

        def kill_once(part):
            if part.name == victim and part.directory.endswith(".lists.csv.parts"):
                try:
                    with open(marker, "x"):
                        pass
                except FileExistsError:
                    return real(part)
                os.kill(os.getpid(), signal.SIGKILL)
            return real(part)

        batch._real_compute_part = real
        batch._compute_part = kill_once

    def uninstall() -> None:
        import recommender._batch as batch

        batch._compute_part = batch.__dict__.pop("_real_compute_part", batch._compute_part)

    before = set(client.scheduler_info()["workers"])
    client.run(install, str(marker), "part-00003.parquet")
    try:
        result = precompute(model_dir, out, k=K, rows_per_part=ROWS, progress=False, client=client)
    finally:
        client.run(uninstall)
    assert marker.exists()  # a worker process really died mid-job
    client.wait_for_workers(2, timeout=60)
    assert set(client.scheduler_info()["workers"]) != before  # its nanny started a new one
    assert result.computed == 6
    reference = tmp_path / "reference.csv"
    rec.write_lists(expected, reference)
    assert out.read_text(encoding="utf-8") == reference.read_text(encoding="utf-8")


def test_workers_starts_and_closes_a_local_cluster(model_dir: Path, expected: pd.DataFrame, tmp_path: Path) -> None:
    pytest.importorskip(
        "dask.distributed", reason="dask.distributed is not installed (pip install 'recommender[dask]')"
    )
    result = precompute(model_dir, tmp_path / "lists.parquet", k=K, rows_per_part=100, progress=False, workers=1)
    assert (result.parts, result.computed) == (3, 3)
    assert_same_lists(pd.read_parquet(tmp_path / "lists.parquet"), expected)


def test_model_method_and_cli_flags_reach_the_same_function(tmp_path, capsys):
    from recommender._cli import main

    articles = rec.load_articles(rec.demo_corpus_path())
    model = rec.Recommender(popularity_weight=0)
    model.fit(articles)
    with pytest.raises(ValueError, match="saved model"):
        model.precompute(tmp_path / "unsaved.csv")
    model.save(tmp_path / "m")
    result = model.precompute(tmp_path / "method.csv", k=3)
    assert result.articles == model.n_articles and result.computed == result.parts
    code = main(["precompute", str(tmp_path / "m"), "--out", str(tmp_path / "cli.csv"), "-k", "3", "--quiet"])
    assert code == 0 and "computed" in capsys.readouterr().out
    assert (tmp_path / "method.csv").read_bytes() == (tmp_path / "cli.csv").read_bytes()
    code = main(["precompute", str(tmp_path / "m"), "--out", str(tmp_path / "x"), "--workers", "0"])
    assert code == 1
