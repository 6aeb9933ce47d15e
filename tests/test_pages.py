"""Tests for recommender._pages: parsing raw scraped article pages.

Every page here is invented; the one real example page is only read from the
shared examples folder and checked for structural facts.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recommender._errors import PageFormatError, SchemaError
from recommender._pages import parse_page, read_pages

EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "examples" / "pages"

BANNER = ["Daily Pebble: Your Home for Pebble News", "== Pebble * Net =="]
TITLE = "Village Bakery Wins Regional Bread Prize"
LEDE = "A small bakery in Lower Hamble won the regional bread prize on Saturday"
BODY = [
    LEDE + ", beating forty rivals with a rye loaf baked in a wood oven.",
    "The judges praised the crust. The baker said the recipe was her grandmother's.",
    "The prize comes with a trip to the national final in June.",
]
TRAILER = "You Might Like..."
JUNK = ["Ten Ways to Store Bread", "Why Sourdough Is Everywhere"]


def make_page(
    *,
    banner: list[str] = BANNER,
    title: str | None = TITLE,
    views: str | None = "Views: 5003",
    date: str | None = "2023-05-19 11:25",
    lede: str | None = LEDE,
    body: list[str] = BODY,
    trailer: str | None = TRAILER,
    junk: list[str] = JUNK,
    gap: str = "",
    newline: str = "\n",
) -> str:
    """Assemble a page; ``gap`` is extra blank-line text put between parts."""
    header = [*banner, title, views, date]
    lines = [line for line in header if line is not None]
    if gap:
        lines = [part for line in lines for part in (line, gap)]
    if lede is not None:
        lines.append(lede)
    for paragraph in body:
        lines += ["", gap, paragraph] if gap else ["", paragraph]
    if trailer is not None:
        lines += ["", trailer, *junk]
    return newline.join(lines)


def expected(**changes: object) -> dict[str, object]:
    record: dict[str, object] = {
        "article_id": "a-1",
        "title": TITLE,
        "summary": LEDE,
        "body": "\n\n".join(BODY),
        "published": "2023-05-19 11:25",
        "views": 5003,
    }
    record.update(changes)
    return record


# --- parse_page: the standard layout and its variations ---------------------


def test_standard_page() -> None:
    record = parse_page(make_page(), "a-1")
    assert record == expected()
    assert list(record) == [
        "article_id",
        "title",
        "summary",
        "body",
        "published",
        "views",
    ]


def test_trailer_and_everything_after_it_are_dropped() -> None:
    record = parse_page(make_page(), "a-1")
    body = str(record["body"])
    assert "You Might Like" not in body
    assert all(junk not in body for junk in JUNK)


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_crlf_and_cr_line_endings(newline: str) -> None:
    record = parse_page(make_page(newline=newline), "a-1")
    assert record == expected()
    assert "\r" not in "".join(str(value) for value in record.values())


@pytest.mark.parametrize("gap", ["", "\n", "\n\n\n", " \t\n  "])
def test_extra_blank_lines_between_every_part(gap: str) -> None:
    page = "\n\n" + make_page(gap=gap) + "\n\n\n"
    assert parse_page(page, "a-1") == expected()


@pytest.mark.parametrize(
    "banner",
    [
        [],
        ["Pebble", "Your Home for Pebble News", "----------", "Home | World | Sport"],
    ],
    ids=["no-banner", "four-line-banner"],
)
def test_banner_of_any_length_is_dropped(banner: list[str]) -> None:
    assert parse_page(make_page(banner=banner), "a-1") == expected()


def test_bom_at_start_is_stripped() -> None:
    assert parse_page("\ufeff" + make_page(), "a-1") == expected()
    no_banner = parse_page("\ufeff" + make_page(banner=[]), "a-1")
    assert no_banner["title"] == TITLE


def test_missing_views_line() -> None:
    record = parse_page(make_page(views=None), "a-1")
    assert record == expected(views=None)


@pytest.mark.parametrize(
    ("line", "views"),
    [
        ("Views: 1,234", 1234),
        ("Views: 1,234,567", 1234567),
        ("Views: 0", 0),
        ("  Views:   42  ", 42),
        ("Views:7", 7),
    ],
)
def test_views_numbers(line: str, views: int) -> None:
    assert parse_page(make_page(views=line), "a-1")["views"] == views


@pytest.mark.parametrize(
    ("line", "raw"),
    [
        ("Views: many", "many"),
        ("Views: 1,23", "1,23"),
        ("Views: -5", "-5"),
        ("Views: 12k", "12k"),
        ("Views:", ""),
    ],
)
def test_non_numeric_views_returned_raw(line: str, raw: str) -> None:
    record = parse_page(make_page(views=line), "a-1")
    assert record["views"] == raw
    assert record["title"] == TITLE
    assert record["summary"] == LEDE


def test_date_with_seconds_and_surrounding_whitespace() -> None:
    record = parse_page(make_page(date="  2023-05-19 11:25:42 \t"), "a-1")
    assert record == expected(published="2023-05-19 11:25:42")


def test_trailer_absent() -> None:
    assert parse_page(make_page(trailer=None), "a-1") == expected()


@pytest.mark.parametrize(
    "trailer",
    ["YOU MIGHT LIKE", "YOU MIGHT LIKE...", "You Might Like", "You Might Like:More"],
)
def test_trailer_in_other_spellings(trailer: str) -> None:
    record = parse_page(make_page(trailer=trailer), "a-1")
    assert record == expected()


def test_sentence_case_you_might_like_in_body_is_kept() -> None:
    sentence = "You might like to try the rye loaf, the baker said."
    record = parse_page(make_page(body=[*BODY, sentence]), "a-1")
    assert record["body"] == "\n\n".join([*BODY, sentence])


def test_multi_line_paragraphs_are_joined_by_a_space() -> None:
    page = make_page(
        lede="A small bakery won\nthe regional bread prize.",
        body=["First line\n  second line  ", "Another paragraph."],
    )
    record = parse_page(page, "a-1")
    assert record["summary"] == "A small bakery won the regional bread prize."
    assert record["body"] == "First line second line\n\nAnother paragraph."


def test_lede_only_gives_empty_body() -> None:
    record = parse_page(make_page(body=[]), "a-1")
    assert record == expected(body="")


def test_no_date_but_views_line() -> None:
    record = parse_page(make_page(date=None), "a-1")
    assert record == expected(published=None)


def test_no_date_and_non_numeric_views() -> None:
    record = parse_page(make_page(date=None, views="Views: lots"), "a-1")
    assert record == expected(published=None, views="lots")


def test_body_date_line_does_not_move_the_header() -> None:
    page = make_page(body=[*BODY, "2024-01-01 00:00"])
    record = parse_page(page, "a-1")
    assert record["published"] == "2023-05-19 11:25"
    assert str(record["body"]).endswith("2024-01-01 00:00")


def test_banner_views_like_text_is_not_the_views_line() -> None:
    # Only the line right before the date can be the views line.
    page = make_page(banner=["Views: 99"], views=None)
    record = parse_page(page, "a-1")
    assert record["views"] is None
    assert record["title"] == TITLE


# --- parse_page: errors -----------------------------------------------------


def test_no_date_and_no_views_raises() -> None:
    page = make_page(views=None, date=None)
    with pytest.raises(PageFormatError, match=r"'a-1'.*no date line.*Views"):
        parse_page(page, "a-1")


@pytest.mark.parametrize("text", ["", "\n\n", "  \r\n\t\r\n", "\ufeff"])
def test_empty_text_raises(text: str) -> None:
    with pytest.raises(PageFormatError, match=r"'a-1' is empty"):
        parse_page(text, "a-1")


def test_page_format_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        parse_page("", "a-1")
    assert issubclass(PageFormatError, SchemaError)


@pytest.mark.parametrize(
    ("kwargs", "anchor"),
    [
        ({"banner": [], "title": None}, "'Views:' line"),
        ({"banner": [], "title": None, "views": None}, "date line"),
    ],
)
def test_no_title_line_raises(kwargs: dict[str, object], anchor: str) -> None:
    with pytest.raises(PageFormatError, match=f"'a-1' has no title line.*{anchor}"):
        parse_page(make_page(**kwargs), "a-1")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lede": None, "body": [], "trailer": None},
        {"lede": None, "body": [], "trailer": TRAILER},
        {"lede": None, "body": [], "date": None, "trailer": None},
    ],
)
def test_no_text_after_header_raises(kwargs: dict[str, object]) -> None:
    with pytest.raises(PageFormatError, match=r"'a-1' has no article text"):
        parse_page(make_page(**kwargs), "a-1")  # type: ignore[arg-type]


def test_bytes_raise_type_error() -> None:
    with pytest.raises(TypeError, match=r"expected the page text as str.*bytes"):
        parse_page(make_page().encode(), "a-1")  # type: ignore[arg-type]


# --- read_pages -------------------------------------------------------------


def test_read_pages_parses_folder_and_rejects_bad_files(tmp_path: Path) -> None:
    (tmp_path / "b-2.txt").write_text(make_page(views="Views: 1,234"), "utf-8")
    (tmp_path / "a-1.txt").write_bytes(make_page(newline="\r\n").encode("utf-8"))
    (tmp_path / "c-3.txt").write_bytes(b"Title\nViews: 1\n\xff\xfe bad bytes\n")
    (tmp_path / "d-4.txt").write_text(make_page(views=None, date=None), "utf-8")
    (tmp_path / "e-5.txt").write_bytes(("\ufeff" + make_page()).encode("utf-8"))
    (tmp_path / "F-7.TXT").write_text(make_page(), "utf-8")  # .TXT is a page too
    (tmp_path / "notes.md").write_text("not a page", "utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f-6.txt").write_text(make_page(), "utf-8")

    records, rejections = read_pages(tmp_path)

    assert [r["article_id"] for r in records] == ["F-7", "a-1", "b-2", "e-5"]
    assert records[1] == expected()
    assert records[2] == expected(article_id="b-2", views=1234)
    assert records[3] == expected(article_id="e-5")
    assert [(r["source"], r["article_id"]) for r in rejections] == [
        ("c-3.txt", "c-3"),
        ("d-4.txt", "d-4"),
        ("notes.md", None),  # reported, not skipped without a word
        ("sub", None),
    ]
    assert all(set(r) == {"source", "article_id", "reason"} for r in rejections)
    assert re.search(r"'c-3\.txt'.*not valid UTF-8.*0xff", str(rejections[0]["reason"]))
    assert "no date line" in str(rejections[1]["reason"])
    assert "'notes.md' in a page folder is not a .txt page" in str(rejections[2]["reason"])
    assert "sub-folders are not searched" in str(rejections[3]["reason"])
    assert all("\n" not in str(r["reason"]) for r in rejections)


def test_read_pages_accepts_str_path(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text(make_page(), "utf-8")
    records, rejections = read_pages(str(tmp_path))
    assert records == [expected(article_id="x")]
    assert rejections == []


def test_read_pages_empty_folder_raises(tmp_path: Path) -> None:
    (tmp_path / "readme.md").write_text("no pages here", "utf-8")
    with pytest.raises(PageFormatError, match=r"no \*\.txt files") as info:
        read_pages(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_read_pages_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_pages(tmp_path / "nowhere")
    (tmp_path / "file.txt").write_text(make_page(), "utf-8")
    with pytest.raises(NotADirectoryError, match="not a directory"):
        read_pages(tmp_path / "file.txt")


# --- the real example page (structural facts only) --------------------------


def test_real_example_page_structure() -> None:
    files = sorted(EXAMPLES.glob("*.txt")) if EXAMPLES.is_dir() else []
    if not files:
        pytest.skip(f"no real example pages found in {EXAMPLES}")
    records, rejections = read_pages(EXAMPLES)
    assert rejections == []
    assert len(records) == len(files)
    for file, record in zip(files, records, strict=False):
        raw = file.read_text("utf-8").replace("\r\n", "\n").replace("\r", "\n")
        lines = [line.strip() for line in raw.split("\n") if line.strip()]
        title = str(record["title"])
        assert record["article_id"] == file.stem
        assert title
        # The title is not a banner line: the banner is first, and the line
        # right after the title is the views line.
        assert title != lines[0]
        assert lines[lines.index(title) + 1].startswith("Views:")
        assert isinstance(record["views"], int)
        assert record["published"] is not None
        summary, body = str(record["summary"]), str(record["body"])
        assert summary
        assert "You Might Like" not in body
        assert body.startswith(" ".join(summary.split()[:5]))


# --- property test ----------------------------------------------------------

_DATE_LIKE = re.compile(r"\s*[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}")

# One line of printable text: no line breaks or other control characters, no
# surrounding whitespace, and nothing that the page layout gives a meaning to.
_line = (
    st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
        min_size=1,
        max_size=40,
    )
    .map(str.strip)
    .filter(
        lambda s: (
            bool(s)
            and not s.startswith("Views:")
            and not _DATE_LIKE.match(s)
            and not s.lower().startswith("you might like")
        )
    )
)
_paragraph = st.lists(_line, min_size=1, max_size=3)
_blank = st.sampled_from(["", " ", "\t", "  \t "])


@given(
    banner=st.lists(_line, max_size=4),
    title=_line,
    views=st.one_of(
        st.none(),
        st.integers(min_value=0, max_value=10**9).map(lambda n: (f"{n:,}", n)),
        st.integers(min_value=0, max_value=10**9).map(lambda n: (str(n), n)),
    ),
    date=st.sampled_from([None, "2024-02-29 23:59", "1999-12-31 00:00:59"]),
    lede=_paragraph,
    body=st.lists(_paragraph, max_size=3),
    trailer=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    bom=st.booleans(),
    noise=st.lists(st.lists(_blank, max_size=2), min_size=64, max_size=64),
)
def test_parse_page_recovers_title_summary_and_views(
    banner: list[str],
    title: str,
    views: tuple[str, int] | None,
    date: str | None,
    lede: list[str],
    body: list[list[str]],
    trailer: bool,
    newline: str,
    bom: bool,
    noise: list[list[str]],
) -> None:
    if date is None and views is None:
        views = ("1", 1)
    assert views is not None or date is not None
    blanks = iter(noise)

    def gap() -> list[str]:
        return next(blanks, [])

    lines: list[str] = []
    header = [*banner, title]
    if views is not None:
        header.append(f"Views: {views[0]}")
    if date is not None:
        header.append(date)
    for line in header:
        lines += [line, *gap()]
    lines += lede
    for paragraph in body:
        lines += ["", *gap(), *paragraph]
    lines += gap()
    if trailer:
        lines += ["", "You Might Like...", *banner]
    text = ("\ufeff" if bom else "") + newline.join(lines)

    record = parse_page(text, "p-1")

    assert record["title"] == title
    assert record["summary"] == " ".join(lede)
    assert record["body"] == "\n\n".join(" ".join(p) for p in body)
    assert record["views"] == (None if views is None else views[1])
    assert record["published"] == date
