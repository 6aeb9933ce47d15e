"""TF-IDF with field weights: the formula checked by hand on tiny texts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recommender._text import TextParams, build_analyzer, fit_vocabulary, term_counter, vectorise


def params(**changes) -> TextParams:
    base = {"field_weights": {"title": 2.0, "summary": 1.0, "body": 1.0}, "min_df": 1, "max_df": 1.0}
    base["latent_components"] = 0
    base.update(changes)
    return TextParams(**base)


def as_dict(vocabulary, vectors, row):
    dense = vectors[row].toarray().ravel()
    return {str(t): float(v) for t, v in zip(vocabulary.terms, dense, strict=True) if v}


def test_formula_by_hand():
    fields = {"title": ["apple", "cherry"], "summary": ["", ""], "body": ["apple apple banana", "banana"]}
    vocabulary, vectors = fit_vocabulary(fields, params())
    assert vocabulary.terms.tolist() == ["apple", "banana", "cherry"]
    n = 2
    idf = {t: math.log((1 + n) / (1 + df)) + 1 for t, df in {"apple": 1, "banana": 2, "cherry": 1}.items()}
    # doc 0: apple: title 2*(1+ln 1) + body 1*(1+ln 2); banana: body 1*(1+ln 1)
    raw = {"apple": (2 + 1 + math.log(2)) * idf["apple"], "banana": 1 * idf["banana"]}
    norm = math.sqrt(sum(v * v for v in raw.values()))
    got = as_dict(vocabulary, vectors, 0)
    assert got.keys() == raw.keys()
    for term, value in raw.items():
        assert got[term] == pytest.approx(value / norm, rel=1e-6)
    np.testing.assert_allclose(vocabulary.idf, [idf["apple"], idf["banana"], idf["cherry"]], rtol=1e-6)
    assert vectors.dtype == np.float32


def test_rows_have_unit_norm_or_are_empty():
    fields = {"title": ["storm harbour", "the of and"], "body": ["ferry storm", "it is"]}
    _, vectors = fit_vocabulary(fields, params())
    norms = np.sqrt(np.asarray(vectors.multiply(vectors).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms, [1.0, 0.0], atol=1e-6)


def test_html_accents_and_stop_words_are_not_terms():
    analyzer = build_analyzer(params())
    terms = analyzer("<p class='lead'>The <b>caf\u00e9</b> &amp; the na\u00efve &eacute;lan</p>")
    assert terms == ["cafe", "naive", "elan"]


def test_min_df_and_max_df_prune():
    fields = {"title": ["common rare1", "common shared", "common shared"], "body": ["", "", ""]}
    vocabulary, _ = fit_vocabulary(fields, params(min_df=2, max_df=0.9))
    assert vocabulary.terms.tolist() == ["shared"]  # rare1 in 1 doc, common in 3/3 > 0.9


def test_ngrams_never_cross_fields():
    fields = {"title": ["harbour storm"], "body": ["ferry routes"]}
    vocabulary, _ = fit_vocabulary(fields, params(ngram_range=(1, 2)))
    assert "harbour storm" in vocabulary.terms and "ferry routes" in vocabulary.terms
    assert "storm ferry" not in vocabulary.terms


def test_vectorise_with_the_fitted_vocabulary_reproduces_fit():
    fields = {
        "title": ["cup final goal", "election vote"],
        "summary": ["late goal", ""],
        "body": ["goal goal", "ballot vote"],
    }
    vocabulary, fitted = fit_vocabulary(fields, params())
    again = vectorise(fields, vocabulary, params(), term_counter(vocabulary, params()))
    np.testing.assert_allclose(again.toarray(), fitted.toarray(), rtol=1e-6)
    unseen = vectorise({"title": ["goal unknownword"], "body": [""]}, vocabulary, params())
    assert unseen.shape == (1, len(vocabulary)) and unseen.nnz == 1


def test_only_stop_words_gives_an_empty_vocabulary():
    vocabulary, vectors = fit_vocabulary({"title": ["the", "and of"]}, params())
    assert len(vocabulary) == 0 and vectors.shape == (2, 0)


def test_long_fields_are_cut_at_max_chars():
    vocabulary, _ = fit_vocabulary({"body": ["alpha " * 10 + "omega"]}, params(max_chars=30))
    assert "omega" not in vocabulary.terms and "alpha" in vocabulary.terms


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"field_weights": {"title": -1.0}}, "field_weights"),
        ({"field_weights": {"headline": 1.0}}, "unknown fields"),
        ({"field_weights": {"title": 0.0}}, "positive weight"),
        ({"min_df": 0}, "min_df"),
        ({"max_df": 1.5}, "max_df"),
        ({"ngram_range": (2, 1)}, "ngram_range"),
    ],
)
def test_bad_parameters_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        params(**changes)


def test_latent_blend_mixes_the_two_cosines():
    fields = {
        "title": ["cup final goal", "cup final striker", "election vote", "vote count ballots", "storm harbour"],
        "body": ["goal scored late", "striker scored", "ballots cast", "ballots counted", "ferry harbour wind"],
    }
    plain, sparse = fit_vocabulary(fields, params())
    vocabulary, blended = fit_vocabulary(fields, params(latent_components=2, latent_weight=0.3))
    assert vocabulary.components.shape == (2, len(vocabulary)) and blended.shape[1] == len(vocabulary) + 2
    np.testing.assert_array_equal(vocabulary.terms, plain.terms)
    latent = sparse.toarray() @ vocabulary.components.T
    latent /= np.linalg.norm(latent, axis=1, keepdims=True)
    expected = 0.7 * (sparse @ sparse.T).toarray() + 0.3 * latent @ latent.T
    np.testing.assert_allclose((blended @ blended.T).toarray(), expected, atol=1e-5)
    again = vectorise(fields, vocabulary, params(latent_components=2, latent_weight=0.3))
    np.testing.assert_allclose(again.toarray(), blended.toarray(), atol=1e-6)


def test_one_text_gets_one_vector_when_fitted_when_vectorised_and_in_any_block():
    from recommender._text import count_fields, document_frequencies, kept_terms, tfidf_rows

    rng = np.random.default_rng(7)
    words = ["storm", "harbour", "ferry", "vote", "ballot", "cup", "goal", "late", "count", "wind"]
    fields = {
        f: [" ".join(rng.choice(words, size=rng.integers(0, 9))) for _ in range(40)]
        for f in ("title", "summary", "body")
    }
    text = params(field_weights={"title": 2.0, "summary": 0.5, "body": 1.0}, min_df=2, max_df=0.6)
    vocabulary, vectors = fit_vocabulary(fields, text)
    again = vectorise(fields, vocabulary, text)
    assert (again != vectors).nnz == 0  # bit for bit: the same sums in the same order
    counts = count_fields(fields, text)
    columns, idf = kept_terms(document_frequencies(counts), counts.n_docs, text)
    column_of = np.full(len(counts.terms), -1)
    column_of[columns] = np.arange(columns.size)
    block = tfidf_rows(counts, 13, 29, column_of, idf)
    assert (block != vectors[13:29]).nnz == 0
    # df counts articles, not fields: a word in the title and the body of one article counts once
    present = np.array(
        [[w in " ".join(f[i] for f in fields.values()).split() for w in counts.terms] for i in range(40)]
    )
    np.testing.assert_array_equal(document_frequencies(counts), present.sum(axis=0))


def test_latent_blend_is_skipped_when_the_corpus_is_too_small():
    vocabulary, vectors = fit_vocabulary({"title": ["alpha beta"]}, params(latent_components=20))
    assert vocabulary.components is None and vectors.shape[1] == len(vocabulary)


def test_latent_sample_spreads_over_the_corpus_and_keeps_small_ones_whole():
    from recommender._text import LATENT_SAMPLE, latent_sample

    np.testing.assert_array_equal(latent_sample(7), np.arange(7))
    for n in (LATENT_SAMPLE, LATENT_SAMPLE + 1, 3 * LATENT_SAMPLE + 17):
        rows = latent_sample(n)
        assert rows.size == min(n, LATENT_SAMPLE) and rows[0] == 0 and rows[-1] < n
        gaps = np.diff(rows)
        assert gaps.min() >= 1 and gaps.max() - gaps.min() <= 1  # evenly spread, no row twice


def test_latent_components_are_fitted_on_the_sample_only(monkeypatch):
    from sklearn.decomposition import TruncatedSVD

    import recommender._text as text

    topics = ["cup final goal striker", "election vote ballots count", "storm harbour ferry wind"]
    fields = {"title": [f"{topics[i // 4]} item{i}" for i in range(12)]}  # three stories of four
    _, sparse = fit_vocabulary(fields, params())
    monkeypatch.setattr(text, "LATENT_SAMPLE", 4)
    rows = text.latent_sample(12)
    assert rows.tolist() == [0, 3, 6, 9]
    got = text.fit_components(sparse, params(latent_components=2, latent_weight=0.3))
    svd = TruncatedSVD(n_components=2, algorithm="randomized", n_iter=7, random_state=0).fit(sparse[rows])
    np.testing.assert_allclose(got, svd.components_, atol=1e-6)
    whole = TruncatedSVD(n_components=2, algorithm="randomized", n_iter=7, random_state=0).fit(sparse)
    assert not np.allclose(np.abs(got), np.abs(whole.components_), atol=1e-3)


# --------------------------------------------------------------------------- stop words

#: Content words that carry news and that scikit-learn's "english" list removes (from its own list).
NEWS_WORDS = "fire bill interest system show call found move back part side top front full serious empty detail hundred"


def test_the_news_stop_list_drops_function_words_and_keeps_news_words():
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    from recommender._text import NEWS_STOP_WORDS

    news = build_analyzer(params())
    english = build_analyzer(params(stop_words="english"))
    assert news(NEWS_WORDS) == NEWS_WORDS.split()
    assert english(NEWS_WORDS) == []
    assert news("The fire was on the back of the bill and it could not be seen") == ["fire", "back", "bill", "seen"]
    assert {"the", "a", "an", "he", "they", "is", "was", "have", "will", "of", "in", "on", "and", "but", "if"} <= (
        NEWS_STOP_WORDS | {"a"}  # one-letter words never reach the stop list: the tokeniser drops them
    )
    assert len(NEWS_STOP_WORDS) < len(ENGLISH_STOP_WORDS)
    assert not set(NEWS_WORDS.split()) & NEWS_STOP_WORDS


def test_stop_words_none_and_a_list_of_words():
    assert build_analyzer(params(stop_words=None))("the fire") == ["the", "fire"]
    custom = params(stop_words=["Fire", "Café"])
    assert custom.stop_words == ("cafe", "fire")  # cleaned as the tokeniser reads words
    assert build_analyzer(custom)("the fire at the cafe") == ["the", "at", "the"]
    for bad in ("french", ["two words"], [3], "fire"):
        with pytest.raises(ValueError, match="stop_words"):
            params(stop_words=bad)


def test_a_fire_story_shares_fire_with_another_fire_story():
    import pandas as pd

    import recommender as rec

    articles = pd.DataFrame(
        {
            "article_id": ["notre-dame", "hotel", "budget"],
            "title": ["Notre Dame in Paris catches fire", "Hotel fire kills three", "Council approves budget"],
            "body": ["Flames rose from the roof.", "Guests were trapped.", "Taxes will rise."],
        }
    )
    for stop_words, expected in (("news", ["fire"]), ("english", [])):
        model = rec.Recommender(min_df=1, max_df=1.0, latent_components=0, stop_words=stop_words, fallback=False)
        items = model.fit(articles).recommend("notre-dame", k=2)
        assert [t for t, _ in items[0].shared_terms] == expected if items else expected == []


# --------------------------------------------------------------------------- the compiled term counter

_MIXED = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("abc xyz_09 .,;-'\u2019\u2014\u00e9\u00df\u0301\u4e00\u0661<>&")),
        st.characters(codec="utf-8"),
    ),
    max_size=60,
)


def _sklearn_counts(texts, stop_words, vocabulary=None):
    from sklearn.feature_extraction.text import CountVectorizer

    from recommender._text import _clean

    counter = CountVectorizer(preprocessor=_clean, stop_words=stop_words, vocabulary=vocabulary, dtype=np.float32)
    if vocabulary is None:
        return counter.fit_transform(texts), counter.get_feature_names_out().tolist()
    return counter.transform(texts), None


@given(st.lists(_MIXED, min_size=1, max_size=8), st.sampled_from(["news", "english", "none"]))
def test_the_compiled_counter_counts_what_scikit_learn_counts(texts, stop):
    from recommender._text import NEWS_STOP_WORDS, _clean
    from recommender._tokens import count_terms

    words = {"news": sorted(NEWS_STOP_WORDS), "english": "english", "none": None}[stop]
    try:
        expected, names = _sklearn_counts(texts, words)
    except ValueError:  # scikit-learn: an empty vocabulary
        expected, names = None, []
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    listed = {"news": NEWS_STOP_WORDS, "english": ENGLISH_STOP_WORDS, "none": ()}[stop]
    cleaned = [_clean(t) for t in texts]
    terms, counts = count_terms(cleaned, listed)
    assert terms.tolist() == names
    assert _rows_ascending(counts)
    if expected is not None:
        assert counts.shape == expected.shape and (counts != expected).nnz == 0
        # with a fixed vocabulary (every other term), unknown tokens are ignored as scikit-learn ignores them
        vocabulary = {t: i for i, t in enumerate(names[::2])}
        fixed, _ = _sklearn_counts(texts, words, vocabulary)
        _, got = count_terms(cleaned, listed, vocabulary, n_jobs=2)
        assert got.shape == fixed.shape and (got != fixed).nnz == 0


def test_counting_on_threads_gives_scikit_learns_counts():
    """Past 1,024 texts per thread the counts are made in runs of texts, one per thread: the same counts."""
    from sklearn.feature_extraction.text import CountVectorizer

    from recommender._tokens import count_terms

    rng = np.random.default_rng(3)
    words = np.array(["storm", "harbour", "vote", "cup", "goal", "ferry", "ballot", "an", "x"])
    texts = [" ".join(rng.choice(words, size=rng.integers(0, 12))) for _ in range(5000)]
    texts[1666:1700] = [""] * 34  # empty texts where the runs meet
    terms, one = count_terms(texts, ("an",))
    _, three = count_terms(texts, ("an",), n_jobs=3)
    expected = CountVectorizer(stop_words=["an"], dtype=np.float32).fit(texts)
    assert terms.tolist() == expected.get_feature_names_out().tolist()
    assert (one != expected.transform(texts)).nnz == 0 and (three != one).nnz == 0
    np.testing.assert_array_equal(three.indptr, one.indptr)


def _rows_ascending(counts) -> bool:
    """Each row's columns strictly ascending (what the sums over a row's terms rely on for their order)."""
    starts, stops = counts.indptr[:-1], counts.indptr[1:]
    inner = np.ones(counts.indices.size, dtype=bool)
    inner[starts[stops > starts]] = False  # a row's first entry has nothing before it in the row
    return bool((np.diff(counts.indices, prepend=-1)[inner] > 0).all())


@pytest.mark.parametrize("entries", [1, 40, None])
def test_each_row_of_counts_has_its_columns_ascending(monkeypatch, entries):
    """The counter puts a run of texts' entries in column order at a time (at most ``_ORDER_ENTRIES``, at least the
    number of terms): any run size gives scikit-learn's counts with each row's columns ascending."""
    from sklearn.feature_extraction.text import CountVectorizer

    import recommender._tokens as tokens

    if entries is not None:
        monkeypatch.setattr(tokens, "_ORDER_ENTRIES", entries)
    rng = np.random.default_rng(5)
    words = np.array(["storm", "harbour", "vote", "cup", "goal", "ferry", "ballot", "an", "quay", "tide", "poll"])
    texts = [" ".join(rng.choice(words, size=rng.integers(0, 30))) for _ in range(3000)]
    expected = CountVectorizer(stop_words=["an"], dtype=np.float32).fit(texts).transform(texts)
    for n_jobs in (1, 2):
        _, counts = tokens.count_terms(texts, ("an",), n_jobs=n_jobs)
        assert _rows_ascending(counts)
        assert (counts != expected).nnz == 0
        np.testing.assert_array_equal(counts.indptr, expected.indptr)


def test_the_compiled_counter_reads_every_word_character_as_python_does():
    import re
    import sys

    from recommender._tokens import count_terms

    rng = np.random.default_rng(0)
    codes = rng.integers(0x80, sys.maxunicode + 1, size=20_000)
    codes = codes[(codes < 0xD800) | (codes > 0xDFFF)]
    texts = ["a" + chr(c) + " " + chr(c) + "b" for c in codes.tolist()]  # a word character joins its neighbour
    terms, _ = count_terms(texts, ())
    expected = sorted({tok for t in texts for tok in re.findall(r"(?u)\b\w\w+\b", t)})
    assert terms.tolist() == expected


def test_other_token_patterns_and_ngrams_use_scikit_learn():
    fields = {"title": ["Cup-final goal", "late goal"], "body": ["x y goal", "goal"]}
    vocabulary, _ = fit_vocabulary(fields, params(ngram_range=(1, 2)))
    assert "late goal" in vocabulary.terms.tolist()
    vocabulary, _ = fit_vocabulary(fields, params(token_pattern=r"(?u)\b\w+\b"))
    assert "x" in vocabulary.terms.tolist() and "cup" in vocabulary.terms.tolist()


@pytest.mark.parametrize("stop_words", ["news", "english", None, ("goal", "cup")])
def test_fit_and_vectorise_are_the_same_with_either_counter(monkeypatch, stop_words):
    from recommender import _text

    fields = {
        "title": ["Cup final: late <b>goal</b>", "Élection présidentielle", "Σεισμός στην Αθήνα", "东京 2020"],
        "summary": ["The &amp; striker's goal", "", "\u039f σεισμός έπληξε", "Olympics 东京 postponed"],
        "body": ["goal goal cup fans", "vote vote élection", "σεισμός Αθήνα news", "olympics tokyo 2020 2020"],
    }
    text = params(stop_words=stop_words, latent_components=2, latent_weight=0.3)
    fast_vocabulary, fast = fit_vocabulary(fields, text, n_jobs=2)
    monkeypatch.setattr(_text, "_SMALL_TEXT", 0)  # new texts through the compiled counter too
    fast_again = vectorise(fields, fast_vocabulary, text)
    monkeypatch.setattr(_text, "fast_path", lambda *args: False)
    slow_vocabulary, slow = fit_vocabulary(fields, text)
    assert fast_vocabulary.terms.tolist() == slow_vocabulary.terms.tolist()
    np.testing.assert_array_equal(fast_vocabulary.idf, slow_vocabulary.idf)
    assert (fast != slow).nnz == 0
    assert (fast_again != vectorise(fields, slow_vocabulary, text)).nnz == 0


def test_the_compiled_counter_counts_past_float32_integers():
    from recommender._tokens import count_terms

    repeats = 2**24 + 3  # float32 has no 2**24 + 1: a float32 running count would stop at 2**24
    _, counts = count_terms(["ab " * repeats], ())
    assert counts.data.tolist() == [np.float32(repeats)] and counts.data[0] > 2**24


def test_a_term_longer_than_the_cap_is_not_counted_by_either_counter(monkeypatch):
    """One long token (a hash, a base64 run) is not a term: both counters drop it, and it does not widen the
    vocabulary's fixed-width array (one 20,000-character token once made 5,000 articles' vocabulary 3.4 GB)."""
    from recommender import _text
    from recommender._tokens import MAX_TERM_CHARS, count_terms

    edge, over = "k" * MAX_TERM_CHARS, "q" * (MAX_TERM_CHARS + 1)
    texts = [f"storm {edge} {over} harbour", f"{edge} storm {'z' * 50_000}", f"{over}x ferry"]
    terms, counts = count_terms(texts, ())
    assert terms.tolist() == sorted(["storm", edge, "harbour", "ferry"])
    assert terms.dtype.itemsize == 4 * MAX_TERM_CHARS and counts.shape == (3, 4)
    fields = {"title": texts, "body": ["", "", ""]}
    fast, fast_vectors = fit_vocabulary(fields, params(min_df=1, max_df=1.0))
    monkeypatch.setattr(_text, "fast_path", lambda *_: False)  # scikit-learn's counter
    slow, slow_vectors = fit_vocabulary(fields, params(min_df=1, max_df=1.0))
    assert fast.terms.tolist() == slow.terms.tolist() == terms.tolist()
    assert (fast_vectors != slow_vectors).nnz == 0
