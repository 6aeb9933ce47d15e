"""One model, one state: states replaced not edited, editorial state that survives rebuilds, frozen fit
parameters, one version identity, and the names that moved."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import recommender as rec
from recommender import _updates
from recommender._cli import main


def articles() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "article_id": ["f1", "f2", "f3", "e1", "e2", "e3"],
            "title": ["Cup final goal", "Late goal wins the cup", "Striker scores in cup final",
                      "Election vote count begins", "Vote count in the election", "Ballots counted after election"],
            "body": ["football cup final goal", "late football goal cup", "striker football cup",
                     "election vote count ballots", "vote count election ballots", "ballots election count"],
            "published": ["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04", "2024-03-05", "2024-03-06"],
            "views": [100, 2000, 300, 40, 500, 60],
            "category": ["sport"] * 3 + ["politics"] * 3,
        }
    )  # fmt: skip


def fit(frame: pd.DataFrame | None = None, **params) -> rec.Recommender:
    params.setdefault("latent_components", 0)
    return rec.Recommender(min_df=1, max_df=1.0, **params).fit(articles() if frame is None else frame)


def ids(items) -> list[str]:
    return [r.article_id for r in items]


# --------------------------------------------------------------------------- replaced, not edited


def test_an_action_builds_the_next_state_and_leaves_the_old_one_whole():
    model = fit()
    old = model._state
    before = {a: ids(model.recommend(a, k=3)) for a in model.article_ids}
    model.block(["f2"])
    model.update_views({"f3": 10**6})
    model.add_articles(pd.DataFrame({"article_id": ["f4"], "title": ["Cup replay"], "body": ["cup final replay"]}))
    assert model._state is not old and model._state.generation == old.generation + 3
    assert old.editorial.blocked == frozenset() and len(old) == 6 and old.catalogue.popularity[2] != 1.0
    # a reader holding the old state gets the old lists, whole
    from recommender import _lists

    controls = model.controls()
    for article_id, listed in before.items():
        row = old.catalogue.row_of(article_id)
        ranked, reasons = _lists.rows_lists(old, np.array([row]), 3, controls, None)
        assert ids(_lists.items(old, ranked, reasons, None, False)[0]) == listed
    assert "f2" not in ids(model.recommend("f1", k=3))


def test_an_action_shares_the_parts_it_does_not_change():
    model = fit()
    old = model._state
    model.update_views({"f3": 10**6})
    views = model._state
    assert views.index is old.index and views.pools is old.pools and views.editorial is old.editorial
    assert views.catalogue.signatures is old.catalogue.signatures and views.catalogue.ids is old.catalogue.ids
    model.block(["f2"])
    blocked = model._state
    assert blocked.index is views.index and blocked.pools is views.pools
    assert (
        blocked.catalogue.table is views.catalogue.table and blocked.catalogue.popularity is views.catalogue.popularity
    )
    model.pin("f1", ["e1"])
    pinned = model._state
    assert pinned.catalogue is blocked.catalogue and pinned.index is blocked.index and pinned.pools is blocked.pools
    model.update_articles(pd.DataFrame({"article_id": ["e3"], "title": ["Ballots counted"], "body": ["ballots count"]}))
    edited = model._state
    assert edited.editorial is pinned.editorial and edited.index.vocabulary is pinned.index.vocabulary


@pytest.mark.parametrize("seed", range(6))
def test_replacing_vector_rows_equals_assigning_them(seed: int):
    import scipy.sparse as sp

    from recommender._index import replaced_vectors

    rng = np.random.default_rng(seed)
    n, width = int(rng.integers(1, 40)), int(rng.integers(1, 30))
    vectors = sp.random(n, width, density=rng.uniform(0, 0.5), format="csr", dtype=np.float32, random_state=seed)
    rows = rng.choice(n, size=int(rng.integers(0, n + 1)), replace=False)
    new = sp.random(
        rows.size, width, density=rng.uniform(0, 0.9), format="csr", dtype=np.float32, random_state=seed + 1
    )
    original = vectors.toarray()
    expected = vectors.tolil()
    expected[rows] = new
    got = replaced_vectors(vectors, rows, new)
    assert got.dtype == np.float32 and got.has_sorted_indices
    np.testing.assert_array_equal(got.toarray(), expected.toarray())
    np.testing.assert_array_equal(vectors.toarray(), original)  # the input is untouched
    with pytest.raises(ValueError):
        replaced_vectors(vectors, rows, sp.csr_matrix((rows.size + 1, width), dtype=np.float32))
    with pytest.raises(IndexError):
        replaced_vectors(vectors, np.array([n]), sp.csr_matrix((1, width), dtype=np.float32))


def test_the_lists_of_a_new_state_explain_only_what_is_asked_for():
    from recommender import _lists

    model = fit()
    model.block(["e3"])  # a new state: its list cache is built on the next request
    lazily = {a: model.recommend(a, k=3) for a in ["f1", "e1"]}
    cache = _lists._list_cache(model._state, model._own_controls())
    assert not cache.everything and set(cache.explained) == {model._state.catalogue.row_of(a) for a in lazily}
    assert any(item.shared_terms for items in lazily.values() for item in items)
    model.warm()  # every list's explanations at once
    assert cache.everything and model.recommend("f1", k=3, explain=False)[0].shared_terms == ()
    for article_id, items in lazily.items():
        assert model.recommend(article_id, k=3) == items


def test_blocking_again_reports_the_lists_that_hold_it_as_before():
    # a block that changes nothing still names the lists holding the article (never the id itself, nor unknown ids)
    model = fit()
    first = model.block(["f2"])
    assert model.block(["f2"]) == first and "f2" not in first
    assert model.unblock(["nowhere"]) == []


def test_the_request_cache_belongs_to_its_state():
    model = fit().warm()
    cached = ids(model.recommend("f1", k=2))
    state, changed = _updates.edit_blocks(model._state, model._state.editorial.block([cached[0]]), [cached[0]])
    assert "f1" in changed and state.memo == {}  # the next state starts with no cache
    model._state = state
    assert cached[0] not in ids(model.recommend("f1", k=2))


# --------------------------------------------------------------------------- editorial state across rebuilds


def test_a_rebuild_carries_the_editorial_state_forward(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    csv = tmp_path / "articles.csv"
    articles().to_csv(csv, index=False)
    out = tmp_path / "model"
    assert main(["build", str(csv), "--out", str(out)]) == 0
    capsys.readouterr()
    model = rec.load_model(out)
    model.block(["f2", "not-yet-published"])
    model.pin("f1", ["e1"])
    model.ban("e1", "e2")
    model.save(out)
    assert main(["build", str(csv), "--out", str(out)]) == 0  # the nightly rebuild
    printed = capsys.readouterr().out
    assert "Editorial state carried over from version-000002: 2 blocked, 1 pinned and 1 banned lists" in printed
    assert "1 blocked ids are not among the articles (kept blocked)" in printed
    rebuilt = rec.load_model(out)
    assert rebuilt.version_name == "version-000003"
    assert rebuilt.blocked == {"f2", "not-yet-published"}
    assert rebuilt.pins == {"f1": ["e1"]} and rebuilt.bans == {"e1": {"e2"}}
    assert "f2" not in ids(rebuilt.recommend("f3", k=5)) and ids(rebuilt.recommend("f1", k=1)) == ["e1"]
    assert main(["build", str(csv), "--out", str(out), "--reset-editorial"]) == 0
    assert "Editorial state: none (--reset-editorial)." in capsys.readouterr().out
    assert rec.load_model(out).blocked == set()


def test_pins_and_bans_of_articles_gone_are_dropped_and_reported(tmp_path: Path):
    model = fit()
    model.pin("f1", ["f3", "e1"])
    model.ban("e3", "e2")
    model.save(tmp_path / "m")
    fewer = fit(articles().iloc[[0, 1, 3, 4]])  # f3 and e3 are gone
    fewer.save(tmp_path / "m")
    carried = fewer.carried
    assert carried.source == "version-000001" and carried.pins_dropped == (("f1", "f3"),)
    assert carried.bans_dropped == (("e3", "e2"),)
    assert fewer.pins == {"f1": ["e1"]} and fewer.bans == {}
    assert rec.load_model(tmp_path / "m").pins == {"f1": ["e1"]}


def test_a_pin_made_while_a_build_ran_is_not_lost(tmp_path: Path):
    fit().save(tmp_path / "m")
    building = fit()  # a long build starts from the articles, with no editorial state
    editor = rec.load_model(tmp_path / "m")
    editor.pin("f1", ["e2"])
    editor.save(tmp_path / "m")  # the editor saves while the build runs
    building.save(tmp_path / "m")  # the build publishes: the editor's pin is read at that moment
    assert rec.load_model(tmp_path / "m").pins == {"f1": ["e2"]}


def test_a_loaded_model_saves_exactly_its_own_state(tmp_path: Path):
    model = fit()
    model.block(["f2"])
    model.save(tmp_path / "m")
    loaded = rec.load_model(tmp_path / "m")
    loaded.unblock(["f2"])
    loaded.save(tmp_path / "m")
    assert rec.load_model(tmp_path / "m").blocked == set()
    assert loaded.carried is None


# --------------------------------------------------------------------------- precompute and unsaved changes


def test_precompute_refuses_a_model_with_unsaved_changes(tmp_path: Path):
    model = fit()
    model.save(tmp_path / "m")
    assert not model.unsaved_changes
    model.block(["f2"])
    assert model.unsaved_changes
    with pytest.raises(ValueError, match=r"save\(path\) first"):
        model.precompute(tmp_path / "lists.csv", k=2, progress=False)
    model.save(tmp_path / "m")
    model.precompute(tmp_path / "lists.csv", k=2, progress=False)
    lists = pd.read_csv(tmp_path / "lists.csv", dtype=str)
    assert "f2" not in set(lists["recommended_id"])


# --------------------------------------------------------------------------- parameters frozen at fit


def test_text_parameters_and_fallback_days_are_frozen_at_fit():
    model = fit(fallback_days=1.0)
    draft = model.recommend_for_text(title="Cup final goal", body="late goal", k=3)
    popular = ids(model.popular(k=6))
    model.set_params(title_weight=0.0, stop_words=["cup", "goal"], fallback_days=1000.0, text_limit=3)
    assert model.recommend_for_text(title="Cup final goal", body="late goal", k=3) == draft
    assert ids(model.popular(k=6)) == popular
    model.set_params(popularity_weight=0.0)  # a ranking control: at once
    assert all(r.popularity_part == 0 for r in model.recommend("f1", k=3))
    model.set_params(popularity_weight=1.0)
    assert any(r.popularity_part > 0 for r in model.recommend("f1", k=3))
    refit = model.fit(articles())  # the next fit takes them all
    assert refit.recommend_for_text(title="Cup final goal", body="late goal", k=3) != draft


# --------------------------------------------------------------------------- one version identity


def test_one_version_identity_everywhere(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    model = fit()
    assert model.version is None and model.path is None
    model.save(tmp_path / "m")
    holder = rec.ModelHolder(tmp_path / "m")
    answer = holder.recommend("f1", k=2)
    manifest = rec.read_manifest(tmp_path / "m")
    assert answer.version == model.version == rec.load_model(tmp_path / "m").version == manifest["digest"]
    result = model.precompute(tmp_path / "lists", k=2, progress=False)
    ledger = json.loads((tmp_path / "lists" / "_parts.json").read_text(encoding="utf-8"))
    assert ledger["model"]["manifest_sha256"] == model.version and result.model_version == model.version_name
    assert main(["info", str(tmp_path / "m")]) == 0
    assert f"Identity:         {model.version}" in capsys.readouterr().out


# --------------------------------------------------------------------------- names that moved


def test_the_old_names_still_answer_with_a_warning(tmp_path: Path):
    model = fit()
    model.block(["f2"])
    model.save(tmp_path / "m")
    for old, new in (("blocked_", "blocked"), ("pins_", "pins"), ("bans_", "bans"), ("path_", "path"),
                     ("version_", "version_name")):  # fmt: skip
        with pytest.warns(DeprecationWarning, match=f"Recommender.{old} is deprecated.*Recommender.{new}"):
            assert getattr(model, old) == getattr(model, new)


def test_fitted_attributes_are_fitted_state():
    model = rec.Recommender()
    assert not hasattr(model, "neighbours_") and not hasattr(model, "articles_")
    with pytest.raises(rec.NotFittedError, match="not fitted yet"):
        model.recommend("f1")
    fitted = fit()
    assert fitted.neighbours_.shape == (6, 50) and len(fitted.articles_) == 6
    assert not any(name.endswith("_") and not name.startswith("_") for name in vars(fitted))  # params only
