"""Copies and duplicate groups: the copy rule on texts a reader can check by eye, and its invariants."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from handmade import flood_and_final, volcano, volcano_later
from hypothesis import given
from hypothesis import strategies as st
from strategies import copied_texts

import recommender as rec
from recommender._duplicates import (
    DEFAULT_THRESHOLD,
    MIN_SHINGLES,
    Signatures,
    compare,
    copy_labels,
    is_copy,
    own_text,
    representatives,
    signatures,
    text_keys,
)

NAT = np.iinfo(np.int64).min

STORY = (
    "The harbour authority closed the northern pier on Tuesday after divers found deep cracks in two of the "
    "concrete pillars that carry the ferry ramp.\n\n"
    "Ferries to the islands will use the southern quay until engineers have inspected the rest of the structure, "
    "which was built in 1974 and last repaired eleven years ago.\n\n"
    "The authority said the inspection would take at least three weeks and cost about 400,000. Ferry operators "
    "warned that the southern quay can take only two boats at a time, so some crossings will be cancelled.\n\n"
    "Fishermen who moor at the northern pier have been offered berths in the marina free of charge."
)
OTHER = (
    "The city library will open on Sundays from next month, after the council agreed to pay for two more "
    "librarians and longer heating hours in the reading rooms.\n\n"
    "Visitors asked for Sunday opening in a survey last spring, and the library expects about six hundred readers "
    "each Sunday, mostly families and students preparing for exams."
)


def judged(a: tuple[str, str, str], b: tuple[str, str, str], threshold: float = DEFAULT_THRESHOLD) -> bool:
    """The copy rule on one pair of (title, summary, body)."""
    left, right = signatures(*([x] for x in a)), signatures(*([x] for x in b))
    shared, containment, _, sampled = compare(left, np.array([0]), right, np.array([0]))
    return bool(is_copy(shared, containment, sampled, threshold)[0])


def pair_groups(frame: pd.DataFrame, **params) -> dict[str, int]:
    model = rec.Recommender(popularity_weight=0, **params).fit(frame)
    return dict(zip(model.article_ids, np.asarray(model.groups_).tolist(), strict=True))


# --------------------------------------------------------------------------- own text


def test_own_text_drops_boilerplate_and_keeps_the_story():
    body = (
        "By Maria Costa | Coastal Wire\n"
        "PORTSMOUTH (Reuters) - " + STORY + "\n"
        "Photo: Harbour authority\n"
        "This story was first published by Coastal Wire and is republished with permission.\n"
        "Sign up for our newsletter to get the day's stories in your inbox.\n"
        "© 2024 Coastal Wire. All rights reserved.\n"
        "Related:\nFerry fares rise again\nNew marina opens in the spring\n"
    )
    text = own_text("Pier closed", "", body)
    assert text == STORY.replace("\n\n", "\n")


def test_own_text_drops_quoted_lines_attributions_and_a_signature():
    reply = (
        "In article <1993Apr2.1234@news.example.org> pat@example.org (Pat Doe) writes:\n"
        "> The northern pier has been unsafe for years and nobody listened.\n"
        "> It should have been closed long ago.\n"
        "GK> and the ferries are always late\n"
        "Sam Lee wrote:\n"
        "I agree with you about the pier.\n"
        "--\n"
        "Sam Lee, harbour users' association\n"
        "sam@example.org"
    )
    assert own_text("Re: pier", "", reply) == "I agree with you about the pier."


def test_own_text_keeps_paragraphs_that_only_mention_such_words():
    body = (
        "By noon, divers had found cracks in two pillars of the northern pier.\n"
        "From the start the authority said it would follow the engineers' advice.\n"
        "The company said it had two million subscribers and would publish its results in March."
    )
    assert own_text("", "", body) == body


def test_own_text_reads_html_and_falls_back_to_the_title():
    html = "<p>The pier &amp; the quay</p><p>are <b>closed</b>.</p>"
    assert own_text("", "", html).split() == ["The", "pier", "&", "the", "quay", "are", "closed", "."]
    assert own_text("Only a headline here", "", "") == "Only a headline here"


# --------------------------------------------------------------------------- the copy rule, pair by pair


def test_a_syndicated_copy_with_a_new_headline_and_a_footer_is_a_copy():
    syndicated = (
        "By Staff Reporter\n" + STORY + "\n\nThis article was originally published by Coastal Wire.\n"
        "Follow us on Twitter for the latest news."
    )
    assert judged(("Cracks close the northern pier", "", STORY), ("Ferry chaos as pier shuts", "", syndicated))


def test_a_copy_cut_after_two_paragraphs_is_a_copy():
    cut = "\n\n".join(STORY.split("\n\n")[:2])
    assert judged(("Pier closed", "", STORY), ("Pier closed", "", cut))


def test_light_edits_are_a_copy_and_a_rewrite_is_not():
    corrected = STORY.replace("1974", "1975").replace("eleven years", "twelve years").replace("400,000", "450,000")
    assert judged(("Pier closed", "", STORY), ("Pier closed", "", corrected))
    # every fifth word changed: far beyond the edit budget
    words = STORY.split(" ")
    rewritten = " ".join(w if i % 5 else "changed" for i, w in enumerate(words))
    assert not judged(("Pier closed", "", STORY), ("Pier closed", "", rewritten))


def test_case_punctuation_whitespace_and_html_do_not_matter():
    formatted = "<p>" + STORY.upper().replace("'", "\u2019").replace(",", "").replace("\n\n", "</p>\r\n<p>") + "</p>"
    assert judged(("Pier closed", "", STORY), ("PIER CLOSED", "", formatted))


def test_an_equal_title_alone_never_makes_two_articles_one_story():
    assert not judged(
        ("Northern pier closed after cracks", "", STORY), ("Northern pier closed after cracks", "", OTHER)
    )
    frame = pd.DataFrame(
        {"article_id": ["a", "b"], "title": ["Northern pier closed after cracks"] * 2, "body": [STORY, OTHER]}
    )
    groups = pair_groups(frame)
    assert groups["a"] != groups["b"]


def test_a_shared_footer_does_not_make_two_short_articles_copies():
    footer = (
        "\nSign up for our newsletter to get the day's top stories in your inbox every morning.\n"
        "This article was first published by Coastal Wire. © 2024 Coastal Wire. All rights reserved.\n"
        "Follow us on Twitter and Facebook for the latest news from the harbour and the islands."
    )
    a = ("Pier closed", "", "Divers found cracks in the northern pier, which is closed until further notice." + footer)
    b = ("Library open", "", "The library will open on Sundays from next month, the council said." + footer)
    assert not judged(a, b)


def test_texts_too_short_to_judge_are_copies_only_when_exactly_equal():
    short = ("Pier closed", "", "The northern pier is closed after divers found cracks.")
    edited = ("Pier closed", "", "The northern pier is closed after divers found two cracks.")
    assert not judged(short, edited)  # fewer than MIN_SHINGLES shingles: too little text to call a copy
    frame = pd.DataFrame(
        {"article_id": ["a", "b", "c"], "title": ["Pier closed"] * 3, "body": [short[2], short[2], edited[2]]}
    )
    groups = pair_groups(frame)
    assert groups["a"] == groups["b"] != groups["c"]  # the exact copy is still one story


def test_a_quoting_reply_is_not_a_copy_of_its_parent():
    parent = ("Winter tents", "", STORY)
    own = (
        "Thanks, that is useful to know. I moor my boat at the northern pier and nobody told us anything until the "
        "harbour master came down on Wednesday morning with a printed notice and a list of free berths."
    )
    quoted = "\n".join("> " + line for line in STORY.splitlines())
    for reply_body in (f"{quoted}\n\n{own}", f"Pat Doe wrote:\n{quoted}\n\n{own}\n--\nSam"):
        reply = ("Re: Winter tents", "", reply_body)
        assert own_text(*reply) == own
        assert not judged(parent, reply)
    # the same reply with its quote unmarked would contain the whole parent: the markers are what tell
    assert judged(parent, ("Re: Winter tents", "", f"{STORY}\n\n{own}"))


def test_templated_reports_about_two_companies_are_distinct():
    a = (
        "NORTHWIND CORP 4TH QTR NET", "",
        "Shr 42 cts vs 37 cts\nNet 12.4 mln vs 10.9 mln\nRevs 310.2 mln vs 287.6 mln\nYear\nShr 1.61 dlrs vs 1.40 "
        "dlrs\nNet 47.5 mln vs 41.3 mln\nRevs 1.21 billion vs 1.13 billion\nNote: Northwind Corp said results include a "
        "gain of 2.1 mln dlrs from the sale of its packaging unit.",
    )  # fmt: skip
    b = (
        "BLUE RIVER INC 4TH QTR NET", "",
        "Shr 18 cts vs 22 cts\nNet 3.1 mln vs 3.8 mln\nRevs 95.6 mln vs 99.0 mln\nYear\nShr 71 cts vs 80 cts\nNet "
        "12.2 mln vs 13.9 mln\nRevs 377.4 mln vs 390.1 mln\nNote: Blue River Inc said results include a charge of "
        "1.4 mln dlrs for the closing of its Ohio plant.",
    )  # fmt: skip
    assert not judged(a, b)


def test_containment_and_resemblance_of_a_cut_copy():
    cut = STORY.split("\n\n")[0]
    left = signatures(["a", "b"], ["", ""], [STORY, cut])
    shared, containment, resemblance, sampled = compare(left, np.array([0]), left, np.array([1]))
    assert containment[0] == 1.0  # the cut copy is wholly contained in the story
    assert 0 < resemblance[0] < 0.5  # but resembles it in part only
    assert shared[0] == sampled[0] >= MIN_SHINGLES


# --------------------------------------------------------------------------- groups, through the model


def test_volcano_lists_show_the_follow_up_and_the_added_article_but_not_the_copy():
    model = rec.Recommender(popularity_weight=0).fit(volcano())
    groups = model.duplicate_groups()
    assert sorted(groups["article_id"]) == ["kelvar-syndicated", "kelvar-wire"]
    assert (groups["containment"] > 0.95).all()
    listed = [r.article_id for r in model.recommend("kelvar-wire", k=3, half_life_days=7)]
    assert "kelvar-follow-up" in listed and "kelvar-syndicated" not in listed
    model.add_articles(volcano_later())
    assert sorted(model.duplicate_groups()["article_id"]) == ["kelvar-syndicated", "kelvar-wire"]
    listed = [r.article_id for r in model.recommend("kelvar-wire", k=3, half_life_days=7)]
    assert {"kelvar-follow-up", "kelvar-ash-flights"} <= set(listed), listed
    later = [r.article_id for r in model.recommend("kelvar-ash-flights", k=3, half_life_days=7)]
    # the wire story and its copy are one story, shown once
    assert len({"kelvar-wire", "kelvar-syndicated"} & set(later)) == 1 and "kelvar-follow-up" in later


def test_two_articles_about_one_final_stay_in_each_other_lists():
    model = rec.Recommender(popularity_weight=0).fit(flood_and_final())
    assert model.duplicate_groups().empty
    assert model.recommend("final-report", k=1)[0].article_id == "final-coach"
    assert model.recommend("final-coach", k=1)[0].article_id == "final-report"


def test_replies_in_one_thread_with_one_subject_line_are_distinct_posts():
    bodies = [
        "I want a tent for winter camping in the mountains, light enough to carry for a week but strong in wind. "
        "Has anyone used a tunnel tent above the tree line in January?",
        "> Has anyone used a tunnel tent above the tree line in January?\n\nYes, for three winters. Tunnel tents are "
        "fine in wind if you pitch them with the back into it and use every guy line. Take snow pegs.",
        "> Take snow pegs.\n\nSnow pegs are heavy; I bury stuff sacks filled with snow instead, which works in powder "
        "too. My dome tent survived a storm that flattened two tunnel tents next to it.",
        "> My dome tent survived a storm that flattened two tunnel tents next to it.\n\nDomes stand alone, which "
        "helps on frozen ground where pegs do not go in. I would still carry a shovel to build a wall of snow.",
    ]
    frame = pd.DataFrame(
        {"article_id": [f"post-{i}" for i in range(4)], "title": ["Re: Winter tent?"] * 4, "body": bodies}
    )
    model = rec.Recommender(popularity_weight=0, min_df=1, max_df=1.0).fit(frame)
    assert model.duplicate_groups().empty
    assert {r.article_id for r in model.recommend("post-1", k=3)} == {"post-0", "post-2", "post-3"}


def test_groups_never_chain_near_misses():
    # b is a + c; a and c share nothing: a copies b, c copies b, a does not copy c
    first, second = STORY, OTHER
    frame = pd.DataFrame(
        {"article_id": ["a", "b", "c"], "title": ["x", "y", "z"], "body": [first, first + "\n\n" + second, second]}
    )
    groups = pair_groups(frame)
    assert groups["a"] == groups["b"] != groups["c"]  # the stronger pair (the longer part) wins


def test_no_collapse_and_exact_only_thresholds():
    frame = volcano()
    assert all(len(set(g.values())) == len(frame) for g in [pair_groups(frame, collapse=False)])
    exact = frame.assign(article_id=frame["article_id"] + "-again")
    doubled = pd.concat([frame, exact], ignore_index=True)
    groups = pair_groups(doubled, duplicate_threshold=None)
    # only exact copies: each article with its "-again" twin, the syndicated copy apart from the wire story
    assert groups["kelvar-wire"] == groups["kelvar-wire-again"] != groups["kelvar-syndicated"]
    assert len(set(groups.values())) == len(frame)
    with pytest.raises(ValueError, match="duplicate_threshold"):
        rec.Recommender(duplicate_threshold=1.5).fit(frame)
    with pytest.raises(ValueError, match="collapse"):
        rec.Recommender(collapse="yes").fit(frame)


def test_a_draft_never_gets_its_own_near_copy_recommended():
    model = rec.Recommender(popularity_weight=0).fit(volcano())
    wire = volcano().set_index("article_id").loc["kelvar-wire"]
    draft = wire["body"] + "\n\nSubscribe to our newsletter for more news like this."
    listed = [r.article_id for r in model.recommend_for_text(title="A new headline", body=draft, k=5)]
    assert not {"kelvar-wire", "kelvar-syndicated"} & set(listed)
    assert "kelvar-follow-up" in listed


def test_adding_updating_and_loading_judge_copies_like_fit(tmp_path):
    frame = volcano()
    together = rec.Recommender(popularity_weight=0).fit(pd.concat([frame, volcano_later()], ignore_index=True))
    split = rec.Recommender(popularity_weight=0).fit(frame.iloc[[0, 2, 3, 4, 5, 6, 7, 8, 9]])
    split.add_articles(pd.concat([frame.iloc[[1]], volcano_later()], ignore_index=True))
    assert _named_groups(split) == _named_groups(together)
    split.save(tmp_path / "m")
    loaded = rec.load_model(tmp_path / "m")
    assert _named_groups(loaded) == _named_groups(together)
    np.testing.assert_array_equal(loaded.signatures_.values, split.signatures_.values)
    # an edit that makes the copy a different story splits the group; the edit back joins it again
    loaded.update_articles(frame.iloc[[1]].assign(body=OTHER))
    assert _named_groups(loaded) == set()
    loaded.update_articles(frame.iloc[[1]])
    assert _named_groups(loaded) == _named_groups(together)
    loaded.remove_articles(["kelvar-wire"])
    assert _named_groups(loaded) == set()


def _named_groups(model: rec.Recommender) -> set[frozenset[str]]:
    frame = model.duplicate_groups()
    return {frozenset(g["article_id"]) for _, g in frame.groupby("group")}


# --------------------------------------------------------------------------- invariants


@st.composite
def copied_corpora(draw: st.DrawFn) -> pd.DataFrame:
    """Articles made of the same few sentences, so that copies, near-misses and chains all occur."""
    n = draw(st.integers(min_value=2, max_value=10))
    bodies = draw(st.lists(copied_texts, min_size=n, max_size=n))
    return pd.DataFrame({"article_id": [f"a{i}" for i in range(n)], "title": ["t"] * n, "body": bodies})


@given(copied_corpora(), st.sampled_from([0.5, DEFAULT_THRESHOLD, 0.9]))
def test_every_pair_in_a_group_is_a_copy(frame, threshold):
    model = rec.Recommender(popularity_weight=0, min_df=1, max_df=1.0, duplicate_threshold=threshold).fit(frame)
    groups = np.asarray(model.groups_)
    keys = np.asarray(model.text_keys_)
    for label in np.unique(groups):
        members = np.flatnonzero(groups == label)
        for a, b in itertools.combinations(members.tolist(), 2):
            shared, containment, _, sampled = compare(
                model.signatures_, np.array([a]), model.signatures_, np.array([b])
            )
            assert keys[a] == keys[b] or is_copy(shared, containment, sampled, threshold)[0], (a, b, containment)


def test_a_large_model_judges_the_head_of_each_pool_and_finds_its_copies():
    # above 1,000 articles only pool pairs are judged: the copies must still be found, and nothing else grouped
    rng = np.random.default_rng(0)
    vocabulary = [f"w{i}" for i in range(3000)]
    bodies = [" ".join(rng.choice(vocabulary, size=60)) for _ in range(1100)]
    copies = {1100 + i: source for i, source in enumerate(range(0, 60, 3))}
    bodies += [
        "By Staff Reporter\n" + bodies[source] + "\nSign up for our newsletter today." for source in copies.values()
    ]
    frame = pd.DataFrame(
        {"article_id": [f"a{i}" for i in range(len(bodies))], "title": ["t"] * len(bodies), "body": bodies}
    )
    model = rec.Recommender(popularity_weight=0, n_jobs=2).fit(frame)
    assert model.n_articles > 1000
    groups = np.asarray(model.groups_)
    expected = {frozenset({f"a{source}", f"a{copy}"}) for copy, source in copies.items()}
    assert _named_groups(model) == expected
    assert (np.bincount(groups) > 1).sum() == len(copies)


def test_signatures_take_concat_and_replace_equal_recomputing():
    bodies = [STORY, OTHER, STORY.upper(), "short text", ""]
    sigs = signatures(["t"] * 5, [""] * 5, bodies)
    again = signatures(["t"] * 2, [""] * 2, [bodies[3], bodies[1]])
    for got, want in (
        (sigs.take(np.array([3, 1])), again),
        (sigs.take(np.array([0])).concat(again), signatures(["t"] * 3, [""] * 3, [STORY, bodies[3], OTHER])),
        (sigs.replace(np.array([0, 4]), again), signatures(["t"] * 5, [""] * 5, [bodies[3], OTHER, STORY.upper(), "short text", OTHER])),
        # parts joined at once, an empty part among them (the build on Dask joins one part per partition)
        (Signatures.joined([sigs.take(np.array([2, 0])), sigs.take(np.array([], dtype=np.int64)), again, sigs.take(np.array([4]))]),
         signatures(["t"] * 5, [""] * 5, [STORY.upper(), STORY, bodies[3], OTHER, ""])),
    ):  # fmt: skip
        for name in ("values", "indptr", "level", "size"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
    sigs.check(5)
    with pytest.raises(ValueError):
        sigs.check(4)


def long_text(words: int, seed: int = 0) -> str:
    """A text of distinct sentences, paragraphs of about 60 words (no shingle repeats)."""
    rng = np.random.default_rng(seed)
    tokens = [f"{w}{i}" for i, w in enumerate(rng.choice(["pier", "ferry", "quay", "harbour", "tide"], size=words))]
    return "\n\n".join(" ".join(tokens[i : i + 60]) + "." for i in range(0, words, 60))


def test_long_texts_are_sampled_and_still_compare_with_their_cut_copies():
    story = long_text(3000)
    paragraphs = story.split("\n\n")
    sigs = signatures(["t"] * 4, [""] * 4, [story, "\n\n".join(paragraphs[:20]), "\n\n".join(paragraphs[:8]), OTHER])
    assert sigs.level[0] >= 4 and np.diff(sigs.indptr)[0] <= 128
    shared, containment, _, sampled = compare(sigs, np.zeros(3, dtype=np.int64), sigs, np.array([1, 2, 3]))
    # a cut to 40%: judged on plenty of sampled shingles; a cut to 16%: on few, so it needs 0.9 and gets 1.0
    assert sampled[0] >= MIN_SHINGLES and sampled[1] < MIN_SHINGLES
    assert is_copy(shared, containment, sampled, DEFAULT_THRESHOLD).tolist() == [True, True, False]
    # a copy cut to 16% with a tenth of its words changed is not wholly contained: too few samples to call it
    edited = " ".join(w if i % 10 else "changed" for i, w in enumerate("\n\n".join(paragraphs[:8]).split(" ")))
    more = signatures(["t", "t"], ["", ""], [story, edited])
    s, c, _, m = compare(more, np.array([0]), more, np.array([1]))
    assert m[0] < MIN_SHINGLES and not is_copy(s, c, m, DEFAULT_THRESHOLD)[0]


def test_a_repeated_table_does_not_hide_an_article_from_its_copies():
    # 300 repeats of one number make one shingle, not 300: the sample still holds the article's own text
    story = STORY + "\n\n" + "4 " * 300
    syndicated = "By Staff Reporter\n" + story + "\nSign up for our newsletter today."
    assert judged(("Pier", "", story), ("Pier closed", "", syndicated))
    assert judged(("Pier", "", story), ("Pier", "", STORY.split("\n\n")[0] + "\n\n" + STORY.split("\n\n")[1]))


def test_the_plain_python_kernels_agree_with_the_compiled_ones(monkeypatch):
    from recommender import _duplicates

    texts = [STORY, OTHER, "Café crème, naïve résumé: “quoted” ½ ﬁ 東京 Москва 😀 " * 8, long_text(2500), "", "!!!"]
    compiled = signatures(["t"] * 6, [""] * 6, texts)
    compiled_keys = text_keys(["Storm  HITS\tcoast", " ", "", "Pier\x1cclosed ", "Café", "x"], [""] * 6, texts)
    pairs = np.array(list(itertools.combinations(range(6), 2)))
    expected = compare(compiled, pairs[:, 0], compiled, pairs[:, 1])
    monkeypatch.setattr(_duplicates, "_PLAIN", True)
    monkeypatch.setattr(_duplicates, "_KERNELS", {})
    plain = signatures(["t"] * 6, [""] * 6, texts)
    titles = ["Storm  HITS\tcoast", " ", "", "Pier\x1cclosed ", "Café", "x"]
    np.testing.assert_array_equal(text_keys(titles, [""] * 6, texts), compiled_keys)
    for name in ("values", "indptr", "level", "size"):
        np.testing.assert_array_equal(getattr(plain, name), getattr(compiled, name))
    for got, want in zip(compare(plain, pairs[:, 0], plain, pairs[:, 1]), expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_pairs_compared_on_threads_give_the_figures_of_one_run():
    texts = [long_text(40 + 7 * i, seed=i % 9) for i in range(60)]  # repeated seeds: some near-copies
    sigs = signatures(["t"] * 60, [""] * 60, texts)
    rng = np.random.default_rng(5)
    left, right = rng.integers(0, 60, 45_000), rng.integers(0, 60, 45_000)  # more than two runs of pairs
    one = compare(sigs, left, sigs, right)
    for got, want in zip(compare(sigs, left, sigs, right, n_jobs=3), one, strict=True):
        np.testing.assert_array_equal(got, want)
    assert one[1].max() == 1.0 and one[1].min() < 0.5  # copies and strangers among them


# --------------------------------------------------------------------------- exact copies and representatives


def test_text_keys_ignore_case_and_spacing_only():
    keys = text_keys(["Storm", "storm ", "Storm"], ["", "", ""], ["Harbour  closed", "harbour closed", "Harbour shut"])
    assert keys[0] == keys[1] != keys[2]
    assert copy_labels(keys).tolist() == [0, 0, -1]


def test_representative_is_newest_then_most_viewed_and_skips_blocked():
    group = np.array([0, 0, 0, 3])
    published = np.array([10, 20, 20, NAT], dtype=np.int64)
    views = np.array([5.0, 1.0, 2.0, np.nan])
    blocked = np.zeros(4, dtype=bool)
    assert representatives(group, published, views, blocked).tolist() == [2, 2, 2, 3]
    blocked[2] = True
    assert representatives(group, published, views, blocked).tolist() == [1, 1, 1, 3]
    blocked[:] = True
    assert representatives(group, published, views, blocked).tolist() == [-1, -1, -1, -1]


def test_two_short_posts_with_one_framed_signature_are_not_copies():
    signature = (
        "\n\n    ++++++++++++++++++++++++++++++++++++++++\n"
        "    + Pat Doe            pat@example.org    +\n"
        "    + Harbour users' association, secretary  +\n"
        "    + Ferry timetables: ask me by mail       +\n"
        "    + Islands rowing club, captain since 1989 +\n"
        "    + Coastal walks every second Sunday      +\n"
        "    + Member of the lifeboat crew            +\n"
        "    ++++++++++++++++++++++++++++++++++++++++\n"
    )
    a = ("Re: pier", "", "The pier has been closed since Tuesday." + signature)
    b = ("Re: ferry", "", "Has anyone heard when the ferry runs again?" + signature)
    assert not judged(a, b)
    assert "Pat Doe" not in own_text(*a)


def test_own_text_reads_hostile_lines_without_backtracking():
    # Each line took from seconds (the first) to far longer than the timeout (the byline) with patterns that
    # backtracked; read in a child process, so that a regression fails here instead of hanging the suite.
    import subprocess
    import sys

    code = (
        "from recommender._duplicates import own_text\n"
        "for line in [' ' * 50_000 + 'x', 'AP' + ' ' * 20_000 + 'x', 'By A' + ',A' * 40 + ' x',\n"
        "             'By ' + 'A-' * 40 + 'A x', '<' * 100_000, '&nbsp;' * 20_000, '-' * 100_000 + 'x']:\n"
        "    own_text('', '', line)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
