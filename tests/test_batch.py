"""Tests for recommender._batch: writing precomputed lists as CSV, JSON Lines or Parquet.

The list frame is written by hand (two football articles recommending each other,
one election article with a one-item list), so every value read back can be
checked by eye. Ids such as "007" must come back as the same strings.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import recommender as rec
from recommender._batch import output_format

COLUMNS = [
    "article_id",
    "rank",
    "recommended_id",
    "score",
    "similarity",
    "popularity",
    "title",
    "url",
    "published",
    "category",
]


def list_frame() -> pd.DataFrame:
    """Lists in the shape of ``Recommender.recommend_frame``: 007 -> [010, 3], 010 -> [007], 3 -> [007]."""
    return pd.DataFrame(
        {
            "article_id": ["007", "007", "010", "3"],
            "rank": np.array([1, 2, 1, 1], dtype=np.int64),
            "recommended_id": ["010", "3", "007", "007"],
            "score": np.array([0.75, 0.5, 0.75, 0.25], dtype=np.float32),
            "similarity": np.array([0.5, 0.5, 0.5, 0.25], dtype=np.float32),
            "popularity": np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32),
            "title": [
                "Late goal wins the cup",
                "Wählen: the long night of counting",
                "Cup final goal",
                "Cup final goal",
            ],
            "url": ["https://news.example/010", None, "https://news.example/007", "https://news.example/007"],
            "published": pd.to_datetime(["2024-03-02 10:30", None, "2024-03-01 09:00", "2024-03-01 09:00"], utc=True),
            "category": ["sport", None, "sport", "sport"],
        }
    )


STRING_IDS = {"article_id": str, "recommended_id": str}


def assert_same_lists(found: pd.DataFrame) -> None:
    expected = list_frame()
    assert found.columns.tolist() == COLUMNS
    assert found["article_id"].tolist() == ["007", "007", "010", "3"]
    assert found["recommended_id"].tolist() == ["010", "3", "007", "007"]
    assert found["rank"].tolist() == [1, 2, 1, 1]
    np.testing.assert_allclose(found["score"].to_numpy(float), [0.75, 0.5, 0.75, 0.25], atol=1e-6)
    np.testing.assert_allclose(found["similarity"].to_numpy(float), [0.5, 0.5, 0.5, 0.25], atol=1e-6)
    np.testing.assert_allclose(found["popularity"].to_numpy(float), [1.0, 0.0, 0.0, 0.0], atol=1e-6)
    assert found["title"].tolist() == expected["title"].tolist()
    assert found["url"].isna().tolist() == [False, True, False, False]
    assert found["category"].isna().tolist() == [False, True, False, False]
    published = pd.to_datetime(found["published"], utc=True)
    assert published.isna().tolist() == [False, True, False, False]
    assert published[0] == pd.Timestamp("2024-03-02 10:30", tz="UTC")


def leftovers(folder: Path) -> list[str]:
    """Temporary or hidden files left in a folder."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp"))


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("lists.csv", "csv"),
        ("lists.CSV.GZ", "csv"),
        ("lists.jsonl", "jsonl"),
        ("lists.jsonl.gz", "jsonl"),
        ("lists.parquet", "parquet"),
        ("lists", "parts"),
        ("lists.d", "parts"),
    ],
)
def test_output_format_follows_the_name(name: str, kind: str) -> None:
    assert output_format(name) == kind


def test_csv(tmp_path: Path) -> None:
    path = tmp_path / "lists.csv"
    assert rec.write_lists(list_frame(), path) == [path]
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == ",".join(COLUMNS)
    assert text.splitlines()[1].startswith("007,1,010,")
    assert_same_lists(pd.read_csv(path, dtype=STRING_IDS))
    assert leftovers(tmp_path) == []


def test_csv_gz_is_gzip(tmp_path: Path) -> None:
    path = tmp_path / "lists.csv.gz"
    rec.write_lists(list_frame(), path)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        assert handle.readline().strip() == ",".join(COLUMNS)
    assert_same_lists(pd.read_csv(path, dtype=STRING_IDS))
    assert leftovers(tmp_path) == []


def test_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "lists.jsonl"
    rec.write_lists(list_frame(), path)
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 4
    assert records[0]["article_id"] == "007" and records[0]["recommended_id"] == "010"  # JSON strings, not 7
    assert records[1]["url"] is None and records[1]["published"] is None
    assert records[1]["title"] == "Wählen: the long night of counting"
    assert_same_lists(pd.read_json(path, lines=True, dtype=STRING_IDS))
    assert leftovers(tmp_path) == []


def test_jsonl_gz(tmp_path: Path) -> None:
    path = tmp_path / "lists.jsonl.gz"
    rec.write_lists(list_frame(), path)
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        assert json.loads(handle.readline())["article_id"] == "007"
    assert_same_lists(pd.read_json(path, lines=True, dtype=STRING_IDS))


def test_parquet(tmp_path: Path) -> None:
    path = tmp_path / "lists.parquet"
    rec.write_lists(list_frame(), path)
    found = pd.read_parquet(path)
    assert_same_lists(found)
    assert found["published"].dtype == list_frame()["published"].dtype
    assert leftovers(tmp_path) == []


def test_single_file_creates_missing_parent_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "lists.csv"
    rec.write_lists(list_frame(), path)
    assert_same_lists(pd.read_csv(path, dtype=STRING_IDS))


def test_rewriting_a_file_replaces_it(tmp_path: Path) -> None:
    path = tmp_path / "lists.csv"
    rec.write_lists(list_frame(), path)
    rec.write_lists(list_frame().iloc[:1], path)
    assert pd.read_csv(path, dtype=STRING_IDS)["recommended_id"].tolist() == ["010"]


def test_directory_of_parquet_parts(tmp_path: Path) -> None:
    folder = tmp_path / "lists"
    written = rec.write_lists(list_frame(), folder, part_rows=3)
    assert [p.name for p in written] == ["part-00000.parquet", "part-00001.parquet"]
    assert sorted(p.name for p in folder.iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    assert [len(pd.read_parquet(p)) for p in written] == [3, 1]
    assert_same_lists(pd.read_parquet(folder).reset_index(drop=True))  # pandas reads the folder as one table


def test_rewriting_parts_removes_old_parts(tmp_path: Path) -> None:
    folder = tmp_path / "lists"
    rec.write_lists(list_frame(), folder, part_rows=1)
    assert len(list(folder.glob("part-*.parquet"))) == 4
    (folder / "README.txt").write_text("not ours", encoding="utf-8")

    written = rec.write_lists(list_frame().iloc[:2], folder, part_rows=10)
    assert [p.name for p in written] == ["part-00000.parquet"]
    assert sorted(p.name for p in folder.iterdir()) == ["README.txt", "part-00000.parquet"]
    assert pd.read_parquet(written[0])["recommended_id"].tolist() == ["010", "3"]


def test_empty_frame_writes_one_empty_part(tmp_path: Path) -> None:
    folder = tmp_path / "lists"
    written = rec.write_lists(list_frame().iloc[:0], folder)
    assert len(written) == 1
    found = pd.read_parquet(written[0])
    assert len(found) == 0 and found.columns.tolist() == COLUMNS


@pytest.mark.parametrize("part_rows", [0, -1, 2.5, True])
def test_bad_part_rows_fails_before_touching_old_parts(tmp_path: Path, part_rows) -> None:
    folder = tmp_path / "lists"
    rec.write_lists(list_frame(), folder, part_rows=2)
    with pytest.raises(ValueError, match="part_rows must be an integer >= 1"):
        rec.write_lists(list_frame(), folder, part_rows=part_rows)
    assert sorted(p.name for p in folder.iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    assert_same_lists(pd.read_parquet(folder).reset_index(drop=True))


def test_parts_onto_an_existing_file_fails(tmp_path: Path) -> None:
    target = tmp_path / "lists"
    target.write_text("keep me", encoding="utf-8")
    with pytest.raises(FileExistsError, match="it is a file"):
        rec.write_lists(list_frame(), target)
    assert target.read_text(encoding="utf-8") == "keep me"


def test_failed_write_leaves_no_temporary_file_and_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "lists.parquet"
    rec.write_lists(list_frame(), path)
    broken = list_frame()
    broken["title"] = [object(), object(), object(), object()]  # Parquet cannot store these
    with pytest.raises(Exception):  # noqa: B017 - pyarrow's own error type
        rec.write_lists(broken, path)
    assert leftovers(tmp_path) == []
    assert_same_lists(pd.read_parquet(path))


def test_model_lists_round_trip_through_every_format(tmp_path: Path) -> None:
    articles = pd.DataFrame(
        {
            "article_id": ["007", "008", "100"],
            "title": ["Cup final goal", "Late goal wins the cup", "Election vote count"],
            "body": ["football cup final", "football cup goal", "election ballots vote"],
        }
    )
    model = rec.Recommender(min_df=1, max_df=1.0, latent_components=0, fallback=False).fit(articles)
    frame = model.recommend_frame(k=2)
    # The two football articles recommend each other; the election article shares no term.
    assert frame["article_id"].tolist() == ["007", "008"]
    assert frame["recommended_id"].tolist() == ["008", "007"]
    assert frame["reason"].tolist() == ["similar", "similar"]
    readers = {
        "l.csv": lambda p: pd.read_csv(p, dtype=STRING_IDS),
        "l.jsonl": lambda p: pd.read_json(p, lines=True, dtype=STRING_IDS),
        "l.parquet": pd.read_parquet,
        "parts": pd.read_parquet,
    }
    for name, read in readers.items():
        rec.write_lists(frame, tmp_path / name)
        found = read(tmp_path / name)
        assert found["article_id"].tolist() == ["007", "008"], name
        assert found["recommended_id"].tolist() == ["008", "007"], name
        np.testing.assert_allclose(found["score"].to_numpy(float), frame["score"].to_numpy(float), atol=1e-6)
        assert found["reason"].tolist() == ["similar", "similar"], name
    assert leftovers(tmp_path) == []


def test_explained_lists_keep_their_parts_reasons_and_shared_terms(tmp_path: Path) -> None:
    articles = pd.DataFrame(
        {
            "article_id": ["007", "008", "100"],
            "title": ["Cup final goal", "Late goal wins the cup", "Election vote count"],
            "body": ["football cup final", "football cup goal", "election ballots vote"],
            "views": [10, 500, 40],
        }
    )
    frame = rec.Recommender(min_df=1, max_df=1.0, latent_components=0).fit(articles).recommend_frame(k=2, explain=True)
    # 100 shares no term with the others: its list is filled from the popular articles.
    assert frame.loc[frame["article_id"] == "100", "reason"].tolist() == ["fallback", "fallback"]
    assert frame.loc[frame["article_id"] == "007", "reason"].tolist()[0] == "similar"
    parts = ["popularity_part", "freshness_part", "boost_part", "diversity_part"]
    readers = {
        "l.csv": lambda p: pd.read_csv(p, dtype=STRING_IDS, keep_default_na=False),
        "l.jsonl.gz": lambda p: pd.read_json(p, lines=True, dtype=STRING_IDS),
        "l.parquet": pd.read_parquet,
        "parts": pd.read_parquet,
    }
    for name, read in readers.items():
        rec.write_lists(frame, tmp_path / name, part_rows=2)
        found = read(tmp_path / name).reset_index(drop=True)
        assert found.columns.tolist() == frame.columns.tolist(), name
        assert found["reason"].tolist() == frame["reason"].tolist(), name
        assert found["shared_terms"].tolist() == frame["shared_terms"].tolist(), name
        for column in ["score", "similarity", *parts]:
            np.testing.assert_allclose(found[column].to_numpy(float), frame[column].to_numpy(float), atol=1e-9)
        total = found["similarity"].to_numpy(float) + found[parts].to_numpy(float).sum(axis=1)
        np.testing.assert_allclose(total, found["score"].to_numpy(float), atol=1e-9)
