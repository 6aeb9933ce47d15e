"""Hypothesis strategies shared by the property tests."""

from __future__ import annotations

import pandas as pd
from hypothesis import strategies as st

#: A small vocabulary so that generated articles share terms (and have neighbours).
WORDS = (
    "goal cup final striker keeper penalty match league coach season "
    "election vote ballot parliament minister poll campaign party seat count "
    "storm flood harbour ferry rain wind coast river bridge road "
    "market shares bank rates inflation trade export price oil growth"
).split()

texts = st.lists(st.sampled_from(WORDS), min_size=1, max_size=12).map(" ".join)
#: Sentences long enough to be judged for copies: bodies made of a few of them copy, overlap and chain.
SENTENCES = (
    "the striker scored a late goal and the coach praised the keeper after the cup final in the league",
    "the minister said the election campaign would end with a vote count in every seat of parliament",
    "a storm with strong wind and rain closed the harbour and the ferry to the coast for two days",
    "the river flood reached the bridge and the road so the council closed both until the water fell",
    "the bank said inflation and oil prices would slow growth and trade this season across the market",
    "shares in the export firm rose after the bank cut rates and the price of oil fell in the market",
    "the party campaign for the poll promised the minister a seat and a count of every ballot cast",
    "the coach said the penalty decided the match and the season for the league and the cup final",
)
copied_texts = st.lists(st.sampled_from(SENTENCES), min_size=1, max_size=5).map(". ".join)
optional_views = st.one_of(st.none(), st.integers(min_value=0, max_value=10**7))
optional_dates = st.one_of(
    st.none(),
    st.dates(min_value=pd.Timestamp("2015-01-01").date(), max_value=pd.Timestamp("2025-12-31").date()).map(str),
)


@st.composite
def article_tables(
    draw: st.DrawFn, min_size: int = 2, max_size: int = 25, bodies: st.SearchStrategy[str] = texts
) -> pd.DataFrame:
    """Valid article tables: unique ids, some text, optional views and dates."""
    n = draw(st.integers(min_value=min_size, max_value=max_size))
    ids = draw(st.lists(st.text("abcdef0123456789-", min_size=1, max_size=6), min_size=n, max_size=n, unique=True))
    return pd.DataFrame(
        {
            "article_id": ids,
            "title": draw(st.lists(texts, min_size=n, max_size=n)),
            "body": draw(st.lists(bodies, min_size=n, max_size=n)),
            "views": draw(st.lists(optional_views, min_size=n, max_size=n)),
            "published": draw(st.lists(optional_dates, min_size=n, max_size=n)),
        }
    )


# --------------------------------------------------------------------------- messy input (fuzzing)

#: Values a real export holds in an id column: strings, numbers, blanks, look-alikes.
messy_ids = st.one_of(
    st.text("abc0123456789-_ ", min_size=0, max_size=5),
    st.integers(min_value=-5, max_value=50),
    st.sampled_from(["007", "7", 7.0, " 7 ", None, float("nan"), ""]),
)
#: Text with words, HTML, entities, stop words, blanks, control and non-ASCII characters.
messy_texts = st.one_of(
    texts,
    st.none(),
    st.just(float("nan")),
    st.sampled_from(["", "   ", "the and of it", "<p>goal &amp; <b>cup</b></p>", "caf\u00e9 na\u00efve", "\x00\x01"]),
    st.text(max_size=40),
)
#: View counts as exports write them: numbers, strings with separators, junk, bounds.
messy_views = st.one_of(
    st.none(),
    st.integers(min_value=-10, max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["1,234", "12.5", "-3", "many", "", " 42 ", "1e30", "inf", True]),
)
#: Dates in several formats and zones, out of range, in the future, numbers, junk.
messy_dates = st.one_of(
    st.none(),
    st.datetimes(
        min_value=pd.Timestamp("1990-01-01").to_pydatetime(), max_value=pd.Timestamp("2200-01-01").to_pydatetime()
    ).map(str),
    st.sampled_from(
        [
            "2024-02-29",
            "2024-02-30",
            "2024-03-01T10:00:00+05:30",
            "01 March 2024",
            "March 1, 2024 10:00 PM",
            "2999-01-01",
            "yesterday",
            "",
            1.7e9,
            1.7e12,
        ]
    ),
)


@st.composite
def messy_tables(draw: st.DrawFn, max_size: int = 12) -> pd.DataFrame:
    """Article tables as exports really come: any mix of good and bad values in every column."""
    n = draw(st.integers(min_value=0, max_value=max_size))

    def column(values: st.SearchStrategy) -> list:
        return draw(st.lists(values, min_size=n, max_size=n))

    frame = pd.DataFrame(
        {
            "id": column(messy_ids),
            "headline": column(messy_texts),
            "body": column(messy_texts),
            "views": column(messy_views),
            "published": column(messy_dates),
            "section": column(st.one_of(st.none(), st.sampled_from(["sport", " Sport ", "", "politics"]))),
            "tags": column(st.one_of(st.none(), st.sampled_from(["a;b", ";", "x", ""]), st.lists(texts, max_size=3))),
        },
        dtype=object,
    )
    return frame


_page_line = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@st.composite
def raw_pages(draw: st.DrawFn) -> str:
    """Text that may or may not be a page: the parts of one, shuffled, dropped or replaced by noise."""
    parts = [
        *draw(st.lists(_page_line, max_size=3)),  # banner
        draw(_page_line),  # title
        draw(st.sampled_from(["Views: 1,234", "Views: 7", "Views: many", "Views:", "views 12", ""])),
        draw(st.sampled_from(["2024-03-01 10:00", "2024-13-45 99:99", "01/03/2024", "", "Views: 3"])),
        *draw(st.lists(_page_line, max_size=6)),  # lede and body
    ]
    if draw(st.booleans()):
        parts = draw(st.permutations(parts))
    if draw(st.booleans()):
        parts += ["", "You Might Like...", *draw(st.lists(_page_line, max_size=2))]
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return draw(st.sampled_from(["", "\ufeff"])) + newline.join(parts)
