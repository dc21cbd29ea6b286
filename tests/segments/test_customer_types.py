"""Customer types from a profile's own events, through the worker, with reasons."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from events.worker import Worker
from profiles import service as profiles
from segments.customer_types import (
    Figure,
    InvalidCustomerTypeRulesError,
    classify,
    get_rules,
    parse_rules,
)
from segments.models import ProfileState
from tests.conftest import bearer
from tests.events.test_worker import drain, envelope, publish

NOW = datetime.now(UTC)


class Journey:
    """One visitor's events, each at a time given in days and minutes ago."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, name: str, days: float, minutes: float = 0, **properties) -> None:  # type: ignore[no-untyped-def]
        at = NOW - timedelta(days=days, minutes=minutes)
        self.events.append(
            envelope(f"m-{len(self.events)}", event=name, anonymousId="v-1",
                     timestamp=at.isoformat(), properties=properties)
        )  # fmt: skip

    def view(self, sku: str, category: str, days: float, minutes: float = 0) -> None:
        self.add("Product Viewed", days, minutes, sku=sku, category=category)

    def order(
        self, order_id: str, sku: str, days: float, minutes: float = 0, **extra: Any
    ) -> None:
        self.add("Order Completed", days, minutes, order_id=order_id, total=40,
                 products=[{"sku": sku}], **extra)  # fmt: skip


def explorer() -> Journey:
    journey = Journey()
    paths = ["Women/Tops", "Men/Bottoms", "Gear/Bags", "Gear/Watches"]
    for n in range(8):
        journey.view(f"S{n}", paths[n % 4], days=2 if n < 4 else 1, minutes=n)
    return journey


def goal_oriented() -> Journey:
    journey = Journey()
    journey.add("Products Searched", 1, 30, query="running shorts")
    journey.add("Products Searched", 1, 25, query="running shorts black")
    for n in range(3):
        journey.view(f"MSH0{n}", "Men/Bottoms/Shorts", 1, 20 - n)
    return journey


def impulse_buyer() -> Journey:
    journey = Journey()
    journey.view("WJ06", "Women/Tops/Jackets", 3, 50)
    journey.view("MB01", "Gear/Bags", 3, 40)
    journey.order("o-1", "MB01", 3, 28)
    return journey


def deal_seeker_by_orders() -> Journey:
    journey = Journey()
    journey.order("o-1", "MB01", 40, coupon="SPRING10", discount=4)
    journey.order("o-2", "MB02", 20, discount=6.5)
    journey.view("MB03", "Gear/Bags", 1)
    return journey


def deal_seeker_by_browsing() -> Journey:
    journey = Journey()
    for n in range(4):
        journey.view(f"WS{n}", "Promotions/Women Sale", 1, n)
    journey.view("WJ06", "Women/Tops/Jackets", 1, 5)
    return journey


def loyal_regular() -> Journey:
    journey = Journey()
    for n, days in enumerate((70, 40, 10)):
        journey.order(f"o-{n}", "MB01", days)
    return journey


def too_little() -> Journey:
    journey = Journey()
    journey.view("WJ06", "Women/Tops/Jackets", 1)
    return journey


def no_type_fits() -> Journey:
    journey = Journey()
    for n, path in enumerate(["Women/Tops", "Men/Bottoms", "Gear/Bags"]):
        journey.view(f"S{n}", path, 1, n)
    return journey


def state_after(engine: Engine, journey: Journey) -> ProfileState:
    drain(Worker(engine, publish(*journey.events)))
    with Session(engine) as session:
        profile = profiles.get_by_ref_or_raise(session, "anonymous_id:v-1")
        state = session.get(ProfileState, profile.id)
        assert state is not None
        return state


@pytest.mark.parametrize(
    ("journey", "expected", "reason"),
    [
        (explorer, "explorer",
         "viewed 8 products in 4 categories over 2 sessions without buying"),
        (goal_oriented, "goal_oriented",
         "2 searches, 3 product views (3.0 a session), categories viewed: 1"),
        (impulse_buyer, "impulse_buyer",
         "ordered a median 12 minutes after first viewing the product, "
         "without searching"),
        (deal_seeker_by_orders, "deal_seeker",
         "2 of 2 orders with a discount or coupon"),
        (deal_seeker_by_browsing, "deal_seeker",
         "4 of 5 product views in sale categories"),
        (loyal_regular, "loyal_regular", "3 orders, the last 10 days ago"),
        (too_little, None,
         "too little to go on: 1 product view in 1 category over 1 session, "
         "0 searches, 0 orders (3 views, searches and orders needed)"),
        (no_type_fits, None,
         "no type fits: 3 product views in 3 categories over 1 session, "
         "0 searches, 0 orders"),
    ],
)  # fmt: skip
def test_customer_type_from_events_names_the_type_and_quotes_the_figures(
    settings_env: str,
    engine: Engine,
    journey: Callable[[], Journey],
    expected: str | None,
    reason: str,
) -> None:
    state = state_after(engine, journey())

    assert (state.customer_type, state.customer_type_reason) == (expected, reason)


def test_customer_type_change_is_kept_in_the_history_and_shown_by_the_api(
    client: TestClient, engine: Engine
) -> None:
    journey = too_little()
    drain(Worker(engine, publish(*journey.events)))
    journey.events = explorer().events[1:]  # fresh message ids, same visitor
    for n, event in enumerate(journey.events):
        event["messageId"] = f"later-{n}"
    drain(Worker(engine, publish(*journey.events)))

    response = client.get("/v1/profiles/anonymous_id:v-1/state", headers=bearer())

    assert response.status_code == 200, response.text
    report = response.json()
    assert report["state"]["customer_type"] == "explorer"
    assert report["state"]["customer_type_reason"].startswith("viewed 8 products")
    moves = [
        (c["from_value"], c["to_value"])
        for c in report["history"]
        if c["kind"] == "customer_type"
    ]
    assert moves == [(None, "explorer")]


def behaviour(**figures: float | None) -> dict[Figure, float | None]:
    known: dict[Figure, float | None] = dict.fromkeys(Figure, 0)
    known.update({Figure.discount_share: None, Figure.days_since_last_order: None,
                  Figure.minutes_to_buy: None})  # fmt: skip
    known.update({Figure(name): value for name, value in figures.items()})
    return known


def test_customer_type_rules_first_match_wins_in_file_order() -> None:
    both = behaviour(orders=4, orders_with_discount=3, discount_share=0.75,
                     days_since_last_order=5)  # fmt: skip
    shipped = get_rules()
    loyal_first = shipped.model_copy(
        update={"types": sorted(shipped.types, key=lambda r: r.name != "loyal_regular")}
    )

    assert classify(both, shipped).customer_type == "deal_seeker"
    assert classify(both, loyal_first).customer_type == "loyal_regular"


def test_customer_type_condition_on_an_unknown_figure_does_not_hold() -> None:
    rules = parse_rules(
        "types:\n  - name: thrifty\n    when:\n      discount_share: {max: 0.2}\n"
        "    reason: '{discount_share:.0%} of orders discounted'\n",
        name="rules.yml",
    )
    no_orders = behaviour(product_views=5)
    few_discounts = behaviour(product_views=5, orders=5, discount_share=0.0)

    assert classify(no_orders, rules).customer_type is None
    assert classify(few_discounts, rules).reason == "0% of orders discounted"


RULE = "types:\n  - name: explorer\n    when:\n"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (RULE + "      product_views: {min: 8}\n      catgories: {min: 4}\n"
                "    reason: x\n",
         "rules.yml, line 5: types.0.when.catgories: Input should be"),
        (RULE + "      product_views: {min: 8, max: 2}\n    reason: x\n",
         "rules.yml, line 4: types.0.when.product_views: Value error, max is below"),
        (RULE + "      product_views: {min: 8}\n"
                "    reason: 'viewed {views} products'\n",
         "rules.yml, line 5: types.0.reason: Value error, unknown figure {views}; "
         "accepted: product_views, categories"),
        (RULE + "      product_views: {min: 8}\n    reason: '{orders:%Y}'\n",
         "rules.yml, line 5: types.0.reason: Value error, a figure's format"),
        ("window_days: 90\ntypes: []\n", "rules.yml, line 2: types: List should"),
    ],
)  # fmt: skip
def test_customer_type_rules_invalid_name_the_line(text: str, problem: str) -> None:
    with pytest.raises(InvalidCustomerTypeRulesError) as error:
        parse_rules(text, name="rules.yml")

    assert problem in str(error.value)
