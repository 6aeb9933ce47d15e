"""Ingest, round two: every row accounted for, by the same rules in every format.

Glued CSV records, numeric and relative dates, entries of a page folder, columns
read twice, Parquet text stored as bytes, JSON lines that the parser cannot hold,
text that is not valid Unicode, oversized fields, and the CLI's one line when
memory runs out.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import recommender as rec
from recommender._cli import main

BODY = "The storm closed the harbour and the ferry routes on the coast."


def reasons(table: pd.DataFrame) -> dict[str | None, str]:
    return {r["article_id"]: r["reason"] for r in table.attrs["rejected"]}


# --------------------------------------------------------------------------- CSV


def test_a_quote_left_open_in_a_title_rejects_the_glued_record_naming_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(
        "article_id,title,body\n"
        f"a1,Storm closes harbour,{BODY}\n"
        f'a2,"Ferry routes cut,{BODY}\n'
        f"a3,Harbour reopens,{BODY}\n"
        f'a4,Cup final",{BODY}\n'
        f"a5,Late goal wins the cup,{BODY}\n",
        encoding="utf-8",
    )
    table = rec.load_articles(path)
    assert table["article_id"].tolist() == ["a1", "a5"]
    why = reasons(table)
    assert set(why) == {"a2"}
    assert "line break inside 'title' (lines 3-5)" in why["a2"] and "swallowed" in why["a2"]


def test_quoted_multi_line_bodies_are_everyday_csv(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    frame = pd.DataFrame(
        {
            "article_id": ["a1", "a2", "a3"],
            "title": ['Storm, "again"', "Ferry", "Cup"],
            "body": [f"{BODY}\n\nSecond paragraph, with commas.", "One line.", "Para one.\r\nPara two."],
        }
    )
    frame.to_csv(path, index=False)
    table = rec.load_articles(path)
    assert table["article_id"].tolist() == ["a1", "a2", "a3"] and table.attrs["rejected"] == []
    assert table["body"].tolist() == frame["body"].tolist() and table["title"].tolist() == frame["title"].tolist()


def test_records_with_the_wrong_number_of_fields_are_rejected_one_by_one(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(f"article_id,title,body\na1,Storm,{BODY}\na2,Ferry\na3,Cup,goal,extra\na4,Vote,{BODY}\n")
    table = rec.load_articles(path)
    assert table["article_id"].tolist() == ["a1", "a4"]
    why = reasons(table)
    assert why["a2"].startswith("2 fields where the header has 3 (line 3)")
    assert why["a3"].startswith("4 fields where the header has 3 (line 4)")


def test_broken_quoting_refuses_the_file_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(f'article_id,title,body\na1,Storm,{BODY}\na2,"Ferry" routes,{BODY}\n')
    with pytest.raises(rec.SchemaError, match=r"export.csv' is not well-formed CSV \(line 3\)"):
        rec.load_articles(path)


# --------------------------------------------------------------------------- dates


def test_numeric_dates_read_the_same_in_csv_and_json(tmp_path: Path) -> None:
    values = ["1714550400", "1714550400123", "20240501", "2024", "1.5e9"]
    csv_path, jsonl_path = tmp_path / "a.csv", tmp_path / "a.jsonl"
    pd.DataFrame({"article_id": [f"a{i}" for i in range(5)], "body": BODY, "published": values}).to_csv(
        csv_path, index=False
    )
    with open(jsonl_path, "w", encoding="utf-8") as handle:
        for i, value in enumerate(values):
            number = float(value) if "." in value or "e" in value else int(value)
            handle.write(json.dumps({"article_id": f"a{i}", "body": BODY, "published": number}) + "\n")
    from_csv, from_json = rec.load_articles(csv_path), rec.load_articles(jsonl_path)
    assert from_csv.attrs["rejected"] == [] and from_json.attrs["rejected"] == []
    assert from_csv["published"].tolist() == from_json["published"].tolist()
    assert [str(p) for p in from_csv["published"]] == [
        "2024-05-01 08:00:00+00:00",
        "2024-05-01 08:00:00.123000+00:00",
        "2024-05-01 00:00:00+00:00",
        "2024-01-01 00:00:00+00:00",
        "2017-07-14 02:40:00+00:00",
    ]


@pytest.mark.parametrize("word", ["now", "Today", " yesterday ", "TOMORROW"])
def test_relative_dates_are_rejected_so_every_build_gives_the_same_lists(word: str) -> None:
    table = rec.load_articles(
        pd.DataFrame({"article_id": ["a1", "a2"], "body": BODY, "published": [word, "2024-05-01"]})
    )
    assert table["article_id"].tolist() == ["a2"]
    assert "relative date" in reasons(table)["a1"]


# --------------------------------------------------------------------------- pages, columns


def test_a_page_folder_reports_what_it_does_not_read(tmp_path: Path) -> None:
    page = "Storm closes the harbour\nViews: 12\n2024-05-01 09:00\nThe storm closed the harbour.\n"
    (tmp_path / "A2.TXT").write_text(page, encoding="utf-8")
    (tmp_path / "a1.txt").write_text(page, encoding="utf-8")
    (tmp_path / "extra.csv").write_text("article_id,title\nx,y\n", encoding="utf-8")
    table = rec.load_articles(tmp_path)
    assert sorted(table["article_id"]) == ["A2", "a1"]
    rejected = table.attrs["rejected"]
    assert [r["source"] for r in rejected] == ["extra.csv"]
    assert "not a .txt page. Give it as an input of its own." in rejected[0]["reason"]


def test_a_column_read_twice_is_refused_naming_both(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(f"article_id,title,Title,body\na1,One,Two,{BODY}\n", encoding="utf-8")
    with pytest.raises(rec.SchemaError, match=r"Columns 'title' and 'Title' are both read as 'title'"):
        rec.load_articles(path)
    frame = pd.DataFrame([["a1", "One", "Two", BODY]], columns=["article_id", "title", "title", "body"])
    with pytest.raises(rec.SchemaError, match=r"Columns 'title' and 'title' are both read as 'title'"):
        rec.load_articles(frame)


# --------------------------------------------------------------------------- Parquet bytes, JSON lines, Unicode


def test_parquet_text_stored_as_bytes_reads_as_text(tmp_path: Path) -> None:
    path = tmp_path / "hive.parquet"
    table = pa.table(
        {
            "article_id": pa.array([b"a1", b"a2", b"a3"], type=pa.binary()),
            "title": pa.array(["Wählen".encode(), b"Ferry", b"\xff\xfe broken"], type=pa.binary()),
            "body": pa.array([BODY.encode()] * 3, type=pa.binary()),
        }
    )
    pq.write_table(table, path)
    articles = rec.load_articles(path)
    assert articles["article_id"].tolist() == ["a1", "a2"]
    assert articles["title"].tolist() == ["Wählen", "Ferry"]
    assert "title is not valid text" in reasons(articles)["a3"]


def test_json_lines_the_parser_cannot_hold_are_rejected_one_by_one(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    lines = [
        json.dumps({"article_id": "a1", "body": BODY}),
        '{"article_id": "a2", "views": ' + "9" * 5000 + ', "body": "x"}',
        '{"article_id": "a3", "body": ' + "[" * 100_000 + "]" * 100_000 + "}",
        json.dumps({"article_id": "a4", "body": BODY}),
        '{"article_id": "bad\\ud800", "body": "storm"}',
        '{"article_id": "a6", "title": "x\\udfff", "body": "storm"}',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    table = rec.load_articles(path)
    assert table["article_id"].tolist() == ["a1", "a4"]
    rows = {r["row"]: r["reason"] for r in table.attrs["rejected"]}
    assert rows[2].startswith("unreadable JSON line: Exceeds the limit")
    assert rows[3] == "unreadable JSON line: nested too deeply"
    assert "article_id is not valid text" in rows[5] and "title is not valid text" in rows[6]
    model = rec.Recommender(min_df=1).fit(table)
    model.save(tmp_path / "model")  # what is kept can be saved
    assert rec.load_model(tmp_path / "model").n_articles == 2


# --------------------------------------------------------------------------- size


def test_fields_over_the_limit_reject_their_row_in_every_format(tmp_path: Path) -> None:
    frame = pd.DataFrame({"article_id": ["a1", "a2"], "body": [BODY, "x" * 5_000]})
    frame.to_csv(tmp_path / "a.csv.gz", index=False)
    frame.to_parquet(tmp_path / "a.parquet")
    for source in (frame, tmp_path / "a.csv.gz", tmp_path / "a.parquet"):
        table = rec.load_articles(source, max_field_chars=1_000)
        assert table["article_id"].tolist() == ["a1"], source
        assert reasons(table)["a2"] == (
            "body has 5,000 characters, over the limit of 1,000 (max_field_chars; raise it to keep such rows)"
        )
        assert rec.load_articles(source)["article_id"].tolist() == ["a1", "a2"]  # the default keeps both
    with pytest.raises(ValueError, match="max_field_chars must be an integer >= 1"):
        rec.load_articles(frame, max_field_chars=0)


def test_a_large_gzip_export_streams_and_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "big.csv.gz"
    n = 20_000
    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        handle.write("article_id,title,body\n")
        for i in range(n):
            handle.write(f'a{i},"Title {i}, quoted","{BODY}\n{BODY}"\n')
    assert path.stat().st_size < 200_000  # about 100x smaller than what it holds: no ratio rule refuses it
    table = rec.load_articles(path)
    assert len(table) == n and table.attrs["rejected"] == []


def test_the_cli_prints_one_line_when_memory_runs_out(tmp_path: Path, capsys, monkeypatch) -> None:
    import recommender._cli as cli

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(cli, "load_articles", exhausted)
    assert main(["build", str(tmp_path / "a.csv"), "--out", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("recommender: error: out of memory during `build`")


def test_max_field_chars_on_the_command_line(tmp_path: Path, capsys) -> None:
    pd.DataFrame({"article_id": ["a1", "a2", "a3"], "body": [BODY, BODY + " ferry", "y" * 3_000]}).to_csv(
        tmp_path / "a.csv", index=False
    )
    assert main(["build", str(tmp_path / "a.csv"), "--out", str(tmp_path / "m"), "--max-field-chars", "2000"]) == 0
    assert rec.load_model(tmp_path / "m").n_articles == 2
    assert "rejected 1 rows" in capsys.readouterr().out
