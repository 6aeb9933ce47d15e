"""The embedded demo corpus: 291 Wikinews articles (CC BY 2.5), shipped with the package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ._errors import RecommenderError

__all__ = ["DEMO_ATTRIBUTION", "demo_corpus_path"]

_FILE = "wikinews.jsonl.gz"
DEMO_ATTRIBUTION = (
    "Demo corpus: 291 articles by Wikinews contributors (en.wikinews.org), CC BY 2.5 "
    "(https://creativecommons.org/licenses/by/2.5/), reformatted; see data/README.md."
)


def demo_corpus_path() -> Path:
    """Path of the embedded demo corpus (a gzip'd JSON Lines file).

    In an installed wheel the file is package data (``recommender/_data``); in a
    source checkout it is read from the repository's ``data/`` folder.
    """
    packaged = resources.files("recommender").joinpath("_data", _FILE)
    if packaged.is_file():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parent.parent / "data" / _FILE
    if checkout.is_file():
        return checkout
    raise RecommenderError(f"The demo corpus {_FILE} is missing from this installation; reinstall recommender.")
