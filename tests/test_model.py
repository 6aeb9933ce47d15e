"""Recommender: fit, recommend, recommend_frame, popular, on corpora checkable by eye."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.base import clone
from strategies import article_tables

import recommender as rec


def small(**params) -> rec.Recommender:
    """Tiny corpora lose most terms to min_df=2/max_df=0.5; keep them all.

    The latent blend is off unless asked for: these tests reason about shared words.
    """
    params.setdefault("latent_components", 0)
    return rec.Recommender(min_df=1, max_df=1.0, **params)


def test_lists_stay_on_topic(newsroom):
    model = small(popularity_weight=0).fit(newsroom)
    for article_id, topic in [("foot-1", "foot"), ("vote-2", "vote")]:
        top2 = [r.article_id for r in model.recommend(article_id, k=2)]
        assert all(a.startswith(topic) for a in top2), top2


def test_never_self_and_never_an_exact_copy(newsroom):
    model = small().fit(newsroom)
    ids = [r.article_id for r in model.recommend("wire-a", k=7)]
    assert "wire-a" not in ids
    assert "wire-b" not in ids
    assert model.copy_groups_[6] == model.copy_groups_[7] >= 0
    assert (model.copy_groups_[:6] == -1).all()


def test_recommendation_carries_display_fields(newsroom):
    model = small().fit(newsroom.assign(url=[f"https://news.example/{i}" for i in newsroom["article_id"]]))
    first = model.recommend("foot-1", k=1)[0]
    row = newsroom.set_index("article_id").loc[first.article_id]
    assert first.title == row["title"]
    assert first.url == f"https://news.example/{first.article_id}"
    assert first.category == row["category"]
    assert first.published == pd.Timestamp(row["published"], tz="UTC").to_pydatetime()
    assert first.rank == 1
    assert 0 < first.similarity <= 1
    with pytest.raises(AttributeError):
        first.score = 2.0  # frozen


def test_exclude_is_honoured(newsroom):
    model = small(popularity_weight=0).fit(newsroom)
    best = model.recommend("foot-1", k=1)[0].article_id
    ids = [r.article_id for r in model.recommend("foot-1", k=5, exclude=[best, "not-an-id"])]
    assert best not in ids
    assert ids  # the rest of the pool is still there


def test_unknown_id_raises_keyerror_with_advice(newsroom):
    model = small().fit(newsroom)
    with pytest.raises(rec.UnknownArticleError) as info:
        model.recommend("nope")
    assert isinstance(info.value, KeyError)
    assert "'nope'" in str(info.value) and "8 articles" in str(info.value) and "popular()" in str(info.value)


@pytest.mark.parametrize("k", [0, -1, 1.5, "3", True])
def test_bad_k_is_a_clear_error(newsroom, k):
    model = small().fit(newsroom)
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        model.recommend("foot-1", k=k)


def test_k_above_pool_size_says_how_to_fix(newsroom):
    model = small(pool_size=3).fit(newsroom)
    with pytest.raises(ValueError, match="pool_size >= 4"):
        model.recommend("foot-1", k=4)


def test_k_larger_than_corpus_returns_what_exists(newsroom):
    model = small().fit(newsroom)
    items = model.recommend("foot-1", k=20)
    assert len(items) <= len(newsroom) - 1
    assert [r.rank for r in items] == list(range(1, len(items) + 1))


def test_not_fitted_error_names_the_fix():
    with pytest.raises(rec.NotFittedError, match=r"fit\(articles\)"):
        rec.Recommender().recommend("a")
    with pytest.raises(rec.NotFittedError):
        rec.Recommender().recommend_frame()


def test_fit_rejects_non_frames_and_empty_tables():
    with pytest.raises(TypeError, match="load_articles"):
        rec.Recommender().fit("articles.csv")
    with pytest.raises(rec.SchemaError, match="No valid articles"):
        rec.Recommender().fit(pd.DataFrame({"article_id": ["a"], "body": [""]}))


@pytest.mark.parametrize(
    "params",
    [
        {"popularity_weight": -0.1},
        {"popularity_weight": float("nan")},
        {"pool_size": 0},
        {"max_df": 0.0},
        {"min_df": 0},
    ],
)
def test_bad_parameters_are_named(newsroom, params):
    name = next(iter(params))
    with pytest.raises(ValueError, match=name):
        rec.Recommender(**params).fit(newsroom)


def test_popularity_reorders_similar_articles_only():
    # "a" is equally close to "b" and "c"; "c" is far more viewed. "z" shares nothing with "a" and is the most viewed.
    articles = pd.DataFrame(
        {
            "article_id": ["a", "b", "c", "z"],
            "title": ["harbour storm ferry", "harbour storm ferry", "harbour storm ferry", "cup final goal"],
            "body": ["wind rain coast", "wind coast", "rain coast", "striker keeper"],
            "views": [10, 10, 1_000_000, 10_000_000],
            "published": ["2024-01-01"] * 4,
        }
    )
    options = {"fallback": False, "duplicate_threshold": 0.99}
    content = small(popularity_weight=0, **options).fit(articles)
    first = content.recommend("a", k=3)
    assert [r.article_id for r in first] == ["b", "c"]  # equal similarity: tie broken by input order
    assert first[0].similarity == pytest.approx(first[1].similarity)
    blended = small(popularity_weight=0.5, **options).fit(articles)
    items = blended.recommend("a", k=3)
    assert [r.article_id for r in items] == ["c", "b"]  # popularity breaks the tie; "z" never enters
    assert items[0].score == pytest.approx(items[0].similarity * (1 + 0.5 * items[0].popularity), rel=1e-5)
    assert items[0].popularity > items[1].popularity


def test_reference_date_defaults_to_newest_article_and_is_used(newsroom):
    model = small().fit(newsroom)
    assert model.reference_date_ == pd.Timestamp("2024-05-04", tz="UTC")
    later = small(reference_date="2025-05-04").fit(newsroom)
    assert later.reference_date_ == pd.Timestamp("2025-05-04", tz="UTC")
    # At the newest date vote-1 (800 views in 2 days) beats foot-1 (1,000 views in 3 days) per day;
    # a year later both are ~366 days old and the larger total wins.
    row = {a: i for i, a in enumerate(newsroom["article_id"])}
    assert model.popularity_[row["vote-1"]] > model.popularity_[row["foot-1"]]
    assert later.popularity_[row["vote-1"]] < later.popularity_[row["foot-1"]]


def test_no_views_means_no_popularity(newsroom):
    model = small(popularity_weight=1.0, category_boost=0).fit(newsroom.drop(columns=["views"]))
    assert (model.popularity_ == 0).all()
    for item in model.recommend("vote-1", k=3):
        assert item.score == pytest.approx(item.similarity)


def test_popular_orders_by_views_per_day(newsroom):
    model = small().fit(newsroom)
    ranked = [r.article_id for r in model.popular(k=3)]
    assert ranked[0] == "vote-2"  # 20,000 views in two days
    assert next(r.article_id for r in model.popular(k=2, exclude=["vote-2"])) == ranked[1]
    assert all(r.similarity == 0 and r.score == r.popularity for r in model.popular(k=8))


def test_popular_without_views_is_newest_first(newsroom):
    model = small().fit(newsroom.drop(columns=["views"]))
    dates = [r.published for r in model.popular(k=8)]
    assert dates == sorted(dates, reverse=True)


def test_recommend_frame_columns_and_ranks(newsroom):
    model = small().fit(newsroom)
    frame = model.recommend_frame(k=3)
    assert list(frame.columns) == [
        "article_id", "rank", "recommended_id", "score", "similarity", "popularity",
        "title", "url", "published", "category", "reason",
    ]  # fmt: skip
    assert frame.groupby("article_id")["rank"].apply(lambda r: list(r) == list(range(1, len(r) + 1))).all()
    assert set(frame["article_id"]) <= set(newsroom["article_id"])
    only = model.recommend_frame(k=2, article_ids=["vote-1"])
    assert set(only["article_id"]) == {"vote-1"}


def test_recommend_frame_in_batches_on_threads_equals_one_batch(newsroom):
    model = small(n_jobs=3).fit(newsroom)
    whole = model.recommend_frame(k=3, exclude=["vote-1"], batch_size=len(newsroom))
    hidden = (a for a in ["vote-1"])  # a generator: read once, yet every batch must skip it
    batches = model.recommend_frame(k=3, exclude=hidden, batch_size=2)  # several batches, three threads
    pd.testing.assert_frame_equal(batches, whole)
    assert "vote-1" not in set(batches["recommended_id"]) and len(batches) > 3


def test_same_input_same_output(newsroom):
    first = small().fit(newsroom).recommend_frame(k=5)
    second = small().fit(newsroom.copy()).recommend_frame(k=5)
    pd.testing.assert_frame_equal(first, second)


def test_parallel_fit_equals_serial(newsroom):
    serial = small(n_jobs=1, latent_components=20).fit(newsroom)
    parallel = small(n_jobs=2, latent_components=20).fit(newsroom)
    np.testing.assert_array_equal(serial.neighbours_, parallel.neighbours_)


def test_estimator_contract(newsroom):
    model = rec.Recommender(popularity_weight=0.3, pool_size=7)
    assert model.get_params()["popularity_weight"] == 0.3
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert model.fit(newsroom) is model
    assert "popularity_weight=0.3" in repr(model)
    assert not hasattr(clone(model), "neighbours_")


def test_only_stop_words_gives_no_similar_articles_only_fallback():
    articles = pd.DataFrame({"article_id": ["a", "b"], "title": ["the and of", "it is the"]})
    assert rec.Recommender(min_df=1, max_df=1.0, fallback=False).fit(articles).recommend("a") == []
    model = rec.Recommender(min_df=1, max_df=1.0).fit(articles)
    assert [(r.article_id, r.reason, r.score) for r in model.recommend("a")] == [("b", "fallback", 0.0)]
    assert len(model.popular(2)) == 2


# --------------------------------------------------------------------------- properties


@given(table=article_tables(), k=st.integers(min_value=1, max_value=8), data=st.data())
def test_list_invariants(table, k, data):
    model = small(popularity_weight=data.draw(st.sampled_from([0.0, 0.1, 1.0]))).fit(table)
    ids = table["article_id"].tolist()
    source = data.draw(st.sampled_from(ids))
    exclude = data.draw(st.lists(st.sampled_from(ids), max_size=3))
    items = model.recommend(source, k=k, exclude=exclude)
    got = [r.article_id for r in items]
    assert source not in got  # no self
    assert len(got) <= k  # at most k
    assert len(set(got)) == len(got)
    assert not set(got) & set(exclude)  # exclusions honoured
    reasons = [r.reason for r in items]
    assert reasons == sorted(reasons, key=["similar", "fallback"].index)  # similar items first, then fallback
    scores = [r.score for r in items]
    assert scores == sorted(scores, reverse=True)  # sorted by score
    assert all(r.similarity > 0 for r in items if r.reason == "similar")
    # fallback fills every list as far as there are other stories (duplicate groups) left to show
    group_of = dict(zip(ids, model.groups_, strict=True))
    others = {group_of[a] for a in ids} - {group_of[source]} - {group_of[a] for a in exclude}
    assert len(items) == min(k, len(others))
    assert len({group_of[a] for a in got}) == len(got)  # never two members of one duplicate group
    # batch equals single
    frame = model.recommend_frame(k=k, exclude=exclude)
    mine = frame[frame["article_id"] == source]
    assert mine["recommended_id"].tolist() == got
    np.testing.assert_allclose(mine["score"].to_numpy(), scores, rtol=1e-6)


@given(table=article_tables(min_size=2, max_size=15))
def test_same_input_same_lists_property(table):
    first = small().fit(table).recommend_frame(k=5)
    second = small().fit(table.copy()).recommend_frame(k=5)
    pd.testing.assert_frame_equal(first, second)


@given(table=article_tables(min_size=2, max_size=20), latent=st.sampled_from([0, 20]))
def test_pool_is_the_exact_top_by_cosine(table, latent):
    model = small(pool_size=5, latent_components=latent).fit(table)
    dense = (model.vectors_ @ model.vectors_.T).toarray()
    for row in range(dense.shape[0]):
        expected = dense[row].copy()
        if model.copy_groups_[row] >= 0:
            expected[model.copy_groups_ == model.copy_groups_[row]] = -np.inf
        expected[row] = -np.inf
        pool = model.neighbours_[row]
        got = model.similarities_[row][pool >= 0]
        best = np.sort(expected[expected > 0])[::-1][: len(got)]
        # values within float noise of 0 may fall either side of the "> 0" cut
        clear = min(np.sum(got > 1e-5), np.sum(best > 1e-5))
        np.testing.assert_allclose(got[:clear], best[:clear], rtol=1e-5, atol=1e-6)
        assert abs(len(got) - np.sum(best > 0)) <= np.sum(np.abs(expected[np.isfinite(expected)]) < 1e-5)


@given(table=article_tables(min_size=2, max_size=20), data=st.data())
def test_request_cache_gives_the_same_lists_as_the_full_path(table, data):
    model = small(pool_size=12, diversity=data.draw(st.sampled_from([0.0, 0.4]))).fit(table)
    ids = table["article_id"].tolist()
    source = data.draw(st.sampled_from(ids))
    exclude = data.draw(st.lists(st.sampled_from(ids), max_size=4))
    k = data.draw(st.integers(1, 10))
    fast = model.recommend(source, k=k, exclude=exclude)  # served from the cache when it can be
    full = model.recommend(source, k=k, exclude=exclude, popularity_weight=model.popularity_weight)  # never cached
    assert fast == full
    model.block([ids[0]])  # any change drops the cache
    assert model.recommend(source, k=k) == model.recommend(source, k=k, diversity=model.diversity)


def test_progress_bars_go_to_stderr_and_change_nothing(newsroom, capsys):
    quiet = small().fit(newsroom, progress=False).recommend_frame(k=3, progress=False)
    assert capsys.readouterr().err == ""
    shown = small().fit(newsroom, progress=True).recommend_frame(k=3, progress=True)
    err = capsys.readouterr().err
    assert "neighbours" in err and "lists" in err
    pd.testing.assert_frame_equal(quiet, shown)
