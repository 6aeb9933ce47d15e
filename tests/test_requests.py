"""Requests that cost what they should: fallback fills under a date window, copy keys of long drafts,
windows too long for the clock."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import WORDS

import recommender as rec
from recommender import _duplicates
from recommender._dates import DAY_NS, NAT
from recommender._duplicates import text_key, text_keys


@pytest.fixture(scope="module")
def dated_model() -> rec.Recommender:
    """Two years of articles, a few undated, a few copies (so representatives matter)."""
    rng = np.random.default_rng(3)
    n = 400
    days = rng.integers(0, 730, n)
    published = [
        None if i % 37 == 0 else str(pd.Timestamp("2023-01-01") + pd.Timedelta(days=int(d))) for i, d in enumerate(days)
    ]
    bodies = [" ".join(rng.choice(WORDS, 25)) for _ in range(n)]
    bodies[5] = bodies[4]  # an exact copy
    frame = pd.DataFrame(
        {
            "article_id": [f"a{i}" for i in range(n)],
            "title": [" ".join(rng.choice(WORDS, 3)) for _ in range(n)],
            "body": bodies,
            "published": published,
            "views": rng.integers(0, 10_000, n),
            "category": rng.choice(["sport", "politics", "weather"], n),
        }
    )  # fmt: skip
    return rec.Recommender(min_df=1, pool_size=5).fit(frame)


@given(
    source=st.one_of(
        st.just(NAT), st.integers(0, 800).map(lambda d: int(pd.Timestamp("2023-01-01").value) + d * DAY_NS)
    ),
    max_age_days=st.one_of(st.none(), st.floats(0, 400), st.just(1e300)),
    past_only=st.booleans(),
)
def test_a_windowed_fallback_order_is_the_full_order_inside_the_window(
    dated_model: rec.Recommender, source: int, max_age_days: float | None, past_only: bool
) -> None:
    catalogue = dated_model._state.catalogue
    full = catalogue.fallback_order()
    windowed = catalogue.fallback_order(source, max_age_days=max_age_days, past_only=past_only)
    published = catalogue.published_ns

    def inside(row: int) -> bool:  # the rule of the hard filters, written out
        if source == NAT or published[row] == NAT:
            return True
        gap = abs(int(published[row]) - source) / DAY_NS
        return (max_age_days is None or gap <= max_age_days) and (not past_only or published[row] <= source)

    expected = [r for r in full.tolist() if inside(r)]
    assert [r for r in windowed.tolist() if inside(r)] == expected
    if source != NAT and max_age_days is not None and max_age_days < 30:
        # a fill looks at what the window holds, not the whole catalogue (a 1 ms margin aside)
        assert len(windowed) <= len(expected) + 2


def test_short_lists_under_a_hard_window_are_filled_like_before(dated_model: rec.Recommender) -> None:
    frame = dated_model.recommend_frame(k=5, max_age_days=3, same_category=True)
    filled = frame[frame["reason"] == "fallback"]
    assert len(filled) > 0
    catalogue = dated_model.articles_.set_index("article_id")
    for source, item in zip(filled["article_id"], filled["recommended_id"], strict=True):
        a, b = catalogue.loc[source, "published"], catalogue.loc[item, "published"]
        assert pd.isna(a) or pd.isna(b) or abs(a - b) <= pd.Timedelta(days=3)
    popular = dated_model.popular(k=400)
    shown = [r.article_id for r in popular]
    assert len(set(shown)) == len(shown) and ("a4" in shown) != ("a5" in shown)  # one story shown once
    assert [r.article_id for r in dated_model.popular(k=3, category="sport")] == [
        r.article_id for r in popular if r.category == "sport"
    ][:3]
    assert dated_model.popular(k=3, category="no such category") == []


def _old_key(title: str, summary: str, body: str) -> int:
    text = " ".join(f"{title}\n{summary}\n{body}".lower().split())
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


_spaced = st.text(st.sampled_from(list("aΣςb ÉİﬃΣ\t\n\x1c\u2028\u00a0Σ.")), max_size=60)


_ascii = st.text(st.sampled_from(list("aZb Q.\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x00\x7f")), max_size=40)


@given(st.lists(st.tuples(_ascii, _ascii, _ascii | _spaced), max_size=6))
def test_copy_keys_of_ascii_articles_by_the_compiled_pass_equal_the_key_of_the_whole_text(articles) -> None:
    """Most articles are ASCII and keyed by a compiled pass: the same keys as every saved model's."""
    titles, summaries, bodies = ([a[f] for a in articles] for f in range(3))
    expected = [_old_key(t, s, b) for t, s, b in articles]
    assert text_keys(titles, summaries, bodies).tolist() == expected


@given(title=_spaced, summary=_spaced, body=_spaced)
def test_copy_keys_in_pieces_equal_the_key_of_the_whole_text(title: str, summary: str, body: str) -> None:
    expected = _old_key(title, summary, body)  # what every saved model's text_keys were computed with
    assert text_key(title, summary, body) == expected
    original = _duplicates._KEY_PIECE
    try:
        _duplicates._KEY_PIECE = 3  # pieces cut inside every text
        assert text_key(title, summary, body) == expected
        assert text_keys([title], [summary], [body])[0] == expected
    finally:
        _duplicates._KEY_PIECE = original


def test_a_draft_identical_to_a_long_stored_article_is_not_recommended_to_itself() -> None:
    long_body = " ".join(["The storm closed the harbour and the ferry routes on the coast for two days."] * 60)
    frame = pd.DataFrame(
        {
            "article_id": ["long", "near", "other"],
            "title": ["Storm closes the harbour", "Storm shuts harbour", "Cup final"],
            "body": [
                long_body,
                "Ferries resumed on the coast once the storm passed the harbour.",
                "United won the cup.",
            ],
        }
    )
    model = rec.Recommender(min_df=1, text_limit=500, duplicate_threshold=None).fit(frame)
    assert len(long_body) > 4 * 500
    listed = [r.article_id for r in model.recommend_for_text(title="Storm closes the harbour", body=long_body, k=2)]
    assert listed == ["near", "other"]  # not the stored copy, not even as a fallback
    edited = long_body + " One more sentence at the end."
    assert "long" in [r.article_id for r in model.recommend_for_text(title="Storm closes the harbour", body=edited)]


@pytest.mark.parametrize("days", [math.inf, 1e300, float("nan"), -1, True])
def test_a_fallback_window_the_clock_cannot_hold_is_refused(days, newsroom: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="fallback_days must be a number of days in"):
        rec.Recommender(fallback_days=days).fit(newsroom)
