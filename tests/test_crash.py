"""Crash safety: a real process is killed (SIGKILL) while it saves a model or precomputes lists.

After a kill during ``save`` the previous model stays intact and loadable; after a
kill during ``precompute`` a restarted job completes with output identical to an
uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import recommender as rec

pytestmark = pytest.mark.skipif(os.name == "nt", reason="uses SIGKILL")

ROOT = Path(__file__).resolve().parents[1]
N_ARTICLES = 6000


def corpus(n: int) -> pd.DataFrame:
    """n articles drawn from 40 topics of 25 made-up words each."""
    rng = np.random.default_rng(1)
    words = np.array([f"w{i}" for i in range(1000)])
    topics = rng.integers(0, 40, n)
    body = [" ".join(rng.choice(words[t * 25 : t * 25 + 25], 30)) for t in topics]
    return pd.DataFrame(
        {
            "article_id": [f"n{i}" for i in range(n)],
            "title": [" ".join(b.split()[:6]) for b in body],
            "body": body,
            "views": rng.integers(0, 10_000, n),
            "published": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D"),
        }
    )


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crash") / "model"
    rec.Recommender(n_jobs=1).fit(corpus(N_ARTICLES)).save(root)
    return root


def lists(model: rec.Recommender, ids: list[str]) -> dict[str, list[tuple[str, float]]]:
    return {a: [(r.article_id, r.score) for r in model.recommend(a, k=5)] for a in ids}


def start(code: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def kill_when(child: subprocess.Popen, ready, timeout: float = 60.0) -> str:
    """SIGKILL ``child`` as soon as ``ready()`` is true; fails if the child ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.poll() is None:
        if ready():
            child.send_signal(signal.SIGKILL)
            child.communicate()  # reap it and close the pipes
            return "killed"
        time.sleep(0.0005)
    if child.poll() is None:
        child.kill()
    _, stderr = child.communicate()
    raise AssertionError(f"the child was not killed at the chosen point (it ended or timed out): {stderr[-2000:]}")


SAVE_FOREVER = """
import sys, recommender as rec
model = rec.load_model(sys.argv[1])
print("loaded", flush=True)
while True:
    model.save(sys.argv[1])
"""


@pytest.mark.parametrize("files_written", [0, 8, 30])
def test_a_save_killed_midway_leaves_the_previous_model_loadable(saved: Path, files_written: int) -> None:
    before = rec.load_model(saved)
    sample = before.articles_["article_id"].tolist()[::500]
    expected = lists(before, sample)

    def staging_with_enough_files() -> bool:
        for entry in saved.glob(".staging-*"):
            try:
                if len(os.listdir(entry)) >= files_written:
                    return True
            except FileNotFoundError:  # renamed into place meanwhile
                pass
        return False

    child = start(SAVE_FOREVER, str(saved))
    assert child.stdout is not None and child.stdout.readline().strip() == "loaded"
    kill_when(child, staging_with_enough_files)
    leftovers = list(saved.glob(".staging-*"))
    assert leftovers  # the kill really interrupted a save

    after = rec.load_model(saved)  # checksums of every file verified
    assert lists(after, sample) == expected
    # the next save removes what the killed one left behind
    after.save(saved)
    assert not any(p.exists() for p in leftovers)
    assert lists(rec.load_model(saved), sample) == expected


# argv: model, out, rows per part
PRECOMPUTE = """
import sys
from recommender._cli import main
sys.exit(main(["precompute", sys.argv[1], "--out", sys.argv[2], "--rows-per-part", sys.argv[3], "--quiet"]))
"""


def test_a_precompute_killed_midway_resumes_to_identical_output(saved: Path, tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    # 8 rows per part: 750 parts, so that the job outlasts the ledger's first save with parts in it (once a second)
    rec.precompute(saved, clean, rows_per_part=8, progress=False)

    out = tmp_path / "lists"

    def some_parts_recorded() -> bool:  # the ledger is written atomically, at most once a second
        try:
            recorded = json.loads((out / "_parts.json").read_text(encoding="utf-8"))["parts"]
        except FileNotFoundError:
            return False
        return len(recorded) >= 1 and len(list(out.glob("part-*.parquet"))) >= 3

    child = start(PRECOMPUTE, str(saved), str(out), "8")
    kill_when(child, some_parts_recorded)
    done = sorted(p.name for p in out.glob("part-*.parquet"))
    total = len(list(clean.glob("part-*.parquet")))
    assert 3 <= len(done) < total  # killed midway

    child = start(PRECOMPUTE, str(saved), str(out), "8")
    stdout, stderr = child.communicate(timeout=300)
    assert child.returncode == 0, stderr
    assert "reused" in stdout and " 0 reused" not in stdout
    assert sorted(p.name for p in out.glob("part-*.parquet")) == sorted(p.name for p in clean.glob("part-*.parquet"))
    for part in clean.glob("part-*.parquet"):
        assert (out / part.name).read_bytes() == part.read_bytes(), part.name
    assert not list(out.glob(".*.tmp"))
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(clean))


def test_a_precompute_to_one_file_killed_midway_leaves_no_partial_file(saved: Path, tmp_path: Path) -> None:
    clean = tmp_path / "clean.parquet"
    rec.precompute(saved, clean, rows_per_part=20, progress=False)
    target = tmp_path / "lists.parquet"

    def work_started() -> bool:  # parts are computed in a work directory next to the target
        return any(len(list(p.glob("part-*.parquet"))) >= 3 for p in tmp_path.glob(".lists.parquet*"))

    child = start(PRECOMPUTE, str(saved), str(target), "20")
    kill_when(child, work_started)
    assert not target.exists()  # never half a file under the final name

    child = start(PRECOMPUTE, str(saved), str(target), "20")
    _, stderr = child.communicate(timeout=300)
    assert child.returncode == 0, stderr
    pd.testing.assert_frame_equal(pd.read_parquet(target), pd.read_parquet(clean))
