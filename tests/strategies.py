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
optional_views = st.one_of(st.none(), st.integers(min_value=0, max_value=10**7))
optional_dates = st.one_of(
    st.none(),
    st.dates(min_value=pd.Timestamp("2015-01-01").date(), max_value=pd.Timestamp("2025-12-31").date()).map(str),
)


@st.composite
def article_tables(draw: st.DrawFn, min_size: int = 2, max_size: int = 25) -> pd.DataFrame:
    """Valid article tables: unique ids, some text, optional views and dates."""
    n = draw(st.integers(min_value=min_size, max_value=max_size))
    ids = draw(st.lists(st.text("abcdef0123456789-", min_size=1, max_size=6), min_size=n, max_size=n, unique=True))
    return pd.DataFrame(
        {
            "article_id": ids,
            "title": draw(st.lists(texts, min_size=n, max_size=n)),
            "body": draw(st.lists(texts, min_size=n, max_size=n)),
            "views": draw(st.lists(optional_views, min_size=n, max_size=n)),
            "published": draw(st.lists(optional_dates, min_size=n, max_size=n)),
        }
    )
