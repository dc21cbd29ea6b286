"""WhatsApp through Meta's Cloud API: the webhook Meta calls, reading its payloads,
and replies shaped to WhatsApp's limits.

The webhook only checks the signature, queues the messages (channels/inbox.py) and
records status callbacks; the channel worker answers. Outside the 24-hour
customer-service window only approved templates may be sent, and only to shoppers
whose whatsapp_marketing consent is recorded; other replies are held until the
shopper writes again.
"""

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import redis
from sqlalchemy import Engine

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
from core.settings import WhatsAppSettings, get_settings

logger = logging.getLogger(__name__)


# WhatsApp's limits (Cloud API messages reference).
TEXT_MAX = 4096
BODY_MAX = 1024  # the body of an interactive message
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
BUTTON_ID_MAX = 256
ROWS_MAX = 10
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72
ROW_ID_MAX = 200
LIST_BUTTON = "Choose"
CHOOSE_PROMPT = "Please choose:"


def parse_webhook(payload: dict[str, Any]) -> tuple[list[Inbound], list[Status]]:
    """The shoppers' messages and the status callbacks in one webhook call."""
    messages: list[Inbound] = []
    statuses: list[Status] = []
    if payload.get("object") != "whatsapp_business_account":
        logger.info("webhook for another object ignored")
        return messages, statuses
    for value in _message_values(payload):
        for raw in value.get("messages") or []:
            if (message := _inbound(raw)) is not None:
                messages.append(message)
        for raw in value.get("statuses") or []:
            if (status := _status(raw)) is not None:
                statuses.append(status)
    return messages, statuses


def _message_values(payload: dict[str, Any]) -> list[dict[str, Any]]:
    values = []
    for entry in payload.get("entry") or []:
        for change in (entry or {}).get("changes") or []:
            if isinstance(change, dict) and change.get("field") == "messages":
                values.append(change.get("value") or {})
    return values


def _inbound(raw: Any) -> Inbound | None:
    try:
        kind, text, title = _content(raw)
        return Inbound(
            channel="whatsapp", sender=str(raw["from"]), message_id=str(raw["id"]),
            kind=kind, text=text, title=title, timestamp=_unix(raw.get("timestamp")),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError):
        logger.warning("unreadable whatsapp message skipped")
        return None


def _content(raw: dict[str, Any]) -> tuple[InboundKind, str, str]:
    """(kind, what goes to Rasa, what the shopper saw)."""
    kind = raw.get("type")
    if kind == "text":
        return "text", str(raw["text"]["body"]), ""
    if kind == "interactive":
        reply = raw["interactive"]
        if reply.get("type") == "button_reply":
            chosen = reply["button_reply"]
            return "button", str(chosen["id"]), str(chosen.get("title", ""))
        if reply.get("type") == "list_reply":
            chosen = reply["list_reply"]
            return "list", str(chosen["id"]), str(chosen.get("title", ""))
    if kind == "button":  # a quick-reply button of a template
        button = raw["button"]
        title = str(button.get("text", ""))
        return "button", str(button.get("payload") or title), title
    return "unsupported", "", ""


def _status(raw: Any) -> Status | None:
    try:
        errors = raw.get("errors") or []
        error = f"{errors[0].get('code')}: {errors[0].get('title')}" if errors else ""
        return Status(
            channel="whatsapp", recipient=str(raw["recipient_id"]),
            message_id=str(raw["id"]), status=str(raw["status"]),
            timestamp=_unix(raw.get("timestamp")), error=error,
        )  # fmt: skip
    except (KeyError, TypeError, ValueError, AttributeError):
        logger.warning("unreadable whatsapp status skipped")
        return None


def _unix(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value), UTC) if value else datetime.now(UTC)


# Replies ------------------------------------------------------------------------


def to_outgoing(message: dict[str, Any]) -> list[Outgoing]:
    """A Rasa reply as WhatsApp messages: text, reply buttons (up to 3), a list
    (up to 10 rows), product cards as text with links, an image."""
    text = str(message.get("text") or "")
    buttons = [b for b in message.get("buttons") or [] if b.get("title")]
    outgoing = _choices(text, buttons) if buttons else _texts(text)
    products = (message.get("custom") or {}).get("products") or []
    if products:
        outgoing += _texts("\n\n".join(_product_lines(p) for p in products))
    if image := message.get("image"):
        outgoing.append(
            Outgoing(kind="image", body={"type": "image", "image": {"link": image}})
        )
    return outgoing


def _texts(text: str) -> list[Outgoing]:
    return [
        Outgoing(
            kind="text",
            body={"type": "text", "text": {"body": part, "preview_url": True}},
            text=part,
        )
        for part in split(text, TEXT_MAX)
    ]


def _choices(text: str, buttons: list[dict[str, Any]]) -> list[Outgoing]:
    lead, body = lead_and_body(text or CHOOSE_PROMPT, BODY_MAX, TEXT_MAX)
    if len(buttons) <= BUTTONS_MAX:
        action: dict[str, Any] = {"buttons": [_button(b) for b in buttons]}
        kind = "button"
    else:
        if len(buttons) > ROWS_MAX:
            logger.debug("choices beyond WhatsApp's 10 list rows left out")
        rows = [_row(b) for b in buttons[:ROWS_MAX]]
        action = {
            "button": LIST_BUTTON,
            "sections": [{"title": "Options", "rows": rows}],
        }
        kind = "list"
    interactive = {"type": kind, "body": {"text": body}, "action": action}
    choice = Outgoing(
        kind=kind, body={"type": "interactive", "interactive": interactive}, text=body
    )
    return [*(o for part in lead for o in _texts(part)), choice]


def _choice_id(button: dict[str, Any], limit: int) -> str:
    """The payload, which comes back to Rasa when tapped; the title if the payload
    is too long for WhatsApp (Rasa reads the title as text then)."""
    payload = str(button.get("payload") or button["title"])
    return payload if len(payload) <= limit else clip(str(button["title"]), limit)


def _button(button: dict[str, Any]) -> dict[str, Any]:
    title = clip(str(button["title"]), BUTTON_TITLE_MAX)
    return {
        "type": "reply",
        "reply": {"id": _choice_id(button, BUTTON_ID_MAX), "title": title},
    }


def _row(button: dict[str, Any]) -> dict[str, Any]:
    title = str(button["title"])
    row = {"id": _choice_id(button, ROW_ID_MAX), "title": clip(title, ROW_TITLE_MAX)}
    if len(title) > ROW_TITLE_MAX:  # the whole name, where the list has room for it
        row["description"] = clip(title, ROW_DESCRIPTION_MAX)
    return row


def _product_lines(product: dict[str, Any]) -> str:
    """WhatsApp has no card for a product outside a catalog: name, price, link."""
    name = f"*{product.get('name', '')}*"
    cost = price(product.get("price"), str(product.get("currency") or "USD"))
    lines = [f"{name} - {cost}" if cost else name]
    if product.get("reason"):
        lines.append(f"_{product['reason']}_")
    if product.get("url"):
        lines.append(str(product["url"]))
    return "\n".join(lines)


def template_outgoing(
    name: str, language: str, components: list[dict[str, Any]] | None = None
) -> Outgoing:
    template = {"name": name, "language": {"code": language}}
    if components:
        template["components"] = components
    return Outgoing(
        kind="template",
        body={"type": "template", "template": template},
        text=f"template {name}",
    )


class WhatsApp(Outbound):
    """Delivers replies to one WhatsApp number under the window and consent rules."""

    channel = "whatsapp"

    def __init__(
        self,
        client: redis.Redis,
        engine: Engine,
        *,
        settings: WhatsAppSettings | None = None,
        graph: GraphClient | None = None,
    ) -> None:
        self.settings = settings or get_settings().whatsapp
        super().__init__(
            client, graph or GraphClient(self.settings, self.settings.phone_number_id)
        )
        self.engine = engine

    def deliver(self, sender: str, message: dict[str, Any], *, origin: str) -> None:
        """Send one reply (Rasa's, an agent's or a campaign's) to the shopper."""
        if message.get("template"):
            self._deliver_template(sender, message["template"], origin)
        elif not service.window_open(self.client, self.channel, sender):
            self._hold(sender, message, origin)
        else:
            for outgoing in to_outgoing(message):
                if not self._post(sender, outgoing, origin):
                    break

    def _post(self, sender: str, outgoing: Outgoing, origin: str) -> bool:
        body = {
            "messaging_product": "whatsapp", "recipient_type": "individual",
            "to": sender, **outgoing.body,
        }  # fmt: skip
        return self.post(sender, outgoing, body, origin=origin)

    def _deliver_template(
        self, sender: str, template: dict[str, Any], origin: str
    ) -> None:
        name = str(template.get("name") or "")
        approved = self.settings.approved_templates
        if name not in approved:
            reason = f"template {name!r} is not approved; approved: {approved}"
        elif not self._may_send_template(sender):
            reason = (
                "outside the 24-hour window templates go only to shoppers with "
                "whatsapp_marketing consent, and none is recorded"
            )
        else:
            language = str(template.get("language") or self.settings.template_language)
            outgoing = template_outgoing(name, language, template.get("components"))
            self._post(sender, outgoing, origin)
            return
        service.record_failure(
            self.client, self.channel, sender, kind="template", origin=origin,
            reason=reason, attempts=0,
        )  # fmt: skip

    def _may_send_template(self, sender: str) -> bool:
        return service.window_open(
            self.client, self.channel, sender
        ) or service.has_marketing_consent(self.engine, self.channel, sender)

    def _hold(self, sender: str, message: dict[str, Any], origin: str) -> None:
        """Outside the window: keep the reply for when the shopper writes, and with
        consent invite them back with the approved template (once)."""
        waiting = service.hold(self.client, self.channel, sender, message, origin)
        consent = service.has_marketing_consent(self.engine, self.channel, sender)
        template = self.settings.reopen_template
        if not consent:
            reason = "outside the 24-hour window, no whatsapp_marketing consent"
        elif not template:
            reason = "outside the 24-hour window, no reopen template configured"
        else:
            reason = f"outside the 24-hour window, invited back with {template!r}"
        service.record(
            self.client, self.channel, sender, "Message Held",
            {"origin": origin, "reason": reason},
            message_id=f"{self.channel}-held-{uuid.uuid4()}",
        )  # fmt: skip
        if consent and template and waiting == 1:
            language = self.settings.template_language
            self._post(sender, template_outgoing(template, language), "reopen")

    def sent_id(self, answer: dict[str, Any]) -> str:
        sent = answer.get("messages") or [{}]
        return str(sent[0].get("id") or "")


router = webhook_router("whatsapp", lambda: get_settings().whatsapp, parse_webhook)
