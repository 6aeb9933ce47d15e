"""The popularity prior and the blend: pure functions checked on numbers a reader can follow."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recommender._ranking import age_days, popularity

DAY = 86_400 * 10**9
NAT = np.iinfo(np.int64).min


def test_age_is_days_at_reference_at_least_one_and_median_for_undated():
    published = np.array([0, 2 * DAY, 10 * DAY, 11 * DAY, NAT], dtype=np.int64)
    age = age_days(published, 10 * DAY)
    np.testing.assert_allclose(age[:4], [10, 8, 1, 1])  # future article: age 1
    assert age[4] == np.median([10, 8, 1, 1])


def test_popularity_is_log_views_per_day_scaled_to_one():
    views = np.array([0.0, 9.0, 99.0, np.nan])
    published = np.zeros(4, dtype=np.int64)
    prior = popularity(views, published, DAY)  # all one day old
    assert prior[3] == 0 and prior[0] == 0
    assert prior[2] == pytest.approx(1.0)
    p99 = np.percentile(np.log1p([0.0, 9.0, 99.0]), 99)
    assert prior[1] == pytest.approx(np.log1p(9.0) / p99, rel=1e-6)


def test_no_views_anywhere_gives_zero_prior():
    assert not popularity(np.full(3, np.nan), np.zeros(3, dtype=np.int64), 0).any()


@given(st.lists(st.floats(0, 1e12), min_size=1, max_size=30))
def test_popularity_is_bounded_and_monotone_in_views(views):
    views = np.array(views)
    prior = popularity(views, np.zeros(len(views), dtype=np.int64), DAY)
    assert ((prior >= 0) & (prior <= 1)).all()
    order = np.argsort(views, kind="stable")
    assert (np.diff(prior[order]) >= -1e-7).all()


@given(st.integers(0, 10_000), st.integers(1, 6))
def test_top_entries_by_row_largest_first_ties_by_column(seed, k):
    import scipy.sparse as sp

    from recommender import _ranking

    rng = np.random.default_rng(seed)
    dense = np.round(rng.random((8, 12)) * 4) / 4 * (rng.random((8, 12)) > 0.4)
    columns, values = _ranking.top_entries(sp.csr_matrix(dense.astype(np.float32)), k)
    for row in range(8):
        expected = sorted((-dense[row, c], c) for c in range(12) if dense[row, c] > 0)[:k]
        got = [(-v, c) for c, v in zip(columns[row], values[row], strict=True) if c >= 0]
        assert got == [(pytest.approx(v), c) for v, c in expected]
