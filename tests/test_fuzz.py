"""Fuzzing: ingest and ranking invariants over generated messy tables and raw pages.

CI runs the bounded ``ci`` profile (60 cases per test); the ``thorough`` profile runs
thousands: ``HYPOTHESIS_PROFILE=thorough pytest tests/test_fuzz.py``.
"""

from __future__ import annotations

import csv as csv_module
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import messy_tables, raw_pages

import recommender as rec
from recommender._errors import PageFormatError
from recommender._pages import parse_page


def check_table(table: pd.DataFrame, n_rows: int) -> None:
    """The invariants of every table load_articles returns."""
    rejected = table.attrs["rejected"]
    assert len(table) + len(rejected) == n_rows  # every row kept or rejected, none lost
    assert list(table.columns) == list(rec.COLUMNS)
    ids = table["article_id"].tolist()
    assert all(isinstance(a, str) and a.strip() for a in ids) and len(set(ids)) == len(ids)
    for name in ("title", "summary", "body"):
        assert all(isinstance(t, str) for t in table[name])
    assert all(any(table[name][i].strip() for name in ("title", "summary", "body")) for i in range(len(table)))
    views = table["views"].to_numpy()
    assert np.all(np.isnan(views) | (np.isfinite(views) & (views >= 0)))
    assert str(table["published"].dtype) == "datetime64[ns, UTC]"
    assert all(isinstance(r["reason"], str) and r["reason"] and "\n" not in r["reason"] for r in rejected)
    rows = [(r["source"], r["row"]) for r in rejected if r["row"] is not None]
    assert len(rows) == len(set(rows)) and all(1 <= row <= n_rows for _, row in rows)
    flagged = table.attrs["flagged"]
    assert {f["article_id"] for f in flagged} <= set(ids)
    dates = dict(zip(ids, table["published"], strict=True))
    assert all(dates[f["article_id"]] > pd.Timestamp("2026-01-01", tz="UTC") for f in flagged)


@given(frame=messy_tables())
def test_ingest_keeps_or_rejects_every_row_with_a_reason(frame: pd.DataFrame) -> None:
    table = rec.load_articles(frame)
    check_table(table, len(frame))
    if table.attrs["rejected"]:
        with pytest.raises(rec.ArticleValidationError):
            rec.load_articles(frame, strict=True)
    else:
        pd.testing.assert_frame_equal(rec.load_articles(frame, strict=True), table)
    again = rec.validate_articles(table)  # idempotent: nothing new rejected or flagged
    pd.testing.assert_frame_equal(again, table)
    assert again.attrs == table.attrs


@given(frame=messy_tables())
def test_ingest_from_csv_and_json_lines_keeps_or_rejects_every_row(frame: pd.DataFrame) -> None:
    with tempfile.TemporaryDirectory() as folder:
        csv = Path(folder) / "export.csv"
        frame.to_csv(csv, index=False, quoting=csv_module.QUOTE_ALL)  # pandas leaves a lone "\r" unquoted
        check_table(rec.load_articles(csv), len(frame))
        if len(frame):
            lines = Path(folder) / "export.jsonl"
            frame.to_json(lines, orient="records", lines=True, default_handler=str)
            check_table(rec.load_articles(lines), len(frame))


@given(frame=messy_tables(max_size=10), k=st.integers(min_value=1, max_value=6), draft=st.text(max_size=40))
def test_models_of_messy_tables_give_valid_lists(frame: pd.DataFrame, k: int, draft: str) -> None:
    table = rec.load_articles(frame)
    assume(len(table) > 0)
    model = rec.Recommender(min_df=1, max_df=1.0, pool_size=8).fit(table)
    ids = set(table["article_id"])
    for source in table["article_id"]:
        got = model.recommend(source, k=k)
        listed = [r.article_id for r in got]
        assert len(listed) <= k and source not in listed and len(set(listed)) == len(listed) and set(listed) <= ids
        assert all(np.isfinite(r.score) and np.isfinite(r.similarity) for r in got)
        assert [r.rank for r in got] == list(range(1, len(got) + 1))
    if not draft.strip():  # no text at all is the caller's error (HTTP 422)
        with pytest.raises(ValueError, match="needs some text"):
            model.recommend_for_text(title=draft, body=draft, k=k)
        return
    drafted = model.recommend_for_text(title=draft, body=draft, k=k)
    assert len(drafted) <= k and {r.article_id for r in drafted} <= ids


@given(text=raw_pages())
def test_any_text_is_a_page_or_a_page_format_error(text: str) -> None:
    try:
        record = parse_page(text, "p-1")
    except PageFormatError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert record["article_id"] == "p-1"
    assert isinstance(record["title"], str) and record["title"].strip() and "\n" not in record["title"]
    assert isinstance(record["summary"], str) and isinstance(record["body"], str)
    assert record["views"] is None or isinstance(record["views"], (int, str))


@given(
    files=st.lists(
        st.one_of(raw_pages().map(lambda t: t.encode("utf-8")), st.binary(max_size=300)), min_size=1, max_size=5
    )
)
def test_a_folder_of_anything_is_read_or_rejected_file_by_file(files: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        for i, content in enumerate(files):
            (Path(folder) / f"page-{i}.txt").write_bytes(content)
        table = rec.load_articles(folder)
    check_table(table, len(files))
    assert set(table["article_id"]) | {r["article_id"] for r in table.attrs["rejected"]} == {
        f"page-{i}" for i in range(len(files))
    }
