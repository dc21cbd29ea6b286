"""One shopper walked through the four buying stages, with the reasons given."""

from datetime import UTC, datetime, timedelta

import pytest

from profiles.models import Event
from segments.stages import (
    InvalidStageRulesError,
    Stage,
    StageRules,
    classify,
    parse_rules,
    signals_of,
)

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
JACKETS = {"WJ06": "Women/Tops/Jackets", "WJ04": "Women/Tops/Jackets",
           "WJ01": "Women/Tops/Jackets", "MSH02": "Men/Bottoms/Shorts"}  # fmt: skip


def event(name: str, hours_ago: float, **properties) -> Event:  # type: ignore[no-untyped-def]
    return Event(
        message_id=f"{name}-{hours_ago}", profile_id="p", type="track", name=name,
        properties=properties, timestamp=NOW - timedelta(hours=hours_ago),
    )  # fmt: skip


def stage_of(events: list[Event], rules: StageRules | None = None):  # type: ignore[no-untyped-def]
    return classify(signals_of(events), rules or StageRules(), now=NOW,
                    category_of=JACKETS)  # fmt: skip


def test_a_shopper_moves_through_the_four_stages() -> None:
    journey = [
        event("Product List Viewed", 50, category="Women/Tops/Jackets"),
        event("Product Viewed", 49, sku="WJ06"),
    ]
    first = stage_of(journey)
    journey += [event("Product Viewed", 48, sku="WJ04"),
                event("Product Viewed", 47, sku="WJ01")]  # fmt: skip
    second = stage_of(journey)
    journey.append(event("Product Added", 46, sku="WJ04"))
    third = stage_of(journey)
    journey.append(
        event("Order Completed", 45, order_id="o1", products=[{"sku": "WJ04"}])
    )
    fourth = stage_of(journey)

    assert (first.stage, first.reason) == (
        Stage.orientation,
        "browsing: 1 product view(s), 1 category page(s), 0 search(es)",
    )
    assert (second.stage, second.reason) == (
        Stage.comparison,
        "viewed 3 products in Women/Tops/Jackets",
    )
    assert second.focus == ("WJ01", "WJ04", "WJ06")
    assert (third.stage, third.reason, third.focus) == (
        Stage.decision, "in the cart: WJ04", ("WJ04",)
    )  # fmt: skip
    assert (fourth.stage, fourth.reason, fourth.focus) == (
        Stage.evaluation, "ordered 45 hours ago: WJ04", ("WJ04",)
    )  # fmt: skip


def test_the_same_product_viewed_twice_is_a_comparison() -> None:
    result = stage_of([event("Product Viewed", 3, sku="MSH02"),
                       event("Product Viewed", 1, sku="MSH02")])  # fmt: skip

    assert (result.stage, result.reason) == (Stage.comparison, "viewed MSH02 2 times")


def test_a_removed_cart_item_is_no_longer_a_decision() -> None:
    result = stage_of([event("Product Added", 3, sku="WJ06"),
                       event("Product Removed", 2, sku="WJ06")])  # fmt: skip

    assert result.stage is Stage.orientation


def test_shopping_again_after_an_order_starts_a_new_journey() -> None:
    result = stage_of([
        event("Order Completed", 100, order_id="o1", products=[{"sku": "MSH02"}]),
        event("Product Added", 2, sku="WJ06"),
    ])  # fmt: skip

    assert (result.stage, result.focus) == (Stage.decision, ("WJ06",))


def test_an_old_order_no_longer_keeps_a_shopper_in_evaluation() -> None:
    old = [event("Order Completed", 24 * 40, order_id="o1", products=[{"sku": "WJ06"}])]

    assert stage_of(old).stage is Stage.orientation


def test_thresholds_come_from_the_rules() -> None:
    views = [event("Product Viewed", 3, sku="WJ06"),
             event("Product Viewed", 2, sku="WJ04")]  # fmt: skip
    strict = StageRules()
    loose = parse_rules("comparison:\n  product_views: 2\n", name="rules.yml")

    assert stage_of(views, strict).stage is Stage.orientation
    assert stage_of(views, loose).stage is Stage.comparison


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("window_days: 14\ncomparison:\n  product_views: 1\n",
         "rules.yml, line 3: comparison.product_views"),
        ("window_days: 14\nevaluaton:\n  days: 3\n",
         "rules.yml, line 2: unknown key 'evaluaton'"),
    ],
)  # fmt: skip
def test_invalid_rules_name_the_line(text: str, problem: str) -> None:
    with pytest.raises(InvalidStageRulesError) as error:
        parse_rules(text, name="rules.yml")

    assert problem in str(error.value)
