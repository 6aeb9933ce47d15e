"""Tests for the build on Dask (recommender._cluster): the same fitted model as a one-process fit, bit for bit.

The truth is ``Recommender().fit`` in this process on the same articles. The Dask
fits run on the session's LocalCluster of two worker processes (``conftest.py``)
with small blocks, so that a fit of the 291-article Wikinews corpus has many tiles,
several partitions and rows that are searched again (the sweep). Every array of the
fitted state is compared for equality of bits, and the lists for equality.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import recommender as rec
from recommender._cli import main

BLOCK = 40  # rows per block: 291 articles -> 8 blocks, 36 tiles


@pytest.fixture(scope="module")
def wikinews() -> pd.DataFrame:
    return rec.load_articles(rec.demo_corpus_path())


@pytest.fixture(scope="module")
def local(wikinews: pd.DataFrame) -> rec.Recommender:
    return rec.Recommender().fit(wikinews, progress=False)


def bits(array: np.ndarray) -> bytes:
    return np.ascontiguousarray(array).tobytes()


def assert_same_model(found: rec.Recommender, truth: rec.Recommender) -> None:
    """Every array of the fitted state equal, bit for bit, and the same lists."""
    a, b = found._state, truth._state
    assert a.index.vocabulary.terms.tolist() == b.index.vocabulary.terms.tolist()
    assert bits(a.index.vocabulary.idf) == bits(b.index.vocabulary.idf)
    if b.index.vocabulary.components is None:
        assert a.index.vocabulary.components is None
    else:
        assert bits(a.index.vocabulary.components) == bits(b.index.vocabulary.components)
    va, vb = a.index.vectors, b.index.vectors
    assert va.shape == vb.shape
    assert bits(va.indptr.astype(np.int64)) == bits(vb.indptr.astype(np.int64))
    assert bits(va.indices) == bits(vb.indices) and bits(va.data) == bits(vb.data)
    assert bits(a.pools.rows) == bits(b.pools.rows)
    assert bits(a.pools.similarities) == bits(b.pools.similarities)
    assert bits(a.catalogue.groups) == bits(b.catalogue.groups)
    assert np.asarray(a.catalogue.text_keys).tolist() == np.asarray(b.catalogue.text_keys).tolist()
    pd.testing.assert_frame_equal(a.catalogue.table, b.catalogue.table)
    assert bits(a.catalogue.popularity) == bits(b.catalogue.popularity)
    assert list(a.rejected) == list(b.rejected)
    assert list(a.flagged) == list(b.flagged)
    pd.testing.assert_frame_equal(
        found.recommend_frame(5, explain=True, progress=False), truth.recommend_frame(5, explain=True, progress=False)
    )


def test_a_dask_fit_is_the_local_fit_bit_for_bit(wikinews, local, client, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="recommender"):
        spread = rec.Recommender().fit(wikinews, client=client, block_rows=BLOCK, progress=False)
    assert_same_model(spread, local)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "36 tiles in 38 tasks" in messages  # the last tile of each of the two workers in halves
    assert "searched again over every block" in messages  # the sweep of unsettled rows ran too
    # a scheduler address works as well as a client, other blocks give the same model, and two builds at once on
    # one cluster both do (they share its workers and the build's worker plugin, which the first to end removes).
    # Three times: the address's build makes a client of its own, the default client while it lives, and a build
    # that waited on its futures through the default client's loop hung now and then when that client closed
    # (daemon threads, so that a build that hangs fails the test instead of keeping the run from ending)
    for _ in range(3):
        runs = [
            _fit_in_thread(wikinews, target, rows) for target, rows in ((client.scheduler.address, 100), (client, 70))
        ]
        for thread, result in runs:
            thread.join(120)
            assert not thread.is_alive(), "a build on Dask did not end within 120 s"
            if "error" in result:
                raise result["error"]
            assert_same_model(result["model"], local)


def _fit_in_thread(articles: pd.DataFrame, target: Any, rows: int) -> tuple[threading.Thread, dict[str, Any]]:
    """A build on Dask in a daemon thread; its model (or error) in the dict once the thread ends."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["model"] = rec.Recommender().fit(articles, client=target, block_rows=rows, progress=False)
        except BaseException as exc:  # handed to the test's thread
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_without_the_latent_blend_and_with_other_settings(wikinews, client) -> None:
    params = {"latent_weight": 0.0, "pool_size": 7, "min_df": 1, "max_df": 0.9, "stop_words": "english"}
    truth = rec.Recommender(**params).fit(wikinews, progress=False)
    spread = rec.Recommender(**params).fit(wikinews, client=client, block_rows=64, progress=False)
    assert_same_model(spread, truth)


def test_files_are_read_by_the_workers_and_ids_checked_across_files(wikinews, client, tmp_path: Path) -> None:
    first, second, third = wikinews.iloc[:100].copy(), wikinews.iloc[100:200].copy(), wikinews.iloc[200:].copy()
    second.loc[second.index[5], ["title", "summary", "body"]] = ""  # no text: rejected in its file
    textless = first.iloc[[9]].assign(title="", summary="", body="")  # an id seen before, and no text either
    third = pd.concat([third, first.iloc[[3]], second.iloc[[7]], textless])  # ids seen in earlier files: duplicates
    paths = [tmp_path / "a.csv", tmp_path / "b.jsonl", tmp_path / "c.parquet"]
    first.to_csv(paths[0], index=False)
    second.assign(published=second["published"].astype(str)).to_json(paths[1], orient="records", lines=True)
    with paths[1].open("a") as lines:
        lines.write("{not json\n")  # a line the reader cannot read
    third.assign(tags=third["tags"].map(list)).to_parquet(paths[2], index=False)
    loaded = rec.load_articles([str(p) for p in paths])
    truth = rec.Recommender().fit(loaded, progress=False)
    spread = rec.Recommender().fit([str(p) for p in paths], client=client, block_rows=BLOCK, progress=False)
    reasons = [r["reason"] for r in spread.rejected_]
    assert len(reasons) == 5
    assert sum("duplicate article_id" in r for r in reasons) == 3  # the textless row too, as in one table
    assert any("a.csv, row 4" in r for r in reasons)  # says where the id was first seen
    assert spread.rejected_ == truth.rejected_ == loaded.attrs["rejected"]
    assert spread.flagged_ == truth.flagged_
    assert_same_model(spread, truth)


def test_a_dask_dataframe_is_read_partition_by_partition(wikinews, local, client) -> None:
    dd = pytest.importorskip("dask.dataframe", reason="dask.dataframe is not installed")
    frame = dd.from_pandas(wikinews.drop(columns=["tags"]).assign(tags=wikinews["tags"].map(";".join)), npartitions=3)
    truth = rec.Recommender().fit(wikinews.assign(tags=wikinews["tags"].map(";".join)), progress=False)
    spread = rec.Recommender().fit(frame, client=client, block_rows=BLOCK, progress=False)
    assert_same_model(spread, truth)


def careless(wikinews: pd.DataFrame) -> pd.DataFrame:
    """The demo articles as a raw export with careless rows spread over the chunks a pandas frame is sent in."""
    raw = wikinews.rename(columns={"article_id": "id", "title": "headline", "views": "hits"}).astype({"hits": object})
    ids = raw["id"].tolist()
    raw.loc[2, ["headline", "summary", "body"]] = ""  # no text
    raw.loc[40, "hits"] = -5  # negative views
    raw.loc[100, "id"] = ids[0]  # an id kept in an earlier chunk
    raw.loc[150, "id"] = ids[2]  # the id of a rejected row only: kept
    raw.loc[200, "published"] = pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=30)  # flagged, kept
    raw.loc[250, ["id", "headline", "summary", "body"]] = [ids[45], "", "", ""]  # a duplicate first, then no text
    raw.loc[290, "id"] = None  # no id
    return raw


def test_a_raw_frame_keeps_and_rejects_the_rows_a_local_fit_does(wikinews, client) -> None:
    """A pandas frame is cut into chunks that the workers validate: the same rows kept, rejected (same reasons, same
    order) and flagged as a local fit of the whole frame, duplicates across chunks included; strict stops at the
    same row."""
    raw = careless(wikinews)
    truth = rec.Recommender().fit(raw, progress=False)
    spread = rec.Recommender().fit(raw, client=client, block_rows=BLOCK, progress=False)
    assert [r["row"] for r in truth.rejected_] == [3, 41, 101, 251, 291]  # the careless rows, 1-based
    assert "duplicate article_id" in truth.rejected_[3]["reason"]
    assert [f["row"] for f in truth.flagged_] == [201]
    assert_same_model(spread, truth)
    with pytest.raises(rec.ArticleValidationError) as local_error:
        rec.Recommender().fit(raw, strict=True, progress=False)
    with pytest.raises(rec.ArticleValidationError) as spread_error:
        rec.Recommender().fit(raw, client=client, strict=True, progress=False)
    assert str(spread_error.value) == str(local_error.value)
    for hopeless in (raw.iloc[:0], raw.assign(id=None)):  # no rows; no row kept
        with pytest.raises(rec.SchemaError) as local_error:
            rec.Recommender().fit(hopeless, progress=False)
        with pytest.raises(rec.SchemaError) as spread_error:
            rec.Recommender().fit(hopeless, client=client, progress=False)
        assert str(spread_error.value) == str(local_error.value)


@given(
    sizes=st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=8),
    block_rows=st.integers(min_value=1, max_value=70),
)
def test_blocks_cut_the_partitions_in_order_into_even_blocks(sizes: list[int], block_rows: int) -> None:
    from recommender._cluster import _blocks

    blocks = _blocks(sizes, block_rows)
    n = sum(sizes)
    assert len(blocks) == -(-n // block_rows)  # the fewest blocks of at most block_rows rows
    if blocks:
        assert max(b.size for b in blocks) <= block_rows
        assert max(b.size for b in blocks) - min(b.size for b in blocks) <= 1
    starts = np.concatenate([[0], np.cumsum(sizes)])
    covered = []  # every row of every partition once, in order, each block's rows at its offset
    for block in blocks:
        assert block.offset == len(covered)
        for partition, start, stop in block.pieces:
            assert 0 <= start < stop <= sizes[partition]
            covered.extend(range(starts[partition] + start, starts[partition] + stop))
        assert len(covered) == block.offset + block.size
    assert covered == list(range(n))


@given(
    n=st.integers(min_value=3, max_value=40),
    split=st.floats(min_value=0, max_value=1),
    cut=st.floats(min_value=0, max_value=1),
    dense=st.integers(min_value=0, max_value=3),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_a_tile_in_halves_merges_into_the_pools_of_the_whole_tile(n, split, cut, dense, seed) -> None:
    """The last tiles of the build run in halves of their first block's rows (``_Search``): each half barred by its
    rows of the block's pools, merged into those rows (``_merged_side``'s ``start``) and into the whole second
    block. The pools of both blocks are those of the whole tile, bit for bit."""
    import scipy.sparse as sp

    from recommender import _neighbours as nb
    from recommender._cluster import _merged_side, _row_range

    rng = np.random.default_rng(seed)
    words = sp.random(n, 12, density=0.3, random_state=rng, format="csr", dtype=np.float32)
    vectors = sp.hstack([words, rng.random((n, dense), dtype=np.float32)], format="csr")  # dense columns last
    labels = rng.integers(-1, 3, n)  # copy groups: -1 none
    a1 = min(n - 1, max(2, round(split * n)))  # block A: rows 0..a1, B: the rest (A has two rows at least)
    lo = min(a1 - 1, max(1, round(cut * a1)))  # A's halves: rows 0..lo and lo..a1
    cols = nb.dense_columns(np.bincount(vectors.indices, minlength=vectors.shape[1]), n)
    A, B, pool = vectors[:a1], vectors[a1:], 4
    own = [nb.tile_pools(X, None, (x0, x0), (labels[x0 : x0 + X.shape[0]], None), cols, pool)[0]
           for X, x0 in ((A, 0), (B, a1))]  # fmt: skip
    whole = nb.tile_pools(A, B, (0, a1), (labels[:a1], labels[a1:]), cols, pool, tuple(own))
    expected = [_merged_side(own[0], whole, 0), _merged_side(own[1], whole, 1)]
    found = list(own)
    for h0, h1 in ((0, lo), (lo, a1)):
        half = nb.tile_pools(
            _row_range(A, h0, h1), B, (h0, a1), (_row_range(labels[:a1], h0, h1), labels[a1:]), cols, pool,
            (_row_range(own[0], h0, h1), own[1]),
        )  # fmt: skip
        found = [_merged_side(found[0], half, 0, h0), _merged_side(found[1], half, 1)]
    for (rows, sims), (want_rows, want_sims) in zip(found, expected, strict=True):
        assert rows.tobytes() == want_rows.tobytes() and sims.tobytes() == want_sims.tobytes()


@given(
    chars=st.lists(st.integers(min_value=0, max_value=3_000_000), max_size=40),
    least=st.integers(min_value=1, max_value=12),
    most_rows=st.integers(min_value=1, max_value=9),
    most_chars=st.integers(min_value=1, max_value=5_000_000),
)
def test_a_pandas_frame_is_sent_in_chunks_of_bounded_text(chars, least, most_rows, most_chars) -> None:
    """Chunks cover the rows once, in order; none holds more than ``most_rows`` rows, nor more than ``most_chars``
    characters unless it is one row; there are at least ``least`` of them where there are rows enough."""
    from recommender._cluster import _chunk_bounds

    sizes = np.asarray(chars, dtype=np.int64)
    bounds = _chunk_bounds(sizes, least, most_rows, most_chars)
    assert bounds[0] == 0 and bounds[-1] == len(chars)
    assert all(lo < hi for lo, hi in itertools.pairwise(bounds))
    assert len(bounds) - 1 >= min(len(chars), least)
    for lo, hi in itertools.pairwise(bounds):
        assert hi - lo <= most_rows
        assert hi - lo == 1 or sizes[lo:hi].sum() <= most_chars


def test_a_worker_drops_the_texts_of_a_partition_once_it_is_read(wikinews, client, tmp_path: Path) -> None:
    """A task's arguments (a pandas chunk's texts) are not kept by the worker after the task has run, although a
    task that depends on it is still kept; without the build's plugin, Dask keeps them."""
    from recommender._articles import cut_articles
    from recommender._cluster import _arguments_dropped, _part, _same, _submit
    from recommender._cluster import _front_of_chunk as real_front

    def held(dask_worker, key: str) -> bool:
        task = dask_worker.state.tasks.get(key)
        return task is not None and task.run_spec is not None

    def look(chunk) -> bool:
        return any(client.run(held, key=chunk.key).values())

    chunk = _submit(client, _same, pd.DataFrame({"body": ["words"] * 1000}))
    kept = _submit(client, len, chunk)
    assert kept.result() == 1000
    assert look(chunk)  # Dask's own behaviour: the arguments stay while the task is kept
    del chunk, kept
    with _arguments_dropped(client):
        chunk = _submit(client, _same, pd.DataFrame({"body": ["words"] * 1000}))
        kept = _submit(client, len, chunk)
        assert kept.result() == 1000
        assert not look(chunk)
        assert chunk.result().shape == (1000, 1)  # the result itself is still there

        def _front_of_chunk(frame: pd.DataFrame, marker: str) -> int:  # named as the build's partition task
            if not os.path.exists(marker):
                Path(marker).touch()
                raise OSError("the first try fails")
            return len(frame)

        marker = tmp_path / "failed-once"  # a task that raised runs again with its arguments sent again
        assert _submit(client, _front_of_chunk, pd.DataFrame({"body": ["words"] * 7}), str(marker)).result() == 7
        assert marker.exists()

        # the build's own partition task: its chunk is let go once it has run, its parts stay
        (part,), _, _ = cut_articles(wikinews, lambda chars: [0, len(chars)])
        front = _submit(client, real_front, part, pd.Timestamp.now(tz="UTC"), rec.Recommender().text_params())
        report = _submit(client, _part, front, "provenance")
        assert report.result()["size"] == len(wikinews)
        assert not look(front)
    assert "recommender-drop-arguments" not in client.run(lambda dask_worker: list(dask_worker.plugins)).popitem()[1]


def test_a_task_runs_its_compiled_loops_on_its_own_thread_only() -> None:
    """A worker runs one task per thread: a task's parallel loops (a tile's, a merge's) must not start numba's
    other threads on the cores of the other workers; the count is per thread, so the caller's stays as it was."""
    import numba

    from recommender._cluster import _task

    before = numba.get_num_threads()
    seen: dict[str, int] = {}
    thread = threading.Thread(target=lambda: seen.update(inside=_task(numba.get_num_threads)()))
    thread.start()
    thread.join()
    assert seen["inside"] == 1
    assert numba.get_num_threads() == before


def test_dask_sees_the_memory_of_a_partitions_results(wikinews) -> None:
    """What a partition's task returns is data that Dask counts and can spill to disk, not hidden memory."""
    from dask.sizeof import sizeof

    from recommender._articles import cut_articles
    from recommender._cluster import _front_of_chunk

    (part,), _, _ = cut_articles(wikinews, lambda chars: [0, len(chars)])
    front = _front_of_chunk(part, pd.Timestamp.now(tz="UTC"), rec.Recommender().text_params())
    counts, sigs = front["counts"], front["described"]["signatures"]
    held = counts.counts.data.nbytes + counts.counts.indices.nbytes + counts.terms.nbytes
    assert held > 10_000 and sizeof(counts) >= held
    assert sizeof(sigs) >= sigs.values.nbytes + sigs.indptr.nbytes > 10_000
    assert sizeof(front) >= held + sigs.values.nbytes


def test_the_cluster_the_build_starts_itself_runs_no_profiler_and_spills_early() -> None:
    """The workers of ``workers=N`` (and ``--workers N``) run without Dask's sampling profiler and spill managed
    memory from lower thresholds than Dask's; a cluster given by the caller keeps its own settings."""
    import dask

    from recommender._cluster import connected, distributed

    distributed()  # Dask's worker settings are known once dask.distributed is imported

    def settings() -> tuple[bool, float, float]:
        import dask

        get = dask.config.get
        return (
            bool(get("distributed.worker.profile.enabled")),
            float(get("distributed.worker.memory.target")),
            float(get("distributed.worker.memory.spill")),
        )

    defaults = settings()
    with connected(None, 1) as own:
        [(profiling, target, spill)] = own.run(settings).values()
    assert not profiling
    assert target < defaults[1] and spill < defaults[2] and target < spill
    assert settings() == defaults  # this process's settings are as they were
    assert dask.config.get("distributed.worker.profile.enabled")


def test_a_killed_worker_still_gives_the_same_model(wikinews, local, client, tmp_path: Path) -> None:
    marker = tmp_path / "killed-once"

    def install(marker: str) -> None:
        """On each worker: the first tile computed after the marker is free kills its own worker process."""
        import recommender._cluster as cluster

        real = cluster.tile_pools

        def kill_once(*args, **kwargs):
            if args[1] is not None:  # a tile of two blocks
                try:
                    with open(marker, "x"):
                        pass
                except FileExistsError:
                    return real(*args, **kwargs)
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)

        cluster._real_tile_pools = real
        cluster.tile_pools = kill_once

    def uninstall() -> None:
        import recommender._cluster as cluster

        cluster.tile_pools = cluster.__dict__.pop("_real_tile_pools", cluster.tile_pools)

    before = set(client.scheduler_info()["workers"])
    client.run(install, str(marker))
    try:
        spread = rec.Recommender().fit(wikinews, client=client, block_rows=BLOCK, progress=False)
    finally:
        client.run(uninstall)
    assert marker.exists()  # a worker process really died mid-build
    client.wait_for_workers(2, timeout=60)
    assert set(client.scheduler_info()["workers"]) != before  # its nanny started a new one
    assert_same_model(spread, local)


def test_what_the_build_on_dask_refuses(wikinews, tmp_path: Path) -> None:
    # all of these are refused before a cluster starts (workers=2 would start one)
    with pytest.raises(ValueError, match="one process only"):
        rec.Recommender(mode="approx").fit(wikinews, workers=2)
    with pytest.raises(ValueError, match="not both"):
        rec.Recommender().fit(wikinews, workers=2, client="tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match="block_rows"):
        rec.Recommender().fit(wikinews, workers=2, block_rows=0)
    with pytest.raises(ValueError, match="block_rows"):
        rec.Recommender().fit(wikinews, block_rows=100)  # a setting of the build on Dask only
    with pytest.raises(TypeError, match="file paths"):
        rec.Recommender().fit({"article_id": ["a"]}, workers=2)
    with pytest.raises(FileNotFoundError, match=r"missing\.csv"):
        rec.Recommender().fit([str(tmp_path / "missing.csv")], workers=2)
    with pytest.raises(TypeError, match="load_articles"):
        rec.Recommender().fit([str(tmp_path / "a.csv")])  # paths without Dask: read them first


def test_strict_stops_at_a_duplicate_across_files(wikinews, client, tmp_path: Path) -> None:
    paths = [tmp_path / "a.csv", tmp_path / "b.csv"]
    wikinews.iloc[:50].to_csv(paths[0], index=False)
    wikinews.iloc[[10, *range(50, 90)]].to_csv(paths[1], index=False)
    with pytest.raises(rec.ArticleValidationError, match="duplicate article_id") as spread:
        rec.Recommender().fit([str(p) for p in paths], client=client, strict=True, progress=False)
    with pytest.raises(rec.ArticleValidationError) as local:
        rec.load_articles([str(p) for p in paths], strict=True)
    assert str(spread.value) == str(local.value)


def test_without_dask_the_build_says_what_to_install(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["dask"] = None  # as if dask were not installed
        import recommender as rec
        articles = rec.load_articles(rec.demo_corpus_path())
        try:
            rec.Recommender().fit(articles, workers=2)
        except ImportError as exc:
            print(exc)
        from recommender._cli import main
        print(main(["build", str(rec.demo_corpus_path()), "--out", {str(tmp_path / "m")!r}, "--workers", "2"]))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "pip install 'recommender[dask]'" in lines[0]
    assert lines[-1] != "0"
    assert "pip install 'recommender[dask]'" in done.stderr
    assert not (tmp_path / "m").exists()


def test_the_cli_builds_on_a_scheduler_the_same_model(wikinews, client, tmp_path: Path, capsys) -> None:
    source = tmp_path / "articles.jsonl"
    wikinews.assign(published=wikinews["published"].astype(str)).to_json(source, orient="records", lines=True)
    assert main(["build", str(source), "--out", str(tmp_path / "local"), "--quiet"]) == 0
    address = client.scheduler.address
    capsys.readouterr()
    assert main(["build", str(source), "--out", str(tmp_path / "dask"), "--scheduler", address, "--quiet"]) == 0
    printed = capsys.readouterr().err.splitlines()
    assert not [line for line in printed if "distributed" in line or "dask" in line.lower()]  # Dask stays quiet
    assert_same_model(rec.load_model(tmp_path / "dask"), rec.load_model(tmp_path / "local"))


def test_without_a_shared_file_system_the_data_travels_through_dask(wikinews, local, client, tmp_path: Path) -> None:
    """The workers cannot open, list or write anything under ``hidden`` (as on machines that do not share a
    file system with the client): the build, the save and ``precompute`` still work, through Dask."""
    from recommender._batch import PARTS_MANIFEST, precompute

    hidden = tmp_path / "hidden"
    hidden.mkdir()

    def hide(root: str) -> None:
        import builtins
        import os

        real_open, real_access, real_isdir = builtins.open, os.access, os.path.isdir

        def refused(path) -> bool:
            return isinstance(path, (str, os.PathLike)) and os.path.abspath(os.fspath(path)).startswith(root)

        def guarded_open(file, *args, **kwargs):
            if refused(file):
                raise PermissionError(f"this worker cannot see {file}")
            return real_open(file, *args, **kwargs)

        builtins.open = guarded_open
        os.access = lambda path, *a, **k: False if refused(path) else real_access(path, *a, **k)
        os.path.isdir = lambda path: False if refused(path) else real_isdir(path)
        builtins._recommender_unhide = (real_open, real_access, real_isdir)

    def unhide() -> None:
        import builtins
        import os

        saved = builtins.__dict__.pop("_recommender_unhide", None)
        if saved is not None:
            builtins.open, os.access, os.path.isdir = saved

    client.run(hide, str(hidden))
    try:
        spread = rec.Recommender().fit(wikinews, client=client, block_rows=BLOCK, progress=False)
        spread.save(hidden / "model")
        result = precompute(hidden / "model", hidden / "lists", k=5, rows_per_part=50, client=client, progress=False)
        loaded = client.run(lambda: [f for f, _ in __import__("recommender._batch", fromlist=["_MODELS"])._MODELS])
    finally:
        client.run(unhide)
    assert_same_model(spread, local)
    assert result.computed == result.parts == 6
    local.save(tmp_path / "model")
    truth = precompute(tmp_path / "model", tmp_path / "lists", k=5, rows_per_part=50, progress=False)
    found = json.loads((hidden / "lists" / PARTS_MANIFEST).read_text())
    expected = json.loads((tmp_path / "lists" / PARTS_MANIFEST).read_text())
    assert [p["sha256"] for p in found["parts"]] == [p["sha256"] for p in expected["parts"]]  # byte for byte
    assert truth.items == result.items
    assert not any(f.startswith(str(hidden)) for folders in loaded.values() for f in folders)  # none read the path


def test_a_file_the_workers_cannot_read_as_articles_is_one_clear_error(wikinews, client, tmp_path: Path) -> None:
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    wikinews.iloc[:50].to_csv(good, index=False)
    bad.write_text("headline,words\nno id here,at all\n", encoding="utf-8")
    with pytest.raises(rec.SchemaError, match="article_id"):
        rec.Recommender().fit([str(good), str(bad)], client=client, progress=False)
