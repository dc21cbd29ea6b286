"""Computed traits: what a profile's orders and events add up to, read when asked,
so they can never drift from the events they come from."""

from collections import Counter

from sqlalchemy import func
from sqlmodel import Session, col, select

from catalog import service as catalog
from profiles.models import ComputedTraits, Event, Order, Profile

# How many recent product events decide the favourite categories.
CATEGORY_WINDOW = 200
FAVOURITES = 3


def compute(
    session: Session, profile: Profile, orders: list[Order] | None = None
) -> ComputedTraits:
    """``orders``: the profile's orders when the caller has them already."""
    if orders is None:
        orders = list(session.exec(select(Order).where(Order.profile_id == profile.id)))
    orders = [o for o in orders if o.status == "completed"]
    currency = _main_currency([o.currency for o in orders])
    revenue = round(sum(o.total for o in orders if o.currency == currency), 2)
    counted = sum(1 for o in orders if o.currency == currency)
    # One pass over the timeline index: count, first and last seen, channels.
    per_source = session.exec(
        select(
            Event.source,
            func.count(),
            func.min(Event.timestamp),
            func.max(Event.timestamp),
        )
        .where(Event.profile_id == profile.id)
        .group_by(Event.source)
    ).all()
    first_seen = min((row[2] for row in per_source), default=None)
    last_seen = max((row[3] for row in per_source), default=None)
    return ComputedTraits(
        event_count=sum(row[1] for row in per_source),
        order_count=len(orders),
        revenue=revenue,
        average_order_value=round(revenue / counted, 2) if counted else None,
        currency=currency,
        first_seen_at=first_seen,
        last_seen_at=last_seen,
        last_order_at=max((o.placed_at for o in orders), default=None),
        favourite_categories=_favourite_categories(session, profile, orders),
        channels_used=sorted({row[0] for row in per_source if row[0]}),
        sizes_bought=_sizes_bought(session, orders),
    )


def _main_currency(currencies: list[str]) -> str | None:
    # Totals in different currencies are not added up: the most used one counts.
    return Counter(currencies).most_common(1)[0][0] if currencies else None


def _favourite_categories(
    session: Session, profile: Profile, orders: list[Order]
) -> list[str]:
    counts: Counter[str] = Counter()
    recent = session.exec(
        select(Event.properties)
        .where(Event.profile_id == profile.id, Event.type == "track")
        .order_by(col(Event.timestamp).desc())
        .limit(CATEGORY_WINDOW)
    )
    for properties in recent:
        items = properties.get("products") or [properties]
        counts.update(_categories(items))
    for order in orders:  # a purchase says more than a view
        counts.update(_categories(order.products) * 3)
    return [category for category, _n in counts.most_common(FAVOURITES)]


def _sizes_bought(session: Session, orders: list[Order]) -> dict[str, int]:
    """The size of each item bought: as the order gives it, or the size of the
    catalog variant its sku names ("WJ06-M-Blue" is the Juno Jacket in M)."""
    items = [
        item for order in orders for item in order.products if isinstance(item, dict)
    ]
    skus = {str(i.get("sku") or i.get("product_id") or "") for i in items} - {""}
    products = catalog.get_many(session, skus)
    sizes: Counter[str] = Counter()
    for item in items:
        sku = str(item.get("sku") or item.get("product_id") or "")
        size = item.get("size")
        if not size and sku in products:
            size = next(
                (v.get("size") for v in products[sku].variants if v.get("sku") == sku),
                None,
            )
        if isinstance(size, str) and size:
            quantity = item.get("quantity")
            sizes[size.upper()] += quantity if isinstance(quantity, int) else 1
    return dict(sizes.most_common())


def _categories(items: object) -> list[str]:
    if not isinstance(items, list):
        return []
    return [
        item["category"]
        for item in items
        if isinstance(item, dict) and isinstance(item.get("category"), str)
        and item["category"]
    ]  # fmt: skip
