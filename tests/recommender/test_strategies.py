"""Each buying stage's strategy on the demo catalog, with the real model."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from profiles.models import Event
from recommender.models import Filters
from recommender.service import Recommender, shopper_from_events
from segments.stages import Stage

NOW = datetime.now(UTC)


def event(name: str, minutes_ago: float, **properties) -> Event:  # type: ignore[no-untyped-def]
    return Event(
        message_id=f"{name}-{minutes_ago}", profile_id="p", type="track", name=name,
        properties=properties, timestamp=NOW - timedelta(minutes=minutes_ago),
    )  # fmt: skip


def recommend(recommender: Recommender, events: list[Event], **options):  # type: ignore[no-untyped-def]
    newest_first = sorted(events, key=lambda e: e.timestamp, reverse=True)
    shopper = shopper_from_events(newest_first, recommender.index)
    return recommender.recommend(shopper, Filters(), limit=6, **options)


def category(item) -> str:  # type: ignore[no-untyped-def]
    return item.product.categories[0]


def test_orientation_spreads_across_categories_and_skips_what_was_seen(
    recommender: Recommender,
) -> None:
    result = recommend(recommender, [event("Product Viewed", 5, sku="WJ06")])

    assert (result.strategy, result.stage) == ("orientation", Stage.orientation)
    assert len({category(item) for item in result.items}) == 6
    assert "WJ06" not in {item.product.sku for item in result.items}


def test_orientation_puts_popular_products_first(
    recommender: Recommender, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recommender, "popularity", {"MH01": 40.0, "24-MB01": 25.0})

    result = recommend(recommender, [])

    assert [item.product.sku for item in result.items[:2]] == ["MH01", "24-MB01"]
    assert result.items[0].reason == "popular in Hoodies & Sweatshirts this month"


def test_comparison_offers_alternatives_from_the_same_category_with_differences(
    recommender: Recommender,
) -> None:
    viewed = ["WJ06", "WJ04", "WJ01"]
    result = recommend(
        recommender,
        [event("Product Viewed", 10 - n, sku=sku) for n, sku in enumerate(viewed)],
    )

    assert result.strategy == "comparison"
    assert result.stage_reason == "viewed 3 products in Women/Tops/Jackets"
    assert all(category(item) == "Women/Tops/Jackets" for item in result.items)
    assert not {item.product.sku for item in result.items} & set(viewed)
    first = result.items[0]
    assert first.reason.startswith("like the ")
    assert any(word in first.reason for word in ("cheaper", "more", "also in"))


def test_decision_reassures_then_offers_complements_from_other_categories(
    recommender: Recommender,
) -> None:
    result = recommend(recommender, [
        event("Product Viewed", 30, sku="WJ06"),
        event("Product Viewed", 20, sku="WJ06"),
        event("Product Added", 10, sku="MP01"),
    ])  # fmt: skip

    assert (result.strategy, result.stage_reason) == ("decision", "in the cart: MP01")
    assert result.items[0].product.sku == "WJ06"
    assert result.items[0].reason.startswith("you looked at it 2 times")
    complements = result.items[1:]
    assert complements
    assert all(category(item) != "Men/Bottoms/Pants" for item in complements)
    assert all("in your cart" in item.reason for item in complements)


def test_social_proof_states_the_real_review_figures_and_only_them(
    recommender: Recommender,
) -> None:
    result = recommend(recommender, [event("Product Added", 10, sku="24-MB01")])

    for item in result.items:
        product = item.product
        if product.review_count:
            assert (
                f"rated {product.rating:.1f} of 5 in {product.review_count} review"
                in item.reason
            )
        else:
            assert "rated" not in item.reason


def test_evaluation_suggests_accessories_never_the_same_item_again(
    recommender: Recommender,
) -> None:
    result = recommend(recommender, [
        event("Product Viewed", 90, sku="WJ06"),
        event("Order Completed", 60, order_id="o-1", products=[{"sku": "WJ06"}]),
    ])  # fmt: skip

    assert result.strategy == "evaluation"
    assert result.items
    assert all(category(item) != "Women/Tops/Jackets" for item in result.items)
    assert all(
        item.reason == "goes with your order of the Juno Jacket"
        for item in result.items
    )


def test_a_stage_asked_for_is_served_and_said_so(recommender: Recommender) -> None:
    result = recommend(
        recommender, [event("Product Viewed", 5, sku="WJ06")], stage=Stage.comparison
    )

    assert result.strategy == "comparison"
    assert result.stage_reason.startswith("asked for comparison; the profile is in ")


def test_a_stage_with_nothing_to_go_on_falls_back_to_orientation(
    recommender: Recommender,
) -> None:
    result = recommend(recommender, [], stage=Stage.evaluation)

    assert (result.stage, result.strategy) == (Stage.evaluation, "orientation")
    assert "nothing to go on for evaluation" in result.stage_reason


def test_filters_hold_in_every_stage(recommender: Recommender) -> None:
    newest_first = [event("Product Added", 1, sku="WJ06")]
    shopper = shopper_from_events(newest_first, recommender.index)
    for stage in Stage:
        result = recommender.recommend(
            shopper, Filters(max_price=40, size="M"), limit=6, stage=stage
        )
        assert all(
            item.product.price <= 40 and "M" in item.product.sizes
            for item in result.items
        ), stage


def test_weights_come_from_the_yaml_and_a_mistake_names_its_line(
    recommender: Recommender, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from recommender.strategies import InvalidWeightsError, Ranker, get_weights

    no_popularity = tmp_path / "weights.yml"
    no_popularity.write_text("orientation:\n  popularity: 0\n  new: 0\n  rating: 0\n")
    broken = tmp_path / "broken.yml"
    broken.write_text("per_category: 2\ndecision:\n  ratting: 0.1\n")
    popular = {"24-MB01": 40.0}
    shopper = shopper_from_events([], recommender.index)

    weighted = Ranker(recommender.index, popular).orientation(shopper, Filters(), 3)
    flat = Ranker(recommender.index, popular, get_weights(no_popularity)).orientation(
        shopper, Filters(), 3
    )

    assert weighted[0].product.sku == "24-MB01"
    assert flat[0].product.sku != "24-MB01"
    with pytest.raises(InvalidWeightsError, match=r"broken\.yml, line 3: unknown key"):
        get_weights(broken)


def test_weather_boost_lifts_the_shops_summer_categories_on_a_hot_day(
    recommender: Recommender,
) -> None:
    plain = recommend(recommender, [])
    shopper = replace(
        shopper_from_events([], recommender.index),
        context={"hot_day": True, "weather_band": "hot"},
    )

    hot = recommender.recommend(shopper, Filters(), limit=6)

    summer = {"Tees", "Shorts", "Tanks", "Bras & Tanks"}
    lifted = [i for i in hot.items if category(i).rsplit("/", 1)[-1] in summer]
    assert hot.items[: len(lifted)] == lifted
    assert len(lifted) >= 3
    assert all(i.reason.endswith("; suits the hot day") for i in lifted)
    assert not any(
        "suits" in i.reason for i in [*plain.items, *hot.items[len(lifted) :]]
    )


def test_weather_boost_adds_its_weight_to_each_matching_score(
    recommender: Recommender,
) -> None:
    viewed = [
        event("Product Viewed", 10 - n, sku=s)
        for n, s in enumerate(["WJ06", "WJ04", "WJ01"])
    ]
    dry = recommend(recommender, viewed)
    shopper = shopper_from_events(
        sorted(viewed, key=lambda e: e.timestamp, reverse=True), recommender.index
    )

    wet = recommender.recommend(
        replace(shopper, context={"raining": True}), Filters(), limit=6
    )

    # Jackets all: the same products in the same order, each 0.2 higher.
    assert [i.product.sku for i in wet.items] == [i.product.sku for i in dry.items]
    assert [i.score for i in wet.items] == [round(i.score + 0.2, 4) for i in dry.items]
    assert all(i.reason.endswith("; suits the rain") for i in wet.items)
