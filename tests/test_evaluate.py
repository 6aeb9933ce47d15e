"""Evaluation: hand-computed metrics, a planted co-reading signal, and a split that leaks nothing."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import recommender as rec
from recommender._evaluate import BLIND, _label_metrics, co_reading_pairs, gini

T = pd.Timestamp("2024-01-10", tz="UTC")


def test_label_metrics_by_hand():
    labels = np.array(["a", "a", "a", "b", "b"], dtype=object)
    rows = np.array([0, 3])
    lists = np.array([[1, 3, -1], [4, 0, 1]])  # row 0: hit, miss, empty; row 3: hit, miss, miss
    got = _label_metrics(lists, rows, labels, k=3)
    assert got["precision"] == pytest.approx((1 / 3 + 1 / 3) / 2)
    # row 0: DCG = 1/log2(2) = 1; 2 other "a" articles -> IDCG = 1 + 1/log2(3)
    # row 3: DCG = 1; 1 other "b" article -> IDCG = 1
    assert got["ndcg"] == pytest.approx((1 / (1 + 1 / np.log2(3)) + 1.0) / 2)


def test_gini_by_hand():
    assert gini(np.array([1, 1, 1, 1])) == pytest.approx(0.0)
    assert gini(np.array([0, 0, 0, 4])) == pytest.approx(0.75)
    assert gini(np.array([0, 0])) == 0.0


def test_co_reading_pairs_by_hand():
    log = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u1", "u2", "u2", "u3"],
            "article_id": ["a", "b", "c", "d", "a", "e", "a"],
            "timestamp": [
                "2024-01-09 20:00",  # u1 reads a before T
                "2024-01-10 08:00",  # ... then b after T, within a day of a
                "2024-01-12 08:00",  # ... c after T but too late
                "2024-01-09 22:00",  # ... d before T: history, never ground truth
                None,  # u2 read a before the log began
                "2024-01-10 01:00",  # ... and e after T
                "2024-01-10 02:00",  # u3 reads a only after T: no query
            ],
        }
    )
    pairs = co_reading_pairs(log, T, pd.Timedelta("1D"))
    assert pairs.values.tolist() == [["u1", "a", "b"], ["u1", "d", "b"], ["u2", "a", "e"]]
    assert co_reading_pairs(log, T, pd.Timedelta("1D"), catalogue=["a", "b", "d"]).values.tolist() == [
        ["u1", "a", "b"],
        ["u1", "d", "b"],
    ]


def test_mind_conversion():
    behaviors = pd.DataFrame(
        {
            "impression_id": ["1", "2"],
            "user_id": ["U1", "U2"],
            "time": ["11/12/2019 2:14:46 PM", "11/13/2019 5:53:12 AM"],
            "history": ["N1 N2", ""],
            "impressions": ["N3-1 N4-0", "N5-0 N6-1 N7-1"],
        }
    )
    log = rec.interactions_from_mind(behaviors)
    assert log[log["timestamp"].isna()]["article_id"].tolist() == ["N1", "N2"]
    clicked = log[log["timestamp"].notna()]
    assert clicked["article_id"].tolist() == ["N3", "N6", "N7"]
    assert clicked["timestamp"].iloc[0] == pd.Timestamp("2019-11-12 14:14:46", tz="UTC")


def corpus(n_topics: int = 6, per_topic: int = 5) -> pd.DataFrame:
    words = ["storm harbour ferry", "cup final goal", "election ballot vote", "bank rates inflation",
             "river flood bridge", "oil price export", "court judge trial", "school exam pupils"]  # fmt: skip
    rows = []
    for t in range(n_topics):
        for i in range(per_topic):
            rows.append(
                {
                    "article_id": f"t{t}-{i}",
                    "title": f"{words[t]} report {i}",
                    # six words of its own each, so that no two articles are near-copies (one story)
                    "body": f"{words[t]} " + " ".join(f"w{t}x{i}x{j}" for j in range(6)),
                    "category": f"topic{t}",
                    "published": pd.Timestamp("2024-01-01") + pd.Timedelta(days=i),
                }
            )
    return pd.DataFrame(rows)


def planted_log(articles: pd.DataFrame, same_topic: bool, seed: int = 0) -> pd.DataFrame:
    """Users read an article before T and another one after it: of the same topic, or at random."""
    rng = np.random.default_rng(seed)
    ids = articles["article_id"].tolist()
    topic = {a: a.split("-")[0] for a in ids}
    rows = []
    for user in range(400):
        first = ids[rng.integers(len(ids))]
        pool = [a for a in ids if a != first and (topic[a] == topic[first] or not same_topic)]
        second = pool[rng.integers(len(pool))]
        start = T - pd.Timedelta(hours=int(rng.integers(1, 12)))
        rows.append((f"u{user}", first, start))
        rows.append((f"u{user}", second, T + pd.Timedelta(hours=int(rng.integers(0, 6)))))
    return pd.DataFrame(rows, columns=["user_id", "article_id", "timestamp"])


def table(result: pd.DataFrame) -> pd.DataFrame:
    return result.pivot(index="method", columns="metric", values="value")


def test_planted_co_reading_signal_is_detected():
    articles = corpus()
    params = {"min_df": 1, "max_df": 1.0, "latent_components": 0, "category_boost": 0.0}
    planted = table(rec.evaluate(articles, params, interactions=planted_log(articles, True), split_time=T))
    assert planted.loc["content-only", "hit_rate"] > planted.loc["random", "hit_rate"] + 0.3
    assert planted.loc["model", "recall"] > 2 * planted.loc["most-popular", "recall"]
    noise = table(rec.evaluate(articles, params, interactions=planted_log(articles, False), split_time=T))
    assert noise.loc["content-only", "hit_rate"] < planted.loc["content-only", "hit_rate"] - 0.3
    assert planted.loc["model", "pairs"] == 400


def test_nothing_after_the_split_reaches_the_recommenders():
    articles = corpus()
    log = planted_log(articles, True)
    flood = pd.DataFrame(
        {"user_id": [f"x{i}" for i in range(500)], "article_id": "t0-0", "timestamp": T + pd.Timedelta("1h")}
    )
    params = {"min_df": 1, "max_df": 1.0, "latent_components": 0, "popularity_weight": 1.0, "category_boost": 0.0}
    base = rec.evaluate(articles, params, interactions=log, split_time=T)
    flooded = rec.evaluate(articles, params, interactions=pd.concat([log, flood]), split_time=T)
    # 500 reads after T change no list: popularity only counts reads before T
    for method in ("most-popular", "model"):
        for metric in ("coverage", "popularity_gini", "intra_list_similarity"):
            mine = base[(base["method"] == method) & (base["metric"] == metric)]["value"].item()
            other = flooded[(flooded["method"] == method) & (flooded["metric"] == metric)]["value"].item()
            assert mine == pytest.approx(other)


def test_label_agreement_and_health_rows():
    articles = corpus().assign(views=100.0)
    result = rec.evaluate(articles, {"min_df": 1, "max_df": 1.0, "latent_components": 0, "category_boost": 0}, k=3)
    wide = table(result)
    assert set(wide.index) == {"random", "most-popular", "content-only", "model"}
    assert {"precision", "ndcg", "coverage", "intra_list_similarity", "duplicate_rate", "popularity_gini",
            "median_age_gap_days"} <= set(wide.columns)  # fmt: skip
    assert wide.loc["content-only", "precision"] == pytest.approx(1.0)  # every topic has 4 same-topic neighbours
    assert wide.loc["random", "precision"] < 0.5
    assert wide.loc["most-popular", "coverage"] < wide.loc["content-only", "coverage"]
    assert (result["n"] == len(articles)).all() and (result["note"] == "").all()


def test_most_popular_without_views_is_marked_not_measured():
    result = rec.evaluate(corpus(), {"min_df": 1, "max_df": 1.0, "category_boost": 0}, k=3)
    popular = result[result["method"] == "most-popular"]
    assert popular["value"].isna().all() and popular["note"].str.contains("no article has views").all()
    others = result[result["method"] != "most-popular"]
    assert others["value"].notna().any() and (others["note"] == "").all()


def crossed() -> pd.DataFrame:
    """Two sections whose articles share words across the sections: a category boost changes the lists."""
    rows = []
    for i in range(6):
        for section, topic in (("sport", "stadium"), ("money", "budget")):
            other = "budget" if topic == "stadium" else "stadium"
            words = f"{topic} {other} city council plan vote" if i % 2 else f"{topic} {topic} city council plan"
            rows.append(
                {"article_id": f"{section}-{i}", "title": words, "body": f"{words} w{section}{i}", "section": section}
            )
    return pd.DataFrame(rows)


def test_a_label_the_ranking_uses_is_reported_with_that_signal_off():
    articles = crossed()
    params = {"min_df": 1, "max_df": 1.0, "latent_components": 0, "category_boost": 1.0, "fallback": False}
    with pytest.warns(rec.EvaluationWarning, match=r"'section' is a signal the ranking uses \(category_boost=1.0\)"):
        result = rec.evaluate(articles, params, k=3, labels="section")
    wide = table(result)
    assert BLIND in wide.index
    # the blind row is the same model with the boost off, computed here independently
    blind = rec.Recommender(**{**params, "category_boost": 0.0}).fit(articles)
    lists = blind.recommend_frame(k=3)
    section = dict(zip(articles["article_id"], articles["section"], strict=True))
    agree = lists["recommended_id"].map(section) == lists["article_id"].map(section)
    assert wide.loc[BLIND, "precision"] == pytest.approx(agree.sum() / (3 * len(articles)))
    assert wide.loc["model", "precision"] > wide.loc[BLIND, "precision"]


def test_a_label_the_ranking_does_not_use_gives_no_warning():
    articles = crossed().assign(desk=lambda f: np.where(f.index % 3 == 0, "night", "day"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = rec.evaluate(articles, {"min_df": 1, "max_df": 1.0, "category_boost": 1.0}, k=3, labels="desk")
        rec.evaluate(articles, {"min_df": 1, "max_df": 1.0, "category_boost": 0.0}, k=3, labels="section")
    assert BLIND not in set(result["method"])
    tagged = crossed().assign(keywords=lambda f: f["section"])
    with pytest.warns(rec.EvaluationWarning, match="tag_boost=0.05"):
        rec.evaluate(tagged, {"min_df": 1, "max_df": 1.0, "category_boost": 0.0}, k=3, labels="keywords")


def test_too_few_pairs_warn():
    articles = corpus()
    log = planted_log(articles, True).head(20)
    with pytest.warns(rec.EvaluationWarning, match="too noisy"):
        rec.evaluate(articles, {"min_df": 1, "max_df": 1.0, "category_boost": 0}, interactions=log, split_time=T)


def test_evaluate_leaves_a_given_model_untouched():
    model = rec.Recommender(min_df=1, max_df=1.0)
    rec.evaluate(corpus(), model, k=2, labels=None)
    assert not hasattr(model, "neighbours_")


def test_sweep_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    articles = corpus()
    results = rec.sweep(
        articles,
        {"popularity_weight": [0.0, 0.5], "half_life_days": [None, 2.0]},
        base={"min_df": 1, "max_df": 1.0},
        k=3,
    )
    assert len(results) == 4 and {"precision", "popularity_gini", "median_age_gap_days"} <= set(results.columns)
    fresh = results[results["half_life_days"].notna()]["median_age_gap_days"]
    stale = results[results["half_life_days"].isna()]["median_age_gap_days"]
    assert fresh.max() <= stale.min()  # freshness brings neighbours closer in time
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        figure = rec.plot_sweep(results, path=tmp_path / "sweep.png")
    assert (tmp_path / "sweep.png").stat().st_size > 1000
    assert figure is not None
    with pytest.raises(ValueError, match="Unknown parameters"):
        rec.sweep(articles, {"popularity_wieght": [0]})


def test_cli_evaluate(tmp_path, capsys):
    from recommender._cli import main

    path = tmp_path / "articles.csv"
    corpus().to_csv(path, index=False)
    log_path = tmp_path / "log.csv"
    planted_log(corpus(), True).to_csv(log_path, index=False)
    out = tmp_path / "result.csv"
    code = main(
        ["evaluate", str(path), "--interactions", str(log_path), "--split-time", str(T), "-k", "3", "--out", str(out)]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "content-only" in printed and "hit_rate" in printed and "precision" in printed
    # the label column is the model's category, which the default category_boost ranks by: said, and measured off
    assert "warning: The label column 'category' is a signal the ranking uses (category_boost=0.1)" in printed
    assert set(pd.read_csv(out)["method"]) == {"random", "most-popular", "content-only", "model", BLIND}


def test_hit_rate_and_recall_by_hand():
    from recommender._evaluate import _co_reading

    articles = pd.DataFrame({"article_id": ["a", "b", "c", "d"], "title": ["alpha", "beta", "gamma", "delta"]})
    model = rec.Recommender(min_df=1, max_df=1.0).fit(articles)
    rows = np.arange(4)
    lists = np.array([[1, 2], [0, -1], [3, 0], [0, 1]])  # a -> b, c; b -> a; c -> d, a; d -> a, b
    pairs = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u3"],
            "article_id": ["a", "a", "b", "c"],
            "target_id": ["b", "d", "c", "d"],
        }
    )
    # queries: (u1, a) truth {b, d}: 1 of 2 found; (u2, b) truth {c}: 0; (u3, c) truth {d}: 1 of 1
    got = _co_reading(model, lists, rows, pairs, k=2)
    assert got["hit_rate"] == pytest.approx(2 / 3)
    assert got["recall"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert got["queries"] == 3 and got["pairs"] == 4
