"""Triggers read from a profile's facts: when each fires, with which key, and when
to look again."""

from datetime import UTC, datetime, timedelta

from campaigns.triggers import (
    CartAbandoned,
    DaysSinceLastOrder,
    EventTrigger,
    ProductViewed,
    RetentionChanged,
    StageChanged,
    TriggerFacts,
)
from segments.stages import Kind, Signal

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


def signal(kind: Kind, *skus: str, **delta: float) -> Signal:
    return Signal(at=ago(**delta), kind=kind, skus=skus)


def test_cart_abandoned_waits_for_quiet_then_fires_once_per_cart() -> None:
    cart = [
        signal(Kind.cart_add, "A", minutes=50),
        signal(Kind.cart_add, "B", minutes=40),
    ]
    trigger = CartAbandoned(minutes=60)

    early = trigger.fire(TriggerFacts(now=NOW, signals=cart, last_seen=ago(minutes=40)))
    later = trigger.fire(
        TriggerFacts(now=NOW + timedelta(minutes=25), signals=cart,
                     last_seen=ago(minutes=40))
    )  # fmt: skip

    assert early.occurrences == ()
    assert early.recheck_at == NOW + timedelta(minutes=20)
    [occurrence] = later.occurrences
    assert occurrence.skus == ("B", "A")
    assert occurrence.key == f"cart:{ago(minutes=40).isoformat()}"


def test_cart_abandoned_ignores_emptied_and_ordered_carts_and_old_ones() -> None:
    trigger = CartAbandoned(minutes=60)
    emptied = [
        signal(Kind.cart_add, "A", hours=3),
        signal(Kind.cart_remove, "A", hours=2),
    ]
    ordered = [signal(Kind.cart_add, "A", hours=3), signal(Kind.order, "A", hours=2)]
    old = [signal(Kind.cart_add, "A", days=5)]

    for signals in (emptied, ordered, old):
        fired = trigger.fire(TriggerFacts(now=NOW, signals=signals))
        assert fired.occurrences == ()


def test_cart_abandoned_is_put_off_while_the_shopper_is_still_active() -> None:
    cart = [signal(Kind.cart_add, "A", hours=2)]

    fired = CartAbandoned(minutes=60).fire(
        TriggerFacts(now=NOW, signals=cart, last_seen=ago(minutes=10))
    )

    assert fired.occurrences == ()
    assert fired.recheck_at == NOW + timedelta(minutes=50)


def test_product_viewed_counts_views_of_one_product_not_bought() -> None:
    views = [signal(Kind.product_view, "A", hours=h) for h in (30, 20, 10)]
    views += [signal(Kind.product_view, "B", hours=h) for h in (30, 20, 10)]
    views += [signal(Kind.order, "B", hours=5)]

    fired = ProductViewed(times=3, within_days=7).fire(
        TriggerFacts(now=NOW, signals=sorted(views, key=lambda s: s.at))
    )

    assert [o.skus for o in fired.occurrences] == [("A",)]
    assert fired.occurrences[0].at == ago(hours=10)


def test_stage_and_retention_moves_fire_on_the_latest_matching_move() -> None:
    moves = [
        ("retention", "red_alert", ago(hours=1), 7),
        ("stage", "decision", ago(hours=2), 6),
        ("stage", "comparison", ago(hours=3), 5),
    ]
    facts = TriggerFacts(now=NOW, moves=moves)

    [stage] = StageChanged(to=["decision"]).fire(facts).occurrences  # type: ignore[arg-type]
    [retention] = RetentionChanged(to=["red_alert"]).fire(facts).occurrences

    assert (stage.key, retention.key) == ("stage:6", "retention:7")
    assert StageChanged(to=["evaluation"]).fire(facts).occurrences == ()  # type: ignore[list-item]


def test_days_since_last_order_fires_on_the_day_and_says_when_before() -> None:
    trigger = DaysSinceLastOrder(days=60)

    before = trigger.fire(TriggerFacts(now=NOW, last_order=ago(days=59)))
    on_the_day = trigger.fire(TriggerFacts(now=NOW, last_order=ago(days=60, hours=1)))
    never = trigger.fire(TriggerFacts(now=NOW))

    assert before.recheck_at == NOW + timedelta(days=1)
    assert [o.key for o in on_the_day.occurrences] == [
        f"last_order:{ago(days=60, hours=1).isoformat()}"
    ]
    assert never.occurrences == ()
    assert never.recheck_at is None


def test_event_trigger_fires_for_a_recent_event_only() -> None:
    trigger = EventTrigger(name="Signed Up")

    recent = trigger.fire(
        TriggerFacts(now=NOW, events=[("Signed Up", ago(hours=1), {})])
    )
    old = trigger.fire(TriggerFacts(now=NOW, events=[("Signed Up", ago(days=9), {})]))

    assert len(recent.occurrences) == 1
    assert old.occurrences == ()
