#!/usr/bin/env python
"""Quality bar: precision@5 of neighbours sharing the label, content only, through the public API.

For every article, its 5 recommended articles are checked against its label; the
figure is the mean share that agrees (a list shorter than 5 counts its missing
items as misses). "Content only" is the engine's default vectors and neighbour
search with the list controls that are not about content switched off
(:data:`CONTENT_ONLY`: no popularity prior, no duplicate collapse, no fallback);
``--list-controls`` also reports the figure with the default collapse and
fallback, which hide same-story items (on 20 Newsgroups, a thread's replies
share one subject line and so count as one story). Corpora
(research use only, read from ``../shared/data``, never copied here; exact
duplicate texts dropped before fitting, see ``benchmarks/corpora.py``):

* BBC News: title + text, label = category (bar 0.94)
* 20 Newsgroups: subject as title, body without quoted lines, label = newsgroup (bar 0.83)
* Reuters-21578: stories with exactly one topic and a body over 50 characters, label = topic (bar 0.86)

The same protocol is also run with the plain baseline
``TfidfVectorizer(sublinear_tf=True, stop_words='english', min_df=2, max_df=0.5)`` over
title + body, in the same run, for comparison.

Usage::

    python benchmarks/quality.py [--corpus bbc 20newsgroups reuters] [--k 5] [--no-baseline]

Prints one table; exits 1 if a corpus is below its bar.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpora

import recommender as rec

#: Content only: no popularity prior, no boosts, no duplicate collapse (exact duplicates are dropped from the
#: corpora beforehand), no fallback filling; the lists are the neighbours by similarity.
CONTENT_ONLY = {"popularity_weight": 0.0, "duplicate_threshold": None, "fallback": False, "n_jobs": 1}
BARS = {"bbc": 0.94, "20newsgroups": 0.83, "reuters": 0.86}
LOADERS = {"bbc": corpora.load_bbc, "20newsgroups": corpora.load_20newsgroups, "reuters": corpora.load_reuters}


def precision_at_k(frame: pd.DataFrame, k: int, **params: object) -> tuple[float, float]:
    """Mean share of each article's top-k list that shares its label; and the fit time."""
    labels = dict(zip(frame["article_id"], frame["label"], strict=True))
    start = time.perf_counter()
    model = rec.Recommender(**{**CONTENT_ONLY, **params}).fit(frame.drop(columns=["label"]))
    seconds = time.perf_counter() - start
    lists = model.recommend_frame(k=k)
    agree = lists["recommended_id"].map(labels).to_numpy() == lists["article_id"].map(labels).to_numpy()
    per_article = pd.Series(agree).groupby(lists["article_id"].to_numpy()).sum() / k  # short lists count as misses
    per_article = per_article.reindex(frame["article_id"], fill_value=0.0)
    return float(per_article.mean()), seconds


def baseline_precision_at_k(frame: pd.DataFrame, k: int) -> float:
    """The plain TfidfVectorizer baseline over title + body, same protocol."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from recommender._neighbours import top_neighbours

    vectors = TfidfVectorizer(sublinear_tf=True, stop_words="english", min_df=2, max_df=0.5, dtype=np.float32)
    matrix = vectors.fit_transform((frame["title"] + " " + frame["body"]).tolist())
    rows, _ = top_neighbours(matrix.tocsr(), k)
    labels = frame["label"].to_numpy()
    agree = (labels[np.where(rows >= 0, rows, 0)] == labels[:, None]) & (rows >= 0)
    return float(agree.mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", nargs="+", choices=list(LOADERS), default=list(LOADERS))
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--list-controls",
        action="store_true",
        help="also measure with the default list controls (duplicate collapse, fallback)",
    )
    args = parser.parse_args(argv)
    print(f"recommender {rec.__version__}; defaults: {rec.Recommender().get_params()}")
    print(f"{'corpus':<14}{'articles':>9}{'labels':>8}{'P@' + str(args.k):>8}{'bar':>7}{'baseline':>10}{'fit s':>8}")
    failed = False
    for name in args.corpus:
        try:
            frame = LOADERS[name]()
        except FileNotFoundError as exc:
            print(f"{name:<14} skipped: {exc}")
            continue
        score, seconds = precision_at_k(frame, args.k)
        if args.list_controls:
            listed, _ = precision_at_k(frame, args.k, duplicate_threshold=0.8, fallback=True)
            print(f"{name:<14} with default duplicate collapse and fallback: P@{args.k} {listed:.4f}")
        base = float("nan") if args.no_baseline else baseline_precision_at_k(frame, args.k)
        bar = BARS[name] if args.k == 5 else float("nan")
        failed |= score < bar
        print(
            f"{name:<14}{len(frame):>9,}{frame['label'].nunique():>8}{score:>8.4f}{bar:>7.2f}{base:>10.4f}{seconds:>8.1f}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
