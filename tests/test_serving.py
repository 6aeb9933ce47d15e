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
