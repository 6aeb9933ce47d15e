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
    rows, sims = top_neighbours(vectors, pool, copy_labels=groups, block_rows=block, engine=engine)
    expected_rows, expected_sims = brute(vectors, pool, groups)
    np.testing.assert_allclose(sims, expected_sims, atol=1e-5)
    # where similarities are distinct (beyond float noise) the rows must match exactly; the last slot is
    # compared with the best similarity left out of the pool, which may tie with it
    beyond = brute(vectors, pool + 1, groups)[1][:, -1:] if pool < n else np.zeros((n, 1))
    distinct = np.abs(np.diff(np.concatenate([expected_sims, beyond], axis=1), axis=1)) > 1e-4
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
    rows, sims = top_neighbours(vectors, 6, copy_labels=groups, engine="numba")
    expected_rows, expected_sims = brute(vectors, 6, groups)
    np.testing.assert_allclose(sims, expected_sims, atol=1e-5)
    distinct = np.abs(np.diff(np.concatenate([expected_sims, np.zeros((60, 1))], axis=1), axis=1)) > 1e-4
    distinct &= np.abs(np.diff(np.concatenate([np.full((60, 1), 2.0), expected_sims], axis=1), axis=1)) > 1e-4
    assert (rows[distinct] == expected_rows[distinct]).all()
    assert 1 not in rows[0] and 0 not in rows[1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pairs_that_share_no_term_still_enter_the_pools_they_belong_to(seed):
    """Rows whose neighbours share terms are settled by the bound; the others (their own unique terms, related
    by the dense columns only) are searched again over every row. Both give the brute-force pools, bit for bit
    the pools of a search from those rows alone."""
    from recommender._neighbours import _split_dense, _unsettled

    rng = np.random.default_rng(seed)
    n, shared_terms, latent = 80, 6, 5
    words = np.zeros((n, shared_terms + n))
    words[: n // 3, :shared_terms] = np.round(rng.random((n // 3, shared_terms)), 1) + 2.0  # share heavy terms
    words[np.arange(n), shared_terms + np.arange(n)] = 1.0  # and each its own term
    topics = 0.3 * rng.normal(size=(n, latent))
    vectors = unit_rows(np.hstack([words, topics]))
    rows, sims = top_neighbours(vectors, 5, engine="numba", n_jobs=2)
    _, dense_t = _split_dense(vectors)
    left = _unsettled(np.ascontiguousarray(dense_t.T), *top_neighbours(vectors, 5, engine="numba"), np.float32(1e-6))
    assert 0 < len(left) < n  # both kinds of row occur
    expected_rows, expected_sims = brute(vectors, 5)
    np.testing.assert_allclose(sims, expected_sims, atol=1e-5)
    beyond = brute(vectors, 6)[1][:, -1:]  # the best similarity left out, which may tie with the last slot
    distinct = np.abs(np.diff(np.concatenate([expected_sims, beyond], axis=1), axis=1)) > 1e-4
    distinct &= np.abs(np.diff(np.concatenate([np.full((n, 1), 2.0), expected_sims], axis=1), axis=1)) > 1e-4
    assert (rows[distinct] == expected_rows[distinct]).all()
    some = np.arange(n)[::-1]
    again_rows, again_sims = top_neighbours(vectors, 5, rows=some, engine="numba")
    np.testing.assert_array_equal(again_rows, rows[some])
    np.testing.assert_array_equal(again_sims, sims[some])


def test_rows_without_a_dense_part_are_settled_without_a_full_search():
    from recommender._neighbours import _unsettled

    dense_rows = np.array([[0.6, 0.0], [0.0, 0.0], [0.0, 0.0], [0.3, 0.4]], dtype=np.float32)
    rows = np.array([[1, -1], [0, -1], [3, -1], [0, 1]], dtype=np.int32)  # pools of two; only row 3's is full
    sims = np.array([[0.9, 0.0], [0.8, 0.0], [0.7, 0.0], [0.95, 0.9]], dtype=np.float32)
    # row 0: not full and a term-free pair reaches it; rows 1, 2: no dense part, no term-free pair reaches them;
    # row 3: full, its last (0.9) above its bound (0.5 * 0.6)
    assert _unsettled(dense_rows, rows, sims, np.float32(1e-6)).tolist() == [0]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("latent", [0, 4])
@pytest.mark.parametrize("n", [70, 1300])  # 1,300: several blocks of sources and spans of targets in one pass
def test_rows_and_threads_give_bit_identical_pools(engine, latent, n):
    """A pair's similarity is the same whichever row asks and however the work is split."""
    vectors = news_like(n, 30, latent, seed=1)
    full_rows, full_sims = top_neighbours(vectors, 8, engine=engine)
    for n_jobs in (2, 3, -1):
        rows, sims = top_neighbours(vectors, 8, n_jobs=n_jobs, engine=engine)
        np.testing.assert_array_equal(rows, full_rows)
        np.testing.assert_array_equal(sims, full_sims)
    some = np.concatenate([np.arange(n)[::-1], [3, 0, 3]])  # every row, asked for alone (another kernel)
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


# ---------------------------------------------------------------------------------------------- approx mode

SYNTH = __import__("pathlib").Path(__file__).resolve().parents[2] / "shared" / "bench" / "peers.py"


@pytest.mark.parametrize("fan", [0, 20])
@pytest.mark.parametrize("seed", [0, 1])
def test_approx_equals_exact_when_every_term_is_a_query_term(seed, fan):
    """Up to 1,000 rows there is one cluster: with query_terms >= every row's term count and room for every
    candidate, approx scores every pair, in the exact engine's order: the same pools, bit for bit."""
    vectors = news_like(80, 30, 0, seed=seed)
    groups = np.full(80, -1)
    groups[[0, 1]] = 3
    exact = top_neighbours(vectors, 7, copy_labels=groups)
    approx = top_neighbours(vectors, 7, copy_labels=groups, mode="approx", query_terms=30, candidates=80, fan=fan)
    np.testing.assert_array_equal(approx[0], exact[0])
    np.testing.assert_array_equal(approx[1], exact[1])
    assert 1 not in approx[0][0] and 0 not in approx[0][1]


@given(
    data=st.data(),
    n=st.integers(1, 30),
    terms=st.integers(1, 8),
    pool=st.integers(1, 10),
    query_terms=st.integers(1, 8),
    cluster_rows=st.integers(1, 40),
    probes=st.integers(1, 5),
)
def test_approx_contract(data, n, terms, pool, query_terms, cluster_rows, probes):
    """Whatever it misses, approx keeps the contract: exact similarities, sorted by (similarity desc, row asc),
    never self or a copy, only > floor, -1/0 padding; and it is a subset of the candidates exact would see.
    Clusters of 1 to 40 rows: one cluster, several, empty ones, more probes than clusters."""
    from unittest import mock

    import recommender._neighbours as module

    dense = np.array(
        data.draw(st.lists(st.lists(st.integers(0, 2), min_size=terms, max_size=terms), min_size=n, max_size=n)),
        dtype=np.float64,
    )
    groups = np.array(data.draw(st.lists(st.integers(-1, 2), min_size=n, max_size=n)))
    vectors = unit_rows(dense)
    with mock.patch.object(module, "_CLUSTER_ROWS", cluster_rows), mock.patch.object(module, "_SAMPLE_PER_CLUSTER", 3):
        rows, sims = top_neighbours(
            vectors, pool, copy_labels=groups, mode="approx", query_terms=query_terms, probes=probes
        )
    truth = (vectors @ vectors.T).toarray()
    for i in range(n):
        found = rows[i][rows[i] >= 0]
        assert (rows[i][len(found) :] == -1).all() and (sims[i][len(found) :] == 0).all()
        assert i not in found and len(set(found.tolist())) == len(found)
        if groups[i] >= 0:
            assert not (groups[found] == groups[i]).any()
        np.testing.assert_allclose(sims[i][: len(found)], truth[i, found], atol=1e-5)
        assert (sims[i][: len(found)] > 1e-6).all()
        keys = list(zip(-sims[i][: len(found)], found, strict=True))
        assert keys == sorted(keys)


@pytest.mark.parametrize("dense_column", [False, True])
def test_approx_counts_a_row_once_when_its_partial_score_returns_to_zero(dense_column):
    """Row 1's partial score from row 0 is +x, then exactly -x (negative weight), back to zero, then positive:
    it must still be one candidate, with its exact similarity."""
    rng = np.random.default_rng(3)
    dense = np.zeros((20, 8))
    dense[:, 0] = 1.0 if dense_column else 0.0  # a column in every row is handled as a dense column
    dense[0, 1:5] = 1.0
    dense[1, 1:5] = [1.0, -1.0, 1.0, 1.0]
    for k in range(2, 20):  # every other row shares one of columns 1-4 with rows 0 and 1 (each in < half the rows)
        dense[k, 1 + k % 4] = rng.uniform(0.2, 1.0)
    dense[2:, 5:] = rng.uniform(0.0, 1.0, (18, 3))
    vectors = unit_rows(dense)
    exact = top_neighbours(vectors, 19)
    approx = top_neighbours(vectors, 19, mode="approx", query_terms=8, candidates=20)
    assert (exact[0][0] >= 0).all()  # row 0 reaches every row
    np.testing.assert_array_equal(approx[0], exact[0])
    np.testing.assert_array_equal(approx[1], exact[1])
    assert list(approx[0][0]).count(1) == 1


def test_prefetch_hint_compiles_and_changes_nothing():
    from numba import njit

    from recommender._neighbours import _prefetch_instruction

    prefetch = _prefetch_instruction()

    @njit
    def total(values):
        result = values[0] * 0
        for k in range(values.shape[0]):
            prefetch(values, min(k + 8, values.shape[0] - 1))
            result += values[k]
        return result

    assert total(np.arange(100, dtype=np.int32)) == 4950
    assert total(np.linspace(0.0, 1.0, 5, dtype=np.float32)) == np.float32(2.5)


@pytest.mark.parametrize("cluster_rows, sample_per_cluster", [(1000, 50), (40, 10)])
def test_approx_rows_threads_and_reruns_give_identical_pools(cluster_rows, sample_per_cluster, monkeypatch):
    import recommender._neighbours as module

    monkeypatch.setattr(module, "_CLUSTER_ROWS", cluster_rows)  # 40: eight clusters of the 300 rows,
    monkeypatch.setattr(module, "_SAMPLE_PER_CLUSTER", sample_per_cluster)  # fitted on 80 sampled rows
    vectors = news_like(300, 60, 4, seed=5)
    full = top_neighbours(vectors, 8, mode="approx", query_terms=5, candidates=20)
    again = top_neighbours(vectors, 8, mode="approx", query_terms=5, candidates=20)
    np.testing.assert_array_equal(full[0], again[0])
    np.testing.assert_array_equal(full[1], again[1])
    for n_jobs in (2, 3, -1):
        rows, sims = top_neighbours(vectors, 8, n_jobs=n_jobs, mode="approx", query_terms=5, candidates=20)
        np.testing.assert_array_equal(rows, full[0])
        np.testing.assert_array_equal(sims, full[1])
    some = np.array([299, 3, 0, 40, 3])
    rows, sims = top_neighbours(vectors, 8, rows=some, n_jobs=2, mode="approx", query_terms=5, candidates=20)
    np.testing.assert_array_equal(rows, full[0][some])
    np.testing.assert_array_equal(sims, full[1][some])
    # every similarity it keeps is the exact engine's value, bit for bit
    exact_rows, exact_sims = top_neighbours(vectors, 299)
    for i in range(300):
        lookup = dict(zip(exact_rows[i].tolist(), exact_sims[i].tolist(), strict=True))
        for j, s in zip(full[0][i], full[1][i], strict=True):
            if j >= 0:
                assert lookup[int(j)] == s


def clustered(n: int, seed: int) -> sp.csr_matrix:
    """Stories in events (rare shared words) over topics (mid-frequency words) over common words, TF-IDF-like."""
    rng = np.random.default_rng(seed)
    n_common, n_topic_words, topics, events = 300, 2000, 40, n // 4
    topic = rng.integers(0, topics, n)
    event = rng.integers(0, events, n)
    topic_words = rng.integers(n_common, n_common + n_topic_words, (topics, 60))
    event_words = rng.integers(n_common + n_topic_words, n_common + n_topic_words + 20 * events, (events, 8))
    cols, rows = [], []
    for i in range(n):
        words = np.concatenate(
            [rng.integers(0, n_common, 40), rng.choice(topic_words[topic[i]], 25), rng.choice(event_words[event[i]], 4)]
        )
        cols.append(words)
        rows.append(np.full(len(words), i))
    counts = sp.csr_matrix(
        (np.ones(sum(map(len, cols))), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n, n_common + n_topic_words + 20 * events),
    )
    counts.sum_duplicates()
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    idf = np.log((1 + n) / (1 + df)) + 1
    weights = counts.multiply(idf).tocsr()
    weights.data = np.log1p(weights.data)
    return unit_rows(weights.toarray())


def tie_aware_recall(approx, exact) -> float:
    kth = exact[1][:, -1]
    hit = (approx[0] >= 0) & (approx[1] >= kth[:, None] - 1e-6)
    return float((hit | (exact[0] < 0)).mean())


def test_approx_recall_on_a_clustered_corpus():
    vectors = clustered(2000, seed=0)
    exact = top_neighbours(vectors, 10, n_jobs=2)
    approx = top_neighbours(vectors, 10, n_jobs=2, mode="approx", query_terms=16)
    assert tie_aware_recall(approx, exact) >= 0.98


def test_approx_recall_when_rows_come_from_several_clusters(monkeypatch):
    import recommender._neighbours as module

    monkeypatch.setattr(module, "_CLUSTER_ROWS", 100)  # 20 clusters, 4 probed: a fifth of the rows a candidate
    vectors = clustered(2000, seed=1)
    exact = top_neighbours(vectors, 10, n_jobs=2)
    approx = top_neighbours(vectors, 10, n_jobs=2, mode="approx")
    assert tie_aware_recall(approx, exact) >= 0.98
    clusters = top_neighbours(vectors, 10, n_jobs=2, mode="approx", max_postings=0)
    assert tie_aware_recall(clusters, exact) >= 0.98  # the clusters alone
    one = top_neighbours(vectors, 10, n_jobs=2, mode="approx", probes=1, fan=0, max_postings=0)
    assert tie_aware_recall(one, exact) < tie_aware_recall(clusters, exact)  # the probes are what finds them
    rare = top_neighbours(vectors, 10, n_jobs=2, mode="approx", probes=1, fan=0)
    assert tie_aware_recall(one, exact) < tie_aware_recall(rare, exact)  # and the rare words' lists, read whole


def approx_clusters(vectors, probes=4, threads=2):
    import recommender._neighbours as module

    arrays, dense_rows = module._engine_arrays(vectors, with_postings=False)
    return module._clusters(arrays, dense_rows, arrays[3].shape[0] - 1, probes, 32, threads, module._kernels())


def test_clusters_cover_every_row_and_are_the_same_whatever_the_threads(monkeypatch):
    import recommender._neighbours as module

    monkeypatch.setattr(module, "_CLUSTER_ROWS", 100)
    vectors = clustered(2000, seed=1)
    nearest = approx_clusters(vectors, probes=3, threads=2)
    assert nearest.shape == (2000, 3)
    assert (nearest >= 0).all() and all(len(set(row)) == 3 for row in nearest.tolist())
    np.testing.assert_array_equal(approx_clusters(vectors, probes=3, threads=1), nearest)


def one_popular_topic(n: int, seed: int, share: float) -> sp.csr_matrix:
    """Common words plus the words of one of 40 topics, topic 0 holding ``share`` of the rows; TF-IDF-like."""
    rng = np.random.default_rng(seed)
    n_common, n_topic_words, topics = 300, 2000, 40
    chances = np.full(topics, (1 - share) / (topics - 1))
    chances[0] = share
    topic = rng.choice(topics, n, p=chances)
    topic_words = rng.integers(n_common, n_common + n_topic_words, (topics, 60))
    counts = np.zeros((n, n_common + n_topic_words))
    for i in range(n):
        np.add.at(counts[i], np.concatenate([rng.integers(0, n_common, 40), rng.choice(topic_words[topic[i]], 25)]), 1)
    idf = np.log((1 + n) / (1 + (counts > 0).sum(axis=0))) + 1
    return unit_rows(np.log1p(counts * idf))


def test_popular_clusters_are_split(monkeypatch):
    """With 70% of the rows in one topic, some of the 20 first clusters take more than twice their share of the
    sample; splitting them makes the largest cluster smaller than it is with the split turned off."""
    import recommender._neighbours as module

    monkeypatch.setattr(module, "_CLUSTER_ROWS", 100)
    vectors = one_popular_topic(2000, seed=0, share=0.7)
    split = np.bincount(approx_clusters(vectors)[:, 0])
    monkeypatch.setattr(module, "_SPLIT_ABOVE", 10**9)
    whole = np.bincount(approx_clusters(vectors)[:, 0])
    assert len(whole) == 20 and len(split) > 20
    assert split.max() < whole.max()


def test_rows_with_nothing_in_common_are_spread_over_the_clusters(monkeypatch):
    """Empty rows score 0 against every centroid; they must not all land in the first clusters."""
    import recommender._neighbours as module

    monkeypatch.setattr(module, "_CLUSTER_ROWS", 100)
    full = clustered(1400, seed=2)
    vectors = sp.vstack([full, sp.csr_matrix((600, full.shape[1]), dtype=np.float32)], format="csr")
    own = approx_clusters(vectors)[:, 0]
    empty_share = np.bincount(own[1400:])
    assert (empty_share > 0).sum() >= 10 and empty_share.max() <= 600 // 20 + 1
    rows, _ = top_neighbours(vectors, 5, mode="approx")
    assert (rows[1400:] == -1).all()


def test_query_terms_never_outgrow_their_buffer():
    """A NaN compares neither below nor equal to the threshold: the selection still stops at query_terms."""
    import recommender._neighbours as module

    module._kernels()  # compiles _query
    data = np.array([0.5, np.nan, 0.3, 0.3, 0.3, 0.3], dtype=np.float32)
    indptr = np.array([0, 6], dtype=np.int64)
    indices = np.arange(6, dtype=np.int32)
    for query_terms in (1, 2, 3, 5):
        terms = np.full(query_terms + 8, -1, dtype=np.int64)  # room to see an overrun
        weights = np.zeros(query_terms + 8, dtype=np.float32)
        count = module._query(0, indptr, indices, data, query_terms, terms, weights)
        assert count <= query_terms and (terms[query_terms:] == -1).all()


def test_non_finite_vectors_are_refused():
    vectors = unit_rows(np.eye(3))
    vectors.data[1] = np.nan
    for mode in ("exact", "approx"):
        with pytest.raises(ValueError, match="finite"):
            top_neighbours(vectors, 1, mode=mode)


@pytest.mark.skipif(not SYNTH.is_file(), reason="../shared/bench/peers.py (SynthCorpus) not present")
def test_approx_recall_on_synth_corpus():
    import sys

    sys.path.insert(0, str(SYNTH.parent))
    import peers

    texts = peers.SynthCorpus(seed=0).texts(5000)
    vectors = sp.csr_matrix(peers.make_vectorizer().fit_transform(texts), dtype=np.float32)
    exact = top_neighbours(vectors, 10, n_jobs=2)
    approx = top_neighbours(vectors, 10, n_jobs=2, mode="approx")
    assert tie_aware_recall(approx, exact) >= 0.98


@pytest.mark.parametrize("mode", ["exact", "approx"])
@pytest.mark.parametrize("rows", [None, np.array([5, 0, 9000, 17])])
def test_progress_counts_add_up_and_do_not_change_the_result(mode, rows, monkeypatch):
    import recommender._neighbours as module

    monkeypatch.setattr(module, "_CHUNK", 700)  # several chunks on a small corpus
    vectors = news_like(2100, 40, 3, seed=6)
    rows = None if rows is None else rows % 2100
    counts: list[int] = []
    with_progress = top_neighbours(vectors, 5, n_jobs=2, rows=rows, mode=mode, progress=counts.append)
    without = top_neighbours(vectors, 5, n_jobs=2, rows=rows, mode=mode)
    assert sum(counts) == (2100 if rows is None else len(rows))
    assert all(c > 0 for c in counts) and (rows is not None or len(counts) >= 3)  # after each chunk
    np.testing.assert_array_equal(with_progress[0], without[0])
    np.testing.assert_array_equal(with_progress[1], without[1])


def test_progress_with_the_scipy_engine():
    counts: list[int] = []
    top_neighbours(news_like(40, 10, 0, seed=7), 3, engine="scipy", progress=counts.append)
    assert sum(counts) == 40


def test_approx_parameters_are_checked():
    vectors = unit_rows(np.ones((3, 2)))
    with pytest.raises(ValueError, match="mode"):
        top_neighbours(vectors, 1, mode="fast")
    with pytest.raises(ValueError, match="query_terms"):
        top_neighbours(vectors, 1, mode="approx", query_terms=0)
    with pytest.raises(ValueError, match="candidates"):
        top_neighbours(vectors, 5, mode="approx", candidates=3)
    with pytest.raises(ValueError, match="compiled"):
        top_neighbours(vectors, 1, mode="approx", engine="scipy")
    with pytest.raises(ValueError, match="probes"):
        top_neighbours(vectors, 1, mode="approx", probes=0)
    with pytest.raises(ValueError, match="max_postings"):
        top_neighbours(vectors, 1, mode="approx", max_postings=-1)
    with pytest.raises(ValueError, match="fan"):
        top_neighbours(vectors, 1, mode="approx", fan=-1)


# --------------------------------------------------------------------------- tiles (the build on Dask)


def tiled_pools(vectors: sp.csr_matrix, cuts: list[int], pool: int, labels: np.ndarray, bars: str = "merged"):
    """The pools of every row from tiles of the blocks between ``cuts``, as ``recommender._cluster`` runs them.

    ``bars``: ``"merged"`` each block's pools merged from every tile run before (as the cluster's, which lag a
    few tiles), ``"own"`` its own tile's pools, ``"none"``."""
    from recommender import _neighbours as nb

    n = vectors.shape[0]
    spans = list(zip([0, *cuts], [*cuts, n], strict=True))
    cols = nb.dense_columns(np.bincount(vectors.indices, minlength=vectors.shape[1]), n)
    sides = [[nb.tile_pools(vectors[a0:a1], None, (a0, a0), (labels[a0:a1], None), cols, pool)[0]] for a0, a1 in spans]
    merged = [parts[0] for parts in sides]
    for a, (a0, a1) in enumerate(spans):
        for b in range(a + 1, len(spans)):
            b0, b1 = spans[b]
            given = {"merged": (merged[a], merged[b]), "own": (sides[a][0], sides[b][0]), "none": None}[bars]
            first, second = nb.tile_pools(
                vectors[a0:a1], vectors[b0:b1], (a0, b0), (labels[a0:a1], labels[b0:b1]), cols, pool, given
            )
            sides[a].append(first)
            sides[b].append(second)
            merged[a] = nb.merged_sorted(merged[a], first)  # as the cluster merges a tile's sides
            merged[b] = nb.merged_sorted(merged[b], second)
    rows = np.concatenate([m[0] for m in merged])
    sims = np.concatenate([m[1] for m in merged])
    unsettled = nb.unsettled_rows(nb.dense_norms(vectors, cols), rows, sims)
    for a0, a1 in spans:
        mine = unsettled[(unsettled >= a0) & (unsettled < a1)]
        if mine.size:
            parts = [
                nb.sweep_pools(vectors[a0:a1], mine - a0, vectors[b0:b1], (a0, b0), (labels[a0:a1], labels[b0:b1]),
                               cols, pool)
                for b0, b1 in spans
            ]  # fmt: skip
            rows[mine], sims[mine] = nb.merged_pools(parts)
    return nb.finished(rows, sims), unsettled.size


@given(
    n=st.integers(2, 60),
    dense=st.integers(0, 5),
    pool=st.integers(1, 8),
    cuts=st.lists(st.floats(0, 1), max_size=4),
    seed=st.integers(0, 2**16),
)
def test_tiles_of_any_blocks_give_the_pools_of_one_search_bit_for_bit(n, dense, pool, cuts, seed) -> None:
    rng = np.random.default_rng(seed)
    words = sp.random(n, 40, density=0.08, random_state=rng, dtype=np.float32, format="csr")
    vectors = sp.hstack([words, sp.csr_matrix(rng.standard_normal((n, dense)).astype(np.float32))]).tocsr()
    vectors = vectors[:, rng.permutation(vectors.shape[1])]  # dense columns anywhere among the words
    norms = np.sqrt(np.asarray(vectors.multiply(vectors).sum(axis=1)).ravel())
    norms[norms == 0] = 1
    vectors = sp.csr_matrix(vectors.multiply(1 / norms[:, None]), dtype=np.float32)
    vectors.sort_indices()
    labels = np.where(rng.random(n) < 0.2, rng.integers(0, 3, n), -1)
    blocks = sorted({int(c * n) for c in cuts} - {0, n})
    (rows, sims), _ = tiled_pools(vectors, blocks, pool, labels)
    truth_rows, truth_sims = top_neighbours(vectors, pool, copy_labels=labels)
    assert rows.tolist() == truth_rows.tolist()
    assert sims.tobytes() == truth_sims.tobytes()


@given(
    n=st.integers(0, 30),
    pool=st.integers(1, 8),
    levels=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_two_sorted_pools_merged_in_one_pass_as_by_the_general_merge(n, pool, levels, seed) -> None:
    """``merged_sorted`` (the build on Dask's merges) gives ``merged_pools``' result bit for bit: pools with
    ties (few similarity levels), empty slots, and rows drawn from one set (a row in one pool only, as each pair
    comes from one tile)."""
    from recommender import _neighbours as nb

    rng = np.random.default_rng(seed)
    owners = rng.permutation(4 * pool + 4)[: 2 * pool]  # the rows found for one row, split between the two pools

    def sorted_pools(found: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows, sims = nb.empty_pools(n, pool)
        for r in range(n):
            filled = rng.integers(0, pool + 1)
            picked = rng.choice(found, size=filled, replace=False)
            values = (rng.integers(1, levels + 1, filled) / levels).astype(np.float32)
            order = np.lexsort((picked, -values))  # best first, ties by row
            rows[r, :filled], sims[r, :filled] = picked[order], values[order]
        return rows, sims

    first, second = sorted_pools(owners[:pool]), sorted_pools(owners[pool:])
    want_rows, want_sims = nb.merged_pools([first, second])
    got_rows, got_sims = nb.merged_sorted(first, second)
    assert got_rows.tobytes() == want_rows.tobytes() and got_sims.tobytes() == want_sims.tobytes()


def test_pools_merged_in_one_pass_must_be_sorted() -> None:
    from recommender import _neighbours as nb

    rows = np.array([[3, 1, -1]], dtype=np.int32)
    sims = np.array([[0.5, 0.7, nb.SIMILARITY_FLOOR]], dtype=np.float32)  # rising
    good = (np.array([[2, -1, -1]], dtype=np.int32), np.array([[0.9, 1e-6, 1e-6]], dtype=np.float32))
    with pytest.raises(ValueError, match="sorted"):
        nb.merged_sorted((rows, sims), good)
    gap = (np.array([[2, -1, 4]], dtype=np.int32), np.array([[0.9, 1e-6, 1e-6]], dtype=np.float32))  # empty first
    with pytest.raises(ValueError, match="sorted"):
        nb.merged_sorted(good, gap)
    with pytest.raises(ValueError, match="shape"):
        nb.merged_sorted(good, (rows[:, :2], sims[:, :2]))


@pytest.mark.parametrize("bars", ["merged", "own", "none"])
def test_large_tiles_give_the_pools_of_one_search_bit_for_bit(bars) -> None:
    """Blocks of 600, 600 and 400 rows: several blocks of sources and spans of targets in every tile kernel."""
    vectors = news_like(1600, 30, 4, seed=5)
    labels = np.full(1600, -1)
    labels[[0, 1]] = 3  # news_like's exact copy
    (rows, sims), _ = tiled_pools(vectors, [600, 1200], 8, labels, bars)
    truth_rows, truth_sims = top_neighbours(vectors, 8, copy_labels=labels)
    assert rows.tolist() == truth_rows.tolist()
    assert sims.tobytes() == truth_sims.tobytes()


def test_tiles_search_again_the_rows_a_pair_sharing_no_term_could_enter() -> None:
    rng = np.random.default_rng(3)
    n = 300
    words = sp.random(n, 200, density=0.02, random_state=rng, dtype=np.float32, format="csr")
    dense = sp.csr_matrix(rng.standard_normal((n, 4)).astype(np.float32))
    vectors = sp.hstack([words[:, :120], dense, words[:, 120:]]).tocsr()  # dense columns between words
    norms = np.sqrt(np.asarray(vectors.multiply(vectors).sum(axis=1)).ravel())
    vectors = sp.csr_matrix(vectors.multiply(1 / norms[:, None]), dtype=np.float32)
    vectors.sort_indices()
    labels = np.full(n, -1)
    (rows, sims), swept = tiled_pools(vectors, [70, 71, 200], 10, labels)
    assert swept > 0  # the rows whose pools came from the sweep are checked too
    truth_rows, truth_sims = top_neighbours(vectors, 10)
    assert rows.tolist() == truth_rows.tolist() and sims.tobytes() == truth_sims.tobytes()


def test_tile_inputs_are_checked_before_the_compiled_kernels_see_them() -> None:
    from recommender import _neighbours as nb

    good = sp.csr_matrix(np.eye(4, dtype=np.float32))
    labels = np.full(4, -1)
    broken = sp.csr_matrix(np.eye(4, dtype=np.float32))
    broken.indices[2] = 9  # a column outside the shape
    with pytest.raises(ValueError, match="column indices"):
        nb.tile_pools(broken, None, (0, 0), (labels, None), np.empty(0, dtype=np.int64), 2)
    with pytest.raises(ValueError, match="after the first"):
        nb.tile_pools(good, good, (4, 0), (labels, labels), np.empty(0, dtype=np.int64), 2)
    with pytest.raises(ValueError, match="labels"):
        nb.tile_pools(good, None, (0, 0), (labels[:3], None), np.empty(0, dtype=np.int64), 2)
    with pytest.raises(ValueError, match="sources"):
        nb.sweep_pools(good, np.array([7]), good, (0, 4), (labels, labels), np.empty(0, dtype=np.int64), 2)
    for first, second in ((broken, good), (good, broken)):
        with pytest.raises(ValueError, match="column indices"):
            nb.sweep_pools(first, np.array([0]), second, (0, 4), (labels, labels), np.empty(0, dtype=np.int64), 2)
    short = (np.zeros((3, 2), dtype=np.int32), np.zeros((3, 2), dtype=np.float32))  # bars of 3 rows for 4
    with pytest.raises(ValueError, match="bars"):
        nb.tile_pools(good, good, (0, 4), (labels, labels), np.empty(0, dtype=np.int64), 2, (short, short))


def zipf_like(n: int, terms: int, latent: int, seed: int, signed: bool = False) -> sp.csr_matrix:
    """Term columns from very frequent (in most rows) to rare, in shuffled column order, plus ``latent`` dense
    columns: the mix the frequent-term columns of the compiled engine are for. ``signed``: values of either sign
    (the engine takes any finite values), so that sums cancel and zeros of either sign are added."""
    rng = np.random.default_rng(seed)
    density = np.minimum(0.9, 0.02 + 1.5 / np.arange(1, terms + 1) ** 0.8)[rng.permutation(terms)]
    words = np.round(rng.random((n, terms)), 2) * (rng.random((n, terms)) < density)
    if signed:
        words *= rng.choice([-1.0, 1.0], size=words.shape)
    return unit_rows(np.hstack([words, 0.3 * rng.normal(size=(n, latent))]))


@pytest.mark.parametrize(
    "share, signed", [(0.0, False), (0.3, False), (2.0, False), (0.0, True)]
)  # every term, some terms, no term as whole columns
def test_frequent_terms_added_as_columns_give_the_same_pools_bit_for_bit(share, signed, monkeypatch) -> None:
    """Adding a frequent term to a source's sums as a whole column (zeros where a row lacks it) instead of a
    scattered add per posting changes no sum: the pools equal those of the searches that only scatter (rows
    asked for alone) and of tiles, bit for bit, with any threads."""
    from recommender import _neighbours as nb

    vectors = zipf_like(1300, 60, 4, seed=7, signed=signed)
    labels = np.full(1300, -1)
    labels[[5, 9]] = 2
    reference = nb.top_neighbours(vectors, 8, copy_labels=labels, rows=np.arange(1300))  # scatter only
    monkeypatch.setattr(nb, "_HEAVY_SHARE", share)
    postings = nb._engine_arrays(vectors)[0][3:]
    chosen = int((nb.heavy_columns(postings, 1300)[0] >= 0).sum())
    terms = len(postings[0]) - 1  # the term columns in half the rows or more are dense columns already
    assert {0.0: chosen == terms, 0.3: 0 < chosen < terms, 2.0: chosen == 0}[share], (chosen, terms)
    for n_jobs in (1, 2):
        rows, sims = nb.top_neighbours(vectors, 8, copy_labels=labels, n_jobs=n_jobs)
        assert rows.tolist() == reference[0].tolist() and sims.tobytes() == reference[1].tobytes()
    (rows, sims), _ = tiled_pools(vectors, [500, 900], 8, labels)
    assert rows.tolist() == reference[0].tolist() and sims.tobytes() == reference[1].tobytes()


def test_frequent_term_columns_are_the_longest_posting_lists_within_their_budget(monkeypatch) -> None:
    from recommender import _neighbours as nb

    rng = np.random.default_rng(4)
    n = 50
    matrix = sp.random(n, 12, density=0.4, random_state=rng, dtype=np.float32, format="csc")
    postings = sp.csr_matrix(matrix.T)
    arrays = (postings.indptr.astype(np.int64), postings.indices.astype(np.int32), postings.data)
    counts = np.diff(postings.indptr)
    monkeypatch.setattr(nb, "_HEAVY_SHARE", 0.3)
    heavy_of, heavy = nb.heavy_columns(arrays, n)
    frequent = counts >= 0.3 * n
    assert 0 < frequent.sum() < 12
    assert ((heavy_of >= 0) == frequent).all()
    for term in np.flatnonzero(frequent):
        assert heavy[heavy_of[term]].tobytes() == matrix[:, term].toarray().ravel().tobytes()
    monkeypatch.setattr(nb, "_HEAVY_VALUES", 3 * n + n // 2)  # room for three columns
    heavy_of, heavy = nb.heavy_columns(arrays, n)
    assert heavy.shape == (3, n)
    longest = np.argsort(-counts, kind="stable")[:3]
    assert sorted(np.flatnonzero(heavy_of >= 0).tolist()) == sorted(longest.tolist())
