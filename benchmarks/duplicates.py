#!/usr/bin/env python
"""Near-duplicate benchmark: does the copy rule find copies, and only copies?

**Positives** are copies made from real articles (BBC, Reuters-21578, 20 Newsgroups
and the embedded Wikinews corpus; seeded), one kind of edit each:

* ``syndicated``: a byline, an agency dateline, a credit line, a newsletter or
  social footer, "Related:" links (2 to 4 of these pieces, drawn at random);
* ``headline``: a new headline (the first words of the body);
* ``truncated``: cut after some paragraphs (or sentences), keeping 30% to 90% of
  them and at least 40 words;
* ``light-edit``: 1% to 5% of the words changed, at random places (numbers
  changed, names swapped, other words replaced by words of the corpus);
* ``formatting``: HTML paragraphs, tags and entities, curly quotes and dashes,
  dropped commas, upper case, other whitespace and line breaks.

**Hard negatives** (distinct stories that look alike):

* ``nearest``: each sampled article with its most similar other article by word
  cosine (TF-IDF over the corpus);
* ``thread-reply``: posts of one 20 Newsgroups thread (same subject), raw, with
  their quoted text and signatures, as a forum exports them;
* ``template``: Reuters earnings reports ("Shr ... vs ...") of two different
  companies, each with its most similar report of another company.

The negatives' ground truth does not come from the rule: a candidate negative is
dropped when an independent reference measure says it may be a copy, namely when
difflib's longest matching word blocks (4 words or more) cover at least
``--reference-drop`` (0.5) of the shorter text (for thread replies, of the text
without quoted lines, by scikit-learn's quote rule in ``corpora.py``). The dropped
pairs are counted and printed with the rule's verdict on them.

Pairs are judged by the model's own rule (``recommender._duplicates``: own text,
signatures, containment, default threshold), and ``--end-to-end`` also fits the
default ``Recommender()`` on the BBC corpus with the positives added and reads
``duplicate_groups()``. Prints pair precision and recall per kind and overall (the
bar: precision >= 0.99 and recall >= 0.95), a threshold sweep, and the pairs nearest
the boundary for checking by eye (``--show``).

``--speed N`` instead measures what the copy rule costs in ``fit``: the default
``Recommender(n_jobs=2)`` fitted on N ``SynthCorpus(seed=0)`` articles (split into title,
summary and body as ``pipeline.py`` does), with the time of each step of ``fit`` from its
log, the load average before and after. The bar: the copy steps (signatures, duplicate
groups) take at most 10% of ``fit`` and at most 10 s at 100k articles.

Usage::

    python benchmarks/duplicates.py [--per-corpus 250] [--seed 0] [--threshold 0.7] [--end-to-end] [--show 20]
    python benchmarks/duplicates.py --speed 100000
"""

from __future__ import annotations

import argparse
import difflib
import itertools
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpora

import recommender as rec
from recommender import _duplicates as dup

POSITIVE_KINDS = ("syndicated", "headline", "truncated", "light-edit", "formatting")
NEGATIVE_KINDS = ("nearest", "thread-reply", "template")
#: A truncated copy keeps at least this many words (a shorter cut is too little text to call a copy).
MIN_KEPT_WORDS = 40
_WORD = re.compile(r"\w+")
_SPLIT_WORDS = re.compile(r"(\w+)")


# --------------------------------------------------------------------------- corpora


def load_all() -> dict[str, pd.DataFrame]:
    """The corpora with ``article_id, title, summary, body`` (and ``label``), missing ones skipped."""
    found = {}
    for name, loader in (
        ("bbc", corpora.load_bbc),
        ("reuters", corpora.load_reuters),
        ("20newsgroups", corpora.load_20newsgroups),
    ):
        try:
            found[name] = loader()
        except FileNotFoundError as exc:
            print(f"{name}: skipped ({exc})")
    wikinews = rec.load_articles(rec.demo_corpus_path())
    found["wikinews"] = wikinews[["article_id", "title", "summary", "body"]].assign(label="")
    return found


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def eligible(frame: pd.DataFrame, min_words: int = 60) -> np.ndarray:
    """Rows whose body has at least ``min_words`` words (shorter texts are too short to copy-edit)."""
    return np.flatnonzero(frame["body"].map(lambda b: len(_WORD.findall(b)) >= min_words).to_numpy())


# --------------------------------------------------------------------------- edits (positives)


def syndicated(
    title: str, summary: str, body: str, rng: np.random.Generator, titles: list[str]
) -> tuple[str, str, str]:
    agency = rng.choice(["Wire Service", "Reuters", "AP", "AFP", "Metro Press"])
    pieces = {
        "byline": lambda: f"By {rng.choice(['Jane Doe', 'JOHN SMITH', 'Ana Lopez', 'Staff Reporter'])} | {agency}",
        "dateline": lambda: f"{rng.choice(['LONDON', 'Paris', 'NEW YORK', 'Nairobi'])} ({agency}) - ",
        "credit": lambda: rng.choice(
            [
                f"This article was originally published by {agency} and is republished with permission.",
                f"First published on {agency}.",
                f"© 2024 {agency}. All rights reserved.",
            ]
        ),
        "newsletter": lambda: rng.choice(
            [
                "Sign up for our daily newsletter to get the top stories in your inbox.",
                "Subscribe to our newsletter for more news like this.",
                "Follow us on Twitter and Facebook for the latest updates.",
            ]
        ),
        "related": lambda: "Related:\n" + "\n".join(rng.choice(titles, size=3).tolist()),
    }
    chosen = rng.choice(list(pieces), size=int(rng.integers(2, 5)), replace=False).tolist()
    head, tail = [], []
    for name in chosen:
        text = pieces[name]()
        if name == "byline":
            head.append(text)
        elif name == "dateline":
            body = text + body.lstrip()
        else:
            tail.append(text)
    return title, summary, "\n\n".join([*head, body, *tail])


def headline(title: str, summary: str, body: str, rng: np.random.Generator, titles: list[str]) -> tuple[str, str, str]:
    first = _WORD.findall(body)[: int(rng.integers(5, 10))]
    return " ".join(first).capitalize(), summary, body


def _units(body: str) -> tuple[list[str], str]:
    """Paragraphs (blank lines or indented starts), else sentences; and the joiner."""
    paragraphs = [p for p in re.split(r"\n\s*\n|\n(?=[ \t]{2,}\S)", body) if p.strip()]
    if len(paragraphs) >= 3:
        return paragraphs, "\n\n"
    sentences = [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z\"'])", body) if s.strip()]
    return sentences, " "


def truncated(
    title: str, summary: str, body: str, rng: np.random.Generator, titles: list[str]
) -> tuple[str, str, str] | None:
    """The first 30% to 90% of the paragraphs (or sentences), at least :data:`MIN_KEPT_WORDS` words; None if impossible."""
    units, joiner = _units(body)
    counts = np.cumsum([len(_WORD.findall(u)) for u in units])
    low = max(1, int(np.ceil(0.3 * len(units))), int(np.searchsorted(counts, MIN_KEPT_WORDS)) + 1)
    high = min(len(units) - 1, int(np.floor(0.9 * len(units))))
    if low > high:
        return None
    keep = int(rng.integers(low, high + 1))
    return title, summary, joiner.join(units[:keep])


def light_edit(
    title: str, summary: str, body: str, rng: np.random.Generator, vocabulary: list[str]
) -> tuple[str, str, str]:
    parts = _SPLIT_WORDS.split(body)
    positions = list(range(1, len(parts), 2))
    share = rng.integers(1, 6) / 100
    count = max(1, round(float(share) * len(positions)))
    for at in rng.choice(positions, size=min(count, len(positions)), replace=False).tolist():
        word = parts[at]
        if word.isdigit():
            replacement = str(int(word) + int(rng.integers(1, 9)))
        else:
            replacement = word
            while replacement.lower() == word.lower():
                replacement = str(rng.choice(vocabulary))
            if word[:1].isupper():
                replacement = replacement.capitalize()
        parts[at] = replacement
    return title, summary, "".join(parts)


def formatting(
    title: str, summary: str, body: str, rng: np.random.Generator, titles: list[str]
) -> tuple[str, str, str]:
    units, _ = _units(body)

    def html(text: str) -> str:
        out = []
        for paragraph in units:
            paragraph = paragraph.replace("&", "&amp;")
            tokens = paragraph.split(" ")
            if len(tokens) > 4:
                at = int(rng.integers(0, len(tokens) - 2))
                tokens[at] = f"<b>{tokens[at]}</b>"
            out.append("<p>" + "&nbsp;".join(tokens[:2]) + " " + " ".join(tokens[2:]) + "</p>")
        return "\n".join(out)

    def punctuation(text: str) -> str:
        text = re.sub(r"\"([^\"]*)\"", "\u201c\\1\u201d", text).replace("'", "\u2019").replace(" - ", " \u2014 ")
        return re.sub(r",(?=\s)", lambda m: "" if rng.random() < 0.5 else ",", text)

    def case(text: str) -> str:
        return text.upper() if rng.random() < 0.5 else text.title()

    def whitespace(text: str) -> str:
        return re.sub(r"\s+", lambda m: rng.choice(["  ", "\r\n", "\t", " \n "]) if rng.random() < 0.3 else " ", text)

    changes = [case, punctuation, html, whitespace]  # in this order: HTML works on the paragraphs, entities stay
    chosen = sorted(rng.choice(len(changes), size=int(rng.integers(2, 4)), replace=False).tolist())
    for index in chosen:
        if changes[index] is html:
            units, _ = _units(body)
        body = changes[index](body)
    return title, summary, body


EDITS: dict[str, Callable[..., tuple[str, str, str] | None]] = {
    "syndicated": syndicated,
    "headline": headline,
    "truncated": truncated,
    "light-edit": light_edit,
    "formatting": formatting,
}


def positives(name: str, frame: pd.DataFrame, per_corpus: int, rng: np.random.Generator) -> list[dict]:
    rows = eligible(frame)
    sample = rng.choice(rows, size=min(per_corpus, rows.size), replace=False)
    titles = frame["title"].tolist()
    vocabulary = sorted(
        {w for b in frame["body"].iloc[sample[:200]] for w in _WORD.findall(b) if w.isalpha() and len(w) > 2}
    )
    out = []
    for row in sample.tolist():
        title, summary, body = (str(frame[c].iat[row]) for c in ("title", "summary", "body"))
        for kind, edit in EDITS.items():
            extra = vocabulary if kind == "light-edit" else titles
            copy = edit(title, summary, body, rng, extra)
            if copy is None:
                continue
            out.append({"corpus": name, "kind": kind, "copy": True, "a": (title, summary, body), "b": copy, "row": row})
    return out


# --------------------------------------------------------------------------- hard negatives


def reference_overlap(a: str, b: str) -> float:
    """Independent of the rule: share of the shorter text covered by difflib's matching word blocks of 4+ words."""
    wa, wb = words(a)[:3000], words(b)[:3000]
    if not wa or not wb:
        return 0.0
    matcher = difflib.SequenceMatcher(None, wa, wb, autojunk=False)
    covered = sum(block.size for block in matcher.get_matching_blocks() if block.size >= 4)
    return covered / min(len(wa), len(wb))


def _nearest_other(
    texts: list[str], sources: np.ndarray, allowed: Callable[[int, np.ndarray], np.ndarray]
) -> np.ndarray:
    from sklearn.feature_extraction.text import TfidfVectorizer

    matrix = TfidfVectorizer(sublinear_tf=True, stop_words="english", dtype=np.float32).fit_transform(texts)
    out = np.full(sources.size, -1, dtype=np.int64)
    for i, row in enumerate(sources.tolist()):
        sims = (matrix @ matrix[row].T).toarray().ravel()
        sims[~allowed(row, sims)] = -1
        sims[row] = -1
        out[i] = int(np.argmax(sims)) if sims.max() > 0 else -1
    return out


def nearest(name: str, frame: pd.DataFrame, per_corpus: int, rng: np.random.Generator) -> list[dict]:
    rows = eligible(frame)
    sample = rng.choice(rows, size=min(per_corpus, rows.size), replace=False)
    texts = (frame["title"] + "\n" + frame["summary"] + "\n" + frame["body"]).tolist()
    normalised = np.array([" ".join(words(t)) for t in texts], dtype=object)
    partner = _nearest_other(texts, sample, lambda row, sims: normalised != normalised[row])
    return [
        _negative(name, "nearest", frame, a, b)
        for a, b in zip(sample.tolist(), partner.tolist(), strict=True)
        if b >= 0
    ]


def thread_replies(frame: pd.DataFrame, count: int, rng: np.random.Generator) -> list[dict]:
    sizes = frame.groupby("thread").size()
    threads = sizes[sizes >= 2].index.to_numpy()
    rng.shuffle(threads)
    by_thread = frame.groupby("thread").indices
    out = []
    for thread in threads:
        members = np.sort(by_thread[thread])
        pairs = [(members[0], m) for m in members[1:]] + list(itertools.pairwise(members[1:]))
        for a, b in pairs[:3]:
            out.append(_negative("20newsgroups", "thread-reply", frame, int(a), int(b)))
        if len(out) >= count:
            break
    return out[:count]


_COMPANY = re.compile(r"^(.*?)\s*(?:<[^>]*>|\b(?:1ST|2ND|3RD|4TH|YEAR|QTR|NINE|SIX)\b)")


def templates(frame: pd.DataFrame, count: int, rng: np.random.Generator) -> list[dict]:
    reports = np.flatnonzero(
        (frame["label"] == "earn").to_numpy() & frame["body"].str.contains(r"\bShr\b|\bNet\b", regex=True).to_numpy()
    )
    company = np.array(
        [(_COMPANY.match(t) or re.match(r"(.*)", t)).group(1).strip().lower() for t in frame["title"]], dtype=object
    )
    sample = rng.choice(reports, size=min(count, reports.size), replace=False)
    texts = (frame["title"] + "\n" + frame["body"]).tolist()
    is_report = np.zeros(len(frame), dtype=bool)
    is_report[reports] = True
    partner = _nearest_other(texts, sample, lambda row, sims: is_report & (company != company[row]) & (company != ""))
    return [
        _negative("reuters", "template", frame, a, b)
        for a, b in zip(sample.tolist(), partner.tolist(), strict=True)
        if b >= 0
    ]


def _negative(name: str, kind: str, frame: pd.DataFrame, a: int, b: int) -> dict:
    fields = [tuple(str(frame[c].iat[r]) for c in ("title", "summary", "body")) for r in (a, b)]
    return {"corpus": name, "kind": kind, "copy": False, "a": fields[0], "b": fields[1], "row": a, "other": b}


def reference_text(pair: dict, side: str) -> str:
    _, summary, body = pair[side]
    text = f"{summary}\n{body}"
    return corpora.strip_newsgroup_quoting(text) if pair["kind"] == "thread-reply" else text


# --------------------------------------------------------------------------- judging


def judge(pairs: list[dict]) -> pd.DataFrame:
    """The rule's numbers for every pair (one signature per side)."""
    left = dup.signatures(*(list(x) for x in zip(*(p["a"] for p in pairs), strict=True)))
    right = dup.signatures(*(list(x) for x in zip(*(p["b"] for p in pairs), strict=True)))
    rows = np.arange(len(pairs))
    shared, containment, resemblance, sampled = dup.compare(left, rows, right, rows)
    keys_a = dup.text_keys(*(list(x) for x in zip(*(p["a"] for p in pairs), strict=True)))
    keys_b = dup.text_keys(*(list(x) for x in zip(*(p["b"] for p in pairs), strict=True)))
    return pd.DataFrame(
        {
            "corpus": [p["corpus"] for p in pairs],
            "kind": [p["kind"] for p in pairs],
            "copy": [p["copy"] for p in pairs],
            "shared": shared,
            "containment": containment,
            "resemblance": resemblance,
            "sampled": sampled,
            "exact": keys_a == keys_b,
        }
    )


def verdict(table: pd.DataFrame, threshold: float) -> np.ndarray:
    return table["exact"].to_numpy() | dup.is_copy(
        table["shared"].to_numpy(), table["containment"].to_numpy(), table["sampled"].to_numpy(), threshold
    )


def report(table: pd.DataFrame, threshold: float) -> dict[str, float]:
    said = verdict(table, threshold)
    truth = table["copy"].to_numpy()
    print(f"\nthreshold {threshold}: pairs judged by the copy rule (own text, 5-word shingles, containment)")
    print(f"{'kind':<14}{'truth':<10}{'pairs':>7}{'said copy':>11}{'rate':>8}   per corpus (said copy / pairs)")
    for kind in (*POSITIVE_KINDS, *NEGATIVE_KINDS):
        mask = (table["kind"] == kind).to_numpy()
        if not mask.any():
            continue
        per = ", ".join(
            f"{c} {int(said[mask & (table['corpus'] == c).to_numpy()].sum())}/{int((mask & (table['corpus'] == c).to_numpy()).sum())}"
            for c in sorted(table.loc[mask, "corpus"].unique())
        )
        role = "copy" if kind in POSITIVE_KINDS else "distinct"
        print(f"{kind:<14}{role:<10}{int(mask.sum()):>7}{int(said[mask].sum()):>11}{said[mask].mean():>8.4f}   {per}")
    tp = int((said & truth).sum())
    fp = int((said & ~truth).sum())
    fn = int((~said & truth).sum())
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    print(
        f"overall: {tp} copies found of {tp + fn} (recall {recall:.4f}); {fp} of {int((~truth).sum())} distinct pairs called copies"
    )
    print(f"         pair precision {precision:.4f}, recall {recall:.4f} (bar: precision >= 0.99, recall >= 0.95)")
    return {"precision": precision, "recall": recall}


def end_to_end(frame: pd.DataFrame, pairs: list[dict], negatives: list[dict]) -> None:
    """Fit the default Recommender on the corpus plus the copies, and read its duplicate groups."""
    copies = [p for p in pairs if p["corpus"] == "bbc"]
    added = pd.DataFrame(
        {
            "article_id": [f"copy-{i}" for i in range(len(copies))],
            "title": [p["b"][0] for p in copies],
            "summary": [p["b"][1] for p in copies],
            "body": [p["b"][2] for p in copies],
        }
    )
    articles = pd.concat([frame[["article_id", "title", "summary", "body"]], added], ignore_index=True)
    start = time.perf_counter()
    model = rec.Recommender(popularity_weight=0).fit(articles)
    seconds = time.perf_counter() - start
    group = dict(zip(model.article_ids, np.asarray(model.groups_).tolist(), strict=True))
    ids = frame["article_id"].tolist()
    together = [group[ids[p["row"]]] == group[f"copy-{i}"] for i, p in enumerate(copies)]
    kinds = pd.Series([p["kind"] for p in copies])
    print(
        f"\nend to end: Recommender() fitted on BBC + {len(copies)} copies ({len(articles)} articles) in {seconds:.1f} s"
    )
    for kind, found in pd.Series(together).groupby(kinds):
        print(f"  {kind:<12} grouped with their original: {int(found.sum())}/{found.size}")
    bbc_negatives = [n for n in negatives if n["corpus"] == "bbc"]
    wrong = sum(group[ids[n["row"]]] == group[ids[n["other"]]] for n in bbc_negatives)
    grouped = float((np.bincount(np.asarray(model.groups_)) > 1).sum())
    print(f"  nearest negatives grouped together: {wrong}/{len(bbc_negatives)}; groups with 2+ members: {grouped:.0f}")


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def speed(n: int) -> int:
    """Fit the default model on n SynthCorpus articles; print the time of each step of fit."""
    import logging

    bench = corpora.shared_dir() / "bench"
    if not (bench / "peers.py").is_file():
        print(f"skipped: {bench / 'peers.py'} (SynthCorpus) is not present")
        return 0
    sys.path.insert(0, str(bench))
    from peers import SynthCorpus

    corpus = SynthCorpus(seed=0)
    texts: list[str] = []
    block = 0
    while len(texts) < n:
        texts += corpus._block(block)[: n - len(texts)]
        block += 1
    rows = [t.split(". ", 2) for t in texts]
    articles = pd.DataFrame(
        {
            "article_id": [f"s{i}" for i in range(n)],
            "title": [r[0] for r in rows],
            "summary": [r[1] if len(r) > 1 else "" for r in rows],
            "body": [r[2] if len(r) > 2 else "" for r in rows],
        }
    )
    stages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            stages.append(record.getMessage())

    logger = logging.getLogger("recommender")
    logger.addHandler(Collect())
    logger.setLevel(logging.INFO)
    print(f"fit on {n:,} SynthCorpus articles, Recommender(n_jobs=2) defaults; loadavg before {loadavg()}", flush=True)
    start = time.perf_counter()
    rec.Recommender(n_jobs=2).fit(articles, progress=False)
    total = time.perf_counter() - start
    copy_steps = 0.0
    for line in stages:
        print(f"  {line}")
        found = re.search(r" in ([0-9.]+) s \(", line)
        if found and ("signatures" in line or "duplicate groups" in line):
            copy_steps += float(found.group(1))
    print(
        f"fit {total:.1f} s; copy steps (copy signatures, duplicate groups) {copy_steps:.1f} s = {copy_steps / total:.1%}"
    )
    print(f"loadavg after {loadavg()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-corpus", type=int, default=250, help="articles sampled per corpus for each kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threshold", type=float, default=dup.DEFAULT_THRESHOLD)
    parser.add_argument("--reference-drop", type=float, default=0.5)
    parser.add_argument("--end-to-end", action="store_true")
    parser.add_argument("--show", type=int, default=10, help="pairs nearest the boundary to print for checking by eye")
    parser.add_argument("--speed", type=int, default=None, metavar="N", help="time the copy steps of fit at N articles")
    args = parser.parse_args(argv)
    if args.speed:
        return speed(args.speed)
    rng = np.random.default_rng(args.seed)
    frames = load_all()
    print(f"recommender {rec.__version__}; corpora: {', '.join(f'{k} ({len(v):,})' for k, v in frames.items())}")
    pairs: list[dict] = []
    negatives: list[dict] = []
    for name, frame in frames.items():
        pairs += positives(name, frame, args.per_corpus, rng)
        negatives += nearest(name, frame, args.per_corpus, rng)
    if "20newsgroups" in frames:
        negatives += thread_replies(corpora.load_20newsgroups_raw(), 2 * args.per_corpus, rng)
    if "reuters" in frames:
        negatives += templates(frames["reuters"], 2 * args.per_corpus, rng)
    overlap = np.array([reference_overlap(reference_text(n, "a"), reference_text(n, "b")) for n in negatives])
    dropped = [n for n, o in zip(negatives, overlap, strict=True) if o >= args.reference_drop]
    kept = [n for n, o in zip(negatives, overlap, strict=True) if o < args.reference_drop]
    print(
        f"negatives: {len(negatives)} candidates, {len(dropped)} dropped by the reference measure (overlap >= {args.reference_drop})"
    )
    if dropped:
        said = verdict(judge(dropped), args.threshold)
        kinds = pd.Series([n["kind"] for n in dropped])
        print("  dropped per kind (the rule called copies / dropped):",
              ", ".join(f"{k} {int(said[(kinds == k).to_numpy()].sum())}/{int((kinds == k).sum())}" for k in kinds.unique()))  # fmt: skip
    table = judge(pairs + kept)
    table["reference"] = np.concatenate([np.full(len(pairs), np.nan), overlap[overlap < args.reference_drop]])
    report(table, args.threshold)
    print("\nsweep (threshold: precision, recall):")
    for threshold in (0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9):
        said, truth = verdict(table, threshold), table["copy"].to_numpy()
        tp, fp, fn = int((said & truth).sum()), int((said & ~truth).sum()), int((~said & truth).sum())
        print(
            f"  {threshold:.2f}: precision {tp / max(tp + fp, 1):.4f}, recall {tp / max(tp + fn, 1):.4f}  (false copies {fp}, missed {fn})"
        )
    if args.show:
        everything = pairs + kept
        negative_rows = table.index[~table["copy"]]
        print(f"\nthe {args.show} distinct pairs with the highest containment (check by eye):")
        for index in table.loc[negative_rows].sort_values("containment", ascending=False).index[: args.show]:
            p, t = everything[index], table.loc[index]
            print(
                f"  [{t['kind']}, {t['corpus']}] containment {t['containment']:.3f} resemblance {t['resemblance']:.3f} reference {t['reference']:.3f}"
            )
            print(f"     A: {p['a'][0][:70]!r} | {dup.own_text(*p['a'])[:160]!r}")
            print(f"     B: {p['b'][0][:70]!r} | {dup.own_text(*p['b'])[:160]!r}")
        missed = table.index[table["copy"] & ~verdict(table, args.threshold)]
        print(f"\n{len(missed)} missed copies; the {args.show} with the lowest containment:")
        for index in table.loc[missed].sort_values("containment").index[: args.show]:
            p, t = everything[index], table.loc[index]
            print(
                f"  [{t['kind']}, {t['corpus']}] containment {t['containment']:.3f} shared {t['shared']:.0f} sampled {t['sampled']}"
            )
            print(f"     A: {dup.own_text(*p['a'])[:200]!r}")
            print(f"     B: {dup.own_text(*p['b'])[:200]!r}")
    if args.end_to_end and "bbc" in frames:
        end_to_end(frames["bbc"], pairs, kept)
    return 0


if __name__ == "__main__":
    sys.exit(main())
