"""Tests for recommender._cli: the ``recommender`` command line.

Commands run in-process through ``main([...])`` with pytest's ``capsys``; two
tests start a real process (``python -m recommender`` and the console script).
The inputs are invented: three football articles in a CSV file and three
election articles in a JSON Lines file (with alias column names), plus one bad
row of each kind the README lists as a rejection reason we can show here.
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
    assert main(["build", *inputs, "--out", str(out)]) == 0
    capsys.readouterr()
    return out


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The single stderr line of a failed command (and nothing on stdout)."""
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("recommender: error: ")
    assert "Traceback" not in captured.err
    return lines[0]


# --------------------------------------------------------------------------- build


def test_build_reports_kept_and_rejected_rows(
    tmp_path: Path, inputs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model"
    assert main(["build", *inputs, "--out", str(out)]) == 0
    stdout = capsys.readouterr().out

    assert "Kept 6 articles; rejected 3 rows." in stdout
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
    assert "Wrote 12 recommendations for 6 of 6 articles" in capsys.readouterr().out

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


# --------------------------------------------------------------------------- info


def test_info_describes_the_model(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(model_dir)]) == 0
    stdout = capsys.readouterr().out
    terms = len(rec.load_model(model_dir).vocabulary_)
    assert "recommender-model v1" in stdout
    assert "version-000001" in stdout
    assert "Articles:         6 (rejected rows: 3" in stdout
    assert f"Vocabulary:       {terms} terms" in stdout
    assert "Reference date:   2024-03-06" in stdout
    assert "min_df = 2" in stdout


def test_build_and_info_without_dates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "undated.csv"
    path.write_text(
        "id,title,text\n007,Cup final goal,football cup final goal\n008,Late cup goal,football cup goal late\n"
        "009,Election count,vote count ballots\n010,Vote count,ballots vote count\n",
        encoding="utf-8",
    )
    out = tmp_path / "model"
    assert main(["build", str(path), "--out", str(out)]) == 0
    built = capsys.readouterr().out
    assert "Kept 4 articles; rejected 0 rows." in built and "reference date: unknown" in built
    assert main(["info", str(out)]) == 0
    assert "Reference date:   none" in capsys.readouterr().out
    assert main(["recommend", str(out), "007", "--json"]) == 0
    assert [i["article_id"] for i in json.loads(capsys.readouterr().out)] == ["008"]


def test_info_json_is_the_manifest(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(model_dir), "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["format_version"] == 1
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
