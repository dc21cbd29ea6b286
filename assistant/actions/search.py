"""Product search: the shopper's words, narrowed by the entities NLU found."""

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from assistant.actions.platform import PlatformClient, PlatformUnavailableError

logger = logging.getLogger(__name__)

# The gender entity selects the shop's top-level category of that name.
GENDER_CATEGORIES = {"women": "Women", "men": "Men"}


def search_text(tracker: Tracker) -> str:
    """What to search for: the shopper's words, or, for a button or a typed
    ``/search_product{...}`` payload, the entity values it carries."""
    text = (tracker.latest_message.get("text") or "").strip()
    if text.startswith("/"):
        values = [
            str(e.get("value")) for e in tracker.latest_message.get("entities", [])
        ]
        text = " ".join(v for v in values if v) or "popular products"
    # The search api takes 500 characters; a long message is still a search.
    return text[:500]


class ActionSearchProducts(Action):
    def __init__(self, client: PlatformClient | None = None) -> None:
        self.client = client or PlatformClient()

    def name(self) -> str:
        return "action_search_products"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        gender = next(tracker.get_latest_entity_values("gender"), None)
        color = next(tracker.get_latest_entity_values("color"), None)
        text = search_text(tracker)
        category = GENDER_CATEGORIES.get(str(gender).lower()) if gender else None
        try:
            cards = self.client.search_products(text, category=category, color=color)
        except PlatformUnavailableError as exc:
            logger.warning("product search failed", extra={"error": str(exc)})
            dispatcher.utter_message(
                text="Sorry, I can't reach the product catalog right now. "
                "Please try again in a minute."
            )
            return []

        if not cards:
            dispatcher.utter_message(
                text="I couldn't find anything matching that. Could you describe it "
                "differently, for example with a category or a colour?"
            )
            return []
        lines = "\n".join(card.line() for card in cards)
        dispatcher.utter_message(
            text=f"Here is what I found:\n{lines}",
            json_message={"products": [card.__dict__ for card in cards]},
        )
        return []
