"""Duplicate groups: exact copies, near copies, repeated headlines, representatives."""

from __future__ import annotations

import numpy as np

from recommender._duplicates import copy_groups, duplicate_groups, representatives, text_keys, title_keys

NAT = np.iinfo(np.int64).min


def test_text_keys_ignore_case_and_spacing_only():
    keys = text_keys(["Storm", "storm ", "Storm"], ["", "", ""], ["Harbour  closed", "harbour closed", "Harbour shut"])
    assert keys[0] == keys[1] != keys[2]
    assert copy_groups(keys).tolist() == [0, 0, -1]


def test_short_titles_never_match():
    keys = title_keys(["Weather", "Weather", "Flood closes the Avon bridge", "flood closes the avon bridge!", "x y z"])
    assert keys[0] == keys[1] == 0 and keys[4] == 0
    assert keys[2] == keys[3] != 0


def test_groups_are_connected_components_labelled_by_first_row():
    # 0-1 similar, 1-2 similar (so 0,1,2 one group); 3 alone; 4 shares a title with 3
    neighbours = np.array([[1, -1], [0, 2], [1, -1], [-1, -1], [-1, -1]])
    similarities = np.array([[0.9, 0], [0.9, 0.85], [0.85, 0], [0, 0], [0, 0]], dtype=np.float32)
    text = np.arange(5, dtype=np.int64)
    titles = np.array([0, 0, 0, 7, 7], dtype=np.int64)
    assert duplicate_groups(neighbours, similarities, 0.8, text, titles).tolist() == [0, 0, 0, 3, 3]
    assert duplicate_groups(neighbours, similarities, 0.88, text, titles).tolist() == [0, 0, 2, 3, 3]


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
