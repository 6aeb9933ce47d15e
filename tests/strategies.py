"""Hypothesis strategies shared by the property tests."""

from __future__ import annotations

import pandas as pd
from hypothesis import strategies as st

#: A small vocabulary so that generated articles share terms (and have neighbours).
WORDS = (
    "goal cup final striker keeper penalty match league coach season "
    "election vote ballot parliament minister poll campaign party seat count "
    "storm flood harbour ferry rain wind coast river bridge road "
    "market shares bank rates inflation trade export price oil growth"
).split()

texts = st.lists(st.sampled_from(WORDS), min_size=1, max_size=12).map(" ".join)
#: Sentences long enough to be judged for copies: bodies made of a few of them copy, overlap and chain.
SENTENCES = (
    "the striker scored a late goal and the coach praised the keeper after the cup final in the league",
    "the minister said the election campaign would end with a vote count in every seat of parliament",
    "a storm with strong wind and rain closed the harbour and the ferry to the coast for two days",
    "the river flood reached the bridge and the road so the council closed both until the water fell",
    "the bank said inflation and oil prices would slow growth and trade this season across the market",
    "shares in the export firm rose after the bank cut rates and the price of oil fell in the market",
    "the party campaign for the poll promised the minister a seat and a count of every ballot cast",
    "the coach said the penalty decided the match and the season for the league and the cup final",
)
copied_texts = st.lists(st.sampled_from(SENTENCES), min_size=1, max_size=5).map(". ".join)
optional_views = st.one_of(st.none(), st.integers(min_value=0, max_value=10**7))
optional_dates = st.one_of(
    st.none(),
    st.dates(min_value=pd.Timestamp("2015-01-01").date(), max_value=pd.Timestamp("2025-12-31").date()).map(str),
)


@st.composite
def article_tables(
    draw: st.DrawFn, min_size: int = 2, max_size: int = 25, bodies: st.SearchStrategy[str] = texts
) -> pd.DataFrame:
    """Valid article tables: unique ids, some text, optional views and dates."""
    n = draw(st.integers(min_value=min_size, max_value=max_size))
    ids = draw(st.lists(st.text("abcdef0123456789-", min_size=1, max_size=6), min_size=n, max_size=n, unique=True))
    return pd.DataFrame(
        {
            "article_id": ids,
            "title": draw(st.lists(texts, min_size=n, max_size=n)),
            "body": draw(st.lists(bodies, min_size=n, max_size=n)),
            "views": draw(st.lists(optional_views, min_size=n, max_size=n)),
            "published": draw(st.lists(optional_dates, min_size=n, max_size=n)),
        }
    )


# --------------------------------------------------------------------------- messy input (fuzzing)

#: Values a real export holds in an id column: strings, numbers, blanks, look-alikes.
messy_ids = st.one_of(
    st.text("abc0123456789-_ ", min_size=0, max_size=5),
    st.integers(min_value=-5, max_value=50),
    st.sampled_from(["007", "7", 7.0, " 7 ", None, float("nan"), ""]),
)
#: Text with words, HTML, entities, stop words, blanks, control and non-ASCII characters.
messy_texts = st.one_of(
    texts,
    st.none(),
    st.just(float("nan")),
    st.sampled_from(["", "   ", "the and of it", "<p>goal &amp; <b>cup</b></p>", "caf\u00e9 na\u00efve", "\x00\x01"]),
    st.text(max_size=40),
)
#: View counts as exports write them: numbers, strings with separators, junk, bounds.
messy_views = st.one_of(
    st.none(),
    st.integers(min_value=-10, max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["1,234", "12.5", "-3", "many", "", " 42 ", "1e30", "inf", True]),
)
#: Dates in several formats and zones, out of range, in the future, numbers, junk.
messy_dates = st.one_of(
    st.none(),
    st.datetimes(
        min_value=pd.Timestamp("1990-01-01").to_pydatetime(), max_value=pd.Timestamp("2200-01-01").to_pydatetime()
    ).map(str),
    st.sampled_from(
        [
            "2024-02-29",
            "2024-02-30",
            "2024-03-01T10:00:00+05:30",
            "01 March 2024",
            "March 1, 2024 10:00 PM",
            "2999-01-01",
            "yesterday",
            "",
            1.7e9,
            1.7e12,
        ]
    ),
)


@st.composite
def messy_tables(draw: st.DrawFn, max_size: int = 12) -> pd.DataFrame:
    """Article tables as exports really come: any mix of good and bad values in every column."""
    n = draw(st.integers(min_value=0, max_value=max_size))

    def column(values: st.SearchStrategy) -> list:
        return draw(st.lists(values, min_size=n, max_size=n))

    frame = pd.DataFrame(
        {
            "id": column(messy_ids),
            "headline": column(messy_texts),
            "body": column(messy_texts),
            "views": column(messy_views),
            "published": column(messy_dates),
            "section": column(st.one_of(st.none(), st.sampled_from(["sport", " Sport ", "", "politics"]))),
            "tags": column(st.one_of(st.none(), st.sampled_from(["a;b", ";", "x", ""]), st.lists(texts, max_size=3))),
        },
        dtype=object,
    )
    return frame


_page_line = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@st.composite
def raw_pages(draw: st.DrawFn) -> str:
    """Text that may or may not be a page: the parts of one, shuffled, dropped or replaced by noise."""
    parts = [
        *draw(st.lists(_page_line, max_size=3)),  # banner
        draw(_page_line),  # title
        draw(st.sampled_from(["Views: 1,234", "Views: 7", "Views: many", "Views:", "views 12", ""])),
        draw(st.sampled_from(["2024-03-01 10:00", "2024-13-45 99:99", "01/03/2024", "", "Views: 3"])),
        *draw(st.lists(_page_line, max_size=6)),  # lede and body
    ]
    if draw(st.booleans()):
        parts = draw(st.permutations(parts))
    if draw(st.booleans()):
        parts += ["", "You Might Like...", *draw(st.lists(_page_line, max_size=2))]
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return draw(st.sampled_from(["", "\ufeff"])) + newline.join(parts)


# --------------------------------------------------------------------------- corrupted model files

#: The array files of a saved model (format 4) with copy signatures.
MODEL_ARRAYS = tuple(
    f"{name}.npy"
    for name in (
        *(f"{column}.{part}" for column in ("article_id", "title", "url", "category", "tag_values", "vocabulary")
          for part in ("bytes", "ends", "missing")),
        "components", "groups", "idf", "tag_counts", "neighbours", "popularity", "published", "similarities", "text_keys", "views",
        "signatures.indptr", "signatures.level", "signatures.size", "signatures.values",
        "vectors.data", "vectors.indices", "vectors.indptr", "vectors.shape",
    )
)  # fmt: skip
_ODD_VALUES = (0, 1, -1, 2, 7, 9, 255, 2**31 - 1, -(2**31), 2**63 - 1, float("nan"), float("inf"), -float("inf"), 1e30)
_ODD_DTYPES = ("int8", "int32", "int64", "uint32", "float32", "float64", "bool", ">i4", ">f8", "<U3")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


class Corruption:
    """One change to a saved model's version folder (or its CURRENT pointer), applied by calling it."""

    def __init__(self, kind: str, target: str, **how) -> None:
        self.kind, self.target, self.how = kind, target, how

    def __repr__(self) -> str:
        return f"Corruption({self.kind!r}, {self.target!r}, {self.how!r})"

    def __call__(self, root, version) -> None:
        import json

        import numpy as np

        path = (root if self.target == "CURRENT" else version) / self.target
        how = self.how
        if self.kind == "bytes":
            path.write_bytes(how["data"])
            return
        if self.kind == "byte":
            raw = bytearray(path.read_bytes())
            if raw:
                raw[int(how["at"] * (len(raw) - 1))] = how["value"]
            path.write_bytes(bytes(raw))
            return
        if self.kind == "json":
            document = json.loads(path.read_text(encoding="utf-8"))
            holder = document.get("parameters", {}) if how["in_parameters"] else document
            if isinstance(holder, dict) and holder:
                keys = sorted(holder)
                holder[keys[int(how["at"] * (len(keys) - 1))]] = how["value"]
            path.write_text(json.dumps(document), encoding="utf-8")
            return
        array = np.array(np.load(path, allow_pickle=False))
        if self.kind == "value" and array.size:
            with np.errstate(all="ignore"):
                array.flat[int(how["at"] * (array.size - 1))] = np.array(how["value"]).astype(array.dtype)
        elif self.kind == "length":
            array = (
                array[: max(0, len(array) + how["by"])]
                if how["by"] < 0
                else np.concatenate([array, array[: how["by"]]])
            )
        elif self.kind == "dtype":
            with np.errstate(all="ignore"):
                array = array.astype(how["dtype"])
        np.save(path, array, allow_pickle=False)


_fraction = st.floats(min_value=0, max_value=1)


@st.composite
def model_corruptions(draw: st.DrawFn) -> Corruption:
    """Random corruptions of a saved model: array values, bytes, lengths and dtypes; JSON values; raw bytes."""
    kind = draw(st.sampled_from(("value", "value", "byte", "length", "dtype", "json", "bytes")))
    if kind == "json":
        target = draw(st.sampled_from(("manifest.json", "editorial.json")))
        return Corruption(kind, target, in_parameters=draw(st.booleans()), at=draw(_fraction), value=draw(json_values))
    if kind == "bytes":
        target = draw(st.sampled_from(("CURRENT", "manifest.json", "editorial.json", "rejected.csv", "flagged.csv")))
        return Corruption(kind, target, data=draw(st.binary(max_size=40) | st.text(max_size=40).map(str.encode)))
    target = draw(st.sampled_from(MODEL_ARRAYS))
    if kind == "value":
        return Corruption(kind, target, at=draw(_fraction), value=draw(st.sampled_from(_ODD_VALUES)))
    if kind == "byte":
        return Corruption(kind, target, at=draw(_fraction), value=draw(st.integers(0, 255)))
    if kind == "length":
        return Corruption(kind, target, by=draw(st.integers(-3, 3).filter(bool)))
    return Corruption(kind, target, dtype=draw(st.sampled_from(_ODD_DTYPES)))
