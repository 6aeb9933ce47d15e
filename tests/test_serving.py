"""ModelHolder: many threads, repeated reloads, every answer from exactly one version."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest

import recommender as rec


def corpus(variant: int) -> pd.DataFrame:
    """Two versions of a small site: in version 1 the football articles talk about a replay."""
    extra = " replay" if variant else ""
    return pd.DataFrame(
        {
            "article_id": ["f1", "f2", "f3", "e1", "e2", "e3"],
            "title": ["Cup final goal", "Striker goal in cup", "Keeper saves penalty", "Election vote", "Ballots counted", "Polls open"],
            "body": [f"late goal wins cup final{extra}", f"striker scores cup goal{extra}", f"keeper penalty cup{extra}",
                     "votes cast election", "ballots counted election", "polls open election vote"],
        }
    )  # fmt: skip


def fitted(variant: int) -> rec.Recommender:
    return rec.Recommender(min_df=1, max_df=1.0, latent_components=0, title_weight=1.0 + variant).fit(corpus(variant))


def test_answers_carry_the_version_and_reload_switches(tmp_path):
    fitted(0).save(tmp_path / "m")
    holder = rec.ModelHolder(tmp_path / "m")
    first = holder.recommend("f1", k=2)
    assert first.version == holder.version and len(first) == 2
    assert [r.article_id for r in first] == [r.article_id for r in rec.load_model(tmp_path / "m").recommend("f1", k=2)]
    assert holder.reload() is False  # nothing new
    fitted(1).save(tmp_path / "m")
    assert holder.reload() is True
    assert holder.recommend("f1", k=2).version != first.version
    assert holder.recommend_for_text(title="cup goal", k=1).version == holder.version


def test_a_corrupt_new_version_keeps_the_old_one_serving(tmp_path):
    fitted(0).save(tmp_path / "m")
    holder = rec.ModelHolder(tmp_path / "m")
    before = holder.version
    version = fitted(1).save(tmp_path / "m")
    (tmp_path / "m" / version / "neighbours.npy").write_bytes(b"garbage")
    with pytest.raises(rec.ModelFormatError):
        holder.reload()
    assert holder.version == before and len(holder.recommend("e1", k=2)) == 2


def test_threads_and_reloads(tmp_path):
    models = {variant: fitted(variant) for variant in (0, 1)}  # fitted before the threads start
    versions = {v: {a: [r.article_id for r in m.recommend(a, k=3)] for a in m.article_ids} for v, m in models.items()}
    model_dir = tmp_path / "m"
    models[0].save(model_dir)
    holder = rec.ModelHolder(model_dir)
    expected = {holder.version: versions[0]}
    errors: list[BaseException] = []
    seen: list[tuple[str, str, list[str]]] = []
    stop = threading.Event()

    def reader(seed: int) -> None:
        ids = sorted(versions[0])
        i = seed
        while not stop.is_set() or i < seed + 50:
            try:
                article_id = ids[i % len(ids)]
                answer = holder.recommend(article_id, k=3)
                seen.append((answer.version, article_id, [r.article_id for r in answer]))
                time.sleep(0.001)  # leave the reloading thread its share of the interpreter
            except BaseException as exc:
                errors.append(exc)
                return
            i += 1

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for round_ in range(6):
        variant = (round_ + 1) % 2
        models[variant].save(model_dir)
        holder.reload()
        expected[holder.version] = versions[variant]
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(seen) >= 16 * 50
    assert len({version for version, _, _ in seen}) >= 2
    for version, article_id, items in seen:  # every answer is exactly one version's list
        assert items == expected[version][article_id]


# --------------------------------------------------------------------------- JSON, unknown ids, watching


def test_answers_and_items_have_one_json_form(tmp_path):
    import json

    model = rec.Recommender(min_df=1, max_df=1.0, latent_components=0).fit(
        corpus(0).assign(
            published=["2024-05-01 09:00", "2024-05-02T10:30:00+02:00", None, "2024-05-03", "", "2024-05-04"]
        )
    )
    model.save(tmp_path / "m")
    holder = rec.ModelHolder(tmp_path / "m")
    answer = holder.recommend("f1", k=3)
    assert answer[0] == answer.items[0] and answer[-1] == answer.items[-1]
    document = json.loads(json.dumps(answer.to_dict()))  # JSON-safe as it is
    assert document["version"] == holder.version and document["fallback"] is False
    items = document["items"]
    assert [i["article_id"] for i in items] == [r.article_id for r in answer]
    dates = {i["article_id"]: i["published"] for i in items}
    assert dates.get("f2", "2024-05-02T08:30:00Z") == "2024-05-02T08:30:00Z"  # UTC, seconds, Z
    assert all(d is None or (d.endswith("Z") and len(d) == 20) for d in dates.values())
    for item, original in zip(items, answer, strict=True):
        parts = item["similarity"] + sum(v for name, v in item.items() if name.endswith("_part"))
        assert abs(parts - item["score"]) < 1e-9 and item["score"] == original.score


def test_related_answers_the_popular_list_for_an_unknown_id(tmp_path):
    fitted(0).save(tmp_path / "m")
    holder = rec.ModelHolder(tmp_path / "m")
    answer = holder.related("published-after-the-build", k=3)
    assert answer.fallback is True and len(answer) == 3
    assert [r.article_id for r in answer] == [r.article_id for r in holder.popular(k=3)]
    known = holder.related("f1", k=2)
    assert known.fallback is False and [r.article_id for r in known] == [
        r.article_id for r in holder.recommend("f1", k=2)
    ]
    with pytest.raises(ValueError, match="k"):
        holder.related("unknown", k=0)


def test_recommend_for_text_without_any_text_is_an_error():
    model = fitted(0)
    for empty in ({}, {"title": ""}, {"title": "  ", "body": "\n"}):
        with pytest.raises(ValueError, match="needs some text"):
            model.recommend_for_text(**empty)
    assert model.recommend_for_text(title="cup final goal", k=2)


def test_a_watching_holder_switches_by_itself_and_skips_a_broken_version(tmp_path):
    import json

    fitted(0).save(tmp_path / "m")
    with rec.ModelHolder(tmp_path / "m", watch=True, interval=0.05) as holder:
        first = holder.version
        fitted(1).save(tmp_path / "m")
        deadline = time.monotonic() + 30
        while holder.version == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert holder.version != first
        second = holder.version
        fitted(0).save(tmp_path / "m")  # a new version, then broken behind a resealed manifest
        version = tmp_path / "m" / (tmp_path / "m" / "CURRENT").read_text().strip()
        manifest = json.loads((version / "manifest.json").read_text())
        manifest["popularity_scale"] = "not a number"
        (version / "manifest.json").write_text(json.dumps(manifest))
        while holder.last_error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "ModelFormatError" in holder.last_error
        assert holder.version == second and len(holder.recommend("f1", k=2)) == 2  # the old one serves
    assert not holder._watcher.is_alive()


def test_watch_interval_must_be_positive(tmp_path):
    fitted(0).save(tmp_path / "m")
    with pytest.raises(ValueError, match="interval"):
        rec.ModelHolder(tmp_path / "m", watch=True, interval=0)


def test_an_editorial_version_links_its_arrays_and_is_picked_up_without_a_reload(tmp_path):
    fitted(0).save(tmp_path / "m")
    holder = rec.ModelHolder(tmp_path / "m")
    before = holder.model
    edited = rec.load_model(tmp_path / "m")
    edited.pin("f1", ["e2"])
    edited.save(tmp_path / "m")
    first, second = tmp_path / "m" / "version-000001", tmp_path / "m" / "version-000002"
    for name in ("vectors.data.npy", "neighbours.npy", "similarities.npy", "signatures.values.npy"):
        assert (first / name).stat().st_ino == (second / name).stat().st_ino, name  # linked, not copied
    assert (first / "editorial.json").stat().st_ino != (second / "editorial.json").stat().st_ino
    assert rec.load_model(tmp_path / "m").pins == {"f1": ["e2"]}  # the linked version loads and verifies
    assert holder.reload() is True
    assert holder.model._state.index is before._state.index  # the arrays were not read again
    assert holder.model.version == rec.load_model(tmp_path / "m").version
    assert holder.recommend("f1", k=3)[0].article_id == "e2"
    assert [r.article_id for r in holder.recommend("f2", k=3)] == [r.article_id for r in before.recommend("f2", k=3)]
    for action in (lambda m: m.block(["f2"]), lambda m: m.ban("e1", "e2"), lambda m: m.unblock(["f2"])):
        edited = rec.load_model(tmp_path / "m")
        action(edited)
        edited.save(tmp_path / "m")
        holder.reload()
        fresh = rec.load_model(tmp_path / "m")
        every = fresh.article_ids
        # the carried list cache (only the reachable lists ranked again) gives what a fresh load gives
        assert {a: holder.recommend(a, k=5).to_dict()["items"] for a in every} == {
            a: [r.to_dict() for r in fresh.recommend(a, k=5)] for a in every
        }
    assert holder.model._state.index is before._state.index
    fitted(1).save(tmp_path / "m")  # a rebuild: a full load
    holder.reload()
    assert holder.model._state.index is not before._state.index
    assert holder.model.pins == {"f1": ["e2"]}  # carried over by the rebuild


def test_a_watcher_told_to_serve_the_newest_valid_version_loads_it_once(tmp_path, monkeypatch):
    import recommender._serving as serving

    fitted(0).save(tmp_path / "m")
    fitted(1).save(tmp_path / "m")
    (tmp_path / "m" / "version-000002" / "groups.npy").write_bytes(b"broken")
    loads = []
    real = serving.load_model
    monkeypatch.setattr(serving, "load_model", lambda *a, **k: loads.append(a) or real(*a, **k))
    with rec.ModelHolder(tmp_path / "m", watch=True, interval=0.02, newest_valid=True) as holder:
        time.sleep(0.6)
        assert holder.model.version_name == "version-000001"
        assert len(loads) == 2  # the broken one and the valid one, once; not again every interval
