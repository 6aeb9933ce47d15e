"""Loaders for the research corpora used to benchmark neighbour quality.

The corpora (BBC News, 20 Newsgroups "bydate", Reuters-21578) are licensed for
research/evaluation use only.  They are read in place from the read-only
``shared`` folder beside the repository (``../shared`` seen from the repository
root) and must never be copied into this repository or shipped with the
package.  Set the environment variable ``RECOMMENDER_SHARED`` to point at a
``shared`` folder elsewhere.

Every loader returns a :class:`pandas.DataFrame` with the columns

``article_id`` (str), ``title`` (str), ``summary`` (str, always empty on these
corpora), ``body`` (str) and ``label`` (str),

already preprocessed for the neighbour-quality protocol (precision@k of
neighbours sharing the label, content only) and with exact duplicate texts
dropped.  A duplicate is a row whose title and body are identical to those of
an earlier row after whitespace normalisation (every run of whitespace
collapsed to a single space and leading/trailing whitespace stripped; case and
punctuation are kept).  The first occurrence in file order is kept, whatever
the labels of the later copies.  Dropping happens after the corpus-specific
preprocessing described in each loader (so, for 20 Newsgroups, two posts that
differ only in quoted text count as duplicates).

Only numpy and pandas are needed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

__all__ = [
    "load_20newsgroups",
    "load_20newsgroups_raw",
    "load_bbc",
    "load_reuters",
    "shared_dir",
    "strip_newsgroup_quoting",
]

COLUMNS = ["article_id", "title", "summary", "body", "label"]

_BBC_FILE = Path("data") / "bbc-news" / "bbc_news.csv.gz"
_NG_FILE = Path("data") / "20newsgroups-bydate" / "20newsgroups_bydate.jsonl.gz"
_REUTERS_FILE = Path("data") / "reuters-21578" / "reuters21578.jsonl.gz"

_WS_RE = re.compile(r"\s+")

# Same rule as scikit-learn's ``fetch_20newsgroups(remove=('quotes',))``
# (sklearn.datasets._twenty_newsgroups.strip_newsgroup_quoting): a line is
# dropped when it starts with '>' or '|' (after leading spaces), starts with
# "In article" or "Quoted from", or contains an attribution marker such as
# "writes:" / "wrote:".  The one change from scikit-learn: leading whitespace
# is skipped before '>' / '|' / "In article", so indented quotes go too.
_QUOTE_RE = re.compile(r"(writes in|writes:|wrote:|says:|said:|^\s*In article|^\s*Quoted from|^\s*\||^\s*>)")


def shared_dir() -> Path:
    """Path of the read-only ``shared`` folder.

    ``$RECOMMENDER_SHARED`` if set, else the ``shared`` folder beside the
    repository root (``<repo>/../shared``).
    """
    env = os.environ.get("RECOMMENDER_SHARED")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "shared"


def _data_file(relative: Path) -> Path:
    path = shared_dir() / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"research corpus file not found: {path}. These corpora are read from the "
            "read-only 'shared' folder beside the repository (../shared) and are never "
            "copied into the repository; set RECOMMENDER_SHARED to the folder that "
            f"holds {relative.as_posix()}."
        )
    return path


def _normalise_ws(text: str) -> str:
    return _WS_RE.sub(" ", text).strip()


def _finish(df: pd.DataFrame) -> pd.DataFrame:
    """Fill missing text, drop exact duplicates (keep first), fix dtypes and order."""
    df = df.copy()
    for col in ("title", "summary", "body", "label"):
        df[col] = df[col].fillna("").astype(str)
    df["article_id"] = df["article_id"].astype(str)
    key = df["title"].map(_normalise_ws) + "\n" + df["body"].map(_normalise_ws)
    df = df.loc[~key.duplicated(keep="first"), COLUMNS]
    return df.reset_index(drop=True)


def load_bbc() -> pd.DataFrame:
    """BBC News, 5 categories: 2,225 rows in the file, 2,125 after dropping duplicates.

    title = headline, body = the article text, label = category.
    """
    raw = pd.read_csv(_data_file(_BBC_FILE), compression="gzip", dtype=str, keep_default_na=False)
    df = pd.DataFrame(
        {
            "article_id": raw["id"],
            "title": raw["title"],
            "summary": "",
            "body": raw["text"],
            "label": raw["category"],
        }
    )
    return _finish(df)


def strip_newsgroup_quoting(text: str) -> str:
    """Drop quoted lines ('>' or '|' first) and attribution lines ("In article <...>",
    "... writes:", "wrote:", ...) from a Usenet post body, as scikit-learn's
    ``remove=('quotes',)`` does."""
    return "\n".join(line for line in text.split("\n") if not _QUOTE_RE.search(line))


def load_20newsgroups() -> pd.DataFrame:
    """20 Newsgroups (bydate), both splits: 18,846 posts in the file.

    title = the Subject header, body = the post body with quoted text removed
    (:func:`strip_newsgroup_quoting`: lines whose first non-space character is
    '>' or '|', and the attribution lines "In article <...>" / "... writes:" /
    "wrote:" / "says:" / "said:" / "Quoted from", as scikit-learn's
    ``remove=('quotes',)``).  Headers are not used; signatures are kept.
    label = newsgroup.  Posts whose subject and stripped body coincide with an
    earlier post's are dropped.
    """
    raw = pd.read_json(_data_file(_NG_FILE), lines=True, compression="gzip", dtype=False)
    df = pd.DataFrame(
        {
            "article_id": raw["id"].astype(str),
            "title": raw["subject"].fillna("").astype(str),
            "summary": "",
            "body": raw["body"].fillna("").astype(str).map(strip_newsgroup_quoting),
            "label": raw["newsgroup"],
        }
    )
    return _finish(df)


def load_20newsgroups_raw() -> pd.DataFrame:
    """20 Newsgroups (bydate) as a forum exports it: every post with its raw body.

    Columns ``article_id, title`` (the Subject header), ``summary`` (empty),
    ``body`` (raw: quoted text, attribution lines and signatures kept), ``label``
    (newsgroup) and ``thread`` (newsgroup and subject without leading "Re:"s,
    lower case, whitespace collapsed). Nothing is dropped.
    """
    raw = pd.read_json(_data_file(_NG_FILE), lines=True, compression="gzip", dtype=False)
    subject = raw["subject"].fillna("").astype(str)
    base = subject.str.replace(r"^(?:\s*re\s*:\s*)+", "", regex=True, case=False).map(_normalise_ws).str.lower()
    return pd.DataFrame(
        {
            "article_id": raw["id"].astype(str),
            "title": subject,
            "summary": "",
            "body": raw["body"].fillna("").astype(str),
            "label": raw["newsgroup"].astype(str),
            "thread": raw["newsgroup"].astype(str) + "/" + base,
        }
    )


def load_reuters(min_body_chars: int = 50) -> pd.DataFrame:
    """Reuters-21578: stories with exactly one topic and a body longer than
    ``min_body_chars`` characters (after stripping surrounding whitespace).

    article_id = NEWID, title = TITLE, body = BODY (dateline not included),
    label = the single topic.
    """
    raw = pd.read_json(_data_file(_REUTERS_FILE), lines=True, compression="gzip", dtype=False)
    topics = raw["topics"].map(lambda t: list(t) if isinstance(t, (list, tuple)) else [])
    body = raw["body"].fillna("").astype(str)
    keep = (topics.map(len) == 1) & (body.str.strip().str.len() > min_body_chars)
    raw = raw.loc[keep]
    df = pd.DataFrame(
        {
            "article_id": raw["newid"].astype(str),
            "title": raw["title"].fillna("").astype(str),
            "summary": "",
            "body": body[keep],
            "label": topics[keep].map(lambda t: t[0]),
        }
    )
    return _finish(df)
