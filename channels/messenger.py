"""Facebook Messenger through Meta's Send API: the webhook Meta calls, reading
its payloads, and replies shaped to Messenger's limits.

As on WhatsApp the webhook only checks the signature and queues; the channel
worker answers. The page-scoped id (PSID) is the shopper's messenger_id identity.
Outside the 24-hour window only an agent may write (with Meta's HUMAN_AGENT
tag); other replies are held until the shopper writes.
"""

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import redis

from channels import service
from channels.meta import (
    GraphClient,
    Outbound,
    clip,
    lead_and_body,
    price,
    split,
    webhook_router,
)
from channels.models import Inbound, InboundKind, Outgoing, Status
from core.settings import MessengerSettings, get_settings

logger = logging.getLogger(__name__)


# Messenger's limits (Send API reference).
TEXT_MAX = 2000
BUTTON_TEXT_MAX = 640  # the text of a button template
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
PAYLOAD_MAX = 1000
QUICK_REPLIES_MAX = 13
ELEMENTS_MAX = 10
ELEMENT_TITLE_MAX = 80
SUBTITLE_MAX = 80
CHOOSE_PROMPT = "Please choose:"


def parse_webhook(payload: dict[str, Any]) -> tuple[list[Inbound], list[Status]]:
    """The shoppers' messages and postbacks, and the delivery and read receipts."""
    messages: list[Inbound] = []
    statuses: list[Status] = []
    if payload.get("object") != "page":
        logger.info("webhook for another object ignored")
        return messages, statuses
    for entry in payload.get("entry") or []:
        for event in (entry or {}).get("messaging") or []:
            try:
                messages += _inbound(event)
                statuses += _statuses(event)
            except (KeyError, TypeError, ValueError, AttributeError):
                logger.warning("unreadable messenger event skipped")
    return messages, statuses


def _inbound(event: dict[str, Any]) -> list[Inbound]:
    sender = str(event["sender"]["id"])
    at = _millis(event.get("timestamp"))
    if postback := event.get("postback"):
        # Older postbacks carry no message id: sender and time identify them.
        message_id = postback.get("mid") or f"postback-{sender}-{event['timestamp']}"
        title = str(postback.get("title") or "")
        return [_inbound_of(sender, message_id, "postback", postback, title, at)]
    message = event.get("message")
    if not message or message.get("is_echo"):  # our own sends, echoed back
        return []
    text = str(message.get("text") or "")
    if quick := message.get("quick_reply"):
        return [_inbound_of(sender, message["mid"], "quick_reply", quick, text, at)]
    kind: InboundKind = "text" if text else "unsupported"  # e.g. a photo
    return [_inbound_of(sender, message["mid"], kind, {"payload": text}, "", at)]


def _inbound_of(
    sender: str,
    message_id: str,
    kind: InboundKind,
    chosen: dict[str, Any],
    title: str,
    at: datetime,
) -> Inbound:
    """What goes to Rasa is the payload (the text, for typed messages); what the
    shopper tapped goes to the timeline."""
    return Inbound(
        channel="messenger", sender=sender, message_id=str(message_id), kind=kind,
        text=str(chosen.get("payload") or title), title=title, timestamp=at,
    )  # fmt: skip


def _statuses(event: dict[str, Any]) -> list[Status]:
    sender = str(event["sender"]["id"])
    if delivery := event.get("delivery"):
        at = _millis(delivery.get("watermark") or event.get("timestamp"))
        return [
            Status(channel="messenger", recipient=sender, message_id=str(mid),
                   status="delivered", timestamp=at)
            for mid in delivery.get("mids") or []
        ]  # fmt: skip
    if read := event.get("read"):
        # A read receipt names no message: everything up to the watermark is read.
        at = _millis(read.get("watermark") or event.get("timestamp"))
        watermark = f"watermark-{int(at.timestamp() * 1000)}"
        return [
            Status(channel="messenger", recipient=sender, message_id=watermark,
                   status="read", timestamp=at)
        ]  # fmt: skip
    return []


def _millis(value: Any) -> datetime:
    return (
        datetime.fromtimestamp(int(value) / 1000, UTC) if value else datetime.now(UTC)
    )


# Replies ------------------------------------------------------------------------


def to_outgoing(message: dict[str, Any]) -> list[Outgoing]:
    """A Rasa reply as Messenger messages: text, a button template (up to 3),
    quick replies (up to 13), a product carousel (generic template), an image."""
    text = str(message.get("text") or "")
    buttons = [b for b in message.get("buttons") or [] if b.get("title")]
    outgoing = _choices(text, buttons) if buttons else _texts(text)
    products = (message.get("custom") or {}).get("products") or []
    if products:
        outgoing.append(_carousel(products))
    if image := message.get("image"):
        attachment = {"type": "image", "payload": {"url": image, "is_reusable": True}}
        outgoing.append(Outgoing(kind="image", body={"attachment": attachment}))
    return outgoing


def _texts(text: str) -> list[Outgoing]:
    return [
        Outgoing(kind="text", body={"text": part}, text=part)
        for part in split(text, TEXT_MAX)
    ]


def _choices(text: str, buttons: list[dict[str, Any]]) -> list[Outgoing]:
    if len(buttons) <= BUTTONS_MAX:
        lead, body = lead_and_body(text or CHOOSE_PROMPT, BUTTON_TEXT_MAX, TEXT_MAX)
        payload = {
            "template_type": "button", "text": body,
            "buttons": [_postback(b) for b in buttons],
        }  # fmt: skip
        attachment = {"type": "template", "payload": payload}
        choice = Outgoing(kind="button", body={"attachment": attachment}, text=body)
    else:
        if len(buttons) > QUICK_REPLIES_MAX:
            logger.debug("choices beyond Messenger's 13 quick replies left out")
        lead, body = lead_and_body(text or CHOOSE_PROMPT, TEXT_MAX, TEXT_MAX)
        replies = [
            {"content_type": "text", **_titled(b)} for b in buttons[:QUICK_REPLIES_MAX]
        ]
        choice = Outgoing(
            kind="quick_replies",
            body={"text": body, "quick_replies": replies},
            text=body,
        )
    return [*(o for part in lead for o in _texts(part)), choice]


def _titled(button: dict[str, Any]) -> dict[str, str]:
    title = clip(str(button["title"]), BUTTON_TITLE_MAX)
    payload = str(button.get("payload") or button["title"])
    return {"title": title, "payload": clip(payload, PAYLOAD_MAX)}


def _postback(button: dict[str, Any]) -> dict[str, str]:
    return {"type": "postback", **_titled(button)}


def _carousel(products: list[dict[str, Any]]) -> Outgoing:
    """Products as a generic template: a card each, swiped sideways."""
    elements = [_card(p) for p in products[:ELEMENTS_MAX]]
    payload = {"template_type": "generic", "elements": elements}
    names = "; ".join(str(p.get("name", "")) for p in products[:ELEMENTS_MAX])
    return Outgoing(
        kind="carousel",
        body={"attachment": {"type": "template", "payload": payload}},
        text=names,
    )


def _card(product: dict[str, Any]) -> dict[str, Any]:
    cost = price(product.get("price"), str(product.get("currency") or "USD"))
    subtitle = " · ".join(s for s in (cost, str(product.get("reason") or "")) if s)
    card: dict[str, Any] = {
        "title": clip(str(product.get("name", "")), ELEMENT_TITLE_MAX),
        "subtitle": clip(subtitle, SUBTITLE_MAX),
    }
    buttons = []
    if url := product.get("url"):
        card["default_action"] = {"type": "web_url", "url": url}
        buttons.append({"type": "web_url", "url": url, "title": "View"})
    if sku := product.get("sku"):
        details = f'/product_details{{"product":"{sku}"}}'
        buttons.append({"type": "postback", "title": "Details", "payload": details})
    if buttons:
        card["buttons"] = buttons
    return card


class Messenger(Outbound):
    """Delivers replies to one Messenger shopper under the window rule."""

    channel = "messenger"

    def __init__(
        self,
        client: redis.Redis,
        *,
        settings: MessengerSettings | None = None,
        graph: GraphClient | None = None,
    ) -> None:
        self.settings = settings or get_settings().messenger
        super().__init__(
            client, graph or GraphClient(self.settings, self.settings.page_id)
        )

    def deliver(self, sender: str, message: dict[str, Any], *, origin: str) -> None:
        """Send one reply (Rasa's, an agent's or a campaign's) to the shopper."""
        if service.window_open(self.client, self.channel, sender):
            tagging: dict[str, str] = {"messaging_type": "RESPONSE"}
        elif origin == "agent":
            # Meta lets a person answer for 7 days with this tag.
            tagging = {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
        else:
            self._hold(sender, message, origin)
            return
        for outgoing in to_outgoing(message):
            body = {"recipient": {"id": sender}, **tagging, "message": outgoing.body}
            if not self.post(sender, outgoing, body, origin=origin):
                break

    def _hold(self, sender: str, message: dict[str, Any], origin: str) -> None:
        service.hold(self.client, self.channel, sender, message, origin)
        service.record(
            self.client, self.channel, sender, "Message Held",
            {"origin": origin, "reason": "outside the 24-hour window"},
            message_id=f"{self.channel}-held-{uuid.uuid4()}",
        )  # fmt: skip

    def sent_id(self, answer: dict[str, Any]) -> str:
        return str(answer.get("message_id") or "")


router = webhook_router("messenger", lambda: get_settings().messenger, parse_webhook)
