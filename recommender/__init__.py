"""recommender: "You Might Like" lists for news sites.

TF-IDF over title, summary and body -> each article's nearest neighbours by
cosine similarity -> re-ranked with view counts as a popularity prior.

>>> import recommender as rec
>>> model = rec.Recommender().fit(rec.load_articles(rec.demo_corpus_path()))  # doctest: +SKIP
"""

from ._articles import (
    COLUMNS,
    flagged_frame,
    interactions_from_mind,
    load_articles,
    load_interactions,
    read_mind_behaviors,
    read_mind_news,
    rejected_frame,
    validate_articles,
)
from ._batch import PrecomputeResult, precompute, write_lists
from ._demo import demo_corpus_path
from ._errors import (
    ArticleValidationError,
    BusyError,
    ModelFormatError,
    NotFittedError,
    PageFormatError,
    RecommenderError,
    SchemaError,
    UnknownArticleError,
)
from ._evaluate import EvaluationWarning, evaluate, plot_sweep, sweep
from ._model import Recommendation, Recommender, load_model
from ._serving import Answer, ModelHolder
from ._store import read_manifest, rollback, versions_of

__version__ = "0.1.0"


def __getattr__(name: str):
    """``rec.web`` (the HTTP face) is imported on first use: it needs the ``[web]`` extra."""
    if name == "web":
        import importlib

        return importlib.import_module(".web", __name__)
    raise AttributeError(f"module 'recommender' has no attribute {name!r}")


__all__ = [
    "COLUMNS",
    "Answer",
    "ArticleValidationError",
    "BusyError",
    "EvaluationWarning",
    "ModelFormatError",
    "ModelHolder",
    "NotFittedError",
    "PageFormatError",
    "PrecomputeResult",
    "Recommendation",
    "Recommender",
    "RecommenderError",
    "SchemaError",
    "UnknownArticleError",
    "__version__",
    "demo_corpus_path",
    "evaluate",
    "flagged_frame",
    "interactions_from_mind",
    "load_articles",
    "load_interactions",
    "load_model",
    "plot_sweep",
    "precompute",
    "read_manifest",
    "read_mind_behaviors",
    "read_mind_news",
    "rejected_frame",
    "rollback",
    "sweep",
    "validate_articles",
    "versions_of",
    "write_lists",
]
