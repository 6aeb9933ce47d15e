"""Jobs and threads that overlap: they either work or are refused with a clear message.

Two precompute jobs on one output, someone else's files in an output folder, saves
from several threads, odd entries in a model directory, and readers serving while
writers update the model.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from strategies import WORDS

import recommender as rec
from recommender._locks import held


def site(n: int, seed: int = 0, prefix: str = "a") -> pd.DataFrame:
    rng = random.Random(seed)
    return pd.DataFrame(
        {
            "article_id": [f"{prefix}{i}" for i in range(n)],
            "title": [" ".join(rng.sample(WORDS, 4)) for _ in range(n)],
            "body": [" ".join(rng.choices(WORDS, k=30)) for _ in range(n)],
            "views": [rng.randint(0, 5000) for _ in range(n)],
            "published": [f"2024-05-{1 + i % 28:02d}" for i in range(n)],
            "category": [rng.choice(["sport", "politics", "weather"]) for _ in range(n)],
        }
    )


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("overlap") / "model"
    rec.Recommender(min_df=1).fit(site(40)).save(path)
    return path


def together(work, count: int) -> None:
    """Run ``work`` in ``count`` threads at once and wait for them (bounded)."""
    threads = [threading.Thread(target=work) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- precompute


def test_a_second_precompute_on_the_same_output_is_refused_naming_the_holder(saved: Path, tmp_path: Path) -> None:
    out = tmp_path / "lists"
    out.mkdir()
    with held(out / ".lock", what="test", wait=False):  # another job holds the folder
        with pytest.raises(rec.BusyError, match=r"being written by another job \(pid \d+ on "):
            rec.precompute(saved, out, k=3, progress=False)
    assert not list(out.glob("part-*"))  # nothing was written
    result = rec.precompute(saved, out, k=3, progress=False)  # free again
    assert result.computed == result.parts


def test_two_precompute_jobs_at_once_leave_a_consistent_output(saved: Path, tmp_path: Path) -> None:
    out = tmp_path / "lists"
    outcomes: list[object] = []

    def job() -> None:
        try:
            outcomes.append(rec.precompute(saved, out, k=3, rows_per_part=5, progress=False))
        except rec.BusyError as exc:
            outcomes.append(exc)

    together(job, 2)
    assert len(outcomes) == 2 and any(isinstance(o, rec.PrecomputeResult) for o in outcomes), outcomes
    manifest = json.loads((out / "_parts.json").read_text())
    assert manifest["complete"] is True
    listed = {entry["name"]: entry["sha256"] for entry in manifest["parts"]}
    assert listed == {p.name: sha(p) for p in out.glob("part-*.parquet")}
    assert len(pd.read_parquet(out)) == sum(entry["items"] for entry in manifest["parts"])


@pytest.mark.parametrize("writer", ["precompute", "write_lists"])
def test_files_the_job_did_not_write_are_never_deleted(writer: str, saved: Path, tmp_path: Path) -> None:
    out = tmp_path / "spark-output"
    out.mkdir()
    pd.DataFrame({"x": [1, 2]}).to_parquet(out / "part-00000.parquet")  # someone else's export
    (out / "part-00001-c000.snappy.parquet").write_bytes(b"not ours either")
    before = {p.name: sha(p) for p in out.iterdir()}
    with pytest.raises(FileExistsError, match=r"did not write \(part-00000.parquet, part-00001-c000"):
        if writer == "precompute":
            rec.precompute(saved, out, k=3, progress=False)
        else:
            rec.write_lists(rec.load_model(saved).recommend_frame(k=3), out)
    assert {p.name: sha(p) for p in out.iterdir() if p.name != ".lock"} == before


def test_rewriting_its_own_parts_still_replaces_them(saved: Path, tmp_path: Path) -> None:
    out = tmp_path / "lists"
    frame = rec.load_model(saved).recommend_frame(k=3)
    rec.write_lists(frame, out, part_rows=10)
    assert len(list(out.glob("part-*.parquet"))) > 2
    rec.write_lists(frame.iloc[:5], out)
    assert [p.name for p in out.glob("part-*.parquet")] == ["part-00000.parquet"]


# --------------------------------------------------------------------------- saves


def test_saves_from_many_threads_of_one_process_all_publish(tmp_path: Path) -> None:
    model = rec.Recommender(min_df=1).fit(site(12))
    errors: list[BaseException] = []
    names: list[str] = []

    def saves() -> None:
        try:
            for _ in range(4):
                names.append(model.save(tmp_path / "model"))
        except BaseException as exc:
            errors.append(exc)

    together(saves, 4)
    assert errors == []
    assert len(set(names)) == 16  # every save got its own version
    assert rec.load_model(tmp_path / "model").n_articles == 12
    assert not [p.name for p in (tmp_path / "model").iterdir() if p.name.startswith((".staging", ".CURRENT"))]


def test_odd_entries_in_a_model_directory_do_not_block_saves(tmp_path: Path) -> None:
    model = rec.Recommender(min_df=1).fit(site(12))
    root = tmp_path / "model"
    model.save(root)
    (root / "version-000002").write_text("a plain file named like the next version")
    (root / ".staging-99999999999999999999-x").mkdir()  # a pid no system has
    (root / ".CURRENT.99999999999999999999.tmp").write_text("version-000001\n")
    name = model.save(root)
    assert name == "version-000003"
    assert rec.load_model(root).version_name == "version-000003"
    assert not (root / ".staging-99999999999999999999-x").exists()


def test_an_empty_version_folder_does_not_cost_the_previous_good_model(tmp_path: Path) -> None:
    model = rec.Recommender(min_df=1).fit(site(12))
    root = tmp_path / "model"
    model.save(root)  # version-000001
    (root / "version-000002").mkdir()  # empty: not a version
    assert model.save(root) == "version-000003"
    assert (root / "version-000001" / "manifest.json").is_file()  # still the previous good model (keep=2)
    assert rec.load_model(root / "version-000001").n_articles == 12
    assert (root / "version-000002").is_dir()  # not ours to delete either


# --------------------------------------------------------------------------- live updates while serving


def lists_of(model: rec.Recommender, ids: list[str]) -> dict[str, list[tuple[str, float]]]:
    return {a: [(r.article_id, round(r.score, 6)) for r in model.recommend(a, k=5)] for a in ids}


def test_readers_see_no_error_and_no_stale_list_while_writers_update_and_save(tmp_path: Path) -> None:
    model = rec.Recommender(min_df=1, pool_size=20).fit(site(60))
    ids = list(model.articles_["article_id"])
    stop = threading.Event()
    errors: list[str] = []
    calls = [0]

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            try:
                article_id = rng.choice(ids)
                answers = [
                    model.recommend(article_id, k=5),
                    model.recommend(article_id, k=5, half_life_days=30, diversity=0.3),
                    model.popular(k=5),
                    model.recommend_for_text(title=" ".join(rng.sample(WORDS, 3))),
                ]
                assert all(len(a) <= 5 for a in answers)
                assert all(r.article_id != article_id for r in answers[0])
                calls[0] += 1
            except Exception as exc:
                errors.append(f"reader: {type(exc).__name__}: {exc}")

    final_views: dict[str, int] = {}

    def views_writer(chosen: list[str], seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(15):
            update = {a: rng.randint(0, 10**6) for a in rng.sample(chosen, 3)}
            model.update_views(update)
            final_views.update(update)

    def writer() -> None:
        rng = random.Random(7)
        for step in range(12):
            model.add_articles(site(2, seed=100 + step, prefix=f"new{step}-"))
            blocked = rng.choice(ids)
            model.block([blocked])
            model.pin(rng.choice(ids), [rng.choice(ids)])
            model.unblock([blocked])
            if step % 4 == 3:
                model.save(tmp_path / "model")

    readers = [threading.Thread(target=reader, args=(seed,)) for seed in range(3)]
    writers = [
        threading.Thread(target=lambda: _caught(writer, errors)),
        threading.Thread(target=lambda: _caught(lambda: views_writer(ids[:30], 1), errors)),
        threading.Thread(target=lambda: _caught(lambda: views_writer(ids[30:], 2), errors)),
    ]
    started = time.monotonic()
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join(timeout=240)
    stop.set()
    for thread in readers:
        thread.join(timeout=60)
    assert errors == []
    assert calls[0] > 0 and time.monotonic() - started < 240
    assert model.n_articles == 60 + 24
    views = model.articles_.set_index("article_id")["views"]
    assert {a: int(views[a]) for a in final_views} == final_views  # no writer's update was lost
    model.save(tmp_path / "final")
    fresh = rec.load_model(tmp_path / "final")
    every = list(model.articles_["article_id"])
    assert lists_of(model, every) == lists_of(fresh, every)  # no list cached mid-update is served


def _caught(work, errors: list[str]) -> None:
    try:
        work()
    except Exception as exc:
        errors.append(f"writer: {type(exc).__name__}: {exc}")


def test_a_model_with_its_writer_lock_still_pickles() -> None:
    import pickle

    model = rec.Recommender(min_df=1).fit(site(10))
    model.update_views({"a1": 5})  # creates the lock
    copy = pickle.loads(pickle.dumps(model))
    assert np.array_equal(copy.neighbours_, model.neighbours_)
    copy.update_views({"a2": 7})
    assert int(copy.articles_.set_index("article_id")["views"]["a2"]) == 7
