"""The one small, typed client through which actions reach the platform.

Short time-outs: a shopper waits on every call, and Rasa drops everything an action
returns if the action fails, so a slow platform must become a polite answer fast.
"""

import logging
from dataclasses import dataclass
from typing import Any

import httpx

from core.settings import get_settings

logger = logging.getLogger(__name__)
TIMEOUT = httpx.Timeout(3.0, connect=1.0)


class PlatformUnavailableError(Exception):
    """The platform did not answer in time or answered with an error."""


@dataclass(frozen=True)
class ProductCard:
    sku: str
    name: str
    price: float
    currency: str
    url: str
    reason: str

    def line(self) -> str:
        symbol = "$" if self.currency == "USD" else f"{self.currency} "
        return f"- {self.name}: {symbol}{self.price:.2f}"


class PlatformClient:
    def __init__(
        self, base_url: str | None = None, shop_url: str | None = None
    ) -> None:
        settings = get_settings().api
        self.base_url = (base_url or settings.public_url).rstrip("/")
        self.shop_url = (shop_url or settings.storefront_url).rstrip("/")

    def search_products(
        self,
        query: str,
        *,
        category: str | None = None,
        color: str | None = None,
        limit: int = 3,
    ) -> list[ProductCard]:
        params: dict[str, Any] = {"q": query, "limit": limit}
        if category:
            params["category"] = category
        if color:
            params["color"] = color
        body = self._get("/v1/products/search", params)
        return [
            ProductCard(
                sku=item["product"]["sku"],
                name=item["product"]["name"],
                price=float(item["product"]["price"]),
                currency=item["product"]["currency"],
                url=f"{self.shop_url}/shop/p/{item['product']['url_key']}",
                reason=item["reason"],
            )
            for item in body["items"]
        ]

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            response = httpx.get(self.base_url + path, params=params, timeout=TIMEOUT)
            response.raise_for_status()
            return dict(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            raise PlatformUnavailableError(f"{path}: {type(exc).__name__}") from exc
