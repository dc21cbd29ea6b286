"""The Segment e-commerce events, parsed into typed facts the platform uses.

Property names follow Segment's e-commerce spec (v2). Numbers may arrive as strings
("12.50"); they are read as numbers. A property of the wrong type is a 422 at the
tracking API, naming the property, so nothing downstream guesses.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ProductFact(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    product_id: str | None = None
    sku: str | None = None
    name: str | None = None
    category: str | None = None
    brand: str | None = None
    variant: str | None = None
    price: float | None = Field(default=None, ge=0)
    quantity: int = Field(default=1, ge=0)

    @property
    def key(self) -> str | None:
        """The catalog's identifier for this product: the sku, else the product id."""
        return self.sku or self.product_id


class OrderFact(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    order_id: str | None = None
    checkout_id: str | None = None
    total: float | None = None
    revenue: float | None = None
    subtotal: float | None = None
    shipping: float | None = None
    tax: float | None = None
    discount: float | None = None
    coupon: str | None = None
    currency: str = Field(default="USD", min_length=3, max_length=3)
    products: list[ProductFact] = []

    @property
    def amount(self) -> float:
        """What the order is worth: total, else revenue, else the sum of its lines."""
        if self.total is not None:
            return self.total
        if self.revenue is not None:
            return self.revenue
        return sum((p.price or 0) * p.quantity for p in self.products)


class CartFact(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    cart_id: str | None = None
    products: list[ProductFact] = []


class SearchFact(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    query: str = ""


Fact = ProductFact | OrderFact | CartFact | SearchFact

FACT_OF_EVENT: dict[str, type[BaseModel]] = {
    "Product Viewed": ProductFact,
    "Product Clicked": ProductFact,
    "Product Added": ProductFact,
    "Product Removed": ProductFact,
    "Product Shared": ProductFact,
    "Product Reviewed": ProductFact,
    "Product Added to Wishlist": ProductFact,
    "Product Removed from Wishlist": ProductFact,
    "Product List Viewed": CartFact,
    "Product List Filtered": CartFact,
    "Cart Viewed": CartFact,
    "Products Searched": SearchFact,
    "Checkout Started": OrderFact,
    "Checkout Step Viewed": OrderFact,
    "Checkout Step Completed": OrderFact,
    "Payment Info Entered": OrderFact,
    "Order Updated": OrderFact,
    "Order Completed": OrderFact,
    "Order Refunded": OrderFact,
    "Order Cancelled": OrderFact,
}
ORDER_EVENTS = ("Order Completed", "Order Refunded", "Order Cancelled")


def parse_fact(event: str | None, properties: dict[str, Any]) -> Fact | None:
    """The typed fact of an e-commerce event; None for other events.

    Raises pydantic's ValidationError when a spec property has the wrong type."""
    model = FACT_OF_EVENT.get(event or "")
    if model is None:
        return None
    return model.model_validate(properties)  # type: ignore[return-value]


def fact_errors(event: str | None, properties: dict[str, Any]) -> list[dict[str, Any]]:
    """Errors in the shape the api returns, with locations under ``properties``."""
    try:
        parse_fact(event, properties)
    except ValidationError as exc:
        return [
            {"type": e["type"], "loc": ["properties", *e["loc"]], "msg": e["msg"]}
            for e in exc.errors(include_url=False)
        ]
    return []


def product_keys(fact: Fact | None) -> list[str]:
    """The catalog identifiers an event is about, in the order it names them."""
    if isinstance(fact, ProductFact):
        return [fact.key] if fact.key else []
    if isinstance(fact, OrderFact | CartFact):
        return [p.key for p in fact.products if p.key]
    return []
