#!/usr/bin/env python
"""Quality bar: precision@5 of neighbours sharing the label, through the public API.

For every article, its 5 recommended articles are checked against its label; the
figure is the mean share that agrees (a list shorter than 5 counts its missing
items as misses). Rows, each a model fitted on the corpus:

* ``content-only``: the engine's default vectors and neighbour search with the
  list controls that are not about content switched off (:data:`CONTENT_ONLY`:
  no popularity prior, no duplicate collapse, no fallback);
* ``defaults``: ``Recommender()`` exactly as a user gets it (duplicate collapse
  and fallback on; these corpora have no views, so the popularity prior is 0);
* ``collapse off``: the defaults with ``collapse=False``. The bar of the
  defaults: at most 0.005 below this row, i.e. collapsing copies never costs
  relevance. ``grouped`` is the share of articles in a duplicate group of two or
  more under the defaults.

Corpora (research use only, read from ``../shared/data``, never copied here;
exact duplicate texts dropped before fitting, see ``benchmarks/corpora.py``):

* BBC News: title + text, label = category (bar 0.94)
* 20 Newsgroups: subject as title, body without quoted lines, label = newsgroup (bar 0.83)
* Reuters-21578: stories with exactly one topic and a body over 50 characters, label = topic (bar 0.86)

The same protocol is also run with the plain baseline
``TfidfVectorizer(sublinear_tf=True, stop_words='english', min_df=2, max_df=0.5)`` over
title + body, in the same run, for comparison. ``--stop-words news english none``
adds the content-only and defaults figures of each stop list.

Usage::

    python benchmarks/quality.py [--corpus bbc 20newsgroups reuters] [--k 5] [--no-baseline] [--stop-words ...]

Prints one table; exits 1 if a corpus is below its bar, or the defaults cost more than 0.005.
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
CONTENT_ONLY = {"popularity_weight": 0.0, "collapse": False, "fallback": False, "n_jobs": 1}
BARS = {"bbc": 0.94, "20newsgroups": 0.83, "reuters": 0.86}
#: The defaults may cost at most this much precision against the same model with the collapse off.
COLLAPSE_COST = 0.005
LOADERS = {"bbc": corpora.load_bbc, "20newsgroups": corpora.load_20newsgroups, "reuters": corpora.load_reuters}


def precision_at_k(frame: pd.DataFrame, k: int, **params: object) -> tuple[float, float, float]:
    """Mean share of each article's top-k list that shares its label; the share of articles grouped; fit seconds."""
    labels = dict(zip(frame["article_id"], frame["label"], strict=True))
    start = time.perf_counter()
    model = rec.Recommender(**params).fit(frame.drop(columns=["label"]))
    seconds = time.perf_counter() - start
    lists = model.recommend_frame(k=k)
    agree = lists["recommended_id"].map(labels).to_numpy() == lists["article_id"].map(labels).to_numpy()
    per_article = pd.Series(agree).groupby(lists["article_id"].to_numpy()).sum() / k  # short lists count as misses
    per_article = per_article.reindex(frame["article_id"], fill_value=0.0)
    groups = np.asarray(model.groups_)
    grouped = float((np.bincount(groups)[groups] > 1).mean())
    return float(per_article.mean()), grouped, seconds


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
        "--stop-words", nargs="+", choices=["news", "english", "none"], default=[], help="also measure these stop lists"
    )
    args = parser.parse_args(argv)
    print(f"recommender {rec.__version__}; defaults: {rec.Recommender().get_params()}")
    header = f"{'corpus':<14}{'articles':>9}{'labels':>8}  {'row':<24}{'P@' + str(args.k):>8}{'bar':>7}{'grouped':>9}{'fit s':>7}"
    print(header)
    failed = False
    for name in args.corpus:
        try:
            frame = LOADERS[name]()
        except FileNotFoundError as exc:
            print(f"{name:<14} skipped: {exc}")
            continue
        rows = [("content-only", CONTENT_ONLY), ("defaults", {}), ("collapse off", {"collapse": False})]
        for words in args.stop_words:
            value = None if words == "none" else words
            rows += [
                (f"content-only, {words}", {**CONTENT_ONLY, "stop_words": value}),
                (f"defaults, {words}", {"stop_words": value}),
            ]
        figures = {}
        for label, params in rows:
            figures[label] = precision_at_k(frame, args.k, **params)
            score, grouped, seconds = figures[label]
            bar = BARS[name] if args.k == 5 and label == "content-only" else float("nan")
            failed |= label == "content-only" and score < bar
            print(
                f"{name:<14}{len(frame):>9,}{frame['label'].nunique():>8}  {label:<24}{score:>8.4f}{bar:>7.2f}"
                f"{grouped:>9.4f}{seconds:>7.1f}",
                flush=True,
            )
        cost = figures["collapse off"][0] - figures["defaults"][0]
        failed |= cost > COLLAPSE_COST
        if not args.no_baseline:
            print(f"{name:<14}{'':>17}  {'TfidfVectorizer baseline':<24}{baseline_precision_at_k(frame, args.k):>8.4f}")
        print(f"{name:<14}{'':>17}  the collapse costs {cost:+.4f} (bar: at most {COLLAPSE_COST})", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
