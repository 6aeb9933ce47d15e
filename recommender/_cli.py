"""Command-line interface: ``recommender build|recommend|precompute|info|demo``.

The only module that prints. Errors end the command with one line on stderr
(``recommender: error: ...``) and exit status 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np

from . import __version__
from ._articles import MAX_FIELD_CHARS, load_articles
from ._batch import write_lists
from ._demo import DEMO_ATTRIBUTION, demo_corpus_path
from ._errors import RecommenderError, SchemaError
from ._model import PART_NAMES, Recommendation, Recommender, load_model
from ._outputs import printable
from ._ranking import CONTROL_NAMES, control_specs
from ._store import read_manifest

__all__ = ["main"]


def say(*values: Any, file: Any = None) -> None:
    """Print a line: every line the CLI prints goes through here, with control characters from article
    text or file names shown as escapes (``_outputs.printable``), never sent raw to the terminal."""
    print(printable(" ".join(str(v) for v in values), newlines=True), file=file or sys.stdout)


def _configure_logging(*, verbose: bool) -> None:
    """The tool's own messages on stderr as ``recommender: ...`` lines; other libraries' (Dask's) only with
    ``--verbose``, and then under their own names, so that they never read as the tool's errors."""
    for name in ("distributed", "dask", "tornado", "bokeh"):
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.ERROR)
    if logging.getLogger().handlers and not any(
        getattr(h, "_recommender_cli", False) for h in logging.getLogger("recommender").handlers
    ):
        return  # the program that runs the CLI configured logging itself: leave its choice alone
    ours = logging.getLogger("recommender")
    for handler in list(ours.handlers):
        if getattr(handler, "_recommender_cli", False):
            ours.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_PrintableFormatter("recommender: %(message)s"))
    handler._recommender_cli = True  # type: ignore[attr-defined]
    ours.addHandler(handler)
    ours.setLevel(logging.INFO if verbose else logging.WARNING)
    ours.propagate = False
    if verbose and not logging.getLogger().handlers:
        other = logging.StreamHandler(sys.stderr)
        other.setFormatter(_PrintableFormatter("%(name)s: %(message)s"))
        logging.getLogger().addHandler(other)


class _PrintableFormatter(logging.Formatter):
    """Log lines as :func:`say` prints lines."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record), newlines=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = _parser()
    parser.argv = list(sys.argv[1:] if argv is None else argv)  # the command, for "did you mean"
    args = parser.parse_args(argv)
    _configure_logging(verbose=bool(getattr(args, "verbose", False)))
    try:
        return int(args.run(args) or 0)
    except BrokenPipeError:  # an OSError: must come first
        # Whoever read stdout stopped (`recommender info m --json | head`): stop quietly, like a shell tool.
        _silence_stdout()
        return 141
    except (RecommenderError, OSError, ValueError, KeyError, ImportError) as exc:
        message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        say(f"recommender: error: {' '.join(message.split())}", file=sys.stderr)
        return 1
    except MemoryError:
        say(
            f"recommender: error: out of memory during `{args.command}`: give the job more memory, split the input, "
            "or lower --max-field-chars to reject oversized rows",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        say("recommender: interrupted", file=sys.stderr)
        return 130


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        fileno = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fileno)
    finally:
        os.close(devnull)


class _Parser(argparse.ArgumentParser):
    """argparse with a "did you mean" for a mistyped flag or command, and one short usage line."""

    def error(self, message: str) -> NoReturn:
        hint = _suggestion(self, message)
        self.exit(2, f"{self.format_usage().strip()}\nrecommender: error: {message}{hint}\n")


def _suggestion(parser: argparse.ArgumentParser, message: str) -> str:
    import difflib

    unknown = re.search(r"unrecognized arguments: (\S+)", message)
    choice = re.search(r"invalid choice: '([^']*)'", message)
    if unknown:
        word, known = unknown.group(1).split("=")[0], _option_strings(_command_parser(parser))
    elif choice:
        word, known = choice.group(1), [c for a in parser._actions for c in (a.choices or ()) if isinstance(c, str)]
    else:
        return ""
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _command_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The parser of the command on the command line (the top-level one when there is none)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for word in getattr(parser, "argv", ()):
                if word in action.choices:
                    return action.choices[word]
    return parser


def _option_strings(parser: argparse.ArgumentParser) -> list[str]:
    found: list[str] = []
    for action in parser._actions:
        found += [o for o in action.option_strings if o.startswith("--")]
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _option_strings(sub)
    return sorted(set(found))


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="recommender", description="'You Might Like' lists for news articles: build, query and export models."
    )
    parser.add_argument("--version", action="version", version=f"recommender {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    build = commands.add_parser("build", help="read articles and write a model directory")
    build.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="CSV/JSONL/JSON/Parquet files (optionally .gz) or folders of .txt pages",
    )
    build.add_argument(
        "--out", required=True, metavar="MODEL_DIR", help="model directory to write (a new version is added)"
    )
    build.add_argument("--strict", action="store_true", help="stop at the first invalid row instead of rejecting it")
    build.add_argument("--verbose", action="store_true", help="also show progress messages and Dask's own logs")
    build.add_argument(
        "--max-field-chars",
        type=int,
        default=MAX_FIELD_CHARS,
        metavar="N",
        help=f"reject rows with a field longer than N characters (default {MAX_FIELD_CHARS:,})",
    )
    build.add_argument("--quiet", action="store_true", help="no progress bars (they show only on a terminal anyway)")
    on = build.add_mutually_exclusive_group()
    on.add_argument(
        "--workers", type=int, default=None, metavar="N",
        help="build on a local Dask cluster of N single-threaded processes (the same model, bit for bit)",
    )  # fmt: skip
    on.add_argument(
        "--scheduler", default=None, metavar="ADDRESS",
        help="build on a Dask cluster, e.g. tcp://host:8786; the workers read the INPUT files",
    )  # fmt: skip
    build.add_argument(
        "--reset-editorial",
        action="store_true",
        help="do not carry over the blocked articles, pins and bans of the directory's current version",
    )
    _model_options(build)
    build.set_defaults(run=_build)

    recommend = commands.add_parser("recommend", help="print one article's list")
    recommend.add_argument("model", metavar="MODEL_DIR")
    recommend.add_argument("article_id", metavar="ARTICLE_ID")
    recommend.add_argument("-k", type=int, default=5, help="list length (default 5)")
    recommend.add_argument("--exclude", nargs="*", default=None, metavar="ID", help="article ids to leave out")
    recommend.add_argument("--json", action="store_true", help="print JSON instead of a table")
    recommend.add_argument("--explain", action="store_true", help="show the score parts and shared terms")
    _control_options(recommend)
    recommend.set_defaults(run=_recommend)

    precompute = commands.add_parser(
        "precompute", help="write every article's list to a file or a directory of Parquet parts"
    )
    precompute.add_argument("model", metavar="MODEL_DIR")
    precompute.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help=".csv, .jsonl or .parquet file; any other path is a directory of Parquet parts (a rerun resumes)",
    )
    precompute.add_argument("-k", type=int, default=10, help="list length (default 10)")
    precompute.add_argument("--explain", action="store_true", help="add the score parts and shared terms as columns")
    precompute.add_argument("--quiet", action="store_true", help="no progress bar")
    precompute.add_argument("--verbose", action="store_true", help="also show progress messages and Dask's own logs")
    where = precompute.add_mutually_exclusive_group()
    where.add_argument(
        "--workers", type=int, default=None, metavar="N", help="run on a local Dask cluster of N processes"
    )
    where.add_argument(
        "--scheduler", default=None, metavar="ADDRESS", help="run on a Dask cluster, e.g. tcp://host:8786"
    )
    precompute.add_argument(
        "--rows-per-part", type=int, default=10_000, metavar="N", help="articles per Parquet part (default 10000)"
    )
    _control_options(precompute)
    precompute.set_defaults(run=_precompute)

    info = commands.add_parser("info", help="describe a model directory")
    info.add_argument("model", metavar="MODEL_DIR")
    info.add_argument("--json", action="store_true", help="print the manifest as JSON")
    info.set_defaults(run=_info)

    evaluate = commands.add_parser(
        "evaluate", help="evaluate the lists against random, most-popular and content-only baselines"
    )
    evaluate.add_argument("inputs", nargs="+", metavar="INPUT", help="the articles, as for build")
    evaluate.add_argument("--labels", default="category", metavar="COLUMN", help="label column (default category)")
    evaluate.add_argument(
        "--interactions", default=None, metavar="LOG", help="user_id, article_id, timestamp log, or MIND behaviors.tsv"
    )
    evaluate.add_argument("-k", type=int, default=5, help="list length (default 5)")
    evaluate.add_argument("--split-time", default=None, help="T of the co-reading split (default: 80th percentile)")
    evaluate.add_argument("--window", default="1D", help="co-reading window after a read (default 1D)")
    evaluate.add_argument("--sample", type=int, default=None, help="evaluate the lists of N sampled articles")
    evaluate.add_argument(
        "--out", default=None, metavar="PATH", help="also write the tidy table (.csv/.jsonl/.parquet)"
    )
    _model_options(evaluate)
    evaluate.set_defaults(run=_evaluate)

    serve = commands.add_parser("serve", help="serve the lists over HTTP (the [web] extra)")
    serve.add_argument("model", metavar="MODEL_DIR")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes (default 1)")
    serve.add_argument(
        "--editor-token",
        default=None,
        metavar="TOKEN",
        help="enables the editorial endpoints for this bearer token (or set RECOMMENDER_EDITOR_TOKEN)",
    )
    serve.add_argument(
        "--cors-origin", action="append", default=[], metavar="ORIGIN", help="allow browser calls from ORIGIN (repeat)"
    )
    serve.add_argument("--watch-interval", type=float, default=2.0, metavar="S", help="seconds between reload checks")
    serve.add_argument(
        "--newest-valid",
        action="store_true",
        help="when CURRENT points at a broken version, serve the newest version that loads (with a warning)",
    )
    serve.set_defaults(run=_serve)

    rollback = commands.add_parser("rollback", help="point a model directory back at an earlier version")
    rollback.add_argument("model", metavar="MODEL_DIR")
    rollback.add_argument(
        "--to",
        default=None,
        metavar="VERSION",
        help="the version (version-000003, or 3); default: the previous one that loads",
    )
    rollback.set_defaults(run=_rollback)

    demo = commands.add_parser("demo", help="build a model from the embedded Wikinews corpus and print a few lists")
    demo.add_argument("-k", type=int, default=5, help="list length (default 5)")
    demo.add_argument("--articles", type=int, default=3, metavar="N", help="how many articles to show (default 3)")
    demo.set_defaults(run=_demo)
    return parser


def _model_options(parser: argparse.ArgumentParser) -> None:
    defaults = Recommender()
    parser.add_argument(
        "--pool-size", type=int, default=defaults.pool_size, help="candidates kept per article (default %(default)s)"
    )
    parser.add_argument(
        "--duplicate-threshold",
        type=_threshold,
        default=defaults.duplicate_threshold,
        help="containment (0-1] of the shorter text's 5-word shingles in the longer at which two articles are copies, "
        "one story; 'none' for exact copies only (default %(default)s)",
    )
    parser.add_argument(
        "--collapse",
        action=argparse.BooleanOptionalAction,
        default=defaults.collapse,
        help="show each duplicate group once (--no-collapse: no grouping at all; default on)",
    )
    parser.add_argument(
        "--stop-words",
        type=_stop_words,
        default=defaults.stop_words,
        metavar="LIST",
        help="'news' (function words only), 'english' (scikit-learn's list), 'none', or a file of words, "
        "one per line (default %(default)s)",
    )
    parser.add_argument(
        "--fallback-days",
        type=float,
        default=defaults.fallback_days,
        help="'recent' window of the popular fallback, in days (default %(default)s)",
    )
    parser.add_argument(
        "--reference-date", default=None, help="date at which article ages are measured (default: newest article)"
    )
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=-1,
        help="threads for counting terms and the neighbour search (default -1: every core; 1: one thread)",
    )
    parser.add_argument(
        "--mode",
        choices=("exact", "approx"),
        default=defaults.mode,
        help="neighbour search: exact, or approx for large corpora (default %(default)s)",
    )
    _control_options(parser, saved=True)


def _threshold(text: str) -> float | None:
    return None if text.strip().lower() == "none" else float(text)


def _stop_words(text: str) -> str | tuple[str, ...] | None:
    """``news``, ``english``, ``none`` or the path of a file of stop words (one per line, ``#`` comments)."""
    if text.strip().lower() in ("news", "english", "none"):
        return None if text.strip().lower() == "none" else text.strip().lower()
    try:
        with open(text, encoding="utf-8") as handle:
            lines = [line.split("#", 1)[0].strip() for line in handle]
    except (OSError, UnicodeDecodeError) as exc:
        raise argparse.ArgumentTypeError(
            f"expected news, english, none or a readable UTF-8 file of words, got {text!r} ({exc})"
        ) from None
    return tuple(line for line in lines if line)


def _control_options(parser: argparse.ArgumentParser, *, saved: bool = False) -> None:
    """One flag per ranking control: on build they set the model's defaults, elsewhere they override them."""
    model = Recommender()
    title = "ranking controls (saved as the model's defaults)" if saved else "ranking controls (default: the model's)"
    group = parser.add_argument_group(title)

    def default(name: str) -> str:
        return f" (default {getattr(model, name)})" if saved else ""

    kinds: dict[str, dict[str, Any]] = {
        "number": {"type": float},
        "integer": {"type": int},
        "bool": {"action": argparse.BooleanOptionalAction},
        "names": {"nargs": "+", "metavar": "NAME"},
    }
    for spec in control_specs():  # the one declaration of the controls (recommender._ranking.Controls)
        flag = "--" + spec.name.replace("_", "-")
        group.add_argument(
            flag, default=None, help=spec.metadata["help"] + default(spec.name), **kinds[spec.metadata["kind"]]
        )


def _controls(args: argparse.Namespace) -> dict[str, Any]:
    """The ranking controls given on the command line."""
    return {name: getattr(args, name) for name in CONTROL_NAMES if getattr(args, name, None) is not None}


# --------------------------------------------------------------------------- commands


def _build(args: argparse.Namespace) -> int:
    on_dask = args.workers is not None or args.scheduler is not None
    if on_dask and args.max_field_chars != MAX_FIELD_CHARS:
        raise ValueError("--max-field-chars applies to a build in one process; a build on Dask uses the default.")
    articles = (
        args.inputs if on_dask else load_articles(args.inputs, strict=args.strict, max_field_chars=args.max_field_chars)
    )
    model = Recommender(
        pool_size=args.pool_size,
        duplicate_threshold=args.duplicate_threshold,
        collapse=args.collapse,
        stop_words=args.stop_words,
        fallback_days=args.fallback_days,
        reference_date=args.reference_date,
        n_jobs=args.n_jobs,
        mode=args.mode,
        **_controls(args),
    )
    if on_dask:
        model.fit(
            articles, client=args.scheduler, workers=args.workers, strict=args.strict,
            progress=False if args.quiet else None,
        )  # fmt: skip
    else:
        model.fit(articles, progress=False if args.quiet else None)
    version = model.save(args.out, carry_editorial=not args.reset_editorial)
    rejected = model.rejected_
    say(f"Kept {model.n_articles:,} articles; rejected {len(rejected):,} rows.")
    for kind, count in Counter(_reason_kind(r["reason"]) for r in rejected).most_common():
        say(f"  {count:>8,}  {kind}")
    if rejected:
        say(f"Rejected rows and reasons: {args.out}/{version}/rejected.csv")
    if model.flagged_:
        say(
            f"Flagged {len(model.flagged_):,} articles, kept: published in the future "
            f"(list: {args.out}/{version}/flagged.csv)."
        )
    groups = model.duplicate_groups()
    say(f"Duplicate groups: {groups['group'].nunique() if len(groups) else 0:,} ({len(groups):,} articles).")
    say(f"Vocabulary: {len(model.vocabulary_):,} terms; reference date: {_date(model.reference_date_)}.")
    carried = model.carried
    if args.reset_editorial:
        say("Editorial state: none (--reset-editorial).")
    elif carried is not None and carried.source is not None:
        say(carried.summary())
        if carried.blocked_unknown:
            say(f"  blocked and not among the articles: {', '.join(carried.blocked_unknown[:10])}")
        for kind, dropped in (("pins", carried.pins_dropped), ("bans", carried.bans_dropped)):
            if dropped:
                say(f"  {kind} dropped: " + ", ".join(f"{s} -> {a}" for s, a in dropped[:10]))
    say(f"Model written to {args.out} (version {version}; identity {model.version}).")
    return 0


def _reason_kind(reason: str) -> str:
    """The kind of a rejection reason, without the row-specific details."""
    kind = re.split(r":|\s\(|\s'|\s\"", str(reason), maxsplit=1)[0]
    return kind.strip() or str(reason)


def _recommend(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    items = model.recommend(args.article_id, k=args.k, exclude=args.exclude, **_controls(args))
    if args.json:
        say(json.dumps([_as_json(item) for item in items], ensure_ascii=False, indent=2))
        return 0
    row = model.row_of(args.article_id)
    say(f"{model.articles_['title'].iloc[row]}")
    _print_list(items, explain=args.explain)
    return 0


def _as_json(item: Recommendation) -> dict[str, Any]:
    return item.to_dict()  # unrounded, like the Python API: rounding would break "similarity + parts = score"


def _print_list(items: list[Recommendation], *, explain: bool = False, ids: bool = False) -> None:
    if not items:
        say("  (no similar articles)")
    for item in items:
        note = "" if item.reason == "similar" else f"  [{item.reason}]"
        shown = f"; id {item.article_id}" if ids else ""
        say(f"  {item.rank:>2}. {item.score:.3f}  {item.title}  ({_date(item.published)}{shown}){note}")
        if explain:
            parts = ", ".join(f"{name.removesuffix('_part')} {getattr(item, name):+.3f}" for name in PART_NAMES)
            terms = ", ".join(f"{term} {value:.3f}" for term, value in item.shared_terms) or "none"
            say(f"      similarity {item.similarity:.3f}, {parts}; shared terms: {terms}")


def _date(value: Any) -> str:
    return "unknown" if value is None else str(value)[:10]


def _precompute(args: argparse.Namespace) -> int:
    from ._batch import precompute

    result = precompute(
        args.model,
        args.out,
        k=args.k,
        explain=args.explain,
        client=args.scheduler,
        workers=args.workers,
        rows_per_part=args.rows_per_part,
        progress=False if args.quiet else None,
        **_controls(args),
    )
    if result.message:
        say(result.message)
    say(
        f"Wrote {result.items:,} recommendations for {result.articles:,} articles to {args.out} "
        f"({result.parts} part(s): {result.computed} computed, {result.reused} reused) in {result.seconds:.1f} s."
    )
    return 0


def _info(args: argparse.Namespace) -> int:
    manifest = read_manifest(args.model)
    if args.json:
        say(json.dumps(manifest, indent=2, sort_keys=True))
        return 0
    counts = manifest.get("counts", {})
    say(f"Model:            {args.model} (version {manifest['version']})")
    say(f"Identity:         {manifest['digest']} (SHA-256 of the manifest; Answer.version)")
    say(
        f"Format:           {manifest['format']} v{manifest['format_version']} (recommender {manifest.get('library_version', '?')})"
    )
    say(
        f"Articles:         {counts.get('articles', 0):,} (rejected rows: {counts.get('rejected', 0):,}; flagged: {counts.get('flagged', 0):,}; exact copies: {counts.get('copies', 0):,})"
    )
    say(f"Vocabulary:       {counts.get('terms', 0):,} terms")
    say(f"Candidate pool:   {counts.get('pool_size', 0)} per article")
    say(f"Reference date:   {manifest.get('reference_date') or 'none (no dated articles)'}")
    say("Parameters:")
    for key, value in sorted(manifest.get("parameters", {}).items()):
        say(f"  {key} = {value}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import warnings

    from ._articles import COLUMNS, load_interactions
    from ._evaluate import BLIND, evaluate

    labels = args.labels
    try:
        articles = load_articles(args.inputs, keep=[labels] if labels and labels not in COLUMNS else [])
    except SchemaError as exc:
        if f"Column {labels!r} to keep" not in str(exc):
            raise
        say(f"No column {labels!r} in the input: label agreement is not measured.")
        articles = load_articles(args.inputs)
    log = load_interactions(args.interactions) if args.interactions else None
    params = {
        "pool_size": args.pool_size,
        "duplicate_threshold": args.duplicate_threshold,
        "collapse": args.collapse,
        "stop_words": args.stop_words,
        "fallback_days": args.fallback_days,
        "reference_date": args.reference_date,
        "n_jobs": args.n_jobs,
        "mode": args.mode,
        **_controls(args),
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate(
            articles,
            params,
            k=args.k,
            labels=labels,
            interactions=log,
            split_time=args.split_time,
            window=args.window,
            sample=args.sample,
        )
    order = [m for m in ("random", "most-popular", "content-only", "model", BLIND) if m in set(result["method"])]
    table = result.pivot(index="method", columns="metric", values="value").reindex(order)
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4f}".format):
        say(f"Evaluation at k={args.k} over {int(result['n'].max()):,} lists")
        say(table.to_string())
    for method, note in result.loc[result["note"] != "", ["method", "note"]].drop_duplicates().itertuples(index=False):
        say(f"{method}: {note}")
    for warning in caught:
        say(f"warning: {warning.message}")
    if args.out:
        write_lists(result, args.out)
        say(f"Wrote {args.out}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    if args.k < 1 or args.articles < 1:
        raise ValueError(f"-k and --articles must be at least 1, got -k {args.k} and --articles {args.articles}.")
    articles = load_articles(demo_corpus_path())
    has_views = bool(articles["views"].notna().any())
    weight = Recommender().popularity_weight if has_views else 0.0
    model = Recommender(popularity_weight=weight).fit(articles)
    say(DEMO_ATTRIBUTION)
    if not has_views:
        say(
            "This corpus has no view counts, so the lists are ranked by content similarity alone (popularity_weight=0)."
        )
    say(f"Fitted {model.n_articles} articles, {len(model.vocabulary_):,} terms.\n")
    count = max(1, min(args.articles, model.n_articles))
    order = np.argsort(articles["published"].to_numpy(), kind="stable")
    picks = [int(order[int((i + 0.5) * len(order) / count)]) for i in range(count)]
    for row in picks:
        source = articles.iloc[row]
        say(f"{source['title']}  ({_date(source['published'])}; id {source['article_id']})")
        say("  You Might Like:")
        _print_list(model.recommend(source["article_id"], k=args.k), ids=True)
        say()
    first = articles.iloc[picks[0]]["article_id"]
    say("Next, build a model directory from the same corpus and ask it for one list:")
    say(f"  recommender build {shlex.quote(str(demo_corpus_path()))} --out models/demo")
    say(f"  recommender recommend models/demo {shlex.quote(str(first))} --explain")
    return 0


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError:
        raise ImportError("`recommender serve` needs the web layer: pip install 'recommender[web]'.") from None
    from .web import ENVIRONMENT

    if args.workers < 1 or not 0 < args.port < 65536 or not args.watch_interval > 0:
        raise ValueError("--workers must be >= 1, --port in 1-65535 and --watch-interval > 0.")
    load_model(args.model, newest_valid=args.newest_valid)  # a clear error now rather than one per worker
    token = args.editor_token or os.environ.get(ENVIRONMENT["editor_token"])
    os.environ[ENVIRONMENT["model_dir"]] = str(args.model)
    os.environ[ENVIRONMENT["cors_origins"]] = ",".join(args.cors_origin)
    os.environ[ENVIRONMENT["interval"]] = str(args.watch_interval)
    os.environ[ENVIRONMENT["newest_valid"]] = "1" if args.newest_valid else "0"
    if token:
        os.environ[ENVIRONMENT["editor_token"]] = token
    say(
        f"Serving {args.model} on http://{args.host}:{args.port} with {args.workers} worker(s); editing "
        f"{'on (token set)' if token else 'off (no --editor-token)'}."
    )
    uvicorn.run(
        "recommender.web:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info" if getattr(args, "verbose", False) else "warning",
    )
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from ._store import rollback

    name = rollback(args.model, to=args.to)
    say(f"{args.model}: CURRENT now points at {name}.")
    return 0
