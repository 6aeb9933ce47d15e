"""Tests for recommender._store: the model directory (save, load, versions, integrity).

The corpus is six invented articles: three about a football cup, three about an
election, six different stories. Each article's list of similar articles is the
other two articles of its own topic, which a reader can check by eye; the tests
then only need save/load to give the same lists. Editorial state (blocklist, pins,
bans) and duplicate groups are part of the model and must survive save/load too.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import recommender as rec
from recommender._store import FORMAT_VERSION, OLDEST_FORMAT_VERSION

FOOTBALL = ["f1", "f2", "f3"]
ELECTION = ["e1", "e2", "e3"]


def six_articles(**overrides: list) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "article_id": FOOTBALL + ELECTION,
            "title": [
                "Cup final goal",
                "Late goal wins the cup",
                "Striker scores in cup final",
                "Election vote count begins",
                "Vote count in the election",
                "Ballots counted after election",
            ],
            "body": [
                "The football cup final ended with a late goal.",
                "A late football goal won the cup for the home side.",
                "The striker scored twice in the football cup final.",
                "Officials began the election vote count on ballots.",
                "Counting continues overnight after a high turnout.",
                "All election ballots were counted by officials.",
            ],
            "published": ["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04", "2024-03-05", "2024-03-06"],
            "views": [100, 2000, 300, 40, 500, 60],
            "url": [f"https://news.example/{i}" for i in FOOTBALL + ELECTION],
            "category": ["sport"] * 3 + ["politics"] * 3,
            "tags": ["cup;football", "cup", "", "vote", "vote;count", ""],
        }
    )
    for column, values in overrides.items():
        frame[column] = values
    return frame


def fit(frame: pd.DataFrame, **params) -> rec.Recommender:
    """A model of ``frame``; the latent blend is off unless asked for, since the lists are read off shared words."""
    params.setdefault("latent_components", 0)
    return rec.Recommender(min_df=1, max_df=1.0, **params).fit(frame)


@pytest.fixture
def model() -> rec.Recommender:
    # No popular fallback: a list holds only the similar articles, so its content is checkable by eye.
    return fit(six_articles(), fallback=False)


@pytest.fixture
def saved(tmp_path: Path, model: rec.Recommender) -> Path:
    root = tmp_path / "model"
    model.save(root)
    return root


def current_version(root: Path) -> Path:
    return root / (root / "CURRENT").read_text(encoding="utf-8").strip()


def lists(model: rec.Recommender, k: int = 5) -> dict[str, list[str]]:
    return {a: [r.article_id for r in model.recommend(a, k=k)] for a in model.article_ids}


def rewrite_manifest(version: Path, change) -> None:
    path = version / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    change(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")


def describe(path: Path) -> dict:
    return {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "bytes": path.stat().st_size}


# --------------------------------------------------------------------------- round trip


def test_fixture_lists_stay_within_topic(model: rec.Recommender) -> None:
    # The premise of every round-trip test below: the right lists are obvious.
    for article_id, found in lists(model).items():
        topic = FOOTBALL if article_id in FOOTBALL else ELECTION
        assert sorted(found) == sorted(set(topic) - {article_id})


def test_round_trip_gives_identical_lists_and_parameters(tmp_path: Path) -> None:
    model = fit(
        six_articles(),
        popularity_weight=0.5,
        pool_size=4,
        ngram_range=(1, 2),
        reference_date="2024-03-10",
        latent_components=3,
        half_life_days=10.0,
        categories=("sport", "politics"),
    )
    assert model.vocabulary_.components is not None  # the latent blend is on
    model.save(tmp_path / "m")
    loaded = rec.load_model(tmp_path / "m")

    assert loaded.get_params() == model.get_params()
    assert loaded.get_params()["ngram_range"] == (1, 2)
    np.testing.assert_array_equal(loaded.vocabulary_.components, model.vocabulary_.components)
    assert loaded.vocabulary_.latent_weight == model.vocabulary_.latent_weight
    assert (loaded.vectors_ != model.vectors_).nnz == 0
    draft = "Late goal in the cup final"  # not in the model: vectorised with the loaded idf and components
    assert loaded.recommend_for_text(draft, k=4) == model.recommend_for_text(draft, k=4)
    assert loaded.article_ids == model.article_ids
    assert loaded.reference_date_ == pd.Timestamp("2024-03-10", tz="UTC")
    for article_id in model.article_ids:
        assert loaded.recommend(article_id, k=4) == model.recommend(article_id, k=4)
        assert loaded.recommend(article_id, k=4, exclude=["f2"]) == model.recommend(article_id, k=4, exclude=["f2"])
    pd.testing.assert_frame_equal(loaded.recommend_frame(k=3), model.recommend_frame(k=3))
    assert loaded.popular(k=6) == model.popular(k=6)


def test_round_trip_keeps_display_fields(saved: Path) -> None:
    loaded = rec.load_model(saved)
    (first,) = loaded.recommend("e3", k=1, exclude=["e2"])
    assert first.article_id == "e1"
    assert first.title == "Election vote count begins"
    assert first.url == "https://news.example/e1"
    assert first.category == "politics"
    assert first.published == pd.Timestamp("2024-03-04", tz="UTC").to_pydatetime()
    assert list(loaded.articles_["tags"]) == [("cup", "football"), ("cup",), (), ("vote",), ("vote", "count"), ()]


def test_loaded_arrays_are_read_only_memory_maps(saved: Path) -> None:
    loaded = rec.load_model(saved)
    arrays = {
        "neighbours_": loaded.neighbours_,
        "similarities_": loaded.similarities_,
        "popularity_": loaded.popularity_,
        "text_keys_": loaded.text_keys_,
        "signatures_.values": loaded.signatures_.values,
        "signatures_.indptr": loaded.signatures_.indptr,
        "groups_": loaded.groups_,
        "vectors_.data": loaded.vectors_.data,
        "vectors_.indices": loaded.vectors_.indices,
    }
    for name, array in arrays.items():
        assert isinstance(array, np.memmap) or not array.flags.writeable, name
        with pytest.raises(ValueError):
            array[0] = 0


def test_ids_unicode_and_missing_fields_round_trip(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "article_id": ["007", "0070", "7"],
            "title": ["Fútbol: el gol de la final", "Finale: le but décisif ⚽", "决赛 goal final"],
            "body": ["gol final copa", "but final coupe", "goal final cup"],
        }
    )
    model = fit(frame)
    assert model.reference_date_ is None  # no dates at all
    model.save(tmp_path / "m")
    loaded = rec.load_model(tmp_path / "m")

    assert loaded.article_ids == ["007", "0070", "7"]
    assert loaded.reference_date_ is None
    assert loaded.articles_["title"].tolist() == frame["title"].tolist()
    assert loaded.articles_["url"].tolist() == [None, None, None]
    assert loaded.articles_["category"].tolist() == [None, None, None]
    assert loaded.articles_["published"].isna().all()
    assert lists(loaded, k=2) == lists(model, k=2)
    assert {r.article_id for r in loaded.recommend("007", k=2)} == {"0070", "7"}  # all share "final"
    item = loaded.recommend("007", k=2)[0]
    assert item.url is None and item.category is None and item.published is None
    pd.testing.assert_frame_equal(loaded.recommend_frame(k=2), model.recommend_frame(k=2))
    assert json.loads((current_version(tmp_path / "m") / "manifest.json").read_text())["reference_date"] is None


def test_rejected_rows_are_saved_and_restored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    extra = pd.DataFrame(
        {
            "article_id": [None, "f1", "x9"],
            "title": ["No id here", "Duplicate football cup", "Negative views"],
            "views": [1, 2, -5],
        }
    )
    model = fit(pd.concat([six_articles(), extra], ignore_index=True))
    expected = [
        {"source": "<DataFrame>", "row": 7, "article_id": None, "reason": "missing article_id"},
        {
            "source": "<DataFrame>",
            "row": 8,
            "article_id": "f1",
            "reason": "duplicate article_id 'f1' (first seen in row 1)",
        },
        {"source": "<DataFrame>", "row": 9, "article_id": "x9", "reason": "views is negative: -5"},
    ]
    assert model.rejected_ == expected
    name = model.save(tmp_path / "m")

    on_disk = pd.read_csv(tmp_path / "m" / name / "rejected.csv", dtype=str, keep_default_na=False)
    assert on_disk.columns.tolist() == ["source", "row", "article_id", "reason"]
    assert on_disk["article_id"].tolist() == ["", "f1", "x9"]
    assert on_disk["reason"].tolist() == [r["reason"] for r in expected]
    assert rec.load_model(tmp_path / "m").rejected_ == expected


def test_copied_wire_story_is_counted_and_still_never_recommended(tmp_path: Path) -> None:
    wire = {"title": "Wire: cup final tonight", "body": "The cup final kicks off tonight."}
    frame = pd.DataFrame(
        {
            "article_id": ["w1", "w2", "f1", "e1"],
            "title": [wire["title"], wire["title"].upper(), "Cup final goal", "Election vote count"],
            "body": [wire["body"], "The  cup final kicks off   tonight.", "A late goal in the cup final.", "Votes"],
        }
    )
    model = fit(frame, fallback=False)
    model.save(tmp_path / "m")
    counts = rec.read_manifest(tmp_path / "m")["counts"]
    assert counts["copies"] == 2
    assert counts["duplicate_groups"] == 1  # the two copies are one story
    loaded = rec.load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.copy_groups_, [0, 0, -1, -1])  # derived from the stored text keys
    np.testing.assert_array_equal(loaded.groups_, [0, 0, 2, 3])
    assert loaded.text_keys_[0] == loaded.text_keys_[1] != loaded.text_keys_[2]
    assert [r.article_id for r in loaded.recommend("w1", k=3)] == ["f1"]
    assert [r.article_id for r in loaded.recommend("w2", k=3)] == ["f1"]
    # The story once, shown by its representative: undated and without views, the first in input order.
    assert [r.article_id for r in loaded.recommend("f1", k=3)] == ["w1"]


def test_a_loaded_model_can_be_saved_again(tmp_path: Path, saved: Path) -> None:
    loaded = rec.load_model(saved)
    assert loaded.save(saved) == "version-000002"  # prunes nothing yet; the mapped version stays
    assert loaded.save(tmp_path / "copy") == "version-000001"
    again = rec.load_model(tmp_path / "copy")
    assert lists(again) == lists(loaded)
    assert again.rejected_ == [] and again.reference_date_ == loaded.reference_date_


def test_no_rejected_file_without_rejected_rows(saved: Path) -> None:
    assert not (current_version(saved) / "rejected.csv").exists()
    assert rec.load_model(saved).rejected_ == []


# --------------------------------------------------------------------------- editorial state and duplicate groups


def edited_model() -> rec.Recommender:
    """The six stories plus a syndicated copy of e2 published a day after the last one, with editorial state.

    By eye: e2 and its copy are one story, shown by the copy (the newest); f3 is blocked, so nobody lists it;
    e1's list starts with the editor's pins f1 and e3; f1 may not show f2 (banned), so f1 has nothing left.
    """
    copy = six_articles().iloc[[4]].assign(article_id="e2-copy", published="2024-03-07", url=None)
    model = fit(pd.concat([six_articles(), copy], ignore_index=True), fallback=False)
    model.block(["f3", "not-yet-added"])  # an unknown id stays blocked in case it is added later
    model.pin("e1", ["f1", "e3"])
    model.ban("f1", "f2")
    return model


def test_editorial_state_has_the_effects_read_by_eye() -> None:
    # The premise of the round-trip test below.
    model = edited_model()
    found = lists(model, k=3)
    assert found["f1"] == []
    assert found["f2"] == ["f1"]
    assert found["e1"] == ["f1", "e3", "e2-copy"]
    assert [r.reason for r in model.recommend("e1", k=3)] == ["pinned", "pinned", "similar"]
    assert sorted(found["e3"]) == ["e1", "e2-copy"]
    assert not any({"f3", "e2"} & set(items) for items in found.values())
    groups = model.duplicate_groups()
    assert groups["article_id"].tolist() == ["e2-copy", "e2"]
    assert groups["representative"].tolist() == [True, False]


def test_editorial_state_and_duplicate_groups_survive_save_and_load(tmp_path: Path) -> None:
    model = edited_model()
    model.save(tmp_path / "m")
    loaded = rec.load_model(tmp_path / "m")

    assert loaded.blocked == {"f3", "not-yet-added"}
    assert loaded.pins == {"e1": ["f1", "e3"]}
    assert loaded.bans == {"f1": {"f2"}}
    np.testing.assert_array_equal(loaded.groups_, model.groups_)
    np.testing.assert_array_equal(loaded.text_keys_, model.text_keys_)
    for name in ("values", "indptr", "level", "size"):
        np.testing.assert_array_equal(getattr(loaded.signatures_, name), getattr(model.signatures_, name))
    pd.testing.assert_frame_equal(loaded.duplicate_groups(), model.duplicate_groups())
    for article_id in model.article_ids:
        assert loaded.recommend(article_id, k=4) == model.recommend(article_id, k=4)
    pd.testing.assert_frame_equal(loaded.recommend_frame(k=4, explain=True), model.recommend_frame(k=4, explain=True))
    assert loaded.popular(k=7) == model.popular(k=7)

    manifest = rec.read_manifest(tmp_path / "m")
    assert manifest["counts"]["copies"] == 2
    assert manifest["counts"]["duplicate_groups"] == 1
    assert (manifest["counts"]["blocked"], manifest["counts"]["pins"], manifest["counts"]["bans"]) == (2, 1, 1)
    on_disk = json.loads((current_version(tmp_path / "m") / "editorial.json").read_text(encoding="utf-8"))
    assert on_disk == {"blocked": ["f3", "not-yet-added"], "pins": {"e1": ["f1", "e3"]}, "bans": {"f1": ["f2"]}}


def test_editorial_changes_to_a_loaded_model_are_saved(tmp_path: Path) -> None:
    edited_model().save(tmp_path / "m")
    loaded = rec.load_model(tmp_path / "m")
    loaded.unblock(["f3", "not-yet-added"])
    loaded.pin("e1", [])
    loaded.unban("f1", "f2")
    loaded.ban("e3", "e1")
    loaded.save(tmp_path / "m")
    again = rec.load_model(tmp_path / "m")

    assert (again.blocked, again.pins, again.bans) == (set(), {}, {"e3": {"e1"}})
    found = lists(again, k=3)
    assert found["f1"] == ["f2", "f3"]
    assert found["e3"] == ["e2-copy"]
    assert found == lists(loaded, k=3)


def test_model_without_editorial_file_loads_with_no_editorial_state(saved: Path, model: rec.Recommender) -> None:
    # Models saved before editorial state existed have no editorial.json.
    version = current_version(saved)
    (version / "editorial.json").unlink()
    rewrite_manifest(version, lambda m: m["files"].pop("editorial.json"))
    loaded = rec.load_model(saved)
    assert (loaded.blocked, loaded.pins, loaded.bans) == (set(), {}, {})
    assert lists(loaded) == lists(model)


# --------------------------------------------------------------------------- manifest


def test_manifest_describes_the_model_and_every_file(saved: Path) -> None:
    version = current_version(saved)
    manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))

    assert manifest["format"] == "recommender-model"
    assert manifest["format_version"] == FORMAT_VERSION == 4
    assert manifest["library_version"] == rec.__version__
    assert manifest["parameters"]["min_df"] == 1
    assert manifest["parameters"]["max_df"] == 1.0
    assert manifest["parameters"]["popularity_weight"] == 0.1
    assert manifest["parameters"]["ngram_range"] == [1, 1]
    assert manifest["counts"]["articles"] == 6
    assert manifest["counts"]["rejected"] == manifest["counts"]["flagged"] == 0
    assert manifest["counts"]["copies"] == 0
    assert manifest["counts"]["duplicate_groups"] == 0
    assert {manifest["counts"][name] for name in ("blocked", "pins", "bans")} == {0}
    assert manifest["counts"]["terms"] == len(rec.load_model(saved).vocabulary_) > 0
    assert manifest["popularity_scale"] > 0
    assert manifest["drift_counts"] == [0, 0]
    assert pd.Timestamp(manifest["reference_date"]) == pd.Timestamp("2024-03-06", tz="UTC")

    on_disk = {p.name for p in version.iterdir()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk
    assert {"neighbours.npy", "similarities.npy", "article_id.bytes.npy", "editorial.json"} <= on_disk
    assert {"text_keys.npy", "groups.npy", "signatures.values.npy", "signatures.level.npy"} <= on_disk
    assert {"tag_values.bytes.npy", "tag_counts.npy"} <= on_disk and "tags.bytes.npy" not in on_disk
    assert manifest["copy_signatures"] is True
    assert manifest["parameters"]["stop_words"] == "news" and manifest["parameters"]["collapse"] is True
    assert "copy_groups.npy" not in on_disk  # derived from text_keys on load
    for name, info in manifest["files"].items():
        assert info == describe(version / name), name


def test_read_manifest_names_the_current_version(saved: Path) -> None:
    assert rec.read_manifest(saved)["version"] == "version-000001"


# --------------------------------------------------------------------------- versions


def test_each_save_adds_a_version_and_old_ones_are_pruned(tmp_path: Path, model: rec.Recommender) -> None:
    root = tmp_path / "m"
    assert model.save(root) == "version-000001"
    assert (root / "CURRENT").read_text(encoding="utf-8").strip() == "version-000001"
    assert model.save(root) == "version-000002"
    assert (root / "CURRENT").read_text(encoding="utf-8").strip() == "version-000002"
    assert model.save(root) == "version-000003"

    assert (root / "CURRENT").read_text(encoding="utf-8").strip() == "version-000003"
    for _ in range(4):
        model.save(root)
    # the newest 5 complete versions are kept (KEEP); the first (a full build) goes once a newer build exists
    assert sorted(p.name for p in root.iterdir()) == [".lock", "CURRENT"] + [f"version-00000{i}" for i in range(3, 8)]


def test_retention_keeps_the_last_full_build_among_many_editorial_versions(tmp_path: Path) -> None:
    root = tmp_path / "m"
    fit(six_articles()).save(root)  # version-000001: a build
    for i in range(8):  # eight editor clicks, each a version
        edited = rec.load_model(root)
        edited.block([f"nobody-{i}"])
        edited.save(root)
    names = rec.versions_of(root)
    assert names[0] == "version-000001" and len(names) == 6  # the build, and the 5 newest
    assert json.loads((root / "version-000001" / "manifest.json").read_text())["build"] is True
    assert json.loads((root / names[-1] / "manifest.json").read_text())["build"] is False


def test_rollback_goes_to_the_previous_version_that_loads(tmp_path: Path) -> None:
    root = tmp_path / "m"
    first = fit(six_articles(), popularity_weight=0.0)
    first.save(root)  # 1
    fit(six_articles().iloc[:3]).save(root)  # 2
    fit(six_articles().iloc[:4]).save(root)  # 3
    broken = root / "version-000002" / "groups.npy"
    broken.write_bytes(broken.read_bytes()[:-8])  # truncated
    assert rec.rollback(root) == "version-000001"  # 2 does not load: skipped
    assert rec.load_model(root).article_ids == first.article_ids
    assert rec.rollback(root, to=3) == "version-000003"
    with pytest.raises(rec.ModelFormatError, match="truncated"):
        rec.rollback(root, to="version-000002")
    assert rec.load_model(root).version_name == "version-000003"  # unchanged by the refused rollback
    with pytest.raises(rec.ModelFormatError, match="has no version '9'"):
        rec.rollback(root, to="9")


def test_a_reader_can_be_told_to_serve_the_newest_valid_version(tmp_path: Path) -> None:
    root = tmp_path / "m"
    fit(six_articles()).save(root)
    fit(six_articles().iloc[:3]).save(root)
    (root / "version-000002" / "idf.npy").write_bytes(b"broken")
    with pytest.raises(rec.ModelFormatError, match="version-000002"):
        rec.load_model(root)
    assert rec.load_model(root, newest_valid=True).version_name == "version-000001"
    fit(six_articles().iloc[:4]).save(root)  # version-000003, then altered in place, same size
    data = bytearray((root / "version-000003" / "neighbours.npy").read_bytes())
    data[-1] ^= 0xFF
    (root / "version-000003" / "neighbours.npy").write_bytes(bytes(data))
    assert rec.load_model(root, newest_valid=True).version_name == "version-000001"  # checksums are checked
    holder = rec.ModelHolder(root, newest_valid=True)
    assert len(holder.model.article_ids) == 6


def test_a_save_that_would_not_load_is_not_published(tmp_path: Path, monkeypatch) -> None:
    import recommender._store as store

    root = tmp_path / "m"
    model = fit(six_articles())
    model.save(root)
    real = store.read_model

    def failing(path, **kwargs):
        if ".staging-" in str(path):
            raise rec.ModelFormatError("simulated: a disk that returns other bytes")
        return real(path, **kwargs)

    monkeypatch.setattr(store, "read_model", failing)
    with pytest.raises(rec.ModelFormatError, match="failed its own check and was not published"):
        model.save(root)
    monkeypatch.undo()
    assert rec.versions_of(root) == ["version-000001"] and rec.load_model(root).version_name == "version-000001"
    assert not [p for p in root.iterdir() if p.name.startswith(".staging")]


def test_load_follows_current(tmp_path: Path) -> None:
    root = tmp_path / "m"
    first = fit(six_articles(), popularity_weight=0.0)
    second = fit(six_articles().iloc[:3], popularity_weight=0.7)  # football only
    first.save(root)
    second.save(root)
    assert rec.load_model(root).article_ids == FOOTBALL
    assert rec.load_model(root).popularity_weight == 0.7

    (root / "CURRENT").write_text("version-000001\n", encoding="utf-8")
    assert rec.load_model(root).article_ids == FOOTBALL + ELECTION
    assert rec.load_model(root).popularity_weight == 0.0


def test_a_version_folder_can_be_loaded_directly(tmp_path: Path) -> None:
    root = tmp_path / "m"
    fit(six_articles()).save(root)
    fit(six_articles().iloc[3:]).save(root)  # election only, now current
    old = rec.load_model(root / "version-000001")
    assert old.article_ids == FOOTBALL + ELECTION
    assert old.version_name == "version-000001"
    assert rec.load_model(root).article_ids == ELECTION


def test_saving_onto_a_file_fails(tmp_path: Path, model: rec.Recommender) -> None:
    target = tmp_path / "not-a-dir"
    target.write_text("x", encoding="utf-8")
    with pytest.raises(rec.ModelFormatError, match="it is a file"):
        model.save(target)


def test_saving_leaves_no_staging_folder(saved: Path) -> None:
    # the directory's save lock stays (removing a lock file others may wait on would break it)
    assert sorted(p.name for p in saved.iterdir()) == [".lock", "CURRENT", "version-000001"]


# --------------------------------------------------------------------------- failures


def test_altered_byte_fails_the_checksum(saved: Path) -> None:
    path = current_version(saved) / "similarities.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(rec.ModelFormatError, match=r"similarities\.npy.*SHA-256"):
        rec.load_model(saved)


def test_tampered_editorial_file_fails_the_checksum(tmp_path: Path) -> None:
    edited_model().save(tmp_path / "m")
    path = current_version(tmp_path / "m") / "editorial.json"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('"f3"', '"f2"'), encoding="utf-8")  # same size: unblock f3, block f2
    with pytest.raises(rec.ModelFormatError, match=r"editorial\.json.*SHA-256"):
        rec.load_model(tmp_path / "m")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"blocked": [], "pins": ["e1", "f1"], "bans": {}}', "'pins' must be an object"),
        ('{"blocked": [], "pins": {}, "bans": {"f1": "f2"}}', "'bans' of 'f1' must be a list"),
        ('{"blocked": "f3", "pins": {}, "bans": {}}', "'blocked' must be a list"),  # not blocked f and 3
        ('{"blocked": [3], "pins": {}, "bans": {}}', "'blocked' must be a list of article ids"),
        ('{"blocked": [], "pins": {"e1": null}, "bans": {}}', "'pins' of 'e1'"),
        ('["f3"]', "expected an object"),
        ("{not json", "not valid JSON"),
    ],
    ids=["pins-a-list", "ban-a-string", "blocked-a-string", "blocked-a-number", "pin-null", "a-list", "not-json"],
)
def test_editorial_file_of_the_wrong_shape_fails(tmp_path: Path, content: str, message: str) -> None:
    # The checksum is updated, so only the shape is wrong: a clear ModelFormatError, not a crash or a misread.
    edited_model().save(tmp_path / "m")
    version = current_version(tmp_path / "m")
    path = version / "editorial.json"
    path.write_text(content, encoding="utf-8")
    rewrite_manifest(version, lambda m: m["files"].update({"editorial.json": describe(path)}))
    with pytest.raises(rec.ModelFormatError, match=r"editorial\.json.*" + message):
        rec.load_model(tmp_path / "m")


def test_duplicate_group_labels_out_of_range_fail(saved: Path) -> None:
    version = current_version(saved)
    path = version / "groups.npy"
    np.save(path, np.array([0, 1, 2, 3, 4, 99], dtype=np.int64), allow_pickle=False)
    rewrite_manifest(version, lambda m: m["files"].update({"groups.npy": describe(path)}))
    with pytest.raises(rec.ModelFormatError, match=r"groups.npy. is invalid: each label must be the smallest row"):
        rec.load_model(saved)


def test_truncated_file_fails(saved: Path) -> None:
    path = current_version(saved) / "neighbours.npy"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(rec.ModelFormatError, match=r"neighbours\.npy.*truncated"):
        rec.load_model(saved)
    with pytest.raises(rec.ModelFormatError, match="truncated"):
        rec.load_model(saved, verify=False)


def test_missing_file_fails(saved: Path) -> None:
    (current_version(saved) / "popularity.npy").unlink()
    with pytest.raises(rec.ModelFormatError, match=r"missing.*popularity\.npy"):
        rec.load_model(saved)


def test_manifest_that_is_not_json_fails(saved: Path) -> None:
    (current_version(saved) / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(rec.ModelFormatError, match="not valid JSON"):
        rec.load_model(saved)


def test_foreign_format_fails(saved: Path) -> None:
    rewrite_manifest(current_version(saved), lambda m: m.update(format="someone-elses-model"))
    with pytest.raises(rec.ModelFormatError, match="not a recommender model"):
        rec.load_model(saved)


def test_newer_format_version_says_upgrade_or_rebuild(saved: Path) -> None:
    newer = FORMAT_VERSION + 1
    rewrite_manifest(current_version(saved), lambda m: m.update(format_version=newer, library_version="9.0.0"))
    with pytest.raises(rec.ModelFormatError, match=f"format {newer}") as caught:
        rec.load_model(saved)
    message = str(caught.value)
    assert "Upgrade recommender" in message and "rebuild" in message and "9.0.0" in message


FORMAT_1 = Path(__file__).parent / "data" / "model-format-1"


def test_a_format_1_model_still_loads_and_gives_its_lists(tmp_path: Path) -> None:
    # Written by recommender 0.1.0 in format 1 (see tests/data/model-format-1/README.md);
    # format 2 added flagged.csv, which a format-1 model does not have.
    expected = json.loads((FORMAT_1 / "expected.json").read_text(encoding="utf-8"))
    assert expected["format_version"] == 1 < FORMAT_VERSION
    model = rec.load_model(FORMAT_1 / "model")
    assert model.flagged_ == [] and model.bans == {"foot-1": {"foot-3"}}
    for source, items in expected["lists"].items():
        got = model.recommend(source, k=expected["k"])
        assert [r.article_id for r in got] == [a for a, _ in items], source
        np.testing.assert_allclose([r.score for r in got], [score for _, score in items], atol=1e-5)
    # and it is saved again in the current format
    model.save(tmp_path / "again")
    assert rec.read_manifest(tmp_path / "again")["format_version"] == FORMAT_VERSION


def test_a_format_1_model_keeps_its_old_rules_until_rebuilt(tmp_path: Path) -> None:
    model = rec.load_model(FORMAT_1 / "model")
    # fitted with scikit-learn's stop list and grouped by the rule of its time: both kept
    assert model.stop_words == "english" and model.signatures_ is None
    groups = np.asarray(model.groups_).copy()
    assert model.text_params().stop_words == "english"
    new = pd.DataFrame({"article_id": ["x1"], "title": ["Cup final"], "body": ["The cup final was won late."]})
    with pytest.raises(rec.ModelFormatError, match="rebuild"):
        model.add_articles(new)
    with pytest.raises(rec.ModelFormatError, match="rebuild"):
        model.update_articles(new.assign(article_id=model.article_ids[0]))
    np.testing.assert_array_equal(model.groups_, groups)  # nothing changed
    gone = model.article_ids[-1]
    model.remove_articles([gone])
    assert gone not in model.article_ids and len(model.groups_) == len(groups) - 1
    # saved again, it is a format-3 model that still has no signatures and says so
    model.save(tmp_path / "again")
    assert rec.read_manifest(tmp_path / "again")["copy_signatures"] is False
    with pytest.raises(rec.ModelFormatError, match="rebuild"):
        rec.load_model(tmp_path / "again").add_articles(new)


def test_a_format_older_than_readable_says_how_to_rebuild(saved: Path) -> None:
    older = OLDEST_FORMAT_VERSION - 1
    rewrite_manifest(current_version(saved), lambda m: m.update(format_version=older, library_version="0.0.1"))
    with pytest.raises(rec.ModelFormatError, match=f"format {older}") as caught:
        rec.load_model(saved)
    assert "recommender build ARTICLES --out MODEL_DIR" in str(caught.value) and "0.0.1" in str(caught.value)


def test_flagged_rows_are_saved_and_restored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    frame = six_articles(published=["2024-03-01", "2200-01-01", None, "2024-03-04", "2024-03-05", "2024-03-06"])
    model = fit(frame)
    assert [f["article_id"] for f in model.flagged_] == [frame["article_id"][1]]
    assert "future" in model.flagged_[0]["reason"]
    # the future date does not become the reference date, which would age every other article
    assert model.reference_date_ == pd.Timestamp("2024-03-06", tz="UTC")
    model.save(tmp_path / "m")
    version = current_version(tmp_path / "m")
    assert (version / "flagged.csv").exists()
    loaded = rec.load_model(tmp_path / "m")
    assert loaded.flagged_ == model.flagged_
    assert rec.read_manifest(tmp_path / "m")["counts"]["flagged"] == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m["files"].update({"idf.npy": "abc"}), "idf.npy"),
        (lambda m: m.update(files=[]), "lists no files"),
        (lambda m: m["files"].update({"../escape.npy": m["files"]["idf.npy"]}), "invalid file"),
        (lambda m: m.update(parameters=["min_df", 1]), "parameters"),
        (
            lambda m: m["parameters"].update(colour="red"),
            r"manifest\.json. has unusable parameters: Invalid parameter .colour.",
        ),
        (lambda m: m.update(format_version="1"), "invalid format_version"),
    ],
    ids=[
        "file-entry-not-an-object",
        "no-files",
        "path-outside",
        "parameters-not-an-object",
        "unknown-parameter",
        "version-not-int",
    ],
)
def test_malformed_manifest_fails(saved: Path, change, message: str) -> None:
    rewrite_manifest(current_version(saved), change)
    with pytest.raises(rec.ModelFormatError, match=message):
        rec.load_model(saved)


def test_current_pointing_to_a_missing_version_fails(saved: Path) -> None:
    (saved / "CURRENT").write_text("version-000042\n", encoding="utf-8")
    with pytest.raises(rec.ModelFormatError, match="version-000042"):
        rec.load_model(saved)


def test_directory_that_is_not_a_model_fails(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(rec.ModelFormatError, match="not a recommender model directory"):
        rec.load_model(tmp_path)


def test_missing_path_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        rec.load_model(tmp_path / "nowhere")


def test_model_format_error_is_a_value_error(saved: Path) -> None:
    (saved / "CURRENT").write_text("garbage\n", encoding="utf-8")
    with pytest.raises(ValueError):
        rec.load_model(saved)


class _Marker:
    """Unpickling this creates a directory: proof that code from a file ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_pickled_array_is_refused_and_never_unpickled(saved: Path, tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    version = current_version(saved)
    path = version / "popularity.npy"
    payload = np.empty(6, dtype=object)
    payload[:] = [_Marker(marker)] * 6
    with open(path, "wb") as handle:
        np.save(handle, payload, allow_pickle=True)
    rewrite_manifest(version, lambda m: m["files"].update({"popularity.npy": describe(path)}))

    with pytest.raises(rec.ModelFormatError, match=r"popularity\.npy"):
        rec.load_model(saved)
    assert not marker.exists()

    # The payload is live: unpickling it on purpose does create the marker.
    with open(path, "rb") as handle:
        np.load(handle, allow_pickle=True)
    assert marker.exists()


def test_stop_words_and_collapse_are_saved_and_used_after_loading(tmp_path: Path) -> None:
    model = fit(six_articles(), stop_words=["cup", "election"], collapse=False)
    assert "cup" not in set(model.vocabulary_.terms)
    model.save(tmp_path / "m")
    loaded = rec.load_model(tmp_path / "m")
    assert loaded.stop_words == ("cup", "election") and loaded.collapse is False
    assert loaded.text_params() == model.text_params()
    # a draft is read with the saved stop list: "cup" and "election" add nothing, "goal" does
    draft = {"title": "cup election goal", "k": 2}
    assert [r.article_id for r in loaded.recommend_for_text(**draft)] == [
        r.article_id for r in model.recommend_for_text(**draft)
    ]
    assert all(t != "cup" for r in loaded.recommend_for_text(**draft) for t, _ in r.shared_terms)
