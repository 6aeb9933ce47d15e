"""News-aware ranking controls on a corpus whose right answers are obvious.

The story: a wire report of a flood (printed twice: the original and a
syndicated copy), a follow-up a week later, a piece about the same bridge three
years earlier, and unrelated sport and politics articles.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import article_tables

import recommender as rec

FLOOD = "flood water river avon bridge closed rain residents evacuated town council"


@pytest.fixture
def story() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "article_id": ["source", "wire", "wire-copy", "follow-up", "archive", "sport-1", "sport-2", "vote-1"],
            "title": [
                "Heavy rain warning for the Avon valley",
                "Flood closes bridge over the river Avon",
                "Flood closes bridge over the river Avon, residents evacuated",
                "River Avon bridge reopens a week after the flood",
                "Avon bridge closed as river floods the town",
                "United win the cup final",
                "Striker scores twice in cup final",
                "Council election count begins",
            ],
            "body": [
                f"Forecasters warn of heavy rain and a flood on the river avon. {FLOOD}",
                f"The river avon burst its banks on Saturday night. {FLOOD} Police closed the bridge and asked "
                "drivers to use the bypass until the water falls.",
                f"The river avon burst its banks on Saturday night. {FLOOD} Police closed the bridge and asked "
                "drivers to use the bypass until the water falls.\nReporting by a partner agency.",
                f"The bridge over the river avon reopened after the flood water fell. {FLOOD} repairs",
                f"The river avon flooded the town and the bridge closed. {FLOOD} {FLOOD} record levels",
                "United scored a late goal to win the cup final against City.",
                "The striker scored two goals as his team reached the cup final.",
                "Votes in the council election are being counted tonight.",
            ],
            "published": [
                "2024-06-02",
                "2024-06-01 08:00",
                "2024-06-01 12:00",
                "2024-06-08",
                "2021-06-01",
                "2024-05-30",
                "2024-05-29",
                "2024-06-01",
            ],
            "views": [100, 5000, 300, 800, 50, 9000, 7000, 400],
            "category": ["weather", "weather", "news", "weather", "weather", "sport", "sport", "politics"],
            "tags": ["avon;flood", "avon;flood;bridge", "flood", "avon;bridge", "avon", "cup", "cup", ""],
        }
    )


def model_of(story: pd.DataFrame, **params) -> rec.Recommender:
    base = {"min_df": 1, "max_df": 1.0, "popularity_weight": 0.0, "category_boost": 0.0, "tag_boost": 0.0}
    base["latent_components"] = 0  # these answers are read off shared words
    base.update(params)
    return rec.Recommender(**base).fit(story)


def ids(items) -> list[str]:
    return [r.article_id for r in items]


def similar(items) -> list[str]:
    return [r.article_id for r in items if r.reason == "similar"]


# --------------------------------------------------------------------------- duplicates


def test_wire_copies_form_one_group_shown_once_as_the_newest(story):
    model = model_of(story)
    groups = model.duplicate_groups()
    flood = groups[groups["article_id"].isin(["wire", "wire-copy"])]
    assert flood["group"].nunique() == 1 and len(flood) == 2
    assert flood.loc[flood["representative"], "article_id"].tolist() == ["wire-copy"]  # newest
    got = ids(model.recommend("source", k=5))
    assert "wire-copy" in got and "wire" not in got
    assert "wire" not in ids(model.recommend("wire-copy", k=7)) and "wire-copy" not in ids(model.recommend("wire", k=7))


def test_representative_falls_back_when_blocked(story):
    model = model_of(story)
    changed = model.block(["wire-copy"])
    assert "source" in changed
    got = ids(model.recommend("source", k=5))
    assert "wire" in got and "wire-copy" not in got
    model.unblock(["wire-copy"])
    assert "wire-copy" in ids(model.recommend("source", k=5))


def test_the_same_normalised_title_alone_is_not_a_duplicate(story):
    extra = pd.DataFrame(
        {"article_id": ["retitled"], "title": ["flood CLOSES bridge over the river avon!"], "body": ["cup final goal"]}
    )
    model = model_of(pd.concat([story, extra], ignore_index=True))
    groups = model.duplicate_groups()
    wire_group = groups.loc[groups["article_id"] == "wire", "group"].item()
    assert groups.loc[groups["group"] == wire_group, "article_id"].tolist() == ["wire-copy", "wire"]


# --------------------------------------------------------------------------- freshness


def test_half_life_prefers_the_follow_up_over_the_archive(story):
    plain = similar(model_of(story, fallback=False).recommend("source", k=3))
    assert plain.index("archive") < plain.index("follow-up")  # the archive piece is the closer text
    fresh = model_of(story, half_life_days=30, fallback=False).recommend("source", k=7)
    assert similar(fresh).index("follow-up") < similar(fresh).index("archive")
    archive = next(r for r in fresh if r.article_id == "archive")
    assert archive.freshness_part < 0 and archive.score < 1e-6 * archive.similarity  # 36 half-lives away


def test_freshness_is_measured_from_the_source_date(story):
    # Seen from the 2021 archive piece, the 2024 articles are three years away.
    items = model_of(story, half_life_days=30, fallback=False).recommend("archive", k=3)
    assert all(r.freshness_part < 0 for r in items)
    fresh = model_of(story, fallback=False, half_life_days=30)
    assert fresh.recommend("archive", k=3)[0].score < fresh.recommend("source", k=3)[0].score


def test_max_age_and_past_only_are_hard_windows(story):
    model = model_of(story, fallback=False)
    assert "archive" not in ids(model.recommend("source", k=5, max_age_days=365))
    assert "follow-up" in ids(model.recommend("source", k=5, max_age_days=365))
    assert "follow-up" not in ids(model.recommend("source", k=5, past_only=True))
    assert "archive" in ids(model.recommend("source", k=5, past_only=True))


def test_undated_articles_are_neither_favoured_nor_dropped(story):
    undated = story.copy()
    undated.loc[undated["article_id"] == "follow-up", "published"] = None
    model = model_of(undated, fallback=False)
    assert "follow-up" in ids(model.recommend("source", k=5, max_age_days=1, past_only=True))
    items = model.recommend("source", k=5, half_life_days=30)
    follow_up = next(r for r in items if r.article_id == "follow-up")
    dated = [r for r in items if r.article_id != "follow-up"]
    factors = sorted((r.similarity + r.freshness_part) / r.similarity for r in dated)
    assert (follow_up.similarity + follow_up.freshness_part) / follow_up.similarity == pytest.approx(
        np.median(factors), rel=1e-6
    )


@given(
    gaps=st.lists(st.integers(0, 3000), min_size=2, max_size=8, unique=True), half_life=st.floats(10, 1000)
)  # no underflow to 0
def test_freshness_is_monotone_in_the_date_gap(gaps, half_life):
    # identical texts, different dates: the further from the source, the lower the score
    n = len(gaps)
    source = pd.Timestamp("2020-01-01")
    frame = pd.DataFrame(
        {
            "article_id": ["s"] + [f"c{i}" for i in range(n)],
            "title": ["alpha beta"] + [f"alpha beta gamma{i}" for i in range(n)],
            "published": [source] + [source - pd.Timedelta(days=g) for g in gaps],
        }
    )
    model = rec.Recommender(
        min_df=1, max_df=1.0, popularity_weight=0, fallback=False, duplicate_threshold=1.0, latent_components=0
    )
    items = model.fit(frame).recommend("s", k=n, half_life_days=half_life)
    gap_of = {f"c{i}": g for i, g in enumerate(gaps)}
    ordered = [gap_of[r.article_id] for r in items]
    assert ordered == sorted(ordered)
    scores = [r.score for r in items]
    assert all(a >= b for a, b in itertools.pairwise(scores))


# --------------------------------------------------------------------------- category and tags


def test_category_filter_and_list(story):
    model = model_of(story, fallback=False)
    assert {r.category for r in model.recommend("source", k=5, same_category=True)} == {"weather"}
    assert {r.category for r in model.recommend("source", k=5, categories=["news"])} == {"news"}


def test_category_and_tag_boosts_are_score_parts(story):
    model = model_of(story, category_boost=0.5, tag_boost=0.1, fallback=False)
    for item in model.recommend("source", k=4):
        same = item.category == "weather"
        shared = len({"avon", "flood"} & set(story.set_index("article_id").loc[item.article_id, "tags"].split(";")))
        expected = item.similarity * (0.5 * same + 0.1 * shared)
        assert item.boost_part == pytest.approx(expected, rel=1e-5, abs=1e-9)


def test_min_shared_tags(story):
    model = model_of(story, fallback=False)
    got = ids(model.recommend("source", k=5, min_shared_tags=2))
    assert got == ["wire-copy"] or set(got) <= {"wire", "wire-copy"}  # only the wire shares avon and flood


# --------------------------------------------------------------------------- exclusions, pins, bans


def test_exclude_hides_the_whole_story(story):
    model = model_of(story)
    got = ids(model.recommend("source", k=6, exclude=["wire"]))
    assert "wire" not in got and "wire-copy" not in got  # read one copy, read the story


def test_pins_go_first_and_bans_stay_out(story):
    model = model_of(story)
    model.pin("source", ["vote-1", "sport-1"])
    items = model.recommend("source", k=4)
    assert ids(items)[:2] == ["vote-1", "sport-1"] and [r.reason for r in items[:2]] == ["pinned", "pinned"]
    model.ban("source", "follow-up")
    assert "follow-up" not in ids(model.recommend("source", k=6))
    model.block(["vote-1"])
    assert "vote-1" not in ids(model.recommend("source", k=6))
    model.unban("source", "follow-up")
    model.pin("source", [])
    model.unblock(["vote-1"])
    assert ids(model.recommend("source", k=4)) == ids(model_of(story).recommend("source", k=4))
    with pytest.raises(rec.UnknownArticleError):
        model.pin("source", ["nope"])


# --------------------------------------------------------------------------- diversity, threshold, fallback


def test_diversity_moves_a_different_story_up(story):
    model = model_of(story, fallback=False)
    plain = model.recommend("source", k=3)
    diverse = model.recommend("source", k=3, diversity=1.0)
    assert ids(plain) != ids(diverse)
    assert all(r.diversity_part <= 0 for r in diverse) and diverse[0].diversity_part == 0
    assert [r.score for r in diverse] == sorted((r.score for r in diverse), reverse=True)


def test_min_score_then_fallback_same_category_first(story):
    model = model_of(story)
    items = model.recommend("source", k=3, min_score=2.0)
    assert {r.reason for r in items} == {"fallback"}
    assert items[0].category == "weather"  # same category first
    assert "source" not in ids(items)
    assert all(r.score == 0 and r.similarity == 0 for r in items)
    assert model.recommend("source", k=3, min_score=2.0, fallback=False) == []


def test_fallback_never_shows_excluded_blocked_or_the_source(story):
    model = model_of(story)
    model.block(["sport-1"])
    got = ids(model.recommend("vote-1", k=7, exclude=["sport-2"]))
    assert not {"vote-1", "sport-1", "sport-2"} & set(got)


# --------------------------------------------------------------------------- explanations


def test_shared_terms_explain_the_similarity(story):
    model = model_of(story, fallback=False)
    item = model.recommend("source", k=1)[0]
    terms = dict(item.shared_terms)
    assert 0 < len(terms) <= 5
    assert set(terms) <= set(FLOOD.split()) | {"avon", "river", "heavy", "warning", "valley", "flood"}
    assert sum(terms.values()) <= item.similarity + 1e-6
    assert list(terms.values()) == sorted(terms.values(), reverse=True)


@given(
    table=article_tables(min_size=3, max_size=15),
    controls=st.fixed_dictionaries(
        {
            "popularity_weight": st.sampled_from([0.0, 0.3]),
            "half_life_days": st.sampled_from([None, 100.0]),
            "diversity": st.sampled_from([0.0, 0.5]),
            "category_boost": st.sampled_from([0.0, 0.2]),
        }
    ),
)
def test_parts_add_up_to_the_score_and_batch_equals_single(table, controls):
    model = rec.Recommender(min_df=1, max_df=1.0).fit(table)
    frame = model.recommend_frame(k=4, explain=True, **controls)
    total = frame["similarity"] + frame[["popularity_part", "freshness_part", "boost_part", "diversity_part"]].sum(
        axis=1
    )
    similar_rows = frame["reason"] == "similar"
    np.testing.assert_allclose(total[similar_rows], frame.loc[similar_rows, "score"], rtol=1e-6, atol=1e-9)
    for article_id in table["article_id"].tolist()[:3]:
        single = model.recommend(article_id, k=4, **controls)
        mine = frame[frame["article_id"] == article_id]
        assert mine["recommended_id"].tolist() == ids(single)
        assert mine["reason"].tolist() == [r.reason for r in single]


# --------------------------------------------------------------------------- unseen text and overrides


def test_recommend_for_text_uses_the_same_controls(story):
    model = model_of(story, fallback=False)
    items = model.recommend_for_text(title="Avon flood", body="The river avon flood closed the bridge", k=3)
    assert set(ids(items)) <= {"wire", "wire-copy", "follow-up", "archive", "source"}
    assert "wire" not in ids(items) or "wire-copy" not in ids(items)
    late = model.recommend_for_text(
        title="Avon flood", body="river avon flood bridge", published="2024-06-09", k=3, past_only=True
    )
    assert all(r.published is not None and r.published.date().isoformat() <= "2024-06-09" for r in late)
    same = model.recommend_for_text(title=story["title"][0], body=story["body"][0], k=7)
    assert "source" not in ids(same)  # the very same text is that article, not a recommendation


def test_recommend_for_text_truncates_long_input(story):
    model = model_of(story, fallback=False, text_limit=60)
    head = "river avon flood bridge closed by the police today "
    short = model.recommend_for_text(body=head, k=3)
    long = model.recommend_for_text(body=head + "cup final goal striker " * 100_000, k=3)
    assert ids(short) == ids(long)


def test_overrides_are_checked_and_do_not_stick(story):
    model = model_of(story)
    with pytest.raises(TypeError, match="half_life"):
        model.recommend("source", half_lif_days=3)
    with pytest.raises(ValueError, match="diversity"):
        model.recommend("source", diversity=-1)
    model.recommend("source", diversity=0.5)
    assert model.diversity == 0.0


def test_articles_sharing_nothing_are_not_similar_even_with_the_latent_blend():
    articles = pd.DataFrame(
        {
            "article_id": ["f1", "f2", "e1", "e2"],
            "title": ["Cup final goal", "Late goal wins the cup", "Election vote count", "Vote count continues"],
            "body": ["football cup final", "football cup goal", "election ballots vote", "ballots vote count"],
        }
    )
    model = rec.Recommender(min_df=1, max_df=1.0, fallback=False).fit(articles)
    assert ids(model.recommend("f1", k=3)) == ["f2"]  # float32 noise (~1e-8) is not similarity


def test_a_collapsed_group_shows_the_representatives_own_similarity():
    final = (
        "United scored a late goal to win the cup final against City on Saturday, and the striker who scored it "
        "said the team had worked all season for this night in front of their own fans"
    )
    articles = pd.DataFrame(
        {
            "article_id": list("abcxy"),
            "title": ["Cup final goal", "Cup final goal late", "Cup final report", "Vote count", "Vote ballots"],
            "body": [
                final,
                final + " and the coach agreed",
                "cup final report late goal",
                "vote count",
                "vote ballots",
            ],
            "published": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-01", "2024-01-01"],
        }
    )
    model = rec.Recommender(min_df=1, max_df=1.0, latent_components=0, fallback=False).fit(articles)
    assert model.groups_[0] == model.groups_[1]
    (item,) = model.recommend("c", k=1)
    assert item.article_id == "b"  # a and b are one story; b is newer
    cosine = float((model.vectors_[model.row_of("c")] @ model.vectors_[model.row_of("b")].T).toarray()[0, 0])
    assert item.similarity == pytest.approx(cosine, rel=1e-5)
    assert sum(v for _, v in item.shared_terms) == pytest.approx(cosine, rel=1e-4)


def test_unknown_category_is_an_error_not_an_empty_list(story):
    model = model_of(story)
    with pytest.raises(ValueError, match=r"Unknown categories \['sprot'\]"):
        model.recommend("source", categories=["sprot"])


def test_frame_and_recommend_explain_fallback_items_alike(story):
    model = model_of(story)
    items = model.recommend("source", k=4, min_score=0.5)
    frame = model.recommend_frame(k=4, article_ids=["source"], explain=True, min_score=0.5)
    assert frame["shared_terms"].tolist() == ["; ".join(f"{t}={v:.4f}" for t, v in r.shared_terms) for r in items]
    assert set(frame["reason"]) == {"fallback"}


@given(
    table=article_tables(min_size=3, max_size=15),
    controls=st.fixed_dictionaries(
        {
            "half_life_days": st.sampled_from([None, 1e-3, 30.0]),
            "diversity": st.sampled_from([0.0, 0.5, 1.0]),
            "min_score": st.sampled_from([0.0, 0.05]),
            "fallback": st.booleans(),
        }
    ),
)
def test_an_item_without_a_positive_score_is_never_similar(table, controls):
    model = rec.Recommender(min_df=1, max_df=1.0, fallback=False).fit(table)
    frame = model.recommend_frame(k=5, **controls)
    similar_items = frame[frame["reason"] == "similar"]
    assert (similar_items["score"] > 0).all(), similar_items
    assert (similar_items["score"] >= controls["min_score"] - controls["diversity"]).all()
    for article_id in table["article_id"].tolist()[:2]:
        assert all(r.score > 0 for r in model.recommend(article_id, k=5, **controls) if r.reason == "similar")


def test_a_list_with_nothing_positive_left_is_filled_by_the_fallback(story):
    # diversity 1: every later candidate about the flood overlaps the first one more than it matches the source
    model = model_of(story)
    items = model.recommend("source", k=4, diversity=1.0)
    assert all(r.score > 0 for r in items if r.reason == "similar")
    assert [r.reason for r in items].count("fallback") >= 1
    assert len(items) == 4


@pytest.mark.parametrize(
    ("control", "value"),
    [("diversity", 1.5), ("diversity", -0.1), ("half_life_days", 0), ("popularity_weight", float("inf"))],
)
def test_a_control_outside_its_range_is_a_one_line_error(story, control, value):
    model = model_of(story)
    with pytest.raises(ValueError, match=rf"^{control} must be [^\n]*got {value!r}\.$"):
        model.recommend("source", **{control: value})
    with pytest.raises(ValueError, match=control):
        rec.Recommender(**{control: value}).fit(story)


@given(table=article_tables(min_size=3, max_size=15), data=st.data())
def test_no_excluded_blocked_or_banned_article_ever_appears(table, data):
    model = rec.Recommender(min_df=1, max_df=1.0).fit(table)
    all_ids = table["article_id"].tolist()
    blocked = data.draw(st.lists(st.sampled_from(all_ids), max_size=3))
    source = data.draw(st.sampled_from(all_ids))
    banned = data.draw(st.lists(st.sampled_from(all_ids), max_size=3))
    excluded = data.draw(st.lists(st.sampled_from(all_ids), max_size=3))
    model.block(blocked)
    for article_id in banned:
        model.ban(source, article_id)
    controls = data.draw(
        st.fixed_dictionaries({"diversity": st.sampled_from([0.0, 0.5]), "min_score": st.sampled_from([0.0, 0.5])})
    )
    for items in (
        model.recommend(source, k=5, exclude=excluded, **controls),
        model.recommend_for_text(title=table["title"][0], k=5, exclude=excluded, **controls),
    ):
        got = set(ids(items))
        assert not got & set(blocked)
        assert not got & set(excluded)
    got = set(ids(model.recommend(source, k=5, exclude=excluded, **controls)))
    assert source not in got and not got & set(banned)


def test_the_controls_are_declared_once():
    # the constructor must spell them out (scikit-learn reads its signature); they must equal the declaration
    import inspect

    from recommender._ranking import CONTENT_ONLY, CONTROL_NAMES, Controls, control_specs

    signature = inspect.signature(rec.Recommender)
    assert {name: signature.parameters[name].default for name in CONTROL_NAMES} == Controls().as_dict()
    assert set(CONTENT_ONLY) == set(CONTROL_NAMES) and CONTENT_ONLY["fallback"] is False
    assert all(spec.metadata["help"] for spec in control_specs())
    from recommender._cli import _parser

    recommend = next(a for a in _parser()._actions if getattr(a, "choices", None))._choices_actions
    assert recommend  # the subcommands exist
    flags = {o for a in _parser()._subparsers._group_actions[0].choices["recommend"]._actions for o in a.option_strings}
    assert {"--" + name.replace("_", "-") for name in CONTROL_NAMES} <= flags
