"""Ingest and validation: every source, every rejection reason, nothing lost silently."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import recommender as rec

PAGE = """Daily Example News
{title}
Views: {views}
2024-03-0{day} 09:30
{lede}

{lede} More words follow in the body of this page.

You Might Like...
Some other headline
"""


def reasons(articles: pd.DataFrame) -> list[str]:
    return [r["reason"] for r in articles.attrs["rejected"]]


def test_ids_are_read_verbatim_from_csv(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("article_id,title\n007,Bond returns\n0.50,Half\n1e3,Thousand\n", encoding="utf-8")
    assert rec.load_articles(path)["article_id"].tolist() == ["007", "0.50", "1e3"]


def test_aliases_are_mapped():
    frame = pd.DataFrame(
        {
            "id": ["x1"],
            "headline": ["A title"],
            "lede": ["A lede"],
            "content": ["A body"],
            "published_at": ["2024-01-02T03:04:05"],
            "section": ["world"],
            "link": ["https://news.example/x1"],
            "unrelated": [1],
        }
    )
    articles = rec.load_articles(frame)
    assert list(articles.columns) == list(rec.COLUMNS)
    row = articles.iloc[0]
    assert (row["article_id"], row["title"], row["summary"], row["body"]) == ("x1", "A title", "A lede", "A body")
    assert row["category"] == "world" and row["url"] == "https://news.example/x1"
    assert row["published"] == pd.Timestamp("2024-01-02T03:04:05", tz="UTC")


def test_canonical_name_wins_over_alias():
    frame = pd.DataFrame({"article_id": ["a"], "id": ["b"], "body": ["text"], "text": ["other"]})
    row = rec.load_articles(frame).iloc[0]
    assert row["article_id"] == "a" and row["body"] == "text"


def test_duplicates_keep_the_first_and_report_the_rest():
    frame = pd.DataFrame({"id": ["a", "b", "a", "a"], "body": ["first", "b", "second", "third"]})
    articles = rec.load_articles(frame)
    assert articles["article_id"].tolist() == ["a", "b"]
    assert articles["body"].tolist()[0] == "first"
    rejected = articles.attrs["rejected"]
    assert [r["row"] for r in rejected] == [3, 4]
    assert all("duplicate article_id 'a'" in r["reason"] and "row 1" in r["reason"] for r in rejected)


def test_each_bad_row_gets_one_reason():
    frame = pd.DataFrame(
        {
            "article_id": ["ok", "", "notext", "neg", "word", "when", "inf"],
            "title": ["Fine", "No id", None, "Negative", "Wordy", "Dated", "Infinite"],
            "views": ["1,234", "1", "2", "-5", "many", "3", "inf"],
            "published": ["2024-01-01", None, None, None, None, "not a date", None],
        }
    )
    articles = rec.load_articles(frame)
    assert articles["article_id"].tolist() == ["ok"]
    assert articles["views"].tolist() == [1234.0]
    got = {r["row"]: r["reason"] for r in articles.attrs["rejected"]}
    assert got[2] == "missing article_id"
    assert got[3].startswith("no text")
    assert got[4].startswith("views is negative")
    assert got[5].startswith("views is not a number")
    assert got[6].startswith("published is not a date")
    assert got[7].startswith("views is not a finite number")
    assert len(got) == len(frame) - 1


@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "", None]),
            st.sampled_from(["text", "", None]),
            st.sampled_from(["1", "-5", None]),
            st.sampled_from([None, "2024-01-01", "2999-01-01", "not a date"]),
        ),
        max_size=12,
    ),
    cuts=st.sets(st.integers(min_value=1, max_value=11)),
    strict=st.booleans(),
)
@example(rows=[("a", "text", "1", None), ("b", None, "1", None), ("a", "", "1", None)], cuts={1, 2}, strict=False)
@example(rows=[("a", "text", "1", None), ("b", None, "1", None), ("a", "", "1", None)], cuts={2}, strict=True)
@example(rows=[("a", "text", "1", None), ("a", "text", "1", None), ("a", "", "1", None)], cuts={1}, strict=False)
@example(rows=[("a", "text", "1", None), ("a", "text", "1", "2999-01-01"), ("b", "", "1", None)], cuts={1}, strict=True)
@example(
    rows=[("a", "text", "1", None), ("a", "text", "1", "2999-01-01"), ("c", "", "1", None)], cuts={1}, strict=False
)
def test_validating_in_parts_is_validating_the_whole(rows, cuts, strict):
    """Parts cut anywhere and validated apart, then joined, hold the rows, reasons and flags of the whole table
    (an id kept in an earlier part makes a row a duplicate whatever else it lacks; what the input carried is
    reported once), and strict stops at the same row with the same message."""
    from recommender._articles import cut_articles, joined_parts, validate_part

    frame = pd.DataFrame(rows, columns=["id", "body", "views", "published"], dtype=object)
    frame.attrs["rejected"] = [{"source": "earlier", "row": 9, "article_id": "x", "reason": "carried"}]
    frame.attrs["flagged"] = [{"source": "earlier", "row": 8, "article_id": "b", "reason": "carried flag"}]
    bounds = [0, *sorted(c for c in cuts if c < len(frame)), len(frame)] if len(frame) else [0]
    parts, carried, carried_flags = cut_articles(frame, lambda chars: bounds)
    assert len(parts) == max(len(bounds) - 1, 1)
    now = pd.Timestamp.now(tz="UTC")
    validated = [validate_part(part, now) for part in parts]
    try:
        whole = rec.validate_articles(frame, strict=strict)
    except rec.ArticleValidationError as error:
        with pytest.raises(rec.ArticleValidationError) as found:
            joined_parts([report for _, report in validated], carried, carried_flags, strict=strict)
        assert str(found.value) == str(error)
        return
    drops, rejected, flagged = joined_parts([report for _, report in validated], carried, carried_flags, strict=strict)
    kept = [valid.drop(index=valid.index[drop]) for (valid, _), drop in zip(validated, drops, strict=True)]
    joined = pd.concat(kept, ignore_index=True).drop(columns=["__source__", "__row__"])
    pd.testing.assert_frame_equal(joined, whole.reset_index(drop=True), check_dtype=len(whole) > 0)
    assert rejected == whole.attrs["rejected"]
    assert flagged == whole.attrs["flagged"]


def test_strict_raises_on_the_first_problem():
    frame = pd.DataFrame({"article_id": ["a", "a"], "body": ["x", "y"]})
    with pytest.raises(rec.ArticleValidationError, match=r"row 2 .*duplicate article_id 'a'"):
        rec.load_articles(frame, strict=True)
    assert isinstance(rec.ArticleValidationError("x"), ValueError)


def test_missing_views_and_dates_are_unknown_not_errors():
    articles = rec.load_articles(pd.DataFrame({"article_id": ["a", "b"], "body": ["x", "y"], "views": [None, 3]}))
    assert np.isnan(articles["views"].iloc[0]) and articles["views"].iloc[1] == 3
    assert articles["published"].isna().all()
    assert articles.attrs["rejected"] == []


def test_dates_naive_are_utc_and_zones_are_converted():
    frame = pd.DataFrame(
        {
            "article_id": ["a", "b", "c"],
            "body": ["x"] * 3,
            "published": ["2024-01-01 12:00", "2024-01-01T12:00:00+02:00", "1 Jan 2024"],
        }
    )
    published = rec.load_articles(frame)["published"].tolist()
    assert published[0] == pd.Timestamp("2024-01-01 12:00", tz="UTC")
    assert published[1] == pd.Timestamp("2024-01-01 10:00", tz="UTC")
    assert published[2] == pd.Timestamp("2024-01-01", tz="UTC")


def test_tags_from_lists_and_semicolon_strings():
    frame = pd.DataFrame(
        {"article_id": ["a", "b", "c"], "body": ["x"] * 3, "tags": [["Sport", "Cup"], "Sport; Cup ;;", None]}
    )
    assert rec.load_articles(frame)["tags"].tolist() == [("Sport", "Cup"), ("Sport", "Cup"), ()]


def test_missing_id_column_names_what_was_found():
    with pytest.raises(rec.SchemaError, match=r"Missing column 'article_id'.*'headline', 'body'"):
        rec.load_articles(pd.DataFrame({"headline": ["x"], "body": ["y"]}))


def test_missing_text_columns_is_a_schema_error():
    with pytest.raises(rec.SchemaError, match="Missing text"):
        rec.load_articles(pd.DataFrame({"id": ["x"], "views": [1]}))


def test_json_lines_with_a_malformed_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(
        '{"id": "007", "title": "Bond"}\n{"id": "8", "title": broken}\n\n[1, 2]\n{"id": 9, "title": "Nine"}\n',
        encoding="utf-8",
    )
    articles = rec.load_articles(path)
    assert articles["article_id"].tolist() == ["007", "9"]
    rejected = {r["row"]: r for r in articles.attrs["rejected"]}
    assert set(rejected) == {2, 4}
    assert rejected[2]["reason"].startswith("malformed JSON line") and rejected[2]["source"] == "a.jsonl"
    assert "expected an object" in rejected[4]["reason"]


def test_gzip_csv_and_jsonl_and_json_array(tmp_path):
    csv = tmp_path / "a.csv.gz"
    with gzip.open(csv, "wt", encoding="utf-8") as handle:
        handle.write("id,body\n1,one\n")
    jsonl = tmp_path / "b.jsonl.gz"
    with gzip.open(jsonl, "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": "2", "body": "two"}) + "\n")
    array = tmp_path / "c.json"
    array.write_text(json.dumps([{"id": "3", "body": "three"}, {"id": "4", "body": "four"}]), encoding="utf-8")
    articles = rec.load_articles([csv, jsonl, array])
    assert articles["article_id"].tolist() == ["1", "2", "3", "4"]


def test_parquet_round_trip_and_numeric_ids(tmp_path):
    path = tmp_path / "a.parquet"
    pd.DataFrame({"id": [7, 8], "title": ["Seven", "Eight"], "views": [1.5, 2.0]}).to_parquet(path)
    articles = rec.load_articles(path)
    assert articles["article_id"].tolist() == ["7", "8"]
    assert articles["views"].tolist() == [1.5, 2.0]


def test_duplicates_across_files_name_the_first_file(tmp_path):
    (tmp_path / "a.csv").write_text("id,body\nx,one\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text("id,body\nx,two\n", encoding="utf-8")
    articles = rec.load_articles([tmp_path / "a.csv", tmp_path / "b.csv"])
    assert articles["body"].tolist() == ["one"]
    (only,) = articles.attrs["rejected"]
    assert only["source"] == "b.csv" and "a.csv, row 1" in only["reason"]


def test_bom_and_crlf_csv(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes("\ufeffid,title\r\n1,Caf\u00e9 opens\r\n".encode())
    articles = rec.load_articles(path)
    assert articles["article_id"].tolist() == ["1"] and articles["title"].tolist() == ["Caf\u00e9 opens"]


def test_non_utf8_file_is_a_clear_error(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"id,title\n1,caf\xe9\n")
    with pytest.raises(rec.SchemaError, match="not valid UTF-8"):
        rec.load_articles(path)


def test_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.csv"):
        rec.load_articles(tmp_path / "missing.csv")
    (tmp_path / "a.xlsx").write_bytes(b"x")
    with pytest.raises(rec.SchemaError, match="Unsupported input"):
        rec.load_articles(tmp_path / "a.xlsx")
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    with pytest.raises(rec.SchemaError, match="empty"):
        rec.load_articles(tmp_path / "empty.csv")
    with pytest.raises(rec.SchemaError, match="No input"):
        rec.load_articles([])


def test_header_only_csv_gives_an_empty_table(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("id,title,body\n", encoding="utf-8")
    articles = rec.load_articles(path)
    assert len(articles) == 0 and list(articles.columns) == list(rec.COLUMNS)


def test_folder_of_pages(tmp_path):
    for number, views in [(1, "1,204"), (2, "35")]:
        text = PAGE.format(title=f"Harbour storm day {number}", views=views, day=number, lede=f"Storm lede {number}.")
        (tmp_path / f"story-{number}.txt").write_text(text, encoding="utf-8")
    (tmp_path / "broken.txt").write_text("just one line\n", encoding="utf-8")
    articles = rec.load_articles(tmp_path)
    assert articles["article_id"].tolist() == ["story-1", "story-2"]
    assert articles["views"].tolist() == [1204.0, 35.0]
    assert articles["summary"].tolist() == ["Storm lede 1.", "Storm lede 2."]
    assert articles["published"].iloc[0] == pd.Timestamp("2024-03-01 09:30", tz="UTC")
    assert not any("You Might Like" in body for body in articles["body"])
    (bad,) = articles.attrs["rejected"]
    assert bad["article_id"] == "broken" and bad["reason"]


def test_rejected_frame_and_concat_of_loaded_tables():
    first = rec.load_articles(pd.DataFrame({"id": ["a", "a"], "body": ["x", "y"]}))
    second = rec.load_articles(pd.DataFrame({"id": ["b", ""], "body": ["x", "y"]}))
    assert list(rec.rejected_frame(first).columns) == ["source", "row", "article_id", "reason"]
    assert len(rec.rejected_frame(first)) == 1
    assert rec.rejected_frame(rec.load_articles(pd.DataFrame({"id": ["a"], "body": ["x"]}))).empty
    both = pd.concat([first, second], ignore_index=True)  # attrs must not break pandas operations
    assert len(both) == 2


def test_validation_is_idempotent_and_keeps_earlier_rejections():
    articles = rec.load_articles(pd.DataFrame({"id": ["a", "a", "b"], "body": ["x", "y", "z"]}))
    again = rec.validate_articles(articles)
    pd.testing.assert_frame_equal(again, articles)
    assert again.attrs["rejected"] == articles.attrs["rejected"]


@given(
    ids=st.lists(st.text(min_size=0, max_size=4), min_size=1, max_size=30),
    views=st.lists(
        st.one_of(st.none(), st.integers(-5, 5), st.sampled_from(["x", "1,000", ""])), min_size=30, max_size=30
    ),
)
def test_every_row_is_kept_or_rejected(ids, views):
    frame = pd.DataFrame({"article_id": ids, "body": ["some text"] * len(ids), "views": views[: len(ids)]})
    articles = rec.load_articles(frame)
    kept = len(articles)
    rejected = articles.attrs["rejected"]
    assert kept + len(rejected) == len(frame)
    assert articles["article_id"].is_unique
    assert (articles["views"].dropna() >= 0).all()
    assert sorted([r["row"] for r in rejected]) == [r["row"] for r in rejected]
