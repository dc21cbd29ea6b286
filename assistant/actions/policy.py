"""Answers from the shop's own policy file (shop/policy.yml): delivery, returns and
refunds, payment, checkout, cancelling and changing orders. The shop edits the file;
nothing here is the shop's text."""

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from assistant.actions.platform import money
from core.settings import ROOT

logger = logging.getLogger(__name__)
POLICY_FILE = ROOT / "shop" / "policy.yml"


class DeliveryOption(BaseModel):
    name: str
    days: str
    cost: float
    free_over: float | None = None


class Delivery(BaseModel):
    summary: str
    options: list[DeliveryOption]


class Returns(BaseModel):
    days: int
    summary: str
    refund: str


class Payment(BaseModel):
    methods: list[str]
    summary: str = ""


class Orders(BaseModel):
    cancel: str
    change: str


class ShopPolicy(BaseModel):
    shop_name: str
    currency: str = "USD"
    delivery: Delivery
    returns: Returns
    payment: Payment
    orders: Orders
    checkout: str


@lru_cache(maxsize=4)
def _load(path: Path, mtime: float) -> ShopPolicy:
    return ShopPolicy.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def load_policy(path: Path = POLICY_FILE) -> ShopPolicy:
    """Read again whenever the file changes."""
    return _load(path, path.stat().st_mtime)


def answer(topic: str, policy: ShopPolicy) -> str:
    if topic == "delivery_options":
        lines = [policy.delivery.summary]
        for option in policy.delivery.options:
            cost = "free" if option.cost == 0 else money(option.cost, policy.currency)
            free = (
                f", free over {money(option.free_over, policy.currency)}"
                if option.free_over
                else ""
            )
            lines.append(f"- {option.name}: {option.days}, {cost}{free}")
        return "\n".join(lines)
    if topic == "return_refund":
        return f"{policy.returns.summary} {policy.returns.refund}"
    if topic == "payment_methods":
        return (
            f"We accept {', '.join(policy.payment.methods)}. {policy.payment.summary}"
        ).strip()
    if topic == "checkout_help":
        return policy.checkout
    if topic == "cancel_order":
        return policy.orders.cancel
    if topic == "change_order":
        return policy.orders.change
    raise ValueError(f"no policy answer for {topic!r}")


class ActionShopPolicy(Action):
    def name(self) -> str:
        return "action_shop_policy"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        topic = (tracker.latest_message.get("intent") or {}).get("name") or ""
        try:
            text = answer(topic, load_policy())
        except (OSError, ValueError, yaml.YAMLError) as exc:
            logger.warning(
                "no policy answer", extra={"topic": topic, "error": str(exc)}
            )
            dispatcher.utter_message(response="utter_handover_offer")
            return []
        buttons = []
        if topic in ("cancel_order", "change_order"):
            buttons = [{"title": "Talk to a person", "payload": "/human_agent"}]
        dispatcher.utter_message(text=text, buttons=buttons)
        return []
