"""The figures bench/recommender_eval.py prints, on inputs small enough to check by
hand, and the two places where a mistake would quietly flatter a method: a record
without a description, and the time split."""

import math

import pytest

from bench.recommender_eval import (
    Session,
    hit_rate,
    ndcg,
    recall_at_k,
    record_text,
    split_by_time,
)


def test_hit_rate_target_past_k_is_a_miss() -> None:
    ranked = [["a", "b", "c"], ["d", "e", "f"], ["g", "h", "i"]]
    targets = ["b", "f", "x"]

    assert hit_rate(ranked, targets, 2) == pytest.approx(1 / 3)  # only "b" by 2
    assert hit_rate(ranked, targets, 3) == pytest.approx(2 / 3)  # "x" nowhere


def test_ndcg_one_target_discounts_by_rank() -> None:
    ranked = [["a", "b", "c"], ["d", "e", "f"], ["g", "h", "i"]]
    targets = ["a", "e", "x"]

    # rank 1 gains 1, rank 2 gains 1 / log2(3), absent gains 0
    assert ndcg(ranked, targets, 3) == pytest.approx((1 + 1 / math.log2(3)) / 3)
    assert ndcg(ranked, targets, 1) == pytest.approx(1 / 3)


def test_recall_at_k_several_relevant_counts_the_share_found() -> None:
    ranked = [[1, 2, 3, 4], [5, 6, 7, 8]]
    relevant = [{2, 4, 9}, {5}]

    assert recall_at_k(ranked, relevant, 2) == pytest.approx((1 / 3 + 1) / 2)
    assert recall_at_k(ranked, relevant, 4) == pytest.approx((2 / 3 + 1) / 2)


def test_recall_at_k_case_without_relevant_items_raises() -> None:
    with pytest.raises(ValueError, match="at least one relevant item"):
        recall_at_k([[1, 2]], [set()], 2)


def test_hit_rate_fewer_lists_than_cases_raises() -> None:
    with pytest.raises(ValueError, match="2 ranked lists for 3 cases"):
        hit_rate([["a"], ["b"]], ["a", "b", "c"], 1)


def test_hit_rate_no_cases_is_not_a_number() -> None:
    assert math.isnan(hit_rate([], [], 10))


def test_record_text_without_description_is_the_name() -> None:
    fields = ("name", "manufacturer", "description")

    assert record_text({"name": "Netgear FS105", "description": ""}, fields) == (
        "Netgear FS105"
    )
    assert record_text({"name": "Netgear FS105", "description": None}, fields) == (
        "Netgear FS105"
    )


def test_record_text_long_description_is_cut_on_a_word() -> None:
    record = {"name": "Sony PSLX350H", "description": "belt drive " * 100}

    text = record_text(record, ("name", "description"))

    assert text.startswith("Sony PSLX350H. belt drive")
    assert len(text) <= len("Sony PSLX350H. ") + 500
    assert text.endswith(("belt", "drive"))


def test_split_by_time_target_never_in_training() -> None:
    sessions = [
        Session([1, 2, 3], [0.0, 10.0, 20.0]),  # crosses the cutoff
        Session([4, 5], [30.0, 40.0]),  # after it
        Session([6], [5.0]),  # before it
    ]

    training, cases = split_by_time(sessions, cutoff=15.0)

    assert training == [[1, 2], [6]]
    assert [(c.history, c.target) for c in cases] == [([1, 2], 3), ([4], 5)]
    assert cases[0].ages == [20.0, 10.0]
