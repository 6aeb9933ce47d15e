"""Blocked top-k equals brute force: never self, never a copy, ties by row."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from recommender._neighbours import block_rows_for, top_neighbours


def unit_rows(dense: np.ndarray) -> sp.csr_matrix:
    norms = np.linalg.norm(dense, axis=1, keepdims=True)
    norms[norms == 0] = 1
    return sp.csr_matrix((dense / norms).astype(np.float32))


def brute(vectors: sp.csr_matrix, pool: int, groups: np.ndarray | None = None):
    dense = (vectors @ vectors.T).toarray()
    n = dense.shape[0]
    rows = np.full((n, pool), -1)
    sims = np.zeros((n, pool), dtype=np.float32)
    for i in range(n):
        candidates = [
            (-dense[i, j], j)
            for j in range(n)
            if j != i and dense[i, j] > 0 and (groups is None or groups[i] < 0 or groups[j] != groups[i])
        ]
        best = sorted(candidates)[:pool]
        rows[i, : len(best)] = [j for _, j in best]
        sims[i, : len(best)] = [-s for s, _ in best]
    return rows, sims


@given(
    data=st.data(),
    n=st.integers(1, 30),
    terms=st.integers(1, 8),
    pool=st.integers(1, 10),
    block=st.integers(1, 12),
)
def test_blocked_top_k_equals_brute_force(data, n, terms, pool, block):
    # small integer weights make exact ties common, which exercises the tie-break
    dense = np.array(
        data.draw(st.lists(st.lists(st.integers(0, 2), min_size=terms, max_size=terms), min_size=n, max_size=n)),
        dtype=np.float64,
    )
    groups = np.array(data.draw(st.lists(st.integers(-1, 2), min_size=n, max_size=n)))
    vectors = unit_rows(dense)
    rows, sims = top_neighbours(vectors, pool, groups=groups, block_rows=block)
    expected_rows, expected_sims = brute(vectors, pool, groups)
    np.testing.assert_allclose(sims, expected_sims, atol=1e-5)
    # where similarities are distinct (beyond float noise) the rows must match exactly
    distinct = np.abs(np.diff(np.concatenate([expected_sims, np.zeros((n, 1))], axis=1), axis=1)) > 1e-4
    distinct &= np.abs(np.diff(np.concatenate([np.full((n, 1), 2.0), expected_sims], axis=1), axis=1)) > 1e-4
    assert (rows[distinct] == expected_rows[distinct]).all()
    assert not (rows == np.arange(n)[:, None]).any()


def test_ties_are_broken_by_row():
    vectors = unit_rows(np.ones((5, 2)))  # all identical vectors: every pair ties at 1.0
    rows, sims = top_neighbours(vectors, 3)
    assert rows.tolist() == [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2], [0, 1, 2]]
    np.testing.assert_allclose(sims, 1.0, rtol=1e-6)


def test_empty_slots_are_minus_one_and_zero():
    vectors = unit_rows(np.array([[1.0, 0], [0, 1.0], [1.0, 0]]))
    rows, sims = top_neighbours(vectors, 2)
    assert rows.tolist() == [[2, -1], [-1, -1], [0, -1]]
    assert sims[1].tolist() == [0.0, 0.0]


def test_parallel_blocks_equal_serial():
    rng = np.random.default_rng(0)
    vectors = unit_rows(rng.random((40, 6)) * (rng.random((40, 6)) > 0.5))
    serial = top_neighbours(vectors, 5, block_rows=7)
    parallel = top_neighbours(vectors, 5, block_rows=7, n_jobs=2)
    np.testing.assert_array_equal(serial[0], parallel[0])
    np.testing.assert_array_equal(serial[1], parallel[1])


def test_block_rows_bounds_memory():
    assert block_rows_for(1_000_000) * 1_000_000 <= 32_000_000
    assert block_rows_for(10) == 4096
    with pytest.raises(ValueError, match="pool"):
        top_neighbours(unit_rows(np.ones((2, 2))), 0)
