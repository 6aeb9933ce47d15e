"""Tests for recommender._cli: the ``recommender`` command line.

Commands run in-process through ``main([...])`` with pytest's ``capsys``; two
tests start a real process (``python -m recommender`` and the console script).
The inputs are invented: three football articles in a CSV file and three
election articles in a JSON Lines file (with alias column names), plus one bad
row of each kind the README lists as a rejection reason we can show here. The
ranking controls are tested on a second corpus, six storm articles of known
dates and sections beside six budget articles, where the effect of each flag can
be read off the dates and categories.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import recommender as rec
from recommender._cli import main
from recommender._store import FORMAT_VERSION

CSV = """\
article_id,title,body,published,views
f1,Cup final goal,The football cup final ended with a late goal from the striker.,2024-03-01,100
f2,Late goal wins the cup,A late football goal won the cup final for the home side.,2024-03-02,2000
f3,Striker scores in cup,The striker scored twice in the football cup match.,2024-03-03,300
f1,Copy of the cup final,A repeated id.,2024-03-01,5
x1,Negative views,Some text about nothing.,2024-03-01,-5
"""

JSONL = """\
{"id": "e1", "title": "Election vote count begins", "text": "Officials began the election vote count on the ballots.", "date": "2024-03-04", "views": 40}
{"id": "e2", "title": "Vote count in the election", "text": "The vote count of the election ballots continues overnight.", "date": "2024-03-05", "views": 500}
{"id": "e3", "title": "Ballots counted after election", "text": "All election ballots were counted by officials overnight.", "date": "2024-03-06", "views": 60}
{"id": "e4", "title": broken
"""

FOOTBALL = {"f1", "f2", "f3"}
ELECTION = {"e1", "e2", "e3"}
# Six different stories (none a copy of another, see test_build_groups_copies_only). Lists without the popular
# fallback hold exactly the other two articles of each topic.
DISTINCT = ["--no-fallback"]


@pytest.fixture
def inputs(tmp_path: Path) -> list[str]:
    csv = tmp_path / "football.csv"
    jsonl = tmp_path / "election.jsonl"
    csv.write_text(CSV, encoding="utf-8")
    jsonl.write_text(JSONL, encoding="utf-8")
    return [str(csv), str(jsonl)]


@pytest.fixture
def model_dir(tmp_path: Path, inputs: list[str], capsys: pytest.CaptureFixture[str]) -> Path:
    out = tmp_path / "model"
    assert main(["build", *inputs, "--out", str(out), *DISTINCT]) == 0
    capsys.readouterr()
    return out


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The single stderr line of a failed command (and nothing on stdout)."""
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert captured.out == ""
    assert lines[0].startswith("recommender: error: ")
    assert "Traceback" not in captured.err
    return lines[0]


# --------------------------------------------------------------------------- build


def test_build_reports_kept_and_rejected_rows(
    tmp_path: Path, inputs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model"
    assert main(["build", *inputs, "--out", str(out), *DISTINCT]) == 0
    stdout = capsys.readouterr().out

    assert "Kept 6 articles; rejected 3 rows." in stdout
    assert "Duplicate groups: 0 (0 articles)." in stdout
    per_reason = dict(line.split(maxsplit=1)[::-1] for line in stdout.splitlines() if line.startswith("   "))
    assert per_reason == {"duplicate article_id": "1", "views is negative": "1", "malformed JSON line": "1"}
    assert "reference date: 2024-03-06" in stdout
    assert "version-000001" in stdout

    rejected = pd.read_csv(out / "version-000001" / "rejected.csv", dtype=str, keep_default_na=False)
    assert sorted(zip(rejected["source"], rejected["row"], rejected["article_id"], strict=True)) == [
        ("election.jsonl", "4", ""),
        ("football.csv", "4", "f1"),
        ("football.csv", "5", "x1"),
    ]
    model = rec.load_model(out)
    assert set(model.article_ids) == FOOTBALL | ELECTION
    assert {r.article_id for r in model.recommend("f1", k=5)} == FOOTBALL - {"f1"}
    assert {r.article_id for r in model.recommend("e2", k=5)} == ELECTION - {"e2"}
    assert model.articles_.set_index("article_id").loc["f2", "title"] == "Late goal wins the cup"  # first f1 kept


def test_build_options_reach_the_model(tmp_path: Path, inputs: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model"
    args = ["--popularity-weight", "0", "--pool-size", "3", "--reference-date", "2024-04-01", "--n-jobs", "1"]
    assert main(["build", *inputs, "--out", str(out), *args]) == 0
    capsys.readouterr()
    model = rec.load_model(out)
    assert model.popularity_weight == 0
    assert model.neighbours_.shape == (6, 3)
    assert model.reference_date_ == pd.Timestamp("2024-04-01", tz="UTC")


STORY = (
    "The harbour authority closed the northern pier on Tuesday after divers found deep cracks in two of the concrete "
    "pillars that carry the ferry ramp. Ferries to the islands will use the southern quay until engineers have "
    "inspected the rest of the structure, which was built in 1974."
)


def test_build_groups_copies_only(tmp_path: Path, inputs: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # f1 and f2 (both about a late cup final goal), e1 and e2 (both about the vote count) are alike but distinct
    # stories; a syndicated copy of the pier story (new headline, byline, footer) is one story with it.
    out = tmp_path / "model"
    assert main(["build", *inputs, "--out", str(out)]) == 0
    assert "Duplicate groups: 0 (0 articles)." in capsys.readouterr().out
    assert main(["recommend", str(out), "f3", "--json", "--no-fallback"]) == 0
    assert {i["article_id"] for i in json.loads(capsys.readouterr().out)} == {"f1", "f2"}
    pier = tmp_path / "pier.jsonl"
    copy = f"By Staff Reporter\n{STORY}\nSign up for our newsletter for more news like this."
    pier.write_text(
        json.dumps({"id": "p1", "title": "Pier closed after cracks found", "text": STORY, "date": "2024-03-06"})
        + "\n"
        + json.dumps({"id": "p2", "title": "Ferry chaos as pier shuts", "text": copy, "date": "2024-03-07"})
        + "\n",
        encoding="utf-8",
    )
    assert main(["build", *inputs, str(pier), "--out", str(out)]) == 0
    assert "Duplicate groups: 1 (2 articles)." in capsys.readouterr().out
    assert main(["info", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["duplicate_groups"] == 1


def test_build_strict_fails_on_the_first_bad_row(
    tmp_path: Path, inputs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model"
    assert main(["build", *inputs, "--out", str(out), "--strict"]) == 1
    line = one_error_line(capsys)
    assert "Invalid article in" in line
    assert not out.exists()


def test_build_strict_names_the_first_bad_row_in_input_order(
    tmp_path: Path, inputs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # README: "With strict=True (CLI --strict) the first problem raises". The inputs are read in order
    # (football.csv, then election.jsonl), so the first problem is football.csv row 4 (a duplicate id);
    # load_articles reports election.jsonl line 4 instead, because it raises on every file's read
    # problems before it validates the rows of the earlier files.
    assert main(["build", *inputs, "--out", str(tmp_path / "model"), "--strict"]) == 1
    line = one_error_line(capsys)
    assert "football.csv, row 4" in line and "duplicate article_id 'f1'" in line


def test_build_missing_input_fails_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere.csv"
    assert main(["build", str(missing), "--out", str(tmp_path / "model")]) == 1
    assert "nowhere.csv" in one_error_line(capsys)


def test_build_without_an_id_column_fails_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "no-id.csv"
    path.write_text("headline,text\nCup final,football cup final\n", encoding="utf-8")
    assert main(["build", str(path), "--out", str(tmp_path / "model")]) == 1
    line = one_error_line(capsys)
    assert "article_id" in line and "'headline'" in line


# --------------------------------------------------------------------------- recommend


def test_recommend_prints_a_table(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", str(model_dir), "e1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Election vote count begins"
    assert len(lines) == 3
    assert lines[1].lstrip().startswith("1. ") and lines[2].lstrip().startswith("2. ")
    shown = " ".join(lines[1:])
    assert "Vote count in the election" in shown and "Ballots counted after election" in shown
    assert "(2024-03-05)" in shown and "(2024-03-06)" in shown


def test_recommend_json_k_and_exclude(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", str(model_dir), "f1", "--json"]) == 0
    items = json.loads(capsys.readouterr().out)
    assert [i["rank"] for i in items] == [1, 2]
    assert {i["article_id"] for i in items} == {"f2", "f3"}
    assert items[0]["score"] >= items[1]["score"]
    model = rec.load_model(model_dir)
    expected = model.recommend("f1", k=5)
    assert [i["article_id"] for i in items] == [r.article_id for r in expected]
    assert [i["score"] for i in items] == pytest.approx([r.score for r in expected], abs=1e-6)
    assert items[0]["published"].startswith("2024-03-0")

    assert main(["recommend", str(model_dir), "f1", "--json", "-k", "1"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1

    assert main(["recommend", str(model_dir), "f1", "--json", "--exclude", "f2", "e1"]) == 0
    assert [i["article_id"] for i in json.loads(capsys.readouterr().out)] == ["f3"]


def test_recommend_unknown_id_fails_with_one_line(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", str(model_dir), "no-such-article"]) == 1
    line = one_error_line(capsys)
    assert "'no-such-article'" in line and "popular" in line


def test_recommend_k_beyond_the_pool_fails_with_one_line(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", str(model_dir), "f1", "-k", "51"]) == 1
    assert "pool_size=50" in one_error_line(capsys)


def test_recommend_on_a_missing_model_fails_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", str(tmp_path / "no-model"), "f1"]) == 1
    assert "no-model" in one_error_line(capsys)


def test_corrupt_model_fails_with_one_line(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = model_dir / "version-000001" / "neighbours.npy"
    path.write_bytes(path.read_bytes()[:-4])
    assert main(["recommend", str(model_dir), "f1"]) == 1
    assert "neighbours.npy" in one_error_line(capsys)


def test_closed_output_pipe_ends_without_a_traceback(
    model_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class ClosedPipe:
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    status = main(["info", str(model_dir), "--json"])  # e.g. `recommender info m --json | head -1`
    monkeypatch.undo()
    assert status != 0
    assert "Traceback" not in capsys.readouterr().err


# --------------------------------------------------------------------------- precompute


READERS = {
    "lists.csv": lambda p: pd.read_csv(p, dtype={"article_id": str, "recommended_id": str}),
    "lists.jsonl": lambda p: pd.read_json(p, lines=True, dtype={"article_id": str, "recommended_id": str}),
    "lists.parquet": pd.read_parquet,
    "lists": pd.read_parquet,  # a directory of parts
}


@pytest.mark.parametrize("name", list(READERS))
def test_precompute_writes_the_model_lists(
    model_dir: Path, tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out" / name
    assert main(["precompute", str(model_dir), "--out", str(out), "-k", "2"]) == 0
    assert "Wrote 12 recommendations for 6 articles" in capsys.readouterr().out

    found = READERS[name](out).reset_index(drop=True)
    expected = rec.load_model(model_dir).recommend_frame(k=2)
    assert len(found) == 12  # every article has exactly two topic neighbours
    assert found["article_id"].tolist() == expected["article_id"].tolist()
    assert found["recommended_id"].tolist() == expected["recommended_id"].tolist()
    assert found["rank"].tolist() == expected["rank"].tolist()
    for column in ("score", "similarity", "popularity"):
        np.testing.assert_allclose(found[column].to_numpy(float), expected[column].to_numpy(float), atol=1e-6)
    by_article = found.groupby("article_id")["recommended_id"].agg(set).to_dict()
    assert by_article["f1"] == {"f2", "f3"} and by_article["e3"] == {"e1", "e2"}
    assert [p.name for p in (tmp_path / "out").iterdir()] == [name]  # no temporary files left


def test_precompute_onto_a_directory_named_like_a_file_fails_with_one_line(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "lists.csv"
    out.mkdir()
    assert main(["precompute", str(model_dir), "--out", str(out)]) == 1
    assert "lists.csv" in one_error_line(capsys)
    assert list(out.iterdir()) == []
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# --------------------------------------------------------------------------- ranking controls

# s1 is the source: a storm that shut the harbour and the ferry to the islands, on 10 May, in weather. Its other
# storm articles differ in what can be read off a row: s3 is the only one published after s1; s2, s3 and s6 are
# weather like s1, s4 is business and s5 politics; s5 is four months older than the rest; s2 and s3 are both
# about the islands (a near-repeat of each other) while s6 is about rain. The budget articles are another topic.
NEWS = """\
article_id,title,body,published,views,category,tags
s1,Storm closes the harbour,The storm shut the harbour and the ferry to the islands. Heavy rain followed.,2024-05-10,900,weather,storm;coast
s2,Ferry to the islands cancelled,No ferry sailed to the islands while the storm blew.,2024-05-08,300,weather,coast
s3,Islands count the storm damage,The islands count the damage after the storm.,2024-05-12,400,weather,storm
s4,Harbour walls cost millions,Storm walls at the harbour will cost millions and take years to build.,2024-05-09,100,business,
s5,Council plans harbour walls,The council plans new walls to keep the next storm out.,2024-01-10,50,politics,storm;coast
s6,Heavy rain all week,Forecasters expect heavy rain all week.,2024-05-05,80,weather,
b1,Budget raises school spending,The minister said the budget raises spending on schools.,2024-05-01,700,politics,budget
b2,Tax cut in the budget,The budget cuts tax for families says the minister.,2024-05-02,600,politics,budget
b3,Schools welcome budget,Head teachers welcome more spending on schools in the budget.,2024-05-03,500,education,
b4,Minister defends tax plans,The minister defended tax and spending cuts.,2024-05-04,400,politics,
b5,Families and the tax cut,Families will keep more money after the tax cut.,2024-05-05,300,business,
b6,Spending review for schools,A review of spending on schools and teachers starts.,2024-05-06,200,education,
"""
STORM = {"s2", "s3", "s4", "s5", "s6"}  # the storm articles besides s1
PARTS = ["popularity_part", "freshness_part", "boost_part", "diversity_part"]


@pytest.fixture
def news_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A model of NEWS whose lists hold only articles scoring at least 0.05 before the popular fallback."""
    path = tmp_path / "news.csv"
    path.write_text(NEWS, encoding="utf-8")
    out = tmp_path / "news-model"
    assert main(["build", str(path), "--out", str(out), "--min-score", "0.05"]) == 0
    capsys.readouterr()
    return out


def recommended(capsys: pytest.CaptureFixture[str], model: Path, article_id: str, *flags: str) -> list[dict]:
    """The ``recommend --json`` list of one article."""
    assert main(["recommend", str(model), article_id, "--json", *flags]) == 0
    return json.loads(capsys.readouterr().out)


def ids(items: list[dict]) -> list[str]:
    return [i["article_id"] for i in items]


def test_build_saves_control_flags_as_the_model_parameters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "news.csv"
    path.write_text(NEWS, encoding="utf-8")
    flags = [
        ["--popularity-weight", "0.2"],
        ["--half-life-days", "30"],
        ["--max-age-days", "90"],
        ["--past-only"],
        ["--category-boost", "0.3"],
        ["--tag-boost", "0.15"],
        ["--same-category"],
        ["--categories", "weather", "politics"],
        ["--min-shared-tags", "1"],
        ["--diversity", "0.25"],
        ["--min-score", "0.05"],
        ["--no-fallback"],
    ]
    expected = {
        "popularity_weight": 0.2,
        "half_life_days": 30.0,
        "max_age_days": 90.0,
        "past_only": True,
        "category_boost": 0.3,
        "tag_boost": 0.15,
        "same_category": True,
        "categories": ["weather", "politics"],
        "min_shared_tags": 1,
        "diversity": 0.25,
        "min_score": 0.05,
        "fallback": False,
    }
    out = tmp_path / "model"
    assert main(["build", str(path), "--out", str(out), *[arg for flag in flags for arg in flag]]) == 0
    capsys.readouterr()

    assert main(["info", str(out), "--json"]) == 0
    parameters = json.loads(capsys.readouterr().out)["parameters"]
    assert {name: parameters[name] for name in expected} == expected
    assert main(["info", str(out)]) == 0
    assert "half_life_days = 30.0" in capsys.readouterr().out
    # Loaded, they are the model's defaults for every query.
    assert rec.load_model(out).controls().as_dict() == {**expected, "categories": ("weather", "politics")}


def test_build_without_control_flags_saves_the_defaults(news_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(news_dir), "--json"]) == 0
    parameters = json.loads(capsys.readouterr().out)["parameters"]
    expected = {**rec.Recommender().controls().as_dict(), "min_score": 0.05}
    assert {name: parameters[name] for name in expected} == expected
    assert parameters["fallback"] is True and parameters["category_boost"] == 0.1 and parameters["tag_boost"] == 0.05


def test_recommend_lists_only_similar_articles_with_no_fallback(
    news_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # s1 has five related storm articles; asked for eight, the model fills three slots from the popular ones.
    items = recommended(capsys, news_dir, "s1", "-k", "8")
    assert len(items) == 8
    assert set(ids(items[:5])) == STORM and {i["reason"] for i in items[:5]} == {"similar"}
    assert {i["reason"] for i in items[5:]} == {"fallback"}
    assert {i["score"] for i in items[5:]} == {0.0}

    items = recommended(capsys, news_dir, "s1", "-k", "8", "--no-fallback")
    assert set(ids(items)) == STORM and {i["reason"] for i in items} == {"similar"}


def test_recommend_past_only_drops_articles_published_after_the_source(
    news_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "s3" in ids(recommended(capsys, news_dir, "s1", "--no-fallback"))
    items = recommended(capsys, news_dir, "s1", "--no-fallback", "--past-only")
    assert set(ids(items)) == STORM - {"s3"}
    assert all(i["published"] <= "2024-05-10" for i in items)


def test_a_saved_control_can_be_switched_off_per_call(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "news.csv"
    path.write_text(NEWS, encoding="utf-8")
    out = tmp_path / "model"
    assert main(["build", str(path), "--out", str(out), "--min-score", "0.05", "--past-only", "--no-fallback"]) == 0
    capsys.readouterr()
    assert set(ids(recommended(capsys, out, "s1"))) == STORM - {"s3"}
    assert set(ids(recommended(capsys, out, "s1", "--no-past-only"))) == STORM


def test_recommend_same_category_keeps_the_source_category(news_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert {i["category"] for i in recommended(capsys, news_dir, "s1", "--no-fallback")} == {
        "weather",
        "business",
        "politics",
    }
    items = recommended(capsys, news_dir, "s1", "--no-fallback", "--same-category")
    assert set(ids(items)) == {"s2", "s3", "s6"}
    items = recommended(capsys, news_dir, "s1", "--no-fallback", "--categories", "business", "politics")
    assert set(ids(items)) == {"s4", "s5"}
    # The fallback respects the filter too: a long list is filled from weather articles only.
    items = recommended(capsys, news_dir, "s1", "-k", "6", "--same-category")
    assert {i["category"] for i in items} == {"weather"}


def test_recommend_half_life_days_favours_articles_near_the_source_date(
    news_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = recommended(capsys, news_dir, "s1", "--no-fallback")
    assert "s5" in ids(before) and {i["freshness_part"] for i in before} == {0.0}
    after = recommended(capsys, news_dir, "s1", "--no-fallback", "--half-life-days", "7")
    # s5, four months older, keeps almost nothing of its score and drops under the model's min_score;
    # every other article is a few days from s1 and loses a part of its score.
    assert set(ids(after)) == STORM - {"s5"}
    assert all(i["freshness_part"] < 0 for i in after)
    old = {i["article_id"]: i["score"] for i in before}
    assert all(i["score"] < old[i["article_id"]] for i in after)


def test_recommend_diversity_moves_a_near_repeat_down(news_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = ids(recommended(capsys, news_dir, "s1", "--no-fallback"))
    assert before[0] == "s3" and before.index("s2") < before.index("s6")
    items = recommended(capsys, news_dir, "s1", "--no-fallback", "--diversity", "0.5")
    after = ids(items)
    # s2 repeats s3 (the islands), which is already first; s6 (rain) is a different story and now comes before it.
    assert after[0] == "s3" and after.index("s6") < after.index("s2")
    assert set(after) == set(before)
    parts = {i["article_id"]: i["diversity_part"] for i in items}
    assert parts["s3"] == 0.0 and parts["s2"] < 0
    # at full weight, the repeat's score is no longer positive: it leaves the list rather than show as "similar"
    full = recommended(capsys, news_dir, "s1", "--no-fallback", "--diversity", "1")
    assert "s2" not in ids(full) and ids(full)[0] == "s3" and all(i["score"] > 0 for i in full)


def test_recommend_json_has_reasons_score_parts_and_shared_terms(
    news_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for article_id in ["s1", "s2", "s3", "s4", "s5", "s6", "b1"]:
        for flags in [[], ["--half-life-days", "7", "--diversity", "0.3", "--tag-boost", "0.2"]]:
            for item in recommended(capsys, news_dir, article_id, "-k", "6", *flags):
                assert item["reason"] in {"similar", "fallback"}
                total = item["similarity"] + sum(item[name] for name in PARTS)
                assert abs(total - item["score"]) <= 1e-6, (article_id, flags, item)
    items = {i["article_id"]: i for i in recommended(capsys, news_dir, "s1", "-k", "6")}
    ferry = items["s2"]  # "Ferry to the islands cancelled" shares ferry, islands and storm with s1
    assert {term for term, _ in ferry["shared_terms"]} == {"ferry", "islands", "storm"}
    assert all(0 < value <= ferry["similarity"] for _, value in ferry["shared_terms"])
    assert ferry["popularity_part"] > 0  # s2 has views
    assert ferry["boost_part"] > 0  # same category (weather) and a shared tag (coast)
    fallback = [i for i in items.values() if i["reason"] == "fallback"]
    assert len(fallback) == 1 and fallback[0]["shared_terms"] == [] and fallback[0]["similarity"] == 0.0


def test_recommend_explain_prints_parts_and_shared_terms(news_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", str(news_dir), "s1", "-k", "6", "--explain"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Storm closes the harbour"
    ferry = lines.index(next(line for line in lines if "Ferry to the islands cancelled" in line))
    explained = lines[ferry + 1]
    assert "shared terms:" in explained and "ferry" in explained and "islands" in explained
    assert "popularity +" in explained and "boost +" in explained
    assert "[fallback]" in lines[-2] and "shared terms: none" in lines[-1]
    assert main(["recommend", str(news_dir), "s1"]) == 0
    assert "shared terms" not in capsys.readouterr().out


def test_precompute_explain_writes_the_part_columns(
    news_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "lists.csv"
    assert main(["precompute", str(news_dir), "--out", str(out), "-k", "3", "--explain", "--no-fallback"]) == 0
    capsys.readouterr()
    found = pd.read_csv(out, dtype={"article_id": str, "recommended_id": str}, keep_default_na=False)
    assert {"reason", *PARTS, "shared_terms"} <= set(found.columns)
    assert set(found["reason"]) == {"similar"}
    total = found["similarity"] + found[PARTS].sum(axis=1)
    np.testing.assert_allclose(total.to_numpy(float), found["score"].to_numpy(float), atol=1e-6)
    ferry = found[(found["article_id"] == "s1") & (found["recommended_id"] == "s2")]["shared_terms"]
    assert len(ferry) == 1  # s2 is in s1's top three (with s3 and s4), sharing ferry, islands and storm
    assert {pair.split("=")[0] for pair in ferry.iloc[0].split("; ")} == {"ferry", "islands", "storm"}
    expected = rec.load_model(news_dir).recommend_frame(k=3, explain=True, fallback=False)
    assert found["recommended_id"].tolist() == expected["recommended_id"].tolist()
    assert found["shared_terms"].tolist() == expected["shared_terms"].tolist()

    plain = tmp_path / "plain.csv"
    assert main(["precompute", str(news_dir), "--out", str(plain), "-k", "3"]) == 0
    assert not {*PARTS, "shared_terms"} & set(pd.read_csv(plain).columns)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["recommend", "{model}", "s1", "--min-shared-tags", "-1"], "min_shared_tags must be an integer >= 0, got -1"),
        (["recommend", "{model}", "s1", "--half-life-days", "0"], "half_life_days must be"),
        (["recommend", "{model}", "s1", "--diversity", "-0.5"], "diversity must be a finite number in [0, 1]"),
        (["recommend", "{model}", "s1", "--diversity", "7"], "diversity must be a finite number in [0, 1], got 7.0"),
        (["recommend", "{model}", "s1", "--popularity-weight", "nan"], "popularity_weight must be a finite number"),
        (["precompute", "{model}", "--out", "{tmp}/lists.csv", "--max-age-days", "-3"], "max_age_days must be"),
        (["build", "{news}", "--out", "{tmp}/other", "--category-boost", "-1"], "category_boost must be"),
    ],
    ids=["min-shared-tags", "half-life-zero", "diversity", "diversity-7", "popularity-nan", "precompute", "build"],
)
def test_invalid_control_value_fails_with_one_line(
    news_dir: Path, tmp_path: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    values = {"model": str(news_dir), "tmp": str(tmp_path), "news": str(tmp_path / "news.csv")}
    assert main([arg.format(**values) for arg in argv]) == 1
    assert message in one_error_line(capsys)
    assert not (tmp_path / "lists.csv").exists() and not (tmp_path / "other").exists()


# --------------------------------------------------------------------------- info


def test_info_describes_the_model(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(model_dir)]) == 0
    stdout = capsys.readouterr().out
    terms = len(rec.load_model(model_dir).vocabulary_)
    assert f"recommender-model v{FORMAT_VERSION}" in stdout
    assert "version-000001" in stdout
    assert "Articles:         6 (rejected rows: 3" in stdout
    assert f"Vocabulary:       {terms} terms" in stdout
    assert "Reference date:   2024-03-06" in stdout
    assert "min_df = 2" in stdout


def test_build_and_info_without_dates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Each football article shares "football" and one more word with each of the others (cup, goal, late); the
    # election articles likewise (vote; count, ballots, polls). No two articles are the same story.
    path = tmp_path / "undated.csv"
    path.write_text(
        "id,title,text\n"
        "007,Cup final goal,football cup final goal\n"
        "008,Late cup winner,football cup winner late\n"
        "011,Late goal saved,football goal late save\n"
        "009,Election count,vote count ballots\n"
        "010,Polls count,vote count polls\n"
        "012,Ballots and polls,vote ballots polls\n",
        encoding="utf-8",
    )
    out = tmp_path / "model"
    assert main(["build", str(path), "--out", str(out), "--no-fallback"]) == 0
    built = capsys.readouterr().out
    assert "Kept 6 articles; rejected 0 rows." in built and "reference date: unknown" in built
    assert main(["info", str(out)]) == 0
    assert "Reference date:   none" in capsys.readouterr().out
    assert main(["recommend", str(out), "007", "--json"]) == 0
    items = json.loads(capsys.readouterr().out)
    assert sorted(i["article_id"] for i in items) == ["008", "011"]
    assert {i["published"] for i in items} == {None}
    assert {i["freshness_part"] for i in items} == {0.0}


def test_info_json_is_the_manifest(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(model_dir), "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["counts"]["articles"] == 6
    assert manifest["counts"]["rejected"] == 3
    assert manifest["version"] == "version-000001"
    assert "rejected.csv" in manifest["files"]


def test_info_on_a_folder_that_is_not_a_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(tmp_path)]) == 1
    assert "not a recommender model" in one_error_line(capsys)


# --------------------------------------------------------------------------- demo


def test_demo_prints_attribution_and_lists(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "-k", "2", "--articles", "2"]) == 0
    stdout = capsys.readouterr().out
    assert "Wikinews" in stdout and "CC BY 2.5" in stdout
    assert stdout.count("You Might Like:") == 2
    ranks = [line.split(".")[0].strip() for line in stdout.splitlines() if line.startswith("   ")]
    assert ranks == ["1", "2", "1", "2"]


# --------------------------------------------------------------------------- usage and processes


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["recommend"])
    assert caught.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_python_m_version(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "recommender", "--version"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"recommender {rec.__version__}"


def test_console_script_error_has_no_traceback(tmp_path: Path) -> None:
    script = shutil.which("recommender", path=str(Path(sys.executable).parent)) or shutil.which("recommender")
    if script is None:
        pytest.skip("the recommender console script is not installed")
    done = subprocess.run(
        [script, "info", str(tmp_path / "no-model")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("recommender: error: Model directory not found")
    assert "Traceback" not in done.stderr


def test_build_stop_words_and_collapse_flags(
    tmp_path: Path, inputs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    words = tmp_path / "stop.txt"
    words.write_text("# words of no use to us\ncup\nelection  # a comment\n\n", encoding="utf-8")
    out = tmp_path / "model"
    assert main(["build", *inputs, "--out", str(out), "--stop-words", str(words), "--no-collapse"]) == 0
    capsys.readouterr()
    model = rec.load_model(out)
    assert model.stop_words == ("cup", "election") and model.collapse is False
    assert not {"cup", "election"} & set(model.vocabulary_.terms)
    assert main(["build", *inputs, "--out", str(out), "--stop-words", "english"]) == 0
    capsys.readouterr()
    assert rec.load_model(out).stop_words == "english"
    with pytest.raises(SystemExit):
        main(["build", *inputs, "--out", str(out), "--stop-words", str(tmp_path / "missing.txt")])
    assert "--stop-words" in capsys.readouterr().err


# --------------------------------------------------------------------------- manners (issue 15)


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["buld", "x"], "(did you mean build?)"),
        (["build", "x", "--out", "m", "--strcit"], "(did you mean --strict?)"),
        (["precompute", "m", "--out", "l.csv", "--explian"], "(did you mean --explain?)"),
    ],
)
def test_a_mistyped_command_or_flag_gets_a_did_you_mean(argv, hint: str, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("recommender: error:") and err[-1].endswith(hint) and len(err) == 2


def test_demo_checks_its_arguments_before_fitting_and_ends_with_the_next_command(capsys) -> None:
    import time

    started = time.perf_counter()
    assert main(["demo", "-k", "0"]) == 1
    assert time.perf_counter() - started < 1.0  # refused before reading or fitting anything
    assert capsys.readouterr().err.strip() == (
        "recommender: error: -k and --articles must be at least 1, got -k 0 and --articles 3."
    )
    assert main(["demo", "--articles", "1", "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert "; id wikinews:" in out
    last = out.strip().splitlines()[-2:]
    assert last[0].startswith("  recommender build ") and last[0].endswith(" --out models/demo")
    assert last[1].startswith("  recommender recommend models/demo ")


def test_rollback_on_the_command_line(tmp_path: Path, capsys) -> None:
    frame = pd.DataFrame({"article_id": ["a", "b", "c"], "title": ["cup goal", "cup final", "vote count"]})
    rec.Recommender(min_df=1, max_df=1.0).fit(frame).save(tmp_path / "m")
    rec.Recommender(min_df=1, max_df=1.0).fit(frame.iloc[:2]).save(tmp_path / "m")
    assert main(["rollback", str(tmp_path / "m")]) == 0
    assert "CURRENT now points at version-000001" in capsys.readouterr().out
    assert rec.load_model(tmp_path / "m").n_articles == 3
    assert main(["rollback", str(tmp_path / "m"), "--to", "2"]) == 0
    assert rec.load_model(tmp_path / "m").n_articles == 2
    assert main(["rollback", str(tmp_path / "m"), "--to", "7"]) == 1
    assert capsys.readouterr().err.startswith("recommender: error: ")
