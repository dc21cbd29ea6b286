"""The one small, typed client through which actions reach the platform.

Short time-outs: a shopper waits on every call, and Rasa drops everything an action
returns if the action fails, so a slow platform must become a polite answer fast.
The action server is a trusted backend: it reads profiles with the admin token and
writes what the shopper tells it through the tracking API, as any source does.
"""

import logging
import uuid
from dataclasses import dataclass, field
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
    reason: str = ""
    in_stock: bool = True
    sizes: list[str] = field(default_factory=list)
    colors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    variants: list[dict[str, Any]] = field(default_factory=list)
    review_count: int = 0
    rating: float | None = None
    brand: str | None = None

    def line(self) -> str:
        return f"- {self.name}: {money(self.price, self.currency)}"

    def button(self) -> dict[str, str]:
        return {
            "title": self.name,
            "payload": f'/product_details{{"product":"{self.sku}"}}',
        }

    def public(self) -> dict[str, Any]:
        """What a channel shows as a card."""
        return {
            "sku": self.sku, "name": self.name, "price": self.price,
            "currency": self.currency, "url": self.url, "reason": self.reason,
        }  # fmt: skip


@dataclass(frozen=True)
class Recommendations:
    stage: str | None
    stage_reason: str | None
    cards: list[ProductCard]


class PlatformAction:
    """Mixed into an action that reaches the platform; tests pass their own client.
    Not an Action itself: rasa-sdk registers every Action subclass it finds."""

    def __init__(self, client: "PlatformClient | None" = None) -> None:
        self.client = client or PlatformClient()


def money(amount: float, currency: str = "USD") -> str:
    return f"${amount:.2f}" if currency == "USD" else f"{amount:.2f} {currency}"


class PlatformClient:
    def __init__(
        self,
        base_url: str | None = None,
        shop_url: str | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        settings = get_settings()
        # One connection pool per process, made on first use: rasa-sdk pickles the
        # actions into its worker process, and a live client cannot be pickled.
        # Tests pass the api's TestClient here and reach the real routes in-process.
        self._http = http
        self.base_url = (base_url or settings.api.public_url).rstrip("/")
        self.shop_url = (shop_url or settings.api.storefront_url).rstrip("/")
        self.admin = {
            "Authorization": f"Bearer {settings.admin_token.get_secret_value()}"
        }
        write_key = next(iter(settings.tracking.write_keys), "")
        self.write_key = (write_key, "")

    # products ----------------------------------------------------------------------

    def search_products(
        self, query: str, filters: dict[str, Any] | None = None, *, limit: int = 3
    ) -> list[ProductCard]:
        params = {"q": query[:500], "limit": limit, **_plain(filters)}
        body = self._request("GET", "/v1/products/search", params=params)
        return [self._card(item["product"], item["reason"]) for item in body["items"]]

    def recommendations(
        self,
        profile: str | None,
        *,
        stage: str | None = None,
        sku: str | None = None,
        filters: dict[str, Any] | None = None,
        limit: int = 3,
    ) -> Recommendations:
        params: dict[str, Any] = {"limit": limit, **_plain(filters)}
        for key, value in (("profile", profile), ("stage", stage), ("sku", sku)):
            if value:
                params[key] = value
        body = self._request(
            "GET", "/v1/recommendations", params=params, headers=self.admin
        )
        return Recommendations(
            stage=body.get("stage"),
            stage_reason=body.get("stage_reason"),
            cards=[self._card(i["product"], i["reason"]) for i in body["items"]],
        )

    def product(self, sku: str) -> ProductCard | None:
        body = self._request("GET", f"/v1/products/{sku}", missing_ok=True)
        return None if body is None else self._card(body, "")

    # profiles ----------------------------------------------------------------------

    def profile(self, ref: str) -> dict[str, Any] | None:
        return self._request(
            "GET", f"/v1/profiles/{ref}", headers=self.admin, missing_ok=True
        )

    def context(self, ref: str) -> dict[str, Any] | None:
        """The profile's surroundings: devices, last location and its facts now
        (``facts``: country, city, local_hour, daypart, weather_band, raining,
        hot_day, cold_snap, traffic, ...); None for an unknown profile."""
        return self._request(
            "GET", f"/v1/profiles/{ref}/context", headers=self.admin, missing_ok=True
        )

    def record_consent(self, ref: str, purpose: str, status: str) -> None:
        self._request(
            "POST", f"/v1/profiles/{ref}/consents", headers=self.admin,
            json={"purpose": purpose, "status": status, "source": "assistant"},
        )  # fmt: skip

    def track(self, anonymous_id: str, event: str, properties: dict[str, Any]) -> None:
        self._send("track", anonymous_id, {"event": event, "properties": properties})

    def identify_quietly(self, ref: str, traits: dict[str, Any]) -> None:
        """Traits the shopper told the assistant; logged, not raised, on failure."""
        identity, _, value = ref.partition(":")
        try:
            self._send("identify", value, {"traits": traits}, identity=identity)
        except PlatformUnavailableError as exc:
            logger.warning("could not record a trait", extra={"error": str(exc)})

    def track_quietly(self, ref: str, event: str, properties: dict[str, Any]) -> None:
        """Record what the shopper did in the chat; the answer they already have
        must not be lost to a failed write, so a failure is logged, not raised."""
        identity, _, value = ref.partition(":")
        try:
            self._send(
                "track", value, {"event": event, "properties": properties},
                identity=identity,
            )  # fmt: skip
        except PlatformUnavailableError as exc:
            logger.warning("could not record a chat event", extra={"error": str(exc)})

    def hand_over(self, channel: str, sender: str, reason: str) -> None:
        self._request(
            "POST", f"/v1/conversations/{channel}/{sender}/handover",
            headers=self.admin, json={"reason": reason},
        )  # fmt: skip

    # cart --------------------------------------------------------------------------

    def add_to_cart(self, cart_id: str, sku: str, qty: int = 1) -> dict[str, Any]:
        return self._request(
            "POST", "/shop/api/cart", json={"cart_id": cart_id, "sku": sku, "qty": qty}
        )

    def cart(self, cart_id: str) -> dict[str, Any]:
        return self._request("GET", f"/shop/api/cart/{cart_id}")

    # plumbing ----------------------------------------------------------------------

    def _send(
        self, kind: str, sender: str, body: dict[str, Any], *,
        identity: str = "anonymous_id",
    ) -> None:  # fmt: skip
        """A Segment message for the shopper; a WhatsApp or Messenger sender is
        named in ``context.externalIds`` so the worker links it to the profile."""
        context: dict[str, Any] = {
            "channel": "chat",
            "library": {"name": "cdp-assistant"},
        }
        if identity == "anonymous_id":
            who: dict[str, Any] = {"anonymousId": sender}
        else:
            who = {"anonymousId": f"{identity}-{sender}"}
            context["externalIds"] = [{"id": sender, "type": identity}]
        message = {
            **who,
            "messageId": f"assistant-{uuid.uuid4()}",
            "context": context,
            **body,
        }
        self._request("POST", f"/v1/{kind}", json=message, auth=self.write_key)

    def _card(self, product: dict[str, Any], reason: str) -> ProductCard:
        return ProductCard(
            sku=product["sku"],
            name=product["name"],
            price=float(product["price"]),
            currency=product["currency"],
            url=f"{self.shop_url}/shop/p/{product['url_key']}",
            reason=reason,
            in_stock=bool(product.get("in_stock", True)),
            sizes=list(product.get("sizes") or []),
            colors=list(product.get("colors") or []),
            categories=list(product.get("categories") or []),
            attributes=dict(product.get("attributes") or {}),
            variants=list(product.get("variants") or []),
            review_count=int(product.get("review_count") or 0),
            rating=product.get("rating"),
            brand=product.get("brand"),
        )

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(timeout=TIMEOUT)
        return self._http

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if (
            isinstance(state.get("_http"), httpx.Client)
            and type(state["_http"]) is httpx.Client
        ):
            state["_http"] = None  # the copy makes its own
        return state

    def _request(
        self, method: str, path: str, *, missing_ok: bool = False, **options: Any
    ) -> Any:
        try:
            response = self.http.request(method, self.base_url + path, **options)
            if missing_ok and response.status_code == 404:
                return None
            response.raise_for_status()
            return response.json() if response.content else None
        except (httpx.HTTPError, ValueError) as exc:
            raise PlatformUnavailableError(f"{path}: {type(exc).__name__}") from exc


def _plain(filters: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (filters or {}).items() if v not in (None, "")}
