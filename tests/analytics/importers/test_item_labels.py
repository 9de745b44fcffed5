"""Readable titles of OULAD content items (#27 item 3)."""

import pandas as pd

from analytics.importers.item_labels import item_titles


def test_kind_in_words_week_and_numbers_only_where_needed() -> None:
    vle = pd.DataFrame(
        {
            "key": ["AAA_2013J"] * 5 + ["BBB_2013J"],
            "id_site": [12, 10, 11, 30, 31, 40],
            "activity_type": ["quiz", "oucontent", "oucontent", "url", "newtype", "oucontent"],
            "week_from": [5, 3, 3, None, None, 3],
        }
    )
    assert list(item_titles(vle)) == [
        "Quiz, week 5",
        "Course page, week 3, no. 1",  # site 10 before site 11
        "Course page, week 3, no. 2",
        "Web link",
        "newtype",  # an unknown code is shown as it is
        "Course page, week 3",  # another run: numbered on its own
    ]
