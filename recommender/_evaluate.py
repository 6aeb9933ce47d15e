"""Evaluation: is a list better? Label agreement, co-reading and list health, with baselines.

Three families of figures, each for the configured model and the baselines
``random``, ``most-popular`` and ``content-only`` in one tidy table (columns
``method, metric, k, value, n``):

* **Label agreement** (when the articles have a label column, ``category`` by
  default): ``precision@k``, the share of an article's list that shares its
  label, and ``ndcg@k`` with binary relevance, where the ideal list holds
  ``min(k, articles with the same label)`` relevant items.
* **Co-reading** (when an interactions log is given): the log is split at a time
  ``T``. Everything a recommender learns from the log (the view counts of the
  popularity prior and of the most-popular baseline) comes from reads before
  ``T`` only. A *query* is a user's read of an article ``A`` at ``t < T``; its
  ground truth is the other articles the same user read next, at or after ``T``
  and within ``window`` of ``t``. ``hit_rate@k`` is the share of queries whose
  list holds at least one of them, ``recall@k`` the mean share of the ground
  truth found in the list; the ranking is over the full catalogue (no sampled
  negatives). ``pairs`` counts (query, ground-truth article) pairs; fewer than
  ``min_pairs`` gives a warning that the figures are too noisy to trust.
* **Honest figures.** When the label column is a signal the ranking uses (the
  model's ``category`` with ``category_boost``, ``same_category`` or
  ``categories``; its ``tags`` with ``tag_boost`` or ``min_shared_tags``), the
  model's label figures are partly the label ranked by itself: ``evaluate``
  then also reports :data:`BLIND` (the same model with those signals off) and
  raises an :class:`EvaluationWarning` naming them. A baseline that cannot mean
  anything on the data, ``most-popular`` when no article has views, is reported
  with ``value`` NaN and a ``note`` saying why, not as a figure.
* **List health**: ``mean_similarity`` (mean cosine between source and
  recommended article: a relevance proxy where there are no labels),
  ``coverage`` (share of the catalogue that appears in any
  list), ``intra_list_similarity`` (mean cosine between items of one list, so
  lower is more diverse), ``duplicate_rate`` (share of lists holding two members
  of one duplicate group), ``popularity_gini`` (Gini coefficient of how often each
  article is recommended: 0 = all equally, 1 = always the same one) and
  ``median_age_gap_days`` (between source and recommended article).

All functions are pure with respect to their inputs: no file is read here.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from ._articles import ALIASES, validate_articles
from ._dates import DAY_NS, NAT, to_ns
from ._errors import SchemaError
from ._model import Recommender
from ._ranking import CONTENT_ONLY

__all__ = [
    "EvaluationWarning",
    "co_reading_pairs",
    "evaluate",
    "gini",
    "sweep",
]

METHODS = ("random", "most-popular", "content-only", "model")
#: The method row of the model with the ranking signals taken from the label column switched off.
BLIND = "model (label signals off)"
#: Controls that rank by each column a label may come from, and their values when off.
LABEL_SIGNALS = {
    "category": {"category_boost": 0.0, "same_category": False, "categories": None},
    "tags": {"tag_boost": 0.0, "min_shared_tags": 0},
}
NO_VIEWS = "not measured: no article has views, so most-popular would be an arbitrary order"


class EvaluationWarning(UserWarning):
    """Figures that cannot be trusted: too little data, or a label the ranking itself uses."""


# --------------------------------------------------------------------------- interactions


def _interactions(log: pd.DataFrame) -> pd.DataFrame:
    """Validate a ``user_id, article_id, timestamp`` table (UTC timestamps, string ids)."""
    missing = [c for c in ("user_id", "article_id", "timestamp") if c not in log.columns]
    if missing:
        raise SchemaError(
            f"The interactions log lacks {missing}: expected columns user_id, article_id, timestamp "
            f"(found {', '.join(map(str, log.columns))})."
        )
    out = pd.DataFrame(
        {
            "user_id": log["user_id"].astype(str),
            "article_id": log["article_id"].astype(str),
            "timestamp": pd.to_datetime(log["timestamp"], utc=True, errors="coerce", format="mixed"),
        }
    )
    bad = out["timestamp"].isna() & log["timestamp"].notna()
    if bad.any():
        raise SchemaError(
            f"{int(bad.sum())} interaction timestamps are not dates (first: {log['timestamp'][bad].iloc[0]!r})."
        )
    return out


def co_reading_pairs(
    log: pd.DataFrame, split_time: pd.Timestamp, window: pd.Timedelta, catalogue: Iterable[str] | None = None
) -> pd.DataFrame:
    """The (query, ground truth) pairs of the co-reading protocol (see the module docstring).

    A read without a timestamp (NaT) is a read before the log began: a source,
    never a ground-truth item. Reads of articles outside ``catalogue`` are left
    out on both sides.

    Returns
    -------
    DataFrame
        Columns ``user_id, article_id`` (the source) and ``target_id``, one row
        per pair, sorted.
    """
    log = _interactions(log)
    if catalogue is not None:
        log = log[log["article_id"].isin(set(catalogue))]
    before = log[log["timestamp"].isna() | (log["timestamp"] < split_time)]
    after = log[log["timestamp"] >= split_time]
    merged = before.merge(after, on="user_id", suffixes=("", "_next"))
    # a read before the log began (NaT) is taken to be just before T
    source_time = merged["timestamp"].fillna(split_time)
    keep = (merged["timestamp_next"] <= source_time + window) & (merged["article_id"] != merged["article_id_next"])
    pairs = merged.loc[keep, ["user_id", "article_id", "article_id_next"]].rename(
        columns={"article_id_next": "target_id"}
    )
    return pairs.drop_duplicates().sort_values(["user_id", "article_id", "target_id"], ignore_index=True)


def _views_before(log: pd.DataFrame, split_time: pd.Timestamp) -> pd.Series:
    """Reads per article before T: the only popularity signal a leak-free recommender may use."""
    log = _interactions(log)
    before = log[log["timestamp"].isna() | (log["timestamp"] < split_time)]
    return before.groupby("article_id").size().astype(float)


# --------------------------------------------------------------------------- lists per method


def _lists(method: str, model: Recommender, content: Recommender, k: int, rows: np.ndarray, seed: int) -> np.ndarray:
    """Recommended rows, shape (len(rows), k), -1 for empty slots."""
    n = model.n_articles
    if method == "random":
        rng = np.random.default_rng(seed)
        out = np.full((len(rows), k), -1, dtype=np.int64)
        width = min(k, n - 1)
        for i, row in enumerate(rows):
            choice = rng.choice(n - 1, size=width, replace=False)
            out[i, :width] = np.where(choice >= row, choice + 1, choice)  # never the source
        return out
    if method == "most-popular":
        order = np.lexsort((np.arange(n), -np.asarray(model.popularity_)))
        top = order[: k + 1]
        out = np.full((len(rows), k), -1, dtype=np.int64)
        for i, row in enumerate(rows):
            out[i] = [r for r in top if r != row][:k]
        return out
    chosen = content if method == "content-only" else model
    frame = chosen.recommend_frame(k=k, article_ids=[model.article_ids[r] for r in rows])
    out = np.full((len(rows), k), -1, dtype=np.int64)
    position = {r: i for i, r in enumerate(rows.tolist())}
    for source, rank, target in zip(frame["article_id"], frame["rank"], frame["recommended_id"], strict=True):
        out[position[model.row_of(source)], rank - 1] = model.row_of(target)
    return out


# --------------------------------------------------------------------------- metrics


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0 = equal, towards 1 = concentrated)."""
    values = np.sort(np.asarray(counts, dtype=np.float64))
    if values.size == 0 or values.sum() == 0:
        return 0.0
    n = values.size
    index = np.arange(1, n + 1)
    return float((2 * np.sum(index * values) / (n * values.sum())) - (n + 1) / n)


def _label_metrics(lists: np.ndarray, rows: np.ndarray, labels: np.ndarray, k: int) -> dict[str, float]:
    """Precision and nDCG of lists of labelled sources; unlabelled items are never relevant."""
    present = lists >= 0
    source_label = labels[rows][:, None]
    relevant = present & (labels[np.where(present, lists, 0)] == source_label) & pd.notna(source_label)
    precision = relevant.sum(axis=1) / k
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (relevant * discounts).sum(axis=1)
    same = pd.Series(labels).map(pd.Series(labels).value_counts()).fillna(1).to_numpy()[rows] - 1
    ideal = np.array([discounts[: min(k, int(s))].sum() for s in same])
    ndcg = np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)
    return {"precision": float(precision.mean()), "ndcg": float(ndcg.mean())}


def _health(model: Recommender, lists: np.ndarray, rows: np.ndarray) -> dict[str, float]:
    n = model.n_articles
    present = lists >= 0
    recommended = lists[present]
    counts = np.bincount(recommended, minlength=n)
    similarities = []
    relevance = []
    duplicate_lists = 0
    groups = np.asarray(model.groups_)
    for source, items in zip(rows, lists, strict=True):
        items = items[items >= 0]
        if items.size:
            relevance.append(float((model.vectors_[items] @ model.vectors_[int(source)].T).toarray().mean()))
        if items.size >= 2:
            block = model.vectors_[items]
            pair = (block @ block.T).toarray()
            upper = pair[np.triu_indices(items.size, 1)]
            similarities.append(float(upper.mean()))
            duplicate_lists += len(set(groups[items].tolist())) < items.size
    ns = to_ns(model.articles_["published"])
    sources = np.repeat(rows, lists.shape[1]).reshape(lists.shape)[present]
    dated = (ns[sources] != NAT) & (ns[recommended] != NAT)
    gaps = np.abs(ns[sources][dated] - ns[recommended][dated]) / DAY_NS
    return {
        "mean_similarity": float(np.mean(relevance)) if relevance else float("nan"),
        "coverage": float((counts > 0).sum() / n),
        "intra_list_similarity": float(np.mean(similarities)) if similarities else float("nan"),
        "duplicate_rate": duplicate_lists / max(len(lists), 1),
        "popularity_gini": gini(counts),
        "median_age_gap_days": float(np.median(gaps)) if gaps.size else float("nan"),
    }


def _co_reading(
    model: Recommender, lists: np.ndarray, rows: np.ndarray, pairs: pd.DataFrame, k: int
) -> dict[str, float]:
    position = {r: i for i, r in enumerate(rows.tolist())}
    hits = []
    recalls = []
    for (_, source), group in pairs.groupby(["user_id", "article_id"], sort=False):
        row = model.row_of(source)
        listed = {model.article_ids[r] for r in lists[position[row]] if r >= 0}
        truth = set(group["target_id"])
        found = len(truth & listed)
        hits.append(found > 0)
        recalls.append(found / len(truth))
    return {
        "hit_rate": float(np.mean(hits)) if hits else float("nan"),
        "recall": float(np.mean(recalls)) if recalls else float("nan"),
        "queries": float(len(hits)),
        "pairs": float(len(pairs)),
    }


# --------------------------------------------------------------------------- entry points


def evaluate(
    articles: pd.DataFrame,
    model: Recommender | Mapping[str, Any] | None = None,
    *,
    k: int = 5,
    labels: str | None = "category",
    interactions: pd.DataFrame | None = None,
    split_time: str | pd.Timestamp | None = None,
    window: str | pd.Timedelta = "1D",
    sample: int | None = None,
    min_pairs: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Evaluate a model's lists against baselines, in one tidy table.

    Parameters
    ----------
    articles : DataFrame
        The catalogue (as for ``Recommender.fit``); a ``labels`` column, when
        present, gives the label-agreement metrics. It is not modified.
    model : Recommender or mapping, optional
        An unfitted model, or its parameters; fitted here on ``articles`` (with
        the view counts of the log before ``split_time`` when a log is given).
        Default: ``Recommender()``.
    k : int, default 5
        List length.
    labels : str or None, default "category"
        Label column for precision@k and nDCG@k; skipped when absent.
    interactions : DataFrame, optional
        A ``user_id, article_id, timestamp`` log (see :func:`interactions_from_mind`
        for MIND) for the co-reading metrics.
    split_time : str or Timestamp, optional
        ``T``; default: the 80th percentile of the log's timestamps.
    window : str or Timedelta, default "1D"
        How long after a read the next reads count as ground truth.
    sample : int, optional
        Evaluate the lists of this many articles (seeded); default all.
    min_pairs : int, default 200
        Fewer co-reading pairs than this raise an :class:`EvaluationWarning`.
    seed : int, default 0
        Seed of the random baseline and the sample.

    Returns
    -------
    DataFrame
        Columns ``method, metric, k, value, n, note``: ``method`` in ``random,
        most-popular, content-only, model`` (and :data:`BLIND` when the label
        column is a ranking signal); ``n`` is the number of lists (or queries) a
        figure rests on; ``note`` says why a figure is not measured (``value``
        NaN), else it is empty.

    Warns
    -----
    EvaluationWarning
        Fewer than ``min_pairs`` co-reading pairs, or a label column that the
        ranking uses (see the module docstring).
    """
    if isinstance(model, Recommender):
        configured = clone(model)  # the caller's model is left as it was
    else:
        configured = Recommender(**dict(model or {}))
    table = validate_articles(articles)
    pairs = None
    if interactions is not None:
        log = _interactions(interactions)
        stamps = log["timestamp"].dropna()
        if split_time is None:
            if stamps.empty:
                raise SchemaError("The interactions log has no timestamps: give split_time.")
            split = stamps.quantile(0.8)
        else:
            split = pd.Timestamp(split_time)
            split = split.tz_localize("UTC") if split.tzinfo is None else split.tz_convert("UTC")
        views = _views_before(log, split)
        table = table.assign(views=table["article_id"].map(views).fillna(0.0).to_numpy(dtype=float))
        pairs = co_reading_pairs(log, split, pd.Timedelta(window), catalogue=table["article_id"])
        if len(pairs) < min_pairs:
            warnings.warn(
                f"Only {len(pairs)} co-reading pairs (fewer than {min_pairs}): the co-reading figures are too noisy "
                "to trust. Use a longer log, a wider window or an earlier split_time.",
                EvaluationWarning,
                stacklevel=2,
            )
    fitted = configured.fit(table)
    content = Recommender(**{**fitted.get_params(), **CONTENT_ONLY}).fit(table)
    label_values = _labels(articles, labels, fitted.article_ids)
    leaks = _label_signals(fitted, labels, label_values)
    methods: list[tuple[str, Recommender | None]] = [(m, None) for m in METHODS]
    if leaks:
        used = ", ".join(f"{name}={value!r}" for name, value in leaks.items())
        warnings.warn(
            f"The label column {labels!r} is a signal the ranking uses ({used}): the model's label figures rank "
            f"articles by their own label. Compare the row {BLIND!r}, the same model with it off.",
            EvaluationWarning,
            stacklevel=2,
        )
        off = {name: value for column in LABEL_SIGNALS.values() for name, value in column.items() if name in leaks}
        methods.append((BLIND, Recommender(**{**fitted.get_params(), **off}).fit(table)))
    has_views = bool(np.isfinite(table["views"].to_numpy(dtype=float)).any())
    n = fitted.n_articles
    rng = np.random.default_rng(seed)
    rows = np.arange(n) if sample is None or sample >= n else np.sort(rng.choice(n, size=sample, replace=False))
    query_rows = np.empty(0, dtype=np.int64)
    if pairs is not None and len(pairs):
        query_rows = np.array(sorted({fitted.row_of(a) for a in pairs["article_id"]}), dtype=np.int64)
    needed = np.union1d(rows, query_rows)
    at = np.searchsorted(needed, rows)
    records = []
    for method, other in methods:
        lists = _lists("model" if other is not None else method, other or fitted, content, k, needed, seed)
        mine = lists[at]
        note = NO_VIEWS if method == "most-popular" and not has_views else ""
        figures_of: list[tuple[dict[str, float], int]] = []
        if label_values is not None:
            labelled = pd.notna(label_values[rows])
            if labelled.any():
                figures_of.append(
                    (_label_metrics(mine[labelled], rows[labelled], label_values, k), int(labelled.sum()))
                )
        if pairs is not None:
            figures = _co_reading(fitted, lists, needed, pairs, k)
            figures_of.append((figures, int(figures.pop("queries"))))
        figures_of.append((_health(fitted, mine, rows), len(rows)))
        for figures, n in figures_of:
            for name, value in figures.items():
                records.append((method, name, k, float("nan") if note else value, n, note))
    return pd.DataFrame.from_records(records, columns=["method", "metric", "k", "value", "n", "note"])


def _label_signals(model: Recommender, labels: str | None, values: np.ndarray | None) -> dict[str, Any]:
    """The ranking controls of ``model`` that rank by the label column itself, with their values (empty if none)."""
    if labels is None or values is None:
        return {}
    column = next((c for c in LABEL_SIGNALS if labels == c or labels.strip().lower() in ALIASES[c]), None)
    if column is None:  # another column: still a leak if it holds the model's categories
        category = model.articles_["category"].to_numpy(dtype=object)
        both = pd.notna(values) & pd.notna(category)
        same = bool(both.any()) and all(str(a) == str(b) for a, b in zip(values[both], category[both], strict=True))
        column = "category" if same else None
    if column is None:
        return {}
    params = model.get_params()
    return {name: params[name] for name, off in LABEL_SIGNALS[column].items() if params[name] != off}


def _labels(articles: pd.DataFrame, labels: str | None, article_ids: list[str]) -> np.ndarray | None:
    """The label of every fitted article (None where missing), or None without a label column."""
    if labels is None or labels not in articles.columns:
        return None
    columns = {str(c).strip().lower(): c for c in articles.columns}
    names = ["article_id", *ALIASES["article_id"]]
    id_column = next((columns[name] for name in names if name in columns), None)
    if id_column is None:
        return None
    ids = [str(int(v)) if isinstance(v, float) and v.is_integer() else str(v).strip() for v in articles[id_column]]
    by_id = dict(zip(ids, articles[labels], strict=True))
    return np.array([by_id.get(a) for a in article_ids], dtype=object)


def sweep(
    articles: pd.DataFrame,
    grid: Mapping[str, Sequence[Any]],
    *,
    base: Mapping[str, Any] | None = None,
    k: int = 5,
    labels: str | None = "category",
    interactions: pd.DataFrame | None = None,
    split_time: str | pd.Timestamp | None = None,
    window: str | pd.Timedelta = "1D",
    sample: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Evaluate the model over a grid of parameters.

    Parameters
    ----------
    grid : mapping of parameter name to values
        E.g. ``{"popularity_weight": [0, 0.1, 0.3], "half_life_days": [None, 30]}``;
        every combination is fitted and evaluated (the full product).
    base : mapping, optional
        Parameters shared by every combination.

    Returns
    -------
    DataFrame
        One row per combination: the parameters, then one column per metric of
        the configured model (the baselines are in :func:`evaluate`).
    """
    names = list(grid)
    unknown = sorted(set(names) - set(Recommender().get_params()))
    if unknown:
        raise ValueError(f"Unknown parameters in grid: {unknown}.")
    rows = []
    for values in itertools.product(*(grid[name] for name in names)):
        params = {**dict(base or {}), **dict(zip(names, values, strict=True))}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EvaluationWarning)
            result = evaluate(
                articles,
                params,
                k=k,
                labels=labels,
                interactions=interactions,
                split_time=split_time,
                window=window,
                sample=sample,
                seed=seed,
            )
        mine = result[result["method"] == "model"].set_index("metric")["value"]
        rows.append({**dict(zip(names, values, strict=True)), **mine.to_dict()})
    return pd.DataFrame(rows)


def plot_sweep(results: pd.DataFrame, *, quality: str = "precision", path: str | None = None) -> Any:
    """Trade-off plot of a :func:`sweep`: ``quality`` against popularity concentration and age gap.

    Needs matplotlib (``pip install 'recommender[notebooks]'``). Returns the
    figure; with ``path`` it is also saved there.
    """
    try:
        import matplotlib

        if path is not None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plot_sweep needs matplotlib: pip install 'recommender[notebooks]'") from exc
    if quality not in results.columns:
        raise ValueError(f"{quality!r} is not a column of the sweep results ({', '.join(results.columns)}).")
    parameters = [c for c in results.columns if c not in _METRIC_NAMES]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, x, label in (
        (axes[0], "popularity_gini", "popularity concentration (Gini of recommendation counts)"),
        (axes[1], "median_age_gap_days", "median age gap source → recommendation (days)"),
    ):
        axis.scatter(results[x], results[quality], c="tab:blue")
        for _, row in results.iterrows():
            text = ", ".join(f"{p}={row[p]}" for p in parameters)
            axis.annotate(text, (row[x], row[quality]), fontsize=6, alpha=0.8)
        axis.set_xlabel(label)
        axis.set_ylabel(quality)
        axis.grid(alpha=0.3)
    figure.suptitle("Parameter sweep: quality against concentration and staleness")
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=120)
    return figure


_METRIC_NAMES = {
    "mean_similarity",
    "precision",
    "ndcg",
    "hit_rate",
    "recall",
    "pairs",
    "coverage",
    "intra_list_similarity",
    "duplicate_rate",
    "popularity_gini",
    "median_age_gap_days",
}
