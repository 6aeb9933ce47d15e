"""Exceptions raised by recommender.

Every error is a :class:`RecommenderError` and also a standard exception, so
ordinary ``except KeyError`` / ``except ValueError`` clauses keep working::

    RecommenderError (Exception)
    ├── NotFittedError (RecommenderError, ValueError, AttributeError)
    ├── SchemaError (RecommenderError, ValueError)
    │   └── PageFormatError (SchemaError)
    ├── ArticleValidationError (RecommenderError, ValueError)
    ├── UnknownArticleError (RecommenderError, KeyError)
    ├── ModelFormatError (RecommenderError, ValueError)
    └── BusyError (RecommenderError, RuntimeError)
"""

from __future__ import annotations

__all__ = [
    "ArticleValidationError",
    "BusyError",
    "ModelFormatError",
    "NotFittedError",
    "PageFormatError",
    "RecommenderError",
    "SchemaError",
    "UnknownArticleError",
]


class RecommenderError(Exception):
    """Base class of every error raised by recommender."""


class NotFittedError(RecommenderError, ValueError, AttributeError):
    """A query method was called, or a fitted attribute read, on a model that has not been fitted.

    Also an ``AttributeError`` (as scikit-learn's), so ``hasattr(model, "neighbours_")``
    is False before ``fit``.
    """


class SchemaError(RecommenderError, ValueError):
    """An input table or file does not have the expected shape or columns."""


class PageFormatError(SchemaError):
    """A raw article page cannot be parsed."""


class ArticleValidationError(RecommenderError, ValueError):
    """An article row is invalid and ``strict=True`` was asked for."""


class UnknownArticleError(RecommenderError, KeyError):
    """An ``article_id`` is not in the model."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ModelFormatError(RecommenderError, ValueError):
    """A model directory is missing, corrupt, foreign or of an unsupported version."""


class BusyError(RecommenderError, RuntimeError):
    """Another job is writing the same output folder; the message says which process holds it."""


class InvalidPart(ValueError):
    """A fitted part breaks one of its rules (raised by the parts' ``check``; not public).

    ``part`` is the name the model directory stores the array under (``vectors.indices``,
    ``similarities``, ``vocabulary``...), so that the loader can name the file.
    """

    def __init__(self, part: str, rule: str) -> None:
        super().__init__(f"{part}: {rule}")
        self.part = part
        self.rule = rule
