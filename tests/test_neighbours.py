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


ENGINES = ["numba", "scipy"]


@pytest.mark.parametrize("engine", ENGINES)
@given(
    data=st.data(),
    n=st.integers(1, 30),
    terms=st.integers(1, 8),
    pool=st.integers(1, 10),
    block=st.integers(1, 12),
)
def test_blocked_top_k_equals_brute_force(engine, data, n, terms, pool, block):
    # small integer weights make exact ties common, which exercises the tie-break
    dense = np.array(
        data.draw(st.lists(st.lists(st.integers(0, 2), min_size=terms, max_size=terms), min_size=n, max_size=n)),
        dtype=np.float64,
    )
    groups = np.array(data.draw(st.lists(st.integers(-1, 2), min_size=n, max_size=n)))
    vectors = unit_rows(dense)
    rows, sims = top_neighbours(vectors, pool, groups=groups, block_rows=block, engine=engine)
    expected_rows, expected_sims = brute(vectors, pool, groups)
    np.testing.assert_allclose(sims, expected_sims, atol=1e-5)
    # where similarities are distinct (beyond float noise) the rows must match exactly
    distinct = np.abs(np.diff(np.concatenate([expected_sims, np.zeros((n, 1))], axis=1), axis=1)) > 1e-4
    distinct &= np.abs(np.diff(np.concatenate([np.full((n, 1), 2.0), expected_sims], axis=1), axis=1)) > 1e-4
    assert (rows[distinct] == expected_rows[distinct]).all()
    assert not (rows == np.arange(n)[:, None]).any()


@pytest.mark.parametrize("engine", ENGINES)
def test_ties_are_broken_by_row(engine):
    vectors = unit_rows(np.ones((5, 2)))  # all identical vectors: every pair ties at 1.0
    rows, sims = top_neighbours(vectors, 3, engine=engine)
    assert rows.tolist() == [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2], [0, 1, 2]]
    np.testing.assert_allclose(sims, 1.0, rtol=1e-6)


@pytest.mark.parametrize("engine", ENGINES)
def test_empty_slots_are_minus_one_and_zero(engine):
    vectors = unit_rows(np.array([[1.0, 0], [0, 1.0], [1.0, 0]]))
    rows, sims = top_neighbours(vectors, 2, engine=engine)
    assert rows.tolist() == [[2, -1], [-1, -1], [0, -1]]
    assert sims[1].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("engine", ENGINES)
def test_parallel_blocks_equal_serial(engine):
    rng = np.random.default_rng(0)
    vectors = unit_rows(rng.random((40, 6)) * (rng.random((40, 6)) > 0.5))
    serial = top_neighbours(vectors, 5, block_rows=7, engine=engine)
    parallel = top_neighbours(vectors, 5, block_rows=7, n_jobs=2, engine=engine)
    np.testing.assert_array_equal(serial[0], parallel[0])
    np.testing.assert_array_equal(serial[1], parallel[1])


def test_block_rows_bounds_memory():
    assert block_rows_for(1_000_000) * 1_000_000 <= 32_000_000
    assert block_rows_for(10) == 4096
    with pytest.raises(ValueError, match="pool"):
        top_neighbours(unit_rows(np.ones((2, 2))), 0)


def news_like(n: int, terms: int, latent: int, seed: int) -> sp.csr_matrix:
    """Sparse term columns (with repeated weights, so ties happen) plus ``latent`` dense columns at the end."""
    rng = np.random.default_rng(seed)
    words = np.round(rng.random((n, terms)), 1) * (rng.random((n, terms)) < 0.3)
    topics = np.round(rng.normal(size=(n, latent)), 1)
    dense = np.hstack([words, 0.5 * topics])
    dense[rng.random(n) < 0.05] = 0  # a few empty articles
    dense[1] = dense[0]  # an exact copy
    return unit_rows(dense)


@pytest.mark.parametrize("latent", [0, 4])
def test_compiled_engine_equals_brute_force_with_dense_columns(latent):
    vectors = news_like(60, 25, latent, seed=latent)
    groups = np.full(60, -1)
    groups[[0, 1]] = 7
    rows, sims = top_neighbours(vectors, 6, groups=groups, engine="numba")
    expected_rows, expected_sims = brute(vectors, 6, groups)
    np.testing.assert_allclose(sims, expected_sims, atol=1e-5)
    distinct = np.abs(np.diff(np.concatenate([expected_sims, np.zeros((60, 1))], axis=1), axis=1)) > 1e-4
    distinct &= np.abs(np.diff(np.concatenate([np.full((60, 1), 2.0), expected_sims], axis=1), axis=1)) > 1e-4
    assert (rows[distinct] == expected_rows[distinct]).all()
    assert 1 not in rows[0] and 0 not in rows[1]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("latent", [0, 4])
def test_rows_and_threads_give_bit_identical_pools(engine, latent):
    """A pair's similarity is the same whichever row asks and however the work is split."""
    vectors = news_like(70, 30, latent, seed=1)
    full_rows, full_sims = top_neighbours(vectors, 8, engine=engine)
    for n_jobs in (2, 3, -1):
        rows, sims = top_neighbours(vectors, 8, n_jobs=n_jobs, engine=engine)
        np.testing.assert_array_equal(rows, full_rows)
        np.testing.assert_array_equal(sims, full_sims)
    some = np.array([69, 3, 0, 40, 3])
    rows, sims = top_neighbours(vectors, 8, rows=some, n_jobs=2, engine=engine)
    np.testing.assert_array_equal(rows, full_rows[some])
    np.testing.assert_array_equal(sims, full_sims[some])


def test_engines_agree():
    vectors = news_like(80, 40, 4, seed=2)
    compiled = top_neighbours(vectors, 10, engine="numba")
    reference = top_neighbours(vectors, 10, engine="scipy")
    np.testing.assert_allclose(compiled[1], reference[1], atol=1e-6)
    assert (compiled[0] == reference[0]).mean() > 0.99  # only float-noise ties may swap


def test_read_only_unsorted_input_is_not_modified():
    vectors = news_like(30, 10, 0, seed=3)
    coo = vectors.tocoo()
    order = np.random.default_rng(0).permutation(coo.nnz)
    shuffled = sp.csr_matrix((coo.data[order], (coo.row[order], coo.col[order])), shape=vectors.shape)
    shuffled.has_sorted_indices = False
    before = shuffled.indices.copy()
    for array in (shuffled.data, shuffled.indices, shuffled.indptr):
        array.flags.writeable = False
    rows, _ = top_neighbours(shuffled, 4, engine="numba")
    np.testing.assert_array_equal(rows, top_neighbours(vectors, 4, engine="numba")[0])
    np.testing.assert_array_equal(shuffled.indices, before)


def test_engine_is_checked():
    with pytest.raises(ValueError, match="engine"):
        top_neighbours(unit_rows(np.ones((2, 2))), 1, engine="fast")
